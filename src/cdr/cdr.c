/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * NAME
 *	cdr 3
 * SUMMARY
 *	start a CDR worker, read its records, enforce the deadline
 * DESCRIPTION
 *	See include/mugaika/cdr.h. The worker is started with
 *	posix_spawn (safe in the milter's threads: no code runs in the
 *	child before exec), with the item on fd 0, a pipe on fd 1 for the
 *	records and a pipe on fd 2 for its diagnostics; every other
 *	descriptor is closed in the child (closefrom). One poll loop reads
 *	both pipes until the worker closes them or the deadline passes;
 *	records are parsed as they arrive and data goes straight to the
 *	sink, so memory stays at one record (at most MGW_DATA_MAX bytes).
 *
 *	The status comes from the worker's last record ('Z'), never from
 *	its exit code alone: a worker that dies, is killed by RLIMIT_CPU,
 *	writes a malformed record or ends without 'Z' is MG_CDR_CRASH; one
 *	killed at the deadline is MG_CDR_TIMEOUT; one that sends more than
 *	the output limits allow is killed and MG_CDR_LIMIT.
 *
 *	Where the programs are: mg_cdr_init(dir) with a directory from the
 *	configuration ("worker-dir"); else $MUGAIKA_WORKER_DIR; else, when
 *	the running program is inside the build tree it was built in,
 *	that tree's src/worker and src/pdf (so tests and the demo run
 *	without installing); else the compiled-in libexecdir/mugaika.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <json-glib/json-glib.h>

#include <mugaika/cdr.h>

#include "cdr/cdr_int.h"

#ifndef MUGAIKA_LIBEXECDIR
#define MUGAIKA_LIBEXECDIR "/usr/local/libexec/mugaika"
#endif

extern char **environ;

#define REC_JSON_MAX (64u * 1024)
#define REC_DATA_MAX (1u << 20) /* MGW_DATA_MAX */
#define STDERR_KEEP  2048

static const struct mg_cdr_handler handlers[] = {
    {"mugaika-worker", "archive", MG_ACTION_UNPACK,
     "application/zip;application/x-7z-compressed;application/x-rar;application/vnd.rar;"
     "application/x-tar;application/gzip;application/x-gzip;application/x-bzip2;application/x-xz;"
     "application/x-lzh-compressed;application/x-lha;application/vnd.ms-cab-compressed;"
     "application/x-iso9660-image",
     "*"},
    {"mugaika-worker", "ooxml", MG_ACTION_DISARM,
     "application/vnd.openxmlformats-officedocument.*;application/vnd.ms-word.*macroenabled*;"
     "application/vnd.ms-excel.*macroenabled*;application/vnd.ms-powerpoint.*macroenabled*",
     "application/vnd.openxmlformats-officedocument.*;application/zip"},
    {"mugaika-pdf", "pdf-disarm", MG_ACTION_DISARM, "application/pdf", "application/pdf"},
    {"mugaika-worker", "image", MG_ACTION_DISARM,
     "image/png;image/jpeg;image/gif;image/webp;image/bmp;image/x-ms-bmp;image/tiff",
     "image/png;image/jpeg;image/gif;image/webp;image/tiff"},
    {"mugaika-flatten", "pdf-flatten", MG_ACTION_FLATTEN, "application/pdf", "application/pdf"},
    {"mugaika-worker", "tnef", MG_ACTION_UNPACK, "application/vnd.ms-tnef", "*"},
    {"mugaika-worker", "rtf-text", MG_ACTION_TEXT, "text/rtf;application/rtf",
     "text/plain;application/x-empty"},
    {"mugaika-worker", "ole-text", MG_ACTION_TEXT,
     "application/msword;application/vnd.ms-excel;application/vnd.ms-powerpoint;application/"
     "vnd.ms-office;application/x-ole-storage;application/cdfv2",
     "text/plain;application/x-empty"},
};

static const char *const programs[] = {"mugaika-worker", "mugaika-flatten", "mugaika-pdf"};
static char *program_paths[G_N_ELEMENTS(programs)];
static GMutex init_lock;

