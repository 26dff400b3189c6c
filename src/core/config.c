/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * NAME
 *	config 3
 * SUMMARY
 *	the configuration file
 * SYNOPSIS
 *	#include <mugaika/config.h>
 *
 *	bool mg_config_load(const char *path, struct mg_config *out, GError **err);
 *	void mg_config_clear(struct mg_config *c);
 *	const char *mg_config_log_level_name(int level);
 *	void mg_config_sanitize_opts(const struct mg_config *c,
 *				     struct mg_sanitize_opts *o);
 * DESCRIPTION
 *	One table declares every key of the [mugaika] group: its kind,
 *	where it goes in struct mg_config and, for numbers, its range; a
 *	second one the keys of the [watch NAME] groups of mugaika-watch
 *	(one per in -> out pair, struct mg_config_watch).
 *	mg_config_load fills the defaults, then reads the file: GKeyFile
 *	parses the values; the text is scanned once more for the line of
 *	each key, which GKeyFile does not report, so that every error
 *	names file, line and key.
 *
 *	mg_config_sanitize_opts copies the pipeline settings onto options
 *	that mg_sanitize_opts_default filled (strings borrowed from c).
 * LIMITS
 *	Ranges are in the table below and in docs/configuration.md. The
 *	MIME limits stay inside what mg_mime_new accepts, so no value is
 *	silently clamped by the parser.
 * DIAGNOSTICS
 *	Every error of the file is reported, one line each,
 *	"FILE:LINE: KEY: reason" (LINE 0 when the key could not be found
 *	in the text, which GKeyFile escapes can cause).
 */
#include <limits.h>
#include <string.h>
#include <sys/un.h>
#include <syslog.h>

#include <mugaika/config.h>
#include <mugaika/sanitize.h>

#define GROUP "mugaika"

#define KIB ((uint64_t)1 << 10)
#define MIB ((uint64_t)1 << 20)
#define GIB ((uint64_t)1 << 30)
#define TIB ((uint64_t)1 << 40)

GQuark mg_config_error_quark(void)
{
    return g_quark_from_static_string("mg-config-error-quark");
}

enum kind {
    K_PATH,    /* any non-empty string */
    K_LANG,    /* ja | en */
    K_SOCKET,  /* milter socket specification */
    K_ACCOUNT, /* user or group name */
    K_LEVEL,   /* log level name -> int */
    K_UINT,    /* unsigned, decimal */
    K_SIZE,    /* size_t, SIZE syntax */
    K_SIZE64,  /* uint64_t, SIZE syntax */
    K_ABSPATH, /* an absolute path */
    K_MODE,    /* permission bits, octal (no set-id or sticky bits) */
};

#define OFF(field) G_STRUCT_OFFSET(struct mg_config, field)

