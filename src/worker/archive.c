/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * NAME
 *	archive 3
 * SUMMARY
 *	the "archive" handler of mugaika-worker: unpack one archive
 * SYNOPSIS
 *	enum mgw_status mgw_archive(struct mgw *w);
 *
 *	mugaika-worker archive [max-members=N] [max-total=BYTES]
 *		[max-ratio=N] [name=FILE] <item >records
 * DESCRIPTION
 *	Reads the item (fd 0) with libarchive and emits every regular-file
 *	member as one output, streamed in blocks, with type NULL: the
 *	parent detects each member's type, sends it through the whole
 *	pipeline again and recurses into nested archives itself. This
 *	handler never recurses.
 *
 *	Formats: zip, 7z, rar, rar5, tar (ustar, pax, GNU), cpio, ar,
 *	lha/lzh, cab and iso9660, and "raw" for a bare compressed file.
 *	mtree is left out on purpose: its reader opens the files an mtree
 *	text names on the local disk. Compression filters are the ones
 *	libarchive has built in (gzip, bzip2, xz, lzma, lzip, compress,
 *	zstd, lz4); none that runs an external program.
 *
 *	One compression layer per run. The outermost filter is found here
 *	by its magic number (lzma-alone, which has none, by libarchive's
 *	heuristic) and given to libarchive alone, so it never chains a
 *	second one. Under a filter only tar and cpio are read as archives
 *	(tar.gz, tar.xz, cpio.bz2...); anything else is a bare compressed
 *	file whose decompressed stream is the one output: x.zip.bz2 gives
 *	x.zip, x.gz.bz2 gives x.gz, and the parent runs the handler again
 *	on it. A filtered stream in which tar finds no member at all (one
 *	starting with a zero block, say) is read again as a bare file
 *	rather than taken for an empty tar; an unfiltered tar that ends
 *	before its first member while the item holds data fails. The bare
 *	file's name is the "name" option's last component with its
 *	compression suffix stripped, or "data".
 *
 *	Member names are made safe: decoded to UTF-8 (libarchive's own
 *	conversion where the format says what the charset is; otherwise
 *	the bytes are kept when they are valid UTF-8, else decoded as
 *	CP932, the usual charset of zip names written on Japanese
 *	Windows, else as EUC-JP, the old Japanese Unix one (tar, cpio);
 *	what still fails becomes U+FFFD), "\" taken as a separator,
 *	control and format characters (C0, DEL, C1, bidi and other Cf
 *	controls, line and paragraph separators) removed, a drive letter
 *	and empty, "." and ".." components dropped (and any component of
 *	only dots and spaces, which Windows treats as "." or ".."),
 *	trailing dots and spaces of a component removed (as Windows does,
 *	so "x.exe." cannot pose as another extension), and the result
 *	kept under AR_NAME_MAX bytes. An empty result becomes "member-N".
 *	A name changed this way carries MGW_OUT_NAME_CHANGED.
 *
 *	Zip: libarchive exposes one name per entry, so the central
 *	directory is also parsed here, by hand and bounded (the end
 *	record in the last 64 KiB, at most max-members + 1 entries, each
 *	with its local header), to find members whose local-header name
 *	differs from the central-directory name (MGW_OUT_NAME_MISMATCH:
 *	tools that list the directory and tools that stream the local
 *	headers see different files; libarchive reports the local name
 *	or an Info-ZIP Unicode Path, so all of them are matched) and
 *	members whose data overlap another member's (the overlapping-entry
 *	zip bomb), which ends the run at once with MGW_LIMIT. When the end
 *	record lists another number of entries than libarchive read (it
 *	stops without an error on some damaged directories), MGW_FAIL.
 *
 *	RAR 5: libarchive 3.6 does not report encryption in this format
 *	(encrypted data reads as a checksum error), so the block headers
 *	are walked here too, bounded, for an archive encryption header or
 *	a file encryption record.
 *
 *	Directories are skipped silently. Symbolic links, hard links,
 *	devices, FIFOs and sockets are not emitted; each gets one
 *	"removed" note. Their data, if any, is still read and counted
 *	against the limits (skipping data of a compressed stream costs as
 *	much as reading it).
 * LIMITS
 *	max-members (1000): entries of any type; one more ends the run.
 *	max-total (200 MiB): expanded bytes of all entries together; a
 *	member whose declared size alone would pass it ends the run before
 *	any of its data is read.
 *	max-ratio (100; 0 turns it off): expanded bytes over input bytes,
 *	per member (the input bytes read while that member was read, plus
 *	one read block of slack for the read-ahead) and for the whole
 *	item (over the item's size); judged only once the expanded bytes
 *	pass AR_RATIO_FLOOR, so small files with high ratios pass.
 *	Memory is bounded by libarchive's own buffers and two AR_BLOCK
 *	buffers here: no member is ever held whole. An allocation failure
 *	in libarchive (the worker's address-space limit) is reported as a
 *	limit too.
 * DIAGNOSTICS
 *	MGW_LIMIT with a reason naming the limit; MGW_ENCRYPTED when an
 *	entry or the archive's headers are encrypted and no password was
 *	given (the option "password", for a release from quarantine:
 *	libarchive decrypts zip's traditional and AES encryption; RAR 5
 *	and 7z encryption it cannot, so those stay MGW_ENCRYPTED), or the
 *	password does not decrypt the data; MGW_FAIL when the item is not an archive this handler
 *	reads, or any header or member data is unreadable (corrupt,
 *	truncated, bad CRC): the parent then drops the whole item. A note
 *	"info" gives the format and the member count at the end.
 */
#include <errno.h>
#include <inttypes.h>
#include <locale.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <wchar.h>

#include <archive.h>
#include <archive_entry.h>

#include "worker/handlers.h"

#define AR_BLOCK       (64u * 1024) /* a read from fd 0; a block of member data */
#define AR_RATIO_FLOOR (1u << 20)   /* ratios are judged past this many bytes */
#define AR_NAME_MAX    1024         /* bytes of an emitted name */
#define ZIP_EOCD_LEN   22
#define ZIP_EOCD_SCAN  (65535 + ZIP_EOCD_LEN)
#define ZIP_CDH_LEN    46
#define ZIP_LFH_LEN    30
#define ZIP64_EOCD_LEN 56
#define ZIP64_LOC_LEN  20

struct ar_ctx {
    struct mgw *w;
    struct archive *a;
    uint64_t in_size;
    uint64_t pos;      /* the read callback's offset in fd 0 */
    uint64_t consumed; /* bytes read from fd 0 in all (re-reads count again) */
    unsigned char *inbuf;
    unsigned char *buf;
    uint64_t max_members;
    uint64_t max_total;
    uint64_t max_ratio;
    uint64_t entries;     /* entries seen, of any type */
    uint64_t emitted;     /* regular files emitted */
    uint64_t decrypted;   /* of them, encrypted ones opened with the password */
    uint64_t total;       /* expanded bytes of all entries */
    GHashTable *mismatch; /* zip: raw names whose local and central forms differ */
    int64_t zip_count;    /* zip: entries the end record lists (-1: unknown) */
    bool opened;          /* c->a opened: only then may it be asked more than its error */
};

/* --- input callbacks: pread on fd 0, counting what libarchive reads --- */

static la_ssize_t in_read(struct archive *a, void *data, const void **out)
{
    struct ar_ctx *c = data;
    ssize_t n;

    *out = c->inbuf;
    if (c->pos >= c->in_size)
        return 0;
    do
        n = pread(mgw_input_fd(c->w), c->inbuf, AR_BLOCK, (off_t)c->pos);
    while (n < 0 && errno == EINTR);
    if (n < 0) {
        archive_set_error(a, errno, "read: %s", g_strerror(errno));
        return -1;
    }
    c->pos += (uint64_t)n;
    c->consumed += (uint64_t)n;
    return n;
}

static la_int64_t in_skip(struct archive *a, void *data, la_int64_t req)
{
    struct ar_ctx *c = data;
    uint64_t n;

    (void)a;
    if (req <= 0 || c->pos >= c->in_size)
        return 0;
    n = MIN((uint64_t)req, c->in_size - c->pos);
    c->pos += n;
    return (la_int64_t)n;
}

static la_int64_t in_seek(struct archive *a, void *data, la_int64_t off, int whence)
{
    struct ar_ctx *c = data;
    int64_t base;

    switch (whence) {
    case SEEK_SET:
        base = 0;
        break;
    case SEEK_CUR:
        base = (int64_t)c->pos;
        break;
    case SEEK_END:
        base = (int64_t)c->in_size;
        break;
    default:
        archive_set_error(a, EINVAL, "bad seek");
        return ARCHIVE_FATAL;
    }
    if ((off < 0 && -off > base) || (off > 0 && off > (int64_t)c->in_size - base)) {
        archive_set_error(a, EINVAL, "seek outside the item");
        return ARCHIVE_FATAL;
    }
    c->pos = (uint64_t)(base + off);
    return (la_int64_t)c->pos;
}

/* --- names --- */

static bool only_dots_spaces(const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if (s[i] != '.' && s[i] != ' ')
            return false;
    return true;
}

/* Appends the component s[0..len) to out, with its trailing dots and
 * spaces removed, unless nothing safe is left of it. */
static void add_component(GString *out, const char *s, size_t len, bool first)
{
    if (first && len >= 2 && g_ascii_isalpha(s[0]) && s[1] == ':') {
        s += 2; /* a drive letter, "C:" or "C:name" */
        len -= 2;
    }
    if (len == 0 || only_dots_spaces(s, len))
        return;
    while (len > 0 && (s[len - 1] == '.' || s[len - 1] == ' '))
        len--;
    if (out->len > 0)
        g_string_append_c(out, '/');
    g_string_append_len(out, s, (gssize)len);
}

/* The safe relative form of the UTF-8 name in (owned; empty when
 * nothing safe is left). */
static char *safe_name(const char *in)
{
    char *clean = mgw_name_clean(in);
    GString *out = g_string_sized_new(strlen(in) + 1);
    const char *p, *start;
    bool first = true;

    start = clean;
    for (p = clean;; p++) {
        if (*p == '/' || *p == '\0') {
            add_component(out, start, (size_t)(p - start), first);
            first = false;
            if (*p == '\0')
                break;
            start = p + 1;
        }
    }
    g_free(clean);
    /* too long: drop leading directories, then the start of the name
     * (its end holds the extension) */
    while (out->len > AR_NAME_MAX) {
        const char *slash = strchr(out->str, '/');
        size_t cut;
        if (slash != NULL) {
            cut = (size_t)(slash - out->str) + 1;
        } else {
            const char *q = out->str + out->len - AR_NAME_MAX;
            while (*q != '\0' && (*q & 0xc0) == 0x80)
                q++; /* to a character boundary */
            cut = (size_t)(q - out->str);
        }
        g_string_erase(out, 0, (gssize)cut);
    }
    return g_string_free(out, FALSE);
}

/* The entry's name as UTF-8 (owned; NULL when it has none). */
static char *entry_name_utf8(struct archive_entry *e)
{
    static const char *const legacy[] = {"CP932", "EUC-JP"};
    const char *raw = archive_entry_pathname(e);
    const wchar_t *wide;
    char *s;

    if (raw != NULL) {
        if (g_utf8_validate(raw, -1, NULL))
            return g_strdup(raw);
        for (size_t i = 0; i < G_N_ELEMENTS(legacy); i++) {
            s = g_convert(raw, -1, "UTF-8", legacy[i], NULL, NULL, NULL);
            if (s != NULL && g_utf8_validate(s, -1, NULL))
                return s;
            g_free(s);
        }
        return g_utf8_make_valid(raw, -1);
    }
    raw = archive_entry_pathname_utf8(e);
    if (raw != NULL)
        return g_utf8_make_valid(raw, -1);
    wide = archive_entry_pathname_w(e);
    if (wide != NULL && sizeof(wchar_t) == sizeof(gunichar)) {
        s = g_ucs4_to_utf8((const gunichar *)wide, -1, NULL, NULL, NULL);
        if (s != NULL)
            return s;
    }
    return NULL;
}

/* The name of a bare compressed file's content, from the item's name. */
static char *bare_name(const char *item)
{
    static const char *const suffixes[] = {
        ".gz",  ".gzip", ".bz2", ".bzip2", ".xz",   ".lzma", ".lz",  ".z",
        ".zst", ".lz4",  ".tgz", ".tbz",   ".tbz2", ".txz",  ".tlz", ".taz",
    };
    const char *base;
    char *name, *safe;
    size_t len;

    if (item == NULL)
        return g_strdup("data");
    base = item + strlen(item);
    while (base > item && base[-1] != '/' && base[-1] != '\\')
        base--;
    name = g_strdup(base);
    len = strlen(name);
    for (size_t i = 0; i < G_N_ELEMENTS(suffixes); i++) {
        size_t sl = strlen(suffixes[i]);
        if (len > sl && g_ascii_strcasecmp(name + len - sl, suffixes[i]) == 0) {
            name[len - sl] = '\0';
            break;
        }
    }
    if (!g_utf8_validate(name, -1, NULL)) {
        char *v = g_utf8_make_valid(name, -1);
        g_free(name);
        name = v;
    }
    safe = safe_name(name);
    g_free(name);
    if (*safe == '\0') {
        g_free(safe);
        return g_strdup("data");
    }
    return safe;
}

/* --- zip central directory --- */

static uint16_t le16(const unsigned char *p)
{
    return (uint16_t)(p[0] | (unsigned)p[1] << 8);
}

static uint32_t le32(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t le64(const unsigned char *p)
{
    return (uint64_t)le32(p) | (uint64_t)le32(p + 4) << 32;
}

static bool read_at(struct ar_ctx *c, void *buf, size_t len, uint64_t off)
{
    size_t got = 0;

    if (off > c->in_size || len > c->in_size - off)
        return false;
    while (got < len) {
        ssize_t n = pread(mgw_input_fd(c->w), (char *)buf + got, len - got, (off_t)(off + got));
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return false;
        got += (size_t)n;
    }
    return true;
}

struct zip_span {
    uint64_t start, end;
};

static int span_cmp(const void *x, const void *y)
{
    const struct zip_span *a = x, *b = y;

    return a->start < b->start ? -1 : a->start > b->start;
}

static uint64_t sat_add(uint64_t a, uint64_t b)
{
    return a > UINT64_MAX - b ? UINT64_MAX : a + b;
}

struct zip_dir {
    uint64_t count, size, offset; /* entries, bytes and offset of the central directory */
    uint64_t end;                 /* where it must end: the (zip64) end record */
};

/* Finds the end of central directory record (and its zip64 form). */
static bool zip_find_dir(struct ar_ctx *c, struct zip_dir *d)
{
    size_t tlen = (size_t)MIN(c->in_size, (uint64_t)ZIP_EOCD_SCAN);
    uint64_t tpos = c->in_size - tlen;
    unsigned char *t, z[ZIP64_EOCD_LEN];
    bool found = false;
    size_t i;

    if (tlen < ZIP_EOCD_LEN)
        return false;
    t = g_malloc(tlen);
    if (!read_at(c, t, tlen, tpos)) {
        g_free(t);
        return false;
    }
    for (i = tlen - ZIP_EOCD_LEN + 1; i-- > 0;) {
        if (memcmp(t + i, "PK\005\006", 4) == 0 && i + ZIP_EOCD_LEN + le16(t + i + 20) <= tlen) {
            found = true;
            break;
        }
    }
    if (found) {
        d->count = le16(t + i + 10);
        d->size = le32(t + i + 12);
        d->offset = le32(t + i + 16);
        d->end = tpos + i;
        if ((d->count == 0xffff || d->size == 0xffffffff || d->offset == 0xffffffff) &&
            i >= ZIP64_LOC_LEN && memcmp(t + i - ZIP64_LOC_LEN, "PK\006\007", 4) == 0) {
            uint64_t zoff = le64(t + i - ZIP64_LOC_LEN + 8);
            if (read_at(c, z, sizeof z, zoff) && memcmp(z, "PK\006\006", 4) == 0) {
                d->count = le64(z + 32);
                d->size = le64(z + 40);
                d->offset = le64(z + 48);
                d->end = zoff;
            }
        }
    }
    g_free(t);
    return found;
}

/* Fills in the zip64 values of a central directory entry (fields that
 * hold 0xffffffff in the fixed part come in order in extra field 1). */
static void zip64_fix(const unsigned char *x, size_t xl, uint64_t *usize, uint64_t *csize,
                      uint64_t *loff)
{
    size_t i = 0;

    while (i + 4 <= xl) {
        unsigned id = le16(x + i), n = le16(x + i + 2);
        const unsigned char *v = x + i + 4;
        if (i + 4 + n > xl)
            return;
        if (id == 1) {
            size_t k = 0;
            if (*usize == 0xffffffff && k + 8 <= n) {
                *usize = le64(v + k);
                k += 8;
            }
            if (*csize == 0xffffffff && k + 8 <= n) {
                *csize = le64(v + k);
                k += 8;
            }
            if (*loff == 0xffffffff && k + 8 <= n)
                *loff = le64(v + k);
            return;
        }
        i += 4 + n;
    }
}

/* Adds the name of an Info-ZIP Unicode Path extra field (0x7075:
 * version, CRC-32 of the plain name, UTF-8 name) to set. */
static void add_unicode_path(GHashTable *set, const unsigned char *x, size_t xl)
{
    size_t i = 0;

    while (i + 4 <= xl) {
        unsigned id = le16(x + i), n = le16(x + i + 2);
        if (i + 4 + n > xl)
            return;
        if (id == 0x7075 && n > 5)
            g_hash_table_add(set, g_strndup((const char *)x + i + 9, n - 5));
        i += 4 + n;
    }
}

/*
 * Walks the central directory: records the names whose local header
 * disagrees (c->mismatch) and returns MGW_LIMIT when two members' data
 * overlap. A directory it cannot read is left to libarchive.
 */
static enum mgw_status zip_scan(struct ar_ctx *c)
{
    struct zip_dir d;
    struct zip_span *spans;
    unsigned char h[ZIP_CDH_LEN], l[ZIP_LFH_LEN];
    unsigned char *cname, *lname, *extra;
    uint64_t base, pos, n, nspans = 0;
    bool overlap = false;

    if (!zip_find_dir(c, &d))
        return MGW_OK;
    c->zip_count = (int64_t)MIN(d.count, (uint64_t)INT64_MAX);
    if (d.size > d.end || d.offset > d.end - d.size)
        return MGW_OK;
    /* an archive with data in front (self-extracting) keeps offsets
     * relative to its own start */
    base = d.end - d.size - d.offset;
    n = MIN(d.count, d.size / ZIP_CDH_LEN);
    n = MIN(n, sat_add(c->max_members, 1));
    spans = g_new(struct zip_span, n > 0 ? n : 1);
    cname = g_malloc(65536);
    lname = g_malloc(65536);
    extra = g_malloc(65536);
    pos = d.end - d.size;
    for (uint64_t k = 0; k < n; k++) {
        unsigned nl, xl, cl, lnl, lxl;
        uint64_t usize, csize, loff, lpos;
        if (!read_at(c, h, sizeof h, pos) || memcmp(h, "PK\001\002", 4) != 0)
            break;
        nl = le16(h + 28);
        xl = le16(h + 30);
        cl = le16(h + 32);
        csize = le32(h + 20);
        usize = le32(h + 24);
        loff = le32(h + 42);
        if (!read_at(c, cname, nl, pos + ZIP_CDH_LEN) ||
            !read_at(c, extra, xl, pos + ZIP_CDH_LEN + nl))
            break;
        zip64_fix(extra, xl, &usize, &csize, &loff);
        pos += (uint64_t)ZIP_CDH_LEN + nl + xl + cl;
        lpos = sat_add(base, loff);
        if (!read_at(c, l, sizeof l, lpos) || memcmp(l, "PK\003\004", 4) != 0)
            continue;
        lnl = le16(l + 26);
        lxl = le16(l + 28);
        if (!read_at(c, lname, lnl, lpos + ZIP_LFH_LEN))
            continue;
        if (lnl != nl || memcmp(lname, cname, nl) != 0) {
            /* libarchive names the entry by either, or by the UTF-8
             * path of an Info-ZIP extra field (0x7075) of either */
            g_hash_table_add(c->mismatch, g_strndup((const char *)lname, lnl));
            g_hash_table_add(c->mismatch, g_strndup((const char *)cname, nl));
            add_unicode_path(c->mismatch, extra, xl);
            if (read_at(c, extra, lxl, lpos + ZIP_LFH_LEN + lnl))
                add_unicode_path(c->mismatch, extra, lxl);
        }
        spans[nspans].start = lpos;
        spans[nspans].end = sat_add(lpos, sat_add((uint64_t)ZIP_LFH_LEN + lnl + lxl, csize));
        nspans++;
    }
    g_free(cname);
    g_free(lname);
    g_free(extra);
    if (nspans > 1) {
        uint64_t end;
        qsort(spans, (size_t)nspans, sizeof *spans, span_cmp);
        end = spans[0].end;
        for (uint64_t k = 1; k < nspans && !overlap; k++) {
            overlap = spans[k].start < end;
            end = MAX(end, spans[k].end);
        }
    }
    g_free(spans);
    if (overlap) {
        mgw_reason(c->w, "max-ratio: zip members overlap (a zip bomb)");
        return MGW_LIMIT;
    }
    return MGW_OK;
}

/* --- rar5 headers --- */

/* A RAR 5 variable-length integer at *p (advanced); false past end. */
static bool vint(const unsigned char **p, const unsigned char *end, uint64_t *v)
{
    *v = 0;
    for (unsigned shift = 0; shift < 64 && *p < end; shift += 7) {
        unsigned char b = *(*p)++;
        *v |= (uint64_t)(b & 0x7f) << shift;
        if ((b & 0x80) == 0)
            return true;
    }
    return false;
}

/*
 * libarchive 3.6 reports neither RAR 5 encryption kind as such (file
 * data: a checksum error on read; headers: a plain error), so the
 * block headers are walked here, bounded: an archive encryption header
 * (type 4) or a file or service header with an encryption record
 * (extra record type 1) makes the archive MGW_ENCRYPTED.
 */
static enum mgw_status rar5_scan(struct ar_ctx *c)
{
    static const unsigned char sig[8] = {'R', 'a', 'r', '!', 0x1a, 0x07, 0x01, 0x00};
    unsigned char pre[16], *h = NULL;
    uint64_t pos = sizeof sig, nmax = sat_add(sat_add(c->max_members, c->max_members), 16);
    enum mgw_status st = MGW_OK;

    if (!read_at(c, pre, sizeof sig, 0) || memcmp(pre, sig, sizeof sig) != 0)
        return MGW_OK;
    for (uint64_t k = 0; k < nmax && st == MGW_OK; k++) {
        const unsigned char *p = pre + 4, *q, *end;
        uint64_t hsize, type, flags, xsize = 0, dsize = 0;
        size_t got = (size_t)MIN((uint64_t)sizeof pre, c->in_size - MIN(pos, c->in_size));
        if (got < 7 || !read_at(c, pre, got, pos) || !vint(&p, pre + got, &hsize) || hsize == 0 ||
            hsize > (2u << 20))
            break;
        pos += (uint64_t)(p - pre);
        h = g_realloc(h, (size_t)hsize);
        if (!read_at(c, h, (size_t)hsize, pos))
            break;
        q = h;
        end = h + hsize;
        if (!vint(&q, end, &type) || !vint(&q, end, &flags) ||
            ((flags & 1) && !vint(&q, end, &xsize)) || ((flags & 2) && !vint(&q, end, &dsize)))
            break;
        if (type == 4) {
            mgw_reason(c->w, "the archive's headers are encrypted");
            st = MGW_ENCRYPTED;
        } else if ((type == 2 || type == 3) && xsize > 0 && xsize <= hsize) {
            /* the extra area ends the header: records of size, type, data */
            const unsigned char *x = end - xsize;
            uint64_t rsize, rtype;
            while (x < end && vint(&x, end, &rsize) && rsize > 0 && rsize <= (uint64_t)(end - x)) {
                const unsigned char *next = x + rsize;
                if (vint(&x, next, &rtype) && rtype == 1) {
                    mgw_reason(c->w, "a member is encrypted");
                    st = MGW_ENCRYPTED;
                    break;
                }
                x = next;
            }
        } else if (type == 5) {
            break; /* end of archive */
        }
        pos = sat_add(sat_add(pos, hsize), dsize);
    }
    g_free(h);
    return st;
}

/* --- reading --- */

enum ar_formats {
    AR_ALL,    /* every archive format, and raw */
    AR_STREAM, /* what is read through a filter: tar, cpio, raw */
    AR_RAW,    /* raw only: the decompressed stream is the member */
};

/* The compression filter the item starts with, by its magic number
 * (ARCHIVE_FILTER_NONE when none). lzma-alone has none: libarchive's
 * heuristic bids for it. */
static int sniff_filter(struct ar_ctx *c)
{
    static const unsigned char xz_magic[6] = {0xfd, '7', 'z', 'X', 'Z', 0};
    unsigned char m[6];

    if (!read_at(c, m, sizeof m, 0))
        return ARCHIVE_FILTER_NONE;
    if (m[0] == 0x1f && m[1] == 0x8b)
        return ARCHIVE_FILTER_GZIP;
    if (m[0] == 0x1f && m[1] == 0x9d)
        return ARCHIVE_FILTER_COMPRESS;
    if (memcmp(m, "BZh", 3) == 0 && m[3] >= '1' && m[3] <= '9')
        return ARCHIVE_FILTER_BZIP2;
    if (memcmp(m, xz_magic, sizeof xz_magic) == 0)
        return ARCHIVE_FILTER_XZ;
    if (memcmp(m, "LZIP", 4) == 0)
        return ARCHIVE_FILTER_LZIP;
    if (memcmp(m, "\x28\xb5\x2f\xfd", 4) == 0)
        return ARCHIVE_FILTER_ZSTD;
    if (memcmp(m, "\x04\x22\x4d\x18", 4) == 0 || memcmp(m, "\x02\x21\x4c\x18", 4) == 0)
        return ARCHIVE_FILTER_LZ4;
    return ARCHIVE_FILTER_NONE;
}

/* Opens the item with exactly the filter given (none: libarchive's
 * lzma-alone bidder only) and the formats of the set. */
static int open_archive(struct ar_ctx *c, int filter, enum ar_formats formats)
{
    struct archive *a = archive_read_new();
    int r;

    c->a = a;
    c->pos = 0;
    if (mgw_option(c->w, "password") != NULL)
        archive_read_add_passphrase(a, mgw_option(c->w, "password"));
    if (filter == ARCHIVE_FILTER_NONE)
        archive_read_support_filter_lzma(a);
    else if (filter == ARCHIVE_FILTER_GZIP || filter == ARCHIVE_FILTER_BZIP2 ||
             filter == ARCHIVE_FILTER_XZ)
        archive_read_append_filter(a, filter);
    else /* the others cannot be appended (compress reads while the
          * chain has no input yet: a crash), so they bid */
        archive_read_support_filter_by_code(a, filter);
    if (formats == AR_ALL) {
        archive_read_support_format_7zip(a);
        archive_read_support_format_ar(a);
        archive_read_support_format_cab(a);
        archive_read_support_format_empty(a);
        archive_read_support_format_iso9660(a);
        archive_read_support_format_lha(a);
        archive_read_support_format_rar(a);
        archive_read_support_format_rar5(a);
        archive_read_support_format_zip(a);
    }
    if (formats != AR_RAW) {
        archive_read_support_format_cpio(a);
        archive_read_support_format_tar(a);
    }
    archive_read_support_format_raw(a);
    archive_read_set_read_callback(a, in_read);
    archive_read_set_skip_callback(a, in_skip);
    archive_read_set_seek_callback(a, in_seek);
    archive_read_set_callback_data(a, c);
    r = archive_read_open1(a);
    c->opened = r >= ARCHIVE_WARN;
    return r;
}

static void close_archive(struct ar_ctx *c)
{
    if (c->a != NULL)
        archive_read_free(c->a);
    c->a = NULL;
    c->opened = false;
}

/* The status for a libarchive failure: encrypted, out of memory, or
 * unreadable. */
static enum mgw_status failure(struct ar_ctx *c, struct archive_entry *e, const char *what)
{
    char *msg =
        g_strdup(archive_error_string(c->a) != NULL ? archive_error_string(c->a) : "no detail");
    enum mgw_status st = MGW_FAIL;

    g_strchomp(msg);
    /* after a failed open libarchive's format pointer is stale: asking
     * it about encryption crashes */
    if (c->opened && ((e != NULL && archive_entry_is_encrypted(e)) ||
                      archive_read_has_encrypted_entries(c->a) > 0)) {
        if (mgw_option(c->w, "password") != NULL)
            mgw_reason(c->w, "the password does not open the archive (%s: %s)", what, msg);
        else
            mgw_reason(c->w, "the archive is encrypted (%s: %s)", what, msg);
        st = MGW_ENCRYPTED;
    } else if (archive_errno(c->a) == ENOMEM) {
        mgw_reason(c->w, "memory limit: %s: %s", what, msg);
        st = MGW_LIMIT;
    } else {
        mgw_reason(c->w, "%s: %s", what, msg);
    }
    g_free(msg);
    return st;
}

static bool over_ratio(uint64_t expanded, uint64_t compressed, uint64_t ratio)
{
    if (ratio == 0 || expanded <= AR_RATIO_FLOOR)
        return false;
    compressed = MAX(compressed, 1);
    return compressed <= UINT64_MAX / ratio && expanded > compressed * ratio;
}

/* Counts n more expanded bytes of the current entry against the limits. */
static enum mgw_status account(struct ar_ctx *c, size_t n, uint64_t *expanded, uint64_t start,
                               const char *name)
{
    if (n > c->max_total - c->total) {
        mgw_reason(c->w, "max-total: more than %" PRIu64 " expanded bytes", c->max_total);
        return MGW_LIMIT;
    }
    c->total += n;
    *expanded += n;
    if (over_ratio(*expanded, c->consumed - start + AR_BLOCK, c->max_ratio)) {
        mgw_reason(c->w, "max-ratio: member '%s' expands more than %" PRIu64 " times", name,
                   c->max_ratio);
        return MGW_LIMIT;
    }
    if (over_ratio(c->total, c->in_size, c->max_ratio)) {
        mgw_reason(c->w, "max-ratio: the archive expands more than %" PRIu64 " times",
                   c->max_ratio);
        return MGW_LIMIT;
    }
    return MGW_OK;
}

/* Reads the current entry's data; emits it when emit is set. */
static enum mgw_status copy_data(struct ar_ctx *c, struct archive_entry *e, const char *name,
                                 bool emit)
{
    uint64_t expanded = 0, start = c->consumed;
    enum mgw_status st;

    for (;;) {
        la_ssize_t n = archive_read_data(c->a, c->buf, AR_BLOCK);
        if (n == 0)
            break;
        if (n < 0) {
            char *what = g_strdup_printf("member '%s' unreadable", name);
            st = failure(c, e, what);
            g_free(what);
            return st;
        }
        st = account(c, (size_t)n, &expanded, start, name);
        if (st != MGW_OK)
            return st;
        if (emit && !mgw_out_write(c->w, c->buf, (size_t)n)) {
            mgw_reason(c->w, "output failed");
            return MGW_FAIL;
        }
    }
    return MGW_OK;
}

static const char *removed_kind(struct archive_entry *e)
{
    if (archive_entry_hardlink(e) != NULL)
        return "hard link";
    switch (archive_entry_filetype(e)) {
    case 0: /* no type (ar, some zips): a plain file */
    case AE_IFREG:
    case AE_IFDIR:
        return NULL;
    case AE_IFLNK:
        return "symbolic link";
    case AE_IFCHR:
        return "character device";
    case AE_IFBLK:
        return "block device";
    case AE_IFIFO:
        return "FIFO";
    case AE_IFSOCK:
        return "socket";
    default:
        return "member of unknown type";
    }
}

static enum mgw_status do_entry(struct ar_ctx *c, struct archive_entry *e, const char *bare)
{
    const char *kind = removed_kind(e);
    char *decoded = NULL, *name;
    unsigned flags = 0;
    enum mgw_status st;

    if (bare != NULL) {
        name = g_strdup(bare);
    } else {
        decoded = entry_name_utf8(e);
        name = safe_name(decoded != NULL ? decoded : "");
        if (*name == '\0') {
            g_free(name);
            name = g_strdup_printf("member-%" PRIu64, c->entries);
        }
        if (decoded == NULL || strcmp(decoded, name) != 0)
            flags |= MGW_OUT_NAME_CHANGED;
    }
    if (archive_entry_filetype(e) != AE_IFDIR && archive_entry_is_encrypted(e) &&
        mgw_option(c->w, "password") == NULL) {
        mgw_reason(c->w, "member '%s' is encrypted", name);
        st = MGW_ENCRYPTED;
    } else if (archive_entry_filetype(e) == AE_IFDIR || kind != NULL) {
        if (kind != NULL)
            mgw_note(c->w, "removed", "%s '%s' removed", kind, name);
        /* data of an entry not emitted still counts (skipping it in a
         * compressed stream costs as much); none is read when the
         * entry says it has none (rar5 refuses to read a directory) */
        st = archive_entry_size_is_set(e) && archive_entry_size(e) <= 0
                 ? MGW_OK
                 : copy_data(c, e, name, false);
    } else if (archive_entry_size_is_set(e) && archive_entry_size(e) > 0 &&
               (uint64_t)archive_entry_size(e) > c->max_total - c->total) {
        mgw_reason(
            c->w, "max-total: member '%s' declares %" PRId64 " bytes, more than %" PRIu64 " in all",
            name, (int64_t)archive_entry_size(e), c->max_total);
        st = MGW_LIMIT;
    } else {
        const char *raw = archive_entry_pathname(e);
        if (raw != NULL && g_hash_table_contains(c->mismatch, raw))
            flags |= MGW_OUT_NAME_MISMATCH;
        if (!mgw_out_begin(c->w, name, NULL, flags)) {
            mgw_reason(c->w, "output failed");
            st = MGW_FAIL;
        } else {
            st = copy_data(c, e, name, true);
            if (st == MGW_OK && !mgw_out_end(c->w)) {
                mgw_reason(c->w, "output failed");
                st = MGW_FAIL;
            }
            c->emitted++;
            if (st == MGW_OK && archive_entry_is_encrypted(e))
                c->decrypted++;
        }
    }
    g_free(decoded);
    g_free(name);
    return st;
}

static const char *format_name(int format)
{
    switch (format) {
    case ARCHIVE_FORMAT_ZIP:
        return "zip";
    case ARCHIVE_FORMAT_7ZIP:
        return "7z";
    case ARCHIVE_FORMAT_RAR:
        return "rar";
    case ARCHIVE_FORMAT_RAR_V5:
        return "rar5";
    case ARCHIVE_FORMAT_TAR:
        return "tar";
    case ARCHIVE_FORMAT_CPIO:
        return "cpio";
    case ARCHIVE_FORMAT_AR:
        return "ar";
    case ARCHIVE_FORMAT_LHA:
        return "lha";
    case ARCHIVE_FORMAT_CAB:
        return "cab";
    case ARCHIVE_FORMAT_ISO9660:
        return "iso9660";
    case ARCHIVE_FORMAT_EMPTY:
        return "empty";
    case ARCHIVE_FORMAT_RAW:
        return "compressed file";
    default:
        return "archive";
    }
}

static void note_info(struct ar_ctx *c)
{
    GString *s = g_string_new(format_name(archive_format(c->a) & ARCHIVE_FORMAT_BASE_MASK));
    int nf = archive_filter_count(c->a);

    for (int i = 0; i + 1 < nf; i++)
        g_string_append_printf(s, "%s%s", i == 0 ? " (" : ", ", archive_filter_name(c->a, i));
    if (nf > 1)
        g_string_append_c(s, ')');
    mgw_note(c->w, "info", "%s: %" PRIu64 " members emitted of %" PRIu64 " entries", s->str,
             c->emitted, c->entries);
    if (c->decrypted > 0)
        mgw_note(c->w, "decrypted", "%" PRIu64 " encrypted members opened with the password",
                 c->decrypted);
    g_string_free(s, TRUE);
}

/* True when the item holds a byte other than zero (bounded by its size). */
static bool has_data(struct ar_ctx *c)
{
    for (uint64_t off = 0; off < c->in_size; off += AR_BLOCK) {
        size_t n = (size_t)MIN((uint64_t)AR_BLOCK, c->in_size - off);
        if (!read_at(c, c->buf, n, off))
            return true;
        for (size_t i = 0; i < n; i++)
            if (c->buf[i] != 0)
                return true;
    }
    return false;
}

/*
 * Opens the item and reads its first header, choosing between the
 * archive inside a compression filter and the bare decompressed stream
 * (see DESCRIPTION). On MGW_OK, *r and *e are the first header's
 * result and the format-specific checks have run.
 */
static enum mgw_status start(struct ar_ctx *c, int *r, struct archive_entry **e, bool *bare)
{
    int code = sniff_filter(c), nf, format;

    *bare = false;
    *r = open_archive(c, code, code == ARCHIVE_FILTER_NONE ? AR_ALL : AR_STREAM);
    if (*r < ARCHIVE_WARN)
        return failure(c, NULL, "not a readable archive");
    *r = archive_read_next_header(c->a, e);
    nf = archive_filter_count(c->a);
    format = archive_format(c->a) & ARCHIVE_FORMAT_BASE_MASK;
    if (nf < 2) {
        bool ok = *r == ARCHIVE_OK || *r == ARCHIVE_WARN;
        if (ok && format == ARCHIVE_FORMAT_RAW) {
            mgw_reason(c->w, "not an archive format this handler reads");
            return MGW_FAIL;
        }
        /* tar stops at a zero block: anything behind one is unread */
        if (*r == ARCHIVE_EOF && format == ARCHIVE_FORMAT_TAR && has_data(c)) {
            mgw_reason(c->w, "no member before the end of the tar archive, yet data follow");
            return MGW_FAIL;
        }
        if (format == ARCHIVE_FORMAT_ZIP)
            return zip_scan(c);
        if (format == ARCHIVE_FORMAT_RAR_V5)
            return rar5_scan(c);
        return MGW_OK;
    }
    if (format == ARCHIVE_FORMAT_TAR || format == ARCHIVE_FORMAT_CPIO) {
        if (*r == ARCHIVE_OK || *r == ARCHIVE_WARN)
            return MGW_OK;
        if (*r != ARCHIVE_EOF)
            return failure(c, NULL, "archive header unreadable");
    }
    /* a bare compressed file: its one layer is the member */
    *bare = true;
    if (format == ARCHIVE_FORMAT_RAW && (*r == ARCHIVE_OK || *r == ARCHIVE_WARN))
        return MGW_OK;
    code = archive_filter_code(c->a, nf - 2);
    close_archive(c);
    *r = open_archive(c, code, AR_RAW);
    if (*r < ARCHIVE_WARN)
        return failure(c, NULL, "compressed stream unreadable");
    *r = archive_read_next_header(c->a, e);
    return MGW_OK;
}

enum mgw_status mgw_archive(struct mgw *w)
{
    struct ar_ctx c;
    struct archive_entry *e = NULL;
    enum mgw_status st;
    char *bare = NULL;
    bool is_bare;
    int r;

    memset(&c, 0, sizeof c);
    c.w = w;
    c.in_size = mgw_input_size(w);
    c.max_members = mgw_option_u64(w, "max-members", 1000);
    c.max_total = mgw_option_u64(w, "max-total", (uint64_t)200 * 1024 * 1024);
    c.max_ratio = mgw_option_u64(w, "max-ratio", 100);
    c.inbuf = g_malloc(AR_BLOCK);
    c.buf = g_malloc(AR_BLOCK);
    c.mismatch = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
    c.zip_count = -1;
    /* names in UTF-8: libarchive converts to the locale's charset */
    setlocale(LC_CTYPE, "C.UTF-8");

    st = start(&c, &r, &e, &is_bare);
    if (st == MGW_OK && is_bare)
        bare = bare_name(mgw_option(w, "name"));
    while (st == MGW_OK && r != ARCHIVE_EOF) {
        if (r != ARCHIVE_OK && r != ARCHIVE_WARN) {
            st = failure(&c, NULL, "archive header unreadable");
            break;
        }
        if (++c.entries > c.max_members) {
            mgw_reason(w, "max-members: more than %" PRIu64 " members", c.max_members);
            st = MGW_LIMIT;
            break;
        }
        st = do_entry(&c, e, bare);
        if (st == MGW_OK)
            r = archive_read_next_header(c.a, &e);
    }
    /* libarchive may stop early on a damaged directory without an error */
    if (st == MGW_OK && c.zip_count >= 0 && (uint64_t)c.zip_count != c.entries) {
        mgw_reason(w, "the zip directory lists %" PRId64 " members, %" PRIu64 " were read",
                   c.zip_count, c.entries);
        st = MGW_FAIL;
    }
    if (c.a != NULL && c.opened)
        note_info(&c);
    close_archive(&c);
    g_hash_table_unref(c.mismatch);
    g_free(bare);
    g_free(c.inbuf);
    g_free(c.buf);
    return st;
}
