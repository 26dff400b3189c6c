# SPDX-License-Identifier: GPL-2.0-or-later
"""mugaika-watch as administrators run it: the configuration file's
pairs, the pool of workers, quotas, fairness, the status (issue 6).

    test_daemon.py --watch MUGAIKA_WATCH --cli MUGAIKA --shared SHARED

TAP on standard output. Plain text files are dropped (the built-in
policy keeps them byte for byte), so every check is about the daemon,
not the handlers. Every daemon started is stopped, even when a check
fails; the temporary folder is kept (path printed) when one failed.

1. Pairs from --config: [watch a] (mode 0640, group = the test's own
   group, IN/<user>/ folders) and [watch b] (default mode 0644): each
   file arrives in its own pair's OUT, the user's folder is made with
   mode 0750, outputs and reports carry the pair's mode and group;
   `config check` shows both pairs.
2. Command line: --in without --out, no folders at all, an unknown
   owner: exit 64, 64, 78 with a message naming the problem.
3. Quotas (user-files = 2 for pair a, watch-user-bytes = 10K): alice
   drops 5 files, bob 1, carol (bytes) 3 files of 6 KiB: alice gets 2,
   bob 1, carol 1; the rest stay in IN, untouched; the log says "over
   the daily quota" once per file; --once does not wait for them;
   `mugaika watch status` lists them. A second run on the same day
   (the counters come back from status.json) takes none of them.
4. Fairness and back-pressure (watch-workers = 1, watch-queue = 1):
   alice has 30 files waiting, bob 1 (alice's folder sorts first):
   bob's file is among the first 3 done, not the 31st.
5. The status while running: `mugaika watch status` exits 0 and says
   running with its pid, the JSON counts what was done; after SIGTERM
   it exits 3 (not running). Without --foreground the daemon goes into
   the background: the command returns 0 at once and the daemon still
   processes a file; SIGTERM to the pid in status.json stops it.
6. A file that cannot be removed from IN after it was handled (chattr
   +i as root, else a read-only folder): delivered once, not again at
   every scan; the log says so; once it changes it is taken again.
7. owner = nobody, group = nogroup, mode 0640, the daemon run (as
   root) with CAP_CHOWN as its only capability, as the systemd unit
   does: file and report are nobody:nogroup 0640, the user's folder
   (the daemon keeps writing into it) stays the daemon's with group
   nogroup and 0750 (needs root: said so on the output otherwise).
8. --audit: one JSON line per item (a text delivered, a symlink
   refused, an encrypted zip held: source, folder, outcome, outputs,
   verdict, quarantine id, sha256). `mugaika quarantine release ID` of
   the held zip: without --output 64; a wrong password 65 and nothing
   created; the right one (--password-file -) writes the three members
   and a report (en) into the new folder, prints each path, writes an
   audit line with "release": true; an existing folder is 64.
9. Folders dropped into a user's folder while the daemon runs (a
   subfolder, a name Windows refuses, a tree 9 levels deep): the files
   arrive in the same folders in OUT ("CON" as "_CON"), the emptied
   folders are removed from IN after a quiet while, the user's folder
   stays, a file deeper than 8 levels is not taken and the log says so.
10. A user's folder removed and made again in IN, and removed from OUT:
   new files are still seen and delivered. A symlink in a folder that
   will not let it go (chattr +i, else read-only): one report, not a
   new one every 10 s. A stop while files wait for the one worker:
   they stay in IN, and the quota counts only what was delivered.
11. 80 folders dropped at once with 200 descriptors (prlimit): they are
   watched as many at a time as the descriptors allow, all arrive and
   leave IN, the log says the rest waits, no descriptor runs out.
12. A file whose OUT folder keeps refusing (chattr +i, else read-only):
   retried after 10 s, then 20 s: 3 attempts in 36 s, not 4.
"""
import argparse
import grp
import json
import os
import pwd
import shutil
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'cdr'))
import tap  # noqa: E402
from tap import check  # noqa: E402

P = argparse.ArgumentParser()
P.add_argument('--watch', required=True)
P.add_argument('--cli', required=True)
P.add_argument('--shared', required=True)
A = P.parse_args()

STARTED = []  # every Popen, stopped at the end in any case
REPORT = '.mugaika.txt'


def until(cond, timeout, step=0.1):
    end = time.monotonic() + timeout
    while True:
        v = cond()
        if v or time.monotonic() >= end:
            return v
        time.sleep(step)


def put(path, data):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, 'wb') as f:
        f.write(data)


def outputs(d):
    """Sorted names (relative) of the files under d."""
    found = []
    for top, _, names in os.walk(d):
        found += [os.path.relpath(os.path.join(top, n), d) for n in names]
    return sorted(found)


