/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * NAME
 *	html 3h
 * SUMMARY
 *	HTML to plain text, for staff to read
 * SYNOPSIS
 *	struct mg_html *h = mg_html_new(&opts);
 *	mg_html_feed(h, utf8, len);  ...
 *	mg_html_finish(h, out);      (appends UTF-8 text to out)
 *	mg_html_free(h);
 * DESCRIPTION
 *	Input is UTF-8 (the caller converts: MIME charset, else
 *	mg_html_meta_charset, else mg_charset_sniff). Output is plain
 *	text: blocks and <br> as line breaks, headings, numbered and
 *	bulleted lists, tables row by row, <pre> kept, entities decoded;
 *	script, style, head, template, comments and hidden content
 *	dropped; images as "[画像: alt]" / "[image: alt]"; links as
 *	"text [1]" with a numbered URL list at the end, defanged
 *	("hxxps://example[.]com/") unless opts.defang_urls is false;
 *	javascript:, vbscript: and data: URLs dropped.
 *	Work is bounded: after opts.budget_us of CPU time or
 *	opts.max_output bytes of text, conversion stops and the result
 *	is flagged.
 */
#ifndef MUGAIKA_HTML_H
#define MUGAIKA_HTML_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <glib.h>

struct mg_html_opts {
    const char *lang;  /* "ja" (default) or "en": words in image/link markers */
    bool defang_urls;  /* default true */
    int64_t budget_us; /* CPU time per document (default 2 s) */
    size_t max_output; /* text bytes (default 64 MiB) */
};
void mg_html_opts_default(struct mg_html_opts *o);

/* Result flags of mg_html_finish. */
enum {
    MG_HTML_TRUNCATED = 1u << 0,    /* max_output reached */
    MG_HTML_TIMEOUT = 1u << 1,      /* budget_us reached */
    MG_HTML_URLS_DROPPED = 1u << 2, /* javascript:/vbscript:/data: URLs removed */
    MG_HTML_ACTIVE = 1u << 3,       /* script, forms, event handlers, iframes, meta refresh seen */
};

struct mg_html;
struct mg_html *mg_html_new(const struct mg_html_opts *o);
void mg_html_feed(struct mg_html *h, const char *utf8, size_t len);
/* Appends the text to out; returns MG_HTML_* flags. */
unsigned mg_html_finish(struct mg_html *h, GString *out);
struct mg_html *mg_html_free(struct mg_html *h);

/* One-shot helper: converts len bytes in charset label (NULL: meta
 * charset, else sniffed) and appends the text to out. */
unsigned mg_html_to_text(const char *buf, size_t len, const char *label,
                         const struct mg_html_opts *o, GString *out);

/* Charset declared by <meta charset> or <meta http-equiv
 * content="...; charset=..."> in the first 4 KiB (HTML prescan), as a
 * canonical name (mg_charset_canon), or NULL. */
const char *mg_html_meta_charset(const char *buf, size_t len);

#endif
