/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * NAME
 *	av 3
 * SUMMARY
 *	virus scanning with libclamav
 * SYNOPSIS
 *	#include <mugaika/av.h>
 *
 *	struct mg_av *mg_av_open(const char *dbdir, GError **err);
 *	struct mg_av *mg_av_ref(struct mg_av *av);
 *	void mg_av_unref(struct mg_av *av);
 *	enum mg_av_verdict mg_av_scan_buffer(struct mg_av *av, const void *buf, size_t len,
 *	                                     char **virname, GError **err);
 *	enum mg_av_verdict mg_av_scan_fd(struct mg_av *av, int fd, char **virname, GError **err);
 *	enum mg_av_verdict mg_av_scan_pread(struct mg_av *av, uint64_t size, mg_av_pread_fn fn,
 *	                                    void *handle, char **virname, GError **err);
 *	unsigned mg_av_signatures(const struct mg_av *av);
 *	guint mg_av_cache_hits(struct mg_av *av);
 *	void mg_av_cache_limit(struct mg_av *av, guint entries);
 *	const char *mg_av_version(void);
 * DESCRIPTION
 *	mg_av_open() initialises libclamav (cl_init, once per process),
 *	creates an engine, sets its limits, loads every signature file
 *	of dbdir (NULL: MG_AV_DEFAULT_DB) with CL_DB_STDOPT (signed
 *	bytecode only) and compiles the engine. The result is owned by
 *	the caller with one reference. A compiled engine is read-only,
 *	so any number of threads may scan with it at once.
 *
 *	mg_av_ref() adds a reference and returns av; mg_av_unref() drops
 *	one (NULL is allowed) and frees the engine with the last.
 *
 *	mg_av_scan_buffer() scans len bytes of memory in place (no file is
 *	written for the top level; libclamav may still write temporary
 *	files for what it extracts). mg_av_scan_fd() scans the regular
 *	file behind fd from offset 0 to its size at the time of the call.
 *	It reads with pread(), so the descriptor's offset is neither used
 *	nor moved. Anything but a regular file is an error.
 *	mg_av_scan_pread() scans size bytes read through fn(handle, ...)
 *	as libclamav asks for them (in pages, in any order, possibly more
 *	than once); fn must return the bytes read, 0 at the end, or -1.
 *	A failed read, a read returning more than asked, or an end before
 *	size bytes make the scan fail, whatever libclamav concludes.
 *	mg_av_scan_fd() is mg_av_scan_pread() over pread(2).
 *
 *	Both return MG_AV_INFECTED and set *virname (owned, g_free) to the
 *	name libclamav reports, verbatim (signatures from unofficial
 *	databases carry libclamav's ".UNOFFICIAL" suffix); MG_AV_CLEAN;
 *	or MG_AV_FAILED and set *err. virname and err may be NULL.
 *
 *	mg_av_signatures() is the number of signatures cl_load() loaded.
 *	mg_av_version() is libclamav's version string (static).
 * SCAN OPTIONS
 *	Every CL_SCAN_PARSE_* flag (archives, mail, OLE2, PDF, HTML, XML
 *	documents, PE, ELF, SWF, HWP, OneNote, images), general heuristics
 *	on, all-match mode off. Heuristic alerts enabled:
 *	CL_SCAN_HEURISTIC_EXCEEDS_MAX, ENCRYPTED_ARCHIVE, ENCRYPTED_DOC.
 *	Partial (message/partial) reassembly stays off: it keeps files in
 *	the temporary directory across scans.
 *
 *	The perceptual hash of pictures (CL_SCAN_PARSE_IMAGE_FUZZY_HASH,
 *	which decodes every picture, those inside PDFs and documents too)
 *	is computed only when the database has something to compare it
 *	with: mg_av_open() searches every file of the directory for a
 *	"fuzzy_img#" subsignature (containers .cvd/.cld/.cud inflated), in
 *	a thread beside cl_load(). A file that cannot be read to its end
 *	counts as having one. Without such signatures the hash could match
 *	nothing; on a mail of PDFs it was a quarter of the scan time.
 *	libclamav (1.4) computes no image hash over a map it reads through
 *	a handle: with image signatures, mg_av_scan_pread() reads a picture
 *	(by its first bytes, up to 32 MiB) into memory and scans that; at
 *	most 64 MiB of such copies exist at once in the process (a scan
 *	waits for room).
 *	mg_av_image_hash() tells which; mg_av_dir_has_image_sigs() is the
 *	search alone.
 * LIMITS
 *	Fail-closed by design: whatever libclamav cannot look at fully
 *	must not read as clean. libclamav's own mechanism for this is used:
 *	with CL_SCAN_HEURISTIC_EXCEEDS_MAX, crossing the file size, scan
 *	size, recursion, file count or scan time limit is reported as a
 *	virus named "Heuristics.Limits.Exceeded.<Limit>", and an archive or
 *	document that it cannot decrypt as "Heuristics.Encrypted.<Type>".
 *	Those come back as MG_AV_INFECTED with that name: callers may tell
 *	them from real detections by the "Heuristics." prefix, but must
 *	never treat them as clean. Heuristic alerts do not take precedence,
 *	so a real signature match found in the same scan wins.
 *
 *	CL_ENGINE_MAX_FILESIZE: libclamav caps it at INT_MAX - 2 bytes
 *	(2 GiB - 3) whatever is asked for; that value is set. A larger
 *	input is a Limits.Exceeded verdict.
 *	CL_ENGINE_MAX_SCANSIZE (the total extracted from one input): not
 *	capped by libclamav (0 would mean unlimited); it is set to 4 GiB,
 *	twice the largest single file, so that a maximal message is scanned
 *	whole while a decompression bomb ends in a Limits.Exceeded verdict
 *	instead of filling the temporary directory.
 *	Recursion (17), file count (10000) and scan time (120 s) keep
 *	libclamav's defaults. The normalisation limits (HTML, script,
 *	embedded PE, zip type recognition) also keep their defaults: past
 *	them libclamav skips a normalised view only; the raw bytes are
 *	still matched against every signature.
 *
 *	libclamav's clean cache is off (CL_ENGINE_DISABLE_CACHE). It
 *	remembers content it found clean by its hash alone, whatever the
 *	scan options were: after a shallow scan of an archive
 *	(MG_AV_SCAN_SHALLOW, archives left packed) found it clean, a later
 *	full scan of the same archive inside another message or inside a
 *	rebuilt message skipped it, and an EICAR zip hidden in a text body
 *	crossed (found by the corpus test, mime-is-broken).
 * CLEAN RESULTS REMEMBERED
 *	In its place each engine (struct mg_av) remembers the outer
 *	contents it found clean, by their SHA-256 together with the options
 *	that change what libclamav looks at (MG_AV_SCAN_SHALLOW, and
 *	whether pictures are hashed), for the last AV_CACHE_ENTRIES of them
 *	(least recently used first out). A scan of the same bytes with the
 *	same options on the same engine returns CLEAN without libclamav. A
 *	clean answer means that libclamav looked at the whole content with
 *	those options and found nothing (a scan it cannot finish, past a
 *	limit or its time, is a heuristic finding, never clean); a compiled
 *	engine is read-only, libclamav is given no file name, and the outer
 *	content is always at depth 0, so the same bytes give it nothing
 *	more to look at. Only a clean answer is remembered: an infection,
 *	a heuristic ("Heuristics.Limits", "Heuristics.Encrypted"), a failed
 *	read or an engine error is found again every time (a clean answer
 *	libclamav gave in error would be given again for the life of the
 *	engine). Only the outer content, never an inner file. A scan that
 *	records inner files (MG_AV_SCAN_RECORD) answers as a plain one and
 *	uses the memory like one (on a hit, nothing is recorded, so the
 *	later scan that would skip them skips nothing); a scan that skips
 *	inner files another scan recorded (MG_AV_SCAN_SKIP_SEEN) neither
 *	uses nor fills it, since its answer depends on that scan. Contents
 *	scanned through libclamav's reader (over AV_WHOLE_MAX, or while
 *	AV_WHOLE_TOTAL is in use; a picture read whole for its image hash,
 *	up to AV_IMAGE_MEM_MAX, counts as read whole) are not hashed and
 *	not remembered. The bytes are hashed before the scan: a caller must
 *	not change the buffer during the call (none does).
 *	A database reload makes a new engine, with an empty memory.
 *	mg_av_cache_hits() counts the scans it answered;
 *	mg_av_cache_limit() sets how many contents it keeps (0: none; the
 *	bytes are still hashed), forgetting the oldest past it.
 *	Temporary files: libclamav's default directory, or $TMPDIR when it
 *	is set and not empty (read at mg_av_open time). CL_ENGINE_KEEPTMP
 *	is off, so libclamav removes its per-scan files.
 * DIAGNOSTICS
 *	GError domain MG_AV_ERROR. MG_AV_ERROR_NO_DATABASE: the directory
 *	is missing, is not a directory, is unreadable, holds no signature
 *	files, holds a malformed one, or yields no signatures; the message
 *	names the directory, the problem and libclamav's complaints.
 *	MG_AV_ERROR_ENGINE: cl_init, engine creation or compilation failed
 *	for another reason (memory, temporary files), or a scan failed;
 *	the message carries cl_strerror() text. A read error or a short
 *	read of the file behind fd is an error even when libclamav itself
 *	would call the result clean.
 *
 *	libclamav's own messages go to g_debug() (log domain
 *	"mugaika-av"), never to stderr.
 */