class Run:
    """One mugaika-watch process, its output in a log file."""

    def __init__(self, root, argv, tag, wrap=()):
        """wrap: a command that runs the daemon (setpriv, prlimit), ending in '--'."""
        self.log = os.path.join(root, 'log-%s.txt' % tag)
        self.logf = open(self.log, 'wb')
        self.p = subprocess.Popen(list(wrap) + [A.watch] + argv, stdin=subprocess.DEVNULL,
                                  stdout=self.logf, stderr=subprocess.STDOUT,
                                  start_new_session=True)
        STARTED.append(self.p)

    def wait(self, timeout=180):
        try:
            return self.p.wait(timeout)
        except subprocess.TimeoutExpired:
            self.p.kill()
            self.p.wait()
            return None
        finally:
            self.logf.close()

    def stop(self):
        if self.p.poll() is None:
            self.p.send_signal(signal.SIGTERM)
        return self.wait(60)

    def text(self):
        with open(self.log, 'rb') as f:
            return f.read().decode('utf-8', 'replace')


class Site:
    """ROOT/<tag>: db (shared), q, state and the pairs' folders."""

    def __init__(self, root, tag, db):
        self.root = root
        self.base = os.path.join(root, tag)
        self.tag = tag
        self.q = os.path.join(self.base, 'q')
        self.state = os.path.join(self.base, 'state')
        self.db = db
        os.makedirs(self.q)
        self.runs = 0

    def folder(self, *parts):
        p = os.path.join(self.base, *parts)
        os.makedirs(p, exist_ok=True)
        return p

    def conf(self, text):
        path = os.path.join(self.base, 'mugaika.conf')
        with open(path, 'w') as f:
            f.write('[mugaika]\nquarantine = %s\nclamav-db = %s\nwatch-state = %s\n'
                    'watch-quiet-ms = 200\nwatch-scan-ms = 100\n%s' % (self.q, self.db, self.state, text))
        return path

    def start(self, argv, wrap=()):
        self.runs += 1
        return Run(self.base, argv, '%s-%d' % (self.tag, self.runs), wrap)


def status(state, *extra):
    p = subprocess.run([A.cli, 'watch', 'status', '--state', state] + list(extra),
                       capture_output=True, timeout=60)
    return p.returncode, p.stdout.decode('utf-8', 'replace'), p.stderr.decode('utf-8', 'replace')


# --- 1. pairs from the configuration file ----------------------------------------------------

def test_pairs(root, db):
    s = Site(root, 'pairs', db)
    a_in, a_out = s.folder('a', 'in'), s.folder('a', 'out')
    b_in, b_out = s.folder('b', 'in'), s.folder('b', 'out')
    gname = grp.getgrgid(os.getgid()).gr_name
    conf = s.conf('[watch a]\nin = %s\nout = %s\nmode = 0640\ngroup = %s\n'
                  '[watch b]\nin = %s\nout = %s\n' % (a_in, a_out, gname, b_in, b_out))
    put(os.path.join(a_in, 'alice', 'memo.txt'), b'alice memo\n')
    put(os.path.join(a_in, 'top.txt'), b'top of a\n')
    put(os.path.join(b_in, 'b.txt'), b'pair b\n')
    r = s.start(['--config', conf, '--once'])
    rc = r.wait()
    check(rc == 0, 'pairs: --once exits 0', r.text()[-2000:])
    check(outputs(a_out) == ['alice/memo.txt', 'alice/memo.txt' + REPORT, 'top.txt',
                             'top.txt' + REPORT], 'pairs: pair a got its files', outputs(a_out))
    check(outputs(b_out) == ['b.txt', 'b.txt' + REPORT], 'pairs: pair b got its file',
          outputs(b_out))
    check(outputs(a_in) == [] and outputs(b_in) == [], 'pairs: both IN are empty')
    ok = True
    for rel in ('alice/memo.txt', 'alice/memo.txt' + REPORT, 'top.txt', 'top.txt' + REPORT):
        st = os.stat(os.path.join(a_out, rel))
        ok = ok and (st.st_mode & 0o7777) == 0o640 and st.st_gid == os.getgid()
    check(ok, 'pairs: pair a writes mode 0640 and its group')
    st = os.stat(os.path.join(a_out, 'alice'))
    check((st.st_mode & 0o7777) == 0o750, "pairs: the user's folder is made 0750",
          oct(st.st_mode))
    st = os.stat(os.path.join(b_out, 'b.txt'))
    check((st.st_mode & 0o7777) == 0o644, 'pairs: pair b writes the default 0644', oct(st.st_mode))
    with open(os.path.join(a_out, 'alice', 'memo.txt'), 'rb') as f:
        check(f.read() == b'alice memo\n', 'pairs: the text arrives byte for byte')
    p = subprocess.run([A.cli, 'config', 'check', conf], capture_output=True, timeout=60)
    out = p.stdout.decode()
    check(p.returncode == 0 and '[watch a]' in out and '[watch b]' in out and
          'mode = 0640' in out, 'pairs: config check shows both pairs', out[-800:])


