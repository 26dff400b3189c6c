/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Unit test: file names for the transfer folder (src/watch/fsname.c).
 *
 * Case tables for mg_fsname_decode and mg_fsname_safe; every safe case
 * is also checked against the invariants (no forbidden or invisible
 * character, trimmed ends, no device name, length limits, not a
 * temporary name, idempotent), as are 3000 random names built from a
 * fixed seed. mg_fsname_unique runs in a fresh temporary directory per
 * test (g_test_add fixture), removed after a passing test; a failing
 * check aborts and leaves it in $TMPDIR for inspection.
 */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include <glib.h>
#include <glib/gstdio.h>
#include <mugaika/fsname.h>

#define B(s) s, sizeof(s) - 1

/* ---- decode ---------------------------------------------------------- */

struct decode_case {
    const char *name;
    const char *in;
    size_t len;
    const char *want;
    bool cp932;
};

static const struct decode_case decode_cases[] = {
    {"ascii", B("report.pdf"), "report.pdf", false},
    {"utf8-kept", B("申請書.docx"), "申請書.docx", false},
    /* か + combining voiced mark (macOS NFD) */
    {"nfd-ga", B("\xe3\x81\x8b\xe3\x82\x99.txt"), "が.txt", false},
    /* ハ + combining semi-voiced mark, ヘ + voiced */
    {"nfd-pa-be", B("\xe3\x83\x8f\xe3\x82\x9a\xe3\x83\x98\xe3\x82\x99"), "パベ", false},
    {"nfd-latin", B("Cafe\xcc\x81"), "Café", false},
    /* 申請書.docx in CP932 (0x5C as a trail byte of 申) */
    {"cp932-shinseisho", B("\x90\x5c\x90\xbf\x8f\x91.docx"), "申請書.docx", true},
    {"cp932-halfwidth-kana", B("\xb1\xb2\xb3.txt"), "ｱｲｳ.txt", true},
    /* ①㈱ (NEC row 13), 髙 (IBM extension) */
    {"cp932-nec-ibm", B("\x87\x40\x87\x8a\xfb\xfc"), "①㈱髙", true},
    /* 0x80 and 0xFD-0xFF are neither UTF-8 nor CP932 */
    {"invalid-0x80",
     B("a\x80"
       "b"),
     "a\xef\xbf\xbd"
     "b",
     false},
    {"invalid-ff-fe", B("\xff\xfe.txt"), "\xef\xbf\xbd\xef\xbf\xbd.txt", false},
    /* a bad byte amid valid UTF-8 (0x80 is not CP932 either) */
    {"invalid-utf8-kept-around", B("日本\x80語"), "日本\xef\xbf\xbd語", false},
    /* a truncated UTF-8 sequence that happens to be CP932: CP932 wins */
    {"truncated-utf8-is-cp932", B("\xe6\x97\xa5\xe8\xaa"), "譌･隱", true},
    /* decoding stops at a NUL inside len */
    {"nul-stops", B("ab\0cd"), "ab", false},
    {"nul-first", B("\0abc"), "", false},
    {"len-bounds", "abcdef", 3, "abc", false},
    {"empty", B(""), "", false},
};

static void test_decode_table(void)
{
    for (size_t i = 0; i < G_N_ELEMENTS(decode_cases); i++) {
        const struct decode_case *c = &decode_cases[i];
        bool cp932 = !c->cp932;
        char *got = mg_fsname_decode(c->in, c->len, &cp932);

        if (strcmp(got, c->want) != 0 || cp932 != c->cp932)
            g_error("decode %s: got \"%s\" (cp932=%d), want \"%s\" (cp932=%d)", c->name, got, cp932,
                    c->want, c->cp932);
        g_assert_true(g_utf8_validate(got, -1, NULL));
        g_free(got);
    }
}

static void test_decode_null(void)
{
    bool cp932 = true;
    char *got = mg_fsname_decode(NULL, 0, &cp932);

    g_assert_cmpstr(got, ==, "");
    g_assert_false(cp932);
    g_free(got);
    /* was_cp932 may be NULL */
    got = mg_fsname_decode(B("\x90\x5c"), NULL);
    g_assert_cmpstr(got, ==, "申");
    g_free(got);
}

