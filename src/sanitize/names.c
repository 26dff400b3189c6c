/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * NAME
 *	names 3
 * SUMMARY
 *	safe attachment file names and type extensions
 * SYNOPSIS
 *	char *sz_safe_filename(const char *name, const char *type, unsigned n);
 *	const char *sz_type_extension(const char *type);
 *	bool sz_extension_mismatch(const char *filename, const char *detected);
 * DESCRIPTION
 *	sz_safe_filename makes a name every mail client and Windows/SMB
 *	file system takes at face value: the last path component only;
 *	control, bidirectional-override and zero-width characters removed
 *	(U+202E would let "gpj.exe" read as "exe.jpg"); the characters
 *	Windows forbids replaced by "_"; leading and trailing dots and
 *	blanks trimmed; device names (CON, NUL, COM1, ...) prefixed with
 *	"_"; the stem capped at SZ_NAME_MAX characters; and the extension
 *	made to match the type of the content (".txt" appended when a
 *	text file was named "invoice.exe"). An empty result becomes
 *	"attachment-N".
 */
#include <string.h>

#include "sanitize/sanitize_int.h"

#define SZ_NAME_MAX 100 /* characters of the stem */

struct type_ext {
    const char *type;
    const char *ext;     /* the one given to output files */
    const char *aliases; /* other extensions that fit, ";"-separated, ";"-framed */
};

static const struct type_ext type_exts[] = {
    {"text/plain", "txt", ";txt;text;log;csv;tsv;md;ini;"},
    {"text/csv", "csv", ";csv;txt;tsv;"},
    {"text/html", "html", ";html;htm;"},
    {"application/xhtml+xml", "html", ";html;htm;xhtml;"},
    {"application/pdf", "pdf", ";pdf;"},
    {"image/png", "png", ";png;"},
    {"image/jpeg", "jpg", ";jpg;jpeg;jpe;"},
    {"image/gif", "gif", ";gif;"},
    {"image/webp", "webp", ";webp;"},
    {"image/bmp", "bmp", ";bmp;"},
    {"image/tiff", "tif", ";tif;tiff;"},
    {"application/zip", "zip", ";zip;"},
    {"application/x-7z-compressed", "7z", ";7z;"},
    {"application/vnd.rar", "rar", ";rar;"},
    {"application/x-rar", "rar", ";rar;"},
    {"application/gzip", "gz", ";gz;tgz;"},
    {"application/msword", "doc", ";doc;dot;"},
    {"application/vnd.ms-excel", "xls", ";xls;xlt;"},
    {"application/vnd.ms-powerpoint", "ppt", ";ppt;pps;pot;"},
    {"application/vnd.openxmlformats-officedocument.wordprocessingml.document", "docx",
     ";docx;docm;dotx;dotm;"},
    {"application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", "xlsx",
     ";xlsx;xlsm;xltx;xltm;"},
    {"application/vnd.openxmlformats-officedocument.presentationml.presentation", "pptx",
     ";pptx;pptm;ppsx;potx;"},
    {"application/rtf", "rtf", ";rtf;"},
    {"text/rtf", "rtf", ";rtf;"},
    {"application/x-dosexec", "exe", ";exe;dll;scr;com;"},
    {"message/rfc822", "eml", ";eml;msg;"},
};

static const struct type_ext *find_type(const char *type)
{
    if (type == NULL)
        return NULL;
    for (size_t i = 0; i < G_N_ELEMENTS(type_exts); i++)
        if (g_ascii_strcasecmp(type_exts[i].type, type) == 0)
            return &type_exts[i];
    return NULL;
}

const char *sz_type_extension(const char *type)
{
    const struct type_ext *t = find_type(type);

    return t != NULL ? t->ext : "bin";
}

/* The lower-cased extension of name (after the last dot), or NULL. */
static char *name_ext(const char *name)
{
    const char *dot = name != NULL ? strrchr(name, '.') : NULL;

    if (dot == NULL || dot[1] == '\0' || strlen(dot + 1) > 16)
        return NULL;
    return g_ascii_strdown(dot + 1, -1);
}

static bool ext_fits(const struct type_ext *t, const char *ext)
{
    char framed[24];

    if (t == NULL || ext == NULL)
        return false;
    g_snprintf(framed, sizeof framed, ";%s;", ext);
    return strstr(t->aliases, framed) != NULL;
}

bool sz_extension_mismatch(const char *filename, const char *detected)
{
    char *ext = name_ext(filename);
    bool bad = false;

    if (ext != NULL) {
        /* A known extension that belongs to another known type. */
        bool known = false;
        for (size_t i = 0; i < G_N_ELEMENTS(type_exts); i++)
            if (ext_fits(&type_exts[i], ext))
                known = true;
        const struct type_ext *t = find_type(detected);
        if (known && t != NULL && !ext_fits(t, ext))
            bad = true;
        if (known && t == NULL && strcmp(detected, "application/x-empty") != 0 &&
            strcmp(detected, "application/octet-stream") != 0)
            bad = true;
    }
    g_free(ext);
    return bad;
}

/* Characters that never appear in an output name. */
static bool drop_char(gunichar c)
{
    if (c < 0x20 || (c >= 0x7f && c < 0xa0))
        return true;
    switch (c) {
    case 0x061c: /* arabic letter mark */
    case 0x200b: /* zero width space .. joiner, marks */
    case 0x200c:
    case 0x200d:
    case 0x200e:
    case 0x200f:
    case 0x2028:
    case 0x2029:
    case 0xfeff:
    case 0xfffd:
        return true;
    default:
        break;
    }
    return (c >= 0x202a && c <= 0x202e) || (c >= 0x2066 && c <= 0x2069) ||
           (c >= 0xfff9 && c <= 0xfffb);
}

