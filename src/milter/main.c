/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * NAME
 *	mugaika-milter 8
 * SUMMARY
 *	the sanitising gateway inside Postfix or sendmail
 * SYNOPSIS
 *	mugaika-milter [--socket unix:/PATH | inet:PORT@HOST] [--config FILE]
 *		[--rules DIR] [--quarantine DIR] [--clamav-db DIR]
 *		[--user USER] [--group GROUP] [--pidfile FILE] [--foreground]
 * DESCRIPTION
 *	A libmilter daemon: every message the MTA hands over is run
 *	through the sanitising pipeline while it arrives, and replaced by
 *	the rebuilt message at its end (callbacks.c). Options override
 *	the configuration file (default /etc/mugaika/mugaika.conf when it
 *	exists; docs/configuration.md).
 *
 *	Start: configuration, socket (as root when a user is given, then
 *	the socket is handed to that user and privileges are dropped),
 *	policy (rules + ClamAV database: the start fails when they do not
 *	load), quarantine; then, unless --foreground, into the background.
 *
 *	Signals: libmilter runs smfi_main in a thread of its own and
 *	keeps a signal thread that takes SIGHUP as "stop". So the main
 *	thread is the only one with SIGHUP, SIGTERM and SIGINT unblocked:
 *	Linux gives a signal sent to the process to its main thread when
 *	that thread does not block it, before any other thread. SIGHUP
 *	reloads the policy aside and swaps it only when it loaded;
 *	SIGTERM and SIGINT stop, letting messages in progress finish.
 * DIAGNOSTICS
 *	syslog (facility mail), also standard error with --foreground.
 *	Exit: 0 stopped by a signal; 64 usage; 70 libmilter stopped by
 *	itself; 75 socket or quarantine unavailable; 78 configuration.
 */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <syslog.h>
#include <unistd.h>

#include <glib.h>
#include <libmilter/mfapi.h>

#include <mugaika/cdr.h>
#include <mugaika/log.h>

#include "milter/milter.h"

#define EX_OK       0
#define EX_USAGE    64
#define EX_SOFTWARE 70
#define EX_TEMPFAIL 75
#define EX_CONFIG   78

#define DRAIN_SECONDS 60 /* how long a stop waits for messages in progress */

/* An absolute form of a path from the command line or the file: the
 * daemon changes to / and reloads later. */
static void make_absolute(char **path)
{
    char *abs;

    if (*path == NULL || **path == '\0' || strcmp(*path, "-") == 0 || g_path_is_absolute(*path))
        return;
    abs = g_canonicalize_filename(*path, NULL);
    g_free(*path);
    *path = abs;
}

static int sigpipe[2] = {-1, -1};

static void on_signal(int sig)
{
    int saved = errno;
    char c = (char)sig;

    if (write(sigpipe[1], &c, 1) < 0) {
        /* the pipe is full: a signal of that kind is pending anyway */
    }
    errno = saved;
}

static gpointer run_milter(gpointer unused)
{
    char c = 0;
    int rc;

    (void)unused;
    rc = smfi_main();
    if (write(sigpipe[1], &c, 1) < 0) {
        /* cannot happen: the main thread reads it */
    }
    return GINT_TO_POINTER(rc);
}

/* "unix:/p" or "local:/p" -> "/p"; NULL for inet sockets */
static const char *unix_path(const char *conn)
{
    if (g_str_has_prefix(conn, "unix:"))
        return conn + 5;
    if (g_str_has_prefix(conn, "local:"))
        return conn + 6;
    return NULL;
}

/* Turns Nagle's algorithm off on libmilter's TCP listening socket, which
 * every accepted connection inherits (Linux copies the option). At the
 * end of a message the milter writes its modifications as many small
 * packets without waiting for an answer; with Nagle each one after the
 * first waits for the MTA's delayed acknowledgement (40 ms on Linux).
 * libmilter does not expose the socket, so it is found among the open
 * descriptors: the one listening TCP socket. */
