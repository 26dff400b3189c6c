/* SPDX-License-Identifier: GPL-2.0-or-later */
/* placeholder: replaced by the sanitize command */
#include <stdio.h>

#include "cli/cli.h"

int mg_cli_sanitize(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    fputs("mugaika: sanitize: not built yet\n", stderr);
    return MG_EX_SOFTWARE;
}
