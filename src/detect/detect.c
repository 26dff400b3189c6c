/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * NAME
 *	detect 3
 * SUMMARY
 *	content type detection with libmagic
 * SYNOPSIS
 *	#include <mugaika/detect.h>
 *
 *	struct mg_detect *mg_detect_new(const char **why);
 *	const char *mg_detect_buffer(struct mg_detect *d, const void *buf, size_t len);
 *	struct mg_detect *mg_detect_free(struct mg_detect *d);
 *	struct mg_detect *mg_detect_take(const char **why);
 *	void mg_detect_give(struct mg_detect *d);
 * DESCRIPTION
 *	One libmagic cookie per detector, opened with MAGIC_MIME_TYPE so
 *	the answer is a bare MIME type. The caller passes the first
 *	MG_DETECT_SNIFF_BYTES of the decoded content (libmagic reads no
 *	further for the types that matter here).
 *
 *	mg_detect_take and mg_detect_give lend detectors from a process-wide
 *	pool, for callers whose work does not stay on one thread (the
 *	milter's messages, the sanitiser's work-ahead threads). A new
 *	cookie costs far more than a detection: magic_load maps the
 *	database again, its pages are faulted in again, and the regular
 *	expressions are compiled again at their first use. A detector is
 *	used by one caller at a time: given back, it may go to another
 *	thread, which is safe because libmagic keeps no per-thread state
 *	in a cookie. At most DETECT_POOL idle detectors are kept.
 *
 *	libmagic calls an SVG drawing text/plain when its root element
 *	follows a comment or blank lines, or carries few attributes (and
 *	text/csv when its lines hold as many commas each), and plain-text
 *	and CSV attachments are kept as they are. So a text answer other
 *	than text/html is looked at once more: content whose first
 *	element, after a byte order mark, blank space, the XML
 *	declaration, processing instructions, comments and a document
 *	type declaration, is svg (with or without a namespace prefix) is
 *	image/svg+xml; such a prolog that runs to the end of a full sniff
 *	window, so that the root cannot be seen, is application/xml. Both
 *	are types no rule keeps. UTF-16 and UTF-32 with a byte order mark
 *	are read through their ASCII.
 * DIAGNOSTICS
 *	mg_detect_new returns NULL and a reason when the magic database
 *	cannot be loaded. mg_detect_buffer never fails: a libmagic error
 *	reads as application/octet-stream (the most restrictive type).
 */
#include <stdbool.h>
#include <string.h>

#include <magic.h>
#include <glib.h>

#include <mugaika/detect.h>

#define DETECT_POOL 64 /* idle detectors kept; each maps the database (shared pages) */

struct mg_detect {
    magic_t cookie;
    magic_t text; /* MAGIC_NO_CHECK_SOFT, made on first use */
};

struct mg_detect *mg_detect_new(const char **why)
{
    struct mg_detect *d;
    magic_t m = magic_open(MAGIC_MIME_TYPE | MAGIC_ERROR);

    if (m == NULL) {
        *why = "magic_open failed";
        return NULL;
    }
    if (magic_load(m, NULL) != 0) {
        *why = "cannot load the libmagic database (is libmagic-mgc installed?)";
        magic_close(m);
        return NULL;
    }
    d = g_new0(struct mg_detect, 1);
    d->cookie = m;
    return d;
}

/* Character i of the text as ASCII: UTF-16 and UTF-32 read through
 * their low bytes (a code unit above 0x7f reads as 0x80, which no
 * markup matches). */
struct markup {
    const unsigned char *p;
    size_t n; /* characters */
    int unit; /* bytes a character: 1, 2 (UTF-16) or 4 (UTF-32) */
    int lo;   /* offset of the low byte in a unit */
};

static int mk_at(const struct markup *m, size_t i)
{
    const unsigned char *u = m->p + i * (size_t)m->unit;

    for (int k = 0; k < m->unit; k++)
        if (k != m->lo && u[k] != 0)
            return 0x80;
    return u[m->lo] < 0x80 ? u[m->lo] : 0x80;
}

static bool mk_starts(const struct markup *m, size_t i, const char *s)
{
    for (; *s != '\0'; s++, i++)
        if (i >= m->n || g_ascii_tolower(mk_at(m, i)) != *s)
            return false;
    return true;
}

/* Index just past the first `end` at or after i; m->n when none. */
static size_t mk_past(const struct markup *m, size_t i, const char *end)
{
    for (; i < m->n; i++)
        if (mk_starts(m, i, end))
            return i + strlen(end);
    return m->n;
}

/* The text after its byte order mark, if any. */
static struct markup mk_open(const unsigned char *b, size_t len)
{
    static const struct {
        unsigned char bom[4];
        int size, unit, lo;
    } boms[] = {
        /* UTF-32 first: its little-endian mark starts like UTF-16's */
        {{0xff, 0xfe, 0, 0}, 4, 4, 0},    {{0, 0, 0xfe, 0xff}, 4, 4, 3},
        {{0xef, 0xbb, 0xbf, 0}, 3, 1, 0}, {{0xff, 0xfe, 0, 0}, 2, 2, 0},
        {{0xfe, 0xff, 0, 0}, 2, 2, 1},
    };
    struct markup m = {b, len, 1, 0};