static void tcp_nodelay_listener(void)
{
    GDir *d = g_dir_open("/proc/self/fd", 0, NULL);
    const char *name;
    int one = 1;

    if (d == NULL)
        return;
    while ((name = g_dir_read_name(d)) != NULL) {
        int fd = (int)g_ascii_strtoll(name, NULL, 10), v = 0, dom = 0;
        socklen_t len = sizeof v, dlen = sizeof dom;
        if (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &v, &len) != 0 || v == 0 ||
            getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &dom, &dlen) != 0 ||
            (dom != AF_INET && dom != AF_INET6))
            continue;
        if (setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one) != 0)
            mg_log(LOG_WARNING, "TCP_NODELAY on the milter socket: %s", g_strerror(errno));
    }
    g_dir_close(d);
}

static bool drop_privileges(const char *user, const char *group, const char *sock)
{
    struct passwd *pw = NULL;
    struct group *gr = NULL;
    uid_t uid;
    gid_t gid;

    if (user == NULL && group == NULL)
        return true;
    if (user == NULL && getuid() == 0) {
        mg_log(LOG_ERR, "--group %s without --user would keep root's user id: give --user too",
               group);
        return false;
    }
    if (user != NULL && (pw = getpwnam(user)) == NULL) {
        mg_log(LOG_ERR, "user %s: no such user", user);
        return false;
    }
    if (group != NULL && (gr = getgrnam(group)) == NULL) {
        mg_log(LOG_ERR, "group %s: no such group", group);
        return false;
    }
    uid = pw != NULL ? pw->pw_uid : getuid();
    gid = gr != NULL ? gr->gr_gid : pw != NULL ? pw->pw_gid : getgid();
    if (sock != NULL && (chown(sock, uid, gid) != 0 || chmod(sock, 0660) != 0)) {
        mg_log(LOG_ERR, "socket %s: %s", sock, g_strerror(errno));
        return false;
    }
    if (getuid() == 0) {
        if ((pw != NULL ? initgroups(pw->pw_name, gid) : setgroups(0, NULL)) != 0 ||
            setgid(gid) != 0 || (pw != NULL && setuid(uid) != 0) ||
            (pw != NULL && uid != 0 && (getuid() == 0 || geteuid() == 0))) {
            mg_log(LOG_ERR, "cannot become %s:%s: %s", user != NULL ? user : "-",
                   group != NULL ? group : "-", g_strerror(errno));
            return false;
        }
    } else if (uid != getuid() || gid != getgid()) {
        mg_log(LOG_ERR, "--user/--group need root (running as uid %u)", (unsigned)getuid());
        return false;
    }
    return true;
}

static bool write_pidfile(const char *path)
{
    char pid[32];
    GError *e = NULL;

    g_snprintf(pid, sizeof pid, "%ld\n", (long)getpid());
    if (!g_file_set_contents(path, pid, -1, &e)) {
        mg_log(LOG_ERR, "pid file: %s", e->message);
        g_error_free(e);
        return false;
    }
    return true;
}

int main(int argc, char **argv)
{
    char *socket = NULL, *config = NULL, *rules = NULL, *qdir = NULL, *db = NULL;
    char *user = NULL, *group = NULL, *pidfile = NULL;
    gboolean foreground = FALSE, version = FALSE;
    GOptionEntry entries[] = {
        {"socket", 0, 0, G_OPTION_ARG_STRING, &socket,
         "unix:/PATH or inet:PORT@HOST (default from the configuration)", "SOCKET"},
        {"config", 0, 0, G_OPTION_ARG_FILENAME, &config, "configuration file", "FILE"},
        {"rules", 0, 0, G_OPTION_ARG_FILENAME, &rules, "policy directory", "DIR"},
        {"quarantine", 0, 0, G_OPTION_ARG_FILENAME, &qdir, "quarantine directory", "DIR"},
        {"clamav-db", 0, 0, G_OPTION_ARG_FILENAME, &db, "ClamAV database directory", "DIR"},
        {"user", 0, 0, G_OPTION_ARG_STRING, &user, "user to run as", "USER"},
        {"group", 0, 0, G_OPTION_ARG_STRING, &group, "group to run as", "GROUP"},
        {"pidfile", 0, 0, G_OPTION_ARG_FILENAME, &pidfile, "write the process id here", "FILE"},
        {"foreground", 0, 0, G_OPTION_ARG_NONE, &foreground,
         "stay in the foreground, log to standard error too", NULL},
        {"version", 0, 0, G_OPTION_ARG_NONE, &version, "print the version", NULL},
        {NULL, 0, 0, 0, NULL, NULL, NULL},
    };
    GOptionContext *ctx = g_option_context_new("- the mugaika sanitising milter");
    struct mg_config *cfg = &mg_milter.cfg;
    struct mg_policy *pol;
    struct sigaction sa;
    sigset_t set;
    GThread *th = NULL;
    GError *e = NULL;
    const char *sock_path;
    bool stopping = false;
    gint64 drain_until = 0; /* set at the first SIGTERM or SIGINT */
    int rc = EX_OK;

    /* every thread made from here on (libmilter's, libclamav's) blocks
     * the signals that the main thread takes */
    sigemptyset(&set);
    sigaddset(&set, SIGHUP);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);

    g_option_context_add_main_entries(ctx, entries, NULL);
    if (!g_option_context_parse(ctx, &argc, &argv, &e) || argc > 1) {
        mg_log_stderr("mugaika-milter: %s",
                      e != NULL ? e->message : "no arguments other than options");
        g_clear_error(&e);
        g_option_context_free(ctx);
        return EX_USAGE;
    }
    g_option_context_free(ctx);
    if (version) {
        puts("mugaika-milter " MUGAIKA_VERSION);
        return EX_OK;
    }
    if (!mg_config_load(config, cfg, &e)) {
        mg_log_stderr("mugaika-milter: configuration:\n%s", e->message);
        g_error_free(e);
        return EX_CONFIG;
    }
