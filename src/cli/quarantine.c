/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * NAME
 *	quarantine 1
 * SUMMARY
 *	mugaika quarantine: list, show, export, release and expire kept originals
 * SYNOPSIS
 *	mugaika quarantine [--quarantine DIR] list [--json] [--limit N]
 *	mugaika quarantine [--quarantine DIR] show ID [--json]
 *	mugaika quarantine [--quarantine DIR] export ID [--output FILE]
 *	mugaika quarantine [--quarantine DIR] expire [--days N]
 *	mugaika quarantine [--quarantine DIR] release ID
 *		(--password PW | --password-file FILE|-) [--output FILE]
 *		[--lang ja|en] [--audit FILE|-] [--rules DIR] [--clamav-db DIR]
 *	(before the command, --config FILE: the configuration file, whose
 *	quarantine and retention-days are the defaults of --quarantine and
 *	--days; /etc/mugaika/mugaika.conf when it exists)
 * DESCRIPTION
 *	DIR defaults to MG_QUARANTINE_DEFAULT_DIR. No command creates
 *	it: a missing quarantine is an error.
 *
 *	list prints the newest items first, one line each: id, time
 *	(ISO 8601 UTC), sender, subject (60 characters at most) and
 *	result, separated by two spaces; control characters, invalid
 *	UTF-8 and bidirectional overrides are escaped, an empty field
 *	reads "-". --json prints one JSON object per line instead.
 *
 *	show prints every field of the record and the parts JSON
 *	pretty-printed; --json prints one indented JSON object.
 *
 *	export writes the original bytes. To standard output, the object
 *	is verified first (a full pass) and then streamed (verified
 *	again); with --output FILE it goes to a temporary file beside
 *	FILE, which is fsynced and renamed over FILE only when the
 *	bytes verified, so a corrupt object never leaves a FILE.
 *
 *	release sanitises the original of ID again with a password: each
 *	encrypted archive the rules hold is unpacked with it and its
 *	members go through the whole policy (mg_sanitize_opts.password);
 *	the rebuilt mail goes to standard output or FILE (temporary file,
 *	fsync, rename). A file dropped into the transfer folder (kind
 *	"file") goes through mg_watch_file as mugaika-watch does: --output
 *	then names a new folder that receives its files (the members, as
 *	a folder or as files per the rule's layout) and a report
 *	NAME.mugaika.txt; it is built hidden and renamed only when every
 *	file is written, and each path is printed. Nothing is stored in the quarantine again; the
 *	audit record says "release". The password is read from FILE's
 *	first line ("-": standard input) or the argument, and is wiped
 *	from memory after use.
 *
 *	expire deletes the items older than N days and the objects no
 *	item needs any more, and prints "removed N items".
 * DIAGNOSTICS
 *	Exit status: 0 ok; 64 usage; 65 corrupt object, or (release) a
 *	held part the password does not open (named on stderr) or nothing
 *	held for a password; 66 no such
 *	quarantine or no such item ("mugaika: quarantine: no item ID");
 *	75 I/O error (disk, permissions, database busy); 78 DIR exists
 *	but is not a directory.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <glib.h>
#include <json-glib/json-glib.h>

#include <mugaika/config.h>
#include <mugaika/fsname.h>
#include <mugaika/fsops.h>
#include <mugaika/log.h>
#include <mugaika/quarantine.h>
#include <mugaika/watch.h>

#include "cli/cli.h"

#define SUBJECT_CHARS 60

static const char usage_text[] =
    "usage: mugaika quarantine [--quarantine DIR] list [--json] [--limit N]\n"
    "       mugaika quarantine [--quarantine DIR] show ID [--json]\n"
    "       mugaika quarantine [--quarantine DIR] export ID [--output FILE]\n"
    "       mugaika quarantine [--quarantine DIR] expire [--days N]\n"
    "       mugaika quarantine [--quarantine DIR] release ID (--password PW | --password-file "
    "FILE|-)\n"
    "              [--output FILE] [--lang ja|en] [--audit FILE|-] [--rules DIR] [--clamav-db "
    "DIR]\n"
    "       (--config FILE before the command: defaults for --quarantine and --days)\n";

static int usage(void)
{
    fputs(usage_text, stderr);
    return MG_EX_USAGE;
}

/* Maps a library error to an exit status, printing it. */
static int fail(const GError *e, const char *id)
{
    if (e->domain == MG_QUARANTINE_ERROR && e->code == MG_QUARANTINE_ERROR_NOT_FOUND) {
        if (id != NULL)
            fprintf(stderr, "mugaika: quarantine: no item %s\n", id);
        else
            fprintf(stderr, "mugaika: quarantine: %s\n", e->message);
        return MG_EX_NOINPUT;
    }
    fprintf(stderr, "mugaika: quarantine: %s\n", e->message);
    if (e->domain == MG_QUARANTINE_ERROR && e->code == MG_QUARANTINE_ERROR_CORRUPT)
        return MG_EX_DATAERR;
    return MG_EX_TEMPFAIL;
}

/* Opens an existing quarantine or returns an exit status in *rc. */
static struct mg_quarantine *open_dir(const char *dir, int *rc)
{
    struct stat st;
    GError *e = NULL;
    struct mg_quarantine *q;

    if (stat(dir, &st) == 0 && !S_ISDIR(st.st_mode)) {
        fprintf(stderr, "mugaika: quarantine: %s: not a directory\n", dir);
        *rc = MG_EX_CONFIG;
        return NULL;
    }
    q = mg_quarantine_open_existing(dir, &e);
    if (q == NULL) {
        *rc = fail(e, NULL);
        g_error_free(e);
    }
    return q;
}

static bool parse_unsigned(const char *s, unsigned *out)
{
    guint64 v;

    if (s == NULL || !g_ascii_string_to_unsigned(s, 10, 0, G_MAXUINT, &v, NULL))
        return false;
    *out = (unsigned)v;
    return true;
}

static char *iso_time(int64_t t)
{
    GDateTime *dt = g_date_time_new_from_unix_utc(t);
    char *s;

    if (dt == NULL)
        return g_strdup("?");
    s = g_date_time_format(dt, "%Y-%m-%dT%H:%M:%SZ");
    g_date_time_unref(dt);
    return s;
}

/* --- JSON output ------------------------------------------------------- */

static void json_text(JsonBuilder *b, const char *key, const char *v)
{
    json_builder_set_member_name(b, key);
    if (v == NULL) {
        json_builder_add_null_value(b);
    } else {
        char *valid = g_utf8_make_valid(v, -1);
        json_builder_add_string_value(b, valid);
        g_free(valid);
    }
}

static JsonNode *record_json(const struct mg_qrecord *r, bool with_parts)
{
    JsonBuilder *b = json_builder_new();
    JsonNode *n;
    char *t = iso_time(r->time);

    json_builder_begin_object(b);
    json_text(b, "id", r->id);
    json_text(b, "time", t);
    json_builder_set_member_name(b, "time_unix");
    json_builder_add_int_value(b, r->time);
    json_text(b, "kind", r->kind);
    json_text(b, "message_id", r->message_id);
    json_text(b, "sender", r->sender);
    json_text(b, "recipients", r->recipients);
    json_text(b, "subject", r->subject);
    json_text(b, "sha256", r->sha256);
    json_builder_set_member_name(b, "size");
    json_builder_add_int_value(b, (gint64)r->size);
    json_text(b, "result", r->result);
    if (with_parts) {
        JsonParser *p = json_parser_new();
        json_builder_set_member_name(b, "parts");
        if (r->parts_json != NULL && json_parser_load_from_data(p, r->parts_json, -1, NULL) &&
            json_parser_get_root(p) != NULL)
            json_builder_add_value(b, json_node_copy(json_parser_get_root(p)));
        else if (r->parts_json != NULL)
            json_builder_add_string_value(b, r->parts_json); /* not JSON: as text */
        else
            json_builder_add_null_value(b);
        g_object_unref(p);
    }
    json_builder_end_object(b);
    n = json_builder_get_root(b);
    g_object_unref(b);
    g_free(t);
    return n;
}

static void print_json(JsonNode *n, bool pretty)
{
    char *s = json_to_string(n, pretty);

    fputs(s, stdout);
    fputc('\n', stdout);
    g_free(s);
    json_node_unref(n);
}

/* --- commands ---------------------------------------------------------- */

static int cmd_list(const char *dir, int argc, char **argv)
{
    struct mg_quarantine *q;
    bool json = false;
    unsigned limit = 0;
    GPtrArray *a = NULL;
    GError *e = NULL;
    GString *line;
    int rc;

    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--json") == 0)
            json = true;
        else if (strcmp(argv[i], "--limit") == 0 && i + 1 < argc &&
                 parse_unsigned(argv[i + 1], &limit))
            i++;
        else
            return usage();
    }
    if ((q = open_dir(dir, &rc)) == NULL)
        return rc;
    if (!mg_quarantine_list(q, limit, &a, &e)) {
        rc = fail(e, NULL);
        g_error_free(e);
        mg_quarantine_close(q);
        return rc;
    }
    mg_quarantine_close(q);
    line = g_string_new(NULL);
    for (guint k = 0; k < a->len; k++) {
        const struct mg_qrecord *r = a->pdata[k];
        char *t;

        if (json) {
            print_json(record_json(r, false), false);
            continue;
        }
        t = iso_time(r->time);
        g_string_assign(line, r->id);
        g_string_append_printf(line, "  %s  ", t);
        mg_cli_put_text(line, r->sender, 0);
        g_string_append(line, "  ");
        mg_cli_put_text(line, r->subject, SUBJECT_CHARS);
        g_string_append(line, "  ");
        mg_cli_put_text(line, r->result, 0);
        fprintf(stdout, "%s\n", line->str);
        g_free(t);
    }
    g_string_free(line, TRUE);
    g_ptr_array_unref(a);
    return MG_EX_OK;
}