#define G_LOG_DOMAIN "mugaika-av"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <clamav.h>
#include <glib.h>
#include <glib/gstdio.h>
#include <zlib.h>

#include <mugaika/av.h>

#include "core/sha256.h"

#define AV_MAX_SCANSIZE (4LL * 1024 * 1024 * 1024)
/* the largest picture read into memory for its image hash, and the
 * most of them in memory at once in the process (scans wait for room) */
#define AV_IMAGE_MEM_MAX   (32u * 1024 * 1024)
#define AV_IMAGE_MEM_TOTAL (64u * 1024 * 1024)
/* contents up to AV_WHOLE_MAX are read whole and scanned from memory,
 * while the process holds at most AV_WHOLE_TOTAL of them */
#define AV_WHOLE_MAX    (4u * 1024 * 1024)
#define AV_WHOLE_TOTAL  (32u * 1024 * 1024)
#define AV_LASTERR_SIZE 512
/* outer contents found clean that an engine remembers (see CLEAN
 * RESULTS REMEMBERED): some 150 bytes each */
#define AV_CACHE_ENTRIES 16384

struct mg_av {
    gint refs;
    struct cl_engine *engine;
    unsigned sigs;
    gboolean image_hash; /* the database has image fuzzy hash signatures */
    GMutex cache_lock;
    GHashTable *cache; /* "SHA-256 hex/options" -> its link in lru */
    GQueue lru;        /* the same keys, most recently used first */
    guint cache_hits;
    guint cache_max; /* AV_CACHE_ENTRIES unless mg_av_cache_limit */
};

/* Context of a scan through a read function: av_read records failures. */
struct av_reader {
    mg_av_pread_fn fn;
    void *handle;
    uint64_t size;
    int err; /* errno of the first failed read, or 0 */
    gboolean failed;
    gboolean short_read;
};

/* The error messages libclamav logged on this thread while capture is
 * on (mg_av_open turns it on around cl_load), joined by "; ", capped. */
static _Thread_local gboolean av_capture;
static _Thread_local char av_lasterr[AV_LASTERR_SIZE];

GQuark mg_av_error_quark(void)
{
    return g_quark_from_static_string("mg-av-error-quark");
}

