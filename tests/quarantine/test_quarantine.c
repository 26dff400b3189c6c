/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * NAME
 *	test_quarantine 1
 * SUMMARY
 *	unit tests of the quarantine store
 * DESCRIPTION
 *	Each test works in its own directory under g_get_tmp_dir() and
 *	removes it. Failures are real ones that root cannot bypass: tmp/
 *	replaced by a regular file (ENOTDIR), RLIMIT_FSIZE in a child
 *	(EFBIG), a trigger that makes the index insert fail after the
 *	object was renamed into place.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <glib.h>
#include <glib/gstdio.h>
#include <sqlite3.h>
#include <zlib.h>

#include <mugaika/quarantine.h>

/* --- helpers ----------------------------------------------------------- */

struct fixture {
    char *base; /* temporary directory */
    char *dir;  /* base/q: the quarantine */
};

static void fixture_init(struct fixture *f)
{
    GError *e = NULL;

    f->base = g_dir_make_tmp("mgq-XXXXXX", &e);
    g_assert_no_error(e);
    f->dir = g_build_filename(f->base, "q", NULL);
}

static void rm_rf(const char *path)
{
    GDir *d = g_dir_open(path, 0, NULL);
    const char *name;

    if (d != NULL) {
        while ((name = g_dir_read_name(d)) != NULL) {
            char *p = g_build_filename(path, name, NULL);
            rm_rf(p);
            g_free(p);
        }
        g_dir_close(d);
        g_rmdir(path);
    } else {
        g_unlink(path);
    }
}

static void fixture_fini(struct fixture *f)
{
    rm_rf(f->base);
    g_free(f->base);
    g_free(f->dir);
}

static struct mg_quarantine *open_q(const char *dir)
{
    GError *e = NULL;
    struct mg_quarantine *q = mg_quarantine_open(dir, &e);

    g_assert_no_error(e);
    g_assert_nonnull(q);
    return q;
}

/* Regular files below path (recursively). */
static unsigned count_files(const char *path)
{
    GDir *d = g_dir_open(path, 0, NULL);
    const char *name;
    unsigned n = 0;

    if (d == NULL)
        return 0;
    while ((name = g_dir_read_name(d)) != NULL) {
        char *p = g_build_filename(path, name, NULL);
        if (g_file_test(p, G_FILE_TEST_IS_DIR))
            n += count_files(p);
        else
            n++;
        g_free(p);
    }
    g_dir_close(d);
    return n;
}

static unsigned count_in(const char *dir, const char *sub)
{
    char *p = g_build_filename(dir, sub, NULL);
    unsigned n = count_files(p);

    g_free(p);
    return n;
}

static unsigned count_rows(struct mg_quarantine *q)
{
    GPtrArray *a = NULL;
    GError *e = NULL;
    unsigned n;

    g_assert_true(mg_quarantine_list(q, 0, &a, &e));
    g_assert_no_error(e);
    n = a->len;
    g_ptr_array_unref(a);
    return n;
}

/* Writes data fed in the given chunk sizes (cycled; NULL: one piece).
 * Returns false with *err on failure; fills rec. */
static bool put_chunks(struct mg_quarantine *q, const void *data, size_t len, const size_t *chunks,
                       size_t nchunks, struct mg_qrecord *rec, GError **err)
{
    struct mg_qwrite *w = mg_quarantine_write_begin(q, err);
    const unsigned char *p = data;
    size_t off = 0, k = 0;

    if (w == NULL)
        return false;
    while (off < len) {
        size_t n = chunks != NULL ? chunks[k++ % nchunks] : len;
        if (n > len - off)
            n = len - off;
        if (!mg_qwrite_feed(w, p + off, n, err)) {
            mg_qwrite_abort(w);
            return false;
        }
        off += n;
    }
    return mg_qwrite_commit(w, rec, err);
}

/* Commits data with a sender; returns the id (owned). */
static char *put(struct mg_quarantine *q, const void *data, size_t len, const char *sender)
{
    struct mg_qrecord rec = {0};
    GError *e = NULL;
    char *id;

    rec.kind = g_strdup("file");
    rec.sender = g_strdup(sender);
    g_assert_true(put_chunks(q, data, len, NULL, 0, &rec, &e));
    g_assert_no_error(e);
    id = g_strdup(rec.id);
    mg_qrecord_clear(&rec);
    return id;
}

/* Exports id into memory; returns false with *err. */
static bool export_bytes(struct mg_quarantine *q, const char *id, GByteArray **out, GError **err)
{
    int fd = memfd_create("export", MFD_CLOEXEC);
    struct stat st;
    bool ok;

    g_assert_cmpint(fd, >=, 0);
    ok = mg_quarantine_export(q, id, fd, err);
    *out = NULL;
    if (ok) {
        g_assert_cmpint(fstat(fd, &st), ==, 0);
        *out = g_byte_array_sized_new((guint)st.st_size + 1);
        g_byte_array_set_size(*out, (guint)st.st_size);
        g_assert_cmpint(pread(fd, (*out)->data, (size_t)st.st_size, 0), ==, st.st_size);
    }
    close(fd);
    return ok;
}

static void assert_exports(struct mg_quarantine *q, const char *id, const void *data, size_t len)
{
    GByteArray *b = NULL;
    GError *e = NULL;

    g_assert_true(export_bytes(q, id, &b, &e));
    g_assert_no_error(e);
    g_assert_cmpmem(b->data, b->len, data, len);
    g_byte_array_unref(b);
    g_assert_true(mg_quarantine_verify(q, id, &e));
    g_assert_no_error(e);
}

static unsigned char *random_bytes(size_t len, guint32 seed)
{
    GRand *r = g_rand_new_with_seed(seed);
    unsigned char *b = g_malloc(len + 1);

    for (size_t i = 0; i < len; i++)
        b[i] = (unsigned char)g_rand_int_range(r, 0, 256);
    g_rand_free(r);
    return b;
}

static char *sha_hex(const void *data, size_t len)
{
    return g_compute_checksum_for_data(G_CHECKSUM_SHA256, data, len);
}

static char *object_file(const char *dir, const char *sha)
{
    return g_strdup_printf("%s/objects/%.2s/%s.gz", dir, sha, sha);
}

/* Runs one SQL statement on the index through a separate connection. */
static void index_sql(const char *dir, const char *sql)
{
    char *path = g_build_filename(dir, "index.sqlite", NULL);
    sqlite3 *db = NULL;
    char *msg = NULL;

    g_assert_cmpint(sqlite3_open(path, &db), ==, SQLITE_OK);
    sqlite3_busy_timeout(db, 10000);
    if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK)
        g_error("%s: %s", sql, msg);
    sqlite3_close(db);
    g_free(path);
}