static const struct key {
    const char *key;
    enum kind kind;
    size_t off;
    uint64_t min, max; /* K_UINT, K_SIZE, K_SIZE64 */
    const char *what;  /* K_UINT, K_ACCOUNT: "a number of days" */
} keys[] = {
    {"rules", K_PATH, OFF(rules_dir), 0, 0, NULL},
    {"quarantine", K_PATH, OFF(quarantine_dir), 0, 0, NULL},
    {"clamav-db", K_PATH, OFF(clamav_db), 0, 0, NULL},
    {"lang", K_LANG, OFF(lang), 0, 0, NULL},
    {"audit", K_PATH, OFF(audit), 0, 0, NULL},
    {"spool", K_PATH, OFF(spool_dir), 0, 0, NULL},
    {"retention-days", K_UINT, OFF(retention_days), 1, 36500, "a number of days"},
    {"socket", K_SOCKET, OFF(socket), 0, 0, NULL},
    {"user", K_ACCOUNT, OFF(user), 0, 0, "a user name"},
    {"group", K_ACCOUNT, OFF(group), 0, 0, "a group name"},
    {"log-level", K_LEVEL, OFF(log_level), 0, 0, NULL},
    {"max-message-size", K_SIZE64, OFF(max_message_bytes), 0, TIB, NULL},
    {"spool-memory", K_SIZE, OFF(spool_memory), 0, GIB, NULL},
    {"max-header-bytes", K_SIZE, OFF(limits.header_bytes), KIB, 64 * MIB, NULL},
    {"max-line-bytes", K_SIZE, OFF(limits.line_bytes), 78, GIB, NULL},
    {"max-depth", K_UINT, OFF(limits.depth), 1, 1000, "a nesting depth"},
    {"max-parts", K_UINT, OFF(limits.parts), 1, 1000000, "a number of parts"},
    {"html-budget-ms", K_UINT, OFF(html_budget_ms), 1, 600000, "a number of milliseconds"},
    {"message-timeout", K_UINT, OFF(message_timeout), 1, 86400, "a number of seconds"},
    {"milter-timeout", K_UINT, OFF(milter_timeout), 1, 86400, "a number of seconds"},
    {"worker-dir", K_PATH, OFF(worker_dir), 0, 0, NULL},
    {"worker-timeout", K_UINT, OFF(worker_timeout), 1, 3600, "a number of seconds"},
    {"worker-budget", K_UINT, OFF(worker_budget), 1, 86400, "a number of seconds"},
    {"worker-cpu-seconds", K_UINT, OFF(worker_cpu), 1, 3600, "a number of seconds"},
    {"worker-memory", K_SIZE64, OFF(worker_memory), 64 * MIB, 64 * GIB, NULL},
    {"archive-depth", K_UINT, OFF(archive_depth), 1, 20, "a nesting depth"},
    {"archive-members", K_UINT, OFF(archive_members), 1, 100000, "a number of files"},
    {"archive-size", K_SIZE64, OFF(archive_size), MIB, TIB, NULL},
    {"archive-ratio", K_UINT, OFF(archive_ratio), 2, 100000, "a ratio (expanded per packed byte)"},
    {"watch-state", K_ABSPATH, OFF(watch_state), 0, 0, NULL},
    {"watch-workers", K_UINT, OFF(watch_workers), 1, 64, "a number of workers"},
    {"watch-queue", K_UINT, OFF(watch_queue), 1, 10000, "a number of files"},
    {"watch-quiet-ms", K_UINT, OFF(watch_quiet_ms), 0, 3600000, "a number of milliseconds"},
    {"watch-scan-ms", K_UINT, OFF(watch_scan_ms), 10, 3600000, "a number of milliseconds"},
    {"watch-user-files", K_UINT, OFF(watch_user_files), 0, 100000000, "a number of files"},
    {"watch-user-bytes", K_SIZE64, OFF(watch_user_bytes), 0, 1024 * TIB, NULL},
};

/* The keys of a [watch NAME] group. */
#define WOFF(field)  G_STRUCT_OFFSET(struct mg_config_watch, field)
#define WATCH_PREFIX "watch "

static const struct key watch_keys[] = {
    {"in", K_ABSPATH, WOFF(in), 0, 0, NULL},
    {"out", K_ABSPATH, WOFF(out), 0, 0, NULL},
    {"owner", K_ACCOUNT, WOFF(owner), 0, 0, "a user name"},
    {"group", K_ACCOUNT, WOFF(group), 0, 0, "a group name"},
    {"mode", K_MODE, WOFF(mode), 0, 0, NULL},
    {"user-files", K_UINT, WOFF(user_files), 0, 100000000, "a number of files"},
    {"user-bytes", K_SIZE64, WOFF(user_bytes), 0, 1024 * TIB, NULL},
};

/* Indexed by syslog priority. */
static const char *const level_names[] = {
    [LOG_ERR] = "error", [LOG_WARNING] = "warning", [LOG_NOTICE] = "notice",
    [LOG_INFO] = "info", [LOG_DEBUG] = "debug",
};

const char *mg_config_log_level_name(int level)
{
    if (level < LOG_ERR || level > LOG_DEBUG)
        return "?";
    return level_names[level];
}

/* Line (1-based) of "key =" in group, or of "[group]" when key is NULL;
 * 0 when not found. */
