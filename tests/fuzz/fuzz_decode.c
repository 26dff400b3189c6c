/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * NAME
 *	fuzz_decode 1
 * SUMMARY
 *	libFuzzer target: the decode chain (transfer decoders, charsets)
 * SYNOPSIS
 *	fuzz_decode [libFuzzer options] [corpus-dir...]
 *	fuzz_decode corpus-dir|file...	(replay build: replay_main.c)
 * DESCRIPTION
 *	Byte [0] picks the mode, byte [1] seeds the chunk sizes (1 to 8
 *	bytes, now and then up to 300), the rest is the data.
 *
 *	[0] < 0x80: transfer decoder (mime_int.h), cte = [0] % 7. The data
 *	is decoded in one step and again in chunks; output, defect set and
 *	the offset of each defect's first occurrence must agree. Also:
 *	identity encodings copy, base64 and quoted-printable never grow,
 *	every step stays within the output room mime_int.h documents, the
 *	one-line uuencode helpers stay within their buffers.
 *
 *	[0] >= 0x80: charset conversion, label labels[[0] & 31] (the last
 *	one is taken from the data: up to 24 bytes before a NUL). One-shot
 *	mg_charset_to_utf8 must append valid UTF-8 to what out held; the
 *	streaming converter fed in chunks must give the same bytes and
 *	replacement count, and valid UTF-8 after every feed;
 *	mg_charset_canon must be idempotent; mg_charset_sniff must return
 *	one of its documented names.
 *
 *	Any violation aborts. Seeds: testdata/fuzz/decode/.
 */
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include <glib.h>

#include <mugaika/charset.h>
#include <mugaika/mime.h>

#include "fuzz.h"
#include "mime/mime_int.h"

#define LABEL_FROM_DATA 31
#define LABEL_DATA_MAX  24

static const char *const labels[32] = {
    NULL,         "us-ascii", "utf-8",        " \"UTF-8\" ", "iso-2022-jp",  "ISO-2022-JP-2",
    "shift_jis",  "x-sjis",   "cp932",        "windows-31j", "euc-jp",       "EUC-JP-MS",
    "iso-8859-1", "latin1",   "windows-1252", "iso-8859-15", "koi8-r",       "windows-1251",
    "big5",       "gb2312",   "gbk",          "gb18030",     "euc-kr",       "utf-16",
    "utf-16le",   "utf-32",   "utf-7",        "x-unknown",   "unknown-8bit", "iso-8859-1*en",
    "ISO_8859-7", NULL, /* LABEL_FROM_DATA */
};

/* xorshift32: chunk sizes from the seed byte */
static size_t next_chunk(uint32_t *s)
{
    uint32_t x = *s;

    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    *s = x;
    return 1 + (x & 0x100 ? (x >> 9) % 300 : (x >> 9) % 8);
}

/* ---------------------------------------------------------------- */
/* transfer decoders                                                 */

struct dec_result {
    GString *out;
    uint64_t defects;
    uint64_t first[MG_MIME_DEFECT_COUNT]; /* absolute input offset */
};

static void note_defects(struct dec_result *r, const struct mg_dec *d, uint64_t base, bool flush)
{
    for (unsigned i = 0; i < MG_MIME_DEFECT_COUNT; i++) {
        uint64_t bit = (uint64_t)1 << i;
        if ((d->defects & bit) && !(r->defects & bit)) {
            r->defects |= bit;
            r->first[i] = flush ? base : base + d->defect_at[i];
        }
    }
    FUZZ_CHECK((d->defects >> MG_MIME_DEFECT_COUNT) == 0);
}

/* Decodes data in chunks from seed (0: one piece). */
static void dec_run(enum mg_mime_cte cte, const char *data, size_t len, uint32_t seed,
                    struct dec_result *r)
{
    struct mg_dec d;
    size_t pos = 0;

    memset(r, 0, sizeof(*r));
    r->out = g_string_new(NULL);
    mg_dec_init(&d, cte);
    while (pos < len) {
        size_t n = seed ? next_chunk(&seed) : len;
        if (n > len - pos)
            n = len - pos;
        char *in = g_memdup2(data + pos, n);
        /* the documented room, no more (mime_int.h) */
        size_t room = (cte == MG_MIME_CTE_UUENCODE ? 32 * n : n) + MG_DEC_SLACK;
        char *out = g_malloc(room);
        size_t w = mg_dec_step(&d, in, n, out);
        FUZZ_CHECK(w <= room);
        for (unsigned i = 0; i < MG_MIME_DEFECT_COUNT; i++) {
            if (d.defects & ((uint64_t)1 << i))
                FUZZ_CHECK(d.defect_at[i] < n);
        }
        note_defects(r, &d, pos, false);
        g_string_append_len(r->out, out, (gssize)w);
        g_free(out);
        g_free(in);
        pos += n;
    }
    char *out = g_malloc(MG_DEC_SLACK);
    size_t w = mg_dec_flush(&d, out);
    FUZZ_CHECK(w <= MG_DEC_SLACK);
    note_defects(r, &d, len, true);
    g_string_append_len(r->out, out, (gssize)w);
    g_free(out);
}

static void check_uu_helpers(const char *data, size_t len)
{
    const char *nl = memchr(data, '\n', len);
    size_t n = nl ? (size_t)(nl - data) : len;
    const char *name;
    size_t name_len;
    int bad;

    if (n > MG_UU_LINE_MAX)
        n = MG_UU_LINE_MAX;
    char *line = g_malloc(n > 0 ? n : 1);
    memcpy(line, data, n);
    char *out = g_malloc(63 + MG_DEC_SLACK);
    FUZZ_CHECK(mg_uu_decode_line(line, n, out, &bad) <= 63);
    if (mg_uu_is_begin(line, n, &name, &name_len))
        FUZZ_CHECK(name >= line && name_len > 0 && name + name_len <= line + n);
    (void)mg_uu_is_end(line, n);
    g_free(out);
    g_free(line);
}

