/* SPDX-License-Identifier: GPL-2.0-or-later */
/* See io.h. */
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
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

char *mg_io_fd_path(int dirfd, const char *name)
{
    char link[48], *dir, *out, *esc;
    bool plain;

    g_snprintf(link, sizeof link, "/proc/self/fd/%d", dirfd);
    dir = g_file_read_link(link, NULL);
    out = dir != NULL ? g_strconcat(dir, "/", name, NULL)
                      : g_strdup_printf("(fd %d)/%s", dirfd, name);
    g_free(dir);
    plain = g_utf8_validate(out, -1, NULL);
    for (const char *p = out; plain && *p; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7f)
            plain = false;
    if (plain)
        return out;
    esc = g_strescape(out, NULL);
    g_free(out);
    return esc;
}

void mg_io_error(GError **err, GQuark domain, int code, const char *path, const char *op,
                 const char *fmt, ...)
{
    va_list ap;
    char *reason;

    if (err == NULL)
        return;
    va_start(ap, fmt);
    reason = g_strdup_vprintf(fmt, ap);
    va_end(ap);
    g_set_error(err, domain, code, "%s: %s: %s", path, op, reason);
    g_free(reason);
}
