/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * NAME
 *	test_fsops 1
 * SUMMARY
 *	unit tests of the transfer folder's file-system operations (fsops.h)
 * SYNOPSIS
 *	test_fsops [--tap] [-p /fsops/...]
 * DESCRIPTION
 *	Every case works in its own temporary directory (removed after).
 *	/fsops/open-dir/...: nested paths accepted (a real, readable
 *	descriptor), a symbolic link as the last or a middle component,
 *	"..", absolute and empty names, a file and a missing name refused;
 *	each case runs twice, with openat2 and with the per-component
 *	walk (forced by the test hook).
 *	/fsops/classify: every kind, /dev/null as a device, a bad name.
 *	/fsops/open-input/...: a regular file (blocking mode, close-on-
 *	exec), each unsafe kind refused without blocking (alarm), and
 *	swaps between the look and the open made deterministic by the
 *	before_open hook: another file renamed over it, a symbolic link,
 *	a FIFO (the open must not block), a second link.
 *	/fsops/stable/...: the quiet period and what restarts it.
 *	/fsops/out/...: the atomic writer: nothing visible but the
 *	temporary name before commit, the exact mode, EEXIST keeps both
 *	files and a second commit works, abort, refused names, owner.
 *	/fsops/remove/...: removes the same file only.
 *	/fsops/message-escaped: names with controls and invalid UTF-8.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <unistd.h>

#include <glib.h>
#include <glib/gstdio.h>

#include <mugaika/fsname.h>
#include <mugaika/fsops.h>

#include "tmpdir.h"

struct fx {
    char *dir;
    int dfd;
};

static void fx_setup(struct fx *f, gconstpointer data)
{
    (void)data;
    f->dir = tmpdir_make("mugaika-fsops-XXXXXX", &f->dfd);
    mg_fs_set_test_hooks(NULL);
}

static void fx_teardown(struct fx *f, gconstpointer data)
{
    (void)data;
    mg_fs_set_test_hooks(NULL);
    tmpdir_remove(f->dir, f->dfd);
}

/* DIR/NAME; caller frees. */
static char *at(const struct fx *f, const char *name)
{
    return g_build_filename(f->dir, name, NULL);
}

static void put(const struct fx *f, const char *name, const char *text)
{
    char *p = at(f, name);

    g_assert_true(g_file_set_contents(p, text, -1, NULL));
    g_free(p);
}

static char *get(const struct fx *f, const char *name)
{
    char *p = at(f, name);
    char *text = NULL;

    g_assert_true(g_file_get_contents(p, &text, NULL, NULL));
    g_free(p);
    return text;
}

static void mk(const struct fx *f, const char *name)
{
    char *p = at(f, name);

    g_assert_cmpint(g_mkdir(p, 0700), ==, 0);
    g_free(p);
}

static void ln_s(const struct fx *f, const char *target, const char *name)
{
    char *p = at(f, name);

    g_assert_cmpint(symlink(target, p), ==, 0);
    g_free(p);
}

