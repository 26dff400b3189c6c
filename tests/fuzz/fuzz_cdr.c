/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * NAME
 *	fuzz_cdr 1
 * SUMMARY
 *	libFuzzer target: the reader of a CDR worker's records (cdr_int.h)
 * SYNOPSIS
 *	fuzz_cdr [libFuzzer options] [corpus-dir...]
 *	fuzz_cdr corpus-dir|file...	(replay build: replay_main.c)
 * DESCRIPTION
 *	A worker runs third-party parsers on hostile input, so the daemon
 *	treats what it writes as hostile too. Input: 1 byte (low 6 bits:
 *	chunk size - 1; bits 6-7: which output limits: none, 3 outputs,
 *	100 bytes, both), then the record stream.
 *
 *	Checks: the sink sees a well-formed sequence (begin, data only
 *	inside an output, end; never more outputs or bytes than the
 *	limits); the stream fed whole and fed in chunks gives the same
 *	events, status and reason; a stream the reader accepted as ok ends
 *	outside any output. Any violation aborts.
 *
 *	Seeds: testdata/fuzz/cdr/.
 */
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include <glib.h>

#include "cdr/cdr_int.h"

#include "fuzz.h"

struct trace {
    GString *log;
    bool open;
    unsigned outputs;
    uint64_t bytes;
    const struct mg_cdr_limits *lim;
};

static bool t_begin(void *u, const char *name, const char *type, unsigned flags)
{
    struct trace *t = u;

    FUZZ_CHECK(!t->open);
    FUZZ_CHECK(name == NULL || g_utf8_validate(name, -1, NULL));
    FUZZ_CHECK(type == NULL || g_utf8_validate(type, -1, NULL));
    t->open = true;
    t->outputs++;
    FUZZ_CHECK(t->outputs <= t->lim->max_outputs);
    g_string_append_printf(t->log, "O[%s|%s|%u]", name != NULL ? name : "-",
                           type != NULL ? type : "-", flags);
    return true;
}

static bool t_data(void *u, const void *buf, size_t len)
{
    struct trace *t = u;

    FUZZ_CHECK(t->open);
    t->bytes += len;
    FUZZ_CHECK(t->bytes <= t->lim->max_output);
    /* data may arrive in any pieces: log the bytes, not the calls */
    g_string_append_len(t->log, buf, (gssize)len);
    return true;
}

static bool t_end(void *u)
{
    struct trace *t = u;

    FUZZ_CHECK(t->open);
    t->open = false;
    g_string_append(t->log, "E");
    return true;
}

static void t_note(void *u, const char *kind, const char *text)
{
    struct trace *t = u;

    FUZZ_CHECK(kind != NULL && text != NULL);
    g_string_append_printf(t->log, "N[%s|%s]", kind, text);
}

static const struct mg_cdr_sink sink = {t_begin, t_data, t_end, t_note};

static char *run(const uint8_t *data, size_t size, size_t chunk, const struct mg_cdr_limits *lim)
{
    struct trace t = {g_string_new(NULL), false, 0, 0, lim};
    struct mg_cdr_reader *r = mg_cdr_reader_new(lim, &sink, &t);
    char *reason = NULL;
    enum mg_cdr_status st;

    for (size_t off = 0; off < size;) {
        size_t n = MIN(chunk, size - off);
        bool more = mg_cdr_reader_feed(r, data + off, n);
        off += n;
        if (!more)
            break;
    }
    st = mg_cdr_reader_end(r, true, &reason);
    if (st == MG_CDR_OK)
        FUZZ_CHECK(!t.open);
    FUZZ_CHECK(reason == NULL || g_utf8_validate(reason, -1, NULL));
    g_string_append_printf(t.log, "|%s|%s", mg_cdr_status_name(st), reason != NULL ? reason : "-");
    g_free(reason);
    mg_cdr_reader_free(r);
    return g_string_free(t.log, FALSE);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct mg_cdr_limits lim;
    char *whole, *chunked;

    if (size < 1)
        return 0;
    mg_cdr_limits_default(&lim);
    if (data[0] & 0x40)
        lim.max_outputs = 3;
    if (data[0] & 0x80)
        lim.max_output = 100;
    whole = run(data + 1, size - 1, size, &lim);
    chunked = run(data + 1, size - 1, (size_t)(data[0] & 0x3f) + 1, &lim);
    FUZZ_CHECK(strcmp(whole, chunked) == 0);
    g_free(whole);
    g_free(chunked);
    return 0;
}
