/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * NAME
 *	sanitize_int 3h
 * SUMMARY
 *	libmugaika internal: the pipeline's items, spool and writer
 * DESCRIPTION
 *	One struct sz_item per entity the parser reported, in document
 *	order. A leaf's decoded content lives in the message's spool:
 *	small contents in memory, larger ones as extents of one
 *	append-only temporary file per message (only open leaves hold a
 *	write buffer, so memory stays bounded whatever the part count).
 */
#ifndef MUGAIKA_SANITIZE_INT_H
#define MUGAIKA_SANITIZE_INT_H

#include <stdbool.h>
#include <stdint.h>

#include <glib.h>

#include "core/sha256.h"

#include <mugaika/sanitize.h>

/* Why an item did not get its rule's action. */
enum sz_forced {
    SZ_FORCED_NONE,
    SZ_FORCED_INFECTED,    /* AV found something: always dropped */
    SZ_FORCED_OPAQUE,      /* the parser could not take it apart */
    SZ_FORCED_NO_HANDLER,  /* the action exists, its handler comes later */
    SZ_FORCED_NOT_TEXT,    /* action text on content that has no text form yet */
    SZ_FORCED_ALTERNATIVE, /* another alternative of the same content was used */
    SZ_FORCED_UNSCANNED,   /* the AV engine could not look at all of it */
    SZ_FORCED_CDR_FAILED,  /* the handler failed, crashed, timed out or hit a limit */
    SZ_FORCED_TOO_DEEP,    /* an archive nested deeper than the archive depth limit */
    SZ_FORCED_MACROS,      /* its rule keeps it, but it carries macros: never kept */
};

struct sz_extent {
    uint64_t off;
    uint64_t len;
};

struct sz_content {
    GByteArray *mem; /* the whole content (small) or the unflushed tail */
    GArray *extents; /* of struct sz_extent in the spool file, then mem */
    uint64_t size;
};

struct sz_hdr {
    char *name;
    char *decoded; /* at most SZ_HDR_MAX bytes */
};
#define SZ_HDR_MAX  16384 /* longer values are cut (a header line is 998) */
#define SZ_HDRS_MAX 200   /* fields kept per message (Received included) */

struct sz_item {
    char *path;
    int parent; /* index, -1 for the top */
    unsigned depth;
    enum mg_mime_kind kind;
    enum mg_mime_origin origin;
    char *declared; /* lower-case type/subtype */
    bool declared_default;
    char *charset;
    char *cte;
    char *disposition;
    char *filename;
    GArray *defects; /* of enum mg_mime_defect */
    GArray *hdrs;    /* of struct sz_hdr: message roots only */
    bool msg_root;   /* top entity, or the child of a message/rfc822 */
    /* leaves */
    struct sz_content c;
    struct mg_sha256 *sha;
    char sha_hex[65];
    char *detected;
    unsigned flags;
    char *virus;
    enum mg_item_role role;
    const struct mg_rule *rule;
    enum mg_action action; /* what is done (after forcing) */
    enum sz_forced forced;
    bool has_uu;    /* a uuencoded block was found inside (text leaves) */
    bool unscanned; /* the AV engine reached a limit */
    bool emitted;   /* its text or file is in the output */
    char *out_name; /* attachment file name in the output */
    char *out_type; /* attachment content type in the output */
    /* CDR (disarm, flatten, unpack, text through a worker) */
    unsigned arc_depth;           /* archives around it (0: a part of the mail) */
    const char *cdr_handler;      /* static: the handler that ran, or NULL */
    int cdr_status;               /* enum mg_cdr_status, when cdr_handler is set */
    char *cdr_reason;             /* why it failed */
    bool cdr_ready;               /* cdr holds the handler's output */
    struct sz_content cdr;        /* the output (disarm, flatten, text) */
    char *cdr_name, *cdr_type;    /* the worker's name for it, its detected type */
    char cdr_sha_hex[65];         /* SHA-256 of the output */
    GPtrArray *cdr_notes;         /* of char *: what the handler removed or converted */
    unsigned members;             /* unpack: members that became items */
    unsigned cdr_flags;           /* MG_CDR_OUT_* of a member */
    bool released;                /* encrypted, unpacked with the release's password */
    bool detected_done;           /* detected and flags are set (classify_detect) */
    struct sz_prefetch *prefetch; /* its handler started ahead (sanitize.c), or NULL */
    struct mg_av_seen *seen;      /* inner files its original scan found clean, or NULL */
    struct pending_scan *arc_job; /* an archive's scan while it is unpacked (sanitize.c) */
};