/* ---- safe: invariants ------------------------------------------------ */

static bool is_device(const char *name)
{
    static const char *const dev[] = {
        "con",  "prn",  "aux",  "nul",  "conin$", "conout$", "clock$", "com0", "com1",
        "com2", "com3", "com4", "com5", "com6",   "com7",    "com8",   "com9", "lpt0",
        "lpt1", "lpt2", "lpt3", "lpt4", "lpt5",   "lpt6",    "lpt7",   "lpt8", "lpt9",
        "com¹", "com²", "com³", "lpt¹", "lpt²",   "lpt³",
    };
    size_t n = strcspn(name, ".");
    char *low;
    bool hit = false;

    while (n > 0 && name[n - 1] == ' ')
        n--;
    low = g_ascii_strdown(name, (gssize)n);
    for (size_t i = 0; i < G_N_ELEMENTS(dev); i++)
        hit = hit || strcmp(low, dev[i]) == 0;
    g_free(low);
    return hit;
}

static bool invisible(gunichar c)
{
    GUnicodeType t = g_unichar_type(c);

    return t == G_UNICODE_CONTROL || t == G_UNICODE_FORMAT || t == G_UNICODE_LINE_SEPARATOR ||
           t == G_UNICODE_PARAGRAPH_SEPARATOR || (c >= 0x200b && c <= 0x200f) ||
           (c >= 0x202a && c <= 0x202e) || (c >= 0x2066 && c <= 0x2069) || c == 0xfeff;
}

static size_t utf16_units(const char *s)
{
    size_t n = 0;

    for (; *s != '\0'; s = g_utf8_next_char(s))
        n += g_utf8_get_char(s) > 0xffff ? 2 : 1;
    return n;
}

/* Everything mg_fsname_safe promises about its result. */
static void check_safe_result(const char *in, const char *got)
{
    char *again;

    if (got == NULL || got[0] == '\0' || !g_utf8_validate(got, -1, NULL))
        g_error("safe(\"%s\"): empty or invalid result", in);
    for (const char *p = got; *p != '\0'; p = g_utf8_next_char(p)) {
        gunichar c = g_utf8_get_char(p);
        if ((c < 0x80 && strchr("\\/:*?\"<>|", (int)c) != NULL) || c == 0xfffd || invisible(c))
            g_error("safe(\"%s\") = \"%s\": holds U+%04X", in, got, c);
    }
    if (got[0] == ' ' || got[0] == '.' || got[strlen(got) - 1] == ' ' ||
        got[strlen(got) - 1] == '.')
        g_error("safe(\"%s\") = \"%s\": untrimmed", in, got);
    if (is_device(got))
        g_error("safe(\"%s\") = \"%s\": a device name", in, got);
    if (strlen(got) > 255 || utf16_units(got) > 255)
        g_error("safe(\"%s\"): %zu bytes, %zu UTF-16 units", in, strlen(got), utf16_units(got));
    if (mg_fsname_is_temp(got))
        g_error("safe(\"%s\") = \"%s\": a temporary name", in, got);
    again = mg_fsname_safe(got, "x");
    if (strcmp(again, got) != 0)
        g_error("safe not idempotent: \"%s\" -> \"%s\"", got, again);
    g_free(again);
}

/* ---- safe: case table ------------------------------------------------ */

struct safe_case {
    const char *in;
    const char *want;
};

