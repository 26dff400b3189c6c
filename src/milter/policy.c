/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * NAME
 *	policy 3
 * SUMMARY
 *	the policy snapshot (rules + ClamAV engine) and its reload
 * DESCRIPTION
 *	A snapshot is immutable once built and reference-counted: each
 *	message pins the current one at its start (mg_policy_pin) and
 *	keeps it to its end, whatever reloads happen meanwhile. A reload
 *	builds the new rules and engine aside (compiling a ClamAV
 *	database takes seconds and a lot of memory: for that time both
 *	engines exist), then swaps the pointer under a mutex; the old
 *	snapshot goes when its last message ends. A failed reload leaves
 *	the current snapshot in place.
 */
#include <glib.h>

#include "milter/milter.h"

static GMutex lock; /* guards current */
static struct mg_policy *current;
static unsigned generation;

G_DEFINE_QUARK(mg - policy - error - quark, mg_policy_error)

struct mg_policy *mg_policy_load(const char *rules_dir, const char *clamav_db, GError **err)
{
    struct mg_policy *p;
    struct mg_rules *rules;
    struct mg_av *av;
    GError *e = NULL;

    rules = mg_rules_load(rules_dir, &e);
    if (rules == NULL) {
        g_set_error(err, mg_policy_error_quark(), MG_POLICY_CONFIG, "rules: %s", e->message);
        g_error_free(e);
        return NULL;
    }
    av = mg_av_open(clamav_db, &e);
    if (av == NULL) {
        g_set_error(err, mg_policy_error_quark(),
                    g_error_matches(e, MG_AV_ERROR, MG_AV_ERROR_NO_DATABASE) ? MG_POLICY_CONFIG
                                                                             : MG_POLICY_TEMPFAIL,
                    "antivirus: %s", e->message);
        g_error_free(e);
        mg_rules_unref(rules);
        return NULL;
    }
    p = g_new0(struct mg_policy, 1);
    g_atomic_ref_count_init(&p->ref);
    p->rules = rules;
    p->av = av;
    return p;
}

struct mg_policy *mg_policy_ref(struct mg_policy *p)
{
    g_atomic_ref_count_inc(&p->ref);
    return p;
}

void mg_policy_unref(struct mg_policy *p)
{
    if (p == NULL || !g_atomic_ref_count_dec(&p->ref))
        return;
    mg_rules_unref(p->rules);
    mg_av_unref(p->av);
    g_free(p);
}

void mg_policy_install(struct mg_policy *p)
{
    struct mg_policy *old;

    g_mutex_lock(&lock);
    p->generation = ++generation;
    old = current;
    current = p;
    g_mutex_unlock(&lock);
    mg_policy_unref(old);
}

struct mg_policy *mg_policy_pin(void)
{
    struct mg_policy *p = NULL;

    g_mutex_lock(&lock);
    if (current != NULL)
        p = mg_policy_ref(current);
    g_mutex_unlock(&lock);
    return p;
}

bool mg_policy_reload(const char *rules_dir, const char *clamav_db, GError **err)
{
    struct mg_policy *p = mg_policy_load(rules_dir, clamav_db, err);

    if (p == NULL)
        return false;
    mg_policy_install(p);
    return true;
}

void mg_policy_shutdown(void)
{
    struct mg_policy *old;

    g_mutex_lock(&lock);
    old = current;
    current = NULL;
    g_mutex_unlock(&lock);
    mg_policy_unref(old);
}
