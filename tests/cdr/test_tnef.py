# SPDX-License-Identifier: GPL-2.0-or-later
"""cdr-tnef: the "tnef" handler of mugaika-worker (src/worker/tnef.c).

Drives the worker directly (mgw.run) and checks what comes out:
  - every mimekit/tnef/*.tnef gives "ok" within 10 s; every name of its
    .list comes out ("body.*" lines: a body output), and every output
    whose file is in the directory of extracted files has its bytes
    (text files compared with CRLF as LF, as MimeKit's test does; OLE
    objects without the 16-byte interface id the handler removes); the
    MAPI 1.0 placeholder of an embedded message is not emitted, the
    embedded message is, and it unpacks again;
  - every TNEF file of poi-testdata (found by its signature) exits 0
    with a Z record within 10 s;
  - hand-built streams (a small builder below): CP932, CP1252 and UTF-8
    8-bit names; the long-filename property (Unicode and 8-bit) before
    attAttachTitle before PR_ATTACH_FILENAME; "../", drive letters,
    control and bidi characters come out safe and flagged name-changed,
    empty names as "attachment-N"; PR_BODY (Unicode and 8-bit) and
    attBody as UTF-8 body.txt, PR_HTML as body.html, compressed RTF
    (MS-OXRTFCP) decompressed to body.rtf (stored "MELA" too, a CRC
    mismatch a defect, a decompression bomb stopped by max-total);
    embedded messages emitted as TNEF, OLE objects only when
    recognisable, by-reference and OLE-linked attachments removed with
    a note; attachments over max-total and more than max-members give
    "limit"; truncated streams and bad signatures give "fail"; a
    checksum mismatch gives "ok" with a defect note; broken property
    streams and trailing garbage are defects, not failures;
  - 200 randomly mutated corpus files (fixed seed): exit 0, a Z record,
    a clean record stream, within 10 s each;
  - no sanitizer report from any run (ASan/UBSan builds);
  - `mugaika sanitize` on a mail carrying a corpus winmail.dat: its
    attachments arrive as separate attachments under their own names,
    byte for byte, and no TNEF crosses.
"""
import email
import email.policy
import os
import random
import shutil
import struct
import subprocess
import sys
import tempfile
import time
import zlib
from email.message import EmailMessage

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import mgw  # noqa: E402
from tap import args, check, done, need_shared  # noqa: E402

A = args()
CORPUS = need_shared(A)
WORKER = A.worker
TNEF_DIR = os.path.join(CORPUS, 'mimekit', 'tnef')
POI = os.path.join(CORPUS, 'poi-testdata')
SAN_REPORTS = []

SIG = 0x223e9f78
IID_MESSAGE = bytes.fromhex('0703020000000000c000000000000046')
IID_STORAGE = bytes.fromhex('0b00000000000000c000000000000046')
CFB = bytes.fromhex('d0cf11e0a1b11ae1')


def run(path=None, data=None, timeout=10, **opts):
    """One worker run; a run past the timeout is a Result without status."""
    o = {'as': '268435456'}
    o.update({k.replace('_', '-'): str(v) for k, v in opts.items()})
    t0 = time.monotonic()
    try:
        r = mgw.run(WORKER, 'tnef', path=path, data=data, opts=o, timeout=timeout)
    except subprocess.TimeoutExpired:
        r = mgw.Result()
        r.reason = 'timed out after %d s' % timeout
    r.wall = time.monotonic() - t0
    err = r.stderr.decode('utf-8', 'replace')
    if 'Sanitizer' in err or 'runtime error:' in err:
        SAN_REPORTS.append(err[-1500:])
    return r


def clean(r):
    """Exit 0 with a Z record and a well-formed record stream."""
    return r.returncode == 0 and r.status is not None and r.protocol_error is None


def outs(r):
    return [(o.name, bytes(o.data)) for o in r.outputs]


def out(r, name):
    for o in r.outputs:
        if o.name == name:
            return o
    return None


def desc(r):
    return 'rc=%s status=%s reason=%r outputs=%r notes=%r stderr=%r' % (
        r.returncode, r.status, r.reason, r.outputs[:8], r.notes[:8], r.stderr[-400:])


# --- a TNEF builder -----------------------------------------------------------

ATT_VERSION = 0x00089006
ATT_OEM_CP = 0x00069007
ATT_MSG_CLASS = 0x00078008
ATT_MAPI_PROPS = 0x00069003
ATT_BODY = 0x0002800c
ATT_REND = 0x00069002
ATT_TITLE = 0x00018010
ATT_DATA = 0x0006800f
ATT_ATTACHMENT = 0x00069005
REND_DATA = struct.pack('<HIHHI', 1, 0xffffffff, 32, 32, 0)

