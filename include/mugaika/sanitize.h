/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * NAME
 *	sanitize 3h
 * SUMMARY
 *	the sanitising pipeline: one message in, one rebuilt message out
 * SYNOPSIS
 *	struct mg_sanitize *s = mg_sanitize_new(&opts);
 *	while (input) mg_sanitize_feed(s, buf, len);
 *	switch (mg_sanitize_finish(s, &err)) {
 *	case MG_VERDICT_ACCEPT: mg_sanitize_write(s, fd, &err); ...
 *	}
 *	mg_sanitize_free(s);
 * DESCRIPTION
 *	The message is fed in chunks of any size to the push parser.
 *	Each leaf is transfer-decoded and spooled (memory for small parts,
 *	a file in spool_dir for large ones), then typed with libmagic,
 *	scanned by libclamav and given an action by the first matching
 *	rule. At finish the original is committed to the quarantine and
 *	a new message is built from scratch (GMime's writer): the safe
 *	header fields, decoded and re-encoded; a text/plain UTF-8 body
 *	made of a notice (when anything was converted, removed or held)
 *	and the text; attachments only as actions produced them. The
 *	rebuilt message is scanned again before it is released.
 *
 *	Nothing the parser did not understand reaches the output: opaque
 *	leaves (limits, broken structure) are dropped whatever the rules
 *	say, infected items are always dropped, and any error makes the
 *	verdict TEMPFAIL or INTERNAL, never ACCEPT.
 */
#ifndef MUGAIKA_SANITIZE_H
#define MUGAIKA_SANITIZE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <glib.h>
#include <json-glib/json-glib.h>

#include <mugaika/av.h>
#include <mugaika/cdr.h>
#include <mugaika/detect.h>
#include <mugaika/html.h>
#include <mugaika/mime.h>
#include <mugaika/quarantine.h>
#include <mugaika/rules.h>

struct mg_sanitize_opts {
    struct mg_rules *rules;           /* required (a reference is taken) */
    struct mg_av *av;                 /* NULL: no scanning (tests of other stages only) */
    struct mg_quarantine *quarantine; /* NULL: nothing kept (tests only; no id) */
    struct mg_detect *detect;         /* required; one per thread */
    const char *lang;                 /* "ja" (default) or "en" */
    const char *sender;               /* envelope sender, or NULL: From */
    const char *const *recipients;    /* envelope recipients, or NULL: To and Cc */
    const char *spool_dir;            /* NULL: g_get_tmp_dir() */
    struct mg_mime_limits limits;
    size_t spool_memory;    /* bytes of part content held in memory (8 MiB) */
    int64_t html_budget_us; /* per HTML part (2 s) */
    /* CDR workers and archives */
    struct mg_cdr_limits cdr; /* per worker run */
    unsigned archive_depth;   /* nested archives unpacked (5) */
    unsigned archive_members; /* members in all, per message (1000) */
    uint64_t archive_total;   /* expanded bytes in all, per message (200 MiB) */
    unsigned archive_ratio;   /* expanded:compressed, per member and overall (100) */
    int64_t cdr_budget_us;    /* wall clock for all the handlers of one message (120 s) */
    /* A release from quarantine (mugaika quarantine release): the
     * message is the original of item release_id (its id appears in
     * the notice; set quarantine to NULL: nothing is stored again), and
     * every encrypted archive a rule holds is unpacked with password
     * instead. Both NULL for a mail arriving. */
    const char *release_id;
    const char *password;
    /* A file rather than a mail (mugaika-watch): the message fed is one
     * made around the file, and the quarantine keeps the file itself,
     * which the caller feeds to this writer (begun on quarantine);
     * committed as kind "file" by finish, aborted by free. The
     * pipeline takes ownership. NULL for a mail. */
    struct mg_qwrite *file_qwrite;
    /* The message fed is one made around a dropped file (mugaika-watch),
     * with or without a quarantine: the notice speaks of "this file"
     * and of files, not of a mail and its attachments. false: a mail. */
    bool file;
};
void mg_sanitize_opts_default(struct mg_sanitize_opts *o);

/* GError domain of this module; the code is the enum mg_verdict. */
GQuark mg_sanitize_error_quark(void);
#define MG_SANITIZE_ERROR (mg_sanitize_error_quark())

enum mg_verdict {
    MG_VERDICT_ACCEPT,   /* a rebuilt message is ready (sanitised, or a notice) */
    MG_VERDICT_REJECT,   /* the policy refuses the message */
    MG_VERDICT_TEMPFAIL, /* try again later (AV engine, quarantine, spool I/O) */
    MG_VERDICT_INTERNAL, /* a bug or an impossible state */
};
const char *mg_verdict_name(enum mg_verdict v);

struct mg_sanitize;
struct mg_sanitize *mg_sanitize_new(const struct mg_sanitize_opts *o);
/* Never fails for bad input; errors are kept for finish. */
void mg_sanitize_feed(struct mg_sanitize *s, const char *buf, size_t len);
/* Decides, quarantines the original, builds the message. *err is set
 * for every verdict but ACCEPT (REJECT: the reason, for the SMTP reply). */
enum mg_verdict mg_sanitize_finish(struct mg_sanitize *s, GError **err);
/* Writes the rebuilt message (after ACCEPT). */
bool mg_sanitize_write(struct mg_sanitize *s, int fd, GError **err);
/* The rebuilt message's length, and up to len of its bytes from off
 * (after ACCEPT): for writers that need it in pieces (the milter).
 * Returns the number of bytes read (0 at the end), or -1 with *err. */
uint64_t mg_sanitize_length(const struct mg_sanitize *s);
ssize_t mg_sanitize_pread(struct mg_sanitize *s, uint64_t off, char *buf, size_t len, GError **err);
/* The quarantine id ("" without a quarantine), the X-Mugaika-Result
 * value; valid after finish. */
const char *mg_sanitize_quarantine_id(const struct mg_sanitize *s);
const char *mg_sanitize_result(const struct mg_sanitize *s);
/* The notice at the top of the rebuilt text, as staff read it ("" when
 * nothing was changed); valid after finish. */
const char *mg_sanitize_notice(const struct mg_sanitize *s);
/* Is the whole message held (only a notice is written)? After finish. */
bool mg_sanitize_held(const struct mg_sanitize *s);
/* The audit record (one JSON object; caller owns it); after finish. */
JsonNode *mg_sanitize_audit(const struct mg_sanitize *s);
/* Per-part records (path, types, flags, rule, action, reason) as a
 * JSON array, for inspect; after finish. Caller owns it. */
JsonNode *mg_sanitize_parts_json(const struct mg_sanitize *s);
struct mg_sanitize *mg_sanitize_free(struct mg_sanitize *s);

#endif
