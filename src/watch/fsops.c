/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * NAME
 *	fsops 3
 * SUMMARY
 *	safe file-system operations for the transfer folder
 * SYNOPSIS
 *	#include <mugaika/fsops.h>
 *
 *	int mg_fs_open_dir(int parent_fd, const char *name, GError **err);
 *	enum mg_fs_kind mg_fs_classify(int dirfd, const char *name, struct stat *st);
 *	const char *mg_fs_kind_name(enum mg_fs_kind kind);
 *	int mg_fs_open_input(int dirfd, const char *name, struct stat *st, GError **err);
 *
 *	void mg_fs_stable_init(struct mg_fs_stable *t);
 *	bool mg_fs_stable_check(t, const struct stat *st, gint64 now_us, gint64 quiet_us);
 *
 *	struct mg_fs_out *mg_fs_out_begin(int dirfd, const char *tmp_name, mode_t mode,
 *					GError **err);
 *	void mg_fs_out_set_owner(out, uid_t uid, gid_t gid);
 *	int mg_fs_out_fd(out);
 *	bool mg_fs_out_write(out, const void *buf, size_t len, GError **err);
 *	bool mg_fs_out_commit(out, const char *final_name, GError **err);
 *	bool mg_fs_out_sync(out, GError **err);
 *	bool mg_fs_out_close(out, GError **err);
 *	void mg_fs_out_abort(out);
 *
 *	bool mg_fs_fsync_dir(int dirfd, GError **err);
 *	bool mg_fs_remove(int dirfd, const char *name, const struct stat *expect, GError **err);
 *
 *	mode_t mg_fs_dir_mode(mode_t file_mode);
 *	int mg_fs_mkdir_new(int dirfd, const char *name, GError **err);
 *	bool mg_fs_dir_settle(int fd, uid_t uid, gid_t gid, mode_t mode, GError **err);
 *	bool mg_fs_mkdir_owned(int dirfd, const char *name, uid_t uid, gid_t gid, mode_t mode,
 *			       GError **err);
 *	bool mg_fs_rename_noreplace(int dirfd, const char *from, const char *to, GError **err);
 *	bool mg_fs_remove_temp(int dirfd, const char *name, GError **err);
 * DESCRIPTION
 *	The contract of each function is in include/mugaika/fsops.h.
 *	How they keep it:
 *
 *	mg_fs_open_dir refuses an absolute name and any ".." component
 *	before touching the file system, then uses openat2(2) with
 *	RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS (Linux 5.6 and later), so
 *	the kernel refuses a symbolic link in any component. When
 *	openat2 is missing (ENOSYS, or EPERM/E2BIG/EINVAL from a seccomp
 *	filter or an old kernel) it walks the components one openat
 *	each with O_NOFOLLOW | O_DIRECTORY; the first answer is
 *	remembered for the life of the process.
 *
 *	mg_fs_open_input looks at the entry first (fstatat without
 *	following) and refuses anything but a regular file with one link
 *	without opening it (opening a device can have side effects);
 *	then it opens with O_NOFOLLOW | O_NONBLOCK | O_NOCTTY, so neither
 *	a symbolic link nor a FIFO swapped in at that moment is followed
 *	or blocks; fstat of the descriptor must show the same (st_dev,
 *	st_ino), a regular file and one link; O_NONBLOCK is then cleared.
 *
 *	The writer creates the temporary file 0600 with O_EXCL (which
 *	never follows a symbolic link); commit applies owner (only when
 *	asked) and mode with fchown/fchmod, fsyncs the file, checks that
 *	tmp_name is still that file, renames with RENAME_NOREPLACE and
 *	fsyncs the directory. A file system without RENAME_NOREPLACE
 *	(EINVAL) gets linkat + unlinkat instead, which never replaces
 *	either. A failed write or file fsync makes the writer fail for
 *	good (after a failed fsync the kernel may have dropped the
 *	data, a retry would report success over lost bytes).
 *
 *	Folders. A new folder is made 0700 (mkdirat fails on any
 *	existing entry, symbolic links included) and opened with
 *	O_NOFOLLOW; the descriptor must show the inode mkdirat made
 *	(same st_dev, a directory that is still empty is not enough:
 *	fstatat of the name and fstat of the descriptor must agree).
 *	Owner and mode are applied to that descriptor before the folder
 *	is renamed to its visible name, so it never shows with other
 *	permissions. mg_fs_mkdir_owned builds the folder under a hidden
 *	temporary name and renames it: a crash leaves either nothing
 *	visible or the finished folder. A folder cannot be hard-linked,
 *	so where RENAME_NOREPLACE is missing the name is claimed with
 *	mkdirat first and the rename then replaces that empty claim;
 *	anything put into it meanwhile makes the rename fail (ENOTEMPTY,
 *	reported as EXISTS) rather than be replaced.
 *
 *	mg_fs_remove_temp removes a tree depth first: each folder is
 *	opened with O_NOFOLLOW | O_DIRECTORY relative to its parent and
 *	must be on the same file system as the parent (a mount point is
 *	never entered); symbolic links are unlinked, never followed.
 * LIMITS
 *	Names passed to open_dir: at most PATH_MAX bytes. Error messages
 *	show at most 512 bytes of a path.
 *	The check and the unlink of mg_fs_remove (and the check and the
 *	rename of commit) are two system calls: someone with write
 *	access to the folder can still swap the entry between them.
 *	POSIX offers no unlink-if-inode; the window is a few
 *	microseconds and the worst outcome is that the swapped-in entry
 *	(never anything outside dirfd) is removed or renamed.
 *	A directory fsync that fails with EINVAL (a file system that
 *	cannot sync directories) counts as done.
 *	mg_fs_remove_temp descends at most MG_FS_TREE_DEPTH folders.
 * DIAGNOSTICS
 *	GError domain MG_FSOPS_ERROR; see fsops.h.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <glib.h>