static void av_msg(enum cl_msg severity, const char *fullmsg, const char *msg, void *context)
{
    size_t n;

    (void)fullmsg;
    (void)context;
    if (msg == NULL)
        return;
    n = strcspn(msg, "\r\n");
    g_debug("libclamav[%d]: %.*s", (int)severity, (int)n, msg);
    if (av_capture && severity == CL_MSG_ERROR && n > 0) {
        size_t used = strlen(av_lasterr);

        if (used > 0 && used + 2 < sizeof(av_lasterr)) {
            memcpy(av_lasterr + used, "; ", 2);
            used += 2;
        }
        if (n > sizeof(av_lasterr) - 1 - used)
            n = sizeof(av_lasterr) - 1 - used;
        memcpy(av_lasterr + used, msg, n);
        av_lasterr[used + n] = '\0';
    }
}

/* cl_init once per process; returns its result. */
static cl_error_t av_init(void)
{
    static gsize once;
    static cl_error_t result;

    if (g_once_init_enter(&once)) {
        cl_set_clcb_msg(av_msg);
        result = cl_init(CL_INIT_DEFAULT);
        g_once_init_leave(&once, 1);
    }
    return result;
}

/* Errors of cl_load/cl_engine_compile that are about the database
 * files (configuration), as opposed to the machine (memory, temp). */
static gboolean av_is_db_error(cl_error_t rc)
{
    switch (rc) {
    case CL_EMALFDB:
    case CL_ECVD:
    case CL_EVERIFY:
    case CL_EOPEN:
    case CL_ESTAT:
    case CL_EREAD:
    case CL_EACCES:
    case CL_EFORMAT:
    case CL_EPARSE:
        return TRUE;
    default:
        return FALSE;
    }
}

#define AV_HINT "(run freshclam, or point --clamav-db at a directory with ClamAV signatures)"

/* Checks that dbdir is a readable directory before libclamav sees it. */
static gboolean av_check_dir(const char *dbdir, GError **err)
{
    GStatBuf st;

    if (g_stat(dbdir, &st) != 0) {
        int e = errno;

        g_set_error(err, MG_AV_ERROR, MG_AV_ERROR_NO_DATABASE,
                    "ClamAV database directory %s: %s " AV_HINT, dbdir,
                    e == ENOENT ? "does not exist" : g_strerror(e));
        return FALSE;
    }
    if (!S_ISDIR(st.st_mode)) {
        g_set_error(err, MG_AV_ERROR, MG_AV_ERROR_NO_DATABASE,
                    "ClamAV database directory %s: not a directory " AV_HINT, dbdir);
        return FALSE;
    }
    if (g_access(dbdir, R_OK | X_OK) != 0) {
        int e = errno;

        g_set_error(err, MG_AV_ERROR, MG_AV_ERROR_NO_DATABASE,
                    "ClamAV database directory %s: not readable: %s " AV_HINT, dbdir,
                    g_strerror(e));
        return FALSE;
    }
    return TRUE;
}

/* Limits, temporary directory and options; see LIMITS above. */
static cl_error_t av_configure(struct cl_engine *e, const char **what)
{
    const char *tmpdir = g_getenv("TMPDIR");
    cl_error_t rc;

    *what = "CL_ENGINE_MAX_FILESIZE";
    if ((rc = cl_engine_set_num(e, CL_ENGINE_MAX_FILESIZE, (long long)INT_MAX - 2)) != CL_SUCCESS)
        return rc;
    *what = "CL_ENGINE_MAX_SCANSIZE";
    if ((rc = cl_engine_set_num(e, CL_ENGINE_MAX_SCANSIZE, AV_MAX_SCANSIZE)) != CL_SUCCESS)
        return rc;
    *what = "CL_ENGINE_KEEPTMP";
    if ((rc = cl_engine_set_num(e, CL_ENGINE_KEEPTMP, 0)) != CL_SUCCESS)
        return rc;
    *what = "CL_ENGINE_DISABLE_CACHE";
    if ((rc = cl_engine_set_num(e, CL_ENGINE_DISABLE_CACHE, 1)) != CL_SUCCESS)
        return rc;
    if (tmpdir != NULL && *tmpdir != '\0') {
        *what = "CL_ENGINE_TMPDIR";
        if ((rc = cl_engine_set_str(e, CL_ENGINE_TMPDIR, tmpdir)) != CL_SUCCESS)
            return rc;
    }
    return CL_SUCCESS;
}

/* Sets *err for a failed cl_load/cl_engine_compile. */
static void av_load_error(const char *dbdir, const char *step, cl_error_t rc, GError **err)
{
    gboolean db = av_is_db_error(rc);

    g_set_error(err, MG_AV_ERROR, db ? MG_AV_ERROR_NO_DATABASE : MG_AV_ERROR_ENGINE,
                "ClamAV database directory %s: %s failed: %s%s%s%s%s", dbdir, step, cl_strerror(rc),
                av_lasterr[0] != '\0' ? " (" : "", av_lasterr, av_lasterr[0] != '\0' ? ")" : "",
                db ? " " AV_HINT : "");
}

/* --- inner files found clean ------------------------------------------ */

#define AV_SEEN_MIN 4096 /* smaller inner files are not worth a hash */
#define AV_SEEN_BUF (256 * 1024)

struct mg_av_seen {
    GMutex lock;
    GCond cond;
    GHashTable *clean; /* SHA-256 hex -> NULL */
    gboolean closed;
    unsigned skipped;
};

/* What libclamav's callbacks get as their context. */
struct av_cb_ctx {
    struct mg_av_seen *seen;
    unsigned flags;
    gboolean top_known; /* the first pre-scan call (the outer content) was seen */
    int top_fd;         /* what libclamav passed for it: -1, or for a map read
                         * through a handle the handle pointer cut to an int,
                         * which may happen to be an open descriptor */
};

struct mg_av_seen *mg_av_seen_new(void)
{
    struct mg_av_seen *seen = g_new0(struct mg_av_seen, 1);

    g_mutex_init(&seen->lock);
    g_cond_init(&seen->cond);
    seen->clean = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
    return seen;
}

void mg_av_seen_free(struct mg_av_seen *seen)
{
    if (seen == NULL)
        return;
    g_hash_table_unref(seen->clean);
    g_mutex_clear(&seen->lock);
    g_cond_clear(&seen->cond);
    g_free(seen);
}

