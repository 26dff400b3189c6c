/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * NAME
 *	rules_load 3
 * SUMMARY
 *	read, check and compile a policy of *.rules files
 * SYNOPSIS
 *	#include <mugaika/rules.h>
 *
 *	struct mg_rules *mg_rules_load(const char *dir, GError **err);
 *
 *	#include "rules/rules_int.h"
 *
 *	struct mg_rules *mg_rules_load_texts(const struct mg_rules_text *files,
 *	                                     unsigned n, const char *prefix,
 *	                                     GError **err);
 * DESCRIPTION
 *	mg_rules_load reads the *.rules files of dir (names starting with
 *	a dot are ignored) in byte order of their names; dir NULL loads
 *	the built-in policy (mg_rules_builtin[]). Both end in the same
 *	loader, which returns a new policy (one reference, owned by the
 *	caller) or NULL with *err set.
 *
 *	The files are GKeyFile syntax, but scanned here line by line
 *	rather than by GKeyFile: GKeyFile reports no line numbers, merges
 *	repeated groups and keeps the last of repeated keys silently,
 *	and stops at the first syntax error. The scanner follows GKeyFile's
 *	line grammar (leading white space ignored; "#" comment; "[name]"
 *	group; "key = value"; escapes \s \n \t \r \\ and, in lists, \;)
 *	and adds: white space around list items is trimmed, keys are
 *	plain (no "key[locale]").
 *
 *	A schema table (keys[]) names every key and its value type. Each
 *	group is checked when it ends (required action, ranges, options
 *	that depend on the action, the infected safety rule), and the
 *	whole policy at the end (unreachable rules, no rules at all).
 *
 *	Unreachable detection is sound and incomplete: rule B is reported
 *	only when an earlier rule A gives no key that B does not narrow
 *	at least as much (rules_covers()).
 * LIMITS
 *	MG_RULES_MAX_* in rules_int.h: file size, file count, rule count,
 *	list length; at most MG_RULES_MAX_ERRORS error lines are kept and
 *	the rest counted.
 * DIAGNOSTICS
 *	One error line per problem, "FILE:LINE: [GROUP] KEY: reason" (the
 *	group and key parts are left out where there is none); all lines
 *	joined by newlines into one GError (MG_RULES_ERROR). Control
 *	characters in quoted input are shown as "?", and long values are
 *	cut.
 */
#include <errno.h>
#include <dirent.h>
#include <stdarg.h>
#include <string.h>
#include <sys/stat.h>

#include <glib/gstdio.h>

#include "rules/rules_int.h"

enum key_type {
    KT_TYPE_GLOBS, /* type/subtype globs */
    KT_NAME_GLOBS, /* file name globs */
    KT_ADDR_GLOBS, /* address globs */
    KT_EXTENSIONS,
    KT_SIZE,
    KT_DEPTH,
    KT_FLAGS,
    KT_PART,
    KT_ACTION,
    KT_TEXT,
    KT_URLS,
    KT_BOOL,
    KT_LINKS,
    KT_HOLD,
    KT_REPACK,
    KT_LAYOUT,
};

enum key_id {
    K_DETECTED,
    K_DECLARED,
    K_FILENAME,
    K_EXTENSION,
    K_MIN_SIZE,
    K_MAX_SIZE,
    K_SENDER,
    K_RECIPIENT,
    K_FLAGS,
    K_WITHOUT,
    K_MIN_DEPTH,
    K_MAX_DEPTH,
    K_PART,
    K_ACTION,
    K_NOTICE_JA,
    K_NOTICE_EN,
    K_DESCRIPTION,
    K_URLS,
    K_PREFER_HTML,
    K_LINKS,
    K_HOLD,
    K_REPACK,
    K_LAYOUT,
    K_COUNT
};

/* The schema: every key a rule may give. */
static const struct key_def {
    const char *name;
    enum key_type type;
} keys[K_COUNT] = {
    [K_DETECTED] = {"detected-type", KT_TYPE_GLOBS},
    [K_DECLARED] = {"declared-type", KT_TYPE_GLOBS},
    [K_FILENAME] = {"filename", KT_NAME_GLOBS},
    [K_EXTENSION] = {"extension", KT_EXTENSIONS},
    [K_MIN_SIZE] = {"min-size", KT_SIZE},
    [K_MAX_SIZE] = {"max-size", KT_SIZE},
    [K_SENDER] = {"sender", KT_ADDR_GLOBS},
    [K_RECIPIENT] = {"recipient", KT_ADDR_GLOBS},
    [K_FLAGS] = {"flags", KT_FLAGS},
    [K_WITHOUT] = {"without-flags", KT_FLAGS},
    [K_MIN_DEPTH] = {"min-depth", KT_DEPTH},
    [K_MAX_DEPTH] = {"max-depth", KT_DEPTH},
    [K_PART] = {"part", KT_PART},
    [K_ACTION] = {"action", KT_ACTION},
    [K_NOTICE_JA] = {"notice-ja", KT_TEXT},
    [K_NOTICE_EN] = {"notice-en", KT_TEXT},
    [K_DESCRIPTION] = {"description", KT_TEXT},
    [K_URLS] = {"urls", KT_URLS},
    [K_PREFER_HTML] = {"prefer-html", KT_BOOL},
    [K_LINKS] = {"links", KT_LINKS},
    [K_HOLD] = {"hold", KT_HOLD},
    [K_REPACK] = {"repack", KT_REPACK},
    [K_LAYOUT] = {"layout", KT_LAYOUT},
};

