/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * NAME
 *	sha256 3
 * SUMMARY
 *	SHA-256 with nettle
 * SYNOPSIS
 *	#include "core/sha256.h"
 * DESCRIPTION
 *	See sha256.h.
 */
#include <string.h>

#include <glib.h>
#include <nettle/sha2.h>

#include "core/sha256.h"

struct mg_sha256 {
    struct sha256_ctx ctx;
    char hex[2 * SHA256_DIGEST_SIZE + 1];
    int done;
};

struct mg_sha256 *mg_sha256_new(void)
{
    struct mg_sha256 *h = g_new0(struct mg_sha256, 1);

    sha256_init(&h->ctx);
    return h;
}

void mg_sha256_update(struct mg_sha256 *h, const void *buf, size_t len)
{
    g_return_if_fail(!h->done);
    if (len > 0)
        sha256_update(&h->ctx, len, buf);
}

void mg_sha256_update_str(struct mg_sha256 *h, const char *s)
{
    mg_sha256_update(h, s, strlen(s));
}

const char *mg_sha256_hex(struct mg_sha256 *h)
{
    static const char digits[] = "0123456789abcdef";
    uint8_t d[SHA256_DIGEST_SIZE];

    if (!h->done) {
        sha256_digest(&h->ctx, sizeof d, d);
        for (size_t i = 0; i < sizeof d; i++) {
            h->hex[2 * i] = digits[d[i] >> 4];
            h->hex[2 * i + 1] = digits[d[i] & 15];
        }
        h->hex[sizeof h->hex - 1] = '\0';
        h->done = 1;
    }
    return h->hex;
}

void mg_sha256_free(struct mg_sha256 *h)
{
    g_free(h);
}
