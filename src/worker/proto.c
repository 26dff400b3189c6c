/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * NAME
 *	proto 3
 * SUMMARY
 *	the worker side of the CDR worker protocol
 * DESCRIPTION
 *	See mgw.h for the record format. Records are written with plain
 *	write(2) on fd 1; a failed write (the parent has gone, or killed
 *	the pipe) makes every later output call fail, so a handler stops
 *	soon after.
 */
#include <errno.h>
#include <malloc.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "worker/mgw.h"

struct mgw {
    GHashTable *opts; /* char * -> char * */
    uint64_t in_size;
    bool in_output;
    bool broken; /* fd 1 failed */
    char *reason;
};

const char *mgw_status_name(enum mgw_status st)
{
    switch (st) {
    case MGW_OK:
        return "ok";
    case MGW_FAIL:
        return "fail";
    case MGW_ENCRYPTED:
        return "encrypted";
    case MGW_LIMIT:
        return "limit";
    }
    return "fail";
}

static bool write_all(struct mgw *w, const void *buf, size_t len)
{
    const char *p = buf;

    while (len > 0 && !w->broken) {
        ssize_t n = write(1, p, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            w->broken = true;
            break;
        }
        p += n;
        len -= (size_t)n;
    }
    return !w->broken;
}

static bool record(struct mgw *w, char tag, const void *buf, size_t len)
{
    unsigned char h[5];

    if (w->broken || len > UINT32_MAX)
        return false;
    h[0] = (unsigned char)tag;
    h[1] = (unsigned char)(len >> 24);
    h[2] = (unsigned char)(len >> 16);
    h[3] = (unsigned char)(len >> 8);
    h[4] = (unsigned char)len;
    return write_all(w, h, sizeof h) && (len == 0 || write_all(w, buf, len));
}

/* The JSON of records is written here rather than with json-glib: its
 * GObject and GIO dependencies were a millisecond of every worker's
 * start (loading and binding seven more libraries). */

/* s (valid UTF-8, or NULL) as a JSON string, or null. */
static void json_str(GString *g, const char *s)
{
    if (s == NULL) {
        g_string_append(g, "null");
        return;
    }
    g_string_append_c(g, '"');
    for (const unsigned char *p = (const unsigned char *)s; *p != '\0'; p++) {
        switch (*p) {
        case '"':
            g_string_append(g, "\\\"");
            break;
        case '\\':
            g_string_append(g, "\\\\");
            break;
        case '\n':
            g_string_append(g, "\\n");
            break;
        case '\r':
            g_string_append(g, "\\r");
            break;
        case '\t':
            g_string_append(g, "\\t");
            break;
        default:
            if (*p < 0x20 || *p == 0x7f)
                g_string_append_printf(g, "\\u%04x", *p);
            else
                g_string_append_c(g, (char)*p);
        }
    }
    g_string_append_c(g, '"');
}

/* ,"key":"value" (or without the comma for the first member) */
static void json_member(GString *g, const char *key, const char *value)
{
    if (g->len > 1)
        g_string_append_c(g, ',');
    json_str(g, key);
    g_string_append_c(g, ':');
    json_str(g, value);
}

/* Sends the object in g (opened with "{"), closing it; frees g. */
static bool record_json(struct mgw *w, char tag, GString *g)
{
    bool ok;

    g_string_append_c(g, '}');
    ok = record(w, tag, g->str, g->len);
    g_string_free(g, TRUE);
    return ok;
}

/* Strings in records must be UTF-8 (JSON); anything else is replaced. */
static char *valid_utf8(const char *s)
{
    return s == NULL ? NULL : g_utf8_make_valid(s, -1);
}

int mgw_input_fd(const struct mgw *w)
{
    (void)w;
    return 0;
}

uint64_t mgw_input_size(const struct mgw *w)
{
    return w->in_size;
}

