/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * NAME
 *	test_av 1
 * SUMMARY
 *	unit tests of the libclamav module (src/av/av.c)
 * DESCRIPTION
 *	Runs $MUGAIKA_MAKE_TESTDB (tests/av/make-testdb) into a fresh
 *	temporary directory, opens one engine on it and scans: EICAR as a
 *	buffer, as a descriptor and through a read function, the EICAR zip of $MUGAIKA_SHARED,
 *	clam.exe (hash signature), clean data, a mail with a base64 EICAR
 *	attachment, nested zips past the recursion limit; from one thread
 *	and from four at once. Pictures are hashed (libclamav's image
 *	fuzzy hash) only with a database that has such signatures: one is
 *	made with sigtool for a corpus photo; the search for them is tried
 *	on containers (gzip or not), a tag across two reads and broken
 *	files. Inner files a scan found clean are skipped by a later scan
 *	that asks for it, never the outer content, a changed file or an
 *	infected one. Clean outer contents are remembered per engine, by
 *	their bytes and the options, never an infection, a shallow scan's
 *	answer for a full scan, a picture not hashed for one hashed, or the
 *	answer of a scan that skipped inner files. Broken databases and
 *	descriptors must give errors, never a clean verdict. $TMPDIR points
 *	at an empty directory of the test's own, which must be empty again
 *	at the end. Every missing prerequisite is a failure, not a skip.
 */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include <glib.h>
#include <glib/gstdio.h>
#include <zlib.h>

#include <mugaika/av.h>

#define EICAR_NAME   "Mugaika.Test.EICAR"
#define CLAMEXE_NAME "Mugaika.Test.ClamExe"
#define CLAMEXE_PATH "/usr/share/clamav-testfiles/clam.exe"
#define LIMIT_PREFIX "Heuristics.Limits.Exceeded."

static char *dbdir;      /* made by make-testdb */
static char *workdir;    /* files the tests write */
static char *scantmp;    /* $TMPDIR for libclamav */
static struct mg_av *av; /* shared engine */
static GBytes *eicar;
static GBytes *eicar_zip;

/* The EICAR test string, built at run time from pieces. */
static GBytes *make_eicar(void)
{
    char *s = g_strconcat("X5O!P%@AP[4\\PZX54(P^)7CC)7}$", "EICAR-STANDARD-", "ANTIVIRUS-TEST-",
                          "FILE!$H+H*", NULL);

    g_assert_cmpuint(strlen(s), ==, 68);
    return g_bytes_new_take(s, strlen(s));
}

static GBytes *read_file(const char *path)
{
    GError *err = NULL;
    char *data = NULL;
    gsize len = 0;

    if (!g_file_get_contents(path, &data, &len, &err))
        g_error("cannot read %s: %s", path, err->message);
    return g_bytes_new_take(data, len);
}

static char *write_work_file(const char *name, const void *data, size_t len)
{
    char *path = g_build_filename(workdir, name, NULL);
    GError *err = NULL;

    if (!g_file_set_contents(path, data, (gssize)len, &err))
        g_error("cannot write %s: %s", path, err->message);
    return path;
}

/* --- a minimal stored-zip writer (for nesting tests) --- */

static void put16(GByteArray *a, unsigned v)
{
    guint8 b[2] = {v & 0xff, (v >> 8) & 0xff};

    g_byte_array_append(a, b, 2);
}

static void put32(GByteArray *a, guint32 v)
{
    guint8 b[4] = {v & 0xff, (v >> 8) & 0xff, (v >> 16) & 0xff, (v >> 24) & 0xff};

    g_byte_array_append(a, b, 4);
}

/* A zip archive with one stored member. */
static GBytes *zip_one(const char *name, GBytes *member)
{
    GByteArray *a = g_byte_array_new();
    gsize len = 0;
    const guint8 *data = g_bytes_get_data(member, &len);
    guint32 crc = (guint32)crc32(crc32(0, Z_NULL, 0), data, (uInt)len);
    unsigned nlen = (unsigned)strlen(name);
    guint32 cd_off;
    guint32 cd_size;

    put32(a, 0x04034b50); /* local file header */
    put16(a, 20);
    put16(a, 0);
    put16(a, 0); /* stored */
    put16(a, 0);
    put16(a, 0x21);
    put32(a, crc);
    put32(a, (guint32)len);
    put32(a, (guint32)len);
    put16(a, nlen);
    put16(a, 0);
    g_byte_array_append(a, (const guint8 *)name, nlen);
    g_byte_array_append(a, data, (guint)len);

    cd_off = a->len;
    put32(a, 0x02014b50); /* central directory header */
    put16(a, 20);
    put16(a, 20);
    put16(a, 0);
    put16(a, 0);
    put16(a, 0);
    put16(a, 0x21);
    put32(a, crc);
    put32(a, (guint32)len);
    put32(a, (guint32)len);
    put16(a, nlen);
    put16(a, 0);
    put16(a, 0);
    put16(a, 0);
    put16(a, 0);
    put32(a, 0);
    put32(a, 0);
    g_byte_array_append(a, (const guint8 *)name, nlen);
    cd_size = a->len - cd_off;

    put32(a, 0x06054b50); /* end of central directory */
    put16(a, 0);
    put16(a, 0);
    put16(a, 1);
    put16(a, 1);
    put32(a, cd_size);
    put32(a, cd_off);
    put16(a, 0);
    return g_byte_array_free_to_bytes(a);
}

/* member wrapped in depth nested zip archives. */
static GBytes *zip_nested(GBytes *member, unsigned depth)
{
    GBytes *cur = g_bytes_ref(member);

    for (unsigned i = 0; i < depth; i++) {
        GBytes *next = zip_one(i == 0 ? "payload.bin" : "inner.zip", cur);

        g_bytes_unref(cur);
        cur = next;
    }
    return cur;
}

/* An RFC 822 message with body as a base64 attachment. */
static GBytes *make_mail(GBytes *body)
{
    gsize len = 0;
    const guint8 *data = g_bytes_get_data(body, &len);
    char *b64 = g_base64_encode(data, len);
    char *mail = g_strconcat("From: a@example.org\r\n"
                             "To: b@example.org\r\n"
                             "Subject: test\r\n"
                             "Message-ID: <t1@example.org>\r\n"
                             "MIME-Version: 1.0\r\n"
                             "Content-Type: multipart/mixed; boundary=\"b1\"\r\n"
                             "\r\n"
                             "--b1\r\n"
                             "Content-Type: text/plain; charset=us-ascii\r\n"
                             "\r\n"
                             "see the attachment\r\n"
                             "--b1\r\n"
                             "Content-Type: application/octet-stream; name=\"a.com\"\r\n"
                             "Content-Disposition: attachment; filename=\"a.com\"\r\n"
                             "Content-Transfer-Encoding: base64\r\n"
                             "\r\n",
                             b64,
                             "\r\n"
                             "--b1--\r\n",
                             NULL);

    g_free(b64);
    return g_bytes_new_take(mail, strlen(mail));
}

