/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * NAME
 *	mime_hdr 3
 * SUMMARY
 *	header field decoding: RFC 2047, RFC 2231, raw 8-bit, addresses
 * SYNOPSIS
 *	#include <mugaika/hdr.h>
 *
 *	char *mg_hdr_decode_text(const char *raw, size_t len, unsigned *defects);
 *	char *mg_hdr_decode_addresses(const char *raw, size_t len, unsigned *defects);
 *	char *mg_hdr_decode(const char *name, const char *raw, size_t len,
 *			    unsigned *defects);
 *	bool mg_hdr_parse_params(const char *raw, size_t len,
 *				 struct mg_hdr_params *out, unsigned *defects);
 *	const char *mg_hdr_params_get(const struct mg_hdr_params *p, const char *name);
 *	void mg_hdr_params_fini(struct mg_hdr_params *p);
 * DESCRIPTION
 *	Every function takes the raw field value (the bytes after the
 *	colon, folding included, NUL and 8-bit bytes allowed) and ORs
 *	the MG_HDR_DEF_* bits of what it found into *defects (which may
 *	be NULL; the caller clears it). Returned strings are valid UTF-8
 *	without NUL, CR or LF, owned by the caller (g_free).
 *
 *	Unfolding: a CR, LF or CRLF followed by a blank is removed (the
 *	blank stays); any other CR, LF or CRLF becomes one space. NUL
 *	bytes are dropped (MG_HDR_DEF_INVALID).
 *
 *	mg_hdr_decode_text() decodes unstructured text. Encoded words
 *	("=?charset[*lang]?B|Q?text?=") are recognised the way
 *	Thunderbird (jsmime) does: anywhere in the text, also glued to
 *	other text ("foo=?utf-8?q?bar?=" gives "foobar"), with blanks
 *	inside the encoded text tolerated (a folded long word). Blanks
 *	between two decoded words are dropped. Adjacent words of one
 *	charset are joined as bytes before conversion, so a character or
 *	an ISO-2022-JP escape state split across words decodes. B words
 *	may lack their padding. Words that are left literal: an encoding
 *	other than B or Q, base64 with a stray character or a single
 *	leftover sextet (MG_HDR_DEF_ENCWORD), and an unknown charset
 *	(MG_HDR_DEF_CHARSET). Leaving unknown-charset words literal is
 *	what Thunderbird shows (its decoder gives up on the token); a
 *	guess would show text the recipient's client never displays.
 *	A stray "=" in a Q word is kept. Raw text outside encoded words
 *	containing 8-bit bytes (MG_HDR_DEF_RAW8BIT) or ESC is decoded as
 *	UTF-8 when the whole value is valid UTF-8, else as the charset
 *	mg_charset_sniff() finds for the value (CP932, EUC-JP, 7-bit
 *	ISO-2022-JP, ...). CR or LF produced by decoding becomes a space.
 *	Leading and trailing blanks are removed.
 *
 *	mg_hdr_decode_addresses() parses an address list with a small
 *	lenient tokenizer and renders it as "Name <addr>, addr2, Group:
 *	m1, m2;". Display names are phrases: atoms, quoted strings
 *	(encoded words inside quotes are decoded, as MUAs do) and
 *	comments "(...)" outside the address; the phrase is decoded like
 *	text. A name is quoted in the output when it contains one of
 *	,;:<>@()[]\" (inner " and \ are escaped). With no phrase, the
 *	last comment is the name ("addr (Name)", "<addr> (Name)").
 *	Comments inside an address are dropped, blanks outside quoted
 *	local parts too. Broken lists are recovered from: unclosed
 *	angle brackets end at the next ',' or ';', a second "<" or a
 *	second bare address ("a@b c@d", missing comma) starts a new
 *	mailbox, words without address are kept as a name, an unclosed
 *	group is closed at the end, a ':' with no name before it is
 *	ignored.
 *
 *	mg_hdr_parse_params() parses "value; a=b; ...": value is the
 *	leading token, or "type/subtype" with blanks and comments around
 *	the '/' removed, lower-cased, as found otherwise ("test/",
 *	"name=value": the caller decides). Parameter names are
 *	lower-cased. Values are tokens or quoted strings (backslash
 *	escapes removed, inner blanks kept). Comments between items are
 *	skipped; a '(' inside a token is part of it. Missing semicolons
 *	are tolerated: "a=b c=d" is two parameters; an unquoted value
 *	followed by blanks and something that is not "name=" continues
 *	(blanks kept, MG_HDR_DEF_PARAM): '"name==?a?B?..?= =?a?B?..?='.
 *	An unquoted empty value, a name without '=' or a name that is
 *	not UTF-8 is skipped (MG_HDR_DEF_PARAM). RFC 2231: sections name*N / name*N* are
 *	joined in numeric order (a gap or a missing section 0 gives
 *	MG_HDR_DEF_RFC2231, the sections present are used); extended
 *	sections are %-decoded (a bad escape is kept literally with
 *	MG_HDR_DEF_RFC2231) and the joined bytes converted from the
 *	charset of the first section (unknown charset: sniffed, with
 *	MG_HDR_DEF_CHARSET); unencoded sections are joined as they are.
 *	name*= wins over name*N, which wins over name=. A parameter
 *	given twice keeps the first (MG_HDR_DEF_DUPPARAM). Values of
 *	"name" and "filename" that are not RFC 2231 encoded are decoded
 *	like text (RFC 2047 words, raw 8-bit). Other values keep their
 *	exact bytes, so a boundary matches the delimiter lines; such a
 *	value is not UTF-8 only when it holds raw 8-bit bytes that are
 *	not UTF-8 (MG_HDR_DEF_RAW8BIT is then set). The result is false
 *	when there is neither a value nor a parameter.
 *
 *	mg_hdr_decode() picks by field name: From, To, Cc, Bcc, Reply-To,
 *	Sender, Resent-* (but Resent-Date, Resent-Message-ID),
 *	Disposition-Notification-To, Mail-Followup-To and a few others
 *	are address lists; Content-Type and Content-Disposition are
 *	rendered 'value; name="decoded"' (every value quoted);
 *	Message-ID, References, In-Reply-To, Content-ID, Date, Received,
 *	Resent-Date, Resent-Message-ID and Return-Path are unfolded only
 *	(raw 8-bit made UTF-8, no RFC 2047); anything else is text.
 * LIMITS
 *	Time and memory are linear in the value length: the search for
 *	an encoded word stops at the third '?' after "=?", comments nest
 *	by counting, no recursion. At most 256 parameters are parsed
 *	(MG_HDR_DEF_PARAM beyond); RFC 2231 section numbers above 999
 *	are dropped (MG_HDR_DEF_RFC2231). Charset labels longer than 64
 *	bytes are unknown.
 * DIAGNOSTICS
 *	None: every problem is an MG_HDR_DEF_* bit. Memory exhaustion
 *	aborts (g_malloc).
 */
