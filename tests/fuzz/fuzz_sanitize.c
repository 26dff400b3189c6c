/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * NAME
 *	fuzz_sanitize 1
 * SUMMARY
 *	libFuzzer target: the whole sanitising pipeline (sanitize.h)
 * SYNOPSIS
 *	fuzz_sanitize [libFuzzer options] [corpus-dir...]
 *	fuzz_sanitize corpus-dir|file...	(replay build: replay_main.c)
 * DESCRIPTION
 *	The first byte of an input chooses the feed chunk size (its low 6
 *	bits + 1) and the notice language (bit 6); the rest is a message.
 *	It runs through mg_sanitize with the built-in policy, libmagic,
 *	no AV engine and no quarantine, with 4 KiB of spool memory so that
 *	the spool file is used too.
 *
 *	Checks: the verdict is accept (the built-in policy neither rejects
 *	nor holds; nothing here can fail for lack of resources); the
 *	rebuilt message parses with GMime without a single warning; every
 *	leaf of it is text or what a CDR handler makes (PDF, pictures,
 *	OOXML; the handlers run in their workers, as in the daemon);
 *	sanitising it again gives the same
 *	message apart from X-Mugaika-Result. Any violation aborts.
 *
 *	Seeds: testdata/fuzz/sanitize/ (first byte: options).
 */
#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

#include <glib.h>
#include <gmime/gmime.h>

#include <mugaika/sanitize.h>

#include "fuzz.h"

static struct mg_rules *rules;
static struct mg_detect *det;

static char *run(const char *msg, size_t len, size_t chunk, const char *lang, size_t *out_len)
{
    struct mg_sanitize_opts o;
    struct mg_sanitize *s;
    char *out = NULL;
    enum mg_verdict v;
    int fd;

    mg_sanitize_opts_default(&o);
    o.rules = rules;
    o.detect = det;
    o.lang = lang;
    o.spool_memory = 4096;
    s = mg_sanitize_new(&o);
    for (size_t off = 0; off < len; off += chunk)
        mg_sanitize_feed(s, msg + off, MIN(chunk, len - off));
    v = mg_sanitize_finish(s, NULL);
    FUZZ_CHECK(v == MG_VERDICT_ACCEPT);
    fd = open(g_get_tmp_dir(), O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
    FUZZ_CHECK(fd >= 0);
    FUZZ_CHECK(mg_sanitize_write(s, fd, NULL));
    off_t end = lseek(fd, 0, SEEK_END);
    FUZZ_CHECK(end >= 0);
    out = g_malloc((size_t)end + 1);
    FUZZ_CHECK(pread(fd, out, (size_t)end, 0) == end);
    out[end] = '\0';
    *out_len = (size_t)end;
    close(fd);
    mg_sanitize_free(s);
    return out;
}

static void warn_cb(gint64 offset, GMimeParserWarning code, const gchar *item, gpointer user)
{
    (void)offset;
    (void)code;
    (void)item;
    (*(unsigned *)user)++;
}

static void check_gmime(const char *out, size_t len)
{
    GMimeStream *st = g_mime_stream_mem_new_with_buffer(out, len);
    GMimeParser *p = g_mime_parser_new_with_stream(st);
    GMimeParserOptions *po = g_mime_parser_options_new();
    unsigned warnings = 0;
    GMimeMessage *m;
    GMimePartIter *it;

    g_mime_parser_options_set_warning_callback(po, warn_cb, &warnings);
    m = g_mime_parser_construct_message(p, po);
    FUZZ_CHECK(m != NULL);
    FUZZ_CHECK(warnings == 0);
    it = g_mime_part_iter_new(GMIME_OBJECT(m));
    do {
        GMimeObject *o = g_mime_part_iter_get_current(it);
        if (o != NULL && GMIME_IS_PART(o)) {
            /* text, or what a CDR handler makes */
            GMimeContentType *ct = g_mime_object_get_content_type(o);
            FUZZ_CHECK(g_mime_content_type_is_type(ct, "text", "*") ||
                       g_mime_content_type_is_type(ct, "application", "pdf") ||
                       g_mime_content_type_is_type(ct, "image", "png") ||
                       g_mime_content_type_is_type(ct, "image", "jpeg") ||
                       g_mime_content_type_is_type(ct, "image", "gif") ||
                       g_mime_content_type_is_type(ct, "image", "webp") ||
                       (g_mime_content_type_is_type(ct, "application", "*") &&
                        g_str_has_prefix(g_mime_content_type_get_media_subtype(ct),
                                         "vnd.openxmlformats-officedocument.")));
        }
    } while (g_mime_part_iter_next(it));
    g_mime_part_iter_free(it);
    g_object_unref(m);
    g_mime_parser_options_free(po);
    g_object_unref(p);
    g_object_unref(st);
}

/* The message without its X-Mugaika-Result field. */
static char *strip_result(const char *m)
{
    GString *o = g_string_new(NULL);
    bool skipping = false, header = true;

    for (const char *p = m; *p != '\0';) {
        const char *nl = strchr(p, '\n');
        const char *next = nl != NULL ? nl + 1 : p + strlen(p);
        if (header && *p == '\n')
            header = false;
        if (header && !(skipping && (*p == ' ' || *p == '\t')))
            skipping = g_ascii_strncasecmp(p, "X-Mugaika-Result:", 17) == 0;
        if (!header || !skipping)
            g_string_append_len(o, p, next - p);
        p = next;
    }
    return g_string_free(o, FALSE);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static bool ready;
    size_t chunk, n1, n2;
    const char *lang;
    char *out, *again, *a, *b;

    if (!ready) {
        const char *why = NULL;
        g_mime_init();
        rules = mg_rules_load(NULL, NULL);
        det = mg_detect_new(&why);
        FUZZ_CHECK(rules != NULL && det != NULL);
        ready = true;
    }
    if (size < 1)
        return 0;
    chunk = (size_t)(data[0] & 0x3f) + 1;
    lang = data[0] & 0x40 ? "en" : "ja";
    out = run((const char *)data + 1, size - 1, chunk, lang, &n1);
    check_gmime(out, n1);
    again = run(out, n1, 4096, lang, &n2);
    a = strip_result(out);
    b = strip_result(again);
    FUZZ_CHECK(strcmp(a, b) == 0);
    g_free(a);
    g_free(b);
    g_free(out);
    g_free(again);
    return 0;
}
