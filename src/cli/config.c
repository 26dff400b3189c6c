/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * NAME
 *	mugaika-config 1
 * SUMMARY
 *	check the configuration file and show the effective settings
 * SYNOPSIS
 *	mugaika config check [FILE]
 * DESCRIPTION
 *	Loads FILE, or without FILE /etc/mugaika/mugaika.conf when it
 *	exists and the built-in defaults otherwise, exactly as the
 *	programs do (mg_config_load); then loads the policy it names
 *	(rules, or the built-in policy) with mg_rules_load.
 *
 *	On success it prints, on standard output: a comment line naming
 *	the source of the settings, every effective setting as
 *	"key = value" in a fixed order (the key names of the file; sizes
 *	in bytes; "(built-in)" for rules when none is set, "(none)" for
 *	an unset user, group or audit), a "workers:" line, and "rules: N
 *	rules ok".
 *
 *	The "workers:" line says whether mugaika-worker and mugaika-pdf
 *	(found as the programs find them: worker-dir, ...) were built with
 *	the Debian packages installed now. They link their libraries
 *	statically and record, at build time, each archive's source package
 *	and version (--built-with); dpkg-query gives what is installed. A
 *	library whose version changed since (a security update, say) gets
 *	a warning on stderr naming both versions: mugaika must be built and
 *	installed again (docs/operations.md). This does not change the exit
 *	status: the configuration is not at fault.
 * DIAGNOSTICS
 *	Exit status 0: the file and its policy load; 78: they do not,
 *	and every error is printed to stderr, one line each
 *	("FILE:LINE: KEY: reason"; the policy's own
 *	"FILE:LINE: [rule ID] KEY: reason"), or FILE does not exist;
 *	64: usage error; 70: standard output could not be written.
 *	Nothing is printed to standard output unless the status is 0.
 */
#include <stdio.h>
#include <string.h>

#include <glib.h>

#include <mugaika/av.h>
#include <mugaika/cdr.h>
#include <mugaika/config.h>
#include <mugaika/quarantine.h>
#include <mugaika/rules.h>

#include "cli/cli.h"

static void usage(FILE *f)
{
    fputs("usage: mugaika config check [FILE]\n"
          "\n"
          "  Load the configuration FILE (default " MG_CONFIG_DEFAULT_FILE " when it\n"
          "  exists, else the built-in defaults) and the policy it names, and print\n"
          "  every effective setting as key = value. Errors go to stderr as\n"
          "  FILE:LINE: KEY: reason.\n"
          "  Exit status: 0 configuration loads, 78 it has errors, 64 usage.\n",
          f);
}

static const char *or_text(const char *v, const char *fallback)
{
    return v != NULL ? v : fallback;
}

