/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * NAME
 *	build 3
 * SUMMARY
 *	the rebuilt message: safe header fields, notice, text, attachments
 * SYNOPSIS
 *	bool sz_build(struct mg_sanitize *s);
 * DESCRIPTION
 *	Writes a new message, from scratch, into a temporary file
 *	(s->out_fd): GMime formats and encodes it (header encoding and
 *	folding, RFC 2231 file names, base64); only what the actions
 *	produced is in it.
 *
 *	Header fields: those of the safe list, in their original order,
 *	decoded and re-encoded (address lists re-parsed from their decoded
 *	form, so every display name is a clean UTF-8 encoded word), plus
 *	X-Mugaika-Result.
 *
 *	Body: text/plain; charset=utf-8. A notice first when anything was
 *	converted, removed or held (Japanese by default), then the text of
 *	every body part in document order: plain text converted to UTF-8,
 *	HTML converted to text, each embedded message under a small header
 *	block. Text is cleaned line by line: line ends to LF, control
 *	characters other than tab removed, uuencoded blocks removed (they
 *	were handled as attachments of their own).
 *
 *	Attachments: kept items with their decoded bytes, HTML converted to
 *	a .txt file, all with safe file names and base64.
 *
 *	The multipart boundary is derived from the content, so sanitising
 *	a sanitised message again gives the same bytes apart from
 *	X-Mugaika-Result: all its parts are kept as they are, no notice is
 *	added, and the header fields are a fixed point of decode+encode.
 */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include <archive.h>
#include <archive_entry.h>
#include <gmime/gmime.h>

#include <mugaika/charset.h>
#include <mugaika/hdr.h>
#include <mugaika/html.h>

#include "mime/mime_int.h"
#include "sanitize/sanitize_int.h"

#define LINE_CAP   (64 * 1024) /* a longer line is broken here */
#define CHUNK      (64 * 1024)
#define NOTICE_MAX 200 /* lines about single items; then a count */

/* --- text sink: cleaned UTF-8 lines appended to the spool -------------- */

struct sink {
    struct mg_sanitize *s;
    GString *line;
    GString *out;
    struct sz_extent region;
    bool started;
    bool prev_cr;
    bool in_uu;
    bool nonascii;
    bool text_seen; /* a non-empty line was written */
    size_t max_line;
    struct mg_sha256 *sha;
};

static void sink_init(struct sink *k, struct mg_sanitize *s)
{
    memset(k, 0, sizeof *k);
    k->s = s;
    k->line = g_string_new(NULL);
    k->out = g_string_new(NULL);
    k->sha = mg_sha256_new();
}

static bool sink_flush(struct sink *k)
{
    struct sz_extent e;

    if (k->out->len == 0)
        return true;
    if (!sz_spool_write(k->s, k->out->str, k->out->len, &e))
        return false;
    if (!k->started) {
        k->region = e;
        k->started = true;
    } else {
        k->region.len += e.len;
    }
    mg_sha256_update(k->sha, k->out->str, (gssize)k->out->len);
    g_string_truncate(k->out, 0);
    return true;
}

/* One complete line (no terminator), valid UTF-8: control characters
 * removed, trailing blanks trimmed. uuencoded blocks are removed whether
 * or not the parser made an item of them (a block the parser reported is
 * an item of its own; removing a control character can turn a line into
 * a "begin" line that some client would decode): from the begin line to
 * the end line or to the first line that is not uuencoded data. */
static void sink_line(struct sink *k, const char *p, size_t len)
{
    const char *end = p + len, *seg, *name;
    size_t start = k->out->len, seg_len, name_len;
    bool non = false;

    while (p < end) {
        unsigned char c = (unsigned char)*p;
        if (c < 0x80) {
            if ((c >= 0x20 && c != 0x7f) || c == '\t')
                g_string_append_c(k->out, (char)c);
            p++;
            continue;
        }
        const char *next = g_utf8_find_next_char(p, end);
        if (next == NULL)
            next = end;
        gunichar u = g_utf8_get_char_validated(p, (gssize)(next - p));
        if (u != (gunichar)-1 && u != (gunichar)-2 && !(u >= 0x80 && u < 0xa0)) {
            g_string_append_len(k->out, p, next - p);
            non = true;
        }
        p = next;
    }
    /* trailing blanks carry nothing and would make the text unstable */
    while (k->out->len > start &&
           (k->out->str[k->out->len - 1] == ' ' || k->out->str[k->out->len - 1] == '\t'))
        g_string_truncate(k->out, k->out->len - 1);
    seg = k->out->str + start;
    seg_len = k->out->len - start;
    if (k->in_uu) {
        char buf[MG_DEC_SLACK];
        int bad = 0;
        if (mg_uu_is_end(seg, seg_len)) {
            k->in_uu = false;
            g_string_truncate(k->out, start);
            return;
        }
        if (seg_len > 0 && seg_len < MG_UU_LINE_MAX) {
            (void)mg_uu_decode_line(seg, seg_len, buf, &bad);
            if (!bad) {
                g_string_truncate(k->out, start);
                return;
            }
        }
        k->in_uu = false; /* not uuencoded data: ordinary text again */
    }
    if (mg_uu_is_begin(seg, seg_len, &name, &name_len)) {
        k->in_uu = true;
        g_string_truncate(k->out, start);
        return;
    }
    /* blank lines before the first text carry nothing (and a text of
     * blank lines only would not even look like text to libmagic) */
    if (seg_len == 0 && !k->text_seen)
        return;
    k->text_seen = true;
    k->nonascii = k->nonascii || non;
    if (seg_len > k->max_line)
        k->max_line = seg_len;
    g_string_append_c(k->out, '\n');
}

static bool sink_text(struct sink *k, const char *p, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        char c = p[i];
        if (c == '\n' && k->prev_cr) {
            k->prev_cr = false;
            continue;
        }
        k->prev_cr = c == '\r';
        if (c == '\r' || c == '\n') {
            sink_line(k, k->line->str, k->line->len);
            g_string_truncate(k->line, 0);
        } else {
            g_string_append_c(k->line, c);
            if (k->line->len >= LINE_CAP) {
                /* cut at a character boundary */
                const char *cut = g_utf8_find_prev_char(k->line->str, k->line->str + k->line->len);
                size_t at =
                    cut != NULL && cut > k->line->str ? (size_t)(cut - k->line->str) : k->line->len;
                sink_line(k, k->line->str, at);
                g_string_erase(k->line, 0, (gssize)at);
            }
        }
        if (k->out->len >= CHUNK && !sink_flush(k))
            return false;
    }
    return true;
}

/* End of one source text: its last line, uu state reset. */
static bool sink_end_item(struct sink *k)
{
    if (k->line->len > 0) {
        sink_line(k, k->line->str, k->line->len);
        g_string_truncate(k->line, 0);
    }
    k->prev_cr = false;
    k->in_uu = false;
    return sink_flush(k);
}

static void sink_fini(struct sink *k)
{
    g_string_free(k->line, TRUE);
    g_string_free(k->out, TRUE);
    mg_sha256_free(k->sha);
}

/* --- item texts ------------------------------------------------------------ */

/* The first len bytes of an item's content (fewer when it is shorter),
 * whatever its extents; -1 on error. */
static gssize read_head(struct mg_sanitize *s, struct sz_item *it, void *buf, size_t len)
{
    size_t got = 0;

    while (got < len && got < it->c.size) {
        gssize n = sz_content_read(s, &it->c, got, (char *)buf + got, len - got);
        if (n <= 0)
            return -1;
        got += (size_t)n;
    }
    return (gssize)got;
}

static bool emit_plain(struct mg_sanitize *s, struct sz_item *it, struct sink *k)
{
    struct mg_charset_conv *conv = mg_charset_conv_new(it->charset);
    char *buf = g_malloc(CHUNK);
    GString *u = g_string_new(NULL);
    uint64_t off = 0;
    bool ok = true;

    while (ok && off < it->c.size) {
        gssize n = sz_content_read(s, &it->c, off, buf, CHUNK);
        if (n <= 0) {
            ok = false;
            break;
        }
        off += (uint64_t)n;
        mg_charset_conv_feed(conv, buf, (size_t)n, u);
        ok = sink_text(k, u->str, u->len);
        g_string_truncate(u, 0);
    }
    if (ok) {
        mg_charset_conv_finish(conv, u);
        ok = sink_text(k, u->str, u->len) && sink_end_item(k);
    }
    mg_charset_conv_free(conv);
    g_string_free(u, TRUE);
    g_free(buf);
    return ok;
}

