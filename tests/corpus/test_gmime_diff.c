/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * NAME
 *	test_gmime_diff 1
 * SUMMARY
 *	corpus differential: mugaika against GMime 3 as an oracle
 * SYNOPSIS
 *	test_gmime_diff [gtest options]
 *	(environment: MUGAIKA_SHARED=../shared; optional
 *	MUGAIKA_CORPUS_ONLY=substring, MUGAIKA_CORPUS_VERBOSE=1)
 * DESCRIPTION
 *	Every mail file of the MIME sets of ../shared/corpus (chosen by
 *	corpus_is_mail(); mime-is-broken excluded) is parsed whole by
 *	mg_inspect and by g_mime_parser_construct_message() (format
 *	GMIME_FORMAT_MESSAGE, default options). The ordered lists of leaf
 *	parts are compared: content type (lower case), filename, and the
 *	transfer-decoded bytes (size and SHA-256; mugaika's bytes are
 *	collected by a second, bare push-parser pass that must match the
 *	JSON). docs/parser-divergences.md explains every rule below.
 *
 *	Comparison conventions (applied to every message):
 *	- uuencoded blocks found in text parts (origin "uuencode") are
 *	  left out: GMime does not look for them, and the text part still
 *	  carries their bytes on both sides;
 *	- message/rfc822 with a base64 or quoted-printable body is an
 *	  opaque leaf in mugaika; GMime 3.2 also makes it a plain
 *	  GMimePart (type message/rfc822, not application/octet-stream),
 *	  so such leaves are compared like any other (type, filename,
 *	  decoded bytes) and counted;
 *	- an mbox file is cut to its first message; GMime gets it without
 *	  the From_ line, which mugaika skips itself;
 *	- GMime has no notion of a bare CR line end: an input whose lines
 *	  all end in bare CR is given to GMime with CR turned into LF, and
 *	  the bodies are then compared with line ends normalised.
 *
 *	A message that still differs is checked against the documented
 *	divergences (struct category below). Each has a signature that is
 *	verified, not assumed: the lists are compared again with only the
 *	differences the category explains allowed. Every message that
 *	does not agree exactly gets one line "DIFF file: categories:
 *	detail [defects]" marked explained or UNEXPLAINED.
 *
 *	Asserted: exact agreement (after the conventions) is at least
 *	MIN_EXACT_PCT, and exact plus explained is at least MIN_AGREE_PCT
 *	percent of the messages. Categories that are mugaika bugs are
 *	never "explained".
 * DIAGNOSTICS
 *	Exit 77 (skip) when ../shared is absent.
 */
#include <string.h>

#include <gmime/gmime.h>

#include "corpus_util.h"

/* Thresholds: see docs/parser-divergences.md for the measured figures. */
#define MIN_AGREE_PCT 98.0
#define MIN_EXACT_PCT 92.0

enum cat_id {
    C_BARE_CR,        /* convention: bare-CR input converted for GMime */
    C_BASE64_TAIL,    /* mugaika decodes a partial last quantum / data after '=' */
    C_EMPTY_PART,     /* mugaika reports empty body parts GMime drops */
    C_NO_BOUNDARY,    /* multipart without boundary: one opaque leaf */
    C_INVALID_TYPE,   /* invalid Content-Type: text/plain vs octet-stream */
    C_GMIME_EOF_CR,   /* GMime keeps a CR before a close delimiter at EOF */
    C_FILENAME_CTRL,  /* control characters in a decoded filename */
    C_FILENAME_GUESS, /* undecodable filename: charset guess vs raw bytes */
    C_DUPLICATE_CT,   /* Content-Type given twice: first vs last */
    C_GMIME_REJECTS,  /* GMime builds no message; mugaika parses it */
    C_LIMIT,          /* a mugaika limit made an entity opaque */
    C_JUNK_DELIM,     /* "--boundary" followed by other text: no delimiter */
    C_LENIENT_PARAM,  /* parameter found after a missing ';' */
    C_GMIME_LF_EOL,   /* GMime cuts a byte before a bare-LF delimiter */
    C_GMIME_LONG_BND, /* GMime cannot match a boundary of several KiB */
    C_BUG_UU_BLANKS,  /* mugaika bug: x-uuencode lines lose trailing blanks */
    C_BUG_QP_SOFT,    /* mugaika bug: final soft line break kept as '=' */
    C_OTHER,          /* anything else */
    C_COUNT
};

