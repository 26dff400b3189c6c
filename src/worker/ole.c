/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * NAME
 *	ole 3
 * SUMMARY
 *	ole-text: the text of a Word, Excel or PowerPoint 97-2003 document
 * SYNOPSIS
 *	enum mgw_status mgw_ole_text(struct mgw *w);
 *
 *	mugaika-worker ole-text [max-text=16777216] [max-stream=67108864]
 *		[max-input=134217728] <item >records
 * DESCRIPTION
 *	The item is an OLE2 compound file (MS-CFB): a .doc/.dot, an .xls
 *	(BIFF8), a .ppt/.pps/.pot or another OLE2 file. The handler writes
 *	one output, the item's name with .txt (mgw_text_name), of type
 *	"text/plain; charset=utf-8": the
 *	words of the document and nothing else. Macros, embedded objects
 *	and field codes never reach the output; they are reported.
 *
 *	Container. The item is read into memory (max-input). The header
 *	must have the CFB signature, byte order FFFE, 512- or 4096-byte
 *	sectors and 64-byte mini sectors. The FAT sectors come from the
 *	header's 109 DIFAT slots and the DIFAT chain; the directory, the
 *	mini FAT and the mini stream (the root entry's stream) are read
 *	through the FAT. Every chain is followed with a per-chain stamp on
 *	each sector, so a sector seen twice (a cycle, or two chains
 *	crossing) ends the read; a sector number beyond the file, a count
 *	larger than the file or a chain shorter than its stream make the
 *	container malformed (MGW_FAIL, the reason names the part). The
 *	directory tree is walked from the root without recursion; every
 *	entry is visited at most once; 64 storage levels and 262144
 *	entries are the limits (MGW_LIMIT). A stream larger than
 *	max-stream ends in MGW_LIMIT. Names compare without ASCII case,
 *	as Windows does.
 *
 *	Detection. Storages "Macros", "_VBA_PROJECT_CUR", "VBA",
 *	"_VBA_PROJECT" and a "PROJECT" stream are a VBA project; Excel
 *	BOUNDSHEET records of type 1 (Excel 4 macro sheet) or a substream
 *	whose BOF says "macro sheet", and type 6 (VB module) are macros;
 *	PowerPoint's VbaInfoContainer too. "ObjectPool" children, "MBD*"
 *	storages, "\001Ole10Native" streams and PowerPoint's ExOleEmbed
 *	containers are embedded objects. Each is noted as "found"
 *	(macros also as "macros") and "removed".
 *
 *	Encryption (MGW_ENCRYPTED): "EncryptionInfo" with
 *	"EncryptedPackage" (an encrypted OOXML file), Word's FIB
 *	fEncrypted bit, Excel's FILEPASS record, PowerPoint's
 *	"EncryptedSummary" stream, CryptSession10Container record or the
 *	encrypted CurrentUser header token.
 *
 *	Word (nFib 193 and later): the FIB gives the table stream
 *	(0Table or 1Table) and the CLX in it; the piece table maps
 *	character positions to the WordDocument stream, 8-bit (CP1252)
 *	or UTF-16LE. All stories are written in order (main text,
 *	footnotes, headers, comments, text boxes). Paragraph, line,
 *	page and section marks become newlines, a cell mark a tab and a
 *	row mark a newline. The text between a field's begin (0x13) and
 *	separator (0x14) is the field code (HYPERLINK, DDEAUTO, ...): it
 *	is dropped, the result up to the end (0x15) is kept; 64 levels
 *	of fields are tracked, deeper ones are dropped whole. Earlier
 *	Word versions: MGW_FAIL "unsupported Word version".
 *
 *	Excel (BIFF8, and BIFF5 without the shared string table): the
 *	"Workbook" (or "Book") stream's globals give the sheet names
 *	(BOUNDSHEET), the code page and the shared strings (SST with its
 *	CONTINUE records: a string cut by a record boundary goes on with
 *	a new flags byte). Each worksheet is written as "== name ==" and
 *	its rows, the cells of a row tab-separated in the order stored:
 *	LABELSST, LABEL, RSTRING, NUMBER, RK, MULRK, BOOLERR and the
 *	cached result of FORMULA (with its STRING). Macro sheets, charts
 *	and modules are not written. Compressed BIFF8 strings are
 *	Latin-1 (their high bytes are zero); BIFF5 strings use the
 *	CODEPAGE (1252 by the table here, others through g_convert).
 *
 *	PowerPoint: the "PowerPoint Document" stream's records are walked
 *	as a tree (containers have recVer 0xF; 32 levels); each
 *	TextCharsAtom (UTF-16LE) and TextBytesAtom (Latin-1) gives a line,
 *	its paragraph marks newlines. The master and handout slides'
 *	placeholder text is skipped.
 *
 *	Text. UTF-16 is decoded here (an unpaired surrogate becomes
 *	U+FFFD); C0 controls other than tab and newline, DEL and C1
 *	controls are dropped.
 * LIMITS
 *	max-text (default 16 MiB) bytes of text, max-stream (64 MiB) per
 *	stream, max-input (128 MiB): MGW_LIMIT. 64 directory levels,
 *	262144 directory entries, 32 record levels, 64 field levels.
 *	Word pieces that together cover more bytes than the WordDocument
 *	stream holds (overlapping pieces, a way to multiply the work) end
 *	in MGW_LIMIT. Every other loop is linear in the stream it reads;
 *	16 objects or macros are noted one by one, the rest as a count.
 * DIAGNOSTICS
 *	MGW_FAIL with a reason for a malformed container, an OLE2 file that
 *	is none of the three, and unsupported versions. Notes: "found" and
 *	"macros" for what was detected, "removed" for what is not in the
 *	text, "defect" for recoverable damage, "converted" for the kind of
 *	document.
 */
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "worker/handlers.h"

#define OLE_MAGIC      "\xD0\xCF\x11\xE0\xA1\xB1\x1A\xE1"
#define OLE_END        0xFFFFFFFEu
#define OLE_NONE       0xFFFFFFFFu
#define OLE_MINI       64u
#define OLE_DIR_DEPTH  64u
#define OLE_DIR_MAX    262144u
#define OLE_NOTES_MAX  16u
#define PPT_DEPTH      32
#define WORD_FIELDS    64
#define WORD_KW        16
#define UNI_REPL       0xFFFDu
#define DEF_MAX_TEXT   (16u << 20)
#define DEF_MAX_STREAM (64u << 20)
#define DEF_MAX_INPUT  (128u << 20)

enum ent_type { E_EMPTY = 0, E_STORAGE = 1, E_STREAM = 2, E_ROOT = 5 };

struct ole_entry {
    char *name; /* UTF-8 */
    uint8_t type;
    uint32_t left, right, child;
    uint32_t start;
    uint64_t size;
    uint32_t parent; /* OLE_NONE: not reached from the root */
};

struct ole {
    struct mgw *w;
    const unsigned char *buf;
    size_t len;
    size_t ssz;     /* sector size */
    uint32_t nsect; /* sectors in the file */
    bool v3;        /* stream sizes are 32-bit */
    uint32_t *fat;
    uint32_t nfat;
    uint32_t *minifat;
    uint32_t nminifat;
    unsigned char *mini; /* the mini stream */
    size_t mini_len;
    uint32_t cutoff;
    struct ole_entry *ent;
    uint32_t nent;
    uint32_t *seen;      /* per sector: the stamp of the last chain through it */
    uint32_t *seen_mini; /* the same for mini sectors */
    uint32_t stamp;
    uint64_t max_stream;
    enum mgw_status st; /* why the last call failed */
};

/* The text being built. */
struct text {
    GString *s;
    uint64_t max;
    bool full;
};

/* Counts of what was found, for the notes. */
struct found {
    unsigned vba, xlm, modules, charts, objects, hidden, notes;
};

static uint16_t u16(const unsigned char *p)
{
    return (uint16_t)(p[0] | (p[1] << 8));
}

static uint32_t u32(const unsigned char *p)
{
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}

static bool fail(struct ole *o, enum mgw_status st, const char *fmt, ...) G_GNUC_PRINTF(3, 4);

static bool fail(struct ole *o, enum mgw_status st, const char *fmt, ...)
{
    va_list ap;
    char *s;

    va_start(ap, fmt);
    s = g_strdup_vprintf(fmt, ap);
    va_end(ap);
    mgw_reason(o->w, "%s", s);
    g_free(s);
    o->st = st;
    return false;
}

/* ---- text ---- */

static void put_uc(struct text *t, gunichar c)
{
    char u[8];
    int n;

    if (t->full)
        return;
    if ((c < 0x20 && c != '\t' && c != '\n') || (c >= 0x7f && c <= 0x9f))
        return;
    if (c > 0x10FFFF || (c >= 0xD800 && c <= 0xDFFF))
        c = UNI_REPL;
    n = g_unichar_to_utf8(c, u);
    if (t->s->len + (size_t)n > t->max) {
        t->full = true;
        return;
    }
    g_string_append_len(t->s, u, n);
}

static void put_str(struct text *t, const char *s)
{
    for (; *s != '\0'; s++)
        put_uc(t, (unsigned char)*s);
}

/* UTF-8 from g_convert (valid) or anything else: invalid bytes are U+FFFD */
static void put_utf8(struct text *t, const char *s, size_t len)
{
    const char *end = s + len;

    while (s < end && !t->full) {
        gunichar c = g_utf8_get_char_validated(s, end - s);
        if (c == (gunichar)-1 || c == (gunichar)-2) {
            put_uc(t, UNI_REPL);
            s++;
            continue;
        }
        put_uc(t, c);
        s = g_utf8_next_char(s);
    }
}

/* CP1252 0x80..0x9F; 0 for the five undefined bytes */
static const uint16_t cp1252_hi[32] = {
    0x20AC, 0,      0x201A, 0x0192, 0x201E, 0x2026, 0x2020, 0x2021, 0x02C6, 0x2030, 0x0160,
    0x2039, 0x0152, 0,      0x017D, 0,      0,      0x2018, 0x2019, 0x201C, 0x201D, 0x2022,
    0x2013, 0x2014, 0x02DC, 0x2122, 0x0161, 0x203A, 0x0153, 0,      0x017E, 0x0178,
};

static gunichar cp1252(unsigned char b)
{
    return b >= 0x80 && b <= 0x9f ? cp1252_hi[b - 0x80] : b;
}

/* One code point from UTF-16LE units at p (n units left); returns the
 * units used (1 or 2). */
static size_t utf16_next(const unsigned char *p, size_t n, gunichar *c)
{
    gunichar a = u16(p);

    if (a >= 0xD800 && a <= 0xDBFF && n >= 2) {
        gunichar b = u16(p + 2);
        if (b >= 0xDC00 && b <= 0xDFFF) {
            *c = 0x10000 + ((a - 0xD800) << 10) + (b - 0xDC00);
            return 2;
        }
    }
    *c = (a >= 0xD800 && a <= 0xDFFF) ? UNI_REPL : a;
    return 1;
}

/* A display form of an entry name for notes (controls as '?'). */
static char *show_name(const char *name)
{
    char *s = g_strdup(name);

    for (char *p = s; *p != '\0'; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7f)
            *p = '?';
    return s;
}

/* ---- the compound file ---- */

/* Reads size bytes along a chain; NULL (o->st, reason) on failure. */
static unsigned char *read_chain(struct ole *o, uint32_t start, uint64_t size, bool mini,
                                 const char *what)
{
    size_t ssz = mini ? OLE_MINI : o->ssz;
    const uint32_t *tab = mini ? o->minifat : o->fat;
    uint32_t ntab = mini ? o->nminifat : o->nfat;
    uint32_t nsec = mini ? (uint32_t)MIN(o->mini_len / OLE_MINI, (size_t)UINT32_MAX) : o->nsect;
    uint32_t *seen = mini ? o->seen_mini : o->seen;
    unsigned char *out;
    uint64_t got = 0;
    uint32_t s = start;

    if (size > o->max_stream) {
        fail(o, MGW_LIMIT, "%s: stream of %" G_GUINT64_FORMAT " bytes is larger than max-stream",
             what, size);
        return NULL;
    }
    if (size > o->len) {
        fail(o, MGW_FAIL, "%s: stream size %" G_GUINT64_FORMAT " larger than the file", what, size);
        return NULL;
    }
    out = g_malloc((size_t)size + 1);
    o->stamp++;
    while (got < size) {
        size_t n = (size_t)MIN((uint64_t)ssz, size - got);
        if (s >= nsec) {
            fail(o, MGW_FAIL, "%s: %s chain %s at sector 0x%X", what, mini ? "mini" : "sector",
                 s == OLE_END ? "ends early" : "points beyond the end of the file", s);
            g_free(out);
            return NULL;
        }
        if (seen[s] == o->stamp) {
            fail(o, MGW_FAIL, "%s: %s chain loops at sector %u", what, mini ? "mini" : "sector", s);
            g_free(out);
            return NULL;
        }
        seen[s] = o->stamp;
        if (mini) {
            memcpy(out + got, o->mini + (size_t)s * OLE_MINI, n);
        } else {
            size_t off = ((size_t)s + 1) * o->ssz, have = off < o->len ? o->len - off : 0;
            memcpy(out + got, o->buf + off, MIN(n, have));
            if (have < n)
                memset(out + got + have, 0, n - have);
        }
        got += n;
        s = s < ntab ? tab[s] : OLE_END;
    }
    return out;
}

/* The sectors of a chain of unknown length (the directory). */
static unsigned char *read_chain_all(struct ole *o, uint32_t start, size_t *len, const char *what)
{
    uint32_t n = 0, s = start;

    o->stamp++;
    while (s != OLE_END) {
        if (s >= o->nsect) {
            fail(o, MGW_FAIL, "%s: sector chain points beyond the file (0x%X)", what, s);
            return NULL;
        }
        if (o->seen[s] == o->stamp) {
            fail(o, MGW_FAIL, "%s: sector chain loops at sector %u", what, s);
            return NULL;
        }
        o->seen[s] = o->stamp;
        n++;
        s = s < o->nfat ? o->fat[s] : OLE_END;
    }
    *len = (size_t)n * o->ssz;
    return read_chain(o, start, *len, false, what);
}

static bool load_fat(struct ole *o)
{
    const unsigned char *h = o->buf;
    uint32_t nfs = u32(h + 0x2C), difat = u32(h + 0x44), ndif = u32(h + 0x48);
    uint32_t per = (uint32_t)(o->ssz / 4), got = 0;
    uint32_t *fs;

    if (nfs > o->nsect)
        return fail(o, MGW_FAIL, "FAT sector count %u larger than the file (%u sectors)", nfs,
                    o->nsect);
    if (ndif > o->nsect)
        return fail(o, MGW_FAIL, "DIFAT sector count %u larger than the file", ndif);
    fs = g_new(uint32_t, nfs + 1);
    for (uint32_t i = 0; i < 109 && got < nfs; i++)
        fs[got++] = u32(h + 0x4C + 4 * i);
    o->stamp++;
    for (uint32_t d = 0; got < nfs; d++) {
        const unsigned char *p;
        if (d >= ndif || difat >= o->nsect || o->seen[difat] == o->stamp ||
            ((size_t)difat + 2) * o->ssz > o->len) {
            g_free(fs);
            return fail(o, MGW_FAIL, "DIFAT chain broken after %u sectors (FAT %u of %u)", d, got,
                        nfs);
        }
        o->seen[difat] = o->stamp;
        p = o->buf + ((size_t)difat + 1) * o->ssz;
        for (uint32_t i = 0; i + 1 < per && got < nfs; i++)
            fs[got++] = u32(p + 4 * i);
        difat = u32(p + 4 * (per - 1));
    }
    if ((uint64_t)nfs * per > UINT32_MAX - 1) {
        g_free(fs);
        return fail(o, MGW_LIMIT, "FAT of %u sectors too large", nfs);
    }
    o->nfat = nfs * per;
    o->fat = g_new(uint32_t, (size_t)o->nfat + 1);
    for (uint32_t i = 0; i < nfs; i++) {
        size_t off = ((size_t)fs[i] + 1) * o->ssz;
        if (fs[i] >= o->nsect || off + o->ssz > o->len) {
            uint32_t bad = fs[i];
            g_free(fs);
            return fail(o, MGW_FAIL, "FAT sector %u (0x%X) beyond the end of the file", i, bad);
        }
        for (uint32_t k = 0; k < per; k++)
            o->fat[(size_t)i * per + k] = u32(o->buf + off + 4 * k);
    }
    g_free(fs);
    return true;
}

static bool load_dir(struct ole *o)
{
    size_t len;
    unsigned char *d = read_chain_all(o, u32(o->buf + 0x30), &len, "directory");
    uint32_t *stack;
    size_t sp = 0;
    bool loops = false;

    if (d == NULL)
        return false;
    if (len / 128 > OLE_DIR_MAX) {
        g_free(d);
        return fail(o, MGW_LIMIT, "more than %u directory entries", OLE_DIR_MAX);
    }
    o->nent = (uint32_t)(len / 128);
    if (o->nent == 0) {
        g_free(d);
        return fail(o, MGW_FAIL, "empty directory");
    }
    o->ent = g_new0(struct ole_entry, o->nent);
    for (uint32_t i = 0; i < o->nent; i++) {
        const unsigned char *p = d + (size_t)i * 128;
        struct ole_entry *e = &o->ent[i];
        unsigned nl = u16(p + 0x40);
        GString *name = g_string_new(NULL);
        size_t units = nl >= 2 && nl <= 64 ? nl / 2 - 1 : 0;
        for (size_t k = 0; k < units;) {
            gunichar c;
            k += utf16_next(p + 2 * k, units - k, &c);
            g_string_append_unichar(name, c);
        }
        e->name = g_string_free(name, FALSE);
        e->type = p[0x42];
        e->left = u32(p + 0x44);
        e->right = u32(p + 0x48);
        e->child = u32(p + 0x4C);
        e->start = u32(p + 0x74);
        e->size = o->v3 ? u32(p + 0x78) : (u32(p + 0x78) | ((uint64_t)u32(p + 0x7C) << 32));
        e->parent = OLE_NONE;
    }
    g_free(d);
    if (o->ent[0].type != E_ROOT)
        return fail(o, MGW_FAIL, "directory entry 0 is not the root storage");
    /* the tree: entries on the stack carry their parent in the high
     * word of a pair (idx, parent) and the depth in a third slot */
    stack = g_new(uint32_t, 3 * ((size_t)o->nent * 3 + 2));
    o->ent[0].parent = 0;
    stack[sp++] = o->ent[0].child;
    stack[sp++] = 0;
    stack[sp++] = 1;
    while (sp > 0) {
        uint32_t depth = stack[--sp], parent = stack[--sp], i = stack[--sp];
        struct ole_entry *e;
        if (i == OLE_NONE)
            continue;
        if (i >= o->nent || i == 0 || o->ent[i].parent != OLE_NONE) {
            loops = true;
            continue;
        }
        e = &o->ent[i];
        if (e->type != E_STORAGE && e->type != E_STREAM) {
            loops = true;
            continue;
        }
        e->parent = parent;
        stack[sp++] = e->left;
        stack[sp++] = parent;
        stack[sp++] = depth;
        stack[sp++] = e->right;
        stack[sp++] = parent;
        stack[sp++] = depth;
        if (e->type == E_STORAGE && e->child != OLE_NONE) {
            if (depth + 1 > OLE_DIR_DEPTH) {
                g_free(stack);
                return fail(o, MGW_LIMIT, "storages nested deeper than %u levels", OLE_DIR_DEPTH);
            }
            stack[sp++] = e->child;
            stack[sp++] = i;
            stack[sp++] = depth + 1;
        }
    }
    g_free(stack);
    if (loops)
        mgw_note(o->w, "defect", "directory tree has bad or repeated links (ignored)");
    return true;
}

static bool ole_open(struct ole *o)
{
    const unsigned char *h = o->buf;
    unsigned shift;
    uint32_t mfstart, nmf;
    struct ole_entry *root;

    if (o->len < 512 || memcmp(h, OLE_MAGIC, 8) != 0)
        return fail(o, MGW_FAIL, "not an OLE2 compound file (signature)");
    shift = u16(h + 0x1E);
    if (u16(h + 0x1C) != 0xFFFE || (shift != 9 && shift != 12) || u16(h + 0x20) != 6)
        return fail(o, MGW_FAIL, "bad compound file header (byte order, sector sizes)");
    o->ssz = (size_t)1 << shift;
    o->v3 = shift == 9;
    if (o->len < o->ssz)
        return fail(o, MGW_FAIL, "truncated compound file header");
    o->nsect = (uint32_t)MIN((o->len - o->ssz + o->ssz - 1) / o->ssz, (size_t)0xFFFFFFF0u);
    o->seen = g_new0(uint32_t, (size_t)o->nsect + 1);
    o->cutoff = u32(h + 0x38);
    if (!load_fat(o) || !load_dir(o))
        return false;
    root = &o->ent[0];
    mfstart = u32(h + 0x3C);
    nmf = u32(h + 0x40);
    if (nmf > o->nsect)
        return fail(o, MGW_FAIL, "mini FAT sector count %u larger than the file", nmf);
    if ((uint64_t)nmf * (o->ssz / 4) > UINT32_MAX - 1)
        return fail(o, MGW_LIMIT, "mini FAT of %u sectors too large", nmf);
    if (nmf > 0 && mfstart != OLE_END) {
        unsigned char *m = read_chain(o, mfstart, (uint64_t)nmf * o->ssz, false, "mini FAT");
        if (m == NULL)
            return false;
        o->nminifat = (uint32_t)(nmf * (o->ssz / 4));
        o->minifat = g_new(uint32_t, (size_t)o->nminifat + 1);
        for (uint32_t i = 0; i < o->nminifat; i++)
            o->minifat[i] = u32(m + 4 * (size_t)i);
        g_free(m);
    }
    if (root->size > 0 && root->start != OLE_END) {
        o->mini = read_chain(o, root->start, root->size, false, "mini stream");
        if (o->mini == NULL)
            return false;
        o->mini_len = (size_t)root->size;
    }
    o->seen_mini = g_new0(uint32_t, o->mini_len / OLE_MINI + 1);
    return true;
}

static void ole_close(struct ole *o)
{
    for (uint32_t i = 0; i < o->nent; i++)
        g_free(o->ent[i].name);
    g_free(o->ent);
    g_free(o->fat);
    g_free(o->minifat);
    g_free(o->mini);
    g_free(o->seen);
    g_free(o->seen_mini);
}

/* The reached entry named name (ASCII case ignored) under parent. */
static uint32_t find_entry(const struct ole *o, uint32_t parent, const char *name, int type)
{
    for (uint32_t i = 1; i < o->nent; i++)
        if (o->ent[i].parent == parent && o->ent[i].type == type &&
            g_ascii_strcasecmp(o->ent[i].name, name) == 0)
            return i;
    return OLE_NONE;
}

static unsigned char *read_stream(struct ole *o, uint32_t i, size_t *len)
{
    const struct ole_entry *e = &o->ent[i];
    bool mini = e->size < o->cutoff;
    unsigned char *b;
    char *what = show_name(e->name);

    *len = 0;
    if (mini && o->mini == NULL && e->size > 0) {
        fail(o, MGW_FAIL, "stream '%s' is in a mini stream that does not exist", what);
        g_free(what);
        return NULL;
    }
    b = read_chain(o, e->start, e->size, mini, what);
    g_free(what);
    if (b != NULL)
        *len = (size_t)e->size;
    return b;
}

/* ---- detection over the directory ---- */

static bool is_vba_name(const char *n)
{
    return g_ascii_strcasecmp(n, "Macros") == 0 || g_ascii_strcasecmp(n, "_VBA_PROJECT_CUR") == 0 ||
           g_ascii_strcasecmp(n, "VBA") == 0 || g_ascii_strcasecmp(n, "_VBA_PROJECT") == 0;
}

static void note_found(struct mgw *w, struct found *f, bool macro, const char *fmt, ...)
    G_GNUC_PRINTF(4, 5);

static void note_found(struct mgw *w, struct found *f, bool macro, const char *fmt, ...)
{
    va_list ap;
    char *s;

    if (f->notes++ >= OLE_NOTES_MAX)
        return;
    va_start(ap, fmt);
    s = g_strdup_vprintf(fmt, ap);
    va_end(ap);
    mgw_note(w, "found", "%s", s);
    if (macro)
        mgw_note(w, "macros", "%s", s);
    mgw_note(w, "removed", "%s (not in the text)", s);
    g_free(s);
}

static void scan_dir(struct ole *o, struct found *f)
{
    /* per storage: one of its children is a VBA storage */
    bool *has_vba = g_new0(bool, o->nent);

    for (uint32_t i = 1; i < o->nent; i++)
        if (o->ent[i].parent != OLE_NONE && o->ent[i].type == E_STORAGE &&
            is_vba_name(o->ent[i].name))
            has_vba[o->ent[i].parent] = true;
    for (uint32_t i = 1; i < o->nent; i++) {
        const struct ole_entry *e = &o->ent[i];
        const struct ole_entry *p, *pp;
        char *n;
        if (e->parent == OLE_NONE)
            continue;
        p = &o->ent[e->parent];
        pp = &o->ent[p->parent];
        n = show_name(e->name);
        if (e->type == E_STORAGE && is_vba_name(e->name) && !is_vba_name(p->name)) {
            /* the outermost storage of a VBA project */
            f->vba++;
            note_found(o->w, f, true, "VBA macro project (storage '%s')", n);
        } else if (e->type == E_STREAM && g_ascii_strcasecmp(e->name, "PROJECT") == 0 &&
                   !is_vba_name(p->name) && !has_vba[e->parent]) {
            f->vba++;
            note_found(o->w, f, true, "VBA macro project (stream '%s')", n);
        } else if (e->type == E_STORAGE && g_ascii_strcasecmp(p->name, "ObjectPool") == 0) {
            f->objects++;
            note_found(o->w, f, false, "embedded OLE object (ObjectPool/%s)", n);
        } else if (e->type == E_STORAGE && g_ascii_strncasecmp(e->name, "MBD", 3) == 0) {
            f->objects++;
            note_found(o->w, f, false, "embedded OLE object (storage '%s')", n);
        } else if (e->type == E_STREAM && g_ascii_strcasecmp(e->name, "\001Ole10Native") == 0 &&
                   g_ascii_strcasecmp(pp->name, "ObjectPool") != 0 &&
                   g_ascii_strncasecmp(p->name, "MBD", 3) != 0) {
            /* one not already counted with its storage */
            f->objects++;
            note_found(o->w, f, false, "embedded OLE package (stream '%s')", n);
        }
        g_free(n);
    }
    g_free(has_vba);
}

/* ---- Word ---- */

struct word {
    struct text *t;
    uint8_t instr[WORD_FIELDS];  /* per open field: 1 while in its code */
    uint8_t kwdone[WORD_FIELDS]; /* its first word is complete */
    char kw[WORD_FIELDS][WORD_KW];
    unsigned depth, over, ninstr;
    unsigned fields, dde, include;
    bool cell; /* a cell mark is waiting for its tab */
};

static void field_code_end(struct word *wd, unsigned level)
{
    const char *k = wd->kw[level];

    if (g_ascii_strcasecmp(k, "DDE") == 0 || g_ascii_strcasecmp(k, "DDEAUTO") == 0)
        wd->dde++;
    else if (g_ascii_strncasecmp(k, "INCLUDE", 7) == 0 || g_ascii_strcasecmp(k, "IMPORT") == 0)
        wd->include++;
}

static void word_char(struct word *wd, gunichar c)
{
    if (c == 0x13) {
        wd->fields++;
        if (wd->over > 0 || wd->depth >= WORD_FIELDS) {
            wd->over++;
            return;
        }
        wd->instr[wd->depth] = 1;
        wd->kw[wd->depth][0] = '\0';
        wd->kwdone[wd->depth] = 0;
        wd->depth++;
        wd->ninstr++;
        return;
    }
    if (c == 0x14) {
        if (wd->over == 0 && wd->depth > 0 && wd->instr[wd->depth - 1]) {
            wd->instr[wd->depth - 1] = 0;
            wd->ninstr--;
            field_code_end(wd, wd->depth - 1);
        }
        return;
    }
    if (c == 0x15) {
        if (wd->over > 0) {
            wd->over--;
        } else if (wd->depth > 0) {
            wd->depth--;
            if (wd->instr[wd->depth]) {
                wd->ninstr--;
                field_code_end(wd, wd->depth);
            }
        }
        return;
    }
    if (wd->over > 0)
        return;
    if (wd->ninstr > 0) {
        /* inside a field code: keep its first word for the notes */
        unsigned l = wd->depth - 1;
        if (wd->instr[l] && !wd->kwdone[l]) {
            char *k = wd->kw[l];
            size_t n = strlen(k);
            if (c < 0x80 && g_ascii_isalpha((int)c) && n + 1 < WORD_KW) {
                k[n] = (char)c;
                k[n + 1] = '\0';
            } else if (n > 0 || (c != ' ' && c != '\t')) {
                wd->kwdone[l] = 1;
            }
        }
        return;
    }
    if (wd->cell && c != 0x07) {
        put_uc(wd->t, '\t');
        wd->cell = false;
    }
    switch (c) {
    case 0x07:
        /* a cell mark right after a cell mark ends the row: the tab
         * of the first waits for what follows */
        if (wd->cell) {
            put_uc(wd->t, '\n');
            wd->cell = false;
        } else {
            wd->cell = true;
        }
        return;
    case 0x0B:
    case 0x0C:
    case 0x0D:
        put_uc(wd->t, '\n');
        break;
    case 0x1E:
        put_uc(wd->t, '-');
        break;
    default:
        put_uc(wd->t, c);
        break;
    }
}

static enum mgw_status word_text(struct ole *o, uint32_t wdi, struct text *t)
{
    size_t wlen, tlen = 0;
    unsigned char *wdoc = read_stream(o, wdi, &wlen), *tab = NULL;
    unsigned flags, nfib, csw, cslw, cbfc;
    size_t off, fclcb, clx, lcb, i;
    uint64_t work;
    bool defect = false; /* noted once */
    uint32_t ti, n, fc, fclen;
    struct word wd;
    enum mgw_status st = MGW_OK;
    const char *tname;

    if (wdoc == NULL)
        return o->st;
    memset(&wd, 0, sizeof wd);
    wd.t = t;
    if (wlen < 34 || u16(wdoc) != 0xA5EC) {
        fail(o, MGW_FAIL, "WordDocument stream has no Word FIB");
        goto out_fail;
    }
    nfib = u16(wdoc + 2);
    flags = u16(wdoc + 0x0A);
    if (flags & 0x0100) {
        fail(o, MGW_ENCRYPTED, "Word document is %s",
             (flags & 0x8000) ? "obfuscated (XOR)" : "encrypted");
        goto out_fail;
    }
    if (nfib < 0xC1) {
        fail(o, MGW_FAIL, "unsupported Word version (nFib %u, before Word 97)", nfib);
        goto out_fail;
    }
    csw = u16(wdoc + 32);
    off = 34 + (size_t)csw * 2;
    if (off + 2 > wlen)
        goto bad_fib;
    cslw = u16(wdoc + off);
    off += 2 + (size_t)cslw * 4;
    if (off + 2 > wlen)
        goto bad_fib;
    cbfc = u16(wdoc + off);
    fclcb = off + 2;
    if (cbfc < 34 || fclcb + 34 * 8 > wlen)
        goto bad_fib;
    fc = u32(wdoc + fclcb + 33 * 8);
    fclen = u32(wdoc + fclcb + 33 * 8 + 4);
    tname = (flags & 0x0200) ? "1Table" : "0Table";
    ti = find_entry(o, 0, tname, E_STREAM);
    if (ti == OLE_NONE) {
        fail(o, MGW_FAIL, "Word document without its %s stream", tname);
        goto out_fail;
    }
    tab = read_stream(o, ti, &tlen);
    if (tab == NULL) {
        st = o->st;
        goto out;
    }
    if ((uint64_t)fc + fclen > tlen || fclen == 0) {
        fail(o, MGW_FAIL, "Word piece table (CLX) outside the %s stream", tname);
        goto out_fail;
    }
    /* CLX: Prc* then one Pcdt */
    clx = fc;
    lcb = 0;
    for (i = clx; i < (size_t)fc + fclen;) {
        if (tab[i] == 0x01 && i + 3 <= (size_t)fc + fclen) {
            i += 3 + u16(tab + i + 1);
        } else if (tab[i] == 0x02 && i + 5 <= (size_t)fc + fclen) {
            lcb = u32(tab + i + 1);
            clx = i + 5;
            break;
        } else {
            break;
        }
    }
    if (lcb < 4 || clx + lcb > (size_t)fc + fclen || (lcb - 4) % 12 != 0) {
        fail(o, MGW_FAIL, "Word piece table (PlcPcd) malformed");
        goto out_fail;
    }
    n = (uint32_t)((lcb - 4) / 12);
    work = 0;
    for (uint32_t k = 0; k < n && !t->full; k++) {
        uint32_t cp0 = u32(tab + clx + 4 * (size_t)k), cp1 = u32(tab + clx + 4 * ((size_t)k + 1));
        const unsigned char *pcd = tab + clx + 4 * ((size_t)n + 1) + 8 * (size_t)k;
        uint32_t pfc = u32(pcd + 2), cnt;
        bool comp = (pfc & 0x40000000u) != 0;
        size_t start, bytes;
        if (cp1 <= cp0) {
            if (cp1 < cp0 && !defect)
                mgw_note(o->w, "defect", "Word piece %u has a negative length (skipped)", k);
            defect = defect || cp1 < cp0;
            continue;
        }
        cnt = cp1 - cp0;
        pfc &= 0x3FFFFFFFu;
        start = comp ? pfc / 2 : pfc;
        bytes = comp ? cnt : (size_t)cnt * 2;
        if (start > wlen || bytes > wlen - start) {
            if (!defect)
                mgw_note(o->w, "defect", "Word piece %u beyond the WordDocument stream (cut)", k);
            defect = true;
            bytes = start > wlen ? 0 : wlen - start;
        }
        /* pieces of a real document do not overlap: together they are
         * never longer than the stream */
        work += bytes;
        if (work > (uint64_t)wlen + 4096) {
            fail(o, MGW_LIMIT, "Word pieces overlap (more text than the WordDocument stream)");
            goto out_fail;
        }
        if (comp) {
            for (size_t j = 0; j < bytes && !t->full; j++)
                word_char(&wd, cp1252(wdoc[start + j]));
        } else {
            size_t units = bytes / 2;
            for (size_t j = 0; j < units && !t->full;) {
                gunichar c;
                j += utf16_next(wdoc + start + 2 * j, units - j, &c);
                word_char(&wd, c);
            }
        }
    }
    if (wd.fields > 0)
        mgw_note(o->w, "removed", "%u field code%s (the field results are kept)", wd.fields,
                 wd.fields == 1 ? "" : "s");
    if (wd.dde > 0) {
        mgw_note(o->w, "found", "%u DDE field%s (DDE/DDEAUTO)", wd.dde, wd.dde == 1 ? "" : "s");
    }
    if (wd.include > 0)
        mgw_note(o->w, "found", "%u INCLUDE/IMPORT field%s", wd.include,
                 wd.include == 1 ? "" : "s");
    mgw_note(o->w, "converted", "Word 97-2003 document to plain text");
    goto out;
bad_fib:
    fail(o, MGW_FAIL, "Word FIB truncated");
out_fail:
    st = o->st;
out:
    g_free(wdoc);
    g_free(tab);
    return st;
}

/* ---- Excel ---- */

#define XL_BOF        0x0809
#define XL_EOF        0x000A
#define XL_BOUNDSHEET 0x0085
#define XL_FILEPASS   0x002F
#define XL_CODEPAGE   0x0042
#define XL_SST        0x00FC
#define XL_CONTINUE   0x003C
#define XL_LABELSST   0x00FD
#define XL_LABEL      0x0204
#define XL_RSTRING    0x00D6
#define XL_NUMBER     0x0203
#define XL_RK         0x027E
#define XL_MULRK      0x00BD
#define XL_FORMULA    0x0006
#define XL_STRING     0x0207
#define XL_BOOLERR    0x0205

struct sheet {
    uint32_t pos; /* of its BOF in the stream */
    uint8_t type, state;
    char *name;
};

struct xl {
    struct ole *o;
    struct text *t;
    const unsigned char *b;
    size_t len;
    bool biff8;
    unsigned cp;
    GPtrArray *sst;   /* char * */
    GArray *sheets;   /* struct sheet */
    int64_t row;      /* of the last cell written, -1 before the first */
    bool want_string; /* a FORMULA's string result follows */
    unsigned str_row; /* that FORMULA's row */
};

/* Bytes in the workbook's code page (BIFF5) to the text, or as
 * Latin-1 (BIFF8 compressed strings) into a GString. */
static void xl_bytes(struct xl *x, GString *out, const unsigned char *p, size_t n, bool latin1)
{
    if (latin1) {
        for (size_t i = 0; i < n; i++)
            g_string_append_unichar(out, p[i]);
    } else if (x->cp == 0 || x->cp == 1252 || x->cp == 367 || x->cp == 1200) {
        for (size_t i = 0; i < n; i++) {
            gunichar c = cp1252(p[i]);
            g_string_append_unichar(out, c != 0 ? c : UNI_REPL);
        }
    } else {
        char cs[24];
        char *u;
        gsize got = 0;
        if (x->cp == 10000 || x->cp == 0x8000)
            g_strlcpy(cs, "MACINTOSH", sizeof cs);
        else
            g_snprintf(cs, sizeof cs, "CP%u", x->cp);
        u = g_convert_with_fallback((const char *)p, (gssize)n, "UTF-8", cs, "?", NULL, &got, NULL);
        if (u != NULL) {
            g_string_append_len(out, u, (gssize)got);
            g_free(u);
        } else {
            for (size_t i = 0; i < n; i++)
                g_string_append_unichar(out, p[i] < 0x80 ? p[i] : UNI_REPL);
        }
    }
}

static void utf16_append(GString *out, const unsigned char *p, size_t units)
{
    for (size_t j = 0; j < units;) {
        gunichar c;
        j += utf16_next(p + 2 * j, units - j, &c);
        g_string_append_unichar(out, c);
    }
}

/* An XLUnicodeString (cch 2 or 1 byte, flags) or a BIFF5 byte string
 * at p (n bytes) into a new string; NULL when it does not fit. */
static char *xl_string(struct xl *x, const unsigned char *p, size_t n, bool short_cch)
{
    size_t cch, hdr = short_cch ? 1 : 2;
    GString *s;

    if (n < hdr)
        return NULL;
    cch = short_cch ? p[0] : u16(p);
    s = g_string_new(NULL);
    if (!x->biff8) {
        xl_bytes(x, s, p + hdr, MIN(cch, n - hdr), false);
    } else {
        unsigned fl;
        size_t pos = hdr + 1;
        if (n < hdr + 1) {
            g_string_free(s, TRUE);
            return NULL;
        }
        fl = p[hdr];
        if (fl & 0x08)
            pos += 2; /* cRun */
        if (fl & 0x04)
            pos += 4; /* cbExtRst */
        if (pos > n) {
            g_string_free(s, TRUE);
            return NULL;
        }
        if (fl & 0x01)
            utf16_append(s, p + pos, MIN(cch, (n - pos) / 2));
        else
            xl_bytes(x, s, p + pos, MIN(cch, n - pos), true);
    }
    return g_string_free(s, FALSE);
}

/* The SST record and its CONTINUE records, read as one sequence in
 * which a string's characters restart with a flags byte at each
 * record boundary. */
struct sst_reader {
    const unsigned char *b; /* the stream */
    size_t len;
    size_t seg, seg_end; /* current record's data [seg, seg_end) */
    size_t next;         /* the next record header */
};

static bool sst_next_seg(struct sst_reader *r)
{
    if (r->next + 4 > r->len || u16(r->b + r->next) != XL_CONTINUE)
        return false;
    r->seg = r->next + 4;
    r->seg_end = r->seg + u16(r->b + r->next + 2);
    if (r->seg_end > r->len)
        r->seg_end = r->len;
    r->next = r->seg_end;
    return true;
}

/* n bytes at the read position, crossing record boundaries */
static bool sst_bytes(struct sst_reader *r, unsigned char *out, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        while (r->seg >= r->seg_end)
            if (!sst_next_seg(r))
                return false;
        if (out != NULL)
            out[i] = r->b[r->seg];
        r->seg++;
    }
    return true;
}

