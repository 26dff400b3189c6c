/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * NAME
 *	floor-milter 1
 * SUMMARY
 *	the least a rewriting milter costs: the message copied, nothing else
 * SYNOPSIS
 *	floor-milter --socket unix:/PATH | inet:PORT@HOST [IGNORED...]
 *	floor-milter --version
 * DESCRIPTION
 *	Configuration F of tests/bench/run-milter. A libmilter milter that
 *	does no filtering at all, only what any milter must do that gives
 *	the MTA a rebuilt message, as mugaika-milter does:
 *
 *	  the same protocol steps and actions as mugaika-milter (no
 *	  connect, HELO, unknown or DATA callbacks; no replies to header,
 *	  end-of-header and body; leading spaces kept: an MTA that cannot
 *	  keep them is refused, since the value added below has one);
 *	  every body chunk kept in memory;
 *	  at the end of the message, the body given back unchanged through
 *	  smfi_replacebody (in pieces of MILTER_CHUNK_SIZE, one protocol
 *	  packet each) and one field added, "X-Mugaika-Result: floor", by
 *	  which bench.py checks that the message went through it.
 *
 *	So Postfix with this milter is the throughput that no milter built
 *	on libmilter which reads the whole message and gives a body back
 *	can pass here, whatever it does in between (docs/performance.md,
 *	"The milter through Postfix"). Options other than --socket are
 *	accepted and ignored, so that bench.py can start it like
 *	mugaika-milter. It runs in the foreground.
 *
 *	Callbacks return SMFIS_NOREPLY where the MTA agreed to expect no
 *	reply (SMFIP_NR_*), else SMFIS_CONTINUE; the per-connection state
 *	(struct floor_conn) is made at negotiation and freed at close.
 * LIMITS
 *	A body past FLOOR_MAX_BODY bytes is answered with a temporary
 *	failure (the benchmark's messages are under 64 KiB).
 * DIAGNOSTICS
 *	Exit 0 when libmilter stops normally, 64 without --socket, 70 when
 *	libmilter fails.
 */
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <glib.h>
#include <libmilter/mfapi.h>

#define FLOOR_MAX_BODY (64 * 1024 * 1024)

/* one MTA connection */
struct floor_conn {
    GByteArray *body; /* the current message's body so far */
    bool too_big;     /* past FLOOR_MAX_BODY: tempfail at the end */
    bool nr_hdr;      /* no reply expected for header, end of header, body */
    bool nr_eoh;
    bool nr_body;
};

static sfsistat floor_negotiate(SMFICTX *ctx, unsigned long f0, unsigned long f1, unsigned long f2,
                                unsigned long f3, unsigned long *pf0, unsigned long *pf1,
                                unsigned long *pf2, unsigned long *pf3)
{
    const unsigned long need = SMFIF_ADDHDRS | SMFIF_CHGHDRS | SMFIF_CHGBODY;
    const unsigned long want = SMFIP_NOCONNECT | SMFIP_NOHELO | SMFIP_NOUNKNOWN | SMFIP_NODATA |
                               SMFIP_NR_HDR | SMFIP_NR_EOH | SMFIP_NR_BODY | SMFIP_HDR_LEADSPC;
    struct floor_conn *c;

    (void)f2;
    (void)f3;
    if ((f0 & need) != need || (f1 & SMFIP_HDR_LEADSPC) == 0)
        return SMFIS_REJECT;
    c = g_new0(struct floor_conn, 1);
    c->body = g_byte_array_new();
    c->nr_hdr = (f1 & SMFIP_NR_HDR) != 0;
    c->nr_eoh = (f1 & SMFIP_NR_EOH) != 0;
    c->nr_body = (f1 & SMFIP_NR_BODY) != 0;
    smfi_setpriv(ctx, c);
    *pf0 = need;
    *pf1 = f1 & want;
    *pf2 = 0;
    *pf3 = 0;
    return SMFIS_CONTINUE;
}

static sfsistat floor_envfrom(SMFICTX *ctx, char **argv)
{
    struct floor_conn *c = smfi_getpriv(ctx);

    (void)argv;
    if (c == NULL)
        return SMFIS_TEMPFAIL;
    g_byte_array_set_size(c->body, 0);
    c->too_big = false;
    return SMFIS_CONTINUE;
}

static sfsistat floor_envrcpt(SMFICTX *ctx, char **argv)
{
    (void)ctx;
    (void)argv;
    return SMFIS_CONTINUE;
}

static sfsistat floor_header(SMFICTX *ctx, char *name, char *value)
{
    struct floor_conn *c = smfi_getpriv(ctx);

    (void)name;
    (void)value;
    return c->nr_hdr ? SMFIS_NOREPLY : SMFIS_CONTINUE;
}

static sfsistat floor_eoh(SMFICTX *ctx)
{
    struct floor_conn *c = smfi_getpriv(ctx);

    return c->nr_eoh ? SMFIS_NOREPLY : SMFIS_CONTINUE;
}

static sfsistat floor_body(SMFICTX *ctx, unsigned char *chunk, size_t len)
{
    struct floor_conn *c = smfi_getpriv(ctx);

    if (c->too_big || len > FLOOR_MAX_BODY - c->body->len)
        c->too_big = true;
    else
        g_byte_array_append(c->body, chunk, (guint)len);
    return c->nr_body ? SMFIS_NOREPLY : SMFIS_CONTINUE;
}

static sfsistat floor_eom(SMFICTX *ctx)
{
    struct floor_conn *c = smfi_getpriv(ctx);
    GByteArray *body = c->body;
    size_t off = 0;

    if (c->too_big)
        return SMFIS_TEMPFAIL;
    while (off < body->len) {
        size_t n = MIN((size_t)MILTER_CHUNK_SIZE, body->len - off);

        if (smfi_replacebody(ctx, body->data + off, (int)n) != MI_SUCCESS)
            return SMFIS_TEMPFAIL;
        off += n;
    }
    /* the leading space: SMFIP_HDR_LEADSPC is negotiated */
    if (smfi_addheader(ctx, "X-Mugaika-Result", " floor") != MI_SUCCESS)
        return SMFIS_TEMPFAIL;
    g_byte_array_set_size(body, 0);
    return SMFIS_ACCEPT;
}

static sfsistat floor_abort(SMFICTX *ctx)
{
    struct floor_conn *c = smfi_getpriv(ctx);

    if (c != NULL) {
        g_byte_array_set_size(c->body, 0);
        c->too_big = false;
    }
    return SMFIS_CONTINUE;
}

static sfsistat floor_close(SMFICTX *ctx)
{
    struct floor_conn *c = smfi_getpriv(ctx);

    if (c != NULL) {
        g_byte_array_free(c->body, TRUE);
        g_free(c);
        smfi_setpriv(ctx, NULL);
    }
    return SMFIS_CONTINUE;
}

static struct smfiDesc floor_desc = {
    .xxfi_name = "floor",
    .xxfi_version = SMFI_VERSION,
    .xxfi_flags = SMFIF_ADDHDRS | SMFIF_CHGHDRS | SMFIF_CHGBODY,
    .xxfi_envfrom = floor_envfrom,
    .xxfi_envrcpt = floor_envrcpt,
    .xxfi_header = floor_header,
    .xxfi_eoh = floor_eoh,
    .xxfi_body = floor_body,
    .xxfi_eom = floor_eom,
    .xxfi_abort = floor_abort,
    .xxfi_close = floor_close,
    .xxfi_negotiate = floor_negotiate,
};

int main(int argc, char **argv)
{
    const char *conn = NULL;

    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--version") == 0) {
            puts("floor-milter (mugaika benchmark)");
            return 0;
        }
        if (strcmp(argv[i], "--socket") == 0 && i + 1 < argc)
            conn = argv[++i];
    }
    if (conn == NULL) {
        fprintf(stderr, "usage: floor-milter --socket unix:/PATH | inet:PORT@HOST\n");
        return 64;
    }
    if (strncmp(conn, "unix:", 5) == 0)
        (void)unlink(conn + 5);
    if (smfi_setconn((char *)conn) != MI_SUCCESS || smfi_register(floor_desc) != MI_SUCCESS) {
        fprintf(stderr, "floor-milter: libmilter set-up failed for %s\n", conn);
        return 70;
    }
    return smfi_main() == MI_SUCCESS ? 0 : 70;
}
