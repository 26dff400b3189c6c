/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * NAME
 *	journal 3
 * SUMMARY
 *	the transfer folder's journal (mugaika-watch crash safety)
 * SYNOPSIS
 *	#include <mugaika/wjournal.h>
 *
 *	struct mg_wjournal *mg_wjournal_open(int state_dirfd, GError **err);
 *	void mg_wjournal_close(struct mg_wjournal *j);
 *
 *	bool mg_wjournal_begin(j, uint64_t *item_id, const struct mg_wjournal_input *in,
 *			       GError **err);
 *	bool mg_wjournal_commit(j, item_id, out_key, quarantine_id, tmp_names, final_names,
 *				size_t n, GError **err);
 *	bool mg_wjournal_done(j, item_id, GError **err);
 *	bool mg_wjournal_failed(j, item_id, const char *reason, GError **err);
 *	bool mg_wjournal_abort(j, item_id, GError **err);
 *
 *	GPtrArray *mg_wjournal_pending(j, GError **err);
 *	bool mg_wjournal_compact(j, GError **err);
 *	uint64_t mg_wjournal_size(j);
 *	bool mg_wjournal_broken(j);
 *	unsigned mg_wjournal_torn(j);
 *	void mg_wjournal_item_free(struct mg_wjournal_item *item);
 * DESCRIPTION
 *	The contract of each function is in include/mugaika/wjournal.h.
 *
 *	Format. The journal is a text file of lines; each line is one
 *	record: a JSON object (made by json-glib, on one line), one
 *	space, the CRC-32 (zlib) of the JSON text as 8 lowercase hex
 *	digits, and "\n". A record counts only when all of it is there,
 *	newline included. The objects ("op" says which):
 *
 *	  {"op":"base","v":1,"next":N}   first line of every journal:
 *	      format version, and the lowest id a new item may take (so
 *	      ids keep growing after a compaction dropped every item)
 *	  {"op":"begin","id":N,"time":T,"in":B,"name":B,"dev":I,"ino":I,
 *	      "size":I,"mtime_ns":I}
 *	  {"op":"commit","id":N,"time":T,"out":B,"q":"quarantine id",
 *	      "files":[[B_tmp,B_final],...]}
 *	  {"op":"done","id":N,"time":T}
 *	  {"op":"failed","id":N,"time":T,"reason":"text"}
 *	  {"op":"abort","id":N,"time":T}
 *
 *	B: a name (folder key or file name) is bytes, not necessarily
 *	UTF-8, so it is stored as base64 (RFC 4648, standard alphabet,
 *	padded) of its bytes; a reader accepts only the canonical
 *	encoding and no NUL byte in the decoded name. JSON strings hold
 *	only UTF-8 (the quarantine id; the reason, made valid). I: dev,
 *	ino and size are unsigned 64-bit values written as the signed
 *	64-bit JSON integer with the same bits (so the number shown is
 *	the value itself below 2^63, negative above). T: wall-clock
 *	seconds, for people reading the journal. Members a reader does
 *	not know are ignored.
 *
 *	Rules checked on reading (and, for the caller's calls, before
 *	writing): ids are positive and each begin's id is higher than
 *	every earlier one (a new item takes the highest of base's "next"
 *	and one more than the last begin); commit follows begin;
 *	done follows commit; failed follows begin or commit; abort
 *	follows begin; nothing follows done, failed or abort.
 *
 *	Reading (at open). Every line is checked: framing and checksum
 *	first. A line that fails them is a torn write when it is the
 *	last one (with or without its newline): it is cut off the file
 *	(ftruncate, fdatasync), so later records are not appended to
 *	its remains, and counted. Anywhere else it fails the open with
 *	the line number. A line whose checksum matches but whose record
 *	breaks a rule is never a torn write: it fails the open too.
 *
 *	Writing. A record is one write(2) on a descriptor opened with
 *	O_APPEND, then fdatasync(2) (which also flushes the new file
 *	size). If the write fails the file is cut back to its previous
 *	size; if the cut or the fdatasync fails, the journal is broken
 *	(what is on disk is unknown) and refuses every later record.
 *	Creating the journal fsyncs the directory.
 *
 *	Locking. flock(LOCK_EX|LOCK_NB) on the journal file, tried for
 *	half a second (`mugaika watch status` takes a shared lock for an
 *	instant to see whether a daemon runs). Because
 *	compaction replaces the file, open locks and then checks that
 *	the name "journal" still is the file it locked (otherwise it
 *	tries again); compaction locks journal.new before renaming it,
 *	so whichever file another process opens, it finds it locked.
 *
 *	Compaction writes the base record and, per pending item in id
 *	order, its begin (and commit) record again, with their original
 *	times, into journal.new; fsync; rename over journal; fsync the
 *	directory. journal.new is removed by open (under the lock) when
 *	a crash left it behind.
 *
 *	The state kept in memory is only the pending items (a hash
 *	table by id) and the next id: a closed item is forgotten.
 * LIMITS
 *	A record line: at most 16 MiB (longer ones are refused when
 *	written and corrupt when read). Locking: 5 attempts.
 * DIAGNOSTICS
 *	GError MG_WJOURNAL_ERROR, "PATH: OPERATION: REASON"; corruption
 *	reads "PATH: read: line N: REASON".
 * SEE ALSO
 *	docs/architecture.md, "The transfer folder".
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h> /* renameat */
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <glib.h>
#include <json-glib/json-glib.h>
#include <zlib.h>

