/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * NAME
 *	charset 3
 * SUMMARY
 *	any charset to UTF-8, Japanese first-class
 * SYNOPSIS
 *	#include <mugaika/charset.h>
 *
 *	const char *mg_charset_canon(const char *label);
 *	const char *mg_charset_sniff(const void *buf, size_t len);
 *	size_t mg_charset_to_utf8(const char *label, const void *buf, size_t len,
 *				GString *out);
 *
 *	struct mg_charset_conv *mg_charset_conv_new(const char *label);
 *	void mg_charset_conv_feed(struct mg_charset_conv *c, const void *buf,
 *				size_t len, GString *out);
 *	void mg_charset_conv_finish(struct mg_charset_conv *c, GString *out);
 *	const char *mg_charset_conv_name(const struct mg_charset_conv *c);
 *	size_t mg_charset_conv_replacements(const struct mg_charset_conv *c);
 *	struct mg_charset_conv *mg_charset_conv_free(struct mg_charset_conv *c);
 * DESCRIPTION
 *	This module turns text in any MIME charset into UTF-8. Invalid input
 *	becomes U+FFFD (counted); nothing after it is lost.
 *
 *	mg_charset_canon() maps a label (any case; blanks, quotes and an
 *	RFC 2231 "*lang" suffix are ignored) to the canonical name of the
 *	converter that will be used, or NULL when there is none (unknown
 *	labels, "x-unknown", "unknown-8bit", ...). The result is static and
 *	interned (one pointer per name):
 *	"us-ascii", "utf-8", "iso-2022-jp", "cp932" (all Shift_JIS labels),
 *	"euc-jp" (decoded as eucJP-ms), "windows-1252" (also for ISO-8859-1
 *	labels, as every browser does), "gb18030" (GB2312 and GBK labels),
 *	"cp949" (EUC-KR labels), "utf-16"/"utf-32" (byte order from the
 *	BOM), and otherwise the lower-cased name glibc iconv accepts.
 *
 *	mg_charset_sniff() guesses the charset of unlabelled bytes: pure
 *	7-bit text is "us-ascii", or "iso-2022-jp" when it holds a JIS
 *	designation; valid (or almost valid) UTF-8 is "utf-8"; otherwise the
 *	bytes are scored as CP932, as EUC-JP and as windows-1252, and the
 *	best reading wins. The result is static.
 *
 *	mg_charset_to_utf8() appends the UTF-8 form of buf to out and returns
 *	the number of U+FFFD it inserted. It is exactly one feed and one
 *	finish of a streaming converter, so both give the same bytes.
 *
 *	mg_charset_conv_new() returns a converter owned by the caller; free
 *	it with mg_charset_conv_free() (NULL is accepted; returns NULL).
 *	mg_charset_conv_feed() appends to out the UTF-8 for as much input as
 *	can be decided; the rest is kept in the converter (an escape sequence
 *	or character split between calls, or the sniff window below). The
 *	converter keeps no pointer to buf. mg_charset_conv_finish() flushes
 *	everything, turning an incomplete trailing sequence into U+FFFD; feed
 *	it nothing afterwards. mg_charset_conv_name() returns the canonical
 *	name in use (static), or NULL while undecided.
 *
 *	Labels that the bytes may contradict (none, unknown, us-ascii,
 *	iso-2022-jp, utf-8) are decoded optimistically: leading 7-bit text
 *	other than ESC, SO and SI is passed on at once, since it means the
 *	same in every candidate. From the first other byte, a window of up
 *	to 64 KiB is held back and sniffed, so the decision depends on the
 *	bytes only, never on the chunking. An iso-2022-jp label stands
 *	unless the window has 8-bit bytes other than JIS8 katakana; a utf-8
 *	label stands while at least half of the window's multi-byte
 *	sequences are valid and no Japanese reading has fewer errors; 7-bit
 *	text with a JIS designation is ISO-2022-JP whatever the label says.
 *	A window sniffed as plain ASCII is passed on and the optimistic
 *	state starts again. Other labels are trusted.
 *
 *	A leading byte order mark is dropped from UTF-8, UTF-16, UTF-32 and
 *	UTF-7 input. "utf-16" and "utf-32" take the byte order from the BOM,
 *	else from the position of a zero byte, else big endian. After an
 *	invalid UTF-16/32 code unit the whole unit is skipped.
 *
 *	ISO-2022-JP is decoded by a state machine written here. It follows
 *	the Microsoft CP50220/50221/50222 behaviour: JIS X 0208 row/cell
 *	codes go through CP932 (so NEC row 13 and the NEC-selected IBM rows
 *	89-92 decode), ESC ( J is treated as ASCII, ESC ( I and SO/SI give
 *	half-width katakana, and 8-bit 0xA1-0xDF bytes are half-width
 *	katakana (JIS8). Also decoded: JIS X 0212 (ESC $ ( D), JIS X 0213
 *	(ESC $ ( O/Q/P) and the ISO-2022-JP-2 sets (ESC $ A, ESC $ ( C, G2
 *	ESC . A / ESC . F with ESC N). Line ends do not reset the state.
 *	Each double-byte set is a 94x94 table of UTF-8 strings built once
 *	(g_once) by decoding every code with glibc iconv.
 * LIMITS
 *	At most 64 KiB of input are held back while sniffing; apart from the
 *	lazily built tables (up to about 70 KiB each, shared by all threads)
 *	a converter uses a fixed small amount of memory.
 *	EUC-JP rows 89-92 decode as eucJP-ms user-defined characters (PUA),
 *	not as the IBM extensions Microsoft's CP51932 puts there.
 *	Sniffing cannot tell apart inputs that are valid and typical in two
 *	readings, e.g. a few half-width katakana only.
 * DIAGNOSTICS
 *	None: every input yields output. Replacements are counted.
 */
#include <errno.h>
#include <iconv.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include <glib.h>
#include <mugaika/charset.h>

#define SNIFF_WINDOW (64 * 1024) /* bytes held back to decide a contradicted label */
#define CARRY_MAX    16          /* longest incomplete sequence kept between feeds */
#define LABEL_MAX    64          /* longest charset label considered */

#define ESC 0x1b
#define SO  0x0e
#define SI  0x0f

static const char repl_utf8[] = "\xef\xbf\xbd";

static const char cs_ascii[] = "us-ascii";
static const char cs_utf8[] = "utf-8";
static const char cs_jis[] = "iso-2022-jp";
static const char cs_cp932[] = "cp932";
static const char cs_eucjp[] = "euc-jp";
static const char cs_1252[] = "windows-1252";
static const char cs_1254[] = "windows-1254";
static const char cs_874[] = "windows-874";
static const char cs_gb18030[] = "gb18030";
static const char cs_big5[] = "big5";
static const char cs_big5hk[] = "big5-hkscs";
static const char cs_cp949[] = "cp949";
static const char cs_koi8r[] = "koi8-r";
static const char cs_koi8u[] = "koi8-u";
static const char cs_utf16[] = "utf-16";
static const char cs_utf16le[] = "utf-16le";
static const char cs_utf16be[] = "utf-16be";
static const char cs_utf32[] = "utf-32";
static const char cs_utf32le[] = "utf-32le";
static const char cs_utf32be[] = "utf-32be";
static const char cs_utf7[] = "utf-7";

/*
 * Label aliases
 */

struct alias {
    const char *label;
    const char *canon; /* NULL: no converter, sniff */
};

static const struct alias aliases[] = {
    {"us-ascii", cs_ascii},
    {"ascii", cs_ascii},
    {"us", cs_ascii},
    {"ansi_x3.4-1968", cs_ascii},
    {"ansi_x3.4-1986", cs_ascii},
    {"iso646-us", cs_ascii},
    {"iso_646.irv:1991", cs_ascii},
    {"iso-ir-6", cs_ascii},
    {"cp367", cs_ascii},
    {"ibm367", cs_ascii},
    {"csascii", cs_ascii},
    {"646", cs_ascii},
    {"utf-8", cs_utf8},
    {"utf8", cs_utf8},
    {"x-utf-8", cs_utf8},
    {"x-utf8", cs_utf8},
    {"unicode-1-1-utf-8", cs_utf8},
    {"unicode-2-0-utf-8", cs_utf8},
    {"x-unicode20utf8", cs_utf8},
    {"iso-2022-jp", cs_jis},
    {"iso2022jp", cs_jis},
    {"iso2022-jp", cs_jis},
    {"iso-2022jp", cs_jis},
    {"iso-2022-jp-1", cs_jis},
    {"iso-2022-jp-2", cs_jis},
    {"iso-2022-jp-3", cs_jis},
    {"iso-2022-jp-2004", cs_jis},
    {"iso-2022-jp-ms", cs_jis},
    {"csiso2022jp", cs_jis},
    {"csiso2022jp2", cs_jis},
    {"cp50220", cs_jis},
    {"cp50221", cs_jis},
    {"cp50222", cs_jis},
    {"windows-50220", cs_jis},
    {"windows-50221", cs_jis},
    {"windows-50222", cs_jis},
    {"jis", cs_jis},
    {"jis7", cs_jis},
    {"shift_jis", cs_cp932},
    {"shift-jis", cs_cp932},
    {"shiftjis", cs_cp932},
    {"sjis", cs_cp932},
    {"x-sjis", cs_cp932},
    {"x-shift_jis", cs_cp932},
    {"ms_kanji", cs_cp932},
    {"csshiftjis", cs_cp932},
    {"windows-31j", cs_cp932},
    {"cswindows31j", cs_cp932},
    {"cp932", cs_cp932},
    {"ms932", cs_cp932},
    {"x-ms-cp932", cs_cp932},
    {"windows-932", cs_cp932},
    {"sjis-open", cs_cp932},
    {"sjis-win", cs_cp932},
    {"euc-jp", cs_eucjp},
    {"eucjp", cs_eucjp},
    {"euc_jp", cs_eucjp},
    {"x-euc-jp", cs_eucjp},
    {"x-eucjp", cs_eucjp},
    {"x-euc", cs_eucjp},
    {"cseucpkdfmtjapanese", cs_eucjp},
    {"euc-jp-ms", cs_eucjp},
    {"eucjp-ms", cs_eucjp},
    {"eucjp-open", cs_eucjp},
    {"eucjp-win", cs_eucjp},
    {"ujis", cs_eucjp},
    {"cp51932", cs_eucjp},
    {"windows-51932", cs_eucjp},
    {"latin1", cs_1252},
    {"l1", cs_1252},
    {"cp819", cs_1252},
    {"ibm819", cs_1252},
    {"csisolatin1", cs_1252},
    {"iso-ir-100", cs_1252},
    {"windows-1252", cs_1252},
    {"latin5", cs_1254},
    {"windows-1254", cs_1254},
    {"l5", cs_1254},
    {"csisolatin5", cs_1254},
    {"iso-ir-148", cs_1254},
    {"windows-874", cs_874},
    {"tis-620", cs_874},
    {"cp874", cs_874},
    {"dos-874", cs_874},
    {"gb2312", cs_gb18030},
    {"gbk", cs_gb18030},
    {"gb18030", cs_gb18030},
    {"cp936", cs_gb18030},
    {"ms936", cs_gb18030},
    {"windows-936", cs_gb18030},
    {"x-gbk", cs_gb18030},
    {"csgb2312", cs_gb18030},
    {"chinese", cs_gb18030},
    {"euc-cn", cs_gb18030},
    {"x-euc-cn", cs_gb18030},
    {"gb_2312-80", cs_gb18030},
    {"csiso58gb231280", cs_gb18030},
    {"iso-ir-58", cs_gb18030},
    {"big5", cs_big5},
    {"big-5", cs_big5},
    {"x-x-big5", cs_big5},
    {"csbig5", cs_big5},
    {"cn-big5", cs_big5},
    {"cp950", cs_big5},
    {"big5-hkscs", cs_big5hk},
    {"big5hkscs", cs_big5hk},
    {"euc-kr", cs_cp949},
    {"euckr", cs_cp949},
    {"cseuckr", cs_cp949},
    {"ks_c_5601-1987", cs_cp949},
    {"ks_c_5601-1989", cs_cp949},
    {"ks_c_5601", cs_cp949},
    {"ksc5601", cs_cp949},
    {"ksc_5601", cs_cp949},
    {"csksc56011987", cs_cp949},
    {"iso-ir-149", cs_cp949},
    {"korean", cs_cp949},
    {"cp949", cs_cp949},
    {"uhc", cs_cp949},
    {"windows-949", cs_cp949},
    {"x-windows-949", cs_cp949},
    {"koi8-r", cs_koi8r},
    {"koi8", cs_koi8r},
    {"koi", cs_koi8r},
    {"cskoi8r", cs_koi8r},
    {"koi8-u", cs_koi8u},
    {"utf-16", cs_utf16},
    {"utf16", cs_utf16},
    {"ucs-2", cs_utf16},
    {"ucs2", cs_utf16},
    {"iso-10646-ucs-2", cs_utf16},
    {"csunicode", cs_utf16},
    {"unicode", cs_utf16},
    {"utf-16le", cs_utf16le},
    {"utf16le", cs_utf16le},
    {"ucs-2le", cs_utf16le},
    {"utf-16be", cs_utf16be},
    {"utf16be", cs_utf16be},
    {"ucs-2be", cs_utf16be},
    {"unicodefffe", cs_utf16be},
    {"utf-32", cs_utf32},
    {"utf32", cs_utf32},
    {"ucs-4", cs_utf32},
    {"ucs4", cs_utf32},
    {"iso-10646-ucs-4", cs_utf32},
    {"utf-32le", cs_utf32le},
    {"utf32le", cs_utf32le},
    {"utf-32be", cs_utf32be},
    {"utf32be", cs_utf32be},
    {"utf-7", cs_utf7},
    {"utf7", cs_utf7},
    {"x-utf-7", cs_utf7},
    {"unicode-1-1-utf-7", cs_utf7},
    {"csunicode11utf7", cs_utf7},
    /* Labels that say nothing: sniff. */
    {"x-unknown", NULL},
    {"unknown", NULL},
    {"unknown-8bit", NULL},
    {"x-unknown-8bit", NULL},
    {"x-user-defined", NULL},
    {"8bit", NULL},
    {"7bit", NULL},
    {"binary", NULL},
    {"none", NULL},
    {"default", NULL},
    {"char", NULL},
    {"wchar_t", NULL},
    {"internal", NULL},
};

/* Trim blanks and quotes, drop an RFC 2231 "*lang" suffix, lower-case.
 * Returns false when nothing usable is left. */
static bool label_normalise(const char *label, char *buf, size_t size)
{
    const char *b = label;
    const char *e;
    size_t n = 0;

    while (*b == ' ' || *b == '\t' || *b == '\r' || *b == '\n' || *b == '"' || *b == '\'')
        b++;
    e = b + strlen(b);
    while (e > b && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\r' || e[-1] == '\n' ||
                     e[-1] == '"' || e[-1] == '\''))
        e--;
    for (const char *p = b; p < e && *p != '*'; p++) {
        char ch = g_ascii_tolower(*p);

        if (!g_ascii_isalnum(ch) && !strchr("-_.:+()", ch))
            return false;
        if (n + 1 >= size)
            return false;
        buf[n++] = ch;
    }
    buf[n] = '\0';
    return n > 0;
}

/* "iso-8859-N", "iso_8859-N", "iso8859-N", "iso8859_N", optionally
 * followed by ":year". Returns N, or 0. */
static int label_iso8859(const char *s)
{
    static const char *const prefixes[] = {"iso-8859-", "iso_8859-", "iso8859-",
                                           "iso8859_",  "iso-8859_", "iso_8859_"};
    int n = 0;

    for (size_t i = 0; i < G_N_ELEMENTS(prefixes); i++) {
        size_t plen = strlen(prefixes[i]);

        if (strncmp(s, prefixes[i], plen) != 0)
            continue;
        s += plen;
        while (g_ascii_isdigit(*s) && n < 100)
            n = n * 10 + (*s++ - '0');
        if (*s != '\0' && *s != ':')
            return 0;
        return n;
    }
    return 0;
}

/* "cp125N", "windows-125N", "x-cp125N", "win-125N", "win125N".
 * Returns N + 1, or 0. */
static int label_cp125x(const char *s)
{
    static const char *const prefixes[] = {"cp125",   "windows-125", "x-cp125",
                                           "win-125", "win125",      "windows125"};

    for (size_t i = 0; i < G_N_ELEMENTS(prefixes); i++) {
        size_t plen = strlen(prefixes[i]);

        if (strncmp(s, prefixes[i], plen) == 0 && s[plen] >= '0' && s[plen] <= '8' &&
            s[plen + 1] == '\0')
            return s[plen] - '0' + 1;
    }
    return 0;
}

static const char *const cp125x_names[] = {"windows-1250", "windows-1251", cs_1252,
                                           "windows-1253", cs_1254,        "windows-1255",
                                           "windows-1256", "windows-1257", "windows-1258"};

static bool iconv_supports(const char *name)
{
    iconv_t cd = iconv_open("UTF-8", name);

    if (cd == (iconv_t)-1)
        return false;
    iconv_close(cd);
    return true;
}

const char *mg_charset_canon(const char *label)
{
    char buf[LABEL_MAX];
    int n;

    if (label == NULL || !label_normalise(label, buf, sizeof buf))
        return NULL;
    for (size_t i = 0; i < G_N_ELEMENTS(aliases); i++)
        if (strcmp(buf, aliases[i].label) == 0)
            return aliases[i].canon;
    if ((n = label_iso8859(buf)) > 0) {
        if (n == 1)
            return cs_1252;
        if (n == 9)
            return cs_1254;
        if (n == 11)
            return cs_874;
        g_snprintf(buf, sizeof buf, "iso-8859-%d", n);
    } else if ((n = label_cp125x(buf)) > 0) {
        return cp125x_names[n - 1];
    }
    if (!iconv_supports(buf))
        return NULL;
    /* Interned: the set of names glibc accepts is finite. */
    return g_intern_string(buf);
}

/*
 * Lazily built decoding tables: UTF-8 string per code, length in [0].
 */

enum tab_id {
    TAB_CP932,   /* JIS X 0208 row/cell through CP932 */
    TAB_X0212,   /* JIS X 0212 through eucJP-ms */
    TAB_X0213_1, /* JIS X 0213 plane 1 */
    TAB_X0213_2, /* JIS X 0213 plane 2 */
    TAB_GB2312,  /* ISO-2022-JP-2 ESC $ A */
    TAB_KSC5601, /* ISO-2022-JP-2 ESC $ ( C */
    TAB_GREEK,   /* ISO-2022-JP-2 G2 ESC . F: ISO-8859-7, 96 codes */
    TAB_COUNT
};

#define TAB_CELL  8
#define TAB_94x94 (94 * 94)

typedef guint8 tab_cell[TAB_CELL];

static const struct tab_def {
    const char *charset;
    unsigned size;
} tab_defs[TAB_COUNT] = {
    [TAB_CP932] = {"CP932", TAB_94x94},
    [TAB_X0212] = {"EUC-JP-MS", TAB_94x94},
    [TAB_X0213_1] = {"EUC-JISX0213", TAB_94x94},
    [TAB_X0213_2] = {"EUC-JISX0213", TAB_94x94},
    [TAB_GB2312] = {"GB2312", TAB_94x94},
    [TAB_KSC5601] = {"EUC-KR", TAB_94x94},
    [TAB_GREEK] = {"ISO-8859-7", 96},
};

/* The bytes that encode table entry idx in the table's iconv charset. */
static size_t tab_input(enum tab_id id, unsigned idx, guchar *in)
{
    unsigned j1 = idx / 94 + 0x21;
    unsigned j2 = idx % 94 + 0x21;
    size_t n = 0;

    switch (id) {
    case TAB_CP932:
        /* Shift_JIS arithmetic from JIS row/cell. */
        in[n++] = (guchar)((j1 + 1) / 2 + (j1 <= 0x5e ? 0x70 : 0xb0));
        if (j1 & 1)
            in[n++] = (guchar)(j2 + (j2 >= 0x60 ? 0x20 : 0x1f));
        else
            in[n++] = (guchar)(j2 + 0x7e);
        return n;
    case TAB_GREEK:
        in[n++] = (guchar)(idx + 0xa0);
        return n;
    case TAB_X0212:
    case TAB_X0213_2:
        in[n++] = 0x8f;
        break;
    case TAB_X0213_1:
    case TAB_GB2312:
    case TAB_KSC5601:
    case TAB_COUNT:
        break;
    }
    in[n++] = (guchar)(j1 | 0x80);
    in[n++] = (guchar)(j2 | 0x80);
    return n;
}

static tab_cell *tab_build(enum tab_id id)
{
    const struct tab_def *def = &tab_defs[id];
    tab_cell *tab = g_new0(tab_cell, def->size);
    iconv_t cd = iconv_open("UTF-8", def->charset);

    if (cd == (iconv_t)-1)
        return tab; /* every code decodes as U+FFFD */
    for (unsigned i = 0; i < def->size; i++) {
        guchar in[4];
        char outb[TAB_CELL];
        char *ip = (char *)in;
        char *op = outb;
        size_t il = tab_input(id, i, in);
        size_t ol = sizeof outb - 1;

        iconv(cd, NULL, NULL, NULL, NULL);
        if (iconv(cd, &ip, &il, &op, &ol) == (size_t)-1 || il != 0)
            continue;
        tab[i][0] = (guint8)(op - outb);
        memcpy(&tab[i][1], outb, (size_t)(op - outb));
    }
    iconv_close(cd);
    return tab;
}

static const tab_cell *tab_get(enum tab_id id)
{
    static gsize tabs[TAB_COUNT];

    if (g_once_init_enter(&tabs[id])) {
        tab_cell *tab = tab_build(id);

        g_once_init_leave(&tabs[id], (gsize)tab);
    }
    return (const tab_cell *)tabs[id];
}

/*
 * Sniffing
 */

static bool is_alpha(guchar b)
{
    return (b >= 'A' && b <= 'Z') || (b >= 'a' && b <= 'z');
}

/* Count valid multi-byte UTF-8 sequences and invalid sequences. An
 * incomplete sequence at the end counts only when at_end. */
static void utf8_count(const guchar *p, size_t n, bool at_end, size_t *valid, size_t *invalid)
{
    size_t i = 0;

    *valid = *invalid = 0;
    while (i < n) {
        guchar b = p[i];
        unsigned need;
        guchar lo = 0x80, hi = 0xbf;
        size_t k;

        if (b < 0x80) {
            i++;
            continue;
        }
        if (b >= 0xc2 && b <= 0xdf) {
            need = 1;
        } else if (b >= 0xe0 && b <= 0xef) {
            need = 2;
            lo = b == 0xe0 ? 0xa0 : 0x80;
            hi = b == 0xed ? 0x9f : 0xbf;
        } else if (b >= 0xf0 && b <= 0xf4) {
            need = 3;
            lo = b == 0xf0 ? 0x90 : 0x80;
            hi = b == 0xf4 ? 0x8f : 0xbf;
        } else {
            (*invalid)++;
            i++;
            continue;
        }
        for (k = 1; k <= need && i + k < n; k++) {
            if (p[i + k] < lo || p[i + k] > hi)
                break;
            lo = 0x80;
            hi = 0xbf;
        }
        if (k > need) {
            (*valid)++;
        } else if (i + k < n || at_end) {
            (*invalid)++;
        }
        i += k;
    }
}

/* Weights: how typical a character is of Japanese text. */
enum {
    W_ERR = -20,     /* invalid sequence */
    W_BAD = -12,     /* unassigned row */
    W_UDF = -8,      /* user-defined area */
    W_HW_ONE = -2,   /* lone half-width katakana (an accented letter?) */
    W_HW_RUN = 1,    /* half-width katakana next to another */
    W_EUC_HW = 1,    /* EUC-JP SS2 half-width katakana, alone */
    W_EUC_HWRUN = 3, /* ... next to another */
    W_KANA = 8,      /* hiragana, katakana */
    W_SYM = 4,       /* row 1: punctuation */
    W_ROW2 = 3,      /* rows 2, 3, 6-8: symbols, full-width alnum, Greek, Cyrillic, boxes */
    W_NEC = 2,       /* row 13 */
    W_KANJI1 = 6,    /* JIS level 1 kanji */
    W_KANJI2 = 2,    /* JIS level 2 kanji */
    W_X0212 = 2,     /* EUC-JP JIS X 0212 */
};

/* Weight of a JIS X 0208 row (1..94) as CP932 decodes it. */
static int jis_row_weight(unsigned row)
{
    if (row == 1)
        return W_SYM;
    if (row == 4 || row == 5)
        return W_KANA;
    if (row == 2 || row == 3 || (row >= 6 && row <= 8))
        return W_ROW2;
    if (row == 13)
        return W_NEC;
    if (row >= 16 && row <= 47)
        return W_KANJI1;
    if (row >= 48 && row <= 84)
        return W_KANJI2;
    if (row >= 89 && row <= 92)
        return 0;
    return W_BAD;
}

static bool is_hwkana(guchar b)
{
    return b >= 0xa1 && b <= 0xdf;
}

/* Bytes that are never text in windows-1252: a CP932 lead there is
 * strong evidence. */
static bool is_1252_hole(guchar b)
{
    return b == 0x81 || b == 0x8d || b == 0x8f || b == 0x90 || b == 0x9d;
}

static long score_cp932(const guchar *p, size_t n, bool at_end, size_t *err)
{
    long s = 0;
    bool prev_alpha = false;
    guchar prev_lead = 0;
    bool prev_hw = false;
    size_t i = 0;

    while (i < n) {
        guchar b = p[i];
        bool after_alpha = prev_alpha;
        guchar after_lead = prev_lead;
        bool after_hw = prev_hw;
        guchar t;
        int w;

        prev_alpha = prev_hw = false;
        prev_lead = 0;
        if (b < 0x80) {
            prev_alpha = is_alpha(b);
            i++;
            continue;
        }
        if (is_hwkana(b)) {
            bool run = after_hw || (i + 1 < n && is_hwkana(p[i + 1]));

            s += run ? W_HW_RUN : W_HW_ONE;
            prev_hw = true;
            i++;
            continue;
        }
        if (!((b >= 0x81 && b <= 0x9f) || (b >= 0xe0 && b <= 0xfc))) {
            s += W_ERR;
            (*err)++;
            i++;
            continue;
        }
        if (i + 1 >= n) {
            if (at_end) {
                s += W_ERR;
                (*err)++;
            }
            break;
        }
        t = p[i + 1];
        if (t < 0x40 || t > 0xfc || t == 0x7f) {
            s += W_ERR;
            (*err)++;
            i++;
            continue;
        }
        if (b >= 0xf0 && b <= 0xf9)
            w = W_UDF;
        else if (b >= 0xfa)
            w = 0;
        else
            w = jis_row_weight((unsigned)(b <= 0x9f ? b - 0x81 : b - 0xc1) * 2 + 1 + (t >= 0x9f));
        /* An ASCII trail byte after a Latin letter, or after a lead that
         * is an accented letter in windows-1252, proves nothing. */
        if (t < 0x80 && w > 0 && (b >= 0xe0 || (after_alpha && !is_1252_hole(b))))
            w = 0;
        /* 0x8E 0xA1-0xDF again and again: EUC-JP half-width katakana. */
        if (b == 0x8e && is_hwkana(t) && after_lead == 0x8e)
            w = 0;
        prev_lead = b;
        s += w;
        i += 2;
    }
    return s;
}

static long score_eucjp(const guchar *p, size_t n, bool at_end, size_t *err)
{
    long s = 0;
    size_t i = 0;

    while (i < n) {
        guchar b = p[i];
        size_t need = b == 0x8f ? 3 : 2;

        if (b < 0x80) {
            i++;
            continue;
        }
        if (!(b >= 0xa1 && b <= 0xfe) && b != 0x8e && b != 0x8f) {
            s += W_ERR;
            (*err)++;
            i++;
            continue;
        }
        if (i + need > n) {
            bool ok = true;

            for (size_t k = 1; i + k < n; k++)
                ok = ok && p[i + k] >= 0xa1 && p[i + k] <= 0xfe;
            if (!ok || at_end) {
                s += W_ERR;
                (*err)++;
            }
            if (ok)
                break;
            i++;
            continue;
        }
        if (b == 0x8e) {
            if (is_hwkana(p[i + 1])) {
                bool run = (i >= 2 && p[i - 2] == 0x8e && is_hwkana(p[i - 1])) ||
                           (i + 3 < n && p[i + 2] == 0x8e && is_hwkana(p[i + 3]));

                s += run ? W_EUC_HWRUN : W_EUC_HW;
                i += 2;
                continue;
            }
        } else if (p[i + 1] >= 0xa1 && p[i + 1] <= 0xfe &&
                   (need == 2 || (p[i + 2] >= 0xa1 && p[i + 2] <= 0xfe))) {
            unsigned row = b - 0xa0;

            if (need == 2)
                s += row >= 85 ? W_UDF : jis_row_weight(row);
            else
                s += W_X0212;
            i += need;
            continue;
        }
        s += W_ERR;
        (*err)++;
        i++;
    }
    return s;
}

static bool is_1252_letter(guchar b)
{
    return (b >= 0xc0 && b != 0xd7 && b != 0xf7) || b == 0x8a || b == 0x8c || b == 0x8e ||
           b == 0x9a || b == 0x9c || b == 0x9e || b == 0x9f;
}

static bool is_1252_quote(guchar b)
{
    return (b >= 0x91 && b <= 0x94) || b == 0xab || b == 0xbb || b == 0x8b || b == 0x9b;
}

/* How much the 8-bit bytes look like Latin text in windows-1252: alone
 * between letters, or a quote next to an accented letter. */
static long score_1252(const guchar *p, size_t n)
{
    long s = 0;
    size_t i = 0;

    while (i < n) {
        size_t j = i;

        if (p[i] < 0x80) {
            i++;
            continue;
        }
        while (j < n && p[j] >= 0x80)
            j++;
        for (size_t k = i; k < j; k++) {
            guchar b = p[k];

            if (is_1252_hole(b)) {
                s += W_ERR;
            } else if (j - i == 1) {
                bool adj = (k > 0 && is_alpha(p[k - 1])) || (k + 1 < n && is_alpha(p[k + 1]));

                s += adj ? 3 : is_1252_letter(b) ? 0 : 2;
            } else if (j - i == 2) {
                guchar o = p[k == i ? i + 1 : i];

                if ((is_1252_quote(b) && is_1252_letter(o)) ||
                    (is_1252_letter(b) && is_1252_quote(o)))
                    s += 3;
            } else {
                s -= 2;
            }
        }
        i = j;
    }
    return s;
}

/* Is p (at an ESC) the start of a JIS designation? */
static bool is_jis_designation(const guchar *p, size_t n)
{
    if (n >= 3 && p[1] == '$' && (p[2] == 'B' || p[2] == '@' || p[2] == 'A'))
        return true;
    if (n >= 3 && p[1] == '(' && p[2] == 'I')
        return true;
    return n >= 4 && p[1] == '$' && p[2] == '(' && strchr("ABCDOPQ", p[3]) != NULL;
}

struct sniff_stats {
    bool high; /* any 8-bit byte */
    bool jis;  /* a JIS designation */
    bool jis8; /* every 8-bit byte is JIS8 katakana */
    size_t u8valid, u8invalid;
    long sj, euc, latin;    /* scores */
    size_t sj_err, euc_err; /* invalid sequences */
};

static void sniff_scan(const guchar *p, size_t n, bool at_end, struct sniff_stats *st)
{
    memset(st, 0, sizeof *st);
    st->jis8 = true;
    for (size_t i = 0; i < n; i++) {
        if (p[i] >= 0x80) {
            st->high = true;
            st->jis8 = st->jis8 && is_hwkana(p[i]);
        } else if (p[i] == ESC && !st->jis) {
            st->jis = is_jis_designation(p + i, n - i);
        }
    }
    if (!st->high)
        return;
    utf8_count(p, n, at_end, &st->u8valid, &st->u8invalid);
    st->sj = score_cp932(p, n, at_end, &st->sj_err);
    st->euc = score_eucjp(p, n, at_end, &st->euc_err);
    st->latin = score_1252(p, n);
}

/* UTF-8 wins when valid, or when at most one sequence in ratio is
 * invalid and no Japanese reading has fewer errors (EUC-JP symbols and
 * CP932 Greek look like UTF-8 shifted by one byte). */
static const char *sniff_pick(const struct sniff_stats *st, size_t ratio)
{
    long best;

    if (!st->high)
        return st->jis ? cs_jis : cs_ascii;
    if (st->jis && st->jis8)
        return cs_jis;
    if (st->u8valid > 0 && (st->u8invalid == 0 || (st->u8invalid * ratio <= st->u8valid &&
                                                   MIN(st->sj_err, st->euc_err) >= st->u8invalid)))
        return cs_utf8;
    best = MAX(st->sj, st->euc);
    if (best <= 0 || best <= st->latin)
        return cs_1252;
    return st->sj >= st->euc ? cs_cp932 : cs_eucjp;
}

static const char *sniff(const guchar *p, size_t n, bool at_end)
{
    struct sniff_stats st;

    sniff_scan(p, n, at_end, &st);
    return sniff_pick(&st, 8);
}

const char *mg_charset_sniff(const void *buf, size_t len)
{
    if (buf == NULL || len == 0)
        return cs_ascii;
    return sniff(buf, len, true);
}

/*
 * The converter
 */

enum conv_mode {
    MODE_PREFIX, /* optimistic: passing on 7-bit text */
    MODE_HOLD,   /* collecting the sniff window */
    MODE_DECODE, /* decoder chosen */
};

enum tentative {
    TENT_NONE,  /* label trusted */
    TENT_SNIFF, /* no label, or us-ascii */
    TENT_JIS,
    TENT_UTF8,
};

enum dec_kind {
    DEC_ASCII, /* 7-bit; 8-bit bytes become U+FFFD */
    DEC_UTF8,
    DEC_JIS,
    DEC_UNIAUTO, /* utf-16/utf-32 until the byte order is known */
    DEC_ICONV,
};

enum jis_set {
    JIS_ASCII,
    JIS_KANA,
    JIS_X0208,
    JIS_X0212,
    JIS_X0213_1,
    JIS_X0213_2,
    JIS_GB2312,
    JIS_KSC5601,
};

enum jis_g2 {
    G2_NONE,
    G2_LATIN1,
    G2_GREEK,
};

struct jis_state {
    enum jis_set g0;
    enum jis_g2 g2;
    bool so;       /* SO: half-width katakana until SI */
    bool ss2;      /* ESC N: next byte from G2 */
    guchar lead;   /* pending first byte of a double-byte code, or 0 */
    guchar esc[4]; /* escape sequence so far, esc[0] == ESC */
    unsigned nesc;
};

struct mg_charset_conv {
    enum tentative tent;
    enum conv_mode mode;
    const char *label; /* canonical label, or NULL */
    const char *name;  /* canonical name in use, or NULL */
    size_t repl;       /* U+FFFD inserted */
    GByteArray *hold;  /* sniff window, at most SNIFF_WINDOW bytes */
    bool strip_bom;    /* drop U+FEFF if it is the first output */
    bool started;      /* some input already passed on */
    enum dec_kind kind;
    iconv_t cd;
    size_t unit;             /* bytes skipped after an invalid sequence: 1, 2 or 4 */
    guchar carry[CARRY_MAX]; /* incomplete sequence between feeds */
    size_t ncarry;
    GByteArray *lines; /* UTF-7: input held until a line end */
    unsigned u8need;   /* UTF-8: continuation bytes still expected */
    guchar u8lo, u8hi;
    struct jis_state jis;
};

static void put_repl(struct mg_charset_conv *c, GString *out)
{
    g_string_append_len(out, repl_utf8, 3);
    c->repl++;
}

/* Append decoded UTF-8, dropping a leading byte order mark. */
static void put_utf8(struct mg_charset_conv *c, const char *s, size_t n, GString *out)
{
    if (n == 0)
        return;
    if (c->strip_bom) {
        c->strip_bom = false;
        if (n >= 3 && memcmp(s, "\xef\xbb\xbf", 3) == 0) {
            s += 3;
            n -= 3;
        }
    }
    g_string_append_len(out, s, (gssize)n);
}

/*
 * iconv decoder
 */

/* Convert *pp; on return *pp and *pn hold an incomplete tail (never when
 * final). */
static void iconv_run(struct mg_charset_conv *c, const guchar **pp, size_t *pn, bool final,
                      GString *out)
{
    char obuf[4096];

    while (*pn > 0) {
        char *ip = (char *)(uintptr_t)*pp;
        size_t il = *pn;
        char *op = obuf;
        size_t ol = sizeof obuf;
        size_t r = iconv(c->cd, &ip, &il, &op, &ol);
        int err = errno;

        put_utf8(c, obuf, (size_t)(op - obuf), out);
        *pp += *pn - il;
        *pn = il;
        if (r != (size_t)-1 || il == 0)
            break;
        if (err == E2BIG && op != obuf)
            continue;
        if (err == EINVAL && !final && il < CARRY_MAX)
            break;
        /* EILSEQ, or an incomplete sequence that cannot complete. */
        put_repl(c, out);
        if (err == EINVAL && final) {
            *pp += *pn;
            *pn = 0;
        } else {
            size_t skip = MIN(c->unit, *pn);

            *pp += skip;
            *pn -= skip;
        }
    }
}

static void iconv_feed(struct mg_charset_conv *c, const guchar *p, size_t n, GString *out)
{
    /* Complete the carried sequence one byte at a time. */
    while (c->ncarry > 0 && n > 0) {
        const guchar *cp = c->carry;
        size_t cn;

        c->carry[c->ncarry++] = *p++;
        n--;
        cn = c->ncarry;
        iconv_run(c, &cp, &cn, false, out);
        memmove(c->carry, cp, cn);
        c->ncarry = cn;
    }
    if (n == 0)
        return;
    iconv_run(c, &p, &n, false, out);
    memcpy(c->carry, p, n);
    c->ncarry = n;
}

/*
 * UTF-7 keeps shift state inside glibc's converter, and where a chunk
 * ends changes how a broken base64 run decodes. A line end always ends
 * a shifted run (RFC 2152), so UTF-7 is converted one line at a time,
 * or in UTF7_BLOCK pieces of a longer line: the pieces then depend on
 * the text alone, never on the chunking.
 */
#define UTF7_BLOCK 65536

static void utf7_feed(struct mg_charset_conv *c, const guchar *p, size_t n, GString *out)
{
    size_t done = 0;

    if (c->lines == NULL)
        c->lines = g_byte_array_new();
    g_byte_array_append(c->lines, p, (guint)n);
    for (;;) {
        const guchar *base = c->lines->data + done;
        size_t left = c->lines->len - done;
        const guchar *nl = memchr(base, '\n', MIN(left, (size_t)UTF7_BLOCK));
        size_t take = nl ? (size_t)(nl - base) + 1 : left >= UTF7_BLOCK ? UTF7_BLOCK : 0;
        if (take == 0)
            break;
        iconv_feed(c, base, take, out);
        done += take;
    }
    g_byte_array_remove_range(c->lines, 0, (guint)done);
}

static void iconv_finish(struct mg_charset_conv *c, GString *out)
{
    if (c->lines != NULL && c->lines->len > 0) {
        iconv_feed(c, c->lines->data, c->lines->len, out);
        g_byte_array_set_size(c->lines, 0);
    }

    const guchar *cp = c->carry;
    size_t cn = c->ncarry;
    char obuf[64];
    char *op = obuf;
    size_t ol = sizeof obuf;

    iconv_run(c, &cp, &cn, true, out);
    c->ncarry = 0;
    if (iconv(c->cd, NULL, NULL, &op, &ol) != (size_t)-1)
        put_utf8(c, obuf, (size_t)(op - obuf), out);
}

/*
 * UTF-8 decoder (validating; maximal invalid subparts become U+FFFD)
 */

static void utf8_feed(struct mg_charset_conv *c, const guchar *p, size_t n, GString *out)
{
    size_t i = 0;
    size_t run = 0; /* start of pending complete ASCII/valid bytes in p */

    while (i < n) {
        guchar b = p[i];

        if (c->u8need > 0) {
            if (b >= c->u8lo && b <= c->u8hi) {
                c->carry[c->ncarry++] = b;
                c->u8lo = 0x80;
                c->u8hi = 0xbf;
                i++;
                if (--c->u8need == 0) {
                    put_utf8(c, (const char *)c->carry, c->ncarry, out);
                    c->ncarry = 0;
                    run = i;
                }
                continue;
            }
            /* Truncated sequence: replace it, then look at b afresh. */
            put_repl(c, out);
            c->u8need = 0;
            c->ncarry = 0;
            run = i;
        }
        if (b < 0x80) {
            i++;
            continue;
        }
        put_utf8(c, (const char *)p + run, i - run, out);
        c->u8lo = 0x80;
        c->u8hi = 0xbf;
        if (b >= 0xc2 && b <= 0xdf) {
            c->u8need = 1;
        } else if (b >= 0xe0 && b <= 0xef) {
            c->u8need = 2;
            c->u8lo = b == 0xe0 ? 0xa0 : 0x80;
            c->u8hi = b == 0xed ? 0x9f : 0xbf;
        } else if (b >= 0xf0 && b <= 0xf4) {
            c->u8need = 3;
            c->u8lo = b == 0xf0 ? 0x90 : 0x80;
            c->u8hi = b == 0xf4 ? 0x8f : 0xbf;
        } else {
            put_repl(c, out);
            i++;
            run = i;
            continue;
        }
        c->carry[0] = b;
        c->ncarry = 1;
        i++;
        run = i;
    }
    if (c->u8need == 0)
        put_utf8(c, (const char *)p + run, i - run, out);
}

static void utf8_finish(struct mg_charset_conv *c, GString *out)
{
    if (c->u8need > 0)
        put_repl(c, out);
    c->u8need = 0;
    c->ncarry = 0;
}

/*
 * ISO-2022-JP decoder
 */

enum jis_act {
    ACT_SET, /* designate a G0 set */
    ACT_NOP, /* ESC & @: announcer, ignored */
    ACT_G2,  /* designate G2 */
    ACT_SS2, /* ESC N */
};

static const struct jis_esc {
    const char seq[4]; /* bytes after ESC */
    enum jis_act act;
    int arg;
} jis_escs[] = {
    {"(B", ACT_SET, JIS_ASCII},
    {"(J", ACT_SET, JIS_ASCII},
    {"(H", ACT_SET, JIS_ASCII},
    {"(I", ACT_SET, JIS_KANA},
    {"$@", ACT_SET, JIS_X0208},
    {"$B", ACT_SET, JIS_X0208},
    {"$(@", ACT_SET, JIS_X0208},
    {"$(B", ACT_SET, JIS_X0208},
    {"$A", ACT_SET, JIS_GB2312},
    {"$(A", ACT_SET, JIS_GB2312},
    {"$(C", ACT_SET, JIS_KSC5601},
    {"$(D", ACT_SET, JIS_X0212},
    {"$(O", ACT_SET, JIS_X0213_1},
    {"$(Q", ACT_SET, JIS_X0213_1},
    {"$(P", ACT_SET, JIS_X0213_2},
    {"&@", ACT_NOP, 0},
    {".A", ACT_G2, G2_LATIN1},
    {".F", ACT_G2, G2_GREEK},
    {"N", ACT_SS2, 0},
};

static void jis_byte(struct mg_charset_conv *c, guchar b, GString *out);

static void put_table(struct mg_charset_conv *c, enum tab_id id, unsigned idx, GString *out)
{
    const tab_cell *tab = tab_get(id);

    if (tab[idx][0] == 0)
        put_repl(c, out);
    else
        put_utf8(c, (const char *)&tab[idx][1], tab[idx][0], out);
}

static void put_hwkana(unsigned offset, GString *out)
{
    g_string_append_unichar(out, 0xff61 + offset);
}

/* A byte after ESC: act on a complete sequence, wait on a prefix,
 * otherwise replace the ESC and decode what followed it as text. */
static void jis_escape(struct mg_charset_conv *c, guchar b, GString *out)
{
    struct jis_state *j = &c->jis;
    size_t k;
    bool prefix = false;
    guchar rest[4];

    j->esc[j->nesc++] = b;
    k = j->nesc - 1;
    for (size_t i = 0; i < G_N_ELEMENTS(jis_escs); i++) {
        const struct jis_esc *e = &jis_escs[i];

        if (memcmp(e->seq, j->esc + 1, k) != 0)
            continue;
        if (e->seq[k] != '\0') {
            prefix = true;
            continue;
        }
        j->nesc = 0;
        if (e->act == ACT_SET) {
            j->g0 = (enum jis_set)e->arg;
            j->so = false;
        } else if (e->act == ACT_G2) {
            j->g2 = (enum jis_g2)e->arg;
        } else if (e->act == ACT_SS2) {
            j->ss2 = true;
        }
        return;
    }
    if (prefix && j->nesc < sizeof j->esc)
        return;
    memcpy(rest, j->esc + 1, k);
    j->nesc = 0;
    put_repl(c, out);
    for (size_t i = 0; i < k; i++)
        jis_byte(c, rest[i], out);
}

static void jis_double(struct mg_charset_conv *c, guchar lead, guchar trail, GString *out)
{
    static const enum tab_id set_tab[] = {
        [JIS_X0208] = TAB_CP932,     [JIS_X0212] = TAB_X0212,   [JIS_X0213_1] = TAB_X0213_1,
        [JIS_X0213_2] = TAB_X0213_2, [JIS_GB2312] = TAB_GB2312, [JIS_KSC5601] = TAB_KSC5601,
    };

    put_table(c, set_tab[c->jis.g0], (unsigned)(lead - 0x21) * 94 + (trail - 0x21), out);
}

static void jis_ss2(struct mg_charset_conv *c, guchar b, GString *out)
{
    if (b < 0x20 || b > 0x7f || c->jis.g2 == G2_NONE) {
        put_repl(c, out);
        jis_byte(c, b, out);
    } else if (c->jis.g2 == G2_LATIN1) {
        g_string_append_unichar(out, (gunichar)b + 0x80);
    } else {
        put_table(c, TAB_GREEK, (unsigned)b - 0x20, out);
    }
}

static void jis_byte(struct mg_charset_conv *c, guchar b, GString *out)
{
    struct jis_state *j = &c->jis;

    if (j->nesc > 0) {
        jis_escape(c, b, out);
        return;
    }
    if (j->lead != 0) {
        guchar lead = j->lead;

        j->lead = 0;
        if (b >= 0x21 && b <= 0x7e) {
            jis_double(c, lead, b, out);
            return;
        }
        put_repl(c, out);
    }
    if (j->ss2) {
        j->ss2 = false;
        if (b != ESC) {
            jis_ss2(c, b, out);
            return;
        }
        put_repl(c, out);
    }
    if (b == ESC) {
        j->esc[0] = b;
        j->nesc = 1;
    } else if (b == SO) {
        j->so = true;
    } else if (b == SI) {
        j->so = false;
    } else if (b >= 0x80) {
        if (is_hwkana(b))
            put_hwkana(b - 0xa1u, out); /* JIS8 */
        else
            put_repl(c, out);
    } else if (b <= 0x20 || b == 0x7f) {
        char ch = (char)b;

        put_utf8(c, &ch, 1, out);
    } else if (j->so || j->g0 == JIS_KANA) {
        if (b <= 0x5f)
            put_hwkana(b - 0x21u, out);
        else
            put_repl(c, out);
    } else if (j->g0 == JIS_ASCII) {
        char ch = (char)b;

        put_utf8(c, &ch, 1, out);
    } else {
        j->lead = b;
    }
}

static void jis_feed(struct mg_charset_conv *c, const guchar *p, size_t n, GString *out)
{
    size_t i = 0;

    while (i < n) {
        struct jis_state *j = &c->jis;
        size_t k = i;

        /* Fast path: plain ASCII in the ASCII state. */
        if (j->nesc == 0 && j->lead == 0 && !j->ss2 && !j->so && j->g0 == JIS_ASCII) {
            while (k < n && p[k] < 0x80 && p[k] != ESC && p[k] != SO && p[k] != SI)
                k++;
            put_utf8(c, (const char *)p + i, k - i, out);
            if (k == n)
                break;
            i = k;
        }
        jis_byte(c, p[i++], out);
    }
}

static void jis_finish(struct mg_charset_conv *c, GString *out)
{
    struct jis_state *j = &c->jis;

    if (j->nesc > 0) {
        guchar rest[4];
        size_t k = j->nesc - 1;

        memcpy(rest, j->esc + 1, k);
        j->nesc = 0;
        put_repl(c, out);
        for (size_t i = 0; i < k; i++)
            jis_byte(c, rest[i], out);
    }
    if (j->lead != 0 || j->ss2 || j->nesc > 0)
        put_repl(c, out);
    j->lead = 0;
    j->ss2 = false;
    j->nesc = 0;
}

/*
 * Decoder selection and dispatch
 */

static bool is_unicode(const char *name)
{
    return strncmp(name, "utf-", 4) == 0;
}

static void dec_open_iconv(struct mg_charset_conv *c, const char *iconv_name)
{
    c->unit = 1;
    if (g_ascii_strncasecmp(iconv_name, "utf-16", 6) == 0)
        c->unit = 2;
    else if (g_ascii_strncasecmp(iconv_name, "utf-32", 6) == 0)
        c->unit = 4;
    c->cd = iconv_open("UTF-8", iconv_name);
    c->kind = c->cd == (iconv_t)-1 ? DEC_ASCII : DEC_ICONV;
}

/* Choose the decoder for canonical name; it starts at the current
 * input position. */
static void dec_open(struct mg_charset_conv *c, const char *name)
{
    c->name = name;
    c->ncarry = 0;
    c->strip_bom = !c->started && is_unicode(name);
    if (name == cs_ascii) {
        c->kind = DEC_ASCII;
    } else if (name == cs_utf8) {
        c->kind = DEC_UTF8;
    } else if (name == cs_jis) {
        c->kind = DEC_JIS;
        memset(&c->jis, 0, sizeof c->jis);
    } else if (name == cs_utf16 || name == cs_utf32) {
        c->kind = DEC_UNIAUTO;
    } else if (name == cs_cp932) {
        dec_open_iconv(c, "CP932");
    } else if (name == cs_eucjp) {
        dec_open_iconv(c, "EUC-JP-MS");
    } else {
        dec_open_iconv(c, name);
    }
}

static void dec_feed(struct mg_charset_conv *c, const guchar *p, size_t n, GString *out);

/* utf-16/utf-32: the BOM, else the position of a zero byte, else big
 * endian (RFC 2781). */
static void uniauto_decide(struct mg_charset_conv *c, GString *out)
{
    const guchar *b = c->carry;
    bool le;
    guchar head[4];
    size_t n = c->ncarry;

    if (c->name == cs_utf16)
        le = n >= 2 && ((b[0] == 0xff && b[1] == 0xfe) || (b[0] != 0 && b[1] == 0));
    else
        le = n >= 4 && ((b[0] == 0xff && b[1] == 0xfe) || (b[0] != 0 && b[3] == 0));
    memcpy(head, b, n);
    c->ncarry = 0;
    if (c->name == cs_utf16)
        dec_open_iconv(c, le ? "UTF-16LE" : "UTF-16BE");
    else
        dec_open_iconv(c, le ? "UTF-32LE" : "UTF-32BE");
    dec_feed(c, head, n, out);
}

static void dec_feed(struct mg_charset_conv *c, const guchar *p, size_t n, GString *out)
{
    if (n == 0)
        return;
    c->started = true;
    switch (c->kind) {
    case DEC_ASCII:
        for (size_t i = 0; i < n; i++) {
            size_t k = i;

            while (k < n && p[k] < 0x80)
                k++;
            put_utf8(c, (const char *)p + i, k - i, out);
            if (k < n)
                put_repl(c, out);
            i = k;
        }
        break;
    case DEC_UTF8:
        utf8_feed(c, p, n, out);
        break;
    case DEC_JIS:
        jis_feed(c, p, n, out);
        break;
    case DEC_UNIAUTO: {
        size_t want = c->name == cs_utf16 ? 2 : 4;

        while (n > 0 && c->ncarry < want) {
            c->carry[c->ncarry++] = *p++;
            n--;
        }
        if (c->ncarry == want) {
            uniauto_decide(c, out);
            dec_feed(c, p, n, out);
        }
        break;
    }
    case DEC_ICONV:
        if (c->name == cs_utf7)
            utf7_feed(c, p, n, out);
        else
            iconv_feed(c, p, n, out);
        break;
    }
}

static void dec_finish(struct mg_charset_conv *c, GString *out)
{
    switch (c->kind) {
    case DEC_ASCII:
        break;
    case DEC_UTF8:
        utf8_finish(c, out);
        break;
    case DEC_JIS:
        jis_finish(c, out);
        break;
    case DEC_UNIAUTO:
        uniauto_decide(c, out);
        if (c->kind == DEC_ICONV)
            iconv_finish(c, out);
        break;
    case DEC_ICONV:
        iconv_finish(c, out);
        break;
    }
}

/*
 * Optimistic labels: prefix, hold, decide
 */

static bool prefix_safe(guchar b)
{
    return b < 0x80 && b != ESC && b != SO && b != SI;
}

/* Decide the charset of the held window, decode it, and go on. */
static void hold_decide(struct mg_charset_conv *c, bool at_end, GString *out)
{
    GByteArray *h = c->hold;
    struct sniff_stats st;
    const char *guess;

    sniff_scan(h->data, h->len, at_end, &st);
    /* A utf-8 label stands while at least half the sequences are valid
     * (and no Japanese reading fits better). */
    guess = sniff_pick(&st, c->tent == TENT_UTF8 ? 1 : 8);
    if (guess == cs_ascii && c->tent == TENT_JIS)
        guess = cs_jis;
    else if (guess == cs_ascii && c->tent == TENT_UTF8)
        guess = cs_utf8;
    dec_open(c, guess);
    dec_feed(c, h->data, h->len, out);
    if (guess == cs_ascii) {
        /* Nothing contradicted yet: be optimistic again. */
        g_byte_array_set_size(h, 0);
        c->mode = MODE_PREFIX;
    } else {
        c->hold = NULL;
        g_byte_array_unref(h);
        c->mode = MODE_DECODE;
    }
}

struct mg_charset_conv *mg_charset_conv_new(const char *label)
{
    struct mg_charset_conv *c = g_new0(struct mg_charset_conv, 1);

    c->cd = (iconv_t)-1;
    c->label = mg_charset_canon(label);
    if (c->label == NULL || c->label == cs_ascii)
        c->tent = TENT_SNIFF;
    else if (c->label == cs_jis)
        c->tent = TENT_JIS;
    else if (c->label == cs_utf8)
        c->tent = TENT_UTF8;
    else
        c->tent = TENT_NONE;
    if (c->tent == TENT_NONE) {
        dec_open(c, c->label);
        c->mode = MODE_DECODE;
    } else {
        c->mode = MODE_PREFIX;
    }
    return c;
}

void mg_charset_conv_feed(struct mg_charset_conv *c, const void *buf, size_t len, GString *out)
{
    const guchar *p = buf;

    while (len > 0) {
        size_t k = 0;

        switch (c->mode) {
        case MODE_PREFIX:
            while (k < len && prefix_safe(p[k]))
                k++;
            put_utf8(c, (const char *)p, k, out);
            if (k > 0)
                c->started = true;
            if (k < len) {
                c->mode = MODE_HOLD;
                if (c->hold == NULL)
                    c->hold = g_byte_array_sized_new(MIN(len - k, (size_t)SNIFF_WINDOW));
            }
            break;
        case MODE_HOLD:
            k = MIN(len, SNIFF_WINDOW - c->hold->len);
            g_byte_array_append(c->hold, p, (guint)k);
            if (c->hold->len == SNIFF_WINDOW)
                hold_decide(c, false, out);
            break;
        case MODE_DECODE:
            dec_feed(c, p, len, out);
            k = len;
            break;
        }
        p += k;
        len -= k;
    }
}

void mg_charset_conv_finish(struct mg_charset_conv *c, GString *out)
{
    if (c->mode == MODE_HOLD)
        hold_decide(c, true, out);
    if (c->mode == MODE_DECODE) {
        dec_finish(c, out);
    } else if (c->name == NULL) {
        /* All 7-bit and nothing to sniff: the label stands. */
        c->name = c->tent == TENT_JIS ? cs_jis : c->tent == TENT_UTF8 ? cs_utf8 : cs_ascii;
    }
}

const char *mg_charset_conv_name(const struct mg_charset_conv *c)
{
    return c->name;
}

size_t mg_charset_conv_replacements(const struct mg_charset_conv *c)
{
    return c->repl;
}

struct mg_charset_conv *mg_charset_conv_free(struct mg_charset_conv *c)
{
    if (c == NULL)
        return NULL;
    if (c->cd != (iconv_t)-1)
        iconv_close(c->cd);
    if (c->hold != NULL)
        g_byte_array_unref(c->hold);
    if (c->lines != NULL)
        g_byte_array_unref(c->lines);
    g_free(c);
    return NULL;
}

size_t mg_charset_to_utf8(const char *label, const void *buf, size_t len, GString *out)
{
    struct mg_charset_conv *c = mg_charset_conv_new(label);
    size_t repl;

    if (buf != NULL)
        mg_charset_conv_feed(c, buf, len, out);
    mg_charset_conv_finish(c, out);
    repl = c->repl;
    mg_charset_conv_free(c);
    return repl;
}