static bool emit_html(struct mg_sanitize *s, struct sz_item *it, struct sink *k, unsigned *flags)
{
    const char *label = it->charset != NULL ? mg_charset_canon(it->charset) : NULL;
    struct mg_charset_conv *conv;
    struct mg_html_opts ho;
    struct mg_html *h;
    char *buf = g_malloc(CHUNK);
    GString *u = g_string_new(NULL);
    uint64_t off = 0;
    bool ok = true;

    if (label == NULL) {
        gssize n = read_head(s, it, buf, 4096);
        if (n < 0)
            ok = false;
        else
            label = mg_html_meta_charset(buf, (size_t)n);
    }
    conv = mg_charset_conv_new(label);
    mg_html_opts_default(&ho);
    ho.lang = s->lang;
    ho.defang_urls = g_strcmp0(mg_rule_option(it->rule, "urls"), "plain") != 0;
    ho.budget_us = s->o.html_budget_us;
    h = mg_html_new(&ho);
    while (ok && off < it->c.size) {
        gssize n = sz_content_read(s, &it->c, off, buf, CHUNK);
        if (n <= 0) {
            ok = false;
            break;
        }
        off += (uint64_t)n;
        mg_charset_conv_feed(conv, buf, (size_t)n, u);
        mg_html_feed(h, u->str, u->len);
        g_string_truncate(u, 0);
    }
    if (ok) {
        mg_charset_conv_finish(conv, u);
        mg_html_feed(h, u->str, u->len);
        g_string_truncate(u, 0);
        *flags |= mg_html_finish(h, u);
        ok = sink_text(k, u->str, u->len) && sink_end_item(k);
    }
    mg_html_free(h);
    mg_charset_conv_free(conv);
    g_string_free(u, TRUE);
    g_free(buf);
    return ok;
}

/* --- notice ---------------------------------------------------------------- */

/* The notice's sentences, one table per language for a mail; for a
 * file dropped into a transfer folder (opts.file), whose notice speaks
 * of "this file" and of files where a mail's speaks of "this mail", its
 * message text and its attachments, only the sentences that differ
 * (the others are the mail's: file_words). */
struct words {
    const char *title, *intro, *rule_line, *quarantine, *held, *body, *noname, *attachment;
    const char *html_body, *html_active, *text_file, *infected, *opaque, *no_handler, *dropped,
        *dropped_body, *unscanned, *output_infected, *html_cut, *forwarded, *from, *subject, *date,
        *more, *disarmed, *flattened, *text_doc, *unpacked, *cdr_failed, *too_deep, *macros,
        *held_part, *repacked;
};

static const struct words ja = {
    .title = "【無害化処理のお知らせ】",
    .intro = "このメールはインターネットから届いたため、安全のために次の処理を行いました。",
    .rule_line = "――――――――――――――――――――――――――――――",
    .quarantine = "原本は隔離して保管しています（隔離ID: {1}）。必要な場合は、この隔離IDを添えて"
                  "管理者にお問い合わせください。",
    .held = "・このメールは保留されました。本文と添付ファイルはお届けしていません。",
    .output_infected = "・変換した本文からウイルスが検出されたため、このメールを保留しました。",
    .html_cut = "・HTMLの本文が大きすぎるか複雑すぎるため、途中までをテキストに変換しました。全文は"
                "原本で確認できます。",
    .body = "本文",
    .noname = "名前なし",
    .attachment = "添付ファイル",
    .html_body = "・HTML形式の本文をテキストに変換しました。",
    .html_active = "・本文に含まれていたスクリプトやフォームなどの動的な内容は削除しました。",
    .text_file = "・添付ファイル「{1}」（HTML）をテキストファイル「{2}」に変換しました。",
    .infected = "・{1}「{2}」からウイルス（{3}）が検出されたため、削除しました。",
    .opaque = "・解析できない部分（{1}）を削除しました。",
    .no_handler = "・添付ファイル「{1}」（{2}、{3}）は安全な形式に変換できないため、削除しました。",
    .dropped = "・添付ファイル「{1}」（{2}、{3}）を削除しました。",
    .dropped_body = "・本文の一部（{1}）を削除しました。",
    .unscanned =
        "・添付ファイル「{1}」（{2}、{3}）はウイルス検査を最後まで行えなかったため、削除しました。",
    .forwarded = "---------- 添付されていたメッセージ ----------",
    .from = "差出人",
    .subject = "件名",
    .date = "日時",
    .more = "・ほか {1} 件を削除しました。",
    .disarmed = "・添付ファイル「{1}」を安全な形に作り直し、「{2}」としてお届けします。",
    .flattened = "・添付ファイル「{1}」を画像だけのファイル「{2}」に変換しました（文字の検索や"
                 "コピーはできません）。",
    .text_doc = "・添付ファイル「{1}」を、文字だけのテキストファイル「{2}」に変換しました。",
    .unpacked = "・圧縮ファイル「{1}」を展開し、中のファイル {2} 件を一つずつ確認しました。",
    .cdr_failed = "・添付ファイル「{1}」（{2}、{3}）は安全な形に作り直せなかったため、削除"
                  "しました。",
    .too_deep = "・圧縮ファイル「{1}」は何重にも圧縮されているため、展開せずに削除しました。",
    .macros = "・添付ファイル「{1}」（{2}、{3}）にはマクロが含まれているため、削除しました。",
    .held_part = "・添付ファイル「{1}」（{2}、{3}）はお届けせず、隔離して保管しています。",
    .repacked = "・圧縮ファイル「{1}」を展開して中のファイル {2} 件を一つずつ確認し、お届けできる"
                "ものを圧縮ファイル「{3}」にまとめ直しました。",
};

static const struct words en = {
    .title = "[Sanitisation notice]",
    .intro = "This mail came from the internet. For safety, the following was done:",
    .rule_line = "------------------------------------------------------------",
    .quarantine = "The original is kept in quarantine (quarantine ID: {1}). If you need it, ask "
                  "your administrator and quote this ID.",
    .held = "- This mail has been held: its text and attachments are not delivered.",
    .output_infected = "- A virus was found in the converted text, so this mail was held.",
    .html_cut =
        "- The HTML text was too large or too complex: only its beginning was converted. The "
        "original has all of it.",
    .body = "message text",
    .noname = "no name",
    .attachment = "attachment",
    .html_body = "- The HTML message text was converted to plain text.",
    .html_active = "- Active content in the message text (scripts, forms and the like) was "
                   "removed.",
    .text_file = "- The attachment \"{1}\" (HTML) was converted to the text file \"{2}\".",
    .infected = "- A virus ({3}) was found in the {1} \"{2}\"; it was removed.",
    .opaque = "- A part that could not be analysed ({1}) was removed.",
    .no_handler = "- The attachment \"{1}\" ({2}, {3}) cannot be made safe yet; it was removed.",
    .dropped = "- The attachment \"{1}\" ({2}, {3}) was removed.",
    .dropped_body = "- A part of the message text ({1}) was removed.",
    .unscanned = "- The attachment \"{1}\" ({2}, {3}) could not be fully checked for viruses; it "
                 "was removed.",
    .forwarded = "---------- Attached message ----------",
    .from = "From",
    .subject = "Subject",
    .date = "Date",
    .more = "- {1} more items were removed.",
    .disarmed = "- The attachment \"{1}\" was rebuilt in a safe form and is delivered as "
                "\"{2}\".",
    .flattened = "- The attachment \"{1}\" was converted to \"{2}\", which holds only images "
                 "(its text cannot be searched or copied).",
    .text_doc = "- The attachment \"{1}\" was converted to the text file \"{2}\".",
    .unpacked = "- The archive \"{1}\" was unpacked and its {2} files were checked one by one.",
    .cdr_failed = "- The attachment \"{1}\" ({2}, {3}) could not be rebuilt in a safe form; it "
                  "was removed.",
    .too_deep = "- The archive \"{1}\" is nested too deeply; it was removed without unpacking.",
    .macros = "- The attachment \"{1}\" ({2}, {3}) contains macros; it was removed.",
    .held_part = "- The attachment \"{1}\" ({2}, {3}) is held in quarantine, not delivered.",
    .repacked = "- The archive \"{1}\" was unpacked, its {2} files were checked one by one, and "
                "those delivered were packed again into \"{3}\".",
};

static const struct words ja_file = {
    .intro = "このファイルはインターネット接続系から受け渡されたため、"
             "安全のために次の処理を行いました。",
    .held = "・このファイルは保留されました。お届けしていません。",
    .output_infected = "・変換した結果からウイルスが検出されたため、このファイルを保留しました。",
    .attachment = "ファイル",
    .text_file = "・ファイル「{1}」（HTML）をテキストファイル「{2}」に変換しました。",
    .no_handler = "・ファイル「{1}」（{2}、{3}）は安全な形式に変換できないため、削除しました。",
    .dropped = "・ファイル「{1}」（{2}、{3}）を削除しました。",
    .unscanned =
        "・ファイル「{1}」（{2}、{3}）はウイルス検査を最後まで行えなかったため、削除しました。",
    .disarmed = "・ファイル「{1}」を安全な形に作り直し、「{2}」としてお届けします。",
    .flattened = "・ファイル「{1}」を画像だけのファイル「{2}」に変換しました（文字の検索や"
                 "コピーはできません）。",
    .text_doc = "・ファイル「{1}」を、文字だけのテキストファイル「{2}」に変換しました。",
    .cdr_failed = "・ファイル「{1}」（{2}、{3}）は安全な形に作り直せなかったため、削除しました。",
    .macros = "・ファイル「{1}」（{2}、{3}）にはマクロが含まれているため、削除しました。",
    .held_part = "・ファイル「{1}」（{2}、{3}）はお届けせず、隔離して保管しています。",
};

