/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * NAME
 *	mime_push 3
 * SUMMARY
 *	push-based streaming MIME parser
 * SYNOPSIS
 *	#include <mugaika/mime.h>
 *
 *	struct mg_mime *mg_mime_new(const struct mg_mime_settings *settings,
 *				    const struct mg_mime_limits *limits, void *user);
 *	enum mg_status mg_mime_execute(struct mg_mime *p, const char *buf, size_t len);
 *	enum mg_status mg_mime_finish(struct mg_mime *p);
 *	struct mg_mime *mg_mime_free(struct mg_mime *p);
 * DESCRIPTION
 *	One byte loop with an explicit state (enum mime_state). The parser
 *	keeps a stack of open entities (message, multipart, leaf); the top
 *	of the stack owns the bytes being read:
 *
 *	- in a header state, bytes are gathered into the header buffer
 *	  (bounded by limits.header_bytes) until the empty line; the block
 *	  is then split into fields, decoded (mime_hdr.c) and the entity's
 *	  kind decided;
 *	- in a body state, lines are examined at their start only: a line
 *	  that begins with "--" while a multipart is open is held in the
 *	  line buffer until it is known to be, or not to be, a delimiter
 *	  of an open multipart ("--" boundary ["--"] followed by blanks
 *	  only; innermost first; the close delimiter tried first). Other
 *	  bytes stream through without copying. The line end before a
 *	  delimiter belongs to the delimiter, so it is held back until the
 *	  next line is known.
 *
 *	Leaf bodies pass through the transfer decoder (mime_dec.c) to
 *	on_body. Text leaves are also scanned for uuencoded blocks, which
 *	are reported as child entities. Content-Type, Content-Transfer-
 *	Encoding and Content-Disposition given twice: the first wins, and
 *	a defect is recorded (the rule of the first field is the one most
 *	MUAs follow; see docs/parser.md).
 * LIMITS
 *	header_bytes, line_bytes, boundary_bytes, depth, parts (see
 *	mime.h). The parser allocates its buffers at creation; nothing
 *	grows with the input.
 * DIAGNOSTICS
 *	Input problems are defects (on_defect), never errors. Errors:
 *	MG_ERR_CALLBACK (sticky) when a callback returns non-zero;
 *	MG_ERR_STATE when execute is called after finish.
 */
#include <string.h>
#ifdef __SSE2__
#include <emmintrin.h>
#endif

#include <glib.h>

#include <mugaika/hdr.h>
#include <mugaika/mime.h>

#include "mime/mime_int.h"

#define DECODE_SLICE 16384
#define DASH_SLACK   64 /* blanks allowed after a delimiter */
#define PATH_MAX_LEN 512

static const char *const defect_codes[] = {
#define X_CODE(name, code, desc) code,
    MG_MIME_DEFECT_LIST(X_CODE)
#undef X_CODE
};
static const char *const defect_descs[] = {
#define X_DESC(name, code, desc) desc,
    MG_MIME_DEFECT_LIST(X_DESC)
#undef X_DESC
};

const char *mg_mime_defect_code(enum mg_mime_defect d)
{
    return (unsigned)d < MG_MIME_DEFECT_COUNT ? defect_codes[d] : "unknown";
}

const char *mg_mime_defect_desc(enum mg_mime_defect d)
{
    return (unsigned)d < MG_MIME_DEFECT_COUNT ? defect_descs[d] : "unknown defect";
}

void mg_mime_limits_default(struct mg_mime_limits *l)
{
    l->header_bytes = 256 * 1024;
    l->line_bytes = 64 * 1024;
    l->boundary_bytes = 8192;
    l->depth = 64;
    l->parts = 10000;
    l->uuencode = true;
}

enum mime_state {
    S_HDR,     /* at the start of a header line, or in one */
    S_HDR_CR,  /* header line ended with CR; LF may follow */
    S_BOL,     /* at the start of a body line */
    S_LINE,    /* in a body line streamed through */
    S_LINE_CR, /* body line ended with CR; LF may follow */
    S_DASH,    /* body line starting with '-' held in lbuf */
    S_DASH_CR, /* held line ended with CR; LF may follow */
    S_REST,    /* after the part limit: everything is body */
    S_DONE,
};

/* uuencode scanner of a text leaf (works on decoded bytes) */
enum uu_state { UU_BOL, UU_SKIP };

struct uu_scan {
    enum uu_state st;
    char line[MG_UU_LINE_MAX];
    size_t len;
    bool overflow;
    bool in_block;  /* a child entity is open */
    unsigned count; /* blocks found so far */
};

struct entity {
    struct mg_mime_part info;
    char *path;
    char *child_prefix; /* for multipart children */
    char *content_type;
    char *charset;
    char *boundary;
    size_t boundary_len;
    char *cte_token;
    char *disposition;
    char *filename;
    unsigned nchildren;
    bool epilogue;      /* multipart: close delimiter seen */
    bool digest;        /* multipart/digest: children default to message/rfc822 */
    bool embedded_root; /* the root entity of an embedded message */
    bool text;          /* leaf scanned for uuencode */
    bool check_7bit;
    bool check_nul;
    uint64_t reported; /* defects already reported (once per entity) */
    uint64_t line_len; /* current body line length */
    struct mg_dec dec;
    struct uu_scan uu;
};

struct mg_mime {
    const struct mg_mime_settings *cb;
    struct mg_mime_limits lim;
    void *user;
    enum mime_state state;
    enum mg_status err;
    uint64_t err_off;
    uint64_t base; /* input offset of the current chunk's first byte */
    uint64_t pos;  /* input offset of the next byte to read */
    bool finished;

    struct entity *stack; /* [0, depth) open entities */
    unsigned nstack;
    unsigned stack_cap;   /* limits.depth + 1 */
    unsigned stack_alloc; /* entries allocated so far */
    unsigned nparts;
    size_t max_boundary; /* longest boundary of an open multipart */
    unsigned open_multiparts;

    /* header block */
    char *hbuf;
    size_t hcap; /* allocated, at most limits.header_bytes */
    size_t hlen;
    size_t hline;    /* start of the current line in hbuf */
    uint64_t hstart; /* offset of hbuf[0] */
    bool hoverflow;

    /* held body line (possible delimiter) */
    char *lbuf;
    size_t llen;
    size_t lcap;
    uint64_t lstart;

    /* held line end */
    char eol[2];
    unsigned eol_len;
    const char *eol_ptr; /* into the current chunk, or NULL */
    uint64_t eol_off;

    /* span of the current chunk waiting to be decoded */
    const char *span;
    size_t span_len;
    uint64_t span_off;

    /* defects of an entity whose header block is being read */
    bool holding;
    uint64_t held;
    uint64_t held_off[MG_MIME_DEFECT_COUNT];

    uint64_t line_len;    /* length of the current body line */
    GArray *fields;       /* of struct field: the header block split */
    char *out;            /* decode buffer */
    struct entity uu_ent; /* the open uuencoded child, if any */
    char *uu_path;
};

