/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * NAME
 *	html 3
 * SUMMARY
 *	HTML to plain text, for staff to read
 * SYNOPSIS
 *	#include <mugaika/html.h>
 *
 *	void mg_html_opts_default(struct mg_html_opts *o);
 *	struct mg_html *mg_html_new(const struct mg_html_opts *o);
 *	void mg_html_feed(struct mg_html *h, const char *utf8, size_t len);
 *	unsigned mg_html_finish(struct mg_html *h, GString *out);
 *	struct mg_html *mg_html_free(struct mg_html *h);
 *	unsigned mg_html_to_text(const char *buf, size_t len, const char *label,
 *	                         const struct mg_html_opts *o, GString *out);
 * DESCRIPTION
 *	Three stages, all streaming:
 *
 *	1. Input cleaning (clean_input): invalid UTF-8 and the characters
 *	libxml2 rejects (C0 controls but TAB/LF, U+FFFE/U+FFFF) become
 *	U+FFFD, FF a space, CR LF and CR a LF, and every '&' is written
 *	"&amp;". libxml2 (which knows only the HTML4 entities and
 *	decodes malformed references differently from browsers) thus
 *	hands back the references untouched, and html_ent_decode decodes
 *	them with the HTML5 rules. The cleaned stream goes to libxml2 in
 *	fixed blocks of BLOCK bytes cut at character boundaries, so the
 *	parser sees the same chunks whatever the caller's chunking.
 *
 *	2. libxml2's HTML push parser (SAX: start/end element,
 *	characters; no network, no entities, encoding forced to UTF-8,
 *	errors discarded) builds the element structure, with its
 *	implied and auto-closed elements.
 *
 *	3. The formatter (on_start, on_end, emit_*) keeps a stack of open
 *	elements and writes text: block breaks, list markers, table
 *	cells, links and images. Text runs are collected until the next
 *	element event and decoded then (a reference never spans a tag).
 *
 *	mg_html_new: the converter is owned by the caller
 *	(mg_html_free). mg_html_feed: input is copied; the caller keeps
 *	its buffer. mg_html_finish: appends the text and the link list
 *	to out and returns MG_HTML_* flags; call it once, then only
 *	mg_html_free. mg_html_to_text: one shot, with charset choice:
 *	the label given, else mg_html_meta_charset, else sniffed.
 * LIMITS
 *	o->budget_us of thread CPU time, counted inside feed and finish
 *	only, checked every CHECK_EVERY callbacks and every block: then
 *	the parser is stopped and MG_HTML_TIMEOUT set. o->max_output
 *	bytes of text, link list included (cut at a character boundary):
 *	then MG_HTML_TRUNCATED. Indentation stops growing after
 *	INDENT_MAX list or quote levels. Alt texts are cut at ALT_MAX
 *	bytes, URLs at HTML_URL_MAX.
 * DIAGNOSTICS
 *	None: every input gives a text and flags.
 */
#include <string.h>
#include <time.h>

#include <libxml/HTMLparser.h>
#include <libxml/parser.h>

#include <mugaika/charset.h>
#include <mugaika/html.h>

#include "html_int.h"

#define BLOCK       65536
#define CHECK_EVERY 64
#define INDENT_MAX  10
#define ALT_MAX     512
#define LINK_SEARCH 64  /* how far down the stack an end tag may match */
#define MAX_ATTRS   256 /* attributes per tag passed to libxml2 */

/* Markup state of the input cleaner (lex). */
enum lex_state {
    LX_DATA,
    LX_LT,       /* '<' held */
    LX_LT_SLASH, /* "</" held */
    LX_BANG,     /* "<!" held */
    LX_BOGUS,    /* bogus comment: dropped up to '>' */
    LX_CSTART,   /* after "<!--" */
    LX_CSTART_DASH,
    LX_COMMENT,
    LX_COMMENT_BANG, /* "--!" inside a comment, '!' held */
    LX_DECL,         /* <!DOCTYPE ...>, <?...> */
    LX_RAW,          /* script or style text */
    LX_TAG,
    LX_SKIP, /* the attributes past MAX_ATTRS */
};

/* Element behaviour. */
enum tag_kind {
    K_INLINE,
    K_DROP,  /* dropped with all content */
    K_BLOCK, /* line break before and after */
    K_PARA,  /* blank line before and after */
    K_BR,
    K_HR,
    K_IMG,
    K_A,
    K_LIST, /* ul, ol, menu, dir */
    K_LI,
    K_TR,
    K_CELL,  /* td, th */
    K_PRE,   /* pre, textarea, listing, xmp, plaintext */
    K_QUOTE, /* blockquote */
    K_INPUT,
    K_META,
};

/* MG_HTML_ACTIVE when seen. */
#define T_ACTIVE 1u
/* Void in HTML5 (never has content), whatever libxml2 2.9 thinks:
 * it keeps embed, source, track, wbr and keygen open, so hiding one
 * of them must not hide the text that follows. */
#define T_VOID 2u

struct tag_def {
    const char *name;
    guint8 kind;
    guint8 flags;
};

