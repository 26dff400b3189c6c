/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * NAME
 *	watch 3
 * SUMMARY
 *	one dropped file through the mail pipeline
 * DESCRIPTION
 *	See include/mugaika/watch.h. The message made around a file is
 *	fed to mg_sanitize as it is written, never held whole: a header
 *	(the name as the subject and as an RFC 2231 file name), an empty
 *	text part, then the file's bytes in base64, 57 bytes to a line, as
 *	they are read; the file itself goes to the quarantine writer at the
 *	same time. The boundary ("=_mugaika_watch_" and random hex) cannot
 *	occur in base64 ('_' is not in its alphabet).
 *
 *	The rebuilt message is written to a temporary file in the spool
 *	directory and read back with GMime's parser; each attachment is
 *	handed to the caller through a base64-decoding stream, so no
 *	output is held in memory either.
 *
 *	Layout = folder. The rebuilt message lists the attachments in the
 *	order of the pipeline's items (mg_sanitize_parts_json), and a
 *	member's item path is its archive's path and ":n" ("2:3:1" is
 *	member 1 of member 3 of part 2). Each attachment is matched to the
 *	next member item with that output name, in order; its folders come
 *	from the file names of the items on its path. The rule is found by
 *	the id the parts JSON names (mg_rules_find on the same policy).
 */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include <mugaika/quarantine.h>
#include <mugaika/rules.h>
#include <mugaika/watch.h>

#include "core/random.h"

#define READ_CHUNK (57 * 1150) /* a whole number of base64 lines */

GQuark mg_watch_error_quark(void)
{
    return g_quark_from_static_string("mg-watch-error-quark");
}

/* name as an RFC 2231 value: UTF-8, every byte but attr-char escaped */
static char *rfc2231(const char *name)
{
    GString *s = g_string_new("UTF-8''");

    for (const unsigned char *p = (const unsigned char *)name; *p != '\0'; p++) {
        if (g_ascii_isalnum(*p) || strchr("!#$&+-.^_`|~", *p) != NULL)
            g_string_append_c(s, (char)*p);
        else
            g_string_append_printf(s, "%%%02X", *p);
    }
    return g_string_free(s, FALSE);
}

static void feed_str(struct mg_sanitize *s, const char *text)
{
    mg_sanitize_feed(s, text, strlen(text));
}

/* The header and text part of the message made around the file. */
static char *wrapper_head(const char *name, const char *boundary)
{
    char *subject = g_mime_utils_header_encode_text(NULL, name, "utf-8");
    char *fname = rfc2231(name);
    char *head = g_strdup_printf("From: mugaika-watch <watch@localhost>\r\n"
                                 "To: transfer-folder@localhost\r\n"
                                 "Subject: %s\r\n"
                                 "MIME-Version: 1.0\r\n"
                                 "Content-Type: multipart/mixed; boundary=\"%s\"\r\n\r\n"
                                 "--%s\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n\r\n"
                                 "--%s\r\nContent-Type: application/octet-stream\r\n"
                                 "Content-Disposition: attachment; filename*=%s\r\n"
                                 "Content-Transfer-Encoding: base64\r\n\r\n",
                                 subject, boundary, boundary, boundary, fname);

    g_free(subject);
    g_free(fname);
    return head;
}

static bool read_failed(GError **err, const char *name, int e)
{
    g_set_error(err, mg_watch_error_quark(), 0, "%s: read: %s", name, g_strerror(e));
    return false;
}

/* Feeds the file: to the pipeline (as base64 lines, or raw for a
 * mail) and to the quarantine writer (qw, or NULL). */
static bool feed_file(struct mg_sanitize *s, struct mg_qwrite *qw, int fd, const char *name,
                      bool raw, GError **err)
{
    unsigned char *buf = g_malloc(READ_CHUNK);
    char *line = g_malloc(128); /* g_base64_encode_step wants (57 / 3 + 1) * 4 + 4 */
    bool ok = true;

    for (;;) {
        ssize_t n = read(fd, buf, READ_CHUNK);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            ok = read_failed(err, name, errno);
            break;
        }
        if (n == 0)
            break;
        if (qw != NULL && !mg_qwrite_feed(qw, buf, (size_t)n, err)) {
            ok = false;
            break;
        }
        if (raw) {
            mg_sanitize_feed(s, (const char *)buf, (size_t)n);
            continue;
        }
        for (ssize_t off = 0; off < n; off += 57) {
            gsize chunk = (gsize)MIN(57, n - off);
            gint state = 0, save = 0;
            gsize len = g_base64_encode_step(buf + off, chunk, FALSE, line, &state, &save);
            len += g_base64_encode_close(FALSE, line + len, &state, &save);
            line[len++] = '\r';
            line[len++] = '\n';
            mg_sanitize_feed(s, line, len);
        }
    }
    g_free(line);
    g_free(buf);
    return ok;
}

