/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * NAME
 *	wstatus 3
 * SUMMARY
 *	mugaika-watch's status in memory and in STATE/status.json
 * SYNOPSIS
 *	#include <mugaika/wstatus.h>
 *
 *	struct mg_wstatus *mg_wstatus_new(unsigned workers);
 *	struct mg_wstatus *mg_wstatus_free(struct mg_wstatus *s);
 *	void mg_wstatus_record(s, pair, user, name, outcome, bytes, reason, now);
 *	void mg_wstatus_set_queue(s, n);
 *	void mg_wstatus_set_in_progress(s, n);
 *	void mg_wstatus_set_running(s, running);
 *	bool mg_wstatus_quota_take(s, pair, user, bytes, max_files, max_bytes, now);
 *	void mg_wstatus_quota_give_back(s, pair, user, bytes, now);
 *	void mg_wstatus_over_quota_clear(s);
 *	void mg_wstatus_over_quota_add(s, pair, user, name, bytes);
 *	char *mg_wstatus_to_json(s, now);
 *	bool mg_wstatus_write(s, state_fd, now, GError **err);
 *	bool mg_wstatus_load(s, state_fd, now, GError **err);
 *	bool mg_wstatus_counts(s, pair, user, now, struct mg_wstatus_counts *out);
 * DESCRIPTION
 *	The contract of each function and the JSON members are in
 *	include/mugaika/wstatus.h.
 *
 *	In memory: one entry per (pair, user), in a hash table keyed by
 *	"LEN:PAIR/USER" (LEN the pair's length, so no two pairs of names
 *	make the same key whatever bytes they hold), and the ring of
 *	errors as a small array, oldest first. One mutex guards both;
 *	write holds a second one from the snapshot to the rename, so two
 *	threads writing at once cannot put an older snapshot over a newer
 *	one.
 *
 *	Days are counted as floor(now / 86400): POSIX time has no leap
 *	seconds, so a day boundary is exactly 00:00:00 UTC.
 *
 *	load parses the whole file into a separate status first and
 *	merges it into s only when every member made sense: a corrupt
 *	file changes nothing.
 * LIMITS
 *	MG_WSTATUS_ERRORS errors; MG_WSTATUS_OVER_NAMES over-quota names
 *	per pair/user; a status.json of at most 16 MiB is read.
 *	Counters saturate at 2^63 - 1 in the file.
 * DIAGNOSTICS
 *	GError MG_WSTATUS_ERROR, "PATH: OPERATION: REASON".
 * SEE ALSO
 *	src/cli/watch.c (mugaika watch status), docs/architecture.md.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h> /* renameat */
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <glib.h>
#include <json-glib/json-glib.h>

#include <mugaika/wstatus.h>

#include "core/io.h"
#include "core/jsonget.h"

#define SECONDS_PER_DAY 86400
#define READ_LIMIT      (16u << 20)
#define NO_DAY          INT64_MIN
#define N_OUTCOMES      4

struct over {
    char *name;
    uint64_t bytes;
};

struct entry {
    char *pair, *user;
    uint64_t n[N_OUTCOMES]; /* by enum mg_wstatus_outcome */
    uint64_t bytes;         /* of the done items */
    int64_t day;            /* of day_files and day_bytes, or NO_DAY */
    uint64_t day_files, day_bytes;
    unsigned max_files;
    uint64_t max_bytes;
    GPtrArray *over; /* struct over *: the names shown */
    uint64_t over_files, over_bytes;
};

struct error {
    int64_t time;
    enum mg_wstatus_outcome outcome;
    uint64_t count;
    char *pair, *user, *name, *reason;
};

struct mg_wstatus {
    GMutex lock;                             /* guards everything below */
    GMutex write_lock;                       /* one write of the file at a time */
    GHashTable *entries;                     /* key -> struct entry * */
    struct error *errors[MG_WSTATUS_ERRORS]; /* oldest first */
    unsigned n_errors;
    int64_t pid, started;
    unsigned workers, queue, in_progress;
    bool running;
};

static const char *const outcome_names[N_OUTCOMES] = {
    [MG_WSTATUS_DONE] = "done",
    [MG_WSTATUS_REFUSED] = "refused",
    [MG_WSTATUS_FAILED] = "failed",
    [MG_WSTATUS_RETRY] = "retry",
};

