/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * NAME
 *	sanitize 3
 * SUMMARY
 *	the sanitising pipeline of one message
 * SYNOPSIS
 *	#include <mugaika/sanitize.h>
 *
 *	struct mg_sanitize *mg_sanitize_new(const struct mg_sanitize_opts *o);
 *	void mg_sanitize_feed(struct mg_sanitize *s, const char *buf, size_t len);
 *	enum mg_verdict mg_sanitize_finish(struct mg_sanitize *s, GError **err);
 *	bool mg_sanitize_write(struct mg_sanitize *s, int fd, GError **err);
 *	ssize_t mg_sanitize_pread(struct mg_sanitize *s, uint64_t off, char *buf, size_t len,
 *				  GError **err);
 * DESCRIPTION
 *	Input bytes go two ways as they arrive: into the quarantine
 *	writer (the original, compressed and hashed) and into the push
 *	parser. Each leaf's decoded bytes are hashed and spooled; at the
 *	leaf's end its first MG_DETECT_SNIFF_BYTES go to libmagic, the
 *	whole content to libclamav, and the rules give it an action.
 *	Content that no action will use is forgotten at once.
 *
 *	At finish: the alternatives of each multipart/alternative are
 *	resolved (the plain text one unless the rule prefers HTML), the
 *	message is held or rejected when a rule says so, the original is
 *	committed to the quarantine (so it is durable before anything is
 *	delivered), and build.c writes the new message into a temporary
 *	file, which is scanned once more before mg_sanitize_write may
 *	copy it out.
 *
 *	Forced outcomes, whatever the rules say: infected items are
 *	dropped; leaves the parser kept opaque (a multipart it could not
 *	split, an encoded message/rfc822) are dropped, since rebuilding
 *	only what was understood is the point; actions whose handler does
 *	not exist yet (disarm, flatten, unpack; text for non-text types)
 *	drop the item.
 * LIMITS
 *	Memory: the parser's limits, one record per entity, a 64 KiB
 *	write buffer per open leaf, and at most opts.spool_memory bytes of
 *	small contents; the rest is in the spool file.
 * DIAGNOSTICS
 *	Spool, quarantine or AV engine failures give MG_VERDICT_TEMPFAIL,
 *	impossible states MG_VERDICT_INTERNAL; err says what and where.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdarg.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <glib-unix.h>
#include <gmime/gmime.h>

#include <mugaika/charset.h>
#include <mugaika/hdr.h>

#include "core/io.h"
#include "sanitize/sanitize_int.h"

#define SZ_BUF   (64 * 1024) /* write buffer of an open leaf */
#define SZ_SMALL (64 * 1024) /* a closed leaf this small may stay in memory */

GQuark mg_sanitize_error_quark(void)
{
    return g_quark_from_static_string("mg-sanitize-error-quark");
}

static const char *const verdict_names[] = {"accept", "reject", "tempfail", "internal"};

const char *mg_verdict_name(enum mg_verdict v)
{
    return (unsigned)v < G_N_ELEMENTS(verdict_names) ? verdict_names[v] : "?";
}

void mg_sanitize_opts_default(struct mg_sanitize_opts *o)
{
    memset(o, 0, sizeof *o);
    o->lang = "ja";
    mg_mime_limits_default(&o->limits);
    o->spool_memory = 8u << 20;
    o->html_budget_us = 2 * G_USEC_PER_SEC;
    mg_cdr_limits_default(&o->cdr);
    o->archive_depth = 5;
    o->archive_members = 1000;
    o->archive_total = (uint64_t)200 << 20;
    o->archive_ratio = 100;
    o->cdr_budget_us = 120 * G_USEC_PER_SEC;
}

void sz_fail(struct mg_sanitize *s, enum mg_verdict v, const char *fmt, ...)
{
    va_list ap;

    if (s->error != NULL)
        return;
    va_start(ap, fmt);
    s->error = g_error_new_valist(mg_sanitize_error_quark(), (gint)v, fmt, ap);
    va_end(ap);
    s->error_verdict = v;
}

/* --- spool -------------------------------------------------------------- */

/* sz_tmpfile without touching the pipeline (safe in a thread): -1 and
 * errno on failure. */
static int spool_tmpfile(const struct mg_sanitize *s, const char *name)
{
    const char *dir = s->o.spool_dir != NULL ? s->o.spool_dir : g_get_tmp_dir();
    int fd = open(dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);

    if (fd < 0 && (errno == EOPNOTSUPP || errno == EISDIR || errno == EINVAL)) {
        char *tmpl = g_strdup_printf("mugaika-%s-XXXXXX", name);
        char *path = g_build_filename(dir, tmpl, NULL);
        fd = g_mkstemp_full(path, O_RDWR | O_CLOEXEC, 0600);
        if (fd >= 0)
            (void)unlink(path);
        g_free(path);
        g_free(tmpl);
    }
    return fd;
}

int sz_tmpfile(struct mg_sanitize *s, const char *name)
{
    int fd = spool_tmpfile(s, name);

    if (fd < 0)
        sz_fail(s, MG_VERDICT_TEMPFAIL, "spool directory %s: %s",
                s->o.spool_dir != NULL ? s->o.spool_dir : g_get_tmp_dir(), g_strerror(errno));
    return fd;
}

static bool spool_open(struct mg_sanitize *s)
{
    if (s->spool_fd < 0)
        s->spool_fd = sz_tmpfile(s, "spool");
    return s->spool_fd >= 0;
}

bool sz_spool_write(struct mg_sanitize *s, const void *buf, size_t len, struct sz_extent *ext)
{
    const char *p = buf;
    uint64_t at;

    if (!spool_open(s))
        return false;
    at = s->spool_end;
    while (len > 0) {
        ssize_t n = pwrite(s->spool_fd, p, len, (off_t)s->spool_end);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            sz_fail(s, MG_VERDICT_TEMPFAIL, "spool write: %s", g_strerror(errno));
            return false;
        }
        p += n;
        len -= (size_t)n;
        s->spool_end += (uint64_t)n;
    }
    if (ext != NULL) {
        ext->off = at;
        ext->len = s->spool_end - at;
    }
    return true;
}

static void extent_add(GArray *extents, const struct sz_extent *e)
{
    if (e->len == 0)
        return;
    if (extents->len > 0) {
        struct sz_extent *last = &g_array_index(extents, struct sz_extent, extents->len - 1);
        if (last->off + last->len == e->off) {
            last->len += e->len;
            return;
        }
    }
    g_array_append_val(extents, *e);
}

static bool content_flush(struct mg_sanitize *s, struct sz_content *c)
{
    struct sz_extent e;

    if (c->mem == NULL || c->mem->len == 0)
        return true;
    if (!sz_spool_write(s, c->mem->data, c->mem->len, &e))
        return false;
    if (c->extents == NULL)
        c->extents = g_array_new(FALSE, FALSE, sizeof(struct sz_extent));
    extent_add(c->extents, &e);
    g_byte_array_set_size(c->mem, 0);
    return true;
}

static bool content_append(struct mg_sanitize *s, struct sz_content *c, const char *buf, size_t len)
{
    if (c->mem == NULL)
        c->mem = g_byte_array_sized_new(len < SZ_BUF ? (guint)len : SZ_BUF);
    c->size += len;
    if (c->mem->len + len <= SZ_BUF) {
        g_byte_array_append(c->mem, (const guint8 *)buf, (guint)len);
        return true;
    }
    if (!content_flush(s, c))
        return false;
    if (len >= SZ_BUF) {
        struct sz_extent e;
        if (!sz_spool_write(s, buf, len, &e))
            return false;
        if (c->extents == NULL)
            c->extents = g_array_new(FALSE, FALSE, sizeof(struct sz_extent));
        extent_add(c->extents, &e);
        return true;
    }
    g_byte_array_append(c->mem, (const guint8 *)buf, (guint)len);
    return true;
}

/* The leaf is complete: small contents stay in memory while the budget
 * lasts, the rest goes to the spool file. */
static bool content_close(struct mg_sanitize *s, struct sz_content *c)
{
    if (c->mem == NULL)
        return true;
    if (c->extents == NULL && c->size <= SZ_SMALL && s->mem_used + c->size <= s->o.spool_memory) {
        s->mem_used += c->size;
        return true;
    }
    if (!content_flush(s, c))
        return false;
    g_byte_array_unref(c->mem);
    c->mem = NULL;
    return true;
}

static void content_forget(struct mg_sanitize *s, struct sz_content *c)
{
    if (c->mem != NULL) {
        if (c->extents == NULL && s->mem_used >= c->mem->len)
            s->mem_used -= c->mem->len;
        g_byte_array_unref(c->mem);
        c->mem = NULL;
    }
    if (c->extents != NULL) {
        g_array_unref(c->extents);
        c->extents = NULL;
    }
}

bool sz_content_append(struct mg_sanitize *s, struct sz_content *c, const char *buf, size_t len)
{
    return content_append(s, c, buf, len);
}

bool sz_content_close(struct mg_sanitize *s, struct sz_content *c)
{
    return content_close(s, c);
}

void sz_content_forget(struct mg_sanitize *s, struct sz_content *c)
{
    content_forget(s, c);
}

/* Reads content without touching s but its spool descriptor (safe in
 * the scan thread, see classify); on error *why (static) and -1. */
static gssize content_pread(const struct mg_sanitize *s, const struct sz_content *c, uint64_t off,
                            void *buf, size_t len, enum mg_verdict *v, const char **why)
{
    uint64_t base = 0;

    if (off >= c->size || len == 0)
        return 0;
    if (c->extents == NULL) {
        size_t n = (size_t)MIN((uint64_t)len, c->size - off);
        if (c->mem == NULL || off + n > c->mem->len) {
            *v = MG_VERDICT_INTERNAL;
            *why = "content read past its buffer";
            return -1;
        }
        memcpy(buf, c->mem->data + off, n);
        return (gssize)n;
    }
    for (guint i = 0; i < c->extents->len; i++) {
        const struct sz_extent *e = &g_array_index(c->extents, struct sz_extent, i);
        if (off < base + e->len) {
            uint64_t in = off - base;
            size_t n = (size_t)MIN((uint64_t)len, e->len - in);
            ssize_t r;
            do
                r = pread(s->spool_fd, buf, n, (off_t)(e->off + in));
            while (r < 0 && errno == EINTR);
            if (r <= 0) {
                *v = MG_VERDICT_TEMPFAIL;
                *why = r < 0 ? g_strerror(errno) : "short file";
                return -1;
            }
            return (gssize)r;
        }
        base += e->len;
    }
    return 0;
}

gssize sz_content_read(struct mg_sanitize *s, const struct sz_content *c, uint64_t off, void *buf,
                       size_t len)
{
    enum mg_verdict v = MG_VERDICT_INTERNAL;
    const char *why = NULL;
    gssize n = content_pread(s, c, off, buf, len, &v, &why);

    if (n < 0)
        sz_fail(s, v, "%s%s", v == MG_VERDICT_TEMPFAIL ? "spool read: " : "", why);
    return n;
}

/* --- items -------------------------------------------------------------- */

static void hdr_clear(gpointer p)
{
    struct sz_hdr *h = p;

    g_free(h->name);
    g_free(h->decoded);
}

static void prefetch_drop(struct sz_item *it);
static bool prefetch_detected(struct sz_item *it);
static void arc_scan_discard(struct sz_item *it);

static void item_free(gpointer p)
{
    struct sz_item *it = p;

    prefetch_drop(it);
    arc_scan_discard(it);
    mg_av_seen_free(it->seen);
    g_free(it->path);
    g_free(it->declared);
    g_free(it->charset);
    g_free(it->cte);
    g_free(it->disposition);
    g_free(it->filename);
    if (it->defects != NULL)
        g_array_unref(it->defects);
    if (it->hdrs != NULL)
        g_array_unref(it->hdrs);
    if (it->c.mem != NULL)
        g_byte_array_unref(it->c.mem);
    if (it->c.extents != NULL)
        g_array_unref(it->c.extents);
    if (it->sha != NULL)
        mg_sha256_free(it->sha);
    g_free(it->detected);
    g_free(it->virus);
    g_free(it->out_name);
    g_free(it->out_type);
    g_free(it->cdr_reason);
    if (it->cdr.mem != NULL)
        g_byte_array_unref(it->cdr.mem);
    if (it->cdr.extents != NULL)
        g_array_unref(it->cdr.extents);
    g_free(it->cdr_name);
    g_free(it->cdr_type);
    if (it->cdr_notes != NULL)
        g_ptr_array_unref(it->cdr_notes);
    g_free(it);
}

static struct sz_item *item_at(struct mg_sanitize *s, int i)
{
    return i >= 0 ? g_ptr_array_index(s->items, (guint)i) : NULL;
}

static int open_top(struct mg_sanitize *s)
{
    return s->open->len > 0 ? g_array_index(s->open, int, s->open->len - 1) : -1;
}

/* Position in s->open of the open entity with this path, or -1. Body
 * bytes of a text part can come while a uuencoded block inside it is
 * open, so events are matched by path, not by nesting. */