/* Sorted by name (strcmp) for bsearch. */
static const struct tag_def tag_defs[] = {
    {"a", K_A, 0},
    {"address", K_BLOCK, 0},
    {"applet", K_DROP, T_ACTIVE},
    {"area", K_INLINE, T_VOID},
    {"article", K_BLOCK, 0},
    {"aside", K_BLOCK, 0},
    {"base", K_INLINE, T_VOID},
    {"blockquote", K_QUOTE, 0},
    {"body", K_BLOCK, 0},
    {"br", K_BR, T_VOID},
    {"caption", K_BLOCK, 0},
    {"center", K_BLOCK, 0},
    {"col", K_INLINE, T_VOID},
    {"datalist", K_DROP, 0},
    {"dd", K_BLOCK, 0},
    {"details", K_BLOCK, 0},
    {"dialog", K_BLOCK, 0},
    {"dir", K_LIST, 0},
    {"div", K_BLOCK, 0},
    {"dl", K_BLOCK, 0},
    {"dt", K_BLOCK, 0},
    {"embed", K_INLINE, T_ACTIVE | T_VOID},
    {"fieldset", K_BLOCK, 0},
    {"figcaption", K_BLOCK, 0},
    {"figure", K_BLOCK, 0},
    {"footer", K_BLOCK, 0},
    {"form", K_BLOCK, T_ACTIVE},
    {"frame", K_DROP, T_ACTIVE},
    {"frameset", K_DROP, T_ACTIVE},
    {"h1", K_PARA, 0},
    {"h2", K_PARA, 0},
    {"h3", K_PARA, 0},
    {"h4", K_PARA, 0},
    {"h5", K_PARA, 0},
    {"h6", K_PARA, 0},
    {"head", K_DROP, 0},
    {"header", K_BLOCK, 0},
    {"hgroup", K_BLOCK, 0},
    {"hr", K_HR, T_VOID},
    {"html", K_BLOCK, 0},
    {"iframe", K_DROP, T_ACTIVE},
    {"img", K_IMG, T_VOID},
    {"input", K_INPUT, T_VOID},
    {"keygen", K_INLINE, T_VOID},
    {"legend", K_BLOCK, 0},
    {"li", K_LI, 0},
    {"link", K_INLINE, T_VOID},
    {"listing", K_PRE, 0},
    {"main", K_BLOCK, 0},
    {"menu", K_LIST, 0},
    {"meta", K_META, T_VOID},
    {"nav", K_BLOCK, 0},
    {"noembed", K_DROP, 0},
    {"noframes", K_DROP, 0},
    {"noscript", K_DROP, 0},
    {"object", K_DROP, T_ACTIVE},
    {"ol", K_LIST, 0},
    {"optgroup", K_BLOCK, 0},
    {"option", K_BLOCK, 0},
    {"p", K_PARA, 0},
    {"param", K_INLINE, T_VOID},
    {"plaintext", K_PRE, 0},
    {"pre", K_PRE, 0},
    {"script", K_DROP, T_ACTIVE},
    {"section", K_BLOCK, 0},
    {"source", K_INLINE, T_VOID},
    {"style", K_DROP, 0},
    {"summary", K_BLOCK, 0},
    {"svg", K_DROP, 0},
    {"table", K_BLOCK, 0},
    {"tbody", K_BLOCK, 0},
    {"td", K_CELL, 0},
    {"template", K_DROP, 0},
    {"textarea", K_PRE, 0},
    {"tfoot", K_BLOCK, 0},
    {"th", K_CELL, 0},
    {"thead", K_BLOCK, 0},
    {"title", K_DROP, 0},
    {"tr", K_TR, 0},
    {"track", K_INLINE, T_VOID},
    {"ul", K_LIST, 0},
    {"wbr", K_INLINE, T_VOID},
    {"xmp", K_PRE, 0},
};

/* One open element. */
struct elem {
    const xmlChar *name; /* libxml2 dictionary string, valid while ctxt lives */
    guint8 kind;
    bool drop;       /* this element started a dropped subtree */
    bool counted;    /* it raised list_depth / quote_depth / pre */
    bool ordered;    /* K_LIST: ol */
    int counter;     /* K_LIST: number of the next item */
    char *url;       /* K_A: shown form, owned */
    char *raw_url;   /* K_A: cleaned href for the "text is the URL" test */
    guint8 url_kind; /* K_A: enum html_url_kind */
    gsize text_at;   /* K_A: out->len where the link text starts, or G_MAXSIZE */
};

struct mg_html {
    struct mg_html_opts o;
    bool ja;
    htmlParserCtxtPtr ctxt;
    unsigned flags;
    bool stopped; /* timeout or output cap: ignore the rest */
    bool finished;

    /* stage 1 */
    GString *raw;   /* input bytes not yet cleaned (an incomplete tail) */
    GString *stage; /* cleaned bytes not yet given to libxml2 */
    enum lex_state lx;
    unsigned lx_attrs, lx_dashes;
    unsigned char lx_quote, lx_last, lx_bang;
    bool lx_ws, lx_end, lx_naming;
    char lx_name[12]; /* tag name (lower case, cut), or "doctype" progress */
    size_t lx_nlen, lx_match;

    /* budget */
    gint64 used_ns; /* CPU time spent in earlier calls */
    gint64 t0;      /* thread CPU time at entry of this call */
    unsigned calls;

    /* stage 3 */
    GArray *stack; /* struct elem */
    GString *text; /* raw text run not yet decoded */
    GString *tmp;  /* scratch */
    GString *out;
    int drop;       /* open dropping elements */
    int pre;        /* open pre-like elements */
    int list_depth; /* open lists */
    int quote_depth;
    int tight;        /* open list items and table cells: paragraphs without blank lines */
    int want_nl;      /* pending line breaks: 0, 1 (new line) or 2 (blank line) */
    bool space;       /* pending collapsed white space */
    bool line_text;   /* the current line holds content beyond its prefix */
    bool line_start;  /* nothing, not even the prefix, written on this line */
    bool marker_only; /* the current line holds only a list marker */
    bool cell_sep;    /* a table cell started after content on this line */
    bool pre_first;   /* just after <pre>: a first LF is dropped */
    guint link_idx;   /* stack index of the innermost open link, or G_MAXUINT */
    GPtrArray *urls;  /* shown URLs, numbered from 1 */
    GHashTable *url_num;
};

/* ---- budget -------------------------------------------------------- */

static gint64 cpu_now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (gint64)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void stop(struct mg_html *h, unsigned flag)
{
    h->flags |= flag;
    if (!h->stopped) {
        h->stopped = true;
        xmlStopParser(h->ctxt);
    }
}

static void check_time(struct mg_html *h)
{
    if (!h->stopped && h->used_ns + (cpu_now() - h->t0) > h->o.budget_us * 1000)
        stop(h, MG_HTML_TIMEOUT);
}

static void tick(struct mg_html *h)
{
    if (++h->calls % CHECK_EVERY == 0)
        check_time(h);
}

/* ---- output primitives -------------------------------------------- */

/* Enforces max_output after an append. */
static void cap_output(struct mg_html *h)
{
    if (h->out->len <= h->o.max_output)
        return;
    const char *end = h->out->str + h->o.max_output;
    while (end > h->out->str && ((unsigned char)*end & 0xC0) == 0x80)
        end--;
    g_string_truncate(h->out, (gsize)(end - h->out->str));
    stop(h, MG_HTML_TRUNCATED);
}

