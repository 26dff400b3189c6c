/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * NAME
 *	watch 3h
 * SUMMARY
 *	sanitise one file dropped into the transfer folder
 * SYNOPSIS
 *	#include <mugaika/watch.h>
 *
 *	ok = mg_watch_file(&opts, fd, "申請書.docm", out, u, &res, &err);
 *	mg_watch_result_clear(&res);
 * DESCRIPTION
 *	mg_watch_file reads the file on fd (a regular file, opened by the
 *	caller: src/watch/fsops.c) and runs it through the mail pipeline
 *	(mg_sanitize, with opts as for a mail: rules, AV, detection,
 *	quarantine, CDR limits), so a file dropped into the transfer
 *	folder meets exactly the policy an attachment meets:
 *
 *	- a file is given to the pipeline as the only attachment of a
 *	  message made around it (its name in RFC 2231 form, its bytes in
 *	  base64); the quarantine keeps the file itself (kind "file",
 *	  subject: its name), not that message;
 *	- a file whose name ends in ".eml" is a mail: it is sanitised as
 *	  such, kept in the quarantine as a message, and its one output is
 *	  the rebuilt mail, under the same name.
 *
 *	For each file to deliver, out(u, o, content, err) is called in
 *	order: o->name is the output's safe file name (as an attachment's:
 *	src/sanitize/names.c), o->type its content type, content a
 *	GMimeStream of its bytes (the caller reads it to its end; o and
 *	content are valid during the call). An archive's members come one
 *	by one (or as one zip with the rule option repack = zip). A
 *	removed or held file gives no output. out returns false (with err
 *	set) to stop.
 *
 *	o->dirs is NULL, except for the members of a dropped archive whose
 *	unpack rule says layout = folder (the default; repack = zip wins
 *	over it, a dropped mail ignores it): then it holds the folders the
 *	member lands in, outermost first, NULL-terminated: dirs[0] is the
 *	archive's folder (the dropped file's name without its extension:
 *	"書類.zip" -> "書類", "a.tar.gz" -> "a"), then the folders of the
 *	member's name in the archive, and for a member of a nested archive
 *	a folder named after that archive (without its extension) followed
 *	by the folders inside it. The components are as found in the
 *	archive: never empty, ".", ".." or holding '/' or '\', but not
 *	yet made safe for Windows (the caller does, with mg_fsname_safe,
 *	and keeps names unique). At most MG_WATCH_MAX_DIRS entries.
 *
 *	res (filled in any case, cleared with mg_watch_result_clear) holds
 *	the verdict, the quarantine id, the X-Mugaika-Result summary, the
 *	notice (the text staff read, in opts.lang; "" when nothing was
 *	changed) and the parts JSON (what each part was, its rule, action
 *	and handler), from which the caller writes its report and audit.
 * DIAGNOSTICS
 *	false with err when the file could not be read, the pipeline
 *	failed (its verdict in res: tempfail, internal) or out failed.
 *	A message the policy rejects is not a failure: verdict reject, no
 *	output. Nothing is delivered unless the verdict is accept.
 */
#ifndef MUGAIKA_WATCH_H
#define MUGAIKA_WATCH_H

#include <stdbool.h>

#include <gmime/gmime.h>
#include <json-glib/json-glib.h>

#include <mugaika/sanitize.h>

/* Folders of one output at most (dirs[0] included). */
#define MG_WATCH_MAX_DIRS 64

/* One file to deliver, as out sees it (borrowed for the call). */
struct mg_watch_output {
    const char *name;        /* safe file name */
    const char *type;        /* content type */
    const char *const *dirs; /* layout = folder: where it lands (see above); else NULL */
};

typedef bool (*mg_watch_out_fn)(void *u, const struct mg_watch_output *o, GMimeStream *content,
                                GError **err);

struct mg_watch_result {
    enum mg_verdict verdict;
    char *quarantine_id; /* NULL when nothing was kept */
    char *result;        /* the X-Mugaika-Result summary */
    char *notice;        /* "" when nothing was changed */
    JsonNode *parts;     /* mg_sanitize_parts_json */
    JsonNode *audit;     /* mg_sanitize_audit; NULL when the pipeline did not finish */
    unsigned outputs;    /* files given to out */
};

/* GError domain of mg_watch_file's own errors (reading, spool). */
GQuark mg_watch_error_quark(void);

bool mg_watch_file(const struct mg_sanitize_opts *o, int fd, const char *name, mg_watch_out_fn out,
                   void *u, struct mg_watch_result *res, GError **err);
void mg_watch_result_clear(struct mg_watch_result *res);

/* The report written next to the outputs (<name>.mugaika.txt), in lang
 * ("ja", the default, or "en"): the file's name, when (in when's time
 * zone, "2026-12-03 10:10:28 +09:00"), what became of it
 * (delivered as outputs[], or not delivered and why), the notice, each
 * part's rule and action, and the quarantine id to quote when asking
 * for the original. outputs: the final names (NULL-terminated, may be
 * NULL). Lines end in CRLF (it is read on Windows). Caller frees. */
char *mg_watch_report(const struct mg_watch_result *res, const char *name,
                      const char *const *outputs, const char *lang, GDateTime *when);

#endif
