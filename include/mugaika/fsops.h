/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * NAME
 *	fsops 3h
 * SUMMARY
 *	safe file-system operations for the transfer folder (mugaika-watch)
 * DESCRIPTION
 *	Everything works relative to a directory file descriptor and never
 *	follows a symbolic link. Except for mg_fs_open_dir, every name
 *	argument is ONE directory entry: not empty, no '/', not "." or
 *	".."; anything else is refused (a name with a '/' would let openat
 *	follow a symbolic link in a middle component).
 *
 *	mg_fs_open_dir opens a directory below parent_fd (name may have
 *	several components, never ".." nor absolute, never through a
 *	symbolic link). The result is a real read-only descriptor
 *	(O_DIRECTORY, close-on-exec) owned by the caller.
 *
 *	mg_fs_classify says what a directory entry is, without following
 *	it. st (may be NULL) receives the lstat data when the kind is
 *	neither MG_FS_GONE nor MG_FS_ERROR; on MG_FS_ERROR errno is set.
 *	mg_fs_kind_name returns a short static token ("regular",
 *	"symlink", ...) for logs and reports.
 *
 *	mg_fs_open_input opens a dropped file for reading: only a regular
 *	file with one link that is still the entry that was looked at; a
 *	FIFO cannot block the open. Returns the descriptor (blocking
 *	mode, close-on-exec, owned by the caller) and fills st (may be
 *	NULL) from fstat of that descriptor, or -1 and err.
 *
 *	mg_fs_stable_check decides whether a file written over SMB/NFS is
 *	complete: true once (dev, ino, size, mtime, ctime) has not changed
 *	for quiet_us microseconds of now_us (a monotonic clock, e.g.
 *	g_get_monotonic_time). The first observation starts the clock,
 *	any change (or a clock that went backwards) restarts it. Pure: it
 *	reads nothing but its arguments. Initialise with
 *	mg_fs_stable_init (or zero the struct).
 *
 *	Atomic output. mg_fs_out_begin creates tmp_name in dirfd
 *	(O_EXCL, never through a symbolic link, mode 0600 while being
 *	written) and returns a writer owned by the caller; dirfd is
 *	duplicated, the caller may close its own. mode is the final
 *	file's permission bits (& 0777), applied exactly by fchmod, the
 *	umask does not reduce it. mg_fs_out_set_owner asks for an owner
 *	and/or group ((uid_t)-1 / (gid_t)-1: unchanged); without it no
 *	fchown is done. mg_fs_out_fd lends the descriptor (for writers
 *	that want a fd; do not close it). mg_fs_out_write writes all of
 *	buf; a failed write makes the writer fail: commit then refuses.
 *	mg_fs_out_commit fsyncs the file, applies owner and mode, renames
 *	tmp_name to final_name without ever replacing an existing entry
 *	(renameat2 RENAME_NOREPLACE) and fsyncs the directory. On success
 *	the writer is freed. On failure it stays valid: with
 *	MG_FSOPS_ERROR_EXISTS the tmp file is untouched and the caller may
 *	call commit again with another name; otherwise the caller calls
 *	mg_fs_out_abort. If only the final directory fsync failed
 *	(MG_FSOPS_ERROR_IO, the file already visible under final_name), a
 *	new commit retries that fsync alone and abort frees without
 *	removing anything. mg_fs_out_sync applies owner and mode and
 *	fsyncs the file, once (commit then only renames): a failed fchown
 *	or fchmod is an error, a failed fsync makes the writer fail.
 *	mg_fs_out_close is commit without the rename: sync, check that
 *	tmp_name is still this file, close and free the writer; the file
 *	stays under tmp_name (for a file created under its final name in
 *	a folder that is still hidden, or renamed later by name with
 *	mg_fs_rename_noreplace). On failure the writer stays valid (abort
 *	it).
 *	mg_fs_out_abort closes the file, removes tmp_name if it is still
 *	the file this writer created, and frees the writer (NULL is fine).
 *
 *	mg_fs_fsync_dir makes the entries of a directory durable.
 *
 *	mg_fs_remove unlinks name only if it is still the file described
 *	by expect: same st_dev, st_ino, st_size and st_mtim (so a file
 *	that was replaced, or written again after it was read, stays),
 *	then fsyncs dirfd.
 *
 *	Folders. mg_fs_dir_mode gives a folder's permission bits for
 *	output files of file_mode: the same bits plus x wherever r is set
 *	(0640 -> 0750, 0644 -> 0755, 0600 -> 0700).
 *
 *	mg_fs_mkdir_new creates the folder name in dirfd, mode 0700, that
 *	must not exist (MG_FSOPS_ERROR_EXISTS otherwise; never through a
 *	symbolic link) and returns a descriptor of it (O_DIRECTORY,
 *	close-on-exec, owned by the caller), or -1 and err.
 *	mg_fs_dir_settle applies owner and group ((uid_t)-1 / (gid_t)-1:
 *	unchanged; fchown only when one is asked) and exactly mode (& 0777)
 *	to the folder fd, then fsyncs it (its entries become durable).
 *
 *	mg_fs_mkdir_owned makes sure name in dirfd is a folder: an
 *	existing folder is fine and left as it is (EEXIST is not an
 *	error); an existing entry of another kind is refused. A new one
 *	is built under a hidden temporary name (mg_fsname_temp), given
 *	uid, gid and exactly mode (& 0777; see mg_fs_dir_mode), fsynced,
 *	renamed to name without replacing anything (a folder made
 *	meanwhile by someone else wins) and dirfd fsynced: it never shows
 *	with other owner or permissions. A failed fchown is an error.
 *
 *	mg_fs_rename_noreplace renames the file or folder from to to,
 *	both in dirfd, never replacing an existing entry
 *	(MG_FSOPS_ERROR_EXISTS when to is taken; anything but a regular
 *	file or a folder is refused), then fsyncs dirfd.
 *
 *	mg_fs_remove_temp removes a leftover of the daemon: name must be a
 *	temporary name (mg_fsname_is_temp; anything else is refused and
 *	kept) and may be a file or a folder tree, which is removed depth
 *	first without following symbolic links (a link is removed, not
 *	its target) or entering another file system; then dirfd is
 *	fsynced. MG_FSOPS_ERROR_GONE when name does not exist.
 *
 *	Thread safety: every function may be called from several
 *	threads; one writer is used by one thread at a time.
 * DIAGNOSTICS
 *	GError domain MG_FSOPS_ERROR. Messages read "PATH: OPERATION:
 *	REASON", PATH being the directory (from /proc/self/fd when
 *	available) and the name, with control characters, invalid UTF-8
 *	and bidirectional controls escaped. Codes:
 *	MG_FSOPS_ERROR_IO: any system error (disk full, permission, ...);
 *	MG_FSOPS_ERROR_REFUSED: not a safe object (symbolic link, device,
 *	FIFO, socket, hard link, a name that escapes or has a '/');
 *	MG_FSOPS_ERROR_GONE: the entry does not exist (any more);
 *	MG_FSOPS_ERROR_CHANGED: the entry is no longer the file that was
 *	looked at (swapped, replaced or modified);
 *	MG_FSOPS_ERROR_EXISTS: commit's final name is taken.
 */