# --- 2. command-line errors ------------------------------------------------------------------

def test_usage(root, db):
    s = Site(root, 'usage', db)
    d = s.folder('in')
    r = s.start(['--in', d, '--state', s.state, '--once'])
    check(r.wait() == 64 and '--in and --out go together' in r.text(),
          'usage: --in without --out is 64', r.text())
    conf = s.conf('')
    r = s.start(['--config', conf, '--once'])
    check(r.wait() == 64 and 'no folders' in r.text(), 'usage: no folders at all is 64', r.text())
    conf = s.conf('[watch x]\nin = %s\nout = %s\nowner = no-such-user-mugaika\n'
                  % (d, s.folder('out')))
    r = s.start(['--config', conf, '--once'])
    check(r.wait() == 78 and "no such user 'no-such-user-mugaika'" in r.text(),
          'usage: an unknown owner is 78', r.text())


# --- 3. quotas -------------------------------------------------------------------------------

def test_quota(root, db):
    s = Site(root, 'quota', db)
    a_in, a_out = s.folder('in'), s.folder('out')
    conf = s.conf('watch-user-bytes = 10K\n[watch a]\nin = %s\nout = %s\nuser-files = 2\n'
                  'user-bytes = 10K\n' % (a_in, a_out))
    for i in range(5):
        put(os.path.join(a_in, 'alice', 'a%d.txt' % i), b'alice %d\n' % i)
    put(os.path.join(a_in, 'bob', 'b.txt'), b'bob\n')
    for i in range(3):
        put(os.path.join(a_in, 'carol', 'c%d.txt' % i), (b'%d' % i) * 6144)
    t0 = time.monotonic()
    r = s.start(['--config', conf, '--once'])
    rc = r.wait()
    took = time.monotonic() - t0
    log = r.text()
    check(rc == 0, 'quota: --once exits 0', log[-2000:])
    got = outputs(a_out)
    alice = [n for n in got if n.startswith('alice/') and not n.endswith(REPORT)]
    carol = [n for n in got if n.startswith('carol/') and not n.endswith(REPORT)]
    check(len(alice) == 2, 'quota: alice gets 2 files (user-files = 2)', got)
    check('bob/b.txt' in got, 'quota: bob is not held up by alice')
    check(len(carol) == 1, 'quota: carol gets 1 file of 6 KiB (user-bytes = 10K)', got)
    left = outputs(a_in)
    check(len(left) == 5 and all(n.startswith(('alice/', 'carol/')) for n in left),
          'quota: the 5 others stay in IN', left)
    check(log.count('over the daily quota') == 5, 'quota: logged once per file',
          log.count('over the daily quota'))
    check(took < 25, 'quota: --once does not wait for files over quota (%.1f s)' % took)
    rc, out, err = status(s.state)
    check(rc == 3, 'quota: status after --once: not running (3)', (rc, err))
    check('alice' in out and 'carol' in out and 'a' in out, 'quota: status lists the users', out)
    rc, out, _ = status(s.state, '--json')
    try:
        js = json.loads(out)
    except ValueError:
        js = None
    check(js is not None and 'quota' in json.dumps(js), 'quota: status --json mentions quota',
          out[:1500])
    r = s.start(['--config', conf, '--once'])
    rc = r.wait()
    check(rc == 0 and len(outputs(a_in)) == 5 and outputs(a_out) == got,
          'quota: a second run the same day takes none of them', (rc, outputs(a_in)))


# --- 4. fairness and back-pressure -----------------------------------------------------------

def test_fair(root, db):
    s = Site(root, 'fair', db)
    a_in, a_out = s.folder('in'), s.folder('out')
    conf = s.conf('watch-workers = 1\nwatch-queue = 1\n[watch a]\nin = %s\nout = %s\n'
                  % (a_in, a_out))
    # alice's folder sorts first and holds 30 files; bob's one file is there too: in folder
    # order it would be the 31st, round-robin makes it one of the first
    for i in range(30):
        put(os.path.join(a_in, 'alice', 'a%02d.txt' % i), b'alice %d\n' % i)
    put(os.path.join(a_in, 'bob', 'b.txt'), b'bob\n')
    r = s.start(['--config', conf, '--once'])
    rc = r.wait()
    log = r.text()
    check(rc == 0 and len(outputs(a_out)) == 62, 'fair: all 31 files arrive',
          (rc, len(outputs(a_out)), log[-1500:]))
    lines = [ln for ln in log.splitlines() if 'done: a: ' in ln]
    bob_at = next((i for i, ln in enumerate(lines) if 'bob/' in ln), None)
    check(bob_at is not None and bob_at <= 2, 'fair: bob is served among the first 3, not after '
          "alice's 30 (position %s)" % bob_at, '\n'.join(lines[:5]))
    check('with 1 worker' in log, 'fair: the log names the pool size', log[:800])


