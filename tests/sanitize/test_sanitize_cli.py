#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""test_sanitize_cli.py MUGAIKA MAKE_TESTDB - `mugaika sanitize` end to end.

Runs the real program on messages written here (and testdata/mail) with a
test signature database made by tests/av/make-testdb and a quarantine in a
temporary directory, and checks what a recipient and an administrator see:
exit codes, notices (Japanese and English), Japanese text, HTML with active
content, EICAR, the quarantine and the audit line.  TAP output.
"""
import base64
import email
import email.policy
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

MUG, MAKEDB, FAULT = sys.argv[1], sys.argv[2], sys.argv[3]
TESTDATA = os.environ.get('MUGAIKA_TESTDATA', os.path.join(os.path.dirname(__file__), '..', '..',
                                                           'testdata'))
TMP = tempfile.mkdtemp(prefix='mugaika-sanitize-cli.')
os.chmod(TMP, 0o755)
DB = os.path.join(TMP, 'db')
Q = os.path.join(TMP, 'q')
subprocess.run([MAKEDB, DB], check=True, stdout=subprocess.DEVNULL)
EICAR = ('X5O!P%@AP[4\\PZX54(P^)7CC)7}$' + 'EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*').encode()

results = []


def check(name, cond, detail=''):
    results.append((name, bool(cond), detail))


def write(name, data):
    path = os.path.join(TMP, name)
    with open(path, 'wb') as f:
        f.write(data)
    os.chmod(path, 0o644)
    return path


def run(args, stdin=None, env=None, user=None):
    cmd = [MUG, 'sanitize'] + args
    if user is not None:
        # the build tree may sit where that user cannot reach (/root):
        # run a copy of the program from the temporary directory
        own = os.path.join(TMP, 'mugaika')
        if not os.path.exists(own):
            shutil.copy2(MUG, own)
            os.chmod(own, 0o755)
            # and the CDR workers it starts (src/worker, src/pdf of the build)
            build = os.path.dirname(os.path.dirname(os.path.abspath(MUG)))
            for sub, prog in (('worker', 'mugaika-worker'), ('worker', 'mugaika-flatten'),
                              ('pdf', 'mugaika-pdf')):
                shutil.copy2(os.path.join(build, sub, prog), os.path.join(TMP, prog))
                os.chmod(os.path.join(TMP, prog), 0o755)
        env = dict(env if env is not None else os.environ, MUGAIKA_WORKER_DIR=TMP)
        cmd = ['setpriv', '--reuid=%d' % user, '--regid=%d' % user, '--clear-groups', own,
               'sanitize'] + args
    return subprocess.run(cmd, input=stdin, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          env=env, check=False, timeout=120)


def sanitize(path, *extra):
    return run(['--clamav-db', DB, '--quarantine', Q] + list(extra) + [path])


def parse(out):
    return email.message_from_bytes(out, policy=email.policy.default)


def body_text(msg):
    texts = []
    for part in msg.walk():
        if part.get_content_type() == 'text/plain' and part.get_filename() is None:
            texts.append(part.get_content())
    return '\n'.join(texts)


def mail(headers, body, ctype='text/plain; charset=utf-8', cte='8bit'):
    h = ''.join('%s: %s\n' % kv for kv in headers)
    return (h + 'MIME-Version: 1.0\nContent-Type: %s\nContent-Transfer-Encoding: %s\n\n' %
            (ctype, cte)).encode() + body


BASE = [('From', 'sender@example.com'), ('To', 'staff@city.example.lg.jp'),
        ('Subject', 'test'), ('Message-ID', '<t1@example.com>')]

# --- exit codes ----------------------------------------------------------
plain = write('plain.eml', mail(BASE, b'hello\n'))
r = sanitize(plain)
check('plain mail: exit 0 and a message on stdout', r.returncode == 0 and b'hello' in r.stdout,
      r.stderr.decode())
check('plain mail: nothing converted, so no notice', '無害化' not in body_text(parse(r.stdout)))

r = run(['--bogus'])
check('unknown option: exit 64, nothing on stdout', r.returncode == 64 and r.stdout == b'')
r = run(['--clamav-db', DB, '--lang', 'fr', plain])
check('--lang fr: exit 64', r.returncode == 64)
r = run(['--clamav-db', DB, '--quarantine', Q, os.path.join(TMP, 'missing.eml')])
check('unreadable input: exit 66 naming the file',
      r.returncode == 66 and b'missing.eml' in r.stderr and r.stdout == b'')
r = run(['--clamav-db', os.path.join(TMP, 'no-db'), '--quarantine', Q, plain])
check('missing AV database: exit 78 naming the directory',
      r.returncode == 78 and b'no-db' in r.stderr and r.stdout == b'', r.stderr.decode())
bad_rules = os.path.join(TMP, 'bad-rules')
os.mkdir(bad_rules)
write('bad-rules/10-x.rules', b'[rule x]\naction = keep\nbogus-key = 1\n')
r = run(['--rules', bad_rules, '--clamav-db', DB, '--quarantine', Q, plain])
check('bad rules: exit 78 naming file, line and key',
      r.returncode == 78 and re.search(rb'10-x\.rules:3:.*bogus-key', r.stderr) is not None
      and r.stdout == b'', r.stderr.decode())
r = run(['--clamav-db', DB, '--quarantine', Q, '--spool', os.path.join(TMP, 'no-spool'), plain])
check('spool directory missing: exit 75, nothing on stdout',
      r.returncode == 75 and r.stdout == b'', r.stderr.decode())

# an AV engine error during a scan (tests/fault/fault.c): retry later, never a pass
fenv = dict(os.environ, LD_PRELOAD=FAULT, MUGAIKA_FAULT='scan',
            ASAN_OPTIONS=os.environ.get('ASAN_OPTIONS', '') + ':verify_asan_link_order=0')
r = run(['--clamav-db', DB, '--quarantine', Q, plain], env=fenv)
check('AV engine error during a scan: exit 75, nothing on stdout',
      r.returncode == 75 and r.stdout == b'' and b'scan' in r.stderr,
      r.stderr.decode())
r = run(['--clamav-db', DB, '--quarantine', Q, plain],
        env=dict(fenv, MUGAIKA_FAULT='none'))
check('the same with the fault switched off: exit 0', r.returncode == 0, r.stderr.decode())

# read-only quarantine: as root, chmod alone stops nothing, so run as nobody
roq = os.path.join(TMP, 'ro-q')
os.mkdir(roq)
os.chmod(roq, 0o555)
r = run(['--clamav-db', DB, '--quarantine', roq, plain], user=65534 if os.geteuid() == 0 else None)
check('read-only quarantine directory: exit 75, nothing on stdout',
      r.returncode == 75 and r.stdout == b'', r.stderr.decode())
# a quarantine whose tmp/ cannot hold files (root cannot bypass this)
fq = os.path.join(TMP, 'file-q')
os.mkdir(fq)
write('file-q/tmp', b'not a directory')
r = run(['--clamav-db', DB, '--quarantine', fq, plain])
check('quarantine that cannot be written: exit 75, nothing on stdout',
      r.returncode == 75 and r.stdout == b'', r.stderr.decode())

rej_rules = os.path.join(TMP, 'reject-rules')
os.mkdir(rej_rules)
write('reject-rules/10-reject.rules',
      '[rule no-html]\npart = body\ndeclared-type = text/html\naction = reject\n'
      'notice-en = HTML mail is not accepted here\n\n[rule rest]\naction = keep\n'.encode())
html_mail = write('html.eml', mail(BASE, b'<p>hi</p>\n', 'text/html; charset=utf-8'))
r = run(['--rules', rej_rules, '--clamav-db', DB, '--quarantine', Q, html_mail])
check('policy reject: exit 1, reason on stderr, nothing on stdout',
      r.returncode == 1 and r.stdout == b'' and b'not accepted' in r.stderr, r.stderr.decode())

# configuration file: the database and language from the file, the
# command line winning over it; a bad key is a configuration error
conf = write('mugaika.conf', ('[mugaika]\nclamav-db = %s\nquarantine = %s\nlang = en\n'
                              % (DB, Q)).encode())
r = run(['--config', conf, write('cfg-eicar.eml', mail(BASE, b'x\n', 'text/plain'))])
check('config file: database and quarantine from the file', r.returncode == 0, r.stderr.decode())
eic = write('cfg-eicar2.eml', b'From: a@example.com\nSubject: x\nMIME-Version: 1.0\n'
            b'Content-Type: multipart/mixed; boundary="b"\n\n--b\n\nbody\n--b\n'
            b'Content-Type: application/octet-stream; name="e.com"\nContent-Transfer-Encoding: '
            b'base64\n\n' + base64.encodebytes(EICAR) + b'--b--\n')
r = run(['--config', conf, eic])
check('config file: lang = en gives an English notice', 'A virus' in body_text(parse(r.stdout)))
r = run(['--config', conf, '--lang', 'ja', eic])
check('command line overrides the config file', 'ウイルス' in body_text(parse(r.stdout)))
badconf = write('bad.conf', b'[mugaika]\nclamav-db = /x\nclamav_db = /y\n')
r = run(['--config', badconf, plain])
check('bad config: exit 78 naming file, line and key',
      r.returncode == 78 and re.search(rb'bad\.conf:3: clamav_db: unknown key', r.stderr) is not None
      and r.stdout == b'', r.stderr.decode())

# --- HTML with active content --------------------------------------------
active = b'''<html><head><title>t</title><meta http-equiv="refresh" content="0;url=http://evil.example/">
<script>alert('x')</script><style>p{color:red}</style></head>
<body onload="alert(1)"><h1>Notice of the council</h1>
<p>Please read the <a href="javascript:alert(2)">attached report</a> and the
<a href="https://city.example.jp/report">web page</a>.</p>
<iframe src="http://evil.example/frame"></iframe>
<form action="http://evil.example/post"><input name="pw"><button onclick="steal()">Send</button></form>
<img src="x.png" alt="logo"><div hidden>secret hidden text</div></body></html>
'''
r = sanitize(write('active.eml', mail(BASE, active, 'text/html; charset=utf-8')))
msg = parse(r.stdout)
text = body_text(msg)
low = r.stdout.lower() + text.lower().encode()
check('active HTML: exit 0', r.returncode == 0, r.stderr.decode())
check('active HTML: no HTML part in the output',
      all(p.get_content_type() != 'text/html' for p in msg.walk()))
for bad in (b'<script', b'javascript', b'onclick', b'onload', b'<iframe', b'alert(', b'refresh',
            b'secret hidden text', b'<form'):
    check('active HTML: output has no %r' % bad.decode(), bad not in low)
for good in ('Notice of the council', 'attached report', 'web page', 'hxxps://city[.]example[.]jp',
             '[画像: logo]'):
    check('active HTML: visible text kept: %s' % good, good in text, text)
check('active HTML: the notice says the HTML was converted', 'テキスト形式に変換' in text)

# --- Japanese --------------------------------------------------------------
def jis(s):
    return s.encode('iso2022_jp')


ja_subject_words = '=?ISO-2022-JP?B?' + base64.b64encode(jis('会議のお知らせ')).decode() + '?='
sjis_body = '添付の資料をご確認ください。半角ｶﾅもあります。\n'.encode('cp932')
r = sanitize(write('sjis.eml', mail([('From', 'a@example.jp'), ('To', 'b@example.lg.jp'),
                                      ('Subject', ja_subject_words)], sjis_body,
                                     'text/plain; charset=Shift_JIS')))
msg = parse(r.stdout)
check('Shift_JIS body and ISO-2022-JP subject: exact strings',
      msg['subject'] == '会議のお知らせ' and '半角ｶﾅもあります' in body_text(msg),
      '%r %r' % (msg['subject'], body_text(msg)))
euc = '住民票の写しを送付します。\n'.encode('euc_jp')
r = sanitize(write('euc.eml', mail([('From', 'a@example.jp'), ('Subject', 'x')], euc,
                                    'text/plain; charset=EUC-JP')))
check('EUC-JP body: exact string', '住民票の写しを送付します。' in body_text(parse(r.stdout)))
# a character split across two encoded words, and a raw 8-bit UTF-8 subject
w = '税務課からのお知らせ'.encode('utf-8')
split = '=?UTF-8?B?%s?= =?UTF-8?B?%s?=' % (base64.b64encode(w[:7]).decode(),
                                          base64.b64encode(w[7:]).decode())
r = sanitize(write('split.eml', mail([('From', 'a@example.jp'), ('Subject', split)], b'x\n')))
check('encoded words split inside a character', parse(r.stdout)['subject'] == '税務課からのお知らせ',
      parse(r.stdout)['subject'])
raw8 = b'From: a@example.jp\nSubject: \xe7\x94\xb3\xe8\xab\x8b\xe6\x9b\xb8\n\nbody\n'
r = sanitize(write('raw8.eml', raw8))
check('raw 8-bit subject re-encoded', parse(r.stdout)['subject'] == '申請書'
      and b'\xe7\x94\xb3' not in r.stdout.split(b'\n\n')[0])
r = sanitize(os.path.join(TESTDATA, 'mail', 'notice-iso2022jp.eml'))
msg = parse(r.stdout)
check('ISO-2022-JP (CP50221): ①, ㈱ and half-width kana survive',
      msg['subject'] == '【重要】説明会のご案内①' and '㈱山田商事の山田です。' in body_text(msg) and
      '半角カナのﾃｽﾄ：ｶﾅ' in body_text(msg) and '山田商事' in str(msg['from']),
      '%r' % body_text(msg)[:300])

# --- EICAR ------------------------------------------------------------------
eicar_mail = (b'From: a@example.com\nTo: b@example.lg.jp\nSubject: invoice\nMIME-Version: 1.0\n'
              b'Content-Type: multipart/mixed; boundary="b"\n\n--b\nContent-Type: text/plain\n\n'
              b'see attachment\n--b\nContent-Type: application/octet-stream; name="invoice.com"\n'
              b'Content-Transfer-Encoding: base64\n\n' + base64.encodebytes(EICAR) + b'--b--\n')
audit = os.path.join(TMP, 'audit.jsonl')
r = sanitize(write('eicar.eml', eicar_mail), '--audit', audit)
msg = parse(r.stdout)
text = body_text(msg)
check('EICAR: exit 0, attachment gone', r.returncode == 0 and
      all(p.get_filename() is None for p in msg.walk()), r.stderr.decode())
check('EICAR: not in the output', EICAR[:20] not in r.stdout and
      all(EICAR[:20] not in (p.get_payload(decode=True) or b'') for p in msg.walk()))
check('EICAR: the notice names the virus and the file',
      'Mugaika.Test.EICAR' in text and 'invoice.com' in text and 'ウイルス' in text, text)
res = msg['X-Mugaika-Result'] or ''
qid = re.search(r'quarantine=([0-9a-z-]+)', res)
check('EICAR: result header counts the infection', 'infected=1' in res, res)
check('EICAR: the quarantine id is in the notice', qid is not None and qid.group(1) in text)
# the original can be exported byte for byte
if qid:
    ex = subprocess.run([MUG, 'quarantine', '--quarantine', Q, 'export', qid.group(1)],
                        stdout=subprocess.PIPE, check=False)
    check('quarantine export gives the original bytes', ex.returncode == 0 and
          ex.stdout == eicar_mail)
with open(audit, encoding='utf-8') as f:
    lines = f.read().splitlines()
rec = json.loads(lines[-1]) if lines else {}
check('audit: one JSON line with parts, rule and action', len(lines) == 1 and
      any(p.get('virus', '') and p.get('action') == 'drop' for p in rec.get('parts', [])) and
      rec.get('quarantine_id') == (qid.group(1) if qid else None), lines[-1:] and lines[-1][:300])

# EICAR spelled with HTML character references: only the converted text
# holds it; the scan of the rebuilt message finds it and the mail is held
import quopri
ent = ''.join('&#%d;' % c for c in EICAR)
r = sanitize(write('eicar-entities.eml', mail(BASE, quopri.encodestring(('<p>' + ent + '</p>').encode()),
                                              'text/html', 'quoted-printable')))
msg = parse(r.stdout)
check('EICAR formed by HTML conversion: held, not delivered',
      r.returncode == 0 and 'held' in (msg['X-Mugaika-Result'] or '') and
      EICAR[:20] not in body_text(msg).encode() and 'ウイルスが検出' in body_text(msg),
      body_text(msg))

r = sanitize(write('eicar-en.eml', eicar_mail), '--lang', 'en')
check('--lang en: English notice', 'A virus (Mugaika.Test.EICAR' in body_text(parse(r.stdout)))

# --- a kept attachment: bytes unchanged, safe RFC 2231 name, MIME charset name
csv = '氏名,住所\r\n山田,東京\r\n'.encode('cp932')
att = (b'From: a@example.jp\nSubject: list\nMIME-Version: 1.0\n'
       b'Content-Type: multipart/mixed; boundary="b"\n\n--b\nContent-Type: text/plain\n\nbody\n'
       b'--b\nContent-Type: text/csv; charset=Shift_JIS\nContent-Disposition: attachment; '
       b"filename*=UTF-8''%E5%90%8D%E7%B0%BF%E2%80%AEvsc.txt\nContent-Transfer-Encoding: base64\n\n"
       + base64.encodebytes(csv) + b'--b--\n')
r = sanitize(write('csv.eml', att))
parts = [p for p in parse(r.stdout).walk() if p.get_filename()]
check('kept attachment: decoded bytes unchanged', len(parts) == 1 and
      parts[0].get_payload(decode=True) == csv)
check('kept attachment: bidi override removed',
      len(parts) == 1 and parts[0].get_filename() == '名簿vsc.txt',
      parts and parts[0].get_filename())
check('kept attachment: RFC 2231 UTF-8 file name, charset Shift_JIS',
      b"filename*=UTF-8''" in r.stdout and b'charset=Shift_JIS' in r.stdout)

# --- uuencode inside text, nested message --------------------------------
r = sanitize(os.path.join(TESTDATA, 'mail', 'uuencode-in-text.eml'))
text = body_text(parse(r.stdout))
check('uuencoded block: removed from the text, the file named in the notice',
      'begin 644' not in text and 'tool.exe' in text and 'M' not in text.split('\n')[-2:], text)
nested = (b'From: a@example.com\nSubject: fwd\nMIME-Version: 1.0\n'
          b'Content-Type: multipart/mixed; boundary="o"\n\n--o\nContent-Type: text/plain\n\n'
          b'see below\n--o\nContent-Type: message/rfc822\n\nFrom: inner@example.org\n'
          b'Subject: inner subject\nDate: Mon, 16 Nov 2026 10:00:00 +0900\n\ninner body text\n--o--\n')
r = sanitize(write('nested.eml', nested))
text = body_text(parse(r.stdout))
check('embedded message: flattened under a header block',
      'see below' in text and '差出人: inner@example.org' in text and
      '件名: inner subject' in text and 'inner body text' in text and
      all(p.get_content_type() != 'message/rfc822' for p in parse(r.stdout).walk()), text)

# --- idempotence on the samples --------------------------------------------
for name in sorted(os.listdir(os.path.join(TESTDATA, 'mail'))):
    r1 = sanitize(os.path.join(TESTDATA, 'mail', name))
    once = write('once.eml', r1.stdout)
    r2 = sanitize(once)
    strip = lambda b: re.sub(rb'X-Mugaika-Result:.*\n(?:[ \t].*\n)*', b'', b)
    check('idempotent: %s' % name, r1.returncode == 0 and strip(r1.stdout) == strip(r2.stdout))

shutil.rmtree(TMP, ignore_errors=True)
print('1..%d' % len(results))
for i, (name, ok, detail) in enumerate(results, 1):
    print('%s %d - %s' % ('ok' if ok else 'not ok', i, name))
    if not ok and detail:
        for line in str(detail).splitlines()[:15]:
            print('# ' + line)
sys.exit(0 if all(ok for _, ok, _ in results) else 1)
