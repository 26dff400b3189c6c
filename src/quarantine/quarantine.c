/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * NAME
 *	quarantine 3
 * SUMMARY
 *	content-addressed store of originals with a SQLite index
 * SYNOPSIS
 *	#include <mugaika/quarantine.h>
 *
 *	struct mg_quarantine *mg_quarantine_open(const char *dir, GError **err);
 *	struct mg_quarantine *mg_quarantine_open_existing(const char *dir, GError **err);
 *	void mg_quarantine_close(struct mg_quarantine *q);
 *
 *	struct mg_qwrite *mg_quarantine_write_begin(struct mg_quarantine *q, GError **err);
 *	bool mg_qwrite_feed(struct mg_qwrite *w, const void *buf, size_t len, GError **err);
 *	bool mg_qwrite_commit(struct mg_qwrite *w, struct mg_qrecord *rec, GError **err);
 *	void mg_qwrite_abort(struct mg_qwrite *w);
 *
 *	bool mg_quarantine_list(q, limit, GPtrArray **out, GError **err);
 *	bool mg_quarantine_get(q, id, struct mg_qrecord *out, GError **err);
 *	bool mg_quarantine_export(q, id, int fd, GError **err);
 *	bool mg_quarantine_verify(q, id, GError **err);
 *	bool mg_quarantine_expire(q, days, unsigned *removed, GError **err);
 * DESCRIPTION
 *	mg_quarantine_open creates DIR, DIR/objects and DIR/tmp (mode
 *	0700) when missing, opens DIR/index.sqlite (created 0600) in WAL
 *	mode with synchronous=FULL and a 10 s busy timeout, and removes
 *	files in tmp/ older than one hour (left by a crash).
 *	mg_quarantine_open_existing creates nothing and removes nothing.
 *
 *	A write hashes the original (SHA-256) and compresses it into
 *	tmp/<random> (O_EXCL, 0600) as a gzip file of one member per
 *	256 KiB of input (GZ_BLOCK), each deflated whole by libdeflate at
 *	level 1; gzip -d and zlib read the members as one stream. Mail is
 *	mostly base64 and text, which level 1 shrinks about as well as
 *	the higher levels, and libdeflate does it in half the time of
 *	zlib's level 1 (Huffman coding alone on base64, which LZ77 does
 *	not help). Memory stays bounded (one block, its compressed bound
 *	and the compressor) whatever the size. Past its first MiB
 *	(QW_THREAD_AT), an original is hashed
 *	and compressed by a thread of its own, so that a large mail is
 *	stored while the caller parses and scans it: feed copies into
 *	256 KiB chunks and waits while 4 MiB are queued (memory stays
 *	bounded); a failure of the thread is reported by the next feed
 *	and by commit. Small mail is compressed in the caller's thread.
 *	Commit flushes and fsyncs the file, then under SQLite's
 *	write lock (BEGIN IMMEDIATE, which orders all processes):
 *	creates objects/ab (fsyncing objects/), keeps an existing
 *	non-empty object of the same name or renames the file into
 *	place and fsyncs objects/ab, inserts the row (a new id on a
 *	primary key clash) and commits. A failure after the rename
 *	leaves an orphan object (removed by the next expire), never a
 *	row without its object. Any failure removes the temporary file;
 *	a failed feed removes it at once and the write stays failed.
 *
 *	Export streams the object through inflate into fd while hashing;
 *	size and SHA-256 are compared with the row at the end, and the
 *	output is cut as soon as it grows past the recorded size.
 *	Verify does the same without writing.
 *
 *	Expire deletes the old rows in one transaction; then, in a
 *	second one that only holds the write lock, it unlinks every
 *	object file no row names. A crash between the two leaves orphan
 *	objects, never dangling rows.
 *
 *	Threads: one connection per struct mg_quarantine, guarded by a
 *	GMutex; the object file I/O of writes runs outside the mutex.
 *	Ownership: records returned by get/list own their strings
 *	(mg_qrecord_clear / mg_qrecord_free); mg_quarantine_dir is
 *	borrowed until close.
 * LIMITS
 *	Ids: 10 attempts on a primary key clash (56 random bits each).
 * DIAGNOSTICS
 *	GError MG_QUARANTINE_ERROR: _IO with the path, the operation and
 *	the OS or SQLite error; _NOT_FOUND; _CORRUPT (object missing,
 *	not gzip, truncated, wrong size or SHA-256).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h> /* rename */
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/io.h"
#include "core/random.h"
#include "core/sha256.h"

#include <glib.h>
#include <libdeflate.h>
#include <sqlite3.h>
#include <zlib.h>

#include <mugaika/quarantine.h>

#define CHUNK          65536
#define GZ_LEVEL       1
#define GZ_BLOCK       (256u * 1024) /* input bytes per gzip member */
#define QW_THREAD_AT   (1u << 20)    /* fed past this, a thread compresses */
#define QW_CHUNK       (256u * 1024)
#define QW_MAX_QUEUED  (16u) /* chunks waiting for the thread (4 MiB) */
#define BUSY_MS        10000
#define STALE_SECONDS  3600
#define ID_RANDOM      11
#define ID_TRIES       10
#define SCHEMA_VERSION 1

GQuark mg_quarantine_error_quark(void)
{
    return g_quark_from_static_string("mg-quarantine-error-quark");
}

enum stmt {
    ST_BEGIN,
    ST_COMMIT,
    ST_ROLLBACK,
    ST_INSERT,
    ST_GET,
    ST_LIST,
    ST_EXPIRE,
    ST_REFS,
    ST_COUNT
};

#define RECORD_COLUMNS                                                                             \
    "id, time, kind, message_id, sender, recipients, subject, sha256, size, result, parts_json"

