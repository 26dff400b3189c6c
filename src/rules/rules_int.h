/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * NAME
 *	rules_int 3h
 * SUMMARY
 *	private declarations of the rules module
 * SYNOPSIS
 *	#include "rules/rules_int.h"
 *
 *	struct mg_rules *mg_rules_load_texts(const struct mg_rules_text *files,
 *	                                     unsigned n, const char *prefix,
 *	                                     GError **err);
 * DESCRIPTION
 *	struct mg_rule and struct mg_rules are shared by rules.c (matching,
 *	description, accessors) and rules_load.c (parsing and checks).
 *
 *	mg_rules_load_texts parses n in-memory rule files, in the order
 *	given (the caller sorts them); prefix is put before each name in
 *	sources and error messages ("builtin:rules/", "DIR/"). The texts
 *	are borrowed for the call only. It is what mg_rules_load uses for
 *	both a directory and the built-in policy, and what the fuzz target
 *	calls directly.
 *
 *	mg_rules_builtin[] (generated at build time by gen_builtin.py from
 *	the rules directory, sorted by name) holds the built-in policy.
 */
#ifndef MUGAIKA_RULES_INT_H
#define MUGAIKA_RULES_INT_H

#include <mugaika/rules.h>

/* Caps that keep a hostile or broken policy cheap to reject. */
#define MG_RULES_MAX_FILE_BYTES (1024 * 1024) /* per .rules file */
#define MG_RULES_MAX_FILES      256
#define MG_RULES_MAX_RULES      2000 /* the reachability check is quadratic */
#define MG_RULES_MAX_LIST       256  /* items of one list value */
#define MG_RULES_MAX_ERRORS     100  /* error lines reported; the rest are counted */

struct mg_rules_text {
    const char *name; /* "10-infected.rules" */
    const char *text; /* NUL-terminated file content */
};

extern const struct mg_rules_text mg_rules_builtin[];
extern const unsigned mg_rules_builtin_count;

/* A glob list; patterns are stored case-folded. */
struct mg_rules_globs {
    unsigned n;
    char **pat;
    GPatternSpec **spec;
};

/* Bits of mg_rule.have: which match keys the rule gives. */
enum {
    MG_RK_DETECTED = 1u << 0,
    MG_RK_DECLARED = 1u << 1,
    MG_RK_FILENAME = 1u << 2,
    MG_RK_EXTENSION = 1u << 3,
    MG_RK_SIZE = 1u << 4, /* min-size or max-size */
    MG_RK_SENDER = 1u << 5,
    MG_RK_RECIPIENT = 1u << 6,
    MG_RK_FLAGS = 1u << 7,
    MG_RK_WITHOUT = 1u << 8,
    MG_RK_DEPTH = 1u << 9, /* min-depth or max-depth */
    MG_RK_PART = 1u << 10,
};

struct mg_rule {
    char *id;
    char *source;            /* "FILE:LINE" */
    unsigned file_idx, line; /* of the group line: order of load errors */
    enum mg_action action;
    unsigned have; /* MG_RK_* */
    struct mg_rules_globs detected, declared, filename, sender, recipient;
    char **ext; /* case-folded, NULL-terminated (NULL unless MG_RK_EXTENSION) */
    uint64_t min_size, max_size;
    uint64_t min_depth, max_depth;
    unsigned flags, without; /* MG_ITEM_* */
    enum mg_item_role part;
    char *notice_ja, *notice_en, *description;
    const char *urls;        /* static string or NULL (default) */
    const char *prefer_html; /* static string or NULL (default) */
    const char *links;       /* static string or NULL (default: keep) */
    const char *hold;        /* static string or NULL (default: message) */
    const char *repack;      /* static string or NULL (default: none) */
    const char *layout;      /* static string or NULL (default: folder) */
};

struct mg_rules {
    gatomicrefcount ref;
    struct mg_rule *rules; /* n rules, then the implicit default */
    unsigned n;
};

struct mg_rules *mg_rules_load_texts(const struct mg_rules_text *files, unsigned n,
                                     const char *prefix, GError **err);

/* rules.c: frees what a rule owns (not the struct itself). */
void mg_rules_rule_fini(struct mg_rule *rule);
/* rules.c: a new policy owning rules[0..n-1] and adding the implicit one. */
struct mg_rules *mg_rules_new_from(struct mg_rule *rules, unsigned n);
/* rules.c: s made valid UTF-8, NFC-normalised and case-folded (owned). */
char *mg_rules_fold(const char *s);
/* rules.c: true when a glob list matches s (already folded). */
bool mg_rules_globs_match(const struct mg_rules_globs *g, const char *s);

#endif
