#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
#
# Makes the charset test vectors: the *.txt conversion pairs in this
# directory and the case tables between the GENERATED markers in
# tests/unit/test_charset.c.
#
# Expected texts come from Python's own codecs (cp932, euc_jp,
# euc_jis_2004, iso2022_jp_*, ...), never from mugaika's decoder.
# ISO-2022-JP with the Microsoft extensions (CP50221) has no Python
# codec: it is built here from CP932 with the Shift_JIS -> JIS row/cell
# formula, and checked by converting back and decoding as CP932.
#
# Run from the top of the tree: python3 testdata/charset/gen.py
import os
import re
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
TEST_C = os.path.join(HERE, '..', '..', 'tests', 'unit', 'test_charset.c')

ESC = b'\x1b'


def sjis_to_jis(b1, b2):
    row = (b1 - (0x81 if b1 <= 0x9f else 0xc1)) * 2 + 1 + (1 if b2 >= 0x9f else 0)
    if b2 >= 0x9f:
        cell = b2 - 0x9e
    else:
        cell = b2 - 0x40 + 1 - (1 if b2 > 0x7f else 0)
    return bytes([row + 0x20, cell + 0x20])


def jis_to_sjis(j1, j2):
    row, cell = j1 - 0x20, j2 - 0x20
    s1 = (row + 1) // 2 + (0x80 if row <= 62 else 0xc0)
    if row % 2:
        s2 = cell + 0x3f + (1 if cell >= 64 else 0)
    else:
        s2 = cell + 0x9e
    return bytes([s1, s2])


# CP932 IBM extension (FA40-FC4B) -> the NEC-selected code (ED40-EEFC)
# with the same character, as CP50221 writes it.
NEC_SEL = {}
for _l in (0xed, 0xee):
    for _t in list(range(0x40, 0x7f)) + list(range(0x80, 0xfd)):
        try:
            NEC_SEL.setdefault(bytes([_l, _t]).decode('cp932'), bytes([_l, _t]))
        except UnicodeDecodeError:
            pass


def cp50221(text):
    """ISO-2022-JP as Outlook writes it: JIS X 0208 through CP932, NEC
    row 13 and NEC-selected IBM rows, half-width kana with ESC ( I."""
    out = bytearray()
    mode = 'ascii'
    for ch in text:
        cp = ord(ch)
        if cp < 0x80:
            want, code = 'ascii', bytes([cp])
        elif 0xff61 <= cp <= 0xff9f:
            want, code = 'kana', bytes([cp - 0xff61 + 0x21])
        else:
            sj = NEC_SEL.get(ch) or ch.encode('cp932')
            if sj[0] >= 0xfa:
                sj = NEC_SEL[ch]
            want, code = 'kanji', sjis_to_jis(sj[0], sj[1])
        if want != mode:
            out += {'ascii': b'\x1b(B', 'kana': b'\x1b(I', 'kanji': b'\x1b$B'}[want]
            mode = want
        out += code
    if mode != 'ascii':
        out += b'\x1b(B'
    data = bytes(out)
    assert decode_cp50221(data) == text, text
    return data


def decode_cp50221(data):
    """Independent check of cp50221(): JIS -> Shift_JIS -> cp932 codec."""
    out = []
    i, mode = 0, 'ascii'
    while i < len(data):
        if data[i] == 0x1b:
            seq = data[i:i + 3]
            mode = {b'\x1b(B': 'ascii', b'\x1b(J': 'ascii', b'\x1b(I': 'kana',
                    b'\x1b$B': 'kanji', b'\x1b$@': 'kanji'}[seq]
            i += 3
        elif mode == 'kanji' and data[i] > 0x20:
            out.append(jis_to_sjis(data[i], data[i + 1]).decode('cp932'))
            i += 2
        elif mode == 'kana' and data[i] > 0x20:
            out.append(chr(0xff61 + data[i] - 0x21))
            i += 1
        else:
            out.append(chr(data[i]))
            i += 1
    return ''.join(out)


