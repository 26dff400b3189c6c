/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * NAME
 *	mime_dec 3
 * SUMMARY
 *	streaming Content-Transfer-Encoding decoders
 * SYNOPSIS
 *	#include "mime/mime_int.h"
 *
 *	void mg_dec_init(struct mg_dec *d, enum mg_mime_cte cte);
 *	size_t mg_dec_step(struct mg_dec *d, const char *in, size_t len, char *out);
 *	size_t mg_dec_flush(struct mg_dec *d, char *out);
 *	size_t mg_uu_decode_line(const char *line, size_t len, char *out, int *bad);
 * DESCRIPTION
 *	mg_dec_step decodes a span of transfer-encoded body bytes into out
 *	and returns the number of bytes written. The result over a whole
 *	body is the same whatever the span boundaries. out needs room for
 *	len + MG_DEC_SLACK bytes; nothing is allocated.
 *
 *	base64: characters outside the alphabet are skipped (CR, LF and
 *	blanks silently, others with base64-invalid-char); '=' ends the
 *	current quantum, and data after it is decoded on (with
 *	base64-after-end) so that nothing hidden behind padding is lost;
 *	a quantum left incomplete at the end is decoded as far as it goes
 *	(base64-padding).
 *
 *	quoted-printable: "=XX" (either case) decodes; "=" followed by
 *	optional blanks and a line end (LF, CRLF or CR), or by the end of
 *	the body, is a soft break; any other "=" sequence is kept
 *	literally (qp-invalid-escape).
 *
 *	x-uuencode: lines before "begin" are skipped; data lines decode
 *	until "end" (characters missing at the end of a line count as
 *	zero: mail systems strip trailing blanks); lines with characters
 *	outside the uuencode range are skipped (uu-bad-line). A line
 *	yields up to 63 bytes, so callers pass uuencoded input in slices
 *	of at most a 32nd of the output room.
 *
 *	7bit, 8bit, binary and unknown encodings copy the bytes.
 * LIMITS
 *	uuencode lines longer than MG_UU_LINE_MAX are malformed.
 * DIAGNOSTICS
 *	Input defects only, in d->defects; there are no errors.
 */
#include <string.h>

#include <glib.h>

#include "mime/mime_int.h"

#define B64_BAD  0xff
#define B64_SKIP 0xfe
#define B64_PAD  0xfd

static unsigned char b64_table[256];
static int b64_ready;