static bool exists(const struct fx *f, const char *name)
{
    struct stat st;

    return fstatat(f->dfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0;
}

static gint cmp_names(gconstpointer a, gconstpointer b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The sorted names in the directory, joined by ' '; caller frees. */
static char *listing(const struct fx *f)
{
    GDir *d = g_dir_open(f->dir, 0, NULL);
    GPtrArray *names = g_ptr_array_new_with_free_func(g_free);
    const char *n;
    char *s;

    g_assert_nonnull(d);
    while ((n = g_dir_read_name(d)))
        g_ptr_array_add(names, g_strdup(n));
    g_dir_close(d);
    g_ptr_array_sort(names, cmp_names);
    g_ptr_array_add(names, NULL);
    s = g_strjoinv(" ", (char **)names->pdata);
    g_ptr_array_free(names, TRUE);
    return s;
}

/* Asserts err has code and names the name and the operation. */
static void assert_err(GError **err, int code, const char *name, const char *op)
{
    g_assert_error(*err, MG_FSOPS_ERROR, code);
    g_test_message("%s", (*err)->message);
    g_assert_nonnull(strstr((*err)->message, name));
    g_assert_nonnull(strstr((*err)->message, op));
    g_clear_error(err);
}

/* ---- open_dir ---- */

static bool kernel_has_openat2(void)
{
    return syscall(SYS_openat2, -1, NULL, NULL, 0) < 0 && errno != ENOSYS;
}

static void set_walk(bool walk)
{
    struct mg_fs_test_hooks h = {.no_openat2 = walk};

    mg_fs_set_test_hooks(&h);
}

static void test_open_dir_nested(struct fx *f, gconstpointer data)
{
    (void)data;
    g_test_message("kernel openat2: %s", kernel_has_openat2() ? "yes" : "no");
    mk(f, "a");
    mk(f, "a/b");
    mk(f, "a/b/c");
    put(f, "a/b/c/file", "x");
    for (int walk = 0; walk < 2; walk++) {
        static const char *const names[] = {"a/b/c", "a/./b//c/", "./a/b/c", "."};
        GError *err = NULL;

        set_walk(walk);
        for (size_t i = 0; i < G_N_ELEMENTS(names); i++) {
            int fd = mg_fs_open_dir(f->dfd, names[i], &err);
            bool is_top = strcmp(names[i], ".") == 0;
            struct stat got, want;
            char *p = at(f, is_top ? "." : "a/b/c");

            g_assert_no_error(err);
            g_assert_cmpint(fd, >=, 0);
            g_assert_cmpint(fstat(fd, &got), ==, 0);
            g_assert_cmpint(stat(p, &want), ==, 0);
            g_assert_true(got.st_ino == want.st_ino && got.st_dev == want.st_dev);
            g_assert_true(fcntl(fd, F_GETFD) & FD_CLOEXEC);
            if (!is_top) {
                /* a real descriptor: the entries can be read and opened */
                struct stat fst;

                g_assert_cmpint(fstatat(fd, "file", &fst, 0), ==, 0);
                int dup_fd = dup(fd);
                DIR *d = fdopendir(dup_fd);
                int n = 0;
                struct dirent *e;

                g_assert_nonnull(d);
                while ((e = readdir(d)))
                    n += strcmp(e->d_name, "file") == 0;
                closedir(d);
                g_assert_cmpint(n, ==, 1);
            }
            g_free(p);
            close(fd);
        }
    }
}

static void test_open_dir_refused(struct fx *f, gconstpointer data)
{
    (void)data;
    mk(f, "a");
    mk(f, "a/b");
    mk(f, "a/b/c");
    mk(f, "real");
    put(f, "file", "x");
    ln_s(f, "real", "link");        /* symlinked subfolder */
    ln_s(f, "b", "a/s");            /* a/s/c: a symlink in the middle */
    ln_s(f, "/tmp", "a/b/abs");     /* an absolute target */
    ln_s(f, "nowhere", "dangling"); /* dangling */
    for (int walk = 0; walk < 2; walk++) {
        static const struct {
            const char *name;
            int code;
            const char *why;
        } cases[] = {
            {"link", MG_FSOPS_ERROR_REFUSED, "symbolic link"},
            {"link/", MG_FSOPS_ERROR_REFUSED, "symbolic link"},
            {"a/s/c", MG_FSOPS_ERROR_REFUSED, "symbolic link"},
            {"a/s", MG_FSOPS_ERROR_REFUSED, "symbolic link"},
            {"a/b/abs", MG_FSOPS_ERROR_REFUSED, "symbolic link"},
            {"dangling", MG_FSOPS_ERROR_REFUSED, "symbolic link"},
            {"..", MG_FSOPS_ERROR_REFUSED, "\"..\""},
            {"a/..", MG_FSOPS_ERROR_REFUSED, "\"..\""},
            {"a/../a", MG_FSOPS_ERROR_REFUSED, "\"..\""},
            {"a/b/../../..", MG_FSOPS_ERROR_REFUSED, "\"..\""},
            {"/tmp", MG_FSOPS_ERROR_REFUSED, "absolute"},
            {"/", MG_FSOPS_ERROR_REFUSED, "absolute"},
            {"file", MG_FSOPS_ERROR_REFUSED, "not a directory"},
            {"a/b/c/missing", MG_FSOPS_ERROR_GONE, "No such file"},
        };
        GError *err = NULL;

        set_walk(walk);
        for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
            g_test_message("walk=%d name=%s", walk, cases[i].name);
            g_assert_cmpint(mg_fs_open_dir(f->dfd, cases[i].name, &err), ==, -1);
            g_assert_nonnull(err);
            g_assert_nonnull(strstr(err->message, cases[i].why));
            assert_err(&err, cases[i].code, cases[i].name, "open directory");
        }
        g_assert_cmpint(mg_fs_open_dir(f->dfd, "", &err), ==, -1);
        g_assert_error(err, MG_FSOPS_ERROR, MG_FSOPS_ERROR_REFUSED);
        g_clear_error(&err);
    }
}

/* ---- classify ---- */

static void make_socket(const struct fx *f, const char *name)
{
    struct sockaddr_un sa;
    char *p = at(f, name);
    int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

    g_assert_cmpint(s, >=, 0);
    memset(&sa, 0, sizeof(sa));
    sa.sun_family = AF_UNIX;
    g_assert_cmpuint(strlen(p), <, sizeof(sa.sun_path));
    memcpy(sa.sun_path, p, strlen(p));
    g_assert_cmpint(bind(s, (struct sockaddr *)&sa, sizeof(sa)), ==, 0);
    close(s); /* the socket file stays */
    g_free(p);
}

static void make_fifo(const struct fx *f, const char *name)
{
    char *p = at(f, name);

    g_assert_cmpint(mkfifo(p, 0600), ==, 0);
    g_free(p);
}

static void make_kinds(const struct fx *f)
{
    put(f, "plain", "hello");
    put(f, "linked", "x");
    g_assert_cmpint(linkat(f->dfd, "linked", f->dfd, "linked2", 0), ==, 0);
    ln_s(f, "plain", "to-file");
    ln_s(f, "nowhere", "dangling");
    make_fifo(f, "fifo");
    make_socket(f, "sock");
    mk(f, "sub");
}

static void test_classify(struct fx *f, gconstpointer data)
{
    static const struct {
        const char *name;
        enum mg_fs_kind kind;
        const char *token;
    } cases[] = {
        {"plain", MG_FS_REGULAR, "regular"},     {"linked", MG_FS_HARDLINK, "hardlink"},
        {"linked2", MG_FS_HARDLINK, "hardlink"}, {"to-file", MG_FS_SYMLINK, "symlink"},
        {"dangling", MG_FS_SYMLINK, "symlink"},  {"fifo", MG_FS_FIFO, "fifo"},
        {"sock", MG_FS_SOCKET, "socket"},        {"sub", MG_FS_DIRECTORY, "directory"},
        {"missing", MG_FS_GONE, "gone"},
    };
    struct stat st;
    int dev;

    (void)data;
    make_kinds(f);
    for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
        enum mg_fs_kind k = mg_fs_classify(f->dfd, cases[i].name, &st);

        g_test_message("%s: %s", cases[i].name, mg_fs_kind_name(k));
        g_assert_cmpint(k, ==, cases[i].kind);
        g_assert_cmpstr(mg_fs_kind_name(k), ==, cases[i].token);
        g_assert_cmpint(mg_fs_classify(f->dfd, cases[i].name, NULL), ==, cases[i].kind);
    }
    g_assert_cmpint(mg_fs_classify(f->dfd, "linked", &st), ==, MG_FS_HARDLINK);
    g_assert_cmpuint(st.st_nlink, ==, 2);
    g_assert_cmpint(mg_fs_classify(f->dfd, "plain", &st), ==, MG_FS_REGULAR);
    g_assert_cmpint(st.st_size, ==, 5);

    dev = open("/dev", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    g_assert_cmpint(dev, >=, 0);
    g_assert_cmpint(mg_fs_classify(dev, "null", &st), ==, MG_FS_DEVICE);
    g_assert_cmpstr(mg_fs_kind_name(MG_FS_DEVICE), ==, "device");
    close(dev);

    errno = 0;
    g_assert_cmpint(mg_fs_classify(f->dfd, "sub/x", &st), ==, MG_FS_ERROR);
    g_assert_cmpint(errno, ==, EINVAL);
    g_assert_cmpint(mg_fs_classify(f->dfd, "..", &st), ==, MG_FS_ERROR);
    g_assert_cmpint(mg_fs_classify(-1, "plain", &st), ==, MG_FS_ERROR);
    g_assert_cmpint(errno, ==, EBADF);
    g_assert_cmpstr(mg_fs_kind_name(MG_FS_ERROR), ==, "error");
}

/* ---- open_input ---- */

static void test_open_input_regular(struct fx *f, gconstpointer data)
{
    GError *err = NULL;
    struct stat st;
    char buf[16];
    int fd, fl;

    (void)data;
    put(f, "doc.pdf", "%PDF-1.4");
    fd = mg_fs_open_input(f->dfd, "doc.pdf", &st, &err);
    g_assert_no_error(err);
    g_assert_cmpint(fd, >=, 0);
    g_assert_cmpint(st.st_size, ==, 8);
    g_assert_true(S_ISREG(st.st_mode));
    fl = fcntl(fd, F_GETFL);
    g_assert_cmpint(fl & O_NONBLOCK, ==, 0);
    g_assert_cmpint(fl & O_ACCMODE, ==, O_RDONLY);
    g_assert_true(fcntl(fd, F_GETFD) & FD_CLOEXEC);
    g_assert_cmpint(read(fd, buf, sizeof(buf)), ==, 8);
    g_assert_cmpmem(buf, 8, "%PDF-1.4", 8);
    close(fd);
}

static void test_open_input_refused(struct fx *f, gconstpointer data)
{
    static const struct {
        const char *name;
        int code;
        const char *why;
    } cases[] = {
        {"linked", MG_FSOPS_ERROR_REFUSED, "hard link"},
        {"linked2", MG_FSOPS_ERROR_REFUSED, "hard link"},
        {"to-file", MG_FSOPS_ERROR_REFUSED, "symbolic link"},
        {"dangling", MG_FSOPS_ERROR_REFUSED, "symbolic link"},
        {"fifo", MG_FSOPS_ERROR_REFUSED, "FIFO"},
        {"sock", MG_FSOPS_ERROR_REFUSED, "socket"},
        {"sub", MG_FSOPS_ERROR_REFUSED, "directory"},
        {"missing", MG_FSOPS_ERROR_GONE, "No such file"},
        {"sub/x", MG_FSOPS_ERROR_REFUSED, "single file name"},
        {"..", MG_FSOPS_ERROR_REFUSED, "single file name"},
    };
    GError *err = NULL;
    gint64 t0;
    int dev;

    (void)data;
    make_kinds(f);
    t0 = g_get_monotonic_time();
    alarm(10); /* a blocked open kills the test */
    for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
        g_assert_cmpint(mg_fs_open_input(f->dfd, cases[i].name, NULL, &err), ==, -1);
        g_assert_nonnull(err);
        g_assert_nonnull(strstr(err->message, cases[i].why));
        assert_err(&err, cases[i].code, cases[i].name, "open input");
    }
    dev = open("/dev", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    g_assert_cmpint(dev, >=, 0);
    g_assert_cmpint(mg_fs_open_input(dev, "null", NULL, &err), ==, -1);
    g_assert_nonnull(err);
    g_assert_nonnull(strstr(err->message, "/dev/null"));
    g_assert_nonnull(strstr(err->message, "device"));
    assert_err(&err, MG_FSOPS_ERROR_REFUSED, "null", "open input");
    close(dev);
    alarm(0);
    g_assert_cmpint(g_get_monotonic_time() - t0, <, 5 * G_USEC_PER_SEC);
}

/* before_open hooks: each replaces "doc" in its own way. */
static void swap_rename(int dirfd, const char *name, void *user)
{
    (void)user;
    g_assert_cmpint(renameat(dirfd, "other", dirfd, name), ==, 0);
}

static void swap_symlink(int dirfd, const char *name, void *user)
{
    (void)user;
    g_assert_cmpint(renameat(dirfd, name, dirfd, "doc.old"), ==, 0);
    g_assert_cmpint(symlinkat("other", dirfd, name), ==, 0);
}

static void swap_fifo(int dirfd, const char *name, void *user)
{
    (void)user;
    /* rename, not unlink: the old inode stays, its number is not reused */
    g_assert_cmpint(renameat(dirfd, name, dirfd, "doc.old"), ==, 0);
    g_assert_cmpint(mkfifoat(dirfd, name, 0600), ==, 0);
}

static void swap_hardlink(int dirfd, const char *name, void *user)
{
    (void)user;
    g_assert_cmpint(linkat(dirfd, name, dirfd, "second", 0), ==, 0);
}

static void test_open_input_swapped(struct fx *f, gconstpointer data)
{
    static const struct {
        const char *what;
        void (*hook)(int, const char *, void *);
        int code;
    } cases[] = {
        {"rename", swap_rename, MG_FSOPS_ERROR_CHANGED},
        {"symlink", swap_symlink, MG_FSOPS_ERROR_CHANGED},
        {"fifo", swap_fifo, MG_FSOPS_ERROR_CHANGED},
        {"hardlink", swap_hardlink, MG_FSOPS_ERROR_REFUSED},
    };
    GError *err = NULL;

    (void)data;
    for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
        struct mg_fs_test_hooks h = {.before_open = cases[i].hook};
        gint64 t0 = g_get_monotonic_time();

        g_test_message("swap: %s", cases[i].what);
        put(f, "doc", "original");
        put(f, "other", "attacker");
        mg_fs_set_test_hooks(&h);
        alarm(10); /* the FIFO open must not block */
        g_assert_cmpint(mg_fs_open_input(f->dfd, "doc", NULL, &err), ==, -1);
        alarm(0);
        mg_fs_set_test_hooks(NULL);
        g_assert_cmpint(g_get_monotonic_time() - t0, <, 5 * G_USEC_PER_SEC);
        assert_err(&err, cases[i].code, "doc", "open input");
        unlinkat(f->dfd, "doc", 0);
        unlinkat(f->dfd, "other", 0);
        unlinkat(f->dfd, "second", 0);
        unlinkat(f->dfd, "doc.old", 0);
    }
    /* without a hook the same file opens */
    put(f, "doc", "original");
    int fd = mg_fs_open_input(f->dfd, "doc", NULL, &err);
    g_assert_no_error(err);
    close(fd);
}