static void trim_line_end(GString *s)
{
    while (s->len > 0 && (s->str[s->len - 1] == ' ' || s->str[s->len - 1] == '\t'))
        g_string_truncate(s, s->len - 1);
}

static unsigned trailing_newlines(const GString *s)
{
    unsigned n = 0;

    while (n < s->len && n < 2 && s->str[s->len - 1 - n] == '\n')
        n++;
    return n;
}

/* Ends the current line; never more than one blank line in a row. */
static void newline(struct mg_html *h)
{
    trim_line_end(h->out);
    if (h->out->len > 0 && trailing_newlines(h->out) < 2)
        g_string_append_c(h->out, '\n');
    h->line_text = false;
    h->line_start = true;
    h->marker_only = false;
    h->cell_sep = false;
    h->space = false;
}

static void indent(struct mg_html *h, int list_levels)
{
    for (int i = 0; i < h->quote_depth && i < INDENT_MAX; i++)
        g_string_append(h->out, "> ");
    for (int i = 0; i < list_levels && i < INDENT_MAX; i++)
        g_string_append(h->out, "  ");
}

/* Writes the pending line breaks. */
static void flush_breaks(struct mg_html *h)
{
    if (h->want_nl == 0)
        return;
    if (h->out->len > 0) {
        if (!h->line_start || trailing_newlines(h->out) == 0)
            newline(h);
        if (h->want_nl == 2 && trailing_newlines(h->out) < 2)
            newline(h);
    }
    h->want_nl = 0;
    h->space = false;
}

static void request_break(struct mg_html *h, int n)
{
    if (h->drop > 0 || h->marker_only)
        return;
    if (n > h->want_nl)
        h->want_nl = n;
}

/* The break around paragraphs: a blank line, but a line break inside
 * list items and table cells. */
static int para_gap(const struct mg_html *h)
{
    return h->tight > 0 ? 1 : 2;
}

/* Prepares the line for one more piece of content. */
static void before_content(struct mg_html *h)
{
    flush_breaks(h);
    if (h->line_start) {
        indent(h, h->list_depth);
        h->line_start = false;
    }
    if (h->cell_sep && h->line_text) {
        g_string_append(h->out, " | ");
        h->space = false;
    }
    h->cell_sep = false;
    if (h->space && h->line_text)
        g_string_append_c(h->out, ' ');
    h->space = false;
    if (h->link_idx != G_MAXUINT) {
        struct elem *l = &g_array_index(h->stack, struct elem, h->link_idx);
        if (l->text_at == G_MAXSIZE)
            l->text_at = h->out->len;
    }
    h->line_text = true;
    h->marker_only = false;
}

static bool is_html_space(gunichar c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f';
}

/* Appends decoded UTF-8 text, collapsing white space outside <pre>. */
static void emit_text(struct mg_html *h, const char *s, size_t len)
{
    const char *p = s, *end = s + len;

    if (h->drop > 0 || h->stopped)
        return;
    while (p < end) {
        gunichar c = g_utf8_get_char(p);
        const char *next = g_utf8_next_char(p);

        if (h->pre > 0) {
            bool first = h->pre_first;
            h->pre_first = false;
            if (c == '\n') {
                if (!first) {
                    flush_breaks(h);
                    h->line_start = false; /* an empty pre line is content */
                    newline(h);
                }
                p = next;
                continue;
            }
            if (c == '\r' || c == '\f')
                c = ' ';
        } else if (is_html_space(c) || c == 0xA0) { /* NBSP: mostly layout filler */
            h->space = true;
            p = next;
            continue;
        }
        before_content(h);
        if (c == 0xA0 || c == ' ')
            g_string_append_c(h->out, ' ');
        else if (c < 0x20 ? c != '\t' : (c >= 0x7F && c < 0xA0))
            g_string_append(h->out, "\xEF\xBF\xBD"); /* controls: U+FFFD */
        else
            g_string_append_len(h->out, p, next - p);
        p = next;
    }
    cap_output(h);
}

static void emit_str(struct mg_html *h, const char *s)
{
    emit_text(h, s, strlen(s));
}

/* Decodes and writes the collected text run. */
static void flush_text(struct mg_html *h)
{
    if (h->text->len == 0)
        return;
    if (h->drop == 0 && !h->stopped) {
        g_string_truncate(h->tmp, 0);
        html_ent_decode(h->text->str, h->text->len, false, h->tmp);
        emit_text(h, h->tmp->str, h->tmp->len);
    }
    g_string_truncate(h->text, 0);
}

/* ---- elements ------------------------------------------------------ */

static int cmp_tag(const void *key, const void *def)
{
    return strcmp(key, ((const struct tag_def *)def)->name);
}

static const struct tag_def *find_tag(const char *name)
{
    return bsearch(name, tag_defs, G_N_ELEMENTS(tag_defs), sizeof(tag_defs[0]), cmp_tag);
}

/* The decoded value of attribute name, owned, or NULL. */
static char *attr(const xmlChar **atts, const char *name)
{
    for (size_t i = 0; atts != NULL && atts[i] != NULL; i += 2) {
        if (strcmp((const char *)atts[i], name) == 0) {
            const char *v = atts[i + 1] != NULL ? (const char *)atts[i + 1] : "";
            GString *s = g_string_new(NULL);
            html_ent_decode(v, strlen(v), true, s);
            return g_string_free(s, FALSE);
        }
    }
    return NULL;
}

static bool has_attr(const xmlChar **atts, const char *name)
{
    for (size_t i = 0; atts != NULL && atts[i] != NULL; i += 2) {
        if (strcmp((const char *)atts[i], name) == 0)
            return true;
    }
    return false;
}

/* display:none or visibility:hidden in a style attribute. */
static bool style_hides(const char *style)
{
    GString *s = g_string_new(NULL);
    bool hide;

    for (const char *p = style; *p != '\0'; p++) {
        if (!g_ascii_isspace(*p))
            g_string_append_c(s, g_ascii_tolower(*p));
    }
    hide = strstr(s->str, "display:none") != NULL || strstr(s->str, "visibility:hidden") != NULL;
    g_string_free(s, TRUE);
    return hide;
}