static bool id_ok(const char *id)
{
    return g_regex_match_simple("^[0-9]{8}-[0-9a-z]{11}$", id, 0, 0);
}

/* --- round trips ------------------------------------------------------- */

static void roundtrip(const void *data, size_t len, const size_t *chunks, size_t nchunks)
{
    struct fixture f;
    struct mg_quarantine *q;
    struct mg_qrecord rec = {0}, got;
    GError *e = NULL;
    char *sha = sha_hex(data, len), *obj, *gz = NULL;
    gsize gzlen = 0;
    int64_t now = g_get_real_time() / G_USEC_PER_SEC;

    fixture_init(&f);
    q = open_q(f.dir);
    rec.kind = g_strdup("message");
    rec.subject = g_strdup("roundtrip");
    g_assert_true(put_chunks(q, data, len, chunks, nchunks, &rec, &e));
    g_assert_no_error(e);
    g_assert_true(id_ok(rec.id));
    g_assert_cmpstr(rec.sha256, ==, sha);
    g_assert_cmpuint(rec.size, ==, len);
    g_assert_cmpint(rec.time, >=, now);
    g_assert_cmpint(rec.time, <=, now + 5);

    g_assert_true(mg_quarantine_get(q, rec.id, &got, &e));
    g_assert_no_error(e);
    g_assert_cmpstr(got.id, ==, rec.id);
    g_assert_cmpstr(got.sha256, ==, sha);
    g_assert_cmpuint(got.size, ==, len);
    g_assert_cmpint(got.time, ==, rec.time);
    g_assert_cmpstr(got.subject, ==, "roundtrip");
    mg_qrecord_clear(&got);

    /* the object is gzip, named by the SHA-256 of the original */
    obj = object_file(f.dir, sha);
    g_assert_true(g_file_get_contents(obj, &gz, &gzlen, NULL));
    g_assert_cmpuint(gzlen, >=, 18);
    g_assert_cmpint((unsigned char)gz[0], ==, 0x1f);
    g_assert_cmpint((unsigned char)gz[1], ==, 0x8b);
    g_assert_cmpuint(count_in(f.dir, "objects"), ==, 1);
    g_assert_cmpuint(count_in(f.dir, "tmp"), ==, 0);

    assert_exports(q, rec.id, data, len);
    g_free(gz);
    g_free(obj);
    g_free(sha);
    mg_qrecord_clear(&rec);
    mg_quarantine_close(q);
    fixture_fini(&f);
}

static void test_roundtrip_empty(void)
{
    roundtrip("", 0, NULL, 0);
}

static void test_roundtrip_one(void)
{
    roundtrip("x", 1, NULL, 0);
}

static void test_roundtrip_text(void)
{
    static const size_t one[] = {1};
    GString *s = g_string_new(NULL);

    for (int i = 0; i < 500; i++)
        g_string_append_printf(s, "line %d: 件名 quarantine\r\n", i);
    roundtrip(s->str, s->len, one, 1); /* one byte at a time */
    g_string_free(s, TRUE);
}

static void test_roundtrip_big(void)
{
    static const size_t odd[] = {1, 7, 4093, 65537, 1000003, 3, 131071};
    size_t len = 20u << 20;
    unsigned char *b = random_bytes(len, 20);

    roundtrip(b, len, odd, G_N_ELEMENTS(odd));
    g_free(b);
}

/* The stored size of len bytes fed in 64 KiB pieces (exports checked). */
static size_t stored_size(const void *data, size_t len)
{
    static const size_t piece[] = {65536};
    struct fixture f;
    struct mg_quarantine *q;
    struct mg_qrecord rec = {0};
    GError *e = NULL;
    char *obj;
    struct stat st;

    fixture_init(&f);
    q = open_q(f.dir);
    rec.kind = g_strdup("message");
    g_assert_true(put_chunks(q, data, len, piece, 1, &rec, &e));
    g_assert_no_error(e);
    assert_exports(q, rec.id, data, len);
    obj = object_file(f.dir, rec.sha256);
    g_assert_cmpint(stat(obj, &st), ==, 0);
    g_free(obj);
    mg_qrecord_clear(&rec);
    mg_quarantine_close(q);
    fixture_fini(&f);
    return (size_t)st.st_size;
}

/* libdeflate's level 1 shrinks base64 of random data as far as
 * Huffman coding can (under 76.5 %) and text under 20 %, 256 KiB at a
 * time; both export exactly. */
static void test_ratio(void)
{
    size_t n = 3u << 20;
    unsigned char *raw = random_bytes(n, 7);
    gchar *b64 = g_base64_encode(raw, n);
    GString *mail = g_string_new("Content-Type: application/zip\r\n"
                                 "Content-Transfer-Encoding: base64\r\n\r\n");
    GString *text = g_string_new(NULL);
    size_t len, got;

    for (const char *p = b64; *p != '\0'; p += MIN(strlen(p), 76)) {
        g_string_append_len(mail, p, (gssize)MIN(strlen(p), 76));
        g_string_append(mail, "\r\n");
    }
    len = mail->len;
    got = stored_size(mail->str, len);
    g_test_message("base64: %zu -> %zu", len, got);
    g_assert_cmpuint(got * 1000, <, len * 765);
    for (unsigned i = 0; text->len < n; i++)
        g_string_append_printf(text, "%u行目: 会議の資料を添付します。quarantine test line\r\n", i);
    got = stored_size(text->str, text->len);
    g_test_message("text: %zu -> %zu", text->len, got);
    g_assert_cmpuint(got * 100, <, text->len * 20);
    g_string_free(mail, TRUE);
    g_string_free(text, TRUE);
    g_free(b64);
    g_free(raw);
}

/* Inflates the gzip members of gz one by one; each member's inflated
 * size goes to sizes. Returns false on anything but whole members. */
static bool gzip_members(const unsigned char *gz, size_t len, GArray *sizes)
{
    z_stream z;
    bool ok = true;
    static unsigned char out[65536];

    memset(&z, 0, sizeof z);
    g_assert_cmpint(inflateInit2(&z, 15 + 16), ==, Z_OK);
    z.next_in = (Bytef *)gz;
    z.avail_in = (uInt)len;
    while (ok && z.avail_in > 0) {
        size_t n = 0;
        int zr;

        do {
            z.next_out = out;
            z.avail_out = sizeof out;
            zr = inflate(&z, Z_NO_FLUSH);
            n += sizeof out - z.avail_out;
        } while (zr == Z_OK);
        if (zr != Z_STREAM_END) {
            ok = false;
            break;
        }
        g_array_append_val(sizes, n);
        g_assert_cmpint(inflateReset(&z), ==, Z_OK);
    }
    inflateEnd(&z);
    return ok && sizes->len > 0;
}

