/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * NAME
 *	inspect 3
 * SUMMARY
 *	part records, JSON and event log of a parsed message
 * SYNOPSIS
 *	#include <mugaika/inspect.h>
 *
 *	struct mg_inspect *mg_inspect_new(const struct mg_inspect_opts *o);
 *	enum mg_status mg_inspect_feed(struct mg_inspect *in, const char *buf, size_t len);
 *	enum mg_status mg_inspect_finish(struct mg_inspect *in);
 *	JsonNode *mg_inspect_json(struct mg_inspect *in);
 *	void mg_inspect_tree(struct mg_inspect *in, GString *out);
 *	const char *mg_inspect_events(struct mg_inspect *in);
 * DESCRIPTION
 *	A thin consumer of the push parser. Each part gets a record when
 *	it begins; body bytes are hashed (SHA-256) and counted as they
 *	arrive, and the first MG_DETECT_SNIFF_BYTES of a leaf are kept
 *	for libmagic, which runs at part end. Records are in document
 *	order (the order of on_part_begin).
 *
 *	The event log has one line per event: "begin PATH ...",
 *	"header PATH NAME: DECODED", "defect PATH CODE @OFFSET",
 *	"end PATH size=N sha256=H". Body bytes are folded into the end
 *	line and a part's defects are listed just before it, so the log
 *	does not depend on how the input was chunked.
 * LIMITS
 *	"text" is capped at text_max bytes per part (then "text_truncated").
 * DIAGNOSTICS
 *	Errors of the parser are passed on (enum mg_status).
 */
#include <string.h>

#include <mugaika/charset.h>
#include <mugaika/inspect.h>

struct defect_rec {
    enum mg_mime_defect code;
    uint64_t offset;
};

struct part_rec {
    char *path;
    unsigned depth;
    bool leaf;
    enum mg_mime_kind kind;
    enum mg_mime_origin origin;
    char *content_type;
    char *charset;
    char *cte;
    char *disposition;
    char *filename;
    uint64_t offset;
    uint64_t end_offset;
    uint64_t size;
    GChecksum *sha;
    char *sha_hex;
    GByteArray *sniff;
    char *detected;
    GArray *defects;
    struct mg_charset_conv *conv;
    GString *text;
    bool text_truncated;
    GString *defect_log; /* event log lines of this part's defects */
};

struct header_rec {
    char *name;
    char *value;
};

struct mg_inspect {
    struct mg_inspect_opts o;
    struct mg_mime *parser;
    GPtrArray *parts; /* of struct part_rec, document order */
    GPtrArray *open;  /* borrowed records of open parts */
    GArray *headers;  /* of struct header_rec: the top-level fields */
    GArray *defects;  /* message-level */
    GString *events;
    bool finished;
};

void mg_inspect_opts_default(struct mg_inspect_opts *o)
{
    memset(o, 0, sizeof(*o));
    mg_mime_limits_default(&o->limits);
    o->text_max = 16u << 20;
}

static void part_free(gpointer data)
{
    struct part_rec *r = data;

    g_free(r->path);
    g_free(r->content_type);
    g_free(r->charset);
    g_free(r->cte);
    g_free(r->disposition);
    g_free(r->filename);
    g_free(r->sha_hex);
    g_free(r->detected);
    if (r->sha)
        g_checksum_free(r->sha);
    if (r->sniff)
        g_byte_array_unref(r->sniff);
    g_array_unref(r->defects);
    mg_charset_conv_free(r->conv);
    if (r->text)
        g_string_free(r->text, TRUE);
    if (r->defect_log)
        g_string_free(r->defect_log, TRUE);
    g_free(r);
}

static struct part_rec *find_open(struct mg_inspect *in, const struct mg_mime_part *part)
{
    for (guint i = in->open->len; i > 0; i--) {
        struct part_rec *r = in->open->pdata[i - 1];
        if (strcmp(r->path, part->path) == 0)
            return r;
    }
    return NULL;
}

static const char *origin_name(enum mg_mime_origin o)
{
    return o == MG_MIME_ORIGIN_UU ? "uuencode" : "mime";
}

static bool is_text_leaf(const struct part_rec *r)
{
    return r->leaf && r->origin == MG_MIME_ORIGIN_MIME &&
           g_str_has_prefix(r->content_type, "text/");
}

