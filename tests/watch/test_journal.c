/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * NAME
 *	test_journal 1
 * SUMMARY
 *	unit tests of the transfer folder's journal (wjournal.h)
 * SYNOPSIS
 *	test_journal [--tap] [-p /journal/...]
 * DESCRIPTION
 *	Every case works in its own temporary directory (removed after).
 *	/journal/round-trip: begun and committed items come back from
 *	pending with every field (names that are not UTF-8, Japanese
 *	names, 100 outputs, extreme dev/ino/mtime), also after a reopen;
 *	done, failed and abort close them; calls that do not fit the
 *	item's state are refused and write nothing.
 *	/journal/ids: ids continue after close and open, and after a
 *	compaction that dropped every item.
 *	/journal/torn: the last record cut at every byte offset, or
 *	replaced by zero bytes: ignored and counted, the file cut back,
 *	earlier records intact, and the next record lands on a clean line.
 *	/journal/corrupt: a damaged line before the last, a last line with
 *	a good checksum but a record that makes no sense, an unknown
 *	format version: the open fails and names the line.
 *	/journal/lock: a second open fails while the first is open.
 *	/journal/compact: keeps exactly the pending items, shrinks the
 *	file; a journal.new left by a crash is removed by open.
 *	/journal/symlink: a journal that is a symbolic link is refused.
 *	Durability (one fdatasync per record) is not tested here; it was
 *	checked by hand with strace -e trace=write,fdatasync,fsync.
 */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <glib.h>
#include <glib/gstdio.h>
#include <zlib.h>

#include <mugaika/wjournal.h>

#include "tmpdir.h"

struct fx {
    char *dir;
    char *journal; /* dir/journal */
    int dfd;
};

static void fx_setup(struct fx *f, gconstpointer data)
{
    (void)data;
    f->dir = tmpdir_make("mugaika-journal-XXXXXX", &f->dfd);
    f->journal = g_build_filename(f->dir, MG_WJOURNAL_NAME, NULL);
}

static void fx_teardown(struct fx *f, gconstpointer data)
{
    (void)data;
    g_free(f->journal);
    tmpdir_remove(f->dir, f->dfd);
}

static struct mg_wjournal *jopen(struct fx *f)
{
    GError *err = NULL;
    struct mg_wjournal *j = mg_wjournal_open(f->dfd, &err);

    g_assert_no_error(err);
    g_assert_nonnull(j);
    return j;
}

/* Opening must fail with code; returns the message (g_free). */
static char *jopen_fails(struct fx *f, int code)
{
    GError *err = NULL;
    struct mg_wjournal *j = mg_wjournal_open(f->dfd, &err);
    char *msg;

    g_assert_null(j);
    g_assert_error(err, MG_WJOURNAL_ERROR, code);
    msg = g_strdup(err->message);
    g_error_free(err);
    return msg;
}

static uint64_t begin(struct mg_wjournal *j, const char *key, const char *name, uint64_t ino)
{
    struct mg_wjournal_input in = {
        .in_key = key, .name = name, .dev = 2049, .ino = ino, .size = 1000 + ino, .mtime_ns = 7};
    GError *err = NULL;
    uint64_t id = 0;

    g_assert_true(mg_wjournal_begin(j, &id, &in, &err));
    g_assert_no_error(err);
    g_assert_cmpuint(id, >, 0);
    return id;
}

static void commit2(struct mg_wjournal *j, uint64_t id)
{
    const char *tmp[] = {".mugaika-1.tmp", ".mugaika-2.tmp"};
    const char *fin[] = {"a.pdf", "a.pdf.mugaika.txt"};
    GError *err = NULL;

    g_assert_true(mg_wjournal_commit(j, id, "out/user", "20250101-abcdefghijk", tmp, fin, 2, &err));
    g_assert_no_error(err);
}