static const struct words en_file = {
    .intro = "This file came from the internet-connected side. For safety, the following was "
             "done:",
    .held = "- This file has been held: it is not delivered.",
    .output_infected = "- A virus was found in the converted output, so this file was held.",
    .body = "text",
    .attachment = "file",
    .html_body = "- The HTML text was converted to plain text.",
    .html_active = "- Active content in the text (scripts, forms and the like) was removed.",
    .text_file = "- The file \"{1}\" (HTML) was converted to the text file \"{2}\".",
    .no_handler = "- The file \"{1}\" ({2}, {3}) cannot be made safe yet; it was removed.",
    .dropped = "- The file \"{1}\" ({2}, {3}) was removed.",
    .dropped_body = "- A part of the text ({1}) was removed.",
    .unscanned = "- The file \"{1}\" ({2}, {3}) could not be fully checked for viruses; it was "
                 "removed.",
    .disarmed = "- The file \"{1}\" was rebuilt in a safe form and is delivered as \"{2}\".",
    .flattened = "- The file \"{1}\" was converted to \"{2}\", which holds only images "
                 "(its text cannot be searched or copied).",
    .text_doc = "- The file \"{1}\" was converted to the text file \"{2}\".",
    .cdr_failed = "- The file \"{1}\" ({2}, {3}) could not be rebuilt in a safe form; it was "
                  "removed.",
    .macros = "- The file \"{1}\" ({2}, {3}) contains macros; it was removed.",
    .held_part = "- The file \"{1}\" ({2}, {3}) is held in quarantine, not delivered.",
};

/* Appends tmpl with {1}, {2}, {3} replaced by a, b, c. */
static void fill(GString *out, const char *tmpl, const char *a, const char *b, const char *c)
{
    for (const char *p = tmpl; *p != '\0'; p++) {
        if (p[0] == '{' && p[1] >= '1' && p[1] <= '3' && p[2] == '}') {
            const char *v = p[1] == '1' ? a : p[1] == '2' ? b : c;
            g_string_append(out, v != NULL ? v : "");
            p += 2;
        } else {
            g_string_append_c(out, *p);
        }
    }
}

/* mail's sentences with those of diff put over them, made once. */
static const struct words *file_words(const struct words *mail, const struct words *diff,
                                      struct words *merged, gsize *once)
{
    G_STATIC_ASSERT(sizeof(struct words) % sizeof(const char *) == 0);
    if (g_once_init_enter(once)) {
        const char *const *d = (const char *const *)diff;
        const char **m = (const char **)merged;
        *merged = *mail;
        for (size_t i = 0; i < sizeof(struct words) / sizeof(const char *); i++)
            if (d[i] != NULL)
                m[i] = d[i];
        g_once_init_leave(once, 1);
    }
    return merged;
}

static const struct words *W(const struct mg_sanitize *s)
{
    static struct words ja_merged, en_merged;
    static gsize ja_once, en_once;
    bool en_lang = strcmp(s->lang, "en") == 0;

    if (s->o.file)
        return en_lang ? file_words(&en, &en_file, &en_merged, &en_once)
                       : file_words(&ja, &ja_file, &ja_merged, &ja_once);
    return en_lang ? &en : &ja;
}

/* Sizes in the notice: the same text whatever the process locale. */
static char *format_size(uint64_t n)
{
    if (n < 1024)
        return g_strdup_printf("%" G_GUINT64_FORMAT " B", n);
    if (n < 1024 * 1024)
        return g_strdup_printf("%" G_GUINT64_FORMAT ".%" G_GUINT64_FORMAT " KiB", n / 1024,
                               n % 1024 * 10 / 1024);
    return g_strdup_printf("%" G_GUINT64_FORMAT ".%" G_GUINT64_FORMAT " MiB", n >> 20,
                           (n & 0xfffff) * 10 >> 20);
}

static char *display_name(const struct mg_sanitize *s, const struct sz_item *it)
{
    char *own, *outer, *both;

    if (it->filename != NULL)
        own = sz_display_name(it->filename);
    else
        own = g_strdup(it->role == MG_ROLE_BODY ? W(s)->body : W(s)->noname);
    if (it->arc_depth == 0 || it->parent < 0)
        return own;
    /* a member: "archive.zip/dir/file.pdf" */
    outer = display_name(s, g_ptr_array_index(s->items, (guint)it->parent));
    both = g_strdup_printf("%s/%s", outer, own);
    g_free(outer);
    g_free(own);
    return both;
}

/* The notice lines, or an empty string when everything was kept as it is. */
static char *notice(struct mg_sanitize *s)
{
    const struct words *w = W(s);
    GString *n = g_string_new(NULL);
    bool html_body = false, any = s->held;
    const char *html_note = NULL;
    unsigned lines = 0, more = 0;

    for (guint i = 0; i < s->items->len; i++) {
        struct sz_item *it = g_ptr_array_index(s->items, i);
        char *name, *size;
        const char *extra;

        if (it->kind != MG_MIME_LEAF || it->forced == SZ_FORCED_ALTERNATIVE)
            continue;
        if (it->action == MG_ACTION_KEEP && it->forced == SZ_FORCED_NONE)
            continue;
        if (it->cdr_ready && strcmp(it->cdr_sha_hex, it->sha_hex) == 0)
            continue; /* the handler changed nothing (already safe): as kept */
        any = true;
        if (s->held && it->forced == SZ_FORCED_NONE &&
            (it->action == MG_ACTION_TEXT || it->cdr_ready || it->action == MG_ACTION_UNPACK))
            continue; /* nothing of it is delivered: the held line says so */
        if (it->action == MG_ACTION_TEXT && it->role == MG_ROLE_BODY &&
            it->forced == SZ_FORCED_NONE) {
            if (strcmp(it->declared, "text/html") == 0 && !html_body && !s->held) {
                html_body = true;
                html_note = mg_rule_notice(it->rule, s->lang);
            }
            continue;
        }
        if (lines >= NOTICE_MAX) {
            more++;
            continue;
        }
        lines++;
        name = display_name(s, it);
        size = format_size(it->c.size);
        extra = mg_rule_notice(it->rule, s->lang);
        switch (it->forced) {
        case SZ_FORCED_CDR_FAILED:
            fill(n, w->cdr_failed, name, it->detected, size);
            extra = NULL; /* the rule's text says what the handler would have done */
            break;
        case SZ_FORCED_TOO_DEEP:
            fill(n, w->too_deep, name, NULL, NULL);
            extra = NULL;
            break;
        case SZ_FORCED_MACROS:
            fill(n, w->macros, name, it->detected, size);
            extra = NULL;
            break;
        case SZ_FORCED_INFECTED:
            fill(n, w->infected, it->role == MG_ROLE_BODY ? w->body : w->attachment, name,
                 it->virus != NULL ? it->virus : "?");
            extra = NULL;
            break;
        case SZ_FORCED_OPAQUE:
            fill(n, w->opaque, it->declared, NULL, NULL);
            extra = NULL;
            break;
        case SZ_FORCED_UNSCANNED:
            fill(n, w->unscanned, name, it->detected, size);
            extra = NULL;
            break;
        case SZ_FORCED_NO_HANDLER:
        case SZ_FORCED_NOT_TEXT:
            fill(n, w->no_handler, name, it->detected, size);
            break;
        default:
            if (it->cdr_ready && it->action == MG_ACTION_FLATTEN) {
                fill(n, w->flattened, name, it->out_name != NULL ? it->out_name : "?", NULL);
            } else if (it->cdr_ready && it->action == MG_ACTION_TEXT) {
                fill(n, w->text_doc, name, it->out_name != NULL ? it->out_name : "?", NULL);
            } else if (it->cdr_ready) {
                fill(n, w->disarmed, name, it->out_name != NULL ? it->out_name : "?", NULL);
            } else if (it->action == MG_ACTION_UNPACK) {
                char num[16];
                g_snprintf(num, sizeof num, "%u", it->members);
                if (it->emitted && it->out_name != NULL) /* repack = zip */
                    fill(n, w->repacked, name, num, it->out_name);
                else
                    fill(n, w->unpacked, name, num, NULL);
            } else if (it->action == MG_ACTION_TEXT)
                fill(n, w->text_file, name, it->out_name != NULL ? it->out_name : "?", NULL);
            else if (it->action == MG_ACTION_HOLD)
                fill(n, w->held_part, name, it->detected, size);
            else if (it->role == MG_ROLE_BODY && it->action == MG_ACTION_DROP)
                fill(n, w->dropped_body, it->detected, NULL, NULL);
            else
                fill(n, w->dropped, name, it->detected, size);
            break;
        }
        if (extra != NULL && *extra != '\0')
            g_string_append_printf(n, "%s%s", strcmp(s->lang, "en") == 0 ? " " : "", extra);
        g_string_append_c(n, '\n');
        g_free(name);
        g_free(size);
    }
    if (!any) {
        g_string_free(n, TRUE);
        return g_strdup("");
    }
    if (more > 0) {
        char num[16];
        g_snprintf(num, sizeof num, "%u", more);
        fill(n, w->more, num, NULL, NULL);
        g_string_append_c(n, '\n');
    }
    if (html_body) {
        g_string_prepend_c(n, '\n');
        if (s->html_flags & (MG_HTML_TIMEOUT | MG_HTML_TRUNCATED)) {
            g_string_prepend(n, w->html_cut);
            g_string_prepend_c(n, '\n');
        }
        if (s->html_flags & MG_HTML_ACTIVE) {
            g_string_prepend(n, w->html_active);
            g_string_prepend_c(n, '\n');
        }
        if (html_note != NULL) {
            g_string_prepend(n, html_note);
            g_string_prepend(n, strcmp(s->lang, "en") == 0 ? "- " : "・");
        } else {
            g_string_prepend(n, w->html_body);
        }
    }
    if (s->held) {
        g_string_prepend_c(n, '\n');
        g_string_prepend(n, w->held);
    }
    if (s->output_infected) {
        g_string_prepend_c(n, '\n');
        g_string_prepend(n, w->output_infected);
    }
    g_string_prepend_c(n, '\n');
    g_string_prepend(n, w->intro);
    g_string_prepend_c(n, '\n');
    g_string_prepend(n, w->title);
    if (s->qid[0] != '\0') {
        fill(n, w->quarantine, s->qid, NULL, NULL);
        g_string_append_c(n, '\n');
    }
    g_string_append_printf(n, "%s\n\n", w->rule_line);
    return g_string_free(n, FALSE);
}