/* An object is one gzip member per 256 KiB of the original, whatever
 * the feed sizes (the first MiB is compressed in the caller's thread,
 * the rest in the writer's thread); an empty original is one empty
 * member. */
static void test_members(void)
{
    static const size_t odd[] = {1, 7, 4093, 65537, 1000003, 3, 131071};
    const size_t lens[] = {0, 1, 262144, 262145, (5u << 20) + 12345};

    for (size_t k = 0; k < G_N_ELEMENTS(lens); k++) {
        struct fixture f;
        struct mg_quarantine *q;
        struct mg_qrecord rec = {0};
        GError *e = NULL;
        unsigned char *b = random_bytes(lens[k] + 1, 30 + (guint32)k);
        GArray *sizes = g_array_new(FALSE, FALSE, sizeof(size_t));
        char *obj, *gz;
        gsize gzlen;
        size_t want = lens[k] == 0 ? 1 : (lens[k] + 262143) / 262144;

        fixture_init(&f);
        q = open_q(f.dir);
        g_assert_true(put_chunks(q, b, lens[k], odd, G_N_ELEMENTS(odd), &rec, &e));
        g_assert_no_error(e);
        obj = object_file(f.dir, rec.sha256);
        g_assert_true(g_file_get_contents(obj, &gz, &gzlen, NULL));
        g_assert_true(gzip_members((unsigned char *)gz, gzlen, sizes));
        g_test_message("%zu bytes: %u members", lens[k], sizes->len);
        g_assert_cmpuint(sizes->len, ==, want);
        for (guint i = 0; i < sizes->len; i++)
            g_assert_cmpuint(g_array_index(sizes, size_t, i), ==,
                             i + 1 < sizes->len ? 262144 : lens[k] - 262144 * (size_t)i);
        assert_exports(q, rec.id, b, lens[k]);
        g_array_unref(sizes);
        g_free(gz);
        g_free(obj);
        g_free(b);
        mg_qrecord_clear(&rec);
        mg_quarantine_close(q);
        fixture_fini(&f);
    }
}

/* An object of one gzip member over several MiB (as zlib wrote them
 * before the members) still exports and verifies. */
static void test_one_member_object(void)
{
    struct fixture f;
    struct mg_quarantine *q;
    size_t len = (3u << 20) + 77;
    unsigned char *b = random_bytes(len, 41);
    char *sha, *obj, *id;
    z_stream z;
    size_t cap = compressBound((uLong)len) + 64;
    unsigned char *gz = g_malloc(cap);
    GArray *sizes = g_array_new(FALSE, FALSE, sizeof(size_t));
    GError *e = NULL;

    for (size_t i = 0; i < len; i++)
        b[i] = (unsigned char)('a' + b[i] % 16); /* compressible */
    fixture_init(&f);
    q = open_q(f.dir);
    id = put(q, b, len, NULL);
    sha = sha_hex(b, len);
    obj = object_file(f.dir, sha);
    memset(&z, 0, sizeof z);
    g_assert_cmpint(deflateInit2(&z, 6, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY), ==, Z_OK);
    z.next_in = b;
    z.avail_in = (uInt)len;
    z.next_out = gz;
    z.avail_out = (uInt)cap;
    g_assert_cmpint(deflate(&z, Z_FINISH), ==, Z_STREAM_END);
    g_assert_true(g_file_set_contents(obj, (char *)gz, (gssize)z.total_out, NULL));
    g_assert_true(gzip_members(gz, z.total_out, sizes));
    g_assert_cmpuint(sizes->len, ==, 1);
    deflateEnd(&z);
    g_assert_true(mg_quarantine_verify(q, id, &e));
    g_assert_no_error(e);
    assert_exports(q, id, b, len);
    g_array_unref(sizes);
    g_free(gz);
    g_free(obj);
    g_free(sha);
    g_free(id);
    g_free(b);
    mg_quarantine_close(q);
    fixture_fini(&f);
}

/* --- dedup, ids, fields ------------------------------------------------ */

static void test_dedup(void)
{
    struct fixture f;
    struct mg_quarantine *q;
    static const char body[] = "same content, twice";
    char *a, *b;

    fixture_init(&f);
    q = open_q(f.dir);
    a = put(q, body, sizeof body - 1, "a@example.org");
    b = put(q, body, sizeof body - 1, "b@example.org");
    g_assert_cmpstr(a, !=, b);
    g_assert_cmpuint(count_rows(q), ==, 2);
    g_assert_cmpuint(count_in(f.dir, "objects"), ==, 1);
    g_assert_cmpuint(count_in(f.dir, "tmp"), ==, 0);
    assert_exports(q, a, body, sizeof body - 1);
    assert_exports(q, b, body, sizeof body - 1);
    g_free(a);
    g_free(b);
    mg_quarantine_close(q);
    fixture_fini(&f);
}

/* An empty file where the object belongs (a crash on a careless file
 * system) is replaced, not trusted. */
static void test_empty_object_replaced(void)
{
    struct fixture f;
    struct mg_quarantine *q;
    static const char body[] = "content whose object was left empty";
    char *sha = sha_hex(body, sizeof body - 1), *obj, *sub, *id;

    fixture_init(&f);
    q = open_q(f.dir);
    obj = object_file(f.dir, sha);
    sub = g_path_get_dirname(obj);
    g_assert_cmpint(g_mkdir(sub, 0700), ==, 0);
    g_assert_true(g_file_set_contents(obj, "", 0, NULL));
    id = put(q, body, sizeof body - 1, NULL);
    assert_exports(q, id, body, sizeof body - 1);
    g_assert_cmpuint(count_in(f.dir, "tmp"), ==, 0);
    g_free(id);
    g_free(sub);
    g_free(obj);
    g_free(sha);
    mg_quarantine_close(q);
    fixture_fini(&f);
}

static char *utc_date(void)
{
    GDateTime *now = g_date_time_new_now_utc();
    char *s = g_date_time_format(now, "%Y%m%d");

    g_date_time_unref(now);
    return s;
}