static const struct safe_case safe_cases[] = {
    {"report.pdf", "report.pdf"},
    {"申請書 (最終).docx", "申請書 (最終).docx"},
    /* each character Windows forbids */
    {"a\\b", "a_b"},
    {"a/b", "a_b"},
    {"a:b", "a_b"},
    {"a*b", "a_b"},
    {"a?b", "a_b"},
    {"a\"b", "a_b"},
    {"a<b", "a_b"},
    {"a>b", "a_b"},
    {"a|b", "a_b"},
    {"../../etc/passwd", "_.._etc_passwd"},
    {"C:\\Users\\x.txt", "C__Users_x.txt"},
    /* full-width forms are ordinary characters and stay */
    {"報告／2024：草案？.xlsx", "報告／2024：草案？.xlsx"},
    /* U+FFFD from an undecodable byte */
    {"a\xef\xbf\xbd"
     "b.txt",
     "a_b.txt"},
    /* device names */
    {"con.txt", "_con.txt"},
    {"Con", "_Con"},
    {"CON", "_CON"},
    {"COM1.log", "_COM1.log"},
    {"com0", "_com0"},
    {"LPT9", "_LPT9"},
    {"CONIN$", "_CONIN$"},
    {"conout$.txt", "_conout$.txt"},
    {"clock$", "_clock$"},
    {"com¹", "_com¹"},
    {"LPT³.doc", "_LPT³.doc"},
    {"prn", "_prn"},
    {"aux.tar.gz", "_aux.tar.gz"},
    {"NUL .txt", "_NUL .txt"},
    {"nul.", "_nul"},
    {" con", "_con"},
    /* not device names */
    {"console.txt", "console.txt"},
    {"COM10", "COM10"},
    {"com", "com"},
    {"con_", "con_"},
    {"xcon.txt", "xcon.txt"},
    {"com⁴", "com⁴"},
    {"ｃｏｎ.txt", "ｃｏｎ.txt"},
    /* trimming */
    {"report.pdf.", "report.pdf"},
    {"report.pdf . . ", "report.pdf"},
    {"   name", "name"},
    {".hidden", "hidden"},
    {"..secret.docx", "secret.docx"},
    {" . name . ", "name"},
    /* invisible and reordering characters */
    {"invoice\xe2\x80\xae"
     "fdp.exe",
     "invoicefdp.exe"},
    {"a\xe2\x80\xaa"
     "b\xe2\x80\xab"
     "c\xe2\x80\xac"
     "d\xe2\x80\xad"
     "e",
     "abcde"},
    {"a\xe2\x81\xa6"
     "b\xe2\x81\xa7"
     "c\xe2\x81\xa8"
     "d\xe2\x81\xa9"
     "e",
     "abcde"},
    {"re\xe2\x80\x8bpo\xe2\x80\x8crt\xe2\x80\x8d.\xe2\x80\x8e"
     "pdf\xe2\x80\x8f",
     "report.pdf"},
    {"\xef\xbb\xbfnote.txt", "note.txt"},
    {"a\xe2\x81\xa0"
     "b\xc2\xad"
     "c.txt",
     "abc.txt"},
    {"line\xe2\x80\xa8two\xe2\x80\xa9.txt", "linetwo.txt"},
    {"a\tb\nc\rd\x7f"
     "e\xc2\x85"
     "f\xc2\x9b"
     "g",
     "abcdefg"},
    {"tag\xf3\xa0\x80\x81\xf3\xa0\x81\x81.txt", "tag.txt"},
    {"pdf\xe3\x85\xa4.exe", "pdf.exe"},
    /* NFD in, NFC out */
    {"\xe3\x81\x8b\xe3\x82\x99.txt", "が.txt"},
    /* blanks inside are kept, U+3000 too */
    {"a  b\xe3\x80\x80"
     "c.txt",
     "a  b\xe3\x80\x80"
     "c.txt"},
    {"😀 emoji.png", "😀 emoji.png"},
    /* a temporary name dropped by a user is no longer one */
    {".~mugaika-0123456789abcdef.tmp", "~mugaika-0123456789abcdef.tmp"},
};

static void test_safe_table(void)
{
    for (size_t i = 0; i < G_N_ELEMENTS(safe_cases); i++) {
        const struct safe_case *c = &safe_cases[i];
        char *got = mg_fsname_safe(c->in, "fallback");

        if (strcmp(got, c->want) != 0)
            g_error("safe(\"%s\") = \"%s\", want \"%s\"", c->in, got, c->want);
        check_safe_result(c->in, got);
        g_free(got);
    }
}