static const struct category {
    const char *name;
    bool explained; /* a documented, intended divergence (never a bug) */
} categories[C_COUNT] = {
    [C_BARE_CR] = {"bare-cr", true},
    [C_BASE64_TAIL] = {"base64-tail", true},
    [C_EMPTY_PART] = {"empty-part", true},
    [C_NO_BOUNDARY] = {"multipart-no-boundary", true},
    [C_INVALID_TYPE] = {"invalid-content-type", true},
    [C_GMIME_EOF_CR] = {"gmime-cr-before-eof-delimiter", true},
    [C_FILENAME_CTRL] = {"filename-control-chars", true},
    [C_FILENAME_GUESS] = {"filename-charset-guess", true},
    [C_DUPLICATE_CT] = {"duplicate-content-type", true},
    [C_GMIME_REJECTS] = {"gmime-no-message", true},
    [C_LIMIT] = {"mugaika-limit", true},
    [C_JUNK_DELIM] = {"delimiter-with-trailing-text", true},
    [C_LENIENT_PARAM] = {"parameter-without-semicolon", true},
    [C_GMIME_LF_EOL] = {"gmime-cut-before-bare-lf-delimiter", true},
    [C_GMIME_LONG_BND] = {"gmime-long-boundary", true},
    [C_BUG_UU_BLANKS] = {"BUG-uuencode-trailing-blanks", false},
    [C_BUG_QP_SOFT] = {"BUG-qp-final-soft-break", false},
    [C_OTHER] = {"other", false},
};

struct gm_leaf {
    char *content_type;
    char *filename;
    bool type_default; /* no Content-Type field */
    GByteArray *bytes;
};

static void gm_leaf_free(gpointer data)
{
    struct gm_leaf *l = data;

    g_free(l->content_type);
    g_free(l->filename);
    g_byte_array_unref(l->bytes);
    g_free(l);
}

static void gm_add_leaf(GMimePart *part, GPtrArray *out)
{
    struct gm_leaf *l = g_new0(struct gm_leaf, 1);
    GMimeObject *obj = GMIME_OBJECT(part);
    GMimeContentType *ct = g_mime_object_get_content_type(obj);
    GMimeDataWrapper *content = g_mime_part_get_content(part);
    char *type = ct ? g_mime_content_type_get_mime_type(ct) : g_strdup("text/plain");
    GMimeStream *mem = g_mime_stream_mem_new();

    g_mime_stream_mem_set_owner(GMIME_STREAM_MEM(mem), FALSE);
    if (content)
        g_mime_data_wrapper_write_to_stream(content, mem);
    l->bytes = g_mime_stream_mem_get_byte_array(GMIME_STREAM_MEM(mem));
    l->content_type = g_ascii_strdown(type, -1);
    l->filename = g_strdup(g_mime_part_get_filename(part));
    l->type_default = g_mime_object_get_header(obj, "Content-Type") == NULL;
    g_free(type);
    g_object_unref(mem);
    g_ptr_array_add(out, l);
}

static void gm_walk(GMimeObject *obj, GPtrArray *out, unsigned depth)
{
    if (obj == NULL || depth > 1000)
        return;
    if (GMIME_IS_MULTIPART(obj)) {
        GMimeMultipart *mp = GMIME_MULTIPART(obj);
        int n = g_mime_multipart_get_count(mp);

        for (int i = 0; i < n; i++)
            gm_walk(g_mime_multipart_get_part(mp, i), out, depth + 1);
    } else if (GMIME_IS_MESSAGE_PART(obj)) {
        GMimeMessage *m = g_mime_message_part_get_message(GMIME_MESSAGE_PART(obj));

        if (m != NULL)
            gm_walk(g_mime_message_get_mime_part(m), out, depth + 1);
    } else if (GMIME_IS_PART(obj)) {
        gm_add_leaf(GMIME_PART(obj), out);
    }
}

