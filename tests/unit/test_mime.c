/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * NAME
 *	test_mime 1
 * SUMMARY
 *	unit tests of the push parser's API contract and leniencies
 * DESCRIPTION
 *	A recording harness collects, per entity, its path, kind, type,
 *	filename, decoded body and defects; each test asserts exactly
 *	what the parser must report for one named situation.
 */
#include <string.h>

#include <glib.h>

#include <mugaika/mime.h>

struct rec_part {
    char *path;
    enum mg_mime_kind kind;
    enum mg_mime_origin origin;
    char *type;
    char *filename;
    char *cte;
    GString *body;
    GString *defects; /* "code@offset " */
    bool ended;
};

struct rec {
    GPtrArray *parts;
    GString *msg_defects;
    GString *order;    /* "b:PATH e:PATH " */
    int fail_on_begin; /* make the n-th part_begin fail */
    int begins;
};

static struct rec_part *find(struct rec *r, const char *path)
{
    for (guint i = r->parts->len; i > 0; i--) {
        struct rec_part *p = r->parts->pdata[i - 1];
        if (strcmp(p->path, path) == 0)
            return p;
    }
    g_error("no part %s", path);
    return NULL;
}

static int on_begin(struct mg_mime *p, const struct mg_mime_part *part)
{
    struct rec *r = mg_mime_user(p);
    struct rec_part *rp = g_new0(struct rec_part, 1);

    rp->path = g_strdup(part->path);
    rp->kind = part->kind;
    rp->origin = part->origin;
    rp->type = g_strdup(part->content_type);
    rp->filename = g_strdup(part->filename);
    rp->cte = g_strdup(part->cte_token);
    rp->body = g_string_new(NULL);
    rp->defects = g_string_new(NULL);
    g_ptr_array_add(r->parts, rp);
    g_string_append_printf(r->order, "b:%s ", part->path);
    if (++r->begins == r->fail_on_begin)
        return -1;
    return 0;
}

static int on_body(struct mg_mime *p, const struct mg_mime_part *part, const char *d, size_t n)
{
    struct rec *r = mg_mime_user(p);
    struct rec_part *rp = find(r, part->path);

    g_assert_false(rp->ended);
    g_assert_true(rp->kind == MG_MIME_LEAF);
    g_string_append_len(rp->body, d, (gssize)n);
    return 0;
}

static int on_end(struct mg_mime *p, const struct mg_mime_part *part)
{
    struct rec *r = mg_mime_user(p);

    find(r, part->path)->ended = true;
    g_string_append_printf(r->order, "e:%s ", part->path);
    return 0;
}

static int on_defect(struct mg_mime *p, const struct mg_mime_part *part, enum mg_mime_defect d,
                     uint64_t off)
{
    struct rec *r = mg_mime_user(p);
    GString *s = part ? find(r, part->path)->defects : r->msg_defects;

    g_string_append_printf(s, "%s@%llu ", mg_mime_defect_code(d), (unsigned long long)off);
    return 0;
}

static const struct mg_mime_settings settings = {
    .on_part_begin = on_begin,
    .on_body = on_body,
    .on_part_end = on_end,
    .on_defect = on_defect,
};

static void rec_part_free(gpointer data)
{
    struct rec_part *p = data;

    g_free(p->path);
    g_free(p->type);
    g_free(p->filename);
    g_free(p->cte);
    g_string_free(p->body, TRUE);
    g_string_free(p->defects, TRUE);
    g_free(p);
}

static struct rec *rec_new(void)
{
    struct rec *r = g_new0(struct rec, 1);

    r->parts = g_ptr_array_new_with_free_func(rec_part_free);
    r->msg_defects = g_string_new(NULL);
    r->order = g_string_new(NULL);
    return r;
}

static void rec_free(struct rec *r)
{
    g_ptr_array_unref(r->parts);
    g_string_free(r->msg_defects, TRUE);
    g_string_free(r->order, TRUE);
    g_free(r);
}

/* Parse msg in chunks of `chunk` bytes, each copied into a scratch
 * buffer that is wiped after mg_mime_execute returns, so any pointer
 * kept into it would show up as corrupted output. */