#ifndef MUGAIKA_FSOPS_H
#define MUGAIKA_FSOPS_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/stat.h>
#include <sys/types.h>

#include <glib.h>

GQuark mg_fsops_error_quark(void);
#define MG_FSOPS_ERROR (mg_fsops_error_quark())
enum mg_fsops_error {
    MG_FSOPS_ERROR_IO,
    MG_FSOPS_ERROR_REFUSED,
    MG_FSOPS_ERROR_GONE,
    MG_FSOPS_ERROR_CHANGED,
    MG_FSOPS_ERROR_EXISTS,
};

enum mg_fs_kind {
    MG_FS_REGULAR,
    MG_FS_DIRECTORY,
    MG_FS_SYMLINK,
    MG_FS_HARDLINK, /* a regular file with st_nlink > 1 */
    MG_FS_DEVICE,   /* character or block */
    MG_FS_FIFO,
    MG_FS_SOCKET,
    MG_FS_GONE,  /* no such entry */
    MG_FS_ERROR, /* fstatat failed otherwise (errno), or a bad name (EINVAL) */
};

int mg_fs_open_dir(int parent_fd, const char *name, GError **err);

enum mg_fs_kind mg_fs_classify(int dirfd, const char *name, struct stat *st);
const char *mg_fs_kind_name(enum mg_fs_kind kind);

int mg_fs_open_input(int dirfd, const char *name, struct stat *st, GError **err);

struct mg_fs_stable {
    bool seen;
    dev_t dev;
    ino_t ino;
    off_t size;
    gint64 mtime_ns;
    gint64 ctime_ns;
    gint64 since_us; /* now_us of the last change */
};
void mg_fs_stable_init(struct mg_fs_stable *t);
bool mg_fs_stable_check(struct mg_fs_stable *t, const struct stat *st, gint64 now_us,
                        gint64 quiet_us);

struct mg_fs_out;
struct mg_fs_out *mg_fs_out_begin(int dirfd, const char *tmp_name, mode_t mode, GError **err);
void mg_fs_out_set_owner(struct mg_fs_out *out, uid_t uid, gid_t gid);
int mg_fs_out_fd(const struct mg_fs_out *out);
bool mg_fs_out_write(struct mg_fs_out *out, const void *buf, size_t len, GError **err);
bool mg_fs_out_commit(struct mg_fs_out *out, const char *final_name, GError **err);
bool mg_fs_out_sync(struct mg_fs_out *out, GError **err);
bool mg_fs_out_close(struct mg_fs_out *out, GError **err);
void mg_fs_out_abort(struct mg_fs_out *out);

bool mg_fs_fsync_dir(int dirfd, GError **err);

bool mg_fs_remove(int dirfd, const char *name, const struct stat *expect, GError **err);

/* Folders nested deeper than this are not removed by mg_fs_remove_temp. */
#define MG_FS_TREE_DEPTH 256

mode_t mg_fs_dir_mode(mode_t file_mode);
int mg_fs_mkdir_new(int dirfd, const char *name, GError **err);
bool mg_fs_dir_settle(int fd, uid_t uid, gid_t gid, mode_t mode, GError **err);
bool mg_fs_mkdir_owned(int dirfd, const char *name, uid_t uid, gid_t gid, mode_t mode,
                       GError **err);
bool mg_fs_rename_noreplace(int dirfd, const char *from, const char *to, GError **err);
bool mg_fs_remove_temp(int dirfd, const char *name, GError **err);

/* For the unit tests only: the daemon never calls this. no_openat2
 * forces the per-component walk of mg_fs_open_dir; before_open, when
 * set, runs in mg_fs_open_input between its fstatat and its openat
 * (to swap the file deterministically). NULL restores the defaults. */
struct mg_fs_test_hooks {
    bool no_openat2;
    void (*before_open)(int dirfd, const char *name, void *user);
    void *user;
};
void mg_fs_set_test_hooks(const struct mg_fs_test_hooks *hooks);

#endif
