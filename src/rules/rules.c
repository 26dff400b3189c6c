/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * NAME
 *	rules 3
 * SUMMARY
 *	matching, accessors and description of a loaded policy
 * SYNOPSIS
 *	#include <mugaika/rules.h>
 *
 *	const struct mg_rule *mg_rules_match(const struct mg_rules *r,
 *	                                     const struct mg_rule_subject *s);
 *	void mg_rules_describe(const struct mg_rules *r, GString *out);
 *	struct mg_rules *mg_rules_ref(struct mg_rules *r);
 *	void mg_rules_unref(struct mg_rules *r);
 * DESCRIPTION
 *	The loader (rules_load.c) builds a struct mg_rules; this file
 *	owns everything after that.
 *
 *	mg_rules_match walks the rules in order and returns the first one
 *	whose every given key matches the subject; the implicit last rule
 *	"builtin:default-drop" matches anything, so the result is never
 *	NULL. The result is borrowed from r and valid while r is held.
 *	Strings of the subject are folded (valid UTF-8, NFC, case-folded)
 *	once per call and only when a rule asks for them.
 *
 *	mg_rules_describe appends one paragraph per rule to out: number,
 *	id and source, description, the conditions ("match"), the action
 *	and its options, the notices. The implicit rule gets a paragraph
 *	too unless the last rule is a catch-all (no match key), which
 *	makes it unreachable.
 *
 *	mg_rules_ref / mg_rules_unref count references atomically; the
 *	last unref frees the policy. unref accepts NULL.
 * DIAGNOSTICS
 *	None: matching cannot fail.
 */
#include <string.h>

#include "rules/rules_int.h"

/* Notice of the implicit rule: a policy without a catch-all of its own. */
#define DEFAULT_NOTICE_JA                                                                                                                        \
    "このファイルは、無害化ポリシーのどのルールにも該当しなかったため、削除しました。元のファイル" \
    "は保管しています。必要な場合は、隔離IDを添えてシステム管理者にお問い合わせください。"
#define DEFAULT_NOTICE_EN                                                                          \
    "This file matched no rule of the sanitising policy, so it was removed. The original has "     \
    "been kept; if you need it, ask your system administrator and quote the quarantine ID."

static const char *const action_names[] = {
#define MG_ACTION_STR(name, str) str,
    MG_ACTION_LIST(MG_ACTION_STR)
#undef MG_ACTION_STR
};

GQuark mg_rules_error_quark(void)
{
    return g_quark_from_static_string("mg-rules-error-quark");
}

const char *mg_action_name(enum mg_action a)
{
    if ((unsigned)a >= MG_ACTION_COUNT)
        return "?";
    return action_names[a];
}

bool mg_action_parse(const char *s, enum mg_action *out)
{
    for (unsigned i = 0; i < MG_ACTION_COUNT; i++) {
        if (s != NULL && strcmp(s, action_names[i]) == 0) {
            *out = (enum mg_action)i;
            return true;
        }
    }
    return false;
}

char *mg_rules_fold(const char *s)
{
    char *valid = g_utf8_make_valid(s, -1);
    char *nfc = g_utf8_normalize(valid, -1, G_NORMALIZE_NFC);
    char *folded = g_utf8_casefold(nfc != NULL ? nfc : valid, -1);

    g_free(nfc);
    g_free(valid);
    return folded;
}

bool mg_rules_globs_match(const struct mg_rules_globs *g, const char *s)
{
    for (unsigned i = 0; i < g->n; i++) {
        if (g_pattern_spec_match_string(g->spec[i], s))
            return true;
    }
    return false;
}

static void globs_fini(struct mg_rules_globs *g)
{
    for (unsigned i = 0; i < g->n; i++) {
        g_free(g->pat[i]);
        g_pattern_spec_free(g->spec[i]);
    }
    g_free(g->pat);
    g_free(g->spec);
    memset(g, 0, sizeof(*g));
}

void mg_rules_rule_fini(struct mg_rule *rule)
{
    g_free(rule->id);
    g_free(rule->source);
    globs_fini(&rule->detected);
    globs_fini(&rule->declared);
    globs_fini(&rule->filename);
    globs_fini(&rule->sender);
    globs_fini(&rule->recipient);
    g_strfreev(rule->ext);
    g_free(rule->notice_ja);
    g_free(rule->notice_en);
    g_free(rule->description);
    memset(rule, 0, sizeof(*rule));
}

struct mg_rules *mg_rules_new_from(struct mg_rule *rules, unsigned n)
{
    struct mg_rules *r = g_new0(struct mg_rules, 1);
    struct mg_rule *last;