static struct rec *parse(const char *msg, size_t len, const struct mg_mime_limits *lim,
                         size_t chunk)
{
    struct rec *r = rec_new();
    struct mg_mime *p = mg_mime_new(&settings, lim, r);
    char *scratch = g_malloc(chunk ? chunk : len + 1);

    for (size_t at = 0; at < len;) {
        size_t n = chunk ? MIN(chunk, len - at) : len;
        memcpy(scratch, msg + at, n);
        g_assert_cmpint(mg_mime_execute(p, scratch, n), ==, MG_OK);
        memset(scratch, 'X', n);
        at += n;
    }
    g_assert_cmpint(mg_mime_finish(p), ==, MG_OK);
    g_free(scratch);
    mg_mime_free(p);
    return r;
}

static struct rec *parse_s(const char *msg)
{
    return parse(msg, strlen(msg), NULL, 3);
}

static void assert_leaf(struct rec *r, const char *path, const char *type, const char *body)
{
    struct rec_part *p = find(r, path);

    g_assert_cmpstr(p->type, ==, type);
    g_assert_true(p->kind == MG_MIME_LEAF);
    g_assert_true(p->ended);
    if (body)
        g_assert_cmpstr(p->body->str, ==, body);
}

static bool has_defect(struct rec *r, const char *path, const char *code)
{
    GString *s = path ? find(r, path)->defects : r->msg_defects;
    char *needle = g_strconcat(code, "@", NULL);
    bool yes = strstr(s->str, needle) != NULL;

    g_free(needle);
    return yes;
}

static void test_paths_imap(void)
{
    struct rec *r = parse_s("Content-Type: multipart/mixed; boundary=o\n\n"
                            "--o\nContent-Type: text/plain\n\none\n"
                            "--o\nContent-Type: multipart/alternative; boundary=i\n\n"
                            "--i\n\ntwo-one\n--i\n\ntwo-two\n--i--\n"
                            "--o\nContent-Type: message/rfc822\n\n"
                            "Content-Type: multipart/mixed; boundary=m\n\n"
                            "--m\n\nthree-one\n--m--\n"
                            "--o--\n");

    g_assert_cmpstr(r->order->str, ==,
                    "b:0 b:1 e:1 b:2 b:2.1 e:2.1 b:2.2 e:2.2 e:2 b:3 b:3.0 b:3.1 e:3.1 e:3.0 e:3 "
                    "e:0 ");
    assert_leaf(r, "1", "text/plain", "one");
    assert_leaf(r, "2.2", "text/plain", "two-two");
    assert_leaf(r, "3.1", "text/plain", "three-one");
    g_assert_true(find(r, "3")->kind == MG_MIME_MESSAGE);
    rec_free(r);
}

static void test_single_part_path(void)
{
    struct rec *r = parse_s("Subject: x\n\nbody\n");

    g_assert_cmpstr(r->order->str, ==, "b:1 e:1 ");
    /* at the end of input the last line end is content */
    assert_leaf(r, "1", "text/plain", "body\n");
    rec_free(r);
}

static void test_line_endings(void)
{
    const char *lf = "Content-Type: multipart/mixed; boundary=b\n\n--b\n\na\nb\n--b--\n";
    const char *crlf = "Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n\r\na\r\nb\r\n"
                       "--b--\r\n";
    const char *cr = "Content-Type: multipart/mixed; boundary=b\r\r--b\r\ra\rb\r--b--\r";
    struct rec *r;

    r = parse_s(lf);
    assert_leaf(r, "1", "text/plain", "a\nb");
    rec_free(r);
    r = parse_s(crlf);
    assert_leaf(r, "1", "text/plain", "a\r\nb");
    rec_free(r);
    r = parse_s(cr);
    assert_leaf(r, "1", "text/plain", "a\rb");
    rec_free(r);
}

static void test_boundary_prefix_of_another(void)
{
    struct rec *r = parse_s("Content-Type: multipart/mixed; boundary=abc\n\n"
                            "--abc\nContent-Type: multipart/mixed; boundary=abcdef\n\n"
                            "--abcdef\n\nin\n--abcdef--\n--abc\n\nout\n--abc--\n");

    assert_leaf(r, "1.1", "text/plain", "in");
    assert_leaf(r, "2", "text/plain", "out");
    g_assert_cmpstr(find(r, "1")->defects->str, ==, "");
    rec_free(r);
}

