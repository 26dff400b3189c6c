# SPDX-License-Identifier: GPL-2.0-or-later
"""End-to-end tests of mugaika-watch, the transfer folder (issue 6).

    test_e2e.py --watch MUGAIKA_WATCH --cli MUGAIKA --source SRC --shared SHARED [--only 1,3]

The real daemon runs on temporary folders (IN, OUT, state, quarantine,
a test ClamAV database made by tests/av/make-testdb). TAP on standard
output. Every daemon started here is stopped, even when a check fails;
the temporary folders are removed when every check passed and kept
(their path printed) otherwise.

1. Samples (one daemon, --lang en, --quiet-ms 500 --scan-ms 200; one
   file is waiting before the start, the others are dropped while it
   runs): a text file arrives byte for byte; a docm arrives as .docx
   without vbaProject; a clean docx (written here) and a clean PDF
   arrive usable; a PDF with /JavaScript arrives without it; a PNG and a
   JPEG arrive re-encoded; EICAR never arrives and the report names
   Mugaika.Test.EICAR; a zip's members arrive in a folder named after
   it; an
   encrypted zip is held (report only, "held"); an .eml with an HTML
   body arrives as a mail without HTML. A symlink (its target outside
   IN never read nor changed), a FIFO, a socket and one name of a hard
   link are refused with a report that says "refused" and names the
   kind; the other name of the hard link is processed. Each report:
   "NAME.mugaika.txt", CRLF lines, English title, a quarantine id whose
   item has kind "file" (or "message" for the .eml), subject NAME, and
   exports the original bytes. IN is empty at the end, OUT has no hidden
   temporary file, SIGTERM stops the daemon with status 0.
2. Slow writers (--quiet-ms 2000): two files are appended to every
   0.5 s for 4 s (one kept open, one reopened for each piece); OUT is
   polled all the time: their outputs never appear before the writer
   finished, and whatever is seen under the final name equals the full
   content.
3. 200 files dropped at once by 4 writer threads into IN/alice (there
   at the start) and IN/bob (made by the writers while the daemon
   runs): 200 outputs byte-equal to the inputs in OUT/<user>/, 200
   reports (Japanese, the default), no "(2)" duplicates, IN empty, 200
   quarantine items.
4. Crash loop: 60 text files (4-400 KiB) dropped in 15 batches while
   the daemon is started and killed with SIGKILL at random moments
   (fixed seed, delays 0.05-1.5 s); then 8 aimed kills (16 files of
   0.5-2 MiB): the moment a hidden temporary shows in OUT, or an output
   has its final name while its input is still in IN (random kills
   rarely land there: the daemon is fast); then one --once run: each
   input has exactly one output (equal to it) and one report, nothing
   else in OUT, no hidden temporary, IN empty, at least one quarantine
   item per input (76) and every input's bytes among their exports.
5. Archives as folders (--once runs): a zip with subfolders arrives as
   a folder named after it ("docs (2)" when "docs" is taken), every
   member in it, CON.txt as _CON.txt, the report lists the folder and
   its files; with layout = files (a copy of the rules) the members are
   separate files in OUT; a daemon killed between commit and rename
   (MUGAIKA_WATCH_TEST_KILL=commit) leaves a hidden folder and report,
   and the next run renames them and removes the input.
"""
import argparse
import hashlib
import io
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import zipfile

# --- TAP (tests/cdr/tap.py) ------------------------------------------------

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'cdr'))
import tap  # noqa: E402
from tap import check  # noqa: E402


def failures():
    return tap._count[1]


def note(text):
    for line in str(text).splitlines():
        print('# ' + line)
    sys.stdout.flush()


# --- arguments and the common material --------------------------------------

P = argparse.ArgumentParser()
P.add_argument('--watch', required=True, help='mugaika-watch executable')
P.add_argument('--cli', required=True, help='mugaika executable')
P.add_argument('--source', required=True, help='project source root')
P.add_argument('--shared', required=True, help='../shared (the corpus)')
P.add_argument('--only', default='', help='comma-separated test numbers to run (default all)')
A = P.parse_args()

HIDDEN = '.~mugaika-'
REPORT = '.mugaika.txt'
EICAR = b'X5O!P%@AP[4\\PZX54(P^)7CC)7}$' + b'EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*'
CORPUS = os.path.join(A.shared, 'corpus')

DAEMONS = []  # every Popen started here, stopped at the end in any case


def corpus(rel):
    with open(os.path.join(CORPUS, rel), 'rb') as f:
        return f.read()


def write(path, data):
    with open(path, 'wb') as f:
        f.write(data)


def read(path):
    with open(path, 'rb') as f:
        return f.read()


def wait_for(cond, timeout, step=0.1):
    """cond() until true or timeout seconds: its last value."""
    end = time.monotonic() + timeout
    while True:
        v = cond()
        if v or time.monotonic() >= end:
            return v
        time.sleep(step)


