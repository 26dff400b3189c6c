# SPDX-License-Identifier: GPL-2.0-or-later
"""Encrypted archives (PPAP): held, then released with the password.

- A mail with an encrypted zip (WinZip AES, from the corpus) is
  delivered: its text arrives, the zip does not; the notice says the
  file is held and asks for the password; X-Mugaika-Result counts
  hold=1; the quarantine keeps the original, whose parts show the zip
  with action hold.
- `mugaika quarantine release ID --password WRONG`: exit 65, nothing on
  standard output, the error names the part and says the password does
  not open it.
- With the right password (--password; --password-file -; --output
  FILE): exit 0, the members arrive as attachments with their contents,
  the notice names the quarantine ID of the original, and nothing new
  is stored in the quarantine. The audit line says "release": true.
- The released members are sanitised like any attachment: a zip
  encrypted here (traditional PKWARE encryption, written by this test)
  holding EICAR, a docm with a VBA project and a text: EICAR is removed
  with the virus named, the docm arrives as a docx without its VBA
  project, the text arrives as it is.
- An encrypted zip inside a plain zip: only that member is held; the
  release opens it.
- An encrypted 7z (libarchive cannot decrypt 7z): the release fails with
  exit 65 and the part stays held.
- A mail with nothing held for a password: exit 65. An encrypted entry
  after the first 256 KiB (held by the handler rather than by the first
  look): released all the same. A release whose message another rule
  holds as a whole: exit 65, nothing written. An empty password: 64.
- The worker takes the password only from its environment: given on its
  command line as password=..., it is ignored (the archive stays
  "encrypted").
"""
import io
import json
import os
import random
import shutil
import struct
import subprocess
import sys
import tempfile
import time
import zipfile
import zlib
from email.message import EmailMessage

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from mails import attachments, body_text, parse  # noqa: E402
from tap import args, check, done, need_shared  # noqa: E402

A = args()
CORPUS = need_shared(A)
TMP = tempfile.mkdtemp(prefix='mugaika-cdr-release.')
DB = os.path.join(TMP, 'db')
Q = os.path.join(TMP, 'q')
AUDIT = os.path.join(TMP, 'audit.jsonl')
EICAR = (b'X5O!P%@AP[4\\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*')
ARCHIVES = os.path.join(CORPUS, 'recursive-extractor', 'TestDataArchives')


def mail(attachments, body='パスワードは別のメールでお送りします。\n'):
    m = EmailMessage()
    m['From'] = 'sender@example.jp'
    m['To'] = 'staff@example.lg.jp'
    m['Subject'] = 'PPAP'
    m['Message-ID'] = '<ppap-%d@example.jp>' % time.monotonic_ns()
    m.set_content(body)
    for name, data in attachments:
        m.add_attachment(data, maintype='application', subtype='octet-stream', filename=name)
    return bytes(m)


def run(cmd, stdin=None):
    return subprocess.run(cmd, input=stdin, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          timeout=300)


def sanitize(data):
    path = os.path.join(TMP, 'in.eml')
    with open(path, 'wb') as f:
        f.write(data)
    return run([A.cli, 'sanitize', '--clamav-db', DB, '--quarantine', Q, '--lang', 'en',
                '--audit', AUDIT, path])


def release(qid, *opts, stdin=None):
    return run([A.cli, 'quarantine', '--quarantine', Q, 'release', qid, '--clamav-db', DB,
                '--lang', 'en', '--audit', AUDIT] + list(opts), stdin=stdin)


def qid_of(out):
    r = parse(out).get('X-Mugaika-Result', '')
    for f in str(r).split(';'):
        f = f.strip()
        if f.startswith('quarantine='):
            return f[len('quarantine='):]
    return None


def quarantine_count():
    p = run([A.cli, 'quarantine', '--quarantine', Q, 'list', '--json'])
    return len([ln for ln in p.stdout.splitlines() if ln.strip()])


# --- a zip with traditional PKWARE encryption (APPNOTE 6.1) ----------------

def _crc_byte(crc, b):
    return zlib.crc32(bytes([b]), crc ^ 0xffffffff) ^ 0xffffffff


class ZipCrypto:
    def __init__(self, password):
        self.k = [0x12345678, 0x23456789, 0x34567890]
        for c in password:
            self.update(c)

    def update(self, c):
        k = self.k
        k[0] = _crc_byte(k[0], c)
        k[1] = ((k[1] + (k[0] & 0xff)) * 134775813 + 1) & 0xffffffff
        k[2] = _crc_byte(k[2], k[1] >> 24)

    def encrypt(self, data):
        out = bytearray()
        for p in data:
            t = (self.k[2] | 2) & 0xffff
            out.append(p ^ (((t * (t ^ 1)) >> 8) & 0xff))
            self.update(p)
        return bytes(out)