/* --- verdict helpers --- */

static enum mg_av_verdict scan_bytes(struct mg_av *e, GBytes *b, char **name, GError **err)
{
    gsize len = 0;
    const void *data = g_bytes_get_data(b, &len);

    return mg_av_scan_buffer(e, data, len, name, err);
}

/* The helpers take name and err by address: the scan call among their
 * arguments must have run before they are read. */
static void assert_infected(enum mg_av_verdict v, char **namep, GError **errp, const char *prefix)
{
    char *name = *namep;
    GError *err = *errp;

    *namep = NULL;
    if (err != NULL)
        g_test_message("unexpected error: %s", err->message);
    g_assert_no_error(err);
    g_assert_cmpint(v, ==, MG_AV_INFECTED);
    g_assert_nonnull(name);
    if (!g_str_has_prefix(name, prefix))
        g_error("virus name %s does not start with %s", name, prefix);
    g_free(name);
}

static void assert_clean(enum mg_av_verdict v, char **namep, GError **errp)
{
    char *name = *namep;
    GError *err = *errp;

    g_assert_no_error(err);
    g_assert_null(name);
    g_assert_cmpint(v, ==, MG_AV_CLEAN);
}

static void assert_failed(enum mg_av_verdict v, char **namep, GError **errp)
{
    char *name = *namep;
    GError *err = *errp;

    *errp = NULL;
    g_assert_cmpint(v, ==, MG_AV_FAILED);
    g_assert_null(name);
    g_assert_error(err, MG_AV_ERROR, MG_AV_ERROR_ENGINE);
    g_assert_cmpstr(err->message, !=, "");
    g_test_message("error as expected: %s", err->message);
    g_error_free(err);
}

/* --- tests --- */

static void test_open(void)
{
    GError *err = NULL;
    gint64 t0 = g_get_monotonic_time();
    struct mg_av *e = mg_av_open(dbdir, &err);
    gint64 t1 = g_get_monotonic_time();

    g_assert_no_error(err);
    g_assert_nonnull(e);
    g_assert_cmpuint(mg_av_signatures(e), ==, 2);
    g_assert_nonnull(mg_av_version());
    g_assert_cmpstr(mg_av_version(), !=, "");
    g_test_message("mg_av_open(test db): %.1f ms; libclamav %s", (double)(t1 - t0) / 1000.0,
                   mg_av_version());
    mg_av_unref(e);
}

static void test_eicar_buffer(void)
{
    GError *err = NULL;
    char *name = NULL;

    assert_infected(scan_bytes(av, eicar, &name, &err), &name, &err, EICAR_NAME);
    /* EICAR inside other bytes is still found (body signature, offset *) */
    {
        GByteArray *a = g_byte_array_new();
        GBytes *b;

        g_byte_array_append(a, (const guint8 *)"leading text\n", 13);
        g_byte_array_append(a, g_bytes_get_data(eicar, NULL), (guint)g_bytes_get_size(eicar));
        b = g_byte_array_free_to_bytes(a);
        assert_infected(scan_bytes(av, b, &name, &err), &name, &err, EICAR_NAME);
        g_bytes_unref(b);
    }
}

static void test_eicar_fd(void)
{
    char *path =
        write_work_file("eicar.com", g_bytes_get_data(eicar, NULL), g_bytes_get_size(eicar));
    GError *err = NULL;
    char *name = NULL;
    int fd = g_open(path, O_RDONLY, 0);

    g_assert_cmpint(fd, >=, 0);
    assert_infected(mg_av_scan_fd(av, fd, &name, &err), &name, &err, EICAR_NAME);
    g_assert_cmpint(lseek(fd, 0, SEEK_CUR), ==, 0);

    /* the fd's offset is neither used nor moved */
    g_assert_cmpint(lseek(fd, 10, SEEK_SET), ==, 10);
    assert_infected(mg_av_scan_fd(av, fd, &name, &err), &name, &err, EICAR_NAME);
    g_assert_cmpint(lseek(fd, 0, SEEK_CUR), ==, 10);

    g_assert_cmpint(lseek(fd, 0, SEEK_END), ==, 68);
    assert_infected(mg_av_scan_fd(av, fd, &name, &err), &name, &err, EICAR_NAME);
    g_assert_cmpint(lseek(fd, 0, SEEK_CUR), ==, 68);

    /* NULL virname is allowed */
    g_assert_cmpint(mg_av_scan_fd(av, fd, NULL, NULL), ==, MG_AV_INFECTED);
    close(fd);
    g_free(path);
}

static void test_eicar_zip(void)
{
    char *path = g_build_filename(g_getenv("MUGAIKA_SHARED"), "corpus", "eicar", "eicar.zip", NULL);
    GError *err = NULL;
    char *name = NULL;
    int fd;

    /* the archive does not hold the plain string: only unpacking finds it */
    g_assert_null(g_strstr_len(g_bytes_get_data(eicar_zip, NULL),
                               (gssize)g_bytes_get_size(eicar_zip), "EICAR-STANDARD"));
    assert_infected(scan_bytes(av, eicar_zip, &name, &err), &name, &err, EICAR_NAME);
    fd = g_open(path, O_RDONLY, 0);
    g_assert_cmpint(fd, >=, 0);
    assert_infected(mg_av_scan_fd(av, fd, &name, &err), &name, &err, EICAR_NAME);
    close(fd);
    g_free(path);
}

static void test_clamexe(void)
{
    GBytes *b = read_file(CLAMEXE_PATH);
    GError *err = NULL;
    char *name = NULL;
    int fd;

    assert_infected(scan_bytes(av, b, &name, &err), &name, &err, CLAMEXE_NAME);
    fd = g_open(CLAMEXE_PATH, O_RDONLY, 0);
    g_assert_cmpint(fd, >=, 0);
    assert_infected(mg_av_scan_fd(av, fd, &name, &err), &name, &err, CLAMEXE_NAME);
    close(fd);
    g_bytes_unref(b);
}

