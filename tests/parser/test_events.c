/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * NAME
 *	test_events 1
 * SUMMARY
 *	parser suite: golden event logs and chunk invariance
 * SYNOPSIS
 *	test_events [--golden] [--update] [--seed N] [--shared] PATH...
 * DESCRIPTION
 *	For every message file under each PATH (a file or a directory,
 *	recursively), the event log (mg_inspect_events) is computed with
 *	the message fed whole, one byte at a time (files up to 1 MiB),
 *	and at random split points (three schedules from a fixed seed);
 *	all must be identical. With --golden, each NAME.eml must also
 *	match NAME.events beside it (--update rewrites them instead).
 *	Prints "checked N files" and exits 1 on any difference, naming
 *	the file and the first differing line. --shared marks PATHs in
 *	../shared: when none of them exists the test is skipped (exit
 *	77, meson's skip) with a message; when they exist it always runs.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <glib.h>

#include <mugaika/inspect.h>

#define ONE_BYTE_MAX (1u << 20)

static char *events_of(const char *data, size_t len, const size_t *splits, size_t nsplits)
{
    struct mg_inspect_opts o;
    struct mg_inspect *in;
    size_t at = 0;
    char *log;

    mg_inspect_opts_default(&o);
    o.events = true;
    in = mg_inspect_new(&o);
    for (size_t i = 0; i < nsplits && at < len; i++) {
        size_t n = MIN(splits[i], len - at);
        if (mg_inspect_feed(in, data + at, n) != MG_OK)
            break;
        at += n;
    }
    if (at < len)
        mg_inspect_feed(in, data + at, len - at);
    mg_inspect_finish(in);
    log = g_strdup(mg_inspect_events(in));
    mg_inspect_free(in);
    return log;
}

static char *events_bytewise(const char *data, size_t len)
{
    struct mg_inspect_opts o;
    struct mg_inspect *in;
    char *log;

    mg_inspect_opts_default(&o);
    o.events = true;
    in = mg_inspect_new(&o);
    for (size_t i = 0; i < len; i++)
        mg_inspect_feed(in, data + i, 1);
    mg_inspect_finish(in);
    log = g_strdup(mg_inspect_events(in));
    mg_inspect_free(in);
    return log;
}

static void first_difference(const char *a, const char *b, const char *what, const char *file)
{
    char **la = g_strsplit(a, "\n", -1), **lb = g_strsplit(b, "\n", -1);
    guint i;

    for (i = 0; la[i] && lb[i]; i++) {
        if (strcmp(la[i], lb[i]) != 0)
            break;
    }
    fprintf(stderr, "%s: %s differs at line %u:\n  expected: %s\n  got:      %s\n", file, what,
            i + 1, la[i] ? la[i] : "(end)", lb[i] ? lb[i] : "(end)");
    g_strfreev(la);
    g_strfreev(lb);
}

struct run {
    bool golden;
    bool update;
    GRand *rng;
    unsigned files;
    unsigned failures;
};

static void check_file(struct run *r, const char *path)
{
    char *data = NULL, *whole, *other;
    gsize len = 0;
    GError *err = NULL;

    if (!g_file_get_contents(path, &data, &len, &err)) {
        fprintf(stderr, "%s: %s\n", path, err->message);
        g_error_free(err);
        r->failures++;
        return;
    }
    r->files++;
    whole = events_of(data, len, NULL, 0);
    if (r->golden) {
        char *gpath = g_strconcat(path, NULL);
        char *dot = strrchr(gpath, '.');
        char *expected = NULL;
        if (dot)
            *dot = '\0';
        char *epath = g_strconcat(gpath, ".events", NULL);
        if (r->update) {
            g_file_set_contents(epath, whole, -1, NULL);
        } else if (!g_file_get_contents(epath, &expected, NULL, NULL)) {
            fprintf(stderr, "%s: no golden log %s (run with --update and review it)\n", path,
                    epath);
            r->failures++;
        } else if (strcmp(expected, whole) != 0) {
            first_difference(expected, whole, "golden event log", path);
            r->failures++;
        }
        g_free(expected);
        g_free(epath);
        g_free(gpath);
    }
    if (len <= ONE_BYTE_MAX) {
        other = events_bytewise(data, len);
        if (strcmp(whole, other) != 0) {
            first_difference(whole, other, "one-byte feed", path);
            r->failures++;
        }
        g_free(other);
    }
    for (int k = 0; k < 3; k++) {
        size_t splits[64];
        size_t max = k == 0 ? 16 : k == 1 ? 300 : 9000;
        for (size_t i = 0; i < G_N_ELEMENTS(splits); i++)
            splits[i] = (size_t)g_rand_int_range(r->rng, 1, (gint32)max + 1);
        other = events_of(data, len, splits, G_N_ELEMENTS(splits));
        if (strcmp(whole, other) != 0) {
            first_difference(whole, other, "random split", path);
            r->failures++;
        }
        g_free(other);
    }
    g_free(whole);
    g_free(data);
}

static bool wanted(const char *name, bool golden)
{
    if (golden)
        return g_str_has_suffix(name, ".eml");
    return !g_str_has_suffix(name, ".events") && !g_str_has_suffix(name, ".json") &&
           !g_str_has_suffix(name, ".xml") && !g_str_has_suffix(name, ".md");
}

static void walk(struct run *r, const char *path)
{
    GDir *dir;
    const char *name;
    GPtrArray *names;

    if (!g_file_test(path, G_FILE_TEST_IS_DIR)) {
        check_file(r, path);
        return;
    }
    dir = g_dir_open(path, 0, NULL);
    if (dir == NULL) {
        fprintf(stderr, "%s: cannot open directory\n", path);
        r->failures++;
        return;
    }
    names = g_ptr_array_new_with_free_func(g_free);
    while ((name = g_dir_read_name(dir)) != NULL)
        g_ptr_array_add(names, g_build_filename(path, name, NULL));
    g_dir_close(dir);
    g_ptr_array_sort(names, (GCompareFunc)g_strcmp0);
    for (guint i = 0; i < names->len; i++) {
        const char *p = names->pdata[i];
        if (g_file_test(p, G_FILE_TEST_IS_DIR))
            walk(r, p);
        else if (wanted(p, r->golden))
            check_file(r, p);
    }
    g_ptr_array_unref(names);
}

int main(int argc, char **argv)
{
    struct run r = {0};
    guint32 seed = 20261122;
    bool shared = false;
    int i;

    for (i = 1; i < argc && argv[i][0] == '-'; i++) {
        if (strcmp(argv[i], "--golden") == 0)
            r.golden = true;
        else if (strcmp(argv[i], "--update") == 0)
            r.update = true;
        else if (strcmp(argv[i], "--shared") == 0)
            shared = true;
        else if (strcmp(argv[i], "--seed") == 0 && i + 1 < argc)
            seed = (guint32)g_ascii_strtoull(argv[++i], NULL, 10);
    }
    if (shared) {
        bool any = false;
        for (int k = i; k < argc; k++)
            any = any || g_file_test(argv[k], G_FILE_TEST_EXISTS);
        if (!any) {
            printf("SKIP: ../shared is not beside the checkout\n");
            return 77;
        }
    }
    r.rng = g_rand_new_with_seed(seed);
    for (; i < argc; i++) {
        if (!g_file_test(argv[i], G_FILE_TEST_EXISTS)) {
            fprintf(stderr, "%s: does not exist\n", argv[i]);
            r.failures++;
            continue;
        }
        walk(&r, argv[i]);
    }
    g_rand_free(r.rng);
    printf("checked %u files, %u failures\n", r.files, r.failures);
    if (r.files == 0) {
        fprintf(stderr, "no files checked\n");
        return 1;
    }
    return r.failures ? 1 : 0;
}
