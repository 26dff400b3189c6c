# SPDX-License-Identifier: GPL-2.0-or-later
"""Isolation of the CDR workers, and the daemon's side of the protocol.

1. The real mugaika-worker, through its sandbox (selftest handler):
   no network, exec, fork, file writes or signals to other processes;
   a crash, a CPU spin, a sleep, an allocation storm and an output
   flood each end in the right status within bounded time, with no
   process left behind; a worker with no capability runs where a
   service manager's seccomp filter refuses capset. mugaika-flatten and
   mugaika-pdf (their own selftest handler) confine themselves alike.
   RLIMIT_FSIZE and RLIMIT_NOFILE are tried from inside each of the
   three: the file size and the number of descriptors each got are what
   its parent asked for.
2. mg_cdr_run (through tests/cdr/cdr_run) against fake workers that
   break the protocol in every way: garbage, a missing last record,
   bytes after it, oversized records, data outside an output, bad
   JSON, a last record inside an output, a non-zero exit, death by
   signal, a flood on stderr, records dribbled one byte at a time, and
   a worker that leaves a child holding the pipe.
3. The pipeline (`mugaika sanitize`) when the worker crashes or hangs:
   the message is still delivered, with a notice naming the file, and
   the original is in quarantine; when the workers cannot be found the
   command exits 78 before reading anything.
4. Licences (docs/licensing.md): qpdf (Apache-2.0) is in mugaika-pdf
   and in no other program of the build; libclamav (GPL-2.0-only) is in
   none of the workers. Read from the symbol tables as well as the
   libraries loaded, since the workers link their libraries statically.
"""
import json
import os
import re
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from mgw import run  # noqa: E402
from tap import args, check, done, need_shared  # noqa: E402

A = args()
CORPUS = need_shared(A)
TMP = tempfile.mkdtemp(prefix='mugaika-cdr-worker.')

FAKE = r'''#!/usr/bin/env python3
# A fake CDR worker: argv[1] (or $FAKE_MODE) says how it misbehaves.
import json, os, signal, struct, sys, time
mode = os.environ.get('FAKE_MODE') or sys.argv[1]
out = sys.stdout.buffer
def rec(tag, body=b''):
    out.write(tag + struct.pack('>I', len(body)) + body)
    out.flush()
def js(tag, obj):
    rec(tag, json.dumps(obj).encode())
def ok():
    js(b'Z', {'status': 'ok', 'reason': None})
data = sys.stdin.buffer.read()
if mode == 'echo':
    js(b'O', {'name': 'out.bin', 'type': None, 'flags': []}); rec(b'D', data); rec(b'E'); ok()
elif mode == 'two':
    for n in ('a.txt', 'b.txt'):
        js(b'O', {'name': n, 'type': None, 'flags': []}); rec(b'D', b'x'); rec(b'E')
    ok()
elif mode == 'garbage':
    out.write(b'hello, this is not a record stream\n' * 10)
elif mode == 'noz':
    js(b'O', {'name': 'a', 'type': None, 'flags': []}); rec(b'D', b'abc'); rec(b'E')
elif mode == 'afterz':
    ok(); out.write(b'more'); out.flush()
elif mode == 'bigrec':
    js(b'O', {'name': 'a', 'type': None, 'flags': []})
    out.write(b'D' + struct.pack('>I', 2 << 20)); out.write(b'x' * (2 << 20)); rec(b'E'); ok()
elif mode == 'dnoopen':
    rec(b'D', b'abc'); ok()
elif mode == 'badjson':
    rec(b'N', b'{"kind": "removed", "text": '); ok()
elif mode == 'zinside':
    js(b'O', {'name': 'a', 'type': None, 'flags': []}); rec(b'D', b'abc'); ok()
elif mode == 'exit3':
    js(b'O', {'name': 'a', 'type': None, 'flags': []}); rec(b'D', b'abc'); rec(b'E'); ok()
    sys.exit(3)
elif mode == 'segv':
    js(b'O', {'name': 'a', 'type': None, 'flags': []})
    os.kill(os.getpid(), signal.SIGSEGV)
elif mode == 'sleep':
    time.sleep(600)
elif mode == 'stderrflood':
    for _ in range(160):
        sys.stderr.buffer.write(b'e' * 65536)
    sys.stderr.flush()
    js(b'Z', {'status': 'fail', 'reason': 'flooded stderr'})
elif mode == 'dribble':
    buf = b''
    for n in ('a.txt', 'b.txt'):
        body = json.dumps({'name': n, 'type': None, 'flags': ['name-changed']}).encode()
        buf += b'O' + struct.pack('>I', len(body)) + body
        buf += b'D' + struct.pack('>I', 5) + b'hello' + b'E' + struct.pack('>I', 0)
    body = json.dumps({'kind': 'removed', 'text': 'something'}).encode()
    buf += b'N' + struct.pack('>I', len(body)) + body
    body = json.dumps({'status': 'ok', 'reason': None}).encode()
    buf += b'Z' + struct.pack('>I', len(body)) + body
    for i in range(len(buf)):
        out.write(buf[i:i + 1]); out.flush()
elif mode == 'orphan':
    if os.fork() == 0:
        time.sleep(600)
        os._exit(0)
    ok()
elif mode == 'encrypted':
    js(b'Z', {'status': 'encrypted', 'reason': 'password needed'})
'''


