/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * NAME
 *	mgw 3h
 * SUMMARY
 *	the handler side of the CDR workers (mugaika-worker, mugaika-pdf)
 * SYNOPSIS
 *	int handler(struct mgw *w);
 *
 *	mugaika-worker HANDLER [KEY=VALUE...] <item >records
 * DESCRIPTION
 *	A worker process runs one handler on one item and exits. The item
 *	is file descriptor 0, a regular (seekable) file positioned at 0.
 *	Results go to file descriptor 1 as records (below); diagnostics go
 *	to file descriptor 2, which the parent keeps (capped) for its log.
 *	Before the handler runs, mgw_sandbox() has applied rlimits and a
 *	seccomp filter: no network, no exec, no new files larger than
 *	zero bytes (RLIMIT_FSIZE), a CPU-seconds limit and an
 *	address-space limit. The parent adds a wall-clock deadline and
 *	kills the process when it passes.
 *
 *	A handler reads the input (mgw_input_fd, mgw_input_size), emits
 *	zero or more outputs (mgw_out_begin / mgw_out_write / mgw_out_end,
 *	or mgw_out_file for one in memory), records what it removed or
 *	found with mgw_note, and returns one of enum mgw_status. Anything
 *	but MGW_OK makes the parent drop (or hold, for MGW_ENCRYPTED) the
 *	item whatever was emitted: a handler may stop half-way.
 *
 *	Options come from the command line as KEY=VALUE (the rule's
 *	options and the limits the parent passes); mgw_option returns
 *	NULL for an absent key. "name" is the item's file name (UTF-8)
 *	when it has one. The option "password" (for an encrypted item the
 *	administrator releases) comes in the environment variable
 *	MGW_PASSWORD_ENV instead, never on the command line, where every
 *	user could read it; mgw_main moves it into the options and wipes
 *	it from the environment before the handler runs.
 *
 * RECORDS (fd 1)
 *	Each record is one tag byte, a 4-byte big-endian length, then
 *	that many bytes:
 *	  'O' JSON {"name": s|null, "type": s|null, "flags": [s...]}: an
 *	      output begins;
 *	  'D' bytes of the current output (at most MGW_DATA_MAX per record);
 *	  'E' (empty): the current output ends;
 *	  'N' JSON {"kind": s, "text": s}: a note (kind "removed",
 *	      "converted", "flag", "found", "macros", "decrypted",
 *	      "defect" or "info"; "macros" also flags the item as having
 *	      macros, "decrypted" marks it opened with the password);
 *	  'Z' JSON {"status": s, "reason": s|null}: the last record.
 *	A process that exits without a 'Z' record failed, whatever it wrote.
 */
#ifndef MUGAIKA_MGW_H
#define MUGAIKA_MGW_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <glib.h>

/* Defined in the AddressSanitizer build (gcc or clang): the sandbox
 * and the allocation limits differ there (sandbox.c, asan_options.c). */
#if defined(__SANITIZE_ADDRESS__)
#define MGW_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define MGW_ASAN 1
#endif
#endif

#define MGW_DATA_MAX (1u << 20)

enum mgw_status {
    MGW_OK,        /* the outputs are the safe form of the item */
    MGW_FAIL,      /* the item could not be made safe (unparsable, unsupported) */
    MGW_ENCRYPTED, /* a password is needed (the item is held) */
    MGW_LIMIT,     /* a limit was reached (size, count, ratio, depth, pixels) */
};
const char *mgw_status_name(enum mgw_status st);

/* Output flags, sent as strings in the 'O' record. */
enum {
    MGW_OUT_ENCRYPTED = 1u << 0,     /* this member is encrypted (no data follows) */
    MGW_OUT_NAME_MISMATCH = 1u << 1, /* zip: local and central names differ */
    MGW_OUT_NAME_CHANGED = 1u << 2,  /* the name was made safe (traversal, controls) */
};

struct mgw;
typedef enum mgw_status (*mgw_handler_fn)(struct mgw *w);

