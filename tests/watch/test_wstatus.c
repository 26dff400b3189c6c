/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * NAME
 *	test_wstatus 1
 * SUMMARY
 *	unit tests of mugaika-watch's status (wstatus.h)
 * SYNOPSIS
 *	test_wstatus [--tap] [-p /wstatus/...]
 * DESCRIPTION
 *	Every case works in its own temporary directory (removed after).
 *	/wstatus/outcomes: each outcome is counted for its pair and user;
 *	done adds bytes; refused, failed and retry enter the ring (done
 *	does not); a NULL reason or user is ""; a reason that is not UTF-8
 *	is made valid.
 *	/wstatus/ring: 25 errors keep the newest 20 in order; the same
 *	error again moves to the newest place with count 2 and its new time.
 *	/wstatus/threads: 8 threads record 2000 outcomes each over 4 users
 *	and race for a quota of 5000 files (8000 attempts) while a ninth
 *	thread writes status.json and sets the queue in a loop: every
 *	count is exact, exactly 5000 takes succeed, the last file parses.
 *	/wstatus/quota: a files limit, a bytes limit (a refused take counts
 *	nothing; a file larger than the limit is never taken), 0 as no
 *	limit, users and pairs counted apart, give back (same day only,
 *	never below 0), and the day rolling over at exactly 00:00:00 UTC
 *	(23:59:59 full, 00:00:00 free again; the file's today counts 0).
 *	/wstatus/over-quota: 150 files: 100 names listed, the count and
 *	bytes of all 150; clear empties every list.
 *	/wstatus/round-trip: write then load into a new status the same
 *	UTC day gives the same users and errors (names that are not UTF-8
 *	included, through *_b64), a full quota stays full after the
 *	"restart"; loaded the next day, only cumulative counts come back.
 *	The file is mode 0640 at most, no temporary is left, a stale
 *	temporary is replaced, and a failing write leaves the old file.
 *	/wstatus/corrupt: a missing file loads as nothing (true); each of
 *	a list of broken files (not JSON, another version, a negative or
 *	fractional count, a bad base64 name, a bad outcome, a symlink, a
 *	directory, a good entry followed by a bad one) returns false with
 *	MG_WSTATUS_ERROR_CORRUPT and leaves the status as it was.
 */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <glib.h>
#include <glib/gstdio.h>
#include <json-glib/json-glib.h>

#include <mugaika/wstatus.h>

#include "tmpdir.h"

#define DAY  86400
#define T0   (INT64_C(19875) * DAY + 3600) /* 2024-06-01T01:00:00Z */
#define NOON (INT64_C(19875) * DAY + 43200)

struct fx {
    char *dir;
    int dfd;
};

static void fx_setup(struct fx *f, gconstpointer data)
{
    (void)data;
    f->dir = tmpdir_make("mugaika-wstatus-XXXXXX", &f->dfd);
}

static void fx_teardown(struct fx *f, gconstpointer data)
{
    (void)data;
    tmpdir_remove(f->dir, f->dfd);
}

/* --- helpers ----------------------------------------------------------------- */

/* The status as a parsed JSON object (json_node_unref). */
static JsonNode *to_node(struct mg_wstatus *s, int64_t now)
{
    char *text = mg_wstatus_to_json(s, now);
    JsonParser *p = json_parser_new();
    JsonNode *n;

    g_assert_true(json_parser_load_from_data(p, text, -1, NULL));
    n = json_node_copy(json_parser_get_root(p));
    g_assert_true(JSON_NODE_HOLDS_OBJECT(n));
    g_object_unref(p);
    g_free(text);
    return n;
}

static JsonArray *member_array(JsonNode *n, const char *key)
{
    return json_object_get_array_member(json_node_get_object(n), key);
}

static JsonObject *error_at(JsonNode *n, guint i)
{
    return json_array_get_object_element(member_array(n, "errors"), i);
}

/* The users entry of (pair, user) in n, or NULL. */
static JsonObject *user_of(JsonNode *n, const char *pair, const char *user)
{
    JsonArray *a = member_array(n, "users");

    for (guint i = 0; i < json_array_get_length(a); i++) {
        JsonObject *o = json_array_get_object_element(a, i);

        if (strcmp(json_object_get_string_member(o, "pair"), pair) == 0 &&
            strcmp(json_object_get_string_member(o, "user"), user) == 0)
            return o;
    }
    return NULL;
}

static struct mg_wstatus_counts counts(struct mg_wstatus *s, const char *pair, const char *user,
                                       int64_t now)
{
    struct mg_wstatus_counts c;

    g_assert_true(mg_wstatus_counts(s, pair, user, now, &c));
    return c;
}

static void put_file(struct fx *f, const char *name, const char *text)
{
    char *path = g_build_filename(f->dir, name, NULL);
    GError *err = NULL;

    g_file_set_contents(path, text, -1, &err);
    g_assert_no_error(err);
    g_free(path);
}

static void write_ok(struct mg_wstatus *s, struct fx *f, int64_t now)
{
    GError *err = NULL;

    g_assert_true(mg_wstatus_write(s, f->dfd, now, &err));
    g_assert_no_error(err);
}

/* --- cases ------------------------------------------------------------------------ */

static void test_outcomes(struct fx *f, gconstpointer data)
{
    struct mg_wstatus *s = mg_wstatus_new(3);
    struct mg_wstatus_counts c;
    JsonNode *n;
    JsonObject *o;

    (void)f;
    (void)data;
    g_assert_cmpstr(mg_wstatus_outcome_name(MG_WSTATUS_DONE), ==, "done");
    g_assert_cmpstr(mg_wstatus_outcome_name(MG_WSTATUS_REFUSED), ==, "refused");
    g_assert_cmpstr(mg_wstatus_outcome_name(MG_WSTATUS_FAILED), ==, "failed");
    g_assert_cmpstr(mg_wstatus_outcome_name(MG_WSTATUS_RETRY), ==, "retry");
    g_assert_cmpstr(mg_wstatus_outcome_name((enum mg_wstatus_outcome)9), ==, "?");

    mg_wstatus_record(s, "default", "alice", "a.txt", MG_WSTATUS_DONE, 100, NULL, T0);
    mg_wstatus_record(s, "default", "alice", "b.txt", MG_WSTATUS_DONE, 50, NULL, T0);
    mg_wstatus_record(s, "default", "alice", "c.lnk", MG_WSTATUS_REFUSED, 7, "symlink", T0 + 1);
    mg_wstatus_record(s, "default", NULL, "d.bin", MG_WSTATUS_FAILED, 9, NULL, T0 + 2);
    mg_wstatus_record(s, "other", "alice", "e.doc", MG_WSTATUS_RETRY, 9, "bad \xff byte", T0 + 3);
    mg_wstatus_set_queue(s, 4);
    mg_wstatus_set_in_progress(s, 2);

    c = counts(s, "default", "alice", T0);
    g_assert_cmpuint(c.done, ==, 2);
    g_assert_cmpuint(c.refused, ==, 1);
    g_assert_cmpuint(c.failed, ==, 0);
    g_assert_cmpuint(c.bytes, ==, 150);
    c = counts(s, "default", "", T0);
    g_assert_cmpuint(c.failed, ==, 1);
    g_assert_cmpuint(c.bytes, ==, 0);
    c = counts(s, NULL, NULL, T0);
    g_assert_cmpuint(c.done, ==, 2);
    g_assert_cmpuint(c.refused + c.failed + c.retry, ==, 3);
    g_assert_false(mg_wstatus_counts(s, "default", "nobody", T0, &c));
    g_assert_cmpuint(c.done, ==, 0);

    n = to_node(s, T0 + 10);
    o = json_node_get_object(n);
    g_assert_cmpint(json_object_get_int_member(o, "version"), ==, MG_WSTATUS_VERSION);
    g_assert_cmpint(json_object_get_int_member(o, "pid"), ==, getpid());
    g_assert_cmpint(json_object_get_int_member(o, "updated"), ==, T0 + 10);
    g_assert_true(json_object_get_boolean_member(o, "running"));
    g_assert_cmpstr(json_object_get_string_member(o, "day"), ==, "2024-06-01");
    g_assert_cmpint(json_object_get_int_member(o, "workers"), ==, 3);
    g_assert_cmpint(json_object_get_int_member(o, "queue"), ==, 4);
    g_assert_cmpint(json_object_get_int_member(o, "in_progress"), ==, 2);
    /* sorted by pair then user: default/"", default/alice, other/alice */
    g_assert_cmpuint(json_array_get_length(member_array(n, "users")), ==, 3);
    o = json_array_get_object_element(member_array(n, "users"), 0);
    g_assert_cmpstr(json_object_get_string_member(o, "user"), ==, "");
    o = json_array_get_object_element(member_array(n, "users"), 2);
    g_assert_cmpstr(json_object_get_string_member(o, "pair"), ==, "other");
    g_assert_cmpint(json_object_get_int_member(o, "retry"), ==, 1);
    /* the ring: refused, failed, retry; not the done ones */
    g_assert_cmpuint(json_array_get_length(member_array(n, "errors")), ==, 3);
    o = error_at(n, 0);
    g_assert_cmpstr(json_object_get_string_member(o, "name"), ==, "c.lnk");
    g_assert_cmpstr(json_object_get_string_member(o, "outcome"), ==, "refused");
    g_assert_cmpstr(json_object_get_string_member(o, "reason"), ==, "symlink");
    g_assert_cmpint(json_object_get_int_member(o, "time"), ==, T0 + 1);
    g_assert_cmpint(json_object_get_int_member(o, "count"), ==, 1);
    o = error_at(n, 1);
    g_assert_cmpstr(json_object_get_string_member(o, "user"), ==, "");
    g_assert_cmpstr(json_object_get_string_member(o, "reason"), ==, "");
    o = error_at(n, 2);
    g_assert_cmpstr(json_object_get_string_member(o, "reason"), ==, "bad \xef\xbf\xbd byte");
    json_node_unref(n);

    mg_wstatus_set_running(s, false);
    n = to_node(s, T0);
    g_assert_false(json_object_get_boolean_member(json_node_get_object(n), "running"));
    json_node_unref(n);
    g_assert_null(mg_wstatus_free(s));
    g_assert_null(mg_wstatus_free(NULL));
}

static void test_ring(struct fx *f, gconstpointer data)
{
    struct mg_wstatus *s = mg_wstatus_new(1);
    JsonNode *n;

    (void)f;
    (void)data;
    for (int i = 1; i <= 25; i++) {
        char name[16];

        g_snprintf(name, sizeof(name), "f%02d", i);
        mg_wstatus_record(s, "p", "u", name, MG_WSTATUS_FAILED, 1, "boom", T0 + i);
    }
    n = to_node(s, T0 + 30);
    g_assert_cmpuint(json_array_get_length(member_array(n, "errors")), ==, MG_WSTATUS_ERRORS);
    for (guint i = 0; i < MG_WSTATUS_ERRORS; i++) {
        char name[16];

        g_snprintf(name, sizeof(name), "f%02u", i + 6);
        g_assert_cmpstr(json_object_get_string_member(error_at(n, i), "name"), ==, name);
        g_assert_cmpint(json_object_get_int_member(error_at(n, i), "time"), ==, T0 + 6 + i);
    }
    json_node_unref(n);

    /* f10 again: the newest, twice; f06 still the oldest */
    mg_wstatus_record(s, "p", "u", "f10", MG_WSTATUS_FAILED, 1, "boom", T0 + 100);
    /* the same name with another reason is another error */
    mg_wstatus_record(s, "p", "u", "f11", MG_WSTATUS_FAILED, 1, "other", T0 + 101);
    n = to_node(s, T0 + 200);
    g_assert_cmpuint(json_array_get_length(member_array(n, "errors")), ==, MG_WSTATUS_ERRORS);
    g_assert_cmpstr(json_object_get_string_member(error_at(n, 0), "name"), ==, "f07");
    g_assert_cmpstr(json_object_get_string_member(error_at(n, 18), "name"), ==, "f10");
    g_assert_cmpint(json_object_get_int_member(error_at(n, 18), "count"), ==, 2);
    g_assert_cmpint(json_object_get_int_member(error_at(n, 18), "time"), ==, T0 + 100);
    g_assert_cmpstr(json_object_get_string_member(error_at(n, 19), "name"), ==, "f11");
    g_assert_cmpstr(json_object_get_string_member(error_at(n, 19), "reason"), ==, "other");
    g_assert_cmpint(json_object_get_int_member(error_at(n, 19), "count"), ==, 1);
    for (guint i = 1; i < MG_WSTATUS_ERRORS; i++)
        g_assert_cmpstr(json_object_get_string_member(error_at(n, i), "name"), !=, "f06");
    json_node_unref(n);
    mg_wstatus_free(s);
}

#define THREADS     8
#define PER_THREAD  2000
#define TAKES       1000
#define QUOTA_FILES 5000

struct race {
    struct mg_wstatus *s;
    struct fx *f;
    gint taken;
    gint stop;
    gint writes;
};

static gpointer racer(gpointer p)
{
    struct race *r = p;
    static const char *const users[] = {"alice", "bob", "", "\xe5\xb1\xb1\xe7\x94\xb0"};

    for (int i = 0; i < PER_THREAD; i++) {
        enum mg_wstatus_outcome o = (enum mg_wstatus_outcome)(i % 4);
        char name[32];

        g_snprintf(name, sizeof(name), "n%d", i % 50);
        mg_wstatus_record(r->s, "pair", users[i % 4], name, o, 10, "why", T0 + i);
        if (i < TAKES && mg_wstatus_quota_take(r->s, "pair", "quota", 1, QUOTA_FILES, 0, T0 + i))
            g_atomic_int_inc(&r->taken);
    }
    return NULL;
}

static gpointer writer(gpointer p)
{
    struct race *r = p;
    unsigned q = 0;

    while (!g_atomic_int_get(&r->stop)) {
        GError *err = NULL;

        mg_wstatus_set_queue(r->s, q++);
        mg_wstatus_set_in_progress(r->s, q % 8);
        mg_wstatus_over_quota_clear(r->s);
        mg_wstatus_over_quota_add(r->s, "pair", "quota", "late.bin", 1);
        g_assert_true(mg_wstatus_write(r->s, r->f->dfd, T0, &err));
        g_assert_no_error(err);
        g_atomic_int_inc(&r->writes);
    }
    return NULL;
}

static void test_threads(struct fx *f, gconstpointer data)
{
    struct race r = {.s = mg_wstatus_new(THREADS), .f = f};
    GThread *t[THREADS];
    GThread *w;
    struct mg_wstatus_counts c;
    char *path, *text;
    JsonParser *p = json_parser_new();
    GError *err = NULL;

    (void)data;
    w = g_thread_new("writer", writer, &r);
    for (int i = 0; i < THREADS; i++)
        t[i] = g_thread_new("racer", racer, &r);
    for (int i = 0; i < THREADS; i++)
        g_thread_join(t[i]);
    g_atomic_int_set(&r.stop, 1);
    g_thread_join(w);
    g_assert_cmpint(r.writes, >, 0);

    g_assert_cmpint(r.taken, ==, QUOTA_FILES);
    c = counts(r.s, "pair", "quota", T0);
    g_assert_cmpuint(c.today_files, ==, QUOTA_FILES);
    g_assert_cmpuint(c.today_bytes, ==, QUOTA_FILES);
    c = counts(r.s, NULL, NULL, T0);
    g_assert_cmpuint(c.done, ==, THREADS * PER_THREAD / 4);
    g_assert_cmpuint(c.refused, ==, THREADS * PER_THREAD / 4);
    g_assert_cmpuint(c.failed, ==, THREADS * PER_THREAD / 4);
    g_assert_cmpuint(c.retry, ==, THREADS * PER_THREAD / 4);
    g_assert_cmpuint(c.bytes, ==, 10 * THREADS * PER_THREAD / 4);
    c = counts(r.s, "pair", "bob", T0);
    g_assert_cmpuint(c.refused, ==, THREADS * PER_THREAD / 4);
    g_assert_cmpuint(c.done, ==, 0);

    path = g_build_filename(f->dir, MG_WSTATUS_NAME, NULL);
    g_file_get_contents(path, &text, NULL, &err);
    g_assert_no_error(err);
    g_assert_true(json_parser_load_from_data(p, text, -1, NULL));
    g_free(text);
    g_free(path);
    g_object_unref(p);
    mg_wstatus_free(r.s);
}

static void test_quota(struct fx *f, gconstpointer data)
{
    struct mg_wstatus *s = mg_wstatus_new(1);
    int64_t last = T0 - 3600 + DAY - 1; /* 2024-06-01T23:59:59Z */
    struct mg_wstatus_counts c;
    JsonNode *n;
    JsonObject *o;

    (void)f;
    (void)data;
    /* files: 3 a day */
    for (int i = 0; i < 3; i++)
        g_assert_true(mg_wstatus_quota_take(s, "p", "alice", 10, 3, 0, T0 + i));
    g_assert_false(mg_wstatus_quota_take(s, "p", "alice", 10, 3, 0, T0 + 3));
    g_assert_false(mg_wstatus_quota_take(s, "p", "alice", 0, 3, 0, last));
    c = counts(s, "p", "alice", T0);
    g_assert_cmpuint(c.today_files, ==, 3);
    g_assert_cmpuint(c.today_bytes, ==, 30);
    /* another user, another pair: their own count */
    g_assert_true(mg_wstatus_quota_take(s, "p", "bob", 10, 3, 0, T0));
    g_assert_true(mg_wstatus_quota_take(s, "q", "alice", 10, 3, 0, T0));
    g_assert_true(mg_wstatus_quota_take(s, "p", "", 10, 3, 0, T0));

    /* give back: one slot free again, same day only, never below 0 */
    mg_wstatus_quota_give_back(s, "p", "alice", 10, T0 + 10);
    c = counts(s, "p", "alice", T0);
    g_assert_cmpuint(c.today_files, ==, 2);
    g_assert_cmpuint(c.today_bytes, ==, 20);
    g_assert_true(mg_wstatus_quota_take(s, "p", "alice", 10, 3, 0, T0 + 11));
    mg_wstatus_quota_give_back(s, "p", "alice", 10, T0 + DAY); /* another day */
    c = counts(s, "p", "alice", T0);
    g_assert_cmpuint(c.today_files, ==, 3);
    for (int i = 0; i < 5; i++)
        mg_wstatus_quota_give_back(s, "p", "bob", 1000, T0);
    c = counts(s, "p", "bob", T0);
    g_assert_cmpuint(c.today_files, ==, 0);
    g_assert_cmpuint(c.today_bytes, ==, 0);
    mg_wstatus_quota_give_back(s, "p", "nobody", 1, T0); /* unknown: nothing */

    /* the day rolls over at 00:00:00 UTC exactly */
    g_assert_false(mg_wstatus_quota_take(s, "p", "alice", 1, 3, 0, last));
    n = to_node(s, last);
    o = user_of(n, "p", "alice");
    g_assert_cmpint(json_object_get_int_member(o, "today_files"), ==, 3);
    g_assert_cmpint(json_object_get_int_member(o, "max_files"), ==, 3);
    g_assert_cmpint(json_object_get_int_member(o, "max_bytes"), ==, 0);
    json_node_unref(n);
    n = to_node(s, last + 1); /* written the next day, before any take */
    g_assert_cmpstr(json_object_get_string_member(json_node_get_object(n), "day"), ==,
                    "2024-06-02");
    g_assert_cmpint(json_object_get_int_member(user_of(n, "p", "alice"), "today_files"), ==, 0);
    json_node_unref(n);
    c = counts(s, "p", "alice", last + 1);
    g_assert_cmpuint(c.today_files, ==, 0);
    g_assert_true(mg_wstatus_quota_take(s, "p", "alice", 1, 3, 0, last + 1));
    c = counts(s, "p", "alice", last + 1);
    g_assert_cmpuint(c.today_files, ==, 1);
    g_assert_cmpuint(c.today_bytes, ==, 1);

    /* bytes: 1000 a day */
    g_assert_true(mg_wstatus_quota_take(s, "b", "u", 600, 0, 1000, T0));
    g_assert_false(mg_wstatus_quota_take(s, "b", "u", 500, 0, 1000, T0));
    c = counts(s, "b", "u", T0);
    g_assert_cmpuint(c.today_files, ==, 1);
    g_assert_cmpuint(c.today_bytes, ==, 600); /* the refused take counted nothing */
    g_assert_true(mg_wstatus_quota_take(s, "b", "u", 400, 0, 1000, T0));
    g_assert_false(mg_wstatus_quota_take(s, "b", "u", 1, 0, 1000, T0));
    g_assert_true(mg_wstatus_quota_take(s, "b", "u", 0, 0, 1000, T0));
    g_assert_false(mg_wstatus_quota_take(s, "b", "big", 1001, 0, 1000, T0));
    g_assert_false(mg_wstatus_quota_take(s, "b", "big", UINT64_MAX, 0, 1000, T0));
    g_assert_true(mg_wstatus_quota_take(s, "b", "big", 1000, 0, 1000, T0));
    /* both limits: the files limit bites first here */
    g_assert_true(mg_wstatus_quota_take(s, "c", "u", 1, 1, 1000, T0));
    g_assert_false(mg_wstatus_quota_take(s, "c", "u", 1, 1, 1000, T0));

    /* 0: no limit */
    for (int i = 0; i < 10000; i++)
        g_assert_true(mg_wstatus_quota_take(s, "free", "u", UINT64_MAX / 4, 0, 0, NOON));
    c = counts(s, "free", "u", NOON);
    g_assert_cmpuint(c.today_files, ==, 10000);
    g_assert_cmpuint(c.today_bytes, ==, UINT64_MAX); /* saturates */
    mg_wstatus_free(s);
}

static void test_over_quota(struct fx *f, gconstpointer data)
{
    struct mg_wstatus *s = mg_wstatus_new(1);
    struct mg_wstatus_counts c;
    JsonNode *n;
    JsonObject *o;
    JsonArray *a;

    (void)f;
    (void)data;
    for (int i = 0; i < 150; i++) {
        char name[16];

        g_snprintf(name, sizeof(name), "big%03d", i);
        mg_wstatus_over_quota_add(s, "p", "alice", name, 1000);
    }
    mg_wstatus_over_quota_add(s, "p", "bob", "x", 5);
    c = counts(s, "p", "alice", T0);
    g_assert_cmpuint(c.over_quota_files, ==, 150);
    n = to_node(s, T0);
    o = user_of(n, "p", "alice");
    a = json_object_get_array_member(o, "over_quota");
    g_assert_cmpuint(json_array_get_length(a), ==, MG_WSTATUS_OVER_NAMES);
    g_assert_cmpstr(json_object_get_string_member(json_array_get_object_element(a, 0), "name"), ==,
                    "big000");
    g_assert_cmpint(json_object_get_int_member(json_array_get_object_element(a, 99), "bytes"), ==,
                    1000);
    g_assert_cmpint(json_object_get_int_member(o, "over_quota_files"), ==, 150);
    g_assert_cmpint(json_object_get_int_member(o, "over_quota_bytes"), ==, 150000);
    g_assert_cmpint(json_object_get_int_member(user_of(n, "p", "bob"), "over_quota_files"), ==, 1);
    json_node_unref(n);

    mg_wstatus_over_quota_clear(s);
    n = to_node(s, T0);
    o = user_of(n, "p", "alice");
    g_assert_cmpuint(json_array_get_length(json_object_get_array_member(o, "over_quota")), ==, 0);
    g_assert_cmpint(json_object_get_int_member(o, "over_quota_files"), ==, 0);
    g_assert_cmpint(json_object_get_int_member(o, "over_quota_bytes"), ==, 0);
    g_assert_cmpint(json_object_get_int_member(user_of(n, "p", "bob"), "over_quota_files"), ==, 0);
    json_node_unref(n);
    mg_wstatus_free(s);
}

/* A status with a bit of everything, names that are not UTF-8 included. */
static struct mg_wstatus *sample(void)
{
    struct mg_wstatus *s = mg_wstatus_new(2);

    mg_wstatus_record(s, "default", "alice", "a.pdf", MG_WSTATUS_DONE, 1234, NULL, T0);
    mg_wstatus_record(s, "default", "alice", "b.pdf", MG_WSTATUS_DONE, 66, NULL, T0);
    mg_wstatus_record(s, "default", "b\xffob", "n\xfe\nl.exe", MG_WSTATUS_REFUSED, 5, "symlink",
                      T0 + 1);
    mg_wstatus_record(s, "default", "", "x", MG_WSTATUS_FAILED, 5, "pipeline", T0 + 2);
    mg_wstatus_record(s, "default", "", "x", MG_WSTATUS_FAILED, 5, "pipeline", T0 + 3);
    mg_wstatus_record(s, "lgwan", "\xe5\xb1\xb1\xe7\x94\xb0", "y", MG_WSTATUS_RETRY, 5, "changed",
                      T0 + 4);
    for (int i = 0; i < 3; i++)
        g_assert_true(mg_wstatus_quota_take(s, "default", "alice", 100, 3, 1000, T0));
    g_assert_true(mg_wstatus_quota_take(s, "default", "b\xffob", 100, 3, 1000, T0));
    mg_wstatus_over_quota_add(s, "default", "alice", "late.bin", 77);
    return s;
}

/* A deep copy of n's users and errors, without the over-quota members
 * (not reloaded); json_node_copy shares the objects. */
static JsonNode *comparable(JsonNode *n)
{
    char *text = json_to_string(n, FALSE);
    JsonNode *c = json_from_string(text, NULL);
    JsonObject *o = json_node_get_object(c);
    JsonArray *users = json_object_get_array_member(o, "users");

    for (guint i = 0; i < json_array_get_length(users); i++) {
        JsonObject *u = json_array_get_object_element(users, i);

        json_object_remove_member(u, "over_quota");
        json_object_remove_member(u, "over_quota_files");
        json_object_remove_member(u, "over_quota_bytes");
    }
    json_object_remove_member(o, "pid");
    json_object_remove_member(o, "started");
    json_object_remove_member(o, "queue");
    json_object_remove_member(o, "in_progress");
    json_object_remove_member(o, "workers");
    g_free(text);
    return c;
}

static void test_round_trip(struct fx *f, gconstpointer data)
{
    struct mg_wstatus *s = sample();
    struct mg_wstatus *t;
    struct mg_wstatus_counts c;
    GError *err = NULL;
    JsonNode *a, *b, *ca, *cb;
    JsonObject *o;
    struct stat st;
    char *tmp = g_build_filename(f->dir, MG_WSTATUS_TMP_NAME, NULL);

    (void)data;
    /* a stale temporary from a crash, with another mode: replaced */
    put_file(f, MG_WSTATUS_TMP_NAME, "junk");
    g_assert_cmpint(chmod(tmp, 0666), ==, 0);
    write_ok(s, f, NOON);
    g_assert_cmpint(fstatat(f->dfd, MG_WSTATUS_NAME, &st, 0), ==, 0);
    g_assert_true(S_ISREG(st.st_mode));
    g_assert_cmpint(st.st_mode & 0137, ==, 0);
    g_assert_cmpint(fstatat(f->dfd, MG_WSTATUS_TMP_NAME, &st, 0), ==, -1);
    g_assert_cmpint(errno, ==, ENOENT);

    a = to_node(s, NOON);
    o = user_of(a, "default", "b\xef\xbf\xbdob");
    g_assert_nonnull(o);
    g_assert_cmpstr(json_object_get_string_member(o, "user_b64"), ==, "Yv9vYg==");
    g_assert_false(json_object_has_member(o, "pair_b64"));
    g_assert_cmpstr(json_object_get_string_member(error_at(a, 0), "name_b64"), ==, "bv4KbC5leGU=");
    g_assert_cmpint(json_object_get_int_member(error_at(a, 1), "count"), ==, 2);

    /* the same day: everything but the over-quota list comes back */
    t = mg_wstatus_new(5);
    g_assert_true(mg_wstatus_load(t, f->dfd, NOON + 60, &err));
    g_assert_no_error(err);
    b = to_node(t, NOON);
    ca = comparable(a);
    cb = comparable(b);
    if (!json_node_equal(ca, cb)) {
        char *x = json_to_string(ca, TRUE), *y = json_to_string(cb, TRUE);

        g_test_message("written:\n%s\nloaded:\n%s", x, y);
        g_free(x);
        g_free(y);
        g_assert_not_reached();
    }
    g_assert_cmpint(json_object_get_int_member(json_node_get_object(b), "workers"), ==, 5);
    g_assert_cmpint(json_object_get_int_member(json_node_get_object(b), "pid"), ==, getpid());
    g_assert_cmpint(json_object_get_int_member(user_of(b, "default", "alice"), "over_quota_files"),
                    ==, 0);
    json_node_unref(ca);
    json_node_unref(cb);
    json_node_unref(b);
    /* the quota stays full across the "restart"; the byte name works */
    g_assert_false(mg_wstatus_quota_take(t, "default", "alice", 1, 3, 1000, NOON + 60));
    c = counts(t, "default", "b\xffob", NOON);
    g_assert_cmpuint(c.refused, ==, 1);
    g_assert_cmpuint(c.today_files, ==, 1);
    g_assert_true(mg_wstatus_quota_take(t, "default", "b\xffob", 100, 3, 1000, NOON + 60));
    /* and it goes on: a new error after the loaded ones */
    mg_wstatus_record(t, "default", "alice", "z", MG_WSTATUS_FAILED, 1, "new", NOON + 61);
    b = to_node(t, NOON + 61);
    g_assert_cmpuint(json_array_get_length(member_array(b, "errors")), ==, 4);
    g_assert_cmpstr(json_object_get_string_member(error_at(b, 3), "name"), ==, "z");
    json_node_unref(b);
    mg_wstatus_free(t);

    /* the next UTC day: cumulative counts only */
    t = mg_wstatus_new(1);
    g_assert_true(mg_wstatus_load(t, f->dfd, T0 - 3600 + DAY, &err));
    g_assert_no_error(err);
    c = counts(t, "default", "alice", T0 - 3600 + DAY);
    g_assert_cmpuint(c.done, ==, 2);
    g_assert_cmpuint(c.bytes, ==, 1300);
    g_assert_cmpuint(c.today_files, ==, 0);
    g_assert_cmpuint(c.today_bytes, ==, 0);
    g_assert_true(mg_wstatus_quota_take(t, "default", "alice", 1, 3, 1000, T0 - 3600 + DAY));
    b = to_node(t, T0 - 3600 + DAY);
    g_assert_cmpuint(json_array_get_length(member_array(b, "errors")), ==, 3);
    json_node_unref(b);
    mg_wstatus_free(t);

    /* written again: replaces; a write that fails leaves the old file */
    mg_wstatus_record(s, "default", "alice", "c.pdf", MG_WSTATUS_DONE, 1, NULL, NOON);
    write_ok(s, f, NOON + 1);
    g_assert_cmpint(mkdirat(f->dfd, MG_WSTATUS_TMP_NAME, 0700), ==, 0);
    mg_wstatus_record(s, "default", "alice", "d.pdf", MG_WSTATUS_DONE, 1, NULL, NOON);
    g_assert_false(mg_wstatus_write(s, f->dfd, NOON + 2, &err));
    g_assert_error(err, MG_WSTATUS_ERROR, MG_WSTATUS_ERROR_IO);
    g_assert_nonnull(strstr(err->message, MG_WSTATUS_TMP_NAME));
    g_clear_error(&err);
    g_assert_cmpint(unlinkat(f->dfd, MG_WSTATUS_TMP_NAME, AT_REMOVEDIR), ==, 0);
    t = mg_wstatus_new(1);
    g_assert_true(mg_wstatus_load(t, f->dfd, NOON, &err));
    c = counts(t, "default", "alice", NOON);
    g_assert_cmpuint(c.done, ==, 3);
    mg_wstatus_free(t);

    json_node_unref(a);
    mg_wstatus_free(s);
    g_free(tmp);
}

static const char *const corrupt_files[] = {
    "",
    "{",
    "not json",
    "[]",
    "{}",
    "{\"version\":2}",
    "{\"version\":\"1\"}",
    "{\"version\":1,\"users\":{}}",
    "{\"version\":1,\"errors\":7}",
    "{\"version\":1,\"day\":5}",
    "{\"version\":1,\"users\":[7]}",
    "{\"version\":1,\"users\":[{\"pair\":\"p\"}]}",
    "{\"version\":1,\"users\":[{\"user\":\"u\"}]}",
    "{\"version\":1,\"users\":[{\"pair\":\"p\",\"user\":\"u\",\"done\":-1}]}",
    "{\"version\":1,\"users\":[{\"pair\":\"p\",\"user\":\"u\",\"done\":1.5}]}",
    "{\"version\":1,\"users\":[{\"pair\":\"p\",\"user\":\"u\",\"bytes\":\"9\"}]}",
    "{\"version\":1,\"users\":[{\"pair\":\"p\",\"user\":\"u\",\"max_files\":99999999999}]}",
    "{\"version\":1,\"users\":[{\"pair\":\"p\",\"user\":\"x\",\"user_b64\":\"!!\"}]}",
    "{\"version\":1,\"users\":[{\"pair\":\"p\",\"user\":\"x\",\"user_b64\":\"YQ\"}]}",
    "{\"version\":1,\"users\":[{\"pair\":\"p\",\"user\":\"x\",\"user_b64\":\"YQBi\"}]}",
    /* a good entry, then a bad one: nothing is taken */
    "{\"version\":1,\"users\":[{\"pair\":\"p\",\"user\":\"u\",\"done\":5},"
    "{\"pair\":\"p\",\"user\":\"v\",\"done\":-5}]}",
    "{\"version\":1,\"users\":[{\"pair\":\"p\",\"user\":\"u\",\"done\":5}],"
    "\"errors\":[{\"time\":1,\"pair\":\"p\",\"user\":\"u\",\"name\":\"n\",\"outcome\":\"done\"}]}",
    "{\"version\":1,\"errors\":[{\"pair\":\"p\",\"user\":\"u\",\"name\":\"n\","
    "\"outcome\":\"failed\"}]}",
    "{\"version\":1,\"errors\":[{\"time\":1,\"pair\":\"p\",\"user\":\"u\",\"name\":\"n\","
    "\"outcome\":\"failed\",\"count\":0}]}",
    "{\"version\":1,\"errors\":[{\"time\":1,\"pair\":\"p\",\"user\":\"u\","
    "\"outcome\":\"failed\"}]}",
    "{\"version\":1,\"errors\":[{\"time\":1,\"pair\":\"p\",\"user\":\"u\",\"name\":\"n\","
    "\"outcome\":\"failed\",\"reason\":3}]}",
};

/* Loading must fail as corrupt and change nothing. */
static void load_fails(struct fx *f, const char *what)
{
    struct mg_wstatus *s = mg_wstatus_new(1);
    struct mg_wstatus_counts c;
    GError *err = NULL;
    JsonNode *n;

    mg_wstatus_record(s, "p", "keep", "k", MG_WSTATUS_FAILED, 1, "kept", T0);
    g_assert_true(mg_wstatus_quota_take(s, "p", "keep", 1, 0, 0, T0));
    if (mg_wstatus_load(s, f->dfd, T0, &err))
        g_error("loaded: %s", what);
    g_assert_error(err, MG_WSTATUS_ERROR, MG_WSTATUS_ERROR_CORRUPT);
    g_assert_nonnull(strstr(err->message, MG_WSTATUS_NAME));
    g_clear_error(&err);
    c = counts(s, NULL, NULL, T0);
    g_assert_cmpuint(c.done + c.refused + c.retry, ==, 0);
    g_assert_cmpuint(c.failed, ==, 1);
    g_assert_cmpuint(c.today_files, ==, 1);
    n = to_node(s, T0);
    g_assert_cmpuint(json_array_get_length(member_array(n, "users")), ==, 1);
    g_assert_cmpuint(json_array_get_length(member_array(n, "errors")), ==, 1);
    json_node_unref(n);
    mg_wstatus_free(s);
}

static void test_corrupt(struct fx *f, gconstpointer data)
{
    struct mg_wstatus *s = mg_wstatus_new(1);
    struct mg_wstatus_counts c;
    GError *err = NULL;
    char *target;

    (void)data;
    /* missing: fine, nothing */
    g_assert_true(mg_wstatus_load(s, f->dfd, T0, &err));
    g_assert_no_error(err);
    c = counts(s, NULL, NULL, T0);
    g_assert_cmpuint(c.done + c.failed + c.refused + c.retry, ==, 0);
    mg_wstatus_free(s);

    /* the smallest good file, for contrast */
    put_file(f, MG_WSTATUS_NAME, "{\"version\":1}");
    s = mg_wstatus_new(1);
    g_assert_true(mg_wstatus_load(s, f->dfd, T0, &err));
    g_assert_no_error(err);
    mg_wstatus_free(s);

    for (size_t i = 0; i < G_N_ELEMENTS(corrupt_files); i++) {
        put_file(f, MG_WSTATUS_NAME, corrupt_files[i]);
        load_fails(f, corrupt_files[i]);
    }
    /* a symlink (to a good file) and a directory */
    put_file(f, "elsewhere.json", "{\"version\":1}");
    g_assert_cmpint(unlinkat(f->dfd, MG_WSTATUS_NAME, 0), ==, 0);
    target = g_build_filename(f->dir, "elsewhere.json", NULL);
    g_assert_cmpint(symlinkat(target, f->dfd, MG_WSTATUS_NAME), ==, 0);
    g_free(target);
    load_fails(f, "symlink");
    g_assert_cmpint(unlinkat(f->dfd, MG_WSTATUS_NAME, 0), ==, 0);
    g_assert_cmpint(mkdirat(f->dfd, MG_WSTATUS_NAME, 0700), ==, 0);
    load_fails(f, "directory");
    g_assert_cmpint(unlinkat(f->dfd, MG_WSTATUS_NAME, AT_REMOVEDIR), ==, 0);
}

#define ADD(path, fn) g_test_add(path, struct fx, NULL, fx_setup, fn, fx_teardown)

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    ADD("/wstatus/outcomes", test_outcomes);
    ADD("/wstatus/ring", test_ring);
    ADD("/wstatus/threads", test_threads);
    ADD("/wstatus/quota", test_quota);
    ADD("/wstatus/over-quota", test_over_quota);
    ADD("/wstatus/round-trip", test_round_trip);
    ADD("/wstatus/corrupt", test_corrupt);
    return g_test_run();
}
