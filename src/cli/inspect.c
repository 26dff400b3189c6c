/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * NAME
 *	inspect 1
 * SUMMARY
 *	mugaika inspect: what the parser understood of a message
 * SYNOPSIS
 *	mugaika inspect [--json] [--text] [--no-detect] [--rules DIR]
 *		[--clamav-db DIR] FILE...
 * DESCRIPTION
 *	Streams each FILE ("-" for standard input) through the push
 *	parser in 64 KiB reads, so memory stays bounded whatever the
 *	message size. Default output is a readable tree; --json prints
 *	one JSON object per file (indented for one file, one object per
 *	line for several). --text adds the UTF-8 text of text parts.
 *	--no-detect skips libmagic.
 *
 *	Each leaf also shows the rule and the action the policy would
 *	apply (the built-in policy, or --rules DIR): the same pipeline as
 *	`mugaika sanitize` runs alongside, without a quarantine. Virus
 *	findings count only with --clamav-db (no engine is loaded
 *	otherwise). With --no-detect there is no policy either (rules
 *	match on the detected type).
 * DIAGNOSTICS
 *	A file that cannot be read: "mugaika: FILE: reason" on stderr and
 *	exit 66 (the other files are still inspected). Usage errors: 64.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <glib.h>
#include <json-glib/json-glib.h>

#include <mugaika/inspect.h>
#include <mugaika/sanitize.h>

#include "cli/cli.h"

#define READ_CHUNK 65536

struct policy {
    struct mg_rules *rules;
    struct mg_av *av;
};

/* path -> "rule\taction" of every leaf, from the sanitising pipeline;
 * "path\tcdr" -> the handler's record (JsonNode) of a part a CDR
 * handler ran on; "\tderived" -> JsonArray of the parts made by
 * unpacking (archive members, paths "2:1", "2:1:3"), in order. */
static void node_unref(gpointer p)
{
    json_node_unref(p);
}

static GHashTable *policy_map(struct mg_sanitize *s, GHashTable **nodes)
{
    GHashTable *m = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
    JsonNode *parts = mg_sanitize_parts_json(s);
    JsonArray *a = json_node_get_array(parts);
    JsonArray *derived = json_array_new();

    *nodes = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, node_unref);
    for (guint i = 0; i < json_array_get_length(a); i++) {
        JsonObject *p = json_array_get_object_element(a, i);
        if (json_object_has_member(p, "archive_depth"))
            json_array_add_element(derived, json_node_copy(json_array_get_element(a, i)));
        else if (json_object_has_member(p, "cdr"))
            g_hash_table_insert(
                *nodes, g_strdup_printf("%s\tcdr", json_object_get_string_member(p, "path")),
                json_node_copy(json_object_get_member(p, "cdr")));
        if (!json_object_get_boolean_member(p, "leaf") || json_object_get_null_member(p, "rule"))
            continue;
        const char *forced = json_object_get_null_member(p, "forced")
                                 ? NULL
                                 : json_object_get_string_member(p, "forced");
        JsonArray *flags = json_object_get_array_member(p, "flags");
        GString *why = g_string_new(forced);
        for (guint k = 0; flags != NULL && k < json_array_get_length(flags); k++) {
            const char *f = json_array_get_string_element(flags, k);
            if (g_strcmp0(f, forced) != 0)
                g_string_append_printf(why, "%s%s", why->len > 0 ? ", " : "", f);
        }
        g_hash_table_insert(m, g_strdup(json_object_get_string_member(p, "path")),
                            g_strdup_printf("%s\t%s%s%s", json_object_get_string_member(p, "rule"),
                                            json_object_get_string_member(p, "action"),
                                            why->len > 0 ? "\t" : "", why->str));
        g_string_free(why, TRUE);
    }
    {
        JsonNode *dn = json_node_new(JSON_NODE_ARRAY);
        json_node_take_array(dn, derived);
        g_hash_table_insert(*nodes, g_strdup("\tderived"), dn);
    }
    json_node_unref(parts);
    return m;
}

/* The derived parts under the part at path (members of its archive). */
static bool under(const char *derived_path, const char *path)
{
    size_t n = strlen(path);

    return strncmp(derived_path, path, n) == 0 && derived_path[n] == ':';
}

