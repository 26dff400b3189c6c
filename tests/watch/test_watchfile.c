/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * test_watchfile: mg_watch_file, one dropped file through the mail
 * pipeline (the built-in policy, a test ClamAV database made here by
 * tests/av/make-testdb, the CDR workers of this build tree).
 *
 *	test_watchfile SOURCE_ROOT SHARED_DIR [g_test options]
 *
 * - a Japanese text file comes out byte for byte under its name, no
 *   notice; the quarantine keeps the file itself (kind "file", its name
 *   as subject, export equal to the bytes);
 * - EICAR gives no output, a notice naming the virus, a quarantine id;
 * - a macro document comes out as .docx without its VBA project;
 * - a zip gives its members one by one, under their names;
 * - a dropped .eml is sanitised as a mail: one output, the same name,
 *   no HTML left;
 * - an output callback that fails, and a file that cannot be read,
 *   make mg_watch_file fail with the reason.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <glib.h>
#include <glib/gstdio.h>
#include <zlib.h>

#include <mugaika/av.h>
#include <mugaika/cdr.h>
#include <mugaika/detect.h>
#include <mugaika/quarantine.h>
#include <mugaika/rules.h>
#include <mugaika/watch.h>

static const char *source_root, *shared_dir;
static char *tmp, *db;
static struct mg_rules *rules;
static struct mg_av *av;
static struct mg_detect *det;
static struct mg_quarantine *q;

static const char eicar1[] = "X5O!P%@AP[4\\PZX54(P^)7CC)7}$";
static const char eicar2[] = "EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*";

struct got {
    GPtrArray *names, *types; /* of char * */
    GPtrArray *data;          /* of GBytes * */
    bool fail;                /* the callback refuses */
};

static void got_init(struct got *g)
{
    g->names = g_ptr_array_new_with_free_func(g_free);
    g->types = g_ptr_array_new_with_free_func(g_free);
    g->data = g_ptr_array_new_with_free_func((GDestroyNotify)g_bytes_unref);
    g->fail = false;
}

static void got_fini(struct got *g)
{
    g_ptr_array_unref(g->names);
    g_ptr_array_unref(g->types);
    g_ptr_array_unref(g->data);
}

static bool collect(void *u, const char *name, const char *type, GMimeStream *content, GError **err)
{
    struct got *g = u;
    GByteArray *b = g_byte_array_new();
    char buf[4096];
    ssize_t n;

    if (g->fail) {
        g_set_error(err, G_FILE_ERROR, G_FILE_ERROR_NOSPC, "out of space (test)");
        g_byte_array_unref(b);
        return false;
    }
    while ((n = g_mime_stream_read(content, buf, sizeof buf)) > 0)
        g_byte_array_append(b, (const guint8 *)buf, (guint)n);
    g_assert_cmpint(n, ==, 0);
    g_ptr_array_add(g->names, g_strdup(name));
    g_ptr_array_add(g->types, g_strdup(type));
    g_ptr_array_add(g->data, g_byte_array_free_to_bytes(b));
    return true;
}

static void opts(struct mg_sanitize_opts *o)
{
    mg_sanitize_opts_default(o);
    o->rules = rules;
    o->av = av;
    o->detect = det;
    o->quarantine = q;
    o->lang = "en";
    o->spool_dir = tmp;
}

/* Runs mg_watch_file on data written to a file named name. */
static bool run(const char *name, const void *data, size_t len, struct got *g,
                struct mg_watch_result *res, GError **err)
{
    char *path = g_build_filename(tmp, "in.bin", NULL);
    struct mg_sanitize_opts o;
    bool ok;
    int fd;

    g_assert_true(g_file_set_contents(path, data, (gssize)len, NULL));
    fd = open(path, O_RDONLY | O_CLOEXEC);
    g_assert_cmpint(fd, >=, 0);
    opts(&o);
    ok = mg_watch_file(&o, fd, name, collect, g, res, err);
    close(fd);
    g_free(path);
    return ok;
}

static GBytes *corpus(const char *rel)
{
    char *p = g_build_filename(shared_dir, "corpus", rel, NULL);
    char *d;
    gsize n;

    if (!g_file_get_contents(p, &d, &n, NULL))
        g_error("the shared corpus is missing: %s", p);
    g_free(p);
    return g_bytes_new_take(d, n);
}