static void test_ids(void)
{
    struct fixture f;
    struct mg_quarantine *q;
    GHashTable *seen = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
    char *d0, *d1;

    fixture_init(&f);
    q = open_q(f.dir);
    d0 = utc_date();
    for (int i = 0; i < 1000; i++) {
        char body[32];
        int n = g_snprintf(body, sizeof body, "item %d", i % 10);
        char *id = put(q, body, (size_t)n, NULL);
        g_assert_cmpuint(strlen(id), ==, 20);
        g_assert_true(id_ok(id));
        g_assert_false(g_hash_table_contains(seen, id));
        g_hash_table_add(seen, id);
    }
    d1 = utc_date();
    g_assert_cmpuint(g_hash_table_size(seen), ==, 1000);
    g_assert_cmpuint(count_rows(q), ==, 1000);
    g_assert_cmpuint(count_in(f.dir, "objects"), ==, 10);
    {
        GHashTableIter it;
        gpointer k;
        g_hash_table_iter_init(&it, seen);
        while (g_hash_table_iter_next(&it, &k, NULL))
            g_assert_true(strncmp(k, d0, 8) == 0 || strncmp(k, d1, 8) == 0);
    }
    g_free(d0);
    g_free(d1);
    g_hash_table_unref(seen);
    mg_quarantine_close(q);
    fixture_fini(&f);
}

static void test_fields(void)
{
    struct fixture f;
    struct mg_quarantine *q;
    struct mg_qrecord rec = {0}, got;
    GError *e = NULL;
    static const char evil[] = "x'); DROP TABLE items; --";

    fixture_init(&f);
    q = open_q(f.dir);
    rec.kind = g_strdup("message");
    rec.message_id = g_strdup("<a@example.jp>");
    rec.sender = g_strdup(evil);
    rec.recipients = g_strdup("a@example.jp,b@example.jp");
    rec.subject = g_strdup("【至急】請求書の送付 ①");
    rec.result = g_strdup("rewritten=1");
    rec.parts_json = g_strdup("[{\"path\":\"1\",\"type\":\"application/pdf\"}]");
    g_assert_true(put_chunks(q, "m", 1, NULL, 0, &rec, &e));
    g_assert_no_error(e);
    g_assert_true(mg_quarantine_get(q, rec.id, &got, &e));
    g_assert_no_error(e);
    g_assert_cmpstr(got.kind, ==, "message");
    g_assert_cmpstr(got.message_id, ==, "<a@example.jp>");
    g_assert_cmpstr(got.sender, ==, evil);
    g_assert_cmpstr(got.recipients, ==, "a@example.jp,b@example.jp");
    g_assert_cmpstr(got.subject, ==, "【至急】請求書の送付 ①");
    g_assert_cmpstr(got.result, ==, "rewritten=1");
    g_assert_cmpstr(got.parts_json, ==, rec.parts_json);
    mg_qrecord_clear(&got);
    mg_qrecord_clear(&rec);

    /* NULL fields stay NULL */
    g_assert_true(put_chunks(q, "n", 1, NULL, 0, &rec, &e));
    g_assert_true(mg_quarantine_get(q, rec.id, &got, &e));
    g_assert_null(got.kind);
    g_assert_null(got.sender);
    g_assert_null(got.parts_json);
    g_assert_nonnull(got.sha256);
    mg_qrecord_clear(&got);
    mg_qrecord_clear(&rec);

    /* unknown ids, including one that looks like SQL */
    g_assert_false(mg_quarantine_get(q, "20990101-aaaaaaaaaaa", &got, &e));
    g_assert_error(e, MG_QUARANTINE_ERROR, MG_QUARANTINE_ERROR_NOT_FOUND);
    g_clear_error(&e);
    g_assert_false(mg_quarantine_verify(q, "' OR 1=1 --", &e));
    g_assert_error(e, MG_QUARANTINE_ERROR, MG_QUARANTINE_ERROR_NOT_FOUND);
    g_clear_error(&e);
    g_assert_cmpuint(count_rows(q), ==, 2);
    mg_quarantine_close(q);
    fixture_fini(&f);
}

static void test_list_order(void)
{
    struct fixture f;
    struct mg_quarantine *q;
    GPtrArray *a = NULL;
    GError *e = NULL;
    char *ids[3];

    fixture_init(&f);
    q = open_q(f.dir);
    for (int i = 0; i < 3; i++)
        ids[i] = put(q, &i, sizeof i, NULL);
    index_sql(f.dir, "UPDATE items SET time = time - 100 WHERE rowid = 1");
    g_assert_true(mg_quarantine_list(q, 2, &a, &e));
    g_assert_no_error(e);
    g_assert_cmpuint(a->len, ==, 2);
    g_assert_cmpstr(((struct mg_qrecord *)a->pdata[0])->id, ==, ids[2]);
    g_assert_cmpstr(((struct mg_qrecord *)a->pdata[1])->id, ==, ids[1]);
    g_ptr_array_unref(a);
    g_assert_true(mg_quarantine_list(q, 0, &a, &e));
    g_assert_cmpuint(a->len, ==, 3);
    g_assert_cmpstr(((struct mg_qrecord *)a->pdata[2])->id, ==, ids[0]);
    g_ptr_array_unref(a);
    for (int i = 0; i < 3; i++)
        g_free(ids[i]);
    mg_quarantine_close(q);
    fixture_fini(&f);
}

/* --- durability and failures ------------------------------------------ */

static void test_fault_after_rename(void)
{
    struct fixture f;
    struct mg_quarantine *q;
    struct mg_qrecord rec = {0};
    GError *e = NULL;
    static const char body[] = "the index insert fails after the rename";
    unsigned removed = 99;
    char *id;

    fixture_init(&f);
    q = open_q(f.dir);
    index_sql(f.dir, "CREATE TRIGGER fault BEFORE INSERT ON items "
                     "BEGIN SELECT RAISE(ABORT, 'injected fault'); END");
    g_assert_false(put_chunks(q, body, sizeof body - 1, NULL, 0, &rec, &e));
    g_assert_error(e, MG_QUARANTINE_ERROR, MG_QUARANTINE_ERROR_IO);
    g_assert_nonnull(strstr(e->message, "index.sqlite"));
    g_assert_nonnull(strstr(e->message, "injected fault"));
    g_clear_error(&e);
    g_assert_cmpstr(rec.id, ==, "");
    /* the object reached objects/ (an orphan), no row, no tmp file */
    g_assert_cmpuint(count_in(f.dir, "objects"), ==, 1);
    g_assert_cmpuint(count_rows(q), ==, 0);
    g_assert_cmpuint(count_in(f.dir, "tmp"), ==, 0);

    /* expire collects the orphan */
    g_assert_true(mg_quarantine_expire(q, 30, &removed, &e));
    g_assert_no_error(e);
    g_assert_cmpuint(removed, ==, 0);
    g_assert_cmpuint(count_in(f.dir, "objects"), ==, 0);

    /* without the fault it works again */
    index_sql(f.dir, "DROP TRIGGER fault");
    id = put(q, body, sizeof body - 1, NULL);
    assert_exports(q, id, body, sizeof body - 1);
    g_free(id);
    mg_qrecord_clear(&rec);
    mg_quarantine_close(q);
    fixture_fini(&f);
}

