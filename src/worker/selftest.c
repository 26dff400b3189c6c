/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * NAME
 *	selftest 3
 * SUMMARY
 *	a handler that misbehaves on request, for the isolation tests
 * DESCRIPTION
 *	Option do= picks what it does:
 *	  echo	copies the item to one output (name=, type= options);
 *	  crash	dereferences a null pointer;
 *	  hang	spins without end (the deadline or RLIMIT_CPU stops it);
 *	  sleep	sleeps without end (only the deadline stops it);
 *	  alloc	allocates and touches memory until allocation fails;
 *	  flood	emits outputs without end;
 *	  probe	tries what the sandbox forbids (socket, exec, fork, a
 *		file write, a signal to its parent) and notes each result as
 *		"allowed" or "refused: ERRNO".
 *	The tests in tests/cdr drive it; it can do nothing the sandbox
 *	does not already allow any handler to do.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/xattr.h>
#include <sys/wait.h>
#include <unistd.h>

#include "worker/handlers.h"

static void probe_result(struct mgw *w, const char *what, int rc)
{
    if (rc >= 0)
        mgw_note(w, "info", "%s: allowed", what);
    else
        mgw_note(w, "info", "%s: refused: %s", what, g_strerror(errno));
}

/* What a failed attempt ended with, as the tests compare it: a string
 * never to be freed (static, or g_strerror's). */
static const char *errno_word(int e)
{
    switch (e) {
    case 0:
        return "a zero-byte write";
    case EFBIG:
        return "EFBIG";
    case EMFILE:
        return "EMFILE";
    default:
        return g_strerror(e);
    }
}

/* RLIMIT_FSIZE, by trying: the seccomp filter refuses every open for
 * writing and fd 1 and 2 are pipes (no size limit applies to them), but
 * an anonymous memory file is still allowed, and the kernel checks its
 * writes against RLIMIT_FSIZE like any regular file's (SIGXFSZ is
 * ignored: the write fails with EFBIG). Grows it by 4 KiB writes, 1 MiB
 * at most; a short write is the limit reached inside a chunk. */
static void probe_fsize(struct mgw *w)
{
    static const char chunk[4096];
    const uint64_t cap = 1u << 20;
    uint64_t total = 0;
    int fd = memfd_create("mugaika-selftest", MFD_CLOEXEC);
    int err = 0;

    if (fd < 0) {
        mgw_note(w, "info", "fsize: no memfd: %s", g_strerror(errno));
        return;
    }
    while (total < cap) {
        ssize_t n = write(fd, chunk, sizeof chunk);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            err = n < 0 ? errno : 0;
            break;
        }
        total += (uint64_t)n;
    }
    close(fd);
    if (total >= cap)
        mgw_note(w, "info", "fsize: %" G_GUINT64_FORMAT " bytes, no limit reached", total);
    else
        mgw_note(w, "info", "fsize: %" G_GUINT64_FORMAT " bytes, then %s", total, errno_word(err));
}

/* RLIMIT_NOFILE, by trying: fd 0 duplicated until the kernel refuses.
 * dup() takes the lowest free descriptor, so when it fails with EMFILE
 * every descriptor below the limit is in use: the number open then is
 * the limit (descriptors above it, left open by whoever started the
 * worker, would be counted too: the parent leaves none). */
static void probe_nofile(struct mgw *w)
{
    enum { CAP = 4096 };
    static int fds[CAP];
    int got = 0, open_now = 0, err = 0;

    while (got < CAP) {
        int fd = dup(0);
        if (fd < 0) {
            err = errno;
            break;
        }
        fds[got++] = fd;
    }
    for (int fd = 0; fd < CAP + 64; fd++)
        if (fcntl(fd, F_GETFD) != -1)
            open_now++;
    for (int i = 0; i < got; i++)
        close(fds[i]);
    if (got >= CAP)
        mgw_note(w, "info", "nofile: %d open, no limit reached", open_now);
    else
        mgw_note(w, "info", "nofile: %d open, then %s", open_now, errno_word(err));
}