/* --- header fields ---------------------------------------------------------- */

enum hkind { H_ADDR, H_TEXT, H_TOKEN };

/* The fields that cross. All but Received appear once: the first one
 * wins, as for Content-Type (docs/parser.md), so a reader never sees
 * two different Subjects or senders. */
static const struct {
    const char *name;
    enum hkind kind;
    bool repeats;
} safe_fields[] = {
    {"Return-Path", H_TOKEN, false},
    {"Received", H_TEXT, true},
    {"Date", H_TOKEN, false},
    {"From", H_ADDR, false},
    {"Sender", H_ADDR, false},
    {"Reply-To", H_ADDR, false},
    {"To", H_ADDR, false},
    {"Cc", H_ADDR, false},
    {"Subject", H_TEXT, false},
    {"Message-ID", H_TOKEN, false},
    {"In-Reply-To", H_TOKEN, false},
    {"References", H_TOKEN, false},
    {"Auto-Submitted", H_TOKEN, false},
    {"List-Id", H_TEXT, false},
    {"Precedence", H_TOKEN, false},
};

/* Printable ASCII only, runs of blanks as one space. */
static char *token_value(const char *raw)
{
    GString *o = g_string_new(NULL);

    for (const char *p = raw; *p != '\0'; p++) {
        unsigned char c = (unsigned char)*p;
        if (c == ' ' || c == '\t') {
            if (o->len > 0 && o->str[o->len - 1] != ' ')
                g_string_append_c(o, ' ');
        } else if (c > 0x20 && c < 0x7f) {
            g_string_append_c(o, (char)c);
        }
    }
    while (o->len > 0 && o->str[o->len - 1] == ' ')
        g_string_truncate(o, o->len - 1);
    return g_string_free(o, FALSE);
}

/* Text without controls, blanks collapsed. */
static char *text_clean(const char *decoded)
{
    GString *o = g_string_new(NULL);
    const char *p = decoded, *end = decoded + strlen(decoded);

    while (p < end) {
        const char *next = g_utf8_find_next_char(p, end);
        gunichar u;
        if (next == NULL)
            next = end;
        u = g_utf8_get_char_validated(p, (gssize)(next - p));
        if (u == ' ' || u == '\t' || u == '\r' || u == '\n') {
            if (o->len > 0 && o->str[o->len - 1] != ' ')
                g_string_append_c(o, ' ');
        } else if (u != (gunichar)-1 && u != (gunichar)-2 && u >= 0x20 && u != 0x7f &&
                   !(u >= 0x80 && u < 0xa0)) {
            g_string_append_len(o, p, next - p);
        }
        p = next;
    }
    while (o->len > 0 && o->str[o->len - 1] == ' ')
        g_string_truncate(o, o->len - 1);
    return g_string_free(o, FALSE);
}

/* Decoded text without controls, blanks collapsed, and a fixed point
 * of decoding: an encoded word the parser left literal (malformed, in a
 * place RFC 2047 does not allow it, or formed only once a control
 * character was removed) is decoded as mail clients and mugaika itself
 * would decode it, so the output never carries a word that reads
 * differently once decoded. */
static char *text_value(const char *decoded)
{
    char *v = text_clean(decoded);

    for (int i = 0; i < 4 && strstr(v, "=?") != NULL; i++) {
        unsigned defects = 0;
        char *g = g_mime_utils_header_decode_text(NULL, v);
        char *m = mg_hdr_decode_text(g, strlen(g), &defects);
        char *w = text_clean(m);
        bool same = strcmp(v, w) == 0;
        g_free(g);
        g_free(m);
        g_free(v);
        v = w;
        if (same)
            break;
    }
    /* What is still "=?" is not an encoded word: written as it is, it
     * would look like a broken one to every reader (GMime warns, and
     * readers disagree on it). A blank keeps it from being one. */
    while (strstr(v, "=?") != NULL) {
        GString *o = g_string_new(NULL);
        for (const char *p = v; *p != '\0'; p++) {
            g_string_append_c(o, *p);
            if (p[0] == '=' && p[1] == '?')
                g_string_append_c(o, ' ');
        }
        g_free(v);
        v = g_string_free(o, FALSE);
    }
    return v;
}

/* Sets a token field (printable ASCII, single spaces) as raw text,
 * folded at spaces: GMime would encode a long word as text. */
static void append_token(GMimeObject *msg, const char *name, const char *v)
{
    GMimeHeaderList *l = g_mime_object_get_header_list(msg);
    GString *raw = g_string_new(NULL);
    size_t col = strlen(name) + 1;
    char **words = g_strsplit(v, " ", -1);

    for (char **w = words; *w != NULL; w++) {
        size_t n = strlen(*w);
        if (n == 0 || n > 900)
            continue; /* no line may pass 998 characters */
        if (raw->len > 0 && col + 1 + n > 78) {
            g_string_append(raw, "\n");
            col = 0;
        }
        g_string_append_c(raw, ' ');
        g_string_append(raw, *w);
        col += 1 + n;
    }
    g_string_append_c(raw, '\n');
    g_mime_object_append_header(msg, name, "x", NULL);
    g_mime_header_set_raw_value(
        g_mime_header_list_get_header_at(l, g_mime_header_list_get_count(l) - 1), raw->str);
    g_strfreev(words);
    g_string_free(raw, TRUE);
}

static void add_mailbox(InternetAddressList *out, InternetAddress *a)
{
    const char *spec;

    if (!INTERNET_ADDRESS_IS_MAILBOX(a))
        return;
    spec = internet_address_mailbox_get_addr(INTERNET_ADDRESS_MAILBOX(a));
    if (spec == NULL)
        return;
    /* an address without a letter or digit ("", <>) names nobody */
    for (const char *p = spec; *p != '\0'; p++) {
        if (g_ascii_isalnum(*p) || (unsigned char)*p >= 0x80) {
            internet_address_list_add(out, a);
            return;
        }
    }
}

/* Mailboxes only: group syntax is flattened into its members, empty
 * groups and addresses vanish (they would not survive a second pass). */
static char *addr_once(const char *value)
{
    char *clean = text_value(value);
    InternetAddressList *l = internet_address_list_parse(NULL, clean);
    InternetAddressList *out = internet_address_list_new();
    char *v = NULL;

    for (int i = 0; l != NULL && i < internet_address_list_length(l); i++) {
        InternetAddress *a = internet_address_list_get_address(l, i);
        if (INTERNET_ADDRESS_IS_GROUP(a)) {
            InternetAddressList *m = internet_address_group_get_members(INTERNET_ADDRESS_GROUP(a));
            for (int j = 0; m != NULL && j < internet_address_list_length(m); j++)
                add_mailbox(out, internet_address_list_get_address(m, j));
        } else {
            add_mailbox(out, a);
        }
    }
    if (internet_address_list_length(out) > 0)
        v = internet_address_list_to_string(out, NULL, FALSE);
    if (l != NULL)
        g_object_unref(l);
    g_object_unref(out);
    g_free(clean);
    return v;
}

/* What a second pass would see of v: written (encoded) by GMime, then
 * decoded by the parser's address decoder (which, for one, unquotes a
 * quoted string that is not followed by a domain). */
