/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * NAME
 *	inspect 3h
 * SUMMARY
 *	what the parser understood of a message, as a part list or JSON
 * DESCRIPTION
 *	Drives the push parser over a message and records, per entity,
 *	the part record of ../shared/DESIGN.md section 4: path, leaf,
 *	content_type, charset, transfer_encoding, disposition, filename,
 *	size and sha256 of the transfer-decoded bytes, detected_type
 *	(libmagic), defects. Memory: one record per part (the part count
 *	is bounded by the parser's limits) plus the sniff buffer of the
 *	open leaf; bodies are hashed as they stream by.
 */
#ifndef MUGAIKA_INSPECT_H
#define MUGAIKA_INSPECT_H

#include <stdbool.h>
#include <stddef.h>

#include <glib.h>
#include <json-glib/json-glib.h>

#include <mugaika/detect.h>
#include <mugaika/mime.h>

struct mg_inspect_opts {
    struct mg_mime_limits limits;
    struct mg_detect *detect; /* borrowed; NULL: no detected_type */
    bool text;                /* keep the UTF-8 text of text leaves ("text") */
    size_t text_max;          /* cap per part for "text" (default 16 MiB) */
    bool events;              /* keep the event log (mg_inspect_events) */
};
void mg_inspect_opts_default(struct mg_inspect_opts *o);

struct mg_inspect;
struct mg_inspect *mg_inspect_new(const struct mg_inspect_opts *o);
enum mg_status mg_inspect_feed(struct mg_inspect *in, const char *buf, size_t len);
enum mg_status mg_inspect_finish(struct mg_inspect *in);
/* The JSON object (call after finish). Owned by the caller. */
JsonNode *mg_inspect_json(struct mg_inspect *in);
/* Human-readable tree appended to out (call after finish). */
void mg_inspect_tree(struct mg_inspect *in, GString *out);
/* A stable text log of every event (for tests): bodies are reported
 * at part end as length + sha256, so chunking cannot change it. */
const char *mg_inspect_events(struct mg_inspect *in);
struct mg_inspect *mg_inspect_free(struct mg_inspect *in);

#endif
