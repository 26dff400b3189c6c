/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Unit test: HTML to text (src/html/).
 *
 * /html/cases: a table of small documents with their exact expected
 * text and flags, each converted whole and fed in chunks of 1, 2, 3,
 * 7, 64 and 4096 bytes (all must give the same bytes).
 * /html/fixtures: every testdata/html/ *.html converted with
 * mg_html_to_text and fed one byte at a time (same text), with exact
 * expected outputs for the Japanese pages (meta charset and sniffed)
 * and general.html; active.html must not leak script.
 * /html/meta: mg_html_meta_charset.
 * /html/hostile: deep nesting, unclosed tables, huge attributes,
 * attribute and entity bombs, unmatched end tags, the output cap:
 * each must finish or time out within its CPU budget, without crash.
 * Every output is also checked for the invariants of html.h (valid
 * UTF-8, no C0 control but LF and TAB, no trailing blank, at most one
 * blank line in a row, one final LF).
 */
#include <stdbool.h>
#include <string.h>
#include <time.h>

#include <glib.h>
#include <mugaika/charset.h>
#include <mugaika/html.h>

#define ACT  MG_HTML_ACTIVE
#define DROP MG_HTML_URLS_DROPPED

struct html_case {
    const char *name;
    const char *html;
    size_t len; /* 0: strlen(html) */
    const char *lang;
    bool plain; /* defang_urls false */
    const char *want;
    unsigned flags;
};