    for (size_t k = 0; k < G_N_ELEMENTS(boms); k++) {
        size_t n = (size_t)boms[k].size;
        if (len >= n && memcmp(b, boms[k].bom, n) == 0) {
            m.p = b + n;
            m.unit = boms[k].unit;
            m.lo = boms[k].lo;
            m.n = (len - n) / (size_t)m.unit;
            break;
        }
    }
    return m;
}

enum markup_root { ROOT_NONE, ROOT_SVG, ROOT_UNSEEN };

static bool mk_name_char(int c)
{
    return g_ascii_isalnum(c) || c == '-' || c == '_' || c == '.';
}

/* What the text's first element is (DESCRIPTION). */
static enum markup_root markup_root(const unsigned char *buf, size_t len)
{
    struct markup m = mk_open(buf, len);
    size_t i = 0;
    bool prolog = false;

    for (;;) {
        while (i < m.n && g_ascii_isspace(mk_at(&m, i)))
            i++;
        if (mk_starts(&m, i, "<?"))
            i = mk_past(&m, i + 2, "?>");
        else if (mk_starts(&m, i, "<!--"))
            i = mk_past(&m, i + 4, "-->");
        else if (mk_starts(&m, i, "<!doctype")) {
            /* an internal subset ends at "]>" */
            size_t gt = mk_past(&m, i, ">"), sub = mk_past(&m, i, "[");
            i = sub < gt ? mk_past(&m, mk_past(&m, sub, "]"), ">") : gt;
        } else
            break;
        prolog = true;
    }
    if (i >= m.n)
        return prolog && len >= MG_DETECT_SNIFF_BYTES ? ROOT_UNSEEN : ROOT_NONE;
    if (mk_at(&m, i) != '<')
        return ROOT_NONE;
    /* a name, then an optional prefix's colon */
    size_t name = ++i;
    while (i < m.n && mk_name_char(mk_at(&m, i)))
        i++;
    if (i < m.n && mk_at(&m, i) == ':' && i > name) {
        name = ++i;
        while (i < m.n && mk_name_char(mk_at(&m, i)))
            i++;
    }
    if (i - name == 3 && mk_starts(&m, name, "svg") &&
        (i == m.n || g_ascii_isspace(mk_at(&m, i)) || mk_at(&m, i) == '>' || mk_at(&m, i) == '/'))
        return ROOT_SVG;
    return ROOT_NONE;
}

const char *mg_detect_buffer(struct mg_detect *d, const void *buf, size_t len)
{
    const char *t;

    if (len == 0)
        return "application/x-empty";
    if (len > MG_DETECT_SNIFF_BYTES)
        len = MG_DETECT_SNIFF_BYTES;
    t = magic_buffer(d->cookie, buf, len);
    if (t == NULL)
        return "application/octet-stream";
    /* any text but HTML (turned into text, never kept) */
    if (g_str_has_prefix(t, "text/") && strcmp(t, "text/html") != 0) {
        switch (markup_root(buf, len)) {
        case ROOT_SVG:
            return "image/svg+xml";
        case ROOT_UNSEEN:
            return "application/xml";
        case ROOT_NONE:
            break;
        }
    }
    return t;
}

const char *mg_detect_text(struct mg_detect *d, const void *buf, size_t len)
{
    const char *t;

    if (len == 0)
        return NULL;
    if (d->text == NULL) {
        d->text = magic_open(MAGIC_MIME_TYPE | MAGIC_ERROR | MAGIC_NO_CHECK_SOFT);
        if (d->text == NULL)
            return NULL;
        if (magic_load(d->text, NULL) != 0) {
            magic_close(d->text);
            d->text = NULL;
            return NULL;
        }
    }
    if (len > MG_DETECT_SNIFF_BYTES)
        len = MG_DETECT_SNIFF_BYTES;
    t = magic_buffer(d->text, buf, len);
    return t != NULL && strncmp(t, "text/", 5) == 0 ? t : NULL;
}

struct mg_detect *mg_detect_free(struct mg_detect *d)
{
    if (d != NULL) {
        if (d->text != NULL)
            magic_close(d->text);
        magic_close(d->cookie);
        g_free(d);
    }
    return NULL;
}

static GMutex pool_lock;
static GPtrArray *pool;

struct mg_detect *mg_detect_take(const char **why)
{
    struct mg_detect *d = NULL;

    g_mutex_lock(&pool_lock);
    if (pool != NULL && pool->len > 0)
        d = g_ptr_array_steal_index_fast(pool, pool->len - 1);
    g_mutex_unlock(&pool_lock);
    return d != NULL ? d : mg_detect_new(why);
}

void mg_detect_give(struct mg_detect *d)
{
    if (d == NULL)
        return;
    g_mutex_lock(&pool_lock);
    if (pool == NULL)
        pool = g_ptr_array_new();
    if (pool->len < DETECT_POOL) {
        g_ptr_array_add(pool, d);
        d = NULL;
    }
    g_mutex_unlock(&pool_lock);
    mg_detect_free(d);
}
