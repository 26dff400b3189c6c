/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * NAME
 *	html_conv 1
 * SUMMARY
 *	convert one HTML file to text (test driver for quality.py)
 * SYNOPSIS
 *	html_conv [-l ja|en] [-p] [-c chunk] [-s charset] file
 * DESCRIPTION
 *	Reads file, converts it with mg_html_to_text (or, with -c, feeds
 *	mg_html_feed chunk bytes at a time after converting it to UTF-8
 *	with the same charset choice) and writes the text to standard
 *	output, then "flags=N" on standard error.
 *
 *	-l: marker language (default ja). -p: plain URLs (no defanging).
 *	-s: charset label, as a MIME label would give it.
 * DIAGNOSTICS
 *	Exit status 0, or 2 on a usage or read error.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <glib.h>

#include <mugaika/charset.h>
#include <mugaika/html.h>

int main(int argc, char **argv)
{
    struct mg_html_opts o;
    const char *label = NULL, *path = NULL;
    long chunk = 0;
    char *buf;
    gsize len;
    unsigned flags;
    GString *out = g_string_new(NULL);

    mg_html_opts_default(&o);
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "-l") == 0 && i + 1 < argc)
            o.lang = argv[++i];
        else if (strcmp(argv[i], "-p") == 0)
            o.defang_urls = false;
        else if (strcmp(argv[i], "-c") == 0 && i + 1 < argc)
            chunk = strtol(argv[++i], NULL, 10);
        else if (strcmp(argv[i], "-s") == 0 && i + 1 < argc)
            label = argv[++i];
        else if (path == NULL && argv[i][0] != '-')
            path = argv[i];
        else
            path = NULL, i = argc;
    }
    if (path == NULL || !g_file_get_contents(path, &buf, &len, NULL)) {
        fprintf(stderr, "usage: html_conv [-l ja|en] [-p] [-c chunk] [-s charset] file\n");
        return 2;
    }
    if (chunk <= 0) {
        flags = mg_html_to_text(buf, len, label, &o, out);
    } else {
        const char *cs = label != NULL ? mg_charset_canon(label) : NULL;
        GString *u = g_string_new(NULL);
        struct mg_html *h = mg_html_new(&o);
        if (cs == NULL)
            cs = mg_html_meta_charset(buf, len);
        mg_charset_to_utf8(cs, buf, len, u);
        for (gsize off = 0; off < u->len; off += (gsize)chunk)
            mg_html_feed(h, u->str + off, MIN((gsize)chunk, u->len - off));
        flags = mg_html_finish(h, out);
        mg_html_free(h);
        g_string_free(u, TRUE);
    }
    fwrite(out->str, 1, out->len, stdout);
    fprintf(stderr, "flags=%u\n", flags);
    g_string_free(out, TRUE);
    g_free(buf);
    return 0;
}