static int open_find(struct mg_sanitize *s, const char *path)
{
    for (guint i = s->open->len; i-- > 0;) {
        struct sz_item *o = item_at(s, g_array_index(s->open, int, i));
        if (strcmp(o->path, path) == 0)
            return (int)i;
    }
    return -1;
}

/* --- envelope ------------------------------------------------------------ */

static const char *top_header(struct mg_sanitize *s, const char *name)
{
    struct sz_item *top = item_at(s, 0);

    if (top == NULL || top->hdrs == NULL)
        return NULL;
    for (guint i = 0; i < top->hdrs->len; i++) {
        struct sz_hdr *h = &g_array_index(top->hdrs, struct sz_hdr, i);
        if (g_ascii_strcasecmp(h->name, name) == 0)
            return h->decoded;
    }
    return NULL;
}

/* Every addr-spec of an address header (decoded UTF-8 value). */
static void add_addresses(GPtrArray *out, const char *value, unsigned max)
{
    InternetAddressList *l;

    if (value == NULL)
        return;
    l = internet_address_list_parse(NULL, value);
    if (l == NULL)
        return;
    for (int i = 0; i < internet_address_list_length(l) && out->len < max; i++) {
        InternetAddress *a = internet_address_list_get_address(l, i);
        if (INTERNET_ADDRESS_IS_MAILBOX(a)) {
            const char *spec = internet_address_mailbox_get_addr(INTERNET_ADDRESS_MAILBOX(a));
            if (spec != NULL && *spec != '\0')
                g_ptr_array_add(out, g_ascii_strdown(spec, -1));
        } else if (INTERNET_ADDRESS_IS_GROUP(a)) {
            InternetAddressList *m = internet_address_group_get_members(INTERNET_ADDRESS_GROUP(a));
            for (int j = 0; m != NULL && j < internet_address_list_length(m); j++) {
                InternetAddress *b = internet_address_list_get_address(m, j);
                if (INTERNET_ADDRESS_IS_MAILBOX(b) && out->len < max)
                    g_ptr_array_add(out, g_ascii_strdown(internet_address_mailbox_get_addr(
                                                             INTERNET_ADDRESS_MAILBOX(b)),
                                                         -1));
            }
        }
    }
    g_object_unref(l);
}

static void envelope(struct mg_sanitize *s)
{
    if (s->envelope_done)
        return;
    s->envelope_done = true;
    s->recipients = g_ptr_array_new_with_free_func(g_free);
    if (s->o.sender != NULL) {
        s->sender = g_ascii_strdown(s->o.sender, -1);
    } else {
        GPtrArray *from = g_ptr_array_new_with_free_func(g_free);
        add_addresses(from, top_header(s, "From"), 1);
        if (from->len > 0)
            s->sender = g_strdup(g_ptr_array_index(from, 0));
        g_ptr_array_unref(from);
    }
    if (s->o.recipients != NULL) {
        for (const char *const *r = s->o.recipients; *r != NULL; r++)
            g_ptr_array_add(s->recipients, g_ascii_strdown(*r, -1));
    } else {
        add_addresses(s->recipients, top_header(s, "To"), 1000);
        add_addresses(s->recipients, top_header(s, "Cc"), 1000);
    }
    g_ptr_array_add(s->recipients, NULL);
}

/* --- parser callbacks ---------------------------------------------------- */

static int on_part_begin(struct mg_mime *p, const struct mg_mime_part *part)
{
    struct mg_sanitize *s = mg_mime_user(p);
    struct sz_item *it = g_new0(struct sz_item, 1);
    struct sz_item *parent;
    int idx;

    it->path = g_strdup(part->path);
    it->parent = open_top(s);
    it->depth = part->depth;
    it->kind = part->kind;
    it->origin = part->origin;
    it->declared = g_strdup(part->content_type);
    it->declared_default = part->content_type_default;
    it->charset = g_strdup(part->charset);
    it->cte = g_strdup(part->cte_token);
    it->disposition = g_strdup(part->disposition);
    it->filename = g_strdup(part->filename);
    parent = item_at(s, it->parent);
    it->msg_root = parent == NULL || parent->kind == MG_MIME_MESSAGE;
    if (it->msg_root && part->origin == MG_MIME_ORIGIN_MIME)
        it->hdrs = g_array_new(FALSE, TRUE, sizeof(struct sz_hdr));
    if (it->hdrs != NULL)
        g_array_set_clear_func(it->hdrs, hdr_clear);
    if (part->kind == MG_MIME_LEAF)
        it->sha = mg_sha256_new();
    if (parent != NULL && part->origin == MG_MIME_ORIGIN_UU)
        parent->has_uu = true;
    g_ptr_array_add(s->items, it);
    idx = (int)s->items->len - 1;
    g_array_append_val(s->open, idx);
    return 0;
}

static int on_header(struct mg_mime *p, const struct mg_mime_part *part,
                     const struct mg_mime_header *h)
{
    struct mg_sanitize *s = mg_mime_user(p);
    int at = open_find(s, part->path);
    struct sz_item *it = at >= 0 ? item_at(s, g_array_index(s->open, int, at)) : NULL;
    struct sz_hdr rec;

    if (it == NULL || it->hdrs == NULL || it->hdrs->len >= SZ_HDRS_MAX ||
        !sz_header_wanted(h->name, h->name_len, it->parent < 0))
        return 0;
    rec.name = g_strndup(h->name, h->name_len);
    rec.decoded = g_strndup(h->decoded, SZ_HDR_MAX);
    if (!g_utf8_validate(rec.decoded, -1, NULL)) {
        /* cut inside a character */
        char *v = g_utf8_make_valid(rec.decoded, -1);
        g_free(rec.decoded);
        rec.decoded = v;
    }
    g_array_append_val(it->hdrs, rec);
    return 0;
}

static int on_defect(struct mg_mime *p, const struct mg_mime_part *part, enum mg_mime_defect d,
                     uint64_t offset)
{
    struct mg_sanitize *s = mg_mime_user(p);
    struct sz_item *it = NULL;

    (void)offset;
    if (part != NULL) {
        /* the entity with this path among the open ones */
        for (guint i = s->open->len; i-- > 0;) {
            struct sz_item *o = item_at(s, g_array_index(s->open, int, i));
            if (strcmp(o->path, part->path) == 0) {
                it = o;
                break;
            }
        }
    }
    if (it == NULL) {
        if (s->defects->len < 1000)
            g_array_append_val(s->defects, d);
        return 0;
    }
    if (it->defects == NULL)
        it->defects = g_array_new(FALSE, FALSE, sizeof(enum mg_mime_defect));
    if (it->defects->len < 100)
        g_array_append_val(it->defects, d);
    return 0;
}

static int on_body(struct mg_mime *p, const struct mg_mime_part *part, const char *data, size_t len)
{
    struct mg_sanitize *s = mg_mime_user(p);
    int at = open_find(s, part->path);
    struct sz_item *it = at >= 0 ? item_at(s, g_array_index(s->open, int, at)) : NULL;

    if (it == NULL || it->sha == NULL) {
        sz_fail(s, MG_VERDICT_INTERNAL, "body bytes outside a leaf");
        return 1;
    }
    mg_sha256_update(it->sha, data, len);
    return content_append(s, &it->c, data, len) ? 0 : 1;
}

/* Role: text that belongs to the message text, or an attachment. */
static enum mg_item_role item_role(const struct sz_item *it)
{
    if (it->origin != MG_MIME_ORIGIN_MIME || it->filename != NULL)
        return MG_ROLE_ATTACHMENT;
    if (it->disposition != NULL && strcmp(it->disposition, "attachment") == 0)
        return MG_ROLE_ATTACHMENT;
    if (strcmp(it->declared, "text/plain") == 0 || strcmp(it->declared, "text/html") == 0)
        return MG_ROLE_BODY;
    return MG_ROLE_ATTACHMENT;
}

/* A leaf the parser could not take apart: a composite it kept whole,
 * or a leaf that holds the unparsed rest of the message because a
 * limit was crossed (its defects say which). Never rebuilt. */
static bool is_opaque(const struct sz_item *it)
{
    if (g_str_has_prefix(it->declared, "multipart/") || g_str_has_prefix(it->declared, "message/"))
        return true;
    for (guint i = 0; it->defects != NULL && i < it->defects->len; i++) {
        switch (g_array_index(it->defects, enum mg_mime_defect, i)) {
        case MG_MIME_DEFECT_HEADER_BLOCK_TOO_LONG:
        case MG_MIME_DEFECT_PART_LIMIT:
        case MG_MIME_DEFECT_DEPTH_LIMIT:
        case MG_MIME_DEFECT_CTE_ON_COMPOSITE:
        case MG_MIME_DEFECT_MULTIPART_NO_BOUNDARY:
        case MG_MIME_DEFECT_BOUNDARY_TOO_LONG:
            return true;
        default:
            break;
        }
    }
    return false;
}

static bool is_html(const char *type)
{
    return type != NULL &&
           (strcmp(type, "text/html") == 0 || strcmp(type, "application/xhtml+xml") == 0);
}

struct sz_reader {
    struct mg_sanitize *s;
    const struct sz_content *c;
};

static gssize reader_cb(void *handle, void *buf, size_t len, uint64_t off)
{
    struct sz_reader *r = handle;

    return sz_content_read(r->s, r->c, off, buf, len);
}

/* libclamav over a content: its memory, or its spool extents */
static enum mg_av_verdict scan_content(struct mg_sanitize *s, const struct sz_content *c,
                                       unsigned flags, char **vir, GError **e)
{
    struct sz_reader r = {s, c};
    gint64 t0 = g_get_monotonic_time();
    enum mg_av_verdict v;

    if (c->extents == NULL)
        v = mg_av_scan_buffer_flags(s->o.av, c->mem != NULL ? c->mem->data : (const guint8 *)"",
                                    c->mem != NULL ? c->mem->len : 0, flags, vir, e);
    else
        v = mg_av_scan_pread_flags(s->o.av, c->size, reader_cb, &r, flags, vir, e);
    s->av_us += g_get_monotonic_time() - t0;
    return v;
}

/* shallow: the archive will be unpacked here and every member scanned
 * on its own (MG_AV_SCAN_SHALLOW) */
/* What a scan of the item's content found: flags, the virus, unscanned. */
static bool scan_found(struct mg_sanitize *s, struct sz_item *it, enum mg_av_verdict v, char *vir,
                       GError *e)
{
    if (v == MG_AV_FAILED) {
        sz_fail(s, MG_VERDICT_TEMPFAIL, "virus scan of part %s: %s", it->path,
                e != NULL ? e->message : "engine error");
        g_clear_error(&e);
        return false;
    }
    if (v == MG_AV_INFECTED && g_str_has_prefix(vir, "Heuristics.Encrypted")) {
        /* not a finding about malware: the rules decide (hold, drop) */
        it->flags |= MG_ITEM_ENCRYPTED;
        g_free(vir);
    } else if (v == MG_AV_INFECTED && g_str_has_prefix(vir, "Heuristics.Limits")) {
        /* libclamav could not look at all of it: never passes */
        it->unscanned = true;
        g_free(vir);
    } else if (v == MG_AV_INFECTED && it->virus != NULL) {
        /* a second scan of it found it too (an archive scanned whole
         * after its handler gave up, then its own scan joined): the
         * first name stays */
        it->flags |= MG_ITEM_INFECTED;
        g_free(vir);
    } else if (v == MG_AV_INFECTED) {
        it->flags |= MG_ITEM_INFECTED;
        it->virus = vir;
    }
    return true;
}

static bool leaf_scan(struct mg_sanitize *s, struct sz_item *it, bool shallow)
{
    GError *e = NULL;
    char *vir = NULL;
    enum mg_av_verdict v;

    if (s->o.av == NULL)
        return true;
    v = scan_content(s, &it->c, shallow ? MG_AV_SCAN_SHALLOW : 0, &vir, &e);
    return scan_found(s, it, v, vir, e);
}

/* --- the scan of an item while its handler runs ---------------------------- */

/* libclamav and a CDR worker on the same item at the same time: the
 * scan in a thread of its own, which reads the item's content (never
 * changed while the handler runs: its output goes to other extents)
 * and touches nothing else of the pipeline; errors come back here. */
struct scan_job {
    struct mg_sanitize *s;
    const struct sz_content *c;
    unsigned flags;          /* MG_AV_SCAN_* */
    struct mg_av_seen *seen; /* _RECORD: closed at the end; _SKIP_SEEN: waited for */
    enum mg_av_verdict v;
    char *vir;
    GError *e;
    enum mg_verdict read_v;
    const char *read_why;
    gint64 us;
    gint done; /* atomic: the scan is over (its thread may still be ending) */
};

static gssize job_read(void *handle, void *buf, size_t len, uint64_t off)
{
    struct scan_job *j = handle;

    return content_pread(j->s, j->c, off, buf, len, &j->read_v, &j->read_why);
}