def make_fake(path):
    os.makedirs(path, exist_ok=True)
    for prog in ('mugaika-worker', 'mugaika-flatten', 'mugaika-pdf'):
        p = os.path.join(path, prog)
        with open(p, 'w') as f:
            f.write(FAKE)
        os.chmod(p, stat.S_IRWXU)


def cdr_run(program, handler, path, opts=(), limits=(), wdir=None, timeout=60):
    cmd = [A.cdr_run]
    if wdir:
        cmd += ['--dir', wdir]
    cmd += list(limits) + [program, handler, path] + list(opts)
    t0 = time.monotonic()
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=timeout)
    wall = time.monotonic() - t0
    try:
        r = json.loads(p.stdout)
    except ValueError:
        r = {'status': None, 'raw': p.stdout[-500:], 'stderr': p.stderr[-500:]}
    r['wall'] = wall
    return r


def procs_named(marker):
    """PIDs whose command line contains marker."""
    found = []
    for pid in os.listdir('/proc'):
        if not pid.isdigit():
            continue
        try:
            with open('/proc/%s/cmdline' % pid, 'rb') as f:
                if marker.encode() in f.read():
                    found.append(int(pid))
        except OSError:
            pass
    return found


def landlock_abi():
    """The kernel's Landlock ABI version, 0 without Landlock."""
    import ctypes
    libc = ctypes.CDLL(None, use_errno=True)
    libc.syscall.restype = ctypes.c_long
    v = libc.syscall(444, None, ctypes.c_size_t(0), ctypes.c_uint32(1))  # create_ruleset VERSION
    return v if v > 0 else 0


def nm_names(exe, dynamic=False):
    """The demangled names of exe's symbol table (nm -C), or of its dynamic one (nm -D -C)."""
    p = subprocess.run(['nm', '-C'] + (['-D'] if dynamic else []) + [exe],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=120)
    names = []
    for line in p.stdout.decode('utf-8', 'replace').splitlines():
        m = re.match(r'^[0-9a-fA-F]*\s+\S\s(.*)$', line)  # address (none if undefined), type
        if m:
            names.append(m.group(1))
    return names


# the code of qpdf (classes QPDF, QPDFObjectHandle, QPDFWriter...; its C API qpdf_*) and of
# libclamav (the engine and the scan calls), by demangled symbol name
QPDF_SYMBOL = re.compile(r'(?:^|\W)QPDF\w*::|^qpdf_\w+(?:@\S*)?$')
CLAMAV_SYMBOL = re.compile(r'^cl_(?:scan\w*|engine_\w+|init|load)(?:@\S*)?$')