static void done(struct mg_wjournal *j, uint64_t id)
{
    GError *err = NULL;

    g_assert_true(mg_wjournal_done(j, id, &err));
    g_assert_no_error(err);
}

static GPtrArray *pending(struct mg_wjournal *j)
{
    GError *err = NULL;
    GPtrArray *a = mg_wjournal_pending(j, &err);

    g_assert_no_error(err);
    g_assert_nonnull(a);
    return a;
}

static void assert_item_equal(const struct mg_wjournal_item *a, const struct mg_wjournal_item *b)
{
    g_assert_cmpuint(a->id, ==, b->id);
    g_assert_cmpint(a->state, ==, b->state);
    g_assert_cmpint(a->begin_time, ==, b->begin_time);
    g_assert_cmpstr(a->in_key, ==, b->in_key);
    g_assert_cmpstr(a->name, ==, b->name);
    g_assert_cmpuint(a->dev, ==, b->dev);
    g_assert_cmpuint(a->ino, ==, b->ino);
    g_assert_cmpuint(a->size, ==, b->size);
    g_assert_cmpint(a->mtime_ns, ==, b->mtime_ns);
    g_assert_cmpint(a->commit_time, ==, b->commit_time);
    g_assert_cmpstr(a->out_key, ==, b->out_key);
    g_assert_cmpstr(a->quarantine_id, ==, b->quarantine_id);
    g_assert_cmpuint(a->n_outputs, ==, b->n_outputs);
    for (size_t i = 0; i < a->n_outputs; i++) {
        g_assert_cmpstr(a->tmp_names[i], ==, b->tmp_names[i]);
        g_assert_cmpstr(a->final_names[i], ==, b->final_names[i]);
    }
}

static void assert_pending_equal(GPtrArray *a, GPtrArray *b)
{
    g_assert_cmpuint(a->len, ==, b->len);
    for (guint i = 0; i < a->len; i++)
        assert_item_equal(a->pdata[i], b->pdata[i]);
}

static char *read_journal(struct fx *f, gsize *len)
{
    GError *err = NULL;
    char *data = NULL;

    g_assert_true(g_file_get_contents(f->journal, &data, len, &err));
    g_assert_no_error(err);
    return data;
}

static void write_journal(struct fx *f, const char *data, gsize len)
{
    GError *err = NULL;

    g_assert_true(g_file_set_contents(f->journal, data, (gssize)len, &err));
    g_assert_no_error(err);
}

static guint count_lines(const char *data, gsize len)
{
    guint n = 0;

    for (gsize i = 0; i < len; i++)
        n += data[i] == '\n';
    return n;
}

/* A line with a good checksum around json. */
static char *crafted(const char *json)
{
    return g_strdup_printf("%s %08lx\n", json, crc32(0, (const Bytef *)json, (uInt)strlen(json)));
}

/* --- round trip ------------------------------------------------------------ */

#define NOUT 100

static const char bad_utf8[] = "\xff\xfe\x80report\xe3\x81.doc"; /* not UTF-8 */
static const char japanese[] = "見積書（最終版）令和7年.docx";

