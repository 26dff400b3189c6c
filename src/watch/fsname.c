/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * NAME
 *	fsname 3
 * SUMMARY
 *	file names for the transfer folder (mugaika-watch)
 * SYNOPSIS
 *	#include <mugaika/fsname.h>
 *
 *	char *mg_fsname_decode(const char *raw, size_t len, bool *was_cp932);
 *	char *mg_fsname_safe(const char *utf8, const char *fallback);
 *	char *mg_fsname_unique(int dirfd, const char *name);
 *	char *mg_fsname_temp(const char *final);
 *	bool mg_fsname_is_temp(const char *name);
 * DESCRIPTION
 *	mg_fsname_decode turns the bytes of a directory entry into NFC
 *	UTF-8 (UTF-8 kept, else CP932, else U+FFFD for the bad bytes).
 *
 *	mg_fsname_safe makes a single path component that Linux can
 *	create and a Windows client can open over SMB: invisible and
 *	reordering characters dropped, the nine characters Windows
 *	forbids replaced by '_', leading and trailing blanks and dots
 *	trimmed, device names prefixed with '_', and the length capped
 *	in UTF-8 bytes and in UTF-16 units with the extension kept.
 *
 *	mg_fsname_unique picks "name", "stem (2).ext", ... the first
 *	that no entry of the directory matches as Windows compares
 *	(case-insensitively); mg_fsname_temp and mg_fsname_is_temp make
 *	and recognise the hidden temporary names written before a rename.
 *
 *	All results are owned by the caller (g_free).
 *
 *	The character and device-name rules follow src/sanitize/names.c
 *	(drop_char, device_name), re-implemented here with a wider set
 *	(all format characters, COM0/LPT0); names.c could call
 *	mg_fsname_safe and keep only its type-driven extension logic.
 *	The random part comes from mg_random_fill (src/core/random.c).
 * LIMITS
 *	MG_FSNAME_MAX_BYTES (255) UTF-8 bytes and MG_FSNAME_MAX_UNITS
 *	(255) UTF-16 code units per name; an extension of more than
 *	EXT_MAX bytes is not kept when cutting; MG_FSNAME_UNIQUE_MAX
 *	candidates.
 * DIAGNOSTICS
 *	mg_fsname_unique returns NULL with errno (EEXIST, EINVAL, or the
 *	error of openat/fdopendir/readdir). The other functions cannot
 *	fail (allocation failure aborts, as g_malloc does).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include <glib.h>

#include <mugaika/fsname.h>

#include "core/random.h"

#define EXT_MAX    32 /* bytes of an extension kept when cutting, dot included */
#define TMP_PREFIX ".~mugaika-"
#define TMP_SUFFIX ".tmp"
#define TMP_RANDOM 16 /* hex digits */

/* Characters that never appear in an output name: they are invisible
 * or reorder the text around them, so they could disguise what a name
 * says (an extension above all). */
static bool drop_char(gunichar c)
{
    switch (g_unichar_type(c)) {
    case G_UNICODE_CONTROL:             /* C0, DEL, C1 */
    case G_UNICODE_FORMAT:              /* bidi controls, zero-width, tags, ... */
    case G_UNICODE_LINE_SEPARATOR:      /* U+2028 */
    case G_UNICODE_PARAGRAPH_SEPARATOR: /* U+2029 */
    case G_UNICODE_SURROGATE:
        return true;
    default:
        break;
    }
    /* noncharacters */
    if ((c & 0xfffe) == 0xfffe || (c >= 0xfdd0 && c <= 0xfdef))
        return true;
    switch (c) {
    case 0x034f: /* combining grapheme joiner */
    case 0x061c: /* arabic letter mark (Cf, listed in case of old tables) */
    case 0x115f: /* hangul fillers: letters that render as nothing */
    case 0x1160:
    case 0x17b4: /* khmer inherent vowels, invisible */
    case 0x17b5:
    case 0x180e: /* mongolian vowel separator */
    case 0x3164:
    case 0xfeff:
    case 0xffa0:
        return true;
    default:
        break;
    }
    /* the ones that matter most, whatever GLib's Unicode version says */
    return (c >= 0x200b && c <= 0x200f) || (c >= 0x202a && c <= 0x202e) ||
           (c >= 0x2060 && c <= 0x2064) || (c >= 0x2066 && c <= 0x2069) ||
           (c >= 0xe0000 && c <= 0xe007f);
}

/* Characters replaced by '_': those Windows forbids in a name, and
 * U+FFFD (a byte that could not be decoded). */
static bool replace_char(gunichar c)
{
    return c == 0xfffd || (c < 0x80 && c != 0 && strchr("\\/:*?\"<>|", (int)c) != NULL);
}

/* True when Windows would take the name for a device: the part before
 * the first dot, blanks before the dot ignored, is a device name. */