static void test_abort(void)
{
    struct fixture f;
    struct mg_quarantine *q;
    struct mg_qwrite *w;
    GError *e = NULL;

    fixture_init(&f);
    q = open_q(f.dir);
    w = mg_quarantine_write_begin(q, &e);
    g_assert_no_error(e);
    g_assert_cmpuint(count_in(f.dir, "tmp"), ==, 1);
    mg_qwrite_abort(w);
    g_assert_cmpuint(count_in(f.dir, "tmp"), ==, 0);

    w = mg_quarantine_write_begin(q, &e);
    for (int i = 0; i < 100; i++)
        g_assert_true(mg_qwrite_feed(w, "0123456789abcdef", 16, &e));
    mg_qwrite_abort(w);
    mg_qwrite_abort(NULL);
    g_assert_cmpuint(count_in(f.dir, "tmp"), ==, 0);
    /* past the first MiB a thread compresses: abort stops it too */
    {
        unsigned char *b = random_bytes(3u << 20, 9);
        w = mg_quarantine_write_begin(q, &e);
        g_assert_no_error(e);
        for (size_t off = 0; off < (3u << 20); off += 100000)
            g_assert_true(mg_qwrite_feed(w, b + off, MIN(100000, (3u << 20) - off), &e));
        mg_qwrite_abort(w);
        g_free(b);
    }
    g_assert_cmpuint(count_in(f.dir, "tmp"), ==, 0);
    g_assert_cmpuint(count_in(f.dir, "objects"), ==, 0);
    g_assert_cmpuint(count_rows(q), ==, 0);
    mg_quarantine_close(q);
    fixture_fini(&f);
}

static void test_tmp_not_dir(void)
{
    struct fixture f;
    struct mg_quarantine *q;
    GError *e = NULL;
    char *tmp;

    fixture_init(&f);
    q = open_q(f.dir);
    tmp = g_build_filename(f.dir, "tmp", NULL);
    g_assert_cmpint(g_rmdir(tmp), ==, 0);
    g_assert_true(g_file_set_contents(tmp, "not a directory", -1, NULL));

    g_assert_null(mg_quarantine_write_begin(q, &e));
    g_assert_error(e, MG_QUARANTINE_ERROR, MG_QUARANTINE_ERROR_IO);
    g_assert_nonnull(strstr(e->message, tmp));
    g_assert_nonnull(strstr(e->message, g_strerror(ENOTDIR)));
    g_clear_error(&e);
    mg_quarantine_close(q);

    /* opening notices too */
    g_assert_null(mg_quarantine_open(f.dir, &e));
    g_assert_error(e, MG_QUARANTINE_ERROR, MG_QUARANTINE_ERROR_IO);
    g_assert_nonnull(strstr(e->message, tmp));
    g_clear_error(&e);
    g_assert_cmpuint(count_in(f.dir, "objects"), ==, 0);
    g_free(tmp);
    fixture_fini(&f);
}

/* Child side of test_file_too_big: 0 when everything went as expected. */
static int fsize_child(const char *dir)
{
    struct rlimit rl = {1 << 20, 1 << 20};
    struct mg_quarantine *q;
    struct mg_qwrite *w;
    struct mg_qrecord rec = {0};
    GError *e = NULL;
    unsigned char *b = random_bytes(8u << 20, 7);
    size_t off;
    int rc = 0;

    signal(SIGXFSZ, SIG_IGN);
    if (setrlimit(RLIMIT_FSIZE, &rl) != 0)
        return 10;
    q = mg_quarantine_open(dir, &e);
    if (q == NULL)
        return 11;
    w = mg_quarantine_write_begin(q, &e);
    if (w == NULL)
        return 12;
    for (off = 0; off < (8u << 20); off += 65536)
        if (!mg_qwrite_feed(w, b + off, 65536, &e))
            break;
    if (e == NULL)
        rc = 13; /* the limit did not bite */
    else if (e->code != MG_QUARANTINE_ERROR_IO || strstr(e->message, "/tmp/") == NULL ||
             strstr(e->message, g_strerror(EFBIG)) == NULL)
        rc = 14;
    g_clear_error(&e);
    if (rc == 0 && mg_qwrite_feed(w, "x", 1, &e)) /* the failure is sticky */
        rc = 15;
    g_clear_error(&e);
    if (rc == 0 && (mg_qwrite_commit(w, &rec, &e) || e == NULL)) /* frees w */
        rc = 16;
    else if (rc != 0)
        mg_qwrite_abort(w);
    g_clear_error(&e);
    mg_quarantine_close(q);
    g_free(b);
    return rc;
}

static void test_file_too_big(void)
{
    struct fixture f;
    struct mg_quarantine *q;
    int status = 0;
    pid_t pid;

    fixture_init(&f);
    q = open_q(f.dir);
    mg_quarantine_close(q);
    pid = fork();
    g_assert_cmpint(pid, >=, 0);
    if (pid == 0)
        _exit(fsize_child(f.dir));
    g_assert_cmpint(waitpid(pid, &status, 0), ==, pid);
    g_assert_true(WIFEXITED(status));
    g_assert_cmpint(WEXITSTATUS(status), ==, 0);
    g_assert_cmpuint(count_in(f.dir, "tmp"), ==, 0);
    g_assert_cmpuint(count_in(f.dir, "objects"), ==, 0);
    q = open_q(f.dir);
    g_assert_cmpuint(count_rows(q), ==, 0);
    mg_quarantine_close(q);
    fixture_fini(&f);
}

