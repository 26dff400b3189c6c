# SPDX-License-Identifier: GPL-2.0-or-later
"""`mugaika watch status` on status files written here (stdlib only).

    test_wstatus_cli.py --cli MUGAIKA --put WSTATUS_PUT

WSTATUS_PUT (tests/watch/wstatus_put.c) writes a known status.json through
mg_wstatus_write, so the CLI is tested on what the library writes; a few
files are made by hand for the broken cases. TAP on standard output. Each
case has its own state directory under one temporary directory, removed
at the end when every check passed (kept, and named, otherwise).

Checks: no state directory and no status.json give 66; a status file
without a journal, or with a journal nobody locks, gives 3 and says "not
running" and "stale"; a journal this test holds with flock(LOCK_EX) gives
0 and "running (pid N)"; the journal held while status.json is missing
still gives 66; --json prints the file's members (equal to the file)
with "running" set from the lock (true and false, even when the file
said otherwise); the table rows (counts, today N/MAX, over quota), the
over-quota names, the last errors (oldest first, "(2 times)"), names
escaped (ESC as \\x1b, a bad byte as \\xfe), "updated ... (N s ago)";
a file written at exit says "stopped"; usage errors give 64 (no
sub-command, an unknown one, an unknown option, --state without a
value); --help gives 0; a corrupt status.json gives 65; and the command
creates, removes or modifies nothing in the state directory.
"""
import argparse
import fcntl
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'cdr'))
import tap  # noqa: E402
from tap import check  # noqa: E402

TIMEOUT = 60


def run(cli, *args):
    p = subprocess.run([cli, 'watch'] + list(args), stdin=subprocess.DEVNULL,
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=TIMEOUT)
    return p.returncode, p.stdout.decode('utf-8', 'replace'), p.stderr.decode('utf-8', 'replace')


def snapshot(d):
    """Names, sizes, mtimes and inodes of everything in d."""
    out = {}
    for name in sorted(os.listdir(d)):
        st = os.lstat(os.path.join(d, name))
        out[name] = (st.st_ino, st.st_size, st.st_mtime_ns, st.st_mode)
    return out


def put(a, state, now, *extra):
    p = subprocess.run([a.put, state, str(now)] + list(extra), stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, timeout=TIMEOUT)
    if p.returncode != 0:
        raise RuntimeError('wstatus_put failed: %s' % p.stderr.decode())


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--cli', required=True)
    ap.add_argument('--put', required=True)
    a = ap.parse_args()
    top = tempfile.mkdtemp(prefix='mugaika-wstatus-cli-')
    try:
        cases(a, top)
    finally:
        if tap._count[1] == 0:
            shutil.rmtree(top, ignore_errors=True)
        else:
            print('# kept %s' % top)
    tap.done()


def newstate(top, name):
    d = os.path.join(top, name)
    os.mkdir(d)
    return d


