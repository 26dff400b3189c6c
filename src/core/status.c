/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * NAME
 *	status 3
 * SUMMARY
 *	names of enum mg_status
 * SYNOPSIS
 *	#include <mugaika/status.h>
 *	const char *mg_status_str(enum mg_status st);
 * DESCRIPTION
 *	Returns a static description; "unknown status" for out-of-range values.
 */
#include <mugaika/status.h>

static const char *const status_names[] = {
#define MG_STATUS_STR(name, str) str,
    MG_STATUS_LIST(MG_STATUS_STR)
#undef MG_STATUS_STR
};

const char *mg_status_str(enum mg_status st)
{
    if ((unsigned)st >= MG_STATUS_COUNT)
        return "unknown status";
    return status_names[st];
}
