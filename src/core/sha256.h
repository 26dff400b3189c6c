/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * NAME
 *	sha256 3h
 * SUMMARY
 *	libmugaika internal: SHA-256 with nettle
 * DESCRIPTION
 *	The shape of GLib's GChecksum, over nettle's SHA-256, which uses
 *	the CPU's SHA extensions where they exist: about six times the
 *	speed of GChecksum here, and every byte of every message is hashed
 *	twice (each part, and the original for the quarantine).
 *	mg_sha256_hex finishes the hash; no update may follow it.
 */
#ifndef MUGAIKA_CORE_SHA256_H
#define MUGAIKA_CORE_SHA256_H

#include <stddef.h>

struct mg_sha256;
struct mg_sha256 *mg_sha256_new(void);
void mg_sha256_update(struct mg_sha256 *h, const void *buf, size_t len);
void mg_sha256_update_str(struct mg_sha256 *h, const char *s);
/* 64 lower-case hex digits, owned by h. */
const char *mg_sha256_hex(struct mg_sha256 *h);
void mg_sha256_free(struct mg_sha256 *h);

#endif
