/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * NAME
 *	test_limits 1
 * SUMMARY
 *	unit test: the push parser's limits hold on hostile sizes
 * SYNOPSIS
 *	test_limits [--tap] [-p /limits/...]
 * DESCRIPTION
 *	Messages generated in memory (or on the fly) and fed to
 *	mg_mime_execute in 64 KiB chunks, with the default limits:
 *
 *	/limits/parts: 12,000 body parts; the part limit (10,000) ends
 *	parsing with one opaque rest part holding every remaining byte.
 *	/limits/depth: 300 nested multiparts: depth-limit defect, the
 *	deepest entity at depth < 64, quick. /limits/depth-huge: 100,000
 *	levels, still quick (no quadratic work).
 *	/limits/header-line: a 2 MiB header line at the top and in a body
 *	part: header-block-too-long, the rest of the entity is opaque body
 *	and no byte is lost. /limits/header-line-long: a 100 KiB line
 *	inside the header limit only raises header-line-too-long.
 *	/limits/big-base64: a message of MUGAIKA_LIMITS_BIG_MIB MiB
 *	(default 100): a 1 MiB text part and a base64 attachment of the
 *	rest, generated chunk by chunk and never stored: the decoded size
 *	and SHA-256 match the generator's, no byte is lost, and peak RSS
 *	grows by less than 16 MiB.
 *
 *	Every case must finish within CASE_SECONDS (timings are printed
 *	with g_test_message).
 * ENVIRONMENT
 *	MUGAIKA_LIMITS_BIG_MIB: size of the big-base64 message in MiB
 *	(at least 2). The sanitizer build runs the default; lower it only
 *	for a quick local run.
 */
#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include <glib.h>

#include <mugaika/mime.h>

#define CHUNK          (64 * 1024)
#define CASE_SECONDS   30.0
#define RSS_GROWTH_MAX (16 * 1024 * 1024)

/* What a parse saw. */
struct seen {
    unsigned begins;
    unsigned ends;
    unsigned open;
    unsigned max_depth;
    unsigned opaque_rest; /* parts begun with the part-limit defect */
    uint64_t defects;     /* bit mask of enum mg_mime_defect */
    uint64_t body_bytes;  /* all leaves */
    char *track;          /* path whose body is hashed (owned) */
    GChecksum *sha;       /* of the tracked body */
    uint64_t track_bytes;
    uint64_t track_body_offset;
    bool track_seen;
    uint64_t track_end;
    char *last_path; /* of the last part begun (owned) */
};

static void seen_init(struct seen *s, const char *track)
{
    memset(s, 0, sizeof(*s));
    s->track = g_strdup(track);
    s->sha = g_checksum_new(G_CHECKSUM_SHA256);
}

static void seen_fini(struct seen *s)
{
    g_free(s->track);
    g_free(s->last_path);
    g_checksum_free(s->sha);
}

static bool has_defect(const struct seen *s, enum mg_mime_defect d)
{
    return (s->defects & ((uint64_t)1 << d)) != 0;
}

static bool tracked(const struct seen *s, const struct mg_mime_part *part)
{
    return s->track != NULL && strcmp(part->path, s->track) == 0;
}

static int on_begin(struct mg_mime *p, const struct mg_mime_part *part)
{
    struct seen *s = mg_mime_user(p);

    s->begins++;
    s->open++;
    if (part->depth > s->max_depth)
        s->max_depth = part->depth;
    g_free(s->last_path);
    s->last_path = g_strdup(part->path);
    if (tracked(s, part)) {
        s->track_seen = true;
        s->track_body_offset = part->body_offset;
    }
    return 0;
}

static int on_end(struct mg_mime *p, const struct mg_mime_part *part)
{
    struct seen *s = mg_mime_user(p);

    g_assert_cmpuint(s->open, >, 0);
    s->open--;
    s->ends++;
    if (tracked(s, part))
        s->track_end = part->end_offset;
    return 0;
}

