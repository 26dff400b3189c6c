/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * NAME
 *	sandbox 3
 * SUMMARY
 *	confine a CDR worker before it parses anything
 * DESCRIPTION
 *	mgw_sandbox() is called once, before the handler touches the item:
 *
 *	- rlimits: RLIMIT_CPU (the kernel sends SIGXCPU, then SIGKILL),
 *	  RLIMIT_AS (allocations fail past it; not set under
 *	  AddressSanitizer, whose shadow memory is a huge reservation: that
 *	  build refuses single allocations over 1 GiB instead,
 *	  asan_options.c),
 *	  RLIMIT_NOFILE, RLIMIT_FSIZE 0 (no file can grow: results go to
 *	  the pipe on fd 1; SIGXFSZ is ignored so a write fails with EFBIG
 *	  instead), RLIMIT_CORE 0;
 *	- PR_SET_NO_NEW_PRIVS and PR_SET_DUMPABLE 0 (no set-uid gain, no
 *	  ptrace by other processes of the same user); every capability
 *	  dropped (a worker started by root cannot bypass permissions);
 *	- Landlock (when the kernel has it): from here on the worker can
 *	  open nothing but the system's libraries and data (/usr, /lib,
 *	  fontconfig's configuration and cache, /dev/null, /dev/urandom)
 *	  for reading; not the quarantine, the spool, other users' or the
 *	  daemon's files, the rest of /etc, or /proc (but its own, in the
 *	  AddressSanitizer build). The item is already open on fd 0 and the
 *	  pipes on fd 1 and 2, which Landlock does not touch. A kernel
 *	  without Landlock leaves reading as the user's permissions allow
 *	  (the seccomp filter still refuses every change); mgw_landlock()
 *	  says which;
 *	- a seccomp filter (libseccomp) that fails with EPERM every system
 *	  call a document parser never needs and an attacker would want:
 *	  sockets (so no network), exec, fork, ptrace, other processes'
 *	  memory, mounts and namespaces, kernel modules, BPF, perf, key
 *	  rings, userfaultfd, reboot and clock setting, and every change
 *	  to the file system (open for writing, create, truncate, unlink,
 *	  rename, mkdir, links, chmod, chown, extended attributes,
 *	  open_by_handle_at): a worker runs as the daemon's user, which
 *	  owns the quarantine. Limits, priorities, scheduling and fcntl
 *	  signal ownership reach the worker itself only (prlimit64 and
 *	  sched_* with pid 0, setpriority with who 0); pidfd_send_signal,
 *	  ioprio_set and System V / POSIX IPC are refused. It is a deny list
 *	  because the libraries run here (libarchive, libxml2, poppler,
 *	  cairo, fontconfig, qpdf, image codecs) make a wide and changing
 *	  set of harmless calls; docs/architecture.md explains the choice.
 *	  Threads stay allowed (clone without a new process is how glibc
 *	  starts them); fork, vfork and clone without CLONE_THREAD are refused (clone3
 *	  reports ENOSYS so that glibc falls back to clone), and kill and
 *	  tgkill only reach the worker itself.
 *
 *	  In the AddressSanitizer build (the tests' second build) ptrace and
 *	  clone with CLONE_VM stay allowed, because LeakSanitizer checks
 *	  the worker at exit from a memory-sharing clone that ptraces the
 *	  threads; fork is still refused there.
 */
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>

#include <linux/capability.h>
#include <linux/landlock.h>
#include <sys/stat.h>
#include <unistd.h>

#include <seccomp.h>

#include "worker/mgw.h"

static bool set_limit(int res, rlim_t v, const char *what, GError **err)
{
    struct rlimit rl = {v, v};

    if (setrlimit(res, &rl) != 0) {
        g_set_error(err, G_FILE_ERROR, g_file_error_from_errno(errno), "setrlimit %s: %s", what,
                    g_strerror(errno));
        return false;
    }
    return true;
}

/* System calls a worker is refused (EPERM). */
static const char *const denied[] = {
    "socket",
    "socketpair",
    "connect",
    "bind",
    "listen",
    "accept",
    "accept4",
    "sendto",
    "sendmsg",
    "sendmmsg",
    "recvfrom",
    "recvmsg",
    "recvmmsg",
    "execve",
    "execveat",
    "fork",
    "vfork",
#ifndef MGW_ASAN
    "ptrace", /* LeakSanitizer stops the threads with it at exit */
#endif
    "process_vm_readv",
    "process_vm_writev",
    "kcmp",
    "pidfd_getfd",
    "pidfd_open",
    "mount",
    "umount2",
    "pivot_root",
    "chroot",
    "unshare",
    "setns",
    "move_mount",
    "open_tree",
    "fsopen",
    "fsmount",
    "fspick",
    "mount_setattr",
    "init_module",
    "finit_module",
    "delete_module",
    "kexec_load",
    "kexec_file_load",
    "bpf",
    "perf_event_open",
    "userfaultfd",
    "keyctl",
    "add_key",
    "request_key",
    "reboot",
    "swapon",
    "swapoff",
    "settimeofday",
    "clock_settime",
    "clock_adjtime",
    "adjtimex",
    "acct",
    "quotactl",
    "syslog",
    "personality",
    "io_uring_setup",
    "io_uring_enter",
    "io_uring_register",
    "setuid",
    "setgid",
    "setreuid",
    "setregid",
    "setresuid",
    "setresgid",
    "setgroups",
    "setfsuid",
    "setfsgid",
    "tkill",
    "rt_sigqueueinfo",
    "rt_tgsigqueueinfo",
    "mknod",
    "mknodat",
    "link",
    "linkat",
    "symlink",
    "symlinkat",
    "unlink",
    "unlinkat",
    "rename",
    "renameat",
    "renameat2",
    "mkdir",
    "mkdirat",
    "rmdir",
    "truncate",
    "ftruncate",
    "chmod",
    "fchmod",
    "fchmodat",
    "chown",
    "fchown",
    "lchown",
    "fchownat",
    "utime",
    "utimes",
    "futimesat",
    "utimensat",
    "creat",
    /* extended attributes carry ACLs: a chmod by another name */
    "setxattr",
    "lsetxattr",
    "fsetxattr",
    "removexattr",
    "lremovexattr",
    "fremovexattr",
    /* other ways to reach files or processes */
    "open_by_handle_at",
    "name_to_handle_at",
    "pidfd_send_signal",
    "ioprio_set",
    "shmget",
    "shmat",
    "msgget",
    "semget",
    "mq_open",
};

/* A worker started by root (the CLI, or a milter without --user) keeps
 * no capability: it cannot bypass file permissions or raise its limits. */
static bool drop_capabilities(GError **err)
{
    struct __user_cap_header_struct h = {_LINUX_CAPABILITY_VERSION_3, 0};
    struct __user_cap_data_struct d[2];

    memset(d, 0, sizeof d);
    (void)prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0);
    if (geteuid() == 0)
        for (int c = 0; c <= CAP_LAST_CAP; c++)
            (void)prctl(PR_CAPBSET_DROP, c, 0, 0, 0);
    /* nothing to drop (the usual case: a daemon's own account); a
     * seccomp filter of the service manager may refuse capset itself */
    if (syscall(SYS_capget, &h, d) == 0 &&
        (d[0].effective | d[0].permitted | d[0].inheritable | d[1].effective | d[1].permitted |
         d[1].inheritable) == 0)
        return true;
    memset(d, 0, sizeof d);
    h.version = _LINUX_CAPABILITY_VERSION_3;
    h.pid = 0;
    if (syscall(SYS_capset, &h, d) != 0) {
        g_set_error(err, G_FILE_ERROR, g_file_error_from_errno(errno), "capset: %s",
                    g_strerror(errno));
        return false;
    }
    return true;
}

