/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * NAME
 *	test_rules 1
 * SUMMARY
 *	unit tests of the rules module (rules.h)
 * SYNOPSIS
 *	test_rules --tap
 * DESCRIPTION
 *	Each test writes its *.rules files into a fresh temporary
 *	directory and loads it with mg_rules_load, as the daemons do.
 *	Error messages are compared exactly, with the directory name
 *	replaced by "D" (so "D/10-a.rules:5: [rule a] bogus: unknown key").
 *
 *	Covered: every match key; order across files (byte order of names)
 *	and within a file; every error class with its file, line and key;
 *	unreachable rules (reported and not reported); options; notice
 *	fallbacks; reference counting; the built-in policy, and that it
 *	is the same policy as the rules/ directory of the source tree
 *	(MUGAIKA_RULES_DIR, set by meson; the test fails without it).
 */
#include <string.h>

#include <glib.h>
#include <glib/gstdio.h>

#include <mugaika/rules.h>

/* Helpers. */

static void remove_dir(const char *dir)
{
    GDir *d = g_dir_open(dir, 0, NULL);
    const char *name;

    g_assert_nonnull(d);
    while ((name = g_dir_read_name(d)) != NULL) {
        char *p = g_build_filename(dir, name, NULL);
        g_assert_cmpint(g_remove(p), ==, 0);
        g_free(p);
    }
    g_dir_close(d);
    g_assert_cmpint(g_rmdir(dir), ==, 0);
}

/* files: name, text, name, text, ..., NULL. Returns the policy, or NULL
 * and *msg (owned) with the directory shown as "D". */
static struct mg_rules *load_v(const char *const *files, char **msg)
{
    char *dir = g_dir_make_tmp("mg-rules-XXXXXX", NULL);
    struct mg_rules *r;
    GError *err = NULL;

    g_assert_nonnull(dir);
    for (unsigned i = 0; files[i] != NULL; i += 2) {
        char *p = g_build_filename(dir, files[i], NULL);
        g_assert_true(g_file_set_contents(p, files[i + 1], -1, NULL));
        g_free(p);
    }
    r = mg_rules_load(dir, &err);
    if (msg != NULL)
        *msg = NULL;
    if (r == NULL) {
        g_assert_nonnull(err);
        g_assert_true(g_error_matches(err, MG_RULES_ERROR, 0));
        g_assert_nonnull(msg);
        GString *s = g_string_new(err->message);
        g_string_replace(s, dir, "D", 0);
        *msg = g_string_free(s, FALSE);
        g_error_free(err);
    } else {
        g_assert_null(err);
    }
    remove_dir(dir);
    g_free(dir);
    return r;
}

/* One file "10-a.rules" that must load. */
static struct mg_rules *load_ok(const char *text)
{
    const char *files[] = {"10-a.rules", text, NULL};
    char *msg = NULL;
    struct mg_rules *r = load_v(files, &msg);

    if (r == NULL)
        g_error("unexpected load failure:\n%s\n--- for:\n%s", msg, text);
    return r;
}

/* One file "10-a.rules" that must fail with exactly `want`. */
static void expect_errors(const char *text, const char *want)
{
    const char *files[] = {"10-a.rules", text, NULL};
    char *msg = NULL;
    struct mg_rules *r = load_v(files, &msg);

    if (r != NULL)
        g_error("policy loaded, expected:\n%s\n--- for:\n%s", want, text);
    g_assert_cmpstr(msg, ==, want);
    g_free(msg);
}

static struct mg_rule_subject subject(const char *detected)
{
    struct mg_rule_subject s = {0};

    s.detected_type = detected;
    s.role = MG_ROLE_ATTACHMENT;
    return s;
}

static const char *match_id(const struct mg_rules *r, const struct mg_rule_subject *s)
{
    const struct mg_rule *rule = mg_rules_match(r, s);

    g_assert_nonnull(rule);
    return mg_rule_id(rule);
}

/* Match keys. */

struct match_case {
    const char *keys; /* lines of [rule r] before "action = drop" */
    const char *detected, *declared, *filename, *sender;
    const char *rcpt[3];
    uint64_t size;
    unsigned flags, depth;
    enum mg_item_role role;
    bool match;
};

#define ATT  MG_ROLE_ATTACHMENT
#define BODY MG_ROLE_BODY
#define ENC  MG_ITEM_ENCRYPTED
#define MAC  MG_ITEM_MACROS
#define MIS  MG_ITEM_MISMATCH
#define INF  MG_ITEM_INFECTED
#define NMM  MG_ITEM_NAME_MISMATCH