static int on_defect(struct mg_mime *p, const struct mg_mime_part *part, enum mg_mime_defect d,
                     uint64_t off)
{
    struct seen *s = mg_mime_user(p);

    (void)off;
    g_assert_cmpuint(d, <, MG_MIME_DEFECT_COUNT);
    s->defects |= (uint64_t)1 << d;
    /* open_rest reports part-limit once globally and once on the rest part */
    if (d == MG_MIME_DEFECT_PART_LIMIT && part != NULL)
        s->opaque_rest++;
    return 0;
}

static int on_body(struct mg_mime *p, const struct mg_mime_part *part, const char *data, size_t len)
{
    struct seen *s = mg_mime_user(p);

    s->body_bytes += len;
    if (tracked(s, part)) {
        g_checksum_update(s->sha, (const guchar *)data, (gssize)len);
        s->track_bytes += len;
    }
    return 0;
}

static const struct mg_mime_settings settings = {
    .on_part_begin = on_begin,
    .on_defect = on_defect,
    .on_body = on_body,
    .on_part_end = on_end,
};

/* Parses msg in CHUNK pieces with the default limits; returns seconds. */
static double parse_buffer(const char *msg, size_t len, struct seen *s)
{
    GTimer *t = g_timer_new();
    struct mg_mime *p = mg_mime_new(&settings, NULL, s);

    for (size_t pos = 0; pos < len; pos += CHUNK) {
        size_t n = MIN((size_t)CHUNK, len - pos);
        g_assert_cmpint(mg_mime_execute(p, msg + pos, n), ==, MG_OK);
    }
    g_assert_cmpint(mg_mime_finish(p), ==, MG_OK);
    mg_mime_free(p);
    double secs = g_timer_elapsed(t, NULL);
    g_timer_destroy(t);
    g_assert_cmpuint(s->begins, ==, s->ends);
    g_assert_cmpuint(s->open, ==, 0);
    return secs;
}

static char *sha256_hex(const char *data, size_t len)
{
    return g_compute_checksum_for_data(G_CHECKSUM_SHA256, (const guchar *)data, len);
}

static void check_time(const char *what, double secs, double max)
{
    g_test_message("%s: %.3f s", what, secs);
    g_assert_cmpfloat(secs, <, max);
}

/* ---------------------------------------------------------------- */

static void test_parts(void)
{
    struct mg_mime_limits lim;
    GString *m = g_string_new("From: a@example.org\r\n"
                              "Content-Type: multipart/mixed; boundary=\"p\"\r\n\r\n");
    struct seen s;
    uint64_t rest_start = 0;

    mg_mime_limits_default(&lim);
    for (unsigned i = 1; i <= 12000; i++) {
        /* child i is entity i + 1; the one after the limit is the rest */
        if (i == lim.parts)
            rest_start = m->len + strlen("--p\r\n");
        g_string_append_printf(m, "--p\r\nContent-Type: text/plain\r\n\r\npart %u\r\n", i);
    }
    g_string_append(m, "--p--\r\n");

    /* the rest part is child number limit (entity limit + 1) */
    char *rest_path = g_strdup_printf("%u", lim.parts);
    seen_init(&s, rest_path);
    double secs = parse_buffer(m->str, m->len, &s);
    check_time("12000 parts", secs, CASE_SECONDS);

    g_assert_true(has_defect(&s, MG_MIME_DEFECT_PART_LIMIT));
    g_assert_cmpuint(s.begins, <=, lim.parts + 1);
    g_assert_cmpuint(s.begins, >=, lim.parts);
    g_assert_cmpuint(s.opaque_rest, ==, 1);
    /* the rest part holds every byte from its start: nothing lost */
    g_assert_true(s.track_seen);
    g_assert_cmpuint(s.track_body_offset, ==, rest_start);
    g_assert_cmpuint(s.track_bytes, ==, m->len - rest_start);
    char *want = sha256_hex(m->str + rest_start, m->len - rest_start);
    g_assert_cmpstr(g_checksum_get_string(s.sha), ==, want);
    g_free(want);
    seen_fini(&s);
    g_free(rest_path);

    /* a lower limit degrades the same way */
    struct seen s2;
    seen_init(&s2, NULL);
    lim.parts = 100;
    GTimer *t = g_timer_new();
    struct mg_mime *p = mg_mime_new(&settings, &lim, &s2);
    g_assert_cmpint(mg_mime_execute(p, m->str, m->len), ==, MG_OK);
    g_assert_cmpint(mg_mime_finish(p), ==, MG_OK);
    mg_mime_free(p);
    check_time("12000 parts, limit 100", g_timer_elapsed(t, NULL), CASE_SECONDS);
    g_timer_destroy(t);
    g_assert_true(has_defect(&s2, MG_MIME_DEFECT_PART_LIMIT));
    g_assert_cmpuint(s2.begins, <=, 101);
    g_assert_cmpuint(s2.opaque_rest, ==, 1);
    g_assert_cmpuint(s2.begins, ==, s2.ends);
    seen_fini(&s2);
    g_string_free(m, TRUE);
}