#include <mugaika/wjournal.h>

#include "core/io.h"
#include "core/jsonget.h"

#define FORMAT_VERSION 1
#define LINE_LIMIT     (16u << 20)
#define READ_CHUNK     65536
#define LOCK_TRIES     5
#define CRC_FIELD      9 /* " %08x" */

struct mg_wjournal {
    GMutex lock;      /* orders records; guards everything below */
    int dirfd;        /* our duplicate of the state directory */
    int fd;           /* the journal (O_RDWR | O_APPEND), locked */
    char *path;       /* for messages, escaped */
    char *new_path;   /* journal.new, for messages */
    GHashTable *open; /* id (gint64 *) -> struct mg_wjournal_item *: pending */
    uint64_t next_id;
    uint64_t base_next; /* the base record's "next", while reading */
    uint64_t size;
    unsigned torn;
    bool broken;
};

enum op { OP_BASE, OP_BEGIN, OP_COMMIT, OP_DONE, OP_FAILED, OP_ABORT, OP_COUNT };

static const char *const op_names[OP_COUNT] = {
    [OP_BASE] = "base", [OP_BEGIN] = "begin",   [OP_COMMIT] = "commit",
    [OP_DONE] = "done", [OP_FAILED] = "failed", [OP_ABORT] = "abort",
};

GQuark mg_wjournal_error_quark(void)
{
    return g_quark_from_static_string("mg-wjournal-error-quark");
}

/* --- errors and paths ----------------------------------------------------- */

/* "PATH: OP: REASON" in the journal's error domain */
#define fail(err, code, path, op, ...)                                                             \
    mg_io_error(err, MG_WJOURNAL_ERROR, code, path, op, __VA_ARGS__)

static void fail_errno(GError **err, const char *path, const char *op, int e)
{
    fail(err, MG_WJOURNAL_ERROR_IO, path, op, "%s", g_strerror(e));
}

/* --- items ------------------------------------------------------------------ */

void mg_wjournal_item_free(struct mg_wjournal_item *item)
{
    if (!item)
        return;
    g_free(item->in_key);
    g_free(item->name);
    g_free(item->out_key);
    g_free(item->quarantine_id);
    g_strfreev(item->tmp_names);
    g_strfreev(item->final_names);
    g_free(item);
}

static void item_free_cb(gpointer p)
{
    mg_wjournal_item_free(p);
}

static struct mg_wjournal_item *item_copy(const struct mg_wjournal_item *it)
{
    struct mg_wjournal_item *c = g_new0(struct mg_wjournal_item, 1);

    *c = *it;
    c->in_key = g_strdup(it->in_key);
    c->name = g_strdup(it->name);
    c->out_key = g_strdup(it->out_key);
    c->quarantine_id = g_strdup(it->quarantine_id);
    c->tmp_names = g_strdupv(it->tmp_names);
    c->final_names = g_strdupv(it->final_names);
    return c;
}

static gint item_cmp(gconstpointer a, gconstpointer b)
{
    const struct mg_wjournal_item *x = *(struct mg_wjournal_item *const *)a;
    const struct mg_wjournal_item *y = *(struct mg_wjournal_item *const *)b;

    return x->id < y->id ? -1 : x->id > y->id;
}

/* The pending items in id order (borrowed). Caller holds the lock. */
static GPtrArray *sorted_items(struct mg_wjournal *j)
{
    GPtrArray *a = g_ptr_array_new();
    GHashTableIter it;
    gpointer v;

    g_hash_table_iter_init(&it, j->open);
    while (g_hash_table_iter_next(&it, NULL, &v))
        g_ptr_array_add(a, v);
    g_ptr_array_sort(a, item_cmp);
    return a;
}

static struct mg_wjournal_item *find(struct mg_wjournal *j, uint64_t id)
{
    gint64 key = (gint64)id;

    return g_hash_table_lookup(j->open, &key);
}

/* NULL when op may follow the item's state (item NULL: unknown id),
 * else why not. */
