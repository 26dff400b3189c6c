#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
#
# NAME
#	quality.py
# SUMMARY
#	token F1 of the HTML to text converter against reference outputs
# SYNOPSIS
#	quality.py path/to/html_conv [-v]
# DESCRIPTION
#	Converts every reference document with `html_conv -l en -p` and
#	scores the text against the expected output written by others:
#
#	  inscriptis         $MUGAIKA_SHARED/corpus/inscriptis/html/X.html -> X.txt
#	  node-html-to-text  $MUGAIKA_SHARED/corpus/node-html-to-text/test.html -> test.txt
#
#	Score per document: F1 of the two token multisets. Tokens are the
#	whitespace-separated words of the text; from each token the
#	leading and trailing characters of Unicode categories P*
#	(punctuation) and S* (symbols) are stripped ("[1]" -> "1",
#	"6,99EUR-sign" -> "6,99", "*" -> dropped); tokens left empty are
#	dropped; the rest are compared case-folded. Inner punctuation
#	stays ("www.github.com", "7%:" -> "7"). Two empty documents score 1.
#
#	Reports each document's F1 (-v: all, else the five worst per set)
#	and each set's mean, and fails when a mean falls below its
#	threshold (THRESHOLDS: about 0.02 below the measured means, see
#	docs/html.md), when a set holds no documents, or when
#	$MUGAIKA_SHARED is not set or the corpus is missing.
import os
import subprocess
import sys
import unicodedata
from collections import Counter

THRESHOLDS = {"inscriptis": 0.97, "node-html-to-text": 0.97}


def tokens(text):
    out = []
    for t in text.split():
        a, b = 0, len(t)
        while a < b and unicodedata.category(t[a])[0] in "PS":
            a += 1
        while b > a and unicodedata.category(t[b - 1])[0] in "PS":
            b -= 1
        if a < b:
            out.append(t[a:b].casefold())
    return Counter(out)


def f1(ours, ref):
    a, b = tokens(ours), tokens(ref)
    na, nb = sum(a.values()), sum(b.values())
    if na == 0 and nb == 0:
        return 1.0
    common = sum((a & b).values())
    if common == 0:
        return 0.0
    p, r = common / na, common / nb
    return 2 * p * r / (p + r)


def convert(conv, path):
    r = subprocess.run([conv, "-l", "en", "-p", path], capture_output=True, timeout=60)
    if r.returncode != 0:
        raise SystemExit("FAIL: %s exited %d on %s" % (conv, r.returncode, path))
    return r.stdout.decode("utf-8")


def sets(shared):
    ins = os.path.join(shared, "corpus", "inscriptis", "html")
    pairs = []
    for name in sorted(os.listdir(ins)):
        if name.endswith(".html"):
            txt = os.path.join(ins, name[:-5] + ".txt")
            if os.path.isfile(txt):
                pairs.append((os.path.join(ins, name), txt))
    node = os.path.join(shared, "corpus", "node-html-to-text")
    return {
        "inscriptis": pairs,
        "node-html-to-text": [(os.path.join(node, "test.html"), os.path.join(node, "test.txt"))],
    }


def main():
    if len(sys.argv) < 2:
        raise SystemExit("usage: quality.py html_conv [-v]")
    conv, verbose = sys.argv[1], "-v" in sys.argv[2:]
    shared = os.environ.get("MUGAIKA_SHARED")
    if not shared or not os.path.isdir(os.path.join(shared, "corpus")):
        raise SystemExit("FAIL: MUGAIKA_SHARED does not point at the shared corpus")
    failed = False
    for name, pairs in sets(shared).items():
        if not pairs:
            print("FAIL: set %s has no documents" % name)
            failed = True
            continue
        scores = []
        for html, txt in pairs:
            with open(txt, encoding="utf-8") as f:
                ref = f.read()
            scores.append((f1(convert(conv, html), ref), os.path.basename(html)))
        mean = sum(s for s, _ in scores) / len(scores)
        shown = sorted(scores) if verbose else sorted(scores)[:5]
        for s, doc in shown:
            print("  %-45s F1 %.3f" % (doc, s))
        ok = mean >= THRESHOLDS[name]
        failed = failed or not ok
        print("%s %s: %d documents, mean F1 %.4f (threshold %.2f)"
              % ("ok" if ok else "FAIL", name, len(scores), mean, THRESHOLDS[name]))
    return 1 if failed else 0


sys.exit(main())
