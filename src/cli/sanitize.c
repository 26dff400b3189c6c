/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * NAME
 *	sanitize 1
 * SUMMARY
 *	mugaika sanitize: one internet mail in, one safe mail out
 * SYNOPSIS
 *	mugaika sanitize [--config FILE] [--rules DIR] [--quarantine DIR]
 *		[--clamav-db DIR] [--lang ja|en] [--audit FILE|-] [--spool DIR]
 *		[--sender ADDR] [--recipient ADDR]... [FILE|-]
 * DESCRIPTION
 *	Streams FILE (default standard input) through the sanitising
 *	pipeline in 64 KiB reads and writes the rebuilt message to
 *	standard output: only once the whole message was decided, the
 *	original committed to the quarantine and the result scanned
 *	again. --rules: policy directory (default: the built-in policy);
 *	--quarantine: default /var/lib/mugaika/quarantine; --clamav-db:
 *	default /var/lib/clamav (required: without a database nothing is
 *	sanitised); --audit: append one JSON line per message to FILE
 *	("-": standard error); --sender/--recipient: the SMTP envelope
 *	(default: From, To and Cc). --config: the configuration file
 *	(default /etc/mugaika/mugaika.conf when it exists;
 *	docs/configuration.md): its rules, quarantine, clamav-db, lang,
 *	audit, spool, max-header-bytes, max-line-bytes, max-depth,
 *	max-parts, spool-memory and html-budget-ms apply; options given on
 *	the command line override it.
 * DIAGNOSTICS
 *	Exit status (../shared/DESIGN.md section 4): 0 a message was
 *	written; 1 the policy rejects the message (reason on stderr,
 *	nothing written); 64 usage; 66 input unreadable; 70 internal
 *	error; 75 temporary failure (AV engine, quarantine or spool I/O:
 *	retry later); 78 configuration error (rules, AV database). Nothing
 *	is written to standard output unless the status is 0.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <glib.h>
#include <json-glib/json-glib.h>

#include <mugaika/config.h>
#include <mugaika/log.h>
#include <mugaika/cdr.h>
#include <mugaika/sanitize.h>

#include "cli/cli.h"

static void usage(void)
{
    fputs(
        "usage: mugaika sanitize [--config FILE] [--rules DIR] [--quarantine DIR]\n"
        "                        [--clamav-db DIR] [--lang ja|en] [--audit FILE|-] [--spool DIR]\n"
        "                        [--sender ADDR] [--recipient ADDR]... [FILE|-]\n",
        stderr);
}