class Area:
    """The folders of one test: ROOT/<name>/{in,out,state,q}."""

    def __init__(self, root, name, db):
        self.base = os.path.join(root, name)
        self.inp = os.path.join(self.base, 'in')
        self.out = os.path.join(self.base, 'out')
        self.state = os.path.join(self.base, 'state')
        self.q = os.path.join(self.base, 'q')
        self.db = db
        for d in (self.inp, self.out, self.state, self.q):
            os.makedirs(d)
        self.logs = []

    def argv(self, extra):
        return [A.watch, '--in', self.inp, '--out', self.out, '--state', self.state, '--quarantine',
                self.q, '--clamav-db', self.db, '--foreground'] + list(extra)

    def log(self):
        n = len(self.logs)
        path = os.path.join(self.base, 'daemon-%02d.log' % n)
        self.logs.append(path)
        return path


class Daemon:
    def __init__(self, area, extra, env=None):
        self.area = area
        self.logpath = area.log()
        self.logf = open(self.logpath, 'wb')
        self.p = subprocess.Popen(area.argv(extra), stdin=subprocess.DEVNULL, stdout=self.logf,
                                  stderr=subprocess.STDOUT, start_new_session=True,
                                  env=None if env is None else dict(os.environ, **env))
        DAEMONS.append(self.p)

    def alive(self):
        return self.p.poll() is None

    def stop(self, timeout=60):
        """SIGTERM, then SIGKILL after timeout: (exit status, how)."""
        how = 'term'
        if self.p.poll() is None:
            self.p.send_signal(signal.SIGTERM)
            try:
                self.p.wait(timeout)
            except subprocess.TimeoutExpired:
                how = 'killed after %ds' % timeout
                self.p.kill()
                self.p.wait()
        else:
            how = 'had exited'
        self.logf.close()
        return self.p.returncode, how

    def kill(self):
        if self.p.poll() is None:
            self.p.kill()
        self.p.wait()
        self.logf.close()

    def tail(self, n=30):
        try:
            with open(self.logpath, 'rb') as f:
                lines = f.read().decode('utf-8', 'replace').splitlines()
        except OSError:
            return ''
        return '\n'.join(lines[-n:])


def run_once(area, extra, timeout=180, env=None):
    """A --once run: (status or None on timeout, log tail)."""
    d = Daemon(area, list(extra) + ['--once'], env)
    try:
        d.p.wait(timeout)
    except subprocess.TimeoutExpired:
        d.kill()
        return None, d.tail()
    d.logf.close()
    return d.p.returncode, d.tail()


def qlist(q):
    p = subprocess.run([A.cli, 'quarantine', '--quarantine', q, 'list', '--json'],
                       capture_output=True, timeout=60)
    if p.returncode != 0:
        raise RuntimeError('quarantine list: %d %s' % (p.returncode, p.stderr.decode('utf-8', 'replace')))
    return [json.loads(ln) for ln in p.stdout.decode('utf-8').splitlines() if ln.strip()]


def qexport(q, qid):
    p = subprocess.run([A.cli, 'quarantine', '--quarantine', q, 'export', qid],
                       capture_output=True, timeout=60)
    return p.stdout if p.returncode == 0 else None


def files_in(d):
    """Names of the non-directory entries of d (recursively, relative)."""
    out = []
    for top, dirs, files in os.walk(d):
        for f in files:
            out.append(os.path.relpath(os.path.join(top, f), d))
        for x in dirs:
            if os.path.islink(os.path.join(top, x)):
                out.append(os.path.relpath(os.path.join(top, x), d))
    return sorted(out)


def hidden_in(d):
    return [f for f in files_in(d) if os.path.basename(f).startswith(HIDDEN)]


def report_of(out, name):
    path = os.path.join(out, name + REPORT)
    try:
        return read(path).decode('utf-8', 'replace')
    except OSError:
        return None


def delivered(rep):
    """The output names listed in a report under its "Delivered:" (or
    Japanese) heading."""
    names, inside = [], False
    for line in rep.split('\r\n'):
        if line in ('Delivered:', '次のファイルをお届けしました:'):
            inside = True
            continue
        if inside:
            if line.startswith('  - '):
                names.append(line[4:])
            else:
                break
    return names


def quarantine_id(rep):
    for line in rep.split('\r\n'):
        for key in ('Quarantine ID: ', '隔離ID: '):
            if line.startswith(key):
                return line[len(key):].strip()
    return None


def crlf_only(rep):
    return all(rep[i - 1] == '\r' for i in range(len(rep)) if rep[i] == '\n' and i > 0) \
        and not rep.startswith('\n')


# --- samples made here --------------------------------------------------------

def clean_docx(marker):
    b = io.BytesIO()
    with zipfile.ZipFile(b, 'w', zipfile.ZIP_DEFLATED) as z:
        z.writestr('[Content_Types].xml',
                   '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
                   '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
                   '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
                   '<Default Extension="xml" ContentType="application/xml"/>'
                   '<Override PartName="/word/document.xml" ContentType="application/'
                   'vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml"/></Types>')
        z.writestr('_rels/.rels',
                   '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
                   '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
                   '<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/'
                   'relationships/officeDocument" Target="word/document.xml"/></Relationships>')
        z.writestr('word/document.xml',
                   '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
                   '<w:document xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main">'
                   '<w:body><w:p><w:r><w:t>%s</w:t></w:r></w:p></w:body></w:document>' % marker)
    return b.getvalue()