static void b64_init(void)
{
    static const char alphabet[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

    if (__atomic_load_n(&b64_ready, __ATOMIC_ACQUIRE))
        return;
    /* Idempotent: concurrent first calls write identical bytes. */
    for (int i = 0; i < 256; i++)
        b64_table[i] = B64_BAD;
    for (int i = 0; i < 64; i++)
        b64_table[(unsigned char)alphabet[i]] = (unsigned char)i;
    b64_table['\r'] = b64_table['\n'] = b64_table[' '] = b64_table['\t'] = B64_SKIP;
    b64_table['='] = B64_PAD;
    __atomic_store_n(&b64_ready, 1, __ATOMIC_RELEASE);
}

static void note(struct mg_dec *d, enum mg_mime_defect def, size_t at)
{
    uint64_t bit = (uint64_t)1 << def;

    if (!(d->defects & bit)) {
        d->defects |= bit;
        d->defect_at[def] = at;
    }
}

void mg_dec_init(struct mg_dec *d, enum mg_mime_cte cte)
{
    memset(d, 0, sizeof(*d));
    d->cte = cte;
    if (cte == MG_MIME_CTE_BASE64)
        b64_init();
}

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <tmmintrin.h>
#define HAVE_B64_SSSE3 1

/*
 * SSSE3: 16 alphabet characters to 12 bytes per step. Characters are
 * classified by range (A-Z, a-z, 0-9, '+', '/'); the first window with
 * anything else (a line end, padding, junk) stops the loop and the
 * scalar code goes on from there, so the result is exactly the
 * scalar one. Writes 16 bytes per step (4 beyond the 12 kept), which
 * the MG_DEC_SLACK room of the output covers.
 */
__attribute__((target("ssse3"))) static size_t b64_bulk_ssse3(const unsigned char *in, size_t len,
                                                              unsigned char *out, size_t *used)
{
    const __m128i pack_shuffle =
        _mm_setr_epi8(2, 1, 0, 6, 5, 4, 10, 9, 8, 14, 13, 12, -1, -1, -1, -1);
    size_t i = 0, o = 0;

    while (len - i >= 16) {
        __m128i v = _mm_loadu_si128((const __m128i *)(const void *)(in + i));
        __m128i upper = _mm_and_si128(_mm_cmpgt_epi8(v, _mm_set1_epi8('A' - 1)),
                                      _mm_cmplt_epi8(v, _mm_set1_epi8('Z' + 1)));
        __m128i lower = _mm_and_si128(_mm_cmpgt_epi8(v, _mm_set1_epi8('a' - 1)),
                                      _mm_cmplt_epi8(v, _mm_set1_epi8('z' + 1)));
        __m128i digit = _mm_and_si128(_mm_cmpgt_epi8(v, _mm_set1_epi8('0' - 1)),
                                      _mm_cmplt_epi8(v, _mm_set1_epi8('9' + 1)));
        __m128i plus = _mm_cmpeq_epi8(v, _mm_set1_epi8('+'));
        __m128i slash = _mm_cmpeq_epi8(v, _mm_set1_epi8('/'));
        __m128i valid = _mm_or_si128(_mm_or_si128(upper, lower),
                                     _mm_or_si128(digit, _mm_or_si128(plus, slash)));
        if (_mm_movemask_epi8(valid) != 0xffff)
            break;
        __m128i shift =
            _mm_or_si128(_mm_or_si128(_mm_and_si128(upper, _mm_set1_epi8(-65)),
                                      _mm_and_si128(lower, _mm_set1_epi8(-71))),
                         _mm_or_si128(_mm_and_si128(digit, _mm_set1_epi8(4)),
                                      _mm_or_si128(_mm_and_si128(plus, _mm_set1_epi8(19)),
                                                   _mm_and_si128(slash, _mm_set1_epi8(16)))));
        __m128i sextets = _mm_add_epi8(v, shift);
        /* a*64 + b and c*64 + d, then (a*64 + b) * 4096 + c*64 + d */
        __m128i pairs = _mm_maddubs_epi16(sextets, _mm_set1_epi32(0x01400140));
        __m128i quads = _mm_madd_epi16(pairs, _mm_set1_epi32(0x00011000));
        _mm_storeu_si128((__m128i *)(void *)(out + o), _mm_shuffle_epi8(quads, pack_shuffle));
        i += 16;
        o += 12;
    }
    *used = i;
    return o;
}

static int b64_simd = -1; /* -1 unknown, 0 no, 1 SSSE3 */

static bool b64_have_ssse3(void)
{
    int v = __atomic_load_n(&b64_simd, __ATOMIC_RELAXED);

    if (v < 0) {
        __builtin_cpu_init();
        v = __builtin_cpu_supports("ssse3") ? 1 : 0;
        __atomic_store_n(&b64_simd, v, __ATOMIC_RELAXED);
    }
    return v == 1;
}
#endif

/* base64 states: 0 decoding, 1 after padding (nothing seen since) */
static size_t b64_step(struct mg_dec *d, const unsigned char *in, size_t len, char *out)
{
    unsigned char *o = (unsigned char *)out;
    uint32_t acc = d->acc;
    unsigned n = d->n;
    size_t i = 0;

    while (i < len) {
        /* Fast path: four alphabet characters at a quantum boundary. */
        if (n == 0 && d->state == 0) {
#ifdef HAVE_B64_SSSE3
            if (len - i >= 16 && b64_have_ssse3()) {
                size_t used;
                o += b64_bulk_ssse3(in + i, len - i, o, &used);
                i += used;
            }
#endif
            while (i + 4 <= len) {
                unsigned a = b64_table[in[i]], b = b64_table[in[i + 1]];
                unsigned c = b64_table[in[i + 2]], e = b64_table[in[i + 3]];
                if ((a | b | c | e) & 0xc0)
                    break;
                uint32_t v = (a << 18) | (b << 12) | (c << 6) | e;
                o[0] = (unsigned char)(v >> 16);
                o[1] = (unsigned char)(v >> 8);
                o[2] = (unsigned char)v;
                o += 3;
                i += 4;
            }
            if (i >= len)
                break;
        }
        unsigned v = b64_table[in[i]];
        if (v < 64) {
            if (d->state == 1) {
                note(d, MG_MIME_DEFECT_BASE64_AFTER_END, i);
                d->state = 0;
            }
            acc = (acc << 6) | v;
            if (++n == 4) {
                o[0] = (unsigned char)(acc >> 16);
                o[1] = (unsigned char)(acc >> 8);
                o[2] = (unsigned char)acc;
                o += 3;
                n = 0;
                acc = 0;
            }
        } else if (v == B64_PAD) {
            /* '=' completes the quantum in hand. */
            if (n == 2) {
                *o++ = (unsigned char)(acc >> 4);
            } else if (n == 3) {
                *o++ = (unsigned char)(acc >> 10);
                *o++ = (unsigned char)(acc >> 2);
            } else if (n == 1) {
                note(d, MG_MIME_DEFECT_BASE64_PADDING, i);
            } else if (d->state != 1) {
                note(d, MG_MIME_DEFECT_BASE64_PADDING, i);
            }
            n = 0;
            acc = 0;
            d->state = 1;
        } else if (v == B64_BAD) {
            note(d, MG_MIME_DEFECT_BASE64_INVALID_CHAR, i);
        }
        i++;
    }
    d->acc = acc;
    d->n = n;
    return (size_t)((char *)o - out);
}

static size_t b64_flush(struct mg_dec *d, char *out)
{
    size_t w = 0;

    if (d->n == 2) {
        out[w++] = (char)(unsigned char)(d->acc >> 4);
    } else if (d->n == 3) {
        out[w++] = (char)(unsigned char)(d->acc >> 10);
        out[w++] = (char)(unsigned char)(d->acc >> 2);
    }
    if (d->n != 0)
        note(d, MG_MIME_DEFECT_BASE64_PADDING, 0);
    d->n = 0;
    d->acc = 0;
    return w;
}

int mg_hex_value(unsigned char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

/* qp states */
enum { QP_TEXT, QP_EQ, QP_HEX1, QP_EQ_CR, QP_EQ_WS };

/* Writes the literal form of a pending, invalid "=" sequence. */
static size_t qp_literal(struct mg_dec *d, char *o)
{
    size_t w = 0;

    o[w++] = '=';
    if (d->state == QP_HEX1)
        o[w++] = (char)d->acc;
    if (d->state == QP_EQ_WS) {
        memcpy(o + w, d->ws, d->n);
        w += d->n;
    }
    d->state = QP_TEXT;
    d->n = 0;
    return w;
}

static size_t qp_step(struct mg_dec *d, const unsigned char *in, size_t len, char *out)
{
    char *o = out;
    size_t i = 0;

    while (i < len) {
        unsigned char c = in[i];
        int h;

        switch (d->state) {
        case QP_TEXT:
            /* Plain bytes and complete "=XX" escapes without a state
             * change (Japanese UTF-8 text is nearly all escapes). */
            while (i < len) {
                unsigned char t = in[i];
                if (t != '=') {
                    *o++ = (char)t;
                    i++;
                    continue;
                }
                int hi, lo;
                if (i + 2 < len && (hi = mg_hex_value(in[i + 1])) >= 0 &&
                    (lo = mg_hex_value(in[i + 2])) >= 0) {
                    *o++ = (char)((hi << 4) | lo);
                    i += 3;
                    continue;
                }
                d->state = QP_EQ;
                i++;
                break;
            }
            continue;
        case QP_EQ:
            if ((h = mg_hex_value(c)) >= 0) {
                d->acc = c;
                d->state = QP_HEX1;
            } else if (c == '\n') {
                d->state = QP_TEXT;
            } else if (c == '\r') {
                d->state = QP_EQ_CR;
            } else if (c == ' ' || c == '\t') {
                d->ws[0] = (char)c;
                d->n = 1;
                d->state = QP_EQ_WS;
            } else {
                note(d, MG_MIME_DEFECT_QP_INVALID_ESCAPE, i);
                o += qp_literal(d, o);
                continue; /* reprocess c as text */
            }
            break;
        case QP_HEX1:
            if ((h = mg_hex_value(c)) >= 0) {
                *o++ = (char)((mg_hex_value((unsigned char)d->acc) << 4) | h);
                d->state = QP_TEXT;
            } else {
                note(d, MG_MIME_DEFECT_QP_INVALID_ESCAPE, i);
                o += qp_literal(d, o);
                continue;
            }
            break;
        case QP_EQ_CR:
            d->state = QP_TEXT;
            if (c != '\n')
                continue; /* CR-only soft break: c starts the next line */
            break;
        case QP_EQ_WS:
            if (c == ' ' || c == '\t') {
                if (d->n < MG_DEC_QP_WS_MAX) {
                    d->ws[d->n++] = (char)c;
                } else {
                    note(d, MG_MIME_DEFECT_QP_INVALID_ESCAPE, i);
                    o += qp_literal(d, o);
                    continue;
                }
            } else if (c == '\n') {
                d->state = QP_TEXT;
                d->n = 0;
            } else if (c == '\r') {
                d->state = QP_EQ_CR;
                d->n = 0;
            } else {
                note(d, MG_MIME_DEFECT_QP_INVALID_ESCAPE, i);
                o += qp_literal(d, o);
                continue;
            }
            break;
        default:
            d->state = QP_TEXT;
            break;
        }
        i++;
    }
    return (size_t)(o - out);
}

static size_t qp_flush(struct mg_dec *d, char *out)
{
    size_t w = 0;

    /* "=" (and blanks) at the very end: the line end that followed it
     * belonged to a delimiter, so it is a soft break. "=X" is not. */
    if (d->state == QP_HEX1) {
        note(d, MG_MIME_DEFECT_QP_INVALID_ESCAPE, 0);
        w = qp_literal(d, out);
    }
    d->state = QP_TEXT;
    d->n = 0;
    return w;
}

int mg_uu_is_begin(const char *line, size_t len, const char **name, size_t *name_len)
{
    size_t i = 6, digits = 0;

    if (len < 8 || memcmp(line, "begin ", 6) != 0)
        return 0;
    while (i < len && line[i] >= '0' && line[i] <= '7') {
        i++;
        digits++;
    }
    if (digits < 3 || digits > 4 || i >= len || line[i] != ' ')
        return 0;
    i++;
    while (len > i && (line[len - 1] == '\r' || line[len - 1] == ' ' || line[len - 1] == '\t'))
        len--;
    if (i >= len)
        return 0;
    *name = line + i;
    *name_len = len - i;
    return 1;
}

int mg_uu_is_end(const char *line, size_t len)
{
    while (len > 0 && (line[len - 1] == '\r' || line[len - 1] == ' ' || line[len - 1] == '\t'))
        len--;
    return len == 3 && memcmp(line, "end", 3) == 0;
}

static unsigned uu_val(char c)
{
    return ((unsigned)(unsigned char)c - 0x20) & 0x3f;
}

size_t mg_uu_decode_line(const char *line, size_t len, char *out, int *bad)
{
    size_t n, w = 0, i = 1;

    *bad = 0;
    /* Blanks are data (the digit 0); only a CR is a line end. */
    while (len > 0 && line[len - 1] == '\r')
        len--;
    if (len == 0)
        return 0;
    n = uu_val(line[0]);
    for (size_t k = 0; k < len; k++) {
        unsigned char c = (unsigned char)line[k];
        if (c < 0x20 || c > 0x60)
            *bad = 1;
    }
    if (*bad)
        return 0;
    /* Characters missing at the end were trailing blanks that a mail
     * system stripped: they count as zero, as uudecode does. */
    while (w < n) {
        unsigned v[4];
        for (size_t k = 0; k < 4; k++)
            v[k] = i + k < len ? uu_val(line[i + k]) : 0;
        i += 4;
        unsigned char b[3] = {(unsigned char)((v[0] << 2) | (v[1] >> 4)),
                              (unsigned char)((v[1] << 4) | (v[2] >> 2)),
                              (unsigned char)((v[2] << 6) | v[3])};
        for (size_t k = 0; k < 3 && w < n; k++)
            out[w++] = (char)b[k];
    }
    return w;
}

/* uu CTE states: 0 before begin, 1 in data, 2 after end. Text outside
 * a block is not decoded: a line that is not blank there is marked
 * uu-bad-line, so nothing disappears unnoticed; a second "begin" opens
 * the next block, whose bytes are appended. */
static bool uu_blank(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (s[i] != ' ' && s[i] != '\t' && s[i] != '\r')
            return false;
    }
    return true;
}

static size_t uu_line(struct mg_dec *d, size_t at, char *o)
{
    const char *name;
    size_t name_len, w = 0;
    int bad;

    if (d->state != 1) {
        if (mg_uu_is_begin(d->line, d->line_len, &name, &name_len))
            d->state = 1;
        else if (!uu_blank(d->line, d->line_len))
            note(d, MG_MIME_DEFECT_UU_BAD_LINE, at);
    } else if (mg_uu_is_end(d->line, d->line_len)) {
        d->state = 2;
    } else {
        w = mg_uu_decode_line(d->line, d->line_len, o, &bad);
        if (bad)
            note(d, MG_MIME_DEFECT_UU_BAD_LINE, at);
    }
    d->line_len = 0;
    return w;
}

static size_t uu_step(struct mg_dec *d, const char *in, size_t len, char *out)
{
    char *o = out;

    for (size_t i = 0; i < len; i++) {
        char c = in[i];
        if (c == '\n') {
            o += uu_line(d, i, o);
            continue;
        }
        if (d->line_len < MG_UU_LINE_MAX)
            d->line[d->line_len++] = c;
        else
            note(d, MG_MIME_DEFECT_UU_BAD_LINE, i);
    }
    return (size_t)(o - out);
}

size_t mg_dec_step(struct mg_dec *d, const char *in, size_t len, char *out)
{
    d->defects = 0;
    switch (d->cte) {
    case MG_MIME_CTE_BASE64:
        return b64_step(d, (const unsigned char *)in, len, out);
    case MG_MIME_CTE_QP:
        return qp_step(d, (const unsigned char *)in, len, out);
    case MG_MIME_CTE_UUENCODE:
        /* A uuencoded line decodes to fewer bytes than it has. */
        return uu_step(d, in, len, out);
    default:
        memcpy(out, in, len);
        return len;
    }
}

size_t mg_dec_flush(struct mg_dec *d, char *out)
{
    size_t w = 0;

    d->defects = 0;
    switch (d->cte) {
    case MG_MIME_CTE_BASE64:
        return b64_flush(d, out);
    case MG_MIME_CTE_QP:
        return qp_flush(d, out);
    case MG_MIME_CTE_UUENCODE:
        if (d->line_len > 0)
            w = uu_line(d, 0, out);
        if (d->state != 2)
            note(d, MG_MIME_DEFECT_UU_TRUNCATED, 0);
        return w;
    default:
        return 0;
    }
}
