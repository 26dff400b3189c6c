/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * NAME
 *	reply 3
 * SUMMARY
 *	the rebuilt message cut to the MTA's measure; log escaping
 * DESCRIPTION
 *	mg_split_fields cuts the header block that the sanitiser wrote
 *	into (name, value) pairs for smfi_addheader: the value keeps its
 *	leading space (the milter negotiates SMFIP_HDR_LEADSPC) and its
 *	folding, with LF line ends as the MTA expects inside a value.
 *	mg_crlf turns the body into the CRLF form of the milter protocol.
 *	mg_log_escape keeps message-derived text in a log line harmless.
 */
#include <string.h>

#include <glib.h>

#include "milter/milter.h"

void mg_field_free(gpointer p)
{
    struct mg_field *f = p;

    if (f == NULL)
        return;
    g_free(f->name);
    g_free(f->value);
    g_free(f);
}

static bool is_ftext(unsigned char c)
{
    return c > 32 && c < 127 && c != ':';
}

bool mg_split_fields(const char *hdr, size_t len, GPtrArray *fields)
{
    struct mg_field *f = NULL;
    GString *value = NULL;
    size_t i = 0;

    while (i < len) {
        const char *nl = memchr(hdr + i, '\n', len - i);
        size_t end = nl != NULL ? (size_t)(nl - hdr) : len;
        size_t next = nl != NULL ? end + 1 : len;
        size_t lend = end;

        if (lend > i && hdr[lend - 1] == '\r')
            lend--;
        if (lend == i) /* the empty line: end of the block */
            break;
        if (hdr[i] == ' ' || hdr[i] == '\t') {
            if (f == NULL)
                goto bad;
            g_string_append_c(value, '\n');
            g_string_append_len(value, hdr + i, (gssize)(lend - i));
        } else {
            size_t n = i;
            while (n < lend && is_ftext((unsigned char)hdr[n]))
                n++;
            if (n == i || n >= lend || hdr[n] != ':')
                goto bad;
            if (f != NULL) {
                f->value = g_string_free(value, FALSE);
                g_ptr_array_add(fields, f);
            }
            f = g_new0(struct mg_field, 1);
            f->name = g_strndup(hdr + i, n - i);
            value = g_string_new_len(hdr + n + 1, (gssize)(lend - n - 1));
        }
        i = next;
    }
    if (f != NULL) {
        f->value = g_string_free(value, FALSE);
        g_ptr_array_add(fields, f);
    }
    return true;
bad:
    if (f != NULL) {
        g_string_free(value, TRUE);
        mg_field_free(f);
    }
    return false;
}

size_t mg_crlf(const char *in, size_t len, char *out, bool *cr)
{
    size_t o = 0;

    for (size_t i = 0; i < len; i++) {
        char c = in[i];
        if (c == '\n' && !*cr)
            out[o++] = '\r';
        out[o++] = c;
        *cr = c == '\r';
    }
    return o;
}

void mg_log_escape(GString *g, const char *s, size_t max)
{
    size_t n = 0;

    if (s == NULL)
        return;
    for (; s[n] != '\0' && n < max; n++) {
        unsigned char c = (unsigned char)s[n];
        if (c >= 0x20 && c < 0x7f && c != '"' && c != '\\')
            g_string_append_c(g, (char)c);
        else
            g_string_append_printf(g, "\\x%02x", c);
    }
    if (s[n] != '\0')
        g_string_append(g, "...");
}
