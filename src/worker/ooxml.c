/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * NAME
 *	ooxml 3
 * SUMMARY
 *	disarm an Office Open XML document (Word, Excel, PowerPoint)
 * SYNOPSIS
 *	#include "worker/handlers.h"
 *
 *	enum mgw_status mgw_ooxml(struct mgw *w);
 *
 *	mugaika-worker ooxml [name=FILE] [hyperlinks=keep|remove]
 *		[max-members=N] [max-total=BYTES] [max-ratio=N] <item >records
 * DESCRIPTION
 *	mgw_ooxml() takes a docx, xlsx or pptx package, or one of their
 *	template, slide show and macro-enabled kin (docm dotx dotm xlsm
 *	xltx xltm pptm potx potm ppsx ppsm), and emits one output: the same
 *	document rebuilt without anything that runs or reaches out when it
 *	is opened. The output is macro-free: a macro-enabled main part gets
 *	its macro-free content type and the name (option name=) its
 *	macro-free extension (.docm becomes .docx, and so on).
 *
 *	The package is read whole into memory with libarchive, from the
 *	central directory as Office reads it (member names in UTF-8: the
 *	handler sets LC_CTYPE to C.UTF-8). Every member name must be sane
 *	(relative, UTF-8, no empty, "." or ".." segment, no control
 *	character, unique ignoring ASCII case as OPC part names are; note
 *	that libarchive turns a backslash into '/'). Then:
 *
 *	1. [Content_Types].xml and every relationships part are parsed
 *	   (stray elements in them go); the main part is the target of the
 *	   package's officeDocument relationship, and its content type says
 *	   which format this is. Add-ins (xlam, ppam) and binary workbooks
 *	   (xlsb) are refused.
 *	2. Parts are removed for what they are (content type or place):
 *	   VBA projects and their signatures, Word's vbaData and macro key
 *	   and toolbar customisations, ActiveX controls (activeX/),
 *	   embedded objects and packages (embeddings/, or any part typed as
 *	   a whole Office document or macro-enabled), external workbook
 *	   links, Excel 4 macro sheets, custom UI (customUI/), web add-ins,
 *	   and parts without a content type.
 *	3. Relationships are removed for their type (the same things, plus
 *	   attached templates, subdocuments, frames, altChunk imports, mail
 *	   merge sources), for pointing outside the package (TargetMode
 *	   External) unless they are hyperlinks to http, https or mailto
 *	   (links to files or programs go; all hyperlinks go with
 *	   hyperlinks=remove), and for pointing at a part that is missing
 *	   or removed. Parts no longer reachable from the package
 *	   relationships are dropped ("unreferenced part").
 *	4. Every XML part left is parsed (libxml2, XML_PARSE_NONET, never
 *	   entity substitution, DTD loading or XML_PARSE_HUGE; a DOCTYPE
 *	   stops the parse and fails the item; undeclared namespace
 *	   prefixes fail too). The tree is built only for the parts to edit:
 *	   those where the parse without a tree found an attribute naming
 *	   a removed relationship (or holding a reference, which the tree
 *	   resolves), and those a byte search (or an encoding other than
 *	   UTF-8) says may hold a field, a formula with '|' or a PowerPoint
 *	   action. A part that lost relationships loses every element or
 *	   attribute naming their Ids: w:object becomes a w:pict that keeps
 *	   the object's picture (or its w:drawing),
 *	   p:oleObj graphic frames become their fallback p:pic, sheet
 *	   oleObject and control elements, external references, hyperlink
 *	   elements and the like go with their empty containers and empty
 *	   mc:AlternateContent; a removed macro sheet leaves the workbook's
 *	   sheets, defined names and views consistent. An HTML or
 *	   plain-text altChunk becomes plain paragraphs. Word fields whose
 *	   instruction is DDE, DDEAUTO, LINK, INCLUDETEXT, INCLUDEPICTURE or
 *	   IMPORT (or whose keyword comes from a nested field) lose their
 *	   instruction and keep their displayed result, in w:fldSimple as in
 *	   complex fields split over runs and paragraphs; an instruction
 *	   outside any field goes. Excel formulas that are DDE calls
 *	   (app|topic!item) or, once the external links are gone, refer to
 *	   an external workbook ([1]...) lose their formula and keep the
 *	   cached value; shared formulas go with their master; defined
 *	   names, table and validation formulas likewise. Shape actions
 *	   that run a macro, a program or an OLE verb go, and Word online
 *	   videos (embedded web pages).
 *	5. When anything changed, digital signatures (no longer valid) go;
 *	   Excel's calculation chain goes when formulas went.
 *	6. The package is written again (the zip by hand, deflated with
 *	   libdeflate; every member dated 2000-01-01): [Content_Types].xml
 *	   first, without the Overrides of parts that are not there nor the
 *	   Defaults of removed types, then every kept part in the original
 *	   order. Every member is deflated
 *	   anew (level 1) from the bytes read and checked here, parts not
 *	   edited too: their content is kept byte for byte, but nothing of
 *	   the input's compressed data reaches the output (a crafted stream
 *	   could aim at an inflater other than zlib, and the sender's
 *	   encoding choices could carry hidden data). The same input gives
 *	   the same output, and an output disarmed again gives itself.
 *
 *	Every removal gets one note "removed" (at most 20 per part for
 *	what is found inside XML, then a count); the content type change
 *	and an altChunk made text get a note "converted".
 * LIMITS
 *	max-members (default 2000) zip members, counted from the end of
 *	central directory record and the records themselves before
 *	anything is read; max-total (default 200 MiB) bytes expanded in all
 *	(and the size of the item); max-ratio (default 100) expanded to
 *	input bytes once past 16 MiB expanded (RATIO_FROM: a drawing of a
 *	few MB may well deflate 200 times, and a package must not fail
 *	for its writer's good compression). Any of them: MGW_LIMIT.
 *	libxml2's own limits (depth 256, text nodes of 10 MB) apply; XML
 *	larger than the address-space limit can hold as a tree fails (a
 *	30 MB sheet takes some 5 s and fits).
 * DIAGNOSTICS
 *	MGW_FAIL with a reason: not a zip, no [Content_Types].xml or main
 *	part, an unknown main part type, an add-in or binary workbook, a
 *	bad or duplicate member name, an encrypted member, malformed XML or
 *	a DOCTYPE in a part that is kept, a workbook left without a sheet.
 *	MGW_ENCRYPTED for an Office document encrypted with a password
 *	(an OLE compound file holding an EncryptedPackage stream).
 * BUGS
 *	Not handled: Excel data connections and query tables (they fetch
 *	on refresh), HYPERLINK fields, macros assigned to form controls
 *	that name another workbook, the pictures of ActiveX controls in
 *	PowerPoint (the control just goes).
 */
#include <limits.h>
#include <locale.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <archive.h>
#include <archive_entry.h>
#include <libdeflate.h>
#include <libxml/HTMLparser.h>
#include <libxml/parser.h>
#include <libxml/parserInternals.h>
#include <libxml/tree.h>

#include "worker/handlers.h"

#define MIB            (1024u * 1024u)
#define PKG_NOTES      100 /* notes about parts and relationships before they are counted */
#define NOTES_PER_PART 20  /* notes of one part before they are only counted */
#define FIELD_DEPTH    64  /* nested Word fields */
#define QUOTE_MAX      80  /* characters of a formula or field quoted in a note */
#define CHUNK_TEXT_MAX MIB /* text taken from one altChunk */

#define RATIO_FROM (16u * MIB) /* max-ratio applies past this many bytes expanded */

#define XML_OPTS (XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING)

#define CT_OXML           "application/vnd.openxmlformats-officedocument."
#define NS_DRAWING        "http://schemas.openxmlformats.org/drawingml/2006/main"
#define NS_DRAWING_STRICT "http://purl.oclc.org/ooxml/drawingml/main"

enum family { FAM_WORD, FAM_EXCEL, FAM_PPT };

/* The main part's content type (lower case) decides the format. */
struct format {
    const char *main_type;
    const char *safe_type; /* what the main part's type becomes */
    const char *from;      /* the extension this content type goes with */
    const char *ext;       /* the output's extension */
    const char *mime;      /* the output's MIME type */
    enum family fam;
    const char *refuse; /* why it cannot be disarmed, or NULL */
};

static const struct format formats[] = {
    {CT_OXML "wordprocessingml.document.main+xml", CT_OXML "wordprocessingml.document.main+xml",
     "docx", "docx", CT_OXML "wordprocessingml.document", FAM_WORD, NULL},
    {CT_OXML "wordprocessingml.template.main+xml", CT_OXML "wordprocessingml.template.main+xml",
     "dotx", "dotx", CT_OXML "wordprocessingml.template", FAM_WORD, NULL},
    {"application/vnd.ms-word.document.macroenabled.main+xml",
     CT_OXML "wordprocessingml.document.main+xml", "docm", "docx",
     CT_OXML "wordprocessingml.document", FAM_WORD, NULL},
    {"application/vnd.ms-word.template.macroenabledtemplate.main+xml",
     CT_OXML "wordprocessingml.template.main+xml", "dotm", "dotx",
     CT_OXML "wordprocessingml.template", FAM_WORD, NULL},
    {CT_OXML "spreadsheetml.sheet.main+xml", CT_OXML "spreadsheetml.sheet.main+xml", "xlsx", "xlsx",
     CT_OXML "spreadsheetml.sheet", FAM_EXCEL, NULL},
    {CT_OXML "spreadsheetml.template.main+xml", CT_OXML "spreadsheetml.template.main+xml", "xltx",
     "xltx", CT_OXML "spreadsheetml.template", FAM_EXCEL, NULL},
    {"application/vnd.ms-excel.sheet.macroenabled.main+xml", CT_OXML "spreadsheetml.sheet.main+xml",
     "xlsm", "xlsx", CT_OXML "spreadsheetml.sheet", FAM_EXCEL, NULL},
    {"application/vnd.ms-excel.template.macroenabled.main+xml",
     CT_OXML "spreadsheetml.template.main+xml", "xltm", "xltx", CT_OXML "spreadsheetml.template",
     FAM_EXCEL, NULL},
    {"application/vnd.ms-excel.addin.macroenabled.main+xml", NULL, "xlam", NULL, NULL, FAM_EXCEL,
     "an Excel add-in (xlam) is nothing but macros"},
    {"application/vnd.ms-excel.sheet.binary.macroenabled.main", NULL, "xlsb", NULL, NULL, FAM_EXCEL,
     "a binary workbook (xlsb) cannot be disarmed"},
    {CT_OXML "presentationml.presentation.main+xml", CT_OXML "presentationml.presentation.main+xml",
     "pptx", "pptx", CT_OXML "presentationml.presentation", FAM_PPT, NULL},
    {CT_OXML "presentationml.template.main+xml", CT_OXML "presentationml.template.main+xml", "potx",
     "potx", CT_OXML "presentationml.template", FAM_PPT, NULL},
    {CT_OXML "presentationml.slideshow.main+xml", CT_OXML "presentationml.slideshow.main+xml",
     "ppsx", "ppsx", CT_OXML "presentationml.slideshow", FAM_PPT, NULL},
    {"application/vnd.ms-powerpoint.presentation.macroenabled.main+xml",
     CT_OXML "presentationml.presentation.main+xml", "pptm", "pptx",
     CT_OXML "presentationml.presentation", FAM_PPT, NULL},
    {"application/vnd.ms-powerpoint.template.macroenabled.main+xml",
     CT_OXML "presentationml.template.main+xml", "potm", "potx", CT_OXML "presentationml.template",
     FAM_PPT, NULL},
    {"application/vnd.ms-powerpoint.slideshow.macroenabled.main+xml",
     CT_OXML "presentationml.slideshow.main+xml", "ppsm", "ppsx",
     CT_OXML "presentationml.slideshow", FAM_PPT, NULL},
    {"application/vnd.ms-powerpoint.addin.macroenabled.main+xml", NULL, "ppam", NULL, NULL, FAM_PPT,
     "a PowerPoint add-in (ppam) is nothing but macros"},
};

/* File name extensions of macro-enabled files and their macro-free twins. */
static const char *const renames[][2] = {
    {"docm", "docx"}, {"dotm", "dotx"}, {"xlsm", "xlsx"}, {"xltm", "xltx"},
    {"pptm", "pptx"}, {"potm", "potx"}, {"ppsm", "ppsx"},
};

struct label {
    const char *key;
    const char *what;
};

/* Content types (lower case) of parts that are removed. */
static const struct label bad_types[] = {
    {"application/vnd.ms-office.vbaproject", "VBA project"},
    {"application/vnd.ms-office.vbaprojectsignature", "VBA project signature"},
    {"application/vnd.ms-office.vbaprojectsignatureagile", "VBA project signature"},
    {"application/vnd.ms-office.vbaprojectsignaturev3", "VBA project signature"},
    {"application/vnd.ms-word.vbadata+xml", "VBA data"},
    {"application/vnd.ms-word.keymapcustomizations+xml", "macro key assignments"},
    {"application/vnd.ms-word.attachedtoolbars", "macro toolbars"},
    {"application/vnd.ms-office.activex+xml", "ActiveX control"},
    {"application/vnd.ms-office.activex", "ActiveX control"},
    {CT_OXML "oleobject", "embedded object"},
    {CT_OXML "spreadsheetml.externallink+xml", "external workbook link"},
    {"application/vnd.ms-excel.macrosheet+xml", "Excel 4 macro sheet"},
    {"application/vnd.ms-excel.intlmacrosheet+xml", "Excel 4 macro sheet"},
    {"application/vnd.ms-office.webextension+xml", "web add-in"},
    {"application/vnd.ms-office.webextensiontaskpanes+xml", "web add-in"},
};

/* Relationship types (their last segment, any case) that are removed
 * with their target. */
static const struct label bad_rels[] = {
    {"vbaProject", "VBA project"},
    {"vbaProjectSignature", "VBA project signature"},
    {"vbaProjectSignatureAgile", "VBA project signature"},
    {"vbaProjectSignatureV3", "VBA project signature"},
    {"wordVbaData", "VBA data"},
    {"keyMapCustomizations", "macro key assignments"},
    {"attachedToolbars", "macro toolbars"},
    {"activeXControl", "ActiveX control"},
    {"activeXControlBinary", "ActiveX control"},
    {"control", "ActiveX control"},
    {"oleObject", "embedded object"},
    {"package", "embedded object"},
    {"externalLink", "external workbook link"},
    {"externalLinkPath", "external workbook link"},
    {"attachedTemplate", "attached template"},
    {"subDocument", "subdocument"},
    {"frame", "frame"},
    {"aFChunk", "imported document chunk"},
    {"extensibility", "custom UI"},
    {"userCustomization", "custom UI"},
    {"xlMacrosheet", "Excel 4 macro sheet"},
    {"xlIntlMacrosheet", "Excel 4 macro sheet"},
    {"webextension", "web add-in"},
    {"webextensiontaskpanes", "web add-in"},
    {"mailMergeSource", "mail merge data source"},
    {"mailMergeHeaderSource", "mail merge data source"},
};

/* Hyperlink schemes that stay (the rest would open files or programs). */
static const char *const link_schemes[] = {"http:", "https:", "mailto:"};

/* Word field keywords whose field loses its instruction. */
static const char *const bad_fields[] = {
    "DDE", "DDEAUTO", "LINK", "INCLUDETEXT", "INCLUDE", "INCLUDEPICTURE", "IMPORT",
};

/* Namespaces, transitional and strict, grouped. */
enum ns_group {
    NSG_OTHER,
    NSG_W,
    NSG_X,
    NSG_XM,
    NSG_P,
    NSG_A,
    NSG_R,
    NSG_MC,
    NSG_V,
    NSG_O,
    NSG_CT, /* [Content_Types].xml */
    NSG_PR, /* package relationships */
    NSG_ANY
};

static const struct {
    enum ns_group g;
    const char *uri;
} ns_uris[] = {
    {NSG_W, "http://schemas.openxmlformats.org/wordprocessingml/2006/main"},
    {NSG_W, "http://purl.oclc.org/ooxml/wordprocessingml/main"},
    {NSG_X, "http://schemas.openxmlformats.org/spreadsheetml/2006/main"},
    {NSG_X, "http://purl.oclc.org/ooxml/spreadsheetml/main"},
    {NSG_XM, "http://schemas.microsoft.com/office/excel/2006/main"},
    {NSG_P, "http://schemas.openxmlformats.org/presentationml/2006/main"},
    {NSG_P, "http://purl.oclc.org/ooxml/presentationml/main"},
    {NSG_A, NS_DRAWING},
    {NSG_A, NS_DRAWING_STRICT},
    {NSG_R, "http://schemas.openxmlformats.org/officeDocument/2006/relationships"},
    {NSG_R, "http://purl.oclc.org/ooxml/officeDocument/relationships"},
    {NSG_MC, "http://schemas.openxmlformats.org/markup-compatibility/2006"},
    {NSG_V, "urn:schemas-microsoft-com:vml"},
    {NSG_O, "urn:schemas-microsoft-com:office:office"},
    {NSG_CT, "http://schemas.openxmlformats.org/package/2006/content-types"},
    {NSG_PR, "http://schemas.openxmlformats.org/package/2006/relationships"},
};

struct el_name {
    const char *name;
    enum ns_group g;
};

/* Elements that go whole when they name a removed relationship (the Id
 * is required there, or the element means nothing without it). */
static const struct el_name drop_whole[] = {
    {"attachedTemplate", NSG_W},
    {"subDoc", NSG_W},
    {"sourceFileName", NSG_W},
    {"headerReference", NSG_W},
    {"footerReference", NSG_W},
    {"printerSettings", NSG_W},
    {"oleObject", NSG_X},
    {"control", NSG_X},
    {"externalReference", NSG_X},
    {"hyperlink", NSG_X},
    {"drawing", NSG_X},
    {"legacyDrawing", NSG_X},
    {"legacyDrawingHF", NSG_X},
    {"picture", NSG_X},
    {"tablePart", NSG_X},
    {"pivotCache", NSG_X},
    {"control", NSG_P},
    {"sldId", NSG_P},
    {"sldMasterId", NSG_P},
    {"notesMasterId", NSG_P},
    {"handoutMasterId", NSG_P},
    {"sldLayoutId", NSG_P},
    {"tags", NSG_P},
    {"custData", NSG_P},
    {"sld", NSG_P},
    {"regular", NSG_P},
    {"bold", NSG_P},
    {"italic", NSG_P},
    {"boldItalic", NSG_P},
    {"hlinkClick", NSG_A},
    {"hlinkHover", NSG_A},
    {"hlinkMouseOver", NSG_A},
    {"snd", NSG_A},
    {"audioFile", NSG_A},
    {"videoFile", NSG_A},
    {"quickTimeFile", NSG_A},
    {"wavAudioFile", NSG_A},
    {"externalData", NSG_ANY},
    {"userShapes", NSG_ANY},
    {"chart", NSG_ANY},
    {"relIds", NSG_ANY},
    {"media", NSG_ANY},
    {"webextensionref", NSG_ANY},
};

/* Containers that go when their last child went. */
static const struct el_name containers[] = {
    {"oleObjects", NSG_X},         {"controls", NSG_X},
    {"externalReferences", NSG_X}, {"hyperlinks", NSG_X},
    {"tableParts", NSG_X},         {"pivotCaches", NSG_X},
    {"definedNames", NSG_X},       {"controls", NSG_P},
    {"notesMasterIdLst", NSG_P},   {"handoutMasterIdLst", NSG_P},
    {"custDataLst", NSG_P},        {"conditionalFormatting", NSG_ANY},
    {"dataValidations", NSG_ANY},  {"conditionalFormattings", NSG_ANY},
};

struct part;

struct rel {
    char *id;
    char *type;
    char *target;
    bool external;
    bool removed;
    struct part *to; /* internal target, NULL when missing */
    xmlNode *node;   /* in the owner's relationships document */
};

struct part {
    char *name; /* member name */
    char *key;  /* ASCII lower case: OPC part names ignore case */
    unsigned char *data;
    size_t len;
    unsigned char *out; /* rewritten bytes, or NULL: copy data */
    size_t out_len;
    const char *ctype; /* lower case, owned by struct ox's tables */
    bool removed;
    bool reached;
    bool is_rels;
    bool rels_changed;
    struct part *rels_part; /* this part's relationships part */
    struct part *owner;     /* is_rels: whose relationships these are */
    xmlDoc *rels_doc;       /* the relationships of this part, parsed */
    GPtrArray *rels;        /* struct rel * */
    GHashTable *gone;       /* Id -> struct rel *: removed relationships */
    int check;              /* CHECK_*: the check made ahead (ahead_run) */
    char *check_why;        /* CHECK_FAILED: why */
};

struct ox {
    struct mgw *w;
    GPtrArray *parts;   /* struct part *, in zip order */
    GHashTable *by_key; /* key -> struct part * */
    struct part pkg;    /* the package: source of _rels/.rels */
    struct part *types; /* [Content_Types].xml */
    xmlDoc *types_doc;
    bool types_dirty;      /* stray elements went */
    GHashTable *defaults;  /* extension (lower case) -> content type (lower case) */
    GHashTable *overrides; /* part key -> content type (lower case) */
    struct part *main;
    const struct format *fmt;
    uint64_t in_size, total, max_members, max_total, max_ratio;
    bool hyperlinks_remove;
    bool modified;        /* anything removed or rewritten */
    bool ext_links_gone;  /* Excel: external workbook links were removed */
    bool formulas_gone;   /* Excel: formulas were removed */
    unsigned notes;       /* package-level notes given */
    unsigned skipped;     /* package-level notes past PKG_NOTES */
    GPtrArray *checks;    /* struct part *: XML parts only to be checked (write_and_check) */
    GThread *ahead;       /* checks made ahead (ahead_run), or NULL */
    GAsyncQueue *ahead_q; /* struct part * to check, then the end mark (the struct ox) */
    bool ahead_closed;    /* the end mark was pushed */
    gint ahead_stop;      /* atomic: the checks are no longer wanted */
};

/* The editing of one XML part. */
struct edit {
    struct ox *o;
    struct part *p;
    xmlDoc *doc;
    GHashTable *dead; /* unlinked nodes, freed at the end */
    bool changed;
    unsigned notes;         /* notes given for this part */
    unsigned skipped;       /* notes past NOTES_PER_PART */
    GArray *sheet_idx;      /* workbook: positions of removed sheets */
    GPtrArray *sheet_names; /* workbook: names of removed sheets */
};

/* ---------------------------------------------------------------- */
/* strings and names */

static bool ends_with_ci(const char *s, const char *suffix)
{
    size_t n = strlen(s), m = strlen(suffix);

    return n >= m && g_ascii_strcasecmp(s + n - m, suffix) == 0;
}

/* The last segment of a relationship type URI. */
static const char *type_tail(const char *type)
{
    const char *s = strrchr(type, '/');

    return s != NULL ? s + 1 : type;
}

static const char *lookup_label(const struct label *t, size_t n, const char *key)
{
    for (size_t i = 0; i < n; i++)
        if (g_ascii_strcasecmp(t[i].key, key) == 0)
            return t[i].what;
    return NULL;
}

/* A short, printable quote of untrusted text for a note (owned). */
static char *quote(const char *s)
{
    GString *q = g_string_new(NULL);
    char *valid = g_utf8_make_valid(s, -1);
    unsigned n = 0;

    for (const char *c = valid; *c != '\0' && n < QUOTE_MAX; c = g_utf8_next_char(c), n++) {
        gunichar u = g_utf8_get_char(c);
        if (u < 0x20 || u == 0x7f)
            g_string_append_c(q, ' ');
        else
            g_string_append_unichar(q, u);
    }
    if (g_utf8_strlen(valid, -1) > QUOTE_MAX)
        g_string_append(q, "...");
    g_free(valid);
    return g_strstrip(g_string_free(q, FALSE));
}

/* Member names: relative, UTF-8, no control characters or backslash,
 * no empty, "." or ".." segment. dir: a trailing '/' is allowed. */
static bool name_ok(const char *name, bool dir)
{
    size_t n = strlen(name);
    const char *seg = name;

    if (n == 0 || n > 1024 || name[0] == '/' || !g_utf8_validate(name, -1, NULL))
        return false;
    if (dir && name[n - 1] == '/')
        n--;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)name[i] < 0x20 || name[i] == 0x7f || name[i] == '\\')
            return false;
    for (size_t i = 0; i <= n; i++) {
        if (i == n || name[i] == '/') {
            size_t len = (size_t)(name + i - seg);
            if (len == 0 || (len == 1 && seg[0] == '.') ||
                (len == 2 && seg[0] == '.' && seg[1] == '.'))
                return false;
            seg = name + i + 1;
        }
    }
    return true;
}

