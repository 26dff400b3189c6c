# SPDX-License-Identifier: GPL-2.0-or-later
"""TAP output and common arguments for the tests in tests/cdr (stdlib only).

    from tap import check, done, args
    a = args()          # a.worker, a.pdf, a.cli, a.shared, a.testdata, a.build
    check(cond, 'what', 'detail when it fails')
    done()              # prints 1..N, exits 1 when any check failed

A test that needs ../shared calls need_shared(): when ../shared is
missing it fails (a test never skips silently).
"""
import argparse
import os
import sys

_count = [0, 0]  # checks, failures


def check(cond, what, detail=''):
    _count[0] += 1
    if cond:
        print('ok %d - %s' % (_count[0], what))
    else:
        _count[1] += 1
        print('not ok %d - %s%s' % (_count[0], what, (': ' + str(detail)[:2000]) if detail else ''))
    sys.stdout.flush()
    return bool(cond)


def done():
    print('1..%d' % _count[0])
    sys.exit(1 if _count[1] or _count[0] == 0 else 0)


def args():
    p = argparse.ArgumentParser()
    p.add_argument('--worker', help='mugaika-worker executable')
    p.add_argument('--pdf', help='mugaika-pdf executable')
    p.add_argument('--flatten', help='mugaika-flatten executable')
    p.add_argument('--cli', help='mugaika executable')
    p.add_argument('--shared', help='../shared (the corpus)')
    p.add_argument('--testdata', help='testdata/ of the project')
    p.add_argument('--testdb', help='a directory for the test ClamAV database')
    p.add_argument('--source', help='project source root')
    p.add_argument('--cdr-run', help='tests/cdr/cdr_run (mg_cdr_run driver)')
    return p.parse_args()


def need_shared(a):
    corpus = os.path.join(a.shared or '', 'corpus')
    if not os.path.isdir(corpus):
        check(False, 'the shared corpus is present', corpus)
        done()
    return corpus