static void show_field(GString *out, const char *name, const char *v)
{
    g_string_append_printf(out, "%-11s ", name);
    mg_cli_put_text(out, v, 0);
    g_string_append_c(out, '\n');
}

static void show_text(const struct mg_qrecord *r)
{
    GString *out = g_string_new(NULL);
    char *t = iso_time(r->time);
    JsonParser *p = json_parser_new();

    show_field(out, "id:", r->id);
    g_string_append_printf(out, "%-11s %s (%" G_GINT64_FORMAT ")\n", "time:", t, (gint64)r->time);
    show_field(out, "kind:", r->kind);
    show_field(out, "message-id:", r->message_id);
    show_field(out, "sender:", r->sender);
    show_field(out, "recipients:", r->recipients);
    show_field(out, "subject:", r->subject);
    show_field(out, "sha256:", r->sha256);
    g_string_append_printf(out, "%-11s %" G_GUINT64_FORMAT "\n", "size:", (guint64)r->size);
    show_field(out, "result:", r->result);
    g_string_append(out, "parts:\n");
    if (r->parts_json != NULL && json_parser_load_from_data(p, r->parts_json, -1, NULL) &&
        json_parser_get_root(p) != NULL) {
        char *s = json_to_string(json_parser_get_root(p), TRUE);
        char **lines = g_strsplit(s, "\n", -1);
        for (char **l = lines; *l != NULL; l++) {
            g_string_append(out, "  ");
            mg_cli_put_text(out, *l, 0); /* escapes what the JSON string held */
            g_string_append_c(out, '\n');
        }
        g_strfreev(lines);
        g_free(s);
    } else {
        g_string_append(out, "  ");
        mg_cli_put_text(out, r->parts_json, 0);
        g_string_append_c(out, '\n');
    }
    fputs(out->str, stdout);
    g_object_unref(p);
    g_free(t);
    g_string_free(out, TRUE);
}

