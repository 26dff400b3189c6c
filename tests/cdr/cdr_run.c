/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * NAME
 *	cdr_run 1
 * SUMMARY
 *	run one CDR worker through libmugaika's mg_cdr_run, for the tests
 * SYNOPSIS
 *	cdr_run [--dir DIR] [--deadline-ms N] [--cpu N] [--as BYTES]
 *		[--max-output BYTES] [--max-outputs N] [--deny-capset 1]
 *		[--cancel-ms N] PROGRAM HANDLER FILE [KEY=VALUE...]
 * DESCRIPTION
 *	Prints one JSON object: {"status", "reason", "ms", "outputs":
 *	[{"name", "type", "flags", "size", "sha256"}], "notes": [...]}.
 *	--dir is the directory of the worker programs (else cdr.c's own
 *	search). --deny-capset 1 runs the worker as a systemd unit with
 *	SystemCallFilter=~@privileged would: cdr_run drops every
 *	capability it has, then loads a seccomp filter that fails capset
 *	with EPERM, which the worker inherits. --cancel-ms N runs it
 *	through mg_cdr_run_cancel with a pipe written to after N ms (a run
 *	made ahead that is dropped). Exit 0 whatever the status;
 *	64 on usage errors, 78 when the workers are not found, 71 when the
 *	filter cannot be loaded.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <seccomp.h>
#include <stdio.h>
#include <sys/syscall.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <json-glib/json-glib.h>

#include <mugaika/cdr.h>

struct out {
    JsonBuilder *b;
    GChecksum *sum;
    uint64_t size;
    bool open;
    GPtrArray *notes;
};

static bool on_begin(void *u, const char *name, const char *type, unsigned flags)
{
    struct out *o = u;

    json_builder_begin_object(o->b);
    json_builder_set_member_name(o->b, "name");
    if (name != NULL)
        json_builder_add_string_value(o->b, name);
    else
        json_builder_add_null_value(o->b);
    json_builder_set_member_name(o->b, "type");
    if (type != NULL)
        json_builder_add_string_value(o->b, type);
    else
        json_builder_add_null_value(o->b);
    json_builder_set_member_name(o->b, "flags");
    json_builder_add_int_value(o->b, flags);
    o->sum = g_checksum_new(G_CHECKSUM_SHA256);
    o->size = 0;
    o->open = true;
    return true;
}

static bool on_data(void *u, const void *buf, size_t len)
{
    struct out *o = u;

    g_checksum_update(o->sum, buf, (gssize)len);
    o->size += len;
    return true;
}

static bool on_end(void *u)
{
    struct out *o = u;

    json_builder_set_member_name(o->b, "size");
    json_builder_add_int_value(o->b, (gint64)o->size);
    json_builder_set_member_name(o->b, "sha256");
    json_builder_add_string_value(o->b, g_checksum_get_string(o->sum));
    json_builder_end_object(o->b);
    g_checksum_free(o->sum);
    o->sum = NULL;
    o->open = false;
    return true;
}

static void on_note(void *u, const char *kind, const char *text)
{
    struct out *o = u;

    g_ptr_array_add(o->notes, g_strdup_printf("%s: %s", kind, text));
}

static const struct mg_cdr_sink sink = {on_begin, on_data, on_end, on_note};

/* No capability left, and capset refused from now on (inherited). */
static bool deny_capset(void)
{
    struct __user_cap_header_struct h = {_LINUX_CAPABILITY_VERSION_3, 0};
    struct __user_cap_data_struct d[2];
    scmp_filter_ctx ctx;
    bool ok;

    memset(d, 0, sizeof d);
    if (syscall(SYS_capset, &h, d) != 0)
        return false;
    ctx = seccomp_init(SCMP_ACT_ALLOW);
    if (ctx == NULL)
        return false;
    ok = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(capset), 0) == 0 &&
         seccomp_load(ctx) == 0;
    seccomp_release(ctx);
    return ok;
}

static gpointer cancel_later(gpointer u)
{
    int *p = u;

    g_usleep((gulong)p[2] * 1000);
    if (write(p[1], "x", 1) != 1)
        perror("cdr_run: cancel");
    return NULL;
}

