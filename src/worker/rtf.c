/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * NAME
 *	rtf 3
 * SUMMARY
 *	rtf-text: the visible text of an RTF document as UTF-8 plain text
 * SYNOPSIS
 *	enum mgw_status mgw_rtf_text(struct mgw *w);
 *
 *	mugaika-worker rtf-text [name=N] [max-depth=256] [max-output=52428800]
 * DESCRIPTION
 *	No library packaged in Debian turns RTF into text from C, so this
 *	is a small hand-written tokenizer, bounded everywhere. It reads the
 *	item through a 64 KiB window (never all of it in memory), keeps one
 *	state record per open group on a stack of max-depth entries, and
 *	writes one output: the option name with its extension replaced by
 *	.txt ("document.txt" without a name), type "text/plain;
 *	charset=utf-8". Nothing but decoded text reaches the output, so an
 *	embedded object can never pass: it is dropped, not rewritten.
 *
 *	Tokens. "{" and "}" open and close a group (the group state is
 *	copied from the parent); "\word[-]N" is a control word (at most 32
 *	letters and 10 digits are kept, a single space after it is part of
 *	it); "\'hh" is one byte of the current code page; "\\" "\{" "\}"
 *	are those bytes; "\~" is U+00A0, "\_" U+2011, "\-" (an optional
 *	hyphen) nothing; a backslash before a line end is \par. Literal
 *	CR and LF are ignored, other control bytes dropped (a tab stays).
 *	The document ends where its outer group closes: closing braces and
 *	anything else after that are ignored (noted as a defect when it is
 *	not white space). Groups still open at the end of the input are
 *	closed: the text read so far is the result, the status stays OK.
 *
 *	Destinations. The control words that start a destination change
 *	the group they appear in (and so its children): font, colour,
 *	style, list, revision and rsid tables, \info, \pict, \object's
 *	parts, \datafield, \template, bookmarks, index entries, shape
 *	properties, footnote separators and every "\*\word" group except
 *	the few kept below are skipped entirely. \object drops everything
 *	but its \result (the rendering a reader without the object shows,
 *	usually a picture, itself dropped). \*\shppict and \*\shpinst are
 *	kept (a text box's text is visible text), \nonshppict and \shprslt
 *	are skipped (the same content again). A "\bin N" skips exactly N
 *	bytes of binary data (never more than the input holds) wherever it
 *	appears, also inside a skipped group, so binary data cannot be
 *	read as tokens. Hidden text (\v) is dropped.
 *
 *	Fields. The text of \fldinst (the field code) goes to a per-field
 *	buffer and never to the output; the \fldrslt text is kept. When the
 *	field code is a HYPERLINK with a target, the target follows the
 *	result text in square brackets, defanged so that no reader makes
 *	it a link again: " [hxxps://example[.]com/page]" (the scheme http,
 *	https, ftp becomes hxxp, hxxps, fxp and the dots of the host part
 *	become "[.]"). A local link (only \l "bookmark") adds nothing.
 *
 *	Code pages. Bytes (literal characters and \'hh escapes) are
 *	collected and converted with GLib's g_iconv from the code page in
 *	force: the current font's \cpgN, else its \fcharsetN from the font
 *	table (0 = ANSI is Windows-1252 itself, 1 = default and a font
 *	without charset use the document's \ansicpgN, 128 CP932, 129 CP949,
 *	130 Johab, 134 CP936, 136 CP950, 161..238 the Windows code pages,
 *	77 Mac Roman), else \ansicpgN (1252 when absent; \mac, \pc, \pca
 *	give 10000, 437, 850). \plain returns to the default font (\deffN).
 *	Because the bytes of a run are converted together, two escapes
 *	"\'82\'a0" make one CP932 character, and a trail byte may also be a
 *	literal character ("\'83]"). A byte that does not convert becomes
 *	U+FFFD. \uN is a UTF-16 unit (negative values + 65536); a high
 *	surrogate followed by a low one makes one character, an unpaired
 *	one U+FFFD. After \uN the next \ucN units are skipped (default 1;
 *	\uc is per group): a character, an escape, a control word or
 *	symbol, or a \bin block each count as one; a brace ends the skip.
 *
 *	Mapped control words: \par \line \row \nestrow \sect \page give a
 *	newline; \tab \cell \nestcell a tab; \emdash \endash \emspace
 *	\enspace \qmspace \bullet \lquote \rquote \ldblquote \rdblquote
 *	\zwj \zwnj \ltrmark \rtlmark their Unicode characters.
 * LIMITS
 *	max-depth (default 256): a group nested deeper ends in MGW_LIMIT.
 *	max-output (default 52428800): more bytes of text end in
 *	MGW_LIMIT. A control word keeps 32 letters and a parameter 10
 *	digits (clamped to a 32-bit int); a field code keeps 4 KiB; 16
 *	fields nest with their own code (deeper ones lose theirs); 4096
 *	fonts are remembered. Work is linear in the input size.
 * DIAGNOSTICS
 *	MGW_FAIL when the item does not start with "{\rtf" (a "{\rt"
 *	document, which Word also opens, is refused too: that header is
 *	an evasion seen in malicious files) or cannot be read. Notes:
 *	"removed" once per kind of thing dropped, with its count (embedded
 *	objects, pictures, binary data blocks, field codes with their
 *	types, form field data, data stores, document properties, template
 *	references, hidden text, other ignorable destinations); "defect"
 *	for groups left open, content after the end and an unknown code
 *	page; "converted" "RTF converted to text".
 */
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "worker/handlers.h"

#define RTF_WINDOW     65536u
#define RTF_PENDING    4096u
#define RTF_OUT_CHUNK  65536u
#define RTF_WORD_MAX   32
#define RTF_FIELD_MAX  16
#define RTF_INSTR_MAX  4096u
#define RTF_FONTS_MAX  4096u
#define RTF_CONVS_MAX  64 /* more than cpnames[]: never evicts */
#define RTF_TYPES_MAX  8
#define RTF_TYPE_LEN   24
#define RTF_DEPTH_CAP  65536u
#define RTF_UC_MAX     1000
#define FONT_DEFAULT   INT_MIN
#define SINK_NONE      (-1)
#define SINK_HIDDEN    (-2)
#define SINK_OUT       (-3)
#define UNICODE_REPL   0xFFFDu
#define UNICODE_MAX_CP 0x10FFFFu

/* What the text of a group is. */
enum dest {
    D_TEXT,    /* visible text: to the output */
    D_SKIP,    /* dropped, and so are all the groups inside */
    D_FONTTBL, /* the font table: \f, \fcharset, \cpg define fonts */
    D_OBJECT,  /* an \object: only its \result is text */
    D_FLDINST, /* a field code: to the field's buffer */
};

/* What a control word does. */
enum kind {
    K_NONE,
    K_SKIP,     /* a destination that is dropped (note: a counter) */
    K_FONTTBL,  /* \fonttbl */
    K_OBJECT,   /* \object */
    K_RESULT,   /* \result */
    K_FIELD,    /* \field */
    K_FLDINST,  /* \fldinst */
    K_KEEP,     /* a destination whose text is kept */
    K_CHAR,     /* a character (val) */
    K_U,        /* \uN */
    K_UC,       /* \ucN */
    K_BIN,      /* \binN */
    K_ANSICPG,  /* \ansicpgN */
    K_CHARSET,  /* \ansi \mac \pc \pca (val: the code page) */
    K_F,        /* \fN */
    K_FCHARSET, /* \fcharsetN */
    K_CPG,      /* \cpgN */
    K_DEFF,     /* \deffN */
    K_PLAIN,    /* \plain */
    K_V,        /* \v (hidden text) */
};

/* Counters of what was dropped. */
enum note {
    N_NONE,
    N_OBJECT,
    N_PICT,
    N_BIN,
    N_FIELD,
    N_DATAFIELD,
    N_DATASTORE,
    N_INFO,
    N_TEMPLATE,
    N_OTHER,
    N_COUNT
};

struct kw {
    const char *name;
    unsigned char kind;
    unsigned char note;
    unsigned val;
};

/* Sorted by name (strcmp) for bsearch. */
static const struct kw kws[] = {
    {"aftncn", K_SKIP, N_NONE, 0},
    {"aftnsep", K_SKIP, N_NONE, 0},
    {"aftnsepc", K_SKIP, N_NONE, 0},
    {"annotation", K_SKIP, N_NONE, 0},
    {"ansi", K_CHARSET, N_NONE, 1252},
    {"ansicpg", K_ANSICPG, N_NONE, 0},
    {"atnauthor", K_SKIP, N_NONE, 0},
    {"atndate", K_SKIP, N_NONE, 0},
    {"atnicn", K_SKIP, N_NONE, 0},
    {"atnid", K_SKIP, N_NONE, 0},
    {"atnparent", K_SKIP, N_NONE, 0},
    {"atnref", K_SKIP, N_NONE, 0},
    {"atntime", K_SKIP, N_NONE, 0},
    {"atrfend", K_SKIP, N_NONE, 0},
    {"atrfstart", K_SKIP, N_NONE, 0},
    {"author", K_SKIP, N_NONE, 0},
    {"bin", K_BIN, N_NONE, 0},
    {"bkmkend", K_SKIP, N_NONE, 0},
    {"bkmkstart", K_SKIP, N_NONE, 0},
    {"blipuid", K_SKIP, N_NONE, 0},
    {"bullet", K_CHAR, N_NONE, 0x2022},
    {"buptim", K_SKIP, N_NONE, 0},
    {"category", K_SKIP, N_NONE, 0},
    {"cell", K_CHAR, N_NONE, '\t'},
    {"colorschememapping", K_SKIP, N_NONE, 0},
    {"colortbl", K_SKIP, N_NONE, 0},
    {"comment", K_SKIP, N_NONE, 0},
    {"company", K_SKIP, N_NONE, 0},
    {"cpg", K_CPG, N_NONE, 0},
    {"creatim", K_SKIP, N_NONE, 0},
    {"datafield", K_SKIP, N_DATAFIELD, 0},
    {"datastore", K_SKIP, N_DATASTORE, 0},
    {"deff", K_DEFF, N_NONE, 0},
    {"do", K_SKIP, N_NONE, 0},
    {"doccomm", K_SKIP, N_NONE, 0},
    {"docvar", K_SKIP, N_NONE, 0},
    {"emdash", K_CHAR, N_NONE, 0x2014},
    {"emspace", K_CHAR, N_NONE, 0x2003},
    {"endash", K_CHAR, N_NONE, 0x2013},
    {"enspace", K_CHAR, N_NONE, 0x2002},
    {"f", K_F, N_NONE, 0},
    {"fcharset", K_FCHARSET, N_NONE, 0},
    {"field", K_FIELD, N_NONE, 0},
    {"filetbl", K_SKIP, N_NONE, 0},
    {"fldinst", K_FLDINST, N_NONE, 0},
    {"fldrslt", K_KEEP, N_NONE, 0},
    {"fonttbl", K_FONTTBL, N_NONE, 0},
    {"formfield", K_SKIP, N_DATAFIELD, 0},
    {"ftncn", K_SKIP, N_NONE, 0},
    {"ftnsep", K_SKIP, N_NONE, 0},
    {"ftnsepc", K_SKIP, N_NONE, 0},
    {"generator", K_SKIP, N_NONE, 0},
    {"hlinkbase", K_SKIP, N_NONE, 0},
    {"info", K_SKIP, N_INFO, 0},
    {"keywords", K_SKIP, N_NONE, 0},
    {"latentstyles", K_SKIP, N_NONE, 0},
    {"ldblquote", K_CHAR, N_NONE, 0x201C},
    {"line", K_CHAR, N_NONE, '\n'},
    {"listoverridetable", K_SKIP, N_NONE, 0},
    {"listtable", K_SKIP, N_NONE, 0},
    {"lquote", K_CHAR, N_NONE, 0x2018},
    {"ltrmark", K_CHAR, N_NONE, 0x200E},
    {"mac", K_CHARSET, N_NONE, 10000},
    {"manager", K_SKIP, N_NONE, 0},
    {"nestcell", K_CHAR, N_NONE, '\t'},
    {"nestrow", K_CHAR, N_NONE, '\n'},
    {"nonshppict", K_SKIP, N_NONE, 0},
    {"objalias", K_SKIP, N_NONE, 0},
    {"objclass", K_SKIP, N_NONE, 0},
    {"objdata", K_SKIP, N_OBJECT, 0},
    {"object", K_OBJECT, N_OBJECT, 0},
    {"objname", K_SKIP, N_NONE, 0},
    {"objsect", K_SKIP, N_NONE, 0},
    {"objtime", K_SKIP, N_NONE, 0},
    {"operator", K_SKIP, N_NONE, 0},
    {"page", K_CHAR, N_NONE, '\n'},
    {"par", K_CHAR, N_NONE, '\n'},
    {"pc", K_CHARSET, N_NONE, 437},
    {"pca", K_CHARSET, N_NONE, 850},
    {"pgdsctbl", K_SKIP, N_NONE, 0},
    {"pict", K_SKIP, N_PICT, 0},
    {"plain", K_PLAIN, N_NONE, 0},
    {"pn", K_SKIP, N_NONE, 0},
    {"pntxta", K_SKIP, N_NONE, 0},
    {"pntxtb", K_SKIP, N_NONE, 0},
    {"printim", K_SKIP, N_NONE, 0},
    {"private", K_SKIP, N_NONE, 0},
    {"protusertbl", K_SKIP, N_NONE, 0},
    {"qmspace", K_CHAR, N_NONE, 0x2005},
    {"rdblquote", K_CHAR, N_NONE, 0x201D},
    {"result", K_RESULT, N_NONE, 0},
    {"revtbl", K_SKIP, N_NONE, 0},
    {"revtim", K_SKIP, N_NONE, 0},
    {"row", K_CHAR, N_NONE, '\n'},
    {"rquote", K_CHAR, N_NONE, 0x2019},
    {"rsidtbl", K_SKIP, N_NONE, 0},
    {"rtlmark", K_CHAR, N_NONE, 0x200F},
    {"rxe", K_SKIP, N_NONE, 0},
    {"sect", K_CHAR, N_NONE, '\n'},
    {"shpinst", K_KEEP, N_NONE, 0},
    {"shppict", K_KEEP, N_NONE, 0},
    {"shprslt", K_SKIP, N_NONE, 0},
    {"sn", K_SKIP, N_NONE, 0},
    {"sp", K_SKIP, N_NONE, 0},
    {"stylesheet", K_SKIP, N_NONE, 0},
    {"subject", K_SKIP, N_NONE, 0},
    {"sv", K_SKIP, N_NONE, 0},
    {"tab", K_CHAR, N_NONE, '\t'},
    {"template", K_SKIP, N_TEMPLATE, 0},
    {"themedata", K_SKIP, N_NONE, 0},
    {"title", K_SKIP, N_NONE, 0},
    {"txe", K_SKIP, N_NONE, 0},
    {"u", K_U, N_NONE, 0},
    {"uc", K_UC, N_NONE, 0},
    {"userprops", K_SKIP, N_NONE, 0},
    {"v", K_V, N_NONE, 0},
    {"xe", K_SKIP, N_NONE, 0},
    {"xmlnstbl", K_SKIP, N_NONE, 0},
    {"zwj", K_CHAR, N_NONE, 0x200D},
    {"zwnj", K_CHAR, N_NONE, 0x200C},
};

/* Windows code pages and the iconv names that convert them. */
struct cpname {
    int cp;
    const char *name;
};

static const struct cpname cpnames[] = {
    {437, "CP437"},        {737, "CP737"},         {775, "CP775"},        {850, "CP850"},
    {852, "CP852"},        {855, "CP855"},         {857, "CP857"},        {860, "CP860"},
    {861, "CP861"},        {862, "CP862"},         {863, "CP863"},        {864, "CP864"},
    {865, "CP865"},        {866, "CP866"},         {869, "CP869"},        {874, "CP874"},
    {932, "CP932"},        {936, "CP936"},         {949, "CP949"},        {950, "CP950"},
    {1250, "CP1250"},      {1251, "CP1251"},       {1252, "CP1252"},      {1253, "CP1253"},
    {1254, "CP1254"},      {1255, "CP1255"},       {1256, "CP1256"},      {1257, "CP1257"},
    {1258, "CP1258"},      {1361, "JOHAB"},        {10000, "MACINTOSH"},  {10007, "MAC-CYRILLIC"},
    {20127, "ASCII"},      {20866, "KOI8-R"},      {20932, "EUC-JP"},     {21866, "KOI8-U"},
    {28591, "ISO-8859-1"}, {28592, "ISO-8859-2"},  {28593, "ISO-8859-3"}, {28594, "ISO-8859-4"},
    {28595, "ISO-8859-5"}, {28596, "ISO-8859-6"},  {28597, "ISO-8859-7"}, {28598, "ISO-8859-8"},
    {28599, "ISO-8859-9"}, {28605, "ISO-8859-15"}, {51932, "EUC-JP"},     {51936, "GB2312"},
    {51949, "EUC-KR"},     {54936, "GB18030"},     {65001, "UTF-8"},
};

/* \fcharsetN to a code page; 1 (default) and unknown ones use \ansicpg. */
struct charset {
    int charset;
    int cp;
};

static const struct charset charsets[] = {
    {0, 1252},   {77, 10000}, {78, 932},   {79, 949},   {80, 936},   {81, 950},
    {128, 932},  {129, 949},  {130, 1361}, {134, 936},  {136, 950},  {161, 1253},
    {162, 1254}, {163, 1258}, {177, 1255}, {178, 1256}, {186, 1257}, {204, 1251},
    {222, 874},  {238, 1250}, {254, 437},  {255, 437},
};

/* The input, read through a window; one byte can be pushed back. */
struct rd {
    unsigned char buf[RTF_WINDOW];
    size_t pos, len;
    uint64_t off;  /* file offset of buf[len] */
    uint64_t size; /* input size */
    int back;      /* pushed-back byte or -1 */
    bool err;
};

struct group {
    unsigned char dest; /* enum dest */
    bool hidden;        /* \v */
    bool star;          /* "\*" seen, its control word not yet */
    bool in_object;     /* inside an \object */
    bool field_owner;   /* this group is a \field (owns field) */
    int uc;             /* \uc: units to skip after \u */
    int font;           /* \f, or FONT_DEFAULT */
    int field;          /* index in rtf.fields, or -1 */
};

struct font {
    int charset; /* -1: none given */
    int cpg;     /* 0: none given */
};

struct conv {
    int cp;
    GIConv cd; /* (GIConv)-1 when the code page cannot be converted */
};

struct rtf {
    struct mgw *w;
    struct rd rd;
    struct group *stack;
    unsigned depth, max_depth;
    bool limit, broken, ended;

    GString *out;
    uint64_t out_total, max_output;

    unsigned char pend[RTF_PENDING]; /* bytes not converted yet */
    size_t npend;
    int pend_cp, pend_sink;
    unsigned hi_sur; /* a high surrogate waiting for its pair */
    int hi_sink;
    unsigned skip_left; /* \uc units still to skip */

    int ansicpg, deff, fontdef;
    GHashTable *fonts; /* int -> struct font */
    struct conv convs[RTF_CONVS_MAX];
    unsigned nconv;
    bool cp_noted;

    GString *fields[RTF_FIELD_MAX]; /* field codes of the open fields */
    unsigned nfields;

    uint64_t count[N_COUNT];
    uint64_t hidden;
    char types[RTF_TYPES_MAX][RTF_TYPE_LEN + 1];
    unsigned ntypes;
};

/* ---- input ---- */

static bool rd_fill(struct mgw *w, struct rd *r)
{
    ssize_t n;

    if (r->err || r->off >= r->size)
        return false;
    do
        n = pread(mgw_input_fd(w), r->buf, sizeof r->buf, (off_t)r->off);
    while (n < 0 && errno == EINTR);
    if (n <= 0) {
        /* a short read of a regular file that fstat measured */
        r->err = true;
        return false;
    }
    r->pos = 0;
    r->len = (size_t)n;
    r->off += (uint64_t)n;
    return true;
}

static int rd_get(struct rtf *t)
{
    struct rd *r = &t->rd;
    int c;

    if (r->back >= 0) {
        c = r->back;
        r->back = -1;
        return c;
    }
    if (r->pos == r->len && !rd_fill(t->w, r))
        return -1;
    return r->buf[r->pos++];
}

static void rd_unget(struct rtf *t, int c)
{
    if (c >= 0)
        t->rd.back = c;
}

/* Skips n bytes (a \bin block), never past the end of the input. */
static void rd_skip(struct rtf *t, uint64_t n)
{
    struct rd *r = &t->rd;
    size_t avail;

    if (n > 0 && r->back >= 0) {
        r->back = -1;
        n--;
    }
    avail = r->len - r->pos;
    if (n <= avail) {
        r->pos += (size_t)n;
        return;
    }
    n -= avail;
    r->pos = r->len = 0;
    if (r->off >= r->size || n >= r->size - r->off)
        r->off = MAX(r->off, r->size);
    else
        r->off += n;
}

/* ---- output ---- */

static void out_flush(struct rtf *t)
{
    if (t->out->len > 0 && !t->broken) {
        if (!mgw_out_write(t->w, t->out->str, t->out->len))
            t->broken = true;
    }
    g_string_truncate(t->out, 0);
}

/* Appends n bytes of UTF-8 to SINK (the output or a field code). */
static void sink_write(struct rtf *t, int sink, const char *s, size_t n)
{
    if (sink == SINK_OUT) {
        if (t->limit)
            return;
        if (n > t->max_output - t->out_total) {
            mgw_reason(t->w, "text larger than %" G_GUINT64_FORMAT " bytes", t->max_output);
            t->limit = true;
            return;
        }
        g_string_append_len(t->out, s, (gssize)n);
        t->out_total += n;
        if (t->out->len >= RTF_OUT_CHUNK)
            out_flush(t);
    } else if (sink >= 0 && (unsigned)sink < t->nfields) {
        GString *f = t->fields[sink];
        if (f->len + n <= RTF_INSTR_MAX)
            g_string_append_len(f, s, (gssize)n);
    }
}

static void put_cp(struct rtf *t, int sink, unsigned u)
{
    char buf[8];
    int n;

    if (u > UNICODE_MAX_CP || (u >= 0xD800 && u <= 0xDFFF))
        u = UNICODE_REPL;
    /* control characters never reach the text, but tab and newline */
    if ((u < 0x20 && u != '\t' && u != '\n') || (u >= 0x7F && u < 0xA0))
        return;
    n = g_unichar_to_utf8((gunichar)u, buf);
    sink_write(t, sink, buf, (size_t)n);
}

/* A high surrogate not followed by its low half. */
static void sur_flush(struct rtf *t)
{
    if (t->hi_sur != 0) {
        put_cp(t, t->hi_sink, UNICODE_REPL);
        t->hi_sur = 0;
    }
}

/* ---- code pages ---- */

static const char *cp_name(int cp)
{
    size_t lo = 0, hi = G_N_ELEMENTS(cpnames);

    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (cpnames[mid].cp == cp)
            return cpnames[mid].name;
        if (cpnames[mid].cp < cp)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

static GIConv conv_get(struct rtf *t, int cp)
{
    const char *name = cp_name(cp);
    GIConv cd;
    unsigned i;

    for (i = 0; i < t->nconv; i++)
        if (t->convs[i].cp == cp)
            return t->convs[i].cd;
    cd = g_iconv_open("UTF-8", name != NULL ? name : "CP1252");
    if (t->nconv == RTF_CONVS_MAX) {
        /* more code pages than slots: the last one is reused */
        i = RTF_CONVS_MAX - 1;
        if (t->convs[i].cd != (GIConv)-1)
            g_iconv_close(t->convs[i].cd);
    } else {
        i = t->nconv++;
    }
    t->convs[i].cp = cp;
    t->convs[i].cd = cd;
    return cd;
}

/* Converts the pending bytes; when !final an incomplete character at
 * the end stays pending (the buffer filled up in its middle). */
static void pend_flush(struct rtf *t, bool final)
{
    GIConv cd;
    char *in = (char *)t->pend;
    gsize inleft = t->npend;

    if (t->npend == 0)
        return;
    cd = conv_get(t, t->pend_cp);
    if (cd == (GIConv)-1) {
        /* no converter: ASCII passes, the rest is replaced */
        for (size_t i = 0; i < t->npend; i++)
            put_cp(t, t->pend_sink, t->pend[i] < 0x80 ? t->pend[i] : UNICODE_REPL);
        t->npend = 0;
        return;
    }
    g_iconv(cd, NULL, NULL, NULL, NULL);
    while (inleft > 0) {
        char obuf[1024], *op = obuf;
        gsize oleft = sizeof obuf;
        gsize rc = g_iconv(cd, &in, &inleft, &op, &oleft);
        int e = errno;

        sink_write(t, t->pend_sink, obuf, (size_t)(op - obuf));
        if (rc != (gsize)-1 || e == E2BIG)
            continue;
        if (e == EINVAL && !final && inleft < 8) {
            memmove(t->pend, in, inleft);
            t->npend = inleft;
            return;
        }
        /* EILSEQ, or a lone lead byte at the end of a run */
        put_cp(t, t->pend_sink, UNICODE_REPL);
        in++;
        inleft--;
        g_iconv(cd, NULL, NULL, NULL, NULL);
    }
    t->npend = 0;
}

static void push_byte(struct rtf *t, int sink, int cp, unsigned char b)
{
    sur_flush(t);
    if (t->npend > 0 && (t->pend_cp != cp || t->pend_sink != sink))
        pend_flush(t, true);
    if (t->npend == sizeof t->pend)
        pend_flush(t, false);
    if (t->npend == sizeof t->pend)
        pend_flush(t, true);
    t->pend_cp = cp;
    t->pend_sink = sink;
    t->pend[t->npend++] = b;
}

/* A character from a control word or \u: ends the pending byte run. */
static void emit_unicode(struct rtf *t, int sink, unsigned u)
{
    pend_flush(t, true);
    if (u >= 0xD800 && u <= 0xDBFF) {
        sur_flush(t);
        t->hi_sur = u;
        t->hi_sink = sink;
        return;
    }
    if (u >= 0xDC00 && u <= 0xDFFF) {
        if (t->hi_sur != 0 && t->hi_sink == sink) {
            u = 0x10000 + ((t->hi_sur - 0xD800) << 10) + (u - 0xDC00);
            t->hi_sur = 0;
        } else {
            u = UNICODE_REPL;
        }
    }
    sur_flush(t);
    put_cp(t, sink, u);
}

static int charset_cp(const struct rtf *t, int charset)
{
    for (size_t i = 0; i < G_N_ELEMENTS(charsets); i++)
        if (charsets[i].charset == charset)
            return charsets[i].cp;
    return t->ansicpg;
}

/* The code page of \'hh bytes in group g. */
static int cp_of(const struct rtf *t, const struct group *g)
{
    int f = g->font == FONT_DEFAULT ? t->deff : g->font;
    const struct font *ft;

    if (f == FONT_DEFAULT)
        return t->ansicpg;
    ft = g_hash_table_lookup(t->fonts, GINT_TO_POINTER(f));
    if (ft == NULL)
        return t->ansicpg;
    if (ft->cpg > 0)
        return ft->cpg;
    return ft->charset < 0 ? t->ansicpg : charset_cp(t, ft->charset);
}

static bool cp_known(struct rtf *t, int cp)
{
    if (cp_name(cp) != NULL)
        return true;
    if (!t->cp_noted) {
        mgw_note(t->w, "defect", "code page %d is not supported; Windows-1252 is used", cp);
        t->cp_noted = true;
    }
    return false;
}

static struct font *font_get(struct rtf *t, int f)
{
    struct font *ft = g_hash_table_lookup(t->fonts, GINT_TO_POINTER(f));

    if (ft == NULL && g_hash_table_size(t->fonts) < RTF_FONTS_MAX) {
        ft = g_new(struct font, 1);
        ft->charset = -1;
        ft->cpg = 0;
        g_hash_table_insert(t->fonts, GINT_TO_POINTER(f), ft);
    }
    return ft;
}

/* ---- fields ---- */

static void field_type(struct rtf *t, const char *instr)
{
    char type[RTF_TYPE_LEN + 1];
    size_t n = 0;

    while (*instr == ' ' || *instr == '\t' || *instr == '\n')
        instr++;
    while (g_ascii_isalnum(*instr) && n < RTF_TYPE_LEN)
        type[n++] = g_ascii_toupper(*instr++);
    type[n] = '\0';
    if (n == 0)
        return;
    for (unsigned i = 0; i < t->ntypes; i++)
        if (strcmp(t->types[i], type) == 0)
            return;
    if (t->ntypes < RTF_TYPES_MAX)
        memcpy(t->types[t->ntypes++], type, n + 1);
}

/* One argument of a field code at *p (quoted or a word); NULL at the end. */
static char *field_arg(const char **p)
{
    const char *s = *p, *e;

    while (*s == ' ' || *s == '\t' || *s == '\n')
        s++;
    if (*s == '\0') {
        *p = s;
        return NULL;
    }
    if (*s == '"') {
        s++;
        e = strchr(s, '"');
        if (e == NULL)
            e = s + strlen(s);
        *p = *e == '"' ? e + 1 : e;
        return g_strndup(s, (gsize)(e - s));
    }
    e = s;
    while (*e != '\0' && *e != ' ' && *e != '\t' && *e != '\n')
        e++;
    *p = e;
    return g_strndup(s, (gsize)(e - s));
}

/* The target of a HYPERLINK field code, or NULL (owned by the caller). */
static char *hyperlink_target(const char *instr)
{
    const char *p = instr;
    char *a;

    while (*p == ' ' || *p == '\t' || *p == '\n')
        p++;
    if (g_ascii_strncasecmp(p, "HYPERLINK", 9) != 0 || g_ascii_isalnum(p[9]))
        return NULL;
    p += 9;
    while ((a = field_arg(&p)) != NULL) {
        if (a[0] != '\\') {
            if (a[0] != '\0')
                return a;
            g_free(a);
            continue;
        }
        /* switches: \l \o \t take an argument, \m \n none */
        if (a[1] == 'l' || a[1] == 'o' || a[1] == 't')
            g_free(field_arg(&p));
        g_free(a);
    }
    return NULL;
}

/* hxxps://example[.]com/path: no reader makes a link of it again. */
static GString *defang(const char *url)
{
    GString *d = g_string_new(NULL);
    const char *p = url, *colon = NULL, *host;
    bool in_host = true;

    for (const char *q = url; *q != '\0' && q - url < 16; q++) {
        if (*q == ':') {
            colon = q;
            break;
        }
        if (!g_ascii_isalnum(*q) && *q != '+' && *q != '-' && *q != '.')
            break;
    }
    if (colon != NULL) {
        size_t n = (size_t)(colon - url);
        if (n == 4 && g_ascii_strncasecmp(url, "http", 4) == 0)
            g_string_append(d, "hxxp");
        else if (n == 5 && g_ascii_strncasecmp(url, "https", 5) == 0)
            g_string_append(d, "hxxps");
        else if (n == 3 && g_ascii_strncasecmp(url, "ftp", 3) == 0)
            g_string_append(d, "fxp");
        else
            g_string_append_len(d, url, (gssize)n);
        p = colon;
    }
    host = p;
    if (colon != NULL) {
        g_string_append_c(d, ':');
        p++;
        while (*p == '/')
            g_string_append_c(d, *p++);
        host = p;
    }
    for (; *p != '\0'; p++) {
        unsigned char c = (unsigned char)*p;
        if (c < 0x20)
            continue;
        if (in_host && (c == '/' || c == '?' || c == '#') && p > host)
            in_host = false;
        if (in_host && c == '.')
            g_string_append(d, "[.]");
        else
            g_string_append_c(d, (char)c);
    }
    return d;
}

static void field_end(struct rtf *t, const struct group *g)
{
    const char *instr;
    char *target;

    if (g->field < 0 || (unsigned)g->field >= t->nfields)
        return;
    pend_flush(t, true);
    sur_flush(t);
    instr = t->fields[g->field]->str;
    field_type(t, instr);
    target = hyperlink_target(instr);
    if (target != NULL && g->dest == D_TEXT && !g->hidden) {
        GString *d = defang(target);
        sink_write(t, SINK_OUT, " [", 2);
        sink_write(t, SINK_OUT, d->str, d->len);
        sink_write(t, SINK_OUT, "]", 1);
        g_string_free(d, TRUE);
    }
    g_free(target);
    g_string_truncate(t->fields[g->field], 0);
    t->nfields = (unsigned)g->field;
}

/* ---- tokens ---- */

static struct group *top(struct rtf *t)
{
    return &t->stack[t->depth - 1];
}

static int sink_of(const struct group *g)
{
    if (g->dest == D_TEXT)
        return g->hidden ? SINK_HIDDEN : SINK_OUT;
    if (g->dest == D_FLDINST)
        return g->field >= 0 ? g->field : SINK_NONE;
    return SINK_NONE;
}

/* A "\*" group whose control word is not a known destination: skipped
 * (counted when its text would have been visible). */
static void star_skip(struct rtf *t, struct group *g)
{
    if (g->dest == D_TEXT)
        t->count[N_OTHER]++;
    g->dest = D_SKIP;
    g->star = false;
}

/* A unit of text (a character, an escape, a control symbol): its sink,
 * or SINK_NONE when a \uc fallback or a "\*" group takes it. */
static int text_unit(struct rtf *t, struct group *g)
{
    int s;

    if (t->skip_left > 0) {
        t->skip_left--;
        return SINK_NONE;
    }
    if (g->star) {
        star_skip(t, g);
        return SINK_NONE;
    }
    s = sink_of(g);
    if (s == SINK_HIDDEN) {
        t->hidden++;
        return SINK_NONE;
    }
    return s;
}

static void text_byte(struct rtf *t, unsigned char b)
{
    struct group *g = top(t);
    int s = text_unit(t, g);

    if (s == SINK_NONE || (b < 0x20 && b != '\t'))
        return;
    push_byte(t, s, cp_of(t, g), b);
}

static void text_char(struct rtf *t, unsigned u)
{
    int s = text_unit(t, top(t));

    if (s != SINK_NONE)
        emit_unicode(t, s, u);
}

static bool group_open(struct rtf *t)
{
    struct group *p = top(t);

    t->skip_left = 0;
    if (p->star)
        star_skip(t, p);
    if (t->depth >= t->max_depth) {
        mgw_reason(t->w, "RTF groups nested deeper than %u", t->max_depth);
        t->limit = true;
        return false;
    }
    t->stack[t->depth] = *p;
    t->stack[t->depth].field_owner = false;
    t->depth++;
    return true;
}

static void group_close(struct rtf *t)
{
    struct group *g = top(t);

    t->skip_left = 0;
    if (g->field_owner)
        field_end(t, g);
    if (--t->depth == 0)
        t->ended = true;
}

static const struct kw *kw_find(const char *name)
{
    size_t lo = 0, hi = G_N_ELEMENTS(kws);

    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        int c = strcmp(name, kws[mid].name);
        if (c == 0)
            return &kws[mid];
        if (c > 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

static bool is_dest(int kind)
{
    return kind == K_SKIP || kind == K_FONTTBL || kind == K_OBJECT || kind == K_RESULT ||
           kind == K_FIELD || kind == K_FLDINST || kind == K_KEEP;
}

static void bin_skip(struct rtf *t, bool has, int v)
{
    if (has && v > 0) {
        t->count[N_BIN]++;
        rd_skip(t, (uint64_t)v);
    }
}

static void do_field(struct rtf *t, struct group *g)
{
    if (g->field_owner)
        return;
    if (t->nfields < RTF_FIELD_MAX) {
        g->field = (int)t->nfields++;
        g->field_owner = true;
        g_string_truncate(t->fields[g->field], 0);
    } else {
        g->field = -1;
    }
}

/* Control words that set fonts and code pages. */
static void do_font_word(struct rtf *t, struct group *g, int kind, int v)
{
    struct font *ft;

    switch (kind) {
    case K_F:
        if (g->dest == D_FONTTBL) {
            t->fontdef = v;
            font_get(t, v);
        } else {
            g->font = v;
        }
        break;
    case K_FCHARSET:
    case K_CPG:
        if (g->dest != D_FONTTBL || t->fontdef == FONT_DEFAULT)
            break;
        ft = font_get(t, t->fontdef);
        if (ft == NULL)
            break;
        if (kind == K_FCHARSET)
            ft->charset = v;
        else if (cp_known(t, v))
            ft->cpg = v;
        break;
    case K_ANSICPG:
        if (v > 0 && cp_known(t, v))
            t->ansicpg = v;
        break;
    case K_DEFF:
        t->deff = v;
        break;
    case K_PLAIN:
        g->font = FONT_DEFAULT;
        g->hidden = false;
        break;
    default:
        break;
    }
}

static void control_word(struct rtf *t, const char *name, bool has, int v)
{
    struct group *g = top(t);
    const struct kw *k = kw_find(name);
    int kind = k != NULL ? k->kind : K_NONE;
    int s;

    if (t->skip_left > 0) {
        /* a \uc fallback unit: not executed, but binary data is data */
        t->skip_left--;
        if (kind == K_BIN)
            bin_skip(t, has, v);
        return;
    }
    if (kind == K_BIN) {
        bin_skip(t, has, v);
        return;
    }
    /* objects are counted wherever they are, skipped groups too */
    if (kind == K_OBJECT || (k != NULL && k->note == N_OBJECT && !g->in_object))
        t->count[N_OBJECT]++;
    if (g->dest == D_SKIP)
        return;
    if (g->star) {
        if (!is_dest(kind)) {
            star_skip(t, g);
            return;
        }
        g->star = false;
    }
    switch (kind) {
    case K_SKIP:
        /* counted when met where text is visible (not twice for the
         * alternative copies inside skipped groups) */
        if (k->note != N_NONE && k->note != N_OBJECT && g->dest != D_FONTTBL)
            t->count[k->note]++;
        g->dest = D_SKIP;
        break;
    case K_FONTTBL:
        g->dest = D_FONTTBL;
        break;
    case K_OBJECT:
        g->dest = D_OBJECT;
        g->in_object = true;
        break;
    case K_RESULT:
        if (g->dest == D_OBJECT)
            g->dest = D_TEXT;
        break;
    case K_FIELD:
        do_field(t, g);
        break;
    case K_FLDINST:
        g->dest = D_FLDINST;
        t->count[N_FIELD]++;
        break;
    case K_CHAR:
        s = sink_of(g);
        if (s == SINK_HIDDEN)
            t->hidden++;
        else if (s != SINK_NONE)
            emit_unicode(t, s, k->val);
        break;
    case K_U:
        s = sink_of(g);
        if (s == SINK_HIDDEN)
            t->hidden++;
        else if (s != SINK_NONE)
            emit_unicode(t, s, v < 0 ? (unsigned)(v + 65536) : (unsigned)v);
        t->skip_left = (unsigned)g->uc;
        break;
    case K_UC:
        g->uc = !has ? 1 : v < 0 ? 0 : v > RTF_UC_MAX ? RTF_UC_MAX : v;
        break;
    case K_CHARSET:
        t->ansicpg = (int)k->val;
        break;
    case K_V:
        g->hidden = !has || v != 0;
        break;
    default:
        do_font_word(t, g, kind, v);
        break;
    }
}

/* After a backslash: a control word, \'hh, or a control symbol. */
static void control(struct rtf *t)
{
    char name[RTF_WORD_MAX + 1];
    size_t n = 0, digits = 0;
    bool neg = false, toolong = false;
    int64_t v = 0;
    int c = rd_get(t), d;

    if (c < 0)
        return;
    if (g_ascii_isalpha(c)) {
        do {
            if (n < RTF_WORD_MAX)
                name[n++] = (char)c;
            else
                toolong = true;
            c = rd_get(t);
        } while (c >= 0 && g_ascii_isalpha(c));
        name[n] = '\0';
        if (c == '-') {
            d = rd_get(t);
            if (d >= 0 && g_ascii_isdigit(d)) {
                neg = true;
                c = d;
            } else {
                /* "-" is not a parameter here: it is text */
                rd_unget(t, d);
                control_word(t, toolong ? "" : name, false, 0);
                if (!t->limit)
                    text_byte(t, '-');
                return;
            }
        }
        while (c >= 0 && g_ascii_isdigit(c)) {
            if (digits++ < 10)
                v = v * 10 + (c - '0');
            c = rd_get(t);
        }
        if (c != ' ')
            rd_unget(t, c);
        if (v > INT_MAX)
            v = INT_MAX;
        control_word(t, toolong ? "" : name, digits > 0, (int)(neg ? -v : v));
        return;
    }
    switch (c) {
    case '\'':
        c = rd_get(t);
        if (c < 0 || !g_ascii_isxdigit(c)) {
            rd_unget(t, c);
            return;
        }
        v = g_ascii_xdigit_value((char)c);
        c = rd_get(t);
        if (c >= 0 && g_ascii_isxdigit(c))
            v = v * 16 + g_ascii_xdigit_value((char)c);
        else
            rd_unget(t, c);
        text_byte(t, (unsigned char)v);
        break;
    case '\\':
    case '{':
    case '}':
        text_byte(t, (unsigned char)c);
        break;
    case '\r':
    case '\n':
        control_word(t, "par", false, 0);
        break;
    case '*':
        if (t->skip_left > 0)
            t->skip_left--;
        else if (top(t)->dest != D_SKIP)
            top(t)->star = true;
        break;
    case '~':
        text_char(t, 0xA0);
        break;
    case '_':
        text_char(t, 0x2011);
        break;
    default:
        /* \- (optional hyphen), \| \: and unknown symbols: nothing */
        text_unit(t, top(t));
        break;
    }
}

static void parse(struct rtf *t)
{
    int c;

    while (!t->ended && !t->limit && !t->broken && (c = rd_get(t)) >= 0) {
        switch (c) {
        case '{':
            if (t->depth == 0)
                t->depth = 1; /* the outer group: its state is ready */
            else
                group_open(t);
            break;
        case '}':
            group_close(t);
            break;
        case '\\':
            control(t);
            break;
        case '\r':
        case '\n':
            break;
        default:
            if (c >= 0x20 || c == '\t')
                text_byte(t, (unsigned char)c);
            break;
        }
    }
    pend_flush(t, true);
    sur_flush(t);
}

/* ---- the handler ---- */

static void note_count(struct mgw *w, uint64_t n, const char *one, const char *many)
{
    if (n > 0)
        mgw_note(w, "removed", "%" G_GUINT64_FORMAT " %s", n, n == 1 ? one : many);
}

static void notes(struct rtf *t)
{
    struct mgw *w = t->w;
    uint64_t *c = t->count;

    note_count(w, c[N_OBJECT], "embedded object", "embedded objects");
    note_count(w, c[N_PICT], "picture", "pictures");
    note_count(w, c[N_BIN], "block of binary data", "blocks of binary data");
    if (c[N_FIELD] > 0) {
        GString *s = g_string_new(NULL);
        for (unsigned i = 0; i < t->ntypes; i++)
            g_string_append_printf(s, "%s%s", i > 0 ? ", " : " (", t->types[i]);
        if (t->ntypes > 0)
            g_string_append_c(s, ')');
        mgw_note(w, "removed", "%" G_GUINT64_FORMAT " field code%s%s", c[N_FIELD],
                 c[N_FIELD] == 1 ? "" : "s", s->str);
        g_string_free(s, TRUE);
    }
    note_count(w, c[N_DATAFIELD], "form field data block", "form field data blocks");
    note_count(w, c[N_DATASTORE], "data store", "data stores");
    if (c[N_INFO] > 0)
        mgw_note(w, "removed", "document properties");
    note_count(w, c[N_TEMPLATE], "template reference", "template references");
    if (t->hidden > 0)
        mgw_note(w, "removed", "hidden text (%" G_GUINT64_FORMAT " characters)", t->hidden);
    note_count(w, c[N_OTHER], "other ignorable destination", "other ignorable destinations");
}

/* Reads what follows the end of the document: only white space, NULs and
 * extra closing braces are expected there. */
static void trailer(struct rtf *t)
{
    int c;

    while ((c = rd_get(t)) >= 0)
        if (c != '}' && c != ' ' && c != '\r' && c != '\n' && c != '\t' && c != '\0') {
            mgw_note(t->w, "defect", "content after the end of the RTF document was ignored");
            return;
        }
}

enum mgw_status mgw_rtf_text(struct mgw *w)
{
    struct rtf *t = g_new0(struct rtf, 1);
    enum mgw_status st = MGW_FAIL;
    uint64_t depth = mgw_option_u64(w, "max-depth", 256);
    char *name = NULL;
    char head[5];

    t->w = w;
    t->rd.size = mgw_input_size(w);
    t->rd.back = -1;
    t->max_output = mgw_option_u64(w, "max-output", 52428800);
    t->max_depth = (unsigned)CLAMP(depth, 1, RTF_DEPTH_CAP);
    t->ansicpg = 1252;
    t->deff = FONT_DEFAULT;
    t->fontdef = FONT_DEFAULT;
    t->fonts = g_hash_table_new_full(g_direct_hash, g_direct_equal, NULL, g_free);
    t->out = g_string_sized_new(RTF_OUT_CHUNK + 4096);
    for (unsigned i = 0; i < RTF_FIELD_MAX; i++)
        t->fields[i] = g_string_new(NULL);
    t->stack = g_new0(struct group, t->max_depth);
    t->stack[0].dest = D_TEXT;
    t->stack[0].uc = 1;
    t->stack[0].font = FONT_DEFAULT;
    t->stack[0].field = -1;

    for (size_t i = 0; i < sizeof head; i++) {
        int c = rd_get(t);
        head[i] = (char)(c < 0 ? 0 : c);
    }
    if (t->rd.err) {
        mgw_reason(w, "input unreadable");
        goto out;
    }
    if (memcmp(head, "{\\rtf", 5) != 0) {
        mgw_reason(w, "not an RTF document (no \"{\\rtf\" at the start)");
        goto out;
    }
    /* the outer group and its \rtf word, read again by the parser */
    t->rd.pos = 0;
    t->rd.back = -1;
    name = mgw_text_name(w);
    if (!mgw_out_begin(w, name, "text/plain; charset=utf-8", 0))
        goto out;
    parse(t);
    if (t->limit) {
        st = MGW_LIMIT;
        goto out;
    }
    if (t->rd.err) {
        mgw_reason(w, "input unreadable");
        goto out;
    }
    out_flush(t);
    if (t->broken)
        goto out;
    if (t->ended)
        trailer(t);
    else if (t->depth > 0)
        mgw_note(w, "defect", "%u RTF group%s not closed at the end of the input", t->depth,
                 t->depth == 1 ? "" : "s");
    notes(t);
    mgw_note(w, "converted", "RTF converted to text");
    st = mgw_out_end(w) ? MGW_OK : MGW_FAIL;
out:
    for (unsigned i = 0; i < t->nconv; i++)
        if (t->convs[i].cd != (GIConv)-1)
            g_iconv_close(t->convs[i].cd);
    for (unsigned i = 0; i < RTF_FIELD_MAX; i++)
        g_string_free(t->fields[i], TRUE);
    g_hash_table_unref(t->fonts);
    g_string_free(t->out, TRUE);
    g_free(t->stack);
    g_free(name);
    g_free(t);
    return st;
}