static const char *transition_error(const struct mg_wjournal_item *it, enum op op)
{
    if (!it)
        return "no such pending item";
    switch (op) {
    case OP_COMMIT:
    case OP_ABORT:
        return it->state == MG_WJOURNAL_BEGUN ? NULL : "item is already committed";
    case OP_DONE:
        return it->state == MG_WJOURNAL_COMMITTED ? NULL : "item is not committed";
    case OP_FAILED:
        return NULL;
    default:
        return "bad record";
    }
}

/* --- writing records ------------------------------------------------------- */

static void add_int(JsonBuilder *b, const char *key, gint64 v)
{
    json_builder_set_member_name(b, key);
    json_builder_add_int_value(b, v);
}

static void add_str(JsonBuilder *b, const char *key, const char *v)
{
    json_builder_set_member_name(b, key);
    json_builder_add_string_value(b, v);
}

static char *b64(const char *s)
{
    return g_base64_encode((const guchar *)s, strlen(s));
}

static void add_b64(JsonBuilder *b, const char *key, const char *v)
{
    char *e = b64(v);

    add_str(b, key, e);
    g_free(e);
}

static JsonBuilder *record_start(enum op op, uint64_t id, gint64 time)
{
    JsonBuilder *b = json_builder_new();

    json_builder_begin_object(b);
    add_str(b, "op", op_names[op]);
    add_int(b, "id", (gint64)id);
    add_int(b, "time", time);
    return b;
}

/* Ends b's object and appends "JSON CRC\n" to line. Frees b. */
static void record_end(JsonBuilder *b, GString *line)
{
    JsonGenerator *gen = json_generator_new();
    JsonNode *root;
    char *text;
    gsize len = 0;

    json_builder_end_object(b);
    root = json_builder_get_root(b);
    json_generator_set_root(gen, root);
    text = json_generator_to_data(gen, &len);
    g_string_append_len(line, text, (gssize)len);
    g_string_append_printf(line, " %08lx\n", crc32(0, (const Bytef *)text, (uInt)len));
    g_free(text);
    json_node_unref(root);
    g_object_unref(gen);
    g_object_unref(b);
}

static void record_base(GString *line, uint64_t next)
{
    JsonBuilder *b = json_builder_new();

    json_builder_begin_object(b);
    add_str(b, "op", op_names[OP_BASE]);
    add_int(b, "v", FORMAT_VERSION);
    add_int(b, "next", (gint64)next);
    record_end(b, line);
}

static void record_begin(GString *line, const struct mg_wjournal_item *it)
{
    JsonBuilder *b = record_start(OP_BEGIN, it->id, it->begin_time);

    add_b64(b, "in", it->in_key);
    add_b64(b, "name", it->name);
    add_int(b, "dev", (gint64)it->dev);
    add_int(b, "ino", (gint64)it->ino);
    add_int(b, "size", (gint64)it->size);
    add_int(b, "mtime_ns", it->mtime_ns);
    record_end(b, line);
}

static void record_commit(GString *line, const struct mg_wjournal_item *it)
{
    JsonBuilder *b = record_start(OP_COMMIT, it->id, it->commit_time);

    add_b64(b, "out", it->out_key);
    add_str(b, "q", it->quarantine_id);
    json_builder_set_member_name(b, "files");
    json_builder_begin_array(b);
    for (size_t i = 0; i < it->n_outputs; i++) {
        char *t = b64(it->tmp_names[i]);
        char *f = b64(it->final_names[i]);

        json_builder_begin_array(b);
        json_builder_add_string_value(b, t);
        json_builder_add_string_value(b, f);
        json_builder_end_array(b);
        g_free(t);
        g_free(f);
    }
    json_builder_end_array(b);
    record_end(b, line);
}

/* Appends line durably. Caller holds the lock. */
static bool append(struct mg_wjournal *j, const GString *line, const char *op, GError **err)
{
    int e;

    if (j->broken) {
        fail(err, MG_WJOURNAL_ERROR_BROKEN, j->path, op,
             "an earlier write failed; the journal must be opened again");
        return false;
    }
    if (line->len > LINE_LIMIT) {
        fail(err, MG_WJOURNAL_ERROR_STATE, j->path, op, "record of %zu bytes is too long",
             line->len);
        return false;
    }
    e = mg_write_all(j->fd, line->str, line->len);
    if (e != 0) {
        if (ftruncate(j->fd, (off_t)j->size) != 0)
            j->broken = true;
        fail_errno(err, j->path, op, e);
        return false;
    }
    while ((e = fdatasync(j->fd) != 0 ? errno : 0) == EINTR)
        ;
    if (e != 0) {
        j->broken = true;
        fail(err, MG_WJOURNAL_ERROR_IO, j->path, op, "fdatasync: %s", g_strerror(e));
        return false;
    }
    j->size += line->len;
    return true;
}