PR_BODY = 0x1000
PR_RTF = 0x1009
PR_HTML = 0x1013
PR_MSG_CP = 0x3ffd
PR_DATA = 0x3701
PR_FILENAME = 0x3704
PR_METHOD = 0x3705
PR_LONG = 0x3707


def attr(level, aid, data, bad_sum=False):
    s = sum(data) & 0xffff
    if bad_sum:
        s ^= 0x5a5a
    return struct.pack('<BII', level, aid, len(data)) + data + struct.pack('<H', s)


def stream(*parts, cp=None):
    head = attr(1, ATT_VERSION, struct.pack('<I', 0x10000))
    if cp is not None:
        head += attr(1, ATT_OEM_CP, struct.pack('<II', cp, 0))
    head += attr(1, ATT_MSG_CLASS, b'IPM.Microsoft Mail.Note\0')
    return struct.pack('<IH', SIG, 0x4711) + head + b''.join(parts)


def pad4(b):
    return b + b'\0' * (-len(b) % 4)


def p_long(pid, v):
    return struct.pack('<HHI', 0x0003, pid, v)


def p_var(pid, ptype, b):
    return struct.pack('<HHII', ptype, pid, 1, len(b)) + pad4(b)


def p_str8(pid, b):
    return p_var(pid, 0x001e, b + b'\0')


def p_uni(pid, s):
    return p_var(pid, 0x001f, s.encode('utf-16-le') + b'\0\0')


def p_bin(pid, b):
    return p_var(pid, 0x0102, b)


def p_obj(pid, iid, b):
    return p_var(pid, 0x000d, iid + b)


def props(*ps):
    return struct.pack('<I', len(ps)) + b''.join(ps)


def msg_props(*ps):
    return attr(1, ATT_MAPI_PROPS, props(*ps))


def attachment(data=None, title=None, mapi=None, bad_sum=False):
    parts = [attr(2, ATT_REND, REND_DATA)]
    if title is not None:
        parts.append(attr(2, ATT_TITLE, title + b'\0'))
    if data is not None:
        parts.append(attr(2, ATT_DATA, data, bad_sum))
    if mapi is not None:
        parts.append(attr(2, ATT_ATTACHMENT, props(*mapi)))
    return b''.join(parts)


RTF_PREFIX = (b'{\\rtf1\\ansi\\mac\\deff0\\deftab720{\\fonttbl;}{\\f0\\fnil \\froman \\fswiss '
              b'\\fmodern \\fscript \\fdecor MS Sans SerifSymbolArialTimes New RomanCourier'
              b'{\\colortbl\\red0\\green0\\blue0\r\n\\par \\pard\\plain\\f0\\fs20\\b\\i\\u\\tab\\tx')
assert len(RTF_PREFIX) == 207


def lzfu(tokens, raw_size, bad_crc=False):
    """A compressed-RTF value from tokens: bytes (literals) or (offset,
    length) references; the end marker is added."""
    flat, wpos = [], len(RTF_PREFIX)
    for t in tokens:
        if isinstance(t, tuple):
            flat.append(t)
            wpos = (wpos + t[1]) % 4096
        else:
            for b in t:
                flat.append(b)
                wpos = (wpos + 1) % 4096
    flat.append((wpos, 2))
    body = bytearray()
    for k in range(0, len(flat), 8):
        ctl, chunk = 0, b''
        for j, t in enumerate(flat[k:k + 8]):
            if isinstance(t, tuple):
                ctl |= 1 << j
                chunk += struct.pack('>H', t[0] << 4 | (t[1] - 2))
            else:
                chunk += bytes([t])
        body += bytes([ctl]) + chunk
    crc = ~zlib.crc32(bytes(body), 0xffffffff) & 0xffffffff
    if bad_crc:
        crc ^= 1
    return struct.pack('<IIII', len(body) + 12, raw_size, 0x75465a4c, crc) + bytes(body)


def attr_spans(data):
    """(start, data start, data length) of each attribute of a stream."""
    spans, pos = [], 6
    while pos + 11 <= len(data) and data[pos] in (1, 2):
        (n,) = struct.unpack_from('<I', data, pos + 5)
        if pos + 11 + n > len(data):
            break
        spans.append((pos, pos + 9, n))
        pos += 11 + n
    return spans


# --- the corpus -----------------------------------------------------------------

TEXTY = ('.htm', '.html', '.ini', '.dat', '.cfg', '.src', '.txt', '.rtf')