static void test_round_trip(struct fx *f, gconstpointer data)
{
    struct mg_wjournal *j = jopen(f);
    struct mg_wjournal_input in_a = {.in_key = "\xe7\xb7\x8f\xe5\x8b\x99/\x82\xa0", /* 総務/CP932 */
                                     .name = bad_utf8,
                                     .dev = UINT64_MAX,
                                     .ino = UINT64_MAX - 1,
                                     .size = (uint64_t)1 << 40,
                                     .mtime_ns = INT64_MIN + 5};
    struct mg_wjournal_input in_b = {
        .in_key = "pair1/yamada", .name = japanese, .dev = 64769, .ino = 1, .mtime_ns = -1};
    char *tmp[NOUT], *fin[NOUT];
    GError *err = NULL;
    uint64_t a = 0, b = 0, c;
    GPtrArray *p, *again;
    const struct mg_wjournal_item *ia, *ib;

    (void)data;
    g_assert_true(mg_wjournal_begin(j, &a, &in_a, &err));
    g_assert_no_error(err);
    g_assert_true(mg_wjournal_begin(j, &b, &in_b, &err));
    g_assert_no_error(err);
    g_assert_cmpuint(a, ==, 1);
    g_assert_cmpuint(b, ==, 2);
    for (int i = 0; i < NOUT; i++) {
        tmp[i] = g_strdup_printf(".mugaika-tmp-%d-\x01\xff", i);
        fin[i] = g_strdup_printf("%s (%d)%s", japanese, i, i % 2 ? "\xfe" : "");
    }
    g_assert_true(mg_wjournal_commit(j, b, "\xe5\x87\xba/\xff", "20250102-0123456789a",
                                     (const char *const *)tmp, (const char *const *)fin, NOUT,
                                     &err));
    g_assert_no_error(err);
    c = begin(j, "pair1/x", "c.pdf", 3);
    commit2(j, c);
    done(j, c);

    p = pending(j);
    g_assert_cmpuint(p->len, ==, 2);
    ia = p->pdata[0];
    ib = p->pdata[1];
    g_assert_cmpuint(ia->id, ==, a);
    g_assert_cmpint(ia->state, ==, MG_WJOURNAL_BEGUN);
    g_assert_cmpstr(ia->in_key, ==, in_a.in_key);
    g_assert_cmpstr(ia->name, ==, bad_utf8);
    g_assert_cmpuint(ia->dev, ==, UINT64_MAX);
    g_assert_cmpuint(ia->ino, ==, UINT64_MAX - 1);
    g_assert_cmpuint(ia->size, ==, (uint64_t)1 << 40);
    g_assert_cmpint(ia->mtime_ns, ==, INT64_MIN + 5);
    g_assert_null(ia->quarantine_id);
    g_assert_cmpuint(ia->n_outputs, ==, 0);
    g_assert_cmpuint(ib->id, ==, b);
    g_assert_cmpint(ib->state, ==, MG_WJOURNAL_COMMITTED);
    g_assert_cmpstr(ib->name, ==, japanese);
    g_assert_cmpstr(ib->in_key, ==, "pair1/yamada");
    g_assert_cmpint(ib->mtime_ns, ==, -1);
    g_assert_cmpstr(ib->out_key, ==, "\xe5\x87\xba/\xff");
    g_assert_cmpstr(ib->quarantine_id, ==, "20250102-0123456789a");
    g_assert_cmpuint(ib->n_outputs, ==, NOUT);
    for (int i = 0; i < NOUT; i++) {
        g_assert_cmpstr(ib->tmp_names[i], ==, tmp[i]);
        g_assert_cmpstr(ib->final_names[i], ==, fin[i]);
    }
    g_assert_null(ib->tmp_names[NOUT]);
    g_assert_null(ib->final_names[NOUT]);

    /* Calls that do not fit the state: refused, nothing written. */
    {
        uint64_t size = mg_wjournal_size(j);

        g_assert_false(mg_wjournal_done(j, a, &err)); /* not committed */
        g_assert_error(err, MG_WJOURNAL_ERROR, MG_WJOURNAL_ERROR_STATE);
        g_clear_error(&err);
        g_assert_false(mg_wjournal_abort(j, b, &err)); /* committed */
        g_assert_error(err, MG_WJOURNAL_ERROR, MG_WJOURNAL_ERROR_STATE);
        g_clear_error(&err);
        commit2(j, a);
        g_assert_false(mg_wjournal_commit(j, a, "o", "q", NULL, NULL, 0, &err)); /* twice */
        g_assert_error(err, MG_WJOURNAL_ERROR, MG_WJOURNAL_ERROR_STATE);
        g_clear_error(&err);
        g_assert_false(mg_wjournal_done(j, c, &err)); /* closed */
        g_assert_error(err, MG_WJOURNAL_ERROR, MG_WJOURNAL_ERROR_STATE);
        g_clear_error(&err);
        g_assert_false(mg_wjournal_failed(j, 999, "x", &err)); /* unknown */
        g_assert_error(err, MG_WJOURNAL_ERROR, MG_WJOURNAL_ERROR_STATE);
        g_clear_error(&err);
        g_assert_cmpuint(mg_wjournal_size(j), >, size); /* only the commit of a */
    }
    g_ptr_array_unref(p);
    p = pending(j);

    /* The same after a reopen. */
    mg_wjournal_close(j);
    j = jopen(f);
    g_assert_cmpuint(mg_wjournal_torn(j), ==, 0);
    again = pending(j);
    assert_pending_equal(p, again);
    g_ptr_array_unref(again);

    /* Close them all: failed from committed, abort from begun. */
    c = begin(j, "k", "d", 4);
    g_assert_true(mg_wjournal_abort(j, c, &err));
    g_assert_no_error(err);
    g_assert_true(mg_wjournal_failed(j, a, "\xff zip encrypted\n", &err));
    g_assert_no_error(err);
    done(j, b);
    again = pending(j);
    g_assert_cmpuint(again->len, ==, 0);
    g_ptr_array_unref(again);
    mg_wjournal_close(j);
    j = jopen(f);
    again = pending(j);
    g_assert_cmpuint(again->len, ==, 0);
    g_ptr_array_unref(again);
    mg_wjournal_close(j);

    g_ptr_array_unref(p);
    for (int i = 0; i < NOUT; i++) {
        g_free(tmp[i]);
        g_free(fin[i]);
    }
}

