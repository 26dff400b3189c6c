/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The mugaika CLI's sub-commands (one file each). */
#ifndef MUGAIKA_CLI_H
#define MUGAIKA_CLI_H

#define MG_EX_OK       0
#define MG_EX_USAGE    64
#define MG_EX_NOINPUT  66
#define MG_EX_SOFTWARE 70

/* argv[0] is the sub-command name. Returns the exit status. */
int mg_cli_inspect(int argc, char **argv);

#endif