# --- 5. status while running; the background ---------------------------------------------------

def test_status(root, db):
    s = Site(root, 'status', db)
    a_in, a_out = s.folder('in'), s.folder('out')
    conf = s.conf('[watch a]\nin = %s\nout = %s\n' % (a_in, a_out))
    put(os.path.join(a_in, 'x.txt'), b'x\n')
    r = s.start(['--config', conf, '--foreground'])
    try:
        until(lambda: 'x.txt' in outputs(a_out), 60)
        def counted():
            rc, out, _ = status(s.state, '--json')
            try:
                return rc == 0 and sum(u.get('done', 0) for u in json.loads(out)['users']) == 1
            except (ValueError, KeyError, TypeError):
                return False
        ok = until(counted, 30)
        rc, out, err = status(s.state)
        check(rc == 0 and str(r.p.pid) in out, 'status: running, with its pid (0)', (rc, out, err))
        rc, out, _ = status(s.state, '--json')
        js = json.loads(out) if rc == 0 else {}
        check(ok and js.get('running') is True, 'status: --json says running and counts the file',
              out[:1500])
    finally:
        rc = r.stop()
    check(rc == 0, 'status: SIGTERM stops it with 0')
    rc, out, _ = status(s.state)
    check(rc == 3, 'status: after the stop, not running (3)', out)

    # into the background
    put(os.path.join(a_in, 'y.txt'), b'y\n')
    r = s.start(['--config', conf])
    rc = r.wait(60)
    check(rc == 0, 'background: the command returns 0 at once', r.text())
    arrived = until(lambda: 'y.txt' in outputs(a_out), 60)
    check(arrived, 'background: the daemon still processes a file')
    pid = None
    try:
        with open(os.path.join(s.state, 'status.json')) as f:
            pid = json.load(f).get('pid')
    except (OSError, ValueError):
        pass
    check(isinstance(pid, int) and pid > 1 and pid != r.p.pid and os.path.exists('/proc/%d' % pid),
          "background: status.json has the daemon's pid (not the command's)", pid)
    if isinstance(pid, int) and pid > 1 and pid != r.p.pid and os.path.exists('/proc/%d' % pid):
        os.kill(pid, signal.SIGTERM)
        gone = until(lambda: not os.path.exists('/proc/%d' % pid) or
                     open('/proc/%d/stat' % pid).read().split()[2] == 'Z', 60)
        check(gone, 'background: SIGTERM stops it')
        if not gone:
            os.kill(pid, signal.SIGKILL)


# --- 6. a file the drop folder will not let go --------------------------------------------------

def test_stuck(root, db):
    s = Site(root, 'stuck', db)
    a_in, a_out = s.folder('in'), s.folder('out')
    conf = s.conf('[watch a]\nin = %s\nout = %s\n' % (a_in, a_out))
    path = os.path.join(a_in, 'keep.txt')
    put(path, b'first\n')
    if os.geteuid() == 0:
        p = subprocess.run(['chattr', '+i', path], capture_output=True, timeout=30)
        how = 'chattr +i'
        undo = ['chattr', '-i', path]
        ok = p.returncode == 0
    else:
        os.chmod(a_in, 0o555)
        how = 'a folder without write permission'
        undo = ['chmod', '755', a_in]
        ok = True
    if not check(ok, 'stuck: the file cannot be removed (%s)' % how, p.stderr if not ok else ''):
        return
    r = s.start(['--config', conf, '--foreground'])
    try:
        arrived = until(lambda: 'keep.txt' in outputs(a_out), 60)
        check(arrived, 'stuck: the file is delivered once')
        time.sleep(2.5)  # a dozen scans and quiet periods
        got = outputs(a_out)
        check(got == ['keep.txt', 'keep.txt' + REPORT], 'stuck: and not again and again', got)
        check('could not be removed from the drop folder' in r.text(),
              'stuck: the log says it could not be removed', r.text()[-1500:])
        subprocess.run(undo, check=True, timeout=30)
        with open(path, 'ab') as f:
            f.write(b'second\n')
        again = until(lambda: 'keep (2).txt' in outputs(a_out) and not os.path.exists(path), 60)
        check(again, 'stuck: once changed, it is taken again and removed', outputs(a_out))
    finally:
        # (the file is gone when all went well: chattr then fails, quietly)
        subprocess.run(undo, capture_output=True, timeout=30)
        rc = r.stop()
    check(rc == 0, 'stuck: SIGTERM stops it with 0')


