# SPDX-License-Identifier: GPL-2.0-or-later
"""The CDR handlers inside the pipeline: `mugaika sanitize` on mails with
documents, pictures and archives attached.

- A zip holding a text file, a program, a PDF with JavaScript, a picture
  and a nested zip: each member is delivered in its safe form (or
  removed with a notice naming "archive/member"), nothing active
  crosses, and the names are the members' names.
- A macro document (docm) arrives as a docx without its VBA project; a
  PDF with JavaScript arrives without it; a picture (JPEG, TIFF) arrives re-encoded
  without its metadata; an RTF arrives as text; Word and Excel 97-2003
  files with macros arrive as their text, without any VBA; an encrypted
  .doc is held.
- A handler's output that scans infected (an RTF whose decoded text is
  EICAR) is removed with a notice, whether or not another attachment
  follows it.
- Members whose handlers run ahead (two workers at once): the same
  outputs in either order of the members, each member its own; a member
  whose original scans infected is removed although its handler ran; a
  run made ahead still counts against worker-budget.
- An archive is scanned while it is unpacked: when that scan alone finds
  EICAR (in the zip comment), the archive goes with everything made of
  its members, as if it had been scanned first; nested, only the inner
  archive goes.
- EICAR inside a zip: removed, the virus named; an encrypted zip:
  held, the notice asks for the password; an archive nested deeper
  than archive-depth: removed; more members than archive-members:
  removed.
- Bombs (../shared/corpus/recursive-extractor/Bombs): each mail is done
  within 5 s, and no process of the run (the workers included) grows
  past 256 MiB; nothing of a bomb is delivered (the mail is the notice
  and the text), the notice names it as removed, the original is in
  quarantine. The zip-slip archives there are unpacked: only their text
  members cross, under bare names.
- Policy: a copy of the built-in rules plus rule high-risk-pdf (the
  example of docs/rules.md, word for word): a PDF from *@risky.example
  arrives image-only (pdffonts, pdfimages, pdfinfo), the same PDF from
  anyone else is disarmed, an encrypted one is still held. A PDF link
  (/URI) survives the built-in rule pdf and is gone with links = remove.
- The eicar set (../shared/corpus/eicar), each file attached with a clean
  one: removed, the virus named, the rest delivered, no EICAR string in
  the output (decoded, zip members too).
- Types that must not cross (crafted minimal files: Windows shortcut,
  OneNote, CHM, MSI, HTA, VHD, VHDX, ISO 9660, PE, ELF), each under its
  own extension and under a neutral name: dropped (audit and inspect),
  neither name nor content in the output; an HTA named .html becomes text.
- SVG drawings that libmagic calls text/plain (a comment or blank lines
  before the root, UTF-16), and one with the XML declaration: typed
  image/svg+xml (inspect), removed, none of their markup in the output,
  named as removed in the notice, the original in quarantine (`mugaika
  quarantine export`). The same for a PDF header followed by noise (the
  notice: could not be rebuilt), a script (.js, text) and a disk image
  (.img, zeros), removed by their names.
- An OLE2 file shaped like an Ichitaro document (書類.jtd), without and
  with a VBA project (Macros/VBA, _VBA_PROJECT_CUR/VBA): never delivered
  as it is (removed, or at most its text as a .txt), the macros flagged
  and the file never kept when it has them, no macro source in the
  output, the original in quarantine.
- Every file of the CDR corpus sets (libarchive-testfiles,
  recursive-extractor, oletools, poi-testdata, corkami, tika,
  openpreserve-format-corpus, eicar) attached to a mail, ten per mail:
  exit 0, the output parses, no attachment of the output is a program,
  no output carries the EICAR string, and the run finishes; the output
  is sanitised again to a fixed point for a sample of them.
"""
import io
import json
import os
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from email.message import EmailMessage

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from mails import attachments, body_text, notice_line, parse  # noqa: E402
from pdfs import pdf_file, stream  # noqa: E402
from tap import args, check, done, need_shared  # noqa: E402

A = args()
CORPUS = need_shared(A)
TMP = tempfile.mkdtemp(prefix='mugaika-cdr-pipeline.')
DB = os.path.join(TMP, 'db')
Q = os.path.join(TMP, 'q')
EICAR = (b'X5O!P%@AP[4\\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*')


def mail(attachments, body='本文です。\n', sender='sender@example.jp'):
    m = EmailMessage()
    m['From'] = sender
    m['To'] = 'staff@example.lg.jp'
    m['Subject'] = 'CDR test'
    m['Message-ID'] = '<cdr-%d@example.jp>' % (time.monotonic_ns())
    m.set_content(body)
    for name, data in attachments:
        m.add_attachment(data, maintype='application', subtype='octet-stream', filename=name)
    return bytes(m)


def sanitize(data, conf=None, lang='en', timeout=120, rules=None, audit=None):
    """rules: a policy directory (default: the built-in policy); audit: a
    file the audit record is appended to (read it with last_audit)."""
    path = os.path.join(TMP, 'in.eml')
    with open(path, 'wb') as f:
        f.write(data)
    cmd = [A.cli, 'sanitize', '--clamav-db', DB, '--quarantine', Q, '--lang', lang]
    if rules:
        cmd += ['--rules', rules]
    if audit:
        cmd += ['--audit', audit]
    if conf:
        cfg = os.path.join(TMP, 'c.conf')
        with open(cfg, 'w') as f:
            f.write('[mugaika]\n' + ''.join('%s = %s\n' % kv for kv in conf.items()))
        cmd += ['--config', cfg]
    t0 = time.monotonic()
    # a GLib critical (a misused call, as once g_unix_open_pipe's flags)
    # aborts the run instead of passing unseen on stderr
    env = dict(os.environ, G_DEBUG='fatal-criticals')
    p = subprocess.run(cmd + [path], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       timeout=timeout, env=env)
    p.wall = time.monotonic() - t0
    return p


def corpus(*parts):
    with open(os.path.join(CORPUS, *parts), 'rb') as f:
        return f.read()


def random_bytes(n):
    import random
    return random.Random(5).randbytes(n)


def zip_of(members):
    b = io.BytesIO()
    with zipfile.ZipFile(b, 'w', zipfile.ZIP_DEFLATED) as z:
        for n, d in members:
            z.writestr(n, d)
    return b.getvalue()


ACTIVE = [b'/JavaScript', b'/JS ', b'/JS(', b'/OpenAction', b'/Launch', b'vbaProject',
          EICAR[:40]]


# --- helpers of the policy tests below ----------------------------------------

def last_audit(path):
    """The parts of the last audit record in path, by file name."""
    with open(path) as f:
        rec = json.loads(f.read().splitlines()[-1])
    return {x['filename']: x for x in rec['parts'] if x.get('filename')}


def inspect_parts(data, rules=None):
    """`mugaika inspect --json` of a mail: its leaves with a file name, by name."""
    path = os.path.join(TMP, 'inspect.eml')
    with open(path, 'wb') as f:
        f.write(data)
    cmd = [A.cli, 'inspect', '--json', '--clamav-db', DB] + (['--rules', rules] if rules else [])
    p = subprocess.run(cmd + [path], stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=120)
    if p.returncode != 0:
        return {}
    return {x['filename']: x for x in json.loads(p.stdout)['parts'] if x.get('filename')}


def policy_dir(name, extra=None, edit=None):
    """A policy directory: a copy of the built-in rules (rules/*.rules),
    edit(file name, text) -> text applied to each file, plus extra
    {file name: text}."""
    d = os.path.join(TMP, name)
    os.makedirs(d)
    src = os.path.join(A.source, 'rules')
    for n in sorted(os.listdir(src)):
        if n.endswith('.rules'):
            with open(os.path.join(src, n), encoding='utf-8') as f:
                text = f.read()
            with open(os.path.join(d, n), 'w', encoding='utf-8') as f:
                f.write(edit(n, text) if edit else text)
    for n, text in (extra or {}).items():
        with open(os.path.join(d, n), 'w', encoding='utf-8') as f:
            f.write(text)
    return d


def tool(*argv):
    """(exit status, stdout) of a poppler or qpdf command."""
    try:
        p = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=120)
    except FileNotFoundError:
        return 127, b''
    return p.returncode, p.stdout


def pdf_facts(data):
    """Pages, font rows (pdffonts), images per page (pdfimages -list) and
    the text (pdftotext) of a PDF."""
    path = os.path.join(TMP, 'facts.pdf')
    with open(path, 'wb') as f:
        f.write(data)
    rc, info = tool('pdfinfo', path)
    m = re.search(rb'^Pages:\s+(\d+)', info, re.M)
    pages = int(m.group(1)) if rc == 0 and m else None
    rc, fonts = tool('pdffonts', path)
    fonts = fonts.splitlines()[2:] if rc == 0 else None
    rc, imgs = tool('pdfimages', '-list', path)
    per_page = {} if rc == 0 else None
    for row in (imgs.splitlines()[2:] if rc == 0 else []):
        f = row.split()
        if len(f) > 2 and f[2] == b'image':
            per_page[int(f[0])] = per_page.get(int(f[0]), 0) + 1
    _, text = tool('pdftotext', path, '-')
    return {'pages': pages, 'fonts': fonts, 'images': per_page, 'text': text.strip()}


