/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * NAME
 *	rules 3h
 * SUMMARY
 *	the sanitising policy: ordered rules, first match wins
 * SYNOPSIS
 *	struct mg_rules *r = mg_rules_load(dir, &err);   (NULL dir: built-in)
 *	const struct mg_rule *rule = mg_rules_match(r, &subject);
 *	mg_rule_action(rule), mg_rule_id(rule), mg_rule_notice(rule, "ja")
 *	mg_rules_unref(r);
 * DESCRIPTION
 *	A policy is read from the *.rules files of a directory (GKeyFile
 *	syntax), in byte order of their names; every group [rule ID] is one
 *	rule, in file order. The built-in policy is the rules/ directory
 *	of the source tree compiled into the library. A loaded policy is
 *	immutable and reference counted, so threads share it freely.
 *	mg_rules_match never returns NULL: when no rule matches, an
 *	implicit last rule "builtin:default-drop" (action drop) does.
 *	The syntax is documented in docs/rules.md.
 * DIAGNOSTICS
 *	mg_rules_load collects every error of every file; the GError
 *	(domain MG_RULES_ERROR) message has one line per error, each
 *	"FILE:LINE: [GROUP] KEY: reason".
 */
#ifndef MUGAIKA_RULES_H
#define MUGAIKA_RULES_H

#include <stdbool.h>
#include <stdint.h>

#include <glib.h>

/* The action vocabulary of ../shared/DESIGN.md section 3. */
#define MG_ACTION_LIST(X)                                                                          \
    X(KEEP, "keep")                                                                                \
    X(TEXT, "text")                                                                                \
    X(DISARM, "disarm")                                                                            \
    X(FLATTEN, "flatten")                                                                          \
    X(UNPACK, "unpack")                                                                            \
    X(DROP, "drop")                                                                                \
    X(HOLD, "hold")                                                                                \
    X(REJECT, "reject")

enum mg_action {
#define MG_ACTION_ENUM(name, str) MG_ACTION_##name,
    MG_ACTION_LIST(MG_ACTION_ENUM)
#undef MG_ACTION_ENUM
        MG_ACTION_COUNT
};
/* Static string ("keep"). */
const char *mg_action_name(enum mg_action a);
/* false when s names no action. */
bool mg_action_parse(const char *s, enum mg_action *out);

/* Findings about an item that rules can match on ("flags" key). */
enum {
    MG_ITEM_ENCRYPTED = 1u << 0,     /* password-protected archive or document */
    MG_ITEM_MACROS = 1u << 1,        /* VBA / Excel 4 macros found */
    MG_ITEM_MISMATCH = 1u << 2,      /* declared type or extension disagrees with detected type */
    MG_ITEM_INFECTED = 1u << 3,      /* the AV engine found something */
    MG_ITEM_NAME_MISMATCH = 1u << 4, /* zip member: local header and directory name it apart */
};
#define MG_ITEM_FLAG_COUNT 5
/* The name of flag 1u << i in rules and the audit ("name-mismatch"),
 * NULL for i >= MG_ITEM_FLAG_COUNT. */
const char *mg_item_flag_name(unsigned i);

/* Where the item sits in the message. */
enum mg_item_role {
    MG_ROLE_BODY,       /* text/plain or text/html that is part of the message text */
    MG_ROLE_ATTACHMENT, /* anything else */
};

/* What is known of one item (a leaf part, later an archive member). */
struct mg_rule_subject {
    const char *detected_type;     /* libmagic, lower case; never NULL */
    const char *declared_type;     /* Content-Type as declared, lower case, or NULL */
    const char *filename;          /* UTF-8, or NULL */
    uint64_t size;                 /* decoded bytes */
    const char *sender;            /* envelope or From address, or NULL */
    const char *const *recipients; /* NULL-terminated, or NULL */
    unsigned flags;                /* MG_ITEM_* */
    unsigned depth;                /* archive nesting: 0 for a mail part */
    enum mg_item_role role;
};

GQuark mg_rules_error_quark(void);
#define MG_RULES_ERROR (mg_rules_error_quark())

struct mg_rules;
struct mg_rule;

/* dir NULL: the built-in policy. NULL with *err set on any error. */
struct mg_rules *mg_rules_load(const char *dir, GError **err);
struct mg_rules *mg_rules_ref(struct mg_rules *r);
void mg_rules_unref(struct mg_rules *r);

const struct mg_rule *mg_rules_match(const struct mg_rules *r, const struct mg_rule_subject *s);

const char *mg_rule_id(const struct mg_rule *rule);
enum mg_action mg_rule_action(const struct mg_rule *rule);
/* "FILE:LINE" of the group line ("builtin" for the implicit rule). */
const char *mg_rule_source(const struct mg_rule *rule);
/* Notice text for lang "ja" or "en" (falls back to the other), or NULL. */
const char *mg_rule_notice(const struct mg_rule *rule, const char *lang);
/* Action options (docs/rules.md): "urls" is "defang" (default) or
 * "plain"; "prefer-html" is "true" or "false" (default); "links" is
 * "keep" (default) or "remove"; "hold" is "message" (default: the
 * whole message is held) or "part" (only the part: the rest is
 * delivered); "repack" is "none" (default: members become attachments
 * of their own) or "zip"; "layout" is "folder" (default: mugaika-watch
 * puts the members of a dropped archive in a folder named after it) or
 * "files" (each member its own file; mail ignores it, repack = zip
 * wins over it). Returns the option value or the default; NULL for an
 * unknown key. */
const char *mg_rule_option(const struct mg_rule *rule, const char *key);
/* The rule of policy r whose id is id (the implicit last rule too), or
 * NULL; borrowed from r. */
const struct mg_rule *mg_rules_find(const struct mg_rules *r, const char *id);

/* The effective ordered rule list, one rule per paragraph. */
void mg_rules_describe(const struct mg_rules *r, GString *out);
/* Number of rules (not counting the implicit one). */
unsigned mg_rules_count(const struct mg_rules *r);

#endif