static void test_safe_fallback(void)
{
    static const char *const empty[] = {
        "", ".", "..", "...", " ", " . ", "\xe2\x80\x8b", "\xe2\x80\xae\xe2\x80\x8e", "\t\n",
    };
    char *got;

    for (size_t i = 0; i < G_N_ELEMENTS(empty); i++) {
        got = mg_fsname_safe(empty[i], "file-1");
        if (strcmp(got, "file-1") != 0)
            g_error("safe(\"%s\") = \"%s\", want the fallback", empty[i], got);
        g_free(got);
    }
    got = mg_fsname_safe(NULL, "file-2");
    g_assert_cmpstr(got, ==, "file-2");
    g_free(got);
    /* the fallback is made safe too, and has a fallback of its own */
    got = mg_fsname_safe("", "con");
    g_assert_cmpstr(got, ==, "_con");
    g_free(got);
    got = mg_fsname_safe("..", "a/b");
    g_assert_cmpstr(got, ==, "a_b");
    g_free(got);
    got = mg_fsname_safe("", NULL);
    g_assert_cmpstr(got, ==, "file");
    g_free(got);
    got = mg_fsname_safe(".", "..");
    g_assert_cmpstr(got, ==, "file");
    g_free(got);
    /* invalid UTF-8 given directly is repaired, not trusted */
    got = mg_fsname_safe("a\xff"
                         "b",
                         "x");
    g_assert_cmpstr(got, ==, "a_b");
    g_free(got);
}

/* ---- safe: length ---------------------------------------------------- */

static void test_safe_long_japanese(void)
{
    GString *in = g_string_new(NULL);
    char *got;

    for (int i = 0; i < 300; i++)
        g_string_append(in, i % 2 == 0 ? "申" : "請");
    g_string_append(in, ".xlsx");
    got = mg_fsname_safe(in->str, "x");
    check_safe_result(in->str, got);
    g_assert_true(g_str_has_suffix(got, ".xlsx"));
    /* 83 characters of 3 bytes + ".xlsx" = 254 bytes: the longest fit */
    g_assert_cmpuint(strlen(got), ==, 83 * 3 + 5);
    g_assert_cmpuint(utf16_units(got), ==, 83 + 5);
    g_assert_true(strncmp(got, in->str, 83 * 3) == 0);
    g_free(got);
    g_string_free(in, TRUE);
}

static void test_safe_long_emoji(void)
{
    GString *in = g_string_new(NULL);
    char *got;

    /* U+1F600 is 4 UTF-8 bytes and a surrogate pair in UTF-16 */
    for (int i = 0; i < 200; i++)
        g_string_append(in, "😀");
    g_string_append(in, ".txt");
    got = mg_fsname_safe(in->str, "x");
    check_safe_result(in->str, got);
    g_assert_true(g_str_has_suffix(got, ".txt"));
    g_assert_cmpuint(strlen(got), ==, 62 * 4 + 4);
    g_assert_cmpuint(utf16_units(got), ==, 62 * 2 + 4);
    g_free(got);
    g_string_free(in, TRUE);

    /* mixed 1-, 2-, 3- and 4-byte characters: whatever the mix, the cut
     * lands on a character boundary within both limits */
    for (int shift = 0; shift < 4; shift++) {
        static const char *const ch[] = {"a", "é", "あ", "😀"};
        in = g_string_new(NULL);
        for (int i = 0; i < 150; i++)
            g_string_append(in, ch[(i + shift) % 4]);
        g_string_append(in, ".pdf");
        got = mg_fsname_safe(in->str, "x");
        check_safe_result(in->str, got);
        g_assert_true(g_str_has_suffix(got, ".pdf"));
        g_assert_cmpuint(strlen(got), >, 250);
        g_free(got);
        g_string_free(in, TRUE);
    }
}

