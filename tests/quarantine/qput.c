/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * NAME
 *	qput 1 (test only)
 * SUMMARY
 *	put a file into a quarantine and print its id
 * SYNOPSIS
 *	qput DIR FILE SENDER SUBJECT [RESULT [PARTS_JSON]]
 * DESCRIPTION
 *	Creates DIR when missing (mg_quarantine_open), streams FILE in
 *	4 KiB reads through mg_qwrite_feed and commits a record of kind
 *	"message" with the given sender, subject, result and parts JSON
 *	(recipients "rcpt@example.org", message id "<qput@example.org>").
 * DIAGNOSTICS
 *	Exit 0 and the id on stdout; 1 and the error on stderr.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <unistd.h>

#include <glib.h>

#include <mugaika/quarantine.h>

int main(int argc, char **argv)
{
    struct mg_quarantine *q;
    struct mg_qwrite *w;
    struct mg_qrecord rec = {0};
    GError *e = NULL;
    char buf[4096];
    ssize_t n;
    int fd;

    if (argc < 5 || argc > 7) {
        fputs("usage: qput DIR FILE SENDER SUBJECT [RESULT [PARTS_JSON]]\n", stderr);
        return 2;
    }
    fd = open(argv[2], O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        fprintf(stderr, "qput: %s: %s\n", argv[2], g_strerror(errno));
        return 1;
    }
    q = mg_quarantine_open(argv[1], &e);
    if (q == NULL || (w = mg_quarantine_write_begin(q, &e)) == NULL)
        goto fail;
    while ((n = read(fd, buf, sizeof buf)) > 0) {
        if (!mg_qwrite_feed(w, buf, (size_t)n, &e)) {
            mg_qwrite_abort(w);
            goto fail;
        }
    }
    if (n < 0) {
        fprintf(stderr, "qput: %s: %s\n", argv[2], g_strerror(errno));
        mg_qwrite_abort(w);
        mg_quarantine_close(q);
        return 1;
    }
    rec.kind = g_strdup("message");
    rec.message_id = g_strdup("<qput@example.org>");
    rec.sender = g_strdup(argv[3]);
    rec.recipients = g_strdup("rcpt@example.org");
    rec.subject = g_strdup(argv[4]);
    rec.result = g_strdup(argc > 5 ? argv[5] : "rewritten");
    rec.parts_json = g_strdup(argc > 6 ? argv[6] : "[]");
    if (!mg_qwrite_commit(w, &rec, &e))
        goto fail;
    fprintf(stdout, "%s\n", rec.id);
    mg_qrecord_clear(&rec);
    mg_quarantine_close(q);
    close(fd);
    return 0;
fail:
    fprintf(stderr, "qput: %s\n", e->message);
    g_error_free(e);
    mg_qrecord_clear(&rec);
    mg_quarantine_close(q);
    close(fd);
    return 1;
}