static bool sst_skip(struct sst_reader *r, uint64_t n)
{
    while (n > 0) {
        size_t k;
        while (r->seg >= r->seg_end)
            if (!sst_next_seg(r))
                return false;
        k = (size_t)MIN(n, (uint64_t)(r->seg_end - r->seg));
        r->seg += k;
        n -= k;
    }
    return true;
}

static char *sst_string(struct sst_reader *r)
{
    unsigned char h[3], x[4];
    unsigned cch, fl, runs = 0;
    uint32_t ext = 0;
    GString *s;
    size_t done = 0;

    if (!sst_bytes(r, h, 3))
        return NULL;
    cch = u16(h);
    fl = h[2];
    if (fl & 0x08) {
        if (!sst_bytes(r, x, 2))
            return NULL;
        runs = u16(x);
    }
    if (fl & 0x04) {
        if (!sst_bytes(r, x, 4))
            return NULL;
        ext = u32(x);
    }
    s = g_string_new(NULL);
    while (done < cch) {
        size_t avail, k;
        if (r->seg >= r->seg_end) {
            /* the characters go on in a CONTINUE, after a new flags byte */
            if (!sst_next_seg(r) || r->seg >= r->seg_end) {
                g_string_free(s, TRUE);
                return NULL;
            }
            fl = (fl & ~0x01u) | (r->b[r->seg++] & 0x01u);
            continue;
        }
        avail = r->seg_end - r->seg;
        if (fl & 0x01) {
            k = MIN(avail / 2, cch - done);
            if (k == 0) {
                r->seg = r->seg_end; /* an odd byte left: skipped */
                continue;
            }
            utf16_append(s, r->b + r->seg, k);
            r->seg += 2 * k;
        } else {
            k = MIN(avail, cch - done);
            for (size_t i = 0; i < k; i++)
                g_string_append_unichar(s, r->b[r->seg + i]);
            r->seg += k;
        }
        done += k;
    }
    if (!sst_skip(r, 4 * (uint64_t)runs + ext)) {
        g_string_free(s, TRUE);
        return NULL;
    }
    return g_string_free(s, FALSE);
}