static const char *const stmt_sql[ST_COUNT] = {
    [ST_BEGIN] = "BEGIN IMMEDIATE",
    [ST_COMMIT] = "COMMIT",
    [ST_ROLLBACK] = "ROLLBACK",
    [ST_INSERT] = "INSERT INTO items (" RECORD_COLUMNS ") "
                  "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
    [ST_GET] = "SELECT " RECORD_COLUMNS " FROM items WHERE id = ?1",
    [ST_LIST] = "SELECT " RECORD_COLUMNS " FROM items ORDER BY time DESC, rowid DESC LIMIT ?1",
    [ST_EXPIRE] = "DELETE FROM items WHERE time < ?1",
    [ST_REFS] = "SELECT 1 FROM items WHERE sha256 = ?1 LIMIT 1",
};

static const char schema_sql[] =
    "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL);"
    "CREATE TABLE IF NOT EXISTS items ("
    " id TEXT PRIMARY KEY NOT NULL,"
    " time INTEGER NOT NULL,"
    " kind TEXT, message_id TEXT, sender TEXT, recipients TEXT, subject TEXT,"
    " sha256 TEXT NOT NULL,"
    " size INTEGER NOT NULL,"
    " result TEXT, parts_json TEXT);"
    "CREATE INDEX IF NOT EXISTS items_time ON items (time);"
    "CREATE INDEX IF NOT EXISTS items_sha256 ON items (sha256);"
    "INSERT INTO schema_version (version) SELECT 1"
    " WHERE NOT EXISTS (SELECT 1 FROM schema_version);";

struct mg_quarantine {
    char *dir;
    char *objects; /* dir/objects */
    char *tmp;     /* dir/tmp */
    char *index;   /* dir/index.sqlite */
    GMutex lock;   /* guards db and st */
    sqlite3 *db;
    sqlite3_stmt *st[ST_COUNT];
};

struct mg_qwrite {
    struct mg_quarantine *q;
    char *tmp_path; /* NULL once removed or renamed */
    int fd;
    struct libdeflate_compressor *dc;
    struct mg_sha256 *sum;
    uint64_t size;
    unsigned char *blk; /* input of the next member, grown up to GZ_BLOCK */
    size_t blk_len, blk_cap;
    unsigned char *out; /* a member, out_cap bytes (libdeflate's bound) */
    size_t out_cap;
    bool member;    /* one member written at least */
    GError *failed; /* sticky: a feed failed */

    /* the compressing thread (started past QW_THREAD_AT) */
    GThread *thread;
    GMutex mu;
    GCond cond;
    GQueue queue;    /* of GBytes, for the thread */
    bool eof;        /* no more chunks: the thread ends */
    GError *tfailed; /* the thread's failure (under mu) */
    guint8 *chunk;   /* filling, QW_CHUNK bytes */
    size_t chunk_len;
};

/* --- errors ------------------------------------------------------------ */

static void set_os_error(GError **err, const char *path, const char *op, int e)
{
    g_set_error(err, MG_QUARANTINE_ERROR, MG_QUARANTINE_ERROR_IO, "%s: %s: %s", path, op,
                g_strerror(e));
}

/* Caller holds q->lock (errmsg belongs to the connection). */
static void set_db_error(struct mg_quarantine *q, GError **err, const char *op)
{
    int e = sqlite3_system_errno(q->db);

    if (e != 0)
        g_set_error(err, MG_QUARANTINE_ERROR, MG_QUARANTINE_ERROR_IO, "%s: %s: %s (%s)", q->index,
                    op, sqlite3_errmsg(q->db), g_strerror(e));
    else
        g_set_error(err, MG_QUARANTINE_ERROR, MG_QUARANTINE_ERROR_IO, "%s: %s: %s", q->index, op,
                    sqlite3_errmsg(q->db));
}

/* --- small file helpers ------------------------------------------------ */

static bool fsync_dir(const char *path, GError **err)
{
    int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    int e;

    if (fd < 0) {
        set_os_error(err, path, "open directory", errno);
        return false;
    }
    if (fsync(fd) != 0) {
        e = errno;
        close(fd);
        set_os_error(err, path, "fsync directory", e);
        return false;
    }
    close(fd);
    return true;
}

/* mkdir 0700; *created tells whether it is new. */
static bool make_dir(const char *path, bool *created, GError **err)
{
    struct stat st;

    *created = false;
    if (mkdir(path, 0700) == 0) {
        *created = true;
        return true;
    }
    if (errno != EEXIST) {
        set_os_error(err, path, "mkdir", errno);
        return false;
    }
    if (stat(path, &st) != 0) {
        set_os_error(err, path, "stat", errno);
        return false;
    }
    if (!S_ISDIR(st.st_mode)) {
        set_os_error(err, path, "mkdir", ENOTDIR);
        return false;
    }
    return true;
}

/* n characters of [0-9a-z], uniform, then a NUL. */
static void random_name(char *out, size_t n)
{
    static const char set[] = "0123456789abcdefghijklmnopqrstuvwxyz";
    unsigned char b[32];
    size_t i = 0, k = sizeof b;

    while (i < n) {
        if (k == sizeof b) {
            mg_random_fill(b, sizeof b);
            k = 0;
        }
        if (b[k] < 252) /* 252 = 7 * 36: no modulo bias */
            out[i++] = set[b[k] % 36];
        k++;
    }
    out[n] = '\0';
}

static bool is_sha256_hex(const char *s)
{
    size_t i;

    if (s == NULL)
        return false;
    for (i = 0; i < 64; i++)
        if (!g_ascii_isxdigit(s[i]) || g_ascii_isupper(s[i]))
            return false;
    return s[64] == '\0';
}

static char *object_path(const struct mg_quarantine *q, const char *sha)
{
    return g_strdup_printf("%s/%.2s/%s.gz", q->objects, sha, sha);
}

/* --- open / close ------------------------------------------------------ */

static bool db_exec(struct mg_quarantine *q, const char *sql, const char *op, GError **err)
{
    if (sqlite3_exec(q->db, sql, NULL, NULL, NULL) != SQLITE_OK) {
        set_db_error(q, err, op);
        return false;
    }
    return true;
}

