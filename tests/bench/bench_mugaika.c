/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * NAME
 *	bench_mugaika 1
 * SUMMARY
 *	parse + transfer-decode throughput of the push MIME parser
 * SYNOPSIS
 *	bench_mugaika [-c chunk] [-p passes] file-or-directory...
 *	bench_mugaika -s [-c chunk] file
 * DESCRIPTION
 *	Corpus mode loads every message into memory first (not timed),
 *	then, for each message: mg_mime_new(), mg_mime_execute() over
 *	successive chunk-byte slices (default 64 KiB, like an MTA),
 *	mg_mime_finish(), mg_mime_free(). on_body XOR-folds every decoded
 *	span into a checksum (so no decoding work can be skipped) and
 *	counts its bytes; on_part_end counts leaves. Only that sequence is
 *	timed (wall clock per message, CPU time per run of a category: see
 *	bench_corpus_run()). Default limits (uuencode detection on). With
 *	-p, the whole corpus is processed that many times (default 1) and
 *	the figures summed.
 *
 *	Stream mode (-s) reads one file from disk in chunk-byte read(2)
 *	calls into one fixed buffer, feeding each to the parser, and also
 *	reports the peak resident set size (ru_maxrss) of the process.
 *
 *	Output: one "RESULT" line, plus one "CATEGORY" line per category
 *	in corpus mode (see bench_util.h).
 * DIAGNOSTICS
 *	Exit 1 if the parser returns an error for any message, 2 on usage.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <mugaika/mime.h>

#include "bench_util.h"

struct sink {
    uint64_t fold;
    uint64_t decoded;
    uint64_t leaves;
    uint64_t defects;
};

static int on_body(struct mg_mime *p, const struct mg_mime_part *part, const char *data, size_t len)
{
    struct sink *s = mg_mime_user(p);

    (void)part;
    s->decoded += len;
    s->fold = bench_fold(s->fold, data, len);
    return 0;
}

static int on_part_end(struct mg_mime *p, const struct mg_mime_part *part)
{
    struct sink *s = mg_mime_user(p);

    if (part->kind == MG_MIME_LEAF)
        s->leaves++;
    return 0;
}

static int on_defect(struct mg_mime *p, const struct mg_mime_part *part, enum mg_mime_defect d,
                     uint64_t offset)
{
    struct sink *s = mg_mime_user(p);

    (void)part;
    (void)d;
    (void)offset;
    s->defects++;
    return 0;
}

static const struct mg_mime_settings settings = {
    .on_body = on_body,
    .on_part_end = on_part_end,
    .on_defect = on_defect,
};

/* Parses one in-memory message; returns MG_OK or the parser's error. */
static enum mg_status parse_buffer(const unsigned char *buf, size_t len, size_t chunk,
                                   struct sink *s)
{
    struct mg_mime *p = mg_mime_new(&settings, NULL, s);
    enum mg_status st = MG_OK;

    for (size_t off = 0; off < len && st == MG_OK; off += chunk) {
        size_t n = len - off < chunk ? len - off : chunk;

        st = mg_mime_execute(p, (const char *)buf + off, n);
    }
    if (st == MG_OK)
        st = mg_mime_finish(p);
    mg_mime_free(p);
    return st;
}

struct corpus_ctx {
    size_t chunk;
    uint64_t fold;
    uint64_t defects;
    enum mg_status last;
};

static bool parse_file(const struct bench_file *f, void *arg, struct bench_item *out)
{
    struct corpus_ctx *ctx = arg;
    struct sink s = {0};
    enum mg_status st = parse_buffer(f->data, f->len, ctx->chunk, &s);

    out->decoded = s.decoded;
    out->leaves = s.leaves;
    ctx->fold = (ctx->fold << 1 | ctx->fold >> 63) ^ s.fold;
    ctx->defects += s.defects;
    if (st != MG_OK)
        ctx->last = st;
    return st == MG_OK;
}

