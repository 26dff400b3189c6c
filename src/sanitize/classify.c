/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * NAME
 *	classify 3
 * SUMMARY
 *	findings about an item that rules match on
 * SYNOPSIS
 *	unsigned sz_sniff_flags(const unsigned char *buf, size_t len, const char *detected);
 *	enum sz_container sz_container_of(const unsigned char *buf, size_t len);
 *	bool sz_macro_marker(const unsigned char *buf, size_t len, enum sz_container kind);
 *	bool sz_type_mismatch(const char *declared, const char *detected);
 * DESCRIPTION
 *	sz_sniff_flags looks at the first bytes of decoded content (the
 *	libmagic sniff window) for signs that rules care about before any
 *	format handler runs: encryption (a zip entry with the encrypted
 *	bit, an OLE2 "EncryptedPackage" stream of an encrypted OOXML
 *	document, a PDF /Encrypt dictionary) and macros (an OOXML
 *	vbaProject.bin, an OLE2 VBA storage or Excel 4 macro sheet). It is
 *	a cheap early signal: the CDR handlers decide on the full parse.
 *
 *	sz_container_of says whether content starts as a zip or an OLE2
 *	compound file; sz_macro_marker whether buf holds one of the macro
 *	markers of that kind of container (the same as sz_sniff_flags'),
 *	for a look at the whole content of an item a rule would keep (the
 *	markers are stored names: a zip's entry names, an OLE2 directory's
 *	UTF-16 names).
 *
 *	sz_type_mismatch: the declared type disagrees with what the bytes
 *	are. Declared application/octet-stream (or nothing) says nothing;
 *	any declared text type agrees with any detected text type; an empty body agrees
 *	with everything.
 */
#include <string.h>

#include "sanitize/sanitize_int.h"

static bool has_bytes(const unsigned char *buf, size_t len, const void *needle, size_t n)
{
    return len >= n && memmem(buf, len, needle, n) != NULL;
}

/* ASCII s as UTF-16LE, as OLE2 directory entries store names. */
static bool has_utf16(const unsigned char *buf, size_t len, const char *s)
{
    unsigned char w[64];
    size_t n = strlen(s);

    if (n * 2 > sizeof w)
        return false;
    for (size_t i = 0; i < n; i++) {
        w[2 * i] = (unsigned char)s[i];
        w[2 * i + 1] = 0;
    }
    return has_bytes(buf, len, w, n * 2);
}

static bool zip_encrypted(const unsigned char *buf, size_t len)
{
    /* every local file header in the window: PK\3\4, flags at +6 */
    for (size_t i = 0; i + 30 <= len; i++) {
        if (buf[i] == 'P' && buf[i + 1] == 'K' && buf[i + 2] == 3 && buf[i + 3] == 4) {
            if (buf[i + 6] & 1)
                return true;
        }
    }
    return false;
}

static const unsigned char ole_magic[8] = {0xd0, 0xcf, 0x11, 0xe0, 0xa1, 0xb1, 0x1a, 0xe1};

enum sz_container sz_container_of(const unsigned char *buf, size_t len)
{
    if (len >= 4 && buf[0] == 'P' && buf[1] == 'K' && buf[2] == 3 && buf[3] == 4)
        return SZ_CONTAINER_ZIP;
    if (len >= 8 && memcmp(buf, ole_magic, 8) == 0)
        return SZ_CONTAINER_OLE2;
    return SZ_CONTAINER_NONE;
}

bool sz_macro_marker(const unsigned char *buf, size_t len, enum sz_container kind)
{
    if (kind == SZ_CONTAINER_ZIP)
        return has_bytes(buf, len, "vbaProject.bin", 14) || has_bytes(buf, len, "vbaData.xml", 11);
    if (kind == SZ_CONTAINER_OLE2)
        return has_utf16(buf, len, "_VBA_PROJECT") || has_utf16(buf, len, "VBA") ||
               has_utf16(buf, len, "Macros") || has_utf16(buf, len, "_VBA_PROJECT_CUR");
    return false;
}

unsigned sz_sniff_flags(const unsigned char *buf, size_t len, const char *detected)
{
    enum sz_container kind = sz_container_of(buf, len);
    unsigned flags = 0;

    if (sz_macro_marker(buf, len, kind))
        flags |= MG_ITEM_MACROS;
    if (kind == SZ_CONTAINER_ZIP) {
        if (zip_encrypted(buf, len))
            flags |= MG_ITEM_ENCRYPTED;
    } else if (kind == SZ_CONTAINER_OLE2) {
        if (has_utf16(buf, len, "EncryptedPackage") || has_utf16(buf, len, "EncryptionInfo"))
            flags |= MG_ITEM_ENCRYPTED;
    } else if (len >= 5 && memcmp(buf, "%PDF-", 5) == 0) {
        if (has_bytes(buf, len, "/Encrypt", 8))
            flags |= MG_ITEM_ENCRYPTED;
    }
    (void)detected;
    return flags;
}

bool sz_type_mismatch(const char *declared, const char *detected)
{
    if (declared == NULL || detected == NULL)
        return false;
    if (strcmp(declared, "application/octet-stream") == 0 ||
        strcmp(detected, "application/x-empty") == 0)
        return false;
    if (g_ascii_strcasecmp(declared, detected) == 0)
        return false;
    if (g_str_has_prefix(declared, "text/") && g_str_has_prefix(detected, "text/"))
        return false;
    /* libmagic names some types differently from what mailers declare */
    if (g_str_has_prefix(declared, "image/") && g_str_has_prefix(detected, "image/") &&
        (strstr(declared, "jpeg") != NULL || strstr(declared, "jpg") != NULL) &&
        strstr(detected, "jpeg") != NULL)
        return false;
    if (strcmp(declared, "application/x-zip-compressed") == 0 &&
        strcmp(detected, "application/zip") == 0)
        return false;
    return true;
}