/* Flags from the attributes of any element, dropped or not. */
static void scan_attrs(struct mg_html *h, const xmlChar **atts)
{
    for (size_t i = 0; atts != NULL && atts[i] != NULL; i += 2) {
        const char *n = (const char *)atts[i];
        if ((n[0] == 'o' || n[0] == 'O') && (n[1] == 'n' || n[1] == 'N') && n[2] != '\0')
            h->flags |= MG_HTML_ACTIVE;
    }
}

static bool hidden(const char *name, const xmlChar **atts)
{
    char *v;
    bool hide = has_attr(atts, "hidden");

    if (!hide && (v = attr(atts, "style")) != NULL) {
        hide = style_hides(v);
        g_free(v);
    }
    if (!hide && strcmp(name, "input") == 0 && (v = attr(atts, "type")) != NULL) {
        hide = g_ascii_strcasecmp(g_strstrip(v), "hidden") == 0;
        g_free(v);
    }
    return hide;
}

/* Collapses white space in an attribute text and cuts it at ALT_MAX. */
static char *squeeze(const char *v)
{
    GString *s = g_string_new(NULL);
    bool sp = false;

    for (const char *p = v; *p != '\0' && s->len < ALT_MAX; p++) {
        if (is_html_space((unsigned char)*p)) {
            sp = s->len > 0;
            continue;
        }
        if (sp)
            g_string_append_c(s, ' ');
        sp = false;
        g_string_append_c(s, *p);
    }
    const char *bad;
    if (!g_utf8_validate(s->str, (gssize)s->len, &bad)) /* cut inside a character */
        g_string_truncate(s, (gsize)(bad - s->str));
    return g_string_free(s, FALSE);
}

static void emit_image(struct mg_html *h, const xmlChar **atts)
{
    char *alt = attr(atts, "alt");
    char *a = alt != NULL ? squeeze(alt) : g_strdup("");
    char *s;

    if (a[0] != '\0')
        s = g_strdup_printf("[%s: %s]", h->ja ? "画像" : "image", a);
    else
        s = g_strdup_printf("[%s]", h->ja ? "画像" : "image");
    h->space = h->space || h->line_text;
    emit_str(h, s);
    g_free(s);
    g_free(a);
    g_free(alt);
}

static void emit_input(struct mg_html *h, const xmlChar **atts)
{
    char *type = attr(atts, "type"), *value;

    if (type != NULL && g_ascii_strcasecmp(g_strstrip(type), "image") == 0) {
        emit_image(h, atts);
    } else if (type != NULL && (g_ascii_strcasecmp(type, "submit") == 0 ||
                                g_ascii_strcasecmp(type, "button") == 0 ||
                                g_ascii_strcasecmp(type, "reset") == 0)) {
        if ((value = attr(atts, "value")) != NULL) {
            char *v = squeeze(value), *s = g_strdup_printf("[%s]", v);
            h->space = h->space || h->line_text;
            if (v[0] != '\0')
                emit_str(h, s);
            g_free(s);
            g_free(v);
            g_free(value);
        }
    }
    g_free(type);
}

static void emit_hr(struct mg_html *h)
{
    request_break(h, 1);
    if (h->ja)
        emit_str(h, "――――――――――――――――――――");
    else
        emit_str(h, "----------------------------------------");
    request_break(h, 1);
}

static void hard_break(struct mg_html *h)
{
    if (h->drop > 0 || h->marker_only)
        return;
    flush_breaks(h);
    newline(h);
}

static void start_li(struct mg_html *h, const xmlChar **atts)
{
    struct elem *list = NULL;
    char num[32];

    if (h->drop > 0)
        return;
    for (guint i = h->stack->len; i-- > 0;) {
        struct elem *e = &g_array_index(h->stack, struct elem, i);
        if (e->kind == K_LIST) {
            list = e;
            break;
        }
    }
    h->marker_only = false;
    request_break(h, 1);
    flush_breaks(h);
    if (!h->line_start)
        newline(h);
    indent(h, h->list_depth > 0 ? h->list_depth - 1 : 0);
    h->line_start = false;
    if (list != NULL && list->ordered) {
        char *v = attr(atts, "value"), *endp;
        if (v != NULL) {
            gint64 n = g_ascii_strtoll(g_strstrip(v), &endp, 10);
            if (endp != v && n > -1000000000 && n < 1000000000)
                list->counter = (int)n;
            g_free(v);
        }
        g_snprintf(num, sizeof(num), "%d. ", list->counter);
        if (list->counter < G_MAXINT)
            list->counter++;
        g_string_append(h->out, num);
    } else {
        g_string_append(h->out, h->ja ? "・ " : "* ");
    }
    h->marker_only = true;
    h->line_text = false;
    h->space = false;
    cap_output(h);
}

/* Link start: classifies href. */
static void start_a(struct mg_html *h, struct elem *e, const xmlChar **atts)
{
    char *href = attr(atts, "href");

    if (href == NULL)
        return;
    e->url_kind = (guint8)html_url_classify(href, h->o.defang_urls, &e->url);
    if (e->url_kind == HTML_URL_DROPPED)
        h->flags |= MG_HTML_URLS_DROPPED;
    if (e->url_kind == HTML_URL_LISTED || e->url_kind == HTML_URL_MAILTO) {
        char *plain = NULL;
        html_url_classify(href, false, &plain);
        e->raw_url = plain;
    }
    e->text_at = G_MAXSIZE;
    g_free(href);
}

static guint url_number(struct mg_html *h, const char *url)
{
    gpointer v = g_hash_table_lookup(h->url_num, url);

    if (v != NULL)
        return GPOINTER_TO_UINT(v);
    g_ptr_array_add(h->urls, g_strdup(url));
    g_hash_table_insert(h->url_num, g_ptr_array_index(h->urls, h->urls->len - 1),
                        GUINT_TO_POINTER(h->urls->len));
    return h->urls->len;
}

/* True when text (trimmed) is the URL itself, give or take the scheme
 * and a trailing slash. */