static int run_corpus(int argc, char **argv, size_t chunk, unsigned passes)
{
    struct corpus_ctx ctx = {.chunk = chunk, .last = MG_OK};
    struct bench_corpus c;
    struct bench_totals t;
    unsigned failures;
    char extra[160];

    bench_corpus_load(&c, argc, argv);
    failures = bench_corpus_run(&c, passes, parse_file, &ctx, &t);
    if (failures)
        fprintf(stderr, "bench_mugaika: last error: %s\n", mg_status_str(ctx.last));
    snprintf(extra, sizeof extra, "passes=%u chunk=%zu defects=%llu failures=%u checksum=%016llx",
             passes, chunk, (unsigned long long)ctx.defects / passes, failures,
             (unsigned long long)ctx.fold);
    bench_totals_print(&t, "mugaika", extra);
    bench_corpus_fini(&c);
    return failures ? 1 : 0;
}

static int run_stream(const char *path, size_t chunk)
{
    long rss_start = bench_maxrss_kib();
    struct sink s = {0};
    enum mg_status st = MG_OK;
    uint64_t bytes = 0;
    struct mg_mime *p;
    double t0, t1, c0, c1;
    char *buf;
    int fd;

    buf = malloc(chunk);
    if (!buf)
        bench_die(1, "out of memory");
    fd = open(path, O_RDONLY);
    if (fd < 0)
        bench_die(1, "%s: %s", path, strerror(errno));
    c0 = bench_cpu_now();
    t0 = bench_now();
    p = mg_mime_new(&settings, NULL, &s);
    for (;;) {
        ssize_t n = read(fd, buf, chunk);

        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            bench_die(1, "%s: %s", path, strerror(errno));
        if (n == 0)
            break;
        bytes += (uint64_t)n;
        st = mg_mime_execute(p, buf, (size_t)n);
        if (st != MG_OK)
            break;
    }
    if (st == MG_OK)
        st = mg_mime_finish(p);
    mg_mime_free(p);
    t1 = bench_now();
    c1 = bench_cpu_now();
    close(fd);
    free(buf);
    if (st != MG_OK)
        fprintf(stderr, "bench_mugaika: %s: %s\n", path, mg_status_str(st));
    printf("RESULT impl=mugaika mode=stream files=1 bytes=%llu decoded=%llu leaves=%llu "
           "seconds=%.6f mbps=%.2f cpu_seconds=%.6f cpu_mbps=%.2f chunk=%zu defects=%llu "
           "failures=%d checksum=%016llx rss_start_kib=%ld rss_peak_kib=%ld\n",
           (unsigned long long)bytes, (unsigned long long)s.decoded, (unsigned long long)s.leaves,
           t1 - t0, (double)bytes / (t1 - t0) / 1e6, c1 - c0, (double)bytes / (c1 - c0) / 1e6,
           chunk, (unsigned long long)s.defects, st != MG_OK, (unsigned long long)s.fold, rss_start,
           bench_maxrss_kib());
    return st != MG_OK;
}

static _Noreturn void usage(void)
{
    bench_die(2, "usage: bench_mugaika [-c chunk] [-p passes] file-or-dir...\n"
                 "       bench_mugaika -s [-c chunk] file");
}

int main(int argc, char **argv)
{
    size_t chunk = BENCH_CHUNK;
    unsigned passes = 1;
    int stream = 0, opt;

    while ((opt = getopt(argc, argv, "c:p:s")) != -1) {
        switch (opt) {
        case 'c':
            chunk = bench_arg(optarg, 1u << 30);
            break;
        case 'p':
            passes = (unsigned)bench_arg(optarg, 1000);
            break;
        case 's':
            stream = 1;
            break;
        default:
            usage();
        }
    }
    if (optind >= argc || (stream && optind + 1 != argc))
        usage();
    if (stream)
        return run_stream(argv[optind], chunk);
    return run_corpus(argc - optind, argv + optind, chunk, passes);
}
