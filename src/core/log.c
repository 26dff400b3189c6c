/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * NAME
 *	log 3
 * SUMMARY
 *	syslog lines and appended record files
 * DESCRIPTION
 *	The one place (with src/cli/) that writes diagnostics directly;
 *	see include/mugaika/log.h.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <syslog.h>

#include <mugaika/log.h>

static GMutex append_lock;

void mg_log_open(const char *ident, bool also_stderr, int level)
{
    openlog(ident, LOG_PID | LOG_NDELAY | (also_stderr ? LOG_PERROR : 0), LOG_MAIL);
    setlogmask(LOG_UPTO(level));
}

void mg_log(int prio, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsyslog(prio, fmt, ap);
    va_end(ap);
}

void mg_log_stderr(const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

bool mg_log_append(const char *path, const char *line, GError **err)
{
    bool to_stderr = strcmp(path, "-") == 0;
    bool ok = true;
    FILE *f;

    g_mutex_lock(&append_lock);
    f = to_stderr ? stderr : fopen(path, "ae");
    if (f == NULL) {
        g_set_error(err, G_FILE_ERROR, g_file_error_from_errno(errno), "%s: %s", path,
                    g_strerror(errno));
        ok = false;
    } else {
        if (fprintf(f, "%s\n", line) < 0 || fflush(f) != 0) {
            g_set_error(err, G_FILE_ERROR, g_file_error_from_errno(errno), "%s: %s", path,
                        g_strerror(errno));
            ok = false;
        }
        if (!to_stderr && fclose(f) != 0 && ok) {
            g_set_error(err, G_FILE_ERROR, g_file_error_from_errno(errno), "%s: %s", path,
                        g_strerror(errno));
            ok = false;
        }
    }
    g_mutex_unlock(&append_lock);
    return ok;
}

void mg_log_close(void)
{
    closelog();
}
