# SPDX-License-Identifier: GPL-2.0-or-later
"""The rule option `repack = zip`: an archive's members, sanitised, come
back as one new zip.

With the built-in policy changed only by `repack = zip` on rule
`archive`, a mail with a zip holding folders, a Japanese name (no UTF-8
flag in the original), a "../" name, EICAR, a docm with a VBA project and
a nested zip:
- the output has exactly one attachment, a zip named after the original,
  which Python's zipfile reads and checks (CRCs);
- its entries are the surviving members, folders kept, "../" gone, the
  nested zip's members under a folder named after it, the Japanese name
  correct and marked UTF-8;
- EICAR is not in it (and the notice names the virus); the docm is in it
  as a docx without its VBA project; the texts are byte for byte;
- the notice says the archive was packed again;
- the same mail gives the same bytes twice, in two time zones;
- sanitising the output again gives the same zip (a fixed point).
Entry names are safe on Windows and SMB clients (device names, case,
file/folder clashes, trailing dots). 200 archives in one mail are
repacked with 64 file descriptors. Without the option the members arrive
as separate attachments.
"""
import io
import resource
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from email.message import EmailMessage

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from mails import attachments, body_text, parse  # noqa: E402
from tap import args, check, done, need_shared  # noqa: E402

A = args()
CORPUS = need_shared(A)
TMP = tempfile.mkdtemp(prefix='mugaika-cdr-repack.')
DB = os.path.join(TMP, 'db')
Q = os.path.join(TMP, 'q')
RULES = os.path.join(TMP, 'rules')
EICAR = (b'X5O!P%@AP[4\\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*')


def sanitize(data, rules=RULES, tz='UTC'):
    path = os.path.join(TMP, 'in.eml')
    with open(path, 'wb') as f:
        f.write(data)
    env = dict(os.environ, TZ=tz)
    return subprocess.run([A.cli, 'sanitize', '--clamav-db', DB, '--quarantine', Q, '--lang',
                           'en', '--rules', rules, path], stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, env=env, timeout=300)


def cp932_zip():
    """A zip whose first entry has a Shift_JIS name without the UTF-8 flag."""
    b = io.BytesIO()
    with zipfile.ZipFile(b, 'w', zipfile.ZIP_DEFLATED) as z:
        z.writestr('placeholder-name.txt', '申請書です。\n'.encode())
    raw = b.getvalue()
    old = b'placeholder-name.txt'
    new = '申請書.txt'.encode('cp932')
    # same length is not needed: rebuild through zipfile's own writer
    # instead, with the name as bytes (zipfile writes str names only), so
    # patch both headers and fix the lengths
    assert raw.count(old) == 2
    out = bytearray()
    i = 0
    while True:
        j = raw.find(old, i)
        if j < 0:
            out += raw[i:]
            break
        out += raw[i:j] + new
        i = j + len(old)
    # name length fields: local header at 0 (offset 26), central record
    lh = out.find(b'PK\x03\x04')
    out[lh + 26:lh + 28] = len(new).to_bytes(2, 'little')
    cd = out.find(b'PK\x01\x02')
    out[cd + 28:cd + 30] = len(new).to_bytes(2, 'little')
    eocd = out.find(b'PK\x05\x06')
    out[eocd + 16:eocd + 20] = cd.to_bytes(4, 'little')
    return bytes(out)


def test_zip():
    inner = io.BytesIO()
    with zipfile.ZipFile(inner, 'w', zipfile.ZIP_DEFLATED) as z:
        z.writestr('in.txt', b'inner text\n')
    with open(os.path.join(CORPUS, 'poi-testdata', 'document', 'SimpleMacro.docm'), 'rb') as f:
        docm = f.read()
    b = io.BytesIO()
    with zipfile.ZipFile(b, 'w', zipfile.ZIP_DEFLATED) as z:
        z.writestr('docs/a.txt', b'first\n')
        z.writestr('docs/sub/a.txt', b'second\n')
        z.writestr('../evil/b.txt', b'third\n')
        z.writestr('eicar.com', EICAR)
        z.writestr('forms/macro.docm', docm)
        z.writestr('inner.zip', inner.getvalue())
    return b.getvalue()


def mail(atts):
    m = EmailMessage()
    m['From'] = 'sender@example.jp'
    m['To'] = 'staff@example.lg.jp'
    m['Subject'] = 'repack'
    m['Date'] = 'Thu, 03 Dec 2026 10:00:00 +0900'
    m['Message-ID'] = '<repack@example.jp>'
    m.set_content('本文\n')
    for name, data in atts:
        m.add_attachment(data, maintype='application', subtype='zip', filename=name)
    return bytes(m)