GQuark mg_wstatus_error_quark(void)
{
    return g_quark_from_static_string("mg-wstatus-error-quark");
}

const char *mg_wstatus_outcome_name(enum mg_wstatus_outcome o)
{
    return (unsigned)o < N_OUTCOMES ? outcome_names[o] : "?";
}

/* --- errors and paths --------------------------------------------------------- */

/* "PATH: OP: REASON" in the status error domain */
#define fail(err, code, path, op, ...)                                                             \
    mg_io_error(err, MG_WSTATUS_ERROR, code, path, op, __VA_ARGS__)

/* --- entries ---------------------------------------------------------------- */

static int64_t utc_day(int64_t now)
{
    if (now >= 0)
        return now / SECONDS_PER_DAY;
    return -((-(now + 1)) / SECONDS_PER_DAY) - 1;
}

/* "YYYY-MM-DD" of a day number (g_free). */
static char *day_text(int64_t day)
{
    GDateTime *dt;
    char *s;

    if (day < -(INT64_C(1) << 40) || day > (INT64_C(1) << 40))
        return g_strdup("?");
    dt = g_date_time_new_from_unix_utc(day * SECONDS_PER_DAY);
    if (!dt)
        return g_strdup("?");
    s = g_date_time_format(dt, "%Y-%m-%d");
    g_date_time_unref(dt);
    return s;
}

static const char *nz(const char *s)
{
    return s ? s : "";
}

static char *entry_key(const char *pair, const char *user)
{
    return g_strdup_printf("%zu:%s/%s", strlen(pair), pair, user);
}

static void over_free(gpointer p)
{
    struct over *o = p;

    g_free(o->name);
    g_free(o);
}

static void entry_free(gpointer p)
{
    struct entry *e = p;

    g_free(e->pair);
    g_free(e->user);
    g_ptr_array_unref(e->over);
    g_free(e);
}

static struct entry *entry_lookup(GHashTable *t, const char *pair, const char *user)
{
    char *key = entry_key(pair, user);
    struct entry *e = g_hash_table_lookup(t, key);

    g_free(key);
    return e;
}

/* The entry of (pair, user), made when missing. Caller holds the lock. */
static struct entry *entry_get(GHashTable *t, const char *pair, const char *user)
{
    struct entry *e;

    pair = nz(pair);
    user = nz(user);
    e = entry_lookup(t, pair, user);
    if (e)
        return e;
    e = g_new0(struct entry, 1);
    e->pair = g_strdup(pair);
    e->user = g_strdup(user);
    e->day = NO_DAY;
    e->over = g_ptr_array_new_with_free_func(over_free);
    g_hash_table_insert(t, entry_key(pair, user), e);
    return e;
}

/* Starts the entry's day counters afresh when day is another day. */
static void entry_roll(struct entry *e, int64_t day)
{
    if (e->day != day) {
        e->day = day;
        e->day_files = 0;
        e->day_bytes = 0;
    }
}

static gint entry_cmp(gconstpointer a, gconstpointer b)
{
    const struct entry *x = *(struct entry *const *)a;
    const struct entry *y = *(struct entry *const *)b;
    int c = strcmp(x->pair, y->pair);

    return c != 0 ? c : strcmp(x->user, y->user);
}

/* The entries sorted by pair then user (borrowed). Caller holds the lock. */
static GPtrArray *sorted_entries(GHashTable *t)
{
    GPtrArray *a = g_ptr_array_new();
    GHashTableIter it;
    gpointer v;

    g_hash_table_iter_init(&it, t);
    while (g_hash_table_iter_next(&it, NULL, &v))
        g_ptr_array_add(a, v);
    g_ptr_array_sort(a, entry_cmp);
    return a;
}

static uint64_t add_sat(uint64_t a, uint64_t b)
{
    return a > UINT64_MAX - b ? UINT64_MAX : a + b;
}

/* --- the ring of errors --------------------------------------------------------- */

static void error_free(struct error *x)
{
    if (!x)
        return;
    g_free(x->pair);
    g_free(x->user);
    g_free(x->name);
    g_free(x->reason);
    g_free(x);
}