static void expect_corrupt(struct mg_quarantine *q, const char *id)
{
    GByteArray *b = NULL;
    GError *e = NULL;

    g_assert_false(export_bytes(q, id, &b, &e));
    g_assert_error(e, MG_QUARANTINE_ERROR, MG_QUARANTINE_ERROR_CORRUPT);
    g_assert_nonnull(strstr(e->message, id));
    g_clear_error(&e);
    g_assert_false(mg_quarantine_verify(q, id, &e));
    g_assert_error(e, MG_QUARANTINE_ERROR, MG_QUARANTINE_ERROR_CORRUPT);
    g_clear_error(&e);
}

static void test_corrupt(void)
{
    struct fixture f;
    struct mg_quarantine *q;
    size_t len = 100000;
    unsigned char *b = random_bytes(len, 3);
    char *sha = sha_hex(b, len), *obj, *id, *good = NULL, *other_obj, *other_sha, *other_id;
    gsize glen = 0;
    FILE *fp;

    fixture_init(&f);
    q = open_q(f.dir);
    id = put(q, b, len, NULL);
    obj = object_file(f.dir, sha);
    g_assert_true(g_file_get_contents(obj, &good, &glen, NULL));

    /* a flipped byte in the deflate data */
    good[glen / 2] ^= 0x40;
    g_assert_true(g_file_set_contents(obj, good, (gssize)glen, NULL));
    good[glen / 2] ^= 0x40;
    expect_corrupt(q, id);
    /* a flipped byte in the trailer (CRC) */
    good[glen - 6] ^= 0x01;
    g_assert_true(g_file_set_contents(obj, good, (gssize)glen, NULL));
    good[glen - 6] ^= 0x01;
    expect_corrupt(q, id);
    /* truncated */
    g_assert_true(g_file_set_contents(obj, good, (gssize)glen / 2, NULL));
    expect_corrupt(q, id);
    g_assert_true(g_file_set_contents(obj, good, (gssize)glen - 1, NULL));
    expect_corrupt(q, id);
    /* garbage after the gzip stream */
    g_assert_true(g_file_set_contents(obj, good, (gssize)glen, NULL));
    fp = fopen(obj, "ab");
    fputs("junk", fp);
    fclose(fp);
    expect_corrupt(q, id);
    /* a whole gzip member after the last one: longer than recorded */
    {
        GByteArray *more = g_byte_array_new();
        unsigned char extra[64];
        uLongf n = sizeof extra;
        z_stream z;

        memset(&z, 0, sizeof z);
        g_assert_cmpint(deflateInit2(&z, 1, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY), ==, Z_OK);
        z.next_in = (Bytef *)"x";
        z.avail_in = 1;
        z.next_out = extra;
        z.avail_out = (uInt)n;
        g_assert_cmpint(deflate(&z, Z_FINISH), ==, Z_STREAM_END);
        g_byte_array_append(more, (guint8 *)good, (guint)glen);
        g_byte_array_append(more, extra, (guint)z.total_out);
        deflateEnd(&z);
        g_assert_true(g_file_set_contents(obj, (char *)more->data, (gssize)more->len, NULL));
        expect_corrupt(q, id);
        /* and half of one */
        g_assert_true(g_file_set_contents(obj, (char *)more->data, (gssize)(glen + 10), NULL));
        expect_corrupt(q, id);
        /* an empty member after the last: the same bytes, still verifies */
        memset(&z, 0, sizeof z);
        g_assert_cmpint(deflateInit2(&z, 1, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY), ==, Z_OK);
        z.next_in = (Bytef *)"";
        z.avail_in = 0;
        z.next_out = extra;
        z.avail_out = (uInt)sizeof extra;
        g_assert_cmpint(deflate(&z, Z_FINISH), ==, Z_STREAM_END);
        g_byte_array_set_size(more, (guint)glen);
        g_byte_array_append(more, extra, (guint)z.total_out);
        deflateEnd(&z);
        g_assert_true(g_file_set_contents(obj, (char *)more->data, (gssize)more->len, NULL));
        assert_exports(q, id, b, len);
        g_byte_array_unref(more);
    }
    /* not gzip at all */
    g_assert_true(g_file_set_contents(obj, "plain text", -1, NULL));
    expect_corrupt(q, id);
    /* valid gzip of other bytes (CRC fine, SHA-256 and size wrong) */
    b[0] ^= 1;
    other_id = put(q, b, len, NULL);
    other_sha = sha_hex(b, len);
    other_obj = object_file(f.dir, other_sha);
    g_assert_cmpint(rename(other_obj, obj), ==, 0);
    expect_corrupt(q, id);
    /* missing */
    g_assert_cmpint(g_unlink(obj), ==, 0);
    expect_corrupt(q, id);
    expect_corrupt(q, other_id);

    /* put back, it verifies again */
    g_assert_true(g_file_set_contents(obj, good, (gssize)glen, NULL));
    b[0] ^= 1;
    assert_exports(q, id, b, len);

    g_free(other_id);
    g_free(other_sha);
    g_free(other_obj);
    g_free(good);
    g_free(obj);
    g_free(id);
    g_free(sha);
    g_free(b);
    mg_quarantine_close(q);
    fixture_fini(&f);
}

static void test_expire(void)
{
    struct fixture f;
    struct mg_quarantine *q;
    struct mg_qrecord r;
    GError *e = NULL;
    unsigned removed = 99;
    char *a, *b, *c, *d, *sql;

    fixture_init(&f);
    q = open_q(f.dir);
    a = put(q, "X", 1, "old, shares X");
    b = put(q, "X", 1, "new, shares X");
    c = put(q, "Y", 1, "old, only Y");
    d = put(q, "Z", 1, "new, only Z");
    g_assert_cmpuint(count_in(f.dir, "objects"), ==, 3);
    sql =
        g_strdup_printf("UPDATE items SET time = time - 40 * 86400 WHERE id IN ('%s', '%s')", a, c);
    index_sql(f.dir, sql);
    g_free(sql);

    g_assert_true(mg_quarantine_expire(q, 50, &removed, &e));
    g_assert_no_error(e);
    g_assert_cmpuint(removed, ==, 0);
    g_assert_cmpuint(count_in(f.dir, "objects"), ==, 3);

    g_assert_true(mg_quarantine_expire(q, 30, &removed, &e));
    g_assert_no_error(e);
    g_assert_cmpuint(removed, ==, 2);
    g_assert_cmpuint(count_rows(q), ==, 2);
    g_assert_cmpuint(count_in(f.dir, "objects"), ==, 2); /* X (still b's) and Z */
    g_assert_false(mg_quarantine_get(q, a, &r, &e));
    g_assert_error(e, MG_QUARANTINE_ERROR, MG_QUARANTINE_ERROR_NOT_FOUND);
    g_clear_error(&e);
    assert_exports(q, b, "X", 1);
    assert_exports(q, d, "Z", 1);
    {
        char *ysha = sha_hex("Y", 1), *yobj = object_file(f.dir, ysha);
        g_assert_false(g_file_test(yobj, G_FILE_TEST_EXISTS));
        g_free(ysha);
        g_free(yobj);
    }
    /* expire 0 days keeps what was written this second */
    g_assert_true(mg_quarantine_expire(q, 0, &removed, &e));
    g_assert_cmpuint(removed, ==, 0);
    g_free(a);
    g_free(b);
    g_free(c);
    g_free(d);
    mg_quarantine_close(q);
    fixture_fini(&f);
}