/* GMime's leaves, or NULL when it constructs no message. */
static GPtrArray *gmime_leaves(const char *data, size_t len)
{
    GMimeStream *stream = g_mime_stream_mem_new_with_buffer(data, len);
    GMimeParser *parser = g_mime_parser_new_with_stream(stream);
    GMimeMessage *msg;
    GPtrArray *out = NULL;

    g_mime_parser_set_format(parser, GMIME_FORMAT_MESSAGE);
    msg = g_mime_parser_construct_message(parser, NULL);
    if (msg != NULL) {
        out = g_ptr_array_new_with_free_func(gm_leaf_free);
        gm_walk(g_mime_message_get_mime_part(msg), out, 0);
        g_object_unref(msg);
    }
    g_object_unref(parser);
    g_object_unref(stream);
    return out;
}

/* Are all line ends bare CRs (an old Mac OS file)? */
static bool bare_cr_input(const char *data, size_t len)
{
    size_t cr = 0, lf = 0;

    for (size_t i = 0; i < len; i++) {
        if (data[i] == '\r') {
            if (i + 1 < len && data[i + 1] == '\n')
                return false;
            cr++;
        } else if (data[i] == '\n') {
            lf++;
        }
    }
    return cr > lf;
}

/* The input GMime gets: no From_ line, bare CR made LF. Owned. */
static GByteArray *gmime_input(const char *data, size_t len, bool bare_cr)
{
    GByteArray *b = g_byte_array_new();

    if (len >= 5 && memcmp(data, "From ", 5) == 0) {
        const char *nl = memchr(data, bare_cr ? '\r' : '\n', len);
        size_t skip = nl ? (size_t)(nl - data) + 1 : len;
        data += skip;
        len -= skip;
    }
    g_byte_array_append(b, (const guint8 *)data, (guint)len);
    if (bare_cr) {
        for (guint i = 0; i < b->len; i++) {
            if (b->data[i] == '\r')
                b->data[i] = '\n';
        }
    }
    return b;
}

/* a with every CRLF and bare CR made LF. Owned. */
static GByteArray *lf_only(const GByteArray *a)
{
    GByteArray *b = g_byte_array_sized_new(a->len);

    for (guint i = 0; i < a->len; i++) {
        guint8 c = a->data[i];
        if (c == '\r') {
            if (i + 1 < a->len && a->data[i + 1] == '\n')
                continue;
            c = '\n';
        }
        g_byte_array_append(b, &c, 1);
    }
    return b;
}

static bool bytes_equal(const GByteArray *a, const GByteArray *b)
{
    return a->len == b->len && (a->len == 0 || memcmp(a->data, b->data, a->len) == 0);
}

/* Is b a prefix of a, with a longer? */
static bool proper_prefix(const GByteArray *b, const GByteArray *a)
{
    return b->len < a->len && (b->len == 0 || memcmp(a->data, b->data, b->len) == 0);
}

struct cmp {
    const char *data; /* the input */
    size_t len;
    bool bare_cr;    /* line ends normalised before comparing bodies */
    bool relaxed;    /* documented divergences allowed */
    bool input_eol;  /* the input ends with a line end */
    unsigned fired;  /* bit mask of categories that explained something */
    char *detail;    /* first difference left (owned) */
    enum cat_id bug; /* C_OTHER, or a bug signature seen at that difference */
};

/* Does the input hold the last 4 bytes of a, then a bare LF and "--"? */
static bool bare_lf_delimiter_after(const struct cmp *c, const GByteArray *a)
{
    guint8 pat[7];

    memcpy(pat, a->data + a->len - 4, 4);
    memcpy(pat + 4, "\n--", 3);
    return memmem(c->data, c->len, pat, sizeof(pat)) != NULL;
}

static bool body_equal(const struct corpus_part *a, const struct gm_leaf *b, struct cmp *c)
{
    if (bytes_equal(a->bytes, b->bytes))
        return true;
    if (c->bare_cr) {
        GByteArray *x = lf_only(a->bytes), *y = lf_only(b->bytes);
        bool eq = bytes_equal(x, y);
        g_byte_array_unref(x);
        g_byte_array_unref(y);
        if (eq) {
            c->fired |= 1u << C_BARE_CR;
            return true;
        }
    }
    if (!c->relaxed)
        return false;
    if (g_strcmp0(a->cte, "base64") == 0 && proper_prefix(b->bytes, a->bytes) &&
        (corpus_part_has(a, "base64-after-end") ||
         (corpus_part_has(a, "base64-padding") && a->bytes->len - b->bytes->len <= 2))) {
        c->fired |= 1u << C_BASE64_TAIL;
        return true;
    }
    if (!c->input_eol && b->bytes->len == a->bytes->len + 1 && proper_prefix(a->bytes, b->bytes) &&
        b->bytes->data[a->bytes->len] == '\r') {
        c->fired |= 1u << C_GMIME_EOF_CR;
        return true;
    }
    if (a->bytes->len >= 4 && a->bytes->len == b->bytes->len + 1 &&
        proper_prefix(b->bytes, a->bytes) && a->bytes->data[a->bytes->len - 1] != '\r' &&
        bare_lf_delimiter_after(c, a->bytes)) {
        c->fired |= 1u << C_GMIME_LF_EOL;
        return true;
    }
    return false;
}

