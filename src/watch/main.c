/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * NAME
 *	mugaika-watch 8
 * SUMMARY
 *	the transfer folder: files dropped on the internet side arrive
 *	sanitised on the LGWAN side
 * SYNOPSIS
 *	mugaika-watch [--in DIR --out DIR] [--state DIR] [--quarantine DIR]
 *		[--clamav-db DIR] [--rules DIR] [--config FILE] [--lang ja|en]
 *		[--audit FILE|-] [--workers N] [--quiet-ms N] [--scan-ms N] [--once] [--foreground]
 * DESCRIPTION
 *	Watches the input folder of each pair (--in and --out, or the
 *	[watch NAME] groups of the configuration file) with inotify and a
 *	rescan every --scan-ms (1000). IN/<user>/ is a user's folder: its
 *	results go to OUT/<user>/. Folders a user drops into it are taken
 *	with their files, down to 8 levels under IN, rebuilt in OUT under
 *	names safe for Windows clients, and removed from IN once empty and
 *	unchanged for ten quiet periods. Folders made in OUT get the pair's
 *	group and mode but stay the daemon's: it keeps writing into them.
 *	A folder removed or made again is looked at anew. A file is taken
 *	once it has been stable (inode, size, mtime, ctime) for --quiet-ms
 *	(2000): files written over SMB or NFS give no reliable close event.
 *
 *	Taken files go to a pool of --workers threads (watch-workers, 2);
 *	at most watch-queue files wait for a worker, the rest stay in the
 *	input folders (back-pressure). Files are taken round-robin between
 *	users, so one user's thousand files do not hold the others up. A
 *	user past the pair's daily quota (user-files, user-bytes: per UTC
 *	day) has further files left where they are until the next day.
 *	Two names of one file are never handled at once (the second then
 *	finds a plain file). A file that cannot be removed from IN after
 *	it was handled is not taken again until it changes.
 *
 *	Each file is processed by mg_witem_process (src/watch/item.c):
 *	outputs and a report (NAME.mugaika.txt) in OUT, the original in
 *	the quarantine, one JSON line in the audit log (--audit, else the
 *	file's audit key; none without), the input removed; an entry that
 *	is not a plain file is refused with a report. The journal in the
 *	state folder makes a crash harmless: at start, mg_witem_recover
 *	finishes or rolls back what was in progress, and hidden temporary
 *	files and folders left in output folders are deleted.
 *	STATE/status.json is rewritten every second (mugaika watch status
 *	reads it).
 *
 *	--once processes what is waiting (waiting for it to be stable) and
 *	exits; it stays in the foreground. Otherwise it goes into the
 *	background unless --foreground, and runs until SIGTERM or SIGINT,
 *	finishing the items in progress (those not started stay in IN).
 *	One line per item is logged.
 *
 *	Options override the configuration file (docs/configuration.md):
 *	--in and --out make one pair named "default" instead of the
 *	file's; rules, quarantine, clamav-db, lang, spool, audit, the
 *	limits and the watch-* keys apply.
 * DIAGNOSTICS
 *	0 after --once or a signal; 64 usage (also: no pair at all); 70
 *	cannot go into the background or start threads; 75 the journal is
 *	locked by another mugaika-watch, a folder cannot be opened, or a
 *	write to the journal failed (a restart reads it anew); 78
 *	configuration (rules, AV database, workers, a corrupt journal, an
 *	unknown owner or group).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <syslog.h>
#include <unistd.h>

#include <glib.h>

#include <mugaika/detect.h>
#include <mugaika/fsname.h>
#include <mugaika/fsops.h>
#include <mugaika/log.h>
#include <mugaika/quarantine.h>
#include <mugaika/witem.h>
#include <mugaika/wjournal.h>
#include <mugaika/wstatus.h>

#include "cli/cli.h"

/* An (in -> out) pair. */
struct pair {
    char *name;
    int in_root, out_root;
    struct mg_witem_ctx ctx; /* its owner, group and mode */
    unsigned user_files;     /* quota per user per UTC day, 0: none */
    uint64_t user_bytes;
};

/* A watched folder: a pair's IN (user "") or IN/<user>. */
struct folder {
    struct pair *pair;
    char *user;             /* "" for IN itself, else the first component of rel */
    char *rel;              /* "", "USER", "USER/SUB/..." under IN */
    char *in_key, *out_key; /* "PAIR/in/REL", "PAIR/out/REL" (the journal's) */
    int in_fd, out_fd;
    unsigned depth;            /* 0 IN, 1 a user's folder, 2.. a folder dropped by a user */
    unsigned busy;             /* its files taken and not finished */
    struct mg_fs_stable empty; /* a dropped folder: since when it is empty */
    bool too_deep;             /* logged once */
    bool seen_empty;           /* the last scan found nothing in it */
};

/* Folders dropped into a user's folder are taken with their files, to
 * this depth under IN (the user's folder is 1). */
#define MAX_DEPTH 8

/* What a directory entry is: a file that is still there after it was
 * done is known by it. */
struct ident {
    dev_t dev;
    ino_t ino;
    off_t size;
    gint64 mtime_ns;
};

/* A file waiting to be stable, and when a scan last saw it. */
struct seen {
    struct mg_fs_stable t;
    gint64 last_us;
};

/* A file delivered that IN would not let go, and when a scan last saw it. */
struct stuck {
    struct ident id;
    gint64 last_us;
};

/* A file taken: from the scan to a worker and back. */
struct job {
    struct folder *f;
    char *name, *key;
    struct ident id;
    uint64_t size;
    bool counted; /* in the user's quota */
    bool skipped; /* not started: the daemon was stopping */
    enum mg_witem_outcome r;
    char *why;
};

struct watcher {
    GPtrArray *pairs;       /* of struct pair * */
    GPtrArray *folders;     /* of struct folder * */
    GHashTable *stable;     /* key -> struct seen * */
    GHashTable *retry_at;   /* key -> gint64 * (monotonic us) */
    GHashTable *busy;       /* keys taken and not finished */
    GHashTable *noted;      /* key -> gint64 * (last seen, monotonic us): over quota, logged once */
    GHashTable *inodes;     /* "dev:ino" of the files taken: one name of a file at a time */
    GHashTable *stuck;      /* key -> struct stuck *: done but could not be removed */
    GHashTable *retries;    /* key -> unsigned *: retries in a row (the backoff) */
    GHashTable *unreadable; /* rel of folders that cannot be opened, logged once */
    unsigned max_folders;   /* folders open at once (two descriptors each) */
    bool folders_full;      /* logged once */
    GThreadPool *pool;
    GAsyncQueue *finished; /* of struct job * */
    struct mg_wstatus *status;
    gint stopping; /* atomic: jobs not started yet are given back */
    int inotify_fd, wake_fd, state_fd;
    unsigned workers, queue, rotor;
    gint64 quiet_us;
    unsigned done, refused, failed;
};

static volatile sig_atomic_t stop;

static void ident_of(struct ident *id, const struct stat *st)
{
    id->dev = st->st_dev;
    id->ino = st->st_ino;
    id->size = st->st_size;
    id->mtime_ns = (gint64)st->st_mtim.tv_sec * 1000000000 + st->st_mtim.tv_nsec;
}

static bool ident_same(const struct ident *id, const struct stat *st)
{
    struct ident now;

    ident_of(&now, st);
    return now.dev == id->dev && now.ino == id->ino && now.size == id->size &&
           now.mtime_ns == id->mtime_ns;
}

static char *inode_key(const struct ident *id)
{
    return g_strdup_printf("%ju:%ju", (uintmax_t)id->dev, (uintmax_t)id->ino);
}

static void on_signal(int sig)
{
    (void)sig;
    stop = 1;
}

static void pair_free(gpointer p)
{
    struct pair *pr = p;

    if (pr->in_root >= 0)
        close(pr->in_root);
    if (pr->out_root >= 0)
        close(pr->out_root);
    g_free(pr->name);
    g_free(pr);
}

static void folder_free(gpointer p)
{
    struct folder *f = p;

    if (f->in_fd >= 0)
        close(f->in_fd);
    if (f->out_fd >= 0)
        close(f->out_fd);
    g_free(f->user);
    g_free(f->rel);
    g_free(f->in_key);
    g_free(f->out_key);
    g_free(f);
}

/* name as the status shows it: under the user's folder ("SUB/NAME" for
 * a file in a folder the user dropped). */
static char *under_user(const struct folder *f, const char *name)
{
    if (f->depth <= 1)
        return g_strdup(name);
    return g_strconcat(f->rel + strlen(f->user) + 1, "/", name, NULL);
}

static bool inode_taken(struct watcher *w, const struct ident *id)
{
    char *ik = inode_key(id);
    bool taken = g_hash_table_contains(w->inodes, ik);

    g_free(ik);
    return taken;
}

static void job_free(gpointer p)
{
    struct job *j = p;

    g_free(j->name);
    g_free(j->key);
    g_free(j->why);
    g_free(j);
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

static struct folder *folder_find(struct watcher *w, const struct pair *pr, const char *rel)
{
    for (guint i = 0; i < w->folders->len; i++) {
        struct folder *f = g_ptr_array_index(w->folders, i);
        if (f->pair == pr && strcmp(f->rel, rel) == 0)
            return f;
    }
    return NULL;
}

/* The folder name of a subfolder of parent, in IN, added once (with its
 * twin in OUT, made when missing); parent NULL: the pair's IN itself.
 * NULL on error (logged). A user's folder in OUT keeps the user's name
 * as the administrator made it in IN; a folder dropped by a user gets a
 * name safe for Windows clients. Folders in OUT get the pair's group and
 * mode but stay the daemon's: it keeps writing into them. */
static struct folder *folder_of(struct watcher *w, struct pair *pr, struct folder *parent,
                                const char *name)
{
    char *rel = parent == NULL         ? g_strdup("")
                : *parent->rel == '\0' ? g_strdup(name)
                                       : g_strconcat(parent->rel, "/", name, NULL);
    struct folder *f = folder_find(w, pr, rel);
    char *out_name = NULL;
    GError *e = NULL;

    if (f != NULL) {
        g_free(rel);
        return f;
    }
    if (w->folders->len >= w->max_folders) {
        /* each folder holds two descriptors: the rest waits until
         * folders done with are removed */
        if (!w->folders_full)
            mg_log(LOG_WARNING,
                   "%s: %u folders are watched, as many as the descriptors allow: "
                   "%s and others wait",
                   pr->name, w->folders->len, rel);
        w->folders_full = true;
        g_free(rel);
        return NULL;
    }
    f = g_new0(struct folder, 1);
    f->pair = pr;
    f->rel = rel;
    f->depth = parent == NULL ? 0 : parent->depth + 1;
    f->user = f->depth == 0   ? g_strdup("")
              : f->depth == 1 ? g_strdup(name)
                              : g_strdup(parent->user);
    f->in_key = g_strconcat(pr->name, "/in/", rel, NULL);
    f->out_key = g_strconcat(pr->name, "/out/", rel, NULL);
    mg_fs_stable_init(&f->empty);
    if (parent == NULL) {
        f->in_fd = dup(pr->in_root);
        f->out_fd = dup(pr->out_root);
    } else {
        if (f->depth == 1) {
            out_name = g_strdup(name);
        } else {
            char *decoded = mg_fsname_decode(name, strlen(name), NULL);
            char *safe = mg_fsname_safe(decoded, "folder");
            /* a file of that name in OUT: the first "NAME (n)" that is a
             * folder or free (the same one at every start) */
            out_name = g_strdup(safe);
            for (unsigned n = 2; n < 100; n++) {
                enum mg_fs_kind k = mg_fs_classify(parent->out_fd, out_name, NULL);
                if (k == MG_FS_GONE || k == MG_FS_DIRECTORY)
                    break;
                g_free(out_name);
                out_name = g_strdup_printf("%s (%u)", safe, n);
            }
            g_free(safe);
            g_free(decoded);
        }
        f->in_fd = mg_fs_open_dir(parent->in_fd, name, &e);
        f->out_fd = -1;
        if (f->in_fd >= 0 && mg_fs_mkdir_owned(parent->out_fd, out_name, (uid_t)-1, pr->ctx.group,
                                               mg_fs_dir_mode(pr->ctx.mode), &e))
            f->out_fd = mg_fs_open_dir(parent->out_fd, out_name, &e);
    }
    if (f->in_fd < 0 || f->out_fd < 0) {
        /* logged once until it can be opened */
        if (g_hash_table_add(w->unreadable, g_strdup(rel)))
            mg_log(LOG_ERR, "%s: folder %s: %s", pr->name, *rel ? rel : ".",
                   e != NULL ? e->message : g_strerror(errno));
        g_clear_error(&e);
        folder_free(f);
        g_free(out_name);
        return NULL;
    }
    g_hash_table_remove(w->unreadable, rel);
    g_free(out_name);
    watch_fd(w, f->in_fd);
    g_ptr_array_add(w->folders, f);
    return f;
}

/* Registers the folders under f, as deep as MAX_DEPTH (at start: the
 * journal may name any of them). */
static void folder_tree(struct watcher *w, struct folder *f);

/* For g_ptr_array_sort, which passes pointers to the elements. */
static gint name_cmp(gconstpointer a, gconstpointer b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Names in a folder, sorted (a fresh descriptor: the caller's offset
 * stays). */
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
    g_ptr_array_sort(names, name_cmp);
    return names;
}

static void folder_tree(struct watcher *w, struct folder *f)
{
    GPtrArray *names;

    if (f == NULL || f->depth >= MAX_DEPTH)
        return;
    names = list(f->in_fd);
    for (guint i = 0; i < names->len; i++) {
        struct stat st;
        const char *n = g_ptr_array_index(names, i);
        if (mg_fs_classify(f->in_fd, n, &st) == MG_FS_DIRECTORY)
            folder_tree(w, folder_of(w, f->pair, f, n));
    }
    g_ptr_array_unref(names);
}

/* Deletes the hidden temporary files and folders left in an output
 * folder. */
static void sweep(int out_fd)
{
    GPtrArray *names = list(out_fd);
    GError *e = NULL;

    for (guint i = 0; i < names->len; i++) {
        const char *n = g_ptr_array_index(names, i);
        if (!mg_fsname_is_temp(n))
            continue;
        if (mg_fs_remove_temp(out_fd, n, &e)) {
            mg_log(LOG_INFO, "removed the leftover %s", n);
        } else {
            mg_log(LOG_ERR, "leftover %s: %s", n, e->message);
            g_clear_error(&e);
        }
    }
    g_ptr_array_unref(names);
}

/* A file ready to be taken. */
struct ready {
    struct folder *f;
    char *name, *key;
    uint64_t size;
    bool refuse; /* not a plain file: refused, no quota */
    struct ident id;
};

static void ready_free(gpointer p)
{
    struct ready *r = p;

    g_free(r->name);
    g_free(r->key);
    g_free(r);
}

static void detect_free(gpointer p)
{
    mg_detect_free(p);
}

/* A libmagic cookie is not to be shared between threads: each worker
 * thread has its own detector, made on its first file. */
static GPrivate thread_detect = G_PRIVATE_INIT(detect_free);

/* In a worker thread. */
static void run_job(gpointer data, gpointer user_data)
{
    struct job *j = data;
    struct watcher *w = user_data;
    struct mg_witem_dirs d = {j->f->in_fd, j->f->out_fd, j->f->in_key, j->f->out_key};
    struct mg_detect *det = g_private_get(&thread_detect);
    uint64_t one = 1;

    if (g_atomic_int_get(&w->stopping)) {
        /* stopping: not started, the file stays in IN */
        j->skipped = true;
        j->r = MG_WITEM_RETRY;
    } else if (det == NULL) {
        const char *why = "?";
        det = mg_detect_new(&why);
        if (det != NULL)
            g_private_set(&thread_detect, det);
        else
            j->why = g_strdup_printf("%s: type detection: %s", j->name, why);
    }
    if (j->skipped) {
        /* nothing done */
    } else if (det != NULL) {
        struct mg_sanitize_opts o = *j->f->pair->ctx.opts;
        struct mg_witem_ctx c = j->f->pair->ctx;

        o.detect = det;
        c.opts = &o;
        j->r = mg_witem_process(&c, &d, j->name, &j->why);
    } else {
        j->r = MG_WITEM_RETRY;
    }
    g_async_queue_push(w->finished, j);
    if (write(w->wake_fd, &one, sizeof one) < 0) {
        /* the poll times out in any case */
    }
}

static void take(struct watcher *w, struct folder *f, const struct ready *r)
{
    struct job *j = g_new0(struct job, 1);

    j->f = f;
    j->name = g_strdup(r->name);
    j->key = g_strdup(r->key);
    j->size = r->size;
    j->id = r->id;
    j->counted = !r->refuse;
    g_hash_table_add(w->inodes, inode_key(&r->id));
    f->busy++;
    g_hash_table_add(w->busy, g_strdup(r->key));
    g_hash_table_remove(w->noted, r->key);
    g_thread_pool_push(w->pool, j, NULL);
}

/* Back from a worker: counts, log, status; the file may be taken again
 * (retry) once its time comes. */
static void finish(struct watcher *w, struct job *j)
{
    static const char *const words[] = {"done", "refused", "failed", "retry"};
    struct folder *f = j->f;
    char *shown = under_user(f, j->name);

    if (!j->skipped)
        mg_log(j->r == MG_WITEM_RETRY ? LOG_WARNING : LOG_INFO, "%s: %s: %s%s%s", words[j->r],
               f->pair->name, f->rel, *f->rel ? "/" : "", j->why != NULL ? j->why : j->name);
    if (!j->skipped)
        mg_wstatus_record(w->status, f->pair->name, f->user, shown, (enum mg_wstatus_outcome)j->r,
                          j->size, j->why, (gint64)time(NULL));
    g_hash_table_remove(w->stable, j->key);
    g_hash_table_remove(w->busy, j->key);
    g_hash_table_remove(w->retry_at, j->key);
    if (j->r != MG_WITEM_RETRY)
        g_hash_table_remove(w->retries, j->key);
    {
        char *ik = inode_key(&j->id);
        g_hash_table_remove(w->inodes, ik);
        g_free(ik);
    }
    if (j->r != MG_WITEM_RETRY) {
        struct stat st;
        if (fstatat(f->in_fd, j->name, &st, AT_SYMLINK_NOFOLLOW) == 0 && ident_same(&j->id, &st)) {
            /* delivered, but the drop folder would not let it go: taking it
             * again would deliver it again and again */
            mg_log(LOG_ERR,
                   "%s: %s%s%s: could not be removed from the drop folder after it was "
                   "handled; it is not taken again until it changes (check the folder's "
                   "permissions)",
                   f->pair->name, f->rel, *f->rel ? "/" : "", j->name);
            mg_wstatus_record(w->status, f->pair->name, f->user, shown, MG_WSTATUS_FAILED, 0,
                              "could not be removed from the drop folder", (gint64)time(NULL));
            struct stuck *k = g_new(struct stuck, 1);
            k->id = j->id;
            k->last_us = g_get_monotonic_time();
            g_hash_table_replace(w->stuck, g_strdup(j->key), k);
        }
    }
    if (j->r == MG_WITEM_DONE) {
        w->done++;
    } else if (j->r == MG_WITEM_REFUSED) {
        w->refused++;
    } else if (j->r == MG_WITEM_FAILED) {
        w->failed++;
    } else {
        gint64 *at = g_new(gint64, 1);
        unsigned *n = g_hash_table_lookup(w->retries, j->key);
        /* it stays in IN and is taken again: counted once */
        if (j->counted)
            mg_wstatus_quota_give_back(w->status, f->pair->name, f->user, j->size,
                                       (gint64)time(NULL));
        /* 10 s, then twice as long each time in a row, at most an hour:
         * a folder that keeps refusing costs a pipeline run (and an
         * original in the quarantine) now and then, not every 10 s */
        if (n == NULL && !j->skipped) {
            n = g_new0(unsigned, 1);
            g_hash_table_insert(w->retries, g_strdup(j->key), n);
        }
        if (n != NULL && !j->skipped && *n < 20)
            (*n)++;
        *at = g_get_monotonic_time() +
              MIN((gint64)10 << (n != NULL && *n > 0 ? MIN(*n - 1, 9u) : 0), 3600) * G_USEC_PER_SEC;
        g_hash_table_replace(w->retry_at, g_strdup(j->key), at);
    }
    f->busy--;
    g_free(shown);
    job_free(j);
}

static void drain(struct watcher *w)
{
    struct job *j;

    while ((j = g_async_queue_try_pop(w->finished)) != NULL)
        finish(w, j);
}

static unsigned in_flight(struct watcher *w)
{
    return g_hash_table_size(w->busy);
}

/* One pass over a folder: the files ready to be taken into *ready; returns
 * the number of files still waiting (not yet stable, or retried later). */
static unsigned scan_folder(struct watcher *w, struct folder *f, GPtrArray *ready)
{
    GPtrArray *names = list(f->in_fd);
    gint64 now = g_get_monotonic_time();
    unsigned waiting = 0;

    f->seen_empty = names->len == 0;

    for (guint i = 0; i < names->len && !stop; i++) {
        const char *n = g_ptr_array_index(names, i);
        char *key = g_strconcat(f->in_key, "/", n, NULL);
        gint64 *at = g_hash_table_lookup(w->retry_at, key);
        struct stat st;
        enum mg_fs_kind kind;
        struct ready *r = NULL;

        if (g_hash_table_contains(w->busy, key)) {
            g_free(key);
            continue;
        }
        kind = mg_fs_classify(f->in_fd, n, &st);
        {
            struct stuck *was = g_hash_table_lookup(w->stuck, key);
            if (was != NULL && kind == MG_FS_ERROR) {
                was->last_us = now; /* unknown for now: still stuck */
                g_free(key);
                continue;
            }
            if (was != NULL)
                was->last_us = now;
            if (was != NULL && (kind == MG_FS_GONE || !ident_same(&was->id, &st)))
                g_hash_table_remove(w->stuck, key); /* removed or changed since */
            else if (was != NULL) {
                g_free(key);
                continue;
            }
        }
        if (kind != MG_FS_GONE && kind != MG_FS_ERROR) {
            struct ident id = {st.st_dev, st.st_ino, 0, 0};
            if (inode_taken(w, &id)) { /* another name of the same file is being handled */
                waiting++;
                g_free(key);
                continue;
            }
        }
        if (at != NULL && *at > now) {
            waiting++;
        } else if (kind == MG_FS_DIRECTORY) {
            if (f->depth < MAX_DEPTH) {
                guint known = w->folders->len;
                struct folder *sub = folder_of(w, f->pair, f, n); /* a user's, or dropped */
                if (w->folders->len > known || (sub == NULL && w->folders_full))
                    waiting++; /* its files are seen by a later scan */
            } else if (!f->too_deep) {
                f->too_deep = true;
                mg_log(LOG_WARNING, "%s: %s/%s: folders deeper than %u levels are not taken",
                       f->pair->name, f->rel, n, MAX_DEPTH);
                mg_wstatus_record(w->status, f->pair->name, f->user, n, MG_WSTATUS_RETRY, 0,
                                  "a folder nested too deeply: not taken", (gint64)time(NULL));
            }
        } else if (kind == MG_FS_REGULAR) {
            struct seen *t = g_hash_table_lookup(w->stable, key);
            if (t == NULL) {
                t = g_new(struct seen, 1);
                mg_fs_stable_init(&t->t);
                g_hash_table_insert(w->stable, g_strdup(key), t);
            }
            t->last_us = now;
            if (mg_fs_stable_check(&t->t, &st, now, w->quiet_us))
                r = g_new0(struct ready, 1);
            else
                waiting++;
        } else if (kind != MG_FS_GONE && kind != MG_FS_ERROR) {
            r = g_new0(struct ready, 1); /* refused at once: nothing to wait for */
            r->refuse = true;
        }
        if (r != NULL) {
            r->f = f;
            r->name = g_strdup(n);
            r->key = key;
            r->size = kind == MG_FS_REGULAR ? (uint64_t)st.st_size : 0;
            ident_of(&r->id, &st);
            g_ptr_array_add(ready, r);
        } else {
            g_free(key);
        }
    }
    g_ptr_array_unref(names);
    return waiting;
}

/* Scans every folder and takes ready files round-robin between the
 * folders (users), as long as the pool has room; returns the number of
 * files left waiting (in the folders, not taken). */
static unsigned scan(struct watcher *w)
{
    guint n = w->folders->len; /* folders found now are scanned next time */
    GPtrArray *lanes = g_ptr_array_new_with_free_func((GDestroyNotify)g_ptr_array_unref);
    GArray *next = g_array_new(FALSE, TRUE, sizeof(guint));
    unsigned waiting = 0, cap = w->workers + w->queue;
    gint64 now_s = (gint64)time(NULL);
    bool more = true;

    mg_wstatus_over_quota_clear(w->status);
    /* one lane per user of a pair (the folders a user dropped share it) */
    for (guint i = 0; i < n && !stop; i++) {
        struct folder *f = g_ptr_array_index(w->folders, i);
        GPtrArray *lane = NULL;

        for (guint l = 0; l < lanes->len && lane == NULL; l++) {
            GPtrArray *cand = g_ptr_array_index(lanes, l);
            const struct folder *g = cand->len > 0 ? ((struct ready *)cand->pdata[0])->f : NULL;
            if (g != NULL && g->pair == f->pair && strcmp(g->user, f->user) == 0)
                lane = cand;
        }
        if (lane == NULL) {
            lane = g_ptr_array_new_with_free_func(ready_free);
            g_ptr_array_add(lanes, lane);
        }
        waiting += scan_folder(w, f, lane);
        if (lane->len == 0) /* an empty lane says nothing of its user */
            g_ptr_array_remove_fast(lanes, lane);
    }
    g_array_set_size(next, lanes->len);
    /* round-robin, starting one lane further each scan */
    while (more && !stop) {
        more = false;
        for (guint k = 0; k < lanes->len; k++) {
            guint i = (w->rotor + k) % lanes->len;
            GPtrArray *lane = g_ptr_array_index(lanes, i);
            guint *at = &g_array_index(next, guint, i);
            struct ready *r;
            struct folder *f;

            if (*at >= lane->len)
                continue;
            r = g_ptr_array_index(lane, (*at)++);
            f = r->f;
            more = true;
            if (in_flight(w) >= cap) {
                waiting++;
                continue;
            }
            if (inode_taken(w, &r->id)) { /* a second name of a file taken: after it */
                waiting++;
                continue;
            }
            if (!r->refuse &&
                !mg_wstatus_quota_take(w->status, f->pair->name, f->user, r->size,
                                       f->pair->user_files, f->pair->user_bytes, now_s)) {
                char *shown = under_user(f, r->name);
                mg_wstatus_over_quota_add(w->status, f->pair->name, f->user, shown, r->size);
                g_free(shown);
                gint64 *seen = g_hash_table_lookup(w->noted, r->key);
                if (seen != NULL) {
                    *seen = g_get_monotonic_time();
                    continue;
                }
                seen = g_new(gint64, 1);
                *seen = g_get_monotonic_time();
                g_hash_table_insert(w->noted, g_strdup(r->key), seen);
                mg_log(LOG_WARNING,
                       "%s: %s%s%s: over the daily quota of this user; it waits for the "
                       "next day (UTC)",
                       f->pair->name, f->rel, *f->rel ? "/" : "", r->name);
                continue; /* not waiting: --once does not wait for the next day */
            }
            take(w, f, r);
        }
    }
    if (lanes->len > 0)
        w->rotor = (w->rotor + 1) % lanes->len;
    g_ptr_array_unref(lanes);
    g_array_unref(next);
    return waiting;
}

static gboolean unseen(gpointer key, gpointer value, gpointer now)
{
    (void)key;
    return ((struct seen *)value)->last_us < *(gint64 *)now - 60 * G_USEC_PER_SEC;
}

static gboolean stuck_unseen(gpointer key, gpointer value, gpointer now)
{
    (void)key;
    return ((struct stuck *)value)->last_us < *(gint64 *)now - 60 * G_USEC_PER_SEC;
}

static gboolean no_retry_due(gpointer key, gpointer value, gpointer retry_at)
{
    (void)value;
    return !g_hash_table_contains(retry_at, key);
}

static gboolean expired(gpointer key, gpointer value, gpointer now)
{
    (void)key;
    return *(gint64 *)value < *(gint64 *)now - 60 * G_USEC_PER_SEC;
}

/* What the scans no longer see (a file removed before it was taken, a
 * retry long past) is forgotten: the tables do not grow for ever. */
static void forget_unseen(struct watcher *w)
{
    gint64 now = g_get_monotonic_time();

    g_hash_table_foreach_remove(w->stable, unseen, &now);
    g_hash_table_foreach_remove(w->retry_at, expired, &now);
    g_hash_table_foreach_remove(w->noted, expired, &now);
    g_hash_table_foreach_remove(w->stuck, stuck_unseen, &now);
    g_hash_table_foreach_remove(w->retries, no_retry_due, w->retry_at);
}

/* A folder a user dropped is removed from IN once every file in it was
 * handled: when it has been empty and unchanged for ten quiet periods
 * (a copy in progress creates its next file long before that), or at
 * once (now_or_never: at the end of --once). Deepest first, so that a
 * folder of empty folders goes in one pass. */
/* Whether f's folders are not the ones their names now give: IN/REL
 * removed or replaced (a user's folder made again), or its OUT twin
 * removed. The descriptors then point to nothing anyone sees. */
static bool folder_stale(struct watcher *w, const struct folder *f)
{
    struct stat in_st, now_st, out_st;
    const char *slash = strrchr(f->rel, '/');
    const char *last = slash != NULL ? slash + 1 : f->rel;
    char *up = g_strndup(f->rel, slash != NULL ? (gsize)(slash - f->rel) : 0);
    const struct folder *parent = folder_find(w, f->pair, up);

    g_free(up);
    if (fstat(f->in_fd, &in_st) != 0 || fstat(f->out_fd, &out_st) != 0)
        return true;
    if (in_st.st_nlink == 0 || out_st.st_nlink == 0)
        return true;
    return parent != NULL && (fstatat(parent->in_fd, last, &now_st, AT_SYMLINK_NOFOLLOW) != 0 ||
                              now_st.st_dev != in_st.st_dev || now_st.st_ino != in_st.st_ino);
}

/* Forgets f and the folders under it, unless a file of theirs is being
 * handled; the next scan of the parent finds what is there now. */
static void forget_tree(struct watcher *w, guint index)
{
    struct folder *f = g_ptr_array_index(w->folders, index);
    char *prefix = g_strconcat(f->rel, "/", NULL);
    GArray *drop = g_array_new(FALSE, FALSE, sizeof(guint));
    bool busy = false;

    for (guint i = 0; i < w->folders->len; i++) {
        struct folder *g = g_ptr_array_index(w->folders, i);
        if (g->pair == f->pair && (i == index || g_str_has_prefix(g->rel, prefix))) {
            busy = busy || g->busy > 0;
            g_array_append_val(drop, i);
        }
    }
    if (!busy) {
        mg_log(LOG_NOTICE, "%s: folder %s was removed or made again: looked at anew", f->pair->name,
               f->rel);
        for (guint k = drop->len; k-- > 0;)
            g_ptr_array_remove_index(w->folders, g_array_index(drop, guint, k));
    }
    g_array_unref(drop);
    g_free(prefix);
}

static void prune(struct watcher *w, bool now_or_never)
{
    gint64 now = g_get_monotonic_time();

    if (w->folders->len < w->max_folders)
        w->folders_full = false;

    for (guint i = w->folders->len; i-- > 0;) {
        struct folder *f = g_ptr_array_index(w->folders, i);
        if (f->depth >= 1 && f->busy == 0 && folder_stale(w, f)) {
            forget_tree(w, i);
            i = MIN(i, w->folders->len); /* what follows i may have gone */
        }
    }

    for (guint i = w->folders->len; i-- > 0;) {
        struct folder *f = g_ptr_array_index(w->folders, i);
        struct folder *parent;
        GPtrArray *names;
        struct stat st;
        const char *slash;
        bool empty;

        /* only what the scan found empty (or a child removed below) is
         * listed again, to be sure before it goes */
        if (f->depth < 2 || f->busy > 0)
            continue;
        if (!f->seen_empty) {
            mg_fs_stable_init(&f->empty);
            continue;
        }
        names = list(f->in_fd);
        empty = names->len == 0;
        g_ptr_array_unref(names);
        if (!empty || fstat(f->in_fd, &st) != 0) {
            mg_fs_stable_init(&f->empty);
            continue;
        }
        if (!now_or_never && !mg_fs_stable_check(&f->empty, &st, now, w->quiet_us * 10))
            continue;
        slash = strrchr(f->rel, '/');
        {
            char *up = g_strndup(f->rel, (gsize)(slash - f->rel));
            parent = folder_find(w, f->pair, up);
            g_free(up);
        }
        {
            struct stat named;
            /* the folder of that name is still this one (not one made anew) */
            if (parent == NULL ||
                fstatat(parent->in_fd, slash + 1, &named, AT_SYMLINK_NOFOLLOW) != 0 ||
                named.st_dev != st.st_dev || named.st_ino != st.st_ino ||
                unlinkat(parent->in_fd, slash + 1, AT_REMOVEDIR) != 0)
                continue; /* not empty any more, or gone: the scan sees it */
        }
        mg_log(LOG_INFO, "%s: %s: the folder is empty: removed", f->pair->name, f->rel);
        parent->seen_empty = true; /* perhaps empty now: looked at later in this pass */
        g_ptr_array_remove_index(w->folders, i);
    }
}

static int open_dir(const char *path, bool create)
{
    if (create && g_mkdir_with_parents(path, 0700) != 0)
        return -1;
    return open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
}

/* Owner and group names of a pair to ids; false (logged) when unknown. */
static bool resolve_owner(struct pair *pr, const char *owner, const char *group)
{
    pr->ctx.owner = (uid_t)-1;
    pr->ctx.group = (gid_t)-1;
    if (owner != NULL) {
        struct passwd *pw = getpwnam(owner);
        if (pw == NULL) {
            mg_log(LOG_ERR, "[watch %s] owner: no such user '%s'", pr->name, owner);
            return false;
        }
        pr->ctx.owner = pw->pw_uid;
    }
    if (group != NULL) {
        struct group *gr = getgrnam(group);
        if (gr == NULL) {
            mg_log(LOG_ERR, "[watch %s] group: no such group '%s'", pr->name, group);
            return false;
        }
        pr->ctx.group = gr->gr_gid;
    }
    return true;
}

static struct pair *pair_new(const char *name, const char *in, const char *out, int *rc)
{
    struct pair *pr = g_new0(struct pair, 1);

    pr->name = g_strdup(name);
    pr->in_root = open_dir(in, false);
    pr->out_root = pr->in_root >= 0 ? open_dir(out, false) : -1;
    if (pr->in_root < 0 || pr->out_root < 0) {
        mg_log(LOG_ERR, "[watch %s] %s: %s: cannot open the folder: %s", name,
               pr->in_root < 0 ? "in" : "out", pr->in_root < 0 ? in : out, g_strerror(errno));
        *rc = MG_EX_TEMPFAIL;
    }
    return pr;
}

/* Writes the status file (at most once a second unless force). */
static void status_tick(struct watcher *w, bool force)
{
    static gint64 last;
    gint64 now = g_get_monotonic_time();
    GError *e = NULL;

    if (!force && now - last < G_USEC_PER_SEC)
        return;
    last = now;
    {
        unsigned queued = g_thread_pool_unprocessed(w->pool);
        mg_wstatus_set_queue(w->status, queued);
        mg_wstatus_set_in_progress(w->status, in_flight(w) - MIN(queued, in_flight(w)));
    }
    if (!mg_wstatus_write(w->status, w->state_fd, (gint64)time(NULL), &e)) {
        mg_log(LOG_ERR, "status: %s", e->message);
        g_clear_error(&e);
    }
}

int main(int argc, char **argv)
{
    char *in = NULL, *out = NULL, *state = NULL, *qdir = NULL, *db = NULL, *rules_dir = NULL;
    char *config = NULL, *lang = NULL, *audit = NULL;
    gint quiet_ms = -1, scan_ms = -1, workers = 0;
    gboolean once = FALSE, foreground = FALSE;
    GOptionEntry entries[] = {
        {"in", 0, 0, G_OPTION_ARG_FILENAME, &in, "input (drop) folder", "DIR"},
        {"out", 0, 0, G_OPTION_ARG_FILENAME, &out, "output folder", "DIR"},
        {"state", 0, 0, G_OPTION_ARG_FILENAME, &state, "state folder (journal, status)", "DIR"},
        {"quarantine", 0, 0, G_OPTION_ARG_FILENAME, &qdir, "quarantine directory", "DIR"},
        {"clamav-db", 0, 0, G_OPTION_ARG_FILENAME, &db, "ClamAV database directory", "DIR"},
        {"rules", 0, 0, G_OPTION_ARG_FILENAME, &rules_dir, "policy directory", "DIR"},
        {"config", 0, 0, G_OPTION_ARG_FILENAME, &config, "configuration file", "FILE"},
        {"lang", 0, 0, G_OPTION_ARG_STRING, &lang, "language of the reports (ja, en)", "LANG"},
        {"audit", 0, 0, G_OPTION_ARG_FILENAME, &audit, "audit log (- for standard error)", "FILE"},
        {"workers", 0, 0, G_OPTION_ARG_INT, &workers, "files sanitised at once", "N"},
        {"quiet-ms", 0, 0, G_OPTION_ARG_INT, &quiet_ms, "stable this long before taken", "N"},
        {"scan-ms", 0, 0, G_OPTION_ARG_INT, &scan_ms, "rescan interval", "N"},
        {"once", 0, 0, G_OPTION_ARG_NONE, &once, "process what is waiting, then exit", NULL},
        {"foreground", 0, 0, G_OPTION_ARG_NONE, &foreground,
         "stay in the foreground, log to standard error too", NULL},
        {NULL, 0, 0, 0, NULL, NULL, NULL},
    };
    GOptionContext *ctx = g_option_context_new(NULL);
    struct mg_cli_engine en;
    struct mg_sanitize_opts o;
    struct mg_quarantine *q = NULL;
    struct mg_wjournal *journal = NULL;
    struct watcher w;
    GError *e = NULL;
    int rc = MG_EX_OK;

    memset(&en, 0, sizeof en);
    memset(&w, 0, sizeof w);
    w.inotify_fd = w.wake_fd = w.state_fd = -1;
    w.pairs = g_ptr_array_new_with_free_func(pair_free);
    w.folders = g_ptr_array_new_with_free_func(folder_free);
    w.stable = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
    w.retry_at = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
    w.busy = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
    w.noted = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
    w.retries = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
    w.unreadable = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
    w.inodes = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
    w.stuck = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
    w.finished = g_async_queue_new();
    g_option_context_add_main_entries(ctx, entries, NULL);
    if (!g_option_context_parse(ctx, &argc, &argv, &e) || (in == NULL) != (out == NULL) ||
        argc != 1 || quiet_ms < -1 || (scan_ms != -1 && scan_ms < 10) || workers < 0 ||
        workers > 64 || (lang != NULL && strcmp(lang, "ja") != 0 && strcmp(lang, "en") != 0)) {
        mg_log_stderr("mugaika-watch: %s\n%s",
                      e != NULL                       ? e->message
                      : (in == NULL) != (out == NULL) ? "--in and --out go together"
                                                      : "bad arguments",
                      "usage: mugaika-watch [--in DIR --out DIR] [--state DIR] [--quarantine DIR]\n"
                      "       [--clamav-db DIR] [--rules DIR] [--config FILE] [--lang ja|en]\n"
                      "       [--audit FILE|-] [--workers N] [--quiet-ms N] [--scan-ms N] [--once] "
                      "[--foreground]");
        rc = MG_EX_USAGE;
        goto out;
    }
    rc = mg_cli_engine_open(&en, "watch", config, rules_dir, db);
    if (rc != MG_EX_OK)
        goto out;
    if (in == NULL && en.cfg.n_watch == 0) {
        mg_log_stderr("mugaika-watch: no folders: give --in and --out, or [watch NAME] groups in "
                      "the configuration file (%s)",
                      en.cfg.file != NULL ? en.cfg.file : "none was read");
        rc = MG_EX_USAGE;
        goto out;
    }
    if (once)
        foreground = TRUE;
    /* under systemd the journal takes standard error itself */
    mg_log_open("mugaika-watch", foreground && getenv("JOURNAL_STREAM") == NULL, en.cfg.log_level);

    /* the pairs: the command line's, else the file's */
    if (in != NULL) {
        struct pair *pr = pair_new("default", in, out, &rc);
        g_ptr_array_add(w.pairs, pr);
        pr->ctx.owner = (uid_t)-1;
        pr->ctx.group = (gid_t)-1;
        pr->ctx.mode = 0644;
        pr->user_files = en.cfg.watch_user_files;
        pr->user_bytes = en.cfg.watch_user_bytes;
    } else {
        for (unsigned i = 0; i < en.cfg.n_watch; i++) {
            const struct mg_config_watch *cw = &en.cfg.watch[i];
            struct pair *pr = pair_new(cw->name, cw->in, cw->out, &rc);
            g_ptr_array_add(w.pairs, pr);
            if (!resolve_owner(pr, cw->owner, cw->group) && rc == MG_EX_OK)
                rc = MG_EX_CONFIG;
            pr->ctx.mode = cw->mode;
            pr->user_files = cw->user_files;
            pr->user_bytes = cw->user_bytes;
        }
    }
    if (rc != MG_EX_OK)
        goto out;

    q = mg_quarantine_open(qdir != NULL                    ? qdir
                           : en.cfg.quarantine_dir != NULL ? en.cfg.quarantine_dir
                                                           : MG_QUARANTINE_DEFAULT_DIR,
                           &e);
    if (state == NULL)
        state = g_strdup(en.cfg.watch_state != NULL ? en.cfg.watch_state
                                                    : MG_CONFIG_DEFAULT_WATCH_STATE);
    w.state_fd = open_dir(state, true);
    if (q == NULL || w.state_fd < 0) {
        mg_log(LOG_ERR, "%s", q == NULL ? e->message : "--state: cannot open the folder");
        rc = MG_EX_TEMPFAIL;
        goto out;
    }
    journal = mg_wjournal_open(w.state_fd, &e);
    if (journal == NULL) {
        mg_log(LOG_ERR, "journal: %s", e->message);
        rc = g_error_matches(e, MG_WJOURNAL_ERROR, MG_WJOURNAL_ERROR_CORRUPT) ? MG_EX_CONFIG
                                                                              : MG_EX_TEMPFAIL;
        goto out;
    }
    mg_cli_engine_opts(&en, &o);
    o.quarantine = q;
    if (lang != NULL)
        o.lang = lang;
    for (guint i = 0; i < w.pairs->len; i++) {
        struct pair *pr = g_ptr_array_index(w.pairs, i);
        pr->ctx.opts = &o;
        pr->ctx.journal = journal;
        pr->ctx.lang = o.lang;
        pr->ctx.audit = audit != NULL ? audit : en.cfg.audit;
    }
    {
        /* two descriptors per watched folder: as many as the hard limit
         * allows, keeping room for the workers, the spool, the journal */
        struct rlimit nf;
        if (getrlimit(RLIMIT_NOFILE, &nf) == 0) {
            if (nf.rlim_cur < nf.rlim_max) {
                nf.rlim_cur = nf.rlim_max;
                (void)setrlimit(RLIMIT_NOFILE, &nf);
                (void)getrlimit(RLIMIT_NOFILE, &nf);
            }
            w.max_folders = nf.rlim_cur > 160 ? (unsigned)MIN((nf.rlim_cur - 128) / 2, 50000) : 16;
        } else {
            w.max_folders = 400;
        }
    }
    w.workers = workers > 0 ? (unsigned)workers : en.cfg.watch_workers;
    w.queue = en.cfg.watch_queue;
    w.quiet_us = (gint64)(quiet_ms >= 0 ? (unsigned)quiet_ms : en.cfg.watch_quiet_ms) * 1000;
    if (scan_ms < 0)
        scan_ms = (gint)en.cfg.watch_scan_ms;
    w.inotify_fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    w.wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);

    /* every folder known before recovery looks anything up */
    for (guint p = 0; p < w.pairs->len; p++)
        folder_tree(&w, folder_of(&w, g_ptr_array_index(w.pairs, p), NULL, NULL));
    if (!mg_witem_recover(&((struct pair *)g_ptr_array_index(w.pairs, 0))->ctx, lookup, &w, &e)) {
        mg_log(LOG_ERR, "recovery: %s", e->message);
        rc = MG_EX_TEMPFAIL;
        goto out;
    }
    for (guint i = 0; i < w.folders->len; i++)
        sweep(((struct folder *)g_ptr_array_index(w.folders, i))->out_fd);
    if (!mg_wjournal_compact(journal, &e)) {
        mg_log(LOG_ERR, "journal: %s", e->message);
        g_clear_error(&e);
    }

    if (!foreground && audit != NULL && strcmp(audit, "-") != 0 && !g_path_is_absolute(audit)) {
        /* daemon() goes to "/": the audit log is opened at every line */
        char *abs = g_canonicalize_filename(audit, NULL);
        g_free(audit);
        audit = abs;
        for (guint i = 0; i < w.pairs->len; i++)
            ((struct pair *)g_ptr_array_index(w.pairs, i))->ctx.audit = audit;
    }
    if (!foreground && daemon(0, 0) != 0) {
        mg_log(LOG_ERR, "cannot go into the background: %s", g_strerror(errno));
        rc = MG_EX_SOFTWARE;
        goto out;
    }
    {
        struct sigaction sa;
        memset(&sa, 0, sizeof sa);
        sa.sa_handler = on_signal;
        sigaction(SIGTERM, &sa, NULL);
        sigaction(SIGINT, &sa, NULL);
    }
    /* after daemon(): the status holds the daemon's pid */
    w.status = mg_wstatus_new(w.workers);
    if (!mg_wstatus_load(w.status, w.state_fd, (gint64)time(NULL), &e)) {
        mg_log(LOG_WARNING, "status: %s (starting with empty counters)", e->message);
        g_clear_error(&e);
    }
    /* the threads start after daemon(): a fork keeps only its caller */
    w.pool = g_thread_pool_new_full(run_job, &w, job_free, (gint)w.workers, TRUE, &e);
    if (w.pool == NULL) {
        mg_log(LOG_ERR, "workers: %s", e->message);
        rc = MG_EX_SOFTWARE;
        goto out;
    }
    mg_log(LOG_INFO, "watching %u folder pair%s with %u worker%s", w.pairs->len,
           w.pairs->len == 1 ? "" : "s", w.workers, w.workers == 1 ? "" : "s");
    {
        gint64 once_until = g_get_monotonic_time() + w.quiet_us * 4 + 30 * G_USEC_PER_SEC;
        while (!stop) {
            unsigned waiting;

            drain(&w);
            waiting = scan(&w);
            prune(&w, false);
            forget_unseen(&w);
            status_tick(&w, false);
            if (once && in_flight(&w) == 0 &&
                (waiting == 0 || g_get_monotonic_time() > once_until)) {
                prune(&w, true);
                break;
            }
            {
                struct pollfd p[2] = {{w.wake_fd, POLLIN, 0}, {w.inotify_fd, POLLIN, 0}};
                if (poll(p, w.inotify_fd >= 0 ? 2 : 1, scan_ms) > 0) {
                    char buf[4096];
                    uint64_t n;
                    if (read(w.wake_fd, &n, sizeof n) < 0) {
                        /* nothing finished */
                    }
                    while (w.inotify_fd >= 0 && read(w.inotify_fd, buf, sizeof buf) > 0)
                        ; /* events only wake the scan */
                }
            }
            if (mg_wjournal_broken(journal)) {
                mg_log(LOG_ERR,
                       "journal: a write to %s/journal failed: stopping (status 75) to "
                       "start again with the journal read anew",
                       state);
                rc = MG_EX_TEMPFAIL;
                break;
            }
            if (mg_wjournal_size(journal) > MG_WJOURNAL_COMPACT_SIZE &&
                !mg_wjournal_compact(journal, &e))
                g_clear_error(&e);
        }
    }
    /* the items in progress are finished; those not started stay in IN
     * (run_job hands them back at once, with their share of the quota) */
    g_atomic_int_set(&w.stopping, 1);
    g_thread_pool_free(w.pool, FALSE, TRUE);
    w.pool = NULL;
    drain(&w);
    g_hash_table_remove_all(w.busy);
    mg_log(LOG_INFO, "stopping: %u done, %u refused, %u failed", w.done, w.refused, w.failed);
    mg_wstatus_set_running(w.status, false);
    {
        GError *se = NULL;
        if (!mg_wstatus_write(w.status, w.state_fd, (gint64)time(NULL), &se)) {
            mg_log(LOG_ERR, "status: %s", se->message);
            g_error_free(se);
        }
    }
out:
    g_clear_error(&e);
    if (w.pool != NULL)
        g_thread_pool_free(w.pool, TRUE, TRUE);
    if (journal != NULL)
        mg_wjournal_close(journal);
    g_ptr_array_unref(w.folders);
    g_ptr_array_unref(w.pairs);
    g_hash_table_unref(w.stable);
    g_hash_table_unref(w.retry_at);
    g_hash_table_unref(w.busy);
    g_hash_table_unref(w.noted);
    g_hash_table_unref(w.retries);
    g_hash_table_unref(w.unreadable);
    g_hash_table_unref(w.inodes);
    g_hash_table_unref(w.stuck);
    g_async_queue_unref(w.finished);
    if (w.status != NULL)
        mg_wstatus_free(w.status);
    if (w.inotify_fd >= 0)
        close(w.inotify_fd);
    if (w.wake_fd >= 0)
        close(w.wake_fd);
    if (w.state_fd >= 0)
        close(w.state_fd);
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
    g_free(audit);
    return rc;
}