def d2u(b):
    return b.replace(b'\r\n', b'\n')


def same(name, got, want):
    if got == want:
        return True
    if want[:16] in (IID_MESSAGE, IID_STORAGE) and got == want[16:]:
        return True
    texty = name.startswith('body.') or os.path.splitext(name)[1].lower() in TEXTY or \
        name in ('AUTHORS', 'README')
    return texty and d2u(got) == d2u(want)


def corpus_tnef():
    tnefs = sorted(f for f in os.listdir(TNEF_DIR) if f.endswith('.tnef'))
    check(len(tnefs) >= 19, 'the mimekit TNEF corpus is present', tnefs)
    compared = 0
    for f in tnefs:
        base = os.path.join(TNEF_DIR, f[:-5])
        r = run(os.path.join(TNEF_DIR, f))
        names = [o.name for o in r.outputs]
        check(clean(r) and r.status == 'ok' and r.wall < 10, '%s: ok within 10 s' % f, desc(r))
        with open(base + '.list', encoding='utf-8') as lf:
            listed = [ln.strip() for ln in lf if ln.strip()]
        missing = [n for n in listed
                   if not (n.startswith('body.') and any(m.startswith('body.') for m in names))
                   and n not in names]
        check(not missing, '%s: every listed name comes out' % f, 'missing %r of %r' % (
            missing, names))
        check(any('attachments' in n for n in r.notes_of('info')), '%s: an info note' % f,
              r.notes)
        if not os.path.isdir(base):
            continue
        files = {n: open(os.path.join(base, n), 'rb').read() for n in os.listdir(base)}
        bad = []
        for name, data in outs(r):
            if name.startswith('body.'):
                cands = [files[k] for k in ('message' + name[4:],) if k in files]
            else:
                cands = [v for k, v in files.items() if k == name or k.startswith(name + '.')]
            if not cands:
                continue
            compared += 1
            if not any(same(name, data, c) for c in cands):
                bad.append((name, len(data), [len(c) for c in cands]))
        check(not bad, '%s: the extracted bytes match the expected files' % f, bad)
    check(compared >= 40, 'outputs compared with the extracted files: %d' % compared)

    # details the lists do not show
    r = run(os.path.join(TNEF_DIR, 'christmas.tnef'))
    emb = [d for n, d in outs(r) if n == 'Untitled Attachment']
    check(len(emb) == 2 and all(d[:4] == struct.pack('<I', SIG) for d in emb)
          and not any(d.startswith(b'This attachment is a MAPI 1.0 embedded message') for _, d
                      in outs(r)),
          'christmas: the embedded messages come out as TNEF, their placeholders do not',
          [(n, len(d), d[:8]) for n, d in outs(r)])
    if emb:
        r2 = run(data=emb[0])
        check(clean(r2) and r2.status == 'ok', 'christmas: an embedded message unpacks again',
              desc(r2))
    r = run(os.path.join(TNEF_DIR, 'winmail.tnef'))
    check([n for n, _ in outs(r)] == ['body.rtf', 'Untitled Attachment', 'Untitled Attachment']
          and all(d.startswith(CFB) for n, d in outs(r) if n != 'body.rtf'),
          'winmail: the OLE objects come out as compound files without their interface id',
          [(n, d[:8]) for n, d in outs(r)])
    r = run(os.path.join(TNEF_DIR, 'panic.tnef'))
    check(r.status == 'ok' and any('after the last attribute' in n for n in r.notes_of('defect')),
          'panic: the garbage after the last attribute is a defect, not a failure', desc(r))
    r = run(os.path.join(TNEF_DIR, 'triples.tnef'))
    body = out(r, 'body.txt')
    check(body is not None and bytes(body.data) == b'Sample description\r\n',
          'triples: attBody comes out as body.txt without its NUL', desc(r))


def poi_tnef():
    found = []
    for root, _, files in os.walk(POI):
        for f in sorted(files):
            p = os.path.join(root, f)
            with open(p, 'rb') as fh:
                if fh.read(4) == struct.pack('<I', SIG):
                    found.append(p)
    check(len(found) >= 2, 'poi-testdata holds TNEF files (by signature)', found)
    for p in found:
        r = run(p)
        check(clean(r) and r.wall < 10, 'poi %s: exit 0 with a Z record within 10 s'
              % os.path.relpath(p, POI), desc(r))
    simple = os.path.join(POI, 'hmef', 'bug52400-winmail-simple.dat')
    if os.path.exists(simple):
        r = run(simple)
        check(r.status == 'ok' and [n for n, _ in outs(r)] == ['body.html']
              and b'<html' in outs(r)[0][1].lower(), 'poi bug52400: the HTML body', desc(r))
    return found