static bool text_is_url(const char *text, size_t len, const char *url)
{
    size_t ul = strlen(url);

    if (ul >= 7 && g_ascii_strncasecmp(url, "mailto:", 7) == 0) {
        url += 7;
        ul -= 7;
    }
    for (int pass = 0; pass < 2; pass++) {
        const char *u = url;
        size_t n = ul;
        if (pass == 1) {
            const char *sep = strstr(u, "://");
            if (sep == NULL)
                return false;
            n -= (size_t)(sep + 3 - u);
            u = sep + 3;
        }
        if (n == len && g_ascii_strncasecmp(u, text, n) == 0)
            return true;
        if (n == len + 1 && u[n - 1] == '/' && g_ascii_strncasecmp(u, text, len) == 0)
            return true;
        if (len == n + 1 && text[len - 1] == '/' && g_ascii_strncasecmp(u, text, n) == 0)
            return true;
    }
    return false;
}

static void end_a(struct mg_html *h, struct elem *e)
{
    char buf[32];

    if (e->url == NULL || h->drop > 0 || h->stopped)
        return;
    if (e->text_at != G_MAXSIZE && e->text_at <= h->out->len) {
        const char *t = h->out->str + e->text_at;
        size_t len = h->out->len - e->text_at;
        while (len > 0 && t[len - 1] == ' ')
            len--;
        if (memchr(t, '\n', len) == NULL && text_is_url(t, len, e->raw_url)) {
            g_string_truncate(h->out, e->text_at);
            g_string_append(h->out, e->url);
            cap_output(h);
            return;
        }
    }
    if (e->url_kind == HTML_URL_MAILTO) {
        char *s = g_strdup_printf("<%s>", e->url);
        h->space = h->space || h->line_text;
        emit_str(h, s);
        g_free(s);
        return;
    }
    g_snprintf(buf, sizeof(buf), "[%u]", url_number(h, e->url));
    h->space = h->space || h->line_text;
    emit_str(h, buf);
}

static void start_list(struct mg_html *h, struct elem *e, const xmlChar **atts)
{
    char *start;

    e->ordered = strcmp((const char *)e->name, "ol") == 0;
    e->counter = 1;
    if (e->ordered && (start = attr(atts, "start")) != NULL) {
        char *endp;
        gint64 v = g_ascii_strtoll(g_strstrip(start), &endp, 10);
        if (endp != start && v > -1000000000 && v < 1000000000)
            e->counter = (int)v;
        g_free(start);
    }
    request_break(h, 1);
    h->list_depth++;
    e->counted = true;
}

static void meta_refresh(struct mg_html *h, const xmlChar **atts)
{
    char *v = attr(atts, "http-equiv");

    if (v != NULL && g_ascii_strcasecmp(g_strstrip(v), "refresh") == 0)
        h->flags |= MG_HTML_ACTIVE;
    g_free(v);
}

static void on_start(void *user, const xmlChar *xname, const xmlChar **atts)
{
    struct mg_html *h = user;
    const char *name = (const char *)xname;
    const struct tag_def *def;
    struct elem e = {0};

    if (h->stopped)
        return;
    tick(h);
    flush_text(h);
    def = find_tag(name);
    e.name = xname;
    e.kind = def != NULL ? def->kind : K_INLINE;
    e.text_at = G_MAXSIZE;
    if (def != NULL && (def->flags & T_ACTIVE))
        h->flags |= MG_HTML_ACTIVE;
    scan_attrs(h, atts);
    if (e.kind == K_META)
        meta_refresh(h, atts);
    if (e.kind == K_A)
        start_a(h, &e, atts);
    bool is_void = def != NULL && (def->flags & T_VOID);
    bool hide = hidden(name, atts);
    if (e.kind == K_DROP || (hide && !is_void)) {
        e.drop = true;
        h->drop++;
    }
    if (h->drop == 0 && !hide) {
        switch (e.kind) {
        case K_BLOCK:
        case K_TR:
            request_break(h, 1);
            break;
        case K_PARA:
            request_break(h, para_gap(h));
            break;
        case K_QUOTE:
            request_break(h, para_gap(h));
            h->quote_depth++;
            e.counted = true;
            break;
        case K_PRE:
            request_break(h, para_gap(h));
            h->pre++;
            h->pre_first = true;
            e.counted = true;
            break;
        case K_LIST:
            start_list(h, &e, atts);
            break;
        case K_LI:
            start_li(h, atts);
            h->tight++;
            e.counted = true;
            break;
        case K_CELL:
            h->cell_sep = h->line_text;
            h->tight++;
            e.counted = true;
            break;
        case K_BR:
            hard_break(h);
            break;
        case K_HR:
            emit_hr(h);
            break;
        case K_IMG:
            emit_image(h, atts);
            break;
        case K_INPUT:
            emit_input(h, atts);
            break;
        default:
            break;
        }
    }
    g_array_append_val(h->stack, e);
    if (e.kind == K_A && e.url != NULL)
        h->link_idx = h->stack->len - 1;
}

/* The innermost open link, for before_content. */
static void relink(struct mg_html *h)
{
    h->link_idx = G_MAXUINT;
    for (guint i = h->stack->len; i-- > 0;) {
        struct elem *e = &g_array_index(h->stack, struct elem, i);
        if (e->kind == K_A && e->url != NULL) {
            h->link_idx = i;
            return;
        }
        if (h->stack->len - i > LINK_SEARCH)
            return;
    }
}

static void pop(struct mg_html *h)
{
    struct elem *e = &g_array_index(h->stack, struct elem, h->stack->len - 1);

    if (h->drop == 0 && !h->stopped) {
        switch (e->kind) {
        case K_LI:
            h->marker_only = false; /* an empty item: its line ends here */
            request_break(h, 1);
            break;
        case K_BLOCK:
        case K_TR:
            request_break(h, 1);
            break;
        case K_PARA:
        case K_PRE:
        case K_QUOTE:
            request_break(h, para_gap(h));
            break;
        case K_LIST:
            request_break(h, 1);
            break;
        case K_A:
            end_a(h, e);
            break;
        default:
            break;
        }
    }
    if (e->counted) {
        if (e->kind == K_LIST)
            h->list_depth--;
        else if (e->kind == K_QUOTE)
            h->quote_depth--;
        else if (e->kind == K_PRE)
            h->pre--;
        else if (e->kind == K_LI || e->kind == K_CELL)
            h->tight--;
    }
    if (e->drop)
        h->drop--;
    bool was_link = e->kind == K_A && e->url != NULL;
    g_free(e->url);
    g_free(e->raw_url);
    g_array_set_size(h->stack, h->stack->len - 1);
    if (was_link)
        relink(h);
}