static void test_clean(void)
{
    static const char text[] = "Dear colleague,\nplease find the minutes attached.\n";
    char *path = write_work_file("clean.txt", text, sizeof(text) - 1);
    char *empty = write_work_file("empty", "", 0);
    GError *err = NULL;
    char *name = NULL;
    int fd;

    assert_clean(mg_av_scan_buffer(av, text, sizeof(text) - 1, &name, &err), &name, &err);
    assert_clean(mg_av_scan_buffer(av, "", 0, &name, &err), &name, &err);
    assert_clean(mg_av_scan_buffer(av, NULL, 0, &name, &err), &name, &err);
    fd = g_open(path, O_RDONLY, 0);
    g_assert_cmpint(fd, >=, 0);
    assert_clean(mg_av_scan_fd(av, fd, &name, &err), &name, &err);
    close(fd);
    fd = g_open(empty, O_RDONLY, 0);
    g_assert_cmpint(fd, >=, 0);
    assert_clean(mg_av_scan_fd(av, fd, &name, &err), &name, &err);
    close(fd);
    g_free(path);
    g_free(empty);
}

static void test_mail(void)
{
    GBytes *bad = make_mail(eicar);
    GBytes *plain = g_bytes_new_static("hello world, nothing to see\n", 28);
    GBytes *good = make_mail(plain);
    GError *err = NULL;
    char *name = NULL;

    g_assert_null(
        g_strstr_len(g_bytes_get_data(bad, NULL), (gssize)g_bytes_get_size(bad), "EICAR-STANDARD"));
    assert_infected(scan_bytes(av, bad, &name, &err), &name, &err, EICAR_NAME);
    assert_clean(scan_bytes(av, good, &name, &err), &name, &err);
    g_bytes_unref(bad);
    g_bytes_unref(good);
    g_bytes_unref(plain);
}

static void test_nested(void)
{
    GBytes *plain = g_bytes_new_static("just some text\n", 15);
    GBytes *b;
    GError *err = NULL;
    char *name = NULL;

    /* shallow nesting: unpacked all the way down */
    b = zip_nested(eicar, 3);
    assert_infected(scan_bytes(av, b, &name, &err), &name, &err, EICAR_NAME);
    g_bytes_unref(b);
    b = zip_nested(plain, 3);
    assert_clean(scan_bytes(av, b, &name, &err), &name, &err);
    g_bytes_unref(b);

    /* past the recursion limit: never clean */
    b = zip_nested(plain, 40);
    assert_infected(scan_bytes(av, b, &name, &err), &name, &err, LIMIT_PREFIX "MaxRecursion");
    g_bytes_unref(b);
    b = zip_nested(eicar, 40);
    g_assert_cmpint(scan_bytes(av, b, &name, &err), ==, MG_AV_INFECTED);
    g_assert_no_error(err);
    g_test_message("40 deep EICAR: %s", name);
    g_free(name);
    g_bytes_unref(b);
    g_bytes_unref(plain);
}

/* --- broken databases --- */

static void assert_no_db(const char *dir, const char *what)
{
    GError *err = NULL;
    struct mg_av *e = mg_av_open(dir, &err);

    g_assert_null(e);
    g_assert_error(err, MG_AV_ERROR, MG_AV_ERROR_NO_DATABASE);
    g_test_message("%s: %s", what, err->message);
    if (strstr(err->message, dir) == NULL)
        g_error("message does not name %s: %s", dir, err->message);
    if (strstr(err->message, "freshclam") == NULL)
        g_error("message has no hint: %s", err->message);
    g_error_free(err);
}

static void test_bad_db(void)
{
    char *missing = g_build_filename(workdir, "no-such-dir", NULL);
    char *empty = g_build_filename(workdir, "empty-db", NULL);
    char *garbage = g_build_filename(workdir, "garbage-db", NULL);
    char *other = g_build_filename(workdir, "other-db", NULL);
    char *file = g_build_filename(workdir, "plain-file", NULL);
    char *nosigs = g_build_filename(workdir, "ignore-only-db", NULL);
    char *p;

    g_assert_cmpint(g_mkdir(empty, 0700), ==, 0);
    g_assert_cmpint(g_mkdir(garbage, 0700), ==, 0);
    g_assert_cmpint(g_mkdir(other, 0700), ==, 0);
    p = g_build_filename(garbage, "bad.ndb", NULL);
    g_assert_true(g_file_set_contents(p, "this is not a signature\n\x01\x02\n", -1, NULL));
    g_free(p);
    p = g_build_filename(other, "README.txt", NULL);
    g_assert_true(g_file_set_contents(p, "no signatures here\n", -1, NULL));
    g_free(p);
    g_assert_true(g_file_set_contents(file, "x\n", -1, NULL));
    /* loads without error, but with no signature */
    g_assert_cmpint(g_mkdir(nosigs, 0700), ==, 0);
    p = g_build_filename(nosigs, "local.ign2", NULL);
    g_assert_true(g_file_set_contents(p, "Some.Signature.Name\n", -1, NULL));
    g_free(p);

    assert_no_db(missing, "missing");
    assert_no_db(empty, "empty");
    assert_no_db(garbage, "garbage");
    assert_no_db(other, "no signature files");
    assert_no_db(file, "regular file");
    assert_no_db(nosigs, "ignore list only");

    g_free(missing);
    g_free(empty);
    g_free(garbage);
    g_free(other);
    g_free(file);
    g_free(nosigs);
}

/* --- broken descriptors --- */

static void test_bad_fd(void)
{
    char *path = write_work_file("closed", g_bytes_get_data(eicar, NULL), 68);
    GError *err = NULL;
    char *name = NULL;
    int fds[2];
    int fd = g_open(path, O_RDONLY, 0);

    g_assert_cmpint(fd, >=, 0);
    close(fd);
    assert_failed(mg_av_scan_fd(av, fd, &name, &err), &name, &err);
    assert_failed(mg_av_scan_fd(av, -1, &name, &err), &name, &err);

    fd = g_open(workdir, O_RDONLY | O_DIRECTORY, 0);
    g_assert_cmpint(fd, >=, 0);
    assert_failed(mg_av_scan_fd(av, fd, &name, &err), &name, &err);
    close(fd);

    /* a pipe has no offset 0 to scan from */
    g_assert_cmpint(pipe(fds), ==, 0);
    g_assert_cmpint(write(fds[1], g_bytes_get_data(eicar, NULL), 68), ==, 68);
    assert_failed(mg_av_scan_fd(av, fds[0], &name, &err), &name, &err);
    close(fds[0]);
    close(fds[1]);

    /* descriptors that cannot be read: pread fails */
    fd = g_open(path, O_WRONLY, 0);
    g_assert_cmpint(fd, >=, 0);
    assert_failed(mg_av_scan_fd(av, fd, &name, &err), &name, &err);
    close(fd);
    fd = g_open(path, O_PATH, 0);
    g_assert_cmpint(fd, >=, 0);
    assert_failed(mg_av_scan_fd(av, fd, &name, &err), &name, &err);
    close(fd);
    g_free(path);
    /* a tiny file, which libclamav itself would not even read */
    path = write_work_file("tiny", "x", 1);
    fd = g_open(path, O_WRONLY, 0);
    g_assert_cmpint(fd, >=, 0);
    assert_failed(mg_av_scan_fd(av, fd, &name, &err), &name, &err);
    close(fd);
    g_free(path);
}

