/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * failmagic.so - an LD_PRELOAD shim for the milter's protocol test: the
 * first magic_open() of the process fails, as it would when descriptors
 * or memory run out under load. The test checks that such a failure
 * makes a temporary failure, never a message that passes unchanged.
 */
#include <dlfcn.h>
#include <stddef.h>
#include <string.h>

typedef struct magic_set *magic_t;

magic_t magic_open(int flags);

magic_t magic_open(int flags)
{
    static int calls;
    magic_t (*real)(int) = NULL;
    void *sym = dlsym(RTLD_NEXT, "magic_open");

    /* POSIX guarantees a function pointer survives this round trip */
    memcpy(&real, &sym, sizeof real);

    if (__atomic_fetch_add(&calls, 1, __ATOMIC_SEQ_CST) == 0 || real == NULL)
        return NULL;
    return real(flags);
}
