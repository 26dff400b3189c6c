#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""bench.py - mugaika-milter through a real Postfix, against Postfix alone
and against MIMEDefang (run by tests/bench/run-milter; see its header and
docs/performance.md, "The milter through Postfix").

Standard library only, as root.  Everything is private and on 127.0.0.1:
three gateway Postfix instances made with tests/milter/pfharness.py, which
all relay to one smtp-sink(1):

    A  gw-postfix     no milter
    B  gw-mugaika     smtpd_milters = mugaika-milter
    C  gw-mimedefang  smtpd_milters = mimedefang (+ its multiplexor and
                      Perl workers, filter tests/bench/milter/mimedefang-filter)

Both milters listen on unix sockets (as deployed) or, with --milter-socket
inet, on 127.0.0.1 ports.  Each round sends the same N messages (corpus.py)
through A, B and C in turn over S parallel SMTP sessions; then each
configuration gets --single messages over one session.  After each run the
gateway's queue is waited empty and what the sink received is checked
(every accepted message arrived once; B's carry X-Mugaika-Result, C's
X-Scanned-By, and neither still has a text/html part); a refused message
stops the benchmark.  Exit 0 whatever the figures; 1 when a set-up step
fails, a message is refused or lost, or a check fails; 2 on usage.
"""
import argparse
import atexit
import collections
import email
import email.policy
import json
import os
import platform
import pwd
import re
import resource
import shutil
import signal
import smtplib
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.path.abspath(os.path.join(HERE, '..', '..', '..'))
sys.path.insert(0, os.path.join(SRC, 'tests', 'milter'))
sys.path.insert(0, HERE)

import pfharness  # noqa: E402  pylint: disable=wrong-import-position
import corpus  # noqa: E402  pylint: disable=wrong-import-position

SENDER = 'news@news.example.com'
RCPT = 'staff@%s' % pfharness.DOMAIN
CONFIGS = collections.OrderedDict([
    ('A', 'Postfix alone'),
    ('B', 'Postfix + mugaika-milter'),
    ('C', 'Postfix + MIMEDefang'),
    ('F', 'Postfix + floor-milter'),
])
MD_USER = 'defang'  # made by the Debian package's postinst
LOAD_WARN = 0.5  # 1- or 5-minute load average above this at the start: noisy

_stop = []  # objects with stop(), stopped at exit in reverse order


def _stop_all():
    while _stop:
        obj = _stop.pop()
        try:
            obj.stop()
        except Exception as e:  # pylint: disable=broad-except
            print('# run-milter: stopping %r: %s' % (obj, e), file=sys.stderr)


atexit.register(_stop_all)


class BenchError(Exception):
    pass


class Abort(Exception):
    """A run did not get every message accepted."""


def log(msg):
    print('# %s' % msg, flush=True)


def stop_process(proc, timeout=10):
    """SIGTERM, a bounded wait, SIGKILL; then SIGKILL to its process group
    (every process here is started as a session leader)."""
    if proc is None:
        return
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


class Sink:
    """smtp-sink(1) on 127.0.0.1: takes every message, keeps each in a file
    of dumpdir (a tmpfs when there is one) for the checks, and counts."""

    def __init__(self, root, dumpdir):
        self.port = pfharness.free_port()
        self.dumpdir = dumpdir
        self.out = os.path.join(root, 'smtp-sink.out')
        self.proc = None

    def __repr__(self):
        return 'Sink(port %d)' % self.port

    def start(self):
        argv = ['smtp-sink', '-u', 'postfix', '-4', '-c', '-h', 'sink.test',
                '-d', os.path.join(self.dumpdir, 'm.'), '127.0.0.1:%d' % self.port, '256']
        with open(self.out, 'ab') as f:
            self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=f, stderr=f,
                                         start_new_session=True)
        _stop.append(self)

        def up():
            if self.proc.poll() is not None:
                raise BenchError('smtp-sink exited with %d: %s' % (self.proc.returncode,
                                                                   self.log()[-1000:]))
            return pfharness.port_open(self.port)
        pfharness.wait_until(up, 30, what='smtp-sink to listen')

    def log(self):
        with open(self.out, encoding='ascii', errors='replace') as f:
            return f.read()

    def count(self):
        """Messages received so far ("mesg=N" of the last counter line)."""
        m = re.findall(r'mesg=(\d+)', self.log())
        return int(m[-1]) if m else 0

    def dumps(self):
        return sorted(os.path.join(self.dumpdir, n) for n in os.listdir(self.dumpdir))

    def clear(self):
        for p in self.dumps():
            os.unlink(p)

    def stop(self):
        if self in _stop:
            _stop.remove(self)
        stop_process(self.proc)


class MIMEDefang:
    """A private MIMEDefang: mimedefang-multiplexor (Perl workers running
    mimedefang.pl with our filter) and the mimedefang milter on a unix
    socket (made 0666) or on inet:PORT@127.0.0.1, both with their own spool
    directory; nothing of the system's /var/spool/MIMEDefang or
    /etc/mail/mimedefang-filter."""

    def __init__(self, root, filter_src, workers, sessions, unix=False):
        self.dir = os.path.join(root, 'mimedefang')
        # mimedefang makes its socket as MD_USER, so in its own directory,
        # which Postfix's smtpd (user postfix) may then pass through
        self.unix = os.path.join(self.dir, 'milter.sock') if unix else None
        os.makedirs(self.dir)
        pw = pwd.getpwnam(MD_USER)
        os.chown(self.dir, pw.pw_uid, pw.pw_gid)
        os.chmod(self.dir, 0o711 if unix else 0o700)
        self.filter = os.path.join(root, 'mimedefang-filter')
        shutil.copyfile(filter_src, self.filter)
        os.chmod(self.filter, 0o644)
        self.sock = os.path.join(self.dir, 'multiplexor.sock')
        self.port = pfharness.free_port()
        self.workers = workers
        self.sessions = sessions
        self.log_path = os.path.join(root, 'mimedefang.stderr')
        self.mx = self.md = None

    def __repr__(self):
        return 'MIMEDefang(port %d)' % self.port

    @property
    def postfix_socket(self):
        if self.unix:
            return 'unix:%s' % self.unix
        return 'inet:127.0.0.1:%d' % self.port

    def _spawn(self, argv, env=None):
        with open(self.log_path, 'ab') as f:
            f.write(('# %s\n' % ' '.join(argv)).encode())
            f.flush()
            return subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=f, stderr=f,
                                    env=env, start_new_session=True)

    def log(self):
        with open(self.log_path, encoding='utf-8', errors='replace') as f:
            return f.read()

    def start(self):
        _stop.append(self)
        env = dict(os.environ, MUGAIKA_MD_SPOOL=self.dir)
        # -m 2: two workers kept warm; -x: at most this many workers (by
        # default one per SMTP session); -q queues the requests that find
        # no free worker instead of refusing them ("No free workers", a
        # 451 to the client): with fewer workers than sessions, and while
        # a worker that reached its 500 requests is being replaced, which
        # with 8 workers happens in the third round. The rest are
        # MIMEDefang's defaults (500 requests per worker, 120 s busy
        # limit, ...).
        argv = ['mimedefang-multiplexor', '-D', '-U', MD_USER, '-z', self.dir, '-s', self.sock,
                '-F', self.filter, '-m', str(min(2, self.workers)), '-x', str(self.workers),
                '-q', str(self.sessions)]
        self.mx = self._spawn(argv, env)

        def mx_up():
            if self.mx.poll() is not None:
                raise BenchError('mimedefang-multiplexor exited with %d: %s' %
                                 (self.mx.returncode, self.log()[-1000:]))
            return os.path.exists(self.sock)
        pfharness.wait_until(mx_up, 30, what='the multiplexor socket')
        conn = 'unix:%s' % self.unix if self.unix else 'inet:%d@127.0.0.1' % self.port
        self.md = self._spawn(['mimedefang', '-D', '-U', MD_USER, '-z', self.dir,
                               '-m', self.sock, '-p', conn], env)
        if self.unix:
            wait_unix_socket(self.unix, self.md, 30, self.log)
            return

        def md_up():
            if self.md.poll() is not None:
                raise BenchError('mimedefang exited with %d: %s' %
                                 (self.md.returncode, self.log()[-1000:]))
            return pfharness.port_open(self.port)
        pfharness.wait_until(md_up, 30, what='mimedefang to listen')

    def stop(self):
        if self in _stop:
            _stop.remove(self)
        stop_process(self.md)
        stop_process(self.mx)


class UnixMilter(pfharness.Milter):
    """pfharness.Milter on a unix socket (as deployed, see
    docs/configuration.md) instead of 127.0.0.1:PORT.  The socket is made
    0666, since the milter keeps running as root here and Postfix's smtpd
    connects as postfix."""

    def __init__(self, root, argv_prefix, args, name='milter'):
        super().__init__(root, argv_prefix, args, name)
        self.sock = os.path.join(root, '%s.sock' % name)
        if len(self.sock) > 100:
            raise BenchError('%s: path too long for a unix socket (set TMPDIR)' % self.sock)

    def __repr__(self):
        return 'UnixMilter(%s, %s)' % (self.name, self.sock)

    @property
    def postfix_socket(self):
        return 'unix:%s' % self.sock

    def start(self, timeout=90):
        argv = self.argv_prefix + ['--socket', 'unix:%s' % self.sock, '--foreground'] + self.args
        with open(self.log_path, 'ab') as logf:
            logf.write(('# run-milter: %s\n' % ' '.join(argv)).encode())
            logf.flush()
            self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=logf,
                                         stderr=logf, start_new_session=True)
        wait_unix_socket(self.sock, self.proc, timeout, self.log)


def wait_unix_socket(path, proc, timeout, log_fn):
    """Wait (bounded) until path accepts connections, then make it 0666."""
    def up():
        if proc.poll() is not None:
            raise BenchError('%s exited with %d at start: %s' % (proc.args[0], proc.returncode,
                                                                 log_fn()[-1000:]))
        if not os.path.exists(path):
            return False
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            try:
                s.connect(path)
            except OSError:
                return False
        return True
    pfharness.wait_until(up, timeout, what='%s to listen' % path)
    os.chmod(path, 0o666)


class RemoveDir:
    def __init__(self, path):
        self.path = path

    def __repr__(self):
        return 'RemoveDir(%s)' % self.path

    def stop(self):
        shutil.rmtree(self.path, ignore_errors=True)


# ---- the load generator ------------------------------------------------

class Run:
    """One run: n messages through one gateway over `sessions` sessions."""

    def __init__(self, label, port, payloads, sessions, max_seconds, reconnect):
        self.label = label
        self.port = port
        self.payloads = payloads  # [(message-id, header bytes, wire bytes)]
        self.sessions = sessions
        self.max_seconds = max_seconds
        self.reconnect = reconnect
        self.lock = threading.Lock()
        self.next = 0
        self.results = []  # (index, stage, code, latency or None, t_reply)
        self.errors = []
        self.t0 = None
        self.deadline = None
        self.cut = False

    def _take(self):
        with self.lock:
            if self.next >= len(self.payloads):
                return None
            if time.monotonic() > self.deadline:
                self.cut = True
                return None
            i = self.next
            self.next += 1
            return i

    def _record(self, *r):
        with self.lock:
            self.results.append(r)

    @staticmethod
    def _timed_data(smtp, head, body):
        """DATA with the time from sending the final "." to its reply."""
        smtp.putcmd('data')
        code, msg = smtp.getreply()
        if code != 354:
            return 'data-cmd', code, msg, None
        smtp.send(head)
        smtp.send(body)
        t = time.perf_counter()
        smtp.send(b'.\r\n')
        code, msg = smtp.getreply()
        return 'done', code, msg, time.perf_counter() - t

    def _one(self, sess, i):
        smtp = sess.smtp
        code, msg = smtp.mail(SENDER)
        if code != 250:
            smtp.rset()
            return 'mail', code, msg, None
        code, msg = smtp.rcpt(RCPT)
        if code not in (250, 251):
            smtp.rset()
            return 'rcpt', code, msg, None
        _mid, head, body = self.payloads[i]
        stage, code, msg, lat = self._timed_data(smtp, head, body)
        if stage != 'done':
            smtp.rset()
        return stage, code, msg, lat

    def _connect(self, k):
        try:
            sess = pfharness.Session(self.port, 'client%d.example.com' % k, timeout=120)
            # the final "." goes in a segment of its own: with Nagle's
            # algorithm it would wait for the ACK of the body's last
            # segment, which the server delays (40 ms on Linux)
            sess.smtp.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            return sess
        except (pfharness.HarnessError, smtplib.SMTPException, OSError) as e:
            with self.lock:
                self.errors.append('session %d: connect: %s' % (k, e))
            return None

    def _worker(self, k, barrier):
        sess = self._connect(k)
        try:
            barrier.wait(150)
        except threading.BrokenBarrierError:
            return
        while True:
            i = self._take()
            if i is None:
                break
            if sess is None:
                sess = self._connect(k)
                if sess is None:
                    self._record(i, 'connect', 0, None, time.monotonic())
                    break
            try:
                stage, code, msg, lat = self._one(sess, i)
                self._record(i, stage, code, lat, time.monotonic())
                if (stage != 'done' or code != 250) and len(self.errors) < 20:
                    with self.lock:
                        self.errors.append('message %d: %s %d %s' % (
                            i, stage, code, msg.decode(errors='replace')))
            except (smtplib.SMTPException, OSError) as e:
                self._record(i, 'error', 0, None, time.monotonic())
                with self.lock:
                    self.errors.append('session %d, message %d: %s' % (k, i, e))
                sess.smtp.close()
                sess = None
                continue
            if self.reconnect:
                sess.close()
                sess = None
        if sess is not None:
            sess.close()

    def go(self):
        def start():
            self.t0 = time.monotonic()
            self.deadline = self.t0 + self.max_seconds
        barrier = threading.Barrier(self.sessions + 1, action=start)
        threads = [threading.Thread(target=self._worker, args=(k, barrier), daemon=True)
                   for k in range(self.sessions)]
        for t in threads:
            t.start()
        try:
            barrier.wait(150)  # the sessions' connects time out after 120 s
        except threading.BrokenBarrierError as e:
            raise BenchError('%s: the sessions did not get connected' % self.label) from e
        for t in threads:
            # bounded: max_seconds, then at most the 120 s SMTP timeout
            t.join(self.max_seconds + 150)
            if t.is_alive():
                raise BenchError('%s: a session thread did not finish' % self.label)
        return self.summary()

    def summary(self):
        ok = [r for r in self.results if r[1] == 'done' and r[2] == 250]
        lat = sorted(r[3] for r in ok)
        wall = (max(r[4] for r in self.results) - self.t0) if self.results else 0.0
        codes = collections.Counter('%s %d' % (r[1], r[2]) for r in self.results)
        p99 = pct(lat, 99)
        # the corpus name is the Message-ID's last dotted part (payloads_for)
        named = [(self.payloads[r[0]][0].split('@')[0].rsplit('.', 1)[-1], r[3]) for r in ok]
        # which corpus messages make the tail
        tail = collections.Counter(name for name, t in named if t >= p99)
        return {
            'label': self.label,
            'sent': len(self.results),
            'accepted': len(ok),
            'accepted_ids': [self.payloads[r[0]][0] for r in ok],
            'codes': dict(codes),
            'wall': wall,
            'msgs': len(ok) / wall if wall > 0 else 0.0,
            'p50': pct(lat, 50),
            'p99': p99,
            'tail': dict(tail),
            'latencies': named,
            'mean': statistics.mean(lat) if lat else None,
            'max': lat[-1] if lat else None,
            'cut': self.cut,
            'errors': list(self.errors),
        }


def pct(sorted_values, p):
    """Nearest-rank percentile of a sorted list (None when empty)."""
    if not sorted_values:
        return None
    k = max(1, -(-len(sorted_values) * p // 100))
    return sorted_values[int(k) - 1]


def payloads_for(msgs, cfg, rnd, n):
    """n messages cycling through the corpus, each with its own Message-ID."""
    out = []
    for i in range(n):
        name, wire = msgs[i % len(msgs)]
        mid = '<bench.%s.%s.%d.%s@news.example.com>' % (cfg, rnd, i, name.split('.')[0])
        out.append((mid, ('Message-ID: %s\r\n' % mid).encode(), wire))
    return out


# ---- checks on what arrived -------------------------------------------------

def leaves(msg):
    if msg.is_multipart():
        for p in msg.get_payload():
            yield from leaves(p)
    else:
        yield msg


def check_delivered(cfg, sink, accepted_ids):
    """Every accepted message arrived once, and was treated by the
    configuration's milter.  Returns a list of problems (empty: fine)."""
    problems = []
    want = collections.Counter(accepted_ids)
    got = collections.Counter()
    html_left = untreated = 0
    for path in sink.dumps():
        with open(path, 'rb') as f:
            m = email.message_from_bytes(f.read(), policy=email.policy.compat32)
        mid = (m.get('Message-ID') or '').strip()
        got[mid] += 1
        types = [p.get_content_type() for p in leaves(m)]
        if cfg in ('B', 'C') and 'text/html' in types:
            html_left += 1
        if cfg == 'B' and 'sanitized' not in (m.get('X-Mugaika-Result') or ''):
            untreated += 1
        if cfg == 'C' and 'MIMEDefang' not in (m.get('X-Scanned-By') or ''):
            untreated += 1
        if cfg == 'C' and any(t != 'text/plain' for t in types):
            untreated += 1
        if cfg == 'F' and (m.get('X-Mugaika-Result') or '').strip() != 'floor':
            untreated += 1
    missing = want - got
    extra = got - want
    if missing:
        problems.append('%d accepted message(s) did not reach the sink (e.g. %s)' %
                        (sum(missing.values()), next(iter(missing))))
    if extra:
        problems.append('%d message(s) at the sink were not accepted in this run, or twice '
                        '(e.g. %s)' % (sum(extra.values()), next(iter(extra))))
    if html_left:
        problems.append('%d message(s) still have a text/html part' % html_left)
    if untreated:
        problems.append('%d message(s) do not look treated by the milter' % untreated)
    return problems


