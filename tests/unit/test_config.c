/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * NAME
 *	test_config 1
 * SUMMARY
 *	unit tests of the configuration file (config.h)
 * SYNOPSIS
 *	test_config [--tap] [-p /config/...]
 * DESCRIPTION
 *	Each case writes a file into a temporary directory and loads it.
 *	/config/good, /config/errors: the first keys (rules, lang, ...),
 *	every error named FILE:LINE: KEY. /config/defaults: every field
 *	after an empty [mugaika] group (and with no file, when
 *	/etc/mugaika/mugaika.conf does not exist). /config/new-keys: a
 *	good value of every key the milter added. /config/bad/...: one
 *	case per bad value (key, value, the reason expected after
 *	"FILE:2: KEY: "). /config/size/...: the SIZE syntax, value to
 *	bytes or an error. /config/socket/...: socket forms accepted
 *	and refused. /config/log-level: every name and
 *	mg_config_log_level_name. /config/sanitize-opts: what
 *	mg_config_sanitize_opts changes and what it leaves.
 *	/config/several-errors: every error of a file, each on its line.
 *	/config/watch: the transfer folder's keys and [watch NAME] pairs.
 */
#include <string.h>
#include <syslog.h>
#include <unistd.h>

#include <glib.h>
#include <glib/gstdio.h>

#include <mugaika/config.h>
#include <mugaika/sanitize.h>

static char *dir;
static unsigned serial;

static char *write_conf(const char *name, const char *text)
{
    char *path = g_build_filename(dir, name, NULL);

    g_assert_true(g_file_set_contents(path, text, -1, NULL));
    return path;
}

/* A file "[mugaika]\nKEY = VALUE\n" with a unique name; caller frees. */
static char *write_one(const char *key, const char *value)
{
    char *name = g_strdup_printf("one-%u.conf", serial++);
    char *text = g_strdup_printf("[mugaika]\n%s = %s\n", key, value);
    char *p = write_conf(name, text);

    g_free(name);
    g_free(text);
    return p;
}

/* Asserts that the file fails with an error line that starts with
 * "PATH:LINE: KEY: " and contains WHY. */
static void assert_error(const char *p, unsigned line, const char *key, const char *why)
{
    struct mg_config c;
    GError *e = NULL;
    char *want, **lines;
    bool found = false;

    g_assert_false(mg_config_load(p, &c, &e));
    g_assert_error(e, MG_CONFIG_ERROR, 0);
    want = g_strdup_printf("%s:%u: %s: ", p, line, key);
    lines = g_strsplit(e->message, "\n", -1);
    for (char **l = lines; *l != NULL; l++)
        if (g_str_has_prefix(*l, want) && strstr(*l + strlen(want), why) != NULL)
            found = true;
    if (!found)
        g_error("expected \"%s...%s\" in \"%s\"", want, why, e->message);
    g_assert_null(c.file);
    g_assert_null(c.socket);
    g_strfreev(lines);
    g_free(want);
    g_error_free(e);
}

static void load_ok(const char *p, struct mg_config *c)
{
    GError *e = NULL;

    if (!mg_config_load(p, c, &e))
        g_error("%s: %s", p, e->message);
    g_assert_no_error(e);
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
    g_assert_null(c.socket);
    g_clear_error(&e);
    g_free(p);
}