def holds(exe, lib, symbol):
    """Evidence that exe contains the code of the library lib (e.g. 'libqpdf'): it names it
    (readelf -d NEEDED), the loader would load it (ldd), or its symbols, static or dynamic,
    match symbol. A list, empty when there is none."""
    found = []
    out = subprocess.run(['readelf', '-d', exe], stdout=subprocess.PIPE, check=True,
                         timeout=60).stdout.decode()
    found += [line.strip() for line in out.splitlines()
              if '(NEEDED)' in line and '[' + lib in line]
    out = subprocess.run(['ldd', exe], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         timeout=60).stdout.decode()
    found += ['ldd: ' + line.strip() for line in out.splitlines() if line.strip().startswith(lib)]
    for dynamic in (False, True):
        found += [('nm -D: ' if dynamic else 'nm: ') + n
                  for n in nm_names(exe, dynamic) if symbol.search(n)][:5]
    return found


def built_programs():
    """The executables of this build by name, from meson's introspection (meson-info/ at the
    root of the build tree that holds tests/cdr/cdr_run)."""
    d = os.path.dirname(os.path.abspath(A.cdr_run))
    while not os.path.isfile(os.path.join(d, 'meson-info', 'intro-targets.json')):
        if os.path.dirname(d) == d:
            return {}
        d = os.path.dirname(d)
    with open(os.path.join(d, 'meson-info', 'intro-targets.json')) as f:
        return {t['name']: t['filename'][0] for t in json.load(f) if t['type'] == 'executable'}