/* Filenames equal once control characters are blanks? */
static bool same_but_controls(const char *a, const char *b)
{
    if (strlen(a) != strlen(b))
        return false;
    for (; *a; a++, b++) {
        char x = (unsigned char)*a < ' ' ? ' ' : *a, y = (unsigned char)*b < ' ' ? ' ' : *b;
        if (x != y)
            return false;
    }
    return true;
}

static bool filename_equal(const struct corpus_part *a, const struct gm_leaf *b, struct cmp *c)
{
    if (g_strcmp0(a->filename, b->filename) == 0)
        return true;
    if (!c->relaxed)
        return false;
    if (corpus_part_has(a, "bad-content-type") && b->filename == NULL) {
        c->fired |= 1u << C_INVALID_TYPE;
        return true;
    }
    if (a->filename == NULL || b->filename == NULL)
        return false;
    if (same_but_controls(a->filename, b->filename)) {
        c->fired |= 1u << C_FILENAME_CTRL;
        return true;
    }
    if (!g_utf8_validate(b->filename, -1, NULL) || strstr(b->filename, "\xef\xbf\xbd")) {
        c->fired |= 1u << C_FILENAME_GUESS;
        return true;
    }
    return false;
}

static bool type_equal(const struct corpus_part *a, const struct gm_leaf *b, struct cmp *c)
{
    if (strcmp(a->content_type, b->content_type) == 0)
        return true;
    if (c->relaxed && corpus_part_has(a, "bad-content-type") &&
        strcmp(b->content_type, "application/octet-stream") == 0) {
        c->fired |= 1u << C_INVALID_TYPE;
        return true;
    }
    return false;
}

static void note_bug(const struct corpus_part *a, const struct gm_leaf *b, struct cmp *c)
{
    if (g_strcmp0(a->cte, "x-uuencode") == 0 && corpus_part_has(a, "uu-bad-line") &&
        a->bytes->len < b->bytes->len)
        c->bug = C_BUG_UU_BLANKS;
    else if (g_strcmp0(a->cte, "quoted-printable") == 0 && a->bytes->len == b->bytes->len + 1 &&
             proper_prefix(b->bytes, a->bytes) && a->bytes->data[b->bytes->len] == '=')
        c->bug = C_BUG_QP_SOFT;
}

/* Leaves left once the ones a relaxed comparison may drop are gone:
 * empty parts without Content-Type, multiparts without boundary. */
static GPtrArray *mg_kept(GPtrArray *mg, struct cmp *c)
{
    GPtrArray *out = g_ptr_array_new();

    for (guint i = 0; i < mg->len; i++) {
        struct corpus_part *l = mg->pdata[i];
        if (c->relaxed && l->size == 0 && l->type_default && l->filename == NULL &&
            !corpus_part_has(l, "bad-content-type")) {
            c->fired |= 1u << C_EMPTY_PART;
            continue;
        }
        if (c->relaxed && corpus_part_has(l, "multipart-no-boundary")) {
            c->fired |= 1u << C_NO_BOUNDARY;
            continue;
        }
        g_ptr_array_add(out, l);
    }
    return out;
}

static GPtrArray *gm_kept(GPtrArray *gm, struct cmp *c)
{
    GPtrArray *out = g_ptr_array_new();

    for (guint i = 0; i < gm->len; i++) {
        struct gm_leaf *l = gm->pdata[i];
        if (c->relaxed && l->bytes->len == 0 && l->type_default && l->filename == NULL) {
            c->fired |= 1u << C_EMPTY_PART;
            continue;
        }
        g_ptr_array_add(out, l);
    }
    return out;
}