/* Switching to WAL can answer SQLITE_BUSY at once, without the busy
 * handler, while another process opens the same new index: retry for
 * the busy timeout. */
static bool set_wal(struct mg_quarantine *q, GError **err)
{
    int64_t deadline = g_get_monotonic_time() + (int64_t)BUSY_MS * 1000;
    int rc;

    while ((rc = sqlite3_exec(q->db, "PRAGMA journal_mode=WAL", NULL, NULL, NULL)) != SQLITE_OK) {
        if ((rc & 0xff) != SQLITE_BUSY || g_get_monotonic_time() > deadline) {
            set_db_error(q, err, "journal_mode");
            return false;
        }
        g_usleep(10000);
    }
    return true;
}

static bool db_setup(struct mg_quarantine *q, GError **err)
{
    sqlite3_stmt *v = NULL;
    int version = 0;

    sqlite3_extended_result_codes(q->db, 1);
    sqlite3_busy_timeout(q->db, BUSY_MS);
    if (!set_wal(q, err) || !db_exec(q, "PRAGMA synchronous=FULL", "synchronous", err))
        return false;
    if (!db_exec(q, "BEGIN IMMEDIATE", "begin", err))
        return false;
    if (!db_exec(q, schema_sql, "create schema", err)) {
        sqlite3_exec(q->db, "ROLLBACK", NULL, NULL, NULL);
        return false;
    }
    if (!db_exec(q, "COMMIT", "commit schema", err)) {
        sqlite3_exec(q->db, "ROLLBACK", NULL, NULL, NULL);
        return false;
    }
    if (sqlite3_prepare_v2(q->db, "SELECT max(version) FROM schema_version", -1, &v, NULL) !=
            SQLITE_OK ||
        sqlite3_step(v) != SQLITE_ROW) {
        set_db_error(q, err, "schema version");
        sqlite3_finalize(v);
        return false;
    }
    version = sqlite3_column_int(v, 0);
    sqlite3_finalize(v);
    if (version != SCHEMA_VERSION) {
        g_set_error(err, MG_QUARANTINE_ERROR, MG_QUARANTINE_ERROR_IO,
                    "%s: index schema version %d, this program knows %d", q->index, version,
                    SCHEMA_VERSION);
        return false;
    }
    for (int i = 0; i < ST_COUNT; i++) {
        if (sqlite3_prepare_v3(q->db, stmt_sql[i], -1, SQLITE_PREPARE_PERSISTENT, &q->st[i],
                               NULL) != SQLITE_OK) {
            set_db_error(q, err, "prepare");
            return false;
        }
    }
    return true;
}

static struct mg_quarantine *quarantine_new(const char *dir)
{
    struct mg_quarantine *q = g_new0(struct mg_quarantine, 1);

    q->dir = g_strdup(dir);
    q->objects = g_build_filename(dir, "objects", NULL);
    q->tmp = g_build_filename(dir, "tmp", NULL);
    q->index = g_build_filename(dir, "index.sqlite", NULL);
    g_mutex_init(&q->lock);
    return q;
}

static struct mg_quarantine *open_db(struct mg_quarantine *q, int flags, GError **err)
{
    int rc =
        sqlite3_open_v2(q->index, &q->db, flags | SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_NOFOLLOW, NULL);

    if (rc != SQLITE_OK) {
        if (q->db != NULL)
            set_db_error(q, err, "open");
        else
            g_set_error(err, MG_QUARANTINE_ERROR, MG_QUARANTINE_ERROR_IO, "%s: open: %s", q->index,
                        sqlite3_errstr(rc));
        mg_quarantine_close(q);
        return NULL;
    }
    if (!db_setup(q, err)) {
        mg_quarantine_close(q);
        return NULL;
    }
    return q;
}

/* Removes regular files in tmp/ last changed more than an hour ago. */
static void remove_stale_tmp(const struct mg_quarantine *q)
{
    DIR *d = opendir(q->tmp);
    struct dirent *de;
    time_t cutoff = time(NULL) - STALE_SECONDS;
    struct stat st;

    if (d == NULL)
        return;
    while ((de = readdir(d)) != NULL) {
        if (de->d_name[0] == '.')
            continue;
        if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0)
            continue;
        if (S_ISREG(st.st_mode) && st.st_mtime < cutoff)
            unlinkat(dirfd(d), de->d_name, 0);
    }
    closedir(d);
}

struct mg_quarantine *mg_quarantine_open(const char *dir, GError **err)
{
    struct mg_quarantine *q;
    bool c1, c2;
    int fd;

    if (g_mkdir_with_parents(dir, 0700) != 0) {
        set_os_error(err, dir, "mkdir", errno);
        return NULL;
    }
    q = quarantine_new(dir);
    if (!make_dir(q->dir, &c1, err) || !make_dir(q->objects, &c1, err) ||
        !make_dir(q->tmp, &c2, err) || ((c1 || c2) && !fsync_dir(q->dir, err))) {
        mg_quarantine_close(q);
        return NULL;
    }
    /* SQLite would create the index 0644; make it 0600 first (the WAL
     * files take the index file's mode). */
    fd = open(q->index, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0) {
        set_os_error(err, q->index, "open", errno);
        mg_quarantine_close(q);
        return NULL;
    }
    close(fd);
    remove_stale_tmp(q);
    return open_db(q, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, err);
}

struct mg_quarantine *mg_quarantine_open_existing(const char *dir, GError **err)
{
    struct mg_quarantine *q;
    struct stat st;