#include <stdbool.h>
#include <stddef.h>
#include <string.h>

#include <glib.h>

#include <mugaika/charset.h>
#include <mugaika/hdr.h>

#include "mime/mime_int.h"

#define LABEL_MAX   64  /* longer charset labels are treated as unknown */
#define PARAM_MAX   256 /* parameters parsed per field */
#define SECTION_MAX 999 /* highest RFC 2231 section number */

/* ---------------------------------------------------------------- */
/* small helpers                                                     */

static bool is_wsp(char c)
{
    return c == ' ' || c == '\t';
}

static bool is_lws(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

static bool all_lws(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (!is_lws(s[i]))
            return false;
    }
    return true;
}

/* Bytes that need a charset decision: 8-bit bytes and ESC. */
static bool needs_charset(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x80 || c == 0x1b)
            return true;
    }
    return false;
}

static void set_def(unsigned *def, unsigned bits)
{
    *def |= bits;
}

/* Unfolds raw into a new string (see DESCRIPTION). Owned by the caller. */
static GString *unfold(const char *raw, size_t len, unsigned *def)
{
    GString *u = g_string_sized_new(len + 1);
    size_t i = 0;

    while (i < len) {
        size_t j = i;
        while (j < len && raw[j] != '\r' && raw[j] != '\n' && raw[j] != '\0')
            j++;
        g_string_append_len(u, raw + i, (gssize)(j - i));
        if (j >= len)
            break;
        if (raw[j] == '\0') {
            set_def(def, MG_HDR_DEF_INVALID);
            i = j + 1;
            continue;
        }
        i = j + ((raw[j] == '\r' && j + 1 < len && raw[j + 1] == '\n') ? 2 : 1);
        if (i >= len || !is_wsp(raw[i]))
            g_string_append_c(u, ' ');
    }
    return u;
}

/* The charset for raw (unencoded) bytes of a value: NULL when none is
 * needed (7-bit without ESC), "utf-8" when the whole value is valid
 * UTF-8, else what the sniffer finds. Sets MG_HDR_DEF_RAW8BIT. */
static const char *raw_charset(const char *s, size_t n, unsigned *def)
{
    bool hi = false, esc = false;

    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x80)
            hi = true;
        else if (c == 0x1b)
            esc = true;
    }
    if (!hi && !esc)
        return NULL;
    if (hi) {
        set_def(def, MG_HDR_DEF_RAW8BIT);
        if (!esc && g_utf8_validate(s, (gssize)n, NULL))
            return "utf-8";
    }
    return mg_charset_sniff(s, n);
}

/* Appends raw bytes as UTF-8 using label (see raw_charset). */
static void emit_raw(const char *s, size_t n, const char *label, GString *out, unsigned *def)
{
    if (n == 0)
        return;
    if (label == NULL || !needs_charset(s, n)) {
        g_string_append_len(out, s, (gssize)n);
        return;
    }
    if (mg_charset_to_utf8(label, s, n, out) > 0)
        set_def(def, MG_HDR_DEF_INVALID);
}

/* Makes out a clean UTF-8 string (no NUL, CR, LF; valid), optionally
 * trimmed, ORs the defects into *defects and returns the string. */
static char *finish(GString *out, bool trim, unsigned def, unsigned *defects)
{
    size_t w = 0;

    for (size_t r = 0; r < out->len; r++) {
        char c = out->str[r];
        if (c == '\0') {
            def |= MG_HDR_DEF_INVALID;
            continue;
        }
        out->str[w++] = (c == '\r' || c == '\n') ? ' ' : c;
    }
    g_string_truncate(out, w);
    if (!g_utf8_validate(out->str, (gssize)out->len, NULL)) {
        char *v = g_utf8_make_valid(out->str, (gssize)out->len);
        g_string_assign(out, v);
        g_free(v);
        def |= MG_HDR_DEF_INVALID;
    }
    if (trim) {
        size_t a = 0, b = out->len;
        while (a < b && is_wsp(out->str[a]))
            a++;
        while (b > a && is_wsp(out->str[b - 1]))
            b--;
        g_string_truncate(out, b);
        g_string_erase(out, 0, (gssize)a);
    }
    if (defects != NULL)
        *defects |= def;
    return g_string_free(out, FALSE);
}

/* ---------------------------------------------------------------- */
/* RFC 2047 encoded words                                            */

struct ew {
    char label[LABEL_MAX + 1]; /* charset without "*lang"; "" when unusable */
    char enc;
    const char *text;
    size_t text_len;
};

/* s[0..1] is "=?". If s starts with the shape of an encoded word
 * (=?charset?X?text?= with no blank or control in charset, X not '?'
 * or blank, no '?' in text), fill w and return the word's length;
 * else return 0. Each scan stops at the next '?', which bounds the
 * work per "=?" to the distance to the third '?' after it. */
static size_t scan_ew(const char *s, size_t n, struct ew *w)
{
    size_t i = 2, k;

    while (i < n && s[i] != '?') {
        unsigned char c = (unsigned char)s[i];
        if (c <= ' ' || c == 0x7f)
            return 0;
        i++;
    }
    if (i == 2 || i + 2 >= n || s[i + 2] != '?' || s[i + 1] == '?' || is_lws(s[i + 1]))
        return 0;
    w->enc = s[i + 1];
    k = i + 3;
    while (k < n && s[k] != '?')
        k++;
    if (k + 1 >= n || s[k + 1] != '=')
        return 0;

    size_t cl = 0;
    while (2 + cl < i && s[2 + cl] != '*')
        cl++;
    if (cl == 0 || cl > LABEL_MAX) {
        w->label[0] = '\0';
    } else {
        memcpy(w->label, s + 2, cl);
        w->label[cl] = '\0';
    }
    w->text = s + i + 3;
    w->text_len = k - (i + 3);
    return k + 2;
}

static int b64_value(unsigned char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '+')
        return 62;
    if (c == '/')
        return 63;
    return -1;
}

/* Emits the bytes of a partial base64 quantum; false for a single
 * leftover sextet, which carries no whole byte. */
static bool b64_flush(guint32 *acc, int *have, GString *out)
{
    bool ok = true;

    if (*have == 1) {
        ok = false;
    } else if (*have == 2) {
        g_string_append_c(out, (char)((*acc >> 4) & 0xff));
    } else if (*have == 3) {
        g_string_append_c(out, (char)((*acc >> 10) & 0xff));
        g_string_append_c(out, (char)((*acc >> 2) & 0xff));
    }
    *acc = 0;
    *have = 0;
    return ok;
}

/* Base64 of a B word: blanks skipped, padding optional, '=' ends a
 * quantum. Appends to out; on failure out is left unchanged. */
