/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * NAME
 *	test_sanitize 1
 * SUMMARY
 *	unit tests of the sanitising pipeline
 * DESCRIPTION
 *	File names, findings, and the pipeline on messages written here:
 *	what reaches the output, what the notice says, forced outcomes.
 *	The AV database is made by tests/av/make-testdb ($MUGAIKA_MAKE_TESTDB)
 *	into a temporary directory.
 */
#include <string.h>
#include <unistd.h>

#include <glib.h>
#include <glib/gstdio.h>

#include <gmime/gmime.h>

#include <mugaika/sanitize.h>

#include "sanitize/sanitize_int.h"

static void test_names(void)
{
    static const struct {
        const char *in, *type, *out;
    } cases[] = {
        {"report.txt", "text/plain", "report.txt"},
        {"data.csv", "text/csv", "data.csv"},
        {"invoice.exe", "text/plain", "invoice.exe.txt"},
        {"../../etc/passwd", "text/plain", "passwd.txt"},
        {"C:\\Users\\x\\a.txt", "text/plain", "a.txt"},
        {"evil\xe2\x80\xaetxt.exe", "text/plain", "eviltxt.exe.txt"},
        {"CON.txt", "text/plain", "_CON.txt"},
        {"com1", "text/plain", "_com1.txt"},
        {"name. . .", "text/plain", "name.txt"},
        {"a<b>c:d\"e|f?g*h.txt", "text/plain", "a_b_c_d_e_f_g_h.txt"},
        {"tab\there.txt", "text/plain", "tabhere.txt"},
        {"", "text/plain", "attachment-3.txt"},
        {NULL, "application/pdf", "attachment-3.pdf"},
        {"請求書.txt", "text/plain", "請求書.txt"},
        {"page.html", "text/plain", "page.html.txt"},
        {"CONIN$.txt", "text/plain", "_CONIN$.txt"},
        {"con .txt", "text/plain", "_con .txt"},
        {"COM\xc2\xb9.txt", "text/plain", "_COM\xc2\xb9.txt"},
        {"lpt9", "text/plain", "_lpt9.txt"},
    };
    for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
        char *got = sz_safe_filename(cases[i].in, cases[i].type, 3);
        g_assert_cmpstr(got, ==, cases[i].out);
        g_free(got);
    }
    /* length cap, extension kept */
    GString *longname = g_string_new(NULL);
    for (int i = 0; i < 300; i++)
        g_string_append(longname, "あ");
    g_string_append(longname, ".txt");
    char *got = sz_safe_filename(longname->str, "text/plain", 1);
    g_assert_cmpint(g_utf8_strlen(got, -1), ==, 104);
    g_assert_true(g_str_has_suffix(got, ".txt"));
    g_free(got);
    g_string_free(longname, TRUE);
}

static void test_flags(void)
{
    static const unsigned char zip_enc[40] = {'P', 'K', 3, 4, 20, 0, 1, 0};
    static const unsigned char zip_plain[40] = {'P', 'K', 3, 4, 20, 0, 0, 0};
    const char *pdf = "%PDF-1.4\n1 0 obj\n<</Encrypt 2 0 R>>\n";

    g_assert_cmpuint(sz_sniff_flags(zip_enc, sizeof zip_enc, "application/zip"), ==,
                     MG_ITEM_ENCRYPTED);
    g_assert_cmpuint(sz_sniff_flags(zip_plain, sizeof zip_plain, "application/zip"), ==, 0);
    g_assert_cmpuint(sz_sniff_flags((const unsigned char *)pdf, strlen(pdf), "application/pdf"), ==,
                     MG_ITEM_ENCRYPTED);
    g_assert_true(sz_type_mismatch("text/plain", "application/zip"));
    g_assert_false(sz_type_mismatch("text/plain", "text/x-c"));
    g_assert_false(sz_type_mismatch("application/octet-stream", "application/zip"));
    g_assert_false(sz_type_mismatch("image/jpg", "image/jpeg"));
    g_assert_true(sz_extension_mismatch("photo.jpg", "application/x-dosexec"));
    g_assert_false(sz_extension_mismatch("notes.txt", "text/plain"));
    g_assert_false(sz_extension_mismatch("unknown.xyz", "application/zip"));
}

/* --- the pipeline ------------------------------------------------------- */

static struct mg_detect *det;
static struct mg_av *av;
static char *tmp_dir;

/* A policy directory holding one file with text (NULL: built-in). */
static struct mg_rules *rules_from(const char *text)
{
    GError *e = NULL;
    struct mg_rules *r;

