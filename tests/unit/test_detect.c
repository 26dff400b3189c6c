/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * NAME
 *	test_detect 1
 * SUMMARY
 *	libmagic detection and the process's pool of detectors
 * DESCRIPTION
 *	The pool is observed through /proc/self/maps: each libmagic cookie
 *	maps the compiled database (magic.mgc) once, so the number of
 *	mappings of that file is the number of live cookies. A detector
 *	given back to the pool stays alive (its mapping stays); beyond the
 *	pool's size it is freed; one taken from the pool is not made anew.
 */
#include <string.h>

#include <glib.h>

#include <mugaika/detect.h>

#define POOL 64 /* DETECT_POOL in src/detect/detect.c */

/* Mappings of libmagic's compiled database in this process. */
static unsigned mgc_maps(void)
{
    char *maps = NULL;
    unsigned n = 0;

    g_assert_true(g_file_get_contents("/proc/self/maps", &maps, NULL, NULL));
    for (char *p = maps; (p = strstr(p, ".mgc\n")) != NULL; p++)
        n++;
    g_free(maps);
    return n;
}

static const unsigned char PNG[] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n', 0,    0,    0,
                                    13,   'I', 'H', 'D', 'R',  0,    0,    0,    1,    0,    0,
                                    0,    1,   8,   6,   0,    0,    0,    0x1f, 0x15, 0xc4, 0x89};

static void test_buffer(void)
{
    const char *why = NULL;
    struct mg_detect *d = mg_detect_new(&why);

    g_assert_nonnull(d);
    g_assert_cmpstr(mg_detect_buffer(d, PNG, sizeof PNG), ==, "image/png");
    g_assert_cmpstr(mg_detect_buffer(d, "%PDF-1.4\n%\xe2\xe3\xcf\xd3\n", 15), ==,
                    "application/pdf");
    g_assert_cmpstr(mg_detect_buffer(d, "", 0), ==, "application/x-empty");
    g_assert_cmpstr(mg_detect_text(d, "plain words\n", 12), ==, "text/plain");
    g_assert_null(mg_detect_text(d, PNG, sizeof PNG));
    g_assert_null(mg_detect_free(d));
}

static void test_pool(void)
{
    const char *why = NULL;
    unsigned base = mgc_maps();
    struct mg_detect *a, *b, *many[POOL + 6];

    a = mg_detect_take(&why);
    b = mg_detect_take(&why);
    g_assert_nonnull(a);
    g_assert_nonnull(b);
    g_assert_true(a != b);
    g_assert_cmpuint(mgc_maps(), >=, base + 2); /* the test's premise: one map a cookie */
    base = mgc_maps() - 2;
    g_assert_cmpstr(mg_detect_buffer(a, PNG, sizeof PNG), ==, "image/png");

    /* given back: kept alive for the next caller, not freed */
    mg_detect_give(a);
    mg_detect_give(b);
    g_assert_cmpuint(mgc_maps(), ==, base + 2);
    /* taken again: the pooled ones, last given first, none made */
    g_assert_true(mg_detect_take(&why) == b);
    g_assert_true(mg_detect_take(&why) == a);
    g_assert_cmpuint(mgc_maps(), ==, base + 2);
    g_assert_cmpstr(mg_detect_buffer(a, PNG, sizeof PNG), ==, "image/png");

    /* beyond the pool's size, what is given back is freed */
    many[0] = a;
    many[1] = b;
    for (unsigned i = 2; i < G_N_ELEMENTS(many); i++) {
        many[i] = mg_detect_take(&why);
        g_assert_nonnull(many[i]);
    }
    g_assert_cmpuint(mgc_maps(), ==, base + G_N_ELEMENTS(many));
    for (unsigned i = 0; i < G_N_ELEMENTS(many); i++)
        mg_detect_give(many[i]);
    g_assert_cmpuint(mgc_maps(), ==, base + POOL);
    mg_detect_give(NULL);
    g_assert_cmpuint(mgc_maps(), ==, base + POOL);
}

/* Threads taking and giving back at once: each detector serves one
 * thread at a time and answers right. */
static gpointer worker(gpointer data)
{
    gint *wrong = data;

    for (int i = 0; i < 200; i++) {
        const char *why = NULL;
        struct mg_detect *d = mg_detect_take(&why);
        if (d == NULL || strcmp(mg_detect_buffer(d, PNG, sizeof PNG), "image/png") != 0 ||
            strcmp(mg_detect_buffer(d, "%PDF-1.4\n", 9), "application/pdf") != 0)
            g_atomic_int_inc(wrong);
        mg_detect_give(d);
    }
    return NULL;
}

static void test_pool_threads(void)
{
    GThread *t[8];
    gint wrong = 0;

    for (unsigned i = 0; i < G_N_ELEMENTS(t); i++)
        t[i] = g_thread_new("detect", worker, &wrong);
    for (unsigned i = 0; i < G_N_ELEMENTS(t); i++)
        g_thread_join(t[i]);
    g_assert_cmpint(wrong, ==, 0);
}