static const struct match_case match_cases[] = {
    /* detected-type */
    {"detected-type = text/plain", "text/plain", .match = true},
    {"detected-type = text/plain", "TEXT/Plain", .match = true},
    {"detected-type = Text/PLAIN", "text/plain", .match = true},
    {"detected-type = text/plain", "application/pdf", .match = false},
    {"detected-type = text/plain;text/csv", "text/csv", .match = true},
    {"detected-type = application/vnd.openxmlformats-officedocument.*",
     "application/vnd.openxmlformats-officedocument.wordprocessingml.document", .match = true},
    {"detected-type = application/vnd.openxmlformats-officedocument.*", "application/vnd.ms-excel",
     .match = false},
    {"detected-type = text/h?ml", "text/html", .match = true},
    {"detected-type = text/h?ml", "text/htm", .match = false},
    {"detected-type = */*", "x/y", .match = true},
    /* declared-type */
    {"declared-type = text/html", "text/plain", .declared = "text/html", .match = true},
    {"declared-type = text/html", "text/plain", .declared = "Text/HTML", .match = true},
    {"declared-type = text/html", "text/plain", .declared = "text/plain", .match = false},
    {"declared-type = */*", "text/plain", .declared = NULL, .match = false},
    /* filename */
    {"filename = *.pdf", "x/y", .filename = "Report.PDF", .match = true},
    {"filename = *.pdf", "x/y", .filename = "report.pdf.exe", .match = false},
    {"filename = *.pdf", "x/y", .filename = NULL, .match = false},
    {"filename = 報告*", "x/y", .filename = "報告書.txt", .match = true},
    {"filename = 報告?.txt", "x/y", .filename = "報告書.txt", .match = true},
    {"filename = 報告?.txt", "x/y", .filename = "報告書書.txt", .match = false},
    {"filename = invoice.zip;*.lzh", "x/y", .filename = "INVOICE.ZIP", .match = true},
    /* extension */
    {"extension = pdf;DOCX", "x/y", .filename = "a.docx", .match = true},
    {"extension = pdf;DOCX", "x/y", .filename = "a.PDF", .match = true},
    {"extension = pdf", "x/y", .filename = "a.tar.pdf", .match = true},
    {"extension = pdf", "x/y", .filename = "a.pdf.exe", .match = false},
    {"extension = pdf", "x/y", .filename = "pdf", .match = false},
    {"extension = pdf", "x/y", .filename = "a.", .match = false},
    {"extension = pdf", "x/y", .filename = NULL, .match = false},
    {"extension = pdf", "x/y", .filename = "a.pdfx", .match = false},
    /* sizes */
    {"min-size = 1K", "x/y", .size = 1023, .match = false},
    {"min-size = 1K", "x/y", .size = 1024, .match = true},
    {"max-size = 1M", "x/y", .size = 1048576, .match = true},
    {"max-size = 1M", "x/y", .size = 1048577, .match = false},
    {"min-size = 10\nmax-size = 20", "x/y", .size = 20, .match = true},
    {"min-size = 10\nmax-size = 20", "x/y", .size = 9, .match = false},
    {"min-size = 2G", "x/y", .size = 2147483647, .match = false},
    {"min-size = 2g", "x/y", .size = 2147483648, .match = true},
    {"max-size = 0", "x/y", .size = 0, .match = true},
    /* sender */
    {"sender = *@example.jp", "x/y", .sender = "Alice@Example.JP", .match = true},
    {"sender = *@example.jp", "x/y", .sender = "alice@example.com", .match = false},
    {"sender = *@example.jp", "x/y", .sender = NULL, .match = false},
    /* recipient: any of them */
    {"recipient = soumu@*", "x/y", .rcpt = {"kikaku@city.example.jp", "SOUMU@city.example.jp"},
     .match = true},
    {"recipient = soumu@*", "x/y", .rcpt = {"kikaku@city.example.jp"}, .match = false},
    {"recipient = soumu@*", "x/y", .rcpt = {NULL}, .match = false},
    /* flags */
    {"flags = encrypted;macros", "x/y", .flags = ENC | MAC, .match = true},
    {"flags = encrypted;macros", "x/y", .flags = ENC | MAC | MIS, .match = true},
    {"flags = encrypted;macros", "x/y", .flags = ENC, .match = false},
    {"flags = mismatch", "x/y", .flags = MIS, .match = true},
    {"without-flags = mismatch", "x/y", .flags = MIS, .match = false},
    {"without-flags = mismatch", "x/y", .flags = ENC, .match = true},
    {"flags = name-mismatch", "x/y", .flags = NMM, .match = true},
    {"flags = name-mismatch", "x/y", .flags = MIS, .match = false},
    {"flags = mismatch", "x/y", .flags = NMM, .match = false},
    {"without-flags = name-mismatch", "x/y", .flags = NMM | ENC, .match = false},
    {"without-flags = macros;encrypted", "x/y", .flags = ENC, .match = false},
    {"without-flags = macros;encrypted", "x/y", .flags = 0, .match = true},
    /* depth */
    {"min-depth = 1\nmax-depth = 2", "x/y", .depth = 0, .match = false},
    {"min-depth = 1\nmax-depth = 2", "x/y", .depth = 1, .match = true},
    {"min-depth = 1\nmax-depth = 2", "x/y", .depth = 2, .match = true},
    {"min-depth = 1\nmax-depth = 2", "x/y", .depth = 3, .match = false},
    {"max-depth = 0", "x/y", .depth = 0, .match = true},
    /* part */
    {"part = body", "text/plain", .role = BODY, .match = true},
    {"part = body", "text/plain", .role = ATT, .match = false},
    {"part = attachment", "text/plain", .role = ATT, .match = true},
    {"part = attachment", "text/plain", .role = BODY, .match = false},
    /* everything given must match */
    {"part = attachment\ndetected-type = application/pdf\nextension = pdf\nmax-size = 10M\n"
     "sender = *@example.jp\nwithout-flags = infected",
     "application/pdf", .filename = "a.pdf", .sender = "x@example.jp", .size = 5, .role = ATT,
     .match = true},
    {"part = attachment\ndetected-type = application/pdf\nextension = pdf\nmax-size = 10M\n"
     "sender = *@example.jp\nwithout-flags = infected",
     "application/pdf", .filename = "a.pdf", .sender = "x@example.com", .size = 5, .role = ATT,
     .match = false},
    /* no match key: a catch-all */
    {"", "x/y", .match = true},
};

static void test_match_keys(void)
{
    for (unsigned i = 0; i < G_N_ELEMENTS(match_cases); i++) {
        const struct match_case *c = &match_cases[i];
        char *text = g_strdup_printf("[rule r]\n%s\naction = drop\n", c->keys);
        struct mg_rules *r = load_ok(text);
        struct mg_rule_subject s = subject(c->detected);
        const char *rcpt[4] = {c->rcpt[0], c->rcpt[1], c->rcpt[2], NULL};

        s.declared_type = c->declared;
        s.filename = c->filename;
        s.sender = c->sender;
        s.recipients = c->rcpt[0] != NULL ? rcpt : NULL;
        s.size = c->size;
        s.flags = c->flags;
        s.depth = c->depth;
        s.role = c->role;
        if (strcmp(match_id(r, &s), c->match ? "r" : "builtin:default-drop") != 0)
            g_error("case %u (%s): expected %s", i, c->keys, c->match ? "match" : "no match");
        g_assert_cmpuint(mg_rules_count(r), ==, 1);
        mg_rules_unref(r);
        g_free(text);
    }
}

/* Order. */