bool mg_cdr_type_in(const char *globs, const char *type)
{
    char **v = g_strsplit(globs, ";", -1);
    bool hit = false;

    for (char **p = v; *p != NULL && !hit; p++)
        hit = g_pattern_match_simple(*p, type);
    g_strfreev(v);
    return hit;
}

const struct mg_cdr_handler *mg_cdr_find(enum mg_action a, const char *detected)
{
    if (detected == NULL)
        return NULL;
    for (size_t i = 0; i < G_N_ELEMENTS(handlers); i++)
        if (handlers[i].action == a && mg_cdr_type_in(handlers[i].in_types, detected))
            return &handlers[i];
    return NULL;
}

/* The build tree the running program belongs to, or NULL. */
static char *build_tree_dir(const char *program)
{
#ifdef MUGAIKA_BUILD_ROOT
    char *exe = g_file_read_link("/proc/self/exe", NULL);
    char *dir = NULL;

    if (exe != NULL && g_str_has_prefix(exe, MUGAIKA_BUILD_ROOT "/"))
        dir = g_build_filename(MUGAIKA_BUILD_ROOT, "src",
                               strcmp(program, "mugaika-pdf") == 0 ? "pdf" : "worker", NULL);
    g_free(exe);
    return dir;
#else
    (void)program;
    return NULL;
#endif
}

bool mg_cdr_init(const char *dir, GError **err)
{
    bool ok = true;

    g_mutex_lock(&init_lock);
    for (size_t i = 0; i < G_N_ELEMENTS(programs) && ok; i++) {
        char *d = NULL, *path;
        if (dir != NULL)
            d = g_strdup(dir);
        else if (g_getenv("MUGAIKA_WORKER_DIR") != NULL)
            d = g_strdup(g_getenv("MUGAIKA_WORKER_DIR"));
        else if ((d = build_tree_dir(programs[i])) == NULL)
            d = g_strdup(MUGAIKA_LIBEXECDIR);
        path = g_build_filename(d, programs[i], NULL);
        g_free(d);
        if (access(path, X_OK) != 0) {
            g_set_error(err, G_FILE_ERROR, g_file_error_from_errno(errno),
                        "CDR worker %s: %s (set worker-dir in the configuration)", path,
                        g_strerror(errno));
            g_free(path);
            ok = false;
            break;
        }
        g_free(program_paths[i]);
        program_paths[i] = path;
    }
    g_mutex_unlock(&init_lock);
    return ok;
}

const char *mg_cdr_program_path(const char *program)
{
    const char *p = NULL;

    g_mutex_lock(&init_lock);
    for (size_t i = 0; i < G_N_ELEMENTS(programs); i++)
        if (strcmp(programs[i], program) == 0)
            p = program_paths[i];
    g_mutex_unlock(&init_lock);
    return p;
}

void mg_cdr_limits_default(struct mg_cdr_limits *l)
{
    l->cpu_seconds = 30;
    l->address_space = (uint64_t)1 << 30;
    l->deadline_us = 60 * G_USEC_PER_SEC;
    l->max_output = (uint64_t)200 << 20;
    l->max_outputs = 1000;
}

const char *mg_cdr_status_name(enum mg_cdr_status st)
{
    static const char *const names[] = {"ok",    "fail",    "encrypted", "limit",
                                        "crash", "timeout", "error"};

    return (unsigned)st < G_N_ELEMENTS(names) ? names[st] : "error";
}

/* --- reading records ------------------------------------------------------ */

struct mg_cdr_reader {
    const struct mg_cdr_sink *sink;
    void *u;
    const struct mg_cdr_limits *lim;
    unsigned char hdr[5];
    size_t hdr_got;
    GByteArray *body; /* JSON records */
    uint32_t need;    /* bytes of the current record still to come */
    char tag;
    bool in_output;
    unsigned outputs;
    uint64_t out_bytes;
    bool got_z;
    enum mg_cdr_status z_status;
    char *z_reason;
    /* why reading stopped early */
    enum mg_cdr_status stop;
    char *stop_reason;
};