/* ---- stability ---- */

static struct stat fake_stat(ino_t ino, off_t size, time_t mtime, time_t ctime)
{
    struct stat st;

    memset(&st, 0, sizeof(st));
    st.st_dev = 7;
    st.st_ino = ino;
    st.st_size = size;
    st.st_mtim.tv_sec = mtime;
    st.st_ctim.tv_sec = ctime;
    return st;
}

static void test_stable(void)
{
    const gint64 s = G_USEC_PER_SEC, quiet = 2 * s;
    struct mg_fs_stable t;
    struct stat st = fake_stat(10, 100, 1000, 1000);

    mg_fs_stable_init(&t);
    g_assert_false(mg_fs_stable_check(&t, &st, 100 * s, quiet)); /* first sight */
    g_assert_false(mg_fs_stable_check(&t, &st, 101 * s, quiet));
    g_assert_false(mg_fs_stable_check(&t, &st, 102 * s - 1, quiet));
    g_assert_true(mg_fs_stable_check(&t, &st, 102 * s, quiet));
    g_assert_true(mg_fs_stable_check(&t, &st, 150 * s, quiet));

    st.st_size = 200; /* grows: restarts */
    g_assert_false(mg_fs_stable_check(&t, &st, 151 * s, quiet));
    g_assert_false(mg_fs_stable_check(&t, &st, 152 * s, quiet));
    g_assert_true(mg_fs_stable_check(&t, &st, 153 * s, quiet));

    st.st_mtim.tv_nsec = 1; /* mtime alone (1 ns): restarts */
    g_assert_false(mg_fs_stable_check(&t, &st, 160 * s, quiet));
    g_assert_true(mg_fs_stable_check(&t, &st, 162 * s, quiet));

    st.st_ctim.tv_sec++; /* ctime alone: restarts */
    g_assert_false(mg_fs_stable_check(&t, &st, 170 * s, quiet));
    g_assert_true(mg_fs_stable_check(&t, &st, 172 * s, quiet));

    st.st_ino = 11; /* a new file under the same name: restarts */
    g_assert_false(mg_fs_stable_check(&t, &st, 180 * s, quiet));
    g_assert_true(mg_fs_stable_check(&t, &st, 182 * s, quiet));

    st.st_dev = 8; /* another device */
    g_assert_false(mg_fs_stable_check(&t, &st, 190 * s, quiet));
    g_assert_true(mg_fs_stable_check(&t, &st, 192 * s, quiet));

    /* a clock that went backwards restarts rather than trusts */
    g_assert_false(mg_fs_stable_check(&t, &st, 50 * s, quiet));
    g_assert_true(mg_fs_stable_check(&t, &st, 52 * s, quiet));

    /* quiet 0: stable at first sight */
    mg_fs_stable_init(&t);
    g_assert_true(mg_fs_stable_check(&t, &st, 5, 0));
}