/* clang-format off */
static const struct html_case cases[] = {
    {"empty", "", 0, "en", false, "", 0},
    {"blank", "  \n\t ", 0, "en", false, "", 0},
    {"paragraphs", "<p>a</p><p>b</p>", 0, "en", false, "a\n\nb\n", 0},
    {"collapse", "  a \n\t b  <b> c </b>d", 0, "en", false, "a b c d\n", 0},
    {"br", "a<br>b<br><br><br><br>c", 0, "en", false, "a\nb\n\nc\n", 0},
    {"blocks", "<div>a</div><section>b</section><address>c</address>d", 0, "en", false,
        "a\nb\nc\nd\n", 0},
    {"hr-en", "a<hr>b", 0, "en", false, "a\n\n----------------------------------------\nb\n", 0},
    {"hr-ja", "a<hr>b", 0, "ja", false,
        "a\n\n――――――――――――――――――――\nb\n", 0},
    {"headings", "<h1>T</h1><p>x</p><h2>S</h2>y", 0, "en", false, "T\n\nx\n\nS\n\ny\n", 0},
    {"ul-ja", "<ul><li>a<li>b<ul><li>c</ul><li>d</ul>", 0, "ja", false,
        "・ a\n・ b\n  ・ c\n・ d\n", 0},
    {"ul-en", "<ul><li>a<li>b<ul><li>c</ul><li>d</ul>", 0, "en", false,
        "* a\n* b\n  * c\n* d\n", 0},
    {"li-paragraph", "<ul><li><p>a</p></li><li>b</li></ul>", 0, "en", false, "* a\n* b\n", 0},
    {"ol", "<ol start=3><li>a<li value=10>b<li>c</ol><ol><li>x</ol>", 0, "en", false,
        "3. a\n10. b\n11. c\n1. x\n", 0},
    {"table", "<table><caption>C</caption><tr><th>a<th>b<tr><td>1<td>2</table>", 0, "en",
        false, "C\na | b\n1 | 2\n", 0},
    {"table-empty-cells", "<table><tr><td>&nbsp;<td><td>x<td>y</table>", 0, "en", false,
        "x | y\n", 0},
    {"pre", "<p>a</p><pre>\n a  b\n\tc\n</pre>d", 0, "en", false, "a\n\n a  b\n\tc\n\nd\n", 0},
    {"crlf", "<pre>a\r\nb\rc</pre>", 0, "en", false, "a\nb\nc\n", 0},
    {"entities",
        "&amp;&amp &lt;&gt;&quot;&#39;&#x41;&#66&eacute;&eacute &notit; &#xZZ; &#x110000; "
        "&#0; &#xD800; &#128; &#x9F; &copy=x &colon; &bogus; &", 0, "en", false,
        "&& <>\"'AB\xc3\xa9\xc3\xa9 \xc2\xacit; &#xZZ; \xef\xbf\xbd \xef\xbf\xbd \xef\xbf\xbd "
        "\xe2\x82\xac \xc5\xb8 \xc2\xa9=x : &bogus; &\n", 0},
    {"entity-controls", "a&#1;b&#x7f;c&#9;d", 0, "en", false,
        "a\xef\xbf\xbd" "b\xef\xbf\xbd" "c d\n", 0},
    {"attr-entities", "<a href=\"http://x.test/?a=1&copy=2&amp;b=3&lt=4&eacute;\">t</a>", 0,
        "en", true, "t [1]\n\n[1] http://x.test/?a=1&copy=2&b=3&lt=4\xc3\xa9\n", 0},
    {"nbsp", "<p>&nbsp;</p><p>a&nbsp;&nbsp;b</p>", 0, "en", false, "a b\n", 0},
    {"dropped",
        "<script>s</script><style>t</style><template>u</template><noscript>v</noscript>"
        "<iframe>w</iframe><object>o</object><svg><text>g</text></svg><!--c-->"
        "<p hidden>h</p><p style='color:red; DISPLAY : none'>d</p>"
        "<input type=hidden value=z><span aria-hidden=true>ok</span>", 0, "en", false,
        "ok\n", ACT},
    {"head", "<html><head><title>T</title><style>x</style></head><body>b</body></html>", 0,
        "en", false, "b\n", 0},
    {"images-ja", "<img alt='A \n b'> <img src=x.png>", 0, "ja", false,
        "[画像: A b] [画像]\n", 0},
    {"images-en", "x<img alt='A  b'><img>", 0, "en", false, "x [image: A b] [image]\n", 0},
    {"link-defanged", "<a href='https://www.ex.com/p?q=1#f'>t</a>", 0, "ja", false,
        "t [1]\n\n[1] hxxps://www[.]ex[.]com/p?q=1#f\n", 0},
    {"link-plain", "<a href='https://www.ex.com/p'>t</a>", 0, "ja", true,
        "t [1]\n\n[1] https://www.ex.com/p\n", 0},
    {"link-ftp", "<a href='FTP://files.ex.org/x.y'>f</a>", 0, "en", false,
        "f [1]\n\n[1] fxp://files[.]ex[.]org/x.y\n", 0},
    {"link-userinfo", "<a href='http://user.name@ex.com:80/'>u</a>", 0, "en", false,
        "u [1]\n\n[1] hxxp://user[.]name@ex[.]com:80/\n", 0},
    {"link-numbers",
        "<a href='http://a.test/'>x</a> <a href='http://b.test/'>y</a> "
        "<a href='http://a.test/'>z</a>", 0, "en", false,
        "x [1] y [2] z [1]\n\n[1] hxxp://a[.]test/\n[2] hxxp://b[.]test/\n", 0},
    {"link-is-url", "<p><a href='https://ex.com/a'>https://ex.com/a</a> and "
        "<a href='http://ex.org/'>ex.org</a></p>", 0, "en", false,
        "hxxps://ex[.]com/a and hxxp://ex[.]org/\n", 0},
    {"link-scheme-less", "<a href='www.ex.com/x'>w</a>", 0, "en", false,
        "w [1]\n\n[1] www[.]ex[.]com/x\n", 0},
    {"link-relative-fragment", "<a href='#top'>t</a> <a href='/rel/x'>r</a>", 0, "en", false,
        "t r\n", 0},
    {"link-empty-text", "a <a href='http://ex.com/'></a> b", 0, "en", false,
        "a [1] b\n\n[1] hxxp://ex[.]com/\n", 0},
    {"mailto", "<a href='mailto:a@ex.com?subject=hi'>write</a> "
        "<a href='MAILTO:b@ex.com'>b@ex.com</a>", 0, "en", false, "write <a@ex.com> b@ex.com\n", 0},
    {"javascript",
        "<a href=' JaVaScript:alert(1)'>a</a> <a href='jav&#x09;ascript:alert(1)'>b</a> "
        "<a href='&#x6A;avascript&colon;alert(1)'>c</a> <a href='vbscript:x'>d</a> "
        "<a href='DATA:text/html,x'>e</a> <a href='java\nscript:x'>f</a>", 0, "en", false,
        "a b c d e f\n", DROP},
    {"active-onclick", "<p onclick='x()'>a</p>", 0, "en", false, "a\n", ACT},
    {"active-refresh", "<meta http-equiv=Refresh content='0;url=x'>a", 0, "en", false, "a\n",
        ACT},
    {"active-form", "<form><button>Go</button><input type=submit value='Send it'></form>", 0,
        "en", false, "Go [Send it]\n", ACT},
    {"active-embed", "<embed src=x>a", 0, "en", false, "a\n", ACT},
    {"not-active", "<meta charset=utf-8><p class=one>a</p>", 0, "en", false, "a\n", 0},
    {"controls", "a\x01" "b\x00" "c\x7f" "d\x0b" "e\x0c" "f", 11, "en", false,
        "a\xef\xbf\xbd" "b\xef\xbf\xbd" "c\xef\xbf\xbd" "d\xef\xbf\xbd" "e f\n", 0},
    {"invalid-utf8", "a\xff" "b\xc3", 0, "en", false, "a\xef\xbf\xbd" "b\xef\xbf\xbd\n", 0},
    {"blockquote", "<blockquote>q<p>r</p></blockquote>s", 0, "en", false, "> q\n\n> r\n\ns\n",
        0},
    {"comment-split", "$<!--o-->90.<!--o-->74", 0, "en", false, "$90.74\n", 0},
    {"bogus-comments", "<p>a<![if !mso]>text<![endif]>b<!x>c</ p>d</p>", 0, "en", false,
        "atextbcd\n", 0},
    {"html5-comments", "<p>a<!-->b<!--->c<!-- x --!>d<!-- -- y --!z -->e", 0, "en", false,
        "abcde\n", 0},
    {"lt-text", "<p>a<3 b &amp; c < d<</p>", 0, "en", false, "a<3 b & c < d<\n", 0},
    {"script-raw", "<script>if(a<!b){x('</p>')}</script>vis<style>p{}</STYLE >v2", 0, "en",
        false, "visv2\n", ACT},
    {"japanese", "<p>日本語　テキスト</p>", 0, "ja", false, "日本語　テキスト\n", 0},
};
/* clang-format on */

