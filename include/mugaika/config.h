/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * NAME
 *	config 3h
 * SUMMARY
 *	the configuration file (/etc/mugaika/mugaika.conf)
 * DESCRIPTION
 *	A GKeyFile with one group [mugaika]. Every key is optional; the
 *	built-in defaults work with no file at all. Command-line options
 *	override the file. Keys (this stage; the milter and the watcher
 *	add theirs):
 *	  rules = DIR            policy directory (default: built-in)
 *	  quarantine = DIR       (MG_QUARANTINE_DEFAULT_DIR)
 *	  clamav-db = DIR        (MG_AV_DEFAULT_DB)
 *	  lang = ja | en         notice language (ja)
 *	  audit = FILE | -       audit log (none; "-": standard error)
 *	  spool = DIR            temporary files ($TMPDIR or /tmp)
 *	  retention-days = N     quarantine retention (90)
 * DIAGNOSTICS
 *	Unknown group or key, bad value, syntax error: a GError (domain
 *	MG_CONFIG_ERROR) naming "FILE:LINE: KEY: reason".
 */
#ifndef MUGAIKA_CONFIG_H
#define MUGAIKA_CONFIG_H

#include <stdbool.h>

#include <glib.h>

#define MG_CONFIG_DEFAULT_FILE "/etc/mugaika/mugaika.conf"

GQuark mg_config_error_quark(void);
#define MG_CONFIG_ERROR (mg_config_error_quark())

struct mg_config {
    char *file; /* the file read, or NULL when none */
    char *rules_dir;
    char *quarantine_dir;
    char *clamav_db;
    char *lang;
    char *audit;
    char *spool_dir;
    unsigned retention_days;
};

/* path NULL: MG_CONFIG_DEFAULT_FILE when it exists, else defaults only.
 * A path given but missing is an error. */
bool mg_config_load(const char *path, struct mg_config *out, GError **err);
void mg_config_clear(struct mg_config *c);

#endif