static void policy_json(JsonNode *root, GHashTable *m, GHashTable *nodes)
{
    JsonArray *a = json_object_get_array_member(json_node_get_object(root), "parts");
    JsonNode *dn = g_hash_table_lookup(nodes, "\tderived");
    JsonArray *derived = dn != NULL ? json_node_get_array(dn) : NULL;
    JsonArray *out = json_array_new();

    for (guint i = 0; a != NULL && i < json_array_get_length(a); i++) {
        JsonObject *p = json_array_get_object_element(a, i);
        const char *path = json_object_get_string_member(p, "path");
        const char *v = g_hash_table_lookup(m, path);
        char **f = v != NULL ? g_strsplit(v, "\t", 3) : NULL;
        char *key = g_strdup_printf("%s\tcdr", path);
        JsonNode *cdr = g_hash_table_lookup(nodes, key);

        g_free(key);
        if (f != NULL) {
            json_object_set_string_member(p, "rule", f[0]);
            json_object_set_string_member(p, "action", f[1]);
            if (f[2] != NULL)
                json_object_set_string_member(p, "forced", f[2]);
        } else {
            json_object_set_null_member(p, "rule");
            json_object_set_null_member(p, "action");
        }
        g_strfreev(f);
        if (cdr != NULL)
            json_object_set_member(p, "cdr", json_node_copy(cdr));
        json_array_add_element(out, json_node_copy(json_array_get_element(a, i)));
        /* the members of an archive follow it */
        for (guint j = 0; derived != NULL && j < json_array_get_length(derived); j++) {
            JsonObject *d = json_array_get_object_element(derived, j);
            if (under(json_object_get_string_member(d, "path"), path))
                json_array_add_element(out, json_node_copy(json_array_get_element(derived, j)));
        }
    }
    json_object_set_array_member(json_node_get_object(root), "parts", out);
}

/* Appends "  -> rule R: action" to each part line of the tree. */
static void cdr_line(GString *o, JsonObject *c)
{
    const char *status = json_object_get_string_member(c, "status");

    g_string_append_printf(o, " [%s: %s", json_object_get_string_member(c, "handler"), status);
    if (json_object_has_member(c, "members"))
        g_string_append_printf(o, ", %" G_GINT64_FORMAT " files",
                               json_object_get_int_member(c, "members"));
    if (!json_object_get_null_member(c, "reason"))
        g_string_append_printf(o, ", %s", json_object_get_string_member(c, "reason"));
    g_string_append_c(o, ']');
}

/* "  2:1 application/pdf "name" 123 bytes  -> rule pdf: disarm [...]" */
static void member_line(GString *o, JsonObject *d, size_t indent)
{
    const char *forced = json_object_get_null_member(d, "forced")
                             ? NULL
                             : json_object_get_string_member(d, "forced");
    gint64 depth = json_object_get_int_member(d, "archive_depth");

    g_string_append_c(o, '\n');
    for (size_t k = 0; k < indent + 2 * (size_t)depth; k++)
        g_string_append_c(o, ' ');
    g_string_append_printf(o, "%s %s", json_object_get_string_member(d, "path"),
                           json_object_get_null_member(d, "detected_type")
                               ? "?"
                               : json_object_get_string_member(d, "detected_type"));
    if (!json_object_get_null_member(d, "filename"))
        g_string_append_printf(o, " \"%s\"", json_object_get_string_member(d, "filename"));
    g_string_append_printf(o, " %" G_GINT64_FORMAT " bytes", json_object_get_int_member(d, "size"));
    if (!json_object_get_null_member(d, "rule"))
        g_string_append_printf(o, "  -> rule %s: %s", json_object_get_string_member(d, "rule"),
                               json_object_get_string_member(d, "action"));
    if (forced != NULL)
        g_string_append_printf(o, " (%s)", forced);
    if (json_object_has_member(d, "cdr"))
        cdr_line(o, json_object_get_object_member(d, "cdr"));
}