static bool b64_decode(const char *t, size_t n, GString *out)
{
    size_t start = out->len;
    guint32 acc = 0;
    int have = 0;

    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)t[i];
        if (is_lws((char)c))
            continue;
        if (c == '=') {
            if (!b64_flush(&acc, &have, out))
                goto bad;
            continue;
        }
        int v = b64_value(c);
        if (v < 0)
            goto bad;
        acc = (acc << 6) | (guint32)v;
        if (++have == 4) {
            g_string_append_c(out, (char)((acc >> 16) & 0xff));
            g_string_append_c(out, (char)((acc >> 8) & 0xff));
            g_string_append_c(out, (char)(acc & 0xff));
            acc = 0;
            have = 0;
        }
    }
    if (b64_flush(&acc, &have, out))
        return true;
bad:
    g_string_truncate(out, start);
    return false;
}

/* Q encoding: '_' is a space, =XX a byte, anything else itself. */
static void q_decode(const char *t, size_t n, GString *out)
{
    for (size_t i = 0; i < n; i++) {
        int hi, lo;
        if (t[i] == '_') {
            g_string_append_c(out, ' ');
        } else if (t[i] == '=' && i + 2 < n && (hi = mg_hex_value((unsigned char)t[i + 1])) >= 0 &&
                   (lo = mg_hex_value((unsigned char)t[i + 2])) >= 0) {
            g_string_append_c(out, (char)(hi << 4 | lo));
            i += 2;
        } else {
            g_string_append_c(out, t[i]);
        }
    }
}

/* State for decoding the words of one value. */
struct wctx {
    unsigned *def;
    const char *raw_label; /* charset of unencoded bytes (raw_charset) */
    char last_label[LABEL_MAX + 1];
    const char *last_canon; /* cache: canonical name of last_label */
    bool have_last;
    GString *wbytes;    /* bytes of the word being decoded */
    GString *pbytes;    /* bytes of the run of words not yet converted */
    const char *pcanon; /* their charset; NULL when the run is empty */
};

static void wctx_init(struct wctx *c, unsigned *def, const char *raw_label)
{
    memset(c, 0, sizeof(*c));
    c->def = def;
    c->raw_label = raw_label;
    c->wbytes = g_string_new(NULL);
    c->pbytes = g_string_new(NULL);
}

static void wctx_fini(struct wctx *c)
{
    g_string_free(c->wbytes, TRUE);
    g_string_free(c->pbytes, TRUE);
}

static const char *word_canon(struct wctx *c, const struct ew *w)
{
    if (w->label[0] == '\0')
        return NULL;
    if (c->have_last && g_ascii_strcasecmp(c->last_label, w->label) == 0)
        return c->last_canon;
    c->last_canon = mg_charset_canon(w->label);
    memcpy(c->last_label, w->label, sizeof(c->last_label));
    c->have_last = true;
    return c->last_canon;
}

static void pend_flush(struct wctx *c, GString *out)
{
    if (c->pcanon == NULL)
        return;
    if (mg_charset_to_utf8(c->pcanon, c->pbytes->str, c->pbytes->len, out) > 0)
        set_def(c->def, MG_HDR_DEF_INVALID);
    g_string_truncate(c->pbytes, 0);
    c->pcanon = NULL;
}

/* Decodes one encoded word into c->wbytes; returns its charset, or
 * NULL (with a defect) when the word stays literal. */
static const char *decode_word(struct wctx *c, const struct ew *w)
{
    const char *canon;

    g_string_truncate(c->wbytes, 0);
    if (w->enc != 'B' && w->enc != 'b' && w->enc != 'Q' && w->enc != 'q') {
        set_def(c->def, MG_HDR_DEF_ENCWORD);
        return NULL;
    }
    canon = word_canon(c, w);
    if (canon == NULL) {
        set_def(c->def, MG_HDR_DEF_CHARSET);
        return NULL;
    }
    if (w->enc == 'Q' || w->enc == 'q') {
        q_decode(w->text, w->text_len, c->wbytes);
    } else if (!b64_decode(w->text, w->text_len, c->wbytes)) {
        set_def(c->def, MG_HDR_DEF_ENCWORD);
        return NULL;
    }
    return canon;
}

/* Appends the decoded form of s (unfolded) to out. */
static void decode_words(struct wctx *c, const char *s, size_t n, GString *out)
{
    size_t i = 0, lit = 0; /* lit: start of literal text not yet emitted */

    while (i + 1 < n) {
        const char *eq = memchr(s + i, '=', n - i - 1);
        struct ew w;
        size_t wl;
        const char *canon;

        if (eq == NULL)
            break;
        i = (size_t)(eq - s);
        if (s[i + 1] != '?' || (wl = scan_ew(s + i, n - i, &w)) == 0) {
            i++;
            continue;
        }
        canon = decode_word(c, &w);
        if (canon == NULL) {
            i += wl; /* literal: stays in the literal run */
            continue;
        }
        /* blanks between two decoded words vanish */
        if (c->pcanon == NULL || !all_lws(s + lit, i - lit)) {
            pend_flush(c, out);
            emit_raw(s + lit, i - lit, c->raw_label, out, c->def);
        }
        if (c->pcanon != NULL && strcmp(c->pcanon, canon) != 0)
            pend_flush(c, out);
        g_string_append_len(c->pbytes, c->wbytes->str, (gssize)c->wbytes->len);
        c->pcanon = canon;
        i += wl;
        lit = i;
    }
    pend_flush(c, out);
    emit_raw(s + lit, n - lit, c->raw_label, out, c->def);
}

char *mg_hdr_decode_text(const char *raw, size_t len, unsigned *defects)
{
    unsigned def = 0;
    GString *u = unfold(raw, len, &def);
    GString *out = g_string_sized_new(u->len + 16);
    struct wctx c;

    wctx_init(&c, &def, raw_charset(u->str, u->len, &def));
    decode_words(&c, u->str, u->len, out);
    wctx_fini(&c);
    g_string_free(u, TRUE);
    return finish(out, true, def, defects);
}

/* Unfolded, raw 8-bit made UTF-8, no RFC 2047 (Message-ID, Date, ...). */
static char *decode_raw(const char *raw, size_t len, unsigned *defects)
{
    unsigned def = 0;
    GString *u = unfold(raw, len, &def);
    GString *out = g_string_sized_new(u->len + 16);

    emit_raw(u->str, u->len, raw_charset(u->str, u->len, &def), out, &def);
    g_string_free(u, TRUE);
    return finish(out, true, def, defects);
}

/* ---------------------------------------------------------------- */
/* lexing shared by addresses and parameters                        */

/* At s[*i] == '(': skips a comment (nesting counted, backslash
 * escapes), appending its unescaped content to text when not NULL. */