static size_t case_len(const struct html_case *c)
{
    return c->len != 0 ? c->len : strlen(c->html);
}

/* Checks the output invariants of html.h. */
static void check_invariants(const GString *s)
{
    g_assert_true(g_utf8_validate(s->str, (gssize)s->len, NULL));
    for (gsize i = 0; i < s->len; i++) {
        unsigned char c = (unsigned char)s->str[i];
        g_assert_true(c >= 0x20 || c == '\n' || c == '\t');
        if (c == '\n' && i > 0)
            g_assert_true(s->str[i - 1] != ' ' && s->str[i - 1] != '\t');
    }
    g_assert_null(strstr(s->str, "\n\n\n"));
    if (s->len > 0) {
        g_assert_true(s->str[s->len - 1] == '\n');
        g_assert_true(s->str[0] != '\n');
    }
}

/* Converts buf fed in chunks of chunk bytes (0: at once). */
static unsigned convert(const char *buf, size_t len, const struct mg_html_opts *o, size_t chunk,
                        GString *out)
{
    struct mg_html *h = mg_html_new(o);
    unsigned flags;

    if (chunk == 0)
        chunk = len > 0 ? len : 1;
    for (size_t off = 0; off < len; off += chunk)
        mg_html_feed(h, buf + off, MIN(chunk, len - off));
    flags = mg_html_finish(h, out);
    g_assert_null(mg_html_free(h));
    return flags;
}

static void test_cases(void)
{
    static const size_t chunks[] = {0, 1, 2, 3, 7, 64, 4096};
    unsigned bad = 0;

    for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
        const struct html_case *c = &cases[i];
        struct mg_html_opts o;
        mg_html_opts_default(&o);
        o.lang = c->lang;
        o.defang_urls = !c->plain;
        for (size_t k = 0; k < G_N_ELEMENTS(chunks); k++) {
            GString *out = g_string_new(NULL);
            unsigned flags = convert(c->html, case_len(c), &o, chunks[k], out);
            if (strcmp(out->str, c->want) != 0 || flags != c->flags) {
                g_test_message("FAIL case %s chunk %zu: flags %u (want %u) text [%s] want [%s]",
                               c->name, chunks[k], flags, c->flags, out->str, c->want);
                bad++;
            }
            check_invariants(out);
            g_string_free(out, TRUE);
        }
    }
    g_assert_cmpuint(bad, ==, 0);
}