static char *addr_reread(const char *v)
{
    InternetAddressList *l = internet_address_list_parse(NULL, v);
    char *enc, *dec;
    unsigned defects = 0;

    if (l == NULL)
        return g_strdup(v);
    enc = internet_address_list_to_string(l, NULL, TRUE);
    g_object_unref(l);
    dec = mg_hdr_decode_addresses(enc, strlen(enc), &defects);
    g_free(enc);
    return dec;
}

/* Address list: parsed from its decoded form and formatted again
 * (unencoded UTF-8: GMime encodes display names when writing). Done
 * until what a second pass would read gives the same list again, so
 * the result is a fixed point. */
static char *addr_value(const char *decoded)
{
    char *v = addr_once(decoded);

    for (int i = 0; v != NULL && i < 4; i++) {
        char *r = addr_reread(v);
        char *w = addr_once(r);
        bool same = g_strcmp0(v, w) == 0;
        g_free(r);
        g_free(v);
        v = w;
        if (same)
            break;
    }
    return v;
}

bool sz_header_wanted(const char *name, size_t len, bool top)
{
    static const char *const embedded[] = {"From", "Subject", "Date"};

    if (top) {
        for (size_t f = 0; f < G_N_ELEMENTS(safe_fields); f++)
            if (strlen(safe_fields[f].name) == len &&
                g_ascii_strncasecmp(safe_fields[f].name, name, len) == 0)
                return true;
        return false;
    }
    for (size_t f = 0; f < G_N_ELEMENTS(embedded); f++)
        if (strlen(embedded[f]) == len && g_ascii_strncasecmp(embedded[f], name, len) == 0)
            return true;
    return false;
}

static void copy_headers(struct mg_sanitize *s, GMimeObject *msg)
{
    struct sz_item *top = s->items->len > 0 ? g_ptr_array_index(s->items, 0) : NULL;
    unsigned received = 0;
    bool seen[G_N_ELEMENTS(safe_fields)] = {false};

    if (top == NULL || top->hdrs == NULL)
        return;
    for (guint i = 0; i < top->hdrs->len; i++) {
        struct sz_hdr *h = &g_array_index(top->hdrs, struct sz_hdr, i);
        char *v = NULL;
        for (size_t f = 0; f < G_N_ELEMENTS(safe_fields); f++) {
            if (g_ascii_strcasecmp(h->name, safe_fields[f].name) != 0)
                continue;
            if (strcmp(safe_fields[f].name, "Received") == 0 && ++received > 100)
                break;
            if (seen[f] && !safe_fields[f].repeats)
                break;
            switch (safe_fields[f].kind) {
            case H_ADDR:
                v = addr_value(h->decoded);
                break;
            case H_TEXT:
                v = text_value(h->decoded);
                break;
            case H_TOKEN: {
                char *t = text_value(h->decoded);
                v = token_value(t);
                g_free(t);
                break;
            }
            }
            if (v != NULL && *v != '\0' && strlen(v) <= 16384) {
                if (safe_fields[f].kind == H_TOKEN)
                    append_token(msg, safe_fields[f].name, v);
                else
                    g_mime_object_append_header(msg, safe_fields[f].name, v, "utf-8");
                seen[f] = true;
            }
            break;
        }
        g_free(v);
    }
}

/* --- parts ------------------------------------------------------------------ */

/* A stream over an item's content: memory, or spool extents. */
static GMimeStream *content_stream(struct mg_sanitize *s, const struct sz_content *c)
{
    GMimeStream *cat;

    if (c->extents == NULL)
        return g_mime_stream_mem_new_with_buffer(c->mem != NULL ? (const char *)c->mem->data : "",
                                                 c->mem != NULL ? c->mem->len : 0);
    cat = g_mime_stream_cat_new();
    for (guint i = 0; i < c->extents->len; i++) {
        struct sz_extent *e = &g_array_index(c->extents, struct sz_extent, i);
        GMimeStream *fs = g_mime_stream_fs_new_with_bounds(s->spool_fd, (gint64)e->off,
                                                           (gint64)(e->off + e->len));
        g_mime_stream_fs_set_owner(GMIME_STREAM_FS(fs), FALSE);
        g_mime_stream_cat_add_source(GMIME_STREAM_CAT(cat), fs);
        g_object_unref(fs);
    }
    return cat;
}

static GMimeStream *region_stream(struct mg_sanitize *s, const struct sz_extent *e)
{
    GMimeStream *fs =
        g_mime_stream_fs_new_with_bounds(s->spool_fd, (gint64)e->off, (gint64)(e->off + e->len));

    g_mime_stream_fs_set_owner(GMIME_STREAM_FS(fs), FALSE);
    return fs;
}

static GMimePart *new_part(const char *type, GMimeStream *content, GMimeContentEncoding enc)
{
    char *slash = strchr(type, '/');
    char *major = slash != NULL ? g_strndup(type, (gsize)(slash - type)) : g_strdup("application");
    GMimePart *part = g_mime_part_new_with_type(major, slash != NULL ? slash + 1 : "octet-stream");
    GMimeDataWrapper *dw =
        g_mime_data_wrapper_new_with_stream(content, GMIME_CONTENT_ENCODING_DEFAULT);

    g_mime_part_set_content(part, dw);
    g_mime_part_set_content_encoding(part, enc);
    g_object_unref(dw);
    g_free(major);
    return part;
}

static void add_attachment(GMimeMultipart *mp, GMimePart *part, const char *name,
                           const char *charset)
{
    GMimeContentDisposition *cd = g_mime_content_disposition_new();

    if (charset != NULL)
        g_mime_object_set_content_type_parameter(GMIME_OBJECT(part), "charset", charset);
    g_mime_content_disposition_set_disposition(cd, GMIME_DISPOSITION_ATTACHMENT);
    g_mime_content_disposition_set_parameter(cd, "filename", name);
    g_mime_object_set_content_disposition(GMIME_OBJECT(part), cd);
    g_object_unref(cd);
    g_mime_multipart_add(mp, GMIME_OBJECT(part));
}

static bool is_html_type(const struct sz_item *it)
{
    return strcmp(it->declared, "text/html") == 0 || strcmp(it->detected, "text/html") == 0 ||
           strcmp(it->detected, "application/xhtml+xml") == 0;
}

/* Texts of embedded messages: a small header block before them. */
static bool emit_message_header(struct mg_sanitize *s, guint msg_index, struct sink *k)
{
    const struct words *w = W(s);
    struct sz_item *root = NULL;
    GString *b = g_string_new(NULL);
    bool ok;

    for (guint j = msg_index + 1; j < s->items->len; j++) {
        struct sz_item *c = g_ptr_array_index(s->items, j);
        if (c->parent == (int)msg_index) {
            root = c;
            break;
        }
    }
    g_string_append_printf(b, "\n%s\n", w->forwarded);
    if (root != NULL && root->hdrs != NULL) {
        static const char *const names[] = {"From", "Subject", "Date"};
        const char *labels[] = {w->from, w->subject, w->date};
        for (unsigned f = 0; f < G_N_ELEMENTS(names); f++) {
            for (guint i = 0; i < root->hdrs->len; i++) {
                struct sz_hdr *h = &g_array_index(root->hdrs, struct sz_hdr, i);
                if (g_ascii_strcasecmp(h->name, names[f]) == 0) {
                    char *v = text_value(h->decoded);
                    g_string_append_printf(b, "%s: %s\n", labels[f], v);
                    g_free(v);
                    break;
                }
            }
        }
    }
    g_string_append_c(b, '\n');
    ok = sink_text(k, b->str, b->len) && sink_end_item(k);
    g_string_free(b, TRUE);
    return ok;
}

static bool build_body_text(struct mg_sanitize *s, struct sink *k)
{
    bool first = true;

    for (guint i = 0; i < s->items->len; i++) {
        struct sz_item *it = g_ptr_array_index(s->items, i);
        bool ok = true;

        if (it->kind == MG_MIME_MESSAGE) {
            if (!emit_message_header(s, i, k))
                return false;
            first = true;
            continue;
        }
        if (it->kind != MG_MIME_LEAF || it->role != MG_ROLE_BODY || it->forced != SZ_FORCED_NONE)
            continue;
        if (it->action != MG_ACTION_KEEP && it->action != MG_ACTION_TEXT)
            continue;
        if (!first && !sink_text(k, "\n", 1))
            return false;
        first = false;
        if (it->action == MG_ACTION_TEXT && is_html_type(it))
            ok = emit_html(s, it, k, &s->html_flags);
        else
            ok = emit_plain(s, it, k);
        if (!ok)
            return false;
        it->emitted = true;
    }
    return true;
}

/* Does the content hold a line that starts a uuencoded block? (The
 * parser looks for blocks in text parts only; a part declared as
 * something else but detected as text is kept as text.) */