static void lex_comment(const char *s, size_t n, size_t *i, GString *text)
{
    size_t depth = 0;
    size_t k = *i;

    for (; k < n; k++) {
        char c = s[k];
        if (c == '\\' && k + 1 < n) {
            if (text != NULL)
                g_string_append_c(text, s[k + 1]);
            k++;
            continue;
        }
        if (c == '(') {
            if (depth++ == 0)
                continue;
        } else if (c == ')') {
            if (--depth == 0) {
                k++;
                break;
            }
        }
        if (text != NULL)
            g_string_append_c(text, c);
    }
    *i = k;
}

/* At s[*i] == '"': reads a quoted string, appending its unescaped
 * content. Returns false when it is not closed. */
static bool lex_qstring(const char *s, size_t n, size_t *i, GString *text)
{
    size_t k = *i + 1;

    while (k < n && s[k] != '"') {
        size_t j = k;
        while (j < n && s[j] != '"' && s[j] != '\\')
            j++;
        g_string_append_len(text, s + k, (gssize)(j - k));
        k = j;
        if (k < n && s[k] == '\\') {
            if (k + 1 < n)
                g_string_append_c(text, s[k + 1]);
            k += 2;
        }
    }
    if (k >= n) {
        *i = n;
        return false;
    }
    *i = k + 1;
    return true;
}

/* Skips blanks and comments. */
static void skip_cfws(const char *s, size_t n, size_t *i)
{
    while (*i < n) {
        if (is_lws(s[*i]))
            (*i)++;
        else if (s[*i] == '(')
            lex_comment(s, n, i, NULL);
        else
            break;
    }
}

/* Appends s as a quoted string ('"' and '\\' escaped). */
static void append_quoted(GString *out, const char *s, size_t n)
{
    g_string_append_c(out, '"');
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '"' || s[i] == '\\')
            g_string_append_c(out, '\\');
        g_string_append_c(out, s[i]);
    }
    g_string_append_c(out, '"');
}

/* Appends s, quoted when it contains one of specials. */
static void append_maybe_quoted(GString *out, const char *s, size_t n, const char *specials)
{
    for (size_t i = 0; i < n; i++) {
        if (s[i] != '\0' && strchr(specials, s[i]) != NULL) {
            append_quoted(out, s, n);
            return;
        }
    }
    g_string_append_len(out, s, (gssize)n);
}

/* ---------------------------------------------------------------- */
/* address lists                                                     */

#define NAME_SPECIALS ",;:<>@()[]\\\""

enum tok_kind {
    TK_END,
    TK_WORD,    /* atom, dot-atom or domain literal */
    TK_QSTR,    /* quoted string, content unescaped */
    TK_COMMENT, /* comment, content unescaped */
    TK_SPECIAL, /* one of < > , ; : @ */
};

struct tok {
    enum tok_kind kind;
    char ch;        /* TK_SPECIAL */
    bool ws_before; /* blanks before the token */
    GString *text;
};

static bool addr_special(char c)
{
    return c == '(' || c == ')' || c == '<' || c == '>' || c == ',' || c == ';' || c == ':' ||
           c == '@' || c == '"';
}

static void lex_next(const char *s, size_t n, size_t *i, struct tok *t)
{
    size_t k = *i;

    g_string_truncate(t->text, 0);
    t->ws_before = false;
    while (k < n && is_lws(s[k])) {
        k++;
        t->ws_before = true;
    }
    if (k >= n) {
        t->kind = TK_END;
    } else if (s[k] == '(') {
        t->kind = TK_COMMENT;
        lex_comment(s, n, &k, t->text);
    } else if (s[k] == '"') {
        t->kind = TK_QSTR;
        lex_qstring(s, n, &k, t->text);
    } else if (s[k] == ')') {
        t->kind = TK_WORD; /* stray: literal */
        g_string_append_c(t->text, ')');
        k++;
    } else if (addr_special(s[k])) {
        t->kind = TK_SPECIAL;
        t->ch = s[k++];
    } else {
        bool lit = false; /* inside [domain literal]: blanks, ( ) and : allowed */
        size_t j = k;
        while (j < n &&
               (lit ? strchr(",;<>\"", s[j]) == NULL : !is_lws(s[j]) && !addr_special(s[j]))) {
            if (s[j] == '[')
                lit = true;
            else if (s[j] == ']')
                lit = false;
            j++;
        }
        t->kind = TK_WORD;
        g_string_append_len(t->text, s + k, (gssize)(j - k));
        k = j;
    }
    *i = k;
}

/* At s[*i] just after '<': reads an angle address into addr (blanks
 * and comments dropped, quoted strings kept quoted). Ends at '>', or
 * unclosed at ',' ';' (not consumed) unless in a source route. */
static void lex_angle(const char *s, size_t n, size_t *i, GString *addr)
{
    size_t k = *i;

    while (k < n) {
        char c = s[k];
        if (c == '>') {
            k++;
            break;
        }
        if (c == '"') {
            GString *q = g_string_new(NULL);
            lex_qstring(s, n, &k, q);
            append_quoted(addr, q->str, q->len);
            g_string_free(q, TRUE);
            continue;
        }
        if (c == '(') {
            lex_comment(s, n, &k, NULL);
            continue;
        }
        if ((c == ',' && (addr->len == 0 || addr->str[0] != '@')) || c == ';')
            break;
        if (!is_lws(c) && c != '<')
            g_string_append_c(addr, c);
        k++;
    }
    *i = k;
}

struct addr_parse {
    struct wctx *wc;
    GString *out;
    GString *phrase; /* display-name material, encoded words intact */
    GString *local;  /* the last run of words, as a local part */
    GString *addr;
    GString *comment; /* the last comment */
    GString *scratch;
    size_t mark_len; /* phrase length before the local run */
    unsigned mark_words;
    unsigned words; /* non-comment words in the phrase */
    bool angle;     /* an angle address was read */
    bool in_addr;   /* inside a bare addr-spec (after its '@') */
    bool addr_done; /* bare addr-spec ended by a blank */
    bool in_group, group_first, need_sep;
    enum tok_kind prev;
};

static void mailbox_reset(struct addr_parse *a)
{
    g_string_truncate(a->phrase, 0);
    g_string_truncate(a->local, 0);
    g_string_truncate(a->addr, 0);
    g_string_truncate(a->comment, 0);
    a->mark_len = 0;
    a->mark_words = 0;
    a->words = 0;
    a->angle = a->in_addr = a->addr_done = false;
    a->prev = TK_END;
}

/* The display name of the current mailbox, decoded, into scratch. */
static void mailbox_name(struct addr_parse *a)
{
    GString *src = a->words > 0 ? a->phrase : a->comment;

    g_string_truncate(a->scratch, 0);
    decode_words(a->wc, src->str, src->len, a->scratch);
    /* trim */
    size_t b = a->scratch->len, s = 0;
    while (b > 0 && is_lws(a->scratch->str[b - 1]))
        b--;
    while (s < b && is_lws(a->scratch->str[s]))
        s++;
    g_string_truncate(a->scratch, b);
    g_string_erase(a->scratch, 0, (gssize)s);
}