def cases(a, top):
    now = int(time.time())

    # --- no status ---------------------------------------------------------
    rc, out, err = run(a.cli, 'status', '--state', os.path.join(top, 'missing'))
    check(rc == 66, 'no state directory: 66', (rc, out, err))
    check(not os.path.exists(os.path.join(top, 'missing')), 'the state directory is not made')
    empty = newstate(top, 'empty')
    rc, out, err = run(a.cli, 'status', '--state', empty)
    check(rc == 66 and 'no status file' in err and out == '', 'no status.json: 66', (rc, out, err))
    check(os.listdir(empty) == [], 'nothing created in an empty state directory',
          os.listdir(empty))
    rc, out, err = run(a.cli, 'status', '--state=' + empty, '--json')
    check(rc == 66 and out == '', 'no status.json, --json: 66', (rc, out, err))

    # --- not running: no journal, then a journal nobody holds ------------------
    st = newstate(top, 'stale')
    put(a, st, now - 7)
    before = snapshot(st)
    rc, out, err = run(a.cli, 'status', '--state', st)
    check(rc == 3, 'status file, no journal: 3', (rc, out, err))
    check('not running' in out and 'stale' in out, 'says not running and stale', out)
    check('stopped without writing its last status' in out,
          'a file that says running, with no lock: the daemon stopped without its last write', out)
    open(os.path.join(st, 'journal'), 'w').close()
    before = snapshot(st)
    rc, out, err = run(a.cli, 'status', '--state', st)
    check(rc == 3 and 'not running' in out, 'a journal nobody locks: 3', (rc, out, err))
    rc, jout, err = run(a.cli, 'status', '--state', st, '--json')
    check(rc == 3, '--json not running: 3', (rc, err))
    try:
        j = json.loads(jout)
    except ValueError as e:
        j = {}
        check(False, '--json prints JSON', '%s: %r' % (e, jout[:500]))
    with open(os.path.join(st, 'status.json'), encoding='utf-8') as f:
        filej = json.load(f)
    check(filej.get('running') is True and j.get('running') is False,
          '--json: "running" is false from the lock though the file says true',
          (filej.get('running'), j.get('running')))
    same = dict(j)
    same['running'] = filej.get('running')
    check(same == filej, '--json: every other member as in the file')
    check(snapshot(st) == before, 'nothing in the state directory changed (not running)')

    # --- the human output -------------------------------------------------------
    lines = out.splitlines()
    ago = [l for l in lines if l.startswith('updated:')]
    secs = ago[0].rsplit('(', 1)[-1].split(' s ago)')[0] if ago else ''
    check(secs.isdigit() and 7 <= int(secs) <= 7 + TIMEOUT,
          'updated ... (N s ago), N from the file\'s time', ago)
    check('workers:      2' in lines and 'queue:        5' in lines and
          'in progress:  1' in lines, 'workers, queue, in progress', out)
    rows = {}
    for l in lines:
        f = l.split()
        if len(f) == 9 and f[0] in ('default', 'lgwan'):
            rows[(f[0], f[1])] = f[2:]
    check(rows.get(('default', 'alice')) == ['2', '0', '0', '0', '3/3', '300/1000', '2'],
          'row default/alice: 2 done, today 3/3 files, 300/1000 bytes, 2 over quota', rows)
    check(rows.get(('default', '-')) == ['0', '0', '2', '0', '0', '0', '0'],
          'row default/- (IN itself): 2 failed', rows)
    check(rows.get(('lgwan', '山田')) == ['0', '1', '0', '1', '0', '0', '0'],
          'row lgwan/山田: 1 refused, 1 retry', rows)
    check(rows.get(('default', 'ev\\x1bil')) == ['0', '1', '0', '0', '0', '0', '0'],
          'a user name with ESC is shown escaped', rows)
    check('\x1b' not in out, 'no raw escape character reaches the terminal')
    check(any('default/alice' in l and 'big1.bin' in l and '700 bytes' in l for l in lines) and
          any('big2.bin' in l for l in lines), 'over-quota files listed', out)
    err_lines = lines[lines.index('last errors (oldest first):') + 1:] \
        if 'last errors (oldest first):' in lines else []
    check(len(err_lines) == 4, 'four last errors', err_lines)
    if len(err_lines) == 4:
        check('default/-' in err_lines[0] and 'failed: pipeline failed' in err_lines[0] and
              '(2 times)' in err_lines[0], 'oldest error first, counted twice', err_lines[0])
        check('lgwan/山田' in err_lines[1] and 'refused: symlink' in err_lines[1],
              'a refusal', err_lines[1])
        check('retry: file changed' in err_lines[2], 'a retry', err_lines[2])
        check('n\\xfe.exe' in err_lines[3] and 'ev\\x1bil' in err_lines[3],
              'a name that is not UTF-8 shown with \\xfe', err_lines[3])

    # --- running: this test holds the journal's lock -------------------------------
    run_st = newstate(top, 'running')
    put(a, run_st, now)
    jfd = os.open(os.path.join(run_st, 'journal'), os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(jfd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        before = snapshot(run_st)
        rc, out, err = run(a.cli, 'status', '--state', run_st)
        check(rc == 0, 'journal locked: 0', (rc, out, err))
        check(out.startswith('mugaika-watch: running (pid '), 'says running (pid N)',
              out[:200])
        check('stale' not in out, 'not marked stale when running', out[:300])
        rc, jout, err = run(a.cli, 'status', '--state', run_st, '--json')
        check(rc == 0, '--json running: 0', (rc, err))
        try:
            j = json.loads(jout)
        except ValueError:
            j = {}
        check(j.get('running') is True and j.get('workers') == 2 and
              j.get('queue') == 5 and j.get('in_progress') == 1 and
              isinstance(j.get('users'), list) and len(j.get('errors', [])) == 4,
              '--json running: "running" true and the members', jout[:500])
        check(snapshot(run_st) == before, 'nothing in the state directory changed (running)')
        # held, but no status file yet
        os.unlink(os.path.join(run_st, 'status.json'))
        rc, out, err = run(a.cli, 'status', '--state', run_st)
        check(rc == 66 and 'running but has not written it' in err,
              'running without status.json: 66, and says it runs', (rc, err))
        # a status written at exit by a daemon, while another holds the lock:
        # the lock decides
        put(a, run_st, now, 'stopped')
        rc, jout, err = run(a.cli, 'status', '--state', run_st, '--json')
        check(rc == 0 and json.loads(jout or '{}').get('running') is True,
              'the lock decides over the file\'s "running": false', (rc, jout[:200]))
    finally:
        os.close(jfd)
    rc, out, err = run(a.cli, 'status', '--state', run_st)
    check(rc == 3 and 'pid' in out and '(pid ' in out and 'stopped)' in out,
          'lock released, file written at exit: 3, "stopped"', (rc, out[:300]))

    # --- corrupt --------------------------------------------------------------------
    bad = newstate(top, 'corrupt')
    with open(os.path.join(bad, 'status.json'), 'w') as f:
        f.write('{"version": 1, "users": [')
    rc, out, err = run(a.cli, 'status', '--state', bad)
    check(rc == 65 and out == '', 'corrupt status.json: 65', (rc, out, err))
    with open(os.path.join(bad, 'status.json'), 'w') as f:
        f.write('{"version": 99}')
    rc, out, err = run(a.cli, 'status', '--state', bad)
    check(rc == 65 and 'version' in err, 'unknown version: 65', (rc, out, err))
    # a hand-made file with only a version: shown with defaults
    with open(os.path.join(bad, 'status.json'), 'w') as f:
        f.write('{"version": 1}')
    rc, out, err = run(a.cli, 'status', '--state', bad)
    check(rc == 3 and '(no file seen yet)' in out and '(none)' in out,
          'a minimal file: shown, nothing seen, no errors', (rc, out, err))

    # --- usage ------------------------------------------------------------------------
    for args, what in ((['--bogus'], 'no sub-command, an option'),
                       ([], 'no sub-command'),
                       (['frobnicate'], 'an unknown sub-command'),
                       (['status', '--bogus'], 'an unknown option'),
                       (['status', '--state'], '--state without a value'),
                       (['status', '--state', ''], 'an empty --state')):
        rc, out, err = run(a.cli, *args)
        check(rc == 64 and 'usage' in err, 'usage: %s: 64' % what, (rc, out, err))
    rc, out, err = run(a.cli, 'status', '--help')
    check(rc == 0 and 'usage' in out, 'status --help: 0', (rc, out, err))
    p = subprocess.run([a.cli, '--help'], stdout=subprocess.PIPE, timeout=TIMEOUT)
    check(p.returncode == 0 and b'watch status' in p.stdout, 'mugaika --help names watch status')


if __name__ == '__main__':
    main()