def c_bytes(b, indent=8, width=100):
    """C string literal(s) for bytes, split to fit width."""
    pieces = []
    cur = ''
    prev_hex = False
    for x in b:
        c = chr(x)
        if c == '"' or c == '\\':
            s, hexesc = '\\' + c, False
        elif c == '?':
            s, hexesc = '\\?', False
        elif 0x20 <= x < 0x7f:
            s, hexesc = c, False
            if prev_hex and c in '0123456789abcdefABCDEF':
                s = '" "' + c
        elif c == '\n':
            s, hexesc = '\\n', False
        elif c == '\r':
            s, hexesc = '\\r', False
        else:
            s, hexesc = '\\x%02x' % x, True
        if len(cur) + len(s) > width - indent - 24:
            pieces.append(cur)
            cur = s.replace('" "', '')
        else:
            cur += s
        prev_hex = hexesc
    pieces.append(cur)
    return ('\n' + ' ' * indent).join('"%s"' % p for p in pieces)


def c_comment(text):
    t = text.replace('*/', '* /').replace('\r', '\\r').replace('\n', '\\n')
    t = t.replace('\ufffd', '<FFFD>').replace('\x1b', '<ESC>')
    t = ''.join(ch if ord(ch) >= 0x20 else '<%02X>' % ord(ch) for ch in t)
    return t[:70]


# ----------------------------------------------------------------------
# Conversion cases: (name, label, input bytes, expected text,
# replacements, canonical name in use)

def jis_nec():
    return cp50221('①②③ ㈱ Ⅰ № ⑳ Ⅹ ㍉')


CASES = []


def case(name, label, data, want, repl, cname):
    CASES.append((name, label, data, want, repl, cname))


IPHONE = b'\x1b$B4]?t;z$N%F%9%H$G$9-"|r\x1b(B'  # jpmobile iphone-circled-numbers-in-jis.eml

case('jis/nec-row13', 'ISO-2022-JP', jis_nec(), '①②③ ㈱ Ⅰ № ⑳ Ⅹ ㍉', 0, 'iso-2022-jp')
case('jis/cp932-mapping', 'iso-2022-jp', cp50221('～－￠￡￢∥'), '～－￠￡￢∥', 0, 'iso-2022-jp')
assert cp50221('～') == b'\x1b$B!A\x1b(B'  # 0x2141 -> SJIS 0x8160 -> U+FF5E
case('jis/ibm-ext', 'iso-2022-jp', cp50221('髙橋様と﨑'), '髙橋様と﨑', 0, 'iso-2022-jp')
case('jis/mixed-lines', 'iso-2022-jp',
     cp50221('件名: 日本語テキスト ①と髙\r\n2行目 abc ～\r\n'),
     '件名: 日本語テキスト ①と髙\r\n2行目 abc ～\r\n', 0, 'iso-2022-jp')