static void test_stable_real(struct fx *f, gconstpointer data)
{
    struct mg_fs_stable t;
    struct stat st;
    int fd;

    (void)data;
    mg_fs_stable_init(&t);
    fd = openat(f->dfd, "slow", O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    g_assert_cmpint(fd, >=, 0);
    g_assert_cmpint(write(fd, "part1", 5), ==, 5);
    g_assert_cmpint(fstatat(f->dfd, "slow", &st, AT_SYMLINK_NOFOLLOW), ==, 0);
    g_assert_false(mg_fs_stable_check(&t, &st, 0, 1000));
    g_assert_true(mg_fs_stable_check(&t, &st, 1000, 1000));
    g_assert_cmpint(write(fd, "part2", 5), ==, 5);
    g_assert_cmpint(fstatat(f->dfd, "slow", &st, AT_SYMLINK_NOFOLLOW), ==, 0);
    g_assert_false(mg_fs_stable_check(&t, &st, 2000, 1000));
    g_assert_true(mg_fs_stable_check(&t, &st, 3000, 1000));
    close(fd);
}

/* ---- atomic output ---- */

static void test_out_commit(struct fx *f, gconstpointer data)
{
    GError *err = NULL;
    struct mg_fs_out *out;
    struct stat st;
    char *s;
    mode_t old = umask(022);

    (void)data;
    out = mg_fs_out_begin(f->dfd, ".mugaika-tmp-1", 0664, &err);
    g_assert_no_error(err);
    g_assert_nonnull(out);
    g_assert_true(mg_fs_out_write(out, "hello ", 6, &err));
    g_assert_true(mg_fs_out_write(out, "world", 5, &err));
    g_assert_true(mg_fs_out_write(out, "", 0, &err));
    g_assert_no_error(err);

    /* before commit a reader sees only the temporary name, 0600 */
    s = listing(f);
    g_assert_cmpstr(s, ==, ".mugaika-tmp-1");
    g_free(s);
    g_assert_cmpint(fstatat(f->dfd, ".mugaika-tmp-1", &st, 0), ==, 0);
    g_assert_cmpint(st.st_mode & 07777, ==, 0600);

    g_assert_true(mg_fs_out_commit(out, "report.pdf", &err));
    g_assert_no_error(err);
    s = listing(f);
    g_assert_cmpstr(s, ==, "report.pdf");
    g_free(s);
    s = get(f, "report.pdf");
    g_assert_cmpstr(s, ==, "hello world");
    g_free(s);
    /* the mode given, exactly: the umask (022) does not reduce it */
    g_assert_cmpint(fstatat(f->dfd, "report.pdf", &st, 0), ==, 0);
    g_assert_cmpint(st.st_mode & 07777, ==, 0664);
    g_assert_cmpuint(st.st_nlink, ==, 1);

    /* mg_fs_out_fd: a writer that wants a descriptor; setuid bits dropped */
    out = mg_fs_out_begin(f->dfd, ".tmp-2", 04640, &err);
    g_assert_no_error(err);
    g_assert_cmpint(write(mg_fs_out_fd(out), "abc", 3), ==, 3);
    g_assert_true(mg_fs_out_commit(out, "two", &err));
    g_assert_no_error(err);
    s = get(f, "two");
    g_assert_cmpstr(s, ==, "abc");
    g_free(s);
    g_assert_cmpint(fstatat(f->dfd, "two", &st, 0), ==, 0);
    g_assert_cmpint(st.st_mode & 07777, ==, 0640);
    umask(old);
}

static void test_out_exists(struct fx *f, gconstpointer data)
{
    GError *err = NULL;
    struct mg_fs_out *out;
    char *s;

    (void)data;
    put(f, "taken", "old");
    ln_s(f, "nowhere", "taken-link");
    out = mg_fs_out_begin(f->dfd, ".tmp", 0644, &err);
    g_assert_no_error(err);
    g_assert_true(mg_fs_out_write(out, "new", 3, &err));

    g_assert_false(mg_fs_out_commit(out, "taken", &err));
    assert_err(&err, MG_FSOPS_ERROR_EXISTS, ".tmp", "rename to taken");
    /* a symlink (even dangling) is an existing name too, never replaced */
    g_assert_false(mg_fs_out_commit(out, "taken-link", &err));
    assert_err(&err, MG_FSOPS_ERROR_EXISTS, ".tmp", "commit");
    s = get(f, "taken");
    g_assert_cmpstr(s, ==, "old");
    g_free(s);
    s = get(f, ".tmp");
    g_assert_cmpstr(s, ==, "new");
    g_free(s);
    g_assert_false(exists(f, "nowhere"));

    /* a bad final name is refused and the writer stays usable */
    g_assert_false(mg_fs_out_commit(out, "../escape", &err));
    assert_err(&err, MG_FSOPS_ERROR_REFUSED, "../escape", "commit");

    g_assert_true(mg_fs_out_commit(out, "taken (1)", &err));
    g_assert_no_error(err);
    s = listing(f);
    g_assert_cmpstr(s, ==, "taken taken (1) taken-link");
    g_free(s);
    s = get(f, "taken (1)");
    g_assert_cmpstr(s, ==, "new");
    g_free(s);
}

static void test_out_abort(struct fx *f, gconstpointer data)
{
    GError *err = NULL;
    struct mg_fs_out *out;
    char *s;

    (void)data;
    out = mg_fs_out_begin(f->dfd, ".tmp", 0644, &err);
    g_assert_no_error(err);
    g_assert_true(mg_fs_out_write(out, "partial", 7, &err));
    g_assert_true(exists(f, ".tmp"));
    mg_fs_out_abort(out);
    s = listing(f);
    g_assert_cmpstr(s, ==, "");
    g_free(s);
    mg_fs_out_abort(NULL);

    /* abort after a failed commit (EEXIST) removes only the tmp */
    put(f, "taken", "old");
    out = mg_fs_out_begin(f->dfd, ".tmp", 0644, &err);
    g_assert_false(mg_fs_out_commit(out, "taken", &err));
    g_clear_error(&err);
    mg_fs_out_abort(out);
    s = listing(f);
    g_assert_cmpstr(s, ==, "taken");
    g_free(s);

    /* a tmp name that someone replaced is not ours: abort leaves it,
     * and commit refuses to publish it */
    out = mg_fs_out_begin(f->dfd, ".tmp", 0644, &err);
    g_assert_no_error(err);
    g_assert_cmpint(unlinkat(f->dfd, ".tmp", 0), ==, 0);
    put(f, ".tmp", "someone else");
    g_assert_false(mg_fs_out_commit(out, "final", &err));
    assert_err(&err, MG_FSOPS_ERROR_CHANGED, ".tmp", "commit");
    g_assert_false(exists(f, "final"));
    mg_fs_out_abort(out);
    s = get(f, ".tmp");
    g_assert_cmpstr(s, ==, "someone else");
    g_free(s);
}

static void test_out_begin_refused(struct fx *f, gconstpointer data)
{
    GError *err = NULL;
    char *outside = g_strdup_printf("%s-outside", f->dir);
    char *s;

    (void)data;
    put(f, ".busy", "x");
    g_assert_null(mg_fs_out_begin(f->dfd, ".busy", 0644, &err));
    assert_err(&err, MG_FSOPS_ERROR_EXISTS, ".busy", "create");
    /* a symlink planted under the temporary name: not followed */
    ln_s(f, outside, ".planted");
    g_assert_null(mg_fs_out_begin(f->dfd, ".planted", 0644, &err));
    assert_err(&err, MG_FSOPS_ERROR_EXISTS, ".planted", "create");
    g_assert_false(g_file_test(outside, G_FILE_TEST_EXISTS));
    g_assert_null(mg_fs_out_begin(f->dfd, "a/b", 0644, &err));
    assert_err(&err, MG_FSOPS_ERROR_REFUSED, "a/b", "create");
    g_assert_null(mg_fs_out_begin(f->dfd, "", 0644, &err));
    g_assert_error(err, MG_FSOPS_ERROR, MG_FSOPS_ERROR_REFUSED);
    g_clear_error(&err);
    s = listing(f);
    g_assert_cmpstr(s, ==, ".busy .planted");
    g_free(s);
    g_free(outside);
}

static void test_out_owner(struct fx *f, gconstpointer data)
{
    GError *err = NULL;
    struct mg_fs_out *out;
    struct stat st;
    /* root can give the file away (nobody:nogroup); others only to themselves */
    uid_t uid = geteuid() == 0 ? 65534 : geteuid();
    gid_t gid = geteuid() == 0 ? 65534 : getegid();

    (void)data;
    g_test_message("euid %u: owner %u:%u", (unsigned)geteuid(), (unsigned)uid, (unsigned)gid);
    out = mg_fs_out_begin(f->dfd, ".tmp", 0640, &err);
    g_assert_no_error(err);
    mg_fs_out_set_owner(out, uid, gid);
    g_assert_true(mg_fs_out_commit(out, "owned", &err));
    g_assert_no_error(err);
    g_assert_cmpint(fstatat(f->dfd, "owned", &st, 0), ==, 0);
    g_assert_cmpuint(st.st_uid, ==, uid);
    g_assert_cmpuint(st.st_gid, ==, gid);
    g_assert_cmpint(st.st_mode & 07777, ==, 0640);

    /* group only */
    out = mg_fs_out_begin(f->dfd, ".tmp", 0600, &err);
    g_assert_no_error(err);
    mg_fs_out_set_owner(out, (uid_t)-1, gid);
    g_assert_true(mg_fs_out_commit(out, "group", &err));
    g_assert_cmpint(fstatat(f->dfd, "group", &st, 0), ==, 0);
    g_assert_cmpuint(st.st_uid, ==, geteuid());
    g_assert_cmpuint(st.st_gid, ==, gid);

    /* a refused fchown (non-root giving a file away) fails the commit,
     * publishes nothing, and abort cleans up */
    if (geteuid() != 0) {
        out = mg_fs_out_begin(f->dfd, ".tmp", 0600, &err);
        mg_fs_out_set_owner(out, 0, (gid_t)-1);
        g_assert_false(mg_fs_out_commit(out, "root-owned", &err));
        assert_err(&err, MG_FSOPS_ERROR_IO, ".tmp", "fchown");
        mg_fs_out_abort(out);
        g_assert_false(exists(f, "root-owned"));
        g_assert_false(exists(f, ".tmp"));
    }
}

static void test_fsync_dir(struct fx *f, gconstpointer data)
{
    GError *err = NULL;

    (void)data;
    g_assert_true(mg_fs_fsync_dir(f->dfd, &err));
    g_assert_no_error(err);
    g_assert_false(mg_fs_fsync_dir(-1, &err));
    assert_err(&err, MG_FSOPS_ERROR_IO, "fd -1", "fsync directory");
}

/* ---- remove ---- */

static void test_remove(struct fx *f, gconstpointer data)
{
    GError *err = NULL;
    struct stat st, st2;
    int fd;
    char *s;

    (void)data;
    /* the same file: removed */
    put(f, "a.docx", "data");
    fd = mg_fs_open_input(f->dfd, "a.docx", &st, &err);
    g_assert_no_error(err);
    close(fd);
    g_assert_true(mg_fs_remove(f->dfd, "a.docx", &st, &err));
    g_assert_no_error(err);
    g_assert_false(exists(f, "a.docx"));
    /* gone now */
    g_assert_false(mg_fs_remove(f->dfd, "a.docx", &st, &err));
    assert_err(&err, MG_FSOPS_ERROR_GONE, "a.docx", "remove");

    /* replaced by another file with the same name: kept (the old
     * inode is held open so the new file cannot reuse its number) */
    put(f, "b.docx", "data");
    fd = mg_fs_open_input(f->dfd, "b.docx", &st, &err);
    g_assert_no_error(err);
    put(f, "b.new", "data");
    g_assert_cmpint(renameat(f->dfd, "b.new", f->dfd, "b.docx"), ==, 0);
    g_assert_false(mg_fs_remove(f->dfd, "b.docx", &st, &err));
    assert_err(&err, MG_FSOPS_ERROR_CHANGED, "b.docx", "remove");
    g_assert_true(exists(f, "b.docx"));
    close(fd);

    /* written again after it was read: kept */
    put(f, "c.txt", "one");
    g_assert_cmpint(fstatat(f->dfd, "c.txt", &st, AT_SYMLINK_NOFOLLOW), ==, 0);
    fd = openat(f->dfd, "c.txt", O_WRONLY | O_APPEND | O_CLOEXEC);
    g_assert_cmpint(write(fd, "two", 3), ==, 3);
    close(fd);
    g_assert_false(mg_fs_remove(f->dfd, "c.txt", &st, &err));
    assert_err(&err, MG_FSOPS_ERROR_CHANGED, "c.txt", "remove");
    s = get(f, "c.txt");
    g_assert_cmpstr(s, ==, "onetwo");
    g_free(s);
    /* ... even with its old mtime put back: the size differs */
    {
        struct timespec ts[2] = {{0, UTIME_OMIT}, st.st_mtim};

        g_assert_cmpint(utimensat(f->dfd, "c.txt", ts, AT_SYMLINK_NOFOLLOW), ==, 0);
    }
    g_assert_false(mg_fs_remove(f->dfd, "c.txt", &st, &err));
    assert_err(&err, MG_FSOPS_ERROR_CHANGED, "c.txt", "remove");

    /* same size, new mtime: kept */
    g_assert_cmpint(fstatat(f->dfd, "c.txt", &st, AT_SYMLINK_NOFOLLOW), ==, 0);
    {
        struct timespec ts[2] = {{0, UTIME_OMIT}, {12345, 678}};

        g_assert_cmpint(utimensat(f->dfd, "c.txt", ts, 0), ==, 0);
    }
    g_assert_false(mg_fs_remove(f->dfd, "c.txt", &st, &err));
    assert_err(&err, MG_FSOPS_ERROR_CHANGED, "c.txt", "remove");
    g_assert_cmpint(fstatat(f->dfd, "c.txt", &st2, AT_SYMLINK_NOFOLLOW), ==, 0);
    g_assert_true(mg_fs_remove(f->dfd, "c.txt", &st2, &err));
    g_assert_no_error(err);

    /* replaced by a symlink: kept, the target untouched */
    put(f, "d", "data");
    put(f, "target", "keep me");
    g_assert_cmpint(fstatat(f->dfd, "d", &st, AT_SYMLINK_NOFOLLOW), ==, 0);
    g_assert_cmpint(renameat(f->dfd, "d", f->dfd, "d.old"), ==, 0);
    ln_s(f, "target", "d");
    g_assert_false(mg_fs_remove(f->dfd, "d", &st, &err));
    assert_err(&err, MG_FSOPS_ERROR_CHANGED, "d", "remove");
    g_assert_true(exists(f, "d"));
    g_assert_true(exists(f, "target"));

    g_assert_false(mg_fs_remove(f->dfd, "../d", &st, &err));
    assert_err(&err, MG_FSOPS_ERROR_REFUSED, "../d", "remove");
}

/* ---- messages ---- */

static void test_message_escaped(struct fx *f, gconstpointer data)
{
    GError *err = NULL;
    const char *name = "evil\n\x1b[31m\xff\xe2\x80\xae.txt";

    (void)data;
    ln_s(f, "x", name);
    g_assert_cmpint(mg_fs_open_input(f->dfd, name, NULL, &err), ==, -1);
    g_assert_error(err, MG_FSOPS_ERROR, MG_FSOPS_ERROR_REFUSED);
    g_test_message("%s", err->message);
    g_assert_true(g_utf8_validate(err->message, -1, NULL));
    g_assert_null(strchr(err->message, '\n'));
    g_assert_null(strchr(err->message, '\x1b'));
    g_assert_nonnull(strstr(err->message, "evil\\x0a\\x1b[31m\\xff\\u202e.txt"));
    g_assert_nonnull(strstr(err->message, f->dir));
    g_clear_error(&err);
}

/* Folders: dir_mode, mkdir_new, rename_noreplace of a folder, and
 * remove_temp of a tree with a symbolic link out of it. */
static void test_folders(struct fx *f, gconstpointer data)
{
    GError *err = NULL;
    char *tmpname = mg_fsname_temp(NULL), *p, *text;
    struct stat st;
    int fd;

    (void)data;
    g_assert_cmpuint(mg_fs_dir_mode(0640), ==, 0750);
    g_assert_cmpuint(mg_fs_dir_mode(0644), ==, 0755);
    g_assert_cmpuint(mg_fs_dir_mode(0600), ==, 0700);
    g_assert_cmpuint(mg_fs_dir_mode(04604), ==, 0705);

    fd = mg_fs_mkdir_new(f->dfd, tmpname, &err);
    g_assert_no_error(err);
    g_assert_cmpint(fd, >=, 0);
    g_assert_cmpint(mg_fs_mkdir_new(f->dfd, tmpname, &err), ==, -1);
    g_assert_error(err, MG_FSOPS_ERROR, MG_FSOPS_ERROR_EXISTS);
    g_clear_error(&err);
    g_assert_true(mg_fs_dir_settle(fd, (uid_t)-1, (gid_t)-1, 0750, &err));
    g_assert_no_error(err);
    close(fd);
    p = at(f, tmpname);
    g_assert_cmpint(lstat(p, &st), ==, 0);
    g_assert_cmpuint(st.st_mode & 07777, ==, 0750);
    g_free(p);

    /* a folder is renamed, never over anything */
    mk(f, "taken");
    g_assert_false(mg_fs_rename_noreplace(f->dfd, tmpname, "taken", &err));
    g_assert_error(err, MG_FSOPS_ERROR, MG_FSOPS_ERROR_EXISTS);
    g_clear_error(&err);
    put(f, "file", "x");
    g_assert_false(mg_fs_rename_noreplace(f->dfd, tmpname, "file", &err));
    g_assert_error(err, MG_FSOPS_ERROR, MG_FSOPS_ERROR_EXISTS);
    g_clear_error(&err);
    g_assert_true(mg_fs_rename_noreplace(f->dfd, tmpname, "final", &err));
    g_assert_no_error(err);
    g_assert_cmpint(mg_fs_classify(f->dfd, "final", NULL), ==, MG_FS_DIRECTORY);
    g_assert_cmpint(mg_fs_classify(f->dfd, tmpname, NULL), ==, MG_FS_GONE);

    /* remove_temp: only a temporary name; a tree, links not followed */
    g_assert_false(mg_fs_remove_temp(f->dfd, "final", &err));
    g_assert_error(err, MG_FSOPS_ERROR, MG_FSOPS_ERROR_REFUSED);
    g_clear_error(&err);
    put(f, "final/keep.txt", "outside the tree\n");
    mk(f, tmpname);
    {
        char *sub = g_build_filename(tmpname, "a", NULL), *deep, *link, *target;
        mk(f, sub);
        deep = g_build_filename(sub, "b.txt", NULL);
        put(f, deep, "b");
        link = g_build_filename(sub, "to-final", NULL);
        p = at(f, link);
        target = at(f, "final");
        g_assert_cmpint(symlink(target, p), ==, 0);
        g_free(p);
        g_free(target);
        g_free(sub);
        g_free(deep);
        g_free(link);
    }
    g_assert_true(mg_fs_remove_temp(f->dfd, tmpname, &err));
    g_assert_no_error(err);
    g_assert_cmpint(mg_fs_classify(f->dfd, tmpname, NULL), ==, MG_FS_GONE);
    text = get(f, "final/keep.txt");
    g_assert_cmpstr(text, ==, "outside the tree\n");
    g_free(text);
    /* a temporary file, and a name that is gone */
    put(f, tmpname, "left over");
    g_assert_true(mg_fs_remove_temp(f->dfd, tmpname, &err));
    g_assert_no_error(err);
    g_assert_false(mg_fs_remove_temp(f->dfd, tmpname, &err));
    g_assert_error(err, MG_FSOPS_ERROR, MG_FSOPS_ERROR_GONE);
    g_clear_error(&err);

    /* mkdir_owned: made with the mode exactly, an existing folder is fine */
    g_assert_true(mg_fs_mkdir_owned(f->dfd, "user", getuid(), getgid(), 0710, &err));
    g_assert_no_error(err);
    p = at(f, "user");
    g_assert_cmpint(lstat(p, &st), ==, 0);
    g_assert_cmpuint(st.st_mode & 07777, ==, 0710);
    g_free(p);
    g_assert_true(mg_fs_mkdir_owned(f->dfd, "user", (uid_t)-1, (gid_t)-1, 0755, &err));
    g_assert_no_error(err);
    g_assert_false(mg_fs_mkdir_owned(f->dfd, "file", (uid_t)-1, (gid_t)-1, 0755, &err));
    g_assert_error(err, MG_FSOPS_ERROR, MG_FSOPS_ERROR_REFUSED);
    g_clear_error(&err);
    g_free(tmpname);
}

#define ADD(path, fn) g_test_add(path, struct fx, NULL, fx_setup, fn, fx_teardown)

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    ADD("/fsops/open-dir/nested", test_open_dir_nested);
    ADD("/fsops/open-dir/refused", test_open_dir_refused);
    ADD("/fsops/classify", test_classify);
    ADD("/fsops/open-input/regular", test_open_input_regular);
    ADD("/fsops/open-input/refused", test_open_input_refused);
    ADD("/fsops/open-input/swapped", test_open_input_swapped);
    g_test_add_func("/fsops/stable/clock", test_stable);
    ADD("/fsops/stable/real-file", test_stable_real);
    ADD("/fsops/out/commit", test_out_commit);
    ADD("/fsops/out/exists", test_out_exists);
    ADD("/fsops/out/abort", test_out_abort);
    ADD("/fsops/out/begin-refused", test_out_begin_refused);
    ADD("/fsops/out/owner", test_out_owner);
    ADD("/fsops/fsync-dir", test_fsync_dir);
    ADD("/fsops/remove", test_remove);
    ADD("/fsops/message-escaped", test_message_escaped);
    ADD("/fsops/folders", test_folders);
    return g_test_run();
}