static void stop(struct mg_cdr_reader *r, enum mg_cdr_status st, const char *fmt, ...)
    G_GNUC_PRINTF(3, 4);
static void stop(struct mg_cdr_reader *r, enum mg_cdr_status st, const char *fmt, ...)
{
    va_list ap;

    if (r->stop != MG_CDR_OK)
        return;
    r->stop = st;
    va_start(ap, fmt);
    r->stop_reason = g_strdup_vprintf(fmt, ap);
    va_end(ap);
}

/* JSON nesting deeper than a record needs (json-glib recurses without a
 * limit: a worker could exhaust the daemon's stack) */
static bool too_deep(const unsigned char *p, size_t len)
{
    unsigned depth = 0;
    bool in_str = false;

    for (size_t i = 0; i < len; i++) {
        if (in_str) {
            if (p[i] == '\\')
                i++;
            else if (p[i] == '"')
                in_str = false;
        } else if (p[i] == '"') {
            in_str = true;
        } else if (p[i] == '{' || p[i] == '[') {
            if (++depth > 4)
                return true;
        } else if ((p[i] == '}' || p[i] == ']') && depth > 0) {
            depth--;
        }
    }
    return false;
}

static JsonObject *parse_obj(struct mg_cdr_reader *r, JsonParser *p)
{
    JsonNode *root;

    /* the worker writes valid UTF-8 JSON objects (proto.c); anything
     * else did not come from a healthy worker */
    if (r->body->len == 0 || too_deep(r->body->data, r->body->len) ||
        !g_utf8_validate((const char *)r->body->data, (gssize)r->body->len, NULL) ||
        !json_parser_load_from_data(p, (const char *)r->body->data, (gssize)r->body->len, NULL) ||
        (root = json_parser_get_root(p)) == NULL || !JSON_NODE_HOLDS_OBJECT(root)) {
        stop(r, MG_CDR_CRASH, "worker sent a malformed '%c' record", r->tag);
        return NULL;
    }
    return json_node_get_object(root);
}

static const char *obj_str(JsonObject *o, const char *key)
{
    JsonNode *n = json_object_get_member(o, key);
    const char *v =
        n != NULL && JSON_NODE_HOLDS_VALUE(n) && json_node_get_value_type(n) == G_TYPE_STRING
            ? json_node_get_string(n)
            : NULL;

    /* escapes can still make invalid UTF-8 (a lone surrogate): ignored */
    return v != NULL && g_utf8_validate(v, -1, NULL) ? v : NULL;
}

static void json_record(struct mg_cdr_reader *r)
{
    JsonParser *p = json_parser_new();
    JsonObject *o = parse_obj(r, p);

    if (o == NULL) {
        g_object_unref(p);
        return;
    }
    if (r->tag == 'O') {
        unsigned flags = 0;
        JsonNode *fn = json_object_get_member(o, "flags");
        if (r->in_output) {
            stop(r, MG_CDR_CRASH, "worker began an output inside another");
        } else if (++r->outputs > r->lim->max_outputs) {
            stop(r, MG_CDR_LIMIT, "more than %u outputs", r->lim->max_outputs);
        } else {
            if (fn != NULL && JSON_NODE_HOLDS_ARRAY(fn)) {
                JsonArray *a = json_node_get_array(fn);
                for (guint i = 0; i < json_array_get_length(a); i++) {
                    JsonNode *e = json_array_get_element(a, i);
                    const char *f = e != NULL && JSON_NODE_HOLDS_VALUE(e) &&
                                            json_node_get_value_type(e) == G_TYPE_STRING
                                        ? json_node_get_string(e)
                                        : NULL;
                    if (f == NULL)
                        continue;
                    if (strcmp(f, "encrypted") == 0)
                        flags |= MG_CDR_OUT_ENCRYPTED;
                    else if (strcmp(f, "name-mismatch") == 0)
                        flags |= MG_CDR_OUT_NAME_MISMATCH;
                    else if (strcmp(f, "name-changed") == 0)
                        flags |= MG_CDR_OUT_NAME_CHANGED;
                }
            }
            r->in_output = true;
            if (!r->sink->begin(r->u, obj_str(o, "name"), obj_str(o, "type"), flags))
                stop(r, MG_CDR_ERROR, "the output could not be stored");
        }
    } else if (r->tag == 'N') {
        const char *kind = obj_str(o, "kind"), *text = obj_str(o, "text");
        if (r->sink->note != NULL && kind != NULL && text != NULL)
            r->sink->note(r->u, kind, text);
    } else if (r->tag == 'Z') {
        const char *st = obj_str(o, "status"), *why = obj_str(o, "reason");
        r->got_z = true;
        r->z_status = st == NULL                     ? MG_CDR_CRASH
                      : strcmp(st, "ok") == 0        ? MG_CDR_OK
                      : strcmp(st, "encrypted") == 0 ? MG_CDR_ENCRYPTED
                      : strcmp(st, "limit") == 0     ? MG_CDR_LIMIT
                                                     : MG_CDR_FAIL;
        r->z_reason = g_strdup(why != NULL ? why : st);
        if (r->in_output && r->z_status == MG_CDR_OK)
            stop(r, MG_CDR_CRASH, "worker ended inside an output");
    }
    g_object_unref(p);
}