# --- hand-built streams -----------------------------------------------------------

def names_and_flags():
    name = '報告書（案）.txt'
    r = run(data=stream(attachment(b'data', title=name.encode('cp932')), cp=932))
    o = out(r, name)
    check(r.status == 'ok' and o is not None and bytes(o.data) == b'data'
          and 'name-changed' not in o.flags, 'CP932 attAttachTitle with OEM code page 932',
          desc(r))
    r = run(data=stream(attachment(b'data', title=name.encode('cp932'))))
    check(out(r, name) is not None, 'CP932 attAttachTitle without an OEM code page', desc(r))
    r = run(data=stream(attachment(b'x', title='Bodø-damer.doc'.encode('cp1252')), cp=1252))
    check(out(r, 'Bodø-damer.doc') is not None, 'CP1252 name with OEM code page 1252', desc(r))
    r = run(data=stream(attachment(b'x', title=name.encode('cp932')), cp=12345))
    check(out(r, name) is not None, 'CP932 when iconv does not know the OEM code page', desc(r))
    r = run(data=stream(attachment(b'x', title='資料.pdf'.encode('utf-8')), cp=1252))
    check(out(r, '資料.pdf') is not None, 'an 8-bit name that is UTF-8 stays UTF-8', desc(r))

    long_name = '令和6年度 予算要求資料（最終版）.xlsx'
    r = run(data=stream(attachment(b'x', title=b'REIWA6~1.XLS',
                                   mapi=[p_str8(PR_FILENAME, b'REIWA6~1.XLS'),
                                         p_uni(PR_LONG, long_name)]), cp=932))
    check([n for n, _ in outs(r)] == [long_name],
          'PR_ATTACH_LONG_FILENAME (Unicode) before attAttachTitle and PR_ATTACH_FILENAME',
          desc(r))
    r = run(data=stream(attachment(b'x', title=b'REIWA6~1.XLS',
                                   mapi=[p_str8(PR_LONG, long_name.encode('cp932'))]), cp=932))
    check([n for n, _ in outs(r)] == [long_name], 'PR_ATTACH_LONG_FILENAME (8-bit, CP932)',
          desc(r))
    r = run(data=stream(attachment(b'x', title=b'\0', mapi=[p_str8(PR_FILENAME, b'short.txt'),
                                                            p_str8(PR_LONG, b'')])))
    check([n for n, _ in outs(r)] == ['short.txt'],
          'empty title and long name: PR_ATTACH_FILENAME', desc(r))

    cases = [
        ('../../etc/pa\x07ss\u202egnp.exe', 'passgnp.exe'),
        ('C:\\Users\\x\\Desktop\\evil.txt. . ', 'evil.txt'),
        ('..\\..\\', None),
        ('\x01\x02\u200b', None),
        ('a' * 300 + '.txt', 'a' * 251 + '.txt'),
        ('請求書\u202efdp.exe', '請求書fdp.exe'),
    ]
    atts = [attachment(b'n%d' % i, mapi=[p_uni(PR_LONG, n)]) for i, (n, _) in enumerate(cases)]
    atts.append(attachment(b'nameless'))
    r = run(data=stream(*atts))
    got = [(o.name, o.flags) for o in r.outputs]
    want = [(w if w is not None else 'attachment-%d' % (i + 1), ['name-changed'])
            for i, (_, w) in enumerate(cases)] + [('attachment-%d' % (len(cases) + 1), [])]
    check(r.status == 'ok' and got == want,
          'unsafe names: last component, no controls or bidi, flagged name-changed; '
          '"attachment-N" when empty', 'got %r want %r' % (got, want))