/* Every setting, in the order of docs/configuration.md. */
static void describe(const struct mg_config *c, GString *o)
{
    if (c->file != NULL)
        g_string_append_printf(o, "# configuration file %s\n", c->file);
    else
        g_string_append(o, "# no configuration file (" MG_CONFIG_DEFAULT_FILE
                           " does not exist): built-in defaults\n");
    g_string_append_printf(o, "rules = %s\n", or_text(c->rules_dir, "(built-in)"));
    g_string_append_printf(o, "quarantine = %s\n",
                           or_text(c->quarantine_dir, MG_QUARANTINE_DEFAULT_DIR));
    g_string_append_printf(o, "clamav-db = %s\n", or_text(c->clamav_db, MG_AV_DEFAULT_DB));
    g_string_append_printf(o, "lang = %s\n", or_text(c->lang, "ja"));
    g_string_append_printf(o, "audit = %s\n", or_text(c->audit, "(none)"));
    g_string_append_printf(o, "spool = %s\n", or_text(c->spool_dir, g_get_tmp_dir()));
    g_string_append_printf(o, "retention-days = %u\n", c->retention_days);
    g_string_append_printf(o, "max-header-bytes = %zu\n", c->limits.header_bytes);
    g_string_append_printf(o, "max-line-bytes = %zu\n", c->limits.line_bytes);
    g_string_append_printf(o, "max-depth = %u\n", c->limits.depth);
    g_string_append_printf(o, "max-parts = %u\n", c->limits.parts);
    g_string_append_printf(o, "spool-memory = %zu\n", c->spool_memory);
    g_string_append_printf(o, "html-budget-ms = %u\n", c->html_budget_ms);
    g_string_append_printf(o, "socket = %s\n", c->socket);
    g_string_append_printf(o, "user = %s\n", or_text(c->user, "(none)"));
    g_string_append_printf(o, "group = %s\n", or_text(c->group, "(none)"));
    g_string_append_printf(o, "log-level = %s\n", mg_config_log_level_name(c->log_level));
    if (c->max_message_bytes == 0)
        g_string_append(o, "max-message-size = 0 (no limit)\n");
    else
        g_string_append_printf(o, "max-message-size = %" G_GUINT64_FORMAT "\n",
                               c->max_message_bytes);
    g_string_append_printf(o, "message-timeout = %u\n", c->message_timeout);
    g_string_append_printf(o, "milter-timeout = %u\n", c->milter_timeout);
    g_string_append_printf(o, "worker-dir = %s\n",
                           or_text(c->worker_dir, "(built-in: libexecdir/mugaika)"));
    g_string_append_printf(o, "worker-timeout = %u\n", c->worker_timeout);
    g_string_append_printf(o, "worker-budget = %u\n", c->worker_budget);
    g_string_append_printf(o, "worker-cpu-seconds = %u\n", c->worker_cpu);
    g_string_append_printf(o, "worker-memory = %" G_GUINT64_FORMAT "\n", c->worker_memory);
    g_string_append_printf(o, "archive-depth = %u\n", c->archive_depth);
    g_string_append_printf(o, "archive-members = %u\n", c->archive_members);
    g_string_append_printf(o, "archive-size = %" G_GUINT64_FORMAT "\n", c->archive_size);
    g_string_append_printf(o, "archive-ratio = %u\n", c->archive_ratio);
    g_string_append_printf(o, "watch-state = %s\n",
                           or_text(c->watch_state, MG_CONFIG_DEFAULT_WATCH_STATE));
    g_string_append_printf(o, "watch-workers = %u\n", c->watch_workers);
    g_string_append_printf(o, "watch-queue = %u\n", c->watch_queue);
    g_string_append_printf(o, "watch-quiet-ms = %u\n", c->watch_quiet_ms);
    g_string_append_printf(o, "watch-scan-ms = %u\n", c->watch_scan_ms);
    g_string_append_printf(o, "watch-user-files = %u\n", c->watch_user_files);
    g_string_append_printf(o, "watch-user-bytes = %" G_GUINT64_FORMAT "\n", c->watch_user_bytes);
    for (unsigned i = 0; i < c->n_watch; i++) {
        const struct mg_config_watch *w = &c->watch[i];
        g_string_append_printf(o, "\n[watch %s]\n", w->name);
        g_string_append_printf(o, "in = %s\n", w->in);
        g_string_append_printf(o, "out = %s\n", w->out);
        g_string_append_printf(o, "owner = %s\n", or_text(w->owner, "(the daemon's)"));
        g_string_append_printf(o, "group = %s\n", or_text(w->group, "(the daemon's)"));
        g_string_append_printf(o, "mode = %04o\n", w->mode);
        g_string_append_printf(o, "user-files = %u\n", w->user_files);
        g_string_append_printf(o, "user-bytes = %" G_GUINT64_FORMAT "\n", w->user_bytes);
    }
}

/* The standard output of argv (NULL when it cannot be run or fails). */
static char *output_of(char **argv)
{
    char *out = NULL;
    int status = 0;

    if (!g_spawn_sync(NULL, argv, NULL, G_SPAWN_SEARCH_PATH | G_SPAWN_STDERR_TO_DEV_NULL, NULL,
                      NULL, &out, NULL, &status, NULL) ||
        !g_spawn_check_wait_status(status, NULL)) {
        g_free(out);
        return NULL;
    }
    return out;
}

/* The workers' statically linked libraries against the installed
 * packages: the "workers:" line, a warning on stderr per changed
 * source package and worker. */