static void on_end(void *user, const xmlChar *name)
{
    struct mg_html *h = user;
    guint depth = h->stack->len, found = G_MAXUINT;

    if (h->stopped)
        return;
    tick(h);
    flush_text(h);
    for (guint i = depth; i-- > 0 && depth - i <= LINK_SEARCH;) {
        const xmlChar *n = g_array_index(h->stack, struct elem, i).name;
        if (n == name || xmlStrEqual(n, name)) {
            found = i;
            break;
        }
    }
    if (found == G_MAXUINT)
        return;
    while (h->stack->len > found)
        pop(h);
}

static void on_text(void *user, const xmlChar *s, int len)
{
    struct mg_html *h = user;

    if (h->stopped || len <= 0)
        return;
    tick(h);
    if (h->drop == 0)
        g_string_append_len(h->text, (const char *)s, len);
}

static void on_ignore_cdata(void *user, const xmlChar *s, int len)
{
    (void)user;
    (void)s;
    (void)len;
}

static void on_comment(void *user, const xmlChar *s)
{
    struct mg_html *h = user;

    (void)s;
    if (!h->stopped)
        tick(h);
}

static void on_error(void *user, xmlErrorPtr err)
{
    (void)user;
    (void)err;
}

/* ---- input --------------------------------------------------------- */

/* Block size for the next htmlParseChunk: smaller under a deep stack,
 * where libxml2 spends O(depth) per unmatched end tag without a
 * callback, so that the budget is checked often enough. */
static gsize block_size(const struct mg_html *h)
{
    gsize depth = h->stack->len;

    if (depth < 1024)
        return BLOCK;
    return depth > ((gsize)1 << 26) / 256 ? 256 : ((gsize)1 << 26) / depth;
}

/* Gives libxml2 every whole block of the stage (all of it if last). */
static void parse_stage(struct mg_html *h, bool last)
{
    gsize off = 0, bs;

    while (!h->stopped && h->stage->len - off >= (bs = block_size(h))) {
        gsize cut = off + bs;
        while (cut > off && ((unsigned char)h->stage->str[cut] & 0xC0) == 0x80)
            cut--;
        htmlParseChunk(h->ctxt, h->stage->str + off, (int)(cut - off), 0);
        off = cut;
        check_time(h);
    }
    g_string_erase(h->stage, 0, (gssize)off);
    if (last && !h->stopped) {
        while (!h->stopped && h->stage->len > 0) {
            gsize n = MIN(h->stage->len, block_size(h));
            gsize cut = n;
            while (cut > 0 && cut < h->stage->len &&
                   ((unsigned char)h->stage->str[cut] & 0xC0) == 0x80)
                cut--;
            if (cut == 0)
                cut = h->stage->len;
            htmlParseChunk(h->ctxt, h->stage->str, (int)cut, 0);
            g_string_erase(h->stage, 0, (gssize)cut);
            check_time(h);
        }
        if (!h->stopped)
            htmlParseChunk(h->ctxt, NULL, 0, 1);
    }
}

static bool lex_space(unsigned char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f';
}

/* Writes the cleaned form of one input character (c its class: the
 * ASCII byte, or 0x80 for anything else) to the stage. */
static void put(struct mg_html *h, unsigned char c, const char *bytes, size_t n)
{
    if (c == '&')
        g_string_append(h->stage, "&amp;");
    else
        g_string_append_len(h->stage, bytes, (gssize)n);
}

static void tag_begin(struct mg_html *h, unsigned char c, bool end)
{
    h->lx = LX_TAG;
    h->lx_attrs = 0;
    h->lx_quote = 0;
    h->lx_ws = false;
    h->lx_naming = true;
    h->lx_last = c;
    h->lx_end = end;
    h->lx_nlen = 0;
    h->lx_name[h->lx_nlen++] = (char)g_ascii_tolower(c);
}

/* Inside a tag: counts attributes, skips those past MAX_ATTRS, and at
 * the '>' of <script> or <style> enters their raw text. */
static void lex_tag(struct mg_html *h, unsigned char c, const char *bytes, size_t n)
{
    bool keep = h->lx == LX_TAG;

    if (h->lx_quote != 0) {
        if (c == h->lx_quote)
            h->lx_quote = 0;
    } else if (c == '>') {
        h->lx_name[h->lx_nlen] = '\0';
        h->lx = LX_DATA;
        if (!h->lx_end && (strcmp(h->lx_name, "script") == 0 || strcmp(h->lx_name, "style") == 0)) {
            h->lx = LX_RAW;
            h->lx_match = 0;
        }
        keep = true;
    } else if (lex_space(c)) {
        h->lx_ws = true;
        h->lx_naming = false;
    } else {
        if (h->lx_naming) {
            if (c == '/')
                h->lx_naming = false;
            else if (h->lx_nlen < sizeof(h->lx_name) - 1)
                h->lx_name[h->lx_nlen++] = (char)g_ascii_tolower(c);
        } else if ((c == '"' || c == '\'') && h->lx_last == '=') {
            h->lx_quote = c;
        } else if (h->lx_ws && c != '=' && c != '/' && h->lx_last != '=' &&
                   ++h->lx_attrs > MAX_ATTRS) {
            h->lx = LX_SKIP;
        }
        h->lx_ws = false;
        h->lx_last = c;
        keep = h->lx == LX_TAG;
    }
    if (keep)
        put(h, c, bytes, n);
}

/* Follows markup in the cleaned stream where libxml2 2.9 and HTML5
 * disagree in ways that would hide text, or cost quadratic time:
 * "<!x>", "<![if !mso]>" and "</ x>" are bogus comments (dropped),
 * "<!-->" and "<!--->" are empty comments, a '<' that opens no tag
 * is text, and a tag keeps at most MAX_ATTRS attributes (libxml2
 * compares each one with all earlier ones). */
