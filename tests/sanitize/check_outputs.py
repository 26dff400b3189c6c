#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""check_outputs.py OUTDIR DBDIR - look at sanitised mails the way a client would.

Every OUTDIR/*.eml (written by sanitize_check) is read with Python's email
package, once with the strict modern policy and once with compat32:

  * no defects, on the message or on any part ("parses cleanly");
  * every leaf is text/plain or text/csv or what a CDR handler makes (PDF,
    PNG, JPEG, GIF, WebP, OOXML); no part decodes to the EICAR string, or
    to a zip file unless it is an OOXML document (with [Content_Types].xml,
    without a VBA project) - decoded as the headers say, and also with a
    lenient base64 decoder over the raw payload of every part (junk
    characters dropped, as the most forgiving clients do);
  * then clamscan, with the test database DBDIR, over the raw outputs:
    nothing may be found.

Exit 0 when every check holds, 1 otherwise (each failure is printed).
"""
import base64
import email
import email.policy
import os
import re
import subprocess
import sys

EICAR_HEAD = b'X5O!P%@AP[4\\PZX54(P^)7CC)7}$EICAR'
ZIP = b'PK\x03\x04'
B64_JUNK = re.compile(rb'[^A-Za-z0-9+/]')


def lenient_b64(raw):
    data = B64_JUNK.sub(b'', raw)
    data = data[:len(data) - len(data) % 4]
    try:
        return base64.b64decode(data)
    except ValueError:
        return b''


CDR_TYPES = ('application/pdf', 'image/png', 'image/jpeg', 'image/gif', 'image/webp')
OOXML = 'application/vnd.openxmlformats-officedocument.'


def bad_bytes(b, ooxml=False):
    if b is None:
        return None
    if EICAR_HEAD in b:
        return 'EICAR'
    if ooxml:
        if not b.startswith(ZIP) or b'[Content_Types].xml' not in b or b'vbaProject' in b:
            return 'an Office document that is not a disarmed OOXML package'
        return None
    if b.startswith(ZIP) or (ZIP in b and b.find(ZIP) < 512):
        return 'a zip file'
    return None


def check(path, failures):
    with open(path, 'rb') as f:
        raw = f.read()
    name = os.path.basename(path)
    for pol_name, pol in (('default', email.policy.default), ('compat32', email.policy.compat32)):
        msg = email.message_from_bytes(raw, policy=pol)
        for part in msg.walk():
            if part.defects:
                failures.append('%s (%s): defects %r' % (name, pol_name, part.defects))
            if part.is_multipart():
                continue
            ctype = part.get_content_type()
            ooxml = ctype.startswith(OOXML)
            if ctype not in ('text/plain', 'text/csv') + CDR_TYPES and not ooxml:
                failures.append('%s (%s): part of type %s' % (name, pol_name, ctype))
            payload = part.get_payload(decode=True)
            why = bad_bytes(payload, ooxml)
            if why is None:
                rawp = part.get_payload(decode=False)
                if isinstance(rawp, str):
                    rawp = rawp.encode('utf-8', 'surrogateescape')
                why = bad_bytes(lenient_b64(rawp), ooxml)
            if why:
                failures.append('%s (%s): a part decodes to %s' % (name, pol_name, why))


def main():
    if len(sys.argv) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    out, db = sys.argv[1], sys.argv[2]
    files = sorted(os.path.join(out, f) for f in os.listdir(out) if f.endswith('.eml'))
    failures = []
    for p in files:
        check(p, failures)
    print('check_outputs: python email: %d outputs, %d failures' % (len(files), len(failures)))
    # clamscan over the raw outputs, with the same test database
    r = subprocess.run(['clamscan', '--no-summary', '--infected', '-d', db, '-r', out],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, check=False)
    if r.returncode == 1:
        failures.append('clamscan finds something in the outputs:\n' + r.stdout)
    elif r.returncode != 0:
        failures.append('clamscan failed (status %d):\n%s' % (r.returncode, r.stdout))
    else:
        print('check_outputs: clamscan: nothing found in %d outputs' % len(files))
    if not files:
        failures.append('no outputs to check')
    for f in failures[:40]:
        print('FAIL ' + f)
    if len(failures) > 40:
        print('... %d failures in all' % len(failures))
    return 1 if failures else 0


if __name__ == '__main__':
    sys.exit(main())