unsigned char *mgw_input_read_all(struct mgw *w, uint64_t max, size_t *len)
{
    unsigned char *buf;
    size_t got = 0;

    *len = 0;
    if (w->in_size > max || w->in_size > SIZE_MAX - 1) {
        mgw_note(w, "defect",
                 "input of %" G_GUINT64_FORMAT " bytes is larger than %" G_GUINT64_FORMAT,
                 w->in_size, max);
        return NULL;
    }
    buf = g_malloc((size_t)w->in_size + 1);
    while (got < (size_t)w->in_size) {
        ssize_t n = pread(0, buf + got, (size_t)w->in_size - got, (off_t)got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            mgw_note(w, "defect", "input unreadable: %s", n < 0 ? g_strerror(errno) : "short");
            g_free(buf);
            return NULL;
        }
        got += (size_t)n;
    }
    buf[got] = '\0';
    *len = got;
    return buf;
}

const char *mgw_option(const struct mgw *w, const char *key)
{
    return g_hash_table_lookup(w->opts, key);
}

uint64_t mgw_option_u64(const struct mgw *w, const char *key, uint64_t def)
{
    const char *v = mgw_option(w, key);
    guint64 n;

    if (v == NULL || !g_ascii_string_to_unsigned(v, 10, 0, G_MAXUINT64, &n, NULL))
        return def;
    return n;
}

bool mgw_option_bool(const struct mgw *w, const char *key, bool def)
{
    const char *v = mgw_option(w, key);

    if (v == NULL)
        return def;
    return strcmp(v, "true") == 0 || strcmp(v, "yes") == 0 || strcmp(v, "1") == 0;
}

bool mgw_out_begin(struct mgw *w, const char *name, const char *type, unsigned flags)
{
    GString *g;
    char *n = valid_utf8(name), *t = valid_utf8(type);
    const char *sep = "";

    if (w->in_output && !mgw_out_end(w)) {
        g_free(n);
        g_free(t);
        return false;
    }
    g = g_string_new("{");
    json_member(g, "name", n);
    json_member(g, "type", t);
    g_string_append(g, ",\"flags\":[");
    if (flags & MGW_OUT_ENCRYPTED) {
        g_string_append(g, "\"encrypted\"");
        sep = ",";
    }
    if (flags & MGW_OUT_NAME_MISMATCH) {
        g_string_append_printf(g, "%s\"name-mismatch\"", sep);
        sep = ",";
    }
    if (flags & MGW_OUT_NAME_CHANGED)
        g_string_append_printf(g, "%s\"name-changed\"", sep);
    g_string_append_c(g, ']');
    g_free(n);
    g_free(t);
    w->in_output = true;
    return record_json(w, 'O', g);
}

bool mgw_out_write(struct mgw *w, const void *buf, size_t len)
{
    const char *p = buf;

    if (!w->in_output)
        return false;
    while (len > 0) {
        size_t n = MIN(len, (size_t)MGW_DATA_MAX);
        if (!record(w, 'D', p, n))
            return false;
        p += n;
        len -= n;
    }
    return true;
}

bool mgw_out_end(struct mgw *w)
{
    if (!w->in_output)
        return false;
    w->in_output = false;
    return record(w, 'E', NULL, 0);
}

bool mgw_out_file(struct mgw *w, const char *name, const char *type, const void *buf, size_t len)
{
    return mgw_out_begin(w, name, type, 0) && mgw_out_write(w, buf, len) && mgw_out_end(w);
}

bool mgw_name_char_bad(gunichar ch)
{
    switch (g_unichar_type(ch)) {
    case G_UNICODE_CONTROL:
    case G_UNICODE_FORMAT:
    case G_UNICODE_LINE_SEPARATOR:
    case G_UNICODE_PARAGRAPH_SEPARATOR:
    case G_UNICODE_SURROGATE:
        return true;
    default:
        break;
    }
    /* the explicit ranges repeat what Cf holds, in case GLib's Unicode
     * tables are older than the characters */
    return ch < 0x20 || (ch >= 0x7f && ch <= 0x9f) || ch == 0x061c ||
           (ch >= 0x200b && ch <= 0x200f) || (ch >= 0x202a && ch <= 0x202e) ||
           (ch >= 0x2060 && ch <= 0x206f) || ch == 0xfeff || (ch >= 0xfff9 && ch <= 0xfffb);
}