static void assert_defaults(const struct mg_config *c)
{
    struct mg_mime_limits l;
    struct mg_sanitize_opts o;

    mg_mime_limits_default(&l);
    mg_sanitize_opts_default(&o);
    g_assert_null(c->rules_dir);
    g_assert_null(c->quarantine_dir);
    g_assert_null(c->clamav_db);
    g_assert_null(c->lang);
    g_assert_null(c->audit);
    g_assert_null(c->spool_dir);
    g_assert_cmpuint(c->retention_days, ==, 90);
    g_assert_cmpstr(c->socket, ==, MG_CONFIG_DEFAULT_SOCKET);
    g_assert_cmpstr(c->socket, ==, "unix:/run/mugaika/milter.sock");
    g_assert_null(c->user);
    g_assert_null(c->group);
    g_assert_cmpint(c->log_level, ==, LOG_INFO);
    g_assert_cmpuint(c->max_message_bytes, ==, 0);
    g_assert_cmpuint(c->spool_memory, ==, 8u << 20);
    g_assert_cmpuint(c->spool_memory, ==, o.spool_memory);
    g_assert_cmpuint(c->html_budget_ms, ==, 2000);
    g_assert_cmpint((int64_t)c->html_budget_ms * 1000, ==, o.html_budget_us);
    g_assert_cmpuint(c->message_timeout, ==, 600);
    g_assert_cmpuint(c->milter_timeout, ==, 600);
    g_assert_cmpuint(c->limits.header_bytes, ==, l.header_bytes);
    g_assert_cmpuint(c->limits.line_bytes, ==, l.line_bytes);
    g_assert_cmpuint(c->limits.boundary_bytes, ==, l.boundary_bytes);
    g_assert_cmpuint(c->limits.depth, ==, l.depth);
    g_assert_cmpuint(c->limits.parts, ==, l.parts);
    g_assert_true(c->limits.uuencode == l.uuencode);
}

static void test_defaults(void)
{
    char *p = write_conf("empty.conf", "# nothing set\n[mugaika]\n");
    struct mg_config c;
    GError *e = NULL;

    load_ok(p, &c);
    g_assert_cmpstr(c.file, ==, p);
    assert_defaults(&c);
    mg_config_clear(&c);
    g_free(p);

    /* a file without any group is fine too */
    p = write_conf("blank.conf", "");
    load_ok(p, &c);
    assert_defaults(&c);
    mg_config_clear(&c);
    g_free(p);

    if (g_file_test(MG_CONFIG_DEFAULT_FILE, G_FILE_TEST_EXISTS)) {
        g_test_message("%s exists: the no-file case is not checked", MG_CONFIG_DEFAULT_FILE);
        return;
    }
    g_assert_true(mg_config_load(NULL, &c, &e));
    g_assert_no_error(e);
    g_assert_null(c.file);
    assert_defaults(&c);
    mg_config_clear(&c);
}

static void test_new_keys(void)
{
    char *p = write_conf("milter.conf", "[mugaika]\n"
                                        "socket = inet:8891@127.0.0.1\n"
                                        "user = mugaika\n"
                                        "group = mail\n"
                                        "log-level = debug\n"
                                        "max-header-bytes = 128K\n"
                                        "max-line-bytes = 1000\n"
                                        "max-depth = 20\n"
                                        "max-parts = 500\n"
                                        "max-message-size = 50M\n"
                                        "spool-memory = 0\n"
                                        "html-budget-ms = 500\n"
                                        "message-timeout = 120\n"
                                        "milter-timeout = 30\n");
    struct mg_config c;

    load_ok(p, &c);
    g_assert_cmpstr(c.socket, ==, "inet:8891@127.0.0.1");
    g_assert_cmpstr(c.user, ==, "mugaika");
    g_assert_cmpstr(c.group, ==, "mail");
    g_assert_cmpint(c.log_level, ==, LOG_DEBUG);
    g_assert_cmpuint(c.limits.header_bytes, ==, 128 * 1024);
    g_assert_cmpuint(c.limits.line_bytes, ==, 1000);
    g_assert_cmpuint(c.limits.depth, ==, 20);
    g_assert_cmpuint(c.limits.parts, ==, 500);
    g_assert_cmpuint(c.max_message_bytes, ==, 50u << 20);
    g_assert_cmpuint(c.spool_memory, ==, 0);
    g_assert_cmpuint(c.html_budget_ms, ==, 500);
    g_assert_cmpuint(c.message_timeout, ==, 120);
    g_assert_cmpuint(c.milter_timeout, ==, 30);
    /* the keys not set keep their defaults */
    g_assert_cmpuint(c.retention_days, ==, 90);
    g_assert_null(c.lang);
    mg_config_clear(&c);
    g_free(p);
}

/* One bad value: the error names FILE:2: KEY and this reason. */
struct bad_case {
    const char *key, *value, *why;
};