#include <mugaika/fsname.h>
#include <mugaika/fsops.h>

#define SHOW_MAX 512 /* bytes of a path shown in a message */

struct mg_fs_out {
    int dirfd; /* a duplicate, owned */
    int fd;
    char *tmp;
    dev_t dev; /* of the temporary file */
    ino_t ino;
    mode_t mode;
    uid_t uid;
    gid_t gid;
    bool chown;
    bool failed;   /* a write or the fsync failed: never commit */
    bool prepared; /* owner, mode and fsync done */
    bool renamed;  /* the file is under its final name */
};

static struct mg_fs_test_hooks hooks;

/* openat2: 0 not tried yet, 1 works, -1 not available. */
static gint openat2_state;

GQuark mg_fsops_error_quark(void)
{
    return g_quark_from_static_string("mg-fsops-error-quark");
}

void mg_fs_set_test_hooks(const struct mg_fs_test_hooks *h)
{
    if (h)
        hooks = *h;
    else
        memset(&hooks, 0, sizeof(hooks));
}

/* Appends s to out, escaping what must not reach a log or a terminal:
 * C0 and C1 controls, DEL, backslash, bidirectional controls and
 * invalid UTF-8; at most SHOW_MAX bytes of s. */
static void append_escaped(GString *out, const char *s)
{
    const char *p = s;
    const char *end = s + strnlen(s, SHOW_MAX);

    while (p < end) {
        gunichar c = g_utf8_get_char_validated(p, end - p);

        if (c == (gunichar)-1 || c == (gunichar)-2) {
            g_string_append_printf(out, "\\x%02x", (unsigned char)*p);
            p++;
            continue;
        }
        if (c < 0x20 || c == 0x7f || (c >= 0x80 && c < 0xa0) || (c >= 0x202a && c <= 0x202e) ||
            (c >= 0x2066 && c <= 0x2069) || c == 0x200e || c == 0x200f)
            g_string_append_printf(out, c < 0x100 ? "\\x%02x" : "\\u%04x", c);
        else if (c == '\\')
            g_string_append(out, "\\\\");
        else
            g_string_append_len(out, p, g_utf8_next_char(p) - p);
        p = g_utf8_next_char(p);
    }
    if (s[end - s] != '\0')
        g_string_append(out, "...");
}

/* "DIR/NAME" for messages (DIR from /proc/self/fd when readable,
 * NAME NULL: DIR alone), escaped. Caller frees. */
static char *show_path(int dirfd, const char *name)
{
    GString *out = g_string_new(NULL);
    char *dir = NULL;

    if (dirfd == AT_FDCWD) {
        dir = g_get_current_dir();
    } else if (dirfd >= 0) {
        char link[48];

        g_snprintf(link, sizeof(link), "/proc/self/fd/%d", dirfd);
        dir = g_file_read_link(link, NULL);
    }
    if (name && name[0] == '/')
        g_clear_pointer(&dir, g_free);
    if (dir)
        append_escaped(out, dir);
    else if (!name)
        g_string_append_printf(out, "(fd %d)", dirfd);
    if (dir && name)
        g_string_append_c(out, '/');
    if (name)
        append_escaped(out, name);
    g_free(dir);
    return g_string_free(out, FALSE);
}

static void fail(GError **err, int code, int dirfd, const char *name, const char *op,
                 const char *reason)
{
    char *path;

    if (!err)
        return;
    path = show_path(dirfd, name);
    g_set_error(err, MG_FSOPS_ERROR, code, "%s: %s: %s", path, op, reason);
    g_free(path);
}

/* fail() for errno e, with the code it maps to. */
static void fail_errno(GError **err, int dirfd, const char *name, const char *op, int e)
{
    int code = e == ENOENT ? MG_FSOPS_ERROR_GONE : MG_FSOPS_ERROR_IO;

    fail(err, code, dirfd, name, op, g_strerror(e));
}