static void xl_sst(struct xl *x, size_t data, size_t rlen)
{
    struct sst_reader r;
    uint32_t total;

    if (rlen < 8)
        return;
    r.b = x->b;
    r.len = x->len;
    r.seg = data + 8;
    r.seg_end = data + rlen;
    r.next = data + rlen;
    total = u32(x->b + data + 4);
    for (uint32_t i = 0; i < total; i++) {
        char *s = sst_string(&r);
        if (s == NULL) {
            mgw_note(x->o->w, "defect", "shared string table cut after %u of %u strings", i, total);
            break;
        }
        g_ptr_array_add(x->sst, s);
    }
}

static void xl_cell(struct xl *x, unsigned row, const char *s)
{
    if (x->row >= 0)
        put_uc(x->t, x->row == (int64_t)row ? '\t' : '\n');
    x->row = row;
    put_utf8(x->t, s, strlen(s));
}

static void xl_num(struct xl *x, unsigned row, double v)
{
    char buf[G_ASCII_DTOSTR_BUF_SIZE];

    if (isnan(v) || isinf(v))
        g_strlcpy(buf, "#NUM!", sizeof buf);
    else
        g_ascii_formatd(buf, sizeof buf, "%.15g", v);
    xl_cell(x, row, buf);
}

static double rk_value(uint32_t rk)
{
    double v;

    if (rk & 0x02) {
        v = (double)((int32_t)rk >> 2);
    } else {
        uint64_t bits = (uint64_t)(rk & 0xFFFFFFFCu) << 32;
        memcpy(&v, &bits, sizeof v);
    }
    return (rk & 0x01) ? v / 100 : v;
}