static void test_safe_long_other(void)
{
    char *in, *got, *want;

    /* no extension: the whole name is cut */
    in = g_strnfill(300, 'a');
    got = mg_fsname_safe(in, "x");
    want = g_strnfill(255, 'a');
    g_assert_cmpstr(got, ==, want);
    g_free(in);
    g_free(got);
    g_free(want);

    /* an "extension" longer than 32 bytes is not kept */
    {
        char *a = g_strnfill(200, 'a'), *b = g_strnfill(100, 'b');
        in = g_strconcat(a, ".", b, NULL);
        got = mg_fsname_safe(in, "x");
        check_safe_result(in, got);
        g_assert_cmpuint(strlen(got), ==, 255);
        g_assert_true(strncmp(got, in, 255) == 0);
        g_free(a);
        g_free(b);
        g_free(in);
        g_free(got);
    }

    /* a cut that ends on a blank or a dot is trimmed */
    {
        char *a = g_strnfill(254, 'x');
        in = g_strconcat(a, " yyyy", NULL);
        got = mg_fsname_safe(in, "z");
        g_assert_cmpstr(got, ==, a);
        g_free(in);
        g_free(got);
        in = g_strconcat(a, "..yyyy yy", NULL);
        got = mg_fsname_safe(in, "z");
        g_assert_cmpstr(got, ==, a);
        g_free(in);
        g_free(got);
        g_free(a);
    }

    /* exactly 255 bytes is kept whole */
    {
        char *a = g_strnfill(251, 'k');
        in = g_strconcat(a, ".pdf", NULL);
        got = mg_fsname_safe(in, "z");
        g_assert_cmpstr(got, ==, in);
        g_free(in);
        g_free(got);
        g_free(a);
    }
}

/* ---- safe: random names ---------------------------------------------- */

static void test_safe_random(void)
{
    /* clang-format off */
    static const char *const alphabet[] = {
        "a", "Z", "0", ".", " ", "\\", "/", ":", "*", "?", "\"", "<", ">", "|", "\t", "\n",
        "\x7f", "\xc2\x85", "$", "c", "o", "n", "C", "O", "N", "u", "l", "1", "¹", "é", "が",
        "申", "｡", "ｱ", "😀", "\xe2\x80\xae", "\xe2\x80\x8b", "\xef\xbb\xbf", "\xe2\x81\xa6",
        "\xef\xbf\xbd", "\xe3\x82\x99", "\xe3\x80\x80", "~", ".~mugaika-", "0123456789abcdef",
        ".tmp", "\xf3\xa0\x80\x81",
    };
    /* clang-format on */
    GRand *r = g_rand_new_with_seed(20240406);

    for (int i = 0; i < 3000; i++) {
        GString *in = g_string_new(NULL);
        int n = g_rand_int_range(r, 0, i % 10 == 0 ? 200 : 12);
        char *got;

        for (int k = 0; k < n; k++)
            g_string_append(in, alphabet[g_rand_int_range(r, 0, G_N_ELEMENTS(alphabet))]);
        got = mg_fsname_safe(in->str, "fallback");
        check_safe_result(in->str, got);
        g_free(got);
        g_string_free(in, TRUE);
    }
    g_rand_free(r);
}

/* ---- unique ---------------------------------------------------------- */

struct dirfix {
    char *path;
    int fd;
};

