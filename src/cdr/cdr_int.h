/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * NAME
 *	cdr_int 3h
 * SUMMARY
 *	libmugaika internal: the reader of a worker's records
 * DESCRIPTION
 *	mg_cdr_run feeds the bytes a worker writes on its fd 1 to a
 *	reader, which checks them record by record (src/worker/mgw.h) and
 *	passes outputs and notes to the sink. It is its own unit so that
 *	the fuzz target (tests/fuzz/fuzz_cdr.c) can drive it: a worker runs
 *	third-party parsing code on hostile input, so what it writes is
 *	hostile input too.
 */
#ifndef MUGAIKA_CDR_INT_H
#define MUGAIKA_CDR_INT_H

#include <mugaika/cdr.h>

struct mg_cdr_reader;
/* lim and sink must outlive the reader. */
struct mg_cdr_reader *mg_cdr_reader_new(const struct mg_cdr_limits *lim,
                                        const struct mg_cdr_sink *sink, void *u);
/* Bytes as they come, any chunking. false once reading stopped (a
 * malformed record, a limit, a sink failure): the worker must be killed. */
bool mg_cdr_reader_feed(struct mg_cdr_reader *r, const void *buf, size_t len);
/* The status once the stream ended (exited_zero: the worker exited with
 * status 0). *reason (caller frees) may be NULL for MG_CDR_CRASH. */
enum mg_cdr_status mg_cdr_reader_end(struct mg_cdr_reader *r, bool exited_zero, char **reason);
void mg_cdr_reader_free(struct mg_cdr_reader *r);

#endif