static bool has_uu_begin(struct mg_sanitize *s, struct sz_item *it, bool *failed)
{
    char *buf = g_malloc(CHUNK), line[MG_UU_LINE_MAX];
    size_t len = 0;
    bool found = false;
    uint64_t off = 0;

    *failed = false;
    while (!found && off < it->c.size) {
        gssize n = sz_content_read(s, &it->c, off, buf, CHUNK);
        if (n <= 0) {
            *failed = true;
            break;
        }
        off += (uint64_t)n;
        for (gssize i = 0; i < n && !found; i++) {
            char c = buf[i];
            if (c == '\n' || c == '\r') {
                const char *name;
                size_t name_len;
                /* a long line is judged on its first bytes, as the parser does */
                if (mg_uu_is_begin(line, len, &name, &name_len))
                    found = true;
                len = 0;
            } else if (len < sizeof line) {
                line[len++] = c;
            }
        }
    }
    if (!found && !*failed) {
        const char *name;
        size_t name_len;
        found = mg_uu_is_begin(line, len, &name, &name_len) != 0;
    }
    g_free(buf);
    return found;
}

/* The name mail clients know for a canonical charset (charset.h names
 * CP932 "cp932"; clients expect Shift_JIS). */
static const char *mime_charset(const char *canon)
{
    static const struct {
        const char *canon, *mime;
    } map[] = {
        {"cp932", "Shift_JIS"},
        {"euc-jp", "EUC-JP"},
        {"iso-2022-jp", "ISO-2022-JP"},
        {"windows-1252", "windows-1252"},
    };

    for (size_t i = 0; canon != NULL && i < G_N_ELEMENTS(map); i++)
        if (strcmp(canon, map[i].canon) == 0)
            return map[i].mime;
    return canon;
}

/* A text made here (converted HTML, text without its uuencoded blocks)
 * goes out only if the policy keeps it when it comes in: detected,
 * flagged and matched as the next gateway (or a second pass) would see
 * it. So what leaves is always a fixed point of the policy. */
static bool output_kept(struct mg_sanitize *s, const char *name, const struct sz_extent *region)
{
    struct mg_rule_subject subj;
    size_t n = 0;
    const char *type;

    if (region != NULL) {
        n = (size_t)MIN(region->len, (uint64_t)MG_DETECT_SNIFF_BYTES);
        for (size_t got = 0; got < n;) {
            ssize_t r = pread(s->spool_fd, s->sniff + got, n - got, (off_t)(region->off + got));
            if (r < 0 && errno == EINTR)
                continue;
            if (r <= 0) {
                sz_fail(s, MG_VERDICT_TEMPFAIL, "spool read: %s",
                        r < 0 ? g_strerror(errno) : "short");
                return false;
            }
            got += (size_t)r;
        }
    }
    type = mg_detect_buffer(s->o.detect, s->sniff, n);
    memset(&subj, 0, sizeof subj);
    subj.detected_type = type;
    subj.declared_type = "text/plain";
    subj.filename = name;
    subj.size = region != NULL ? region->len : 0;
    subj.sender = s->sender;
    subj.recipients = s->recipients != NULL ? (const char *const *)s->recipients->pdata : NULL;
    subj.flags = sz_sniff_flags(s->sniff, n, type);
    if (sz_type_mismatch("text/plain", type) || sz_extension_mismatch(name, type))
        subj.flags |= MG_ITEM_MISMATCH;
    subj.role = MG_ROLE_ATTACHMENT;
    return mg_rule_action(mg_rules_match(s->o.rules, &subj)) == MG_ACTION_KEEP;
}

/* SHA-256 of notice + the text region: names the boundary. */
static bool hash_body(struct mg_sanitize *s, const char *notice_text, const struct sink *k,
                      struct mg_sha256 *h)
{
    char *buf;
    uint64_t off = 0;

    mg_sha256_update(h, notice_text, (gssize)strlen(notice_text));
    if (!k->started)
        return true;
    buf = g_malloc(CHUNK);
    while (off < k->region.len) {
        ssize_t n = pread(s->spool_fd, buf, (size_t)MIN((uint64_t)CHUNK, k->region.len - off),
                          (off_t)(k->region.off + off));
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            sz_fail(s, MG_VERDICT_TEMPFAIL, "spool read: %s", n < 0 ? g_strerror(errno) : "short");
            g_free(buf);
            return false;
        }
        mg_sha256_update(h, buf, n);
        off += (uint64_t)n;
    }
    g_free(buf);
    return true;
}

static bool ascii_only(const char *p)
{
    for (; *p != '\0'; p++)
        if ((unsigned char)*p >= 0x80)
            return false;
    return true;
}

static size_t longest_line(const char *p)
{
    size_t best = 0, cur = 0;

    for (; *p != '\0'; p++) {
        if (*p == '\n') {
            best = MAX(best, cur);
            cur = 0;
        } else {
            cur++;
        }
    }
    return MAX(best, cur);
}

/* --- repack = zip ------------------------------------------------------------ */

/* One zip being written for an archive whose rule says "repack = zip":
 * the members that survived the policy, in their safe form, written
 * by libarchive into the spool (a content of its own: no descriptor,
 * no memory but libarchive's while it is open). The members of an
 * archive are contiguous in s->items, so one writer at most is open.
 * Entries carry no time (libarchive then writes the DOS minimum,
 * 1980-01-01, whatever the time zone) and no owner, so the same
 * message always gives the same bytes. */
struct repack {
    struct mg_sanitize *s;
    int top;           /* index of the archive item */
    struct archive *a; /* open while its members come, then NULL */
    struct sz_content c;
    GHashTable *files, *dirs; /* case-folded entry paths and folder paths */
    bool write_failed;
};