#define OVERRIDE(opt, field)                                                                       \
    if ((opt) != NULL) {                                                                           \
        g_free(cfg->field);                                                                        \
        cfg->field = (opt);                                                                        \
        (opt) = NULL;                                                                              \
    }
    OVERRIDE(socket, socket);
    OVERRIDE(rules, rules_dir);
    OVERRIDE(qdir, quarantine_dir);
    OVERRIDE(db, clamav_db);
    OVERRIDE(user, user);
    OVERRIDE(group, group);
#undef OVERRIDE
    g_free(config);
    make_absolute(&cfg->rules_dir);
    make_absolute(&cfg->quarantine_dir);
    make_absolute(&cfg->clamav_db);
    make_absolute(&cfg->audit);
    make_absolute(&cfg->spool_dir);
    make_absolute(&cfg->worker_dir);
    make_absolute(&pidfile);
    if (!mg_cdr_init(cfg->worker_dir, &e)) {
        mg_log_stderr("mugaika-milter: %s", e->message);
        g_error_free(e);
        return EX_CONFIG;
    }
    {
        char *why = mg_config_check_socket(cfg->socket);
        if (why != NULL) {
            mg_log_stderr("mugaika-milter: --socket: %s", why);
            g_free(why);
            return EX_USAGE;
        }
    }

    /* under systemd standard error goes to the journal, which gets the
     * syslog line already: copying it there would log everything twice */
    mg_log_open("mugaika-milter", foreground && getenv("JOURNAL_STREAM") == NULL, cfg->log_level);
    /* The CDR workers run as this user: they must not read this
     * process's memory or other messages' files through /proc/PID. */
    (void)prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);

    if (pipe2(sigpipe, O_CLOEXEC | O_NONBLOCK) != 0) {
        mg_log(LOG_ERR, "pipe: %s", g_strerror(errno));
        return EX_SOFTWARE;
    }
    if (smfi_register(*mg_milter_desc()) != MI_SUCCESS || smfi_setconn(cfg->socket) != MI_SUCCESS ||
        smfi_settimeout((int)cfg->milter_timeout) != MI_SUCCESS) {
        mg_log(LOG_ERR, "libmilter refused the settings (socket %s)", cfg->socket);
        return EX_CONFIG;
    }
    sock_path = unix_path(cfg->socket);
    umask(0007);
    if (smfi_opensocket(true) != MI_SUCCESS) {
        mg_log(LOG_ERR, "cannot listen on %s: %s", cfg->socket, g_strerror(errno));
        return EX_TEMPFAIL;
    }
    if (sock_path == NULL)
        tcp_nodelay_listener();
    if (!drop_privileges(cfg->user, cfg->group, sock_path))
        return EX_CONFIG;

    pol = mg_policy_load(cfg->rules_dir, cfg->clamav_db, &e);
    if (pol == NULL) {
        mg_log(LOG_ERR, "%s", e->message);
        rc = e->code == MG_POLICY_CONFIG ? EX_CONFIG : EX_TEMPFAIL;
        g_error_free(e);
        return rc;
    }
    mg_policy_install(pol);
    mg_milter.quarantine = mg_quarantine_open(
        cfg->quarantine_dir != NULL ? cfg->quarantine_dir : MG_QUARANTINE_DEFAULT_DIR, &e);
    if (mg_milter.quarantine == NULL) {
        mg_log(LOG_ERR, "quarantine: %s", e->message);
        g_error_free(e);
        mg_policy_shutdown();
        return EX_TEMPFAIL;
    }
    if (!foreground && daemon(0, 0) != 0) {
        mg_log(LOG_ERR, "cannot go into the background: %s", g_strerror(errno));
        return EX_SOFTWARE;
    }
    if (pidfile != NULL && !write_pidfile(pidfile))
        return EX_TEMPFAIL;

    th = g_thread_new("milter", run_milter, NULL);

    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sa.sa_flags = SA_RESTART;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGHUP, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    pthread_sigmask(SIG_UNBLOCK, &set, NULL);
    mg_log(LOG_INFO, "listening on %s (policy %s, ClamAV database %s)", cfg->socket,
           cfg->rules_dir != NULL ? cfg->rules_dir : "built-in",
           cfg->clamav_db != NULL ? cfg->clamav_db : "default");

    while (!stopping) {
        fd_set rd;
        struct timeval tick = {0, 100000};
        char c;
        ssize_t n;

        FD_ZERO(&rd);
        FD_SET(sigpipe[0], &rd);
        if (select(sigpipe[0] + 1, &rd, NULL, NULL, drain_until != 0 ? &tick : NULL) < 0 &&
            errno != EINTR)
            break;
        while (!stopping && (n = read(sigpipe[0], &c, 1)) == 1) {
            if (c == SIGHUP) {
                mg_log(LOG_INFO, "SIGHUP: reloading the policy");
                if (mg_policy_reload(cfg->rules_dir, cfg->clamav_db, &e)) {
                    struct mg_policy *p = mg_policy_pin();
                    mg_log(LOG_INFO, "policy %u in use", p != NULL ? p->generation : 0);
                    mg_policy_unref(p);
                } else {
                    mg_log(LOG_ERR, "reload failed, the previous policy stays: %s", e->message);
                    g_clear_error(&e);
                }
            } else if ((c == SIGTERM || c == SIGINT) && drain_until == 0) {
                /* new messages get 451 from now on; the ones in progress
                 * may finish (libmilter stops serving every connection
                 * at smfi_stop, so it comes after) */
                mg_log(LOG_INFO, "%s: stopping once the %u message(s) in progress are done",
                       c == SIGTERM ? "SIGTERM" : "SIGINT", mg_milter_in_flight());
                mg_milter_drain();
                drain_until = g_get_monotonic_time() + DRAIN_SECONDS * G_USEC_PER_SEC;
            } else if (c == SIGTERM || c == SIGINT) {
                mg_log(LOG_INFO, "second %s: stopping now", c == SIGTERM ? "SIGTERM" : "SIGINT");
                drain_until = 1;
            } else {
                /* smfi_main returned without being asked to (libmilter's
                 * own signal thread took a signal meant for this one) */
                mg_log(LOG_ERR, "libmilter stopped by itself");
                rc = EX_SOFTWARE;
                stopping = true;
            }
        }
        if (!stopping && drain_until != 0 &&
            (mg_milter_in_flight() == 0 || g_get_monotonic_time() >= drain_until)) {
            /* the last reply is written just after its message ends */
            g_usleep(G_USEC_PER_SEC / 5);
            smfi_stop();
            stopping = true;
        }
    }
    if (GPOINTER_TO_INT(g_thread_join(th)) != MI_SUCCESS && rc == EX_OK)
        rc = EX_SOFTWARE;
    if (mg_milter_in_flight() > 0)
        mg_log(LOG_WARNING, "%u message(s) still in progress at exit: the MTA retries them",
               mg_milter_in_flight());
    else
        mg_quarantine_close(mg_milter.quarantine);
    mg_policy_shutdown();
    if (pidfile != NULL)
        unlink(pidfile);
    mg_log(LOG_INFO, "stopped");
    mg_config_clear(cfg);
    g_free(pidfile);
    mg_log_close();
    return rc;
}
