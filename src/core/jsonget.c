/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * NAME
 *	jsonget 3
 * SUMMARY
 *	strict reading of JSON members (see jsonget.h)
 */
#include <string.h>

#include "core/jsonget.h"

bool mg_json_get_int(JsonObject *o, const char *key, gint64 *out)
{
    JsonNode *n = json_object_get_member(o, key);

    if (n == NULL || !JSON_NODE_HOLDS_VALUE(n) || json_node_get_value_type(n) != G_TYPE_INT64)
        return false;
    *out = json_node_get_int(n);
    return true;
}

const char *mg_json_get_str(JsonObject *o, const char *key)
{
    JsonNode *n = json_object_get_member(o, key);

    if (n == NULL || !JSON_NODE_HOLDS_VALUE(n) || json_node_get_value_type(n) != G_TYPE_STRING)
        return NULL;
    return json_node_get_string(n);
}

char *mg_json_unb64(const char *s)
{
    gsize len = 0;
    guchar *raw;
    char *again, *out = NULL;

    if (*s == '\0')
        return g_strdup("");
    raw = g_base64_decode(s, &len);
    again = g_base64_encode(raw, len);
    if (strcmp(again, s) == 0 && len > 0 && memchr(raw, '\0', len) == NULL)
        out = g_strndup((const char *)raw, len);
    g_free(again);
    g_free(raw);
    return out;
}