    if (stat(dir, &st) != 0) {
        if (errno == ENOENT)
            g_set_error(err, MG_QUARANTINE_ERROR, MG_QUARANTINE_ERROR_NOT_FOUND,
                        "%s: no such quarantine", dir);
        else
            set_os_error(err, dir, "stat", errno);
        return NULL;
    }
    if (!S_ISDIR(st.st_mode)) {
        set_os_error(err, dir, "open quarantine", ENOTDIR);
        return NULL;
    }
    q = quarantine_new(dir);
    if (lstat(q->index, &st) != 0) {
        if (errno == ENOENT)
            g_set_error(err, MG_QUARANTINE_ERROR, MG_QUARANTINE_ERROR_NOT_FOUND,
                        "%s: no such quarantine (no index.sqlite)", dir);
        else
            set_os_error(err, q->index, "stat", errno);
        mg_quarantine_close(q);
        return NULL;
    }
    return open_db(q, SQLITE_OPEN_READWRITE, err);
}

void mg_quarantine_close(struct mg_quarantine *q)
{
    if (q == NULL)
        return;
    for (int i = 0; i < ST_COUNT; i++)
        sqlite3_finalize(q->st[i]);
    sqlite3_close(q->db);
    g_mutex_clear(&q->lock);
    g_free(q->dir);
    g_free(q->objects);
    g_free(q->tmp);
    g_free(q->index);
    g_free(q);
}

const char *mg_quarantine_dir(const struct mg_quarantine *q)
{
    return q->dir;
}

/* --- records ----------------------------------------------------------- */

void mg_qrecord_clear(struct mg_qrecord *r)
{
    if (r == NULL)
        return;
    g_free(r->kind);
    g_free(r->message_id);
    g_free(r->sender);
    g_free(r->recipients);
    g_free(r->subject);
    g_free(r->sha256);
    g_free(r->result);
    g_free(r->parts_json);
    memset(r, 0, sizeof *r);
}

void mg_qrecord_free(struct mg_qrecord *r)
{
    if (r == NULL)
        return;
    mg_qrecord_clear(r);
    g_free(r);
}

static void qrecord_free_cb(gpointer p)
{
    mg_qrecord_free(p);
}

static char *column_dup(sqlite3_stmt *s, int col)
{
    const unsigned char *t = sqlite3_column_text(s, col);

    return t != NULL ? g_strdup((const char *)t) : NULL;
}

/* Columns in RECORD_COLUMNS order. */
static void record_from_row(sqlite3_stmt *s, struct mg_qrecord *r)
{
    const unsigned char *id = sqlite3_column_text(s, 0);

    memset(r, 0, sizeof *r);
    g_strlcpy(r->id, id != NULL ? (const char *)id : "", sizeof r->id);
    r->time = sqlite3_column_int64(s, 1);
    r->kind = column_dup(s, 2);
    r->message_id = column_dup(s, 3);
    r->sender = column_dup(s, 4);
    r->recipients = column_dup(s, 5);
    r->subject = column_dup(s, 6);
    r->sha256 = column_dup(s, 7);
    r->size = (uint64_t)sqlite3_column_int64(s, 8);
    r->result = column_dup(s, 9);
    r->parts_json = column_dup(s, 10);
}

/* Runs a statement without result rows; caller holds the lock. */
static bool step_done(struct mg_quarantine *q, enum stmt which, const char *op, GError **err)
{
    sqlite3_stmt *s = q->st[which];
    int rc = sqlite3_step(s);

    sqlite3_reset(s);
    if (rc != SQLITE_DONE) {
        set_db_error(q, err, op);
        return false;
    }
    return true;
}

static void rollback(struct mg_quarantine *q)
{
    if (!sqlite3_get_autocommit(q->db)) {
        sqlite3_step(q->st[ST_ROLLBACK]);
        sqlite3_reset(q->st[ST_ROLLBACK]);
    }
}

/* --- writing ----------------------------------------------------------- */

/* Closes and unlinks the temporary file, if any. */
static void qwrite_discard(struct mg_qwrite *w)
{
    if (w->fd >= 0) {
        close(w->fd);
        w->fd = -1;
    }
    if (w->tmp_path != NULL) {
        unlink(w->tmp_path);
        g_free(w->tmp_path);
        w->tmp_path = NULL;
    }
}

static void qwrite_stop(struct mg_qwrite *w);

static void qwrite_free(struct mg_qwrite *w)
{
    qwrite_stop(w);
    qwrite_discard(w);
    if (w->dc != NULL)
        libdeflate_free_compressor(w->dc);
    if (w->sum != NULL)
        mg_sha256_free(w->sum);
    if (w->failed != NULL)
        g_error_free(w->failed);
    g_free(w->out);
    g_free(w->blk);
    g_free(w->chunk);
    g_mutex_clear(&w->mu);
    g_cond_clear(&w->cond);
    g_free(w);
}

struct mg_qwrite *mg_quarantine_write_begin(struct mg_quarantine *q, GError **err)
{
    struct mg_qwrite *w = g_new0(struct mg_qwrite, 1);
    char name[24];