static double f64(const unsigned char *p)
{
    uint64_t bits = (uint64_t)u32(p) | ((uint64_t)u32(p + 4) << 32);
    double v;

    memcpy(&v, &bits, sizeof v);
    return v;
}

/* One record of a worksheet substream. */
static void xl_sheet_record(struct xl *x, unsigned type, const unsigned char *d, size_t n)
{
    char *s;

    if (type != XL_STRING)
        x->want_string = false;
    switch (type) {
    case XL_LABELSST:
        if (n >= 10) {
            uint32_t k = u32(d + 6);
            if (k < x->sst->len)
                xl_cell(x, u16(d), g_ptr_array_index(x->sst, k));
        }
        break;
    case XL_LABEL:
    case XL_RSTRING:
        if (n >= 8 && (s = xl_string(x, d + 6, n - 6, false)) != NULL) {
            xl_cell(x, u16(d), s);
            g_free(s);
        }
        break;
    case XL_NUMBER:
        if (n >= 14)
            xl_num(x, u16(d), f64(d + 6));
        break;
    case XL_RK:
        if (n >= 10)
            xl_num(x, u16(d), rk_value(u32(d + 6)));
        break;
    case XL_MULRK:
        if (n >= 6)
            for (size_t p = 4; p + 6 <= n - 2; p += 6)
                xl_num(x, u16(d), rk_value(u32(d + p + 2)));
        break;
    case XL_BOOLERR:
        if (n >= 8 && d[7] == 0)
            xl_cell(x, u16(d), d[6] ? "TRUE" : "FALSE");
        break;
    case XL_FORMULA:
        if (n >= 14) {
            if (u16(d + 12) != 0xFFFF) {
                xl_num(x, u16(d), f64(d + 6));
            } else if (d[6] == 0) {
                x->want_string = true; /* the STRING record follows */
                x->str_row = u16(d);
            } else if (d[6] == 1) {
                xl_cell(x, u16(d), d[8] ? "TRUE" : "FALSE");
            }
        }
        break;
    case XL_STRING:
        if (x->want_string && (s = xl_string(x, d, n, false)) != NULL) {
            xl_cell(x, x->str_row, s);
            g_free(s);
        }
        x->want_string = false;
        break;
    default:
        break;
    }
}

