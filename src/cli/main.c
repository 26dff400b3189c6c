/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * NAME
 *	mugaika 1
 * SUMMARY
 *	command-line front end of libmugaika
 * SYNOPSIS
 *	mugaika inspect [OPTIONS] FILE...
 *	mugaika sanitize [OPTIONS] [FILE|-]
 *	mugaika rules check|show [DIR]
 *	mugaika quarantine [OPTIONS] list|show|export|expire ...
 *	mugaika config check [FILE]
 *	mugaika watch status [--state DIR] [--json]
 *	mugaika --version | --help
 * DESCRIPTION
 *	Dispatches to the sub-commands; each lives in its own file
 *	(inspect.c, sanitize.c, rules.c, quarantine.c, config.c, watch.c) and
 *	documents its options.
 * DIAGNOSTICS
 *	Exit status follows sysexits: 0 ok, 64 usage, 66 input
 *	unreadable, 70 internal error, 75 temporary failure, 78
 *	configuration error (each sub-command lists its own).
 */
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>

#include "cli/cli.h"

static void usage(FILE *f)
{
    fputs("usage: mugaika COMMAND [OPTIONS] [ARGS]\n"
          "       mugaika --version | --help\n"
          "\n"
          "  inspect FILE...        show what the parser and the policy make of each message\n"
          "  sanitize [FILE|-]      sanitise one message; the rebuilt message goes to stdout\n"
          "  rules check [DIR]      check a policy and show its effective rule list\n"
          "  quarantine list|show|export|expire   manage the originals kept in quarantine\n"
          "  config check [FILE]    check the configuration file and show every setting\n"
          "  watch status           whether mugaika-watch runs, and its counters and errors\n"
          "\n"
          "sanitize, rules, quarantine, config and watch print their options with --help.\n",
          f);
}

int main(int argc, char **argv)
{
    /* The CDR workers run as this user: they must not read this
     * process's memory or open files through /proc/PID (other messages,
     * the quarantine's descriptors). */
    (void)prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
    if (argc < 2) {
        usage(stderr);
        return MG_EX_USAGE;
    }
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
        strcmp(argv[1], "help") == 0) {
        usage(stdout);
        return 0;
    }
    if (strcmp(argv[1], "--version") == 0) {
        fputs("mugaika " MUGAIKA_VERSION "\n", stdout);
        return 0;
    }
    if (strcmp(argv[1], "inspect") == 0)
        return mg_cli_inspect(argc - 1, argv + 1);
    if (strcmp(argv[1], "sanitize") == 0)
        return mg_cli_sanitize(argc - 1, argv + 1);
    if (strcmp(argv[1], "rules") == 0)
        return mg_cli_rules(argc - 1, argv + 1);
    if (strcmp(argv[1], "quarantine") == 0)
        return mg_cli_quarantine(argc - 1, argv + 1);
    if (strcmp(argv[1], "config") == 0)
        return mg_cli_config(argc - 1, argv + 1);
    if (strcmp(argv[1], "watch") == 0)
        return mg_cli_watch(argc - 1, argv + 1);
    fprintf(stderr, "mugaika: unknown command '%s'\n", argv[1]);
    usage(stderr);
    return MG_EX_USAGE;
}