/* true when the lists agree under c's rules; else c->detail says why. */
static bool compare(GPtrArray *mg_all, GPtrArray *gm_all, struct cmp *c)
{
    GPtrArray *mg = mg_kept(mg_all, c), *gm = gm_kept(gm_all, c);
    guint n = MIN(mg->len, gm->len);
    bool ok = true;

    for (guint i = 0; i < n && ok; i++) {
        struct corpus_part *a = mg->pdata[i];
        struct gm_leaf *b = gm->pdata[i];
        if (!type_equal(a, b, c)) {
            c->detail = g_strdup_printf("leaf %u (%s): type %s vs %s", i + 1, a->path,
                                        a->content_type, b->content_type);
            ok = false;
        } else if (!filename_equal(a, b, c)) {
            char *fa = corpus_printable(a->filename), *fb = corpus_printable(b->filename);
            c->detail =
                g_strdup_printf("leaf %u (%s): filename \"%s\" vs \"%s\"", i + 1, a->path, fa, fb);
            g_free(fa);
            g_free(fb);
            ok = false;
        } else if (!body_equal(a, b, c)) {
            c->detail = g_strdup_printf("leaf %u (%s %s cte=%s): %u vs %u bytes", i + 1, a->path,
                                        a->content_type, a->cte ? a->cte : "-", a->bytes->len,
                                        b->bytes->len);
            note_bug(a, b, c);
            ok = false;
        }
    }
    if (ok && mg->len != gm->len) {
        c->detail = g_strdup_printf("%u vs %u leaves; first extra: %s %s", mg->len, gm->len,
                                    n < mg->len ? "mugaika" : "gmime",
                                    n < mg->len ? ((struct corpus_part *)mg->pdata[n])->content_type
                                                : ((struct gm_leaf *)gm->pdata[n])->content_type);
        ok = false;
    }
    g_ptr_array_unref(mg);
    g_ptr_array_unref(gm);
    return ok;
}

/* Comma-separated codes of every defect in the JSON. Owned. */
static char *all_defects(JsonNode *root)
{
    JsonObject *o = json_node_get_object(root);
    JsonArray *parts = json_object_get_array_member(o, "parts");
    guint np = json_array_get_length(parts);
    GString *out = g_string_new(NULL);

    for (guint i = 0; i <= np; i++) {
        JsonObject *p = i < np ? json_array_get_object_element(parts, i) : o;
        JsonArray *d = json_object_get_array_member(p, "defects");
        for (guint j = 0; j < json_array_get_length(d); j++) {
            const char *code =
                json_object_get_string_member(json_array_get_object_element(d, j), "code");
            char *quoted = g_strconcat(",", code, ",", NULL);
            char *have = g_strconcat(",", out->str, ",", NULL);
            if (strstr(have, quoted) == NULL)
                g_string_append_printf(out, "%s%s", out->len ? "," : "", code);
            g_free(quoted);
            g_free(have);
        }
    }
    return g_string_free(out, FALSE);
}

static bool has_code(const char *codes, const char *code)
{
    char *a = g_strconcat(",", codes, ",", NULL), *b = g_strconcat(",", code, ",", NULL);
    bool r = strstr(a, b) != NULL;

    g_free(a);
    g_free(b);
    return r;
}

struct tally {
    unsigned messages;
    unsigned opaque_messages; /* leaves that are message/rfc822 kept opaque */
    unsigned exact;
    unsigned explained;
    unsigned per_cat[C_COUNT];
};

static void show_leaves(GPtrArray *mg, GPtrArray *gm)
{
    for (guint i = 0; i < mg->len; i++) {
        struct corpus_part *a = mg->pdata[i];
        char *fn = corpus_printable(a->filename);
        corpus_print("    mugaika %s %s fn=%s cte=%s %u\n", a->path, a->content_type, fn,
                     a->cte ? a->cte : "-", a->bytes->len);
        g_free(fn);
    }
    for (guint i = 0; gm && i < gm->len; i++) {
        struct gm_leaf *b = gm->pdata[i];
        char *fn = corpus_printable(b->filename);
        corpus_print("    gmime   %u %s fn=%s %u\n", i + 1, b->content_type, fn, b->bytes->len);
        g_free(fn);
    }
}

/* Is line (n bytes, no line end) "--" + one of the boundaries followed
 * by text that makes it no delimiter of any of them? */