def bodies():
    text = '本文です。\r\nSecond line ①㈱\r\n'
    r = run(data=stream(msg_props(p_uni(PR_BODY, text), p_bin(PR_RTF, lzfu([b'{\\rtf1 x}'], 8)))))
    check(outs(r) == [('body.txt', text.encode('utf-8'))],
          'PR_BODY (Unicode) as UTF-8 body.txt, RTF left out when there is text', desc(r))
    r = run(data=stream(msg_props(p_long(PR_MSG_CP, 932), p_str8(PR_BODY, text.encode('cp932')))))
    check(outs(r) == [('body.txt', text.encode('utf-8'))],
          'PR_BODY (8-bit, PR_MESSAGE_CODEPAGE 932) as UTF-8', desc(r))
    r = run(data=stream(attr(1, ATT_BODY, text.encode('cp932') + b'\0'), cp=932))
    check(outs(r) == [('body.txt', text.encode('utf-8'))], 'attBody (OEM code page 932) as UTF-8',
          desc(r))
    html = b'<html><body><p>\x93\xfa\x96{</p></body></html>'
    r = run(data=stream(msg_props(p_bin(PR_HTML, html), p_bin(PR_RTF, lzfu([b'{\\rtf1}'], 7)))))
    check(outs(r) == [('body.html', html)], 'PR_HTML as body.html, its bytes', desc(r))
    r = run(data=stream(msg_props(p_str8(PR_HTML, html))))
    check(outs(r) == [('body.html', html)], 'PR_HTML in 8 bits: without its NUL', desc(r))

    rtf = b'{\\rtf1\\ansi\\ansicpg932 Hello, hello, hello, hello.\\par}'
    toks = [(0, 11), rtf[11:34], (len(RTF_PREFIX) + 27, 14), rtf[48:]]
    assert rtf[34:48] == rtf[27:41]
    r = run(data=stream(msg_props(p_bin(PR_RTF, lzfu(toks, len(rtf))))))
    check(outs(r) == [('body.rtf', rtf)] and not r.notes_of('defect'),
          'compressed RTF (dictionary and back references) decompressed to body.rtf', desc(r))
    r = run(data=stream(msg_props(p_bin(PR_RTF, lzfu(toks, len(rtf), bad_crc=True)))))
    check(outs(r) == [('body.rtf', rtf)] and any('CRC' in n for n in r.notes_of('defect')),
          'compressed RTF with a bad CRC: decompressed, a defect noted', desc(r))
    stored = struct.pack('<IIII', len(rtf) + 12, len(rtf), 0x414c454d, 0) + rtf
    r = run(data=stream(msg_props(p_bin(PR_RTF, stored))))
    check(outs(r) == [('body.rtf', rtf)], 'stored RTF ("MELA")', desc(r))
    r = run(data=stream(msg_props(p_bin(PR_RTF, lzfu(toks, 10 ** 9)))))
    check(r.status == 'ok' and outs(r) == [('body.rtf', rtf)]
          and any('header declares' in n for n in r.notes_of('defect')),
          'compressed RTF declaring more than it holds: what it holds, a defect', desc(r))
    r = run(data=stream(msg_props(p_bin(PR_RTF, lzfu(toks, 20)))))
    check(outs(r) == [('body.rtf', rtf[:20])], 'compressed RTF cut at its declared size', desc(r))
    # a bomb: each 2-byte reference repeats the 17 bytes before it (a
    # reference to the write position itself would be the end marker)
    seed, toks, w = b'{\\rtf1 aaaaaaaaaa', [], len(RTF_PREFIX) + 17
    for _ in range(60000):
        toks.append(((w - 17) % 4096, 17))
        w += 17
    bomb = lzfu([seed] + toks, 2 ** 31)
    r = run(data=stream(msg_props(p_bin(PR_RTF, bomb))), max_total=100000)
    check(r.status == 'limit' and 'max-total' in (r.reason or '')
          and sum(len(d) for _, d in outs(r)) <= 100000,
          'a compressed-RTF bomb stops at max-total', desc(r))
    r = run(data=stream(msg_props(p_bin(PR_RTF, b'\x10\0\0\0\x10\0\0\0XXXX\0\0\0\0'))))
    check(r.status == 'ok' and not r.outputs and r.notes_of('removed'),
          'RTF of an unknown compression: removed with a note', desc(r))