static void test_text(void)
{
    static const char text[] = "会議は3時からです。\r\n資料を添付します。\r\n";
    struct got g;
    struct mg_watch_result res;
    struct mg_qrecord rec;
    GError *e = NULL;
    char *exp_path = g_build_filename(tmp, "export.bin", NULL), *exp;
    gsize exp_len;
    int fd;

    got_init(&g);
    g_assert_true(run("メモ.txt", text, strlen(text), &g, &res, &e));
    g_assert_no_error(e);
    g_assert_cmpint(res.verdict, ==, MG_VERDICT_ACCEPT);
    g_assert_cmpuint(g.names->len, ==, 1);
    g_assert_cmpstr(g_ptr_array_index(g.names, 0), ==, "メモ.txt");
    g_assert_cmpmem(g_bytes_get_data(g_ptr_array_index(g.data, 0), NULL),
                    g_bytes_get_size(g_ptr_array_index(g.data, 0)), text, strlen(text));
    g_assert_cmpstr(res.notice, ==, "");
    g_assert_nonnull(res.quarantine_id);
    g_assert_cmpuint(res.outputs, ==, 1);
    /* the quarantine keeps the file itself */
    g_assert_true(mg_quarantine_get(q, res.quarantine_id, &rec, &e));
    g_assert_no_error(e);
    g_assert_cmpstr(rec.kind, ==, "file");
    g_assert_cmpstr(rec.subject, ==, "メモ.txt");
    g_assert_cmpuint(rec.size, ==, strlen(text));
    mg_qrecord_clear(&rec);
    fd = open(exp_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    g_assert_true(mg_quarantine_export(q, res.quarantine_id, fd, &e));
    g_assert_no_error(e);
    close(fd);
    g_assert_true(g_file_get_contents(exp_path, &exp, &exp_len, NULL));
    g_assert_cmpmem(exp, exp_len, text, strlen(text));
    g_free(exp);
    g_free(exp_path);
    mg_watch_result_clear(&res);
    got_fini(&g);
}

static void test_eicar(void)
{
    char *virus = g_strconcat(eicar1, eicar2, NULL);
    struct got g;
    struct mg_watch_result res;
    GError *e = NULL;

    got_init(&g);
    g_assert_true(run("invoice.com", virus, strlen(virus), &g, &res, &e));
    g_assert_no_error(e);
    g_assert_cmpint(res.verdict, ==, MG_VERDICT_ACCEPT);
    g_assert_cmpuint(g.names->len, ==, 0);
    g_assert_nonnull(strstr(res.notice, "Mugaika.Test.EICAR"));
    g_assert_nonnull(strstr(res.notice, "invoice.com"));
    g_assert_nonnull(res.quarantine_id);
    g_assert_nonnull(strstr(res.result, "infected=1"));
    {
        char *r = mg_watch_report(&res, "invoice.com", NULL, "en", NULL);
        g_assert_true(g_str_has_prefix(r, "[Sanitisation report]\r\nFile: invoice.com\r\n\r\n"
                                          "Nothing could be delivered.\r\n"));
        g_assert_nonnull(strstr(r, "Mugaika.Test.EICAR"));
        g_assert_nonnull(strstr(r, "-> drop, infected"));
        g_assert_nonnull(strstr(r, res.quarantine_id));
        g_free(r);
    }
    mg_watch_result_clear(&res);
    got_fini(&g);
    g_free(virus);
}

static void test_docm(void)
{
    GBytes *docm = corpus("poi-testdata/document/SimpleMacro.docm");
    struct got g;
    struct mg_watch_result res;
    GError *e = NULL;
    GBytes *out;

    got_init(&g);
    g_assert_true(
        run("申請書.docm", g_bytes_get_data(docm, NULL), g_bytes_get_size(docm), &g, &res, &e));
    g_assert_no_error(e);
    g_assert_cmpuint(g.names->len, ==, 1);
    g_assert_cmpstr(g_ptr_array_index(g.names, 0), ==, "申請書.docx");
    out = g_ptr_array_index(g.data, 0);
    g_assert_cmpuint(g_bytes_get_size(out), >, 100);
    g_assert_cmpmem(g_bytes_get_data(out, NULL), 2, "PK", 2);
    g_assert_null(
        g_strstr_len(g_bytes_get_data(out, NULL), (gssize)g_bytes_get_size(out), "vbaProject"));
    g_assert_cmpstr(res.notice, !=, "");
    {
        /* the report: Japanese, CRLF, the outputs, the rule, the id */
        static const char *const outs[] = {"申請書.docx", NULL};
        GDateTime *when = g_date_time_new_utc(2026, 12, 3, 9, 0, 0);
        char *r = mg_watch_report(&res, "申請書.docm", outs, "ja", when);
        g_assert_true(g_str_has_prefix(r, "【無害化処理の報告】\r\nファイル: 申請書.docm\r\n"));
        g_assert_nonnull(strstr(r, "処理日時: 2026-12-03T09:00:00Z"));
        g_assert_nonnull(strstr(r, "  - 申請書.docx\r\n"));
        g_assert_nonnull(strstr(r, "office -> disarm"));
        g_assert_nonnull(strstr(r, res.quarantine_id));
        g_assert_nonnull(strstr(r, "隔離ID"));
        for (const char *p = strchr(r, '\n'); p != NULL; p = strchr(p + 1, '\n'))
            g_assert_cmpint(p[-1], ==, '\r');
        g_free(r);
        g_date_time_unref(when);
    }
    mg_watch_result_clear(&res);
    got_fini(&g);
    g_bytes_unref(docm);
}

/* A stored (uncompressed) zip of two members, written here. */
static GByteArray *small_zip(void)
{
    static const char *const names[] = {"a.txt", "フォルダ/b.txt"};
    static const char *const bodies[] = {"first\n", "second\n"};
    GByteArray *z = g_byte_array_new(), *cd = g_byte_array_new();
    guint32 offs[2];

    for (int i = 0; i < 2; i++) {
        guint32 crc = (guint32)crc32(0L, (const Bytef *)bodies[i], (uInt)strlen(bodies[i]));
        guint16 nl = (guint16)strlen(names[i]);
        guint32 bl = (guint32)strlen(bodies[i]);
        guint8 lh[30] = {'P', 'K', 3, 4, 20, 0, 0, 8, 0, 0};
        guint8 ch[46] = {'P', 'K', 1, 2, 20, 0, 20, 0, 0, 8, 0, 0};
        offs[i] = z->len;
        memcpy(lh + 14, &crc, 4);
        memcpy(lh + 18, &bl, 4);
        memcpy(lh + 22, &bl, 4);
        memcpy(lh + 26, &nl, 2);
        g_byte_array_append(z, lh, 30);
        g_byte_array_append(z, (const guint8 *)names[i], nl);
        g_byte_array_append(z, (const guint8 *)bodies[i], bl);
        memcpy(ch + 16, &crc, 4);
        memcpy(ch + 20, &bl, 4);
        memcpy(ch + 24, &bl, 4);
        memcpy(ch + 28, &nl, 2);
        memcpy(ch + 42, &offs[i], 4);
        g_byte_array_append(cd, ch, 46);
        g_byte_array_append(cd, (const guint8 *)names[i], nl);
    }
    {
        guint8 eocd[22] = {'P', 'K', 5, 6, 0, 0, 0, 0, 2, 0, 2, 0};
        guint32 cdlen = cd->len, cdoff = z->len;
        memcpy(eocd + 12, &cdlen, 4);
        memcpy(eocd + 16, &cdoff, 4);
        g_byte_array_append(z, cd->data, cd->len);
        g_byte_array_append(z, eocd, 22);
    }
    g_byte_array_unref(cd);
    return z;
}

static void test_zip(void)
{
    GByteArray *z = small_zip();
    struct got g;
    struct mg_watch_result res;
    GError *e = NULL;

    got_init(&g);
    g_assert_true(run("書類.zip", z->data, z->len, &g, &res, &e));
    g_assert_no_error(e);
    g_assert_cmpuint(g.names->len, ==, 2);
    g_assert_cmpstr(g_ptr_array_index(g.names, 0), ==, "a.txt");
    g_assert_cmpstr(g_ptr_array_index(g.names, 1), ==, "b.txt");
    g_assert_cmpmem(g_bytes_get_data(g_ptr_array_index(g.data, 1), NULL),
                    g_bytes_get_size(g_ptr_array_index(g.data, 1)), "second\n", 7);
    g_assert_nonnull(strstr(res.notice, "書類.zip"));
    mg_watch_result_clear(&res);
    got_fini(&g);
    g_byte_array_unref(z);
}

static void test_eml(void)
{
    static const char mail[] =
        "From: a@example.org\r\nTo: b@example.jp\r\nSubject: html\r\nMIME-Version: 1.0\r\n"
        "Content-Type: text/html; charset=utf-8\r\n\r\n"
        "<html><body><p>お知らせ <a href=\"https://example.org/x\">link</a></p>"
        "<script>alert(1)</script></body></html>\r\n";
    struct got g;
    struct mg_watch_result res;
    GError *e = NULL;
    const char *out;
    gsize n;

    got_init(&g);
    g_assert_true(run("notice.eml", mail, strlen(mail), &g, &res, &e));
    g_assert_no_error(e);
    g_assert_cmpuint(g.names->len, ==, 1);
    g_assert_cmpstr(g_ptr_array_index(g.names, 0), ==, "notice.eml");
    g_assert_cmpstr(g_ptr_array_index(g.types, 0), ==, "message/rfc822");
    out = g_bytes_get_data(g_ptr_array_index(g.data, 0), &n);
    g_assert_null(g_strstr_len(out, (gssize)n, "text/html"));
    g_assert_null(g_strstr_len(out, (gssize)n, "<script"));
    g_assert_nonnull(g_strstr_len(out, (gssize)n, "X-Mugaika-Result"));
    mg_watch_result_clear(&res);
    got_fini(&g);
}

static void test_failures(void)
{
    static const char text[] = "plain\n";
    struct got g;
    struct mg_watch_result res;
    struct mg_sanitize_opts o;
    GError *e = NULL;

    got_init(&g);
    g.fail = true;
    g_assert_false(run("a.txt", text, strlen(text), &g, &res, &e));
    g_assert_error(e, G_FILE_ERROR, G_FILE_ERROR_NOSPC);
    g_clear_error(&e);
    mg_watch_result_clear(&res);
    g.fail = false;
    opts(&o);
    /* a descriptor that cannot be read: a directory */
    {
        int fd = open(tmp, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        g_assert_false(mg_watch_file(&o, fd, "dir.txt", collect, &g, &res, &e));
        close(fd);
    }
    g_assert_nonnull(e);
    g_assert_nonnull(strstr(e->message, "dir.txt: read"));
    g_clear_error(&e);
    g_assert_cmpuint(g.names->len, ==, 0);
    mg_watch_result_clear(&res);
    got_fini(&g);
}

int main(int argc, char **argv)
{
    GError *e = NULL;
    const char *why = NULL;
    char *cmd;
    int rc;

    g_test_init(&argc, &argv, NULL);
    if (argc < 3) {
        fprintf(stderr, "usage: %s SOURCE_ROOT SHARED_DIR\n", argv[0]);
        return 64;
    }
    source_root = argv[1];
    shared_dir = argv[2];
    tmp = g_dir_make_tmp("mugaika-watchfile.XXXXXX", NULL);
    db = g_build_filename(tmp, "db", NULL);
    cmd = g_strdup_printf("bash '%s/tests/av/make-testdb' '%s' >/dev/null", source_root, db);
    if (system(cmd) != 0)
        g_error("make-testdb failed");
    g_free(cmd);
    rules = mg_rules_load(NULL, &e);
    g_assert_no_error(e);
    av = mg_av_open(db, &e);
    g_assert_no_error(e);
    g_assert_true(mg_cdr_init(NULL, &e));
    det = mg_detect_new(&why);
    g_assert_nonnull(det);
    {
        char *qd = g_build_filename(tmp, "q", NULL);
        q = mg_quarantine_open(qd, &e);
        g_assert_no_error(e);
        g_free(qd);
    }
    g_test_add_func("/watch/file/text", test_text);
    g_test_add_func("/watch/file/eicar", test_eicar);
    g_test_add_func("/watch/file/docm", test_docm);
    g_test_add_func("/watch/file/zip", test_zip);
    g_test_add_func("/watch/file/eml", test_eml);
    g_test_add_func("/watch/file/failures", test_failures);
    rc = g_test_run();
    mg_quarantine_close(q);
    mg_detect_free(det);
    mg_av_unref(av);
    mg_rules_unref(rules);
    cmd = g_strdup_printf("rm -rf '%s'", tmp);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", tmp);
    g_free(cmd);
    g_free(db);
    g_free(tmp);
    return rc;
}