    w->q = q;
    w->fd = -1;
    g_mutex_init(&w->mu);
    g_cond_init(&w->cond);
    g_queue_init(&w->queue);
    for (int tries = 0; w->fd < 0; tries++) {
        random_name(name, 16);
        g_free(w->tmp_path);
        w->tmp_path = g_build_filename(q->tmp, name, NULL);
        w->fd = open(w->tmp_path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
        if (w->fd < 0 && (errno != EEXIST || tries == 10)) {
            set_os_error(err, w->tmp_path, "create", errno);
            g_free(w->tmp_path);
            w->tmp_path = NULL;
            qwrite_free(w);
            return NULL;
        }
    }
    if ((w->dc = libdeflate_alloc_compressor(GZ_LEVEL)) == NULL) {
        g_set_error(err, MG_QUARANTINE_ERROR, MG_QUARANTINE_ERROR_IO,
                    "%s: no memory for the compressor", w->tmp_path);
        qwrite_free(w);
        return NULL;
    }
    w->sum = mg_sha256_new();
    return w;
}

/* Writes n bytes of input (n <= GZ_BLOCK) as one gzip member. */
static bool write_member(struct mg_qwrite *w, const unsigned char *p, size_t n, GError **err)
{
    size_t bound = libdeflate_gzip_compress_bound(w->dc, n), m;
    int e;

    if (bound > w->out_cap) {
        g_free(w->out);
        w->out = g_malloc(bound);
        w->out_cap = bound;
    }
    m = libdeflate_gzip_compress(w->dc, p != NULL ? p : (const unsigned char *)"", n, w->out,
                                 w->out_cap);
    if (m == 0) {
        g_set_error(err, MG_QUARANTINE_ERROR, MG_QUARANTINE_ERROR_IO, "%s: deflate failed",
                    w->tmp_path);
        return false;
    }
    if ((e = mg_write_all(w->fd, w->out, m)) != 0) {
        set_os_error(err, w->tmp_path, "write", e);
        return false;
    }
    w->member = true;
    return true;
}

static void qwrite_fail(struct mg_qwrite *w, GError **err)
{
    if (err != NULL && *err != NULL && w->failed == NULL)
        w->failed = g_error_copy(*err);
    else if (w->failed == NULL)
        w->failed = g_error_new(MG_QUARANTINE_ERROR, MG_QUARANTINE_ERROR_IO, "write failed");
    qwrite_discard(w);
}

/* Hashes len bytes and compresses every full block, in this thread.
 * Whole blocks of the caller's buffer are compressed in place; the
 * rest waits in blk, which grows only as far as the input goes (small
 * mail needs no 256 KiB buffer). */
static bool qwrite_consume(struct mg_qwrite *w, const void *buf, size_t len, GError **err)
{
    const unsigned char *p = buf;

    mg_sha256_update(w->sum, p, len);
    while (len > 0) {
        size_t n;

        if (w->blk_len == 0 && len >= GZ_BLOCK) {
            if (!write_member(w, p, GZ_BLOCK, err))
                return false;
            p += GZ_BLOCK;
            len -= GZ_BLOCK;
            continue;
        }
        n = MIN(len, GZ_BLOCK - w->blk_len);
        if (w->blk_len + n > w->blk_cap) {
            size_t cap = MAX(w->blk_cap, 16384);
            while (cap < w->blk_len + n)
                cap *= 2;
            w->blk_cap = MIN(cap, GZ_BLOCK);
            w->blk = g_realloc(w->blk, w->blk_cap);
        }
        memcpy(w->blk + w->blk_len, p, n);
        w->blk_len += n;
        p += n;
        len -= n;
        if (w->blk_len == GZ_BLOCK) {
            if (!write_member(w, w->blk, GZ_BLOCK, err))
                return false;
            w->blk_len = 0;
        }
    }
    return true;
}

/* The thread: takes chunks until eof; after a failure it only drops
 * them (the failure is reported by the next feed and by commit). */
static gpointer qwrite_thread(gpointer u)
{
    struct mg_qwrite *w = u;
    bool ok = true;

    for (;;) {
        GBytes *b;
        GError *e = NULL;

        g_mutex_lock(&w->mu);
        while (g_queue_is_empty(&w->queue) && !w->eof)
            g_cond_wait(&w->cond, &w->mu);
        b = g_queue_pop_head(&w->queue);
        g_cond_broadcast(&w->cond); /* room for the feeder */
        g_mutex_unlock(&w->mu);
        if (b == NULL)
            break; /* eof, and nothing left */
        if (ok) {
            gsize n;
            const void *d = g_bytes_get_data(b, &n);
            if (!qwrite_consume(w, d, n, &e)) {
                ok = false;
                g_mutex_lock(&w->mu);
                w->tfailed = e;
                g_cond_broadcast(&w->cond);
                g_mutex_unlock(&w->mu);
            }
        }
        g_bytes_unref(b);
    }
    return NULL;
}

/* Hands the filled chunk to the thread, waiting for room. */
static void qwrite_push(struct mg_qwrite *w)
{
    GBytes *b;

    if (w->chunk_len == 0)
        return;
    b = g_bytes_new_take(w->chunk, w->chunk_len);
    w->chunk = NULL;
    w->chunk_len = 0;
    g_mutex_lock(&w->mu);
    while (g_queue_get_length(&w->queue) >= QW_MAX_QUEUED && w->tfailed == NULL)
        g_cond_wait(&w->cond, &w->mu);
    g_queue_push_tail(&w->queue, b);
    g_cond_broadcast(&w->cond);
    g_mutex_unlock(&w->mu);
}

/* Ends the thread, if any, once it has taken every chunk; a failure of
 * the thread becomes the write's (and its temporary file goes). */
static void qwrite_stop(struct mg_qwrite *w)
{
    if (w->thread == NULL)
        return;
    qwrite_push(w);
    g_mutex_lock(&w->mu);
    w->eof = true;
    g_cond_broadcast(&w->cond);
    g_mutex_unlock(&w->mu);
    g_thread_join(w->thread);
    w->thread = NULL;
    if (w->tfailed != NULL && w->failed == NULL) {
        w->failed = w->tfailed;
        w->tfailed = NULL;
        qwrite_discard(w);
    }
    g_clear_error(&w->tfailed);
}

/* The thread's failure, seen by the feeder: the write fails for good. */
static bool qwrite_thread_failed(struct mg_qwrite *w, GError **err)
{
    bool failed;

    g_mutex_lock(&w->mu);
    failed = w->tfailed != NULL;
    g_mutex_unlock(&w->mu);
    if (failed) {
        qwrite_stop(w);
        g_propagate_error(err, g_error_copy(w->failed));
    }
    return failed;
}

/* Small mail, or no thread to be had: in the caller's thread. */
static bool qwrite_inline(struct mg_qwrite *w, const void *buf, size_t len, GError **err)
{
    GError *e = NULL;

    w->size += len;
    if (!qwrite_consume(w, buf, len, &e)) {
        qwrite_fail(w, &e);
        g_propagate_error(err, e);
        return false;
    }
    return true;
}

bool mg_qwrite_feed(struct mg_qwrite *w, const void *buf, size_t len, GError **err)
{
    const unsigned char *p = buf;

    if (w->failed != NULL) {
        g_propagate_error(err, g_error_copy(w->failed));
        return false;
    }
    if (w->thread == NULL && w->size + len <= QW_THREAD_AT)
        return qwrite_inline(w, buf, len, err);
    if (w->thread == NULL &&
        (w->thread = g_thread_try_new("mugaika-qwrite", qwrite_thread, w, NULL)) == NULL)
        return qwrite_inline(w, buf, len, err);
    if (qwrite_thread_failed(w, err))
        return false;
    w->size += len;
    while (len > 0) {
        size_t n;

        if (w->chunk == NULL)
            w->chunk = g_malloc(QW_CHUNK);
        n = MIN(len, QW_CHUNK - w->chunk_len);
        memcpy(w->chunk + w->chunk_len, p, n);
        w->chunk_len += n;
        p += n;
        len -= n;
        if (w->chunk_len == QW_CHUNK)
            qwrite_push(w);
    }
    return true;
}

void mg_qwrite_abort(struct mg_qwrite *w)
{
    if (w != NULL)
        qwrite_free(w);
}

/* Under the lock and write transaction: puts the flushed, fsynced
 * temporary file in place as objects/ab/<sha>.gz, or drops it when
 * a non-empty object of that name exists. */
static bool place_object(struct mg_qwrite *w, const char *sha, GError **err)
{
    struct mg_quarantine *q = w->q;
    char sub[3] = {sha[0], sha[1], '\0'};
    char *subdir = g_build_filename(q->objects, sub, NULL);
    char *obj = object_path(q, sha);
    struct stat st;
    bool created, ok = false;

    if (!make_dir(subdir, &created, err))
        goto out;
    if (created && !fsync_dir(q->objects, err))
        goto out;
    if (lstat(obj, &st) == 0 && S_ISREG(st.st_mode) && st.st_size > 0) {
        qwrite_discard(w); /* same name, same content: stored once */
        ok = true;
        goto out;
    }
    if (rename(w->tmp_path, obj) != 0) {
        set_os_error(err, obj, "rename into place", errno);
        goto out;
    }
    g_free(w->tmp_path);
    w->tmp_path = NULL;
    ok = fsync_dir(subdir, err);
out:
    g_free(subdir);
    g_free(obj);
    return ok;
}

static void bind_text(sqlite3_stmt *s, int i, const char *t)
{
    if (t != NULL)
        sqlite3_bind_text(s, i, t, -1, SQLITE_TRANSIENT);
    else
        sqlite3_bind_null(s, i);
}

static void make_id(char *id, size_t size, int64_t now)
{
    time_t t = (time_t)now;
    struct tm tm;
    char rnd[ID_RANDOM + 1];

    gmtime_r(&t, &tm);
    random_name(rnd, ID_RANDOM);
    g_snprintf(id, size, "%04d%02d%02d-%s", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, rnd);
}

/* Caller holds the lock inside a write transaction. */
static bool insert_row(struct mg_quarantine *q, struct mg_qrecord *rec, const char *sha,
                       uint64_t size, int64_t now, char *id, GError **err)
{
    sqlite3_stmt *s = q->st[ST_INSERT];
    int rc;

    for (int tries = 0; tries < ID_TRIES; tries++) {
        make_id(id, sizeof rec->id, now);
        sqlite3_clear_bindings(s);
        bind_text(s, 1, id);
        sqlite3_bind_int64(s, 2, now);
        bind_text(s, 3, rec->kind);
        bind_text(s, 4, rec->message_id);
        bind_text(s, 5, rec->sender);
        bind_text(s, 6, rec->recipients);
        bind_text(s, 7, rec->subject);
        bind_text(s, 8, sha);
        sqlite3_bind_int64(s, 9, (sqlite3_int64)size);
        bind_text(s, 10, rec->result);
        bind_text(s, 11, rec->parts_json);
        rc = sqlite3_step(s);
        sqlite3_reset(s);
        if (rc == SQLITE_DONE)
            return true;
        if (rc != SQLITE_CONSTRAINT_PRIMARYKEY && rc != SQLITE_CONSTRAINT_UNIQUE)
            break;
    }
    set_db_error(q, err, "insert");
    return false;
}

static bool commit_locked(struct mg_qwrite *w, struct mg_qrecord *rec, const char *sha,
                          GError **err)
{
    struct mg_quarantine *q = w->q;
    int64_t now;
    char id[sizeof rec->id];

    if (!step_done(q, ST_BEGIN, "begin", err))
        return false;
    if (!place_object(w, sha, err))
        goto fail;
    now = g_get_real_time() / G_USEC_PER_SEC;
    if (!insert_row(q, rec, sha, w->size, now, id, err))
        goto fail;
    if (!step_done(q, ST_COMMIT, "commit", err))
        goto fail;
    g_strlcpy(rec->id, id, sizeof rec->id);
    rec->time = now;
    rec->size = w->size;
    g_free(rec->sha256);
    rec->sha256 = g_strdup(sha);
    return true;
fail:
    rollback(q);
    return false;
}

bool mg_qwrite_commit(struct mg_qwrite *w, struct mg_qrecord *rec, GError **err)
{
    char sha[65];
    bool ok = false;

    qwrite_stop(w);
    if (w->failed != NULL) {
        g_propagate_error(err, g_error_copy(w->failed));
        goto out;
    }
    /* the last, partial block; an empty original is one empty member */
    if ((w->blk_len > 0 || !w->member) && !write_member(w, w->blk, w->blk_len, err))
        goto out;
    if (fsync(w->fd) != 0) {
        set_os_error(err, w->tmp_path, "fsync", errno);
        goto out;
    }
    if (close(w->fd) != 0) {
        w->fd = -1;
        set_os_error(err, w->tmp_path, "close", errno);
        goto out;
    }
    w->fd = -1;
    g_strlcpy(sha, mg_sha256_hex(w->sum), sizeof sha);
    g_mutex_lock(&w->q->lock);
    ok = commit_locked(w, rec, sha, err);
    g_mutex_unlock(&w->q->lock);
out:
    qwrite_free(w); /* removes the temporary file if still there */
    return ok;
}

/* --- reading ----------------------------------------------------------- */

bool mg_quarantine_list(struct mg_quarantine *q, unsigned limit, GPtrArray **out, GError **err)
{
    GPtrArray *a = g_ptr_array_new_with_free_func(qrecord_free_cb);
    sqlite3_stmt *s;
    int rc;

    g_mutex_lock(&q->lock);
    s = q->st[ST_LIST];
    sqlite3_bind_int64(s, 1, limit == 0 ? -1 : (sqlite3_int64)limit);
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        struct mg_qrecord *r = g_new(struct mg_qrecord, 1);
        record_from_row(s, r);
        g_ptr_array_add(a, r);
    }
    sqlite3_reset(s);
    if (rc != SQLITE_DONE) {
        set_db_error(q, err, "list");
        g_mutex_unlock(&q->lock);
        g_ptr_array_unref(a);
        *out = NULL;
        return false;
    }
    g_mutex_unlock(&q->lock);
    *out = a;
    return true;
}

