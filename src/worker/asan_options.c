/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * NAME
 *	asan_options 3
 * SUMMARY
 *	AddressSanitizer's defaults for the worker programs (test build only)
 * DESCRIPTION
 *	In the AddressSanitizer build the sandbox sets no RLIMIT_AS (the
 *	shadow memory is one huge reservation; sandbox.c), so an item that
 *	asks for gigabytes would get them, slowly, where the normal build's
 *	allocation fails at once. So that both builds behave alike, ASan
 *	returns NULL for any single allocation over the default
 *	worker-memory (1 GiB) instead of granting it or aborting. Compiled
 *	into mugaika-worker, mugaika-pdf and mugaika-flatten only (not into
 *	the fuzz targets, where libFuzzer's own limits apply). The variable
 *	ASAN_OPTIONS still overrides these defaults.
 */
#include "worker/mgw.h"

#ifdef MGW_ASAN
const char *__asan_default_options(void);

const char *__asan_default_options(void)
{
    return "allocator_may_return_null=1:max_allocation_size_mb=1024";
}
#endif
