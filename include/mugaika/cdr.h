/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * NAME
 *	cdr 3h
 * SUMMARY
 *	run a CDR handler in a confined worker process
 * SYNOPSIS
 *	const struct mg_cdr_handler *h = mg_cdr_find(MG_ACTION_DISARM, "application/pdf");
 *	st = mg_cdr_run(h, opts, in_fd, &limits, &sink, user, &reason);
 * DESCRIPTION
 *	Third-party format code (libarchive, libxml2, qpdf, poppler, image
 *	codecs) never runs inside the daemon: mg_cdr_run starts the
 *	handler's executable (mugaika-worker, mugaika-flatten or mugaika-pdf) with the item
 *	as its standard input, reads its records (src/worker/mgw.h) and
 *	hands them to the sink as they arrive, and kills the process when
 *	the wall-clock deadline passes or an output limit is crossed. The
 *	worker confines itself (rlimits, seccomp) before it parses
 *	anything; the limits here tell it how.
 *
 *	The result is one of enum mg_cdr_status. Anything but MG_CDR_OK
 *	means the outputs must not be used (the sink may have seen some).
 *	MG_CDR_ERROR means the worker could not be started at all (a
 *	deployment fault, not the item's): callers fail the message
 *	temporarily rather than drop the item.
 */
#ifndef MUGAIKA_CDR_H
#define MUGAIKA_CDR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <glib.h>

#include <mugaika/rules.h>

struct mg_cdr_handler {
    const char *program; /* "mugaika-worker", "mugaika-flatten" or "mugaika-pdf" */
    const char *name;    /* handler name, argv[1] */
    enum mg_action action;
    const char *in_types;  /* ;-separated globs of the detected types it takes */
    const char *out_types; /* globs the detected type of each output must match */
};

/* The handler for an action on a detected type, or NULL when none. */
const struct mg_cdr_handler *mg_cdr_find(enum mg_action a, const char *detected);

/* Does type match one of the ;-separated globs? */
bool mg_cdr_type_in(const char *globs, const char *type);

/* Where the worker executables are: set once at start (NULL: the
 * default, see cdr.c). Checks that every program exists and can be
 * executed; the error names the missing one. */
bool mg_cdr_init(const char *dir, GError **err);
/* The path of a worker program (after mg_cdr_init). */
const char *mg_cdr_program_path(const char *program);

struct mg_cdr_limits {
    unsigned cpu_seconds;   /* RLIMIT_CPU of the worker (30) */
    uint64_t address_space; /* RLIMIT_AS of the worker (1 GiB) */
    int64_t deadline_us;    /* wall clock (60 s) */
    uint64_t max_output;    /* bytes in all outputs (200 MiB) */
    unsigned max_outputs;   /* number of outputs (1000) */
};
void mg_cdr_limits_default(struct mg_cdr_limits *l);

struct mg_cdr_sink {
    /* flags: MG_CDR_OUT_* */
    bool (*begin)(void *u, const char *name, const char *type, unsigned flags);
    bool (*data)(void *u, const void *buf, size_t len);
    bool (*end)(void *u);
    void (*note)(void *u, const char *kind, const char *text);
};
enum {
    MG_CDR_OUT_ENCRYPTED = 1u << 0,
    MG_CDR_OUT_NAME_MISMATCH = 1u << 1,
    MG_CDR_OUT_NAME_CHANGED = 1u << 2,
};

enum mg_cdr_status {
    MG_CDR_OK,
    MG_CDR_FAIL,      /* the handler could not make the item safe */
    MG_CDR_ENCRYPTED, /* a password is needed */
    MG_CDR_LIMIT,     /* a limit was reached (the handler's or ours) */
    MG_CDR_CRASH,     /* the worker died (signal, CPU limit, bad records) */
    MG_CDR_TIMEOUT,   /* the wall-clock deadline passed: killed */
    MG_CDR_ERROR,     /* the worker could not be started, or the sink failed */
};
const char *mg_cdr_status_name(enum mg_cdr_status st);

/* The environment variable that carries the option "password" to the
 * worker: mg_cdr_run never puts it on the command line, which every
 * user can read (/proc/PID/cmdline); the worker clears it at start. */
#define MG_CDR_PASSWORD_ENV "MUGAIKA_WORKER_PASSWORD"

/* opts: NULL-terminated KEY=VALUE strings for the handler (may be NULL);
 * "password=PW" goes to the worker in its environment (above).
 * *reason (caller frees) says why for every status but OK. */
enum mg_cdr_status mg_cdr_run(const struct mg_cdr_handler *h, const char *const *opts, int in_fd,
                              const struct mg_cdr_limits *lim, const struct mg_cdr_sink *sink,
                              void *u, char **reason);
/* The same, and the worker is killed (MG_CDR_ERROR) as soon as cancel_fd
 * (-1: none) becomes readable: a run made ahead that is not wanted. */
enum mg_cdr_status mg_cdr_run_cancel(const struct mg_cdr_handler *h, const char *const *opts,
                                     int in_fd, const struct mg_cdr_limits *lim,
                                     const struct mg_cdr_sink *sink, void *u, int cancel_fd,
                                     char **reason);

#endif