int mg_cli_sanitize(int argc, char **argv)
{
    char *rules_dir = NULL, *qdir = NULL, *db = NULL, *lang = NULL, *audit = NULL, *spool = NULL;
    char *sender = NULL, *config = NULL;
    char **rcpts = NULL;
    GOptionEntry entries[] = {
        {"config", 0, 0, G_OPTION_ARG_FILENAME, &config, "configuration file", "FILE"},
        {"rules", 0, 0, G_OPTION_ARG_FILENAME, &rules_dir, "policy directory", "DIR"},
        {"quarantine", 0, 0, G_OPTION_ARG_FILENAME, &qdir, "quarantine directory", "DIR"},
        {"clamav-db", 0, 0, G_OPTION_ARG_FILENAME, &db, "ClamAV database directory", "DIR"},
        {"lang", 0, 0, G_OPTION_ARG_STRING, &lang, "language of the notice (ja, en)", "LANG"},
        {"audit", 0, 0, G_OPTION_ARG_FILENAME, &audit, "audit log file (- for stderr)", "FILE"},
        {"spool", 0, 0, G_OPTION_ARG_FILENAME, &spool, "directory for temporary files", "DIR"},
        {"sender", 0, 0, G_OPTION_ARG_STRING, &sender, "envelope sender", "ADDR"},
        {"recipient", 0, 0, G_OPTION_ARG_STRING_ARRAY, &rcpts, "envelope recipient", "ADDR"},
        {NULL, 0, 0, 0, NULL, NULL, NULL},
    };
    GOptionContext *ctx = g_option_context_new("[FILE|-]");
    GError *e = NULL;
    struct mg_cli_engine en;
    struct mg_sanitize_opts o;
    struct mg_quarantine *q = NULL;
    struct mg_sanitize *s = NULL;
    const char *file = "-";
    int fd = -1, rc = MG_EX_OK;

    memset(&en, 0, sizeof en);
    g_option_context_add_main_entries(ctx, entries, NULL);
    g_option_context_set_help_enabled(ctx, TRUE);
    if (!g_option_context_parse(ctx, &argc, &argv, &e)) {
        fprintf(stderr, "mugaika: sanitize: %s\n", e->message);
        usage();
        rc = MG_EX_USAGE;
        goto out;
    }
    if (argc > 2 || (lang != NULL && strcmp(lang, "ja") != 0 && strcmp(lang, "en") != 0)) {
        if (argc > 2)
            fputs("mugaika: sanitize: one input at a time\n", stderr);
        else
            fprintf(stderr, "mugaika: sanitize: --lang: '%s' is neither ja nor en\n", lang);
        usage();
        rc = MG_EX_USAGE;
        goto out;
    }
    if (argc == 2)
        file = argv[1];
    rc = mg_cli_engine_open(&en, "sanitize", config, rules_dir, db);
    if (rc != MG_EX_OK)
        goto out;
    if (qdir == NULL && en.cfg.quarantine_dir != NULL)
        qdir = g_strdup(en.cfg.quarantine_dir);
    if (audit == NULL && en.cfg.audit != NULL)
        audit = g_strdup(en.cfg.audit);
    q = mg_quarantine_open(qdir != NULL ? qdir : MG_QUARANTINE_DEFAULT_DIR, &e);
    if (q == NULL) {
        fprintf(stderr, "mugaika: sanitize: quarantine: %s\n", e->message);
        rc = MG_EX_TEMPFAIL;
        goto out;
    }

    fd = strcmp(file, "-") == 0 ? STDIN_FILENO : open(file, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        fprintf(stderr, "mugaika: sanitize: %s: %s\n", file, g_strerror(errno));
        rc = MG_EX_NOINPUT;
        goto out;
    }
    mg_cli_engine_opts(&en, &o);
    o.quarantine = q;
    if (lang != NULL)
        o.lang = lang;
    if (spool != NULL)
        o.spool_dir = spool;
    o.sender = sender;
    o.recipients = (const char *const *)rcpts;
    s = mg_sanitize_new(&o);
    rc = mg_cli_feed(s, fd, "sanitize", file);
    if (rc != MG_EX_OK)
        goto out;
    rc = mg_cli_verdict_status(mg_sanitize_finish(s, &e));
    if (rc == MG_EX_OK) {
        if (!mg_sanitize_write(s, STDOUT_FILENO, &e)) {
            fprintf(stderr, "mugaika: sanitize: %s\n", e->message);
            rc = MG_EX_TEMPFAIL;
        }
    } else if (rc == MG_EX_REJECT) {
        fprintf(stderr, "mugaika: sanitize: rejected: %s\n", e->message);
    } else {
        fprintf(stderr, "mugaika: sanitize: %s: %s\n", file, e != NULL ? e->message : "failed");
    }
    mg_cli_write_audit("sanitize", audit, s);
out:
    g_clear_error(&e);
    if (fd > STDIN_FILENO)
        close(fd);
    mg_sanitize_free(s);
    if (q != NULL)
        mg_quarantine_close(q);
    mg_cli_engine_close(&en);
    g_option_context_free(ctx);
    g_free(rules_dir);
    g_free(qdir);
    g_free(db);
    g_free(lang);
    g_free(audit);
    g_free(spool);
    g_free(sender);
    g_free(config);
    g_strfreev(rcpts);
    return rc;
}
