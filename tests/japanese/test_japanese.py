#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""
NAME
    test_japanese - Japanese decoding checked against an independent oracle

SYNOPSIS
    test_japanese.py MUGAIKA SHARED_DIR TESTDATA_DIR

DESCRIPTION
    For every Japanese mail in ../shared/corpus (jpmobile, sisimai-ja,
    ruby-mail multi_charset, mimekit japanese.txt) and testdata/, the
    Subject and the text of every text/plain leaf printed by
    `mugaika inspect --json --text` are compared with what this script
    decodes on its own: Python's email package for the structure,
    and its own charset rules for the text (ISO-2022-JP decoded as
    CP50221 by turning JIS row/cell into Shift_JIS and decoding CP932,
    Shift_JIS as CP932, EUC-JP with the JIS X 0213 codec, which places
    NEC row 13 where eucJP-ms does). The two implementations share no
    code, so agreement is evidence, not an echo.

    Prints the agreement per set and every disagreement; fails when
    the agreement falls under the threshold set from the measurement
    (see THRESHOLDS) or when a case in EXACT disagrees. Exit 77 (skip)
    only when ../shared is absent.
"""
import base64
import email
import email.policy
import json
import os
import re
import subprocess
import sys
import unicodedata

# Minimum share of compared strings that must agree, per set (measured,
# then set a little below; see docs/parser.md "Japanese").
THRESHOLDS = {
    "jpmobile": 1.0,
    "sisimai-ja": 0.99,
    "ruby-mail": 1.0,
    "mimekit": 1.0,
    "testdata": 1.0,
}

# Cases written for this project, with the UTF-8 a person reads in them.
EXACT = {
    "mime/japanese-iso2022jp.eml": {"subject": "件名①㈱テスト", "text#1": "本文です。①②③ ㈱ Ⅰ"},
    "mime/japanese-sjis.eml": {"subject": "髙橋様ｶﾀｶﾅ", "text#1": "髙橋様、﨑の字と①とｶﾀｶﾅです。"},
    "mime/japanese-eucjp.eml": {"subject": "会議①", "text#1": "会議室①で打合せ。"},
    "mime/japanese-split-words.eml": {"subject": "日本語日本語"},
    "mime/japanese-halfwidth-kana.eml": {"text#1": "ﾊﾝｶｸ and ｶｷ end"},
    "mime/japanese-unlabelled.eml": {"subject": "請求書", "text#1": "本文①"},
    "mail/invoice-ja.eml": {"subject": "【至急】請求書の送付 ①"},
    "mail/forwarded-sjis.eml": {"subject": "Fwd: 資料", "text#2": "お世話になっております。 資料を転送します。髙橋"},
}

# Disagreements that are understood; any other one fails the test.
KNOWN = {
    "corpus/sisimai-ja/bsd/lhost-x1-02.eml text#1":
        "Content-Type 'text/plain' folded into 'charset=...' without a ';': Python's email "
        "drops the type, mugaika reads type and charset as Thunderbird does, so the first "
        "text/plain leaf differs",
}


def jis_to_sjis(row, cell):
    """JIS X 0208 row/cell bytes (0x21..0x7E) to a Shift_JIS pair."""
    s1 = (row + 1) // 2 + (0x70 if row <= 0x5E else 0xB0)
    if row % 2:
        s2 = cell + (0x1F if cell <= 0x5F else 0x20)
    else:
        s2 = cell + 0x7E
    return bytes([s1, s2])


def decode_iso2022jp(data):
    out = []
    mode = "ascii"
    i = 0
    while i < len(data):
        b = data[i]
        if b == 0x1B:
            seq = data[i:i + 4]
            if seq.startswith(b"\x1b$B") or seq.startswith(b"\x1b$@"):
                mode, i = "jis", i + 3
                continue
            if seq.startswith(b"\x1b(B") or seq.startswith(b"\x1b(J"):
                mode, i = "ascii", i + 3
                continue
            if seq.startswith(b"\x1b(I"):
                mode, i = "kana", i + 3
                continue
            if seq.startswith(b"\x1b$(D"):
                mode, i = "x0212", i + 4
                continue
            out.append("\ufffd")
            i += 1
            continue
        if b == 0x0E:
            mode, i = "kana", i + 1
            continue
        if b == 0x0F:
            mode, i = "ascii", i + 1
            continue
        if mode in ("jis", "x0212") and b not in (0x0A, 0x0D):
            if i + 1 >= len(data):
                out.append("\ufffd")
                break
            c = data[i + 1]
            if mode == "x0212":
                raw = bytes([0x8F, b | 0x80, c | 0x80])
                out.append(raw.decode("euc_jis_2004", errors="replace"))
            elif 0x21 <= b <= 0x7E and 0x21 <= c <= 0x7E:
                try:
                    out.append(jis_to_sjis(b, c).decode("cp932"))
                except UnicodeDecodeError:
                    out.append("\ufffd")  # an unassigned pair is one character
            else:
                out.append("\ufffd")
            i += 2
            continue
        if mode == "kana" and 0x21 <= b <= 0x5F:
            out.append(chr(0xFF61 + b - 0x21))
            i += 1
            continue
        out.append(chr(b) if b < 0x80 else "\ufffd")
        i += 1
    return "".join(out)


def looks_utf8(data):
    try:
        data.decode("utf-8")
        return True
    except UnicodeDecodeError:
        return False


def decode_text(data, charset):
    cs = (charset or "").strip().strip('"').lower()
    if cs in ("iso-2022-jp", "csiso2022jp", "iso-2022-jp-2", "iso-2022-jp-3", "iso-2022-jp-ms"):
        if any(b >= 0x80 for b in data):
            return None  # mislabelled: both sides sniff; not compared
        return decode_iso2022jp(data)
    if cs in ("shift_jis", "shift-jis", "sjis", "x-sjis", "cp932", "windows-31j", "ms_kanji"):
        return data.decode("cp932", errors="replace")
    if cs in ("euc-jp", "x-euc-jp", "eucjp"):
        return data.decode("euc_jis_2004", errors="replace")
    if cs in ("utf-8", "utf8"):
        return data.decode("utf-8", errors="replace") if looks_utf8(data) else None
    if cs in ("us-ascii", "ascii", "") and all(b < 0x80 for b in data):
        if b"\x1b$B" in data or b"\x1b$@" in data:
            return decode_iso2022jp(data)
        return data.decode("ascii")
    return None  # anything else: not a Japanese case, not compared


ENCODED_WORD = re.compile(rb"=\?([^?\s]+)\?([bBqQ])\?([^?\s]*)\?=")


def decode_subject(raw):
    """RFC 2047 with adjacent same-charset words joined before decoding."""
    raw = re.sub(rb"\r?\n[ \t]", b" ", raw).strip()
    pieces = []  # (charset or None, bytes)
    pos = 0
    for m in ENCODED_WORD.finditer(raw):
        between = raw[pos:m.start()]
        if between and not (between.strip() == b"" and pieces and pieces[-1][0]):
            pieces.append((None, between))
        cs = m.group(1).split(b"*")[0].decode("ascii", "replace").lower()
        text = m.group(3)
        if m.group(2) in b"bB":
            text = base64.b64decode(text + b"=" * (-len(text) % 4))
        else:
            text = re.sub(rb"=([0-9A-Fa-f]{2})",
                          lambda h: bytes([int(h.group(1), 16)]), text.replace(b"_", b" "))
        if pieces and pieces[-1][0] == cs:
            pieces[-1] = (cs, pieces[-1][1] + text)
        else:
            pieces.append((cs, text))
        pos = m.end()
    if raw[pos:]:
        pieces.append((None, raw[pos:]))
    out = []
    for cs, data in pieces:
        if cs is None:
            if looks_utf8(data):
                out.append(data.decode("utf-8").replace("\0", ""))
            else:
                return None
        else:
            text = decode_text(data, cs)
            if text is None:
                return None
            out.append(text.replace("\0", ""))  # NUL is dropped from headers
    return "".join(out)


def norm(s):
    s = unicodedata.normalize("NFC", s.replace("\r\n", "\n").replace("\r", "\n"))
    return re.sub(r"\s+", " ", s).strip()


def oracle(path):
    """[(what, expected text)] for the Subject and text/plain leaves."""
    with open(path, "rb") as f:
        raw = f.read()
    msg = email.message_from_bytes(raw, policy=email.policy.compat32)
    found = []
    head = raw.split(b"\n\n", 1)[0].split(b"\r\n\r\n", 1)[0]
    m = re.search(rb"^Subject:(.*(?:\r?\n[ \t].*)*)", head, re.M | re.I)
    if m:
        subj = decode_subject(m.group(1))
        if subj is not None:
            found.append(("subject", subj))
    leaves = []

    def walk(part):
        ctype = part.get_content_type()
        if part.is_multipart() and (ctype.startswith("multipart/") or
                                    ctype in ("message/rfc822", "message/global")):
            for sub in part.get_payload():
                walk(sub)
        elif not part.is_multipart():
            leaves.append(part)

    walk(msg)
    n = 0
    for part in leaves:
        if part.get_content_type() != "text/plain":
            continue
        data = part.get_payload(decode=True) or b""
        text = decode_text(data, part.get_param("charset"))
        n += 1
        if text is not None:
            found.append((f"text#{n}", text))
    return found


def mugaika(binary, path):
    out = subprocess.run([binary, "inspect", "--json", "--text", "--no-detect", path],
                         capture_output=True, check=True).stdout
    doc = json.loads(out)
    got = []
    subj = doc["headers"].get("Subject")
    if isinstance(subj, list):
        subj = subj[0]
    if subj is not None:
        got.append(("subject", subj))
    n = 0
    for p in doc["parts"]:
        if p["leaf"] and p["origin"] == "mime" and p["content_type"] == "text/plain":
            n += 1
            got.append((f"text#{n}", p.get("text", "")))
    return dict(got)


def is_japanese_mail(path):
    with open(path, "rb") as f:
        data = f.read()
    return re.search(rb"iso-2022-jp|shift_jis|euc-jp|\x1b\$B|=\?utf-8\?", data, re.I) is not None


def collect(shared, testdata):
    sets = {}
    corpus = os.path.join(shared, "corpus")

    def add(name, root, pattern=None):
        for dirpath, _, files in os.walk(root):
            for fn in sorted(files):
                p = os.path.join(dirpath, fn)
                if fn.endswith((".jpg", ".json", ".md")):
                    continue
                if pattern and not re.search(pattern, fn):
                    continue
                if is_japanese_mail(p):
                    sets.setdefault(name, []).append(p)

    add("jpmobile", os.path.join(corpus, "jpmobile"))
    add("sisimai-ja", os.path.join(corpus, "sisimai-ja"))
    add("ruby-mail", os.path.join(corpus, "ruby-mail", "emails", "multi_charset"), r"japanese")
    add("mimekit", os.path.join(corpus, "mimekit", "messages"), r"^japanese\.txt$")
    add("testdata", testdata, r"\.eml$")
    return sets


def main():
    binary, shared, testdata = sys.argv[1:4]
    if not os.path.isdir(os.path.join(shared, "corpus")):
        print("SKIP: ../shared is not beside the checkout")
        return 77
    sets = collect(shared, testdata)
    failed = False
    for rel, want in sorted(EXACT.items()):
        got = mugaika(binary, os.path.join(testdata, rel))
        for what, text in want.items():
            if norm(got.get(what, "")) != norm(text):
                print(f"FAIL {rel} {what}: expected {text!r}, got {got.get(what)!r}")
                failed = True
    print(f"exact cases: {sum(len(v) for v in EXACT.values())} strings checked")
    for name in THRESHOLDS:
        if name not in sets:
            print(f"FAIL: no mails found for {name}")
            failed = True
    for name, files in sorted(sets.items()):
        agree = total = 0
        for path in files:
            got = mugaika(binary, path)
            for what, expected in oracle(path):
                if what not in got:
                    continue
                total += 1
                if norm(got[what]) == norm(expected):
                    agree += 1
                else:
                    rel = os.path.relpath(path, shared)
                    key = f"{rel} {what}"
                    print(f"DIFF {key}:\n  oracle:  {norm(expected)[:160]!r}\n"
                          f"  mugaika: {norm(got[what])[:160]!r}")
                    if key in KNOWN:
                        print(f"  known: {KNOWN[key]}")
                    else:
                        print("  FAIL: not a known divergence")
                        failed = True
        share = agree / total if total else 0.0
        print(f"{name}: {agree}/{total} strings agree ({share:.1%}) in {len(files)} mails")
        if total == 0 or share < THRESHOLDS[name]:
            print(f"FAIL: {name} under its threshold {THRESHOLDS[name]:.0%}")
            failed = True
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