static int cmd_show(const char *dir, int argc, char **argv)
{
    struct mg_quarantine *q;
    const char *id = NULL;
    bool json = false;
    struct mg_qrecord r;
    GError *e = NULL;
    int rc;

    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--json") == 0)
            json = true;
        else if (argv[i][0] != '-' && id == NULL)
            id = argv[i];
        else
            return usage();
    }
    if (id == NULL)
        return usage();
    if ((q = open_dir(dir, &rc)) == NULL)
        return rc;
    if (!mg_quarantine_get(q, id, &r, &e)) {
        rc = fail(e, id);
        g_error_free(e);
        mg_quarantine_close(q);
        return rc;
    }
    mg_quarantine_close(q);
    if (json)
        print_json(record_json(&r, true), true);
    else
        show_text(&r);
    mg_qrecord_clear(&r);
    return MG_EX_OK;
}

/* Writes FILE through a temporary file beside it, fsynced and renamed
 * over FILE only when fill succeeded: a failure never leaves a FILE. */
static int write_file(const char *file, int (*fill)(int fd, void *u), void *u)
{
    char *tmp = g_strdup_printf("%s.XXXXXX", file);
    int fd = g_mkstemp_full(tmp, O_WRONLY | O_CLOEXEC, 0600);
    int rc;

    if (fd < 0) {
        fprintf(stderr, "mugaika: quarantine: %s: %s\n", tmp, g_strerror(errno));
        g_free(tmp);
        return MG_EX_TEMPFAIL;
    }
    rc = fill(fd, u);
    if (rc == MG_EX_OK && fsync(fd) != 0) {
        fprintf(stderr, "mugaika: quarantine: %s: fsync: %s\n", tmp, g_strerror(errno));
        rc = MG_EX_TEMPFAIL;
    }
    if (close(fd) != 0 && rc == MG_EX_OK) {
        fprintf(stderr, "mugaika: quarantine: %s: close: %s\n", tmp, g_strerror(errno));
        rc = MG_EX_TEMPFAIL;
    }
    if (rc == MG_EX_OK && rename(tmp, file) != 0) {
        fprintf(stderr, "mugaika: quarantine: %s: rename: %s\n", file, g_strerror(errno));
        rc = MG_EX_TEMPFAIL;
    }
    if (rc != MG_EX_OK)
        unlink(tmp);
    g_free(tmp);
    return rc;
}