bool mg_quarantine_get(struct mg_quarantine *q, const char *id, struct mg_qrecord *out,
                       GError **err)
{
    sqlite3_stmt *s;
    int rc;
    bool ok = false;

    memset(out, 0, sizeof *out);
    g_mutex_lock(&q->lock);
    s = q->st[ST_GET];
    sqlite3_bind_text(s, 1, id, -1, SQLITE_TRANSIENT);
    rc = sqlite3_step(s);
    if (rc == SQLITE_ROW) {
        record_from_row(s, out);
        ok = true;
    } else if (rc == SQLITE_DONE) {
        g_set_error(err, MG_QUARANTINE_ERROR, MG_QUARANTINE_ERROR_NOT_FOUND, "no item %s", id);
    } else {
        set_db_error(q, err, "get");
    }
    sqlite3_reset(s);
    g_mutex_unlock(&q->lock);
    return ok;
}

static void set_corrupt(GError **err, const char *id, const char *path, const char *why)
{
    g_set_error(err, MG_QUARANTINE_ERROR, MG_QUARANTINE_ERROR_CORRUPT, "item %s: %s: %s", id, path,
                why);
}

struct inflate_job {
    const char *id;
    const char *path;
    int in;  /* the object */
    int out; /* -1: verify only */
    uint64_t want_size;
    uint64_t size;
    struct mg_sha256 *sum;
    unsigned char *ibuf, *obuf;
};

