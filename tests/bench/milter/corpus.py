# SPDX-License-Identifier: GPL-2.0-or-later
"""corpus - the fixed mail corpus of tests/bench/run-milter.

Standard library only.  build(seed, srcdir) returns a list of (name, bytes),
the same bytes for the same seed and sources:

* NEWS newsletters of about 33 KB (the issue's reference mail): three in
  four text+HTML (multipart/alternative: a text/plain part and the HTML),
  one in four HTML only (a single text/html part, which a sanitiser must
  convert since there is no text alternative to use); English ones are
  quoted-printable, Japanese ones (one in three) base64 UTF-8;
* ATTACH more of the same with one attachment of 8-24 KB (random bytes, so
  incompressible) in a multipart/mixed;
* every testdata/mail/*.eml of the source tree (HTML-only newsletter,
  ISO-2022-JP and Shift_JIS mail, uuencode in text, ...).

The generator reuses the word lists and MIME helpers of tests/bench/gen-corpus
(class Gen, one random.Random(seed) stream), so only example.* domains
appear.  digest() gives one SHA-256 over the corpus for the report.
"""
import hashlib
import importlib.machinery
import importlib.util
import os
import re
import textwrap

NEWS = 40
ATTACH = 8
TARGET = 33 * 1000  # bytes of one newsletter, headers included
DEFAULT_SEED = 33033


def _gen_corpus_module(srcdir):
    path = os.path.join(srcdir, 'tests', 'bench', 'gen-corpus')
    loader = importlib.machinery.SourceFileLoader('mugaika_gen_corpus', path)
    spec = importlib.util.spec_from_loader('mugaika_gen_corpus', loader)
    mod = importlib.util.module_from_spec(spec)
    loader.exec_module(mod)
    return mod


def _newsletter(gc, g, ja, target, html_only=False):
    """(title, plain text, html) whose encoded parts come to about target."""
    title = ' '.join(g.rng.choices(gc.WORDS, k=4)).title()
    arts, plain = [], [title.upper(), '']
    size = 0
    while size < target:
        if ja:
            head = g.rng.choice(gc.JA_SUBJECTS)
            para = '、'.join(g.rng.choices(gc.JA_FRAGMENTS, k=g.rng.randint(3, 8))) + '。'
        else:
            head = g.sentence()[:-1]
            para = ' '.join(g.sentence(True) for _ in range(g.rng.randint(3, 9)))
        url = 'https://click.news.example.com/ls/click?upn=%s&amp;id=%s' % (
            g.token(g.rng.randint(60, 160), gc.URLCHARS), g.token(12, '0123456789'))
        img = 'https://img.news.example.com/%s/%s.jpg' % (g.token(8), g.token(20))
        art = ('<table role="presentation" width="100%%" cellpadding="0" cellspacing="0" '
               'border="0" style="max-width:600px;background-color:#ffffff;"><tr>'
               '<td style="padding:16px 24px;font-family:Helvetica,Arial,sans-serif;'
               'font-size:16px;line-height:24px;color:#333333;">'
               '<img src="%s" width="552" height="240" alt="%s" style="display:block;'
               'border:0;width:100%%;height:auto;">'
               '<h2 style="margin:16px 0 8px;font-size:22px;color:#111111;">%s</h2>'
               '<p style="margin:0 0 12px;">%s</p>'
               '<a href="%s" style="color:#ffffff;background-color:#0b6bcb;'
               'padding:10px 18px;text-decoration:none;">Read more &rarr;</a>'
               '</td></tr></table>\n' % (img, head[:20], head, para, url))
        arts.append(art)
        ptext = [head, '', para if ja else textwrap.fill(para, 72), '',
                 'Read more: ' + url.replace('&amp;', '&'), '']
        plain += ptext
        # encoded sizes: quoted-printable grows ASCII by about 3%, UTF-8
        # Japanese by 3x; base64 by 4/3 (the Japanese pair is base64)
        n = len(art.encode('utf-8'))
        if not html_only:
            n += len('\n'.join(ptext).encode('utf-8'))
        size += n * 4 // 3 if ja else n * 103 // 100
    html = ('<!DOCTYPE html>\n<html><head>'
            '<meta http-equiv="Content-Type" content="text/html; charset=utf-8">'
            '<title>%s</title><style type="text/css">body{margin:0;padding:0;}'
            'table,td{border-collapse:collapse;}img{border:0;outline:none;}'
            '@media only screen and (max-width:600px){.col{width:100%% !important;}}'
            '</style></head>\n<body style="margin:0;padding:0;background-color:#f2f2f2;">'
            '<center><table role="presentation" width="100%%"><tr><td align="center">\n%s'
            '<p style="font-size:12px;color:#888888;">You receive this newsletter because '
            'you subscribed at news.example.com. <a href="https://news.example.com/unsub?u=%s">'
            'Unsubscribe</a> &middot; &copy; Example News</p></td></tr></table></center>'
            '</body></html>\n' % (title, ''.join(arts), g.token(40)))
    return title, '\n'.join(plain) + '\n', html


