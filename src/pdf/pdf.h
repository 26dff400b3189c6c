/* SPDX-License-Identifier: GPL-2.0-or-later */
#ifndef MUGAIKA_PDF_H
#define MUGAIKA_PDF_H

#include "worker/mgw.h"

enum mgw_status mgw_pdf_disarm(struct mgw *w); /* disarm.c */

#endif