static const char *sheet_kind(unsigned type)
{
    switch (type) {
    case 1:
        return "Excel 4 macro sheet";
    case 2:
        return "chart sheet";
    case 6:
        return "VB module sheet";
    default:
        return "sheet";
    }
}

static enum mgw_status xl_text(struct ole *o, uint32_t bi, struct text *t, struct found *f)
{
    struct xl x;
    size_t pos, first_eof = 0;
    unsigned depth = 0;
    enum mgw_status st = MGW_OK;
    unsigned char *b;
    bool in_sheet = false, globals_done = false;
    unsigned nsheet = 0;
    GHashTable *bypos = g_hash_table_new(g_direct_hash, g_direct_equal);

    memset(&x, 0, sizeof x);
    x.o = o;
    x.t = t;
    b = read_stream(o, bi, &x.len);
    if (b == NULL)
        return o->st;
    x.b = b;
    x.cp = 1252;
    x.row = -1;
    x.sst = g_ptr_array_new_with_free_func(g_free);
    x.sheets = g_array_new(FALSE, TRUE, sizeof(struct sheet));
    if (x.len < 8 || u16(b) != XL_BOF || u16(b + 2) < 4) {
        unsigned ty = x.len >= 2 ? u16(b) : 0;
        fail(o, MGW_FAIL, "%s",
             (ty == 0x0009 || ty == 0x0209 || ty == 0x0409)
                 ? "unsupported Excel version (BIFF2-4)"
                 : "Excel stream does not start with a BOF record");
        goto out_fail;
    }
    x.biff8 = u16(b + 4) == 0x0600;
    if (!x.biff8 && u16(b + 4) != 0x0500) {
        fail(o, MGW_FAIL, "unsupported Excel version (BOF version 0x%04X)", u16(b + 4));
        goto out_fail;
    }
    /* the globals: up to the first EOF */
    for (pos = 0; pos + 4 <= x.len && !globals_done;) {
        unsigned type = u16(b + pos), rlen = u16(b + pos + 2);
        size_t d = pos + 4;
        if (d + rlen > x.len)
            break;
        switch (type) {
        case XL_FILEPASS:
            fail(o, MGW_ENCRYPTED, "Excel workbook is encrypted (FILEPASS)");
            goto out_fail;
        case XL_CODEPAGE:
            if (rlen >= 2)
                x.cp = u16(b + d);
            break;
        case XL_BOUNDSHEET:
            if (rlen >= 7) {
                struct sheet sh;
                sh.pos = u32(b + d);
                sh.state = b[d + 4] & 0x03;
                sh.type = b[d + 5];
                sh.name = xl_string(&x, b + d + 6, rlen - 6, true);
                if (sh.name == NULL)
                    sh.name = g_strdup("");
                g_array_append_val(x.sheets, sh);
            }
            break;
        case XL_SST:
            if (x.biff8 && x.sst->len == 0)
                xl_sst(&x, d, rlen);
            break;
        case XL_EOF:
            globals_done = true;
            first_eof = d + rlen;
            break;
        default:
            break;
        }
        pos = d + rlen;
    }
    if (!globals_done)
        mgw_note(o->w, "defect", "Excel globals have no EOF record");
    for (guint i = 0; i < x.sheets->len; i++) {
        struct sheet *sh = &g_array_index(x.sheets, struct sheet, i);
        char *n = show_name(sh->name);
        if (sh->type == 1 || sh->type == 6) {
            f->xlm += sh->type == 1;
            f->modules += sh->type == 6;
            note_found(o->w, f, true, "%s '%s'", sheet_kind(sh->type), n);
        } else if (sh->type == 2) {
            if (f->charts++ < OLE_NOTES_MAX)
                mgw_note(o->w, "found", "chart sheet '%s' (not in the text)", n);
        }
        if (sh->state == 2 && f->hidden++ < OLE_NOTES_MAX)
            mgw_note(o->w, "found", "very hidden %s '%s'", sheet_kind(sh->type), n);
        g_free(n);
    }
    /* the substreams, named by the BOUNDSHEET that points at their BOF */
    for (guint i = 0; i < x.sheets->len; i++)
        g_hash_table_insert(bypos,
                            GUINT_TO_POINTER((guint)g_array_index(x.sheets, struct sheet, i).pos),
                            GUINT_TO_POINTER(i));
    for (pos = first_eof; globals_done && pos + 4 <= x.len && !t->full;) {
        unsigned type = u16(b + pos), rlen = u16(b + pos + 2);
        size_t d = pos + 4;
        if (d + rlen > x.len) {
            mgw_note(o->w, "defect", "Excel record cut at offset %zu", pos);
            break;
        }
        if (type == XL_BOF) {
            unsigned dt = rlen >= 4 ? u16(b + d + 2) : 0;
            depth++;
            if (depth == 1) {
                const struct sheet *sh = NULL;
                gpointer k;
                if (pos <= UINT32_MAX &&
                    g_hash_table_lookup_extended(bypos, GUINT_TO_POINTER((guint)pos), NULL, &k))
                    sh = &g_array_index(x.sheets, struct sheet, GPOINTER_TO_UINT(k));
                nsheet++;
                in_sheet = dt == 0x0010 && (sh == NULL || sh->type == 0);
                if (dt == 0x0040 && (sh == NULL || sh->type != 1)) {
                    f->xlm++;
                    note_found(o->w, f, true, "Excel 4 macro sheet (substream %u)", nsheet);
                }
                if (in_sheet) {
                    if (t->s->len > 0)
                        put_uc(t, '\n');
                    put_str(t, "== ");
                    if (sh != NULL) {
                        put_utf8(t, sh->name, strlen(sh->name));
                    } else {
                        char nb[32];
                        g_snprintf(nb, sizeof nb, "sheet %u", nsheet);
                        put_str(t, nb);
                    }
                    put_str(t, " ==\n");
                    x.row = -1;
                }
            }
        } else if (type == XL_EOF) {
            if (depth > 0)
                depth--;
            if (depth == 0) {
                if (in_sheet && x.row >= 0)
                    put_uc(t, '\n');
                in_sheet = false;
            }
        } else if (type == XL_FILEPASS) {
            fail(o, MGW_ENCRYPTED, "Excel workbook is encrypted (FILEPASS)");
            goto out_fail;
        } else if (in_sheet && depth == 1) {
            xl_sheet_record(&x, type, b + d, rlen);
        }
        pos = d + rlen;
    }
    if (in_sheet && x.row >= 0)
        put_uc(t, '\n');
    mgw_note(o->w, "converted", "Excel %s workbook to plain text", x.biff8 ? "97-2003" : "5.0/95");
    goto out;
out_fail:
    st = o->st;
out:
    for (guint i = 0; i < x.sheets->len; i++)
        g_free(g_array_index(x.sheets, struct sheet, i).name);
    g_array_free(x.sheets, TRUE);
    g_hash_table_unref(bypos);
    g_ptr_array_free(x.sst, TRUE);
    g_free(b);
    return st;
}