static const struct bad_case bad_cases[] = {
    {"socket", "tcp:25@localhost",
     "'tcp:25@localhost' is not unix:/PATH, local:/PATH or "
     "inet:PORT@HOST"},
    {"socket", "unix:run/milter.sock", "the socket path must be absolute"},
    {"user", "mail/x", "'mail/x' is not a user name"},
    {"user", "mu gaika", "'mu gaika' is not a user name"},
    {"user", "", "empty value"},
    {"group", "a/b", "'a/b' is not a group name"},
    {"group", "ma\til", "is not a group name"},
    {"log-level", "verbose", "'verbose' is not one of error, warning, notice, info, debug"},
    {"log-level", "INFO", "'INFO' is not one of error"},
    {"log-level", "6", "'6' is not one of error"},
    {"max-header-bytes", "0", "'0' is out of range (1K-64M bytes)"},
    {"max-header-bytes", "65M", "'65M' is out of range (1K-64M bytes)"},
    {"max-header-bytes", "lots", "'lots' is not a size"},
    {"max-line-bytes", "0", "'0' is out of range (78-1G bytes)"},
    {"max-line-bytes", "2G", "'2G' is out of range (78-1G bytes)"},
    {"max-depth", "0", "'0' is not a nesting depth (1-1000)"},
    {"max-depth", "1001", "'1001' is not a nesting depth (1-1000)"},
    {"max-depth", "-1", "'-1' is not a nesting depth (1-1000)"},
    {"max-parts", "0", "'0' is not a number of parts (1-1000000)"},
    {"max-parts", "99999999999", "is not a number of parts (1-1000000)"},
    {"max-message-size", "-5", "'-5' is not a size"},
    {"max-message-size", "2T", "'2T' is not a size"},
    {"max-message-size", "1025G", "'1025G' is out of range (0-1T bytes)"},
    {"spool-memory", "2G", "'2G' is out of range (0-1G bytes)"},
    {"spool-memory", "8 M", "'8 M' is not a size"},
    {"html-budget-ms", "0", "'0' is not a number of milliseconds (1-600000)"},
    {"html-budget-ms", "600001", "is not a number of milliseconds (1-600000)"},
    {"html-budget-ms", "2s", "'2s' is not a number of milliseconds"},
    {"message-timeout", "0", "'0' is not a number of seconds (1-86400)"},
    {"message-timeout", "10m", "'10m' is not a number of seconds (1-86400)"},
    {"milter-timeout", "0", "'0' is not a number of seconds (1-86400)"},
    {"milter-timeout", "86401", "'86401' is not a number of seconds (1-86400)"},
    {"worker-timeout", "0", "'0' is not a number of seconds (1-3600)"},
    {"worker-cpu-seconds", "3601", "'3601' is not a number of seconds (1-3600)"},
    {"worker-memory", "1M", "'1M' is out of range"},
    {"archive-depth", "21", "'21' is not a nesting depth (1-20)"},
    {"archive-members", "0", "'0' is not a number of files (1-100000)"},
    {"archive-size", "1K", "'1K' is out of range"},
    {"archive-ratio", "1", "'1' is not a ratio (expanded per packed byte) (2-100000)"},
    {"retention-days", "0", "'0' is not a number of days (1-36500)"},
    {"lang", "JA", "'JA' is neither ja nor en"},
    {"rules", "", "empty value"},
};

static void run_bad(const void *data)
{
    const struct bad_case *bc = data;
    char *p = write_one(bc->key, bc->value);

    assert_error(p, 2, bc->key, bc->why);
    g_free(p);
}

/* SIZE syntax, through max-message-size (0-1T) */
struct size_case {
    const char *value;
    bool ok;
    uint64_t bytes;
};

static const struct size_case size_cases[] = {
    {"0", true, 0},
    {"1", true, 1},
    {"1000", true, 1000},
    {"1K", true, 1024},
    {"1k", true, 1024},
    {"3M", true, 3u << 20},
    {"3m", true, 3u << 20},
    {"2G", true, (uint64_t)2 << 30},
    {"1024G", true, (uint64_t)1 << 40},
    {"1099511627776", true, (uint64_t)1 << 40},
    {"007K", true, 7 * 1024},
    {"", false, 0},
    {"K", false, 0},
    {"1KB", false, 0},
    {"1KiB", false, 0},
    {"1.5M", false, 0},
    {"1 K", false, 0},
    {"1 ", false, 0}, /* GKeyFile keeps trailing blanks (and drops leading ones) */
    {"+1", false, 0},
    {"0x10", false, 0},
    {"1T", false, 0},
    {"18446744073709551616", false, 0},
    {"18014398509481984K", false, 0},
    {"1099511627777", false, 0},
};

