/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * NAME
 *	config 3
 * SUMMARY
 *	the configuration file
 * SYNOPSIS
 *	#include <mugaika/config.h>
 *
 *	bool mg_config_load(const char *path, struct mg_config *out, GError **err);
 *	void mg_config_clear(struct mg_config *c);
 * DESCRIPTION
 *	GKeyFile parses the values; the text is scanned once more for the
 *	line of each key, which GKeyFile does not report, so that every
 *	error names file, line and key. Every error of the file is
 *	reported, one line each.
 */
#include <string.h>

#include <mugaika/config.h>

#define GROUP "mugaika"

GQuark mg_config_error_quark(void)
{
    return g_quark_from_static_string("mg-config-error-quark");
}

enum kind { K_PATH, K_LANG, K_DAYS };

static const struct {
    const char *key;
    enum kind kind;
    size_t off;
} keys[] = {
    {"rules", K_PATH, G_STRUCT_OFFSET(struct mg_config, rules_dir)},
    {"quarantine", K_PATH, G_STRUCT_OFFSET(struct mg_config, quarantine_dir)},
    {"clamav-db", K_PATH, G_STRUCT_OFFSET(struct mg_config, clamav_db)},
    {"lang", K_LANG, G_STRUCT_OFFSET(struct mg_config, lang)},
    {"audit", K_PATH, G_STRUCT_OFFSET(struct mg_config, audit)},
    {"spool", K_PATH, G_STRUCT_OFFSET(struct mg_config, spool_dir)},
    {"retention-days", K_DAYS, G_STRUCT_OFFSET(struct mg_config, retention_days)},
};

/* Line (1-based) of "key =" in group, or of "[group]" when key is NULL;
 * 0 when not found. */
static unsigned line_of(const char *text, const char *group, const char *key)
{
    char **lines = g_strsplit(text, "\n", -1);
    const char *cur = NULL;
    unsigned at = 0;

    for (unsigned i = 0; lines[i] != NULL && at == 0; i++) {
        char *l = g_strstrip(lines[i]);
        if (l[0] == '[') {
            char *end = strchr(l, ']');
            cur = end != NULL ? l + 1 : NULL;
            if (end != NULL)
                *end = '\0';
            if (key == NULL && cur != NULL && strcmp(cur, group) == 0)
                at = i + 1;
            continue;
        }
        if (key != NULL && cur != NULL && strcmp(cur, group) == 0) {
            size_t n = strlen(key);
            if (strncmp(l, key, n) == 0 && (l[n] == '=' || l[n] == ' ' || l[n] == '\t'))
                at = i + 1;
        }
    }
    g_strfreev(lines);
    return at;
}

static void add_error(GString *errs, const char *file, unsigned line, const char *key,
                      const char *why)
{
    if (errs->len > 0)
        g_string_append_c(errs, '\n');
    g_string_append_printf(errs, "%s:%u: %s%s%s", file, line, key != NULL ? key : "",
                           key != NULL ? ": " : "", why);
}

bool mg_config_load(const char *path, struct mg_config *out, GError **err)
{
    const char *file = path != NULL ? path : MG_CONFIG_DEFAULT_FILE;
    GKeyFile *kf;
    GError *e = NULL;
    GString *errs;
    char *text = NULL;
    gsize len;
    char **groups, **names;

    memset(out, 0, sizeof *out);
    out->retention_days = 90;
    if (path == NULL && !g_file_test(file, G_FILE_TEST_EXISTS))
        return true;
    if (!g_file_get_contents(file, &text, &len, &e)) {
        g_set_error(err, MG_CONFIG_ERROR, 0, "%s: %s", file, e->message);
        g_error_free(e);
        return false;
    }
    out->file = g_strdup(file);
    kf = g_key_file_new();
    if (!g_key_file_load_from_data(kf, text, len, G_KEY_FILE_NONE, &e)) {
        g_set_error(err, MG_CONFIG_ERROR, 0, "%s: %s", file, e->message);
        g_error_free(e);
        g_key_file_free(kf);
        g_free(text);
        mg_config_clear(out);
        return false;
    }
    errs = g_string_new(NULL);
    groups = g_key_file_get_groups(kf, NULL);
    for (char **g = groups; *g != NULL; g++)
        if (strcmp(*g, GROUP) != 0)
            add_error(errs, file, line_of(text, *g, NULL), NULL,
                      "unknown group (the only one is [" GROUP "])");
    g_strfreev(groups);
    names = g_key_file_has_group(kf, GROUP) ? g_key_file_get_keys(kf, GROUP, NULL, NULL) : NULL;
    for (char **k = names; k != NULL && *k != NULL; k++) {
        size_t i;
        unsigned line = line_of(text, GROUP, *k);
        for (i = 0; i < G_N_ELEMENTS(keys); i++)
            if (strcmp(keys[i].key, *k) == 0)
                break;
        if (i == G_N_ELEMENTS(keys)) {
            add_error(errs, file, line, *k, "unknown key");
            continue;
        }
        char *v = g_key_file_get_string(kf, GROUP, *k, NULL);
        if (v == NULL || *v == '\0') {
            add_error(errs, file, line, *k, "empty value");
        } else if (keys[i].kind == K_LANG && strcmp(v, "ja") != 0 && strcmp(v, "en") != 0) {
            char *why = g_strdup_printf("'%s' is neither ja nor en", v);
            add_error(errs, file, line, *k, why);
            g_free(why);
        } else if (keys[i].kind == K_DAYS) {
            guint64 n;
            if (!g_ascii_string_to_unsigned(v, 10, 1, 36500, &n, NULL)) {
                char *why = g_strdup_printf("'%s' is not a number of days (1-36500)", v);
                add_error(errs, file, line, *k, why);
                g_free(why);
            } else {
                out->retention_days = (unsigned)n;
            }
        } else {
            char **slot = G_STRUCT_MEMBER_P(out, keys[i].off);
            g_free(*slot);
            *slot = g_strdup(v);
        }
        g_free(v);
    }
    g_strfreev(names);
    g_key_file_free(kf);
    g_free(text);
    if (errs->len > 0) {
        g_set_error_literal(err, MG_CONFIG_ERROR, 0, errs->str);
        g_string_free(errs, TRUE);
        mg_config_clear(out);
        return false;
    }
    g_string_free(errs, TRUE);
    return true;
}

void mg_config_clear(struct mg_config *c)
{
    g_free(c->file);
    g_free(c->rules_dir);
    g_free(c->quarantine_dir);
    g_free(c->clamav_db);
    g_free(c->lang);
    g_free(c->audit);
    g_free(c->spool_dir);
    memset(c, 0, sizeof *c);
}