void mg_av_seen_close(struct mg_av_seen *seen)
{
    g_mutex_lock(&seen->lock);
    seen->closed = TRUE;
    g_cond_broadcast(&seen->cond);
    g_mutex_unlock(&seen->lock);
}

void mg_av_seen_wait(struct mg_av_seen *seen)
{
    g_mutex_lock(&seen->lock);
    while (!seen->closed)
        g_cond_wait(&seen->cond, &seen->lock);
    g_mutex_unlock(&seen->lock);
}

unsigned mg_av_seen_count(struct mg_av_seen *seen)
{
    unsigned n;

    g_mutex_lock(&seen->lock);
    n = g_hash_table_size(seen->clean);
    g_mutex_unlock(&seen->lock);
    return n;
}

unsigned mg_av_seen_skipped(struct mg_av_seen *seen)
{
    unsigned n;

    g_mutex_lock(&seen->lock);
    n = seen->skipped;
    g_mutex_unlock(&seen->lock);
    return n;
}

/* The SHA-256 (hex, g_free) of the file behind an inner file's
 * descriptor, or NULL when it is small or cannot be read whole. */
static gssize av_fd_read(void *handle, void *buf, size_t len, uint64_t off);

static char *av_fd_sha(int fd)
{
    struct stat st;
    struct mg_sha256 *h;
    char *buf, *hex = NULL;
    off_t off = 0;

    if (fd < 0 || fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_size < AV_SEEN_MIN)
        return NULL;
    h = mg_sha256_new();
    buf = g_malloc(AV_SEEN_BUF);
    while (off < st.st_size) {
        gssize n = av_fd_read(&fd, buf, AV_SEEN_BUF, (uint64_t)off);
        if (n <= 0)
            break;
        mg_sha256_update(h, buf, (size_t)n);
        off += n;
    }
    if (off == st.st_size)
        hex = g_strdup(mg_sha256_hex(h));
    mg_sha256_free(h);
    g_free(buf);
    return hex;
}

/* Before libclamav scans an inner file: skip it when it was found clean
 * by the recording scan. The outer content (the first call) is always
 * scanned, and its "descriptor" is never read: libclamav passes -1 for a
 * map of memory and the handle pointer cut to an int for a map read
 * through a handle, which may happen to be some open descriptor. */
static cl_error_t av_pre_scan(int fd, const char *type, void *context)
{
    struct av_cb_ctx *ctx = context;
    char *sha;
    gboolean hit;

    (void)type;
    if (ctx == NULL)
        return CL_CLEAN;
    if (!ctx->top_known) { /* the outer content: always scanned */
        ctx->top_known = TRUE;
        ctx->top_fd = fd;
        return CL_CLEAN;
    }
    if (fd == ctx->top_fd || !(ctx->flags & MG_AV_SCAN_SKIP_SEEN) || (sha = av_fd_sha(fd)) == NULL)
        return CL_CLEAN;
    g_mutex_lock(&ctx->seen->lock);
    hit = g_hash_table_contains(ctx->seen->clean, sha);
    if (hit)
        ctx->seen->skipped++;
    g_mutex_unlock(&ctx->seen->lock);
    g_free(sha);
    return hit ? CL_BREAK : CL_CLEAN;
}

/* After libclamav scanned an inner file (and what it holds): recorded
 * when clean. */
static cl_error_t av_post_scan(int fd, int result, const char *virname, void *context)
{
    struct av_cb_ctx *ctx = context;
    char *sha;

    (void)virname;
    if (ctx == NULL || !ctx->top_known || fd == ctx->top_fd || !(ctx->flags & MG_AV_SCAN_RECORD) ||
        result != CL_CLEAN || (sha = av_fd_sha(fd)) == NULL)
        return CL_CLEAN;
    g_mutex_lock(&ctx->seen->lock);
    g_hash_table_add(ctx->seen->clean, sha);
    g_mutex_unlock(&ctx->seen->lock);
    return CL_CLEAN;
}

/* --- does the database hash pictures? ----------------------------------- */

#define AV_IMG_TAG     "fuzzy_img#"
#define AV_IMG_TAG_LEN (sizeof AV_IMG_TAG - 1)
#define AV_PROBE_BUF   (256 * 1024)

/* A search for AV_IMG_TAG over a stream of chunks: the last bytes of
 * one chunk are kept in front of the next, so a tag across two chunks
 * is found. */
struct av_tag_search {
    char carry[AV_IMG_TAG_LEN - 1];
    size_t ncarry;
    gboolean found;
};

static void av_tag_feed(struct av_tag_search *t, const char *buf, size_t len)
{
    char joint[2 * (AV_IMG_TAG_LEN - 1)];
    size_t head = MIN(len, AV_IMG_TAG_LEN - 1);

    if (t->found || len == 0)
        return;
    /* the joint: carried bytes and the start of this chunk */
    memcpy(joint, t->carry, t->ncarry);
    memcpy(joint + t->ncarry, buf, head);
    if (memmem(joint, t->ncarry + head, AV_IMG_TAG, AV_IMG_TAG_LEN) != NULL ||
        memmem(buf, len, AV_IMG_TAG, AV_IMG_TAG_LEN) != NULL) {
        t->found = TRUE;
        return;
    }
    if (len >= AV_IMG_TAG_LEN - 1) {
        memcpy(t->carry, buf + len - (AV_IMG_TAG_LEN - 1), AV_IMG_TAG_LEN - 1);
        t->ncarry = AV_IMG_TAG_LEN - 1;
    } else {
        size_t keep = MIN(t->ncarry + len, AV_IMG_TAG_LEN - 1);
        memmove(joint, joint + (t->ncarry + len - keep), keep); /* joint holds carry+buf */
        memcpy(t->carry, joint, keep);
        t->ncarry = keep;
    }
}

static ssize_t av_read_some(int fd, char *buf, size_t len)
{
    ssize_t n;

    do
        n = read(fd, buf, len);
    while (n < 0 && errno == EINTR);
    return n;
}