# --- 7. another owner, with CAP_CHOWN alone (the systemd unit's) -------------------------------

def test_owner(root, db):
    if os.geteuid() != 0:
        print('# owner: not root, so chown to another user cannot be tried here (CI runs as root)')
        return
    s = Site(root, 'owner', db)
    a_in, a_out = s.folder('in'), s.folder('out')
    conf = s.conf('[watch a]\nin = %s\nout = %s\nowner = nobody\ngroup = nogroup\n'
                  'mode = 0640\n' % (a_in, a_out))
    put(os.path.join(a_in, 'u', 'f.txt'), b'owned\n')
    import io
    import zipfile
    z = io.BytesIO()
    with zipfile.ZipFile(z, 'w') as zf:
        zf.writestr('sub/m.txt', 'member\n')
    put(os.path.join(a_in, 'u', 'pack.zip'), z.getvalue())
    r = s.start(['--config', conf, '--once'],
                wrap=['setpriv', '--bounding-set', '-all,+chown', '--inh-caps', '-all,+chown',
                      '--ambient-caps', '+chown', '--'])
    rc = r.wait()
    check(rc == 0, 'owner: --once with CAP_CHOWN alone exits 0', r.text()[-1500:])
    nobody, nogroup = pwd.getpwnam('nobody').pw_uid, grp.getgrnam('nogroup').gr_gid
    got = outputs(a_out)
    check(got == ['u/f.txt', 'u/f.txt' + REPORT, 'u/pack.zip' + REPORT, 'u/pack/sub/m.txt'],
          'owner: the file, the zip\'s members as a folder, the reports arrive', got)
    ok = True
    for rel, mode, uid in (('u/f.txt', 0o640, nobody), ('u/f.txt' + REPORT, 0o640, nobody),
                           ('u/pack', 0o750, nobody), ('u/pack/sub', 0o750, nobody),
                           ('u/pack/sub/m.txt', 0o640, nobody), ('u', 0o750, os.geteuid())):
        try:
            st = os.stat(os.path.join(a_out, rel))
        except OSError:
            ok = False
            continue
        ok = ok and st.st_uid == uid and st.st_gid == nogroup and (st.st_mode & 0o7777) == mode
    check(ok, "owner: file and report are nobody:nogroup 0640; the user's folder stays the "
          "daemon's (it writes into it), group nogroup, 0750")


# --- 8. audit lines; an encrypted zip held, then released into a folder ---------------------------

