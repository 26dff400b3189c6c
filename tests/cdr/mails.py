# SPDX-License-Identifier: GPL-2.0-or-later
"""Reading the mail `mugaika sanitize` writes, for the tests in tests/cdr
(stdlib only).

    from mails import parse, body_text, attachments
    m = parse(p.stdout)
    body_text(m)      # the first text/plain part without a file name
    attachments(m)    # [(file name, content type, decoded bytes), ...]
    notice_line(m, 'a.svg')  # the notice's line about the attachment "a.svg"
"""
import email
import email.policy


def parse(out):
    return email.message_from_bytes(out, policy=email.policy.default)


def body_text(m):
    for part in m.walk():
        if part.get_content_type() == 'text/plain' and part.get_filename() is None:
            return part.get_content()
    return ''


def attachments(m):
    return [(p.get_filename(), p.get_content_type(), p.get_payload(decode=True))
            for p in m.walk() if p.get_filename() is not None]


def notice_line(m, name):
    """The line of the sanitisation notice (in the body text) that names
    the attachment name in quotes: '- The attachment "name" (...) was
    removed. ...' in English, '・添付ファイル「name」...' in Japanese; '' when
    there is none."""
    for line in body_text(m).splitlines():
        if line.startswith(('- ', '・')) and ('"%s"' % name in line or '「%s」' % name in line):
            return line
    return ''