/* Feeds bytes of the record stream. */
bool mg_cdr_reader_feed(struct mg_cdr_reader *r, const void *buf, size_t len)
{
    const unsigned char *p = buf;

    while (len > 0 && r->stop == MG_CDR_OK) {
        if (r->got_z) {
            stop(r, MG_CDR_CRASH, "worker wrote after its last record");
            return r->stop == MG_CDR_OK;
        }
        if (r->hdr_got < sizeof r->hdr) {
            size_t n = MIN(len, sizeof r->hdr - r->hdr_got);
            memcpy(r->hdr + r->hdr_got, p, n);
            r->hdr_got += n;
            p += n;
            len -= n;
            if (r->hdr_got < sizeof r->hdr)
                return r->stop == MG_CDR_OK;
            r->tag = (char)r->hdr[0];
            r->need = (uint32_t)r->hdr[1] << 24 | (uint32_t)r->hdr[2] << 16 |
                      (uint32_t)r->hdr[3] << 8 | r->hdr[4];
            g_byte_array_set_size(r->body, 0);
            if (strchr("ODENZ", r->tag) == NULL || r->tag == '\0') {
                stop(r, MG_CDR_CRASH, "worker sent an unknown record");
                return r->stop == MG_CDR_OK;
            }
            if (r->tag == 'D' ? (r->need > REC_DATA_MAX || !r->in_output)
                              : (r->need > REC_JSON_MAX || (r->tag == 'E' && r->need != 0))) {
                stop(r, MG_CDR_CRASH, "worker sent a malformed '%c' record", r->tag);
                return r->stop == MG_CDR_OK;
            }
            if (r->tag == 'D') {
                r->out_bytes += r->need;
                if (r->out_bytes > r->lim->max_output) {
                    stop(r, MG_CDR_LIMIT, "outputs larger than %" G_GUINT64_FORMAT " bytes",
                         r->lim->max_output);
                    return r->stop == MG_CDR_OK;
                }
            }
        }
        if (r->need > 0) {
            size_t n = MIN(len, (size_t)r->need);
            if (r->tag == 'D') {
                if (!r->sink->data(r->u, p, n)) {
                    stop(r, MG_CDR_ERROR, "the output could not be stored");
                    return r->stop == MG_CDR_OK;
                }
            } else {
                g_byte_array_append(r->body, p, (guint)n);
            }
            r->need -= (uint32_t)n;
            p += n;
            len -= n;
            if (r->need > 0)
                return r->stop == MG_CDR_OK;
        }
        /* a whole record */
        r->hdr_got = 0;
        if (r->tag == 'E') {
            if (!r->in_output) {
                stop(r, MG_CDR_CRASH, "worker ended an output it did not begin");
                return r->stop == MG_CDR_OK;
            }
            r->in_output = false;
            if (!r->sink->end(r->u))
                stop(r, MG_CDR_ERROR, "the output could not be stored");
        } else if (r->tag != 'D') {
            json_record(r);
        }
    }
    return r->stop == MG_CDR_OK;
}

