/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * NAME
 *	detect 3
 * SUMMARY
 *	content type detection with libmagic
 * SYNOPSIS
 *	#include <mugaika/detect.h>
 *
 *	struct mg_detect *mg_detect_new(const char **why);
 *	const char *mg_detect_buffer(struct mg_detect *d, const void *buf, size_t len);
 *	struct mg_detect *mg_detect_free(struct mg_detect *d);
 *	struct mg_detect *mg_detect_take(const char **why);
 *	void mg_detect_give(struct mg_detect *d);
 * DESCRIPTION
 *	One libmagic cookie per detector, opened with MAGIC_MIME_TYPE so
 *	the answer is a bare MIME type. The caller passes the first
 *	MG_DETECT_SNIFF_BYTES of the decoded content (libmagic reads no
 *	further for the types that matter here).
 *
 *	mg_detect_take and mg_detect_give lend detectors from a process-wide
 *	pool, for callers whose work does not stay on one thread (the
 *	milter's messages, the sanitiser's work-ahead threads). A new
 *	cookie costs far more than a detection: magic_load maps the
 *	database again, its pages are faulted in again, and the regular
 *	expressions are compiled again at their first use. A detector is
 *	used by one caller at a time: given back, it may go to another
 *	thread, which is safe because libmagic keeps no per-thread state
 *	in a cookie. At most DETECT_POOL idle detectors are kept.
 * DIAGNOSTICS
 *	mg_detect_new returns NULL and a reason when the magic database
 *	cannot be loaded. mg_detect_buffer never fails: a libmagic error
 *	reads as application/octet-stream (the most restrictive type).
 */
#include <string.h>

#include <magic.h>
#include <glib.h>

#include <mugaika/detect.h>

#define DETECT_POOL 64 /* idle detectors kept; each maps the database (shared pages) */

struct mg_detect {
    magic_t cookie;
    magic_t text; /* MAGIC_NO_CHECK_SOFT, made on first use */
};

struct mg_detect *mg_detect_new(const char **why)
{
    struct mg_detect *d;
    magic_t m = magic_open(MAGIC_MIME_TYPE | MAGIC_ERROR);

    if (m == NULL) {
        *why = "magic_open failed";
        return NULL;
    }
    if (magic_load(m, NULL) != 0) {
        *why = "cannot load the libmagic database (is libmagic-mgc installed?)";
        magic_close(m);
        return NULL;
    }
    d = g_new0(struct mg_detect, 1);
    d->cookie = m;
    return d;
}

const char *mg_detect_buffer(struct mg_detect *d, const void *buf, size_t len)
{
    const char *t;

    if (len == 0)
        return "application/x-empty";
    if (len > MG_DETECT_SNIFF_BYTES)
        len = MG_DETECT_SNIFF_BYTES;
    t = magic_buffer(d->cookie, buf, len);
    return t != NULL ? t : "application/octet-stream";
}

const char *mg_detect_text(struct mg_detect *d, const void *buf, size_t len)
{
    const char *t;

    if (len == 0)
        return NULL;
    if (d->text == NULL) {
        d->text = magic_open(MAGIC_MIME_TYPE | MAGIC_ERROR | MAGIC_NO_CHECK_SOFT);
        if (d->text == NULL)
            return NULL;
        if (magic_load(d->text, NULL) != 0) {
            magic_close(d->text);
            d->text = NULL;
            return NULL;
        }
    }
    if (len > MG_DETECT_SNIFF_BYTES)
        len = MG_DETECT_SNIFF_BYTES;
    t = magic_buffer(d->text, buf, len);
    return t != NULL && strncmp(t, "text/", 5) == 0 ? t : NULL;
}

struct mg_detect *mg_detect_free(struct mg_detect *d)
{
    if (d != NULL) {
        if (d->text != NULL)
            magic_close(d->text);
        magic_close(d->cookie);
        g_free(d);
    }
    return NULL;
}

static GMutex pool_lock;
static GPtrArray *pool;

struct mg_detect *mg_detect_take(const char **why)
{
    struct mg_detect *d = NULL;

    g_mutex_lock(&pool_lock);
    if (pool != NULL && pool->len > 0)
        d = g_ptr_array_steal_index_fast(pool, pool->len - 1);
    g_mutex_unlock(&pool_lock);
    return d != NULL ? d : mg_detect_new(why);
}

void mg_detect_give(struct mg_detect *d)
{
    if (d == NULL)
        return;
    g_mutex_lock(&pool_lock);
    if (pool == NULL)
        pool = g_ptr_array_new();
    if (pool->len < DETECT_POOL) {
        g_ptr_array_add(pool, d);
        d = NULL;
    }
    g_mutex_unlock(&pool_lock);
    mg_detect_free(d);
}
