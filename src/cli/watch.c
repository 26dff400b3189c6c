/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * NAME
 *	mugaika-watch-status 1
 * SUMMARY
 *	mugaika watch status: is mugaika-watch running, and what it did
 * SYNOPSIS
 *	mugaika watch status [--state DIR] [--json] [--config FILE]
 * DESCRIPTION
 *	Shows STATE/status.json, which mugaika-watch rewrites every second
 *	(see include/mugaika/wstatus.h for its members). STATE is --state,
 *	else the configuration file's watch-state (--config FILE, else
 *	/etc/mugaika/mugaika.conf when it exists; read only when --state
 *	is not given), else MG_CONFIG_DEFAULT_WATCH_STATE.
 *
 *	Whether the daemon runs is asked of the lock, not of the pid in
 *	the file: STATE/journal is opened read-only and flock(LOCK_SH |
 *	LOCK_NB) tried on it. EWOULDBLOCK: a mugaika-watch holds it
 *	(running). The lock is taken and given back at once when free;
 *	since a compaction replaces the journal, the name is checked to be
 *	still the file locked (as src/watch/journal.c does). Nothing is
 *	created or modified.
 *
 *	Without --json: running or not (and the pid), since when, when
 *	the file was updated, workers, queue, in progress, then a table
 *	with one row per pair and user (done, refused, failed, retry,
 *	today's files and bytes with the limit when there is one, files
 *	over quota), the files over quota, and the last errors (oldest
 *	first). When the daemon does not run, the status is marked stale.
 *	Names are shown byte for byte (from their *_b64 member when the
 *	file has one), with control characters, bytes that are not UTF-8
 *	("\xNN") and bidirectional overrides escaped; a user "-" is IN
 *	itself.
 *
 *	--json prints the file's JSON object, indented, with "running"
 *	set to what the lock says.
 * DIAGNOSTICS
 *	Exit status: 0 mugaika-watch is running; 3 it is not (the status
 *	shown is stale); 64 usage; 65 status.json is not a status this
 *	version understands; 66 no status.json (or no STATE); 75 the
 *	journal or status.json cannot be read (permissions: the journal
 *	is mode 0600, run as its owner or root); 78 the configuration
 *	file does not load; 70 standard output could not be written.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <glib.h>
#include <json-glib/json-glib.h>

#include <mugaika/config.h>
#include <mugaika/wjournal.h>
#include <mugaika/wstatus.h>

#include "cli/cli.h"

#define EX_NOT_RUNNING 3
#define LOCK_TRIES     5

static const char usage_text[] =
    "usage: mugaika watch status [--state DIR] [--json] [--config FILE]\n"
    "\n"
    "  Show whether mugaika-watch is running and its status (STATE/status.json).\n"
    "  STATE: --state, else watch-state of the configuration file, else\n"
    "  " MG_CONFIG_DEFAULT_WATCH_STATE ".\n"
    "  Exit status: 0 running, 3 not running (the status shown is stale),\n"
    "  66 no status file, 64 usage, 65 bad status file, 75 cannot read.\n";

static int usage(void)
{
    fputs(usage_text, stderr);
    return MG_EX_USAGE;
}

/* --- is it running ------------------------------------------------------ */

enum run { RUN_NO, RUN_YES, RUN_UNKNOWN };

/* Whether a process holds the journal's lock; RUN_UNKNOWN with *e set
 * when the journal cannot be opened or locked for another reason. */
static enum run journal_locked(const char *state, int *e)
{
    char *path = g_build_filename(state, MG_WJOURNAL_NAME, NULL);
    enum run r = RUN_YES; /* replaced every time we looked: being compacted */

    for (int tries = 0; tries < LOCK_TRIES; tries++) {
        int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY | O_NONBLOCK);
        struct stat st, now;
        int rc;