static gint64 now_s(void)
{
    return g_get_real_time() / G_USEC_PER_SEC;
}

/* Checks the id and the transition for a caller's record; returns the
 * item or NULL and err. Caller holds the lock. */
static struct mg_wjournal_item *check_call(struct mg_wjournal *j, uint64_t id, enum op op,
                                           GError **err)
{
    struct mg_wjournal_item *it = find(j, id);
    const char *why = transition_error(it, op);

    if (why) {
        fail(err, MG_WJOURNAL_ERROR_STATE, j->path, op_names[op], "item %" G_GUINT64_FORMAT ": %s",
             id, why);
        return NULL;
    }
    return it;
}

bool mg_wjournal_begin(struct mg_wjournal *j, uint64_t *item_id, const struct mg_wjournal_input *in,
                       GError **err)
{
    struct mg_wjournal_item *it;
    GString *line;
    bool ok;

    if (!in || !in->in_key || !in->name) {
        fail(err, MG_WJOURNAL_ERROR_STATE, j->path, "begin", "no input folder or file name");
        return false;
    }
    it = g_new0(struct mg_wjournal_item, 1);
    it->state = MG_WJOURNAL_BEGUN;
    it->begin_time = now_s();
    it->in_key = g_strdup(in->in_key);
    it->name = g_strdup(in->name);
    it->dev = in->dev;
    it->ino = in->ino;
    it->size = in->size;
    it->mtime_ns = in->mtime_ns;

    g_mutex_lock(&j->lock);
    it->id = j->next_id;
    line = g_string_new(NULL);
    record_begin(line, it);
    ok = append(j, line, "begin", err);
    if (ok) {
        j->next_id++;
        g_hash_table_insert(j->open, &it->id, it);
        if (item_id)
            *item_id = it->id;
    }
    g_mutex_unlock(&j->lock);
    g_string_free(line, TRUE);
    if (!ok)
        mg_wjournal_item_free(it);
    return ok;
}

static bool names_ok(const char *const *names, size_t n)
{
    if (n > 0 && !names)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!names[i])
            return false;
    return true;
}

bool mg_wjournal_commit(struct mg_wjournal *j, uint64_t item_id, const char *out_key,
                        const char *quarantine_id, const char *const *tmp_names,
                        const char *const *final_names, size_t n, GError **err)
{
    struct mg_wjournal_item *it;
    struct mg_wjournal_item next;
    GString *line;
    bool ok = false;

    if (!out_key || !quarantine_id || !g_utf8_validate(quarantine_id, -1, NULL) ||
        !names_ok(tmp_names, n) || !names_ok(final_names, n)) {
        fail(err, MG_WJOURNAL_ERROR_STATE, j->path, "commit",
             "item %" G_GUINT64_FORMAT ": missing name, or quarantine id not UTF-8", item_id);
        return false;
    }
    g_mutex_lock(&j->lock);
    it = check_call(j, item_id, OP_COMMIT, err);
    if (!it) {
        g_mutex_unlock(&j->lock);
        return false;
    }
    /* The committed state, built aside: the item changes only once the
     * record is durable. */
    next = *it;
    next.state = MG_WJOURNAL_COMMITTED;
    next.commit_time = now_s();
    next.out_key = g_strdup(out_key);
    next.quarantine_id = g_strdup(quarantine_id);
    next.n_outputs = n;
    next.tmp_names = g_new0(char *, n + 1);
    next.final_names = g_new0(char *, n + 1);
    for (size_t i = 0; i < n; i++) {
        next.tmp_names[i] = g_strdup(tmp_names[i]);
        next.final_names[i] = g_strdup(final_names[i]);
    }
    line = g_string_new(NULL);
    record_commit(line, &next);
    ok = append(j, line, "commit", err);
    if (ok) {
        *it = next;
    } else {
        g_free(next.out_key);
        g_free(next.quarantine_id);
        g_strfreev(next.tmp_names);
        g_strfreev(next.final_names);
    }
    g_mutex_unlock(&j->lock);
    g_string_free(line, TRUE);
    return ok;
}

/* done, failed and abort: a closing record. */
static bool close_item(struct mg_wjournal *j, uint64_t id, enum op op, const char *reason,
                       GError **err)
{
    struct mg_wjournal_item *it;
    GString *line;
    JsonBuilder *b;
    bool ok;

    g_mutex_lock(&j->lock);
    it = check_call(j, id, op, err);
    if (!it) {
        g_mutex_unlock(&j->lock);
        return false;
    }
    b = record_start(op, id, now_s());
    if (op == OP_FAILED) {
        char *valid = g_utf8_make_valid(reason ? reason : "", -1);

        add_str(b, "reason", valid);
        g_free(valid);
    }
    line = g_string_new(NULL);
    record_end(b, line);
    ok = append(j, line, op_names[op], err);
    if (ok)
        g_hash_table_remove(j->open, &it->id);
    g_mutex_unlock(&j->lock);
    g_string_free(line, TRUE);
    return ok;
}