/* --- ids --------------------------------------------------------------------- */

static void test_ids(struct fx *f, gconstpointer data)
{
    struct mg_wjournal *j = jopen(f);
    GError *err = NULL;
    uint64_t id;

    (void)data;
    for (uint64_t i = 1; i <= 3; i++)
        g_assert_cmpuint(begin(j, "k", "n", i), ==, i);
    mg_wjournal_close(j);
    j = jopen(f);
    id = begin(j, "k", "n", 4);
    g_assert_cmpuint(id, ==, 4);
    for (uint64_t i = 1; i <= 4; i++) {
        commit2(j, i);
        done(j, i);
    }
    g_assert_true(mg_wjournal_compact(j, &err));
    g_assert_no_error(err);
    mg_wjournal_close(j);
    j = jopen(f);
    g_assert_cmpuint(begin(j, "k", "n", 5), ==, 5);
    mg_wjournal_close(j);
}

/* --- torn last line ------------------------------------------------------------ */

/* A journal whose last line is the begin of item 2; *last is where that
 * line starts. */
static char *torn_base(struct fx *f, gsize *len, gsize *last)
{
    struct mg_wjournal *j = jopen(f);
    char *data;

    commit2(j, begin(j, "k", bad_utf8, 1));
    *last = mg_wjournal_size(j);
    begin(j, "k", japanese, 2);
    mg_wjournal_close(j);
    data = read_journal(f, len);
    g_assert_cmpuint(*len, >, *last);
    g_assert_cmpint(data[*last - 1], ==, '\n');
    return data;
}

