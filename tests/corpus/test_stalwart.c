/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * NAME
 *	test_stalwart 1
 * SUMMARY
 *	corpus conformance: mugaika against stalwart-mail-parser's trees
 * SYNOPSIS
 *	test_stalwart [gtest options]
 *	(environment: MUGAIKA_SHARED=../shared, MUGAIKA_CORPUS_LISTS=dir
 *	of stalwart-divergences.txt; optional MUGAIKA_CORPUS_ONLY=substring)
 * DESCRIPTION
 *	Each ../shared/corpus/stalwart-mail-parser/eml/SET/NNN.eml comes
 *	with NNN.json, the part tree stalwart-mail-parser expects: a flat
 *	"parts" array whose entry 0 is the message, each with its decoded
 *	headers and a body that is Multipart (child indexes), Message (a
 *	nested tree), Text or Html (decoded UTF-8 text) or Binary or
 *	InlineBinary (decoded bytes). Offsets and header values other than
 *	Content-Type and Content-Disposition are not compared.
 *
 *	Both trees are flattened in document order into nodes (multipart,
 *	message/rfc822 container, leaf) and compared node by node:
 *	- the sequence of node kinds (the structure);
 *	- the content type (stalwart: its last Content-Type field, as it
 *	  keeps the last; default text/plain, message/rfc822 in a digest);
 *	- the filename (Content-Disposition filename, else Content-Type
 *	  name; decoded);
 *	- leaf bodies: Text/Html against mugaika's "text" (inspect option
 *	  text: the body converted to UTF-8), both with CRLF made LF
 *	  (stalwart normalises line ends in text); Binary against
 *	  mugaika's decoded bytes, with CRLF made LF on both sides when
 *	  the part has no transfer encoding (stalwart does so there too).
 *
 *	Messages that differ are printed with their first difference, and
 *	marked "listed" when tests/corpus/stalwart-divergences.txt gives
 *	the reason (one "SET/NNN.eml: reason" per line), else UNLISTED.
 *	The test asserts at least MIN_AGREE messages agree fully (the
 *	measured count minus a margin for parser work in progress; see
 *	docs/parser-divergences.md).
 * DIAGNOSTICS
 *	Exit 77 (skip) when ../shared is absent.
 */
#include <string.h>

#include "corpus_util.h"

/* Measured 74/98 (mugaika 0.1.0); margin 2. */
#define MIN_AGREE 72

struct exp_node {
    enum corpus_kind kind;
    char *content_type;
    char *filename;
    bool is_text;     /* Text or Html body */
    const char *text; /* borrowed from the JSON */
    GByteArray *bin;  /* Binary or InlineBinary */
    bool encoding_problem;
};

static void exp_free(gpointer data)
{
    struct exp_node *n = data;

    g_free(n->content_type);
    g_free(n->filename);
    if (n->bin)
        g_byte_array_unref(n->bin);
    g_free(n);
}

/* The attribute value of name in a ContentType object, or NULL. */
static const char *attribute(JsonObject *ct, const char *name)
{
    JsonNode *a = json_object_get_member(ct, "attributes");
    JsonArray *arr;

    if (a == NULL || !JSON_NODE_HOLDS_ARRAY(a))
        return NULL;
    arr = json_node_get_array(a);
    for (guint i = 0; i < json_array_get_length(arr); i++) {
        JsonObject *o = json_array_get_object_element(arr, i);
        if (g_ascii_strcasecmp(json_object_get_string_member(o, "name"), name) == 0)
            return json_object_get_string_member(o, "value");
    }
    return NULL;
}

/* The ContentType object of the last field called name, or NULL. */
static JsonObject *field(JsonObject *part, const char *name)
{
    JsonArray *headers = json_object_get_array_member(part, "headers");
    JsonObject *found = NULL;

    for (guint i = 0; i < json_array_get_length(headers); i++) {
        JsonObject *h = json_array_get_object_element(headers, i);
        JsonNode *v = json_object_get_member(h, "value");
        JsonNode *hn = json_object_get_member(h, "name"); /* {"other": NAME} when unknown */
        if (!JSON_NODE_HOLDS_VALUE(hn) || strcmp(json_node_get_string(hn), name) != 0)
            continue;
        found = NULL;
        if (JSON_NODE_HOLDS_OBJECT(v) &&
            json_object_has_member(json_node_get_object(v), "ContentType"))
            found = json_object_get_object_member(json_node_get_object(v), "ContentType");
    }
    return found;
}

