/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * NAME
 *	item 3
 * SUMMARY
 *	one dropped file, journaled step by step; recovery
 * DESCRIPTION
 *	See include/mugaika/witem.h and docs/architecture.md. The order
 *	of the steps is what makes a crash harmless:
 *
 *	  begin  the journal knows the input (name, inode, size, mtime);
 *	  sanitise: the original is committed to the quarantine;
 *	  outputs and the report written under hidden temporary names
 *	         (a folder: every file and folder in it under its final
 *	         name, the folder itself under a hidden one), each given
 *	         its owner and mode and fsynced, then the output folder
 *	         fsynced (a committed item never has a partial one);
 *	  commit the journal knows every temporary and its final name;
 *	  rename each to its final name (never replacing anything), fsync
 *	         the folder;
 *	  remove the input (only if it is still the same file);
 *	  done.
 *
 *	Final names are chosen before commit so that recovery renames to
 *	the same names, and the report can name them; a name taken in the
 *	meantime (another program writing to the output folder) gets the
 *	next free "(n)". Choosing and taking names is serialised by one
 *	mutex (name_lock): between the check that a name is free ignoring
 *	case and its rename, no other thread of this process renames into
 *	any output folder. RENAME_NOREPLACE still guards against other
 *	programs. Apart from that mutex, the test hooks (set before any
 *	thread starts) and the environment variable read once, nothing in
 *	this file is shared between calls.
 *
 *	MUGAIKA_WATCH_TEST_KILL=commit makes the process kill itself
 *	(SIGKILL) right after a commit is recorded: the end-to-end tests
 *	use it to stop the daemon exactly between commit and rename.
 * LIMITS
 *	A member's folders: at most MG_WATCH_MAX_DIRS levels (deeper ones
 *	are not made: the file lands in the deepest folder made). Names
 *	inside the archive's folder are cut to NAME_CUT bytes before a
 *	" (n)" is added.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <syslog.h>
#include <unistd.h>

#include <mugaika/fsname.h>
#include <mugaika/fsops.h>
#include <mugaika/log.h>
#include <mugaika/watch.h>
#include <mugaika/witem.h>

#define NAME_TRIES 1000 /* renames lost to another program before giving up */
#define NAME_CUT   200  /* bytes of a name in the archive's folder before " (n)" */

static GMutex name_lock;
static struct mg_witem_test_hooks hooks;

void mg_witem_set_test_hooks(const struct mg_witem_test_hooks *h)
{
    if (h != NULL)
        hooks = *h;
    else
        memset(&hooks, 0, sizeof hooks);
}

/* MUGAIKA_WATCH_TEST_KILL=commit, read once. */
static bool kill_at_commit(void)
{
    static gsize once;
    static bool on;

    if (g_once_init_enter(&once)) {
        on = g_strcmp0(g_getenv("MUGAIKA_WATCH_TEST_KILL"), "commit") == 0;
        g_once_init_leave(&once, 1);
    }
    return on;
}

/* An output of the item in the output folder: a file, or the folder
 * of an archive's members. */
struct out_file {
    char *tmp, *want, *final;
    bool folder;
    struct mg_fs_out *o; /* a file while it is written */
    bool present;        /* tmp exists: made, not renamed */
};

/* A folder inside the archive's folder, as built. */
struct node {
    char *name;        /* its name in its parent */
    GHashTable *names; /* case-folded names of its entries */
    GHashTable *dirs;  /* case-folded safe wanted name -> struct node * */
    GPtrArray *subs;   /* of struct node *, owned */
};

struct collect {
    const struct mg_witem_ctx *c;
    const struct mg_witem_dirs *d;
    GPtrArray *outs;         /* of struct out_file *, owned */
    GHashTable *taken;       /* case-folded final names of outs */
    bool keep;               /* committed: the temporaries stay whatever happens */
    struct out_file *folder; /* the archive's folder (also in outs), or NULL */
    int folder_fd;
    struct node *root;
    bool settled;       /* the folder's owner, modes and fsyncs are done */
    GPtrArray *listing; /* of char *: the files in the folder, relative */
};

static mode_t file_mode(const struct mg_witem_ctx *c)
{
    return c->mode != 0 ? c->mode & 0777 : 0644;
}

static char *fold(const char *s)
{
    return g_utf8_casefold(s, -1);
}