    if (text == NULL) {
        r = mg_rules_load(NULL, &e);
    } else {
        char *dir = g_build_filename(tmp_dir, "rules-XXXXXX", NULL);
        g_assert_nonnull(g_mkdtemp(dir));
        char *f = g_build_filename(dir, "10-test.rules", NULL);
        g_assert_true(g_file_set_contents(f, text, -1, NULL));
        r = mg_rules_load(dir, &e);
        g_free(f);
        g_free(dir);
    }
    g_assert_no_error(e);
    return r;
}

struct run {
    enum mg_verdict v;
    char *out; /* the rebuilt message, or NULL */
    char *result;
    JsonNode *parts;
};

static void run_clear(struct run *r)
{
    g_free(r->out);
    g_free(r->result);
    if (r->parts != NULL)
        json_node_unref(r->parts);
}

/* Sanitises msg fed in chunks of chunk bytes (0: whole). */
static struct run sanitize_with(struct mg_rules *rules, const char *msg, size_t len, size_t chunk,
                                size_t spool_memory, const char *spool_dir)
{
    struct mg_sanitize_opts o;
    struct mg_sanitize *s;
    struct run r = {0};
    GError *e = NULL;

    mg_sanitize_opts_default(&o);
    o.rules = rules;
    o.av = av;
    o.detect = det;
    if (spool_memory != 0)
        o.spool_memory = spool_memory;
    o.spool_dir = spool_dir;
    s = mg_sanitize_new(&o);
    if (chunk == 0)
        chunk = len > 0 ? len : 1;
    for (size_t off = 0; off < len; off += chunk)
        mg_sanitize_feed(s, msg + off, MIN(chunk, len - off));
    r.v = mg_sanitize_finish(s, &e);
    g_clear_error(&e);
    if (r.v == MG_VERDICT_ACCEPT) {
        char *path = g_build_filename(tmp_dir, "out-XXXXXX", NULL);
        int fd = g_mkstemp(path);
        gsize n;
        g_assert_cmpint(fd, >=, 0);
        g_assert_true(mg_sanitize_write(s, fd, NULL));
        close(fd);
        g_assert_true(g_file_get_contents(path, &r.out, &n, NULL));
        unlink(path);
        g_free(path);
    } else {
        g_assert_false(mg_sanitize_write(s, 1, NULL)); /* nothing can leak out */
    }
    r.result = g_strdup(mg_sanitize_result(s));
    r.parts = mg_sanitize_parts_json(s);
    mg_sanitize_free(s);
    return r;
}

static struct run sanitize_str(struct mg_rules *rules, const char *msg)
{
    return sanitize_with(rules, msg, strlen(msg), 0, 0, NULL);
}

/* The decoded text of the first text/plain part without a file name. */
static char *body_of(const char *out)
{
    GMimeStream *st = g_mime_stream_mem_new_with_buffer(out, strlen(out));
    GMimeParser *p = g_mime_parser_new_with_stream(st);
    GMimeMessage *m = g_mime_parser_construct_message(p, NULL);
    GMimePartIter *it;
    char *text = NULL;

    g_assert_nonnull(m);
    it = g_mime_part_iter_new(GMIME_OBJECT(m));
    do {
        GMimeObject *o = g_mime_part_iter_get_current(it);
        if (o != NULL && GMIME_IS_TEXT_PART(o) && g_mime_part_get_filename(GMIME_PART(o)) == NULL) {
            text = g_mime_text_part_get_text(GMIME_TEXT_PART(o));
            break;
        }
    } while (g_mime_part_iter_next(it));
    g_mime_part_iter_free(it);
    g_object_unref(m);
    g_object_unref(p);
    g_object_unref(st);
    g_assert_nonnull(text);
    return text;
}

/* "rule:action:forced" of the part at path. */
static char *decision(const struct run *r, const char *path)
{
    JsonArray *a = json_node_get_array(r->parts);

    for (guint i = 0; i < json_array_get_length(a); i++) {
        JsonObject *p = json_array_get_object_element(a, i);
        if (strcmp(json_object_get_string_member(p, "path"), path) == 0)
            return g_strdup_printf("%s:%s:%s", json_object_get_string_member(p, "rule"),
                                   json_object_get_string_member(p, "action"),
                                   json_object_get_null_member(p, "forced")
                                       ? "-"
                                       : json_object_get_string_member(p, "forced"));
    }
    return g_strdup("absent");
}

#define ALT(plain, html)                                                                           \
    "From: a@example.com\nSubject: alt\nMIME-Version: 1.0\n"                                       \
    "Content-Type: multipart/alternative; boundary=\"a\"\n\n--a\nContent-Type: "                   \
    "text/plain\n\n" plain "\n--a\nContent-Type: text/html\n\n" html "\n--a--\n"