static void put_sep(struct addr_parse *a)
{
    if (a->in_group) {
        g_string_append(a->out, a->group_first ? " " : ", ");
        a->group_first = false;
    } else if (a->need_sep) {
        g_string_append(a->out, ", ");
    }
    a->need_sep = true;
}

static void mailbox_end(struct addr_parse *a)
{
    bool has_addr = (a->angle || a->in_addr || a->addr_done) && a->addr->len > 0;

    mailbox_name(a);
    if (has_addr || a->scratch->len > 0) {
        put_sep(a);
        if (a->scratch->len > 0)
            append_maybe_quoted(a->out, a->scratch->str, a->scratch->len, NAME_SPECIALS);
        if (has_addr) {
            if (a->scratch->len > 0)
                g_string_append(a->out, " <");
            emit_raw(a->addr->str, a->addr->len, a->wc->raw_label, a->out, a->wc->def);
            if (a->scratch->len > 0)
                g_string_append_c(a->out, '>');
        }
    }
    mailbox_reset(a);
}

static void group_close(struct addr_parse *a)
{
    if (!a->in_group)
        return;
    g_string_append_c(a->out, ';');
    a->in_group = false;
    a->need_sep = true;
}

/* "name:" opens a group; a ':' without a name is ignored. */
static void group_open(struct addr_parse *a)
{
    mailbox_name(a);
    if (a->scratch->len == 0)
        return;
    if (a->need_sep)
        g_string_append(a->out, ", ");
    append_maybe_quoted(a->out, a->scratch->str, a->scratch->len, NAME_SPECIALS);
    g_string_append_c(a->out, ':');
    a->in_group = true;
    a->group_first = true;
    a->need_sep = false;
    mailbox_reset(a);
}

/* A word of a local part: quoted strings keep their quotes. */
static void append_local_word(GString *dst, const struct tok *t)
{
    if (t->kind == TK_QSTR) {
        append_quoted(dst, t->text->str, t->text->len);
    } else {
        g_string_append_len(dst, t->text->str, (gssize)t->text->len);
    }
}

static bool ends_with(const GString *s, char c)
{
    return s->len > 0 && s->str[s->len - 1] == c;
}

static void phrase_add(struct addr_parse *a, const struct tok *t, bool is_comment)
{
    if (a->phrase->len > 0 && (t->ws_before || t->kind == TK_QSTR || a->prev == TK_QSTR ||
                               a->prev == TK_COMMENT || is_comment))
        g_string_append_c(a->phrase, ' ');
    if (is_comment) {
        g_string_append_c(a->phrase, '(');
        g_string_append_len(a->phrase, t->text->str, (gssize)t->text->len);
        g_string_append_c(a->phrase, ')');
    } else {
        g_string_append_len(a->phrase, t->text->str, (gssize)t->text->len);
        a->words++;
    }
}

static void addr_word(struct addr_parse *a, const struct tok *t)
{
    bool dot = t->text->len > 0 && t->text->str[0] == '.';

    if (a->in_addr) {
        if (!t->ws_before || dot || ends_with(a->addr, '.') || ends_with(a->addr, '@')) {
            append_local_word(a->addr, t);
            return;
        }
        a->in_addr = false; /* "addr words": the words are a name */
        a->addr_done = true;
    }
    if (!a->angle) {
        bool glue = a->local->len > 0 && (!t->ws_before || dot || ends_with(a->local, '.')) &&
                    a->prev != TK_COMMENT;
        if (a->local->len > 0 && a->prev == TK_COMMENT && (dot || ends_with(a->local, '.')))
            glue = true;
        if (!glue) {
            g_string_truncate(a->local, 0);
            a->mark_len = a->phrase->len;
            a->mark_words = a->words;
        }
        append_local_word(a->local, t);
    }
    phrase_add(a, t, false);
}

static void addr_at(struct addr_parse *a)
{
    if (a->angle)
        return;
    if (a->in_addr) {
        g_string_append_c(a->addr, '@');
        return;
    }
    if (a->addr_done) {
        /* "a@b c@d": a comma is missing; the words before the last run
         * are the first mailbox's name */
        char *run = g_strndup(a->local->str, a->local->len);
        g_string_truncate(a->phrase, a->mark_len);
        a->words = a->mark_words;
        mailbox_end(a);
        g_string_assign(a->local, run);
        g_free(run);
    }
    g_string_assign(a->addr, a->local->str);
    g_string_append_c(a->addr, '@');
    g_string_truncate(a->phrase, a->mark_len);
    a->words = a->mark_words;
    g_string_truncate(a->local, 0);
    a->in_addr = true;
}

static void addr_angle(struct addr_parse *a, const char *s, size_t n, size_t *i)
{
    if (a->angle)
        mailbox_end(a); /* "<a> <b>": two mailboxes */
    if (a->in_addr || a->addr_done) {
        /* "x@y <z>": what looked like the address is the name */
        if (a->phrase->len > 0)
            g_string_append_c(a->phrase, ' ');
        g_string_append_len(a->phrase, a->addr->str, (gssize)a->addr->len);
        a->words++;
        a->in_addr = a->addr_done = false;
    }
    g_string_truncate(a->addr, 0);
    lex_angle(s, n, i, a->addr);
    a->angle = true;
}

static void addr_special_tok(struct addr_parse *a, char ch, const char *s, size_t n, size_t *i)
{
    switch (ch) {
    case '@':
        addr_at(a);
        break;
    case '<':
        addr_angle(a, s, n, i);
        break;
    case '>':
        break;
    case ',':
        mailbox_end(a);
        break;
    case ';':
        mailbox_end(a);
        group_close(a);
        break;
    case ':':
        if (a->in_addr) {
            g_string_append_c(a->addr, ':');
        } else if (!a->angle && !a->addr_done) {
            group_close(a); /* a group inside an unclosed one */
            group_open(a);
        }
        break;
    default:
        break;
    }
}