static void test_boundary_trailing_whitespace(void)
{
    struct rec *r = parse_s("Content-Type: multipart/mixed; boundary=b\n\n--b \t\n\nx\n--b-- \n");

    assert_leaf(r, "1", "text/plain", "x");
    g_assert_true(has_defect(r, "0", "boundary-whitespace"));
    g_assert_false(has_defect(r, "0", "missing-final-boundary"));
    rec_free(r);
}

static void test_boundary_text_after_is_content(void)
{
    struct rec *r =
        parse_s("Content-Type: multipart/mixed; boundary=b\n\n--b\n\n--b x\n--bb\n--b--\n");

    assert_leaf(r, "1", "text/plain", "--b x\n--bb");
    g_assert_true(has_defect(r, "0", "boundary-lookalike"));
    rec_free(r);
}

static void test_missing_final_boundary(void)
{
    struct rec *r = parse_s("Content-Type: multipart/mixed; boundary=b\n\n--b\n\nlast\n");

    assert_leaf(r, "1", "text/plain", "last\n");
    g_assert_true(has_defect(r, "0", "missing-final-boundary"));
    g_assert_true(has_defect(r, NULL, "truncated"));
    rec_free(r);
}

static void test_preamble_epilogue_dropped(void)
{
    struct rec *r = parse_s("Content-Type: multipart/mixed; boundary=b\n\npreamble\n--b\n\nx\n"
                            "--b--\nepilogue --b\n--b\n");

    g_assert_cmpuint(r->parts->len, ==, 2);
    assert_leaf(r, "1", "text/plain", "x");
    rec_free(r);
}

static void test_parent_boundary_closes_child(void)
{
    struct rec *r = parse_s("Content-Type: multipart/mixed; boundary=p\n\n"
                            "--p\nContent-Type: multipart/mixed; boundary=c\n\n--c\n\ninner\n"
                            "--p\n\nouter\n--p--\n");

    assert_leaf(r, "1.1", "text/plain", "inner");
    assert_leaf(r, "2", "text/plain", "outer");
    g_assert_true(has_defect(r, "1", "missing-final-boundary"));
    rec_free(r);
}

static void test_folded_and_bad_headers(void)
{
    struct rec *r = parse_s("Content-Type: multipart/mixed;\n\tboundary=\"f\"\nNo colon here\n"
                            "\n--f\nContent-Type:\n text/html\n\n<p>\n--f--\n");

    assert_leaf(r, "1", "text/html", "<p>");
    g_assert_true(has_defect(r, "0", "header-no-colon"));
    rec_free(r);
}

static void test_duplicate_fields_first_wins(void)
{
    struct rec *r = parse_s("Content-Type: text/plain\nContent-Type: application/x-evil\n"
                            "Content-Transfer-Encoding: base64\n"
                            "Content-Transfer-Encoding: 7bit\n\naGk=\n");

    assert_leaf(r, "1", "text/plain", "hi");
    g_assert_true(has_defect(r, "1", "duplicate-content-type"));
    g_assert_true(has_defect(r, "1", "duplicate-cte"));
    rec_free(r);
}

static void test_cte_tokens(void)
{
    struct rec *r = parse_s("Content-Type: multipart/mixed; boundary=t\n\n"
                            "--t\nContent-Transfer-Encoding:  BaSe64 \n\naGk=\n"
                            "--t\nContent-Transfer-Encoding: Quoted-Printable\n\n=41\n"
                            "--t\nContent-Transfer-Encoding: x-gzip64\n\nraw=41\n--t--\n");

    assert_leaf(r, "1", "text/plain", "hi");
    assert_leaf(r, "2", "text/plain", "A");
    assert_leaf(r, "3", "text/plain", "raw=41");
    g_assert_cmpstr(find(r, "1")->cte, ==, "base64");
    g_assert_true(has_defect(r, "3", "unknown-cte"));
    rec_free(r);
}