static void check_workers(const struct mg_config *c, GString *out)
{
    static const char *const progs[] = {"mugaika-worker", "mugaika-pdf"};
    char *dq[] = {(char *)"dpkg-query", (char *)"-W", (char *)"-f",
                  (char *)"${db:Status-Abbrev} ${source:Package} ${source:Version}\n", NULL};
    GError *e = NULL;
    GHashTable *have, *versions, *warned;
    char *installed;
    char **lines;
    unsigned libs = 0, stale = 0, unknown = 0;

    if (!mg_cdr_init(c->worker_dir, &e)) {
        g_string_append_printf(out, "workers: not checked: %s\n", e->message);
        g_error_free(e);
        return;
    }
    if ((installed = output_of(dq)) == NULL) {
        g_string_append(out, "workers: not checked: dpkg-query did not run\n");
        return;
    }
    /* "SOURCE VERSION" installed; SOURCE -> its installed versions */
    have = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
    versions = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
    warned = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
    lines = g_strsplit(installed, "\n", -1);
    for (char **l = lines; *l != NULL; l++) {
        /* "ii  SOURCE VERSION": installed packages only (not "rc") */
        char *pkg = strchr(*l, ' '), *sp, *src, *old;
        if (pkg == NULL || pkg - *l < 2 || (*l)[1] != 'i')
            continue;
        while (*pkg == ' ')
            pkg++;
        sp = strchr(pkg, ' ');
        if (sp == NULL || sp == pkg || sp[1] == '\0' || g_hash_table_contains(have, pkg))
            continue;
        g_hash_table_add(have, g_strdup(pkg));
        src = g_strndup(pkg, (gsize)(sp - pkg));
        old = g_hash_table_lookup(versions, src);
        g_hash_table_replace(
            versions, src, old != NULL ? g_strdup_printf("%s, %s", old, sp + 1) : g_strdup(sp + 1));
    }
    g_strfreev(lines);
    g_free(installed);

    for (size_t i = 0; i < G_N_ELEMENTS(progs); i++) {
        const char *path = mg_cdr_program_path(progs[i]);
        char *argv[] = {(char *)path, (char *)"--built-with", NULL};
        char *built = path != NULL ? output_of(argv) : NULL;

        if (built == NULL) {
            g_string_append_printf(out, "workers: not checked: %s --built-with failed\n",
                                   path != NULL ? path : progs[i]);
            continue;
        }
        lines = g_strsplit(built, "\n", -1);
        for (char **l = lines; *l != NULL; l++) {
            char **f = g_strsplit(*l, " ", 3);
            if (g_strv_length(f) == 3) {
                char *key = g_strdup_printf("%s %s", f[1], f[2]);
                char *once = g_strdup_printf("%s %s", progs[i], f[1]);
                libs++;
                if (strcmp(f[1], "?") == 0) {
                    unknown++;
                } else if (!g_hash_table_contains(have, key)) {
                    stale++;
                    if (!g_hash_table_contains(warned, once)) {
                        const char *now = g_hash_table_lookup(versions, f[1]);
                        fprintf(stderr,
                                "mugaika: config: warning: %s was built with %s %s (lib%s.a); "
                                "installed now: %s; build and install mugaika again "
                                "(docs/operations.md)\n",
                                path, f[1], f[2], f[0], now != NULL ? now : "none");
                        g_hash_table_add(warned, once);
                        once = NULL;
                    }
                }
                g_free(key);
                g_free(once);
            }
            g_strfreev(f);
        }
        g_strfreev(lines);
        g_free(built);
    }
    if (stale > 0)
        g_string_append_printf(out,
                               "workers: %u of %u static libraries differ from the installed "
                               "packages: rebuild\n",
                               stale, libs);
    else if (libs > 0 && unknown == libs)
        g_string_append(out, "workers: not checked: the build recorded no package versions\n");
    else if (unknown > 0)
        g_string_append_printf(out,
                               "workers: %u static libraries, as installed; %u from no Debian "
                               "package, not checked\n",
                               libs - unknown, unknown);
    else
        g_string_append_printf(out, "workers: %u static libraries, as installed\n", libs);
    g_hash_table_unref(have);
    g_hash_table_unref(versions);
    g_hash_table_unref(warned);
}

static int check(const char *file)
{
    struct mg_config c;
    struct mg_rules *r;
    GError *e = NULL;
    GString *out;

    if (!mg_config_load(file, &c, &e)) {
        fprintf(stderr, "%s\n", e->message);
        fprintf(stderr, "mugaika: config: the configuration %s was not loaded\n",
                file != NULL ? file : MG_CONFIG_DEFAULT_FILE);
        g_error_free(e);
        return MG_EX_CONFIG;
    }
    r = mg_rules_load(c.rules_dir, &e);
    if (r == NULL) {
        fprintf(stderr, "%s\n", e->message);
        if (c.rules_dir != NULL)
            fprintf(stderr, "mugaika: config: the policy %s (rules in %s) has errors\n",
                    c.rules_dir, c.file);
        else
            fputs("mugaika: config: the built-in policy has errors\n", stderr);
        g_error_free(e);
        mg_config_clear(&c);
        return MG_EX_CONFIG;
    }
    out = g_string_new(NULL);
    describe(&c, out);
    check_workers(&c, out);
    g_string_append_printf(out, "rules: %u rules ok\n", mg_rules_count(r));
    fwrite(out->str, 1, out->len, stdout);
    g_string_free(out, TRUE);
    mg_rules_unref(r);
    mg_config_clear(&c);
    if (fflush(stdout) != 0) {
        fprintf(stderr, "mugaika: config: standard output: write error\n");
        return MG_EX_SOFTWARE;
    }
    return MG_EX_OK;
}

int mg_cli_config(int argc, char **argv)
{
    const char *file = NULL;

    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            usage(stdout);
            return MG_EX_OK;
        }
    }
    if (argc < 2 || argc > 3 || strcmp(argv[1], "check") != 0) {
        usage(stderr);
        return MG_EX_USAGE;
    }
    if (argc == 3) {
        file = argv[2];
        if (file[0] == '-') {
            fprintf(stderr, "mugaika: config: unknown option '%s'\n", file);
            usage(stderr);
            return MG_EX_USAGE;
        }
        if (file[0] == '\0') {
            usage(stderr);
            return MG_EX_USAGE;
        }
    }
    return check(file);
}
