/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * NAME
 *	sanitize_check 1
 * SUMMARY
 *	sanitise many mails; check every output with GMime and idempotence
 * SYNOPSIS
 *	sanitize_check --db DIR --out DIR [--quarantine DIR] [--lang ja|en]
 *		(--corpus | FILE...)
 *	sanitize_check --check FILE...
 * DESCRIPTION
 *	Runs each input through the pipeline in-process (rules, AV engine,
 *	libmagic and quarantine loaded once), fed in 4093-byte chunks,
 *	and writes the rebuilt message to OUT/NNNNN.eml (its source path
 *	in OUT/index.tsv). --corpus takes every mail of ../shared/corpus
 *	(the MIME sets, as tests/corpus chooses them) plus every file under
 *	mime-is-broken/ and eicar/.
 *
 *	Each output must:
 *	  - be produced (verdict accept: the built-in policy never rejects);
 *	  - parse with GMime without a single parser warning;
 *	  - contain only leaves the built-in policy can make: text/plain
 *	    and text/csv, and what the CDR handlers make (PDF, PNG, JPEG,
 *	    GIF, WebP, OOXML documents); none decoding to something with
 *	    the EICAR string; a zip signature only in an OOXML document
 *	    (with [Content_Types].xml and without a VBA project); a PDF
 *	    without the names of active content in its bytes (a smoke
 *	    check: tests/cdr/test_pdf.py expands every object with qpdf);
 *	  - sanitise again to the same bytes, apart from X-Mugaika-Result.
 *	Python's email package and clamscan look at OUT afterwards
 *	(check_outputs.py).
 *
 *	--check runs only the GMime checks (parse, leaf types, no EICAR or
 *	zip) on messages sanitised elsewhere: the milter's end-to-end test
 *	gives it what the LGWAN side received.
 * DIAGNOSTICS
 *	Prints one line per failure and a summary; exit 1 on any failure,
 *	2 on usage or setup errors.
 */
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <gmime/gmime.h>

#include <mugaika/sanitize.h>

#include "../corpus/corpus_util.h"

#define CHUNK 4093

struct ctx {
    struct mg_rules *rules;
    struct mg_av *av;
    struct mg_quarantine *q;
    struct mg_detect *det;
    const char *lang;
    unsigned failures;
    unsigned warnings;
};

static GByteArray *sanitize(struct ctx *c, const char *data, size_t len, enum mg_verdict *v,
                            char **why)
{
    struct mg_sanitize_opts o;
    struct mg_sanitize *s;
    GError *e = NULL;
    GByteArray *out = NULL;

    mg_sanitize_opts_default(&o);
    o.rules = c->rules;
    o.av = c->av;
    o.quarantine = c->q;
    o.detect = c->det;
    o.lang = c->lang;
    s = mg_sanitize_new(&o);
    for (size_t off = 0; off < len; off += CHUNK)
        mg_sanitize_feed(s, data + off, MIN((size_t)CHUNK, len - off));
    *v = mg_sanitize_finish(s, &e);
    *why = e != NULL ? g_strdup(e->message) : NULL;
    g_clear_error(&e);
    if (*v == MG_VERDICT_ACCEPT) {
        char path[] = "/tmp/mugaika-check-XXXXXX";
        int fd = g_mkstemp(path);
        if (fd >= 0) {
            unlink(path);
            if (mg_sanitize_write(s, fd, &e)) {
                off_t end = lseek(fd, 0, SEEK_END);
                out = g_byte_array_sized_new((guint)end);
                g_byte_array_set_size(out, (guint)end);
                if (pread(fd, out->data, (size_t)end, 0) != end)
                    g_byte_array_set_size(out, 0);
            } else {
                *why = g_strdup(e->message);
                g_clear_error(&e);
            }
            close(fd);
        }
    }
    mg_sanitize_free(s);
    return out;
}

/* The message without its X-Mugaika-Result field (and folded lines). */
static char *strip_result(const GByteArray *m)
{
    GString *o = g_string_sized_new(m->len);
    const char *p = (const char *)m->data, *end = p + m->len;
    bool skipping = false, in_header = true;

    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *next = nl != NULL ? nl + 1 : end;
        if (in_header) {
            if (next - p <= 2 && (*p == '\n' || *p == '\r'))
                in_header = false;
            else if (skipping && (*p == ' ' || *p == '\t'))
                goto skip;
            skipping = g_ascii_strncasecmp(p, "X-Mugaika-Result:", 17) == 0;
            if (skipping)
                goto skip;
        }
        g_string_append_len(o, p, next - p);
    skip:
        p = next;
    }
    return g_string_free(o, FALSE);
}

static const char eicar_head[] = "X5O!P%@AP[4\\PZX54(P^)7CC)7}$EICAR";

static void warn_cb(gint64 offset, GMimeParserWarning errcode, const gchar *item, gpointer user)
{
    struct ctx *c = user;

    (void)offset;
    (void)item;
    /* GMime calls these "warnings"; for our own output every one counts */
    c->warnings++;
    if (c->warnings <= 3)
        fprintf(stderr, "    gmime warning %d (%s)\n", (int)errcode, item != NULL ? item : "");
}