/* First CR or LF in [s, end), or end. */
static const char *find_eol(const char *s, const char *end)
{
#ifdef __SSE2__
    const __m128i lf = _mm_set1_epi8('\n'), cr = _mm_set1_epi8('\r');
    while (end - s >= 16) {
        __m128i v = _mm_loadu_si128((const __m128i *)(const void *)s);
        int m = _mm_movemask_epi8(_mm_or_si128(_mm_cmpeq_epi8(v, lf), _mm_cmpeq_epi8(v, cr)));
        if (m != 0)
            return s + __builtin_ctz((unsigned)m);
        s += 16;
    }
#endif
    while (s < end && *s != '\n' && *s != '\r')
        s++;
    return s;
}

/* ---------------------------------------------------------------- */
/* callbacks                                                         */

static struct entity *top(struct mg_mime *p)
{
    return p->nstack ? &p->stack[p->nstack - 1] : NULL;
}

static bool failed(const struct mg_mime *p)
{
    return p->err != MG_OK;
}

static void cb_result(struct mg_mime *p, int rc)
{
    if (rc != 0 && p->err == MG_OK) {
        p->err = MG_ERR_CALLBACK;
        p->err_off = p->pos;
    }
}

static void defect(struct mg_mime *p, struct entity *e, enum mg_mime_defect d, uint64_t off)
{
    uint64_t bit = (uint64_t)1 << d;

    if (failed(p))
        return;
    if (e != NULL && p->holding && e == top(p)) {
        /* header phase: reported after on_part_begin */
        if (!(p->held & bit)) {
            p->held |= bit;
            p->held_off[d] = off;
        }
        return;
    }
    if (e != NULL) {
        if (e->reported & bit)
            return;
        e->reported |= bit;
    }
    if (p->cb->on_defect)
        cb_result(p, p->cb->on_defect(p, e ? &e->info : NULL, d, off));
}

static void emit_body(struct mg_mime *p, struct entity *e, const char *data, size_t len)
{
    if (len > 0 && !failed(p) && p->cb->on_body)
        cb_result(p, p->cb->on_body(p, &e->info, data, len));
}

/* ---------------------------------------------------------------- */
/* entities                                                          */

static void entity_fini(struct entity *e)
{
    g_free(e->path);
    g_free(e->child_prefix);
    g_free(e->content_type);
    g_free(e->charset);
    g_free(e->boundary);
    g_free(e->cte_token);
    g_free(e->disposition);
    g_free(e->filename);
    memset(e, 0, sizeof(*e));
}

static void recompute_boundaries(struct mg_mime *p)
{
    p->max_boundary = 0;
    p->open_multiparts = 0;
    for (unsigned i = 0; i < p->nstack; i++) {
        struct entity *e = &p->stack[i];
        if (e->info.kind == MG_MIME_MULTIPART && !e->epilogue) {
            p->open_multiparts++;
            if (e->boundary_len > p->max_boundary)
                p->max_boundary = e->boundary_len;
        }
    }
}

/* Push a new entity whose header block starts at off. */
static struct entity *push_entity(struct mg_mime *p, uint64_t off, bool embedded_root)
{
    struct entity *parent = top(p);
    struct entity *e;

    /* classify() keeps containers below the depth limit, so the stack
     * (limits.depth + 1 entries) cannot overflow. */
    g_assert(p->nstack < p->stack_cap);
    if (p->nstack == p->stack_alloc) {
        p->stack_alloc = MIN(p->stack_alloc * 2, p->stack_cap);
        p->stack = g_renew(struct entity, p->stack, p->stack_alloc);
        parent = top(p);
    }
    e = &p->stack[p->nstack++];
    memset(e, 0, sizeof(*e));
    e->info.offset = off;
    e->info.depth = parent ? parent->info.depth + 1 : 0;
    e->embedded_root = embedded_root || parent == NULL || parent->info.kind == MG_MIME_MESSAGE;
    if (parent && parent->info.kind == MG_MIME_MULTIPART)
        e->info.index = ++parent->nchildren;
    else
        e->info.index = 1;
    p->nparts++;
    p->state = S_HDR;
    p->hlen = 0;
    p->hline = 0;
    p->hstart = off;
    p->hoverflow = false;
    p->holding = true;
    p->held = 0;
    return e;
}

/* Path of an entity once its kind is known (see mime.h). */
static void assign_path(struct mg_mime *p, struct entity *e)
{
    struct entity *parent = e->info.depth > 0 ? &p->stack[p->nstack - 2] : NULL;
    const char *pfx;

    if (e->embedded_root) {
        const char *mp = parent ? parent->path : NULL;
        if (e->info.kind == MG_MIME_MULTIPART) {
            e->path = mp ? g_strconcat(mp, ".0", NULL) : g_strdup("0");
            e->child_prefix = mp ? g_strconcat(mp, ".", NULL) : g_strdup("");
        } else {
            e->path = mp ? g_strconcat(mp, ".1", NULL) : g_strdup("1");
        }
    } else {
        pfx = parent && parent->child_prefix ? parent->child_prefix : "";
        e->path = g_strdup_printf("%s%u", pfx, e->info.index);
        if (e->info.kind == MG_MIME_MULTIPART)
            e->child_prefix = g_strconcat(e->path, ".", NULL);
    }
    if (e->info.kind == MG_MIME_MULTIPART && e->child_prefix == NULL)
        e->child_prefix = g_strconcat(e->path, ".", NULL);
    e->info.path = e->path;
}

/* ---------------------------------------------------------------- */
/* leaf body sink                                                    */

static void uu_feed(struct mg_mime *p, struct entity *e, const char *data, size_t len);
static void uu_finish(struct mg_mime *p, struct entity *e);

static void leaf_decoded(struct mg_mime *p, struct entity *e, const char *data, size_t len)
{
    emit_body(p, e, data, len);
    if (e->text && !failed(p))
        uu_feed(p, e, data, len);
}

/* Defects the decoder found in its last step, in input order (so the
 * order does not depend on how the input was split). */
static void report_dec_defects(struct mg_mime *p, struct entity *e, uint64_t off, bool flush)
{
    uint64_t bits = e->dec.defects;

    while (bits != 0 && !failed(p)) {
        unsigned best = MG_MIME_DEFECT_COUNT;
        for (unsigned d = 0; d < MG_MIME_DEFECT_COUNT; d++) {
            if ((bits & ((uint64_t)1 << d)) &&
                (best == MG_MIME_DEFECT_COUNT || e->dec.defect_at[d] < e->dec.defect_at[best]))
                best = d;
        }
        bits &= ~((uint64_t)1 << best);
        defect(p, e, (enum mg_mime_defect)best, flush ? off : off + e->dec.defect_at[best]);
    }
}

/* NUL bytes in a 7bit/8bit body, 8-bit bytes in a 7bit body: the
 * first of each, reported in input order. */