def test_release(root, db):
    s = Site(root, 'release', db)
    a_in, a_out = s.folder('in'), s.folder('out')
    audit = os.path.join(s.base, 'audit.log')
    conf = s.conf('[watch a]\nin = %s\nout = %s\n' % (a_in, a_out))
    with open(os.path.join(A.shared, 'corpus', 'recursive-extractor', 'TestDataArchives',
                           'TestDataEncryptedZipCrypto.zip'), 'rb') as f:
        put(os.path.join(a_in, 'yamada', 'locked.zip'), f.read())
    put(os.path.join(a_in, 'yamada', 'memo.txt'), b'memo\n')
    os.symlink('/etc/hostname', os.path.join(a_in, 'yamada', 'link'))
    r = s.start(['--config', conf, '--once', '--audit', audit])
    check(r.wait() == 0, 'audit: --once exits 0', r.text()[-1500:])
    try:
        with open(audit, 'rb') as f:
            lines = [json.loads(ln) for ln in f.read().decode().splitlines()]
    except (OSError, ValueError) as e:
        lines = []
        check(False, 'audit: the log is JSON lines', e)
    by = {x.get('file'): x for x in lines}
    check(len(lines) == 3 and set(by) == {'locked.zip', 'memo.txt', 'link'},
          'audit: one line per item', [x.get('file') for x in lines])
    m = by.get('memo.txt', {})
    check(m.get('source') == 'watch' and m.get('outcome') == 'done' and
          m.get('folder') == 'a/in/yamada' and m.get('outputs') == ['memo.txt', 'memo.txt' + REPORT]
          and m.get('verdict') == 'accept' and m.get('quarantine_id') and
          len(m.get('sha256') or '') == 64,
          'audit: a delivered file: where from, outputs, verdict, quarantine id, sha256', m)
    lk = by.get('link', {})
    check(lk.get('outcome') == 'refused' and lk.get('reason') == 'symlink',
          'audit: a refused symlink', lk)
    z = by.get('locked.zip', {})
    qid = z.get('quarantine_id')
    check(z.get('outcome') == 'done' and z.get('outputs') == ['locked.zip' + REPORT] and qid,
          'audit: the encrypted zip: only its report delivered, its quarantine id', z)
    if not qid:
        return

    def release(*extra, stdin=None):
        p = subprocess.run([A.cli, 'quarantine', '--quarantine', s.q, 'release', qid,
                            '--clamav-db', db] + list(extra), capture_output=True, input=stdin,
                           timeout=120)
        return p.returncode, p.stdout.decode('utf-8', 'replace'), p.stderr.decode('utf-8', 'replace')

    dest = os.path.join(s.base, 'released')
    rc, out, err = release('--password', 'TestData')
    check(rc == 64 and '--output DIR' in err, 'release file: without --output: 64', (rc, err))
    rc, out, err = release('--password', 'wrong', '--output', dest)
    check(rc == 65 and not os.path.exists(dest) and 'stays held' in err,
          'release file: a wrong password: 65, no folder, the part named', (rc, err))
    check(sorted(os.listdir(s.base)) == sorted(set(os.listdir(s.base)) - {'released'}) and
          not [n for n in os.listdir(s.base) if n.startswith('.~mugaika-')],
          'release file: nothing hidden left behind', os.listdir(s.base))
    rel_audit = os.path.join(s.base, 'release-audit.log')
    rc, out, err = release('--password-file', '-', '--output', dest, '--audit', rel_audit,
                           '--lang', 'en', stdin=b'TestData\n')
    got = outputs(dest) if os.path.isdir(dest) else []
    want = ['TestData/Foo/Bar/Lorem.txt', 'TestData/Foo/Lorem.txt', 'TestData/Lorem.txt']
    check(rc == 0 and all(any(g.endswith(w) for g in got) for w in want) and
          'locked.zip' + REPORT in got,
          'release file: the three members and the report arrive in the new folder', (rc, err, got))
    lorem = [g for g in got if g.endswith('Lorem.txt')]
    check(lorem and all(open(os.path.join(dest, g), 'rb').read().startswith(b'Lorem ipsum')
                        for g in lorem), 'release file: the members hold their text')
    check(sorted(out.split()) == sorted(os.path.join(dest, g) for g in got),
          'release file: every path written is printed', out)
    rep = open(os.path.join(dest, 'locked.zip' + REPORT), 'rb').read().decode()
    check('Delivered' in rep and 'Lorem.txt' in rep, 'release file: the report (en) lists them',
          rep[:800])
    try:
        ra = json.loads(open(rel_audit).read().splitlines()[-1])
    except (OSError, ValueError, IndexError):
        ra = {}
    check(ra.get('release') is True and ra.get('source') == 'release' and
          len(ra.get('outputs') or []) == len(got), 'release file: its audit line', ra)
    rc, out, err = release('--password', 'TestData', '--output', dest)
    check(rc == 64 and 'exists already' in err, 'release file: an existing folder: 64', (rc, err))


# --- 9. folders dropped into a user's folder ------------------------------------------------------

def test_folders(root, db):
    s = Site(root, 'folders', db)
    a_in, a_out = s.folder('in'), s.folder('out')
    conf = s.conf('[watch a]\nin = %s\nout = %s\n' % (a_in, a_out))
    os.makedirs(os.path.join(a_in, 'alice'))
    r = s.start(['--config', conf, '--foreground'])
    try:
        time.sleep(0.5)
        # a folder copied in while the daemon runs, with a subfolder and a name Windows refuses
        put(os.path.join(a_in, 'alice', '案件', 'y.txt'), b'y\n')
        put(os.path.join(a_in, 'alice', '案件', '資料', 'x.txt'), b'x\n')
        put(os.path.join(a_in, 'alice', 'CON', 'z.txt'), b'z\n')
        deep = os.path.join(a_in, 'alice', *['d%d' % k for k in range(9)])
        put(os.path.join(deep, 'deep.txt'), b'deep\n')
        want = ['alice/_CON/z.txt', 'alice/_CON/z.txt' + REPORT, 'alice/案件/y.txt',
                'alice/案件/y.txt' + REPORT, 'alice/案件/資料/x.txt',
                'alice/案件/資料/x.txt' + REPORT]
        arrived = until(lambda: all(w in outputs(a_out) for w in want), 60)
        check(arrived, 'folders: the files arrive in the same folders in OUT (CON made safe)',
              outputs(a_out))
        shallow = ['alice/' + '/'.join('d%d' % k for k in range(6)) + '/']
        gone = until(lambda: not os.path.exists(os.path.join(a_in, 'alice', '案件')) and
                     not os.path.exists(os.path.join(a_in, 'alice', 'CON')), 30)
        check(gone, 'folders: the emptied folders are removed from IN (after a quiet while)',
              outputs(a_in))
        check(os.path.isdir(os.path.join(a_in, 'alice')), "folders: the user's folder stays")
        check(os.path.exists(os.path.join(deep, 'deep.txt')) and
              not any(o.endswith('deep.txt') for o in outputs(a_out)),
              'folders: a file nested deeper than 8 levels is not taken', shallow)
    finally:
        rc = r.stop()
    log = r.text()
    check(rc == 0 and 'deeper than 8 levels' in log and 'the folder is empty: removed' in log,
          'folders: the log says what was too deep and what was removed', log[-1500:])