static gint cmp_str_ptr(gconstpointer a, gconstpointer b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The attached archive around item i whose rule repacks, or -1. */
static int repack_top(struct mg_sanitize *s, int i)
{
    const struct sz_item *p = g_ptr_array_index(s->items, (guint)i);
    int top = -1;

    for (unsigned n = 0; p->arc_depth > 0 && p->parent >= 0 && n < 64; n++) {
        top = p->parent;
        p = g_ptr_array_index(s->items, (guint)top);
    }
    if (top < 0 || p->arc_depth > 0)
        return -1;
    if (p->action != MG_ACTION_UNPACK || p->rule == NULL ||
        strcmp(mg_rule_option(p->rule, "repack"), "zip") != 0)
        return -1;
    return top;
}

static bool path_used(GHashTable *t, const GString *path)
{
    char *k = g_utf8_casefold(path->str, (gssize)path->len);
    bool hit = g_hash_table_contains(t, k);

    g_free(k);
    return hit;
}

/* Appends comp to path as the next component, numbered ("comp-2",
 * "stem-2.ext") while it clashes, ignoring case as Windows does, with
 * a file (for a folder) or with a file or a folder (for a file). */
static void add_component(struct repack *r, GString *path, const char *comp, bool file)
{
    gsize at = path->len;
    const char *dot = file ? strrchr(comp, '.') : NULL;
    size_t stem = dot != NULL && dot != comp ? (size_t)(dot - comp) : strlen(comp);

    g_string_append(path, comp);
    for (unsigned n = 2;
         n < 100000 && (path_used(r->files, path) || (file && path_used(r->dirs, path))); n++) {
        g_string_truncate(path, at);
        g_string_append_printf(path, "%.*s-%u%s", (int)stem, comp, n, comp + stem);
    }
    g_hash_table_add(file ? r->files : r->dirs, g_utf8_casefold(path->str, (gssize)path->len));
}

/* Adds the folders of a member's name inside its archive. */
static void add_dirs(struct repack *r, GString *path, const char *name)
{
    char **v = g_strsplit_set(name != NULL ? name : "", "/\\", -1);
    guint n = g_strv_length(v);

    for (guint i = 0; i + 1 < n && i < 16; i++) {
        char *c = sz_safe_component(v[i]);
        if (c != NULL) {
            add_component(r, path, c, false);
            g_string_append_c(path, '/');
        }
        g_free(c);
    }
    g_strfreev(v);
}

/* The entry name of member i: the folders of its name in each archive
 * on the way, a folder named after each nested archive, then its
 * output name; no two entries clash on a Windows or SMB client. */
static char *repack_name(struct mg_sanitize *s, struct repack *r, int i)
{
    GString *path = g_string_new(NULL);
    GArray *chain = g_array_new(FALSE, FALSE, sizeof(int));
    const struct sz_item *it = g_ptr_array_index(s->items, (guint)i);

    for (int k = i; k != r->top && k >= 0 && chain->len < 64;
         k = ((struct sz_item *)g_ptr_array_index(s->items, (guint)k))->parent)
        g_array_prepend_val(chain, k);
    for (guint j = 0; j < chain->len; j++) {
        const struct sz_item *m = g_ptr_array_index(s->items, (guint)g_array_index(chain, int, j));
        add_dirs(r, path, m->filename);
        if (m != it) {
            char *base = sz_display_name(m->filename);
            char *dir = sz_safe_component(base);
            add_component(r, path, dir != NULL ? dir : "archive", false);
            g_string_append_c(path, '/');
            g_free(dir);
            g_free(base);
        }
    }
    g_array_unref(chain);
    add_component(r, path, it->out_name, true);
    return g_string_free(path, FALSE);
}

static la_ssize_t repack_write(struct archive *a, void *u, const void *buf, size_t len)
{
    struct repack *r = u;

    (void)a;
    if (!sz_content_append(r->s, &r->c, buf, len)) {
        r->write_failed = true;
        return -1;
    }
    return (la_ssize_t)len;
}

/* Ends the zip being written (its content stays, closed). */
static bool repack_close(struct repack *r)
{
    bool ok = true;

    if (r->a != NULL) {
        ok = archive_write_close(r->a) == ARCHIVE_OK && !r->write_failed;
        if (!ok && r->s->error == NULL)
            sz_fail(r->s, MG_VERDICT_TEMPFAIL, "repack: %s",
                    r->write_failed ? "spool write failed" : archive_error_string(r->a));
        archive_write_free(r->a);
        r->a = NULL;
        ok = sz_content_close(r->s, &r->c) && ok;
    }
    return ok;
}

static void repack_free(gpointer p)
{
    struct repack *r = p;

    if (r->a != NULL)
        archive_write_free(r->a);
    sz_content_forget(r->s, &r->c);
    g_hash_table_unref(r->files);
    g_hash_table_unref(r->dirs);
    g_free(r);
}

/* The zip of archive top: the one being written, or a new one (the
 * previous one is ended: its members are all behind). */
static struct repack *repack_get(struct mg_sanitize *s, GPtrArray *repacks, int top)
{
    struct repack *r = repacks->len > 0 ? g_ptr_array_index(repacks, repacks->len - 1) : NULL;

    if (r != NULL && r->top == top && r->a != NULL)
        return r;
    if (r != NULL && !repack_close(r))
        return NULL;
    r = g_new0(struct repack, 1);
    r->s = s;
    r->top = top;
    r->files = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
    r->dirs = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
    g_ptr_array_add(repacks, r);
    r->a = archive_write_new();
    if (archive_write_set_format_zip(r->a) != ARCHIVE_OK ||
        archive_write_set_options(r->a, "zip:hdrcharset=UTF-8") < ARCHIVE_WARN ||
        archive_write_set_bytes_in_last_block(r->a, 1) != ARCHIVE_OK ||
        archive_write_open(r->a, r, NULL, repack_write, NULL) != ARCHIVE_OK) {
        sz_fail(s, MG_VERDICT_TEMPFAIL, "repack: %s", archive_error_string(r->a));
        return NULL;
    }
    return r;
}

/* Writes the content of part as member i of its archive's zip. */
static bool repack_add(struct mg_sanitize *s, GPtrArray *repacks, int top, int i, GMimePart *part)
{
    struct repack *r = repack_get(s, repacks, top);
    GMimeStream *st = g_mime_data_wrapper_get_stream(g_mime_part_get_content(part));
    struct archive_entry *e;
    char *name, buf[16384];
    gint64 len;
    bool ok = true;

    if (r == NULL)
        return false;
    len = g_mime_stream_length(st);
    if (len < 0 || g_mime_stream_reset(st) < 0) {
        sz_fail(s, MG_VERDICT_INTERNAL, "repack: a member's content has no length");
        return false;
    }
    name = repack_name(s, r, i);
    e = archive_entry_new();
    archive_entry_update_pathname_utf8(e, name);
    archive_entry_set_filetype(e, AE_IFREG);
    archive_entry_set_perm(e, 0644);
    archive_entry_set_size(e, len);
    if (archive_write_header(r->a, e) != ARCHIVE_OK) {
        sz_fail(s, MG_VERDICT_TEMPFAIL, "repack: %s: %s", name, archive_error_string(r->a));
        ok = false;
    }
    while (ok) {
        ssize_t n = g_mime_stream_read(st, buf, sizeof buf);
        if (n < 0) {
            sz_fail(s, MG_VERDICT_TEMPFAIL, "repack: reading %s: %s", name, g_strerror(errno));
            ok = false;
        } else if (n == 0) {
            break;
        } else if (archive_write_data(r->a, buf, (size_t)n) != n) {
            sz_fail(s, MG_VERDICT_TEMPFAIL, "repack: %s: %s", name,
                    r->write_failed ? "spool write failed" : archive_error_string(r->a));
            ok = false;
        }
    }
    archive_entry_free(e);
    g_free(name);
    return ok;
}

/* Ends the last zip and adds each as an attachment named after its
 * archive. */
static bool repack_finish(struct mg_sanitize *s, GPtrArray *repacks, GPtrArray *atts,
                          struct mg_sha256 *bh, unsigned *n_att)
{
    if (repacks->len > 0 && !repack_close(g_ptr_array_index(repacks, repacks->len - 1)))
        return false;
    for (guint i = 0; i < repacks->len; i++) {
        struct repack *r = g_ptr_array_index(repacks, i);
        struct sz_item *t = g_ptr_array_index(s->items, (guint)r->top);
        GPtrArray *sorted = g_ptr_array_new();
        GHashTableIter hi;
        gpointer key;
        GMimeStream *cs;
        GMimePart *part;

        (*n_att)++;
        g_free(t->out_name);
        g_free(t->out_type);
        t->out_type = g_strdup("application/zip");
        t->out_name = sz_safe_filename(t->filename, t->out_type, *n_att);
        cs = content_stream(s, &r->c);
        part = new_part(t->out_type, cs, GMIME_CONTENT_ENCODING_BASE64);
        g_object_unref(cs);
        /* the boundary hash: the zip's bytes are a function of the
         * members already hashed, its name and its entry names */
        g_hash_table_iter_init(&hi, r->files);
        while (g_hash_table_iter_next(&hi, &key, NULL))
            g_ptr_array_add(sorted, key);
        g_ptr_array_sort(sorted, cmp_str_ptr);
        for (guint j = 0; j < sorted->len; j++)
            mg_sha256_update_str(bh, g_ptr_array_index(sorted, j));
        g_ptr_array_unref(sorted);
        mg_sha256_update_str(bh, t->out_name);
        t->emitted = true;
        g_object_set_data_full(G_OBJECT(part), "mg-name", g_strdup(t->out_name), g_free);
        g_ptr_array_add(atts, part); /* not "mg-scanned": a new container */
    }
    return true;
}

/* Writes m to a new temporary file *fd (closing the old one); *len: its size. */
static bool write_message(struct mg_sanitize *s, GMimeMessage *m, int *fd, uint64_t *len)
{
    GMimeStream *out;
    off_t end;

    if (*fd >= 0)
        close(*fd);
    *fd = sz_tmpfile(s, "out");
    if (*fd < 0)
        return false;
    out = g_mime_stream_fs_new(*fd);
    g_mime_stream_fs_set_owner(GMIME_STREAM_FS(out), FALSE);
    /* GMimeStreamFs does not buffer, and its flush is an fsync: the
     * output is a temporary file, not worth one */
    if (g_mime_object_write_to_stream(GMIME_OBJECT(m), NULL, out) < 0) {
        sz_fail(s, MG_VERDICT_TEMPFAIL, "writing the rebuilt message: %s", g_strerror(errno));
        g_object_unref(out);
        return false;
    }
    g_object_unref(out);
    end = lseek(*fd, 0, SEEK_END);
    if (end < 0) {
        sz_fail(s, MG_VERDICT_TEMPFAIL, "spool: %s", g_strerror(errno));
        return false;
    }
    if (len != NULL)
        *len = (uint64_t)end;
    return true;
}

bool sz_build(struct mg_sanitize *s)
{
    struct sink body;
    GMimeMessage *msg = NULL, *view = NULL;
    GMimeMultipart *mp = NULL;
    GMimePart *text_part;
    GMimeStream *bs;
    struct mg_sha256 *bh = mg_sha256_new();
    char *note = NULL;
    unsigned n_att = 0;
    bool ok = false;
    GPtrArray *atts = g_ptr_array_new_with_free_func(g_object_unref);
    GPtrArray *repacks = g_ptr_array_new_with_free_func(repack_free);

    sink_init(&body, s);
    if (!s->held && !build_body_text(s, &body))
        goto done;

    /* attachments (not for a held message) */
    for (guint i = 0; !s->held && i < s->items->len; i++) {
        struct sz_item *it = g_ptr_array_index(s->items, i);
        GMimePart *part = NULL;
        const char *charset = NULL;
        bool scanned = false;

        if (it->kind != MG_MIME_LEAF || it->role != MG_ROLE_ATTACHMENT ||
            it->forced != SZ_FORCED_NONE)
            continue;
        if (it->action != MG_ACTION_KEEP && it->action != MG_ACTION_TEXT && !it->cdr_ready)
            continue;
        n_att++;
        g_free(it->out_name);
        g_free(it->out_type);
        if (it->cdr_ready) {
            /* what a CDR handler made (checked in sanitize.c) */
            bool text = g_str_has_prefix(it->cdr_type, "text/") ||
                        strcmp(it->cdr_type, "application/x-empty") == 0;
            it->out_type = g_strdup(text ? "text/plain" : it->cdr_type);
            charset = text ? "utf-8" : NULL;
            it->out_name = sz_safe_filename(it->cdr_name != NULL ? it->cdr_name : it->filename,
                                            it->out_type, n_att);
            GMimeStream *cs = content_stream(s, &it->cdr);
            part = new_part(it->out_type, cs, GMIME_CONTENT_ENCODING_BASE64);
            g_object_unref(cs);
            mg_sha256_update_str(bh, it->cdr_sha_hex);
            scanned = true; /* check_output scanned these bytes */
            goto attach;
        }
        /* A kept text with a uuencoded block in it is rewritten without
         * the block (the block is an item of its own): some clients
         * decode uuencode in text, and the file must not reach them. */
        bool uu = it->has_uu;
        if (it->action == MG_ACTION_KEEP && !uu && g_str_has_prefix(it->detected, "text/")) {
            bool failed;
            uu = has_uu_begin(s, it, &failed);
            if (failed)
                goto done;
        }
        if (it->action == MG_ACTION_KEEP && !(uu && g_str_has_prefix(it->detected, "text/"))) {
            /* an empty file is inert and has no type of its own */
            it->out_type = g_strdup(
                strcmp(it->detected, "application/x-empty") == 0 ? "text/plain" : it->detected);
            if (g_str_has_prefix(it->out_type, "text/")) {
                charset = it->charset != NULL ? mg_charset_canon(it->charset) : NULL;
                if (charset == NULL) {
                    gssize n = read_head(s, it, s->sniff, MG_DETECT_SNIFF_BYTES);
                    if (n < 0)
                        goto done;
                    charset = mg_charset_sniff(s->sniff, (size_t)n);
                }
                charset = mime_charset(charset);
            }
            it->out_name = sz_safe_filename(it->filename, it->out_type, n_att);
            GMimeStream *cs = content_stream(s, &it->c);
            part = new_part(it->out_type, cs, GMIME_CONTENT_ENCODING_BASE64);
            g_object_unref(cs);
            mg_sha256_update_str(bh, it->sha_hex);
            /* leaf_scan scanned these bytes in full; a text is scanned
             * again all the same: libclamav may read a mail inside it
             * only when it takes the whole message apart (and texts
             * are cheap to scan) */
            scanned = !g_str_has_prefix(it->out_type, "text/");
        } else {
            struct sink k;
            sink_init(&k, s);
            unsigned att_flags = 0;
            bool emitted =
                is_html_type(it) ? emit_html(s, it, &k, &att_flags) : emit_plain(s, it, &k);
            if (!emitted) {
                sink_fini(&k);
                goto done;
            }
            it->out_type = g_strdup("text/plain");
            charset = "utf-8";
            it->out_name = sz_safe_filename(it->filename, it->out_type, n_att);
            if (!output_kept(s, it->out_name, k.started ? &k.region : NULL)) {
                /* the text made here would not pass the policy itself */
                sink_fini(&k);
                if (s->error != NULL)
                    goto done;
                it->action = MG_ACTION_DROP;
                it->forced = SZ_FORCED_NOT_TEXT;
                g_free(it->out_name);
                it->out_name = NULL;
                continue;
            }
            GMimeStream *cs = k.started ? region_stream(s, &k.region) : g_mime_stream_mem_new();
            part = new_part(it->out_type, cs, GMIME_CONTENT_ENCODING_BASE64);
            g_object_unref(cs);
            mg_sha256_update_str(bh, mg_sha256_hex(k.sha));
            sink_fini(&k);
        }
    attach:
        mg_sha256_update_str(bh, it->out_name);
        mg_sha256_update_str(bh, it->out_type);
        if (charset != NULL)
            mg_sha256_update_str(bh, charset);
        it->emitted = true;
        {
            int top = repack_top(s, (int)i);
            if (top >= 0) {
                bool added = repack_add(s, repacks, top, (int)i, part);
                g_object_unref(part);
                if (!added)
                    goto done;
                continue;
            }
        }
        g_object_set_data_full(G_OBJECT(part), "mg-name", g_strdup(it->out_name), g_free);
        g_object_set_data_full(G_OBJECT(part), "mg-charset", g_strdup(charset), g_free);
        g_object_set_data(G_OBJECT(part), "mg-scanned", GINT_TO_POINTER(scanned));
        g_ptr_array_add(atts, part);
    }

    if (!repack_finish(s, repacks, atts, bh, &n_att))
        goto done;

    /* the body: notice + text */
    note = notice(s);
    g_free(s->notice_text);
    s->notice_text = g_strdup(note);
    if (!hash_body(s, note, &body, bh))
        goto done;
    if (body.started) {
        GMimeStream *cat = g_mime_stream_cat_new();
        GMimeStream *ms = g_mime_stream_mem_new_with_buffer(note, strlen(note));
        GMimeStream *rs = region_stream(s, &body.region);
        g_mime_stream_cat_add_source(GMIME_STREAM_CAT(cat), ms);
        g_mime_stream_cat_add_source(GMIME_STREAM_CAT(cat), rs);
        g_object_unref(ms);
        g_object_unref(rs);
        bs = cat;
    } else {
        bs = g_mime_stream_mem_new_with_buffer(note, strlen(note));
    }
    text_part = new_part("text/plain", bs,
                         !body.nonascii && ascii_only(note) && body.max_line <= 998 &&
                                 longest_line(note) <= 998
                             ? GMIME_CONTENT_ENCODING_7BIT
                             : GMIME_CONTENT_ENCODING_BASE64);
    g_object_unref(bs);
    g_mime_object_set_content_type_parameter(GMIME_OBJECT(text_part), "charset", "utf-8");

    msg = g_mime_message_new(FALSE);
    copy_headers(s, GMIME_OBJECT(msg));
    {
        /* The last scan (sanitize.c) looks at the rebuilt message as a
         * client gets it, but an attachment whose exact bytes were
         * already scanned in full (a kept part, a handler's output) is
         * left out of that view: scanning it again costs as much and
         * cannot find anything else. The view has the same header, text
         * and every attachment made here since (texts, zips). */
        bool skip = false;
        for (guint i = 0; i < atts->len; i++)
            skip = skip || g_object_get_data(G_OBJECT(g_ptr_array_index(atts, i)), "mg-scanned");
        if (skip)
            view = g_mime_message_new(FALSE);
    }
    if (view != NULL) {
        GMimeMultipart *vp = g_mime_multipart_new_with_subtype("mixed");
        copy_headers(s, GMIME_OBJECT(view));
        g_mime_multipart_add(vp, GMIME_OBJECT(text_part));
        for (guint i = 0; i < atts->len; i++) {
            GMimePart *part = g_ptr_array_index(atts, i);
            if (!g_object_get_data(G_OBJECT(part), "mg-scanned"))
                add_attachment(vp, part, g_object_get_data(G_OBJECT(part), "mg-name"),
                               g_object_get_data(G_OBJECT(part), "mg-charset"));
        }
        g_mime_message_set_mime_part(view, GMIME_OBJECT(vp));
        g_object_unref(vp);
        g_mime_object_append_header(GMIME_OBJECT(view), "X-Mugaika-Result", s->result, NULL);
    }
    if (atts->len > 0) {
        char *boundary = g_strdup_printf("=_mugaika_%.32s", mg_sha256_hex(bh));
        mp = g_mime_multipart_new_with_subtype("mixed");
        g_mime_multipart_set_boundary(mp, boundary);
        g_free(boundary);
        g_mime_multipart_add(mp, GMIME_OBJECT(text_part));
        for (guint i = 0; i < atts->len; i++) {
            GMimePart *part = g_ptr_array_index(atts, i);
            add_attachment(mp, part, g_object_get_data(G_OBJECT(part), "mg-name"),
                           g_object_get_data(G_OBJECT(part), "mg-charset"));
        }
        g_mime_message_set_mime_part(msg, GMIME_OBJECT(mp));
        g_object_unref(mp);
    } else {
        g_mime_message_set_mime_part(msg, GMIME_OBJECT(text_part));
    }
    g_object_unref(text_part);
    g_mime_object_append_header(GMIME_OBJECT(msg), "X-Mugaika-Result", s->result, NULL);

    if (!write_message(s, msg, &s->out_fd, &s->out_len))
        goto done;
    if (s->scan_fd >= 0)
        close(s->scan_fd);
    s->scan_fd = -1;
    if (view != NULL && !write_message(s, view, &s->scan_fd, NULL))
        goto done;
    ok = s->error == NULL;
done:
    if (msg != NULL)
        g_object_unref(msg);
    if (view != NULL)
        g_object_unref(view);
    g_ptr_array_unref(atts);
    g_ptr_array_unref(repacks);
    mg_sha256_free(bh);
    g_free(note);
    sink_fini(&body);
    return ok;
}
