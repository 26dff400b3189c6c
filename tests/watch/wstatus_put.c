/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * NAME
 *	wstatus_put 1
 * SUMMARY
 *	test helper: writes a known status.json with mg_wstatus_write
 * SYNOPSIS
 *	wstatus_put STATE_DIR NOW [stopped]
 * DESCRIPTION
 *	For tests/watch/test_wstatus_cli.py: a status with 2 workers,
 *	queue 5, 1 in progress, and the records below, written at NOW
 *	(seconds since the epoch) into STATE_DIR/status.json. "stopped":
 *	as a daemon writes it at exit (running false).
 *
 *	default/alice: 2 done (1300 bytes), 3 of 3 files today (limit 3,
 *	1000 bytes), 2 files over quota (big1.bin 700, big2.bin 800);
 *	default/"": 1 failed twice ("x", "pipeline failed"); lgwan/山田:
 *	1 refused ("link", "symlink"), 1 retry; default/"ev\033il": 1
 *	refused with a name that is not UTF-8 ("n\376.exe").
 * DIAGNOSTICS
 *	0, or 1 with the error on standard error.
 */
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <glib.h>

#include <mugaika/wstatus.h>

int main(int argc, char **argv)
{
    struct mg_wstatus *s;
    GError *err = NULL;
    gint64 now;
    int fd;
    bool ok;

    if (argc < 3 || !g_ascii_string_to_signed(argv[2], 10, 0, G_MAXINT64, &now, NULL)) {
        fputs("usage: wstatus_put STATE_DIR NOW [stopped]\n", stderr);
        return 1;
    }
    fd = open(argv[1], O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) {
        perror(argv[1]);
        return 1;
    }
    s = mg_wstatus_new(2);
    mg_wstatus_record(s, "default", "alice", "a.pdf", MG_WSTATUS_DONE, 1234, NULL, now - 50);
    mg_wstatus_record(s, "default", "alice", "b.pdf", MG_WSTATUS_DONE, 66, NULL, now - 40);
    for (int i = 0; i < 3; i++)
        mg_wstatus_quota_take(s, "default", "alice", 100, 3, 1000, now - 60);
    mg_wstatus_over_quota_add(s, "default", "alice", "big1.bin", 700);
    mg_wstatus_over_quota_add(s, "default", "alice", "big2.bin", 800);
    mg_wstatus_record(s, "default", "", "x", MG_WSTATUS_FAILED, 5, "pipeline failed", now - 30);
    mg_wstatus_record(s, "default", "", "x", MG_WSTATUS_FAILED, 5, "pipeline failed", now - 20);
    mg_wstatus_record(s, "lgwan", "\xe5\xb1\xb1\xe7\x94\xb0", "link", MG_WSTATUS_REFUSED, 0,
                      "symlink", now - 15);
    mg_wstatus_record(s, "lgwan", "\xe5\xb1\xb1\xe7\x94\xb0", "w.doc", MG_WSTATUS_RETRY, 9,
                      "file changed", now - 10);
    mg_wstatus_record(s, "default", "ev\033il", "n\376.exe", MG_WSTATUS_REFUSED, 1, "fifo",
                      now - 5);
    mg_wstatus_set_queue(s, 5);
    mg_wstatus_set_in_progress(s, 1);
    if (argc > 3 && strcmp(argv[3], "stopped") == 0)
        mg_wstatus_set_running(s, false);
    ok = mg_wstatus_write(s, fd, now, &err);
    if (!ok) {
        fprintf(stderr, "wstatus_put: %s\n", err->message);
        g_error_free(err);
    }
    mg_wstatus_free(s);
    close(fd);
    return ok ? 0 : 1;
}