char *mgw_name_clean(const char *in)
{
    GString *clean = g_string_sized_new(strlen(in) + 1);

    for (const char *p = in; *p != '\0'; p = g_utf8_next_char(p)) {
        gunichar ch = g_utf8_get_char(p);
        if (ch == '\\')
            g_string_append_c(clean, '/');
        else if (!mgw_name_char_bad(ch))
            g_string_append_unichar(clean, ch);
    }
    return g_string_free(clean, FALSE);
}

void mgw_note(struct mgw *w, const char *kind, const char *fmt, ...)
{
    GString *g = g_string_new("{");
    va_list ap;
    char *text, *valid, *k = valid_utf8(kind);

    va_start(ap, fmt);
    text = g_strdup_vprintf(fmt, ap);
    va_end(ap);
    valid = valid_utf8(text);
    json_member(g, "kind", k);
    json_member(g, "text", valid);
    record_json(w, 'N', g);
    g_free(k);
    g_free(text);
    g_free(valid);
}

void mgw_reason(struct mgw *w, const char *fmt, ...)
{
    va_list ap;

    g_free(w->reason);
    va_start(ap, fmt);
    w->reason = g_strdup_vprintf(fmt, ap);
    va_end(ap);
}

static bool done(struct mgw *w, enum mgw_status st)
{
    GString *g = g_string_new("{");
    char *r = valid_utf8(w->reason);

    json_member(g, "status", mgw_status_name(st));
    json_member(g, "reason", r);
    g_free(r);
    return record_json(w, 'Z', g);
}

static void usage(const char *prog, const struct mgw_handler *table, size_t n)
{
    fprintf(stderr, "usage: %s HANDLER [KEY=VALUE...] <item >records\nhandlers:", prog);
    for (size_t i = 0; i < n; i++)
        fprintf(stderr, " %s", table[i].name);
    fputc('\n', stderr);
}

/* Moves the password from the environment into the options, wiping
 * the bytes in place: /proc/PID/environ shows the original block. */
static void password_option(struct mgw *w)
{
    char *v = getenv(MGW_PASSWORD_ENV);

    g_hash_table_remove(w->opts, "password"); /* only ever from the environment */
    if (v == NULL)
        return;
    g_hash_table_replace(w->opts, g_strdup("password"), g_strdup(v));
    explicit_bzero(v, strlen(v));
    unsetenv(MGW_PASSWORD_ENV);
}

const char *mgw_built_with;