static void lex(struct mg_html *h, unsigned char c, const char *bytes, size_t n)
{
    static const char doctype[] = "doctype";

    switch (h->lx) {
    case LX_DATA:
        if (c == '<')
            h->lx = LX_LT; /* held until the next character decides */
        else
            put(h, c, bytes, n);
        return;
    case LX_LT:
        if (g_ascii_isalpha(c)) {
            g_string_append_c(h->stage, '<');
            put(h, c, bytes, n);
            tag_begin(h, c, false);
        } else if (c == '!') {
            h->lx = LX_BANG;
            h->lx_nlen = 0;
            h->lx_bang = 0;
        } else if (c == '/') {
            h->lx = LX_LT_SLASH;
        } else if (c == '?') {
            g_string_append(h->stage, "<?");
            h->lx = LX_DECL;
        } else {
            g_string_append(h->stage, "&lt;");
            h->lx = LX_DATA;
            lex(h, c, bytes, n);
        }
        return;
    case LX_LT_SLASH:
        if (g_ascii_isalpha(c)) {
            g_string_append(h->stage, "</");
            put(h, c, bytes, n);
            tag_begin(h, c, true);
        } else {
            h->lx = c == '>' ? LX_DATA : LX_BOGUS;
        }
        return;
    case LX_BANG: /* "<!" held, then lx_nlen characters of "--" or "doctype" */
        if (h->lx_nlen == 0 && c == '-') {
            h->lx_nlen = 1;
            h->lx_bang = '-';
        } else if (h->lx_bang == '-' && c == '-') {
            g_string_append(h->stage, "<!--");
            h->lx = LX_CSTART;
        } else if (h->lx_bang != '-' && h->lx_nlen < 7 &&
                   g_ascii_tolower(c) == doctype[h->lx_nlen]) {
            h->lx_bang = 'd';
            if (++h->lx_nlen == 7) {
                g_string_append(h->stage, "<!DOCTYPE");
                h->lx = LX_DECL;
            }
        } else {
            h->lx = c == '>' ? LX_DATA : LX_BOGUS;
        }
        return;
    case LX_BOGUS:
        if (c == '>')
            h->lx = LX_DATA;
        return;
    case LX_CSTART: /* just after "<!--" */
    case LX_CSTART_DASH:
        if (c == '>') {
            g_string_append(h->stage, "-->"); /* "<!-->", "<!--->": empty */
            h->lx = LX_DATA;
            return;
        }
        h->lx_dashes = 0;
        if (h->lx == LX_CSTART_DASH) {
            g_string_append_c(h->stage, '-');
            h->lx_dashes = 1;
        } else if (c == '-') {
            h->lx = LX_CSTART_DASH;
            return;
        }
        h->lx = LX_COMMENT;
        lex(h, c, bytes, n);
        return;
    case LX_COMMENT:
        if (c == '!' && h->lx_dashes >= 2) {
            h->lx = LX_COMMENT_BANG; /* "--!>" ends a comment too */
            return;
        }
        put(h, c, bytes, n);
        if (c == '>' && h->lx_dashes >= 2)
            h->lx = LX_DATA;
        h->lx_dashes = c == '-' ? h->lx_dashes + 1 : 0;
        return;
    case LX_COMMENT_BANG:
        h->lx = LX_COMMENT;
        if (c == '>') {
            put(h, c, bytes, n);
            h->lx = LX_DATA;
            return;
        }
        g_string_append_c(h->stage, '!');
        h->lx_dashes = 0;
        lex(h, c, bytes, n);
        return;
    case LX_DECL:
        put(h, c, bytes, n);
        if (c == '>')
            h->lx = LX_DATA;
        return;
    case LX_RAW: { /* script or style text up to "</script" or "</style" */
        size_t len = strlen(h->lx_name), m = h->lx_match;
        put(h, c, bytes, n);
        if (c == '<')
            m = 1;
        else if (m == 1 && c == '/')
            m = 2;
        else if (m >= 2 && m - 2 < len && g_ascii_tolower(c) == h->lx_name[m - 2])
            m++;
        else
            m = 0;
        h->lx_match = m;
        if (m == len + 2) {
            tag_begin(h, 'x', true);
            h->lx_naming = false;
        }
        return;
    }
    case LX_TAG:
    case LX_SKIP:
        lex_tag(h, c, bytes, n);
        return;
    }
}

/* At the end of the input: what lex still holds. */
static void lex_eof(struct mg_html *h)
{
    if (h->lx == LX_LT)
        g_string_append(h->stage, "&lt;");
    else if (h->lx == LX_LT_SLASH)
        g_string_append(h->stage, "&lt;/");
    h->lx = LX_DATA;
}

/* Cleans h->raw into h->stage (see DESCRIPTION); keeps an incomplete
 * tail unless last. */
static void clean_input(struct mg_html *h, bool last)
{
    const unsigned char *p = (const unsigned char *)h->raw->str;
    size_t n = h->raw->len, i = 0;
    GString *st = h->stage;
    static const char fffd[] = "\xEF\xBF\xBD";

    while (i < n) {
        unsigned char c = p[i];
        if (c >= 0x20 && c < 0x80) {
            if (h->lx == LX_DATA && c != '<' && c != '&') {
                size_t j = i;
                while (j < n && p[j] >= 0x20 && p[j] < 0x80 && p[j] != '&' && p[j] != '<')
                    j++;
                g_string_append_len(st, (const char *)p + i, (gssize)(j - i));
                i = j;
                continue;
            }
            lex(h, c, (const char *)p + i, 1);
            i++;
        } else if (c == '\n' || c == '\t' || c == '\r' || c == '\f') {
            if (c == '\r' && i + 1 >= n && !last)
                break;
            char w = c == '\f' ? ' ' : c == '\r' ? '\n' : (char)c;
            lex(h, (unsigned char)w, &w, 1);
            i += (c == '\r' && i + 1 < n && p[i + 1] == '\n') ? 2 : 1;
        } else if (c < 0x20) {
            lex(h, 0x80, fffd, 3);
            i++;
        } else {
            gunichar u = g_utf8_get_char_validated((const char *)p + i, (gssize)(n - i));
            size_t cl = 1;
            if (u == (gunichar)-2 && !last)
                break;
            if (u != (gunichar)-1 && u != (gunichar)-2)
                cl = (size_t)(g_utf8_next_char(p + i) - (const char *)(p + i));
            if (u == (gunichar)-1 || u == (gunichar)-2 || u == 0xFFFE || u == 0xFFFF ||
                (u >= 0x80 && u < 0xA0))
                lex(h, 0x80, fffd, 3);
            else
                lex(h, 0x80, (const char *)p + i, cl);
            i += cl;
        }
    }
    g_string_erase(h->raw, 0, (gssize)i);
    if (last)
        lex_eof(h);
}