def members_zip(members):
    b = io.BytesIO()
    with zipfile.ZipFile(b, 'w', zipfile.ZIP_DEFLATED) as z:
        for name, data in members:
            z.writestr(name, data)
    return b.getvalue()


HTML_MAIL = ('From: a@example.org\r\nTo: b@example.jp\r\nSubject: html\r\nMIME-Version: 1.0\r\n'
             'Content-Type: text/html; charset=utf-8\r\n\r\n'
             '<html><body><p>お知らせ <a href="https://example.org/x">link</a></p>'
             '<script>alert(1)</script></body></html>\r\n').encode('utf-8')


def check_report(area, name, original, kind, lang, label, subject=True):
    """The common checks of a processed file's report and quarantine
    item; returns the report text (or None)."""
    rep = report_of(area.out, name)
    if not check(rep is not None, '%s: report %s%s' % (label, name, REPORT)):
        return None
    title = '[Sanitisation report]' if lang == 'en' else '【無害化処理の報告】'
    check(rep.split('\r\n', 1)[0] == title, '%s: report title (%s)' % (label, lang), rep[:200])
    check(crlf_only(rep), '%s: report lines end in CRLF' % label)
    qid = quarantine_id(rep)
    if not check(qid is not None, '%s: report has the quarantine id line' % label, rep[:600]):
        return rep
    items = [i for i in QCACHE.get(area.q, []) if i.get('id') == qid]
    if not items:
        QCACHE[area.q] = qlist(area.q)
        items = [i for i in QCACHE[area.q] if i.get('id') == qid]
    if check(len(items) == 1, '%s: quarantine item %s listed' % (label, qid)):
        it = items[0]
        check(it.get('kind') == kind and (not subject or it.get('subject') == name),
              '%s: quarantine item kind %s%s' % (label, kind, ', subject ' + name if subject else ''),
              'kind %r subject %r' % (it.get('kind'), it.get('subject')))
        check(qexport(area.q, qid) == original, '%s: quarantine export equals the original' % label)
    return rep


QCACHE = {}


# --- test 1: the samples ------------------------------------------------------