/* The rebuilt message in a temporary file of the spool directory
 * (unlinked), as a stream at its start; NULL with err. */
static GMimeStream *rebuilt(struct mg_sanitize *s, const char *spool, GError **err)
{
    char *tmp =
        g_build_filename(spool != NULL ? spool : g_get_tmp_dir(), "mugaika-watch-XXXXXX", NULL);
    int fd = g_mkstemp_full(tmp, O_RDWR | O_CLOEXEC, 0600);

    if (fd < 0) {
        g_set_error(err, mg_watch_error_quark(), 0, "%s: %s", tmp, g_strerror(errno));
        g_free(tmp);
        return NULL;
    }
    unlink(tmp);
    g_free(tmp);
    if (!mg_sanitize_write(s, fd, err) || lseek(fd, 0, SEEK_SET) != 0) {
        if (err != NULL && *err == NULL)
            g_set_error(err, mg_watch_error_quark(), 0, "spool: %s", g_strerror(errno));
        close(fd);
        return NULL;
    }
    return g_mime_stream_fs_new(fd); /* owns fd */
}

/* --- layout = folder --------------------------------------------------------- */

/* A member's folder named after an archive: its last name component
 * without the extension (and without ".tar" before ".gz" and the like);
 * the whole name when nothing would be left. */
static char *archive_stem(const char *name)
{
    const char *base = name, *p;
    char *stem, *dot;

    for (p = name; *p != '\0'; p++)
        if (*p == '/' || *p == '\\')
            base = p + 1;
    stem = g_strdup(base);
    dot = strrchr(stem, '.');
    if (dot != NULL && dot != stem) {
        *dot = '\0';
        dot = strrchr(stem, '.');
        if (dot != NULL && dot != stem && g_ascii_strcasecmp(dot, ".tar") == 0)
            *dot = '\0';
    }
    if (*stem == '\0') {
        g_free(stem);
        stem = g_strdup(base);
    }
    return stem;
}

/* The folder components of an archive member's name (its last
 * component, the file itself, left out), at most max of them. */
static void name_dirs(GPtrArray *dirs, const char *name, guint max)
{
    char **v = g_strsplit_set(name != NULL ? name : "", "/\\", -1);
    guint n = g_strv_length(v);

    for (guint i = 0; i + 1 < n && dirs->len < max; i++)
        if (*v[i] != '\0' && strcmp(v[i], ".") != 0 && strcmp(v[i], "..") != 0)
            g_ptr_array_add(dirs, g_strdup(v[i]));
    g_strfreev(v);
}

struct layout {
    bool folder;         /* members go to a folder */
    char *top;           /* dirs[0] */
    JsonArray *parts;    /* borrowed from the result */
    GHashTable *by_path; /* item path -> JsonObject * (borrowed) */
    guint cursor;        /* the next member item to match */
};

static const char *jstr(JsonObject *o, const char *key)
{
    return json_object_get_string_member_with_default(o, key, NULL);
}

/* Decides the layout from the parts: one attachment at the top (the
 * dropped file), unpacked by a rule with repack = none, layout = folder. */