char *mg_hdr_decode_addresses(const char *raw, size_t len, unsigned *defects)
{
    unsigned def = 0;
    GString *u = unfold(raw, len, &def);
    struct wctx wc;
    struct addr_parse a;
    struct tok t;
    size_t i = 0;

    wctx_init(&wc, &def, raw_charset(u->str, u->len, &def));
    memset(&a, 0, sizeof(a));
    a.wc = &wc;
    a.out = g_string_sized_new(u->len + 16);
    a.phrase = g_string_new(NULL);
    a.local = g_string_new(NULL);
    a.addr = g_string_new(NULL);
    a.comment = g_string_new(NULL);
    a.scratch = g_string_new(NULL);
    t.text = g_string_new(NULL);
    mailbox_reset(&a);

    for (;;) {
        lex_next(u->str, u->len, &i, &t);
        if (t.kind == TK_END)
            break;
        switch (t.kind) {
        case TK_WORD:
        case TK_QSTR:
            addr_word(&a, &t);
            break;
        case TK_COMMENT:
            g_string_assign(a.comment, t.text->str);
            if (!a.in_addr)
                phrase_add(&a, &t, true);
            break;
        case TK_SPECIAL:
            addr_special_tok(&a, t.ch, u->str, u->len, &i);
            break;
        case TK_END:
            break;
        }
        a.prev = t.kind;
    }
    mailbox_end(&a);
    group_close(&a);

    g_string_free(t.text, TRUE);
    g_string_free(a.phrase, TRUE);
    g_string_free(a.local, TRUE);
    g_string_free(a.addr, TRUE);
    g_string_free(a.comment, TRUE);
    g_string_free(a.scratch, TRUE);
    wctx_fini(&wc);
    g_string_free(u, TRUE);
    return finish(a.out, true, def, defects);
}

/* ---------------------------------------------------------------- */
/* parameters                                                        */

struct rparam {
    char *name;     /* lower-case base name */
    int section;    /* RFC 2231 section, -1 when none */
    bool ext;       /* extended value: charset'lang'%XX */
    GString *value; /* unquoted bytes */
    bool used;
};

/* Leading value: token, or token "/" token with CFWS around '/'. */
static void parse_leading(const char *s, size_t n, size_t *i, GString *v)
{
    size_t k = *i, a;

    skip_cfws(s, n, &k);
    a = k;
    while (k < n && !is_lws(s[k]) && s[k] != ';' && s[k] != '(' && s[k] != '/' && s[k] != '"')
        k++;
    g_string_append_len(v, s + a, (gssize)(k - a));
    size_t save = k;
    skip_cfws(s, n, &k);
    if (k < n && s[k] == '/') {
        k++;
        skip_cfws(s, n, &k);
        a = k;
        while (k < n && !is_lws(s[k]) && s[k] != ';' && s[k] != '(' && s[k] != '"')
            k++;
        g_string_append_c(v, '/');
        g_string_append_len(v, s + a, (gssize)(k - a));
    } else {
        k = save;
    }
    *i = k;
}

static bool pname_char(char c)
{
    return !is_lws(c) && c != ';' && c != '=' && c != '(' && c != '"';
}

/* Does s[k..] look like "name =" ? */
static bool looks_like_param(const char *s, size_t n, size_t k)
{
    size_t a = k;

    while (k < n && pname_char(s[k]))
        k++;
    if (k == a)
        return false;
    while (k < n && is_lws(s[k]))
        k++;
    return k < n && s[k] == '=';
}

/* Skips to the next ';' outside quotes (not consumed). */
static void skip_to_semicolon(const char *s, size_t n, size_t *i)
{
    GString *junk = g_string_new(NULL);
    size_t k = *i;

    while (k < n && s[k] != ';') {
        if (s[k] == '"') {
            lex_qstring(s, n, &k, junk);
            g_string_truncate(junk, 0);
        } else {
            k++;
        }
    }
    g_string_free(junk, TRUE);
    *i = k;
}

/* Parses a parameter value at s[*i] into v; returns false for an
 * unquoted empty value. */
static bool parse_pvalue(const char *s, size_t n, size_t *i, GString *v, unsigned *def)
{
    size_t k = *i, a;

    if (k < n && s[k] == '"') {
        if (!lex_qstring(s, n, &k, v))
            set_def(def, MG_HDR_DEF_PARAM);
        *i = k;
        return true;
    }
    a = k;
    while (k < n && !is_lws(s[k]) && s[k] != ';')
        k++;
    if (k == a) {
        *i = k;
        return false;
    }
    /* an unquoted value with blanks: "=?..?= =?..?=" */
    for (;;) {
        size_t j = k;
        while (j < n && is_lws(s[j]))
            j++;
        if (j == k || j >= n || s[j] == ';' || s[j] == '(' || s[j] == '"' ||
            looks_like_param(s, n, j))
            break;
        set_def(def, MG_HDR_DEF_PARAM);
        while (j < n && !is_lws(s[j]) && s[j] != ';')
            j++;
        k = j;
    }
    g_string_append_len(v, s + a, (gssize)(k - a));
    *i = k;
    return true;
}

/* Splits "base[*N][*]" (lower-cased in place). False when malformed. */
static bool split_pname(char *name, int *section, bool *ext)
{
    size_t l = strlen(name);
    char *star;

    *section = -1;
    *ext = false;
    if (l > 0 && name[l - 1] == '*') {
        *ext = true;
        name[--l] = '\0';
    }
    star = strchr(name, '*');
    if (star != NULL) {
        size_t dl = strlen(star + 1);
        if (dl == 0 || dl > 3 || strspn(star + 1, "0123456789") != dl)
            return false;
        int v = 0;
        for (size_t j = 0; j < dl; j++)
            v = v * 10 + (star[1 + j] - '0');
        if (v > SECTION_MAX)
            return false;
        *section = v;
        *star = '\0';
    }
    return name[0] != '\0';
}

static void rparams_free(GArray *raw)
{
    for (guint i = 0; i < raw->len; i++) {
        struct rparam *r = &g_array_index(raw, struct rparam, i);
        g_free(r->name);
        g_string_free(r->value, TRUE);
    }
    g_array_free(raw, TRUE);
}

/* Reads all name=value items after the leading value. */
static GArray *parse_raw_params(const char *s, size_t n, size_t i, unsigned *def)
{
    GArray *raw = g_array_new(FALSE, FALSE, sizeof(struct rparam));
    bool semi = false; /* a ';' since the last item */

    for (;;) {
        size_t a;
        skip_cfws(s, n, &i);
        if (i < n && s[i] == ';') {
            semi = true;
            i++;
            continue;
        }
        if (i >= n)
            break;
        if (raw->len >= PARAM_MAX) {
            set_def(def, MG_HDR_DEF_PARAM);
            break;
        }
        if (!semi)
            set_def(def, MG_HDR_DEF_PARAM); /* missing ';' */
        semi = false;
        a = i;
        while (i < n && pname_char(s[i]))
            i++;
        size_t nl = i - a, j = i;
        if (nl == 0) {
            set_def(def, MG_HDR_DEF_PARAM); /* "= x", "\"x\"": junk */
            skip_to_semicolon(s, n, &i);
            continue;
        }
        skip_cfws(s, n, &j);
        if (j >= n || s[j] != '=') {
            set_def(def, MG_HDR_DEF_PARAM);
            i = j;
            if (i < n && s[i] != ';' && looks_like_param(s, n, i))
                continue; /* "junk name=value": resync on the name */
            skip_to_semicolon(s, n, &i);
            continue;
        }
        i = j + 1;
        skip_cfws(s, n, &i);

        struct rparam r = {.section = -1};
        r.name = g_ascii_strdown(s + a, (gssize)nl);
        bool star = strchr(r.name, '*') != NULL;
        /* a name that is not UTF-8 could not be looked up: dropped */
        bool name_ok = g_utf8_validate(r.name, -1, NULL) && split_pname(r.name, &r.section, &r.ext);
        r.value = g_string_new(NULL);
        bool value_ok = parse_pvalue(s, n, &i, r.value, def);
        if (!name_ok || !value_ok) {
            set_def(def, !name_ok && star ? MG_HDR_DEF_RFC2231 : MG_HDR_DEF_PARAM);
            g_free(r.name);
            g_string_free(r.value, TRUE);
            continue;
        }
        g_array_append_val(raw, r);
    }
    return raw;
}