static bool error_same(const struct error *x, const struct error *y)
{
    return x->outcome == y->outcome && strcmp(x->pair, y->pair) == 0 &&
           strcmp(x->user, y->user) == 0 && strcmp(x->name, y->name) == 0 &&
           strcmp(x->reason, y->reason) == 0;
}

/* Removes errors[i] from the ring and returns it. */
static struct error *ring_take(struct mg_wstatus *s, unsigned i)
{
    struct error *x = s->errors[i];

    memmove(&s->errors[i], &s->errors[i + 1], (s->n_errors - i - 1) * sizeof(s->errors[0]));
    s->n_errors--;
    s->errors[s->n_errors] = NULL;
    return x;
}

/* Appends x as the newest (taking it), dropping the oldest when full. */
static void ring_push(struct mg_wstatus *s, struct error *x)
{
    if (s->n_errors == MG_WSTATUS_ERRORS)
        error_free(ring_take(s, 0));
    s->errors[s->n_errors++] = x;
}

/* Adds x (taken) as the newest error, or, when the ring holds the same
 * error, makes that one the newest with x's time. Caller holds the lock. */
static void ring_add(struct mg_wstatus *s, struct error *x)
{
    for (unsigned i = 0; i < s->n_errors; i++) {
        if (error_same(s->errors[i], x)) {
            struct error *old = ring_take(s, i);

            old->time = x->time;
            old->count = add_sat(old->count, x->count);
            error_free(x);
            x = old;
            break;
        }
    }
    ring_push(s, x);
}

/* --- the calls of the daemon ------------------------------------------------------- */

struct mg_wstatus *mg_wstatus_new(unsigned workers)
{
    struct mg_wstatus *s = g_new0(struct mg_wstatus, 1);

    g_mutex_init(&s->lock);
    g_mutex_init(&s->write_lock);
    s->entries = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, entry_free);
    s->pid = (int64_t)getpid();
    s->started = g_get_real_time() / G_USEC_PER_SEC;
    s->workers = workers;
    s->running = true;
    return s;
}

struct mg_wstatus *mg_wstatus_free(struct mg_wstatus *s)
{
    if (!s)
        return NULL;
    for (unsigned i = 0; i < s->n_errors; i++)
        error_free(s->errors[i]);
    g_hash_table_destroy(s->entries);
    g_mutex_clear(&s->lock);
    g_mutex_clear(&s->write_lock);
    g_free(s);
    return NULL;
}

void mg_wstatus_record(struct mg_wstatus *s, const char *pair, const char *user, const char *name,
                       enum mg_wstatus_outcome outcome, uint64_t bytes, const char *reason,
                       int64_t now)
{
    struct entry *e;
    struct error *x;

    if ((unsigned)outcome >= N_OUTCOMES)
        return;
    g_mutex_lock(&s->lock);
    e = entry_get(s->entries, pair, user);
    e->n[outcome] = add_sat(e->n[outcome], 1);
    if (outcome == MG_WSTATUS_DONE) {
        e->bytes = add_sat(e->bytes, bytes);
    } else {
        x = g_new0(struct error, 1);
        x->time = now;
        x->outcome = outcome;
        x->count = 1;
        x->pair = g_strdup(e->pair);
        x->user = g_strdup(e->user);
        x->name = g_strdup(nz(name));
        x->reason = g_utf8_make_valid(nz(reason), -1);
        ring_add(s, x);
    }
    g_mutex_unlock(&s->lock);
}

void mg_wstatus_set_queue(struct mg_wstatus *s, unsigned n)
{
    g_mutex_lock(&s->lock);
    s->queue = n;
    g_mutex_unlock(&s->lock);
}

void mg_wstatus_set_in_progress(struct mg_wstatus *s, unsigned n)
{
    g_mutex_lock(&s->lock);
    s->in_progress = n;
    g_mutex_unlock(&s->lock);
}

void mg_wstatus_set_running(struct mg_wstatus *s, bool running)
{
    g_mutex_lock(&s->lock);
    s->running = running;
    g_mutex_unlock(&s->lock);
}

