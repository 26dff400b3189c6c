# SPDX-License-Identifier: GPL-2.0-or-later
"""cdr-ole: the ole-text handler of mugaika-worker (src/worker/ole.c).

Drives the worker directly (mgw.run) on the OLE2 Word, Excel and
PowerPoint files of the shared corpus (text that must come out, macros,
embedded objects, DDE, encryption), on compound files written here by a
small MS-CFB writer (field codes, table marks, surrogates, SST strings
cut by CONTINUE records, macro sheets, record trees) and on broken
containers (truncation, FAT and directory cycles, huge counts, random
bytes behind a valid header, byte flips; fixed seeds). Every check
looks at the text output itself: valid UTF-8 with no control characters
but tab and newline.
"""
import os
import random
import re
import struct
import sys
import time
import zipfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import mgw  # noqa: E402
from tap import args, check, done, need_shared  # noqa: E402

CONTROL = re.compile('[\x00-\x08\x0b-\x1f\x7f-\x9f]')
SAN_REPORTS = []
W = None
ENDCHAIN, FREESECT, FATSECT, NOSTREAM = 0xFFFFFFFE, 0xFFFFFFFF, 0xFFFFFFFD, 0xFFFFFFFF


def run(data=None, path=None, opts=None):
    r = mgw.run(W, 'ole-text', path=path, data=data, opts=opts)
    if (b'ERROR: AddressSanitizer' in r.stderr or b'runtime error:' in r.stderr or
            b'ERROR: LeakSanitizer' in r.stderr):
        SAN_REPORTS.append(r.stderr[-1500:])
    return r


def text_of(r):
    if r.status != 'ok' or len(r.outputs) != 1:
        return None
    try:
        return bytes(r.outputs[0].data).decode('utf-8')
    except UnicodeDecodeError:
        return None


def good_text(r, what):
    """The checks every successful run gets; returns the text or None."""
    ok = check(r.returncode == 0 and r.status == 'ok' and r.protocol_error is None and
               len(r.outputs) == 1, '%s: status ok, one output' % what,
               'rc %s status %s %s notes %s' % (r.returncode, r.status, r.reason, r.notes))
    if not ok:
        return None
    o = r.outputs[0]
    t = text_of(r)
    check(t is not None, '%s: output is valid UTF-8' % what)
    check(o.name == 'document.txt' and (o.type or '').startswith('text/plain'),
          '%s: document.txt (no name given), text/plain' % what, repr(o))
    if t is None:
        return None
    m = CONTROL.search(t)
    check(m is None, '%s: no control characters but tab and newline' % what,
          m and repr(t[max(0, m.start() - 30):m.start() + 30]))
    return t


# ---- a small MS-CFB writer (version 3, 512-byte sectors) ----