static void test_alternative(void)
{
    struct mg_rules *builtin = rules_from(NULL);
    struct mg_rules *prefer = rules_from("[rule html]\npart = body\ndeclared-type = text/html\n"
                                         "action = text\nprefer-html = true\n\n"
                                         "[rule plain]\npart = body\naction = keep\n");
    struct run r;
    char *body;

    r = sanitize_str(builtin, ALT("plain words", "<p>html <b>words</b></p>"));
    g_assert_cmpint(r.v, ==, MG_VERDICT_ACCEPT);
    body = body_of(r.out);
    g_assert_nonnull(strstr(body, "plain words"));
    g_assert_null(strstr(body, "html words"));
    g_assert_null(strstr(body, "無害化")); /* nothing converted or removed: no notice */
    g_free(body);
    run_clear(&r);

    /* an empty plain alternative: the HTML is converted */
    r = sanitize_str(builtin, ALT("", "<p>html <b>words</b></p>"));
    body = body_of(r.out);
    g_assert_nonnull(strstr(body, "html words"));
    g_assert_nonnull(strstr(body, "テキスト形式に変換"));
    g_free(body);
    run_clear(&r);

    r = sanitize_str(prefer, ALT("plain words", "<p>html <b>words</b></p>"));
    body = body_of(r.out);
    g_assert_nonnull(strstr(body, "html words"));
    g_assert_null(strstr(body, "plain words"));
    g_free(body);
    run_clear(&r);
    mg_rules_unref(builtin);
    mg_rules_unref(prefer);
}

static void test_opaque_dropped(void)
{
    /* a multipart the parser cannot split: kept opaque, never passed on,
     * even under a policy that keeps everything */
    struct mg_rules *keep_all = rules_from("[rule all]\naction = keep\n");
    const char *msg = "From: a@example.com\nSubject: x\nMIME-Version: 1.0\n"
                      "Content-Type: multipart/mixed\n\n--zz\nContent-Type: text/plain\n\nhidden "
                      "part\n--zz--\n";
    struct run r = sanitize_str(keep_all, msg);
    char *d = decision(&r, "1"), *body;

    g_assert_cmpint(r.v, ==, MG_VERDICT_ACCEPT);
    g_assert_cmpstr(d, ==, "all:drop:not-understood");
    body = body_of(r.out);
    g_assert_null(strstr(r.out, "hidden part"));
    g_assert_nonnull(strstr(body, "解析できない部分"));
    g_free(body);
    g_free(d);
    run_clear(&r);
    mg_rules_unref(keep_all);
}

/* Leaves that hold the unparsed rest of a message because a limit was
 * crossed are never passed on, whatever they look like. */
static void test_limits_opaque(void)
{
    struct mg_rules *rules = rules_from(NULL);
    GString *m =
        g_string_new("From: a@example.com\nSubject: x\nMIME-Version: 1.0\n"
                     "Content-Type: multipart/mixed; boundary=\"b\"\n\n--b\n\nbody\n--b\n");
    struct run r;
    char *d;

    for (int i = 0; i < 3000; i++)
        g_string_append_printf(m, "X-Filler-%d: %0100d\n", i, i);
    g_string_append(m, "Content-Type: application/x-msdownload; name=evil.exe\n\n"
                       "this text was never parsed\n--b--\n");
    r = sanitize_str(rules, m->str);
    d = decision(&r, "2");
    g_assert_cmpint(r.v, ==, MG_VERDICT_ACCEPT);
    g_assert_cmpstr(d, ==, "attachment-text:drop:not-understood");
    g_assert_null(strstr(r.out, "never parsed"));
    g_assert_null(strstr(r.out, "X-Filler"));
    g_free(d);
    run_clear(&r);
    g_string_free(m, TRUE);
    mg_rules_unref(rules);
}

/* A kept text never carries a uuencoded block, even one the parser did
 * not look for (the part was declared as something else) and even when
 * the begin line is longer than any uuencode line. */