/* The part whose relationships part NAME is ("" for the package), or
 * NULL when NAME is no relationships part. Owned. */
static char *rels_source(const char *name)
{
    const char *slash = strrchr(name, '/'), *dir_end;
    size_t base_len;

    if (slash == NULL || !ends_with_ci(name, ".rels"))
        return NULL;
    base_len = strlen(slash + 1) - 5;
    dir_end = slash; /* name[0, dir_end) is the directory, ending in _rels */
    if (dir_end - name < 5 || g_ascii_strncasecmp(dir_end - 5, "_rels", 5) != 0)
        return NULL;
    if (dir_end - name == 5)
        return g_strndup(slash + 1, base_len);
    if (dir_end[-6] != '/')
        return NULL;
    return g_strdup_printf("%.*s/%.*s", (int)(dir_end - 6 - name), name, (int)base_len, slash + 1);
}

static bool is_rels_name(const char *name)
{
    char *src = rels_source(name);

    g_free(src);
    return src != NULL;
}

/* Resolves a relationship target against its source part: the part
 * name, or NULL when it leaves the package or is not a name. Owned. */
static char *resolve_target(const char *source, const char *target)
{
    GPtrArray *segs = g_ptr_array_new_with_free_func(g_free);
    char *t = g_strdup(target), *cut, **list;
    char *result = NULL;
    bool ok = true;

    if ((cut = strchr(t, '#')) != NULL)
        *cut = '\0';
    for (const char *c = t; *c != '\0'; c++)
        if ((unsigned char)*c < 0x20 || *c == '\\')
            ok = false;
    if (ok && t[0] != '/') {
        const char *slash = strrchr(source, '/');
        if (slash != NULL) {
            char *dir = g_strndup(source, (gsize)(slash - source));
            list = g_strsplit(dir, "/", -1);
            for (char **s = list; *s != NULL; s++)
                if (**s != '\0')
                    g_ptr_array_add(segs, g_strdup(*s));
            g_strfreev(list);
            g_free(dir);
        }
    }
    list = g_strsplit(t, "/", -1);
    for (char **s = list; ok && *s != NULL; s++) {
        if (**s == '\0' || strcmp(*s, ".") == 0)
            continue;
        if (strcmp(*s, "..") == 0) {
            if (segs->len == 0)
                ok = false;
            else
                g_ptr_array_remove_index(segs, segs->len - 1);
            continue;
        }
        g_ptr_array_add(segs, g_strdup(*s));
    }
    g_strfreev(list);
    if (ok && segs->len > 0) {
        g_ptr_array_add(segs, NULL);
        result = g_strjoinv("/", (char **)segs->pdata);
    }
    g_ptr_array_free(segs, TRUE);
    g_free(t);
    return result;
}

/* ---------------------------------------------------------------- */
/* parts */

static void rel_free(gpointer data)
{
    struct rel *r = data;

    g_free(r->id);
    g_free(r->type);
    g_free(r->target);
    g_free(r);
}

static void part_fini(struct part *p)
{
    g_free(p->name);
    g_free(p->key);
    g_free(p->data);
    g_free(p->out);
    g_free(p->check_why);
    if (p->rels_doc != NULL)
        xmlFreeDoc(p->rels_doc);
    if (p->rels != NULL)
        g_ptr_array_free(p->rels, TRUE);
    if (p->gone != NULL)
        g_hash_table_unref(p->gone);
}

static void part_free(gpointer data)
{
    part_fini(data);
    g_free(data);
}

/* The part named NAME (any case; %-escapes decoded as a second try). */
static struct part *find_part(struct ox *o, const char *name)
{
    char *key = g_ascii_strdown(name, -1);
    struct part *p = g_hash_table_lookup(o->by_key, key);

    g_free(key);
    if (p == NULL && strchr(name, '%') != NULL) {
        char *dec = g_uri_unescape_string(name, NULL);
        if (dec != NULL) {
            key = g_ascii_strdown(dec, -1);
            p = g_hash_table_lookup(o->by_key, key);
            g_free(key);
            g_free(dec);
        }
    }
    return p;
}

static const char *type_of(struct ox *o, const struct part *p)
{
    const char *t = g_hash_table_lookup(o->overrides, p->key);
    const char *slash, *dot;

    if (t != NULL)
        return t;
    slash = strrchr(p->key, '/');
    dot = strrchr(slash != NULL ? slash : p->key, '.');
    return dot != NULL ? g_hash_table_lookup(o->defaults, dot + 1) : NULL;
}

static bool is_xml_type(const char *t)
{
    return t != NULL && (g_str_has_suffix(t, "+xml") || strcmp(t, "application/xml") == 0 ||
                         strcmp(t, "text/xml") == 0);
}

static bool is_vml(const struct part *p)
{
    return (p->ctype != NULL && strstr(p->ctype, "vmldrawing") != NULL) ||
           g_str_has_suffix(p->key, ".vml");
}

/* What a part is by its place, when that makes it go. */
static const char *path_danger(const char *key)
{
    char **segs = g_strsplit(key, "/", -1);
    const char *what = NULL;
    guint n = g_strv_length(segs);

    for (guint i = 0; i + 1 < n && what == NULL; i++) {
        if (strcmp(segs[i], "embeddings") == 0)
            what = "embedded object";
        else if (strcmp(segs[i], "activex") == 0)
            what = "ActiveX control";
        else if (strcmp(segs[i], "customui") == 0)
            what = "custom UI";
    }
    if (what == NULL && n > 0) {
        const char *base = segs[n - 1];
        if (strcmp(base, "vbaproject.bin") == 0)
            what = "VBA project";
        else if (strcmp(base, "vbadata.xml") == 0)
            what = "VBA data";
        else if (g_str_has_prefix(base, "vbaprojectsignature"))
            what = "VBA project signature";
    }
    g_strfreev(segs);
    return what;
}

static void pkg_note(struct ox *o, const char *fmt, ...) G_GNUC_PRINTF(2, 3);