static bool apply_seccomp(GError **err)
{
    scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ALLOW);
    int rc = 0;

    if (ctx == NULL) {
        g_set_error(err, G_FILE_ERROR, G_FILE_ERROR_FAILED, "seccomp_init failed");
        return false;
    }
    for (size_t i = 0; i < G_N_ELEMENTS(denied) && rc == 0; i++) {
        int nr = seccomp_syscall_resolve_name(denied[i]);
        if (nr == __NR_SCMP_ERROR)
            continue; /* not on this architecture */
        rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), nr, 0);
    }
    /* files open for reading only: no write, create or truncate */
    {
        static const int open_bits[] = {O_WRONLY, O_RDWR, O_CREAT, O_TRUNC};
        for (size_t i = 0; i < G_N_ELEMENTS(open_bits) && rc == 0; i++) {
            scmp_datum_t b = (scmp_datum_t)open_bits[i];
            rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(open), 1,
                                  SCMP_A1(SCMP_CMP_MASKED_EQ, b, b));
            if (rc == 0)
                rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(openat), 1,
                                      SCMP_A2(SCMP_CMP_MASKED_EQ, b, b));
        }
    }
    if (rc == 0)
        rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(ENOSYS), SCMP_SYS(openat2), 0);
    /* clone3 "does not exist" (glibc then starts threads with clone);
     * clone only for threads: fork() is clone without CLONE_THREAD */
    if (rc == 0)
        rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(ENOSYS), SCMP_SYS(clone3), 0);
