/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * NAME
 *	fuzz_mime 1
 * SUMMARY
 *	libFuzzer target: the push MIME parser
 * SYNOPSIS
 *	fuzz_mime [libFuzzer options] [corpus-dir...]
 *	fuzz_mime corpus-dir|file...	(replay build: replay_main.c)
 * DESCRIPTION
 *	An input is PREFIX_LEN (8) configuration bytes followed by the
 *	message:
 *
 *	[0]  limits: bits 0-1 header_bytes (256 KiB, 1024, 1500, 4096),
 *	     bits 2-3 line_bytes (64 KiB, 78, 100, 1000), bits 4-5
 *	     boundary_bytes (256, 1, 8, 70), bit 6 uuencode off, bit 7
 *	     zero-length mg_mime_execute calls between the chunks;
 *	[1]  bits 0-3 depth (0: 64), bits 4-7 parts (index into parts_tab);
 *	[2]  bits 0-6: the callback of event number [2] & 127 fails (0:
 *	     none): sticky errors; bit 7: also run mg_inspect (inspect.h,
 *	     text of text leaves on) chunked and whole;
 *	[3..7] chunk sizes, used in turn: 0xff the rest, 0x80 | n
 *	     1 + 61 n bytes, n (< 0x80) 1 + n bytes.
 *
 *	Run A feeds the message in those chunks, run B in one piece; the
 *	callbacks of both touch every byte and string they get and check
 *	the invariants of mime.h: part_begin/part_end nest, depth is the
 *	nesting level, paths follow the IMAP rule of mime.h (so they are
 *	unique; checked separately too), headers and
 *	defects come for an open entity, bodies only for an open leaf
 *	(or for the text leaf that holds an open uuencoded block),
 *	offsets stay inside the input, defect codes are in range, the
 *	part count stays within limits.parts + 1 and no callback comes
 *	after a failed one. Each run logs its events (body bytes of a
 *	part joined and logged as length and hash at part end); the two
 *	logs must be equal (chunk invariance). With [2] bit 7 the two
 *	mg_inspect runs must give the same event log, JSON (which must
 *	parse back) and tree. Any violation aborts.
 *
 *	What is compared is what mime.h promises: begin and end events in
 *	one order, and each entity's own events (its defects in the order
 *	reported) the same whatever the chunking; how the events of
 *	different open entities interleave may differ. Built with
 *	-DFUZZ_MIME_STRICT_ORDER=1 the whole event sequence is compared
 *	instead (stricter than the contract; for exploring).
 *
 *	Seeds: testdata/fuzz/mime/, each with an 8-byte prefix.
 */
#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <glib.h>
#include <json-glib/json-glib.h>

#include <mugaika/inspect.h>
#include <mugaika/mime.h>

#include "fuzz.h"

#ifndef FUZZ_MIME_STRICT_ORDER
#define FUZZ_MIME_STRICT_ORDER 0
#endif

#define PREFIX_LEN  8
#define SCHED_FIRST 3
#define SCHED_LEN   5

static const size_t header_bytes_tab[4] = {256 * 1024, 1024, 1500, 4096};
static const size_t line_bytes_tab[4] = {64 * 1024, 78, 100, 1000};
static const size_t boundary_bytes_tab[4] = {256, 1, 8, 70};
static const unsigned parts_tab[16] = {10000, 1,  2,  3,  4,  5,  6,   8,
                                       10,    12, 16, 20, 30, 50, 100, 1000};

struct open_part {
    char *path;
    enum mg_mime_kind kind;
    enum mg_mime_origin origin;
    uint64_t offset;
    uint64_t body_offset;
    unsigned children; /* MIME children begun so far */
    unsigned uu;       /* uuencoded blocks begun so far */
    uint64_t body_len;
    uint64_t body_hash;
    char *child_prefix; /* multipart: its children's paths are this + index */
    GPtrArray *defects; /* FUZZ_MIME_STRICT_ORDER 0: this entity's defects, in order */
};

struct run {
    struct mg_mime_limits lim;
    uint64_t input_len;
    GString *log;
    GArray *stack; /* of struct open_part */
    GHashTable *paths;
    unsigned events;
    unsigned fail_at; /* event whose callback fails; 0: none */
    bool failed;
    unsigned nparts;
};

static uint64_t fnv(uint64_t h, const void *data, size_t len)
{
    const unsigned char *s = data;

    for (size_t i = 0; i < len; i++) {
        h ^= s[i];
        h *= 0x100000001b3ULL;
    }
    return h;
}

#define FNV_INIT 0xcbf29ce484222325ULL

