/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * NAME
 *	test_gaps 1
 * SUMMARY
 *	the library gaps that justify hand-written code, kept under test
 * DESCRIPTION
 *	docs/architecture.md says glibc iconv and GMime fail on ISO-2022-JP
 *	with the NEC row 13 characters Outlook emits (CP50221), which is why
 *	src/charset and src/mime/mime_hdr.c decode them by hand. Each case
 *	checks both halves: the library still fails, and mugaika does not.
 *	If a library update fixes its half, this test fails, and the
 *	hand-written code should be reconsidered in favour of the library.
 */
#include <errno.h>
#include <iconv.h>
#include <string.h>

#include <glib.h>
#include <gmime/gmime.h>

#include <mugaika/charset.h>
#include <mugaika/hdr.h>

/* "①" as Outlook writes it: JIS X 0208 row 13 (NEC extension) */
static const char jis_circled_one[] = "\x1b$B-!\x1b(B";

static void test_iconv_iso2022jp(void)
{
    iconv_t cd = iconv_open("UTF-8", "ISO-2022-JP");
    char out[64], *ip = (char *)jis_circled_one, *op = out;
    size_t il = strlen(jis_circled_one), ol = sizeof out;
    GString *ours = g_string_new(NULL);

    g_assert_true(cd != (iconv_t)-1);
    g_assert_cmpint((int)iconv(cd, &ip, &il, &op, &ol), ==, -1); /* glibc: EILSEQ */
    g_assert_cmpint(errno, ==, EILSEQ);
    iconv_close(cd);
    g_assert_cmpuint(
        mg_charset_to_utf8("ISO-2022-JP", jis_circled_one, strlen(jis_circled_one), ours), ==, 0);
    g_assert_cmpstr(ours->str, ==, "\xe2\x91\xa0");
    g_string_free(ours, TRUE);
}

static void test_gmime_encoded_word(void)
{
    const char *word = "=?ISO-2022-JP?B?GyRCLSEbKEI=?="; /* base64 of jis_circled_one */
    char *theirs, *ours;

    g_mime_init();
    theirs = g_mime_utils_header_decode_text(NULL, word);
    g_assert_cmpstr(theirs, !=, "\xe2\x91\xa0");
    ours = mg_hdr_decode_text(word, strlen(word), NULL);
    g_assert_cmpstr(ours, ==, "\xe2\x91\xa0");
    g_free(theirs);
    g_free(ours);
    g_mime_shutdown();
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/gaps/glibc-iconv-iso2022jp-nec-row13", test_iconv_iso2022jp);
    g_test_add_func("/gaps/gmime-encoded-word-nec-row13", test_gmime_encoded_word);
    return g_test_run();
}