struct export_ctx {
    struct mg_quarantine *q;
    const char *id;
};

static int export_fill(int fd, void *u)
{
    struct export_ctx *x = u;
    GError *e = NULL;
    int rc = MG_EX_OK;

    if (!mg_quarantine_export(x->q, x->id, fd, &e)) {
        rc = fail(e, x->id);
        g_error_free(e);
    }
    return rc;
}

static int cmd_export(const char *dir, int argc, char **argv)
{
    struct mg_quarantine *q;
    const char *id = NULL, *file = NULL;
    GError *e = NULL;
    int rc = MG_EX_OK;

    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--output") == 0 && i + 1 < argc && file == NULL)
            file = argv[++i];
        else if (argv[i][0] != '-' && id == NULL)
            id = argv[i];
        else
            return usage();
    }
    if (id == NULL)
        return usage();
    if ((q = open_dir(dir, &rc)) == NULL)
        return rc;
    if (file != NULL) {
        struct export_ctx x = {q, id};
        rc = write_file(file, export_fill, &x);
    } else if (!mg_quarantine_verify(q, id, &e) ||
               !mg_quarantine_export(q, id, STDOUT_FILENO, &e)) {
        rc = fail(e, id);
        g_error_free(e);
    }
    mg_quarantine_close(q);
    return rc;
}

/* --- release --------------------------------------------------------------- */

static const char *config_path; /* --config of the quarantine command */

#define PASSWORD_MAX 4096

/* The password: the argument, or the first line of a file ("-":
 * standard input). NULL with a message when unreadable or empty. */
static char *read_password(char *arg, const char *file)
{
    char *text = NULL, *pw;
    GError *e = NULL;
    gsize len = 0;
    size_t n;

    if (arg != NULL) {
        /* the command line shows in /proc/PID/cmdline while this runs:
         * keep a copy, blank the argument (--password-file is better) */
        pw = g_strdup(arg);
        memset(arg, 'x', strlen(arg));
        if (*pw == '\0') {
            fputs("mugaika: quarantine: --password: empty\n", stderr);
            g_free(pw);
            return NULL;
        }
        return pw;
    }
    if (strcmp(file, "-") == 0) {
        GString *b = g_string_new(NULL);
        int c;
        while ((c = getchar()) != EOF && c != '\n' && b->len <= PASSWORD_MAX)
            g_string_append_c(b, (char)c);
        len = b->len;
        text = g_string_free(b, FALSE);
    } else if (!g_file_get_contents(file, &text, &len, &e)) {
        fprintf(stderr, "mugaika: quarantine: --password-file: %s\n", e->message);
        g_error_free(e);
        return NULL;
    }
    n = strcspn(text, "\r\n");
    pw = n > 0 && n <= PASSWORD_MAX ? g_strndup(text, n) : NULL;
    explicit_bzero(text, len);
    g_free(text);
    if (pw == NULL)
        fprintf(stderr, "mugaika: quarantine: --password-file %s: %s\n", file,
                n == 0 ? "no password in it" : "password longer than 4096 bytes");
    return pw;
}

/* A temporary file in the spool directory (NULL: the temporary
 * directory), already unlinked, holding the verified original. */
static int original_copy(struct mg_quarantine *q, const char *id, const char *spool, int *rc)
{
    char *tmp =
        g_build_filename(spool != NULL ? spool : g_get_tmp_dir(), "mugaika-release-XXXXXX", NULL);
    int fd = g_mkstemp_full(tmp, O_RDWR | O_CLOEXEC, 0600);
    GError *e = NULL;

    if (fd < 0) {
        fprintf(stderr, "mugaika: quarantine: %s: %s\n", tmp, g_strerror(errno));
        *rc = MG_EX_TEMPFAIL;
    } else {
        unlink(tmp);
        if (!mg_quarantine_export(q, id, fd, &e) || lseek(fd, 0, SEEK_SET) != 0) {
            if (e != NULL) {
                *rc = fail(e, id);
                g_error_free(e);
            } else {
                fprintf(stderr, "mugaika: quarantine: %s: %s\n", tmp, g_strerror(errno));
                *rc = MG_EX_TEMPFAIL;
            }
            close(fd);
            fd = -1;
        }
    }
    g_free(tmp);
    return fd;
}