/* strlen that also proves the string is readable; NULL is "(null)". */
static const char *touch(const char *s)
{
    if (s == NULL)
        return "(null)";
    (void)strlen(s);
    return s;
}

static bool has_upper(const char *s)
{
    for (; s != NULL && *s; s++) {
        if (*s >= 'A' && *s <= 'Z')
            return true;
    }
    return false;
}

static struct open_part *stack_top(struct run *r)
{
    return r->stack->len ? &g_array_index(r->stack, struct open_part, r->stack->len - 1) : NULL;
}

/* Index of the open entity with this path, or -1. */
static int find_open(struct run *r, const char *path)
{
    for (int i = (int)r->stack->len - 1; i >= 0; i--) {
        if (strcmp(g_array_index(r->stack, struct open_part, i).path, path) == 0)
            return i;
    }
    return -1;
}

/* Counts an event; returns the callback result (fails at fail_at). */
static int event(struct run *r)
{
    FUZZ_CHECK(!r->failed); /* errors are sticky: no callback after one failed */
    r->events++;
    if (r->fail_at != 0 && r->events == r->fail_at) {
        r->failed = true;
        return 1;
    }
    return 0;
}

static void check_part_fields(struct run *r, const struct mg_mime_part *part)
{
    FUZZ_CHECK(part != NULL);
    FUZZ_CHECK(part->path != NULL && part->path[0] != '\0');
    FUZZ_CHECK((unsigned)part->kind <= MG_MIME_MESSAGE);
    FUZZ_CHECK((unsigned)part->origin <= MG_MIME_ORIGIN_UU);
    FUZZ_CHECK((unsigned)part->cte <= MG_MIME_CTE_UNKNOWN);
    FUZZ_CHECK(part->content_type != NULL && strchr(part->content_type, '/') != NULL);
    FUZZ_CHECK(!has_upper(part->content_type));
    FUZZ_CHECK(!has_upper(part->cte_token));
    FUZZ_CHECK(!has_upper(part->disposition));
    touch(part->charset);
    if (part->filename != NULL)
        FUZZ_CHECK(g_utf8_validate(part->filename, -1, NULL));
    if (part->kind == MG_MIME_MULTIPART) {
        FUZZ_CHECK(part->boundary != NULL && part->boundary[0] != '\0');
        FUZZ_CHECK(strlen(part->boundary) <= r->lim.boundary_bytes);
    }
    if (part->origin == MG_MIME_ORIGIN_UU)
        FUZZ_CHECK(part->kind == MG_MIME_LEAF);
    FUZZ_CHECK(part->offset <= part->body_offset);
    FUZZ_CHECK(part->body_offset <= r->input_len);
}

/* The path mime.h gives part under parent (NULL: the top entity). */
static char *expected_path(const struct open_part *parent, const struct mg_mime_part *part)
{
    if (parent == NULL)
        return g_strdup(part->kind == MG_MIME_MULTIPART ? "0" : "1");
    if (part->origin == MG_MIME_ORIGIN_UU)
        return g_strdup_printf("%s.u%u", parent->path, part->index);
    if (parent->kind == MG_MIME_MESSAGE)
        return g_strconcat(parent->path, part->kind == MG_MIME_MULTIPART ? ".0" : ".1", NULL);
    return g_strdup_printf("%s%u", parent->child_prefix, part->index);
}