static void flatten(JsonObject *msg, guint idx, bool in_digest, GPtrArray *out)
{
    JsonArray *parts = json_object_get_array_member(msg, "parts");
    JsonObject *part = json_array_get_object_element(parts, idx);
    JsonObject *ct = field(part, "content_type"), *cd = field(part, "content_disposition");
    JsonObject *body = json_object_get_object_member(part, "body");
    struct exp_node *n = g_new0(struct exp_node, 1);
    const char *fn = cd ? attribute(cd, "filename") : NULL;
    GList *members = json_object_get_members(body);
    const char *kind = members->data; /* the body has one member */
    JsonNode *v = json_object_get_member(body, kind);

    g_list_free(members);
    if (ct != NULL) {
        const char *sub = json_object_get_null_member(ct, "c_subtype")
                              ? ""
                              : json_object_get_string_member(ct, "c_subtype");
        char *t = g_strconcat(json_object_get_string_member(ct, "c_type"), "/", sub, NULL);
        n->content_type = g_ascii_strdown(t, -1);
        g_free(t);
    } else {
        n->content_type = g_strdup(in_digest ? "message/rfc822" : "text/plain");
    }
    if (fn == NULL && ct != NULL)
        fn = attribute(ct, "name");
    n->filename = g_strdup(fn);
    n->encoding_problem = json_object_get_boolean_member(part, "is_encoding_problem");
    g_ptr_array_add(out, n);
    if (strcmp(kind, "Multipart") == 0) {
        JsonArray *kids = json_node_get_array(v);
        n->kind = CORPUS_MULTIPART;
        for (guint i = 0; i < json_array_get_length(kids); i++)
            flatten(msg, (guint)json_array_get_int_element(kids, i),
                    strcmp(n->content_type, "multipart/digest") == 0, out);
    } else if (strcmp(kind, "Message") == 0) {
        n->kind = CORPUS_MESSAGE;
        flatten(json_node_get_object(v), 0, false, out);
    } else if (strcmp(kind, "Text") == 0 || strcmp(kind, "Html") == 0) {
        n->kind = CORPUS_LEAF;
        n->is_text = true;
        n->text = json_node_get_string(v);
    } else {
        JsonArray *bytes = json_node_get_array(v);
        n->kind = CORPUS_LEAF;
        n->bin = g_byte_array_sized_new(json_array_get_length(bytes));
        for (guint i = 0; i < json_array_get_length(bytes); i++) {
            guint8 c = (guint8)json_array_get_int_element(bytes, i);
            g_byte_array_append(n->bin, &c, 1);
        }
    }
}

/* s with every CRLF made LF. Owned. */
static char *lf_only(const char *s)
{
    GString *o = g_string_new(NULL);

    for (; *s; s++) {
        if (s[0] != '\r' || s[1] != '\n')
            g_string_append_c(o, *s);
    }
    return g_string_free(o, FALSE);
}

/* Equal once every CRLF is LF? */
static bool same_lf(const GByteArray *a, const GByteArray *b)
{
    guint i = 0, j = 0;

    for (;;) {
        if (i + 1 < a->len && a->data[i] == '\r' && a->data[i + 1] == '\n')
            i++;
        if (j + 1 < b->len && b->data[j] == '\r' && b->data[j + 1] == '\n')
            j++;
        if (i == a->len || j == b->len)
            return i == a->len && j == b->len;
        if (a->data[i++] != b->data[j++])
            return false;
    }
}

