/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * NAME
 *	test_mime4j 1
 * SUMMARY
 *	corpus conformance: mugaika against Apache James mime4j's trees
 * SYNOPSIS
 *	test_mime4j [gtest options]
 *	(environment: MUGAIKA_SHARED=../shared, MUGAIKA_CORPUS_LISTS=dir
 *	of mime4j-divergences.txt; optional MUGAIKA_CORPUS_ONLY=substring)
 * DESCRIPTION
 *	Each ../shared/corpus/mime4j/SET/X.msg that has X_decoded.xml is
 *	compared with it. That file is mime4j's tree: <message> holds a
 *	<header> and one content, which is <multipart> (with <preamble>,
 *	<body-part>s and <epilogue>), a nested <message> (message/rfc822),
 *	or <text-body name="F"/> / <binary-body name="F"/> where the file
 *	F beside it holds the transfer-decoded body (raw bytes, no charset
 *	conversion). Only the tags are read; header text is not compared.
 *
 *	Both trees are flattened in document order into nodes (multipart,
 *	message/rfc822 container, leaf). The node kinds must match one for
 *	one (the structure), and every leaf's decoded bytes must equal F.
 *	mime4j writes quoted-printable hard line breaks as CRLF whatever
 *	the input used, so a quoted-printable leaf whose bytes differ only
 *	in line ends counts as equal (and is counted apart).
 *
 *	Messages that differ are printed with their first difference and
 *	marked "listed" when tests/corpus/mime4j-divergences.txt gives the
 *	reason (one "SET/X.msg: reason" per line), else UNLISTED. The test
 *	asserts at least MIN_AGREE messages agree (the measured count minus
 *	a margin; see docs/parser-divergences.md).
 * DIAGNOSTICS
 *	Exit 77 (skip) when ../shared is absent.
 */
#include <string.h>

#include "corpus_util.h"

/* Measured 55/64 (mugaika 0.1.0); margin 2. */
#define MIN_AGREE 53

struct tag {
    char *name;
    char *file; /* the name="" attribute of a body tag */
    bool close, empty;
};

struct node {
    enum corpus_kind kind;
    char *file; /* leaves: the decoded-body file */
};

static void tag_free(gpointer data)
{
    struct tag *t = data;

    g_free(t->name);
    g_free(t->file);
    g_free(t);
}

static void node_free(gpointer data)
{
    struct node *n = data;

    g_free(n->file);
    g_free(n);
}

/* The tags of an XML text, in order; text, comments and entities are
 * skipped (mime4j escapes '<' in text). */
static GPtrArray *scan_tags(const char *xml)
{
    GPtrArray *out = g_ptr_array_new_with_free_func(tag_free);
    const char *p = xml;

    while ((p = strchr(p, '<')) != NULL) {
        const char *end = strchr(p, '>'), *n;
        struct tag *t;
        if (end == NULL)
            break;
        t = g_new0(struct tag, 1);
        n = p + 1;
        if (*n == '/') {
            t->close = true;
            n++;
        }
        t->empty = end[-1] == '/';
        p = n;
        while (g_ascii_isalnum(*p) || *p == '-')
            p++;
        t->name = g_strndup(n, (gsize)(p - n));
        const char *a = g_strstr_len(p, end - p, "name=\"");
        if (a != NULL) {
            const char *q = strchr(a + 6, '"');
            if (q != NULL && q < end)
                t->file = g_strndup(a + 6, (gsize)(q - a - 6));
        }
        g_ptr_array_add(out, t);
        p = end + 1;
    }
    return out;
}