/* --- scanning through a read function --- */

struct reader {
    GBytes *data;
    size_t chunk;     /* at most this many bytes per call */
    uint64_t fail_at; /* fail (-1) for reads at or past this offset */
    uint64_t end_at;  /* report the end (0) at this offset */
    gboolean too_much;
    unsigned calls;
};

static gssize reader_fn(void *handle, void *buf, size_t len, uint64_t off)
{
    struct reader *r = handle;
    gsize size = 0;
    const guint8 *data = g_bytes_get_data(r->data, &size);
    size_t n;

    r->calls++;
    if (off >= r->fail_at) {
        errno = EIO;
        return -1;
    }
    if (off >= r->end_at || off >= size)
        return 0;
    n = MIN(len, r->chunk);
    if (n > size - off)
        n = size - (size_t)off;
    memcpy(buf, data + off, n);
    return r->too_much ? (gssize)len + 1 : (gssize)n;
}

static struct reader reader_of(GBytes *b)
{
    return (struct reader){b, 7, G_MAXUINT64, G_MAXUINT64, FALSE, 0};
}

static void test_pread(void)
{
    GBytes *mail = make_mail(eicar);
    GByteArray *a = g_byte_array_new();
    GBytes *big;
    struct reader r;
    GError *err = NULL;
    char *name = NULL;

    for (unsigned i = 0; i < 2000; i++)
        g_byte_array_append(a, (const guint8 *)"a clean line of text\n", 21);
    big = g_byte_array_free_to_bytes(a);

    /* short reads of 7 bytes are put together */
    r = reader_of(eicar_zip);
    assert_infected(mg_av_scan_pread(av, g_bytes_get_size(eicar_zip), reader_fn, &r, &name, &err),
                    &name, &err, EICAR_NAME);
    g_assert_cmpuint(r.calls, >, 1);
    r = reader_of(mail);
    assert_infected(mg_av_scan_pread(av, g_bytes_get_size(mail), reader_fn, &r, &name, &err), &name,
                    &err, EICAR_NAME);
    r = reader_of(big);
    assert_clean(mg_av_scan_pread(av, g_bytes_get_size(big), reader_fn, &r, &name, &err), &name,
                 &err);
    r = reader_of(big);
    assert_clean(mg_av_scan_pread(av, 0, reader_fn, &r, &name, &err), &name, &err);

    /* a read error past the first page: libclamav alone would say clean */
    r = reader_of(big);
    r.fail_at = 20000;
    assert_failed(mg_av_scan_pread(av, g_bytes_get_size(big), reader_fn, &r, &name, &err), &name,
                  &err);
    /* the content ends before its announced size */
    r = reader_of(big);
    r.end_at = 20000;
    assert_failed(mg_av_scan_pread(av, g_bytes_get_size(big), reader_fn, &r, &name, &err), &name,
                  &err);
    /* the first byte cannot be read */
    r = reader_of(eicar);
    r.fail_at = 0;
    assert_failed(mg_av_scan_pread(av, 68, reader_fn, &r, &name, &err), &name, &err);
    /* a reader that claims more than it was asked for */
    r = reader_of(big);
    r.too_much = TRUE;
    assert_failed(mg_av_scan_pread(av, g_bytes_get_size(big), reader_fn, &r, &name, &err), &name,
                  &err);

    g_bytes_unref(big);
    g_bytes_unref(mail);
}

/* --- threads --- */

struct mix_case {
    GBytes *data;
    enum mg_av_verdict want;
    const char *prefix;
};

static struct mix_case mix[5];
static gint mix_bad;
static gint mix_done;

#define THREADS    4
#define ITERATIONS 40

static gpointer mix_thread(gpointer data)
{
    guint seed = GPOINTER_TO_UINT(data);

    for (unsigned i = 0; i < ITERATIONS; i++) {
        const struct mix_case *c = &mix[(seed + i) % G_N_ELEMENTS(mix)];
        GError *err = NULL;
        char *name = NULL;
        enum mg_av_verdict v = scan_bytes(av, c->data, &name, &err);

        if (v != c->want || (c->prefix != NULL && !g_str_has_prefix(name, c->prefix)) ||
            (c->prefix == NULL && name != NULL) || err != NULL)
            g_atomic_int_inc(&mix_bad);
        g_atomic_int_inc(&mix_done);
        g_free(name);
        g_clear_error(&err);
    }
    return NULL;
}

static void test_threads(void)
{
    GThread *t[THREADS];
    GBytes *plain = g_bytes_new_static("nothing here\n", 13);

    mix[0] = (struct mix_case){g_bytes_ref(eicar), MG_AV_INFECTED, EICAR_NAME};
    mix[1] = (struct mix_case){g_bytes_ref(eicar_zip), MG_AV_INFECTED, EICAR_NAME};
    mix[2] = (struct mix_case){read_file(CLAMEXE_PATH), MG_AV_INFECTED, CLAMEXE_NAME};
    mix[3] = (struct mix_case){make_mail(plain), MG_AV_CLEAN, NULL};
    mix[4] = (struct mix_case){make_mail(eicar), MG_AV_INFECTED, EICAR_NAME};

    for (unsigned i = 0; i < THREADS; i++)
        t[i] = g_thread_new("scan", mix_thread, GUINT_TO_POINTER(i));
    for (unsigned i = 0; i < THREADS; i++)
        g_thread_join(t[i]);
    g_assert_cmpint(g_atomic_int_get(&mix_done), ==, THREADS * ITERATIONS);
    g_assert_cmpint(g_atomic_int_get(&mix_bad), ==, 0);
    for (unsigned i = 0; i < G_N_ELEMENTS(mix); i++)
        g_bytes_unref(mix[i].data);
    g_bytes_unref(plain);
}

/* --- reference counting --- */

