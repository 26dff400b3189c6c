#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""cdr-pdf: the pdf-disarm handler of mugaika-pdf (src/pdf/disarm.c).

Runs mugaika-pdf on PDFs written here (an incremental update that adds
an open action, unreferenced objects holding JavaScript and an embedded
file, links and actions of every kind, object streams, stray '#' in
names, a two-level page tree, limits, long chains and loops, passwords)
and on every *.pdf of ../shared/corpus, and checks the OUTPUT with the
poppler and qpdf tools:

- the program exits 0 with a Z record within 20 s, whatever the file;
- for every output with status ok: one output, application/pdf;
  `qpdf --check` exits 0 or 3 (3: warnings; qpdf --check also decodes
  the page content streams, which pdf-disarm copies untouched, so a
  damaged content stream of the input is still reported, as an error
  (2) when qpdf cannot decode it in the input either), and 0 whenever
  it gave 0 for the input (the handler adds no damage);
- after `qpdf --qdf --object-streams=disable` no /JavaScript /JS
  /OpenAction /AA /Launch /SubmitForm /ImportData /GoToR /GoToE
  /RichMedia /EmbeddedFile(s) /FileAttachment /XFA followed by a PDF
  delimiter is left outside stream data (in the samples written here,
  the whole file is searched, scripts' text included); each of those
  names is in at least one sample written here as qpdf reads it (its
  qdf expansion), so that search is never vacuous, and each such
  sample's output passes `qpdf --check` and keeps its page text;
- the pages qpdf finds (qpdf --show-pages) are as many as in the input
  and the output's /Count (qpdf --show-npages) says so; pdftotext gives
  the same text (whitespace folded) when it gives text for the input;
- a "fail" status comes with a reason from qpdf, and qpdf --check
  fails on that input too;
- the output is a fixed point (the gateway is idempotent): the handler
  run on its own output gives the very same bytes and removes nothing
  more, for every sample written here and every corpus PDF that ends
  ok (a third pass on every sample here and every 8th corpus PDF), and
  the same input run twice gives the same bytes;
- stream data is copied, never decoded and encoded again (an
  /ASCIIHexDecode stream and a twice-deflated one keep their bytes, a
  stream without a filter stays without one), and a metadata stream,
  which qpdf inflates whatever the decode level, cannot blow up: a
  few KB that inflate to 1 GiB are copied compressed.
"""
import base64
import concurrent.futures
import os
import random
import re
import subprocess
import sys
import tempfile
import zlib

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import mgw  # noqa: E402
from pdfs import pdf_file, stream  # noqa: E402
from tap import args, check, done, need_shared  # noqa: E402

ACTIVE = [b'JavaScript', b'JS', b'OpenAction', b'AA', b'Launch', b'SubmitForm', b'ImportData',
          b'GoToR', b'GoToE', b'RichMedia', b'EmbeddedFile', b'EmbeddedFiles',
          b'FileAttachment', b'XFA']
DELIM = rb'(?=[\x00\t\n\x0c\r ()<>\[\]{}/%]|$)'
ACTIVE_RE = re.compile(rb'/(?:' + b'|'.join(ACTIVE) + rb')' + DELIM)

A = args()
CORPUS = need_shared(A)
TMP = tempfile.TemporaryDirectory(prefix='cdr-pdf-')


def tool(argv, timeout=60, stderr=False):
    """Runs a tool; (exit status, stdout bytes, or stdout and stderr
    bytes); -1 on a timeout."""
    try:
        p = subprocess.run(argv, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT if stderr else subprocess.DEVNULL,
                           timeout=timeout)
    except subprocess.TimeoutExpired:
        return -1, b''
    return p.returncode, p.stdout


def disarm(path=None, data=None, opts=None, timeout=20):
    o = {'name': 'out.pdf'}
    o.update(opts or {})
    try:
        return mgw.run(A.pdf, 'pdf-disarm', path=path, data=data, opts=o, timeout=timeout)
    except subprocess.TimeoutExpired:
        return None


def page_counts(path):
    """(the pages qpdf finds in the page tree (qpdf --show-pages), the
    root's /Count (qpdf --show-npages)), None for what qpdf cannot say.
    The two differ when a broken file misstates /Count (T02-02_007
    says 9 for its one page)."""
    rc, out = tool(['qpdf', '--show-npages', '--show-pages', path])
    if rc not in (0, 3):
        return None, None
    first = out.split(b'\n', 1)[0].strip()
    return (len(re.findall(rb'^page \d+:', out, re.M)),
            int(first) if first.isdigit() else None)


def npages(path):
    return page_counts(path)[0]


def declared_pages(path):
    return page_counts(path)[1]


def qpdf_check(path):
    """qpdf --check: (exit status, whether every ERROR is about a page
    content stream)."""
    rc, out = tool(['qpdf', '--check', path], stderr=True)
    errors = [ln for ln in out.splitlines() if ln.startswith(b'ERROR:')]
    return rc, bool(errors) and all(b'content stream' in ln for ln in errors)


def without_stream_data(x):
    """A qdf file without the data of its streams: the names searched
    for are dictionary keys and values; page text may well quote them
    (test_fontArialNotEmbedded.pdf shows PDF syntax on its pages). A
    stream that holds "endstream" in its data only ends the cut early,
    which can add, never hide, a match."""
    return re.sub(rb'\nstream\n.*?\nendstream\n', b'\n', x, flags=re.S)


def text(path):
    rc, out = tool(['pdftotext', '-q', '-enc', 'UTF-8', path, '-'])
    return b' '.join(out.split()) if rc == 0 else None


def expanded(path):
    """The output with streams uncompressed, no object streams (qdf)."""
    qdf = path + '.qdf'
    rc, _ = tool(['qpdf', '--qdf', '--object-streams=disable', path, qdf])
    if rc not in (0, 3):
        return None
    with open(qdf, 'rb') as f:
        return f.read()


def output_problems(inp, r, tag):
    """Checks an ok result against its input; returns a list of problems."""
    bad = []
    if len(r.outputs) != 1:
        return ['%d outputs' % len(r.outputs)]
    o = r.outputs[0]
    if o.type != 'application/pdf' or o.name != 'out.pdf':
        bad.append('output %r %r' % (o.name, o.type))
    out = os.path.join(TMP.name, tag + '.pdf')
    with open(out, 'wb') as f:
        f.write(o.data)
    rc_out, content_only_out = qpdf_check(out)
    rc_in, content_only_in = qpdf_check(inp)
    # 3 (warnings) is fine: pdf-disarm copies the page content streams
    # untouched, and qpdf --check decodes them. For the same reason a
    # content stream that qpdf cannot decode in the input (2, errors)
    # is still there; any other error, or any problem in the output of
    # an input that passed cleanly, fails.
    inherited = rc_in == 2 and content_only_in and rc_out == 2 and content_only_out
    if (rc_out not in (0, 3) and not inherited) or (rc_in == 0 and rc_out != 0):
        bad.append('qpdf --check: %d (input: %d)' % (rc_out, rc_in))
    x = expanded(out)
    if x is None:
        bad.append('qpdf --qdf failed')
    else:
        found = sorted(set(m.group(0) for m in ACTIVE_RE.finditer(without_stream_data(x))))
        if found:
            bad.append('active names left: %r' % found)
    n_in = npages(inp)
    n_out, count_out = page_counts(out)
    if n_in is not None and n_in != n_out:
        bad.append('pages: %r, was %r' % (n_out, n_in))
    if n_out is None or count_out != n_out:
        bad.append('/Count %r for %r pages' % (count_out, n_out))
    t_in = text(inp)
    if t_in:
        t_out = text(out)
        if t_out != t_in:
            bad.append('text differs: %r... vs %r...' % ((t_out or b'')[:80], t_in[:80]))
    return bad


def fixed_point_problems(path, r, opts=None, third=False):
    """The idempotence of an ok result r of path: a second run on the
    same input gives the same bytes; a second pass on the output gives
    them again, with no "removed" note (and a third pass, with third).
    Returns a list of problems."""
    first = bytes(r.outputs[0].data)
    bad = []
    again = disarm(path, opts=opts)
    if again is None or again.status != 'ok' or len(again.outputs) != 1:
        bad.append('second run: %r' % (again and (again.status, again.reason)))
    elif bytes(again.outputs[0].data) != first:
        bad.append('second run on the same input: different bytes')
    prev = first
    for n in (2, 3) if third else (2,):
        r2 = disarm(data=prev, opts=opts)
        if r2 is None or r2.status != 'ok' or len(r2.outputs) != 1:
            bad.append('pass %d: %r' % (n, r2 and (r2.status, r2.reason)))
            break
        out = bytes(r2.outputs[0].data)
        if out != prev:
            at = next(i for i in range(min(len(out), len(prev)) + 1)
                      if i == min(len(out), len(prev)) or out[i] != prev[i])
            bad.append('pass %d differs from pass %d at byte %d: %r vs %r' % (
                n, n - 1, at, out[max(0, at - 40):at + 40], prev[max(0, at - 40):at + 40]))
            break
        if r2.notes_of('removed'):
            bad.append('pass %d removed more: %r' % (n, r2.notes_of('removed')[:5]))
        prev = out
    return bad


def corpus_one(job):
    i, path = job
    rel = os.path.relpath(path, CORPUS)
    r = disarm(path)
    if r is None:
        return rel, None, ['no result within 20 s']
    if r.returncode != 0 or r.status is None or r.protocol_error:
        return rel, r, ['exit %s, status %s, %s' % (r.returncode, r.status, r.protocol_error)]
    if r.status == 'ok':
        bad = output_problems(path, r, re.sub(r'[^A-Za-z0-9]', '_', rel))
        if len(r.outputs) == 1:
            bad += fixed_point_problems(path, r, third=i % 8 == 0)
        return rel, r, bad
    if r.status == 'fail':
        rc_in, _ = tool(['qpdf', '--check', path])
        if not (r.reason or '').startswith('qpdf') or rc_in != 2:
            return rel, r, ['fail: %r (qpdf --check of the input: %d)' % (r.reason, rc_in)]
    return rel, r, []


# ---- PDFs written here -------------------------------------------------

PAGE_TEXT = b'BT /F1 24 Tf 72 700 Td (Hello mugaika) Tj ET'


def base_objects(annots=b'', catalog_extra=b''):
    return {
        1: b'<< /Type /Catalog /Pages 2 0 R ' + catalog_extra + b'>>',
        2: b'<< /Type /Pages /Kids [3 0 R] /Count 1 >>',
        3: (b'<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R '
            b'/Resources << /Font << /F1 5 0 R >> >> ' + annots + b'>>'),
        4: stream(PAGE_TEXT),
        5: b'<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>',
    }


def pdf_update(base, prev, size, objs):
    """base with an incremental update that (re)defines objs."""
    out = bytearray(base)
    offs = {}
    for n in sorted(objs):
        offs[n] = len(out)
        out += b'%d 0 obj\n' % n + objs[n] + b'\nendobj\n'
    xref = len(out)
    out += b'xref\n'
    for n in sorted(objs):
        out += b'%d 1\n%010d 00000 n \n' % (n, offs[n])
    size = max(size, max(objs) + 1)
    out += b'trailer\n<< /Size %d /Root 1 0 R /Prev %d >>\nstartxref\n%d\n%%%%EOF\n' % (
        size, prev, xref)
    return bytes(out)


def pdf_objstm(objs, packed, unreferenced_packed):
    """A PDF 1.5 with an xref stream; packed and unreferenced_packed go
    into one object stream (uncompressed). The trailer's /Info is the
    first packed object."""
    out = bytearray(b'%PDF-1.5\n%\xe2\xe3\xcf\xd3\n')
    offs = {}
    allp = dict(packed)
    allp.update(unreferenced_packed)
    stm = max(list(objs) + list(allp)) + 1
    header, body = b'', b''
    index = {}
    for i, n in enumerate(sorted(allp)):
        header += b'%d %d ' % (n, len(body))
        body += allp[n] + b'\n'
        index[n] = i
    objs = dict(objs)
    objs[stm] = stream(header + body, b'/Type /ObjStm /N %d /First %d ' % (len(allp), len(header)))
    for n in sorted(objs):
        offs[n] = len(out)
        out += b'%d 0 obj\n' % n + objs[n] + b'\nendobj\n'
    xref_num = stm + 1
    offs[xref_num] = len(out)
    rows = b'\x00\x00\x00\x00\x00\xff\xff'
    for n in range(1, xref_num + 1):
        if n in offs:
            rows += b'\x01' + offs[n].to_bytes(4, 'big') + b'\x00\x00'
        elif n in index:
            rows += b'\x02' + stm.to_bytes(4, 'big') + index[n].to_bytes(2, 'big')
        else:
            rows += b'\x00\x00\x00\x00\x00\xff\xff'
    first_packed = sorted(packed)[0]
    out += b'%d 0 obj\n' % xref_num + stream(
        rows, b'/Type /XRef /Size %d /W [1 4 2] /Root 1 0 R /Info %d 0 R ' % (
            xref_num + 1, first_packed)) + b'\nendobj\n'
    out += b'startxref\n%d\n%%%%EOF\n' % offs[xref_num]
    return bytes(out)


def write(name, data):
    path = os.path.join(TMP.name, name)
    with open(path, 'wb') as f:
        f.write(data)
    return path


# name -> (input path, output path, expanded output), None for what a
# sample did not give; crafted_coverage checks them all
CRAFTED = {}


def run_crafted(name, data, opts=None):
    """Runs the handler on data, which must end ok; returns (result,
    expanded output or None). An ok result is checked to be a fixed
    point (three passes)."""
    path = write(name + '.in.pdf', data)
    r = disarm(path, opts=opts)
    CRAFTED[name] = (path, None, None)
    if r is None or r.status != 'ok' or len(r.outputs) != 1:
        return r, None
    bad = fixed_point_problems(path, r, opts, third=True)
    check(not bad, '%s: a fixed point (same bytes on a second run and on passes 2 and 3)' % name,
          '; '.join(bad))
    out = write(name + '.out.pdf', bytes(r.outputs[0].data))
    x = expanded(out)
    CRAFTED[name] = (path, out, x)
    return r, x


def run_clean(name, data, what):
    """run_crafted, then checks that the run ended ok and left no active
    name; returns (result, expanded output), the latter None when the
    run failed."""
    r, x = run_crafted(name, data)
    check(r is not None and r.status == 'ok' and x is not None, '%s: ok' % what,
          r and (r.status, r.reason, r.stderr))
    if x is not None:
        check(not ACTIVE_RE.search(x), '%s: no active names left' % name, ACTIVE_RE.findall(x))
    return r, x


def crafted_coverage():
    """Every name of ACTIVE is in at least one sample written here, as
    qpdf reads the input (its qdf expansion, outside stream data, so
    only the objects reachable in its last revision count), so the
    "none left" checks are not vacuous; and no sample that holds it
    keeps it (qdf expansion of the output, the whole file). Then every
    sample's output passes `qpdf --check`: 0, or 3 (warnings) when the
    input has warnings too (qpdf 11 writes a '#' in a name as it is, so
    a name that came with a stray '#' leaves with one: see
    src/pdf/disarm.c), and keeps the page text of its input."""
    held = {}
    for name, (inp, _, _) in sorted(CRAFTED.items()):
        x_in = expanded(inp)
        if x_in is not None:
            held[name] = set(m.group(0) for m in ACTIVE_RE.finditer(without_stream_data(x_in)))
    for key in ACTIVE:
        holders = sorted(n for n in held if b'/' + key in held[n])
        kept = [n if CRAFTED[n][2] is not None else n + ' (no expanded output)'
                for n in holders if CRAFTED[n][2] is None or
                re.search(rb'/' + key + DELIM, CRAFTED[n][2])]
        check(holders and not kept, '/%s: in crafted inputs (%s), gone from their outputs' % (
            key.decode(), ', '.join(holders)), 'kept by %r' % kept if holders else 'in no input')
    for name, (inp, out, x) in sorted(CRAFTED.items()):
        rc_in, rc, t_in = tool(['qpdf', '--check', inp])[0], None, text(inp)
        if out is not None:
            rc = tool(['qpdf', '--check', out])[0]
        check(name in held and x is not None and not ACTIVE_RE.search(x) and
              (rc == 0 or rc == rc_in == 3) and t_in and text(out) == t_in,
              'crafted %s: input expanded, output without active names, qpdf --check %s, '
              'page text kept' % (name, rc),
              (name in held, x is not None and ACTIVE_RE.findall(x), rc, rc_in, t_in,
               out and text(out)))


def has_note(r, kind, *words):
    return any(all(w in t for w in words) for t in r.notes_of(kind))


def crafted_incremental():
    objs = base_objects()
    objs[6] = b'<< /S /JavaScript /JS (app.alert\\("unreferenced"\\)) >>'
    objs[7] = stream(b'MZ hidden payload', b'/Type /EmbeddedFile ')
    base, xref, size = pdf_file(objs)
    upd = {
        1: (b'<< /Type /Catalog /Pages 2 0 R /OpenAction 8 0 R '
            b'/Names << /JavaScript 9 0 R /EmbeddedFiles 10 0 R >> >>'),
        8: b'<< /S /JavaScript /JS (app.alert\\("opened"\\)) >>',
        9: b'<< /Names [(init) 8 0 R] >>',
        10: (b'<< /Names [(invoice.exe) '
             b'<< /Type /Filespec /F (invoice.exe) /EF << /F 7 0 R >> >>] >>'),
    }
    data = pdf_update(base, xref, size, upd)
    r, x = run_crafted('incremental', data)
    check(r is not None and r.status == 'ok' and x is not None,
          'incremental update with an open action: ok', r and (r.status, r.reason))
    if x is None:
        return
    check(not ACTIVE_RE.search(x) and b'app.alert' not in x and b'hidden payload' not in x,
          'incremental update: no open action, script or embedded file in the output',
          ACTIVE_RE.findall(x))
    check(has_note(r, 'removed', 'open action (JavaScript)') and
          has_note(r, 'removed', 'document JavaScript (1 script)') and
          has_note(r, 'removed', 'embedded file invoice.exe'),
          'incremental update: notes name the open action, the script and the file', r.notes)
    out = os.path.join(TMP.name, 'incremental.out.pdf')
    check(text(out) == b'Hello mugaika', 'incremental update: the page text stays', text(out))
    with open(out, 'rb') as f:
        raw = f.read()
    check(raw.count(b'%%EOF') == 1 and b'/Prev' not in raw,
          'incremental update: written as a new file, not an update')


def crafted_links():
    annots = (
        b'/Annots ['
        b'<< /Type /Annot /Subtype /Link /Rect [0 0 10 10] '
        b'   /A << /S /URI /URI (http://example.com/plain) >> >> '
        b'<< /Type /Annot /Subtype /Link /Rect [0 0 10 10] '
        b'   /A << /S /URI /URI (javascript:app.alert\\(1\\)) >> >> '
        b'<< /Type /Annot /Subtype /Link /Rect [0 0 10 10] '
        b'   /A << /S /URI /URI (\\\\\\\\evil.example\\\\share) >> >> '
        b'<< /Type /Annot /Subtype /Link /Rect [0 0 10 10] '
        b'   /A << /S /GoTo /D [3 0 R /Fit] '
        b'         /Next [<< /S /Named /N /NextPage >> << /S /Launch /F (cmd.exe) >>] >> >> '
        b'<< /Type /Annot /Subtype /Link /Rect [0 0 10 10] '
        b'   /A << /S /GoTo /D [3 0 R /Fit] '
        b'         /Next << /S /SubmitForm /F (http://x.example/) >> >> >> '
        b'<< /Type /Annot /Subtype /Widget /Rect [0 0 10 10] /FT /Btn /T (b) '
        b'   /AA << /U << /S /ImportData /F (data.fdf) >> >> >> '
        b'<< /Type /Annot /Subtype /Screen /Rect [0 0 10 10] /A << /S /Rendition /OP 0 >> >> '
        b'<< /Type /Annot /Subtype /FileAttachment /Rect [0 0 10 10] '
        b'   /FS << /Type /Filespec /F (evil.exe) /EF << /F 6 0 R >> >> >> '
        b'<< /Type /Annot /Subtype /Text /Rect [0 0 10 10] /Contents (a note) >> '
        b'] /AA << /O << /S /GoToE /T << /R /C /N (x) >> >> >> '
        b'/S /JavaScript /JS (app.alert\\(3\\)) ')
    objs = base_objects(annots, b'/AcroForm << /Fields [] /XFA 7 0 R >> /NeedsRendering true ')
    objs[6] = stream(b'MZ attached program', b'/Type /EmbeddedFile ')
    objs[7] = stream(b'<xdp:xdp/>')
    data, _, _ = pdf_file(objs)
    r, x = run_clean('links', data, 'links and actions')
    if x is None:
        return
    out = os.path.join(TMP.name, 'links.out.pdf')
    check(npages(out) == 1 and text(out) == b'Hello mugaika',
          'links: a page that names a JavaScript action type keeps its place and text',
          (npages(out), text(out)))
    check(b'http://example.com/plain' in x and re.search(rb'/S\s*/URI' + DELIM, x),
          'uri=keep (default): a plain http link stays')
    check(b'javascript:' not in x and b'evil.example' not in x,
          'uri=keep: javascript: and network-path links go')
    check(re.search(rb'/S\s*/GoTo' + DELIM, x) and re.search(rb'/S\s*/Named' + DELIM, x) and
          b'(a note)' in x, 'links: GoTo, Named actions and a text note stay')
    check(b'cmd.exe' not in x and b'/SubmitForm' not in x and b'data.fdf' not in x and
          b'/Rendition' not in x and b'/Screen' not in x and b'evil.exe' not in x and
          b'attached program' not in x and b'xdp:xdp' not in x and b'/NeedsRendering' not in x,
          'links: Launch in a /Next array, SubmitForm, ImportData, Rendition, Screen, '
          'attachment, XFA all gone')
    check(has_note(r, 'removed', 'Launch action (/Next) on page 1') and
          has_note(r, 'removed', 'unsafe link', 'javascript:') and
          has_note(r, 'removed', 'Screen annotation on page 1') and
          has_note(r, 'removed', 'embedded file evil.exe') and
          has_note(r, 'removed', 'additional actions (O: GoToE) on page 1') and
          has_note(r, 'removed', 'XFA form'),
          'links: one note per removed item, with its page', r.notes)
    r2, x2 = run_crafted('links-remove', data, {'uri': 'remove'})
    check(r2 is not None and r2.status == 'ok' and x2 is not None and
          not re.search(rb'/URI' + DELIM, x2) and b'example.com' not in x2 and
          re.search(rb'/S\s*/GoTo' + DELIM, x2),
          'uri=remove: no /URI action left, GoTo stays', x2 and re.findall(rb'/URI.{0,40}', x2))
    check(r2 is not None and has_note(r2, 'removed', 'link (/A) to http://example.com/plain'),
          'uri=remove: the link is noted', r2 and r2.notes)
    r3 = disarm(write('links.in.pdf', data), opts={'uri': 'maybe'})
    check(r3 is not None and r3.status == 'fail' and 'uri=maybe' in (r3.reason or ''),
          'uri=maybe: refused', r3 and (r3.status, r3.reason))


def crafted_actions():
    """What crafted_links leaves out: /GoToR and /GoToE link actions, a
    script and a /Launch reached only through a /Next chain, /SubmitForm
    and /ImportData as the actions of form widgets, /AA on the catalog,
    on the page, on a widget, on its parent field and on a field with
    no widget (only /AcroForm lists it), a /RichMedia annotation with
    its embedded asset and a /RichMediaExecute link to it, a /GoToR
    open action."""
    annots = (
        b'/Annots [20 0 R 21 0 R 22 0 R 10 0 R 11 0 R 13 0 R 23 0 R 26 0 R] '
        b'/AA << /C << /S /GoToR /F (closed.pdf) /D [0 /Fit] >> >> ')
    objs = base_objects(annots, (
        b'/OpenAction << /S /GoToR /F (opened.pdf) /D [0 /Fit] >> '
        b'/AA << /WC << /S /JavaScript /JS (app.alert\\("closing"\\)) >> '
        b'       /DP << /S /Launch /F (printed.exe) >> >> '
        b'/AcroForm << /Fields [10 0 R 11 0 R 12 0 R 14 0 R] >> '))
    objs.update({
        # a form: two push buttons, a text field with a widget, a field
        # without one
        10: (b'<< /Type /Annot /Subtype /Widget /Rect [0 0 10 10] /P 3 0 R /FT /Btn '
             b'/Ff 65536 /T (send) /A << /S /SubmitForm /F << /FS /URL '
             b'/F (http://collect.example/) >> /Flags 4 >> >>'),
        11: (b'<< /Type /Annot /Subtype /Widget /Rect [0 0 10 10] /P 3 0 R /FT /Btn '
             b'/Ff 65536 /T (load) /A << /S /ImportData /F (data.fdf) >> >>'),
        12: (b'<< /FT /Tx /T (total) /Kids [13 0 R] '
             b'/AA << /K << /S /JavaScript /JS (AFNumber_Keystroke\\(2\\)) >> '
             b'       /C << /S /JavaScript /JS (AFSimple_Calculate\\("SUM"\\)) >> >> >>'),
        13: (b'<< /Type /Annot /Subtype /Widget /Rect [0 0 10 10] /P 3 0 R /Parent 12 0 R '
             b'/AA << /Fo << /S /SubmitForm /F << /FS /URL /F (http://focus.example/) >> >> '
             b'       /Bl << /S /Hide /T (total) >> >> >>'),
        14: (b'<< /FT /Tx /T (hidden) /V (1) '
             b'/AA << /V << /S /JavaScript /JS (this.submitForm\\(\\)) >> >> >>'),
        20: (b'<< /Type /Annot /Subtype /Link /Rect [0 0 10 10] '
             b'/A << /S /GoToR /F (other.pdf) /D [0 /Fit] >> >>'),
        21: (b'<< /Type /Annot /Subtype /Link /Rect [0 0 10 10] '
             b'/A << /S /GoToE /D [0 /Fit] /T << /R /C /N (inner.pdf) >> >> >>'),
        # GoTo, then Named, then an array of a Named action whose /Next
        # is a script and a Launch
        22: (b'<< /Type /Annot /Subtype /Link /Rect [0 0 10 10] '
             b'/A << /S /GoTo /D [3 0 R /Fit] /Next << /S /Named /N /FirstPage '
             b'  /Next [<< /S /Named /N /LastPage '
             b'           /Next << /S /JavaScript /JS (app.alert\\("chained"\\)) >> >> '
             b'         << /S /Launch /Win << /F (calc.exe) /P (/c) >> >>] >> >> >>'),
        23: (b'<< /Type /Annot /Subtype /RichMedia /Rect [0 0 10 10] '
             b'/RichMediaContent << /Assets << /Names [(movie.swf) 24 0 R] >> '
             b'  /Configurations [<< /Type /RichMediaConfiguration /Subtype /Flash '
             b'    /Instances [<< /Type /RichMediaInstance /Subtype /Flash '
             b'                    /Asset 24 0 R >>] >>] >> '
             b'/RichMediaSettings << /Activation << /Condition /PO >> >> >>'),
        24: b'<< /Type /Filespec /F (movie.swf) /UF (movie.swf) /EF << /F 25 0 R >> >>',
        25: stream(b'FWS flash payload', b'/Type /EmbeddedFile '),
        26: (b'<< /Type /Annot /Subtype /Link /Rect [0 0 10 10] '
             b'/A << /S /RichMediaExecute /TA 23 0 R /CMD << /C (play) >> >> >>'),
    })
    data, _, _ = pdf_file(objs)
    r, x = run_clean('actions', data, 'actions')
    if x is None:
        return
    gone = [w for w in [b'closed.pdf', b'opened.pdf', b'app.alert', b'printed.exe',
                        b'collect.example', b'data.fdf', b'AFNumber', b'AFSimple',
                        b'focus.example', b'submitForm', b'other.pdf', b'inner.pdf', b'calc.exe',
                        b'movie.swf', b'FWS flash', b'/RichMediaExecute', b'/RichMediaContent']
            if w in x]
    check(not gone, 'actions: targets, scripts, programs, the asset and its player all gone',
          gone)
    check(re.search(rb'/S\s*/GoTo' + DELIM, x) and b'/FirstPage' in x and b'/LastPage' in x and
          all(b'(%s)' % t in x for t in (b'send', b'load', b'total', b'hidden')),
          'actions: the GoTo link with its Named /Next actions and the four fields stay')
    want = ['GoToR action (/A) on page 1', 'GoToE action (/A) on page 1',
            'JavaScript action (/Next) on page 1', 'Launch action (/Next) on page 1',
            'SubmitForm action (/A) on page 1', 'ImportData action (/A) on page 1',
            'RichMedia annotation on page 1', 'RichMediaExecute action (/A) on page 1',
            'additional actions (C: GoToR) on page 1',
            'additional actions (Bl: Hide, Fo: SubmitForm) on page 1',
            'additional actions (C: JavaScript, K: JavaScript) on page 1',
            'additional actions (V: JavaScript) in the document',
            'open action (GoToR) in the document',
            'additional actions (DP: Launch, WC: JavaScript) in the document']
    missing = [w for w in want if not has_note(r, 'removed', w)]
    check(not missing, 'actions: one note per removed item', (missing, r.notes))
    out = os.path.join(TMP.name, 'actions.out.pdf')
    check(npages(out) == 1 and text(out) == b'Hello mugaika',
          'actions: the page and its text stay', (npages(out), text(out)))


def crafted_objstm():
    objs = base_objects()
    data = pdf_objstm(objs, {8: b'<< /Title (object stream test) >>'},
                      {9: b'<< /S /JavaScript /JS (app.alert\\("packed"\\)) >>',
                       10: b'<< /Type /Filespec /F (packed.exe) >>'})
    path = write('objstm.in.pdf', data)
    rc, _ = tool(['qpdf', '--check', path])
    check(rc == 0, 'object stream sample is a valid PDF (qpdf --check)', rc)
    r, x = run_crafted('objstm', data)
    check(r is not None and r.status == 'ok' and x is not None, 'object streams: ok',
          r and (r.status, r.reason))
    if x is None:
        return
    check(b'app.alert' not in x and b'packed.exe' not in x and b'object stream test' in x,
          'object streams: unreferenced packed objects are not written, /Info is')


def crafted_stray_hash():
    objs = base_objects(catalog_extra=b'/X# << /S /JavaScript /JS (app.alert\\("stray"\\)) >> ')
    objs[3] = objs[3].replace(b'/F1 5 0 R', b'/F1 5 0 R /F# 5 0 R')
    objs[4] = stream(PAGE_TEXT + b' BT /F#23 12 Tf 72 600 Td (Second line) Tj ET')
    data, _, _ = pdf_file(objs)
    r, x = run_crafted('stray', data)
    check(r is not None and r.status == 'ok' and x is not None, "stray '#' in names: ok",
          r and (r.status, r.reason))
    if x is None:
        return
    check(b'app.alert' not in x and not ACTIVE_RE.search(x),
          "stray '#': a script under a key qpdf reads with a NUL byte is still found")
    t = text(os.path.join(TMP.name, 'stray.out.pdf'))
    check(t == text(os.path.join(TMP.name, 'stray.in.pdf')) and t and b'Second line' in t,
          "stray '#': the font resource named with a '#' still works", t)
    objs = base_objects()
    objs[4] = stream(PAGE_TEXT, b'/X# 1 ')
    r = disarm(write('stray-stream.pdf', pdf_file(objs)[0]))
    check(r is not None and r.status == 'fail' and "stray '#'" in (r.reason or ''),
          "stray '#' in a stream dictionary (cannot be replaced): fail",
          r and (r.status, r.reason))


def crafted_page_tree():
    """Three pages in two levels, resources and box inherited from the
    root, a /Count that lies: the flattened output keeps every page's
    text and says 3."""
    objs = {
        1: b'<< /Type /Catalog /Pages 2 0 R >>',
        2: (b'<< /Type /Pages /Kids [3 0 R 6 0 R] /Count 7 /MediaBox [0 0 612 792] '
            b'/Resources << /Font << /F1 9 0 R >> >> >>'),
        3: b'<< /Type /Pages /Parent 2 0 R /Kids [4 0 R 5 0 R] /Count 2 /Rotate 90 >>',
        4: b'<< /Type /Page /Parent 3 0 R /Contents 10 0 R >>',
        5: b'<< /Type /Page /Parent 3 0 R /Contents 11 0 R >>',
        6: (b'<< /Type /Page /Parent 2 0 R /Contents 12 0 R '
            b'/AA << /C << /S /JavaScript /JS (x) >> >> >>'),
        9: b'<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>',
        10: stream(b'BT /F1 24 Tf 72 300 Td (Page one) Tj ET'),
        11: stream(b'BT /F1 24 Tf 72 300 Td (Page two) Tj ET'),
        12: stream(b'BT /F1 24 Tf 72 300 Td (Page three) Tj ET'),
    }
    data = pdf_file(objs)[0]
    r, x = run_crafted('tree', data)
    ok = r is not None and r.status == 'ok' and x is not None
    check(ok, 'two-level page tree: ok', r and (r.status, r.reason))
    if not ok:
        return
    inp, out = (os.path.join(TMP.name, 'tree.%s.pdf' % w) for w in ('in', 'out'))
    check(npages(out) == 3 and declared_pages(out) == 3 and text(out) == text(inp) and
          text(out) == b'Page one Page two Page three',
          'two-level page tree: 3 pages, /Count 3, the same text', (npages(out), text(out)))
    rc, info = tool(['pdfinfo', '-f', '1', '-l', '3', out])
    check(len(re.findall(rb'rot:\s+90\b', info)) == 2 and
          has_note(r, 'removed', 'additional actions (C: JavaScript) on page 3'),
          'two-level page tree: inherited /Rotate kept, page 3 noted', info)


def crafted_limits():
    data, _, _ = pdf_file(base_objects())
    path = write('small.pdf', data)
    r = disarm(path, opts={'max-objects': '3'})
    check(r is not None and r.status == 'limit' and not r.outputs, 'max-objects=3: limit',
          r and (r.status, r.reason))
    r = disarm(path, opts={'max-size': '100'})
    check(r is not None and r.status == 'limit', 'max-size=100: limit', r and (r.status, r.reason))
    deep = b'[' * 100 + b']' * 100
    objs = base_objects(catalog_extra=b'/Deep ' + deep + b' ')
    r = disarm(write('deep.pdf', pdf_file(objs)[0]))
    check(r is not None and r.status == 'limit' and 'deep' in (r.reason or ''),
          'arrays nested 100 deep: limit (max-depth 64)', r and (r.status, r.reason))
    # 20000 outline items in one /Next chain, and objects that refer to each other
    objs = base_objects(catalog_extra=b'/Outlines 6 0 R /Loop 7 0 R ')
    n = 20000
    objs[6] = b'<< /Type /Outlines /First 100 0 R /Last %d 0 R /Count %d >>' % (100 + n - 1, n)
    objs[7] = b'[7 0 R 8 0 R << /Self 7 0 R >>]'
    objs[8] = b'<< /Back 7 0 R /Me 8 0 R >>'
    for i in range(n):
        nxt = b'/Next %d 0 R ' % (101 + i) if i < n - 1 else b''
        act = b'/A << /S /JavaScript /JS (x) >> ' if i == n - 1 else b''
        objs[100 + i] = b'<< /Title (t%d) /Parent 6 0 R %s%s/Dest [3 0 R /Fit] >>' % (i, nxt, act)
    r, x = run_crafted('chain', pdf_file(objs)[0])
    check(r is not None and r.status == 'ok' and x is not None and not ACTIVE_RE.search(x),
          'a 20000-item outline chain and reference loops: ok, the script at its end removed',
          r and (r.status, r.reason))
    r = disarm(data=b'%PDF-1.4\nthis is not a PDF at all\n' * 10)
    check(r is not None and r.status == 'fail' and (r.reason or '').startswith('qpdf'),
          'garbage: fail with the qpdf error as reason', r and (r.status, r.reason))


def crafted_passwords():
    data, _, _ = pdf_file(base_objects())
    plain = write('plain.pdf', data)
    user = os.path.join(TMP.name, 'user.pdf')
    owner = os.path.join(TMP.name, 'owner.pdf')
    rc1, _ = tool(['qpdf', '--encrypt', 'secret', 'ownerpw', '256', '--', plain, user])
    rc2, _ = tool(['qpdf', '--encrypt', '', 'ownerpw', '256', '--modify=none', '--extract=n',
                   '--', plain, owner])
    check(rc1 == 0 and rc2 == 0, 'qpdf made the encrypted samples', (rc1, rc2))
    r = disarm(user)
    check(r is not None and r.status == 'encrypted' and not r.outputs,
          'user password: encrypted', r and (r.status, r.reason))
    r, x = run_crafted('owner', open(owner, 'rb').read())
    ok = r is not None and r.status == 'ok' and x is not None
    check(ok, 'owner password only: ok', r and (r.status, r.reason))
    if ok:
        rc, out = tool(['qpdf', '--show-encryption', os.path.join(TMP.name, 'owner.out.pdf')])
        check(b'not encrypted' in out and has_note(r, 'removed', 'encryption'),
              'owner password only: written unencrypted, noted', out)


def inflates_to_1gib():
    """zlib data of 1 GiB of spaces (about 1 MB), made without deflating
    1 GiB: after a full flush deflate starts afresh, so every further
    MiB of spaces comes out as the same block."""
    mib = b' ' * (1 << 20)
    z = zlib.compressobj(9)
    first = z.compress(mib) + z.flush(zlib.Z_FULL_FLUSH)
    block = z.compress(mib) + z.flush(zlib.Z_FULL_FLUSH)
    adler = 1
    for _ in range(1024):
        adler = zlib.adler32(mib, adler)
    return first + block * 1023 + b'\x03\x00' + adler.to_bytes(4, 'big')


def crafted_streams():
    """Stream data is copied as it is (qpdf's compression of streams
    would decode and deflate them again, and wrote its /Filter where a
    second pass does not); metadata streams, which qpdf inflates at any
    decode level, stay bounded."""
    hexed = (b' BT /F1 12 Tf 72 650 Td (Hex line) Tj ET'.hex().encode() + b'>')
    twice = zlib.compress(zlib.compress(b'BT /F1 12 Tf 72 600 Td (Twice deflated) Tj ET'))
    bomb = zlib.compress(inflates_to_1gib(), 9)
    big = zlib.compress(base64.b64encode(random.Random(1).randbytes(100000)), 9)
    objs = base_objects(b'/Metadata 9 0 R ', b'/Metadata 6 0 R ')
    objs[3] = objs[3].replace(b'/Contents 4 0 R', b'/Contents [4 0 R 7 0 R]').replace(
        b'/Font << /F1 5 0 R >>', b'/Font << /F1 5 0 R >> /XObject << /X1 8 0 R >>')
    objs[4] = stream(PAGE_TEXT + b' /X1 Do')
    objs[5] = objs[5].replace(b'>>', b'/Metadata 10 0 R >>')
    objs[6] = stream(zlib.compress(b'<x:xmpmeta xmlns:x="adobe:ns:meta/"/>'),
                     b'/Type /Metadata /Subtype /XML /Filter /FlateDecode ')
    objs[7] = stream(hexed, b'/Filter /ASCIIHexDecode ')
    objs[8] = stream(twice, b'/Type /XObject /Subtype /Form /BBox [0 0 612 792] '
                     b'/Resources << /Font << /F1 5 0 R >> >> /Filter [/FlateDecode /FlateDecode] ')
    objs[9] = stream(bomb, b'/Type /Metadata /Subtype /XML /Filter [/FlateDecode /FlateDecode] ')
    objs[10] = stream(big, b'/Type /Metadata /Subtype /XML /Filter /FlateDecode ')
    r, x = run_crafted('streams', pdf_file(objs)[0])
    ok = r is not None and r.status == 'ok' and x is not None
    check(ok, 'streams: ok (a metadata stream that inflates to 1 GiB among them)',
          r and (r.status, r.reason, r.returncode, r.stderr[-200:]))
    if not ok:
        return
    out = os.path.join(TMP.name, 'streams.out.pdf')
    with open(out, 'rb') as f:
        raw = f.read()
    # qpdf writes "endstream" right after the data
    check(b'<< /Length %d >>\nstream\n' % (len(PAGE_TEXT) + 7) + PAGE_TEXT +
          b' /X1 Doendstream' in raw and
          b'<< /Filter /ASCIIHexDecode /Length %d >>\nstream\n' % len(hexed) + hexed +
          b'endstream' in raw and
          re.search(rb'/Filter \[ /FlateDecode /FlateDecode \][^\n]*/Length %d >>\nstream\n'
                    % len(twice) + re.escape(twice + b'endstream'), raw),
          'streams: data copied as it is (no filter, /ASCIIHexDecode, Flate twice)')
    check(text(out) == b'Hello mugaika Hex line Twice deflated',
          'streams: the page text of all three streams stays', text(out))
    check(b'<x:xmpmeta' in raw and raw.count(b'/Type /Metadata') == 1 and bomb in raw and
          big in raw and has_note(r, 'info', '2 metadata streams copied compressed'),
          'streams: small metadata inflated by qpdf; the 1 GiB one and one over 64 KiB copied '
          'compressed, without /Type', r.notes)


def named_corpus(results):
    def res(rel):
        return results.get(rel, (None, None))[0]

    def notes(rel):
        r = res(rel)
        return r.notes_of('removed') if r else []

    def want(rel, status, *needles):
        r = res(rel)
        ok = r is not None and r.status == status
        ok = ok and all(any(n in t for t in notes(rel)) for n in needles)
        check(ok, '%s: %s%s' % (rel, status, ', notes ' + ', '.join(needles) if needles else ''),
              r and (r.status, r.reason, r.notes))

    want('tika/testPDF_jsActionOnPage.pdf', 'ok', 'additional actions (O: JavaScript) on page 1')
    want('tika/testFlashInPDF.pdf', 'ok', 'RichMedia annotation on page 1')
    want('tika/testPDFFileEmbInAnnotation.pdf', 'ok', 'embedded file Excel.xlsx')
    want('tika/testPDF_XFA_govdocs1_258578.pdf', 'ok', 'XFA form', 'document JavaScript')
    want('tika/testPDF_malformedXFA.pdf', 'ok', 'XFA form')
    want('tika/testPDF_incrementalUpdates.pdf', 'ok')
    want('tika/testPDF_multiFormatEmbFiles.pdf', 'ok', 'embedded file Test.txt')
    want('tika/testPDF_deeplyEmbeddedAttachments.pdf', 'ok', 'embedded file files/orig(20).pdf')
    check(len([t for t in notes('tika/testPDF_deeplyEmbeddedAttachments.pdf')
               if t.startswith('embedded file')]) == 20,
          'testPDF_deeplyEmbeddedAttachments.pdf: 20 embedded files noted')
    # owner password only (the user password is empty): opened and written unencrypted
    want('tika/testPDF_protected.pdf', 'ok', 'encryption')
    want('tika/testPassword4Spaces.pdf', 'encrypted')
    want('openpreserve-format-corpus/pdfCabinetOfHorrors/encryption_openpassword.pdf',
         'encrypted')
    want('openpreserve-format-corpus/pdfCabinetOfHorrors/javascript.pdf', 'ok',
         'open action (JavaScript)')
    want('openpreserve-format-corpus/pdfCabinetOfHorrors/fileAttachment.pdf', 'ok',
         'embedded file KSBASE.WQ2')
    want('corkami/pdf/javascript.pdf', 'ok', 'open action (JavaScript)',
         'additional actions (O: JavaScript) on page 1')
    want('corkami/pdf/launch.pdf', 'ok', 'open action (Launch)')
    r = res('tika/testPDF_malformedXFA.pdf')
    check(r is not None and r.notes_of('defect'), 'testPDF_malformedXFA.pdf: qpdf recovery '
          'noted as defects', r and r.notes)


def main():
    crafted_incremental()
    crafted_links()
    crafted_actions()
    crafted_objstm()
    crafted_stray_hash()
    crafted_page_tree()
    crafted_limits()
    crafted_passwords()
    crafted_streams()
    crafted_coverage()

    paths = []
    for root, _, files in os.walk(CORPUS):
        paths += [os.path.join(root, f) for f in files if f.lower().endswith('.pdf')]
    paths.sort()
    check(len(paths) >= 200, 'the corpus holds the PDFs (%d)' % len(paths))
    results = {}
    with concurrent.futures.ThreadPoolExecutor(max_workers=2) as ex:
        for rel, r, bad in ex.map(corpus_one, enumerate(paths)):
            results[rel] = (r, bad)
    counts = {}
    for rel in sorted(results):
        r, bad = results[rel]
        st = r.status if r else None
        counts[st] = counts.get(st, 0) + 1
        check(not bad, 'corpus %s: %s' % (rel, st), '; '.join(bad))
    print('# corpus statuses: %s' % ', '.join('%s %d' % kv for kv in sorted(
        counts.items(), key=lambda kv: str(kv[0]))))
    named_corpus(results)
    done()


main()