static void test_defaults(void)
{
    struct mg_html_opts o;
    GString *out = g_string_new(NULL);

    mg_html_opts_default(&o);
    g_assert_cmpstr(o.lang, ==, "ja");
    g_assert_true(o.defang_urls);
    g_assert_cmpint(o.budget_us, ==, 2000000);
    g_assert_cmpuint(o.max_output, ==, (size_t)64 << 20);
    /* NULL options: the defaults (Japanese markers, defanged) */
    struct mg_html *h = mg_html_new(NULL);
    mg_html_feed(h, "<img><a href='http://a.b/'>x</a>", 32);
    g_assert_cmpuint(mg_html_finish(h, out), ==, 0);
    g_assert_cmpuint(mg_html_finish(h, out), ==, 0); /* a second call appends nothing */
    mg_html_free(h);
    g_assert_cmpstr(out->str, ==, "[画像]x [1]\n\n[1] hxxp://a[.]b/\n");
    g_assert_null(mg_html_free(NULL));
    g_string_free(out, TRUE);
}

static char *fixture_path(const char *name)
{
    const char *dir = g_getenv("MUGAIKA_TESTDATA");

    g_assert_nonnull(dir); /* set by meson: a missing setting must fail */
    return g_build_filename(dir, "html", name, NULL);
}

/* The fixture converted by mg_html_to_text (charset: label, else
 * meta, else sniffed); also checks that feeding the UTF-8 form one
 * byte at a time and in 5-byte chunks gives the same text. */
static char *fixture_text(const char *name, const char *label, unsigned *flags)
{
    char *path = fixture_path(name), *buf;
    gsize len;
    struct mg_html_opts o;
    GString *out = g_string_new(NULL), *one = g_string_new(NULL), *five = g_string_new(NULL);

    g_assert_true(g_file_get_contents(path, &buf, &len, NULL));
    mg_html_opts_default(&o);
    *flags = mg_html_to_text(buf, len, label, &o, out);
    check_invariants(out);
    /* the same charset choice, then the UTF-8 form fed in pieces */
    const char *cs = label != NULL ? mg_charset_canon(label) : NULL;
    GString *u = g_string_new(NULL);
    if (cs == NULL)
        cs = mg_html_meta_charset(buf, len);
    mg_charset_to_utf8(cs, buf, len, u);
    g_assert_cmpuint(convert(u->str, u->len, &o, 1, one), ==, *flags);
    g_assert_cmpuint(convert(u->str, u->len, &o, 5, five), ==, *flags);
    g_assert_cmpstr(one->str, ==, out->str);
    g_assert_cmpstr(five->str, ==, out->str);
    g_string_free(u, TRUE);
    g_free(buf);
    g_free(path);
    g_string_free(one, TRUE);
    g_string_free(five, TRUE);
    return g_string_free(out, FALSE);
}

static void test_japanese(void)
{
    static const char *const names[] = {"ja-sjis-meta.html",  "ja-sjis.html",
                                        "ja-eucjp-meta.html", "ja-eucjp.html",
                                        "ja-jis-meta.html",   "ja-jis.html"};

    for (size_t i = 0; i < G_N_ELEMENTS(names); i++) {
        unsigned flags;
        char *got = fixture_text(names[i], NULL, &flags);
        char *exp = g_strconcat("お知らせ\n\n日本語のメール本文です。", i < 2 ? "髙橋様①" : "",
                                "\n\n・ 一つ目\n・ 二つ目\n", NULL);
        g_test_message("%s", names[i]);
        g_assert_cmpstr(got, ==, exp);
        g_assert_cmpuint(flags, ==, 0);
        g_free(got);
        g_free(exp);
    }
    /* a MIME label wins over the page */
    unsigned flags;
    char *got = fixture_text("ja-eucjp.html", "EUC-JP", &flags);
    g_assert_nonnull(strstr(got, "日本語のメール本文です。"));
    g_free(got);
}