static void test_refcount(void)
{
    GError *err = NULL;
    struct mg_av *e = mg_av_open(dbdir, &err);
    char *name = NULL;

    g_assert_no_error(err);
    g_assert_true(mg_av_ref(e) == e);
    mg_av_unref(e);
    /* one reference left: still usable */
    assert_infected(scan_bytes(e, eicar, &name, &err), &name, &err, EICAR_NAME);
    mg_av_unref(e); /* frees; ASan's leak check proves it */
    mg_av_unref(NULL);
}

/* --- temporary files --- */

static void test_tmp_clean(void)
{
    GDir *d = g_dir_open(scantmp, 0, NULL);
    const char *n;
    unsigned left = 0;

    g_assert_nonnull(d);
    while ((n = g_dir_read_name(d)) != NULL) {
        g_test_message("left behind in TMPDIR: %s", n);
        left++;
    }
    g_dir_close(d);
    g_assert_cmpuint(left, ==, 0);
}

/* Runs make-testdb into a fresh directory. */
static void make_db(void)
{
    const char *script = g_getenv("MUGAIKA_MAKE_TESTDB");
    const char *argv[3];
    GError *err = NULL;
    int status = 0;

    if (script == NULL)
        g_error("MUGAIKA_MAKE_TESTDB is not set (run the test through meson)");
    argv[0] = script;
    argv[1] = dbdir;
    argv[2] = NULL;
    if (!g_spawn_sync(NULL, (char **)argv, NULL, G_SPAWN_DEFAULT, NULL, NULL, NULL, NULL, &status,
                      &err))
        g_error("cannot run %s: %s", script, err->message);
    if (!g_spawn_check_wait_status(status, &err))
        g_error("%s %s failed: %s", script, dbdir, err->message);
}

static void rm_rf(const char *path)
{
    GDir *d = g_dir_open(path, 0, NULL);
    const char *n;

    if (d != NULL) {
        while ((n = g_dir_read_name(d)) != NULL) {
            char *p = g_build_filename(path, n, NULL);

            rm_rf(p);
            g_free(p);
        }
        g_dir_close(d);
        g_rmdir(path);
    } else {
        g_unlink(path);
    }
}

/* --- image fuzzy hashes ------------------------------------------------ */

/* A one-file ustar archive of name with data. */
static GByteArray *tar_one(const char *name, const void *data, size_t len)
{
    GByteArray *a = g_byte_array_new();
    guint8 h[512];
    unsigned sum = 0;
    static const guint8 zero[1024];

    memset(h, 0, sizeof h);
    g_strlcpy((char *)h, name, 100);
    memcpy(h + 100, "0000644", 8);
    memcpy(h + 108, "0000000", 8);
    memcpy(h + 116, "0000000", 8);
    g_snprintf((char *)h + 124, 12, "%011zo", len);
    memcpy(h + 136, "00000000000", 12);
    memset(h + 148, ' ', 8);
    h[156] = '0';
    memcpy(h + 257, "ustar", 6);
    memcpy(h + 263, "00", 2);
    for (size_t i = 0; i < sizeof h; i++)
        sum += h[i];
    g_snprintf((char *)h + 148, 8, "%06o", sum);
    g_byte_array_append(a, h, sizeof h);
    g_byte_array_append(a, data, (guint)len);
    g_byte_array_append(a, zero, (guint)((512 - len % 512) % 512));
    g_byte_array_append(a, zero, sizeof zero);
    return a;
}

static GByteArray *gzip_bytes(const guint8 *data, size_t len)
{
    GByteArray *a = g_byte_array_new();
    z_stream z;
    guint8 buf[16384];
    int rc;

    memset(&z, 0, sizeof z);
    g_assert_cmpint(deflateInit2(&z, 6, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY), ==,
                    Z_OK);
    z.next_in = (Bytef *)data;
    z.avail_in = (uInt)len;
    do {
        z.next_out = buf;
        z.avail_out = sizeof buf;
        rc = deflate(&z, Z_FINISH);
        g_byte_array_append(a, buf, (guint)(sizeof buf - z.avail_out));
    } while (rc == Z_OK);
    g_assert_cmpint(rc, ==, Z_STREAM_END);
    deflateEnd(&z);
    return a;
}

/* A container as libclamav's .cvd/.cld: a 512-byte header, then the tar,
 * gzip-compressed or not. */
static void write_container(const char *dir, const char *name, const char *ldb, gboolean gz)
{
    GByteArray *tar = tar_one("test.ldb", ldb, strlen(ldb));
    GByteArray *body = gz ? gzip_bytes(tar->data, tar->len) : NULL;
    GByteArray *f = g_byte_array_new();
    guint8 hdr[512];
    char *path = g_build_filename(dir, name, NULL);
    GError *err = NULL;

    memset(hdr, ' ', sizeof hdr);
    memcpy(hdr, "ClamAV-VDB:01 Jan 2026 00-00 +0000:1:1:150:x:x:test:0", 53);
    g_byte_array_append(f, hdr, sizeof hdr);
    if (gz)
        g_byte_array_append(f, body->data, body->len);
    else
        g_byte_array_append(f, tar->data, tar->len);
    g_file_set_contents(path, (const char *)f->data, f->len, &err);
    g_assert_no_error(err);
    g_byte_array_unref(tar);
    if (body != NULL)
        g_byte_array_unref(body);
    g_byte_array_unref(f);
    g_free(path);
}

static char *probe_dir(const char *name)
{
    char *d = g_build_filename(workdir, name, NULL);

    g_assert_cmpint(g_mkdir(d, 0700), ==, 0);
    return d;
}

/* The fuzzy hash of a picture, by sigtool (clamav package). */
static char *fuzzy_hash_of(const char *path)
{
    char *argv[] = {(char *)"sigtool", (char *)"--fuzzy-img", (char *)path, NULL};
    char *out = NULL, *colon, *hash;
    GError *err = NULL;
    int status;

    if (!g_spawn_sync(NULL, argv, NULL, G_SPAWN_SEARCH_PATH | G_SPAWN_STDERR_TO_DEV_NULL, NULL,
                      NULL, &out, NULL, &status, &err))
        g_error("cannot run sigtool (package clamav): %s", err->message);
    g_assert_true(g_spawn_check_wait_status(status, NULL));
    colon = strrchr(out, ':');
    g_assert_nonnull(colon);
    hash = g_strstrip(g_strdup(colon + 1));
    g_assert_cmpuint(strlen(hash), ==, 16);
    g_free(out);
    return hash;
}

#define FUZZY_NAME "Mugaika.Test.FuzzyImg"

