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

#define READ_CHUNK 65536

static void usage(void)
{
    fputs(
        "usage: mugaika sanitize [--config FILE] [--rules DIR] [--quarantine DIR]\n"
        "                        [--clamav-db DIR] [--lang ja|en] [--audit FILE|-] [--spool DIR]\n"
        "                        [--sender ADDR] [--recipient ADDR]... [FILE|-]\n",
        stderr);
}

int mg_cli_verdict_status(enum mg_verdict v)
{
    switch (v) {
    case MG_VERDICT_ACCEPT:
        return MG_EX_OK;
    case MG_VERDICT_REJECT:
        return MG_EX_REJECT;
    case MG_VERDICT_TEMPFAIL:
        return MG_EX_TEMPFAIL;
    case MG_VERDICT_INTERNAL:
    default:
        return MG_EX_SOFTWARE;
    }
}

void mg_cli_write_audit(const char *cmd, const char *path, struct mg_sanitize *s)
{
    JsonNode *n;
    char *line;
    GError *e = NULL;

    if (path == NULL)
        return;
    n = mg_sanitize_audit(s);
    line = json_to_string(n, FALSE);
    json_node_unref(n);
    if (!mg_log_append(path, line, &e)) {
        fprintf(stderr, "mugaika: %s: audit file %s\n", cmd, e->message);
        g_error_free(e);
    }
    g_free(line);
}

int mg_cli_engine_open(struct mg_cli_engine *en, const char *cmd, const char *config,
                       const char *rules_dir, const char *db)
{
    GError *e = NULL;
    const char *why = NULL;
    int rc = MG_EX_OK;

    memset(en, 0, sizeof *en);
    if (!mg_config_load(config, &en->cfg, &e)) {
        fprintf(stderr, "mugaika: %s: configuration:\n%s\n", cmd, e->message);
        rc = MG_EX_CONFIG;
        goto out;
    }
    /* the command line wins over the file; configuration first: a bad
     * policy or database is reported even when the input is fine */
    en->rules = mg_rules_load(rules_dir != NULL ? rules_dir : en->cfg.rules_dir, &e);
    if (en->rules == NULL) {
        fprintf(stderr, "mugaika: %s: rules:\n%s\n", cmd, e->message);
        rc = MG_EX_CONFIG;
        goto out;
    }
    en->av = mg_av_open(db != NULL ? db : en->cfg.clamav_db, &e);
    if (en->av == NULL) {
        fprintf(stderr, "mugaika: %s: antivirus: %s\n", cmd, e->message);
        rc = g_error_matches(e, MG_AV_ERROR, MG_AV_ERROR_NO_DATABASE) ? MG_EX_CONFIG
                                                                      : MG_EX_TEMPFAIL;
        goto out;
    }
    if (!mg_cdr_init(en->cfg.worker_dir, &e)) {
        fprintf(stderr, "mugaika: %s: %s\n", cmd, e->message);
        rc = MG_EX_CONFIG;
        goto out;
    }
    en->det = mg_detect_new(&why);
    if (en->det == NULL) {
        fprintf(stderr, "mugaika: %s: type detection: %s\n", cmd, why);
        rc = MG_EX_CONFIG;
    }
out:
    g_clear_error(&e);
    return rc;
}

void mg_cli_engine_close(struct mg_cli_engine *en)
{
    mg_detect_free(en->det);
    if (en->av != NULL)
        mg_av_unref(en->av);
    if (en->rules != NULL)
        mg_rules_unref(en->rules);
    mg_config_clear(&en->cfg);
    memset(en, 0, sizeof *en);
}

void mg_cli_engine_opts(const struct mg_cli_engine *en, struct mg_sanitize_opts *o)
{
    mg_sanitize_opts_default(o);
    mg_config_sanitize_opts(&en->cfg, o); /* lang, spool, limits, memory, HTML budget */
    o->rules = en->rules;
    o->av = en->av;
    o->detect = en->det;
}

int mg_cli_feed(struct mg_sanitize *s, int fd, const char *cmd, const char *file)
{
    char *buf = g_malloc(READ_CHUNK);
    int rc = MG_EX_OK;

    for (;;) {
        ssize_t n = read(fd, buf, READ_CHUNK);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            fprintf(stderr, "mugaika: %s: %s: %s\n", cmd, file, g_strerror(errno));
            rc = MG_EX_NOINPUT;
            break;
        }
        if (n == 0)
            break;
        mg_sanitize_feed(s, buf, (size_t)n);
    }
    g_free(buf);
    return rc;
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