/* Searches one signature file; FALSE when it cannot be read to its end.
 * A container (.cvd, .cld, .cud) is a 512-byte header and a tar, which
 * may be gzip-compressed: the tar is what is searched. */
static gboolean av_probe_file(int dfd, const char *name, struct av_tag_search *t)
{
    gboolean container = g_str_has_suffix(name, ".cvd") || g_str_has_suffix(name, ".cld") ||
                         g_str_has_suffix(name, ".cud");
    char *in = NULL, *out = NULL;
    gboolean ok = FALSE, gz = FALSE, zinit = FALSE;
    z_stream z;
    size_t skip = container ? 512 : 0;
    int fd = openat(dfd, name, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);

    memset(&z, 0, sizeof z);
    if (fd < 0)
        return FALSE;
    in = g_malloc(AV_PROBE_BUF);
    out = g_malloc(AV_PROBE_BUF);
    while (!t->found) {
        ssize_t n = av_read_some(fd, in, AV_PROBE_BUF);
        char *p = in;

        if (n < 0)
            goto done;
        if (n == 0)
            break;
        if (skip > 0) {
            size_t k = MIN(skip, (size_t)n);
            skip -= k;
            p += k;
            n -= (ssize_t)k;
            if (n == 0)
                continue;
        }
        if (container && !zinit) {
            /* the first bytes after the header: gzip or a plain tar */
            if ((size_t)n >= 2 && (guint8)p[0] == 0x1f && (guint8)p[1] == 0x8b) {
                if (inflateInit2(&z, 16 + MAX_WBITS) != Z_OK)
                    goto done;
                gz = TRUE;
            }
            zinit = TRUE;
        }
        if (!gz) {
            av_tag_feed(t, p, (size_t)n);
            continue;
        }
        z.next_in = (Bytef *)p;
        z.avail_in = (uInt)n;
        while (z.avail_in > 0 && !t->found) {
            int rc;
            z.next_out = (Bytef *)out;
            z.avail_out = AV_PROBE_BUF;
            rc = inflate(&z, Z_NO_FLUSH);
            av_tag_feed(t, out, AV_PROBE_BUF - z.avail_out);
            if (rc == Z_STREAM_END) {
                /* a tar.gz is one member; anything after it is ignored,
                 * as libclamav ignores it */
                z.avail_in = 0;
                break;
            }
            if (rc != Z_OK)
                goto done;
        }
    }
    ok = TRUE;
done:
    if (gz)
        inflateEnd(&z);
    g_free(in);
    g_free(out);
    close(fd);
    return ok;
}

gboolean mg_av_dir_has_image_sigs(const char *dbdir)
{
    struct av_tag_search t;
    GDir *d;
    const char *name;
    int dfd;

    memset(&t, 0, sizeof t);
    dfd = open(dbdir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0)
        return TRUE;
    if ((d = g_dir_open(dbdir, 0, NULL)) == NULL) {
        close(dfd);
        return TRUE;
    }
    while (!t.found && (name = g_dir_read_name(d)) != NULL) {
        struct stat st;

        if (fstatat(dfd, name, &st, 0) != 0 || !S_ISREG(st.st_mode))
            continue;
        if (!av_probe_file(dfd, name, &t))
            t.found = TRUE; /* unreadable to the end: assume it has some */
    }
    g_dir_close(d);
    close(dfd);
    return t.found;
}

static gpointer av_probe_thread(gpointer dbdir)
{
    return GINT_TO_POINTER(mg_av_dir_has_image_sigs(dbdir));
}

struct mg_av *mg_av_open(const char *dbdir, GError **err)
{
    struct cl_engine *e = NULL;
    struct mg_av *av = NULL;
    GThread *probe = NULL;
    const char *what = NULL;
    unsigned sigs = 0;
    cl_error_t rc;

    g_return_val_if_fail(err == NULL || *err == NULL, NULL);
    if (dbdir == NULL)
        dbdir = MG_AV_DEFAULT_DB;
    if ((rc = av_init()) != CL_SUCCESS) {
        g_set_error(err, MG_AV_ERROR, MG_AV_ERROR_ENGINE, "libclamav cl_init failed: %s",
                    cl_strerror(rc));
        return NULL;
    }
    if (!av_check_dir(dbdir, err))
        return NULL;
    if ((e = cl_engine_new()) == NULL) {
        g_set_error(err, MG_AV_ERROR, MG_AV_ERROR_ENGINE, "libclamav cl_engine_new failed");
        return NULL;
    }
    if ((rc = av_configure(e, &what)) != CL_SUCCESS) {
        g_set_error(err, MG_AV_ERROR, MG_AV_ERROR_ENGINE, "libclamav: setting %s failed: %s", what,
                    cl_strerror(rc));
        goto out;
    }

    /* the search for image signatures runs beside libclamav's load */
    probe = g_thread_try_new("mugaika-avprobe", av_probe_thread, (gpointer)dbdir, NULL);
    av_capture = TRUE;
    av_lasterr[0] = '\0';
    rc = cl_load(dbdir, e, &sigs, CL_DB_STDOPT);
    if (rc != CL_SUCCESS) {
        av_load_error(dbdir, "loading signatures", rc, err);
        goto out;
    }
    if (sigs == 0) {
        g_set_error(err, MG_AV_ERROR, MG_AV_ERROR_NO_DATABASE,
                    "ClamAV database directory %s: no signatures loaded " AV_HINT, dbdir);
        goto out;
    }
    cl_engine_set_clcb_pre_scan(e, av_pre_scan);
    cl_engine_set_clcb_post_scan(e, av_post_scan);
    if ((rc = cl_engine_compile(e)) != CL_SUCCESS) {
        av_load_error(dbdir, "compiling the engine", rc, err);
        goto out;
    }