/* ---- PowerPoint ---- */

#define PPT_TEXTCHARS  0x0FA0
#define PPT_TEXTBYTES  0x0FA8
#define PPT_MAINMASTER 0x03F8
#define PPT_HANDOUT    0x0FC9
#define PPT_VBAINFO    0x03FF
#define PPT_EXOLEEMBED 0x0FCC
#define PPT_EXOLELINK  0x0FCE
#define PPT_CRYPT      0x2F14

struct ppt {
    struct ole *o;
    struct text *t;
    struct found *f;
    bool encrypted, deep, cut;
    unsigned links;
};

static void ppt_line(struct ppt *p, const unsigned char *d, size_t n, bool wide)
{
    if (wide) {
        size_t units = n / 2;
        for (size_t j = 0; j < units && !p->t->full;) {
            gunichar c;
            j += utf16_next(d + 2 * j, units - j, &c);
            put_uc(p->t, c == 0x0D || c == 0x0B ? '\n' : c);
        }
    } else {
        for (size_t j = 0; j < n && !p->t->full; j++)
            put_uc(p->t, d[j] == 0x0D || d[j] == 0x0B ? '\n' : d[j]);
    }
    put_uc(p->t, '\n');
}

static void ppt_walk(struct ppt *p, const unsigned char *b, size_t len, int depth)
{
    size_t pos = 0;

    while (pos + 8 <= len && !p->t->full && !p->encrypted) {
        unsigned vi = u16(b + pos), type = u16(b + pos + 2);
        uint32_t rlen = u32(b + pos + 4);
        const unsigned char *d = b + pos + 8;
        if (rlen > len - pos - 8) {
            p->cut = true;
            rlen = (uint32_t)(len - pos - 8);
        }
        if (type == PPT_CRYPT) {
            p->encrypted = true;
            return;
        }
        if (type == PPT_VBAINFO) {
            p->f->vba++;
            note_found(p->o->w, p->f, true, "VBA macro project (PowerPoint VbaInfo)");
        } else if (type == PPT_EXOLEEMBED) {
            p->f->objects++;
            note_found(p->o->w, p->f, false, "embedded OLE object (PowerPoint ExOleEmbed)");
        } else if (type == PPT_EXOLELINK && p->links++ < OLE_NOTES_MAX) {
            mgw_note(p->o->w, "found", "linked OLE object (PowerPoint ExOleLink)");
        }
        if ((vi & 0x0F) == 0x0F) {
            if (type == PPT_MAINMASTER || type == PPT_HANDOUT) {
                /* master placeholder text: not the document's */
            } else if (depth >= PPT_DEPTH) {
                p->deep = true;
            } else {
                ppt_walk(p, d, rlen, depth + 1);
            }
        } else if (type == PPT_TEXTCHARS) {
            ppt_line(p, d, rlen, true);
        } else if (type == PPT_TEXTBYTES) {
            ppt_line(p, d, rlen, false);
        }
        pos += 8 + (size_t)rlen;
    }
}