case('jis/iphone-circled', 'iso-2022-jp', IPHONE, decode_cp50221(IPHONE), 0, 'iso-2022-jp')
case('jis/kana-esc', 'iso-2022-jp', cp50221('ｱｲｳｴｵ ﾃﾞｰﾀ｡'), 'ｱｲｳｴｵ ﾃﾞｰﾀ｡', 0, 'iso-2022-jp')
assert b'\x1b(I12\x1b(B'.decode('iso2022_jp_ext') == 'ｱｲ'
case('jis/kana-so-si', 'iso-2022-jp', b'abc\x0e6@6E\x0fdef', 'abcｶﾀｶﾅdef', 0, 'iso-2022-jp')
case('jis/kana-jis8', 'iso-2022-jp', b'\x1b$B$"\x1b(B\xb1\xb2 ok', 'あｱｲ ok', 0, 'iso-2022-jp')
case('jis/roman-as-ascii', 'iso-2022-jp', b'\x1b(Jc:\\dir ~x\x1b(B', 'c:\\dir ~x', 0, 'iso-2022-jp')
_x0212 = '丂丄é'.encode('iso2022_jp_1')
assert _x0212.startswith(b'\x1b$(D')
case('jis/x0212', 'iso-2022-jp-1', _x0212, _x0212.decode('iso2022_jp_1'), 0, 'iso-2022-jp')
_x0213 = '俱か゚𠂉'.encode('iso2022_jp_2004')
assert b'\x1b$(Q' in _x0213 and b'\x1b$(P' in _x0213
case('jis/x0213', 'ISO-2022-JP-3', _x0213, _x0213.decode('iso2022_jp_2004'), 0, 'iso-2022-jp')
_x0213o = _x0213.replace(b'\x1b$(Q', b'\x1b$(O')
case('jis/x0213-2000', 'iso-2022-jp', _x0213o, '俱か゚𠂉', 0, 'iso-2022-jp')
_jp2 = '们한'.encode('iso2022_jp_2')
assert _jp2.decode('iso2022_jp_2') == '们한'
case('jis/jp2', 'iso-2022-jp-2', _jp2 + b' \x1b.A\x1bNi\x1b$A' + '文'.encode('gb2312').translate(
    bytes(range(128)) * 2) + b'\x1b(B', '们한 é文', 0, 'iso-2022-jp')
case('jis/jp2-greek', 'iso-2022-jp-2', b'\x1b.F\x1bNa\x1bNw', 'αχ', 0, 'iso-2022-jp')
assert b'\xe1\xf7'.decode('iso8859_7') == 'αχ'
case('jis/esc-1990', 'csISO2022JP', b'\x1b&@\x1b$B$"\x1b(B', 'あ', 0, 'iso-2022-jp')
case('jis/esc-1978', 'cp50221', b'\x1b$@$"\x1b(B', 'あ', 0, 'iso-2022-jp')
case('jis/bad-escape', 'iso-2022-jp', b'a\x1b$Zb', 'a\ufffd$Zb', 1, 'iso-2022-jp')
case('jis/esc-esc', 'iso-2022-jp', b'a\x1b\x1b$B$"\x1b(Bb', 'a\ufffdあb', 1, 'iso-2022-jp')
case('jis/truncated-lead', 'iso-2022-jp', b'\x1b$B$"$', 'あ\ufffd', 1, 'iso-2022-jp')
case('jis/truncated-escape', 'iso-2022-jp', b'ab\x1b$', 'ab\ufffd$', 1, 'iso-2022-jp')
case('jis/truncated-escape-kanji', 'iso-2022-jp', b'\x1b$B$"\x1b(', 'あ\ufffd\ufffd', 2,
     'iso-2022-jp')
case('jis/unassigned-row', 'iso-2022-jp', b'\x1b$B)!\x1b(Bx', '\ufffdx', 1, 'iso-2022-jp')
case('jis/newline-in-kanji', 'iso-2022-jp', b'\x1b$B$"\r\n$$\x1b(B', 'あ\r\nい', 0,
     'iso-2022-jp')
case('jis/space-after-lead', 'iso-2022-jp', b'\x1b$B$ $"\x1b(B', '\ufffd あ', 1, 'iso-2022-jp')
case('jis/kana-out-of-range', 'iso-2022-jp', b'\x1b(I1`\x1b(B', 'ｱ\ufffd', 1, 'iso-2022-jp')
case('jis/ss2-without-g2', 'iso-2022-jp', b'\x1bNa', '\ufffda', 1, 'iso-2022-jp')

_sj = '①髙ｱｲｳ日本語～﨑'
for lab in ('Shift_JIS', 'x-sjis', 'ms_kanji', 'windows-31j', 'CP932', ' "sjis" '):
    case('sjis/label ' + lab.strip(' "'), lab, _sj.encode('cp932'), _sj, 0, 'cp932')
case('sjis/invalid', 'shift_jis', b'a\x85\x40b\x82', b'a\x85\x40b\x82'.decode('cp932', 'replace'),
     2, 'cp932')
case('sjis/user-defined', 'shift_jis', b'\xf0\x40', b'\xf0\x40'.decode('cp932'), 0, 'cp932')