/* %-decodes an extended value; a bad escape stays literal. */
static void pct_decode(const char *s, size_t n, GString *out, unsigned *def)
{
    for (size_t i = 0; i < n; i++) {
        int hi, lo;
        if (s[i] == '%') {
            if (i + 2 < n && (hi = mg_hex_value((unsigned char)s[i + 1])) >= 0 &&
                (lo = mg_hex_value((unsigned char)s[i + 2])) >= 0) {
                g_string_append_c(out, (char)(hi << 4 | lo));
                i += 2;
                continue;
            }
            set_def(def, MG_HDR_DEF_RFC2231);
        }
        g_string_append_c(out, s[i]);
    }
}

/* Decodes a simple (not RFC 2231 encoded) value. */
static char *simple_value(const char *name, const GString *v, unsigned *def)
{
    GString *out;

    if (strcmp(name, "name") == 0 || strcmp(name, "filename") == 0) {
        struct wctx c;
        out = g_string_sized_new(v->len + 8);
        wctx_init(&c, def, raw_charset(v->str, v->len, def));
        decode_words(&c, v->str, v->len, out);
        wctx_fini(&c);
        unsigned d = 0;
        char *r = finish(out, false, 0, &d);
        set_def(def, d);
        return r;
    }
    (void)raw_charset(v->str, v->len, def); /* RAW8BIT only; bytes kept */
    return g_strndup(v->str, v->len);
}

static int cmp_section(gconstpointer a, gconstpointer b)
{
    const struct rparam *x = *(struct rparam *const *)a, *y = *(struct rparam *const *)b;

    if (x->section != y->section)
        return x->section < y->section ? -1 : 1;
    return x < y ? -1 : (x > y);
}

/* Joins RFC 2231 sections (already sorted, duplicates removed). */
static char *join_sections(const char *name, GPtrArray *secs, unsigned *def)
{
    GString *bytes = g_string_new(NULL);
    char *label = NULL;
    bool any_ext = false;
    char *res;

    for (guint j = 0; j < secs->len; j++) {
        const struct rparam *r = g_ptr_array_index(secs, j);
        const char *p = r->value->str;
        size_t l = r->value->len;
        if (!r->ext) {
            g_string_append_len(bytes, p, (gssize)l);
            continue;
        }
        if (j == 0) {
            const char *q1 = memchr(p, '\'', l);
            const char *q2 = q1 ? memchr(q1 + 1, '\'', l - (size_t)(q1 + 1 - p)) : NULL;
            if (q2 != NULL) {
                label = g_strndup(p, (size_t)(q1 - p));
                l -= (size_t)(q2 + 1 - p);
                p = q2 + 1;
            } else {
                set_def(def, MG_HDR_DEF_RFC2231);
            }
        }
        any_ext = true;
        pct_decode(p, l, bytes, def);
    }
    if (!any_ext) {
        res = simple_value(name, bytes, def);
    } else {
        GString *out = g_string_sized_new(bytes->len + 8);
        const char *canon = NULL;
        if (label != NULL && label[0] != '\0') {
            canon = mg_charset_canon(label);
            if (canon == NULL)
                set_def(def, MG_HDR_DEF_CHARSET);
        }
        if (canon == NULL && !needs_charset(bytes->str, bytes->len))
            canon = "us-ascii";
        if (mg_charset_to_utf8(canon, bytes->str, bytes->len, out) > 0)
            set_def(def, MG_HDR_DEF_INVALID);
        unsigned d = 0;
        res = finish(out, false, 0, &d);
        set_def(def, d);
    }
    g_free(label);
    g_string_free(bytes, TRUE);
    return res;
}

/* Builds the final value of parameter raw[i]'s base name. */
static char *assemble(GArray *raw, guint first, unsigned *def)
{
    const char *name = g_array_index(raw, struct rparam, first).name;
    struct rparam *simple = NULL, *star = NULL;
    GPtrArray *secs = g_ptr_array_new();
    char *res;

    for (guint i = first; i < raw->len; i++) {
        struct rparam *r = &g_array_index(raw, struct rparam, i);
        if (r->used || strcmp(r->name, name) != 0)
            continue;
        r->used = true;
        if (r->section >= 0) {
            g_ptr_array_add(secs, r);
        } else if (r->ext) {
            if (star != NULL)
                set_def(def, MG_HDR_DEF_DUPPARAM);
            else
                star = r;
        } else {
            if (simple != NULL)
                set_def(def, MG_HDR_DEF_DUPPARAM);
            else
                simple = r;
        }
    }
    if (star != NULL) {
        g_ptr_array_set_size(secs, 0);
        g_ptr_array_add(secs, star);
        star->section = 0;
    } else if (secs->len > 0) {
        g_ptr_array_sort(secs, cmp_section);
        guint w = 0;
        int expect = 0;
        for (guint j = 0; j < secs->len; j++) {
            struct rparam *r = g_ptr_array_index(secs, j);
            if (w > 0 && ((struct rparam *)g_ptr_array_index(secs, w - 1))->section == r->section) {
                set_def(def, MG_HDR_DEF_DUPPARAM);
                continue;
            }
            if (r->section != expect)
                set_def(def, MG_HDR_DEF_RFC2231);
            expect = r->section + 1;
            g_ptr_array_index(secs, w++) = r;
        }
        g_ptr_array_set_size(secs, (gint)w);
    }
    if (secs->len > 0)
        res = join_sections(name, secs, def);
    else if (simple != NULL)
        res = simple_value(name, simple->value, def);
    else
        res = g_strdup(""); /* not reached: raw[first] is one of them */
    g_ptr_array_free(secs, TRUE);
    return res;
}

