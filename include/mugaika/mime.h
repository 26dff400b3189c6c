/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * NAME
 *	mime 3h
 * SUMMARY
 *	push-based streaming MIME parser
 * SYNOPSIS
 *	struct mg_mime *p = mg_mime_new(&settings, &limits, user);
 *	while (have input) st = mg_mime_execute(p, buf, len);
 *	st = mg_mime_finish(p);
 *	mg_mime_free(p);
 * DESCRIPTION
 *	The parser is fed a message in chunks of any size and calls the
 *	callbacks of a const settings table shared by all parsers.
 *	Whatever the chunk boundaries: entities begin and end in the same
 *	order; each entity's fields come in the same order, its defects in
 *	the same order, and its body bytes (all on_body spans joined) are
 *	the same. Where a defect falls between the body spans of its own
 *	entity, or between the events of other open entities (a text part
 *	and the uuencoded block found inside it), may differ.
 *
 *	The struct mg_mime_part passed to a callback is valid during that
 *	call only (the entity stack may move); its strings stay valid
 *	until the entity's on_part_end returns. Memory is bounded by the limits,
 *	never by the message size. No pointer into a caller's buffer is
 *	kept once mg_mime_execute returns.
 *
 *	Events, per entity (message, body part, uuencoded block):
 *	  on_part_begin   once the entity's header block is complete;
 *	  on_header       for each header field, in order (fields are
 *	                  decoded only when on_header or on_defect is set);
 *	  on_defect       for defects found in that header block;
 *	  on_body         transfer-decoded body bytes (leaves only);
 *	  ... child entities (multipart, message/rfc822) ...
 *	  on_part_end.
 *	Defects found later (in a body) are reported when found, with the
 *	offset of the input byte that revealed them.
 *
 *	Paths follow IMAP: the leaf body of a single-part message is "1";
 *	children of a multipart are "1", "2", ...; inside part "2", a nested
 *	multipart's children are "2.1", "2.2". Entities IMAP gives no
 *	number have the path of their container plus ".0" ("0" for the
 *	top-level multipart of a message, "2.0" for the multipart body of
 *	an embedded message at "2"). A uuencoded block found in text part
 *	"1" is reported as a child entity "1.u1" (origin MG_MIME_ORIGIN_UU).
 *
 *	A callback returns 0 to go on, anything else for a sticky error:
 *	mg_mime_execute and mg_mime_finish then return MG_ERR_CALLBACK and
 *	every later call returns it too.
 * LIMITS
 *	See struct mg_mime_limits. Crossing a limit records a defect and
 *	degrades safely: the affected entity becomes one opaque leaf.
 */
#ifndef MUGAIKA_MIME_H
#define MUGAIKA_MIME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <mugaika/status.h>