    g_atomic_ref_count_init(&r->ref);
    r->n = n;
    r->rules = g_new0(struct mg_rule, n + 1);
    if (n > 0)
        memcpy(r->rules, rules, n * sizeof(*rules));
    last = &r->rules[n];
    last->id = g_strdup("builtin:default-drop");
    last->source = g_strdup("builtin");
    last->action = MG_ACTION_DROP;
    last->notice_ja = g_strdup(DEFAULT_NOTICE_JA);
    last->notice_en = g_strdup(DEFAULT_NOTICE_EN);
    last->description = g_strdup("implicit last rule: whatever no rule matched is dropped");
    return r;
}

struct mg_rules *mg_rules_ref(struct mg_rules *r)
{
    g_atomic_ref_count_inc(&r->ref);
    return r;
}

void mg_rules_unref(struct mg_rules *r)
{
    if (r == NULL || !g_atomic_ref_count_dec(&r->ref))
        return;
    for (unsigned i = 0; i <= r->n; i++)
        mg_rules_rule_fini(&r->rules[i]);
    g_free(r->rules);
    g_free(r);
}

unsigned mg_rules_count(const struct mg_rules *r)
{
    return r->n;
}

/* The subject's strings, folded on first use. */
struct folded {
    const struct mg_rule_subject *s;
    unsigned done; /* MG_RK_* bits already folded */
    char *detected, *declared, *filename, *sender;
    const char *ext; /* points into filename, or NULL */
    GPtrArray *rcpt;
};

static const char *fold_once(struct folded *f, unsigned bit, char **slot, const char *src)
{
    if (!(f->done & bit)) {
        f->done |= bit;
        *slot = src != NULL ? mg_rules_fold(src) : NULL;
    }
    return *slot;
}

static const char *folded_ext(struct folded *f)
{
    if (!(f->done & MG_RK_EXTENSION)) {
        const char *name = fold_once(f, MG_RK_FILENAME, &f->filename, f->s->filename);
        const char *dot = name != NULL ? strrchr(name, '.') : NULL;
        f->done |= MG_RK_EXTENSION;
        f->ext = dot != NULL && dot[1] != '\0' ? dot + 1 : NULL;
    }
    return f->ext;
}

static bool recipients_match(struct folded *f, const struct mg_rules_globs *g)
{
    if (f->s->recipients == NULL)
        return false;
    if (f->rcpt == NULL) {
        f->rcpt = g_ptr_array_new_with_free_func(g_free);
        for (const char *const *p = f->s->recipients; *p != NULL; p++)
            g_ptr_array_add(f->rcpt, mg_rules_fold(*p));
    }
    for (guint i = 0; i < f->rcpt->len; i++) {
        if (mg_rules_globs_match(g, g_ptr_array_index(f->rcpt, i)))
            return true;
    }
    return false;
}

static bool globs_key_match(const struct mg_rules_globs *g, const char *s)
{
    return s != NULL && mg_rules_globs_match(g, s);
}

static bool ext_match(char *const *ext, const char *e)
{
    if (e == NULL)
        return false;
    for (; *ext != NULL; ext++) {
        if (strcmp(*ext, e) == 0)
            return true;
    }
    return false;
}

/* The cheap integer tests first, then the strings. */
static bool rule_matches(const struct mg_rule *r, struct folded *f)
{
    const struct mg_rule_subject *s = f->s;
    unsigned h = r->have;

    if ((h & MG_RK_PART) && s->role != r->part)
        return false;
    if ((h & MG_RK_FLAGS) && (s->flags & r->flags) != r->flags)
        return false;
    if ((h & MG_RK_WITHOUT) && (s->flags & r->without) != 0)
        return false;
    if ((h & MG_RK_SIZE) && (s->size < r->min_size || s->size > r->max_size))
        return false;
    if ((h & MG_RK_DEPTH) && (s->depth < r->min_depth || s->depth > r->max_depth))
        return false;
    if ((h & MG_RK_DETECTED) &&
        !globs_key_match(&r->detected,
                         fold_once(f, MG_RK_DETECTED, &f->detected, s->detected_type)))
        return false;
    if ((h & MG_RK_DECLARED) &&
        !globs_key_match(&r->declared,
                         fold_once(f, MG_RK_DECLARED, &f->declared, s->declared_type)))
        return false;
    if ((h & MG_RK_FILENAME) &&
        !globs_key_match(&r->filename, fold_once(f, MG_RK_FILENAME, &f->filename, s->filename)))
        return false;
    if ((h & MG_RK_EXTENSION) && !ext_match(r->ext, folded_ext(f)))
        return false;
    if ((h & MG_RK_SENDER) &&
        !globs_key_match(&r->sender, fold_once(f, MG_RK_SENDER, &f->sender, s->sender)))
        return false;
    if ((h & MG_RK_RECIPIENT) && !recipients_match(f, &r->recipient))
        return false;
    return true;
}

