/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * NAME
 *	fuzz_hdr 1
 * SUMMARY
 *	libFuzzer target: header field decoding (hdr.h)
 * SYNOPSIS
 *	fuzz_hdr [libFuzzer options] [corpus-dir...]
 *	fuzz_hdr corpus-dir|file...	(replay build: replay_main.c)
 * DESCRIPTION
 *	The first byte of an input picks a field name from names[] for
 *	mg_hdr_decode; the rest is a raw field value (as found after the
 *	colon, folding included), passed in a buffer of exactly its size
 *	(no NUL after it). The value goes through mg_hdr_decode_text,
 *	mg_hdr_decode_addresses, mg_hdr_parse_params and mg_hdr_decode.
 *
 *	Checks: every decoded result is non-NULL valid UTF-8; defect
 *	masks hold only MG_HDR_DEF_* bits; a second call gives the same
 *	result; the parameter list has a lower-case UTF-8 value, lower-case
 *	non-empty unique UTF-8 names, UTF-8 name and filename values
 *	(other values keep their raw bytes, see hdr.h), and
 *	mg_hdr_params_get finds each of them. Any violation aborts.
 *
 *	Seeds: testdata/fuzz/hdr/ (first byte: see names[]).
 */
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include <glib.h>

#include <mugaika/hdr.h>

#include "fuzz.h"

#define DEF_ALL                                                                                    \
    (MG_HDR_DEF_ENCWORD | MG_HDR_DEF_CHARSET | MG_HDR_DEF_RAW8BIT | MG_HDR_DEF_PARAM |             \
     MG_HDR_DEF_RFC2231 | MG_HDR_DEF_DUPPARAM | MG_HDR_DEF_INVALID)

/* 16 names; the first byte's low 4 bits choose, so the characters
 * '0'..'?' (0x30-0x3f) pick them in order ('0' Subject, '1' From, ...). */
static const char *const names[16] = {
    "Subject",  "From",       "To",          "Cc",           "Content-Type", "Content-Disposition",
    "Reply-To", "X-Custom",   "Comments",    "SUBJECT",      "bcc",          "Sender",
    "Received", "Message-ID", "Resent-From", "content-type",
};

static bool has_upper(const char *s)
{
    for (; *s; s++) {
        if (*s >= 'A' && *s <= 'Z')
            return true;
    }
    return false;
}

static void check_utf8(const char *s)
{
    FUZZ_CHECK(s != NULL);
    FUZZ_CHECK(g_utf8_validate(s, -1, NULL));
}

typedef char *(*decode_fn)(const char *raw, size_t len, unsigned *defects);

/* Runs fn twice; both results must agree. */
static void check_decoder(decode_fn fn, const char *raw, size_t len)
{
    unsigned d1 = 0, d2 = 0;
    char *a = fn(raw, len, &d1);
    char *b = fn(raw, len, &d2);

    check_utf8(a);
    FUZZ_CHECK((d1 & ~(unsigned)DEF_ALL) == 0);
    FUZZ_CHECK(strcmp(a, b) == 0 && d1 == d2);
    g_free(a);
    g_free(b);
}

static void check_params(const char *raw, size_t len)
{
    struct mg_hdr_params pp;
    unsigned d = 0;

    memset(&pp, 0xa5, sizeof(pp)); /* must be filled in whatever happens */
    (void)mg_hdr_parse_params(raw, len, &pp, &d);
    FUZZ_CHECK((d & ~(unsigned)DEF_ALL) == 0);
    check_utf8(pp.value);
    FUZZ_CHECK(!has_upper(pp.value));
    FUZZ_CHECK(pp.params != NULL);
    for (guint i = 0; i < pp.params->len; i++) {
        const struct mg_hdr_param *a = &g_array_index(pp.params, struct mg_hdr_param, i);
        check_utf8(a->name);
        FUZZ_CHECK(a->value != NULL);
        /* hdr.h: other values keep their raw bytes (a boundary must) */
        if (strcmp(a->name, "name") == 0 || strcmp(a->name, "filename") == 0)
            check_utf8(a->value);
        FUZZ_CHECK(a->name[0] != '\0' && !has_upper(a->name));
        for (guint j = 0; j < i; j++)
            FUZZ_CHECK(strcmp(a->name, g_array_index(pp.params, struct mg_hdr_param, j).name));
        FUZZ_CHECK(mg_hdr_params_get(&pp, a->name) == a->value);
    }
    mg_hdr_params_fini(&pp);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    unsigned d = 0;

    if (size < 1)
        return 0;
    const char *name = names[data[0] & 15];
    size_t len = size - 1;
    /* exact-size copy: a read past len is caught by ASan */
    char *raw = g_malloc(len > 0 ? len : 1);
    memcpy(raw, data + 1, len);

    check_decoder(mg_hdr_decode_text, raw, len);
    check_decoder(mg_hdr_decode_addresses, raw, len);
    check_params(raw, len);
    char *v = mg_hdr_decode(name, raw, len, &d);
    check_utf8(v);
    FUZZ_CHECK((d & ~(unsigned)DEF_ALL) == 0);
    g_free(v);
    g_free(raw);
    return 0;
}