bool mg_wstatus_quota_take(struct mg_wstatus *s, const char *pair, const char *user, uint64_t bytes,
                           unsigned max_files, uint64_t max_bytes, int64_t now)
{
    struct entry *e;
    bool ok;

    g_mutex_lock(&s->lock);
    e = entry_get(s->entries, pair, user);
    entry_roll(e, utc_day(now));
    e->max_files = max_files;
    e->max_bytes = max_bytes;
    ok = !(max_files != 0 && e->day_files >= max_files) &&
         !(max_bytes != 0 && (bytes > max_bytes || e->day_bytes > max_bytes - bytes));
    if (ok) {
        e->day_files++;
        e->day_bytes = add_sat(e->day_bytes, bytes);
    }
    g_mutex_unlock(&s->lock);
    return ok;
}

void mg_wstatus_quota_give_back(struct mg_wstatus *s, const char *pair, const char *user,
                                uint64_t bytes, int64_t now)
{
    struct entry *e;

    g_mutex_lock(&s->lock);
    e = entry_lookup(s->entries, nz(pair), nz(user));
    if (e && e->day == utc_day(now)) {
        if (e->day_files > 0)
            e->day_files--;
        e->day_bytes -= MIN(e->day_bytes, bytes);
    }
    g_mutex_unlock(&s->lock);
}

void mg_wstatus_over_quota_clear(struct mg_wstatus *s)
{
    GHashTableIter it;
    gpointer v;

    g_mutex_lock(&s->lock);
    g_hash_table_iter_init(&it, s->entries);
    while (g_hash_table_iter_next(&it, NULL, &v)) {
        struct entry *e = v;

        g_ptr_array_set_size(e->over, 0);
        e->over_files = 0;
        e->over_bytes = 0;
    }
    g_mutex_unlock(&s->lock);
}

void mg_wstatus_over_quota_add(struct mg_wstatus *s, const char *pair, const char *user,
                               const char *name, uint64_t bytes)
{
    struct entry *e;

    g_mutex_lock(&s->lock);
    e = entry_get(s->entries, pair, user);
    e->over_files = add_sat(e->over_files, 1);
    e->over_bytes = add_sat(e->over_bytes, bytes);
    if (e->over->len < MG_WSTATUS_OVER_NAMES) {
        struct over *o = g_new0(struct over, 1);

        o->name = g_strdup(nz(name));
        o->bytes = bytes;
        g_ptr_array_add(e->over, o);
    }
    g_mutex_unlock(&s->lock);
}

bool mg_wstatus_counts(struct mg_wstatus *s, const char *pair, const char *user, int64_t now,
                       struct mg_wstatus_counts *out)
{
    int64_t day = utc_day(now);
    GHashTableIter it;
    gpointer v;
    bool found = false;

    memset(out, 0, sizeof(*out));
    g_mutex_lock(&s->lock);
    g_hash_table_iter_init(&it, s->entries);
    while (g_hash_table_iter_next(&it, NULL, &v)) {
        const struct entry *e = v;

        if (pair && (strcmp(e->pair, pair) != 0 || strcmp(e->user, nz(user)) != 0))
            continue;
        found = true;
        out->done = add_sat(out->done, e->n[MG_WSTATUS_DONE]);
        out->refused = add_sat(out->refused, e->n[MG_WSTATUS_REFUSED]);
        out->failed = add_sat(out->failed, e->n[MG_WSTATUS_FAILED]);
        out->retry = add_sat(out->retry, e->n[MG_WSTATUS_RETRY]);
        out->bytes = add_sat(out->bytes, e->bytes);
        if (e->day == day) {
            out->today_files = add_sat(out->today_files, e->day_files);
            out->today_bytes = add_sat(out->today_bytes, e->day_bytes);
        }
        out->over_quota_files = add_sat(out->over_quota_files, e->over_files);
    }
    g_mutex_unlock(&s->lock);
    return found || !pair;
}

/* --- JSON out ---------------------------------------------------------------------- */

static void add_int(JsonBuilder *b, const char *key, int64_t v)
{
    json_builder_set_member_name(b, key);
    json_builder_add_int_value(b, v);
}

static void add_count(JsonBuilder *b, const char *key, uint64_t v)
{
    add_int(b, key, v > (uint64_t)INT64_MAX ? INT64_MAX : (int64_t)v);
}