static void run_size(const void *data)
{
    const struct size_case *sc = data;
    char *p = write_one("max-message-size", sc->value);
    struct mg_config c;
    GError *e = NULL;

    if (sc->ok) {
        load_ok(p, &c);
        g_assert_cmpuint(c.max_message_bytes, ==, sc->bytes);
        mg_config_clear(&c);
    } else {
        g_assert_false(mg_config_load(p, &c, &e));
        g_assert_nonnull(strstr(e->message, ":2: max-message-size: "));
        g_clear_error(&e);
    }
    g_free(p);
}

struct socket_case {
    const char *value;
    const char *why; /* NULL: accepted */
};

static const struct socket_case socket_cases[] = {
    {"unix:/run/mugaika/milter.sock", NULL},
    {"local:/var/spool/postfix/mugaika/milter", NULL},
    {"inet:8891@127.0.0.1", NULL},
    {"inet:1@localhost", NULL},
    {"inet:65535@[::1]", NULL},
    {"unix:", "the socket path must be absolute"},
    {"unix:milter.sock", "the socket path must be absolute"},
    {"local:./milter.sock", "the socket path must be absolute"},
    {"unix:/run/mugaika/", "the socket path names a directory"},
    {"unix:/"
     "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
     "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
     "the socket path is longer than 107 bytes"},
    {"inet:0@127.0.0.1", "the port is not a number from 1 to 65535"},
    {"inet:65536@127.0.0.1", "the port is not a number from 1 to 65535"},
    {"inet:smtp@127.0.0.1", "the port is not a number from 1 to 65535"},
    {"inet:@127.0.0.1", "the port is not a number from 1 to 65535"},
    {"inet:8891", "'inet:8891' is not inet:PORT@HOST"},
    {"inet:8891@", "'inet:8891@' is not inet:PORT@HOST"},
    {"inet:8891@local host", "the host is not a host name or address"},
    {"inet:8891@a@b", "the host is not a host name or address"},
    {"/run/mugaika/milter.sock", "is not unix:/PATH, local:/PATH or inet:PORT@HOST"},
    {"Unix:/run/m.sock", "is not unix:/PATH, local:/PATH or inet:PORT@HOST"},
};

static void run_socket(const void *data)
{
    const struct socket_case *sc = data;
    char *p = write_one("socket", sc->value);
    struct mg_config c;

    if (sc->why == NULL) {
        load_ok(p, &c);
        g_assert_cmpstr(c.socket, ==, sc->value);
        mg_config_clear(&c);
    } else {
        assert_error(p, 2, "socket", sc->why);
    }
    g_free(p);
}

static void test_log_level(void)
{
    static const struct {
        const char *name;
        int level;
    } levels[] = {
        {"error", LOG_ERR}, {"warning", LOG_WARNING}, {"notice", LOG_NOTICE},
        {"info", LOG_INFO}, {"debug", LOG_DEBUG},
    };

    for (size_t i = 0; i < G_N_ELEMENTS(levels); i++) {
        char *p = write_one("log-level", levels[i].name);
        struct mg_config c;

        load_ok(p, &c);
        g_assert_cmpint(c.log_level, ==, levels[i].level);
        g_assert_cmpstr(mg_config_log_level_name(c.log_level), ==, levels[i].name);
        mg_config_clear(&c);
        g_free(p);
    }
    g_assert_cmpstr(mg_config_log_level_name(LOG_CRIT), ==, "?");
    g_assert_cmpstr(mg_config_log_level_name(-1), ==, "?");
    g_assert_cmpstr(mg_config_log_level_name(LOG_DEBUG + 1), ==, "?");
}