/* Parts the release opened, and parts still held for a password
 * (printed, with the reason). */
static void release_parts(const char *id, JsonNode *n, unsigned *opened, unsigned *still)
{
    JsonArray *a = json_node_get_array(n);

    *opened = *still = 0;
    for (guint i = 0; i < json_array_get_length(a); i++) {
        JsonObject *p = json_array_get_object_element(a, i);
        const char *action = json_object_get_string_member_with_default(p, "action", "");
        JsonArray *flags =
            json_object_has_member(p, "flags") ? json_object_get_array_member(p, "flags") : NULL;
        bool enc = false;
        for (guint j = 0; flags != NULL && j < json_array_get_length(flags); j++)
            enc = enc || strcmp(json_array_get_string_element(flags, j), "encrypted") == 0;
        if (json_object_get_boolean_member_with_default(p, "released", FALSE))
            (*opened)++;
        if (strcmp(action, "hold") == 0 && enc) {
            JsonObject *cdr =
                json_object_has_member(p, "cdr") ? json_object_get_object_member(p, "cdr") : NULL;
            const char *why = cdr != NULL
                                  ? json_object_get_string_member_with_default(cdr, "reason", NULL)
                                  : NULL;
            const char *name = json_object_get_string_member_with_default(p, "filename", NULL);
            GString *line = g_string_new(NULL);
            (*still)++;
            mg_cli_put_text(line, name != NULL ? name : "-", 80);
            fprintf(stderr, "mugaika: quarantine: release %s: part %s (%s) stays held: %s\n", id,
                    json_object_get_string_member_with_default(p, "path", "?"), line->str,
                    why != NULL ? why
                                : "encrypted, and only zip archives can be opened with a "
                                  "password");
            g_string_free(line, TRUE);
        }
    }
}

static int write_message(int fd, void *u)
{
    GError *e = NULL;

    if (!mg_sanitize_write(u, fd, &e)) {
        fprintf(stderr, "mugaika: quarantine: %s\n", e->message);
        g_error_free(e);
        return MG_EX_TEMPFAIL;
    }
    return MG_EX_OK;
}

/* --- release of a dropped file (kind "file") ---------------------------------- */

/* The files of a released dropped file are written under a hidden
 * folder beside DIR, renamed to DIR when all went well. */
struct rel_out {
    int top;          /* the hidden folder */
    GPtrArray *names; /* relative paths written */
};

static bool rel_write(void *u, const struct mg_watch_output *o, GMimeStream *content, GError **err)
{
    struct rel_out *r = u;
    GString *path = g_string_new(NULL);
    struct mg_fs_out *w = NULL;
    char *name = NULL, *tmp = NULL, buf[65536];
    int fd = dup(r->top);
    ssize_t n;
    bool ok = fd >= 0;

    for (const char *const *d = o->dirs; ok && d != NULL && *d != NULL; d++) {
        char *safe = mg_fsname_safe(*d, "folder"); /* as mugaika-watch names them */
        int sub;
        ok = mg_fs_mkdir_owned(fd, safe, (uid_t)-1, (gid_t)-1, 0755, err) &&
             (sub = mg_fs_open_dir(fd, safe, err)) >= 0;
        if (ok) {
            close(fd);
            fd = sub;
            g_string_append_printf(path, "%s/", safe);
        }
        g_free(safe);
    }
    if (ok) {
        name = mg_fsname_unique(fd, o->name);
        tmp = name != NULL ? mg_fsname_temp(name) : NULL;
        w = tmp != NULL ? mg_fs_out_begin(fd, tmp, 0644, err) : NULL;
        if (name == NULL)
            g_set_error(err, G_FILE_ERROR, g_file_error_from_errno(errno), "%s: %s", o->name,
                        g_strerror(errno));
        ok = w != NULL;
    }
    while (ok && (n = g_mime_stream_read(content, buf, sizeof buf)) > 0)
        ok = mg_fs_out_write(w, buf, (size_t)n, err);
    if (ok && !g_mime_stream_eos(content)) {
        g_set_error(err, G_FILE_ERROR, G_FILE_ERROR_IO, "%s: cannot read the output", o->name);
        ok = false;
    }
    if (ok && mg_fs_out_commit(w, name, err)) {
        g_string_append(path, name);
        g_ptr_array_add(r->names, g_string_free(path, FALSE));
        path = NULL;
    } else {
        mg_fs_out_abort(w);
        ok = false;
    }
    if (path != NULL)
        g_string_free(path, TRUE);
    if (fd >= 0)
        close(fd);
    g_free(name);
    g_free(tmp);
    return ok;
}