def audit_timings(path):
    """p50/p99 of mugaika's own timings_ms (parse_scan, total) over the
    timed rounds' messages, from its audit lines."""
    t = collections.defaultdict(list)
    with open(path, encoding='utf-8', errors='replace') as f:
        for line in f:
            try:
                a = json.loads(line)
            except ValueError:
                continue
            if not re.match(r'<?bench\.B\.\d+\.', a.get('message_id') or ''):
                continue
            for k, v in (a.get('timings_ms') or {}).items():
                t[k].append(v)
    return {k: {'n': len(v), 'p50': pct(sorted(v), 50), 'p99': pct(sorted(v), 99)}
            for k, v in t.items()}


def save_samples(sink, outdir, count):
    """Copy what the sink got for the first pass over the corpus (message
    indexes below count) to outdir/NAME.eml, NAME being the corpus name."""
    os.makedirs(outdir, exist_ok=True)
    for path in sink.dumps():
        with open(path, 'rb') as f:
            data = f.read()
        m = re.search(rb'(?im)^message-id:\s*<bench\.[A-CF]\.[^.]+\.(\d+)\.([^@>]+)@', data)
        if m and int(m.group(1)) < count:
            with open(os.path.join(outdir, m.group(2).decode() + '.eml'), 'wb') as f:
                f.write(data)