def test_samples(root, db):
    area = Area(root, 't1', db)
    outside = os.path.join(root, 't1', 'outside')
    os.makedirs(outside)
    secret_path = os.path.join(outside, 'secret.txt')
    secret = b'not for the transfer folder: a symlink target outside IN\n'
    write(secret_path, secret)
    os.utime(secret_path, (1000000000, 1000000000))

    text = 'お知らせ\n日本語のテキスト。\nplain line\n'.encode('utf-8')
    docx_marker = 'mugaika-clean-docx-marker'
    zmembers = [('zm-a.txt', b'first member\n'), ('フォルダ/zm-b.txt', 'second member 二\n'.encode('utf-8'))]
    samples = {
        'hello.txt': text,
        '申請書.docm': corpus('poi-testdata/document/SimpleMacro.docm'),
        'clean.docx': clean_docx(docx_marker),
        'clean.pdf': corpus('ruby-mail/attachments/test.pdf'),
        'js.pdf': corpus('corkami/pdf/javascript.pdf'),
        'image.png': corpus('corkami/mini/png.png'),
        'photo.jpg': corpus('corkami/mini/jpg.jpg'),
        'eicar.txt': EICAR,
        'members.zip': members_zip(zmembers),
        'locked.zip': corpus('recursive-extractor/TestDataArchives/TestDataEncryptedZipCrypto.zip'),
        'notice.eml': HTML_MAIL,
    }
    check(b'/JavaScript' in samples['js.pdf'], 'material: js.pdf has /JavaScript')
    check(b'vbaProject' in samples['申請書.docm'], 'material: the docm has a vbaProject')
    hl_data = b'one file, two names\n'

    # one file waits before the start
    write(os.path.join(area.inp, 'hello.txt'), samples['hello.txt'])
    d = Daemon(area, ['--lang', 'en', '--quiet-ms', '500', '--scan-ms', '200'])
    sock = None
    try:
        time.sleep(0.5)
        for name, data in samples.items():
            if name != 'hello.txt':
                write(os.path.join(area.inp, name), data)
        os.symlink(secret_path, os.path.join(area.inp, 'link.txt'))
        os.mkfifo(os.path.join(area.inp, 'pipe.txt'))
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.bind(os.path.join(area.inp, 'sock'))
        write(os.path.join(area.inp, 'hl-1.txt'), hl_data)
        os.link(os.path.join(area.inp, 'hl-1.txt'), os.path.join(area.inp, 'hl-2.txt'))

        names = list(samples) + ['link.txt', 'pipe.txt', 'sock', 'hl-1.txt', 'hl-2.txt']
        wait_for(lambda: not d.alive() or (not os.listdir(area.inp) and
                 all(report_of(area.out, n) is not None for n in names)), 150, 0.2)
        left = sorted(os.listdir(area.inp))
        check(not left, 'samples: IN is empty at the end', left)
        check(d.alive(), 'samples: the daemon is still running', d.tail())
        out_files = files_in(area.out)
        note('samples: OUT holds %s' % out_files)

        QCACHE[area.q] = qlist(area.q)
        reps = {}
        for name, data in samples.items():
            kind = 'message' if name.endswith('.eml') else 'file'
            # a mail is kept as a message: its subject is the mail's own
            reps[name] = check_report(area, name, data, kind, 'en', name, subject=kind == 'file')

        def outputs(name):
            rep = reps.get(name)
            return delivered(rep) if rep else []

        def one_output(name, expect=None):
            o = outputs(name)
            if not check(len(o) == 1 and (expect is None or o[0] == expect),
                         '%s: delivered one output%s' % (name, ' ' + expect if expect else ''), o):
                return None
            p = os.path.join(area.out, o[0])
            if not check(os.path.isfile(p), '%s: output %s is in OUT' % (name, o[0]), out_files):
                return None
            return read(p)

        b = one_output('hello.txt', 'hello.txt')
        check(b == text, 'hello.txt: arrives byte for byte')

        b = one_output('申請書.docm', '申請書.docx')
        if b is not None:
            ok = b[:2] == b'PK' and b'vbaProject' not in b
            try:
                zipfile.ZipFile(io.BytesIO(b)).namelist()
            except zipfile.BadZipFile:
                ok = False
            check(ok, '申請書.docm: arrives as a .docx zip without vbaProject')

        b = one_output('clean.docx', 'clean.docx')
        if b is not None:
            try:
                doc = zipfile.ZipFile(io.BytesIO(b)).read('word/document.xml').decode('utf-8')
            except (zipfile.BadZipFile, KeyError) as e:
                doc = 'error: %s' % e
            check(docx_marker in doc, 'clean.docx: arrives usable (its text is there)', doc[:300])

        b = one_output('clean.pdf')
        check(b is not None and b.startswith(b'%PDF-') and len(b) > 100, 'clean.pdf: arrives as a PDF')

        b = one_output('js.pdf')
        check(b is not None and b.startswith(b'%PDF-') and b'/JavaScript' not in b,
              'js.pdf: arrives as a PDF without /JavaScript')

        for name, magic in (('image.png', b'\x89PNG\r\n\x1a\n'), ('photo.jpg', b'\xff\xd8\xff')):
            b = one_output(name, name)
            check(b is not None and b.startswith(magic) and b != samples[name],
                  '%s: arrives re-encoded (same type, other bytes)' % name)

        rep = reps.get('eicar.txt') or ''
        check(outputs('eicar.txt') == [] and not any(f.startswith('eicar.txt') and
                                                       not f.endswith(REPORT) for f in out_files),
              'eicar.txt: no output', out_files)
        check('Mugaika.Test.EICAR' in rep, 'eicar.txt: the report names the virus', rep[:800])
        check(not any(EICAR in read(os.path.join(area.out, f)) for f in out_files),
              'eicar.txt: the EICAR bytes are in no file of OUT')

        o = outputs('members.zip')
        check(o == ['members/', 'members/zm-a.txt', 'members/フォルダ/zm-b.txt'],
              'members.zip: the members arrive in the folder "members" (layout = folder)', o)
        for mname, mdata in zmembers:
            p = os.path.join(area.out, 'members', mname)
            check(os.path.isfile(p) and read(p) == mdata, 'members.zip: members/%s arrives as it was' %
                  mname)

        rep = reps.get('locked.zip') or ''
        check(outputs('locked.zip') == [] and
              [f for f in out_files if f.startswith('locked')] == ['locked.zip' + REPORT],
              'locked.zip: held, nothing but the report', out_files)
        check('held' in rep and 'password' in rep, 'locked.zip: the report says it is held (password)',
              rep[:800])

        b = one_output('notice.eml', 'notice.eml')
        check(b is not None and b'<script' not in b and b'text/html' not in b and
              b'X-Mugaika-Result' in b, 'notice.eml: arrives as a mail without HTML', (b or b'')[:400])

        for name, words in (('link.txt', ('symlink', 'symbolic link')), ('pipe.txt', ('FIFO',)),
                            ('sock', ('socket',))):
            rep = report_of(area.out, name)
            check(rep is not None and 'refused' in rep.lower(), '%s: report says refused' % name,
                  (rep or '')[:600])
            check(rep is not None and any(w.lower() in rep.lower() for w in words),
                  '%s: report says %s' % (name, ' or '.join(words)), (rep or '')[:600])
            check([f for f in out_files if f.startswith(name)] == [name + REPORT],
                  '%s: nothing but the report in OUT' % name)
        st = os.stat(secret_path)
        check(read(secret_path) == secret and st.st_mtime == 1000000000 and st.st_nlink == 1,
              'link.txt: the symlink target is untouched')
        check(not any(secret in read(os.path.join(area.out, f)) for f in out_files),
              'link.txt: the target\'s bytes are in no file of OUT')

        r1, r2 = report_of(area.out, 'hl-1.txt'), report_of(area.out, 'hl-2.txt')
        refused = [n for n, r in (('hl-1.txt', r1), ('hl-2.txt', r2)) if r and 'refused' in r.lower()]
        if check(len(refused) == 1, 'hard link: exactly one name refused', refused):
            other = 'hl-2.txt' if refused[0] == 'hl-1.txt' else 'hl-1.txt'
            rr = report_of(area.out, refused[0])
            check('hard link' in rr.lower(), 'hard link: the report says "hard link"', rr[:600])
            ro = report_of(area.out, other) or ''
            check(delivered(ro) == [other] and read(os.path.join(area.out, other)) == hl_data
                  if os.path.isfile(os.path.join(area.out, other)) else False,
                  'hard link: the other name %s is processed normally' % other, ro[:600])

        check(not hidden_in(area.out), 'samples: no hidden temporary file in OUT', hidden_in(area.out))
        rc, how = d.stop()
        check(rc == 0, 'samples: SIGTERM stops the daemon with status 0', '%s (%s)' % (rc, how))
    finally:
        if sock is not None:
            sock.close()
        if d.alive():
            d.kill()
        if failures():
            note('daemon log (t1):\n' + d.tail(40))