static void test_raw_8bit_and_nul(void)
{
    static const char msg[] = "Content-Type: application/octet-stream\n"
                              "Content-Transfer-Encoding: 7bit\n\na\0b\xff\n";
    struct rec *r = parse(msg, sizeof(msg) - 1, NULL, 1);
    struct rec_part *p = find(r, "1");

    g_assert_cmpuint(p->body->len, ==, 5);
    g_assert_true(memcmp(p->body->str, "a\0b\xff\n", 5) == 0);
    g_assert_true(has_defect(r, "1", "body-nul"));
    g_assert_true(has_defect(r, "1", "body-8bit"));
    rec_free(r);
}

static void test_uuencode_in_text(void)
{
    struct rec *r =
        parse_s("Content-Type: text/plain\n\nhi\nbegin 644 a.bin\n#:&D*\n`\nend\nbye\n");
    struct rec_part *u = find(r, "1.u1");

    g_assert_true(u->origin == MG_MIME_ORIGIN_UU);
    g_assert_cmpstr(u->filename, ==, "a.bin");
    g_assert_cmpstr(u->body->str, ==, "hi\n");
    g_assert_true(u->ended);
    /* the text part still holds every byte */
    assert_leaf(r, "1", "text/plain", "hi\nbegin 644 a.bin\n#:&D*\n`\nend\nbye\n");
    rec_free(r);
}

static void test_uuencode_truncated(void)
{
    struct rec *r = parse_s("Content-Type: text/plain\n\nbegin 644 a.bin\n#:&D*\n");

    g_assert_cmpstr(find(r, "1.u1")->body->str, ==, "hi\n");
    g_assert_true(has_defect(r, "1.u1", "uu-truncated"));
    rec_free(r);
}

static void test_digest_default_type(void)
{
    struct rec *r = parse_s("Content-Type: multipart/digest; boundary=d\n\n--d\n\n"
                            "Subject: in digest\n\nbody\n--d--\n");

    g_assert_true(find(r, "1")->kind == MG_MIME_MESSAGE);
    assert_leaf(r, "1.1", "text/plain", "body");
    rec_free(r);
}

static void test_encoded_message_is_opaque(void)
{
    struct rec *r = parse_s("Content-Type: message/rfc822\nContent-Transfer-Encoding: base64\n\n"
                            "U3ViamVjdDogeAoKeQo=\n");

    assert_leaf(r, "1", "message/rfc822", "Subject: x\n\ny\n");
    g_assert_true(has_defect(r, "1", "cte-on-composite"));
    rec_free(r);
}

static void test_depth_limit(void)
{
    struct mg_mime_limits lim;
    GString *m = g_string_new(NULL);
    struct rec *r;

    mg_mime_limits_default(&lim);
    lim.depth = 4;
    for (int i = 0; i < 10; i++)
        g_string_append_printf(m, "Content-Type: multipart/mixed; boundary=b%d\n\n--b%d\n", i, i);
    g_string_append(m, "\ndeep\n");
    r = parse(m->str, m->len, &lim, 7);
    for (guint i = 0; i < r->parts->len; i++)
        g_assert_cmpuint((guint)strlen(((struct rec_part *)r->parts->pdata[i])->path), <, 16);
    /* the entity at the limit is an opaque leaf holding the rest */
    struct rec_part *last = r->parts->pdata[r->parts->len - 1];
    g_assert_true(last->kind == MG_MIME_LEAF);
    g_assert_nonnull(strstr(last->body->str, "deep"));
    g_assert_nonnull(strstr(last->defects->str, "depth-limit"));
    g_string_free(m, TRUE);
    rec_free(r);
}

static void test_part_limit(void)
{
    struct mg_mime_limits lim;
    GString *m = g_string_new("Content-Type: multipart/mixed; boundary=p\n\n");
    struct rec *r;

    mg_mime_limits_default(&lim);
    lim.parts = 5;
    for (int i = 0; i < 20; i++)
        g_string_append_printf(m, "--p\n\npart %d\n", i);
    g_string_append(m, "--p--\n");
    r = parse(m->str, m->len, &lim, 5);
    g_assert_cmpuint(r->parts->len, ==, 6);
    g_assert_true(has_defect(r, NULL, "part-limit"));
    /* nothing is lost: the rest is one opaque part */
    struct rec_part *rest = r->parts->pdata[5];
    g_assert_nonnull(strstr(rest->body->str, "part 19"));
    g_string_free(m, TRUE);
    rec_free(r);
}