/* One directory entry: not empty, no '/', not "." or "..". */
static bool entry_ok(const char *name)
{
    return name && name[0] && !strchr(name, '/') && strcmp(name, ".") != 0 &&
           strcmp(name, "..") != 0;
}

static bool check_entry(GError **err, int dirfd, const char *name, const char *op)
{
    if (entry_ok(name))
        return true;
    fail(err, MG_FSOPS_ERROR_REFUSED, dirfd, name ? name : "(null)", op,
         "not a single file name (refused)");
    return false;
}

static enum mg_fs_kind kind_of(const struct stat *st)
{
    switch (st->st_mode & S_IFMT) {
    case S_IFREG:
        return st->st_nlink > 1 ? MG_FS_HARDLINK : MG_FS_REGULAR;
    case S_IFDIR:
        return MG_FS_DIRECTORY;
    case S_IFLNK:
        return MG_FS_SYMLINK;
    case S_IFCHR:
    case S_IFBLK:
        return MG_FS_DEVICE;
    case S_IFIFO:
        return MG_FS_FIFO;
    case S_IFSOCK:
        return MG_FS_SOCKET;
    default:
        return MG_FS_ERROR;
    }
}

const char *mg_fs_kind_name(enum mg_fs_kind kind)
{
    switch (kind) {
    case MG_FS_REGULAR:
        return "regular";
    case MG_FS_DIRECTORY:
        return "directory";
    case MG_FS_SYMLINK:
        return "symlink";
    case MG_FS_HARDLINK:
        return "hardlink";
    case MG_FS_DEVICE:
        return "device";
    case MG_FS_FIFO:
        return "fifo";
    case MG_FS_SOCKET:
        return "socket";
    case MG_FS_GONE:
        return "gone";
    case MG_FS_ERROR:
        break;
    }
    return "error";
}

/* The reason given when an entry of this kind is refused. */
static const char *kind_reason(enum mg_fs_kind kind)
{
    switch (kind) {
    case MG_FS_DIRECTORY:
        return "a directory, not a regular file (refused)";
    case MG_FS_SYMLINK:
        return "a symbolic link (refused)";
    case MG_FS_HARDLINK:
        return "a hard link: the file has more than one name (refused)";
    case MG_FS_DEVICE:
        return "a device (refused)";
    case MG_FS_FIFO:
        return "a FIFO (refused)";
    case MG_FS_SOCKET:
        return "a socket (refused)";
    default:
        return "not a regular file (refused)";
    }
}

enum mg_fs_kind mg_fs_classify(int dirfd, const char *name, struct stat *st)
{
    struct stat local;

    if (!st)
        st = &local;
    if (!entry_ok(name)) {
        errno = EINVAL;
        return MG_FS_ERROR;
    }
    if (fstatat(dirfd, name, st, AT_SYMLINK_NOFOLLOW) < 0)
        return errno == ENOENT ? MG_FS_GONE : MG_FS_ERROR;
    return kind_of(st);
}

/* open_dir: an absolute name, a ".." component or an over-long name. */
static bool dir_name_ok(const char *name)
{
    const char *p = name;

    if (!name || !name[0] || name[0] == '/' || strlen(name) >= PATH_MAX)
        return false;
    while (*p) {
        size_t n = strcspn(p, "/");

        if (n == 2 && p[0] == '.' && p[1] == '.')
            return false;
        p += n;
        while (*p == '/')
            p++;
    }
    return true;
}

/* Returns the fd, or -1 with errno; errno ENOSYS: use the walk. */
static int open_dir_openat2(int parent_fd, const char *name)
{
    struct open_how how;
    int fd;

    if (hooks.no_openat2 || g_atomic_int_get(&openat2_state) < 0) {
        errno = ENOSYS;
        return -1;
    }
    memset(&how, 0, sizeof(how));
    /* No O_NOFOLLOW: RESOLVE_NO_SYMLINKS refuses the trailing link as
     * well (ELOOP), while O_NOFOLLOW | O_DIRECTORY would say ENOTDIR. */
    how.flags = O_RDONLY | O_DIRECTORY | O_CLOEXEC;
    how.resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS;
    /* EAGAIN: a rename raced the lookup; a few retries, then an error */
    for (int tries = 0;; tries++) {
        fd = (int)syscall(SYS_openat2, parent_fd, name, &how, sizeof(how));
        if (fd >= 0 || (errno != EINTR && errno != EAGAIN) || tries == 8)
            break;
    }
    if (fd >= 0) {
        g_atomic_int_set(&openat2_state, 1);
        return fd;
    }
    /* Only before openat2 ever worked can these mean "not available". */
    if ((errno == ENOSYS || errno == EPERM || errno == E2BIG || errno == EINVAL) &&
        g_atomic_int_get(&openat2_state) == 0) {
        g_atomic_int_set(&openat2_state, -1);
        errno = ENOSYS;
    }
    return -1;
}