def objects():
    inner = stream(attachment(b'inner data', title=b'inner.txt'))
    placeholder = b'This attachment is a MAPI 1.0 embedded message and is not supported.'
    r = run(data=stream(attachment(placeholder, title=b'Forwarded',
                                   mapi=[p_long(PR_METHOD, 5),
                                         p_obj(PR_DATA, IID_MESSAGE, inner)])))
    check(outs(r) == [('Forwarded', inner)],
          'an embedded message comes out as its TNEF stream, not its placeholder', desc(r))
    r2 = run(data=inner)
    check(outs(r2) == [('inner.txt', b'inner data')], '... and that unpacks again', desc(r2))
    r = run(data=stream(attachment(title=b'Memo', mapi=[p_long(PR_METHOD, 5),
                                                        p_obj(PR_DATA, IID_MESSAGE,
                                                              b'\0' * 64)])))
    check(r.status == 'ok' and not r.outputs
          and any('Memo' in n for n in r.notes_of('removed')),
          'an embedded message that is not TNEF: removed with a note', desc(r))
    cfb = CFB + b'\0' * 504
    r = run(data=stream(attachment(title=b'Picture', mapi=[p_long(PR_METHOD, 6),
                                                           p_obj(PR_DATA, IID_STORAGE, cfb)])))
    check(outs(r) == [('Picture', cfb)], 'an OLE object that is a compound file: emitted',
          desc(r))
    r = run(data=stream(attachment(title=b'Blob', mapi=[p_long(PR_METHOD, 6),
                                                        p_obj(PR_DATA, IID_STORAGE,
                                                              b'\x42' * 100)])))
    check(r.status == 'ok' and not r.outputs
          and any('Blob' in n for n in r.notes_of('removed')),
          'an OLE object of unknown content: removed with a note', desc(r))
    ole1 = struct.pack('<II', 0x501, 1) + struct.pack('<I', 8) + b'Package\0' + b'\0' * 32
    r = run(data=stream(attachment(ole1, title=b'Linked', mapi=[p_long(PR_METHOD, 6)])))
    check(r.status == 'ok' and not r.outputs
          and any('OLE-linked' in n for n in r.notes_of('removed')),
          'an OLE-linked object: removed with a note', desc(r))
    for method in (2, 4, 7):
        r = run(data=stream(attachment(b'MZ' + b'\0' * 64, title=b'link.exe',
                                       mapi=[p_long(PR_METHOD, method),
                                             p_str8(0x3708, b'\\\\server\\share\\link.exe')])))
        check(r.status == 'ok' and not r.outputs
              and any('reference' in n for n in r.notes_of('removed')),
              'attach method %d (by reference): removed with a note' % method, desc(r))
    r = run(data=stream(attachment(mapi=[p_long(PR_METHOD, 1),
                                         p_bin(PR_DATA, b'%PDF-1.4 binary data'),
                                         p_str8(PR_LONG, b'doc.pdf')])))
    check(outs(r) == [('doc.pdf', b'%PDF-1.4 binary data')],
          'PR_ATTACH_DATA_BIN without attAttachData', desc(r))
    r = run(data=stream(attachment(title=b'empty')))
    check(r.status == 'ok' and not r.outputs
          and any('no data' in n for n in r.notes_of('defect')),
          'an attachment without data: a defect, no output', desc(r))