/* Sanitises the dropped file kept as ID again with the password; its files
 * and a report go into the new folder outdir. */
static int release_file(const char *id, int fd, const struct mg_qrecord *rec,
                        const struct mg_sanitize_opts *o, const char *outdir, const char *audit)
{
    char *parent = g_path_get_dirname(outdir), *base = g_path_get_basename(outdir);
    char *hidden = mg_fsname_temp(base), *report = NULL;
    struct rel_out r = {-1, g_ptr_array_new_with_free_func(g_free)};
    struct mg_watch_result res;
    unsigned opened = 0, still = 0;
    GError *e = NULL;
    int pfd = open(parent, O_RDONLY | O_DIRECTORY | O_CLOEXEC), rc = MG_EX_OK;
    const char *name = rec->subject != NULL && *rec->subject != '\0' ? rec->subject : "file";

    memset(&res, 0, sizeof res);
    if (pfd < 0 || faccessat(pfd, base, F_OK, AT_SYMLINK_NOFOLLOW) == 0) {
        fprintf(stderr, "mugaika: quarantine: release %s: --output %s: %s\n", id, outdir,
                pfd < 0 ? g_strerror(errno) : "exists already (give a new folder)");
        rc = pfd < 0 ? MG_EX_CANTCREAT : MG_EX_USAGE;
        goto out;
    }
    if ((r.top = mg_fs_mkdir_new(pfd, hidden, &e)) < 0) {
        fprintf(stderr, "mugaika: quarantine: release %s: %s\n", id, e->message);
        rc = MG_EX_CANTCREAT;
        goto out;
    }
    if (!mg_watch_file(o, fd, name, rel_write, &r, &res, &e)) {
        fprintf(stderr, "mugaika: quarantine: release %s: %s\n", id,
                e != NULL ? e->message : "failed");
        rc = res.verdict == MG_VERDICT_TEMPFAIL ? MG_EX_TEMPFAIL : MG_EX_SOFTWARE;
        goto out;
    }
    if (res.parts != NULL)
        release_parts(id, res.parts, &opened, &still);
    if (res.verdict != MG_VERDICT_ACCEPT || still > 0) {
        if (res.verdict != MG_VERDICT_ACCEPT)
            fprintf(stderr, "mugaika: quarantine: release %s: %s\n", id, res.result);
        rc = MG_EX_DATAERR;
    } else if (opened == 0) {
        fprintf(stderr,
                "mugaika: quarantine: release %s: no part of it is held for a password (see "
                "`mugaika quarantine show %s`)\n",
                id, id);
        rc = MG_EX_DATAERR;
    } else if (res.outputs == 0) {
        fprintf(stderr, "mugaika: quarantine: release %s: nothing to deliver (%s)\n", id,
                res.result);
        rc = MG_EX_DATAERR;
    }
    if (rc == MG_EX_OK) {
        GDateTime *now = g_date_time_new_now_local();
        struct mg_watch_output ro = {NULL, "text/plain", NULL};
        GMimeStream *text;
        char *rname = g_strdup_printf("%s.mugaika.txt", name);

        g_ptr_array_add(r.names, NULL);
        report = mg_watch_report(&res, name, (const char *const *)r.names->pdata, o->lang, now);
        g_ptr_array_remove_index(r.names, r.names->len - 1);
        g_date_time_unref(now);
        text = g_mime_stream_mem_new_with_buffer(report, strlen(report));
        ro.name = rname;
        if (!rel_write(&r, &ro, text, &e) ||
            !mg_fs_dir_settle(r.top, (uid_t)-1, (gid_t)-1, 0755, &e) ||
            !mg_fs_rename_noreplace(pfd, hidden, base, &e)) {
            fprintf(stderr, "mugaika: quarantine: release %s: %s\n", id, e->message);
            rc = MG_EX_CANTCREAT;
        }
        g_object_unref(text);
        g_free(rname);
    }
    if (rc == MG_EX_OK)
        for (guint i = 0; i < r.names->len; i++)
            printf("%s/%s\n", outdir, (const char *)g_ptr_array_index(r.names, i));
    if (audit != NULL && res.audit != NULL) {
        JsonObject *a = json_node_get_object(res.audit);
        JsonArray *names = json_array_new();
        char *line;
        for (guint i = 0; rc == MG_EX_OK && i < r.names->len; i++)
            json_array_add_string_element(names, g_ptr_array_index(r.names, i));
        json_object_set_string_member(a, "source", "release");
        json_object_set_string_member(a, "file", name);
        json_object_set_array_member(a, "outputs", names);
        line = json_to_string(res.audit, FALSE);
        if (!mg_log_append(audit, line, &e)) {
            fprintf(stderr, "mugaika: quarantine: audit file %s\n", e->message);
            g_clear_error(&e);
        }
        g_free(line);
    }
out:
    if (r.top >= 0) {
        close(r.top);
        if (rc != MG_EX_OK && !mg_fs_remove_temp(pfd, hidden, &e)) {
            fprintf(stderr, "mugaika: quarantine: release %s: %s\n", id, e->message);
            g_clear_error(&e);
        }
    }
    if (pfd >= 0)
        close(pfd);
    g_clear_error(&e);
    mg_watch_result_clear(&res);
    g_ptr_array_unref(r.names);
    g_free(report);
    g_free(parent);
    g_free(base);
    g_free(hidden);
    return rc;
}

