/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * NAME
 *	config 3h
 * SUMMARY
 *	the configuration file (/etc/mugaika/mugaika.conf)
 * DESCRIPTION
 *	A GKeyFile with one group [mugaika]. Every key is optional; the
 *	built-in defaults work with no file at all. Command-line options
 *	override the file. docs/configuration.md is the reference; the
 *	keys, their defaults and who reads them:
 *
 *	  rules = DIR            policy directory (built-in policy)
 *	  quarantine = DIR       (MG_QUARANTINE_DEFAULT_DIR)
 *	  clamav-db = DIR        (MG_AV_DEFAULT_DB)
 *	  lang = ja | en         notice language (ja)
 *	  audit = FILE | -       audit log (none; "-": standard error)
 *	  spool = DIR            temporary files ($TMPDIR or /tmp)
 *	  retention-days = N     quarantine retention, 1-36500 (90)
 *	  max-header-bytes = SIZE   one header block (256K; 1K-64M)
 *	  max-line-bytes = SIZE     one line (64K; 78-1G)
 *	  max-depth = N             MIME nesting (64; 1-1000)
 *	  max-parts = N             entities per message (10000; 1-1000000)
 *	  spool-memory = SIZE       part bytes kept in memory per message
 *	                            (8M; 0-1G, 0: all in spool files)
 *	  html-budget-ms = N        time per HTML part (2000; 1-600000)
 *	milter only (mugaika-milter):
 *	  socket = unix:/PATH | local:/PATH | inet:PORT@HOST
 *	                         (MG_CONFIG_DEFAULT_SOCKET)
 *	  user = NAME, group = NAME   account to run as after opening the
 *	                         socket (none: keep the starting one)
 *	  log-level = error | warning | notice | info | debug   (info)
 *	  max-message-size = SIZE   larger messages are refused (0: no
 *	                         limit of mugaika's own; 0-1T)
 *	  message-timeout = SECONDS  one message, first byte to verdict;
 *	                         then a temporary failure (600; 1-86400)
 *	  milter-timeout = SECONDS   libmilter socket I/O (600; 1-86400)
 *
 *	SIZE is a number of bytes with an optional suffix K, M or G
 *	(also k, m, g; powers of 1024), e.g. 256K.
 *
 *	mg_config_load fills every field: the defaults, then the file.
 *	Strings are owned by the struct (mg_config_clear frees them);
 *	rules_dir, quarantine_dir, clamav_db, lang, audit, spool_dir,
 *	user and group are NULL when not set (the program's own default
 *	applies); socket is never NULL after a successful load.
 * DIAGNOSTICS
 *	Unknown group or key, bad value, syntax error: a GError (domain
 *	MG_CONFIG_ERROR) naming "FILE:LINE: KEY: reason", one line per
 *	error, every error of the file.
 */
#ifndef MUGAIKA_CONFIG_H
#define MUGAIKA_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <glib.h>

#include <mugaika/mime.h>

#define MG_CONFIG_DEFAULT_FILE   "/etc/mugaika/mugaika.conf"
#define MG_CONFIG_DEFAULT_SOCKET "unix:/run/mugaika/milter.sock"

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
    /* the milter daemon */
    char *socket;               /* "unix:/PATH", "local:/PATH" or "inet:PORT@HOST", as written */
    char *user;                 /* NULL: keep the starting account */
    char *group;                /* NULL: not set (see docs/configuration.md) */
    int log_level;              /* syslog LOG_ERR .. LOG_DEBUG (LOG_INFO) */
    uint64_t max_message_bytes; /* 0: no limit of mugaika's own */
    unsigned message_timeout;   /* seconds for one message (600) */
    unsigned milter_timeout;    /* libmilter socket I/O timeout, seconds (600) */
    /* the sanitising pipeline (mugaika sanitize and the milter) */
    struct mg_mime_limits limits; /* header_bytes, line_bytes, depth, parts from the file */
    size_t spool_memory;          /* bytes (8 MiB) */
    unsigned html_budget_ms;      /* per HTML part (2000) */
    /* CDR workers and archives */
    char *worker_dir;         /* NULL: found as cdr.c says */
    unsigned worker_timeout;  /* seconds of wall clock per worker run (60) */
    unsigned worker_budget;   /* seconds of wall clock for all the runs of a message (120) */
    unsigned worker_cpu;      /* CPU seconds per worker run (30) */
    uint64_t worker_memory;   /* address space of a worker (1 GiB) */
    unsigned archive_depth;   /* nested archives unpacked (5) */
    unsigned archive_members; /* members per message (1000) */
    uint64_t archive_size;    /* expanded bytes per message (200 MiB) */
    unsigned archive_ratio;   /* expanded:compressed (100) */
    /* the transfer folder (mugaika-watch) */
    char *watch_state;             /* journal and status.json (MG_CONFIG_DEFAULT_WATCH_STATE) */
    unsigned watch_workers;        /* files sanitised at once (2) */
    unsigned watch_queue;          /* files taken ahead of the workers (64) */
    unsigned watch_quiet_ms;       /* unchanged this long before taken (2000) */
    unsigned watch_scan_ms;        /* rescan interval (1000) */
    unsigned watch_user_files;     /* quota: files per user per UTC day, 0: none */
    uint64_t watch_user_bytes;     /* quota: bytes per user per UTC day, 0: none */
    struct mg_config_watch *watch; /* the [watch NAME] groups, in file order */
    unsigned n_watch;
};

/* One [watch NAME] group: an (in -> out) pair of the transfer folder.
 * user_files and user_bytes are the pair's own or, when the group does not
 * set them, the watch-user-* values. */
struct mg_config_watch {
    char *name;
    char *in, *out;      /* absolute paths */
    char *owner, *group; /* NULL: as the daemon creates them */
    unsigned mode;       /* permission bits of output files (0644) */
    unsigned user_files;
    uint64_t user_bytes;
};

#define MG_CONFIG_DEFAULT_WATCH_STATE "/var/lib/mugaika/watch"

/* path NULL: MG_CONFIG_DEFAULT_FILE when it exists, else defaults only.
 * A path given but missing is an error. On failure *out holds nothing
 * (all zero) and needs no clear. */
bool mg_config_load(const char *path, struct mg_config *out, GError **err);
/* Frees the strings and zeroes *c; safe on a zeroed struct. */
void mg_config_clear(struct mg_config *c);

/* "error", "warning", "notice", "info", "debug" for LOG_ERR ..
 * LOG_DEBUG; "?" for any other value. Static string. */
const char *mg_config_log_level_name(int level);

/* Applies the file's lang, spool, limits (header, line, depth, parts),
 * spool_memory and html_budget_ms onto o, which mg_sanitize_opts_default
 * filled. lang and spool_dir are set only when the file sets them and
 * are borrowed from c: c must outlive the use of o (mg_sanitize_new
 * copies them). */
struct mg_sanitize_opts;
/* NULL when v is a milter socket (unix:/PATH, local:/PATH, inet:PORT@HOST),
 * else the reason (caller frees): for command-line values. */
char *mg_config_check_socket(const char *v);
void mg_config_sanitize_opts(const struct mg_config *c, struct mg_sanitize_opts *o);

#endif