# --- 10. folders made again, a refused entry that stays, the quota at a stop ---------------------

def lock_dir(path, on):
    """No entry of path can be removed: chattr +i as root, else read-only."""
    if os.geteuid() == 0:
        return subprocess.run(['chattr', '+i' if on else '-i', path], capture_output=True,
                              timeout=30).returncode == 0
    os.chmod(path, 0o555 if on else 0o755)
    return True


def test_again(root, db):
    s = Site(root, 'again', db)
    a_in, a_out = s.folder('in'), s.folder('out')
    conf = s.conf('[watch a]\nin = %s\nout = %s\n' % (a_in, a_out))
    put(os.path.join(a_in, 'alice', 'one.txt'), b'one\n')
    os.makedirs(os.path.join(a_in, 'locked'))
    r = s.start(['--config', conf, '--foreground'])

    def done(name):
        """name and its report in OUT, name gone from IN: the daemon has
        finished with it (folders removed under it before that race with
        its own writes and removals)."""
        out = outputs(a_out)
        return (name in out and name + REPORT in out and
                not os.path.exists(os.path.join(a_in, name)))

    try:
        check(until(lambda: done('alice/one.txt'), 60), 'again: the first file')
        # IN/alice made again: its new files are seen
        shutil.rmtree(os.path.join(a_in, 'alice'))
        time.sleep(0.5)
        put(os.path.join(a_in, 'alice', 'three.txt'), b'three\n')
        check(until(lambda: done('alice/three.txt'), 60),
              "again: a user's folder made again in IN is watched again", outputs(a_in))
        # OUT/alice removed by someone: made again, nothing retried forever
        shutil.rmtree(os.path.join(a_out, 'alice'))
        time.sleep(0.5)
        put(os.path.join(a_in, 'alice', 'four.txt'), b'four\n')
        check(until(lambda: 'alice/four.txt' in outputs(a_out), 60),
              "again: a user's folder removed from OUT is made again", outputs(a_out))
        # a symlink in a folder that will not let it go: one report, not one every 10 s
        os.symlink('/etc/hostname', os.path.join(a_in, 'locked', 'l'))
        if check(lock_dir(os.path.join(a_in, 'locked'), True), 'again: the folder is locked'):
            try:
                until(lambda: 'locked/l' + REPORT in outputs(a_out), 60)
                time.sleep(12)  # past the 10 s after which a retry would come
                reps = [n for n in outputs(a_out) if n.startswith('locked/l')]
                check(reps == ['locked/l' + REPORT],
                      'again: a refused entry that cannot be removed: one report', reps)
            finally:
                lock_dir(os.path.join(a_in, 'locked'), False)
    finally:
        rc = r.stop()
    check(rc == 0, 'again: SIGTERM stops it with 0', r.text()[-1500:])

    # the quota of files taken but not started when the daemon stops is given back
    s2 = Site(root, 'again-quota', db)
    b_in, b_out = s2.folder('in'), s2.folder('out')
    conf = s2.conf('watch-workers = 1\nwatch-queue = 10\n[watch b]\nin = %s\nout = %s\n'
                   'user-files = 100\n' % (b_in, b_out))
    for i in range(12):
        put(os.path.join(b_in, 'bob', 'f%02d.txt' % i), (b'%d ' % i) * 400000)
    r = s2.start(['--config', conf, '--foreground'])
    try:
        until(lambda: any(n.endswith('.txt') and not n.endswith(REPORT) for n in outputs(b_out)),
              60, 0.02)
    finally:
        rc = r.stop()
    done = len([n for n in outputs(b_out) if not n.endswith(REPORT)])
    try:
        with open(os.path.join(s2.state, 'status.json')) as f:
            users = json.load(f)['users']
        today = sum(u.get('today_files', 0) for u in users if u.get('user') == 'bob')
    except (OSError, ValueError, KeyError) as e:
        today = repr(e)
    check(rc == 0 and today == done and len(outputs(b_in)) == 12 - done,
          'again: at a stop, files not started stay in IN and do not count in the quota '
          '(%s delivered, %s counted)' % (done, today))


