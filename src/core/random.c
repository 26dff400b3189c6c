/* SPDX-License-Identifier: GPL-2.0-or-later */
/* See random.h. */
#include <errno.h>
#include <sys/random.h>

#include <glib.h>

#include "core/random.h"

void mg_random_fill(void *buf, size_t len)
{
    unsigned char *b = buf;
    size_t got = 0;

    while (got < len) {
        ssize_t n = getrandom(b + got, len - got, 0);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            break;
        }
        got += (size_t)n;
    }
    for (; got < len; got++)
        b[got] = (unsigned char)g_random_int_range(0, 256);
}