/* Input defects: name, machine code, description. */
#define MG_MIME_DEFECT_LIST(X)                                                                     \
    X(HEADER_NO_COLON, "header-no-colon", "header line without a colon")                           \
    X(HEADER_BAD_NAME, "header-bad-name", "header field name with invalid characters")             \
    X(HEADER_BLOCK_TOO_LONG, "header-block-too-long", "header block exceeds the limit")            \
    X(HEADER_LINE_TOO_LONG, "header-line-too-long", "header line exceeds the line limit")          \
    X(HEADER_CONTINUATION_FIRST, "header-continuation-first", "folded line before any field")      \
    X(HEADER_8BIT, "header-8bit", "raw 8-bit bytes in a header")                                   \
    X(HEADER_NUL, "header-nul", "NUL byte in a header")                                            \
    X(HEADER_TRUNCATED, "header-truncated", "input ended inside a header block")                   \
    X(ENCODED_WORD, "encoded-word", "malformed RFC 2047 encoded word")                             \
    X(UNKNOWN_CHARSET, "unknown-charset", "unknown charset")                                       \
    X(INVALID_CHARSET_DATA, "invalid-charset-data", "text invalid in its charset")                 \
    X(PARAM_MALFORMED, "param-malformed", "malformed parameter list")                              \
    X(PARAM_DUPLICATE, "param-duplicate", "parameter given twice")                                 \
    X(RFC2231, "rfc2231", "broken RFC 2231 parameter continuation")                                \
    X(DUPLICATE_CONTENT_TYPE, "duplicate-content-type", "Content-Type given twice (first kept)")   \
    X(DUPLICATE_CTE, "duplicate-cte", "Content-Transfer-Encoding given twice (first kept)")        \
    X(DUPLICATE_DISPOSITION, "duplicate-disposition", "Content-Disposition given twice")           \
    X(BAD_CONTENT_TYPE, "bad-content-type", "unparsable Content-Type (text/plain used)")           \
    X(UNKNOWN_CTE, "unknown-cte", "unknown transfer encoding (treated as binary)")                 \
    X(CTE_ON_COMPOSITE, "cte-on-composite", "encoded multipart or message (kept opaque)")          \
    X(MULTIPART_NO_BOUNDARY, "multipart-no-boundary", "multipart without boundary (leaf)")         \
    X(BOUNDARY_TOO_LONG, "boundary-too-long", "boundary exceeds the limit (opaque)")               \
    X(BOUNDARY_WHITESPACE, "boundary-whitespace", "boundary line with trailing whitespace")        \
    X(BOUNDARY_LOOKALIKE, "boundary-lookalike", "line starts like a delimiter but is content")     \
    X(MISSING_FINAL_BOUNDARY, "missing-final-boundary", "multipart not closed")                    \
    X(NO_PARTS, "no-parts", "multipart without any body part")                                     \
    X(PARENT_BOUNDARY, "parent-boundary", "part closed by an enclosing boundary")                  \
    X(DEPTH_LIMIT, "depth-limit", "nesting too deep (opaque)")                                     \
    X(PART_LIMIT, "part-limit", "too many parts (rest opaque)")                                    \
    X(LINE_TOO_LONG, "line-too-long", "body line exceeds the line limit")                          \
    X(BODY_NUL, "body-nul", "NUL byte in a 7bit/8bit body")                                        \
    X(BODY_8BIT, "body-8bit", "8-bit bytes in a 7bit body")                                        \
    X(BASE64_INVALID_CHAR, "base64-invalid-char", "invalid characters in base64 (ignored)")        \
    X(BASE64_PADDING, "base64-padding", "base64 with missing or misplaced padding")                \
    X(BASE64_AFTER_END, "base64-after-end", "base64 data after the padding")                       \
    X(QP_INVALID_ESCAPE, "qp-invalid-escape", "invalid quoted-printable escape (kept literally)")  \
    X(UU_TRUNCATED, "uu-truncated", "uuencoded block without end line")                            \
    X(UU_BAD_LINE, "uu-bad-line", "malformed uuencoded line")                                      \
    X(MBOX_FROM, "mbox-from", "leading mbox From_ line skipped")                                   \
    X(TRUNCATED, "truncated", "input ended inside an entity")

enum mg_mime_defect {
#define MG_MIME_DEFECT_ENUM(name, code, desc) MG_MIME_DEFECT_##name,
    MG_MIME_DEFECT_LIST(MG_MIME_DEFECT_ENUM)
#undef MG_MIME_DEFECT_ENUM
        MG_MIME_DEFECT_COUNT
};
/* Static strings. */
const char *mg_mime_defect_code(enum mg_mime_defect d);
const char *mg_mime_defect_desc(enum mg_mime_defect d);

enum mg_mime_cte {
    MG_MIME_CTE_7BIT,
    MG_MIME_CTE_8BIT,
    MG_MIME_CTE_BINARY,
    MG_MIME_CTE_BASE64,
    MG_MIME_CTE_QP,
    MG_MIME_CTE_UUENCODE, /* x-uuencode CTE, and uuencoded blocks */
    MG_MIME_CTE_UNKNOWN,  /* treated as binary */
};

enum mg_mime_kind {
    MG_MIME_LEAF,
    MG_MIME_MULTIPART,
    MG_MIME_MESSAGE, /* message/rfc822, message/global: one embedded message */
};