static void add_str(JsonBuilder *b, const char *key, const char *v)
{
    json_builder_set_member_name(b, key);
    json_builder_add_string_value(b, v);
}

/* A name: as is when UTF-8, else the text made valid plus KEY_b64. */
static void add_name(JsonBuilder *b, const char *key, const char *v)
{
    char *valid, *enc, *k;

    if (g_utf8_validate(v, -1, NULL)) {
        add_str(b, key, v);
        return;
    }
    valid = g_utf8_make_valid(v, -1);
    enc = g_base64_encode((const guchar *)v, strlen(v));
    k = g_strconcat(key, "_b64", NULL);
    add_str(b, key, valid);
    add_str(b, k, enc);
    g_free(k);
    g_free(enc);
    g_free(valid);
}

static void add_entry(JsonBuilder *b, const struct entry *e, int64_t day)
{
    bool today = e->day == day;

    json_builder_begin_object(b);
    add_name(b, "pair", e->pair);
    add_name(b, "user", e->user);
    for (unsigned i = 0; i < N_OUTCOMES; i++)
        add_count(b, outcome_names[i], e->n[i]);
    add_count(b, "bytes", e->bytes);
    add_count(b, "today_files", today ? e->day_files : 0);
    add_count(b, "today_bytes", today ? e->day_bytes : 0);
    add_count(b, "max_files", e->max_files);
    add_count(b, "max_bytes", e->max_bytes);
    json_builder_set_member_name(b, "over_quota");
    json_builder_begin_array(b);
    for (guint i = 0; i < e->over->len; i++) {
        const struct over *o = e->over->pdata[i];

        json_builder_begin_object(b);
        add_name(b, "name", o->name);
        add_count(b, "bytes", o->bytes);
        json_builder_end_object(b);
    }
    json_builder_end_array(b);
    add_count(b, "over_quota_files", e->over_files);
    add_count(b, "over_quota_bytes", e->over_bytes);
    json_builder_end_object(b);
}

static void add_error(JsonBuilder *b, const struct error *x)
{
    json_builder_begin_object(b);
    add_int(b, "time", x->time);
    add_name(b, "pair", x->pair);
    add_name(b, "user", x->user);
    add_name(b, "name", x->name);
    add_str(b, "outcome", outcome_names[x->outcome]);
    add_str(b, "reason", x->reason);
    add_count(b, "count", x->count);
    json_builder_end_object(b);
}

char *mg_wstatus_to_json(struct mg_wstatus *s, int64_t now)
{
    JsonBuilder *b = json_builder_new();
    JsonGenerator *gen = json_generator_new();
    JsonNode *root;
    GPtrArray *entries;
    int64_t day = utc_day(now);
    char *dtext = day_text(day);
    char *text;

    json_builder_begin_object(b);
    g_mutex_lock(&s->lock);
    add_int(b, "version", MG_WSTATUS_VERSION);
    add_int(b, "pid", s->pid);
    add_int(b, "started", s->started);
    add_int(b, "updated", now);
    json_builder_set_member_name(b, "running");
    json_builder_add_boolean_value(b, s->running);
    add_str(b, "day", dtext);
    add_count(b, "workers", s->workers);
    add_count(b, "queue", s->queue);
    add_count(b, "in_progress", s->in_progress);
    json_builder_set_member_name(b, "users");
    json_builder_begin_array(b);
    entries = sorted_entries(s->entries);
    for (guint i = 0; i < entries->len; i++)
        add_entry(b, entries->pdata[i], day);
    g_ptr_array_unref(entries);
    json_builder_end_array(b);
    json_builder_set_member_name(b, "errors");
    json_builder_begin_array(b);
    for (unsigned i = 0; i < s->n_errors; i++)
        add_error(b, s->errors[i]);
    json_builder_end_array(b);
    g_mutex_unlock(&s->lock);
    json_builder_end_object(b);

    root = json_builder_get_root(b);
    json_generator_set_root(gen, root);
    json_generator_set_pretty(gen, TRUE);
    json_generator_set_indent(gen, 2);
    text = json_generator_to_data(gen, NULL);
    json_node_unref(root);
    g_object_unref(gen);
    g_object_unref(b);
    g_free(dtext);
    return text;
}

