/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * NAME
 *	charset 3h
 * SUMMARY
 *	any charset to UTF-8, Japanese first-class
 * DESCRIPTION
 *	Every text that libmugaika hands on is UTF-8. Invalid input
 *	sequences become U+FFFD; the rest of the text is never lost.
 *
 *	Canonical names returned by this module (static strings):
 *	"us-ascii", "utf-8", "iso-2022-jp" (decoded with the Microsoft
 *	CP50220/50221/50222 extensions), "cp932" (also for Shift_JIS
 *	labels), "euc-jp" (eucJP-ms), and for every other label the
 *	lower-cased iconv name that glibc accepts.
 */
#ifndef MUGAIKA_CHARSET_H
#define MUGAIKA_CHARSET_H

#include <stddef.h>
#include <glib.h>

/* Map a MIME charset label (any case, surrounding blanks allowed) to
 * the canonical name of the converter used, or NULL when no converter
 * exists for it. The result is static (interned). */
const char *mg_charset_canon(const char *label);

/* Guess the charset of bytes that carry no (or a wrong) label.
 * Returns one of "us-ascii", "utf-8", "iso-2022-jp", "cp932",
 * "euc-jp", or "windows-1252" when nothing Japanese fits. Static. */
const char *mg_charset_sniff(const void *buf, size_t len);

/* One-shot conversion: append the UTF-8 form of buf to out. A NULL or
 * unknown label, or a label the bytes plainly contradict (8-bit bytes
 * under us-ascii/iso-2022-jp, invalid UTF-8 under utf-8), is
 * sniffed instead. Returns the number of U+FFFD inserted. */
size_t mg_charset_to_utf8(const char *label, const void *buf, size_t len, GString *out);

/* Streaming converter: the same result whatever the chunking. Owned
 * by the caller; free with mg_charset_conv_free. While the charset is
 * being sniffed, up to 64 KiB are held back. */
struct mg_charset_conv;
struct mg_charset_conv *mg_charset_conv_new(const char *label);
void mg_charset_conv_feed(struct mg_charset_conv *c, const void *buf, size_t len, GString *out);
void mg_charset_conv_finish(struct mg_charset_conv *c, GString *out);
/* The canonical charset actually used (valid once decided, else NULL). */
const char *mg_charset_conv_name(const struct mg_charset_conv *c);
size_t mg_charset_conv_replacements(const struct mg_charset_conv *c);
struct mg_charset_conv *mg_charset_conv_free(struct mg_charset_conv *c);

#endif