/* levels nested multiparts around one text leaf */
static GString *nested(unsigned levels)
{
    GString *m = g_string_new(NULL);

    for (unsigned i = 0; i < levels; i++)
        g_string_append_printf(
            m, "Content-Type: multipart/mixed; boundary=\"b%u\"\r\n\r\n--b%u\r\n", i, i);
    g_string_append(m, "Content-Type: text/plain\r\n\r\ndeep\r\n");
    for (unsigned i = levels; i-- > 0;)
        g_string_append_printf(m, "--b%u--\r\n", i);
    return m;
}

static void test_depth(void)
{
    struct mg_mime_limits lim;
    GString *m = nested(300);
    struct seen s;

    mg_mime_limits_default(&lim);
    seen_init(&s, NULL);
    double secs = parse_buffer(m->str, m->len, &s);
    check_time("300 levels", secs, 5.0);
    g_assert_true(has_defect(&s, MG_MIME_DEFECT_DEPTH_LIMIT));
    g_assert_cmpuint(s.max_depth, <, lim.depth);
    g_assert_cmpuint(s.begins, <=, lim.depth);
    /* every outer delimiter is still found: the message ends cleanly */
    g_assert_false(has_defect(&s, MG_MIME_DEFECT_TRUNCATED));
    g_assert_false(has_defect(&s, MG_MIME_DEFECT_MISSING_FINAL_BOUNDARY));
    seen_fini(&s);
    g_string_free(m, TRUE);
}

static void test_depth_huge(void)
{
    GString *m = nested(100000);
    struct seen s;

    seen_init(&s, NULL);
    double secs = parse_buffer(m->str, m->len, &s);
    g_test_message("100000 levels: %zu bytes", m->len);
    check_time("100000 levels", secs, 10.0);
    g_assert_true(has_defect(&s, MG_MIME_DEFECT_DEPTH_LIMIT));
    g_assert_cmpuint(s.max_depth, <, 64);
    seen_fini(&s);
    g_string_free(m, TRUE);
}

#define HUGE_LINE (2 * 1024 * 1024)

static void test_header_line_top(void)
{
    GString *m = g_string_new("From: a@example.org\r\nSubject: ");
    struct seen s;

    for (size_t i = 0; i < HUGE_LINE; i++)
        g_string_append_c(m, (char)('a' + i % 26));
    g_string_append(m, "\r\nTo: b@example.org\r\nContent-Type: text/plain\r\n\r\nbody\r\n");

    seen_init(&s, "1");
    double secs = parse_buffer(m->str, m->len, &s);
    check_time("2 MiB header line", secs, CASE_SECONDS);
    g_assert_true(has_defect(&s, MG_MIME_DEFECT_HEADER_BLOCK_TOO_LONG) ||
                  has_defect(&s, MG_MIME_DEFECT_HEADER_LINE_TOO_LONG));
    g_assert_cmpuint(s.begins, ==, 1);
    g_assert_true(s.track_seen);
    /* the header block keeps at most the limit; everything after is body */
    g_assert_cmpuint(s.track_body_offset, <=, 256 * 1024);
    g_assert_cmpuint(s.track_bytes, ==, m->len - s.track_body_offset);
    g_assert_cmpuint(s.body_bytes, ==, s.track_bytes);
    char *want = sha256_hex(m->str + s.track_body_offset, m->len - s.track_body_offset);
    g_assert_cmpstr(g_checksum_get_string(s.sha), ==, want);
    g_free(want);
    seen_fini(&s);
    g_string_free(m, TRUE);
}