static void test_order_files(void)
{
    /* written in another order than they are read: A < a < b (bytes) */
    const char *files[] = {
        "b.rules",     "[rule from-b]\ndetected-type = text/plain\naction = drop\n",
        "a.rules",     "[rule from-a]\ndetected-type = text/*\nmin-size = 1\naction = keep\n",
        "A.rules",     "[rule from-upper-a]\ndetected-type = image/*\naction = text\n",
        "README",      "[rule ignored]\naction = keep\n",
        "c.rules~",    "[rule ignored2]\naction = keep\n",
        ".hid.rules",  "[rule ignored3]\naction = keep\n",
        "x.rules.bak", "garbage that would not parse\n",
        NULL,
    };
    char *msg = NULL;
    struct mg_rules *r = load_v(files, &msg);
    struct mg_rule_subject s = subject("text/plain");
    const struct mg_rule *rule;

    g_assert_null(msg);
    g_assert_nonnull(r);
    g_assert_cmpuint(mg_rules_count(r), ==, 3);
    s.size = 5;
    rule = mg_rules_match(r, &s);
    g_assert_cmpstr(mg_rule_id(rule), ==, "from-a");
    g_assert_cmpint(mg_rule_action(rule), ==, MG_ACTION_KEEP);
    g_assert_true(g_str_has_suffix(mg_rule_source(rule), "/a.rules:1"));
    s.size = 0; /* from-a does not match: the next file's rule does */
    g_assert_cmpstr(match_id(r, &s), ==, "from-b");
    s.detected_type = "image/png";
    g_assert_cmpstr(match_id(r, &s), ==, "from-upper-a");
    s.detected_type = "application/zip";
    rule = mg_rules_match(r, &s);
    g_assert_cmpstr(mg_rule_id(rule), ==, "builtin:default-drop");
    g_assert_cmpstr(mg_rule_source(rule), ==, "builtin");
    g_assert_cmpint(mg_rule_action(rule), ==, MG_ACTION_DROP);
    g_assert_nonnull(mg_rule_notice(rule, "ja"));
    g_assert_nonnull(mg_rule_notice(rule, "en"));

    GString *d = g_string_new(NULL);
    mg_rules_describe(r, d);
    const char *p1 = strstr(d->str, "rule from-upper-a");
    const char *p2 = strstr(d->str, "rule from-a");
    const char *p3 = strstr(d->str, "rule from-b");
    const char *p4 = strstr(d->str, "rule builtin:default-drop");
    g_assert_true(p1 != NULL && p2 != NULL && p3 != NULL && p4 != NULL);
    g_assert_true(p1 < p2 && p2 < p3 && p3 < p4);
    g_assert_null(strstr(d->str, "ignored"));
    g_string_free(d, TRUE);
    mg_rules_unref(r);
}

static void test_order_groups(void)
{
    struct mg_rules *r = load_ok("# two overlapping rules: the first wins\n"
                                 "[rule small]\nmax-size = 100\naction = keep\n\n"
                                 "[rule pdf]\ndetected-type = application/pdf\naction = disarm\n");
    struct mg_rule_subject s = subject("application/pdf");

    s.size = 10;
    g_assert_cmpstr(match_id(r, &s), ==, "small");
    s.size = 1000;
    g_assert_cmpstr(match_id(r, &s), ==, "pdf");
    g_assert_true(g_str_has_suffix(mg_rule_source(mg_rules_match(r, &s)), "/10-a.rules:6"));
    mg_rules_unref(r);
}

/* Syntax details of the scanner. */

static void test_syntax(void)
{
    /* CRLF, byte order mark, indentation, comments, escapes, spaces */
    struct mg_rules *r = load_ok("\xef\xbb\xbf# policy\r\n"
                                 "  [rule a]  \r\n"
                                 "\t# indented comment\r\n"
                                 "  detected-type =  text/plain ; text/csv ;\r\n"
                                 "filename = a\\;b.txt;c\\sd.txt\r\n"
                                 "action=keep\r\n"
                                 "notice-ja = 一行目\\n二行目\\t\\\\\r\n");
    struct mg_rule_subject s = subject("text/csv");
    const struct mg_rule *rule;

    s.filename = "a;b.txt";
    rule = mg_rules_match(r, &s);
    g_assert_cmpstr(mg_rule_id(rule), ==, "a");
    g_assert_true(g_str_has_suffix(mg_rule_source(rule), "/10-a.rules:2"));
    g_assert_cmpstr(mg_rule_notice(rule, "ja"), ==, "一行目\n二行目\t\\");
    s.filename = "c d.txt";
    g_assert_cmpstr(match_id(r, &s), ==, "a");
    s.filename = "a";
    g_assert_cmpstr(match_id(r, &s), ==, "builtin:default-drop");
    mg_rules_unref(r);
}

/* Errors: each class, exact file, line, group and key. */

struct error_case {
    const char *text;
    const char *want;
};

