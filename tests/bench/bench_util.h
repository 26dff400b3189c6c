/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * NAME
 *	bench_util 3h
 * SUMMARY
 *	corpus loading, timing and reporting shared by the benchmarks
 * DESCRIPTION
 *	Plain POSIX, no GLib, so that both benchmarks carry exactly the
 *	same harness. Every report line is "KIND key=value ...", parsed
 *	by tests/bench/run.
 */
#ifndef BENCH_UTIL_H
#define BENCH_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define BENCH_CHUNK    (64 * 1024) /* feed/read size, like an MTA's buffer */
#define BENCH_MAX_CATS 16

struct bench_file {
    char *path;          /* owned */
    char category[32];   /* "plain" from ".../00012-plain.eml" */
    unsigned char *data; /* owned (malloc) */
    size_t len;
};

struct bench_corpus {
    struct bench_file *files; /* owned; grouped by category, in path order within one */
    size_t count;
    uint64_t bytes;
};

/* What one message gave: filled in by a struct bench_ops parse. */
struct bench_item {
    uint64_t decoded; /* transfer-decoded bytes */
    uint64_t leaves;
};

/* Parses and decodes one in-memory message; false on failure. */
typedef bool (*bench_parse_fn)(const struct bench_file *f, void *ctx, struct bench_item *out);

/* Per-category and total figures of one pass over a corpus. */
struct bench_tally {
    char name[32];
    uint64_t files;
    uint64_t bytes;   /* input (encoded) bytes */
    uint64_t decoded; /* transfer-decoded bytes delivered to the sink */
    uint64_t leaves;
    double seconds;     /* wall clock */
    double cpu_seconds; /* CPU time of the process */
};

struct bench_totals {
    struct bench_tally all;
    struct bench_tally cat[BENCH_MAX_CATS];
    size_t ncat;
};

/* Loads every *.eml below each directory argument (not recursive) and
 * every file argument, into memory, then groups the files by category
 * (stable). Exits with a message on error. */
void bench_corpus_load(struct bench_corpus *c, int argc, char **argv);
void bench_corpus_fini(struct bench_corpus *c);

/* Monotonic clock, seconds. */
double bench_now(void);
/* CPU time (user + system) used by this process, seconds. Less
 * disturbed than the wall clock when other processes share the CPUs. */
double bench_cpu_now(void);
/* Peak resident set size of this process so far, KiB (ru_maxrss). */
long bench_maxrss_kib(void);
/* Size of an open file; exits on error. */
uint64_t bench_fd_size(int fd, const char *path);

/* Runs parse over every file of c, passes times, into t (zeroed
 * first). Each message is timed alone on the wall clock (vDSO, cheap);
 * CPU time is read once per run of a category, so the clock costs no
 * measurable time per message. Returns the number of failures (each
 * reported on stderr). */
unsigned bench_corpus_run(const struct bench_corpus *c, unsigned passes, bench_parse_fn parse,
                          void *ctx, struct bench_totals *t);
/* Prints "RESULT impl=... mode=corpus ..." then one "CATEGORY" line
 * per category. extra is appended to the RESULT line (may be ""). */
void bench_totals_print(const struct bench_totals *t, const char *impl, const char *extra);

/* Word-wise XOR fold of a span into acc: cheap, but touches every byte. */
uint64_t bench_fold(uint64_t acc, const void *data, size_t len);

/* Parses a decimal argument in [1, max]; exits 2 otherwise. */
size_t bench_arg(const char *s, size_t max);

/* Prints a message and exits with status 2 (usage) or 1 (failure). */
_Noreturn void bench_die(int status, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
