/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * NAME
 *	fsname 3h
 * SUMMARY
 *	file names for the transfer folder (mugaika-watch)
 * SYNOPSIS
 *	#include <mugaika/fsname.h>
 *
 *	char *utf8 = mg_fsname_decode(d->d_name, strlen(d->d_name), &cp932);
 *	char *safe = mg_fsname_safe(utf8, "file");
 *	char *name = mg_fsname_unique(out_dirfd, safe);
 *	char *tmp = mg_fsname_temp(name);
 *	... openat(out_dirfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, mode),
 *	    write, fsync, renameat2(.., tmp, .., name, RENAME_NOREPLACE) ...
 *	g_free(tmp); g_free(name); g_free(safe); g_free(utf8);
 * DESCRIPTION
 *	Staff drop files into an internet-side folder, often from Windows
 *	over SMB; the sanitised result is written into an LGWAN-side folder
 *	that Samba exports to Windows clients. These functions turn the
 *	bytes of a directory entry into a name that is safe to create on
 *	Linux and to open from Windows, pick a name no existing file
 *	resembles, and give the hidden temporary name the daemon writes
 *	under before renaming.
 *
 *	Every returned string is owned by the caller (g_free).
 *
 *	The rules are those of src/sanitize/names.c (mail attachment
 *	names) made general: names.c could call mg_fsname_safe and add
 *	its type-driven extension on top.
 */
#ifndef MUGAIKA_FSNAME_H
#define MUGAIKA_FSNAME_H

#include <stdbool.h>
#include <stddef.h>

/* Longest output name, in UTF-8 bytes (Linux NAME_MAX) and in UTF-16
 * code units (Windows/NTFS, SMB). Both hold at once. */
#define MG_FSNAME_MAX_BYTES 255
#define MG_FSNAME_MAX_UNITS 255

/* How many names mg_fsname_unique tries ("name", "stem (2).ext", ...
 * up to "stem (MG_FSNAME_UNIQUE_MAX).ext"). */
#define MG_FSNAME_UNIQUE_MAX 10000

/*
 * mg_fsname_decode - a directory entry's name as UTF-8
 *
 * raw, len: the bytes of the name. Decoding stops at the first NUL
 * byte within len (a directory entry cannot contain one; a NUL means
 * the caller passed a too-long len), so the result never holds one.
 * raw may be NULL when len is 0.
 *
 * Valid UTF-8 is kept and normalised to NFC (macOS clients write NFD:
 * "か" + U+3099 becomes "が"). Otherwise the bytes are decoded as CP932
 * (old clients, Samba with "unix charset = CP932"); if they are not
 * CP932 either, each byte that is not part of valid UTF-8 becomes
 * U+FFFD and the valid UTF-8 around it is kept. The result is always
 * valid NFC UTF-8.
 *
 * was_cp932 (may be NULL) is set to true when the CP932 decoding was
 * used, false otherwise.
 *
 * Returns a new string (g_free), never NULL.
 */
char *mg_fsname_decode(const char *raw, size_t len, bool *was_cp932);

