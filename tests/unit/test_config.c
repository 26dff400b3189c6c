/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * NAME
 *	test_config 1
 * SUMMARY
 *	unit tests of the configuration file (config.h)
 */
#include <string.h>
#include <unistd.h>

#include <glib.h>
#include <glib/gstdio.h>

#include <mugaika/config.h>

static char *dir;

static char *write_conf(const char *name, const char *text)
{
    char *path = g_build_filename(dir, name, NULL);

    g_assert_true(g_file_set_contents(path, text, -1, NULL));
    return path;
}

static void test_good(void)
{
    char *p = write_conf("good.conf", "# comment\n[mugaika]\nrules = /etc/mugaika/rules\n"
                                      "clamav-db=/var/lib/clamav\nlang = en\n"
                                      "retention-days = 30\naudit = -\n");
    struct mg_config c;
    GError *e = NULL;

    g_assert_true(mg_config_load(p, &c, &e));
    g_assert_no_error(e);
    g_assert_cmpstr(c.file, ==, p);
    g_assert_cmpstr(c.rules_dir, ==, "/etc/mugaika/rules");
    g_assert_cmpstr(c.clamav_db, ==, "/var/lib/clamav");
    g_assert_cmpstr(c.lang, ==, "en");
    g_assert_cmpstr(c.audit, ==, "-");
    g_assert_null(c.quarantine_dir);
    g_assert_cmpuint(c.retention_days, ==, 30);
    mg_config_clear(&c);
    g_free(p);
}

static void test_errors(void)
{
    char *p = write_conf("bad.conf", "[mugaika]\nlang = fr\n\nbogus = 1\nretention-days = soon\n"
                                     "[other]\nx = 1\n");
    struct mg_config c;
    GError *e = NULL;
    char *want;

    g_assert_false(mg_config_load(p, &c, &e));
    g_assert_error(e, MG_CONFIG_ERROR, 0);
    want = g_strdup_printf("%s:2: lang: 'fr' is neither ja nor en", p);
    g_assert_nonnull(strstr(e->message, want));
    g_free(want);
    want = g_strdup_printf("%s:4: bogus: unknown key", p);
    g_assert_nonnull(strstr(e->message, want));
    g_free(want);
    want = g_strdup_printf("%s:5: retention-days: 'soon' is not a number of days", p);
    g_assert_nonnull(strstr(e->message, want));
    g_free(want);
    want = g_strdup_printf("%s:6: unknown group", p);
    g_assert_nonnull(strstr(e->message, want));
    g_free(want);
    g_assert_null(c.file);
    g_clear_error(&e);
    g_free(p);

    p = write_conf("syntax.conf", "[mugaika]\nthis is not a key\n");
    g_assert_false(mg_config_load(p, &c, &e));
    g_assert_nonnull(strstr(e->message, "syntax.conf"));
    g_clear_error(&e);
    g_free(p);

    /* a file named on the command line must exist */
    p = g_build_filename(dir, "missing.conf", NULL);
    g_assert_false(mg_config_load(p, &c, &e));
    g_assert_nonnull(strstr(e->message, "missing.conf"));
    g_clear_error(&e);
    g_free(p);
}

int main(int argc, char **argv)
{
    int rc;

    g_test_init(&argc, &argv, NULL);
    dir = g_dir_make_tmp("mugaika-test-config-XXXXXX", NULL);
    g_assert_nonnull(dir);
    g_test_add_func("/config/good", test_good);
    g_test_add_func("/config/errors", test_errors);
    rc = g_test_run();
    char *rm[] = {"rm", "-rf", dir, NULL};
    g_spawn_sync(NULL, rm, NULL, G_SPAWN_SEARCH_PATH, NULL, NULL, NULL, NULL, NULL, NULL);
    g_free(dir);
    return rc;
}
