/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * NAME
 *	mugaika-watch 8
 * SUMMARY
 *	the transfer folder: files dropped on the internet side arrive
 *	sanitised on the LGWAN side
 * SYNOPSIS
 *	mugaika-watch --in DIR --out DIR --state DIR [--quarantine DIR]
 *		[--clamav-db DIR] [--rules DIR] [--config FILE] [--lang ja|en]
 *		[--quiet-ms N] [--scan-ms N] [--once]
 * DESCRIPTION
 *	Watches IN and its subfolders (IN/<user>/, one level: their results
 *	go to OUT/<user>/, made when missing) with inotify and a rescan
 *	every --scan-ms (1000); a file is taken once it has been stable
 *	(inode, size, mtime, ctime) for --quiet-ms (2000): files written
 *	over SMB or NFS give no reliable close event. Each is processed by
 *	mg_witem_process (src/watch/item.c): outputs and a report
 *	(NAME.mugaika.txt) in OUT, the original in the quarantine, the
 *	input removed; an entry that is not a plain file is refused with a
 *	report. The journal in --state makes a crash harmless: at start,
 *	mg_witem_recover finishes or rolls back what was in progress, and
 *	hidden temporary files left in output folders are deleted.
 *
 *	--once processes what is waiting (waiting for it to be stable) and
 *	exits. Otherwise it runs until SIGTERM or SIGINT, finishing the
 *	item in progress. One line per item goes to standard error.
 *
 *	Options override the configuration file (docs/configuration.md):
 *	rules, quarantine, clamav-db, lang, spool and the limits apply.
 * DIAGNOSTICS
 *	0 after --once or a signal; 64 usage; 75 the journal is locked by
 *	another mugaika-watch or a folder cannot be opened; 78
 *	configuration (rules, AV database, workers, a corrupt journal).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <syslog.h>
#include <unistd.h>

#include <glib.h>

#include <mugaika/fsname.h>
#include <mugaika/fsops.h>
#include <mugaika/log.h>
#include <mugaika/quarantine.h>
#include <mugaika/witem.h>
#include <mugaika/wjournal.h>

#include "cli/cli.h"

struct folder {
    char *user; /* "" for IN itself */
    char *in_key, *out_key;
    int in_fd, out_fd;
};

struct watcher {
    GPtrArray *folders;   /* of struct folder * */
    GHashTable *stable;   /* "in_key/name" -> struct mg_fs_stable * */
    GHashTable *retry_at; /* "in_key/name" -> gint64 * (monotonic us) */
    int inotify_fd;
    int in_root, out_root;
    struct mg_witem_ctx ctx;
    gint64 quiet_us;
    unsigned done, refused, failed;
};

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
    (void)sig;
    stop = 1;
}

static void folder_free(gpointer p)
{
    struct folder *f = p;

    if (f->in_fd >= 0 && f->in_fd != -1)
        close(f->in_fd);
    if (f->out_fd >= 0)
        close(f->out_fd);
    g_free(f->user);
    g_free(f->in_key);
    g_free(f->out_key);
    g_free(f);
}

static int lookup(void *u, const char *key)
{
    struct watcher *w = u;

    for (guint i = 0; i < w->folders->len; i++) {
        struct folder *f = g_ptr_array_index(w->folders, i);
        if (strcmp(f->in_key, key) == 0)
            return f->in_fd;
        if (strcmp(f->out_key, key) == 0)
            return f->out_fd;
    }
    return -1;
}

static void watch_fd(struct watcher *w, int fd)
{
    char path[64];

    g_snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    if (w->inotify_fd >= 0)
        inotify_add_watch(w->inotify_fd, path,
                          IN_CLOSE_WRITE | IN_MOVED_TO | IN_CREATE | IN_ATTRIB | IN_ONLYDIR);
}

/* The folder of user (a subfolder of IN), added once; NULL on error. */
static struct folder *folder_of(struct watcher *w, const char *user)
{
    struct folder *f;
    GError *e = NULL;