static bool junk_delimiter(const char *line, size_t n, GPtrArray *boundaries)
{
    bool prefix = false;

    while (n > 0 && (line[n - 1] == '\r' || line[n - 1] == ' ' || line[n - 1] == '\t'))
        n--;
    if (n < 3 || line[0] != '-' || line[1] != '-')
        return false;
    for (guint i = 0; i < boundaries->len; i++) {
        const char *b = boundaries->pdata[i];
        size_t bl = strlen(b);
        if (n < 2 + bl || memcmp(line + 2, b, bl) != 0)
            continue;
        if (n == 2 + bl || (n == 4 + bl && memcmp(line + 2 + bl, "--", 2) == 0))
            return false; /* a delimiter */
        prefix = true;
    }
    return prefix;
}

static bool has_junk_delimiter(const char *data, size_t len)
{
    GPtrArray *boundaries = corpus_boundaries(data, len);
    const char *s = data, *end = data + len;
    bool found = false;

    while (s < end && !found && boundaries->len > 0) {
        const char *nl = memchr(s, '\n', (size_t)(end - s));
        const char *e = nl ? nl : end;
        found = junk_delimiter(s, (size_t)(e - s), boundaries);
        s = e + 1;
    }
    g_ptr_array_unref(boundaries);
    return found;
}

/* Length of the longest boundary parameter value in the message. */
static size_t longest_boundary(const char *data, size_t len)
{
    size_t best = 0;

    for (size_t i = 0; i + 9 < len; i++) {
        if (g_ascii_strncasecmp(data + i, "boundary=", 9) != 0)
            continue;
        size_t j = i + 9, n = 0;
        bool quoted = j < len && data[j] == '"';
        if (quoted)
            j++;
        while (j + n < len && data[j + n] != '\n' && data[j + n] != '\r' &&
               (quoted ? data[j + n] != '"' : data[j + n] != ';' && data[j + n] != ' '))
            n++;
        best = MAX(best, n);
    }
    return best;
}

/* Decides the categories of a message that did not agree exactly;
 * returns their bit mask and sets *detail (owned). */
static unsigned classify(GPtrArray *mg, GPtrArray *gm, const char *codes, struct cmp *base,
                         char **detail)
{
    struct cmp c = *base;

    if (gm != NULL && has_junk_delimiter(base->data, base->len)) {
        *detail = g_strdup(base->detail);
        return 1u << C_JUNK_DELIM;
    }
    if (gm == NULL) {
        *detail = g_strdup("GMime constructed no message");
        return has_code(codes, "header-no-colon") || has_code(codes, "header-continuation-first")
                   ? 1u << C_GMIME_REJECTS
                   : 1u << C_OTHER;
    }
    if (gm->len == 0 && mg->len > 0 && longest_boundary(base->data, base->len) > 4096) {
        *detail = g_strdup("GMime found no part: boundary of several KiB");
        return 1u << C_GMIME_LONG_BND;
    }
    c.relaxed = true;
    c.fired = 0;
    c.detail = NULL;
    c.bug = C_OTHER;
    if (compare(mg, gm, &c)) {
        *detail = g_strdup(base->detail);
        return c.fired;
    }
    *detail = c.detail;
    if (c.bug != C_OTHER)
        return 1u << c.bug;
    if (has_code(codes, "boundary-too-long") || has_code(codes, "depth-limit") ||
        has_code(codes, "part-limit"))
        return 1u << C_LIMIT;
    if (has_code(codes, "duplicate-content-type"))
        return 1u << C_DUPLICATE_CT;
    if (has_code(codes, "param-malformed") && mg->len > gm->len)
        return 1u << C_LENIENT_PARAM;
    return 1u << C_OTHER;
}