static void test_image_hash(void)
{
    const char *shared = g_getenv("MUGAIKA_SHARED");
    char *photo = g_build_filename(shared, "corpus", "gmime", "encodings", "photo.jpg", NULL);
    GBytes *jpg = read_file(photo);
    char *hash = fuzzy_hash_of(photo);
    char *ldb = g_strdup_printf(FUZZY_NAME ";Engine:150-255,Target:0;0;fuzzy_img#%s#0\n", hash);
    char *dir = probe_dir("fuzzy-db");
    char *path = g_build_filename(dir, "fuzzy.ldb", NULL);
    GError *err = NULL;
    char *name = NULL;
    struct mg_av *e;
    gsize len;
    const void *data = g_bytes_get_data(jpg, &len);

    /* the test database has no image signature: no picture is hashed */
    g_assert_false(mg_av_image_hash(av));
    g_assert_false(mg_av_dir_has_image_sigs(dbdir));
    g_assert_cmpint(mg_av_scan_buffer(av, data, len, &name, &err), ==, MG_AV_CLEAN);
    g_assert_no_error(err);

    g_file_set_contents(path, ldb, -1, &err);
    g_assert_no_error(err);
    e = mg_av_open(dir, &err);
    g_assert_no_error(err);
    g_assert_true(mg_av_image_hash(e));
    /* the hash is computed and matched, as a picture and inside a mail */
    g_assert_cmpint(mg_av_scan_buffer(e, data, len, &name, &err), ==, MG_AV_INFECTED);
    g_assert_no_error(err);
    g_assert_true(g_str_has_prefix(name, FUZZY_NAME));
    g_clear_pointer(&name, g_free);
    /* through a descriptor (read through a handle by libclamav) too */
    {
        char *copy = write_work_file("photo.jpg", data, len);
        int fd = open(copy, O_RDONLY | O_CLOEXEC);

        g_assert_cmpint(fd, >=, 0);
        g_assert_cmpint(mg_av_scan_fd(e, fd, &name, &err), ==, MG_AV_INFECTED);
        g_assert_no_error(err);
        g_assert_true(g_str_has_prefix(name, FUZZY_NAME));
        g_clear_pointer(&name, g_free);
        close(fd);
        g_free(copy);
    }
    /* the flag turns it off for one scan */
    g_assert_cmpint(mg_av_scan_buffer_flags(e, data, len, MG_AV_SCAN_NO_IMAGE_HASH, &name, &err),
                    ==, MG_AV_CLEAN);
    g_assert_no_error(err);
    g_assert_null(name);
    /* and that clean answer, remembered, is not one for a scan that
     * hashes pictures */
    g_assert_cmpint(mg_av_scan_buffer_flags(e, data, len, MG_AV_SCAN_NO_IMAGE_HASH, &name, &err),
                    ==, MG_AV_CLEAN);
    g_assert_cmpuint(mg_av_cache_hits(e), ==, 1);
    g_assert_cmpint(mg_av_scan_buffer(e, data, len, &name, &err), ==, MG_AV_INFECTED);
    g_assert_no_error(err);
    g_clear_pointer(&name, g_free);
    g_assert_cmpuint(mg_av_cache_hits(e), ==, 1);
    mg_av_unref(e);

    g_bytes_unref(jpg);
    g_free(photo);
    g_free(hash);
    g_free(ldb);
    g_free(dir);
    g_free(path);
}

/* The search of the database directory itself. */
static void test_image_probe(void)
{
    const char *tag_ldb = "X.Test;Engine:150-255,Target:0;0;fuzzy_img#0011223344556677#0\n";
    const char *plain_ldb = "X.Test;Engine:150-255,Target:0;0;41424344\n";
    char *d, *path, *big;
    GError *err = NULL;
    size_t n = 256 * 1024 + 100;

    /* in a gzip-compressed container, and not */
    d = probe_dir("probe-cvd");
    write_container(d, "daily.cld", plain_ldb, TRUE);
    g_assert_false(mg_av_dir_has_image_sigs(d));
    write_container(d, "main.cvd", tag_ldb, TRUE);
    g_assert_true(mg_av_dir_has_image_sigs(d));
    g_free(d);
    d = probe_dir("probe-tar");
    write_container(d, "daily.cld", plain_ldb, FALSE);
    g_assert_false(mg_av_dir_has_image_sigs(d));
    write_container(d, "bytecode.cud", tag_ldb, FALSE);
    g_assert_true(mg_av_dir_has_image_sigs(d));
    g_free(d);

    /* across the boundary of two reads of a plain file */
    d = probe_dir("probe-split");
    big = g_malloc(n);
    memset(big, 'a', n);
    memcpy(big + 256 * 1024 - 4, "fuzzy_img#", 10);
    path = g_build_filename(d, "split.ldb", NULL);
    g_file_set_contents(path, big, (gssize)n, &err);
    g_assert_no_error(err);
    g_assert_true(mg_av_dir_has_image_sigs(d));
    /* one byte off is no tag */
    big[256 * 1024 - 4] = 'F';
    g_file_set_contents(path, big, (gssize)n, &err);
    g_assert_no_error(err);
    g_assert_false(mg_av_dir_has_image_sigs(d));
    g_free(path);
    g_free(big);

    /* a container that cannot be inflated to its end counts as yes */
    path = g_build_filename(d, "broken.cvd", NULL);
    {
        char junk[600];
        memset(junk, ' ', sizeof junk);
        junk[512] = (char)0x1f;
        junk[513] = (char)0x8b;
        memset(junk + 514, 0xff, sizeof junk - 514);
        g_file_set_contents(path, junk, sizeof junk, &err);
        g_assert_no_error(err);
    }
    g_assert_true(mg_av_dir_has_image_sigs(d));
    g_free(path);
    g_free(d);

    /* a directory that cannot be read: yes */
    d = g_build_filename(workdir, "no-such-dir", NULL);
    g_assert_true(mg_av_dir_has_image_sigs(d));
    g_free(d);
}

