/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * NAME
 *	mugaika 1
 * SUMMARY
 *	command-line front end of libmugaika
 * SYNOPSIS
 *	mugaika inspect [--json] [--text] [--no-detect] FILE...
 *	mugaika --version | --help
 * DESCRIPTION
 *	Dispatches to the sub-commands; each lives in its own file.
 * DIAGNOSTICS
 *	Exit status follows sysexits: 0 ok, 64 usage, 66 input
 *	unreadable, 70 internal error.
 */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"

static void usage(FILE *f)
{
    fputs("usage: mugaika inspect [--json] [--text] [--no-detect] FILE...\n"
          "       mugaika --version\n"
          "\n"
          "  inspect   show what the MIME parser understood of each message\n",
          f);
}

int main(int argc, char **argv)
{
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
    fprintf(stderr, "mugaika: unknown command '%s'\n", argv[1]);
    usage(stderr);
    return MG_EX_USAGE;
}