static const struct error_case error_cases[] = {
    {"[rule a]\naction = keep\n[policy]\nx = 1\n",
     "D/10-a.rules:3: [policy]: unknown group name (a rule is [rule ID])"},
    {"[rule Bad]\naction = keep\n",
     "D/10-a.rules:1: [rule Bad]: bad rule id \"Bad\" (expected lower-case letters, digits, "
     "'.', '_', '-', starting with a letter or digit)"},
    {"[rule a]\naction = keep\ncolour = red\n", "D/10-a.rules:3: [rule a] colour: unknown key"},
    {"[rule a]\naction = keep\nnotice[ja] = x\n",
     "D/10-a.rules:3: [rule a] notice[ja]: unknown key"},
    {"[rule a]\naction = burn\n",
     "D/10-a.rules:2: [rule a] action: bad value \"burn\" (expected keep, text, disarm, flatten, "
     "unpack, drop, hold or reject)"},
    {"[rule a]\naction = keep\ndetected-type = pdf\n",
     "D/10-a.rules:3: [rule a] detected-type: bad glob \"pdf\" (expected type/subtype)"},
    {"[rule a]\naction = keep\ndeclared-type = text/plain;text/pl ain\n",
     "D/10-a.rules:3: [rule a] declared-type: bad glob \"text/pl ain\" (expected type/subtype)"},
    {"[rule a]\naction = keep\ndetected-type = a/b/c\n",
     "D/10-a.rules:3: [rule a] detected-type: bad glob \"a/b/c\" (expected type/subtype)"},
    {"[rule a]\naction = keep\nfilename = dir/x.txt\n",
     "D/10-a.rules:3: [rule a] filename: bad glob \"dir/x.txt\" (a file name has no '/')"},
    {"[rule a]\naction = keep\nsender = a b@x\n",
     "D/10-a.rules:3: [rule a] sender: bad glob \"a b@x\""},
    {"[rule a]\naction = keep\nextension = .pdf\n",
     "D/10-a.rules:3: [rule a] extension: bad value \".pdf\": an extension is given without the "
     "dot and without wildcards"},
    {"[rule a]\naction = keep\nmax-size = 10MB\n",
     "D/10-a.rules:3: [rule a] max-size: bad size \"10MB\" (expected bytes, or a number with K, M "
     "or G)"},
    {"[rule a]\naction = keep\nmin-size = -1\n",
     "D/10-a.rules:3: [rule a] min-size: bad size \"-1\" (expected bytes, or a number with K, M or "
     "G)"},
    {"[rule a]\naction = keep\nmax-size = 99999999999999999999\n",
     "D/10-a.rules:3: [rule a] max-size: bad size \"99999999999999999999\" (expected bytes, or a "
     "number with K, M or G)"},
    {"[rule a]\naction = keep\nmin-size = 2M\nmax-size = 1M\n",
     "D/10-a.rules:3: [rule a] min-size: min > max: min-size 2097152 bytes is greater than "
     "max-size 1048576 bytes"},
    {"[rule a]\naction = keep\nmax-depth = 1\nmin-depth = 2\n",
     "D/10-a.rules:4: [rule a] min-depth: min > max: min-depth 2 is greater than max-depth 1"},
    {"[rule a]\naction = keep\nmin-depth = one\n",
     "D/10-a.rules:3: [rule a] min-depth: bad value \"one\" (expected a number, 0 for a mail "
     "part)"},
    {"[rule a]\naction = keep\nflags = macro\n",
     "D/10-a.rules:3: [rule a] flags: bad value \"macro\" (expected encrypted, macros, mismatch, "
     "infected or name-mismatch)"},
    {"[rule a]\naction = drop\nflags = macros\nwithout-flags = macros\n",
     "D/10-a.rules:4: [rule a] without-flags: bad value: flags and without-flags name the same "
     "flag, so the rule can never match"},
    {"[rule a]\naction = keep\npart = attachments\n",
     "D/10-a.rules:3: [rule a] part: bad value \"attachments\" (expected body or attachment)"},
    {"[rule a]\n\ndetected-type = text/plain\n",
     "D/10-a.rules:1: [rule a] action: missing: every rule needs an action"},
    {"[rule a]\naction = keep\ndetected-type = text/plain\naction = drop\n",
     "D/10-a.rules:4: [rule a] action: key given twice (first at line 2)"},
    {"[rule a]\naction = keep\nthis line is junk\n",
     "D/10-a.rules:3: syntax: \"this line is junk\" is neither a group, key = value, comment nor "
     "blank line"},
    {"[rule a\naction = keep\n",
     "D/10-a.rules:1: syntax: bad group line \"[rule a\" (expected [rule ID])\n"
     "D/10-a.rules:2: action: key outside any group (start with [rule ID])"},
    {"action = keep\n[rule a]\naction = keep\n",
     "D/10-a.rules:1: action: key outside any group (start with [rule ID])"},
    {"[rule a]\naction = keep\n = x\n",
     "D/10-a.rules:3: syntax: \"= x\" is neither a group, key = value, comment nor blank line"},
    {"[rule a]\naction = keep\nnotice-en = bad \\q escape\n",
     "D/10-a.rules:3: [rule a] notice-en: bad value \"bad \\q escape\": invalid escape sequence"},
    {"[rule a]\naction = keep\ndetected-type = text/plain;;text/csv\n",
     "D/10-a.rules:3: [rule a] detected-type: bad value \"text/plain;;text/csv\": empty list item"},
    {"[rule a]\naction = keep\nnotice-ja =\n",
     "D/10-a.rules:3: [rule a] notice-ja: bad value: empty text"},
    {"[rule a]\naction = keep\nbad = \xff\n", "D/10-a.rules:3: syntax: not valid UTF-8"},
    /* safety and options */
    {"[rule a]\nflags = infected\naction = keep\n",
     "D/10-a.rules:3: [rule a] action: keep is not allowed: a rule that can match infected items "
     "(flags includes infected) may only drop, hold or reject"},
    {"[rule a]\nflags = encrypted;macros\naction = keep\n",
     "D/10-a.rules:3: [rule a] action: keep is not allowed: a rule for items with macros (flags "
     "includes macros) cannot keep them; an item with macros is never kept"},
    /* one error for the key, the first that applies */
    {"[rule a]\nflags = infected;macros\naction = keep\n",
     "D/10-a.rules:3: [rule a] action: keep is not allowed: a rule that can match infected items "
     "(flags includes infected) may only drop, hold or reject"},
    {"[rule a]\naction = keep\nurls = plain\n",
     "D/10-a.rules:3: [rule a] urls: only allowed with action text"},
    {"[rule a]\naction = text\nurls = clickable\n",
     "D/10-a.rules:3: [rule a] urls: bad value \"clickable\" (expected defang or plain)"},
    {"[rule a]\naction = text\nprefer-html = true\n",
     "D/10-a.rules:3: [rule a] prefer-html: only allowed with action text and part = body"},
    {"[rule a]\naction = text\npart = attachment\nprefer-html = true\n",
     "D/10-a.rules:4: [rule a] prefer-html: only allowed with action text and part = body"},
    {"[rule a]\naction = keep\npart = body\nprefer-html = true\n",
     "D/10-a.rules:4: [rule a] prefer-html: only allowed with action text and part = body"},
    {"[rule a]\naction = keep\nlinks = remove\n",
     "D/10-a.rules:3: [rule a] links: only allowed with action disarm"},
    {"[rule a]\naction = disarm\nlinks = defang\n",
     "D/10-a.rules:3: [rule a] links: bad value \"defang\" (expected keep or remove)"},
    {"[rule a]\naction = drop\nhold = part\n",
     "D/10-a.rules:3: [rule a] hold: only allowed with action hold"},
    {"[rule a]\naction = hold\nhold = attachment\n",
     "D/10-a.rules:3: [rule a] hold: bad value \"attachment\" (expected message or part)"},
    {"[rule a]\naction = disarm\nrepack = zip\n",
     "D/10-a.rules:3: [rule a] repack: only allowed with action unpack"},
    {"[rule a]\naction = unpack\nrepack = tar\n",
     "D/10-a.rules:3: [rule a] repack: bad value \"tar\" (expected none or zip)"},
    {"[rule a]\naction = text\npart = body\nprefer-html = yes\n",
     "D/10-a.rules:4: [rule a] prefer-html: bad value \"yes\" (expected true or false)"},
    /* duplicate id in one file */
    {"[rule a]\naction = keep\ndetected-type = a/b\n[rule a]\naction = drop\n",
     "D/10-a.rules:4: [rule a]: duplicate id: first defined at D/10-a.rules:1"},
    /* no rule at all */
    {"# nothing but comments\n\n", "D: no policy: no rule is defined"},
    /* several errors: all reported, in line order */
    {"[rule a]\ncolour = red\nmin-size = x\n[rule b]\naction = keep\n[rule c]\n",
     "D/10-a.rules:1: [rule a] action: missing: every rule needs an action\n"
     "D/10-a.rules:2: [rule a] colour: unknown key\n"
     "D/10-a.rules:3: [rule a] min-size: bad size \"x\" (expected bytes, or a number with K, M or "
     "G)\n"
     "D/10-a.rules:6: [rule c] action: missing: every rule needs an action"},
};

static void test_errors(void)
{
    for (unsigned i = 0; i < G_N_ELEMENTS(error_cases); i++)
        expect_errors(error_cases[i].text, error_cases[i].want);
}

