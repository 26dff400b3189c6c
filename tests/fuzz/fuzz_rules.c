/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * NAME
 *	fuzz_rules 1
 * SUMMARY
 *	libFuzzer target: the policy loader and matcher (rules.h)
 * SYNOPSIS
 *	fuzz_rules [libFuzzer options] [corpus-dir...]
 *	fuzz_rules corpus-dir|file...	(replay build: replay_main.c)
 * DESCRIPTION
 *	The first byte of an input seeds the subjects that are matched
 *	(below); the rest is split at NUL bytes into at most 4 rule files,
 *	named "00.rules", "01.rules", ... and loaded in that order with
 *	mg_rules_load_texts (prefix "fuzz/"), the loader behind
 *	mg_rules_load for both a directory and the built-in policy.
 *
 *	Checks: loading twice gives the same outcome (the same error text,
 *	or the same description). An error text is valid UTF-8 without
 *	control characters other than newlines, and every line names a
 *	place ("fuzz/NN.rules:LINE: ..." or the policy as a whole). A
 *	loaded policy has at least one rule, describes every rule it
 *	counts, and matches 16 subjects made from the seed byte (types,
 *	names, sizes, flags, depth, role) to a rule with a valid action,
 *	an id that the description lists, valid options and UTF-8 notices.
 *	Any violation aborts.
 *
 *	Seeds: testdata/fuzz/rules/ (first byte: subject seed).
 */
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include <glib.h>

#include <mugaika/rules.h>

#include "rules/rules_int.h"

#include "fuzz.h"

#define MAX_FILES 4

static const char *const types[8] = {
    "text/plain",
    "text/html",
    "application/pdf",
    "application/x-empty",
    "TEXT/CSV",
    "image/png",
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "x/\xe3\x81\x82",
};
static const char *const names[8] = {
    NULL, "a.txt", "報告書.PDF", "run.bat", "noext", "a.", ".hidden", "x\xff.csv",
};
static const char *const addrs[4] = {NULL, "a@example.jp", "SOUMU@City.Example.JP", ""};

static void check_error(const char *msg)
{
    FUZZ_CHECK(msg != NULL && msg[0] != '\0');
    FUZZ_CHECK(g_utf8_validate(msg, -1, NULL));
    for (const char *p = msg; *p != '\0'; p++)
        FUZZ_CHECK((unsigned char)*p >= 0x20 || *p == '\n');
    for (const char *line = msg; line != NULL;) {
        FUZZ_CHECK(g_str_has_prefix(line, "fuzz/") || g_str_has_prefix(line, "(no files)") ||
                   g_str_has_prefix(line, "("));
        line = strchr(line, '\n');
        if (line != NULL)
            line++;
    }
}

static void check_rule(const struct mg_rule *rule, const char *described)
{
    char *head;

    FUZZ_CHECK(rule != NULL);
    FUZZ_CHECK((unsigned)mg_rule_action(rule) < MG_ACTION_COUNT);
    head = g_strdup_printf(". rule %s  (%s)\n", mg_rule_id(rule), mg_rule_source(rule));
    /* the implicit rule is left out after a catch-all, which then matched */
    FUZZ_CHECK(strstr(described, head) != NULL);
    g_free(head);
    const char *u = mg_rule_option(rule, "urls");
    const char *h = mg_rule_option(rule, "prefer-html");
    FUZZ_CHECK(strcmp(u, "defang") == 0 || strcmp(u, "plain") == 0);
    FUZZ_CHECK(strcmp(h, "true") == 0 || strcmp(h, "false") == 0);
    for (unsigned i = 0; i < 2; i++) {
        const char *n = mg_rule_notice(rule, i == 0 ? "ja" : "en");
        FUZZ_CHECK(n == NULL || g_utf8_validate(n, -1, NULL));
    }
}

static void check_policy(struct mg_rules *r, const char *described, uint8_t seed)
{
    unsigned n = mg_rules_count(r);

    FUZZ_CHECK(n >= 1 && n <= MG_RULES_MAX_RULES);
    for (unsigned i = 0; i < 16; i++) {
        unsigned v = seed * 16u + i;
        const char *rcpt[] = {addrs[(v >> 2) & 3], addrs[(v >> 4) & 3], NULL};
        struct mg_rule_subject s = {
            .detected_type = types[v & 7],
            .declared_type = (v & 8) ? NULL : types[(v >> 3) & 7],
            .filename = names[(v >> 1) & 7],
            .size = (v & 32) ? (uint64_t)v << (v & 31) : v,
            .sender = addrs[v & 3],
            .recipients = (v & 64) ? rcpt : NULL,
            .flags = (v >> 5) & 15,
            .depth = v & 3,
            .role = (v & 128) ? MG_ROLE_BODY : MG_ROLE_ATTACHMENT,
        };
        if (s.recipients != NULL && rcpt[0] == NULL)
            s.recipients = NULL;
        check_rule(mg_rules_match(r, &s), described);
    }
}

/* Loads the files; *out gets the error text or the description. */
static struct mg_rules *load(const struct mg_rules_text *files, unsigned n, char **out)
{
    GError *err = NULL;
    struct mg_rules *r = mg_rules_load_texts(files, n, "fuzz/", &err);

    if (r == NULL) {
        FUZZ_CHECK(err != NULL);
        *out = g_strdup(err->message);
        g_error_free(err);
    } else {
        GString *d = g_string_new(NULL);
        FUZZ_CHECK(err == NULL);
        mg_rules_describe(r, d);
        *out = g_string_free(d, FALSE);
    }
    return r;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *const file_names[MAX_FILES] = {"00.rules", "01.rules", "02.rules",
                                                      "03.rules"};
    struct mg_rules_text files[MAX_FILES];
    char *texts[MAX_FILES] = {0};
    unsigned n = 0;
    char *out1, *out2;

    if (size < 1)
        return 0;
    const char *p = (const char *)data + 1, *end = (const char *)data + size;
    for (;;) {
        const char *nul = memchr(p, '\0', (size_t)(end - p));
        const char *stop = (nul != NULL && n + 1 < MAX_FILES) ? nul : end;
        texts[n] = g_strndup(p, (size_t)(stop - p)); /* the last one ends at a NUL */
        files[n].name = file_names[n];
        files[n].text = texts[n];
        n++;
        if (stop == end)
            break;
        p = stop + 1;
    }
    struct mg_rules *r1 = load(files, n, &out1);
    struct mg_rules *r2 = load(files, n, &out2);
    FUZZ_CHECK((r1 == NULL) == (r2 == NULL));
    FUZZ_CHECK(strcmp(out1, out2) == 0);
    if (r1 == NULL) {
        check_error(out1);
    } else {
        check_policy(r1, out1, data[0]);
        struct mg_rules *extra = mg_rules_ref(r1);
        mg_rules_unref(r1);
        check_policy(extra, out1, (uint8_t)(data[0] ^ 0x5a));
        mg_rules_unref(extra);
        mg_rules_unref(r2);
    }
    g_free(out1);
    g_free(out2);
    for (unsigned i = 0; i < n; i++)
        g_free(texts[i]);
    return 0;
}