/* A note "removed" about the package, at most PKG_NOTES of them. */
static void pkg_note(struct ox *o, const char *fmt, ...)
{
    va_list ap;
    char *text;

    if (o->notes >= PKG_NOTES) {
        o->skipped++;
        return;
    }
    o->notes++;
    va_start(ap, fmt);
    text = g_strdup_vprintf(fmt, ap);
    va_end(ap);
    mgw_note(o->w, "removed", "%s", text);
    g_free(text);
}

static void remove_part(struct ox *o, struct part *p, const char *what, bool quiet)
{
    if (p->removed)
        return;
    p->removed = true;
    o->modified = true;
    if (!quiet)
        pkg_note(o, "%s %s", what, p->name);
}

static void remove_rel(struct ox *o, struct part *src, struct rel *r)
{
    if (r->removed)
        return;
    r->removed = true;
    if (r->node != NULL) {
        xmlUnlinkNode(r->node);
        xmlFreeNode(r->node);
        r->node = NULL;
    }
    if (r->id != NULL)
        g_hash_table_replace(src->gone, r->id, r);
    src->rels_changed = true;
    o->modified = true;
}

static bool has_bytes(const struct part *p, const char *s)
{
    return memmem(p->data, p->len, s, strlen(s)) != NULL;
}

/* XML that does not start like UTF-8 or ASCII text (UTF-16 and the
 * like): byte searches say nothing about it. */
static bool odd_encoding(const struct part *p)
{
    unsigned char c = p->len > 0 ? p->data[0] : '<';

    return !(c == '<' || c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == 0xEF);
}

/* ---------------------------------------------------------------- */
/* XML */

struct xml_guard {
    bool doctype;
    const gint *stop;    /* checking in a thread: set when the result is no longer wanted */
    GHashTable *gone;    /* checking: Ids of removed relationships */
    const xmlChar *uri;  /* the last attribute namespace seen (interned) */
    enum ns_group uri_g; /* and its group */
    bool refs;           /* an attribute may name a removed relationship */
};

static enum ns_group uri_group(const char *uri)
{
    for (size_t i = 0; i < G_N_ELEMENTS(ns_uris); i++)
        if (strcmp(uri, ns_uris[i].uri) == 0)
            return ns_uris[i].g;
    return NSG_OTHER;
}

static void quiet_error(void *data, xmlErrorPtr err)
{
    (void)data;
    (void)err;
}

/* Called when <!DOCTYPE name ...> has been read, before any internal
 * subset: nothing in a package may have one, so the parse stops here. */
static void on_doctype(void *ctx, const xmlChar *name, const xmlChar *ext_id, const xmlChar *sys_id)
{
    xmlParserCtxt *c = ctx;
    struct xml_guard *g = c->_private;

    (void)name;
    (void)ext_id;
    (void)sys_id;
    g->doctype = true;
    xmlStopParser(c);
}

/* A start tag, when checking a part that lost relationships: does one
 * of its attributes name them as the tree would (gone_attrs)? A value
 * with a reference in it counts as a yes (the tree has the answer).
 * In a check made by a thread, a start tag is where the parse stops
 * once its result is no longer wanted. */
static void on_start(void *ctx, const xmlChar *local, const xmlChar *prefix, const xmlChar *uri,
                     int n_ns, const xmlChar **ns, int n_attrs, int n_def, const xmlChar **attrs)
{
    struct xml_guard *g = ((xmlParserCtxt *)ctx)->_private;

    (void)local;
    (void)prefix;
    (void)uri;
    (void)n_ns;
    (void)ns;
    (void)n_def;
    if (g->stop != NULL && g_atomic_int_get(g->stop) != 0) {
        xmlStopParser(ctx);
        return;
    }
    for (int i = 0; i < n_attrs && g->gone != NULL && !g->refs; i++) {
        const xmlChar **a = attrs + 5 * i; /* local name, prefix, URI, value, value end */
        size_t n = (size_t)(a[4] - a[3]);
        char *v;
        if (a[2] == NULL)
            continue;
        if (a[2] != g->uri) {
            g->uri = a[2];
            g->uri_g = uri_group((const char *)a[2]);
        }
        if (g->uri_g != NSG_R && (g->uri_g != NSG_O || strcmp((const char *)a[0], "relid") != 0))
            continue;
        if (memchr(a[3], '&', n) != NULL) {
            g->refs = true;
            break;
        }
        v = g_strndup((const char *)a[3], n);
        g->refs = g_hash_table_contains(g->gone, v);
        g_free(v);
    }
}

/* Parses BUF. tree: returns the document (caller frees); otherwise
 * only checks it and returns (xmlDoc *)1 on success, and with GONE
 * (Ids of removed relationships) says in *REFS whether an attribute
 * may name one of them; with STOP (a check made by a thread), gives up
 * soon after *STOP becomes non-zero. NULL on failure with the reason
 * set (MGW_FAIL). */
static xmlDoc *xml_run_why(const char *what, const unsigned char *buf, size_t len, bool tree,
                           GHashTable *gone, bool *refs, const gint *stop, char **why)
{
    struct xml_guard g = {false, stop, gone, NULL, NSG_OTHER, false};
    xmlParserCtxt *c;
    xmlDoc *doc = NULL;
    bool ok;

    if (len > INT_MAX) {
        *why = g_strdup_printf("%s is too large to parse", what);
        return NULL;
    }
    c = xmlCreateMemoryParserCtxt((const char *)buf, (int)len);
    if (c == NULL) {
        *why = g_strdup_printf("%s: cannot start the XML parser", what);
        return NULL;
    }
    xmlCtxtUseOptions(c, XML_OPTS);
    if (!tree) {
        memset(c->sax, 0, sizeof *c->sax);
        c->sax->initialized = XML_SAX2_MAGIC;
        if (gone != NULL || stop != NULL)
            c->sax->startElementNs = on_start;
    }
    c->sax->internalSubset = on_doctype;
    c->sax->externalSubset = NULL;
    c->sax->serror = quiet_error;
    c->_private = &g;
    xmlParseDocument(c);
    ok = !g.doctype && c->wellFormed && c->nsWellFormed;
    if (g.doctype)
        *why = g_strdup_printf("%s has a DOCTYPE", what);
    else if (!ok)
        *why =
            g_strdup_printf("%s is not well-formed XML: %s", what,
                            c->lastError.message != NULL ? g_strchomp(c->lastError.message) : "?");
    if (tree && ok && c->myDoc != NULL && xmlDocGetRootElement(c->myDoc) != NULL) {
        doc = c->myDoc;
        c->myDoc = NULL;
    } else if (!tree && ok) {
        doc = (xmlDoc *)1;
    } else if (ok) {
        *why = g_strdup_printf("%s has no root element", what);
    }
    if (c->myDoc != NULL)
        xmlFreeDoc(c->myDoc);
    c->myDoc = NULL;
    xmlFreeParserCtxt(c);
    if (refs != NULL)
        *refs = g.refs;
    return doc;
}

/* xml_run_why for the handler's thread: the reason goes to the worker. */
static xmlDoc *xml_run(struct ox *o, const char *what, const unsigned char *buf, size_t len,
                       bool tree, GHashTable *gone, bool *refs)
{
    char *why = NULL;
    xmlDoc *doc = xml_run_why(what, buf, len, tree, gone, refs, NULL, &why);

    if (doc == NULL)
        mgw_reason(o->w, "%s", why != NULL ? why : "XML parse failed");
    g_free(why);
    return doc;
}

static xmlDoc *xml_parse(struct ox *o, const char *what, const unsigned char *buf, size_t len,
                         bool tree)
{
    return xml_run(o, what, buf, len, tree, NULL, NULL);
}

/* The group of a namespace, remembered in the namespace's _private. */
static enum ns_group ns_group(const xmlNs *ns)
{
    xmlNs *n = (xmlNs *)ns;
    enum ns_group g;

    if (ns == NULL || ns->href == NULL)
        return NSG_OTHER;
    if (n->_private != NULL)
        return (enum ns_group)(GPOINTER_TO_INT(n->_private) - 1);
    g = uri_group((const char *)ns->href);
    n->_private = GINT_TO_POINTER((int)g + 1);
    return g;
}

static bool is_el(const xmlNode *n, const char *name, enum ns_group g)
{
    return n != NULL && n->type == XML_ELEMENT_NODE && strcmp((const char *)n->name, name) == 0 &&
           (g == NSG_ANY || ns_group(n->ns) == g);
}

static bool in_table(const xmlNode *n, const struct el_name *t, size_t count)
{
    for (size_t i = 0; i < count; i++)
        if (is_el(n, t[i].name, t[i].g))
            return true;
    return false;
}

/* The next node after N in document order within TOP. */
static xmlNode *next_node(xmlNode *n, const xmlNode *top)
{
    if (n->type == XML_ELEMENT_NODE && n->children != NULL)
        return n->children;
    while (n != NULL && n != top) {
        if (n->next != NULL)
            return n->next;
        n = n->parent;
    }
    return NULL;
}

static xmlNode *child_el(const xmlNode *n, const char *name, enum ns_group g)
{
    for (xmlNode *c = n->children; c != NULL; c = c->next)
        if (is_el(c, name, g))
            return c;
    return NULL;
}

static xmlNode *find_el(xmlNode *top, const char *name, enum ns_group g)
{
    for (xmlNode *n = top; n != NULL; n = next_node(n, top))
        if (is_el(n, name, g))
            return n;
    return NULL;
}

static xmlNode *ancestor(xmlNode *n, const char *name, enum ns_group g, int levels)
{
    for (n = n->parent; n != NULL && levels-- > 0; n = n->parent)
        if (is_el(n, name, g))
            return n;
    return NULL;
}

static bool has_element_child(const xmlNode *n)
{
    for (const xmlNode *c = n->children; c != NULL; c = c->next)
        if (c->type == XML_ELEMENT_NODE)
            return true;
    return false;
}

/* An attribute without namespace, owned (g_free), or NULL. */
static char *attr(xmlNode *n, const char *name)
{
    xmlChar *v = xmlGetNoNsProp(n, (const xmlChar *)name);
    char *s = v != NULL ? g_strdup((const char *)v) : NULL;

    xmlFree(v);
    return s;
}

/* An attribute in a namespace group, owned (g_free), or NULL. */
static char *attr_in(xmlNode *n, const char *name, enum ns_group g)
{
    for (xmlAttr *a = n->properties; a != NULL; a = a->next) {
        if (strcmp((const char *)a->name, name) == 0 && ns_group(a->ns) == g) {
            xmlChar *v = xmlNodeListGetString(n->doc, a->children, 1);
            char *s = g_strdup(v != NULL ? (const char *)v : "");
            xmlFree(v);
            return s;
        }
    }
    return NULL;
}

static char *text_of(xmlNode *n)
{
    xmlChar *v = xmlNodeGetContent(n);
    char *s = g_strdup(v != NULL ? (const char *)v : "");

    xmlFree(v);
    return s;
}

static bool dump_doc(struct ox *o, struct part *p, xmlDoc *doc)
{
    xmlChar *mem = NULL;
    int n = 0;

    xmlDocDumpMemoryEnc(doc, &mem, &n, "UTF-8");
    if (mem == NULL || n <= 0) {
        xmlFree(mem);
        mgw_reason(o->w, "cannot write %s again", p->name);
        return false;
    }
    g_free(p->out);
    p->out = g_memdup2(mem, (gsize)n);
    p->out_len = (size_t)n;
    xmlFree(mem);
    return true;
}

/* ---------------------------------------------------------------- */
/* reading the package */

static uint64_t le(const unsigned char *p, int n)
{
    uint64_t v = 0;

    for (int i = n - 1; i >= 0; i--)
        v = (v << 8) | p[i];
    return v;
}

/* Counts the central directory records from OFF, at most LIMIT + 1. */
static uint64_t walk_directory(const unsigned char *b, size_t len, uint64_t off, uint64_t limit)
{
    uint64_t n = 0;

    while (n <= limit && off < len && len - off >= 46 && memcmp(b + off, "PK\1\2", 4) == 0) {
        n++;
        off += 46 + le(b + off + 28, 2) + le(b + off + 30, 2) + le(b + off + 32, 2);
    }
    return n;
}

/* The number of members of the zip in B: the larger of what the end of
 * central directory record declares and the records found where it
 * points (stopping past LIMIT), or -1 when there is no such record. */
static int64_t zip_entries(const unsigned char *b, size_t len, uint64_t limit)
{
    size_t stop = len > 22 + 65535 ? len - 22 - 65535 : 0;

    if (len < 22)
        return -1;
    for (size_t i = len - 22;; i--) {
        if (memcmp(b + i, "PK\5\6", 4) == 0) {
            uint64_t n = le(b + i + 10, 2), size = le(b + i + 12, 4), off = le(b + i + 16, 4);
            uint64_t found;
            if (i >= 20 && memcmp(b + i - 20, "PK\6\7", 4) == 0) {
                uint64_t z64 = le(b + i - 20 + 8, 8);
                if (z64 < len && len - z64 >= 56 && memcmp(b + z64, "PK\6\6", 4) == 0) {
                    n = MAX(n, le(b + z64 + 32, 8));
                    size = le(b + z64 + 40, 8);
                    off = le(b + z64 + 48, 8);
                }
            }
            found = walk_directory(b, len, off, limit);
            if (found == 0 && size <= i) /* data before the zip: the directory ends here */
                found = walk_directory(b, len, i - size, limit);
            n = MAX(n, found);
            return n > INT64_MAX ? INT64_MAX : (int64_t)n;
        }
        if (i == stop)
            break;
    }
    return -1;
}

/* An Office document encrypted with a password is an OLE compound file
 * with an "EncryptedPackage" stream (the name in UTF-16LE). */
static bool office_encrypted(const unsigned char *b, size_t len)
{
    static const unsigned char cfb[] = {0xD0, 0xCF, 0x11, 0xE0, 0xA1, 0xB1, 0x1A, 0xE1};
    static const char name[] = "EncryptedPackage";
    unsigned char wide[2 * sizeof name];

    if (len < sizeof cfb || memcmp(b, cfb, sizeof cfb) != 0)
        return false;
    for (size_t i = 0; i < sizeof name - 1; i++) {
        wide[2 * i] = (unsigned char)name[i];
        wide[2 * i + 1] = 0;
    }
    return memmem(b, len, wide, 2 * (sizeof name - 1)) != NULL;
}

static const char *arc_err(struct archive *a)
{
    const char *s = archive_error_string(a);

    return s != NULL ? s : "unknown error";
}

static enum mgw_status read_data(struct ox *o, struct archive *a, struct part *p)
{
    size_t cap = 0, got = 0;
    unsigned char *buf = NULL;

    for (;;) {
        la_ssize_t n;
        if (got == cap) {
            uint64_t room = o->max_total - o->total - got;
            size_t grow = cap == 0 ? 64 * 1024 : cap;
            if (room == 0) {
                unsigned char probe;
                n = archive_read_data(a, &probe, 1); /* only the end may follow */
                if (n == 0)
                    break;
                g_free(buf);
                if (n < 0) {
                    mgw_reason(o->w, "cannot read member %s: %s", p->name, arc_err(a));
                    return MGW_FAIL;
                }
                mgw_reason(o->w, "more than %" G_GUINT64_FORMAT " bytes expanded", o->max_total);
                return MGW_LIMIT;
            }
            if (grow > room)
                grow = (size_t)room;
            cap += grow;
            buf = g_realloc(buf, cap);
        }
        n = archive_read_data(a, buf + got, cap - got);
        if (n < 0) {
            g_free(buf);
            mgw_reason(o->w, "cannot read member %s: %s", p->name, arc_err(a));
            return MGW_FAIL;
        }
        if (n == 0)
            break;
        got += (size_t)n;
        if (o->total + got > (uint64_t)RATIO_FROM &&
            (o->total + got) / o->max_ratio > (o->in_size > 0 ? o->in_size : 1)) {
            g_free(buf);
            mgw_reason(o->w, "expands more than %" G_GUINT64_FORMAT " times", o->max_ratio);
            return MGW_LIMIT;
        }
    }
    o->total += got;
    p->data = buf != NULL ? buf : g_malloc(1);
    p->len = got;
    return MGW_OK;
}