bool mg_wjournal_done(struct mg_wjournal *j, uint64_t item_id, GError **err)
{
    return close_item(j, item_id, OP_DONE, NULL, err);
}

bool mg_wjournal_failed(struct mg_wjournal *j, uint64_t item_id, const char *reason, GError **err)
{
    return close_item(j, item_id, OP_FAILED, reason, err);
}

bool mg_wjournal_abort(struct mg_wjournal *j, uint64_t item_id, GError **err)
{
    return close_item(j, item_id, OP_ABORT, NULL, err);
}

/* --- reading ------------------------------------------------------------------ */

/* Framing and checksum: NULL when the line is whole, else why not. */
static const char *check_frame(const char *p, size_t len)
{
    unsigned long want = 0;

    if (len < CRC_FIELD + 2)
        return "too short";
    if (p[len - CRC_FIELD] != ' ')
        return "no checksum";
    for (size_t i = len - CRC_FIELD + 1; i < len; i++) {
        char c = p[i];

        if (c >= '0' && c <= '9')
            want = want * 16 + (unsigned long)(c - '0');
        else if (c >= 'a' && c <= 'f')
            want = want * 16 + (unsigned long)(c - 'a' + 10);
        else
            return "bad checksum field";
    }
    if (crc32(0, (const Bytef *)p, (uInt)(len - CRC_FIELD)) != want)
        return "checksum mismatch";
    return NULL;
}

/* A name from its base64 (node must be a string): only the canonical
 * encoding, no NUL byte. NULL when bad. */
static char *unb64(JsonNode *n)
{
    if (!n || !JSON_NODE_HOLDS_VALUE(n) || json_node_get_value_type(n) != G_TYPE_STRING)
        return NULL;
    return mg_json_unb64(json_node_get_string(n));
}

static char *get_b64(JsonObject *o, const char *key)
{
    return unb64(json_object_get_member(o, key));
}

/* Parses the "files" array into it. */
static const char *read_files(JsonObject *o, struct mg_wjournal_item *it)
{
    JsonNode *n = json_object_get_member(o, "files");
    JsonArray *a;
    guint len;

    if (!n || !JSON_NODE_HOLDS_ARRAY(n))
        return "commit without files";
    a = json_node_get_array(n);
    len = json_array_get_length(a);
    it->tmp_names = g_new0(char *, len + 1);
    it->final_names = g_new0(char *, len + 1);
    for (guint i = 0; i < len; i++) {
        JsonNode *pair = json_array_get_element(a, i);
        JsonArray *pa;

        if (!JSON_NODE_HOLDS_ARRAY(pair) || json_array_get_length(json_node_get_array(pair)) != 2)
            return "bad files entry";
        pa = json_node_get_array(pair);
        it->tmp_names[i] = unb64(json_array_get_element(pa, 0));
        it->final_names[i] = unb64(json_array_get_element(pa, 1));
        it->n_outputs = i + 1;
        if (!it->tmp_names[i] || !it->final_names[i])
            return "bad name in files";
    }
    return NULL;
}

static const char *apply_begin(struct mg_wjournal *j, JsonObject *o, gint64 id)
{
    struct mg_wjournal_item *it;
    gint64 dev, ino, size, mtime, t;

    if ((uint64_t)id < j->next_id)
        return "item id not above the earlier ones";
    it = g_new0(struct mg_wjournal_item, 1);
    it->id = (uint64_t)id;
    it->state = MG_WJOURNAL_BEGUN;
    it->in_key = get_b64(o, "in");
    it->name = get_b64(o, "name");
    if (!it->in_key || !it->name || !mg_json_get_int(o, "dev", &dev) ||
        !mg_json_get_int(o, "ino", &ino) || !mg_json_get_int(o, "size", &size) ||
        !mg_json_get_int(o, "mtime_ns", &mtime) || !mg_json_get_int(o, "time", &t)) {
        mg_wjournal_item_free(it);
        return "begin record with a missing or bad member";
    }
    it->dev = (uint64_t)dev;
    it->ino = (uint64_t)ino;
    it->size = (uint64_t)size;
    it->mtime_ns = mtime;
    it->begin_time = t;
    j->next_id = it->id + 1;
    g_hash_table_insert(j->open, &it->id, it);
    return NULL;
}