/* --- open -------------------------------------------------------------- */

static void test_open_existing(void)
{
    struct fixture f;
    struct mg_quarantine *q;
    GError *e = NULL;
    char *file;

    fixture_init(&f);
    g_assert_null(mg_quarantine_open_existing(f.dir, &e));
    g_assert_error(e, MG_QUARANTINE_ERROR, MG_QUARANTINE_ERROR_NOT_FOUND);
    g_clear_error(&e);
    g_assert_false(g_file_test(f.dir, G_FILE_TEST_EXISTS)); /* nothing created */

    g_assert_cmpint(g_mkdir(f.dir, 0700), ==, 0);
    g_assert_null(mg_quarantine_open_existing(f.dir, &e));
    g_assert_error(e, MG_QUARANTINE_ERROR, MG_QUARANTINE_ERROR_NOT_FOUND);
    g_clear_error(&e);
    g_assert_cmpuint(count_files(f.dir), ==, 0);

    q = open_q(f.dir);
    mg_quarantine_close(q);
    q = mg_quarantine_open_existing(f.dir, &e);
    g_assert_no_error(e);
    g_assert_cmpstr(mg_quarantine_dir(q), ==, f.dir);
    g_assert_cmpuint(count_rows(q), ==, 0);
    mg_quarantine_close(q);

    file = g_build_filename(f.base, "file", NULL);
    g_assert_true(g_file_set_contents(file, "x", -1, NULL));
    g_assert_null(mg_quarantine_open_existing(file, &e));
    g_assert_error(e, MG_QUARANTINE_ERROR, MG_QUARANTINE_ERROR_IO);
    g_assert_nonnull(strstr(e->message, file));
    g_clear_error(&e);
    g_assert_null(mg_quarantine_open(file, &e));
    g_assert_error(e, MG_QUARANTINE_ERROR, MG_QUARANTINE_ERROR_IO);
    g_assert_nonnull(strstr(e->message, file));
    g_clear_error(&e);
    g_free(file);
    fixture_fini(&f);
}

static void test_stale_tmp(void)
{
    struct fixture f;
    struct mg_quarantine *q;
    struct timespec old[2] = {{0, 0}, {0, 0}};
    char *stale, *fresh, *id;

    fixture_init(&f);
    q = open_q(f.dir);
    mg_quarantine_close(q);
    stale = g_build_filename(f.dir, "tmp", "stale", NULL);
    fresh = g_build_filename(f.dir, "tmp", "fresh", NULL);
    g_assert_true(g_file_set_contents(stale, "left by a crash", -1, NULL));
    g_assert_true(g_file_set_contents(fresh, "being written", -1, NULL));
    old[0].tv_sec = old[1].tv_sec = time(NULL) - 7200;
    g_assert_cmpint(utimensat(AT_FDCWD, stale, old, 0), ==, 0);

    q = open_q(f.dir);
    g_assert_false(g_file_test(stale, G_FILE_TEST_EXISTS));
    g_assert_true(g_file_test(fresh, G_FILE_TEST_EXISTS));
    id = put(q, "abc", 3, NULL);
    assert_exports(q, id, "abc", 3);
    g_assert_true(g_file_test(fresh, G_FILE_TEST_EXISTS));
    g_free(id);
    g_free(stale);
    g_free(fresh);
    mg_quarantine_close(q);
    fixture_fini(&f);
}

static unsigned mode_of(const char *path)
{
    struct stat st;

    g_assert_cmpint(lstat(path, &st), ==, 0);
    return st.st_mode & 07777;
}

static void test_modes(void)
{
    struct fixture f;
    struct mg_quarantine *q;
    char *sha = sha_hex("m", 1), *obj, *p, *id;
    mode_t old = umask(022);

    fixture_init(&f);
    q = open_q(f.dir);
    id = put(q, "m", 1, NULL);
    obj = object_file(f.dir, sha);
    g_assert_cmpuint(mode_of(f.dir), ==, 0700);
    p = g_build_filename(f.dir, "objects", NULL);
    g_assert_cmpuint(mode_of(p), ==, 0700);
    g_free(p);
    p = g_build_filename(f.dir, "tmp", NULL);
    g_assert_cmpuint(mode_of(p), ==, 0700);
    g_free(p);
    p = g_path_get_dirname(obj);
    g_assert_cmpuint(mode_of(p), ==, 0700);
    g_free(p);
    g_assert_cmpuint(mode_of(obj), ==, 0600);
    p = g_build_filename(f.dir, "index.sqlite", NULL);
    g_assert_cmpuint(mode_of(p), ==, 0600);
    {
        sqlite3 *db = NULL;
        sqlite3_stmt *st = NULL;
        g_assert_cmpint(sqlite3_open(p, &db), ==, SQLITE_OK);
        g_assert_cmpint(sqlite3_prepare_v2(db, "PRAGMA journal_mode", -1, &st, NULL), ==,
                        SQLITE_OK);
        g_assert_cmpint(sqlite3_step(st), ==, SQLITE_ROW);
        g_assert_cmpstr((const char *)sqlite3_column_text(st, 0), ==, "wal");
        sqlite3_finalize(st);
        sqlite3_close(db);
    }
    g_free(p);
    umask(old);
    g_free(id);
    g_free(obj);
    g_free(sha);
    mg_quarantine_close(q);
    fixture_fini(&f);
}

/* --- concurrency ------------------------------------------------------- */

#define THREADS     4
#define PER_THREAD  50
#define PER_PROCESS 50

struct worker {
    struct mg_quarantine *q;
    int n;
    GPtrArray *ids; /* char * */
    int failures;
};

/* Content of item i of worker n: every 10th is shared by all workers. */
static char *content(int n, int i)
{
    if (i % 10 == 0)
        return g_strdup_printf("shared content %d", i);
    return g_strdup_printf("worker %d item %d %s", n, i, i % 3 ? "" : "padding padding");
}