/* --- the file ------------------------------------------------------------------------ */

bool mg_wstatus_write(struct mg_wstatus *s, int state_fd, int64_t now, GError **err)
{
    char *text = NULL;
    char *path = mg_io_fd_path(state_fd, MG_WSTATUS_TMP_NAME);
    GString *data;
    bool ok = false;
    int fd = -1;
    int e;

    g_mutex_lock(&s->write_lock);
    text = mg_wstatus_to_json(s, now);
    data = g_string_new(text);
    g_string_append_c(data, '\n');
    if (unlinkat(state_fd, MG_WSTATUS_TMP_NAME, 0) != 0 && errno != ENOENT) {
        fail(err, MG_WSTATUS_ERROR_IO, path, "unlink", "%s", g_strerror(errno));
        goto out;
    }
    fd = openat(state_fd, MG_WSTATUS_TMP_NAME,
                O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY, 0640);
    if (fd < 0) {
        fail(err, MG_WSTATUS_ERROR_IO, path, "create", "%s", g_strerror(errno));
        goto out;
    }
    e = mg_write_all(fd, data->str, data->len);
    if (e != 0) {
        fail(err, MG_WSTATUS_ERROR_IO, path, "write", "%s", g_strerror(e));
        goto bad;
    }
    if (fsync(fd) != 0) {
        fail(err, MG_WSTATUS_ERROR_IO, path, "fsync", "%s", g_strerror(errno));
        goto bad;
    }
    e = close(fd) != 0 ? errno : 0;
    fd = -1;
    if (e != 0 && e != EINTR) {
        fail(err, MG_WSTATUS_ERROR_IO, path, "close", "%s", g_strerror(e));
        goto bad;
    }
    if (renameat(state_fd, MG_WSTATUS_TMP_NAME, state_fd, MG_WSTATUS_NAME) != 0) {
        fail(err, MG_WSTATUS_ERROR_IO, path, "rename", "%s", g_strerror(errno));
        goto bad;
    }
    if (fsync(state_fd) != 0) {
        fail(err, MG_WSTATUS_ERROR_IO, path, "fsync directory", "%s", g_strerror(errno));
        goto out;
    }
    ok = true;
    goto out;
bad:
    if (fd >= 0)
        close(fd);
    (void)unlinkat(state_fd, MG_WSTATUS_TMP_NAME, 0);
out:
    g_mutex_unlock(&s->write_lock);
    g_string_free(data, TRUE);
    g_free(text);
    g_free(path);
    return ok;
}

/* --- JSON in --------------------------------------------------------------------------- */

/* An optional non-negative integer member (absent: 0). False when it is
 * there but not one. */
static bool get_count(JsonObject *o, const char *key, uint64_t *out)
{
    JsonNode *n = json_object_get_member(o, key);
    gint64 v;

    *out = 0;
    if (!n)
        return true;
    if (!JSON_NODE_HOLDS_VALUE(n) || json_node_get_value_type(n) != G_TYPE_INT64)
        return false;
    v = json_node_get_int(n);
    if (v < 0)
        return false;
    *out = (uint64_t)v;
    return true;
}

/* A name (g_free): KEY_b64 when present (canonical base64, no NUL),
 * else KEY. NULL when neither is good. */
static char *get_name(JsonObject *o, const char *key)
{
    char *k = g_strconcat(key, "_b64", NULL);
    const char *enc = mg_json_get_str(o, k);
    bool has_b64 = json_object_has_member(o, k);

    g_free(k);
    if (has_b64)
        return enc != NULL ? mg_json_unb64(enc) : NULL;
    enc = mg_json_get_str(o, key);
    return enc ? g_strdup(enc) : NULL;
}

/* Array member key, or NULL when absent; *bad when present but not an
 * array. */
static JsonArray *get_array(JsonObject *o, const char *key, bool *bad)
{
    JsonNode *n = json_object_get_member(o, key);

    if (!n)
        return NULL;
    if (!JSON_NODE_HOLDS_ARRAY(n)) {
        *bad = true;
        return NULL;
    }
    return json_node_get_array(n);
}

