/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * NAME
 *	bench_avfloor 1
 * SUMMARY
 *	what libclamav alone costs: one scan of each message
 * SYNOPSIS
 *	bench_avfloor -d dbdir [-r] list-dir-or-file...
 * DESCRIPTION
 *	The floor of the sanitising path's throughput that comes from
 *	libclamav, which issue #3 requires: loads the signatures in dbdir
 *	once, then scans every message of the corpus (files, directories
 *	and ".list" files as bench_sanitize takes them, read into memory
 *	first, not timed) once, from memory (cl_fmap_open_memory), and
 *	nothing else: no parsing of its own, no detection, no conversion,
 *	no quarantine, no output.
 *
 *	The engine is set up as src/av/av.c sets up mugaika's: libclamav's
 *	own cache of clean results off, the same file and scan size limits,
 *	the picture fuzzy hash only when the database has signatures for
 *	it (mg_av_dir_has_image_sigs).
 *
 *	Default: mugaika's scan options (every CL_SCAN_PARSE_* flag, general
 *	heuristics, the limit and encryption heuristics), so libclamav takes
 *	the message apart as mail, which is what clamscan or clamav-milter
 *	do with it.
 *
 *	-r: no parsing and no heuristics at all: libclamav's type check,
 *	its hashes for the hash signatures and its pattern matchers over
 *	the raw bytes of the whole message, once. A gateway that scans
 *	what it delivers looks at least at that much content; it can skip
 *	the transfer encoding's overhead (base64 is 4/3 of the decoded
 *	bytes), and that is about all it can skip.
 * LIMITS
 *	The corpus is held in memory whole (bench_util.c).
 *
 *	Output: the RESULT and CATEGORY lines of bench_util.c (impl
 *	clamav-mail or clamav-raw; decoded= and leaves= are 0), with
 *	infected= on the RESULT line, and an INFO line with the libclamav
 *	version and the signature count.
 * DIAGNOSTICS
 *	Exit 1 if the database cannot be loaded or a scan fails with an
 *	error (each reported on stderr); 2 on usage.
 */
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <clamav.h>

#include <mugaika/av.h>

#include "bench_util.h"

/* what bench_corpus_run hands each scan */
struct avfloor {
    struct cl_engine *engine;
    struct cl_scan_options opts;
    unsigned long long infected;
};

/* One scan of f from memory; false on a libclamav error (said on
 * stderr). An infection is counted, not an error. */
static bool scan_one(const struct bench_file *f, void *ctx, struct bench_item *out)
{
    struct avfloor *a = ctx;
    cl_fmap_t *map = cl_fmap_open_memory(f->data, f->len);
    const char *virname = NULL;
    unsigned long scanned = 0;
    cl_error_t rc;

    out->decoded = 0;
    out->leaves = 0;
    if (map == NULL) {
        fprintf(stderr, "bench_avfloor: %s: cl_fmap_open_memory failed\n", f->path);
        return false;
    }
    rc = cl_scanmap_callback(map, f->path, &virname, &scanned, a->engine, &a->opts, NULL);
    cl_fmap_close(map);
    if (rc == CL_VIRUS) {
        a->infected++;
        return true;
    }
    if (rc != CL_CLEAN) {
        fprintf(stderr, "bench_avfloor: %s: %s\n", f->path, cl_strerror(rc));
        return false;
    }
    return true;
}

int main(int argc, char **argv)
{
    struct avfloor a = {0};
    struct bench_corpus corpus;
    struct bench_totals totals;
    const char *dbdir = NULL;
    unsigned sigs = 0, failures;
    bool raw = false;
    char extra[64];
    cl_error_t rc;
    int opt;

    while ((opt = getopt(argc, argv, "d:r")) != -1) {
        switch (opt) {
        case 'd':
            dbdir = optarg;
            break;
        case 'r':
            raw = true;
            break;
        default:
            bench_die(2, "usage: bench_avfloor -d dbdir [-r] list-dir-or-file...");
        }
    }
    if (dbdir == NULL || optind >= argc)
        bench_die(2, "usage: bench_avfloor -d dbdir [-r] list-dir-or-file...");
    if ((rc = cl_init(CL_INIT_DEFAULT)) != CL_SUCCESS)
        bench_die(1, "cl_init: %s", cl_strerror(rc));
    if ((a.engine = cl_engine_new()) == NULL)
        bench_die(1, "cl_engine_new failed");
    /* as src/av/av.c's av_configure */
    if ((rc = cl_engine_set_num(a.engine, CL_ENGINE_MAX_FILESIZE, (long long)INT_MAX - 2)) !=
            CL_SUCCESS ||
        (rc = cl_engine_set_num(a.engine, CL_ENGINE_MAX_SCANSIZE, 4LL * 1024 * 1024 * 1024)) !=
            CL_SUCCESS ||
        (rc = cl_engine_set_num(a.engine, CL_ENGINE_DISABLE_CACHE, 1)) != CL_SUCCESS)
        bench_die(1, "cl_engine_set_num: %s", cl_strerror(rc));
    if ((rc = cl_load(dbdir, a.engine, &sigs, CL_DB_STDOPT)) != CL_SUCCESS)
        bench_die(1, "%s: cl_load: %s", dbdir, cl_strerror(rc));
    if ((rc = cl_engine_compile(a.engine)) != CL_SUCCESS)
        bench_die(1, "%s: cl_engine_compile: %s", dbdir, cl_strerror(rc));
    if (!raw) {
        /* as src/av/av.c */
        a.opts.general = CL_SCAN_GENERAL_HEURISTICS;
        a.opts.parse = CL_SCAN_PARSE_ARCHIVE | CL_SCAN_PARSE_ELF | CL_SCAN_PARSE_PDF |
                       CL_SCAN_PARSE_SWF | CL_SCAN_PARSE_HWP3 | CL_SCAN_PARSE_XMLDOCS |
                       CL_SCAN_PARSE_MAIL | CL_SCAN_PARSE_OLE2 | CL_SCAN_PARSE_HTML |
                       CL_SCAN_PARSE_PE | CL_SCAN_PARSE_ONENOTE | CL_SCAN_PARSE_IMAGE;
        if (mg_av_dir_has_image_sigs(dbdir))
            a.opts.parse |= CL_SCAN_PARSE_IMAGE_FUZZY_HASH;
        a.opts.heuristic = CL_SCAN_HEURISTIC_EXCEEDS_MAX | CL_SCAN_HEURISTIC_ENCRYPTED_ARCHIVE |
                           CL_SCAN_HEURISTIC_ENCRYPTED_DOC;
    }
    printf("INFO impl=%s clamav=%s signatures=%u\n", raw ? "clamav-raw" : "clamav-mail",
           cl_retver(), sigs);
    bench_corpus_load(&corpus, argc - optind, argv + optind);
    failures = bench_corpus_run(&corpus, 1, scan_one, &a, &totals);
    snprintf(extra, sizeof extra, "infected=%llu failures=%u", a.infected, failures);
    bench_totals_print(&totals, raw ? "clamav-raw" : "clamav-mail", extra);
    bench_corpus_fini(&corpus);
    cl_engine_free(a.engine);
    return failures == 0 ? 0 : 1;
}