static void test_uu_in_kept_text(void)
{
    struct mg_rules *rules = rules_from(NULL);
    GString *m = g_string_new("From: a@example.com\nSubject: x\nMIME-Version: 1.0\n"
                              "Content-Type: multipart/mixed; boundary=\"b\"\n\n--b\n\nbody\n--b\n"
                              "Content-Type: application/octet-stream; name=readme.txt\n\n"
                              "hello\nbegin 644 ");
    struct run r;

    for (int i = 0; i < 300; i++)
        g_string_append_c(m, 'x');
    g_string_append(m, ".exe\nM35J0``,````$````__\\``+@`````````0```````````````````````\n"
                       "`\nend\nbye\n--b--\n");
    r = sanitize_str(rules, m->str);
    g_assert_cmpint(r.v, ==, MG_VERDICT_ACCEPT);
    g_assert_nonnull(strstr(r.out, "readme.txt"));
    g_assert_null(strstr(r.out, "M35J0"));
    /* the attachment is base64: look at what it decodes to */
    GMimeStream *st = g_mime_stream_mem_new_with_buffer(r.out, strlen(r.out));
    GMimeParser *p = g_mime_parser_new_with_stream(st);
    GMimeMessage *msg = g_mime_parser_construct_message(p, NULL);
    GMimePartIter *it = g_mime_part_iter_new(GMIME_OBJECT(msg));
    bool seen = false;
    do {
        GMimeObject *o = g_mime_part_iter_get_current(it);
        if (o != NULL && GMIME_IS_PART(o) && g_mime_part_get_filename(GMIME_PART(o)) != NULL) {
            char *t = g_mime_text_part_get_text(GMIME_TEXT_PART(o));
            g_assert_cmpstr(t, ==, "hello\nbye\n");
            g_free(t);
            seen = true;
        }
    } while (g_mime_part_iter_next(it));
    g_assert_true(seen);
    g_mime_part_iter_free(it);
    g_object_unref(msg);
    g_object_unref(p);
    g_object_unref(st);
    run_clear(&r);
    g_string_free(m, TRUE);
    mg_rules_unref(rules);
}

static void test_hold_and_handlers(void)
{
    struct mg_rules *rules = rules_from("[rule hold-pdf]\ndetected-type = application/pdf\n"
                                        "action = hold\nnotice-ja = 承認後に配送します。\n\n"
                                        "[rule disarm-zip]\ndetected-type = application/zip\n"
                                        "action = disarm\n\n"
                                        "[rule rest]\npart = body\naction = keep\n");
    const char *pdf =
        "From: a@example.com\nSubject: x\nMIME-Version: 1.0\n"
        "Content-Type: multipart/mixed; boundary=\"b\"\n\n--b\n\nsecret body\n--b\n"
        "Content-Type: application/pdf; name=\"a.pdf\"\nContent-Transfer-Encoding: "
        "base64\n\nJVBERi0xLjQKJcfsj6IKMSAwIG9iago8PD4+CmVuZG9iagp0cmFpbGVyCjw8Pj4KJSVFT0YK\n"
        "--b--\n";
    const char *zip = "From: a@example.com\nSubject: x\nMIME-Version: 1.0\n"
                      "Content-Type: multipart/mixed; boundary=\"b\"\n\n--b\n\nbody\n--b\n"
                      "Content-Type: application/zip; name=\"a.zip\"\nContent-Transfer-Encoding: "
                      "base64\n\nUEsFBgAAAAAAAAAAAAAAAAAAAAAAAA==\n--b--\n";
    struct run r = sanitize_str(rules, pdf);
    char *body = body_of(r.out), *d;

    /* hold: the recipient gets the notice only */
    g_assert_cmpint(r.v, ==, MG_VERDICT_ACCEPT);
    g_assert_nonnull(strstr(body, "保留"));
    g_assert_nonnull(strstr(body, "承認後に配送します。"));
    g_assert_null(strstr(r.out, "secret body"));
    g_assert_null(strstr(r.out, "JVBER"));
    g_assert_nonnull(strstr(r.result, "held"));
    g_free(body);
    run_clear(&r);

    /* disarm has no handler yet: dropped, never kept */
    r = sanitize_str(rules, zip);
    d = decision(&r, "2");
    g_assert_cmpstr(d, ==, "disarm-zip:drop:no-handler");
    g_assert_null(strstr(r.out, "UEsFBg"));
    g_free(d);
    run_clear(&r);
    mg_rules_unref(rules);
}

static void test_infected_forced(void)
{
    struct mg_rules *keep_all = rules_from("[rule all]\naction = keep\n");
    GString *m = g_string_new("From: a@example.com\nSubject: x\nMIME-Version: 1.0\n"
                              "Content-Type: multipart/mixed; boundary=\"b\"\n\n--b\n\nbody\n--b\n"
                              "Content-Type: text/plain; name=\"e.txt\"\n\n");
    struct run r;
    char *d;

    g_string_append(m, "X5O!P%@AP[4\\PZX54(P^)7CC)7}$");
    g_string_append(m, "EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*\n--b--\n");
    r = sanitize_str(keep_all, m->str);
    d = decision(&r, "2");
    g_assert_cmpstr(d, ==, "all:drop:infected");
    g_assert_null(strstr(r.out, "EICAR-STANDARD"));
    g_assert_nonnull(strstr(r.result, "infected=1"));
    g_free(d);
    run_clear(&r);
    g_string_free(m, TRUE);
    mg_rules_unref(keep_all);
}

