/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * NAME
 *	html_ent 3
 * SUMMARY
 *	HTML character references, decoded as a browser does
 * SYNOPSIS
 *	#include "html_int.h"
 *
 *	void html_ent_decode(const char *s, size_t len, bool in_attr, GString *out);
 * DESCRIPTION
 *	The character reference state of the HTML5 tokenizer, applied to
 *	a whole text run or attribute value at once:
 *
 *	"&name;" and the legacy names without ';' ("&amp", "&eacute")
 *	by the longest match in html_entities[]; in an attribute value a
 *	match without ';' followed by '=' or an alphanumeric stays
 *	literal ("?a=1&copy=2"). "&#N;" and "&#xH;" with or without ';':
 *	0, surrogates and values above U+10FFFF give U+FFFD, 0x80-0x9F
 *	the windows-1252 characters. "&#" without digits, unknown names
 *	and a bare '&' stay literal.
 *
 *	The result is appended to out (owned by the caller); it is valid
 *	UTF-8 when s is.
 * LIMITS
 *	Names are looked up up to 32 characters (the longest HTML5 name);
 *	digits beyond the first that overflow saturate to U+FFFD.
 */
#include <string.h>

#include "html_int.h"

#define NAME_MAX_LEN 32

/* HTML5 "numeric character reference end state" table for 0x80-0x9F;
 * 0 means the code point is kept. */
static const guint16 win1252[32] = {
    0x20AC, 0,      0x201A, 0x0192, 0x201E, 0x2026, 0x2020, 0x2021, 0x02C6, 0x2030, 0x0160,
    0x2039, 0x0152, 0,      0x017D, 0,      0,      0x2018, 0x2019, 0x201C, 0x201D, 0x2022,
    0x2013, 0x2014, 0x02DC, 0x2122, 0x0161, 0x203A, 0x0153, 0,      0x017E, 0x0178,
};

static bool is_alnum(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* The entity named exactly name[0..len), or NULL. */
static const char *lookup(const char *name, size_t len)
{
    size_t lo = 0, hi = html_entities_count;

    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        const char *k = html_entities[mid].name;
        size_t klen = strlen(k);
        int c = memcmp(name, k, len < klen ? len : klen);
        if (c == 0)
            c = len < klen ? -1 : len > klen ? 1 : 0;
        if (c == 0)
            return html_entities[mid].utf8;
        if (c < 0)
            hi = mid;
        else
            lo = mid + 1;
    }
    return NULL;
}

/* "&#..." at s[0]; returns the bytes consumed (0: not a reference). */
static size_t numeric(const char *s, size_t len, GString *out)
{
    size_t i = 2;
    bool hex = false, any = false;
    guint32 v = 0;

    if (i < len && (s[i] == 'x' || s[i] == 'X')) {
        hex = true;
        i++;
    }
    for (; i < len; i++) {
        int d = hex ? hexval(s[i]) : (s[i] >= '0' && s[i] <= '9' ? s[i] - '0' : -1);
        if (d < 0)
            break;
        any = true;
        if (v <= 0x10FFFF)
            v = v * (hex ? 16 : 10) + (guint32)d;
    }
    if (!any)
        return 0;
    if (i < len && s[i] == ';')
        i++;
    if (v == 0 || v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF))
        v = 0xFFFD;
    else if (v >= 0x80 && v <= 0x9F && win1252[v - 0x80] != 0)
        v = win1252[v - 0x80];
    g_string_append_unichar(out, v);
    return i;
}

/* "&name..." at s[0]; returns the bytes consumed (0: not a reference). */
static size_t named(const char *s, size_t len, bool in_attr, GString *out)
{
    size_t n = 0;
    const char *v;

    while (1 + n < len && n <= NAME_MAX_LEN && is_alnum(s[1 + n]))
        n++;
    if (n == 0)
        return 0;
    if (1 + n < len && s[1 + n] == ';' && n + 1 <= NAME_MAX_LEN &&
        (v = lookup(s + 1, n + 1)) != NULL) {
        g_string_append(out, v);
        return n + 2;
    }
    for (size_t k = n < NAME_MAX_LEN ? n : NAME_MAX_LEN; k >= 2; k--) {
        if ((v = lookup(s + 1, k)) == NULL)
            continue;
        if (in_attr && 1 + k < len && (s[1 + k] == '=' || is_alnum(s[1 + k])))
            return 0;
        g_string_append(out, v);
        return k + 1;
    }
    return 0;
}

void html_ent_decode(const char *s, size_t len, bool in_attr, GString *out)
{
    size_t i = 0;

    while (i < len) {
        const char *amp = memchr(s + i, '&', len - i);
        if (amp == NULL) {
            g_string_append_len(out, s + i, (gssize)(len - i));
            return;
        }
        size_t at = (size_t)(amp - s), used;
        g_string_append_len(out, s + i, (gssize)(at - i));
        if (at + 1 < len && s[at + 1] == '#')
            used = numeric(s + at, len - at, out);
        else
            used = named(s + at, len - at, in_attr, out);
        if (used == 0) {
            g_string_append_c(out, '&');
            used = 1;
        }
        i = at + used;
    }
}
