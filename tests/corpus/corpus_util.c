/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * NAME
 *	corpus_util 3
 * SUMMARY
 *	helpers shared by the corpus test programs
 * SYNOPSIS
 *	#include "corpus_util.h"
 * DESCRIPTION
 *	corpus_root() finds ../shared/corpus through $MUGAIKA_SHARED (set
 *	by tests/corpus/meson.build) and exits 77 (meson: skip), saying
 *	why, when it is absent. corpus_list() walks a directory tree into
 *	a sorted list of relative paths. corpus_is_mail() is the one place
 *	that decides which files of the MIME sets are mails.
 *	corpus_mugaika_parts() reads the part records back out of the JSON
 *	of mg_inspect, the same object `mugaika inspect --json` prints.
 * LIMITS
 *	Files are read whole (the largest corpus file is a few MiB).
 * DIAGNOSTICS
 *	Unreadable corpus files abort the test (g_error).
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <mugaika/inspect.h>

#include "corpus_util.h"

char *corpus_root(void)
{
    const char *shared = g_getenv("MUGAIKA_SHARED");
    char *root;

    if (shared == NULL || *shared == '\0') {
        corpus_print("SKIP: MUGAIKA_SHARED is not set (run through meson test)\n");
        exit(77);
    }
    root = g_build_filename(shared, "corpus", NULL);
    if (!g_file_test(root, G_FILE_TEST_IS_DIR)) {
        corpus_print("SKIP: %s does not exist (no ../shared checkout)\n", root);
        g_free(root);
        exit(77);
    }
    return root;
}

static void list_dir(const char *root, const char *rel, GPtrArray *out)
{
    char *dir = g_build_filename(root, rel, NULL);
    GError *err = NULL;
    GDir *d = g_dir_open(dir, 0, &err);
    const char *name;

    if (d == NULL)
        g_error("cannot list %s: %s", dir, err->message);
    while ((name = g_dir_read_name(d)) != NULL) {
        char *sub = *rel ? g_strconcat(rel, "/", name, NULL) : g_strdup(name);
        char *full = g_build_filename(root, sub, NULL);
        if (g_file_test(full, G_FILE_TEST_IS_SYMLINK)) {
            g_free(sub);
        } else if (g_file_test(full, G_FILE_TEST_IS_DIR)) {
            list_dir(root, sub, out);
            g_free(sub);
        } else if (g_file_test(full, G_FILE_TEST_IS_REGULAR)) {
            g_ptr_array_add(out, sub);
        } else {
            g_free(sub);
        }
        g_free(full);
    }
    g_dir_close(d);
    g_free(dir);
}