static void ahead_offer(struct ox *o, struct part *p);

static enum mgw_status read_member(struct ox *o, struct archive *a, struct archive_entry *e)
{
    const char *name = archive_entry_pathname_utf8(e);
    struct part *p;
    char *key;
    int type = (int)archive_entry_filetype(e);
    enum mgw_status st;

    if (name == NULL)
        name = archive_entry_pathname(e);
    if (name == NULL) {
        mgw_reason(o->w, "a zip member has no name");
        return MGW_FAIL;
    }
    if (type == AE_IFDIR || g_str_has_suffix(name, "/")) {
        if (!name_ok(name, true)) {
            mgw_reason(o->w, "unsafe member name '%s'", name);
            return MGW_FAIL;
        }
        return MGW_OK; /* directories are no parts */
    }
    if (!name_ok(name, false)) {
        mgw_reason(o->w, "unsafe member name '%s'", name);
        return MGW_FAIL;
    }
    if (type != AE_IFREG && type != 0) {
        mgw_reason(o->w, "member %s is not a file", name);
        return MGW_FAIL;
    }
    if (archive_entry_is_encrypted(e)) {
        mgw_reason(o->w, "member %s is encrypted", name);
        return MGW_FAIL;
    }
    key = g_ascii_strdown(name, -1);
    if (g_hash_table_contains(o->by_key, key)) {
        mgw_reason(o->w, "duplicate member %s", name);
        g_free(key);
        return MGW_FAIL;
    }
    if (archive_entry_size_is_set(e) && archive_entry_size(e) > 0 &&
        (uint64_t)archive_entry_size(e) > o->max_total - o->total) {
        mgw_reason(o->w, "more than %" G_GUINT64_FORMAT " bytes expanded", o->max_total);
        g_free(key);
        return MGW_LIMIT;
    }
    p = g_new0(struct part, 1);
    p->name = g_strdup(name);
    p->key = key;
    st = read_data(o, a, p);
    if (st != MGW_OK) {
        part_free(p);
        return st;
    }
    g_ptr_array_add(o->parts, p);
    g_hash_table_insert(o->by_key, p->key, p);
    ahead_offer(o, p);
    return MGW_OK;
}

static enum mgw_status read_zip(struct ox *o, const unsigned char *buf, size_t len)
{
    struct archive *a;
    struct archive_entry *e;
    enum mgw_status st = MGW_OK;
    uint64_t members = 0;
    int64_t declared = zip_entries(buf, len, o->max_members);

    if (declared < 0) {
        if (office_encrypted(buf, len)) {
            mgw_reason(o->w, "Office document encrypted with a password");
            return MGW_ENCRYPTED;
        }
        mgw_reason(o->w, "not a zip file");
        return MGW_FAIL;
    }
    if ((uint64_t)declared > o->max_members) {
        mgw_reason(o->w, "more than %" G_GUINT64_FORMAT " members", o->max_members);
        return MGW_LIMIT;
    }
    a = archive_read_new();
    archive_read_support_format_zip_seekable(a);
    if (archive_read_open_memory(a, buf, len) != ARCHIVE_OK) {
        mgw_reason(o->w, "not a zip file: %s", arc_err(a));
        archive_read_free(a);
        return MGW_FAIL;
    }
    for (;;) {
        int r = archive_read_next_header(a, &e);
        if (r == ARCHIVE_EOF)
            break;
        if (r < ARCHIVE_WARN) {
            mgw_reason(o->w, "unreadable zip: %s", arc_err(a));
            st = MGW_FAIL;
            break;
        }
        if (++members > o->max_members) {
            mgw_reason(o->w, "more than %" G_GUINT64_FORMAT " members", o->max_members);
            st = MGW_LIMIT;
            break;
        }
        st = read_member(o, a, e);
        if (st != MGW_OK)
            break;
    }
    archive_read_free(a);
    return st;
}

/* [Content_Types].xml: its Defaults and Overrides. */
static enum mgw_status load_types(struct ox *o)
{
    xmlNode *root;

    o->types = find_part(o, "[Content_Types].xml");
    if (o->types == NULL) {
        mgw_reason(o->w, "no [Content_Types].xml: not an Office Open XML package");
        return MGW_FAIL;
    }
    o->types_doc = xml_parse(o, o->types->name, o->types->data, o->types->len, true);
    if (o->types_doc == NULL)
        return MGW_FAIL;
    root = xmlDocGetRootElement(o->types_doc);
    if (!is_el(root, "Types", NSG_CT)) {
        mgw_reason(o->w, "[Content_Types].xml has no Types");
        return MGW_FAIL;
    }
    for (xmlNode *c = root->children, *next; c != NULL; c = next) {
        bool def = is_el(c, "Default", NSG_CT), ovr = is_el(c, "Override", NSG_CT);
        char *k, *t, *key, *dec = NULL;
        GHashTable *h = def ? o->defaults : o->overrides;
        next = c->next;
        if (c->type != XML_ELEMENT_NODE)
            continue;
        k = attr(c, def ? "Extension" : "PartName");
        t = attr(c, "ContentType");
        if ((!def && !ovr) || k == NULL || t == NULL) {
            /* stray or incomplete: it goes */
            xmlUnlinkNode(c);
            xmlFreeNode(c);
            o->types_dirty = true;
            g_free(k);
            g_free(t);
            continue;
        }
        key = g_ascii_strdown(ovr && k[0] == '/' ? k + 1 : k, -1);
        if (g_hash_table_contains(h, key)) {
            mgw_reason(o->w, "[Content_Types].xml names a %s twice", def ? "extension" : "part");
            g_free(key);
            g_free(k);
            g_free(t);
            return MGW_FAIL;
        }
        if (ovr && strchr(key, '%') != NULL && (dec = g_uri_unescape_string(key, NULL)) != NULL &&
            !g_hash_table_contains(h, dec))
            g_hash_table_insert(h, g_strdup(dec), g_ascii_strdown(t, -1));
        g_hash_table_insert(h, key, g_ascii_strdown(t, -1));
        g_free(k);
        g_free(t);
        g_free(dec);
    }
    return MGW_OK;
}

static enum mgw_status parse_rels(struct ox *o, struct part *owner, struct part *rp)
{
    xmlNode *root;

    owner->rels_doc = xml_parse(o, rp->name, rp->data, rp->len, true);
    if (owner->rels_doc == NULL)
        return MGW_FAIL;
    root = xmlDocGetRootElement(owner->rels_doc);
    if (!is_el(root, "Relationships", NSG_PR)) {
        mgw_reason(o->w, "%s has no Relationships", rp->name);
        return MGW_FAIL;
    }
    owner->rels = g_ptr_array_new_with_free_func(rel_free);
    owner->gone = g_hash_table_new(g_str_hash, g_str_equal);
    for (xmlNode *c = root->children, *next; c != NULL; c = next) {
        struct rel *r;
        char *mode;
        next = c->next;
        if (c->type != XML_ELEMENT_NODE)
            continue;
        if (!is_el(c, "Relationship", NSG_PR)) {
            pkg_note(o, "a stray %s element in %s", (const char *)c->name, rp->name);
            xmlUnlinkNode(c);
            xmlFreeNode(c);
            owner->rels_changed = true;
            o->modified = true;
            continue;
        }
        r = g_new0(struct rel, 1);
        r->node = c;
        r->id = attr(c, "Id");
        r->type = attr(c, "Type");
        r->target = attr(c, "Target");
        mode = attr(c, "TargetMode");
        r->external = mode != NULL && strcmp(mode, "Internal") != 0;
        g_free(mode);
        g_ptr_array_add(owner->rels, r);
        if (r->id == NULL || r->type == NULL || r->target == NULL) {
            pkg_note(o, "malformed relationship in %s", rp->name);
            g_free(r->id);
            r->id = NULL;
            remove_rel(o, owner, r);
            continue;
        }
        for (guint i = 0; i + 1 < owner->rels->len; i++) {
            const struct rel *q = g_ptr_array_index(owner->rels, i);
            if (q->id != NULL && strcmp(q->id, r->id) == 0) {
                mgw_reason(o->w, "%s has the Id %s twice", rp->name, r->id);
                return MGW_FAIL;
            }
        }
        if (!r->external) {
            char *t = resolve_target(owner->name, r->target);
            r->to = t != NULL ? find_part(o, t) : NULL;
            g_free(t);
        }
    }
    return MGW_OK;
}

/* Attaches every relationships part to its owner and parses it. */
static enum mgw_status load_rels(struct ox *o)
{
    for (guint i = 0; i < o->parts->len; i++) {
        struct part *p = g_ptr_array_index(o->parts, i), *owner;
        char *src = p == o->types ? NULL : rels_source(p->name);
        enum mgw_status st;
        if (src == NULL)
            continue;
        p->is_rels = true;
        owner = src[0] == '\0' ? &o->pkg : find_part(o, src);
        g_free(src);
        if (owner == NULL || owner == o->types || is_rels_name(owner->name))
            continue; /* an orphan: dropped */
        if (owner->rels_part != NULL) {
            mgw_reason(o->w, "%s has two relationships parts", owner->name);
            return MGW_FAIL;
        }
        owner->rels_part = p;
        p->owner = owner;
        st = parse_rels(o, owner, p);
        if (st != MGW_OK)
            return st;
    }
    return MGW_OK;
}

/* ---------------------------------------------------------------- */
/* deciding what goes */

/* What a part of content type CTYPE (lower case) is when it goes: the
 * table, anything macro-enabled (the main part is converted, never
 * asked), whole documents embedded outside embeddings/. */
static const char *type_danger(const char *ctype)
{
    const char *what = lookup_label(bad_types, G_N_ELEMENTS(bad_types), ctype);

    if (what == NULL && strstr(ctype, "macroenabled") != NULL)
        what = "macro-enabled content";
    for (size_t i = 0; what == NULL && i < G_N_ELEMENTS(formats); i++)
        if (formats[i].mime != NULL && strcmp(ctype, formats[i].mime) == 0)
            what = "embedded object";
    if (what == NULL && (strcmp(ctype, "application/msword") == 0 ||
                         strcmp(ctype, "application/vnd.ms-excel") == 0 ||
                         strcmp(ctype, "application/vnd.ms-powerpoint") == 0))
        what = "embedded object";
    return what;
}

static const char *rel_danger(const char *type)
{
    return lookup_label(bad_rels, G_N_ELEMENTS(bad_rels), type_tail(type));
}

static bool safe_link(const char *target)
{
    for (size_t i = 0; i < G_N_ELEMENTS(link_schemes); i++)
        if (g_ascii_strncasecmp(target, link_schemes[i], strlen(link_schemes[i])) == 0)
            return true;
    return false;
}

static enum mgw_status find_main(struct ox *o)
{
    struct rel *main_rel = NULL;
    const char *t;

    for (guint i = 0; o->pkg.rels != NULL && i < o->pkg.rels->len; i++) {
        struct rel *r = g_ptr_array_index(o->pkg.rels, i);
        if (r->removed || r->external || strcmp(type_tail(r->type), "officeDocument") != 0)
            continue;
        if (main_rel != NULL) {
            mgw_reason(o->w, "the package names two main parts");
            return MGW_FAIL;
        }
        main_rel = r;
    }
    if (main_rel == NULL || main_rel->to == NULL || main_rel->to->is_rels ||
        main_rel->to == o->types) {
        mgw_reason(o->w, "no main document part");
        return MGW_FAIL;
    }
    o->main = main_rel->to;
    t = type_of(o, o->main);
    for (size_t i = 0; t != NULL && i < G_N_ELEMENTS(formats); i++)
        if (strcmp(t, formats[i].main_type) == 0)
            o->fmt = &formats[i];
    if (o->fmt == NULL) {
        mgw_reason(o->w, "not a Word, Excel or PowerPoint document (main part type %s)",
                   t != NULL ? t : "unknown");
        return MGW_FAIL;
    }
    if (o->fmt->refuse != NULL) {
        mgw_reason(o->w, "%s", o->fmt->refuse);
        return MGW_FAIL;
    }
    return MGW_OK;
}

/* Removes parts for their content type or their place. */
static void classify_parts(struct ox *o)
{
    for (guint i = 0; i < o->parts->len; i++) {
        struct part *p = g_ptr_array_index(o->parts, i);
        const char *what;
        if (p == o->types || p->is_rels)
            continue;
        p->ctype = type_of(o, p);
        if (p == o->main)
            continue; /* its type was checked (find_main); it is converted */
        if (p->ctype == NULL) {
            remove_part(o, p, "part without a content type", false);
            continue;
        }
        what = type_danger(p->ctype);
        if (what == NULL)
            what = path_danger(p->key);
        if (what != NULL)
            remove_part(o, p, what, false);
    }
}

/* Calls FN for every part that has relationships (the package first). */
static void each_source(struct ox *o, void (*fn)(struct ox *, struct part *))
{
    if (o->pkg.rels != NULL)
        fn(o, &o->pkg);
    for (guint i = 0; i < o->parts->len; i++) {
        struct part *p = g_ptr_array_index(o->parts, i);
        if (p->rels != NULL)
            fn(o, p);
    }
}

/* Pass 1: the targets of dangerous relationships go. */
static void mark_targets(struct ox *o, struct part *src)
{
    for (guint i = 0; i < src->rels->len; i++) {
        struct rel *r = g_ptr_array_index(src->rels, i);
        const char *what = r->removed || r->external ? NULL : rel_danger(r->type);
        if (what != NULL && r->to != NULL && r->to != o->main && !r->to->is_rels &&
            r->to != o->types)
            remove_part(o, r->to, what, false);
    }
}

/* Pass 2: which relationships of SRC go. */
static void decide_rels(struct ox *o, struct part *src)
{
    if (src->removed)
        return;
    for (guint i = 0; i < src->rels->len; i++) {
        struct rel *r = g_ptr_array_index(src->rels, i);
        const char *what;
        if (r->removed)
            continue;
        if (strcmp(type_tail(r->type), "externalLink") == 0)
            o->ext_links_gone = true; /* it never stays */
        if (r->external) {
            if (strcmp(type_tail(r->type), "hyperlink") == 0 && !o->hyperlinks_remove &&
                safe_link(r->target))
                continue;
            char *q = quote(r->target);
            if (strcmp(type_tail(r->type), "hyperlink") == 0)
                pkg_note(o, "hyperlink → %s", q);
            else
                pkg_note(o, "external relationship %s → %s", type_tail(r->type), q);
            g_free(q);
            remove_rel(o, src, r);
            continue;
        }
        what = rel_danger(r->type);
        if (r->to == NULL || r->to->is_rels || r->to == o->types) {
            char *q = quote(r->target);
            pkg_note(o, "%s relationship to a missing part %s",
                     what != NULL ? what : type_tail(r->type), q);
            g_free(q);
            remove_rel(o, src, r);
            continue;
        }
        if (r->to->removed || what != NULL)
            remove_rel(o, src, r);
    }
}