/* Opens the journal holding data and checks what survived. */
static void check_cut(struct fx *f, const char *data, gsize len, gsize last, bool whole)
{
    struct mg_wjournal *j = jopen(f);
    GPtrArray *p = pending(j);
    const struct mg_wjournal_item *it;
    struct stat st;
    char *after;
    gsize after_len;

    g_assert_cmpuint(p->len, ==, whole ? 2 : 1);
    it = p->pdata[0];
    g_assert_cmpuint(it->id, ==, 1);
    g_assert_cmpint(it->state, ==, MG_WJOURNAL_COMMITTED);
    g_assert_cmpstr(it->name, ==, bad_utf8);
    g_assert_cmpuint(it->n_outputs, ==, 2);
    g_assert_cmpstr(it->final_names[1], ==, "a.pdf.mugaika.txt");
    if (whole)
        g_assert_cmpstr(((struct mg_wjournal_item *)p->pdata[1])->name, ==, japanese);
    g_ptr_array_unref(p);
    g_assert_cmpuint(mg_wjournal_torn(j), ==, len > last && !whole ? 1 : 0);
    g_assert_cmpint(stat(f->journal, &st), ==, 0);
    g_assert_cmpuint((guint64)st.st_size, ==, whole ? len : last);
    g_assert_cmpuint(mg_wjournal_size(j), ==, (guint64)st.st_size);

    /* The next record starts on a line of its own. */
    g_assert_cmpuint(begin(j, "k", "next", 9), ==, whole ? 3 : 2);
    mg_wjournal_close(j);
    j = jopen(f);
    g_assert_cmpuint(mg_wjournal_torn(j), ==, 0);
    p = pending(j);
    g_assert_cmpuint(p->len, ==, whole ? 3 : 2);
    g_ptr_array_unref(p);
    mg_wjournal_close(j);
    after = read_journal(f, &after_len);
    g_assert_cmpmem(after, MIN(after_len, last), data, last);
    g_free(after);
}

static void test_torn(struct fx *f, gconstpointer data)
{
    gsize len, last;
    char *full = torn_base(f, &len, &last);
    char *zeros;

    (void)data;
    for (gsize k = last; k <= len; k++) {
        write_journal(f, full, k);
        check_cut(f, full, k, last, k == len);
    }
    /* Power loss: the last record's blocks hold zeros, with or without
     * the newline. */
    zeros = g_memdup2(full, len);
    memset(zeros + last, 0, len - last);
    write_journal(f, zeros, len);
    check_cut(f, full, len, last, false);
    zeros[len - 1] = '\n';
    write_journal(f, zeros, len);
    check_cut(f, full, len, last, false);
    g_free(zeros);

    /* A changed digit leaves valid JSON: only the checksum tells. */
    zeros = g_memdup2(full, len);
    {
        char *ino = g_strstr_len(zeros + last, (gssize)(len - last), "\"ino\":2,");

        g_assert_nonnull(ino);
        ino[6] = '3';
    }
    write_journal(f, zeros, len);
    check_cut(f, full, len, last, false);
    g_free(zeros);

    /* Only a torn first (base) line: a fresh journal. */
    write_journal(f, full, 10);
    {
        struct mg_wjournal *j = jopen(f);
        GPtrArray *p = pending(j);

        g_assert_cmpuint(mg_wjournal_torn(j), ==, 1);
        g_assert_cmpuint(p->len, ==, 0);
        g_assert_cmpuint(begin(j, "k", "n", 1), ==, 1);
        g_ptr_array_unref(p);
        mg_wjournal_close(j);
    }
    g_free(full);
}

/* --- corrupt lines --------------------------------------------------------------- */

static void assert_line(const char *msg, unsigned line)
{
    char *want = g_strdup_printf("line %u: ", line);

    if (!strstr(msg, want))
        g_error("message \"%s\" does not name %s", msg, want);
    g_free(want);
}

