/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * NAME
 *	mugaika-worker 8
 * SUMMARY
 *	run one CDR handler on one item, confined
 * SYNOPSIS
 *	mugaika-worker HANDLER [KEY=VALUE...] <item >records
 * DESCRIPTION
 *	Started by libmugaika (src/cdr/cdr.c) for every item a rule sends
 *	to disarm, flatten, unpack or text a format that needs a
 *	third-party parser. See src/worker/mgw.h for the protocol. This
 *	executable never links libclamav or qpdf: PDF disarming is
 *	mugaika-pdf (docs/licensing.md); nor poppler: PDF flattening is
 *	mugaika-flatten (flatten_main.c).
 */
#include "worker/handlers.h"
#include "built_with_worker.h"

static const struct mgw_handler table[] = {
    {"archive", mgw_archive},   {"ooxml", mgw_ooxml}, {"image", mgw_image},
    {"rtf-text", mgw_rtf_text}, {"tnef", mgw_tnef},   {"ole-text", mgw_ole_text},
    {"selftest", mgw_selftest},
};

int main(int argc, char **argv)
{
    mgw_built_with = MGW_BUILT_WITH;
    return mgw_main(argc, argv, table, G_N_ELEMENTS(table));
}
