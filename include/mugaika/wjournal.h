/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * NAME
 *	wjournal 3h
 * SUMMARY
 *	the transfer folder's journal: crash-safe progress of dropped files
 * SYNOPSIS
 *	#include <mugaika/wjournal.h>
 *
 *	j = mg_wjournal_open(state_dirfd, &err);    refuses a corrupt journal
 *	items = mg_wjournal_pending(j, &err);       finish or roll back each
 *	mg_wjournal_compact(j, &err);
 *	...
 *	mg_wjournal_begin(j, &id, &in, &err);       input seen
 *	mg_wjournal_commit(j, id, out_key, qid, tmp, final, n, &err);
 *	mg_wjournal_done(j, id, &err);              renamed, input removed
 *	...
 *	mg_wjournal_close(j);
 * DESCRIPTION
 *	mugaika-watch handles each dropped file in steps, and records each
 *	step in the journal before acting on it:
 *
 *	begin: the input was seen and is about to be processed. Nothing
 *	    is visible in the output folder yet.
 *	commit: the original is in the quarantine and every output is
 *	    written and fsynced under a hidden temporary name in the
 *	    output folder.
 *	done: every output has its final name and the input is removed.
 *	failed: processing gave up (the original is held, nothing
 *	    appears in the output folder; nothing is left to finish).
 *	abort: a begun item was rolled back at recovery (its temporary
 *	    files deleted; the input stays and is processed again under
 *	    a new item id).
 *
 *	After a crash, the daemon opens the journal and, for every item
 *	returned by mg_wjournal_pending, finishes it (COMMITTED: rename
 *	the temporaries that still exist, remove the input, then
 *	mg_wjournal_done) or rolls it back (BEGUN: delete its
 *	temporaries, then mg_wjournal_abort).
 *
 *	Every record is one line appended with one write(2) and made
 *	durable (fdatasync) before the call returns: when a call returns
 *	true the step is on disk. See src/watch/journal.c for the
 *	format.
 *
 *	mg_wjournal_open opens (creating, mode 0600) the file "journal"
 *	in the directory state_dirfd (duplicated: the caller keeps its
 *	own descriptor). One process per state directory: the journal is
 *	locked (flock LOCK_EX|LOCK_NB) and a second open fails with
 *	MG_WJOURNAL_ERROR_LOCKED until the first is closed. Open reads
 *	the whole journal: a torn last line (a crash in the middle of a
 *	write) is cut off the file and counted (mg_wjournal_torn); any
 *	other bad line fails with MG_WJOURNAL_ERROR_CORRUPT naming the
 *	line: the daemon must not start on a journal it cannot trust. A
 *	"journal.new" left by a crash during compaction is removed.
 *	Returns a journal owned by the caller (mg_wjournal_close), or
 *	NULL and err.
 *
 *	mg_wjournal_begin records a new item described by in (the
 *	strings are copied; every field is kept exactly: names are
 *	bytes, not necessarily UTF-8). The journal assigns the item id
 *	(*item_id): one more than the highest id it has ever recorded,
 *	across restarts and compactions; the first is 1.
 *
 *	mg_wjournal_commit records that item_id (BEGUN) is committed:
 *	out_key names the output folder, quarantine_id the original's
 *	quarantine id (UTF-8), and tmp_names[i] is the temporary name
 *	of the output whose final name is final_names[i], for i < n (n
 *	may be 0; the arrays may then be NULL).
 *
 *	mg_wjournal_done closes a COMMITTED item. mg_wjournal_failed
 *	closes a BEGUN or COMMITTED item; reason is free text (invalid
 *	UTF-8 is replaced). mg_wjournal_abort closes a BEGUN item.
 *
 *	mg_wjournal_pending returns a new array (g_ptr_array_unref; it
 *	frees its elements) of struct mg_wjournal_item *, one per item
 *	that is BEGUN or COMMITTED, in increasing id order, each a copy
 *	owned by the array. It reads no file: the state was read at
 *	open and is kept up to date by each record.
 *
 *	mg_wjournal_compact rewrites the journal with only what the
 *	pending items need (and the next id): "journal.new" is written,
 *	fsynced, locked and renamed over "journal", then the directory
 *	is fsynced. A crash at any point leaves either the old or the
 *	new journal, both complete. Call it after recovery and when
 *	mg_wjournal_size passes MG_WJOURNAL_COMPACT_SIZE.
 *
 *	mg_wjournal_size returns the journal's size in bytes;
 *	mg_wjournal_broken whether a failed write or fdatasync made it
 *	refuse every record (only closing and opening it again helps);
 *	mg_wjournal_torn the number of torn lines cut off at open (0 or
 *	1), for the daemon's log.
 *
 *	mg_wjournal_close closes and unlocks (NULL is fine).
 *
 *	Thread safety: every function may be called from several
 *	threads on one journal (a mutex orders the records; each call
 *	holds it across its write and fdatasync).
 * DIAGNOSTICS
 *	GError domain MG_WJOURNAL_ERROR; messages read "PATH: OPERATION:
 *	REASON" (PATH the journal's path, from /proc/self/fd when
 *	readable). Codes:
 *	MG_WJOURNAL_ERROR_IO: a system call failed (disk full, ...);
 *	MG_WJOURNAL_ERROR_LOCKED: another process holds the journal;
 *	MG_WJOURNAL_ERROR_CORRUPT: a bad line before the last, or a
 *	whole line that makes no sense ("line N: ...");
 *	MG_WJOURNAL_ERROR_STATE: a call that does not fit the item's
 *	state (unknown id, done before commit, ...) or a NULL name:
 *	the record is not written;
 *	MG_WJOURNAL_ERROR_BROKEN: an earlier write or fdatasync failed
 *	and its outcome on disk is unknown: every later record is
 *	refused; close, and open again (which reads what is on disk).
 */