/* Stalwart makes CRLF LF in bodies that have no transfer encoding. */
static bool transfer_encoded(const struct corpus_part *m)
{
    return m->cte != NULL &&
           (strcmp(m->cte, "base64") == 0 || strcmp(m->cte, "quoted-printable") == 0 ||
            strcmp(m->cte, "x-uuencode") == 0 || strcmp(m->cte, "uuencode") == 0);
}

static const char *kind_name(enum corpus_kind k)
{
    return k == CORPUS_LEAF ? "leaf" : k == CORPUS_MULTIPART ? "multipart" : "message";
}

static char *outline(GPtrArray *nodes, bool mugaika)
{
    GString *s = g_string_new(NULL);

    for (guint i = 0; i < nodes->len; i++) {
        enum corpus_kind k;
        const char *ct;
        if (mugaika) {
            k = ((struct corpus_part *)nodes->pdata[i])->kind;
            ct = ((struct corpus_part *)nodes->pdata[i])->content_type;
        } else {
            k = ((struct exp_node *)nodes->pdata[i])->kind;
            ct = ((struct exp_node *)nodes->pdata[i])->content_type;
        }
        g_string_append_printf(s, "%s%c:%s", i ? " " : "", kind_name(k)[0], ct);
    }
    return g_string_free(s, FALSE);
}

static char *compare_leaf(const struct exp_node *e, const struct corpus_part *m, guint i)
{
    if (e->is_text) {
        char *a, *b, *r = NULL;
        size_t k = 0;
        if (m->text == NULL)
            return g_strdup_printf("node %u (%s %s): stalwart has text%s, mugaika none", i, m->path,
                                   m->content_type,
                                   e->encoding_problem ? " (encoding problem)" : "");
        a = lf_only(e->text);
        b = lf_only(m->text);
        while (a[k] && a[k] == b[k])
            k++;
        if (a[k] != b[k])
            r = g_strdup_printf("node %u (%s %s): text differs at byte %zu (%zu vs %zu bytes)%s", i,
                                m->path, m->content_type, k, strlen(a), strlen(b),
                                e->encoding_problem ? " (encoding problem)" : "");
        g_free(a);
        g_free(b);
        return r;
    }
    char *sha = corpus_sha256(e->bin->data, e->bin->len);
    bool same = e->bin->len == m->size && strcmp(sha, m->sha256) == 0;
    g_free(sha);
    if (same || (!transfer_encoded(m) && same_lf(e->bin, m->bytes)))
        return NULL;
    return g_strdup_printf("node %u (%s %s cte=%s): %u vs %" G_GUINT64_FORMAT " bytes", i, m->path,
                           m->content_type, m->cte ? m->cte : "-", e->bin->len, m->size);
}

/* NULL when the trees agree, else the first difference (owned). */
static char *compare(GPtrArray *exp, GPtrArray *mg)
{
    if (exp->len != mg->len) {
        char *a = outline(exp, false), *b = outline(mg, true);
        char *r = g_strdup_printf("structure: stalwart [%s] mugaika [%s]", a, b);
        g_free(a);
        g_free(b);
        return r;
    }
    for (guint i = 0; i < exp->len; i++) {
        struct exp_node *e = exp->pdata[i];
        struct corpus_part *m = mg->pdata[i];
        char *r;
        if (e->kind != m->kind) {
            char *a = outline(exp, false), *b = outline(mg, true);
            r = g_strdup_printf("structure: stalwart [%s] mugaika [%s]", a, b);
            g_free(a);
            g_free(b);
            return r;
        }
        if (strcmp(e->content_type, m->content_type) != 0)
            return g_strdup_printf("node %u (%s): type %s vs %s", i, m->path, e->content_type,
                                   m->content_type);
        if (g_strcmp0(e->filename, m->filename) != 0) {
            char *a = corpus_printable(e->filename), *b = corpus_printable(m->filename);
            r = g_strdup_printf("node %u (%s): filename \"%s\" vs \"%s\"", i, m->path, a, b);
            g_free(a);
            g_free(b);
            return r;
        }
        if (e->kind == CORPUS_LEAF && (r = compare_leaf(e, m, i)) != NULL)
            return r;
    }
    return NULL;
}