/* "stem (n).ext" of name */
static char *numbered(const char *name, unsigned n)
{
    const char *dot = strrchr(name, '.');
    size_t stem = dot != NULL && dot != name ? (size_t)(dot - name) : strlen(name);

    return g_strdup_printf("%.*s (%u)%s", (int)stem, name, n, name + stem);
}

/* name cut to at most max bytes on a character boundary, its extension
 * (up to 32 bytes) kept. */
static char *cut_name(const char *name, size_t max)
{
    size_t len = strlen(name);
    const char *dot = strrchr(name, '.');
    size_t ext = dot != NULL && dot != name && strlen(dot) <= 32 ? strlen(dot) : 0;
    const char *end;

    if (len <= max)
        return g_strdup(name);
    end = g_utf8_find_prev_char(name, name + (max - ext) + 1);
    if (end == NULL)
        end = name;
    return g_strdup_printf("%.*s%s", (int)(end - name), name, ext > 0 ? dot : "");
}

/* --- the archive's folder, in memory ---------------------------------------- */

static struct node *node_new(const char *name)
{
    struct node *n = g_new0(struct node, 1);

    n->name = g_strdup(name);
    n->names = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
    n->dirs = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
    n->subs = g_ptr_array_new();
    return n;
}

static void node_free(struct node *n)
{
    if (n == NULL)
        return;
    for (guint i = 0; i < n->subs->len; i++)
        node_free(g_ptr_array_index(n->subs, i));
    g_ptr_array_unref(n->subs);
    g_hash_table_unref(n->names);
    g_hash_table_unref(n->dirs);
    g_free(n->name);
    g_free(n);
}

/* A name for a new entry of n, free there ignoring case: want, then
 * "want (2)" ("stem (2).ext" for a file). Owned. */
static char *node_claim(struct node *n, const char *want, bool file)
{
    char *base = cut_name(want, NAME_CUT);
    char *cand = g_strdup(base);

    for (unsigned i = 2;; i++) {
        char *key = fold(cand);
        if (!g_hash_table_contains(n->names, key)) {
            g_hash_table_add(n->names, key);
            break;
        }
        g_free(key);
        g_free(cand);
        cand = file ? numbered(base, i) : g_strdup_printf("%s (%u)", base, i);
    }
    g_free(base);
    return cand;
}

/* The subfolder of n (open as fd) for the archive's folder name raw:
 * the one made before for the same name, or a new one. *sub_fd: its
 * descriptor (the caller closes it). */
static struct node *node_dir(struct node *n, int fd, const char *raw, int *sub_fd, GError **err)
{
    char *safe = mg_fsname_safe(raw, "folder");
    char *key = fold(safe);
    struct node *sub = g_hash_table_lookup(n->dirs, key);