/* The group being read. */
struct group {
    bool open;     /* inside a group */
    bool is_rule;  /* a [rule ID] group (else keys are ignored) */
    bool bad;      /* bad or duplicate id: never added */
    char *name;    /* "rule ID" as written */
    unsigned line; /* of the group line */
    unsigned errors_before;
    unsigned key_line[K_COUNT]; /* 0: not given */
    unsigned ok;                /* bit per key_id whose value parsed */
    struct mg_rule rule;
};

struct error_line {
    unsigned file_idx, line, seq;
    char *text;
};

struct loader {
    GArray *errors;   /* struct error_line */
    GPtrArray *files; /* names of the files read so far, for messages */
    unsigned n_errors;
    GHashTable *ids; /* id -> "FILE:LINE" of its first definition (owned) */
    GArray *rules;   /* struct mg_rule: the valid rules, in order */
    GPtrArray *scratch;
    struct group g;
};

/* Errors. */

static int cmp_errors(const void *pa, const void *pb)
{
    const struct error_line *a = pa, *b = pb;

    if (a->file_idx != b->file_idx)
        return a->file_idx < b->file_idx ? -1 : 1;
    if (a->line != b->line)
        return a->line < b->line ? -1 : 1;
    return a->seq < b->seq ? -1 : a->seq > b->seq;
}

/* Records "WHERE: [GROUP] KEY: reason" with WHERE = FILE:LINE (FILE
 * alone for line 0); kept for sorting by file, line and arrival. */
static void G_GNUC_PRINTF(6, 0)
    vreport(struct loader *ld, unsigned file_idx, unsigned line, const char *group, const char *key,
            const char *fmt, va_list ap)
{
    struct error_line e = {file_idx, line, ld->n_errors, NULL};
    GString *t;

    ld->n_errors++;
    if (ld->n_errors > MG_RULES_MAX_ERRORS)
        return;
    t = g_string_new(g_ptr_array_index(ld->files, file_idx));
    if (line > 0)
        g_string_append_printf(t, ":%u", line);
    g_string_append(t, ": ");
    if (group != NULL)
        g_string_append_printf(t, "[%s]%s", group, key != NULL ? " " : ": ");
    if (key != NULL)
        g_string_append_printf(t, "%s: ", key);
    g_string_append_vprintf(t, fmt, ap);
    for (gsize i = 0; i < t->len; i++) {
        unsigned char c = (unsigned char)t->str[i];
        if (c < 0x20 || c == 0x7f)
            t->str[i] = '?';
    }
    e.text = g_string_free(t, FALSE);
    g_array_append_val(ld->errors, e);
}

/* An error in the current file (line 0: about the file as a whole). */
static void G_GNUC_PRINTF(5, 6) report(struct loader *ld, unsigned line, const char *group,
                                       const char *key, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vreport(ld, ld->files->len - 1, line, group, key, fmt, ap);
    va_end(ap);
}

/* An error at a rule's group line, after its file was read. */
static void G_GNUC_PRINTF(3, 4)
    report_rule(struct loader *ld, const struct mg_rule *r, const char *fmt, ...)
{
    char *group = g_strconcat("rule ", r->id, NULL);
    va_list ap;

    va_start(ap, fmt);
    vreport(ld, r->file_idx, r->line, group, NULL, fmt, ap);
    va_end(ap);
    g_free(group);
}

/* s cut to a readable length for a message; freed with the line. */
static const char *show(struct loader *ld, const char *s)
{
    char *r;

    if (g_utf8_strlen(s, -1) <= 60) {
        r = g_strdup(s);
    } else {
        char *head = g_utf8_substring(s, 0, 57);
        r = g_strconcat(head, "...", NULL);
        g_free(head);
    }
    g_ptr_array_add(ld->scratch, r);
    return r;
}

/* Reports against the key of the current group. */
#define KEY_ERROR(ld, k, ...)                                                                      \
    report((ld), (ld)->g.key_line[(k)], (ld)->g.name, keys[(k)].name, __VA_ARGS__)

/* Value parsing. */

/* GKeyFile escapes; list_item also allows "\;". false on a bad escape. */
static bool unescape(const char *in, size_t len, bool list_item, GString *out)
{
    g_string_truncate(out, 0);
    for (size_t i = 0; i < len; i++) {
        char c = in[i];
        if (c != '\\') {
            g_string_append_c(out, c);
            continue;
        }
        if (++i == len)
            return false;
        switch (in[i]) {
        case 's':
            c = ' ';
            break;
        case 'n':
            c = '\n';
            break;
        case 't':
            c = '\t';
            break;
        case 'r':
            c = '\r';
            break;
        case '\\':
            c = '\\';
            break;
        case ';':
            if (!list_item)
                return false;
            c = ';';
            break;
        default:
            return false;
        }
        g_string_append_c(out, c);
    }
    return true;
}