static const char *apply_commit(struct mg_wjournal *j, JsonObject *o, gint64 id)
{
    struct mg_wjournal_item *it = find(j, (uint64_t)id);
    struct mg_wjournal_item next;
    const char *why = transition_error(it, OP_COMMIT);
    const char *q = mg_json_get_str(o, "q");

    if (why)
        return why;
    memset(&next, 0, sizeof(next));
    why = read_files(o, &next);
    next.out_key = get_b64(o, "out");
    if (!why && (!next.out_key || !q || !mg_json_get_int(o, "time", &next.commit_time)))
        why = "commit record with a missing or bad member";
    if (why) {
        g_free(next.out_key);
        g_strfreev(next.tmp_names);
        g_strfreev(next.final_names);
        return why;
    }
    it->state = MG_WJOURNAL_COMMITTED;
    it->commit_time = next.commit_time;
    it->out_key = next.out_key;
    it->quarantine_id = g_strdup(q);
    it->n_outputs = next.n_outputs;
    it->tmp_names = next.tmp_names;
    it->final_names = next.final_names;
    return NULL;
}

static enum op op_of(const char *s)
{
    for (int i = 0; i < OP_COUNT; i++)
        if (s && strcmp(s, op_names[i]) == 0)
            return (enum op)i;
    return OP_COUNT;
}

/* Applies one whole record (checksum already checked); lineno counts
 * from 1. NULL, or why the record is wrong. */
static const char *apply(struct mg_wjournal *j, JsonObject *o, unsigned lineno)
{
    enum op op = op_of(mg_json_get_str(o, "op"));
    gint64 id = 0;
    gint64 v;
    struct mg_wjournal_item *it;
    const char *why;

    if (op == OP_BASE) {
        if (lineno != 1)
            return "base record after the first line";
        if (!mg_json_get_int(o, "v", &v) || v != FORMAT_VERSION)
            return "unknown format version";
        if (!mg_json_get_int(o, "next", &v) || v < 1)
            return "bad next id";
        j->base_next = (uint64_t)v;
        return NULL;
    }
    if (lineno == 1)
        return "first line is not a base record";
    if (op == OP_COUNT)
        return "unknown record type";
    if (!mg_json_get_int(o, "id", &id) || id < 1)
        return "missing or bad item id";
    if (op == OP_BEGIN)
        return apply_begin(j, o, id);
    if (op == OP_COMMIT)
        return apply_commit(j, o, id);
    it = find(j, (uint64_t)id);
    why = transition_error(it, op);
    if (why)
        return why;
    g_hash_table_remove(j->open, &it->id);
    return NULL;
}

/* One line without its newline. *torn_ok is set when the failure may be a
 * torn write (framing or checksum). */
static const char *read_line(struct mg_wjournal *j, const char *p, size_t len, unsigned lineno,
                             bool *torn_ok)
{
    const char *why = check_frame(p, len);
    JsonParser *parser;
    JsonNode *root;

    *torn_ok = why != NULL;
    if (why)
        return why;
    parser = json_parser_new();
    if (!json_parser_load_from_data(parser, p, (gssize)(len - CRC_FIELD), NULL))
        why = "not JSON";
    else if (!(root = json_parser_get_root(parser)) || !JSON_NODE_HOLDS_OBJECT(root))
        why = "not a JSON object";
    else
        why = apply(j, json_node_get_object(root), lineno);
    g_object_unref(parser);
    return why;
}

/* Reads the whole journal into j; cuts a torn last line off. */
static bool load(struct mg_wjournal *j, GError **err)
{
    GByteArray *buf = g_byte_array_new();
    char *chunk = g_malloc(READ_CHUNK);
    uint64_t off = 0;      /* file offset of buf->data[0] */
    uint64_t good_end = 0; /* end of the last good line */
    unsigned lineno = 0;
    const char *bad = NULL; /* a bad line waiting to be known the last */
    unsigned bad_line = 0;
    bool ok = false;

    for (;;) {
        ssize_t n = pread(j->fd, chunk, READ_CHUNK, (off_t)(off + buf->len));
        size_t start = 0;
        const guint8 *nl;

        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            fail_errno(err, j->path, "read", errno);
            goto out;
        }
        if (n == 0)
            break;
        g_byte_array_append(buf, (const guint8 *)chunk, (guint)n);
        while ((nl = memchr(buf->data + start, '\n', buf->len - start)) != NULL) {
            size_t len = (size_t)(nl - (buf->data + start));
            bool torn_ok;
            const char *why;

            lineno++;
            if (bad) /* a line follows the bad one: it was not torn */
                break;
            why = read_line(j, (const char *)buf->data + start, len, lineno, &torn_ok);
            if (why && !torn_ok) {
                bad = why;
                bad_line = lineno;
                break;
            }
            if (why) {
                bad = why;
                bad_line = lineno;
            } else {
                good_end = off + start + len + 1;
            }
            start += len + 1;
        }
        if (nl) {
            fail(err, MG_WJOURNAL_ERROR_CORRUPT, j->path, "read", "line %u: %s", bad_line, bad);
            goto out;
        }
        g_byte_array_remove_range(buf, 0, (guint)start);
        off += start;
        if (buf->len > LINE_LIMIT) {
            fail(err, MG_WJOURNAL_ERROR_CORRUPT, j->path, "read", "line %u: longer than %u bytes",
                 lineno + 1, LINE_LIMIT);
            goto out;
        }
    }
    if (bad && buf->len > 0) {
        fail(err, MG_WJOURNAL_ERROR_CORRUPT, j->path, "read", "line %u: %s", bad_line, bad);
        goto out;
    }
    j->next_id = MAX(j->next_id, j->base_next);
    j->size = off + buf->len;
    if (good_end < j->size) {
        j->torn++;
        if (ftruncate(j->fd, (off_t)good_end) != 0 || fdatasync(j->fd) != 0) {
            fail_errno(err, j->path, "cut torn last line", errno);
            goto out;
        }
        j->size = good_end;
    }
    ok = true;