/* Reads the content of an entity up to the closing tag end_tag. */
static void entity(GPtrArray *tags, guint *i, const char *end_tag, GPtrArray *out)
{
    while (*i < tags->len) {
        struct tag *t = tags->pdata[(*i)++];
        if (t->close && strcmp(t->name, end_tag) == 0)
            return;
        if (t->close || t->empty) {
            if (strcmp(t->name, "text-body") == 0 || strcmp(t->name, "binary-body") == 0) {
                struct node *n = g_new0(struct node, 1);
                n->kind = CORPUS_LEAF;
                n->file = g_strdup(t->file);
                g_ptr_array_add(out, n);
            }
            continue;
        }
        if (strcmp(t->name, "multipart") == 0) {
            struct node *n = g_new0(struct node, 1);
            n->kind = CORPUS_MULTIPART;
            g_ptr_array_add(out, n);
            while (*i < tags->len) {
                struct tag *u = tags->pdata[(*i)++];
                if (u->close && strcmp(u->name, "multipart") == 0)
                    break;
                if (!u->close && strcmp(u->name, "body-part") == 0)
                    entity(tags, i, "body-part", out);
            }
        } else if (strcmp(t->name, "message") == 0) {
            struct node *n = g_new0(struct node, 1);
            n->kind = CORPUS_MESSAGE;
            g_ptr_array_add(out, n);
            entity(tags, i, "message", out);
        }
    }
}

static GPtrArray *expected_tree(const char *xml)
{
    GPtrArray *tags = scan_tags(xml), *out = g_ptr_array_new_with_free_func(node_free);
    guint i = 1;

    g_assert_cmpuint(tags->len, >, 0);
    g_assert_cmpstr(((struct tag *)tags->pdata[0])->name, ==, "message");
    entity(tags, &i, "message", out);
    g_ptr_array_unref(tags);
    return out;
}

static bool same_lf(const GByteArray *a, const char *b, size_t blen)
{
    size_t i = 0, j = 0;

    for (;;) {
        if (i + 1 < a->len && a->data[i] == '\r' && a->data[i + 1] == '\n')
            i++;
        if (j + 1 < blen && b[j] == '\r' && b[j + 1] == '\n')
            j++;
        if (i == a->len || j == blen)
            return i == a->len && j == blen;
        if (a->data[i++] != (guint8)b[j++])
            return false;
    }
}

static char kind_char(enum corpus_kind k)
{
    return k == CORPUS_LEAF ? 'l' : k == CORPUS_MULTIPART ? 'm' : 'e';
}

static char *structure(GPtrArray *exp, GPtrArray *mg)
{
    GString *s = g_string_new("structure: mime4j [");

    for (guint i = 0; i < exp->len; i++)
        g_string_append_c(s, kind_char(((struct node *)exp->pdata[i])->kind));
    g_string_append(s, "] mugaika [");
    for (guint i = 0; i < mg->len; i++) {
        struct corpus_part *p = mg->pdata[i];
        g_string_append_printf(s, "%s%c:%s", i ? " " : "", kind_char(p->kind), p->content_type);
    }
    g_string_append_c(s, ']');
    return g_string_free(s, FALSE);
}

struct run {
    const char *root;
    GHashTable *listed; /* file -> reason */
    GHashTable *seen;
    unsigned messages, agree, qp_eol, listed_diff, unlisted;
};

/* NULL when equal; sets *qp_eol when a quoted-printable leaf differed
 * in line ends only. */
static char *compare(struct run *r, const char *dir, GPtrArray *exp, GPtrArray *mg, bool *qp_eol)
{
    if (exp->len != mg->len)
        return structure(exp, mg);
    for (guint i = 0; i < exp->len; i++) {
        struct node *e = exp->pdata[i];
        struct corpus_part *m = mg->pdata[i];
        char *rel, *data, *r1 = NULL;
        size_t len;
        if (e->kind != m->kind)
            return structure(exp, mg);
        if (e->kind != CORPUS_LEAF)
            continue;
        rel = g_build_filename(dir, e->file, NULL);
        data = corpus_read(r->root, rel, &len);
        if (len == m->bytes->len && (len == 0 || memcmp(data, m->bytes->data, len) == 0)) {
            /* equal */
        } else if (g_strcmp0(m->cte, "quoted-printable") == 0 && same_lf(m->bytes, data, len)) {
            *qp_eol = true;
        } else {
            r1 =
                g_strdup_printf("leaf %s %s cte=%s: %zu vs %u bytes (%s)", m->path, m->content_type,
                                m->cte ? m->cte : "-", len, m->bytes->len, e->file);
        }
        g_free(data);
        g_free(rel);
        if (r1 != NULL)
            return r1;
    }
    return NULL;
}