static unsigned line_of(const char *text, const char *group, const char *key)
{
    char **lines = g_strsplit(text, "\n", -1);
    const char *cur = NULL;
    unsigned at = 0;

    for (unsigned i = 0; lines[i] != NULL && at == 0; i++) {
        char *l = g_strstrip(lines[i]);
        if (l[0] == '[') {
            char *end = strchr(l, ']');
            cur = end != NULL ? l + 1 : NULL;
            if (end != NULL)
                *end = '\0';
            if (key == NULL && cur != NULL && strcmp(cur, group) == 0)
                at = i + 1;
            continue;
        }
        if (key != NULL && cur != NULL && strcmp(cur, group) == 0) {
            size_t n = strlen(key);
            if (strncmp(l, key, n) == 0 && (l[n] == '=' || l[n] == ' ' || l[n] == '\t'))
                at = i + 1;
        }
    }
    g_strfreev(lines);
    return at;
}

static void add_error(GString *errs, const char *file, unsigned line, const char *key,
                      const char *why)
{
    if (errs->len > 0)
        g_string_append_c(errs, '\n');
    g_string_append_printf(errs, "%s:%u: %s%s%s", file, line, key != NULL ? key : "",
                           key != NULL ? ": " : "", why);
}

/* SIZE: decimal digits, then optionally one of K M G (any case), 1024-based. */
static bool parse_size(const char *v, uint64_t *out)
{
    uint64_t n = 0, mul = 1;
    const char *p = v;

    if (!g_ascii_isdigit(*p))
        return false;
    for (; g_ascii_isdigit(*p); p++) {
        unsigned d = (unsigned)(*p - '0');
        if (n > (UINT64_MAX - d) / 10)
            return false;
        n = n * 10 + d;
    }
    switch (*p) {
    case 'K':
    case 'k':
        mul = KIB;
        p++;
        break;
    case 'M':
    case 'm':
        mul = MIB;
        p++;
        break;
    case 'G':
    case 'g':
        mul = GIB;
        p++;
        break;
    default:
        break;
    }
    if (*p != '\0' || (n != 0 && n > UINT64_MAX / mul))
        return false;
    *out = n * mul;
    return true;
}

/* "64M" for an exact multiple, else plain bytes; for range messages. */
static void append_size(GString *s, uint64_t n)
{
    if (n >= TIB && n % TIB == 0)
        g_string_append_printf(s, "%" G_GUINT64_FORMAT "T", n / TIB);
    else if (n >= GIB && n % GIB == 0)
        g_string_append_printf(s, "%" G_GUINT64_FORMAT "G", n / GIB);
    else if (n >= MIB && n % MIB == 0)
        g_string_append_printf(s, "%" G_GUINT64_FORMAT "M", n / MIB);
    else if (n >= KIB && n % KIB == 0)
        g_string_append_printf(s, "%" G_GUINT64_FORMAT "K", n / KIB);
    else
        g_string_append_printf(s, "%" G_GUINT64_FORMAT, n);
}

/* NULL when v is a valid milter socket, else the reason (caller frees). */
char *mg_config_check_socket(const char *v)
{
    const char *rest;

    if (g_str_has_prefix(v, "unix:") || g_str_has_prefix(v, "local:")) {
        rest = strchr(v, ':') + 1;
        if (rest[0] != '/')
            return g_strdup_printf("'%s': the socket path must be absolute", v);
        if (rest[strlen(rest) - 1] == '/')
            return g_strdup_printf("'%s': the socket path names a directory", v);
        if (strlen(rest) >= sizeof(((struct sockaddr_un *)NULL)->sun_path))
            return g_strdup_printf("'%s': the socket path is longer than %zu bytes", v,
                                   sizeof(((struct sockaddr_un *)NULL)->sun_path) - 1);
        return NULL;
    }
    if (g_str_has_prefix(v, "inet:")) {
        const char *at;
        char *port;
        guint64 n;
        bool ok;

        rest = v + strlen("inet:");
        at = strchr(rest, '@');
        if (at == NULL || at[1] == '\0')
            return g_strdup_printf("'%s' is not inet:PORT@HOST", v);
        port = g_strndup(rest, (gsize)(at - rest));
        ok = g_ascii_string_to_unsigned(port, 10, 1, 65535, &n, NULL);
        g_free(port);
        if (!ok)
            return g_strdup_printf("'%s': the port is not a number from 1 to 65535", v);
        for (const char *h = at + 1; *h != '\0'; h++)
            if (g_ascii_isspace(*h) || g_ascii_iscntrl(*h) || *h == '@' || *h == '/')
                return g_strdup_printf("'%s': the host is not a host name or address", v);
        return NULL;
    }
    return g_strdup_printf("'%s' is not unix:/PATH, local:/PATH or inet:PORT@HOST", v);
}

