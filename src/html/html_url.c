/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * NAME
 *	html_url 3
 * SUMMARY
 *	link targets: dangerous schemes, mailto, defanging
 * SYNOPSIS
 *	#include "html_int.h"
 *
 *	enum html_url_kind html_url_classify(const char *href, bool defang, char **shown);
 * DESCRIPTION
 *	href is an attribute value with its character references already
 *	decoded. It is cleaned as a URL parser does (leading and trailing
 *	C0 controls and spaces removed, TAB, LF and CR removed
 *	everywhere), then classified by its scheme:
 *
 *	javascript:, vbscript:, livescript: and data: give
 *	HTML_URL_DROPPED. The scheme is also compared with every
 *	character other than an ASCII letter removed, so that
 *	"java\uFFFDscript:" does not slip through as a relative URL.
 *
 *	mailto: gives HTML_URL_MAILTO and the address (up to '?').
 *
 *	An empty value, a fragment ("#top") or a relative reference
 *	(no scheme, no "//", and no "host.tld" first segment: there is no
 *	base to resolve it against in a mail) gives HTML_URL_NONE.
 *
 *	Anything else is HTML_URL_LISTED. Remaining controls and spaces
 *	are percent-encoded. With defang, http, https and ftp become
 *	hxxp, hxxps and fxp, and every '.' of the authority (after
 *	"scheme:" and its slashes or backslashes, or of a scheme-less
 *	"host.tld/..." start) becomes "[.]".
 *
 *	*shown is owned by the caller (g_free), NULL unless MAILTO or
 *	LISTED.
 * LIMITS
 *	*shown is cut to HTML_URL_MAX bytes (at a character boundary,
 *	then "...").
 */
#include <string.h>

#include "html_int.h"