    for (guint i = 0; i < w->folders->len; i++) {
        f = g_ptr_array_index(w->folders, i);
        if (strcmp(f->user, user) == 0)
            return f;
    }
    f = g_new0(struct folder, 1);
    f->user = g_strdup(user);
    f->in_key = g_strconcat("in/", user, NULL);
    f->out_key = g_strconcat("out/", user, NULL);
    f->in_fd = *user == '\0' ? dup(w->in_root) : mg_fs_open_dir(w->in_root, user, &e);
    if (f->in_fd >= 0 && *user != '\0' && mkdirat(w->out_root, user, 0755) != 0 && errno != EEXIST)
        mg_log(LOG_ERR, "out/%s: mkdir: %s", user, g_strerror(errno));
    f->out_fd = f->in_fd < 0    ? -1
                : *user == '\0' ? dup(w->out_root)
                                : mg_fs_open_dir(w->out_root, user, &e);
    if (f->in_fd < 0 || f->out_fd < 0) {
        mg_log(LOG_ERR, "folder %s: %s", *user ? user : ".",
               e != NULL ? e->message : g_strerror(errno));
        g_clear_error(&e);
        folder_free(f);
        return NULL;
    }
    watch_fd(w, f->in_fd);
    g_ptr_array_add(w->folders, f);
    return f;
}

/* Names in a folder (a fresh descriptor: the caller's offset stays). */
static GPtrArray *list(int dirfd)
{
    GPtrArray *names = g_ptr_array_new_with_free_func(g_free);
    int fd = openat(dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
    struct dirent *de;

    if (d == NULL) {
        if (fd >= 0)
            close(fd);
        return names;
    }
    while ((de = readdir(d)) != NULL)
        if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0)
            g_ptr_array_add(names, g_strdup(de->d_name));
    closedir(d);
    g_ptr_array_sort(names, (GCompareFunc)g_strcmp0);
    return names;
}

/* Deletes the hidden temporary files left in an output folder. */
static void sweep(int out_fd)
{
    GPtrArray *names = list(out_fd);

    for (guint i = 0; i < names->len; i++) {
        const char *n = g_ptr_array_index(names, i);
        if (mg_fsname_is_temp(n) && unlinkat(out_fd, n, 0) == 0)
            mg_log(LOG_INFO, "removed the leftover %s", n);
    }
    g_ptr_array_unref(names);
}

static void process(struct watcher *w, struct folder *f, const char *name, const char *key)
{
    struct mg_witem_dirs d = {f->in_fd, f->out_fd, f->in_key, f->out_key};
    char *why = NULL;
    enum mg_witem_outcome r = mg_witem_process(&w->ctx, &d, name, &why);
    static const char *const words[] = {"done", "refused", "failed", "retry"};

    mg_log(r == MG_WITEM_RETRY ? LOG_WARNING : LOG_INFO, "%s: %s%s%s", words[r], f->user,
           *f->user ? "/" : "", why != NULL ? why : "");
    g_free(why);
    g_hash_table_remove(w->stable, key);
    if (r == MG_WITEM_DONE)
        w->done++;
    else if (r == MG_WITEM_REFUSED)
        w->refused++;
    else if (r == MG_WITEM_FAILED)
        w->failed++;
    else {
        gint64 *at = g_new(gint64, 1);
        *at = g_get_monotonic_time() + 10 * G_USEC_PER_SEC;
        g_hash_table_replace(w->retry_at, g_strdup(key), at);
    }
}

/* One pass over a folder; returns the number of files still waiting. */
static unsigned scan_folder(struct watcher *w, struct folder *f)
{
    GPtrArray *names = list(f->in_fd);
    gint64 now = g_get_monotonic_time();
    unsigned waiting = 0;

    for (guint i = 0; i < names->len && !stop; i++) {
        const char *n = g_ptr_array_index(names, i);
        char *key = g_strconcat(f->in_key, "/", n, NULL);
        gint64 *at = g_hash_table_lookup(w->retry_at, key);
        struct stat st;
        enum mg_fs_kind kind = mg_fs_classify(f->in_fd, n, &st);

        if (at != NULL && *at > now) {
            waiting++;
        } else if (kind == MG_FS_DIRECTORY) {
            if (*f->user == '\0')
                folder_of(w, n); /* a user's folder */
        } else if (kind == MG_FS_REGULAR) {
            struct mg_fs_stable *t = g_hash_table_lookup(w->stable, key);
            if (t == NULL) {
                t = g_new(struct mg_fs_stable, 1);
                mg_fs_stable_init(t);
                g_hash_table_insert(w->stable, g_strdup(key), t);
            }
            if (mg_fs_stable_check(t, &st, now, w->quiet_us))
                process(w, f, n, key);
            else
                waiting++;
        } else if (kind != MG_FS_GONE && kind != MG_FS_ERROR) {
            process(w, f, n, key); /* refused at once: nothing to wait for */
        }
        g_free(key);
    }
    g_ptr_array_unref(names);
    return waiting;
}