static void test_corrupt(struct fx *f, gconstpointer data)
{
    struct mg_wjournal *j = jopen(f);
    gsize len;
    char *full, *copy, *msg, *nl, *line;
    GString *s;

    (void)data;
    commit2(j, begin(j, "k", "a", 1));
    begin(j, "k", "b", 2);
    mg_wjournal_close(j);
    full = read_journal(f, &len);
    g_assert_cmpuint(count_lines(full, len), ==, 4);

    /* A byte of line 2 (the first begin) changed: not the last line. */
    copy = g_memdup2(full, len);
    nl = strchr(copy, '\n');
    nl[10] ^= 0x01;
    write_journal(f, copy, len);
    msg = jopen_fails(f, MG_WJOURNAL_ERROR_CORRUPT);
    assert_line(msg, 2);
    g_assert_nonnull(strstr(msg, f->journal));
    g_free(msg);
    g_free(copy);

    /* The third line cut short (its newline kept): line 3 is named. */
    s = g_string_new_len(full, (gssize)len);
    nl = strchr(strchr(s->str, '\n') + 1, '\n');
    g_string_erase(s, nl + 1 - s->str + 5, 20);
    write_journal(f, s->str, s->len);
    msg = jopen_fails(f, MG_WJOURNAL_ERROR_CORRUPT);
    assert_line(msg, 3);
    g_free(msg);
    g_string_free(s, TRUE);

    /* A bad line followed by a partial one: the bad one is named. */
    copy = g_memdup2(full, len);
    copy[len - 5] = 'x';
    s = g_string_new_len(copy, (gssize)len);
    g_string_append(s, "{\"op\":");
    write_journal(f, s->str, s->len);
    msg = jopen_fails(f, MG_WJOURNAL_ERROR_CORRUPT);
    assert_line(msg, 4);
    g_free(msg);
    g_string_free(s, TRUE);
    g_free(copy);

    /* A last line with a good checksum but a commit for no item: never
     * taken for a torn write. */
    s = g_string_new_len(full, (gssize)len);
    line =
        crafted("{\"op\":\"commit\",\"id\":77,\"time\":1,\"out\":\"\",\"q\":\"x\",\"files\":[]}");
    g_string_append(s, line);
    g_free(line);
    write_journal(f, s->str, s->len);
    msg = jopen_fails(f, MG_WJOURNAL_ERROR_CORRUPT);
    assert_line(msg, 5);
    g_assert_nonnull(strstr(msg, "no such pending item"));
    g_free(msg);
    g_string_free(s, TRUE);

    /* An id that goes backwards; a name that is not canonical base64. */
    s = g_string_new_len(full, (gssize)len);
    line = crafted("{\"op\":\"begin\",\"id\":2,\"time\":1,\"in\":\"\",\"name\":\"YQ==\",\"dev\":1,"
                   "\"ino\":1,\"size\":1,\"mtime_ns\":1}");
    g_string_append(s, line);
    g_free(line);
    write_journal(f, s->str, s->len);
    msg = jopen_fails(f, MG_WJOURNAL_ERROR_CORRUPT);
    assert_line(msg, 5);
    g_free(msg);
    g_string_free(s, TRUE);
    s = g_string_new_len(full, (gssize)len);
    line = crafted("{\"op\":\"begin\",\"id\":3,\"time\":1,\"in\":\"\",\"name\":\"YR==\",\"dev\":1,"
                   "\"ino\":1,\"size\":1,\"mtime_ns\":1}");
    g_string_append(s, line);
    g_free(line);
    write_journal(f, s->str, s->len);
    msg = jopen_fails(f, MG_WJOURNAL_ERROR_CORRUPT);
    assert_line(msg, 5);
    g_free(msg);
    g_string_free(s, TRUE);

    /* A format this code does not know. */
    line = crafted("{\"op\":\"base\",\"v\":2,\"next\":1}");
    write_journal(f, line, strlen(line));
    msg = jopen_fails(f, MG_WJOURNAL_ERROR_CORRUPT);
    assert_line(msg, 1);
    g_assert_nonnull(strstr(msg, "version"));
    g_free(msg);
    g_free(line);

    /* The untouched journal still opens. */
    write_journal(f, full, len);
    j = jopen(f);
    mg_wjournal_close(j);
    g_free(full);
}

/* --- lock -------------------------------------------------------------------- */