static int on_part_begin(struct mg_mime *p, const struct mg_mime_part *part)
{
    struct mg_inspect *in = mg_mime_user(p);
    struct part_rec *r = g_new0(struct part_rec, 1);

    r->path = g_strdup(part->path);
    r->depth = part->depth;
    r->kind = part->kind;
    r->leaf = part->kind == MG_MIME_LEAF;
    r->origin = part->origin;
    r->content_type = g_strdup(part->content_type);
    r->charset = g_strdup(part->charset);
    r->cte = g_strdup(part->cte_token);
    r->disposition = g_strdup(part->disposition);
    r->filename = g_strdup(part->filename);
    r->offset = part->offset;
    r->defects = g_array_new(FALSE, FALSE, sizeof(struct defect_rec));
    if (r->leaf) {
        r->sha = g_checksum_new(G_CHECKSUM_SHA256);
        if (in->o.detect)
            r->sniff = g_byte_array_new();
        if (in->o.text && is_text_leaf(r)) {
            r->conv = mg_charset_conv_new(r->charset);
            r->text = g_string_new(NULL);
        }
    }
    g_ptr_array_add(in->parts, r);
    g_ptr_array_add(in->open, r);
    if (in->events)
        g_string_append_printf(
            in->events,
            "begin %s depth=%u kind=%d origin=%s type=%s charset=%s cte=%s "
            "disposition=%s filename=%s offset=%" G_GUINT64_FORMAT " body=%" G_GUINT64_FORMAT "\n",
            r->path, r->depth, (int)r->kind, origin_name(r->origin), r->content_type,
            part->charset ? part->charset : "-", part->cte_token ? part->cte_token : "-",
            part->disposition ? part->disposition : "-", part->filename ? part->filename : "-",
            part->offset, part->body_offset);
    return 0;
}

static int on_header(struct mg_mime *p, const struct mg_mime_part *part,
                     const struct mg_mime_header *h)
{
    struct mg_inspect *in = mg_mime_user(p);

    if (part->depth == 0) {
        struct header_rec hr = {g_strndup(h->name, h->name_len), g_strdup(h->decoded)};
        g_array_append_val(in->headers, hr);
    }
    if (in->events)
        g_string_append_printf(in->events, "header %s %.*s: %s @%" G_GUINT64_FORMAT "\n",
                               part->path, (int)h->name_len, h->name, h->decoded, h->offset);
    return 0;
}

static int on_defect(struct mg_mime *p, const struct mg_mime_part *part, enum mg_mime_defect d,
                     uint64_t offset)
{
    struct mg_inspect *in = mg_mime_user(p);
    struct defect_rec dr = {d, offset};
    struct part_rec *r = part ? find_open(in, part) : NULL;

    g_array_append_val(r ? r->defects : in->defects, dr);
    if (in->events) {
        /* A part's defects are logged together before its end line: how
         * a text part's own events interleave with those of the
         * uuencoded blocks inside it depends on the chunking. */
        GString *log = in->events;
        if (r != NULL) {
            if (r->defect_log == NULL)
                r->defect_log = g_string_new(NULL);
            log = r->defect_log;
        }
        g_string_append_printf(log, "defect %s %s @%" G_GUINT64_FORMAT "\n",
                               part ? part->path : "-", mg_mime_defect_code(d), offset);
    }
    return 0;
}

static int on_body(struct mg_mime *p, const struct mg_mime_part *part, const char *data, size_t len)
{
    struct mg_inspect *in = mg_mime_user(p);
    struct part_rec *r = find_open(in, part);

    if (r == NULL || !r->leaf)
        return 0;
    r->size += len;
    g_checksum_update(r->sha, (const guchar *)data, (gssize)len);
    if (r->sniff && r->sniff->len < MG_DETECT_SNIFF_BYTES) {
        size_t take = MIN(len, MG_DETECT_SNIFF_BYTES - r->sniff->len);
        g_byte_array_append(r->sniff, (const guint8 *)data, (guint)take);
    }
    if (r->conv && !r->text_truncated) {
        mg_charset_conv_feed(r->conv, data, len, r->text);
        if (r->text->len > in->o.text_max) {
            g_string_truncate(r->text, in->o.text_max);
            r->text_truncated = true;
        }
    }
    return 0;
}

static int on_part_end(struct mg_mime *p, const struct mg_mime_part *part)
{
    struct mg_inspect *in = mg_mime_user(p);
    struct part_rec *r = find_open(in, part);

    if (r == NULL)
        return 0;
    r->end_offset = part->end_offset;
    if (r->leaf) {
        r->sha_hex = g_strdup(g_checksum_get_string(r->sha));
        if (r->sniff) {
            r->detected = g_strdup(mg_detect_buffer(in->o.detect, r->sniff->data, r->sniff->len));
            g_byte_array_unref(r->sniff);
            r->sniff = NULL;
        }
        if (r->conv) {
            if (!r->text_truncated)
                mg_charset_conv_finish(r->conv, r->text);
            r->conv = mg_charset_conv_free(r->conv);
        }
    }
    if (in->events && r->defect_log)
        g_string_append(in->events, r->defect_log->str);
    if (in->events)
        g_string_append_printf(
            in->events, "end %s size=%" G_GUINT64_FORMAT " sha256=%s end=%" G_GUINT64_FORMAT "\n",
            r->path, r->size, r->sha_hex ? r->sha_hex : "-", r->end_offset);
    g_ptr_array_remove(in->open, r);
    return 0;
}

