/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * NAME
 *	fuzz_html 1
 * SUMMARY
 *	libFuzzer target: HTML to text (html.h)
 * SYNOPSIS
 *	fuzz_html [libFuzzer options] [corpus-dir...]
 *	fuzz_html corpus-dir|file...	(replay build: replay_main.c)
 * DESCRIPTION
 *	Byte [0] holds the options: bit 0 lang "en" (else "ja"), bit 1
 *	plain URLs, bit 2 a small output cap (300 bytes), bits 3-7 seed
 *	the chunk sizes (1 to 16 bytes, now and then up to 700). The rest
 *	is the document, fed as is (it need not be UTF-8: the converter
 *	must cope).
 *
 *	Checks: the text is valid UTF-8 without NUL or other C0 control
 *	but LF and TAB, without blank before a LF or three LFs in a row,
 *	and ends with a LF unless empty; it fits the output cap; the
 *	flags hold only MG_HTML_* bits; feeding in chunks gives the same
 *	text and flags as one feed (unless a run timed out); a second
 *	mg_html_finish adds nothing. mg_html_meta_charset returns NULL or
 *	a name, and mg_html_to_text obeys the same text rules.
 *
 *	Any violation aborts. Seeds: testdata/fuzz/html/.
 */
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include <glib.h>

#include <mugaika/html.h>

#include "fuzz.h"

#define FLAGS_ALL (MG_HTML_TRUNCATED | MG_HTML_TIMEOUT | MG_HTML_URLS_DROPPED | MG_HTML_ACTIVE)

static size_t next_chunk(uint32_t *s)
{
    uint32_t x = *s;

    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    *s = x;
    return (x & 15) == 0 ? 1 + (x >> 8) % 700 : 1 + (x >> 4) % 16;
}

static void check_text(const GString *s, size_t cap)
{
    FUZZ_CHECK(s->len <= cap);
    FUZZ_CHECK(g_utf8_validate(s->str, (gssize)s->len, NULL));
    for (gsize i = 0; i < s->len; i++) {
        unsigned char c = (unsigned char)s->str[i];
        FUZZ_CHECK(c >= 0x20 || c == '\n' || c == '\t');
        if (c == '\n' && i > 0)
            FUZZ_CHECK(s->str[i - 1] != ' ' && s->str[i - 1] != '\t');
    }
    FUZZ_CHECK(strstr(s->str, "\n\n\n") == NULL);
    FUZZ_CHECK(s->len == 0 || s->str[s->len - 1] == '\n');
}

static unsigned run(const char *buf, size_t len, const struct mg_html_opts *o, uint32_t seed,
                    GString *out)
{
    struct mg_html *h = mg_html_new(o);
    unsigned flags;

    if (seed == 0) {
        mg_html_feed(h, buf, len);
    } else {
        for (size_t off = 0; off < len;) {
            size_t n = next_chunk(&seed);
            if (n > len - off)
                n = len - off;
            mg_html_feed(h, buf + off, n);
            off += n;
        }
    }
    flags = mg_html_finish(h, out);
    size_t before = out->len;
    FUZZ_CHECK(mg_html_finish(h, out) == flags);
    FUZZ_CHECK(out->len == before);
    FUZZ_CHECK(mg_html_free(h) == NULL);
    FUZZ_CHECK((flags & ~(unsigned)FLAGS_ALL) == 0);
    return flags;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct mg_html_opts o;

    if (size < 1)
        return 0;
    mg_html_opts_default(&o);
    o.lang = (data[0] & 1) ? "en" : "ja";
    o.defang_urls = (data[0] & 2) == 0;
    if (data[0] & 4)
        o.max_output = 300;
    uint32_t seed = 0x9e3779b9u ^ (uint32_t)(data[0] >> 3);
    size_t len = size - 1;
    /* exact-size copy: a read past len is caught by ASan */
    char *buf = g_malloc(len > 0 ? len : 1);
    memcpy(buf, data + 1, len);

    GString *whole = g_string_new(NULL), *parts = g_string_new(NULL);
    unsigned f1 = run(buf, len, &o, 0, whole);
    unsigned f2 = run(buf, len, &o, seed, parts);
    check_text(whole, o.max_output);
    check_text(parts, o.max_output);
    if (((f1 | f2) & MG_HTML_TIMEOUT) == 0) {
        FUZZ_CHECK(f1 == f2);
        FUZZ_CHECK(strcmp(whole->str, parts->str) == 0);
    }

    const char *cs = mg_html_meta_charset(buf, len);
    FUZZ_CHECK(cs == NULL || cs[0] != '\0');
    g_string_truncate(whole, 0);
    unsigned f3 = mg_html_to_text(buf, len, NULL, &o, whole);
    FUZZ_CHECK((f3 & ~(unsigned)FLAGS_ALL) == 0);
    check_text(whole, o.max_output);

    g_string_free(whole, TRUE);
    g_string_free(parts, TRUE);
    g_free(buf);
    return 0;
}
