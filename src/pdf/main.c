/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * NAME
 *	mugaika-pdf 8
 * SUMMARY
 *	disarm a PDF with qpdf, confined
 * SYNOPSIS
 *	mugaika-pdf pdf-disarm [KEY=VALUE...] <item >records
 * DESCRIPTION
 *	The one executable that links qpdf (Apache-2.0). It links neither
 *	libclamav nor libmugaika's core, only the worker protocol and the
 *	sandbox (src/worker/proto.c, sandbox.c); docs/licensing.md says why.
 *	"selftest" (src/worker/selftest.c) lets the tests probe that this
 *	program confines itself like the other workers.
 */
#include "pdf/pdf.h"
#include "worker/handlers.h"
#include "built_with_pdf.h"

static const struct mgw_handler table[] = {
    {"pdf-disarm", mgw_pdf_disarm},
    {"selftest", mgw_selftest},
};

int main(int argc, char **argv)
{
    mgw_built_with = MGW_BUILT_WITH;
    return mgw_main(argc, argv, table, G_N_ELEMENTS(table));
}
