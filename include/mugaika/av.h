/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * NAME
 *	av 3h
 * SUMMARY
 *	virus scanning with libclamav
 * DESCRIPTION
 *	One engine per process, compiled once from a database directory
 *	and shared by every thread (libclamav engines are thread-safe for
 *	scanning once compiled). Reference counted, so a reload can build
 *	a new engine aside and swap it in. Scans look inside archives and
 *	documents as libclamav does by default; size limits are raised so
 *	that nothing is skipped silently, and crossing one is an error,
 *	never a clean verdict.
 * DIAGNOSTICS
 *	GError domain MG_AV_ERROR: MG_AV_ERROR_NO_DATABASE (directory
 *	missing, unreadable or without signatures: a configuration error),
 *	MG_AV_ERROR_ENGINE (libclamav failed: a temporary failure).
 */
#ifndef MUGAIKA_AV_H
#define MUGAIKA_AV_H

#include <stddef.h>
#include <stdint.h>

#include <glib.h>

#define MG_AV_DEFAULT_DB "/var/lib/clamav"

GQuark mg_av_error_quark(void);
#define MG_AV_ERROR (mg_av_error_quark())
enum { MG_AV_ERROR_NO_DATABASE, MG_AV_ERROR_ENGINE };

enum mg_av_verdict {
    MG_AV_CLEAN,
    MG_AV_INFECTED,
    MG_AV_FAILED, /* scan failed (*err set): never treat as clean */
};

struct mg_av;

/* dbdir NULL: MG_AV_DEFAULT_DB. */
struct mg_av *mg_av_open(const char *dbdir, GError **err);
struct mg_av *mg_av_ref(struct mg_av *av);
void mg_av_unref(struct mg_av *av);

/* *virname (g_free) is set when INFECTED; *err when FAILED. */
enum mg_av_verdict mg_av_scan_buffer(struct mg_av *av, const void *buf, size_t len, char **virname,
                                     GError **err);
/* Scans the whole file behind fd from offset 0 (fd's offset is not used). */
enum mg_av_verdict mg_av_scan_fd(struct mg_av *av, int fd, char **virname, GError **err);
enum mg_av_verdict mg_av_scan_fd_flags(struct mg_av *av, int fd, unsigned flags, char **virname,
                                       GError **err);

/* Content that is not in one buffer or file: read through fn (up to
 * len bytes at off; returns the count, 0 at the end, -1 on error). */
typedef gssize (*mg_av_pread_fn)(void *handle, void *buf, size_t len, uint64_t off);
enum mg_av_verdict mg_av_scan_pread(struct mg_av *av, uint64_t size, mg_av_pread_fn fn,
                                    void *handle, char **virname, GError **err);

/* The same with flags: MG_AV_SCAN_SHALLOW leaves archives packed
 * (CL_SCAN_PARSE_ARCHIVE off) for a caller that unpacks them itself and
 * scans every member: libclamav would otherwise expand a bomb up to its
 * size limits first. The archive's own bytes are still matched. */
/* MG_AV_SCAN_NO_IMAGE_HASH: no perceptual hash of pictures
 * (CL_SCAN_PARSE_IMAGE_FUZZY_HASH off), for a second look at pictures
 * whose originals were hashed already: the hash survives re-encoding,
 * and computing it was a third of the scan time of a rebuilt message. */
/* MG_AV_SCAN_RECORD: every inner file (an entry of an archive or a
 * document, a stream of a PDF...) of 4 KiB or more that scans clean is
 * added to a struct mg_av_seen by its SHA-256; MG_AV_SCAN_SKIP_SEEN:
 * an inner file found there is not scanned again (the outer content
 * always is). For the scan of a handler's output after the scan of its
 * original: what the handler kept byte for byte was just found clean
 * with at least the same options. */
enum {
    MG_AV_SCAN_SHALLOW = 1u << 0,
    MG_AV_SCAN_NO_IMAGE_HASH = 1u << 1,
    MG_AV_SCAN_RECORD = 1u << 2,
    MG_AV_SCAN_SKIP_SEEN = 1u << 3,
};
struct mg_av_seen;
struct mg_av_seen *mg_av_seen_new(void);
void mg_av_seen_free(struct mg_av_seen *seen);
/* The scan that records is over (mg_av_seen_wait returns from then on). */
void mg_av_seen_close(struct mg_av_seen *seen);
void mg_av_seen_wait(struct mg_av_seen *seen);
unsigned mg_av_seen_count(struct mg_av_seen *seen);   /* inner files recorded */
unsigned mg_av_seen_skipped(struct mg_av_seen *seen); /* inner files skipped */
enum mg_av_verdict mg_av_scan_buffer_flags(struct mg_av *av, const void *buf, size_t len,
                                           unsigned flags, char **virname, GError **err);
enum mg_av_verdict mg_av_scan_pread_flags(struct mg_av *av, uint64_t size, mg_av_pread_fn fn,
                                          void *handle, unsigned flags, char **virname,
                                          GError **err);
/* The same with a set of inner files (MG_AV_SCAN_RECORD, _SKIP_SEEN). */
enum mg_av_verdict mg_av_scan_buffer_seen(struct mg_av *av, const void *buf, size_t len,
                                          unsigned flags, struct mg_av_seen *seen, char **virname,
                                          GError **err);
enum mg_av_verdict mg_av_scan_pread_seen(struct mg_av *av, uint64_t size, mg_av_pread_fn fn,
                                         void *handle, unsigned flags, struct mg_av_seen *seen,
                                         char **virname, GError **err);

unsigned mg_av_signatures(const struct mg_av *av);
/* Scans answered by the engine's memory of clean contents (see
 * src/av/av.c, CLEAN RESULTS REMEMBERED). */
guint mg_av_cache_hits(struct mg_av *av);
/* How many clean contents it keeps (default 16384; 0: none). */
void mg_av_cache_limit(struct mg_av *av, guint entries);
/* Whether scans compute libclamav's perceptual hash of pictures: only
 * when the database has image fuzzy hash signatures (a "fuzzy_img#"
 * subsignature in any of its files, containers inflated); a file that
 * cannot be read to its end counts as having some. */
gboolean mg_av_image_hash(const struct mg_av *av);
gboolean mg_av_dir_has_image_sigs(const char *dbdir);
/* libclamav version string (static). */
const char *mg_av_version(void);

#endif