/* One openat per component, none followed. Returns the fd or -1 with
 * errno. */
static int open_dir_walk(int parent_fd, const char *name)
{
    const int flags = O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC;
    char comp[NAME_MAX + 1];
    const char *p = name;
    int cur = -1;

    for (;;) {
        size_t n;
        int next;

        while (*p == '/')
            p++;
        if (!*p)
            break;
        n = strcspn(p, "/");
        if (n > NAME_MAX) {
            if (cur >= 0)
                close(cur);
            errno = ENAMETOOLONG;
            return -1;
        }
        memcpy(comp, p, n);
        comp[n] = '\0';
        p += n;
        if (strcmp(comp, ".") == 0)
            continue;
        next = openat(cur >= 0 ? cur : parent_fd, comp, flags);
        if (next < 0 && errno == ENOTDIR) {
            /* O_DIRECTORY answers ENOTDIR for a symbolic link too */
            struct stat st;

            if (fstatat(cur >= 0 ? cur : parent_fd, comp, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
                S_ISLNK(st.st_mode))
                errno = ELOOP;
            else
                errno = ENOTDIR;
        }
        if (cur >= 0) {
            int e = errno;

            close(cur);
            errno = e;
        }
        if (next < 0)
            return -1;
        cur = next;
    }
    if (cur < 0) /* only "." components: the parent itself */
        cur = openat(parent_fd, ".", flags);
    return cur;
}

int mg_fs_open_dir(int parent_fd, const char *name, GError **err)
{
    int fd;

    if (!dir_name_ok(name)) {
        fail(err, MG_FSOPS_ERROR_REFUSED, parent_fd, name ? name : "(null)", "open directory",
             "an empty, absolute or too long name, or a \"..\" component (refused)");
        return -1;
    }
    fd = open_dir_openat2(parent_fd, name);
    if (fd < 0 && errno == ENOSYS)
        fd = open_dir_walk(parent_fd, name);
    if (fd >= 0)
        return fd;
    switch (errno) {
    case ELOOP:
        fail(err, MG_FSOPS_ERROR_REFUSED, parent_fd, name, "open directory",
             "a symbolic link in the path (refused)");
        break;
    case EXDEV:
        fail(err, MG_FSOPS_ERROR_REFUSED, parent_fd, name, "open directory",
             "the path leaves the folder (refused)");
        break;
    case ENOTDIR:
        fail(err, MG_FSOPS_ERROR_REFUSED, parent_fd, name, "open directory",
             "not a directory (refused)");
        break;
    default:
        fail_errno(err, parent_fd, name, "open directory", errno);
        break;
    }
    return -1;
}

int mg_fs_open_input(int dirfd, const char *name, struct stat *st, GError **err)
{
    struct stat pre, post;
    enum mg_fs_kind kind;
    int fd, fl;

    if (!check_entry(err, dirfd, name, "open input"))
        return -1;
    if (fstatat(dirfd, name, &pre, AT_SYMLINK_NOFOLLOW) < 0) {
        fail_errno(err, dirfd, name, "open input: stat", errno);
        return -1;
    }
    kind = kind_of(&pre);
    if (kind != MG_FS_REGULAR) {
        fail(err, MG_FSOPS_ERROR_REFUSED, dirfd, name, "open input", kind_reason(kind));
        return -1;
    }
    if (hooks.before_open)
        hooks.before_open(dirfd, name, hooks.user);
    fd = openat(dirfd, name, O_RDONLY | O_NOFOLLOW | O_NOCTTY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ELOOP)
            fail(err, MG_FSOPS_ERROR_CHANGED, dirfd, name, "open input",
                 "replaced by a symbolic link after it was looked at (refused)");
        else
            fail_errno(err, dirfd, name, "open input", errno);
        return -1;
    }
    if (fstat(fd, &post) < 0) {
        fail_errno(err, dirfd, name, "open input: fstat", errno);
        goto bad;
    }
    if (post.st_dev != pre.st_dev || post.st_ino != pre.st_ino) {
        fail(err, MG_FSOPS_ERROR_CHANGED, dirfd, name, "open input",
             "replaced by another file after it was looked at (refused)");
        goto bad;
    }
    kind = kind_of(&post);
    if (kind != MG_FS_REGULAR) {
        fail(err, MG_FSOPS_ERROR_REFUSED, dirfd, name, "open input", kind_reason(kind));
        goto bad;
    }
    fl = fcntl(fd, F_GETFL);
    if (fl < 0 || fcntl(fd, F_SETFL, fl & ~O_NONBLOCK) < 0) {
        fail_errno(err, dirfd, name, "open input: fcntl", errno);
        goto bad;
    }
    if (st)
        *st = post;
    return fd;
bad:
    close(fd);
    return -1;
}