/* Passes one inflated span to the checksum and the output fd. */
static bool emit(struct inflate_job *j, size_t n, GError **err)
{
    int e;

    if (n == 0)
        return true;
    j->size += n;
    if (j->size > j->want_size) {
        set_corrupt(err, j->id, j->path, "longer than recorded");
        return false;
    }
    mg_sha256_update(j->sum, j->obuf, n);
    if (j->out >= 0 && (e = mg_write_all(j->out, j->obuf, n)) != 0) {
        g_set_error(err, MG_QUARANTINE_ERROR, MG_QUARANTINE_ERROR_IO,
                    "item %s: writing the export: %s", j->id, g_strerror(e));
        return false;
    }
    return true;
}

/* Reads up to CHUNK bytes into ibuf; returns bytes, 0 at EOF, -1 error. */
static ssize_t read_some(struct inflate_job *j, GError **err)
{
    ssize_t n;

    do
        n = read(j->in, j->ibuf, CHUNK);
    while (n < 0 && errno == EINTR);
    if (n < 0)
        set_os_error(err, j->path, "read", errno);
    return n;
}

/* Reads more of the object when z has no input left and the end was not
 * reached; false on a read error. */
static bool refill(struct inflate_job *j, z_stream *z, bool *eof, GError **err)
{
    ssize_t n;

    if (z->avail_in != 0 || *eof)
        return true;
    if ((n = read_some(j, err)) < 0)
        return false;
    *eof = n == 0;
    z->next_in = j->ibuf;
    z->avail_in = (uInt)n;
    return true;
}

/* The object is one or more gzip members (the writer makes one per
 * GZ_BLOCK; objects written before that are one member): each ends in
 * Z_STREAM_END, and whatever follows must be another whole member. */
static bool inflate_all(struct inflate_job *j, GError **err)
{
    z_stream z;
    bool eof = false, ok = false;
    int zr;

    memset(&z, 0, sizeof z);
    if (inflateInit2(&z, 15 + 16) != Z_OK) {
        set_corrupt(err, j->id, j->path, "inflateInit failed");
        return false;
    }
    for (;;) {
        if (!refill(j, &z, &eof, err))
            goto out;
        z.next_out = j->obuf;
        z.avail_out = CHUNK;
        zr = inflate(&z, Z_NO_FLUSH);
        if (!emit(j, CHUNK - z.avail_out, err))
            goto out;
        if (zr == Z_STREAM_END) {
            if (!refill(j, &z, &eof, err))
                goto out;
            if (z.avail_in == 0)
                break; /* the last member */
            if (inflateReset(&z) != Z_OK) {
                set_corrupt(err, j->id, j->path, "inflateReset failed");
                goto out;
            }
            continue;
        }
        if (zr == Z_BUF_ERROR && eof && z.avail_in == 0) {
            set_corrupt(err, j->id, j->path, "truncated");
            goto out;
        }
        if (zr != Z_OK && zr != Z_BUF_ERROR) {
            set_corrupt(err, j->id, j->path, z.msg != NULL ? z.msg : "not gzip data");
            goto out;
        }
    }
    ok = true;
out:
    inflateEnd(&z);
    return ok;
}