static int cmd_release(const char *dir, int argc, char **argv)
{
    const char *id = NULL, *file = NULL, *pw_arg = NULL, *pw_file = NULL, *lang = NULL;
    const char *audit = NULL, *rules_dir = NULL, *db = NULL;
    struct mg_quarantine *q = NULL;
    struct mg_qrecord rec;
    struct mg_cli_engine en;
    struct mg_sanitize_opts o;
    struct mg_sanitize *s = NULL;
    char *password = NULL, **rcpts = NULL;
    unsigned opened = 0, still = 0;
    GError *e = NULL;
    int fd = -1, rc = MG_EX_OK, pw_index = 0;

    memset(&rec, 0, sizeof rec);
    memset(&en, 0, sizeof en);
    for (int i = 1; i < argc; i++) {
        const char **slot = strcmp(argv[i], "--output") == 0          ? &file
                            : strcmp(argv[i], "--password") == 0      ? &pw_arg
                            : strcmp(argv[i], "--password-file") == 0 ? &pw_file
                            : strcmp(argv[i], "--lang") == 0          ? &lang
                            : strcmp(argv[i], "--audit") == 0         ? &audit
                            : strcmp(argv[i], "--rules") == 0         ? &rules_dir
                            : strcmp(argv[i], "--clamav-db") == 0     ? &db
                                                                      : NULL;
        if (slot == &pw_arg)
            pw_index = i + 1;
        if (slot != NULL && *slot == NULL && i + 1 < argc)
            *slot = argv[++i];
        else if (slot == NULL && argv[i][0] != '-' && id == NULL)
            id = argv[i];
        else
            return usage();
    }
    if (id == NULL || (pw_arg == NULL) == (pw_file == NULL) ||
        (lang != NULL && strcmp(lang, "ja") != 0 && strcmp(lang, "en") != 0)) {
        if (id != NULL && pw_arg == NULL && pw_file == NULL)
            fputs("mugaika: quarantine: release needs --password or --password-file\n", stderr);
        return usage();
    }
    if ((password = read_password(pw_arg != NULL ? argv[pw_index] : NULL, pw_file)) == NULL)
        return MG_EX_USAGE;
    if ((q = open_dir(dir, &rc)) == NULL)
        goto out;
    if (!mg_quarantine_get(q, id, &rec, &e)) {
        rc = fail(e, id);
        goto out;
    }
    rc = mg_cli_engine_open(&en, "quarantine", config_path, rules_dir, db);
    if (rc != MG_EX_OK)
        goto out;
    if ((fd = original_copy(q, id, en.cfg.spool_dir, &rc)) < 0)
        goto out;
    if (audit == NULL)
        audit = en.cfg.audit;
    mg_cli_engine_opts(&en, &o);
    if (lang != NULL)
        o.lang = lang;
    o.quarantine = NULL; /* the original is there already */
    o.release_id = id;
    o.password = password;
    o.sender = rec.sender;
    if (rec.recipients != NULL && *rec.recipients != '\0')
        rcpts = g_strsplit(rec.recipients, ",", -1);
    o.recipients = (const char *const *)rcpts;
    if (rec.kind != NULL && strcmp(rec.kind, "file") == 0) {
        /* a file dropped into the transfer folder: its files go into a folder */
        if (file == NULL) {
            fprintf(stderr,
                    "mugaika: quarantine: release %s: a dropped file's release needs "
                    "--output DIR (a new folder for its files)\n",
                    id);
            rc = MG_EX_USAGE;
        } else {
            rc = release_file(id, fd, &rec, &o, file, audit);
        }
        goto out;
    }
    s = mg_sanitize_new(&o);
    if ((rc = mg_cli_feed(s, fd, "quarantine", "the original")) != MG_EX_OK)
        goto out;
    rc = mg_cli_verdict_status(mg_sanitize_finish(s, &e));
    if (rc != MG_EX_OK) {
        fprintf(stderr, "mugaika: quarantine: release %s: %s\n", id,
                e != NULL ? e->message : "failed");
        if (rc == MG_EX_REJECT)
            rc = MG_EX_DATAERR;
    } else {
        JsonNode *parts = mg_sanitize_parts_json(s);
        release_parts(id, parts, &opened, &still);
        json_node_unref(parts);
        if (still > 0) {
            rc = MG_EX_DATAERR;
        } else if (mg_sanitize_held(s)) {
            fprintf(stderr,
                    "mugaika: quarantine: release %s: the released message is held as a whole "
                    "(%s); nothing written\n",
                    id, mg_sanitize_result(s));
            rc = MG_EX_DATAERR;
        } else if (opened == 0) {
            fprintf(stderr,
                    "mugaika: quarantine: release %s: no part of it is held for a "
                    "password (see `mugaika quarantine show %s`)\n",
                    id, id);
            rc = MG_EX_DATAERR;
        } else if (file != NULL) {
            rc = write_file(file, write_message, s);
        } else {
            rc = write_message(STDOUT_FILENO, s);
        }
    }
    mg_cli_write_audit("quarantine", audit, s);
out:
    g_clear_error(&e);
    if (fd >= 0)
        close(fd);
    mg_sanitize_free(s);
    mg_cli_engine_close(&en);
    if (q != NULL)
        mg_quarantine_close(q);
    mg_qrecord_clear(&rec);
    g_strfreev(rcpts);
    if (password != NULL) {
        explicit_bzero(password, strlen(password));
        g_free(password);
    }
    return rc;
}