    if (sub != NULL) {
        *sub_fd = openat(fd, sub->name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (*sub_fd < 0) {
            g_set_error(err, MG_FSOPS_ERROR, MG_FSOPS_ERROR_IO, "%s: open: %s", sub->name,
                        g_strerror(errno));
            sub = NULL;
        }
        g_free(key);
    } else {
        char *name = node_claim(n, safe, false);
        *sub_fd = mg_fs_mkdir_new(fd, name, err);
        if (*sub_fd >= 0) {
            sub = node_new(name);
            g_hash_table_insert(n->dirs, key, sub);
            g_ptr_array_add(n->subs, sub);
        } else {
            g_free(key);
        }
        g_free(name);
    }
    g_free(safe);
    return sub;
}

/* Owner, mode and fsync of every folder of the tree, deepest first. */
static bool settle_tree(const struct mg_witem_ctx *c, const struct node *n, int fd, GError **err)
{
    for (guint i = 0; i < n->subs->len; i++) {
        const struct node *sub = g_ptr_array_index(n->subs, i);
        int sfd = openat(fd, sub->name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        bool ok;
        if (sfd < 0) {
            g_set_error(err, MG_FSOPS_ERROR, MG_FSOPS_ERROR_IO, "%s: open: %s", sub->name,
                        g_strerror(errno));
            return false;
        }
        ok = settle_tree(c, sub, sfd, err);
        close(sfd);
        if (!ok)
            return false;
    }
    return mg_fs_dir_settle(fd, c->owner, c->group, mg_fs_dir_mode(file_mode(c)), err);
}

/* --- outputs ------------------------------------------------------------------ */

static void collect_init(struct collect *k, const struct mg_witem_ctx *c,
                         const struct mg_witem_dirs *d)
{
    memset(k, 0, sizeof *k);
    k->c = c;
    k->d = d;
    k->outs = g_ptr_array_new();
    k->taken = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
    k->folder_fd = -1;
    k->listing = g_ptr_array_new_with_free_func(g_free);
}

/* Forgets every output; removes their temporaries unless committed. */
static void collect_clear(struct collect *k)
{
    for (guint i = 0; i < k->outs->len; i++) {
        struct out_file *f = g_ptr_array_index(k->outs, i);
        if (f->o != NULL) {
            mg_fs_out_abort(f->o); /* never committed with an open writer */
        } else if (f->present && !k->keep) {
            GError *e = NULL;
            if (!mg_fs_remove_temp(k->d->out_fd, f->tmp, &e))
                g_clear_error(&e); /* the next start sweeps it */
        }
        g_free(f->tmp);
        g_free(f->want);
        g_free(f->final);
        g_free(f);
    }
    g_ptr_array_set_size(k->outs, 0);
    g_hash_table_remove_all(k->taken);
    if (k->folder_fd >= 0)
        close(k->folder_fd);
    k->folder_fd = -1;
    k->folder = NULL;
    node_free(k->root);
    k->root = NULL;
    k->settled = false;
    g_ptr_array_set_size(k->listing, 0);
}

static void collect_fini(struct collect *k)
{
    collect_clear(k);
    g_ptr_array_unref(k->outs);
    g_hash_table_unref(k->taken);
    g_ptr_array_unref(k->listing);
}

static struct out_file *out_add(struct collect *k, const char *want, bool folder)
{
    struct out_file *f = g_new0(struct out_file, 1);

    f->want = mg_fsname_safe(want, folder ? "folder" : "file");
    f->folder = folder;
    g_ptr_array_add(k->outs, f);
    return f;
}

/* A writer of a new file named name in dirfd, with the item's owner. */
static struct mg_fs_out *writer(struct collect *k, int dirfd, const char *name, GError **err)
{
    struct mg_fs_out *o = mg_fs_out_begin(dirfd, name, file_mode(k->c), err);

    if (o != NULL)
        mg_fs_out_set_owner(o, k->c->owner, k->c->group);
    return o;
}

/* A new temporary output file in the output folder, in k->outs before
 * anything is written, so that clearing k removes it whatever happens. */
static struct out_file *file_new(struct collect *k, const char *want, GError **err)
{
    struct out_file *f = out_add(k, want, false);

    f->tmp = mg_fsname_temp(NULL);
    f->o = writer(k, k->d->out_fd, f->tmp, err);
    f->present = f->o != NULL;
    return f->o != NULL ? f : NULL;
}

static bool copy_stream(struct mg_fs_out *o, GMimeStream *content, const char *name, GError **err)
{
    char buf[65536];
    ssize_t n;

    while ((n = g_mime_stream_read(content, buf, sizeof buf)) > 0)
        if (!mg_fs_out_write(o, buf, (size_t)n, err))
            return false;
    if (n < 0) {
        g_set_error(err, MG_FSOPS_ERROR, MG_FSOPS_ERROR_IO, "%s: reading the output: %s", name,
                    g_strerror(errno));
        return false;
    }
    return true;
}

/* The archive's folder, made under a hidden name on first use. */
static bool folder_open(struct collect *k, const char *raw, GError **err)
{
    struct out_file *f;

    if (k->folder != NULL)
        return true;
    f = out_add(k, raw, true);
    for (int tries = 0; k->folder_fd < 0; tries++) {
        GError *e = NULL;
        g_free(f->tmp);
        f->tmp = mg_fsname_temp(NULL);
        k->folder_fd = mg_fs_mkdir_new(k->d->out_fd, f->tmp, &e);
        if (k->folder_fd < 0 &&
            (!g_error_matches(e, MG_FSOPS_ERROR, MG_FSOPS_ERROR_EXISTS) || tries == 7)) {
            g_propagate_error(err, e);
            return false;
        }
        g_clear_error(&e);
    }
    f->present = true;
    k->folder = f;
    k->root = node_new(NULL);
    return true;
}

/* A member in the archive's folder, under its folders. */
static bool member_out(struct collect *k, const struct mg_watch_output *o, GMimeStream *content,
                       GError **err)
{
    struct node *n;
    GString *rel = g_string_new(NULL);
    struct mg_fs_out *w = NULL;
    char *name = NULL, *safe;
    bool ok = false;
    int fd;

    if (!folder_open(k, o->dirs[0], err)) {
        g_string_free(rel, TRUE);
        return false;
    }
    n = k->root;
    fd = fcntl(k->folder_fd, F_DUPFD_CLOEXEC, 0);
    for (guint i = 1; fd >= 0 && o->dirs[i] != NULL && i < MG_WATCH_MAX_DIRS; i++) {
        int sub_fd = -1;
        n = node_dir(n, fd, o->dirs[i], &sub_fd, err);
        close(fd);
        fd = sub_fd;
        if (n == NULL)
            goto out;
        g_string_append_printf(rel, "%s/", n->name);
    }
    if (fd < 0) {
        if (err != NULL && *err == NULL)
            g_set_error(err, MG_FSOPS_ERROR, MG_FSOPS_ERROR_IO, "dup: %s", g_strerror(errno));
        goto out;
    }
    safe = mg_fsname_safe(o->name, "file");
    name = node_claim(n, safe, true);
    g_free(safe);
    w = writer(k, fd, name, err);
    if (w == NULL || !copy_stream(w, content, name, err) || !mg_fs_out_close(w, err))
        goto out;
    w = NULL;
    g_string_append(rel, name);
    g_ptr_array_add(k->listing, g_string_free(rel, FALSE));
    rel = NULL;
    ok = true;
out:
    if (w != NULL)
        mg_fs_out_abort(w);
    if (fd >= 0)
        close(fd);
    if (rel != NULL)
        g_string_free(rel, TRUE);
    g_free(name);
    return ok;
}

static bool on_output(void *u, const struct mg_watch_output *o, GMimeStream *content, GError **err)
{
    struct collect *k = u;
    struct out_file *f;

    if (hooks.on_output != NULL && !hooks.on_output(hooks.user)) {
        g_set_error(err, G_FILE_ERROR, G_FILE_ERROR_NOSPC, "%s: refused (test)", o->name);
        return false;
    }
    if (o->dirs != NULL && o->dirs[0] != NULL)
        return member_out(k, o, content, err);
    f = file_new(k, o->name, err);
    return f != NULL && copy_stream(f->o, content, o->name, err);
}

static bool add_text(struct collect *k, const char *want, const char *text, GError **err)
{
    struct out_file *f = file_new(k, want, err);

    return f != NULL && mg_fs_out_write(f->o, text, strlen(text), err);
}

/* Every file closed (owner, mode, fsync), the archive's folder
 * settled, then the output folder fsynced: all is durable under the
 * temporary names. */
static bool settle_outs(struct collect *k, GError **err)
{
    for (guint i = 0; i < k->outs->len; i++) {
        struct out_file *f = g_ptr_array_index(k->outs, i);
        if (f->o != NULL) {
            if (!mg_fs_out_close(f->o, err))
                return false;
            f->o = NULL;
        }
    }
    if (k->folder != NULL && !k->settled) {
        if (!settle_tree(k->c, k->root, k->folder_fd, err))
            return false;
        k->settled = true;
    }
    return mg_fs_fsync_dir(k->d->out_fd, err);
}

/* A final name for want: free in the folder and not in taken (both
 * ignoring case). Owned; NULL with errno. */
static char *pick_name(int out_fd, GHashTable *taken, const char *want)
{
    char *cand = mg_fsname_unique(out_fd, want);

    for (unsigned n = 2; cand != NULL; n++) {
        char *key = fold(cand);
        bool clash = g_hash_table_contains(taken, key);
        g_free(key);
        if (!clash)
            return cand;
        g_free(cand);
        if (n >= MG_FSNAME_UNIQUE_MAX) {
            errno = EEXIST;
            return NULL;
        }
        char *alt = numbered(want, n);
        cand = mg_fsname_unique(out_fd, alt);
        g_free(alt);
    }
    return NULL;
}

/* Final names of the outputs that have none yet. */
static bool choose_finals(struct collect *k, GError **err)
{
    for (guint i = 0; i < k->outs->len; i++) {
        struct out_file *f = g_ptr_array_index(k->outs, i);
        if (f->final != NULL)
            continue;
        f->final = pick_name(k->d->out_fd, k->taken, f->want);
        if (f->final == NULL) {
            g_set_error(err, MG_FSOPS_ERROR, MG_FSOPS_ERROR_EXISTS,
                        "%s: no free name in the output folder: %s", f->want, g_strerror(errno));
            return false;
        }
        g_hash_table_add(k->taken, fold(f->final));
    }
    return true;
}

/* Renames tmp to *final (name_lock held): *final if it is still free
 * ignoring case, else the next free one (want, "want (2)", ...). */
static bool take_name(int out_fd, GHashTable *taken, const char *tmp, const char *want,
                      char **final, GError **err)
{
    for (unsigned t = 0; t < NAME_TRIES; t++) {
        char *free_name = mg_fsname_unique(out_fd, *final);
        GError *e = NULL;
        if (free_name == NULL || strcmp(free_name, *final) != 0) {
            g_free(free_name);
            free_name = pick_name(out_fd, taken, want);
            if (free_name == NULL) {
                g_set_error(err, MG_FSOPS_ERROR, MG_FSOPS_ERROR_EXISTS,
                            "%s: no free name in the output folder: %s", want, g_strerror(errno));
                return false;
            }
            g_free(*final);
            *final = free_name;
        } else {
            g_free(free_name);
        }
        if (mg_fs_rename_noreplace(out_fd, tmp, *final, &e))
            return true;
        if (!g_error_matches(e, MG_FSOPS_ERROR, MG_FSOPS_ERROR_EXISTS)) {
            g_propagate_error(err, e);
            return false;
        }
        g_error_free(e); /* another program took it: the next one */
    }
    g_set_error(err, MG_FSOPS_ERROR, MG_FSOPS_ERROR_EXISTS, "%s: no free name", want);
    return false;
}

/* Renames every temporary to its final name. */
static bool rename_outs(struct collect *k, GError **err)
{
    bool ok = true;

    g_mutex_lock(&name_lock);
    for (guint i = 0; ok && i < k->outs->len; i++) {
        struct out_file *f = g_ptr_array_index(k->outs, i);
        char *key = fold(f->final);
        if (!f->present) {
            g_free(key);
            continue;
        }
        g_hash_table_remove(k->taken, key);
        g_free(key);
        ok = take_name(k->d->out_fd, k->taken, f->tmp, f->want, &f->final, err);
        g_hash_table_add(k->taken, fold(f->final));
        if (ok)
            f->present = false;
    }
    g_mutex_unlock(&name_lock);
    return ok;
}

/* The names the report lists: each output by its final name; the
 * archive's folder as "NAME/", then each file in it. NULL-terminated,
 * g_strfreev. */
static char **report_names(const struct collect *k)
{
    GPtrArray *names = g_ptr_array_new();

    for (guint i = 0; i < k->outs->len; i++) {
        const struct out_file *f = g_ptr_array_index(k->outs, i);
        const char *n = f->final != NULL ? f->final : f->want;
        if (!f->folder) {
            g_ptr_array_add(names, g_strdup(n));
            continue;
        }
        g_ptr_array_add(names, g_strconcat(n, "/", NULL));
        for (guint j = 0; j < k->listing->len; j++)
            g_ptr_array_add(names, g_strconcat(n, "/", g_ptr_array_index(k->listing, j), NULL));
    }
    g_ptr_array_add(names, NULL);
    return (char **)g_ptr_array_free(names, FALSE);
}

/* One JSON line in the audit log (c->audit) for an item: the pipeline's
 * record when it finished (as `mugaika sanitize --audit` writes it), with
 * where the file came from, what became of it and the names it was
 * delivered under. A failure to write is logged, not fatal: the report
 * and the quarantine hold the same facts. */
static void audit_item(const struct mg_witem_ctx *c, const struct mg_witem_dirs *d,
                       const char *shown, const struct mg_watch_result *res, char **names,
                       const char *outcome, const char *why)
{
    JsonObject *o;
    JsonArray *a;
    JsonNode *n;
    char *line;
    GError *e = NULL;

    if (c->audit == NULL)
        return;
    if (res != NULL && res->audit != NULL) {
        n = json_node_copy(res->audit);
    } else {
        GDateTime *now = g_date_time_new_now_utc();
        char *ts = g_date_time_format_iso8601(now);
        n = json_node_init_object(json_node_alloc(), json_object_new());
        json_object_set_string_member(json_node_get_object(n), "time", ts);
        g_free(ts);
        g_date_time_unref(now);
    }
    o = json_node_get_object(n);
    json_object_set_string_member(o, "source", "watch");
    json_object_set_string_member(o, "folder", d->in_key);
    json_object_set_string_member(o, "file", shown);
    json_object_set_string_member(o, "outcome", outcome);
    if (why != NULL)
        json_object_set_string_member(o, "reason", why);
    a = json_array_new();
    for (char **p = names; p != NULL && *p != NULL; p++)
        json_array_add_string_element(a, *p);
    json_object_set_array_member(o, "outputs", a);
    line = json_to_string(n, FALSE);
    json_node_unref(n);
    if (!mg_log_append(c->audit, line, &e)) {
        mg_log(LOG_ERR, "audit: %s", e->message);
        g_error_free(e);
    }
    g_free(line);
}

static const char *refused_text(enum mg_fs_kind kind, bool en)
{
    switch (kind) {
    case MG_FS_SYMLINK:
        return en ? "a symbolic link" : "シンボリックリンク";
    case MG_FS_HARDLINK:
        return en ? "a hard link (a second name of a file)"
                  : "ハードリンク（別名で参照されたファイル）";
    case MG_FS_FIFO:
        return en ? "a FIFO (named pipe)" : "名前付きパイプ（FIFO）";
    case MG_FS_SOCKET:
        return en ? "a socket" : "ソケット";
    case MG_FS_DEVICE:
        return en ? "a device" : "デバイスファイル";
    default:
        return en ? "not a plain file" : "通常のファイルではない項目";
    }
}

/* An entry that is not a plain file: a report, then the entry goes
 * (never followed, never read). */
static enum mg_witem_outcome refuse(const struct mg_witem_ctx *c, const struct mg_witem_dirs *d,
                                    const char *name, const char *shown, enum mg_fs_kind kind,
                                    char **why)
{
    bool en = c->lang != NULL && strcmp(c->lang, "en") == 0;
    struct collect k;
    char *want = g_strdup_printf("%s.mugaika.txt", shown);
    char *text =
        en ? g_strdup_printf("[Sanitisation report]\r\nFile: %s\r\n\r\nrefused: this is %s, not a "
                             "plain file. It was removed without being read.\r\n",
                             shown, refused_text(kind, true))
           : g_strdup_printf("【無害化処理の報告】\r\nファイル: %s\r\n\r\nこの項目は%sで、通常の"
                             "ファイルではないため受け付けませんでした（refused）。中身は読まずに"
                             "削除しました。\r\n",
                             shown, refused_text(kind, false));
    GError *e = NULL;
    enum mg_witem_outcome r = MG_WITEM_REFUSED;

    collect_init(&k, c, d);
    if (!add_text(&k, want, text, &e) || !settle_outs(&k, &e) || !choose_finals(&k, &e) ||
        !rename_outs(&k, &e)) {
        *why = g_strdup_printf("%s: refusing %s: %s", shown, mg_fs_kind_name(kind), e->message);
        r = MG_WITEM_RETRY;
    } else if (unlinkat(d->in_fd, name, 0) != 0) {
        /* the report is there: refused all the same; the caller sees
         * that the entry stays and does not take it again */
        char **names = report_names(&k);
        *why = g_strdup_printf("%s: refused: %s, but it could not be removed: %s", shown,
                               mg_fs_kind_name(kind), g_strerror(errno));
        audit_item(c, d, shown, NULL, names, "refused", mg_fs_kind_name(kind));
        g_strfreev(names);
    } else {
        char **names = report_names(&k);
        *why = g_strdup_printf("%s: refused: %s", shown, mg_fs_kind_name(kind));
        audit_item(c, d, shown, NULL, names, "refused", mg_fs_kind_name(kind));
        g_strfreev(names);
    }
    g_clear_error(&e);
    collect_fini(&k);
    g_free(text);
    g_free(want);
    return r;
}

/* Records the commit: every temporary and its final name. */
static bool commit(const struct collect *k, uint64_t id, const char *qid, GError **err)
{
    GPtrArray *tmps = g_ptr_array_new(), *finals = g_ptr_array_new();
    bool ok;

    for (guint i = 0; i < k->outs->len; i++) {
        struct out_file *f = g_ptr_array_index(k->outs, i);
        g_ptr_array_add(tmps, f->tmp);
        g_ptr_array_add(finals, f->final);
    }
    ok = mg_wjournal_commit(k->c->journal, id, k->d->out_key, qid, (const char *const *)tmps->pdata,
                            (const char *const *)finals->pdata, k->outs->len, err);
    g_ptr_array_unref(tmps);
    g_ptr_array_unref(finals);
    return ok;
}

enum mg_witem_outcome mg_witem_process(const struct mg_witem_ctx *c, const struct mg_witem_dirs *d,
                                       const char *name, char **why)
{
    struct collect k;
    struct mg_watch_result res;
    struct mg_wjournal_input in;
    struct stat st;
    enum mg_fs_kind kind = mg_fs_classify(d->in_fd, name, &st);
    enum mg_witem_outcome r = MG_WITEM_DONE;
    char *shown = NULL, *report = NULL, *want = NULL;
    bool ok, began = false;
    uint64_t id = 0;
    GError *e = NULL;
    int fd = -1;

    memset(&res, 0, sizeof res);
    collect_init(&k, c, d);
    *why = NULL;
    {
        char *decoded = mg_fsname_decode(name, strlen(name), NULL);
        shown = mg_fsname_safe(decoded, "file");
        g_free(decoded);
    }
    if (kind == MG_FS_GONE) {
        *why = g_strdup_printf("%s: gone", shown);
        r = MG_WITEM_RETRY;
        goto out;
    }
    if (kind != MG_FS_REGULAR) {
        r = kind == MG_FS_ERROR || kind == MG_FS_DIRECTORY ? MG_WITEM_RETRY
                                                           : refuse(c, d, name, shown, kind, why);
        if (*why == NULL)
            *why = g_strdup_printf("%s: %s", shown, mg_fs_kind_name(kind));
        goto out;
    }
    if ((fd = mg_fs_open_input(d->in_fd, name, &st, &e)) < 0) {
        *why = g_strdup(e->message);
        r = MG_WITEM_RETRY;
        goto out;
    }
    memset(&in, 0, sizeof in);
    in.in_key = d->in_key;
    in.name = name;
    in.dev = (uint64_t)st.st_dev;
    in.ino = (uint64_t)st.st_ino;
    in.size = (uint64_t)st.st_size;
    in.mtime_ns = (int64_t)st.st_mtim.tv_sec * 1000000000 + st.st_mtim.tv_nsec;
    if (!mg_wjournal_begin(c->journal, &id, &in, &e))
        goto fail;
    began = true;

    ok = mg_watch_file(c->opts, fd, shown, on_output, &k, &res, &e);
    if (!ok && (res.quarantine_id == NULL || res.verdict == MG_VERDICT_ACCEPT ||
                res.verdict == MG_VERDICT_TEMPFAIL))
        goto fail; /* nothing kept, or a temporary failure (writing OUT, the
                    * spool, the virus scanner): the input stays, to be
                    * taken again */
    if (!ok) {
        /* the original is kept: the outputs made so far go, the report
         * says why, the input is removed like any other */
        collect_clear(&k);
        r = MG_WITEM_FAILED;
        *why = g_strdup_printf("%s: %s", shown, e != NULL ? e->message : "failed");
        res.verdict = MG_VERDICT_INTERNAL;
        g_clear_error(&e);
    }
    /* the outputs' final names first, so that the report names them */
    if (!settle_outs(&k, &e) || !choose_finals(&k, &e))
        goto fail;
    {
        char **names = report_names(&k);
        GDateTime *now = g_date_time_new_now_local();
        report = mg_watch_report(&res, shown, (const char *const *)names, c->lang, now);
        g_date_time_unref(now);
        g_strfreev(names);
    }
    want = g_strdup_printf("%s.mugaika.txt", shown);
    if (!add_text(&k, want, report, &e) || !settle_outs(&k, &e) || !choose_finals(&k, &e))
        goto fail;
    if (!commit(&k, id, res.quarantine_id, &e))
        goto fail;
    k.keep = true; /* from here, recovery finishes it */
    {
        char **names = report_names(&k);
        audit_item(c, d, shown, &res, names, r == MG_WITEM_FAILED ? "failed" : "done",
                   r == MG_WITEM_FAILED ? *why : NULL);
        g_strfreev(names);
    }
    if (kill_at_commit())
        kill(getpid(), SIGKILL);
    if (hooks.after_commit != NULL && !hooks.after_commit(hooks.user)) {
        *why = g_strdup_printf("%s: stopped after commit (test)", shown);
        r = MG_WITEM_RETRY;
        goto out;
    }
    if (!rename_outs(&k, &e)) {
        /* OUT would not take every file (an I/O error, no name left):
         * what was not renamed goes, the item is closed and its input
         * stays, to be taken again. Taking it again may repeat an
         * output already renamed; leaving it committed would repeat
         * them all (recovery at the next start), and removing the input
         * could lose what was not delivered. */
        GError *e2 = NULL;
        if (mg_wjournal_done(c->journal, id, &e2)) {
            /* closed: the temporaries can go (recovery no longer sees them) */
            *why = g_strdup_printf("%s: delivering: %s (it is taken again)", shown, e->message);
            k.keep = false;
            collect_clear(&k);
        } else {
            /* still committed: the temporaries stay for recovery, which
             * delivers them at the next start before it removes the input */
            *why = g_strdup_printf("%s: delivering: %s; the journal: %s", shown, e->message,
                                   e2->message);
            g_clear_error(&e2);
        }
        r = MG_WITEM_RETRY;
        goto out;
    }
    if (!mg_fs_remove(d->in_fd, name, &st, &e)) {
        /* changed or gone meanwhile: a changed file is new work */
        g_clear_error(&e);
    }
    if (!mg_wjournal_done(c->journal, id, &e)) {
        *why = g_strdup_printf("%s: %s", shown, e->message);
        r = MG_WITEM_RETRY;
        goto out;
    }
    if (*why == NULL)
        *why = g_strdup_printf("%s: %s", shown, res.result != NULL ? res.result : "done");
    goto out;
fail:
    if (*why == NULL)
        *why = g_strdup_printf("%s: %s", shown, e != NULL ? e->message : "failed");
    r = MG_WITEM_RETRY;
    collect_clear(&k); /* the temporaries go */
    if (began) {
        GError *e2 = NULL;
        if (!mg_wjournal_abort(c->journal, id, &e2))
            g_clear_error(&e2); /* recovery rolls it back */
    }
out:
    g_clear_error(&e);
    if (fd >= 0)
        close(fd);
    collect_fini(&k);
    mg_watch_result_clear(&res);
    g_free(shown);
    g_free(report);
    g_free(want);
    return r;
}

/* --- recovery --------------------------------------------------------------- */

static void finish_committed(const struct mg_wjournal_item *it, int in_fd, int out_fd)
{
    GHashTable *taken = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
    bool all = out_fd >= 0;

    g_mutex_lock(&name_lock);
    for (size_t i = 0; out_fd >= 0 && i < it->n_outputs; i++) {
        enum mg_fs_kind kind = mg_fs_classify(out_fd, it->tmp_names[i], NULL);
        char *final = g_strdup(it->final_names[i]);
        GError *e = NULL;
        if (kind == MG_FS_REGULAR || kind == MG_FS_DIRECTORY) {
            /* not renamed before the crash */
            if (!take_name(out_fd, taken, it->tmp_names[i], it->final_names[i], &final, &e)) {
                g_clear_error(&e); /* left for the sweep */
                all = false;
            }
        } else if (mg_fs_classify(out_fd, it->final_names[i], NULL) == MG_FS_GONE) {
            /* neither the temporary nor the final name: not delivered
             * (removed by hand, or its folder in OUT is another one now) */
            all = false;
        }
        g_hash_table_add(taken, fold(final));
        g_free(final);
    }
    g_mutex_unlock(&name_lock);
    g_hash_table_unref(taken);
    if (out_fd >= 0) {
        GError *e = NULL;
        if (!mg_fs_fsync_dir(out_fd, &e))
            g_clear_error(&e);
    }
    /* the input goes only when everything was delivered: otherwise it is
     * taken again (what is left of this run is swept) */
    if (in_fd >= 0 && all) {
        struct stat ex;
        GError *e = NULL;
        memset(&ex, 0, sizeof ex);
        ex.st_dev = (dev_t)it->dev;
        ex.st_ino = (ino_t)it->ino;
        ex.st_size = (off_t)it->size;
        ex.st_mtim.tv_sec = (time_t)(it->mtime_ns / 1000000000);
        ex.st_mtim.tv_nsec = (long)(it->mtime_ns % 1000000000);
        if (!mg_fs_remove(in_fd, it->name, &ex, &e))
            g_clear_error(&e); /* gone or changed: nothing to remove */
    }
}

bool mg_witem_recover(const struct mg_witem_ctx *c, mg_witem_lookup_fn lookup, void *u,
                      GError **err)
{
    GPtrArray *pending = mg_wjournal_pending(c->journal, err);
    bool ok = pending != NULL;

    for (guint i = 0; ok && i < pending->len; i++) {
        const struct mg_wjournal_item *it = g_ptr_array_index(pending, i);
        if (it->state == MG_WJOURNAL_COMMITTED) {
            finish_committed(it, lookup(u, it->in_key), lookup(u, it->out_key));
            ok = mg_wjournal_done(c->journal, it->id, err);
        } else {
            ok = mg_wjournal_abort(c->journal, it->id, err);
        }
    }
    if (pending != NULL)
        g_ptr_array_unref(pending);
    return ok;
}