static void check_raw_bytes(struct mg_mime *p, struct entity *e, const char *data, size_t len,
                            uint64_t off)
{
    const uint64_t nul_bit = (uint64_t)1 << MG_MIME_DEFECT_BODY_NUL;
    const uint64_t high_bit = (uint64_t)1 << MG_MIME_DEFECT_BODY_8BIT;
    bool want_nul = e->check_nul && !(e->reported & nul_bit);
    bool want_high = e->check_7bit && !(e->reported & high_bit);

    size_t i = 0;

    /* Skip eight clean bytes at a time (no NUL, no high bit). */
    while ((want_nul || want_high) && i + 8 <= len) {
        uint64_t w;
        memcpy(&w, data + i, 8);
        uint64_t high = w & 0x8080808080808080u;
        uint64_t zero = (w - 0x0101010101010101u) & ~w & 0x8080808080808080u;
        if ((want_high && high) || (want_nul && zero))
            break;
        i += 8;
    }
    for (; i < len && (want_nul || want_high); i++) {
        unsigned char c = (unsigned char)data[i];
        if (c == 0 && want_nul) {
            defect(p, e, MG_MIME_DEFECT_BODY_NUL, off + i);
            want_nul = false;
        } else if ((c & 0x80) && want_high) {
            defect(p, e, MG_MIME_DEFECT_BODY_8BIT, off + i);
            want_high = false;
        }
    }
}

/* Raw (transfer-encoded) bytes of a leaf body. */
static void leaf_write(struct mg_mime *p, struct entity *e, const char *data, size_t len,
                       uint64_t off)
{
    if (e->check_nul || e->check_7bit)
        check_raw_bytes(p, e, data, len, off);
    /* a uuencoded line of 2 bytes can decode to 63 */
    size_t slice = e->dec.cte == MG_MIME_CTE_UUENCODE ? DECODE_SLICE / 32 : DECODE_SLICE;
    while (len > 0 && !failed(p)) {
        size_t n = len < slice ? len : slice;
        size_t w = mg_dec_step(&e->dec, data, n, p->out);
        if (e->dec.defects)
            report_dec_defects(p, e, off, false);
        leaf_decoded(p, e, p->out, w);
        data += n;
        len -= n;
        off += n;
    }
}

/* Body bytes for the top entity: a leaf decodes them, a multipart
 * (preamble, epilogue) drops them. */
static void sink(struct mg_mime *p, const char *data, size_t len, uint64_t off)
{
    struct entity *e = top(p);

    if (e == NULL || len == 0)
        return;
    if (e->info.kind == MG_MIME_LEAF)
        leaf_write(p, e, data, len, off);
}

static void flush_span(struct mg_mime *p)
{
    if (p->span_len > 0) {
        const char *s = p->span;
        size_t n = p->span_len;
        p->span_len = 0;
        sink(p, s, n, p->span_off);
    }
    p->span = NULL;
}

/* Queue body bytes of the current chunk; adjacent ones join. */
static void content(struct mg_mime *p, const char *data, size_t len, uint64_t off)
{
    if (len == 0)
        return;
    if (p->span != NULL && p->span + p->span_len == data) {
        p->span_len += len;
        return;
    }
    flush_span(p);
    p->span = data;
    p->span_len = len;
    p->span_off = off;
}

/* Bytes not in the current chunk (held copies). */
static void content_copy(struct mg_mime *p, const char *data, size_t len, uint64_t off)
{
    flush_span(p);
    sink(p, data, len, off);
}

static void release_eol(struct mg_mime *p)
{
    if (p->eol_len == 0)
        return;
    if (p->eol_ptr != NULL)
        content(p, p->eol_ptr, p->eol_len, p->eol_off);
    else
        content_copy(p, p->eol, p->eol_len, p->eol_off);
    p->eol_len = 0;
    p->eol_ptr = NULL;
}

static void hold_eol(struct mg_mime *p, const char *at, unsigned n, uint64_t off)
{
    memcpy(p->eol, at, n);
    p->eol_len = n;
    p->eol_ptr = at;
    p->eol_off = off;
}

/* ---------------------------------------------------------------- */
/* uuencoded blocks inside text leaves                               */

static void uu_open(struct mg_mime *p, struct entity *e, const char *name, size_t name_len)
{
    struct entity *c = &p->uu_ent;
    unsigned hd = 0;

    memset(c, 0, sizeof(*c));
    e->uu.count++;
    c->path = g_strdup_printf("%s.u%u", e->path, e->uu.count);
    c->content_type = g_strdup("application/octet-stream");
    c->cte_token = g_strdup("x-uuencode");
    c->filename = mg_hdr_decode_text(name, name_len, &hd);
    c->info.path = c->path;
    c->info.depth = e->info.depth + 1;
    c->info.index = e->uu.count;
    c->info.kind = MG_MIME_LEAF;
    c->info.origin = MG_MIME_ORIGIN_UU;
    c->info.content_type = c->content_type;
    c->info.cte_token = c->cte_token;
    c->info.cte = MG_MIME_CTE_UUENCODE;
    c->info.filename = c->filename;
    c->info.offset = e->info.body_offset;
    c->info.body_offset = e->info.body_offset;
    e->uu.in_block = true;
    p->nparts++;
    if (p->cb->on_part_begin && !failed(p))
        cb_result(p, p->cb->on_part_begin(p, &c->info));
}

static void uu_close(struct mg_mime *p, struct entity *e, bool truncated)
{
    struct entity *c = &p->uu_ent;

    if (truncated)
        defect(p, c, MG_MIME_DEFECT_UU_TRUNCATED, c->info.offset);
    c->info.end_offset = c->info.offset;
    if (p->cb->on_part_end && !failed(p))
        cb_result(p, p->cb->on_part_end(p, &c->info));
    entity_fini(c);
    e->uu.in_block = false;
}

/* A complete line of decoded text (without its LF). */
static void uu_line(struct mg_mime *p, struct entity *e)
{
    struct uu_scan *u = &e->uu;
    const char *name;
    size_t name_len;
    char out[MG_UU_LINE_MAX];
    int bad;

    if (u->in_block) {
        if (!u->overflow && mg_uu_is_end(u->line, u->len)) {
            uu_close(p, e, false);
            return;
        }
        size_t w = u->overflow ? 0 : mg_uu_decode_line(u->line, u->len, out, &bad);
        if (!u->overflow && !bad) {
            emit_body(p, &p->uu_ent, out, w);
            return;
        }
        /* Not uuencode any more: the block ended without "end". The
         * line may open the next block, so it is looked at again. */
        defect(p, &p->uu_ent, MG_MIME_DEFECT_UU_BAD_LINE, p->uu_ent.info.offset);
        uu_close(p, e, true);
    }
    /* The first MG_UU_LINE_MAX bytes of a longer line are enough to
     * see a "begin" line; its name is then cut (and marked). */
    if (p->nparts < p->lim.parts && mg_uu_is_begin(u->line, u->len, &name, &name_len)) {
        uu_open(p, e, name, name_len);
        if (u->overflow)
            defect(p, &p->uu_ent, MG_MIME_DEFECT_UU_BAD_LINE, p->uu_ent.info.offset);
    }
}