static int on_part_begin(struct mg_mime *p, const struct mg_mime_part *part)
{
    struct run *r = mg_mime_user(p);
    struct open_part *parent = stack_top(r);
    struct open_part op;

    check_part_fields(r, part);
    FUZZ_CHECK(part->depth == r->stack->len);
    FUZZ_CHECK(part->depth <= r->lim.depth);
    FUZZ_CHECK(!g_hash_table_contains(r->paths, part->path));
    g_hash_table_add(r->paths, g_strdup(part->path));
    r->nparts++;
    FUZZ_CHECK(r->nparts <= r->lim.parts + 1);
    if (parent == NULL) {
        FUZZ_CHECK(part->index == 1 && r->nparts == 1); /* offset > 0 after mbox From_ */
    } else if (part->origin == MG_MIME_ORIGIN_UU) {
        FUZZ_CHECK(parent->kind == MG_MIME_LEAF && parent->origin == MG_MIME_ORIGIN_MIME);
        FUZZ_CHECK(part->index == ++parent->uu);
        FUZZ_CHECK(part->offset >= parent->body_offset);
    } else {
        FUZZ_CHECK(parent->kind != MG_MIME_LEAF);
        FUZZ_CHECK(part->index == ++parent->children);
        if (parent->kind == MG_MIME_MESSAGE)
            FUZZ_CHECK(part->index == 1);
        FUZZ_CHECK(part->offset >= parent->body_offset);
    }
    char *want = expected_path(parent, part);
    FUZZ_CHECK(strcmp(part->path, want) == 0);
    g_free(want);
    memset(&op, 0, sizeof(op));
    op.path = g_strdup(part->path);
    if (part->kind == MG_MIME_MULTIPART) {
        /* "0" at the top and "M.0" in a message at M number children
         * 1, 2 and M.1, M.2; a multipart child P numbers them P.1 */
        if (parent == NULL)
            op.child_prefix = g_strdup("");
        else if (parent->kind == MG_MIME_MESSAGE)
            op.child_prefix = g_strconcat(parent->path, ".", NULL);
        else
            op.child_prefix = g_strconcat(part->path, ".", NULL);
    }
    op.kind = part->kind;
    op.origin = part->origin;
    op.offset = part->offset;
    op.body_offset = part->body_offset;
    op.body_hash = FNV_INIT;
    op.defects = g_ptr_array_new_with_free_func(g_free);
    g_array_append_val(r->stack, op);

    g_string_append_printf(r->log,
                           "B %s d=%u i=%u k=%d o=%d ct=%s%s cs=%s b=%s cte=%s/%d disp=%s "
                           "fn=%s off=%" PRIu64 " body=%" PRIu64 "\n",
                           part->path, part->depth, part->index, (int)part->kind, (int)part->origin,
                           part->content_type, part->content_type_default ? "(default)" : "",
                           touch(part->charset), touch(part->boundary), touch(part->cte_token),
                           (int)part->cte, touch(part->disposition), touch(part->filename),
                           part->offset, part->body_offset);
    return event(r);
}

static int on_header(struct mg_mime *p, const struct mg_mime_part *part,
                     const struct mg_mime_header *h)
{
    struct run *r = mg_mime_user(p);
    struct open_part *t = stack_top(r);

    FUZZ_CHECK(t != NULL && part != NULL && strcmp(t->path, part->path) == 0);
    FUZZ_CHECK(h != NULL && h->name != NULL && h->name_len > 0);
    FUZZ_CHECK(h->raw != NULL || h->raw_len == 0);
    FUZZ_CHECK(memchr(h->name, ':', h->name_len) == NULL);
    FUZZ_CHECK(h->decoded != NULL && g_utf8_validate(h->decoded, -1, NULL));
    FUZZ_CHECK(h->offset >= t->offset && h->offset < t->body_offset);
    uint64_t raw_hash = fnv(FNV_INIT, h->raw, h->raw_len);
    g_string_append(r->log, "H ");
    g_string_append_len(r->log, h->name, (gssize)h->name_len);
    g_string_append_printf(r->log, " off=%" PRIu64 " raw=%zu/%016" PRIx64 " dec=%s\n", h->offset,
                           h->raw_len, raw_hash, h->decoded);
    return event(r);
}

static int on_defect(struct mg_mime *p, const struct mg_mime_part *part, enum mg_mime_defect d,
                     uint64_t offset)
{
    struct run *r = mg_mime_user(p);

    FUZZ_CHECK((unsigned)d < MG_MIME_DEFECT_COUNT);
    FUZZ_CHECK(strcmp(mg_mime_defect_code(d), "unknown") != 0);
    touch(mg_mime_defect_desc(d));
    FUZZ_CHECK(offset <= r->input_len);
    if (part != NULL) {
        FUZZ_CHECK(part->path != NULL);
        FUZZ_CHECK(find_open(r, part->path) >= 0);
    }
    if (!FUZZ_MIME_STRICT_ORDER && part != NULL) {
        struct open_part *op = &g_array_index(r->stack, struct open_part, find_open(r, part->path));
        g_ptr_array_add(op->defects,
                        g_strdup_printf("D %s off=%" PRIu64 "\n", mg_mime_defect_code(d), offset));
        return event(r);
    }
    g_string_append_printf(r->log, "D %s off=%" PRIu64 " in=%s\n", mg_mime_defect_code(d), offset,
                           part ? part->path : "-");
    return event(r);
}