/* The pipeline of one message (sanitize.c; the writer in build.c). */
struct mg_sanitize {
    struct mg_sanitize_opts o;
    char *lang;
    struct mg_mime *parser;
    GPtrArray *items; /* of struct sz_item *, document order */
    GArray *open;     /* of int: indices of open entities */
    GArray *defects;  /* of enum mg_mime_defect: defects of no entity */
    /* the spool file: extents of part contents and output texts */
    int spool_fd;
    uint64_t spool_end;
    size_t mem_used;
    unsigned char *sniff;
    /* the original */
    struct mg_sha256 *orig_sha;
    uint64_t orig_size;
    struct mg_qwrite *qw;
    bool qw_file; /* qw holds a file the caller feeds (opts.file_qwrite) */
    /* archives unpacked so far (limits are for the whole message) */
    unsigned arc_members;
    int64_t cdr_spent_us; /* wall clock spent in workers (cdr_budget_us) */
    uint64_t arc_bytes;
    /* envelope, from the options or the top-level header */
    char *sender;
    GPtrArray *recipients; /* of char *, NULL-terminated */
    bool envelope_done;
    /* the first error; it decides the verdict */
    GError *error;
    enum mg_verdict error_verdict;
    /* results */
    bool finished;
    enum mg_verdict verdict;
    bool held;
    bool output_infected; /* held because the rebuilt text scanned infected */
    char *reject_reason;
    char qid[32];
    char *result;
    char *notice_text; /* the notice of the last build ("" when none) */
    char *sha_hex;
    int out_fd;  /* the rebuilt message, a temporary file */
    int scan_fd; /* what of it the last scan looks at (-1: out_fd), see build.c */
    uint64_t out_len;
    unsigned html_flags; /* MG_HTML_* of the converted HTML */
    gint64 t_start, t_parsed, t_done;
    gint64 av_us;       /* spent in libclamav (parts, outputs, the rebuilt message) */
    GPtrArray *pending; /* of struct pending_scan: scans running (sanitize.c) */
    bool discarding;    /* being freed: findings of scans joined now are not applied */
};

void sz_fail(struct mg_sanitize *s, enum mg_verdict v, const char *fmt, ...) G_GNUC_PRINTF(3, 4);
/* A temporary file in the spool directory (O_TMPFILE, else an unlinked
 * mugaika-NAME-XXXXXX); -1 after sz_fail. */
int sz_tmpfile(struct mg_sanitize *s, const char *name);
bool sz_spool_write(struct mg_sanitize *s, const void *buf, size_t len, struct sz_extent *ext);
/* Reads up to len bytes of c at off; returns the count (0 at the end,
 * -1 on error after sz_fail). */
/* The content of a derived item: memory or spool, as a leaf's. */
bool sz_content_append(struct mg_sanitize *s, struct sz_content *c, const char *buf, size_t len);
bool sz_content_close(struct mg_sanitize *s, struct sz_content *c);
void sz_content_forget(struct mg_sanitize *s, struct sz_content *c);
gssize sz_content_read(struct mg_sanitize *s, const struct sz_content *c, uint64_t off, void *buf,
                       size_t len);

/* Waits for the scans of handlers' outputs still running, and applies
 * their findings (sanitize.c). */
void sz_output_scan_join(struct mg_sanitize *s);

/* build.c: the rebuilt message, written to s->out_fd. */
bool sz_build(struct mg_sanitize *s);
/* Is this header field used (top: of the message, else of an embedded
 * message)? Only those are kept, so memory does not grow with headers. */
bool sz_header_wanted(const char *name, size_t len, bool top);

/* names.c */
char *sz_safe_filename(const char *name, const char *type, unsigned n);
char *sz_display_name(const char *name);
/* One folder name made safe for Windows and SMB clients (characters
 * dropped or replaced as in file names, dots and blanks trimmed at
 * both ends, device names prefixed with '_', length capped); NULL
 * when nothing is left ("", ".", ".."). */
char *sz_safe_component(const char *name);
const char *sz_type_extension(const char *type);
bool sz_extension_mismatch(const char *filename, const char *detected);

/* classify.c */
unsigned sz_sniff_flags(const unsigned char *buf, size_t len, const char *detected);
enum sz_container { SZ_CONTAINER_NONE, SZ_CONTAINER_ZIP, SZ_CONTAINER_OLE2 };
enum sz_container sz_container_of(const unsigned char *buf, size_t len);
bool sz_macro_marker(const unsigned char *buf, size_t len, enum sz_container kind);
bool sz_type_mismatch(const char *declared, const char *detected);

#endif
