/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * NAME
 *	hdr 3h
 * SUMMARY
 *	header field decoding: RFC 2047, RFC 2231, raw 8-bit, addresses
 * DESCRIPTION
 *	All functions take the raw field value as it appears after the
 *	colon (folding included) and return UTF-8. Problems found on the
 *	way are reported as a bit mask of MG_HDR_DEF_* (input defects,
 *	never errors): the parser turns them into mime defects.
 */
#ifndef MUGAIKA_HDR_H
#define MUGAIKA_HDR_H

#include <stdbool.h>
#include <stddef.h>
#include <glib.h>

enum {
    MG_HDR_DEF_ENCWORD = 1u << 0,  /* malformed encoded word left literal */
    MG_HDR_DEF_CHARSET = 1u << 1,  /* unknown charset in an encoded word or RFC 2231 value */
    MG_HDR_DEF_RAW8BIT = 1u << 2,  /* raw 8-bit bytes in the value */
    MG_HDR_DEF_PARAM = 1u << 3,    /* malformed parameter list */
    MG_HDR_DEF_RFC2231 = 1u << 4,  /* RFC 2231 continuation gap, or bad %-escape */
    MG_HDR_DEF_DUPPARAM = 1u << 5, /* a parameter given twice (first one wins) */
    MG_HDR_DEF_INVALID = 1u << 6,  /* invalid UTF-8 / charset sequence replaced by U+FFFD */
};

/* Unstructured text (Subject, Comments, ...): unfold, decode encoded
 * words (adjacent words of one charset are joined before conversion,
 * so a character split across two words decodes), leave malformed
 * words literal, raw 8-bit as UTF-8 if valid, else sniffed
 * CP932/EUC-JP. Result owned by the caller (g_free). */
char *mg_hdr_decode_text(const char *raw, size_t len, unsigned *defects);

/* Address list (From, To, Cc, ...): display names decoded, result
 * "Name <addr>, addr2, ..." in UTF-8. Owned by the caller. */
char *mg_hdr_decode_addresses(const char *raw, size_t len, unsigned *defects);

/* Picks the decoder for a field name (case-insensitive): address
 * fields, parameterised fields (rendered "value; p=v"), and text. */
char *mg_hdr_decode(const char *name, const char *raw, size_t len, unsigned *defects);

/* Parameterised fields (Content-Type, Content-Disposition). */
struct mg_hdr_param {
    char *name;  /* lower case */
    char *value; /* name/filename: UTF-8, RFC 2231 joined and charset-decoded,
                  * RFC 2047 decoded. Any other parameter: the raw, unquoted
                  * bytes (RFC 2231 joined), so a boundary keeps its exact
                  * bytes; these may be invalid UTF-8 */
};
struct mg_hdr_params {
    char *value;    /* lower-case leading token, comments and blanks removed;
                     * "" when absent */
    GArray *params; /* of struct mg_hdr_param, in order, no duplicates */
};
/* Always fills out (possibly empty); returns false when the value was
 * so broken that nothing usable came out of it. Free with _fini. */
bool mg_hdr_parse_params(const char *raw, size_t len, struct mg_hdr_params *out, unsigned *defects);
/* Borrowed from p; NULL when absent. name is lower case. */
const char *mg_hdr_params_get(const struct mg_hdr_params *p, const char *name);
void mg_hdr_params_fini(struct mg_hdr_params *p);

#endif