    av = g_new0(struct mg_av, 1);
    av->refs = 1;
    av->engine = e;
    g_mutex_init(&av->cache_lock);
    av->cache = g_hash_table_new(g_str_hash, g_str_equal);
    g_queue_init(&av->lru);
    av->cache_max = AV_CACHE_ENTRIES;
    av->sigs = sigs;
    av->image_hash =
        probe != NULL ? GPOINTER_TO_INT(g_thread_join(probe)) : mg_av_dir_has_image_sigs(dbdir);
    probe = NULL;
    e = NULL;
out:
    if (probe != NULL)
        g_thread_join(probe);
    av_capture = FALSE;
    av_lasterr[0] = '\0';
    if (e != NULL)
        cl_engine_free(e);
    return av;
}

struct mg_av *mg_av_ref(struct mg_av *av)
{
    g_return_val_if_fail(av != NULL, NULL);
    g_atomic_int_inc(&av->refs);
    return av;
}

void mg_av_unref(struct mg_av *av)
{
    if (av == NULL)
        return;
    if (!g_atomic_int_dec_and_test(&av->refs))
        return;
    cl_engine_free(av->engine);
    g_hash_table_unref(av->cache);
    g_queue_clear_full(&av->lru, g_free);
    g_mutex_clear(&av->cache_lock);
    g_free(av);
}

guint mg_av_cache_hits(struct mg_av *av)
{
    guint n;

    g_return_val_if_fail(av != NULL, 0);
    g_mutex_lock(&av->cache_lock);
    n = av->cache_hits;
    g_mutex_unlock(&av->cache_lock);
    return n;
}

/* The least recently used forgotten down to the limit (cache_lock held). */
static void av_cache_trim(struct mg_av *av)
{
    while (av->lru.length > av->cache_max) {
        char *old = g_queue_pop_tail(&av->lru);
        g_hash_table_remove(av->cache, old);
        g_free(old);
    }
}

void mg_av_cache_limit(struct mg_av *av, guint entries)
{
    g_return_if_fail(av != NULL);
    g_mutex_lock(&av->cache_lock);
    av->cache_max = entries;
    av_cache_trim(av);
    g_mutex_unlock(&av->cache_lock);
}

/* The key of a scan of len bytes at buf with flags, or NULL when such
 * a scan is not remembered. g_free. */
static char *av_cache_key(const struct mg_av *av, const void *buf, size_t len, unsigned flags)
{
    struct mg_sha256 *h;
    char *key;

    if (flags & MG_AV_SCAN_SKIP_SEEN)
        return NULL;
    h = mg_sha256_new();
    mg_sha256_update(h, buf, len);
    /* what changes libclamav's options (av_scan_map) */
    key = g_strdup_printf("%s/%c%c", mg_sha256_hex(h), flags & MG_AV_SCAN_SHALLOW ? 's' : 'f',
                          (flags & MG_AV_SCAN_NO_IMAGE_HASH) || !av->image_hash ? 'n' : 'i');
    mg_sha256_free(h);
    return key;
}

/* Whether key was found clean before (it becomes the most recent). */
static gboolean av_cache_lookup(struct mg_av *av, const char *key)
{
    GList *link;

    g_mutex_lock(&av->cache_lock);
    link = g_hash_table_lookup(av->cache, key);
    if (link != NULL) {
        g_queue_unlink(&av->lru, link);
        g_queue_push_head_link(&av->lru, link);
        av->cache_hits++;
    }
    g_mutex_unlock(&av->cache_lock);
    return link != NULL;
}

/* key was found clean: remembered (takes key), the oldest forgotten
 * past the limit (mg_av_cache_limit). */
static void av_cache_add(struct mg_av *av, char *key)
{
    g_mutex_lock(&av->cache_lock);
    if (g_hash_table_contains(av->cache, key)) { /* another scan of it was quicker */
        g_mutex_unlock(&av->cache_lock);
        g_free(key);
        return;
    }
    g_queue_push_head(&av->lru, key);
    g_hash_table_insert(av->cache, key, av->lru.head);
    av_cache_trim(av);
    g_mutex_unlock(&av->cache_lock);
}

static void av_read_error(const struct av_reader *r, GError **err);

/* The common tail of all scans: map, scan, classify. */
static enum mg_av_verdict av_scan_map(struct mg_av *av, cl_fmap_t *map, const struct av_reader *r,
                                      unsigned flags, struct mg_av_seen *seen, char **virname,
                                      GError **err)
{
    struct av_cb_ctx ctx = {seen, flags, FALSE, -1};
    struct cl_scan_options o;
    const char *name = NULL;
    unsigned long scanned = 0;
    cl_error_t rc;

    memset(&o, 0, sizeof(o));
    o.general = CL_SCAN_GENERAL_HEURISTICS;
    o.parse = CL_SCAN_PARSE_ARCHIVE | CL_SCAN_PARSE_ELF | CL_SCAN_PARSE_PDF | CL_SCAN_PARSE_SWF |
              CL_SCAN_PARSE_HWP3 | CL_SCAN_PARSE_XMLDOCS | CL_SCAN_PARSE_MAIL | CL_SCAN_PARSE_OLE2 |
              CL_SCAN_PARSE_HTML | CL_SCAN_PARSE_PE | CL_SCAN_PARSE_ONENOTE | CL_SCAN_PARSE_IMAGE |
              CL_SCAN_PARSE_IMAGE_FUZZY_HASH;
    if (flags & MG_AV_SCAN_SHALLOW)
        o.parse &= ~(unsigned)CL_SCAN_PARSE_ARCHIVE;
    if ((flags & MG_AV_SCAN_NO_IMAGE_HASH) || !av->image_hash)
        o.parse &= ~(unsigned)CL_SCAN_PARSE_IMAGE_FUZZY_HASH;
    o.heuristic = CL_SCAN_HEURISTIC_EXCEEDS_MAX | CL_SCAN_HEURISTIC_ENCRYPTED_ARCHIVE |
                  CL_SCAN_HEURISTIC_ENCRYPTED_DOC;

    rc = cl_scanmap_callback(
        map, NULL, &name, &scanned, av->engine, &o,
        seen != NULL && (flags & (MG_AV_SCAN_RECORD | MG_AV_SCAN_SKIP_SEEN)) ? &ctx : NULL);
    if (rc == CL_VIRUS) {
        if (virname != NULL)
            *virname = g_strdup(name != NULL ? name : "Unknown");
        return MG_AV_INFECTED;
    }
    if (rc != CL_CLEAN) {
        g_set_error(err, MG_AV_ERROR, MG_AV_ERROR_ENGINE, "libclamav scan failed: %s",
                    cl_strerror(rc));
        return MG_AV_FAILED;
    }
    /* libclamav reads past failed reads as if the data were empty. */
    if (r != NULL && (r->failed || r->short_read)) {
        av_read_error(r, err);
        return MG_AV_FAILED;
    }
    return MG_AV_CLEAN;
}