static void test_sanitize_opts(void)
{
    char *p = write_conf("opts.conf", "[mugaika]\nlang = en\nspool = /var/tmp/mugaika\n"
                                      "max-header-bytes = 2K\nmax-line-bytes = 998\n"
                                      "max-depth = 7\nmax-parts = 99\nspool-memory = 1M\n"
                                      "html-budget-ms = 250\n");
    struct mg_config c;
    struct mg_sanitize_opts o, d;

    load_ok(p, &c);
    mg_sanitize_opts_default(&o);
    mg_sanitize_opts_default(&d);
    mg_config_sanitize_opts(&c, &o);
    g_assert_cmpstr(o.lang, ==, "en");
    g_assert_true(o.lang == c.lang); /* borrowed */
    g_assert_cmpstr(o.spool_dir, ==, "/var/tmp/mugaika");
    g_assert_cmpuint(o.limits.header_bytes, ==, 2048);
    g_assert_cmpuint(o.limits.line_bytes, ==, 998);
    g_assert_cmpuint(o.limits.depth, ==, 7);
    g_assert_cmpuint(o.limits.parts, ==, 99);
    g_assert_cmpuint(o.spool_memory, ==, 1u << 20);
    g_assert_cmpint(o.html_budget_us, ==, 250000);
    /* what the file has no key for stays as the defaults set it */
    g_assert_cmpuint(o.limits.boundary_bytes, ==, d.limits.boundary_bytes);
    g_assert_true(o.limits.uuencode == d.limits.uuencode);
    g_assert_null(o.rules);
    g_assert_null(o.sender);
    mg_config_clear(&c);
    g_free(p);

    /* lang and spool not set: the defaults stay */
    p = write_conf("opts-empty.conf", "[mugaika]\n");
    load_ok(p, &c);
    mg_sanitize_opts_default(&o);
    mg_config_sanitize_opts(&c, &o);
    g_assert_cmpstr(o.lang, ==, "ja");
    g_assert_null(o.spool_dir);
    g_assert_cmpuint(o.limits.header_bytes, ==, d.limits.header_bytes);
    g_assert_cmpuint(o.spool_memory, ==, d.spool_memory);
    g_assert_cmpint(o.html_budget_us, ==, d.html_budget_us);
    mg_config_clear(&c);
    g_free(p);
}

static void test_several_errors(void)
{
    char *p = write_conf("several.conf", "[mugaika]\n"
                                         "socket = inet:99999@127.0.0.1\n"
                                         "# a comment\n"
                                         "log-level = loud\n"
                                         "max-depth = 0\n"
                                         "user = ok\n"
                                         "spool-memory = 1X\n");

    assert_error(p, 2, "socket", "the port is not a number from 1 to 65535");
    assert_error(p, 4, "log-level", "'loud' is not one of");
    assert_error(p, 5, "max-depth", "'0' is not a nesting depth (1-1000)");
    assert_error(p, 7, "spool-memory", "'1X' is not a size");
    g_free(p);
}

/* The transfer folder: the watch-* keys and [watch NAME] pairs, their
 * defaults, the per-pair quota overriding the [mugaika] one, and every
 * error of a pair named with its line. */