def main():
    subprocess.run(['bash', os.path.join(A.source, 'tests', 'av', 'make-testdb'), DB],
                   check=True, stdout=subprocess.DEVNULL, timeout=120)
    shutil.copytree(os.path.join(A.source, 'rules'), RULES)
    path = os.path.join(RULES, '40-documents.rules')
    with open(path) as f:
        text = f.read()
    at = text.index('[rule archive]')
    end = text.index('action = unpack\n', at) + len('action = unpack\n')
    with open(path, 'w') as f:
        f.write(text[:end] + 'repack = zip\n' + text[end:])

    data = mail([('forms.zip', test_zip()), ('sjis.zip', cp932_zip())])
    p = sanitize(data)
    m = parse(p.stdout)
    atts = attachments(m)
    check(p.returncode == 0 and [a[0] for a in atts] == ['forms.zip', 'sjis.zip']
          and all(a[1] == 'application/zip' for a in atts),
          'repack = zip: one zip per archive, named after it',
          (p.returncode, p.stderr[-400:], [a[:2] for a in atts]))
    if len(atts) != 2:
        return
    z = zipfile.ZipFile(io.BytesIO(atts[0][2]))
    check(z.testzip() is None, 'the new zip reads back, every CRC right')
    names = sorted(z.namelist())
    check(names == ['docs/a.txt', 'docs/sub/a.txt', 'evil/b.txt', 'forms/macro.docx',
                    'inner.zip/in.txt'],
          'entries: folders kept, "../" gone, nested members under the nested zip\'s name, '
          'EICAR absent, the docm now a docx', names)
    check(z.read('docs/a.txt') == b'first\n' and z.read('docs/sub/a.txt') == b'second\n'
          and z.read('inner.zip/in.txt') == b'inner text\n', 'texts are byte for byte')
    docx = zipfile.ZipFile(io.BytesIO(z.read('forms/macro.docx'))) \
        if 'forms/macro.docx' in names else None
    check(docx is not None and not any('vbaProject' in n for n in docx.namelist())
          and 'word/document.xml' in docx.namelist(),
          'the docm is in the zip as a docx without its VBA project')
    check(EICAR not in p.stdout and 'Mugaika.Test.EICAR' in body_text(m),
          'EICAR removed, the virus named', body_text(m))
    check('packed again into "forms.zip"' in body_text(m), 'the notice says it was repacked',
          body_text(m))
    s = zipfile.ZipFile(io.BytesIO(atts[1][2]))
    infos = s.infolist()
    check(len(infos) == 1 and infos[0].filename == '申請書.txt'
          and infos[0].flag_bits & 0x800 and s.read(infos[0]) == '申請書です。\n'.encode(),
          'a Shift_JIS member name comes back right, flagged UTF-8',
          [(i.filename, hex(i.flag_bits)) for i in infos])

    again = sanitize(data, tz='Asia/Tokyo')
    a2 = attachments(parse(again.stdout))
    check(again.returncode == 0 and [a[2] for a in a2] == [a[2] for a in atts],
          'the same mail gives the same zips (another run, another time zone)')

    p2 = sanitize(p.stdout)
    a3 = attachments(parse(p2.stdout))
    check(p2.returncode == 0 and len(a3) == 2 and a3[0][2] == atts[0][2]
          and a3[1][2] == atts[1][2], 'sanitising the output again gives the same zips',
          (p2.returncode, [a[0] for a in a3]))

    # names a Windows or SMB client could not create, or would merge
    b = io.BytesIO()
    with zipfile.ZipFile(b, 'w', zipfile.ZIP_DEFLATED) as zf:
        for n in ('CON/x.txt', 'a.txt', 'A.txt', 'b.txt', 'b.txt/c.txt', 'dir. /d.txt'):
            zf.writestr(n, ('%s\n' % n).encode())
    p = sanitize(mail([('names.zip', b.getvalue())]))
    atts = attachments(parse(p.stdout))
    names = zipfile.ZipFile(io.BytesIO(atts[0][2])).namelist() if len(atts) == 1 else []
    check(names == ['_CON/x.txt', 'a.txt', 'A-2.txt', 'b.txt', 'b.txt-2/c.txt', 'dir/d.txt']
          and len({n.lower() for n in names}) == len(names),
          'entry names: device names, case, file/folder clashes and trailing dots made safe',
          names)

    # many archives in one mail: one zip writer open at a time, no
    # descriptor per archive (64 descriptors for 200 archives)
    many = []
    for k in range(200):
        b = io.BytesIO()
        with zipfile.ZipFile(b, 'w', zipfile.ZIP_DEFLATED) as zf:
            zf.writestr('n%03d.txt' % k, b'note %d\n' % k)
        many.append(('a%03d.zip' % k, b.getvalue()))
    path = os.path.join(TMP, 'many.eml')
    with open(path, 'wb') as f:
        f.write(mail(many))
    p = subprocess.run([A.cli, 'sanitize', '--clamav-db', DB, '--quarantine', Q, '--lang', 'en',
                        '--rules', RULES, path], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       timeout=600,
                       preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_NOFILE, (64, 64)))
    atts = attachments(parse(p.stdout))
    ok = p.returncode == 0 and len(atts) == 200
    for k, a in enumerate(atts if ok else []):
        z = zipfile.ZipFile(io.BytesIO(a[2]))
        ok = ok and a[0] == 'a%03d.zip' % k and z.namelist() == ['n%03d.txt' % k] and \
            z.read('n%03d.txt' % k) == b'note %d\n' % k
    check(ok, '200 archives repacked with 64 descriptors', (p.returncode, p.stderr[-300:],
                                                           len(atts)))

    p = sanitize(data, rules=os.path.join(A.source, 'rules'))
    names = sorted(a[0] for a in attachments(parse(p.stdout)))
    check(p.returncode == 0 and 'a.txt' in names and 'macro.docx' in names
          and 'forms.zip' not in names,
          'without the option: the members are separate attachments', names)


try:
    main()
finally:
    shutil.rmtree(TMP, ignore_errors=True)
done()