static void test_lock(struct fx *f, gconstpointer data)
{
    struct mg_wjournal *j = jopen(f);
    char *msg;

    (void)data;
    msg = jopen_fails(f, MG_WJOURNAL_ERROR_LOCKED);
    g_assert_nonnull(strstr(msg, f->journal));
    g_free(msg);
    begin(j, "k", "n", 1); /* the first is unaffected */
    mg_wjournal_close(j);
    j = jopen(f);
    mg_wjournal_close(j);

    /* Also across a compaction, which replaces the file. */
    j = jopen(f);
    g_assert_true(mg_wjournal_compact(j, NULL));
    g_free(jopen_fails(f, MG_WJOURNAL_ERROR_LOCKED));
    mg_wjournal_close(j);
}

/* --- compaction ------------------------------------------------------------------ */

static void test_compact(struct fx *f, gconstpointer data)
{
    struct mg_wjournal *j = jopen(f);
    GError *err = NULL;
    GPtrArray *before, *after;
    uint64_t size, keep_begun = 0, keep_committed = 0;
    gsize len;
    char *text;
    char *stale;

    (void)data;
    for (uint64_t i = 1; i <= 50; i++) {
        uint64_t id = begin(j, "pair/user", "file.docx", i);

        if (i == 17) {
            keep_begun = id;
            continue;
        }
        commit2(j, id);
        if (i == 33) {
            keep_committed = id;
            continue;
        }
        done(j, id);
    }
    before = pending(j);
    g_assert_cmpuint(before->len, ==, 2);
    size = mg_wjournal_size(j);
    g_assert_true(mg_wjournal_compact(j, &err));
    g_assert_no_error(err);
    g_assert_cmpuint(mg_wjournal_size(j), <, size / 10);
    after = pending(j);
    assert_pending_equal(before, after);
    g_ptr_array_unref(after);
    g_assert_false(g_file_test(f->journal, G_FILE_TEST_IS_SYMLINK));
    text = read_journal(f, &len);
    g_assert_cmpuint(len, ==, mg_wjournal_size(j));
    g_assert_cmpuint(count_lines(text, len), ==, 4); /* base, begin, begin + commit */
    g_free(text);

    /* Records after the compaction land in the new file. */
    done(j, keep_committed);
    mg_wjournal_close(j);
    j = jopen(f);
    after = pending(j);
    g_assert_cmpuint(after->len, ==, 1);
    assert_item_equal(before->pdata[0], after->pdata[0]);
    g_assert_cmpuint(((struct mg_wjournal_item *)after->pdata[0])->id, ==, keep_begun);
    g_ptr_array_unref(after);
    g_assert_cmpuint(begin(j, "k", "n", 51), ==, 51);
    mg_wjournal_close(j);

    /* A crash during compaction left journal.new: open removes it and
     * reads the journal. */
    stale = g_build_filename(f->dir, MG_WJOURNAL_NEW_NAME, NULL);
    g_assert_true(g_file_set_contents(stale, "{\"op\":\"base\"", -1, NULL));
    j = jopen(f);
    g_assert_false(g_file_test(stale, G_FILE_TEST_EXISTS));
    after = pending(j);
    g_assert_cmpuint(after->len, ==, 2);
    g_ptr_array_unref(after);
    mg_wjournal_close(j);
    g_free(stale);
    g_ptr_array_unref(before);
}

static void test_symlink(struct fx *f, gconstpointer data)
{
    char *msg;

    (void)data;
    g_assert_cmpint(symlink("/dev/null", f->journal), ==, 0);
    msg = jopen_fails(f, MG_WJOURNAL_ERROR_IO);
    g_assert_nonnull(strstr(msg, "open"));
    g_free(msg);
}

#define ADD(path, fn) g_test_add(path, struct fx, NULL, fx_setup, fn, fx_teardown)

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    ADD("/journal/round-trip", test_round_trip);
    ADD("/journal/ids", test_ids);
    ADD("/journal/torn", test_torn);
    ADD("/journal/corrupt", test_corrupt);
    ADD("/journal/lock", test_lock);
    ADD("/journal/compact", test_compact);
    ADD("/journal/symlink", test_symlink);
    return g_test_run();
}