/* libmagic's text/plain looked at once more for an SVG root. */
static void test_svg(void)
{
    static const struct {
        const char *text;
        const char *want;
    } cases[] = {
        /* what libmagic calls text/plain: a comment or blank lines
         * first, a root with few attributes */
        {"<!-- drawing -->\n<svg xmlns=\"http://www.w3.org/2000/svg\"><rect/></svg>\n",
         "image/svg+xml"},
        {"   \n\n<svg onload=\"alert(1)\"><rect/></svg>\n", "image/svg+xml"},
        {"\xef\xbb\xbf<!-- a -->\n<!-- b -->\n<SVG><rect/></SVG>\n", "image/svg+xml"},
        {"<!-- a -->\n<s:svg xmlns:s=\"http://www.w3.org/2000/svg\"><s:rect/></s:svg>\n",
         "image/svg+xml"},
        {"<!-- a -->\n<svg/>", "image/svg+xml"},
        {"<!-- a -->\n<svg", "image/svg+xml"},
        /* what libmagic calls text/csv: as many commas on every line */
        {"<svg xmlns=\"http://www.w3.org/2000/svg\" onload=\"alert(1)\">,a,b\nx,0,y\nq,1,z\n"
         "</svg>,c,d\n",
         "image/svg+xml"},
        /* text that only mentions markup, or another root */
        {"plain words\n", "text/plain"},
        {"hello\nhello\n<svg onload=\"alert(1)\"></svg>\n", "text/plain"},
        {"<!-- a -->\n<svgx><rect/></svgx>\n", "text/plain"},
        {"<!-- a -->\n<a:b:svg/>\n", "text/plain"},
        {"<!-- a comment that never ends, in a short file\n", "text/plain"},
    };
    const char *why = NULL;
    struct mg_detect *d = mg_detect_new(&why);

    g_assert_nonnull(d);
    for (unsigned i = 0; i < G_N_ELEMENTS(cases); i++) {
        const char *t = cases[i].text;
        const char *got = mg_detect_buffer(d, t, strlen(t));
        if (g_strcmp0(got, cases[i].want) != 0)
            g_error("case %u %s: %s, not %s", i, g_strescape(t, NULL), got, cases[i].want);
    }

    /* a document type declaration with an internal subset */
    const char *dt = "<!-- c -->\n<!DOCTYPE svg [\n<!ENTITY a \"b\">\n] >\n<svg>&a;</svg>\n";
    g_assert_cmpstr(mg_detect_buffer(d, dt, strlen(dt)), ==, "image/svg+xml");

    /* UTF-16 and UTF-32 with a byte order mark, either order (libmagic:
     * text/plain); a UTF-16 text cut inside its last unit */
    const char *ascii = "<!-- c -->\n<svg onload=\"x\"><rect/></svg>\n";
    size_t n = strlen(ascii);
    for (unsigned width = 2; width <= 4; width += 2) {
        for (int be = 0; be <= 1; be++) {
            GByteArray *u = g_byte_array_new();
            guint8 unit[4] = {0};
            if (width == 2) {
                guint8 bom[2] = {be ? 0xfe : 0xff, be ? 0xff : 0xfe};
                g_byte_array_append(u, bom, 2);
            } else {
                guint8 bom[4] = {be ? 0 : 0xff, be ? 0 : 0xfe, be ? 0xfe : 0, be ? 0xff : 0};
                g_byte_array_append(u, bom, 4);
            }
            for (size_t i = 0; i < n; i++) {
                unit[be ? width - 1 : 0] = (guint8)ascii[i];
                g_byte_array_append(u, unit, width);
            }
            if (width == 2 && be)
                g_byte_array_append(u, (const guint8 *)"\0", 1);
            if (g_strcmp0(mg_detect_buffer(d, u->data, u->len), "image/svg+xml") != 0)
                g_error("UTF-%u%s: %s", width * 8, be ? "BE" : "LE",
                        mg_detect_buffer(d, u->data, u->len));
            g_byte_array_free(u, TRUE);
        }
    }
    /* a byte order mark alone, and one followed by half a unit */
    g_assert_cmpstr(mg_detect_buffer(d, "\xff\xfe", 2), !=, "image/svg+xml");
    g_assert_cmpstr(mg_detect_buffer(d, "\xff\xfe<", 3), !=, "image/svg+xml");
    g_assert_cmpstr(mg_detect_buffer(d, "\xef\xbb\xbf", 3), !=, "image/svg+xml");

    /* a prolog longer than the whole window: the root is not seen */
    GString *g = g_string_new("<!--");
    while (g->len < MG_DETECT_SNIFF_BYTES + 100)
        g_string_append(g, " padding words in a long comment\n");
    g_string_append(g, "-->\n<svg onload=\"alert(1)\"/>\n");
    g_assert_cmpstr(mg_detect_buffer(d, g->str, g->len), ==, "application/xml");
    g_string_free(g, TRUE);

    /* a body part's text check is not affected */
    g_assert_cmpstr(mg_detect_text(d, cases[0].text, strlen(cases[0].text)), ==, "text/plain");
    g_assert_null(mg_detect_free(d));
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/detect/buffer", test_buffer);
    g_test_add_func("/detect/svg", test_svg);
    g_test_add_func("/detect/pool", test_pool);
    g_test_add_func("/detect/pool-threads", test_pool_threads);
    return g_test_run();
}