static bool device_name(const char *stem)
{
    static const char *const dev[] = {"con", "prn", "aux", "nul", "conin$", "conout$", "clock$"};
    size_t n = strcspn(stem, ".");
    char *low;
    bool hit = false;

    /* Windows ignores blanks before the extension ("con .txt") */
    while (n > 0 && stem[n - 1] == ' ')
        n--;
    low = g_ascii_strdown(stem, (gssize)n);

    for (size_t i = 0; i < G_N_ELEMENTS(dev); i++)
        if (strcmp(low, dev[i]) == 0)
            hit = true;
    if (n == 4 && (strncmp(low, "com", 3) == 0 || strncmp(low, "lpt", 3) == 0) && low[3] >= '0' &&
        low[3] <= '9')
        hit = true;
    /* COM¹ COM² COM³ (and LPT) are devices too */
    if (n == 5 && (strncmp(low, "com", 3) == 0 || strncmp(low, "lpt", 3) == 0) &&
        (unsigned char)low[3] == 0xc2 &&
        ((unsigned char)low[4] == 0xb9 || (unsigned char)low[4] == 0xb2 ||
         (unsigned char)low[4] == 0xb3))
        hit = true;
    g_free(low);
    return hit;
}

/* Appends the characters of utf8 (valid UTF-8) that may stand in a
 * file name: the dropped ones and path separators left out, the ones
 * Windows forbids replaced with '_'. */
static void clean_chars(GString *s, const char *utf8)
{
    for (const char *p = utf8; *p != '\0'; p = g_utf8_next_char(p)) {
        gunichar c = g_utf8_get_char(p);
        if (drop_char(c) || c == '/' || c == '\\')
            continue;
        if (c < 0x80 && strchr("<>:\"|?*", (int)c) != NULL)
            g_string_append_c(s, '_');
        else
            g_string_append_unichar(s, c);
    }
}

/* Trims blanks and dots at both ends (Windows drops trailing ones). */
static void trim_ends(GString *s)
{
    while (s->len > 0 && (s->str[s->len - 1] == '.' || s->str[s->len - 1] == ' '))
        g_string_truncate(s, s->len - 1);
    while (s->len > 0 && (s->str[0] == '.' || s->str[0] == ' '))
        g_string_erase(s, 0, 1);
}

/* The last path component without the characters dropped above: how
 * a name is shown in a notice (no extension is added). */
char *sz_display_name(const char *name)
{
    GString *s = g_string_new(NULL);
    char *valid = g_utf8_make_valid(name != NULL ? name : "", -1);
    const char *p, *base = valid;

    for (p = valid; *p != '\0'; p++)
        if (*p == '/' || *p == '\\')
            base = p + 1;
    for (p = base; *p != '\0' && s->len < 400; p = g_utf8_next_char(p)) {
        gunichar c = g_utf8_get_char(p);
        if (!drop_char(c))
            g_string_append_unichar(s, c);
    }
    g_free(valid);
    return g_string_free(s, FALSE);
}

char *sz_safe_filename(const char *name, const char *type, unsigned n)
{
    GString *s = g_string_new(NULL);
    char *valid, *ext;
    const char *p, *base;
    const struct type_ext *t = find_type(type);
    const char *want = sz_type_extension(type);
    glong chars;

    valid = g_utf8_make_valid(name != NULL ? name : "", -1);
    /* the last path component, either separator */
    base = valid;
    for (p = valid; *p != '\0'; p++)
        if (*p == '/' || *p == '\\')
            base = p + 1;
    clean_chars(s, base);
    g_free(valid);
    trim_ends(s);
    if (s->len == 0)
        g_string_printf(s, "attachment-%u", n);
    if (device_name(s->str))
        g_string_prepend_c(s, '_');

    ext = name_ext(s->str);
    if (ext != NULL && (ext_fits(t, ext) || (t == NULL && strcmp(ext, want) == 0))) {
        /* keep the name's own extension; cap the stem before it */
        size_t stem_len = s->len - strlen(ext) - 1;
        char *stem = g_strndup(s->str, stem_len);
        chars = g_utf8_strlen(stem, -1);
        if (chars > SZ_NAME_MAX) {
            char *cut = g_utf8_offset_to_pointer(stem, SZ_NAME_MAX);
            *cut = '\0';
        }
        char *dot_ext = g_strdup(s->str + stem_len);
        g_string_assign(s, stem);
        g_string_append(s, dot_ext);
        g_free(stem);
        g_free(dot_ext);
    } else {
        chars = g_utf8_strlen(s->str, -1);
        if (chars > SZ_NAME_MAX)
            g_string_truncate(s, (gsize)(g_utf8_offset_to_pointer(s->str, SZ_NAME_MAX) - s->str));
        while (s->len > 0 && (s->str[s->len - 1] == '.' || s->str[s->len - 1] == ' '))
            g_string_truncate(s, s->len - 1);
        g_string_append_printf(s, ".%s", want);
    }
    g_free(ext);
    return g_string_free(s, FALSE);
}

char *sz_safe_component(const char *name)
{
    GString *s = g_string_new(NULL);
    char *valid = g_utf8_make_valid(name != NULL ? name : "", -1);

    clean_chars(s, valid);
    g_free(valid);
    if (g_utf8_strlen(s->str, -1) > SZ_NAME_MAX)
        g_string_truncate(s, (gsize)(g_utf8_offset_to_pointer(s->str, SZ_NAME_MAX) - s->str));
    trim_ends(s);
    if (s->len == 0) {
        g_string_free(s, TRUE);
        return NULL;
    }
    if (device_name(s->str))
        g_string_prepend_c(s, '_');
    return g_string_free(s, FALSE);
}