static gint cmp_str(gconstpointer a, gconstpointer b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

GPtrArray *corpus_list(const char *root, const char *sub)
{
    GPtrArray *out = g_ptr_array_new_with_free_func(g_free);

    list_dir(root, sub, out);
    g_ptr_array_sort(out, cmp_str);
    return out;
}

char *corpus_read(const char *root, const char *rel, size_t *len)
{
    char *path = g_build_filename(root, rel, NULL);
    GError *err = NULL;
    char *data;
    gsize n;

    if (!g_file_get_contents(path, &data, &n, &err))
        g_error("cannot read %s: %s", path, err->message);
    g_free(path);
    *len = n;
    return data;
}

/* The sets whose mails the differential reads (mime-is-broken is left
 * out on purpose: it is built to make parsers disagree). */
static const char *const mail_sets[] = {
    "stalwart-mail-parser",
    "gmime",
    "mimekit",
    "mime4j",
    "python-email",
    "ruby-mail",
    "enmime",
    "hunnysoft-mime-samples",
    "php-mime-mail-parser",
    "nodemailer-mailparser",
    "postal-mime",
    "crymap",
    "jpmobile",
    "sisimai-ja",
    "sisimai-line-endings",
};

/* Directories of those sets that hold bodies, attachments or expected
 * outputs, not mails. */
static const char *const not_mail_dirs[] = {
    "stalwart-mail-parser/LICENSES/",
    "stalwart-mail-parser/maildir/", /* one-letter stubs of a maildir test */
    "gmime/encodings/",
    "gmime/filters/",
    "gmime/mime-part/",
    "gmime/mbox/output/", /* offset listings followed by the messages */
    "mimekit/encoders/",
    "mimekit/html/",
    "mimekit/text/",
    "hunnysoft-mime-samples/emails/files/",
    "ruby-mail/attachments/",
};

/* Directories whose files are mails whatever their names look like. */
static const char *const mail_dirs[] = {
    "mime4j/mbox/",
};

static bool in_list(const char *rel, const char *const *list, size_t n, bool prefix)
{
    for (size_t i = 0; i < n; i++) {
        if (prefix ? g_str_has_prefix(rel, list[i]) : strcmp(rel, list[i]) == 0)
            return true;
    }
    return false;
}

/* First line is "Name:" (a header field) or an mbox "From " line. */
static bool looks_like_mail(const char *data, size_t len)
{
    size_t i = 0;

    if (len >= 5 && memcmp(data, "From ", 5) == 0)
        return true;
    while (i < len && (unsigned char)data[i] > ' ' && (unsigned char)data[i] < 127 &&
           data[i] != ':')
        i++;
    while (i > 0 && i < len && (data[i] == ' ' || data[i] == '\t'))
        i++;
    return i > 0 && i < len && data[i] == ':';
}

bool corpus_is_mail(const char *rel, const char *data, size_t len)
{
    const char *slash = strchr(rel, '/');
    const char *base = strrchr(rel, '/');
    const char *dot;
    char *set;
    bool known;

    if (slash == NULL)
        return false;
    set = g_strndup(rel, (gsize)(slash - rel));
    known = in_list(set, mail_sets, G_N_ELEMENTS(mail_sets), false);
    g_free(set);
    if (!known || in_list(rel, not_mail_dirs, G_N_ELEMENTS(not_mail_dirs), true))
        return false;
    if (in_list(rel, mail_dirs, G_N_ELEMENTS(mail_dirs), true))
        return true;
    base = base ? base + 1 : rel;
    /* mimekit/tnef/NAME/...: the files extracted from NAME.tnef */
    if (g_str_has_prefix(rel, "mimekit/tnef/") && strchr(rel + strlen("mimekit/tnef/"), '/'))
        return false;
    /* mime4j expected outputs, mimekit mbox summaries */
    if (strstr(base, "_decoded") != NULL || g_str_has_suffix(base, "-summary.txt"))
        return false;
    dot = strrchr(base, '.');
    if (dot == NULL)
        return looks_like_mail(data, len);
    if (strcmp(dot, ".eml") == 0 || strcmp(dot, ".msg") == 0 || strcmp(dot, ".raw") == 0 ||
        strcmp(dot, ".mbox") == 0)
        return true;
    if (strcmp(dot, ".txt") == 0)
        return looks_like_mail(data, len);
    return false;
}

size_t corpus_first_message(const char *rel, const char *data, size_t len)
{
    const char *p;
    bool mbox = g_str_has_suffix(rel, ".mbox") || g_str_has_suffix(rel, ".mbox.txt") ||
                g_str_has_prefix(rel, "mime4j/mbox/");

    if (!mbox || len < 5 || memcmp(data, "From ", 5) != 0)
        return len;
    p = memchr(data, '\n', len);
    while (p != NULL && (size_t)(p - data) + 6 <= len) {
        if (memcmp(p + 1, "From ", 5) == 0)
            return (size_t)(p - data) + 1;
        p = memchr(p + 1, '\n', len - (size_t)(p + 1 - data));
    }
    return len;
}

static char *member_dup(JsonObject *o, const char *name)
{
    JsonNode *n = json_object_get_member(o, name);

    if (n == NULL || JSON_NODE_HOLDS_NULL(n))
        return NULL;
    return g_strdup(json_node_get_string(n));
}

static void part_free(gpointer data)
{
    struct corpus_part *l = data;

    g_free(l->path);
    g_free(l->content_type);
    g_free(l->filename);
    g_free(l->cte);
    g_free(l->origin);
    g_free(l->sha256);
    g_free(l->text);
    g_ptr_array_unref(l->defects);
    if (l->bytes)
        g_byte_array_unref(l->bytes);
    g_free(l);
}

bool corpus_part_has(const struct corpus_part *l, const char *code)
{
    for (guint i = 0; i < l->defects->len; i++) {
        if (strcmp(l->defects->pdata[i], code) == 0)
            return true;
    }
    return false;
}

/* Collection of leaf bytes with the bare push parser. */
struct capture {
    GPtrArray *parts; /* of struct corpus_part, borrowed */
    guint next;       /* index of the next part to begin */
    GPtrArray *open;  /* open parts, innermost last */
};

static int cap_begin(struct mg_mime *p, const struct mg_mime_part *part)
{
    struct capture *c = mg_mime_user(p);
    struct corpus_part *l;

    g_assert_cmpuint(c->next, <, c->parts->len);
    l = c->parts->pdata[c->next++];
    g_assert_cmpstr(l->path, ==, part->path);
    l->type_default = part->content_type_default;
    if (part->kind == MG_MIME_LEAF)
        l->bytes = g_byte_array_new();
    g_ptr_array_add(c->open, l);
    return 0;
}

static int cap_body(struct mg_mime *p, const struct mg_mime_part *part, const char *data,
                    size_t len)
{
    struct capture *c = mg_mime_user(p);

    /* a text leaf streams on while its uuencoded child is open */
    for (guint i = c->open->len; i > 0; i--) {
        struct corpus_part *l = c->open->pdata[i - 1];
        if (strcmp(l->path, part->path) == 0) {
            g_assert_nonnull(l->bytes);
            g_byte_array_append(l->bytes, (const guint8 *)data, (guint)len);
            break;
        }
    }
    return 0;
}

static int cap_end(struct mg_mime *p, const struct mg_mime_part *part)
{
    struct capture *c = mg_mime_user(p);
    struct corpus_part *l;

    g_assert_cmpuint(c->open->len, >, 0);
    l = c->open->pdata[c->open->len - 1];
    g_assert_cmpstr(l->path, ==, part->path);
    g_ptr_array_remove_index(c->open, c->open->len - 1);
    return 0;
}

static const struct mg_mime_settings capture_settings = {
    .on_part_begin = cap_begin,
    .on_body = cap_body,
    .on_part_end = cap_end,
};

/* A second pass with the bare parser: the decoded bytes of every leaf,
 * which must match what mg_inspect reported. */
static void capture_bytes(const char *data, size_t len, GPtrArray *parts)
{
    struct capture c = {parts, 0, g_ptr_array_new()};
    struct mg_mime *p = mg_mime_new(&capture_settings, NULL, &c);

    g_assert_cmpint(mg_mime_execute(p, data, len), ==, MG_OK);
    g_assert_cmpint(mg_mime_finish(p), ==, MG_OK);
    mg_mime_free(p);
    g_assert_cmpuint(c.next, ==, parts->len);
    for (guint i = 0; i < parts->len; i++) {
        struct corpus_part *l = parts->pdata[i];
        char *sha;
        if (l->kind != CORPUS_LEAF)
            continue;
        sha = corpus_sha256(l->bytes->data, l->bytes->len);
        g_assert_cmpuint(l->bytes->len, ==, l->size);
        g_assert_cmpstr(sha, ==, l->sha256);
        g_free(sha);
    }
    g_ptr_array_unref(c.open);
}

static bool is_message_type(const char *ct)
{
    return strcmp(ct, "message/rfc822") == 0 || strcmp(ct, "message/global") == 0 ||
           strcmp(ct, "message/rfc2822") == 0 || strcmp(ct, "message/news") == 0;
}

static struct corpus_part *part_from_json(JsonObject *p)
{
    struct corpus_part *l = g_new0(struct corpus_part, 1);
    JsonArray *defects = json_object_get_array_member(p, "defects");

    l->path = member_dup(p, "path");
    l->content_type = member_dup(p, "content_type");
    l->filename = member_dup(p, "filename");
    l->cte = member_dup(p, "transfer_encoding");
    l->origin = member_dup(p, "origin");
    l->sha256 = member_dup(p, "sha256");
    l->text = json_object_has_member(p, "text") ? member_dup(p, "text") : NULL;
    if (json_object_get_boolean_member(p, "leaf")) {
        l->kind = CORPUS_LEAF;
        l->size = (uint64_t)json_object_get_int_member(p, "size");
    } else {
        l->kind =
            g_str_has_prefix(l->content_type, "multipart/") ? CORPUS_MULTIPART : CORPUS_MESSAGE;
    }
    l->message_leaf = l->kind == CORPUS_LEAF && is_message_type(l->content_type);
    l->defects = g_ptr_array_new_with_free_func(g_free);
    for (guint j = 0; j < json_array_get_length(defects); j++) {
        JsonObject *d = json_array_get_object_element(defects, j);
        g_ptr_array_add(l->defects, g_strdup(json_object_get_string_member(d, "code")));
    }
    return l;
}

GPtrArray *corpus_mugaika_parts(const char *data, size_t len, unsigned flags, JsonNode **json)
{
    struct mg_inspect_opts o;
    struct mg_inspect *in;
    GPtrArray *out;
    JsonNode *root;
    JsonArray *parts;

    mg_inspect_opts_default(&o);
    o.text = (flags & CORPUS_TEXT) != 0;
    in = mg_inspect_new(&o);
    if (mg_inspect_feed(in, data, len) != MG_OK || mg_inspect_finish(in) != MG_OK) {
        mg_inspect_free(in);
        return NULL;
    }
    root = mg_inspect_json(in);
    mg_inspect_free(in);
    out = g_ptr_array_new_with_free_func(part_free);
    parts = json_object_get_array_member(json_node_get_object(root), "parts");
    for (guint i = 0; i < json_array_get_length(parts); i++)
        g_ptr_array_add(out, part_from_json(json_array_get_object_element(parts, i)));
    if (flags & CORPUS_BYTES)
        capture_bytes(data, len, out);
    if (flags & CORPUS_LEAVES) {
        for (guint i = out->len; i > 0; i--) {
            struct corpus_part *l = out->pdata[i - 1];
            if (l->kind != CORPUS_LEAF)
                g_ptr_array_remove_index(out, i - 1);
        }
    }
    if (json)
        *json = root;
    else
        json_node_unref(root);
    return out;
}

static int bnd_begin(struct mg_mime *p, const struct mg_mime_part *part)
{
    if (part->kind == MG_MIME_MULTIPART && part->boundary != NULL)
        g_ptr_array_add(mg_mime_user(p), g_strdup(part->boundary));
    return 0;
}

static const struct mg_mime_settings boundary_settings = {
    .on_part_begin = bnd_begin,
};

GPtrArray *corpus_boundaries(const char *data, size_t len)
{
    GPtrArray *out = g_ptr_array_new_with_free_func(g_free);
    struct mg_mime *p = mg_mime_new(&boundary_settings, NULL, out);

    g_assert_cmpint(mg_mime_execute(p, data, len), ==, MG_OK);
    g_assert_cmpint(mg_mime_finish(p), ==, MG_OK);
    mg_mime_free(p);
    return out;
}

char *corpus_sha256(const void *buf, size_t len)
{
    return g_compute_checksum_for_data(G_CHECKSUM_SHA256, buf, len);
}

void corpus_print(const char *fmt, ...)
{
    va_list ap;
    char *s;

    va_start(ap, fmt);
    s = g_strdup_vprintf(fmt, ap);
    va_end(ap);
    fputs(s, stdout);
    g_free(s);
}

char *corpus_printable(const char *s)
{
    char *r = g_utf8_make_valid(s ? s : "(null)", -1);

    for (char *c = r; *c; c++) {
        if ((unsigned char)*c < ' ' || *c == 127)
            *c = '?';
    }
    return r;
}

GHashTable *corpus_read_list(const char *file)
{
    const char *dir = g_getenv("MUGAIKA_CORPUS_LISTS");
    char *path = g_build_filename(dir ? dir : ".", file, NULL);
    GHashTable *h = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
    char *text, **lines;
    GError *err = NULL;

    if (!g_file_get_contents(path, &text, NULL, &err))
        g_error("cannot read %s: %s (set MUGAIKA_CORPUS_LISTS)", path, err->message);
    lines = g_strsplit(text, "\n", -1);
    for (char **l = lines; *l; l++) {
        char *colon = strstr(*l, ": ");
        if (**l == '#' || **l == '\0')
            continue;
        if (colon == NULL)
            g_error("%s: bad line \"%s\"", path, *l);
        g_hash_table_insert(h, g_strndup(*l, (gsize)(colon - *l)), g_strdup(colon + 2));
    }
    g_strfreev(lines);
    g_free(text);
    g_free(path);
    return h;
}

int corpus_test_main(int argc, char **argv, const char *path, GTestDataFunc fn)
{
    char *root;
    int rc;

    g_test_init(&argc, &argv, NULL);
    root = corpus_root();
    g_test_add_data_func(path, root, fn);
    rc = g_test_run();
    g_free(root);
    return rc;
}

unsigned corpus_check_list(const char *list_name, GHashTable *listed, GHashTable *seen,
                           unsigned listed_diff, bool only)
{
    GHashTableIter it;
    gpointer k;

    g_hash_table_iter_init(&it, listed);
    while (g_hash_table_iter_next(&it, &k, NULL)) {
        if (!only && !g_hash_table_contains(seen, k))
            g_error("%s: %s is not a corpus file", list_name, (const char *)k);
    }
    return g_hash_table_size(listed) - listed_diff;
}