/* Spooled contents are scanned whole: EICAR at the end of one small
 * enough to be read into memory for its scan (src/av/av.c, AV_WHOLE_MAX)
 * and at the start of one too large for that (read through libclamav's
 * map) are both found; a clean one before them is kept. */
static void test_infected_spooled(void)
{
    struct mg_rules *keep_all = rules_from("[rule all]\naction = keep\n");
    GString *m = g_string_new("From: a@example.com\nSubject: x\nMIME-Version: 1.0\n"
                              "Content-Type: multipart/mixed; boundary=\"b\"\n\n--b\n\nbody\n");
    const char *eicar = "X5O!P%@AP[4\\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*";
    struct run r;
    char *d;

    g_string_append(m, "--b\nContent-Type: text/plain; name=\"a.txt\"\n\n");
    for (int i = 0; i < 30000; i++) /* 330,000 bytes */
        g_string_append(m, "clean text\n");
    g_string_append(m, "--b\nContent-Type: text/plain; name=\"b.txt\"\n\n");
    for (int i = 0; i < 20000; i++)
        g_string_append(m, "more text\n");
    g_string_append_printf(m, "%s\n", eicar);
    g_string_append_printf(m, "--b\nContent-Type: text/plain; name=\"c.txt\"\n\n%s\n", eicar);
    for (int i = 0; i < 5 * 1024 * 1024 / 16; i++) /* 5 MiB: over AV_WHOLE_MAX */
        g_string_append(m, "over the limit.\n");
    g_string_append(m, "--b--\n");
    r = sanitize_with(keep_all, m->str, m->len, 65536, 1, tmp_dir);
    d = decision(&r, "2");
    g_assert_cmpstr(d, ==, "all:keep:-");
    g_free(d);
    d = decision(&r, "3");
    g_assert_cmpstr(d, ==, "all:drop:infected");
    g_free(d);
    d = decision(&r, "4");
    g_assert_cmpstr(d, ==, "all:drop:infected");
    g_free(d);
    g_assert_null(strstr(r.out, "EICAR-STANDARD"));
    run_clear(&r);
    g_string_free(m, TRUE);
    mg_rules_unref(keep_all);
}

/* The same output whatever the chunking and however much is spooled. */
static void test_chunking_and_spool(void)
{
    struct mg_rules *rules = rules_from(NULL);
    const char *dir = g_getenv("MUGAIKA_TESTDATA");
    GString *big = g_string_new("From: a@example.com\nSubject: big\nMIME-Version: 1.0\n"
                                "Content-Type: multipart/mixed; boundary=\"b\"\n\n--b\n\nbody\n"
                                "--b\nContent-Type: text/plain; name=\"big.txt\"\n\n");
    GPtrArray *msgs = g_ptr_array_new_with_free_func(g_free);
    GDir *d;
    const char *name;

    for (int i = 0; i < 40000; i++)
        g_string_append_printf(big, "line %d of a large text attachment\n", i);
    g_string_append(big, "--b--\n");
    g_ptr_array_add(msgs, g_string_free(big, FALSE));
    g_assert_nonnull(dir);
    char *mail_dir = g_build_filename(dir, "mail", NULL);
    d = g_dir_open(mail_dir, 0, NULL);
    g_assert_nonnull(d);
    while ((name = g_dir_read_name(d)) != NULL) {
        char *path = g_build_filename(mail_dir, name, NULL), *data;
        g_assert_true(g_file_get_contents(path, &data, NULL, NULL));
        g_ptr_array_add(msgs, data);
        g_free(path);
    }
    g_dir_close(d);
    g_free(mail_dir);
    for (guint i = 0; i < msgs->len; i++) {
        const char *msg = g_ptr_array_index(msgs, i);
        struct run whole = sanitize_with(rules, msg, strlen(msg), 0, 0, NULL);
        struct run bytes = sanitize_with(rules, msg, strlen(msg), 1, 0, NULL);
        struct run odd = sanitize_with(rules, msg, strlen(msg), 4093, 1, tmp_dir);
        g_assert_cmpint(whole.v, ==, MG_VERDICT_ACCEPT);
        g_assert_cmpstr(whole.out, ==, bytes.out);
        g_assert_cmpstr(whole.out, ==, odd.out);
        run_clear(&whole);
        run_clear(&bytes);
        run_clear(&odd);
    }
    /* the big attachment arrives whole */
    struct run r = sanitize_with(rules, g_ptr_array_index(msgs, 0),
                                 strlen(g_ptr_array_index(msgs, 0)), 65536, 1, tmp_dir);
    g_assert_nonnull(strstr(r.out, "big.txt"));
    char *d2 = decision(&r, "2");
    g_assert_cmpstr(d2, ==, "attachment-text:keep:-");
    g_free(d2);
    run_clear(&r);
    g_ptr_array_unref(msgs);
    mg_rules_unref(rules);
}