static void uu_feed(struct mg_mime *p, struct entity *e, const char *data, size_t len)
{
    struct uu_scan *u = &e->uu;
    size_t i = 0;

    while (i < len && !failed(p)) {
        if (u->st == UU_SKIP) {
            const char *nl = memchr(data + i, '\n', len - i);
            if (nl == NULL)
                return;
            i = (size_t)(nl - data) + 1;
            u->st = UU_BOL;
            u->len = 0;
            u->overflow = false;
            continue;
        }
        char c = data[i++];
        if (c == '\n') {
            uu_line(p, e);
            u->st = UU_BOL;
            u->len = 0;
            u->overflow = false;
            continue;
        }
        if (u->len < sizeof(u->line))
            u->line[u->len++] = c;
        else
            u->overflow = true;
        /* Outside a block only lines starting "begin " matter. */
        if (!u->in_block && u->len <= 6 && memcmp(u->line, "begin ", u->len) != 0)
            u->st = UU_SKIP;
    }
}

static void uu_finish(struct mg_mime *p, struct entity *e)
{
    struct uu_scan *u = &e->uu;

    if (u->st != UU_SKIP && u->len > 0)
        uu_line(p, e);
    if (u->in_block)
        uu_close(p, e, true);
    u->len = 0;
}

/* ---------------------------------------------------------------- */
/* closing entities                                                  */

static void close_top(struct mg_mime *p, uint64_t end)
{
    struct entity *e = top(p);
    size_t w;

    if (e == NULL)
        return;
    if (e->info.kind == MG_MIME_LEAF && !failed(p)) {
        w = mg_dec_flush(&e->dec, p->out);
        if (e->dec.defects)
            report_dec_defects(p, e, end, true);
        leaf_decoded(p, e, p->out, w);
        if (e->text)
            uu_finish(p, e);
    }
    if (e->info.kind == MG_MIME_MULTIPART && !e->epilogue) {
        defect(p, e, MG_MIME_DEFECT_MISSING_FINAL_BOUNDARY, end);
        if (e->nchildren == 0)
            defect(p, e, MG_MIME_DEFECT_NO_PARTS, end);
    }
    e->info.end_offset = end;
    if (p->cb->on_part_end && !failed(p))
        cb_result(p, p->cb->on_part_end(p, &e->info));
    entity_fini(e);
    p->nstack--;
    recompute_boundaries(p);
}

/* ---------------------------------------------------------------- */
/* header block                                                      */

static enum mg_mime_cte cte_kind(const char *tok)
{
    static const struct {
        const char *name;
        enum mg_mime_cte cte;
    } table[] = {
        {"7bit", MG_MIME_CTE_7BIT},           {"8bit", MG_MIME_CTE_8BIT},
        {"binary", MG_MIME_CTE_BINARY},       {"base64", MG_MIME_CTE_BASE64},
        {"quoted-printable", MG_MIME_CTE_QP}, {"x-uuencode", MG_MIME_CTE_UUENCODE},
        {"uuencode", MG_MIME_CTE_UUENCODE},   {"x-uue", MG_MIME_CTE_UUENCODE},
    };

    for (size_t i = 0; i < G_N_ELEMENTS(table); i++) {
        if (strcmp(tok, table[i].name) == 0)
            return table[i].cte;
    }
    return MG_MIME_CTE_UNKNOWN;
}

/* Lower-case, trimmed token (comments and anything after a blank
 * dropped): " Base64 (x)" -> "base64". Owned. */
static char *cte_normalise(const char *raw, size_t len)
{
    size_t i = 0, j;

    while (i < len && g_ascii_isspace(raw[i]))
        i++;
    j = i;
    while (j < len && !g_ascii_isspace(raw[j]) && raw[j] != '(' && raw[j] != ';')
        j++;
    return g_ascii_strdown(raw + i, (gssize)(j - i));
}

static bool valid_type(const char *v)
{
    const char *slash = strchr(v, '/');

    if (slash == NULL || slash == v || slash[1] == '\0' || strchr(slash + 1, '/'))
        return false;
    for (const char *s = v; *s; s++) {
        if ((unsigned char)*s <= ' ' || (unsigned char)*s >= 127 || strchr("()<>@,;:\\\"[]?=", *s))
            return false;
    }
    return true;
}

static bool is_message_type(const char *ct)
{
    return strcmp(ct, "message/rfc822") == 0 || strcmp(ct, "message/global") == 0 ||
           strcmp(ct, "message/rfc2822") == 0 || strcmp(ct, "message/news") == 0;
}

static void map_hdr_defects(struct mg_mime *p, struct entity *e, unsigned bits, uint64_t off)
{
    static const struct {
        unsigned bit;
        enum mg_mime_defect d;
    } map[] = {
        {MG_HDR_DEF_ENCWORD, MG_MIME_DEFECT_ENCODED_WORD},
        {MG_HDR_DEF_CHARSET, MG_MIME_DEFECT_UNKNOWN_CHARSET},
        {MG_HDR_DEF_RAW8BIT, MG_MIME_DEFECT_HEADER_8BIT},
        {MG_HDR_DEF_PARAM, MG_MIME_DEFECT_PARAM_MALFORMED},
        {MG_HDR_DEF_RFC2231, MG_MIME_DEFECT_RFC2231},
        {MG_HDR_DEF_DUPPARAM, MG_MIME_DEFECT_PARAM_DUPLICATE},
        {MG_HDR_DEF_INVALID, MG_MIME_DEFECT_INVALID_CHARSET_DATA},
    };

    for (size_t i = 0; i < G_N_ELEMENTS(map); i++) {
        if (bits & map[i].bit)
            defect(p, e, map[i].d, off);
    }
}

struct field {
    const char *name;
    size_t name_len;
    const char *raw;
    size_t raw_len;
    uint64_t off;
};

/* Splits the header block into p->fields (reused; bounded by the
 * block). Lines that are not fields (no colon, bad name, a fold before
 * any field) are skipped with a defect. */
static void split_fields(struct mg_mime *p, struct entity *e)
{
    const char *b = p->hbuf, *end = p->hbuf + p->hlen;
    const char *s = b;

    g_array_set_size(p->fields, 0);
    while (s < end && !failed(p)) {
        /* field extent: up to a line end not followed by a blank */
        const char *f = s, *q = s;
        for (;;) {
            const char *lf = find_eol(q, end);
            if (lf >= end) {
                q = end;
                break;
            }
            const char *next = lf + 1;
            if (*lf == '\r' && next < end && *next == '\n')
                next++;
            q = next;
            if (!(next < end && (*next == ' ' || *next == '\t')))
                break;
        }
        /* trim the final line end */
        const char *fe = q;
        while (fe > f && (fe[-1] == '\n' || fe[-1] == '\r'))
            fe--;
        s = q;
        if (fe == f)
            continue;
        uint64_t off = p->hstart + (uint64_t)(f - b);
        if (*f == ' ' || *f == '\t') {
            defect(p, e, MG_MIME_DEFECT_HEADER_CONTINUATION_FIRST, off);
            continue;
        }
        const char *colon = memchr(f, ':', (size_t)(fe - f));
        if (colon == NULL) {
            defect(p, e, MG_MIME_DEFECT_HEADER_NO_COLON, off);
            continue;
        }
        const char *ne = colon;
        while (ne > f && (ne[-1] == ' ' || ne[-1] == '\t'))
            ne--;
        bool bad = ne == f;
        for (const char *c = f; c < ne && !bad; c++) {
            if ((unsigned char)*c <= ' ' || (unsigned char)*c >= 127)
                bad = true;
        }
        if (bad) {
            defect(p, e, MG_MIME_DEFECT_HEADER_BAD_NAME, off);
            continue;
        }
        struct field fld = {f, (size_t)(ne - f), colon + 1, (size_t)(fe - colon - 1), off};
        g_array_append_val(p->fields, fld);
    }
}