static void test_error_files(void)
{
    const char *dup[] = {
        "20-b.rules", "[rule x]\ndetected-type = text/plain\naction = keep\n",
        "10-a.rules", "# first\n\n[rule x]\ndetected-type = image/png\naction = drop\n",
        NULL,
    };
    const char *unreach[] = {
        "20-b.rules", "\n[rule late]\ndetected-type = text/plain\naction = keep\n",
        "10-a.rules", "[rule early]\ndetected-type = text/*\naction = drop\n",
        NULL,
    };
    const char *none[] = {"README", "not a policy\n", NULL};
    const char *empty[] = {NULL};
    char *msg;

    g_assert_null(load_v(dup, &msg));
    g_assert_cmpstr(msg, ==,
                    "D/20-b.rules:1: [rule x]: duplicate id: first defined at "
                    "D/10-a.rules:3");
    g_free(msg);
    g_assert_null(load_v(unreach, &msg));
    g_assert_cmpstr(msg, ==,
                    "D/20-b.rules:2: [rule late]: unreachable: everything it matches is "
                    "matched first by rule early at D/10-a.rules:1");
    g_free(msg);
    g_assert_null(load_v(none, &msg));
    g_assert_cmpstr(msg, ==, "D: no policy: the directory has no *.rules file");
    g_free(msg);
    g_assert_null(load_v(empty, &msg));
    g_assert_cmpstr(msg, ==, "D: no policy: the directory has no *.rules file");
    g_free(msg);
}

static void test_error_dir(void)
{
    GError *err = NULL;
    char *dir = g_dir_make_tmp("mg-rules-XXXXXX", NULL);
    char *missing = g_build_filename(dir, "nonexistent", NULL);
    char *want =
        g_strdup_printf("%s: cannot open the policy directory: No such file or directory", missing);
    char *sub = g_build_filename(dir, "sub.rules", NULL);

    g_assert_null(mg_rules_load(missing, &err));
    g_assert_error(err, MG_RULES_ERROR, 0);
    g_assert_cmpstr(err->message, ==, want);
    g_clear_error(&err);

    /* a directory named *.rules is not a rules file */
    g_assert_cmpint(g_mkdir(sub, 0700), ==, 0);
    g_assert_null(mg_rules_load(dir, &err));
    g_free(want);
    want = g_strdup_printf("%s: cannot read: not a regular file", sub);
    g_assert_cmpstr(err->message, ==, want);
    g_clear_error(&err);
    g_assert_cmpint(g_rmdir(sub), ==, 0);
    g_assert_cmpint(g_rmdir(dir), ==, 0);
    g_free(want);
    g_free(sub);
    g_free(missing);
    g_free(dir);
}

static void test_error_cap(void)
{
    GString *t = g_string_new("[rule a]\naction = keep\n");
    char *msg = NULL;

    for (unsigned i = 0; i < 150; i++)
        g_string_append_printf(t, "bad%u = 1\n", i);
    const char *files[] = {"10-a.rules", t->str, NULL};
    g_assert_null(load_v(files, &msg));
    g_assert_true(g_str_has_prefix(msg, "D/10-a.rules:3: [rule a] bad0: unknown key\n"));
    g_assert_true(g_str_has_suffix(msg, "\n(50 more errors not shown)"));
    g_free(msg);
    g_string_free(t, TRUE);
}

/* Unreachable rules. */

struct reach_case {
    const char *a, *b; /* keys of the earlier and the later rule */
    bool unreachable;
};

static const struct reach_case reach_cases[] = {
    {"detected-type = text/*", "detected-type = text/plain", true},
    {"detected-type = text/plain", "detected-type = text/*", false},
    {"detected-type = text/*", "detected-type = text/h?ml", true},
    {"detected-type = text/h?ml", "detected-type = text/html", true},
    {"detected-type = text/h?ml", "detected-type = text/h*", false},
    {"detected-type = text/plain;text/csv", "detected-type = TEXT/CSV", true},
    {"detected-type = text/plain", "detected-type = text/plain;text/csv", false},
    {"detected-type = */*", "detected-type = application/pdf", true},
    {"detected-type = text/*", "declared-type = text/plain", false},
    {"detected-type = text/*", "detected-type = text/plain\ndeclared-type = text/plain", true},
    {"detected-type = text/*\ndeclared-type = text/plain", "detected-type = text/plain", false},
    {"", "detected-type = text/plain", true}, /* a catch-all */
    {"part = body", "detected-type = text/plain", false},
    {"detected-type = text/plain", "detected-type = text/plain\npart = body", true},
    {"part = body", "part = body\nmax-size = 1K", true},
    {"part = body", "part = attachment", false},
    {"min-size = 1K", "min-size = 2K", true},
    {"min-size = 2K", "min-size = 1K", false},
    {"max-size = 1M", "max-size = 2M", false},
    {"max-size = 2M", "min-size = 1\nmax-size = 1M", true},
    {"max-size = 1M", "detected-type = text/plain", false},
    {"min-depth = 1", "min-depth = 1\nmax-depth = 3", true},
    {"max-depth = 0", "min-depth = 1", false},
    {"flags = macros", "flags = macros;encrypted", true},
    {"flags = macros;encrypted", "flags = macros", false},
    {"without-flags = mismatch", "without-flags = mismatch;infected", true},
    {"without-flags = mismatch;infected", "without-flags = mismatch", false},
    {"without-flags = infected", "flags = mismatch", false},
    {"extension = pdf;doc", "extension = PDF", true},
    {"extension = pdf", "extension = pdf;doc", false},
    {"filename = *.pdf", "extension = pdf", false}, /* different keys: not compared */
    {"filename = *.pdf", "filename = report.pdf", true},
    {"filename = report*", "filename = report-*.pdf", true},
    {"filename = r?port*", "filename = report.pdf", true},
    {"filename = r?port*", "filename = report*.pdf", false},
    {"sender = *@example.jp", "sender = a@example.jp", true},
    {"sender = *@example.jp", "sender = *@sub.example.jp", false},
    {"recipient = *@city.example.jp", "recipient = soumu@city.example.jp", true},
    {"sender = *@example.jp", "recipient = a@example.jp", false},
};

static void test_unreachable(void)
{
    for (unsigned i = 0; i < G_N_ELEMENTS(reach_cases); i++) {
        const struct reach_case *c = &reach_cases[i];
        char *text = g_strdup_printf("[rule a]\n%s\naction = drop\n[rule b]\n%s\naction = hold\n",
                                     c->a, c->b);
        const char *files[] = {"10-a.rules", text, NULL};
        char *msg = NULL;
        struct mg_rules *r = load_v(files, &msg);
        unsigned b_line = 4; /* [rule a], the lines of c->a, action, then [rule b] */

        for (const char *p = c->a; *p != '\0'; p++)
            b_line += *p == '\n';

        if (c->unreachable) {
            char *want = g_strdup_printf("D/10-a.rules:%u: [rule b]: unreachable: everything it "
                                         "matches is matched first by rule a at D/10-a.rules:1",
                                         b_line);
            if (r != NULL)
                g_error("case %u: rule b reported reachable:\n%s", i, text);
            g_assert_cmpstr(msg, ==, want);
            g_free(want);
        } else {
            if (r == NULL)
                g_error("case %u: unexpected error:\n%s\n--- for:\n%s", i, msg, text);
            g_assert_cmpuint(mg_rules_count(r), ==, 2);
            mg_rules_unref(r);
        }
        g_free(msg);
        g_free(text);
    }
}