static const char *read_entry(struct mg_wstatus *t, JsonNode *n, int64_t day, bool same_day)
{
    JsonObject *o;
    char *pair, *user;
    struct entry *e;
    uint64_t c[N_OUTCOMES], bytes, files, dbytes, maxf, maxb;
    bool ok = true;

    if (!JSON_NODE_HOLDS_OBJECT(n))
        return "a users entry is not an object";
    o = json_node_get_object(n);
    for (unsigned i = 0; i < N_OUTCOMES; i++)
        ok = get_count(o, outcome_names[i], &c[i]) && ok;
    ok = get_count(o, "bytes", &bytes) && get_count(o, "today_files", &files) &&
         get_count(o, "today_bytes", &dbytes) && get_count(o, "max_files", &maxf) &&
         get_count(o, "max_bytes", &maxb) && ok;
    if (!ok || maxf > G_MAXUINT)
        return "a users entry has a bad count";
    pair = get_name(o, "pair");
    user = get_name(o, "user");
    if (!pair || !user) {
        g_free(pair);
        g_free(user);
        return "a users entry has no good pair or user";
    }
    e = entry_get(t->entries, pair, user);
    g_free(pair);
    g_free(user);
    for (unsigned i = 0; i < N_OUTCOMES; i++)
        e->n[i] = add_sat(e->n[i], c[i]);
    e->bytes = add_sat(e->bytes, bytes);
    if (same_day) {
        entry_roll(e, day);
        e->day_files = add_sat(e->day_files, files);
        e->day_bytes = add_sat(e->day_bytes, dbytes);
        e->max_files = (unsigned)maxf;
        e->max_bytes = maxb;
    }
    return NULL;
}

static const char *read_error(struct mg_wstatus *t, JsonNode *n)
{
    JsonObject *o;
    struct error *x;
    const char *outcome, *reason;
    unsigned k;

    if (!JSON_NODE_HOLDS_OBJECT(n))
        return "an errors entry is not an object";
    o = json_node_get_object(n);
    x = g_new0(struct error, 1);
    outcome = mg_json_get_str(o, "outcome");
    reason = json_object_has_member(o, "reason") ? mg_json_get_str(o, "reason") : "";
    for (k = MG_WSTATUS_REFUSED; k < N_OUTCOMES; k++)
        if (outcome && strcmp(outcome, outcome_names[k]) == 0)
            break;
    x->outcome = (enum mg_wstatus_outcome)k;
    x->pair = get_name(o, "pair");
    x->user = get_name(o, "user");
    x->name = get_name(o, "name");
    x->count = 1;
    if (k == N_OUTCOMES || !reason || !x->pair || !x->user || !x->name ||
        !mg_json_get_int(o, "time", &x->time) ||
        (json_object_has_member(o, "count") && !get_count(o, "count", &x->count)) ||
        x->count == 0) {
        error_free(x);
        return "an errors entry has a missing or bad member";
    }
    x->reason = g_utf8_make_valid(reason, -1);
    ring_push(t, x);
    return NULL;
}

/* Parses the file's text into t (a fresh status). NULL, or why not. */
static const char *parse(struct mg_wstatus *t, const char *text, size_t len, int64_t now)
{
    JsonParser *p = json_parser_new();
    JsonObject *o;
    JsonArray *users, *errors;
    JsonNode *root;
    const char *why = NULL;
    const char *day;
    char *today = day_text(utc_day(now));
    int64_t version;
    bool bad = false, same_day;

    if (!json_parser_load_from_data(p, text, (gssize)len, NULL)) {
        why = "not JSON";
        goto out;
    }
    root = json_parser_get_root(p);
    if (!root || !JSON_NODE_HOLDS_OBJECT(root)) {
        why = "not a JSON object";
        goto out;
    }
    o = json_node_get_object(root);
    if (!mg_json_get_int(o, "version", &version) || version != MG_WSTATUS_VERSION) {
        why = "missing or unknown version";
        goto out;
    }
    day = mg_json_get_str(o, "day");
    if (json_object_has_member(o, "day") && !day) {
        why = "day is not a string";
        goto out;
    }
    same_day = day && strcmp(day, today) == 0;
    users = get_array(o, "users", &bad);
    errors = get_array(o, "errors", &bad);
    if (bad) {
        why = "users or errors is not an array";
        goto out;
    }
    for (guint i = 0; users && !why && i < json_array_get_length(users); i++)
        why = read_entry(t, json_array_get_element(users, i), utc_day(now), same_day);
    for (guint i = 0; errors && !why && i < json_array_get_length(errors); i++)
        why = read_error(t, json_array_get_element(errors, i));
out:
    g_free(today);
    g_object_unref(p);
    return why;
}