static void test_watch(void)
{
    char *p = write_conf("watch.conf", "[watch lgwan-1]\n"
                                       "in = /srv/in\n"
                                       "out = /srv/out\n"
                                       "mode = 0640\n"
                                       "owner = smbuser\n"
                                       "user-files = 7\n"
                                       "[mugaika]\n"
                                       "watch-state = /var/lib/w\n"
                                       "watch-workers = 4\n"
                                       "watch-queue = 9\n"
                                       "watch-user-files = 100\n"
                                       "watch-user-bytes = 2G\n"
                                       "[watch b]\n"
                                       "in = /a\n"
                                       "out = /b\n");
    struct mg_config c;

    load_ok(p, &c);
    g_assert_cmpstr(c.watch_state, ==, "/var/lib/w");
    g_assert_cmpuint(c.watch_workers, ==, 4);
    g_assert_cmpuint(c.watch_queue, ==, 9);
    g_assert_cmpuint(c.watch_quiet_ms, ==, 2000);
    g_assert_cmpuint(c.watch_scan_ms, ==, 1000);
    g_assert_cmpuint(c.n_watch, ==, 2);
    g_assert_cmpstr(c.watch[0].name, ==, "lgwan-1");
    g_assert_cmpstr(c.watch[0].in, ==, "/srv/in");
    g_assert_cmpstr(c.watch[0].out, ==, "/srv/out");
    g_assert_cmpstr(c.watch[0].owner, ==, "smbuser");
    g_assert_null(c.watch[0].group);
    g_assert_cmpuint(c.watch[0].mode, ==, 0640);
    g_assert_cmpuint(c.watch[0].user_files, ==, 7);                /* its own */
    g_assert_cmpuint(c.watch[0].user_bytes, ==, (guint64)2 << 30); /* [mugaika]'s */
    g_assert_cmpstr(c.watch[1].name, ==, "b");
    g_assert_cmpuint(c.watch[1].mode, ==, 0644);
    g_assert_cmpuint(c.watch[1].user_files, ==, 100);
    mg_config_clear(&c);
    g_assert_cmpuint(c.n_watch, ==, 0);
    g_free(p);

    p = write_conf("watch-empty.conf", "[mugaika]\n");
    load_ok(p, &c);
    g_assert_cmpuint(c.n_watch, ==, 0);
    g_assert_null(c.watch_state);
    g_assert_cmpuint(c.watch_workers, ==, 2);
    g_assert_cmpuint(c.watch_queue, ==, 64);
    g_assert_cmpuint(c.watch_user_files, ==, 0);
    mg_config_clear(&c);
    g_free(p);

    p = write_conf("watch-bad.conf", "[watch a]\n"
                                     "in = relative\n"
                                     "mode = 4755\n"
                                     "colour = red\n"
                                     "[watch a]\n"
                                     "[watch b c]\n"
                                     "in = /x\n"
                                     "[mugaika]\n"
                                     "watch-workers = 0\n"
                                     "watch-state = here\n"
                                     "[watch d]\n"
                                     "in = /same\n"
                                     "out = /same\n"
                                     "mode = 64\n"
                                     "[watch e]\n"
                                     "in = /e\n"
                                     "out = /f\n"
                                     "mode = 0330\n");
    assert_error(p, 2, "in", "'relative' is not an absolute path");
    assert_error(p, 3, "mode", "'4755' is not permission bits in octal");
    assert_error(p, 4, "colour", "unknown key of a [watch NAME] group");
    assert_error(p, 1, "out", "missing: a [watch NAME] group needs both in and out");
    assert_error(p, 6, "out", "missing");
    assert_error(p, 9, "watch-workers", "'0' is not a number of workers (1-64)");
    assert_error(p, 10, "watch-state", "'here' is not an absolute path");
    assert_error(p, 13, "out", "the same folder as in");
    assert_error(p, 14, "mode", "is not permission bits");
    assert_error(p, 18, "mode", "'0330' lets no one read the files");
    {
        struct mg_config c2;
        GError *e = NULL;
        char *want = g_strdup_printf("%s:6: a [watch NAME] group needs a NAME", p);
        g_assert_false(mg_config_load(p, &c2, &e));
        g_assert_nonnull(strstr(e->message, want));
        g_free(want);
        g_error_free(e);
    }
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
    g_test_add_func("/config/defaults", test_defaults);
    g_test_add_func("/config/new-keys", test_new_keys);
    for (size_t i = 0; i < G_N_ELEMENTS(bad_cases); i++) {
        char *path = g_strdup_printf("/config/bad/%s/%zu", bad_cases[i].key, i);
        g_test_add_data_func(path, &bad_cases[i], run_bad);
        g_free(path);
    }
    for (size_t i = 0; i < G_N_ELEMENTS(size_cases); i++) {
        char *path = g_strdup_printf("/config/size/%zu", i);
        g_test_add_data_func(path, &size_cases[i], run_size);
        g_free(path);
    }
    for (size_t i = 0; i < G_N_ELEMENTS(socket_cases); i++) {
        char *path = g_strdup_printf("/config/socket/%zu", i);
        g_test_add_data_func(path, &socket_cases[i], run_socket);
        g_free(path);
    }
    g_test_add_func("/config/log-level", test_log_level);
    g_test_add_func("/config/sanitize-opts", test_sanitize_opts);
    g_test_add_func("/config/several-errors", test_several_errors);
    g_test_add_func("/config/watch", test_watch);
    rc = g_test_run();
    char *rm[] = {"rm", "-rf", dir, NULL};
    g_spawn_sync(NULL, rm, NULL, G_SPAWN_SEARCH_PATH, NULL, NULL, NULL, NULL, NULL, NULL);
    g_free(dir);
    return rc;
}