static void test_header_line_part(void)
{
    GString *m = g_string_new("Content-Type: multipart/mixed; boundary=\"h\"\r\n\r\n"
                              "--h\r\nContent-Type: text/plain\r\nX-Huge: ");
    struct seen s;

    for (size_t i = 0; i < HUGE_LINE; i++)
        g_string_append_c(m, (char)('A' + i % 26));
    g_string_append(m, "\r\n\r\nfirst body\r\n");
    size_t body_end = m->len - 2; /* the CRLF before a delimiter belongs to it */
    g_string_append(m, "--h\r\nContent-Type: text/plain\r\n\r\nsecond\r\n--h--\r\n");

    seen_init(&s, "1");
    double secs = parse_buffer(m->str, m->len, &s);
    check_time("2 MiB header line in a part", secs, CASE_SECONDS);
    g_assert_true(has_defect(&s, MG_MIME_DEFECT_HEADER_BLOCK_TOO_LONG) ||
                  has_defect(&s, MG_MIME_DEFECT_HEADER_LINE_TOO_LONG));
    /* multipart, the opaque part 1 and the intact part 2 */
    g_assert_cmpuint(s.begins, ==, 3);
    g_assert_cmpstr(s.last_path, ==, "2");
    g_assert_false(has_defect(&s, MG_MIME_DEFECT_MISSING_FINAL_BOUNDARY));
    g_assert_true(s.track_seen);
    g_assert_cmpuint(s.track_bytes, ==, body_end - s.track_body_offset);
    char *want = sha256_hex(m->str + s.track_body_offset, body_end - s.track_body_offset);
    g_assert_cmpstr(g_checksum_get_string(s.sha), ==, want);
    g_free(want);
    g_assert_cmpuint(s.body_bytes, ==, s.track_bytes + strlen("second"));
    seen_fini(&s);
    g_string_free(m, TRUE);
}

static void test_header_line_long(void)
{
    GString *m = g_string_new("Subject: ");
    struct seen s;

    for (size_t i = 0; i < 100 * 1024; i++)
        g_string_append_c(m, 'x');
    g_string_append(m, "\r\n\r\nbody\r\n");
    seen_init(&s, "1");
    double secs = parse_buffer(m->str, m->len, &s);
    check_time("100 KiB header line", secs, CASE_SECONDS);
    g_assert_true(has_defect(&s, MG_MIME_DEFECT_HEADER_LINE_TOO_LONG));
    g_assert_false(has_defect(&s, MG_MIME_DEFECT_HEADER_BLOCK_TOO_LONG));
    g_assert_cmpuint(s.track_bytes, ==, strlen("body\r\n"));
    seen_fini(&s);
    g_string_free(m, TRUE);
}

/* ---------------------------------------------------------------- */
/* the big message, generated chunk by chunk                         */

#define B64_RAW_LINE 57 /* 76 base64 characters */
#define B64_LINE     78 /* with CRLF */
#define TEXT_LINE    64 /* text part lines, CRLF included */

/* A message of mib MiB generated piece by piece: a text part of 1 MiB,
 * then a base64 attachment of mib - 1 MiB (encoded). */
struct bigmsg {
    int stage;           /* see bigmsg_next */
    uint64_t text_lines; /* still to produce */
    uint64_t b64_lines;  /* still to produce */
    uint64_t rng;
    uint64_t text_bytes; /* text part body, line ends included */
    uint64_t raw_bytes;  /* attachment, decoded */
    GChecksum *sha;      /* of the attachment, decoded */
};

