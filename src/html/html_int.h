/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * NAME
 *	html_int 3h
 * SUMMARY
 *	private declarations of the html module
 * DESCRIPTION
 *	html_entities.c: the HTML5 named character reference table.
 *	html_ent.c: character reference decoding as the HTML5 tokenizer
 *	does it (text and attribute value rules).
 *	html_url.c: link classification and defanging.
 *	html_meta.c: the <meta> charset prescan (mg_html_meta_charset).
 */
#ifndef MUGAIKA_HTML_INT_H
#define MUGAIKA_HTML_INT_H

#include <stdbool.h>
#include <stddef.h>

#include <glib.h>

struct html_entity {
    const char *name; /* with the ';' when the reference needs it */
    const char *utf8;
};
extern const struct html_entity html_entities[];
extern const size_t html_entities_count;

/* Appends s[0..len) to out with every character reference decoded
 * (HTML5 rules; in_attr selects the attribute value exception for
 * legacy names followed by '=' or an alphanumeric). Numeric references
 * to 0, surrogates and code points above U+10FFFF give U+FFFD, 0x80-0x9F
 * the windows-1252 characters, C0 controls other than TAB, LF, FF and
 * CR U+FFFD. s must be valid UTF-8; so is the result. */
void html_ent_decode(const char *s, size_t len, bool in_attr, GString *out);

enum html_url_kind {
    HTML_URL_NONE,    /* empty or a fragment only: not listed */
    HTML_URL_DROPPED, /* javascript:, vbscript:, data: (after deobfuscation) */
    HTML_URL_MAILTO,  /* shown as the address */
    HTML_URL_LISTED,  /* numbered in the link list */
};

/* Classifies a decoded href value and stores in *shown (owned by the
 * caller, NULL for NONE and DROPPED) the form to print: the address
 * for MAILTO, the cleaned (and, with defang, defanged) URL for LISTED.
 * Surrounding blanks are removed, TAB/LF/CR inside removed (as a URL
 * parser does), other controls and spaces percent-encoded, and the
 * result capped at HTML_URL_MAX bytes. */
#define HTML_URL_MAX 2048
enum html_url_kind html_url_classify(const char *href, bool defang, char **shown);

#endif
