/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * NAME
 *	bench_sanitize 1
 * SUMMARY
 *	throughput and memory of the whole sanitising path
 * SYNOPSIS
 *	bench_sanitize (-d dbdir | -A) (-q qdir | -Q) [-C] [-S spool] [-c chunk]
 *		list-dir-or-file...
 *	bench_sanitize -s (-d dbdir | -A) (-q qdir | -Q) [-C] [-S spool] [-c chunk]
 *		file
 * DESCRIPTION
 *	Loads the built-in rules (mg_rules_load(NULL)), the libclamav
 *	engine with the signatures in dbdir, libmagic and the quarantine
 *	in directory qdir (created when missing) once, then runs the
 *	sanitize path of include/mugaika/sanitize.h over every message:
 *	mg_sanitize_new(), mg_sanitize_feed() over successive chunk-byte
 *	slices (default 64 KiB, like an MTA), mg_sanitize_finish() (parse,
 *	detection, scanning, HTML to text, rebuild, quarantine commit),
 *	mg_sanitize_write() to /dev/null when the verdict is ACCEPT, and
 *	mg_sanitize_free().
 *
 *	Corpus mode takes files, directories (their *.eml files in name
 *	order) and list files (a name ending in ".list": one path a line).
 *	Each message is first read whole into one reused buffer (not
 *	timed), then the sequence above is timed on the wall clock and in
 *	process CPU time. Figures are summed per category (the part of the
 *	file name between the first '-' and ".eml", as in bench_util.c).
 *
 *	-Q runs without a quarantine (the original is not kept) and -A
 *	without the AV engine, only to tell how much of the time these
 *	stages take: the gateway always has both. -C makes the engine
 *	remember no clean result (mg_av_cache_limit 0), for corpora that
 *	repeat their messages: what each would cost if it came only once.
 *
 *	Stream mode (-s) reads one file in chunk-byte read(2) calls into
 *	one fixed buffer, feeding each to the sanitizer; the reads are
 *	timed too.
 *
 *	Output: the RESULT and CATEGORY lines of bench_util.c, with the
 *	verdict counts, failures and the peak resident set size
 *	(ru_maxrss, KiB: rss_start_kib once everything is loaded,
 *	rss_peak_kib at the end) on the RESULT line; decoded= is always 0
 *	(the output goes to /dev/null uncounted) and leaves= counts the
 *	parts that mg_sanitize_parts_json() lists (the time of that call
 *	is left out of the figures). An INFO line gives the libclamav
 *	version and the signature count.
 * DIAGNOSTICS
 *	Exit 1 if anything cannot be loaded or a verdict is TEMPFAIL or
 *	INTERNAL (each reported on stderr); REJECT is a normal outcome.
 *	Exit 2 on usage.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <glib.h>
#include <mugaika/sanitize.h>

#include "bench_util.h"

struct bench_env {
    struct mg_sanitize_opts opts;
    size_t chunk;
    int null_fd;
    unsigned verdicts[MG_VERDICT_INTERNAL + 1];
    unsigned failures;
};

static void env_open(struct bench_env *e, const char *dbdir, const char *qdir, const char *spool)
{
    GError *err = NULL;
    const char *why = NULL;

    mg_sanitize_opts_default(&e->opts);
    e->opts.rules = mg_rules_load(NULL, &err);
    if (!e->opts.rules)
        bench_die(1, "rules: %s", err->message);
    e->opts.av = dbdir ? mg_av_open(dbdir, &err) : NULL;
    if (dbdir && !e->opts.av)
        bench_die(1, "%s: %s", dbdir, err->message);
    e->opts.quarantine = qdir ? mg_quarantine_open(qdir, &err) : NULL;
    if (qdir && !e->opts.quarantine)
        bench_die(1, "%s: %s", qdir, err->message);
    e->opts.detect = mg_detect_new(&why);
    if (!e->opts.detect)
        bench_die(1, "libmagic: %s", why);
    e->opts.spool_dir = spool;
    e->null_fd = open("/dev/null", O_WRONLY | O_CLOEXEC);
    if (e->null_fd < 0)
        bench_die(1, "/dev/null: %s", strerror(errno));
}