void mg_fs_stable_init(struct mg_fs_stable *t)
{
    memset(t, 0, sizeof(*t));
}

bool mg_fs_stable_check(struct mg_fs_stable *t, const struct stat *st, gint64 now_us,
                        gint64 quiet_us)
{
    gint64 mtime_ns =
        (gint64)st->st_mtim.tv_sec * G_GINT64_CONSTANT(1000000000) + st->st_mtim.tv_nsec;
    gint64 ctime_ns =
        (gint64)st->st_ctim.tv_sec * G_GINT64_CONSTANT(1000000000) + st->st_ctim.tv_nsec;

    if (!t->seen || t->dev != st->st_dev || t->ino != st->st_ino || t->size != st->st_size ||
        t->mtime_ns != mtime_ns || t->ctime_ns != ctime_ns || now_us < t->since_us) {
        t->seen = true;
        t->dev = st->st_dev;
        t->ino = st->st_ino;
        t->size = st->st_size;
        t->mtime_ns = mtime_ns;
        t->ctime_ns = ctime_ns;
        t->since_us = now_us;
    }
    return now_us - t->since_us >= quiet_us;
}

bool mg_fs_fsync_dir(int dirfd, GError **err)
{
    if (fsync(dirfd) == 0 || errno == EINVAL)
        return true;
    fail_errno(err, dirfd, NULL, "fsync directory", errno);
    return false;
}

static void out_free(struct mg_fs_out *out)
{
    if (out->fd >= 0)
        close(out->fd);
    close(out->dirfd);
    g_free(out->tmp);
    g_free(out);
}

struct mg_fs_out *mg_fs_out_begin(int dirfd, const char *tmp_name, mode_t mode, GError **err)
{
    struct mg_fs_out *out;
    struct stat st;
    int fd, dfd;

    if (!check_entry(err, dirfd, tmp_name, "create"))
        return NULL;
    dfd = fcntl(dirfd, F_DUPFD_CLOEXEC, 0);
    if (dfd < 0) {
        fail_errno(err, dirfd, tmp_name, "create: dup", errno);
        return NULL;
    }
    fd = openat(dfd, tmp_name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_NOCTTY | O_CLOEXEC,
                0600);
    if (fd < 0) {
        int e = errno;

        if (e == EEXIST)
            fail(err, MG_FSOPS_ERROR_EXISTS, dirfd, tmp_name, "create", g_strerror(e));
        else
            fail_errno(err, dirfd, tmp_name, "create", e);
        close(dfd);
        return NULL;
    }
    if (fstat(fd, &st) < 0) {
        int e = errno;

        fail_errno(err, dirfd, tmp_name, "create: fstat", e);
        unlinkat(dfd, tmp_name, 0);
        close(fd);
        close(dfd);
        return NULL;
    }
    out = g_new0(struct mg_fs_out, 1);
    out->dirfd = dfd;
    out->fd = fd;
    out->tmp = g_strdup(tmp_name);
    out->dev = st.st_dev;
    out->ino = st.st_ino;
    out->mode = mode & 0777;
    out->uid = (uid_t)-1;
    out->gid = (gid_t)-1;
    return out;
}

void mg_fs_out_set_owner(struct mg_fs_out *out, uid_t uid, gid_t gid)
{
    g_return_if_fail(out != NULL);
    out->uid = uid;
    out->gid = gid;
    out->chown = uid != (uid_t)-1 || gid != (gid_t)-1;
}

int mg_fs_out_fd(const struct mg_fs_out *out)
{
    g_return_val_if_fail(out != NULL, -1);
    return out->fd;
}

bool mg_fs_out_write(struct mg_fs_out *out, const void *buf, size_t len, GError **err)
{
    const char *p = buf;

    g_return_val_if_fail(out != NULL, false);
    if (out->failed || out->prepared) {
        fail(err, MG_FSOPS_ERROR_IO, out->dirfd, out->tmp, "write",
             out->failed ? "an earlier write failed" : "already committed");
        return false;
    }
    while (len > 0) {
        ssize_t n = write(out->fd, p, len);

        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            out->failed = true;
            fail_errno(err, out->dirfd, out->tmp, "write", n < 0 ? errno : ENOSPC);
            return false;
        }
        p += n;
        len -= (size_t)n;
    }
    return true;
}

/* Owner, mode, fsync: once per writer. */
static bool out_prepare(struct mg_fs_out *out, GError **err)
{
    if (out->prepared)
        return true;
    /* the mode first: once the file is another user's, only CAP_FOWNER
     * could change it, and the daemon has CAP_CHOWN alone */
    if (fchmod(out->fd, out->mode) < 0) {
        fail_errno(err, out->dirfd, out->tmp, "commit: fchmod", errno);
        return false;
    }
    if (out->chown && fchown(out->fd, out->uid, out->gid) < 0) {
        fail_errno(err, out->dirfd, out->tmp, "commit: fchown", errno);
        return false;
    }
    if (fsync(out->fd) < 0) {
        out->failed = true;
        fail_errno(err, out->dirfd, out->tmp, "commit: fsync", errno);
        return false;
    }
    out->prepared = true;
    return true;
}