static bool is_space(char c)
{
    return c == ' ' || c == '\t';
}

/* Splits a list value on unescaped ';' into unescaped, trimmed items
 * (owned vector). A final ';' ends the list; other empty items, an
 * empty list or a bad escape are reported and give NULL. */
static char **split_list(struct loader *ld, enum key_id k, const char *v)
{
    GPtrArray *items = g_ptr_array_new_with_free_func(g_free);
    GString *item = g_string_new(NULL);
    const char *p = v;
    bool ok = true;

    while (ok && *p != '\0') {
        const char *start = p, *end;
        while (*p != '\0' && *p != ';') {
            if (*p == '\\' && p[1] != '\0')
                p++;
            p++;
        }
        end = p;
        if (*p == ';')
            p++;
        while (start < end && is_space(*start))
            start++;
        while (end > start && is_space(end[-1]) && !(end - 1 > start && end[-2] == '\\'))
            end--;
        if (start == end) {
            KEY_ERROR(ld, k, "bad value \"%s\": empty list item", show(ld, v));
            ok = false;
        } else if (!unescape(start, (size_t)(end - start), true, item)) {
            KEY_ERROR(ld, k, "bad value \"%s\": invalid escape sequence", show(ld, v));
            ok = false;
        } else if (items->len >= MG_RULES_MAX_LIST) {
            KEY_ERROR(ld, k, "bad value: more than %d items", MG_RULES_MAX_LIST);
            ok = false;
        } else {
            g_ptr_array_add(items, g_strdup(item->str));
        }
    }
    if (ok && items->len == 0) {
        KEY_ERROR(ld, k, "bad value: empty list");
        ok = false;
    }
    g_string_free(item, TRUE);
    if (!ok) {
        g_ptr_array_unref(items);
        return NULL;
    }
    g_ptr_array_add(items, NULL);
    return (char **)g_ptr_array_free(items, FALSE);
}

static bool has_control(const char *s)
{
    for (; *s != '\0'; s++) {
        if ((unsigned char)*s < 0x20 || *s == 0x7f)
            return true;
    }
    return false;
}

/* type/subtype with the characters of a MIME token plus * and ?. */
static bool type_glob_ok(const char *p)
{
    const char *slash = strchr(p, '/');

    if (slash == NULL || slash == p || slash[1] == '\0' || strchr(slash + 1, '/') != NULL)
        return false;
    for (; *p != '\0'; p++) {
        if (!g_ascii_islower(*p) && !g_ascii_isdigit(*p) && strchr("!#$&^_.+*?-/", *p) == NULL)
            return false;
    }
    return true;
}

static bool glob_ok(enum key_type t, const char *p)
{
    switch (t) {
    case KT_TYPE_GLOBS:
        return type_glob_ok(p);
    case KT_NAME_GLOBS:
        return strchr(p, '/') == NULL && !has_control(p);
    default:
        return strpbrk(p, " \t") == NULL && !has_control(p);
    }
}

static bool parse_globs(struct loader *ld, enum key_id k, const char *v, struct mg_rules_globs *g)
{
    char **items = split_list(ld, k, v);
    bool ok = items != NULL;

    if (!ok)
        return false;
    g->n = g_strv_length(items);
    g->pat = g_new0(char *, g->n);
    g->spec = g_new0(GPatternSpec *, g->n);
    for (unsigned i = 0; i < g->n; i++) {
        g->pat[i] = mg_rules_fold(items[i]);
        g->spec[i] = g_pattern_spec_new(g->pat[i]);
        if (!glob_ok(keys[k].type, g->pat[i])) {
            KEY_ERROR(ld, k, "bad glob \"%s\"%s", show(ld, items[i]),
                      keys[k].type == KT_TYPE_GLOBS   ? " (expected type/subtype)"
                      : keys[k].type == KT_NAME_GLOBS ? " (a file name has no '/')"
                                                      : "");
            ok = false;
        }
    }
    g_strfreev(items);
    return ok;
}

static bool parse_extensions(struct loader *ld, enum key_id k, const char *v, char ***out)
{
    char **items = split_list(ld, k, v);
    bool ok = items != NULL;

    for (unsigned i = 0; ok && items[i] != NULL; i++) {
        char *f = mg_rules_fold(items[i]);
        if (strpbrk(f, "./*? \t") != NULL || has_control(f)) {
            KEY_ERROR(ld, k,
                      "bad value \"%s\": an extension is given without the dot and "
                      "without wildcards",
                      show(ld, items[i]));
            ok = false;
        }
        g_free(items[i]);
        items[i] = f;
    }
    if (ok)
        *out = items;
    else
        g_strfreev(items);
    return ok;
}