static enum mgw_status ppt_text(struct ole *o, uint32_t pi, struct text *t, struct found *f)
{
    size_t len;
    unsigned char *b;
    uint32_t cu = find_entry(o, 0, "Current User", E_STREAM);
    struct ppt p;

    if (find_entry(o, 0, "EncryptedSummary", E_STREAM) != OLE_NONE) {
        fail(o, MGW_ENCRYPTED, "PowerPoint presentation is encrypted (EncryptedSummary)");
        return MGW_ENCRYPTED;
    }
    if (cu != OLE_NONE) {
        unsigned char *c = read_stream(o, cu, &len);
        if (c == NULL)
            return o->st;
        if (len >= 20 && u32(c + 12) == 0xF3D1C4DFu) {
            g_free(c);
            fail(o, MGW_ENCRYPTED, "PowerPoint presentation is encrypted (CurrentUser)");
            return MGW_ENCRYPTED;
        }
        g_free(c);
    }
    b = read_stream(o, pi, &len);
    if (b == NULL)
        return o->st;
    memset(&p, 0, sizeof p);
    p.o = o;
    p.t = t;
    p.f = f;
    ppt_walk(&p, b, len, 0);
    g_free(b);
    if (p.encrypted) {
        fail(o, MGW_ENCRYPTED, "PowerPoint presentation is encrypted (CryptSession10)");
        return MGW_ENCRYPTED;
    }
    if (p.deep)
        mgw_note(o->w, "defect", "PowerPoint records nested deeper than %d levels (skipped)",
                 PPT_DEPTH);
    if (p.cut)
        mgw_note(o->w, "defect", "PowerPoint record longer than its container (cut)");
    mgw_note(o->w, "converted", "PowerPoint 97-2003 presentation to plain text");
    return MGW_OK;
}