const struct mg_rule *mg_rules_match(const struct mg_rules *r, const struct mg_rule_subject *s)
{
    struct folded f = {.s = s};
    const struct mg_rule *hit = &r->rules[r->n];

    for (unsigned i = 0; i < r->n; i++) {
        if (rule_matches(&r->rules[i], &f)) {
            hit = &r->rules[i];
            break;
        }
    }
    g_free(f.detected);
    g_free(f.declared);
    g_free(f.filename);
    g_free(f.sender);
    if (f.rcpt != NULL)
        g_ptr_array_unref(f.rcpt);
    return hit;
}

const char *mg_rule_id(const struct mg_rule *rule)
{
    return rule->id;
}

enum mg_action mg_rule_action(const struct mg_rule *rule)
{
    return rule->action;
}

const char *mg_rule_source(const struct mg_rule *rule)
{
    return rule->source;
}

const char *mg_rule_notice(const struct mg_rule *rule, const char *lang)
{
    bool en = lang != NULL && strcmp(lang, "en") == 0;
    const char *first = en ? rule->notice_en : rule->notice_ja;
    const char *second = en ? rule->notice_ja : rule->notice_en;

    return first != NULL ? first : second;
}

const char *mg_rule_option(const struct mg_rule *rule, const char *key)
{
    if (key == NULL)
        return NULL;
    if (strcmp(key, "urls") == 0)
        return rule->urls != NULL ? rule->urls : "defang";
    if (strcmp(key, "prefer-html") == 0)
        return rule->prefer_html != NULL ? rule->prefer_html : "false";
    if (strcmp(key, "links") == 0)
        return rule->links != NULL ? rule->links : "keep";
    if (strcmp(key, "hold") == 0)
        return rule->hold != NULL ? rule->hold : "message";
    if (strcmp(key, "repack") == 0)
        return rule->repack != NULL ? rule->repack : "none";
    if (strcmp(key, "layout") == 0)
        return rule->layout != NULL ? rule->layout : "folder";
    return NULL;
}

const struct mg_rule *mg_rules_find(const struct mg_rules *r, const char *id)
{
    if (r == NULL || id == NULL)
        return NULL;
    for (unsigned i = 0; i <= r->n; i++)
        if (strcmp(r->rules[i].id, id) == 0)
            return &r->rules[i];
    return NULL;
}

/* Description: "LABEL       text" lines; conditions share one label. */

#define LABEL_WIDTH 14

static void label(GString *out, const char *name)
{
    g_string_append_printf(out, "  %-*s", LABEL_WIDTH, name);
}

/* The label "match" before the first condition, blanks after it. */
static void cond_label(GString *out, bool *first)
{
    label(out, *first ? "match" : "");
    *first = false;
}

static void describe_globs(GString *out, bool *first, const char *key,
                           const struct mg_rules_globs *g)
{
    cond_label(out, first);
    g_string_append_printf(out, "%s = ", key);
    for (unsigned i = 0; i < g->n; i++)
        g_string_append_printf(out, "%s%s", i > 0 ? ";" : "", g->pat[i]);
    g_string_append_c(out, '\n');
}

static void append_size(GString *out, uint64_t v)
{
    static const char suffix[] = "GMK";

    for (unsigned i = 0; i < 3; i++) {
        uint64_t unit = (uint64_t)1 << (10 * (3 - i));
        if (v != 0 && v % unit == 0) {
            g_string_append_printf(out, "%" G_GUINT64_FORMAT "%c", v / unit, suffix[i]);
            return;
        }
    }
    g_string_append_printf(out, "%" G_GUINT64_FORMAT, v);
}

static void append_bound(GString *out, const char *op, uint64_t v, bool size)
{
    g_string_append(out, op);
    if (size)
        append_size(out, v);
    else
        g_string_append_printf(out, "%" G_GUINT64_FORMAT, v);
}

/* "size >= 1K and <= 2M", "depth <= 0" */
static void describe_range(GString *out, bool *first, const char *what, uint64_t min, uint64_t max,
                           bool size)
{
    cond_label(out, first);
    g_string_append(out, what);
    if (min > 0 || max == UINT64_MAX)
        append_bound(out, " >= ", min, size);
    if (min > 0 && max != UINT64_MAX)
        g_string_append(out, " and");
    if (max != UINT64_MAX)
        append_bound(out, " <= ", max, size);
    g_string_append_c(out, '\n');
}