_euc = b'\xad\xa1' + 'あｱ丂日本'.encode('euc_jp')
assert b'\xad\xa1'.decode('euc_jis_2004') == '①' and b'\x8f\xb0\xa1' in _euc
case('eucjp/ms', 'EUC-JP', _euc, '①あｱ丂日本', 0, 'euc-jp')
case('eucjp/label x-euc-jp', 'x-euc-jp', _euc, '①あｱ丂日本', 0, 'euc-jp')
case('eucjp/invalid', 'euc-jp', b'\xa4\xa2\xa4x', 'あ\ufffdx', 1, 'euc-jp')

case('utf8/basic', 'UTF-8', '日本語 café'.encode(), '日本語 café', 0, 'utf-8')
case('utf8/label utf8', 'utf8', '日本語 café'.encode(), '日本語 café', 0, 'utf-8')
case('utf8/bom', 'utf-8', b'\xef\xbb\xbfabc', 'abc', 0, 'utf-8')
_bad = '日本語のテキストです、'.encode() + b'\xed\xa0\x80' + b'\xf0\x9f\x98x\xc0\xaf' + \
    'まだ続きます。'.encode()
_badt = _bad.decode('utf-8', 'replace')
case('utf8/invalid', 'utf-8', _bad, _badt, _badt.count('\ufffd'), 'utf-8')
case('utf8/truncated', 'utf-8', '日本語のテキスト'.encode() + b'\xe3\x81',
     '日本語のテキスト\ufffd', 1,
     'utf-8')

case('latin/iso-8859-1', 'ISO-8859-1', b'caf\xe9 na\xefve \x93q\x94',
     b'caf\xe9 na\xefve \x93q\x94'.decode('cp1252'), 0, 'windows-1252')
case('latin/latin1', 'latin1', b'\xc0 \xff', '\u00c0 \u00ff', 0, 'windows-1252')
case('latin/windows-1252', 'windows-1252', b'\x80 \x85 \x96 \x9f', '€ … – Ÿ', 0, 'windows-1252')
case('latin/windows-1252-hole', 'cp1252', b'a\x81b', 'a\ufffdb', 1, 'windows-1252')
case('latin/iso-8859-2', 'iso_8859-2', 'Zażółć gęślą jaźń'.encode('iso8859_2'),
     'Zażółć gęślą jaźń', 0, 'iso-8859-2')
case('latin/iso-8859-15', 'ISO-8859-15', '€ œ Ÿ'.encode('iso8859_15'), '€ œ Ÿ', 0, 'iso-8859-15')
case('cyrillic/koi8-r', 'KOI8-R', 'Привет, мир'.encode('koi8_r'), 'Привет, мир', 0, 'koi8-r')
case('cyrillic/windows-1251', 'windows-1251', 'Привет'.encode('cp1251'), 'Привет', 0,
     'windows-1251')