static gpointer scan_job_run(gpointer u)
{
    struct scan_job *j = u;
    gint64 t0 = g_get_monotonic_time();

    if (j->flags & MG_AV_SCAN_SKIP_SEEN)
        mg_av_seen_wait(j->seen); /* the original's scan is over */
    if (j->c->extents == NULL)
        j->v = mg_av_scan_buffer_seen(
            j->s->o.av, j->c->mem != NULL ? j->c->mem->data : (const guint8 *)"",
            j->c->mem != NULL ? j->c->mem->len : 0, j->flags, j->seen, &j->vir, &j->e);
    else
        j->v = mg_av_scan_pread_seen(j->s->o.av, j->c->size, job_read, j, j->flags, j->seen,
                                     &j->vir, &j->e);
    if (j->flags & MG_AV_SCAN_RECORD)
        mg_av_seen_close(j->seen);
    j->us = g_get_monotonic_time() - t0;
    g_atomic_int_set(&j->done, 1);
    return NULL;
}

/*
 * Scans that run while the pipeline goes on: the scan of an item's
 * original while its handler runs and after (classify_overlapped), and
 * the scan of a handler's output (check_output). At most SZ_SCANS run
 * at a time (to make room, the scans that are over are joined, else the
 * oldest); an item's scans are joined before its handler work is reset,
 * and all of them at the end of the message, before anything reads the
 * outcome. A finding is then applied exactly as if it had been made at
 * once: an infected output drops the item; a finding in the original
 * (infected, encrypted, not fully scanned) throws the handler's work
 * away and the item is decided again.
 */
#define SZ_SCANS 16

enum pending_kind { PENDING_ORIGINAL, PENDING_OUTPUT };

struct pending_scan {
    struct scan_job job;
    GThread *thread;
    int index;
    enum pending_kind kind;
    const char *handler; /* static */
    /* an archive's scan (arc_scan_start): what its unpacking changes and a
     * late finding restores, as if the scan had come first */
    unsigned flags0, arc_members0;
    bool released0;
    uint64_t arc_bytes0;
};

static void cdr_reset(struct mg_sanitize *s, struct sz_item *it);
static bool decide(struct mg_sanitize *s, int index);
static void scan_join_item(struct mg_sanitize *s, int index, enum pending_kind kind);

/* The finding of a handler's output. */
static void output_found(struct mg_sanitize *s, struct pending_scan *p, struct sz_item *it)
{
    if (p->job.read_why != NULL) {
        sz_fail(s, p->job.read_v, "virus scan of the output of %s for part %s: spool read: %s",
                p->handler, it->path, p->job.read_why);
    } else if (p->job.v == MG_AV_FAILED) {
        sz_fail(s, MG_VERDICT_TEMPFAIL, "virus scan of the output of %s for part %s: %s",
                p->handler, it->path, p->job.e != NULL ? p->job.e->message : "engine error");
    } else if (p->job.v == MG_AV_INFECTED && it->cdr_ready) {
        g_free(it->cdr_reason);
        it->cdr_reason = g_strdup_printf("the output scanned as %s", p->job.vir);
        it->cdr_status = MG_CDR_FAIL;
        it->cdr_ready = false;
        it->action = MG_ACTION_DROP;
        it->forced = SZ_FORCED_CDR_FAILED;
        content_forget(s, &it->cdr);
    }
    g_clear_error(&p->job.e);
    g_free(p->job.vir);
}

/* A joined scan of the item's original applied to it (scan_found);
 * false when the message fails (a spool read or the engine failed). */
static bool original_scan_found(struct mg_sanitize *s, struct pending_scan *p, struct sz_item *it)
{
    if (p->job.read_why != NULL) {
        g_clear_error(&p->job.e);
        g_free(p->job.vir);
        sz_fail(s, p->job.read_v, "virus scan of part %s: spool read: %s", it->path,
                p->job.read_why);
        return false;
    }
    return scan_found(s, it, p->job.v, p->job.vir, p->job.e) && s->error == NULL;
}

/* The finding of an original scanned while its handler ran. */
static void original_found(struct mg_sanitize *s, struct pending_scan *p, int index)
{
    struct sz_item *it = item_at(s, index);
    unsigned flags = it->flags;
    bool unscanned = it->unscanned;

    if (!original_scan_found(s, p, it))
        return;
    if ((it->flags & ~flags) == 0 && it->unscanned == unscanned) {
        if ((it->action != MG_ACTION_KEEP && it->action != MG_ACTION_TEXT) || it->cdr_ready)
            content_forget(s, &it->c);
        return;
    }
    scan_join_item(s, index, PENDING_OUTPUT); /* its output may be scanned still */
    cdr_reset(s, it);
    decide(s, index);
}

/* Joins one scan (taken out of s->pending) and applies its finding. */
static void pending_finish(struct mg_sanitize *s, struct pending_scan *p)
{
    if (p->thread != NULL)
        g_thread_join(p->thread);
    s->av_us += p->job.us;
    if (s->discarding) {
        /* a message given up: nothing more is decided */
        g_clear_error(&p->job.e);
        g_free(p->job.vir);
    } else if (p->kind == PENDING_OUTPUT) {
        output_found(s, p, item_at(s, p->index));
    } else {
        original_found(s, p, p->index);
    }
    g_free(p);
}

void sz_output_scan_join(struct mg_sanitize *s)
{
    /* a finding may decide an item again, which may start scans */
    while (s->pending != NULL && s->pending->len > 0)
        pending_finish(s, g_ptr_array_steal_index(s->pending, 0));
}

/* Joins the scan of that kind of item index, if one runs. */
static void scan_join_item(struct mg_sanitize *s, int index, enum pending_kind kind)
{
    for (guint i = 0; s->pending != NULL && i < s->pending->len; i++) {
        struct pending_scan *p = g_ptr_array_index(s->pending, i);
        if (p->index == index && p->kind == kind) {
            pending_finish(s, g_ptr_array_steal_index(s->pending, i));
            return;
        }
    }
}

static void scan_start(struct mg_sanitize *s, int index, enum pending_kind kind,
                       const char *handler)
{
    struct pending_scan *p;
    struct sz_item *it = item_at(s, index);

    if (s->pending == NULL)
        s->pending = g_ptr_array_new();
    scan_join_item(s, index, kind);
    /* room: first the scans that are over, in the order they started;
     * only when none is over, the oldest (a long scan at the head would
     * otherwise hold the pipeline while the scans after it are done) */
    for (guint i = 0; s->pending->len >= SZ_SCANS && i < s->pending->len;) {
        struct pending_scan *q = g_ptr_array_index(s->pending, i);
        /* not this item's own: its finding could decide it again from
         * inside its handler's run (check_output) */
        if (q->index != index && g_atomic_int_get(&q->job.done))
            pending_finish(s, g_ptr_array_steal_index(s->pending, i));
        else
            i++;
    }
    while (s->pending->len >= SZ_SCANS)
        pending_finish(s, g_ptr_array_steal_index(s->pending, 0));
    p = g_new0(struct pending_scan, 1);
    p->job.s = s;
    if (kind == PENDING_OUTPUT) {
        /* what the handler kept byte for byte of what its original's
         * scan found clean is not scanned again (inner files only) */
        p->job.c = &it->cdr;
        p->job.flags = MG_AV_SCAN_NO_IMAGE_HASH | (it->seen != NULL ? MG_AV_SCAN_SKIP_SEEN : 0);
    } else {
        p->job.c = &it->c;
        p->job.flags = it->seen != NULL ? MG_AV_SCAN_RECORD : 0;
    }
    p->job.seen = it->seen;
    p->index = index;
    p->kind = kind;
    p->handler = handler;
    p->thread = g_thread_try_new("mugaika-scan", scan_job_run, &p->job, NULL);
    if (p->thread == NULL)
        scan_job_run(&p->job); /* no thread to be had: now */
    g_ptr_array_add(s->pending, p);
}

static void output_scan_start(struct mg_sanitize *s, int index, const char *handler)
{
    scan_start(s, index, PENDING_OUTPUT, handler);
}

/*
 * An archive the rules unpack is scanned (shallow: libclamav does not
 * unpack it) in a thread of its own while it is unpacked and its
 * members are worked on, instead of before: the scan of a 10 MB zip was
 * a tenth of the time of the message, with one core idle. It is kept
 * out of s->pending, so nothing joins it while its members are being
 * decided; decide() joins it once the archive's handler and members are
 * done, before the archive's content is forgotten (arc_scan_join). A
 * finding (infected, encrypted, not fully scanned) then throws away
 * everything made of the archive, its members included, and decides it
 * again, exactly as if the scan had come first: the archive's subtree
 * is the tail of s->items at that moment (members are decided depth
 * first, and nothing else of the message is parsed meanwhile), so it is
 * cut off, after the scans of its items still running have been joined
 * without applying them. Nothing is delivered before the message ends.
 */
static bool arc_scan_start(struct mg_sanitize *s, int index)
{
    struct sz_item *it = item_at(s, index);
    struct pending_scan *p;

    if (s->o.av == NULL)
        return false;
    p = g_new0(struct pending_scan, 1);
    p->job.s = s;
    p->job.c = &it->c;
    p->job.flags = MG_AV_SCAN_SHALLOW;
    p->index = index;
    p->kind = PENDING_ORIGINAL;
    p->flags0 = it->flags;
    p->released0 = it->released;
    p->arc_members0 = s->arc_members;
    p->arc_bytes0 = s->arc_bytes;
    p->thread = g_thread_try_new("mugaika-scan", scan_job_run, &p->job, NULL);
    if (p->thread == NULL) {
        g_free(p);
        return false; /* no thread to be had: scanned first (leaf_scan) */
    }
    it->arc_job = p;
    return true;
}

/* Waits for a scan and frees it without applying its result; the time
 * it took. */
static gint64 pending_forget(struct pending_scan *p)
{
    gint64 us;

    if (p->thread != NULL)
        g_thread_join(p->thread);
    us = p->job.us;
    g_clear_error(&p->job.e);
    g_free(p->job.vir);
    g_free(p);
    return us;
}

/* The archive's scan, when the item goes. */
static void arc_scan_discard(struct sz_item *it)
{
    struct pending_scan *p = it->arc_job;

    it->arc_job = NULL;
    if (p != NULL)
        (void)pending_forget(p);
}

/* Joins, without applying them, the scans still running of the items
 * after index (an archive's subtree that goes). */
static void pending_discard_after(struct mg_sanitize *s, int index)
{
    for (guint i = 0; s->pending != NULL && i < s->pending->len;) {
        struct pending_scan *p = g_ptr_array_index(s->pending, i);
        if (p->index <= index) {
            i++;
            continue;
        }
        g_ptr_array_remove_index(s->pending, i);
        s->av_us += pending_forget(p);
    }
}

/* The archive's scan joined and applied (see arc_scan_start); *again:
 * the scan found something new, what was made of the archive is gone
 * and it must be decided again. False when the message fails.
 * The archive is then as it was before its unpacking, plus what scans
 * of it found: flags and "released" set by the run go, and the
 * message's archive totals lose its members (a later archive keeps its
 * room).
 * The time its workers took stays spent: worker-budget bounds the time
 * a message holds the gateway. */
static bool arc_scan_join(struct mg_sanitize *s, int index, bool *again)
{
    struct sz_item *it = item_at(s, index);
    struct pending_scan *p = it->arc_job;
    unsigned flags = it->flags, found;
    bool unscanned = it->unscanned, ok;

    *again = false;
    it->arc_job = NULL;
    g_thread_join(p->thread);
    s->av_us += p->job.us;
    ok = original_scan_found(s, p, it);
    found = it->flags & ~flags;
    if (!ok || (found == 0 && it->unscanned == unscanned)) {
        g_free(p);
        return ok;
    }
    pending_discard_after(s, index);
    for (guint i = (guint)index + 1; i < s->items->len; i++) {
        struct sz_item *m = g_ptr_array_index(s->items, i);
        content_forget(s, &m->c);
        content_forget(s, &m->cdr);
    }
    g_ptr_array_set_size(s->items, (guint)index + 1);
    it = item_at(s, index);
    cdr_reset(s, it);
    it->members = 0;
    /* what the run set goes; what a scan of the original found stays
     * (INFECTED and unscanned come from scans only: the whole scan made
     * after a handler that gave up may have found them) */
    it->flags = p->flags0 | found | (flags & MG_ITEM_INFECTED);
    it->released = p->released0;
    s->arc_members = p->arc_members0;
    s->arc_bytes = p->arc_bytes0;
    g_free(p);
    *again = true;
    return true;
}

/* Reads the first MG_DETECT_SNIFF_BYTES of c into s->sniff. */
static gssize sniff_read(const struct mg_sanitize *s, const struct sz_content *c,
                         unsigned char *buf, enum mg_verdict *v, const char **why)
{
    size_t want = (size_t)MIN(c->size, (uint64_t)MG_DETECT_SNIFF_BYTES), n = 0;

    while (n < want) {
        gssize r = content_pread(s, c, n, buf + n, want - n, v, why);
        if (r <= 0)
            return -1;
        n += (size_t)r;
    }
    return (gssize)n;
}

static gssize sniff_content(struct mg_sanitize *s, const struct sz_content *c)
{
    enum mg_verdict v = MG_VERDICT_INTERNAL;
    const char *why = NULL;
    gssize n = sniff_read(s, c, s->sniff, &v, &why);

    if (n < 0 && why != NULL)
        sz_fail(s, v, "%s%s", v == MG_VERDICT_TEMPFAIL ? "spool read: " : "", why);
    return n;
}

