/* SPDX-License-Identifier: GPL-2.0-or-later */
/* See io.h. */
#include <errno.h>
#include <unistd.h>

#include "core/io.h"

int mg_write_all(int fd, const void *buf, size_t len)
{
    const char *p = buf;

    while (len > 0) {
        ssize_t n = write(fd, p, len);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return errno;
        }
        if (n == 0)
            return ENOSPC;
        p += n;
        len -= (size_t)n;
    }
    return 0;
}
