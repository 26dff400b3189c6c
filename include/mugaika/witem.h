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
 *	Outputs, reports and folders get the owner and group of ctx
 *	((uid_t)-1 / (gid_t)-1: as created, the daemon's) and the mode of
 *	ctx (0644 when 0; folders mg_fs_dir_mode of it), applied to the
 *	open temporary before it is fsynced and renamed; a failed fchown
 *	or fchmod fails the item (MG_WITEM_RETRY, *why says why).
 *
 *	The members of a dropped archive whose rule says layout = folder
 *	(see mg_watch_file) are written into a folder named after it: the
 *	folder is built under a hidden temporary name (mg_fsname_temp) in
 *	the output folder, each file and folder in it made safe for
 *	Windows (mg_fsname_safe) and unique there ignoring case, fsynced,
 *	recorded with the other outputs (commit: its temporary and final
 *	name), then renamed like a file. The report lists the folder
 *	("NAME/") and each file in it ("NAME/sub/file").
 *
 *	Final names are free in the output folder, ignoring case as a
 *	Windows client does, and are taken with renameat2
 *	RENAME_NOREPLACE (never replacing anything; on EEXIST the next
 *	"stem (n).ext"). Within the process, choosing and taking a name
 *	is serialised, so items processed at the same time by several
 *	threads (mg_witem_process may be called from several threads, on
 *	different inputs, with the same output folder and one journal)
 *	never get names that differ only in case.
 *
 *	mg_witem_recover, at start, finishes what a crash interrupted:
 *	a committed item's temporaries (files or folders) are renamed and
 *	its input removed; a begun item is rolled back (its input is
 *	taken again). It does not know the temporaries of a begun item:
 *	the caller removes every hidden temporary left in its output
 *	folders (mg_fs_remove_temp, files and folders alike) after it.
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
    const char *lang;  /* of the reports: "ja" (default) or "en" */
    mode_t mode;       /* of the outputs (0644 when 0); folders: mg_fs_dir_mode(mode) */
    uid_t owner;       /* of the outputs, reports, folders; (uid_t)-1: as created */
    gid_t group;       /* the same; (gid_t)-1: as created */
    const char *audit; /* audit log ("-": standard error); NULL: none */
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

/* For the tests. after_commit, when set, runs in mg_witem_process right
 * after the commit is recorded; when it returns false the item stops
 * there as if the process had been killed (nothing renamed or removed,
 * the temporaries stay for mg_witem_recover): MG_WITEM_RETRY. NULL
 * restores the default. on_output, when set, runs for each output
 * mg_watch_file hands over; false refuses it as a full disk would.
 * Set them before starting threads.
 * The daemon's end-to-end tests do the same with a real kill: with
 * MUGAIKA_WATCH_TEST_KILL=commit in its environment, mugaika-watch
 * sends itself SIGKILL at that point (read once; nothing else reads it). */
struct mg_witem_test_hooks {
    bool (*after_commit)(void *user);
    bool (*on_output)(void *user); /* false: the output is refused (as by a full disk) */
    void *user;
};
void mg_witem_set_test_hooks(const struct mg_witem_test_hooks *hooks);

#endif