static int on_body(struct mg_mime *p, const struct mg_mime_part *part, const char *data, size_t len)
{
    struct run *r = mg_mime_user(p);
    int i;

    FUZZ_CHECK(part != NULL && part->path != NULL);
    FUZZ_CHECK(data != NULL || len == 0);
    i = find_open(r, part->path);
    FUZZ_CHECK(i >= 0);
    struct open_part *op = &g_array_index(r->stack, struct open_part, i);
    struct open_part *t = stack_top(r);
    FUZZ_CHECK(op->kind == MG_MIME_LEAF && part->kind == MG_MIME_LEAF);
    /* the innermost entity, or the text leaf around an open uu block */
    FUZZ_CHECK(op == t || (i == (int)r->stack->len - 2 && t->origin == MG_MIME_ORIGIN_UU));
    op->body_hash = fnv(op->body_hash, data, len);
    op->body_len += len;
    return event(r);
}

static int on_part_end(struct mg_mime *p, const struct mg_mime_part *part)
{
    struct run *r = mg_mime_user(p);
    struct open_part *t = stack_top(r);

    check_part_fields(r, part);
    FUZZ_CHECK(t != NULL && strcmp(t->path, part->path) == 0);
    FUZZ_CHECK(t->kind == part->kind && t->origin == part->origin);
    FUZZ_CHECK(part->end_offset >= part->body_offset || part->origin == MG_MIME_ORIGIN_UU);
    FUZZ_CHECK(part->end_offset <= r->input_len);
    if (part->kind == MG_MIME_MESSAGE)
        FUZZ_CHECK(t->children <= 1);
    g_string_append_printf(r->log, "E %s end=%" PRIu64 " len=%" PRIu64 " hash=%016" PRIx64 "\n",
                           part->path, part->end_offset, t->body_len, t->body_hash);
    for (guint i = 0; i < t->defects->len; i++)
        g_string_append(r->log, g_ptr_array_index(t->defects, i));
    g_ptr_array_unref(t->defects);
    g_free(t->child_prefix);
    g_free(t->path);
    g_array_set_size(r->stack, r->stack->len - 1);
    return event(r);
}

static const struct mg_mime_settings settings = {
    .on_part_begin = on_part_begin,
    .on_header = on_header,
    .on_defect = on_defect,
    .on_body = on_body,
    .on_part_end = on_part_end,
};

static size_t chunk_size(uint8_t b)
{
    if (b == 0xff)
        return SIZE_MAX;
    if (b & 0x80)
        return 1 + (size_t)(b & 0x7f) * 61;
    return 1 + (size_t)b;
}

static void run_init(struct run *r, const uint8_t *cfg, size_t input_len)
{
    memset(r, 0, sizeof(*r));
    mg_mime_limits_default(&r->lim);
    r->lim.header_bytes = header_bytes_tab[cfg[0] & 3];
    r->lim.line_bytes = line_bytes_tab[(cfg[0] >> 2) & 3];
    r->lim.boundary_bytes = boundary_bytes_tab[(cfg[0] >> 4) & 3];
    r->lim.uuencode = !(cfg[0] & 0x40);
    r->lim.depth = (cfg[1] & 15) ? (unsigned)(cfg[1] & 15) : 64;
    r->lim.parts = parts_tab[cfg[1] >> 4];
    r->input_len = input_len;
    r->log = g_string_new(NULL);
    r->stack = g_array_new(FALSE, TRUE, sizeof(struct open_part));
    r->paths = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
}

static void run_fini(struct run *r)
{
    for (guint i = 0; i < r->stack->len; i++) {
        g_free(g_array_index(r->stack, struct open_part, i).path);
        g_free(g_array_index(r->stack, struct open_part, i).child_prefix);
        g_ptr_array_unref(g_array_index(r->stack, struct open_part, i).defects);
    }
    g_array_unref(r->stack);
    g_hash_table_unref(r->paths);
    g_string_free(r->log, TRUE);
}

/* Parses msg in the chunks of sched (NULL: in one piece). */
static void parse(struct run *r, const char *msg, size_t len, const uint8_t *sched, bool empties)
{
    struct mg_mime *p = mg_mime_new(&settings, &r->lim, r);
    enum mg_status st = MG_OK;
    size_t pos = 0;
    unsigned k = 0;

    FUZZ_CHECK(p != NULL && mg_mime_user(p) == r);
    while (pos < len) {
        size_t n = sched ? chunk_size(sched[k++ % SCHED_LEN]) : SIZE_MAX;
        if (n > len - pos)
            n = len - pos;
        /* an exact-size copy, freed at once: nothing may point into it */
        char *chunk = g_memdup2(msg + pos, n);
        st = mg_mime_execute(p, chunk, n);
        g_free(chunk);
        pos += n;
        if (st == MG_OK && empties)
            st = mg_mime_execute(p, "", 0);
        FUZZ_CHECK(st == (r->failed ? MG_ERR_CALLBACK : MG_OK));
        FUZZ_CHECK(mg_mime_offset(p) <= len);
    }
    st = mg_mime_finish(p);
    FUZZ_CHECK(st == (r->failed ? MG_ERR_CALLBACK : MG_OK));
    FUZZ_CHECK(mg_mime_offset(p) <= len);
    if (r->failed) {
        /* sticky */
        FUZZ_CHECK(mg_mime_execute(p, "x", 1) == MG_ERR_CALLBACK);
        FUZZ_CHECK(mg_mime_finish(p) == MG_ERR_CALLBACK);
    } else {
        FUZZ_CHECK(r->stack->len == 0);
        FUZZ_CHECK(r->nparts >= 1);
        FUZZ_CHECK(mg_mime_execute(p, "x", 1) == MG_ERR_STATE);
        FUZZ_CHECK(mg_mime_execute(p, "x", 1) == MG_ERR_STATE);
    }
    mg_mime_free(p);
}