case('greek/iso-8859-7', 'iso-8859-7', 'Καλημέρα'.encode('iso8859_7'), 'Καλημέρα', 0, 'iso-8859-7')
case('cjk/gb2312', 'GB2312', '中文简体'.encode('gbk'), '中文简体', 0, 'gb18030')
case('cjk/gbk', 'gbk', '中文簡體'.encode('gbk'), '中文簡體', 0, 'gb18030')
case('cjk/gb18030', 'GB18030', '中文𠀀'.encode('gb18030'), '中文𠀀', 0, 'gb18030')
case('cjk/big5', 'Big5', '中文繁體'.encode('big5'), '中文繁體', 0, 'big5')
case('cjk/euc-kr', 'EUC-KR', '한국어'.encode('euc_kr'), '한국어', 0, 'cp949')
case('cjk/ks_c_5601-1987', 'ks_c_5601-1987', '똠방각하'.encode('cp949'), '똠방각하', 0, 'cp949')
case('unicode/utf-7', 'UTF-7', '日本語 a+b'.encode('utf_7'), '日本語 a+b', 0, 'utf-7')
case('unicode/utf-16-bom-le', 'utf-16', '\ufeffab日本'.encode('utf_16_le'), 'ab日本', 0, 'utf-16')
case('unicode/utf-16-bom-be', 'UTF-16', '\ufeffab日本'.encode('utf_16_be'), 'ab日本', 0, 'utf-16')
case('unicode/utf-16-nobom-le', 'utf-16', 'ab日本'.encode('utf_16_le'), 'ab日本', 0, 'utf-16')
case('unicode/utf-16-nobom-be', 'utf-16', '日本ab'.encode('utf_16_be'), '日本ab', 0, 'utf-16')
case('unicode/utf-16le', 'UTF-16LE', '\ufeffab'.encode('utf_16_le'), 'ab', 0, 'utf-16le')
case('unicode/utf-16be', 'utf-16be', 'a😀'.encode('utf_16_be'), 'a😀', 0, 'utf-16be')
case('unicode/utf-16-odd', 'utf-16', b'\xff\xfea\x00b', 'a\ufffd', 1, 'utf-16')
case('unicode/utf-16-lone-surrogate', 'utf-16le', b'\x00\xd8a\x00',
     b'\x00\xd8a\x00'.decode('utf_16_le', 'replace'), 1, 'utf-16le')
case('unicode/utf-32', 'utf-32', '\ufeffa日'.encode('utf_32_le'), 'a日', 0, 'utf-32')
case('unicode/utf-32be', 'UTF-32BE', 'a日'.encode('utf_32_be'), 'a日', 0, 'utf-32be')

# Mislabelled: the bytes contradict the label.
for lab, enc, cname, text in (
        ('us-ascii', 'cp932', 'cp932', '会議の日程について'),
        ('us-ascii', 'euc_jp', 'euc-jp', '会議の日程について'),
        ('iso-2022-jp', 'cp932', 'cp932', 'お見積もりのご依頼'),
        ('iso-2022-jp', 'euc_jp', 'euc-jp', 'お見積もりのご依頼'),
        ('iso-2022-jp', 'utf-8', 'utf-8', 'お見積もりのご依頼'),
        ('utf-8', 'euc_jp', 'euc-jp', '打ち合わせの件です'),
        ('utf-8', 'cp932', 'cp932', '打ち合わせの件です'),
        ('utf-8', 'cp1252', 'windows-1252', 'Crème brûlée à la française'),
        ('us-ascii', 'cp1252', 'windows-1252', 'Müller & Söhne, Köln'),
        ('us-ascii', 'utf-8', 'utf-8', 'Grüße aus 東京'),
        ('x-unknown', 'cp932', 'cp932', 'ご確認ください'),
        ('unknown-8bit', 'euc_jp', 'euc-jp', 'ご確認ください'),
        ('no-such-charset', 'cp932', 'cp932', 'ご確認ください'),
        (None, 'cp932', 'cp932', 'ご確認ください')):
    case('mislabel/%s as %s' % (enc, lab), lab, text.encode(enc), text, 0, cname)
case('mislabel/jis as us-ascii', 'us-ascii', cp50221('会議①の件'), '会議①の件', 0, 'iso-2022-jp')
case('mislabel/jis unlabelled', None, cp50221('会議①の件'), '会議①の件', 0, 'iso-2022-jp')
case('mislabel/ascii prefix', 'us-ascii', b'Hello world\r\n' + '日本語です。'.encode('cp932'),
     'Hello world\r\n日本語です。', 0, 'cp932')
case('mislabel/ascii with esc', 'us-ascii', b'a\x1b[1mb\x0ec', 'a\x1b[1mb\x0ec', 0, 'us-ascii')
case('mislabel/utf-8 one bad byte', 'utf-8', '日本語のテキスト'.encode() + b'\xff',
     '日本語のテキスト\ufffd', 1, 'utf-8')
case('mislabel/jis with 8-bit sjis', 'iso-2022-jp',
     cp50221('件名') + '本文です'.encode('cp932'), None, None, 'cp932')