/* Is tmp_name still the file this writer created? */
static bool out_is_ours(const struct mg_fs_out *out)
{
    struct stat st;

    return fstatat(out->dirfd, out->tmp, &st, AT_SYMLINK_NOFOLLOW) == 0 && st.st_dev == out->dev &&
           st.st_ino == out->ino;
}

/* renameat2 RENAME_NOREPLACE, or link + unlink where the file system
 * lacks it. 0 or -1 with errno (EEXIST: final name taken). */
static int rename_noreplace(int dirfd, const char *from, const char *to)
{
    if (renameat2(dirfd, from, dirfd, to, RENAME_NOREPLACE) == 0)
        return 0;
    if (errno != EINVAL && errno != ENOSYS)
        return -1;
    if (linkat(dirfd, from, dirfd, to, 0) < 0)
        return -1;
    if (unlinkat(dirfd, from, 0) < 0) {
        int e = errno;

        unlinkat(dirfd, to, 0);
        errno = e;
        return -1;
    }
    return 0;
}

bool mg_fs_out_commit(struct mg_fs_out *out, const char *final_name, GError **err)
{
    g_return_val_if_fail(out != NULL, false);
    if (!out->renamed) {
        if (out->failed) {
            fail(err, MG_FSOPS_ERROR_IO, out->dirfd, out->tmp, "commit", "an earlier write failed");
            return false;
        }
        if (!check_entry(err, out->dirfd, final_name, "commit"))
            return false;
        if (!out_prepare(out, err))
            return false;
        if (!out_is_ours(out)) {
            fail(err, MG_FSOPS_ERROR_CHANGED, out->dirfd, out->tmp, "commit",
                 "the temporary file was replaced or removed");
            return false;
        }
        if (rename_noreplace(out->dirfd, out->tmp, final_name) < 0) {
            int e = errno;
            char *op = g_strdup_printf("commit: rename to %s", final_name);

            if (e == EEXIST)
                fail(err, MG_FSOPS_ERROR_EXISTS, out->dirfd, out->tmp, op, g_strerror(e));
            else
                fail_errno(err, out->dirfd, out->tmp, op, e);
            g_free(op);
            return false;
        }
        out->renamed = true;
    }
    if (!mg_fs_fsync_dir(out->dirfd, err))
        return false;
    out_free(out);
    return true;
}

bool mg_fs_out_sync(struct mg_fs_out *out, GError **err)
{
    g_return_val_if_fail(out != NULL, false);
    if (out->failed) {
        fail(err, MG_FSOPS_ERROR_IO, out->dirfd, out->tmp, "sync", "an earlier write failed");
        return false;
    }
    return out_prepare(out, err);
}

bool mg_fs_out_close(struct mg_fs_out *out, GError **err)
{
    g_return_val_if_fail(out != NULL, false);
    if (!mg_fs_out_sync(out, err))
        return false;
    if (!out_is_ours(out)) {
        fail(err, MG_FSOPS_ERROR_CHANGED, out->dirfd, out->tmp, "close",
             "the file was replaced or removed");
        return false;
    }
    out_free(out);
    return true;
}

void mg_fs_out_abort(struct mg_fs_out *out)
{
    if (!out)
        return;
    if (!out->renamed && out_is_ours(out))
        unlinkat(out->dirfd, out->tmp, 0);
    out_free(out);
}

bool mg_fs_remove(int dirfd, const char *name, const struct stat *expect, GError **err)
{
    struct stat st;

    if (!check_entry(err, dirfd, name, "remove"))
        return false;
    if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
        fail_errno(err, dirfd, name, "remove: stat", errno);
        return false;
    }
    if (st.st_dev != expect->st_dev || st.st_ino != expect->st_ino ||
        st.st_size != expect->st_size || st.st_mtim.tv_sec != expect->st_mtim.tv_sec ||
        st.st_mtim.tv_nsec != expect->st_mtim.tv_nsec) {
        fail(err, MG_FSOPS_ERROR_CHANGED, dirfd, name, "remove",
             "no longer the file that was read (kept)");
        return false;
    }
    if (unlinkat(dirfd, name, 0) < 0) {
        fail_errno(err, dirfd, name, "remove", errno);
        return false;
    }
    return mg_fs_fsync_dir(dirfd, err);
}

/* --- folders ------------------------------------------------------------- */

mode_t mg_fs_dir_mode(mode_t file_mode)
{
    mode_t m = file_mode & 0777;

    return m | ((m & 0444) >> 2);
}