static void probe(struct mgw *w)
{
    char *const argv[] = {(char *)"/bin/true", NULL};
    int fd;
    pid_t pid;

    fd = socket(AF_INET, SOCK_STREAM, 0);
    probe_result(w, "socket-inet", fd);
    if (fd >= 0)
        close(fd);
    fd = socket(AF_UNIX, SOCK_STREAM, 0);
    probe_result(w, "socket-unix", fd);
    if (fd >= 0)
        close(fd);
    pid = fork();
    if (pid == 0)
        _exit(0);
    probe_result(w, "fork", pid);
    if (pid > 0)
        waitpid(pid, NULL, 0);
    probe_result(w, "exec", execv(argv[0], argv));
    fd = open(mgw_option(w, "file") != NULL ? mgw_option(w, "file") : "/tmp/mugaika-selftest",
              O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd >= 0) {
        ssize_t n = write(fd, "x", 1);
        close(fd);
        probe_result(w, "file-write", n == 1 ? 0 : -1);
    } else {
        probe_result(w, "file-write", -1);
    }
    if (mgw_option(w, "secret") != NULL) {
        /* a file the worker's user may read, outside what it needs */
        fd = open(mgw_option(w, "secret"), O_RDONLY | O_CLOEXEC);
        probe_result(w, "read-outside", fd);
        if (fd >= 0)
            close(fd);
    }
    fd = open("/usr/share/fonts", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    probe_result(w, "read-fonts", fd);
    if (fd >= 0)
        close(fd);
    mgw_note(w, "info", "landlock: %s", mgw_landlock());
    probe_result(w, "kill-parent", kill(getppid(), 0));
    {
        /* the parent's limits, priority and signals by other routes */
        struct rlimit rl;
        char path[64];
        int pfd;
        if (prlimit(getppid(), RLIMIT_NOFILE, NULL, &rl) == 0)
            probe_result(w, "prlimit-parent", prlimit(getppid(), RLIMIT_NOFILE, &rl, NULL));
        else
            probe_result(w, "prlimit-parent", -1);
        errno = 0;
        int prio = getpriority(PRIO_PROCESS, (id_t)getppid());
        probe_result(w, "setpriority-parent",
                     errno != 0 ? -1 : setpriority(PRIO_PROCESS, (id_t)getppid(), prio));
        g_snprintf(path, sizeof path, "/proc/%d", (int)getppid());
        pfd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        probe_result(w, "pidfd-signal-parent",
                     pfd < 0 ? -1 : (int)syscall(SYS_pidfd_send_signal, pfd, 0, NULL, 0));
        if (pfd >= 0)
            close(pfd);
        probe_result(w, "setxattr", fsetxattr(0, "user.mugaika", "x", 1, 0));
        probe_result(w, "fcntl-setown", fcntl(0, F_SETOWN, getppid()));
    }
    probe_fsize(w);
    probe_nofile(w);
    mgw_note(w, "info", "asan: %s", mgw_sandbox_asan() ? "yes" : "no");
}

enum mgw_status mgw_selftest(struct mgw *w)
{
    const char *what = mgw_option(w, "do");

    if (what == NULL || strcmp(what, "echo") == 0) {
        size_t len;
        unsigned char *buf = mgw_input_read_all(w, 64u << 20, &len);
        bool ok;
        if (buf == NULL)
            return MGW_FAIL;
        ok = mgw_out_file(w, mgw_option(w, "name"), mgw_option(w, "type"), buf, len);
        g_free(buf);
        return ok ? MGW_OK : MGW_FAIL;
    }
    if (strcmp(what, "crash") == 0) {
        volatile int *p = NULL;
        *p = 1;
        return MGW_FAIL;
    }
    if (strcmp(what, "hang") == 0) {
        volatile unsigned long n = 0;
        for (;;)
            n++;
    }
    if (strcmp(what, "sleep") == 0) {
        for (;;)
            pause();
    }
    if (strcmp(what, "alloc") == 0) {
        size_t total = 0;
        for (;;) {
            char *p = malloc(16u << 20);
            if (p == NULL)
                break;
            memset(p, 1, 16u << 20);
            total += 16u << 20;
        }
        mgw_reason(w, "allocation failed after %zu MiB", total >> 20);
        return MGW_LIMIT;
    }
    if (strcmp(what, "flood") == 0) {
        static const char chunk[4096];
        for (unsigned i = 0;; i++) {
            char name[32];
            g_snprintf(name, sizeof name, "f%u.bin", i);
            if (!mgw_out_begin(w, name, NULL, 0))
                return MGW_FAIL;
            for (int k = 0; k < 256; k++)
                if (!mgw_out_write(w, chunk, sizeof chunk))
                    return MGW_FAIL;
            if (!mgw_out_end(w))
                return MGW_FAIL;
        }
    }
    if (strcmp(what, "probe") == 0) {
        probe(w);
        return MGW_OK;
    }
    mgw_reason(w, "unknown do=%s", what);
    return MGW_FAIL;
}