static const struct mg_mime_settings inspect_settings = {
    .on_part_begin = on_part_begin,
    .on_header = on_header,
    .on_defect = on_defect,
    .on_body = on_body,
    .on_part_end = on_part_end,
};

struct mg_inspect *mg_inspect_new(const struct mg_inspect_opts *o)
{
    struct mg_inspect *in = g_new0(struct mg_inspect, 1);

    if (o)
        in->o = *o;
    else
        mg_inspect_opts_default(&in->o);
    if (in->o.text_max == 0)
        in->o.text_max = 16u << 20;
    in->parts = g_ptr_array_new_with_free_func(part_free);
    in->open = g_ptr_array_new();
    in->headers = g_array_new(FALSE, FALSE, sizeof(struct header_rec));
    in->defects = g_array_new(FALSE, FALSE, sizeof(struct defect_rec));
    if (in->o.events)
        in->events = g_string_new(NULL);
    in->parser = mg_mime_new(&inspect_settings, &in->o.limits, in);
    return in;
}

enum mg_status mg_inspect_feed(struct mg_inspect *in, const char *buf, size_t len)
{
    return mg_mime_execute(in->parser, buf, len);
}

enum mg_status mg_inspect_finish(struct mg_inspect *in)
{
    in->finished = true;
    return mg_mime_finish(in->parser);
}

const char *mg_inspect_events(struct mg_inspect *in)
{
    return in->events ? in->events->str : "";
}

static void add_defects(JsonBuilder *b, GArray *defects)
{
    json_builder_set_member_name(b, "defects");
    json_builder_begin_array(b);
    for (guint i = 0; i < defects->len; i++) {
        struct defect_rec *d = &g_array_index(defects, struct defect_rec, i);
        json_builder_begin_object(b);
        json_builder_set_member_name(b, "code");
        json_builder_add_string_value(b, mg_mime_defect_code(d->code));
        json_builder_set_member_name(b, "offset");
        json_builder_add_int_value(b, (gint64)d->offset);
        json_builder_end_object(b);
    }
    json_builder_end_array(b);
}

/* Raw parameter bytes (a charset label, say) need not be UTF-8; JSON
 * strings must be. */
static void add_str(JsonBuilder *b, const char *name, const char *v)
{
    json_builder_set_member_name(b, name);
    if (v == NULL) {
        json_builder_add_null_value(b);
    } else if (g_utf8_validate(v, -1, NULL)) {
        json_builder_add_string_value(b, v);
    } else {
        char *valid = g_utf8_make_valid(v, -1);
        json_builder_add_string_value(b, valid);
        g_free(valid);
    }
}

static void add_headers(JsonBuilder *b, GArray *headers)
{
    GHashTable *seen = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);

    json_builder_set_member_name(b, "headers");
    json_builder_begin_object(b);
    /* A field given more than once becomes an array, in order. */
    for (guint i = 0; i < headers->len; i++) {
        struct header_rec *h = &g_array_index(headers, struct header_rec, i);
        char *key = g_ascii_strdown(h->name, -1);
        guint count = 0;
        if (g_hash_table_contains(seen, key)) {
            g_free(key);
            continue;
        }
        for (guint j = i; j < headers->len; j++) {
            if (g_ascii_strcasecmp(g_array_index(headers, struct header_rec, j).name, h->name) == 0)
                count++;
        }
        json_builder_set_member_name(b, h->name);
        if (count == 1) {
            json_builder_add_string_value(b, h->value);
        } else {
            json_builder_begin_array(b);
            for (guint j = i; j < headers->len; j++) {
                struct header_rec *o = &g_array_index(headers, struct header_rec, j);
                if (g_ascii_strcasecmp(o->name, h->name) == 0)
                    json_builder_add_string_value(b, o->value);
            }
            json_builder_end_array(b);
        }
        g_hash_table_add(seen, key);
    }
    json_builder_end_object(b);
    g_hash_table_destroy(seen);
}

