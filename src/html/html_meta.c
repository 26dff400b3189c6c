/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * NAME
 *	html_meta 3
 * SUMMARY
 *	the charset declared by an HTML document (<meta> prescan)
 * SYNOPSIS
 *	#include <mugaika/html.h>
 *
 *	const char *mg_html_meta_charset(const char *buf, size_t len);
 * DESCRIPTION
 *	A simplified form of the HTML5 "prescan a byte stream to determine
 *	its encoding" algorithm over the first 4 KiB of buf: comments are
 *	skipped, other tags are skipped with their (quoted) attributes,
 *	and every <meta> tag is read: a charset attribute wins, else
 *	http-equiv="Content-Type" with a content attribute holding
 *	"charset=X" (quoted or not). Names and values are matched in any
 *	case. A label that mg_charset_canon does not know is passed over
 *	and the scan goes on; UTF-16 labels read as UTF-8 (the bytes were
 *	evidently ASCII-compatible) and x-user-defined as windows-1252,
 *	as HTML5 says.
 *
 *	Returns a static canonical name (mg_charset_canon) or NULL.
 * LIMITS
 *	4096 bytes are scanned; attribute values longer than 256 bytes
 *	are cut.
 */
#include <string.h>

#include <mugaika/charset.h>
#include <mugaika/html.h>

#define SCAN_MAX  4096
#define VALUE_MAX 256

struct scan {
    const char *p;
    size_t i, len;
};

static bool is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f';
}

static bool starts_ci(const struct scan *s, const char *lit)
{
    size_t n = strlen(lit);
    return s->len - s->i >= n && g_ascii_strncasecmp(s->p + s->i, lit, n) == 0;
}

/* Reads one attribute at s->i into name/value (lower-cased name,
 * value as written). Returns false at '>' or the end. */
static bool get_attr(struct scan *s, GString *name, GString *value)
{
    g_string_truncate(name, 0);
    g_string_truncate(value, 0);
    while (s->i < s->len && (is_space(s->p[s->i]) || s->p[s->i] == '/'))
        s->i++;
    if (s->i >= s->len || s->p[s->i] == '>')
        return false;
    while (s->i < s->len) {
        char c = s->p[s->i];
        if (is_space(c) || c == '/' || c == '>' || (c == '=' && name->len > 0))
            break;
        if (name->len < VALUE_MAX)
            g_string_append_c(name, g_ascii_tolower(c));
        s->i++;
    }
    while (s->i < s->len && is_space(s->p[s->i]))
        s->i++;
    if (s->i >= s->len || s->p[s->i] != '=')
        return true;
    s->i++;
    while (s->i < s->len && is_space(s->p[s->i]))
        s->i++;
    if (s->i < s->len && (s->p[s->i] == '"' || s->p[s->i] == '\'')) {
        char q = s->p[s->i++];
        while (s->i < s->len && s->p[s->i] != q) {
            if (value->len < VALUE_MAX)
                g_string_append_c(value, s->p[s->i]);
            s->i++;
        }
        if (s->i < s->len)
            s->i++;
        return true;
    }
    while (s->i < s->len && !is_space(s->p[s->i]) && s->p[s->i] != '>') {
        if (value->len < VALUE_MAX)
            g_string_append_c(value, s->p[s->i]);
        s->i++;
    }
    return true;
}

/* "charset=X" inside a content attribute; owned result or NULL. */
static char *charset_from_content(const char *v)
{
    const char *p = v;

    while ((p = strstr(p, "charset")) != NULL) {
        p += 7;
        while (is_space(*p))
            p++;
        if (*p != '=')
            continue;
        p++;
        while (is_space(*p))
            p++;
        if (*p == '"' || *p == '\'') {
            const char *e = strchr(p + 1, *p);
            return e != NULL ? g_strndup(p + 1, (gsize)(e - p - 1)) : NULL;
        }
        size_t n = 0;
        while (p[n] != '\0' && !is_space(p[n]) && p[n] != ';')
            n++;
        return n > 0 ? g_strndup(p, n) : NULL;
    }
    return NULL;
}

static const char *canon(const char *label)
{
    const char *c;

    if (label == NULL || label[0] == '\0')
        return NULL;
    if (g_ascii_strncasecmp(label, "utf-16", 6) == 0 || g_ascii_strcasecmp(label, "utf16") == 0)
        return mg_charset_canon("utf-8");
    if (g_ascii_strcasecmp(label, "x-user-defined") == 0)
        return mg_charset_canon("windows-1252");
    c = mg_charset_canon(label);
    return c;
}

/* At "<meta": reads its attributes; returns the declared charset. */
static const char *meta_tag(struct scan *s, GString *name, GString *value)
{
    char *from_charset = NULL, *from_content = NULL;
    bool refresh_ct = false;
    const char *r = NULL;

    s->i += 5;
    while (get_attr(s, name, value)) {
        if (strcmp(name->str, "charset") == 0 && from_charset == NULL)
            from_charset = g_strstrip(g_strdup(value->str));
        else if (strcmp(name->str, "http-equiv") == 0)
            refresh_ct = refresh_ct || g_ascii_strcasecmp(value->str, "content-type") == 0;
        else if (strcmp(name->str, "content") == 0 && from_content == NULL) {
            char *low = g_ascii_strdown(value->str, -1);
            from_content = charset_from_content(low);
            g_free(low);
        }
    }
    if (from_charset != NULL)
        r = canon(from_charset);
    else if (refresh_ct && from_content != NULL)
        r = canon(from_content);
    g_free(from_charset);
    g_free(from_content);
    return r;
}

/* Skips a tag other than <meta> with its attributes. */
static void skip_tag(struct scan *s, GString *name, GString *value)
{
    while (s->i < s->len && !is_space(s->p[s->i]) && s->p[s->i] != '>')
        s->i++;
    while (get_attr(s, name, value))
        ;
    if (s->i < s->len)
        s->i++;
}

const char *mg_html_meta_charset(const char *buf, size_t len)
{
    struct scan s = {buf, 0, len < SCAN_MAX ? len : SCAN_MAX};
    GString *name = g_string_new(NULL), *value = g_string_new(NULL);
    const char *r = NULL;

    while (r == NULL && s.i < s.len) {
        const char *lt = memchr(s.p + s.i, '<', s.len - s.i);
        if (lt == NULL)
            break;
        s.i = (size_t)(lt - s.p);
        if (starts_ci(&s, "<!--")) {
            const char *e = g_strstr_len(s.p + s.i + 2, (gssize)(s.len - s.i - 2), "-->");
            if (e == NULL)
                break;
            s.i = (size_t)(e - s.p) + 3;
        } else if (starts_ci(&s, "<meta") && s.i + 5 < s.len &&
                   (is_space(s.p[s.i + 5]) || s.p[s.i + 5] == '/')) {
            r = meta_tag(&s, name, value);
        } else if (s.i + 1 < s.len &&
                   (g_ascii_isalpha(s.p[s.i + 1]) ||
                    (s.p[s.i + 1] == '/' && s.i + 2 < s.len && g_ascii_isalpha(s.p[s.i + 2])))) {
            s.i++;
            skip_tag(&s, name, value);
        } else if (s.i + 1 < s.len &&
                   (s.p[s.i + 1] == '!' || s.p[s.i + 1] == '/' || s.p[s.i + 1] == '?')) {
            const char *gt = memchr(s.p + s.i, '>', s.len - s.i);
            if (gt == NULL)
                break;
            s.i = (size_t)(gt - s.p) + 1;
        } else {
            s.i++;
        }
    }
    g_string_free(name, TRUE);
    g_string_free(value, TRUE);
    return r;
}