static void fuzz_transfer(enum mg_mime_cte cte, const char *data, size_t len, uint32_t seed)
{
    struct dec_result whole, chunked;

    dec_run(cte, data, len, 0, &whole);
    dec_run(cte, data, len, seed, &chunked);
    FUZZ_CHECK(whole.out->len == chunked.out->len);
    FUZZ_CHECK(memcmp(whole.out->str, chunked.out->str, whole.out->len) == 0);
    FUZZ_CHECK(whole.defects == chunked.defects);
    for (unsigned i = 0; i < MG_MIME_DEFECT_COUNT; i++)
        FUZZ_CHECK(whole.first[i] == chunked.first[i]);
    switch (cte) {
    case MG_MIME_CTE_BASE64:
        FUZZ_CHECK(whole.out->len <= len / 4 * 3 + 3);
        break;
    case MG_MIME_CTE_QP:
        FUZZ_CHECK(whole.out->len <= len);
        break;
    case MG_MIME_CTE_UUENCODE:
        check_uu_helpers(data, len);
        break;
    default:
        FUZZ_CHECK(whole.out->len == len && memcmp(whole.out->str, data, len) == 0);
        break;
    }
    g_string_free(whole.out, TRUE);
    g_string_free(chunked.out, TRUE);
}

/* ---------------------------------------------------------------- */
/* charsets                                                          */

static bool sniff_name_ok(const char *s)
{
    static const char *const known[] = {"us-ascii", "utf-8",  "iso-2022-jp",
                                        "cp932",    "euc-jp", "windows-1252"};

    for (size_t i = 0; s != NULL && i < G_N_ELEMENTS(known); i++) {
        if (strcmp(s, known[i]) == 0)
            return true;
    }
    return false;
}

/* Valid UTF-8, U+0000 included (g_utf8_validate stops at a NUL). */
static bool utf8_ok(const char *s, size_t n)
{
    const char *end = s + n;

    while (s < end) {
        const char *nul = memchr(s, '\0', (size_t)(end - s));
        const char *stop = nul ? nul : end;
        if (!g_utf8_validate(s, stop - s, NULL))
            return false;
        s = nul ? nul + 1 : end;
    }
    return true;
}

static size_t count_fffd(const char *s, size_t n)
{
    size_t c = 0;

    for (size_t i = 0; i + 3 <= n; i++) {
        if (memcmp(s + i, "\xef\xbf\xbd", 3) == 0)
            c++;
    }
    return c;
}

static void fuzz_charset(const char *label, const char *data, size_t len, uint32_t seed)
{
    static const char prefix[] = "kept:";
    GString *one = g_string_new(prefix);
    GString *str = g_string_new(NULL);
    const char *canon = mg_charset_canon(label);

    if (canon != NULL) {
        const char *again = mg_charset_canon(canon);
        FUZZ_CHECK(again != NULL && strcmp(again, canon) == 0);
    }
    FUZZ_CHECK(sniff_name_ok(mg_charset_sniff(data, len)));

    size_t repl = mg_charset_to_utf8(label, data, len, one);
    FUZZ_CHECK(strncmp(one->str, prefix, strlen(prefix)) == 0);
    FUZZ_CHECK(utf8_ok(one->str, one->len));
    FUZZ_CHECK(count_fffd(one->str, one->len) >= repl);

    struct mg_charset_conv *c = mg_charset_conv_new(label);
    size_t pos = 0;
    while (pos < len) {
        size_t n = next_chunk(&seed);
        if (n > len - pos)
            n = len - pos;
        char *in = g_memdup2(data + pos, n);
        mg_charset_conv_feed(c, in, n, str);
        g_free(in);
        FUZZ_CHECK(utf8_ok(str->str, str->len));
        pos += n;
    }
    mg_charset_conv_finish(c, str);
    FUZZ_CHECK(mg_charset_conv_replacements(c) == repl);
    const char *name = mg_charset_conv_name(c);
    FUZZ_CHECK(name != NULL);
    const char *name_canon = mg_charset_canon(name);
    FUZZ_CHECK(name_canon != NULL && strcmp(name_canon, name) == 0);
    mg_charset_conv_free(c);

    if (str->len != one->len - strlen(prefix) ||
        memcmp(str->str, one->str + strlen(prefix), str->len) != 0) {
        fprintf(stderr, "label %s: one-shot and chunked conversions differ\n",
                label ? label : "(none)");
        abort();
    }
    g_string_free(one, TRUE);
    g_string_free(str, TRUE);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    uint8_t mode = data[0];
    uint32_t seed = 0x9e3779b9u ^ data[1];
    const char *body = (const char *)data + 2;
    size_t len = size - 2;

    if (mode < 0x80) {
        fuzz_transfer((enum mg_mime_cte)(mode % 7), body, len, seed);
        return 0;
    }
    if ((mode & 31) != LABEL_FROM_DATA) {
        fuzz_charset(labels[mode & 31], body, len, seed);
        return 0;
    }
    size_t n = 0;
    while (n < len && n < LABEL_DATA_MAX && body[n] != '\0')
        n++;
    char *label = g_strndup(body, n);
    if (n < len)
        n++; /* the NUL */
    fuzz_charset(label, body + n, len - n, seed);
    g_free(label);
    return 0;
}