struct mg_cdr_reader *mg_cdr_reader_new(const struct mg_cdr_limits *lim,
                                        const struct mg_cdr_sink *sink, void *u)
{
    struct mg_cdr_reader *r = g_new0(struct mg_cdr_reader, 1);

    r->sink = sink;
    r->u = u;
    r->lim = lim;
    r->body = g_byte_array_new();
    return r;
}

enum mg_cdr_status mg_cdr_reader_end(struct mg_cdr_reader *r, bool exited_zero, char **reason)
{
    enum mg_cdr_status st;

    *reason = NULL;
    if (r->stop != MG_CDR_OK) {
        st = r->stop;
        *reason = g_strdup(r->stop_reason);
    } else if (!r->got_z || !exited_zero) {
        st = MG_CDR_CRASH;
    } else if (r->in_output && r->z_status == MG_CDR_OK) {
        /* a handler that gives up may stop half-way (mgw.h); one that
         * says ok must have ended its output */
        st = MG_CDR_CRASH;
        *reason = g_strdup("worker ended inside an output");
    } else if (r->hdr_got > 0 || r->need > 0) {
        st = MG_CDR_CRASH;
        *reason = g_strdup("worker ended inside a record");
    } else {
        st = r->z_status;
        if (st != MG_CDR_OK)
            *reason = g_strdup(r->z_reason);
    }
    return st;
}

void mg_cdr_reader_free(struct mg_cdr_reader *r)
{
    if (r == NULL)
        return;
    g_byte_array_unref(r->body);
    g_free(r->z_reason);
    g_free(r->stop_reason);
    g_free(r);
}

/* --- the process ---------------------------------------------------------- */

static void kill_wait(pid_t pid, int *status)
{
    /* the worker leads its own process group: anything it managed to
     * start goes too */
    (void)kill(-pid, SIGKILL);
    (void)kill(pid, SIGKILL);
    while (waitpid(pid, status, 0) < 0 && errno == EINTR)
        ;
}

static char *describe_exit(int status, const char *err_text)
{
    GString *g = g_string_new(NULL);

    if (WIFSIGNALED(status)) {
        int sig = WTERMSIG(status);
        if (sig == SIGXCPU || sig == SIGKILL)
            g_string_append_printf(g, "worker killed by signal %d (CPU limit)", sig);
        else
            g_string_append_printf(g, "worker crashed (signal %d)", sig);
    } else if (WIFEXITED(status)) {
        g_string_append_printf(g, "worker exited with status %d without a result",
                               WEXITSTATUS(status));
    } else {
        g_string_append(g, "worker ended abnormally");
    }
    if (err_text != NULL && *err_text != '\0') {
        char *line = g_strndup(err_text, strcspn(err_text, "\n"));
        g_string_append_printf(g, ": %s", line);
        g_free(line);
    }
    return g_string_free(g, FALSE);
}

enum mg_cdr_status mg_cdr_run(const struct mg_cdr_handler *h, const char *const *opts, int in_fd,
                              const struct mg_cdr_limits *lim, const struct mg_cdr_sink *sink,
                              void *u, char **reason)
{
    return mg_cdr_run_cancel(h, opts, in_fd, lim, sink, u, -1, reason);
}