static void env_close(struct bench_env *e)
{
    close(e->null_fd);
    mg_detect_free(e->opts.detect);
    if (e->opts.quarantine)
        mg_quarantine_close(e->opts.quarantine);
    if (e->opts.av)
        mg_av_unref(e->opts.av);
    mg_rules_unref(e->opts.rules);
}

/* Ends one message: verdict and output. */
static void finish_message(struct bench_env *e, struct mg_sanitize *s, const char *path)
{
    GError *err = NULL;
    enum mg_verdict v = mg_sanitize_finish(s, &err);

    if (v == MG_VERDICT_ACCEPT && !mg_sanitize_write(s, e->null_fd, &err)) {
        fprintf(stderr, "bench_sanitize: %s: write: %s\n", path, err ? err->message : "?");
        e->failures++;
    }
    if ((unsigned)v <= MG_VERDICT_INTERNAL)
        e->verdicts[v]++;
    if (v == MG_VERDICT_TEMPFAIL || v == MG_VERDICT_INTERNAL) {
        fprintf(stderr, "bench_sanitize: %s: %s: %s\n", path, mg_verdict_name(v),
                err ? err->message : "?");
        e->failures++;
    }
    g_clear_error(&err);
}

/* The number of parts listed by s, and the time the listing took (wall
 * and CPU), which the callers leave out of their figures. */
static unsigned count_parts(const struct mg_sanitize *s, double *wall, double *cpu)
{
    double t0 = bench_now(), c0 = bench_cpu_now();
    JsonNode *j = mg_sanitize_parts_json(s);
    unsigned parts = 0;

    if (j && JSON_NODE_HOLDS_ARRAY(j))
        parts = json_array_get_length(json_node_get_array(j));
    if (j)
        json_node_unref(j);
    *cpu = bench_cpu_now() - c0;
    *wall = bench_now() - t0;
    return parts;
}

/* ---- corpus mode ---------------------------------------------------------- */

static void category_of(const char *path, char *out, size_t size)
{
    const char *base = strrchr(path, '/');
    const char *dash, *dot;

    base = base ? base + 1 : path;
    dash = strchr(base, '-');
    dot = strrchr(base, '.');
    if (!dash || !dot || dot <= dash + 1)
        g_strlcpy(out, "other", size);
    else
        g_strlcpy(out, dash + 1, MIN(size, (size_t)(dot - dash)));
}

