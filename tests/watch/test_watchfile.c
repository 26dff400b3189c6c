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
 *   make mg_watch_file fail with the reason;
 * - mg_witem_process: archive members as a folder, owner and modes,
 *   several threads on one output folder, a stop right after the commit
 *   (recovery delivers), renames that fail after the commit (the
 *   item is closed, its input stays and is delivered once when taken
 *   again), and an output OUT would not take (a temporary failure:
 *   the input stays, no report).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <linux/fs.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <glib.h>
#include <glib/gstdio.h>
#include <zlib.h>

#include <mugaika/av.h>
#include <mugaika/cdr.h>
#include <mugaika/detect.h>
#include <mugaika/fsname.h>
#include <mugaika/fsops.h>
#include <mugaika/quarantine.h>
#include <mugaika/rules.h>
#include <mugaika/watch.h>
#include <mugaika/witem.h>

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
    GPtrArray *dirs;          /* of char *: the dirs joined by '/', or "" */
    GPtrArray *data;          /* of GBytes * */
    bool fail;                /* the callback refuses */
};

static void got_init(struct got *g)
{
    g->names = g_ptr_array_new_with_free_func(g_free);
    g->types = g_ptr_array_new_with_free_func(g_free);
    g->dirs = g_ptr_array_new_with_free_func(g_free);
    g->data = g_ptr_array_new_with_free_func((GDestroyNotify)g_bytes_unref);
    g->fail = false;
}

static void got_fini(struct got *g)
{
    g_ptr_array_unref(g->names);
    g_ptr_array_unref(g->types);
    g_ptr_array_unref(g->dirs);
    g_ptr_array_unref(g->data);
}

static bool collect(void *u, const struct mg_watch_output *o, GMimeStream *content, GError **err)
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
    g_ptr_array_add(g->names, g_strdup(o->name));
    g_ptr_array_add(g->types, g_strdup(o->type));
    g_ptr_array_add(g->dirs, o->dirs != NULL ? g_strjoinv("/", (char **)o->dirs) : g_strdup(""));
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
        g_assert_nonnull(strstr(r, "処理日時: 2026-12-03 09:00:00 +00:00\r\n"));
        {
            /* in the daemon's time zone, with its offset */
            GTimeZone *jst = g_time_zone_new_identifier("+09:00");
            GDateTime *local = g_date_time_to_timezone(when, jst);
            char *r2 = mg_watch_report(&res, "申請書.docm", outs, "ja", local);
            g_assert_nonnull(strstr(r2, "処理日時: 2026-12-03 18:00:00 +09:00\r\n"));
            g_free(r2);
            g_date_time_unref(local);
            g_time_zone_unref(jst);
        }
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

/* A stored (uncompressed) zip of n members, written here. */
static GByteArray *make_zip(const char *const *names, GBytes *const *bodies, unsigned n)
{
    GByteArray *z = g_byte_array_new(), *cd = g_byte_array_new();

    for (unsigned i = 0; i < n; i++) {
        gsize blen;
        const guint8 *body = g_bytes_get_data(bodies[i], &blen);
        guint32 crc = (guint32)crc32(0L, body, (uInt)blen);
        guint16 nl = (guint16)strlen(names[i]);
        guint32 bl = (guint32)blen, off = z->len;
        guint8 lh[30] = {'P', 'K', 3, 4, 20, 0, 0, 8, 0, 0};
        guint8 ch[46] = {'P', 'K', 1, 2, 20, 0, 20, 0, 0, 8, 0, 0};
        memcpy(lh + 14, &crc, 4);
        memcpy(lh + 18, &bl, 4);
        memcpy(lh + 22, &bl, 4);
        memcpy(lh + 26, &nl, 2);
        g_byte_array_append(z, lh, 30);
        g_byte_array_append(z, (const guint8 *)names[i], nl);
        g_byte_array_append(z, body, bl);
        memcpy(ch + 16, &crc, 4);
        memcpy(ch + 20, &bl, 4);
        memcpy(ch + 24, &bl, 4);
        memcpy(ch + 28, &nl, 2);
        memcpy(ch + 42, &off, 4);
        g_byte_array_append(cd, ch, 46);
        g_byte_array_append(cd, (const guint8 *)names[i], nl);
    }
    {
        guint8 eocd[22] = {'P', 'K', 5, 6, 0, 0, 0, 0};
        guint16 cnt = (guint16)n;
        guint32 cdlen = cd->len, cdoff = z->len;
        memcpy(eocd + 8, &cnt, 2);
        memcpy(eocd + 10, &cnt, 2);
        memcpy(eocd + 12, &cdlen, 4);
        memcpy(eocd + 16, &cdoff, 4);
        g_byte_array_append(z, cd->data, cd->len);
        g_byte_array_append(z, eocd, 22);
    }
    g_byte_array_unref(cd);
    return z;
}