/* Decimal digits and an optional K, M or G (binary units). */
static bool parse_number(const char *s, bool suffix, uint64_t *out)
{
    uint64_t v = 0, unit = 1;
    const char *p = s;

    if (!g_ascii_isdigit(*p))
        return false;
    for (; g_ascii_isdigit(*p); p++) {
        unsigned d = (unsigned)(*p - '0');
        if (v > (UINT64_MAX - d) / 10)
            return false;
        v = v * 10 + d;
    }
    if (suffix && *p != '\0' && p[1] == '\0') {
        switch (g_ascii_toupper(*p)) {
        case 'K':
            unit = (uint64_t)1 << 10;
            break;
        case 'M':
            unit = (uint64_t)1 << 20;
            break;
        case 'G':
            unit = (uint64_t)1 << 30;
            break;
        default:
            return false;
        }
        p++;
    }
    if (*p != '\0' || v > UINT64_MAX / unit)
        return false;
    *out = v * unit;
    return true;
}

static bool parse_flags(struct loader *ld, enum key_id k, const char *v, unsigned *out)
{
    char **items = split_list(ld, k, v);
    bool ok = items != NULL;
    unsigned flags = 0;

    for (unsigned i = 0; ok && items[i] != NULL; i++) {
        unsigned j = 0;
        while (j < MG_ITEM_FLAG_COUNT && strcmp(items[i], mg_item_flag_name(j)) != 0)
            j++;
        if (j == MG_ITEM_FLAG_COUNT) {
            KEY_ERROR(ld, k,
                      "bad value \"%s\" (expected encrypted, macros, mismatch, infected or "
                      "name-mismatch)",
                      show(ld, items[i]));
            ok = false;
        }
        flags |= 1u << j;
    }
    g_strfreev(items);
    *out = flags;
    return ok;
}

/* One of the words of choices[] (NULL-terminated); *out gets the index. */
static bool parse_word(struct loader *ld, enum key_id k, const char *v, const char *const *choices,
                       const char *expect, unsigned *out)
{
    for (unsigned i = 0; choices[i] != NULL; i++) {
        if (strcmp(v, choices[i]) == 0) {
            *out = i;
            return true;
        }
    }
    KEY_ERROR(ld, k, "bad value \"%s\" (expected %s)", show(ld, v), expect);
    return false;
}

static bool parse_scalar(struct loader *ld, enum key_id k, const char *v)
{
    static const char *const parts[] = {"body", "attachment", NULL};
    static const char *const urls[] = {"defang", "plain", NULL};
    static const char *const bools[] = {"true", "false", NULL};
    static const char *const links[] = {"keep", "remove", NULL};
    static const char *const holds[] = {"message", "part", NULL};
    static const char *const repacks[] = {"none", "zip", NULL};
    static const char *const layouts[] = {"folder", "files", NULL};
    struct mg_rule *r = &ld->g.rule;
    uint64_t n;
    unsigned i;

    switch (keys[k].type) {
    case KT_SIZE:
    case KT_DEPTH:
        if (!parse_number(v, keys[k].type == KT_SIZE, &n)) {
            if (keys[k].type == KT_SIZE)
                KEY_ERROR(ld, k, "bad size \"%s\" (expected bytes, or a number with K, M or G)",
                          show(ld, v));
            else
                KEY_ERROR(ld, k, "bad value \"%s\" (expected a number, 0 for a mail part)",
                          show(ld, v));
            return false;
        }
        if (k == K_MIN_SIZE)
            r->min_size = n;
        else if (k == K_MAX_SIZE)
            r->max_size = n;
        else if (k == K_MIN_DEPTH)
            r->min_depth = n;
        else
            r->max_depth = n;
        r->have |= keys[k].type == KT_SIZE ? MG_RK_SIZE : MG_RK_DEPTH;
        return true;
    case KT_PART:
        if (!parse_word(ld, k, v, parts, "body or attachment", &i))
            return false;
        r->part = i == 0 ? MG_ROLE_BODY : MG_ROLE_ATTACHMENT;
        r->have |= MG_RK_PART;
        return true;
    case KT_ACTION:
        if (!mg_action_parse(v, &r->action)) {
            KEY_ERROR(ld, k,
                      "bad value \"%s\" (expected keep, text, disarm, flatten, unpack, "
                      "drop, hold or reject)",
                      show(ld, v));
            return false;
        }
        return true;
    case KT_URLS:
        if (!parse_word(ld, k, v, urls, "defang or plain", &i))
            return false;
        r->urls = urls[i];
        return true;
    case KT_LINKS:
        if (!parse_word(ld, k, v, links, "keep or remove", &i))
            return false;
        r->links = links[i];
        return true;
    case KT_HOLD:
        if (!parse_word(ld, k, v, holds, "message or part", &i))
            return false;
        r->hold = holds[i];
        return true;
    case KT_REPACK:
        if (!parse_word(ld, k, v, repacks, "none or zip", &i))
            return false;
        r->repack = repacks[i];
        return true;
    case KT_LAYOUT:
        if (!parse_word(ld, k, v, layouts, "folder or files", &i))
            return false;
        r->layout = layouts[i];
        return true;
    case KT_BOOL:
        if (!parse_word(ld, k, v, bools, "true or false", &i))
            return false;
        r->prefer_html = bools[i];
        return true;
    default:
        break;
    }
    if (*v == '\0') {
        KEY_ERROR(ld, k, "bad value: empty text");
        return false;
    }
    if (k == K_NOTICE_JA)
        r->notice_ja = g_strdup(v);
    else if (k == K_NOTICE_EN)
        r->notice_en = g_strdup(v);
    else
        r->description = g_strdup(v);
    return true;
}

