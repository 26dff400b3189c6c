#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""demo.py - the loopback demo of deploy/quickstart: mugaika-milter inside a
real Postfix, on 127.0.0.1 only.

    demo.py --milter PATH --cli PATH --db DIR --work DIR SAMPLE.eml...

Starts, in a temporary directory (as root: Postfix's master runs as root):
  * an LGWAN-side Postfix that delivers every address of lgwan.example.jp
    into one Maildir,
  * mugaika-milter (built-in policy, the ClamAV database DIR, a quarantine
    under WORK/quarantine),
  * an internet-side ("gateway") Postfix with the milter
    (milter_default_action = tempfail), relaying to the LGWAN side.
Then sends each sample over SMTP to the gateway, one at a time, waits until
it is delivered (or refused), and shows what the LGWAN-side mailbox
received: the result header, the notice and text, the attachments.  The
delivered messages are copied to WORK/delivered/.  Everything started is
stopped at the end, also on failure or Ctrl-C.  The Postfix instances come
from tests/milter/pfharness.py, the end-to-end tests' harness.
Exit status: 0 when every sample was delivered sanitised or refused by the
policy as expected, 1 otherwise.
"""
import argparse
import email
import email.policy
import os
import shutil
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, 'tests', 'milter'))
import pfharness  # noqa: E402  pylint: disable=wrong-import-position


def step(text):
    print('\n=== demo: %s' % text, flush=True)


def show(raw):
    m = email.message_from_bytes(raw, policy=email.policy.default)
    for k in ('From', 'To', 'Subject', 'X-Mugaika-Result'):
        print('%s: %s' % (k, m[k]))
    for part in m.walk():
        if part.is_multipart():
            continue
        if part.get_filename():
            print('[attachment] %s (%s, %d bytes)' % (
                part.get_filename(), part.get_content_type(),
                len(part.get_payload(decode=True) or b'')))
            continue
        lines = part.get_content().splitlines()
        print('\n'.join('  | ' + line for line in lines[:25]))
        if len(lines) > 25:
            print('  | ... (%d more lines)' % (len(lines) - 25))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--milter', required=True)
    ap.add_argument('--cli', required=True)
    ap.add_argument('--db', required=True)
    ap.add_argument('--work', required=True)
    ap.add_argument('samples', nargs='+')
    a = ap.parse_args()
    qdir = os.path.join(a.work, 'quarantine')
    outdir = os.path.join(a.work, 'delivered')
    shutil.rmtree(outdir, ignore_errors=True)
    os.makedirs(outdir)
    failed = 0
    with pfharness.Harness() as h:
        lgwan = h.lgwan()
        milter = h.milter([os.path.abspath(a.milter)],
                          ['--quarantine', os.path.abspath(qdir),
                           '--clamav-db', os.path.abspath(a.db)])
        gateway = h.gateway(lgwan, milter=milter)
        step('LGWAN-side Postfix on 127.0.0.1:%d, delivering into %s' %
             (lgwan.port, lgwan.maildir))
        step('mugaika-milter on %s (quarantine %s)' % (milter.postfix_socket, qdir))
        milter.start()
        step('internet-side Postfix on 127.0.0.1:%d, smtpd_milters = %s' %
             (gateway.port, milter.postfix_socket))
        h.start()
        for i, path in enumerate(a.samples, 1):
            step('%s -> SMTP 127.0.0.1:%d' % (path, gateway.port))
            with open(path, 'rb') as f:
                data = f.read()
            before = lgwan.delivered_count()
            r = pfharness.send(gateway.port, 'sender@example.com',
                               ['staff@' + pfharness.DOMAIN], data)
            print('SMTP reply: %d %s' % (r.code, r.text))
            if not r.accepted:
                print('(not accepted: nothing was delivered)')
                failed += r.code < 500  # a policy refusal is a result, not a failure
                continue
            try:
                paths = lgwan.wait_for_delivery(before + 1, timeout=60)
            except pfharness.HarnessError as e:
                print('not delivered: %s' % e)
                failed += 1
                continue
            newest = max(paths, key=os.path.getmtime)
            with open(newest, 'rb') as f:
                raw = f.read()
            out = os.path.join(outdir, '%02d-%s' % (i, os.path.basename(path)))
            with open(out, 'wb') as f:
                f.write(raw)
            print('--- delivered into the LGWAN-side Maildir (copy: %s)' % out)
            show(raw)
        step('mugaika-milter log (one line per message, from the Postfix queue id)')
        for line in milter.log().splitlines():
            if ': from=<' in line:
                print(line)
        step('%s quarantine --quarantine %s list' % (a.cli, qdir))
        subprocess.run([a.cli, 'quarantine', '--quarantine', qdir, 'list'], check=False)
        step('stopping Postfix (both instances) and the milter')
    print('demo: everything stopped')
    return 1 if failed else 0


if __name__ == '__main__':
    sys.exit(main())