def limits_and_failures():
    big = bytes(range(256)) * 20
    r = run(data=stream(attachment(big, title=b'big.bin')), max_total=4096)
    check(r.status == 'limit' and 'max-total' in (r.reason or '') and not any(
        len(d) > 0 for _, d in outs(r)), 'an attachment bigger than max-total: limit, no data',
        desc(r))
    r = run(data=stream(attachment(big[:3000], title=b'a'), attachment(big[:3000], title=b'b')),
            max_total=4096)
    check(r.status == 'limit' and sum(len(d) for _, d in outs(r)) <= 4096,
          'attachments over max-total together: limit', desc(r))
    five = stream(*[attachment(b'x', title=b'f%d' % i) for i in range(5)])
    r = run(data=five, max_members=3)
    check(r.status == 'limit' and 'max-members' in (r.reason or '') and not r.outputs,
          'more attachments than max-members: limit before any output', desc(r))
    r = run(data=five, max_members=5)
    check(r.status == 'ok' and len(r.outputs) == 5, 'as many attachments as max-members: ok',
          desc(r))
    r = run(data=stream(msg_props(p_uni(PR_BODY, 'body')),
                        *[attachment(b'x', title=b'f%d' % i) for i in range(3)]), max_members=3)
    check(r.status == 'limit', 'the body counts as a member too', desc(r))

    good = stream(attachment(big, title=b'big.bin'), attachment(b'tail', title=b't.txt'))
    spans = attr_spans(good)
    data_attr = [s for s in spans if s[2] == len(big)][0]
    for cut, what in [(data_attr[1] + 100, 'inside attribute data'),
                      (data_attr[0] + 4, 'inside an attribute header'),
                      (len(good) - 1, 'inside the last checksum')]:
        r = run(data=good[:cut])
        check(r.status == 'fail' and 'truncated' in (r.reason or '') and not r.outputs,
              'truncated %s: fail, nothing emitted' % what, desc(r))
    for f in ('two-files.tnef', 'christmas.tnef', 'MAPI_ATTACH_DATA_OBJ.tnef'):
        with open(os.path.join(TNEF_DIR, f), 'rb') as fh:
            d = fh.read()
        biggest = max(attr_spans(d), key=lambda s: s[2])
        r = run(data=d[:biggest[1] + biggest[2] // 2])
        check(r.status == 'fail' and not r.outputs, '%s truncated: fail' % f, desc(r))
    for data, what in [(b'', 'empty input'), (b'\x78\x9f\x3e', 'three bytes'),
                       (b'\x78\x9f\x3e\x23' + good[4:], 'a bad signature'),
                       (b'PK\x03\x04' + good[4:], 'a zip signature'),
                       (good[:6] + b'\x07' + good[7:], 'no attribute after the header')]:
        r = run(data=data)
        check(r.status == 'fail' and clean(r) and not r.outputs, '%s: fail' % what, desc(r))

    r = run(data=stream(attachment(big, title=b'sum.bin', bad_sum=True)))
    check(r.status == 'ok' and outs(r) == [('sum.bin', big)]
          and any('checksum' in n for n in r.notes_of('defect')),
          'a checksum mismatch: ok, the data, a defect note', desc(r))
    many = stream(*[attachment(b'v%d' % i, title=b'f%d' % i, bad_sum=True) for i in range(30)])
    r = run(data=many)
    check(r.status == 'ok' and len(r.outputs) == 30 and len(r.notes_of('defect')) <= 10,
          'many checksum mismatches: notes capped', desc(r))

    huge_count = attr(2, ATT_ATTACHMENT, struct.pack('<I', 0x7fffffff) + p_long(PR_METHOD, 2))
    r = run(data=stream(attr(2, ATT_REND, REND_DATA), attr(2, ATT_TITLE, b'kept.txt\0'),
                        attr(2, ATT_DATA, b'kept'), huge_count))
    check(r.status == 'ok' and outs(r) == [('kept.txt', b'kept')]
          and any('count' in n for n in r.notes_of('defect')),
          'a property count larger than its stream: a defect, read no further', desc(r))
    mv = struct.pack('<I', 1) + struct.pack('<HHI', 0x101e, PR_LONG, 0x40000000)
    r = run(data=stream(attr(2, ATT_REND, REND_DATA), attr(2, ATT_TITLE, b'mv.txt\0'),
                        attr(2, ATT_DATA, b'mv'), attr(2, ATT_ATTACHMENT, mv)))
    check(r.status == 'ok' and outs(r) == [('mv.txt', b'mv')] and r.notes_of('defect'),
          'a multi-valued property with a huge value count: a defect', desc(r))
    unknown = props(struct.pack('<HHI', 0x0999, 0x0001, 0), p_str8(PR_LONG, b'never.txt'))
    r = run(data=stream(attr(2, ATT_REND, REND_DATA), attr(2, ATT_TITLE, b'title.txt\0'),
                        attr(2, ATT_DATA, b'u'), attr(2, ATT_ATTACHMENT, unknown)))
    check(r.status == 'ok' and outs(r) == [('title.txt', b'u')],
          'a property of an unknown type: the rest of its stream ignored', desc(r))
    broken = [attr(1, ATT_MAPI_PROPS, struct.pack('<I', 0xffffff)) for _ in range(40)]
    r = run(data=stream(*broken))
    check(r.status == 'ok' and 8 <= len(r.notes_of('defect')) <= 10,
          'many broken property streams: notes capped', desc(r))
    r = run(data=struct.pack('<IH', SIG, 1))
    check(r.status == 'ok' and not r.outputs and any('0 attachments' in n for n in
                                                     r.notes_of('info')),
          'a stream with no attribute: ok, nothing, the info note', desc(r))
    r = run(data=good + b'\x00garbage after the stream')
    check(r.status == 'ok' and len(r.outputs) == 2 and r.notes_of('defect'),
          'garbage after the last attribute: ok with a defect', desc(r))
    r = run(data=stream(attr(2, ATT_TITLE, b'orphan.txt\0'), attr(2, ATT_DATA, b'o')))
    check(r.status == 'ok' and outs(r) == [('orphan.txt', b'o')] and r.notes_of('defect'),
          'attachment attributes before attAttachRendData: one attachment, a defect', desc(r))


def mutations(pool):
    rng = random.Random(20240611)
    datas = []
    for p in pool:
        with open(p, 'rb') as fh:
            d = fh.read()
        if len(d) <= 400000:
            datas.append(d)
    bad, slow, statuses = [], [], {}
    t0 = time.monotonic()
    for i in range(200):
        d = bytearray(rng.choice(datas))
        kind = i % 5
        if kind == 0:
            for _ in range(rng.randint(1, 20)):
                d[rng.randrange(len(d))] = rng.randrange(256)
        elif kind == 1:
            spans = attr_spans(bytes(d))
            if spans:
                s = rng.choice(spans)
                struct.pack_into('<I', d, s[0] + 5, rng.choice(
                    [0, 1, 0x7fffffff, 0xffffffff, s[2] + rng.randint(-8, 8) & 0xffffffff,
                     rng.getrandbits(32)]))
        elif kind == 2:
            spans = [s for s in attr_spans(bytes(d)) if s[2] >= 8]
            if spans:
                s = rng.choice(spans)
                # a property or value count inside the data
                off = s[1] + rng.randrange(0, s[2] - 3) // 4 * 4
                struct.pack_into('<I', d, off, rng.choice([0xffffffff, 0x10000, rng.getrandbits(
                    32)]))
        elif kind == 3:
            del d[rng.randrange(6, len(d)):]
        else:
            pos = rng.randrange(len(d))
            d[pos:pos] = bytes(rng.getrandbits(8) for _ in range(rng.randint(1, 64)))
        r = run(data=bytes(d), timeout=15)
        statuses[r.status] = statuses.get(r.status, 0) + 1
        if not clean(r):
            bad.append((i, kind, desc(r)))
        if r.wall >= 10:
            slow.append((i, kind, r.wall))
    check(not bad, '200 mutated corpus files: exit 0 with a Z record and clean records (%s)'
          % ', '.join('%s %d' % kv for kv in sorted(statuses.items(), key=str)), bad[:3])
    check(not slow, 'every mutated file within 10 s (%.1f s for all)' % (time.monotonic() - t0),
          slow[:5])


def cli():
    if not (A.cli and A.source):
        check(False, 'the CLI and the source tree are given (--cli, --source)')
        return
    tmp = tempfile.mkdtemp(prefix='mugaika-cdr-tnef.')
    try:
        db, q = os.path.join(tmp, 'db'), os.path.join(tmp, 'q')
        subprocess.run(['bash', os.path.join(A.source, 'tests', 'av', 'make-testdb'), db],
                       check=True, stdout=subprocess.DEVNULL, timeout=120)
        with open(os.path.join(TNEF_DIR, 'two-files.tnef'), 'rb') as fh:
            winmail = fh.read()
        m = EmailMessage()
        m['From'] = 'sender@example.jp'
        m['To'] = 'staff@example.lg.jp'
        m['Subject'] = 'TNEF test'
        m['Message-ID'] = '<cdr-tnef-%d@example.jp>' % time.monotonic_ns()
        m.set_content('本文です。\n')
        m.add_attachment(winmail, maintype='application', subtype='ms-tnef',
                         filename='winmail.dat')
        path = os.path.join(tmp, 'in.eml')
        with open(path, 'wb') as fh:
            fh.write(bytes(m))
        p = subprocess.run([A.cli, 'sanitize', '--clamav-db', db, '--quarantine', q, '--lang',
                            'en', path], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           timeout=120)
        check(p.returncode == 0, 'sanitize a mail with winmail.dat: exit 0', p.stderr[-2000:])
        res = email.message_from_bytes(p.stdout, policy=email.policy.default)
        atts = [(a.get_filename(), a.get_content_type(), a.get_payload(decode=True))
                for a in res.walk() if a.get_filename() is not None]
        want = {}
        for n in ('AUTHORS', 'README'):
            with open(os.path.join(TNEF_DIR, 'two-files', n), 'rb') as fh:
                want[n] = fh.read()
        # the pipeline gives a kept text file its type's extension
        # (src/sanitize/names.c): AUTHORS may arrive as AUTHORS.txt
        got = {n[:-4] if n.endswith('.txt') else n: d for n, _, d in atts}
        check(sorted(got) == ['AUTHORS', 'README'] and all(got[n] == want[n] for n in want),
              'its attachments arrive as separate attachments under their names, byte for byte',
              [(n, t, len(d or b'')) for n, t, d in atts])
        text = ''
        for part in res.walk():
            if part.get_content_type() == 'text/plain' and part.get_filename() is None:
                text += part.get_content()
        check('winmail.dat' in text, 'the notice names winmail.dat', text[-1500:])
        check(not any(t in ('application/ms-tnef', 'application/vnd.ms-tnef') or
                      (d or b'')[:4] == struct.pack('<I', SIG) for _, t, d in atts),
              'no TNEF crosses', [(n, t) for n, t, _ in atts])
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def main():
    corpus_tnef()
    found = poi_tnef()
    names_and_flags()
    bodies()
    objects()
    limits_and_failures()
    pool = [os.path.join(TNEF_DIR, f) for f in sorted(os.listdir(TNEF_DIR))
            if f.endswith('.tnef')] + found
    mutations(pool)
    check(not SAN_REPORTS, 'no sanitizer report from any run', SAN_REPORTS[:2])
    cli()
    done()


main()