static GBytes *str_bytes(const char *s)
{
    return g_bytes_new_static(s, strlen(s));
}

/* Two members, one in a folder. */
static GByteArray *small_zip(void)
{
    static const char *const names[] = {"a.txt", "フォルダ/b.txt"};
    GBytes *b[2] = {str_bytes("first\n"), str_bytes("second\n")};
    GByteArray *z = make_zip(names, b, 2);

    g_bytes_unref(b[0]);
    g_bytes_unref(b[1]);
    return z;
}

/* top.txt, d/inner.zip (x/y.txt in it), D/z.txt and ../evil.txt. */
static GByteArray *nested_zip(void)
{
    static const char *const inames[] = {"x/y.txt"};
    GBytes *ib[1] = {str_bytes("inner member\n")};
    GByteArray *inner = make_zip(inames, ib, 1);
    static const char *const names[] = {"top.txt", "d/inner.zip", "D/z.txt", "../evil.txt"};
    GBytes *b[4] = {str_bytes("top\n"), g_bytes_new(inner->data, inner->len), str_bytes("z\n"),
                    str_bytes("evil\n")};
    GByteArray *z = make_zip(names, b, 4);

    for (int i = 0; i < 4; i++)
        g_bytes_unref(b[i]);
    g_bytes_unref(ib[0]);
    g_byte_array_unref(inner);
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
    /* layout = folder (the default): the folder named after the zip,
     * then the member's own folders */
    g_assert_cmpstr(g_ptr_array_index(g.dirs, 0), ==, "書類");
    g_assert_cmpstr(g_ptr_array_index(g.dirs, 1), ==, "書類/フォルダ");
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

/* --- layout ---------------------------------------------------------------- */

/* A copy of the built-in rules with extra lines after "action = unpack"
 * of [rule archive]; extra NULL: a bad option instead (for the load
 * error). Returns the directory (g_free). */
static char *rules_with(const char *tag, const char *extra)
{
    char *dir = g_build_filename(tmp, tag, NULL);
    char *src = g_build_filename(source_root, "rules", NULL);
    GDir *d = g_dir_open(src, 0, NULL);
    const char *n;

    g_assert_nonnull(d);
    g_assert_cmpint(g_mkdir_with_parents(dir, 0700), ==, 0);
    while ((n = g_dir_read_name(d)) != NULL) {
        char *from = g_build_filename(src, n, NULL), *to = g_build_filename(dir, n, NULL);
        char *text;
        g_assert_true(g_file_get_contents(from, &text, NULL, NULL));
        if (strcmp(n, "40-documents.rules") == 0) {
            char *at = strstr(text, "[rule archive]");
            g_assert_nonnull(at);
            at = strstr(at, "action = unpack\n");
            g_assert_nonnull(at);
            at += strlen("action = unpack\n");
            char *t = g_strdup_printf("%.*s%s%s", (int)(at - text), text, extra, at);
            g_free(text);
            text = t;
        }
        g_assert_true(g_file_set_contents(to, text, -1, NULL));
        g_free(text);
        g_free(from);
        g_free(to);
    }
    g_dir_close(d);
    g_free(src);
    return dir;
}

static bool run_rules(struct mg_rules *r, const char *name, GByteArray *z, struct got *g,
                      struct mg_watch_result *res, GError **err)
{
    struct mg_rules *saved = rules;
    bool ok;

    rules = r;
    ok = run(name, z->data, z->len, g, res, err);
    rules = saved;
    return ok;
}

static void test_layout(void)
{
    GByteArray *z = nested_zip();
    struct got g;
    struct mg_watch_result res;
    GError *e = NULL;
    struct mg_rules *files_rules, *zip_rules;
    char *dir;

    /* folder (the default): the members' folders, a folder per nested
     * archive, no "..", members in archive order */
    got_init(&g);
    g_assert_true(run("外.zip", z->data, z->len, &g, &res, &e));
    g_assert_no_error(e);
    g_assert_cmpuint(g.names->len, ==, 4);
    g_assert_cmpstr(g_ptr_array_index(g.names, 0), ==, "top.txt");
    g_assert_cmpstr(g_ptr_array_index(g.dirs, 0), ==, "外");
    g_assert_cmpstr(g_ptr_array_index(g.names, 1), ==, "y.txt");
    g_assert_cmpstr(g_ptr_array_index(g.dirs, 1), ==, "外/d/inner/x");
    g_assert_cmpstr(g_ptr_array_index(g.names, 2), ==, "z.txt");
    g_assert_cmpstr(g_ptr_array_index(g.dirs, 2), ==, "外/D");
    g_assert_cmpstr(g_ptr_array_index(g.names, 3), ==, "evil.txt");
    g_assert_cmpstr(g_ptr_array_index(g.dirs, 3), ==, "外");
    mg_watch_result_clear(&res);
    got_fini(&g);

    /* layout = files: each member on its own */
    dir = rules_with("rules-files", "layout = files\n");
    files_rules = mg_rules_load(dir, &e);
    g_assert_no_error(e);
    g_free(dir);
    g_assert_cmpstr(mg_rule_option(mg_rules_find(files_rules, "archive"), "layout"), ==, "files");
    g_assert_cmpstr(mg_rule_option(mg_rules_find(rules, "archive"), "layout"), ==, "folder");
    g_assert_null(mg_rules_find(rules, "no-such-rule"));
    got_init(&g);
    g_assert_true(run_rules(files_rules, "外.zip", z, &g, &res, &e));
    g_assert_no_error(e);
    g_assert_cmpuint(g.names->len, ==, 4);
    for (guint i = 0; i < g.names->len; i++)
        g_assert_cmpstr(g_ptr_array_index(g.dirs, i), ==, "");
    mg_watch_result_clear(&res);
    got_fini(&g);
    mg_rules_unref(files_rules);

    /* repack = zip wins over layout = folder */
    dir = rules_with("rules-zip", "repack = zip\nlayout = folder\n");
    zip_rules = mg_rules_load(dir, &e);
    g_assert_no_error(e);
    g_free(dir);
    got_init(&g);
    g_assert_true(run_rules(zip_rules, "外.zip", z, &g, &res, &e));
    g_assert_no_error(e);
    g_assert_cmpuint(g.names->len, ==, 1);
    g_assert_cmpstr(g_ptr_array_index(g.names, 0), ==, "外.zip");
    g_assert_cmpstr(g_ptr_array_index(g.dirs, 0), ==, "");
    mg_watch_result_clear(&res);
    got_fini(&g);
    mg_rules_unref(zip_rules);
    g_byte_array_unref(z);
}

static void test_layout_errors(void)
{
    GError *e = NULL;
    char *dir = rules_with("rules-bad", "layout = sideways\n");
    char *dir2;

    g_assert_null(mg_rules_load(dir, &e));
    g_assert_nonnull(e);
    /* FILE:LINE: [rule archive] layout: ... */
    g_assert_nonnull(strstr(e->message, "40-documents.rules:"));
    g_assert_nonnull(strstr(e->message, "layout"));
    g_assert_nonnull(strstr(e->message, "folder or files"));
    g_clear_error(&e);
    g_free(dir);
    /* only with action unpack */
    dir2 = g_build_filename(tmp, "rules-bad2", NULL);
    g_assert_cmpint(g_mkdir_with_parents(dir2, 0700), ==, 0);
    {
        char *f = g_build_filename(dir2, "10-x.rules", NULL);
        g_assert_true(
            g_file_set_contents(f, "[rule x]\naction = drop\nlayout = files\n", -1, NULL));
        g_free(f);
    }
    g_assert_null(mg_rules_load(dir2, &e));
    g_assert_nonnull(e);
    g_assert_nonnull(strstr(e->message, "10-x.rules:3"));
    g_assert_nonnull(strstr(e->message, "only allowed with action unpack"));
    g_clear_error(&e);
    g_free(dir2);
}

/* --- mg_witem_process ---------------------------------------------------- */

struct area {
    char *base;
    int in_fd, out_fd, state_fd;
    struct mg_wjournal *j;
};

static void area_open(struct area *a, const char *tag)
{
    char *p;

    a->base = g_build_filename(tmp, tag, NULL);
    for (const char *sub = "in\0out\0state\0"; *sub != '\0'; sub += strlen(sub) + 1) {
        p = g_build_filename(a->base, sub, NULL);
        g_assert_cmpint(g_mkdir_with_parents(p, 0700), ==, 0);
        g_free(p);
    }
    p = g_build_filename(a->base, "in", NULL);
    a->in_fd = open(p, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    g_free(p);
    p = g_build_filename(a->base, "out", NULL);
    a->out_fd = open(p, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    g_free(p);
    p = g_build_filename(a->base, "state", NULL);
    a->state_fd = open(p, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    g_free(p);
    g_assert_cmpint(a->in_fd, >=, 0);
    g_assert_cmpint(a->out_fd, >=, 0);
    g_assert_cmpint(a->state_fd, >=, 0);
    GError *e = NULL;
    a->j = mg_wjournal_open(a->state_fd, &e);
    g_assert_no_error(e);
}

static void area_close(struct area *a)
{
    mg_wjournal_close(a->j);
    close(a->in_fd);
    close(a->out_fd);
    close(a->state_fd);
    g_free(a->base);
}

static char *apath(const struct area *a, const char *rel)
{
    return g_build_filename(a->base, rel, NULL);
}

static void put(const struct area *a, const char *rel, const void *data, size_t len)
{
    char *p = apath(a, rel);
    g_assert_true(g_file_set_contents(p, data, (gssize)len, NULL));
    g_free(p);
}

static void ctx_init(struct mg_witem_ctx *c, struct mg_sanitize_opts *o, const struct area *a)
{
    opts(o);
    memset(c, 0, sizeof *c);
    c->opts = o;
    c->journal = a->j;
    c->lang = "en";
    c->mode = 0640;
    c->owner = (uid_t)-1;
    c->group = (gid_t)-1;
}

static void assert_mode(const struct area *a, const char *rel, mode_t mode, bool dir)
{
    struct stat st;
    char *p = apath(a, rel);

    if (lstat(p, &st) != 0)
        g_error("%s: %s", p, g_strerror(errno));
    g_assert_true(dir ? S_ISDIR(st.st_mode) : S_ISREG(st.st_mode));
    if ((st.st_mode & 07777) != mode)
        g_error("%s: mode %o, expected %o", p, (unsigned)(st.st_mode & 07777), (unsigned)mode);
    g_free(p);
}

static char *slurp(const struct area *a, const char *rel)
{
    char *p = apath(a, rel), *d = NULL;

    if (!g_file_get_contents(p, &d, NULL, NULL))
        d = NULL;
    g_free(p);
    return d;
}

/* Entries of OUT that are hidden temporaries. */
static unsigned hidden_count(const struct area *a)
{
    char *p = apath(a, "out");
    GDir *d = g_dir_open(p, 0, NULL);
    const char *n;
    unsigned c = 0;

    while ((n = g_dir_read_name(d)) != NULL)
        c += mg_fsname_is_temp(n);
    g_dir_close(d);
    g_free(p);
    return c;
}

static void test_item_folder(void)
{
    struct area a;
    struct mg_sanitize_opts o;
    struct mg_witem_ctx c;
    GByteArray *z = nested_zip();
    char *why = NULL, *rep, *t;

    area_open(&a, "item-folder");
    ctx_init(&c, &o, &a);
    put(&a, "in/外.zip", z->data, z->len);
    /* a file and a folder already named like the archive's folder */
    put(&a, "out/外", "x", 1);
    {
        char *p = apath(&a, "out/外 (2)");
        g_assert_cmpint(g_mkdir(p, 0700), ==, 0);
        g_free(p);
    }
    g_assert_cmpint(mg_witem_process(&c, &(struct mg_witem_dirs){a.in_fd, a.out_fd, "in/", "out/"},
                                     "外.zip", &why),
                    ==, MG_WITEM_DONE);
    g_free(why);
    t = slurp(&a, "out/外 (3)/d/inner/x/y.txt");
    g_assert_cmpstr(t, ==, "inner member\n");
    g_free(t);
    t = slurp(&a, "out/外 (3)/top.txt");
    g_assert_cmpstr(t, ==, "top\n");
    g_free(t);
    /* "D/" is the same folder as "d/" on Windows: one folder */
    t = slurp(&a, "out/外 (3)/d/z.txt");
    g_assert_cmpstr(t, ==, "z\n");
    g_free(t);
    t = slurp(&a, "out/外 (3)/evil.txt");
    g_assert_cmpstr(t, ==, "evil\n");
    g_free(t);
    /* modes exactly: files 0640, folders 0750 */
    assert_mode(&a, "out/外 (3)", 0750, true);
    assert_mode(&a, "out/外 (3)/d", 0750, true);
    assert_mode(&a, "out/外 (3)/d/inner/x", 0750, true);
    assert_mode(&a, "out/外 (3)/d/inner/x/y.txt", 0640, false);
    assert_mode(&a, "out/外.zip.mugaika.txt", 0640, false);
    rep = slurp(&a, "out/外.zip.mugaika.txt");
    g_assert_nonnull(rep);
    g_assert_nonnull(strstr(rep, "Delivered:\r\n  - 外 (3)/\r\n  - 外 (3)/top.txt\r\n"));
    g_assert_nonnull(strstr(rep, "  - 外 (3)/d/inner/x/y.txt\r\n"));
    g_assert_nonnull(strstr(rep, "  - 外 (3)/d/z.txt\r\n"));
    g_free(rep);
    g_assert_cmpuint(hidden_count(&a), ==, 0);
    {
        char *p = apath(&a, "in/外.zip");
        g_assert_false(g_file_test(p, G_FILE_TEST_EXISTS));
        g_free(p);
    }
    area_close(&a);
    g_byte_array_unref(z);
}

static void test_item_owner(void)
{
    struct area a;
    struct mg_sanitize_opts o;
    struct mg_witem_ctx c;
    struct mg_witem_dirs d;
    GByteArray *z = small_zip();
    char *why = NULL, *p;
    struct stat st;
    bool root = geteuid() == 0;
    uid_t uid = root ? 4242 : getuid();
    gid_t gid = root ? 4343 : getgid();

    area_open(&a, "item-owner");
    d = (struct mg_witem_dirs){a.in_fd, a.out_fd, "in/", "out/"};
    ctx_init(&c, &o, &a);
    c.mode = 0604;
    c.owner = uid;
    c.group = gid;
    put(&a, "in/own.zip", z->data, z->len);
    put(&a, "in/own.txt", "text\n", 5);
    g_assert_cmpint(mg_witem_process(&c, &d, "own.zip", &why), ==, MG_WITEM_DONE);
    g_free(why);
    g_assert_cmpint(mg_witem_process(&c, &d, "own.txt", &why), ==, MG_WITEM_DONE);
    g_free(why);
    for (const char *rel = "out/own\0out/own/フォルダ\0out/own/a.txt\0out/own/フォルダ/b.txt\0"
                           "out/own.zip.mugaika.txt\0out/own.txt\0out/own.txt.mugaika.txt\0";
         *rel != '\0'; rel += strlen(rel) + 1) {
        p = apath(&a, rel);
        g_assert_cmpint(lstat(p, &st), ==, 0);
        if (st.st_uid != uid || st.st_gid != gid)
            g_error("%s: owner %u:%u, expected %u:%u", p, (unsigned)st.st_uid, (unsigned)st.st_gid,
                    (unsigned)uid, (unsigned)gid);
        g_assert_cmpuint(st.st_mode & 07777, ==, S_ISDIR(st.st_mode) ? 0705 : 0604);
        g_free(p);
    }
    /* the helper the daemon uses for OUT/<user>/ */
    {
        GError *e = NULL;
        g_assert_true(mg_fs_mkdir_owned(a.out_fd, "user", uid, gid, 0750, &e));
        g_assert_no_error(e);
        g_assert_true(mg_fs_mkdir_owned(a.out_fd, "user", uid, gid, 0750, &e)); /* EEXIST: fine */
        g_assert_no_error(e);
        g_assert_false(mg_fs_mkdir_owned(a.out_fd, "own.txt", uid, gid, 0750, &e));
        g_assert_error(e, MG_FSOPS_ERROR, MG_FSOPS_ERROR_REFUSED);
        g_clear_error(&e);
        assert_mode(&a, "out/user", 0750, true);
        p = apath(&a, "out/user");
        g_assert_cmpint(lstat(p, &st), ==, 0);
        g_assert_cmpuint(st.st_uid, ==, uid);
        g_assert_cmpuint(st.st_gid, ==, gid);
        g_free(p);
    }
    if (!root) {
        /* a chown the process may not do fails the item: it stays */
        c.owner = getuid() + 1;
        put(&a, "in/denied.zip", z->data, z->len);
        g_assert_cmpint(mg_witem_process(&c, &d, "denied.zip", &why), ==, MG_WITEM_RETRY);
        g_assert_nonnull(strstr(why, "fchown"));
        g_free(why);
        p = apath(&a, "in/denied.zip");
        g_assert_true(g_file_test(p, G_FILE_TEST_IS_REGULAR));
        g_free(p);
        p = apath(&a, "out/denied");
        g_assert_false(g_file_test(p, G_FILE_TEST_EXISTS));
        g_free(p);
        g_assert_cmpuint(hidden_count(&a), ==, 0);
    } else {
        g_test_message("running as root: chown to 4242:4343 checked, a refused chown not");
    }
    area_close(&a);
    g_byte_array_unref(z);
}

#define THREADS    6
#define PER_THREAD 4

struct worker {
    struct area *a;
    int in_fd;
    unsigned n;
    struct mg_detect *det;
    unsigned done;
};

static gpointer item_thread(gpointer p)
{
    struct worker *w = p;
    struct mg_sanitize_opts o;
    struct mg_witem_ctx c;
    char key[32];

    ctx_init(&c, &o, w->a);
    o.detect = w->det;
    g_snprintf(key, sizeof key, "in/%u", w->n);
    for (unsigned i = 0; i < PER_THREAD; i++) {
        /* every thread wants the same names, in two cases */
        const char *name = i % 2 == 0 ? "same.txt" : "SAME.TXT";
        struct mg_witem_dirs d = {w->in_fd, w->a->out_fd, key, "out/"};
        char *why = NULL;
        char *text = g_strdup_printf("thread %u file %u\n", w->n, i);
        char *path = g_build_filename(w->a->base, key, name, NULL);
        g_assert_true(
            g_file_set_contents_full(path, text, -1, G_FILE_SET_CONTENTS_NONE, 0600, NULL));
        g_free(path);
        w->done += mg_witem_process(&c, &d, name, &why) == MG_WITEM_DONE;
        g_free(why);
        g_free(text);
    }
    return NULL;
}

static void test_item_threads(void)
{
    struct area a;
    struct worker w[THREADS];
    GThread *t[THREADS];
    GHashTable *keys = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
    GHashTable *texts = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
    char *p;
    GDir *d;
    const char *n;
    unsigned outputs = 0, reports = 0;

    area_open(&a, "item-threads");
    for (unsigned i = 0; i < THREADS; i++) {
        const char *why = NULL;
        char sub[32];
        g_snprintf(sub, sizeof sub, "in/%u", i);
        p = apath(&a, sub);
        g_assert_cmpint(g_mkdir(p, 0700), ==, 0);
        w[i] = (struct worker){&a, open(p, O_RDONLY | O_DIRECTORY | O_CLOEXEC), i,
                               mg_detect_new(&why), 0};
        g_assert_nonnull(w[i].det);
        g_free(p);
    }
    for (unsigned i = 0; i < THREADS; i++)
        t[i] = g_thread_new("item", item_thread, &w[i]);
    for (unsigned i = 0; i < THREADS; i++) {
        g_thread_join(t[i]);
        g_assert_cmpuint(w[i].done, ==, PER_THREAD);
        close(w[i].in_fd);
        mg_detect_free(w[i].det);
    }
    /* every output once, no two names alike ignoring case */
    p = apath(&a, "out");
    d = g_dir_open(p, 0, NULL);
    while ((n = g_dir_read_name(d)) != NULL) {
        char *key = g_utf8_casefold(n, -1);
        g_assert_false(mg_fsname_is_temp(n));
        if (g_hash_table_contains(keys, key))
            g_error("two outputs named alike: %s", n);
        g_hash_table_add(keys, key);
        char *rel = g_build_filename("out", n, NULL), *text = slurp(&a, rel);
        g_assert_nonnull(text);
        g_free(rel);
        if (g_str_has_prefix(text, "[Sanitisation report]")) {
            /* "same.txt.mugaika.txt", "same.txt.mugaika (2).txt", ... */
            g_assert_true(g_str_has_prefix(n, "same.txt.mugaika") ||
                          g_str_has_prefix(n, "SAME.TXT.mugaika"));
            reports++;
            g_free(text);
        } else {
            g_assert_true(g_str_has_prefix(n, "same") || g_str_has_prefix(n, "SAME"));
            g_assert_false(g_hash_table_contains(texts, text));
            g_hash_table_add(texts, text);
            outputs++;
        }
    }
    g_dir_close(d);
    g_free(p);
    g_assert_cmpuint(outputs, ==, THREADS * PER_THREAD);
    g_assert_cmpuint(reports, ==, THREADS * PER_THREAD);
    for (unsigned i = 0; i < THREADS; i++)
        for (unsigned j = 0; j < PER_THREAD; j++) {
            char *text = g_strdup_printf("thread %u file %u\n", i, j);
            g_assert_true(g_hash_table_contains(texts, text));
            g_free(text);
        }
    g_hash_table_unref(keys);
    g_hash_table_unref(texts);
    area_close(&a);
}

static bool stop_after_commit(void *user)
{
    (void)user;
    return false;
}

static int area_lookup(void *u, const char *key)
{
    struct area *a = u;

    if (strcmp(key, "in/") == 0)
        return a->in_fd;
    if (strcmp(key, "out/") == 0)
        return a->out_fd;
    return -1;
}

static void test_item_crash(void)
{
    struct area a;
    struct mg_sanitize_opts o;
    struct mg_witem_ctx c;
    struct mg_witem_test_hooks h = {stop_after_commit, NULL, NULL};
    GByteArray *z = small_zip();
    char *why = NULL, *t;
    GError *e = NULL;

    area_open(&a, "item-crash");
    ctx_init(&c, &o, &a);
    put(&a, "in/書類.zip", z->data, z->len);
    mg_witem_set_test_hooks(&h);
    g_assert_cmpint(mg_witem_process(&c, &(struct mg_witem_dirs){a.in_fd, a.out_fd, "in/", "out/"},
                                     "書類.zip", &why),
                    ==, MG_WITEM_RETRY);
    mg_witem_set_test_hooks(NULL);
    g_assert_nonnull(strstr(why, "after commit"));
    g_free(why);
    /* the state a kill leaves: the folder and the report hidden */
    g_assert_cmpuint(hidden_count(&a), ==, 2);
    t = slurp(&a, "out/書類/a.txt");
    g_assert_null(t);
    /* "the next start": the journal opened again, recovery */
    mg_wjournal_close(a.j);
    a.j = mg_wjournal_open(a.state_fd, &e);
    g_assert_no_error(e);
    c.journal = a.j;
    g_assert_true(mg_witem_recover(&c, area_lookup, &a, &e));
    g_assert_no_error(e);
    g_assert_cmpuint(hidden_count(&a), ==, 0);
    t = slurp(&a, "out/書類/フォルダ/b.txt");
    g_assert_cmpstr(t, ==, "second\n");
    g_free(t);
    t = slurp(&a, "out/書類.zip.mugaika.txt");
    g_assert_nonnull(t);
    g_assert_nonnull(strstr(t, "  - 書類/フォルダ/b.txt\r\n"));
    g_free(t);
    assert_mode(&a, "out/書類/フォルダ", 0750, true);
    {
        char *p = apath(&a, "in/書類.zip");
        g_assert_false(g_file_test(p, G_FILE_TEST_EXISTS));
        g_free(p);
    }
    {
        GPtrArray *pend = mg_wjournal_pending(a.j, &e);
        g_assert_cmpuint(pend->len, ==, 0);
        g_ptr_array_unref(pend);
    }
    /* a folder left half-built by a kill before commit: removed whole */
    {
        char *tmpname = mg_fsname_temp(NULL);
        char *rel = g_build_filename("out", tmpname, "sub", "deeper", NULL);
        char *p = apath(&a, rel);
        g_assert_cmpint(g_mkdir_with_parents(p, 0700), ==, 0);
        g_free(rel);
        rel = g_build_filename("out", tmpname, "sub", "f.txt", NULL);
        put(&a, rel, "f", 1);
        g_free(rel);
        g_assert_cmpuint(hidden_count(&a), ==, 1);
        g_assert_true(mg_fs_remove_temp(a.out_fd, tmpname, &e));
        g_assert_no_error(e);
        g_assert_cmpuint(hidden_count(&a), ==, 0);
        g_free(p);
        g_free(tmpname);
    }
    area_close(&a);
    g_byte_array_unref(z);
}

/* OUT refuses every new name: immutable (as root, whom permissions do
 * not stop) or read-only; on false, back as it was. */
static void out_locked(struct area *a, bool on)
{
    if (geteuid() == 0) {
        int flags = 0;
        g_assert_cmpint(ioctl(a->out_fd, FS_IOC_GETFLAGS, &flags), ==, 0);
        flags = on ? flags | FS_IMMUTABLE_FL : flags & ~FS_IMMUTABLE_FL;
        g_assert_cmpint(ioctl(a->out_fd, FS_IOC_SETFLAGS, &flags), ==, 0);
    } else {
        g_assert_cmpint(fchmod(a->out_fd, on ? 0555 : 0755), ==, 0);
    }
}

static bool refuse_output(void *user)
{
    (void)user;
    return false;
}

static bool lock_after_commit(void *user)
{
    out_locked(user, true);
    return true;
}

/* The renames fail after the commit: the item is closed (nothing left
 * for recovery to deliver a second time), its input stays, and taken
 * again it is delivered once. */
static void test_item_rename_fails(void)
{
    struct area a;
    struct mg_sanitize_opts o;
    struct mg_witem_ctx c;
    struct mg_witem_test_hooks h = {lock_after_commit, NULL, NULL};
    struct mg_witem_dirs d;
    GPtrArray *pend;
    char *why = NULL, *t;
    GError *e = NULL;

    area_open(&a, "item-rename");
    ctx_init(&c, &o, &a);
    d = (struct mg_witem_dirs){a.in_fd, a.out_fd, "in/", "out/"};
    put(&a, "in/memo.txt", "memo\n", 5);
    h.user = &a;
    mg_witem_set_test_hooks(&h);
    g_assert_cmpint(mg_witem_process(&c, &d, "memo.txt", &why), ==, MG_WITEM_RETRY);
    mg_witem_set_test_hooks(NULL);
    out_locked(&a, false);
    g_assert_nonnull(strstr(why, "it is taken again"));
    g_free(why);
    pend = mg_wjournal_pending(a.j, &e);
    g_assert_no_error(e);
    g_assert_cmpuint(pend->len, ==, 0);
    g_ptr_array_unref(pend);
    t = slurp(&a, "in/memo.txt");
    g_assert_cmpstr(t, ==, "memo\n");
    g_free(t);
    t = slurp(&a, "out/memo.txt");
    g_assert_null(t);
    /* what the daemon's sweep does at the next start */
    {
        char *p = apath(&a, "out");
        GDir *dir = g_dir_open(p, 0, NULL);
        const char *n;
        while ((n = g_dir_read_name(dir)) != NULL)
            if (mg_fsname_is_temp(n))
                g_assert_true(mg_fs_remove_temp(a.out_fd, n, NULL));
        g_dir_close(dir);
        g_free(p);
    }
    g_assert_cmpint(mg_witem_process(&c, &d, "memo.txt", &why), ==, MG_WITEM_DONE);
    g_free(why);
    t = slurp(&a, "out/memo.txt");
    g_assert_cmpstr(t, ==, "memo\n");
    g_free(t);
    t = slurp(&a, "out/memo (2).txt");
    g_assert_null(t);
    g_assert_cmpuint(hidden_count(&a), ==, 0);

    /* an output OUT would not take (a full disk, an I/O error): a
     * temporary failure, not a failed file; the input stays, no report,
     * and it is delivered once OUT takes files again */
    put(&a, "in/next.txt", "next\n", 5);
    h = (struct mg_witem_test_hooks){NULL, refuse_output, NULL};
    mg_witem_set_test_hooks(&h);
    g_assert_cmpint(mg_witem_process(&c, &d, "next.txt", &why), ==, MG_WITEM_RETRY);
    mg_witem_set_test_hooks(NULL);
    g_assert_nonnull(strstr(why, "refused (test)"));
    g_free(why);
    t = slurp(&a, "in/next.txt");
    g_assert_cmpstr(t, ==, "next\n");
    g_free(t);
    t = slurp(&a, "out/next.txt.mugaika.txt");
    g_assert_null(t);
    g_assert_cmpuint(hidden_count(&a), ==, 0);
    g_assert_cmpint(mg_witem_process(&c, &d, "next.txt", &why), ==, MG_WITEM_DONE);
    g_free(why);
    t = slurp(&a, "out/next.txt");
    g_assert_cmpstr(t, ==, "next\n");
    g_free(t);
    area_close(&a);
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
    g_test_add_func("/watch/file/layout", test_layout);
    g_test_add_func("/watch/file/layout-errors", test_layout_errors);
    g_test_add_func("/watch/item/folder", test_item_folder);
    g_test_add_func("/watch/item/owner", test_item_owner);
    g_test_add_func("/watch/item/threads", test_item_threads);
    g_test_add_func("/watch/item/crash-after-commit", test_item_crash);
    g_test_add_func("/watch/item/rename-fails", test_item_rename_fails);
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