static void test_header_block_limit(void)
{
    struct mg_mime_limits lim;
    GString *m = g_string_new("Subject: x\nX-Long: ");
    struct rec *r;

    mg_mime_limits_default(&lim);
    lim.header_bytes = 2048;
    for (int i = 0; i < 5000; i++)
        g_string_append_c(m, 'a' + i % 26);
    g_string_append(m, "\n\nbody\n");
    r = parse(m->str, m->len, &lim, 100);
    struct rec_part *p = find(r, "1");
    g_assert_true(has_defect(r, "1", "header-block-too-long"));
    g_assert_cmpstr(p->type, ==, "application/octet-stream");
    /* every byte after the last complete header line reaches the body */
    g_assert_cmpuint(p->body->len, ==, m->len - strlen("Subject: x\n"));
    g_string_free(m, TRUE);
    rec_free(r);
}

/* A delimiter line cut by the header limit still ends the part, so
 * the next part cannot hide inside an opaque leaf. */
static void test_header_limit_keeps_delimiter(void)
{
    struct mg_mime_limits lim;
    GString *m = g_string_new("Content-Type: multipart/mixed; boundary=b\n\n--b\n"
                              "Content-Type: text/plain\nX-Pad: ");
    struct rec *r;

    mg_mime_limits_default(&lim);
    lim.header_bytes = 1024;
    while (m->len < 47 + 1024 - 2)
        g_string_append_c(m, 'a');
    g_string_append(m, "\n--b\nContent-Type: text/html\n\n<script>evil()</script>\n--b--\n");
    for (size_t chunk = 1; chunk <= 64; chunk *= 4) {
        r = parse(m->str, m->len, &lim, chunk);
        g_assert_true(has_defect(r, "1", "header-block-too-long"));
        assert_leaf(r, "2", "text/html", "<script>evil()</script>");
        rec_free(r);
    }
    g_string_free(m, TRUE);
}

/* A second "begin" line ends the first block and opens its own. */
static void test_uuencode_begin_inside_block(void)
{
    struct rec *r = parse_s("Content-Type: text/plain\n\nbegin 644 readme.txt\n"
                            "begin 644 evil.exe\n#:&D*\n`\nend\n");

    g_assert_true(has_defect(r, "1.u1", "uu-truncated"));
    g_assert_cmpstr(find(r, "1.u2")->filename, ==, "evil.exe");
    g_assert_cmpstr(find(r, "1.u2")->body->str, ==, "hi\n");
    rec_free(r);
}

/* A "begin" line longer than the line buffer still opens a block. */
static void test_uuencode_long_begin_line(void)
{
    GString *m = g_string_new("Content-Type: text/plain\n\nbegin 644 ");

    for (int i = 0; i < 300; i++)
        g_string_append_c(m, 'n');
    g_string_append(m, ".exe\n#:&D*\n`\nend\n");
    struct rec *r = parse(m->str, m->len, NULL, 5);
    g_assert_cmpstr(find(r, "1.u1")->body->str, ==, "hi\n");
    g_assert_true(has_defect(r, "1.u1", "uu-bad-line"));
    g_string_free(m, TRUE);
    rec_free(r);
}

/* "\r\n\r" at the very end: the bare CR completes the empty line. */
static void test_final_bare_cr_ends_headers(void)
{
    struct rec *r = parse_s("Subject: x\r\n\r");

    g_assert_false(has_defect(r, "1", "header-truncated"));
    assert_leaf(r, "1", "text/plain", "");
    rec_free(r);
}

static void test_callback_error_sticky(void)
{
    struct rec *r = rec_new();
    struct mg_mime *p = mg_mime_new(&settings, NULL, r);
    const char *m = "Content-Type: multipart/mixed; boundary=b\n\n--b\n\nx\n--b--\n";

    r->fail_on_begin = 2;
    g_assert_cmpint(mg_mime_execute(p, m, strlen(m)), ==, MG_ERR_CALLBACK);
    g_assert_cmpint(mg_mime_execute(p, "more", 4), ==, MG_ERR_CALLBACK);
    g_assert_cmpint(mg_mime_finish(p), ==, MG_ERR_CALLBACK);
    g_assert_cmpuint(r->parts->len, ==, 2);
    mg_mime_free(p);
    rec_free(r);
}

