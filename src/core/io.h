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
 */
#ifndef MUGAIKA_CORE_IO_H
#define MUGAIKA_CORE_IO_H

#include <stddef.h>

int mg_write_all(int fd, const void *buf, size_t len);

#endif