enum mg_av_verdict mg_av_scan_buffer(struct mg_av *av, const void *buf, size_t len, char **virname,
                                     GError **err)
{
    return mg_av_scan_buffer_flags(av, buf, len, 0, virname, err);
}

enum mg_av_verdict mg_av_scan_buffer_flags(struct mg_av *av, const void *buf, size_t len,
                                           unsigned flags, char **virname, GError **err)
{
    return mg_av_scan_buffer_seen(av, buf, len, flags, NULL, virname, err);
}

enum mg_av_verdict mg_av_scan_buffer_seen(struct mg_av *av, const void *buf, size_t len,
                                          unsigned flags, struct mg_av_seen *seen, char **virname,
                                          GError **err)
{
    enum mg_av_verdict v;
    cl_fmap_t *map;
    char *key;

    g_return_val_if_fail(av != NULL, MG_AV_FAILED);
    g_return_val_if_fail(buf != NULL || len == 0, MG_AV_FAILED);
    if (virname != NULL)
        *virname = NULL;
    if (buf == NULL)
        buf = "";
    key = av_cache_key(av, buf, len, flags);
    if (key != NULL && av_cache_lookup(av, key)) {
        g_free(key);
        return MG_AV_CLEAN;
    }
    if ((map = cl_fmap_open_memory(buf, len)) == NULL) {
        g_free(key);
        g_set_error(err, MG_AV_ERROR, MG_AV_ERROR_ENGINE,
                    "libclamav cannot map a buffer of %zu bytes", len);
        return MG_AV_FAILED;
    }
    v = av_scan_map(av, map, NULL, flags, seen, virname, err);
    cl_fmap_close(map);
    if (key != NULL && v == MG_AV_CLEAN)
        av_cache_add(av, key);
    else
        g_free(key);
    return v;
}

/* clcb_pread over struct av_reader: reads in full, records failures. */
static off_t av_read(void *handle, void *buf, size_t count, off_t offset)
{
    struct av_reader *r = handle;
    uint64_t want = count;
    size_t got = 0;

    if (offset < 0 || (uint64_t)offset >= r->size)
        want = 0;
    else if (want > r->size - (uint64_t)offset)
        want = r->size - (uint64_t)offset;
    while (got < count) {
        gssize n;

        errno = 0;
        n = r->fn(r->handle, (char *)buf + got, count - got, (uint64_t)offset + got);
        if (n < 0 || (size_t)n > count - got) {
            if (!r->failed)
                r->err = n < 0 ? errno : 0;
            r->failed = TRUE;
            return -1;
        }
        if (n == 0)
            break;
        got += (size_t)n;
    }
    if (got < want)
        r->short_read = TRUE;
    return (off_t)got;
}

static GMutex av_img_lock;
static GCond av_img_cond;
static uint64_t av_img_used;

static void av_img_take(uint64_t n)
{
    g_mutex_lock(&av_img_lock);
    while (av_img_used > 0 && av_img_used + n > AV_IMAGE_MEM_TOTAL)
        g_cond_wait(&av_img_cond, &av_img_lock);
    av_img_used += n;
    g_mutex_unlock(&av_img_lock);
}

static void av_img_give(uint64_t n)
{
    g_mutex_lock(&av_img_lock);
    av_img_used -= n;
    g_cond_broadcast(&av_img_cond);
    g_mutex_unlock(&av_img_lock);
}

static uint64_t av_whole_used; /* under av_img_lock */

/* Room for n more bytes read whole, or FALSE (then through the handle). */
static gboolean av_whole_take(uint64_t n)
{
    gboolean ok;

    g_mutex_lock(&av_img_lock);
    ok = av_whole_used + n <= AV_WHOLE_TOTAL;
    if (ok)
        av_whole_used += n;
    g_mutex_unlock(&av_img_lock);
    return ok;
}

static void av_whole_give(uint64_t n)
{
    g_mutex_lock(&av_img_lock);
    av_whole_used -= n;
    g_mutex_unlock(&av_img_lock);
}

/* The pictures libclamav hashes (JPEG, PNG, GIF, BMP, TIFF, WebP, ICO),
 * by their first bytes. */
static gboolean av_is_picture(const guint8 *p, size_t n)
{
    return (n >= 3 && p[0] == 0xff && p[1] == 0xd8 && p[2] == 0xff) ||
           (n >= 4 && memcmp(p, "\x89PNG", 4) == 0) || (n >= 4 && memcmp(p, "GIF8", 4) == 0) ||
           (n >= 2 && memcmp(p, "BM", 2) == 0) ||
           (n >= 4 && (memcmp(p, "II*\0", 4) == 0 || memcmp(p, "MM\0*", 4) == 0)) ||
           (n >= 12 && memcmp(p, "RIFF", 4) == 0 && memcmp(p + 8, "WEBP", 4) == 0) ||
           (n >= 4 && memcmp(p, "\0\0\1\0", 4) == 0);
}

static void av_read_error(const struct av_reader *r, GError **err)
{
    const char *why;

    if (r->failed)
        why = r->err != 0 ? g_strerror(r->err) : "the read function failed or returned too much";
    else
        why = "content shorter than its size (file truncated?)";
    g_set_error(err, MG_AV_ERROR, MG_AV_ERROR_ENGINE,
                "reading the content to scan failed: %s (%" G_GUINT64_FORMAT " bytes expected)",
                why, r->size);
}