static bool kept_rel(const struct rel *r)
{
    return !r->removed && !r->external && r->to != NULL && !r->to->removed;
}

/* Parts that no kept relationship reaches from the package go. */
static void reach(struct ox *o, bool quiet)
{
    GPtrArray *todo = g_ptr_array_new();

    for (guint i = 0; i < o->parts->len; i++)
        ((struct part *)g_ptr_array_index(o->parts, i))->reached = false;
    g_ptr_array_add(todo, &o->pkg);
    while (todo->len > 0) {
        struct part *p = g_ptr_array_steal_index(todo, todo->len - 1);
        for (guint i = 0; p->rels != NULL && i < p->rels->len; i++) {
            struct rel *r = g_ptr_array_index(p->rels, i);
            if (kept_rel(r) && !r->to->reached) {
                r->to->reached = true;
                g_ptr_array_add(todo, r->to);
            }
        }
    }
    g_ptr_array_free(todo, TRUE);
    for (guint i = 0; i < o->parts->len; i++) {
        struct part *p = g_ptr_array_index(o->parts, i);
        if (!p->removed && !p->reached && !p->is_rels && p != o->types)
            remove_part(o, p, "unreferenced part", quiet);
    }
}

/* Drops the relationships of SRC whose type ends in TAIL, and the parts
 * they lead to once nothing else reaches them. */
static bool drop_rels_of_type(struct ox *o, struct part *src, const char *tail)
{
    bool any = false;

    for (guint i = 0; src->rels != NULL && i < src->rels->len; i++) {
        struct rel *r = g_ptr_array_index(src->rels, i);
        if (!r->removed && g_str_has_suffix(r->type, tail)) {
            remove_rel(o, src, r);
            any = true;
        }
    }
    return any;
}

/* ---------------------------------------------------------------- */
/* editing an XML part */

static void edit_note(struct edit *e, const char *fmt, ...) G_GNUC_PRINTF(2, 3);

static void edit_note(struct edit *e, const char *fmt, ...)
{
    va_list ap;
    char *text;

    if (e->notes >= NOTES_PER_PART) {
        e->skipped++;
        return;
    }
    e->notes++;
    va_start(ap, fmt);
    text = g_strdup_vprintf(fmt, ap);
    va_end(ap);
    mgw_note(e->o->w, "removed", "%s", text);
    g_free(text);
}

/* Unlinks N; it is freed with the others when the part is done. */
static void gone(struct edit *e, xmlNode *n)
{
    xmlUnlinkNode(n);
    g_hash_table_add(e->dead, n);
    e->changed = true;
}

static bool attached(const xmlNode *n)
{
    for (; n != NULL; n = n->parent)
        if (n->type == XML_DOCUMENT_NODE)
            return true;
    return false;
}

/* Puts N (unlinked) where OLD is; OLD goes. Namespaces N used from
 * declarations in OLD's subtree are declared again where needed. */
static void replace(struct edit *e, xmlNode *old, xmlNode *n)
{
    xmlReplaceNode(old, n);
    xmlReconciliateNs(e->doc, n);
    g_hash_table_add(e->dead, old);
    e->changed = true;
}

/* SpreadsheetML containers count their children. */
static void fix_count(xmlNode *p)
{
    char buf[24];
    unsigned n = 0;

    if (ns_group(p->ns) != NSG_X || xmlHasProp(p, (const xmlChar *)"count") == NULL)
        return;
    for (xmlNode *c = p->children; c != NULL; c = c->next)
        if (c->type == XML_ELEMENT_NODE)
            n++;
    g_snprintf(buf, sizeof buf, "%u", n);
    xmlSetProp(p, (const xmlChar *)"count", (const xmlChar *)buf);
}

/* After a child of P went: P goes too when it is a container left
 * empty, and so upwards; an mc:AlternateContent goes when all its
 * branches are empty. */
static void tidy_up(struct edit *e, xmlNode *p)
{
    for (int i = 0; p != NULL && p->type == XML_ELEMENT_NODE && i < 8; i++) {
        xmlNode *up = p->parent;
        if (is_el(p, "Choice", NSG_MC) || is_el(p, "Fallback", NSG_MC)) {
            if (has_element_child(p) || !is_el(up, "AlternateContent", NSG_MC))
                return;
            for (xmlNode *b = up->children; b != NULL; b = b->next)
                if (b->type == XML_ELEMENT_NODE && has_element_child(b))
                    return;
            p = up;
            up = p->parent;
        } else if (!in_table(p, containers, G_N_ELEMENTS(containers)) || has_element_child(p)) {
            fix_count(p);
            return;
        }
        gone(e, p);
        p = up;
    }
}

/* Does an attribute of N name a removed relationship? strip: remove
 * those attributes. */
static bool gone_attrs(struct edit *e, xmlNode *n, bool strip)
{
    bool hit = false;

    for (xmlAttr *a = n->properties, *next; a != NULL; a = next) {
        enum ns_group g = ns_group(a->ns);
        next = a->next;
        if (g == NSG_R || (g == NSG_O && strcmp((const char *)a->name, "relid") == 0)) {
            xmlChar *v = xmlNodeListGetString(n->doc, a->children, 1);
            bool h = v != NULL && g_hash_table_contains(e->p->gone, v);
            xmlFree(v);
            if (h && strip) {
                xmlRemoveProp(a);
                e->changed = true;
            }
            hit = hit || h;
        }
    }
    return hit;
}

/* w:object without its OLE object or control: a w:pict with the
 * object's VML picture, or its w:drawing, or nothing. */
static void object_to_picture(struct edit *e, xmlNode *obj)
{
    xmlNode *drawing, *up = obj->parent;

    for (xmlNode *c = obj->children, *next; c != NULL; c = next) {
        next = c->next;
        if (is_el(c, "OLEObject", NSG_O) || is_el(c, "control", NSG_W) ||
            is_el(c, "objectEmbed", NSG_W) || is_el(c, "objectLink", NSG_W) ||
            is_el(c, "movie", NSG_W))
            gone(e, c);
    }
    drawing = child_el(obj, "drawing", NSG_W);
    if (drawing != NULL) {
        xmlUnlinkNode(drawing);
        replace(e, obj, drawing);
        return;
    }
    if (child_el(obj, "shape", NSG_V) != NULL) {
        xmlNodeSetName(obj, (const xmlChar *)"pict");
        while (obj->properties != NULL)
            xmlRemoveProp(obj->properties);
        for (xmlNode *c = obj->children; c != NULL; c = c->next) {
            if (!is_el(c, "shape", NSG_V))
                continue;
            for (xmlAttr *a = c->properties, *next; a != NULL; a = next) {
                next = a->next;
                if (ns_group(a->ns) == NSG_O && strcmp((const char *)a->name, "ole") == 0)
                    xmlRemoveProp(a);
            }
        }
        e->changed = true;
        return;
    }
    gone(e, obj);
    tidy_up(e, up);
}

static void copy_attr(xmlNode *from, xmlNode *to, const char *name)
{
    xmlChar *v = xmlGetNoNsProp(from, (const xmlChar *)name);

    if (v != NULL)
        xmlSetProp(to, (const xmlChar *)name, v);
    xmlFree(v);
}

/* A p:oleObj graphic frame becomes the picture it carries as fallback
 * (with the frame's id, name and place), or goes. */
static void ole_to_picture(struct edit *e, xmlNode *ole)
{
    xmlNode *frame = ancestor(ole, "graphicFrame", NSG_P, 8), *pic, *gc, *pc, *sp, *up;

    if (frame == NULL) {
        up = ole->parent;
        gone(e, ole);
        tidy_up(e, up);
        return;
    }
    pic = find_el(frame, "pic", NSG_P);
    if (pic == NULL) {
        up = frame->parent;
        gone(e, frame);
        tidy_up(e, up);
        return;
    }
    xmlUnlinkNode(pic);
    gc = find_el(frame, "cNvPr", NSG_P);
    pc = find_el(pic, "cNvPr", NSG_P);
    if (gc != NULL && pc != NULL) {
        copy_attr(gc, pc, "id");
        copy_attr(gc, pc, "name");
    }
    replace(e, frame, pic); /* the frame stays allocated until the part is done */
    sp = child_el(pic, "spPr", NSG_P);
    if (sp != NULL && child_el(sp, "xfrm", NSG_A) == NULL &&
        child_el(frame, "xfrm", NSG_P) != NULL) {
        xmlNs *a = xmlSearchNsByHref(e->doc, sp, (const xmlChar *)NS_DRAWING);
        xmlNode *copy;
        if (a == NULL)
            a = xmlSearchNsByHref(e->doc, sp, (const xmlChar *)NS_DRAWING_STRICT);
        copy = a != NULL ? xmlDocCopyNode(child_el(frame, "xfrm", NSG_P), e->doc, 1) : NULL;
        if (copy != NULL) {
            xmlSetNs(copy, a);
            if (sp->children != NULL)
                xmlAddPrevSibling(sp->children, copy);
            else
                xmlAddChild(sp, copy);
        }
    }
}

/* ---------------------------------------------------------------- */
/* altChunk: HTML or plain text becomes paragraphs */

struct chunk {
    GPtrArray *paras;
    GString *cur;
    size_t total;
};

/* Text fit for XML, whitespace collapsed, trimmed. Owned. */
static char *clean_text(const char *s)
{
    char *valid = g_utf8_make_valid(s, -1);
    GString *out = g_string_new(NULL);
    bool space = false;

    for (const char *c = valid; *c != '\0'; c = g_utf8_next_char(c)) {
        gunichar u = g_utf8_get_char(c);
        if (u == ' ' || u == '\t' || u == '\r' || u == '\n' || u == '\f') {
            space = out->len > 0;
            continue;
        }
        if (u < 0x20 || u == 0xFFFE || u == 0xFFFF)
            continue;
        if (space)
            g_string_append_c(out, ' ');
        space = false;
        g_string_append_unichar(out, u);
    }
    g_free(valid);
    return g_string_free(out, FALSE);
}

static void chunk_flush(struct chunk *c)
{
    char *t = clean_text(c->cur->str);

    if (*t != '\0' && c->paras->len < 20000)
        g_ptr_array_add(c->paras, t);
    else
        g_free(t);
    g_string_truncate(c->cur, 0);
}

static void chunk_add(struct chunk *c, const char *s)
{
    size_t n = strlen(s);

    if (c->total >= CHUNK_TEXT_MAX)
        return;
    n = MIN(n, CHUNK_TEXT_MAX - c->total);
    g_string_append_len(c->cur, s, (gssize)n);
    c->total += n;
}

static bool html_block(const char *name)
{
    static const char *const blocks[] = {
        "p",  "div",     "br",      "h1",      "h2",         "h3",     "h4",     "h5",     "h6",
        "li", "tr",      "ul",      "ol",      "dl",         "dt",     "dd",     "table",  "pre",
        "hr", "section", "article", "address", "blockquote", "center", "header", "footer",
    };

    for (size_t i = 0; i < G_N_ELEMENTS(blocks); i++)
        if (g_ascii_strcasecmp(name, blocks[i]) == 0)
            return true;
    return false;
}

static bool html_hidden(const char *name)
{
    return g_ascii_strcasecmp(name, "script") == 0 || g_ascii_strcasecmp(name, "style") == 0 ||
           g_ascii_strcasecmp(name, "head") == 0 || g_ascii_strcasecmp(name, "noscript") == 0 ||
           g_ascii_strcasecmp(name, "template") == 0 || g_ascii_strcasecmp(name, "object") == 0;
}

static void html_text(struct chunk *c, const struct part *p)
{
    htmlDocPtr h;
    xmlNode *root, *n;

    if (p->len > INT_MAX)
        return;
    h = htmlReadMemory((const char *)p->data, (int)p->len, NULL, NULL,
                       HTML_PARSE_NONET | HTML_PARSE_NOERROR | HTML_PARSE_NOWARNING);
    if (h == NULL)
        return;
    root = xmlDocGetRootElement(h);
    n = root;
    while (n != NULL) {
        bool down = n->type == XML_ELEMENT_NODE && !html_hidden((const char *)n->name);
        if ((n->type == XML_TEXT_NODE || n->type == XML_CDATA_SECTION_NODE) && n->content != NULL)
            chunk_add(c, (const char *)n->content);
        else if (n->type == XML_ELEMENT_NODE && html_block((const char *)n->name))
            chunk_flush(c);
        else if (n->type == XML_ELEMENT_NODE)
            chunk_add(c, " ");
        if (down && n->children != NULL) {
            n = n->children;
            continue;
        }
        while (n != NULL) {
            if (n->type == XML_ELEMENT_NODE && html_block((const char *)n->name))
                chunk_flush(c);
            if (n == root) {
                n = NULL;
                break;
            }
            if (n->next != NULL) {
                n = n->next;
                break;
            }
            n = n->parent;
        }
    }
    xmlFreeDoc(h);
}

/* The paragraphs of an HTML or plain-text chunk, or NULL. Owned. */
static GPtrArray *chunk_text(const struct part *p)
{
    struct chunk c = {g_ptr_array_new_with_free_func(g_free), g_string_new(NULL), 0};
    bool html =
        strcmp(p->ctype, "text/html") == 0 || strcmp(p->ctype, "application/xhtml+xml") == 0;

    if (html) {
        html_text(&c, p);
    } else if (strcmp(p->ctype, "text/plain") == 0) {
        char *text = g_strndup((const char *)p->data, MIN(p->len, (size_t)CHUNK_TEXT_MAX));
        char **lines = g_strsplit(text, "\n", -1);
        for (char **l = lines; *l != NULL; l++) {
            chunk_add(&c, *l);
            chunk_flush(&c);
        }
        g_strfreev(lines);
        g_free(text);
    } else {
        g_string_free(c.cur, TRUE);
        g_ptr_array_free(c.paras, TRUE);
        return NULL;
    }
    chunk_flush(&c);
    g_string_free(c.cur, TRUE);
    return c.paras;
}

static void alt_chunk(struct edit *e, xmlNode *n)
{
    char *id = attr_in(n, "id", NSG_R);
    struct rel *r = id != NULL ? g_hash_table_lookup(e->p->gone, id) : NULL;
    GPtrArray *paras = NULL;

    g_free(id);
    if (r != NULL && r->to != NULL && r->to->ctype != NULL)
        paras = chunk_text(r->to);
    for (guint i = 0; paras != NULL && i < paras->len; i++) {
        xmlNode *p = xmlNewDocNode(e->doc, n->ns, (const xmlChar *)"p", NULL);
        xmlNode *run = xmlNewChild(p, n->ns, (const xmlChar *)"r", NULL);
        xmlNode *t = xmlNewTextChild(run, n->ns, (const xmlChar *)"t",
                                     (const xmlChar *)g_ptr_array_index(paras, i));
        xmlNodeSetSpacePreserve(t, 1);
        xmlAddPrevSibling(n, p);
    }
    if (paras != NULL)
        mgw_note(e->o->w, "converted", "imported document %s to %u paragraphs of plain text",
                 r->to->name, paras->len);
    if (paras != NULL)
        g_ptr_array_free(paras, TRUE);
    gone(e, n);
}

/* ---------------------------------------------------------------- */
/* references to removed relationships */