/* ---- the handler ---- */

enum mgw_status mgw_ole_text(struct mgw *w)
{
    struct ole o;
    struct text t;
    struct found f;
    size_t len;
    unsigned char *buf;
    enum mgw_status st;
    uint32_t i;

    memset(&o, 0, sizeof o);
    memset(&f, 0, sizeof f);
    o.w = w;
    o.max_stream = mgw_option_u64(w, "max-stream", DEF_MAX_STREAM);
    t.max = mgw_option_u64(w, "max-text", DEF_MAX_TEXT);
    t.full = false;
    if (mgw_input_size(w) > mgw_option_u64(w, "max-input", DEF_MAX_INPUT)) {
        mgw_reason(w, "input larger than max-input");
        return MGW_LIMIT;
    }
    buf = mgw_input_read_all(w, mgw_option_u64(w, "max-input", DEF_MAX_INPUT), &len);
    if (buf == NULL) {
        mgw_reason(w, "input unreadable");
        return MGW_FAIL;
    }
    o.buf = buf;
    o.len = len;
    if (!ole_open(&o)) {
        st = o.st;
        goto out;
    }
    scan_dir(&o, &f);
    if (find_entry(&o, 0, "EncryptionInfo", E_STREAM) != OLE_NONE &&
        find_entry(&o, 0, "EncryptedPackage", E_STREAM) != OLE_NONE) {
        mgw_reason(w, "encrypted Office Open XML document (EncryptionInfo, EncryptedPackage)");
        st = MGW_ENCRYPTED;
        goto out;
    }
    t.s = g_string_new(NULL);
    if ((i = find_entry(&o, 0, "WordDocument", E_STREAM)) != OLE_NONE)
        st = word_text(&o, i, &t);
    else if ((i = find_entry(&o, 0, "Workbook", E_STREAM)) != OLE_NONE ||
             (i = find_entry(&o, 0, "Book", E_STREAM)) != OLE_NONE)
        st = xl_text(&o, i, &t, &f);
    else if ((i = find_entry(&o, 0, "PowerPoint Document", E_STREAM)) != OLE_NONE)
        st = ppt_text(&o, i, &t, &f);
    else {
        fail(&o, MGW_FAIL, "not a Word, Excel or PowerPoint document");
        st = MGW_FAIL;
    }
    if (st == MGW_OK && t.full) {
        mgw_reason(w, "text larger than max-text (%" G_GUINT64_FORMAT " bytes)", t.max);
        st = MGW_LIMIT;
    }
    if (f.notes > OLE_NOTES_MAX)
        mgw_note(w, "removed", "%u more active parts not listed", f.notes - OLE_NOTES_MAX);
    if (st == MGW_OK) {
        char *name = mgw_text_name(w);
        if (!mgw_out_file(w, name, "text/plain; charset=utf-8", t.s->str, t.s->len))
            st = MGW_FAIL;
        g_free(name);
    }
    g_string_free(t.s, TRUE);
out:
    ole_close(&o);
    g_free(buf);
    return st;
}
