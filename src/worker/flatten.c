/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * NAME
 *	flatten 3
 * SUMMARY
 *	pdf-flatten: every page of a PDF rendered to one image in a new PDF
 * SYNOPSIS
 *	enum mgw_status mgw_pdf_flatten(struct mgw *w);
 *
 *	mugaika-worker pdf-flatten [name=N] [dpi=D] [max-pages=N]
 *		[max-pixels=N] [max-size=N] [image=auto|jpeg|flate]
 *		<item >records
 * DESCRIPTION
 *	The item is read into memory and opened with poppler (no password:
 *	an empty user password is all it tries). Every page is rendered
 *	with cairo into an opaque RGB image filled white first, and a new
 *	PDF is written by cairo's PDF surface straight into the output
 *	(mgw_out_write; no file is written): one page per original page,
 *	the same size in points (the crop box, rotation applied), holding
 *	one image and nothing else. Nothing of the original object graph
 *	reaches the output: no text, fonts, actions, JavaScript,
 *	annotations, forms, attachments, outline or metadata.
 *
 *	Pages are rendered the way they would be printed
 *	(poppler_page_render_for_printing_with_options with
 *	POPPLER_PRINT_DOCUMENT): the page content, optional content in its
 *	print state, and form fields' appearances (a filled-in value is
 *	part of what the page shows), but no other annotation: comments,
 *	stamps, link borders, file-attachment and media icons are left
 *	out, and so are hidden annotations. Screen rendering would draw
 *	every annotation with an appearance, and build a text page that
 *	nothing here needs.
 *
 *	Each page image is stored in one of two ways, chosen per page
 *	(image=auto, the default): cairo's own Flate stream of the pixels
 *	(lossless; cairo writes one gray byte a pixel when every pixel is
 *	gray), or a JPEG at quality 85 (libjpeg, one gray component for an
 *	all-gray page) that cairo embeds as it is (DCTDecode), attached as
 *	the image's mime data. JPEG is taken when it is at least a fifth
 *	smaller than Flate, both sizes being measured on the same sample
 *	(one band of 16 rows in every 128): text on a plain background
 *	stays lossless, and smaller that way (a text A4 page at 150 dpi is
 *	about 70 KB with Flate and 200 KB as JPEG); pictures become JPEG
 *	(a photo page: 5.9 MB against 21.8 MB). image=flate or image=jpeg
 *	forces one way for every page.
 *
 *	Options: name (the output's name; NULL when absent), dpi
 *	(default 150, clamped to 36..300), max-pages (default 200),
 *	max-pixels per page (default 40000000, at least 1000000),
 *	max-size of the input in bytes (default 104857600), image.
 *
 *	Notes: "converted" (N pages rendered at D dpi); "info" when pages
 *	were stored as JPEG, when pages were rendered below the requested
 *	dpi to stay under max-pixels, or when the original restricted
 *	printing or copying; "removed" for
 *	what the original had: JavaScript (poppler's check, or the names
 *	/JavaScript or /JS in the raw bytes), actions (/OpenAction, /AA,
 *	/Launch, /SubmitForm, /GoToR, /GoToE, /ImportData in the raw
 *	bytes: a plain search that misses object streams, so these notes
 *	are a courtesy, not a finding), embedded files, form fields,
 *	links, file-attachment and other annotations, the outline and the
 *	document metadata; "defect" when a page's rendering stopped early
 *	(the page then holds what was drawn until then) or when pages the
 *	page tree counts cannot be loaded (they are left out; no page at
 *	all is MGW_FAIL).
 * LIMITS
 *	max-size (MGW_LIMIT); more pages than max-pages (MGW_LIMIT before
 *	anything is rendered); a page larger than max-pixels at the
 *	requested dpi is rendered at the highest dpi that fits (and no
 *	side above 32767 pixels, cairo's limit). A page whose size is not
 *	a finite number of points between 0 and 14400000 fails. Time is
 *	the rendering of each page (unbounded inside poppler; RLIMIT_CPU
 *	and the parent's deadline stop it); memory is one page image
 *	(4 bytes a pixel) plus what cairo and poppler need for it (about
 *	330 MB for a page at the default max-pixels); cairo writes each
 *	page's image when the page is shown, so memory does not grow with
 *	the page count. CPU time is about 45 ms a text A4 page at 150 dpi
 *	(two thirds of it cairo's Flate compression; 20 ms with
 *	image=jpeg). XFA forms are not rendered (poppler
 *	draws the AcroForm fallback the file carries, often a "please
 *	wait" page).
 * DIAGNOSTICS
 *	MGW_ENCRYPTED when a user password is needed; MGW_FAIL when poppler
 *	cannot open the item or the document has no page; MGW_LIMIT as
 *	above or when a page image cannot be allocated. Poppler's own
 *	syntax warnings go to stderr.
 * FONTS
 *	Fonts that are not embedded (Japanese ones are often not) are
 *	found through fontconfig, which reads the system cache: it cannot
 *	write a cache in the sandbox, and does not need to.
 */
#include <setjmp.h>
#include <stdio.h>
#include <string.h>

#include <cairo-pdf.h>
#include <cairo.h>
#include <jpeglib.h>
#include <poppler.h>
#include <zlib.h>

#include "worker/handlers.h"

#define FLAT_DPI_MIN      36
#define FLAT_DPI_MAX      300
#define FLAT_SIDE_MAX     32767  /* cairo image surfaces */
#define FLAT_PAGE_PT_MAX  14.4e6 /* points a side */
#define FLAT_JPEG_QUALITY 85
#define FLAT_PIXELS_MIN   1000000 /* smallest max-pixels accepted */

enum flat_image {
    FLAT_AUTO,  /* per page, the smaller of the two */
    FLAT_JPEG,  /* always JPEG */
    FLAT_FLATE, /* always Flate (lossless) */
};

struct flat {
    struct mgw *w;
    PopplerDocument *doc;
    double dpi;
    uint64_t max_pixels;
    enum flat_image image;
    int reduced;              /* pages rendered below dpi */
    double lowest_dpi;        /* the lowest of those */
    int n_jpeg;               /* pages stored as JPEG */
    int rendered;             /* pages in the output */
    int missing;              /* pages poppler could not load */
    const unsigned char *raw; /* the item */
    size_t raw_len;
};

/* cairo's PDF writer: every byte goes to the output record stream. */
static cairo_status_t out_write(void *closure, const unsigned char *data, unsigned int len)
{
    return mgw_out_write(closure, data, len) ? CAIRO_STATUS_SUCCESS : CAIRO_STATUS_WRITE_ERROR;
}

/* Pixels for pt points at dpi: rounded up, at least 1 (pt is at most
 * FLAT_PAGE_PT_MAX, so the result fits a double's integers). */
static double side_pixels(double pt, double dpi)
{
    double v = pt * dpi / 72.0;
    double n = (double)(int64_t)v;

    if (n < v - 1e-9)
        n += 1;
    return n < 1 ? 1 : n;
}

static bool pixels_fit(const struct flat *f, double wpt, double hpt, double dpi)
{
    double pw = side_pixels(wpt, dpi), ph = side_pixels(hpt, dpi);

    return pw <= FLAT_SIDE_MAX && ph <= FLAT_SIDE_MAX && pw * ph <= (double)f->max_pixels;
}

/*
 * The pixel size of a page of wpt x hpt points at f->dpi or, when that
 * is over max-pixels or cairo's side limit, at the highest dpi that
 * fits (bisection: 48 steps). Sets *dpi to the dpi used; false when
 * even the lowest does not fit (not with max-pixels >= FLAT_PIXELS_MIN;
 * kept as a guard).
 */
static bool page_pixels(const struct flat *f, double wpt, double hpt, int *wpx, int *hpx,
                        double *dpi)
{
    double lo = 0, hi = f->dpi, d = f->dpi;

    if (!pixels_fit(f, wpt, hpt, d)) {
        for (int i = 0; i < 48; i++) {
            double mid = (lo + hi) / 2;
            if (pixels_fit(f, wpt, hpt, mid))
                lo = mid;
            else
                hi = mid;
        }
        d = lo;
        if (d <= 0 || !pixels_fit(f, wpt, hpt, d))
            return false;
    }
    *wpx = (int)side_pixels(wpt, d);
    *hpx = (int)side_pixels(hpt, d);
    *dpi = d;
    return true;
}

/* libjpeg reports errors by calling error_exit; it must not return. */
struct jpeg_fail {
    struct jpeg_error_mgr mgr;
    jmp_buf env;
};

static void jpeg_fail_exit(j_common_ptr c)
{
    struct jpeg_fail *e = (struct jpeg_fail *)c->err;
    longjmp(e->env, 1);
}

static void jpeg_quiet(j_common_ptr c, int level)
{
    (void)c;
    (void)level;
}

/* One row of an RGB24 surface as packed RGB (or gray: the red byte). */
static void row_pack(const unsigned char *line, int wpx, bool gray, unsigned char *out)
{
    for (int x = 0; x < wpx; x++) {
        uint32_t v;
        memcpy(&v, line + 4 * (size_t)x, 4); /* native-endian xRGB */
        if (gray) {
            out[x] = (unsigned char)(v >> 16);
        } else {
            out[3 * x] = (unsigned char)(v >> 16);
            out[3 * x + 1] = (unsigned char)(v >> 8);
            out[3 * x + 2] = (unsigned char)v;
        }
    }
}

/* Whether every pixel of the image is a gray (R = G = B). */
static bool image_is_gray(cairo_surface_t *img)
{
    const unsigned char *px = cairo_image_surface_get_data(img);
    int wpx = cairo_image_surface_get_width(img), hpx = cairo_image_surface_get_height(img);
    int stride = cairo_image_surface_get_stride(img);

    for (int y = 0; y < hpx; y++) {
        const unsigned char *line = px + (size_t)y * (size_t)stride;
        for (int x = 0; x < wpx; x++) {
            uint32_t v;
            memcpy(&v, line + 4 * (size_t)x, 4);
            if (((v >> 16) & 0xff) != ((v >> 8) & 0xff) || ((v >> 8) & 0xff) != (v & 0xff))
                return false;
        }
    }
    return true;
}

#define FLAT_BAND       16  /* rows in a sampled band (a JPEG MCU row) */
#define FLAT_BAND_EVERY 128 /* one band every so many rows */

/* The size estimates look at one band of rows in every FLAT_BAND_EVERY:
 * sampled_rows() of an image of h rows, the k-th of which is
 * sampled_row(k). */
static int sampled_rows(int h)
{
    return h / FLAT_BAND_EVERY * FLAT_BAND + MIN(h % FLAT_BAND_EVERY, FLAT_BAND);
}

static int sampled_row(int k)
{
    return k / FLAT_BAND * FLAT_BAND_EVERY + k % FLAT_BAND;
}

/*
 * The bytes of a Flate stream of the sampled rows as cairo would write
 * it (packed RGB, or one byte a pixel for an all-gray image; zlib's
 * default level), to compare with a JPEG of the same rows.
 */
static double flate_sampled(cairo_surface_t *img, bool gray)
{
    const unsigned char *px = cairo_image_surface_get_data(img);
    int wpx = cairo_image_surface_get_width(img), hpx = cairo_image_surface_get_height(img);
    int stride = cairo_image_surface_get_stride(img);
    size_t rowlen = (size_t)wpx * (gray ? 1 : 3);
    unsigned char *row = g_malloc(rowlen), *sink = g_malloc(65536);
    z_stream z;
    int rows = sampled_rows(hpx), zr = Z_OK;

    memset(&z, 0, sizeof z);
    if (deflateInit(&z, Z_DEFAULT_COMPRESSION) != Z_OK) {
        g_free(row);
        g_free(sink);
        return 0;
    }
    for (int k = 0; k < rows && zr == Z_OK; k++) {
        row_pack(px + (size_t)sampled_row(k) * (size_t)stride, wpx, gray, row);
        z.next_in = row;
        z.avail_in = (uInt)rowlen;
        while (z.avail_in > 0 && zr == Z_OK) {
            z.next_out = sink;
            z.avail_out = 65536;
            zr = deflate(&z, Z_NO_FLUSH);
        }
    }
    do {
        z.next_out = sink;
        z.avail_out = 65536;
        zr = deflate(&z, Z_FINISH);
    } while (zr == Z_OK);
    deflateEnd(&z);
    g_free(row);
    g_free(sink);
    return (double)z.total_out;
}

/* A JPEG being written: kept outside jpeg_encode's frame so that
 * nothing it tracks is a local changed between setjmp and longjmp. */
struct jpeg_out {
    struct jpeg_destination_mgr pub; /* first: libjpeg's view */
    GByteArray *data;                /* the JPEG so far */
    unsigned char *row;
    JOCTET buf[16384];
};

static void sink_init(j_compress_ptr c)
{
    struct jpeg_out *o = (struct jpeg_out *)(void *)c->dest;

    o->pub.next_output_byte = o->buf;
    o->pub.free_in_buffer = sizeof o->buf;
}

static boolean sink_empty(j_compress_ptr c)
{
    struct jpeg_out *o = (struct jpeg_out *)(void *)c->dest;

    g_byte_array_append(o->data, o->buf, sizeof o->buf);
    o->pub.next_output_byte = o->buf;
    o->pub.free_in_buffer = sizeof o->buf;
    return TRUE;
}

static void sink_term(j_compress_ptr c)
{
    struct jpeg_out *o = (struct jpeg_out *)(void *)c->dest;

    g_byte_array_append(o->data, o->buf, (guint)(sizeof o->buf - o->pub.free_in_buffer));
}

/*
 * Encodes an RGB24 image surface as a baseline JPEG (one gray
 * component when gray; only the sampled rows when sample) into
 * o->data, which the caller has created and frees (also on failure).
 * Returns false on a libjpeg error.
 */
static bool jpeg_encode(cairo_surface_t *img, bool gray, bool sample, struct jpeg_out *o)
{
    struct jpeg_compress_struct c;
    struct jpeg_fail err;
    int wpx = cairo_image_surface_get_width(img), hpx = cairo_image_surface_get_height(img);
    int stride = cairo_image_surface_get_stride(img);
    const unsigned char *px;

    px = cairo_image_surface_get_data(img);
    memset(&c, 0, sizeof c);
    c.err = jpeg_std_error(&err.mgr);
    err.mgr.error_exit = jpeg_fail_exit;
    err.mgr.emit_message = jpeg_quiet;
    if (setjmp(err.env) != 0) {
        jpeg_destroy_compress(&c);
        g_free(o->row);
        o->row = NULL;
        return false;
    }
    jpeg_create_compress(&c);
    o->pub.init_destination = sink_init;
    o->pub.empty_output_buffer = sink_empty;
    o->pub.term_destination = sink_term;
    c.dest = &o->pub;
    c.image_width = (JDIMENSION)wpx;
    c.image_height = (JDIMENSION)(sample ? sampled_rows(hpx) : hpx);
    c.input_components = gray ? 1 : 3;
    c.in_color_space = gray ? JCS_GRAYSCALE : JCS_RGB;
    jpeg_set_defaults(&c);
    jpeg_set_quality(&c, FLAT_JPEG_QUALITY, TRUE);
    jpeg_start_compress(&c, TRUE);
    o->row = g_malloc((size_t)wpx * 3);
    while (c.next_scanline < c.image_height) {
        JSAMPROW rp = o->row;
        int y = sample ? sampled_row((int)c.next_scanline) : (int)c.next_scanline;
        row_pack(px + (size_t)y * (size_t)stride, wpx, gray, o->row);
        jpeg_write_scanlines(&c, &rp, 1);
    }
    jpeg_finish_compress(&c);
    jpeg_destroy_compress(&c);
    g_free(o->row);
    o->row = NULL;
    return true;
}

/* PDF delimiters and white space: what may follow a name. */
static bool name_ends(unsigned char c)
{
    return strchr("()<>[]{}/%", c) != NULL || c == ' ' || c == '\t' || c == '\r' || c == '\n' ||
           c == '\f' || c == '\0';
}

/* Whether the name (with its slash) occurs in the raw bytes. A plain
 * byte search: names in compressed object streams or spelt with #xx
 * escapes are missed, so the notes it feeds are a courtesy, not a
 * finding. */
static bool raw_has_name(const struct flat *f, const char *name)
{
    size_t n = strlen(name);
    const unsigned char *p = f->raw, *end = f->raw + f->raw_len;

    while ((size_t)(end - p) >= n) {
        const unsigned char *hit = memmem(p, (size_t)(end - p), name, n);
        if (hit == NULL)
            return false;
        if (hit + n == end || name_ends(hit[n]))
            return true;
        p = hit + 1;
    }
    return false;
}

/* Notes what the original held that the rendered copy does not. */
static void note_removed(struct flat *f, int n_pages)
{
    unsigned links = 0, widgets = 0, files = 0, others = 0;
    PopplerIndexIter *outline;
    PopplerPermissions perm;
    char *s;
    bool meta = false;
    guint n;

    static const struct {
        const char *name, *note;
    } actions[] = {
        {"/OpenAction", "an action run when the document opens"},
        {"/AA", "actions run on events (additional actions)"},
        {"/Launch", "a launch action (starts a program)"},
        {"/SubmitForm", "a form submission action"},
        {"/GoToR", "links to other documents"},
        {"/GoToE", "links to embedded documents"},
        {"/ImportData", "a data import action"},
    };

    if (poppler_document_has_javascript(f->doc) || raw_has_name(f, "/JavaScript") ||
        raw_has_name(f, "/JS"))
        mgw_note(f->w, "removed", "JavaScript");
    for (size_t i = 0; i < G_N_ELEMENTS(actions); i++)
        if (raw_has_name(f, actions[i].name))
            mgw_note(f->w, "removed", "%s", actions[i].note);
    n = poppler_document_get_n_attachments(f->doc);
    if (n > 0)
        mgw_note(f->w, "removed", "%u embedded file%s", n, n == 1 ? "" : "s");
    for (int i = 0; i < n_pages; i++) {
        PopplerPage *p = poppler_document_get_page(f->doc, i);
        GList *m;
        if (p == NULL)
            continue;
        m = poppler_page_get_annot_mapping(p);
        for (GList *l = m; l != NULL; l = l->next) {
            PopplerAnnotMapping *am = l->data;
            switch (poppler_annot_get_annot_type(am->annot)) {
            case POPPLER_ANNOT_LINK:
                links++;
                break;
            case POPPLER_ANNOT_WIDGET:
                widgets++;
                break;
            case POPPLER_ANNOT_FILE_ATTACHMENT:
                files++;
                break;
            default:
                others++;
                break;
            }
        }
        poppler_page_free_annot_mapping(m);
        g_object_unref(p);
    }
    if (widgets > 0)
        mgw_note(f->w, "removed", "%u form field%s (what they showed is kept as pixels)", widgets,
                 widgets == 1 ? "" : "s");
    if (links > 0)
        mgw_note(f->w, "removed", "%u link%s", links, links == 1 ? "" : "s");
    if (files > 0)
        mgw_note(f->w, "removed", "%u file attachment annotation%s", files, files == 1 ? "" : "s");
    if (others > 0)
        mgw_note(f->w, "removed", "%u other annotation%s (comments, markup, media)", others,
                 others == 1 ? "" : "s");
    outline = poppler_index_iter_new(f->doc);
    if (outline != NULL) {
        mgw_note(f->w, "removed", "the outline (bookmarks)");
        poppler_index_iter_free(outline);
    }
    s = poppler_document_get_metadata(f->doc);
    meta = s != NULL && *s != '\0';
    g_free(s);
    if (!meta) {
        char *(*const info[])(PopplerDocument *) = {
            poppler_document_get_title, poppler_document_get_author, poppler_document_get_subject,
            poppler_document_get_keywords};
        for (size_t i = 0; i < G_N_ELEMENTS(info) && !meta; i++) {
            s = info[i](f->doc);
            meta = s != NULL && *s != '\0';
            g_free(s);
        }
    }
    if (meta)
        mgw_note(f->w, "removed", "the document metadata (title, author, XMP)");
    perm = poppler_document_get_permissions(f->doc);
    if ((perm & (POPPLER_PERMISSIONS_OK_TO_PRINT | POPPLER_PERMISSIONS_OK_TO_COPY)) !=
        (POPPLER_PERMISSIONS_OK_TO_PRINT | POPPLER_PERMISSIONS_OK_TO_COPY))
        mgw_note(f->w, "info",
                 "the original restricted printing or copying; the rendered copy "
                 "has no such restriction");
}

/*
 * Attaches a JPEG encoding of the page image as its mime data, which
 * cairo then embeds (DCTDecode) instead of Flate-compressing the
 * pixels. In auto mode only when the JPEG is at least a fifth smaller
 * than the Flate stream would be: text on a plain background stays
 * lossless (and is smaller that way), pictures become JPEG.
 */
static enum mgw_status store_as_jpeg(struct flat *f, int i, cairo_surface_t *img)
{
    struct jpeg_out *o = g_new0(struct jpeg_out, 1);
    bool gray, ok = true;
    unsigned char *jpg;
    guint len;

    cairo_surface_flush(img);
    gray = image_is_gray(img);
    o->data = g_byte_array_new();
    if (f->image == FLAT_AUTO) {
        /* both sizes estimated from the same sampled rows */
        ok = jpeg_encode(img, gray, true, o);
        if (ok && (double)o->data->len * 5 >= flate_sampled(img, gray) * 4) {
            g_byte_array_free(o->data, TRUE);
            g_free(o);
            return MGW_OK;
        }
        g_byte_array_set_size(o->data, 0);
    }
    ok = ok && jpeg_encode(img, gray, false, o);
    if (!ok) {
        g_byte_array_free(o->data, TRUE);
        g_free(o);
        mgw_reason(f->w, "page %d: the JPEG encoding failed", i + 1);
        return MGW_FAIL;
    }
    len = o->data->len;
    jpg = g_byte_array_free(o->data, FALSE);
    g_free(o);
    if (cairo_surface_set_mime_data(img, CAIRO_MIME_TYPE_JPEG, jpg, len, g_free, jpg) !=
        CAIRO_STATUS_SUCCESS) {
        g_free(jpg);
        mgw_reason(f->w, "page %d: no memory for the JPEG", i + 1);
        return MGW_LIMIT;
    }
    f->n_jpeg++;
    return MGW_OK;
}

/*
 * Renders page i into a new image surface (owned by the caller) and
 * reports its size in points. Returns MGW_OK or the failure; *out is
 * NULL (and the page counted missing) when poppler cannot load it.
 */
static enum mgw_status render_page(struct flat *f, int i, cairo_surface_t **out, double *wpt,
                                   double *hpt)
{
    PopplerPage *p = poppler_document_get_page(f->doc, i);
    cairo_surface_t *img;
    cairo_t *cr;
    cairo_status_t cs;
    enum mgw_status st;
    int wpx, hpx;
    double dpi;

    *out = NULL;
    if (p == NULL) {
        f->missing++; /* a page tree that promises more than it has */
        return MGW_OK;
    }
    poppler_page_get_size(p, wpt, hpt);
    if (!(*wpt > 0 && *wpt <= FLAT_PAGE_PT_MAX && *hpt > 0 && *hpt <= FLAT_PAGE_PT_MAX)) {
        mgw_reason(f->w, "page %d has an unusable size (%g x %g points)", i + 1, *wpt, *hpt);
        g_object_unref(p);
        return MGW_FAIL;
    }
    if (!page_pixels(f, *wpt, *hpt, &wpx, &hpx, &dpi)) {
        mgw_reason(f->w, "page %d is too large to render under max-pixels", i + 1);
        g_object_unref(p);
        return MGW_LIMIT;
    }
    if (dpi < f->dpi) {
        if (f->reduced == 0 || dpi < f->lowest_dpi)
            f->lowest_dpi = dpi;
        f->reduced++;
    }
    img = cairo_image_surface_create(CAIRO_FORMAT_RGB24, wpx, hpx);
    if (cairo_surface_status(img) != CAIRO_STATUS_SUCCESS) {
        mgw_reason(f->w, "page %d: no memory for a %d x %d image", i + 1, wpx, hpx);
        cairo_surface_destroy(img);
        g_object_unref(p);
        return MGW_LIMIT;
    }
    cr = cairo_create(img);
    cairo_set_source_rgb(cr, 1, 1, 1);
    cairo_paint(cr);
    cairo_scale(cr, wpx / *wpt, hpx / *hpt);
    poppler_page_render_for_printing_with_options(p, cr, POPPLER_PRINT_DOCUMENT);
    cs = cairo_status(cr);
    cairo_destroy(cr);
    g_object_unref(p);
    if (cs == CAIRO_STATUS_NO_MEMORY) {
        mgw_reason(f->w, "page %d: out of memory while rendering", i + 1);
        cairo_surface_destroy(img);
        return MGW_LIMIT;
    }
    if (cs != CAIRO_STATUS_SUCCESS)
        mgw_note(f->w, "defect", "page %d: rendering stopped early (%s)", i + 1,
                 cairo_status_to_string(cs));
    if (f->image != FLAT_FLATE) {
        st = store_as_jpeg(f, i, img);
        if (st != MGW_OK) {
            cairo_surface_destroy(img);
            return st;
        }
    }
    *out = img;
    return MGW_OK;
}

/* Renders every page into the PDF surface; MGW_OK when all were drawn. */
static enum mgw_status render_all(struct flat *f, cairo_surface_t *pdf, int n_pages)
{
    cairo_t *cr = cairo_create(pdf);
    enum mgw_status st = MGW_OK;

    for (int i = 0; i < n_pages && st == MGW_OK; i++) {
        cairo_surface_t *img;
        double wpt, hpt;

        st = render_page(f, i, &img, &wpt, &hpt);
        if (st != MGW_OK || img == NULL)
            continue;
        cairo_pdf_surface_set_size(pdf, wpt, hpt);
        cairo_save(cr);
        cairo_scale(cr, wpt / cairo_image_surface_get_width(img),
                    hpt / cairo_image_surface_get_height(img));
        cairo_set_source_surface(cr, img, 0, 0);
        cairo_paint(cr);
        cairo_restore(cr);
        cairo_show_page(cr);
        cairo_surface_destroy(img);
        f->rendered++;
        if (cairo_status(cr) != CAIRO_STATUS_SUCCESS) {
            mgw_reason(f->w, "page %d: writing the PDF failed (%s)", i + 1,
                       cairo_status_to_string(cairo_status(cr)));
            st = cairo_status(cr) == CAIRO_STATUS_NO_MEMORY ? MGW_LIMIT : MGW_FAIL;
        }
    }
    cairo_destroy(cr);
    return st;
}

enum mgw_status mgw_pdf_flatten(struct mgw *w)
{
    struct flat f;
    uint64_t max_size = mgw_option_u64(w, "max-size", 104857600);
    uint64_t max_pages = mgw_option_u64(w, "max-pages", 200);
    const char *image = mgw_option(w, "image");
    enum mgw_status st = MGW_FAIL;
    unsigned char *buf = NULL;
    GBytes *bytes = NULL;
    GError *err = NULL;
    cairo_surface_t *pdf = NULL;
    cairo_status_t cs;
    size_t len;
    int n_pages;

    memset(&f, 0, sizeof f);
    f.w = w;
    f.dpi = (double)CLAMP(mgw_option_u64(w, "dpi", 150), FLAT_DPI_MIN, FLAT_DPI_MAX);
    f.max_pixels = MAX(mgw_option_u64(w, "max-pixels", 40000000), FLAT_PIXELS_MIN);
    if (image == NULL || strcmp(image, "auto") == 0) {
        f.image = FLAT_AUTO;
    } else if (strcmp(image, "jpeg") == 0) {
        f.image = FLAT_JPEG;
    } else if (strcmp(image, "flate") == 0) {
        f.image = FLAT_FLATE;
    } else {
        mgw_reason(w, "unknown image=%s (auto, jpeg or flate)", image);
        return MGW_FAIL;
    }
    if (mgw_input_size(w) > max_size) {
        mgw_reason(w, "the PDF is larger than max-size (%" G_GUINT64_FORMAT " bytes)", max_size);
        return MGW_LIMIT;
    }
    buf = mgw_input_read_all(w, max_size, &len);
    if (buf == NULL) {
        mgw_reason(w, "the item cannot be read");
        return MGW_FAIL;
    }
    bytes = g_bytes_new_take(buf, len);
    f.raw = buf;
    f.raw_len = len;
    f.doc = poppler_document_new_from_bytes(bytes, NULL, &err);
    if (f.doc == NULL) {
        if (g_error_matches(err, POPPLER_ERROR, POPPLER_ERROR_ENCRYPTED)) {
            mgw_reason(w, "the PDF needs a password");
            st = MGW_ENCRYPTED;
        } else {
            mgw_reason(w, "not a PDF poppler can open: %s", err != NULL ? err->message : "?");
            st = MGW_FAIL;
        }
        goto out;
    }
    n_pages = poppler_document_get_n_pages(f.doc);
    if (n_pages <= 0) {
        mgw_reason(w, "the PDF has no pages");
        goto out;
    }
    if ((uint64_t)n_pages > max_pages) {
        mgw_reason(w, "%d pages, more than max-pages (%" G_GUINT64_FORMAT ")", n_pages, max_pages);
        st = MGW_LIMIT;
        goto out;
    }
    if (!mgw_out_begin(w, mgw_option(w, "name"), "application/pdf", 0))
        goto out;
    /* the size is set again before each page is drawn */
    pdf = cairo_pdf_surface_create_for_stream(out_write, w, 612, 792);
    st = render_all(&f, pdf, n_pages);
    if (st == MGW_OK && f.rendered == 0) {
        mgw_reason(w, "none of the %d pages can be read", n_pages);
        st = MGW_FAIL;
    }
    cairo_surface_finish(pdf);
    cs = cairo_surface_status(pdf);
    if (st == MGW_OK && cs != CAIRO_STATUS_SUCCESS) {
        mgw_reason(w, "writing the PDF failed (%s)", cairo_status_to_string(cs));
        st = cs == CAIRO_STATUS_NO_MEMORY ? MGW_LIMIT : MGW_FAIL;
    }
    if (st != MGW_OK)
        goto out;
    if (!mgw_out_end(w)) {
        st = MGW_FAIL;
        goto out;
    }
    note_removed(&f, n_pages);
    mgw_note(w, "converted", "%d page%s rendered at %.0f dpi", f.rendered,
             f.rendered == 1 ? "" : "s", f.dpi);
    if (f.missing > 0)
        mgw_note(w, "defect",
                 "%d of the %d pages the document lists cannot be read and are missing", f.missing,
                 n_pages);
    if (f.n_jpeg > 0)
        mgw_note(w, "info", "pages stored as JPEG (quality %d, lossy): %d of %d", FLAT_JPEG_QUALITY,
                 f.n_jpeg, f.rendered);
    if (f.reduced > 0)
        mgw_note(w, "info",
                 "%d page%s too large for max-pixels rendered at a lower resolution "
                 "(down to %.0f dpi)",
                 f.reduced, f.reduced == 1 ? "" : "s", f.lowest_dpi);
out:
    if (pdf != NULL)
        cairo_surface_destroy(pdf);
    if (f.doc != NULL)
        g_object_unref(f.doc);
    g_bytes_unref(bytes);
    g_clear_error(&err);
    return st;
}