case('empty/us-ascii', 'us-ascii', b'', '', 0, 'us-ascii')
case('empty/utf-16', 'utf-16', b'', '', 0, 'utf-16')
case('ascii/plain', 'us-ascii', b'plain text\r\n', 'plain text\r\n', 0, 'us-ascii')
case('ascii/iso-2022-jp', 'iso-2022-jp', b'plain text', 'plain text', 0, 'iso-2022-jp')
case('ascii/nul', None, b'a\x00b', 'a\x00b', 0, 'us-ascii')

# ----------------------------------------------------------------------
# Sniff cases: (bytes, expected)

SUBJECTS = ['会議の日程について', 'お見積もりのご依頼', '【重要】パスワード変更',
            'ｾｰﾙ開催中！お得です', 'Re: 打ち合わせの件', '株式会社①の請求書', '日本語',
            'ありがとう', 'テスト', '東京都千代田区丸の内', '新年のご挨拶', '本日の予定',
            'ご注文ありがとうございます', '第３四半期決算報告']
SNIFF = []
for s in SUBJECTS:
    SNIFF.append((s.encode('cp932'), 'cp932', s + ' (cp932)'))
    try:
        SNIFF.append((s.encode('euc_jp'), 'euc-jp', s + ' (euc-jp)'))
    except UnicodeEncodeError:
        SNIFF.append((s.encode('euc_jis_2004'), 'euc-jp', s + ' (euc-jp)'))
    SNIFF.append((s.encode(), 'utf-8', s + ' (utf-8)'))
    SNIFF.append((cp50221(s), 'iso-2022-jp', s + ' (jis)'))
for s in ('Crème brûlée à la française', 'Müller & Söhne', 'naïve café', 'Ελλάδα? no: “quotes”',
          'S’il vous plaît', 'año, señor'):
    try:
        SNIFF.append((s.encode('cp1252'), 'windows-1252', s + ' (cp1252)'))
    except UnicodeEncodeError:
        pass
SNIFF.append((b'plain ascii', 'us-ascii', 'plain'))
SNIFF.append((b'esc \x1b[0m only', 'us-ascii', 'ansi escape'))
SNIFF.append((b'\x1b(I12\x1b(B', 'iso-2022-jp', 'kana esc'))
SNIFF.append((b'\x1b$B$"\x1b(B\xb1\xb2', 'iso-2022-jp', 'jis with jis8 kana'))


def emit_cases():
    lines = ['/* clang-format off */', 'static const struct conv_case conv_cases[] = {']
    for name, label, data, want, repl, cname in CASES:
        lab = 'NULL' if label is None else '"%s"' % label.replace('"', '\\"')
        lines.append('    /* %s */' % c_comment(want if want is not None else '(sniffed)'))
        lines.append('    {"%s", %s,' % (name, lab))
        lines.append('        B(%s),' % c_bytes(data))
        if want is None:
            lines.append('        NULL, 0, 0, "%s"},' % cname)
        else:
            w = want.encode()
            lines.append('        B(%s),' % c_bytes(w))
            lines.append('        %d, "%s"},' % (repl, cname))
    lines.append('};')
    lines.append('')
    lines.append('static const struct sniff_case sniff_cases[] = {')
    for data, want, what in SNIFF:
        lines.append('    /* %s */' % c_comment(what))
        lines.append('    {B(%s), "%s"},' % (c_bytes(data), want))
    lines.append('};')
    lines.append('/* clang-format on */')
    return '\n'.join(lines) + '\n'


# ----------------------------------------------------------------------
# Conversion pairs: NAME.LABEL.txt with expected NAME.utf-8.txt

OUTLOOK = '''お世話になっております。㈱山田商事の髙橋です。
下記の件、ご確認ください。

①見積書（№１２３４）
②納品書 Ⅰ～Ⅲ
③請求書 ㈲﨑田工業 宛
ﾊﾝｶｸｶﾀｶﾅもOKです｡
電話：℡ ０３－１２３４－５６７８

以上、よろしくお願いいたします。
'''

