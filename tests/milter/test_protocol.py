#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""
NAME
    test_protocol - mugaika-milter at the milter protocol level

SYNOPSIS
    test_protocol.py MUGAIKA_MILTER MUGAIKA SOURCE_ROOT

DESCRIPTION
    Starts mugaika-milter on a free loopback port and talks to it with
    milterclient.py, an MTA-side implementation of milter protocol
    version 6 that offers what Postfix 3.7 offers (Debian's miltertest
    crashes in mt.eom against this milter).  What the milter asks for at
    the end of a message is applied to the message the way an MTA does,
    and the result is compared with `mugaika sanitize` of the same bytes
    (the bytes the milter rebuilds from the protocol: CRLF line ends),
    after the quarantine id and the =_mugaika_<hex> boundary (which
    depends on the notice, which names the id) are normalised, base64
    parts are compared decoded (plus their line lengths), and line ends
    are LF.

    0  OPTNEG: version 6, the steps the milter asks for (NOCONNECT,
       NOHELO, NOUNKNOWN, NODATA, NR_HDR, NR_EOH, NR_BODY, HDR_LEADSPC)
       and actions ADDHDRS|CHGHDRS|CHGBODY; an MTA that does not allow
       body replacement gets the connection closed, the log says why.
    1  each testdata/mail/*.eml and one made here (repeated and folded
       fields, a kept attachment): equal to `mugaika sanitize`;
       X-Mugaika-Result added; every field the MTA gave is deleted (by
       name and 1-based index) and no original field is left that the
       rebuilt message does not have; the log line names the queue id
       sent in the "i" macro.
    2  five messages on one connection.
    3  ABORT after some body chunks, then a message on the same
       connection; then a new connection.
    4  50 connections closed early (right after MAIL, after the header,
       in the body, after RCPT, after EOM before its reply); the milter
       still works; SIGTERM: exit 0 within 15 s, no "still in progress"
       in the log, which ends with "stopped".
    5  a reject rule: EOM reply 550 5.7.1 (and `mugaika sanitize` exit 1);
       the quarantine's objects/ made read-only behind the back of a
       milter running as nobody: 451 4.7.1, and fine again once writable
       (needs root: otherwise a failed check that says so).
    6  SIGHUP with a reject rule added (for the sender: a catch-all
       would make the later rules unreachable, which the loader refuses):
       the next message is refused; SIGHUP with a broken rules file:
       "reload failed" in the log and the previous policy (generation 2)
       still decides; the file removed again: policy 3 accepts.
    7  one large message with body chunks of 1, 7, 4096 and 65535 bytes:
       the same result each time, equal to `mugaika sanitize`.

    Test order: 0, 1, 2, 3, 7, 4 on one milter (4 stops it), then 5 and 6
    on milters of their own.  The milters get an empty --config (not
    /etc/mugaika/mugaika.conf) and TMPDIR under the work directory.

    TAP output: one "ok N - ..." or "not ok N - ...: detail" line per
    check, "1..N" at the end; exit 1 when any failed.  Every milter
    started here is stopped in a finally clause; on failure the work
    directory (logs) is kept and named.
"""
import base64
import os
import pwd
import quopri
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import milterclient as mc  # noqa: E402

TIMEOUT = 60.0  # every socket operation and wait
FAILED = []
COUNT = [0]


def check(cond, what, detail=''):
    COUNT[0] += 1
    if cond:
        print('ok %d - %s' % (COUNT[0], what))
    else:
        detail = str(detail).replace('\n', ' | ')  # one line per check
        print('not ok %d - %s%s' % (COUNT[0], what, (': ' + detail) if detail else ''))
        FAILED.append(what)
    sys.stdout.flush()
    return cond


def short(b, n=300):
    s = repr(b)
    return s if len(s) <= n else s[:n] + '...'


def free_port():
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind(('127.0.0.1', 0))
    port = s.getsockname()[1]
    s.close()
    return port


# --------------------------------------------------------------- the milter

class Milter:
    """A mugaika-milter process in the foreground, its log in a file."""

    def __init__(self, binary, work, name, args, user=None):
        self.binary = binary
        # temporary files in a directory every user may write (the
        # milter of test 5 runs as nobody)
        self.env = dict(os.environ, TMPDIR=os.path.join(work, 'spool'))
        self.logpath = os.path.join(work, name + '.log')
        self.args = list(args)
        self.user = user
        self.proc = None
        self.port = None

    def start(self):
        for _ in range(5):
            self.port = free_port()
            cmd = [self.binary, '--socket', 'inet:%d@127.0.0.1' % self.port,
                   '--foreground'] + self.args
            if self.user:
                cmd += ['--user', self.user]
            self.logf = open(self.logpath, 'ab')
            self.mark = self.logf.tell()
            self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=self.logf,
                                         stderr=subprocess.STDOUT, env=self.env)
            deadline = time.monotonic() + TIMEOUT
            while time.monotonic() < deadline:
                if 'listening on' in self.log(self.mark):
                    return True
                if self.proc.poll() is not None:
                    break
                time.sleep(0.05)
            rc = self.proc.poll()
            if rc is None:
                self.kill()
                raise RuntimeError('milter did not start within %g s:\n%s'
                                   % (TIMEOUT, self.log(self.mark)))
            self.logf.close()
            if 'cannot listen' not in self.log(self.mark):
                raise RuntimeError('milter exited with %d at start:\n%s'
                                   % (rc, self.log(self.mark)))
            # the port was taken in between: another one
        raise RuntimeError('no free port after 5 tries')

    def log(self, since=0):
        try:
            with open(self.logpath, 'rb') as f:
                f.seek(since)
                return f.read().decode('utf-8', 'replace')
        except OSError:
            return ''

    def log_size(self):
        try:
            return os.path.getsize(self.logpath)
        except OSError:
            return 0

    def wait_log(self, needle, since, timeout=30.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if needle in self.log(since):
                return True
            if self.proc.poll() is not None:
                return needle in self.log(since)
            time.sleep(0.05)
        return False

    def client(self, **kw):
        return mc.MilterClient('127.0.0.1', self.port, timeout=TIMEOUT, **kw)

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def stop(self, timeout=15.0):
        """SIGTERM; the exit status, or None when it did not exit in time
        (then it is killed)."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill()
                return None
        self.logf.close()
        return self.proc.returncode

    def kill(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(TIMEOUT)
        try:
            self.logf.close()
        except Exception:
            pass


# ------------------------------------------------------------ normalising

HEADER_LIMIT = 262144  # max-header-bytes (default): values of the MTA's fields kept
QID_RE = re.compile(rb'quarantine=(\d{8}-[0-9a-z]{11})')
BOUNDARY_RE = re.compile(rb'=_mugaika_[0-9a-f]{32}')


def header_value(hdr, name):
    """The unfolded value of the first field NAME of a header block."""
    fields, _ = mc.split_message(hdr + b'\n\n')
    for n, v in fields:
        if n.lower() == name.lower():
            return re.sub(rb'\n[ \t]+', b' ', v).strip()
    return b''


def canon_entity(raw, qid, out):
    if raw.startswith(b'\n'):
        hdr, body = b'', raw[1:]
    elif b'\n\n' in raw:
        hdr, body = raw.split(b'\n\n', 1)
    else:
        hdr, body = raw, b''
    out.append(hdr.replace(qid, b'QID') + b'\n\n')
    ctype = header_value(hdr, b'Content-Type').lower()
    cte = header_value(hdr, b'Content-Transfer-Encoding').lower()
    m = re.search(rb'boundary="?([^";\s]+)"?', header_value(hdr, b'Content-Type'), re.I)
    if ctype.startswith(b'multipart/') and m:
        delim = b'--' + m.group(1)
        lines = body.split(b'\n')
        parts, cur, state = [], [], 'pre'
        for line in lines:
            if line.rstrip(b' \t') == delim + b'--' and state != 'post':
                if state == 'part':
                    parts.append(b'\n'.join(cur))
                cur, state = [], 'post'
            elif line.rstrip(b' \t') == delim and state != 'post':
                if state == 'pre':
                    out.append(b'[preamble]' + b'\n'.join(cur).replace(qid, b'QID') + b'\n')
                else:
                    parts.append(b'\n'.join(cur))
                cur, state = [], 'part'
            else:
                cur.append(line)
        for p in parts:
            out.append(b'[part]\n')
            canon_entity(p, qid, out)
        out.append(b'[epilogue]' + b'\n'.join(cur).replace(qid, b'QID') + b'\n')
    elif cte == b'base64':
        shape = [len(x) for x in body.split(b'\n')]
        try:
            data = base64.b64decode(body.replace(b'\n', b''), validate=True)
        except Exception as e:
            data = b'[bad base64: %s] ' % str(e).encode() + body
        out.append(b'[base64 %s]\n' % repr(shape).encode())
        out.append(data.replace(qid, b'QID'))
    elif cte == b'quoted-printable':
        out.append(b'[qp %d lines]\n' % body.count(b'\n'))
        out.append(quopri.decodestring(body).replace(qid, b'QID'))
    else:
        out.append(body.replace(qid, b'QID'))


def normalise(msg):
    """Message bytes -> bytes that do not depend on the quarantine id,
    the boundary made from it, CRLF vs LF, or base64 line breaking
    (the line lengths stay in)."""
    msg = msg.replace(b'\r\n', b'\n')
    hdr = msg.split(b'\n\n', 1)[0]
    m = QID_RE.search(header_value(hdr, b'X-Mugaika-Result'))
    qid = m.group(1) if m else b'\0no quarantine id\0'
    msg = BOUNDARY_RE.sub(b'=_mugaika_BOUNDARY', msg)
    out = []
    canon_entity(msg, qid, out)
    return b''.join(out)


def first_difference(a, b):
    for i, (x, y) in enumerate(zip(a, b)):
        if x != y:
            return 'at byte %d: %s / %s' % (i, short(a[max(0, i - 40):i + 80]),
                                             short(b[max(0, i - 40):i + 80]))
    return 'lengths %d / %d' % (len(a), len(b))


# ------------------------------------------------------------- test set-up

class Env:
    pass


def make_samples(src):
    """(name, raw bytes) of the sample mails plus two made here."""
    d = os.path.join(src, 'testdata', 'mail')
    samples = []
    for n in sorted(os.listdir(d)):
        if n.endswith('.eml'):
            with open(os.path.join(d, n), 'rb') as f:
                samples.append((n, f.read()))
    samples.append(('made-repeated-fields', REPEATED))
    samples.append(('made-empty-fields', EMPTY_FIELDS))
    return samples


# fields with empty values (the rebuilt message drops them) among fields
# that stay
EMPTY_FIELDS = (
    b'From: a@example.jp\r\n'
    b'To: soumu@city.example.lg.jp\r\n'
    b'Subject:\r\n'
    b'Date: Mon, 16 Nov 2026 10:00:00 +0900\r\n'
    b'Message-ID: <empty-1@example.jp>\r\n'
    b'X-Empty:\r\n'
    b'Keywords: =?utf-8?B??=\r\n'
    b'Comments:\r\n'
    b'\r\n'
    b'body\r\n')


REPEATED = (
    b'Received: from relay2.example.net (relay2.example.net [192.0.2.20])\r\n'
    b'\tby mx.city.example.lg.jp with ESMTP id 4AB;\r\n'
    b'\tTue, 17 Nov 2026 09:30:02 +0900\r\n'
    b'Received: from mail.example.net by relay2.example.net; Tue, 17 Nov 2026 09:30:01 +0900\r\n'
    b'X-Spam-Status: No\r\n'
    b'From: "Sato, Hanako" <sato@example.net>\r\n'
    b'To: soumu@city.example.lg.jp,\r\n'
    b'  kikaku@city.example.lg.jp\r\n'
    b'Cc: other@example.net\r\n'
    b'X-Spam-Status: maybe\r\n'
    b'subject: Meeting notes and\r\n'
    b' the agenda (folded)\r\n'
    b'Date: Tue, 17 Nov 2026 09:30:00 +0900\r\n'
    b'Message-ID: <rep-1@example.net>\r\n'
    b'X-Mailer: Test\r\n'
    b'x-spam-status: third spelling\r\n'
    b'MIME-Version: 1.0\r\n'
    b'Content-Type: multipart/mixed; boundary="rep-b"\r\n'
    b'\r\n'
    b'This is a multi-part message.\r\n'
    b'--rep-b\r\n'
    b'Content-Type: text/plain; charset=us-ascii\r\n'
    b'\r\n'
    b'Hello,\r\n'
    b'the notes are attached. See https://example.net/notes for more.\r\n'
    b'--rep-b\r\n'
    b'Content-Type: text/plain; charset=us-ascii; name="notes.txt"\r\n'
    b'Content-Disposition: attachment; filename="notes.txt"\r\n'
    b'\r\n'
    b'1. budget\r\n'
    b'2. schedule\r\n'
    b'--rep-b\r\n'
    b'Content-Type: application/octet-stream; name="tool.exe"\r\n'
    b'Content-Disposition: attachment; filename="tool.exe"\r\n'
    b'Content-Transfer-Encoding: base64\r\n'
    b'\r\n'
    b'TVqQAAMAAAAEAAAA//8AALgAAAAAAAAAQAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\r\n'
    b'--rep-b--\r\n')


def large_message():
    """About 200 KB of body: UTF-8 text, a base64 CSV attachment with
    CRLF lines, an HTML attachment; deterministic."""
    text = []
    for i in range(700):
        text.append('%04d 無害化テスト行です。Line %d of the body, café ①㈱.' % (i, i))
    csv = ''.join('%d,名前%d,%d,"quoted, %d"\r\n' % (i, i, i * 37 % 1000, i)
                  for i in range(3000)).encode('utf-8')
    b64 = base64.encodebytes(csv).replace(b'\n', b'\r\n')
    html = ('<html><body><p>Page</p>' +
            ''.join('<p>para %d <a href="https://example.jp/p/%d">link</a></p>\n' % (i, i)
                    for i in range(400)) + '</body></html>\n').encode()
    return (b'From: Big Sender <big@example.jp>\r\n'
            b'To: staff@city.example.lg.jp\r\n'
            b'Subject: large message\r\n'
            b'Date: Wed, 18 Nov 2026 12:00:00 +0900\r\n'
            b'Message-ID: <big-1@example.jp>\r\n'
            b'MIME-Version: 1.0\r\n'
            b'Content-Type: multipart/mixed; boundary="big-b"\r\n'
            b'\r\n'
            b'--big-b\r\n'
            b'Content-Type: text/plain; charset=utf-8\r\n'
            b'Content-Transfer-Encoding: 8bit\r\n'
            b'\r\n' + '\r\n'.join(text).encode('utf-8') + b'\r\n'
            b'--big-b\r\n'
            b'Content-Type: text/csv; charset=utf-8; name="list.csv"\r\n'
            b'Content-Disposition: attachment; filename="list.csv"\r\n'
            b'Content-Transfer-Encoding: base64\r\n'
            b'\r\n' + b64 +
            b'--big-b\r\n'
            b'Content-Type: text/html; charset=utf-8; name="page.html"\r\n'
            b'Content-Disposition: attachment; filename="page.html"\r\n'
            b'\r\n' + html +
            b'--big-b--\r\n')


SENDER = 'sender@example.jp'
RCPTS = ['soumu@city.example.lg.jp', 'kikaku@city.example.lg.jp']
QID_SEQ = [0]


def envelope(sender=SENDER):
    QID_SEQ[0] += 1
    return mc.Envelope(sender, RCPTS, queue_id='4C1%07X' % QID_SEQ[0])


def sanitize(env, raw, sender=SENDER, rules=None):
    """`mugaika sanitize` of the bytes the milter rebuilds from the
    protocol: (exit status, stdout, stderr)."""
    fields, body = mc.split_message(raw)
    wire = mc.wire_bytes(fields, body)
    cmd = [env.cli, 'sanitize', '--config', env.conf, '--quarantine', env.qcli,
           '--clamav-db', env.db, '--sender', sender]
    for r in RCPTS:
        cmd += ['--recipient', r]
    if rules:
        cmd += ['--rules', rules]
    p = subprocess.run(cmd + ['-'], input=wire, capture_output=True, timeout=TIMEOUT)
    return p.returncode, p.stdout, p.stderr


def expected(env, name, raw):
    if name not in env.expect:
        rc, out, err = sanitize(env, raw)
        env.expect[name] = (rc, out, err)
    return env.expect[name]


def verify(env, milter, what, name, raw, res, qid=None, fields_kept=None):
    """Checks one accepted message against `mugaika sanitize`; True when
    all is right."""
    rc, want, err = expected(env, name, raw)
    if not check(rc == 0, '%s: mugaika sanitize exits 0' % what, short(err)):
        return False
    good = check(res.final is not None and res.final.cmd in (mc.SMFIR_CONTINUE, mc.SMFIR_ACCEPT),
                 '%s: end-of-message reply is CONTINUE/ACCEPT' % what,
                 '%r after %r' % (res.final, res.ended_at))
    if not good:
        return False
    got, problems = res.message()
    good &= check(not problems, '%s: every modification applies' % what, '; '.join(problems))
    a, b = normalise(got), normalise(want)
    good &= check(a == b, '%s: result equals mugaika sanitize' % what, first_difference(a, b))
    adds = [m for m in res.mods if m.kind == 'add']
    good &= check(any(m.name.lower() == b'x-mugaika-result' and b'sanitized' in m.value
                      for m in adds), '%s: X-Mugaika-Result added' % what)
    # the header edit: an MTA field whose name is spelled as the next
    # rebuilt field's is paired with it (only with the leading space
    # negotiated): left alone when the values are equal, else changed in
    # place; the others are deleted once each by name and index, last
    # first, after the changes; the rebuilt fields after the paired ones
    # are added in order
    # (the milter keeps the values it was given up to max-header-bytes
    # in all; a field whose value it did not keep is never left in place)
    rebuilt = mc.split_message(want)[0]
    nxt, seen, plan_chg, plan_del, kept = 0, {}, [], [], 0
    for n, v in res.fields:
        seen[n.lower()] = seen.get(n.lower(), 0) + 1
        ix = (n.lower(), seen[n.lower()])
        held = kept + len(v) <= HEADER_LIMIT
        kept += len(v) if held else 0
        if (res.leadspc and held and nxt < len(rebuilt) and n == rebuilt[nxt][0]
                and (rebuilt[nxt][1] != b'' or v == b'')):
            if v != rebuilt[nxt][1]:
                plan_chg.append(ix + (rebuilt[nxt][1],))
            nxt += 1
        else:
            plan_del.append(ix)
    def anon(v):  # the quarantine id and boundary differ from the CLI's
        return BOUNDARY_RE.sub(b'=_mugaika_BOUNDARY', re.sub(rb'quarantine=[^;\s]+', b'Q', v))
    hmods = [m for m in res.mods if m.kind != 'body']
    got = [(m.kind, m.name.lower(), m.index, anon(m.value)) for m in hmods]
    plan = ([('change', n, i, anon(v)) for n, i, v in plan_chg] +
            [('change', n, i, b'') for n, i in plan_del[::-1]] +
            [('add', n.lower(), None, anon(v if res.leadspc else v[1:] if v[:1] == b' ' else v))
             for n, v in rebuilt[nxt:]])
    good &= check(got == plan,
                  '%s: header edit: %d changed in place, %d deleted, %d added, in that order'
                  % (what, len(plan_chg), len(plan_del), len(rebuilt) - nxt),
                  'expected %s got %s' % (short(plan, 600), short(got, 600)))
    good &= check([m.name for m in hmods if m.kind == 'add'] == [n for n, _ in rebuilt[nxt:]],
                  '%s: added fields keep the rebuilt spelling' % what)
    if res.leadspc and fields_kept is not None:
        left = nxt - len(plan_chg)
        good &= check(left >= fields_kept,
                      '%s: at least %d unchanged fields left alone' % (what, fields_kept),
                      '%d left alone' % left)
    # an original field still there must be one the rebuilt message has
    def key(f):
        return (f[0].lower(), f[1].replace(b'\r\n', b'\n'))
    orig = {key(f) for f in res.fields}
    want_set = {key(f) for f in mc.split_message(want)[0]}
    stale = [f for f in res.apply()[0] if key(f) in orig and key(f) not in want_set]
    good &= check(not stale, '%s: no original field left that the rebuilt message lacks' % what,
                  short(stale))
    if qid is not None:
        good &= check(re.search(r'%s: from=<%s> rcpts=%d size=\d+ verdict=accept'
                                % (qid, re.escape(SENDER), len(RCPTS)), milter.log()) is not None,
                      '%s: log line names queue id %s, sender, recipients' % (what, qid))
    return good


def run_message(env, c, name, raw, chunk=mc.CHUNK_SIZE):
    e = envelope()
    return e.queue_id, c.send_message(e, raw, chunk)


# ------------------------------------------------------------------ tests

def test_negotiation(env, m):
    c = m.client()
    want = (mc.SMFIP_NOCONNECT | mc.SMFIP_NOHELO | mc.SMFIP_NOUNKNOWN | mc.SMFIP_NODATA |
            mc.SMFIP_NR_HDR | mc.SMFIP_NR_EOH | mc.SMFIP_NR_BODY | mc.SMFIP_HDR_LEADSPC)
    check(c.version == 6, 'OPTNEG: protocol version 6', str(c.version))
    check(c.protocol == want, 'OPTNEG: asks for ' + mc.protocol_names(want),
          mc.protocol_names(c.protocol))
    need = mc.SMFIF_ADDHDRS | mc.SMFIF_CHGHDRS | mc.SMFIF_CHGBODY
    check(c.actions == need, 'OPTNEG: actions ADDHDRS|CHGHDRS|CHGBODY', hex(c.actions))
    c.quit()
    # an MTA that does not allow body replacement: the milter refuses
    # to filter (libmilter closes the connection after SMFIS_REJECT at
    # negotiation), the MTA then applies its default action
    mark = m.log_size()
    try:
        c = m.client(actions=mc.SMFIF_ADDHDRS | mc.SMFIF_CHGHDRS)
        how = 'negotiated: %s' % hex(c.actions)
        c.close()
    except (mc.MilterError, OSError) as ex:
        how = str(ex)
    check('connection closed' in how or 'reset' in how.lower(),
          'OPTNEG without CHGBODY: the milter closes the connection', how)
    check('cannot sanitise' in m.log(mark), 'OPTNEG without CHGBODY: the log says why',
          short(m.log(mark)))


def test_single(env, m):
    for name, raw in env.samples:
        c = m.client()
        try:
            qid, res = run_message(env, c, name, raw)
            # every sample's To and Message-ID or Date come through as
            # they are: the milter must leave them alone, not delete and
            # re-add them
            verify(env, m, '1 %s' % name, name, raw, res, qid, fields_kept=2)
        finally:
            c.quit()
    # an MTA without SMFIP_HDR_LEADSPC: it drops the space after the
    # colon, so an equal value does not prove an equal field; every field
    # is deleted and the rebuilt ones added (verify checks that plan)
    name, raw = env.samples[0]
    c = m.client(protocol=mc.POSTFIX_V6_PROTOCOL & ~mc.SMFIP_HDR_LEADSPC)
    try:
        check(not c.leadspc, '1 without HDR_LEADSPC: not negotiated')
        qid, res = run_message(env, c, name, raw)
        verify(env, m, '1 %s without HDR_LEADSPC' % name, name, raw, res, qid)
        check(len(res.fields) > 0 and
              sum(1 for x in res.mods if x.kind == 'change') == len(res.fields),
              '1 %s without HDR_LEADSPC: every field deleted' % name)
    finally:
        c.quit()


def test_several(env, m):
    picks = [s for s in env.samples if s[0] != 'uuencode-in-text.eml'][:5]
    c = m.client()
    try:
        for i, (name, raw) in enumerate(picks):
            qid, res = run_message(env, c, name, raw)
            verify(env, m, '2 one connection, message %d (%s)' % (i + 1, name), name, raw, res,
                   qid)
    finally:
        c.quit()


def test_abort(env, m):
    (n1, raw1), (n2, raw2) = env.samples[1], env.samples[2]
    c = m.client()
    try:
        e = envelope()
        fields, body = mc.split_message(raw1)
        res = mc.Result(fields, body, c.leadspc)
        ok = c.start_message(e, fields, res) and c.send_headers(fields, res)
        c.body_chunks(body[:200], 64)
        c.abort()
        check(ok, '3 abort: MAIL, RCPT, header accepted before the abort', repr(res.final))
        check(not c.pending(0.5), '3 abort: no reply to ABORT')
        qid, res = run_message(env, c, n2, raw2)
        verify(env, m, '3 message after ABORT on the same connection', n2, raw2, res, qid)
    finally:
        c.quit()
    lines = [l for l in m.log().splitlines() if ('%s:' % e.queue_id) in l]
    check(len(lines) == 1 and 'verdict=abort' in lines[0] and 'quarantine=' not in lines[0],
          '3 abort: one log line, verdict=abort, nothing quarantined', repr(lines))
    c = m.client()
    try:
        qid, res = run_message(env, c, n1, raw1)
        verify(env, m, '3 after ABORT, a new connection', n1, raw1, res, qid)
    finally:
        c.quit()


def test_chunks(env, m):
    raw = env.large
    fields, body = mc.split_message(raw)
    check(len(body) > 2 * mc.CHUNK_SIZE, '7 large message body spans 3+ chunks of 65535',
          str(len(body)))
    results = {}
    for size in (1, 7, 4096, 65535):
        c = m.client()
        try:
            t0 = time.monotonic()
            qid, res = run_message(env, c, 'large', raw, chunk=size)
            took = time.monotonic() - t0
            verify(env, m, '7 chunks of %d bytes (%.1f s)' % (size, took), 'large', raw, res, qid)
            results[size] = normalise(res.message()[0])
            # the rebuilt body comes back in full packets but the last
            sizes = [len(x.data) for x in res.mods if x.kind == 'body']
            check(len(sizes) >= 3 and all(n == mc.CHUNK_SIZE for n in sizes[:-1]) and
                  0 < sizes[-1] <= mc.CHUNK_SIZE,
                  '7 chunks of %d bytes: REPLBODY in packets of 65535 bytes but the last'
                  % size, str(sizes))
        finally:
            c.quit()
    ref = results.get(65535)
    check(len(results) == 4 and all(v == ref for v in results.values()),
          '7 chunk sizes 1, 7, 4096, 65535 give identical results',
          ', '.join('%d: %s' % (k, 'same' if v == ref else first_difference(v, ref))
                    for k, v in results.items()))


def test_early_close(env, m):
    name, raw = env.samples[0]
    fields, body = mc.split_message(raw)
    variants = ['after MAIL', 'after the header', 'in the body', 'after RCPT',
                'after EOM, before its reply']
    errors = []
    for i in range(50):
        v = variants[i % len(variants)]
        try:
            c = m.client()
            e = envelope()
            res = mc.Result(fields, body, c.leadspc)
            if v == 'after MAIL':
                c.macro(mc.SMFIC_MAIL, {'i': e.queue_id})
                r = c.mail(e.sender)
                if r is None or r.cmd != mc.SMFIR_CONTINUE:
                    errors.append('%d %s: MAIL reply %r' % (i, v, r))
            elif v == 'after RCPT':
                if not c.start_message(e, fields, res):
                    errors.append('%d %s: %r' % (i, v, res.final))
            else:
                if not (c.start_message(e, fields, res) and c.send_headers(fields, res)):
                    errors.append('%d %s: %r' % (i, v, res.final))
                if v == 'in the body':
                    c.body_chunks(body[:len(body) // 2], 100)
                elif v == 'after EOM, before its reply':
                    c.body_chunks(body, mc.CHUNK_SIZE)
                    c.macro(mc.SMFIC_BODYEOB, {'i': e.queue_id})
                    c.send(mc.SMFIC_BODYEOB)
            c.close()
        except (mc.MilterError, OSError) as ex:
            errors.append('%d %s: %s' % (i, v, ex))
    check(not errors, '4 fifty connections closed early (%s)' % ', '.join(variants),
          '; '.join(errors[:5]))
    check(m.alive(), '4 the milter is still running after the early closes')
    c = m.client()
    try:
        qid, res = run_message(env, c, name, raw)
        verify(env, m, '4 a message after the early closes', name, raw, res, qid)
    finally:
        c.quit()
    t0 = time.monotonic()
    rc = m.stop(15.0)
    took = time.monotonic() - t0
    check(rc == 0, '4 SIGTERM: exit 0 within 15 s',
          'exit %r after %.1f s' % (rc, took) if rc is not None else 'still running after 15 s')
    log = m.log()
    check('still in progress' not in log, '4 SIGTERM: no message "still in progress" at exit',
          [x for x in log.splitlines() if 'still in progress' in x][:1].__repr__())
    check('stopped' in log.splitlines()[-1] if log.strip() else False,
          '4 SIGTERM: the log ends with "stopped"', short(log[-200:]))


REJECT_RULE = (
    '# test: refuse everything from this sender\n'
    '[rule test-reject]\n'
    'description = test: refuse mail from a sender\n'
    'sender = reject@*\n'
    'action = reject\n'
    'notice-en = Refused by the test policy.\n')

REJECT_SENDER = (
    '[rule test-reject-sender]\n'
    'description = test: refuse what the test sender sends\n'
    'sender = %s\n'
    'action = reject\n' % SENDER)


def copy_rules(src, dst, extra=None):
    os.makedirs(dst)
    for n in os.listdir(os.path.join(src, 'rules')):
        if n.endswith('.rules'):
            shutil.copy(os.path.join(src, 'rules', n), os.path.join(dst, n))
    if extra:
        with open(os.path.join(dst, '05-test.rules'), 'w') as f:
            f.write(extra)
    os.chmod(dst, 0o755)


def test_reject_tempfail(env):
    name, raw = env.samples[0]
    rules = os.path.join(env.work, 'rules5')
    copy_rules(env.src, rules, REJECT_RULE)
    root = os.geteuid() == 0
    qdir = os.path.join(env.work, 'q5')
    args = ['--config', env.conf, '--rules', rules, '--quarantine', qdir,
            '--clamav-db', env.db]
    user = None
    if root:
        pw = pwd.getpwnam('nobody')
        os.mkdir(qdir, 0o700)
        os.chown(qdir, pw.pw_uid, pw.pw_gid)
        user = 'nobody'
    m = Milter(env.milter, env.work, 'milter5', args, user=user)
    try:
        m.start()
        c = m.client()
        try:
            res = c.send_message(envelope('reject@example.net'), raw)
            check(res.final is not None and res.final.cmd == mc.SMFIR_REPLYCODE and
                  res.final.text.startswith('550 5.7.1'),
                  '5 reject rule: EOM reply REPLYCODE 550 5.7.1', repr(res.final))
            check(not res.mods, '5 reject rule: no modification before the reject',
                  short(res.mods))
            rc, out, err = sanitize(env, raw, sender='reject@example.net', rules=rules)
            check(rc == 1 and out == b'', '5 reject rule: mugaika sanitize exits 1 too',
                  'exit %d %s' % (rc, short(err)))
            # the same connection goes on with the next message
            qid, res = run_message(env, c, name, raw)
            verify(env, m, '5 after a reject, a message on the same connection%s'
                   % (' (milter as nobody)' if root else ''), name, raw, res, qid)
        finally:
            c.quit()
        if not root:
            check(False, '5 quarantine not writable: 451 4.7.1',
                  'needs root (euid %d): the milter must run as nobody (--user) so that a '
                  'read-only objects/ directory stops it' % os.geteuid())
            return
        objects = os.path.join(qdir, 'objects')
        dirs = [objects] + [os.path.join(objects, d) for d in os.listdir(objects)]
        for d in dirs:
            os.chmod(d, 0o500)
        (n2, raw2) = env.samples[3]
        c = m.client()
        try:
            mark = m.log_size()
            res = c.send_message(envelope(), raw2)
            check(res.final is not None and res.final.cmd == mc.SMFIR_REPLYCODE and
                  res.final.text.startswith('451 4.7.1'),
                  '5 quarantine objects/ read-only: EOM reply REPLYCODE 451 4.7.1',
                  repr(res.final))
            check(not res.mods, '5 quarantine objects/ read-only: no modification',
                  short(res.mods))
            check('verdict=tempfail' in m.log(mark), '5 quarantine read-only: log says tempfail',
                  short(m.log(mark)))
            for d in dirs:
                os.chmod(d, 0o700)
            qid, res = run_message(env, c, n2, raw2)
            verify(env, m, '5 quarantine writable again: the message goes through', n2, raw2,
                   res, qid)
        finally:
            for d in dirs:
                os.chmod(d, 0o700)
            c.quit()
        check(m.alive(), '5 the milter is still running')
    finally:
        rc = m.stop(15.0)
        # the exit status is test 4's business
        check(rc is not None, '5 SIGTERM: the milter exits within 15 s', 'exit %r' % (rc,))


def test_reload(env):
    name, raw = env.samples[2]
    rules = os.path.join(env.work, 'rules6')
    copy_rules(env.src, rules)
    m = Milter(env.milter, env.work, 'milter6', ['--config', env.conf, '--rules', rules,
                                                 '--quarantine', os.path.join(env.work, 'q6'),
                                                 '--clamav-db', env.db])

    def one(what):
        c = m.client()
        try:
            return c.send_message(envelope(), raw)
        finally:
            c.quit()

    try:
        m.start()
        res = one('first')
        check(res.final is not None and res.final.cmd == mc.SMFIR_CONTINUE and res.mods,
              '6 policy 1 (built-in rules copied): message accepted and rebuilt', repr(res.final))
        with open(os.path.join(rules, '05-test.rules'), 'w') as f:
            f.write(REJECT_SENDER)
        mark = m.log_size()
        m.proc.send_signal(signal.SIGHUP)
        check(m.wait_log('policy 2 in use', mark), '6 SIGHUP: "policy 2 in use" in the log',
              short(m.log(mark)))
        res = one('second')
        check(res.final is not None and res.final.cmd == mc.SMFIR_REPLYCODE and
              res.final.text.startswith('550 5.7.1'),
              '6 after SIGHUP with a reject rule: REPLYCODE 550 5.7.1', repr(res.final))
        with open(os.path.join(rules, '06-broken.rules'), 'w') as f:
            f.write('[rule broken]\naction = explode\n')
        mark = m.log_size()
        m.proc.send_signal(signal.SIGHUP)
        check(m.wait_log('reload failed', mark), '6 SIGHUP with a broken file: "reload failed"',
              short(m.log(mark)))
        mark = m.log_size()
        res = one('third')
        check(res.final is not None and res.final.cmd == mc.SMFIR_REPLYCODE and
              res.final.text.startswith('550 5.7.1'),
              '6 after the failed reload the previous policy (reject) still decides',
              repr(res.final))
        check('policy=2' in m.log(mark), '6 the message was handled by policy 2',
              short(m.log(mark)))
        os.unlink(os.path.join(rules, '06-broken.rules'))
        os.unlink(os.path.join(rules, '05-test.rules'))
        mark = m.log_size()
        m.proc.send_signal(signal.SIGHUP)
        check(m.wait_log('policy 3 in use', mark), '6 SIGHUP with the file fixed: policy 3',
              short(m.log(mark)))
        res = one('fourth')
        check(res.final is not None and res.final.cmd == mc.SMFIR_CONTINUE and res.mods,
              '6 policy 3 (reject rule gone): accepted again', repr(res.final))
        check(m.alive(), '6 the milter is still running')
    finally:
        rc = m.stop(15.0)
        # the exit status is test 4's business
        check(rc is not None, '6 SIGTERM: the milter exits within 15 s', 'exit %r' % (rc,))


def fields_message(n):
    """A message of n header fields (From, To, Subject and n-3 others)."""
    lines = [b'From: a@example.com', b'To: b@example.jp', b'Subject: many fields']
    lines += [b'X-Field-%d: %d' % (i, i) for i in range(n - 3)]
    return b'\r\n'.join(lines) + b'\r\n\r\nbody\r\n'


def test_limits_and_stop(env):
    """8: the header-field cap; SIGTERM lets the message in progress finish
    and refuses new ones; --group without --user as root."""
    m = Milter(env.milter, env.work, 'milter8', ['--config', env.conf, '--quarantine',
                                                 os.path.join(env.work, 'q8'),
                                                 '--clamav-db', env.db])
    m.start()
    try:
        c = m.client()
        try:
            qid, res = run_message(env, c, 'fields-1000', fields_message(1000))
            check(res.final is not None and res.final.cmd == mc.SMFIR_CONTINUE and res.mods,
                  '8 a message of 1000 header fields is rebuilt', repr(res.final))
            qid, res = run_message(env, c, 'fields-1001', fields_message(1001))
            check(res.final is not None and res.final.text.startswith('552 5.3.4') and
                  'header fields' in res.final.text and not res.mods,
                  '8 a message of 1001 header fields: 552 5.3.4, nothing changed',
                  repr(res.final))
            # field names are kept for every field, so they count too: up
            # to max-header-bytes in all (names of exactly that size pass;
            # From, To and Subject are 13 bytes of them)
            for over, ok in ((0, True), (1, False)):
                sizes = [60000] * 4 + [HEADER_LIMIT - 4 * 60000 - 13 + over]
                qid, res = run_message(env, c, 'long-names-%d' % over, names_message(sizes))
                check_names(res, ok, '8 field names of max-header-bytes%s in all' % (
                    ' + 1' if over else ''), 'header field names longer than %d' % HEADER_LIMIT)
            # header values filling max-header-bytes but for 4 or 3 bytes,
            # then MIME-Version: 1.0 (a value of 4 bytes), which the rebuilt
            # message has first (the parser's limit cut what follows). With
            # 4 bytes left its value is kept and the field left alone; with
            # 3 it is not kept, and the field is deleted and added again
            # (verify checks either plan). The sample's own MIME-Version,
            # past the limit, is deleted in both.
            for slack, kinds in ((4, ['change']), (3, ['change', 'change', 'add'])):
                sizes = [60000] * 4 + [HEADER_LIMIT - slack - 4 * 60001 - 1]
                big = b''.join(b'X-Filler-%d: %s\r\n' % (i, b'f' * n)
                               for i, n in enumerate(sizes))
                raw = big + b'MIME-Version: 1.0\r\n' + env.samples[0][1]
                what = '8 a header at max-header-bytes - %d' % slack
                qid, res = run_message(env, c, 'big-header-%d' % slack, raw)
                verify(env, m, what, 'big-header-%d' % slack, raw, res, qid)
                check([x.kind for x in res.mods if x.name is not None and
                       x.name.lower() == b'mime-version'] == kinds,
                      '%s: MIME-Version %s' % (what, 'left alone' if slack == 4
                                               else 'deleted and added'),
                      short([x for x in res.mods if x.kind != 'body']))
        finally:
            c.quit()

        # a message in progress when SIGTERM comes
        name, raw = env.samples[0]
        fields, body = mc.split_message(raw)
        c = m.client()
        e = envelope()
        res = mc.Result(fields, body, c.leadspc)
        ok = c.start_message(e, fields, res)
        c.header(*fields[0])
        mark = m.log_size()
        m.proc.send_signal(signal.SIGTERM)
        check(ok and m.wait_log('stopping once', mark),
              '8 SIGTERM during a message: the milter waits for it', short(m.log(mark)))
        # c2 stays open after its refusal (as an idle client may): a refused
        # message must not hold the stop back
        c2 = m.client()
        try:
            r2 = mc.Result([], b'', c2.leadspc)
            started = c2.start_message(envelope(), [], r2)
            check(not started and r2.final is not None and r2.final.text.startswith('451 4.7.1'),
                  '8 while stopping, a new message gets 451 4.7.1 at MAIL FROM', repr(r2.final))
            try:
                c.send_headers(fields[1:], res)
                c.body_chunks(body, mc.CHUNK_SIZE)
                c.macro(mc.SMFIC_BODYEOB, {'i': e.queue_id})
                c.eom(res)
                verify(env, m, '8 the message in progress at SIGTERM', name, raw, res, e.queue_id)
            finally:
                c.close()
            t0 = time.monotonic()
            try:
                rc = m.proc.wait(30)
            except subprocess.TimeoutExpired:
                rc = None
            took = time.monotonic() - t0
            check(rc == 0 and took < 15 and 'still in progress' not in m.log(mark),
                  '8 then the milter exits 0 with nothing in progress, though a refused '
                  'client is still connected',
                  'exit %r after %.1f s: %s' % (rc, took, short(m.log(mark)[-400:])))
        finally:
            c2.close()
    finally:
        m.kill()

    # --group without --user would stay root
    if os.geteuid() == 0:
        g = subprocess.run([env.milter, '--config', env.conf, '--socket',
                            'inet:%d@127.0.0.1' % free_port(), '--foreground', '--group',
                            'nogroup', '--quarantine', os.path.join(env.work, 'q8g'),
                            '--clamav-db', env.db], capture_output=True, timeout=TIMEOUT)
        check(g.returncode == 78 and b'--user' in g.stderr,
              '8 as root, --group without --user is refused (exit 78)',
              'exit %d: %s' % (g.returncode, short(g.stderr)))
    else:
        check(False, '8 --group without --user: needs root to be tested', 'euid %d' % os.geteuid())


def fault_milter(env, label, fault):
    """A started milter with fault.so preloaded and MUGAIKA_FAULT=fault."""
    m = Milter(env.milter, env.work, 'milter' + label,
               ['--config', env.conf, '--quarantine', os.path.join(env.work, 'q' + label),
                '--clamav-db', env.db])
    m.env = dict(m.env, LD_PRELOAD=env.fault, MUGAIKA_FAULT=fault,
                 ASAN_OPTIONS=os.environ.get('ASAN_OPTIONS', '') + ':verify_asan_link_order=0')
    m.start()
    return m


def check_names(res, ok, what, reason):
    """A message with long field names: rebuilt when ok, else refused
    with 552 5.3.4 and reason, nothing changed."""
    if ok:
        check(res.final is not None and res.final.cmd == mc.SMFIR_CONTINUE and res.mods,
              what + ': rebuilt', repr(res.final))
    else:
        check(res.final is not None and res.final.text.startswith('552 5.3.4') and
              reason in res.final.text and not res.mods, what + ': 552 5.3.4, nothing changed',
              repr(res.final))


def names_message(sizes):
    """From, To, Subject (13 bytes of names), then a field of each size
    in sizes, named "X" and n-1 "n"s: names of 13 + sum(sizes) bytes."""
    return fields_message(3).replace(b'\r\n\r\n', b'\r\n' + b''.join(
        b'X%s: v\r\n' % (b'n' * (n - 1)) for n in sizes) + b'\r\n', 1)


def test_name_floor(env):
    """8: with max-header-bytes at 1K, field names may still take 64 KiB
    in all (ordinary mail stays under that, and would otherwise be
    refused); past that, 552."""
    conf = os.path.join(env.work, 'mugaika-1k.conf')
    with open(conf, 'w') as f:
        f.write('[mugaika]\nmax-header-bytes = 1K\n')
    os.chmod(conf, 0o644)
    m = Milter(env.milter, env.work, 'milter8n', ['--config', conf, '--quarantine',
                                                  os.path.join(env.work, 'q8n'),
                                                  '--clamav-db', env.db])
    m.start()
    try:
        c = m.client()
        try:
            for total, ok in ((2048, True), (65536, True), (65537, False)):
                n, rest = divmod(total - 13, 1000)
                qid, res = run_message(env, c, 'names-%d' % total,
                                       names_message([1000] * n + ([rest] if rest else [])))
                check_names(res, ok, '8 max-header-bytes 1K, field names of %d bytes in all'
                            % total, 'header field names longer than 65536')
        finally:
            c.quit()
    finally:
        m.stop(15.0)


def test_faults(env):
    """9: libmagic cannot start for a message (fault.so makes the first
    magic_open fail): that message gets 451 4.7.1, nothing is changed or
    accepted; the next one is rebuilt. 10: an AV engine error during the
    scans: 451 4.7.1 as well."""
    name, raw = env.samples[1]
    for label, fault, what, log in (('9', 'magic-open-once', 'libmagic fails to start',
                                     'type detection'),
                                    ('10', 'scan', 'AV engine error during the scan',
                                     'verdict=tempfail')):
        m = fault_milter(env, label, fault)
        try:
            c = m.client()
            try:
                res = c.send_message(envelope(), raw, mc.CHUNK_SIZE)
                check(res.final is not None and res.final.text.startswith('451 4.7.1') and
                      not res.mods,
                      '%s %s: 451 4.7.1, no modification, not accepted' % (label, what),
                      repr(res.final))
                if fault == 'magic-open-once':
                    qid, res = run_message(env, c, name, raw)
                    verify(env, m, '9 the next message (libmagic works again)', name, raw, res,
                           qid)
            finally:
                c.quit()
            check(log in m.log(), '%s the log says why' % label, short(m.log()[-400:]))
        finally:
            rc = m.stop(15.0)
            check(rc == 0, '%s the milter exits 0' % label, 'exit %r' % (rc,))


def main(argv):
    if len(argv) != 5:
        print('usage: test_protocol.py MUGAIKA_MILTER MUGAIKA SOURCE_ROOT FAULT_SO',
              file=sys.stderr)
        return 64
    env = Env()
    env.milter, env.cli, env.src, env.fault = (os.path.abspath(a) for a in argv[1:])
    os.umask(0o022)  # the milter of test 5 runs as nobody: files it reads must be readable
    env.work = tempfile.mkdtemp(prefix='mugaika-milter-test.')
    os.chmod(env.work, 0o755)
    os.mkdir(os.path.join(env.work, 'spool'))
    os.chmod(os.path.join(env.work, 'spool'), 0o1777)
    env.expect = {}
    t_start = time.monotonic()
    milters = []
    try:
        env.db = os.path.join(env.work, 'db')
        subprocess.run(['bash', os.path.join(env.src, 'tests', 'av', 'make-testdb'), env.db],
                       check=True, timeout=TIMEOUT)
        os.chmod(env.db, 0o755)
        env.conf = os.path.join(env.work, 'mugaika.conf')
        with open(env.conf, 'w') as f:
            f.write('# no settings: the built-in defaults, not /etc/mugaika/mugaika.conf\n'
                    '[mugaika]\n')
        os.chmod(env.conf, 0o644)
        env.qcli = os.path.join(env.work, 'qcli')
        env.samples = make_samples(env.src)
        env.large = large_message()

        m = Milter(env.milter, env.work, 'milter', ['--config', env.conf, '--quarantine',
                                                    os.path.join(env.work, 'q'),
                                                    '--clamav-db', env.db])
        milters.append(m)
        m.start()
        steps = [('negotiation', lambda: test_negotiation(env, m)),
                 ('1', lambda: test_single(env, m)),
                 ('2', lambda: test_several(env, m)),
                 ('3', lambda: test_abort(env, m)),
                 ('7', lambda: test_chunks(env, m)),
                 ('4', lambda: test_early_close(env, m)),
                 ('5', lambda: test_reject_tempfail(env)),
                 ('6', lambda: test_reload(env)),
                 ('8', lambda: test_limits_and_stop(env)),
                 ('8n', lambda: test_name_floor(env)),
                 ('9', lambda: test_faults(env))]
        for label, fn in steps:
            t0 = time.monotonic()
            try:
                fn()
            except Exception as ex:  # one broken part must not hide the others
                check(False, 'test %s ran to its end' % label, '%s: %s' % (type(ex).__name__, ex))
            print('# test %s: %.1f s' % (label, time.monotonic() - t0))
            if label in ('1', '2', '3', '7') and not m.alive():
                check(False, 'milter alive after test %s' % label, short(m.log()[-2000:]))
                m.start()
    finally:
        for x in milters:
            x.kill()
        if FAILED:
            print('# logs kept in %s' % env.work)
        else:
            shutil.rmtree(env.work, ignore_errors=True)
    print('1..%d' % COUNT[0])
    print('# %d checks, %d failed, %.1f s' % (COUNT[0], len(FAILED), time.monotonic() - t_start))
    return 1 if FAILED else 0


if __name__ == '__main__':
    sys.exit(main(sys.argv))
