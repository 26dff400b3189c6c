/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The mugaika CLI's sub-commands (one file each). */
#ifndef MUGAIKA_CLI_H
#define MUGAIKA_CLI_H

#define MG_EX_OK        0
#define MG_EX_USAGE     64
#define MG_EX_NOINPUT   66
#define MG_EX_REJECT    1 /* sanitize: the policy rejects the message */
#define MG_EX_DATAERR   65
#define MG_EX_SOFTWARE  70
#define MG_EX_CANTCREAT 73
#define MG_EX_TEMPFAIL  75
#define MG_EX_CONFIG    78

#include <mugaika/config.h>
#include <mugaika/detect.h>
#include <mugaika/rules.h>
#include <mugaika/sanitize.h>

/* What the pipeline needs, opened from the configuration file and the
 * command line (sanitize.c; shared by sanitize and quarantine
 * release). */
struct mg_cli_engine {
    struct mg_config cfg;
    struct mg_rules *rules;
    struct mg_av *av;
    struct mg_detect *det;
};
/* Loads config (NULL: the default file when it exists), then the
 * policy (rules_dir, else the configuration's, else the built-in one),
 * the AV database (db, else the configuration's), the CDR workers and
 * type detection. Errors go to stderr as "mugaika: CMD: ..."; returns
 * the exit status (MG_EX_OK when everything is ready). Close it in any
 * case. */
int mg_cli_engine_open(struct mg_cli_engine *en, const char *cmd, const char *config,
                       const char *rules_dir, const char *db);
void mg_cli_engine_close(struct mg_cli_engine *en);
/* Options for the pipeline from the engine (lang, spool, limits...). */
void mg_cli_engine_opts(const struct mg_cli_engine *en, struct mg_sanitize_opts *o);
/* Reads fd to its end into s; MG_EX_OK or MG_EX_NOINPUT (printed). */
int mg_cli_feed(struct mg_sanitize *s, int fd, const char *cmd, const char *file);
/* The exit status of a verdict. */
int mg_cli_verdict_status(enum mg_verdict v);
/* Appends s's audit record to path (NULL: nothing; "-": stderr). */
void mg_cli_write_audit(const char *cmd, const char *path, struct mg_sanitize *s);

/* Appends s for a terminal (engine.c): "\xNN" for bad bytes and C0/DEL,
 * "\uNNNN" for C1 and bidirectional controls, "\\" for a backslash;
 * "-" when empty; at most max_chars characters then "..." (0: all). */
void mg_cli_put_text(GString *out, const char *s, size_t max_chars);

/* argv[0] is the sub-command name. Returns the exit status. */
int mg_cli_inspect(int argc, char **argv);
int mg_cli_rules(int argc, char **argv);      /* rules.c */
int mg_cli_quarantine(int argc, char **argv); /* quarantine.c */
int mg_cli_sanitize(int argc, char **argv);   /* sanitize.c */
int mg_cli_config(int argc, char **argv);     /* config.c */
int mg_cli_watch(int argc, char **argv);      /* watch.c */

#endif
