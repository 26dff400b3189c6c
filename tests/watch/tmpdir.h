/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * tmpdir.h: the temporary folder of a test case (tests/watch), made with
 * an open descriptor, and removed with everything in it (symbolic links
 * not followed). Header only: each test is one executable.
 */
#ifndef MUGAIKA_TESTS_TMPDIR_H
#define MUGAIKA_TESTS_TMPDIR_H

#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <unistd.h>

#include <glib.h>

/* A new folder from tmpl ("name-XXXXXX"; g_free), *dfd open on it. */
static inline char *tmpdir_make(const char *tmpl, int *dfd)
{
    GError *err = NULL;
    char *dir = g_dir_make_tmp(tmpl, &err);

    g_assert_no_error(err);
    *dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    g_assert_cmpint(*dfd, >=, 0);
    return dir;
}

static inline int tmpdir_rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)ftw;
    return flag == FTW_DP ? rmdir(path) : unlink(path);
}

/* Closes dfd, removes dir and all in it, frees dir. */
static inline void tmpdir_remove(char *dir, int dfd)
{
    close(dfd);
    g_assert_cmpint(nftw(dir, tmpdir_rm_one, 16, FTW_DEPTH | FTW_PHYS), ==, 0);
    g_free(dir);
}

#endif