static void layout_init(struct layout *l, const struct mg_sanitize_opts *o, const char *name,
                        JsonNode *parts)
{
    JsonObject *top = NULL;
    unsigned tops = 0;

    memset(l, 0, sizeof *l);
    if (parts == NULL || !JSON_NODE_HOLDS_ARRAY(parts))
        return;
    l->parts = json_node_get_array(parts);
    l->by_path = g_hash_table_new(g_str_hash, g_str_equal);
    for (guint i = 0; i < json_array_get_length(l->parts); i++) {
        JsonObject *p = json_array_get_object_element(l->parts, i);
        const char *path = p != NULL ? jstr(p, "path") : NULL;
        if (path == NULL)
            continue;
        g_hash_table_insert(l->by_path, (gpointer)path, p);
        if (json_object_get_boolean_member_with_default(p, "leaf", FALSE) &&
            g_strcmp0(jstr(p, "role"), "attachment") == 0 &&
            json_object_get_int_member_with_default(p, "archive_depth", 0) == 0) {
            top = p;
            tops++;
        }
    }
    if (tops == 1 && g_strcmp0(jstr(top, "action"), "unpack") == 0) {
        const struct mg_rule *r = mg_rules_find(o->rules, jstr(top, "rule"));
        l->folder = r != NULL && strcmp(mg_rule_option(r, "repack"), "none") == 0 &&
                    strcmp(mg_rule_option(r, "layout"), "folder") == 0;
    }
    if (l->folder)
        l->top = archive_stem(name);
}

static void layout_clear(struct layout *l)
{
    if (l->by_path != NULL)
        g_hash_table_unref(l->by_path);
    g_free(l->top);
    memset(l, 0, sizeof *l);
}

/* The folders of the next member whose output is name (NULL-terminated,
 * g_strfreev); the archive's folder alone when no member matches. */
static char **layout_dirs(struct layout *l, const char *name)
{
    GPtrArray *dirs = g_ptr_array_new();
    JsonObject *m = NULL;

    g_ptr_array_add(dirs, g_strdup(l->top));
    for (; m == NULL && l->cursor < json_array_get_length(l->parts); l->cursor++) {
        JsonObject *p = json_array_get_object_element(l->parts, l->cursor);
        if (p != NULL && json_object_get_int_member_with_default(p, "archive_depth", 0) > 0 &&
            g_strcmp0(jstr(p, "output"), name) == 0)
            m = p;
    }
    if (m != NULL) {
        /* "2:3:1": the archive "2:3" inside "2", then the member */
        const char *path = jstr(m, "path");
        for (const char *c = strchr(path, ':'); c != NULL; c = strchr(c + 1, ':')) {
            const char *next = strchr(c + 1, ':');
            char *prefix =
                g_strndup(path, (gsize)((next != NULL ? next : path + strlen(path)) - path));
            JsonObject *a = g_hash_table_lookup(l->by_path, prefix);
            const char *fn = a != NULL ? jstr(a, "filename") : NULL;
            g_free(prefix);
            name_dirs(dirs, fn, MG_WATCH_MAX_DIRS);
            if (next != NULL && dirs->len < MG_WATCH_MAX_DIRS) {
                char *stem = archive_stem(fn != NULL ? fn : "");
                if (*stem == '\0' || strcmp(stem, ".") == 0 || strcmp(stem, "..") == 0) {
                    g_free(stem);
                    stem = g_strdup("archive");
                }
                g_ptr_array_add(dirs, stem);
            }
        }
    }
    g_ptr_array_add(dirs, NULL);
    return (char **)g_ptr_array_free(dirs, FALSE);
}

struct emit {
    mg_watch_out_fn out;
    void *u;
    struct mg_watch_result *res;
    GError **err;
    bool failed;
    struct layout *lay;
};

static void emit_part(GMimeObject *parent, GMimeObject *part, gpointer data)
{
    struct emit *x = data;
    const char *name;
    GMimeStream *enc, *dec;
    GMimeFilter *f;
    char *type;

    (void)parent;
    if (x->failed || !GMIME_IS_PART(part))
        return;
    name = g_mime_part_get_filename(GMIME_PART(part));
    if (name == NULL)
        return; /* the text with the notice */
    type = g_mime_content_type_get_mime_type(g_mime_object_get_content_type(part));
    enc = g_mime_data_wrapper_get_stream(g_mime_part_get_content(GMIME_PART(part)));
    g_mime_stream_reset(enc);
    dec = g_mime_stream_filter_new(enc);
    f = g_mime_filter_basic_new(g_mime_part_get_content_encoding(GMIME_PART(part)), FALSE);
    g_mime_stream_filter_add(GMIME_STREAM_FILTER(dec), f);
    g_object_unref(f);
    {
        char **dirs = x->lay->folder ? layout_dirs(x->lay, name) : NULL;
        struct mg_watch_output o = {name, type, (const char *const *)dirs};
        if (!x->out(x->u, &o, dec, x->err))
            x->failed = true;
        else
            x->res->outputs++;
        g_strfreev(dirs);
    }
    g_object_unref(dec);
    g_free(type);
}