static void test_general(void)
{
    unsigned flags;
    char *got = fixture_text("general.html", NULL, &flags);

    g_assert_cmpstr(got, ==,
                    "Invoice & receipt\n\n"
                    "Hello world, café © 2024 AB € & <tag>\n\n"
                    "Line one\nLine two\n\n"
                    "・ Apple\n・ Banana\n  ・ Small\n  ・ Large\n・ Cherry\n"
                    "3. third\n4. fourth\n"
                    "Prices\nItem | Price\nTea | 3 €\n\n"
                    "  x = 1\n\ty = 2\n\nend\n\n"
                    "> Quoted text\n\n"
                    "See our site [1], hxxp://example[.]org/, mail us <info@example.com> and "
                    "again [1].\n\n"
                    "[画像: Company logo] [画像]\n"
                    "――――――――――――――――――――\n"
                    "aria text\n\n"
                    "日本語の段落です。\n\n"
                    "[1] hxxps://www[.]example[.]com/a?b=1&c=2\n");
    g_assert_cmpuint(flags, ==, 0);
    g_free(got);
}

static void test_active(void)
{
    static const char *const banned[] = {"script", "javascript",   "onclick",  "alert(", "onload",
                                         "evil",   "hidden-token", "vbscript", "data:"};
    static const char *const wanted[] = {"Dear customer,",
                                         "Please confirm your account.",
                                         "second third fourth fifth sixth",
                                         "Click area",
                                         "[Sign in]",
                                         "Send",
                                         "Regards"};
    unsigned flags;
    char *got = fixture_text("active.html", NULL, &flags);
    char *low = g_ascii_strdown(got, -1);

    for (size_t i = 0; i < G_N_ELEMENTS(banned); i++)
        g_assert_null(strstr(low, banned[i]));
    for (size_t i = 0; i < G_N_ELEMENTS(wanted); i++)
        g_assert_nonnull(strstr(got, wanted[i]));
    g_assert_cmpuint(flags, ==, MG_HTML_ACTIVE | MG_HTML_URLS_DROPPED);
    g_free(low);
    g_free(got);
}

/* Every fixture: the same text whatever the chunking (fixture_text). */
static void test_all_fixtures(void)
{
    char *dir = fixture_path("");
    GDir *d = g_dir_open(dir, 0, NULL);
    const char *name;
    unsigned n = 0;

    g_assert_nonnull(d);
    while ((name = g_dir_read_name(d)) != NULL) {
        if (!g_str_has_suffix(name, ".html"))
            continue;
        unsigned flags;
        g_free(fixture_text(name, NULL, &flags));
        n++;
    }
    g_dir_close(d);
    g_free(dir);
    g_assert_cmpuint(n, >=, 8);
}

static void test_meta(void)
{
    static const struct {
        const char *html, *want;
    } m[] = {
        {"<meta charset=\"Shift_JIS\">", "cp932"},
        {"<META CHARSET=euc-jp>", "euc-jp"},
        {"<meta charset='iso-2022-jp'/>", "iso-2022-jp"},
        {"<html><head><meta http-equiv=\"Content-Type\" content=\"text/html; "
         "charset=x-sjis\"></head>",
         "cp932"},
        {"<meta content='text/html;charset=\"EUC-JP\"' http-equiv='content-type'>", "euc-jp"},
        {"<meta http-equiv=Content-Type content=text/html;charset=utf-8>", "utf-8"},
        {"<meta content=\"text/html; charset=utf-8\">", NULL}, /* no http-equiv */
        {"<!-- <meta charset=euc-jp> --><meta charset=utf-8>", "utf-8"},
        {"<p title='<meta charset=euc-jp>'>x</p>", NULL},
        {"<meta charset=bogus-label><meta charset=shift_jis>", "cp932"},
        {"<meta charset=utf-16le>", "utf-8"},
        {"<meta name=x>", NULL},
        {"", NULL},
        {"<meta", NULL},
        {"<metacharset=utf-8>", NULL},
    };
    for (size_t i = 0; i < G_N_ELEMENTS(m); i++) {
        const char *got = mg_html_meta_charset(m[i].html, strlen(m[i].html));
        g_test_message("meta %zu: %s", i, m[i].html);
        g_assert_cmpstr(got, ==, m[i].want);
    }
    /* only the first 4 KiB count */
    GString *s = g_string_new(NULL);
    for (int i = 0; i < 4100; i++)
        g_string_append_c(s, ' ');
    g_string_append(s, "<meta charset=euc-jp>");
    g_assert_null(mg_html_meta_charset(s->str, s->len));
    g_assert_cmpstr(mg_html_meta_charset(s->str + 200, s->len - 200), ==, "euc-jp");
    g_string_free(s, TRUE);
}