        if (fd < 0) {
            *e = errno;
            r = (errno == ENOENT || errno == ENOTDIR) ? RUN_NO : RUN_UNKNOWN;
            break;
        }
        if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
            close(fd);
            r = RUN_NO; /* not a journal mugaika-watch would use */
            break;
        }
        while ((rc = flock(fd, LOCK_SH | LOCK_NB)) != 0 && errno == EINTR)
            ;
        if (rc != 0) {
            *e = errno;
            close(fd);
            r = *e == EWOULDBLOCK ? RUN_YES : RUN_UNKNOWN;
            break;
        }
        /* Free: still the file named journal? (else a compaction just
         * replaced it and the new one may be held) */
        if (stat(path, &now) != 0 || (now.st_dev == st.st_dev && now.st_ino == st.st_ino)) {
            close(fd);
            r = RUN_NO;
            break;
        }
        close(fd);
    }
    g_free(path);
    return r;
}

/* --- reading the file -------------------------------------------------- */

/* The root object of STATE/status.json (json_node_unref), or NULL and
 * the exit status in *rc (message printed). */
static JsonNode *read_status(const char *state, bool running, int *rc)
{
    char *path = g_build_filename(state, MG_WSTATUS_NAME, NULL);
    JsonParser *p = NULL;
    JsonNode *root = NULL;
    GError *err = NULL;
    char *text = NULL;
    gsize len = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY | O_NONBLOCK);
    struct stat st;

    if (fd < 0) {
        int e = errno;

        if (e == ENOENT || e == ENOTDIR) {
            fprintf(stderr, "mugaika: watch: %s: no status file (%s)\n", path,
                    running ? "mugaika-watch is running but has not written it yet"
                            : "mugaika-watch has not run with this state directory");
            *rc = MG_EX_NOINPUT;
        } else {
            fprintf(stderr, "mugaika: watch: %s: %s\n", path, g_strerror(e));
            *rc = e == ELOOP ? MG_EX_DATAERR : MG_EX_TEMPFAIL;
        }
        goto out;
    }
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        fprintf(stderr, "mugaika: watch: %s: not a regular file\n", path);
        *rc = MG_EX_DATAERR;
        goto out;
    }
    close(fd);
    fd = -1;
    if (!g_file_get_contents(path, &text, &len, &err)) {
        fprintf(stderr, "mugaika: watch: %s\n", err->message);
        *rc = MG_EX_TEMPFAIL;
        goto out;
    }
    p = json_parser_new();
    if (!json_parser_load_from_data(p, text, (gssize)len, NULL) || !json_parser_get_root(p) ||
        !JSON_NODE_HOLDS_OBJECT(json_parser_get_root(p))) {
        fprintf(stderr, "mugaika: watch: %s: not a JSON object\n", path);
        *rc = MG_EX_DATAERR;
        goto out;
    }
    root = json_node_copy(json_parser_get_root(p));
    if (json_object_get_int_member_with_default(json_node_get_object(root), "version", 0) !=
        MG_WSTATUS_VERSION) {
        fprintf(stderr, "mugaika: watch: %s: missing or unknown version\n", path);
        *rc = MG_EX_DATAERR;
        json_node_unref(root);
        root = NULL;
    }
out:
    if (fd >= 0)
        close(fd);
    if (err)
        g_error_free(err);
    if (p)
        g_object_unref(p);
    g_free(text);
    g_free(path);
    return root;
}

/* --- members, with defaults for a file made by hand ------------------------ */

static gint64 get_int(JsonObject *o, const char *key)
{
    JsonNode *n = json_object_get_member(o, key);

    if (!n || !JSON_NODE_HOLDS_VALUE(n) || json_node_get_value_type(n) != G_TYPE_INT64)
        return 0;
    return json_node_get_int(n);
}

static const char *get_str(JsonObject *o, const char *key)
{
    JsonNode *n = json_object_get_member(o, key);

    if (!n || !JSON_NODE_HOLDS_VALUE(n) || json_node_get_value_type(n) != G_TYPE_STRING)
        return "";
    return json_node_get_string(n);
}

static JsonArray *get_array(JsonObject *o, const char *key)
{
    JsonNode *n = json_object_get_member(o, key);

    return n && JSON_NODE_HOLDS_ARRAY(n) ? json_node_get_array(n) : NULL;
}

static JsonObject *element(JsonArray *a, guint i)
{
    JsonNode *n = json_array_get_element(a, i);

    return JSON_NODE_HOLDS_OBJECT(n) ? json_node_get_object(n) : NULL;
}

/* --- text for a terminal ---------------------------------------------------- */