static char *policy_tree(const char *tree, GHashTable *m, GHashTable *nodes)
{
    GString *o = g_string_new(NULL);
    JsonNode *dn = g_hash_table_lookup(nodes, "\tderived");
    JsonArray *derived = dn != NULL ? json_node_get_array(dn) : NULL;
    char **lines = g_strsplit(tree, "\n", -1);

    for (char **l = lines; *l != NULL; l++) {
        const char *p = *l;
        while (*p == ' ')
            p++;
        size_t n = strcspn(p, " ");
        char *path = g_strndup(p, n);
        const char *v = g_hash_table_lookup(m, path);
        g_string_append(o, *l);
        if (v != NULL) {
            char **f = g_strsplit(v, "\t", 3);
            char *key = g_strdup_printf("%s\tcdr", path);
            JsonNode *cdr = g_hash_table_lookup(nodes, key);
            g_string_append_printf(o, "  -> rule %s: %s", f[0], f[1]);
            if (f[2] != NULL)
                g_string_append_printf(o, " (%s)", f[2]);
            if (cdr != NULL)
                cdr_line(o, json_node_get_object(cdr));
            g_strfreev(f);
            g_free(key);
        }
        for (guint j = 0; derived != NULL && j < json_array_get_length(derived); j++) {
            JsonObject *d = json_array_get_object_element(derived, j);
            if (under(json_object_get_string_member(d, "path"), path))
                member_line(o, d, (size_t)(p - *l));
        }
        if (l[1] != NULL)
            g_string_append_c(o, '\n');
        g_free(path);
    }
    g_strfreev(lines);
    return g_string_free(o, FALSE);
}

/* Returns 0, or an exit status. */
static int inspect_one(const char *file, struct mg_inspect_opts *o, bool json, bool pretty,
                       struct policy *pol)
{
    struct mg_sanitize *san = NULL;
    GHashTable *map = NULL, *nodes = NULL;
    int fd = strcmp(file, "-") == 0 ? STDIN_FILENO : open(file, O_RDONLY | O_CLOEXEC);
    struct mg_inspect *in;
    char *buf;
    ssize_t n;
    enum mg_status st = MG_OK;

    if (fd < 0) {
        fprintf(stderr, "mugaika: %s: %s\n", file, g_strerror(errno));
        return MG_EX_NOINPUT;
    }
    in = mg_inspect_new(o);
    if (pol->rules != NULL) {
        struct mg_sanitize_opts so;
        mg_sanitize_opts_default(&so);
        so.rules = pol->rules;
        so.av = pol->av;
        so.detect = o->detect;
        san = mg_sanitize_new(&so);
    }
    buf = g_malloc(READ_CHUNK);
    while ((n = read(fd, buf, READ_CHUNK)) != 0) {
        if (n < 0) {
            if (errno == EINTR)
                continue;
            fprintf(stderr, "mugaika: %s: %s\n", file, g_strerror(errno));
            break;
        }
        if ((st = mg_inspect_feed(in, buf, (size_t)n)) != MG_OK)
            break;
        if (san != NULL)
            mg_sanitize_feed(san, buf, (size_t)n);
    }
    g_free(buf);
    if (fd != STDIN_FILENO)
        close(fd);
    if (n < 0) {
        mg_inspect_free(in);
        mg_sanitize_free(san);
        return MG_EX_NOINPUT;
    }
    if (san != NULL) {
        GError *e = NULL;
        enum mg_verdict v = mg_sanitize_finish(san, &e);
        if (v == MG_VERDICT_TEMPFAIL || v == MG_VERDICT_INTERNAL) {
            fprintf(stderr, "mugaika: %s: policy: %s\n", file, e != NULL ? e->message : "failed");
            g_clear_error(&e);
            mg_sanitize_free(san);
            mg_inspect_free(in);
            return v == MG_VERDICT_TEMPFAIL ? MG_EX_TEMPFAIL : MG_EX_SOFTWARE;
        }
        g_clear_error(&e);
        map = policy_map(san, &nodes);
        mg_sanitize_free(san);
    }
    if (st == MG_OK)
        st = mg_inspect_finish(in);
    if (st != MG_OK) {
        fprintf(stderr, "mugaika: %s: parser: %s\n", file, mg_status_str(st));
        mg_inspect_free(in);
        if (map != NULL)
            g_hash_table_unref(map);
        if (nodes != NULL)
            g_hash_table_unref(nodes);
        return MG_EX_SOFTWARE;
    }
    if (json) {
        JsonNode *root = mg_inspect_json(in);
        if (map != NULL)
            policy_json(root, map, nodes);
        char *text = json_to_string(root, pretty);
        fputs(text, stdout);
        fputc('\n', stdout);
        g_free(text);
        json_node_unref(root);
    } else {
        GString *out = g_string_new(NULL);
        mg_inspect_tree(in, out);
        if (map != NULL) {
            char *t = policy_tree(out->str, map, nodes);
            fprintf(stdout, "%s\n%s", file, t);
            g_free(t);
        } else {
            fprintf(stdout, "%s\n%s", file, out->str);
        }
        g_string_free(out, TRUE);
    }
    mg_inspect_free(in);
    if (map != NULL)
        g_hash_table_unref(map);
    if (nodes != NULL)
        g_hash_table_unref(nodes);
    return 0;
}