/* Returns a failure reason, or NULL. */
static const char *check_output(struct ctx *c, const GByteArray *m)
{
    GMimeStream *st = g_mime_stream_mem_new_with_buffer((const char *)m->data, m->len);
    GMimeParser *p = g_mime_parser_new_with_stream(st);
    GMimeParserOptions *po = g_mime_parser_options_new();
    GMimeMessage *msg;
    GMimePartIter *it;
    const char *bad = NULL;

    c->warnings = 0;
    g_mime_parser_options_set_warning_callback(po, warn_cb, c);
    msg = g_mime_parser_construct_message(p, po);
    if (msg == NULL) {
        bad = "GMime cannot parse the output";
        goto out;
    }
    if (c->warnings > 0) {
        bad = "GMime reports parser warnings";
        goto out;
    }
    it = g_mime_part_iter_new(GMIME_OBJECT(msg));
    do {
        GMimeObject *o = g_mime_part_iter_get_current(it);
        GMimeContentType *ct;
        if (o == NULL || !GMIME_IS_PART(o))
            continue;
        ct = g_mime_object_get_content_type(o);
        bool ooxml = g_mime_content_type_is_type(ct, "application", "*") &&
                     g_str_has_prefix(g_mime_content_type_get_media_subtype(ct),
                                      "vnd.openxmlformats-officedocument.");
        bool pdf = g_mime_content_type_is_type(ct, "application", "pdf");
        bool image = g_mime_content_type_is_type(ct, "image", "png") ||
                     g_mime_content_type_is_type(ct, "image", "jpeg") ||
                     g_mime_content_type_is_type(ct, "image", "gif") ||
                     g_mime_content_type_is_type(ct, "image", "webp");
        if (!g_mime_content_type_is_type(ct, "text", "plain") &&
            !g_mime_content_type_is_type(ct, "text", "csv") && !ooxml && !pdf && !image) {
            bad = "a part of a type the policy does not make";
            break;
        }
        GMimeDataWrapper *dw = g_mime_part_get_content(GMIME_PART(o));
        GMimeStream *ds = g_mime_stream_mem_new();
        if (dw != NULL)
            g_mime_data_wrapper_write_to_stream(dw, ds);
        GByteArray *b = g_mime_stream_mem_get_byte_array(GMIME_STREAM_MEM(ds));
        if (ooxml && (b->len < 4 || memcmp(b->data, "PK\003\004", 4) != 0 ||
                      memmem(b->data, b->len, "[Content_Types].xml", 19) == NULL ||
                      memmem(b->data, b->len, "vbaProject", 10) != NULL))
            bad = "an Office document that is not a disarmed OOXML package";
        else if (!ooxml && b->len >= 4 && memcmp(b->data, "PK\003\004", 4) == 0)
            bad = "a part decodes to a zip file";
        else if (pdf && (b->len < 5 || memcmp(b->data, "%PDF-", 5) != 0 ||
                         memmem(b->data, b->len, "/JavaScript", 11) != NULL ||
                         memmem(b->data, b->len, "/OpenAction", 11) != NULL ||
                         memmem(b->data, b->len, "/Launch", 7) != NULL ||
                         memmem(b->data, b->len, "/EmbeddedFile", 13) != NULL))
            bad = "a PDF with active content";
        else if (b->len > 0 && memmem(b->data, b->len, eicar_head, sizeof eicar_head - 1) != NULL)
            bad = "a part decodes to EICAR";
        g_object_unref(ds);
    } while (bad == NULL && g_mime_part_iter_next(it));
    g_mime_part_iter_free(it);
out:
    if (msg != NULL)
        g_object_unref(msg);
    g_mime_parser_options_free(po);
    g_object_unref(p);
    g_object_unref(st);
    return bad;
}

static void fail(struct ctx *c, const char *name, const char *what, const char *detail)
{
    c->failures++;
    if (c->failures <= 40)
        printf("FAIL %s: %s%s%s\n", name, what, detail != NULL ? ": " : "", detail ? detail : "");
}

static void one(struct ctx *c, const char *name, const char *data, size_t len, const char *out_dir,
                unsigned n, FILE *index)
{
    enum mg_verdict v;
    char *why = NULL, *path;
    GByteArray *out = sanitize(c, data, len, &v, &why), *again;
    const char *bad;

    if (out == NULL) {
        fail(c, name, mg_verdict_name(v), why);
        g_free(why);
        return;
    }
    g_free(why);
    path = g_strdup_printf("%s/%05u.eml", out_dir, n);
    if (!g_file_set_contents(path, (const char *)out->data, out->len, NULL))
        fail(c, name, "cannot write", path);
    fprintf(index, "%05u.eml\t%s\n", n, name);
    g_free(path);
    if ((bad = check_output(c, out)) != NULL)
        fail(c, name, bad, NULL);
    again = sanitize(c, (const char *)out->data, out->len, &v, &why);
    if (again == NULL) {
        fail(c, name, "second pass failed", why);
    } else {
        char *a = strip_result(out), *b = strip_result(again);
        if (strcmp(a, b) != 0)
            fail(c, name, "not idempotent", NULL);
        g_free(a);
        g_free(b);
        g_byte_array_unref(again);
    }
    g_free(why);
    g_byte_array_unref(out);
}

