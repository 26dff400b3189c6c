/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * NAME
 *	corpus_util 3h
 * SUMMARY
 *	helpers shared by the corpus test programs
 * DESCRIPTION
 *	Locating ../shared/corpus, listing and reading its files, choosing
 *	the mail files of the MIME sets, and running a message through
 *	mg_inspect into a flat list of leaf records.
 */
#ifndef MUGAIKA_TESTS_CORPUS_UTIL_H
#define MUGAIKA_TESTS_CORPUS_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <glib.h>
#include <json-glib/json-glib.h>

/* The corpus root ($MUGAIKA_SHARED/corpus). When MUGAIKA_SHARED is not
 * set or the directory does not exist, prints why and exits 77 (skip).
 * Owned by the caller. */
char *corpus_root(void);

/* Every regular file below root/sub ("" for all), as paths relative to
 * root, sorted by byte order. Owned (g_ptr_array_unref frees all). */
GPtrArray *corpus_list(const char *root, const char *sub);

/* Reads root/rel whole; aborts the test when it cannot be read. Owned,
 * NUL-terminated (the NUL is not counted in *len). */
char *corpus_read(const char *root, const char *rel, size_t *len);

/* Is rel (relative to the corpus root) a mail file of one of the MIME
 * sets of the GMime differential?  Decided by set, directory and file
 * name, then by content: the first line must be a header field or an
 * mbox From_ line. */
bool corpus_is_mail(const char *rel, const char *data, size_t len);

/* Length of the first message of data: all of it, or, for an mbox
 * file (named *.mbox, *.mbox.txt or under mime4j/mbox/, first line
 * "From "), up to the next From_ line. A single mail that starts with
 * a From_ line may quote others: it is not cut. */
size_t corpus_first_message(const char *rel, const char *data, size_t len);

enum corpus_kind { CORPUS_LEAF, CORPUS_MULTIPART, CORPUS_MESSAGE };

/* One part as mugaika reports it (a record of the inspect JSON). */
struct corpus_part {
    char *path;
    enum corpus_kind kind;
    char *content_type;
    char *filename;     /* NULL when none */
    char *cte;          /* NULL when absent */
    char *origin;       /* "mime" or "uuencode" */
    uint64_t size;      /* leaves */
    char *sha256;       /* leaves */
    char *text;         /* "text" of text leaves with CORPUS_TEXT, else NULL */
    GPtrArray *defects; /* of char *, the codes of the part's defects */
    bool message_leaf;  /* message/rfc822 kept opaque (encoded body, depth limit) */
    bool type_default;  /* no usable Content-Type (CORPUS_BYTES only) */
    GByteArray *bytes;  /* decoded content of a leaf (CORPUS_BYTES only) */
};

enum {
    CORPUS_LEAVES = 1 << 0, /* leaves only */
    CORPUS_TEXT = 1 << 1,   /* inspect option "text" */
    CORPUS_BYTES = 1 << 2,  /* collect each leaf's decoded bytes */
};

/* Parses data whole with mg_inspect (default limits, no libmagic) and
 * returns its parts in document order (uuencoded children included;
 * see origin). With CORPUS_BYTES the message is parsed a second time
 * with the bare push parser to collect each leaf's decoded bytes, and
 * the test fails unless they match the size and sha256 of the JSON.
 * *json receives the JSON object when json is not NULL (owned by the
 * caller). NULL when the parser returned an error. */
GPtrArray *corpus_mugaika_parts(const char *data, size_t len, unsigned flags, JsonNode **json);

/* The boundaries of the multiparts mugaika opens in data, in document
 * order. Owned (of char *). */
GPtrArray *corpus_boundaries(const char *data, size_t len);

/* Does the part have a defect with this code? */
bool corpus_part_has(const struct corpus_part *l, const char *code);

/* Lower-case hex SHA-256 of buf. Owned. */
char *corpus_sha256(const void *buf, size_t len);

/* printf to stdout, bytes as they are (g_print would convert UTF-8
 * names to the charset of the C locale the tests run in). */
void corpus_print(const char *fmt, ...) G_GNUC_PRINTF(1, 2);

/* s as valid UTF-8 with control characters replaced by '?' (for
 * one-line reports); "(null)" for NULL. Owned. */
char *corpus_printable(const char *s);

/* A divergence list in $MUGAIKA_CORPUS_LISTS (else "."): lines
 * "SET/FILE: reason", '#' comments and blank lines skipped. Returns
 * file -> reason (owned by the caller). A missing or malformed list is
 * fatal. */
GHashTable *corpus_read_list(const char *file);

/* Every line of a divergence list must name a file of the corpus
 * (unless only part of it ran); returns how many listed files did not
 * differ (the list is stale for them). Fatal on a stray line. */
unsigned corpus_check_list(const char *list_name, GHashTable *listed, GHashTable *seen,
                           unsigned listed_diff, bool only);

/* main() of a corpus test: one GLib test PATH given the corpus root. */
int corpus_test_main(int argc, char **argv, const char *path, GTestDataFunc fn);

#endif
