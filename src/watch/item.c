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
 *	  outputs and the report written under hidden temporary names,
 *	         each fsynced (a committed item never has a partial one);
 *	  commit the journal knows every temporary and its final name;
 *	  rename each to its final name (never replacing anything), fsync
 *	         the folder;
 *	  remove the input (only if it is still the same file);
 *	  done.
 *
 *	Final names are chosen before commit so that recovery renames to
 *	the same names; a name taken in the meantime (another program
 *	writing to the output folder) gets the next free "(n)".
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <mugaika/fsname.h>
#include <mugaika/fsops.h>
#include <mugaika/watch.h>
#include <mugaika/witem.h>

#define RENAME_TRIES 20

struct out_file {
    char *tmp, *want, *final;
    struct mg_fs_out *o; /* NULL once renamed */
};

struct collect {
    const struct mg_witem_ctx *c;
    const struct mg_witem_dirs *d;
    GPtrArray *outs; /* of struct out_file * */
};

static void out_file_free(gpointer p)
{
    struct out_file *f = p;

    if (f->o != NULL)
        mg_fs_out_abort(f->o);
    g_free(f->tmp);
    g_free(f->want);
    g_free(f->final);
    g_free(f);
}

static mode_t out_mode(const struct mg_witem_ctx *c)
{
    return c->mode != 0 ? c->mode : 0644;
}

/* A new temporary output, in k->outs before anything is written, so
 * that freeing k->outs removes it whatever happens. */
static struct out_file *out_new(struct collect *k, const char *want, GError **err)
{
    struct out_file *f = g_new0(struct out_file, 1);

    f->tmp = mg_fsname_temp(NULL);
    f->want = mg_fsname_safe(want, "file");
    g_ptr_array_add(k->outs, f);
    f->o = mg_fs_out_begin(k->d->out_fd, f->tmp, out_mode(k->c), err);
    return f->o != NULL ? f : NULL;
}

static bool on_output(void *u, const char *name, const char *type, GMimeStream *content,
                      GError **err)
{
    struct collect *k = u;
    struct out_file *f = out_new(k, name, err);
    char buf[65536];
    ssize_t n;

    (void)type;
    if (f == NULL)
        return false;
    while ((n = g_mime_stream_read(content, buf, sizeof buf)) > 0)
        if (!mg_fs_out_write(f->o, buf, (size_t)n, err))
            return false;
    if (n < 0) {
        g_set_error(err, MG_FSOPS_ERROR, MG_FSOPS_ERROR_IO, "%s: reading the output: %s", name,
                    g_strerror(errno));
        return false;
    }
    return true;
}

static bool add_text(struct collect *k, const char *want, const char *text, GError **err)
{
    struct out_file *f = out_new(k, want, err);

    return f != NULL && mg_fs_out_write(f->o, text, strlen(text), err);
}

/* "stem (n).ext" of name */
static char *numbered(const char *name, unsigned n)
{
    const char *dot = strrchr(name, '.');
    size_t stem = dot != NULL && dot != name ? (size_t)(dot - name) : strlen(name);

    return g_strdup_printf("%.*s (%u)%s", (int)stem, name, n, name + stem);
}

/* Final names: free in the folder and among the item's own outputs
 * (compared as a Windows client compares them). */
static bool choose_finals(struct collect *k, GError **err)
{
    GHashTable *taken = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
    bool ok = true;

    for (guint i = 0; i < k->outs->len && ok; i++) {
        struct out_file *f = g_ptr_array_index(k->outs, i);
        char *cand = mg_fsname_unique(k->d->out_fd, f->want);
        for (unsigned n = 2; cand != NULL && n < 10000; n++) {
            char *key = g_utf8_casefold(cand, -1);
            bool clash = g_hash_table_contains(taken, key);
            g_free(key);
            if (!clash)
                break;
            g_free(cand);
            char *alt = numbered(f->want, n);
            cand = mg_fsname_unique(k->d->out_fd, alt);
            g_free(alt);
        }
        if (cand == NULL) {
            g_set_error(err, MG_FSOPS_ERROR, MG_FSOPS_ERROR_EXISTS,
                        "%s: no free name in the output folder: %s", f->want, g_strerror(errno));
            ok = false;
        } else {
            g_hash_table_add(taken, g_utf8_casefold(cand, -1));
            f->final = cand;
        }
    }
    g_hash_table_unref(taken);
    return ok;
}

static bool sync_outs(struct collect *k, GError **err)
{
    for (guint i = 0; i < k->outs->len; i++) {
        struct out_file *f = g_ptr_array_index(k->outs, i);
        if (fsync(mg_fs_out_fd(f->o)) != 0) {
            g_set_error(err, MG_FSOPS_ERROR, MG_FSOPS_ERROR_IO, "%s: fsync: %s", f->tmp,
                        g_strerror(errno));
            return false;
        }
    }
    return true;
}

/* Renames every temporary to its final name (the next free one when
 * another program took it meanwhile). */