/* s made safe to print (g_free), as mg_cli_put_text; empty: dflt. */
static char *shown(const char *s, const char *dflt)
{
    GString *out;

    if (!s || !*s)
        return g_strdup(dflt);
    out = g_string_new(NULL);
    mg_cli_put_text(out, s, 0);
    return g_string_free(out, FALSE);
}

/* Member key of o shown (g_free): the bytes of KEY_b64 when it is there
 * and decodes (a name that is not UTF-8), else the text of key. */
static char *name_shown(JsonObject *o, const char *key, const char *dflt)
{
    char *k = g_strconcat(key, "_b64", NULL);
    const char *enc = get_str(o, k);
    char *out;

    g_free(k);
    if (*enc) {
        gsize len = 0;
        guchar *dec = g_base64_decode(enc, &len);
        char *z = g_strndup((const char *)dec, len); /* stops at a NUL */

        out = shown(z, dflt);
        g_free(z);
        g_free(dec);
        return out;
    }
    return shown(get_str(o, key), dflt);
}

/* Columns a (valid UTF-8, escaped) string takes on a terminal. */
static size_t width(const char *s)
{
    size_t w = 0;

    for (; *s; s = g_utf8_next_char(s)) {
        gunichar c = g_utf8_get_char(s);

        if (g_unichar_iszerowidth(c))
            continue;
        w += g_unichar_iswide(c) ? 2 : 1;
    }
    return w;
}

/* Appends s, then spaces up to w columns (left aligned) or spaces first
 * (right aligned). */
static void put_col(GString *out, const char *s, size_t w, bool right)
{
    size_t n = width(s);

    if (right)
        for (; n < w; n++)
            g_string_append_c(out, ' ');
    g_string_append(out, s);
    if (!right)
        for (; n < w; n++)
            g_string_append_c(out, ' ');
}

static char *iso_time(gint64 t)
{
    GDateTime *dt = g_date_time_new_from_unix_utc(t);
    char *s;

    if (!dt)
        return g_strdup("?");
    s = g_date_time_format(dt, "%Y-%m-%dT%H:%M:%SZ");
    g_date_time_unref(dt);
    return s;
}

/* --- the table -------------------------------------------------------------- */

enum col { C_PAIR, C_USER, C_DONE, C_REFUSED, C_FAILED, C_RETRY, C_TFILES, C_TBYTES, C_OVER, NCOL };

static const char *const col_titles[NCOL] = {
    "PAIR",  "USER",        "DONE",        "REFUSED",    "FAILED",
    "RETRY", "TODAY-FILES", "TODAY-BYTES", "OVER-QUOTA",
};

/* "N" or "N/MAX" when max is set. */
static char *with_max(gint64 n, gint64 max)
{
    if (max > 0)
        return g_strdup_printf("%" G_GINT64_FORMAT "/%" G_GINT64_FORMAT, n, max);
    return g_strdup_printf("%" G_GINT64_FORMAT, n);
}

static void row_cells(JsonObject *u, char **cell)
{
    cell[C_PAIR] = name_shown(u, "pair", "-");
    cell[C_USER] = name_shown(u, "user", "-");
    cell[C_DONE] = g_strdup_printf("%" G_GINT64_FORMAT, get_int(u, "done"));
    cell[C_REFUSED] = g_strdup_printf("%" G_GINT64_FORMAT, get_int(u, "refused"));
    cell[C_FAILED] = g_strdup_printf("%" G_GINT64_FORMAT, get_int(u, "failed"));
    cell[C_RETRY] = g_strdup_printf("%" G_GINT64_FORMAT, get_int(u, "retry"));
    cell[C_TFILES] = with_max(get_int(u, "today_files"), get_int(u, "max_files"));
    cell[C_TBYTES] = with_max(get_int(u, "today_bytes"), get_int(u, "max_bytes"));
    cell[C_OVER] = g_strdup_printf("%" G_GINT64_FORMAT, get_int(u, "over_quota_files"));
}