static bool parse_value(struct loader *ld, enum key_id k, const char *raw)
{
    struct mg_rule *r = &ld->g.rule;
    static const unsigned glob_bits[] = {
        [K_DETECTED] = MG_RK_DETECTED,   [K_DECLARED] = MG_RK_DECLARED,
        [K_FILENAME] = MG_RK_FILENAME,   [K_SENDER] = MG_RK_SENDER,
        [K_RECIPIENT] = MG_RK_RECIPIENT,
    };
    struct mg_rules_globs *globs[] = {
        [K_DETECTED] = &r->detected, [K_DECLARED] = &r->declared,   [K_FILENAME] = &r->filename,
        [K_SENDER] = &r->sender,     [K_RECIPIENT] = &r->recipient,
    };
    GString *v;
    bool ok;

    switch (keys[k].type) {
    case KT_TYPE_GLOBS:
    case KT_NAME_GLOBS:
    case KT_ADDR_GLOBS:
        ok = parse_globs(ld, k, raw, globs[k]);
        r->have |= glob_bits[k];
        return ok;
    case KT_EXTENSIONS:
        ok = parse_extensions(ld, k, raw, &r->ext);
        if (ok)
            r->have |= MG_RK_EXTENSION;
        return ok;
    case KT_FLAGS:
        ok = parse_flags(ld, k, raw, k == K_FLAGS ? &r->flags : &r->without);
        r->have |= k == K_FLAGS ? MG_RK_FLAGS : MG_RK_WITHOUT;
        return ok;
    default:
        break;
    }
    v = g_string_new(NULL);
    ok = unescape(raw, strlen(raw), false, v);
    if (!ok)
        KEY_ERROR(ld, k, "bad value \"%s\": invalid escape sequence", show(ld, raw));
    else
        ok = parse_scalar(ld, k, v->str);
    g_string_free(v, TRUE);
    return ok;
}

/* Groups. */

static bool id_ok(const char *id)
{
    if (!g_ascii_islower(*id) && !g_ascii_isdigit(*id))
        return false;
    for (id++; *id != '\0'; id++) {
        if (!g_ascii_islower(*id) && !g_ascii_isdigit(*id) && strchr("._-", *id) == NULL)
            return false;
    }
    return true;
}

/* Checks between keys of a finished rule group. */
static void check_rule(struct loader *ld)
{
    struct group *g = &ld->g;
    struct mg_rule *r = &g->rule;
    bool action_ok = g->ok & (1u << K_ACTION);

    if (g->key_line[K_ACTION] == 0)
        report(ld, g->line, g->name, "action", "missing: every rule needs an action");
    if ((g->ok & (1u << K_MIN_SIZE)) && (g->ok & (1u << K_MAX_SIZE)) && r->min_size > r->max_size)
        KEY_ERROR(ld, K_MIN_SIZE,
                  "min > max: min-size %" G_GUINT64_FORMAT
                  " bytes is greater than max-size %" G_GUINT64_FORMAT " bytes",
                  r->min_size, r->max_size);
    if ((g->ok & (1u << K_MIN_DEPTH)) && (g->ok & (1u << K_MAX_DEPTH)) &&
        r->min_depth > r->max_depth)
        KEY_ERROR(ld, K_MIN_DEPTH,
                  "min > max: min-depth %" G_GUINT64_FORMAT
                  " is greater than max-depth %" G_GUINT64_FORMAT,
                  r->min_depth, r->max_depth);
    if ((r->flags & r->without) != 0)
        KEY_ERROR(ld, K_WITHOUT,
                  "bad value: flags and without-flags name the same flag, so the "
                  "rule can never match");
    if (!action_ok)
        return;
    if (g->key_line[K_URLS] != 0 && r->action != MG_ACTION_TEXT)
        KEY_ERROR(ld, K_URLS, "only allowed with action text");
    if (g->key_line[K_LINKS] != 0 && r->action != MG_ACTION_DISARM)
        KEY_ERROR(ld, K_LINKS, "only allowed with action disarm");
    if (g->key_line[K_HOLD] != 0 && r->action != MG_ACTION_HOLD)
        KEY_ERROR(ld, K_HOLD, "only allowed with action hold");
    if (g->key_line[K_REPACK] != 0 && r->action != MG_ACTION_UNPACK)
        KEY_ERROR(ld, K_REPACK, "only allowed with action unpack");
    if (g->key_line[K_LAYOUT] != 0 && r->action != MG_ACTION_UNPACK)
        KEY_ERROR(ld, K_LAYOUT, "only allowed with action unpack");
    if (g->key_line[K_PREFER_HTML] != 0 &&
        (r->action != MG_ACTION_TEXT || !(r->have & MG_RK_PART) || r->part != MG_ROLE_BODY))
        KEY_ERROR(ld, K_PREFER_HTML, "only allowed with action text and part = body");
    if ((r->flags & MG_ITEM_INFECTED) && r->action != MG_ACTION_DROP &&
        r->action != MG_ACTION_HOLD && r->action != MG_ACTION_REJECT)
        KEY_ERROR(ld, K_ACTION,
                  "%s is not allowed: a rule that can match infected items (flags includes "
                  "infected) may only drop, hold or reject",
                  mg_action_name(r->action));
    else if ((r->flags & MG_ITEM_MACROS) && r->action == MG_ACTION_KEEP)
        KEY_ERROR(ld, K_ACTION,
                  "keep is not allowed: a rule for items with macros (flags includes macros) "
                  "cannot keep them; an item with macros is never kept");
}

