/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * NAME
 *	engine 3
 * SUMMARY
 *	what the programs that run the pipeline share (cli.h)
 * DESCRIPTION
 *	The configuration, policy, AV engine, CDR workers and type
 *	detection opened from the configuration file and the command line,
 *	reading a message into the pipeline, exit statuses and the audit
 *	line: used by mugaika sanitize, mugaika quarantine release and
 *	mugaika-watch.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <glib.h>
#include <json-glib/json-glib.h>

#include <mugaika/cdr.h>
#include <mugaika/config.h>
#include <mugaika/log.h>
#include <mugaika/sanitize.h>

#include "cli/cli.h"

#define READ_CHUNK 65536

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

/* --- text for a terminal ------------------------------------------------------ */

static bool must_escape(gunichar c)
{
    return c < 0x20 || c == 0x7f || (c >= 0x80 && c < 0xa0) || (c >= 0x202a && c <= 0x202e) ||
           (c >= 0x2066 && c <= 0x2069) || c == 0x200e || c == 0x200f;
}

/* Appends s for a terminal: escapes, "-" when empty, max_chars 0: all. */
void mg_cli_put_text(GString *out, const char *s, size_t max_chars)
{
    const char *p, *end;
    size_t n = 0;

    if (s == NULL || *s == '\0') {
        g_string_append_c(out, '-');
        return;
    }
    end = s + strlen(s);
    for (p = s; p < end; n++) {
        gunichar c;

        if (max_chars != 0 && n == max_chars) {
            g_string_append(out, "...");
            break;
        }
        c = g_utf8_get_char_validated(p, end - p);
        if (c == (gunichar)-1 || c == (gunichar)-2) {
            g_string_append_printf(out, "\\x%02x", (unsigned char)*p);
            p++;
            continue;
        }
        if (c == '\\')
            g_string_append(out, "\\\\");
        else if (c < 0x80 && must_escape(c))
            g_string_append_printf(out, "\\x%02x", c);
        else if (must_escape(c))
            g_string_append_printf(out, "\\u%04x", c);
        else
            g_string_append_len(out, p, g_utf8_next_char(p) - p);
        p = g_utf8_next_char(p);
    }
}