static void test_spool_failure(void)
{
    struct mg_rules *rules = rules_from(NULL);
    GString *m = g_string_new("From: a@example.com\nSubject: x\n\n");
    struct run r;

    for (int i = 0; i < 20000; i++)
        g_string_append(m, "a line that fills the spool\n");
    r = sanitize_with(rules, m->str, m->len, 0, 1, "/nonexistent/spool");
    g_assert_cmpint(r.v, ==, MG_VERDICT_TEMPFAIL);
    g_assert_null(r.out);
    run_clear(&r);
    g_string_free(m, TRUE);
    mg_rules_unref(rules);
}

static void test_headers_and_text(void)
{
    struct mg_rules *rules = rules_from(NULL);
    const char *msg = "From: =?UTF-8?B?5bGx55Sw?= <yamada@example.jp>\n"
                      "Subject: first\nSubject: second\nX-Evil: <script>\n"
                      "Received: from a by b; Mon, 16 Nov 2026 10:00:00 +0900\n"
                      "Received: from c by d; Mon, 16 Nov 2026 09:59:00 +0900\n"
                      "Content-Type: text/plain; charset=utf-8\n\n"
                      "line one\rline two\r\nbell\007 gone\ttab kept   \n";
    struct run r = sanitize_str(rules, msg);
    char *body = body_of(r.out);

    g_assert_nonnull(strstr(r.out, "Subject: first\n"));
    g_assert_null(strstr(r.out, "second"));
    g_assert_null(strstr(r.out, "X-Evil"));
    g_assert_nonnull(strstr(r.out, "Received: from a by b"));
    g_assert_nonnull(strstr(r.out, "Received: from c by d"));
    g_assert_nonnull(strstr(r.out, "From: =?UTF-8?b?5bGx55Sw?= <yamada@example.jp>"));
    g_assert_cmpstr(body, ==, "line one\nline two\nbell gone\ttab kept\n");
    g_free(body);
    run_clear(&r);
    mg_rules_unref(rules);
}

/* The notice of msg sanitised in lang, as for a mail or for a file
 * dropped into a transfer folder (opts.file); owned by the caller. */
static char *notice_as(struct mg_rules *rules, const char *msg, const char *lang, bool file)
{
    struct mg_sanitize_opts o;
    struct mg_sanitize *s;
    GError *e = NULL;
    char *n;

    mg_sanitize_opts_default(&o);
    o.rules = rules;
    o.av = av;
    o.detect = det;
    o.lang = lang;
    o.file = file;
    s = mg_sanitize_new(&o);
    mg_sanitize_feed(s, msg, strlen(msg));
    g_assert_cmpint(mg_sanitize_finish(s, &e), ==, MG_VERDICT_ACCEPT);
    g_assert_no_error(e);
    n = g_strdup(mg_sanitize_notice(s));
    mg_sanitize_free(s);
    return n;
}

/* Is there a line of text that is exactly line? */
static bool has_line(const char *text, const char *line)
{
    char **lines = g_strsplit(text, "\n", -1);
    bool found = false;

    for (char **l = lines; *l != NULL && !found; l++)
        found = strcmp(*l, line) == 0;
    g_strfreev(lines);
    return found;
}

/* A message made around one file as mugaika-watch makes it: an empty
 * text, the file as the only attachment. */
#define AROUND_FILE(name, content)                                                                 \
    "From: mugaika-watch <watch@localhost>\r\nTo: transfer-folder@localhost\r\n"                   \
    "Subject: " name "\r\nMIME-Version: 1.0\r\n"                                                   \
    "Content-Type: multipart/mixed; boundary=\"=_w\"\r\n\r\n"                                      \
    "--=_w\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n\r\n"                                 \
    "--=_w\r\nContent-Type: application/octet-stream\r\n"                                          \
    "Content-Disposition: attachment; filename=\"" name "\"\r\n\r\n" content "\r\n--=_w--\r\n"

