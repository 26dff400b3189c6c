/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * NAME
 *	random 3h
 * SUMMARY
 *	unpredictable bytes for names and ids
 * SYNOPSIS
 *	mg_random_fill(buf, len);
 * DESCRIPTION
 *	Fills buf with getrandom(2) bytes; where the kernel has none,
 *	GLib's generator (seeded from /dev/urandom) fills the rest.
 *	getrandom keeps forked processes from sharing a sequence. Used for
 *	quarantine ids and the watcher's temporary names.
 */
#ifndef MUGAIKA_CORE_RANDOM_H
#define MUGAIKA_CORE_RANDOM_H

#include <stddef.h>

void mg_random_fill(void *buf, size_t len);

#endif
