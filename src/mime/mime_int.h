/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * NAME
 *	mime_int 3h
 * SUMMARY
 *	libmugaika internal: streaming transfer decoders
 * DESCRIPTION
 *	Allocation-free step functions (GMime's encoding-step shape): a
 *	struct mg_dec holds the state carried between calls; mg_dec_step
 *	decodes len input bytes into out, which must have room for
 *	len + MG_DEC_SLACK bytes (x-uuencode: 32 * len + MG_DEC_SLACK); mg_dec_flush ends the input.
 *Defects are reported as a bit mask of (1 << MG_MIME_DEFECT_*) in d->defects, with the input index
 *of the first occurrence in the last step in d->defect_at[] (for the parser's offsets).
 */
#ifndef MUGAIKA_MIME_INT_H
#define MUGAIKA_MIME_INT_H

#include <stddef.h>
#include <stdint.h>

#include <mugaika/mime.h>

#define MG_DEC_SLACK     256 /* >= 63: a held uuencoded line decodes to at most 63 bytes */
#define MG_DEC_QP_WS_MAX 64
#define MG_UU_LINE_MAX   256

struct mg_dec {
    enum mg_mime_cte cte;
    unsigned state;
    uint32_t acc; /* base64: bits gathered; qp: first hex digit */
    unsigned n;   /* base64: sextets in acc; qp: blanks held in ws */
    char ws[MG_DEC_QP_WS_MAX];
    /* uuencode CTE: line assembly */
    char line[MG_UU_LINE_MAX];
    size_t line_len;
    uint64_t defects; /* found in the last step/flush */
    size_t defect_at[MG_MIME_DEFECT_COUNT];
};

void mg_dec_init(struct mg_dec *d, enum mg_mime_cte cte);
size_t mg_dec_step(struct mg_dec *d, const char *in, size_t len, char *out);
size_t mg_dec_flush(struct mg_dec *d, char *out);

/* Value of a hex digit (either case), or -1. */
int mg_hex_value(unsigned char c);

/* Decode one uuencoded data line (no line terminator). Writes at most
 * 63 bytes to out; returns the count. *bad
 * is set when the line is not well-formed uuencode. */
size_t mg_uu_decode_line(const char *line, size_t len, char *out, int *bad);
/* Is this line "begin NNN name"? On success *name and *name_len
 * point into line. */
int mg_uu_is_begin(const char *line, size_t len, const char **name, size_t *name_len);
/* Is this line the "end" line (blanks after it allowed)? */
int mg_uu_is_end(const char *line, size_t len);

#endif