def encrypted_zip(members, password, seed=7):
    """members: (name, data) encrypted and deflated, or (name, data, False)
    stored as it is."""
    rnd = random.Random(seed)
    body, central = bytearray(), bytearray()
    for member in members:
        name, data = member[0], member[1]
        plain = len(member) > 2 and not member[2]
        crc = zlib.crc32(data)
        if plain:
            enc, flag, method = data, 0, 0
        else:
            co = zlib.compressobj(6, zlib.DEFLATED, -15)
            comp = co.compress(data) + co.flush()
            z = ZipCrypto(password)
            header = bytes(rnd.randrange(256) for _ in range(11)) + bytes([crc >> 24])
            enc, flag, method = z.encrypt(header) + z.encrypt(comp), 1, 8
        fname = name.encode()
        off = len(body)
        body += struct.pack('<IHHHHHIIIHH', 0x04034b50, 20, flag, method, 0, 0x21, crc, len(enc),
                            len(data), len(fname), 0) + fname + enc
        central += struct.pack('<IHHHHHHIIIHHHHHII', 0x02014b50, 20, 20, flag, method, 0, 0x21,
                               crc, len(enc), len(data), len(fname), 0, 0, 0, 0, 0, off) + fname
    eocd = struct.pack('<IHHHHIIH', 0x06054b50, 0, 0, len(members), len(members), len(central),
                       len(body), 0)
    return bytes(body + central + eocd)


def docm():
    src = os.path.join(CORPUS, 'poi-testdata', 'document', 'SimpleMacro.docm')
    with open(src, 'rb') as f:
        return f.read()


