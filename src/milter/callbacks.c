/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * NAME
 *	callbacks 3
 * SUMMARY
 *	mugaika-milter: the libmilter callbacks
 * DESCRIPTION
 *	Two contexts: struct conn per SMTP connection (what was
 *	negotiated) and struct msg per message (from MAIL FROM to the
 *	end, abort or close: msg_end is the one place it is torn down).
 *	The header fields the MTA hands over are turned back into bytes
 *	("Name:" value CRLF; SMFIP_HDR_LEADSPC keeps the value exact) and
 *	fed, with the body chunks as they arrive, into the same pipeline
 *	as `mugaika sanitize`; the work happens during DATA. At the end
 *	of the message the pipeline decides, commits the original to the
 *	quarantine and builds the new message; the milter then edits the
 *	header and replaces the body, so the MTA delivers exactly what
 *	`mugaika sanitize` writes (plus the MTA's own Received field).
 *	The header edit (edit_header) leaves alone the fields that the
 *	rebuilt header has unchanged, in the same order (Received, Date,
 *	To, Message-ID...), changes in place those whose value was
 *	re-encoded, deletes the others and appends what is left of the
 *	rebuilt header: each edit is a request the MTA applies to its
 *	queue file. Any failure on that way is a temporary failure: the
 *	MTA keeps the mail and retries; nothing is accepted unchanged.
 * DIAGNOSTICS
 *	One log line per message, "QUEUEID: key=value ...".
 */
#include <errno.h>
#include <string.h>
#include <syslog.h>

#include <glib.h>
#include <json-glib/json-glib.h>
#include <libmilter/mfapi.h>

#include <mugaika/detect.h>
#include <mugaika/log.h>

#include "milter/milter.h"

#define BODY_PIECE 65536 /* bytes read from the rebuilt message at a time */
/* The body goes back in requests of MILTER_CHUNK_SIZE bytes, the most one
 * packet carries (libmilter splits a longer request, so a piece of that
 * size after CRLF would cost a full packet and a small one). */
#define BODY_OUT     (MILTER_CHUNK_SIZE + 2 * BODY_PIECE)
#define HEADER_LIMIT 1048576 /* the rebuilt header block; the writer makes far less */
#define LOG_FIELD    200     /* bytes of message-derived text in a log field */
/* Header fields one message may have. Each may be deleted by its own
 * request at the end, and Postfix looks each one up from the start of its
 * queue file: beyond a few thousand the MTA's work grows with the square.
 * Real mail (long Received, DKIM and ARC chains) has a few hundred at
 * most. */
#define MAX_FIELDS     1000
#define MIN_NAME_BYTES (64 * 1024) /* names' bound when max-header-bytes is lower */

struct mg_milter_settings mg_milter;

static gint in_flight;
static gint draining; /* stopping: no new message is taken */

struct conn {
    bool leadspc; /* header values come (and go) with their leading space */
    bool nr_hdr;  /* no reply expected for header, end of header, body */
    bool nr_eoh;
    bool nr_body;
    struct msg *m;
};

struct msg {
    struct mg_policy *pol;    /* never NULL: a message without one ends at MAIL FROM */
    struct mg_sanitize *s;    /* made at the first header: the envelope is known then */
    struct mg_detect *detect; /* libmagic cookie lent to this message: libmilter's
                               * worker pool may run one message's callbacks
                               * on different threads, and a cookie must not
                               * be used by two at once */
    char *sender;
    GPtrArray *rcpts;  /* char *, NULL-terminated */
    GPtrArray *given;  /* struct mg_field: the MTA's header fields, as given */
    GHashTable *count; /* lower-case name -> occurrences so far */
    GArray *nth;       /* unsigned, per field: its index among those of its name */
    GString *line;     /* one header field as bytes */
    char *qid;
    uint64_t size;
    unsigned fields;
    size_t given_bytes; /* of the values kept in given: at most max-header-bytes */
    size_t name_bytes;  /* of the field names so far: see name_limit() */
    bool too_big;
    bool failed;    /* the pipeline could not start: tempfail at the end */
    gint64 busy_us; /* time spent in this milter's callbacks */
};

unsigned mg_milter_in_flight(void)
{
    return (unsigned)g_atomic_int_get(&in_flight);
}

void mg_milter_drain(void)
{
    g_atomic_int_set(&draining, 1);
}

static struct conn *conn_of(SMFICTX *ctx)
{
    struct conn *c = smfi_getpriv(ctx);

    if (c == NULL) {
        c = g_new0(struct conn, 1);
        smfi_setpriv(ctx, c);
    }
    return c;
}

static void msg_end(struct conn *c)
{
    struct msg *m = c->m;

    if (m == NULL)
        return;
    c->m = NULL;
    mg_sanitize_free(m->s);
    mg_detect_give(m->detect);
    mg_policy_unref(m->pol);
    g_free(m->sender);
    g_ptr_array_free(m->rcpts, TRUE);
    g_ptr_array_free(m->given, TRUE);
    g_hash_table_destroy(m->count);
    g_array_free(m->nth, TRUE);
    g_string_free(m->line, TRUE);
    g_free(m->qid);
    g_free(m);
    g_atomic_int_dec_and_test(&in_flight);
}

/* "<a@b>" -> "a@b" */
static char *bare_address(const char *a)
{
    size_t n;

    if (a == NULL)
        return g_strdup("");
    n = strlen(a);
    if (n >= 2 && a[0] == '<' && a[n - 1] == '>')
        return g_strndup(a + 1, n - 2);
    return g_strdup(a);
}

static void note_qid(SMFICTX *ctx, struct msg *m)
{
    const char *q;

    if (m->qid != NULL)
        return;
    q = smfi_getsymval(ctx, "i");
    if (q != NULL && *q != '\0')
        m->qid = g_strdup(q);
}

static sfsistat cb_negotiate(SMFICTX *ctx, unsigned long f0, unsigned long f1, unsigned long f2,
                             unsigned long f3, unsigned long *pf0, unsigned long *pf1,
                             unsigned long *pf2, unsigned long *pf3)
{
    const unsigned long need = SMFIF_ADDHDRS | SMFIF_CHGHDRS | SMFIF_CHGBODY;
    const unsigned long want = SMFIP_NOCONNECT | SMFIP_NOHELO | SMFIP_NOUNKNOWN | SMFIP_NODATA |
                               SMFIP_NR_HDR | SMFIP_NR_EOH | SMFIP_NR_BODY | SMFIP_HDR_LEADSPC;
    struct conn *c = conn_of(ctx);

    (void)f2;
    (void)f3;
    if ((f0 & need) != need) {
        /* without these the message cannot be rebuilt: refuse to
         * filter, so the MTA applies its default action (tempfail) */
        mg_log(LOG_ERR,
               "the MTA does not offer header and body changes (actions 0x%lx): "
               "cannot sanitise",
               f0);
        return SMFIS_REJECT;
    }
    *pf0 = need;
    *pf1 = f1 & want;
    *pf2 = 0;
    *pf3 = 0;
    c->leadspc = (*pf1 & SMFIP_HDR_LEADSPC) != 0;
    c->nr_hdr = (*pf1 & SMFIP_NR_HDR) != 0;
    c->nr_eoh = (*pf1 & SMFIP_NR_EOH) != 0;
    c->nr_body = (*pf1 & SMFIP_NR_BODY) != 0;
    return SMFIS_CONTINUE;
}

static sfsistat cb_envfrom(SMFICTX *ctx, char **argv)
{
    struct conn *c = conn_of(ctx);
    struct msg *m;
    const char *why = NULL;

    msg_end(c); /* a message left over (no abort seen) */
    m = g_new0(struct msg, 1);
    g_atomic_int_inc(&in_flight);
    c->m = m;
    m->pol = mg_policy_pin();
    m->sender = bare_address(argv != NULL ? argv[0] : NULL);
    m->rcpts = g_ptr_array_new_with_free_func(g_free);
    m->given = g_ptr_array_new_with_free_func(mg_field_free);
    m->count = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
    m->nth = g_array_new(FALSE, FALSE, sizeof(unsigned));
    m->line = g_string_sized_new(256);
    note_qid(ctx, m);
    /* a message refused here ends here: it must not count as one in
     * progress while the client keeps its connection */
    if (m->pol == NULL || g_atomic_int_get(&draining)) {
        smfi_setreply(ctx, "451", "4.7.1", "sanitising gateway not ready, try again later");
        msg_end(c);
        return SMFIS_TEMPFAIL;
    }
    m->detect = mg_detect_take(&why);
    if (m->detect == NULL) {
        mg_log(LOG_ERR, "type detection: %s", why != NULL ? why : "cannot start libmagic");
        smfi_setreply(ctx, "451", "4.7.1",
                      "sanitising gateway: temporary failure, try again later");
        msg_end(c);
        return SMFIS_TEMPFAIL;
    }
    return SMFIS_CONTINUE;
}

static sfsistat cb_envrcpt(SMFICTX *ctx, char **argv)
{
    struct conn *c = conn_of(ctx);

    if (c->m == NULL)
        return SMFIS_TEMPFAIL;
    g_ptr_array_add(c->m->rcpts, bare_address(argv != NULL ? argv[0] : NULL));
    return SMFIS_CONTINUE;
}

static void feed(struct msg *m, const char *buf, size_t len)
{
    uint64_t max = mg_milter.cfg.max_message_bytes;

    if (m->too_big)
        return;
    m->size += len;
    if (max != 0 && m->size > max) {
        m->too_big = true;
        return;
    }
    mg_sanitize_feed(m->s, buf, len);
}

/* The pipeline starts at the first header: the envelope is complete. */
static bool msg_start(struct msg *m)
{
    struct mg_sanitize_opts o;

    if (m->s != NULL)
        return true;
    /* without a start the message is never applied: any field or body
     * byte that arrived meanwhile would be missing from the rebuilt
     * message and left in the MTA's copy, so one failure is final */
    if (m->failed || m->detect == NULL) {
        m->failed = true;
        return false;
    }
    mg_sanitize_opts_default(&o);
    mg_config_sanitize_opts(&mg_milter.cfg, &o);
    o.rules = m->pol->rules;
    o.av = m->pol->av;
    o.quarantine = mg_milter.quarantine;
    o.detect = m->detect;
    o.sender = m->sender;
    g_ptr_array_add(m->rcpts, NULL);
    o.recipients = (const char *const *)m->rcpts->pdata;
    m->s = mg_sanitize_new(&o);
    g_ptr_array_remove_index(m->rcpts, m->rcpts->len - 1);
    return true;
}

/* Bytes the names of one message's fields may take in all: every name is
 * kept (a field is edited by name and index), so they are bounded like
 * the values, by max-header-bytes, but never below MIN_NAME_BYTES, which
 * 1000 fields of ordinary names stay under. */
static size_t name_limit(void)
{
    return MAX(mg_milter.cfg.limits.header_bytes, (size_t)MIN_NAME_BYTES);
}

/* More header fields than MAX_FIELDS, or names past name_limit(): the
 * message is refused at the end, and nothing more of its header kept. */
static bool too_many(const struct msg *m)
{
    return m->fields > MAX_FIELDS || m->name_bytes > name_limit();
}

static sfsistat cb_header(SMFICTX *ctx, char *name, char *value)
{
    struct conn *c = conn_of(ctx);
    struct msg *m = c->m;
    gint64 t0 = g_get_monotonic_time();
    char *lower;
    unsigned n;
    size_t vlen;
    struct mg_field *f;

    if (m == NULL || !msg_start(m))
        return c->nr_hdr ? SMFIS_NOREPLY : SMFIS_CONTINUE; /* decided at the end */
    m->fields++;
    m->name_bytes += strlen(name);
    if (too_many(m))
        return c->nr_hdr ? SMFIS_NOREPLY : SMFIS_CONTINUE;
    lower = g_ascii_strdown(name, -1);
    n = GPOINTER_TO_UINT(g_hash_table_lookup(m->count, lower)) + 1;
    g_hash_table_insert(m->count, lower, GUINT_TO_POINTER(n));
    f = g_new(struct mg_field, 1);
    f->name = g_strdup(name);
    /* values are kept up to max-header-bytes in all, as the parser keeps
     * the header block: a field whose value is not kept is never left in
     * place (deleted, the rebuilt one added), so memory stays bounded
     * whatever the MTA passes, and past the parser's limit the rebuilt
     * message has nothing of those fields anyway */
    f->value = NULL;
    vlen = strlen(value);
    if (m->given_bytes + vlen <= mg_milter.cfg.limits.header_bytes) {
        m->given_bytes += vlen;
        f->value = g_strndup(value, vlen);
    }
    g_ptr_array_add(m->given, f);
    g_array_append_val(m->nth, n);

    /* back to bytes: the value's inner line ends become CRLF */
    g_string_truncate(m->line, 0);
    g_string_append(m->line, name);
    g_string_append_c(m->line, ':');
    if (!c->leadspc)
        g_string_append_c(m->line, ' ');
    for (const char *p = value; *p != '\0'; p++) {
        if (*p == '\n' && (p == value || p[-1] != '\r'))
            g_string_append_c(m->line, '\r');
        g_string_append_c(m->line, *p);
    }
    g_string_append(m->line, "\r\n");
    feed(m, m->line->str, m->line->len);
    m->busy_us += g_get_monotonic_time() - t0;
    return c->nr_hdr ? SMFIS_NOREPLY : SMFIS_CONTINUE;
}

static sfsistat cb_eoh(SMFICTX *ctx)
{
    struct conn *c = conn_of(ctx);
    struct msg *m = c->m;

    if (m != NULL && msg_start(m))
        feed(m, "\r\n", 2);
    return c->nr_eoh ? SMFIS_NOREPLY : SMFIS_CONTINUE;
}

static sfsistat cb_body(SMFICTX *ctx, unsigned char *buf, size_t len)
{
    struct conn *c = conn_of(ctx);
    struct msg *m = c->m;
    gint64 t0 = g_get_monotonic_time();

    if (m != NULL && msg_start(m))
        feed(m, (const char *)buf, len);
    if (m != NULL)
        m->busy_us += g_get_monotonic_time() - t0;
    return c->nr_body ? SMFIS_NOREPLY : SMFIS_CONTINUE;
}

/* Turns the MTA's header into the rebuilt one (fields: struct mg_field
 * of the rebuilt header, values with their leading space). An MTA field
 * is paired with the next rebuilt field when their names are spelled
 * the same: it stays when the values are equal too, else its value is
 * changed in place; an unpaired MTA field is deleted. The paired ones
 * are then the first `next` rebuilt fields in order, and appending the
 * others gives the rebuilt header. Changes go first (nothing has moved
 * yet), then deletions, last first: a field is named by its index among
 * the fields of its name, and deleting a later one moves no earlier
 * one. Without SMFIP_HDR_LEADSPC the MTA drops the space after the
 * colon, so an equal value does not prove an equal field: then every
 * field is deleted and the rebuilt ones added. */
static bool edit_header(SMFICTX *ctx, const struct conn *c, const struct msg *m,
                        const GPtrArray *fields, GError **err)
{
    guint n = m->given->len, next = 0;
    gint *pair = g_new(gint, n + 1); /* rebuilt field index, or -1: delete */
    bool ok = false;

    for (guint i = 0; i < n; i++) {
        const struct mg_field *o = g_ptr_array_index(m->given, i);
        const struct mg_field *f = next < fields->len ? g_ptr_array_index(fields, next) : NULL;
        pair[i] = -1;
        if (c->leadspc && f != NULL && o->value != NULL && strcmp(o->name, f->name) == 0 &&
            (f->value[0] != '\0' || o->value[0] == '\0'))
            pair[i] = (gint)next++;
    }
    for (guint i = 0; i < n; i++) {
        const struct mg_field *o = g_ptr_array_index(m->given, i);
        const struct mg_field *f;
        if (pair[i] < 0)
            continue;
        f = g_ptr_array_index(fields, (guint)pair[i]);
        if (strcmp(o->value, f->value) != 0 &&
            smfi_chgheader(ctx, o->name, (int)g_array_index(m->nth, unsigned, i), f->value) !=
                MI_SUCCESS) {
            g_set_error(err, MG_SANITIZE_ERROR, MG_VERDICT_TEMPFAIL,
                        "MTA refused to change header field %s", o->name);
            goto out;
        }
    }
    for (guint i = n; i-- > 0;) {
        const struct mg_field *o = g_ptr_array_index(m->given, i);
        if (pair[i] >= 0)
            continue;
        if (smfi_chgheader(ctx, o->name, (int)g_array_index(m->nth, unsigned, i), NULL) !=
            MI_SUCCESS) {
            g_set_error(err, MG_SANITIZE_ERROR, MG_VERDICT_TEMPFAIL,
                        "MTA refused to remove header field %s", o->name);
            goto out;
        }
    }
    for (guint i = next; i < fields->len; i++) {
        const struct mg_field *f = g_ptr_array_index(fields, i);
        char *v = f->value;
        if (!c->leadspc && *v == ' ')
            v++;
        if (smfi_addheader(ctx, f->name, v) != MI_SUCCESS) {
            g_set_error(err, MG_SANITIZE_ERROR, MG_VERDICT_TEMPFAIL,
                        "MTA refused to add header field %s", f->name);
            goto out;
        }
    }
    ok = true;
out:
    g_free(pair);
    return ok;
}

static bool replace_body(SMFICTX *ctx, char *p, size_t n, GError **err)
{
    if (smfi_replacebody(ctx, (unsigned char *)p, (int)n) == MI_SUCCESS)
        return true;
    g_set_error_literal(err, MG_SANITIZE_ERROR, MG_VERDICT_TEMPFAIL,
                        "MTA refused the body replacement");
    return false;
}

/* Replaces the MTA's copy with the rebuilt message. False: nothing
 * may be delivered (the caller answers tempfail, which makes the MTA
 * drop every change made here). */
static bool apply(SMFICTX *ctx, struct conn *c, struct msg *m, GError **err)
{
    GString *hdr = g_string_sized_new(4096);
    GPtrArray *fields = g_ptr_array_new_with_free_func(mg_field_free);
    uint64_t total = mg_sanitize_length(m->s), off = 0, body;
    char *buf = g_malloc(BODY_PIECE), *crlf = g_malloc(BODY_OUT);
    size_t have = 0; /* CRLF bytes in crlf not yet sent */
    const char *end = NULL;
    bool ok = false, cr = false;

    /* the header block: up to the first empty line */
    while (end == NULL && off < total && hdr->len < HEADER_LIMIT) {
        ssize_t n = mg_sanitize_pread(m->s, off, buf, 4096, err);
        if (n <= 0) {
            if (n == 0)
                g_set_error_literal(err, MG_SANITIZE_ERROR, MG_VERDICT_INTERNAL,
                                    "rebuilt message ends in its header");
            goto out;
        }
        g_string_append_len(hdr, buf, n);
        off += (uint64_t)n;
        end = strstr(hdr->str, "\n\n");
        if (end == NULL)
            end = strstr(hdr->str, "\n\r\n");
    }
    if (end == NULL) {
        g_set_error_literal(err, MG_SANITIZE_ERROR, MG_VERDICT_INTERNAL,
                            "rebuilt message has no end of header");
        goto out;
    }
    body = (uint64_t)(end - hdr->str) + (end[1] == '\n' ? 2 : 3);
    if (!mg_split_fields(hdr->str, (size_t)(end - hdr->str) + 1, fields)) {
        g_set_error_literal(err, MG_SANITIZE_ERROR, MG_VERDICT_INTERNAL,
                            "rebuilt message has a malformed header field");
        goto out;
    }

    if (!edit_header(ctx, c, m, fields, err))
        goto out;
    /* the body, CRLF, in full packets and what is left at the end */
    for (off = body; off < total;) {
        ssize_t n = mg_sanitize_pread(m->s, off, buf, BODY_PIECE, err);
        size_t sent = 0;
        if (n <= 0) {
            if (n == 0)
                g_set_error_literal(err, MG_SANITIZE_ERROR, MG_VERDICT_TEMPFAIL,
                                    "rebuilt message shorter than its length");
            goto out;
        }
        have += mg_crlf(buf, (size_t)n, crlf + have, &cr);
        off += (uint64_t)n;
        for (; have - sent >= MILTER_CHUNK_SIZE; sent += MILTER_CHUNK_SIZE)
            if (!replace_body(ctx, crlf + sent, MILTER_CHUNK_SIZE, err))
                goto out;
        memmove(crlf, crlf + sent, have - sent);
        have -= sent;
    }
    if ((have > 0 || body >= total) && !replace_body(ctx, crlf, have, err))
        goto out;
    ok = true;
out:
    g_free(buf);
    g_free(crlf);
    g_ptr_array_free(fields, TRUE);
    g_string_free(hdr, TRUE);
    return ok;
}

static void audit(struct msg *m)
{
    JsonNode *n;
    char *line;
    GError *e = NULL;

    if (mg_milter.cfg.audit == NULL || m->s == NULL)
        return;
    n = mg_sanitize_audit(m->s);
    if (JSON_NODE_HOLDS_OBJECT(n))
        json_object_set_string_member(json_node_get_object(n), "queue_id",
                                      m->qid != NULL ? m->qid : "");
    line = json_to_string(n, FALSE);
    json_node_unref(n);
    if (!mg_log_append(mg_milter.cfg.audit, line, &e)) {
        mg_log(LOG_ERR, "audit file %s", e->message);
        g_error_free(e);
    }
    g_free(line);
}

static void log_message(struct msg *m, const char *verdict, const char *why, gint64 ms)
{
    GString *g = g_string_sized_new(256);
    int prio = LOG_INFO;

    g_string_append(g, m->qid != NULL ? m->qid : "NOQUEUE");
    g_string_append(g, ": from=<");
    mg_log_escape(g, m->sender, LOG_FIELD);
    g_string_append_printf(g, "> rcpts=%u size=%" G_GUINT64_FORMAT " verdict=%s", m->rcpts->len,
                           m->size, verdict);
    if (m->s != NULL && strcmp(verdict, "accept") == 0) {
        g_string_append(g, " result=\"");
        mg_log_escape(g, mg_sanitize_result(m->s), 4 * LOG_FIELD);
        g_string_append_c(g, '"');
    }
    if (m->s != NULL && *mg_sanitize_quarantine_id(m->s) != '\0')
        g_string_append_printf(g, " quarantine=%s", mg_sanitize_quarantine_id(m->s));
    if (why != NULL) {
        g_string_append(g, " reason=\"");
        mg_log_escape(g, why, LOG_FIELD);
        g_string_append_c(g, '"');
        prio = strcmp(verdict, "reject") == 0 ? LOG_NOTICE : LOG_WARNING;
    }
    g_string_append_printf(g, " policy=%u", m->pol->generation);
    g_string_append_printf(g, " ms=%" G_GINT64_FORMAT, ms);
    mg_log(prio, "%s", g->str);
    g_string_free(g, TRUE);
}

/* A reason from message-derived text, safe for an SMTP reply. */
static char *reply_text(const char *prefix, const char *why)
{
    GString *g = g_string_new(prefix);

    for (const char *p = why; p != NULL && *p != '\0' && g->len < 200; p++)
        g_string_append_c(g, (*p >= 0x20 && *p < 0x7f && *p != '%') ? *p : '?');
    return g_string_free(g, FALSE);
}

static sfsistat cb_eom(SMFICTX *ctx)
{
    struct conn *c = conn_of(ctx);
    struct msg *m = c->m;
    gint64 t0 = g_get_monotonic_time();
    GError *e = NULL;
    enum mg_verdict v = MG_VERDICT_INTERNAL;
    sfsistat rc;
    const char *verdict;
    char *text;

    if (m == NULL) {
        smfi_setreply(ctx, "451", "4.7.1", "sanitising gateway: no message state");
        return SMFIS_TEMPFAIL;
    }
    note_qid(ctx, m);
    if (!msg_start(m)) {
        g_set_error_literal(&e, MG_SANITIZE_ERROR, MG_VERDICT_TEMPFAIL, "not ready");
    } else if (m->too_big) {
        v = MG_VERDICT_REJECT;
        g_set_error(&e, MG_SANITIZE_ERROR, MG_VERDICT_REJECT,
                    "message larger than %" G_GUINT64_FORMAT " bytes",
                    mg_milter.cfg.max_message_bytes);
    } else if (m->fields > MAX_FIELDS) {
        v = MG_VERDICT_REJECT;
        g_set_error(&e, MG_SANITIZE_ERROR, MG_VERDICT_REJECT, "more than %d header fields",
                    MAX_FIELDS);
    } else if (too_many(m)) {
        v = MG_VERDICT_REJECT;
        g_set_error(&e, MG_SANITIZE_ERROR, MG_VERDICT_REJECT,
                    "header field names longer than %" G_GUINT64_FORMAT " bytes in all",
                    (guint64)name_limit());
    } else {
        v = mg_sanitize_finish(m->s, &e);
        m->busy_us += g_get_monotonic_time() - t0;
        t0 = g_get_monotonic_time(); /* what follows is added at the end */
        if (v == MG_VERDICT_ACCEPT && mg_milter.cfg.message_timeout != 0 &&
            m->busy_us > (gint64)mg_milter.cfg.message_timeout * G_USEC_PER_SEC) {
            v = MG_VERDICT_TEMPFAIL;
            g_set_error(&e, MG_SANITIZE_ERROR, MG_VERDICT_TEMPFAIL,
                        "took longer than message-timeout (%u s)", mg_milter.cfg.message_timeout);
        }
        if (v == MG_VERDICT_ACCEPT && !apply(ctx, c, m, &e))
            v = MG_VERDICT_TEMPFAIL;
    }
    switch (v) {
    case MG_VERDICT_ACCEPT:
        rc = SMFIS_CONTINUE;
        verdict = "accept";
        break;
    case MG_VERDICT_REJECT:
        text = reply_text(
            m->too_big || too_many(m) ? "" : "refused by the sanitising gateway's policy: ",
            e != NULL ? e->message : "no reason given");
        if (m->too_big || too_many(m))
            smfi_setreply(ctx, "552", "5.3.4", text);
        else
            smfi_setreply(ctx, "550", "5.7.1", text);
        g_free(text);
        rc = SMFIS_REJECT;
        verdict = "reject";
        break;
    default:
        smfi_setreply(ctx, "451", "4.7.1",
                      "sanitising gateway: temporary failure, try again later");
        rc = SMFIS_TEMPFAIL;
        verdict = "tempfail";
        break;
    }
    m->busy_us += g_get_monotonic_time() - t0;
    log_message(m, verdict, e != NULL ? e->message : NULL, m->busy_us / 1000);
    audit(m);
    g_clear_error(&e);
    msg_end(c);
    return rc;
}

/* A message given up before its end (the client went away, RSET, the
 * MTA's content timeout): logged once its header started, so every
 * message that reached the pipeline has a line. */
static void log_abort(struct msg *m, const char *why)
{
    if (m != NULL && m->s != NULL)
        log_message(m, "abort", why, m->busy_us / 1000);
}

static sfsistat cb_abort(SMFICTX *ctx)
{
    struct conn *c = smfi_getpriv(ctx);

    if (c != NULL) {
        log_abort(c->m, "the MTA aborted the message");
        msg_end(c);
    }
    return SMFIS_CONTINUE;
}

static sfsistat cb_close(SMFICTX *ctx)
{
    struct conn *c = smfi_getpriv(ctx);

    if (c != NULL) {
        log_abort(c->m, "the connection closed before the end of the message");
        msg_end(c);
        g_free(c);
        smfi_setpriv(ctx, NULL);
    }
    return SMFIS_CONTINUE;
}

static struct smfiDesc desc = {
    .xxfi_name = "mugaika",
    .xxfi_version = SMFI_VERSION,
    .xxfi_flags = SMFIF_ADDHDRS | SMFIF_CHGHDRS | SMFIF_CHGBODY,
    .xxfi_envfrom = cb_envfrom,
    .xxfi_envrcpt = cb_envrcpt,
    .xxfi_header = cb_header,
    .xxfi_eoh = cb_eoh,
    .xxfi_body = cb_body,
    .xxfi_eom = cb_eom,
    .xxfi_abort = cb_abort,
    .xxfi_close = cb_close,
    .xxfi_negotiate = cb_negotiate,
};

const struct smfiDesc *mg_milter_desc(void)
{
    return &desc;
}