int mg_fs_mkdir_new(int dirfd, const char *name, GError **err)
{
    struct stat by_name, by_fd;
    int fd;

    if (!check_entry(err, dirfd, name, "mkdir"))
        return -1;
    if (mkdirat(dirfd, name, 0700) < 0) {
        int e = errno;

        if (e == EEXIST)
            fail(err, MG_FSOPS_ERROR_EXISTS, dirfd, name, "mkdir", g_strerror(e));
        else
            fail_errno(err, dirfd, name, "mkdir", e);
        return -1;
    }
    fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) {
        fail_errno(err, dirfd, name, "mkdir: open", errno);
        return -1;
    }
    if (fstat(fd, &by_fd) < 0 || fstatat(dirfd, name, &by_name, AT_SYMLINK_NOFOLLOW) < 0 ||
        by_fd.st_dev != by_name.st_dev || by_fd.st_ino != by_name.st_ino) {
        fail(err, MG_FSOPS_ERROR_CHANGED, dirfd, name, "mkdir",
             "the new folder was replaced (refused)");
        close(fd);
        return -1;
    }
    return fd;
}

bool mg_fs_dir_settle(int fd, uid_t uid, gid_t gid, mode_t mode, GError **err)
{
    /* the mode first, as in out_prepare */
    if (fchmod(fd, mode & 0777) < 0) {
        fail_errno(err, fd, NULL, "fchmod", errno);
        return false;
    }
    if ((uid != (uid_t)-1 || gid != (gid_t)-1) && fchown(fd, uid, gid) < 0) {
        fail_errno(err, fd, NULL, "fchown", errno);
        return false;
    }
    return mg_fs_fsync_dir(fd, err);
}

/* rename_noreplace for a folder where RENAME_NOREPLACE is missing:
 * claim to with an empty folder, then replace the claim. */
static int rename_dir_claimed(int dirfd, const char *from, const char *to)
{
    if (mkdirat(dirfd, to, 0700) < 0)
        return -1;
    if (renameat(dirfd, from, dirfd, to) < 0) {
        int e = errno;

        unlinkat(dirfd, to, AT_REMOVEDIR); /* only if still empty */
        errno = e == ENOTEMPTY || e == ENOTDIR ? EEXIST : e;
        return -1;
    }
    return 0;
}

bool mg_fs_rename_noreplace(int dirfd, const char *from, const char *to, GError **err)
{
    struct stat st;
    int r;

    if (!check_entry(err, dirfd, from, "rename") || !check_entry(err, dirfd, to, "rename"))
        return false;
    if (fstatat(dirfd, from, &st, AT_SYMLINK_NOFOLLOW) < 0) {
        fail_errno(err, dirfd, from, "rename: stat", errno);
        return false;
    }
    if (!S_ISREG(st.st_mode) && !S_ISDIR(st.st_mode)) {
        fail(err, MG_FSOPS_ERROR_REFUSED, dirfd, from, "rename", kind_reason(kind_of(&st)));
        return false;
    }
    r = renameat2(dirfd, from, dirfd, to, RENAME_NOREPLACE);
    if (r < 0 && (errno == EINVAL || errno == ENOSYS))
        r = S_ISDIR(st.st_mode) ? rename_dir_claimed(dirfd, from, to)
                                : rename_noreplace(dirfd, from, to);
    if (r < 0) {
        int e = errno;
        char *op = g_strdup_printf("rename to %s", to);

        if (e == EEXIST)
            fail(err, MG_FSOPS_ERROR_EXISTS, dirfd, from, op, g_strerror(e));
        else
            fail_errno(err, dirfd, from, op, e);
        g_free(op);
        return false;
    }
    return mg_fs_fsync_dir(dirfd, err);
}

bool mg_fs_mkdir_owned(int dirfd, const char *name, uid_t uid, gid_t gid, mode_t mode, GError **err)
{
    struct stat st;
    char *tmp = NULL;
    bool ok = false;
    int fd = -1;

    if (!check_entry(err, dirfd, name, "mkdir"))
        return false;
    if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0) {
        if (S_ISDIR(st.st_mode))
            return true; /* left as it is */
        fail(err, MG_FSOPS_ERROR_REFUSED, dirfd, name, "mkdir", kind_reason(kind_of(&st)));
        return false;
    }
    for (int tries = 0; fd < 0 && tries < 8; tries++) {
        GError *e = NULL;

        g_free(tmp);
        tmp = mg_fsname_temp(name);
        fd = mg_fs_mkdir_new(dirfd, tmp, &e);
        if (fd < 0 && (!g_error_matches(e, MG_FSOPS_ERROR, MG_FSOPS_ERROR_EXISTS) || tries == 7)) {
            g_propagate_error(err, e);
            g_free(tmp);
            return false;
        }
        g_clear_error(&e);
    }
    if (mg_fs_dir_settle(fd, uid, gid, mode, err)) {
        GError *e = NULL;

        ok = mg_fs_rename_noreplace(dirfd, tmp, name, &e);
        if (!ok && g_error_matches(e, MG_FSOPS_ERROR, MG_FSOPS_ERROR_EXISTS)) {
            /* made meanwhile: fine if it is a folder */
            g_clear_error(&e);
            ok = true;
        }
        if (e != NULL)
            g_propagate_error(err, e);
    }
    close(fd);
    if (fstatat(dirfd, tmp, &st, AT_SYMLINK_NOFOLLOW) == 0)
        unlinkat(dirfd, tmp, AT_REMOVEDIR);
    g_free(tmp);
    if (!ok)
        return false;
    if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
        fail_errno(err, dirfd, name, "mkdir: stat", errno);
        return false;
    }
    if (!S_ISDIR(st.st_mode)) {
        fail(err, MG_FSOPS_ERROR_REFUSED, dirfd, name, "mkdir", kind_reason(kind_of(&st)));
        return false;
    }
    return true;
}