bool mg_watch_file(const struct mg_sanitize_opts *o, int fd, const char *name, mg_watch_out_fn out,
                   void *u, struct mg_watch_result *res, GError **err)
{
    struct mg_sanitize_opts so = *o;
    struct mg_sanitize *s;
    struct mg_qwrite *qw = NULL;
    char *low = g_ascii_strdown(name, -1);
    bool eml = g_str_has_suffix(low, ".eml"), ok;
    char boundary[40];
    GError *e = NULL;

    g_free(low);
    memset(res, 0, sizeof *res);
    res->verdict = MG_VERDICT_TEMPFAIL;
    so.file = !eml; /* the notice speaks of the file, not of a mail */
    if (!eml && o->quarantine != NULL) {
        qw = mg_quarantine_write_begin(o->quarantine, err);
        if (qw == NULL)
            return false;
        so.file_qwrite = qw; /* the pipeline owns it from here */
    }
    s = mg_sanitize_new(&so);
    if (!eml) {
        unsigned char r[8];
        char *head;
        mg_random_fill(r, sizeof r);
        g_snprintf(boundary, sizeof boundary, "=_mugaika_watch_%02x%02x%02x%02x%02x%02x%02x%02x",
                   r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7]);
        head = wrapper_head(name, boundary);
        feed_str(s, head);
        g_free(head);
    }
    ok = feed_file(s, qw, fd, name, eml, err);
    if (ok && !eml) {
        char *tail = g_strdup_printf("\r\n--%s--\r\n", boundary);
        feed_str(s, tail);
        g_free(tail);
    }
    if (ok) {
        res->verdict = mg_sanitize_finish(s, &e);
        res->quarantine_id =
            g_strdup(*mg_sanitize_quarantine_id(s) != '\0' ? mg_sanitize_quarantine_id(s) : NULL);
        res->result = g_strdup(mg_sanitize_result(s));
        res->notice = g_strdup(mg_sanitize_notice(s));
        res->parts = mg_sanitize_parts_json(s);
        res->audit = mg_sanitize_audit(s);
        if (res->verdict == MG_VERDICT_REJECT) {
            g_clear_error(&e); /* a result, not a failure: nothing delivered */
        } else if (res->verdict != MG_VERDICT_ACCEPT) {
            g_propagate_error(err, e);
            ok = false;
        } else {
            GMimeStream *fs = rebuilt(s, o->spool_dir, err);
            ok = fs != NULL;
            if (ok && eml) {
                /* the mail itself is the output */
                struct mg_watch_output mo = {name, "message/rfc822", NULL};
                ok = out(u, &mo, fs, err);
                res->outputs += ok;
            } else if (ok) {
                GMimeParser *p = g_mime_parser_new_with_stream(fs);
                GMimeMessage *m = g_mime_parser_construct_message(p, NULL);
                g_object_unref(p);
                if (m == NULL) {
                    g_set_error(err, mg_watch_error_quark(), 0,
                                "the rebuilt message does not parse");
                    ok = false;
                } else {
                    struct layout lay;
                    layout_init(&lay, o, name, res->parts);
                    struct emit x = {out, u, res, err, false, &lay};
                    g_mime_message_foreach(m, emit_part, &x);
                    ok = !x.failed;
                    layout_clear(&lay);
                    g_object_unref(m);
                }
            }
            if (fs != NULL)
                g_object_unref(fs);
        }
    }
    mg_sanitize_free(s); /* aborts the quarantine writer if nothing was committed */
    return ok;
}

void mg_watch_result_clear(struct mg_watch_result *res)
{
    g_free(res->quarantine_id);
    g_free(res->result);
    g_free(res->notice);
    if (res->parts != NULL)
        json_node_unref(res->parts);
    if (res->audit != NULL)
        json_node_unref(res->audit);
    memset(res, 0, sizeof *res);
}

/* --- the report ------------------------------------------------------------ */

struct report_words {
    const char *title, *file, *time, *delivered, *not_delivered, *rejected, *failed, *parts,
        *quarantine, *ask;
};