/* The findings of the first bytes: sz_sniff_flags, a type that is not
 * the declared one or the name's, and an encrypted archive member. */
static unsigned item_flags(const struct sz_item *it, const unsigned char *sniff, size_t n,
                           const char *detected)
{
    unsigned flags = sz_sniff_flags(sniff, n, detected);

    if (sz_type_mismatch(it->declared_default ? NULL : it->declared, detected) ||
        (it->filename != NULL && sz_extension_mismatch(it->filename, detected)))
        flags |= MG_ITEM_MISMATCH;
    if (it->cdr_flags & MG_CDR_OUT_ENCRYPTED)
        flags |= MG_ITEM_ENCRYPTED;
    if (it->cdr_flags & MG_CDR_OUT_NAME_MISMATCH)
        flags |= MG_ITEM_NAME_MISMATCH;
    return flags;
}

/* The first rule for the item with that detection and those flags
 * (envelope(s) must have run: safe in a thread). */
static const struct mg_rule *match_item(struct mg_sanitize *s, const struct sz_item *it,
                                        const char *detected, unsigned flags)
{
    struct mg_rule_subject subj;

    memset(&subj, 0, sizeof subj);
    subj.detected_type = detected;
    subj.declared_type = it->declared; /* the RFC default when absent */
    subj.filename = it->filename;
    subj.size = it->c.size;
    subj.sender = s->sender;
    subj.recipients = (const char *const *)s->recipients->pdata;
    subj.flags = flags;
    subj.depth = it->arc_depth;
    subj.role = it->role;
    return mg_rules_match(s->o.rules, &subj);
}

static const struct mg_rule *match(struct mg_sanitize *s, struct sz_item *it)
{
    envelope(s);
    return match_item(s, it, it->detected, it->flags);
}

static bool run_cdr(struct mg_sanitize *s, int index, const struct mg_cdr_handler *h);

/* Forgets what a handler made of the item (its output, notes, status). */
static void cdr_reset(struct mg_sanitize *s, struct sz_item *it)
{
    content_forget(s, &it->cdr);
    memset(&it->cdr, 0, sizeof it->cdr);
    it->cdr_ready = false;
    it->cdr_handler = NULL;
    it->cdr_status = 0;
    g_clear_pointer(&it->cdr_reason, g_free);
    g_clear_pointer(&it->cdr_name, g_free);
    g_clear_pointer(&it->cdr_type, g_free);
    g_clear_pointer(&it->cdr_notes, g_ptr_array_unref);
    it->cdr_sha_hex[0] = '\0';
    it->forced = SZ_FORCED_NONE;
}

/*
 * An attachment that a handler rebuilds (disarm, flatten, text; not
 * unpack, whose members come next) is scanned while the handler runs
 * and while the next items are worked on: the two cost about the same,
 * and the gateway has more than one core. The rule is the one matched
 * before the scan; if the scan changes what is known of the item
 * (infected, encrypted, not fully scanned), the handler's work is
 * thrown away and the item is decided again when the scan is joined,
 * as if it had been scanned first (original_found). The item's content
 * is kept until then.
 */
static bool classify_overlapped(struct mg_sanitize *s, int index, const struct mg_rule *pre,
                                const struct mg_cdr_handler *h)
{
    struct sz_item *it = item_at(s, index);

    /* inner files are remembered for the output's scan only where the
     * output is the same kind of container as the original (a document
     * stays a document, a PDF a PDF): a signature may depend on it */
    if (it->seen == NULL && (strcmp(h->name, "ooxml") == 0 || strcmp(h->name, "pdf-disarm") == 0))
        it->seen = mg_av_seen_new();
    scan_start(s, index, PENDING_ORIGINAL, NULL);
    if (s->error != NULL) /* a scan joined to make room failed */
        return false;
    it->rule = pre;
    it->action = mg_rule_action(pre);
    run_cdr(s, index, h);
    return s->error == NULL;
}

/* Detection and flags of a complete leaf (once: a member whose handler
 * was started ahead has them already). */
static bool classify_detect(struct mg_sanitize *s, struct sz_item *it)
{
    gssize n;

    if (it->detected_done)
        return true;
    if (prefetch_detected(it)) {
        it->detected_done = true;
        return true;
    }
    if ((n = sniff_content(s, &it->c)) < 0)
        return false;
    {
        /* A body part becomes text in a text/plain body whatever it
         * is: libmagic's text check is enough when it says text (50
         * times cheaper than the whole magic database); anything else
         * gets the full detection. */
        const char *t = it->role == MG_ROLE_BODY && !is_opaque(it)
                            ? mg_detect_text(s->o.detect, s->sniff, (size_t)n)
                            : NULL;
        if (t == NULL)
            t = mg_detect_buffer(s->o.detect, s->sniff, (size_t)n);
        it->detected = g_ascii_strdown(t, -1);
    }
    it->flags = item_flags(it, s->sniff, (size_t)n, it->detected);
    it->detected_done = true;
    return true;
}

/* The handler that runs while the item's original is scanned
 * (classify_overlapped), for that detection and those flags, or NULL;
 * *pre is the rule matched (envelope(s) must have run: safe in a
 * thread). */
static const struct mg_cdr_handler *overlap_handler(struct mg_sanitize *s, const struct sz_item *it,
                                                    const char *detected, unsigned flags,
                                                    const struct mg_rule **pre)
{
    const struct mg_cdr_handler *h;

    *pre = it->role == MG_ROLE_ATTACHMENT ? match_item(s, it, detected, flags) : NULL;
    h = *pre != NULL ? mg_cdr_find(mg_rule_action(*pre), detected) : NULL;
    if (h != NULL && h->action != MG_ACTION_UNPACK && s->o.av != NULL && !is_opaque(it) &&
        !(flags & MG_ITEM_ENCRYPTED))
        return h;
    return NULL;
}

static const struct mg_cdr_handler *overlapped_handler(struct mg_sanitize *s, struct sz_item *it,
                                                       const struct mg_rule **pre)
{
    envelope(s);
    return overlap_handler(s, it, it->detected, it->flags, pre);
}

/* Detection, flags, AV, the rule, forced outcomes and the handler of a
 * complete leaf: a part of the mail, or a member of an archive. */
static bool classify(struct mg_sanitize *s, int index)
{
    struct sz_item *it = item_at(s, index);

    if (!classify_detect(s, it))
        return false;
    {
        /* An archive the rules will unpack is scanned without libclamav
         * unpacking it (its members are scanned one by one afterwards):
         * libclamav has no ratio limit and would expand a bomb up to its
         * size limits first. A finding of this scan can only make the
         * rule stricter (infected, unscanned). */
        const struct mg_rule *pre;
        const struct mg_cdr_handler *h = overlapped_handler(s, it, &pre);
        bool shallow;

        if (h != NULL)
            return classify_overlapped(s, index, pre, h);
        prefetch_drop(it); /* started ahead for a handler it will not get */
        h = pre != NULL ? mg_cdr_find(mg_rule_action(pre), it->detected) : NULL;
        shallow = h != NULL && h->action == MG_ACTION_UNPACK && it->arc_depth < s->o.archive_depth;
        if (!(shallow && arc_scan_start(s, index)) && !leaf_scan(s, it, shallow))
            return false;
    }
    return decide(s, index);
}

/* Reads len bytes of c at off (fewer only at its end): the count, or -1
 * when a read failed (s failed). */
static gssize content_read_full(struct mg_sanitize *s, const struct sz_content *c, uint64_t off,
                                unsigned char *buf, size_t len)
{
    size_t n = 0;

    while (n < len && off + n < c->size) {
        gssize r = sz_content_read(s, c, off + n, buf + n, len - n);
        if (r <= 0) {
            if (r == 0)
                sz_fail(s, MG_VERDICT_TEMPFAIL, "spool read: short");
            return -1;
        }
        n += (size_t)r;
    }
    return (gssize)n;
}

/* Whether a zip or OLE2 content longer than the sniff window holds a
 * macro marker past it (sz_sniff_flags looked at the window only): 1
 * yes, 0 no, -1 a read failed (s failed). Read in SZ_BUF pieces that
 * overlap by more than the longest marker. */
static int macros_past_sniff(struct mg_sanitize *s, const struct sz_content *c)
{
    enum { OVERLAP = 64 };
    unsigned char head[8];
    unsigned char *buf;
    enum sz_container kind;
    uint64_t off = MG_DETECT_SNIFF_BYTES - OVERLAP;
    int found = 0;

    if (c->size <= MG_DETECT_SNIFF_BYTES)
        return 0;
    if (content_read_full(s, c, 0, head, sizeof head) < 0)
        return -1;
    if ((kind = sz_container_of(head, sizeof head)) == SZ_CONTAINER_NONE)
        return 0;
    buf = g_malloc(SZ_BUF);
    while (found == 0) {
        gssize n = content_read_full(s, c, off, buf, SZ_BUF);
        if (n < 0)
            found = -1;
        else if (sz_macro_marker(buf, (size_t)n, kind))
            found = 1;
        else if (off + (uint64_t)n >= c->size)
            break;
        else
            off += (uint64_t)n - OVERLAP;
    }
    g_free(buf);
    return found;
}

/* The item's rule, what is forced on it, and its handler: after the
 * detection, the flags and the scan. */
static bool decide(struct mg_sanitize *s, int index)
{
    struct sz_item *it = item_at(s, index);

    it->rule = match(s, it);
    it->action = mg_rule_action(it->rule);
    if (it->action == MG_ACTION_KEEP && !(it->flags & MG_ITEM_MACROS)) {
        /* what a rule keeps is looked at whole for macros: a zip's or an
         * OLE2 file's names may come after the sniff window */
        int r = macros_past_sniff(s, &it->c);
        if (r < 0)
            return false;
        if (r > 0) {
            it->flags |= MG_ITEM_MACROS;
            it->rule = match(s, it);
            it->action = mg_rule_action(it->rule);
        }
    }
    if (s->o.password != NULL && it->action == MG_ACTION_HOLD && (it->flags & MG_ITEM_ENCRYPTED) &&
        !(it->flags & MG_ITEM_INFECTED) && !it->unscanned && it->role == MG_ROLE_ATTACHMENT) {
        /* A release with a password: an encrypted archive the rules
         * hold is unpacked the way the rules unpack it unencrypted.
         * If the password does not open it, it is held again (below,
         * after the handler says "encrypted"). */
        const struct mg_rule *plain;
        it->flags &= ~MG_ITEM_ENCRYPTED;
        plain = match(s, it);
        if (mg_rule_action(plain) == MG_ACTION_UNPACK &&
            mg_cdr_find(MG_ACTION_UNPACK, it->detected) != NULL) {
            it->rule = plain;
            it->action = MG_ACTION_UNPACK;
            it->released = true;
        } else {
            it->flags |= MG_ITEM_ENCRYPTED;
        }
    }

    if (it->flags & MG_ITEM_INFECTED) {
        if (it->action != MG_ACTION_REJECT && it->action != MG_ACTION_HOLD)
            it->action = MG_ACTION_DROP;
        it->forced = SZ_FORCED_INFECTED;
    } else if (it->unscanned && it->action != MG_ACTION_REJECT && it->action != MG_ACTION_HOLD) {
        it->action = MG_ACTION_DROP;
        it->forced = SZ_FORCED_UNSCANNED;
    } else if (is_opaque(it) && it->action != MG_ACTION_REJECT && it->action != MG_ACTION_HOLD) {
        it->action = MG_ACTION_DROP;
        it->forced = SZ_FORCED_OPAQUE;
    } else if ((it->flags & MG_ITEM_MACROS) && it->action == MG_ACTION_KEEP) {
        /* a document with a macro project is rebuilt without it, or
         * turned into text, or dropped: never passed on as it is */
        it->action = MG_ACTION_DROP;
        it->forced = SZ_FORCED_MACROS;
    } else if (it->action == MG_ACTION_DISARM || it->action == MG_ACTION_FLATTEN ||
               it->action == MG_ACTION_UNPACK ||
               (it->action == MG_ACTION_TEXT && mg_cdr_find(MG_ACTION_TEXT, it->detected))) {
        const struct mg_cdr_handler *h = mg_cdr_find(it->action, it->detected);
        if (h == NULL || it->role != MG_ROLE_ATTACHMENT) {
            it->action = MG_ACTION_DROP;
            it->forced = SZ_FORCED_NO_HANDLER;
        } else if (h->action == MG_ACTION_UNPACK && it->arc_depth >= s->o.archive_depth) {
            it->action = MG_ACTION_DROP;
            it->forced = SZ_FORCED_TOO_DEEP;
        } else if (!run_cdr(s, index, h)) {
            return false;
        }
        it = item_at(s, index);
    } else if (it->action == MG_ACTION_TEXT && !g_str_has_prefix(it->detected, "text/") &&
               !is_html(it->detected) && strcmp(it->detected, "application/x-empty") != 0) {
        it->action = MG_ACTION_DROP;
        it->forced = SZ_FORCED_NOT_TEXT;
    }
    if (it->arc_job != NULL) {
        bool again = false;
        if (!arc_scan_join(s, index, &again))
            return false;
        if (again)
            return decide(s, index);
    }
    if ((it->action != MG_ACTION_KEEP && it->action != MG_ACTION_TEXT) || it->cdr_ready)
        content_forget(s, &it->c);
    return s->error == NULL;
}