def main():
    item = os.path.join(TMP, 'item.txt')
    with open(item, 'wb') as f:
        f.write(b'hello\n')

    # --- 1. the real worker in its sandbox --------------------------------
    secret = os.path.join(TMP, 'secret.txt')  # readable by this user, not needed by a worker
    with open(secret, 'w') as f:
        f.write('a file of the quarantine\n')
    r = run(A.worker, 'selftest', item, opts={'do': 'probe', 'file': os.path.join(TMP, 'w'),
                                              'secret': secret})
    notes = dict(n['text'].split(': ', 1) for n in r.notes)
    if landlock_abi() > 0:
        check(notes.get('landlock') == 'applied' and
              notes.get('read-outside', '').startswith('refused'),
              'Landlock: a file the user can read but the worker does not need is refused',
              (notes.get('landlock'), notes.get('read-outside')))
    else:
        check(notes.get('landlock', '').startswith('unavailable'),
              'kernel without Landlock: the worker says so and goes on', notes.get('landlock'))
    check(notes.get('read-fonts') == 'allowed', 'the system\'s data (fonts) stays readable',
          notes.get('read-fonts'))
    for k in ('landlock', 'read-outside', 'read-fonts'):
        notes.pop(k, None)
    check(r.status == 'ok' and r.returncode == 0, 'selftest probe runs', r.stderr)
    asan = notes.get('asan') == 'yes'
    notes.pop('asan', None)
    for what in ('socket-inet', 'socket-unix', 'fork', 'exec', 'file-write', 'kill-parent',
                 'prlimit-parent', 'setpriority-parent', 'pidfd-signal-parent', 'setxattr',
                 'fcntl-setown'):
        check(notes.get(what, '').startswith('refused'), 'sandbox refuses ' + what,
              notes.get(what))
    check(not os.path.exists(os.path.join(TMP, 'w')), 'sandbox: no file was created')
    # mugaika-flatten (poppler) confines itself the same way
    r = run(A.flatten, 'selftest', item, opts={'do': 'probe', 'file': os.path.join(TMP, 'w'),
                                               'secret': secret})
    fnotes = dict(n['text'].split(': ', 1) for n in r.notes)
    check(r.status == 'ok' and all(fnotes.get(w, '').startswith('refused') for w in (
        'socket-inet', 'fork', 'exec', 'file-write', 'kill-parent') + (
            ('read-outside',) if landlock_abi() > 0 else ())),
        'mugaika-flatten: the same sandbox (socket, fork, exec, file write, kill refused)', fnotes)
    # mugaika-pdf (qpdf) too
    r = run(A.pdf, 'selftest', item, opts={'do': 'probe', 'file': os.path.join(TMP, 'w'),
                                           'secret': secret})
    pnotes = dict(n['text'].split(': ', 1) for n in r.notes)
    check(r.status == 'ok' and all(pnotes.get(w, '').startswith('refused') for w in (
        'socket-inet', 'socket-unix', 'fork', 'exec', 'file-write', 'kill-parent',
        'prlimit-parent') + (('read-outside',) if landlock_abi() > 0 else ())),
        'mugaika-pdf: the same sandbox (socket, fork, exec, file write, kill refused)', pnotes)
    check(not os.path.exists(os.path.join(TMP, 'w')), 'mugaika-pdf: no file was created')

    # RLIMIT_FSIZE and RLIMIT_NOFILE, tried from inside each program once its sandbox is up
    # (selftest probe): it grows a memfd, the one file a worker can still write, until the
    # kernel refuses, and duplicates fd 0 until EMFILE. What it got must be what it was asked:
    # a file size of 0 always (sandbox.c), nofile= as given, a number of its own for each
    # program so that neither the default nor an inherited limit can pass for it.
    for exe, nofile in ((A.worker, 37), (A.flatten, 41), (A.pdf, 43)):
        name = os.path.basename(exe)
        r = run(exe, 'selftest', item, opts={'do': 'probe', 'file': os.path.join(TMP, 'w'),
                                             'nofile': str(nofile)})
        lim = dict(n['text'].split(': ', 1) for n in r.notes)
        check(r.status == 'ok' and lim.get('fsize') == '0 bytes, then EFBIG',
              '%s: RLIMIT_FSIZE 0 in force (its first byte to a memfd fails with EFBIG)' % name,
              (r.status, lim.get('fsize'), r.stderr[-300:]))
        check(lim.get('nofile') == '%d open, then EMFILE' % nofile,
              '%s: RLIMIT_NOFILE as asked (nofile=%d: %d descriptors, then EMFILE)'
              % (name, nofile, nofile), lim.get('nofile'))
    # started the daemon's way (mg_cdr_run, src/cdr/cdr.c), which passes no nofile=: the
    # workers' default, 64 (src/worker/proto.c)
    for prog in ('mugaika-worker', 'mugaika-flatten', 'mugaika-pdf'):
        r = cdr_run(prog, 'selftest', item, ['do=probe', 'file=' + os.path.join(TMP, 'w')])
        lim = dict(n.split(': ', 2)[1:] for n in r.get('notes') or [] if n.count(': ') >= 2)
        check(r['status'] == 'ok' and lim.get('fsize') == '0 bytes, then EFBIG' and
              lim.get('nofile') == '64 open, then EMFILE',
              '%s started by mg_cdr_run: file size 0 (EFBIG), 64 descriptors (EMFILE)' % prog,
              (r['status'], lim.get('fsize'), lim.get('nofile')))
    check(not os.path.exists(os.path.join(TMP, 'w')), 'limits probes: no file was created')

    r = run(A.worker, 'pdf-flatten', item)
    check(r.returncode == 64, 'mugaika-worker has no pdf-flatten (it is mugaika-flatten)')

    r = run(A.worker, 'selftest', item, opts={'do': 'echo', 'name': 'x.txt'})
    check(r.status == 'ok' and len(r.outputs) == 1 and bytes(r.outputs[0].data) == b'hello\n'
          and r.outputs[0].name == 'x.txt', 'echo: one output, byte-exact', r.outputs)

    # The two workers that start for every item link their libraries
    # statically (src/worker/meson.build): the shared ones they name are
    # glibc's, libgcc_s, the sanitizer build's runtime and, for
    # mugaika-pdf, p11-kit (Debian has no static p11-kit).
    def needed(exe):
        out = subprocess.run(['readelf', '-d', exe], stdout=subprocess.PIPE, check=True,
                             timeout=30).stdout.decode()
        return sorted(line.split('[', 1)[1].split(']', 1)[0] for line in out.splitlines()
                      if '(NEEDED)' in line)
    base = ('libc.so', 'libm.so', 'libpthread.so', 'librt.so', 'libdl.so', 'libgcc_s.so',
            'ld-linux', 'libclang_rt', 'libasan', 'libubsan')
    for exe, extra in ((A.worker, ()), (A.pdf, ('libp11-kit.so',))):
        libs = needed(exe)
        other = [x for x in libs if not x.startswith(base + extra)]
        check(libs and not other, '%s: its parsing libraries are linked in, not loaded at start'
              % os.path.basename(exe), libs)

    # --- 4. licences: qpdf only in mugaika-pdf, libclamav in no worker ----
    progs = built_programs()
    progs.update({'mugaika': A.cli, 'mugaika-worker': A.worker, 'mugaika-flatten': A.flatten,
                  'mugaika-pdf': A.pdf})
    for name in ('mugaika', 'mugaika-milter', 'mugaika-watch', 'mugaika-worker',
                 'mugaika-flatten'):
        exe = progs.get(name)
        ok = exe is not None and os.path.isfile(exe) and 'main' in nm_names(exe)
        ev = holds(exe, 'libqpdf', QPDF_SYMBOL) if ok else None
        check(ok and ev == [], '%s: no qpdf code (Apache-2.0: only in mugaika-pdf)' % name,
              ev if ok else 'no such program with a symbol table: %s' % exe)
    # the same check finds qpdf where it is, linked statically (it is not blind)
    ev = holds(A.pdf, 'libqpdf', QPDF_SYMBOL)
    check(any(e.startswith('nm: ') for e in ev),
          'the qpdf check finds the qpdf linked statically into mugaika-pdf', ev)
    for name in ('mugaika-pdf', 'mugaika-worker', 'mugaika-flatten'):
        exe = progs[name]
        ok = 'main' in nm_names(exe)
        ev = holds(exe, 'libclamav', CLAMAV_SYMBOL) if ok else None
        check(ok and ev == [], '%s: no libclamav (GPL-2.0-only)' % name,
              ev if ok else 'no symbol table: %s' % exe)
    ev = holds(A.cli, 'libclamav', CLAMAV_SYMBOL)
    check(any(e.startswith('nm') for e in ev) and any('NEEDED' in e for e in ev),
          'the libclamav check finds libclamav in mugaika (NEEDED, cl_* symbols)', ev)

    r = run(A.worker, 'nosuchhandler', item)
    check(r.returncode == 64 and r.status is None, 'an unknown handler is a usage error')
    p = subprocess.run([A.worker, 'selftest', 'do=echo'], stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, input=b'x', timeout=30)
    check(p.returncode == 66, 'a pipe as the item is refused (a regular file is required)',
          p.returncode)

    # under systemd, SystemCallFilter=~@privileged refuses capset: a worker that holds no
    # capability must still run (it has nothing to drop)
    r = cdr_run('mugaika-worker', 'selftest', item, ['do=echo', 'name=x.txt'],
                ['--deny-capset', '1'])
    check(r['status'] == 'ok' and len(r['outputs']) == 1,
          'a worker without capabilities runs where capset is refused (systemd filter)', r)
    r = cdr_run('mugaika-worker', 'selftest', item, ['do=crash'])
    check(r['status'] == 'crash' and ('crashed (signal' in (r['reason'] or '') or
                                      (asan and 'AddressSanitizer' in (r['reason'] or ''))),
          'crash -> crash', r)
    r = cdr_run('mugaika-worker', 'selftest', item, ['do=hang'], ['--cpu', '1'])
    check(r['status'] == 'crash' and 'CPU' in (r['reason'] or '') and r['wall'] < 10,
          'CPU spin -> killed by RLIMIT_CPU', r)
    r = cdr_run('mugaika-worker', 'selftest', item, ['do=sleep'], ['--deadline-ms', '1000'])
    check(r['status'] == 'timeout' and 0.9 < r['wall'] < 10, 'sleep -> timeout at the deadline', r)
    # a run made ahead and then dropped: killed when its cancel pipe is written
    r = cdr_run('mugaika-worker', 'selftest', item, ['do=sleep'], ['--cancel-ms', '300'])
    check(r['status'] == 'error' and 'no longer wanted' in (r['reason'] or '')
          and r['wall'] < 20, 'cancelled -> the worker is killed at once', r)
    if asan:
        # AddressSanitizer reserves terabytes of shadow memory, so the worker
        # sets no RLIMIT_AS in that build (sandbox.c); the gcc build checks it
        print('# ASan build: the address-space limit is checked in the gcc build')
    else:
        r = cdr_run('mugaika-worker', 'selftest', item, ['do=alloc'], ['--as', str(256 << 20)])
        check(r['status'] == 'limit' and r['wall'] < 20, 'allocation storm -> address-space limit',
              r)
    r = cdr_run('mugaika-worker', 'selftest', item, ['do=flood'], ['--max-outputs', '5'])
    check(r['status'] == 'limit' and 'outputs' in r['reason'] and len(r['outputs']) <= 5,
          'output flood -> limit on the number of outputs', r.get('reason'))
    r = cdr_run('mugaika-worker', 'selftest', item, ['do=flood'], ['--max-output', '3000000'])
    check(r['status'] == 'limit' and 'bytes' in r['reason'],
          'output flood -> limit on output bytes', r.get('reason'))
    time.sleep(0.2)
    check(not procs_named('do=sleep') and not procs_named('do=hang')
          and not procs_named('do=flood'), 'no worker left running')

    # --- 2. fake workers against mg_cdr_run -------------------------------
    fake = os.path.join(TMP, 'fake')
    make_fake(fake)
    cases = [
        ('echo', 'ok', None),
        ('two', 'ok', None),
        ('garbage', 'crash', None),
        ('noz', 'crash', 'without a result'),
        ('afterz', 'crash', 'after its last record'),
        ('bigrec', 'crash', 'malformed'),
        ('dnoopen', 'crash', 'malformed'),
        ('badjson', 'crash', 'malformed'),
        ('zinside', 'crash', 'inside an output'),
        ('exit3', 'crash', 'status 3'),
        ('segv', 'crash', 'signal 11'),
        ('stderrflood', 'fail', 'flooded'),
        ('encrypted', 'encrypted', 'password'),
        ('dribble', 'ok', None),
    ]
    for mode, want, why in cases:
        r = cdr_run('mugaika-worker', mode, item, wdir=fake)
        good = r['status'] == want and (why is None or why in (r.get('reason') or ''))
        check(good and r['wall'] < 30, 'fake worker %s -> %s' % (mode, want), r)
        if mode == 'dribble':
            check([(o['name'], o['size'], o['flags']) for o in r['outputs']]
                  == [('a.txt', 5, 4), ('b.txt', 5, 4)] and r['notes'] == ['removed: something'],
                  'records dribbled byte by byte are read whole', r)
        if mode == 'echo':
            check(r['outputs'] and r['outputs'][0]['size'] == 6, 'echo output size', r)
    r = cdr_run('mugaika-worker', 'sleep', item, limits=['--deadline-ms', '1500'], wdir=fake)
    check(r['status'] == 'timeout' and r['wall'] < 10, 'fake sleep -> timeout', r)
    r = cdr_run('mugaika-worker', 'orphan', item, limits=['--deadline-ms', '1500'], wdir=fake)
    check(r['status'] == 'timeout' and r['wall'] < 10,
          'a child holding the pipe open cannot outlast the deadline', r)
    time.sleep(0.3)
    check(not [p for p in procs_named(fake) if p != os.getpid()],
          'the whole process group of the worker was killed', procs_named(fake))
    p = subprocess.run([A.cdr_run, '--dir', os.path.join(TMP, 'nowhere'), 'mugaika-worker',
                        'x', item], stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=30)
    check(p.returncode == 78 and b'nowhere' in p.stderr, 'missing workers are named (exit 78)',
          p.stderr)

    # --- 3. the pipeline when a worker fails -------------------------------
    png = os.path.join(CORPUS, 'corkami', 'mini', 'png.png')
    with open(png, 'rb') as f:
        png_b64 = __import__('base64').encodebytes(f.read()).decode()
    mail = os.path.join(TMP, 'mail.eml')
    with open(mail, 'w') as f:
        f.write('From: a@example.jp\nTo: b@example.lg.jp\nSubject: t\nMIME-Version: 1.0\n'
                'Message-ID: <cdr-worker-test@example.jp>\n'
                'Content-Type: multipart/mixed; boundary=b\n\n--b\n'
                'Content-Type: text/plain; charset=us-ascii\n\nbody text here\n--b\n'
                'Content-Type: image/png; name=pic.png\nContent-Transfer-Encoding: base64\n'
                'Content-Disposition: attachment; filename=pic.png\n\n' + png_b64 + '--b--\n')
    for mode, timeout in (('segv', 60), ('sleep', 2)):
        q = os.path.join(TMP, 'q-' + mode)
        conf = os.path.join(TMP, mode + '.conf')
        with open(conf, 'w') as f:
            f.write('[mugaika]\nworker-dir = %s\nworker-timeout = %d\n' % (fake, timeout))
        env = dict(os.environ, FAKE_MODE=mode)
        t0 = time.monotonic()
        p = subprocess.run([A.cli, 'sanitize', '--config', conf, '--quarantine', q,
                            '--clamav-db', db_dir(), '--lang', 'en', mail],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, timeout=120)
        wall = time.monotonic() - t0
        out = p.stdout.decode('utf-8', 'replace')
        check(p.returncode == 0, 'worker %s: the message is still delivered (exit 0)' % mode,
              p.stderr)
        check('body text here' in out and 'pic.png' in out and 'could not be rebuilt' in out,
              'worker %s: the notice names the file that was removed' % mode, out[-800:])
        check('image/png' not in out.split('\n\n', 1)[1] or 'Content-Type: image/png' not in out,
              'worker %s: the picture is not delivered' % mode)
        lst = subprocess.run([A.cli, 'quarantine', '--quarantine', q, 'list', '--json'],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60)
        check(lst.returncode == 0 and b'cdr-worker-test@example.jp' in lst.stdout,
              'worker %s: the original is in quarantine' % mode, lst.stdout + lst.stderr)
        if mode == 'sleep':
            check(wall < 30, 'a hanging worker costs only its deadline (%.1f s)' % wall)
    # the message's budget for its workers: two hanging workers of 60 s each
    # may take only 3 s in all
    mail2 = os.path.join(TMP, 'mail2.eml')
    with open(mail, 'r') as f:
        one = f.read()
    part = one[one.index('Content-Type: image/png'):one.index('--b--')]
    with open(mail2, 'w') as f:
        f.write(one.replace('--b--', '--b\n' + part.replace('pic.png', 'pic2.png') + '--b--'))
    conf = os.path.join(TMP, 'budget.conf')
    with open(conf, 'w') as f:
        f.write('[mugaika]\nworker-dir = %s\nworker-timeout = 60\nworker-budget = 3\n' % fake)
    t0 = time.monotonic()
    p = subprocess.run([A.cli, 'sanitize', '--config', conf, '--quarantine',
                        os.path.join(TMP, 'q-budget'), '--clamav-db', db_dir(), '--lang', 'en',
                        mail2], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       env=dict(os.environ, FAKE_MODE='sleep'), timeout=120)
    wall = time.monotonic() - t0
    out = p.stdout.decode('utf-8', 'replace')
    check(p.returncode == 0 and wall < 20 and 'pic.png' in out and 'pic2.png' in out
          and out.count('could not be rebuilt') == 2,
          'worker-budget: two hanging workers end within the message budget (%.1f s), both '
          'files removed with a notice' % wall, out[-600:] + p.stderr.decode()[-300:])
    conf = os.path.join(TMP, 'missing.conf')
    with open(conf, 'w') as f:
        f.write('[mugaika]\nworker-dir = %s\n' % os.path.join(TMP, 'nowhere'))
    p = subprocess.run([A.cli, 'sanitize', '--config', conf, '--quarantine',
                        os.path.join(TMP, 'q-missing'), '--clamav-db', db_dir(), mail],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60)
    check(p.returncode == 78 and p.stdout == b'' and b'nowhere' in p.stderr,
          'workers missing: exit 78, nothing written, the path named', p.stderr)


_db = []


def db_dir():
    if not _db:
        d = os.path.join(TMP, 'db')
        subprocess.run(['bash', os.path.join(A.source, 'tests', 'av', 'make-testdb'), d],
                       check=True, stdout=subprocess.DEVNULL, timeout=120)
        _db.append(d)
    return _db[0]


try:
    main()
finally:
    for pid in procs_named(TMP):
        if pid != os.getpid():
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
    shutil.rmtree(TMP, ignore_errors=True)
done()