static void group_end(struct loader *ld)
{
    struct group *g = &ld->g;

    if (g->open && g->is_rule) {
        check_rule(ld);
        if (!g->bad && ld->n_errors == g->errors_before) {
            if (ld->rules->len >= MG_RULES_MAX_RULES) {
                report(ld, g->line, g->name, NULL, "too many rules (at most %d)",
                       MG_RULES_MAX_RULES);
                mg_rules_rule_fini(&g->rule);
            } else {
                g_array_append_val(ld->rules, g->rule);
            }
        } else {
            mg_rules_rule_fini(&g->rule);
        }
    }
    g_free(g->name);
    memset(g, 0, sizeof(*g));
}

static void group_begin(struct loader *ld, unsigned line, const char *name, size_t len)
{
    struct group *g = &ld->g;
    const char *id;

    group_end(ld);
    g->open = true;
    g->line = line;
    g->name = g_strndup(name, len);
    g->errors_before = ld->n_errors;
    if (strncmp(g->name, "rule ", 5) != 0) {
        report(ld, line, g->name, NULL, "unknown group name (a rule is [rule ID])");
        return;
    }
    g->is_rule = true;
    id = g->name + 5;
    g->rule.id = g_strdup(id);
    g->rule.source = g_strdup_printf(
        "%s:%u", (const char *)g_ptr_array_index(ld->files, ld->files->len - 1), line);
    g->rule.file_idx = ld->files->len - 1;
    g->rule.line = line;
    g->rule.max_size = UINT64_MAX;
    g->rule.max_depth = UINT64_MAX;
    if (!id_ok(id)) {
        report(ld, line, g->name, NULL,
               "bad rule id \"%s\" (expected lower-case letters, digits, '.', '_', '-', "
               "starting with a letter or digit)",
               show(ld, id));
        g->bad = true;
        return;
    }
    const char *first = g_hash_table_lookup(ld->ids, id);
    if (first != NULL) {
        report(ld, line, g->name, NULL, "duplicate id: first defined at %s", first);
        g->bad = true;
        return;
    }
    g_hash_table_insert(ld->ids, g_strdup(id), g_strdup(g->rule.source));
}

static void key_value(struct loader *ld, unsigned line, const char *key, const char *value)
{
    struct group *g = &ld->g;
    unsigned k;

    if (!g->open) {
        report(ld, line, NULL, show(ld, key), "key outside any group (start with [rule ID])");
        return;
    }
    if (!g->is_rule)
        return;
    for (k = 0; k < K_COUNT && strcmp(keys[k].name, key) != 0; k++)
        ;
    if (k == K_COUNT) {
        report(ld, line, g->name, show(ld, key), "unknown key");
        return;
    }
    if (g->key_line[k] != 0) {
        report(ld, line, g->name, key, "key given twice (first at line %u)", g->key_line[k]);
        return;
    }
    g->key_line[k] = line;
    if (parse_value(ld, (enum key_id)k, value))
        g->ok |= 1u << k;
}

/* One line of a file (without its newline). */
static void scan_line(struct loader *ld, unsigned line, const char *p, size_t len)
{
    char *copy, *key_end, *value;

    if (len > 0 && p[len - 1] == '\r')
        len--;
    if (!g_utf8_validate(p, (gssize)len, NULL)) {
        report(ld, line, NULL, NULL, "syntax: not valid UTF-8");
        return;
    }
    while (len > 0 && g_ascii_isspace(*p)) {
        p++;
        len--;
    }
    if (len == 0 || *p == '#')
        return;
    copy = g_strndup(p, len);
    g_ptr_array_add(ld->scratch, copy);
    if (*copy == '[') {
        char *close = strchr(copy, ']');
        const char *q = close != NULL ? close + 1 : NULL;
        while (q != NULL && is_space(*q))
            q++;
        const char *inner = strchr(copy + 1, '[');
        if (close == NULL || *q != '\0' || close == copy + 1 || (inner != NULL && inner < close)) {
            report(ld, line, NULL, NULL, "syntax: bad group line \"%s\" (expected [rule ID])",
                   show(ld, copy));
            return;
        }
        group_begin(ld, line, copy + 1, (size_t)(close - copy - 1));
        return;
    }
    key_end = strchr(copy, '=');
    if (key_end == NULL || key_end == copy) {
        report(ld, line, NULL, NULL,
               "syntax: \"%s\" is neither a group, key = value, comment nor blank line",
               show(ld, copy));
        return;
    }
    value = key_end + 1;
    while (key_end > copy && is_space(key_end[-1]))
        key_end--;
    *key_end = '\0';
    while (is_space(*value))
        value++;
    for (char *e = value + strlen(value); e > value && is_space(e[-1]) && e[-2] != '\\'; e--)
        e[-1] = '\0';
    key_value(ld, line, copy, value);
}