static int on_part_end(struct mg_mime *p, const struct mg_mime_part *part)
{
    struct mg_sanitize *s = mg_mime_user(p);
    int at = open_find(s, part->path);
    int index = at >= 0 ? g_array_index(s->open, int, at) : -1;
    struct sz_item *it = item_at(s, index);

    if (at >= 0)
        g_array_remove_index(s->open, (guint)at);
    if (it == NULL) {
        sz_fail(s, MG_VERDICT_INTERNAL, "part end without a part");
        return 1;
    }
    if (it->kind != MG_MIME_LEAF)
        return 0;
    g_strlcpy(it->sha_hex, mg_sha256_hex(it->sha), sizeof it->sha_hex);
    if (!content_close(s, &it->c))
        return 1;
    it->role = item_role(it);
    return classify(s, index) ? 0 : 1;
}

/* --- CDR ------------------------------------------------------------------ */

/* Where a worker's outputs go while it runs. */
struct cdr_run {
    struct mg_sanitize *s;
    int index;           /* the item the worker works on */
    bool unpack;         /* outputs are members (else one output replaces the item) */
    GPtrArray *members;  /* of struct sz_item * (unpack), not yet in s->items */
    struct sz_item *cur; /* member being received */
    unsigned outputs;
    GPtrArray *notes;
    struct mg_sha256 *sha; /* of the one output (not unpack) */
    bool macros;           /* the handler found macros (noted, removed) */
    bool decrypted;        /* it opened encrypted members with the password */
};

static bool cdr_begin(void *u, const char *name, const char *type, unsigned flags)
{
    struct cdr_run *r = u;
    struct sz_item *it = item_at(r->s, r->index);

    r->outputs++;
    if (!r->unpack) {
        if (r->outputs > 1)
            return true; /* one output only: the run fails (run_cdr), the rest is ignored */
        g_free(it->cdr_name);
        it->cdr_name = g_strdup(name);
        (void)type; /* the type is detected here, never taken from the worker */
        return true;
    }
    r->cur = g_new0(struct sz_item, 1);
    r->cur->path = g_strdup_printf("%s:%u", it->path, r->members->len + 1);
    r->cur->parent = r->index;
    r->cur->depth = it->depth;
    r->cur->kind = MG_MIME_LEAF;
    r->cur->origin = it->origin;
    r->cur->declared = g_strdup("application/octet-stream");
    r->cur->declared_default = true;
    r->cur->filename = g_strdup(name);
    r->cur->role = MG_ROLE_ATTACHMENT;
    r->cur->arc_depth = it->arc_depth + 1;
    r->cur->sha = mg_sha256_new();
    r->cur->cdr_flags = flags;
    g_ptr_array_add(r->members, r->cur);
    return true;
}

static bool cdr_data(void *u, const void *buf, size_t len)
{
    struct cdr_run *r = u;

    if (!r->unpack) {
        if (r->outputs > 1)
            return true;
        mg_sha256_update(r->sha, buf, len);
        return content_append(r->s, &item_at(r->s, r->index)->cdr, buf, len);
    }
    if (r->cur == NULL)
        return false;
    mg_sha256_update(r->cur->sha, buf, len);
    return content_append(r->s, &r->cur->c, buf, len);
}

static bool cdr_end(void *u)
{
    struct cdr_run *r = u;
    bool ok;

    if (!r->unpack) {
        struct sz_item *it = item_at(r->s, r->index);
        if (r->outputs > 1)
            return true;
        g_strlcpy(it->cdr_sha_hex, mg_sha256_hex(r->sha), sizeof it->cdr_sha_hex);
        return content_close(r->s, &it->cdr);
    }
    if (r->cur == NULL)
        return false;
    g_strlcpy(r->cur->sha_hex, mg_sha256_hex(r->cur->sha), sizeof r->cur->sha_hex);
    ok = content_close(r->s, &r->cur->c);
    r->cur = NULL;
    return ok;
}

static void cdr_note(void *u, const char *kind, const char *text)
{
    struct cdr_run *r = u;

    if (strcmp(kind, "macros") == 0)
        r->macros = true;
    if (strcmp(kind, "decrypted") == 0)
        r->decrypted = true;
    if (r->notes->len < 100 &&
        (strcmp(kind, "removed") == 0 || strcmp(kind, "converted") == 0 ||
         strcmp(kind, "flag") == 0 || strcmp(kind, "found") == 0 || strcmp(kind, "decrypted") == 0))
        g_ptr_array_add(r->notes, g_strdup_printf("%s: %.500s", kind, text));
}

static const struct mg_cdr_sink cdr_sink = {cdr_begin, cdr_data, cdr_end, cdr_note};

/*
 * The next member of an archive is worked on ahead, in a thread, while
 * the current member is: its detection (libmagic with a cookie of the
 * thread's own) and, when its rule gives it a handler that rebuilds it
 * (classify_overlapped; not unpack), its handler's run, with the records
 * kept in a list and the output bytes in a private temporary file. Two
 * workers then run at once on a machine with two cores. The thread reads
 * the member and the pipeline's read-only state, and writes only into
 * struct sz_prefetch. When the pipeline reaches the member it takes the
 * detection (classify_detect) and, if it gives the member the same
 * handler, replays the run into it exactly as a live run would have fed
 * it (prefetch_replay); otherwise the run is dropped. One member ahead.
 */
enum { PF_BEGIN, PF_DATA, PF_END, PF_NOTE };

struct pf_event {
    int kind;
    char *a, *b; /* BEGIN: name, type; NOTE: kind, text */
    unsigned flags;
    uint64_t len; /* DATA: bytes in the data file */
};

struct sz_prefetch {
    struct mg_sanitize *s;
    struct sz_item *m;
    GThread *thread;
    GMutex lock;
    GCond cond;
    bool detect_done; /* under lock: detected and flags are set (or failed) */
    char *detected;   /* NULL: the member could not be read; classify reads it */
    unsigned flags;
    /* the run, when there is one (set by the thread before it ends) */
    const struct mg_cdr_handler *h;
    struct mg_cdr_limits lim;
    int data_fd;    /* the outputs' bytes, in order */
    GArray *events; /* of struct pf_event */
    bool write_failed;
    enum mg_cdr_status st;
    char *reason;
    gint64 us;
    int cancel[2]; /* written to when the run is not wanted any more */
};

static void pf_add(struct sz_prefetch *p, int kind, const char *a, const char *b, unsigned flags,
                   uint64_t len)
{
    struct pf_event e = {kind, g_strdup(a), g_strdup(b), flags, len};

    g_array_append_val(p->events, e);
}

static bool pf_begin(void *u, const char *name, const char *type, unsigned flags)
{
    pf_add(u, PF_BEGIN, name, type, flags, 0);
    return true;
}

static bool pf_data(void *u, const void *buf, size_t len)
{
    struct sz_prefetch *p = u;

    if (mg_write_all(p->data_fd, buf, len) != 0) {
        p->write_failed = true;
        return false;
    }
    pf_add(p, PF_DATA, NULL, NULL, 0, len);
    return true;
}

static bool pf_end(void *u)
{
    pf_add(u, PF_END, NULL, NULL, 0, 0);
    return true;
}

static void pf_note(void *u, const char *kind, const char *text)
{
    pf_add(u, PF_NOTE, kind, text, 0, 0);
}

static const struct mg_cdr_sink pf_sink = {pf_begin, pf_data, pf_end, pf_note};

static GPtrArray *cdr_options(struct mg_sanitize *s, struct sz_item *it,
                              const struct mg_cdr_handler *h, const struct mg_rule *rule);

/* Copies content c into fd without touching the pipeline (safe in a
 * thread); false with *v and *why (static) on failure. */
static bool copy_content(const struct mg_sanitize *s, const struct sz_content *c, int fd,
                         enum mg_verdict *v, const char **why)
{
    char *buf = g_malloc(SZ_BUF);
    uint64_t off = 0;
    int e;

    while (off < c->size) {
        gssize n = content_pread(s, c, off, buf, SZ_BUF, v, why);
        if (n <= 0) {
            if (n == 0) {
                *v = MG_VERDICT_TEMPFAIL;
                *why = "short read";
            }
            break;
        }
        if ((e = mg_write_all(fd, buf, (size_t)n)) != 0) {
            *v = MG_VERDICT_TEMPFAIL;
            *why = g_strerror(e);
            break;
        }
        off += (uint64_t)n;
    }
    g_free(buf);
    return off == c->size;
}

/* An O_TMPFILE in the spool directory holding content c (safe in a
 * thread); -1 on any failure. */
static int pf_item_file(struct mg_sanitize *s, const struct sz_content *c)
{
    int fd = spool_tmpfile(s, "item");
    enum mg_verdict v;
    const char *why;

    if (fd >= 0 && !copy_content(s, c, fd, &v, &why)) {
        close(fd);
        fd = -1;
    }
    return fd;
}

/* The thread's detection: what classify_detect does, into p. */
static void pf_detect(struct sz_prefetch *p)
{
    unsigned char *sniff = g_malloc(MG_DETECT_SNIFF_BYTES);
    enum mg_verdict v;
    const char *why = NULL;
    struct mg_detect *det;
    gssize n = sniff_read(p->s, &p->m->c, sniff, &v, &why);

    if (n >= 0 && (det = mg_detect_take(&why)) != NULL) {
        p->detected = g_ascii_strdown(mg_detect_buffer(det, sniff, (size_t)n), -1);
        mg_detect_give(det);
        p->flags = item_flags(p->m, sniff, (size_t)n, p->detected);
    }
    g_free(sniff);
}

/* Whether the run was dropped already (prefetch_drop wrote to the pipe). */
static bool pf_cancelled(struct sz_prefetch *p)
{
    struct pollfd pf = {p->cancel[0], POLLIN, 0};

    return p->cancel[0] >= 0 && poll(&pf, 1, 0) > 0;
}

static gpointer pf_thread(gpointer u)
{
    struct sz_prefetch *p = u;
    struct sz_item *m = p->m;
    const struct mg_rule *pre;
    const struct mg_cdr_handler *h;
    GPtrArray *opts;
    int in_fd;
    gint64 t0;

    pf_detect(p);
    g_mutex_lock(&p->lock);
    p->detect_done = true;
    g_cond_broadcast(&p->cond);
    g_mutex_unlock(&p->lock);
    if (p->detected == NULL)
        return NULL;
    /* the handler classify will find (overlapped_handler) */
    h = overlap_handler(p->s, m, p->detected, p->flags, &pre);
    if (h == NULL || p->lim.deadline_us <= 0)
        return NULL;
    if (pf_cancelled(p))
        return NULL;
    p->data_fd = spool_tmpfile(p->s, "ahead");
    if (p->data_fd < 0 || (in_fd = pf_item_file(p->s, &m->c)) < 0)
        return NULL; /* the run waits for its turn */
    if (pf_cancelled(p)) {
        close(in_fd);
        return NULL;
    }
    opts = cdr_options(p->s, m, h, pre);
    t0 = g_get_monotonic_time();
    p->st = mg_cdr_run_cancel(h, (const char *const *)opts->pdata, in_fd, &p->lim, &pf_sink, p,
                              p->cancel[0], &p->reason);
    p->us = g_get_monotonic_time() - t0;
    p->h = h;
    close(in_fd);
    g_ptr_array_unref(opts);
    return NULL;
}

/* Waits for the thread and frees everything. */
static void prefetch_drop(struct sz_item *it)
{
    struct sz_prefetch *p = it->prefetch;

    if (p == NULL)
        return;
    it->prefetch = NULL;
    if (p->thread != NULL) {
        /* not wanted: its worker, if it runs, is killed at once */
        if (p->cancel[1] >= 0)
            (void)mg_write_all(p->cancel[1], "x", 1);
        g_thread_join(p->thread);
    }
    for (int i = 0; i < 2; i++)
        if (p->cancel[i] >= 0)
            close(p->cancel[i]);
    for (guint i = 0; i < p->events->len; i++) {
        struct pf_event *e = &g_array_index(p->events, struct pf_event, i);
        g_free(e->a);
        g_free(e->b);
    }
    g_array_unref(p->events);
    if (p->data_fd >= 0)
        close(p->data_fd);
    g_free(p->detected);
    g_free(p->reason);
    g_mutex_clear(&p->lock);
    g_cond_clear(&p->cond);
    g_free(p);
}

/* Starts the work on member m (not yet an item of s) ahead. */
static void prefetch_start(struct mg_sanitize *s, struct sz_item *m)
{
    struct sz_prefetch *p;

    if (m->prefetch != NULL || m->detected_done || s->error != NULL)
        return;
    envelope(s); /* the thread matches rules: sender and recipients first */
    p = g_new0(struct sz_prefetch, 1);
    p->s = s;
    p->m = m;
    p->data_fd = -1;
    if (!g_unix_open_pipe(p->cancel, FD_CLOEXEC, NULL)) /* GLib 2.74: FD_CLOEXEC only */
        p->cancel[0] = p->cancel[1] = -1;
    g_mutex_init(&p->lock);
    g_cond_init(&p->cond);
    p->events = g_array_new(FALSE, FALSE, sizeof(struct pf_event));
    p->lim = s->o.cdr;
    p->lim.deadline_us =
        MIN(p->lim.deadline_us, MAX(s->o.cdr_budget_us - s->cdr_spent_us, (int64_t)0));
    m->prefetch = p;
    p->thread = g_thread_try_new("mugaika-ahead", pf_thread, p, NULL);
    if (p->thread == NULL)
        prefetch_drop(m);
}

