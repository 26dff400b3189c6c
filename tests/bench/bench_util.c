/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * NAME
 *	bench_util 3
 * SUMMARY
 *	corpus loading, timing and reporting shared by the benchmarks
 * SYNOPSIS
 *	#include "bench_util.h"
 * DESCRIPTION
 *	bench_corpus_load() reads whole files into malloc'd buffers before
 *	any timing starts, so file I/O is excluded from the corpus figures
 *	of both benchmarks alike. Directory arguments contribute their
 *	*.eml files in name order; the category of a file is the part of
 *	its name between the first '-' and ".eml" ("other" without one).
 *	bench_corpus_run() drives one benchmark over the corpus: the
 *	timing code is the same for both.
 *
 *	MB/s figures are input bytes (the encoded message) per second,
 *	with MB = 10^6 bytes, both per wall-clock second (mbps) and per
 *	second of process CPU time (cpu_mbps).
 * DIAGNOSTICS
 *	Errors are fatal: bench_die() prints "bench: ..." and exits 1.
 */
#include "bench_util.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

_Noreturn void bench_die(int status, const char *fmt, ...)
{
    va_list ap;

    fputs("bench: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    exit(status);
}

size_t bench_arg(const char *s, size_t max)
{
    char *end;
    unsigned long long v;

    errno = 0;
    v = strtoull(s, &end, 10);
    if (errno || end == s || *end || v < 1 || v > max)
        bench_die(2, "bad numeric argument: %s", s);
    return (size_t)v;
}

static void *xrealloc(void *p, size_t n)
{
    void *q = realloc(p, n ? n : 1);

    if (!q)
        bench_die(1, "out of memory (%zu bytes)", n);
    return q;
}

static char *xstrdup(const char *s)
{
    size_t n = strlen(s) + 1;

    return memcpy(xrealloc(NULL, n), s, n);
}

double bench_now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

double bench_cpu_now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

long bench_maxrss_kib(void)
{
    struct rusage ru;

    if (getrusage(RUSAGE_SELF, &ru) != 0)
        return -1;
    return ru.ru_maxrss;
}

uint64_t bench_fd_size(int fd, const char *path)
{
    struct stat st;

    if (fstat(fd, &st) != 0)
        bench_die(1, "%s: %s", path, strerror(errno));
    return (uint64_t)st.st_size;
}

static void category_of(const char *path, char *out, size_t size)
{
    const char *base = strrchr(path, '/');
    const char *dash, *dot;
    size_t n;

    base = base ? base + 1 : path;
    dash = strchr(base, '-');
    dot = strrchr(base, '.');
    if (!dash || !dot || dot <= dash + 1) {
        snprintf(out, size, "other");
        return;
    }
    n = (size_t)(dot - dash - 1);
    if (n >= size)
        n = size - 1;
    memcpy(out, dash + 1, n);
    out[n] = '\0';
}

static void load_file(struct bench_file *f)
{
    int fd = open(f->path, O_RDONLY);
    size_t done = 0;

    if (fd < 0)
        bench_die(1, "%s: %s", f->path, strerror(errno));
    f->len = (size_t)bench_fd_size(fd, f->path);
    f->data = xrealloc(NULL, f->len);
    while (done < f->len) {
        ssize_t n = read(fd, f->data + done, f->len - done);

        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            bench_die(1, "%s: short read", f->path);
        done += (size_t)n;
    }
    close(fd);
}

static void add_path(struct bench_corpus *c, size_t *cap, const char *path)
{
    struct bench_file *f;

    if (c->count == *cap) {
        *cap = *cap ? *cap * 2 : 256;
        c->files = xrealloc(c->files, *cap * sizeof *c->files);
    }
    f = &c->files[c->count++];
    memset(f, 0, sizeof *f);
    f->path = xstrdup(path);
    category_of(path, f->category, sizeof f->category);
}

static int cmp_path(const void *a, const void *b)
{
    const struct bench_file *x = a, *y = b;

    return strcmp(x->path, y->path);
}

static void add_dir(struct bench_corpus *c, size_t *cap, const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    size_t first = c->count;

    if (!d)
        bench_die(1, "%s: %s", dir, strerror(errno));
    while ((e = readdir(d)) != NULL) {
        size_t n = strlen(e->d_name);
        char *path;

        if (n < 5 || strcmp(e->d_name + n - 4, ".eml") != 0)
            continue;
        path = xrealloc(NULL, strlen(dir) + n + 2);
        snprintf(path, strlen(dir) + n + 2, "%s/%s", dir, e->d_name);
        add_path(c, cap, path);
        free(path);
    }
    closedir(d);
    qsort(c->files + first, c->count - first, sizeof *c->files, cmp_path);
}

/* Stable grouping by category, in order of first appearance. */
static void group_by_category(struct bench_corpus *c)
{
    struct bench_file *sorted = xrealloc(NULL, c->count * sizeof *sorted);
    size_t n = 0;

    for (size_t i = 0; i < c->count; i++) {
        bool seen = false;

        for (size_t k = 0; k < i && !seen; k++)
            seen = strcmp(c->files[k].category, c->files[i].category) == 0;
        if (seen)
            continue;
        for (size_t j = i; j < c->count; j++)
            if (strcmp(c->files[j].category, c->files[i].category) == 0)
                sorted[n++] = c->files[j];
    }
    free(c->files);
    c->files = sorted;
}

void bench_corpus_load(struct bench_corpus *c, int argc, char **argv)
{
    size_t cap = 0;

    memset(c, 0, sizeof *c);
    for (int i = 0; i < argc; i++) {
        struct stat st;

        if (stat(argv[i], &st) != 0)
            bench_die(1, "%s: %s", argv[i], strerror(errno));
        if (S_ISDIR(st.st_mode))
            add_dir(c, &cap, argv[i]);
        else
            add_path(c, &cap, argv[i]);
    }
    if (c->count == 0)
        bench_die(1, "no input files");
    for (size_t i = 0; i < c->count; i++) {
        load_file(&c->files[i]);
        c->bytes += c->files[i].len;
    }
    group_by_category(c);
}

void bench_corpus_fini(struct bench_corpus *c)
{
    for (size_t i = 0; i < c->count; i++) {
        free(c->files[i].path);
        free(c->files[i].data);
    }
    free(c->files);
    memset(c, 0, sizeof *c);
}

static struct bench_tally *category_tally(struct bench_totals *t, const char *name)
{
    size_t i;

    for (i = 0; i < t->ncat; i++)
        if (strcmp(t->cat[i].name, name) == 0)
            return &t->cat[i];
    if (t->ncat == BENCH_MAX_CATS)
        bench_die(1, "more than %d categories", BENCH_MAX_CATS);
    snprintf(t->cat[i].name, sizeof t->cat[i].name, "%s", name);
    t->ncat++;
    return &t->cat[i];
}

unsigned bench_corpus_run(const struct bench_corpus *c, unsigned passes, bench_parse_fn parse,
                          void *ctx, struct bench_totals *t)
{
    unsigned failures = 0;

    memset(t, 0, sizeof *t);
    snprintf(t->all.name, sizeof t->all.name, "all");
    for (unsigned pass = 0; pass < passes; pass++) {
        size_t i = 0;

        while (i < c->count) {
            struct bench_tally *cat = category_tally(t, c->files[i].category);
            double c0 = bench_cpu_now(), c1;
            size_t j;

            for (j = i; j < c->count && strcmp(c->files[j].category, cat->name) == 0; j++) {
                const struct bench_file *f = &c->files[j];
                struct bench_item item = {0};
                double t0, t1;
                bool ok;

                t0 = bench_now();
                ok = parse(f, ctx, &item);
                t1 = bench_now();
                if (!ok) {
                    fprintf(stderr, "bench: %s: parse failed\n", f->path);
                    failures++;
                }
                cat->files++;
                cat->bytes += f->len;
                cat->decoded += item.decoded;
                cat->leaves += item.leaves;
                cat->seconds += t1 - t0;
            }
            c1 = bench_cpu_now();
            cat->cpu_seconds += c1 - c0;
            i = j;
        }
    }
    for (size_t k = 0; k < t->ncat; k++) {
        const struct bench_tally *cat = &t->cat[k];

        t->all.files += cat->files;
        t->all.bytes += cat->bytes;
        t->all.decoded += cat->decoded;
        t->all.leaves += cat->leaves;
        t->all.seconds += cat->seconds;
        t->all.cpu_seconds += cat->cpu_seconds;
    }
    return failures;
}

static double mbps(uint64_t bytes, double seconds)
{
    return seconds > 0 ? (double)bytes / seconds / 1e6 : 0.0;
}

void bench_totals_print(const struct bench_totals *t, const char *impl, const char *extra)
{
    const struct bench_tally *a = &t->all;

    printf("RESULT impl=%s mode=corpus files=%llu bytes=%llu decoded=%llu leaves=%llu "
           "seconds=%.6f mbps=%.2f cpu_seconds=%.6f cpu_mbps=%.2f%s%s\n",
           impl, (unsigned long long)a->files, (unsigned long long)a->bytes,
           (unsigned long long)a->decoded, (unsigned long long)a->leaves, a->seconds,
           mbps(a->bytes, a->seconds), a->cpu_seconds, mbps(a->bytes, a->cpu_seconds),
           *extra ? " " : "", extra);
    for (size_t i = 0; i < t->ncat; i++) {
        const struct bench_tally *c = &t->cat[i];

        printf("CATEGORY impl=%s name=%s files=%llu bytes=%llu decoded=%llu leaves=%llu "
               "seconds=%.6f mbps=%.2f cpu_seconds=%.6f cpu_mbps=%.2f\n",
               impl, c->name, (unsigned long long)c->files, (unsigned long long)c->bytes,
               (unsigned long long)c->decoded, (unsigned long long)c->leaves, c->seconds,
               mbps(c->bytes, c->seconds), c->cpu_seconds, mbps(c->bytes, c->cpu_seconds));
    }
}

uint64_t bench_fold(uint64_t acc, const void *data, size_t len)
{
    const unsigned char *p = data;
    uint64_t a = 0, b = 0, c = 0, d = 0, w[4];
    size_t i = 0;

    for (; i + 32 <= len; i += 32) {
        memcpy(w, p + i, 32);
        a ^= w[0];
        b ^= w[1];
        c ^= w[2];
        d ^= w[3];
    }
    for (; i < len; i++)
        a = (a << 8 | a >> 56) ^ p[i];
    return (acc << 1 | acc >> 63) ^ a ^ b ^ c ^ d ^ len;
}