static void drop_ref(struct edit *e, xmlNode *n)
{
    xmlNode *up = n->parent, *mm;

    if (is_el(n, "OLEObject", NSG_O) || is_el(n, "control", NSG_W) ||
        is_el(n, "objectEmbed", NSG_W) || is_el(n, "objectLink", NSG_W)) {
        if (is_el(up, "object", NSG_W)) {
            object_to_picture(e, up);
        } else {
            gone(e, n);
            tidy_up(e, up);
        }
        return;
    }
    if (is_el(n, "oleObj", NSG_P)) {
        ole_to_picture(e, n);
        return;
    }
    if (is_el(n, "altChunk", NSG_W)) {
        alt_chunk(e, n);
        return;
    }
    if (is_el(n, "sheet", NSG_X)) {
        gone(e, n); /* workbook_fix() does the rest */
        return;
    }
    mm = is_el(n, "mailMerge", NSG_W) ? n : ancestor(n, "mailMerge", NSG_W, 3);
    if (mm != NULL) {
        gone(e, mm);
        return;
    }
    if (in_table(n, drop_whole, G_N_ELEMENTS(drop_whole))) {
        gone(e, n);
        tidy_up(e, up);
        return;
    }
    gone_attrs(e, n, true);
}

static bool sheet_gone(struct edit *e, const char *text)
{
    char *low = g_ascii_strdown(text, -1);
    bool hit = false;

    for (guint i = 0; i < e->sheet_names->len && !hit; i++) {
        const char *name = g_ptr_array_index(e->sheet_names, i);
        char **parts = g_strsplit(name, "'", -1);
        char *quoted = g_strjoinv("''", parts);
        char *plain = g_strdup_printf("%s!", name), *q = g_strdup_printf("'%s'!", quoted);
        hit = strstr(low, plain) != NULL || strstr(low, q) != NULL;
        g_strfreev(parts);
        g_free(quoted);
        g_free(plain);
        g_free(q);
    }
    g_free(low);
    return hit;
}

/* A defined name that belongs to, or refers to, a removed sheet goes;
 * the sheet positions of the others are renumbered. */
static bool name_gone(struct edit *e, xmlNode *d)
{
    char *lsid = attr(d, "localSheetId"), *text;
    guint64 v;
    bool hit = false;

    if (lsid != NULL && g_ascii_string_to_unsigned(lsid, 10, 0, G_MAXUINT32, &v, NULL)) {
        unsigned below = 0;
        for (guint i = 0; i < e->sheet_idx->len; i++) {
            guint idx = g_array_index(e->sheet_idx, guint, i);
            hit = hit || idx == v;
            below += idx < v;
        }
        if (!hit && below > 0) {
            char buf[24];
            g_snprintf(buf, sizeof buf, "%u", (unsigned)(v - below));
            xmlSetProp(d, (const xmlChar *)"localSheetId", (const xmlChar *)buf);
        }
    }
    g_free(lsid);
    if (hit)
        return true;
    text = text_of(d);
    hit = sheet_gone(e, text);
    g_free(text);
    return hit;
}

static enum mgw_status workbook_fix(struct edit *e, xmlNode *root)
{
    xmlNode *sheets = child_el(root, "sheets", NSG_X), *first = NULL, *names, *views;
    bool visible = false;

    for (xmlNode *s = sheets != NULL ? sheets->children : NULL; s != NULL; s = s->next) {
        char *state;
        if (!is_el(s, "sheet", NSG_X))
            continue;
        state = attr(s, "state");
        if (first == NULL)
            first = s;
        visible = visible || state == NULL || strcmp(state, "visible") == 0;
        g_free(state);
    }
    if (first == NULL) {
        mgw_reason(e->o->w, "no sheet is left once the macro sheets are removed");
        return MGW_FAIL;
    }
    if (!visible)
        xmlUnsetProp(first, (const xmlChar *)"state");
    names = child_el(root, "definedNames", NSG_X);
    for (xmlNode *d = names != NULL ? names->children : NULL, *next; d != NULL; d = next) {
        next = d->next;
        if (is_el(d, "definedName", NSG_X) && name_gone(e, d))
            gone(e, d);
    }
    if (names != NULL && !has_element_child(names))
        gone(e, names);
    views = child_el(root, "bookViews", NSG_X);
    for (xmlNode *v = views != NULL ? views->children : NULL; v != NULL; v = v->next) {
        if (is_el(v, "workbookView", NSG_X)) {
            xmlUnsetProp(v, (const xmlChar *)"activeTab");
            xmlUnsetProp(v, (const xmlChar *)"firstSheet");
        }
    }
    e->changed = true;
    return MGW_OK;
}

static enum mgw_status strip_refs(struct edit *e, xmlNode *root)
{
    GPtrArray *hits = g_ptr_array_new();
    enum mgw_status st = MGW_OK;

    for (xmlNode *n = root; n != NULL; n = next_node(n, root)) {
        if (n->type != XML_ELEMENT_NODE || n->properties == NULL || !gone_attrs(e, n, false))
            continue;
        g_ptr_array_add(hits, n);
        if (is_el(n, "sheet", NSG_X) && is_el(n->parent, "sheets", NSG_X)) {
            guint idx = 0;
            for (xmlNode *s = n->prev; s != NULL; s = s->prev)
                idx += is_el(s, "sheet", NSG_X);
            g_array_append_val(e->sheet_idx, idx);
            char *name = attr(n, "name");
            g_ptr_array_add(e->sheet_names, g_ascii_strdown(name != NULL ? name : "", -1));
            g_free(name);
        }
    }
    for (guint i = 0; i < hits->len; i++) {
        xmlNode *n = g_ptr_array_index(hits, i);
        if (attached(n))
            drop_ref(e, n);
    }
    g_ptr_array_free(hits, TRUE);
    if (e->sheet_idx->len > 0)
        st = workbook_fix(e, root);
    return st;
}

/* ---------------------------------------------------------------- */
/* Word fields */

struct field {
    xmlNode *begin;
    GPtrArray *code;   /* run content between begin and separate (or end) */
    GString *instr;    /* this field's own instruction text */
    bool nested_first; /* a nested field came before any own text */
    bool in_code;
};

static bool blank(const char *s)
{
    for (; *s != '\0'; s++)
        if (!g_ascii_isspace(*s) && *s != '"')
            return false;
    return true;
}

/* The keyword of an instruction when it makes the field go. */
static const char *bad_keyword(const char *instr)
{
    const char *s = instr, *end;

    while (*s != '\0' && (g_ascii_isspace(*s) || *s == '"'))
        s++;
    for (end = s; *end != '\0' && !g_ascii_isspace(*end) && *end != '\\' && *end != '"'; end++)
        ;
    for (size_t i = 0; i < G_N_ELEMENTS(bad_fields); i++)
        if ((size_t)(end - s) == strlen(bad_fields[i]) &&
            g_ascii_strncasecmp(s, bad_fields[i], (gsize)(end - s)) == 0)
            return bad_fields[i];
    return NULL;
}

static void field_free(struct field *f)
{
    g_ptr_array_free(f->code, TRUE);
    g_string_free(f->instr, TRUE);
    g_free(f);
}

/* A complex field ends (END is NULL when the part ends first); what is
 * to go is added to DOOMED (the walk is still on). */
static void field_end(struct edit *e, GPtrArray *doomed, struct field *f, xmlNode *end)
{
    const char *kw = f->nested_first ? "with a computed keyword" : bad_keyword(f->instr->str);

    if (kw != NULL) {
        char *q = quote(f->instr->str);
        edit_note(e, "field %s in %s: %s", kw, e->p->name, q);
        g_free(q);
        g_ptr_array_add(doomed, f->begin);
        g_ptr_array_extend(doomed, f->code, NULL, NULL);
        if (end != NULL)
            g_ptr_array_add(doomed, end);
    }
    field_free(f);
}

/* w:fldSimple: its children take its place. */
static void unwrap(struct edit *e, xmlNode *n)
{
    if (!attached(n))
        return; /* inside something that went */
    while (n->children != NULL) {
        xmlNode *c = n->children;
        xmlUnlinkNode(c);
        c = xmlAddPrevSibling(n, c);
        if (c != NULL && c->type == XML_ELEMENT_NODE)
            xmlReconciliateNs(e->doc, c);
    }
    gone(e, n);
}

static void fld_char(struct edit *e, GPtrArray *doomed, GPtrArray *stack, xmlNode *n, bool *deep)
{
    struct field *top = stack->len > 0 ? g_ptr_array_index(stack, stack->len - 1) : NULL;
    char *t = attr_in(n, "fldCharType", NSG_W);

    if (t == NULL) {
        return;
    } else if (strcmp(t, "begin") == 0) {
        if (stack->len >= FIELD_DEPTH) {
            *deep = true;
        } else {
            struct field *f = g_new0(struct field, 1);
            if (top != NULL && top->in_code && blank(top->instr->str))
                top->nested_first = true;
            f->begin = n;
            f->code = g_ptr_array_new();
            f->instr = g_string_new(NULL);
            f->in_code = true;
            g_ptr_array_add(stack, f);
        }
    } else if (strcmp(t, "separate") == 0) {
        if (top != NULL)
            top->in_code = false;
    } else if (strcmp(t, "end") == 0) {
        if (top != NULL)
            field_end(e, doomed, g_ptr_array_steal_index(stack, stack->len - 1), n);
    }
    g_free(t);
}

static enum mgw_status word_fields(struct edit *e, xmlNode *root)
{
    GPtrArray *stack = g_ptr_array_new(), *simple = g_ptr_array_new(), *doomed = g_ptr_array_new();
    bool deep = false;

    for (xmlNode *n = root; n != NULL && !deep; n = next_node(n, root)) {
        struct field *top;
        if (n->type != XML_ELEMENT_NODE)
            continue;
        if (is_el(n, "fldSimple", NSG_W)) {
            char *in = attr_in(n, "instr", NSG_W);
            const char *kw = in != NULL ? bad_keyword(in) : NULL;
            if (kw != NULL) {
                char *q = quote(in);
                edit_note(e, "field %s in %s: %s", kw, e->p->name, q);
                g_free(q);
                g_ptr_array_add(simple, n);
            }
            g_free(in);
            continue;
        }
        if (!is_el(n->parent, "r", NSG_W) || is_el(n, "rPr", NSG_W))
            continue;
        for (guint i = 0; i < stack->len; i++) {
            struct field *f = g_ptr_array_index(stack, i);
            if (f->in_code)
                g_ptr_array_add(f->code, n);
        }
        top = stack->len > 0 ? g_ptr_array_index(stack, stack->len - 1) : NULL;
        if (is_el(n, "fldChar", NSG_W)) {
            fld_char(e, doomed, stack, n, &deep);
        } else if (is_el(n, "instrText", NSG_W) || is_el(n, "delInstrText", NSG_W)) {
            char *t = text_of(n);
            if (top == NULL || !top->in_code) {
                /* outside any field code: means nothing, goes */
                char *q = quote(t);
                edit_note(e, "stray field instruction in %s: %s", e->p->name, q);
                g_free(q);
                g_ptr_array_add(doomed, n);
            } else if (top->instr->len < 4096) {
                g_string_append(top->instr, t);
            }
            g_free(t);
        }
    }
    while (stack->len > 0)
        field_end(e, doomed, g_ptr_array_steal_index(stack, stack->len - 1), NULL);
    for (guint i = 0; !deep && i < doomed->len; i++)
        gone(e, g_ptr_array_index(doomed, i));
    for (guint i = simple->len; !deep && i > 0; i--)
        unwrap(e, g_ptr_array_index(simple, i - 1));
    g_ptr_array_free(stack, TRUE);
    g_ptr_array_free(simple, TRUE);
    g_ptr_array_free(doomed, TRUE);
    if (deep) {
        mgw_reason(e->o->w, "fields nested more than %d deep in %s", FIELD_DEPTH, e->p->name);
        return MGW_FAIL;
    }
    return MGW_OK;
}

/* Word online videos: a web page shown in a frame. */
static void word_video(struct edit *e, xmlNode *root)
{
    GPtrArray *hits = g_ptr_array_new();

    for (xmlNode *n = root; n != NULL; n = next_node(n, root))
        if (is_el(n, "webVideoPr", NSG_ANY))
            g_ptr_array_add(hits, n);
    for (guint i = 0; i < hits->len; i++) {
        xmlNode *n = g_ptr_array_index(hits, i);
        if (!attached(n))
            continue;
        edit_note(e, "online video in %s", e->p->name);
        gone(e, is_el(n->parent, "ext", NSG_ANY) ? n->parent : n);
    }
    g_ptr_array_free(hits, TRUE);
}

/* Shape actions that run a macro, a program or an OLE verb. */
static void shape_actions(struct edit *e, xmlNode *root)
{
    static const char *const bad[] = {"ppaction://macro", "ppaction://program", "ppaction://ole"};
    GPtrArray *hits = g_ptr_array_new();

    for (xmlNode *n = root; n != NULL; n = next_node(n, root)) {
        char *action;
        if (!is_el(n, "hlinkClick", NSG_A) && !is_el(n, "hlinkHover", NSG_A) &&
            !is_el(n, "hlinkMouseOver", NSG_A))
            continue;
        action = attr(n, "action");
        for (size_t i = 0; action != NULL && i < G_N_ELEMENTS(bad); i++) {
            if (g_ascii_strncasecmp(action, bad[i], strlen(bad[i])) == 0) {
                char *q = quote(action);
                edit_note(e, "action %s in %s", q, e->p->name);
                g_free(q);
                g_ptr_array_add(hits, n);
                break;
            }
        }
        g_free(action);
    }
    for (guint i = 0; i < hits->len; i++)
        gone(e, g_ptr_array_index(hits, i));
    g_ptr_array_free(hits, TRUE);
}

/* ---------------------------------------------------------------- */
/* Excel formulas */

/* A DDE call (a '|' outside quotes), or with EXT a reference to an
 * external workbook ([1]...). The kind, or NULL. */
static const char *bad_formula(const char *f, bool ext)
{
    bool dq = false, sq = false;

    for (const char *p = f; *p != '\0'; p++) {
        if (*p == '"' && !sq) {
            dq = !dq;
        } else if (dq) {
            continue;
        } else if (*p == '\'') {
            sq = !sq;
        } else if (*p == '|' && !sq) {
            return "DDE formula";
        } else if (ext && *p == '[' && g_ascii_isdigit(p[1])) {
            const char *q = p + 1;
            while (g_ascii_isdigit(*q))
                q++;
            if (*q == ']')
                return "external-link formula";
        }
    }
    return NULL;
}

static bool formula_el(const xmlNode *n)
{
    static const char *const names[] = {
        "f",
        "definedName",
        "formula",
        "formula1",
        "formula2",
        "calculatedColumnFormula",
        "totalsRowFormula",
    };
    enum ns_group g = ns_group(n->ns);

    if (n->type != XML_ELEMENT_NODE)
        return false;
    if (g == NSG_XM)
        return strcmp((const char *)n->name, "f") == 0;
    if (g != NSG_X)
        return false;
    for (size_t i = 0; i < G_N_ELEMENTS(names); i++)
        if (strcmp((const char *)n->name, names[i]) == 0)
            return true;
    return false;
}

/* A cell that lost its formula: a formula string result becomes an
 * inline string. */