/* classify_detect's part: the detection made ahead, if any. */
static bool prefetch_detected(struct sz_item *it)
{
    struct sz_prefetch *p = it->prefetch;

    if (p == NULL)
        return false;
    g_mutex_lock(&p->lock);
    while (!p->detect_done)
        g_cond_wait(&p->cond, &p->lock);
    g_mutex_unlock(&p->lock);
    if (p->detected == NULL)
        return false; /* classify reads it again and reports the error */
    it->detected = g_strdup(p->detected);
    it->flags = p->flags;
    return true;
}

/* Whether the run made ahead is the one run_cdr is about to start. */
static bool prefetch_has_run(struct sz_item *it, const struct mg_cdr_handler *h)
{
    struct sz_prefetch *p = it->prefetch;

    if (p == NULL)
        return false;
    if (p->thread != NULL) {
        g_thread_join(p->thread);
        p->thread = NULL;
    }
    return p->h == h;
}

/* Replays the run made ahead into r, as mg_cdr_run would have fed it;
 * returns its status and *reason. */
static enum mg_cdr_status prefetch_replay(struct mg_sanitize *s, struct sz_item *it,
                                          struct cdr_run *r, char **reason)
{
    struct sz_prefetch *p = it->prefetch;
    enum mg_cdr_status st;
    uint64_t off = 0;
    char *buf = NULL;
    bool ok = true;

    s->cdr_spent_us += p->us;
    for (guint i = 0; i < p->events->len && ok; i++) {
        struct pf_event *e = &g_array_index(p->events, struct pf_event, i);

        switch (e->kind) {
        case PF_BEGIN:
            ok = cdr_begin(r, e->a, e->b, e->flags);
            break;
        case PF_DATA:
            if (buf == NULL)
                buf = g_malloc(SZ_BUF);
            for (uint64_t done = 0; ok && done < e->len;) {
                size_t want = (size_t)MIN((uint64_t)SZ_BUF, e->len - done);
                ssize_t n = pread(p->data_fd, buf, want, (off_t)(off + done));
                if (n <= 0) {
                    if (n < 0 && errno == EINTR)
                        continue;
                    ok = false;
                    break;
                }
                ok = cdr_data(r, buf, (size_t)n);
                done += (uint64_t)n;
            }
            off += e->len;
            break;
        case PF_END:
            ok = cdr_end(r);
            break;
        default:
            cdr_note(r, e->a, e->b);
            break;
        }
    }
    g_free(buf);
    if (!ok || p->write_failed) {
        st = MG_CDR_ERROR;
        *reason = g_strdup("the output could not be stored");
    } else {
        st = p->st;
        *reason = p->reason;
        p->reason = NULL;
    }
    prefetch_drop(it);
    return st;
}

/* A temporary file with the item's content: the worker's standard input. */
static int item_file(struct mg_sanitize *s, const struct sz_content *c)
{
    int fd = sz_tmpfile(s, "item");
    enum mg_verdict v = MG_VERDICT_TEMPFAIL;
    const char *why = NULL;

    if (fd >= 0 && !copy_content(s, c, fd, &v, &why)) {
        sz_fail(s, v, "spool: %s", why != NULL ? why : "copy failed");
        close(fd);
        fd = -1;
    }
    return fd;
}

/* The handler's output replaces the item: typed again (it must be what
 * the handler makes) and scanned again before it may be delivered (the
 * scan runs while the pipeline goes on: output_scan_start). */
static bool check_output(struct mg_sanitize *s, int index, const struct mg_cdr_handler *h)
{
    struct sz_item *it = item_at(s, index);
    gssize n = sniff_content(s, &it->cdr);
    const char *t;

    if (n < 0)
        return false;
    t = mg_detect_buffer(s->o.detect, s->sniff, (size_t)n);
    g_free(it->cdr_type);
    it->cdr_type = g_ascii_strdown(t, -1);
    if (!mg_cdr_type_in(h->out_types, it->cdr_type)) {
        /* a text whose first element is <svg>, say: it would not pass
         * the policy as text (see output_kept in build.c) */
        if (h->action == MG_ACTION_TEXT)
            it->cdr_reason = g_strdup_printf("its text reads as %s", it->cdr_type);
        else
            it->cdr_reason =
                g_strdup_printf("the handler made %s, not what it should", it->cdr_type);
        it->cdr_status = MG_CDR_FAIL;
        return true;
    }
    it->cdr_ready = true;
    if (s->o.av != NULL)
        output_scan_start(s, index, h->name);
    return s->error == NULL;
}

/* Options for the handler: the item's name, rule options, limits. */
static GPtrArray *cdr_options(struct mg_sanitize *s, struct sz_item *it,
                              const struct mg_cdr_handler *h, const struct mg_rule *rule)
{
    GPtrArray *o = g_ptr_array_new_with_free_func(g_free);
    const char *links = mg_rule_option(rule, "links");

    if (it->filename != NULL && g_utf8_validate(it->filename, -1, NULL) &&
        strlen(it->filename) < 1024 && strchr(it->filename, '\n') == NULL)
        g_ptr_array_add(o, g_strdup_printf("name=%s", it->filename));
    if (h->action == MG_ACTION_UNPACK) {
        unsigned left =
            s->o.archive_members > s->arc_members ? s->o.archive_members - s->arc_members : 0;
        uint64_t bytes = s->o.archive_total > s->arc_bytes ? s->o.archive_total - s->arc_bytes : 0;
        g_ptr_array_add(o, g_strdup_printf("max-members=%u", left));
        g_ptr_array_add(o, g_strdup_printf("max-total=%" G_GUINT64_FORMAT, bytes));
        g_ptr_array_add(o, g_strdup_printf("max-ratio=%u", s->o.archive_ratio));
    }
    /* a release gives its password to every archive: an encrypted entry
     * may come after what the first look at the archive saw */
    if (s->o.password != NULL && h->action == MG_ACTION_UNPACK)
        g_ptr_array_add(o, g_strdup_printf("password=%s", s->o.password));
    if (links != NULL && strcmp(links, "remove") == 0) {
        g_ptr_array_add(o, g_strdup("uri=remove"));
        g_ptr_array_add(o, g_strdup("hyperlinks=remove"));
    }
    g_ptr_array_add(o, NULL);
    return o;
}

static bool run_cdr(struct mg_sanitize *s, int index, const struct mg_cdr_handler *h)
{
    struct sz_item *it = item_at(s, index);
    struct cdr_run r;
    struct mg_cdr_limits lim = s->o.cdr;
    GPtrArray *opts;
    char *reason = NULL;
    enum mg_cdr_status st;
    int fd;

    memset(&r, 0, sizeof r);
    r.s = s;
    r.index = index;
    r.unpack = h->action == MG_ACTION_UNPACK;
    r.members = g_ptr_array_new();
    r.notes = g_ptr_array_new_with_free_func(g_free);
    r.sha = mg_sha256_new();
    if (!r.unpack && prefetch_has_run(it, h)) {
        /* made ahead (prefetch_start), with a deadline set before the
         * runs in between were counted: the message's time is applied
         * here as the live run would have met it */
        int64_t left = s->o.cdr_budget_us - s->cdr_spent_us;
        if (left <= 0) {
            st = MG_CDR_LIMIT;
            reason = g_strdup("the message's time for rebuilding files is used up");
            prefetch_drop(it);
        } else if (it->prefetch->us > left) {
            st = MG_CDR_TIMEOUT;
            reason = g_strdup_printf("worker killed after %" G_GINT64_FORMAT " s (deadline)",
                                     left / G_USEC_PER_SEC);
            s->cdr_spent_us += left;
            prefetch_drop(it);
        } else {
            st = prefetch_replay(s, it, &r, &reason);
        }
    } else {
        prefetch_drop(it);
        if ((fd = item_file(s, &it->c)) < 0) {
            g_ptr_array_unref(r.members);
            g_ptr_array_unref(r.notes);
            mg_sha256_free(r.sha);
            return false;
        }
        if (r.unpack) {
            lim.max_outputs = s->o.archive_members > s->arc_members
                                  ? s->o.archive_members - s->arc_members + 1
                                  : 1;
            lim.max_output =
                s->o.archive_total > s->arc_bytes ? s->o.archive_total - s->arc_bytes : 0;
        }
        {
            /* the message's time for its handlers: a small mail with many
             * members must not keep the gateway for an hour */
            int64_t left = s->o.cdr_budget_us - s->cdr_spent_us;
            lim.deadline_us = MIN(lim.deadline_us, MAX(left, (int64_t)0));
        }
        opts = cdr_options(s, it, h, it->rule);
        if (lim.deadline_us <= 0) {
            st = MG_CDR_LIMIT;
            reason = g_strdup("the message's time for rebuilding files is used up");
        } else {
            gint64 t0 = g_get_monotonic_time();
            st = mg_cdr_run(h, (const char *const *)opts->pdata, fd, &lim, &cdr_sink, &r, &reason);
            s->cdr_spent_us += g_get_monotonic_time() - t0;
        }
        close(fd);
        for (guint i = 0; i + 1 < opts->len; i++) {
            char *kv = g_ptr_array_index(opts, i);
            if (g_str_has_prefix(kv, "password="))
                explicit_bzero(kv, strlen(kv));
        }
        g_ptr_array_unref(opts);
    }
    it = item_at(s, index);
    it->cdr_handler = h->name;
    it->cdr_status = (int)st;
    it->cdr_notes = r.notes;
    if (r.macros)
        it->flags |= MG_ITEM_MACROS;
    if (r.decrypted && st == MG_CDR_OK)
        it->released = true;
    if (st == MG_CDR_ERROR) {
        /* the worker could not be started, or the spool failed: not the
         * item's fault, so the message is retried later */
        if (s->error == NULL)
            sz_fail(s, MG_VERDICT_TEMPFAIL, "CDR %s for part %s: %s", h->name, it->path, reason);
        g_free(reason);
        goto out;
    }
    if (st == MG_CDR_OK && !r.unpack && r.outputs != 1) {
        st = MG_CDR_FAIL;
        it->cdr_status = (int)st;
        g_free(reason);
        reason = g_strdup_printf("the handler made %u outputs instead of one", r.outputs);
    }
    if (st == MG_CDR_OK && !r.unpack) {
        g_free(reason);
        reason = NULL;
        if (!check_output(s, index, h))
            goto out;
    } else if (st == MG_CDR_OK) {
        /* members go through the whole pipeline, depth first, so that
         * each archive's subtree stays contiguous in s->items */
        it->members = r.members->len;
        for (guint i = 0; i < r.members->len; i++) {
            struct sz_item *m = g_ptr_array_index(r.members, i);
            s->arc_members++;
            s->arc_bytes += m->c.size;
        }
        if (s->arc_members > s->o.archive_members || s->arc_bytes > s->o.archive_total) {
            st = MG_CDR_LIMIT;
            it->cdr_status = (int)st;
            reason = g_strdup("the message's archives hold too many members or bytes");
        } else {
            for (guint i = 0; i < r.members->len && s->error == NULL; i++) {
                struct sz_item *m = g_ptr_array_index(r.members, i);
                g_ptr_array_index(r.members, i) = NULL;
                g_ptr_array_add(s->items, m);
                /* the next member's handler runs beside this one's */
                if (i + 1 < r.members->len)
                    prefetch_start(s, g_ptr_array_index(r.members, i + 1));
                if (!classify(s, (int)s->items->len - 1))
                    break;
            }
        }
        it = item_at(s, index);
    }
    if (r.unpack && (st == MG_CDR_ENCRYPTED || st == MG_CDR_FAIL) && s->error == NULL) {
        /* The archive was scanned without libclamav unpacking it, for its
         * members to be scanned one by one: they will not be. Scan it
         * whole now, so that malware is named as such rather than as
         * "encrypted" (which asks the recipient for the password) or
         * "failed". Not after a limit, a crash or a timeout: that archive
         * is treated as hostile and removed, and expanding a bomb in
         * libclamav would take the time the limit saved. */
        if (!leaf_scan(s, it, false))
            goto done;
        if (it->flags & MG_ITEM_INFECTED) {
            it->rule = match(s, it);
            it->action = mg_rule_action(it->rule);
            if (it->action != MG_ACTION_REJECT && it->action != MG_ACTION_HOLD)
                it->action = MG_ACTION_DROP;
            it->forced = SZ_FORCED_INFECTED;
            it->cdr_reason = reason;
            reason = NULL;
            goto done;
        }
    }
    if (st == MG_CDR_ENCRYPTED) {
        /* the rules decide what an encrypted item becomes (hold, drop);
         * a release's password that did not open it leaves it so */
        it->flags |= MG_ITEM_ENCRYPTED;
        it->released = false;
        it->rule = match(s, it);
        it->action = mg_rule_action(it->rule);
        if (it->action != MG_ACTION_HOLD && it->action != MG_ACTION_REJECT &&
            it->action != MG_ACTION_DROP) {
            /* the rule would run the handler again: it cannot */
            it->action = MG_ACTION_DROP;
            it->forced = SZ_FORCED_CDR_FAILED;
        }
        it->cdr_reason = reason;
        reason = NULL;
    } else if (st != MG_CDR_OK || it->cdr_status != MG_CDR_OK) {
        it->action = MG_ACTION_DROP;
        /* a text handler's output typed as something else (check_output) */
        bool not_text = h->action == MG_ACTION_TEXT && it->cdr_type != NULL &&
                        !mg_cdr_type_in(h->out_types, it->cdr_type);
        it->forced = not_text ? SZ_FORCED_NOT_TEXT : SZ_FORCED_CDR_FAILED;
        if (it->cdr_reason == NULL) {
            it->cdr_reason = reason;
            reason = NULL;
        }
        sz_content_forget(s, &it->cdr);
        it->cdr_ready = false;
    }
done:
    g_free(reason);
out:
    for (guint i = 0; i < r.members->len; i++)
        if (g_ptr_array_index(r.members, i) != NULL)
            item_free(g_ptr_array_index(r.members, i));
    g_ptr_array_unref(r.members);
    mg_sha256_free(r.sha);
    return s->error == NULL;
}