/* The notice speaks of "this file" and of files for a dropped file, and
 * of "this mail" and its attachments, word for word as before, for a
 * mail: the same message, each way, in both languages. */
static void test_notice_file(void)
{
    struct mg_rules *drop = rules_from("[rule body]\npart = body\naction = keep\n\n"
                                       "[rule rest]\naction = drop\n");
    struct mg_rules *hold = rules_from("[rule body]\npart = body\naction = keep\n\n"
                                       "[rule rest]\naction = hold\n");
    struct mg_rules *keep = rules_from("[rule all]\naction = keep\n");
    const char *plain = AROUND_FILE("a.bin", "some bytes\r\n");
    GString *eicar = g_string_new(NULL);
    static const struct {
        const char *lang, *mail_intro, *file_intro;
        const char *mail_held, *file_held;
        const char *mail_dropped, *file_dropped; /* line prefixes */
        const char *mail_held_part, *file_held_part;
        const char *mail_infected, *file_infected;
        const char *mail_macros, *file_macros;
        const char *mail_words[2]; /* in the mail's notice, never in the file's */
    } langs[] = {
        {
            .lang = "ja",
            .mail_intro = "このメールはインターネットから届いたため、安全のために次の処理を行い"
                          "ました。",
            .file_intro = "このファイルはインターネット接続系から受け渡されたため、"
                          "安全のために次の処理を行いました。",
            .mail_held = "・このメールは保留されました。本文と添付ファイルはお届けしていません。",
            .file_held = "・このファイルは保留されました。お届けしていません。",
            .mail_dropped = "・添付ファイル「a.bin」（",
            .file_dropped = "・ファイル「a.bin」（",
            .mail_held_part = "・添付ファイル「a.bin」（",
            .file_held_part = "・ファイル「a.bin」（",
            .mail_infected = "・添付ファイル「e.com」からウイルス（",
            .file_infected = "・ファイル「e.com」からウイルス（",
            .mail_macros = "・添付ファイル「m.xlsm」（application/octet-stream、26 "
                           "B）にはマクロが含まれているため、"
                           "削除しました。",
            .file_macros = "・ファイル「m.xlsm」（application/octet-stream、26 "
                           "B）にはマクロが含まれているため、"
                           "削除しました。",
            .mail_words = {"メール", "添付"},
        },
        {
            .lang = "en",
            .mail_intro = "This mail came from the internet. For safety, the following was done:",
            .file_intro = "This file came from the internet-connected side. For safety, the "
                          "following was done:",
            .mail_held = "- This mail has been held: its text and attachments are not delivered.",
            .file_held = "- This file has been held: it is not delivered.",
            .mail_dropped = "- The attachment \"a.bin\" (",
            .file_dropped = "- The file \"a.bin\" (",
            .mail_held_part = "- The attachment \"a.bin\" (",
            .file_held_part = "- The file \"a.bin\" (",
            .mail_infected = "was found in the attachment \"e.com\"",
            .file_infected = "was found in the file \"e.com\"",
            .mail_macros =
                "- The attachment \"m.xlsm\" (application/octet-stream, 26 B) contains macros; it "
                "was removed.",
            .file_macros =
                "- The file \"m.xlsm\" (application/octet-stream, 26 B) contains macros; it was "
                "removed.",
            .mail_words = {"mail", "attachment"},
        },
    };

    /* the test signature split so that this file itself is not flagged */
    g_string_append(eicar, "X5O!P%@AP[4\\PZX54(P^)7CC)7}$");
    g_string_append(eicar, "EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*");
    char *infected = g_strdup_printf(AROUND_FILE("e.com", "%s"), eicar->str);
    /* a zip's first bytes naming a macro project: kept by rule all,
     * dropped all the same */
    const char *macros = AROUND_FILE("m.xlsm", "PK\x03\x04\x14\x01\x02\x02vbaProject.bin....");

    for (size_t i = 0; i < G_N_ELEMENTS(langs); i++) {
        const char *lang = langs[i].lang;
        char *mail[4] = {notice_as(drop, plain, lang, false), notice_as(hold, plain, lang, false),
                         notice_as(keep, infected, lang, false),
                         notice_as(keep, macros, lang, false)};
        char *file[4] = {notice_as(drop, plain, lang, true), notice_as(hold, plain, lang, true),
                         notice_as(keep, infected, lang, true),
                         notice_as(keep, macros, lang, true)};

        for (int k = 0; k < 4; k++) {
            char *low = g_ascii_strdown(file[k], -1);
            g_test_message("%s mail notice:\n%s", lang, mail[k]);
            g_test_message("%s file notice:\n%s", lang, file[k]);
            g_assert_true(has_line(mail[k], langs[i].mail_intro));
            g_assert_true(has_line(file[k], langs[i].file_intro));
            for (int j = 0; j < 2; j++) {
                g_assert_nonnull(strstr(mail[k], langs[i].mail_words[j]));
                g_assert_null(strstr(low, langs[i].mail_words[j]));
            }
            g_assert_null(strstr(low, "message"));
            g_assert_null(strstr(file[k], "メッセージ"));
            g_free(low);
        }
        /* removed */
        g_assert_nonnull(strstr(mail[0], langs[i].mail_dropped));
        g_assert_nonnull(strstr(file[0], langs[i].file_dropped));
        /* held: the whole, and the item itself */
        g_assert_true(has_line(mail[1], langs[i].mail_held));
        g_assert_true(has_line(file[1], langs[i].file_held));
        g_assert_nonnull(strstr(mail[1], langs[i].mail_held_part));
        g_assert_nonnull(strstr(file[1], langs[i].file_held_part));
        /* infected */
        g_assert_nonnull(strstr(mail[2], langs[i].mail_infected));
        g_assert_nonnull(strstr(file[2], langs[i].file_infected));
        /* kept by its rule, but with macros */
        g_assert_true(has_line(mail[3], langs[i].mail_macros));
        g_assert_true(has_line(file[3], langs[i].file_macros));
        /* the title does not depend on the subject */
        for (int k = 0; k < 4; k++) {
            size_t len = strcspn(mail[k], "\n");
            g_assert_cmpint(len, ==, strcspn(file[k], "\n"));
            g_assert_cmpint(memcmp(mail[k], file[k], len), ==, 0);
        }
        for (int k = 0; k < 4; k++) {
            g_free(mail[k]);
            g_free(file[k]);
        }
    }
    g_free(infected);
    g_string_free(eicar, TRUE);
    mg_rules_unref(drop);
    mg_rules_unref(hold);
    mg_rules_unref(keep);
}