enum mg_mime_origin {
    MG_MIME_ORIGIN_MIME, /* a MIME entity */
    MG_MIME_ORIGIN_UU,   /* a uuencoded block found inside a text part */
};

/* What the parser knows of an entity. Every pointer is borrowed and
 * valid until on_part_end for that entity returns. */
struct mg_mime_part {
    const char *path; /* IMAP-style, see above */
    unsigned depth;   /* 0 for the top-level entity */
    unsigned index;   /* 1-based position among its siblings */
    enum mg_mime_kind kind;
    enum mg_mime_origin origin;
    const char *content_type;  /* lower-case type/subtype as declared, or the default */
    bool content_type_default; /* no (usable) Content-Type field */
    const char *charset;       /* declared charset parameter (raw), or NULL */
    const char *boundary;      /* multipart only */
    const char *cte_token;     /* lower-case, trimmed CTE token, or NULL when absent */
    enum mg_mime_cte cte;      /* how the body is decoded */
    const char *disposition;   /* lower-case token, or NULL */
    const char *filename;      /* UTF-8: disposition filename, else type name, else NULL */
    uint64_t offset;           /* of the first header byte */
    uint64_t body_offset;      /* of the first body byte */
    uint64_t end_offset;       /* valid in on_part_end: one past the body */
};

struct mg_mime_header {
    const char *name; /* raw field name (not NUL-terminated: name_len) */
    size_t name_len;
    const char *raw; /* raw value after the colon, folding kept */
    size_t raw_len;
    const char *decoded; /* UTF-8 decoded value, NUL-terminated */
    uint64_t offset;     /* of the field's first byte */
};

struct mg_mime;
typedef int (*mg_mime_part_cb)(struct mg_mime *p, const struct mg_mime_part *part);
typedef int (*mg_mime_header_cb)(struct mg_mime *p, const struct mg_mime_part *part,
                                 const struct mg_mime_header *h);
typedef int (*mg_mime_data_cb)(struct mg_mime *p, const struct mg_mime_part *part, const char *data,
                               size_t len);
typedef int (*mg_mime_defect_cb)(struct mg_mime *p, const struct mg_mime_part *part,
                                 enum mg_mime_defect d, uint64_t offset);

/* Callbacks; any may be NULL. part is the current entity (NULL for a
 * defect that belongs to no entity). */
struct mg_mime_settings {
    mg_mime_part_cb on_part_begin;
    mg_mime_header_cb on_header;
    mg_mime_defect_cb on_defect;
    mg_mime_data_cb on_body;
    mg_mime_part_cb on_part_end;
};

struct mg_mime_limits {
    size_t header_bytes;   /* one header block (default 256 KiB) */
    size_t line_bytes;     /* body line before line-too-long, header line (default 64 KiB) */
    size_t boundary_bytes; /* boundary parameter (default 8 KiB) */
    unsigned depth;        /* nesting depth (default 64) */
    unsigned parts;        /* entities in one message (default 10000) */
    bool uuencode;         /* look for uuencoded blocks in text parts (default true) */
};
void mg_mime_limits_default(struct mg_mime_limits *l);

/* Returns a new parser (never NULL). settings must outlive it; limits
 * are copied (NULL: defaults). */
struct mg_mime *mg_mime_new(const struct mg_mime_settings *settings,
                            const struct mg_mime_limits *limits, void *user);
/* Frees p and everything it holds; accepts NULL; returns NULL. */
struct mg_mime *mg_mime_free(struct mg_mime *p);
void *mg_mime_user(const struct mg_mime *p);

/* Feed len bytes (any chunking). Returns MG_OK or a sticky error. */
enum mg_status mg_mime_execute(struct mg_mime *p, const char *buf, size_t len);
/* End of input: flushes and closes every open entity. */
enum mg_status mg_mime_finish(struct mg_mime *p);
/* Offset (from the start of input) of the last error, or of the
 * current position. */
uint64_t mg_mime_offset(const struct mg_mime *p);

#endif
