/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * NAME
 *	image 3
 * SUMMARY
 *	disarm an image: decode it, encode a new file from what was decoded
 * SYNOPSIS
 *	enum mgw_status mgw_image(struct mgw *w);
 *
 *	mugaika-worker image [name=NAME] [quality=Q] [max-pixels=N]
 *		[max-frames=N] [max-input=BYTES] <item >records
 * DESCRIPTION
 *	The format is told by the first bytes of the item, never by its
 *	name. The image is decoded completely and a new file is encoded
 *	from the pixels alone (most JPEGs: from the quantised DCT
 *	coefficients and tables alone), so nothing the encoder was not
 *	given can reach the output: no EXIF, XMP, IPTC or ICC data, no
 *	text chunks, comments or application extensions, no extra frames
 *	or streams, and nothing after the end of the image (the zip or
 *	script of a polyglot). Each thing dropped is recorded with a
 *	"removed" note, after the new file is complete.
 *
 *	PNG gives PNG with the same size, bit depth and colour type (a
 *	palette image stays one, with its PLTE and tRNS): the chunks are
 *	walked first and only IHDR, PLTE, tRNS, IDAT and IEND are handed
 *	to libpng, so it never parses an ancillary chunk. The rows are
 *	read and written without transformation (an interlaced image is
 *	written non-interlaced); the unused bits at the end of a row of
 *	a 1, 2 or 4-bit image are cleared (libpng leaves them as they
 *	were in memory). A palette index past PLTE is kept as it is. An
 *	unknown critical chunk fails; APNG frames go, the default image
 *	stays.
 *
 *	JPEG gives a JPEG with only SOI, APP0 JFIF 1.01, DQT, SOF0, DHT,
 *	one SOS and EOI, rebuilt in one of two ways:
 *
 *	- the coefficient path, for a grey or YCbCr picture without an EXIF
 *	  Orientation other than 1: libjpeg decodes the entropy-coded data
 *	  to the quantised DCT coefficients (jpeg_read_coefficients), and a
 *	  new file is written from them and the quantisation tables
 *	  (jpeg_copy_critical_parameters, jpeg_write_coefficients). Nothing
 *	  is lost: the pixels are the input's. Every byte is still written
 *	  by libjpeg: sequential Huffman coding with tables computed from
 *	  the coefficients, one interleaved scan, no restart markers,
 *	  whatever the input had (progressive, arithmetic coding, restart
 *	  markers, other Huffman tables); the sampling factors, component
 *	  ids and quantisation tables are kept, so a table with 16-bit
 *	  entries gives SOF1 (extended sequential) instead of SOF0.
 *
 *	- the pixel path, for an EXIF Orientation of 2 to 8, CMYK, YCCK or
 *	  RGB: the picture is decoded, turned or converted and encoded at
 *	  quality= (default 90; colour at 4:2:0). The Orientation is
 *	  applied to the pixels before the EXIF data is dropped, so the
 *	  picture still shows the right way up (width and height swap for
 *	  5 to 8). CMYK
 *	  and YCCK become RGB (no colour management: the inverted Adobe
 *	  convention when an Adobe marker is present; without the Adobe
 *	  segment, which is not written, a 4-component JFIF file would not
 *	  be read the same way), RGB becomes YCbCr (a JFIF file is YCbCr).
 *
 *	Both paths set the same header fields (JFIF 1.01, the input's
 *	density when valid, else 1:1), so the output of either, given
 *	again, takes the coefficient path and comes out byte for byte the
 *	same. A libjpeg warning (corrupt or truncated data, bytes between
 *	markers) fails the item, as an error does. 12-bit JPEGs fail: the
 *	libjpeg-turbo built here reads 8-bit samples only.
 *
 *	GIF gives GIF: the screen, the colour tables, every frame with its
 *	position, delay, disposal and transparent colour, and the
 *	NETSCAPE2.0 loop count are written anew by giflib; comments, plain
 *	text and other application extensions are dropped. Interlaced
 *	frames are written progressive.
 *
 *	WebP gives lossless WebP (one VP8L chunk; alpha kept; the colour
 *	of fully transparent pixels cleared), from lossless and lossy
 *	input alike: encoding lossy again would lose quality and change
 *	the bytes on every pass. A lossy image grows ("converted" note):
 *	measured on six photographs and screenshots of the corpus made
 *	lossy at quality 80, the lossless file is 3 to 6 times the lossy
 *	one and PNG of the same pixels 6.5 to 9 times, so lossless WebP,
 *	which keeps the name and the type, was chosen over PNG (22 to 53%
 *	smaller). The encoder runs at quality 50 and method 2, within 5%
 *	of libwebp's default (quality 75, method 4) in half the time; over
 *	16 megapixels at method 0, some 7% larger but 3.5 times faster,
 *	to stay well within the CPU limit (33 megapixels: 9 s, 700 MiB).
 *	Animated WebP fails (libwebp alone cannot decode it).
 *
 *	BMP gives PNG, decoded here: uncompressed 1, 4 and 8-bit palette
 *	images, 16, 24 and 32-bit ones, and BI_BITFIELDS with masks of at
 *	most 8 contiguous bits. Other BMPs (RLE, JPEG or PNG inside)
 *	fail. The name's extension becomes .png (a "converted" note).
 *
 *	TIFF (and BigTIFF) gives TIFF, read and written by libtiff in
 *	memory (client procedures over the item and over a growing buffer;
 *	no file, no mapping, so no new system call). Only the first image
 *	(IFD) is read; the other pages are dropped ("removed" note), and so
 *	are every tag but the image structure, thumbnails and SubIFDs. The
 *	picture is decoded to 8-bit RGBA by TIFFReadRGBAImageOriented, so
 *	every photometric, bit depth, compression and layout libtiff reads
 *	is accepted (grey, palette, CMYK, YCbCr, CIELab, 16-bit: a
 *	"converted" note; floating-point samples fail); an Orientation
 *	other than 1 is applied to the pixels (width and height swap for 5
 *	to 8, an "info" note). The new file is little-endian classic TIFF
 *	with one IFD of baseline tags only: ImageWidth, ImageLength,
 *	BitsPerSample 8, SamplesPerPixel 3, or 4 with ExtraSamples
 *	unassociated alpha when a pixel is not opaque (libtiff gives alpha
 *	premultiplied: it is divided out again, rounded so that the
 *	premultiplied values are kept), Photometric RGB, PlanarConfig
 *	contiguous, Orientation 1, deflate (level 6) with the horizontal
 *	predictor, RowsPerStrip for strips of at most 64 KiB (one row at
 *	least), StripOffsets and StripByteCounts. Dropped tags are noted:
 *	EXIF and GPS IFDs, XMP, ICC profile, IPTC and Photoshop data, text
 *	tags (by name) and other tags libtiff keeps outside the image
 *	structure (by name). Bytes the first IFD does not point to (a
 *	polyglot's zip) are not copied, but not counted either (no note).
 *	A libtiff error, warnings aside, fails the item with libtiff's
 *	message as the reason; libtiff prints nothing (its handlers are set
 *	for each TIFF and the global ones cleared).
 *
 *	Anything else fails as an unknown format.
 *
 *	The output keeps the option name= (with the extension changed when
 *	the format changed) and has the type image/png, image/jpeg,
 *	image/gif, image/webp or image/tiff.
 * IDEMPOTENCE
 *	Every output is a fixed point: given again to the handler, with the
 *	same options, it comes out byte for byte the same, with no note
 *	(the gateway may sanitise a mail that it sanitised before). PNG,
 *	GIF, lossless WebP and TIFF are encoded from the pixels alone with
 *	fixed settings, and decoding them gives the same pixels; a JPEG is
 *	fixed by the coefficient path; BMP becomes PNG once. No output byte
 *	depends on the time, the machine or uninitialised memory.
 * LIMITS
 *	max-input (64 MiB) bounds the item read into memory. max-pixels
 *	(40000000) bounds width times height, checked with 64-bit
 *	arithmetic on the header before any pixel buffer is allocated, for
 *	the picture, the GIF screen and each GIF frame (TIFF: the first
 *	IFD's ImageWidth and ImageLength, read here before libtiff opens the
 *	file, and libtiff's values again after); all frames of a GIF
 *	together may have 4 times that. max-frames (500) bounds the GIF
 *	frames. A progressive JPEG may have at most 256 scans. Going over
 *	a limit, or running out of memory, returns MGW_LIMIT. The JPEG
 *	coefficient path keeps the whole picture's coefficients (2 bytes a
 *	sample: 6 bytes a pixel at 4:4:4), as the pixel path does for a
 *	progressive JPEG. TIFF keeps 4 bytes a pixel for the decoded
 *	picture, libtiff's strip or tile buffer and the compressed output;
 *	no single libtiff allocation may exceed 16 bytes a pixel of
 *	max-pixels plus 16 MiB, and the strip and tile arrays are loaded
 *	when needed (mode "D"), after the check.
 * DIAGNOSTICS
 *	MGW_FAIL with a reason for an unknown, unsupported, corrupt or
 *	truncated image (the libpng, libjpeg, giflib or libtiff message).
 */
#include <setjmp.h>
#include <stdio.h>
#include <string.h>

#include <gif_lib.h>
#include <jerror.h>
#include <jpeglib.h>
#include <png.h>
#include <tiffio.h>
#include <webp/decode.h>
#include <webp/encode.h>

#include "worker/handlers.h"

#define IMG_MAX_PIXELS  40000000u
#define IMG_MAX_FRAMES  500u
#define IMG_MAX_INPUT   ((uint64_t)64 << 20)
#define IMG_QUALITY     90
#define IMG_WEBP_EFFORT 50       /* lossless WebP: quality (effort) ... */
#define IMG_WEBP_METHOD 2        /* ... and method, ... */
#define IMG_WEBP_LARGE  16000000 /* ... but method 0 over this many pixels */
#define IMG_MAX_SCANS   256
#define IMG_GIF_TOTAL   4 /* all GIF frames: this many times max-pixels */
#define IMG_OUT_BUF     65536
#define IMG_TIFF_STRIP  65536                /* TIFF output: bytes in a strip, at most */
#define IMG_TIFF_LEVEL  6                    /* ... the deflate level */
#define IMG_TIFF_MAXOUT ((uint64_t)1 << 32)  /* ... the file (classic TIFF) */
#define IMG_TIFF_ROOM   ((uint64_t)16 << 20) /* libtiff allocations: 16 bytes a pixel + this */

enum img_format { IMG_UNKNOWN, IMG_PNG, IMG_JPEG, IMG_GIF, IMG_WEBP, IMG_BMP, IMG_TIFF };

static const struct {
    const char *label;
    const char *ext;
    const char *type;
} formats[] = {
    [IMG_UNKNOWN] = {"unknown", "bin", NULL},    [IMG_PNG] = {"PNG", "png", "image/png"},
    [IMG_JPEG] = {"JPEG", "jpg", "image/jpeg"},  [IMG_GIF] = {"GIF", "gif", "image/gif"},
    [IMG_WEBP] = {"WebP", "webp", "image/webp"}, [IMG_BMP] = {"BMP", "bmp", NULL},
    [IMG_TIFF] = {"TIFF", "tif", "image/tiff"},
};

/* One run: the item, the options and the output being written. */
struct img {
    struct mgw *w;
    const unsigned char *in; /* the whole item (borrowed) */
    size_t len;
    uint64_t max_pixels;
    uint64_t max_frames;
    int quality;
    enum img_format from;
    bool out_begun;
    bool out_broken;
    size_t on; /* bytes waiting in obuf */
    unsigned char obuf[IMG_OUT_BUF];
};

static uint32_t be32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static uint32_t le32(const unsigned char *p)
{
    return (uint32_t)p[3] << 24 | (uint32_t)p[2] << 16 | (uint32_t)p[1] << 8 | p[0];
}

static unsigned le16(const unsigned char *p)
{
    return (unsigned)p[1] << 8 | p[0];
}

static unsigned be16(const unsigned char *p)
{
    return (unsigned)p[0] << 8 | p[1];
}

static enum img_format sniff(const unsigned char *p, size_t len)
{
    if (len >= 8 && memcmp(p, "\x89PNG\r\n\x1a\n", 8) == 0)
        return IMG_PNG;
    if (len >= 3 && p[0] == 0xff && p[1] == 0xd8 && p[2] == 0xff)
        return IMG_JPEG;
    if (len >= 6 && (memcmp(p, "GIF87a", 6) == 0 || memcmp(p, "GIF89a", 6) == 0))
        return IMG_GIF;
    if (len >= 12 && memcmp(p, "RIFF", 4) == 0 && memcmp(p + 8, "WEBP", 4) == 0)
        return IMG_WEBP;
    if (len >= 2 && p[0] == 'B' && p[1] == 'M')
        return IMG_BMP;
    if (len >= 4 && (memcmp(p, "II*\0", 4) == 0 || memcmp(p, "MM\0*", 4) == 0 ||
                     memcmp(p, "II+\0", 4) == 0 || memcmp(p, "MM\0+", 4) == 0))
        return IMG_TIFF;
    return IMG_UNKNOWN;
}

/* NAME with its extension replaced by EXT (or EXT appended). Owned. */
static char *renamed(const char *name, const char *ext)
{
    const char *base = strrchr(name, '/');
    const char *dot;

    base = base != NULL ? base + 1 : name;
    dot = strrchr(base, '.');
    if (dot == NULL || dot == base)
        return g_strconcat(name, ".", ext, NULL);
    return g_strdup_printf("%.*s.%s", (int)(dot - name), name, ext);
}

/* The output. Bytes are gathered in im->obuf and sent in large records. */
static bool out_begin(struct img *im, enum img_format to)
{
    const char *name = mgw_option(im->w, "name");
    char *out = NULL;

    if (name != NULL)
        out = to == im->from ? g_strdup(name) : renamed(name, formats[to].ext);
    im->out_begun = true;
    if (!mgw_out_begin(im->w, out, formats[to].type, 0))
        im->out_broken = true;
    g_free(out);
    return !im->out_broken;
}

static bool out_flush(struct img *im)
{
    if (im->on > 0 && !im->out_broken && !mgw_out_write(im->w, im->obuf, im->on))
        im->out_broken = true;
    im->on = 0;
    return !im->out_broken;
}

static bool out_put(struct img *im, const void *buf, size_t len)
{
    if (!im->out_begun || im->out_broken)
        return false;
    if (len > sizeof im->obuf - im->on && !out_flush(im))
        return false;
    if (len >= sizeof im->obuf) {
        if (!mgw_out_write(im->w, buf, len))
            im->out_broken = true;
        return !im->out_broken;
    }
    memcpy(im->obuf + im->on, buf, len);
    im->on += len;
    return true;
}

static bool out_end(struct img *im)
{
    if (!im->out_begun || !out_flush(im))
        return false;
    return mgw_out_end(im->w);
}

/* Sets the reason and returns true when WIDTH x HEIGHT is over the limit. */
static bool over_pixels(struct img *im, const char *what, uint64_t width, uint64_t height)
{
    if (width == 0 || height <= im->max_pixels / width)
        return false;
    mgw_reason(im->w,
               "%s of %" G_GUINT64_FORMAT "x%" G_GUINT64_FORMAT
               " pixels is over max-pixels %" G_GUINT64_FORMAT,
               what, width, height, im->max_pixels);
    return true;
}

static enum mgw_status bad(struct img *im, const char *why)
{
    mgw_reason(im->w, "%s %s", formats[im->from].label, why);
    return MGW_FAIL;
}

static enum mgw_status no_memory(struct img *im)
{
    mgw_reason(im->w, "out of memory decoding the %s image", formats[im->from].label);
    return MGW_LIMIT;
}

static void note_count(struct mgw *w, size_t n, const char *one, const char *many)
{
    if (n == 1)
        mgw_note(w, "removed", "1 %s", one);
    else if (n > 1)
        mgw_note(w, "removed", "%zu %s", n, many);
}

static void note_trailing(struct mgw *w, size_t n)
{
    note_count(w, n, "byte after the end of the image", "bytes after the end of the image");
}

/* Appends the 4-character NAME to the list LIST (", "-separated) once. */
static void add_name(char *list, size_t size, const char *name, size_t n)
{
    char item[16];

    g_snprintf(item, sizeof item, "%.*s", (int)n, name);
    if (strstr(list, item) != NULL || strlen(list) + n + 3 > size)
        return;
    if (list[0] != '\0')
        g_strlcat(list, ", ", size);
    g_strlcat(list, item, size);
}

/*
 * PNG
 */

struct png_scan {
    unsigned char *clean; /* signature + the chunks libpng is given */
    size_t clean_len;
    size_t text, exif, icc, frames, other, trailing;
    char other_names[64];
};

static bool png_letters(const unsigned char *t)
{
    for (int i = 0; i < 4; i++)
        if (!g_ascii_isalpha(t[i]))
            return false;
    return true;
}

static bool png_kept(const unsigned char *t)
{
    return memcmp(t, "IHDR", 4) == 0 || memcmp(t, "PLTE", 4) == 0 || memcmp(t, "tRNS", 4) == 0 ||
           memcmp(t, "IDAT", 4) == 0 || memcmp(t, "IEND", 4) == 0;
}

static void png_classify(struct png_scan *s, const unsigned char *t)
{
    if (memcmp(t, "tEXt", 4) == 0 || memcmp(t, "zTXt", 4) == 0 || memcmp(t, "iTXt", 4) == 0)
        s->text++;
    else if (memcmp(t, "eXIf", 4) == 0)
        s->exif++;
    else if (memcmp(t, "iCCP", 4) == 0)
        s->icc++;
    else if (memcmp(t, "fcTL", 4) == 0)
        s->frames++;
    else if (memcmp(t, "acTL", 4) != 0 && memcmp(t, "fdAT", 4) != 0) {
        s->other++;
        add_name(s->other_names, sizeof s->other_names, (const char *)t, 4);
    }
}

/* Walks the chunks up to IEND, checks IHDR's size against the limit and
 * copies the chunks to keep into s->clean. */
static enum mgw_status png_walk(struct img *im, struct png_scan *s)
{
    size_t pos = 8;
    bool end = false;

    s->clean = g_try_malloc(im->len);
    if (s->clean == NULL)
        return no_memory(im);
    memcpy(s->clean, im->in, 8);
    s->clean_len = 8;
    while (!end) {
        const unsigned char *c = im->in + pos;
        uint32_t n;

        if (im->len - pos < 12)
            return bad(im, "image is truncated (no IEND chunk)");
        n = be32(c);
        if (n > 0x7fffffffu || n > im->len - pos - 12)
            return bad(im, "image is truncated or has a corrupt chunk length");
        if (!png_letters(c + 4))
            return bad(im, "image has a corrupt chunk type");
        if (pos == 8) {
            uint32_t width, height;
            if (memcmp(c + 4, "IHDR", 4) != 0 || n != 13)
                return bad(im, "image does not start with IHDR");
            width = be32(c + 8);
            height = be32(c + 12);
            if (width == 0 || height == 0 || width > 0x7fffffffu || height > 0x7fffffffu)
                return bad(im, "image has an invalid size");
            if (over_pixels(im, "PNG image", width, height))
                return MGW_LIMIT;
        }
        if (png_kept(c + 4)) {
            memcpy(s->clean + s->clean_len, c, (size_t)n + 12);
            s->clean_len += (size_t)n + 12;
        } else if ((c[4] & 0x20) == 0) {
            mgw_reason(im->w, "PNG image has an unknown critical chunk %.4s", c + 4);
            return MGW_FAIL;
        } else {
            png_classify(s, c + 4);
        }
        end = memcmp(c + 4, "IEND", 4) == 0;
        pos += (size_t)n + 12;
    }
    s->trailing = im->len - pos;
    return MGW_OK;
}

/* libpng state for one PNG read and write, or BMP to PNG. */
struct bmp;
struct png_job {
    struct img *im;
    jmp_buf jb;
    char err[160];
    png_structp rp, wp;
    png_infop ri, wi;
    const unsigned char *src; /* the cleaned PNG */
    size_t src_len, src_pos;
    const struct bmp *bmp;
    unsigned char *pix; /* one row, or the whole interlaced image */
    png_bytep *rows;
    enum mgw_status status;
};

static void png_fail_cb(png_structp p, png_const_charp msg)
{
    struct png_job *j = png_get_error_ptr(p);

    g_strlcpy(j->err, msg, sizeof j->err);
    longjmp(j->jb, 1);
}

static void png_warn_cb(png_structp p, png_const_charp msg)
{
    (void)p;
    (void)msg;
}

static void png_read_cb(png_structp p, png_bytep buf, size_t n)
{
    struct png_job *j = png_get_io_ptr(p);

    if (n > j->src_len - j->src_pos)
        png_error(p, "image is truncated");
    memcpy(buf, j->src + j->src_pos, n);
    j->src_pos += n;
}

static void png_write_cb(png_structp p, png_bytep buf, size_t n)
{
    struct png_job *j = png_get_io_ptr(p);

    if (!out_put(j->im, buf, n))
        png_error(p, "output failed");
}

static void png_flush_cb(png_structp p)
{
    (void)p;
}

static bool png_writer(struct png_job *j, png_uint_32 width, png_uint_32 height, int depth,
                       int ctype)
{
    j->wp = png_create_write_struct(PNG_LIBPNG_VER_STRING, j, png_fail_cb, png_warn_cb);
    if (j->wp == NULL)
        return false;
    j->wi = png_create_info_struct(j->wp);
    if (j->wi == NULL)
        return false;
    png_set_write_fn(j->wp, j, png_write_cb, png_flush_cb);
    /* an index past PLTE is written as read (a viewer shows black) */
    png_set_check_for_invalid_index(j->wp, 0);
    png_set_IHDR(j->wp, j->wi, width, height, depth, ctype, PNG_INTERLACE_NONE,
                 PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    return true;
}

/* Clears the bits after the last pixel of a row of a 1, 2 or 4-bit image. */
static void png_clear_padding(unsigned char *row, size_t rowbytes, png_uint_32 width, int depth)
{
    uint64_t used = (uint64_t)width * (unsigned)depth;
    uint64_t all = (uint64_t)rowbytes * 8;

    if (depth < 8 && rowbytes > 0 && used < all && all - used < 8)
        row[rowbytes - 1] &= (unsigned char)(0xff << (all - used));
}

static void png_recode_body(struct png_job *j)
{
    png_uint_32 width, height;
    int depth, ctype, interlace, npal, ntrans;
    png_colorp pal;
    png_bytep trans;
    png_color_16p tcolor;
    size_t rowbytes;

    j->status = MGW_FAIL;
    j->rp = png_create_read_struct(PNG_LIBPNG_VER_STRING, j, png_fail_cb, png_warn_cb);
    if (j->rp == NULL || (j->ri = png_create_info_struct(j->rp)) == NULL) {
        j->status = no_memory(j->im);
        return;
    }
    png_set_read_fn(j->rp, j, png_read_cb);
    png_set_user_limits(j->rp, 0x7fffffffu, 0x7fffffffu);
    png_read_info(j->rp, j->ri);
    png_get_IHDR(j->rp, j->ri, &width, &height, &depth, &ctype, &interlace, NULL, NULL);
    if (over_pixels(j->im, "PNG image", width, height)) {
        j->status = MGW_LIMIT;
        return;
    }
    if (interlace != PNG_INTERLACE_NONE)
        png_set_interlace_handling(j->rp);
    png_read_update_info(j->rp, j->ri);
    rowbytes = png_get_rowbytes(j->rp, j->ri);
    if (!png_writer(j, width, height, depth, ctype)) {
        j->status = no_memory(j->im);
        return;
    }
    if (ctype == PNG_COLOR_TYPE_PALETTE && png_get_PLTE(j->rp, j->ri, &pal, &npal) != 0)
        png_set_PLTE(j->wp, j->wi, pal, npal);
    if (png_get_tRNS(j->rp, j->ri, &trans, &ntrans, &tcolor) != 0)
        png_set_tRNS(j->wp, j->wi, trans, ntrans, tcolor);
    if (interlace == PNG_INTERLACE_NONE) {
        j->pix = g_try_malloc(rowbytes);
    } else if (rowbytes <= SIZE_MAX / height) {
        j->pix = g_try_malloc(rowbytes * height);
        j->rows = g_try_new(png_bytep, height);
    }
    if (j->pix == NULL || (interlace != PNG_INTERLACE_NONE && j->rows == NULL)) {
        j->status = no_memory(j->im);
        return;
    }
    if (!out_begin(j->im, IMG_PNG))
        return;
    png_write_info(j->wp, j->wi);
    if (interlace == PNG_INTERLACE_NONE) {
        for (png_uint_32 y = 0; y < height; y++) {
            png_read_row(j->rp, j->pix, NULL);
            png_clear_padding(j->pix, rowbytes, width, depth);
            png_write_row(j->wp, j->pix);
        }
    } else {
        for (png_uint_32 y = 0; y < height; y++)
            j->rows[y] = j->pix + (size_t)y * rowbytes;
        png_read_image(j->rp, j->rows);
        for (png_uint_32 y = 0; y < height; y++) {
            png_clear_padding(j->rows[y], rowbytes, width, depth);
            png_write_row(j->wp, j->rows[y]);
        }
    }
    png_read_end(j->rp, NULL);
    png_write_end(j->wp, NULL);
    j->status = MGW_OK;
}

/* Runs BODY; false when libpng failed (j->err says why). */
static bool png_run(struct png_job *j, void (*body)(struct png_job *))
{
    if (setjmp(j->jb) != 0)
        return false;
    body(j);
    return true;
}

static enum mgw_status png_finish(struct png_job *j, bool ran)
{
    enum mgw_status st = j->status;

    if (!ran) {
        mgw_reason(j->im->w, "%s image: %s", formats[j->im->from].label, j->err);
        st = MGW_FAIL;
    }
    if (j->rp != NULL)
        png_destroy_read_struct(&j->rp, j->ri != NULL ? &j->ri : NULL, NULL);
    if (j->wp != NULL)
        png_destroy_write_struct(&j->wp, j->wi != NULL ? &j->wi : NULL);
    g_free(j->pix);
    g_free(j->rows);
    return st;
}

static enum mgw_status do_png(struct img *im)
{
    struct png_scan s;
    struct png_job j;
    enum mgw_status st;

    memset(&s, 0, sizeof s);
    st = png_walk(im, &s);
    if (st == MGW_OK) {
        memset(&j, 0, sizeof j);
        j.im = im;
        j.src = s.clean;
        j.src_len = s.clean_len;
        st = png_finish(&j, png_run(&j, png_recode_body));
    }
    if (st == MGW_OK) {
        note_count(im->w, s.text, "text chunk", "text chunks");
        if (s.exif > 0)
            mgw_note(im->w, "removed", "EXIF metadata");
        if (s.icc > 0)
            mgw_note(im->w, "removed", "ICC colour profile");
        if (s.frames > 0)
            mgw_note(im->w, "removed", "the animation (%zu APNG frames)", s.frames);
        if (s.other > 0)
            mgw_note(im->w, "removed", "%zu other ancillary chunk%s (%s)", s.other,
                     s.other == 1 ? "" : "s", s.other_names);
        note_trailing(im->w, s.trailing);
    }
    g_free(s.clean);
    return st;
}

/*
 * BMP (to PNG)
 */

struct bmp {
    const unsigned char *px; /* the first stored row */
    size_t stride;
    uint32_t width, height;
    bool top_down;
    unsigned bpp;
    uint32_t mask[4]; /* red, green, blue, alpha (16 and 32 bits) */
    unsigned shift[4], bits[4];
    png_color pal[256];
    unsigned npal; /* entries written to PLTE */
    int ctype;
    size_t trailing;
    bool icc;
};

/* Checks MASK (contiguous, at most 8 bits, inside BPP bits). */
static bool bmp_mask(struct bmp *b, int i, uint32_t mask, bool optional)
{
    unsigned shift = 0, bits = 0;

    b->mask[i] = mask;
    if (mask == 0)
        return optional;
    if (b->bpp < 32 && mask >> b->bpp != 0)
        return false;
    while ((mask >> shift & 1) == 0)
        shift++;
    while (shift + bits < 32 && (mask >> (shift + bits) & 1) != 0)
        bits++;
    if (bits > 8 || (shift + bits < 32 && mask >> (shift + bits) != 0))
        return false;
    b->shift[i] = shift;
    b->bits[i] = bits;
    return true;
}

static unsigned bmp_index(const struct bmp *b, const unsigned char *s, uint32_t x)
{
    switch (b->bpp) {
    case 1:
        return s[x >> 3] >> (7 - (x & 7)) & 1;
    case 4:
        return (x & 1) != 0 ? s[x >> 1] & 15 : s[x >> 1] >> 4;
    default:
        return s[x];
    }
}

static enum mgw_status bmp_palette(struct img *im, struct bmp *b, size_t at, size_t entry,
                                   uint32_t used)
{
    unsigned n = 1u << b->bpp, top = 0;

    if (used != 0 && used < n)
        n = used;
    if (at > im->len || (size_t)n * entry > im->len - at)
        return bad(im, "image is truncated (palette)");
    for (unsigned i = 0; i < n; i++) {
        const unsigned char *e = im->in + at + (size_t)i * entry;
        b->pal[i].red = e[2];
        b->pal[i].green = e[1];
        b->pal[i].blue = e[0];
    }
    /* an index past the palette shows black (PLTE must cover it) */
    for (uint32_t y = 0; y < b->height; y++)
        for (uint32_t x = 0; x < b->width; x++) {
            unsigned k = bmp_index(b, b->px + (size_t)y * b->stride, x);
            if (k > top)
                top = k;
        }
    b->npal = top + 1 > n ? top + 1 : n;
    return MGW_OK;
}

static enum mgw_status bmp_masks(struct img *im, struct bmp *b, uint32_t hsize, uint32_t comp)
{
    const unsigned char *p = im->in;
    bool ok;

    if (comp == 0 && b->bpp == 16)
        ok = bmp_mask(b, 0, 0x7c00, false) && bmp_mask(b, 1, 0x03e0, false) &&
             bmp_mask(b, 2, 0x001f, false) && bmp_mask(b, 3, 0, true);
    else if (comp == 0)
        ok = bmp_mask(b, 0, 0xff0000, false) && bmp_mask(b, 1, 0xff00, false) &&
             bmp_mask(b, 2, 0xff, false) && bmp_mask(b, 3, 0, true);
    else if (comp == 3 && hsize >= 52)
        ok = bmp_mask(b, 0, le32(p + 54), false) && bmp_mask(b, 1, le32(p + 58), false) &&
             bmp_mask(b, 2, le32(p + 62), false) &&
             bmp_mask(b, 3, hsize >= 56 ? le32(p + 66) : 0, true);
    else if (comp == 3 && hsize == 40 && im->len >= 66)
        ok = bmp_mask(b, 0, le32(p + 54), false) && bmp_mask(b, 1, le32(p + 58), false) &&
             bmp_mask(b, 2, le32(p + 62), false) && bmp_mask(b, 3, 0, true);
    else
        ok = false;
    if (!ok)
        return bad(im, "image has unsupported compression or bit masks");
    b->ctype = b->mask[3] != 0 ? PNG_COLOR_TYPE_RGB_ALPHA : PNG_COLOR_TYPE_RGB;
    return MGW_OK;
}

static enum mgw_status bmp_parse(struct img *im, struct bmp *b)
{
    const unsigned char *p = im->in;
    uint32_t hsize, off, comp = 0, used = 0;
    int64_t sw, sh;
    unsigned planes;
    uint64_t size;
    enum mgw_status st;

    if (im->len < 26)
        return bad(im, "image is truncated (header)");
    off = le32(p + 10);
    hsize = le32(p + 14);
    if (hsize != 12 && hsize != 40 && hsize != 52 && hsize != 56 && hsize != 108 && hsize != 124)
        return bad(im, "image has an unsupported header");
    if (14 + (size_t)hsize > im->len)
        return bad(im, "image is truncated (header)");
    if (hsize == 12) {
        sw = le16(p + 18);
        sh = le16(p + 20);
        planes = le16(p + 22);
        b->bpp = le16(p + 24);
    } else {
        sw = (int32_t)le32(p + 18);
        sh = (int32_t)le32(p + 22);
        planes = le16(p + 26);
        b->bpp = le16(p + 28);
        comp = le32(p + 30);
        used = le32(p + 46);
        b->icc = hsize >= 124 && le32(p + 70) == 0x4d424544; /* 'MBED' */
    }
    if (planes != 1 || sw <= 0 || sh == 0)
        return bad(im, "image has an invalid size");
    b->width = (uint32_t)sw;
    b->top_down = sh < 0;
    b->height = (uint32_t)(sh < 0 ? -sh : sh);
    if (over_pixels(im, "BMP image", b->width, b->height))
        return MGW_LIMIT;
    b->stride = (size_t)(((uint64_t)b->width * b->bpp + 31) / 32 * 4);
    size = (uint64_t)b->stride * b->height;
    if (b->bpp != 1 && b->bpp != 4 && b->bpp != 8 && b->bpp != 16 && b->bpp != 24 && b->bpp != 32)
        return bad(im, "image has an unsupported bit depth");
    if (off > im->len || size > im->len - off)
        return bad(im, "image is truncated (pixels)");
    b->px = p + off;
    b->trailing = im->len - off - (size_t)size;
    if (b->bpp <= 8) {
        if (comp != 0)
            return bad(im, "image has unsupported compression");
        b->ctype = PNG_COLOR_TYPE_PALETTE;
        st = bmp_palette(im, b, 14 + (size_t)hsize, hsize == 12 ? 3 : 4, used);
    } else if (b->bpp == 24) {
        if (comp != 0)
            return bad(im, "image has unsupported compression");
        b->ctype = PNG_COLOR_TYPE_RGB;
        st = MGW_OK;
    } else {
        st = bmp_masks(im, b, hsize, comp);
    }
    return st;
}

static unsigned char bmp_channel(const struct bmp *b, int i, uint32_t v)
{
    uint32_t max = (1u << b->bits[i]) - 1;

    v = (v & b->mask[i]) >> b->shift[i];
    return (unsigned char)(b->bits[i] == 8 ? v : (v * 255 + max / 2) / max);
}

static void bmp_row(const struct bmp *b, uint32_t y, unsigned char *out)
{
    const unsigned char *s = b->px + (size_t)(b->top_down ? y : b->height - 1 - y) * b->stride;
    unsigned n = b->ctype == PNG_COLOR_TYPE_RGB_ALPHA ? 4 : 3;

    for (uint32_t x = 0; x < b->width; x++) {
        if (b->bpp <= 8) {
            out[x] = (unsigned char)bmp_index(b, s, x);
        } else if (b->bpp == 24) {
            out[3 * x] = s[3 * x + 2];
            out[3 * x + 1] = s[3 * x + 1];
            out[3 * x + 2] = s[3 * x];
        } else {
            uint32_t v = b->bpp == 16 ? le16(s + 2 * (size_t)x) : le32(s + 4 * (size_t)x);
            for (unsigned i = 0; i < n; i++)
                out[n * x + i] = bmp_channel(b, (int)i, v);
        }
    }
}

static void png_bmp_body(struct png_job *j)
{
    const struct bmp *b = j->bmp;
    size_t bytes = b->ctype == PNG_COLOR_TYPE_PALETTE ? 1 : b->ctype == PNG_COLOR_TYPE_RGB ? 3 : 4;

    j->status = MGW_FAIL;
    j->pix = g_try_malloc((size_t)b->width * bytes);
    if (j->pix == NULL || !png_writer(j, b->width, b->height, 8, b->ctype)) {
        j->status = no_memory(j->im);
        return;
    }
    if (b->ctype == PNG_COLOR_TYPE_PALETTE)
        png_set_PLTE(j->wp, j->wi, b->pal, (int)b->npal);
    if (!out_begin(j->im, IMG_PNG))
        return;
    png_write_info(j->wp, j->wi);
    for (uint32_t y = 0; y < b->height; y++) {
        bmp_row(b, y, j->pix);
        png_write_row(j->wp, j->pix);
    }
    png_write_end(j->wp, NULL);
    j->status = MGW_OK;
}

static enum mgw_status do_bmp(struct img *im)
{
    struct bmp *b = g_new0(struct bmp, 1);
    struct png_job j;
    enum mgw_status st;

    st = bmp_parse(im, b);
    if (st == MGW_OK) {
        memset(&j, 0, sizeof j);
        j.im = im;
        j.bmp = b;
        st = png_finish(&j, png_run(&j, png_bmp_body));
    }
    if (st == MGW_OK) {
        mgw_note(im->w, "converted", "BMP image converted to PNG");
        if (b->icc)
            mgw_note(im->w, "removed", "ICC colour profile");
        note_trailing(im->w, b->trailing);
    }
    g_free(b);
    return st;
}

/*
 * JPEG
 */

struct jpg_job {
    struct jpeg_error_mgr jerr;
    struct jpeg_progress_mgr progress;
    struct jpeg_destination_mgr dest;
    struct jpeg_decompress_struct d;
    struct jpeg_compress_struct c;
    jmp_buf jb;
    struct img *im;
    bool limit;
    char err[JMSG_LENGTH_MAX];
    JSAMPLE *row;   /* one decoded row */
    JSAMPLE *rgb;   /* one row to encode */
    JSAMPLE *image; /* the whole picture, when it must be turned */
    int orientation;
    bool cmyk, inverted;
    size_t trailing;
    size_t exif, xmp, icc, iptc, com, other; /* segments libjpeg saved */
    char names[96];                          /* of the other ones */
    enum mgw_status status;
    unsigned char dbuf[16384];
};

static void jpg_error_exit(j_common_ptr cinfo)
{
    struct jpg_job *j = cinfo->client_data;

    if (cinfo->err->msg_code == JERR_OUT_OF_MEMORY)
        j->limit = true;
    (*cinfo->err->format_message)(cinfo, j->err);
    longjmp(j->jb, 1);
}

/* A warning (level -1) means corrupt data: it fails as an error does. */
static void jpg_emit(j_common_ptr cinfo, int level)
{
    struct jpg_job *j = cinfo->client_data;

    if (level >= 0 || cinfo->err->msg_code == JWRN_JFIF_MAJOR)
        return;
    (*cinfo->err->format_message)(cinfo, j->err);
    longjmp(j->jb, 1);
}

static void jpg_output(j_common_ptr cinfo)
{
    (void)cinfo;
}

static void jpg_progress(j_common_ptr cinfo)
{
    struct jpg_job *j = cinfo->client_data;

    if (cinfo->is_decompressor && ((j_decompress_ptr)cinfo)->input_scan_number > IMG_MAX_SCANS) {
        j->limit = true;
        g_snprintf(j->err, sizeof j->err, "more than %d scans", IMG_MAX_SCANS);
        longjmp(j->jb, 1);
    }
}

static void jpg_dest_init(j_compress_ptr c)
{
    struct jpg_job *j = c->client_data;

    j->dest.next_output_byte = j->dbuf;
    j->dest.free_in_buffer = sizeof j->dbuf;
}

static boolean jpg_dest_empty(j_compress_ptr c)
{
    struct jpg_job *j = c->client_data;

    if (!out_put(j->im, j->dbuf, sizeof j->dbuf))
        ERREXIT(c, JERR_FILE_WRITE);
    j->dest.next_output_byte = j->dbuf;
    j->dest.free_in_buffer = sizeof j->dbuf;
    return TRUE;
}

static void jpg_dest_term(j_compress_ptr c)
{
    struct jpg_job *j = c->client_data;

    if (!out_put(j->im, j->dbuf, sizeof j->dbuf - j->dest.free_in_buffer))
        ERREXIT(c, JERR_FILE_WRITE);
}

/* The Orientation (0x0112) of IFD0 of an APP1 "Exif" segment, or 0. */
static int exif_orientation(const unsigned char *p, size_t n)
{
    const unsigned char *t = p + 6;
    size_t tn;
    bool le;
    uint64_t ifd, count;

    if (n < 6 + 8 || memcmp(p, "Exif\0\0", 6) != 0)
        return 0;
    tn = n - 6;
    if (memcmp(t, "II*\0", 4) == 0)
        le = true;
    else if (memcmp(t, "MM\0*", 4) == 0)
        le = false;
    else
        return 0;
    ifd = le ? le32(t + 4) : be32(t + 4);
    if (ifd + 2 > tn)
        return 0;
    count = le ? le16(t + ifd) : be16(t + ifd);
    for (uint64_t i = 0; i < count; i++) {
        uint64_t e = ifd + 2 + 12 * i;
        unsigned tag, type, v;
        if (e + 12 > tn)
            break;
        tag = le ? le16(t + e) : be16(t + e);
        if (tag != 0x0112)
            continue;
        type = le ? le16(t + e + 2) : be16(t + e + 2);
        v = le ? le16(t + e + 8) : be16(t + e + 8);
        return type == 3 && v >= 1 && v <= 8 ? (int)v : 0;
    }
    return 0;
}

/* The EXIF Orientation of the first APP1 segment that has one, else 1. */
static int jpg_orientation(j_decompress_ptr d)
{
    int o = 0;

    for (jpeg_saved_marker_ptr m = d->marker_list; m != NULL && o == 0; m = m->next)
        if (m->marker == JPEG_APP0 + 1)
            o = exif_orientation(m->data, m->data_length);
    return o == 0 ? 1 : o;
}

static void jpg_setup_decoder(struct jpg_job *j)
{
    j_decompress_ptr d = &j->d;

    switch (d->jpeg_color_space) {
    case JCS_GRAYSCALE:
        d->out_color_space = JCS_GRAYSCALE;
        break;
    case JCS_CMYK:
    case JCS_YCCK:
        d->out_color_space = JCS_CMYK;
        j->cmyk = true;
        j->inverted = d->saw_Adobe_marker;
        break;
    default:
        d->out_color_space = JCS_RGB;
        break;
    }
    d->dct_method = JDCT_ISLOW;
}

/* Creates the compressor; it writes to the output. */
static void jpg_new_encoder(struct jpg_job *j)
{
    j_compress_ptr c = &j->c;

    c->err = &j->jerr;
    c->client_data = j;
    jpeg_create_compress(c);
    j->dest.init_destination = jpg_dest_init;
    j->dest.empty_output_buffer = jpg_dest_empty;
    j->dest.term_destination = jpg_dest_term;
    c->dest = &j->dest;
}

/*
 * What both paths write alike, after jpeg_set_defaults (or
 * jpeg_copy_critical_parameters), so that the output of either, given
 * again, comes out of the coefficient path byte for byte: a JFIF 1.01
 * APP0 with the input's density when it has a valid one (else 1:1)
 * and no other marker, Huffman coding with tables computed from the
 * coefficients (a function of them alone), one sequential scan, no
 * restart markers.
 */
static void jpg_set_common(struct jpg_job *j)
{
    j_compress_ptr c = &j->c;
    j_decompress_ptr d = &j->d;

    c->write_JFIF_header = TRUE;
    c->write_Adobe_marker = FALSE;
    c->JFIF_major_version = 1;
    c->JFIF_minor_version = 1;
    c->density_unit = 0;
    c->X_density = 1;
    c->Y_density = 1;
    if (d->saw_JFIF_marker && d->X_density != 0 && d->Y_density != 0 && d->density_unit <= 2) {
        c->density_unit = d->density_unit;
        c->X_density = d->X_density;
        c->Y_density = d->Y_density;
    }
    c->arith_code = FALSE;
    c->optimize_coding = TRUE;
    c->scan_info = NULL;
    c->num_scans = 0;
    c->restart_interval = 0;
    c->restart_in_rows = 0;
}

static void jpg_setup_encoder(struct jpg_job *j, JDIMENSION width, JDIMENSION height, int comps)
{
    j_compress_ptr c = &j->c;

    jpg_new_encoder(j);
    c->image_width = width;
    c->image_height = height;
    c->input_components = comps;
    c->in_color_space = comps == 1 ? JCS_GRAYSCALE : JCS_RGB;
    jpeg_set_defaults(c);
    jpeg_set_quality(c, j->im->quality, TRUE);
    c->dct_method = JDCT_ISLOW;
    jpg_set_common(j);
}

/* The decoded row ROW as the samples to encode (CMYK becomes RGB). */
static JSAMPLE *jpg_convert(struct jpg_job *j, JSAMPLE *row, JDIMENSION width, JSAMPLE *out)
{
    if (!j->cmyk)
        return row;
    for (JDIMENSION x = 0; x < width; x++) {
        unsigned c = row[4 * x], m = row[4 * x + 1], y = row[4 * x + 2], k = row[4 * x + 3];
        if (!j->inverted) {
            c = 255 - c;
            m = 255 - m;
            y = 255 - y;
            k = 255 - k;
        }
        out[3 * x] = (JSAMPLE)((c * k + 127) / 255);
        out[3 * x + 1] = (JSAMPLE)((m * k + 127) / 255);
        out[3 * x + 2] = (JSAMPLE)((y * k + 127) / 255);
    }
    return out;
}

/* Row YO of the picture turned by orientation O (EXIF 2 to 8) into OUT. */
static void jpg_turn_row(const struct jpg_job *j, JDIMENSION w, JDIMENSION h, int comps,
                         JDIMENSION yo, JDIMENSION wo, JSAMPLE *out)
{
    for (JDIMENSION xo = 0; xo < wo; xo++) {
        JDIMENSION x, y;
        switch (j->orientation) {
        case 2: /* mirrored left to right */
            x = w - 1 - xo;
            y = yo;
            break;
        case 3: /* turned 180 degrees */
            x = w - 1 - xo;
            y = h - 1 - yo;
            break;
        case 4: /* mirrored top to bottom */
            x = xo;
            y = h - 1 - yo;
            break;
        case 5: /* transposed */
            x = yo;
            y = xo;
            break;
        case 6: /* to be turned 90 degrees clockwise */
            x = yo;
            y = h - 1 - xo;
            break;
        case 7: /* transversed */
            x = w - 1 - yo;
            y = h - 1 - xo;
            break;
        default: /* 8: to be turned 90 degrees anticlockwise */
            x = w - 1 - yo;
            y = xo;
            break;
        }
        memcpy(out + (size_t)xo * (size_t)comps, j->image + ((size_t)y * w + x) * (size_t)comps,
               (size_t)comps);
    }
}

static bool starts(const jpeg_saved_marker_ptr m, const char *s, size_t n)
{
    return m->data_length >= n && memcmp(m->data, s, n) == 0;
}

/* Counts the segments libjpeg saved (jpeg_finish_decompress frees them). */
static void jpg_count(struct jpg_job *j)
{
    for (jpeg_saved_marker_ptr m = j->d.marker_list; m != NULL; m = m->next) {
        if (m->marker == JPEG_COM)
            j->com++;
        else if (m->marker == JPEG_APP0 + 1 && starts(m, "Exif\0", 5))
            j->exif++;
        else if (m->marker == JPEG_APP0 + 1 &&
                 (starts(m, "http://ns.adobe.com/x", 21) || starts(m, "XMP", 3)))
            j->xmp++;
        else if (m->marker == JPEG_APP0 + 2 && starts(m, "ICC_PROFILE", 12))
            j->icc++;
        else if (m->marker == JPEG_APP0 + 13 && starts(m, "Photoshop 3.0", 14))
            j->iptc++;
        else {
            char n[8];
            g_snprintf(n, sizeof n, "APP%d", m->marker - JPEG_APP0);
            j->other++;
            add_name(j->names, sizeof j->names, n, strlen(n));
        }
    }
}

/* The pixel path: decode, turn and convert, encode at quality=. */
static void jpg_pixels(struct jpg_job *j)
{
    j_decompress_ptr d = &j->d;
    struct img *im = j->im;
    JDIMENSION w, h, wo, ho;
    int comps;

    jpg_setup_decoder(j);
    jpeg_start_decompress(d);
    w = d->output_width;
    h = d->output_height;
    comps = d->out_color_space == JCS_GRAYSCALE ? 1 : 3;
    wo = j->orientation >= 5 ? h : w;
    ho = j->orientation >= 5 ? w : h;
    j->row = g_try_malloc((size_t)w * (size_t)d->output_components);
    j->rgb = g_try_malloc((size_t)(w > h ? w : h) * 3);
    if (j->orientation != 1)
        j->image = g_try_malloc((size_t)w * h * (size_t)comps);
    if (j->row == NULL || j->rgb == NULL || (j->orientation != 1 && j->image == NULL)) {
        j->status = no_memory(im);
        return;
    }
    jpg_setup_encoder(j, wo, ho, comps);
    if (!out_begin(im, IMG_JPEG))
        return;
    jpeg_start_compress(&j->c, TRUE);
    while (d->output_scanline < h) {
        JDIMENSION y = d->output_scanline;
        JSAMPROW r = j->row, o;
        if (jpeg_read_scanlines(d, &r, 1) != 1) {
            mgw_reason(im->w, "JPEG image: decoding stalled");
            return;
        }
        if (j->image == NULL) {
            o = jpg_convert(j, j->row, w, j->rgb);
            jpeg_write_scanlines(&j->c, &o, 1);
        } else {
            o = jpg_convert(j, j->row, w, j->image + (size_t)y * w * (size_t)comps);
            if (o != j->image + (size_t)y * w * (size_t)comps)
                memcpy(j->image + (size_t)y * w * (size_t)comps, o, (size_t)w * (size_t)comps);
        }
    }
    for (JDIMENSION yo = 0; j->image != NULL && yo < ho; yo++) {
        JSAMPROW o = j->rgb;
        jpg_turn_row(j, w, h, comps, yo, wo, j->rgb);
        jpeg_write_scanlines(&j->c, &o, 1);
    }
    /* on to EOI, so that every segment is counted, and what follows it */
    for (int i = 0; i <= IMG_MAX_SCANS && !jpeg_input_complete(d); i++)
        jpeg_consume_input(d);
    jpg_count(j);
    jpeg_finish_decompress(d);
    j->trailing = d->src->bytes_in_buffer;
    jpeg_finish_compress(&j->c);
    j->status = MGW_OK;
}

/* The coefficient path: the quantised DCT coefficients and tables are
 * handed from the decoder to the encoder as they are. */
static void jpg_coefficients(struct jpg_job *j)
{
    j_decompress_ptr d = &j->d;
    jvirt_barray_ptr *coefs;

    coefs = jpeg_read_coefficients(d);
    if (coefs == NULL) {
        mgw_reason(j->im->w, "JPEG image: decoding stalled");
        return;
    }
    jpg_count(j); /* jpeg_finish_decompress frees the saved segments */
    jpg_new_encoder(j);
    jpeg_copy_critical_parameters(d, &j->c);
    jpg_set_common(j);
    if (!out_begin(j->im, IMG_JPEG))
        return;
    jpeg_write_coefficients(&j->c, coefs);
    jpeg_finish_compress(&j->c);
    /* the coefficients live until this: it frees the decoder's image pool */
    jpeg_finish_decompress(d);
    j->trailing = d->src->bytes_in_buffer;
    j->status = MGW_OK;
}

static void jpg_body(struct jpg_job *j)
{
    j_decompress_ptr d = &j->d;
    struct img *im = j->im;

    j->status = MGW_FAIL;
    j->jerr.error_exit = jpg_error_exit;
    j->jerr.emit_message = jpg_emit;
    j->jerr.output_message = jpg_output;
    d->client_data = j;
    jpeg_create_decompress(d);
    j->progress.progress_monitor = jpg_progress;
    d->progress = &j->progress;
    jpeg_mem_src(d, im->in, (unsigned long)im->len);
    for (int m = 1; m < 16; m++)
        if (m != 14) /* libjpeg reads the Adobe segment itself */
            jpeg_save_markers(d, JPEG_APP0 + m, m == 1 ? 0xffff : 32);
    jpeg_save_markers(d, JPEG_COM, 1); /* 0 would not save it at all */
    if (jpeg_read_header(d, TRUE) != JPEG_HEADER_OK) {
        mgw_reason(im->w, "JPEG file has no image");
        return;
    }
    if (over_pixels(im, "JPEG image", d->image_width, d->image_height)) {
        j->status = MGW_LIMIT;
        return;
    }
    j->orientation = jpg_orientation(d);
    if (j->orientation == 1 &&
        (d->jpeg_color_space == JCS_GRAYSCALE || d->jpeg_color_space == JCS_YCbCr))
        jpg_coefficients(j);
    else
        jpg_pixels(j);
}

static bool jpg_run(struct jpg_job *j)
{
    if (setjmp(j->jb) != 0)
        return false;
    jpg_body(j);
    return true;
}

/* The "removed" notes of the metadata JPEG and TIFF share. */
static void note_metadata(struct mgw *w, size_t exif, size_t xmp, size_t icc, size_t iptc)
{
    if (exif > 0)
        mgw_note(w, "removed", "EXIF metadata");
    if (xmp > 0)
        mgw_note(w, "removed", "XMP metadata");
    if (icc > 0)
        mgw_note(w, "removed", "ICC colour profile");
    if (iptc > 0)
        mgw_note(w, "removed", "Photoshop/IPTC metadata");
}

static void jpg_notes(struct jpg_job *j)
{
    struct mgw *w = j->im->w;

    note_metadata(w, j->exif, j->xmp, j->icc, j->iptc);
    note_count(w, j->com, "comment", "comments");
    if (j->other > 0)
        mgw_note(w, "removed", "%zu other application segment%s (%s)", j->other,
                 j->other == 1 ? "" : "s", j->names);
    note_trailing(w, j->trailing);
    if (j->orientation != 1)
        mgw_note(w, "info", "EXIF orientation %d applied to the pixels", j->orientation);
    if (j->cmyk)
        mgw_note(w, "converted", "CMYK JPEG converted to RGB (without colour management)");
}

static enum mgw_status do_jpeg(struct img *im)
{
    struct jpg_job *j = g_new0(struct jpg_job, 1);
    enum mgw_status st;

    j->im = im;
    j->d.err = jpeg_std_error(&j->jerr);
    if (jpg_run(j)) {
        st = j->status;
    } else {
        st = j->limit ? MGW_LIMIT : MGW_FAIL;
        mgw_reason(im->w, "JPEG image: %s", j->err);
    }
    if (st == MGW_OK)
        jpg_notes(j);
    jpeg_destroy_compress(&j->c);
    jpeg_destroy_decompress(&j->d);
    g_free(j->row);
    g_free(j->rgb);
    g_free(j->image);
    g_free(j);
    return st;
}

/*
 * GIF
 */

struct gif_job {
    struct img *im;
    GifFileType *in, *out;
    size_t pos; /* bytes of the item giflib has read */
    GifPixelType *frame;
    size_t frame_size;
    uint64_t frames, pixels;
    bool gce_pending, loop_written;
    GifByteType gce[4];
    size_t comments, plain, xmp, icc, apps, unknown;
    char app_names[64];
};

static int gif_read_cb(GifFileType *g, GifByteType *buf, int n)
{
    struct gif_job *j = g->UserData;
    size_t k;

    if (n <= 0)
        return 0;
    k = j->im->len - j->pos < (size_t)n ? j->im->len - j->pos : (size_t)n;
    memcpy(buf, j->im->in + j->pos, k);
    j->pos += k;
    return (int)k;
}

static int gif_write_cb(GifFileType *g, const GifByteType *buf, int n)
{
    struct gif_job *j = g->UserData;

    return n >= 0 && out_put(j->im, buf, (size_t)n) ? n : 0;
}

static enum mgw_status gif_error(struct gif_job *j, int code)
{
    const char *s = GifErrorString(code);

    if (code == D_GIF_ERR_NOT_ENOUGH_MEM || code == E_GIF_ERR_NOT_ENOUGH_MEM)
        return no_memory(j->im);
    mgw_reason(j->im->w, "GIF image: %s", s != NULL ? s : "giflib error");
    return MGW_FAIL;
}

/* Reads the rest of an extension's sub-blocks. */
static bool gif_skip_blocks(struct gif_job *j, GifByteType *blk)
{
    while (blk != NULL)
        if (DGifGetExtensionNext(j->in, &blk) == GIF_ERROR)
            return false;
    return true;
}

static enum mgw_status gif_loop(struct gif_job *j, GifByteType *blk)
{
    unsigned loop = 0;
    bool found = false;

    while (blk != NULL) {
        if (blk[0] >= 3 && blk[1] == 1 && !found) {
            loop = (unsigned)blk[2] | (unsigned)blk[3] << 8;
            found = true;
        }
        if (DGifGetExtensionNext(j->in, &blk) == GIF_ERROR)
            return gif_error(j, j->in->Error);
    }
    if (found && !j->loop_written) {
        GifByteType sub[3] = {1, (GifByteType)(loop & 0xff), (GifByteType)(loop >> 8)};
        j->loop_written = true;
        if (EGifPutExtensionLeader(j->out, APPLICATION_EXT_FUNC_CODE) == GIF_ERROR ||
            EGifPutExtensionBlock(j->out, 11, "NETSCAPE2.0") == GIF_ERROR ||
            EGifPutExtensionBlock(j->out, 3, sub) == GIF_ERROR ||
            EGifPutExtensionTrailer(j->out) == GIF_ERROR)
            return gif_error(j, j->out->Error);
    }
    return MGW_OK;
}

static enum mgw_status gif_extension(struct gif_job *j)
{
    GifByteType *blk = NULL;
    int code = 0;

    if (DGifGetExtension(j->in, &code, &blk) == GIF_ERROR)
        return gif_error(j, j->in->Error);
    if (code == GRAPHICS_EXT_FUNC_CODE) {
        GraphicsControlBlock gcb;
        if (blk != NULL && DGifExtensionToGCB(blk[0], blk + 1, &gcb) == GIF_OK) {
            EGifGCBToExtension(&gcb, j->gce);
            j->gce_pending = true;
        }
    } else if (code == APPLICATION_EXT_FUNC_CODE && blk != NULL && blk[0] == 11 &&
               (memcmp(blk + 1, "NETSCAPE2.0", 11) == 0 ||
                memcmp(blk + 1, "ANIMEXTS1.0", 11) == 0)) {
        if (DGifGetExtensionNext(j->in, &blk) == GIF_ERROR)
            return gif_error(j, j->in->Error);
        return gif_loop(j, blk);
    } else if (code == APPLICATION_EXT_FUNC_CODE && blk != NULL && blk[0] == 11 &&
               memcmp(blk + 1, "XMP DataXMP", 11) == 0) {
        j->xmp++;
    } else if (code == APPLICATION_EXT_FUNC_CODE && blk != NULL && blk[0] == 11 &&
               memcmp(blk + 1, "ICCRGBG1012", 11) == 0) {
        j->icc++;
    } else if (code == APPLICATION_EXT_FUNC_CODE) {
        char name[12] = "?";
        if (blk != NULL && blk[0] >= 8)
            for (int i = 0; i < 8; i++)
                name[i] = g_ascii_isalnum(blk[1 + i]) ? (char)blk[1 + i] : '_';
        j->apps++;
        add_name(j->app_names, sizeof j->app_names, name, strlen(name));
    } else if (code == COMMENT_EXT_FUNC_CODE) {
        j->comments++;
    } else if (code == PLAINTEXT_EXT_FUNC_CODE) {
        j->plain++;
    } else {
        j->unknown++;
    }
    return gif_skip_blocks(j, blk) ? MGW_OK : gif_error(j, j->in->Error);
}

static enum mgw_status gif_frame(struct gif_job *j)
{
    static const int start[] = {0, 4, 2, 1}, step[] = {8, 8, 4, 2};
    GifImageDesc *f = &j->in->Image;
    size_t size;
    int fw, fh;

    if (++j->frames > j->im->max_frames) {
        mgw_reason(j->im->w, "GIF image has more than %" G_GUINT64_FORMAT " frames (max-frames)",
                   j->im->max_frames);
        return MGW_LIMIT;
    }
    if (DGifGetImageDesc(j->in) == GIF_ERROR)
        return gif_error(j, j->in->Error);
    fw = f->Width;
    fh = f->Height;
    if (fw <= 0 || fh <= 0)
        return bad(j->im, "image has an empty frame");
    if (over_pixels(j->im, "GIF frame", (uint64_t)fw, (uint64_t)fh))
        return MGW_LIMIT;
    j->pixels += (uint64_t)fw * (uint64_t)fh;
    if (j->pixels / IMG_GIF_TOTAL > j->im->max_pixels) {
        mgw_reason(j->im->w, "GIF frames have more than %d times max-pixels together",
                   IMG_GIF_TOTAL);
        return MGW_LIMIT;
    }
    if (f->ColorMap == NULL && j->in->SColorMap == NULL)
        return bad(j->im, "image has a frame without a colour table");
    size = (size_t)fw * (size_t)fh;
    if (size > j->frame_size) {
        g_free(j->frame);
        j->frame = g_try_malloc(size);
        j->frame_size = j->frame != NULL ? size : 0;
        if (j->frame == NULL)
            return no_memory(j->im);
    }
    for (int pass = 0; pass < (f->Interlace ? 4 : 1); pass++)
        for (int y = f->Interlace ? start[pass] : 0; y < fh; y += f->Interlace ? step[pass] : 1)
            if (DGifGetLine(j->in, j->frame + (size_t)y * (size_t)fw, fw) == GIF_ERROR)
                return gif_error(j, j->in->Error);
    if (j->gce_pending && EGifPutExtension(j->out, GRAPHICS_EXT_FUNC_CODE, 4, j->gce) == GIF_ERROR)
        return gif_error(j, j->out->Error);
    j->gce_pending = false;
    if (f->ColorMap == NULL && j->out->Image.ColorMap != NULL) {
        /* giflib 5.2 would drop (leak) its copy of the last frame's table */
        GifFreeMapObject(j->out->Image.ColorMap);
        j->out->Image.ColorMap = NULL;
    }
    if (EGifPutImageDesc(j->out, f->Left, f->Top, fw, fh, false, f->ColorMap) == GIF_ERROR)
        return gif_error(j, j->out->Error);
    for (int y = 0; y < fh; y++)
        if (EGifPutLine(j->out, j->frame + (size_t)y * (size_t)fw, fw) == GIF_ERROR)
            return gif_error(j, j->out->Error);
    return MGW_OK;
}

static enum mgw_status gif_records(struct gif_job *j)
{
    GifRecordType type = UNDEFINED_RECORD_TYPE;
    enum mgw_status st = MGW_OK;

    while (st == MGW_OK && type != TERMINATE_RECORD_TYPE) {
        if (DGifGetRecordType(j->in, &type) == GIF_ERROR)
            return gif_error(j, j->in->Error);
        if (type == IMAGE_DESC_RECORD_TYPE)
            st = gif_frame(j);
        else if (type == EXTENSION_RECORD_TYPE)
            st = gif_extension(j);
    }
    if (st == MGW_OK && j->frames == 0)
        return bad(j->im, "file has no image");
    return st;
}

static void gif_notes(struct gif_job *j)
{
    struct mgw *w = j->im->w;

    note_count(w, j->comments, "comment", "comments");
    note_count(w, j->plain, "plain text extension", "plain text extensions");
    if (j->xmp > 0)
        mgw_note(w, "removed", "XMP metadata");
    if (j->icc > 0)
        mgw_note(w, "removed", "ICC colour profile");
    if (j->apps > 0)
        mgw_note(w, "removed", "%zu application extension%s (%s)", j->apps, j->apps == 1 ? "" : "s",
                 j->app_names);
    note_count(w, j->unknown, "unknown extension", "unknown extensions");
    note_trailing(w, j->im->len - j->pos);
}

static enum mgw_status do_gif(struct img *im)
{
    struct gif_job *j = g_new0(struct gif_job, 1);
    enum mgw_status st = MGW_FAIL;
    int err = 0;

    j->im = im;
    j->in = DGifOpen(j, gif_read_cb, &err);
    if (j->in == NULL) {
        st = gif_error(j, err);
        goto out;
    }
    if (over_pixels(im, "GIF screen", (uint64_t)j->in->SWidth, (uint64_t)j->in->SHeight)) {
        st = MGW_LIMIT;
        goto out;
    }
    j->out = EGifOpen(j, gif_write_cb, &err);
    if (j->out == NULL) {
        st = gif_error(j, err);
        goto out;
    }
    EGifSetGifVersion(j->out, im->in[4] == '9');
    if (!out_begin(im, IMG_GIF))
        goto out;
    if (EGifPutScreenDesc(j->out, j->in->SWidth, j->in->SHeight, j->in->SColorResolution,
                          j->in->SBackGroundColor, j->in->SColorMap) == GIF_ERROR) {
        st = gif_error(j, j->out->Error);
        goto out;
    }
    st = gif_records(j);
    if (st == MGW_OK) {
        GifFileType *o = j->out;
        j->out = NULL;
        if (EGifCloseFile(o, &err) == GIF_ERROR)
            st = gif_error(j, err);
    }
    if (st == MGW_OK)
        gif_notes(j);
out:
    if (j->out != NULL)
        EGifCloseFile(j->out, &err);
    if (j->in != NULL)
        DGifCloseFile(j->in, &err);
    g_free(j->frame);
    g_free(j);
    return st;
}

/*
 * WebP
 */

struct webp_scan {
    size_t end; /* of the RIFF data */
    size_t exif, xmp, icc, unknown;
    bool animated;
    char names[64];
};

static enum mgw_status webp_walk(struct img *im, struct webp_scan *s)
{
    uint64_t end = (uint64_t)le32(im->in + 4) + 8;
    size_t pos = 12;

    if (end > im->len)
        return bad(im, "image is truncated (RIFF size)");
    s->end = (size_t)end;
    while (pos < s->end) {
        const unsigned char *c = im->in + pos;
        uint64_t n;
        if (s->end - pos < 8)
            return bad(im, "image has a corrupt chunk");
        n = le32(c + 4);
        n += n & 1;
        if (n > s->end - pos - 8)
            return bad(im, "image has a corrupt chunk length");
        if (memcmp(c, "EXIF", 4) == 0)
            s->exif++;
        else if (memcmp(c, "XMP ", 4) == 0)
            s->xmp++;
        else if (memcmp(c, "ICCP", 4) == 0)
            s->icc++;
        else if (memcmp(c, "ANIM", 4) == 0 || memcmp(c, "ANMF", 4) == 0)
            s->animated = true;
        else if (memcmp(c, "VP8 ", 4) != 0 && memcmp(c, "VP8L", 4) != 0 &&
                 memcmp(c, "VP8X", 4) != 0 && memcmp(c, "ALPH", 4) != 0) {
            char name[8];
            for (int i = 0; i < 4; i++)
                name[i] = g_ascii_isalnum(c[i]) ? (char)c[i] : '_';
            s->unknown++;
            add_name(s->names, sizeof s->names, name, 4);
        }
        pos += 8 + (size_t)n;
    }
    return MGW_OK;
}

/* Encodes the pixels as lossless WebP (the settings are fixed, so the
 * file is a function of the pixels alone). */
static enum mgw_status webp_encode(struct img *im, const uint8_t *pix, int width, int height,
                                   bool alpha)
{
    WebPConfig cfg;
    WebPPicture pic;
    WebPMemoryWriter wr;
    enum mgw_status st = MGW_OK;
    int ok;

    if (!WebPConfigInit(&cfg) || !WebPPictureInit(&pic))
        return bad(im, "encoder version mismatch");
    cfg.lossless = 1;
    cfg.quality = IMG_WEBP_EFFORT;
    /* a function of the size alone, which does not change on the next pass */
    cfg.method = (uint64_t)width * (uint64_t)height > IMG_WEBP_LARGE ? 0 : IMG_WEBP_METHOD;
    cfg.exact = 0; /* the colour under a transparent pixel is cleared */
    pic.use_argb = 1;
    pic.width = width;
    pic.height = height;
    WebPMemoryWriterInit(&wr);
    pic.writer = WebPMemoryWrite;
    pic.custom_ptr = &wr;
    if (alpha)
        ok = WebPPictureImportRGBA(&pic, pix, width * 4);
    else
        ok = WebPPictureImportRGB(&pic, pix, width * 3);
    if (!ok) {
        st = no_memory(im);
    } else if (!WebPEncode(&cfg, &pic)) {
        if (pic.error_code == VP8_ENC_ERROR_OUT_OF_MEMORY ||
            pic.error_code == VP8_ENC_ERROR_BITSTREAM_OUT_OF_MEMORY)
            st = no_memory(im);
        else {
            mgw_reason(im->w, "WebP encoder failed (error %d)", (int)pic.error_code);
            st = MGW_FAIL;
        }
    } else if (!out_begin(im, IMG_WEBP) || !out_put(im, wr.mem, wr.size)) {
        st = MGW_FAIL;
    }
    WebPMemoryWriterClear(&wr);
    WebPPictureFree(&pic);
    return st;
}

static enum mgw_status do_webp(struct img *im)
{
    struct webp_scan s;
    WebPBitstreamFeatures f;
    enum mgw_status st;
    uint8_t *pix;
    size_t bpp, size;

    memset(&s, 0, sizeof s);
    st = webp_walk(im, &s);
    if (st != MGW_OK)
        return st;
    if (WebPGetFeatures(im->in, s.end, &f) != VP8_STATUS_OK)
        return bad(im, "image is corrupt");
    if (s.animated || f.has_animation) {
        mgw_reason(im->w, "unsupported: animated WebP");
        return MGW_FAIL;
    }
    if (f.width <= 0 || f.height <= 0)
        return bad(im, "image has an invalid size");
    if (over_pixels(im, "WebP image", (uint64_t)f.width, (uint64_t)f.height))
        return MGW_LIMIT;
    bpp = f.has_alpha ? 4 : 3;
    size = (size_t)f.width * (size_t)f.height * bpp;
    pix = g_try_malloc(size);
    if (pix == NULL)
        return no_memory(im);
    if ((f.has_alpha ? WebPDecodeRGBAInto(im->in, s.end, pix, size, f.width * 4)
                     : WebPDecodeRGBInto(im->in, s.end, pix, size, f.width * 3)) == NULL)
        st = bad(im, "image is corrupt or truncated");
    else
        st = webp_encode(im, pix, f.width, f.height, f.has_alpha);
    g_free(pix);
    if (st == MGW_OK) {
        if (f.format != 2)
            mgw_note(im->w, "converted", "lossy WebP image converted to lossless WebP");
        if (s.exif > 0)
            mgw_note(im->w, "removed", "EXIF metadata");
        if (s.xmp > 0)
            mgw_note(im->w, "removed", "XMP metadata");
        if (s.icc > 0)
            mgw_note(im->w, "removed", "ICC colour profile");
        if (s.unknown > 0)
            mgw_note(im->w, "removed", "%zu unknown chunk%s (%s)", s.unknown,
                     s.unknown == 1 ? "" : "s", s.names);
        note_trailing(im->w, im->len - s.end);
    }
    return st;
}

/*
 * TIFF
 */

/* A TIFF file in memory, read or written by libtiff's client procedures. */
struct tif_io {
    const unsigned char *data; /* what is read: the item, or buf */
    unsigned char *buf;        /* the file written (NULL when reading) */
    uint64_t len, cap, pos;
};

struct tif_job {
    struct img *im;
    TIFF *in, *out;
    struct tif_io rd, wr;
    char err[200]; /* the first libtiff error */
    uint32_t *raster;
    uint32_t width, height; /* as stored */
    uint16_t orientation, photometric, bits;
    bool alpha;
    tdir_t pages;
    size_t exif, xmp, icc, iptc, text, other;
    GString *text_names, *other_names;
};

static int tif_error_cb(TIFF *t, void *data, const char *module, const char *fmt, va_list ap)
    G_GNUC_PRINTF(4, 0);

static int tif_error_cb(TIFF *t, void *data, const char *module, const char *fmt, va_list ap)
{
    struct tif_job *j = data;

    (void)t;
    (void)module;
    if (j->err[0] == '\0') {
        g_vsnprintf(j->err, sizeof j->err, fmt, ap);
        if (j->err[0] == '\0')
            g_strlcpy(j->err, "libtiff error", sizeof j->err);
    }
    return 1; /* handled: libtiff prints nothing */
}

static int tif_warning_cb(TIFF *t, void *data, const char *module, const char *fmt, va_list ap)
{
    (void)t;
    (void)data;
    (void)module;
    (void)fmt;
    (void)ap;
    return 1;
}

static tmsize_t tif_read_cb(thandle_t h, void *buf, tmsize_t n)
{
    struct tif_io *io = h;
    uint64_t left = io->pos < io->len ? io->len - io->pos : 0;

    if (n < 0)
        return -1;
    if ((uint64_t)n > left)
        n = (tmsize_t)left;
    if (n > 0)
        memcpy(buf, io->data + io->pos, (size_t)n);
    io->pos += (uint64_t)n;
    return n;
}

/* Writes at the position; a gap left by a seek past the end is zeroed. */
static tmsize_t tif_write_cb(thandle_t h, void *buf, tmsize_t n)
{
    struct tif_io *io = h;
    uint64_t end;

    if (io->buf == NULL || n < 0 || io->pos > IMG_TIFF_MAXOUT ||
        (uint64_t)n > IMG_TIFF_MAXOUT - io->pos)
        return -1;
    end = io->pos + (uint64_t)n;
    if (end > io->cap) {
        uint64_t cap = io->cap < IMG_OUT_BUF ? IMG_OUT_BUF : io->cap;
        unsigned char *p;
        while (cap < end)
            cap *= 2;
        p = g_try_realloc(io->buf, (size_t)cap);
        if (p == NULL)
            return -1;
        io->buf = p;
        io->data = p;
        io->cap = cap;
    }
    if (io->pos > io->len)
        memset(io->buf + io->len, 0, (size_t)(io->pos - io->len));
    memcpy(io->buf + io->pos, buf, (size_t)n);
    io->pos = end;
    if (end > io->len)
        io->len = end;
    return n;
}

static toff_t tif_seek_cb(thandle_t h, toff_t off, int whence)
{
    struct tif_io *io = h;
    uint64_t base = whence == SEEK_CUR ? io->pos : whence == SEEK_END ? io->len : 0;
    int64_t d = (int64_t)off;

    if (whence != SEEK_SET && whence != SEEK_CUR && whence != SEEK_END)
        return (toff_t)-1;
    /* SEEK_CUR and SEEK_END may go back (OFF is then negative), not
     * before the start; a position past the end is checked on use */
    if (whence == SEEK_SET)
        base = off;
    else if (d < 0 && (uint64_t)(-(d + 1)) >= base)
        return (toff_t)-1;
    else
        base += off;
    io->pos = base;
    return base;
}

static toff_t tif_size_cb(thandle_t h)
{
    return ((struct tif_io *)h)->len;
}

static int tif_close_cb(thandle_t h)
{
    (void)h;
    return 0;
}

static int tif_map_cb(thandle_t h, void **base, toff_t *size)
{
    (void)h;
    (void)base;
    (void)size;
    return 0; /* no mapping: everything goes through tif_read_cb */
}

static void tif_unmap_cb(thandle_t h, void *base, toff_t size)
{
    (void)h;
    (void)base;
    (void)size;
}

static TIFF *tif_open(struct tif_job *j, const char *name, const char *mode, struct tif_io *io)
{
    TIFFOpenOptions *o = TIFFOpenOptionsAlloc();
    uint64_t max = j->im->max_pixels;
    TIFF *t;

    if (o == NULL) {
        g_strlcpy(j->err, "out of memory", sizeof j->err);
        return NULL;
    }
    TIFFOpenOptionsSetErrorHandlerExtR(o, tif_error_cb, j);
    TIFFOpenOptionsSetWarningHandlerExtR(o, tif_warning_cb, j);
    /* no single allocation over 16 bytes a pixel (a 16-bit CMYK strip
     * with alpha is 10) and some room for tiles larger than the image */
    if (max < ((uint64_t)INT64_MAX - IMG_TIFF_ROOM) / 16)
        TIFFOpenOptionsSetMaxSingleMemAlloc(o, (tmsize_t)(max * 16 + IMG_TIFF_ROOM));
    t = TIFFClientOpenExt(name, mode, io, tif_read_cb, tif_write_cb, tif_seek_cb, tif_close_cb,
                          tif_size_cb, tif_map_cb, tif_unmap_cb, o);
    TIFFOpenOptionsFree(o);
    return t;
}

static enum mgw_status tif_failed(struct tif_job *j)
{
    mgw_reason(j->im->w, "TIFF image: %s",
               j->err[0] != '\0' ? j->err : "cannot be read (no valid first directory)");
    return MGW_FAIL;
}

static void tif_add_name(struct tif_job *j, GString **list, uint32_t tag)
{
    const TIFFField *f = TIFFFindField(j->in, tag, TIFF_ANY);

    if (*list == NULL)
        *list = g_string_new(NULL);
    if ((*list)->len > 120)
        return;
    if ((*list)->len > 0)
        g_string_append(*list, ", ");
    if (f != NULL && TIFFFieldName(f) != NULL)
        g_string_append(*list, TIFFFieldName(f));
    else
        g_string_append_printf(*list, "tag %u", (unsigned)tag);
}

/* Sorts the tags libtiff keeps outside the image structure (metadata). */
static void tif_scan_tags(struct tif_job *j)
{
    int n = TIFFGetTagListCount(j->in);

    for (int i = 0; i < n; i++) {
        uint32_t tag = TIFFGetTagListEntry(j->in, i);
        switch (tag) {
        case TIFFTAG_EXIFIFD:
        case TIFFTAG_GPSIFD:
        case TIFFTAG_INTEROPERABILITYIFD:
            j->exif++;
            break;
        case TIFFTAG_XMLPACKET:
            j->xmp++;
            break;
        case TIFFTAG_ICCPROFILE:
            j->icc++;
            break;
        case TIFFTAG_RICHTIFFIPTC:
        case TIFFTAG_PHOTOSHOP:
            j->iptc++;
            break;
        case TIFFTAG_DOCUMENTNAME:
        case TIFFTAG_IMAGEDESCRIPTION:
        case TIFFTAG_MAKE:
        case TIFFTAG_MODEL:
        case TIFFTAG_PAGENAME:
        case TIFFTAG_SOFTWARE:
        case TIFFTAG_DATETIME:
        case TIFFTAG_ARTIST:
        case TIFFTAG_HOSTCOMPUTER:
        case TIFFTAG_COPYRIGHT:
            j->text++;
            tif_add_name(j, &j->text_names, tag);
            break;
        default:
            j->other++;
            tif_add_name(j, &j->other_names, tag);
            break;
        }
    }
}

static uint64_t tif_get(const unsigned char *p, unsigned n, bool le)
{
    uint64_t v = 0;

    for (unsigned i = 0; i < n; i++)
        v |= (uint64_t)p[le ? i : n - 1 - i] << (8 * i);
    return v;
}

/* The ImageWidth and ImageLength of the first IFD (TIFF or BigTIFF), read
 * before libtiff reads anything; false when they are not both there (then
 * libtiff says what is wrong). */
static bool tif_first_size(const unsigned char *p, size_t len, uint64_t *width, uint64_t *height)
{
    bool le = p[0] == 'I', big = p[2] == '+' || p[3] == '+';
    size_t esize = big ? 20 : 12, vat = big ? 12 : 8;
    uint64_t off, n;

    if (len < (big ? 16u : 8u))
        return false;
    off = big ? tif_get(p + 8, 8, le) : tif_get(p + 4, 4, le);
    if (off > len || len - off < (big ? 8u : 2u))
        return false;
    n = big ? tif_get(p + off, 8, le) : tif_get(p + off, 2, le);
    off += big ? 8 : 2;
    *width = *height = 0;
    for (uint64_t i = 0; i < n && len - off >= esize; i++, off += esize) {
        const unsigned char *e = p + off;
        unsigned tag = (unsigned)tif_get(e, 2, le), type = (unsigned)tif_get(e + 2, 2, le);
        unsigned size = type == TIFF_SHORT ? 2 : type == TIFF_LONG ? 4 : type == TIFF_LONG8 ? 8 : 0;
        if ((tag == TIFFTAG_IMAGEWIDTH || tag == TIFFTAG_IMAGELENGTH) && size > 0 &&
            size <= esize - vat)
            *(tag == TIFFTAG_IMAGEWIDTH ? width : height) = tif_get(e + vat, size, le);
    }
    return *width > 0 && *height > 0;
}

/* libtiff sizes its strip or tile buffer from the tags, not from the
 * picture: a 1x1 image may declare an 8192x8192 tile of 16-bit RGBA (half
 * a gigabyte, filled from a small deflate stream), or many samples a
 * pixel. Such a file is out of proportion: at most 8 samples, and a strip
 * or tile of at most 16 bytes a pixel of the picture plus 1 MiB. */
static bool tif_buffer_over(struct tif_job *j)
{
    uint16_t spp = 1;
    uint64_t buf, room = (uint64_t)j->width * j->height * 16 + ((uint64_t)1 << 20);

    TIFFGetFieldDefaulted(j->in, TIFFTAG_SAMPLESPERPIXEL, &spp);
    buf = TIFFIsTiled(j->in) ? TIFFTileSize64(j->in) : TIFFStripSize64(j->in);
    if (spp <= 8 && buf <= room)
        return false;
    mgw_reason(j->im->w,
               "TIFF image of %" G_GUINT32_FORMAT "x%" G_GUINT32_FORMAT " pixels declares %s of "
               "%" G_GUINT64_FORMAT " bytes and %u samples a pixel (at most %" G_GUINT64_FORMAT
               " bytes and 8 samples)",
               j->width, j->height, TIFFIsTiled(j->in) ? "tiles" : "strips", buf, (unsigned)spp,
               room);
    return true;
}

/* Opens the item, checks the size of the first image against the limit
 * and decodes it to 8-bit RGBA, in the order the pixels are stored. */
static enum mgw_status tif_decode(struct tif_job *j)
{
    struct img *im = j->im;
    uint16_t o = ORIENTATION_TOPLEFT;
    uint64_t w, h;
    bool had_err;

    if (tif_first_size(im->in, im->len, &w, &h) && over_pixels(im, "TIFF image", w, h))
        return MGW_LIMIT;
    j->rd.data = im->in;
    j->rd.len = im->len;
    /* D: the strip and tile arrays are read when needed, after the check */
    j->in = tif_open(j, "input", "rD", &j->rd);
    if (j->in == NULL)
        return tif_failed(j);
    if (!TIFFGetField(j->in, TIFFTAG_IMAGEWIDTH, &j->width) ||
        !TIFFGetField(j->in, TIFFTAG_IMAGELENGTH, &j->height) || j->width == 0 || j->height == 0)
        return bad(im, "image has an invalid size");
    if (over_pixels(im, "TIFF image", j->width, j->height))
        return MGW_LIMIT;
    if (tif_buffer_over(j))
        return MGW_LIMIT;
    /* only the count of the other pages, for a note: a broken link to a
     * later page (past the end, a loop) is not the first page's failure */
    had_err = j->err[0] != '\0';
    j->pages = TIFFNumberOfDirectories(j->in);
    if (!had_err)
        j->err[0] = '\0';
    if (!TIFFGetField(j->in, TIFFTAG_PHOTOMETRIC, &j->photometric))
        j->photometric = 0xffff;
    TIFFGetFieldDefaulted(j->in, TIFFTAG_BITSPERSAMPLE, &j->bits);
    TIFFGetFieldDefaulted(j->in, TIFFTAG_ORIENTATION, &o);
    j->orientation = o >= ORIENTATION_TOPLEFT && o <= ORIENTATION_LEFTBOT ? o : 1;
    tif_scan_tags(j);
    if (j->err[0] != '\0')
        return tif_failed(j);
    j->raster = g_try_malloc0_n((size_t)j->width * j->height, sizeof *j->raster);
    if (j->raster == NULL)
        return no_memory(im);
    /* asked for the file's own orientation, libtiff flips nothing */
    if (!TIFFReadRGBAImageOriented(j->in, j->width, j->height, j->raster, j->orientation, 1) ||
        j->err[0] != '\0')
        return tif_failed(j);
    for (size_t i = 0, n = (size_t)j->width * j->height; i < n && !j->alpha; i++)
        j->alpha = TIFFGetA(j->raster[i]) != 255;
    return MGW_OK;
}

/* Where row Y of the picture as shown starts in the raster, and the step
 * from one pixel of the row to the next (the Orientation applied). */
static void tif_row(const struct tif_job *j, uint32_t y, size_t *start, ptrdiff_t *step)
{
    size_t w = j->width, h = j->height;

    switch (j->orientation) {
    case ORIENTATION_TOPRIGHT:
        *start = y * w + w - 1, *step = -1;
        break;
    case ORIENTATION_BOTRIGHT:
        *start = (h - 1 - y) * w + w - 1, *step = -1;
        break;
    case ORIENTATION_BOTLEFT:
        *start = (h - 1 - y) * w, *step = 1;
        break;
    case ORIENTATION_LEFTTOP:
        *start = y, *step = (ptrdiff_t)w;
        break;
    case ORIENTATION_RIGHTTOP:
        *start = (h - 1) * w + y, *step = -(ptrdiff_t)w;
        break;
    case ORIENTATION_RIGHTBOT:
        *start = (h - 1) * w + w - 1 - y, *step = -(ptrdiff_t)w;
        break;
    case ORIENTATION_LEFTBOT:
        *start = w - 1 - y, *step = (ptrdiff_t)w;
        break;
    default:
        *start = y * w, *step = 1;
        break;
    }
}

/* libtiff gives alpha premultiplied (associated); the file has it
 * unassociated. Premultiplying the result again gives back V. */
static unsigned char tif_unmultiply(uint32_t v, uint32_t a)
{
    uint32_t u;

    if (a == 255 || a == 0)
        return (unsigned char)(a == 0 ? 0 : v);
    u = (v * 255 + a / 2) / a;
    return (unsigned char)(u > 255 ? 255 : u);
}

static void tif_fill(const struct tif_job *j, unsigned char *out, uint32_t y0, uint32_t rows,
                     uint32_t width)
{
    for (uint32_t y = y0; y < y0 + rows; y++) {
        size_t at;
        ptrdiff_t step;
        tif_row(j, y, &at, &step);
        for (uint32_t x = 0; x < width; x++, at += (size_t)step) {
            uint32_t p = j->raster[at], a = TIFFGetA(p);
            *out++ = tif_unmultiply(TIFFGetR(p), a);
            *out++ = tif_unmultiply(TIFFGetG(p), a);
            *out++ = tif_unmultiply(TIFFGetB(p), a);
            if (j->alpha)
                *out++ = (unsigned char)a;
        }
    }
}

static bool tif_set_tags(struct tif_job *j, uint32_t width, uint32_t height, uint32_t rps)
{
    TIFF *t = j->out;
    uint16_t extra = EXTRASAMPLE_UNASSALPHA;

    return TIFFSetField(t, TIFFTAG_IMAGEWIDTH, width) &&
           TIFFSetField(t, TIFFTAG_IMAGELENGTH, height) &&
           TIFFSetField(t, TIFFTAG_BITSPERSAMPLE, 8) &&
           TIFFSetField(t, TIFFTAG_SAMPLESPERPIXEL, j->alpha ? 4 : 3) &&
           (!j->alpha || TIFFSetField(t, TIFFTAG_EXTRASAMPLES, 1, &extra)) &&
           TIFFSetField(t, TIFFTAG_PHOTOMETRIC, PHOTOMETRIC_RGB) &&
           TIFFSetField(t, TIFFTAG_PLANARCONFIG, PLANARCONFIG_CONTIG) &&
           TIFFSetField(t, TIFFTAG_ORIENTATION, ORIENTATION_TOPLEFT) &&
           TIFFSetField(t, TIFFTAG_COMPRESSION, COMPRESSION_ADOBE_DEFLATE) &&
           TIFFSetField(t, TIFFTAG_PREDICTOR, PREDICTOR_HORIZONTAL) &&
           TIFFSetField(t, TIFFTAG_ZIPQUALITY, IMG_TIFF_LEVEL) &&
           TIFFSetField(t, TIFFTAG_ROWSPERSTRIP, rps);
}

/* Writes a new TIFF of the pixels (as shown) in j->wr. */
static enum mgw_status tif_encode(struct tif_job *j)
{
    bool turned = j->orientation >= ORIENTATION_LEFTTOP;
    uint32_t width = turned ? j->height : j->width, height = turned ? j->width : j->height;
    size_t rowbytes = (size_t)width * (j->alpha ? 4 : 3);
    uint32_t rps = rowbytes >= IMG_TIFF_STRIP ? 1 : (uint32_t)(IMG_TIFF_STRIP / rowbytes);
    unsigned char *strip;
    enum mgw_status st = MGW_OK;

    if (rps > height)
        rps = height;
    j->wr.buf = g_try_malloc(IMG_OUT_BUF);
    strip = g_try_malloc_n(rps, rowbytes);
    if (j->wr.buf == NULL || strip == NULL) {
        g_free(strip);
        return no_memory(j->im);
    }
    j->wr.data = j->wr.buf;
    j->wr.cap = IMG_OUT_BUF;
    /* l: little-endian whatever the machine, so the bytes are always the same */
    j->out = tif_open(j, "output", "wl", &j->wr);
    if (j->out == NULL || !tif_set_tags(j, width, height, rps))
        st = tif_failed(j);
    for (uint32_t y = 0, s = 0; st == MGW_OK && y < height; y += rps, s++) {
        uint32_t rows = height - y < rps ? height - y : rps;
        tif_fill(j, strip, y, rows, width);
        if (TIFFWriteEncodedStrip(j->out, s, strip, (tmsize_t)(rows * rowbytes)) < 0)
            st = tif_failed(j);
    }
    if (st == MGW_OK && !TIFFWriteDirectory(j->out))
        st = tif_failed(j);
    if (j->out != NULL)
        TIFFClose(j->out);
    j->out = NULL;
    if (st == MGW_OK && j->err[0] != '\0')
        st = tif_failed(j);
    g_free(strip);
    return st;
}

static const char *tif_photometric(uint16_t p)
{
    switch (p) {
    case PHOTOMETRIC_MINISWHITE:
    case PHOTOMETRIC_MINISBLACK:
        return "grey";
    case PHOTOMETRIC_RGB:
        return "RGB";
    case PHOTOMETRIC_PALETTE:
        return "palette";
    case PHOTOMETRIC_SEPARATED:
        return "CMYK";
    case PHOTOMETRIC_YCBCR:
        return "YCbCr";
    case PHOTOMETRIC_CIELAB:
        return "CIELab";
    default:
        return "other";
    }
}

static void tif_notes(struct tif_job *j)
{
    struct mgw *w = j->im->w;

    note_metadata(w, j->exif, j->xmp, j->icc, j->iptc);
    if (j->text > 0)
        mgw_note(w, "removed", "%zu text tag%s (%s)", j->text, j->text == 1 ? "" : "s",
                 j->text_names->str);
    if (j->other > 0)
        mgw_note(w, "removed", "%zu other tag%s (%s)", j->other, j->other == 1 ? "" : "s",
                 j->other_names->str);
    if (j->pages > 1)
        note_count(w, (size_t)j->pages - 1, "other page (only the first is kept)",
                   "other pages (only the first is kept)");
    if (j->orientation != ORIENTATION_TOPLEFT)
        mgw_note(w, "info", "TIFF orientation %u applied to the pixels", (unsigned)j->orientation);
    if (j->photometric != PHOTOMETRIC_RGB || j->bits != 8)
        mgw_note(w, "converted", "%u-bit %s TIFF image converted to 8-bit RGB%s", (unsigned)j->bits,
                 tif_photometric(j->photometric), j->alpha ? "A" : "");
}

static enum mgw_status do_tiff(struct img *im)
{
    struct tif_job j;
    enum mgw_status st;

    memset(&j, 0, sizeof j);
    j.im = im;
    /* nothing reaches stderr: errors and warnings go to the handlers of
     * each TIFF, these only see what libtiff reports without one */
    TIFFSetErrorHandler(NULL);
    TIFFSetWarningHandler(NULL);
    TIFFSetErrorHandlerExt(NULL);
    TIFFSetWarningHandlerExt(NULL);
    st = tif_decode(&j);
    if (st == MGW_OK)
        st = tif_encode(&j);
    if (st == MGW_OK && (!out_begin(im, IMG_TIFF) || !out_put(im, j.wr.buf, (size_t)j.wr.len)))
        st = MGW_FAIL;
    if (st == MGW_OK)
        tif_notes(&j);
    if (j.in != NULL)
        TIFFClose(j.in);
    g_free(j.raster);
    g_free(j.wr.buf);
    if (j.text_names != NULL)
        g_string_free(j.text_names, TRUE);
    if (j.other_names != NULL)
        g_string_free(j.other_names, TRUE);
    return st;
}

enum mgw_status mgw_image(struct mgw *w)
{
    uint64_t max_input = mgw_option_u64(w, "max-input", IMG_MAX_INPUT);
    uint64_t q = mgw_option_u64(w, "quality", IMG_QUALITY);
    enum mgw_status st = MGW_FAIL;
    unsigned char *buf;
    struct img *im;
    size_t len;

    if (mgw_input_size(w) > max_input) {
        mgw_reason(w, "image of %" G_GUINT64_FORMAT " bytes is over max-input %" G_GUINT64_FORMAT,
                   mgw_input_size(w), max_input);
        return MGW_LIMIT;
    }
    buf = mgw_input_read_all(w, max_input, &len);
    if (buf == NULL) {
        mgw_reason(w, "the item could not be read");
        return MGW_FAIL;
    }
    im = g_new0(struct img, 1);
    im->w = w;
    im->in = buf;
    im->len = len;
    im->max_pixels = mgw_option_u64(w, "max-pixels", IMG_MAX_PIXELS);
    im->max_frames = mgw_option_u64(w, "max-frames", IMG_MAX_FRAMES);
    im->quality = (int)(q < 1 ? 1 : q > 100 ? 100 : q);
    im->from = sniff(buf, len);
    switch (im->from) {
    case IMG_PNG:
        st = do_png(im);
        break;
    case IMG_JPEG:
        st = do_jpeg(im);
        break;
    case IMG_GIF:
        st = do_gif(im);
        break;
    case IMG_WEBP:
        st = do_webp(im);
        break;
    case IMG_BMP:
        st = do_bmp(im);
        break;
    case IMG_TIFF:
        st = do_tiff(im);
        break;
    case IMG_UNKNOWN:
        mgw_reason(w, "not an image in a known format (PNG, JPEG, GIF, WebP, BMP, TIFF)");
        break;
    }
    if (st == MGW_OK && !out_end(im)) {
        mgw_reason(w, "the output could not be written");
        st = MGW_FAIL;
    }
    g_free(im);
    g_free(buf);
    return st;
}