out:
    g_free(chunk);
    g_byte_array_unref(buf);
    return ok;
}

/* --- open, compact, close ------------------------------------------------------ */

/* Opens and locks "journal", checking that the name still is the locked
 * file (a compaction may have replaced it meanwhile). */
static int open_locked(struct mg_wjournal *j, GError **err)
{
    for (int tries = 0; tries < LOCK_TRIES; tries++) {
        struct stat st, now;
        int fd = openat(j->dirfd, MG_WJOURNAL_NAME,
                        O_RDWR | O_APPEND | O_CREAT | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY, 0600);
        int r;

        if (fd < 0) {
            fail_errno(err, j->path, "open", errno);
            return -1;
        }
        if (fstat(fd, &st) != 0) {
            int e = errno;

            close(fd);
            fail_errno(err, j->path, "fstat", e);
            return -1;
        }
        if (!S_ISREG(st.st_mode)) {
            close(fd);
            fail(err, MG_WJOURNAL_ERROR_IO, j->path, "open", "not a regular file");
            return -1;
        }
        /* `mugaika watch status` holds a shared lock for an instant: a
         * lock held for half a second is another daemon's */
        for (unsigned waits = 0; (r = flock(fd, LOCK_EX | LOCK_NB)) != 0 &&
                                 (errno == EINTR || (errno == EWOULDBLOCK && waits < 50));
             waits++)
            if (errno == EWOULDBLOCK)
                g_usleep(10000);
        if (r != 0) {
            int e = errno;

            close(fd);
            if (e == EWOULDBLOCK)
                fail(err, MG_WJOURNAL_ERROR_LOCKED, j->path, "lock",
                     "another process (a second mugaika-watch?) holds the journal");
            else
                fail_errno(err, j->path, "lock", e);
            return -1;
        }
        if (fstatat(j->dirfd, MG_WJOURNAL_NAME, &now, AT_SYMLINK_NOFOLLOW) == 0 &&
            now.st_dev == st.st_dev && now.st_ino == st.st_ino)
            return fd;
        close(fd);
    }
    fail(err, MG_WJOURNAL_ERROR_LOCKED, j->path, "lock", "the journal keeps being replaced");
    return -1;
}

static bool remove_new(struct mg_wjournal *j, GError **err)
{
    if (unlinkat(j->dirfd, MG_WJOURNAL_NEW_NAME, 0) != 0 && errno != ENOENT) {
        fail_errno(err, j->new_path, "unlink", errno);
        return false;
    }
    return true;
}

static bool fsync_dir(struct mg_wjournal *j, GError **err)
{
    if (fsync(j->dirfd) != 0) {
        int e = errno;
        char *dir = g_path_get_dirname(j->path);

        fail_errno(err, dir, "fsync directory", e);
        g_free(dir);
        return false;
    }
    return true;
}

struct mg_wjournal *mg_wjournal_open(int state_dirfd, GError **err)
{
    struct mg_wjournal *j = g_new0(struct mg_wjournal, 1);

    g_mutex_init(&j->lock);
    j->fd = -1;
    j->next_id = 1;
    j->open = g_hash_table_new_full(g_int64_hash, g_int64_equal, NULL, item_free_cb);
    j->path = mg_io_fd_path(state_dirfd, MG_WJOURNAL_NAME);
    j->new_path = mg_io_fd_path(state_dirfd, MG_WJOURNAL_NEW_NAME);
    j->dirfd = fcntl(state_dirfd, F_DUPFD_CLOEXEC, 0);
    if (j->dirfd < 0) {
        fail_errno(err, j->path, "dup state directory", errno);
        goto fail;
    }
    j->fd = open_locked(j, err);
    if (j->fd < 0 || !remove_new(j, err) || !load(j, err))
        goto fail;
    if (j->size == 0) {
        /* New (or only a torn first line): the base record, and the
         * directory entry made durable. */
        GString *line = g_string_new(NULL);
        bool ok;

        record_base(line, j->next_id);
        ok = append(j, line, "create", err) && fsync_dir(j, err);
        g_string_free(line, TRUE);
        if (!ok)
            goto fail;
    }
    return j;
fail:
    mg_wjournal_close(j);
    return NULL;
}