# --- 11. more dropped folders than descriptors ----------------------------------------------------

def test_many_folders(root, db):
    s = Site(root, 'many-folders', db)
    a_in, a_out = s.folder('in'), s.folder('out')
    conf = s.conf('watch-quiet-ms = 100\n[watch a]\nin = %s\nout = %s\n' % (a_in, a_out))
    for k in range(80):
        put(os.path.join(a_in, 'alice', 'p%02d' % k, 'f.txt'), b'folder %d\n' % k)
    r = s.start(['--config', conf, '--foreground'], wrap=['prlimit', '--nofile=200:200', '--'])
    try:
        done = until(lambda: len([n for n in outputs(a_out) if n.endswith('/f.txt')]) == 80,
                     180, 0.5)
        gone = until(lambda: os.listdir(os.path.join(a_in, 'alice')) == [], 60, 0.5)
    finally:
        rc = r.stop()
    text = r.text()
    check(done, 'many folders: 80 dropped folders arrive with 200 descriptors (36 folders at '
          'a time)', (len(outputs(a_out)), text[-1500:]))
    check(gone, 'many folders: and leave IN', os.listdir(os.path.join(a_in, 'alice'))[:10])
    check(rc == 0 and 'as many as the descriptors allow' in text and
          'Too many open files' not in text,
          'many folders: the log says the rest waits; no descriptor runs out', text[-1500:])


# --- 12. a file OUT keeps refusing: retried less and less often -----------------------------------

def test_backoff(root, db):
    s = Site(root, 'backoff', db)
    a_in, a_out = s.folder('in'), s.folder('out')
    conf = s.conf('[watch a]\nin = %s\nout = %s\n' % (a_in, a_out))
    os.makedirs(os.path.join(a_out, 'alice'))
    put(os.path.join(a_in, 'alice', 'x.txt'), b'x\n')
    if not check(lock_dir(os.path.join(a_out, 'alice'), True), 'backoff: OUT/alice is locked'):
        return
    r = s.start(['--config', conf, '--foreground'])
    try:
        first = until(lambda: 'retry: a: alice/' in r.text(), 60)
        check(first, 'backoff: the first attempt is a retry', r.text()[-800:])
        time.sleep(36)
        n = r.text().count('retry: a: alice/')
        # every 10 s: attempts at 0, 10, 20, 30; doubling: 0, 10, 30 (then 70)
        check(n == 3, 'backoff: 3 attempts in 36 s (10 s, then 20 s), not 4', n)
    finally:
        lock_dir(os.path.join(a_out, 'alice'), False)
        rc = r.stop()
    check(rc == 0, 'backoff: SIGTERM stops it with 0')


def kill_leftovers(root):
    """Kills what still runs with root on its command line: a daemon that
    went into the background is no child of this process."""
    needle = root.encode()
    for pid in os.listdir('/proc'):
        if not pid.isdigit() or int(pid) == os.getpid():
            continue
        try:
            with open('/proc/%s/cmdline' % pid, 'rb') as f:
                if needle in f.read():
                    os.kill(int(pid), signal.SIGKILL)
                    print('# killed a leftover process %s' % pid)
        except OSError:
            pass


def main():
    root = tempfile.mkdtemp(prefix='mugaika-watchd-')
    # libclamav's and the pipeline's temporary files stay under root
    os.environ['TMPDIR'] = os.path.join(root, 'tmp')
    os.makedirs(os.environ['TMPDIR'])
    db = os.path.join(root, 'db')
    src = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', '..')
    subprocess.run(['bash', os.path.join(src, 'tests', 'av', 'make-testdb'), db], check=True,
                   stdout=subprocess.DEVNULL, timeout=300)
    try:
        for t in (test_pairs, test_usage, test_quota, test_fair, test_status, test_stuck,
                  test_owner, test_release, test_folders, test_again, test_many_folders,
                  test_backoff):
            try:
                t(root, db)
            except Exception as e:  # a crash of the test is a failure, not a skip
                check(False, '%s raised %r' % (t.__name__, e))
    finally:
        for p in STARTED:
            if p.poll() is None:
                p.kill()
                p.wait()
        kill_leftovers(root)
    if tap._count[1]:
        print('# kept %s' % root)
    else:
        shutil.rmtree(root, ignore_errors=True)
    tap.done()  # exits 1 when a check failed (or none ran)


if __name__ == '__main__':
    main()