struct run {
    const char *root;
    GHashTable *listed; /* file -> reason */
    GHashTable *seen;   /* listed files that were examined */
    unsigned messages, agree, listed_diff, unlisted;
};

static void check_one(struct run *r, const char *rel)
{
    const char *prefix = "stalwart-mail-parser/eml/";
    const char *name = rel + strlen(prefix);
    char *json_rel = g_strndup(rel, strlen(rel) - 4), *json_path, *diff;
    JsonParser *jp = json_parser_new();
    GError *err = NULL;
    GPtrArray *exp = g_ptr_array_new_with_free_func(exp_free), *all, *mg;
    size_t len;
    char *data = corpus_read(r->root, rel, &len);

    json_path = g_strconcat(r->root, "/", json_rel, ".json", NULL);
    if (!json_parser_load_from_file(jp, json_path, &err))
        g_error("%s: %s", json_path, err->message);
    flatten(json_node_get_object(json_parser_get_root(jp)), 0, false, exp);
    all = corpus_mugaika_parts(data, len, CORPUS_TEXT | CORPUS_BYTES, NULL);
    g_assert_nonnull(all);
    mg = g_ptr_array_new();
    for (guint i = 0; i < all->len; i++) {
        struct corpus_part *p = all->pdata[i];
        if (strcmp(p->origin, "mime") == 0)
            g_ptr_array_add(mg, p);
    }
    r->messages++;
    diff = compare(exp, mg);
    if (g_hash_table_contains(r->listed, name))
        g_hash_table_add(r->seen, g_strdup(name));
    if (diff == NULL) {
        r->agree++;
    } else if (g_hash_table_contains(r->listed, name)) {
        r->listed_diff++;
        corpus_print("STALWART %s: differs (listed: %s): %s\n", name,
                     (const char *)g_hash_table_lookup(r->listed, name), diff);
    } else {
        r->unlisted++;
        corpus_print("STALWART %s: differs (UNLISTED): %s\n", name, diff);
    }
    g_free(diff);
    g_ptr_array_unref(mg);
    g_ptr_array_unref(all);
    g_ptr_array_unref(exp);
    g_object_unref(jp);
    g_free(json_path);
    g_free(json_rel);
    g_free(data);
}

static void test_stalwart(gconstpointer arg)
{
    struct run r = {
        .root = arg,
        .listed = corpus_read_list("stalwart-divergences.txt"),
        .seen = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL),
    };
    GPtrArray *files = corpus_list(r.root, "stalwart-mail-parser/eml");
    const char *only = g_getenv("MUGAIKA_CORPUS_ONLY");
    unsigned stale = 0;

    for (guint i = 0; i < files->len; i++) {
        const char *rel = files->pdata[i];
        if (g_str_has_suffix(rel, ".eml") && (only == NULL || strstr(rel, only) != NULL))
            check_one(&r, rel);
    }
    corpus_print("stalwart: %u/%u messages agree fully; %u differ as listed in "
                 "stalwart-divergences.txt, %u UNLISTED (threshold %d)\n",
                 r.agree, r.messages, r.listed_diff, r.unlisted, MIN_AGREE);
    stale = corpus_check_list("stalwart-divergences.txt", r.listed, r.seen, r.listed_diff,
                              only != NULL);
    if (only == NULL && stale > 0)
        corpus_print("stalwart: %u listed divergences now agree: update the list\n", stale);
    g_test_message("stalwart: %u/%u agree", r.agree, r.messages);
    if (only == NULL) {
        g_assert_cmpuint(r.messages, ==, 98);
        g_assert_cmpuint(r.agree, >=, MIN_AGREE);
        g_assert_cmpuint(r.unlisted, ==, 0); /* every difference has a listed reason */
    }
    g_hash_table_destroy(r.listed);
    g_hash_table_destroy(r.seen);
    g_ptr_array_unref(files);
}

int main(int argc, char **argv)
{
    return corpus_test_main(argc, argv, "/corpus/stalwart", test_stalwart);
}