/*
 * mg_fsname_safe - a name safe to create on Linux and open from Windows
 *
 * utf8 (may be NULL, treated as "") should be the result of
 * mg_fsname_decode; invalid UTF-8 is repaired first. The result is a
 * single path component:
 *
 * - dropped: C0 and C1 controls, DEL; every Unicode format character
 *   (category Cf: bidi embeddings, overrides and isolates U+202A-202E
 *   and U+2066-2069, zero-width U+200B-200F, U+2060-2064, U+FEFF,
 *   soft hyphen, tag characters, ...); U+2028 and U+2029; blank fillers
 *   that render as nothing (U+034F, U+115F, U+1160, U+3164, U+FFA0);
 *   noncharacters. These could hide or reorder an extension
 *   ("invoice\u202Efdp.exe" reads as "invoiceexe.pdf").
 * - replaced by '_': the characters Windows forbids, \ / : * ? " < > |
 *   and U+FFFD (a byte that could not be decoded). ASCII '_' rather than
 *   the full-width forms (＼／：＊？＂＜＞｜): the full-width forms are
 *   compatibility characters that NFKC (search indexers, sync tools,
 *   some archivers) folds back into the forbidden ones, so "..／x"
 *   would become "../x" further down the line; '_' also keeps these
 *   names identical to those of mail attachments (names.c).
 * - trimmed: leading spaces and dots, trailing spaces and dots. A
 *   leading dot is removed because Samba hides dot files from Windows
 *   users ("hide dot files = yes") and because temporary names begin
 *   with one (see mg_fsname_is_temp: no safe name is ever a temporary
 *   name).
 * - prefixed with '_': Windows device names (CON, PRN, AUX, NUL,
 *   COM0-9, LPT0-9, COM¹²³, LPT¹²³, CONIN$, CONOUT$, CLOCK$), any case,
 *   also followed by an extension or by blanks before it ("con.txt",
 *   "NUL .txt", "aux.tar.gz").
 * - cut to MG_FSNAME_MAX_BYTES UTF-8 bytes and MG_FSNAME_MAX_UNITS
 *   UTF-16 code units (characters beyond U+FFFF count 2): the stem is
 *   cut on a character boundary and the extension (the last ".xxx" of
 *   at most 32 bytes) is kept.
 *
 * Full-width characters already in the name are kept as they are. An
 * empty result ("", ".", "..", nothing left) is replaced by fallback
 * (itself made safe; "file" when fallback is NULL or unusable).
 *
 * Returns a new string (g_free), never NULL, never empty.
 */
char *mg_fsname_safe(const char *utf8, const char *fallback);

/*
 * mg_fsname_unique - a name no entry of a directory resembles
 *
 * dirfd: an open directory (O_PATH will do; not consumed). It is
 * listed once through openat(dirfd, ".") rather than dup(), so the
 * caller's directory offset is left alone. name: a safe name
 * (mg_fsname_safe).
 *
 * Returns the first of "name", "stem (2).ext", "stem (3).ext", ...
 * whose key differs from the key of every entry of the directory. The
 * key is what a Windows client compares: the name decoded as by
 * mg_fsname_decode, NFC, case-folded (g_utf8_casefold), with trailing
 * dots and spaces removed; so with "Report.PDF" present, "report.pdf"
 * becomes "report (2).pdf". Candidates are cut to the length limits
 * like mg_fsname_safe (the stem shrinks, " (n).ext" stays).
 *
 * This is advisory: another writer may create the name in between.
 * The caller must create with O_EXCL or rename with renameat2
 * RENAME_NOREPLACE (or linkat), and on EEXIST call again.
 *
 * Returns a new string (g_free), or NULL with errno set: EEXIST when
 * all MG_FSNAME_UNIQUE_MAX candidates are taken, EINVAL when name is
 * NULL, empty or holds '/', or the error of dup/fdopendir/readdir.
 */
char *mg_fsname_unique(int dirfd, const char *name);

/*
 * mg_fsname_temp, mg_fsname_is_temp - the daemon's temporary names
 *
 * mg_fsname_temp returns ".~mugaika-XXXXXXXXXXXXXXXX.tmp" where the X
 * are 16 lower-case hex digits (64 random bits, getrandom(2), g_random
 * if that fails): hidden from Windows users by Samba's default "hide
 * dot files = yes", and 30 bytes long whatever the final name. final
 * (may be NULL) is the name the file will be renamed to; it is not
 * used today, so that a temporary name never depends on user input
 * (no length or character problem can arise from it). The caller
 * creates the file with O_EXCL and draws a new name on EEXIST.
 *
 * mg_fsname_is_temp is true exactly for names of that form (case
 * sensitive: only what mg_fsname_temp can produce). The daemon
 * deletes such files from its output folders at start-up (they are
 * the leftovers of an interrupted write) and ignores them in events
 * on its output folders.
 *
 * A user cannot make the daemon mistake a file for its own: the
 * daemon writes temporary files only into output folders, never
 * into drop folders, so a dropped ".~mugaika-....tmp" is an ordinary
 * user file and is sanitised like any other; its output name comes
 * from mg_fsname_safe, which removes the leading dot, so it arrives
 * as "~mugaika-....tmp" and is never taken for a leftover.
 * mg_fsname_is_temp(mg_fsname_safe(x, f)) is false for every x and
 * every f.
 *
 * mg_fsname_temp returns a new string (g_free), never NULL.
 */
char *mg_fsname_temp(const char *final);
bool mg_fsname_is_temp(const char *name);

#endif