static bool rename_outs(struct collect *k, GError **err)
{
    for (guint i = 0; i < k->outs->len; i++) {
        struct out_file *f = g_ptr_array_index(k->outs, i);
        for (unsigned t = 0; t < RENAME_TRIES; t++) {
            GError *e = NULL;
            if (mg_fs_out_commit(f->o, f->final, &e)) {
                f->o = NULL; /* freed by a successful commit */
                break;
            }
            if (!g_error_matches(e, MG_FSOPS_ERROR, MG_FSOPS_ERROR_EXISTS) ||
                t + 1 == RENAME_TRIES) {
                g_propagate_error(err, e);
                return false;
            }
            g_error_free(e);
            g_free(f->final);
            f->final = mg_fsname_unique(k->d->out_fd, f->want);
            if (f->final == NULL) {
                g_set_error(err, MG_FSOPS_ERROR, MG_FSOPS_ERROR_EXISTS, "%s: no free name",
                            f->want);
                return false;
            }
        }
    }
    return true;
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
    struct collect k = {c, d, g_ptr_array_new_with_free_func(out_file_free)};
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

    if (!add_text(&k, want, text, &e) || !sync_outs(&k, &e) || !choose_finals(&k, &e) ||
        !rename_outs(&k, &e) || unlinkat(d->in_fd, name, 0) != 0) {
        *why = g_strdup_printf("%s: refusing %s: %s", shown, mg_fs_kind_name(kind),
                               e != NULL ? e->message : g_strerror(errno));
        r = MG_WITEM_RETRY;
    } else {
        *why = g_strdup_printf("%s: refused: %s", shown, mg_fs_kind_name(kind));
    }
    g_clear_error(&e);
    g_ptr_array_unref(k.outs);
    g_free(text);
    g_free(want);
    return r;
}

enum mg_witem_outcome mg_witem_process(const struct mg_witem_ctx *c, const struct mg_witem_dirs *d,
                                       const char *name, char **why)
{
    struct collect k = {c, d, g_ptr_array_new_with_free_func(out_file_free)};
    struct mg_watch_result res;
    struct mg_wjournal_input in;
    struct stat st;
    enum mg_fs_kind kind = mg_fs_classify(d->in_fd, name, &st);
    enum mg_witem_outcome r = MG_WITEM_DONE;
    char *shown = NULL, *text = NULL, *report = NULL, *want = NULL;
    bool ok, began = false;
    uint64_t id = 0;
    GError *e = NULL;
    int fd = -1;

    memset(&res, 0, sizeof res);
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
        g_ptr_array_unref(k.outs);
        k.outs = NULL;
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
    if (!ok && res.quarantine_id == NULL)
        goto fail; /* nothing kept: the input stays, to be taken again */
    if (!ok) {
        /* the original is kept: the outputs made so far go, the report
         * says why, the input is removed like any other */
        g_ptr_array_set_size(k.outs, 0);
        r = MG_WITEM_FAILED;
        *why = g_strdup_printf("%s: %s", shown, e != NULL ? e->message : "failed");
        res.verdict = MG_VERDICT_INTERNAL;
        g_clear_error(&e);
    }
    {
        GPtrArray *names = g_ptr_array_new();
        for (guint i = 0; i < k.outs->len; i++)
            g_ptr_array_add(names, ((struct out_file *)g_ptr_array_index(k.outs, i))->want);
        g_ptr_array_add(names, NULL);
        GDateTime *now = g_date_time_new_now_utc();
        report = mg_watch_report(&res, shown, (const char *const *)names->pdata, c->lang, now);
        g_date_time_unref(now);
        g_ptr_array_unref(names);
    }
    want = g_strdup_printf("%s.mugaika.txt", shown);
    if (!add_text(&k, want, report, &e) || !sync_outs(&k, &e) || !choose_finals(&k, &e))
        goto fail;
    {
        GPtrArray *tmps = g_ptr_array_new(), *finals = g_ptr_array_new();
        for (guint i = 0; i < k.outs->len; i++) {
            struct out_file *f = g_ptr_array_index(k.outs, i);
            g_ptr_array_add(tmps, f->tmp);
            g_ptr_array_add(finals, f->final);
        }
        ok = mg_wjournal_commit(c->journal, id, d->out_key, res.quarantine_id,
                                (const char *const *)tmps->pdata,
                                (const char *const *)finals->pdata, k.outs->len, &e);
        g_ptr_array_unref(tmps);
        g_ptr_array_unref(finals);
        if (!ok)
            goto fail;
    }
    if (!rename_outs(&k, &e)) {
        /* committed: recovery finishes it at the next start */
        *why = g_strdup_printf("%s: %s", shown, e->message);
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
    if (k.outs != NULL)
        g_ptr_array_set_size(k.outs, 0); /* the temporaries go */
    if (began) {
        GError *e2 = NULL;
        if (!mg_wjournal_abort(c->journal, id, &e2))
            g_clear_error(&e2); /* recovery rolls it back */
    }
out:
    g_clear_error(&e);
    if (fd >= 0)
        close(fd);
    if (k.outs != NULL)
        g_ptr_array_unref(k.outs);
    mg_watch_result_clear(&res);
    g_free(shown);
    g_free(text);
    g_free(report);
    g_free(want);
    return r;
}

/* --- recovery --------------------------------------------------------------- */

static void finish_committed(const struct mg_wjournal_item *it, int in_fd, int out_fd)
{
    for (size_t i = 0; out_fd >= 0 && i < it->n_outputs; i++) {
        struct stat st;
        if (mg_fs_classify(out_fd, it->tmp_names[i], &st) != MG_FS_REGULAR)
            continue; /* renamed before the crash */
        char *final = g_strdup(it->final_names[i]);
        for (unsigned n = 2; n < 10000; n++) {
            if (renameat2(out_fd, it->tmp_names[i], out_fd, final, RENAME_NOREPLACE) == 0 ||
                errno != EEXIST)
                break;
            g_free(final);
            char *alt = numbered(it->final_names[i], n);
            final = mg_fsname_unique(out_fd, alt);
            g_free(alt);
            if (final == NULL)
                break;
        }
        g_free(final);
    }
    if (out_fd >= 0) {
        GError *e = NULL;
        if (!mg_fs_fsync_dir(out_fd, &e))
            g_clear_error(&e);
    }
    if (in_fd >= 0) {
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
