/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * NAME
 *	test_dec 1
 * SUMMARY
 *	unit tests of the streaming transfer decoders (mime_dec.c)
 * DESCRIPTION
 *	A case table: encoded input, encoding, expected decoded bytes and
 *	expected defects. Each case runs whole and split at every offset
 *	(the result must not depend on the split).
 */
#include <string.h>

#include <glib.h>

#include "mime/mime_int.h"

struct dec_case {
    const char *name;
    enum mg_mime_cte cte;
    const char *in;
    const char *out;
    size_t out_len;   /* 0: strlen(out) */
    uint64_t defects; /* all defects expected over the run */
};

#define D(x) ((uint64_t)1 << MG_MIME_DEFECT_##x)

static const struct dec_case cases[] = {
    {"b64/plain", MG_MIME_CTE_BASE64, "aGVsbG8gd29ybGQ=", "hello world", 0, 0},
    {"b64/crlf-lines", MG_MIME_CTE_BASE64, "aGVs\r\nbG8g\r\nd29y\r\nbGQ=\r\n", "hello world", 0, 0},
    {"b64/invalid-chars-ignored", MG_MIME_CTE_BASE64, "aGVs!bG8g*d29y\nbGQ=", "hello world", 0,
     D(BASE64_INVALID_CHAR)},
    {"b64/missing-padding", MG_MIME_CTE_BASE64, "aGVsbG8gd29ybGQ", "hello world", 0,
     D(BASE64_PADDING)},
    {"b64/missing-one-pad", MG_MIME_CTE_BASE64, "aGk", "hi", 0, D(BASE64_PADDING)},
    {"b64/data-after-padding-kept", MG_MIME_CTE_BASE64, "aGk=aGk=", "hihi", 0, D(BASE64_AFTER_END)},
    {"b64/lone-sextet", MG_MIME_CTE_BASE64, "aGk=a", "hi", 0,
     D(BASE64_AFTER_END) | D(BASE64_PADDING)},
    {"b64/blanks", MG_MIME_CTE_BASE64, " aG k= \t", "hi", 0, 0},
    {"b64/binary", MG_MIME_CTE_BASE64, "AP8A/w==", "\x00\xff\x00\xff", 4, 0},
    {"qp/plain", MG_MIME_CTE_QP, "caf=C3=A9", "caf\xc3\xa9", 0, 0},
    {"qp/lower-hex", MG_MIME_CTE_QP, "caf=c3=a9", "caf\xc3\xa9", 0, 0},
    {"qp/soft-break-lf", MG_MIME_CTE_QP, "soft=\nbreak", "softbreak", 0, 0},
    {"qp/soft-break-crlf", MG_MIME_CTE_QP, "soft=\r\nbreak\r\n", "softbreak\r\n", 0, 0},
    {"qp/soft-break-cr", MG_MIME_CTE_QP, "soft=\rbreak", "softbreak", 0, 0},
    {"qp/soft-break-blanks", MG_MIME_CTE_QP, "soft= \t\nbreak", "softbreak", 0, 0},
    {"qp/invalid-escape-literal", MG_MIME_CTE_QP, "a=ZZb", "a=ZZb", 0, D(QP_INVALID_ESCAPE)},
    {"qp/half-escape-literal", MG_MIME_CTE_QP, "a=4xb", "a=4xb", 0, D(QP_INVALID_ESCAPE)},
    {"qp/equals-then-escape", MG_MIME_CTE_QP, "==41", "=A", 0, D(QP_INVALID_ESCAPE)},
    /* the line end after a final "=" belonged to the delimiter */
    {"qp/trailing-equals", MG_MIME_CTE_QP, "end=", "end", 0, 0},
    {"qp/trailing-equals-blank", MG_MIME_CTE_QP, "end= ", "end", 0, 0},
    {"qp/trailing-half", MG_MIME_CTE_QP, "end=4", "end=4", 0, D(QP_INVALID_ESCAPE)},
    {"qp/blanks-not-break", MG_MIME_CTE_QP, "a= b", "a= b", 0, D(QP_INVALID_ESCAPE)},
    /* text outside a block is not decoded, and is marked */
    {"uu/block", MG_MIME_CTE_UUENCODE, "junk\nbegin 644 x\n+:&5L;&\\@=V]R;&0*\n`\nend\n",
     "hello world", 0, D(UU_BAD_LINE)},
    {"uu/two-blocks", MG_MIME_CTE_UUENCODE,
     "begin 644 a\n#86)C\n`\nend\n\nbegin 644 b\n#86)C\n`\nend\n", "abcabc", 0, 0},
    {"uu/crlf", MG_MIME_CTE_UUENCODE, "begin 600 x\r\n#:&D*\r\n`\r\nend\r\n", "hi\n", 0, 0},
    {"uu/no-end", MG_MIME_CTE_UUENCODE, "begin 644 x\n#:&D*\n", "hi\n", 0, D(UU_TRUNCATED)},
    /* trailing blanks stripped in transit: missing characters are zero */
    {"uu/short-line", MG_MIME_CTE_UUENCODE, "begin 644 x\n&:&D\nend\n", "hi\0\0\0\0", 6, 0},
    {"uu/trailing-blanks-are-data", MG_MIME_CTE_UUENCODE, "begin 644 x\n$04%! (\nend\n", "AAA\0", 4,
     0},
    {"uu/out-of-range-line", MG_MIME_CTE_UUENCODE, "begin 644 x\nnot uu\n#:&D*\nend\n", "hi\n", 0,
     D(UU_BAD_LINE)},
    {"7bit/copy", MG_MIME_CTE_7BIT, "as is\r\n=41", "as is\r\n=41", 0, 0},
    {"unknown/copy", MG_MIME_CTE_UNKNOWN, "raw", "raw", 0, 0},
};

