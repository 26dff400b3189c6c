/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * NAME
 *	io 3h
 * SUMMARY
 *	libmugaika internal: writing a whole buffer
 * DESCRIPTION
 *	mg_write_all writes len bytes to fd, retrying short writes and
 *	EINTR. Returns 0 or an errno value; a write that makes no progress
 *	is ENOSPC. Used by the quarantine and the watcher's journal.
 *
 *	mg_io_fd_path gives "DIR/name" for messages, DIR read from
 *	/proc/self/fd (else "(fd N)"), kept as is when it is UTF-8
 *	without control characters, escaped (g_strescape) otherwise
 *	(g_free).
 *
 *	mg_io_error sets err (when not NULL) to domain/code with the
 *	message "PATH: OP: REASON", REASON made from fmt.
 */
#ifndef MUGAIKA_CORE_IO_H
#define MUGAIKA_CORE_IO_H

#include <stddef.h>

#include <glib.h>

int mg_write_all(int fd, const void *buf, size_t len);
char *mg_io_fd_path(int dirfd, const char *name);
void mg_io_error(GError **err, GQuark domain, int code, const char *path, const char *op,
                 const char *fmt, ...) G_GNUC_PRINTF(6, 7);

#endif