static bool name_is(const struct field *f, const char *name)
{
    return strlen(name) == f->name_len && g_ascii_strncasecmp(f->name, name, f->name_len) == 0;
}

struct mime_fields {
    bool have_ct, have_cte, have_cd;
    struct mg_hdr_params ct;
    struct mg_hdr_params cd;
    char *cte;
    uint64_t ct_off;
};

static void collect_field(struct mg_mime *p, struct entity *e, const struct field *f,
                          struct mime_fields *mf)
{
    unsigned bits = 0;

    if (name_is(f, "Content-Type")) {
        if (mf->have_ct) {
            defect(p, e, MG_MIME_DEFECT_DUPLICATE_CONTENT_TYPE, f->off);
            return;
        }
        mf->have_ct = true;
        mf->ct_off = f->off;
        mg_hdr_parse_params(f->raw, f->raw_len, &mf->ct, &bits);
    } else if (name_is(f, "Content-Transfer-Encoding")) {
        if (mf->have_cte) {
            defect(p, e, MG_MIME_DEFECT_DUPLICATE_CTE, f->off);
            return;
        }
        mf->have_cte = true;
        mf->cte = cte_normalise(f->raw, f->raw_len);
    } else if (name_is(f, "Content-Disposition")) {
        if (mf->have_cd) {
            defect(p, e, MG_MIME_DEFECT_DUPLICATE_DISPOSITION, f->off);
            return;
        }
        mf->have_cd = true;
        mg_hdr_parse_params(f->raw, f->raw_len, &mf->cd, &bits);
    }
    map_hdr_defects(p, e, bits, f->off);
}

static void emit_field(struct mg_mime *p, struct entity *e, const struct field *f)
{
    struct mg_mime_header h;
    unsigned bits = 0;
    char *name, *decoded;

    if (p->cb->on_header == NULL && p->cb->on_defect == NULL)
        return; /* nobody wants the decoded value */
    name = g_strndup(f->name, f->name_len);
    decoded = mg_hdr_decode(name, f->raw, f->raw_len, &bits);
    g_free(name);
    h.name = f->name;
    h.name_len = f->name_len;
    h.raw = f->raw;
    h.raw_len = f->raw_len;
    h.decoded = decoded;
    h.offset = f->off;
    if (p->cb->on_header && !failed(p))
        cb_result(p, p->cb->on_header(p, &e->info, &h));
    g_free(decoded);
    map_hdr_defects(p, e, bits, f->off);
}

/* Decide what the entity is from its fields. */
static void classify(struct mg_mime *p, struct entity *e, struct mime_fields *mf)
{
    struct entity *parent = p->nstack >= 2 ? &p->stack[p->nstack - 2] : NULL;
    const char *v;

    if (mf->have_ct && valid_type(mf->ct.value)) {
        e->content_type = g_strdup(mf->ct.value);
    } else {
        if (mf->have_ct)
            defect(p, e, MG_MIME_DEFECT_BAD_CONTENT_TYPE, mf->ct_off);
        bool digest = parent && parent->digest && !e->embedded_root;
        e->content_type = g_strdup(digest ? "message/rfc822" : "text/plain");
        e->info.content_type_default = true;
    }
    if (mf->have_ct && (v = mg_hdr_params_get(&mf->ct, "charset")) != NULL)
        e->charset = g_strdup(v);
    e->cte_token = mf->cte; /* owned now */
    mf->cte = NULL;
    e->info.cte = e->cte_token ? cte_kind(e->cte_token) : MG_MIME_CTE_7BIT;
    if (e->cte_token && e->info.cte == MG_MIME_CTE_UNKNOWN) {
        if (e->cte_token[0] == '\0') {
            e->info.cte = MG_MIME_CTE_7BIT;
        } else {
            defect(p, e, MG_MIME_DEFECT_UNKNOWN_CTE, e->info.offset);
        }
    }
    if (mf->have_cd && mf->cd.value[0] != '\0')
        e->disposition = g_strdup(mf->cd.value);
    v = mf->have_cd ? mg_hdr_params_get(&mf->cd, "filename") : NULL;
    if (v == NULL && mf->have_ct)
        v = mg_hdr_params_get(&mf->ct, "name");
    if (v != NULL)
        e->filename = g_strdup(v);

    e->info.kind = MG_MIME_LEAF;
    bool too_deep = e->info.depth + 1 >= p->lim.depth || p->nstack + 2 > p->stack_cap;
    bool encoded = e->info.cte == MG_MIME_CTE_BASE64 || e->info.cte == MG_MIME_CTE_QP ||
                   e->info.cte == MG_MIME_CTE_UUENCODE;
    if (p->hoverflow) {
        /* the block was cut: nothing in it can be trusted */
        g_free(e->content_type);
        e->content_type = g_strdup("application/octet-stream");
        e->info.cte = MG_MIME_CTE_BINARY;
    } else if (g_str_has_prefix(e->content_type, "multipart/")) {
        v = mg_hdr_params_get(&mf->ct, "boundary");
        if (v == NULL || v[0] == '\0') {
            defect(p, e, MG_MIME_DEFECT_MULTIPART_NO_BOUNDARY, mf->ct_off);
        } else if (strlen(v) > p->lim.boundary_bytes) {
            defect(p, e, MG_MIME_DEFECT_BOUNDARY_TOO_LONG, mf->ct_off);
        } else if (too_deep) {
            defect(p, e, MG_MIME_DEFECT_DEPTH_LIMIT, e->info.offset);
        } else {
            e->info.kind = MG_MIME_MULTIPART;
            e->boundary = g_strdup(v);
            e->boundary_len = strlen(v);
            e->digest = strcmp(e->content_type, "multipart/digest") == 0;
            if (encoded)
                defect(p, e, MG_MIME_DEFECT_CTE_ON_COMPOSITE, e->info.offset);
        }
        if (e->info.kind == MG_MIME_LEAF)
            e->info.cte = MG_MIME_CTE_BINARY; /* opaque */
    } else if (is_message_type(e->content_type)) {
        if (encoded) {
            defect(p, e, MG_MIME_DEFECT_CTE_ON_COMPOSITE, e->info.offset);
        } else if (too_deep) {
            defect(p, e, MG_MIME_DEFECT_DEPTH_LIMIT, e->info.offset);
        } else {
            e->info.kind = MG_MIME_MESSAGE;
        }
    }
    e->text = e->info.kind == MG_MIME_LEAF && p->lim.uuencode && !p->hoverflow &&
              (g_str_has_prefix(e->content_type, "text/") || e->info.content_type_default) &&
              e->info.cte != MG_MIME_CTE_UUENCODE;
    e->check_nul = e->info.kind == MG_MIME_LEAF &&
                   (e->info.cte == MG_MIME_CTE_7BIT || e->info.cte == MG_MIME_CTE_8BIT);
    e->check_7bit =
        e->info.kind == MG_MIME_LEAF && e->info.cte == MG_MIME_CTE_7BIT && e->cte_token != NULL;

    e->info.content_type = e->content_type;
    e->info.charset = e->charset;
    e->info.boundary = e->boundary;
    e->info.cte_token = e->cte_token;
    e->info.disposition = e->disposition;
    e->info.filename = e->filename;
    mg_dec_init(&e->dec, e->info.kind == MG_MIME_LEAF ? e->info.cte : MG_MIME_CTE_BINARY);
}