static GString *decode_split(const struct dec_case *c, size_t split, uint64_t *defects)
{
    struct mg_dec d;
    GString *out = g_string_new(NULL);
    size_t len = strlen(c->in);
    char buf[4096];
    size_t parts[2] = {split, len - split};
    const char *at = c->in;

    *defects = 0;
    mg_dec_init(&d, c->cte);
    for (int k = 0; k < 2; k++) {
        size_t w = mg_dec_step(&d, at, parts[k], buf);
        g_assert_cmpuint(w, <=, parts[k] + MG_DEC_SLACK);
        g_string_append_len(out, buf, (gssize)w);
        *defects |= d.defects;
        at += parts[k];
    }
    g_string_append_len(out, buf, (gssize)mg_dec_flush(&d, buf));
    *defects |= d.defects;
    return out;
}

static void run_case(gconstpointer data)
{
    const struct dec_case *c = data;
    size_t len = strlen(c->in);
    size_t out_len = c->out_len ? c->out_len : strlen(c->out);

    for (size_t split = 0; split <= len; split++) {
        uint64_t defects;
        GString *out = decode_split(c, split, &defects);
        if (out->len != out_len || memcmp(out->str, c->out, out_len) != 0)
            g_error("%s split %zu: got %zu bytes '%s'", c->name, split, out->len, out->str);
        if (defects != c->defects)
            g_error("%s split %zu: defects %#llx, expected %#llx", c->name, split,
                    (unsigned long long)defects, (unsigned long long)c->defects);
        g_string_free(out, TRUE);
    }
}

/* Long base64 bodies (the SIMD path) against GLib's decoder, with
 * and without line breaks, at random split points. */
static void test_b64_random(void)
{
    GRand *rng = g_rand_new_with_seed(1122);

    for (int round = 0; round < 200; round++) {
        size_t n = (size_t)g_rand_int_range(rng, 0, 5000);
        guchar *raw = g_malloc(n + 1);
        for (size_t i = 0; i < n; i++)
            raw[i] = (guchar)g_rand_int_range(rng, 0, 256);
        char *enc = g_base64_encode(raw, n);
        GString *body = g_string_new(NULL);
        size_t width = round % 3 == 0 ? 0 : round % 3 == 1 ? 76 : 64;
        for (size_t i = 0, L = strlen(enc); i < L; i++) {
            if (width && i > 0 && i % width == 0)
                g_string_append(body, round % 2 ? "\r\n" : "\n");
            g_string_append_c(body, enc[i]);
        }
        struct mg_dec d;
        char *out = g_malloc(body->len + MG_DEC_SLACK);
        size_t w = 0, at = 0;
        mg_dec_init(&d, MG_MIME_CTE_BASE64);
        while (at < body->len) {
            size_t r = (size_t)g_rand_int_range(rng, 1, 700); /* MIN evaluates twice */
            size_t k = MIN(r, body->len - at);
            w += mg_dec_step(&d, body->str + at, k, out + w);
            g_assert_cmpuint(d.defects, ==, 0);
            at += k;
        }
        w += mg_dec_flush(&d, out + w);
        g_assert_cmpuint(d.defects, ==, 0);
        g_assert_cmpuint(w, ==, n);
        g_assert_true(memcmp(out, raw, n) == 0);
        g_free(out);
        g_string_free(body, TRUE);
        g_free(enc);
        g_free(raw);
    }
    g_rand_free(rng);
}

static void test_uu_begin(void)
{
    const char *name;
    size_t nl;

    g_assert_true(mg_uu_is_begin("begin 644 a b.txt", 17, &name, &nl));
    g_assert_cmpuint(nl, ==, 7);
    g_assert_true(memcmp(name, "a b.txt", 7) == 0);
    g_assert_true(mg_uu_is_begin("begin 0755 x\r", 13, &name, &nl));
    g_assert_cmpuint(nl, ==, 1);
    g_assert_false(mg_uu_is_begin("begin 64 x", 10, &name, &nl));
    g_assert_false(mg_uu_is_begin("begin 648 x", 11, &name, &nl));
    g_assert_false(mg_uu_is_begin("beginning 644 x", 15, &name, &nl));
    g_assert_false(mg_uu_is_begin("begin 644 ", 10, &name, &nl));
    g_assert_true(mg_uu_is_end("end", 3));
    g_assert_true(mg_uu_is_end("end \r", 5));
    g_assert_false(mg_uu_is_end("ending", 6));
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
        char *path = g_strconcat("/dec/", cases[i].name, NULL);
        g_test_add_data_func(path, &cases[i], run_case);
        g_free(path);
    }
    g_test_add_func("/dec/uu-begin-end", test_uu_begin);
    g_test_add_func("/dec/b64-random-vs-glib", test_b64_random);
    return g_test_run();
}