/* Options and notices. */

static void test_options(void)
{
    struct mg_rules *r = load_ok("[rule plain-body]\npart = body\ndeclared-type = text/html\n"
                                 "action = text\nurls = plain\nprefer-html = true\n"
                                 "[rule html]\ndetected-type = text/html\naction = text\n"
                                 "[rule pdf]\ndetected-type = application/pdf\naction = disarm\n"
                                 "links = remove\n"
                                 "[rule png]\ndetected-type = image/png\naction = disarm\n"
                                 "[rule enc]\nflags = encrypted\naction = hold\nhold = part\n"
                                 "[rule zip]\ndetected-type = application/zip\n"
                                 "action = unpack\nrepack = zip\n"
                                 "[rule tar]\ndetected-type = application/x-tar\n"
                                 "action = unpack\n"
                                 "[rule other]\naction = keep\n");
    struct mg_rule_subject s = subject("text/html");
    const struct mg_rule *rule;

    s.role = MG_ROLE_BODY;
    s.declared_type = "text/html";
    rule = mg_rules_match(r, &s);
    g_assert_cmpstr(mg_rule_id(rule), ==, "plain-body");
    g_assert_cmpstr(mg_rule_option(rule, "urls"), ==, "plain");
    g_assert_cmpstr(mg_rule_option(rule, "prefer-html"), ==, "true");
    g_assert_null(mg_rule_option(rule, "colour"));
    s.role = MG_ROLE_ATTACHMENT;
    rule = mg_rules_match(r, &s);
    g_assert_cmpstr(mg_rule_id(rule), ==, "html");
    g_assert_cmpstr(mg_rule_option(rule, "urls"), ==, "defang");
    g_assert_cmpstr(mg_rule_option(rule, "prefer-html"), ==, "false");
    s.detected_type = "application/pdf";
    rule = mg_rules_match(r, &s);
    g_assert_cmpstr(mg_rule_id(rule), ==, "pdf");
    g_assert_cmpstr(mg_rule_option(rule, "links"), ==, "remove");
    s.detected_type = "image/png";
    rule = mg_rules_match(r, &s);
    g_assert_cmpstr(mg_rule_id(rule), ==, "png");
    g_assert_cmpstr(mg_rule_option(rule, "links"), ==, "keep");
    s.detected_type = "application/zip";
    rule = mg_rules_match(r, &s);
    g_assert_cmpstr(mg_rule_id(rule), ==, "zip");
    g_assert_cmpstr(mg_rule_option(rule, "repack"), ==, "zip");
    s.detected_type = "application/x-tar";
    rule = mg_rules_match(r, &s);
    g_assert_cmpstr(mg_rule_id(rule), ==, "tar");
    g_assert_cmpstr(mg_rule_option(rule, "repack"), ==, "none");
    s.flags = MG_ITEM_ENCRYPTED;
    rule = mg_rules_match(r, &s);
    g_assert_cmpstr(mg_rule_id(rule), ==, "enc");
    g_assert_cmpstr(mg_rule_option(rule, "hold"), ==, "part");
    s.flags = 0;
    s.detected_type = "image/gif";
    rule = mg_rules_match(r, &s);
    g_assert_cmpstr(mg_rule_id(rule), ==, "other");
    g_assert_cmpstr(mg_rule_option(rule, "urls"), ==, "defang");
    g_assert_null(mg_rule_option(rule, NULL));
    mg_rules_unref(r);
}

static void test_notices(void)
{
    struct mg_rules *r =
        load_ok("[rule both]\nmax-size = 1\naction = drop\n"
                "notice-ja = 日本語\nnotice-en = English\n"
                "[rule ja]\nmax-size = 2\naction = drop\nnotice-ja = 日本語だけ\n"
                "[rule en]\nmax-size = 3\naction = drop\nnotice-en = English only\n"
                "[rule none]\nmax-size = 4\naction = drop\n"
                "description = no notice at all\n");
    struct mg_rule_subject s = subject("x/y");
    const struct mg_rule *rule;

    s.size = 1;
    rule = mg_rules_match(r, &s);
    g_assert_cmpstr(mg_rule_notice(rule, "ja"), ==, "日本語");
    g_assert_cmpstr(mg_rule_notice(rule, "en"), ==, "English");
    g_assert_cmpstr(mg_rule_notice(rule, NULL), ==, "日本語");
    s.size = 2;
    rule = mg_rules_match(r, &s);
    g_assert_cmpstr(mg_rule_id(rule), ==, "ja");
    g_assert_cmpstr(mg_rule_notice(rule, "ja"), ==, "日本語だけ");
    g_assert_cmpstr(mg_rule_notice(rule, "en"), ==, "日本語だけ");
    s.size = 3;
    rule = mg_rules_match(r, &s);
    g_assert_cmpstr(mg_rule_id(rule), ==, "en");
    g_assert_cmpstr(mg_rule_notice(rule, "ja"), ==, "English only");
    g_assert_cmpstr(mg_rule_notice(rule, "en"), ==, "English only");
    s.size = 4;
    rule = mg_rules_match(r, &s);
    g_assert_cmpstr(mg_rule_id(rule), ==, "none");
    g_assert_null(mg_rule_notice(rule, "ja"));
    g_assert_null(mg_rule_notice(rule, "en"));
    mg_rules_unref(r);
}

/* Reference counting: the policy lives as long as its last holder. */
static void test_refcount(void)
{
    struct mg_rules *r = load_ok("[rule a]\naction = keep\n");
    struct mg_rules *r2 = mg_rules_ref(r);
    struct mg_rule_subject s = subject("text/plain");

    g_assert_true(r2 == r);
    mg_rules_unref(r);
    g_assert_cmpstr(match_id(r2, &s), ==, "a"); /* still alive: ASan would catch a free */
    g_assert_true(mg_rules_ref(r2) == r2);
    mg_rules_unref(r2);
    g_assert_cmpuint(mg_rules_count(r2), ==, 1);
    mg_rules_unref(r2); /* the last one frees it (checked by the leak checker) */
    mg_rules_unref(NULL);
}