enum mg_cdr_status mg_cdr_run_cancel(const struct mg_cdr_handler *h, const char *const *opts,
                                     int in_fd, const struct mg_cdr_limits *lim,
                                     const struct mg_cdr_sink *sink, void *u, int cancel_fd,
                                     char **reason)
{
    struct mg_cdr_limits dl;
    const char *path = mg_cdr_program_path(h->program);
    GPtrArray *argv = g_ptr_array_new_with_free_func(g_free);
    posix_spawn_file_actions_t fa;
    int out[2] = {-1, -1}, errp[2] = {-1, -1};
    pid_t pid = -1;
    int status = 0, rc;
    struct mg_cdr_reader *r = NULL;
    GString *err_text = g_string_new(NULL);
    enum mg_cdr_status st;
    gint64 deadline;
    bool timed_out = false;
    char *password = NULL;
    GPtrArray *envp = NULL;

    *reason = NULL;
    if (lim == NULL) {
        mg_cdr_limits_default(&dl);
        lim = &dl;
    }
    if (path == NULL) {
        GError *e = NULL;
        if (!mg_cdr_init(NULL, &e)) {
            *reason = g_strdup(e->message);
            g_error_free(e);
            g_ptr_array_unref(argv);
            g_string_free(err_text, TRUE);
            return MG_CDR_ERROR;
        }
        path = mg_cdr_program_path(h->program);
    }
    g_ptr_array_add(argv, g_strdup(path));
    g_ptr_array_add(argv, g_strdup(h->name));
    g_ptr_array_add(argv, g_strdup_printf("cpu=%u", lim->cpu_seconds));
    g_ptr_array_add(argv, g_strdup_printf("as=%" G_GUINT64_FORMAT, lim->address_space));
    for (size_t i = 0; opts != NULL && opts[i] != NULL; i++) {
        if (g_str_has_prefix(opts[i], "password=")) {
            /* never on the command line: any user can read that */
            g_free(password);
            password = g_strdup(opts[i] + strlen("password="));
        } else {
            g_ptr_array_add(argv, g_strdup(opts[i]));
        }
    }
    g_ptr_array_add(argv, NULL);
    if (password != NULL) {
        envp = g_ptr_array_new_with_free_func(g_free);
        for (char **e = environ; *e != NULL; e++)
            if (!g_str_has_prefix(*e, MG_CDR_PASSWORD_ENV "="))
                g_ptr_array_add(envp, g_strdup(*e));
        g_ptr_array_add(envp, g_strconcat(MG_CDR_PASSWORD_ENV "=", password, NULL));
        g_ptr_array_add(envp, NULL);
    }

    r = mg_cdr_reader_new(lim, sink, u);

    if (pipe2(out, O_CLOEXEC) != 0 || pipe2(errp, O_CLOEXEC) != 0) {
        *reason = g_strdup_printf("pipe: %s", g_strerror(errno));
        st = MG_CDR_ERROR;
        goto out;
    }
    if (lseek(in_fd, 0, SEEK_SET) < 0) {
        *reason = g_strdup_printf("item file: %s", g_strerror(errno));
        st = MG_CDR_ERROR;
        goto out;
    }
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, in_fd, 0);
    posix_spawn_file_actions_adddup2(&fa, out[1], 1);
    posix_spawn_file_actions_adddup2(&fa, errp[1], 2);
    posix_spawn_file_actions_addclosefrom_np(&fa, 3);
    {
        /* the worker starts with default signal handling and an empty mask */
        posix_spawnattr_t at;
        sigset_t none, all;
        posix_spawnattr_init(&at);
        sigemptyset(&none);
        sigfillset(&all);
        posix_spawnattr_setsigmask(&at, &none);
        posix_spawnattr_setsigdefault(&at, &all);
        /* a session of its own: a process group (killed as a whole) and
         * no controlling terminal to type into */
        posix_spawnattr_setflags(&at, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF |
                                          POSIX_SPAWN_SETSID);
        rc = posix_spawn(&pid, path, &fa, &at, (char *const *)argv->pdata,
                         envp != NULL ? (char *const *)envp->pdata : environ);
        posix_spawnattr_destroy(&at);
    }
    posix_spawn_file_actions_destroy(&fa);
    close(out[1]);
    close(errp[1]);
    out[1] = errp[1] = -1;
    if (rc != 0) {
        *reason = g_strdup_printf("cannot start %s: %s", path, g_strerror(rc));
        pid = -1;
        st = MG_CDR_ERROR;
        goto out;
    }

    deadline = g_get_monotonic_time() + lim->deadline_us;
    while (out[0] >= 0 || errp[0] >= 0) {
        struct pollfd pf[3];
        nfds_t n = 0;
        gint64 left = deadline - g_get_monotonic_time();
        unsigned char buf[65536];

        if (left <= 0) {
            timed_out = true;
            break;
        }
        if (out[0] >= 0)
            pf[n++] = (struct pollfd){.fd = out[0], .events = POLLIN};
        if (errp[0] >= 0)
            pf[n++] = (struct pollfd){.fd = errp[0], .events = POLLIN};
        if (cancel_fd >= 0)
            pf[n++] = (struct pollfd){.fd = cancel_fd, .events = POLLIN};
        rc = poll(pf, n, (int)MIN(left / 1000 + 1, (gint64)G_MAXINT));
        if (rc < 0 && errno == EINTR)
            continue;
        if (rc < 0) {
            stop(r, MG_CDR_ERROR, "poll: %s", g_strerror(errno));
            break;
        }
        for (nfds_t i = 0; i < n; i++) {
            ssize_t got;
            if (pf[i].revents == 0)
                continue;
            if (pf[i].fd == cancel_fd) {
                stop(r, MG_CDR_ERROR, "the run is no longer wanted");
                break;
            }
            got = read(pf[i].fd, buf, sizeof buf);
            if (got < 0 && (errno == EINTR || errno == EAGAIN))
                continue;
            if (got <= 0) {
                if (pf[i].fd == out[0]) {
                    close(out[0]);
                    out[0] = -1;
                } else {
                    close(errp[0]);
                    errp[0] = -1;
                }
                continue;
            }
            if (pf[i].fd == out[0])
                mg_cdr_reader_feed(r, buf, (size_t)got);
            else if (err_text->len < STDERR_KEEP)
                g_string_append_len(err_text, (const char *)buf,
                                    MIN(got, (ssize_t)(STDERR_KEEP - err_text->len)));
        }
        if (r->stop != MG_CDR_OK)
            break;
    }
    if (timed_out || r->stop != MG_CDR_OK) {
        kill_wait(pid, &status);
    } else {
        /* both pipes closed: the worker is exiting; still bounded */
        for (;;) {
            pid_t w = waitpid(pid, &status, WNOHANG);
            if (w == pid)
                break;
            if (w < 0 && errno != EINTR) {
                status = 0;
                break;
            }
            if (g_get_monotonic_time() > deadline) {
                timed_out = true;
                kill_wait(pid, &status);
                break;
            }
            g_usleep(1000);
        }
    }
    pid = -1;

    if (timed_out) {
        st = MG_CDR_TIMEOUT;
        *reason = g_strdup_printf("worker killed after %" G_GINT64_FORMAT " s (deadline)",
                                  lim->deadline_us / G_USEC_PER_SEC);
    } else {
        bool zero = WIFEXITED(status) && WEXITSTATUS(status) == 0;
        st = mg_cdr_reader_end(r, zero, reason);
        if (st == MG_CDR_CRASH && *reason == NULL)
            *reason = describe_exit(status, err_text->str);
    }
out:
    if (pid > 0)
        kill_wait(pid, &status);
    for (int i = 0; i < 2; i++) {
        if (out[i] >= 0)
            close(out[i]);
        if (errp[i] >= 0)
            close(errp[i]);
    }
    mg_cdr_reader_free(r);
    g_string_free(err_text, TRUE);
    g_ptr_array_unref(argv);
    if (password != NULL) {
        /* the last entry before NULL is the password's */
        char *pe = g_ptr_array_index(envp, envp->len - 2);
        explicit_bzero(pe, strlen(pe));
        explicit_bzero(password, strlen(password));
        g_free(password);
        g_ptr_array_unref(envp);
    }
    if (st != MG_CDR_OK && *reason == NULL)
        *reason = g_strdup(mg_cdr_status_name(st));
    return st;
}