def _message(gc, g, ja, attach, html_only):
    # trace fields, DKIM-Signature, From, To, MIME structure, and the
    # article that crosses the target (measured: this gives 33 KB on average)
    header_budget = 4500
    target = TARGET - header_budget
    title, plain, html = _newsletter(gc, g, ja, target, html_only)
    if ja:
        tpart = g.text_leaf(plain, 'utf-8', 'base64')
        hpart = (['Content-Type: text/html; charset=UTF-8',
                  'Content-Transfer-Encoding: base64'], g.b64(html.encode('utf-8')))
    else:
        tpart = g.text_leaf(plain, 'utf-8', 'quoted-printable')
        hpart = (['Content-Type: text/html; charset=UTF-8',
                  'Content-Transfer-Encoding: quoted-printable'], g.qp(html.encode('utf-8')))
    ent = hpart if html_only else g.multipart('alternative', [tpart, hpart])
    if attach:
        ent = g.multipart('mixed', [ent, g.attachment(g.rng.randint(8000, 24000), ja_name=ja)])
    subject = g.ew_utf8(title + ' ニュースレター') if ja else title + ' - Weekly Newsletter'
    return g.message(subject, ent, ja=ja, sender=('Example News', 'news@news.example.com'))


def build(seed, srcdir):
    """The corpus: a list of (name, message bytes) in a fixed order."""
    gc = _gen_corpus_module(srcdir)
    g = gc.Gen(seed)
    out = []
    for i in range(NEWS + ATTACH):
        attach = i >= NEWS
        ja = i % 3 == 2
        html_only = i % 4 == 3
        name = '%02d-%s%s%s.eml' % (i, 'ja' if ja else 'en', '-html' if html_only else '',
                                    '-attach' if attach else '')
        out.append((name, _message(gc, g, ja, attach, html_only)))
    maildir = os.path.join(srcdir, 'testdata', 'mail')
    for n in sorted(os.listdir(maildir)):
        if n.endswith('.eml'):
            with open(os.path.join(maildir, n), 'rb') as f:
                out.append(('testdata-' + n, f.read()))
    return out


def digest(corpus):
    h = hashlib.sha256()
    for name, data in corpus:
        h.update(name.encode() + b'\0' + data)
    return h.hexdigest()


_MSGID = re.compile(rb'^message-id:[^\n]*\n(?:[ \t][^\n]*\n)*', re.I | re.M)


def wire(data):
    """The message as it goes after DATA: without its Message-ID field (the
    load generator puts a unique one in front), CRLF line ends, dot-stuffed,
    ending in CRLF (the final "." is sent on its own)."""
    data = data.replace(b'\r\n', b'\n')
    head, sep, body = data.partition(b'\n\n')
    head = _MSGID.sub(b'', head + b'\n')[:-1]
    data = head + sep + body
    if not data.endswith(b'\n'):
        data += b'\n'
    data = re.sub(rb'(?m)^\.', b'..', data)
    return data.replace(b'\n', b'\r\n')