static void cell_without_formula(struct edit *e, xmlNode *cell)
{
    char *t = attr(cell, "t");
    xmlNode *v;

    if (t != NULL && strcmp(t, "str") == 0) {
        v = child_el(cell, "v", NSG_X);
        if (v != NULL) {
            char *text = text_of(v);
            xmlNode *is = xmlNewDocNode(e->doc, v->ns, (const xmlChar *)"is", NULL);
            xmlNode *tt = xmlNewTextChild(is, v->ns, (const xmlChar *)"t", (const xmlChar *)text);
            xmlNodeSetSpacePreserve(tt, 1);
            replace(e, v, is);
            xmlSetProp(cell, (const xmlChar *)"t", (const xmlChar *)"inlineStr");
            g_free(text);
        } else {
            xmlUnsetProp(cell, (const xmlChar *)"t");
        }
    }
    g_free(t);
}

/* WHY is NULL for the dependants of a removed shared formula. */
static void drop_formula(struct edit *e, xmlNode *n, const char *why)
{
    xmlNode *up = n->parent, *target = n;
    char *text = why != NULL ? text_of(n) : NULL, *q = text != NULL ? quote(text) : NULL;

    e->o->formulas_gone = true;
    if (is_el(n, "f", NSG_X)) {
        char *ref = up != NULL ? attr(up, "r") : NULL;
        if (why != NULL)
            edit_note(e, "%s in %s %s: %s", why, e->p->name, ref != NULL ? ref : "", q);
        g_free(ref);
        gone(e, n);
        if (is_el(up, "c", NSG_X))
            cell_without_formula(e, up);
    } else {
        if (is_el(n, "definedName", NSG_X)) {
            char *name = attr(n, "name");
            edit_note(e, "%s in the defined name %s: %s", why, name != NULL ? name : "", q);
            g_free(name);
        } else {
            edit_note(e, "%s in %s: %s", why, e->p->name, q);
            target = ancestor(n, "cfRule", NSG_ANY, 3);
            if (target == NULL)
                target = ancestor(n, "dataValidation", NSG_ANY, 3);
            if (target == NULL)
                target = n;
            if (is_el(n, "calculatedColumnFormula", NSG_X) || is_el(n, "totalsRowFormula", NSG_X))
                target = n;
        }
        up = target->parent;
        gone(e, target);
        tidy_up(e, up);
    }
    g_free(text);
    g_free(q);
}

static void excel_formulas(struct edit *e, xmlNode *root)
{
    GPtrArray *hits = g_ptr_array_new(), *whys = g_ptr_array_new();
    GHashTable *shared = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
    GHashTable *seen = g_hash_table_new(NULL, NULL);

    for (xmlNode *n = root; n != NULL; n = next_node(n, root)) {
        char *text;
        const char *why;
        if (!formula_el(n))
            continue;
        text = text_of(n);
        why = bad_formula(text, e->o->ext_links_gone);
        g_free(text);
        if (why == NULL)
            continue;
        g_ptr_array_add(hits, n);
        g_ptr_array_add(whys, (gpointer)why);
        g_hash_table_add(seen, n);
        if (is_el(n, "f", NSG_X)) {
            char *t = attr(n, "t"), *si = attr(n, "si");
            if (t != NULL && si != NULL && strcmp(t, "shared") == 0)
                g_hash_table_add(shared, g_steal_pointer(&si));
            g_free(t);
            g_free(si);
        }
    }
    for (xmlNode *n = root; g_hash_table_size(shared) > 0 && n != NULL; n = next_node(n, root)) {
        char *t, *si;
        if (!is_el(n, "f", NSG_X) || g_hash_table_contains(seen, n))
            continue;
        t = attr(n, "t");
        si = attr(n, "si");
        if (t != NULL && si != NULL && strcmp(t, "shared") == 0 &&
            g_hash_table_contains(shared, si)) {
            g_ptr_array_add(hits, n);
            g_ptr_array_add(whys, NULL);
        }
        g_free(t);
        g_free(si);
    }
    for (guint i = 0; i < hits->len; i++) {
        xmlNode *n = g_ptr_array_index(hits, i);
        if (attached(n))
            drop_formula(e, n, g_ptr_array_index(whys, i));
    }
    g_ptr_array_free(hits, TRUE);
    g_ptr_array_free(whys, TRUE);
    g_hash_table_unref(shared);
    g_hash_table_unref(seen);
}

/* ---------------------------------------------------------------- */
/* the parts, one by one */

static bool has_gone(const struct part *p)
{
    return p->gone != NULL && g_hash_table_size(p->gone) > 0;
}

/* Whether a kept XML part may hold something to remove (a cheap byte
 * search first: names cannot be written with character references). */
static bool wants_scan(struct ox *o, const struct part *p)
{
    if (odd_encoding(p) || has_bytes(p, "ppaction"))
        return true;
    switch (o->fmt->fam) {
    case FAM_WORD:
        return has_bytes(p, "instr") || has_bytes(p, "webVideoPr");
    case FAM_EXCEL:
        return has_bytes(p, "|") || has_bytes(p, "&#") || (o->ext_links_gone && has_bytes(p, "["));
    case FAM_PPT:
        break;
    }
    return false;
}

/* Whether an attribute of the part may name a removed relationship: its
 * Id appears in the bytes, or a character reference could spell it (a
 * DOCTYPE, and so any other entity, is refused). A "no" spares the
 * parse that looks at every attribute. */
static bool may_name_gone(const struct part *p)
{
    GHashTableIter it;
    gpointer id;

    if (odd_encoding(p) || has_bytes(p, "&#"))
        return true;
    g_hash_table_iter_init(&it, p->gone);
    while (g_hash_table_iter_next(&it, &id, NULL))
        if (has_bytes(p, id))
            return true;
    return false;
}

static enum mgw_status edit_part(struct ox *o, struct part *p, xmlDoc *doc)
{
    struct edit e;
    xmlNode *root = xmlDocGetRootElement(doc);
    enum mgw_status st = MGW_OK;
    GHashTableIter it;
    gpointer node;

    memset(&e, 0, sizeof e);
    e.o = o;
    e.p = p;
    e.doc = doc;
    e.dead = g_hash_table_new(NULL, NULL);
    e.sheet_idx = g_array_new(FALSE, FALSE, sizeof(guint));
    e.sheet_names = g_ptr_array_new_with_free_func(g_free);
    if (has_gone(p))
        st = strip_refs(&e, root);
    if (st == MGW_OK && o->fmt->fam == FAM_WORD)
        st = word_fields(&e, root);
    if (st == MGW_OK && o->fmt->fam == FAM_WORD)
        word_video(&e, root);
    if (st == MGW_OK && o->fmt->fam == FAM_EXCEL)
        excel_formulas(&e, root);
    if (st == MGW_OK)
        shape_actions(&e, root);
    g_hash_table_iter_init(&it, e.dead);
    while (g_hash_table_iter_next(&it, &node, NULL))
        xmlFreeNode(node);
    if (e.skipped > 0)
        mgw_note(o->w, "removed", "%u more in %s", e.skipped, p->name);
    if (st == MGW_OK && e.changed) {
        o->modified = true;
        if (!dump_doc(o, p, doc))
            st = MGW_FAIL;
    }
    g_hash_table_unref(e.dead);
    g_array_free(e.sheet_idx, TRUE);
    g_ptr_array_free(e.sheet_names, TRUE);
    return st;
}

/* Edits the parts that need it; checks the other XML parts. A part that
 * lost relationships is first checked without a tree (the tree and its
 * serialisation were most of the time of a large document): it is
 * edited only when an attribute may name one of them, or when the
 * byte search says so. */
static enum mgw_status edit_parts(struct ox *o)
{
    for (guint i = 0; i < o->parts->len; i++) {
        struct part *p = g_ptr_array_index(o->parts, i);
        bool xml, vml, edit;
        if (p->removed || p->is_rels || p == o->types)
            continue;
        xml = is_xml_type(p->ctype);
        vml = is_vml(p);
        edit = xml && wants_scan(o, p);
        if (!edit && (xml || vml) && has_gone(p) && !may_name_gone(p)) {
            g_ptr_array_add(o->checks, p); /* no attribute can name them */
            continue;
        }
        if (!edit && (xml || vml) && has_gone(p)) {
            if (xml_run(o, p->name, p->data, p->len, false, p->gone, &edit) == NULL)
                return MGW_FAIL;
            if (!edit)
                continue;
        }
        if (edit) {
            xmlDoc *doc = xml_parse(o, p->name, p->data, p->len, true);
            enum mgw_status st;
            if (doc == NULL)
                return MGW_FAIL;
            st = edit_part(o, p, doc);
            xmlFreeDoc(doc);
            if (st != MGW_OK)
                return st;
        } else if (xml) {
            g_ptr_array_add(o->checks, p); /* checked while the package is written */
        }
    }
    return MGW_OK;
}

/* ---------------------------------------------------------------- */
/* putting the package together */

static bool rels_kept(const struct ox *o, const struct part *rp)
{
    const struct part *owner = rp->owner;

    if (owner == NULL || (owner != &o->pkg && owner->removed) || owner->rels == NULL)
        return false;
    for (guint i = 0; i < owner->rels->len; i++)
        if (!((const struct rel *)g_ptr_array_index(owner->rels, i))->removed)
            return true;
    return false;
}

static bool part_kept(const struct ox *o, const struct part *p)
{
    return !p->removed && (!p->is_rels || rels_kept(o, p));
}

static enum mgw_status finish_rels(struct ox *o)
{
    for (guint i = 0; i < o->parts->len; i++) {
        struct part *p = g_ptr_array_index(o->parts, i);
        if (!p->is_rels || p->removed)
            continue;
        if (!rels_kept(o, p))
            p->removed = true; /* bookkeeping: no note */
        else if (p->owner->rels_changed && !dump_doc(o, p, p->owner->rels_doc))
            return MGW_FAIL;
    }
    return MGW_OK;
}

static xmlNode *add_type(xmlNode *root, const char *el, const char *key, const char *kv,
                         const char *type)
{
    xmlNode *n = xmlNewChild(root, root->ns, (const xmlChar *)el, NULL);

    xmlNewProp(n, (const xmlChar *)key, (const xmlChar *)kv);
    xmlNewProp(n, (const xmlChar *)"ContentType", (const xmlChar *)type);
    return n;
}

/* [Content_Types].xml: no Override for a part that is not there, no
 * Default for what was removed, the main part's macro-free type. */
static enum mgw_status finish_types(struct ox *o)
{
    xmlNode *root = xmlDocGetRootElement(o->types_doc);
    bool changed = o->types_dirty, main_seen = false, rels_default = false, any_rels = false;

    for (guint i = 0; i < o->parts->len; i++) {
        struct part *p = g_ptr_array_index(o->parts, i);
        any_rels = any_rels || (p->is_rels && !p->removed);
    }
    for (xmlNode *c = root->children, *next; c != NULL; c = next) {
        next = c->next;
        if (is_el(c, "Override", NSG_CT)) {
            char *pn = attr(c, "PartName"), *t = attr(c, "ContentType");
            struct part *p = pn != NULL ? find_part(o, pn[0] == '/' ? pn + 1 : pn) : NULL;
            if (p == NULL || p == o->types || !part_kept(o, p)) {
                xmlUnlinkNode(c);
                xmlFreeNode(c);
                changed = true;
            } else if (p == o->main) {
                main_seen = true;
                if (t == NULL || g_ascii_strcasecmp(t, o->fmt->safe_type) != 0) {
                    xmlSetProp(c, (const xmlChar *)"ContentType",
                               (const xmlChar *)o->fmt->safe_type);
                    changed = true;
                }
            }
            g_free(pn);
            g_free(t);
        } else if (is_el(c, "Default", NSG_CT)) {
            char *ext = attr(c, "Extension"), *t = attr(c, "ContentType");
            char *low = t != NULL ? g_ascii_strdown(t, -1) : NULL;
            if (low != NULL && type_danger(low) != NULL) {
                xmlUnlinkNode(c);
                xmlFreeNode(c);
                changed = true;
            } else if (ext != NULL && g_ascii_strcasecmp(ext, "rels") == 0) {
                rels_default = true;
            }
            g_free(ext);
            g_free(t);
            g_free(low);
        }
    }
    if (!main_seen && strcmp(o->main->ctype, o->fmt->safe_type) != 0) {
        char *pn = g_strdup_printf("/%s", o->main->name);
        add_type(root, "Override", "PartName", pn, o->fmt->safe_type);
        g_free(pn);
        changed = true;
    }
    if (any_rels && !rels_default) {
        add_type(root, "Default", "Extension", "rels",
                 "application/vnd.openxmlformats-package.relationships+xml");
        changed = true;
    }
    if (strcmp(o->fmt->main_type, o->fmt->safe_type) != 0)
        mgw_note(o->w, "converted", "macro-enabled %s to %s (content type of %s)", o->fmt->from,
                 o->fmt->ext, o->main->name);
    if (changed) {
        o->modified = true;
        if (!dump_doc(o, o->types, o->types_doc))
            return MGW_FAIL;
    }
    return MGW_OK;
}

/* What the result must be; a failure here is a bug in this file. */
static enum mgw_status verify(struct ox *o)
{
    for (guint i = 0; i < o->parts->len; i++) {
        struct part *p = g_ptr_array_index(o->parts, i);
        struct part *src = p->is_rels ? p->owner : p;
        if (!part_kept(o, p) || p == o->types)
            continue;
        if (!p->is_rels &&
            (!p->reached || p->ctype == NULL || (p != o->main && type_danger(p->ctype) != NULL))) {
            mgw_reason(o->w, "internal error: %s kept unchecked", p->name);
            return MGW_FAIL;
        }
        for (guint k = 0; src->rels != NULL && k < src->rels->len; k++) {
            const struct rel *r = g_ptr_array_index(src->rels, k);
            if (!r->removed && !r->external && (r->to == NULL || !part_kept(o, r->to))) {
                mgw_reason(o->w, "internal error: %s keeps a dangling relationship", p->name);
                return MGW_FAIL;
            }
        }
    }
    return MGW_OK;
}

static enum mgw_status disarm(struct ox *o)
{
    enum mgw_status st;

    classify_parts(o);
    each_source(o, mark_targets);
    if (o->main->removed) {
        mgw_reason(o->w, "the main part %s is active content", o->main->name);
        return MGW_FAIL;
    }
    each_source(o, decide_rels);
    reach(o, false);
    st = edit_parts(o);
    if (st != MGW_OK)
        return st;
    if (o->formulas_gone && drop_rels_of_type(o, o->main, "/calcChain"))
        mgw_note(o->w, "info", "calculation chain dropped (Excel rebuilds it)");
    if (o->modified && drop_rels_of_type(o, &o->pkg, "/digital-signature/origin"))
        mgw_note(o->w, "removed", "digital signature (no longer valid)");
    reach(o, true);
    if (o->skipped > 0)
        mgw_note(o->w, "removed", "%u more parts or relationships", o->skipped);
    st = finish_rels(o);
    if (st == MGW_OK)
        st = finish_types(o);
    if (st == MGW_OK)
        st = verify(o);
    return st;
}

/* ---------------------------------------------------------------- */
/* writing */

