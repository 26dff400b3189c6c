/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * NAME
 *	mugaika-flatten 8
 * SUMMARY
 *	render the pages of a PDF into an image-only PDF, confined
 * SYNOPSIS
 *	mugaika-flatten pdf-flatten [KEY=VALUE...] <item >records
 * DESCRIPTION
 *	The pdf-flatten handler (flatten.c) in an executable of its own:
 *	it is the only handler that needs poppler and cairo, whose dozens
 *	of shared libraries would otherwise be loaded by every start of
 *	mugaika-worker (about half its start-up time). Same protocol and
 *	sandbox as mugaika-worker (src/worker/mgw.h); "selftest" is here
 *	too, so the sandbox tests can run against this executable.
 */
#include "worker/handlers.h"

static const struct mgw_handler table[] = {
    {"pdf-flatten", mgw_pdf_flatten},
    {"selftest", mgw_selftest},
};

int main(int argc, char **argv)
{
    return mgw_main(argc, argv, table, G_N_ELEMENTS(table));
}