/* Checks v against k and stores it into the struct at base (a struct
 * mg_config or a struct mg_config_watch, as k's table says). NULL on
 * success, else the reason (caller frees). */
static char *set_value(void *base, const struct key *k, const char *v)
{
    void *slot = G_STRUCT_MEMBER_P(base, k->off);
    uint64_t n;
    GString *why;

    switch (k->kind) {
    case K_LANG:
        if (strcmp(v, "ja") != 0 && strcmp(v, "en") != 0)
            return g_strdup_printf("'%s' is neither ja nor en", v);
        break;
    case K_SOCKET: {
        char *bad = mg_config_check_socket(v);
        if (bad != NULL)
            return bad;
        break;
    }
    case K_ACCOUNT:
        for (const char *p = v; *p != '\0'; p++)
            if (*p == '/' || g_ascii_isspace(*p) || g_ascii_iscntrl(*p))
                return g_strdup_printf("'%s' is not %s (no '/', blanks or control characters)", v,
                                       k->what);
        break;
    case K_LEVEL:
        for (int l = LOG_ERR; l <= LOG_DEBUG; l++) {
            if (strcmp(v, level_names[l]) == 0) {
                *(int *)slot = l;
                return NULL;
            }
        }
        return g_strdup_printf("'%s' is not one of error, warning, notice, info, debug", v);
    case K_ABSPATH:
        if (v[0] != '/')
            return g_strdup_printf("'%s' is not an absolute path", v);
        break;
    case K_MODE: {
        guint64 m;
        if (strlen(v) < 3 || strlen(v) > 4 || !g_ascii_string_to_unsigned(v, 8, 0, 0777, &m, NULL))
            return g_strdup_printf("'%s' is not permission bits in octal, 000-777 (e.g. 0640)", v);
        if ((m & 0444) == 0)
            return g_strdup_printf("'%s' lets no one read the files", v);
        *(unsigned *)slot = (unsigned)m;
        return NULL;
    }
    case K_UINT: {
        guint64 u;
        if (!g_ascii_string_to_unsigned(v, 10, k->min, k->max, &u, NULL))
            return g_strdup_printf("'%s' is not %s (%" G_GUINT64_FORMAT "-%" G_GUINT64_FORMAT ")",
                                   v, k->what, k->min, k->max);
        *(unsigned *)slot = (unsigned)u;
        return NULL;
    }
    case K_SIZE:
    case K_SIZE64:
        if (!parse_size(v, &n))
            return g_strdup_printf("'%s' is not a size (bytes, or a number followed by K, M "
                                   "or G)",
                                   v);
        if (n < k->min || n > k->max) {
            why = g_string_new(NULL);
            g_string_append_printf(why, "'%s' is out of range (", v);
            append_size(why, k->min);
            g_string_append_c(why, '-');
            append_size(why, k->max);
            g_string_append(why, " bytes)");
            return g_string_free(why, FALSE);
        }
        if (k->kind == K_SIZE)
            *(size_t *)slot = (size_t)n;
        else
            *(uint64_t *)slot = n;
        return NULL;
    case K_PATH:
    default:
        break;
    }
    /* the string kinds */
    g_free(*(char **)slot);
    *(char **)slot = g_strdup(v);
    return NULL;
}

static void set_defaults(struct mg_config *out)
{
    struct mg_sanitize_opts so;

    memset(out, 0, sizeof *out);
    mg_sanitize_opts_default(&so);
    out->retention_days = 90;
    out->socket = g_strdup(MG_CONFIG_DEFAULT_SOCKET);
    out->log_level = LOG_INFO;
    out->max_message_bytes = 0;
    out->message_timeout = 600;
    out->milter_timeout = 600;
    mg_mime_limits_default(&out->limits);
    out->spool_memory = so.spool_memory;
    out->html_budget_ms = (unsigned)(so.html_budget_us / 1000);
    out->worker_timeout = (unsigned)(so.cdr.deadline_us / G_USEC_PER_SEC);
    out->worker_budget = (unsigned)(so.cdr_budget_us / G_USEC_PER_SEC);
    out->worker_cpu = so.cdr.cpu_seconds;
    out->worker_memory = so.cdr.address_space;
    out->archive_depth = so.archive_depth;
    out->archive_members = so.archive_members;
    out->archive_size = so.archive_total;
    out->archive_ratio = so.archive_ratio;
    out->watch_workers = 2;
    out->watch_queue = 64;
    out->watch_quiet_ms = 2000;
    out->watch_scan_ms = 1000;
}