static void scan_file(struct loader *ld, const char *name, const char *text, size_t len)
{
    const char *p = text, *end = text + len;
    const char *nul = memchr(text, '\0', len);
    unsigned line = 1;

    g_ptr_array_add(ld->files, g_strdup(name));
    if (nul != NULL) {
        for (const char *q = text; q < nul; q++)
            line += *q == '\n';
        report(ld, line, NULL, NULL, "syntax: NUL byte in a rules file");
        return;
    }
    if (len >= 3 && memcmp(p, "\xef\xbb\xbf", 3) == 0)
        p += 3; /* a UTF-8 byte order mark, as some editors write */
    for (; p < end; line++) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t n = nl != NULL ? (size_t)(nl - p) : (size_t)(end - p);
        scan_line(ld, line, p, n);
        g_ptr_array_set_size(ld->scratch, 0);
        p += n + 1;
    }
    group_end(ld);
}

/* Reachability. */

static bool has_wildcard(const char *s)
{
    return strpbrk(s, "*?") != NULL;
}

/* Every string B's pattern b matches is matched by A's pattern a. */
static bool glob_covers(const char *a, GPatternSpec *aspec, const char *b)
{
    size_t alen = strlen(a);

    if (strcmp(a, b) == 0)
        return true;
    if (!has_wildcard(b))
        return g_pattern_spec_match_string(aspec, b);
    if (alen > 0 && a[alen - 1] == '*') {
        for (size_t i = 0; i + 1 < alen; i++) {
            if (a[i] == '*' || a[i] == '?')
                return false;
        }
        return strncmp(a, b, alen - 1) == 0;
    }
    return false;
}

static bool globs_cover(const struct mg_rules_globs *a, const struct mg_rules_globs *b)
{
    for (unsigned i = 0; i < b->n; i++) {
        unsigned j = 0;
        while (j < a->n && !glob_covers(a->pat[j], a->spec[j], b->pat[i]))
            j++;
        if (j == a->n)
            return false;
    }
    return true;
}

static bool ext_cover(char *const *a, char *const *b)
{
    for (; *b != NULL; b++) {
        char *const *p = a;
        while (*p != NULL && strcmp(*p, *b) != 0)
            p++;
        if (*p == NULL)
            return false;
    }
    return true;
}

/* true when rule a (earlier) matches everything rule b matches. */
static bool rules_covers(const struct mg_rule *a, const struct mg_rule *b)
{
    const struct {
        unsigned bit;
        const struct mg_rules_globs *ga, *gb;
    } globs[] = {
        {MG_RK_DETECTED, &a->detected, &b->detected},
        {MG_RK_DECLARED, &a->declared, &b->declared},
        {MG_RK_FILENAME, &a->filename, &b->filename},
        {MG_RK_SENDER, &a->sender, &b->sender},
        {MG_RK_RECIPIENT, &a->recipient, &b->recipient},
    };

    if ((a->have & MG_RK_PART) && (!(b->have & MG_RK_PART) || a->part != b->part))
        return false;
    for (unsigned i = 0; i < G_N_ELEMENTS(globs); i++) {
        if ((a->have & globs[i].bit) &&
            (!(b->have & globs[i].bit) || !globs_cover(globs[i].ga, globs[i].gb)))
            return false;
    }
    if ((a->have & MG_RK_EXTENSION) && (!(b->have & MG_RK_EXTENSION) || !ext_cover(a->ext, b->ext)))
        return false;
    /* absent ranges hold 0..UINT64_MAX, absent flags 0 */
    if (a->min_size > b->min_size || a->max_size < b->max_size)
        return false;
    if (a->min_depth > b->min_depth || a->max_depth < b->max_depth)
        return false;
    return (a->flags & ~b->flags) == 0 && (a->without & ~b->without) == 0;
}

static void check_reachable(struct loader *ld)
{
    for (guint j = 1; j < ld->rules->len; j++) {
        const struct mg_rule *b = &g_array_index(ld->rules, struct mg_rule, j);
        for (guint i = 0; i < j; i++) {
            const struct mg_rule *a = &g_array_index(ld->rules, struct mg_rule, i);
            if (rules_covers(a, b)) {
                report_rule(ld, b,
                            "unreachable: everything it matches is matched first by rule %s at %s",
                            a->id, a->source);
                break;
            }
        }
    }
}

/* The loader. */

static void loader_init(struct loader *ld)
{
    memset(ld, 0, sizeof(*ld));
    ld->errors = g_array_new(FALSE, FALSE, sizeof(struct error_line));
    ld->files = g_ptr_array_new_with_free_func(g_free);
    ld->ids = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
    ld->rules = g_array_new(FALSE, TRUE, sizeof(struct mg_rule));
    ld->scratch = g_ptr_array_new_with_free_func(g_free);
}