struct mgw_handler {
    const char *name;
    mgw_handler_fn fn;
};

/* The input item. */
int mgw_input_fd(const struct mgw *w);
uint64_t mgw_input_size(const struct mgw *w);
/* Reads the whole input into memory (NULL with a note when it is
 * larger than max or unreadable). Caller frees with g_free. */
unsigned char *mgw_input_read_all(struct mgw *w, uint64_t max, size_t *len);

/* The environment variable of the option "password" (the same name
 * as MG_CDR_PASSWORD_ENV of include/mugaika/cdr.h). */
#define MGW_PASSWORD_ENV "MUGAIKA_WORKER_PASSWORD"

/* Options (KEY=VALUE arguments). */
const char *mgw_option(const struct mgw *w, const char *key);
uint64_t mgw_option_u64(const struct mgw *w, const char *key, uint64_t def);
bool mgw_option_bool(const struct mgw *w, const char *key, bool def);

/* Outputs: one at a time. name and type may be NULL (the parent then
 * names and types it). Each returns false when the parent has gone
 * (the handler should then return MGW_FAIL). */
bool mgw_out_begin(struct mgw *w, const char *name, const char *type, unsigned flags);
bool mgw_out_write(struct mgw *w, const void *buf, size_t len);
bool mgw_out_end(struct mgw *w);
bool mgw_out_file(struct mgw *w, const char *name, const char *type, const void *buf, size_t len);

/* Whether the sandbox could apply Landlock: "applied", "unavailable
 * (...)" or "not applied" (before mgw_sandbox; mgw_run_unconfined). */
const char *mgw_landlock(void);

/* The name of a handler's text output: the item's name ("name") with
 * .txt instead of its extension; "document.txt" without one. Caller
 * frees. */
char *mgw_text_name(const struct mgw *w);

/* True for a character that never belongs in a file name shown to a
 * person: controls (C0, DEL, C1), format characters (bidi embeddings,
 * overrides and isolates, zero-width characters, U+061C, U+FEFF),
 * line and paragraph separators, surrogates. For the handlers that
 * name their outputs from an untrusted source (archive.c, tnef.c). */
bool mgw_name_char_bad(gunichar ch);
/* in (UTF-8) without those characters, backslashes turned into '/'
 * (both are path separators to a Windows client). Owned. */
char *mgw_name_clean(const char *in);

/* Notes for the notice and the audit record. */
void mgw_note(struct mgw *w, const char *kind, const char *fmt, ...) G_GNUC_PRINTF(3, 4);
/* The reason given with a status other than MGW_OK (last one wins). */
void mgw_reason(struct mgw *w, const char *fmt, ...) G_GNUC_PRINTF(2, 3);

/* Runs the program: argv[1] names a handler of the table; the rest are
 * options. Applies the sandbox, runs the handler, writes 'Z'. Returns
 * the process exit status (0 when a 'Z' record was written).
 * "--built-with" instead prints mgw_built_with and exits 0. */
int mgw_main(int argc, char **argv, const struct mgw_handler *table, size_t n);

/* Set by a program's main before mgw_main: "NAME SOURCE VERSION\n" for
 * each library archive linked in statically (src/worker/built-with), or
 * NULL when its libraries are shared. */
extern const char *mgw_built_with;

/* For the fuzz targets (tests/fuzz/fuzz_worker.c): runs fn on the regular
 * file at fd 0 with the KEY=VALUE options, without the sandbox (libFuzzer
 * needs its process); records go to fd 1 as usual. */
enum mgw_status mgw_run_unconfined(mgw_handler_fn fn, int nopts, char **opts);

/* sandbox.c: rlimits (cpu seconds, address-space bytes, open files;
 * 0 keeps the default) and the seccomp filter. */
bool mgw_sandbox(unsigned cpu_seconds, uint64_t as_bytes, unsigned nofile, GError **err);
/* true in the AddressSanitizer build: no RLIMIT_AS, ptrace allowed (sandbox.c) */
bool mgw_sandbox_asan(void);

#endif
