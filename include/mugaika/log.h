/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * NAME
 *	log 3h
 * SUMMARY
 *	the daemons' log (syslog) and appended record files (audit)
 * DESCRIPTION
 *	mg_log_open starts syslog (facility mail) under ident, copying
 *	every line to standard error when also_stderr; messages above
 *	level (a syslog priority) are not logged. mg_log logs one line.
 *	mg_log_append appends one line to the file path ("-": standard
 *	error), opened and closed per call so that a rotated file is
 *	picked up; calls from several threads do not interleave.
 *	mg_log_stderr is for errors before the log is open.
 */
#ifndef MUGAIKA_LOG_H
#define MUGAIKA_LOG_H

#include <stdbool.h>

#include <glib.h>

void mg_log_open(const char *ident, bool also_stderr, int level);
void mg_log(int prio, const char *fmt, ...) G_GNUC_PRINTF(2, 3);
bool mg_log_append(const char *path, const char *line, GError **err);
void mg_log_stderr(const char *fmt, ...) G_GNUC_PRINTF(1, 2);
void mg_log_close(void);

#endif