enum mg_av_verdict mg_av_scan_pread(struct mg_av *av, uint64_t size, mg_av_pread_fn fn,
                                    void *handle, char **virname, GError **err)
{
    return mg_av_scan_pread_flags(av, size, fn, handle, 0, virname, err);
}

enum mg_av_verdict mg_av_scan_pread_flags(struct mg_av *av, uint64_t size, mg_av_pread_fn fn,
                                          void *handle, unsigned flags, char **virname,
                                          GError **err)
{
    return mg_av_scan_pread_seen(av, size, fn, handle, flags, NULL, virname, err);
}

/* The content read whole through r, then scanned from memory. */
static enum mg_av_verdict av_scan_whole(struct mg_av *av, struct av_reader *r, uint64_t size,
                                        unsigned flags, struct mg_av_seen *seen, char **virname,
                                        GError **err)
{
    guint8 *buf = g_malloc((size_t)size);
    enum mg_av_verdict v;

    if (av_read(r, buf, (size_t)size, 0) != (off_t)size || r->failed || r->short_read) {
        g_free(buf);
        av_read_error(r, err);
        return MG_AV_FAILED;
    }
    v = mg_av_scan_buffer_seen(av, buf, (size_t)size, flags, seen, virname, err);
    g_free(buf);
    return v;
}

enum mg_av_verdict mg_av_scan_pread_seen(struct mg_av *av, uint64_t size, mg_av_pread_fn fn,
                                         void *handle, unsigned flags, struct mg_av_seen *seen,
                                         char **virname, GError **err)
{
    struct av_reader r = {.fn = fn, .handle = handle, .size = size};
    enum mg_av_verdict v;
    cl_fmap_t *map;
    guint8 head[12];
    size_t nhead;

    g_return_val_if_fail(av != NULL, MG_AV_FAILED);
    g_return_val_if_fail(fn != NULL, MG_AV_FAILED);
    if (virname != NULL)
        *virname = NULL;
    if (size == 0) /* libclamav maps no empty handle; an empty buffer is the same */
        return mg_av_scan_buffer_seen(av, "", 0, flags, seen, virname, err);
    if (size > SIZE_MAX || size > (uint64_t)G_MAXINT64) {
        g_set_error(err, MG_AV_ERROR, MG_AV_ERROR_ENGINE,
                    "cannot scan %" G_GUINT64_FORMAT " bytes: too large to map", size);
        return MG_AV_FAILED;
    }
    /* libclamav does not even read tiny inputs, and reads past failed
     * reads: content that cannot be read must be caught here. */
    nhead = (size_t)MIN(size, (uint64_t)sizeof head);
    if (av_read(&r, head, nhead, 0) != (off_t)nhead) {
        av_read_error(&r, err);
        return MG_AV_FAILED;
    }
    if (av->image_hash && !(flags & MG_AV_SCAN_NO_IMAGE_HASH) && size <= AV_IMAGE_MEM_MAX &&
        av_is_picture(head, nhead)) {
        /* libclamav computes no image hash over a map read through a
         * handle ("file_bytes parameter is NULL"): a picture is scanned
         * from memory */
        av_img_take(size);
        v = av_scan_whole(av, &r, size, flags, seen, virname, err);
        av_img_give(size);
        return v;
    }
    if (size <= AV_WHOLE_MAX && av_whole_take(size)) {
        /* read in one go: through the handle, libclamav reads and faults
         * in page by page under a lock of its map */
        v = av_scan_whole(av, &r, size, flags, seen, virname, err);
        av_whole_give(size);
        return v;
    }
    if ((map = cl_fmap_open_handle(&r, 0, (size_t)size, av_read, 1)) == NULL) {
        g_set_error(err, MG_AV_ERROR, MG_AV_ERROR_ENGINE,
                    "libclamav cannot map %" G_GUINT64_FORMAT " bytes", size);
        return MG_AV_FAILED;
    }
    v = av_scan_map(av, map, &r, flags, seen, virname, err);
    cl_fmap_close(map);
    return v;
}

/* mg_av_pread_fn over a file descriptor (handle: int *). */
static gssize av_fd_read(void *handle, void *buf, size_t len, uint64_t off)
{
    const int *fd = handle;
    ssize_t n;

    if (off > (uint64_t)G_MAXINT64) {
        errno = EINVAL;
        return -1;
    }
    do
        n = pread(*fd, buf, len, (off_t)off);
    while (n < 0 && errno == EINTR);
    return n;
}

enum mg_av_verdict mg_av_scan_fd(struct mg_av *av, int fd, char **virname, GError **err)
{
    return mg_av_scan_fd_flags(av, fd, 0, virname, err);
}

enum mg_av_verdict mg_av_scan_fd_flags(struct mg_av *av, int fd, unsigned flags, char **virname,
                                       GError **err)
{
    enum mg_av_verdict v;
    struct stat st;

    g_return_val_if_fail(av != NULL, MG_AV_FAILED);
    if (virname != NULL)
        *virname = NULL;
    if (fstat(fd, &st) != 0) {
        int e = errno;

        g_set_error(err, MG_AV_ERROR, MG_AV_ERROR_ENGINE, "cannot scan descriptor %d: %s", fd,
                    g_strerror(e));
        return MG_AV_FAILED;
    }
    if (!S_ISREG(st.st_mode)) {
        g_set_error(err, MG_AV_ERROR, MG_AV_ERROR_ENGINE,
                    "cannot scan descriptor %d: not a regular file", fd);
        return MG_AV_FAILED;
    }
    v = mg_av_scan_pread_flags(av, (uint64_t)st.st_size, av_fd_read, &fd, flags, virname, err);
    if (v == MG_AV_FAILED && err != NULL && *err != NULL)
        g_prefix_error(err, "descriptor %d: ", fd);
    return v;
}

unsigned mg_av_signatures(const struct mg_av *av)
{
    g_return_val_if_fail(av != NULL, 0);
    return av->sigs;
}

gboolean mg_av_image_hash(const struct mg_av *av)
{
    g_return_val_if_fail(av != NULL, FALSE);
    return av->image_hash;
}

const char *mg_av_version(void)
{
    return cl_retver();
}