static void test_action_names(void)
{
    static const char *const names[] = {"keep",   "text", "disarm", "flatten",
                                        "unpack", "drop", "hold",   "reject"};
    enum mg_action a;

    g_assert_cmpint(MG_ACTION_COUNT, ==, G_N_ELEMENTS(names));
    for (unsigned i = 0; i < G_N_ELEMENTS(names); i++) {
        g_assert_true(mg_action_parse(names[i], &a));
        g_assert_cmpint(a, ==, i);
        g_assert_cmpstr(mg_action_name(a), ==, names[i]);
    }
    g_assert_false(mg_action_parse("Keep", &a));
    g_assert_false(mg_action_parse("", &a));
    g_assert_false(mg_action_parse(NULL, &a));
}

static void test_describe(void)
{
    struct mg_rules *r = load_ok("[rule a]\ndescription = first\ndetected-type = text/plain\n"
                                 "min-size = 2K\nmax-size = 3M\nflags = macros;name-mismatch\n"
                                 "sender = *@x.jp\n"
                                 "action = text\nurls = plain\nnotice-ja = 通知\n");
    GString *d = g_string_new(NULL);

    mg_rules_describe(r, d);
    g_assert_nonnull(strstr(d->str, "1. rule a  ("));
    g_assert_nonnull(strstr(d->str, "/10-a.rules:1)\n"));
    g_assert_nonnull(strstr(d->str, "description   first\n"));
    g_assert_nonnull(strstr(d->str, "match         detected-type = text/plain\n"));
    g_assert_nonnull(strstr(d->str, "size >= 2K and <= 3M\n"));
    g_assert_nonnull(strstr(d->str, "flags = macros;name-mismatch\n"));
    g_assert_nonnull(strstr(d->str, "sender = *@x.jp\n"));
    g_assert_nonnull(strstr(d->str, "action        text (urls = plain, prefer-html = false)\n"));
    g_assert_nonnull(strstr(d->str, "notice-ja     通知\n"));
    /* no catch-all: the implicit rule is listed */
    g_assert_nonnull(strstr(d->str, "2. rule builtin:default-drop  (builtin)\n"));
    g_string_free(d, TRUE);
    mg_rules_unref(r);
}

/* The built-in policy. */

static struct mg_rules *builtin(void)
{
    GError *err = NULL;
    struct mg_rules *r = mg_rules_load(NULL, &err);

    if (r == NULL)
        g_error("the built-in policy does not load:\n%s", err->message);
    return r;
}

static const struct mg_rule *builtin_match(struct mg_rules *r, enum mg_item_role role,
                                           const char *declared, const char *detected,
                                           const char *filename, unsigned flags)
{
    struct mg_rule_subject s = subject(detected);

    s.role = role;
    s.declared_type = declared;
    s.filename = filename;
    s.flags = flags;
    s.size = 1000;
    return mg_rules_match(r, &s);
}