/* Empties the folder fd (on device dev), depth levels left. */
static bool remove_tree_in(int fd, dev_t dev, unsigned depth, GError **err)
{
    int lfd = openat(fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    DIR *d = lfd >= 0 ? fdopendir(lfd) : NULL;
    GPtrArray *names = g_ptr_array_new_with_free_func(g_free);
    struct dirent *de;
    bool ok = true;

    if (d == NULL) {
        fail_errno(err, fd, NULL, "remove: list", errno);
        if (lfd >= 0)
            close(lfd);
        g_ptr_array_unref(names);
        return false;
    }
    errno = 0;
    while ((de = readdir(d)) != NULL)
        if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0)
            g_ptr_array_add(names, g_strdup(de->d_name));
    closedir(d);
    for (guint i = 0; ok && i < names->len; i++) {
        const char *n = g_ptr_array_index(names, i);
        struct stat st;
        int sub;

        if (fstatat(fd, n, &st, AT_SYMLINK_NOFOLLOW) < 0) {
            if (errno != ENOENT) {
                fail_errno(err, fd, n, "remove: stat", errno);
                ok = false;
            }
            continue;
        }
        if (!S_ISDIR(st.st_mode)) {
            if (unlinkat(fd, n, 0) < 0 && errno != ENOENT) {
                fail_errno(err, fd, n, "remove", errno);
                ok = false;
            }
            continue;
        }
        if (depth == 0 || st.st_dev != dev) {
            fail(err, MG_FSOPS_ERROR_REFUSED, fd, n, "remove",
                 depth == 0 ? "folders nested too deep (kept)" : "a mount point (kept)");
            ok = false;
            continue;
        }
        sub = openat(fd, n, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (sub < 0) {
            fail_errno(err, fd, n, "remove: open", errno);
            ok = false;
            continue;
        }
        ok = remove_tree_in(sub, dev, depth - 1, err);
        close(sub);
        if (ok && unlinkat(fd, n, AT_REMOVEDIR) < 0 && errno != ENOENT) {
            fail_errno(err, fd, n, "remove", errno);
            ok = false;
        }
    }
    g_ptr_array_unref(names);
    return ok;
}

bool mg_fs_remove_temp(int dirfd, const char *name, GError **err)
{
    struct stat st, top;
    bool ok;
    int fd;

    if (!check_entry(err, dirfd, name, "remove"))
        return false;
    if (!mg_fsname_is_temp(name)) {
        fail(err, MG_FSOPS_ERROR_REFUSED, dirfd, name, "remove",
             "not a temporary name of mugaika (refused)");
        return false;
    }
    if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
        fail_errno(err, dirfd, name, "remove: stat", errno);
        return false;
    }
    if (!S_ISDIR(st.st_mode)) {
        if (unlinkat(dirfd, name, 0) < 0) {
            fail_errno(err, dirfd, name, "remove", errno);
            return false;
        }
        return mg_fs_fsync_dir(dirfd, err);
    }
    if (fstat(dirfd, &top) < 0) {
        fail_errno(err, dirfd, NULL, "remove: fstat", errno);
        return false;
    }
    if (st.st_dev != top.st_dev) {
        fail(err, MG_FSOPS_ERROR_REFUSED, dirfd, name, "remove", "a mount point (kept)");
        return false;
    }
    fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) {
        fail_errno(err, dirfd, name, "remove: open", errno);
        return false;
    }
    ok = remove_tree_in(fd, st.st_dev, MG_FS_TREE_DEPTH, err);
    close(fd);
    if (ok && unlinkat(dirfd, name, AT_REMOVEDIR) < 0) {
        fail_errno(err, dirfd, name, "remove", errno);
        ok = false;
    }
    return ok && mg_fs_fsync_dir(dirfd, err);
}