bool mg_hdr_parse_params(const char *raw, size_t len, struct mg_hdr_params *out, unsigned *defects)
{
    unsigned def = 0;
    GString *u = unfold(raw, len, &def);
    GString *v = g_string_new(NULL);
    size_t i = 0;
    GArray *rp;

    out->params = g_array_new(FALSE, FALSE, sizeof(struct mg_hdr_param));
    parse_leading(u->str, u->len, &i, v);
    {
        GString *lv = g_string_sized_new(v->len + 8);
        emit_raw(v->str, v->len, raw_charset(v->str, v->len, &def), lv, &def);
        unsigned d = 0;
        char *s = finish(lv, false, 0, &d);
        def |= d;
        out->value = g_ascii_strdown(s, -1);
        g_free(s);
    }
    g_string_free(v, TRUE);

    rp = parse_raw_params(u->str, u->len, i, &def);
    for (guint k = 0; k < rp->len; k++) {
        struct rparam *r = &g_array_index(rp, struct rparam, k);
        if (r->used)
            continue;
        struct mg_hdr_param p;
        p.name = g_strdup(r->name);
        p.value = assemble(rp, k, &def);
        g_array_append_val(out->params, p);
    }
    rparams_free(rp);
    g_string_free(u, TRUE);
    if (defects != NULL)
        *defects |= def;
    return out->value[0] != '\0' || out->params->len > 0;
}

const char *mg_hdr_params_get(const struct mg_hdr_params *p, const char *name)
{
    if (p == NULL || p->params == NULL || name == NULL)
        return NULL;
    for (guint i = 0; i < p->params->len; i++) {
        const struct mg_hdr_param *q = &g_array_index(p->params, struct mg_hdr_param, i);
        if (g_ascii_strcasecmp(q->name, name) == 0)
            return q->value;
    }
    return NULL;
}

void mg_hdr_params_fini(struct mg_hdr_params *p)
{
    if (p == NULL)
        return;
    if (p->params != NULL) {
        for (guint i = 0; i < p->params->len; i++) {
            struct mg_hdr_param *q = &g_array_index(p->params, struct mg_hdr_param, i);
            g_free(q->name);
            g_free(q->value);
        }
        g_array_free(p->params, TRUE);
    }
    g_free(p->value);
    p->params = NULL;
    p->value = NULL;
}

/* ---------------------------------------------------------------- */
/* by field name                                                     */

enum field_kind { FK_TEXT, FK_ADDR, FK_PARAMS, FK_RAW };

static enum field_kind field_kind(const char *name)
{
    static const char *const addr[] = {
        "from",
        "to",
        "cc",
        "bcc",
        "reply-to",
        "sender",
        "disposition-notification-to",
        "mail-followup-to",
        "mail-reply-to",
        "errors-to",
        "return-receipt-to",
        "apparently-to",
    };
    static const char *const raw[] = {
        "message-id", "references",  "in-reply-to",       "content-id",  "date",
        "received",   "resent-date", "resent-message-id", "return-path",
    };

    if (name == NULL)
        return FK_TEXT;
    for (size_t i = 0; i < G_N_ELEMENTS(raw); i++) {
        if (g_ascii_strcasecmp(name, raw[i]) == 0)
            return FK_RAW;
    }
    for (size_t i = 0; i < G_N_ELEMENTS(addr); i++) {
        if (g_ascii_strcasecmp(name, addr[i]) == 0)
            return FK_ADDR;
    }
    if (g_ascii_strncasecmp(name, "resent-", 7) == 0)
        return FK_ADDR;
    if (g_ascii_strcasecmp(name, "content-type") == 0 ||
        g_ascii_strcasecmp(name, "content-disposition") == 0)
        return FK_PARAMS;
    return FK_TEXT;
}

/* 'value; name="v"; ...' with every value made UTF-8 and quoted. */
static char *render_params(const char *raw, size_t len, unsigned *defects)
{
    struct mg_hdr_params p;
    unsigned def = 0;
    GString *out = g_string_new(NULL);

    mg_hdr_parse_params(raw, len, &p, &def);
    g_string_append(out, p.value);
    for (guint i = 0; i < p.params->len; i++) {
        const struct mg_hdr_param *q = &g_array_index(p.params, struct mg_hdr_param, i);
        size_t vl = strlen(q->value);
        GString *v = g_string_new(NULL);
        if (g_utf8_validate(q->value, (gssize)vl, NULL))
            g_string_append_len(v, q->value, (gssize)vl);
        else if (mg_charset_to_utf8(NULL, q->value, vl, v) > 0)
            def |= MG_HDR_DEF_INVALID;
        if (out->len > 0)
            g_string_append(out, "; ");
        g_string_append(out, q->name);
        g_string_append(out, "=\"");
        for (size_t k = 0; k < v->len; k++) {
            if (v->str[k] == '"' || v->str[k] == '\\')
                g_string_append_c(out, '\\');
            g_string_append_c(out, v->str[k]);
        }
        g_string_append_c(out, '"');
        g_string_free(v, TRUE);
    }
    mg_hdr_params_fini(&p);
    return finish(out, true, def, defects);
}

/* The common case (Received, DKIM-Signature, Date, plain subjects):
 * printable ASCII with no encoded word needs only unfolding and
 * trimming. Returns NULL when the value needs the full decoder. */
static char *plain_value(const char *raw, size_t len)
{
    char *out = g_malloc(len + 1);
    size_t w = 0, i = 0, a = 0;

    while (i < len) {
        unsigned char c = (unsigned char)raw[i];
        if (c >= 0x20 && c < 0x7f) {
            if (c == '=' && i + 1 < len && raw[i + 1] == '?')
                goto full;
            out[w++] = (char)c;
            i++;
        } else if (c == '\t') {
            out[w++] = (char)c;
            i++;
        } else if (c == '\r' || c == '\n') {
            i += (c == '\r' && i + 1 < len && raw[i + 1] == '\n') ? 2 : 1;
            if (i >= len || !is_wsp(raw[i]))
                out[w++] = ' ';
        } else {
            goto full;
        }
    }
    while (w > 0 && is_wsp(out[w - 1]))
        w--;
    while (a < w && is_wsp(out[a]))
        a++;
    memmove(out, out + a, w - a);
    out[w - a] = '\0';
    return out;
full:
    g_free(out);
    return NULL;
}

char *mg_hdr_decode(const char *name, const char *raw, size_t len, unsigned *defects)
{
    enum field_kind kind = field_kind(name);
    char *fast;

    if ((kind == FK_TEXT || kind == FK_RAW) && (fast = plain_value(raw, len)) != NULL)
        return fast;
    switch (kind) {
    case FK_ADDR:
        return mg_hdr_decode_addresses(raw, len, defects);
    case FK_PARAMS:
        return render_params(raw, len, defects);
    case FK_RAW:
        return decode_raw(raw, len, defects);
    case FK_TEXT:
        break;
    }
    return mg_hdr_decode_text(raw, len, defects);
}