const char *mg_item_flag_name(unsigned i)
{
    static const char *const names[] = {"encrypted", "macros", "mismatch", "infected",
                                        "name-mismatch"};

    G_STATIC_ASSERT(G_N_ELEMENTS(names) == MG_ITEM_FLAG_COUNT);
    return i < G_N_ELEMENTS(names) ? names[i] : NULL;
}

static void describe_flags(GString *out, bool *first, const char *key, unsigned flags)
{
    bool none = true;

    cond_label(out, first);
    g_string_append_printf(out, "%s = ", key);
    for (unsigned i = 0; i < MG_ITEM_FLAG_COUNT; i++) {
        if (flags & (1u << i)) {
            g_string_append_printf(out, "%s%s", none ? "" : ";", mg_item_flag_name(i));
            none = false;
        }
    }
    g_string_append_c(out, '\n');
}

/* Multi-line text: continuation lines indented under the first. */
static void describe_text(GString *out, const char *name, const char *text)
{
    label(out, name);
    for (const char *p = text; *p != '\0'; p++) {
        g_string_append_c(out, *p);
        if (*p == '\n')
            g_string_append_printf(out, "  %-*s", LABEL_WIDTH, "");
    }
    g_string_append_c(out, '\n');
}

static void describe_conditions(GString *out, const struct mg_rule *r)
{
    unsigned h = r->have;
    bool first = true;

    if (h == 0) {
        label(out, "match");
        g_string_append(out, "everything (catch-all)\n");
    }
    if (h & MG_RK_PART) {
        cond_label(out, &first);
        g_string_append_printf(out, "part = %s\n", r->part == MG_ROLE_BODY ? "body" : "attachment");
    }
    if (h & MG_RK_DETECTED)
        describe_globs(out, &first, "detected-type", &r->detected);
    if (h & MG_RK_DECLARED)
        describe_globs(out, &first, "declared-type", &r->declared);
    if (h & MG_RK_FILENAME)
        describe_globs(out, &first, "filename", &r->filename);
    if (h & MG_RK_EXTENSION) {
        cond_label(out, &first);
        g_string_append(out, "extension = ");
        for (char **e = r->ext; *e != NULL; e++)
            g_string_append_printf(out, "%s%s", e != r->ext ? ";" : "", *e);
        g_string_append_c(out, '\n');
    }
    if (h & MG_RK_SIZE)
        describe_range(out, &first, "size", r->min_size, r->max_size, true);
    if (h & MG_RK_SENDER)
        describe_globs(out, &first, "sender", &r->sender);
    if (h & MG_RK_RECIPIENT)
        describe_globs(out, &first, "recipient", &r->recipient);
    if (h & MG_RK_FLAGS)
        describe_flags(out, &first, "flags", r->flags);
    if (h & MG_RK_WITHOUT)
        describe_flags(out, &first, "without-flags", r->without);
    if (h & MG_RK_DEPTH)
        describe_range(out, &first, "depth", r->min_depth, r->max_depth, false);
}

static void describe_rule(GString *out, const struct mg_rule *r, unsigned pos)
{
    g_string_append_printf(out, "%u. rule %s  (%s)\n", pos, r->id, r->source);
    if (r->description != NULL)
        describe_text(out, "description", r->description);
    describe_conditions(out, r);
    label(out, "action");
    g_string_append(out, mg_action_name(r->action));
    if (r->action == MG_ACTION_TEXT)
        g_string_append_printf(out, " (urls = %s, prefer-html = %s)", mg_rule_option(r, "urls"),
                               mg_rule_option(r, "prefer-html"));
    if (r->action == MG_ACTION_DISARM)
        g_string_append_printf(out, " (links = %s)", mg_rule_option(r, "links"));
    if (r->action == MG_ACTION_HOLD)
        g_string_append_printf(out, " (hold = %s)", mg_rule_option(r, "hold"));
    if (r->action == MG_ACTION_UNPACK)
        g_string_append_printf(out, " (repack = %s, layout = %s)", mg_rule_option(r, "repack"),
                               mg_rule_option(r, "layout"));
    g_string_append_c(out, '\n');
    if (r->notice_ja != NULL)
        describe_text(out, "notice-ja", r->notice_ja);
    if (r->notice_en != NULL)
        describe_text(out, "notice-en", r->notice_en);
}

void mg_rules_describe(const struct mg_rules *r, GString *out)
{
    /* the implicit rule is shown unless a catch-all makes it unreachable */
    unsigned n = r->n > 0 && r->rules[r->n - 1].have == 0 ? r->n : r->n + 1;

    for (unsigned i = 0; i < n; i++) {
        if (i > 0)
            g_string_append_c(out, '\n');
        describe_rule(out, &r->rules[i], i + 1);
    }
}
