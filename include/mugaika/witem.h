/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * NAME
 *	witem 3h
 * SUMMARY
 *	the steps of one dropped file, journaled; recovery after a crash
 * SYNOPSIS
 *	#include <mugaika/witem.h>
 *
 *	outcome = mg_witem_process(&ctx, &dirs, name, &why);
 *	ok = mg_witem_recover(&ctx, lookup, u, &err);
 * DESCRIPTION
 *	mg_witem_process takes one entry of an input folder (the caller
 *	found it stable) through the steps of docs/architecture.md ("The
 *	transfer folder"): an entry that is not a plain file (a symlink, a
 *	second name of a file, a FIFO, a socket, a device) is refused: a
 *	report says so and the entry is removed (never followed or read).
 *	A file is opened safely, recorded (begin), run through the pipeline
 *	(mg_watch_file: the original goes to the quarantine), its outputs
 *	and report written under hidden temporary names and fsynced,
 *	recorded (commit), renamed to unique final names (never replacing
 *	anything), the input removed if it is still the same file, and
 *	recorded (done).
 *
 *	mg_witem_recover, at start, finishes what a crash interrupted:
 *	a committed item's temporaries are renamed and its input removed;
 *	a begun item is rolled back (its input is taken again); every
 *	hidden temporary file left in an output folder is deleted.
 *	lookup(u, key) gives the folder descriptor of an in_key or out_key
 *	the journal recorded (-1 when that folder is gone).
 * DIAGNOSTICS
 *	MG_WITEM_DONE, MG_WITEM_REFUSED, MG_WITEM_FAILED (the pipeline
 *	failed after keeping the original: a report says so, the input is
 *	removed, the original is in the quarantine) or MG_WITEM_RETRY (a
 *	temporary failure or the file changed: it stays, *why says why).
 */
#ifndef MUGAIKA_WITEM_H
#define MUGAIKA_WITEM_H

#include <stdbool.h>
#include <sys/types.h>

#include <glib.h>

#include <mugaika/sanitize.h>
#include <mugaika/wjournal.h>

struct mg_witem_ctx {
    const struct mg_sanitize_opts *opts; /* the pipeline (quarantine required) */
    struct mg_wjournal *journal;
    const char *lang; /* of the reports: "ja" (default) or "en" */
    mode_t mode;      /* of the outputs (0644 when 0) */
};

struct mg_witem_dirs {
    int in_fd, out_fd;
    const char *in_key, *out_key; /* as the journal records them */
};

enum mg_witem_outcome {
    MG_WITEM_DONE,
    MG_WITEM_REFUSED,
    MG_WITEM_FAILED,
    MG_WITEM_RETRY,
};

enum mg_witem_outcome mg_witem_process(const struct mg_witem_ctx *c, const struct mg_witem_dirs *d,
                                       const char *name, char **why);

typedef int (*mg_witem_lookup_fn)(void *u, const char *key);
bool mg_witem_recover(const struct mg_witem_ctx *c, mg_witem_lookup_fn lookup, void *u,
                      GError **err);

#endif