#ifndef MUGAIKA_WJOURNAL_H
#define MUGAIKA_WJOURNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <glib.h>

GQuark mg_wjournal_error_quark(void);
#define MG_WJOURNAL_ERROR (mg_wjournal_error_quark())
enum mg_wjournal_error {
    MG_WJOURNAL_ERROR_IO,
    MG_WJOURNAL_ERROR_LOCKED,
    MG_WJOURNAL_ERROR_CORRUPT,
    MG_WJOURNAL_ERROR_STATE,
    MG_WJOURNAL_ERROR_BROKEN,
};

/* Suggested size at which the daemon compacts (1 MiB). */
#define MG_WJOURNAL_COMPACT_SIZE (1u << 20)

/* The file names inside the state directory. */
#define MG_WJOURNAL_NAME     "journal"
#define MG_WJOURNAL_NEW_NAME "journal.new"

/* A dropped file as begin records it. Strings are borrowed for the call. */
struct mg_wjournal_input {
    const char *in_key; /* the input folder, e.g. "pair/user" (bytes) */
    const char *name;   /* the file name as found in it (bytes) */
    uint64_t dev;
    uint64_t ino;
    uint64_t size;
    int64_t mtime_ns; /* st_mtim as nanoseconds since the epoch */
};

enum mg_wjournal_state {
    MG_WJOURNAL_BEGUN,
    MG_WJOURNAL_COMMITTED,
};

/* A pending item, as mg_wjournal_pending returns it: every string is
 * owned by the item (mg_wjournal_item_free). */
struct mg_wjournal_item {
    uint64_t id;
    enum mg_wjournal_state state;
    int64_t begin_time; /* wall clock, seconds since the epoch */
    char *in_key;
    char *name;
    uint64_t dev;
    uint64_t ino;
    uint64_t size;
    int64_t mtime_ns;
    /* COMMITTED only (NULL, 0 otherwise): */
    int64_t commit_time;
    char *out_key;
    char *quarantine_id;
    size_t n_outputs;
    char **tmp_names;   /* n_outputs entries, then NULL */
    char **final_names; /* n_outputs entries, then NULL */
};
void mg_wjournal_item_free(struct mg_wjournal_item *item);

struct mg_wjournal;

struct mg_wjournal *mg_wjournal_open(int state_dirfd, GError **err);
void mg_wjournal_close(struct mg_wjournal *j);

bool mg_wjournal_begin(struct mg_wjournal *j, uint64_t *item_id, const struct mg_wjournal_input *in,
                       GError **err);
bool mg_wjournal_commit(struct mg_wjournal *j, uint64_t item_id, const char *out_key,
                        const char *quarantine_id, const char *const *tmp_names,
                        const char *const *final_names, size_t n, GError **err);
bool mg_wjournal_done(struct mg_wjournal *j, uint64_t item_id, GError **err);
bool mg_wjournal_failed(struct mg_wjournal *j, uint64_t item_id, const char *reason, GError **err);
bool mg_wjournal_abort(struct mg_wjournal *j, uint64_t item_id, GError **err);

GPtrArray *mg_wjournal_pending(struct mg_wjournal *j, GError **err);
bool mg_wjournal_compact(struct mg_wjournal *j, GError **err);
uint64_t mg_wjournal_size(struct mg_wjournal *j);
bool mg_wjournal_broken(struct mg_wjournal *j);
unsigned mg_wjournal_torn(struct mg_wjournal *j);

#endif