static const struct mg_mime_settings settings = {
    .on_part_begin = on_part_begin,
    .on_header = on_header,
    .on_defect = on_defect,
    .on_body = on_body,
    .on_part_end = on_part_end,
};

/* --- public -------------------------------------------------------------- */

static gpointer gmime_init(gpointer unused)
{
    (void)unused;
    g_mime_init();
    return NULL;
}

struct mg_sanitize *mg_sanitize_new(const struct mg_sanitize_opts *o)
{
    static GOnce once = G_ONCE_INIT;
    struct mg_sanitize *s = g_new0(struct mg_sanitize, 1);
    GError *e = NULL;

    g_once(&once, gmime_init, NULL);

    s->o = *o;
    s->o.rules = mg_rules_ref(o->rules);
    if (o->av != NULL)
        s->o.av = mg_av_ref(o->av);
    s->lang = g_strdup(o->lang != NULL && strcmp(o->lang, "en") == 0 ? "en" : "ja");
    s->o.lang = s->lang;
    s->o.sender = NULL;
    s->o.recipients = NULL;
    s->o.spool_dir = g_strdup(o->spool_dir);
    s->o.release_id = g_strdup(o->release_id);
    s->o.password = g_strdup(o->password);
    if (o->release_id != NULL)
        g_strlcpy(s->qid, o->release_id, sizeof s->qid);
    if (o->sender != NULL)
        s->o.sender = g_strdup(o->sender);
    if (o->recipients != NULL)
        s->o.recipients = (const char *const *)g_strdupv((char **)o->recipients);
    s->parser = mg_mime_new(&settings, &o->limits, s);
    s->items = g_ptr_array_new_with_free_func(item_free);
    s->open = g_array_new(FALSE, FALSE, sizeof(int));
    s->defects = g_array_new(FALSE, FALSE, sizeof(enum mg_mime_defect));
    s->spool_fd = -1;
    s->out_fd = -1;
    s->scan_fd = -1;
    s->sniff = g_malloc(MG_DETECT_SNIFF_BYTES);
    s->orig_sha = mg_sha256_new();
    s->t_start = g_get_monotonic_time();
    s->o.file_qwrite = NULL;
    if (o->file_qwrite != NULL) {
        s->qw = o->file_qwrite; /* fed by the caller with the file */
        s->qw_file = true;
    } else if (o->quarantine != NULL) {
        s->qw = mg_quarantine_write_begin(o->quarantine, &e);
        if (s->qw == NULL) {
            sz_fail(s, MG_VERDICT_TEMPFAIL, "quarantine: %s", e->message);
            g_error_free(e);
        }
    }
    return s;
}

void mg_sanitize_feed(struct mg_sanitize *s, const char *buf, size_t len)
{
    GError *e = NULL;

    if (s->finished || s->error != NULL || len == 0)
        return;
    if (s->qw == NULL)
        mg_sha256_update(s->orig_sha, buf, len);
    s->orig_size += len;
    if (s->qw != NULL && !s->qw_file && !mg_qwrite_feed(s->qw, buf, len, &e)) {
        sz_fail(s, MG_VERDICT_TEMPFAIL, "quarantine: %s", e->message);
        g_error_free(e);
        return;
    }
    if (mg_mime_execute(s->parser, buf, len) != MG_OK && s->error == NULL)
        sz_fail(s, MG_VERDICT_INTERNAL, "parser: %s", "unexpected error");
}

/* Is item j inside the subtree of item i (or i itself)? */
static bool in_subtree(struct mg_sanitize *s, int j, int i)
{
    for (int k = j; k >= 0; k = item_at(s, k)->parent)
        if (k == i)
            return true;
    return false;
}

/* The first body leaf of the subtree of child (or -1) with action a. */
static int subtree_body(struct mg_sanitize *s, int child, bool html)
{
    for (guint j = (guint)child; j < s->items->len; j++) {
        struct sz_item *it = item_at(s, (int)j);
        if (!in_subtree(s, (int)j, child))
            break;
        if (it->kind == MG_MIME_LEAF && it->role == MG_ROLE_BODY && it->forced == SZ_FORCED_NONE &&
            (html ? strcmp(it->declared, "text/html") == 0 && it->action == MG_ACTION_TEXT
                  : strcmp(it->declared, "text/plain") == 0 && it->action == MG_ACTION_KEEP &&
                        it->c.size > 0))
            return (int)j;
    }
    return -1;
}

/* multipart/alternative: one child is used, the others are left out. */
static void resolve_alternatives(struct mg_sanitize *s)
{
    for (guint i = 0; i < s->items->len; i++) {
        struct sz_item *alt = item_at(s, (int)i);
        int pick = -1, plain = -1, html = -1;
        bool prefer_html = false;

        if (alt->kind != MG_MIME_MULTIPART || strcmp(alt->declared, "multipart/alternative") != 0)
            continue;
        for (guint j = i + 1; j < s->items->len; j++) {
            struct sz_item *c = item_at(s, (int)j);
            if (!in_subtree(s, (int)j, (int)i))
                break;
            if (c->parent != (int)i)
                continue;
            if (plain < 0 && subtree_body(s, (int)j, false) >= 0)
                plain = (int)j;
            int h = subtree_body(s, (int)j, true);
            if (h >= 0) {
                html = (int)j;
                if (g_strcmp0(mg_rule_option(item_at(s, h)->rule, "prefer-html"), "true") == 0)
                    prefer_html = true;
            }
        }
        pick = prefer_html && html >= 0 ? html : plain >= 0 ? plain : html;
        if (pick < 0)
            continue; /* nothing readable: every child is handled as it is */
        for (guint j = i + 1; j < s->items->len; j++) {
            struct sz_item *c = item_at(s, (int)j);
            if (!in_subtree(s, (int)j, (int)i))
                break;
            if (in_subtree(s, (int)j, pick) || c->kind != MG_MIME_LEAF)
                continue;
            if (c->forced == SZ_FORCED_INFECTED || c->action == MG_ACTION_HOLD ||
                c->action == MG_ACTION_REJECT)
                continue; /* still reported and still decisive */
            c->forced = SZ_FORCED_ALTERNATIVE;
            content_forget(s, &c->c);
        }
    }
}

static char *result_summary(struct mg_sanitize *s)
{
    unsigned count[MG_ACTION_COUNT] = {0};
    GString *r = g_string_new("mugaika/" MUGAIKA_VERSION);
    const char *virus = NULL;
    unsigned infected = 0;

    for (guint i = 0; i < s->items->len; i++) {
        struct sz_item *it = item_at(s, (int)i);
        if (it->kind != MG_MIME_LEAF || it->forced == SZ_FORCED_ALTERNATIVE)
            continue;
        count[it->action]++;
        if (it->flags & MG_ITEM_INFECTED) {
            infected++;
            if (virus == NULL)
                virus = it->virus;
        }
    }
    g_string_append_printf(r, "; %s",
                           s->held                    ? "held"
                           : s->reject_reason != NULL ? "rejected"
                                                      : "sanitized");
    if (s->output_infected)
        g_string_append(r, "; output-infected");
    if (s->qid[0] != '\0')
        g_string_append_printf(r, "; quarantine=%s", s->qid);
    for (unsigned a = 0; a < MG_ACTION_COUNT; a++)
        if (count[a] > 0)
            g_string_append_printf(r, "; %s=%u", mg_action_name((enum mg_action)a), count[a]);
    if (infected > 0) {
        g_string_append_printf(r, "; infected=%u; virus=", infected);
        for (const char *v = virus; v != NULL && *v != '\0' && v - virus < 80; v++)
            g_string_append_c(r, g_ascii_isgraph(*v) && *v != ';' ? *v : '_');
    }
    return g_string_free(r, FALSE);
}

static char *parts_json_string(struct mg_sanitize *s)
{
    JsonNode *n = mg_sanitize_parts_json(s);
    char *str = json_to_string(n, FALSE);

    json_node_unref(n);
    return str;
}

static bool quarantine_commit(struct mg_sanitize *s)
{
    struct mg_qrecord rec;
    GError *e = NULL;
    GString *rcpt = g_string_new(NULL);
    bool ok;

    if (s->qw == NULL)
        return true;
    memset(&rec, 0, sizeof rec);
    rec.kind = g_strdup(s->qw_file ? "file" : "message");
    rec.message_id = g_strdup(top_header(s, "Message-ID"));
    rec.sender = g_strdup(s->sender);
    for (guint i = 0; s->recipients != NULL && i + 1 < s->recipients->len; i++)
        g_string_append_printf(rcpt, "%s%s", i ? "," : "",
                               (char *)g_ptr_array_index(s->recipients, i));
    rec.recipients = g_string_free(rcpt, FALSE);
    rec.subject = g_strdup(top_header(s, "Subject"));
    /* the summary without the id (not known yet) */
    rec.result = result_summary(s);
    rec.parts_json = parts_json_string(s);
    ok = mg_qwrite_commit(s->qw, &rec, &e);
    s->qw = NULL;
    if (!ok) {
        sz_fail(s, MG_VERDICT_TEMPFAIL, "quarantine: %s", e != NULL ? e->message : "commit failed");
        g_clear_error(&e);
    } else {
        g_strlcpy(s->qid, rec.id, sizeof s->qid);
        g_free(s->sha_hex);
        s->sha_hex = g_strdup(rec.sha256);
    }
    mg_qrecord_clear(&rec);
    return ok;
}

/* The rebuilt message must itself be clean: a second, independent look
 * with the same engine at the bytes that will be delivered, taken apart
 * as mail the way clamscan takes it apart (libclamav also finds mail
 * hidden inside a text part, which a scan of the texts alone misses). */
static bool scan_output(struct mg_sanitize *s, bool *infected)
{
    GError *e = NULL;
    char *vir = NULL;
    enum mg_av_verdict v;

    *infected = false;
    if (s->o.av == NULL)
        return true;
    gint64 t0 = g_get_monotonic_time();
    v = mg_av_scan_fd_flags(s->o.av, s->scan_fd >= 0 ? s->scan_fd : s->out_fd,
                            MG_AV_SCAN_NO_IMAGE_HASH, &vir, &e);
    s->av_us += g_get_monotonic_time() - t0;
    if (v == MG_AV_FAILED) {
        sz_fail(s, MG_VERDICT_TEMPFAIL, "virus scan of the rebuilt message: %s",
                e != NULL ? e->message : "engine error");
        g_clear_error(&e);
        return false;
    }
    if (v == MG_AV_INFECTED) {
        *infected = true;
        g_free(vir);
    }
    return true;
}