def cfb(entries, mutate=None):
    """entries: list of (path, data) for streams ('a/b' is stream b in
    storage a) or (path, None) for an empty storage. Streams under 4096
    bytes go to the mini stream. Returns the file bytes. mutate(d) may
    change the dict of header fields and tables before they are
    written."""
    # the directory tree: a flat list of siblings per storage, linked
    # as a degenerate right-leaning tree (valid: a red-black tree colour
    # is not checked by readers)
    nodes = [{'name': 'Root Entry', 'type': 5, 'kids': [], 'data': b''}]
    index = {'': 0}
    for path, data in entries:
        parts = path.split('/')
        for k in range(1, len(parts) + 1):
            p = '/'.join(parts[:k])
            if p in index:
                continue
            is_stream = k == len(parts) and data is not None
            nodes.append({'name': parts[k - 1], 'type': 2 if is_stream else 1, 'kids': [],
                          'data': data if is_stream else b''})
            index[p] = len(nodes) - 1
            nodes[index['/'.join(parts[:k - 1])]]['kids'].append(len(nodes) - 1)
    ssz = 512
    sectors = []  # bytes of each regular sector
    fat = []

    def alloc(data, marker=None):
        n = max(1, (len(data) + ssz - 1) // ssz) if data else 0
        first = len(sectors)
        for i in range(n):
            sectors.append(data[i * ssz:(i + 1) * ssz].ljust(ssz, b'\0'))
            fat.append(marker if marker is not None else (first + i + 1 if i + 1 < n else ENDCHAIN))
        return first if n else ENDCHAIN

    mini = bytearray()
    minifat = []
    for nd in nodes[1:]:
        d = nd['data']
        if nd['type'] == 2 and 0 < len(d) < 4096:
            n = (len(d) + 63) // 64
            first = len(mini) // 64
            mini += d.ljust(n * 64, b'\0')
            minifat += [first + i + 1 if i + 1 < n else ENDCHAIN for i in range(n)]
            nd['start'] = first
        elif nd['type'] == 2 and d:
            nd['start'] = alloc(d)
        else:
            nd['start'] = ENDCHAIN if nd['type'] == 2 else 0
    nodes[0]['start'] = alloc(bytes(mini)) if mini else ENDCHAIN
    nodes[0]['data'] = bytes(mini)
    mf_bytes = b''.join(struct.pack('<I', x) for x in minifat)
    mf_start = alloc(mf_bytes) if minifat else ENDCHAIN
    # directory entries
    for nd in nodes:
        nd['left'] = nd['right'] = NOSTREAM
        nd['child'] = nd['kids'][0] if nd['kids'] else NOSTREAM
    for nd in nodes:
        for a, b in zip(nd['kids'], nd['kids'][1:]):
            nodes[a]['right'] = b
    d = {'nodes': nodes, 'fat': fat, 'sectors': sectors}
    dirb = b''
    for nd in nodes:
        name = nd['name'].encode('utf-16le')[:62]
        e = name.ljust(64, b'\0') + struct.pack('<HBB', len(name) + 2, nd['type'], 1)
        e += struct.pack('<III', nd['left'], nd['right'], nd['child'])
        e += b'\0' * 16 + b'\0' * 4 + b'\0' * 16
        e += struct.pack('<IQ', nd['start'], len(nd['data']))
        dirb += e
    dirb = dirb.ljust(((len(dirb) + ssz - 1) // ssz) * ssz, b'\0')
    dir_start = alloc(dirb)
    # FAT sectors: enough for the sectors and themselves
    nfat = 1
    while (len(sectors) + nfat) > nfat * (ssz // 4):
        nfat += 1
    fat_start = len(sectors)
    for i in range(nfat):
        sectors.append(b'')
        fat.append(FATSECT)
    fat += [FREESECT] * (nfat * (ssz // 4) - len(fat))
    d.update(nfat=nfat, fat_start=fat_start, dir_start=dir_start, mf_start=mf_start,
             nminifat=(len(mf_bytes) + ssz - 1) // ssz, difat=[fat_start + i for i in range(nfat)],
             ndifat=0, difat_start=ENDCHAIN, shift=9)
    if mutate:
        mutate(d)
    fatb = b''.join(struct.pack('<I', x & 0xFFFFFFFF) for x in d['fat'])
    for i in range(nfat):
        sectors[fat_start + i] = fatb[i * ssz:(i + 1) * ssz].ljust(ssz, b'\xff')
    difat = (d['difat'] + [FREESECT] * 109)[:109]
    h = b'\xD0\xCF\x11\xE0\xA1\xB1\x1A\xE1' + b'\0' * 16
    h += struct.pack('<HHHHH', 0x3E, 3, 0xFFFE, d['shift'], 6) + b'\0' * 6
    h += struct.pack('<IIIIIIIII', 0, d['nfat'], d['dir_start'], 0, 4096, d['mf_start'],
                     d['nminifat'], d['difat_start'], d['ndifat'])
    h += b''.join(struct.pack('<I', x & 0xFFFFFFFF) for x in difat)
    return h + b''.join(sectors)


def u16s(s):
    return s.encode('utf-16le', 'surrogatepass')


def word_doc(pieces, encrypted=False, nfib=0xC1, extra=()):
    """A Word 97 document: pieces is a list of (text, compressed);
    extra: more (path, data) entries."""
    wd, table = word_streams(pieces, encrypted, nfib)
    return cfb([('WordDocument', wd), ('1Table', table)] + list(extra))


def word_streams(pieces, encrypted=False, nfib=0xC1):
    """The WordDocument and 1Table streams."""
    text = b''
    plc_cp = [0]
    pcds = b''
    base = 1024
    for s, comp in pieces:
        enc = s.encode('cp1252') if comp else u16s(s)
        off = base + len(text)
        fc = (off * 2) | 0x40000000 if comp else off
        text += enc + (b'\0' if comp and len(enc) % 2 else b'')
        plc_cp.append(plc_cp[-1] + len(s if comp else enc) // (1 if comp else 2))
        pcds += struct.pack('<HIH', 0, fc, 0)
    plc = b''.join(struct.pack('<I', c) for c in plc_cp) + pcds
    clx = b'\x01\x02\x00\xAA\xBB' + b'\x02' + struct.pack('<I', len(plc)) + plc
    table = b'\0' * 16 + clx
    flags = 0x0200 | (0x0100 if encrypted else 0)
    fib = struct.pack('<HHHHHH', 0xA5EC, nfib, 0, 0x0409, 0, flags) + b'\0' * 20
    fib += struct.pack('<H', 14) + b'\0' * 28
    fib += struct.pack('<H', 22) + struct.pack('<22I', 0, 0, 0, plc_cp[-1], *([0] * 18))
    fcl = [0] * (93 * 2)
    fcl[66], fcl[67] = 16, len(clx)
    fib += struct.pack('<H', 93) + struct.pack('<%dI' % len(fcl), *fcl)
    return fib.ljust(base, b'\0') + text, table


def rec(t, data):
    return struct.pack('<HH', t, len(data)) + data


def xl_str(s, short=False, wide=None):
    wide = any(ord(c) > 255 for c in s) if wide is None else wide
    body = s.encode('utf-16le') if wide else s.encode('latin-1')
    return (struct.pack('<B' if short else '<H', len(s)) + bytes([1 if wide else 0]) + body)


def xls(sheets, sst, sst_split=None, filepass=False, globals_extra=b'', sst_count=None):
    """sheets: list of (name, type, bof_dt, records). sst: strings;
    sst_split: (index, chars): cut string index after that many chars
    into a CONTINUE record whose flags byte makes the rest UTF-16."""
    bof = lambda dt: rec(0x0809, struct.pack('<HHHHII', 0x0600, dt, 0x0DBB, 0x07CC, 0, 6))
    n = len(sst) if sst_count is None else sst_count
    sstb = struct.pack('<II', n, n)
    cont = None
    for i, s in enumerate(sst):
        if sst_split and sst_split[0] == i:
            k = sst_split[1]
            sstb += struct.pack('<HB', len(s), 0) + s[:k].encode('latin-1')
            cont = b'\x01' + s[k:].encode('utf-16le')
        elif cont is not None:
            cont += xl_str(s)
        else:
            sstb += xl_str(s)
    glob = bof(5) + (rec(0x002F, b'\x01\x00' + b'\0' * 52) if filepass else b'')
    glob += rec(0x0042, struct.pack('<H', 1200)) + globals_extra
    bs_len = sum(len(rec(0x0085, b'\0' * 6 + xl_str(n, True))) for n, _, _, _ in sheets)
    tail = rec(0x00FC, sstb) + (rec(0x003C, cont) if cont is not None else b'') + rec(0x000A, b'')
    pos = len(glob) + bs_len + len(tail)
    bss = b''
    body = b''
    for name, typ, dt, recs in sheets:
        bss += rec(0x0085, struct.pack('<IBB', pos + len(body), 0, typ) + xl_str(name, True))
        body += bof(dt) + b''.join(recs) + rec(0x000A, b'')
    book = glob + bss + tail + body
    return cfb([('Workbook', book)])


def cell_sst(r, c, i):
    return rec(0x00FD, struct.pack('<HHHI', r, c, 15, i))


def cell_num(r, c, v):
    return rec(0x0203, struct.pack('<HHHd', r, c, 15, v))


def cell_label(r, c, s):
    return rec(0x0204, struct.pack('<HHH', r, c, 15) + xl_str(s))


def ppt_rec(t, data, inst=0, container=False):
    return struct.pack('<HHI', (inst << 4) | (0xF if container else 0), t, len(data)) + data


def ppt(records, extra=()):
    cu = struct.pack('<IIIHHH', 20, 0xE391C05F, 0, 0, 0, 0) + b'\0' * 8
    return cfb([('PowerPoint Document', records), ('Current User', cu)] + list(extra))


# ---- the corpus ----

def corpus_text(corpus):
    cases = [
        # (file, words that must be in the text)
        ('oletools/msodde/harmless-clean.doc',
         ['This is a harmless test document.', 'ünicöde-ßtringß']),
        ('openpreserve-format-corpus/pdfCabinetOfHorrors/text_only.doc',
         ['This is a test document. It only contains some text.', 'Johan van der Knijff']),
        ('hunnysoft-mime-samples/emails/files/test.doc',
         ['Biodiversité de semaine en semaine', 'Petroselinum crispum']),
        ('tika/testWORD_macros.doc', ['The quick brown fox.']),
        ('openpreserve-format-corpus/office/spreadsheet/xls/MonteCarlo.xls',
         ['== RangeTable ==', 'Monte Carlo 1: PF simulation', 'Johan van der Knijff']),
        ('oletools/oleobj/embedded-simple-2007.xls',
         ['== Tabelle1 ==', 'This spreadsheet contains an embedded object', 'Have fun parsing']),
        ('poi-testdata/spreadsheet/SquareMacro.xls', ['== Sheet1 ==', '4\t4\t16\t4']),
        ('oletools/oleobj/embedded-simple-2007.pps',
         ['Embedded Objects', 'This slide contains an embedded object']),
        ('poi-testdata/slideshow/SimpleMacro.ppt', ['This is a macro slideshow!!', 'subtitle']),
        ('oletools/olevba/sample_with_vba.ppt', ['PPT VBA TEST']),
    ]
    first_known = cases[0][0]
    for rel, words in cases:
        p = os.path.join(corpus, rel)
        raw = open(p, 'rb').read()
        t = good_text(run(path=p), rel)
        if rel == first_known:
            r = run(path=p, opts={'name': 'dir/報告書.v2.doc'})
            check(r.status == 'ok' and len(r.outputs) == 1 and r.outputs[0].name == '報告書.v2.txt',
                  'the output is named after the item: 報告書.v2.doc -> 報告書.v2.txt',
                  [o.name for o in r.outputs])
        if t is None:
            continue
        missing = [w for w in words if w not in t]
        check(not missing, '%s: known text present' % rel, 'missing %r in %r' % (missing, t[:400]))
        # the words are really in the file (as UTF-16LE or 8-bit), not made up here
        for w in words:
            parts = [x for x in w.replace('==', '').split('\t') if x.strip()]
            for part in parts:
                part = part.strip()
                if not part or part.replace('.', '').isdigit():
                    continue
                inside = (part.encode('utf-16le') in raw or part.encode('cp1252') in raw or
                          part.encode('latin-1', 'replace') in raw)
                if not inside:
                    check(False, '%s: %r is in the file itself' % (rel, part))


def corpus_korean(corpus):
    """The DDE sample (UTF-16 Korean text, DDEAUTO field)."""
    z = zipfile.ZipFile(os.path.join(corpus, 'oletools/msodde/'
                                     'dde-test-from-office2013-utf_16le-korean.doc.zip'))
    data = z.read(z.namelist()[0], pwd=b'infected-test')
    check(b'D\0D\0E\0A\0U\0T\0O\0' in data, 'DDE sample: the file holds a DDEAUTO field code')
    r = run(data=data)
    t = good_text(r, 'DDE sample')
    if t is None:
        return
    check('DDEAUTO' not in t and 'DDE ' not in t.replace('Testing DDE in word', '') and
          'cmd.exe' not in t and 'calc' not in t,
          'DDE sample: no field instruction text', repr(t))
    check('Testing DDE in word' in t and '수식 끝이 잘못되었습니다' in t,
          'DDE sample: text and the Korean field result (UTF-16) kept', repr(t))
    check(any('DDE' in n for n in r.notes_of('found')), 'DDE sample: DDE field noted',
          r.notes)


def corpus_macros(corpus):
    cases = ['tika/testWORD_macros.doc', 'poi-testdata/document/SimpleMacro.doc',
             'oletools/olevba/sample_with_vba.ppt', 'poi-testdata/slideshow/WithMacros.ppt',
             'poi-testdata/slideshow/SimpleMacro.ppt', 'tika/testEXCEL_macro.xls',
             'poi-testdata/spreadsheet/SimpleMacro.xls',
             'oletools/excel4-macros/excel4_sample_macro_excel5_format.xls']
    for rel in cases:
        r = run(path=os.path.join(corpus, rel))
        t = good_text(r, rel)
        check(r.notes_of('macros') and r.notes_of('removed'),
              '%s: "macros" and "removed" notes' % rel, r.notes)
        if t is None:
            continue
        check('Attribute VB_' not in t and 'Sub ' not in t and 'End Sub' not in t,
              '%s: no VBA source in the text' % rel, repr(t[:300]))
        vba = os.path.join(corpus, os.path.dirname(rel), 'SimpleMacro.vba')
        if os.path.basename(rel).startswith('SimpleMacro'):
            lines = [x.strip() for x in open(vba, encoding='utf-8', errors='replace')
                     if len(x.strip()) > 3]
            found = [x for x in lines if x in t]
            check(lines and not found, '%s: no line of SimpleMacro.vba in the text' % rel,
                  found)
    r = run(path=os.path.join(corpus, 'oletools/excel4-macros/excel4_sample_macro_excel5_format.xls'))
    check(any('Excel 4 macro sheet' in n for n in r.notes_of('macros')),
          'excel4 sample: the macro sheet is named as XLM', r.notes)
    t = text_of(r) or ''
    check('This is a sample' not in t and 'EXEC' not in t.upper(),
          'excel4 sample: no macro sheet cells in the text', repr(t))
    # embedded objects
    for rel in ['oletools/oleobj/sample_with_calc_embedded.doc', 'oletools/oleobj/embedded-simple-2007.xls',
                'oletools/oleobj/embedded-simple-2007.pps']:
        r = run(path=os.path.join(corpus, rel))
        t = good_text(r, rel)
        check(any('embedded OLE' in n for n in r.notes_of('removed')) and
              not r.notes_of('macros'), '%s: embedded object noted (no macros)' % rel, r.notes)
        if t is not None:
            check('calc.exe' not in t and 'Ole10Native' not in t, '%s: no object data' % rel)
    r = run(path=os.path.join(corpus, 'oletools/msodde/harmless-clean.doc'))
    check(not r.notes_of('macros') and not r.notes_of('found'),
          'harmless-clean.doc: nothing found (negative control)', r.notes)


def corpus_encrypted(corpus):
    cases = ['poi-testdata/document/password_password_cryptoapi.doc',
             'poi-testdata/document/password_tika_binaryrc4.doc',
             'poi-testdata/slideshow/Password_Protected-hello.ppt',
             'oletools/encrypted/encrypted.xls', 'oletools/encrypted/encrypted.doc',
             'oletools/encrypted/encrypted.ppt',
             'oletools/encrypted/autostart-encrypt-standardpassword.xls',
             'oletools/encrypted/encrypted.docx', 'poi-testdata/document/bug53475-password-is-pass.docx',
             'tika/testEXCEL_protected_passtika.xls', 'tika/testPPT_protected_passtika.ppt']
    for rel in cases:
        r = run(path=os.path.join(corpus, rel))
        check(r.returncode == 0 and r.status == 'encrypted' and not r.outputs,
              '%s: status encrypted, no output' % rel, '%s %s' % (r.status, r.reason))


def corpus_all(corpus):
    """Every OLE2 file of the corpus: a Z record, no crash, and when ok,
    clean text."""
    n = 0
    for root, dirs, files in os.walk(corpus):
        dirs.sort()
        for f in sorted(files):
            p = os.path.join(root, f)
            try:
                with open(p, 'rb') as fh:
                    if fh.read(8) != b'\xD0\xCF\x11\xE0\xA1\xB1\x1A\xE1':
                        continue
            except OSError:
                continue
            n += 1
            r = run(path=p)
            rel = os.path.relpath(p, corpus)
            check(r.returncode == 0 and r.status in ('ok', 'fail', 'encrypted', 'limit'),
                  'corpus %s: ends with a status (%s)' % (rel, r.status), r.stderr[-300:])
            if r.status == 'ok':
                t = text_of(r)
                check(t is not None and CONTROL.search(t) is None,
                      'corpus %s: valid UTF-8 without controls' % rel)
            elif r.status == 'fail':
                check(bool(r.reason), 'corpus %s: failure has a reason' % rel)
    check(n >= 40, 'corpus: at least 40 OLE2 files tried (%d)' % n)


# ---- written here ----

def synthetic_word():
    t = good_text(run(word_doc([('Hello caf\u00e9 \u20ac\r', True),
                                ('Before \x13 HYPERLINK "http://evil.example/" \x14link text\x15 after\r'
                                 '\x13 DDEAUTO c:\\\\windows\\\\system32\\\\cmd.exe "/k calc" \x14\x15'
                                 'a\x07b\x07\x07c\x07d\x07\x07'
                                 'outer \x13 IF \x13 DDE x \x14inner\x15 \x14shown\x15 end\r'
                                 'bad \ud800 surrogate \U0001F600 ok\x01\x08\x05\r', False)])),
                  'synthetic Word')
    if t is not None:
        want = ('Hello café €\nBefore link text after\na\tb\nc\td\nouter shown end\n'
                'bad \ufffd surrogate \U0001F600 ok\n')
        check(t == want, 'synthetic Word: pieces (CP1252 and UTF-16), fields, cells, surrogates',
              'got %r want %r' % (t, want))
    r = run(word_doc([('x' * 10, True)], encrypted=True))
    check(r.status == 'encrypted', 'synthetic Word: fEncrypted → encrypted', r.status)
    r = run(word_doc([('x' * 10, True)], nfib=0x68))
    check(r.status == 'fail' and 'unsupported Word version' in (r.reason or ''),
          'synthetic Word: Word 6/95 → unsupported Word version', '%s %s' % (r.status, r.reason))
    # fields nested deeper than the handler tracks: dropped, no crash
    deep = '\x13' * 200 + 'code' + '\x14' * 200 + 'res' + '\x15' * 200 + 'tail\r'
    t = good_text(run(word_doc([(deep, False)])), 'synthetic Word: 200 nested fields')
    check(t is not None and 'code' not in t and t.endswith('tail\n'),
          'synthetic Word: deep fields bounded, no code text', repr(t))
    # max-text
    r = run(word_doc([('y' * 5000, True)]), opts={'max-text': '1000'})
    check(r.status == 'limit' and not r.outputs, 'synthetic Word: max-text → limit', r.status)
    # pieces that all point at the same text (work amplification)
    wd, table = word_streams([('\x13' + 'z' * 3000, True)])
    n = 3000
    plc = b''.join(struct.pack('<I', 3001 * k) for k in range(n + 1))
    plc += struct.pack('<HIH', 0, (1024 * 2) | 0x40000000, 0) * n
    clx = b'\x02' + struct.pack('<I', len(plc)) + plc
    table = b'\0' * 16 + clx
    wd = bytearray(wd)
    struct.pack_into('<II', wd, 32 + 2 + 28 + 2 + 88 + 2 + 33 * 8, 16, len(clx))
    t0 = time.monotonic()
    r = run(cfb([('WordDocument', bytes(wd)), ('1Table', table)]))
    check(r.status == 'limit' and time.monotonic() - t0 < 10,
          'synthetic Word: 3000 overlapping pieces → limit quickly', '%s %s' % (r.status, r.reason))
    # VBA storage and ObjectPool in a Word file
    data = word_doc([('one\r', True)], extra=[
        ('Macros/VBA/ThisDocument', b'Attribute VB_Name = "x"\r\nSub AutoOpen()'),
        ('Macros/PROJECT', b'ID="{1}"'), ('ObjectPool/_1234/\x01Ole10Native', b'MZ' * 10)])
    r = run(data)
    t = good_text(r, 'synthetic Word with Macros and ObjectPool')
    check(r.notes_of('macros') and any('ObjectPool' in n for n in r.notes_of('removed')),
          'synthetic Word: macros and object noted', r.notes)
    check(t is not None and 'Sub AutoOpen' not in t and 'MZMZ' not in t and 'one' in t,
          'synthetic Word: only the document text', repr(t))


def synthetic_excel():
    sst = ['alpha', 'beta gamma', '\u65e5\u672c', 'long string split here']
    sheet = [cell_sst(0, 0, 0), cell_sst(0, 1, 1), cell_num(0, 2, 2.5),
             rec(0x027E, struct.pack('<HHHI', 1, 0, 15, (42 << 2) | 2)),
             rec(0x00BD, struct.pack('<HHHIHIH', 1, 1, 15, (7 << 2) | 2, 15, (1234 << 2) | 3, 2)),
             cell_sst(2, 0, 2), cell_sst(2, 1, 3), cell_label(3, 0, 'label \u00fc'),
             rec(0x0006, struct.pack('<HHH', 4, 0, 15) + b'\0\0\0\0\0\0\xff\xff' + b'\0' * 6),
             rec(0x0207, xl_str('formula result')),
             cell_sst(5, 0, 99)]
    macro = [cell_label(0, 0, '=EXEC("calc.exe")'), cell_label(1, 0, '=HALT()')]
    data = xls([('Data', 0, 0x10, sheet), ('Auto_Open', 1, 0x40, macro),
                ('Chart1', 2, 0x20, [cell_label(0, 0, 'chartlabel')])], sst, sst_split=(3, 5))
    r = run(data)
    t = good_text(r, 'synthetic Excel')
    want = ('== Data ==\nalpha\tbeta gamma\t2.5\n42\t7\t12.34\n\u65e5\u672c\tlong string split here\n'
            'label \u00fc\nformula result\n')
    check(t == want, 'synthetic Excel: SST (CONTINUE with a new flags byte), cells, RK, MULRK',
          'got %r want %r' % (t, want))
    check(any('Auto_Open' in n and 'Excel 4' in n for n in r.notes_of('macros')),
          'synthetic Excel: XLM macro sheet noted', r.notes)
    check(t is not None and 'EXEC' not in t and 'chartlabel' not in t,
          'synthetic Excel: no macro sheet or chart cells', repr(t))
    r = run(xls([('S', 0, 0x10, [cell_sst(0, 0, 0)])], ['secret'], filepass=True))
    check(r.status == 'encrypted' and not r.outputs, 'synthetic Excel: FILEPASS → encrypted',
          r.status)
    # an SST that claims more strings than it holds
    bad = xls([('S', 0, 0x10, [cell_sst(0, 0, 0), cell_sst(0, 1, 5000)])], ['only'],
              sst_count=0x7FFFFFFF)
    t0 = time.monotonic()
    r = run(bad)
    t = good_text(r, 'synthetic Excel: SST count 2^31')
    check(t is not None and 'only' in t and time.monotonic() - t0 < 10,
          'synthetic Excel: huge SST count bounded by the data', repr(t))


def synthetic_ppt():
    text = ppt_rec(0x0FA0, u16s('Title one\rsecond para\x0bline')) + \
        ppt_rec(0x0FA8, b'bytes caf\xe9')
    slwt = ppt_rec(0x0FF0, text, container=True)
    master = ppt_rec(0x03F8, ppt_rec(0x0FA0, u16s('Click to edit Master')), container=True)
    vba = ppt_rec(0x03FF, ppt_rec(0x0400, b'\0' * 12, inst=2), container=True)
    doc = ppt_rec(0x03E8, slwt + vba, container=True) + master
    r = run(ppt(doc))
    t = good_text(r, 'synthetic PowerPoint')
    want = 'Title one\nsecond para\nline\nbytes café\n'
    check(t == want, 'synthetic PowerPoint: text atoms, paragraphs', 'got %r want %r' % (t, want))
    check(r.notes_of('macros'), 'synthetic PowerPoint: VbaInfo noted as macros', r.notes)
    # nesting: 1000 containers inside one another
    inner = ppt_rec(0x0FA0, u16s('deep'))
    for _ in range(1000):
        inner = ppt_rec(0x0FF0, inner, container=True)
    r = run(ppt(inner))
    check(r.status == 'ok' and text_of(r) is not None and 'deep' not in text_of(r),
          'synthetic PowerPoint: deep record nesting bounded', '%s %r' % (r.status, r.notes))
    r = run(ppt(ppt_rec(0x03E8, ppt_rec(0x2F14, b'\0' * 16, container=True), container=True)))
    check(r.status == 'encrypted', 'synthetic PowerPoint: CryptSession10 → encrypted', r.status)
    r = run(ppt(doc, extra=[('EncryptedSummary', b'x' * 100)]))
    check(r.status == 'encrypted', 'synthetic PowerPoint: EncryptedSummary → encrypted', r.status)
    r = run(cfb([('EncryptionInfo', b'\4\0\4\0' + b'\0' * 60), ('EncryptedPackage', b'\0' * 5000)]))
    check(r.status == 'encrypted', 'encrypted OOXML in OLE2 → encrypted', r.status)
    r = run(cfb([('Contents', b'hello' * 100)]))
    check(r.status == 'fail' and 'not a Word, Excel or PowerPoint' in (r.reason or ''),
          'other OLE2 file → fail', '%s %s' % (r.status, r.reason))


# ---- broken containers ----

def broken(corpus):
    base = open(os.path.join(corpus, 'oletools/msodde/harmless-clean.doc'), 'rb').read()

    def bounded(r, what, t0, ok=('fail', 'limit')):
        return check(r.returncode == 0 and r.status in ok and time.monotonic() - t0 < 10,
                     '%s: %s quickly' % (what, '/'.join(ok)),
                     'rc %s status %s %s %.1fs' % (r.returncode, r.status, r.reason,
                                                   time.monotonic() - t0))
    for cut in (100, 600, 2000, len(base) // 2):
        t0 = time.monotonic()
        bounded(run(base[:cut]), 'truncated at %d' % cut, t0)

    doc = word_doc([('Loop text\r', True)])

    def fat_cycle(d):
        # the WordDocument stream (regular sectors from 0) loops back on itself
        d['fat'][1] = 0
    t0 = time.monotonic()
    r = run(cfb([('WordDocument', b'W' * 6000), ('1Table', b'\0' * 16)], mutate=fat_cycle))
    bounded(r, 'FAT cycle', t0)
    check('loop' in (r.reason or ''), 'FAT cycle: the reason says the chain loops', r.reason)

    def dir_cycle(d):
        d['fat'][d['dir_start']] = d['dir_start']
    t0 = time.monotonic()
    bounded(run(cfb([('WordDocument', b'x' * 5000)], mutate=dir_cycle)), 'directory chain cycle', t0)

    def huge_fat(d):
        d['nfat'] = 0x7FFFFFFF
    t0 = time.monotonic()
    r = run(cfb([('WordDocument', b'x' * 5000)], mutate=huge_fat))
    bounded(r, 'FAT sector count 2^31', t0)

    def huge_difat(d):
        d['nfat'] = 200
        d['ndifat'] = 0x10000000
        d['difat_start'] = 0
    t0 = time.monotonic()
    bounded(run(cfb([('WordDocument', b'x' * 5000)], mutate=huge_difat)), 'DIFAT count 2^28', t0)

    def bad_shift(d):
        d['shift'] = 30
    t0 = time.monotonic()
    bounded(run(cfb([('WordDocument', b'x' * 5000)], mutate=bad_shift)), 'sector shift 30', t0)

    # directory tree links that point to themselves or to each other
    good = word_doc([('Tree text\r', True)])
    data = bytearray(good)
    ssz = 512
    dir_start = struct.unpack_from('<I', data, 0x30)[0]
    off = (dir_start + 1) * ssz
    struct.pack_into('<I', data, off + 128 + 0x44, 1)  # entry 1's left is itself
    struct.pack_into('<I', data, off + 2 * 128 + 0x48, 1)  # entry 2's right is entry 1
    t0 = time.monotonic()
    r = run(bytes(data))
    check(r.returncode == 0 and r.status in ('ok', 'fail') and time.monotonic() - t0 < 10,
          'directory tree cycle: ends with ok/fail', '%s %s' % (r.status, r.reason))
    # a stream larger than max-stream
    r = run(doc, opts={'max-stream': '100'})
    check(r.status in ('limit',), 'max-stream → limit', '%s %s' % (r.status, r.reason))
    # random bytes behind a valid header (fixed seed)
    rnd = random.Random(1234)
    hdr = cfb([('WordDocument', b'x')])[:512]
    statuses = {}
    t0 = time.monotonic()
    for i in range(30):
        body = bytes(rnd.getrandbits(8) for _ in range(rnd.choice([512, 4096, 20000])))
        r = run(hdr + body)
        statuses[r.status] = statuses.get(r.status, 0) + 1
        if not (r.returncode == 0 and r.status in ('fail', 'limit', 'ok')):
            check(False, 'random body %d: ends with a status' % i, r.stderr[-300:])
    check(set(statuses) <= {'fail', 'limit', 'ok'} and time.monotonic() - t0 < 60,
          'random bytes behind a valid header: fail/limit, no crash', statuses)
    # byte flips in real files (fixed seed): always a status, clean text
    samples = [base, open(os.path.join(corpus, 'poi-testdata/spreadsheet/SimpleMacro.xls'), 'rb').read(),
               open(os.path.join(corpus, 'poi-testdata/slideshow/WithMacros.ppt'), 'rb').read(),
               good, xls([('S', 0, 0x10, [cell_sst(0, 0, 0)])], ['abc', 'def'], sst_split=(1, 1))]
    bad = []
    for i in range(150):
        s = bytearray(samples[i % len(samples)])
        for _ in range(rnd.choice([1, 4, 16])):
            s[rnd.randrange(len(s))] = rnd.getrandbits(8)
        r = run(bytes(s))
        if not (r.returncode == 0 and r.status in ('ok', 'fail', 'limit', 'encrypted')):
            bad.append((i, r.returncode, r.stderr[-200:]))
        elif r.status == 'ok':
            t = text_of(r)
            if t is None or CONTROL.search(t):
                bad.append((i, 'bad text'))
    check(not bad, '150 byte-flipped files: a status each, clean text', bad[:5])


def main():
    global W
    a = args()
    corpus = need_shared(a)
    W = a.worker
    t0 = time.monotonic()
    corpus_text(corpus)
    corpus_korean(corpus)
    corpus_macros(corpus)
    corpus_encrypted(corpus)
    corpus_all(corpus)
    synthetic_word()
    synthetic_excel()
    synthetic_ppt()
    broken(corpus)
    check(not SAN_REPORTS, 'no sanitizer reports', SAN_REPORTS[:2])
    print('# %.1f s' % (time.monotonic() - t0))
    done()


if __name__ == '__main__':
    main()
