/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * NAME
 *	disarm 3
 * SUMMARY
 *	pdf-disarm: take the active content out of a PDF and write it anew
 * SYNOPSIS
 *	#include "pdf/pdf.h"
 *
 *	enum mgw_status mgw_pdf_disarm(struct mgw *w);
 *
 *	mugaika-pdf pdf-disarm [name=NAME] [uri=keep|remove] [max-size=BYTES]
 *		[max-objects=N] [max-depth=N] <item.pdf >records
 * DESCRIPTION
 *	mgw_pdf_disarm reads the item into memory and opens it with qpdf's
 *	C API (qpdf-c.h), with the empty password: a file encrypted with
 *	an owner password only opens and is written unencrypted; one that
 *	needs a user password ends in MGW_ENCRYPTED.
 *
 *	The page tree is rebuilt flat first: one /Pages node holding every
 *	page qpdf finds, with the inherited attributes pushed down to the
 *	pages, so that /Count and /Parent are right whatever the input
 *	said (viewers disagree about broken trees).
 *
 *	It then walks every object reachable from the trailer, the pages
 *	first (so that notes can name the page), with an explicit stack
 *	(no recursion: outline and action chains can be long) and a set
 *	of the indirect objects already queued (so shared objects and
 *	loops are visited once). In every dictionary (stream dictionaries
 *	included) and array it removes:
 *
 *	- the keys /JS and /JavaScript (scripts, and the document-level
 *	  JavaScript name tree of /Names), /AA (additional actions, on
 *	  pages, annotations and form fields), /OpenAction, /XFA (XFA
 *	  forms in /AcroForm; /NeedsRendering goes with them),
 *	  /EmbeddedFiles (the name tree of attachments), /EF (the data of
 *	  a file specification) and /Collection (the portfolio view);
 *	- any value that is an action dictionary whose /S is /JavaScript,
 *	  /Launch, /SubmitForm, /ImportData, /GoToR, /GoToE,
 *	  /RichMediaExecute, /Rendition, /Sound, /Movie or /GoTo3DView
 *	  (the key that holds it goes, or the array item: /A, /PA, /Next
 *	  chains...). /URI actions go with uri=remove; with uri=keep
 *	  (the default) only those whose URI is not a plain link go: a
 *	  scheme other than http, https, ftp or mailto (javascript:,
 *	  file:, data:...) or a network path (\\host, //host). /GoTo,
 *	  /Named, /Hide, /ResetForm and the rest stay;
 *	- any annotation whose /Subtype is /FileAttachment, /RichMedia,
 *	  /Screen, /Movie, /Sound or /3D (from /Annots, and from wherever
 *	  else it is referenced), and any stream of /Type /EmbeddedFile or
 *	  /3D still referenced some other way.
 *
 *	A catalog, page tree node or page is never removed whole; an /S
 *	naming one of those action types in it goes as a key. The
 *	trailer's /Encrypt is left to qpdf. Page content streams are not
 *	touched, so the text of every page stays as it was.
 *
 *	qpdf reads a stray '#' in a name ("/F#", "/F#1x") as a NUL byte,
 *	which a C string cannot carry, so the C API can list such a
 *	dictionary key but neither read nor remove its value. Such a
 *	dictionary is parsed anew from qpdf's text of it with the '#'
 *	escaped (the name then holds '#', as viewers read it) and put in
 *	its place; if that fails, those entries are dropped ("defect").
 *
 *	qpdf 11 writes every stream of /Type /Metadata decoded, whatever
 *	the decode level asked for, and a small compressed stream can
 *	inflate to gigabytes (nested filters multiply). Such a stream
 *	whose /Filter is anything but one /FlateDecode, or whose data
 *	would bring that of the metadata streams kept so far over 64 KiB
 *	(at most some 66 MB once inflated), loses its /Type (an "info"
 *	note counts them): qpdf then copies it as it is, and viewers
 *	still find it through the /Metadata key that names it.
 *
 *	Finally qpdf_write writes a new file into memory (with a /Size in
 *	the trailer, which qpdf only rewrites when there is one): not an
 *	incremental update, so only the objects still reachable are
 *	written and nothing survives in unreferenced objects or earlier
 *	revisions. Object streams are preserved (qpdf writes them and the
 *	xref stream compressed), content normalisation is off, and the
 *	data of every stream is copied as it is: decode level none and
 *	stream compression off. With compression on, qpdf decodes and
 *	re-encodes with Flate every stream that has no filter or only
 *	filters it can undo other than one /FlateDecode (a 2 KB file with
 *	nested Flate then costs seconds of CPU per inflated GB), and
 *	writes the /Filter it adds after /Length, where a /Filter read
 *	from the file comes in its sorted place: a second pass moved the
 *	key, and the ID with it. The output is one file named after the
 *	name option, of type application/pdf.
 *
 *	The output is a fixed point: pdf-disarm of it gives the very same
 *	bytes (the gateway's idempotence, see docs/architecture.md), and
 *	the same input gives the same bytes on every run. qpdf writes the
 *	keys of a dictionary sorted (a stream's /Length last), numbers the
 *	objects in the order it reaches them from the trailer, keeps the
 *	grouping of object streams and writes an xref stream exactly when
 *	there are object streams, so a second pass reproduces all of it;
 *	the flat page tree, the pushed-down attributes, a name's '#' and
 *	the /Size read back as they were written (qpdf 11 writes a '#' in
 *	a name as it is, not "#23": a name that came with a stray '#'
 *	leaves with one, and qpdf --check warns of it in the output as it
 *	did in the input; viewers read it as the '#' it stands for). The ID is
 *	deterministic: its second half is a digest of the objects written
 *	and the strings of /Info, its first half is kept from the input's
 *	/ID when there is one (as the PDF reference asks), else the same
 *	digest, so the second pass writes the first pass's ID again.
 *
 *	Notes: one "removed" note per thing removed (e.g. "JavaScript
 *	action (/A) on page 3", "embedded file invoice.exe in the
 *	document"), an "info" note when the document was signed (the
 *	signature no longer covers the new file), and qpdf's warnings
 *	(a damaged file that qpdf recovered) as "defect" notes.
 * LIMITS
 *	max-size (bytes, default 104857600): a larger item ends in
 *	MGW_LIMIT before qpdf sees it.
 *	max-objects (default 1000000): the dictionaries, arrays and streams
 *	the walk visits (pages included); 32 times as many values of any
 *	kind (dictionary entries and array items) may be examined. Past
 *	either, MGW_LIMIT.
 *	max-depth (default 64): direct objects nested inside one another
 *	(below the nearest indirect object); deeper is MGW_LIMIT. qpdf
 *	itself refuses to parse nesting past 500.
 *	cpu (the RLIMIT_CPU the worker runs under, default 30): the walk
 *	stops with MGW_LIMIT after two thirds of it, so that a file too
 *	big to check in time still ends with a status.
 *	At most 200 "removed" notes and 20 "defect" notes are written; one
 *	more note counts the rest. Name trees are read for the notes only
 *	(the names of embedded files), at most 32 levels and 10000 nodes
 *	and entries.
 * DIAGNOSTICS
 *	MGW_FAIL with qpdf's error as the reason when qpdf cannot read or
 *	write the file, or when any object operation reports an error
 *	during the walk (the walk then cannot vouch for the result), or
 *	when a stream dictionary or the trailer has a key with a stray '#'
 *	(neither can be replaced through the C API). MGW_ENCRYPTED when a
 *	user password is needed; MGW_LIMIT as above; bad options (uri=)
 *	MGW_FAIL.
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <qpdf/qpdf-c.h>

#include "pdf/pdf.h"

#define DEFAULT_MAX_SIZE    ((uint64_t)104857600)
#define DEFAULT_MAX_OBJECTS ((uint64_t)1000000)
#define DEFAULT_MAX_DEPTH   64
#define VALUES_PER_OBJECT   32
#define MAX_REMOVED_NOTES   200
#define MAX_DEFECT_NOTES    20
#define TREE_MAX_DEPTH      32
#define TREE_BUDGET         10000
#define SHOWN_MAX           120
#define METADATA_MAX_RAW    65536

/* A container still to visit. */
struct item {
    qpdf_oh oh;     /* dictionary, array or stream (owned handle) */
    int page;       /* page (1-based) it was reached from; 0: the document */
    unsigned depth; /* direct nesting below the nearest indirect object */
    bool trailer;   /* the trailer dictionary itself */
    char via[24];   /* the key it was reached through ("" for pages) */
};

struct disarm {
    struct mgw *w;
    qpdf_data q;
    bool remove_uri;
    uint64_t max_objects, objects;
    uint64_t max_values, values;
    unsigned max_depth;
    double max_cpu;   /* CPU seconds the walk may use (see walk()) */
    size_t metadata;  /* compressed bytes of metadata qpdf will inflate */
    unsigned untyped; /* metadata streams that lost their /Type */
    GHashTable *seen; /* indirect objects queued: gint64 (see object_key) */
    GArray *stack;    /* struct item */
    unsigned noted;   /* "removed" notes written */
    unsigned unnoted; /* removals past MAX_REMOVED_NOTES */
    bool stop;        /* a limit or an error ended the walk */
    enum mgw_status status;
};

/* Action types (/S) removed wherever they are: they run scripts, start
 * programs, send data or open other files, or play media. */
static const char *const bad_actions[] = {
    "/JavaScript",       "/Launch",    "/SubmitForm", "/ImportData", "/GoToR",      "/GoToE",
    "/RichMediaExecute", "/Rendition", "/Sound",      "/Movie",      "/GoTo3DView",
};

/* Annotation subtypes removed: attachments, and media and 3D players. */
static const char *const bad_annots[] = {
    "/FileAttachment", "/RichMedia", "/Screen", "/Movie", "/Sound", "/3D",
};

/* Schemes a plain link may use (uri=keep). */
static const char *const plain_schemes[] = {"http", "https", "ftp", "mailto"};

static bool in_list(const char *s, const char *const *list, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(s, list[i]) == 0)
            return true;
    return false;
}

/* Text from the document made fit for a note: controls become '?', at
 * most cap bytes (mgw_note repairs a cut UTF-8 sequence). Owned. */
static char *clean_text(const char *s, size_t len, size_t cap)
{
    GString *out = g_string_sized_new(MIN(len, cap) + 4);

    for (size_t i = 0; i < len && i < cap; i++) {
        unsigned char c = (unsigned char)s[i];
        g_string_append_c(out, c < 0x20 || c == 0x7f ? '?' : (char)c);
    }
    if (len > cap)
        g_string_append(out, "...");
    return g_string_free(out, FALSE);
}

/* "/JavaScript" -> "JavaScript" for notes. */
static const char *bare(const char *name)
{
    return name[0] == '/' ? name + 1 : name;
}

static void removed(struct disarm *d, int page, const char *fmt, ...) G_GNUC_PRINTF(3, 4);

/* One "removed" note, with where it was; past the cap only counted. */
static void removed(struct disarm *d, int page, const char *fmt, ...)
{
    va_list ap;
    char *text;

    if (d->noted >= MAX_REMOVED_NOTES) {
        d->unnoted++;
        return;
    }
    d->noted++;
    va_start(ap, fmt);
    text = g_strdup_vprintf(fmt, ap);
    va_end(ap);
    if (page > 0)
        mgw_note(d->w, "removed", "%s on page %d", text, page);
    else
        mgw_note(d->w, "removed", "%s in the document", text);
    g_free(text);
}

/* Stops the walk with a status and a reason (the first one stays). */
static void stop(struct disarm *d, enum mgw_status st, const char *fmt, ...) G_GNUC_PRINTF(3, 4);

static void stop(struct disarm *d, enum mgw_status st, const char *fmt, ...)
{
    va_list ap;
    char *text;

    if (d->stop)
        return;
    d->stop = true;
    d->status = st;
    va_start(ap, fmt);
    text = g_strdup_vprintf(fmt, ap);
    va_end(ap);
    mgw_reason(d->w, "%s", text);
    g_free(text);
}

/* The pending qpdf error as a reason (MGW_FAIL). */
static void stop_qpdf_error(struct disarm *d, const char *when)
{
    qpdf_error e = qpdf_get_error(d->q);
    const char *t = e != NULL ? qpdf_get_error_full_text(d->q, e) : "unknown error";
    char *c = clean_text(t, strlen(t), 300);

    stop(d, MGW_FAIL, "qpdf %s: %s", when, c);
    g_free(c);
}

/* The name value of key in dict, copied into buf ("" when absent or not
 * a name). dict must be a dictionary. */
static const char *name_of(struct disarm *d, qpdf_oh dict, const char *key, char *buf, size_t size)
{
    qpdf_oh v = qpdf_oh_get_key(d->q, dict, key);

    buf[0] = '\0';
    if (qpdf_oh_is_name(d->q, v))
        g_strlcpy(buf, qpdf_oh_get_name(d->q, v), size);
    qpdf_oh_release(d->q, v);
    return buf;
}

/* A PDF text string as a note-safe UTF-8 string; NULL if s is no string. */
static char *shown_string(struct disarm *d, qpdf_oh s)
{
    const char *v;
    size_t len;

    if (!qpdf_oh_is_string(d->q, s) || !qpdf_oh_get_value_as_utf8(d->q, s, &v, &len))
        return NULL;
    return clean_text(v, len, SHOWN_MAX);
}

/* The file name of a file specification (string or dictionary). Owned. */
static char *filespec_name(struct disarm *d, qpdf_oh fs)
{
    static const char *const keys[] = {"/UF", "/F", "/Unix", "/DOS", "/Mac"};
    char *name = shown_string(d, fs);

    if (name == NULL && qpdf_oh_is_dictionary(d->q, fs)) {
        for (size_t i = 0; i < G_N_ELEMENTS(keys) && name == NULL; i++) {
            qpdf_oh v = qpdf_oh_get_key(d->q, fs, keys[i]);
            name = shown_string(d, v);
            qpdf_oh_release(d->q, v);
        }
    }
    if (name != NULL && name[0] == '\0') {
        g_free(name);
        name = NULL;
    }
    return name != NULL ? name : g_strdup("(no name)");
}

typedef void (*tree_fn)(struct disarm *d, qpdf_oh value, int page, void *arg);

/* Calls fn on each value of the name tree at node, within *budget
 * nodes and entries and TREE_MAX_DEPTH levels. Returns false when the
 * budget ran out (some entries were not seen). */
static bool tree_each(struct disarm *d, qpdf_oh node, unsigned depth, unsigned *budget, tree_fn fn,
                      int page, void *arg)
{
    qpdf_oh names, kids;
    bool all = true;

    if (depth > TREE_MAX_DEPTH || *budget == 0)
        return false;
    if (!qpdf_oh_is_dictionary(d->q, node))
        return true;
    (*budget)--;
    names = qpdf_oh_get_key(d->q, node, "/Names");
    if (qpdf_oh_is_array(d->q, names)) {
        int n = qpdf_oh_get_array_n_items(d->q, names);
        for (int i = 1; i < n && all; i += 2) {
            qpdf_oh v = qpdf_oh_get_array_item(d->q, names, i);
            if (*budget == 0)
                all = false;
            else {
                (*budget)--;
                fn(d, v, page, arg);
            }
            qpdf_oh_release(d->q, v);
        }
    }
    qpdf_oh_release(d->q, names);
    kids = qpdf_oh_get_key(d->q, node, "/Kids");
    if (qpdf_oh_is_array(d->q, kids)) {
        int n = qpdf_oh_get_array_n_items(d->q, kids);
        for (int i = 0; i < n && all; i++) {
            qpdf_oh k = qpdf_oh_get_array_item(d->q, kids, i);
            all = tree_each(d, k, depth + 1, budget, fn, page, arg);
            qpdf_oh_release(d->q, k);
        }
    }
    qpdf_oh_release(d->q, kids);
    return all;
}

static void count_entry(struct disarm *d, qpdf_oh value, int page, void *arg)
{
    (void)d;
    (void)value;
    (void)page;
    (*(unsigned *)arg)++;
}

static void note_embedded(struct disarm *d, qpdf_oh value, int page, void *arg)
{
    char *name = filespec_name(d, value);

    (void)arg;
    removed(d, page, "embedded file %s", name);
    g_free(name);
}

/* The type of an action for a note ("JavaScript"; "action" without /S). */
static const char *action_type(struct disarm *d, qpdf_oh action, char *buf, size_t size)
{
    if (!qpdf_oh_is_dictionary(d->q, action) || strlen(name_of(d, action, "/S", buf, size)) < 2)
        return "action";
    return bare(buf);
}

/* "O: JavaScript, C: Launch" for an /AA dictionary. Owned. */
static char *describe_aa(struct disarm *d, qpdf_oh aa)
{
    GString *s = g_string_new(NULL);
    GPtrArray *keys = g_ptr_array_new_with_free_func(g_free);
    char buf[64];

    if (qpdf_oh_is_dictionary(d->q, aa)) {
        qpdf_oh_begin_dict_key_iter(d->q, aa);
        while (qpdf_oh_dict_more_keys(d->q) && keys->len < 32)
            g_ptr_array_add(keys, g_strdup(qpdf_oh_dict_next_key(d->q)));
    }
    for (guint i = 0; i < keys->len; i++) {
        const char *k = g_ptr_array_index(keys, i);
        qpdf_oh v = qpdf_oh_get_key(d->q, aa, k);
        char *ck = clean_text(bare(k), strlen(bare(k)), 16);
        g_string_append_printf(s, "%s%s: %s", i > 0 ? ", " : "", ck,
                               action_type(d, v, buf, sizeof buf));
        g_free(ck);
        qpdf_oh_release(d->q, v);
    }
    g_ptr_array_unref(keys);
    if (s->len == 0)
        g_string_append(s, "empty");
    return g_string_free(s, FALSE);
}

/* Whether a key goes whatever its value; notes what goes. dict is the
 * dictionary (or stream dictionary) that holds it. */
static bool drop_key(struct disarm *d, qpdf_oh dict, const char *key, int page)
{
    qpdf_oh v;
    char buf[64];

    if (strcmp(key, "/JS") == 0) {
        removed(d, page, "JavaScript (/JS)");
        return true;
    }
    if (strcmp(key, "/S") == 0) {
        /* a dictionary that was visited, not dropped, yet names a bad
         * action type: a catalog or page (see drop_value) */
        if (!in_list(name_of(d, dict, "/S", buf, sizeof buf), bad_actions,
                     G_N_ELEMENTS(bad_actions)))
            return false;
        removed(d, page, "%s action type (/S)", bare(buf));
        return true;
    }
    if (strcmp(key, "/NeedsRendering") == 0)
        return true; /* goes with /XFA: nothing is left to render */
    if (strcmp(key, "/XFA") == 0) {
        removed(d, page, "XFA form (/XFA)");
        return true;
    }
    if (strcmp(key, "/Collection") == 0) {
        removed(d, page, "portfolio view (/Collection)");
        return true;
    }
    if (strcmp(key, "/JavaScript") != 0 && strcmp(key, "/AA") != 0 &&
        strcmp(key, "/OpenAction") != 0 && strcmp(key, "/EmbeddedFiles") != 0 &&
        strcmp(key, "/EF") != 0)
        return false;
    v = qpdf_oh_get_key(d->q, dict, key);
    if (strcmp(key, "/JavaScript") == 0) {
        unsigned n = 0, budget = TREE_BUDGET;
        if (qpdf_oh_is_dictionary(d->q, v)) {
            bool all = tree_each(d, v, 0, &budget, count_entry, page, &n);
            removed(d, page, "document JavaScript (%u%s script%s)", n, all ? "" : " or more",
                    n == 1 && all ? "" : "s");
        } else
            removed(d, page, "JavaScript (/JavaScript)");
    } else if (strcmp(key, "/AA") == 0) {
        char *what = describe_aa(d, v);
        removed(d, page, "additional actions (%s)", what);
        g_free(what);
    } else if (strcmp(key, "/OpenAction") == 0) {
        if (qpdf_oh_is_dictionary(d->q, v))
            removed(d, page, "open action (%s)", action_type(d, v, buf, sizeof buf));
        else
            removed(d, page, "open action (go to a destination)");
    } else if (strcmp(key, "/EmbeddedFiles") == 0) {
        unsigned budget = TREE_BUDGET;
        if (!tree_each(d, v, 0, &budget, note_embedded, page, NULL))
            removed(d, page, "more embedded files (not listed)");
    } else {
        char *name = filespec_name(d, dict);
        removed(d, page, "embedded file %s", name);
        g_free(name);
    }
    qpdf_oh_release(d->q, v);
    return true;
}

/* Whether the URI of a /URI action is a plain link: an http, https,
 * ftp or mailto URI, or a relative one that is no network path. */
static bool plain_uri(struct disarm *d, qpdf_oh action, char **shown)
{
    qpdf_oh u = qpdf_oh_get_key(d->q, action, "/URI");
    const char *s;
    size_t len, i = 0, j;
    bool plain = true;

    *shown = NULL;
    if (qpdf_oh_is_string(d->q, u) && qpdf_oh_get_value_as_string(d->q, u, &s, &len)) {
        *shown = clean_text(s, len, SHOWN_MAX);
        while (i < len && (unsigned char)s[i] <= 0x20)
            i++;
        for (j = i;
             j < len && s[j] != '\0' && (g_ascii_isalnum(s[j]) || strchr("+-.", s[j]) != NULL); j++)
            ;
        if (j < len && s[j] == ':' && j > i && g_ascii_isalpha(s[i])) {
            plain = false;
            for (size_t k = 0; k < G_N_ELEMENTS(plain_schemes); k++)
                if (j - i == strlen(plain_schemes[k]) &&
                    g_ascii_strncasecmp(s + i, plain_schemes[k], j - i) == 0)
                    plain = true;
        } else if (i + 1 < len && (s[i] == '\\' || s[i] == '/') &&
                   (s[i + 1] == '\\' || s[i + 1] == '/'))
            plain = false;
    }
    qpdf_oh_release(d->q, u);
    return plain;
}

/* Whether value v (reached through via, "" for an array item) goes:
 * a harmful action, annotation or embedded stream. Notes it. */
static bool drop_value(struct disarm *d, qpdf_oh v, const char *via, int page)
{
    char s[64], t[64];
    char where[40] = "";

    if (via[0] != '\0') {
        char *c = clean_text(via, strlen(via), 24);
        g_snprintf(where, sizeof where, " (%s)", c);
        g_free(c);
    }
    if (qpdf_oh_is_dictionary(d->q, v)) {
        name_of(d, v, "/Type", t, sizeof t);
        if (strcmp(t, "/Catalog") == 0 || strcmp(t, "/Pages") == 0 || strcmp(t, "/Page") == 0)
            return false; /* never dropped whole; see drop_key for their /S */
        name_of(d, v, "/S", s, sizeof s);
        if (in_list(s, bad_actions, G_N_ELEMENTS(bad_actions))) {
            removed(d, page, "%s action%s", bare(s), where);
            return true;
        }
        if (strcmp(s, "/URI") == 0) {
            char *uri;
            bool plain = plain_uri(d, v, &uri);
            if (d->remove_uri || !plain)
                removed(d, page, "%slink%s to %s", plain ? "" : "unsafe ", where,
                        uri != NULL ? uri : "(no URI)");
            g_free(uri);
            return d->remove_uri || !plain;
        }
        name_of(d, v, "/Subtype", t, sizeof t);
        if (in_list(t, bad_annots, G_N_ELEMENTS(bad_annots))) {
            if (strcmp(t, "/FileAttachment") == 0) {
                qpdf_oh fs = qpdf_oh_get_key(d->q, v, "/FS");
                char *name = filespec_name(d, fs);
                removed(d, page, "file attachment annotation (embedded file %s)", name);
                g_free(name);
                qpdf_oh_release(d->q, fs);
            } else
                removed(d, page, "%s annotation", bare(t));
            return true;
        }
        return false;
    }
    if (qpdf_oh_is_stream(d->q, v)) {
        qpdf_oh dict = qpdf_oh_get_dict(d->q, v);
        bool bad = false;
        name_of(d, dict, "/Type", t, sizeof t);
        qpdf_oh_release(d->q, dict);
        if (strcmp(t, "/EmbeddedFile") == 0) {
            removed(d, page, "embedded file data%s", where);
            bad = true;
        } else if (strcmp(t, "/3D") == 0) {
            removed(d, page, "3D artwork%s", where);
            bad = true;
        }
        return bad;
    }
    return false;
}

static bool counted_value(struct disarm *d)
{
    if (++d->values > d->max_values) {
        stop(d, MGW_LIMIT, "more than %" G_GUINT64_FORMAT " values in the PDF's objects",
             d->max_values);
        return false;
    }
    return true;
}

/* The key of indirect object v in d->seen: the object number in the low
 * half (g_int64_hash of GLib 2.74 hashes the low 32 bits only). */
static gint64 object_key(struct disarm *d, qpdf_oh v)
{
    return (gint64)(((guint64)(guint32)qpdf_oh_get_generation(d->q, v) << 32) |
                    (guint32)qpdf_oh_get_object_id(d->q, v));
}

/* The keys of a dictionary (owned strings). */
static GPtrArray *keys_of(struct disarm *d, qpdf_oh dict)
{
    GPtrArray *keys = g_ptr_array_new_with_free_func(g_free);

    qpdf_oh_begin_dict_key_iter(d->q, dict);
    while (qpdf_oh_dict_more_keys(d->q))
        g_ptr_array_add(keys, g_strdup(qpdf_oh_dict_next_key(d->q)));
    return keys;
}

/* How many keys of dict cannot be looked up again (see readable()). */
static unsigned unreadable_keys(struct disarm *d, qpdf_oh dict)
{
    GPtrArray *keys = keys_of(d, dict);
    unsigned bad = 0;

    for (guint i = 0; i < keys->len; i++)
        if (!qpdf_oh_has_key(d->q, dict, g_ptr_array_index(keys, i)))
            bad++;
    g_ptr_array_unref(keys);
    return bad;
}

static bool is_delimiter(char c)
{
    return c == '\0' || strchr(" \t\r\n\f()<>[]{}/%", c) != NULL;
}

#define REF_PREFIX "/mugaika.ref."

/* Whether "N G R" (an indirect reference in qpdf's text) starts at t. */
static size_t reference_at(const char *t, int *id, int *gen)
{
    const char *p = t;
    guint64 a = 0, b = 0;

    if (!g_ascii_isdigit(*p))
        return 0;
    for (; g_ascii_isdigit(*p) && a <= G_MAXINT; p++)
        a = a * 10 + (guint64)(*p - '0');
    if (*p++ != ' ' || !g_ascii_isdigit(*p))
        return 0;
    for (; g_ascii_isdigit(*p) && b <= G_MAXINT; p++)
        b = b * 10 + (guint64)(*p - '0');
    if (p[0] != ' ' || p[1] != 'R' || !is_delimiter(p[2]) || a > G_MAXINT || b > G_MAXINT)
        return 0;
    *id = (int)a;
    *gen = (int)b;
    return (size_t)(p + 2 - t);
}

/* qpdf's text of a direct object (qpdf_oh_unparse) made parsable again
 * by qpdf_oh_parse, which has no document to resolve references in:
 * each stray '#' of a name, which qpdf writes back as a lone '#', is
 * written "#23" (the name then holds a '#' character, which is what a
 * lone '#' means to the PDF reference and to viewers), and each "N G R"
 * becomes the name REF_PREFIX<i>, i indexing refs (pairs of int).
 * Strings are copied as they are. Owned. */
static char *parsable_text(const char *t, GArray *refs)
{
    size_t n = strlen(t), i = 0, len;
    GString *o = g_string_sized_new(n + 16);
    int id, gen;

    while (i < n) {
        if (t[i] == '(') {
            int depth = 0;
            do {
                if (t[i] == '\\' && i + 1 < n)
                    g_string_append_c(o, t[i++]);
                else if (t[i] == '(')
                    depth++;
                else if (t[i] == ')')
                    depth--;
                g_string_append_c(o, t[i++]);
            } while (i < n && depth > 0);
        } else if ((t[i] == '<' && t[i + 1] == '<') || (t[i] == '>' && t[i + 1] == '>')) {
            g_string_append_len(o, t + i, 2);
            i += 2;
        } else if (t[i] == '<') {
            while (i < n && t[i] != '>')
                g_string_append_c(o, t[i++]);
        } else if (t[i] == '/') {
            g_string_append_c(o, t[i++]);
            while (i < n && !is_delimiter(t[i])) {
                if (t[i] == '#' && g_ascii_isxdigit(t[i + 1]) && g_ascii_isxdigit(t[i + 2])) {
                    g_string_append_len(o, t + i, 3);
                    i += 3;
                } else if (t[i] == '#') {
                    g_string_append(o, "#23");
                    i++;
                } else
                    g_string_append_c(o, t[i++]);
            }
        } else if ((i == 0 || is_delimiter(t[i - 1])) && (len = reference_at(t + i, &id, &gen))) {
            g_string_append_printf(o, REF_PREFIX "%u", refs->len / 2);
            g_array_append_val(refs, id);
            g_array_append_val(refs, gen);
            i += len;
        } else
            g_string_append_c(o, t[i++]);
    }
    return g_string_free(o, FALSE);
}

/* The reference a REF_PREFIX name stands for (a new handle), or 0. */
static qpdf_oh reference_for(struct disarm *d, qpdf_oh v, GArray *refs)
{
    const char *name;
    guint64 i;

    if (!qpdf_oh_is_name(d->q, v))
        return 0;
    name = qpdf_oh_get_name(d->q, v);
    if (strncmp(name, REF_PREFIX, strlen(REF_PREFIX)) != 0 ||
        !g_ascii_string_to_unsigned(name + strlen(REF_PREFIX), 10, 0, refs->len / 2 - 1, &i, NULL))
        return 0;
    return qpdf_get_object_by_id(d->q, g_array_index(refs, int, 2 * i),
                                 g_array_index(refs, int, 2 * i + 1));
}

/* Puts the references back in place of their REF_PREFIX names in the
 * direct object v (parsed from parsable_text). False when v nests
 * deeper than max-depth. */
static bool restore_refs(struct disarm *d, qpdf_oh v, GArray *refs, unsigned depth)
{
    bool ok = depth <= d->max_depth;

    if (ok && qpdf_oh_is_array(d->q, v)) {
        int n = qpdf_oh_get_array_n_items(d->q, v);
        for (int i = 0; i < n && ok; i++) {
            qpdf_oh x = qpdf_oh_get_array_item(d->q, v, i);
            qpdf_oh r = reference_for(d, x, refs);
            if (r != 0) {
                qpdf_oh_set_array_item(d->q, v, i, r);
                qpdf_oh_release(d->q, r);
            } else
                ok = restore_refs(d, x, refs, depth + 1);
            qpdf_oh_release(d->q, x);
        }
    } else if (ok && qpdf_oh_is_dictionary(d->q, v)) {
        GPtrArray *keys = keys_of(d, v);
        for (guint i = 0; i < keys->len && ok; i++) {
            const char *k = g_ptr_array_index(keys, i);
            qpdf_oh x = qpdf_oh_get_key(d->q, v, k);
            qpdf_oh r = reference_for(d, x, refs);
            if (r != 0) {
                qpdf_oh_replace_key(d->q, v, k, r);
                qpdf_oh_release(d->q, r);
            } else
                ok = restore_refs(d, x, refs, depth + 1);
            qpdf_oh_release(d->q, x);
        }
        g_ptr_array_unref(keys);
    }
    return ok;
}

/* A copy of dictionary v parsed anew from its text (parsable_text); 0
 * when that fails or still leaves a key that cannot be read. */
static qpdf_oh reparsed(struct disarm *d, qpdf_oh v)
{
    GArray *refs = g_array_new(FALSE, FALSE, sizeof(int));
    char *text = g_strdup(qpdf_oh_unparse_resolved(d->q, v));
    char *fixed = parsable_text(text, refs);
    qpdf_oh copy = qpdf_oh_parse(d->q, fixed);
    bool ok;

    g_free(text);
    g_free(fixed);
    ok = !qpdf_has_error(d->q) && qpdf_oh_is_dictionary(d->q, copy) &&
         unreadable_keys(d, copy) == 0 && restore_refs(d, copy, refs, 0) && !qpdf_has_error(d->q);
    g_array_unref(refs);
    if (!ok) {
        if (qpdf_has_error(d->q))
            (void)qpdf_get_error(d->q); /* the fallback drops the entries */
        qpdf_oh_release(d->q, copy);
        return 0;
    }
    return copy;
}

/* A copy of dictionary v without the entries whose key cannot be read. */
static qpdf_oh without_unreadable(struct disarm *d, qpdf_oh v)
{
    GPtrArray *keys = keys_of(d, v);
    qpdf_oh copy = qpdf_oh_new_dictionary(d->q);

    for (guint i = 0; i < keys->len; i++) {
        const char *k = g_ptr_array_index(keys, i);
        if (qpdf_oh_has_key(d->q, v, k)) {
            qpdf_oh x = qpdf_oh_get_key(d->q, v, k);
            qpdf_oh_replace_key(d->q, copy, k, x);
            qpdf_oh_release(d->q, x);
        }
    }
    g_ptr_array_unref(keys);
    return copy;
}

/* qpdf reads a stray '#' in a name ("/#", "/F#1x") as a NUL byte, which
 * no C string can carry: such a dictionary key can be listed through
 * the C API but its value can be neither read nor removed. A
 * dictionary with bad such keys is replaced: by a copy parsed anew
 * from its text with the stray '#' escaped (see parsable_text) or, if
 * that fails, by a copy without those entries (a "defect" note). This
 * returns the copy. */
static qpdf_oh replacement(struct disarm *d, qpdf_oh v, unsigned bad, int page)
{
    qpdf_oh copy = reparsed(d, v);

    if (copy != 0)
        return copy;
    if (page > 0)
        mgw_note(d->w, "defect",
                 "%u dictionary entr%s dropped on page %d: the key cannot be checked", bad,
                 bad == 1 ? "y" : "ies", page);
    else
        mgw_note(d->w, "defect",
                 "%u dictionary entr%s dropped in the document: the key cannot be checked", bad,
                 bad == 1 ? "y" : "ies");
    return without_unreadable(d, v);
}

/* For a direct dictionary v with keys that cannot be read, its
 * replacement (v is released and *copied set: the caller puts it in
 * v's place); otherwise v. Indirect dictionaries are replaced when
 * visited (visit_dict), which needs no parent. */
static qpdf_oh readable(struct disarm *d, qpdf_oh v, int page, bool *copied)
{
    qpdf_oh copy;
    unsigned bad;

    *copied = false;
    if (!qpdf_oh_is_dictionary(d->q, v) || qpdf_oh_is_indirect(d->q, v))
        return v;
    bad = unreadable_keys(d, v);
    if (bad == 0)
        return v;
    copy = replacement(d, v, bad, page);
    qpdf_oh_release(d->q, v);
    *copied = true;
    return copy;
}

/* Queues v when it is a container not seen yet; takes the handle when
 * it returns true. */
static bool enqueue(struct disarm *d, qpdf_oh v, const struct item *parent, const char *via)
{
    struct item it;

    memset(&it, 0, sizeof it);
    if (!qpdf_oh_is_dictionary(d->q, v) && !qpdf_oh_is_array(d->q, v) &&
        !qpdf_oh_is_stream(d->q, v))
        return false;
    if (qpdf_oh_is_indirect(d->q, v)) {
        gint64 key = object_key(d, v);
        if (g_hash_table_contains(d->seen, &key))
            return false;
        g_hash_table_add(d->seen, g_memdup2(&key, sizeof key));
    } else {
        it.depth = parent != NULL ? parent->depth + 1 : 0;
        if (it.depth > d->max_depth) {
            stop(d, MGW_LIMIT, "objects nested more than %u deep", d->max_depth);
            return false;
        }
    }
    if (++d->objects > d->max_objects) {
        stop(d, MGW_LIMIT, "more than %" G_GUINT64_FORMAT " objects", d->max_objects);
        return false;
    }
    it.oh = v;
    it.page = parent != NULL ? parent->page : 0;
    g_strlcpy(it.via, via, sizeof it.via);
    g_array_append_val(d->stack, it);
    return true;
}

static void visit_dict(struct disarm *d, const struct item *it, qpdf_oh dict)
{
    GPtrArray *keys = g_ptr_array_new_with_free_func(g_free);
    unsigned bad = 0;

    qpdf_oh_begin_dict_key_iter(d->q, dict);
    while (qpdf_oh_dict_more_keys(d->q) && counted_value(d))
        g_ptr_array_add(keys, g_strdup(qpdf_oh_dict_next_key(d->q)));
    for (guint i = 0; i < keys->len; i++)
        if (!qpdf_oh_has_key(d->q, dict, g_ptr_array_index(keys, i)))
            bad++;
    if (bad > 0 && (it->trailer || it->oh != dict || !qpdf_oh_is_indirect(d->q, dict))) {
        /* a key with a NUL (see replacement()) in a dictionary that cannot
         * be replaced: a stream's, or the trailer (direct dictionaries
         * were replaced before they were queued, see readable()) */
        stop(d, MGW_FAIL, "a %s key has a stray '#' and cannot be checked",
             it->trailer ? "trailer" : "stream dictionary");
        g_ptr_array_set_size(keys, 0);
    } else if (bad > 0) {
        /* see replacement(); the handle follows the replaced object */
        qpdf_oh copy = replacement(d, dict, bad, it->page);
        qpdf_replace_object(d->q, qpdf_oh_get_object_id(d->q, dict),
                            qpdf_oh_get_generation(d->q, dict), copy);
        qpdf_oh_release(d->q, copy);
        g_ptr_array_set_size(keys, 0);
        qpdf_oh_begin_dict_key_iter(d->q, dict);
        while (qpdf_oh_dict_more_keys(d->q))
            g_ptr_array_add(keys, g_strdup(qpdf_oh_dict_next_key(d->q)));
    }
    for (guint i = 0; i < keys->len && !d->stop; i++) {
        const char *k = g_ptr_array_index(keys, i);
        bool copied;
        qpdf_oh v;
        if (it->trailer && strcmp(k, "/Encrypt") == 0)
            continue;
        if (drop_key(d, dict, k, it->page)) {
            qpdf_oh_remove_key(d->q, dict, k);
            continue;
        }
        v = qpdf_oh_get_key(d->q, dict, k);
        if (drop_value(d, v, k, it->page)) {
            qpdf_oh_remove_key(d->q, dict, k);
            qpdf_oh_release(d->q, v);
            continue;
        }
        v = readable(d, v, it->page, &copied);
        if (copied)
            qpdf_oh_replace_key(d->q, dict, k, v);
        if (!enqueue(d, v, it, k))
            qpdf_oh_release(d->q, v);
    }
    g_ptr_array_unref(keys);
}

static void visit_array(struct disarm *d, const struct item *it)
{
    int n = qpdf_oh_get_array_n_items(d->q, it->oh);

    /* in order (so are the notes); an erased item leaves i in place */
    for (int i = 0; i < n && !d->stop; i++) {
        bool copied;
        qpdf_oh v;
        if (!counted_value(d))
            break;
        v = qpdf_oh_get_array_item(d->q, it->oh, i);
        if (drop_value(d, v, it->via, it->page)) {
            qpdf_oh_erase_item(d->q, it->oh, i);
            qpdf_oh_release(d->q, v);
            i--;
            n--;
            continue;
        }
        v = readable(d, v, it->page, &copied);
        if (copied)
            qpdf_oh_set_array_item(d->q, it->oh, i, v);
        if (!enqueue(d, v, it, it->via))
            qpdf_oh_release(d->q, v);
    }
}

/* Rebuilds the page tree as one /Pages node that holds every page, in
 * order, once qpdf has pushed the inherited attributes (resources,
 * boxes, rotation) down to the pages: /Count, /Kids and /Parent are
 * then right whatever the input said (viewers disagree about a broken
 * tree, and a wrong /Count makes some show nothing). */
static void flatten_pages(struct disarm *d, int pages)
{
    qpdf_oh root, node, kids, count;
    char t[16];
    bool flat;

    if (qpdf_push_inherited_attributes_to_page(d->q) & QPDF_ERRORS) {
        qpdf_error e = qpdf_get_error(d->q);
        const char *m = e != NULL ? qpdf_get_error_full_text(d->q, e) : "?";
        char *c = clean_text(m, strlen(m), 300);
        mgw_note(d->w, "defect", "qpdf: page tree: %s", c);
        g_free(c);
        return;
    }
    root = qpdf_get_root(d->q);
    node = qpdf_oh_get_key_if_dict(d->q, root, "/Pages");
    flat = qpdf_oh_is_dictionary(d->q, node) && qpdf_oh_is_indirect(d->q, node) &&
           strcmp(name_of(d, node, "/Type", t, sizeof t), "/Pages") == 0;
    if (flat) {
        /* the root node is not one of the pages (an error says it is not) */
        flat = qpdf_find_page_by_oh(d->q, node) < 0;
        if (qpdf_has_error(d->q))
            (void)qpdf_get_error(d->q);
    }
    if (flat) {
        kids = qpdf_oh_new_array(d->q);
        for (int i = 0; i < pages; i++) {
            qpdf_oh p = qpdf_get_page_n(d->q, (size_t)i);
            qpdf_oh_append_item(d->q, kids, p);
            qpdf_oh_replace_key(d->q, p, "/Parent", node);
            qpdf_oh_release(d->q, p);
        }
        count = qpdf_oh_new_integer(d->q, pages);
        qpdf_oh_replace_key(d->q, node, "/Kids", kids);
        qpdf_oh_replace_key(d->q, node, "/Count", count);
        qpdf_oh_release(d->q, count);
        qpdf_oh_release(d->q, kids);
        qpdf_update_all_pages_cache(d->q);
    }
    qpdf_oh_release(d->q, node);
    qpdf_oh_release(d->q, root);
}

/* Queues the trailer, then the pages on top of it (page 1 first out). */
static void start(struct disarm *d)
{
    struct item top;
    int pages;

    memset(&top, 0, sizeof top);
    top.oh = qpdf_get_trailer(d->q);
    top.trailer = true;
    g_array_append_val(d->stack, top);
    d->objects++;
    pages = qpdf_get_num_pages(d->q);
    if (pages < 0) {
        /* no page numbers in the notes; the walk from the trailer still
         * reaches every page */
        qpdf_error e = qpdf_get_error(d->q);
        const char *t = e != NULL ? qpdf_get_error_full_text(d->q, e) : "?";
        char *c = clean_text(t, strlen(t), 300);
        mgw_note(d->w, "defect", "qpdf: page tree: %s", c);
        g_free(c);
        return;
    }
    if ((uint64_t)pages >= d->max_objects) {
        stop(d, MGW_LIMIT, "more than %" G_GUINT64_FORMAT " objects (%d pages)", d->max_objects,
             pages);
        return;
    }
    flatten_pages(d, pages);
    for (int i = pages - 1; i >= 0 && !d->stop; i--) {
        struct item pg;
        qpdf_oh p = qpdf_get_page_n(d->q, (size_t)i);
        memset(&pg, 0, sizeof pg);
        pg.page = i + 1;
        if (!enqueue(d, p, &pg, ""))
            qpdf_oh_release(d->q, p);
    }
}

/* qpdf 11 writes a stream of /Type /Metadata decoded at any decode
 * level (QPDFWriter "not compressing metadata"), whatever its size
 * once inflated. Unless that is bounded (no filter, or one /FlateDecode
 * while the document's metadata streams so far hold at most
 * METADATA_MAX_RAW bytes: deflate inflates 1032 times at most), the
 * stream loses its /Type and is copied as it is. */
static void bounded_metadata(struct disarm *d, qpdf_oh stream, qpdf_oh dict)
{
    char t[16];
    qpdf_oh f;
    bool bounded = true;

    if (strcmp(name_of(d, dict, "/Type", t, sizeof t), "/Metadata") != 0)
        return;
    f = qpdf_oh_get_key(d->q, dict, "/Filter");
    if (qpdf_oh_is_name(d->q, f) && (strcmp(qpdf_oh_get_name(d->q, f), "/FlateDecode") == 0 ||
                                     strcmp(qpdf_oh_get_name(d->q, f), "/Fl") == 0)) {
        unsigned char *raw = NULL;
        size_t len = 0;
        if (qpdf_oh_get_stream_data(d->q, stream, qpdf_dl_none, NULL, &raw, &len) & QPDF_ERRORS) {
            (void)qpdf_get_error(d->q); /* copied as it is, like any other */
            bounded = false;
        } else if (len <= METADATA_MAX_RAW - d->metadata)
            d->metadata += len;
        else
            bounded = false;
        free(raw);
    } else if (!qpdf_oh_is_null(d->q, f))
        bounded = false;
    qpdf_oh_release(d->q, f);
    if (!bounded) {
        qpdf_oh_remove_key(d->q, dict, "/Type");
        d->untyped++;
    }
}

static double cpu_seconds(void)
{
    struct timespec ts;

    if (clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts) != 0)
        return 0;
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Visits everything; stops with MGW_LIMIT once the walk has used two
 * thirds of the CPU seconds of the process's RLIMIT_CPU (option cpu),
 * so that a huge file ends with a status, not with SIGXCPU. */
static void walk(struct disarm *d)
{
    unsigned n = 0;

    start(d);
    while (d->stack->len > 0) {
        if ((++n & 1023) == 0 && !d->stop && d->max_cpu > 0 && cpu_seconds() > d->max_cpu)
            stop(d, MGW_LIMIT, "checking the PDF takes more than %.1f CPU seconds", d->max_cpu);
        struct item it = g_array_index(d->stack, struct item, d->stack->len - 1);
        g_array_set_size(d->stack, d->stack->len - 1);
        if (!d->stop) {
            if (qpdf_oh_is_array(d->q, it.oh))
                visit_array(d, &it);
            else if (qpdf_oh_is_stream(d->q, it.oh)) {
                qpdf_oh dict = qpdf_oh_get_dict(d->q, it.oh);
                visit_dict(d, &it, dict);
                if (!d->stop)
                    bounded_metadata(d, it.oh, dict);
                qpdf_oh_release(d->q, dict);
            } else if (qpdf_oh_is_dictionary(d->q, it.oh))
                visit_dict(d, &it, it.oh);
            if (!d->stop && qpdf_has_error(d->q))
                stop_qpdf_error(d, "error while reading objects");
        }
        qpdf_oh_release(d->q, it.oh);
    }
    if (d->unnoted > 0)
        mgw_note(d->w, "removed", "%u more items (not listed)", d->unnoted);
    if (d->untyped > 0)
        mgw_note(d->w, "info", "%u metadata stream%s copied compressed, without /Type /Metadata",
                 d->untyped, d->untyped == 1 ? "" : "s");
}

/* An "info" note when the document carries signatures (SigFlags bit 1). */
static void note_signed(struct disarm *d)
{
    qpdf_oh root = qpdf_get_root(d->q);
    qpdf_oh form = qpdf_oh_get_key_if_dict(d->q, root, "/AcroForm");
    qpdf_oh flags = qpdf_oh_get_key_if_dict(d->q, form, "/SigFlags");
    long long v = 0;

    if (qpdf_oh_get_value_as_longlong(d->q, flags, &v) && (v & 1))
        mgw_note(d->w, "info",
                 "the document was signed; its signatures do not cover the "
                 "rewritten file");
    qpdf_oh_release(d->q, flags);
    qpdf_oh_release(d->q, form);
    qpdf_oh_release(d->q, root);
}

/* qpdf's warnings (recovery from damage) as "defect" notes. */
static void note_warnings(struct disarm *d)
{
    unsigned n = 0, more = 0;

    while (qpdf_more_warnings(d->q)) {
        qpdf_error e = qpdf_next_warning(d->q);
        if (n < MAX_DEFECT_NOTES) {
            const char *t = qpdf_get_error_full_text(d->q, e);
            char *c = clean_text(t, strlen(t), 300);
            mgw_note(d->w, "defect", "qpdf: %s", c);
            g_free(c);
            n++;
        } else
            more++;
    }
    if (more > 0)
        mgw_note(d->w, "defect", "qpdf: %u more warnings", more);
}

static enum mgw_status write_out(struct disarm *d)
{
    const unsigned char *out;
    qpdf_oh trailer;
    size_t len;

    /* qpdf writes the right /Size only in place of one the trailer has */
    trailer = qpdf_get_trailer(d->q);
    if (!qpdf_oh_has_key(d->q, trailer, "/Size")) {
        qpdf_oh zero = qpdf_oh_new_integer(d->q, 0);
        qpdf_oh_replace_key(d->q, trailer, "/Size", zero);
        qpdf_oh_release(d->q, zero);
    }
    qpdf_oh_release(d->q, trailer);

    if (qpdf_init_write_memory(d->q) & QPDF_ERRORS) {
        stop_qpdf_error(d, "write");
        return MGW_FAIL;
    }
    qpdf_set_object_stream_mode(d->q, qpdf_o_preserve);
    qpdf_set_decode_level(d->q, qpdf_dl_none);
    qpdf_set_compress_streams(d->q, QPDF_FALSE);
    qpdf_set_content_normalization(d->q, QPDF_FALSE);
    qpdf_set_qdf_mode(d->q, QPDF_FALSE);
    qpdf_set_linearization(d->q, QPDF_FALSE);
    qpdf_set_preserve_unreferenced_objects(d->q, QPDF_FALSE);
    qpdf_set_preserve_encryption(d->q, QPDF_FALSE);
    qpdf_set_deterministic_ID(d->q, QPDF_TRUE);
    if ((qpdf_write(d->q) & QPDF_ERRORS) || qpdf_has_error(d->q)) {
        stop_qpdf_error(d, "write");
        return MGW_FAIL;
    }
    len = qpdf_get_buffer_length(d->q);
    out = qpdf_get_buffer(d->q);
    if (out == NULL || len == 0) {
        mgw_reason(d->w, "qpdf wrote nothing");
        return MGW_FAIL;
    }
    if (!mgw_out_file(d->w, mgw_option(d->w, "name"), "application/pdf", out, len)) {
        mgw_reason(d->w, "the output could not be sent");
        return MGW_FAIL;
    }
    return MGW_OK;
}

/* Options into d; false (with a reason) for a bad one. */
static bool options(struct disarm *d)
{
    const char *uri = mgw_option(d->w, "uri");

    if (uri == NULL || strcmp(uri, "keep") == 0)
        d->remove_uri = false;
    else if (strcmp(uri, "remove") == 0)
        d->remove_uri = true;
    else {
        mgw_reason(d->w, "uri=%s: expected keep or remove", uri);
        return false;
    }
    d->max_objects = mgw_option_u64(d->w, "max-objects", DEFAULT_MAX_OBJECTS);
    if (d->max_objects == 0)
        d->max_objects = 1;
    d->max_values = d->max_objects > G_MAXUINT64 / VALUES_PER_OBJECT
                        ? G_MAXUINT64
                        : d->max_objects * VALUES_PER_OBJECT;
    d->max_depth = (unsigned)MIN(mgw_option_u64(d->w, "max-depth", DEFAULT_MAX_DEPTH), 10000);
    d->max_cpu = (double)MIN(mgw_option_u64(d->w, "cpu", 30), 1000000) * 2 / 3;
    return true;
}

enum mgw_status mgw_pdf_disarm(struct mgw *w)
{
    struct disarm d;
    uint64_t max_size = mgw_option_u64(w, "max-size", DEFAULT_MAX_SIZE);
    unsigned char *buf = NULL;
    size_t len = 0;
    enum mgw_status st = MGW_FAIL;

    memset(&d, 0, sizeof d);
    d.w = w;
    if (!options(&d))
        return MGW_FAIL;
    if (mgw_input_size(w) > max_size) {
        mgw_reason(w, "the PDF is larger than %" G_GUINT64_FORMAT " bytes", max_size);
        return MGW_LIMIT;
    }
    buf = mgw_input_read_all(w, max_size, &len);
    if (buf == NULL) {
        mgw_reason(w, "the PDF could not be read");
        return MGW_FAIL;
    }
    d.q = qpdf_init();
    qpdf_silence_errors(d.q);
    qpdf_set_suppress_warnings(d.q, QPDF_TRUE);
    d.seen = g_hash_table_new_full(g_int64_hash, g_int64_equal, g_free, NULL);
    d.stack = g_array_new(FALSE, FALSE, sizeof(struct item));
    /* qpdf reads from buf until qpdf_cleanup: buf is freed after it */
    if (qpdf_read_memory(d.q, "input", (const char *)buf, len, "") & QPDF_ERRORS) {
        qpdf_error e = qpdf_get_error(d.q);
        if (e != NULL && qpdf_get_error_code(d.q, e) == qpdf_e_password) {
            mgw_reason(w, "the PDF needs a password to open");
            st = MGW_ENCRYPTED;
        } else {
            const char *t = e != NULL ? qpdf_get_error_full_text(d.q, e) : "unknown error";
            char *c = clean_text(t, strlen(t), 300);
            mgw_reason(w, "qpdf cannot read the PDF: %s", c);
            g_free(c);
        }
        goto out;
    }
    if (qpdf_is_encrypted(d.q))
        mgw_note(w, "removed",
                 "encryption and its permission restrictions (the file opens "
                 "without a password)");
    note_signed(&d);
    walk(&d);
    if (d.stop) {
        st = d.status;
        goto out;
    }
    st = write_out(&d);
out:
    note_warnings(&d);
    g_array_unref(d.stack);
    g_hash_table_unref(d.seen);
    qpdf_cleanup(&d.q);
    g_free(buf);
    return st;
}