/* Inner files found clean by one scan and skipped by a later one. */
static void test_seen(void)
{
    struct mg_av_seen *seen = mg_av_seen_new();
    GByteArray *xa = g_byte_array_new(), *ea = g_byte_array_new();
    GBytes *x, *x2, *e, *z;
    const void *d;
    gsize n;
    GError *err = NULL;
    char *name = NULL;

    for (int i = 0; i < 400; i++) {
        char line[64];
        int len = g_snprintf(line, sizeof line, "line %d of a clean inner file\n", i);
        g_byte_array_append(xa, (const guint8 *)line, (guint)len);
    }
    x = g_bytes_new(xa->data, xa->len);
    xa->data[100] ^= 1; /* one byte off */
    x2 = g_bytes_new(xa->data, xa->len);
    d = g_bytes_get_data(eicar, &n);
    g_byte_array_append(ea, d, (guint)n);
    for (int i = 0; i < 5000; i++)
        g_byte_array_append(ea, (const guint8 *)" ", 1);
    e = g_bytes_new(ea->data, ea->len);

    /* recorded by a clean scan */
    z = zip_one("big.txt", x);
    d = g_bytes_get_data(z, &n);
    g_assert_cmpint(mg_av_scan_buffer_seen(av, d, n, MG_AV_SCAN_RECORD, seen, &name, &err), ==,
                    MG_AV_CLEAN);
    g_assert_no_error(err);
    g_bytes_unref(z);
    g_assert_cmpuint(mg_av_seen_count(seen), ==, 1);
    /* an infected inner file is never recorded */
    z = zip_one("e.com", e);
    d = g_bytes_get_data(z, &n);
    g_assert_cmpint(mg_av_scan_buffer_seen(av, d, n, MG_AV_SCAN_RECORD, seen, &name, &err), ==,
                    MG_AV_INFECTED);
    g_clear_pointer(&name, g_free);
    g_bytes_unref(z);
    g_assert_cmpuint(mg_av_seen_count(seen), ==, 1);
    mg_av_seen_close(seen);
    mg_av_seen_wait(seen); /* returns at once once closed */

    /* the same bytes under another name inside another archive: skipped */
    z = zip_one("again.txt", x);
    d = g_bytes_get_data(z, &n);
    g_assert_cmpint(mg_av_scan_buffer_seen(av, d, n, MG_AV_SCAN_SKIP_SEEN, seen, &name, &err), ==,
                    MG_AV_CLEAN);
    g_bytes_unref(z);
    g_assert_cmpuint(mg_av_seen_skipped(seen), ==, 1);
    /* one byte off, or the outer content itself: scanned */
    z = zip_one("changed.txt", x2);
    d = g_bytes_get_data(z, &n);
    g_assert_cmpint(mg_av_scan_buffer_seen(av, d, n, MG_AV_SCAN_SKIP_SEEN, seen, &name, &err), ==,
                    MG_AV_CLEAN);
    g_bytes_unref(z);
    d = g_bytes_get_data(x, &n);
    g_assert_cmpint(mg_av_scan_buffer_seen(av, d, n, MG_AV_SCAN_SKIP_SEEN, seen, &name, &err), ==,
                    MG_AV_CLEAN);
    g_assert_cmpuint(mg_av_seen_skipped(seen), ==, 1);
    /* the infected inner file is still found */
    z = zip_one("e2.com", e);
    d = g_bytes_get_data(z, &n);
    g_assert_cmpint(mg_av_scan_buffer_seen(av, d, n, MG_AV_SCAN_SKIP_SEEN, seen, &name, &err), ==,
                    MG_AV_INFECTED);
    g_assert_cmpstr(name, ==, EICAR_NAME ".UNOFFICIAL");
    g_clear_pointer(&name, g_free);
    g_bytes_unref(z);
    g_assert_no_error(err);

    mg_av_seen_free(seen);
    g_bytes_unref(x);
    g_bytes_unref(x2);
    g_bytes_unref(e);
    g_byte_array_unref(xa);
    g_byte_array_unref(ea);
}

/* Clean outer contents are remembered by engine, bytes and options;
 * nothing else is (src/av/av.c, CLEAN RESULTS REMEMBERED). */