/* The header block of the top entity is complete (body_off: offset of
 * the first body byte). Emits part_begin, the fields and the defects
 * found in the block, and opens what follows. */
static void end_headers(struct mg_mime *p, uint64_t body_off)
{
    struct entity *e = top(p);
    struct mime_fields mf;

    memset(&mf, 0, sizeof(mf));
    const char *nul = memchr(p->hbuf, 0, p->hlen);
    if (nul != NULL)
        defect(p, e, MG_MIME_DEFECT_HEADER_NUL, p->hstart + (uint64_t)(nul - p->hbuf));
    for (size_t i = 0; i < p->hlen; i++) {
        if ((unsigned char)p->hbuf[i] & 0x80) {
            defect(p, e, MG_MIME_DEFECT_HEADER_8BIT, p->hstart + i);
            break;
        }
    }
    split_fields(p, e);
    for (guint i = 0; i < p->fields->len && !failed(p); i++)
        collect_field(p, e, &g_array_index(p->fields, struct field, i), &mf);
    classify(p, e, &mf);
    assign_path(p, e);
    e->info.body_offset = body_off;
    p->holding = false;
    if (p->cb->on_part_begin && !failed(p))
        cb_result(p, p->cb->on_part_begin(p, &e->info));
    for (guint i = 0; i < p->fields->len && !failed(p); i++)
        emit_field(p, e, &g_array_index(p->fields, struct field, i));
    for (unsigned d = 0; p->held && d < MG_MIME_DEFECT_COUNT; d++) {
        if (p->held & ((uint64_t)1 << d))
            defect(p, e, (enum mg_mime_defect)d, p->held_off[d]);
    }
    p->held = 0;
    mg_hdr_params_fini(&mf.ct);
    mg_hdr_params_fini(&mf.cd);
    g_free(mf.cte);
    recompute_boundaries(p);
}

/* ---------------------------------------------------------------- */
/* delimiters                                                        */

static bool all_blank(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (s[i] != ' ' && s[i] != '\t' && s[i] != '\r')
            return false;
    }
    return true;
}

/* Is line (without its line end) a delimiter of an open multipart?
 * Returns the stack index, or -1; *final for a close delimiter. */
static int match_delimiter(struct mg_mime *p, const char *line, size_t n, bool *final, bool *blanks)
{
    if (n < 3 || line[0] != '-' || line[1] != '-' || p->open_multiparts == 0)
        return -1;
    for (int i = (int)p->nstack - 1; i >= 0; i--) {
        struct entity *e = &p->stack[i];
        size_t bl = e->boundary_len;
        if (e->info.kind != MG_MIME_MULTIPART || e->epilogue || n < 2 + bl ||
            memcmp(line + 2, e->boundary, bl) != 0)
            continue;
        const char *r = line + 2 + bl;
        size_t rn = n - 2 - bl;
        if (rn >= 2 && r[0] == '-' && r[1] == '-' && all_blank(r + 2, rn - 2)) {
            *final = true;
            *blanks = rn > 2;
            return i;
        }
        if (all_blank(r, rn)) {
            *final = false;
            *blanks = rn > 0;
            return i;
        }
    }
    return -1;
}

static void open_rest(struct mg_mime *p, uint64_t off)
{
    struct entity *e;

    defect(p, NULL, MG_MIME_DEFECT_PART_LIMIT, off);
    e = push_entity(p, off, false);
    p->holding = false;
    e->content_type = g_strdup("application/octet-stream");
    e->info.content_type = e->content_type;
    e->info.content_type_default = true;
    e->info.kind = MG_MIME_LEAF;
    e->info.cte = MG_MIME_CTE_BINARY;
    e->info.body_offset = off;
    mg_dec_init(&e->dec, MG_MIME_CTE_BINARY);
    assign_path(p, e);
    if (p->cb->on_part_begin && !failed(p))
        cb_result(p, p->cb->on_part_begin(p, &e->info));
    defect(p, e, MG_MIME_DEFECT_PART_LIMIT, off);
    p->open_multiparts = 0; /* no delimiter is recognised any more */
    p->state = S_REST;
}

/* A delimiter of the multipart at stack index k was read: the line
 * started at off, and the next line starts at next. */
static void delimiter(struct mg_mime *p, int k, bool final, bool blanks, uint64_t off,
                      uint64_t next)
{
    struct entity *m;

    p->eol_len = 0; /* the line end before a delimiter belongs to it */
    p->eol_ptr = NULL;
    flush_span(p);
    while ((int)p->nstack - 1 > k && !failed(p)) {
        struct entity *e = top(p);
        if ((int)p->nstack - 1 > k + 1 && e->info.kind == MG_MIME_MULTIPART && !e->epilogue)
            defect(p, e, MG_MIME_DEFECT_PARENT_BOUNDARY, off);
        close_top(p, off);
    }
    m = top(p);
    if (blanks)
        defect(p, m, MG_MIME_DEFECT_BOUNDARY_WHITESPACE, off);
    if (final) {
        m->epilogue = true;
        if (m->nchildren == 0)
            defect(p, m, MG_MIME_DEFECT_NO_PARTS, off);
        recompute_boundaries(p);
        p->state = S_BOL;
        return;
    }
    if (p->nparts >= p->lim.parts) {
        open_rest(p, next);
        return;
    }
    push_entity(p, next, false);
}

/* ---------------------------------------------------------------- */
/* header lines                                                      */

/* Returns how many of the n bytes fitted. */
static size_t hbuf_add(struct mg_mime *p, const char *s, size_t n)
{
    size_t room = p->lim.header_bytes - p->hlen;

    if (n > room) {
        n = room;
        p->hoverflow = true;
    }
    if (p->hlen + n > p->hcap) {
        p->hcap = MIN(MAX(p->hcap * 2, p->hlen + n), p->lim.header_bytes);
        p->hbuf = g_realloc(p->hbuf, p->hcap);
    }
    memcpy(p->hbuf + p->hlen, s, n);
    p->hlen += n;
    return n;
}

/* After end_headers: open the body of the top entity. */
static void start_body(struct mg_mime *p, uint64_t body_off)
{
    struct entity *e = top(p);

    p->line_len = 0;
    if (e->info.kind == MG_MIME_MESSAGE) {
        if (p->nparts >= p->lim.parts) {
            open_rest(p, body_off);
            return;
        }
        push_entity(p, body_off, true);
        return;
    }
    p->state = S_BOL;
}

/* The header line hbuf[hline, hlen) is complete (with its line end);
 * next is the offset of the byte after it. */