#ifndef MGW_ASAN
    if (rc == 0)
        rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(clone), 1,
                              SCMP_A0(SCMP_CMP_MASKED_EQ, (scmp_datum_t)CLONE_THREAD, 0));
#else
    /* LeakSanitizer's tracer is a clone sharing memory (CLONE_VM) but not
     * a thread: still no fork (neither bit) */
    if (rc == 0)
        rc = seccomp_rule_add(
            ctx, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(clone), 1,
            SCMP_A0(SCMP_CMP_MASKED_EQ, (scmp_datum_t)(CLONE_THREAD | CLONE_VM), 0));
#endif
    /* limits, priorities and scheduling of itself only (pid 0 is the
     * caller; glibc's setrlimit is prlimit64(0, ...)) */
    {
        static const int self_calls[] = {SCMP_SYS(prlimit64), SCMP_SYS(sched_setaffinity),
                                         SCMP_SYS(sched_setscheduler), SCMP_SYS(sched_setparam),
                                         SCMP_SYS(sched_setattr)};
        for (size_t i = 0; i < G_N_ELEMENTS(self_calls) && rc == 0; i++)
            rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), self_calls[i], 1,
                                  SCMP_A0(SCMP_CMP_NE, 0, 0));
    }
    if (rc == 0)
        rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(setpriority), 1,
                              SCMP_A1(SCMP_CMP_NE, 0, 0));
    /* no signal delivery set up towards another process through fcntl */
    {
        static const int owner_cmds[] = {F_SETOWN, F_SETOWN_EX, F_SETSIG};
        for (size_t i = 0; i < G_N_ELEMENTS(owner_cmds) && rc == 0; i++)
            rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(fcntl), 1,
                                  SCMP_A1(SCMP_CMP_EQ, (scmp_datum_t)owner_cmds[i], 0));
    }
    /* signals only to itself (abort() and raise() use tgkill on itself) */
    if (rc == 0)
        rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(kill), 1,
                              SCMP_A0(SCMP_CMP_NE, (scmp_datum_t)getpid(), 0));
    if (rc == 0)
        rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(tgkill), 1,
                              SCMP_A0(SCMP_CMP_NE, (scmp_datum_t)getpid(), 0));
    if (rc == 0)
        rc = seccomp_load(ctx);
    seccomp_release(ctx);
    if (rc != 0) {
        g_set_error(err, G_FILE_ERROR, G_FILE_ERROR_FAILED, "seccomp: %s", g_strerror(-rc));
        return false;
    }
    return true;
}

/* What a confined worker may still open, for reading only. */
static const char *const read_paths[] = {
    "/usr",
    "/lib",
    "/lib64",
    "/etc/fonts",
    "/etc/ld.so.cache",
    "/var/cache/fontconfig",
    "/dev/null",
    "/dev/urandom",
#ifdef MGW_ASAN
    "/proc/self", /* LeakSanitizer reads its maps at exit (resolved to this pid) */
#endif
};

static const char *landlock_state = "not applied";

const char *mgw_landlock(void)
{
    return landlock_state;
}

static bool landlock_fail(GError **err, const char *what)
{
    g_set_error(err, G_FILE_ERROR, g_file_error_from_errno(errno), "landlock %s: %s", what,
                g_strerror(errno));
    return false;
}

/* Allows reading below path (a file or a directory); false on error. */
static bool allow_read(int rs, const char *path, GError **err)
{
    const __u64 file_rights = LANDLOCK_ACCESS_FS_EXECUTE | LANDLOCK_ACCESS_FS_READ_FILE;
    struct landlock_path_beneath_attr pb;
    struct stat st;
    int fd = open(path, O_PATH | O_CLOEXEC);

    if (fd < 0)
        return true; /* not on this system: nothing to allow */
    memset(&pb, 0, sizeof pb);
    pb.parent_fd = fd;
    pb.allowed_access = fstat(fd, &st) == 0 && S_ISDIR(st.st_mode)
                            ? file_rights | LANDLOCK_ACCESS_FS_READ_DIR
                            : file_rights;
    if (syscall(SYS_landlock_add_rule, rs, LANDLOCK_RULE_PATH_BENEATH, &pb, 0) != 0) {
        close(fd);
        return landlock_fail(err, path);
    }
    close(fd);
    return true;
}

