# SPDX-License-Identifier: GPL-2.0-or-later
"""The CDR handlers inside the pipeline: `mugaika sanitize` on mails with
documents, pictures and archives attached.

- A zip holding a text file, a program, a PDF with JavaScript, a picture
  and a nested zip: each member is delivered in its safe form (or
  removed with a notice naming "archive/member"), nothing active
  crosses, and the names are the members' names.
- A macro document (docm) arrives as a docx without its VBA project; a
  PDF with JavaScript arrives without it; a picture arrives re-encoded
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
  past 256 MiB.
- Every file of the CDR corpus sets (libarchive-testfiles,
  recursive-extractor, oletools, poi-testdata, corkami, tika,
  openpreserve-format-corpus) attached to a mail, ten per mail: exit 0,
  the output parses, no attachment of the output is a program, and the
  run finishes; the output is sanitised again to a fixed point for a
  sample of them.
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
from mails import attachments, body_text, parse  # noqa: E402
from tap import args, check, done, need_shared  # noqa: E402

A = args()
CORPUS = need_shared(A)
TMP = tempfile.mkdtemp(prefix='mugaika-cdr-pipeline.')
DB = os.path.join(TMP, 'db')
Q = os.path.join(TMP, 'q')
EICAR = (b'X5O!P%@AP[4\\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*')


def mail(attachments, body='本文です。\n'):
    m = EmailMessage()
    m['From'] = 'sender@example.jp'
    m['To'] = 'staff@example.lg.jp'
    m['Subject'] = 'CDR test'
    m['Message-ID'] = '<cdr-%d@example.jp>' % (time.monotonic_ns())
    m.set_content(body)
    for name, data in attachments:
        m.add_attachment(data, maintype='application', subtype='octet-stream', filename=name)
    return bytes(m)


def sanitize(data, conf=None, lang='en', timeout=120):
    path = os.path.join(TMP, 'in.eml')
    with open(path, 'wb') as f:
        f.write(data)
    cmd = [A.cli, 'sanitize', '--clamav-db', DB, '--quarantine', Q, '--lang', lang]
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
    # worker-budget = 1, two pictures that take about a second each to
    # rebuild (36 Mpx, under max-pixels) use it up, and the small one after
    # them (already rebuilt ahead) is removed.
    import struct
    import zlib

    def png_of(w, h):
        raw = (b'\0' + bytes(range(256)) * (w * 3 // 256) + bytes(w * 3 % 256)) * h

        def chunk(t, d):
            return struct.pack('>I', len(d)) + t + d + struct.pack('>I', zlib.crc32(t + d))
        return (b'\x89PNG\r\n\x1a\n' + chunk(b'IHDR', struct.pack('>IIBBBBB', w, h, 8, 2, 0, 0, 0))
                + chunk(b'IDAT', zlib.compress(raw, 9)) + chunk(b'IEND', b''))
    slow = png_of(6000, 6000)
    p = sanitize(mail([('budget.zip', zip_of([('slow1.png', slow), ('slow2.png', slow),
                                               ('small.png', corpus('corkami', 'mini',
                                                                    'png.png'))]))]),
                 conf={'worker-budget': '1'})
    m = parse(p.stdout)
    check(p.returncode == 0 and not attachments(m)
          and 'budget.zip/small.png' in body_text(m),
          'ahead: a run made ahead is removed when the message\'s worker time is used up',
          (p.returncode, [a[0] for a in attachments(m)], body_text(m)[:600]))
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
    many = zip_of([('f%d.txt' % i, b'x\n') for i in range(10)])
    p = sanitize(mail([('many.zip', many)]), conf={'archive-members': '5'})
    m = parse(p.stdout)
    check(p.returncode == 0 and not attachments(m) and 'could not be rebuilt' in body_text(m),
          'archive-members = 5: a zip of 10 files is removed', body_text(m))

    # --- bombs ------------------------------------------------------------
    bombs = os.path.join(CORPUS, 'recursive-extractor', 'Bombs')
    for b in sorted(os.listdir(bombs)):
        before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
        p = sanitize(mail([(b, corpus('recursive-extractor', 'Bombs', b))]))
        rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
        check(p.returncode == 0 and p.wall < 5.0,
              'bomb %s: done in %.2f s (exit %d)' % (b, p.wall, p.returncode), p.stderr)
        check(rss < 256 * 1024, 'bomb %s: every process under 256 MiB (%d KiB peak so far, '
              'before %d)' % (b, rss, before))
        atts = attachments(parse(p.stdout))
        check(all('..' not in a[0] and not a[0].startswith('/') for a in atts),
              'bomb %s: no traversal in delivered names' % b, [a[0] for a in atts])

    # --- the corpus sets --------------------------------------------------
    files = []
    for d in ('libarchive-testfiles', 'recursive-extractor', 'oletools', 'poi-testdata',
              'corkami', 'tika', 'openpreserve-format-corpus'):
        for root, _, names in os.walk(os.path.join(CORPUS, d)):
            for n in sorted(names):
                pth = os.path.join(root, n)
                if os.path.getsize(pth) <= 2 << 20 and not n.endswith(('.md', '.tsv')):
                    files.append(pth)
    files.sort()
    bad, slow, progs = [], [], []
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
    check(not fixed_bad, 'corpus: sanitising the output again changes nothing (sampled)',
          fixed_bad[:3])
    print('# corpus sweep: %.1f s' % (time.monotonic() - t_all))


try:
    main()
finally:
    shutil.rmtree(TMP, ignore_errors=True)
done()
