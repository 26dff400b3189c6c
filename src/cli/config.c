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
 *	an unset user, group or audit), and "rules: N rules ok".
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