/*
 * The zip is written here rather than by libarchive: its writer deflates
 * with zlib, and at level 1 that was the larger half of the time of a
 * large document (a 3.5 MB main part: 43 ms, where libdeflate takes 19 ms
 * and gives a smaller stream). What is written is a plain zip: for each
 * member a local header, the deflated data and a data descriptor, then
 * the central directory (no extra field, no zip64: a package past 4 GiB
 * or 65,534 members fails, 65,535 being zip64's mark; max-total and
 * max-members are far below). Every member is
 * dated 2000-01-01 00:00 and marked as a regular file of mode 0644;
 * names with bytes past ASCII get the UTF-8 flag (bit 11).
 * The sizes and CRC go in a data descriptor (bit 3), as libarchive and
 * Office write them, although they are known before the data: libclamav
 * takes every later local header that carries its sizes for a zip of
 * its own, embedded in the package, and scans that member a second
 * time (the output of a large document took twice as long to scan).
 * The package is built in memory and sent only once every check has
 * passed (write_and_check): a run that fails sends no output. It is
 * about the size of the item, already held in memory.
 */
#define ZIP_LOCAL      0x04034b50u
#define ZIP_DESCRIPTOR 0x08074b50u
#define ZIP_CENTRAL    0x02014b50u
#define ZIP_END        0x06054b50u
#define ZIP_VERSION    20u                       /* 2.0: deflate */
#define ZIP_MADE_BY    ((3u << 8) | ZIP_VERSION) /* Unix */
#define ZIP_SIZES_LATE 0x0008u                   /* general purpose flag bit 3 */
#define ZIP_UTF8       0x0800u                   /* general purpose flag bit 11 */
#define ZIP_DEFLATED   8u
#define ZIP_DOS_DATE   ((20u << 9) | (1u << 5) | 1u)        /* 2000-01-01, every member's date */
#define ZIP_FILE_MODE  ((uint32_t)(0100000u | 0644u) << 16) /* S_IFREG | 0644 */
#define ZIP_LOCAL_LEN  30u
#define ZIP_DESC_LEN   16u
#define ZIP_DIR_LEN    46u
#define ZIP_END_LEN    22u

struct zip_out {
    GByteArray *zip;
    GByteArray *dir; /* central directory records */
    guint count;
    struct libdeflate_compressor *c;
};

static void put16(unsigned char *b, unsigned v)
{
    b[0] = (unsigned char)(v & 0xFF);
    b[1] = (unsigned char)((v >> 8) & 0xFF);
}

static void put32(unsigned char *b, uint32_t v)
{
    put16(b, v & 0xFFFF);
    put16(b + 2, v >> 16);
}

static bool ascii_only(const char *s)
{
    for (; *s != '\0'; s++)
        if ((unsigned char)*s >= 0x80)
            return false;
    return true;
}

/* Appends member NAME with content D. False when the zip would need
 * zip64 or more memory than a GByteArray holds. */
static bool zip_add(struct zip_out *z, const char *name, const unsigned char *d, size_t len)
{
    size_t nlen = strlen(name), bound = libdeflate_deflate_compress_bound(z->c, len), clen;
    guint at = z->zip->len;
    unsigned flags = ZIP_SIZES_LATE | (ascii_only(name) ? 0 : ZIP_UTF8);
    uint32_t crc;
    unsigned char *h, *c;

    if (nlen > 0xFFFF || z->count >= 0xFFFE || len >= 0xFFFFFFFFu || at >= 0xFFFFFFFFu ||
        (uint64_t)at + ZIP_LOCAL_LEN + nlen + bound + ZIP_DESC_LEN > G_MAXUINT ||
        (uint64_t)z->dir->len + ZIP_DIR_LEN + nlen > G_MAXUINT)
        return false;
    crc = (uint32_t)libdeflate_crc32(0, d, len);
    g_byte_array_set_size(z->zip, (guint)(at + ZIP_LOCAL_LEN + nlen + bound));
    clen =
        libdeflate_deflate_compress(z->c, d, len, z->zip->data + at + ZIP_LOCAL_LEN + nlen, bound);
    if (clen == 0 || clen >= 0xFFFFFFFFu) {
        g_byte_array_set_size(z->zip, at);
        return false;
    }
    g_byte_array_set_size(z->zip, (guint)(at + ZIP_LOCAL_LEN + nlen + clen + ZIP_DESC_LEN));
    h = z->zip->data + at;
    put32(h, ZIP_LOCAL);
    put16(h + 4, ZIP_VERSION);
    put16(h + 6, flags);
    put16(h + 8, ZIP_DEFLATED);
    put16(h + 10, 0); /* 00:00:00 */
    put16(h + 12, ZIP_DOS_DATE);
    memset(h + 14, 0, 12); /* CRC and sizes: in the descriptor */
    put16(h + 26, (unsigned)nlen);
    put16(h + 28, 0); /* no extra field */
    memcpy(h + ZIP_LOCAL_LEN, name, nlen);
    h += ZIP_LOCAL_LEN + nlen + clen;
    put32(h, ZIP_DESCRIPTOR);
    put32(h + 4, crc);
    put32(h + 8, (uint32_t)clen);
    put32(h + 12, (uint32_t)len);

    g_byte_array_set_size(z->dir, z->dir->len + ZIP_DIR_LEN + (guint)nlen);
    c = z->dir->data + z->dir->len - ZIP_DIR_LEN - nlen;
    put32(c, ZIP_CENTRAL);
    put16(c + 4, ZIP_MADE_BY);
    put16(c + 6, ZIP_VERSION);
    put16(c + 8, flags);
    put16(c + 10, ZIP_DEFLATED);
    put16(c + 12, 0);
    put16(c + 14, ZIP_DOS_DATE);
    put32(c + 16, crc);
    put32(c + 20, (uint32_t)clen);
    put32(c + 24, (uint32_t)len);
    put16(c + 28, (unsigned)nlen);
    put16(c + 30, 0); /* extra field */
    put16(c + 32, 0); /* comment */
    put16(c + 34, 0); /* disk */
    put16(c + 36, 0); /* internal attributes */
    put32(c + 38, ZIP_FILE_MODE);
    put32(c + 42, at);
    memcpy(c + ZIP_DIR_LEN, name, nlen);
    z->count++;
    return true;
}

static bool zip_finish(struct zip_out *z)
{
    guint at = z->zip->len;
    unsigned char *e;

    if (at >= 0xFFFFFFFFu || (uint64_t)at + z->dir->len + ZIP_END_LEN > G_MAXUINT)
        return false;
    g_byte_array_append(z->zip, z->dir->data, z->dir->len);
    g_byte_array_set_size(z->zip, z->zip->len + ZIP_END_LEN);
    e = z->zip->data + z->zip->len - ZIP_END_LEN;
    put32(e, ZIP_END);
    put16(e + 4, 0); /* this disk */
    put16(e + 6, 0); /* the directory's disk */
    put16(e + 8, z->count);
    put16(e + 10, z->count);
    put32(e + 12, z->dir->len);
    put32(e + 16, at);
    put16(e + 20, 0); /* comment */
    return true;
}

static bool write_member(struct zip_out *z, const struct part *p)
{
    return p->out != NULL ? zip_add(z, p->name, p->out, p->out_len)
                          : zip_add(z, p->name, p->data, p->len);
}

/* The output's name: a macro-enabled extension becomes the format's. */
static char *out_name(struct ox *o)
{
    const char *name = mgw_option(o->w, "name"), *dot;

    if (name == NULL)
        return NULL;
    dot = strrchr(name, '.');
    if (dot != NULL && strchr(dot, '/') == NULL)
        for (size_t i = 0; i < G_N_ELEMENTS(renames); i++)
            if (g_ascii_strcasecmp(dot + 1, renames[i][0]) == 0)
                return g_strdup_printf("%.*s.%s", (int)(dot - name), name, o->fmt->ext);
    return g_strdup(name);
}

static enum mgw_status write_package(struct ox *o, GByteArray *zip)
{
    /* level 1: a higher level was most of the time of a large document,
     * for 10-20% smaller output */
    struct zip_out z = {zip, g_byte_array_new(), 0, libdeflate_alloc_compressor(1)};
    bool ok = z.c != NULL && write_member(&z, o->types);

    for (guint i = 0; ok && i < o->parts->len; i++) {
        struct part *p = g_ptr_array_index(o->parts, i);
        if (p != o->types && part_kept(o, p))
            ok = write_member(&z, p);
    }
    ok = ok && zip_finish(&z);
    if (!ok)
        mgw_reason(o->w, "cannot write the package: %s",
                   z.c == NULL ? "out of memory" : "too large for a zip without zip64");
    if (z.c != NULL)
        libdeflate_free_compressor(z.c);
    g_byte_array_free(z.dir, TRUE);
    return ok ? MGW_OK : MGW_FAIL;
}

static enum mgw_status send_package(struct ox *o, const GByteArray *zip)
{
    char *name = out_name(o);
    bool ok = mgw_out_begin(o->w, name, o->fmt->mime, 0) &&
              mgw_out_write(o->w, zip->data, zip->len) && mgw_out_end(o->w);

    if (!ok)
        mgw_reason(o->w, "cannot write the package: output closed");
    g_free(name);
    return ok ? MGW_OK : MGW_FAIL;
}

/*
 * Checks made ahead. Every XML part must be well-formed and without a
 * DOCTYPE, and most of them are only checked (edit_parts), which on a
 * large document costs about as much as reading the package and writing
 * it again (libxml2's parse of text in Japanese is slow). So the check
 * is made in a second thread from the moment each member has been read:
 * read_member hands over the members that look like XML (their first
 * byte, after a UTF-8 byte order mark and white space, is '<'), before
 * their content types are known. The thread writes only the part's
 * check and check_why, which the handler's thread reads after the join;
 * a part's name and bytes do not change once read. A part to check
 * that the thread did not check (UTF-16 XML, say) is checked at the
 * join; a check of a part that is removed or edited is wasted, on the
 * other core. When the handler fails before writing, the thread stops
 * at the next start tag.
 */
enum { CHECK_NONE, CHECK_OK, CHECK_FAILED };

static gpointer ahead_run(gpointer u)
{
    struct ox *o = u;

    for (;;) {
        struct part *p = g_async_queue_pop(o->ahead_q);
        char *why = NULL;
        if (p == NULL || (gpointer)p == (gpointer)o)
            break; /* the end mark */
        if (g_atomic_int_get(&o->ahead_stop) != 0)
            continue;
        if (xml_run_why(p->name, p->data, p->len, false, NULL, NULL, &o->ahead_stop, &why) !=
            NULL) {
            p->check = CHECK_OK;
            g_free(why);
        } else {
            p->check = CHECK_FAILED;
            p->check_why = why != NULL ? why : g_strdup_printf("%s: XML parse failed", p->name);
        }
    }
    return NULL;
}

static void ahead_start(struct ox *o)
{
    o->ahead_q = g_async_queue_new();
    o->ahead = g_thread_try_new("ooxml-check", ahead_run, o, NULL);
    if (o->ahead == NULL) {
        g_async_queue_unref(o->ahead_q);
        o->ahead_q = NULL; /* no thread: every check is made at the join */
    }
}

static bool looks_xml(const struct part *p)
{
    size_t i = p->len >= 3 && memcmp(p->data, "\xEF\xBB\xBF", 3) == 0 ? 3 : 0;

    while (i < p->len &&
           (p->data[i] == ' ' || p->data[i] == '\t' || p->data[i] == '\r' || p->data[i] == '\n'))
        i++;
    return i < p->len && p->data[i] == '<';
}

/* A member just read: to the thread if it may be an XML part to check. */
static void ahead_offer(struct ox *o, struct part *p)
{
    if (o->ahead_q == NULL || o->ahead_closed || strcmp(p->key, "[content_types].xml") == 0 ||
        is_rels_name(p->name) || !looks_xml(p))
        return;
    g_async_queue_push(o->ahead_q, p);
}

/* No more members: the end mark. */
static void ahead_close(struct ox *o)
{
    if (o->ahead_q != NULL && !o->ahead_closed)
        g_async_queue_push(o->ahead_q, o);
    o->ahead_closed = true;
}

/* Waits for the thread; with GIVE_UP, its results are not wanted. */
static void ahead_join(struct ox *o, bool give_up)
{
    if (o->ahead == NULL)
        return;
    if (give_up)
        g_atomic_int_set(&o->ahead_stop, 1);
    ahead_close(o);
    g_thread_join(o->ahead);
    o->ahead = NULL;
    g_async_queue_unref(o->ahead_q);
    o->ahead_q = NULL;
}

/* Writes the package while the thread finishes its checks, then makes
 * sure every part to check passed; only then sends the package. */
static enum mgw_status write_and_check(struct ox *o)
{
    GByteArray *zip = g_byte_array_new();
    enum mgw_status st = write_package(o, zip);

    ahead_join(o, st != MGW_OK);
    for (guint i = 0; st == MGW_OK && i < o->checks->len; i++) {
        struct part *p = g_ptr_array_index(o->checks, i);
        if (p->check == CHECK_NONE) {
            if (xml_run(o, p->name, p->data, p->len, false, NULL, NULL) == NULL)
                st = MGW_FAIL;
        } else if (p->check == CHECK_FAILED) {
            mgw_reason(o->w, "%s", p->check_why);
            st = MGW_FAIL;
        }
    }
    if (st == MGW_OK)
        st = send_package(o, zip);
    g_byte_array_free(zip, TRUE);
    return st;
}

enum mgw_status mgw_ooxml(struct mgw *w)
{
    struct ox o;
    unsigned char *buf;
    size_t len;
    enum mgw_status st;

    memset(&o, 0, sizeof o);
    o.w = w;
    o.max_members = mgw_option_u64(w, "max-members", 2000);
    o.max_total = mgw_option_u64(w, "max-total", 209715200);
    o.max_ratio = MAX(mgw_option_u64(w, "max-ratio", 100), 1);
    o.hyperlinks_remove = g_strcmp0(mgw_option(w, "hyperlinks"), "remove") == 0;
    o.in_size = mgw_input_size(w);
    if (o.in_size > o.max_total) {
        mgw_reason(w, "the item is larger than %" G_GUINT64_FORMAT " bytes", o.max_total);
        return MGW_LIMIT;
    }
    buf = mgw_input_read_all(w, o.max_total, &len);
    if (buf == NULL) {
        mgw_reason(w, "cannot read the item");
        return MGW_FAIL;
    }
    /* libarchive converts member names to the locale's charset: UTF-8 */
    setlocale(LC_CTYPE, "C.UTF-8");
    xmlInitParser();
    o.parts = g_ptr_array_new_with_free_func(part_free);
    o.by_key = g_hash_table_new(g_str_hash, g_str_equal);
    o.defaults = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
    o.overrides = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
    o.checks = g_ptr_array_new();
    o.pkg.name = g_strdup("");
    o.pkg.key = g_strdup("");
    ahead_start(&o);
    st = read_zip(&o, buf, len);
    ahead_close(&o);
    g_free(buf);
    if (st == MGW_OK)
        st = load_types(&o);
    if (st == MGW_OK)
        st = load_rels(&o);
    if (st == MGW_OK)
        st = find_main(&o);
    if (st == MGW_OK)
        st = disarm(&o);
    if (st == MGW_OK)
        st = write_and_check(&o);
    ahead_join(&o, true); /* after a failure: before the parts go */
    g_hash_table_unref(o.by_key);
    g_ptr_array_unref(o.checks);
    g_ptr_array_free(o.parts, TRUE);
    part_fini(&o.pkg);
    g_hash_table_unref(o.defaults);
    g_hash_table_unref(o.overrides);
    if (o.types_doc != NULL)
        xmlFreeDoc(o.types_doc);
    return st;
}