# --- test 2: slow writers ------------------------------------------------------

def test_slow(root, db):
    area = Area(root, 't2', db)
    pieces = [('piece %d of the slowly written file\n' % i).encode() * 40 for i in range(9)]
    full = b''.join(pieces)
    names = ('slow-open.txt', 'slow-reopen.txt')
    finished = {}
    seen = {n: [] for n in names}  # (time, content) of every look at the output

    def writer_open():
        fd = os.open(os.path.join(area.inp, names[0]), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        try:
            for i, p in enumerate(pieces):
                if i:
                    time.sleep(0.5)
                os.write(fd, p)
        finally:
            os.close(fd)
        finished[names[0]] = time.monotonic()

    def writer_reopen():
        for i, p in enumerate(pieces):
            if i:
                time.sleep(0.5)
            with open(os.path.join(area.inp, names[1]), 'ab') as f:
                f.write(p)
        finished[names[1]] = time.monotonic()

    d = Daemon(area, ['--quiet-ms', '2000', '--scan-ms', '200'])
    threads = [threading.Thread(target=writer_open), threading.Thread(target=writer_reopen)]
    try:
        time.sleep(0.3)
        for t in threads:
            t.start()
        end = time.monotonic() + 60
        while time.monotonic() < end:
            for n in names:
                p = os.path.join(area.out, n)
                try:
                    b = read(p)
                except OSError:
                    continue
                seen[n].append((time.monotonic(), b))
            if not d.alive() or (all(report_of(area.out, n) is not None for n in names) and
                                 not os.listdir(area.inp)):
                break
            time.sleep(0.05)
        for t in threads:
            t.join(30)
        for n in names:
            looks = seen[n]
            check(looks, '%s: the output arrived' % n, files_in(area.out))
            early = [t for t, _ in looks if n not in finished or t < finished[n]]
            check(not early, '%s: no output before the writer finished' % n,
                  '%d looks before the end' % len(early))
            bad = [len(b) for _, b in looks if b != full]
            check(not bad, '%s: the output always equals the full content (%d bytes)' % (n, len(full)),
                  'sizes seen: %s' % sorted(set(bad))[:20])
            rep = report_of(area.out, n) or ''
            check(delivered(rep) == [n], '%s: the report lists one output' % n, rep[:500])
        check(files_in(area.out) == sorted([n for n in names] + [n + REPORT for n in names]),
              'slow: OUT holds the two outputs and their reports only', files_in(area.out))
        check(not os.listdir(area.inp), 'slow: IN is empty', os.listdir(area.inp))
        rc, how = d.stop()
        check(rc == 0, 'slow: SIGTERM stops the daemon with status 0', '%s (%s)' % (rc, how))
    finally:
        for t in threads:
            t.join(30)
        if d.alive():
            d.kill()
        if failures():
            note('daemon log (t2):\n' + d.tail(30))


# --- test 3: 200 files, 4 writers, 2 users ---------------------------------------

def test_many(root, db):
    area = Area(root, 't3', db)
    os.makedirs(os.path.join(area.inp, 'alice'))
    files = {}  # (user, name) -> bytes
    for k in range(4):
        user = 'alice' if k % 2 == 0 else 'bob'
        for i in range(50):
            name = ('報告%d-%02d.txt' if i % 5 == 0 else 'w%d-%02d.txt') % (k, i)
            files[(user, name)] = ('writer %d file %d %s\n' % (k, i, 'データ' * (i % 7))).encode() * (1 + i % 9)
    errors = []

    def writer(k):
        try:
            user = 'alice' if k % 2 == 0 else 'bob'
            udir = os.path.join(area.inp, user)
            os.makedirs(udir, exist_ok=True)
            for (u, name), data in files.items():
                if u == user and name.startswith(('報告%d-' % k, 'w%d-' % k)):
                    write(os.path.join(udir, name), data)
        except OSError as e:
            errors.append(str(e))

    d = Daemon(area, ['--quiet-ms', '500', '--scan-ms', '200'])
    threads = [threading.Thread(target=writer, args=(k,)) for k in range(4)]
    try:
        time.sleep(0.5)
        t0 = time.monotonic()
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        check(not errors, 'many: the writers wrote 200 files', errors)

        def reports():
            n = 0
            for u in ('alice', 'bob'):
                try:
                    n += len([f for f in os.listdir(os.path.join(area.out, u)) if f.endswith(REPORT)])
                except OSError:
                    pass
            return n

        def in_files():
            return files_in(area.inp)

        wait_for(lambda: not d.alive() or (reports() >= 200 and not in_files()), 200, 0.5)
        note('many: %d reports after %.1f s' % (reports(), time.monotonic() - t0))
        check(d.alive(), 'many: the daemon is still running', d.tail())
        check(reports() == 200, 'many: 200 reports', reports())
        check(not in_files(), 'many: IN is empty', in_files()[:20])
        bad, missing = [], []
        for (u, name), data in files.items():
            p = os.path.join(area.out, u, name)
            if not os.path.isfile(p):
                missing.append(u + '/' + name)
            elif read(p) != data:
                bad.append(u + '/' + name)
        check(not missing, 'many: every output is in OUT/<user>/', missing[:20])
        check(not bad, 'many: every output equals its input', bad[:20])
        expect = sorted(os.path.join(u, n) for u, n in files) + \
            sorted(os.path.join(u, n + REPORT) for u, n in files)
        extra = sorted(set(files_in(area.out)) - set(expect))
        check(not extra, 'many: nothing else in OUT (no "(2)" duplicates, no temporary)', extra[:20])
        rep = report_of(os.path.join(area.out, 'bob'), 'w1-01.txt') or ''
        check(rep.startswith('【無害化処理の報告】\r\n') and '隔離ID: ' in rep,
              'many: reports are Japanese by default (title, 隔離ID)', rep[:300])
        items = qlist(area.q)
        check(len(items) == 200, 'many: 200 quarantine items', len(items))
        subjects = sorted(i.get('subject', '') for i in items)
        check(subjects == sorted(n for _, n in files), 'many: one quarantine item per file (subjects)')
        rc, how = d.stop()
        check(rc == 0, 'many: SIGTERM stops the daemon with status 0', '%s (%s)' % (rc, how))
    finally:
        for t in threads:
            t.join(30)
        if d.alive():
            d.kill()
        if failures():
            note('daemon log (t3):\n' + d.tail(30))


# --- test 4: the crash loop ------------------------------------------------------

def test_crash(root, db):
    area = Area(root, 't4', db)
    rnd = random.Random(20261203)
    opts = ['--quiet-ms', '200', '--scan-ms', '100']
    files = {}
    for i in range(60):
        # 4 KiB to 400 KiB: each takes long enough (tens of ms) for many
        # kills to land while an item is in progress
        line = ('crash-loop file %d %016x\n' % (i, rnd.getrandbits(64))).encode()
        files['c%02d.txt' % i] = line * (rnd.randrange(4, 400) * 1024 // len(line))
    names = sorted(files)
    kills, mid = 0, 0
    d = None
    try:
        for k in range(15):
            d = Daemon(area, opts)
            for n in names[k * 4:k * 4 + 4]:
                write(os.path.join(area.inp, n), files[n])
            time.sleep(rnd.uniform(0.05, 1.5))
            if d.alive():
                kills += 1
            else:
                note('crash: run %d exited by itself: %s\n%s' % (k, d.p.returncode, d.tail(10)))
            d.kill()
            # what the kill left behind (a hint that it landed mid-item)
            out, inp = files_in(area.out), files_in(area.inp)
            hidden = hidden_in(area.out)
            half = [n for n in inp if n + REPORT in out] + \
                [n for n in out if not n.endswith(REPORT) and n + REPORT not in out and n in files]
            done = d.tail(1000).count('done: ')
            if hidden or half:
                mid += 1
            note('crash: kill %d: %d done in this run, IN %d, OUT %d, hidden %d, half-done %s' %
                 (k + 1, done, len(inp), len(out), len(hidden), half))
        note('crash: %d SIGKILLs, %d left visible traces of an item in progress; before the --once '
             'run OUT holds %d files, IN %d' % (kills, mid, len(files_in(area.out)), len(files_in(area.inp))))
        check(kills == 15, 'crash: 15 daemons killed while running', kills)

        # Then kills aimed at the two windows that matter: while an
        # output is being written (a hidden temporary in OUT), and once
        # an output has its final name but the input is still in IN.
        aimed = {'temporary': 0, 'output': 0}
        for k in range(8):
            batch = ['t%02d.txt' % (k * 2 + j) for j in range(2)]
            for n in batch:
                line = ('aimed kill file %s %016x\n' % (n, rnd.getrandbits(64))).encode()
                files[n] = line * (rnd.randrange(512, 2048) * 1024 // len(line))
            d = Daemon(area, opts)
            for n in batch:
                write(os.path.join(area.inp, n), files[n])
            want = 'temporary' if k % 2 == 0 else 'output'
            end = time.monotonic() + 20
            hit = False
            while not hit and time.monotonic() < end and d.alive() and \
                    any(os.path.exists(os.path.join(area.inp, n)) for n in batch):
                try:
                    out = os.listdir(area.out)
                    inp = set(os.listdir(area.inp))
                except OSError:
                    continue
                if want == 'temporary':
                    hit = any(f.startswith(HIDDEN) for f in out)
                else:
                    hit = any(f in inp for f in out)
                if not hit:
                    time.sleep(0.001)
            d.kill()
            aimed[want] += hit
            note('crash: aimed kill %d (%s): %s' % (k + 1, want, 'hit' if hit else 'missed'))
        names = sorted(files)
        note('crash: aimed kills that hit their window: %s' % aimed)
        time.sleep(1.0)  # longer than --quiet-ms: every file is stable
        rc, tail = run_once(area, opts)
        check(rc == 0, 'crash: the final --once run exits 0', '%s\n%s' % (rc, tail))
        out = files_in(area.out)
        missing = [n for n in names if n not in out]
        check(not missing, 'crash: every input has its output', missing)
        bad = [n for n in names if n in out and read(os.path.join(area.out, n)) != files[n]]
        check(not bad, 'crash: every output equals its input', bad)
        norep = [n for n in names if n + REPORT not in out]
        check(not norep, 'crash: every input has its report', norep)
        expect = set(names) | set(n + REPORT for n in names)
        extra = sorted(set(out) - expect)
        check(not [f for f in extra if not f.startswith(HIDDEN)],
              'crash: exactly one output and one report per input (nothing else in OUT)', extra[:30])
        check(not hidden_in(area.out), 'crash: no hidden temporary in OUT', hidden_in(area.out)[:20])
        check(not files_in(area.inp), 'crash: IN is empty', files_in(area.inp))
        items = qlist(area.q)
        check(len(items) >= len(names), 'crash: the quarantine holds at least %d items' % len(names),
              len(items))
        exported = set()
        for it in items:
            b = qexport(area.q, it['id'])
            if b is not None:
                exported.add(hashlib.sha256(b).hexdigest())
        lost = [n for n in names if hashlib.sha256(files[n]).hexdigest() not in exported]
        check(not lost, 'crash: every input\'s bytes are among the quarantine exports', lost)
    finally:
        if d is not None and d.alive():
            d.kill()
        if failures():
            for path in area.logs[-3:]:
                try:
                    note('%s:\n%s' % (path, read(path).decode('utf-8', 'replace')[-1500:]))
                except OSError:
                    pass


# --- test 5: archives as folders ------------------------------------------------------

def rules_with_layout(root, layout):
    """A copy of the built-in rules whose [rule archive] says layout = LAYOUT."""
    d = os.path.join(root, 'rules-' + layout)
    os.makedirs(d)
    src = os.path.join(A.source, 'rules')
    for n in os.listdir(src):
        text = read(os.path.join(src, n)).decode('utf-8')
        if n == '40-documents.rules':
            at = text.index('[rule archive]')
            at = text.index('action = unpack\n', at) + len('action = unpack\n')
            text = text[:at] + 'layout = %s\n' % layout + text[at:]
        write(os.path.join(d, n), text.encode('utf-8'))
    return d


def test_layout(root, db):
    members = [('a.txt', b'member a\n'), ('sub/b.txt', b'member b\n'),
               ('sub/deeper/c.txt', b'member c\n'), ('CON.txt', b'a device name\n')]
    z = members_zip(members)
    opts = ['--lang', 'en', '--quiet-ms', '200', '--scan-ms', '100']

    # layout = folder, the default; a file already named "docs" in OUT
    area = Area(root, 't5a', db)
    write(os.path.join(area.out, 'docs'), b'in the way\n')
    write(os.path.join(area.inp, 'docs.zip'), z)
    time.sleep(0.5)
    rc, tail = run_once(area, opts)
    check(rc == 0, 'layout: --once exits 0', '%s\n%s' % (rc, tail))
    rep = report_of(area.out, 'docs.zip') or ''
    check(delivered(rep) == ['docs (2)/', 'docs (2)/a.txt', 'docs (2)/sub/b.txt',
                             'docs (2)/sub/deeper/c.txt', 'docs (2)/_CON.txt'],
          'layout: a zip with subfolders arrives as the folder "docs (2)" (the name was taken)',
          rep[:800])
    for name, data in members:
        safe = '_CON.txt' if name == 'CON.txt' else name
        p = os.path.join(area.out, 'docs (2)', safe)
        check(os.path.isfile(p) and read(p) == data, 'layout: docs (2)/%s arrives as it was' % safe)
    check(read(os.path.join(area.out, 'docs')) == b'in the way\n', 'layout: the file "docs" is untouched')
    check(sorted(os.listdir(area.out)) == ['docs', 'docs (2)', 'docs.zip' + REPORT],
          'layout: nothing else in OUT', os.listdir(area.out))

    # layout = files: each member its own file in OUT
    area = Area(root, 't5b', db)
    write(os.path.join(area.inp, 'docs.zip'), z)
    time.sleep(0.5)
    rc, tail = run_once(area, opts + ['--rules', rules_with_layout(root, 'files')])
    check(rc == 0, 'layout = files: --once exits 0', '%s\n%s' % (rc, tail))
    rep = report_of(area.out, 'docs.zip') or ''
    check(delivered(rep) == ['a.txt', 'b.txt', 'c.txt', '_CON.txt'],
          'layout = files: each member a separate file in OUT', rep[:800])
    check(sorted(files_in(area.out)) == sorted(['a.txt', 'b.txt', 'c.txt', '_CON.txt',
                                                'docs.zip' + REPORT]),
          'layout = files: no folder', files_in(area.out))

    # killed between the commit and the rename: the next start renames
    # the hidden folder to its final name and removes the input
    area = Area(root, 't5c', db)
    write(os.path.join(area.inp, 'docs.zip'), z)
    time.sleep(0.5)
    rc, tail = run_once(area, opts, env={'MUGAIKA_WATCH_TEST_KILL': 'commit'})
    check(rc == -signal.SIGKILL, 'kill at commit: the daemon died by SIGKILL', '%s\n%s' % (rc, tail))
    hidden = sorted(f for f in os.listdir(area.out) if f.startswith(HIDDEN))
    check(len(hidden) == 2 and os.path.isdir(os.path.join(area.out, hidden[0])) !=
          os.path.isdir(os.path.join(area.out, hidden[1])) and len(os.listdir(area.out)) == 2,
          'kill at commit: a hidden folder and a hidden report, nothing else', os.listdir(area.out))
    check(os.listdir(area.inp) == ['docs.zip'], 'kill at commit: the input is still there')
    rc, tail = run_once(area, opts)
    check(rc == 0, 'kill at commit: the next --once run exits 0', '%s\n%s' % (rc, tail))
    for name, data in members:
        safe = '_CON.txt' if name == 'CON.txt' else name
        p = os.path.join(area.out, 'docs', safe)
        check(os.path.isfile(p) and read(p) == data, 'kill at commit: docs/%s recovered' % safe)
    rep = report_of(area.out, 'docs.zip') or ''
    check('  - docs/sub/deeper/c.txt' in rep, 'kill at commit: the report is there', rep[:600])
    check(sorted(os.listdir(area.out)) == ['docs', 'docs.zip' + REPORT],
          'kill at commit: no hidden temporary left, nothing else', os.listdir(area.out))
    check(not os.listdir(area.inp), 'kill at commit: IN is empty', os.listdir(area.inp))


# --- main --------------------------------------------------------------------------

def main():
    only = set(int(x) for x in A.only.split(',') if x.strip())
    ok = check(os.access(A.watch, os.X_OK), 'mugaika-watch is there', A.watch)
    ok = check(os.access(A.cli, os.X_OK), 'mugaika is there', A.cli) and ok
    ok = check(os.path.isdir(CORPUS), 'the shared corpus is there', CORPUS) and ok
    root = tempfile.mkdtemp(prefix='mgw-')
    # what a daemon killed in the middle of a scan leaves (libclamav's
    # temporary folders) stays under root
    os.environ['TMPDIR'] = os.path.join(root, 'tmp')
    os.makedirs(os.environ['TMPDIR'])
    try:
        if ok:
            db = os.path.join(root, 'db')
            p = subprocess.run(['bash', os.path.join(A.source, 'tests', 'av', 'make-testdb'), db],
                               capture_output=True, timeout=60)
            ok = check(p.returncode == 0, 'make-testdb', p.stderr.decode('utf-8', 'replace'))
        if ok:
            for n, (what, fn) in enumerate((('samples', test_samples), ('slow writers', test_slow),
                                            ('200 files', test_many), ('crash loop', test_crash),
                                            ('archives as folders', test_layout)), 1):
                if only and n not in only:
                    continue
                t0 = time.monotonic()
                try:
                    fn(root, db)
                except Exception as e:  # a broken step fails its test, the others still run
                    check(False, '%s: ran to its end' % what, '%s: %s' % (type(e).__name__, e))
                note('%s: %.1f s' % (what, time.monotonic() - t0))
    finally:
        for p in DAEMONS:
            if p.poll() is None:
                p.kill()
                p.wait()
        if failures():
            note('folders kept: ' + root)
        else:
            shutil.rmtree(root, ignore_errors=True)
    tap.done()


if __name__ == '__main__':
    main()