def main():
    subprocess.run(['bash', os.path.join(A.source, 'tests', 'av', 'make-testdb'), DB],
                   check=True, stdout=subprocess.DEVNULL, timeout=120)

    # the helper encrypts what a real unzip reads back (when zip is installed,
    # python's zipfile decrypts the traditional scheme)
    z = encrypted_zip([('a.txt', b'hello\n' * 50)], b'pw1')
    with zipfile.ZipFile(io.BytesIO(z)) as zf:
        zf.setpassword(b'pw1')
        ok = zf.read('a.txt') == b'hello\n' * 50
    check(ok, 'test helper: the traditional zip encryption written here decrypts')

    # --- held -----------------------------------------------------------------
    with open(os.path.join(ARCHIVES, 'TestDataEncryptedAES.zip'), 'rb') as f:
        aes = f.read()
    p = sanitize(mail([('report.zip', aes)]))
    m = parse(p.stdout)
    qid = qid_of(p.stdout)
    text = body_text(m)
    check(p.returncode == 0 and not attachments(m) and 'パスワードは別のメール' in text,
          'encrypted zip: the mail is delivered with its text, without the zip',
          (p.returncode, p.stderr[-500:], attachments(m)))
    check('report.zip' in text and 'held in quarantine' in text and 'password' in text
          and qid is not None and qid in text,
          'the notice says the zip is held, asks for the password and gives the ID', text)
    check('hold=1' in str(m.get('X-Mugaika-Result')) and '; held' not in
          str(m.get('X-Mugaika-Result')),
          'X-Mugaika-Result: hold=1, the message itself is not held',
          m.get('X-Mugaika-Result'))
    show = run([A.cli, 'quarantine', '--quarantine', Q, 'show', qid or '-', '--json'])
    try:
        parts = json.loads(show.stdout)['parts']
    except (ValueError, KeyError, TypeError):
        parts = []
    held = [x for x in parts if x.get('filename') == 'report.zip']
    check(len(held) == 1 and held[0].get('action') == 'hold'
          and 'encrypted' in held[0].get('flags', []),
          'the quarantine record shows the zip held, encrypted', show.stdout[-800:])
    stored = quarantine_count()

    # --- release --------------------------------------------------------------
    p = release(qid, '--password', 'wrong')
    check(p.returncode == 65 and p.stdout == b'' and b'report.zip' in p.stderr
          and b'does not open' in p.stderr,
          'wrong password: exit 65, nothing written, the part named', (p.returncode, p.stderr))

    p = release(qid, '--password', 'TestData')
    m = parse(p.stdout)
    atts = attachments(m)
    names = sorted(a[0] for a in atts)
    check(p.returncode == 0 and len(atts) == 3 and all(a[1] == 'text/plain' for a in atts)
          and all(b'Lorem ipsum' in a[2] for a in atts),
          'right password: the three members arrive with their text',
          (p.returncode, p.stderr[-500:], names))
    check(qid in body_text(m) and 'unpacked' in body_text(m),
          'the released mail names the original\'s quarantine ID', body_text(m))
    check(quarantine_count() == stored, 'the release stores nothing new in the quarantine')
    with open(AUDIT) as f:
        last = json.loads(f.read().splitlines()[-1])
    check(last.get('release') is True and last.get('quarantine_id') == qid
          and any(x.get('released') for x in last.get('parts', [])),
          'the audit line records the release and the opened part', str(last)[:600])

    out = os.path.join(TMP, 'released.eml')
    p = release(qid, '--password-file', '-', '--output', out, stdin=b'TestData\n')
    ok = p.returncode == 0 and p.stdout == b'' and os.path.exists(out)
    if ok:
        with open(out, 'rb') as f:
            ok = len(attachments(parse(f.read()))) == 3
    check(ok, '--password-file - and --output FILE: the file holds the released mail',
          (p.returncode, p.stderr[-300:]))
    out2 = os.path.join(TMP, 'not-written.eml')
    p = release(qid, '--password-file', '-', '--output', out2, stdin=b'nope\n')
    check(p.returncode == 65 and not os.path.exists(out2)
          and not [n for n in os.listdir(TMP) if n.startswith('not-written')],
          'a failed release leaves no output file (nor a temporary one)', p.returncode)

    # --- released members are sanitised -----------------------------------------
    z = encrypted_zip([('eicar.com', EICAR), ('macro.docm', docm()),
                       ('memo.txt', '会議は3時からです。\n'.encode())], b'himitsu')
    p = sanitize(mail([('forms.zip', z)]))
    qid2 = qid_of(p.stdout)
    check(p.returncode == 0 and not attachments(parse(p.stdout)) and qid2 is not None,
          'a zip encrypted by the test: held', p.stderr[-300:])
    p = release(qid2, '--password', 'himitsu')
    m = parse(p.stdout)
    atts = {a[0]: a for a in attachments(m)}
    check(p.returncode == 0 and EICAR not in p.stdout and 'eicar.com' not in atts
          and 'Mugaika.Test.EICAR' in body_text(m),
          'released: EICAR is removed and the virus named', (p.returncode, list(atts)))
    docx = atts.get('macro.docx')
    names = []
    if docx is not None:
        with zipfile.ZipFile(io.BytesIO(docx[2])) as zf:
            names = zf.namelist()
    check(docx is not None and names and not any('vbaProject' in n for n in names),
          'released: the docm arrives as a docx without its VBA project', (list(atts), names))
    memo = atts.get('memo.txt')
    check(memo is not None and memo[2].decode('utf-8', 'replace') == '会議は3時からです。\n',
          'released: the text member arrives as it is', memo and memo[2])

    # an encrypted zip inside a plain one: the member is held, the rest
    # delivered; the release opens the member
    outer = io.BytesIO()
    with zipfile.ZipFile(outer, 'w', zipfile.ZIP_DEFLATED) as zf:
        zf.writestr('readme.txt', b'the forms are in the inner zip\n')
        zf.writestr('inner.zip', encrypted_zip([('form.txt', b'form contents\n')], b'naka'))
    p = sanitize(mail([('outer.zip', outer.getvalue())]))
    m = parse(p.stdout)
    qid5 = qid_of(p.stdout)
    names = sorted(a[0] for a in attachments(m))
    check(p.returncode == 0 and names == ['readme.txt'] and 'outer.zip/inner.zip' in body_text(m)
          and 'held in quarantine' in body_text(m),
          'an encrypted member is held, the other members delivered', (names, body_text(m)))
    p = release(qid5, '--password', 'naka')
    names = sorted(a[0] for a in attachments(parse(p.stdout)))
    check(p.returncode == 0 and names == ['form.txt', 'readme.txt'],
          'the release opens the encrypted member', (p.returncode, names, p.stderr[-300:]))

    # the first encrypted entry after the first 256 KiB (what the first
    # look at the archive reads): held by the handler, released all the same
    late = encrypted_zip([('big.bin', random.Random(3).randbytes(300000), False),
                          ('secret.txt', b'the late secret\n')], b'osoi')
    p = sanitize(mail([('late.zip', late)]))
    qid6 = qid_of(p.stdout)
    check(p.returncode == 0 and 'held in quarantine' in body_text(parse(p.stdout)),
          'an encrypted entry after 256 KiB: held')
    p = release(qid6, '--password', 'osoi')
    atts = {a[0]: a[2] for a in attachments(parse(p.stdout))}
    check(p.returncode == 0 and atts.get('secret.txt') == b'the late secret\n',
          'an encrypted entry after 256 KiB: released with the password',
          (p.returncode, sorted(atts), p.stderr[-300:]))

    # a release whose message another rule holds as a whole: nothing written
    rules = os.path.join(TMP, 'rules')
    shutil.copytree(os.path.join(A.source, 'rules'), rules)
    with open(os.path.join(rules, '25-hold-csv.rules'), 'w') as f:
        f.write('[rule hold-csv]\npart = attachment\ndetected-type = text/csv\n'
                'action = hold\nnotice-en = held for review\n')
    data = mail([('early.zip', encrypted_zip([('a.txt', b'a\n')], b'pw')),
                 ('t.csv', b'a,b,c\n1,2,3\n4,5,6\n')])
    with open(os.path.join(TMP, 'in.eml'), 'wb') as f:
        f.write(data)
    p = run([A.cli, 'sanitize', '--clamav-db', DB, '--quarantine', Q, '--lang', 'en',
             '--rules', rules, os.path.join(TMP, 'in.eml')])
    qid7 = qid_of(p.stdout)
    check(p.returncode == 0 and qid7 is not None, 'a mail held as a whole by a rule of the test',
          (p.returncode, p.stderr[-300:]))
    if qid7 is None:
        return
    p = release(qid7, '--password', 'pw', '--rules', rules)
    check(p.returncode == 65 and p.stdout == b'' and b'held as a whole' in p.stderr,
          'a release whose message is held as a whole: exit 65, nothing written',
          (p.returncode, p.stderr[-300:]))
    p = release(qid, '--password', '')
    check(p.returncode == 64 and b'empty' in p.stderr, 'an empty password: usage, exit 64',
          (p.returncode, p.stderr))

    # --- what cannot be released ------------------------------------------------
    with open(os.path.join(ARCHIVES, 'TestDataEncrypted.7z'), 'rb') as f:
        p = sanitize(mail([('data.7z', f.read())]))
    qid3 = qid_of(p.stdout)
    p = release(qid3, '--password', 'TestData')
    check(p.returncode == 65 and p.stdout == b'' and b'data.7z' in p.stderr
          and b'stays held' in p.stderr,
          'encrypted 7z (not decryptable by libarchive): exit 65, stays held',
          (p.returncode, p.stderr))
    p = sanitize(mail([]))
    qid4 = qid_of(p.stdout)
    p = release(qid4, '--password', 'x')
    check(p.returncode == 65 and b'no part of it is held' in p.stderr,
          'a mail with nothing held for a password: exit 65', (p.returncode, p.stderr))
    p = release('20000101-nosuchitem', '--password', 'x')
    check(p.returncode == 66, 'an unknown ID: exit 66', (p.returncode, p.stderr))
    p = run([A.cli, 'quarantine', '--quarantine', Q, 'release', qid])
    check(p.returncode == 64 and b'--password' in p.stderr, 'no password: usage, exit 64',
          (p.returncode, p.stderr))

    # --- the worker never takes the password from its command line ----------------
    with open(os.path.join(ARCHIVES, 'TestDataEncryptedZipCrypto.zip'), 'rb') as f:
        data = f.read()
    item = os.path.join(TMP, 'item.zip')
    with open(item, 'wb') as f:
        f.write(data)
    env = dict(os.environ)
    env.pop('MUGAIKA_WORKER_PASSWORD', None)
    with open(item, 'rb') as f:
        p = subprocess.run([A.worker, 'archive', 'password=TestData'], stdin=f,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, timeout=60)
    check(b'"status":"encrypted"' in p.stdout, 'worker: password=... on the command line is '
          'ignored', p.stdout[-200:])
    env['MUGAIKA_WORKER_PASSWORD'] = 'TestData'
    with open(item, 'rb') as f:
        p = subprocess.run([A.worker, 'archive'], stdin=f, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, env=env, timeout=60)
    check(b'"status":"ok"' in p.stdout and b'Lorem ipsum' in p.stdout,
          'worker: the password from the environment opens the archive', p.stdout[-200:])


try:
    main()
finally:
    shutil.rmtree(TMP, ignore_errors=True)
done()
