/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * NAME
 *	jsonget 3h
 * SUMMARY
 *	libmugaika internal: strict reading of JSON members
 * DESCRIPTION
 *	For files mugaika writes itself and reads back (the watcher's
 *	journal, status.json), where anything unexpected means damage:
 *
 *	mg_json_get_int: true and *out when member key is an integer.
 *	mg_json_get_str: member key when it is a string (borrowed), else
 *	NULL.
 *	mg_json_unb64: the bytes of s, base64, as a string (g_free); NULL
 *	unless s is exactly the canonical encoding of bytes without a NUL.
 *	"" gives "".
 */
#ifndef MUGAIKA_CORE_JSONGET_H
#define MUGAIKA_CORE_JSONGET_H

#include <stdbool.h>

#include <json-glib/json-glib.h>

bool mg_json_get_int(JsonObject *o, const char *key, gint64 *out);
const char *mg_json_get_str(JsonObject *o, const char *key);
char *mg_json_unb64(const char *s);

#endif