static void test_execute_after_finish(void)
{
    struct rec *r = rec_new();
    struct mg_mime *p = mg_mime_new(&settings, NULL, r);

    g_assert_cmpint(mg_mime_execute(p, "\n", 1), ==, MG_OK);
    g_assert_cmpint(mg_mime_finish(p), ==, MG_OK);
    g_assert_cmpint(mg_mime_execute(p, "x", 1), ==, MG_ERR_STATE);
    mg_mime_free(p);
    rec_free(r);
}

static void test_mbox_from_line(void)
{
    struct rec *r = parse_s("From someone Mon Jan 1 00:00:00 2024\nSubject: s\n\nb\n");

    g_assert_true(has_defect(r, NULL, "mbox-from"));
    assert_leaf(r, "1", "text/plain", "b\n");
    rec_free(r);
}

static void test_defect_names(void)
{
    for (int d = 0; d < MG_MIME_DEFECT_COUNT; d++) {
        g_assert_nonnull(mg_mime_defect_code((enum mg_mime_defect)d));
        g_assert_cmpstr(mg_mime_defect_code((enum mg_mime_defect)d), !=, "unknown");
    }
    g_assert_cmpstr(mg_mime_defect_code(MG_MIME_DEFECT_COUNT), ==, "unknown");
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/mime/paths-imap", test_paths_imap);
    g_test_add_func("/mime/single-part-path", test_single_part_path);
    g_test_add_func("/mime/line-endings-lf-crlf-cr", test_line_endings);
    g_test_add_func("/mime/boundary-prefix-of-another", test_boundary_prefix_of_another);
    g_test_add_func("/mime/boundary-trailing-whitespace", test_boundary_trailing_whitespace);
    g_test_add_func("/mime/boundary-text-after-is-content", test_boundary_text_after_is_content);
    g_test_add_func("/mime/missing-final-boundary", test_missing_final_boundary);
    g_test_add_func("/mime/preamble-epilogue-dropped", test_preamble_epilogue_dropped);
    g_test_add_func("/mime/parent-boundary-closes-child", test_parent_boundary_closes_child);
    g_test_add_func("/mime/folded-and-bad-headers", test_folded_and_bad_headers);
    g_test_add_func("/mime/duplicate-fields-first-wins", test_duplicate_fields_first_wins);
    g_test_add_func("/mime/cte-tokens", test_cte_tokens);
    g_test_add_func("/mime/raw-8bit-and-nul", test_raw_8bit_and_nul);
    g_test_add_func("/mime/uuencode-in-text", test_uuencode_in_text);
    g_test_add_func("/mime/uuencode-truncated", test_uuencode_truncated);
    g_test_add_func("/mime/digest-default-type", test_digest_default_type);
    g_test_add_func("/mime/encoded-message-is-opaque", test_encoded_message_is_opaque);
    g_test_add_func("/mime/depth-limit", test_depth_limit);
    g_test_add_func("/mime/part-limit", test_part_limit);
    g_test_add_func("/mime/header-block-limit", test_header_block_limit);
    g_test_add_func("/mime/header-limit-keeps-delimiter", test_header_limit_keeps_delimiter);
    g_test_add_func("/mime/uuencode-begin-inside-block", test_uuencode_begin_inside_block);
    g_test_add_func("/mime/uuencode-long-begin-line", test_uuencode_long_begin_line);
    g_test_add_func("/mime/final-bare-cr-ends-headers", test_final_bare_cr_ends_headers);
    g_test_add_func("/mime/callback-error-sticky", test_callback_error_sticky);
    g_test_add_func("/mime/execute-after-finish", test_execute_after_finish);
    g_test_add_func("/mime/mbox-from-line", test_mbox_from_line);
    g_test_add_func("/mime/defect-names", test_defect_names);
    return g_test_run();
}
