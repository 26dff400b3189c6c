/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * NAME
 *	replay_main 1
 * SUMMARY
 *	run a fuzz corpus through a fuzz target without libFuzzer
 * SYNOPSIS
 *	fuzz_<target> path...
 * DESCRIPTION
 *	Each path is a file or a directory; every regular file of a
 *	directory (not recursive, in name order) is read and passed once
 *	to LLVMFuzzerTestOneInput, in a heap buffer of exactly its size
 *	so that a read past the end is caught by ASan or valgrind.
 *	Used by the builds without libFuzzer (gcc), where the corpus then
 *	runs as a regression test.
 * DIAGNOSTICS
 *	Exit status 0 when every input ran; 1 when a path cannot be read
 *	or no input was found at all (a wrong corpus path must not pass
 *	as an empty success). An invariant violation aborts; the path of
 *	the input that crashed is printed first.
 */
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <glib.h>

#include "fuzz.h"

static const char *current; /* the input being run, for crash reports */

/* Names the input that crashed, then dies of the same signal. */
static void on_crash(int sig)
{
    static const char msg[] = "replay: crashed on input ";

    if (current != NULL) {
        (void)!write(STDERR_FILENO, msg, sizeof(msg) - 1);
        (void)!write(STDERR_FILENO, current, strlen(current));
        (void)!write(STDERR_FILENO, "\n", 1);
    }
    signal(sig, SIG_DFL);
    raise(sig);
}

static int cmp_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static bool run_file(const char *path)
{
    GError *err = NULL;
    char *text;
    gsize len;

    if (!g_file_get_contents(path, &text, &len, &err)) {
        fprintf(stderr, "replay: %s\n", err->message);
        g_error_free(err);
        return false;
    }
    /* exact-size copy: no slack after the last byte */
    uint8_t *buf = g_malloc(len > 0 ? len : 1);
    memcpy(buf, text, len);
    g_free(text);
    current = path;
    LLVMFuzzerTestOneInput(buf, len);
    current = NULL;
    g_free(buf);
    return true;
}

/* Runs every regular file of dir; adds their count to *count. */
static bool run_dir(const char *dir, unsigned *count)
{
    GError *err = NULL;
    GDir *d = g_dir_open(dir, 0, &err);
    GPtrArray *names;
    const char *name;
    bool ok = true;

    if (d == NULL) {
        fprintf(stderr, "replay: %s\n", err->message);
        g_error_free(err);
        return false;
    }
    names = g_ptr_array_new_with_free_func(g_free);
    while ((name = g_dir_read_name(d)) != NULL)
        g_ptr_array_add(names, g_build_filename(dir, name, NULL));
    g_dir_close(d);
    qsort(names->pdata, names->len, sizeof(char *), cmp_names);
    for (guint i = 0; i < names->len && ok; i++) {
        const char *path = g_ptr_array_index(names, i);
        if (!g_file_test(path, G_FILE_TEST_IS_REGULAR))
            continue;
        ok = run_file(path);
        (*count)++;
    }
    g_ptr_array_unref(names);
    return ok;
}

int main(int argc, char **argv)
{
    unsigned count = 0;

    signal(SIGABRT, on_crash);
    signal(SIGSEGV, on_crash);
    signal(SIGBUS, on_crash);
    for (int i = 1; i < argc; i++) {
        bool ok;
        if (g_file_test(argv[i], G_FILE_TEST_IS_DIR)) {
            ok = run_dir(argv[i], &count);
        } else {
            ok = run_file(argv[i]);
            count++;
        }
        if (!ok)
            return 1;
    }
    if (count == 0) {
        fprintf(stderr, "usage: %s corpus-dir|file...  (no input found)\n", argv[0]);
        return 1;
    }
    printf("replayed %u inputs\n", count);
    return 0;
}
