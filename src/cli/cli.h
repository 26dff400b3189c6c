/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The mugaika CLI's sub-commands (one file each). */
#ifndef MUGAIKA_CLI_H
#define MUGAIKA_CLI_H

#define MG_EX_OK       0
#define MG_EX_USAGE    64
#define MG_EX_NOINPUT  66
#define MG_EX_REJECT   1 /* sanitize: the policy rejects the message */
#define MG_EX_DATAERR  65
#define MG_EX_SOFTWARE 70
#define MG_EX_TEMPFAIL 75
#define MG_EX_CONFIG   78

/* argv[0] is the sub-command name. Returns the exit status. */
int mg_cli_inspect(int argc, char **argv);
int mg_cli_rules(int argc, char **argv);      /* rules.c */
int mg_cli_quarantine(int argc, char **argv); /* quarantine.c */
int mg_cli_sanitize(int argc, char **argv);   /* sanitize.c */
int mg_cli_config(int argc, char **argv);     /* config.c */

#endif