static bool is_pair_name(const char *n)
{
    if (*n == '\0' || strlen(n) > 64)
        return false;
    for (; *n != '\0'; n++)
        if (!g_ascii_isalnum(*n) && *n != '-' && *n != '_')
            return false;
    return true;
}

/* One [watch NAME] group into a new entry of out->watch. */
static void check_pair(GKeyFile *kf, const char *text, const char *file, const char *group,
                       struct mg_config *out, GString *errs)
{
    struct mg_config_watch *w;
    char **names;
    bool files_set = false, bytes_set = false;

    out->watch = g_renew(struct mg_config_watch, out->watch, out->n_watch + 1);
    w = &out->watch[out->n_watch++];
    memset(w, 0, sizeof *w);
    w->name = g_strdup(group + strlen(WATCH_PREFIX));
    w->mode = 0644;
    if (!is_pair_name(w->name))
        add_error(errs, file, line_of(text, group, NULL), NULL,
                  "a [watch NAME] group needs a NAME of letters, digits, '-' and '_' (at most 64)");
    /* GKeyFile merges groups of the same name: a name is never seen twice */
    names = g_key_file_get_keys(kf, group, NULL, NULL);
    for (char **k = names; k != NULL && *k != NULL; k++) {
        size_t i;
        unsigned line = line_of(text, group, *k);
        char *v, *why;

        for (i = 0; i < G_N_ELEMENTS(watch_keys); i++)
            if (strcmp(watch_keys[i].key, *k) == 0)
                break;
        if (i == G_N_ELEMENTS(watch_keys)) {
            add_error(errs, file, line, *k,
                      "unknown key of a [watch NAME] group (in, out, owner, group, mode, "
                      "user-files, user-bytes)");
            continue;
        }
        v = g_key_file_get_string(kf, group, *k, NULL);
        if (v == NULL || *v == '\0') {
            add_error(errs, file, line, *k, "empty value");
        } else if ((why = set_value(w, &watch_keys[i], v)) != NULL) {
            add_error(errs, file, line, *k, why);
            g_free(why);
        }
        g_free(v);
        files_set |= strcmp(*k, "user-files") == 0;
        bytes_set |= strcmp(*k, "user-bytes") == 0;
    }
    g_strfreev(names);
    for (unsigned i = 0; i < 2; i++)
        if (!g_key_file_has_key(kf, group, i == 0 ? "in" : "out", NULL))
            add_error(errs, file, line_of(text, group, NULL), i == 0 ? "in" : "out",
                      "missing: a [watch NAME] group needs both in and out");
    if (w->in != NULL && w->out != NULL && strcmp(w->in, w->out) == 0)
        add_error(errs, file, line_of(text, group, "out"), "out", "the same folder as in");
    /* the [mugaika] values are read by now: resolved at the end of load */
    if (!files_set)
        w->user_files = UINT_MAX;
    if (!bytes_set)
        w->user_bytes = UINT64_MAX;
}

static void check_keys(GKeyFile *kf, const char *text, const char *file, struct mg_config *out,
                       GString *errs)
{
    char **groups, **names;

    groups = g_key_file_get_groups(kf, NULL);
    for (char **g = groups; *g != NULL; g++)
        if (g_str_has_prefix(*g, WATCH_PREFIX))
            check_pair(kf, text, file, *g, out, errs);
        else if (strcmp(*g, GROUP) != 0)
            add_error(errs, file, line_of(text, *g, NULL), NULL,
                      "unknown group (there are [" GROUP "] and [watch NAME])");
    g_strfreev(groups);
    names = g_key_file_has_group(kf, GROUP) ? g_key_file_get_keys(kf, GROUP, NULL, NULL) : NULL;
    for (char **k = names; k != NULL && *k != NULL; k++) {
        size_t i;
        unsigned line = line_of(text, GROUP, *k);
        char *v, *why;

        for (i = 0; i < G_N_ELEMENTS(keys); i++)
            if (strcmp(keys[i].key, *k) == 0)
                break;
        if (i == G_N_ELEMENTS(keys)) {
            add_error(errs, file, line, *k, "unknown key");
            continue;
        }
        v = g_key_file_get_string(kf, GROUP, *k, NULL);
        if (v == NULL || *v == '\0') {
            add_error(errs, file, line, *k, "empty value");
        } else if ((why = set_value(out, &keys[i], v)) != NULL) {
            add_error(errs, file, line, *k, why);
            g_free(why);
        }
        g_free(v);
    }
    g_strfreev(names);
}