static bool device_name(const char *name)
{
    static const char *const dev[] = {"con", "prn", "aux", "nul", "conin$", "conout$", "clock$"};
    size_t n = strcspn(name, ".");
    char *low;
    bool hit = false;

    while (n > 0 && name[n - 1] == ' ')
        n--;
    if (n < 3 || n > 7)
        return false;
    low = g_ascii_strdown(name, (gssize)n);
    for (size_t i = 0; i < G_N_ELEMENTS(dev); i++)
        if (strcmp(low, dev[i]) == 0)
            hit = true;
    if (strncmp(low, "com", 3) == 0 || strncmp(low, "lpt", 3) == 0) {
        const unsigned char *d = (const unsigned char *)low + 3;
        /* COM0-COM9, LPT0-LPT9 */
        if (n == 4 && g_ascii_isdigit(d[0]))
            hit = true;
        /* COM¹ COM² COM³ LPT¹ LPT² LPT³ (U+00B9, U+00B2, U+00B3) */
        if (n == 5 && d[0] == 0xc2 && (d[1] == 0xb9 || d[1] == 0xb2 || d[1] == 0xb3))
            hit = true;
    }
    g_free(low);
    return hit;
}

/* Length of the extension of name (the last ".xxx", dot included), or
 * 0: the dot is not the first character, the extension is short and
 * holds no blank. */
static size_t ext_len(const char *name, size_t len)
{
    const char *dot = g_strrstr_len(name, (gssize)len, ".");
    size_t n;

    if (dot == NULL || dot == name)
        return 0;
    n = len - (size_t)(dot - name);
    if (n < 2 || n > EXT_MAX || memchr(dot, ' ', n) != NULL)
        return 0;
    return n;
}

/* stem (the first stem_len bytes) cut on a character boundary so that,
 * followed by tail, the name holds within both limits; trailing blanks
 * and dots of a cut stem are removed. Returns stem + tail, new.
 * With both limits at 255 the byte limit always binds first (no code
 * point takes fewer UTF-8 bytes than UTF-16 units); the unit count is
 * kept so that the limits may differ. */
static char *join_fit(const char *stem, size_t stem_len, const char *tail)
{
    size_t bytes = strlen(tail), units = (size_t)g_utf8_strlen(tail, -1);
    const char *p = stem, *end = stem + stem_len;
    GString *s;

    for (const char *q = tail; *q != '\0'; q = g_utf8_next_char(q))
        if (g_utf8_get_char(q) > 0xffff)
            units++; /* a surrogate pair in UTF-16 */
    while (p < end) {
        const char *next = g_utf8_next_char(p);
        size_t b = (size_t)(next - p), u = g_utf8_get_char(p) > 0xffff ? 2 : 1;
        if (bytes + b > MG_FSNAME_MAX_BYTES || units + u > MG_FSNAME_MAX_UNITS)
            break;
        bytes += b;
        units += u;
        p = next;
    }
    s = g_string_new_len(stem, p - stem);
    if (p < end)
        while (s->len > 1 && (s->str[s->len - 1] == ' ' || s->str[s->len - 1] == '.'))
            g_string_truncate(s, s->len - 1);
    g_string_append(s, tail);
    return g_string_free(s, FALSE);
}

char *mg_fsname_decode(const char *raw, size_t len, bool *was_cp932)
{
    const char *nul = raw != NULL ? memchr(raw, '\0', len) : NULL;
    size_t n = raw == NULL ? 0 : nul != NULL ? (size_t)(nul - raw) : len;
    char *text = NULL, *nfc;

    if (was_cp932 != NULL)
        *was_cp932 = false;
    if (n == 0)
        return g_strdup("");
    if (g_utf8_validate(raw, (gssize)n, NULL)) {
        text = g_strndup(raw, n);
    } else {
        gsize in = 0, out = 0;
        char *conv = g_convert(raw, (gssize)n, "UTF-8", "CP932", &in, &out, NULL);
        if (conv != NULL && in == n && strlen(conv) == out && g_utf8_validate(conv, -1, NULL)) {
            text = conv;
            if (was_cp932 != NULL)
                *was_cp932 = true;
        } else {
            g_free(conv);
            text = g_utf8_make_valid(raw, (gssize)n);
        }
    }
    nfc = g_utf8_normalize(text, -1, G_NORMALIZE_NFC);
    g_free(text);
    return nfc != NULL ? nfc : g_strdup("");
}

/* The rules of mg_fsname_safe without the fallback; may return "". */
static char *safe_name(const char *utf8)
{
    char *valid = g_utf8_make_valid(utf8 != NULL ? utf8 : "", -1);
    char *nfc = g_utf8_normalize(valid, -1, G_NORMALIZE_NFC);
    GString *s = g_string_new(NULL);
    size_t start = 0, ext;
    char *out;

    for (const char *p = nfc != NULL ? nfc : ""; *p != '\0'; p = g_utf8_next_char(p)) {
        gunichar c = g_utf8_get_char(p);
        if (drop_char(c))
            continue;
        if (replace_char(c))
            g_string_append_c(s, '_');
        else
            g_string_append_unichar(s, c);
    }
    g_free(nfc);
    g_free(valid);

    /* Windows drops trailing dots and blanks; leading ones are trimmed
     * too (a dot hides the file on Samba and marks our temp names) */
    while (s->len > 0 && (s->str[s->len - 1] == '.' || s->str[s->len - 1] == ' '))
        g_string_truncate(s, s->len - 1);
    while (start < s->len && (s->str[start] == '.' || s->str[start] == ' '))
        start++;
    g_string_erase(s, 0, (gssize)start);
    if (s->len == 0)
        return g_string_free(s, FALSE);
    if (device_name(s->str))
        g_string_prepend_c(s, '_');

    ext = ext_len(s->str, s->len);
    out = join_fit(s->str, s->len - ext, s->str + s->len - ext);
    g_string_free(s, TRUE);
    return out;
}