static void put_table(GString *out, JsonArray *users)
{
    guint n = users ? json_array_get_length(users) : 0;
    char **cells = g_new0(char *, (size_t)(n + 1) * NCOL);
    size_t w[NCOL];
    guint rows = 1;

    for (int c = 0; c < NCOL; c++)
        cells[c] = g_strdup(col_titles[c]);
    for (guint i = 0; i < n; i++) {
        JsonObject *u = element(users, i);

        if (u)
            row_cells(u, cells + (size_t)rows++ * NCOL);
    }
    for (int c = 0; c < NCOL; c++) {
        w[c] = 0;
        for (guint r = 0; r < rows; r++)
            w[c] = MAX(w[c], width(cells[(size_t)r * NCOL + c]));
    }
    for (guint r = 0; r < rows; r++) {
        for (int c = 0; c < NCOL; c++) {
            if (c > 0)
                g_string_append(out, "  ");
            put_col(out, cells[(size_t)r * NCOL + c], w[c], c >= C_DONE);
        }
        g_string_append_c(out, '\n');
    }
    if (rows == 1)
        g_string_append(out, "(no file seen yet)\n");
    for (size_t k = 0; k < (size_t)rows * NCOL; k++)
        g_free(cells[k]);
    g_free(cells);
}

static void put_over_quota(GString *out, JsonArray *users)
{
    guint n = users ? json_array_get_length(users) : 0;
    bool title = false;

    for (guint i = 0; i < n; i++) {
        JsonObject *u = element(users, i);
        JsonArray *names = u ? get_array(u, "over_quota") : NULL;
        guint m = names ? json_array_get_length(names) : 0;
        gint64 all = u ? get_int(u, "over_quota_files") : 0;
        char *pair, *user;

        if (m == 0 && all <= 0)
            continue;
        if (!title)
            g_string_append(out, "\nover quota (left in IN until the next UTC day):\n");
        title = true;
        pair = name_shown(u, "pair", "-");
        user = name_shown(u, "user", "-");
        for (guint k = 0; k < m; k++) {
            JsonObject *f = element(names, k);
            char *name = f ? name_shown(f, "name", "-") : g_strdup("-");

            g_string_append_printf(out, "  %s/%s  %s  %" G_GINT64_FORMAT " bytes\n", pair, user,
                                   name, f ? get_int(f, "bytes") : 0);
            g_free(name);
        }
        if (all > (gint64)m)
            g_string_append_printf(out, "  %s/%s  ... %" G_GINT64_FORMAT " more\n", pair, user,
                                   all - (gint64)m);
        g_free(pair);
        g_free(user);
    }
}

static void put_errors(GString *out, JsonArray *errors)
{
    guint n = errors ? json_array_get_length(errors) : 0;

    g_string_append(out, "\nlast errors (oldest first):\n");
    if (n == 0)
        g_string_append(out, "  (none)\n");
    for (guint i = 0; i < n; i++) {
        JsonObject *x = element(errors, i);
        char *t, *pair, *user, *name, *outcome, *reason;
        gint64 count;

        if (!x)
            continue;
        t = iso_time(get_int(x, "time"));
        pair = name_shown(x, "pair", "-");
        user = name_shown(x, "user", "-");
        name = name_shown(x, "name", "-");
        outcome = shown(get_str(x, "outcome"), "?");
        reason = shown(get_str(x, "reason"), "-");
        count = get_int(x, "count");
        g_string_append_printf(out, "  %s  %s/%s  %s  %s: %s", t, pair, user, name, outcome,
                               reason);
        if (count > 1)
            g_string_append_printf(out, "  (%" G_GINT64_FORMAT " times)", count);
        g_string_append_c(out, '\n');
        g_free(t);
        g_free(pair);
        g_free(user);
        g_free(name);
        g_free(outcome);
        g_free(reason);
    }
}

