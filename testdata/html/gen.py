#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
#
# NAME
#	gen.py
# SUMMARY
#	write the Japanese HTML fixtures of tests/html/test_html.c
# SYNOPSIS
#	cd testdata/html && python3 gen.py
# DESCRIPTION
#	One page in Shift_JIS (cp932), EUC-JP and ISO-2022-JP, encoded by
#	Python's codecs (independent of mugaika's converters): ja-LABEL-meta.html
#	declares its charset in a <meta> tag (both forms are used),
#	ja-LABEL.html does not (the converter must sniff it). The text
#	the test expects is TEXT (cp932 also carries EXTRA, characters
#	outside JIS X 0208).

HEAD_META = {
    "sjis": '<meta http-equiv="Content-Type" content="text/html; charset=Shift_JIS">',
    "eucjp": "<meta charset=euc-jp>",
    "jis": "<META HTTP-EQUIV=content-type CONTENT='text/html;charset=ISO-2022-JP'>",
}
CODEC = {"sjis": "cp932", "eucjp": "euc_jp", "jis": "iso2022_jp"}
TITLE = "お知らせ"
TEXT = "日本語のメール本文です。"
ITEMS = ["一つ目", "二つ目"]
EXTRA = "髙橋様①"


def page(label, meta):
    body = TEXT + (EXTRA if label == "sjis" else "")
    return (
        "<html><head>%s<title>件名</title></head><body>\n"
        "<h1>%s</h1>\n<p>%s</p>\n<ul><li>%s<li>%s</ul>\n</body></html>\n"
        % (HEAD_META[label] if meta else "", TITLE, body, ITEMS[0], ITEMS[1])
    )


for label, codec in CODEC.items():
    for meta in (True, False):
        name = "ja-%s%s.html" % (label, "-meta" if meta else "")
        with open(name, "wb") as f:
            f.write(page(label, meta).encode(codec))