int main(int argc, char **argv)
{
    const char *makedb = g_getenv("MUGAIKA_MAKE_TESTDB");
    GError *e = NULL;
    const char *why = NULL;
    char *db;
    int rc, status = 0;

    g_test_init(&argc, &argv, NULL);
    g_mime_init();
    tmp_dir = g_dir_make_tmp("mugaika-test-sanitize-XXXXXX", &e);
    g_assert_no_error(e);
    g_assert_nonnull(makedb);
    db = g_build_filename(tmp_dir, "db", NULL);
    char *cmd[] = {(char *)makedb, db, NULL};
    g_assert_true(g_spawn_sync(NULL, cmd, NULL, G_SPAWN_STDOUT_TO_DEV_NULL, NULL, NULL, NULL, NULL,
                               &status, &e));
    g_assert_no_error(e);
    g_assert_cmpint(status, ==, 0);
    av = mg_av_open(db, &e);
    g_assert_no_error(e);
    det = mg_detect_new(&why);
    g_assert_nonnull(det);

    g_test_add_func("/sanitize/names", test_names);
    g_test_add_func("/sanitize/flags", test_flags);
    g_test_add_func("/sanitize/alternative", test_alternative);
    g_test_add_func("/sanitize/opaque-dropped", test_opaque_dropped);
    g_test_add_func("/sanitize/hold-and-handlers", test_hold_and_handlers);
    g_test_add_func("/sanitize/limits-opaque", test_limits_opaque);
    g_test_add_func("/sanitize/uu-in-kept-text", test_uu_in_kept_text);
    g_test_add_func("/sanitize/infected-forced", test_infected_forced);
    g_test_add_func("/sanitize/infected-spooled", test_infected_spooled);
    g_test_add_func("/sanitize/chunking-and-spool", test_chunking_and_spool);
    g_test_add_func("/sanitize/spool-failure", test_spool_failure);
    g_test_add_func("/sanitize/headers-and-text", test_headers_and_text);
    g_test_add_func("/sanitize/notice-file", test_notice_file);
    rc = g_test_run();

    mg_detect_free(det);
    mg_av_unref(av);
    char *rm[] = {"rm", "-rf", tmp_dir, NULL};
    g_spawn_sync(NULL, rm, NULL, G_SPAWN_SEARCH_PATH, NULL, NULL, NULL, NULL, NULL, NULL);
    g_free(db);
    g_free(tmp_dir);
    return rc;
}