static const struct report_words report_ja = {
    .title = "【無害化処理の報告】",
    .file = "ファイル",
    .time = "処理日時",
    .delivered = "次のファイルをお届けしました",
    .not_delivered = "お届けできるファイルはありませんでした。",
    .rejected = "このファイルは受け付けられませんでした（ポリシーによる拒否）。",
    .failed = "処理に失敗したため、お届けしていません。",
    .parts = "判定と処理",
    .quarantine = "隔離ID",
    .ask = "元のファイルが必要な場合は、この隔離IDを添えてシステム管理者にお問い合わせください。",
};

static const struct report_words report_en = {
    .title = "[Sanitisation report]",
    .file = "File",
    .time = "Processed",
    .delivered = "Delivered",
    .not_delivered = "Nothing could be delivered.",
    .rejected = "This file was refused by the policy.",
    .failed = "Processing failed: nothing was delivered.",
    .parts = "What was found and done",
    .quarantine = "Quarantine ID",
    .ask = "If you need the original, ask your system administrator, quoting this quarantine ID.",
};

/* One line per leaf part of the record: name, detected type, rule,
 * action (and why, when it was forced). */
static void report_parts(GString *r, JsonNode *parts)
{
    JsonArray *a =
        parts != NULL && JSON_NODE_HOLDS_ARRAY(parts) ? json_node_get_array(parts) : NULL;

    for (guint i = 0; a != NULL && i < json_array_get_length(a); i++) {
        JsonObject *p = json_array_get_object_element(a, i);
        const char *fn, *forced;
        if (p == NULL || !json_object_get_boolean_member_with_default(p, "leaf", FALSE))
            continue;
        if (strcmp(json_object_get_string_member_with_default(p, "role", ""), "body") == 0 &&
            json_object_get_int_member_with_default(p, "size", 0) == 0)
            continue; /* the empty text of the message made around a file */
        fn = json_object_get_string_member_with_default(p, "filename", NULL);
        forced = json_object_get_string_member_with_default(p, "forced", NULL);
        g_string_append_printf(r, "  - %s (%s): %s -> %s%s%s\r\n", fn != NULL ? fn : "-",
                               json_object_get_string_member_with_default(p, "detected_type", "?"),
                               json_object_get_string_member_with_default(p, "rule", "-"),
                               json_object_get_string_member_with_default(p, "action", "-"),
                               forced != NULL ? ", " : "", forced != NULL ? forced : "");
    }
}

char *mg_watch_report(const struct mg_watch_result *res, const char *name,
                      const char *const *outputs, const char *lang, GDateTime *when)
{
    const struct report_words *w =
        lang != NULL && strcmp(lang, "en") == 0 ? &report_en : &report_ja;
    GString *r = g_string_new(NULL);
    /* the reader's clock (the daemon's time zone), with its offset */
    char *t = when != NULL ? g_date_time_format(when, "%Y-%m-%d %H:%M:%S %:z") : NULL;
    char **lines;

    g_string_append_printf(r, "%s\r\n%s: %s\r\n", w->title, w->file, name);
    if (t != NULL)
        g_string_append_printf(r, "%s: %s\r\n", w->time, t);
    g_string_append(r, "\r\n");
    if (res->verdict == MG_VERDICT_REJECT) {
        g_string_append_printf(r, "%s\r\n", w->rejected);
    } else if (res->verdict != MG_VERDICT_ACCEPT) {
        g_string_append_printf(r, "%s\r\n", w->failed);
    } else if (outputs != NULL && outputs[0] != NULL) {
        g_string_append_printf(r, "%s:\r\n", w->delivered);
        for (const char *const *o = outputs; *o != NULL; o++)
            g_string_append_printf(r, "  - %s\r\n", *o);
    } else {
        g_string_append_printf(r, "%s\r\n", w->not_delivered);
    }
    /* the notice, in CRLF lines */
    lines = g_strsplit(res->notice != NULL ? res->notice : "", "\n", -1);
    for (char **l = lines; *l != NULL; l++)
        if (**l != '\0')
            g_string_append_printf(r, "%s%s\r\n", l == lines ? "\r\n" : "", *l);
    g_strfreev(lines);
    g_string_append_printf(r, "\r\n%s:\r\n", w->parts);
    report_parts(r, res->parts);
    if (res->quarantine_id != NULL)
        g_string_append_printf(r, "\r\n%s: %s\r\n%s\r\n", w->quarantine, res->quarantine_id,
                               w->ask);
    g_free(t);
    return g_string_free(r, FALSE);
}
