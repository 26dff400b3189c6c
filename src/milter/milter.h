/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * NAME
 *	milter 3h
 * SUMMARY
 *	mugaika-milter's internal interfaces
 * DESCRIPTION
 *	policy.c: the immutable, reference-counted policy snapshot (rules
 *	+ ClamAV engine) that every message pins, and its reload.
 *	callbacks.c: the libmilter callbacks and the per-connection and
 *	per-message contexts. reply.c: what is made of a rebuilt message
 *	for the MTA (header fields, body in CRLF pieces) and the log
 *	escaping; pure functions, unit-tested. main.c: options,
 *	configuration, socket, privileges, signals.
 */
#ifndef MUGAIKA_MILTER_H
#define MUGAIKA_MILTER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <glib.h>

#include <mugaika/av.h>
#include <mugaika/config.h>
#include <mugaika/quarantine.h>
#include <mugaika/rules.h>
#include <mugaika/sanitize.h>

/* policy.c */
struct mg_policy {
    gatomicrefcount ref;
    struct mg_rules *rules;
    struct mg_av *av;
    unsigned generation; /* 1 for the first, +1 per successful reload */
};

/* Loads rules and the AV database. NULL with *err on failure; the
 * error code tells configuration (MG_POLICY_CONFIG) from a transient
 * failure (MG_POLICY_TEMPFAIL). */
enum { MG_POLICY_CONFIG, MG_POLICY_TEMPFAIL };
GQuark mg_policy_error_quark(void);
struct mg_policy *mg_policy_load(const char *rules_dir, const char *clamav_db, GError **err);
struct mg_policy *mg_policy_ref(struct mg_policy *p);
void mg_policy_unref(struct mg_policy *p);

/* The current snapshot: set once at start, swapped by a reload. */
void mg_policy_install(struct mg_policy *p); /* takes the reference */
struct mg_policy *mg_policy_pin(void);       /* a new reference */
/* Builds a new snapshot aside; on success swaps it in and returns
 * true; on failure keeps the current one and returns false with *err. */
bool mg_policy_reload(const char *rules_dir, const char *clamav_db, GError **err);
void mg_policy_shutdown(void);

/* reply.c */

/* One header field of the rebuilt message: name and the value as
 * written after the colon (leading space and folding kept, LF line
 * ends, no final line end). */
struct mg_field {
    char *name;
    char *value;
};

/* Splits a header block (the bytes before the first empty line, LF or
 * CRLF line ends) into fields. False when a line is not a field or a
 * continuation (the writer never makes one: a bug, so tempfail). */
bool mg_split_fields(const char *hdr, size_t len, GPtrArray *fields /* of mg_field */);
void mg_field_free(gpointer f);

/* Streams body bytes to CRLF line ends: every LF not preceded by CR
 * becomes CRLF. *cr carries "the last byte seen was CR" across calls.
 * out must hold 2 * len bytes; returns the bytes written. */
size_t mg_crlf(const char *in, size_t len, char *out, bool *cr);

/* Appends s to g for a log line: printable ASCII kept, '"', '\\' and
 * everything else as \xNN, capped at max input bytes ("..." after). */
void mg_log_escape(GString *g, const char *s, size_t max);

/* callbacks.c */
struct mg_milter_settings {
    struct mg_config cfg; /* effective, command line applied */
    struct mg_quarantine *quarantine;
};
extern struct mg_milter_settings mg_milter;
struct smfiDesc;
const struct smfiDesc *mg_milter_desc(void);
/* Messages between MAIL FROM and their end; shutdown waits for 0. */
unsigned mg_milter_in_flight(void);
/* From now on every new message gets 451 at MAIL FROM (stopping). */
void mg_milter_drain(void);

#endif