static void header_line(struct mg_mime *p, uint64_t next)
{
    const char *line = p->hbuf + p->hline;
    size_t n = p->hlen - p->hline, content = n;
    bool final, blanks;
    int k;

    while (content > 0 && (line[content - 1] == '\n' || line[content - 1] == '\r'))
        content--;
    if (content == 0) {
        p->hlen = p->hline;
        end_headers(p, next);
        start_body(p, next);
        return;
    }
    if (p->nstack == 1 && p->hstart == 0 && p->hline == 0 && content >= 5 &&
        memcmp(line, "From ", 5) == 0) {
        defect(p, NULL, MG_MIME_DEFECT_MBOX_FROM, 0);
        p->hlen = 0;
        p->hstart = next;
        top(p)->info.offset = next;
        return;
    }
    if (line[0] == '-' && (k = match_delimiter(p, line, content, &final, &blanks)) >= 0) {
        uint64_t off = p->hstart + p->hline;
        p->hlen = p->hline;
        if (p->hlen == 0 && top(p)->embedded_root && p->nstack > 1) {
            /* empty embedded message: no entity at all */
            entity_fini(top(p));
            p->nstack--;
            p->nparts--;
            p->holding = false;
        } else {
            end_headers(p, off);
        }
        delimiter(p, k, final, blanks, off, next);
        return;
    }
    if (content > p->lim.line_bytes)
        defect(p, top(p), MG_MIME_DEFECT_HEADER_LINE_TOO_LONG, p->hstart + p->hline);
    p->hline = p->hlen;
}

/* The header block overflowed: cut it at the last complete line; the
 * rest becomes the body of an opaque leaf. */
static void header_overflow(struct mg_mime *p)
{
    struct entity *e = top(p);
    size_t cut = p->hline;
    uint64_t cut_off = p->hstart + cut;
    char *rest;
    size_t rest_len = p->hlen - cut;

    defect(p, e, MG_MIME_DEFECT_HEADER_BLOCK_TOO_LONG, cut_off);
    rest = g_memdup2(p->hbuf + cut, rest_len);
    p->hlen = cut;
    end_headers(p, cut_off);
    if (p->open_multiparts > 0 && rest_len > 0 && rest[0] == '-' && rest_len <= p->lcap) {
        /* The cut line may be a delimiter: read it as a body line. A
         * CR at its end was a line end whose LF did not fit. */
        bool cr = rest[rest_len - 1] == '\r';
        p->llen = rest_len - (cr ? 1 : 0);
        memcpy(p->lbuf, rest, p->llen);
        p->lstart = cut_off;
        p->line_len = 0;
        p->state = cr ? S_DASH_CR : S_DASH;
        g_free(rest);
        return;
    }
    p->state = S_LINE;
    p->line_len = rest_len;
    content_copy(p, rest, rest_len, cut_off);
    g_free(rest);
}

/* ---------------------------------------------------------------- */
/* the byte loop                                                     */

/* Offset of chunk position q. */
#define OFF(q) (p->base + (uint64_t)((q)-buf))

/* Body bytes [s, q) of one line, whose length before s was `before`:
 * content, with line-too-long reported where the line crosses the
 * limit. The bytes before that point are decoded first, so a part's
 * defects stay in input order whatever the chunking. */
static void line_content(struct mg_mime *p, const char *s, const char *q, uint64_t before,
                         const char *buf)
{
    struct entity *e = top(p);
    uint64_t lim = p->lim.line_bytes;

    if (before + (uint64_t)(q - s) > lim && e && e->info.kind == MG_MIME_LEAF &&
        !(e->reported & ((uint64_t)1 << MG_MIME_DEFECT_LINE_TOO_LONG))) {
        const char *at = before < lim ? s + (lim - before) : s;
        content(p, s, (size_t)(at - s), OFF(s));
        flush_span(p);
        defect(p, e, MG_MIME_DEFECT_LINE_TOO_LONG, OFF(at));
        s = at;
    }
    content(p, s, (size_t)(q - s), OFF(s));
}

/* Held line lbuf turned out not to be a delimiter: it is content. A
 * line that starts with the delimiter of an open multipart is the
 * classic trick to make parsers disagree: mark that multipart. */
static void dash_is_content(struct mg_mime *p)
{
    for (unsigned i = p->nstack; i > 0; i--) {
        struct entity *e = &p->stack[i - 1];
        if (e->info.kind == MG_MIME_MULTIPART && !e->epilogue && p->llen >= 2 + e->boundary_len &&
            memcmp(p->lbuf + 2, e->boundary, e->boundary_len) == 0) {
            defect(p, e, MG_MIME_DEFECT_BOUNDARY_LOOKALIKE, p->lstart);
            break;
        }
    }
    release_eol(p);
    content_copy(p, p->lbuf, p->llen, p->lstart);
    p->line_len = p->llen;
    p->llen = 0;
}

static void run(struct mg_mime *p, const char *buf, size_t len)
{
    const char *s = buf, *end = buf + len;

    while (s < end && !failed(p)) {
        switch (p->state) {
        case S_HDR: {
            const char *q = s;
            while (q < end && *q != '\n' && *q != '\r')
                q++;
            s += hbuf_add(p, s, (size_t)(q - s) + (q < end ? 1 : 0));
            if (p->hoverflow) {
                header_overflow(p); /* the rest of the line is body now */
                break;
            }
            if (q == end)
                break;
            if (*q == '\r')
                p->state = S_HDR_CR;
            else
                header_line(p, OFF(s));
            break;
        }
        case S_HDR_CR:
            if (*s == '\n') {
                s += hbuf_add(p, s, 1);
                if (p->hoverflow) {
                    header_overflow(p);
                    break;
                }
            }
            p->state = S_HDR;
            header_line(p, OFF(s));
            break;
        case S_BOL:
            p->line_len = 0;
            if (*s == '-' && p->open_multiparts > 0) {
                p->lbuf[0] = '-';
                p->llen = 1;
                p->lstart = OFF(s);
                p->state = S_DASH;
                s++;
                break;
            }
            release_eol(p);
            p->state = S_LINE;
            break;
        case S_LINE: {
            const char *q = find_eol(s, end);
            line_content(p, s, q, p->line_len, buf);
            p->line_len += (uint64_t)(q - s);
            if (q == end) {
                s = end;
                break;
            }
            if (*q == '\n' || q + 1 < end) {
                unsigned n = *q == '\r' && q[1] == '\n' ? 2 : 1;
                hold_eol(p, q, n, OFF(q));
                s = q + n;
                p->state = S_BOL;
                /* Fast path: a next line that cannot be a delimiter joins
                 * the span at once (what S_BOL would do). */
                if (s < end && (*s != '-' || p->open_multiparts == 0)) {
                    p->line_len = 0;
                    release_eol(p);
                    p->state = S_LINE;
                }
            } else {
                hold_eol(p, q, 1, OFF(q));
                s = q + 1;
                p->state = S_LINE_CR;
            }
            break;
        }
        case S_LINE_CR:
            p->state = S_BOL;
            if (*s == '\n') {
                /* the CR is held; extend it to CRLF */
                p->eol[1] = '\n';
                p->eol_len = 2;
                p->eol_ptr = NULL;
                s++;
            }
            break;
        case S_DASH:
        case S_DASH_CR: {
            bool final, blanks;
            int k;
            char c = *s;
            if (p->state == S_DASH_CR) {
                unsigned n = 1;
                uint64_t eol_off = p->lstart + p->llen;
                p->state = S_BOL;
                if (c == '\n') {
                    n = 2;
                    s++;
                }
                k = match_delimiter(p, p->lbuf, p->llen, &final, &blanks);
                if (k >= 0) {
                    delimiter(p, k, final, blanks, p->lstart, OFF(s));
                } else {
                    dash_is_content(p);
                    memcpy(p->eol, "\r\n", n);
                    p->eol_len = n;
                    p->eol_ptr = NULL;
                    p->eol_off = eol_off;
                }
                break;
            }
            if (c == '\n' || c == '\r') {
                if (c == '\r') {
                    p->state = S_DASH_CR;
                    s++;
                    break;
                }
                p->state = S_BOL;
                k = match_delimiter(p, p->lbuf, p->llen, &final, &blanks);
                if (k >= 0) {
                    delimiter(p, k, final, blanks, p->lstart, OFF(s + 1));
                } else {
                    dash_is_content(p);
                    hold_eol(p, s, 1, OFF(s));
                }
                s++;
                break;
            }
            if (p->llen >= p->lcap || (p->llen == 1 && c != '-')) {
                dash_is_content(p);
                p->state = S_LINE;
                break;
            }
            p->lbuf[p->llen++] = c;
            s++;
            break;
        }
        case S_REST:
            content(p, s, (size_t)(end - s), OFF(s));
            s = end;
            break;
        case S_DONE:
            s = end;
            break;
        }
    }
    flush_span(p);
    /* nothing may point into buf once we return */
    p->eol_ptr = NULL;
    p->span = NULL;
}