bool mg_config_load(const char *path, struct mg_config *out, GError **err)
{
    const char *file = path != NULL ? path : MG_CONFIG_DEFAULT_FILE;
    GKeyFile *kf;
    GError *e = NULL;
    GString *errs;
    char *text = NULL;
    gsize len;

    set_defaults(out);
    if (path == NULL && !g_file_test(file, G_FILE_TEST_EXISTS))
        return true;
    if (!g_file_get_contents(file, &text, &len, &e)) {
        g_set_error(err, MG_CONFIG_ERROR, 0, "%s: %s", file, e->message);
        g_error_free(e);
        mg_config_clear(out);
        return false;
    }
    out->file = g_strdup(file);
    kf = g_key_file_new();
    if (!g_key_file_load_from_data(kf, text, len, G_KEY_FILE_NONE, &e)) {
        g_set_error(err, MG_CONFIG_ERROR, 0, "%s: %s", file, e->message);
        g_error_free(e);
        g_key_file_free(kf);
        g_free(text);
        mg_config_clear(out);
        return false;
    }
    errs = g_string_new(NULL);
    check_keys(kf, text, file, out, errs);
    for (unsigned i = 0; i < out->n_watch; i++) {
        if (out->watch[i].user_files == UINT_MAX)
            out->watch[i].user_files = out->watch_user_files;
        if (out->watch[i].user_bytes == UINT64_MAX)
            out->watch[i].user_bytes = out->watch_user_bytes;
    }
    g_key_file_free(kf);
    g_free(text);
    if (errs->len > 0) {
        g_set_error_literal(err, MG_CONFIG_ERROR, 0, errs->str);
        g_string_free(errs, TRUE);
        mg_config_clear(out);
        return false;
    }
    g_string_free(errs, TRUE);
    return true;
}

void mg_config_clear(struct mg_config *c)
{
    g_free(c->file);
    g_free(c->rules_dir);
    g_free(c->quarantine_dir);
    g_free(c->clamav_db);
    g_free(c->lang);
    g_free(c->audit);
    g_free(c->spool_dir);
    g_free(c->socket);
    g_free(c->user);
    g_free(c->group);
    g_free(c->worker_dir);
    g_free(c->watch_state);
    for (unsigned i = 0; i < c->n_watch; i++) {
        g_free(c->watch[i].name);
        g_free(c->watch[i].in);
        g_free(c->watch[i].out);
        g_free(c->watch[i].owner);
        g_free(c->watch[i].group);
    }
    g_free(c->watch);
    memset(c, 0, sizeof *c);
}

void mg_config_sanitize_opts(const struct mg_config *c, struct mg_sanitize_opts *o)
{
    if (c->lang != NULL)
        o->lang = c->lang;
    if (c->spool_dir != NULL)
        o->spool_dir = c->spool_dir;
    o->limits.header_bytes = c->limits.header_bytes;
    o->limits.line_bytes = c->limits.line_bytes;
    o->limits.depth = c->limits.depth;
    o->limits.parts = c->limits.parts;
    o->spool_memory = c->spool_memory;
    o->html_budget_us = (int64_t)c->html_budget_ms * 1000;
    o->cdr.deadline_us = (int64_t)c->worker_timeout * G_USEC_PER_SEC;
    o->cdr_budget_us = (int64_t)c->worker_budget * G_USEC_PER_SEC;
    o->cdr.cpu_seconds = c->worker_cpu;
    o->cdr.address_space = c->worker_memory;
    o->archive_depth = c->archive_depth;
    o->archive_members = c->archive_members;
    o->archive_total = c->archive_size;
    o->archive_ratio = c->archive_ratio;
}
