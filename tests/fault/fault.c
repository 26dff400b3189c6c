/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * NAME
 *	fault.so 3
 * SUMMARY
 *	LD_PRELOAD fault injection for the tests
 * DESCRIPTION
 *	MUGAIKA_FAULT names the fault; unset, nothing changes.
 *	  magic-open-once  the first magic_open() of the process fails, as it
 *	                   would when descriptors or memory run out;
 *	  scan             every libclamav scan (cl_scanmap_callback) ends in
 *	                   an engine error (CL_EMEM).
 *	The tests check that each makes a temporary failure (exit 75, SMTP
 *	451), never a message that passes unchanged or unscanned.
 */
#include <dlfcn.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <clamav.h>

typedef struct magic_set *magic_t;

magic_t magic_open(int flags);

static int fault_is(const char *name)
{
    const char *f = getenv("MUGAIKA_FAULT");

    return f != NULL && strcmp(f, name) == 0;
}

/* The next definition of sym (a function), without an object-to-function
 * pointer cast: the bytes are copied, which POSIX guarantees to work. */
static void next(const char *sym, void *fn, size_t size)
{
    void *p = dlsym(RTLD_NEXT, sym);

    memcpy(fn, &p, size);
}

magic_t magic_open(int flags)
{
    static int calls;
    magic_t (*real)(int) = NULL;

    next("magic_open", &real, sizeof real);
    if (fault_is("magic-open-once") && __atomic_fetch_add(&calls, 1, __ATOMIC_SEQ_CST) == 0)
        return NULL;
    return real != NULL ? real(flags) : NULL;
}

cl_error_t cl_scanmap_callback(cl_fmap_t *map, const char *filename, const char **virname,
                               unsigned long *scanned, const struct cl_engine *engine,
                               struct cl_scan_options *scanoptions, void *context)
{
    cl_error_t (*real)(cl_fmap_t *, const char *, const char **, unsigned long *,
                       const struct cl_engine *, struct cl_scan_options *, void *) = NULL;

    if (fault_is("scan"))
        return CL_EMEM;
    next("cl_scanmap_callback", &real, sizeof real);
    if (real == NULL)
        return CL_EMEM;
    return real(map, filename, virname, scanned, engine, scanoptions, context);
}