enum mg_verdict mg_sanitize_finish(struct mg_sanitize *s, GError **err)
{
    if (s->finished) {
        if (s->verdict != MG_VERDICT_ACCEPT && err != NULL && s->error != NULL)
            *err = g_error_copy(s->error);
        return s->verdict;
    }
    s->finished = true;
    if (s->error == NULL && mg_mime_finish(s->parser) != MG_OK && s->error == NULL)
        sz_fail(s, MG_VERDICT_INTERNAL, "parser: %s", "unexpected error at end of input");
    sz_output_scan_join(s);
    s->t_parsed = g_get_monotonic_time();
    /* the quarantine hashes the original; without one, it is done here */
    if (s->qw == NULL)
        s->sha_hex = g_strdup(mg_sha256_hex(s->orig_sha));
    if (s->error == NULL) {
        envelope(s);
        resolve_alternatives(s);
        for (guint i = 0; i < s->items->len; i++) {
            struct sz_item *it = item_at(s, (int)i);
            if (it->kind != MG_MIME_LEAF || it->forced == SZ_FORCED_ALTERNATIVE)
                continue;
            if (it->action == MG_ACTION_REJECT && s->reject_reason == NULL) {
                const char *why = mg_rule_notice(it->rule, "en");
                s->reject_reason =
                    g_strdup_printf("message refused by policy (rule %s%s%s)", mg_rule_id(it->rule),
                                    why != NULL ? ": " : "", why != NULL ? why : "");
            }
            if (it->action == MG_ACTION_HOLD &&
                strcmp(mg_rule_option(it->rule, "hold"), "part") != 0)
                s->held = true;
        }
        quarantine_commit(s);
    }
    if (s->error == NULL) {
        g_free(s->result);
        s->result = result_summary(s);
        if (s->reject_reason == NULL) {
            bool infected = false;
            bool built = sz_build(s);
            if (!built && s->error == NULL)
                sz_fail(s, MG_VERDICT_INTERNAL, "the rebuilt message could not be made");
            if (built && scan_output(s, &infected) && infected) {
                /* Something the part scans missed is in the output:
                 * deliver only the notice, the original stays held. */
                s->held = true;
                s->output_infected = true;
                g_free(s->result);
                s->result = result_summary(s);
                built = sz_build(s);
                if (!built && s->error == NULL)
                    sz_fail(s, MG_VERDICT_INTERNAL, "the notice-only message could not be made");
                if (built && scan_output(s, &infected) && infected)
                    sz_fail(s, MG_VERDICT_INTERNAL, "the notice-only message does not scan clean");
            }
        }
    }
    if (s->qw != NULL) {
        mg_qwrite_abort(s->qw);
        s->qw = NULL;
    }
    s->t_done = g_get_monotonic_time();
    if (s->error != NULL)
        s->verdict = s->error_verdict;
    else if (s->reject_reason != NULL)
        s->verdict = MG_VERDICT_REJECT;
    else
        s->verdict = MG_VERDICT_ACCEPT;
    if (s->verdict == MG_VERDICT_REJECT && err != NULL)
        *err = g_error_new_literal(mg_sanitize_error_quark(), MG_VERDICT_REJECT, s->reject_reason);
    else if (s->verdict != MG_VERDICT_ACCEPT && err != NULL)
        *err = g_error_copy(s->error);
    return s->verdict;
}

uint64_t mg_sanitize_length(const struct mg_sanitize *s)
{
    return s->finished && s->verdict == MG_VERDICT_ACCEPT && s->out_fd >= 0 ? s->out_len : 0;
}

ssize_t mg_sanitize_pread(struct mg_sanitize *s, uint64_t off, char *buf, size_t len, GError **err)
{
    ssize_t n;

    if (!s->finished || s->verdict != MG_VERDICT_ACCEPT || s->out_fd < 0) {
        g_set_error_literal(err, mg_sanitize_error_quark(), MG_VERDICT_INTERNAL,
                            "no rebuilt message to read");
        return -1;
    }
    if (off >= s->out_len || len == 0)
        return 0;
    len = (size_t)MIN((uint64_t)len, s->out_len - off);
    do
        n = pread(s->out_fd, buf, len, (off_t)off);
    while (n < 0 && errno == EINTR);
    if (n <= 0) {
        g_set_error(err, mg_sanitize_error_quark(), MG_VERDICT_TEMPFAIL, "spool read: %s",
                    n < 0 ? g_strerror(errno) : "short file");
        return -1;
    }
    return n;
}

bool mg_sanitize_write(struct mg_sanitize *s, int fd, GError **err)
{
    char *buf;
    uint64_t off = 0;
    bool ok = true;

    if (!s->finished || s->verdict != MG_VERDICT_ACCEPT || s->out_fd < 0) {
        g_set_error_literal(err, mg_sanitize_error_quark(), MG_VERDICT_INTERNAL,
                            "no rebuilt message to write");
        return false;
    }
    buf = g_malloc(SZ_BUF);
    while (ok && off < s->out_len) {
        ssize_t n = mg_sanitize_pread(s, off, buf, SZ_BUF, err);
        if (n <= 0) {
            if (n == 0)
                g_set_error_literal(err, mg_sanitize_error_quark(), MG_VERDICT_TEMPFAIL,
                                    "spool read: short file");
            ok = false;
            break;
        }
        for (ssize_t w = 0; w < n;) {
            ssize_t m = write(fd, buf + w, (size_t)(n - w));
            if (m < 0 && errno == EINTR)
                continue;
            if (m < 0) {
                g_set_error(err, mg_sanitize_error_quark(), MG_VERDICT_TEMPFAIL, "write: %s",
                            g_strerror(errno));
                ok = false;
                break;
            }
            w += m;
        }
        off += (uint64_t)n;
    }
    g_free(buf);
    return ok;
}

const char *mg_sanitize_quarantine_id(const struct mg_sanitize *s)
{
    return s->qid;
}

const char *mg_sanitize_notice(const struct mg_sanitize *s)
{
    return s->notice_text != NULL ? s->notice_text : "";
}

bool mg_sanitize_held(const struct mg_sanitize *s)
{
    return s->finished && s->held;
}

const char *mg_sanitize_result(const struct mg_sanitize *s)
{
    return s->result != NULL ? s->result : "";
}

static const char *forced_name(enum sz_forced f)
{
    static const char *const names[] = {
        NULL,          "infected",    "not-understood", "no-handler", "no-text-form",
        "alternative", "not-scanned", "handler-failed", "too-deep",   "macros"};
    G_STATIC_ASSERT(G_N_ELEMENTS(names) == SZ_FORCED_MACROS + 1);
    return (unsigned)f < G_N_ELEMENTS(names) ? names[f] : NULL;
}

static void add_flags(JsonBuilder *b, unsigned flags)
{
    json_builder_set_member_name(b, "flags");
    json_builder_begin_array(b);
    for (unsigned i = 0; i < MG_ITEM_FLAG_COUNT; i++)
        if (flags & (1u << i))
            json_builder_add_string_value(b, mg_item_flag_name(i));
    json_builder_end_array(b);
}

static void add_str(JsonBuilder *b, const char *name, const char *v)
{
    json_builder_set_member_name(b, name);
    if (v != NULL)
        json_builder_add_string_value(b, v);
    else
        json_builder_add_null_value(b);
}

static void build_parts(const struct mg_sanitize *s, JsonBuilder *b)
{
    json_builder_begin_array(b);
    for (guint i = 0; i < s->items->len; i++) {
        const struct sz_item *it = g_ptr_array_index(s->items, i);
        json_builder_begin_object(b);
        add_str(b, "path", it->path);
        json_builder_set_member_name(b, "leaf");
        json_builder_add_boolean_value(b, it->kind == MG_MIME_LEAF);
        add_str(b, "content_type", it->declared);
        add_str(b, "filename", it->filename);
        if (it->kind == MG_MIME_LEAF) {
            json_builder_set_member_name(b, "size");
            json_builder_add_int_value(b, (gint64)it->c.size);
            add_str(b, "sha256", it->sha_hex[0] != '\0' ? it->sha_hex : NULL);
            add_str(b, "detected_type", it->detected);
            add_str(b, "role", it->role == MG_ROLE_BODY ? "body" : "attachment");
            add_flags(b, it->flags);
            add_str(b, "virus", it->virus);
            add_str(b, "rule", it->rule != NULL ? mg_rule_id(it->rule) : NULL);
            add_str(b, "action", it->rule != NULL ? mg_action_name(it->action) : NULL);
            add_str(b, "forced", forced_name(it->forced));
            add_str(b, "output", it->out_name);
            if (it->released) {
                json_builder_set_member_name(b, "released");
                json_builder_add_boolean_value(b, true);
            }
            if (it->cdr_handler != NULL) {
                json_builder_set_member_name(b, "cdr");
                json_builder_begin_object(b);
                add_str(b, "handler", it->cdr_handler);
                add_str(b, "status", mg_cdr_status_name((enum mg_cdr_status)it->cdr_status));
                add_str(b, "reason", it->cdr_reason);
                add_str(b, "output_type", it->cdr_ready ? it->cdr_type : NULL);
                if (it->members > 0) {
                    json_builder_set_member_name(b, "members");
                    json_builder_add_int_value(b, it->members);
                }
                json_builder_set_member_name(b, "notes");
                json_builder_begin_array(b);
                for (guint j = 0; it->cdr_notes != NULL && j < it->cdr_notes->len; j++)
                    json_builder_add_string_value(b, g_ptr_array_index(it->cdr_notes, j));
                json_builder_end_array(b);
                json_builder_end_object(b);
            }
            if (it->arc_depth > 0) {
                json_builder_set_member_name(b, "archive_depth");
                json_builder_add_int_value(b, it->arc_depth);
            }
        }
        json_builder_set_member_name(b, "defects");
        json_builder_begin_array(b);
        for (guint j = 0; it->defects != NULL && j < it->defects->len; j++)
            json_builder_add_string_value(
                b, mg_mime_defect_code(g_array_index(it->defects, enum mg_mime_defect, j)));
        json_builder_end_array(b);
        json_builder_end_object(b);
    }
    json_builder_end_array(b);
}

JsonNode *mg_sanitize_parts_json(const struct mg_sanitize *s)
{
    JsonBuilder *b = json_builder_new();
    JsonNode *n;

    build_parts(s, b);
    n = json_builder_get_root(b);
    g_object_unref(b);
    return n;
}

JsonNode *mg_sanitize_audit(const struct mg_sanitize *s)
{
    JsonBuilder *b = json_builder_new();
    JsonNode *n;
    GDateTime *now = g_date_time_new_now_utc();
    char *ts = g_date_time_format_iso8601(now);

    json_builder_begin_object(b);
    add_str(b, "time", ts);
    add_str(b, "verdict", mg_verdict_name(s->verdict));
    add_str(b, "quarantine_id", s->qid[0] != '\0' ? s->qid : NULL);
    if (s->o.release_id != NULL) {
        json_builder_set_member_name(b, "release");
        json_builder_add_boolean_value(b, true);
    }
    add_str(b, "result", s->result);
    add_str(b, "error", s->error != NULL ? s->error->message : NULL);
    add_str(b, "message_id",
            s->envelope_done ? top_header((struct mg_sanitize *)s, "Message-ID") : NULL);
    add_str(b, "sender", s->sender);
    json_builder_set_member_name(b, "recipients");
    json_builder_begin_array(b);
    for (guint i = 0; s->recipients != NULL && i + 1 < s->recipients->len; i++)
        json_builder_add_string_value(b, g_ptr_array_index(s->recipients, i));
    json_builder_end_array(b);
    json_builder_set_member_name(b, "size");
    json_builder_add_int_value(b, (gint64)s->orig_size);
    add_str(b, "sha256", s->sha_hex);
    json_builder_set_member_name(b, "parts");
    build_parts(s, b);
    json_builder_set_member_name(b, "defects");
    json_builder_begin_array(b);
    for (guint j = 0; j < s->defects->len; j++)
        json_builder_add_string_value(
            b, mg_mime_defect_code(g_array_index(s->defects, enum mg_mime_defect, j)));
    json_builder_end_array(b);
    json_builder_set_member_name(b, "timings_ms");
    json_builder_begin_object(b);
    json_builder_set_member_name(b, "parse_scan");
    json_builder_add_double_value(b, (double)(s->t_parsed - s->t_start) / 1000.0);
    json_builder_set_member_name(b, "total");
    json_builder_add_double_value(b, (double)(s->t_done - s->t_start) / 1000.0);
    json_builder_set_member_name(b, "antivirus");
    json_builder_add_double_value(b, (double)s->av_us / 1000.0);
    json_builder_set_member_name(b, "workers");
    json_builder_add_double_value(b, (double)s->cdr_spent_us / 1000.0);
    json_builder_end_object(b);
    json_builder_end_object(b);
    n = json_builder_get_root(b);
    g_object_unref(b);
    g_free(ts);
    g_date_time_unref(now);
    return n;
}

struct mg_sanitize *mg_sanitize_free(struct mg_sanitize *s)
{
    if (s == NULL)
        return NULL;
    s->discarding = true;
    sz_output_scan_join(s); /* a message abandoned half-way */
    if (s->pending != NULL)
        g_ptr_array_unref(s->pending);
    if (s->qw != NULL)
        mg_qwrite_abort(s->qw);
    mg_mime_free(s->parser);
    g_ptr_array_unref(s->items);
    g_array_unref(s->open);
    g_array_unref(s->defects);
    if (s->spool_fd >= 0)
        close(s->spool_fd);
    if (s->out_fd >= 0)
        close(s->out_fd);
    if (s->scan_fd >= 0)
        close(s->scan_fd);
    g_free(s->sniff);
    mg_sha256_free(s->orig_sha);
    g_free(s->sender);
    if (s->recipients != NULL)
        g_ptr_array_unref(s->recipients);
    g_clear_error(&s->error);
    g_free(s->reject_reason);
    g_free(s->result);
    g_free(s->notice_text);
    g_free(s->sha_hex);
    mg_rules_unref(s->o.rules);
    if (s->o.av != NULL)
        mg_av_unref(s->o.av);
    g_free((char *)s->o.sender);
    g_strfreev((char **)s->o.recipients);
    g_free((char *)s->o.spool_dir);
    g_free((char *)s->o.release_id);
    if (s->o.password != NULL) {
        explicit_bzero((char *)s->o.password, strlen(s->o.password));
        g_free((char *)s->o.password);
    }
    g_free(s->lang);
    g_free(s);
    return NULL;
}
