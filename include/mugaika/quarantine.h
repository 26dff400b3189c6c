/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * NAME
 *	quarantine 3h
 * SUMMARY
 *	where originals are kept: content-addressed files and a SQLite index
 * DESCRIPTION
 *	Layout of a quarantine directory:
 *	  objects/ab/abcdef...gz   the original, gzip, named by the SHA-256
 *	                          of the original bytes (stored once)
 *	  tmp/                    files being written
 *	  index.sqlite            one row per quarantined item
 *	An original is written as it streams in (compressed and hashed on
 *	the way), fsynced, renamed into objects/, its directory fsynced,
 *	and only then is the index row committed: when mg_qwrite_commit
 *	returns an id, the original is durable.
 *	Ids are 20 characters "YYYYMMDD-" plus 11 characters [0-9a-z],
 *	unique, safe to put in a header or a file name.
 *	A struct mg_quarantine may be shared by threads (one SQLite
 *	connection behind a mutex); several processes may open the same
 *	directory (SQLite's write lock orders them).
 * DIAGNOSTICS
 *	GError domain MG_QUARANTINE_ERROR: MG_QUARANTINE_ERROR_IO (disk
 *	full, permission, ...: a temporary failure),
 *	MG_QUARANTINE_ERROR_NOT_FOUND (no such id), MG_QUARANTINE_ERROR_CORRUPT
 *	(object missing or its hash does not match).
 */
#ifndef MUGAIKA_QUARANTINE_H
#define MUGAIKA_QUARANTINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <glib.h>

#define MG_QUARANTINE_DEFAULT_DIR "/var/lib/mugaika/quarantine"

GQuark mg_quarantine_error_quark(void);
#define MG_QUARANTINE_ERROR (mg_quarantine_error_quark())
enum { MG_QUARANTINE_ERROR_IO, MG_QUARANTINE_ERROR_NOT_FOUND, MG_QUARANTINE_ERROR_CORRUPT };

/* The index row of one item. Strings are UTF-8, any may be NULL. */
struct mg_qrecord {
    char id[32];
    int64_t time; /* seconds since the epoch (set by commit) */
    char *kind;   /* "message" or "file" */
    char *message_id;
    char *sender;
    char *recipients; /* comma-separated */
    char *subject;
    char *sha256;     /* of the original (set by commit) */
    uint64_t size;    /* of the original (set by commit) */
    char *result;     /* the X-Mugaika-Result summary */
    char *parts_json; /* JSON array: per part path, type, sha256, rule, action */
};
void mg_qrecord_clear(struct mg_qrecord *r);

struct mg_quarantine;
struct mg_qwrite;

/* Creates dir (and its layout) when missing. */
struct mg_quarantine *mg_quarantine_open(const char *dir, GError **err);
/* Opens a quarantine that must already exist (dir and index.sqlite);
 * creates no directory. A missing one: MG_QUARANTINE_ERROR_NOT_FOUND.
 * For the read commands of the CLI. */
struct mg_quarantine *mg_quarantine_open_existing(const char *dir, GError **err);
void mg_quarantine_close(struct mg_quarantine *q);
const char *mg_quarantine_dir(const struct mg_quarantine *q);

struct mg_qwrite *mg_quarantine_write_begin(struct mg_quarantine *q, GError **err);
bool mg_qwrite_feed(struct mg_qwrite *w, const void *buf, size_t len, GError **err);
/* Makes the original durable and commits rec (its id, time, sha256 and
 * size are filled in). Frees w in every case. */
bool mg_qwrite_commit(struct mg_qwrite *w, struct mg_qrecord *rec, GError **err);
/* Forgets the write (removes the temporary file). */
void mg_qwrite_abort(struct mg_qwrite *w);

/* Records newest first; limit 0: all. Fills a GPtrArray of
 * struct mg_qrecord * whose free function is mg_qrecord_free (so
 * g_ptr_array_unref releases everything). */
bool mg_quarantine_list(struct mg_quarantine *q, unsigned limit, GPtrArray **out, GError **err);
bool mg_quarantine_get(struct mg_quarantine *q, const char *id, struct mg_qrecord *out,
                       GError **err);
/* Writes the original bytes (decompressed, hash verified) to fd.
 * The bytes are verified while they stream into fd: on
 * MG_QUARANTINE_ERROR_CORRUPT some bytes may already have been
 * written. Callers that must not show unverified bytes call
 * mg_quarantine_verify first or write to a temporary file. */
bool mg_quarantine_export(struct mg_quarantine *q, const char *id, int fd, GError **err);
/* Decompresses and checks size and SHA-256 without writing anything. */
bool mg_quarantine_verify(struct mg_quarantine *q, const char *id, GError **err);
/* Deletes rows older than days and objects no row refers to any more;
 * *removed counts rows. */
bool mg_quarantine_expire(struct mg_quarantine *q, unsigned days, unsigned *removed, GError **err);
/* Clears and frees a record allocated by mg_quarantine_list; NULL is fine. */
void mg_qrecord_free(struct mg_qrecord *r);

#endif