static void test_cache(void)
{
    static const char text[] = "Minutes of the meeting of 4 December, clean and plain.\n";
    static const char other[] = "Another clean text, not the same bytes.\n";
    static const char third[] = "A third clean text.\n";
    struct mg_av *e, *e2;
    struct mg_av_seen *seen = mg_av_seen_new();
    char *path = write_work_file("cache.txt", text, sizeof(text) - 1);
    const void *d;
    gsize n;
    GError *err = NULL;
    char *name = NULL;
    int fd;

    e = mg_av_open(dbdir, &err);
    g_assert_no_error(err);
    g_assert_nonnull(e);
    g_assert_cmpuint(mg_av_cache_hits(e), ==, 0);

    /* the same bytes again: answered without libclamav, from memory
     * and from a descriptor (read whole) alike */
    assert_clean(mg_av_scan_buffer(e, text, sizeof(text) - 1, &name, &err), &name, &err);
    g_assert_cmpuint(mg_av_cache_hits(e), ==, 0);
    assert_clean(mg_av_scan_buffer(e, text, sizeof(text) - 1, &name, &err), &name, &err);
    g_assert_cmpuint(mg_av_cache_hits(e), ==, 1);
    fd = g_open(path, O_RDONLY, 0);
    g_assert_cmpint(fd, >=, 0);
    assert_clean(mg_av_scan_fd(e, fd, &name, &err), &name, &err);
    close(fd);
    g_assert_cmpuint(mg_av_cache_hits(e), ==, 2);

    /* other options are another key */
    assert_clean(
        mg_av_scan_buffer_flags(e, text, sizeof(text) - 1, MG_AV_SCAN_SHALLOW, &name, &err), &name,
        &err);
    g_assert_cmpuint(mg_av_cache_hits(e), ==, 2);
    assert_clean(
        mg_av_scan_buffer_flags(e, text, sizeof(text) - 1, MG_AV_SCAN_SHALLOW, &name, &err), &name,
        &err);
    g_assert_cmpuint(mg_av_cache_hits(e), ==, 3);

    /* an infection is found every time */
    assert_infected(scan_bytes(e, eicar, &name, &err), &name, &err, EICAR_NAME);
    assert_infected(scan_bytes(e, eicar, &name, &err), &name, &err, EICAR_NAME);
    g_assert_cmpuint(mg_av_cache_hits(e), ==, 3);

    /* what poisoned libclamav's own cache: a shallow scan finds the EICAR
     * zip clean (left packed), a full scan of the same bytes must not
     * take that answer */
    d = g_bytes_get_data(eicar_zip, &n);
    assert_clean(mg_av_scan_buffer_flags(e, d, n, MG_AV_SCAN_SHALLOW, &name, &err), &name, &err);
    assert_clean(mg_av_scan_buffer_flags(e, d, n, MG_AV_SCAN_SHALLOW, &name, &err), &name, &err);
    g_assert_cmpuint(mg_av_cache_hits(e), ==, 4);
    assert_infected(mg_av_scan_buffer_flags(e, d, n, 0, &name, &err), &name, &err, EICAR_NAME);
    assert_infected(mg_av_scan_buffer_flags(e, d, n, MG_AV_SCAN_NO_IMAGE_HASH, &name, &err), &name,
                    &err, EICAR_NAME);
    g_assert_cmpuint(mg_av_cache_hits(e), ==, 4);

    /* a scan that records inner files behaves as a plain one: it uses
     * and fills the memory (on a hit nothing is recorded, and the later
     * scan that would skip them skips nothing) */
    assert_clean(
        mg_av_scan_buffer_seen(e, text, sizeof(text) - 1, MG_AV_SCAN_RECORD, seen, &name, &err),
        &name, &err);
    g_assert_cmpuint(mg_av_cache_hits(e), ==, 5);
    assert_clean(
        mg_av_scan_buffer_seen(e, other, sizeof(other) - 1, MG_AV_SCAN_RECORD, seen, &name, &err),
        &name, &err);
    assert_clean(mg_av_scan_buffer(e, other, sizeof(other) - 1, &name, &err), &name, &err);
    g_assert_cmpuint(mg_av_cache_hits(e), ==, 6);
    mg_av_seen_close(seen);
    /* one that skips what another recorded neither uses nor fills it:
     * its answer depends on that other scan */
    assert_clean(
        mg_av_scan_buffer_seen(e, text, sizeof(text) - 1, MG_AV_SCAN_SKIP_SEEN, seen, &name, &err),
        &name, &err);
    g_assert_cmpuint(mg_av_cache_hits(e), ==, 6);
    assert_clean(mg_av_scan_buffer_seen(e, third, sizeof(third) - 1, MG_AV_SCAN_SKIP_SEEN, seen,
                                        &name, &err),
                 &name, &err);
    assert_clean(mg_av_scan_buffer(e, third, sizeof(third) - 1, &name, &err), &name, &err);
    g_assert_cmpuint(mg_av_cache_hits(e), ==, 6);

    /* another engine (a reload) starts empty */
    e2 = mg_av_open(dbdir, &err);
    g_assert_no_error(err);
    assert_clean(mg_av_scan_buffer(e2, text, sizeof(text) - 1, &name, &err), &name, &err);
    g_assert_cmpuint(mg_av_cache_hits(e2), ==, 0);
    mg_av_unref(e2);

    /* bounded: past the limit the least recently used is forgotten */
    mg_av_cache_limit(e, 2); /* keeps the two most recent: third, other */
    assert_clean(mg_av_scan_buffer(e, other, sizeof(other) - 1, &name, &err), &name, &err);
    g_assert_cmpuint(mg_av_cache_hits(e), ==, 7); /* other: now the most recent */
    assert_clean(mg_av_scan_buffer(e, text, sizeof(text) - 1, &name, &err), &name, &err);
    g_assert_cmpuint(mg_av_cache_hits(e), ==, 7); /* forgotten; third goes */
    assert_clean(mg_av_scan_buffer(e, other, sizeof(other) - 1, &name, &err), &name, &err);
    g_assert_cmpuint(mg_av_cache_hits(e), ==, 8); /* kept, being used */
    assert_clean(mg_av_scan_buffer(e, third, sizeof(third) - 1, &name, &err), &name, &err);
    g_assert_cmpuint(mg_av_cache_hits(e), ==, 8); /* the least recently used went */
    mg_av_cache_limit(e, 0);
    assert_clean(mg_av_scan_buffer(e, third, sizeof(third) - 1, &name, &err), &name, &err);
    assert_clean(mg_av_scan_buffer(e, third, sizeof(third) - 1, &name, &err), &name, &err);
    g_assert_cmpuint(mg_av_cache_hits(e), ==, 8);

    mg_av_seen_free(seen);
    mg_av_unref(e);
    g_unlink(path);
    g_free(path);
}

int main(int argc, char **argv)
{
    const char *shared = g_getenv("MUGAIKA_SHARED");
    GError *err = NULL;
    char *top;
    char *zpath;
    int rc;

    g_test_init(&argc, &argv, NULL);
    if (shared == NULL || !g_file_test(shared, G_FILE_TEST_IS_DIR))
        g_error("MUGAIKA_SHARED is not set or not a directory");
    if (!g_file_test(CLAMEXE_PATH, G_FILE_TEST_IS_REGULAR))
        g_error("%s is missing: install clamav-testfiles", CLAMEXE_PATH);

    top = g_dir_make_tmp("mugaika-av-XXXXXX", &err);
    g_assert_no_error(err);
    dbdir = g_build_filename(top, "db", NULL);
    workdir = g_build_filename(top, "work", NULL);
    scantmp = g_build_filename(top, "tmp", NULL);
    g_assert_cmpint(g_mkdir(workdir, 0700), ==, 0);
    g_assert_cmpint(g_mkdir(scantmp, 0700), ==, 0);
    make_db();
    g_setenv("TMPDIR", scantmp, TRUE);

    eicar = make_eicar();
    zpath = g_build_filename(shared, "corpus", "eicar", "eicar.zip", NULL);
    eicar_zip = read_file(zpath);
    g_free(zpath);
    av = mg_av_open(dbdir, &err);
    g_assert_no_error(err);

    g_test_add_func("/av/open", test_open);
    g_test_add_func("/av/eicar-buffer", test_eicar_buffer);
    g_test_add_func("/av/eicar-fd", test_eicar_fd);
    g_test_add_func("/av/eicar-zip", test_eicar_zip);
    g_test_add_func("/av/clamexe", test_clamexe);
    g_test_add_func("/av/clean", test_clean);
    g_test_add_func("/av/mail", test_mail);
    g_test_add_func("/av/nested", test_nested);
    g_test_add_func("/av/bad-db", test_bad_db);
    g_test_add_func("/av/bad-fd", test_bad_fd);
    g_test_add_func("/av/pread", test_pread);
    g_test_add_func("/av/threads", test_threads);
    g_test_add_func("/av/refcount", test_refcount);
    g_test_add_func("/av/image-hash", test_image_hash);
    g_test_add_func("/av/image-probe", test_image_probe);
    g_test_add_func("/av/seen", test_seen);
    g_test_add_func("/av/cache", test_cache);
    g_test_add_func("/av/tmp-clean", test_tmp_clean);
    rc = g_test_run();

    mg_av_unref(av);
    g_bytes_unref(eicar);
    g_bytes_unref(eicar_zip);
    rm_rf(top);
    g_free(top);
    g_free(dbdir);
    g_free(workdir);
    g_free(scantmp);
    return rc;
}