static unsigned scan(struct watcher *w)
{
    unsigned waiting = 0;

    /* the root first: it finds new users' folders */
    for (guint i = 0; i < w->folders->len && !stop; i++)
        waiting += scan_folder(w, g_ptr_array_index(w->folders, i));
    return waiting;
}

static int open_root(const char *path, bool create)
{
    int fd;

    if (create && mkdir(path, 0700) != 0 && errno != EEXIST)
        return -1;
    fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    return fd;
}

int main(int argc, char **argv)
{
    char *in = NULL, *out = NULL, *state = NULL, *qdir = NULL, *db = NULL, *rules_dir = NULL;
    char *config = NULL, *lang = NULL;
    gint quiet_ms = 2000, scan_ms = 1000;
    gboolean once = FALSE;
    GOptionEntry entries[] = {
        {"in", 0, 0, G_OPTION_ARG_FILENAME, &in, "input (drop) folder", "DIR"},
        {"out", 0, 0, G_OPTION_ARG_FILENAME, &out, "output folder", "DIR"},
        {"state", 0, 0, G_OPTION_ARG_FILENAME, &state, "state folder (journal)", "DIR"},
        {"quarantine", 0, 0, G_OPTION_ARG_FILENAME, &qdir, "quarantine directory", "DIR"},
        {"clamav-db", 0, 0, G_OPTION_ARG_FILENAME, &db, "ClamAV database directory", "DIR"},
        {"rules", 0, 0, G_OPTION_ARG_FILENAME, &rules_dir, "policy directory", "DIR"},
        {"config", 0, 0, G_OPTION_ARG_FILENAME, &config, "configuration file", "FILE"},
        {"lang", 0, 0, G_OPTION_ARG_STRING, &lang, "language of the reports (ja, en)", "LANG"},
        {"quiet-ms", 0, 0, G_OPTION_ARG_INT, &quiet_ms, "stable this long before taken", "N"},
        {"scan-ms", 0, 0, G_OPTION_ARG_INT, &scan_ms, "rescan interval", "N"},
        {"once", 0, 0, G_OPTION_ARG_NONE, &once, "process what is waiting, then exit", NULL},
        {NULL, 0, 0, 0, NULL, NULL, NULL},
    };
    GOptionContext *ctx = g_option_context_new(NULL);
    struct mg_cli_engine en;
    struct mg_sanitize_opts o;
    struct mg_quarantine *q = NULL;
    struct watcher w;
    GError *e = NULL;
    int state_fd = -1, rc = MG_EX_OK;

    memset(&en, 0, sizeof en);
    memset(&w, 0, sizeof w);
    w.inotify_fd = -1;
    w.in_root = w.out_root = -1;
    w.folders = g_ptr_array_new_with_free_func(folder_free);
    w.stable = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
    w.retry_at = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
    g_option_context_add_main_entries(ctx, entries, NULL);
    if (!g_option_context_parse(ctx, &argc, &argv, &e) || in == NULL || out == NULL ||
        state == NULL || argc != 1 || quiet_ms < 0 || scan_ms < 10 ||
        (lang != NULL && strcmp(lang, "ja") != 0 && strcmp(lang, "en") != 0)) {
        mg_log_stderr("mugaika-watch: %s\n%s", e != NULL ? e->message : "bad arguments",
                      "usage: mugaika-watch --in DIR --out DIR --state DIR [--quarantine DIR]\n"
                      "       [--clamav-db DIR] [--rules DIR] [--config FILE] [--lang ja|en]\n"
                      "       [--quiet-ms N] [--scan-ms N] [--once]");
        rc = MG_EX_USAGE;
        goto out;
    }
    rc = mg_cli_engine_open(&en, "watch", config, rules_dir, db);
    if (rc != MG_EX_OK)
        goto out;
    /* under systemd the journal takes standard error itself */
    mg_log_open("mugaika-watch", getenv("JOURNAL_STREAM") == NULL, en.cfg.log_level);
    q = mg_quarantine_open(qdir != NULL                    ? qdir
                           : en.cfg.quarantine_dir != NULL ? en.cfg.quarantine_dir
                                                           : MG_QUARANTINE_DEFAULT_DIR,
                           &e);
    w.in_root = open_root(in, false);
    w.out_root = open_root(out, false);
    state_fd = open_root(state, true);
    if (q == NULL || w.in_root < 0 || w.out_root < 0 || state_fd < 0) {
        mg_log(LOG_ERR, "%s",
               q == NULL        ? e->message
               : w.in_root < 0  ? "--in: cannot open the folder"
               : w.out_root < 0 ? "--out: cannot open the folder"
                                : "--state: cannot open the folder");
        rc = MG_EX_TEMPFAIL;
        goto out;
    }
    w.ctx.journal = mg_wjournal_open(state_fd, &e);
    if (w.ctx.journal == NULL) {
        mg_log(LOG_ERR, "journal: %s", e->message);
        rc = g_error_matches(e, MG_WJOURNAL_ERROR, MG_WJOURNAL_ERROR_CORRUPT) ? MG_EX_CONFIG
                                                                              : MG_EX_TEMPFAIL;
        goto out;
    }
    mg_cli_engine_opts(&en, &o);
    o.quarantine = q;
    if (lang != NULL)
        o.lang = lang;
    w.ctx.opts = &o;
    w.ctx.lang = o.lang;
    w.quiet_us = (gint64)quiet_ms * 1000;
    w.inotify_fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);

    /* every folder known before recovery looks anything up */
    folder_of(w.folders->len == 0 ? &w : &w, "");
    {
        GPtrArray *names = list(w.in_root);
        for (guint i = 0; i < names->len; i++) {
            struct stat st;
            if (mg_fs_classify(w.in_root, g_ptr_array_index(names, i), &st) == MG_FS_DIRECTORY)
                folder_of(&w, g_ptr_array_index(names, i));
        }
        g_ptr_array_unref(names);
    }
    if (!mg_witem_recover(&w.ctx, lookup, &w, &e)) {
        mg_log(LOG_ERR, "recovery: %s", e->message);
        rc = MG_EX_TEMPFAIL;
        goto out;
    }
    for (guint i = 0; i < w.folders->len; i++)
        sweep(((struct folder *)g_ptr_array_index(w.folders, i))->out_fd);
    if (!mg_wjournal_compact(w.ctx.journal, &e)) {
        mg_log(LOG_ERR, "journal: %s", e->message);
        g_clear_error(&e);
    }

    {
        struct sigaction sa;
        memset(&sa, 0, sizeof sa);
        sa.sa_handler = on_signal;
        sigaction(SIGTERM, &sa, NULL);
        sigaction(SIGINT, &sa, NULL);
    }
    {
        gint64 once_until = g_get_monotonic_time() + w.quiet_us * 4 + 30 * G_USEC_PER_SEC;
        while (!stop) {
            unsigned waiting = scan(&w);
            if (once && (waiting == 0 || g_get_monotonic_time() > once_until))
                break;
            {
                struct pollfd p = {w.inotify_fd, POLLIN, 0};
                if (poll(&p, w.inotify_fd >= 0 ? 1 : 0, scan_ms) > 0) {
                    char buf[4096];
                    while (read(w.inotify_fd, buf, sizeof buf) > 0)
                        ; /* events only wake the scan */
                }
            }
            if (mg_wjournal_size(w.ctx.journal) > MG_WJOURNAL_COMPACT_SIZE &&
                !mg_wjournal_compact(w.ctx.journal, &e))
                g_clear_error(&e);
        }
    }
    mg_log(LOG_INFO, "stopping: %u done, %u refused, %u failed", w.done, w.refused, w.failed);
out:
    g_clear_error(&e);
    if (w.ctx.journal != NULL)
        mg_wjournal_close(w.ctx.journal);
    g_ptr_array_unref(w.folders);
    g_hash_table_unref(w.stable);
    g_hash_table_unref(w.retry_at);
    if (w.inotify_fd >= 0)
        close(w.inotify_fd);
    if (w.in_root >= 0)
        close(w.in_root);
    if (w.out_root >= 0)
        close(w.out_root);
    if (state_fd >= 0)
        close(state_fd);
    if (q != NULL)
        mg_quarantine_close(q);
    mg_cli_engine_close(&en);
    mg_log_close();
    g_option_context_free(ctx);
    g_free(in);
    g_free(out);
    g_free(state);
    g_free(qdir);
    g_free(db);
    g_free(rules_dir);
    g_free(config);
    g_free(lang);
    return rc;
}