char *mg_fsname_safe(const char *utf8, const char *fallback)
{
    char *name = safe_name(utf8);

    if (name[0] != '\0')
        return name;
    g_free(name);
    name = safe_name(fallback);
    if (name[0] != '\0')
        return name;
    g_free(name);
    return g_strdup("file");
}

/* How a Windows client compares a name: NFC, case-folded, trailing
 * dots and blanks ignored. */
static char *name_key(const char *raw)
{
    char *utf8 = mg_fsname_decode(raw, strlen(raw), NULL);
    size_t n = strlen(utf8);
    char *fold, *key;

    while (n > 0 && (utf8[n - 1] == '.' || utf8[n - 1] == ' '))
        n--;
    fold = g_utf8_casefold(utf8, (gssize)n);
    key = g_utf8_normalize(fold, -1, G_NORMALIZE_NFC);
    g_free(fold);
    g_free(utf8);
    return key != NULL ? key : g_strdup("");
}

/* The keys of every entry of dirfd, or NULL with errno. The directory
 * is opened anew through "." so the caller's offset is not shared. */
static GHashTable *dir_keys(int dirfd)
{
    GHashTable *keys = NULL;
    struct dirent *e;
    DIR *d = NULL;
    int fd, saved;

    fd = openat(dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        goto out;
    d = fdopendir(fd);
    if (d == NULL) {
        saved = errno;
        close(fd);
        errno = saved;
        goto out;
    }
    keys = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
    for (;;) {
        errno = 0;
        e = readdir(d);
        if (e == NULL)
            break;
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        g_hash_table_add(keys, name_key(e->d_name));
    }
    if (errno != 0) {
        saved = errno;
        g_hash_table_destroy(keys);
        keys = NULL;
        errno = saved;
    }
out:
    if (d != NULL) {
        saved = errno;
        closedir(d);
        errno = saved;
    }
    return keys;
}

char *mg_fsname_unique(int dirfd, const char *name)
{
    GHashTable *keys;
    size_t len, ext;
    char *stem = NULL;

    if (name == NULL || name[0] == '\0' || strchr(name, '/') != NULL) {
        errno = EINVAL;
        return NULL;
    }
    keys = dir_keys(dirfd);
    if (keys == NULL)
        return NULL;
    len = strlen(name);
    ext = ext_len(name, len);
    stem = g_strndup(name, len - ext);
    for (unsigned i = 1; i <= MG_FSNAME_UNIQUE_MAX; i++) {
        char *tail =
            i == 1 ? g_strdup(name + len - ext) : g_strdup_printf(" (%u)%s", i, name + len - ext);
        char *cand = join_fit(stem, len - ext, tail);
        char *key = name_key(cand);
        bool taken = g_hash_table_contains(keys, key);

        g_free(key);
        g_free(tail);
        if (!taken) {
            g_free(stem);
            g_hash_table_destroy(keys);
            return cand;
        }
        g_free(cand);
    }
    g_free(stem);
    g_hash_table_destroy(keys);
    errno = EEXIST;
    return NULL;
}

char *mg_fsname_temp(const char *final)
{
    static const char hex[] = "0123456789abcdef";
    unsigned char b[TMP_RANDOM / 2];
    char r[TMP_RANDOM + 1];

    (void) final; /* the temporary name never depends on user input */
    mg_random_fill(b, sizeof b);
    for (size_t i = 0; i < sizeof b; i++) {
        r[2 * i] = hex[b[i] >> 4];
        r[2 * i + 1] = hex[b[i] & 0xf];
    }
    r[TMP_RANDOM] = '\0';
    return g_strconcat(TMP_PREFIX, r, TMP_SUFFIX, NULL);
}

bool mg_fsname_is_temp(const char *name)
{
    const size_t pre = sizeof TMP_PREFIX - 1, suf = sizeof TMP_SUFFIX - 1;

    if (name == NULL || strlen(name) != pre + TMP_RANDOM + suf)
        return false;
    if (strncmp(name, TMP_PREFIX, pre) != 0 || strcmp(name + pre + TMP_RANDOM, TMP_SUFFIX) != 0)
        return false;
    for (size_t i = pre; i < pre + TMP_RANDOM; i++)
        if (!((name[i] >= '0' && name[i] <= '9') || (name[i] >= 'a' && name[i] <= 'f')))
            return false;
    return true;
}