static unsigned retention_days = 90; /* from the configuration file */

static int cmd_expire(const char *dir, int argc, char **argv)
{
    struct mg_quarantine *q;
    unsigned days = 0, removed = 0;
    bool have_days = false;
    GError *e = NULL;
    int rc;

    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--days") == 0 && i + 1 < argc && parse_unsigned(argv[i + 1], &days)) {
            have_days = true;
            i++;
        } else {
            return usage();
        }
    }
    if (!have_days)
        days = retention_days;
    if ((q = open_dir(dir, &rc)) == NULL)
        return rc;
    if (!mg_quarantine_expire(q, days, &removed, &e)) {
        rc = fail(e, NULL);
        g_error_free(e);
        mg_quarantine_close(q);
        return rc;
    }
    mg_quarantine_close(q);
    fprintf(stdout, "removed %u items\n", removed);
    return MG_EX_OK;
}

int mg_cli_quarantine(int argc, char **argv)
{
    const char *dir = NULL, *config = NULL;
    int (*cmd)(const char *, int, char **) = NULL;
    struct mg_config cfg;
    GError *e = NULL;
    int i, rc;

    for (i = 1; i < argc && argv[i][0] == '-'; i++) {
        if (strcmp(argv[i], "--config") == 0 && i + 1 < argc) {
            config = argv[++i];
        } else if (strcmp(argv[i], "--quarantine") == 0 && i + 1 < argc) {
            dir = argv[++i];
        } else if (g_str_has_prefix(argv[i], "--quarantine=")) {
            dir = argv[i] + strlen("--quarantine=");
        } else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            fputs(usage_text, stdout);
            return MG_EX_OK;
        } else {
            return usage();
        }
    }
    if (!mg_config_load(config, &cfg, &e)) {
        fprintf(stderr, "mugaika: quarantine: configuration:\n%s\n", e->message);
        g_error_free(e);
        return MG_EX_CONFIG;
    }
    retention_days = cfg.retention_days;
    config_path = config;
    if (dir == NULL)
        dir = cfg.quarantine_dir != NULL ? cfg.quarantine_dir : MG_QUARANTINE_DEFAULT_DIR;
    if (i == argc || *dir == '\0') {
        mg_config_clear(&cfg);
        return usage();
    }
    if (strcmp(argv[i], "list") == 0)
        cmd = cmd_list;
    else if (strcmp(argv[i], "show") == 0)
        cmd = cmd_show;
    else if (strcmp(argv[i], "export") == 0)
        cmd = cmd_export;
    else if (strcmp(argv[i], "expire") == 0)
        cmd = cmd_expire;
    else if (strcmp(argv[i], "release") == 0)
        cmd = cmd_release;
    else {
        mg_config_clear(&cfg);
        return usage();
    }
    rc = cmd(dir, argc - i, argv + i);
    mg_config_clear(&cfg);
    if (fflush(stdout) != 0 && rc == MG_EX_OK) {
        fprintf(stderr, "mugaika: quarantine: standard output: %s\n", g_strerror(errno));
        rc = MG_EX_TEMPFAIL;
    }
    return rc;
}