static gint cmp_str(gconstpointer a, gconstpointer b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void add_arg(GPtrArray *paths, const char *arg)
{
    GError *err = NULL;

    if (g_file_test(arg, G_FILE_TEST_IS_DIR)) {
        GDir *d = g_dir_open(arg, 0, &err);
        const char *name;
        guint first = paths->len;

        if (!d)
            bench_die(1, "%s", err->message);
        while ((name = g_dir_read_name(d)) != NULL)
            if (g_str_has_suffix(name, ".eml"))
                g_ptr_array_add(paths, g_build_filename(arg, name, NULL));
        g_dir_close(d);
        qsort(paths->pdata + first, paths->len - first, sizeof(gpointer), cmp_str);
    } else if (g_str_has_suffix(arg, ".list")) {
        char *text;
        char **lines;

        if (!g_file_get_contents(arg, &text, NULL, &err))
            bench_die(1, "%s", err->message);
        lines = g_strsplit(text, "\n", -1);
        for (char **l = lines; *l; l++)
            if (**l)
                g_ptr_array_add(paths, g_strdup(*l));
        g_strfreev(lines);
        g_free(text);
    } else {
        g_ptr_array_add(paths, g_strdup(arg));
    }
}

static struct bench_tally *tally_for(struct bench_totals *t, const char *path)
{
    char name[sizeof t->cat[0].name];
    size_t i;

    category_of(path, name, sizeof name);
    for (i = 0; i < t->ncat; i++)
        if (strcmp(t->cat[i].name, name) == 0)
            return &t->cat[i];
    if (t->ncat == BENCH_MAX_CATS)
        bench_die(1, "more than %d categories", BENCH_MAX_CATS);
    memcpy(t->cat[i].name, name, sizeof name);
    t->ncat++;
    return &t->cat[i];
}

/* Reads path whole into *buf (grown as needed); returns its length. */
static size_t read_whole(const char *path, unsigned char **buf, size_t *cap)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    size_t len, done = 0;

    if (fd < 0)
        bench_die(1, "%s: %s", path, strerror(errno));
    len = (size_t)bench_fd_size(fd, path);
    if (len > *cap) {
        *buf = g_realloc(*buf, len);
        *cap = len;
    }
    while (done < len) {
        ssize_t n = read(fd, *buf + done, len - done);

        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            bench_die(1, "%s: short read", path);
        done += (size_t)n;
    }
    close(fd);
    return len;
}

static int run_corpus(struct bench_env *e, int argc, char **argv)
{
    GPtrArray *paths = g_ptr_array_new_with_free_func(g_free);
    long rss_start = bench_maxrss_kib();
    unsigned char *buf = NULL;
    size_t cap = 0;
    struct bench_totals t;
    char extra[320];

    memset(&t, 0, sizeof t);
    g_strlcpy(t.all.name, "all", sizeof t.all.name);
    for (int i = 0; i < argc; i++)
        add_arg(paths, argv[i]);
    if (paths->len == 0)
        bench_die(1, "no input files");
    for (guint i = 0; i < paths->len; i++) {
        const char *path = paths->pdata[i];
        struct bench_tally *cat = tally_for(&t, path);
        size_t len = read_whole(path, &buf, &cap);
        struct mg_sanitize *s;
        double t0, t1, c0, c1, pw, pc;
        unsigned parts;

        c0 = bench_cpu_now();
        t0 = bench_now();
        s = mg_sanitize_new(&e->opts);
        for (size_t off = 0; off < len; off += e->chunk)
            mg_sanitize_feed(s, (const char *)buf + off, MIN(len - off, e->chunk));
        finish_message(e, s, path);
        parts = count_parts(s, &pw, &pc);
        mg_sanitize_free(s);
        t1 = bench_now();
        c1 = bench_cpu_now();
        cat->files++;
        cat->bytes += len;
        cat->leaves += parts;
        cat->seconds += t1 - t0 - pw;
        cat->cpu_seconds += c1 - c0 - pc;
    }
    for (size_t k = 0; k < t.ncat; k++) {
        t.all.files += t.cat[k].files;
        t.all.bytes += t.cat[k].bytes;
        t.all.leaves += t.cat[k].leaves;
        t.all.seconds += t.cat[k].seconds;
        t.all.cpu_seconds += t.cat[k].cpu_seconds;
    }
    snprintf(extra, sizeof extra,
             "failures=%u accept=%u reject=%u tempfail=%u internal=%u chunk=%zu "
             "rss_start_kib=%ld rss_peak_kib=%ld",
             e->failures, e->verdicts[MG_VERDICT_ACCEPT], e->verdicts[MG_VERDICT_REJECT],
             e->verdicts[MG_VERDICT_TEMPFAIL], e->verdicts[MG_VERDICT_INTERNAL], e->chunk,
             rss_start, bench_maxrss_kib());
    bench_totals_print(&t, "mugaika", extra);
    g_free(buf);
    g_ptr_array_unref(paths);
    return e->failures ? 1 : 0;
}

/* ---- stream mode ---------------------------------------------------------- */

