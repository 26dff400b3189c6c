/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * NAME
 *	detect 3h
 * SUMMARY
 *	content type detection with libmagic
 * DESCRIPTION
 *	A struct mg_detect wraps one libmagic cookie; libmagic cookies are
 *	not thread-safe, so each thread creates its own or borrows one from
 *	the pool (mg_detect_take) for as long as it works. Detection looks
 *	at the first MG_DETECT_SNIFF_BYTES of decoded content only.
 */
#ifndef MUGAIKA_DETECT_H
#define MUGAIKA_DETECT_H

#include <stddef.h>

#define MG_DETECT_SNIFF_BYTES (256 * 1024)

struct mg_detect;

/* Returns a new detector, or NULL with a static reason in *why when
 * libmagic or its database cannot be loaded. */
struct mg_detect *mg_detect_new(const char **why);
/* MIME type ("application/pdf") of buf; borrowed, valid until the
 * next call on d. "application/octet-stream" when libmagic fails;
 * "application/x-empty" for len 0. */
const char *mg_detect_buffer(struct mg_detect *d, const void *buf, size_t len);
/* Text check only (libmagic without its magic database: encodings,
 * CSV, JSON): about 50 times cheaper. Returns a text/... type when buf
 * is text, else NULL (the caller then asks mg_detect_buffer). For
 * content that is used as text whatever its kind (a message body,
 * which becomes part of a text/plain body), never for files. */
const char *mg_detect_text(struct mg_detect *d, const void *buf, size_t len);
struct mg_detect *mg_detect_free(struct mg_detect *d);
/* A detector lent from the process's pool (a new one when the pool is
 * empty), or NULL with a reason as for mg_detect_new. Give it back with
 * mg_detect_give once the caller is done; it may then serve another
 * thread. mg_detect_give(NULL) does nothing; beyond the pool's size
 * the detector is freed. */
struct mg_detect *mg_detect_take(const char **why);
void mg_detect_give(struct mg_detect *d);

#endif