/* Ends the load: the policy, or NULL and *err with every error line. */
static struct mg_rules *loader_finish(struct loader *ld, const char *what, GError **err)
{
    struct mg_rules *r = NULL;

    check_reachable(ld);
    if (ld->n_errors == 0 && ld->rules->len == 0) {
        g_set_error(err, MG_RULES_ERROR, 0, "%s: no policy: no rule is defined", what);
    } else if (ld->n_errors == 0) {
        r = mg_rules_new_from((struct mg_rule *)(void *)ld->rules->data, ld->rules->len);
        g_array_set_size(ld->rules, 0); /* now owned by r */
    } else {
        GString *msg = g_string_new(NULL);
        g_array_sort(ld->errors, cmp_errors);
        for (guint i = 0; i < ld->errors->len; i++)
            g_string_append_printf(msg, "%s%s", i > 0 ? "\n" : "",
                                   g_array_index(ld->errors, struct error_line, i).text);
        if (ld->n_errors > MG_RULES_MAX_ERRORS)
            g_string_append_printf(msg, "\n(%u more errors not shown)",
                                   ld->n_errors - MG_RULES_MAX_ERRORS);
        g_set_error_literal(err, MG_RULES_ERROR, 0, msg->str);
        g_string_free(msg, TRUE);
    }
    for (guint i = 0; i < ld->rules->len; i++)
        mg_rules_rule_fini(&g_array_index(ld->rules, struct mg_rule, i));
    for (guint i = 0; i < ld->errors->len; i++)
        g_free(g_array_index(ld->errors, struct error_line, i).text);
    g_array_unref(ld->errors);
    g_ptr_array_unref(ld->files);
    g_array_unref(ld->rules);
    g_hash_table_unref(ld->ids);
    g_ptr_array_unref(ld->scratch);
    return r;
}

struct mg_rules *mg_rules_load_texts(const struct mg_rules_text *files, unsigned n,
                                     const char *prefix, GError **err)
{
    struct loader ld;

    loader_init(&ld);
    for (unsigned i = 0; i < n; i++) {
        char *name = g_strconcat(prefix, files[i].name, NULL);
        scan_file(&ld, name, files[i].text, strlen(files[i].text));
        g_free(name);
    }
    return loader_finish(&ld, n > 0 ? prefix : "(no files)", err);
}

static int cmp_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The *.rules names of dir, sorted (owned vector), or NULL and errno. */
static char **list_dir(const char *dir)
{
    DIR *d = opendir(dir);
    GPtrArray *names;
    struct dirent *e;

    if (d == NULL)
        return NULL;
    names = g_ptr_array_new();
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] != '.' && g_str_has_suffix(e->d_name, ".rules"))
            g_ptr_array_add(names, g_strdup(e->d_name));
    }
    closedir(d);
    g_ptr_array_sort(names, cmp_names);
    g_ptr_array_add(names, NULL);
    return (char **)g_ptr_array_free(names, FALSE);
}

static void read_file(struct loader *ld, const char *path)
{
    const char *why = NULL;
    GError *e = NULL;
    GStatBuf st;
    char *text = NULL;
    gsize len;

    if (g_stat(path, &st) != 0)
        why = g_strerror(errno);
    else if (!S_ISREG(st.st_mode))
        why = "not a regular file";
    else if (st.st_size > MG_RULES_MAX_FILE_BYTES)
        why = "too large (a rules file has at most 1 MiB)";
    else if (!g_file_get_contents(path, &text, &len, &e))
        why = e->message;
    if (why == NULL) {
        scan_file(ld, path, text, len);
    } else {
        g_ptr_array_add(ld->files, g_strdup(path));
        report(ld, 0, NULL, NULL, "cannot read: %s", why);
    }
    if (e != NULL)
        g_error_free(e);
    g_free(text);
}

struct mg_rules *mg_rules_load(const char *dir, GError **err)
{
    struct loader ld;
    char **names;
    unsigned n;

    if (dir == NULL)
        return mg_rules_load_texts(mg_rules_builtin, mg_rules_builtin_count, "builtin:rules/", err);
    names = list_dir(dir);
    if (names == NULL) {
        int saved = errno;
        g_set_error(err, MG_RULES_ERROR, 0, "%s: cannot open the policy directory: %s", dir,
                    g_strerror(saved));
        return NULL;
    }
    n = g_strv_length(names);
    if (n == 0 || n > MG_RULES_MAX_FILES) {
        if (n == 0)
            g_set_error(err, MG_RULES_ERROR, 0, "%s: no policy: the directory has no *.rules file",
                        dir);
        else
            g_set_error(err, MG_RULES_ERROR, 0, "%s: too many *.rules files (at most %d)", dir,
                        MG_RULES_MAX_FILES);
        g_strfreev(names);
        return NULL;
    }
    loader_init(&ld);
    for (unsigned i = 0; i < n; i++) {
        char *path = g_build_filename(dir, names[i], NULL);
        read_file(&ld, path);
        g_free(path);
    }
    g_strfreev(names);
    return loader_finish(&ld, dir, err);
}