# ---- the whole benchmark ----------------------------------------------------

def machine_info():
    info = {
        'nproc': os.cpu_count(),
        'loadavg_start': os.getloadavg(),
        'kernel': platform.release(),
        'python': platform.python_version(),
    }
    try:
        with open('/proc/cpuinfo', encoding='ascii', errors='replace') as f:
            m = re.search(r'^model name\s*:\s*(.*)$', f.read(), re.M)
            info['cpu'] = m.group(1) if m else '?'
    except OSError:
        info['cpu'] = '?'

    def out(cmd):
        try:
            r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               timeout=30, check=False)
            return r.stdout.decode(errors='replace').strip()
        except (OSError, subprocess.TimeoutExpired):
            return '?'
    info['postfix'] = out(['postconf', '-d', '-h', 'mail_version'])
    info['mimedefang'] = out(['dpkg-query', '-W', '-f', '${Version}', 'mimedefang'])
    return info


def drain(gw, sink, expect_total, timeout):
    """Wait (bounded) until the gateway's queue is empty and the sink has
    counted expect_total messages in all."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        # postqueue only once the sink has them all (it costs Postfix CPU)
        if sink.count() >= expect_total and gw.queued_count() == 0:
            return True
        time.sleep(0.1)
    return False


CLK_TCK = os.sysconf('SC_CLK_TCK')


def group_cpu(pgids):
    """CPU seconds (user + system, own and reaped children) of every
    process whose process group is in pgids."""
    ticks = 0
    for d in os.listdir('/proc'):
        if not d.isdigit():
            continue
        try:
            with open('/proc/%s/stat' % d, encoding='ascii', errors='replace') as f:
                rest = f.read().rsplit(')', 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(rest[2]) in pgids:
            ticks += sum(int(x) for x in rest[11:15])
    return ticks / CLK_TCK


def self_cpu():
    """CPU seconds of this process (every thread: the load generator)."""
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def machine_cpu():
    """(busy, total) CPU seconds of the whole machine since boot."""
    with open('/proc/stat', encoding='ascii') as f:
        v = [int(x) for x in f.readline().split()[1:]]
    idle = v[3] + (v[4] if len(v) > 4 else 0)
    return (sum(v) - idle) / CLK_TCK, sum(v) / CLK_TCK


def fmt_ms(v):
    return '-' if v is None else '%.1f' % (v * 1000)


def med(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def fmt(v, spec='%.1f'):
    return '-' if v is None else spec % v


def ratio(x, y):
    return x / y if x is not None and y else None


def minus(x, y):
    return x - y if x is not None and y is not None else None


def aggregate(rs):
    """Medians over the rounds of one configuration (None: no round)."""
    keys = ('msgs', 'p50', 'p99', 'cpu_ms_postfix', 'cpu_ms_milter', 'cpu_ms_client',
            'cpu_ms_sink', 'cpu_ms_other', 'cpu_ms_machine', 'cpu_busy')
    a = {k: med([r[k] for r in rs]) for k in keys}
    a['max'] = max((r['max'] for r in rs if r['max'] is not None), default=None)
    a['accepted'] = sum(r['accepted'] for r in rs)
    a['sent'] = sum(r['sent'] for r in rs)
    return a


def report(args, info, msgs_info, results, single, problems, notes, mugaika_version):
    """The report as text, and the aggregates."""
    lines = []
    w = lines.append
    w('mugaika-milter through Postfix: %d message(s) x %d round(s), %d SMTP session(s)%s, '
      'loopback; milters on %s sockets' % (
          args.n, args.rounds, args.sessions,
          ' (a connection per message)' if args.reconnect else '', args.milter_socket))
    w('corpus: %s' % msgs_info)
    w('machine: %s, nproc %s, Linux %s; load average at start %.2f %.2f %.2f, at end '
      '%.2f %.2f %.2f' % ((info['cpu'], info['nproc'], info['kernel']) +
                          tuple(info['loadavg_start']) + tuple(info['loadavg_end'])))
    w('versions: Postfix %s, MIMEDefang %s (%d Perl workers at most), %s, Python %s' % (
        info['postfix'], info['mimedefang'], args.md_workers or args.sessions, mugaika_version,
        info['python']))
    if max(info['loadavg_start'][:2]) > LOAD_WARN:
        w('WARNING: the machine was not quiet at the start (load average %.2f %.2f %.2f): '
          'the figures are noisy' % tuple(info['loadavg_start']))
    agg = {cfg: aggregate(results[cfg]) for cfg in args.configs}
    base = agg.get('A', aggregate([]))

    w('')
    w('| configuration | msg/s | p50 ms | p99 ms | max ms | added p50 ms | added p99 ms '
      '| accepted |')
    w('| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |')
    for cfg in args.configs:
        a = agg[cfg]
        w('| %s. %s | %s | %s | %s | %s | %s | %s | %d/%d |' % (
            cfg, CONFIGS[cfg], fmt(a['msgs']), fmt_ms(a['p50']), fmt_ms(a['p99']),
            fmt_ms(a['max']), fmt_ms(minus(a['p50'], base['p50']) if cfg != 'A' else None),
            fmt_ms(minus(a['p99'], base['p99']) if cfg != 'A' else None),
            a['accepted'], a['sent']))
    w('')
    w('| configuration | CPU ms/msg: Postfix | milter | client | sink | other | whole machine '
      '| machine busy |')
    w('| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |')
    for cfg in args.configs:
        a = agg[cfg]
        w('| %s. %s | %s | %s | %s | %s | %s | %s | %s |' % (
            cfg, CONFIGS[cfg], fmt(a['cpu_ms_postfix']), fmt(a['cpu_ms_milter']),
            fmt(a['cpu_ms_client']), fmt(a['cpu_ms_sink']), fmt(a['cpu_ms_other']),
            fmt(a['cpu_ms_machine']),
            fmt(None if a['cpu_busy'] is None else 100 * a['cpu_busy'], '%.0f%%')))
    w('')
    w('msg/s, p50 and p99 are medians over the rounds (p50/p99 of each round: nearest '
      'rank); max is over all rounds; added = minus A. CPU: user+system seconds from the '
      'first message until the queue was empty, per accepted message (medians over the '
      'rounds): Postfix = the gateway master\'s process group, milter = mugaika-milter, '
      'or MIMEDefang\'s multiplexor, Perl workers and milter; client = this load generator; '
      'sink = smtp-sink; whole machine = /proc/stat; other = the rest of the machine (other '
      'users, the kernel\'s own threads): near 0 on a quiet machine.')
    if single:
        w('')
        w('One session, one message at a time (%d messages, after the rounds): the latency '
          'without queueing behind other sessions.' % args.single)
        w('')
        w('| configuration | p50 ms | p99 ms | added p50 ms | added p99 ms | msg/s |')
        w('| --- | ---: | ---: | ---: | ---: | ---: |')
        sa = single.get('A', {'p50': None, 'p99': None})
        for cfg in args.configs:
            r = single.get(cfg)
            if r is None:
                continue
            w('| %s. %s | %s | %s | %s | %s | %s |' % (
                cfg, CONFIGS[cfg], fmt_ms(r['p50']), fmt_ms(r['p99']),
                fmt_ms(minus(r['p50'], sa['p50']) if cfg != 'A' else None),
                fmt_ms(minus(r['p99'], sa['p99']) if cfg != 'A' else None), fmt(r['msgs'])))
    w('')
    w('Every round (msg/s, p50 ms, p99 ms):')
    for cfg in args.configs:
        w('  %s: %s' % (cfg, '; '.join('%.1f, %s, %s' % (r['msgs'], fmt_ms(r['p50']),
                                                          fmt_ms(r['p99']))
                                        for r in results[cfg])))
    for cfg in args.configs:
        tail = collections.Counter()
        for r in results[cfg]:
            tail.update(r.get('tail', {}))
        if tail:
            w('  %s at or above its round\'s p99: %s' % (cfg, ', '.join(
                '%s %d' % (name, k) for name, k in tail.most_common(8))))
    for x, y in (('B', 'C'), ('B', 'A'), ('C', 'A')):
        if x in results and y in results and results[x] and results[y]:
            w('paired %s/%s msg/s per round: %s' % (x, y, ', '.join(
                fmt(ratio(rx['msgs'], ry['msgs']), '%.2f')
                for rx, ry in zip(results[x], results[y]))))
    if info.get('mugaika_timings'):
        w('')
        w('mugaika audit timings_ms (B, timed rounds): %s' % '; '.join(
            '%s p50 %.1f p99 %.1f (n=%d)' % (k, v['p50'], v['p99'], v['n'])
            for k, v in sorted(info['mugaika_timings'].items())))
    w('')
    targets = []  # (name, value, shown as, target, met)

    def target(name, v, scale, spec, text, test):
        targets.append((name, fmt(None if v is None else v * scale, spec), text,
                        '-' if v is None else 'met' if test(v) else 'NOT met'))
    if 'B' in agg and 'C' in agg:
        target('mugaika / MIMEDefang throughput', ratio(agg['B']['msgs'], agg['C']['msgs']),
               1, '%.2fx', '>= 3x', lambda v: v >= 3)
    if 'B' in agg and 'A' in agg:
        target('mugaika / Postfix alone throughput', ratio(agg['B']['msgs'], agg['A']['msgs']),
               1, '%.2fx', '>= 0.8x', lambda v: v >= 0.8)
        target('p99 added latency, under load', minus(agg['B']['p99'], agg['A']['p99']),
               1000, '%.1f ms', '< 50 ms', lambda v: v < 0.050)
    if 'B' in single and 'A' in single:
        target('p99 added latency, one session', minus(single['B']['p99'], single['A']['p99']),
               1000, '%.1f ms', '< 50 ms', lambda v: v < 0.050)
    for name, shown, text, met in targets:
        w('%-36s %9s  (target %s): %s' % (name, shown, text, met))
    if 'F' in agg:
        # the ceiling, in this run, of a milter built on libmilter that takes
        # the whole message and gives a body back
        for name, v in (('floor-milter / Postfix alone', ratio(agg['F']['msgs'],
                                                                agg.get('A', {}).get('msgs'))),
                        ('floor-milter / MIMEDefang', ratio(agg['F']['msgs'],
                                                             agg.get('C', {}).get('msgs'))),
                        ('mugaika / floor-milter', ratio(agg.get('B', {}).get('msgs'),
                                                          agg['F']['msgs']))):
            if v is not None:
                w('%-36s %8.2fx  (no target: the ceiling of a libmilter milter that '
                  'rewrites the message)' % (name, v))
    w('')
    if notes:
        w('NOTES:')
        for p in notes:
            w('  ' + p)
    if problems:
        w('PROBLEMS:')
        for p in problems:
            w('  ' + p)
    else:
        w('checks: every message accepted (250 at the end of DATA), every accepted message '
          'reached the sink once, B and C left no text/html part, every message of B, C '
          'and F carries its milter\'s mark')
    return '\n'.join(lines) + '\n', agg


class Bench:
    """The set-up of one benchmark and its runs; results in self.results
    (configuration -> list of run summaries), self.single and
    self.problems."""

    def __init__(self, args, h, wire, dumpdir):
        self.args = args
        self.h = h
        self.wire = wire
        self.gws = {}
        self.groups = {c: set() for c in CONFIGS}  # milter process groups
        self.problems = []
        self.notes = []
        self.results = {c: [] for c in args.configs}
        self.single = {}
        self.total = 0  # messages the sink should have counted so far
        self.sink = Sink(h.root, dumpdir)

    def setup(self):
        args, h = self.args, self.h
        self.sink.start()
        if 'A' in args.configs:
            self.gws['A'] = h.gateway(self.sink, name='gw-postfix')
        if 'B' in args.configs:
            mug = self.mugaika()
            self.groups['B'] = {mug.proc.pid}
            self.gws['B'] = h.gateway(self.sink, milter=mug, name='gw-mugaika')
        if 'C' in args.configs:
            md = MIMEDefang(h.root, os.path.join(HERE, 'mimedefang-filter'),
                            args.md_workers or args.sessions, args.sessions,
                            unix=args.milter_socket == 'unix')
            md.start()
            self.groups['C'] = {md.mx.pid, md.md.pid}
            self.gws['C'] = h.gateway(self.sink, milter=md.postfix_socket, name='gw-mimedefang')
        if 'F' in args.configs:
            fl = self.start_milter(args.floor, [], 'floor')
            self.groups['F'] = {fl.proc.pid}
            self.gws['F'] = h.gateway(self.sink, milter=fl, name='gw-floor')
        h.start()
        log('gateways: %s; sink port %d' % (
            ', '.join('%s=%d' % (c, g.port) for c, g in self.gws.items()), self.sink.port))

    def mugaika(self):
        """mugaika-milter as deployed but for the paths: built-in policy,
        the test signatures, its own quarantine and spool."""
        args, h = self.args, self.h
        db = h.path('db')
        r = subprocess.run(['bash', os.path.join(SRC, 'tests', 'av', 'make-testdb'), db],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=60,
                           check=False)
        if r.returncode != 0:
            raise BenchError('make-testdb: %s' % r.stdout.decode(errors='replace'))
        conf = h.path('mugaika.conf')
        with open(conf, 'w', encoding='utf-8') as f:
            f.write('[mugaika]\nlang = ja\nspool = %s\n' % h.path('spool'))
            if args.audit:
                f.write('audit = %s\n' % h.path('audit.jsonl'))
        os.makedirs(h.path('spool'))
        margs = ['--config', conf, '--quarantine', h.path('quarantine'), '--clamav-db', db]
        return self.start_milter(args.milter, margs, 'mugaika')

    def start_milter(self, exe, margs, name):
        """A libmilter program on the configured kind of socket."""
        if self.args.milter_socket == 'unix':
            m = UnixMilter(self.h.root, [exe], margs, name=name)
            self.h.milters.append(m)
        else:
            m = self.h.milter([exe], margs, name=name)
        m.start()
        return m

    def stop(self):
        # Postfix first: a milter waits for its open connections on SIGTERM
        for gw in self.gws.values():
            gw.stop()

    def cpu(self, cfg):
        return (group_cpu({self.gws[cfg].master_pid()}), group_cpu(self.groups[cfg]),
                machine_cpu(), self_cpu(), group_cpu({self.sink.proc.pid}))

    def one(self, cfg, rnd, n, sessions=None, max_seconds=None):
        """n messages through configuration cfg, then the queue drained and
        what the sink got checked; returns the run's summary."""
        args, gw, sink = self.args, self.gws[cfg], self.sink
        sink.clear()
        payloads = payloads_for(self.wire, cfg, rnd, n)
        cpu0 = self.cpu(cfg)
        res = Run('%s/%s' % (cfg, rnd), gw.port, payloads, sessions or args.sessions,
                  max_seconds or args.max_seconds, args.reconnect).go()
        self.total += res['accepted']
        where = '%s round %s' % (cfg, rnd)
        if not drain(gw, sink, self.total, args.drain_seconds):
            self.problems.append('%s: queue not empty or sink short after %d s (sink %d of %d)'
                                 % (where, args.drain_seconds, sink.count(), self.total))
            self.total = sink.count()
        cpu1 = self.cpu(cfg)
        # CPU from the first message until the queue was empty: the whole cost
        k = max(res['accepted'], 1)
        ms = [(b - a) * 1000 / k for a, b in ((cpu0[0], cpu1[0]), (cpu0[1], cpu1[1]),
                                              (cpu0[2][0], cpu1[2][0]), (cpu0[3], cpu1[3]),
                                              (cpu0[4], cpu1[4]))]
        res.update(cpu_ms_postfix=ms[0], cpu_ms_milter=ms[1] if self.groups[cfg] else None,
                   cpu_ms_machine=ms[2], cpu_ms_client=ms[3], cpu_ms_sink=ms[4],
                   cpu_ms_other=ms[2] - ms[0] - ms[1] - ms[3] - ms[4],
                   cpu_busy=(cpu1[2][0] - cpu0[2][0]) / max(cpu1[2][1] - cpu0[2][1], 1e-9))
        for p in check_delivered(cfg, sink, res['accepted_ids']):
            self.problems.append('%s: %s' % (where, p))
        failed = res['accepted'] != res['sent']
        if failed:
            self.problems.append('%s: %d of %d message(s) accepted: %s' % (
                where, res['accepted'], res['sent'],
                ', '.join('%s x%d' % kv for kv in sorted(res['codes'].items()))))
        self.problems.extend('%s: %s' % (where, e) for e in res['errors'][:5])
        if res['sent'] < n and not failed:
            # slow, not wrong: the figures of the messages sent still hold
            self.notes.append('%s: cut at --max-seconds after %d of %d message(s)' % (
                where, res['sent'], n))
        if args.samples and rnd == 1:
            save_samples(sink, os.path.join(args.samples, cfg), len(self.wire))
        sink.clear()
        log('%s: %d/%d accepted in %.2f s: %.1f msg/s, p50 %s ms, p99 %s ms; CPU ms/msg: '
            'Postfix %.1f, milter %s, client %.1f, other %.1f (machine busy %.0f%%)' % (
                where, res['accepted'], n, res['wall'], res['msgs'], fmt_ms(res['p50']),
                fmt_ms(res['p99']), res['cpu_ms_postfix'],
                '-' if res['cpu_ms_milter'] is None else '%.1f' % res['cpu_ms_milter'],
                res['cpu_ms_client'], res['cpu_ms_other'], res['cpu_busy'] * 100))
        if failed:
            raise Abort(where)
        return res

    def run(self, info):
        args = self.args
        try:
            for cfg in args.configs:
                self.one(cfg, 'warmup', args.warmup)
            for rnd in range(1, args.rounds + 1):
                for cfg in args.configs:
                    self.results[cfg].append(self.one(cfg, rnd, args.n))
            if args.single:
                for cfg in args.configs:
                    self.single[cfg] = self.one(cfg, 'single', args.single, sessions=1,
                                            max_seconds=min(args.max_seconds, 10))
        except Abort as e:
            # a refused message is not a figure: stop here (a milter that is
            # down costs Postfix's error sleeps for every further message)
            self.problems.append('stopped after %s: not every message was accepted' % e)
            log(self.problems[-1])
        info['loadavg_end'] = os.getloadavg()
        if args.audit and 'B' in args.configs:
            info['mugaika_timings'] = audit_timings(self.h.path('audit.jsonl'))
        if self.problems:
            for name, gw in self.gws.items():
                log('%s maillog tail:\n#   %s' % (name, gw.log()[-1500:].replace('\n', '\n#   ')))