int mgw_main(int argc, char **argv, const struct mgw_handler *table, size_t n)
{
    struct mgw w;
    const struct mgw_handler *h = NULL;
    struct stat st;
    enum mgw_status status;
    GError *e = NULL;
    int rc;

    memset(&w, 0, sizeof w);
    /* One item, then exit: freed memory is kept for the next allocation
     * instead of being given back to the kernel (glibc trims the heap
     * and unmaps large blocks on free), so that the same pages are not
     * faulted in again and again; RLIMIT_AS still bounds the total. A
     * 5 MB PDF's disarm took 10% less CPU. The cost: blocks under 32 MiB
     * come from the heap, whose holes count against RLIMIT_AS, so an
     * item that fragments memory badly reaches worker-memory somewhat
     * sooner (then it ends "limit", as any item that needs too much;
     * glibc's default raises its threshold the same way once large
     * blocks have been freed). */
    mallopt(M_TRIM_THRESHOLD, 256 << 20);
    mallopt(M_MMAP_THRESHOLD, 32 << 20);
    /* the parent reads the status from the records, never from a signal */
    signal(SIGPIPE, SIG_IGN);
    signal(SIGXFSZ, SIG_IGN);
    if (argc < 2) {
        usage(argv[0], table, n);
        return 64;
    }
    if (strcmp(argv[1], "--built-with") == 0) {
        /* for `mugaika config check`: nothing is read, nothing confined */
        if (mgw_built_with != NULL)
            fputs(mgw_built_with, stdout);
        return fflush(stdout) == 0 ? 0 : 74;
    }
    for (size_t i = 0; i < n; i++)
        if (strcmp(argv[1], table[i].name) == 0)
            h = &table[i];
    if (h == NULL) {
        fprintf(stderr, "%s: unknown handler '%s'\n", argv[0], argv[1]);
        usage(argv[0], table, n);
        return 64;
    }
    w.opts = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
    for (int i = 2; i < argc; i++) {
        const char *eq = strchr(argv[i], '=');
        if (eq == NULL || eq == argv[i]) {
            fprintf(stderr, "%s: option '%s' is not KEY=VALUE\n", argv[0], argv[i]);
            g_hash_table_unref(w.opts);
            return 64;
        }
        g_hash_table_replace(w.opts, g_strndup(argv[i], (gsize)(eq - argv[i])), g_strdup(eq + 1));
    }
    password_option(&w);
    /* outputs never depend on the daemon's time zone (zip writers turn
     * times into local DOS times): a POSIX zone string, no file read */
    setenv("TZ", "UTC0", 1);
    tzset();
    if (fstat(0, &st) != 0 || !S_ISREG(st.st_mode)) {
        fprintf(stderr, "%s: the item (fd 0) must be a regular file\n", argv[0]);
        g_hash_table_unref(w.opts);
        return 66;
    }
    w.in_size = (uint64_t)st.st_size;
    if (!mgw_sandbox((unsigned)mgw_option_u64(&w, "cpu", 30),
                     mgw_option_u64(&w, "as", (uint64_t)1024 * 1024 * 1024),
                     (unsigned)mgw_option_u64(&w, "nofile", 64), &e)) {
        fprintf(stderr, "%s: sandbox: %s\n", argv[0], e->message);
        g_error_free(e);
        g_hash_table_unref(w.opts);
        return 71;
    }
    status = h->fn(&w);
    if (w.in_output && status == MGW_OK)
        mgw_out_end(&w);
    if (status != MGW_OK && w.reason == NULL)
        mgw_reason(&w, "%s", mgw_status_name(status));
    rc = done(&w, status) ? 0 : 74;
    g_free(w.reason);
    g_hash_table_unref(w.opts);
    return rc;
}

enum mgw_status mgw_run_unconfined(mgw_handler_fn fn, int nopts, char **opts)
{
    struct mgw w;
    struct stat st;
    enum mgw_status status;

    memset(&w, 0, sizeof w);
    if (fstat(0, &st) != 0 || !S_ISREG(st.st_mode))
        return MGW_FAIL;
    w.in_size = (uint64_t)st.st_size;
    w.opts = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
    for (int i = 0; i < nopts; i++) {
        const char *eq = strchr(opts[i], '=');
        if (eq != NULL && eq != opts[i])
            g_hash_table_replace(w.opts, g_strndup(opts[i], (gsize)(eq - opts[i])),
                                 g_strdup(eq + 1));
    }
    status = fn(&w);
    if (w.in_output && status == MGW_OK)
        mgw_out_end(&w);
    done(&w, status);
    g_free(w.reason);
    g_hash_table_unref(w.opts);
    return status;
}

char *mgw_text_name(const struct mgw *w)
{
    const char *name = mgw_option(w, "name");
    const char *base, *dot;

    if (name == NULL)
        return g_strdup("document.txt");
    base = strrchr(name, '/');
    base = base != NULL ? base + 1 : name;
    dot = strrchr(base, '.');
    if (dot == NULL)
        dot = base + strlen(base);
    if (dot == base)
        return g_strdup("document.txt");
    return g_strdup_printf("%.*s.txt", (int)(dot - base), base);
}
