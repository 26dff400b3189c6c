/* SPDX-License-Identifier: GPL-2.0-or-later */
/* PLACEHOLDER: being written; refuses every item until then. */
#include "worker/handlers.h"

enum mgw_status mgw_tnef(struct mgw *w)
{
    mgw_reason(w, "handler not written yet");
    return MGW_FAIL;
}