static gpointer worker_run(gpointer data)
{
    struct worker *wk = data;

    for (int i = 0; i < PER_THREAD; i++) {
        struct mg_qrecord rec = {0};
        GError *e = NULL;
        char *body = content(wk->n, i);

        rec.sender = g_strdup_printf("%d/%d", wk->n, i);
        if (put_chunks(wk->q, body, strlen(body), NULL, 0, &rec, &e))
            g_ptr_array_add(wk->ids, g_strdup(rec.id));
        else
            wk->failures++;
        g_clear_error(&e);
        mg_qrecord_clear(&rec);
        g_free(body);
    }
    return NULL;
}

static void test_threads(void)
{
    struct fixture f;
    struct mg_quarantine *q;
    struct worker wk[THREADS];
    GThread *th[THREADS];
    GPtrArray *all = NULL;
    GError *e = NULL;

    fixture_init(&f);
    q = open_q(f.dir);
    for (int n = 0; n < THREADS; n++) {
        wk[n] = (struct worker){q, n, g_ptr_array_new_with_free_func(g_free), 0};
        th[n] = g_thread_new("qw", worker_run, &wk[n]);
    }
    for (int n = 0; n < THREADS; n++) {
        g_thread_join(th[n]);
        g_assert_cmpint(wk[n].failures, ==, 0);
        g_assert_cmpuint(wk[n].ids->len, ==, PER_THREAD);
    }
    g_assert_true(mg_quarantine_list(q, 0, &all, &e));
    g_assert_cmpuint(all->len, ==, THREADS * PER_THREAD);
    for (guint k = 0; k < all->len; k++) {
        const struct mg_qrecord *r = all->pdata[k];
        int n, i;
        char *body;
        g_assert_cmpint(sscanf(r->sender, "%d/%d", &n, &i), ==, 2);
        body = content(n, i);
        assert_exports(q, r->id, body, strlen(body));
        g_free(body);
    }
    /* 5 shared bodies + 45 own per worker */
    g_assert_cmpuint(count_in(f.dir, "objects"), ==, 5 + THREADS * 45);
    g_assert_cmpuint(count_in(f.dir, "tmp"), ==, 0);
    g_ptr_array_unref(all);
    for (int n = 0; n < THREADS; n++)
        g_ptr_array_unref(wk[n].ids);
    mg_quarantine_close(q);
    fixture_fini(&f);
}

/* Child: waits on the start pipe, commits, exits with the failure count. */
static int process_child(const char *dir, int n, int start)
{
    struct mg_quarantine *q;
    struct worker wk = {NULL, n, NULL, 0};
    char c;

    if (read(start, &c, 1) != 1)
        return 100;
    GError *e = NULL;
    q = mg_quarantine_open(dir, &e);
    if (q == NULL) {
        g_printerr("# child %d: %s\n", n, e->message);
        g_error_free(e);
        return 101;
    }
    wk.q = q;
    wk.ids = g_ptr_array_new_with_free_func(g_free);
    worker_run(&wk);
    g_ptr_array_unref(wk.ids);
    mg_quarantine_close(q);
    return wk.failures;
}

static void test_processes(void)
{
    struct fixture f;
    struct mg_quarantine *q;
    int pipefd[2];
    pid_t pid[2];

    fixture_init(&f);
    g_assert_cmpint(pipe(pipefd), ==, 0);
    for (int n = 0; n < 2; n++) {
        pid[n] = fork();
        g_assert_cmpint(pid[n], >=, 0);
        if (pid[n] == 0) {
            close(pipefd[1]);
            _exit(process_child(f.dir, 10 + n, pipefd[0]));
        }
    }
    close(pipefd[0]);
    g_assert_cmpint(write(pipefd[1], "go", 2), ==, 2); /* both start at once */
    close(pipefd[1]);
    for (int n = 0; n < 2; n++) {
        int status = 0;
        g_assert_cmpint(waitpid(pid[n], &status, 0), ==, pid[n]);
        g_assert_true(WIFEXITED(status));
        g_assert_cmpint(WEXITSTATUS(status), ==, 0);
    }
    q = open_q(f.dir);
    g_assert_cmpuint(count_rows(q), ==, 2 * PER_PROCESS);
    {
        GPtrArray *all = NULL;
        g_assert_true(mg_quarantine_list(q, 0, &all, NULL));
        for (guint k = 0; k < all->len; k++) {
            const struct mg_qrecord *r = all->pdata[k];
            int n, i;
            char *body;
            g_assert_cmpint(sscanf(r->sender, "%d/%d", &n, &i), ==, 2);
            body = content(n, i);
            assert_exports(q, r->id, body, strlen(body));
            g_free(body);
        }
        g_ptr_array_unref(all);
    }
    mg_quarantine_close(q);
    fixture_fini(&f);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/quarantine/roundtrip/empty", test_roundtrip_empty);
    g_test_add_func("/quarantine/roundtrip/one-byte", test_roundtrip_one);
    g_test_add_func("/quarantine/roundtrip/text-bytewise", test_roundtrip_text);
    g_test_add_func("/quarantine/roundtrip/20mib-odd-chunks", test_roundtrip_big);
    g_test_add_func("/quarantine/roundtrip/ratio", test_ratio);
    g_test_add_func("/quarantine/members", test_members);
    g_test_add_func("/quarantine/one-member-object", test_one_member_object);
    g_test_add_func("/quarantine/dedup", test_dedup);
    g_test_add_func("/quarantine/empty-object-replaced", test_empty_object_replaced);
    g_test_add_func("/quarantine/ids", test_ids);
    g_test_add_func("/quarantine/fields", test_fields);
    g_test_add_func("/quarantine/list-order", test_list_order);
    g_test_add_func("/quarantine/fault-after-rename", test_fault_after_rename);
    g_test_add_func("/quarantine/abort", test_abort);
    g_test_add_func("/quarantine/tmp-not-a-directory", test_tmp_not_dir);
    g_test_add_func("/quarantine/file-too-big", test_file_too_big);
    g_test_add_func("/quarantine/corrupt", test_corrupt);
    g_test_add_func("/quarantine/expire", test_expire);
    g_test_add_func("/quarantine/open-existing", test_open_existing);
    g_test_add_func("/quarantine/stale-tmp", test_stale_tmp);
    g_test_add_func("/quarantine/modes", test_modes);
    g_test_add_func("/quarantine/threads", test_threads);
    g_test_add_func("/quarantine/processes", test_processes);
    return g_test_run();
}