static void check_one(struct run *r, const char *rel)
{
    const char *name = rel + strlen("mime4j/");
    char *base = g_strndup(rel, strlen(rel) - 4);
    char *xml_rel = g_strconcat(base, "_decoded.xml", NULL);
    char *xml_path = g_build_filename(r->root, xml_rel, NULL);
    char *dir = g_path_get_dirname(rel), *xml, *data, *diff;
    GPtrArray *exp, *all, *mg;
    size_t len, xlen;
    bool qp_eol = false;

    if (!g_file_test(xml_path, G_FILE_TEST_EXISTS))
        goto out;
    xml = corpus_read(r->root, xml_rel, &xlen);
    data = corpus_read(r->root, rel, &len);
    exp = expected_tree(xml);
    all = corpus_mugaika_parts(data, len, CORPUS_BYTES, NULL);
    g_assert_nonnull(all);
    mg = g_ptr_array_new();
    for (guint i = 0; i < all->len; i++) {
        struct corpus_part *p = all->pdata[i];
        if (strcmp(p->origin, "mime") == 0)
            g_ptr_array_add(mg, p);
    }
    r->messages++;
    diff = compare(r, dir, exp, mg, &qp_eol);
    if (g_hash_table_contains(r->listed, name))
        g_hash_table_add(r->seen, g_strdup(name));
    if (diff == NULL) {
        r->agree++;
        r->qp_eol += qp_eol;
    } else if (g_hash_table_contains(r->listed, name)) {
        r->listed_diff++;
        corpus_print("MIME4J %s: differs (listed: %s): %s\n", name,
                     (const char *)g_hash_table_lookup(r->listed, name), diff);
    } else {
        r->unlisted++;
        corpus_print("MIME4J %s: differs (UNLISTED): %s\n", name, diff);
    }
    g_free(diff);
    g_ptr_array_unref(mg);
    g_ptr_array_unref(all);
    g_ptr_array_unref(exp);
    g_free(data);
    g_free(xml);
out:
    g_free(dir);
    g_free(xml_path);
    g_free(xml_rel);
    g_free(base);
}

static void test_mime4j(gconstpointer arg)
{
    struct run r = {
        .root = arg,
        .listed = corpus_read_list("mime4j-divergences.txt"),
        .seen = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL),
    };
    GPtrArray *files = corpus_list(r.root, "mime4j");
    const char *only = g_getenv("MUGAIKA_CORPUS_ONLY");
    unsigned stale;

    for (guint i = 0; i < files->len; i++) {
        const char *rel = files->pdata[i];
        if (g_str_has_suffix(rel, ".msg") && (only == NULL || strstr(rel, only) != NULL))
            check_one(&r, rel);
    }
    corpus_print("mime4j: %u/%u messages agree (%u of them once quoted-printable line ends are "
                 "normalised); %u differ as listed in mime4j-divergences.txt, %u UNLISTED "
                 "(threshold %d)\n",
                 r.agree, r.messages, r.qp_eol, r.listed_diff, r.unlisted, MIN_AGREE);
    stale =
        corpus_check_list("mime4j-divergences.txt", r.listed, r.seen, r.listed_diff, only != NULL);
    if (only == NULL && stale > 0)
        corpus_print("mime4j: %u listed divergences now agree: update the list\n", stale);
    g_test_message("mime4j: %u/%u agree", r.agree, r.messages);
    if (only == NULL) {
        g_assert_cmpuint(r.messages, ==, 64);
        g_assert_cmpuint(r.agree, >=, MIN_AGREE);
        g_assert_cmpuint(r.unlisted, ==, 0); /* every difference has a listed reason */
    }
    g_hash_table_destroy(r.listed);
    g_hash_table_destroy(r.seen);
    g_ptr_array_unref(files);
}

int main(int argc, char **argv)
{
    return corpus_test_main(argc, argv, "/corpus/mime4j", test_mime4j);
}