def run_bench(args):
    info = machine_info()
    if max(info['loadavg_start'][:2]) > LOAD_WARN:
        log('WARNING: load average %.2f %.2f %.2f before the start: the machine is busy, '
            'the figures will be noisy' % info['loadavg_start'])
    msgs = corpus.build(args.seed, SRC)
    digest = corpus.digest(msgs)
    sizes = [len(d) for _n, d in msgs]
    msgs_info = ('%d distinct messages (seed %d, sha256 %s...), %d-%d bytes, mean %d; '
                 'sent in this order, cycling, each with its own Message-ID' % (
                     len(msgs), args.seed, digest[:16], min(sizes), max(sizes),
                     statistics.mean(sizes)))
    wire = [(n, corpus.wire(d)) for n, d in msgs]
    log('corpus: %s' % msgs_info)
    r = subprocess.run([args.milter, '--version'], stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, timeout=30, check=False)
    mugaika_version = (r.stdout.decode(errors='replace').strip().splitlines() or ['?'])[0]

    shm = '/dev/shm' if os.path.isdir('/dev/shm') else None
    dumpdir = tempfile.mkdtemp(prefix='mugaika-sink.', dir=shm)
    _stop.append(RemoveDir(dumpdir))
    os.chown(dumpdir, pwd.getpwnam('postfix').pw_uid, -1)
    with pfharness.Harness(keep=args.keep) as h:
        log('working directory %s, sink dumps in %s' % (h.root, dumpdir))
        bench = Bench(args, h, wire, dumpdir)
        try:
            bench.setup()
            bench.run(info)
        finally:
            bench.stop()
            _stop_all()
    text, agg = report(args, info, msgs_info, bench.results, bench.single, bench.problems,
                       bench.notes, mugaika_version)
    print(text, end='')
    if args.results:
        os.makedirs(args.results, exist_ok=True)
        with open(os.path.join(args.results, 'report.txt'), 'w', encoding='utf-8') as f:
            f.write(text)

        def strip(r):
            return {k: v for k, v in r.items() if k != 'accepted_ids'}
        raw = {'args': vars(args), 'machine': info, 'corpus': msgs_info, 'aggregate': agg,
               'problems': bench.problems, 'notes': bench.notes,
               'single': {c: strip(r) for c, r in bench.single.items()},
               'rounds': {c: [strip(r) for r in rs] for c, rs in bench.results.items()}}
        with open(os.path.join(args.results, 'results.json'), 'w', encoding='utf-8') as f:
            json.dump(raw, f, indent=1, default=str)
        log('report and raw results in %s' % args.results)
    return 1 if bench.problems else 0


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--milter', required=True, help='the mugaika-milter executable')
    ap.add_argument('-n', type=int, default=1000, help='messages per configuration and round')
    ap.add_argument('--rounds', type=int, default=3)
    ap.add_argument('--sessions', type=int, default=8)
    ap.add_argument('--warmup', type=int, default=32, help='untimed messages per configuration')
    ap.add_argument('--single', type=int, default=100,
                    help='then this many messages per configuration over one session '
                         '(latency without load; 0: none)')
    ap.add_argument('--seed', type=int, default=corpus.DEFAULT_SEED)
    ap.add_argument('--configs', default='ABCF', help='which of A, B, C, F (default ABCF)')
    ap.add_argument('--floor', help='the floor-milter executable (configuration F)')
    ap.add_argument('--max-seconds', type=float, default=25,
                    help='a run stops taking new messages after this long')
    ap.add_argument('--drain-seconds', type=float, default=60)
    ap.add_argument('--time-limit', type=float, default=420,
                    help='the whole benchmark is stopped after this long')
    ap.add_argument('--milter-socket', choices=('unix', 'inet'), default='unix',
                    help='how Postfix reaches both milters (default unix, as deployed)')
    ap.add_argument('--md-workers', type=int, default=0,
                    help='MIMEDefang\'s Perl workers at most (default: --sessions)')
    ap.add_argument('--reconnect', action='store_true',
                    help='one SMTP connection per message (default: each session '
                         'sends its messages over one connection)')
    ap.add_argument('--results', help='directory for report.txt and results.json')
    ap.add_argument('--keep', action='store_true', help='keep the working directory')
    ap.add_argument('--audit', action='store_true',
                    help="mugaika-milter writes its audit line (one more write per message); "
                    "the report gives the p50/p99 of its timings_ms")
    ap.add_argument('--samples', help='save what the sink got for the first pass over the '
                    'corpus in round 1 here, one directory per configuration')
    args = ap.parse_args()
    args.configs = [c for c in CONFIGS if c in args.configs.upper()]
    if 'F' in args.configs and not args.floor:
        ap.error('configuration F needs --floor')
    if (not args.configs or args.n < 1 or args.rounds < 1 or args.sessions < 1 or
            args.warmup < 0 or args.single < 0 or args.md_workers < 0):
        ap.error('bad --configs, -n, --rounds, --sessions, --warmup or --single')
    if os.geteuid() != 0:
        print('run-milter: must run as root (Postfix, MIMEDefang -U)', file=sys.stderr)
        return 1

    def on_signal(signum, _frame):
        raise BenchError('stopped by signal %d' % signum)

    def on_alarm(_signum, _frame):
        raise BenchError('time limit of %g s reached' % args.time_limit)
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGALRM, on_alarm)
    signal.alarm(int(args.time_limit))
    try:
        return run_bench(args)
    except (BenchError, pfharness.HarnessError, OSError, subprocess.SubprocessError,
            KeyError) as e:
        print('run-milter: %s' % e, file=sys.stderr)
        return 1
    finally:
        signal.alarm(0)
        _stop_all()


if __name__ == '__main__':
    sys.exit(main())