def contains(data, needle, depth=0):
    """needle in data, or in a member of data when data is a zip (nested
    zips too)."""
    if data is None:
        return False
    if needle in data:
        return True
    if depth < 4 and data[:4] == b'PK\x03\x04':
        try:
            with zipfile.ZipFile(io.BytesIO(data)) as z:
                return any(contains(z.read(i), needle, depth + 1) for i in z.infolist()
                           if i.file_size < 64 << 20)
        except (zipfile.BadZipFile, RuntimeError, NotImplementedError, OSError):
            return False
    return False


def carries(out, needle):
    """needle in the raw output, in a decoded part of it, or in a member of
    a zip it delivers."""
    if needle in out:
        return True
    return any(contains(part.get_payload(decode=True), needle)
               for part in parse(out).walk() if not part.is_multipart())


def quarantined(out, name, data):
    """Whether the quarantine holds the original of the mail sanitize wrote
    as out (its ID is in X-Mugaika-Result) with an attachment name whose
    bytes are data (`mugaika quarantine export`)."""
    try:
        qid = re.search(r'quarantine=([^;\s]+)', str(parse(out)['X-Mugaika-Result'] or ''))
    except Exception:  # noqa: BLE001 (an unparsable output has no quarantine ID)
        return False
    if not qid:
        return False
    p = subprocess.run([A.cli, 'quarantine', '--quarantine', Q, 'export', qid.group(1)],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60)
    return p.returncode == 0 and (name, data) in [(a[0], a[2])
                                                  for a in attachments(parse(p.stdout))]


# --- 1. flatten for high-risk senders ------------------------------------------
# The rule of docs/rules.md ("Example: flatten PDFs from high-risk senders")
# and docs/rules.ja.md, word for word: a file that sorts before
# 40-documents.rules, so that it wins over rule pdf (disarm).
HIGH_RISK_FILE = '35-high-risk.rules'
HIGH_RISK_RULE = """\
[rule high-risk-pdf]
description = PDF from a high-risk sender: render its pages to an image-only PDF.
part = attachment
sender = *@risky.example
detected-type = application/pdf
without-flags = encrypted
action = flatten
"""


def test_high_risk_flatten():
    rules = policy_dir('rules-high-risk', {HIGH_RISK_FILE: HIGH_RISK_RULE})
    src = corpus('mimekit', 'tnef', 'MAPI_ATTACH_DATA_OBJ', 'VIA_Nytt_1402.pdf')
    want = pdf_facts(src)  # 2 pages, 6 fonts, text
    audit = os.path.join(TMP, 'audit-high-risk.jsonl')
    name = 'VIA_Nytt_1402.pdf'

    # from a high-risk sender: flattened
    data = mail([(name, src)], sender='someone@risky.example')
    p = sanitize(data, rules=rules, audit=audit)
    atts = attachments(parse(p.stdout)) if p.returncode == 0 else []
    out = atts[0][2] if len(atts) == 1 and atts[0][1] == 'application/pdf' else b''
    got = pdf_facts(out)
    check(want['pages'] == 2 and want['fonts'] and want['text'] and got['pages'] == want['pages']
          and got['fonts'] == [] and not got['text']
          and got['images'] == {n: 1 for n in range(1, want['pages'] + 1)},
          'high-risk sender: the PDF arrives image-only (no fonts, no text, one image a page, '
          'as many pages as the original)', (p.returncode, [a[:2] for a in atts], got, want))
    part = last_audit(audit).get(name, {}) if p.returncode == 0 else {}
    insp = inspect_parts(data, rules).get(name, {})
    check(part.get('rule') == 'high-risk-pdf' and part.get('action') == 'flatten'
          and (part.get('cdr') or {}).get('handler') == 'pdf-flatten'
          and insp.get('rule') == 'high-risk-pdf' and insp.get('action') == 'flatten',
          'high-risk sender: audit and inspect say rule high-risk-pdf, action flatten',
          (part.get('rule'), part.get('action'), part.get('cdr'), insp.get('rule'),
           insp.get('action')))

    # the same PDF from anyone else: disarmed as usual, text and fonts kept
    data = mail([(name, src)], sender='someone@else.example')
    p = sanitize(data, rules=rules, audit=audit)
    atts = attachments(parse(p.stdout)) if p.returncode == 0 else []
    out = atts[0][2] if len(atts) == 1 and atts[0][1] == 'application/pdf' else b''
    got = pdf_facts(out)
    part = last_audit(audit).get(name, {}) if p.returncode == 0 else {}
    check(got['pages'] == want['pages'] and got['fonts'] and got['text'] == want['text']
          and part.get('rule') == 'pdf' and part.get('action') == 'disarm',
          'other sender, same policy: the PDF is disarmed (rule pdf), fonts and text kept',
          (p.returncode, [a[:2] for a in atts], len(got['fonts'] or []), got['text'][:80],
           part.get('rule'), part.get('action')))

    # an encrypted PDF from the high-risk sender is still held (rule encrypted)
    enc = corpus('tika', 'testPassword4Spaces.pdf')
    p = sanitize(mail([('locked.pdf', enc)], sender='someone@risky.example'), rules=rules,
                 audit=audit)
    part = last_audit(audit).get('locked.pdf', {}) if p.returncode == 0 else {}
    check(p.returncode == 0 and part.get('rule') == 'encrypted' and part.get('action') == 'hold'
          and not attachments(parse(p.stdout)),
          'high-risk sender, encrypted PDF: held by rule encrypted, as without the rule',
          (p.returncode, part.get('rule'), part.get('action')))

    # the documentation shows this very rule, in both languages
    docs = []
    for doc in ('rules.md', 'rules.ja.md'):
        with open(os.path.join(A.source, 'docs', doc), encoding='utf-8') as f:
            text = f.read()
        if '```ini\n# %s\n%s```' % (HIGH_RISK_FILE, HIGH_RISK_RULE) not in text:
            docs.append(doc)
    check(not docs, 'docs/rules.md and docs/rules.ja.md show the high-risk rule this test uses',
          docs)


# --- 2. links = remove, end to end ---------------------------------------------

def pdf_with_link(url):
    """A one-page PDF with a text line and a /URI link annotation over it."""
    objs = {
        1: b'<< /Type /Catalog /Pages 2 0 R >>',
        2: b'<< /Type /Pages /Kids [3 0 R] /Count 1 >>',
        3: (b'<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R '
            b'/Resources << /Font << /F1 5 0 R >> >> /Annots [6 0 R] >>'),
        4: stream(b'BT /F1 24 Tf 72 700 Td (Visit the site) Tj ET'),
        5: b'<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>',
        6: (b'<< /Type /Annot /Subtype /Link /Rect [72 690 300 720] /Border [0 0 0] '
            b'/A << /S /URI /URI (' + url + b') >> >>'),
    }
    return pdf_file(objs)[0]


def test_pdf_links_remove():
    url = b'https://link.example/landing'
    src = pdf_with_link(url)

    def run(rules):
        audit = os.path.join(TMP, 'audit-links.jsonl')
        p = sanitize(mail([('link.pdf', src)]), rules=rules, audit=audit)
        atts = attachments(parse(p.stdout)) if p.returncode == 0 else []
        if len(atts) != 1 or atts[0][1] != 'application/pdf':
            return None, None, (p.returncode, [a[:2] for a in atts], p.stderr[-300:])
        path = os.path.join(TMP, 'links.pdf')
        with open(path, 'wb') as f:
            f.write(atts[0][2])
        rc, x = tool('qpdf', '--qdf', '--object-streams=disable', path, '-')
        return (x if rc in (0, 3) else None), last_audit(audit).get('link.pdf', {}), \
            (p.returncode, rc)

    x, part, why = run(None)
    check(x is not None and re.search(rb'/S\s*/URI\b', x) and url in x
          and part.get('rule') == 'pdf' and part.get('action') == 'disarm',
          'PDF link, built-in policy (links = keep): the /URI action is still there',
          (why, x and re.findall(rb'/URI.{0,40}', x)))

    def links_remove(n, text):
        if n != '40-documents.rules':
            return text
        head, sep, rest = text.partition('[rule pdf]\n')
        group, sep2, tail = rest.partition('\n\n')
        new = group.replace('\naction = disarm', '\naction = disarm\nlinks = remove', 1)
        assert sep and new != group, 'rule pdf (action = disarm) not found in 40-documents.rules'
        return head + sep + new + sep2 + tail
    rules = policy_dir('rules-links-remove', edit=links_remove)
    x, part, why = run(rules)
    text = pdf_facts(open(os.path.join(TMP, 'links.pdf'), 'rb').read())['text'] if x else b''
    check(x is not None and not re.search(rb'/URI\b', x) and url not in x
          and text == b'Visit the site' and part.get('rule') == 'pdf'
          and any('link' in n for n in (part.get('cdr') or {}).get('notes', [])),
          'PDF link, rule pdf with links = remove: no /URI left, the text stays, the link is '
          'noted', (why, text, part.get('cdr'), x and re.findall(rb'/URI.{0,40}', x)))


# --- 3. the eicar set ------------------------------------------------------------