int main(int argc, char **argv)
{
    char *db = NULL, *out_dir = NULL, *qdir = NULL, *lang = NULL;
    gboolean corpus = FALSE, check_only = FALSE;
    GOptionEntry entries[] = {
        {"check", 0, 0, G_OPTION_ARG_NONE, &check_only, "only check FILE... with GMime", NULL},
        {"db", 0, 0, G_OPTION_ARG_FILENAME, &db, "ClamAV database", "DIR"},
        {"out", 0, 0, G_OPTION_ARG_FILENAME, &out_dir, "output directory", "DIR"},
        {"quarantine", 0, 0, G_OPTION_ARG_FILENAME, &qdir, "quarantine", "DIR"},
        {"lang", 0, 0, G_OPTION_ARG_STRING, &lang, "ja or en", "LANG"},
        {"corpus", 0, 0, G_OPTION_ARG_NONE, &corpus, "all corpus mails", NULL},
        {NULL, 0, 0, 0, NULL, NULL, NULL},
    };
    GOptionContext *oc = g_option_context_new("FILE...");
    GError *e = NULL;
    struct ctx c = {0};
    const char *why = NULL;
    unsigned n = 0;
    FILE *index;
    char *index_path;

    g_option_context_add_main_entries(oc, entries, NULL);
    if (g_option_context_parse(oc, &argc, &argv, &e) && check_only && argc > 1) {
        g_mime_init();
        for (int i = 1; i < argc; i++) {
            char *data;
            gsize len;
            GByteArray *m;
            const char *bad;
            if (!g_file_get_contents(argv[i], &data, &len, &e)) {
                fprintf(stderr, "%s\n", e->message);
                return 2;
            }
            m = g_byte_array_new_take((guint8 *)data, len);
            if ((bad = check_output(&c, m)) != NULL)
                fail(&c, argv[i], bad, NULL);
            g_byte_array_unref(m);
        }
        printf("sanitize_check --check: %d messages, %u failures\n", argc - 1, c.failures);
        g_option_context_free(oc);
        return c.failures == 0 ? 0 : 1;
    }
    if (check_only || db == NULL || out_dir == NULL) {
        fprintf(stderr, "usage: sanitize_check --db DIR --out DIR [--corpus | FILE...]\n");
        return 2;
    }
    g_mime_init();
    c.lang = lang != NULL ? lang : "ja";
    c.rules = mg_rules_load(NULL, &e);
    if (c.rules == NULL) {
        fprintf(stderr, "rules: %s\n", e->message);
        return 2;
    }
    c.av = mg_av_open(db, &e);
    if (c.av == NULL) {
        fprintf(stderr, "av: %s\n", e->message);
        return 2;
    }
    c.det = mg_detect_new(&why);
    if (c.det == NULL) {
        fprintf(stderr, "detect: %s\n", why);
        return 2;
    }
    if (qdir != NULL && (c.q = mg_quarantine_open(qdir, &e)) == NULL) {
        fprintf(stderr, "quarantine: %s\n", e->message);
        return 2;
    }
    g_mkdir_with_parents(out_dir, 0700);
    index_path = g_build_filename(out_dir, "index.tsv", NULL);
    index = fopen(index_path, "we");
    if (index == NULL) {
        fprintf(stderr, "%s: cannot create\n", index_path);
        return 2;
    }
    if (corpus) {
        char *root = corpus_root();
        GPtrArray *files = corpus_list(root, "");
        for (guint i = 0; i < files->len; i++) {
            const char *rel = g_ptr_array_index(files, i);
            size_t len;
            char *data = corpus_read(root, rel, &len);
            if (corpus_is_mail(rel, data, len) || g_str_has_prefix(rel, "mime-is-broken/") ||
                g_str_has_prefix(rel, "eicar/"))
                one(&c, rel, data, len, out_dir, n++, index);
            g_free(data);
        }
        g_ptr_array_unref(files);
        g_free(root);
    }
    for (int i = 1; i < argc; i++) {
        char *data;
        gsize len;
        if (!g_file_get_contents(argv[i], &data, &len, &e)) {
            fprintf(stderr, "%s\n", e->message);
            return 2;
        }
        one(&c, argv[i], data, len, out_dir, n++, index);
        g_free(data);
    }
    fclose(index);
    printf("sanitize_check: %u inputs, %u failures (%s)\n", n, c.failures,
           c.failures == 0
               ? "every output parses cleanly with GMime, holds only what the policy makes, "
                 "and is a fixed point"
               : "see above");
    if (c.q != NULL)
        mg_quarantine_close(c.q);
    mg_detect_free(c.det);
    mg_av_unref(c.av);
    mg_rules_unref(c.rules);
    g_free(index_path);
    g_free(db);
    g_free(out_dir);
    g_free(qdir);
    g_free(lang);
    g_option_context_free(oc);
    return c.failures == 0 && n > 0 ? 0 : 1;
}