static void test_builtin(void)
{
    struct mg_rules *r = builtin();
    const struct mg_rule *x;
    unsigned n = mg_rules_count(r);

    g_assert_cmpuint(n, >=, 6);
    /* 1. infected: dropped, whatever else is true of it */
    x = builtin_match(r, BODY, "text/plain", "text/plain", NULL, INF);
    g_assert_cmpstr(mg_rule_id(x), ==, "infected");
    g_assert_cmpint(mg_rule_action(x), ==, MG_ACTION_DROP);
    g_assert_nonnull(strstr(mg_rule_notice(x, "ja"), "ウイルス"));
    g_assert_nonnull(strstr(mg_rule_notice(x, "en"), "virus"));
    g_assert_true(g_str_has_prefix(mg_rule_source(x), "builtin:rules/"));
    x = builtin_match(r, ATT, NULL, "text/csv", "a.csv", INF | MIS);
    g_assert_cmpint(mg_rule_action(x), ==, MG_ACTION_DROP);
    /* 2. plain body */
    x = builtin_match(r, BODY, "text/plain", "text/plain", NULL, 0);
    g_assert_cmpint(mg_rule_action(x), ==, MG_ACTION_KEEP);
    x = builtin_match(r, BODY, "text/plain", "application/x-empty", NULL, 0);
    g_assert_cmpint(mg_rule_action(x), ==, MG_ACTION_KEEP);
    x = builtin_match(r, BODY, "text/plain", "text/x-c", NULL, 0);
    g_assert_cmpint(mg_rule_action(x), ==, MG_ACTION_KEEP);
    x = builtin_match(r, BODY, "text/plain", "application/octet-stream", NULL, 0);
    g_assert_cmpint(mg_rule_action(x), ==, MG_ACTION_DROP);
    x = builtin_match(r, BODY, NULL, "text/plain", NULL, 0);
    g_assert_cmpint(mg_rule_action(x), ==, MG_ACTION_DROP);
    /* 3. HTML body: text, URLs defanged */
    static const char *const html_types[] = {"text/html", "text/plain", "application/xhtml+xml",
                                             "application/x-empty"};
    for (unsigned i = 0; i < G_N_ELEMENTS(html_types); i++) {
        x = builtin_match(r, BODY, "text/html", html_types[i], NULL, 0);
        g_assert_cmpint(mg_rule_action(x), ==, MG_ACTION_TEXT);
        g_assert_cmpstr(mg_rule_option(x, "urls"), ==, "defang");
    }
    x = builtin_match(r, BODY, "text/html", "application/pdf", NULL, 0);
    g_assert_cmpint(mg_rule_action(x), ==, MG_ACTION_DROP);
    /* 4. text and CSV attachments are kept */
    x = builtin_match(r, ATT, "application/octet-stream", "text/plain", "memo.txt", 0);
    g_assert_cmpint(mg_rule_action(x), ==, MG_ACTION_KEEP);
    x = builtin_match(r, ATT, "text/csv", "text/csv", "一覧.csv", 0);
    g_assert_cmpint(mg_rule_action(x), ==, MG_ACTION_KEEP);
    x = builtin_match(r, ATT, NULL, "text/plain", NULL, 0);
    g_assert_cmpint(mg_rule_action(x), ==, MG_ACTION_KEEP);
    /* ... but not a script that happens to be text */
    x = builtin_match(r, ATT, "text/plain", "text/plain", "run.BAT", 0);
    g_assert_cmpint(mg_rule_action(x), ==, MG_ACTION_DROP);
    x = builtin_match(r, ATT, NULL, "text/plain", "invoice.pdf.vbs", 0);
    g_assert_cmpint(mg_rule_action(x), ==, MG_ACTION_DROP);
    /* nor what Windows mounts or opens as a container of code, whatever
     * libmagic makes of a minimal one (OneNote has no magic: text/plain) */
    static const char *const container[] = {"a.iso", "a.IMG",    "a.vhd", "a.vhdx",
                                            "a.one", "a.onepkg", "a.chm", "a.hta"};
    for (unsigned i = 0; i < G_N_ELEMENTS(container); i++) {
        x = builtin_match(r, ATT, NULL, "text/plain", container[i], 0);
        g_assert_cmpstr(mg_rule_id(x), ==, "attachment-executable-name");
        g_assert_cmpint(mg_rule_action(x), ==, MG_ACTION_DROP);
    }
    /* 5. HTML attachments become text */
    x = builtin_match(r, ATT, "text/html", "text/html", "page.html", 0);
    g_assert_cmpint(mg_rule_action(x), ==, MG_ACTION_TEXT);
    x = builtin_match(r, ATT, NULL, "application/xhtml+xml", NULL, 0);
    g_assert_cmpint(mg_rule_action(x), ==, MG_ACTION_TEXT);
    /* 6. documents, pictures and archives go to the CDR handlers */
    static const struct {
        const char *type, *rule;
        enum mg_action action;
    } cdr[] = {
        {"application/pdf", "pdf", MG_ACTION_DISARM},
        {"application/zip", "archive", MG_ACTION_UNPACK},
        {"application/x-7z-compressed", "archive", MG_ACTION_UNPACK},
        {"application/vnd.openxmlformats-officedocument.wordprocessingml.document", "office",
         MG_ACTION_DISARM},
        {"application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", "office",
         MG_ACTION_DISARM},
        {"image/png", "image", MG_ACTION_DISARM},
        {"image/jpeg", "image", MG_ACTION_DISARM},
        {"text/rtf", "rtf", MG_ACTION_TEXT},
        {"application/vnd.ms-tnef", "tnef", MG_ACTION_UNPACK},
        {"application/msword", "legacy-office", MG_ACTION_TEXT},
        {"application/vnd.ms-excel", "legacy-office", MG_ACTION_TEXT},
        {"application/vnd.ms-powerpoint", "legacy-office", MG_ACTION_TEXT},
    };
    for (unsigned i = 0; i < G_N_ELEMENTS(cdr); i++) {
        x = builtin_match(r, ATT, NULL, cdr[i].type, "x.dat", 0);
        g_assert_cmpstr(mg_rule_id(x), ==, cdr[i].rule);
        g_assert_cmpint(mg_rule_action(x), ==, cdr[i].action);
        /* encrypted: never given to a handler */
        x = builtin_match(r, ATT, NULL, cdr[i].type, "x.dat", MG_ITEM_ENCRYPTED);
        g_assert_cmpstr(mg_rule_id(x), ==, "encrypted");
        g_assert_cmpint(mg_rule_action(x), ==, MG_ACTION_HOLD);
        g_assert_cmpstr(mg_rule_option(x, "hold"), ==, "part");
        g_assert_nonnull(strstr(mg_rule_notice(x, "ja"), "パスワード"));
        /* a body part is never an attachment's handler's business */
        x = builtin_match(r, BODY, NULL, cdr[i].type, NULL, 0);
        g_assert_cmpint(mg_rule_action(x), ==, MG_ACTION_DROP);
    }
    /* a disk image is not unpacked */
    x = builtin_match(r, ATT, NULL, "application/x-iso9660-image", "x.dat", 0);
    g_assert_cmpstr(mg_rule_id(x), ==, "default-drop");
    /* 7. everything else: dropped, with a notice in both languages */
    static const char *const other[] = {"application/vnd.ms-outlook", "application/x-dosexec",
                                        "image/svg+xml", "text/x-shellscript",
                                        "application/octet-stream"};
    for (unsigned i = 0; i < G_N_ELEMENTS(other); i++) {
        x = builtin_match(r, ATT, NULL, other[i], "x.dat", 0);
        g_assert_cmpstr(mg_rule_id(x), ==, "default-drop");
        g_assert_cmpint(mg_rule_action(x), ==, MG_ACTION_DROP);
        g_assert_nonnull(strstr(mg_rule_notice(x, "ja"), "隔離ID"));
        g_assert_nonnull(strstr(mg_rule_notice(x, "ja"), "管理者"));
        g_assert_nonnull(strstr(mg_rule_notice(x, "en"), "cannot yet be made safe"));
        g_assert_nonnull(strstr(mg_rule_notice(x, "en"), "quarantine ID"));
    }
    /* the catch-all is the last rule and never keeps */
    GString *d = g_string_new(NULL);
    mg_rules_describe(r, d);
    g_assert_nonnull(strstr(d->str, "rule default-drop"));
    g_assert_null(strstr(d->str, "builtin:default-drop"));
    g_string_free(d, TRUE);
    mg_rules_unref(r);
}

/* The compiled-in texts are the rules/ directory of the source tree. */
static void test_builtin_is_rules_dir(void)
{
    const char *dir = g_getenv("MUGAIKA_RULES_DIR");
    struct mg_rules *a = builtin(), *b;
    GError *err = NULL;
    GString *da = g_string_new(NULL), *db = g_string_new(NULL);
    char *prefix;

    if (dir == NULL)
        g_error("MUGAIKA_RULES_DIR is not set (the source tree's rules/ directory)");
    b = mg_rules_load(dir, &err);
    if (b == NULL)
        g_error("%s does not load:\n%s", dir, err->message);
    mg_rules_describe(a, da);
    mg_rules_describe(b, db);
    prefix = g_strconcat(dir, G_DIR_SEPARATOR_S, NULL);
    g_string_replace(db, prefix, "builtin:rules/", 0);
    g_assert_cmpstr(da->str, ==, db->str);
    g_free(prefix);
    g_string_free(da, TRUE);
    g_string_free(db, TRUE);
    mg_rules_unref(a);
    mg_rules_unref(b);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/rules/match-keys", test_match_keys);
    g_test_add_func("/rules/order-files", test_order_files);
    g_test_add_func("/rules/order-groups", test_order_groups);
    g_test_add_func("/rules/syntax", test_syntax);
    g_test_add_func("/rules/errors", test_errors);
    g_test_add_func("/rules/error-files", test_error_files);
    g_test_add_func("/rules/error-dir", test_error_dir);
    g_test_add_func("/rules/error-cap", test_error_cap);
    g_test_add_func("/rules/unreachable", test_unreachable);
    g_test_add_func("/rules/options", test_options);
    g_test_add_func("/rules/notices", test_notices);
    g_test_add_func("/rules/refcount", test_refcount);
    g_test_add_func("/rules/action-names", test_action_names);
    g_test_add_func("/rules/describe", test_describe);
    g_test_add_func("/rules/builtin", test_builtin);
    g_test_add_func("/rules/builtin-is-rules-dir", test_builtin_is_rules_dir);
    return g_test_run();
}