static const char big_head[] = "From: big@example.org\r\n"
                               "Subject: large attachment\r\n"
                               "MIME-Version: 1.0\r\n"
                               "Content-Type: multipart/mixed; boundary=\"big\"\r\n\r\n"
                               "--big\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n";
static const char big_mid[] = "--big\r\nContent-Type: application/octet-stream; name=big.bin\r\n"
                              "Content-Transfer-Encoding: base64\r\n\r\n";
static const char big_tail[] = "--big--\r\n";

static uint64_t xorshift64(uint64_t *s)
{
    uint64_t x = *s;

    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    *s = x;
    return x;
}

static void b64_line(const unsigned char *raw, char *out)
{
    static const char abc[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

    for (int i = 0; i < B64_RAW_LINE; i += 3) {
        uint32_t v = (uint32_t)raw[i] << 16 | (uint32_t)raw[i + 1] << 8 | raw[i + 2];
        *out++ = abc[v >> 18];
        *out++ = abc[(v >> 12) & 63];
        *out++ = abc[(v >> 6) & 63];
        *out++ = abc[v & 63];
    }
    *out++ = '\r';
    *out = '\n';
}

static void bigmsg_init(struct bigmsg *g, guint64 mib)
{
    memset(g, 0, sizeof(*g));
    g->rng = 0x9e3779b97f4a7c15ULL;
    g->sha = g_checksum_new(G_CHECKSUM_SHA256);
    g->text_lines = (1 << 20) / TEXT_LINE;
    g->b64_lines = ((mib - 1) << 20) / B64_LINE;
}

static size_t copy_str(char *buf, const char *s, size_t n)
{
    memcpy(buf, s, n);
    return n;
}

/* Fills buf (CHUNK bytes) with the next piece: stages 0 head, 1 text
 * lines, 2 attachment head, 3 base64 lines, 4 tail. Returns its
 * length, 0 at the end. */
static size_t bigmsg_next(struct bigmsg *g, char *buf)
{
    size_t n = 0;

    switch (g->stage++) {
    case 0:
        return copy_str(buf, big_head, sizeof(big_head) - 1);
    case 1:
        while (g->text_lines > 0 && n + TEXT_LINE <= CHUNK) {
            char line[TEXT_LINE + 1];
            g_snprintf(line, sizeof(line), "%-60" G_GUINT64_FORMAT " x\r\n", g->text_lines);
            memcpy(buf + n, line, TEXT_LINE);
            g->text_lines--;
            n += TEXT_LINE;
        }
        g->text_bytes += n;
        if (g->text_lines > 0)
            g->stage = 1;
        return n;
    case 2:
        return copy_str(buf, big_mid, sizeof(big_mid) - 1);
    case 3:
        while (g->b64_lines > 0 && n + B64_LINE <= CHUNK) {
            unsigned char raw[B64_RAW_LINE + 7];
            for (int i = 0; i < B64_RAW_LINE; i += 8) {
                uint64_t r = xorshift64(&g->rng);
                memcpy(raw + i, &r, 8);
            }
            b64_line(raw, buf + n);
            g_checksum_update(g->sha, raw, B64_RAW_LINE);
            g->raw_bytes += B64_RAW_LINE;
            n += B64_LINE;
            g->b64_lines--;
        }
        if (g->b64_lines > 0)
            g->stage = 3;
        return n;
    case 4:
        return copy_str(buf, big_tail, sizeof(big_tail) - 1);
    default:
        return 0;
    }
}

/* kB from a /proc/self/status field ("VmRSS", "VmHWM"); -1 if absent */
static long proc_status_kb(const char *field)
{
    char *text = NULL;
    long kb = -1;
    size_t fl = strlen(field);

    if (!g_file_get_contents("/proc/self/status", &text, NULL, NULL))
        return -1;
    char **lines = g_strsplit(text, "\n", -1);
    for (char **l = lines; *l != NULL; l++) {
        if (strncmp(*l, field, fl) == 0 && (*l)[fl] == ':') {
            kb = strtol(*l + fl + 1, NULL, 10);
            break;
        }
    }
    g_strfreev(lines);
    g_free(text);
    return kb;
}

/* Resets VmHWM to the current RSS (Linux >= 4.0); false if not possible. */
static bool reset_peak_rss(void)
{
    FILE *f = fopen("/proc/self/clear_refs", "w");
    bool ok;

    if (f == NULL)
        return false;
    ok = fputs("5", f) >= 0;
    ok = fclose(f) == 0 && ok;
    return ok;
}

static void test_big_base64(void)
{
    const char *env = g_getenv("MUGAIKA_LIMITS_BIG_MIB");
    guint64 mib = 100;
    struct bigmsg g;
    struct seen s;
    struct rusage ru;

    if (env != NULL && *env != '\0')
        mib = g_ascii_strtoull(env, NULL, 10);
    g_assert_cmpuint(mib, >=, 2);
    bigmsg_init(&g, mib);

    seen_init(&s, "2");
    char *buf = g_malloc(CHUNK);
    GTimer *t = g_timer_new();
    struct mg_mime *p = mg_mime_new(&settings, NULL, &s);
    size_t n;
    uint64_t total = 0, chunks = 0;

    /* baseline: the peak is reset to the current RSS where possible */
    bool hwm = reset_peak_rss();
    long base_kb = proc_status_kb("VmRSS");
    getrusage(RUSAGE_SELF, &ru);
    long maxrss_before = ru.ru_maxrss;
    long sampled_max = base_kb;

    while ((n = bigmsg_next(&g, buf)) > 0) {
        g_assert_cmpuint(n, <=, CHUNK);
        g_assert_cmpint(mg_mime_execute(p, buf, n), ==, MG_OK);
        total += n;
        if (++chunks % 64 == 0) {
            long kb = proc_status_kb("VmRSS");
            sampled_max = MAX(sampled_max, kb);
        }
    }
    g_assert_cmpint(mg_mime_finish(p), ==, MG_OK);
    double secs = g_timer_elapsed(t, NULL);

    long peak_kb = hwm ? proc_status_kb("VmHWM") : -1;
    getrusage(RUSAGE_SELF, &ru);
    long growth_kb = peak_kb >= 0 && base_kb >= 0 ? peak_kb - base_kb : sampled_max - base_kb;
    g_test_message("big message: %" G_GUINT64_FORMAT " bytes (%" G_GUINT64_FORMAT
                   " MiB), %.2f s, RSS %ld kB -> peak %ld kB (%s), ru_maxrss %ld -> %ld kB",
                   total, mib, secs, base_kb, hwm ? peak_kb : sampled_max,
                   hwm ? "VmHWM after clear_refs" : "sampled VmRSS", maxrss_before,
                   (long)ru.ru_maxrss);
    mg_mime_free(p);

    g_assert_cmpuint(total, >=, (mib << 20) - 2 * B64_LINE);
    g_assert_true(s.track_seen);
    g_assert_cmpuint(s.track_bytes, ==, g.raw_bytes);
    /* the CRLF before a delimiter belongs to it */
    g_assert_cmpuint(s.body_bytes, ==, g.text_bytes - 2 + g.raw_bytes);
    g_assert_cmpstr(g_checksum_get_string(s.sha), ==, g_checksum_get_string(g.sha));
    g_assert_cmpuint(s.defects, ==, 0);
    g_assert_cmpuint(s.begins, ==, 3);
    g_assert_cmpint(growth_kb, <, RSS_GROWTH_MAX / 1024);
    check_time("big message", secs, CASE_SECONDS);

    g_timer_destroy(t);
    g_free(buf);
    g_checksum_free(g.sha);
    seen_fini(&s);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/limits/parts", test_parts);
    g_test_add_func("/limits/depth", test_depth);
    g_test_add_func("/limits/depth-huge", test_depth_huge);
    g_test_add_func("/limits/header-line", test_header_line_top);
    g_test_add_func("/limits/header-line-part", test_header_line_part);
    g_test_add_func("/limits/header-line-long", test_header_line_long);
    g_test_add_func("/limits/big-base64", test_big_base64);
    return g_test_run();
}