/* ---------------------------------------------------------------- */
/* API                                                               */

struct mg_mime *mg_mime_new(const struct mg_mime_settings *settings,
                            const struct mg_mime_limits *limits, void *user)
{
    struct mg_mime *p = g_new0(struct mg_mime, 1);

    if (limits)
        p->lim = *limits;
    else
        mg_mime_limits_default(&p->lim);
    p->lim.header_bytes = CLAMP(p->lim.header_bytes, 1024, (size_t)64 << 20);
    p->lim.line_bytes = CLAMP(p->lim.line_bytes, 78, (size_t)1 << 30);
    p->lim.boundary_bytes = CLAMP(p->lim.boundary_bytes, 1, 65536);
    p->lim.depth = CLAMP(p->lim.depth, 1, 100000);
    p->lim.parts = CLAMP(p->lim.parts, 1, 100000000);
    p->cb = settings;
    p->user = user;
    p->stack_cap = p->lim.depth + 1;
    /* Both grow on demand up to their limits: most messages are
     * shallow and have small header blocks. */
    p->stack_alloc = MIN(p->stack_cap, 8u);
    p->stack = g_new(struct entity, p->stack_alloc);
    p->hcap = MIN(p->lim.header_bytes, (size_t)4096);
    p->hbuf = g_malloc(p->hcap);
    p->lcap = p->lim.boundary_bytes + 4 + DASH_SLACK;
    p->lbuf = g_malloc(p->lcap);
    p->out = g_malloc(DECODE_SLICE + MG_DEC_SLACK);
    p->fields = g_array_new(FALSE, FALSE, sizeof(struct field));
    push_entity(p, 0, true);
    return p;
}

struct mg_mime *mg_mime_free(struct mg_mime *p)
{
    if (p == NULL)
        return NULL;
    while (p->nstack > 0)
        entity_fini(&p->stack[--p->nstack]);
    entity_fini(&p->uu_ent);
    g_free(p->stack);
    g_free(p->hbuf);
    g_free(p->lbuf);
    g_free(p->out);
    g_array_unref(p->fields);
    g_free(p);
    return NULL;
}

void *mg_mime_user(const struct mg_mime *p)
{
    return p->user;
}

uint64_t mg_mime_offset(const struct mg_mime *p)
{
    return p->err != MG_OK ? p->err_off : p->pos;
}

enum mg_status mg_mime_execute(struct mg_mime *p, const char *buf, size_t len)
{
    if (p->err != MG_OK)
        return p->err;
    if (p->finished) {
        p->err = MG_ERR_STATE;
        p->err_off = p->pos;
        return p->err;
    }
    if (len == 0)
        return MG_OK;
    p->base = p->pos;
    p->pos += len; /* offsets of defects use base + index */
    run(p, buf, len);
    return p->err;
}

enum mg_status mg_mime_finish(struct mg_mime *p)
{
    bool final, blanks;
    int k;

    if (p->err != MG_OK)
        return p->err;
    if (p->finished) {
        p->err = MG_ERR_STATE;
        return p->err;
    }
    p->finished = true;
    p->base = p->pos;
    switch (p->state) {
    case S_HDR:
    case S_HDR_CR:
        if (p->hlen > p->hline) {
            /* last line without a line end */
            const char *line = p->hbuf + p->hline;
            size_t n = p->hlen - p->hline;
            while (n > 0 && (line[n - 1] == '\r' || line[n - 1] == '\n'))
                n--;
            /* a bare CR at the end completes the empty line; a
             * delimiter ends the block too */
            if (n == 0 ||
                (line[0] == '-' && (k = match_delimiter(p, line, n, &final, &blanks)) >= 0)) {
                header_line(p, p->pos);
                break;
            }
        }
        if (p->hlen > 0 || p->nstack > 1)
            defect(p, top(p), MG_MIME_DEFECT_HEADER_TRUNCATED, p->pos);
        end_headers(p, p->pos);
        p->state = S_BOL; /* a message part ends here with nothing in it */
        break;
    case S_DASH:
    case S_DASH_CR:
        k = match_delimiter(p, p->lbuf, p->llen, &final, &blanks);
        if (k >= 0) {
            delimiter(p, k, final, blanks, p->lstart, p->pos);
        } else {
            dash_is_content(p);
            if (p->state == S_DASH_CR) {
                p->eol[0] = '\r';
                p->eol_len = 1;
                p->eol_ptr = NULL;
                p->eol_off = p->lstart + p->llen;
            }
        }
        break;
    default:
        break;
    }
    /* At the end of input the held line end is content (as GMime). */
    if (p->state != S_HDR && p->state != S_HDR_CR)
        release_eol(p);
    flush_span(p);
    if (p->nstack > 1 ||
        (p->nstack == 1 && top(p)->info.kind == MG_MIME_MULTIPART && !top(p)->epilogue))
        defect(p, NULL, MG_MIME_DEFECT_TRUNCATED, p->pos);
    while (p->nstack > 0 && !failed(p)) {
        if (p->state == S_HDR || p->state == S_HDR_CR) {
            /* an entity opened by a delimiter at the very end */
            end_headers(p, p->pos);
            p->state = S_BOL;
        }
        close_top(p, p->pos);
    }
    p->state = S_DONE;
    return p->err;
}
