/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * NAME
 *	status 3h
 * SUMMARY
 *	operational status codes shared by every libmugaika module
 * DESCRIPTION
 *	Input defects are not errors (see mime.h); operational failures
 *	are reported as enum mg_status, whose names and strings come from
 *	the single X-macro below.
 */
#ifndef MUGAIKA_STATUS_H
#define MUGAIKA_STATUS_H

#define MG_STATUS_LIST(X)                                                                          \
    X(OK, "ok")                                                                                    \
    X(ERR_CALLBACK, "callback returned an error")                                                  \
    X(ERR_STATE, "call not valid in this state")                                                   \
    X(ERR_IO, "input/output error")                                                                \
    X(ERR_USAGE, "invalid argument")                                                               \
    X(ERR_CONFIG, "configuration error")                                                           \
    X(ERR_INTERNAL, "internal error")

enum mg_status {
#define MG_STATUS_ENUM(name, str) MG_##name,
    MG_STATUS_LIST(MG_STATUS_ENUM)
#undef MG_STATUS_ENUM
        MG_STATUS_COUNT
};

/* Returns a static string; never NULL. */
const char *mg_status_str(enum mg_status st);

#endif
