/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * NAME
 *	wstatus 3h
 * SUMMARY
 *	mugaika-watch's status: counters, per-user daily quota, last
 *	errors, and STATE/status.json
 * SYNOPSIS
 *	#include <mugaika/wstatus.h>
 *
 *	s = mg_wstatus_new(workers);
 *	mg_wstatus_load(s, state_fd, now, &err);    at start; err: a warning
 *	...
 *	if (mg_wstatus_quota_take(s, pair, user, size, max_files, max_bytes, now))
 *	    take the file
 *	else
 *	    mg_wstatus_over_quota_add(s, pair, user, name, size);
 *	mg_wstatus_record(s, pair, user, name, outcome, size, why, now);
 *	mg_wstatus_set_queue(s, n); mg_wstatus_set_in_progress(s, n);
 *	mg_wstatus_write(s, state_fd, now, &err);   every second
 *	...
 *	mg_wstatus_set_running(s, false);
 *	mg_wstatus_write(s, state_fd, now, &err);   at exit
 *	s = mg_wstatus_free(s);
 * DESCRIPTION
 *	The daemon's status, kept in memory, updated by any thread, and
 *	written to STATE/status.json, which `mugaika watch status` shows.
 *	Every function may be called from several threads at once (one
 *	mutex guards the counters; a second one orders the writes of the
 *	file). now is always wall-clock seconds since the epoch (UTC), as
 *	time(2) gives; it is a parameter so that tests can move time.
 *
 *	Names. pair is the [watch NAME] of the pair; user the IN/<user>/
 *	folder's name, "" for files dropped directly in IN; name a file
 *	name. They are bytes, not necessarily UTF-8, and are kept as
 *	given (see the JSON below). NULL is taken as "".
 *
 *	mg_wstatus_new returns an empty status owned by the caller:
 *	running, pid getpid(), started now (wall clock), workers as
 *	given, queue and in progress 0. mg_wstatus_free frees it (NULL is
 *	fine) and returns NULL.
 *
 *	mg_wstatus_record counts one item's outcome for (pair, user):
 *	MG_WSTATUS_DONE also adds bytes (the input's size) to the
 *	pair/user's bytes. REFUSED, FAILED and RETRY also enter the ring
 *	of the last MG_WSTATUS_ERRORS errors with now, name and reason
 *	(NULL: ""; invalid UTF-8 is replaced); when the ring already holds
 *	an error with the same pair, user, name, outcome and reason, that
 *	one becomes the newest, with its time set to now and its count
 *	raised, so a file retried again and again takes one entry.
 *
 *	mg_wstatus_set_queue and mg_wstatus_set_in_progress set the
 *	number of files taken and waiting for a worker, and the number
 *	being sanitised. mg_wstatus_set_running(s, false) before the last
 *	write at exit marks the file as written by a daemon that stopped.
 *
 *	Quota. mg_wstatus_quota_take counts one file of bytes for (pair,
 *	user) in the UTC day of now and returns true, unless taking it
 *	would exceed a non-zero limit: more than max_files files, or more
 *	than max_bytes bytes, that day; then it counts nothing and
 *	returns false (a file larger than max_bytes is never taken). 0
 *	means no limit. The day rolls over at 00:00 UTC: the first call
 *	of a new day starts from zero. The limits given are remembered
 *	for display. mg_wstatus_quota_give_back uncounts a file taken
 *	earlier the same UTC day (for a file that stays in IN to be taken
 *	again: RETRY); it does nothing on another day and never goes
 *	below zero.
 *
 *	The over-quota list is for display: at the start of each scan
 *	the daemon calls mg_wstatus_over_quota_clear, then
 *	mg_wstatus_over_quota_add once per file it left in IN because of
 *	the quota. A write between the two shows the list half built:
 *	call them from the thread that writes the file, or accept that.
 *
 *	mg_wstatus_write writes the status as JSON to "status.json" in
 *	the directory state_fd: to "status.json.tmp" (mode 0640,
 *	O_NOFOLLOW), fsync, rename over "status.json", fsync of the
 *	directory. "updated" is now. Readers see the old or the new file,
 *	whole. mg_wstatus_to_json returns the same text (g_free).
 *
 *	mg_wstatus_load reads "status.json" in state_fd, once at start,
 *	before anything is recorded. It adds the file's cumulative
 *	counters (done, refused, failed, retry, bytes) and keeps its
 *	last errors; when the file's "day" is the UTC day of now it also
 *	reloads that day's quota counters (and the limits last seen), so
 *	a restart does not reset a user's quota. pid, started, queue, in
 *	progress and the over-quota lists are not taken. A missing file
 *	returns true. A file that cannot be read or does not parse (not
 *	JSON, another version, a member of the wrong type, a negative
 *	count) returns false and err, and leaves s as it was: the daemon
 *	logs a warning and starts anyway (its next write replaces the
 *	file).
 *
 *	mg_wstatus_counts fills *out with the counters of (pair, user),
 *	or their sums over every pair and user when pair is NULL; today
 *	counts are those of the UTC day of now (0 when the last take was
 *	another day). For the daemon's log and for tests.
 * JSON
 *	status.json is one object (json-glib, indented). Members:
 *
 *	  version      1
 *	  pid          the daemon's process id
 *	  started      when the daemon started (seconds since the epoch)
 *	  updated      when this file was written (seconds)
 *	  running      true; false when written by a daemon at exit
 *	  day          "YYYY-MM-DD", the UTC day of updated: the day of
 *	               the today_* counters
 *	  workers      files sanitised at once
 *	  queue        files taken and waiting for a worker
 *	  in_progress  files being sanitised
 *	  users        array, one object per (pair, user) seen, sorted
 *	               by pair then user (byte order):
 *	    pair, user        strings ("" user: files dropped in IN)
 *	    done, refused, failed, retry   items per outcome (cumulative,
 *	                      across restarts)
 *	    bytes             input bytes of the done items (cumulative)
 *	    today_files, today_bytes   taken on day (the quota's count)
 *	    max_files, max_bytes       the limits last seen (0: none)
 *	    over_quota        array of {"name": S, "bytes": N}, files left
 *	                      in IN by the last scan (MG_WSTATUS_OVER_NAMES
 *	                      at most)
 *	    over_quota_files, over_quota_bytes   all of them, also the
 *	                      ones not listed
 *	  errors       array, oldest first, MG_WSTATUS_ERRORS at most:
 *	    time              seconds since the epoch (the latest)
 *	    pair, user, name  strings
 *	    outcome           "refused", "failed" or "retry"
 *	    reason            string
 *	    count             times it happened in a row (>= 1)
 *
 *	Names that are not valid UTF-8 (pair, user, name) are written as
 *	the text with each bad byte replaced by U+FFFD, for people, plus a
 *	member KEY_b64 (e.g. "user_b64") holding the base64 of the exact
 *	bytes, which a reader prefers. Numbers are JSON integers. Readers
 *	ignore members they do not know.
 * LIMITS
 *	Ring: MG_WSTATUS_ERRORS (20) errors. Over-quota names:
 *	MG_WSTATUS_OVER_NAMES (100) per pair/user. status.json read by
 *	load: 16 MiB at most.
 * DIAGNOSTICS
 *	GError domain MG_WSTATUS_ERROR, "PATH: OPERATION: REASON":
 *	MG_WSTATUS_ERROR_IO (a system call failed; for write, the old
 *	file stays), MG_WSTATUS_ERROR_CORRUPT (load: the file is not a
 *	status this version understands).
 */
#ifndef MUGAIKA_WSTATUS_H
#define MUGAIKA_WSTATUS_H

#include <stdbool.h>
#include <stdint.h>

#include <glib.h>

GQuark mg_wstatus_error_quark(void);
#define MG_WSTATUS_ERROR (mg_wstatus_error_quark())
enum mg_wstatus_error {
    MG_WSTATUS_ERROR_IO,
    MG_WSTATUS_ERROR_CORRUPT,
};

/* The file names inside the state directory, and the format version. */
#define MG_WSTATUS_NAME     "status.json"
#define MG_WSTATUS_TMP_NAME "status.json.tmp"
#define MG_WSTATUS_VERSION  1

#define MG_WSTATUS_ERRORS     20  /* the ring of last errors */
#define MG_WSTATUS_OVER_NAMES 100 /* over-quota names kept per pair/user */

enum mg_wstatus_outcome {
    MG_WSTATUS_DONE,
    MG_WSTATUS_REFUSED,
    MG_WSTATUS_FAILED,
    MG_WSTATUS_RETRY,
};

/* "done", "refused", "failed", "retry"; "?" otherwise. Static. */
const char *mg_wstatus_outcome_name(enum mg_wstatus_outcome o);

struct mg_wstatus;

struct mg_wstatus *mg_wstatus_new(unsigned workers);
struct mg_wstatus *mg_wstatus_free(struct mg_wstatus *s);

void mg_wstatus_record(struct mg_wstatus *s, const char *pair, const char *user, const char *name,
                       enum mg_wstatus_outcome outcome, uint64_t bytes, const char *reason,
                       int64_t now);
void mg_wstatus_set_queue(struct mg_wstatus *s, unsigned n);
void mg_wstatus_set_in_progress(struct mg_wstatus *s, unsigned n);
void mg_wstatus_set_running(struct mg_wstatus *s, bool running);

bool mg_wstatus_quota_take(struct mg_wstatus *s, const char *pair, const char *user, uint64_t bytes,
                           unsigned max_files, uint64_t max_bytes, int64_t now);
void mg_wstatus_quota_give_back(struct mg_wstatus *s, const char *pair, const char *user,
                                uint64_t bytes, int64_t now);
void mg_wstatus_over_quota_clear(struct mg_wstatus *s);
void mg_wstatus_over_quota_add(struct mg_wstatus *s, const char *pair, const char *user,
                               const char *name, uint64_t bytes);

char *mg_wstatus_to_json(struct mg_wstatus *s, int64_t now);
bool mg_wstatus_write(struct mg_wstatus *s, int state_fd, int64_t now, GError **err);
bool mg_wstatus_load(struct mg_wstatus *s, int state_fd, int64_t now, GError **err);

struct mg_wstatus_counts {
    uint64_t done, refused, failed, retry;
    uint64_t bytes;                    /* of the done items */
    uint64_t today_files, today_bytes; /* the quota's count, UTC day of now */
    uint64_t over_quota_files;         /* in the last scan */
};
/* Returns false (and zeroes *out) when (pair, user) was never seen;
 * pair NULL: the sums over all (true). */
bool mg_wstatus_counts(struct mg_wstatus *s, const char *pair, const char *user, int64_t now,
                       struct mg_wstatus_counts *out);

#endif