void mg_wjournal_close(struct mg_wjournal *j)
{
    if (!j)
        return;
    if (j->fd >= 0)
        close(j->fd); /* releases the flock */
    if (j->dirfd >= 0)
        close(j->dirfd);
    g_hash_table_destroy(j->open);
    g_free(j->path);
    g_free(j->new_path);
    g_mutex_clear(&j->lock);
    g_free(j);
}

GPtrArray *mg_wjournal_pending(struct mg_wjournal *j, GError **err)
{
    GPtrArray *out = g_ptr_array_new_with_free_func(item_free_cb);
    GPtrArray *items;

    (void)err; /* the journal was read (and checked) by open */
    g_mutex_lock(&j->lock);
    items = sorted_items(j);
    for (guint i = 0; i < items->len; i++)
        g_ptr_array_add(out, item_copy(items->pdata[i]));
    g_mutex_unlock(&j->lock);
    g_ptr_array_unref(items);
    return out;
}

/* Writes the compacted journal into journal.new; returns its descriptor
 * (locked, fsynced) or -1. Caller holds the lock. */
static int write_new(struct mg_wjournal *j, uint64_t *size, GError **err)
{
    GString *all = g_string_new(NULL);
    GPtrArray *items = sorted_items(j);
    int fd = -1;
    int e;

    record_base(all, j->next_id);
    for (guint i = 0; i < items->len; i++) {
        const struct mg_wjournal_item *it = items->pdata[i];

        record_begin(all, it);
        if (it->state == MG_WJOURNAL_COMMITTED)
            record_commit(all, it);
    }
    g_ptr_array_unref(items);
    if (!remove_new(j, err))
        goto out;
    fd = openat(j->dirfd, MG_WJOURNAL_NEW_NAME,
                O_RDWR | O_APPEND | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY, 0600);
    if (fd < 0) {
        fail_errno(err, j->new_path, "create", errno);
        goto out;
    }
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        fail_errno(err, j->new_path, "lock", errno);
        goto bad;
    }
    e = mg_write_all(fd, all->str, all->len);
    if (e != 0) {
        fail_errno(err, j->new_path, "write", e);
        goto bad;
    }
    if (fsync(fd) != 0) {
        fail_errno(err, j->new_path, "fsync", errno);
        goto bad;
    }
    *size = all->len;
    goto out;
bad:
    close(fd);
    fd = -1;
    (void)unlinkat(j->dirfd, MG_WJOURNAL_NEW_NAME, 0);
out:
    g_string_free(all, TRUE);
    return fd;
}

bool mg_wjournal_compact(struct mg_wjournal *j, GError **err)
{
    uint64_t size = 0;
    int fd;
    bool ok = false;

    g_mutex_lock(&j->lock);
    if (j->broken) {
        fail(err, MG_WJOURNAL_ERROR_BROKEN, j->path, "compact",
             "an earlier write failed; the journal must be opened again");
        goto out;
    }
    fd = write_new(j, &size, err);
    if (fd < 0)
        goto out;
    if (renameat(j->dirfd, MG_WJOURNAL_NEW_NAME, j->dirfd, MG_WJOURNAL_NAME) != 0) {
        fail_errno(err, j->new_path, "rename over journal", errno);
        close(fd);
        (void)unlinkat(j->dirfd, MG_WJOURNAL_NEW_NAME, 0);
        goto out;
    }
    /* From here the name is the new file: records go there. */
    close(j->fd);
    j->fd = fd;
    j->size = size;
    if (!fsync_dir(j, err)) {
        j->broken = true; /* the rename may be lost, and records with it */
        goto out;
    }
    ok = true;
out:
    g_mutex_unlock(&j->lock);
    return ok;
}

uint64_t mg_wjournal_size(struct mg_wjournal *j)
{
    uint64_t size;

    g_mutex_lock(&j->lock);
    size = j->size;
    g_mutex_unlock(&j->lock);
    return size;
}

bool mg_wjournal_broken(struct mg_wjournal *j)
{
    bool broken;

    g_mutex_lock(&j->lock);
    broken = j->broken;
    g_mutex_unlock(&j->lock);
    return broken;
}

unsigned mg_wjournal_torn(struct mg_wjournal *j)
{
    unsigned torn;

    g_mutex_lock(&j->lock);
    torn = j->torn;
    g_mutex_unlock(&j->lock);
    return torn;
}