static bool read_object(struct mg_quarantine *q, const char *id, int fd, GError **err)
{
    struct mg_qrecord r;
    struct inflate_job j;
    char *path = NULL;
    bool ok = false;

    if (!mg_quarantine_get(q, id, &r, err))
        return false;
    memset(&j, 0, sizeof j);
    j.id = id;
    j.in = -1;
    j.out = fd;
    if (!is_sha256_hex(r.sha256)) {
        set_corrupt(err, id, q->index, "bad sha256 in the index row");
        goto out;
    }
    path = object_path(q, r.sha256);
    j.path = path;
    j.want_size = r.size;
    j.in = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (j.in < 0) {
        if (errno == ENOENT || errno == ELOOP)
            set_corrupt(err, id, path, errno == ENOENT ? "object missing" : "object is a symlink");
        else
            set_os_error(err, path, "open", errno);
        goto out;
    }
    j.sum = mg_sha256_new();
    j.ibuf = g_malloc(CHUNK);
    j.obuf = g_malloc(CHUNK);
    if (!inflate_all(&j, err))
        goto out;
    if (j.size != j.want_size) {
        set_corrupt(err, id, path, "shorter than recorded");
        goto out;
    }
    if (strcmp(mg_sha256_hex(j.sum), r.sha256) != 0) {
        set_corrupt(err, id, path, "SHA-256 mismatch");
        goto out;
    }
    ok = true;
out:
    if (j.in >= 0)
        close(j.in);
    if (j.sum != NULL)
        mg_sha256_free(j.sum);
    g_free(j.ibuf);
    g_free(j.obuf);
    g_free(path);
    mg_qrecord_clear(&r);
    return ok;
}

bool mg_quarantine_export(struct mg_quarantine *q, const char *id, int fd, GError **err)
{
    g_return_val_if_fail(fd >= 0, false);
    return read_object(q, id, fd, err);
}

bool mg_quarantine_verify(struct mg_quarantine *q, const char *id, GError **err)
{
    return read_object(q, id, -1, err);
}

/* --- expiry ------------------------------------------------------------ */

/* Is sha named by a row? Caller holds the lock. -1 on error. */
static int sha_referenced(struct mg_quarantine *q, const char *sha, GError **err)
{
    sqlite3_stmt *s = q->st[ST_REFS];
    int rc;

    sqlite3_bind_text(s, 1, sha, -1, SQLITE_TRANSIENT);
    rc = sqlite3_step(s);
    sqlite3_reset(s);
    if (rc == SQLITE_ROW)
        return 1;
    if (rc == SQLITE_DONE)
        return 0;
    set_db_error(q, err, "object references");
    return -1;
}

/* One objects/ab directory; caller holds the write lock. */
static bool collect_subdir(struct mg_quarantine *q, const char *sub, GError **err)
{
    char *path = g_build_filename(q->objects, sub, NULL);
    DIR *d = opendir(path);
    struct dirent *de;
    char sha[65];
    bool ok = true;

    if (d == NULL) {
        ok = errno == ENOENT || errno == ENOTDIR;
        if (!ok)
            set_os_error(err, path, "opendir", errno);
        g_free(path);
        return ok;
    }
    while (ok && (de = readdir(d)) != NULL) {
        if (strlen(de->d_name) != 67 || strcmp(de->d_name + 64, ".gz") != 0 ||
            strncmp(de->d_name, sub, 2) != 0)
            continue;
        g_strlcpy(sha, de->d_name, sizeof sha);
        if (!is_sha256_hex(sha))
            continue;
        switch (sha_referenced(q, sha, err)) {
        case 0:
            if (unlinkat(dirfd(d), de->d_name, 0) != 0 && errno != ENOENT) {
                set_os_error(err, path, "unlink object", errno);
                ok = false;
            }
            break;
        case 1:
            break;
        default:
            ok = false;
        }
    }
    closedir(d);
    g_free(path);
    return ok;
}

/* Unlinks objects no row refers to, under the write lock so that no
 * commit sits between its rename and its insert. Caller holds q->lock. */
static bool collect_objects(struct mg_quarantine *q, GError **err)
{
    DIR *d;
    struct dirent *de;
    bool ok = true;

    if (!step_done(q, ST_BEGIN, "begin", err))
        return false;
    d = opendir(q->objects);
    if (d == NULL) {
        ok = errno == ENOENT;
        if (!ok)
            set_os_error(err, q->objects, "opendir", errno);
    } else {
        while (ok && (de = readdir(d)) != NULL) {
            if (strlen(de->d_name) == 2 && g_ascii_isxdigit(de->d_name[0]) &&
                g_ascii_isxdigit(de->d_name[1]))
                ok = collect_subdir(q, de->d_name, err);
        }
        closedir(d);
    }
    rollback(q); /* nothing was written: just drop the lock */
    return ok;
}

bool mg_quarantine_expire(struct mg_quarantine *q, unsigned days, unsigned *removed, GError **err)
{
    int64_t cutoff = g_get_real_time() / G_USEC_PER_SEC - (int64_t)days * 86400;
    unsigned n = 0;
    bool ok = false;

    g_mutex_lock(&q->lock);
    if (!step_done(q, ST_BEGIN, "begin", err))
        goto out;
    sqlite3_bind_int64(q->st[ST_EXPIRE], 1, cutoff);
    if (!step_done(q, ST_EXPIRE, "expire", err)) {
        rollback(q);
        goto out;
    }
    n = (unsigned)sqlite3_changes(q->db);
    if (!step_done(q, ST_COMMIT, "commit", err)) {
        rollback(q);
        n = 0;
        goto out;
    }
    ok = collect_objects(q, err);
out:
    g_mutex_unlock(&q->lock);
    if (removed != NULL)
        *removed = n;
    return ok;
}