int main(int argc, char **argv)
{
    int cancel[3] = {-1, -1, -1};
    GThread *canceller = NULL;
    struct mg_cdr_limits lim;
    struct mg_cdr_handler h;
    const char *dir = NULL;
    struct out o;
    GError *e = NULL;
    char *reason = NULL, *text;
    enum mg_cdr_status st;
    gint64 t0;
    int i = 1, fd;
    JsonBuilder *top;
    JsonNode *root;

    mg_cdr_limits_default(&lim);
    for (; i + 1 < argc && strncmp(argv[i], "--", 2) == 0; i += 2) {
        guint64 v = g_ascii_strtoull(argv[i + 1], NULL, 10);
        if (strcmp(argv[i], "--dir") == 0)
            dir = argv[i + 1];
        else if (strcmp(argv[i], "--deadline-ms") == 0)
            lim.deadline_us = (int64_t)v * 1000;
        else if (strcmp(argv[i], "--cpu") == 0)
            lim.cpu_seconds = (unsigned)v;
        else if (strcmp(argv[i], "--as") == 0)
            lim.address_space = v;
        else if (strcmp(argv[i], "--max-output") == 0)
            lim.max_output = v;
        else if (strcmp(argv[i], "--max-outputs") == 0)
            lim.max_outputs = (unsigned)v;
        else if (strcmp(argv[i], "--cancel-ms") == 0)
            cancel[2] = (int)v;
        else if (strcmp(argv[i], "--deny-capset") == 0 && v == 1) {
            if (!deny_capset()) {
                fprintf(stderr, "cdr_run: cannot deny capset: %s\n", g_strerror(errno));
                return 71;
            }
        } else
            break;
    }
    if (argc - i < 3) {
        fprintf(stderr, "usage: cdr_run [--dir DIR] [--deadline-ms N] [--cpu N] [--as BYTES] "
                        "[--max-output N] [--max-outputs N] [--deny-capset 1] [--cancel-ms N] "
                        "PROGRAM HANDLER FILE [KEY=VALUE...]\n");
        return 64;
    }
    if (!mg_cdr_init(dir, &e)) {
        fprintf(stderr, "cdr_run: %s\n", e->message);
        return 78;
    }
    memset(&h, 0, sizeof h);
    h.program = argv[i];
    h.name = argv[i + 1];
    fd = open(argv[i + 2], O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        perror(argv[i + 2]);
        return 66;
    }
    memset(&o, 0, sizeof o);
    o.b = json_builder_new();
    o.notes = g_ptr_array_new_with_free_func(g_free);
    json_builder_begin_array(o.b);
    t0 = g_get_monotonic_time();
    if (cancel[2] >= 0) {
        if (pipe(cancel) != 0) {
            perror("cdr_run: pipe");
            return 71;
        }
        canceller = g_thread_new("cancel", cancel_later, cancel);
    }
    st = mg_cdr_run_cancel(&h, (const char *const *)(argv + i + 3), fd, &lim, &sink, &o, cancel[0],
                           &reason);
    close(fd);
    if (canceller != NULL) {
        g_thread_join(canceller);
        close(cancel[0]);
        close(cancel[1]);
    }
    if (o.open) {
        /* the run stopped inside an output: close the record */
        json_builder_end_object(o.b);
        g_checksum_free(o.sum);
    }
    json_builder_end_array(o.b);

    top = json_builder_new();
    json_builder_begin_object(top);
    json_builder_set_member_name(top, "status");
    json_builder_add_string_value(top, mg_cdr_status_name(st));
    json_builder_set_member_name(top, "reason");
    if (reason != NULL)
        json_builder_add_string_value(top, reason);
    else
        json_builder_add_null_value(top);
    json_builder_set_member_name(top, "ms");
    json_builder_add_int_value(top, (g_get_monotonic_time() - t0) / 1000);
    json_builder_set_member_name(top, "outputs");
    json_builder_add_value(top, json_builder_get_root(o.b));
    json_builder_set_member_name(top, "notes");
    json_builder_begin_array(top);
    for (guint k = 0; k < o.notes->len; k++)
        json_builder_add_string_value(top, g_ptr_array_index(o.notes, k));
    json_builder_end_array(top);
    json_builder_end_object(top);
    root = json_builder_get_root(top);
    text = json_to_string(root, FALSE);
    puts(text);
    g_free(text);
    json_node_unref(root);
    g_object_unref(top);
    g_object_unref(o.b);
    g_ptr_array_unref(o.notes);
    g_free(reason);
    return 0;
}