/* ---- hostile inputs -------------------------------------------------- */

static gint64 cpu_us(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (gint64)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static GString *repeat(const char *pre, const char *unit, size_t n, const char *post)
{
    GString *s = g_string_new(pre);

    for (size_t i = 0; i < n; i++)
        g_string_append(s, unit);
    g_string_append(s, post);
    return s;
}

/* Converts in 64 KiB chunks under a 1 s budget; the CPU time used must
 * stay near the budget. Returns the flags; *out receives the text. */
static unsigned hostile(const GString *in, size_t max_output, GString *out)
{
    struct mg_html_opts o;
    gint64 t0 = cpu_us();
    unsigned flags;

    mg_html_opts_default(&o);
    o.budget_us = 1000000;
    if (max_output > 0)
        o.max_output = max_output;
    flags = convert(in->str, in->len, &o, 65536, out);
    gint64 used = cpu_us() - t0;
    g_test_message("%zu bytes: flags %u, %" G_GINT64_FORMAT " us, %zu bytes out", in->len, flags,
                   used, out->len);
    /* the budget plus the slowest step between two checks, and our own
     * (uncounted) copying of the input; generous for sanitizer builds */
    g_assert_cmpint(used, <, 4 * o.budget_us);
    check_invariants(out);
    return flags;
}

static void test_deep_divs(void)
{
    GString *in = repeat("", "<div class=\"nesting\">", 50000, "deep"), *out = g_string_new(NULL);
    unsigned flags = hostile(in, 0, out);

    g_assert_true(flags == 0 || flags == MG_HTML_TIMEOUT);
    if (flags == 0)
        g_assert_cmpstr(out->str, ==, "deep\n");
    g_string_free(in, TRUE);
    g_string_free(out, TRUE);
}

static void test_unclosed_tables(void)
{
    GString *in = repeat("", "<table><tr><td>", 100000, "x"), *out = g_string_new(NULL);
    unsigned flags = hostile(in, 0, out);

    g_assert_true(flags == 0 || flags == MG_HTML_TIMEOUT);
    if (flags == 0)
        g_assert_cmpstr(out->str, ==, "x\n");
    g_string_free(in, TRUE);
    g_string_free(out, TRUE);
}

static void test_unmatched_end_tags(void)
{
    GString *in = repeat("", "<b>", 100000, ""), *out = g_string_new(NULL);

    for (int i = 0; i < 100000; i++)
        g_string_append(in, "</i>");
    g_string_append(in, "end");
    unsigned flags = hostile(in, 0, out);
    g_assert_true(flags == 0 || flags == MG_HTML_TIMEOUT);
    g_string_free(in, TRUE);
    g_string_free(out, TRUE);
}

static void test_huge_attribute(void)
{
    GString *in = g_string_new("<p title=\""), *out = g_string_new(NULL);

    for (int i = 0; i < 10 * 1024 * 1024 / 64; i++)
        g_string_append(in, "0123456789abcdef0123456789abcdef0123456789abcdef0123456789&amp;");
    g_string_append(in, "\">text</p><a href=\"http://x.test/");
    for (int i = 0; i < 100000; i++)
        g_string_append(in, "aaaaaaaaaa");
    g_string_append(in, "\">link</a>");
    unsigned flags = hostile(in, 0, out);
    g_assert_true(flags == 0 || flags == MG_HTML_TIMEOUT);
    if (flags == 0) {
        g_assert_true(g_str_has_prefix(out->str, "text\n\nlink [1]\n\n[1] hxxp://x[.]test/aaa"));
        g_assert_true(g_str_has_suffix(out->str, "aaa...\n")); /* URL cut */
    }
    g_string_free(in, TRUE);
    g_string_free(out, TRUE);
}

static void test_attribute_bomb(void)
{
    GString *in = g_string_new("<p"), *out = g_string_new(NULL);

    for (int i = 0; i < 200000; i++)
        g_string_append_printf(in, " a%d=\"v>%d\"", i, i);
    g_string_append(in, ">x</p><p>after</p>");
    unsigned flags = hostile(in, 0, out);
    g_assert_cmpuint(flags, ==, 0); /* the attributes past MAX_ATTRS are skipped */
    g_assert_cmpstr(out->str, ==, "x\n\nafter\n");
    g_string_free(in, TRUE);
    g_string_free(out, TRUE);
}

static void test_entity_bombs(void)
{
    GString *out = g_string_new(NULL);
    GString *in = repeat("<p>", "&amp;&lt;&#x41;&eacute", 300000, "</p>");
    unsigned flags = hostile(in, 0, out);

    g_assert_true(flags == 0 || flags == MG_HTML_TIMEOUT);
    if (flags == 0)
        g_assert_cmpuint(out->len, ==, 300000 * 5 + 1);
    g_string_free(in, TRUE);
    g_string_truncate(out, 0);
    /* one reference with a million digits, one name of a million letters */
    in = repeat("&#", "0", 1000000, "65;");
    g_string_append(in, "&");
    for (int i = 0; i < 1000000; i++)
        g_string_append_c(in, 'a');
    flags = hostile(in, 0, out);
    g_assert_cmpuint(flags, ==, 0);
    g_assert_cmpuint(out->len, ==, 1 + 1 + 1000000 + 1);
    g_assert_true(g_str_has_prefix(out->str, "A&aaa"));
    g_string_free(in, TRUE);
    g_string_free(out, TRUE);
}

static void test_output_cap(void)
{
    GString *in = repeat("", "<p>some words here</p>", 100000, ""), *out = g_string_new(NULL);
    unsigned flags = hostile(in, 1000, out);

    g_assert_true(flags & MG_HTML_TRUNCATED);
    g_assert_cmpuint(out->len, <=, 1000);
    g_assert_true(g_str_has_prefix(out->str, "some words here\n\nsome words here\n"));
    g_string_free(in, TRUE);
    g_string_truncate(out, 0);
    /* a cut inside a multibyte character and inside the link list */
    in = repeat("", "<a href='http://ex.com/あ'>日本</a>", 100, "");
    flags = hostile(in, 50, out);
    g_assert_true(flags & MG_HTML_TRUNCATED);
    g_assert_cmpuint(out->len, <=, 50);
    g_string_free(in, TRUE);
    g_string_free(out, TRUE);
}

static void test_timeout(void)
{
    /* a zero budget: the first check stops the conversion */
    struct mg_html_opts o;
    GString *in = repeat("", "<p>x</p>", 100000, ""), *out = g_string_new(NULL);

    mg_html_opts_default(&o);
    o.budget_us = 0;
    unsigned flags = convert(in->str, in->len, &o, 65536, out);
    g_assert_true(flags & MG_HTML_TIMEOUT);
    g_assert_cmpuint(out->len, <, 100000 * 3);
    check_invariants(out);
    g_string_free(in, TRUE);
    g_string_free(out, TRUE);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/html/cases", test_cases);
    g_test_add_func("/html/defaults", test_defaults);
    g_test_add_func("/html/japanese", test_japanese);
    g_test_add_func("/html/general", test_general);
    g_test_add_func("/html/active", test_active);
    g_test_add_func("/html/fixtures", test_all_fixtures);
    g_test_add_func("/html/meta", test_meta);
    g_test_add_func("/html/hostile/deep-divs", test_deep_divs);
    g_test_add_func("/html/hostile/unclosed-tables", test_unclosed_tables);
    g_test_add_func("/html/hostile/unmatched-end-tags", test_unmatched_end_tags);
    g_test_add_func("/html/hostile/huge-attribute", test_huge_attribute);
    g_test_add_func("/html/hostile/attribute-bomb", test_attribute_bomb);
    g_test_add_func("/html/hostile/entity-bombs", test_entity_bombs);
    g_test_add_func("/html/hostile/output-cap", test_output_cap);
    g_test_add_func("/html/hostile/timeout", test_timeout);
    return g_test_run();
}