static int run_stream(struct bench_env *e, const char *path)
{
    long rss_start = bench_maxrss_kib();
    char *buf = g_malloc(e->chunk);
    uint64_t bytes = 0;
    struct mg_sanitize *s;
    double t0, t1, c0, c1, pw, pc;
    unsigned parts;
    int fd;

    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        bench_die(1, "%s: %s", path, strerror(errno));
    c0 = bench_cpu_now();
    t0 = bench_now();
    s = mg_sanitize_new(&e->opts);
    for (;;) {
        ssize_t n = read(fd, buf, e->chunk);

        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            bench_die(1, "%s: %s", path, strerror(errno));
        if (n == 0)
            break;
        bytes += (uint64_t)n;
        mg_sanitize_feed(s, buf, (size_t)n);
    }
    finish_message(e, s, path);
    parts = count_parts(s, &pw, &pc);
    mg_sanitize_free(s);
    t1 = bench_now() - pw;
    c1 = bench_cpu_now() - pc;
    close(fd);
    g_free(buf);
    printf("RESULT impl=mugaika mode=stream files=1 bytes=%llu decoded=0 leaves=%u "
           "seconds=%.6f mbps=%.2f cpu_seconds=%.6f cpu_mbps=%.2f failures=%u accept=%u "
           "reject=%u tempfail=%u internal=%u chunk=%zu rss_start_kib=%ld rss_peak_kib=%ld\n",
           (unsigned long long)bytes, parts, t1 - t0, (double)bytes / (t1 - t0) / 1e6, c1 - c0,
           (double)bytes / (c1 - c0) / 1e6, e->failures, e->verdicts[MG_VERDICT_ACCEPT],
           e->verdicts[MG_VERDICT_REJECT], e->verdicts[MG_VERDICT_TEMPFAIL],
           e->verdicts[MG_VERDICT_INTERNAL], e->chunk, rss_start, bench_maxrss_kib());
    return e->failures ? 1 : 0;
}

static _Noreturn void usage(void)
{
    bench_die(
        2, "usage: bench_sanitize (-d dbdir | -A) (-q quarantine | -Q) [-C] [-S spool] [-c chunk] "
           "list-dir-or-file...\n"
           "       bench_sanitize -s (-d dbdir | -A) (-q quarantine | -Q) [-C] [-S spool] "
           "[-c chunk] "
           "file");
}

int main(int argc, char **argv)
{
    struct bench_env e = {.chunk = BENCH_CHUNK};
    const char *dbdir = NULL, *qdir = NULL, *spool = NULL;
    int stream = 0, no_quarantine = 0, no_av = 0, no_cache = 0, opt, rc;

    while ((opt = getopt(argc, argv, "ACc:d:q:QsS:")) != -1) {
        switch (opt) {
        case 'A':
            no_av = 1;
            break;
        case 'C':
            no_cache = 1;
            break;
        case 'c':
            e.chunk = bench_arg(optarg, 1u << 30);
            break;
        case 'd':
            dbdir = optarg;
            break;
        case 'q':
            qdir = optarg;
            break;
        case 'Q':
            no_quarantine = 1;
            break;
        case 's':
            stream = 1;
            break;
        case 'S':
            spool = optarg;
            break;
        default:
            usage();
        }
    }
    if (!dbdir == !no_av || !qdir == !no_quarantine || optind >= argc ||
        (stream && optind + 1 != argc))
        usage();
    env_open(&e, dbdir, qdir, spool);
    if (no_cache && e.opts.av != NULL)
        mg_av_cache_limit(e.opts.av, 0);
    printf("INFO impl=mugaika clamav=%s signatures=%u\n", mg_av_version(),
           e.opts.av ? mg_av_signatures(e.opts.av) : 0);
    rc = stream ? run_stream(&e, argv[optind]) : run_corpus(&e, argc - optind, argv + optind);
    env_close(&e);
    return rc;
}