/* ---- API ----------------------------------------------------------- */

void mg_html_opts_default(struct mg_html_opts *o)
{
    o->lang = "ja";
    o->defang_urls = true;
    o->budget_us = 2000000;
    o->max_output = (size_t)64 << 20;
}

static gsize init_once(void)
{
    xmlInitParser();
    return 1;
}

struct mg_html *mg_html_new(const struct mg_html_opts *o)
{
    static gsize once = 0;
    static htmlSAXHandler sax;
    struct mg_html *h = g_new0(struct mg_html, 1);

    if (g_once_init_enter(&once)) {
        memset(&sax, 0, sizeof(sax));
        sax.startElement = on_start;
        sax.endElement = on_end;
        sax.characters = on_text;
        sax.ignorableWhitespace = on_text;
        sax.cdataBlock = on_ignore_cdata;
        sax.comment = on_comment;
        sax.serror = on_error;
        sax.initialized = XML_SAX2_MAGIC;
        g_once_init_leave(&once, init_once());
    }
    if (o != NULL)
        h->o = *o;
    else
        mg_html_opts_default(&h->o);
    h->ja = h->o.lang == NULL || g_ascii_strcasecmp(h->o.lang, "en") != 0;
    h->ctxt = htmlCreatePushParserCtxt(&sax, h, NULL, 0, NULL, XML_CHAR_ENCODING_UTF8);
    htmlCtxtUseOptions(h->ctxt, HTML_PARSE_IGNORE_ENC | HTML_PARSE_NONET | HTML_PARSE_NOERROR |
                                    HTML_PARSE_NOWARNING | HTML_PARSE_RECOVER |
                                    HTML_PARSE_NODEFDTD);
    h->raw = g_string_new(NULL);
    h->stage = g_string_sized_new(BLOCK);
    h->stack = g_array_new(FALSE, FALSE, sizeof(struct elem));
    h->text = g_string_new(NULL);
    h->tmp = g_string_new(NULL);
    h->out = g_string_new(NULL);
    h->line_start = true;
    h->link_idx = G_MAXUINT;
    h->urls = g_ptr_array_new_with_free_func(g_free);
    h->url_num = g_hash_table_new(g_str_hash, g_str_equal);
    return h;
}

void mg_html_feed(struct mg_html *h, const char *utf8, size_t len)
{
    if (h->stopped || h->finished || len == 0)
        return;
    h->t0 = cpu_now();
    g_string_append_len(h->raw, utf8, (gssize)len);
    clean_input(h, false);
    parse_stage(h, false);
    check_time(h);
    h->used_ns += cpu_now() - h->t0;
}

static void append_links(struct mg_html *h)
{
    if (h->urls->len == 0)
        return;
    trim_line_end(h->out);
    if (h->out->len > 0)
        g_string_append_c(h->out, '\n');
    for (guint i = 0; i < h->urls->len && h->out->len <= h->o.max_output; i++)
        g_string_append_printf(h->out, "[%u] %s\n", i + 1,
                               (const char *)g_ptr_array_index(h->urls, i));
}

unsigned mg_html_finish(struct mg_html *h, GString *out)
{
    if (h->finished)
        return h->flags;
    h->finished = true;
    h->t0 = cpu_now();
    if (!h->stopped) {
        clean_input(h, true);
        parse_stage(h, true);
    }
    flush_text(h);
    while (h->stack->len > 0)
        pop(h);
    while (h->out->len > 0 && g_ascii_isspace(h->out->str[h->out->len - 1]))
        g_string_truncate(h->out, h->out->len - 1);
    if (h->out->len > 0)
        g_string_append_c(h->out, '\n');
    append_links(h);
    if (h->out->len > h->o.max_output) {
        /* keep the final LF inside the cap */
        size_t keep = h->o.max_output > 0 ? h->o.max_output - 1 : 0;
        const char *end = h->out->str + keep;
        while (end > h->out->str && ((unsigned char)*end & 0xC0) == 0x80)
            end--;
        g_string_truncate(h->out, (gsize)(end - h->out->str));
        while (h->out->len > 0 && g_ascii_isspace(h->out->str[h->out->len - 1]))
            g_string_truncate(h->out, h->out->len - 1);
        if (h->out->len > 0)
            g_string_append_c(h->out, '\n');
        h->flags |= MG_HTML_TRUNCATED;
    }
    g_string_append_len(out, h->out->str, (gssize)h->out->len);
    h->used_ns += cpu_now() - h->t0;
    return h->flags;
}

struct mg_html *mg_html_free(struct mg_html *h)
{
    if (h == NULL)
        return NULL;
    for (guint i = 0; i < h->stack->len; i++) {
        struct elem *e = &g_array_index(h->stack, struct elem, i);
        g_free(e->url);
        g_free(e->raw_url);
    }
    g_array_free(h->stack, TRUE);
    if (h->ctxt != NULL) {
        if (h->ctxt->myDoc != NULL)
            xmlFreeDoc(h->ctxt->myDoc);
        htmlFreeParserCtxt(h->ctxt);
    }
    g_string_free(h->raw, TRUE);
    g_string_free(h->stage, TRUE);
    g_string_free(h->text, TRUE);
    g_string_free(h->tmp, TRUE);
    g_string_free(h->out, TRUE);
    g_hash_table_destroy(h->url_num);
    g_ptr_array_unref(h->urls);
    g_free(h);
    return NULL;
}

unsigned mg_html_to_text(const char *buf, size_t len, const char *label,
                         const struct mg_html_opts *o, GString *out)
{
    const char *cs = label != NULL ? mg_charset_canon(label) : NULL;
    GString *u = g_string_sized_new(len + 16);
    struct mg_html *h;
    unsigned flags;

    if (cs == NULL)
        cs = mg_html_meta_charset(buf, len);
    if (cs == NULL)
        cs = mg_charset_sniff(buf, len);
    mg_charset_to_utf8(cs, buf, len, u);
    h = mg_html_new(o);
    mg_html_feed(h, u->str, u->len);
    flags = mg_html_finish(h, out);
    mg_html_free(h);
    g_string_free(u, TRUE);
    return flags;
}