MOBILE = '''ｹｰﾀｲからのﾒｰﾙです。
①　髙島屋で待ち合わせ～
明日１０時に駅前で。﨑さんも来ます。
'''

EUCMS = '''①〜⑳、㈱、Ⅰ、ｶﾀｶﾅ、丂丄丅、日本語のテキスト。
'''

X0213 = '''JIS X 0213 の文字: 俱 剝 𠮟 吞 噓 姸 屛 幷 瘦 繫、か゚ き゚、𠂉。
'''

X0212 = '''JIS X 0212 の文字: 丂 丄 丅 é ñ。
'''

PAIRS = [
    ('outlook-nec', 'iso-2022-jp', OUTLOOK, lambda t: cp50221(t)),
    ('mobile', 'shift_jis', MOBILE, lambda t: t.encode('cp932')),
    ('eucjp-ms', 'euc-jp', EUCMS, None),
    ('jisx0213', 'iso-2022-jp-2004', X0213, lambda t: t.encode('iso2022_jp_2004')),
    ('jisx0212', 'iso-2022-jp-1', X0212, lambda t: t.encode('iso2022_jp_1')),
    ('korean', 'euc-kr', '대한민국 서울특별시\n', lambda t: t.encode('euc_kr')),
    ('simplified', 'gb2312', '中华人民共和国\n', lambda t: t.encode('gb2312')),
    ('german', 'iso-8859-15', 'Grüße, Straße, 10 €\n', lambda t: t.encode('iso8859_15')),
    ('utf16', 'utf-16', '\ufeffUTF-16 日本語\n', lambda t: t.encode('utf_16_le')),
    ('mislabel-sjis', 'us-ascii', MOBILE, lambda t: t.encode('cp932')),
    ('mislabel-eucjp', 'iso-2022-jp', X0212.replace('é ñ', ''), lambda t: t.encode('euc_jp')),
    ('mislabel-jis', 'us-ascii', OUTLOOK, lambda t: cp50221(t)),
]


def euc_ms(text):
    out = bytearray()
    for ch in text:
        if '①' <= ch <= '⑳':
            out += bytes([0xad, 0xa1 + ord(ch) - ord('①')])
        elif ch == '㈱':
            out += b'\xad\xea'
        elif ch == 'Ⅰ':
            out += b'\xad\xb5'
        elif ch == '〜':
            out += b'\xa1\xc1'
        else:
            out += ch.encode('euc_jp')
    return bytes(out)


def write_pairs():
    for name, label, text, enc in PAIRS:
        if enc is None:
            data = euc_ms(text)
            # eucJP-ms row 13 is JIS X 0213's row 13 for these; the wave
            # dash 0xA1C1 is U+FF5E in eucJP-ms (Microsoft mapping).
            chk = data.decode('euc_jis_2004').replace('\u301c', '\uff5e')
            assert chk == text.replace('\u301c', '\uff5e'), (chk, text)
            text = text.replace('\u301c', '\uff5e')
        else:
            data = enc(text)
        want = text[1:] if text.startswith('\ufeff') else text
        with open(os.path.join(HERE, '%s.%s.txt' % (name, label)), 'wb') as f:
            f.write(data)
        with open(os.path.join(HERE, '%s.utf-8.txt' % name), 'wb') as f:
            f.write(want.encode())


def main():
    write_pairs()
    src = open(TEST_C, encoding='utf-8').read()
    begin = '/* BEGIN GENERATED CASES (testdata/charset/gen.py) */\n'
    end = '/* END GENERATED CASES */\n'
    i, j = src.index(begin) + len(begin), src.index(end)
    src = src[:i] + emit_cases() + src[j:]
    open(TEST_C, 'w', encoding='utf-8').write(src)
    print('%d conversion cases, %d sniff cases, %d pairs' % (len(CASES), len(SNIFF), len(PAIRS)))


if __name__ == '__main__':
    sys.exit(main())