/* ---------------------------------------------------------------- */
/* the same through mg_inspect                                       */

struct inspect_out {
    char *events;
    char *json;
    char *tree;
};

static void inspect_run(const struct mg_mime_limits *lim, const char *msg, size_t len,
                        const uint8_t *sched, struct inspect_out *out)
{
    struct mg_inspect_opts o;
    size_t pos = 0;
    unsigned k = 0;

    mg_inspect_opts_default(&o);
    o.limits = *lim;
    o.text = true;
    o.events = true;
    struct mg_inspect *in = mg_inspect_new(&o);
    while (pos < len) {
        size_t n = sched ? chunk_size(sched[k++ % SCHED_LEN]) : SIZE_MAX;
        if (n > len - pos)
            n = len - pos;
        char *chunk = g_memdup2(msg + pos, n);
        FUZZ_CHECK(mg_inspect_feed(in, chunk, n) == MG_OK);
        g_free(chunk);
        pos += n;
    }
    FUZZ_CHECK(mg_inspect_finish(in) == MG_OK);
    out->events = g_strdup(mg_inspect_events(in));
    FUZZ_CHECK(out->events != NULL);
    JsonNode *node = mg_inspect_json(in);
    FUZZ_CHECK(node != NULL);
    out->json = json_to_string(node, FALSE);
    json_node_unref(node);
    JsonParser *jp = json_parser_new();
    FUZZ_CHECK(json_parser_load_from_data(jp, out->json, -1, NULL));
    g_object_unref(jp);
    GString *tree = g_string_new(NULL);
    mg_inspect_tree(in, tree);
    out->tree = g_string_free(tree, FALSE);
    mg_inspect_free(in);
}

static void inspect_compare(const struct mg_mime_limits *lim, const char *msg, size_t len,
                            const uint8_t *sched)
{
    struct inspect_out a, b;

    inspect_run(lim, msg, len, sched, &a);
    inspect_run(lim, msg, len, NULL, &b);
    /* inspect lists each part's defects with the part: its log, JSON
     * and tree must be the same whatever the chunking */
    if (strcmp(a.events, b.events) != 0) {
        fprintf(stderr, "inspect event logs differ\n--- chunked\n%.4000s\n--- whole\n%.4000s\n",
                a.events, b.events);
        abort();
    }
    FUZZ_CHECK(strcmp(a.json, b.json) == 0);
    FUZZ_CHECK(strcmp(a.tree, b.tree) == 0);
    g_free(a.events);
    g_free(a.json);
    g_free(a.tree);
    g_free(b.events);
    g_free(b.json);
    g_free(b.tree);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct run a, b;

    if (size < PREFIX_LEN)
        return 0;
    const uint8_t *cfg = data;
    const char *msg = (const char *)data + PREFIX_LEN;
    size_t len = size - PREFIX_LEN;

    run_init(&a, cfg, len);
    a.fail_at = cfg[2] & 127;
    parse(&a, msg, len, cfg + SCHED_FIRST, (cfg[0] & 0x80) != 0);

    run_init(&b, cfg, len);
    parse(&b, msg, len, NULL, false);
    FUZZ_CHECK(!b.failed);

    if (!a.failed && strcmp(a.log->str, b.log->str) != 0) {
        fprintf(stderr,
                "chunked and whole event logs differ\n--- chunked\n%.4000s\n--- whole\n"
                "%.4000s\n",
                a.log->str, b.log->str);
        abort();
    }
    if (cfg[2] & 0x80)
        inspect_compare(&a.lim, msg, len, cfg + SCHED_FIRST);
    run_fini(&a);
    run_fini(&b);
    return 0;
}
