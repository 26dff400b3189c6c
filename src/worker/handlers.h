/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * NAME
 *	handlers 3h
 * SUMMARY
 *	the handlers of mugaika-worker (one file each)
 */
#ifndef MUGAIKA_WORKER_HANDLERS_H
#define MUGAIKA_WORKER_HANDLERS_H

#include "worker/mgw.h"

enum mgw_status mgw_archive(struct mgw *w);     /* archive.c: unpack */
enum mgw_status mgw_ooxml(struct mgw *w);       /* ooxml.c: disarm docx/xlsx/pptx */
enum mgw_status mgw_image(struct mgw *w);       /* image.c: disarm (re-encode) */
enum mgw_status mgw_pdf_flatten(struct mgw *w); /* flatten.c: pages to an image-only PDF */
enum mgw_status mgw_rtf_text(struct mgw *w);    /* rtf.c: text of an RTF document */
enum mgw_status mgw_ole_text(struct mgw *w);    /* ole.c: text of a Word/Excel/PowerPoint 97 file */
enum mgw_status mgw_tnef(struct mgw *w);        /* tnef.c: attachments of winmail.dat */
enum mgw_status mgw_selftest(struct mgw *w);    /* selftest.c: sandbox tests */

#endif
