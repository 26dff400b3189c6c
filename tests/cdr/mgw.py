# SPDX-License-Identifier: GPL-2.0-or-later
"""Run a CDR worker directly and read its records (src/worker/mgw.h).

    from mgw import run
    r = run(worker, 'archive', path, opts={'max-members': '10'})
    r.status, r.reason, r.outputs (list of Output), r.notes, r.returncode

Used by the tests in tests/cdr; stdlib only.
"""
import json
import os
import struct
import subprocess
import tempfile


class Output:
    def __init__(self, meta):
        self.name = meta.get('name')
        self.type = meta.get('type')
        self.flags = meta.get('flags', [])
        self.data = bytearray()

    def __repr__(self):
        return 'Output(%r, %r, %d bytes, %r)' % (self.name, self.type, len(self.data), self.flags)


class Result:
    def __init__(self):
        self.status = None
        self.reason = None
        self.outputs = []
        self.notes = []
        self.returncode = None
        self.stderr = b''
        self.protocol_error = None

    def notes_of(self, kind):
        return [n['text'] for n in self.notes if n.get('kind') == kind]


def parse(raw):
    """Parse the record stream; returns a Result (status None when no 'Z')."""
    r = Result()
    cur = None
    i = 0
    while i < len(raw):
        if i + 5 > len(raw):
            r.protocol_error = 'truncated record header'
            break
        tag = raw[i:i + 1]
        (n,) = struct.unpack('>I', raw[i + 1:i + 5])
        body = raw[i + 5:i + 5 + n]
        if len(body) != n:
            r.protocol_error = 'truncated record'
            break
        i += 5 + n
        if tag == b'O':
            cur = Output(json.loads(body))
            r.outputs.append(cur)
        elif tag == b'D':
            if cur is None:
                r.protocol_error = 'data outside an output'
                break
            cur.data += body
        elif tag == b'E':
            cur = None
        elif tag == b'N':
            r.notes.append(json.loads(body))
        elif tag == b'Z':
            z = json.loads(body)
            r.status = z.get('status')
            r.reason = z.get('reason')
            if i != len(raw):
                r.protocol_error = 'records after Z'
            break
        else:
            r.protocol_error = 'unknown tag %r' % tag
            break
    return r


def run(worker, handler, path=None, data=None, opts=None, timeout=60):
    """Run WORKER HANDLER on the file PATH (or the bytes DATA)."""
    args = [worker, handler] + ['%s=%s' % kv for kv in (opts or {}).items()]
    tmp = None
    if path is None:
        tmp = tempfile.TemporaryFile()
        tmp.write(data)
        tmp.seek(0)
        stdin = tmp
    else:
        stdin = open(path, 'rb')
    try:
        p = subprocess.run(args, stdin=stdin, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           timeout=timeout)
    finally:
        stdin.close()
    r = parse(p.stdout)
    r.returncode = p.returncode
    r.stderr = p.stderr
    return r


def build_dir():
    """The build directory the tests run from (MUGAIKA_BUILD, else ../../build)."""
    return os.environ.get('MUGAIKA_BUILD') or os.path.join(
        os.path.dirname(os.path.abspath(__file__)), '..', '..', 'build')
