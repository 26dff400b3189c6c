/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * NAME
 *	test_hostile 1
 * SUMMARY
 *	every corpus file, mail or not, through the parser as a message
 * SYNOPSIS
 *	test_hostile [gtest options]
 *	(environment: MUGAIKA_SHARED=../shared; optional
 *	MUGAIKA_CORPUS_SHARD=K/N to take every N-th file from the K-th,
 *	MUGAIKA_CORPUS_ONLY=substring)
 * DESCRIPTION
 *	Each file under ../shared/corpus (all sets: mails, archives,
 *	PDFs, Office files, bombs, HTML) is fed to mg_inspect as one
 *	message, with libmagic detection and the text option on: once
 *	whole and once in 7-byte chunks. Both runs must finish without an
 *	error and produce a JSON object with at least one part; the event
 *	logs and the JSON of the two runs must be identical (the parser
 *	promises the same events whatever the chunking). The sanitizer
 *	build turns any memory error into a failure.
 *
 *	Wall time is measured per file (both runs); the slowest files are
 *	printed, and the test fails when one file takes more than
 *	MAX_FILE_S or the whole shard more than MAX_TOTAL_S seconds
 *	(generous bounds that hold under ASan+UBSan on a slow machine;
 *	measured figures: docs/parser-divergences.md).
 * DIAGNOSTICS
 *	Exit 77 (skip) when ../shared is absent.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <mugaika/inspect.h>

#include "corpus_util.h"

#define CHUNK       7
#define MAX_FILE_S  30.0
#define MAX_TOTAL_S 300.0
#define SLOWEST     5

struct timing {
    const char *rel;
    double s;
};

struct run {
    const char *root;
    struct mg_detect *detect;
    unsigned files;
    uint64_t bytes;
    unsigned parts;
    double total;
    struct timing slow[SLOWEST];
};

/* Parses data with chunks of chunk bytes (0: whole); returns the
 * compact JSON and the event log (owned). */
static char *parse(struct run *r, const char *rel, const char *data, size_t len, size_t chunk,
                   char **events, unsigned *nparts)
{
    struct mg_inspect_opts o;
    struct mg_inspect *in;
    enum mg_status st = MG_OK;
    JsonNode *root;
    JsonObject *obj;
    char *json;

    mg_inspect_opts_default(&o);
    o.detect = r->detect;
    o.text = true;
    o.events = true;
    in = mg_inspect_new(&o);
    if (chunk == 0) {
        st = mg_inspect_feed(in, data, len);
    } else {
        for (size_t off = 0; off < len && st == MG_OK; off += chunk)
            st = mg_inspect_feed(in, data + off, MIN(chunk, len - off));
    }
    if (st == MG_OK)
        st = mg_inspect_finish(in);
    if (st != MG_OK)
        g_error("%s (chunk %zu): parser error %s", rel, chunk, mg_status_str(st));
    root = mg_inspect_json(in);
    g_assert_nonnull(root);
    g_assert_true(JSON_NODE_HOLDS_OBJECT(root));
    obj = json_node_get_object(root);
    g_assert_true(json_object_has_member(obj, "headers"));
    g_assert_true(json_object_has_member(obj, "defects"));
    *nparts = json_array_get_length(json_object_get_array_member(obj, "parts"));
    if (*nparts == 0)
        g_error("%s (chunk %zu): no part in the JSON", rel, chunk);
    json = json_to_string(root, FALSE);
    g_assert_nonnull(json);
    *events = g_strdup(mg_inspect_events(in));
    json_node_unref(root);
    mg_inspect_free(in);
    return json;
}

static void note_time(struct run *r, const char *rel, double s)
{
    r->total += s;
    for (int i = 0; i < SLOWEST; i++) {
        if (r->slow[i].rel == NULL || s > r->slow[i].s) {
            memmove(&r->slow[i + 1], &r->slow[i], sizeof(r->slow[0]) * (SLOWEST - 1 - (size_t)i));
            r->slow[i].rel = rel;
            r->slow[i].s = s;
            return;
        }
    }
}

static void one_file(struct run *r, const char *rel)
{
    size_t len;
    char *data = corpus_read(r->root, rel, &len);
    gint64 t0 = g_get_monotonic_time();
    char *ev_whole, *ev_chunk, *js_whole, *js_chunk;
    unsigned n_whole, n_chunk;
    double s;

    js_whole = parse(r, rel, data, len, 0, &ev_whole, &n_whole);
    js_chunk = parse(r, rel, data, len, CHUNK, &ev_chunk, &n_chunk);
    s = (double)(g_get_monotonic_time() - t0) / 1e6;
    if (strcmp(ev_whole, ev_chunk) != 0)
        g_error("%s: events differ between whole and %d-byte chunks", rel, CHUNK);
    if (strcmp(js_whole, js_chunk) != 0)
        g_error("%s: JSON differs between whole and %d-byte chunks", rel, CHUNK);
    if (s > MAX_FILE_S)
        g_error("%s: %.1f s (limit %.0f s)", rel, s, MAX_FILE_S);
    note_time(r, rel, s);
    r->files++;
    r->bytes += len;
    r->parts += n_whole;
    g_free(ev_whole);
    g_free(ev_chunk);
    g_free(js_whole);
    g_free(js_chunk);
    g_free(data);
}

static void test_hostile(gconstpointer arg)
{
    struct run r = {.root = arg};
    const char *why = NULL, *only = g_getenv("MUGAIKA_CORPUS_ONLY");
    const char *shard = g_getenv("MUGAIKA_CORPUS_SHARD");
    unsigned k = 0, n = 1;
    GPtrArray *files = corpus_list(r.root, "");

    if (shard != NULL && (sscanf(shard, "%u/%u", &k, &n) != 2 || n == 0 || k >= n))
        g_error("MUGAIKA_CORPUS_SHARD=%s: want K/N with K < N", shard);
    r.detect = mg_detect_new(&why);
    if (r.detect == NULL)
        g_error("libmagic: %s", why);
    for (guint i = k; i < files->len; i += n) {
        if (only == NULL || strstr(files->pdata[i], only) != NULL)
            one_file(&r, files->pdata[i]);
    }
    corpus_print("hostile: shard %u/%u: %u files, %.1f MiB, %u parts; whole + %d-byte chunks: "
                 "%.1f s (limit %.0f s)\n",
                 k, n, r.files, (double)r.bytes / 1048576.0, r.parts, CHUNK, r.total, MAX_TOTAL_S);
    for (int i = 0; i < SLOWEST && r.slow[i].rel; i++)
        corpus_print("hostile: slowest %d: %s %.2f s\n", i + 1, r.slow[i].rel, r.slow[i].s);
    g_test_message("hostile: %u files in %.1f s", r.files, r.total);
    if (only == NULL)
        g_assert_cmpuint(r.files, >=, 3000 / n);
    g_assert_cmpfloat(r.total, <, MAX_TOTAL_S);
    mg_detect_free(r.detect);
    g_ptr_array_unref(files);
}

int main(int argc, char **argv)
{
    return corpus_test_main(argc, argv, "/corpus/hostile", test_hostile);
}
