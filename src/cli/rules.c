/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * NAME
 *	mugaika-rules 1
 * SUMMARY
 *	check a sanitising policy and show its effective rule list
 * SYNOPSIS
 *	mugaika rules check [DIR]
 *	mugaika rules show [DIR]
 * DESCRIPTION
 *	Loads the policy of DIR (its *.rules files), or the built-in
 *	policy without DIR, exactly as the daemons do (mg_rules_load).
 *	On success it prints the effective ordered rule list
 *	(mg_rules_describe) to stdout. "show" is another name for
 *	"check".
 * DIAGNOSTICS
 *	Exit status 0: the policy loads; 78: it does not, and every
 *	error is printed to stderr, one line each
 *	("FILE:LINE: [rule ID] KEY: reason"); 64: usage error.
 */
#include <stdio.h>
#include <string.h>

#include <glib.h>

#include <mugaika/rules.h>

#include "cli/cli.h"

static void usage(FILE *f)
{
    fputs("usage: mugaika rules check [DIR]\n"
          "       mugaika rules show [DIR]\n"
          "\n"
          "  Load the policy of DIR (its *.rules files, in name order), or the\n"
          "  built-in policy when DIR is not given, and print the effective rule\n"
          "  list. Errors go to stderr as FILE:LINE: [rule ID] KEY: reason.\n"
          "  Exit status: 0 policy loads, 78 policy has errors, 64 usage.\n",
          f);
}

int mg_cli_rules(int argc, char **argv)
{
    const char *dir = NULL;
    struct mg_rules *r;
    GError *err = NULL;
    GString *out;

    if (argc >= 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
        usage(stdout);
        return MG_EX_OK;
    }
    if (argc < 2 || argc > 3 || (strcmp(argv[1], "check") != 0 && strcmp(argv[1], "show") != 0)) {
        usage(stderr);
        return MG_EX_USAGE;
    }
    if (argc == 3) {
        dir = argv[2];
        if (dir[0] == '-' && dir[1] != '\0') {
            fprintf(stderr, "mugaika: rules: unknown option '%s'\n", dir);
            usage(stderr);
            return MG_EX_USAGE;
        }
    }
    r = mg_rules_load(dir, &err);
    if (r == NULL) {
        fprintf(stderr, "%s\n", err->message);
        fprintf(stderr, "mugaika: rules: the policy %s has errors; it was not loaded\n",
                dir != NULL ? dir : "(built-in)");
        g_error_free(err);
        return MG_EX_CONFIG;
    }
    out = g_string_new(NULL);
    g_string_append_printf(out, "# policy %s: %u rules, first match wins\n\n",
                           dir != NULL ? dir : "(built-in)", mg_rules_count(r));
    mg_rules_describe(r, out);
    fwrite(out->str, 1, out->len, stdout);
    g_string_free(out, TRUE);
    mg_rules_unref(r);
    return fflush(stdout) == 0 ? MG_EX_OK : MG_EX_SOFTWARE;
}
