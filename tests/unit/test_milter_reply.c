/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Unit test: src/milter/reply.c (the rebuilt message cut for the MTA). */
#include <string.h>

#include <glib.h>

#include "milter/milter.h"

static GPtrArray *split(const char *s, bool *ok)
{
    GPtrArray *f = g_ptr_array_new_with_free_func(mg_field_free);

    *ok = mg_split_fields(s, strlen(s), f);
    return f;
}

static void test_split(void)
{
    bool ok;
    GPtrArray *f = split("From: a@example.org\n"
                         "Subject: =?UTF-8?B?5pel5pys?=\n =?UTF-8?B?6Kqe?=\n"
                         "X-Mugaika-Result:  two spaces\r\n"
                         "Empty:\n"
                         "\n"
                         "Body: not a field\n",
                         &ok);
    struct mg_field *x;

    g_assert_true(ok);
    g_assert_cmpuint(f->len, ==, 4);
    x = g_ptr_array_index(f, 0);
    g_assert_cmpstr(x->name, ==, "From");
    g_assert_cmpstr(x->value, ==, " a@example.org");
    x = g_ptr_array_index(f, 1);
    g_assert_cmpstr(x->name, ==, "Subject");
    g_assert_cmpstr(x->value, ==, " =?UTF-8?B?5pel5pys?=\n =?UTF-8?B?6Kqe?=");
    x = g_ptr_array_index(f, 2);
    g_assert_cmpstr(x->value, ==, "  two spaces");
    x = g_ptr_array_index(f, 3);
    g_assert_cmpstr(x->name, ==, "Empty");
    g_assert_cmpstr(x->value, ==, "");
    g_ptr_array_free(f, TRUE);
}

static void test_split_bad(void)
{
    const char *bad[] = {
        " continuation first\n", "no colon here\n", ": empty name\n", "Sp ace: x\n", "Name\n",
    };

    for (size_t i = 0; i < G_N_ELEMENTS(bad); i++) {
        bool ok;
        GPtrArray *f = split(bad[i], &ok);
        g_assert_false(ok);
        g_ptr_array_free(f, TRUE);
    }
}

static void test_crlf(void)
{
    char out[64];
    bool cr = false;
    size_t n;

    n = mg_crlf("a\nb\r\nc\n", 7, out, &cr);
    g_assert_cmpmem(out, n, "a\r\nb\r\nc\r\n", 9);
    /* a CR at the end of one piece and its LF at the start of the next */
    cr = false;
    n = mg_crlf("x\r", 2, out, &cr);
    g_assert_true(cr);
    n += mg_crlf("\ny\n", 3, out + n, &cr);
    g_assert_cmpmem(out, n, "x\r\ny\r\n", 6);
    /* bytes are never lost or changed otherwise */
    cr = false;
    n = mg_crlf("\r\r\0z", 4, out, &cr);
    g_assert_cmpmem(out, n, "\r\r\0z", 4);
}

static void test_escape(void)
{
    GString *g = g_string_new(NULL);

    mg_log_escape(g, "a\"b\\c\nd\xe6\x97\xa5", 100);
    g_assert_cmpstr(g->str, ==, "a\\x22b\\x5cc\\x0ad\\xe6\\x97\\xa5");
    g_string_truncate(g, 0);
    mg_log_escape(g, "abcdef", 3);
    g_assert_cmpstr(g->str, ==, "abc...");
    g_string_truncate(g, 0);
    mg_log_escape(g, NULL, 3);
    g_assert_cmpstr(g->str, ==, "");
    g_string_free(g, TRUE);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/milter/split", test_split);
    g_test_add_func("/milter/split-bad", test_split_bad);
    g_test_add_func("/milter/crlf", test_crlf);
    g_test_add_func("/milter/escape", test_escape);
    return g_test_run();
}
