/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * NAME
 *	bench_gmime 1
 * SUMMARY
 *	parse + transfer-decode throughput of GMime 3, for comparison
 * SYNOPSIS
 *	bench_gmime [-p passes] file-or-directory...
 *	bench_gmime -s file
 * DESCRIPTION
 *	The same work as bench_mugaika, done the usual GMime way. Corpus
 *	mode loads every message into a GByteArray first (not timed),
 *	then, for each message: a GMimeStreamMem over that array (no
 *	copy), g_mime_parser_construct_message() with a persistent stream,
 *	a walk over every leaf (GMimePart), descending into multiparts and
 *	into the message of every message/rfc822 part, and for each leaf
 *	g_mime_data_wrapper_write_to_stream() of its content, which
 *	transfer-decodes it, into one GMimeStreamNull (newline counting
 *	off). Only that sequence, and the unrefs, is timed (by
 *	bench_corpus_run(), as for bench_mugaika). -p repeats the whole
 *	corpus (default 1).
 *
 *	Stream mode (-s) parses one file through a GMimeStreamFs
 *	(persistent: parts refer back to the file, nothing is buffered),
 *	decodes every leaf to the null stream, and also reports the peak
 *	resident set size (ru_maxrss) of the process.
 *
 *	Output: as bench_mugaika.
 * DIAGNOSTICS
 *	Exit 1 if GMime fails to parse any message, 2 on usage.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <gmime/gmime.h>

#include "bench_util.h"

struct walk {
    GMimeStream *null;
    uint64_t leaves;
    uint64_t decoded;
};

/* Decodes every leaf below obj into w->null. */
static void walk_object(GMimeObject *obj, struct walk *w)
{
    if (GMIME_IS_MULTIPART(obj)) {
        GMimeMultipart *mp = (GMimeMultipart *)obj;
        int n = g_mime_multipart_get_count(mp);

        for (int i = 0; i < n; i++)
            walk_object(g_mime_multipart_get_part(mp, i), w);
    } else if (GMIME_IS_MESSAGE_PART(obj)) {
        GMimeMessage *m = g_mime_message_part_get_message((GMimeMessagePart *)obj);
        GMimeObject *body = m ? g_mime_message_get_mime_part(m) : NULL;

        if (body)
            walk_object(body, w);
    } else if (GMIME_IS_PART(obj)) {
        GMimeDataWrapper *content = g_mime_part_get_content((GMimePart *)obj);

        w->leaves++;
        if (content) {
            ssize_t n = g_mime_data_wrapper_write_to_stream(content, w->null);

            if (n > 0)
                w->decoded += (uint64_t)n;
        }
    }
}

/* Parses the message in stream and decodes every leaf; false if GMime
 * could not construct a message. */
static bool parse_stream(GMimeStream *stream, struct walk *w)
{
    GMimeParser *parser = g_mime_parser_new_with_stream(stream);
    GMimeMessage *msg;
    GMimeObject *body;

    g_mime_parser_set_persist_stream(parser, TRUE);
    msg = g_mime_parser_construct_message(parser, NULL);
    g_object_unref(parser);
    if (!msg)
        return false;
    body = g_mime_message_get_mime_part(msg);
    if (body)
        walk_object(body, w);
    g_object_unref(msg);
    return true;
}

static GMimeStream *null_stream(void)
{
    GMimeStream *null = g_mime_stream_null_new();

    g_mime_stream_null_set_count_newlines((GMimeStreamNull *)null, FALSE);
    return null;
}

struct corpus_ctx {
    GByteArray **arrays; /* the messages, index as in the corpus */
    const struct bench_file *first;
    GMimeStream *null; /* one sink for the whole run */
};

static bool parse_file(const struct bench_file *f, void *arg, struct bench_item *out)
{
    struct corpus_ctx *ctx = arg;
    struct walk w = {.null = ctx->null};
    GMimeStream *stream;
    bool ok;

    stream = g_mime_stream_mem_new_with_byte_array(ctx->arrays[f - ctx->first]);
    g_mime_stream_mem_set_owner((GMimeStreamMem *)stream, FALSE);
    ok = parse_stream(stream, &w);
    g_object_unref(stream);
    out->decoded = w.decoded;
    out->leaves = w.leaves;
    return ok;
}

static int run_corpus(int argc, char **argv, unsigned passes)
{
    struct bench_corpus c;
    struct bench_totals t;
    struct corpus_ctx ctx;
    unsigned failures;
    char extra[64];

    bench_corpus_load(&c, argc, argv);
    ctx.first = c.files;
    ctx.null = null_stream();
    ctx.arrays = g_new(GByteArray *, c.count);
    for (size_t i = 0; i < c.count; i++) {
        struct bench_file *f = &c.files[i];

        ctx.arrays[i] = g_byte_array_sized_new((guint)f->len);
        g_byte_array_append(ctx.arrays[i], f->data, (guint)f->len);
        free(f->data);
        f->data = NULL;
    }
    failures = bench_corpus_run(&c, passes, parse_file, &ctx, &t);
    snprintf(extra, sizeof extra, "passes=%u failures=%u", passes, failures);
    bench_totals_print(&t, "gmime", extra);
    for (size_t i = 0; i < c.count; i++)
        g_byte_array_unref(ctx.arrays[i]);
    g_free(ctx.arrays);
    g_object_unref(ctx.null);
    bench_corpus_fini(&c);
    return failures ? 1 : 0;
}

static int run_stream(const char *path)
{
    long rss_start = bench_maxrss_kib();
    struct walk w = {.null = null_stream()};
    GMimeStream *stream;
    uint64_t bytes;
    double t0, t1, c0, c1;
    bool ok;
    int fd;

    fd = open(path, O_RDONLY);
    if (fd < 0)
        bench_die(1, "%s: %s", path, strerror(errno));
    bytes = bench_fd_size(fd, path);
    c0 = bench_cpu_now();
    t0 = bench_now();
    stream = g_mime_stream_fs_new(fd); /* owns fd */
    ok = parse_stream(stream, &w);
    g_object_unref(stream);
    t1 = bench_now();
    c1 = bench_cpu_now();
    g_object_unref(w.null);
    if (!ok)
        fprintf(stderr, "bench_gmime: %s: no message\n", path);
    printf("RESULT impl=gmime mode=stream files=1 bytes=%llu decoded=%llu leaves=%llu "
           "seconds=%.6f mbps=%.2f cpu_seconds=%.6f cpu_mbps=%.2f failures=%d "
           "rss_start_kib=%ld rss_peak_kib=%ld\n",
           (unsigned long long)bytes, (unsigned long long)w.decoded, (unsigned long long)w.leaves,
           t1 - t0, (double)bytes / (t1 - t0) / 1e6, c1 - c0, (double)bytes / (c1 - c0) / 1e6, !ok,
           rss_start, bench_maxrss_kib());
    return !ok;
}

static _Noreturn void usage(void)
{
    bench_die(2, "usage: bench_gmime [-p passes] file-or-dir... | -s file");
}

int main(int argc, char **argv)
{
    unsigned passes = 1;
    int stream = 0, opt, rc;

    while ((opt = getopt(argc, argv, "p:s")) != -1) {
        switch (opt) {
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
    g_mime_init();
    if (stream)
        rc = run_stream(argv[optind]);
    else
        rc = run_corpus(argc - optind, argv + optind, passes);
    g_mime_shutdown();
    return rc;
}