static void diff_one(const char *root, const char *rel, struct tally *t, bool verbose)
{
    size_t len, first;
    char *data = corpus_read(root, rel, &len);
    GPtrArray *mg, *gm, *mg_mime;
    GByteArray *gin;
    JsonNode *json = NULL;
    struct cmp c = {0};
    unsigned cats;
    bool explained;
    char *codes, *detail = NULL;
    GString *names;

    if (!corpus_is_mail(rel, data, len)) {
        g_free(data);
        return;
    }
    first = corpus_first_message(rel, data, len);
    t->messages++;
    mg = corpus_mugaika_parts(data, first, CORPUS_LEAVES | CORPUS_BYTES, &json);
    g_assert_nonnull(mg);
    mg_mime = g_ptr_array_new();
    for (guint i = 0; i < mg->len; i++) {
        struct corpus_part *l = mg->pdata[i];
        if (strcmp(l->origin, "uuencode") != 0)
            g_ptr_array_add(mg_mime, l);
        if (l->message_leaf)
            t->opaque_messages++;
    }
    c.data = data;
    c.len = first;
    c.bare_cr = bare_cr_input(data, first);
    c.input_eol = first > 0 && (data[first - 1] == '\n' || data[first - 1] == '\r');
    c.bug = C_OTHER;
    gin = gmime_input(data, first, c.bare_cr);
    gm = gmime_leaves((const char *)gin->data, gin->len);
    codes = all_defects(json);
    if (verbose)
        show_leaves(mg_mime, gm);
    if (gm != NULL && compare(mg_mime, gm, &c) && (c.fired & ~(1u << C_BARE_CR)) == 0) {
        t->exact++;
        if (c.fired)
            t->per_cat[C_BARE_CR]++;
        goto out;
    }
    cats = classify(mg_mime, gm, codes, &c, &detail);
    names = g_string_new(NULL);
    explained = true;
    for (int k = 0; k < C_COUNT; k++) {
        if (cats & (1u << k)) {
            t->per_cat[k]++;
            explained = explained && categories[k].explained;
            g_string_append_printf(names, "%s%s", names->len ? "," : "", categories[k].name);
        }
    }
    if (explained)
        t->explained++;
    corpus_print("DIFF %s: %s: %s: %s [defects: %s]\n", rel,
                 explained ? "explained" : "UNEXPLAINED", names->str, detail ? detail : "-",
                 *codes ? codes : "-");
    g_string_free(names, TRUE);
out:
    g_free(detail);
    g_free(c.detail);
    g_free(codes);
    json_node_unref(json);
    g_byte_array_unref(gin);
    g_ptr_array_unref(mg_mime);
    g_ptr_array_unref(mg);
    if (gm)
        g_ptr_array_unref(gm);
    g_free(data);
}

static void test_diff(gconstpointer arg)
{
    const char *root = arg;
    GPtrArray *files = corpus_list(root, "");
    struct tally t = {0};
    const char *only = g_getenv("MUGAIKA_CORPUS_ONLY");
    bool verbose = g_getenv("MUGAIKA_CORPUS_VERBOSE") != NULL;
    double exact, agree;

    for (guint i = 0; i < files->len; i++) {
        if (only == NULL || strstr(files->pdata[i], only) != NULL)
            diff_one(root, files->pdata[i], &t, verbose);
    }
    g_ptr_array_unref(files);
    for (int k = 0; k < C_COUNT; k++)
        corpus_print("category %-36s %4u messages%s\n", categories[k].name, t.per_cat[k],
                     k == C_BARE_CR            ? " (agree after the bare-CR convention)"
                     : categories[k].explained ? " (explained)"
                                               : "");
    corpus_print("opaque message/rfc822 leaves compared: %u\n", t.opaque_messages);
    if (t.messages == 0)
        return;
    exact = 100.0 * t.exact / t.messages;
    agree = 100.0 * (t.exact + t.explained) / t.messages;
    corpus_print("GMime exact agreement: %u/%u messages (%.2f%%, threshold %.1f%%)\n", t.exact,
                 t.messages, exact, MIN_EXACT_PCT);
    corpus_print("GMime agreement with documented divergences: %u/%u messages (%.2f%%, threshold "
                 "%.1f%%)\n",
                 t.exact + t.explained, t.messages, agree, MIN_AGREE_PCT);
    g_test_message("GMime agreement: exact %u/%u, with documented divergences %u/%u", t.exact,
                   t.messages, t.exact + t.explained, t.messages);
    if (only != NULL)
        return;
    g_assert_cmpuint(t.messages, >, 800);
    g_assert_cmpfloat(exact, >=, MIN_EXACT_PCT);
    g_assert_cmpfloat(agree, >=, MIN_AGREE_PCT);
}

int main(int argc, char **argv)
{
    int rc;

    g_mime_init();
    rc = corpus_test_main(argc, argv, "/corpus/gmime-diff", test_diff);
    g_mime_shutdown();
    return rc;
}
