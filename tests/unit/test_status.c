/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Unit test: status names. */
#include <glib.h>
#include <mugaika/status.h>

static void test_names(void)
{
    g_assert_cmpstr(mg_status_str(MG_OK), ==, "ok");
    g_assert_cmpstr(mg_status_str(MG_ERR_CALLBACK), ==, "callback returned an error");
    g_assert_cmpstr(mg_status_str((enum mg_status)999), ==, "unknown status");
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/status/names", test_names);
    return g_test_run();
}