JsonNode *mg_inspect_json(struct mg_inspect *in)
{
    JsonBuilder *b = json_builder_new();
    JsonNode *root;

    json_builder_begin_object(b);
    add_headers(b, in->headers);
    json_builder_set_member_name(b, "parts");
    json_builder_begin_array(b);
    for (guint i = 0; i < in->parts->len; i++) {
        struct part_rec *r = in->parts->pdata[i];
        json_builder_begin_object(b);
        add_str(b, "path", r->path);
        json_builder_set_member_name(b, "leaf");
        json_builder_add_boolean_value(b, r->leaf);
        add_str(b, "content_type", r->content_type);
        add_str(b, "charset", r->charset);
        add_str(b, "transfer_encoding", r->cte);
        add_str(b, "disposition", r->disposition);
        add_str(b, "filename", r->filename);
        add_str(b, "origin", origin_name(r->origin));
        json_builder_set_member_name(b, "depth");
        json_builder_add_int_value(b, r->depth);
        json_builder_set_member_name(b, "offset");
        json_builder_add_int_value(b, (gint64)r->offset);
        json_builder_set_member_name(b, "size");
        if (r->leaf)
            json_builder_add_int_value(b, (gint64)r->size);
        else
            json_builder_add_null_value(b);
        add_str(b, "sha256", r->sha_hex);
        add_str(b, "detected_type", r->detected);
        if (r->text) {
            /* a JSON string from json-glib ends at NUL: show U+FFFD */
            GString *t = g_string_sized_new(r->text->len);
            for (gsize k = 0; k < r->text->len; k++) {
                if (r->text->str[k] == '\0')
                    g_string_append(t, "\xef\xbf\xbd");
                else
                    g_string_append_c(t, r->text->str[k]);
            }
            add_str(b, "text", t->str);
            g_string_free(t, TRUE);
            json_builder_set_member_name(b, "text_truncated");
            json_builder_add_boolean_value(b, r->text_truncated);
        }
        add_defects(b, r->defects);
        json_builder_end_object(b);
    }
    json_builder_end_array(b);
    add_defects(b, in->defects);
    json_builder_end_object(b);
    root = json_builder_get_root(b);
    g_object_unref(b);
    return root;
}

static void tree_defects(GString *out, GArray *defects, unsigned indent)
{
    for (guint i = 0; i < defects->len; i++) {
        struct defect_rec *d = &g_array_index(defects, struct defect_rec, i);
        g_string_append_printf(out, "%*s! %s at byte %" G_GUINT64_FORMAT ": %s\n", (int)indent, "",
                               mg_mime_defect_code(d->code), d->offset,
                               mg_mime_defect_desc(d->code));
    }
}

void mg_inspect_tree(struct mg_inspect *in, GString *out)
{
    static const char *const shown[] = {"From", "To", "Cc", "Subject", "Date", "Message-ID"};

    for (size_t k = 0; k < G_N_ELEMENTS(shown); k++) {
        for (guint i = 0; i < in->headers->len; i++) {
            struct header_rec *h = &g_array_index(in->headers, struct header_rec, i);
            if (g_ascii_strcasecmp(h->name, shown[k]) == 0) {
                g_string_append_printf(out, "  %s: %s\n", shown[k], h->value);
                break;
            }
        }
    }
    for (guint i = 0; i < in->parts->len; i++) {
        struct part_rec *r = in->parts->pdata[i];
        unsigned ind = 2 + 2 * r->depth;
        g_string_append_printf(out, "%*s%s %s", (int)ind, "", r->path, r->content_type);
        if (r->charset)
            g_string_append_printf(out, "; charset=%s", r->charset);
        if (r->origin != MG_MIME_ORIGIN_MIME)
            g_string_append_printf(out, " (%s block)", origin_name(r->origin));
        if (r->filename)
            g_string_append_printf(out, " \"%s\"", r->filename);
        if (r->leaf) {
            g_string_append_printf(out, " [%s, %" G_GUINT64_FORMAT " bytes",
                                   r->cte ? r->cte : "7bit", r->size);
            if (r->detected)
                g_string_append_printf(out, ", detected %s", r->detected);
            g_string_append(out, "]");
        }
        g_string_append_c(out, '\n');
        tree_defects(out, r->defects, ind + 2);
    }
    tree_defects(out, in->defects, 2);
}

struct mg_inspect *mg_inspect_free(struct mg_inspect *in)
{
    if (in == NULL)
        return NULL;
    mg_mime_free(in->parser);
    g_ptr_array_unref(in->parts);
    g_ptr_array_unref(in->open);
    for (guint i = 0; i < in->headers->len; i++) {
        struct header_rec *h = &g_array_index(in->headers, struct header_rec, i);
        g_free(h->name);
        g_free(h->value);
    }
    g_array_unref(in->headers);
    g_array_unref(in->defects);
    if (in->events)
        g_string_free(in->events, TRUE);
    g_free(in);
    return NULL;
}
