/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * NAME
 *	inspect 1
 * SUMMARY
 *	mugaika inspect: what the parser understood of a message
 * SYNOPSIS
 *	mugaika inspect [--json] [--text] [--no-detect] FILE...
 * DESCRIPTION
 *	Streams each FILE ("-" for standard input) through the push
 *	parser in 64 KiB reads, so memory stays bounded whatever the
 *	message size. Default output is a readable tree; --json prints
 *	one JSON object per file (indented for one file, one object per
 *	line for several). --text adds the UTF-8 text of text parts.
 *	--no-detect skips libmagic.
 * DIAGNOSTICS
 *	A file that cannot be read: "mugaika: FILE: reason" on stderr and
 *	exit 66 (the other files are still inspected). Usage errors: 64.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <glib.h>
#include <json-glib/json-glib.h>

#include <mugaika/inspect.h>

#include "cli/cli.h"

#define READ_CHUNK 65536

/* Returns 0, or an exit status. */
static int inspect_one(const char *file, struct mg_inspect_opts *o, bool json, bool pretty)
{
    int fd = strcmp(file, "-") == 0 ? STDIN_FILENO : open(file, O_RDONLY | O_CLOEXEC);
    struct mg_inspect *in;
    char *buf;
    ssize_t n;
    enum mg_status st = MG_OK;

    if (fd < 0) {
        fprintf(stderr, "mugaika: %s: %s\n", file, g_strerror(errno));
        return MG_EX_NOINPUT;
    }
    in = mg_inspect_new(o);
    buf = g_malloc(READ_CHUNK);
    while ((n = read(fd, buf, READ_CHUNK)) != 0) {
        if (n < 0) {
            if (errno == EINTR)
                continue;
            fprintf(stderr, "mugaika: %s: %s\n", file, g_strerror(errno));
            break;
        }
        if ((st = mg_inspect_feed(in, buf, (size_t)n)) != MG_OK)
            break;
    }
    g_free(buf);
    if (fd != STDIN_FILENO)
        close(fd);
    if (n < 0) {
        mg_inspect_free(in);
        return MG_EX_NOINPUT;
    }
    if (st == MG_OK)
        st = mg_inspect_finish(in);
    if (st != MG_OK) {
        fprintf(stderr, "mugaika: %s: parser: %s\n", file, mg_status_str(st));
        mg_inspect_free(in);
        return MG_EX_SOFTWARE;
    }
    if (json) {
        JsonNode *root = mg_inspect_json(in);
        char *text = json_to_string(root, pretty);
        fputs(text, stdout);
        fputc('\n', stdout);
        g_free(text);
        json_node_unref(root);
    } else {
        GString *out = g_string_new(NULL);
        mg_inspect_tree(in, out);
        fprintf(stdout, "%s\n%s", file, out->str);
        g_string_free(out, TRUE);
    }
    mg_inspect_free(in);
    return 0;
}

int mg_cli_inspect(int argc, char **argv)
{
    struct mg_inspect_opts o;
    struct mg_detect *det = NULL;
    bool json = false, detect = true, only_files = false;
    GPtrArray *files;
    int i, rc = 0;

    mg_inspect_opts_default(&o);
    files = g_ptr_array_new();
    /* options may stand anywhere before "--" */
    for (i = 1; i < argc; i++) {
        if (only_files || argv[i][0] != '-' || argv[i][1] == '\0') {
            g_ptr_array_add(files, argv[i]);
        } else if (strcmp(argv[i], "--") == 0) {
            only_files = true;
        } else if (strcmp(argv[i], "--json") == 0) {
            json = true;
        } else if (strcmp(argv[i], "--text") == 0) {
            o.text = true;
        } else if (strcmp(argv[i], "--no-detect") == 0) {
            detect = false;
        } else {
            fprintf(stderr, "mugaika inspect: unknown option '%s'\n", argv[i]);
            g_ptr_array_unref(files);
            return MG_EX_USAGE;
        }
    }
    if (files->len == 0) {
        fputs("usage: mugaika inspect [--json] [--text] [--no-detect] FILE...\n", stderr);
        g_ptr_array_unref(files);
        return MG_EX_USAGE;
    }
    if (detect) {
        const char *why = NULL;
        det = mg_detect_new(&why);
        if (det == NULL) {
            fprintf(stderr, "mugaika: libmagic: %s\n", why);
            g_ptr_array_unref(files);
            return MG_EX_SOFTWARE;
        }
        o.detect = det;
    }
    for (guint k = 0; k < files->len; k++) {
        int r = inspect_one(files->pdata[k], &o, json, files->len == 1);
        if (r != 0 && rc == 0)
            rc = r;
    }
    g_ptr_array_unref(files);
    fflush(stdout);
    mg_detect_free(det);
    return rc;
}