static bool apply_landlock(GError **err)
{
    struct landlock_ruleset_attr attr;
    long abi = syscall(SYS_landlock_create_ruleset, NULL, 0, LANDLOCK_CREATE_RULESET_VERSION);
    int rs;

    if (abi < 0) {
        /* no Landlock in this kernel (ENOSYS), or not enabled
         * (EOPNOTSUPP), or refused by a seccomp filter around us (a
         * container's, a systemd unit's: EPERM): go on without it */
        if (errno != ENOSYS && errno != EOPNOTSUPP && errno != EPERM)
            return landlock_fail(err, "version");
        landlock_state = errno == EPERM ? "unavailable (refused by a filter around the worker)"
                                        : "unavailable (kernel without Landlock)";
        return true;
    }
    memset(&attr, 0, sizeof attr);
    attr.handled_access_fs =
        LANDLOCK_ACCESS_FS_EXECUTE | LANDLOCK_ACCESS_FS_WRITE_FILE | LANDLOCK_ACCESS_FS_READ_FILE |
        LANDLOCK_ACCESS_FS_READ_DIR | LANDLOCK_ACCESS_FS_REMOVE_DIR |
        LANDLOCK_ACCESS_FS_REMOVE_FILE | LANDLOCK_ACCESS_FS_MAKE_CHAR |
        LANDLOCK_ACCESS_FS_MAKE_DIR | LANDLOCK_ACCESS_FS_MAKE_REG | LANDLOCK_ACCESS_FS_MAKE_SOCK |
        LANDLOCK_ACCESS_FS_MAKE_FIFO | LANDLOCK_ACCESS_FS_MAKE_BLOCK | LANDLOCK_ACCESS_FS_MAKE_SYM;
#ifdef LANDLOCK_ACCESS_FS_REFER
    if (abi >= 2)
        attr.handled_access_fs |= LANDLOCK_ACCESS_FS_REFER;
#endif
#ifdef LANDLOCK_ACCESS_FS_TRUNCATE
    if (abi >= 3)
        attr.handled_access_fs |= LANDLOCK_ACCESS_FS_TRUNCATE;
#endif
    rs = (int)syscall(SYS_landlock_create_ruleset, &attr, sizeof attr, 0);
    if (rs < 0)
        return landlock_fail(err, "create_ruleset");
    for (size_t i = 0; i < G_N_ELEMENTS(read_paths); i++) {
        if (!allow_read(rs, read_paths[i], err)) {
            close(rs);
            return false;
        }
    }
#ifdef MGW_ASAN
    {
        /* LeakSanitizer reads its suppressions file at exit */
        const char *o = getenv("LSAN_OPTIONS");
        const char *p = o != NULL ? strstr(o, "suppressions=") : NULL;
        if (p != NULL) {
            char *path;
            p += strlen("suppressions=");
            path = g_strndup(p, strcspn(p, ": "));
            if (*path == '\'' || *path == '"') {
                memmove(path, path + 1, strlen(path));
                path[strcspn(path, "'\"")] = '\0';
            }
            if (!allow_read(rs, path, err)) {
                g_free(path);
                close(rs);
                return false;
            }
            g_free(path);
        }
    }
#endif
    if (syscall(SYS_landlock_restrict_self, rs, 0) != 0) {
        close(rs);
        return landlock_fail(err, "restrict_self");
    }
    close(rs);
    landlock_state = "applied";
    return true;
}

bool mgw_sandbox(unsigned cpu_seconds, uint64_t as_bytes, unsigned nofile, GError **err)
{
    if (cpu_seconds > 0 && !set_limit(RLIMIT_CPU, cpu_seconds, "RLIMIT_CPU", err))
        return false;
#ifndef MGW_ASAN
    if (as_bytes > 0 && !set_limit(RLIMIT_AS, (rlim_t)as_bytes, "RLIMIT_AS", err))
        return false;
#else
    (void)as_bytes;
#endif
    if (nofile > 0 && !set_limit(RLIMIT_NOFILE, nofile, "RLIMIT_NOFILE", err))
        return false;
    if (!set_limit(RLIMIT_FSIZE, 0, "RLIMIT_FSIZE", err) ||
        !set_limit(RLIMIT_CORE, 0, "RLIMIT_CORE", err))
        return false;
    signal(SIGXFSZ, SIG_IGN);
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 || prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0) {
        g_set_error(err, G_FILE_ERROR, g_file_error_from_errno(errno), "prctl: %s",
                    g_strerror(errno));
        return false;
    }
    if (!drop_capabilities(err) || !apply_landlock(err))
        return false;
    return apply_seccomp(err);
}

bool mgw_sandbox_asan(void)
{
#ifdef MGW_ASAN
    return true;
#else
    return false;
#endif
}