static void put_text(JsonObject *o, const char *state, bool running)
{
    GString *out = g_string_new(NULL);
    gint64 now = g_get_real_time() / G_USEC_PER_SEC;
    gint64 pid = get_int(o, "pid");
    gint64 updated = get_int(o, "updated");
    char *started = iso_time(get_int(o, "started"));
    char *upd = iso_time(updated);
    char *dir = shown(state, "-");
    char *day = shown(get_str(o, "day"), "?");

    if (running)
        g_string_append_printf(out, "mugaika-watch: running (pid %" G_GINT64_FORMAT ")\n", pid);
    else
        g_string_append_printf(out,
                               "mugaika-watch: not running; the status below is stale (pid "
                               "%" G_GINT64_FORMAT " %s)\n",
                               pid,
                               json_object_get_boolean_member_with_default(o, "running", TRUE)
                                   ? "stopped without writing its last status"
                                   : "stopped");
    g_string_append_printf(out, "state:        %s\n", dir);
    g_string_append_printf(out, "since:        %s\n", started);
    g_string_append_printf(out, "updated:      %s (%" G_GINT64_FORMAT " s ago)\n", upd,
                           now - updated);
    g_string_append_printf(out, "workers:      %" G_GINT64_FORMAT "\n", get_int(o, "workers"));
    g_string_append_printf(out, "queue:        %" G_GINT64_FORMAT "\n", get_int(o, "queue"));
    g_string_append_printf(out, "in progress:  %" G_GINT64_FORMAT "\n", get_int(o, "in_progress"));
    g_string_append_printf(out, "quota day:    %s (UTC)\n\n", day);
    put_table(out, get_array(o, "users"));
    put_over_quota(out, get_array(o, "users"));
    put_errors(out, get_array(o, "errors"));
    fputs(out->str, stdout);
    g_string_free(out, TRUE);
    g_free(started);
    g_free(upd);
    g_free(dir);
    g_free(day);
}

/* --- the command ---------------------------------------------------------------- */

static int cmd_status(int argc, char **argv)
{
    const char *state = NULL, *config = NULL;
    struct mg_config cfg;
    bool json = false, have_cfg = false;
    JsonNode *root = NULL;
    enum run run;
    GError *e = NULL;
    int rc = MG_EX_OK;
    int err = 0;

    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--json") == 0) {
            json = true;
        } else if (strcmp(argv[i], "--state") == 0 && i + 1 < argc) {
            state = argv[++i];
        } else if (g_str_has_prefix(argv[i], "--state=")) {
            state = argv[i] + strlen("--state=");
        } else if (strcmp(argv[i], "--config") == 0 && i + 1 < argc) {
            config = argv[++i];
        } else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            fputs(usage_text, stdout);
            return MG_EX_OK;
        } else {
            return usage();
        }
    }
    if (!state) {
        if (!mg_config_load(config, &cfg, &e)) {
            fprintf(stderr, "mugaika: watch: configuration:\n%s\n", e->message);
            g_error_free(e);
            return MG_EX_CONFIG;
        }
        have_cfg = true;
        state = cfg.watch_state != NULL ? cfg.watch_state : MG_CONFIG_DEFAULT_WATCH_STATE;
    }
    if (*state == '\0') {
        rc = usage();
        goto out;
    }
    run = journal_locked(state, &err);
    if (run == RUN_UNKNOWN) {
        char *j = g_build_filename(state, MG_WJOURNAL_NAME, NULL);

        fprintf(stderr, "mugaika: watch: %s: cannot tell whether mugaika-watch runs: %s\n", j,
                g_strerror(err));
        g_free(j);
        rc = MG_EX_TEMPFAIL;
        goto out;
    }
    root = read_status(state, run == RUN_YES, &rc);
    if (!root)
        goto out;
    if (json) {
        char *s;

        json_object_set_boolean_member(json_node_get_object(root), "running", run == RUN_YES);
        s = json_to_string(root, TRUE);
        fputs(s, stdout);
        fputc('\n', stdout);
        g_free(s);
    } else {
        put_text(json_node_get_object(root), state, run == RUN_YES);
    }
    rc = run == RUN_YES ? MG_EX_OK : EX_NOT_RUNNING;
out:
    if (root)
        json_node_unref(root);
    if (have_cfg)
        mg_config_clear(&cfg);
    return rc;
}

int mg_cli_watch(int argc, char **argv)
{
    int rc;

    if (argc < 2)
        return usage();
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        fputs(usage_text, stdout);
        return MG_EX_OK;
    }
    if (strcmp(argv[1], "status") != 0)
        return usage();
    rc = cmd_status(argc - 1, argv + 1);
    if (fflush(stdout) != 0 && (rc == MG_EX_OK || rc == EX_NOT_RUNNING)) {
        fprintf(stderr, "mugaika: watch: standard output: %s\n", g_strerror(errno));
        rc = MG_EX_SOFTWARE;
    }
    return rc;
}