def test_eicar_set():
    d = os.path.join(CORPUS, 'eicar')
    names = sorted(n for n in os.listdir(d) if os.path.isfile(os.path.join(d, n)))
    check(len(names) >= 2, 'eicar set: found (%s)' % ', '.join(names), d)
    for n in names:
        with open(os.path.join(d, n), 'rb') as f:
            data = f.read()
        p = sanitize(mail([(n, data), ('after.txt', b'clean text\n')]))
        m = parse(p.stdout) if p.returncode == 0 else None
        atts = attachments(m) if m else []
        text = body_text(m) if m else ''
        check(p.returncode == 0 and [a[0] for a in atts] == ['after.txt']
              and atts[0][2] == b'clean text\n' and '"%s' % n in text
              and 'Mugaika.Test.EICAR' in text,
              'eicar set: %s removed, named in the notice with the virus, the rest delivered' % n,
              (p.returncode, [a[:2] for a in atts], text[:400], p.stderr[-300:]))
        check(p.returncode == 0 and not carries(p.stdout, EICAR),
              'eicar set: %s: no EICAR string in the output (raw, decoded parts, zip members)' % n)


# --- 4. types that must be dropped -------------------------------------------------

def ole2(root_clsid, streams):
    """A minimal OLE2 (CFB version 3) file: one FAT sector, the directory
    (four entries a sector), each stream in regular sectors (>= 4096
    bytes). A stream named "a/b" is stream b of storage a; the storages
    are made as their streams need them. The children of a storage are
    linked through their right siblings (a tree that leans one way)."""
    import struct
    S, FREE, END, FATSECT = 512, 0xFFFFFFFF, 0xFFFFFFFE, 0xFFFFFFFD
    nodes, index = [['Root Entry', 5, [], None]], {'': 0}  # [name, type, children, data]
    for path, data in streams:
        names = path.split('/')
        for k in range(1, len(names) + 1):
            key = '/'.join(names[:k])
            if key not in index:
                index[key] = len(nodes)
                nodes[index['/'.join(names[:k - 1])]][2].append(len(nodes))
                leaf = k == len(names)
                nodes.append([names[k - 1], 2 if leaf else 1, [], data if leaf else None])
    right = {}
    for _, _, kids, _ in nodes:
        right.update(zip(kids, kids[1:]))
    ndir = -(-len(nodes) // 4)
    fat, body, ents = [FATSECT] + list(range(2, ndir + 1)) + [END], b'', []
    for i, (name, typ, kids, data) in enumerate(nodes):
        start, size = (END if typ == 5 else 0), 0
        if typ == 2:
            data = data.ljust(max(4096, -(-len(data) // S) * S), b'\0')
            start, k = len(fat), len(data) // S
            fat += [start + j + 1 for j in range(k - 1)] + [END]
            body, size = body + data, len(data)
        n = name.encode('utf-16-le') + b'\0\0'
        ents.append(n.ljust(64, b'\0')
                    + struct.pack('<HBBIII', len(n), typ, 1, FREE, right.get(i, FREE),
                                  kids[0] if kids else FREE)
                    + (root_clsid if typ == 5 else b'\0' * 16) + b'\0' * 20
                    + struct.pack('<III', start, size, 0))
    assert len(fat) <= 128
    hdr = (b'\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1' + b'\0' * 16
           + struct.pack('<HHHHH6xIIIIIIIII', 0x3E, 3, 0xFFFE, 9, 6, 0, 1, 1, 0, 4096, END, 0,
                         END, 0)
           + struct.pack('<109I', 0, *[FREE] * 108))
    return (hdr + struct.pack('<128I', *fat + [FREE] * (128 - len(fat)))
            + b''.join(ents).ljust(ndir * S, b'\0') + body)


def summary_information(title):
    """A \\005SummaryInformation property set: code page and title."""
    import struct
    import uuid
    t = (title + b'\0').ljust(-(-(len(title) + 1) // 4) * 4, b'\0')
    props = [(1, struct.pack('<Ih2x', 2, 1252)),
             (2, struct.pack('<II', 0x1E, len(title) + 1) + t)]
    off, table, vals = 8 + 8 * len(props), b'', b''
    for pid, v in props:
        table += struct.pack('<II', pid, off + len(vals))
        vals += v
    fmtid = uuid.UUID('f29f85e0-4ff9-1068-ab91-08002b27b3d9').bytes_le
    return (struct.pack('<HHI16sI', 0xFFFE, 0, 0x00020006, b'\0' * 16, 1) + fmtid
            + struct.pack('<I', 48) + struct.pack('<II', off + len(vals), len(props)) + table
            + vals)


def drop_samples():
    """(label, extension, bytes, signature): minimal files of each type,
    the signature being what must not reach the output."""
    import struct
    import uuid
    lnk = bytes.fromhex('4C0000000114020000000000C000000000000046')
    lnk_file = lnk + struct.pack('<II', 0x81, 0x20) + b'\0' * 52 + b'\x01\0\0\0' + b'\0' * 64
    # OneNote (MS-ONESTORE 2.3.1): guidFileType, guidFile, guidLegacyFileVersion (0),
    # guidFileFormat, the four ffv fields (0x2A), the rest of the 1 KiB header
    one_guid = uuid.UUID('7b5c52e4-d88c-4da7-aeb1-5378d02996d3').bytes_le
    one = (one_guid + uuid.UUID('0e2b7f1c-6a0d-4e55-9d3c-1b2a3c4d5e6f').bytes_le + b'\0' * 16
           + uuid.UUID('109add3f-911b-49f5-a5d0-1791edc8aed8').bytes_le
           + struct.pack('<4I', 0x2A, 0x2A, 0x2A, 0x2A)).ljust(1024, b'\0') + b'\x01' * 1024
    chm = b'ITSF' + struct.pack('<IIII', 3, 0x60, 1, 0x12345678) + b'\0' * 0x50 + b'\x01' * 400
    msi_clsid = uuid.UUID('000c1084-0000-0000-c000-000000000046').bytes_le
    msi = ole2(msi_clsid, [('\x05SummaryInformation', summary_information(b'Installer'))])
    # VHD: a fixed disk is its data and a 512-byte footer ("conectix") at
    # the end; a dynamic one also has a copy of the footer at the start
    footer = (b'conectix' + struct.pack('>IIQI4sI4sQQI', 2, 0x10000, 0xFFFFFFFFFFFFFFFF, 0,
                                        b'mgka', 0x10000, b'Wi2k', 1 << 20, 1 << 20, 0)
              ).ljust(512, b'\0')
    mbr = bytearray(512)  # the disk: a boot sector with one NTFS partition, then zeros
    mbr[0:3] = b'\xeb\x63\x90'
    mbr[446:462] = struct.pack('<8BII', 0x80, 0, 2, 0, 0x07, 0xfe, 0xff, 0xff, 128, 2048)
    mbr[510:512] = b'\x55\xaa'
    vhd_fixed = bytes(mbr) + b'\0' * (1 << 16) + footer
    vhd_dynamic = footer + b'\0' * 1024 + footer
    vhdx = (b'vhdxfile' + 'mugaika'.encode('utf-16-le')).ljust(1 << 16, b'\0') + b'head' + \
        b'\0' * 4092
    pvd = b'\x01CD001\x01\x00' + b' ' * 32 + b'MUGAIKA'.ljust(32)  # at 0x8000: "CD001" at 0x8001
    iso = b'\0' * 0x8000 + pvd.ljust(2048, b'\0') + b'\xffCD001\x01'.ljust(2048, b'\0')
    coff = struct.pack('<HHIIIHH', 0x14c, 1, 0, 0, 0, 0xE0, 0x0102)
    opt = bytearray(struct.pack('<HBB', 0x10b, 14, 0).ljust(0xE0, b'\0'))
    opt[68:70] = struct.pack('<H', 2)  # subsystem: Windows GUI
    sect = b'.text\0\0\0' + struct.pack('<IIIIIIHHI', 0x1000, 0x1000, 0x200, 0x200, 0, 0, 0, 0,
                                        0x60000020)
    pe = (b'MZ' + b'\0' * 0x3a + struct.pack('<I', 0x40) + b'PE\0\0' + coff + bytes(opt)
          + sect).ljust(0x400, b'\0') + b'\xc3' + b'\0' * 0x1ff
    elf = (b'\x7fELF\x02\x01\x01\0' + b'\0' * 8
           + struct.pack('<HHIQQQIHHHHHH', 2, 0x3e, 1, 0x401000, 64, 0, 0, 64, 56, 1, 64, 0, 0)
           + struct.pack('<IIQQQQQQ', 1, 5, 0, 0x400000, 0x400000, 0x1000, 0x1000, 0x1000)
           ).ljust(0x1000, b'\0') + b'\xc3' * 16
    return [('Windows shortcut', 'lnk', lnk_file, lnk),
            ('OneNote', 'one', one, one_guid),
            ('CHM', 'chm', chm, chm[:16]),
            ('MSI', 'msi', msi, msi_clsid),
            ('HTA', 'hta', HTA, b'HTA:APPLICATION'),
            ('VHD (fixed, footer only)', 'vhd', vhd_fixed, footer[:16]),
            ('VHD (dynamic)', 'vhd', vhd_dynamic, footer[:16]),
            ('VHDX', 'vhdx', vhdx, b'vhdxfile'),
            ('ISO 9660', 'iso', iso, b'\x01CD001'),
            ('PE executable', 'exe', pe, pe[:0x40 + 24]),
            ('ELF executable', 'elf', elf, elf[:64])]


HTA = (b'<html><head><title>Invoice</title>\n'
       b'<HTA:APPLICATION ID="inv" APPLICATIONNAME="inv" WINDOWSTATE="minimize"/>\n'
       b'<script language="VBScript">CreateObject("WScript.Shell").Run "calc.exe"</script>\n'
       b'</head><body>Please wait</body></html>\n')


def test_drop_types():
    """Each file under its own extension and under a neutral name
    (file-N.dat), so both the name rule and the type rules are tried."""
    samples = drop_samples()
    items = []
    for i, (label, ext, data, sig) in enumerate(samples):
        items.append((label, 'sample%d.%s' % (i, ext), data, sig))
        if ext != 'hta':  # an HTA without its name is HTML: see below
            items.append((label, 'file-%d.dat' % i, data, sig))
    data = mail([(n, d) for _, n, d, _ in items] + [('after.txt', b'clean text\n')])
    audit = os.path.join(TMP, 'audit-drop.jsonl')
    p = sanitize(data, audit=audit)
    m = parse(p.stdout) if p.returncode == 0 else None
    out_names = [a[0] for a in attachments(m)] if m else []
    parts = [x.get_payload(decode=True) or b'' for x in m.walk() if not x.is_multipart()] \
        if m else []
    text = body_text(m) if m else ''
    rec = last_audit(audit) if p.returncode == 0 else {}
    insp = inspect_parts(data)
    check(p.returncode == 0 and 'after.txt' in out_names, 'drop types: the mail is delivered',
          (p.returncode, out_names, p.stderr[-300:]))
    for label, name, d, sig in items:
        a, i = rec.get(name, {}), insp.get(name, {})
        stem = name.rsplit('.', 1)[0]
        check(a.get('action') == 'drop' and i.get('action') == 'drop'
              and not any(n == name or n.startswith(stem + '.') for n in out_names)
              and not any(sig in x for x in parts) and not carries(p.stdout, d[:256])
              and '"%s"' % name in text,
              'drop types: %s as %s: dropped (%s, rule %s), not in the output by name or '
              'content, named in the notice' % (label, name, a.get('detected_type'),
                                                a.get('rule')),
              (a.get('detected_type'), a.get('rule'), a.get('action'), i.get('rule'),
               i.get('action'), out_names))

    # An HTA is HTML: only its name (rule attachment-executable-name) drops
    # it. Under another name it is converted to text like any HTML file: the
    # words only, no script, no HTA element.
    p = sanitize(mail([('invoice.html', HTA)]), audit=audit)
    atts = attachments(parse(p.stdout)) if p.returncode == 0 else []
    a = last_audit(audit).get('invoice.html', {}) if p.returncode == 0 else {}
    check(p.returncode == 0 and [x[:2] for x in atts] == [('invoice.html.txt', 'text/plain')]
          and a.get('rule') == 'attachment-html' and a.get('action') == 'text'
          and not any(k in atts[0][2] for k in (b'<script', b'HTA:', b'CreateObject', b'<html')),
          'HTA content named .html: converted to a text file (rule attachment-html), no markup '
          'or script left', (a.get('detected_type'), a.get('rule'), a.get('action'),
                             [(x[0], x[2][:100]) for x in atts]))

    # libmagic has no OneNote magic: the GUID with nothing but NULs after it
    # reads as text/plain (trailing NULs are ignored). Named .one, its name
    # drops it; under a neutral name it may only cross as an inert .txt.
    guid_only = samples[1][3] + b'\0' * 1008
    p = sanitize(mail([('notes.one', guid_only), ('notes.dat', guid_only)]), audit=audit)
    atts = attachments(parse(p.stdout)) if p.returncode == 0 else []
    rec = last_audit(audit) if p.returncode == 0 else {}
    a = rec.get('notes.one', {})
    check(p.returncode == 0 and a.get('rule') == 'attachment-executable-name'
          and a.get('action') == 'drop'
          and not any(x[0].lower().startswith('notes.one') for x in atts)
          and all(x[1] == 'text/plain' and x[0].endswith('.txt') for x in atts),
          'OneNote GUID + NULs only (%s): named .one, dropped by its name; under another '
          'name at most a .txt text file' % a.get('detected_type'),
          ([x[:2] for x in atts], a.get('rule'), a.get('action'),
           rec.get('notes.dat', {}).get('action')))


# --- 5. SVG drawings, a broken PDF, Ichitaro, scripts and disk images -----------

def gone(p, name, data, needles):
    """What is wrong with the attachment name (bytes data) that the run p
    must have removed: exit 0, no attachment named name or name.*, none
    of needles in the output (raw, decoded parts, zip members), the
    notice's line about name says it was removed, the original is in
    quarantine. [] when all of that holds."""
    if p.returncode != 0:
        return ['exit %d: %s' % (p.returncode, p.stderr[-300:])]
    m = parse(p.stdout)
    bad = ['delivered as %s' % a[0] for a in attachments(m)
           if a[0] == name or a[0].startswith(name + '.')]
    bad += ['%r in the output' % x for x in needles if carries(p.stdout, x)]
    line = notice_line(m, name)
    if 'removed' not in line:
        bad.append('notice: %r' % (line or body_text(m)[:300]))
    if not quarantined(p.stdout, name, data):
        bad.append('the original is not in quarantine')
    return bad


def svg_samples():
    """(label, name, bytes, needle): SVG drawings with a script that
    names its file (the needle). libmagic calls the first two text/plain
    (a comment, or blank lines, before the root), which rule
    attachment-text used to keep as they were."""
    ns = b'xmlns="http://www.w3.org/2000/svg"'
    u16 = '<svg onload="alert(\'f.svg\')"><rect/></svg>\n'.encode('utf-16-le')
    return [('a comment before the root', 'c.svg',
             b'<!-- drawing -->\n<svg ' + ns + b' onload="alert(\'c.svg\')"><rect/></svg>\n',
             b"alert('c.svg')"),
            ('blank lines before the root, a neutral name', 'd.dat',
             b'   \n\n<svg onload="alert(\'d.dat\')"><rect/></svg>\n', b"alert('d.dat')"),
            ('the XML declaration before the root', 'e.svg',
             b'<?xml version="1.0" encoding="UTF-8"?>\n<svg ' + ns + b' width="16" height="16">'
             b'<script>alert(\'e.svg\')</script><rect width="8" height="8"/></svg>\n',
             b"alert('e.svg')"),
            ('UTF-16 with a byte order mark', 'f.svg', b'\xff\xfe' + u16,
             "alert('f.svg')".encode('utf-16-le'))]


def test_svg():
    samples = svg_samples()
    data = mail([(n, d) for _, n, d, _ in samples] + [('after.txt', b'clean text\n')])
    p = sanitize(data)
    atts = attachments(parse(p.stdout)) if p.returncode == 0 else []
    markup = [x for w in ('<svg', 'onload', '<script', 'alert(')
              for x in (w.encode(), w.encode('utf-16-le')) if carries(p.stdout, x)]
    check(p.returncode == 0 and [(a[0], a[2]) for a in atts] == [('after.txt', b'clean text\n')]
          and not markup,
          'svg: the mail is delivered with the text attachment only, no SVG markup in it (raw, '
          'decoded parts; ASCII and UTF-16)',
          (p.returncode, [a[:2] for a in atts], markup, p.stderr[-300:]))
    insp = inspect_parts(data)
    for label, name, d, needle in samples:
        i = insp.get(name, {})
        bad = gone(p, name, d, [needle])
        check(i.get('detected_type') == 'image/svg+xml' and i.get('action') == 'drop' and not bad,
              'svg: %s (%s) is typed image/svg+xml and removed: nothing of it delivered, named in '
              'the notice, the original in quarantine' % (name, label),
              (i.get('detected_type'), i.get('rule'), i.get('action'), bad))


def test_text_reads_as_svg():
    """An RTF whose text begins with an SVG root: its text would be typed
    image/svg+xml, which no rule keeps as text, so it is removed as
    having no text form (not as a failed handler), with the reason in
    the audit record."""
    d = b'{\\rtf1\\ansi <svg onload="alert(1)"/> hello\\par}'
    data = mail([('s.rtf', d), ('after.txt', b'clean text\n')])
    audit = os.path.join(TMP, 'audit-rtf-svg.jsonl')
    p = sanitize(data, audit=audit)
    m = parse(p.stdout) if p.returncode == 0 else None
    a = last_audit(audit).get('s.rtf', {}) if m else {}
    bad = gone(p, 's.rtf', d, [b'onload', b'<svg'])
    line = notice_line(m, 's.rtf') if m else ''
    check(not bad and [x[0] for x in attachments(m)] == ['after.txt']
          and a.get('action') == 'drop' and a.get('forced') == 'no-text-form'
          and (a.get('cdr') or {}).get('reason') == 'its text reads as image/svg+xml'
          and 'cannot be made safe yet' in line,
          'RTF whose text begins with <svg>: removed as having no text form, nothing delivered',
          (bad, line, a.get('action'), a.get('forced'), a.get('cdr')))


def test_unparsable_pdf():
    """A PDF header and then noise: no objects, no xref, no trailer."""
    noise = random_bytes(4096)
    assert b'trailer' not in noise and b'xref' not in noise and b'obj' not in noise
    d = b'%PDF-1.7\n%\xe2\xe3\xcf\xd3\n' + noise
    data = mail([('broken.pdf', d), ('after.txt', b'clean text\n')])
    audit = os.path.join(TMP, 'audit-broken-pdf.jsonl')
    p = sanitize(data, audit=audit)
    m = parse(p.stdout) if p.returncode == 0 else None
    a = last_audit(audit).get('broken.pdf', {}) if m else {}
    i = inspect_parts(data).get('broken.pdf', {})
    bad = gone(p, 'broken.pdf', d, [b'%PDF', noise[:64]])
    line = notice_line(m, 'broken.pdf') if m else ''
    check(not bad and [x[0] for x in attachments(m)] == ['after.txt']
          and 'could not be rebuilt in a safe form' in line
          and a.get('rule') == 'pdf' and a.get('action') == 'drop' and i.get('action') == 'drop',
          'unparsable PDF: removed (rule pdf, the handler fails), the notice says it could not '
          'be made safe, nothing of it delivered, the original in quarantine',
          (bad, line, a.get('rule'), a.get('action'), a.get('forced'), a.get('cdr')))


def test_ichitaro():
    """An OLE2 file shaped like an Ichitaro document (.jtd), without and
    with a VBA project. ole-text reads only Word, Excel and PowerPoint:
    the built-in policy may turn such a file into its text (rule
    legacy-office) or remove it, never deliver it as it is; with a VBA
    project it is never kept, and its macro source never crosses."""
    import uuid
    clsid = uuid.UUID('8f1e6a52-3b7d-4c1e-9a0f-2d5c7b9e4a31').bytes_le  # made up
    words = '会議の資料です。一太郎で作りました。\n'.encode('utf-16-le')
    base = [('DocumentText', words), ('JSRV_SegmentList', b'\x01\0\0\0\x10\0\0\0' * 8),
            ('DocumentViewStyles', b'\x02\0' * 32)]
    source = b'Attribute VB_Name = "Module1"\r\nSub AutoOpen()\r\n  Shell "calc.exe"\r\nEnd Sub\r\n'

    def vba(top):
        return [(top + '/PROJECT', b'ID="{11111111-2222-3333-4444-555555555555}"\r\n'
                 b'Module=Module1\r\n'),
                (top + '/VBA/dir', b'\x01\x10\x00\x00\x03\x00\x00\x00'),
                (top + '/VBA/_VBA_PROJECT', b'\xcc\x61\xff\xff\x00\x00\x00'),
                (top + '/VBA/Module1', source)]
    name = '書類.jtd'
    audit = os.path.join(TMP, 'audit-jtd.jsonl')
    for label, streams in (('without macros', base),
                           ('with a VBA project (Macros/VBA)', base + vba('Macros')),
                           ('with a VBA project (_VBA_PROJECT_CUR/VBA)',
                            base + vba('_VBA_PROJECT_CUR'))):
        macros = streams is not base
        d = ole2(clsid, streams)
        data = mail([(name, d), ('after.txt', b'clean text\n')])
        p = sanitize(data, audit=audit)
        m = parse(p.stdout) if p.returncode == 0 else None
        a = last_audit(audit).get(name, {}) if m else {}
        i = inspect_parts(data).get(name, {})
        atts = attachments(m) if m else []
        mine = [x for x in atts if x[0] != 'after.txt']
        line = notice_line(m, name) if m else ''
        # delivered at most as a text file: no OLE2 signature, no stream
        # name, no macro source anywhere in it
        bad = [x for x in (d[:512], b'\xd0\xcf\x11\xe0', 'JSRV_SegmentList'.encode('utf-16-le'),
                           b'Shell "calc.exe"', b'Attribute VB_Name') if carries(p.stdout, x)]
        check(m is not None and a.get('action') in ('text', 'drop')
              and i.get('action') == a.get('action')
              and all(x[1] == 'text/plain' and x[0].endswith('.txt') for x in mine)
              and len(mine) == (a.get('action') == 'text') and not bad
              and ('removed' in line if not mine else 'text file' in line)
              and quarantined(p.stdout, name, d) and ('after.txt', b'clean text\n') in
              [(x[0], x[2]) for x in atts],
              'Ichitaro-like OLE2 %s: %s (rule %s), never delivered as it is, the notice says so, '
              'the original in quarantine' % (label, a.get('action'), a.get('rule')),
              (p.returncode, a.get('rule'), a.get('action'), a.get('forced'), i.get('action'),
               [x[:2] for x in atts], bad, line))
        if macros:
            check(a.get('action') not in (None, 'keep') and i.get('action') not in (None, 'keep')
                  and 'macros' in (a.get('flags') or []) and not bad,
                  'Ichitaro-like OLE2 %s: the macros are found (flag macros), the file is not '
                  'kept, no macro source crosses' % label,
                  (a.get('action'), i.get('action'), a.get('flags'), bad))


def test_macros_never_kept():
    """A policy that keeps OLE2 and OOXML files as they are (a rule an
    administrator might write before rule legacy-office): a file without
    macros is kept, one with a macro project is removed all the same
    (forced "macros"), in either language's notice. A rule that names
    the macros flag cannot keep at all (the policy does not load)."""
    import uuid
    keep = ('[rule keep-office]\n'
            'description = OLE2 files kept as they are (a test policy)\n'
            'part = attachment\n'
            'detected-type = application/x-ole-storage\n'
            'action = keep\n\n'
            '[rule keep-xlsm]\n'
            'description = Macro-enabled workbooks kept as they are (a test policy)\n'
            'part = attachment\n'
            'detected-type = application/vnd.openxmlformats-officedocument.*\n'
            'extension = xlsm\n'
            'action = keep\n')
    rules = policy_dir('policy-keep-office', {'35-keep-office.rules': keep})
    clsid = uuid.UUID('8f1e6a52-3b7d-4c1e-9a0f-2d5c7b9e4a31').bytes_le  # made up
    base = [('DocumentText', '資料です。\n'.encode('utf-16-le') * 300)]
    vba = [('Macros/VBA/dir', b'\x01\x10\x00\x00\x03\x00\x00\x00'),
           ('Macros/VBA/Module1', b'Attribute VB_Name = "Module1"\r\nSub AutoOpen()\r\nEnd Sub\r\n')]
    plain, macro = ole2(clsid, base), ole2(clsid, base + vba)
    xlsm = corpus('poi-testdata', 'spreadsheet', 'SimpleMacro.xlsm')
    # the same workbook with 300 KiB of picture before its parts: its
    # macro project's name first comes past the 256 KiB libmagic sees
    src = zipfile.ZipFile(io.BytesIO(xlsm))
    head = ['[Content_Types].xml', '_rels/.rels']
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, 'w', zipfile.ZIP_DEFLATED) as z:
        for n in head:
            z.writestr(n, src.read(n))
        z.writestr(zipfile.ZipInfo('xl/media/image9.png'), random_bytes(300 * 1024),
                   compress_type=zipfile.ZIP_STORED)
        for n in src.namelist():
            if n not in head:
                z.writestr(n, src.read(n))
    late = buf.getvalue()
    assert late.find(b'vbaProject.bin') > 256 * 1024
    audit = os.path.join(TMP, 'audit-keep-office.jsonl')
    data = mail([('plain.jtd', plain), ('macro.jtd', macro), ('SimpleMacro.xlsm', xlsm),
                 ('Late.xlsm', late)])
    for lang, says in (('en', 'contains macros'), ('ja', 'マクロが含まれている')):
        p = sanitize(data, rules=rules, audit=audit, lang=lang)
        m = parse(p.stdout) if p.returncode == 0 else None
        rec = last_audit(audit) if m else {}
        atts = [(a[0], a[2]) for a in attachments(m)] if m else []
        out = rec.get('plain.jtd', {}).get('output')  # renamed: .jtd is not an OLE2 name
        check(m is not None and (out, plain) in atts
              and rec.get('plain.jtd', {}).get('action') == 'keep',
              'keep-office policy (%s): the OLE2 file without macros is kept as it is' % lang,
              (p.returncode, [a[0] for a in atts], rec.get('plain.jtd')))
        for name, d in (('macro.jtd', macro), ('SimpleMacro.xlsm', xlsm), ('Late.xlsm', late)):
            a = rec.get(name, {})
            bad = ['delivered as %s' % n for n, _ in atts if n.startswith(name)]
            bad += ['macro bytes in the output'] if carries(p.stdout, d[-4096:]) else []
            line = notice_line(m, name) if m else ''
            check(m is not None and a.get('rule') in ('keep-office', 'keep-xlsm')
                  and a.get('action') == 'drop'
                  and a.get('forced') == 'macros' and 'macros' in (a.get('flags') or [])
                  and says in line and not bad and quarantined(p.stdout, name, d),
                  'keep-office policy (%s): %s, which has macros, is removed all the same '
                  '(forced macros, the notice says why, the original in quarantine)'
                  % (lang, name), (a.get('rule'), a.get('action'), a.get('forced'),
                                   a.get('flags'), line, bad))
    i = inspect_parts(data, rules=rules)
    check(i.get('macro.jtd', {}).get('action') == 'drop'
          and i.get('plain.jtd', {}).get('action') == 'keep',
          'keep-office policy: inspect shows the file with macros removed',
          (i.get('macro.jtd'), i.get('plain.jtd')))
    bad_rule = policy_dir('policy-keep-macros', {'35-keep-macros.rules': (
        '[rule keep-macros]\npart = attachment\nflags = macros\naction = keep\n')})
    p = subprocess.run([A.cli, 'rules', 'check', bad_rule], stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, timeout=60)
    err = p.stderr.decode('utf-8', 'replace')
    check(p.returncode == 78 and '35-keep-macros.rules:4: [rule keep-macros] action: keep is not '
          'allowed' in err,
          'a rule with flags = macros and action = keep does not load (file, line, key named)',
          (p.returncode, err[-400:]))


def test_script_and_disk_image():
    """A script that libmagic calls text (which rule attachment-text
    would keep) and a disk image of zeros: removed by their names."""
    js = b'var sh = new ActiveXObject("WScript.Shell");\nsh.Run("cmd /c calc.exe");\n'
    img = b'\0' * (1 << 16)
    items = [('invoice.js', js, [b'ActiveXObject', b'WScript.Shell']),
             ('disk.img', img, [b'\0' * 512])]
    data = mail([(n, d) for n, d, _ in items] + [('after.txt', b'clean text\n')])
    audit = os.path.join(TMP, 'audit-script.jsonl')
    p = sanitize(data, audit=audit)
    m = parse(p.stdout) if p.returncode == 0 else None
    atts = attachments(m) if m else []
    check(m is not None and [(a[0], a[2]) for a in atts] == [('after.txt', b'clean text\n')],
          'script and disk image: the mail is delivered with the text attachment only',
          (p.returncode, [a[:2] for a in atts], p.stderr[-300:]))
    rec = last_audit(audit) if m else {}
    for name, d, needles in items:
        a = rec.get(name, {})
        bad = gone(p, name, d, needles)
        check(a.get('rule') == 'attachment-executable-name' and a.get('action') == 'drop'
              and not bad and 'may run as a program' in notice_line(m, name),
              '%s (%s): removed by its name, not delivered, named in the notice, the original in '
              'quarantine' % (name, a.get('detected_type')), (a.get('rule'), a.get('action'), bad))


def main():
    subprocess.run(['bash', os.path.join(A.source, 'tests', 'av', 'make-testdb'), DB],
                   check=True, stdout=subprocess.DEVNULL, timeout=120)

    # --- a zip of everything ------------------------------------------------
    png = corpus('corkami', 'mini', 'png.png')
    js_pdf = corpus('tika', 'testPDF_jsActionOnPage.pdf')
    inner = zip_of([('写真.png', png)])
    outer = zip_of([('報告/メモ.txt', '会議は三時からです。\n'.encode()),
                    ('run.exe', b'MZ' + b'\0' * 200), ('invoice.pdf', js_pdf),
                    ('inner.zip', inner)])
    p = sanitize(mail([('書類.zip', outer)]))
    check(p.returncode == 0, 'zip: exit 0', p.stderr)
    m = parse(p.stdout)
    atts = attachments(m)
    names = [a[0] for a in atts]
    text = body_text(m)
    check('メモ.txt' in names and any(a[2] == '会議は三時からです。\n'.encode() for a in atts),
          'zip: the text member is delivered byte for byte under its own name', names)
    check(not any(n.endswith('.exe') for n in names) and '書類.zip/run.exe' in text,
          'zip: the program is removed and named "archive/member" in the notice', text)
    pdfs = [a for a in atts if a[1] == 'application/pdf']
    check(len(pdfs) == 1 and not any(k in pdfs[0][2] for k in ACTIVE),
          'zip: the PDF member is delivered without JavaScript', names)
    pngs = [a for a in atts if a[1] == 'image/png']
    check(len(pngs) == 1 and pngs[0][0] == '写真.png' and pngs[0][2].startswith(b'\x89PNG'),
          'zip in zip: the picture is delivered re-encoded under its name', names)
    check('unpacked' in text and '書類.zip' in text, 'zip: the notice says it was unpacked', text)
    check(not any(a[1] == 'application/zip' for a in atts), 'zip: no archive crosses', names)

    insp = subprocess.run([A.cli, 'inspect', '--clamav-db', DB, os.path.join(TMP, 'in.eml')],
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60)
    tree = insp.stdout.decode('utf-8', 'replace')
    check(insp.returncode == 0 and 'rule archive: unpack [archive: ok, 4 files]' in tree
          and re.search(r'2:3 application/pdf "invoice.pdf" .* -> rule pdf: disarm', tree)
          and re.search(r'2:4:1 image/png', tree),
          'inspect shows the members, their rules and the handlers', tree)

    # --- single documents ---------------------------------------------------
    docm = corpus('tika', 'testWORD_macros.docm')
    p = sanitize(mail([('議事録.docm', docm)]))
    atts = attachments(parse(p.stdout))
    ok = p.returncode == 0 and len(atts) == 1 and atts[0][0] == '議事録.docx'
    if ok:
        z = zipfile.ZipFile(io.BytesIO(atts[0][2]))
        ok = not any('vba' in n.lower() for n in z.namelist()) and \
            'word/document.xml' in z.namelist()
    check(ok, 'docm: delivered as .docx without the VBA project', [a[0] for a in atts])

    p = sanitize(mail([('js.pdf', js_pdf)]))
    atts = attachments(parse(p.stdout))
    check(p.returncode == 0 and len(atts) == 1 and atts[0][2].startswith(b'%PDF')
          and b'/JavaScript' not in atts[0][2] and b'/OpenAction' not in atts[0][2],
          'PDF: delivered without JavaScript', p.stderr)

    exif_jpg = corpus('corkami', 'mini', 'jpg.jpg')
    jpg = exif_jpg[:2] + b'\xff\xe1\x00\x10Exif\x00\x00secret!!' + exif_jpg[2:] + b'PK\x03\x04tail'
    p = sanitize(mail([('photo.jpg', jpg)]))
    atts = attachments(parse(p.stdout))
    check(p.returncode == 0 and len(atts) == 1 and atts[0][1] == 'image/jpeg'
          and b'secret!!' not in atts[0][2] and not atts[0][2].endswith(b'tail')
          and atts[0][2].endswith(b'\xff\xd9'),
          'JPEG: re-encoded, no EXIF, nothing after the end', [a[:2] for a in atts])

    # TIFF (its DocumentName tag and 16 bytes after the data): a fresh TIFF
    tif = corpus('python-email', 'python.tiff') + b'PK\x03\x04trailing bytes'
    p = sanitize(mail([('scan.tiff', tif)]))
    atts = attachments(parse(p.stdout))
    check(p.returncode == 0 and len(atts) == 1 and atts[0][1] == 'image/tiff'
          and atts[0][0] == 'scan.tiff' and atts[0][2][:4] == b'II*\0'
          and b'python.tiff' not in atts[0][2] and b'trailing' not in atts[0][2],
          'TIFF: re-encoded, no name tag, nothing after the data', [a[:2] for a in atts])

    rtf = corpus('tika', 'testRTFJapanese.rtf')
    p = sanitize(mail([('letter.rtf', rtf)]))
    atts = attachments(parse(p.stdout))
    check(p.returncode == 0 and len(atts) == 1 and atts[0][0] == 'letter.txt'
          and atts[0][1] == 'text/plain' and b'\\rtf' not in atts[0][2],
          'RTF: delivered as its text', [a[:2] for a in atts])

    # legacy Office: the text only, never the macros; encrypted: held
    vba = corpus('poi-testdata', 'document', 'SimpleMacro.vba').decode('utf-8', 'replace')
    vba_lines = [ln.strip() for ln in vba.splitlines() if len(ln.strip()) > 12]
    for name, path in (('macro.doc', ('poi-testdata', 'document', 'SimpleMacro.doc')),
                       ('macro.xls', ('poi-testdata', 'spreadsheet', 'SimpleMacro.xls')),
                       ('words.doc', ('tika', 'testWORD_macros.doc'))):
        p = sanitize(mail([(name, corpus(*path))]))
        m = parse(p.stdout)
        atts = attachments(m)
        text = atts[0][2].decode('utf-8', 'replace') if len(atts) == 1 else ''
        want = name.rsplit('.', 1)[0] + '.txt'
        check(p.returncode == 0 and len(atts) == 1 and atts[0][0] == want
              and atts[0][1] == 'text/plain' and text.strip()
              and not any(ln in text for ln in vba_lines) and 'Attribute VB_' not in text
              and b'\xd0\xcf\x11\xe0' not in p.stdout,
              '%s (OLE2 with macros): delivered as its text, no VBA' % name,
              (p.returncode, [a[:2] for a in atts], text[:200]))
    p = sanitize(mail([('secret.doc', corpus('poi-testdata', 'document',
                                             'password_password_cryptoapi.doc'))]))
    m = parse(p.stdout)
    check(p.returncode == 0 and not attachments(m) and 'held in quarantine' in body_text(m)
          and 'password' in body_text(m),
          'encrypted .doc: held, password notice', body_text(m))

    # --- members worked on ahead ---------------------------------------------
    # The next member's handler runs while the current one is worked on,
    # and its run is replayed into that member when its turn comes: in
    # either order of the members, each one gets exactly its own output,
    # and a member whose original scans infected is removed although its
    # handler already ran.
    bad_pdf = js_pdf + b'\n%' + EICAR + b'\n'
    ahead = [('a.docm', docm), ('b.pdf', js_pdf), ('c.pdf', bad_pdf), ('d.jpg', jpg),
             ('e.rtf', rtf), ('f.docx', corpus('tika', 'testWORD_embedded_pdf.docx')),
             ('g.png', corpus('corkami', 'mini', 'png.png'))]
    got = []
    for order in (ahead, list(reversed(ahead))):
        p = sanitize(mail([('ahead.zip', zip_of(order))]))
        m = parse(p.stdout)
        got.append((p.returncode, {a[0]: a[2] for a in attachments(m)}, body_text(m)))
    (rc1, a1, t1), (rc2, a2, t2) = got
    check(rc1 == 0 and rc2 == 0 and a1 == a2, 'ahead: the same outputs in either order',
          (sorted(a1), sorted(a2)))
    check(sorted(a1) == ['a.docx', 'b.pdf', 'd.jpg', 'e.txt', 'f.docx', 'g.png'],
          'ahead: every member but the infected one is delivered', sorted(a1))
    check(all(k not in a1.get('b.pdf', b'/JS') for k in ACTIVE)
          and b'vbaProject' not in a1.get('a.docx', b'vbaProject')
          and a1.get('d.jpg', b'').startswith(b'\xff\xd8') and b'secret!!' not in a1.get('d.jpg', b'')
          and b'\\rtf' not in a1.get('e.txt', b'\\rtf')
          and a1.get('g.png', b'').startswith(b'\x89PNG'),
          'ahead: each output is its own member\'s, rebuilt', sorted(a1))
    check(all('ahead.zip/c.pdf' in t and 'Mugaika.Test.EICAR' in t for t in (t1, t2)),
          'ahead: the infected member is removed and its virus named', t1)

    # --- an archive scanned while it is unpacked ----------------------------
    # The shallow scan of an archive runs while its members are unpacked
    # and worked on. EICAR in the zip's comment is found by that scan
    # alone (no member holds it): the archive is removed as infected with
    # everything made of its members (documents disarmed, pictures
    # rebuilt, scans still running), exactly as if it had been scanned
    # first; an attachment after it, and the same zip without the
    # comment, are delivered as usual. Nested, the inner zip alone goes.
    def commented(members, comment):
        b = io.BytesIO()
        with zipfile.ZipFile(b, 'w', zipfile.ZIP_DEFLATED) as z:
            for n, d in members:
                z.writestr(n, d)
            z.comment = comment
        return b.getvalue()
    late = ahead[:2] + ahead[3:]
    p = sanitize(mail([('late.zip', commented(late, b'note ' + EICAR)), ('after.txt', b'after\n')]))
    m = parse(p.stdout)
    names, text = [a[0] for a in attachments(m)], body_text(m)
    check(p.returncode == 0 and names == ['after.txt'] and 'late.zip' in text
          and 'Mugaika.Test.EICAR' in text and EICAR not in p.stdout,
          'archive found infected by its own scan after its members were worked on: removed with '
          'all of them, the virus named, the next attachment delivered', (names, text[:400]))
    check('late.zip/' not in text and 'X-Mugaika-Result' in p.stdout.decode('utf-8', 'replace')
          and 'members' not in str(m['X-Mugaika-Result']),
          'archive found infected late: its members leave no trace in the notice', text[:400])
    p = sanitize(mail([('late.zip', commented(late, b'just a note')), ('after.txt', b'after\n')]))
    names = sorted(a[0] for a in attachments(parse(p.stdout)))
    check(p.returncode == 0 and names == ['a.docx', 'after.txt', 'b.pdf', 'd.jpg', 'e.txt', 'f.docx',
                                          'g.png'],
          'the same archive with a clean comment: every member delivered', names)
    p = sanitize(mail([('outer.zip', zip_of([('x.txt', b'first\n'),
                                             ('in.zip', commented([('y.txt', b'inner\n')], EICAR)),
                                             ('z.txt', b'last\n')]))]))
    m = parse(p.stdout)
    atts, text = attachments(m), body_text(m)
    check(p.returncode == 0 and sorted(a[0] for a in atts) == ['x.txt', 'z.txt']
          and 'outer.zip/in.zip' in text and 'Mugaika.Test.EICAR' in text,
          'a nested archive found infected late: it alone goes, its siblings stay',
          ([a[0] for a in atts], text[:400]))

    # The archive's members do not count against the message's archive
    # totals once it is found infected late: a clean archive after it
    # keeps its room (archive-members = 5: 4 thrown away + 3 kept).
    bad = commented([('b%d.txt' % i, b'bad %d\n' % i) for i in range(4)], b'note ' + EICAR)
    good = zip_of([('g%d.txt' % i, b'good %d\n' % i) for i in range(3)])
    p = sanitize(mail([('bad.zip', bad), ('good.zip', good)]), conf={'archive-members': '5'})
    names = sorted(a[0] for a in attachments(parse(p.stdout)))
    check(p.returncode == 0 and names == ['g0.txt', 'g1.txt', 'g2.txt'],
          'an archive found infected late leaves the message\'s archive totals as they were', names)
    # Both scans find it: the archive's handler fails (a broken CRC), so it
    # is scanned whole, and its own scan, joined later, finds EICAR too
    # (under ASan, a leaked name would fail this run).
    b = io.BytesIO()
    with zipfile.ZipFile(b, 'w', zipfile.ZIP_STORED) as z:
        z.writestr('a.txt', b'hello world\n' * 10)
        z.comment = b'note ' + EICAR
    broken = bytearray(b.getvalue())
    broken[14] ^= 0xFF  # the CRC, in the local header
    broken[broken.find(b'PK\x01\x02') + 16] ^= 0xFF  # and in the central directory
    p = sanitize(mail([('crc.zip', bytes(broken))]))
    m = parse(p.stdout)
    check(p.returncode == 0 and not attachments(m) and 'Mugaika.Test.EICAR' in body_text(m)
          and not p.stderr.strip(), 'an archive found infected by both its scans: removed once, named',
          (p.returncode, body_text(m)[:300], p.stderr[-500:]))

    # A run made ahead still counts against the message's worker time: with
    # worker-budget = 1, four pictures that take 0.3 to 1 s each to rebuild
    # (36 Mpx, under max-pixels; four, so that even a quick machine runs
    # out of time) use it up, and the small one after them (rebuilt ahead
    # while the last slow one runs) is removed.
    import struct
    import zlib

    def png_of(w, h):
        raw = (b'\0' + bytes(range(256)) * (w * 3 // 256) + bytes(w * 3 % 256)) * h

        def chunk(t, d):
            return struct.pack('>I', len(d)) + t + d + struct.pack('>I', zlib.crc32(t + d))
        return (b'\x89PNG\r\n\x1a\n' + chunk(b'IHDR', struct.pack('>IIBBBBB', w, h, 8, 2, 0, 0, 0))
                + chunk(b'IDAT', zlib.compress(raw, 9)) + chunk(b'IEND', b''))
    slow = png_of(6000, 6000)
    p = sanitize(mail([('budget.zip', zip_of([('slow%d.png' % i, slow) for i in range(1, 5)]
                                              + [('small.png', corpus('corkami', 'mini',
                                                                      'png.png'))]))]),
                 conf={'worker-budget': '1'})
    m = parse(p.stdout)
    names = [a[0] for a in attachments(m)]
    check(p.returncode == 0 and 'small.png' not in names and 'slow4.png' not in names
          and 'budget.zip/small.png' in body_text(m) and 'budget.zip/slow4.png' in body_text(m),
          'ahead: a run made ahead is removed when the message\'s worker time is used up',
          (p.returncode, names, body_text(m)[:600]))
    # The small picture's run starts ahead while the budget is still there;
    # when the slow one before it then uses the budget up (it is removed),
    # the small one must be removed too, although its run was done.
    p = sanitize(mail([('budget.zip', zip_of([('slow.png', slow),
                                               ('small.png', corpus('corkami', 'mini',
                                                                    'png.png'))]))]),
                 conf={'worker-budget': '1'})
    names = [a[0] for a in attachments(parse(p.stdout))]
    check(p.returncode == 0 and ('slow.png' in names or 'small.png' not in names),
          'ahead: a run done ahead is not delivered once the time is used up before its turn',
          names)

    # --- what must not cross ------------------------------------------------
    # A handler's output is scanned again (while the next item is worked
    # on): an RTF whose text, once decoded, is EICAR (the RTF itself
    # scans clean: every character is a \\'hh escape) is removed; first
    # with another attachment after it, then as the last attachment.
    trick = (b'{\\rtf1\\ansi ' + b''.join(b"\\'%02x" % c for c in EICAR) + b'}')
    png_ok = corpus('corkami', 'mini', 'png.png')
    audit = os.path.join(TMP, 'audit.jsonl')
    for order in (('trick.rtf', 'pic.png'), ('pic.png', 'trick.rtf')):
        data = mail([(n, trick if n.endswith('.rtf') else png_ok) for n in order])
        path = os.path.join(TMP, 'trick.eml')
        with open(path, 'wb') as f:
            f.write(data)
        p = subprocess.run([A.cli, 'sanitize', '--clamav-db', DB, '--quarantine', Q, '--lang',
                            'en', '--audit', audit, path], stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, timeout=120)
        m = parse(p.stdout)
        names = [a[0] for a in attachments(m)]
        with open(audit) as f:
            rec = json.loads(f.read().splitlines()[-1])
        rtf_part = [x for x in rec['parts'] if x.get('filename') == 'trick.rtf']
        reason = (rtf_part[0].get('cdr') or {}).get('reason') or '' if rtf_part else ''
        check(p.returncode == 0 and names == ['pic.png'] and EICAR not in p.stdout
              and 'could not be rebuilt' in body_text(m)
              and reason.startswith('the output scanned as Mugaika.Test.EICAR'),
              'an output that scans infected is removed (%s first)' % order[0],
              (p.returncode, names, reason, body_text(m)[:300]))
    p = sanitize(mail([('eicar.zip', zip_of([('eicar.com', EICAR)]))]))
    m = parse(p.stdout)
    check(p.returncode == 0 and not attachments(m) and 'virus' in body_text(m).lower()
          and EICAR not in p.stdout, 'EICAR in a zip: removed, the virus named')
    enc = corpus('recursive-extractor', 'TestDataArchives', 'TestDataEncryptedAES.zip')
    p = sanitize(mail([('ppap.zip', enc)]))
    m = parse(p.stdout)
    check(p.returncode == 0 and not attachments(m) and 'password' in body_text(m)
          and 'held in quarantine' in body_text(m) and 'hold=1' in str(m['X-Mugaika-Result']),
          'encrypted zip: held (not delivered), the notice asks for the password', body_text(m))
    enc7 = corpus('recursive-extractor', 'TestDataArchives', 'TestDataEncrypted.7z')
    p = sanitize(mail([('ppap.7z', enc7)]))
    m = parse(p.stdout)
    check(p.returncode == 0 and not attachments(m) and 'password' in body_text(m)
          and 'held in quarantine' in body_text(m),
          'encrypted 7z (found by the handler): held, password notice', body_text(m))
    # an archive whose unpacking fails after a shallow scan is scanned whole
    # again: EICAR, then padding past libmagic's window, then an entry
    # marked encrypted (so the handler stops with "encrypted")
    b = io.BytesIO()
    with zipfile.ZipFile(b, 'w', zipfile.ZIP_DEFLATED) as z:
        z.writestr('eicar.com', EICAR)
        z.writestr(zipfile.ZipInfo('pad.bin'), random_bytes(300000), zipfile.ZIP_STORED)
        z.writestr(zipfile.ZipInfo('secret.txt'), b'secret\n', zipfile.ZIP_STORED)
    raw = bytearray(b.getvalue())
    for sig, off in ((b'PK\x03\x04', 6), (b'PK\x01\x02', 8)):
        at = raw.rfind(sig)  # the last entry's local header / central record
        raw[at + off] |= 1
    p = sanitize(mail([('mixed.zip', bytes(raw))]))
    m = parse(p.stdout)
    check(p.returncode == 0 and not attachments(m) and 'Mugaika.Test.EICAR' in body_text(m)
          and 'password' not in body_text(m),
          'an archive the handler gives up on (encrypted entry) is scanned whole: the virus '
          'is named, no password is asked for', body_text(m))
    deep = b'the bottom\n'
    name = 'bottom.txt'
    for i in range(7):
        deep = zip_of([(name, deep)])
        name = 'level%d.zip' % i
    p = sanitize(mail([('deep.zip', deep)]))
    m = parse(p.stdout)
    check(p.returncode == 0 and not attachments(m) and 'nested too deeply' in body_text(m),
          'archive nested 7 deep: removed at depth 5 with a notice', body_text(m))
    p = sanitize(mail([('deep.zip', deep)]), conf={'archive-depth': '8'})
    check(p.returncode == 0 and [a[2] for a in attachments(parse(p.stdout))] == [b'the bottom\n'],
          'archive-depth = 8: the bottom file is delivered', p.stderr)
    # the default (5) exactly: five zips nested are unpacked, six are not
    for n, ok in ((5, True), (6, False)):
        deep, name = b'the bottom\n', 'bottom.txt'
        for i in range(n):
            deep, name = zip_of([(name, deep)]), 'level%d.zip' % i
        p = sanitize(mail([('deep.zip', deep)]))
        m = parse(p.stdout)
        got = [a[2] for a in attachments(m)]
        check(p.returncode == 0 and (got == [b'the bottom\n'] if ok else
                                     not got and 'nested too deeply' in body_text(m)),
              'default archive-depth: %d zips nested %s' % (
                  n, 'are unpacked to the bottom file' if ok else 'are removed with a notice'),
              (got, body_text(m)[-300:]))
    # the default archive-members (1000): one more is too many
    many = zip_of([('f%d.txt' % i, b'x\n') for i in range(1001)])
    p = sanitize(mail([('many.zip', many)]))
    m = parse(p.stdout)
    check(p.returncode == 0 and not attachments(m) and 'could not be rebuilt' in body_text(m),
          'default archive-members: a zip of 1001 files is removed', body_text(m)[-300:])
    many = zip_of([('f%d.txt' % i, b'x\n') for i in range(10)])
    p = sanitize(mail([('many.zip', many)]), conf={'archive-members': '5'})
    m = parse(p.stdout)
    check(p.returncode == 0 and not attachments(m) and 'could not be rebuilt' in body_text(m),
          'archive-members = 5: a zip of 10 files is removed', body_text(m))

    # --- policy: flatten for some senders, links = remove, the eicar set,
    # --- types that must be dropped ----------------------------------------
    test_high_risk_flatten()
    test_pdf_links_remove()
    test_eicar_set()
    test_drop_types()
    test_svg()
    test_unparsable_pdf()
    test_ichitaro()
    test_script_and_disk_image()
    test_macros_never_kept()
    test_text_reads_as_svg()

    # --- bombs ------------------------------------------------------------
    bombs = os.path.join(CORPUS, 'recursive-extractor', 'Bombs')
    for b in sorted(os.listdir(bombs)):
        before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
        data = corpus('recursive-extractor', 'Bombs', b)
        p = sanitize(mail([(b, data)]))
        rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
        check(p.returncode == 0 and p.wall < 5.0,
              'bomb %s: done in %.2f s (exit %d)' % (b, p.wall, p.returncode), p.stderr)
        check(rss < 256 * 1024, 'bomb %s: every process under 256 MiB (%d KiB peak so far, '
              'before %d)' % (b, rss, before))
        m = parse(p.stdout)
        atts = attachments(m)
        check(all('..' not in a[0] and not a[0].startswith('/') for a in atts),
              'bomb %s: no traversal in delivered names' % b, [a[0] for a in atts])
        leaves = [x.get_content_type() for x in m.walk() if not x.is_multipart()]
        line = notice_line(m, b)
        if b.startswith('zip-slip'):
            # not a bomb: an archive whose members' names climb out of the
            # directory; it is unpacked, its text members cross under
            # their bare names
            check(atts and all(a[1] == 'text/plain' and '/' not in a[0] and '\\' not in a[0]
                               for a in atts) and 'unpacked' in line,
                  'bomb %s: unpacked, only its text members delivered, under bare names' % b,
                  ([a[:2] for a in atts], line))
            continue
        check(p.returncode == 0 and not atts and leaves == ['text/plain'] and 'removed' in line
              and not carries(p.stdout, data[:64]) and quarantined(p.stdout, b, data),
              'bomb %s: nothing of it delivered (the notice and the text only), the notice names '
              'it as removed, the original in quarantine' % b,
              (leaves, [a[:2] for a in atts], line))

    # --- the corpus sets --------------------------------------------------
    files = []
    for d in ('libarchive-testfiles', 'recursive-extractor', 'oletools', 'poi-testdata',
              'corkami', 'tika', 'openpreserve-format-corpus', 'eicar'):
        for root, _, names in os.walk(os.path.join(CORPUS, d)):
            for n in sorted(names):
                pth = os.path.join(root, n)
                if os.path.getsize(pth) <= 2 << 20 and not n.endswith(('.md', '.tsv')):
                    files.append(pth)
    files.sort()
    bad, slow, progs, eicar = [], [], [], []
    t_all = time.monotonic()
    fixed_bad = []
    for i in range(0, len(files), 10):
        group = files[i:i + 10]
        data = mail([(os.path.basename(f), open(f, 'rb').read()) for f in group])
        p = sanitize(data, timeout=300)
        if p.returncode != 0:
            bad.append((group, p.returncode, p.stderr[-300:]))
            continue
        if p.wall > 60:
            slow.append((group, p.wall))
        try:
            m = parse(p.stdout)
            for a in attachments(m):
                # a program, unless it crosses as a .txt text file (libmagic
                # calls the 4-byte corkami mocks "\x7fELF" and "MZ\0..." text)
                if a[2] is not None and (a[2][:2] == b'MZ' or a[2][:4] == b'\x7fELF') and \
                        not (a[1] == 'text/plain' and a[0].endswith('.txt')):
                    progs.append((group, a[0], a[1]))
        except Exception as e:  # noqa: BLE001 (any parse failure is a finding)
            bad.append((group, 'unparsable output', repr(e)))
        try:
            if carries(p.stdout, EICAR):
                eicar.append(group)
        except Exception as e:  # noqa: BLE001
            eicar.append((group, repr(e)))
        if (i // 10) % 10 == 0:
            once = p.stdout
            p2 = sanitize(once, timeout=300)
            strip = lambda b: re.sub(rb'X-Mugaika-Result:.*\n(?:[ \t].*\n)*', b'', b)  # noqa
            if p2.returncode != 0 or strip(p2.stdout) != strip(once):
                fixed_bad.append(group)
    check(files and not bad, 'corpus: %d files in %d mails, every one exit 0 with a parsable '
          'output' % (len(files), (len(files) + 9) // 10), bad[:5])
    check(not slow, 'corpus: every mail done within 60 s', slow[:5])
    check(not progs, 'corpus: no program crosses', progs[:5])
    check(not eicar, 'corpus: no output carries the EICAR string (raw, decoded parts, zip '
          'members)', eicar[:5])
    check(not fixed_bad, 'corpus: sanitising the output again changes nothing (sampled)',
          fixed_bad[:3])
    print('# corpus sweep: %.1f s' % (time.monotonic() - t_all))


try:
    main()
finally:
    shutil.rmtree(TMP, ignore_errors=True)
done()
