/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * NAME
 *	tnef 3
 * SUMMARY
 *	the "tnef" handler of mugaika-worker: the attachments of a
 *	winmail.dat
 * SYNOPSIS
 *	enum mgw_status mgw_tnef(struct mgw *w);
 *
 *	mugaika-worker tnef [max-members=N] [max-total=BYTES] <item >records
 * DESCRIPTION
 *	Reads the item (fd 0) as a TNEF stream (MS-OXTNEF: the
 *	application/vnd.ms-tnef part Outlook and Exchange send as
 *	winmail.dat) and emits the message body and every attachment as
 *	one output each, with type NULL: the parent detects each output's
 *	type and sends it through the whole pipeline again. This handler
 *	never recurses: an embedded message is emitted as a TNEF file and
 *	the parent runs this handler again on it, so the nesting depth is
 *	the parent's (archive-depth).
 *
 *	The stream is the signature 0x223E9F78, a 16-bit key, then
 *	attributes: a level byte (1 message, 2 attachment), a 32-bit id,
 *	a 32-bit length, the data and a 16-bit checksum (the sum of the
 *	data bytes). An attachment begins with attAttachRendData and owns
 *	the level-2 attributes up to the next one; its MAPI properties
 *	are in attAttachment, the message's in attMAPIProps. The stream
 *	is walked twice: once to check its structure and collect where
 *	each value lies (nothing is copied), then again to emit. Nothing
 *	is emitted from a stream whose attributes do not fit together.
 *	MAPI property streams hold no nested structure here (the
 *	recipient table is skipped whole).
 *
 *	Written by hand rather than with libytnef, the one packaged C
 *	library for the format: libytnef allocates every attribute and
 *	property value whole, sized and counted as the stream says, had a
 *	run of memory-safety bugs found by fuzzing (a series of CVEs in
 *	2017), and would be one more library in the worker. The format
 *	is small and documented (MS-OXTNEF, MS-OXRTFCP); the parser here
 *	reads the item through a small window with pread, checks every
 *	length against what is left, and holds no value whole (outputs
 *	are streamed in blocks).
 *
 *	Attachment names: PR_ATTACH_LONG_FILENAME (Unicode or 8-bit)
 *	when present and not empty, else attAttachTitle, else
 *	PR_ATTACH_FILENAME. An 8-bit name that is not UTF-8 is decoded
 *	with the stream's OEM code page (attOemCodepage), CP932 when the
 *	stream gives none or iconv does not know it; undecodable bytes
 *	become U+FFFD. The name is then made safe as archive.c does, but
 *	keeping only its last path component: "\" is a separator,
 *	control and format characters (C0, DEL, C1, bidi controls,
 *	zero-width characters, line and paragraph separators) are
 *	removed, a leading drive letter is dropped, so are trailing dots
 *	and spaces and components that hold nothing else ("..");
 *	the result is kept under TN_NAME_MAX bytes (its end, where the
 *	extension is). Empty, it becomes "attachment-N" (N counts the
 *	attachments from 1). A name changed this way carries
 *	MGW_OUT_NAME_CHANGED.
 *
 *	Attachment data: attAttachData or PR_ATTACH_DATA_BIN /
 *	PR_ATTACH_DATA_OBJ (property 0x3701), the later in the stream
 *	when there are several (as MAPI's SetProps would leave it).
 *	PR_ATTACH_METHOD decides:
 *	  1 (by value), or absent: the data is emitted as it is;
 *	  5 (embedded message), 6 (OLE) or data of type PT_OBJECT: the
 *	    object's interface id (16 bytes) is removed and the rest is
 *	    emitted only when it is a file this gateway can recognise by
 *	    its magic number (TNEF, an OLE2 compound file, PDF, zip, RTF,
 *	    common pictures and archives...); an embedded message is a
 *	    TNEF stream, so it is emitted and unpacked by the next run.
 *	    Anything else is dropped with a "removed" note, and so is an
 *	    OLE 1 object that is a link (FormatID 1);
 *	  2, 3, 4, 7 (by reference, by web reference): the attachment
 *	    is only a link to a file elsewhere: a "removed" note.
 *	An attachment with no data gives a "defect" note.
 *
 *	Message body, one output at most: "body.txt" from PR_BODY
 *	(Unicode, or 8-bit in PR_MESSAGE_CODEPAGE) or attBody (8-bit in
 *	the OEM code page), converted to UTF-8; else "body.html" from
 *	PR_HTML (its bytes; converted to UTF-8 when stored as Unicode);
 *	else "body.rtf": PR_RTF_COMPRESSED decompressed here (MS-OXRTFCP:
 *	LZ77 over a 4096-byte dictionary that starts with a fixed RTF
 *	prefix, or stored uncompressed, "MELA"); the parent turns RTF and
 *	HTML into text. The decompressed RTF is cut at the size its
 *	header declares and counts against max-total as it is made.
 *
 *	Checksums (of attributes, and the CRC of a compressed RTF body)
 *	are verified, and a mismatch is noted as a "defect" but not
 *	refused: Outlook ignores them too. Bytes after the last attribute
 *	that do not start another (a level other than 1 or 2) are
 *	ignored with a "defect" note; an attribute that runs past the end
 *	of the item is a failure.
 * LIMITS
 *	max-members (1000): outputs (attachments and the body); the
 *	attachments are counted while the stream is checked, so a stream
 *	with more ends the run before anything is emitted.
 *	max-total (200 MiB): bytes of all outputs together; an attachment
 *	larger than what is left ends the run before its first byte.
 *	Each attribute length is checked against the rest of the item,
 *	each property count against TN_MAX_PROPS and the rest of its
 *	attribute (every property takes at least 8 bytes), each value
 *	count against TN_MAX_VALUES and the rest likewise; a property
 *	stream that breaks these rules is read no further (a "defect"
 *	note). Memory is a few blocks of TN_BLOCK bytes and one small
 *	record per attachment, whatever the item holds.
 * DIAGNOSTICS
 *	MGW_LIMIT with a reason naming the limit; MGW_FAIL when the item
 *	is not TNEF (bad signature, shorter than its 6-byte header, a
 *	first attribute of no known level), when an attribute is
 *	truncated, or when the item cannot be read. A note
 *	"info" gives the number of attachments and outputs at the end.
 */
#include <errno.h>
#include <inttypes.h>
#include <string.h>
#include <unistd.h>

#include <zlib.h>

#include "worker/handlers.h"

#define TN_SIGNATURE  0x223e9f78u
#define TN_HEAD       6            /* signature and key */
#define TN_ATTR_HEAD  9            /* level, id, length */
#define TN_BLOCK      (64u * 1024) /* a streamed block */
#define TN_WINDOW     (16u * 1024) /* the read window for small reads */
#define TN_NAME_READ  4096         /* bytes of a name property read */
#define TN_NAME_MAX   255          /* bytes of an emitted name */
#define TN_MAX_PROPS  100000u      /* properties in one property stream */
#define TN_MAX_VALUES 100000u      /* values of one multi-valued property */
#define TN_SUM_NOTES  8            /* checksum mismatches noted one by one */
#define TN_PROP_NOTES 8            /* broken property streams noted one by one */
#define TN_IID_LEN    16           /* interface id before PT_OBJECT data */

#define RTF_DICT       4096
#define RTF_HEAD       16
#define RTF_PREFIX_LEN 207
#define RTF_LZFU       0x75465a4cu /* "LZFu" */
#define RTF_MELA       0x414c454du /* "MELA": stored */

/* attribute ids (the low word; the high word repeats the data type) */
enum {
    ATT_BODY = 0x800c,
    ATT_ATTACH_DATA = 0x800f,
    ATT_ATTACH_TITLE = 0x8010,
    ATT_ATTACH_REND = 0x9002,
    ATT_MAPI_PROPS = 0x9003,
    ATT_ATTACHMENT = 0x9005,
    ATT_OEM_CODEPAGE = 0x9007,
};

/* MAPI property ids */
enum {
    PR_BODY = 0x1000,
    PR_RTF_COMPRESSED = 0x1009,
    PR_HTML = 0x1013,
    PR_MESSAGE_CODEPAGE = 0x3ffd,
    PR_ATTACH_DATA = 0x3701,
    PR_ATTACH_FILENAME = 0x3704,
    PR_ATTACH_METHOD = 0x3705,
    PR_ATTACH_LONG_FILENAME = 0x3707,
};

/* MAPI property types */
enum {
    PT_I2 = 0x0002,
    PT_LONG = 0x0003,
    PT_R4 = 0x0004,
    PT_DOUBLE = 0x0005,
    PT_CURRENCY = 0x0006,
    PT_APPTIME = 0x0007,
    PT_ERROR = 0x000a,
    PT_BOOLEAN = 0x000b,
    PT_OBJECT = 0x000d,
    PT_I8 = 0x0014,
    PT_STRING8 = 0x001e,
    PT_UNICODE = 0x001f,
    PT_SYSTIME = 0x0040,
    PT_CLSID = 0x0048,
    PT_SVREID = 0x00fb,
    PT_BINARY = 0x0102,
    MV_FLAG = 0x1000,
    MV_INSTANCE = 0x2000,
};

/* the fixed start of the compressed-RTF dictionary (MS-OXRTFCP 3.1.1.3) */
static const char rtf_prefix[] =
    "{\\rtf1\\ansi\\mac\\deff0\\deftab720{\\fonttbl;}{\\f0\\fnil \\froman \\fswiss \\fmodern "
    "\\fscript \\fdecor MS Sans SerifSymbolArialTimes New RomanCourier{\\colortbl\\red0\\green0"
    "\\blue0\r\n\\par \\pard\\plain\\f0\\fs20\\b\\i\\u\\tab\\tx";
G_STATIC_ASSERT(sizeof rtf_prefix - 1 == RTF_PREFIX_LEN);

/* IID_IMessage {00020307-0000-0000-C000-000000000046} as stored */
static const unsigned char iid_message[TN_IID_LEN] = {
    0x07, 0x03, 0x02, 0x00, 0x00, 0x00, 0x00, 0x00, 0xc0, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x46};

/* A value in the item: where it lies and its MAPI type (PT_STRING8
 * for 8-bit attributes, 0 for attAttachData). */
struct tn_val {
    uint64_t off, len;
    unsigned type;
    bool set;
};

struct tn_att {
    struct tn_val long_name, file_name, title, data;
    uint32_t method; /* PR_ATTACH_METHOD; 0 when absent */
};

struct tn {
    struct mgw *w;
    uint64_t size;
    unsigned char *win; /* the read window: wlen bytes of the item from woff */
    uint64_t woff;
    size_t wlen;
    unsigned char *buf;  /* TN_BLOCK: input blocks */
    unsigned char *obuf; /* TN_BLOCK: output being made (RTF) */
    size_t olen;
    uint64_t max_members;
    uint64_t max_total;
    uint64_t total;   /* bytes emitted */
    uint64_t outputs; /* outputs begun */
    uint64_t attrs;   /* attributes read */
    uint64_t bad_sums;
    uint64_t bad_props; /* broken property streams */
    uint32_t oem_cp, msg_cp;
    struct tn_val body, body_att, html, rtf;
    GArray *atts; /* struct tn_att */
    bool orphan_noted;
    bool is_tnef;          /* the signature matched */
    const char *body_kind; /* for the info note */
};

/* --- reading the item --- */

static uint16_t le16(const unsigned char *p)
{
    return (uint16_t)(p[0] | (unsigned)p[1] << 8);
}

static uint32_t le32(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static bool pread_all(struct tn *t, void *dst, size_t n, uint64_t off)
{
    size_t got = 0;

    while (got < n) {
        ssize_t r = pread(mgw_input_fd(t->w), (char *)dst + got, n - got, (off_t)(off + got));
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return false;
        got += (size_t)r;
    }
    return true;
}

/* Copies n bytes of the item at off to dst; false when they are not
 * all in the item (or a read fails). Small reads go through the
 * window, so walking a property stream costs few system calls. */
static bool in_get(struct tn *t, uint64_t off, void *dst, size_t n)
{
    if (off > t->size || n > t->size - off)
        return false;
    if (n > TN_WINDOW / 4)
        return pread_all(t, dst, n, off);
    if (off < t->woff || off + n > t->woff + t->wlen) {
        size_t want = (size_t)MIN((uint64_t)TN_WINDOW, t->size - off);
        t->wlen = 0;
        if (!pread_all(t, t->win, want, off))
            return false;
        t->woff = off;
        t->wlen = want;
    }
    memcpy(dst, t->win + (off - t->woff), n);
    return true;
}

/* a position inside one attribute's data */
struct cur {
    uint64_t pos, end;
};

static bool cur_u32(struct tn *t, struct cur *c, uint32_t *v)
{
    unsigned char b[4];

    if (c->end - c->pos < 4 || !in_get(t, c->pos, b, 4))
        return false;
    c->pos += 4;
    *v = le32(b);
    return true;
}

static bool cur_skip(struct cur *c, uint64_t n)
{
    if (c->end - c->pos < n)
        return false;
    c->pos += n;
    return true;
}

static uint64_t pad4(uint64_t n)
{
    return (n + 3) & ~(uint64_t)3;
}

/* --- text --- */

static const char *cp_charset(uint32_t cp, char *buf, size_t size)
{
    switch (cp) {
    case 0:
        return NULL;
    case 65001:
        return "UTF-8";
    case 20127:
        return "ASCII";
    case 1200:
        return "UTF-16LE";
    case 50220:
    case 50221:
    case 50222:
        return "ISO-2022-JP";
    case 20932:
    case 51932:
        return "EUC-JP";
    case 51949:
        return "EUC-KR";
    case 20866:
        return "KOI8-R";
    case 21866:
        return "KOI8-U";
    default:
        break;
    }
    if (cp >= 28591 && cp <= 28606)
        g_snprintf(buf, size, "ISO-8859-%u", (unsigned)(cp - 28590));
    else
        g_snprintf(buf, size, "CP%u", (unsigned)cp);
    return buf;
}

/* A converter to UTF-8 from the code page cp, CP932 when cp is 0 or
 * unknown to iconv. */
static GIConv open_conv(uint32_t cp)
{
    char buf[32];
    const char *cs = cp_charset(cp, buf, sizeof buf);
    GIConv cd = (GIConv)-1;

    if (cs != NULL)
        cd = g_iconv_open("UTF-8", cs);
    if (cd == (GIConv)-1)
        cd = g_iconv_open("UTF-8", "CP932");
    if (cd == (GIConv)-1)
        cd = g_iconv_open("UTF-8", "UTF-8");
    return cd;
}

/*
 * Converts in[0..n) to UTF-8, appended to out. A byte sequence that is
 * invalid (or incomplete when final) becomes U+FFFD and unit bytes are
 * skipped; an incomplete sequence at the end is left unconverted when
 * more input follows. Returns the bytes consumed.
 */
static size_t conv_step(GIConv cd, unsigned unit, const unsigned char *in, size_t n, bool final,
                        GString *out)
{
    gchar *ip = (gchar *)in, obuf[4096], *op;
    gsize il = n, ol, r;

    while (il > 0) {
        op = obuf;
        ol = sizeof obuf;
        r = g_iconv(cd, &ip, &il, &op, &ol);
        g_string_append_len(out, obuf, (gssize)(op - obuf));
        if (r != (gsize)-1)
            break;
        if (errno == E2BIG)
            continue;
        if (errno == EINVAL && !final && il <= 16)
            break; /* a sequence cut by the block's end: kept for the next */
        if (errno == EINVAL || errno == EILSEQ) {
            gsize skip = MIN((gsize)unit, il);
            g_string_append(out, "\xef\xbf\xbd");
            ip += skip;
            il -= skip;
            continue;
        }
        il = 0; /* anything else: the rest is lost */
    }
    if (final) {
        op = obuf;
        ol = sizeof obuf;
        g_iconv(cd, NULL, NULL, &op, &ol); /* the shift state's end (ISO-2022-JP) */
        g_string_append_len(out, obuf, (gssize)(op - obuf));
    }
    return n - (size_t)il;
}

/* Removes NUL characters (padding, terminators) from UTF-8 text. */
static void drop_nuls(GString *s)
{
    gsize j = 0;

    for (gsize i = 0; i < s->len; i++)
        if (s->str[i] != '\0')
            s->str[j++] = s->str[i];
    g_string_truncate(s, j);
}

/* A name property as UTF-8 (owned; NULL when absent or empty). */
static char *read_name(struct tn *t, const struct tn_val *v)
{
    size_t n = (size_t)MIN(v->len, (uint64_t)TN_NAME_READ), k = 0;
    unsigned char *b;
    char *s = NULL;

    if (!v->set || n == 0)
        return NULL;
    b = g_malloc(n);
    if (in_get(t, v->off, b, n)) {
        GString *out = g_string_new(NULL);
        GIConv cd;
        if (v->type == PT_UNICODE) {
            while (k + 1 < n && (b[k] != 0 || b[k + 1] != 0))
                k += 2;
            cd = g_iconv_open("UTF-8", "UTF-16LE");
            if (cd != (GIConv)-1) {
                conv_step(cd, 2, b, k, true, out);
                g_iconv_close(cd);
            }
        } else {
            while (k < n && b[k] != 0)
                k++;
            if (g_utf8_validate((const char *)b, (gssize)k, NULL)) {
                g_string_append_len(out, (const char *)b, (gssize)k);
            } else {
                cd = open_conv(t->oem_cp);
                if (cd != (GIConv)-1) {
                    conv_step(cd, 1, b, k, true, out);
                    g_iconv_close(cd);
                }
            }
        }
        drop_nuls(out);
        s = g_string_free(out, FALSE);
        if (!g_utf8_validate(s, -1, NULL)) {
            char *valid = g_utf8_make_valid(s, -1);
            g_free(s);
            s = valid;
        }
        if (*s == '\0') {
            g_free(s);
            s = NULL;
        }
    }
    g_free(b);
    return s;
}

/* --- names --- */

/* The safe form of the UTF-8 name in: its last usable path component
 * (owned; empty when nothing safe is left). */
static char *safe_name(const char *in)
{
    char *clean = mgw_name_clean(in);
    const char *p, *start, *best = NULL;
    size_t best_len = 0;
    char *out;

    start = clean;
    for (p = clean;; p++) {
        if (*p == '/' || *p == '\0') {
            const char *c = start;
            size_t len = (size_t)(p - start);
            if (c == clean && len >= 2 && g_ascii_isalpha(c[0]) && c[1] == ':') {
                c += 2; /* a drive letter, "C:" or "C:name" */
                len -= 2;
            }
            /* trailing dots and spaces go (Windows drops them), and
             * with them any component of only dots and spaces */
            while (len > 0 && (c[len - 1] == '.' || c[len - 1] == ' '))
                len--;
            if (len > 0) {
                best = c;
                best_len = len;
            }
            if (*p == '\0')
                break;
            start = p + 1;
        }
    }
    if (best_len > TN_NAME_MAX) {
        /* keep the end (the extension), from a character boundary */
        const char *q = best + best_len - TN_NAME_MAX;
        while ((*q & 0xc0) == 0x80)
            q++;
        best_len -= (size_t)(q - best);
        best = q;
    }
    out = best != NULL ? g_strndup(best, best_len) : g_strdup("");
    g_free(clean);
    return out;
}

/* --- the first pass: structure --- */

static void prop_found(struct tn *t, struct tn_att *a, unsigned id, unsigned type, uint64_t off,
                       uint64_t len)
{
    struct tn_val v = {off, len, type, true};
    bool text = type == PT_STRING8 || type == PT_UNICODE;
    unsigned char b[4];

    if (a == NULL) {
        if (id == PR_BODY && (text || type == PT_BINARY))
            t->body = v;
        else if (id == PR_HTML && (text || type == PT_BINARY))
            t->html = v;
        else if (id == PR_RTF_COMPRESSED && type == PT_BINARY)
            t->rtf = v;
        else if (id == PR_MESSAGE_CODEPAGE && type == PT_LONG && in_get(t, off, b, 4))
            t->msg_cp = le32(b);
        return;
    }
    if (id == PR_ATTACH_LONG_FILENAME && text)
        a->long_name = v;
    else if (id == PR_ATTACH_FILENAME && text)
        a->file_name = v;
    else if (id == PR_ATTACH_DATA && (type == PT_BINARY || type == PT_OBJECT))
        a->data = v;
    else if (id == PR_ATTACH_METHOD && type == PT_LONG && in_get(t, off, b, 4))
        a->method = le32(b);
}

/* Bytes of one value of a fixed-size type as stored (padded to 4);
 * 0 for the counted types; -1 for a type this parser does not know. */
static int value_size(unsigned type)
{
    switch (type) {
    case PT_I2:
    case PT_LONG:
    case PT_R4:
    case PT_ERROR:
    case PT_BOOLEAN:
        return 4;
    case PT_DOUBLE:
    case PT_CURRENCY:
    case PT_APPTIME:
    case PT_I8:
    case PT_SYSTIME:
        return 8;
    case PT_CLSID:
        return 16;
    case PT_OBJECT:
    case PT_STRING8:
    case PT_UNICODE:
    case PT_SVREID:
    case PT_BINARY:
        return 0;
    default:
        return -1;
    }
}

/* Reads one property at c; NULL when done, else what is wrong. */
static const char *one_prop(struct tn *t, struct cur *c, struct tn_att *a)
{
    uint32_t tag, v, nvals = 1;
    unsigned type, id;
    bool mv;
    int size;

    if (!cur_u32(t, c, &tag))
        return "truncated property";
    type = tag & 0xffff;
    id = tag >> 16;
    if (id >= 0x8000) {
        uint32_t kind;
        if (!cur_skip(c, 16) || !cur_u32(t, c, &kind))
            return "truncated property name";
        if (kind == 0) {
            if (!cur_skip(c, 4))
                return "truncated property name";
        } else if (kind == 1) {
            if (!cur_u32(t, c, &v) || !cur_skip(c, pad4(v)))
                return "truncated property name";
        } else {
            return "unknown kind of property name";
        }
    }
    mv = (type & MV_FLAG) != 0;
    type &= ~(unsigned)(MV_FLAG | MV_INSTANCE);
    size = value_size(type);
    if (size < 0)
        return "property of an unknown type";
    if (mv || size == 0) {
        if (!cur_u32(t, c, &nvals))
            return "truncated property";
        if (nvals > TN_MAX_VALUES || nvals > (c->end - c->pos) / (size > 0 ? (unsigned)size : 4))
            return "value count larger than the stream";
    }
    for (uint32_t k = 0; k < nvals; k++) {
        uint64_t off, len;
        if (size == 0) {
            if (!cur_u32(t, c, &v) || c->end - c->pos < v)
                return "truncated property value";
            off = c->pos;
            len = v;
            /* the last value's padding may be missing */
            c->pos += MIN(pad4(v), c->end - c->pos);
        } else {
            off = c->pos;
            len = (uint64_t)size;
            if (!cur_skip(c, len))
                return "truncated property value";
        }
        if (k == 0 && !mv && id < 0x8000)
            prop_found(t, a, id, type, off, len);
    }
    return NULL;
}

/* Reads a MAPI property stream (attMAPIProps, or attAttachment of the
 * attachment a). A broken stream is read up to the break. */
static void parse_props(struct tn *t, uint64_t off, uint64_t len, struct tn_att *a)
{
    struct cur c = {off, off + len};
    const char *bad = NULL;
    uint32_t count;

    if (!cur_u32(t, &c, &count))
        bad = "no property count";
    else if (count > TN_MAX_PROPS || count > (c.end - c.pos) / 8)
        bad = "property count larger than the stream";
    for (uint32_t i = 0; bad == NULL && i < count; i++)
        bad = one_prop(t, &c, a);
    if (bad != NULL && ++t->bad_props <= TN_PROP_NOTES)
        mgw_note(t->w, "defect", "MAPI properties at offset %" PRIu64 ": %s; the rest ignored", off,
                 bad);
}

/* Verifies an attribute's checksum (a mismatch is a defect only). */
static bool check_sum(struct tn *t, uint64_t off, uint64_t len, unsigned id)
{
    uint32_t sum = 0;
    unsigned char b[2];

    for (uint64_t done = 0; done < len;) {
        size_t n = (size_t)MIN((uint64_t)TN_BLOCK, len - done);
        if (!in_get(t, off + done, t->buf, n))
            return false;
        for (size_t i = 0; i < n; i++)
            sum += t->buf[i];
        done += n;
    }
    if (!in_get(t, off + len, b, 2))
        return false;
    if ((sum & 0xffff) != le16(b)) {
        if (++t->bad_sums <= TN_SUM_NOTES)
            mgw_note(t->w, "defect",
                     "attribute 0x%04x at offset %" PRIu64
                     ": checksum mismatch (ignored, as Outlook does)",
                     id, off - TN_ATTR_HEAD);
    }
    return true;
}

static enum mgw_status attribute(struct tn *t, unsigned level, unsigned id, uint64_t off,
                                 uint64_t len)
{
    struct tn_att *a;
    unsigned char b[4];

    if (level == 1) {
        if (id == ATT_OEM_CODEPAGE && len >= 4 && in_get(t, off, b, 4))
            t->oem_cp = le32(b);
        else if (id == ATT_BODY)
            t->body_att = (struct tn_val){off, len, PT_STRING8, true};
        else if (id == ATT_MAPI_PROPS)
            parse_props(t, off, len, NULL);
        return MGW_OK;
    }
    if (id == ATT_ATTACH_REND || t->atts->len == 0) {
        if (id != ATT_ATTACH_REND && !t->orphan_noted) {
            mgw_note(t->w, "defect",
                     "attachment attributes before the first attachment's start "
                     "(attAttachRendData)");
            t->orphan_noted = true;
        }
        if (t->atts->len >= t->max_members) {
            mgw_reason(t->w, "max-members: more than %" PRIu64 " attachments", t->max_members);
            return MGW_LIMIT;
        }
        g_array_set_size(t->atts, t->atts->len + 1);
    }
    a = &g_array_index(t->atts, struct tn_att, t->atts->len - 1);
    if (id == ATT_ATTACH_DATA)
        a->data = (struct tn_val){off, len, 0, true};
    else if (id == ATT_ATTACH_TITLE)
        a->title = (struct tn_val){off, len, PT_STRING8, true};
    else if (id == ATT_ATTACHMENT)
        parse_props(t, off, len, a);
    return MGW_OK;
}

static enum mgw_status walk(struct tn *t)
{
    unsigned char h[TN_ATTR_HEAD];
    uint64_t pos = TN_HEAD;
    enum mgw_status st;

    if (t->size < TN_HEAD || !in_get(t, 0, h, 4) || le32(h) != TN_SIGNATURE) {
        mgw_reason(t->w, "not TNEF: no TNEF signature");
        return MGW_FAIL;
    }
    t->is_tnef = true;
    while (pos < t->size) {
        uint64_t rem = t->size - pos, len;
        unsigned id;
        if (!in_get(t, pos, h, 1))
            goto unreadable;
        if (h[0] != 1 && h[0] != 2) {
            if (t->attrs == 0) {
                mgw_reason(t->w, "not TNEF: no attribute at offset %" PRIu64, pos);
                return MGW_FAIL;
            }
            mgw_note(t->w, "defect", "%" PRIu64 " bytes after the last attribute ignored", rem);
            break;
        }
        if (rem < TN_ATTR_HEAD + 2) {
            mgw_reason(t->w, "truncated attribute at offset %" PRIu64, pos);
            return MGW_FAIL;
        }
        if (!in_get(t, pos, h, TN_ATTR_HEAD))
            goto unreadable;
        id = le32(h + 1) & 0xffff;
        len = le32(h + 5);
        if (len > rem - TN_ATTR_HEAD - 2) {
            mgw_reason(t->w,
                       "truncated attribute 0x%04x at offset %" PRIu64 ": %" PRIu64
                       " bytes declared, %" PRIu64 " left",
                       id, pos, len, rem - TN_ATTR_HEAD - 2);
            return MGW_FAIL;
        }
        if (!check_sum(t, pos + TN_ATTR_HEAD, len, id))
            goto unreadable;
        t->attrs++;
        st = attribute(t, h[0], id, pos + TN_ATTR_HEAD, len);
        if (st != MGW_OK)
            return st;
        pos += TN_ATTR_HEAD + len + 2;
    }
    if (t->bad_sums > TN_SUM_NOTES)
        mgw_note(t->w, "defect", "%" PRIu64 " more attributes with a checksum mismatch",
                 t->bad_sums - TN_SUM_NOTES);
    if (t->bad_props > TN_PROP_NOTES)
        mgw_note(t->w, "defect", "%" PRIu64 " more broken MAPI property streams",
                 t->bad_props - TN_PROP_NOTES);
    return MGW_OK;
unreadable:
    mgw_reason(t->w, "the item is unreadable");
    return MGW_FAIL;
}

/* --- the second pass: outputs --- */

static enum mgw_status out_begin(struct tn *t, const char *name, unsigned flags)
{
    if (t->outputs >= t->max_members) {
        mgw_reason(t->w, "max-members: more than %" PRIu64 " outputs", t->max_members);
        return MGW_LIMIT;
    }
    t->outputs++;
    if (!mgw_out_begin(t->w, name, NULL, flags)) {
        mgw_reason(t->w, "output failed");
        return MGW_FAIL;
    }
    return MGW_OK;
}

static enum mgw_status out_write(struct tn *t, const void *buf, size_t n)
{
    if (n > t->max_total - t->total) {
        mgw_reason(t->w, "max-total: more than %" PRIu64 " bytes of outputs", t->max_total);
        return MGW_LIMIT;
    }
    t->total += n;
    if (n > 0 && !mgw_out_write(t->w, buf, n)) {
        mgw_reason(t->w, "output failed");
        return MGW_FAIL;
    }
    return MGW_OK;
}

static enum mgw_status out_end(struct tn *t)
{
    if (!mgw_out_end(t->w)) {
        mgw_reason(t->w, "output failed");
        return MGW_FAIL;
    }
    return MGW_OK;
}

/* Emits len bytes of the item at off as one output. */
static enum mgw_status emit_span(struct tn *t, const char *name, unsigned flags, uint64_t off,
                                 uint64_t len)
{
    enum mgw_status st;

    if (len > t->max_total - t->total) {
        mgw_reason(t->w,
                   "max-total: '%s' has %" PRIu64 " bytes, more than the %" PRIu64
                   " left of %" PRIu64,
                   name, len, t->max_total - t->total, t->max_total);
        return MGW_LIMIT;
    }
    st = out_begin(t, name, flags);
    for (uint64_t done = 0; st == MGW_OK && done < len;) {
        size_t n = (size_t)MIN((uint64_t)TN_BLOCK, len - done);
        if (!in_get(t, off + done, t->buf, n)) {
            mgw_reason(t->w, "the item is unreadable");
            return MGW_FAIL;
        }
        st = out_write(t, t->buf, n);
        done += n;
    }
    return st == MGW_OK ? out_end(t) : st;
}

/* Emits a text value converted to UTF-8 (from UTF-16LE when it is
 * Unicode, else from the code page cp), without NUL characters. */
static enum mgw_status emit_text(struct tn *t, const char *name, const struct tn_val *v,
                                 uint32_t cp)
{
    bool wide = v->type == PT_UNICODE;
    unsigned unit = wide ? 2 : 1;
    GIConv cd = wide ? g_iconv_open("UTF-8", "UTF-16LE") : open_conv(cp);
    GString *out;
    uint64_t done = 0;
    size_t carry = 0;
    enum mgw_status st;

    if (cd == (GIConv)-1) {
        mgw_reason(t->w, "no converter to UTF-8");
        return MGW_FAIL;
    }
    out = g_string_sized_new(TN_BLOCK);
    st = out_begin(t, name, 0);
    while (st == MGW_OK) {
        size_t n = (size_t)MIN((uint64_t)(TN_BLOCK - carry), v->len - done), used;
        bool final;
        if (n > 0 && !in_get(t, v->off + done, t->buf + carry, n)) {
            mgw_reason(t->w, "the item is unreadable");
            st = MGW_FAIL;
            break;
        }
        done += n;
        final = done == v->len;
        used = conv_step(cd, unit, t->buf, carry + n, final, out);
        carry = carry + n - used;
        memmove(t->buf, t->buf + used, carry);
        drop_nuls(out);
        st = out_write(t, out->str, out->len);
        g_string_truncate(out, 0);
        if (final)
            break;
    }
    if (st == MGW_OK)
        st = out_end(t);
    g_string_free(out, TRUE);
    g_iconv_close(cd);
    return st;
}

/* --- compressed RTF (MS-OXRTFCP) --- */

/* sequential reading of one value through t->buf */
struct seq {
    uint64_t pos, end;
    size_t i, n;
};

static int seq_byte(struct tn *t, struct seq *s)
{
    if (s->i == s->n) {
        size_t n;
        if (s->pos >= s->end)
            return -1;
        n = (size_t)MIN((uint64_t)TN_BLOCK, s->end - s->pos);
        if (!in_get(t, s->pos, t->buf, n))
            return -1;
        s->pos += n;
        s->i = 0;
        s->n = n;
    }
    return t->buf[s->i++];
}

static enum mgw_status rtf_put(struct tn *t, unsigned char c)
{
    enum mgw_status st = MGW_OK;

    t->obuf[t->olen++] = c;
    if (t->olen == TN_BLOCK) {
        st = out_write(t, t->obuf, t->olen);
        t->olen = 0;
    }
    return st;
}

/* The CRC of MS-OXRTFCP: CRC-32's table, started at 0, no final xor. */
static bool rtf_crc(struct tn *t, uint64_t off, uint64_t len, uint32_t *crc)
{
    uLong z = 0xffffffffUL;

    for (uint64_t done = 0; done < len;) {
        size_t n = (size_t)MIN((uint64_t)TN_BLOCK, len - done);
        if (!in_get(t, off + done, t->buf, n))
            return false;
        z = crc32(z, t->buf, (uInt)n);
        done += n;
    }
    *crc = (uint32_t)(z ^ 0xffffffffUL);
    return true;
}

/* Decompresses len bytes at off into the current output, at most raw
 * bytes. */
static enum mgw_status rtf_lzfu(struct tn *t, uint64_t off, uint64_t len, uint32_t raw)
{
    unsigned char dict[RTF_DICT];
    struct seq s = {off, off + len, 0, 0};
    unsigned wpos = RTF_PREFIX_LEN;
    uint64_t made = 0;
    enum mgw_status st = MGW_OK;
    bool ended = false, short_input = false;

    memcpy(dict, rtf_prefix, RTF_PREFIX_LEN);
    memset(dict + RTF_PREFIX_LEN, 0, RTF_DICT - RTF_PREFIX_LEN);
    t->olen = 0;
    while (st == MGW_OK && !ended && !short_input && made < raw) {
        int ctl = seq_byte(t, &s);
        if (ctl < 0) {
            short_input = true;
            break;
        }
        for (unsigned bit = 0; bit < 8 && st == MGW_OK && made < raw; bit++) {
            if (ctl & (1 << bit)) {
                int hi = seq_byte(t, &s), lo = seq_byte(t, &s);
                unsigned ref, from, n;
                if (hi < 0 || lo < 0) {
                    short_input = true;
                    break;
                }
                ref = (unsigned)hi << 8 | (unsigned)lo;
                from = ref >> 4;
                n = (ref & 15) + 2;
                if (from == wpos) {
                    ended = true;
                    break;
                }
                for (unsigned k = 0; k < n && st == MGW_OK && made < raw; k++) {
                    unsigned char c = dict[(from + k) % RTF_DICT];
                    dict[wpos] = c;
                    wpos = (wpos + 1) % RTF_DICT;
                    st = rtf_put(t, c);
                    made++;
                }
            } else {
                int c = seq_byte(t, &s);
                if (c < 0) {
                    short_input = true;
                    break;
                }
                dict[wpos] = (unsigned char)c;
                wpos = (wpos + 1) % RTF_DICT;
                st = rtf_put(t, (unsigned char)c);
                made++;
            }
        }
    }
    if (st == MGW_OK && t->olen > 0)
        st = out_write(t, t->obuf, t->olen);
    t->olen = 0;
    if (st == MGW_OK && made < raw)
        mgw_note(t->w, "defect",
                 "the compressed RTF body gives %" PRIu64 " bytes, its header declares %" PRIu32,
                 made, raw);
    return st;
}

static enum mgw_status emit_rtf(struct tn *t)
{
    unsigned char h[RTF_HEAD];
    uint32_t comp, raw, magic, crc, got;
    uint64_t len;
    enum mgw_status st;

    if (t->rtf.len < RTF_HEAD || !in_get(t, t->rtf.off, h, RTF_HEAD)) {
        mgw_note(t->w, "removed", "the RTF message body is too short to read: removed");
        return MGW_OK;
    }
    comp = le32(h);
    raw = le32(h + 4);
    magic = le32(h + 8);
    crc = le32(h + 12);
    len = t->rtf.len - RTF_HEAD;
    if (comp < RTF_HEAD - 4 || comp - (RTF_HEAD - 4) > len)
        mgw_note(t->w, "defect",
                 "the compressed RTF body declares %" PRIu32 " bytes, %" PRIu64 " are present",
                 comp, len + RTF_HEAD - 4);
    else
        len = comp - (RTF_HEAD - 4);
    if (magic != RTF_LZFU && magic != RTF_MELA) {
        mgw_note(t->w, "removed",
                 "the RTF message body uses an unknown compression (0x%08" PRIx32 "): removed",
                 magic);
        return MGW_OK;
    }
    if (magic == RTF_MELA)
        return emit_span(t, "body.rtf", 0, t->rtf.off + RTF_HEAD, MIN(len, (uint64_t)raw));
    if (!rtf_crc(t, t->rtf.off + RTF_HEAD, len, &got)) {
        mgw_reason(t->w, "the item is unreadable");
        return MGW_FAIL;
    }
    if (got != crc)
        mgw_note(t->w, "defect", "the compressed RTF body's CRC does not match");
    st = out_begin(t, "body.rtf", 0);
    if (st == MGW_OK)
        st = rtf_lzfu(t, t->rtf.off + RTF_HEAD, len, raw);
    return st == MGW_OK ? out_end(t) : st;
}

/* The NUL bytes that end an 8-bit value (at most 4: a terminator and
 * its padding). */
static uint64_t trailing_nuls(struct tn *t, const struct tn_val *v)
{
    unsigned char b[4];
    size_t n = (size_t)MIN(v->len, (uint64_t)sizeof b), k = 0;

    if (n == 0 || !in_get(t, v->off + v->len - n, b, n))
        return 0;
    while (k < n && b[n - 1 - k] == 0)
        k++;
    return k;
}

/* The message body: plain text, else HTML, else RTF (one output). */
static enum mgw_status emit_body(struct tn *t)
{
    if (t->body.set) {
        t->body_kind = "text";
        return emit_text(t, "body.txt", &t->body, t->msg_cp != 0 ? t->msg_cp : t->oem_cp);
    }
    if (t->body_att.set) {
        t->body_kind = "text";
        return emit_text(t, "body.txt", &t->body_att, t->oem_cp != 0 ? t->oem_cp : t->msg_cp);
    }
    if (t->html.set) {
        t->body_kind = "HTML";
        if (t->html.type == PT_UNICODE)
            return emit_text(t, "body.html", &t->html, 0);
        return emit_span(t, "body.html", 0, t->html.off, t->html.len - trailing_nuls(t, &t->html));
    }
    if (t->rtf.set) {
        t->body_kind = "RTF";
        return emit_rtf(t);
    }
    return MGW_OK;
}

/* --- attachments --- */

/* True when the bytes start like a file this gateway recognises. */
static bool recognised(const unsigned char *p, size_t n)
{
    static const struct {
        const char *magic;
        size_t len;
    } known[] = {
        {"\x78\x9f\x3e\x22", 4},                 /* TNEF */
        {"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", 8}, /* OLE2 compound file (Office 97-2003) */
        {"%PDF-", 5},
        {"PK\x03\x04", 4},
        {"PK\x05\x06", 4}, /* zip, OOXML, ODF */
        {"{\\rtf", 5},
        {"\x89PNG\r\n\x1a\n", 8},
        {"\xff\xd8\xff", 3},
        {"GIF87a", 6},
        {"GIF89a", 6},
        {"II*\0", 4},
        {"MM\0*", 4},
        {"RIFF", 4},
        {"7z\xbc\xaf\x27\x1c", 6},
        {"Rar!\x1a\x07", 6},
        {"\x1f\x8b", 2},
        {"BZh", 3},
        {"\xfd\x37zXZ\0", 6},
        {"MZ", 2},
    };

    for (size_t i = 0; i < G_N_ELEMENTS(known); i++)
        if (n >= known[i].len && memcmp(p, known[i].magic, known[i].len) == 0)
            return true;
    return false;
}

/* An attachment whose data is an object (embedded message, OLE). */
static enum mgw_status emit_object(struct tn *t, const struct tn_att *a, const char *name,
                                   unsigned flags)
{
    uint64_t off = a->data.off, len = a->data.len;
    unsigned char head[TN_IID_LEN];
    size_t n;
    bool message = a->method == 5;

    if (a->data.type == PT_OBJECT) {
        if (len < TN_IID_LEN || !in_get(t, off, head, TN_IID_LEN)) {
            mgw_note(t->w, "removed", "embedded object '%s' (empty) removed", name);
            return MGW_OK;
        }
        message = message || memcmp(head, iid_message, TN_IID_LEN) == 0;
        off += TN_IID_LEN;
        len -= TN_IID_LEN;
    }
    n = (size_t)MIN(len, (uint64_t)sizeof head);
    if (!in_get(t, off, head, n)) {
        mgw_reason(t->w, "the item is unreadable");
        return MGW_FAIL;
    }
    /* an OLE 1 object (MS-OLEDS ObjectHeader): version 0x0501, then
     * FormatID 1 for a link, 2 for an embedded object */
    if (n >= 8 && le32(head) == 0x0501 && le32(head + 4) == 1) {
        mgw_note(t->w, "removed", "OLE-linked object '%s' (a link to a file elsewhere) removed",
                 name);
        return MGW_OK;
    }
    if (!recognised(head, n)) {
        mgw_note(t->w, "removed", "embedded %s '%s' removed: not a file that can be checked",
                 message ? "message" : "object", name);
        return MGW_OK;
    }
    return emit_span(t, name, flags, off, len);
}

static enum mgw_status emit_attachment(struct tn *t, const struct tn_att *a, unsigned idx)
{
    char *decoded = read_name(t, &a->long_name), *name;
    unsigned flags = 0;
    enum mgw_status st = MGW_OK;

    if (decoded == NULL)
        decoded = read_name(t, &a->title);
    if (decoded == NULL)
        decoded = read_name(t, &a->file_name);
    name = safe_name(decoded != NULL ? decoded : "");
    if (*name == '\0') {
        g_free(name);
        name = g_strdup_printf("attachment-%u", idx);
    }
    if (decoded != NULL && strcmp(decoded, name) != 0)
        flags |= MGW_OUT_NAME_CHANGED;
    switch (a->method) {
    case 2:
    case 3:
    case 4:
    case 7:
        mgw_note(t->w, "removed",
                 "attachment '%s' removed: it is a reference to a file elsewhere, not the file "
                 "(attach method %" PRIu32 ")",
                 name, a->method);
        break;
    default:
        if (!a->data.set)
            mgw_note(t->w, "defect", "attachment '%s' has no data", name);
        else if (a->data.type == PT_OBJECT || a->method == 5 || a->method == 6)
            st = emit_object(t, a, name, flags);
        else
            st = emit_span(t, name, flags, a->data.off, a->data.len);
        break;
    }
    g_free(decoded);
    g_free(name);
    return st;
}

enum mgw_status mgw_tnef(struct mgw *w)
{
    struct tn t;
    enum mgw_status st;

    memset(&t, 0, sizeof t);
    t.w = w;
    t.size = mgw_input_size(w);
    t.max_members = mgw_option_u64(w, "max-members", 1000);
    t.max_total = mgw_option_u64(w, "max-total", (uint64_t)200 * 1024 * 1024);
    t.win = g_malloc(TN_WINDOW);
    t.buf = g_malloc(TN_BLOCK);
    t.obuf = g_malloc(TN_BLOCK);
    t.atts = g_array_new(FALSE, TRUE, sizeof(struct tn_att));
    t.body_kind = "none";

    st = walk(&t);
    if (st == MGW_OK)
        st = emit_body(&t);
    for (guint i = 0; st == MGW_OK && i < t.atts->len; i++)
        st = emit_attachment(&t, &g_array_index(t.atts, struct tn_att, i), i + 1);
    if (t.is_tnef)
        mgw_note(w, "info",
                 "TNEF: %u attachments, %" PRIu64 " outputs (message body: %s), %" PRIu64
                 " attributes",
                 t.atts->len, t.outputs, t.body_kind, t.attrs);
    g_array_unref(t.atts);
    g_free(t.win);
    g_free(t.buf);
    g_free(t.obuf);
    return st;
}