static bool is_alpha(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

/* Length of the scheme of u (before ':'), or 0 when u has none. */
static size_t scheme_len(const char *u)
{
    size_t i = 0;

    if (!is_alpha(u[0]))
        return 0;
    while (u[i] != '\0' &&
           (is_alpha(u[i]) || g_ascii_isdigit(u[i]) || u[i] == '+' || u[i] == '-' || u[i] == '.'))
        i++;
    return u[i] == ':' ? i : 0;
}

/* True when the text before the first ':' (if no '/', '?', '#' comes
 * first), stripped of everything but ASCII letters, names a scheme
 * that runs code or carries inline content. */
static bool dangerous(const char *u)
{
    static const char *const bad[] = {"javascript", "vbscript", "livescript", "data"};
    char letters[16];
    size_t n = 0;

    for (const char *p = u; *p != '\0'; p++) {
        if (*p == ':') {
            letters[n] = '\0';
            for (size_t i = 0; i < G_N_ELEMENTS(bad); i++) {
                if (strcmp(letters, bad[i]) == 0)
                    return true;
            }
            return false;
        }
        if (*p == '/' || *p == '?' || *p == '#')
            return false;
        if (is_alpha(*p)) {
            if (n + 1 >= sizeof(letters))
                return false;
            letters[n++] = g_ascii_tolower(*p);
        }
    }
    return false;
}

/* The cleaned form of href: trimmed, TAB/LF/CR removed. */
static char *clean(const char *href)
{
    size_t len = strlen(href);
    GString *s;

    while (len > 0 && (unsigned char)href[len - 1] <= 0x20)
        len--;
    while (len > 0 && (unsigned char)href[0] <= 0x20) {
        href++;
        len--;
    }
    s = g_string_sized_new(len + 1);
    for (size_t i = 0; i < len; i++) {
        if (href[i] != '\t' && href[i] != '\n' && href[i] != '\r')
            g_string_append_c(s, href[i]);
    }
    return g_string_free(s, FALSE);
}

static bool host_char(char c)
{
    return is_alpha(c) || g_ascii_isdigit(c) || c == '-' || c == '.' || c == '_' ||
           (unsigned char)c >= 0x80;
}

/* Appends u[from..to) with '.' as "[.]". */
static void append_defanged_host(GString *out, const char *u, size_t from, size_t to)
{
    for (size_t i = from; i < to; i++) {
        if (u[i] == '.')
            g_string_append(out, "[.]");
        else
            g_string_append_c(out, u[i]);
    }
}

/* End of the authority that starts at u[i]. */
static size_t authority_end(const char *u, size_t i)
{
    while (u[i] != '\0' && u[i] != '/' && u[i] != '\\' && u[i] != '?' && u[i] != '#')
        i++;
    return i;
}

/* A scheme-less "host.tld/..." (a mail client would link it). */
static bool host_like(const char *u)
{
    size_t e = authority_end(u, 0), k;

    for (k = 0; k < e && host_char(u[k]); k++)
        ;
    return k == e && e > 0 && memchr(u, '.', e) != NULL && u[0] != '.';
}

static void defang(const char *u, GString *out)
{
    size_t sl = scheme_len(u), i = 0, a0 = 0, a1 = 0;

    if (sl > 0) {
        char *scheme = g_ascii_strdown(u, (gssize)sl);
        if (strcmp(scheme, "http") == 0)
            g_string_append(out, "hxxp");
        else if (strcmp(scheme, "https") == 0)
            g_string_append(out, "hxxps");
        else if (strcmp(scheme, "ftp") == 0)
            g_string_append(out, "fxp");
        else
            g_string_append(out, scheme);
        g_free(scheme);
        g_string_append_c(out, ':');
        i = sl + 1;
        size_t slashes = i;
        while (u[slashes] == '/' || u[slashes] == '\\')
            slashes++;
        if (slashes > i) {
            g_string_append_len(out, u + i, (gssize)(slashes - i));
            a0 = slashes;
            a1 = authority_end(u, a0);
        } else {
            a0 = a1 = i;
        }
    } else if (u[0] == '/' && u[1] == '/') {
        g_string_append(out, "//");
        a0 = 2;
        a1 = authority_end(u, a0);
    } else {
        if (host_like(u))
            a1 = authority_end(u, 0);
    }
    append_defanged_host(out, u, a0, a1);
    g_string_append(out, u + a1);
}

/* Percent-encodes controls and spaces; cuts at HTML_URL_MAX. */
static char *finish(const char *u)
{
    GString *s = g_string_sized_new(strlen(u) + 1);

    for (const char *p = u; *p != '\0'; p++) {
        unsigned char c = (unsigned char)*p;
        if (c <= 0x20 || c == 0x7f)
            g_string_append_printf(s, "%%%02X", c);
        else
            g_string_append_c(s, (char)c);
    }
    if (s->len > HTML_URL_MAX) {
        const char *end = s->str + HTML_URL_MAX;
        end = g_utf8_find_prev_char(s->str, end + 1);
        g_string_truncate(s, end != NULL ? (gsize)(end - s->str) : 0);
        g_string_append(s, "...");
    }
    return g_string_free(s, FALSE);
}

enum html_url_kind html_url_classify(const char *href, bool defang_urls, char **shown)
{
    char *u = clean(href);
    enum html_url_kind kind;
    size_t sl = scheme_len(u);

    *shown = NULL;
    if (u[0] == '\0' || u[0] == '#') {
        kind = HTML_URL_NONE;
    } else if (dangerous(u)) {
        kind = HTML_URL_DROPPED;
    } else if (sl == 6 && g_ascii_strncasecmp(u, "mailto", 6) == 0) {
        size_t n = strcspn(u + 7, "?");
        char *addr = g_strndup(u + 7, n);
        kind = n > 0 ? HTML_URL_MAILTO : HTML_URL_NONE;
        if (n > 0)
            *shown = finish(addr);
        g_free(addr);
    } else if (sl == 0 && !(u[0] == '/' && u[1] == '/') && !host_like(u)) {
        kind = HTML_URL_NONE; /* relative: nothing to resolve it against in a mail */
    } else {
        kind = HTML_URL_LISTED;
        if (defang_urls) {
            GString *d = g_string_new(NULL);
            defang(u, d);
            *shown = finish(d->str);
            g_string_free(d, TRUE);
        } else {
            *shown = finish(u);
        }
    }
    g_free(u);
    return kind;
}