static void dir_setup(struct dirfix *f, gconstpointer data)
{
    GError *err = NULL;

    (void)data;
    f->path = g_dir_make_tmp("test_fsname-XXXXXX", &err);
    g_assert_no_error(err);
    f->fd = open(f->path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    g_assert_cmpint(f->fd, >=, 0);
}

static void dir_teardown(struct dirfix *f, gconstpointer data)
{
    GDir *d = g_dir_open(f->path, 0, NULL);
    const char *e;

    (void)data;
    while (d != NULL && (e = g_dir_read_name(d)) != NULL)
        unlinkat(f->fd, e, 0);
    if (d != NULL)
        g_dir_close(d);
    close(f->fd);
    g_rmdir(f->path);
    g_free(f->path);
}

static void touch(int dirfd, const char *name)
{
    int fd = openat(dirfd, name, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);

    if (fd < 0)
        g_error("create %s: %s", name, g_strerror(errno));
    close(fd);
}

static void want_unique(int dirfd, const char *name, const char *want)
{
    char *got = mg_fsname_unique(dirfd, name);

    if (got == NULL || strcmp(got, want) != 0)
        g_error("unique(\"%s\") = \"%s\" (%s), want \"%s\"", name, got ? got : "(null)",
                got ? "" : g_strerror(errno), want);
    g_free(got);
}

static void test_unique_basic(struct dirfix *f, gconstpointer data)
{
    (void)data;
    want_unique(f->fd, "report.pdf", "report.pdf");
    touch(f->fd, "report.pdf");
    want_unique(f->fd, "report.pdf", "report (2).pdf");
    touch(f->fd, "report (2).pdf");
    want_unique(f->fd, "report.pdf", "report (3).pdf");
    want_unique(f->fd, "other.pdf", "other.pdf");
    /* without an extension */
    touch(f->fd, "README");
    want_unique(f->fd, "README", "README (2)");
    want_unique(f->fd, "readme", "readme (2)");
    /* only the last extension moves */
    touch(f->fd, "data.tar.gz");
    want_unique(f->fd, "data.tar.gz", "data.tar (2).gz");
}

static void test_unique_case(struct dirfix *f, gconstpointer data)
{
    (void)data;
    touch(f->fd, "Report.PDF");
    want_unique(f->fd, "report.pdf", "report (2).pdf");
    touch(f->fd, "REPORT (2).pdf");
    want_unique(f->fd, "report.pdf", "report (3).pdf");
    /* non-ASCII case: Ä vs ä, full-width Ａ vs ａ */
    touch(f->fd, "Äpfel.txt");
    want_unique(f->fd, "äpfel.txt", "äpfel (2).txt");
    touch(f->fd, "ＡＢＣ.txt");
    want_unique(f->fd, "ａｂｃ.txt", "ａｂｃ (2).txt");
    /* an entry in NFD, one in CP932: Windows sees the same names */
    touch(f->fd, "\xe3\x81\x8b\xe3\x82\x99.txt");
    want_unique(f->fd, "が.txt", "が (2).txt");
    touch(f->fd, "\x90\x5c\x90\xbf\x8f\x91.docx");
    want_unique(f->fd, "申請書.docx", "申請書 (2).docx");
    /* a name with a trailing dot shows as the name without it */
    touch(f->fd, "memo.txt.");
    want_unique(f->fd, "memo.txt", "memo (2).txt");
}

static void test_unique_long(struct dirfix *f, gconstpointer data)
{
    char *stem = g_strnfill(251, 's');
    char *name = g_strconcat(stem, ".pdf", NULL);
    char *got;

    (void)data;
    touch(f->fd, name);
    got = mg_fsname_unique(f->fd, name);
    g_assert_nonnull(got);
    g_assert_cmpuint(strlen(got), <=, 255);
    g_assert_true(g_str_has_suffix(got, " (2).pdf"));
    g_assert_cmpuint(strlen(got), ==, 255);
    /* the result can be created */
    touch(f->fd, got);
    g_free(got);
    g_free(name);
    g_free(stem);
}

static void test_unique_bound(struct dirfix *f, gconstpointer data)
{
    char *got;

    (void)data;
    touch(f->fd, "x");
    for (unsigned i = 2; i <= MG_FSNAME_UNIQUE_MAX; i++) {
        char *n = g_strdup_printf("x (%u)", i);
        touch(f->fd, n);
        g_free(n);
    }
    errno = 0;
    got = mg_fsname_unique(f->fd, "x");
    g_assert_null(got);
    g_assert_cmpint(errno, ==, EEXIST);
    /* a gap is found */
    g_assert_cmpint(unlinkat(f->fd, "x (5000)", 0), ==, 0);
    want_unique(f->fd, "x", "x (5000)");
}

static void test_unique_errors(struct dirfix *f, gconstpointer data)
{
    char *got;

    (void)data;
    errno = 0;
    g_assert_null(mg_fsname_unique(f->fd, "a/b"));
    g_assert_cmpint(errno, ==, EINVAL);
    errno = 0;
    g_assert_null(mg_fsname_unique(f->fd, ""));
    g_assert_cmpint(errno, ==, EINVAL);
    errno = 0;
    g_assert_null(mg_fsname_unique(f->fd, NULL));
    g_assert_cmpint(errno, ==, EINVAL);
    errno = 0;
    g_assert_null(mg_fsname_unique(-1, "a"));
    g_assert_cmpint(errno, ==, EBADF);
    /* an O_PATH descriptor is enough */
    {
        int pfd = open(f->path, O_PATH | O_DIRECTORY | O_CLOEXEC);
        g_assert_cmpint(pfd, >=, 0);
        touch(f->fd, "a");
        got = mg_fsname_unique(pfd, "a");
        g_assert_cmpstr(got, ==, "a (2)");
        g_free(got);
        close(pfd);
    }
}

/* ---- temporary names ------------------------------------------------- */

static void test_temp(void)
{
    static const char *const not_temp[] = {
        "",
        "report.pdf",
        ".~mugaika-0123456789ABCDEF.tmp",
        ".~mugaika-0123456789abcdeg.tmp",
        ".~mugaika-0123456789abcde.tmp",
        ".~mugaika-0123456789abcdef0.tmp",
        ".~mugaika-0123456789abcdef.tmp.pdf",
        ".~mugaika-0123456789abcdef.TMP",
        "~mugaika-0123456789abcdef.tmp",
        ".~MUGAIKA-0123456789abcdef.tmp",
        "x.~mugaika-0123456789abcdef.tmp",
    };
    GHashTable *seen = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);

    g_assert_true(mg_fsname_is_temp(".~mugaika-0123456789abcdef.tmp"));
    g_assert_false(mg_fsname_is_temp(NULL));
    for (size_t i = 0; i < G_N_ELEMENTS(not_temp); i++)
        if (mg_fsname_is_temp(not_temp[i]))
            g_error("is_temp(\"%s\") is true", not_temp[i]);

    for (int i = 0; i < 1000; i++) {
        char *t = mg_fsname_temp(i % 2 ? "report.pdf" : NULL);
        char *s;

        g_assert_true(mg_fsname_is_temp(t));
        g_assert_true(g_str_has_prefix(t, ".~mugaika-"));
        g_assert_cmpuint(strlen(t), ==, 30);
        if (!g_hash_table_add(seen, g_strdup(t)))
            g_error("temp name repeated: %s", t);
        /* a user who drops this name does not get a temporary name out */
        s = mg_fsname_safe(t, "x");
        g_assert_false(mg_fsname_is_temp(s));
        g_assert_cmpstr(s, ==, t + 1);
        g_free(s);
        g_free(t);
    }
    g_hash_table_destroy(seen);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/fsname/decode/table", test_decode_table);
    g_test_add_func("/fsname/decode/null", test_decode_null);
    g_test_add_func("/fsname/safe/table", test_safe_table);
    g_test_add_func("/fsname/safe/fallback", test_safe_fallback);
    g_test_add_func("/fsname/safe/long-japanese", test_safe_long_japanese);
    g_test_add_func("/fsname/safe/long-emoji", test_safe_long_emoji);
    g_test_add_func("/fsname/safe/long-other", test_safe_long_other);
    g_test_add_func("/fsname/safe/random", test_safe_random);
    g_test_add("/fsname/unique/basic", struct dirfix, NULL, dir_setup, test_unique_basic,
               dir_teardown);
    g_test_add("/fsname/unique/case", struct dirfix, NULL, dir_setup, test_unique_case,
               dir_teardown);
    g_test_add("/fsname/unique/long", struct dirfix, NULL, dir_setup, test_unique_long,
               dir_teardown);
    g_test_add("/fsname/unique/bound", struct dirfix, NULL, dir_setup, test_unique_bound,
               dir_teardown);
    g_test_add("/fsname/unique/errors", struct dirfix, NULL, dir_setup, test_unique_errors,
               dir_teardown);
    g_test_add_func("/fsname/temp", test_temp);
    return g_test_run();
}