int mg_cli_inspect(int argc, char **argv)
{
    struct mg_inspect_opts o;
    struct mg_detect *det = NULL;
    bool json = false, detect = true, only_files = false;
    const char *rules_dir = NULL, *db = NULL;
    struct policy pol = {NULL, NULL};
    GError *e = NULL;
    GPtrArray *files;
    int i, rc = 0;

    mg_inspect_opts_default(&o);
    files = g_ptr_array_new();
    /* options may stand anywhere before "--" */
    for (i = 1; i < argc; i++) {
        if (only_files || argv[i][0] != '-' || argv[i][1] == '\0') {
            g_ptr_array_add(files, argv[i]);
        } else if (strcmp(argv[i], "--") == 0) {
            only_files = true;
        } else if (strcmp(argv[i], "--json") == 0) {
            json = true;
        } else if (strcmp(argv[i], "--text") == 0) {
            o.text = true;
        } else if (strcmp(argv[i], "--no-detect") == 0) {
            detect = false;
        } else if ((strcmp(argv[i], "--rules") == 0 || strcmp(argv[i], "--clamav-db") == 0) &&
                   i + 1 < argc) {
            if (strcmp(argv[i], "--rules") == 0)
                rules_dir = argv[++i];
            else
                db = argv[++i];
        } else {
            fprintf(stderr, "mugaika inspect: unknown option '%s'\n", argv[i]);
            g_ptr_array_unref(files);
            return MG_EX_USAGE;
        }
    }
    if (files->len == 0) {
        fputs("usage: mugaika inspect [--json] [--text] [--no-detect] [--rules DIR]\n"
              "                       [--clamav-db DIR] FILE...\n",
              stderr);
        g_ptr_array_unref(files);
        return MG_EX_USAGE;
    }
    if (detect) {
        const char *why = NULL;
        det = mg_detect_new(&why);
        if (det == NULL) {
            fprintf(stderr, "mugaika: libmagic: %s\n", why);
            g_ptr_array_unref(files);
            return MG_EX_SOFTWARE;
        }
        o.detect = det;
        pol.rules = mg_rules_load(rules_dir, &e);
        if (pol.rules == NULL) {
            fprintf(stderr, "mugaika: inspect: rules:\n%s\n", e->message);
            g_clear_error(&e);
            mg_detect_free(det);
            g_ptr_array_unref(files);
            return MG_EX_CONFIG;
        }
        if (db != NULL && (pol.av = mg_av_open(db, &e)) == NULL) {
            fprintf(stderr, "mugaika: inspect: antivirus: %s\n", e->message);
            rc = g_error_matches(e, MG_AV_ERROR, MG_AV_ERROR_NO_DATABASE) ? MG_EX_CONFIG
                                                                          : MG_EX_TEMPFAIL;
            g_clear_error(&e);
            mg_rules_unref(pol.rules);
            mg_detect_free(det);
            g_ptr_array_unref(files);
            return rc;
        }
    }
    for (guint k = 0; k < files->len; k++) {
        int r = inspect_one(files->pdata[k], &o, json, files->len == 1, &pol);
        if (r != 0 && rc == 0)
            rc = r;
    }
    g_ptr_array_unref(files);
    fflush(stdout);
    if (pol.av != NULL)
        mg_av_unref(pol.av);
    if (pol.rules != NULL)
        mg_rules_unref(pol.rules);
    mg_detect_free(det);
    return rc;
}