/* Moves what t holds into s (adding counters; t's errors are older). */
static void merge(struct mg_wstatus *s, struct mg_wstatus *t)
{
    GHashTableIter it;
    gpointer v;
    struct error *mine[MG_WSTATUS_ERRORS];
    unsigned n_mine;

    g_mutex_lock(&s->lock);
    g_hash_table_iter_init(&it, t->entries);
    while (g_hash_table_iter_next(&it, NULL, &v)) {
        const struct entry *from = v;
        struct entry *e = entry_get(s->entries, from->pair, from->user);

        for (unsigned i = 0; i < N_OUTCOMES; i++)
            e->n[i] = add_sat(e->n[i], from->n[i]);
        e->bytes = add_sat(e->bytes, from->bytes);
        if (from->day != NO_DAY) {
            entry_roll(e, from->day);
            e->day_files = add_sat(e->day_files, from->day_files);
            e->day_bytes = add_sat(e->day_bytes, from->day_bytes);
            e->max_files = from->max_files;
            e->max_bytes = from->max_bytes;
        }
    }
    n_mine = s->n_errors;
    memcpy(mine, s->errors, sizeof(mine));
    memcpy(s->errors, t->errors, sizeof(s->errors));
    s->n_errors = t->n_errors;
    t->n_errors = 0;
    for (unsigned i = 0; i < n_mine; i++)
        ring_push(s, mine[i]);
    g_mutex_unlock(&s->lock);
}

/* Reads the whole file; *text NULL and true when it does not exist. */
static bool read_file(int state_fd, const char *path, char **text, size_t *len, GError **err)
{
    int fd = openat(state_fd, MG_WSTATUS_NAME, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY);
    GString *buf;
    char chunk[65536];
    struct stat st;

    *text = NULL;
    *len = 0;
    if (fd < 0 && errno == ENOENT)
        return true;
    if (fd < 0) {
        fail(err, errno == ELOOP ? MG_WSTATUS_ERROR_CORRUPT : MG_WSTATUS_ERROR_IO, path, "open",
             "%s", g_strerror(errno));
        return false;
    }
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        fail(err, MG_WSTATUS_ERROR_CORRUPT, path, "open", "not a regular file");
        close(fd);
        return false;
    }
    buf = g_string_new(NULL);
    for (;;) {
        ssize_t n = read(fd, chunk, sizeof(chunk));

        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            fail(err, MG_WSTATUS_ERROR_IO, path, "read", "%s", g_strerror(errno));
            break;
        }
        if (n == 0) {
            *len = buf->len;
            *text = g_string_free(buf, FALSE);
            close(fd);
            return true;
        }
        if (buf->len + (size_t)n > READ_LIMIT) {
            fail(err, MG_WSTATUS_ERROR_CORRUPT, path, "read", "larger than %u bytes", READ_LIMIT);
            break;
        }
        g_string_append_len(buf, chunk, n);
    }
    g_string_free(buf, TRUE);
    close(fd);
    return false;
}

bool mg_wstatus_load(struct mg_wstatus *s, int state_fd, int64_t now, GError **err)
{
    char *path = mg_io_fd_path(state_fd, MG_WSTATUS_NAME);
    struct mg_wstatus *t = NULL;
    const char *why;
    char *text = NULL;
    size_t len = 0;
    bool ok = false;

    if (!read_file(state_fd, path, &text, &len, err))
        goto out;
    ok = true;
    if (!text)
        goto out;
    t = mg_wstatus_new(0);
    why = parse(t, text, len, now);
    if (why) {
        fail(err, MG_WSTATUS_ERROR_CORRUPT, path, "read", "%s", why);
        ok = false;
        goto out;
    }
    merge(s, t);
out:
    mg_wstatus_free(t);
    g_free(text);
    g_free(path);
    return ok;
}
