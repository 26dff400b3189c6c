/* SPDX-License-Identifier: GPL-2.0-or-later */
/* placeholder: replaced by the rules command */
#include <stdio.h>

#include "cli/cli.h"

int mg_cli_rules(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    fputs("mugaika: rules: not built yet\n", stderr);
    return MG_EX_SOFTWARE;
}
