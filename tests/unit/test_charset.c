/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Unit test: charset conversion (src/charset/charset.c).
 *
 * The case tables between the GENERATED markers are made by
 * testdata/charset/gen.py from Python's codecs (an implementation
 * independent of ours); rerun it after changing the cases. Every case
 * is also converted in chunks of 1..17 bytes and at random split points
 * (fixed seeds) and must give identical bytes.
 *
 * Conversion pairs NAME.LABEL.txt / NAME.utf-8.txt are read from
 * $MUGAIKA_SHARED/corpus/gmime/filters (default ../shared next to the
 * source tree) and $MUGAIKA_TESTDATA/charset.
 */
#include <stdbool.h>
#include <string.h>

#include <glib.h>
#include <mugaika/charset.h>

#define B(s) s, sizeof(s) - 1

struct conv_case {
    const char *name;
    const char *label;
    const char *in;
    size_t inlen;
    const char *want; /* NULL: check only the name and validity */
    size_t wantlen;
    size_t repl;
    const char *cname;
};

struct sniff_case {
    const char *in;
    size_t inlen;
    const char *want;
};

/* BEGIN GENERATED CASES (testdata/charset/gen.py) */
/* clang-format off */
static const struct conv_case conv_cases[] = {
    /* ①②③ ㈱ Ⅰ № ⑳ Ⅹ ㍉ */
    {"jis/nec-row13", "ISO-2022-JP",
        B("\x1b$B-!-\"-#\x1b(B \x1b$B-j\x1b(B \x1b$B-5\x1b(B \x1b$B-b\x1b(B "
        "\x1b$B-4\x1b(B \x1b$B->\x1b(B \x1b$B-@\x1b(B"),
        B("\xe2\x91\xa0\xe2\x91\xa1\xe2\x91\xa2 \xe3\x88\xb1 \xe2\x85\xa0 \xe2"
        "\x84\x96 \xe2\x91\xb3 \xe2\x85\xa9 \xe3\x8d\x89"),
        0, "iso-2022-jp"},
    /* ～－￠￡￢∥ */
    {"jis/cp932-mapping", "iso-2022-jp",
        B("\x1b$B!A!]!q!r|{!B\x1b(B"),
        B("\xef\xbd\x9e\xef\xbc\x8d\xef\xbf\xa0\xef\xbf\xa1\xef\xbf\xa2\xe2\x88"
        "\xa5"),
        0, "iso-2022-jp"},
    /* 髙橋様と﨑 */
    {"jis/ibm-ext", "iso-2022-jp",
        B("\x1b$B|b66MM$Hyu\x1b(B"),
        B("\xe9\xab\x99\xe6\xa9\x8b\xe6\xa7\x98\xe3\x81\xa8\xef\xa8\x91"),
        0, "iso-2022-jp"},
    /* 件名: 日本語テキスト ①と髙\r\n2行目 abc ～\r\n */
    {"jis/mixed-lines", "iso-2022-jp",
        B("\x1b$B7oL>\x1b(B: \x1b$BF|K\\8l%F%-%9%H\x1b(B \x1b$B-!$H|b\x1b(B\r\n"
        "2\x1b$B9TL\\\x1b(B abc \x1b$B!A\x1b(B\r\n"),
        B("\xe4\xbb\xb6\xe5\x90\x8d: \xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e\xe3"
        "\x83\x86\xe3\x82\xad\xe3\x82\xb9\xe3\x83\x88 \xe2\x91\xa0\xe3\x81"
        "\xa8\xe9\xab\x99\r\n2\xe8\xa1\x8c\xe7\x9b\xae abc \xef\xbd\x9e\r\n"),
        0, "iso-2022-jp"},
    /* 丸数字のテストです②ⅱ */
    {"jis/iphone-circled", "iso-2022-jp",
        B("\x1b$B4]\?t;z$N%F%9%H$G$9-\"|r\x1b(B"),
        B("\xe4\xb8\xb8\xe6\x95\xb0\xe5\xad\x97\xe3\x81\xae\xe3\x83\x86\xe3\x82"
        "\xb9\xe3\x83\x88\xe3\x81\xa7\xe3\x81\x99\xe2\x91\xa1\xe2\x85\xb1"),
        0, "iso-2022-jp"},
    /* ｱｲｳｴｵ ﾃﾞｰﾀ｡ */
    {"jis/kana-esc", "iso-2022-jp",
        B("\x1b(I12345\x1b(B \x1b(IC^0@!\x1b(B"),
        B("\xef\xbd\xb1\xef\xbd\xb2\xef\xbd\xb3\xef\xbd\xb4\xef\xbd\xb5 \xef"
        "\xbe\x83\xef\xbe\x9e\xef\xbd\xb0\xef\xbe\x80\xef\xbd\xa1"),
        0, "iso-2022-jp"},
    /* abcｶﾀｶﾅdef */
    {"jis/kana-so-si", "iso-2022-jp",
        B("abc\x0e" "6@6E\x0f" "def"),
        B("abc\xef\xbd\xb6\xef\xbe\x80\xef\xbd\xb6\xef\xbe\x85" "def"),
        0, "iso-2022-jp"},
    /* あｱｲ ok */
    {"jis/kana-jis8", "iso-2022-jp",
        B("\x1b$B$\"\x1b(B\xb1\xb2 ok"),
        B("\xe3\x81\x82\xef\xbd\xb1\xef\xbd\xb2 ok"),
        0, "iso-2022-jp"},
    /* c:\dir ~x */
    {"jis/roman-as-ascii", "iso-2022-jp",
        B("\x1b(Jc:\\dir ~x\x1b(B"),
        B("c:\\dir ~x"),
        0, "iso-2022-jp"},
    /* 丂丄é */
    {"jis/x0212", "iso-2022-jp-1",
        B("\x1b$(D0!0\"+1\x1b(B"),
        B("\xe4\xb8\x82\xe4\xb8\x84\xc3\xa9"),
        0, "iso-2022-jp"},
    /* 俱か゚𠂉 */
    {"jis/x0213", "ISO-2022-JP-3",
        B("\x1b$(Q.!$w\x1b$(P!!\x1b(B"),
        B("\xe4\xbf\xb1\xe3\x81\x8b\xe3\x82\x9a\xf0\xa0\x82\x89"),
        0, "iso-2022-jp"},
    /* 俱か゚𠂉 */
    {"jis/x0213-2000", "iso-2022-jp",
        B("\x1b$(O.!$w\x1b$(P!!\x1b(B"),
        B("\xe4\xbf\xb1\xe3\x81\x8b\xe3\x82\x9a\xf0\xa0\x82\x89"),
        0, "iso-2022-jp"},
    /* 们한 é文 */
    {"jis/jp2", "iso-2022-jp-2",
        B("\x1b$(ACG\x1b$(CGQ\x1b(B \x1b.A\x1bNi\x1b$AND\x1b(B"),
        B("\xe4\xbb\xac\xed\x95\x9c \xc3\xa9\xe6\x96\x87"),
        0, "iso-2022-jp"},
    /* αχ */
    {"jis/jp2-greek", "iso-2022-jp-2",
        B("\x1b.F\x1bNa\x1bNw"),
        B("\xce\xb1\xcf\x87"),
        0, "iso-2022-jp"},
    /* あ */
    {"jis/esc-1990", "csISO2022JP",
        B("\x1b&@\x1b$B$\"\x1b(B"),
        B("\xe3\x81\x82"),
        0, "iso-2022-jp"},
    /* あ */
    {"jis/esc-1978", "cp50221",
        B("\x1b$@$\"\x1b(B"),
        B("\xe3\x81\x82"),
        0, "iso-2022-jp"},
    /* a<FFFD>$Zb */
    {"jis/bad-escape", "iso-2022-jp",
        B("a\x1b$Zb"),
        B("a\xef\xbf\xbd$Zb"),
        1, "iso-2022-jp"},
    /* a<FFFD>あb */
    {"jis/esc-esc", "iso-2022-jp",
        B("a\x1b\x1b$B$\"\x1b(Bb"),
        B("a\xef\xbf\xbd\xe3\x81\x82" "b"),
        1, "iso-2022-jp"},
    /* あ<FFFD> */
    {"jis/truncated-lead", "iso-2022-jp",
        B("\x1b$B$\"$"),
        B("\xe3\x81\x82\xef\xbf\xbd"),
        1, "iso-2022-jp"},
    /* ab<FFFD>$ */
    {"jis/truncated-escape", "iso-2022-jp",
        B("ab\x1b$"),
        B("ab\xef\xbf\xbd$"),
        1, "iso-2022-jp"},
    /* あ<FFFD><FFFD> */
    {"jis/truncated-escape-kanji", "iso-2022-jp",
        B("\x1b$B$\"\x1b("),
        B("\xe3\x81\x82\xef\xbf\xbd\xef\xbf\xbd"),
        2, "iso-2022-jp"},
    /* <FFFD>x */
    {"jis/unassigned-row", "iso-2022-jp",
        B("\x1b$B)!\x1b(Bx"),
        B("\xef\xbf\xbdx"),
        1, "iso-2022-jp"},
    /* あ\r\nい */
    {"jis/newline-in-kanji", "iso-2022-jp",
        B("\x1b$B$\"\r\n$$\x1b(B"),
        B("\xe3\x81\x82\r\n\xe3\x81\x84"),
        0, "iso-2022-jp"},
    /* <FFFD> あ */
    {"jis/space-after-lead", "iso-2022-jp",
        B("\x1b$B$ $\"\x1b(B"),
        B("\xef\xbf\xbd \xe3\x81\x82"),
        1, "iso-2022-jp"},
    /* ｱ<FFFD> */
    {"jis/kana-out-of-range", "iso-2022-jp",
        B("\x1b(I1`\x1b(B"),
        B("\xef\xbd\xb1\xef\xbf\xbd"),
        1, "iso-2022-jp"},
    /* <FFFD>a */
    {"jis/ss2-without-g2", "iso-2022-jp",
        B("\x1bNa"),
        B("\xef\xbf\xbd" "a"),
        1, "iso-2022-jp"},
    /* ①髙ｱｲｳ日本語～﨑 */
    {"sjis/label Shift_JIS", "Shift_JIS",
        B("\x87@\xee\xe0\xb1\xb2\xb3\x93\xfa\x96{\x8c\xea\x81`\xed\x95"),
        B("\xe2\x91\xa0\xe9\xab\x99\xef\xbd\xb1\xef\xbd\xb2\xef\xbd\xb3\xe6\x97"
        "\xa5\xe6\x9c\xac\xe8\xaa\x9e\xef\xbd\x9e\xef\xa8\x91"),
        0, "cp932"},
    /* ①髙ｱｲｳ日本語～﨑 */
    {"sjis/label x-sjis", "x-sjis",
        B("\x87@\xee\xe0\xb1\xb2\xb3\x93\xfa\x96{\x8c\xea\x81`\xed\x95"),
        B("\xe2\x91\xa0\xe9\xab\x99\xef\xbd\xb1\xef\xbd\xb2\xef\xbd\xb3\xe6\x97"
        "\xa5\xe6\x9c\xac\xe8\xaa\x9e\xef\xbd\x9e\xef\xa8\x91"),
        0, "cp932"},
    /* ①髙ｱｲｳ日本語～﨑 */
    {"sjis/label ms_kanji", "ms_kanji",
        B("\x87@\xee\xe0\xb1\xb2\xb3\x93\xfa\x96{\x8c\xea\x81`\xed\x95"),
        B("\xe2\x91\xa0\xe9\xab\x99\xef\xbd\xb1\xef\xbd\xb2\xef\xbd\xb3\xe6\x97"
        "\xa5\xe6\x9c\xac\xe8\xaa\x9e\xef\xbd\x9e\xef\xa8\x91"),
        0, "cp932"},
    /* ①髙ｱｲｳ日本語～﨑 */
    {"sjis/label windows-31j", "windows-31j",
        B("\x87@\xee\xe0\xb1\xb2\xb3\x93\xfa\x96{\x8c\xea\x81`\xed\x95"),
        B("\xe2\x91\xa0\xe9\xab\x99\xef\xbd\xb1\xef\xbd\xb2\xef\xbd\xb3\xe6\x97"
        "\xa5\xe6\x9c\xac\xe8\xaa\x9e\xef\xbd\x9e\xef\xa8\x91"),
        0, "cp932"},
    /* ①髙ｱｲｳ日本語～﨑 */
    {"sjis/label CP932", "CP932",
        B("\x87@\xee\xe0\xb1\xb2\xb3\x93\xfa\x96{\x8c\xea\x81`\xed\x95"),
        B("\xe2\x91\xa0\xe9\xab\x99\xef\xbd\xb1\xef\xbd\xb2\xef\xbd\xb3\xe6\x97"
        "\xa5\xe6\x9c\xac\xe8\xaa\x9e\xef\xbd\x9e\xef\xa8\x91"),
        0, "cp932"},
    /* ①髙ｱｲｳ日本語～﨑 */
    {"sjis/label sjis", " \"sjis\" ",
        B("\x87@\xee\xe0\xb1\xb2\xb3\x93\xfa\x96{\x8c\xea\x81`\xed\x95"),
        B("\xe2\x91\xa0\xe9\xab\x99\xef\xbd\xb1\xef\xbd\xb2\xef\xbd\xb3\xe6\x97"
        "\xa5\xe6\x9c\xac\xe8\xaa\x9e\xef\xbd\x9e\xef\xa8\x91"),
        0, "cp932"},
    /* a<FFFD>@b<FFFD> */
    {"sjis/invalid", "shift_jis",
        B("a\x85@b\x82"),
        B("a\xef\xbf\xbd@b\xef\xbf\xbd"),
        2, "cp932"},
    /*  */
    {"sjis/user-defined", "shift_jis",
        B("\xf0@"),
        B("\xee\x80\x80"),
        0, "cp932"},
    /* ①あｱ丂日本 */
    {"eucjp/ms", "EUC-JP",
        B("\xad\xa1\xa4\xa2\x8e\xb1\x8f\xb0\xa1\xc6\xfc\xcb\xdc"),
        B("\xe2\x91\xa0\xe3\x81\x82\xef\xbd\xb1\xe4\xb8\x82\xe6\x97\xa5\xe6\x9c"
        "\xac"),
        0, "euc-jp"},
    /* ①あｱ丂日本 */
    {"eucjp/label x-euc-jp", "x-euc-jp",
        B("\xad\xa1\xa4\xa2\x8e\xb1\x8f\xb0\xa1\xc6\xfc\xcb\xdc"),
        B("\xe2\x91\xa0\xe3\x81\x82\xef\xbd\xb1\xe4\xb8\x82\xe6\x97\xa5\xe6\x9c"
        "\xac"),
        0, "euc-jp"},
    /* あ<FFFD>x */
    {"eucjp/invalid", "euc-jp",
        B("\xa4\xa2\xa4x"),
        B("\xe3\x81\x82\xef\xbf\xbdx"),
        1, "euc-jp"},
    /* 日本語 café */
    {"utf8/basic", "UTF-8",
        B("\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e caf\xc3\xa9"),
        B("\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e caf\xc3\xa9"),
        0, "utf-8"},
    /* 日本語 café */
    {"utf8/label utf8", "utf8",
        B("\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e caf\xc3\xa9"),
        B("\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e caf\xc3\xa9"),
        0, "utf-8"},
    /* abc */
    {"utf8/bom", "utf-8",
        B("\xef\xbb\xbf" "abc"),
        B("abc"),
        0, "utf-8"},
    /* 日本語のテキストです、<FFFD><FFFD><FFFD><FFFD>x<FFFD><FFFD>まだ続きます。 */
    {"utf8/invalid", "utf-8",
        B("\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e\xe3\x81\xae\xe3\x83\x86\xe3\x82"
        "\xad\xe3\x82\xb9\xe3\x83\x88\xe3\x81\xa7\xe3\x81\x99\xe3\x80\x81\xed"
        "\xa0\x80\xf0\x9f\x98x\xc0\xaf\xe3\x81\xbe\xe3\x81\xa0\xe7\xb6\x9a"
        "\xe3\x81\x8d\xe3\x81\xbe\xe3\x81\x99\xe3\x80\x82"),
        B("\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e\xe3\x81\xae\xe3\x83\x86\xe3\x82"
        "\xad\xe3\x82\xb9\xe3\x83\x88\xe3\x81\xa7\xe3\x81\x99\xe3\x80\x81\xef"
        "\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbdx\xef\xbf\xbd\xef\xbf"
        "\xbd\xe3\x81\xbe\xe3\x81\xa0\xe7\xb6\x9a\xe3\x81\x8d\xe3\x81\xbe\xe3"
        "\x81\x99\xe3\x80\x82"),
        6, "utf-8"},
    /* 日本語のテキスト<FFFD> */
    {"utf8/truncated", "utf-8",
        B("\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e\xe3\x81\xae\xe3\x83\x86\xe3\x82"
        "\xad\xe3\x82\xb9\xe3\x83\x88\xe3\x81"),
        B("\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e\xe3\x81\xae\xe3\x83\x86\xe3\x82"
        "\xad\xe3\x82\xb9\xe3\x83\x88\xef\xbf\xbd"),
        1, "utf-8"},
    /* café naïve “q” */
    {"latin/iso-8859-1", "ISO-8859-1",
        B("caf\xe9 na\xefve \x93q\x94"),
        B("caf\xc3\xa9 na\xc3\xafve \xe2\x80\x9cq\xe2\x80\x9d"),
        0, "windows-1252"},
    /* À ÿ */
    {"latin/latin1", "latin1",
        B("\xc0 \xff"),
        B("\xc3\x80 \xc3\xbf"),
        0, "windows-1252"},
    /* € … – Ÿ */
    {"latin/windows-1252", "windows-1252",
        B("\x80 \x85 \x96 \x9f"),
        B("\xe2\x82\xac \xe2\x80\xa6 \xe2\x80\x93 \xc5\xb8"),
        0, "windows-1252"},
    /* a<FFFD>b */
    {"latin/windows-1252-hole", "cp1252",
        B("a\x81" "b"),
        B("a\xef\xbf\xbd" "b"),
        1, "windows-1252"},
    /* Zażółć gęślą jaźń */
    {"latin/iso-8859-2", "iso_8859-2",
        B("Za\xbf\xf3\xb3\xe6 g\xea\xb6l\xb1 ja\xbc\xf1"),
        B("Za\xc5\xbc\xc3\xb3\xc5\x82\xc4\x87 g\xc4\x99\xc5\x9bl\xc4\x85 ja\xc5"
        "\xba\xc5\x84"),
        0, "iso-8859-2"},
    /* € œ Ÿ */
    {"latin/iso-8859-15", "ISO-8859-15",
        B("\xa4 \xbd \xbe"),
        B("\xe2\x82\xac \xc5\x93 \xc5\xb8"),
        0, "iso-8859-15"},
    /* Привет, мир */
    {"cyrillic/koi8-r", "KOI8-R",
        B("\xf0\xd2\xc9\xd7\xc5\xd4, \xcd\xc9\xd2"),
        B("\xd0\x9f\xd1\x80\xd0\xb8\xd0\xb2\xd0\xb5\xd1\x82, \xd0\xbc\xd0\xb8"
        "\xd1\x80"),
        0, "koi8-r"},
    /* Привет */
    {"cyrillic/windows-1251", "windows-1251",
        B("\xcf\xf0\xe8\xe2\xe5\xf2"),
        B("\xd0\x9f\xd1\x80\xd0\xb8\xd0\xb2\xd0\xb5\xd1\x82"),
        0, "windows-1251"},
    /* Καλημέρα */
    {"greek/iso-8859-7", "iso-8859-7",
        B("\xca\xe1\xeb\xe7\xec\xdd\xf1\xe1"),
        B("\xce\x9a\xce\xb1\xce\xbb\xce\xb7\xce\xbc\xce\xad\xcf\x81\xce\xb1"),
        0, "iso-8859-7"},
    /* 中文简体 */
    {"cjk/gb2312", "GB2312",
        B("\xd6\xd0\xce\xc4\xbc\xf2\xcc\xe5"),
        B("\xe4\xb8\xad\xe6\x96\x87\xe7\xae\x80\xe4\xbd\x93"),
        0, "gb18030"},
    /* 中文簡體 */
    {"cjk/gbk", "gbk",
        B("\xd6\xd0\xce\xc4\xba\x86\xf3w"),
        B("\xe4\xb8\xad\xe6\x96\x87\xe7\xb0\xa1\xe9\xab\x94"),
        0, "gb18030"},
    /* 中文𠀀 */
    {"cjk/gb18030", "GB18030",
        B("\xd6\xd0\xce\xc4\x95" "2\x82" "6"),
        B("\xe4\xb8\xad\xe6\x96\x87\xf0\xa0\x80\x80"),
        0, "gb18030"},
    /* 中文繁體 */
    {"cjk/big5", "Big5",
        B("\xa4\xa4\xa4\xe5\xc1" "c\xc5\xe9"),
        B("\xe4\xb8\xad\xe6\x96\x87\xe7\xb9\x81\xe9\xab\x94"),
        0, "big5"},
    /* 한국어 */
    {"cjk/euc-kr", "EUC-KR",
        B("\xc7\xd1\xb1\xb9\xbe\xee"),
        B("\xed\x95\x9c\xea\xb5\xad\xec\x96\xb4"),
        0, "cp949"},
    /* 똠방각하 */
    {"cjk/ks_c_5601-1987", "ks_c_5601-1987",
        B("\x8c" "c\xb9\xe6\xb0\xa2\xc7\xcf"),
        B("\xeb\x98\xa0\xeb\xb0\xa9\xea\xb0\x81\xed\x95\x98"),
        0, "cp949"},
    /* 日本語 a+b */
    {"unicode/utf-7", "UTF-7",
        B("+ZeVnLIqe a+-b"),
        B("\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e a+b"),
        0, "utf-7"},
    /* ab日本 */
    {"unicode/utf-16-bom-le", "utf-16",
        B("\xff\xfe" "a\x00" "b\x00\xe5" "e,g"),
        B("ab\xe6\x97\xa5\xe6\x9c\xac"),
        0, "utf-16"},
    /* ab日本 */
    {"unicode/utf-16-bom-be", "UTF-16",
        B("\xfe\xff\x00" "a\x00" "be\xe5g,"),
        B("ab\xe6\x97\xa5\xe6\x9c\xac"),
        0, "utf-16"},
    /* ab日本 */
    {"unicode/utf-16-nobom-le", "utf-16",
        B("a\x00" "b\x00\xe5" "e,g"),
        B("ab\xe6\x97\xa5\xe6\x9c\xac"),
        0, "utf-16"},
    /* 日本ab */
    {"unicode/utf-16-nobom-be", "utf-16",
        B("e\xe5g,\x00" "a\x00" "b"),
        B("\xe6\x97\xa5\xe6\x9c\xac" "ab"),
        0, "utf-16"},
    /* ab */
    {"unicode/utf-16le", "UTF-16LE",
        B("\xff\xfe" "a\x00" "b\x00"),
        B("ab"),
        0, "utf-16le"},
    /* a😀 */
    {"unicode/utf-16be", "utf-16be",
        B("\x00" "a\xd8=\xde\x00"),
        B("a\xf0\x9f\x98\x80"),
        0, "utf-16be"},
    /* a<FFFD> */
    {"unicode/utf-16-odd", "utf-16",
        B("\xff\xfe" "a\x00" "b"),
        B("a\xef\xbf\xbd"),
        1, "utf-16"},
    /* <FFFD>a */
    {"unicode/utf-16-lone-surrogate", "utf-16le",
        B("\x00\xd8" "a\x00"),
        B("\xef\xbf\xbd" "a"),
        1, "utf-16le"},
    /* a日 */
    {"unicode/utf-32", "utf-32",
        B("\xff\xfe\x00\x00" "a\x00\x00\x00\xe5" "e\x00\x00"),
        B("a\xe6\x97\xa5"),
        0, "utf-32"},
    /* a日 */
    {"unicode/utf-32be", "UTF-32BE",
        B("\x00\x00\x00" "a\x00\x00" "e\xe5"),
        B("a\xe6\x97\xa5"),
        0, "utf-32be"},
    /* 会議の日程について */
    {"mislabel/cp932 as us-ascii", "us-ascii",
        B("\x89\xef\x8b" "c\x82\xcc\x93\xfa\x92\xf6\x82\xc9\x82\xc2\x82\xa2\x82"
        "\xc4"),
        B("\xe4\xbc\x9a\xe8\xad\xb0\xe3\x81\xae\xe6\x97\xa5\xe7\xa8\x8b\xe3\x81"
        "\xab\xe3\x81\xa4\xe3\x81\x84\xe3\x81\xa6"),
        0, "cp932"},
    /* 会議の日程について */
    {"mislabel/euc_jp as us-ascii", "us-ascii",
        B("\xb2\xf1\xb5\xc4\xa4\xce\xc6\xfc\xc4\xf8\xa4\xcb\xa4\xc4\xa4\xa4\xa4"
        "\xc6"),
        B("\xe4\xbc\x9a\xe8\xad\xb0\xe3\x81\xae\xe6\x97\xa5\xe7\xa8\x8b\xe3\x81"
        "\xab\xe3\x81\xa4\xe3\x81\x84\xe3\x81\xa6"),
        0, "euc-jp"},
    /* お見積もりのご依頼 */
    {"mislabel/cp932 as iso-2022-jp", "iso-2022-jp",
        B("\x82\xa8\x8c\xa9\x90\xcf\x82\xe0\x82\xe8\x82\xcc\x82\xb2\x88\xcb\x97"
        "\x8a"),
        B("\xe3\x81\x8a\xe8\xa6\x8b\xe7\xa9\x8d\xe3\x82\x82\xe3\x82\x8a\xe3\x81"
        "\xae\xe3\x81\x94\xe4\xbe\x9d\xe9\xa0\xbc"),
        0, "cp932"},
    /* お見積もりのご依頼 */
    {"mislabel/euc_jp as iso-2022-jp", "iso-2022-jp",
        B("\xa4\xaa\xb8\xab\xc0\xd1\xa4\xe2\xa4\xea\xa4\xce\xa4\xb4\xb0\xcd\xcd"
        "\xea"),
        B("\xe3\x81\x8a\xe8\xa6\x8b\xe7\xa9\x8d\xe3\x82\x82\xe3\x82\x8a\xe3\x81"
        "\xae\xe3\x81\x94\xe4\xbe\x9d\xe9\xa0\xbc"),
        0, "euc-jp"},
    /* お見積もりのご依頼 */
    {"mislabel/utf-8 as iso-2022-jp", "iso-2022-jp",
        B("\xe3\x81\x8a\xe8\xa6\x8b\xe7\xa9\x8d\xe3\x82\x82\xe3\x82\x8a\xe3\x81"
        "\xae\xe3\x81\x94\xe4\xbe\x9d\xe9\xa0\xbc"),
        B("\xe3\x81\x8a\xe8\xa6\x8b\xe7\xa9\x8d\xe3\x82\x82\xe3\x82\x8a\xe3\x81"
        "\xae\xe3\x81\x94\xe4\xbe\x9d\xe9\xa0\xbc"),
        0, "utf-8"},
    /* 打ち合わせの件です */
    {"mislabel/euc_jp as utf-8", "utf-8",
        B("\xc2\xc7\xa4\xc1\xb9\xe7\xa4\xef\xa4\xbb\xa4\xce\xb7\xef\xa4\xc7\xa4"
        "\xb9"),
        B("\xe6\x89\x93\xe3\x81\xa1\xe5\x90\x88\xe3\x82\x8f\xe3\x81\x9b\xe3\x81"
        "\xae\xe4\xbb\xb6\xe3\x81\xa7\xe3\x81\x99"),
        0, "euc-jp"},
    /* 打ち合わせの件です */
    {"mislabel/cp932 as utf-8", "utf-8",
        B("\x91\xc5\x82\xbf\x8d\x87\x82\xed\x82\xb9\x82\xcc\x8c\x8f\x82\xc5\x82"
        "\xb7"),
        B("\xe6\x89\x93\xe3\x81\xa1\xe5\x90\x88\xe3\x82\x8f\xe3\x81\x9b\xe3\x81"
        "\xae\xe4\xbb\xb6\xe3\x81\xa7\xe3\x81\x99"),
        0, "cp932"},
    /* Crème brûlée à la française */
    {"mislabel/cp1252 as utf-8", "utf-8",
        B("Cr\xe8me br\xfbl\xe9" "e \xe0 la fran\xe7" "aise"),
        B("Cr\xc3\xa8me br\xc3\xbbl\xc3\xa9" "e \xc3\xa0 la fran\xc3\xa7" "aise"),
        0, "windows-1252"},
    /* Müller & Söhne, Köln */
    {"mislabel/cp1252 as us-ascii", "us-ascii",
        B("M\xfcller & S\xf6hne, K\xf6ln"),
        B("M\xc3\xbcller & S\xc3\xb6hne, K\xc3\xb6ln"),
        0, "windows-1252"},
    /* Grüße aus 東京 */
    {"mislabel/utf-8 as us-ascii", "us-ascii",
        B("Gr\xc3\xbc\xc3\x9f" "e aus \xe6\x9d\xb1\xe4\xba\xac"),
        B("Gr\xc3\xbc\xc3\x9f" "e aus \xe6\x9d\xb1\xe4\xba\xac"),
        0, "utf-8"},
    /* ご確認ください */
    {"mislabel/cp932 as x-unknown", "x-unknown",
        B("\x82\xb2\x8am\x94" "F\x82\xad\x82\xbe\x82\xb3\x82\xa2"),
        B("\xe3\x81\x94\xe7\xa2\xba\xe8\xaa\x8d\xe3\x81\x8f\xe3\x81\xa0\xe3\x81"
        "\x95\xe3\x81\x84"),
        0, "cp932"},
    /* ご確認ください */
    {"mislabel/euc_jp as unknown-8bit", "unknown-8bit",
        B("\xa4\xb4\xb3\xce\xc7\xa7\xa4\xaf\xa4\xc0\xa4\xb5\xa4\xa4"),
        B("\xe3\x81\x94\xe7\xa2\xba\xe8\xaa\x8d\xe3\x81\x8f\xe3\x81\xa0\xe3\x81"
        "\x95\xe3\x81\x84"),
        0, "euc-jp"},
    /* ご確認ください */
    {"mislabel/cp932 as no-such-charset", "no-such-charset",
        B("\x82\xb2\x8am\x94" "F\x82\xad\x82\xbe\x82\xb3\x82\xa2"),
        B("\xe3\x81\x94\xe7\xa2\xba\xe8\xaa\x8d\xe3\x81\x8f\xe3\x81\xa0\xe3\x81"
        "\x95\xe3\x81\x84"),
        0, "cp932"},
    /* ご確認ください */
    {"mislabel/cp932 as None", NULL,
        B("\x82\xb2\x8am\x94" "F\x82\xad\x82\xbe\x82\xb3\x82\xa2"),
        B("\xe3\x81\x94\xe7\xa2\xba\xe8\xaa\x8d\xe3\x81\x8f\xe3\x81\xa0\xe3\x81"
        "\x95\xe3\x81\x84"),
        0, "cp932"},
    /* 会議①の件 */
    {"mislabel/jis as us-ascii", "us-ascii",
        B("\x1b$B2q5D-!$N7o\x1b(B"),
        B("\xe4\xbc\x9a\xe8\xad\xb0\xe2\x91\xa0\xe3\x81\xae\xe4\xbb\xb6"),
        0, "iso-2022-jp"},
    /* 会議①の件 */
    {"mislabel/jis unlabelled", NULL,
        B("\x1b$B2q5D-!$N7o\x1b(B"),
        B("\xe4\xbc\x9a\xe8\xad\xb0\xe2\x91\xa0\xe3\x81\xae\xe4\xbb\xb6"),
        0, "iso-2022-jp"},
    /* Hello world\r\n日本語です。 */
    {"mislabel/ascii prefix", "us-ascii",
        B("Hello world\r\n\x93\xfa\x96{\x8c\xea\x82\xc5\x82\xb7\x81" "B"),
        B("Hello world\r\n\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e\xe3\x81\xa7\xe3"
        "\x81\x99\xe3\x80\x82"),
        0, "cp932"},
    /* a<ESC>[1mb<0E>c */
    {"mislabel/ascii with esc", "us-ascii",
        B("a\x1b[1mb\x0e" "c"),
        B("a\x1b[1mb\x0e" "c"),
        0, "us-ascii"},
    /* 日本語のテキスト<FFFD> */
    {"mislabel/utf-8 one bad byte", "utf-8",
        B("\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e\xe3\x81\xae\xe3\x83\x86\xe3\x82"
        "\xad\xe3\x82\xb9\xe3\x83\x88\xff"),
        B("\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e\xe3\x81\xae\xe3\x83\x86\xe3\x82"
        "\xad\xe3\x82\xb9\xe3\x83\x88\xef\xbf\xbd"),
        1, "utf-8"},
    /* (sniffed) */
    {"mislabel/jis with 8-bit sjis", "iso-2022-jp",
        B("\x1b$B7oL>\x1b(B\x96{\x95\xb6\x82\xc5\x82\xb7"),
        NULL, 0, 0, "cp932"},
    /*  */
    {"empty/us-ascii", "us-ascii",
        B(""),
        B(""),
        0, "us-ascii"},
    /*  */
    {"empty/utf-16", "utf-16",
        B(""),
        B(""),
        0, "utf-16"},
    /* plain text\r\n */
    {"ascii/plain", "us-ascii",
        B("plain text\r\n"),
        B("plain text\r\n"),
        0, "us-ascii"},
    /* plain text */
    {"ascii/iso-2022-jp", "iso-2022-jp",
        B("plain text"),
        B("plain text"),
        0, "iso-2022-jp"},
    /* a<00>b */
    {"ascii/nul", NULL,
        B("a\x00" "b"),
        B("a\x00" "b"),
        0, "us-ascii"},
};

static const struct sniff_case sniff_cases[] = {
    /* 会議の日程について (cp932) */
    {B("\x89\xef\x8b" "c\x82\xcc\x93\xfa\x92\xf6\x82\xc9\x82\xc2\x82\xa2\x82"
        "\xc4"), "cp932"},
    /* 会議の日程について (euc-jp) */
    {B("\xb2\xf1\xb5\xc4\xa4\xce\xc6\xfc\xc4\xf8\xa4\xcb\xa4\xc4\xa4\xa4\xa4"
        "\xc6"), "euc-jp"},
    /* 会議の日程について (utf-8) */
    {B("\xe4\xbc\x9a\xe8\xad\xb0\xe3\x81\xae\xe6\x97\xa5\xe7\xa8\x8b\xe3\x81"
        "\xab\xe3\x81\xa4\xe3\x81\x84\xe3\x81\xa6"), "utf-8"},
    /* 会議の日程について (jis) */
    {B("\x1b$B2q5D$NF|Dx$K$D$$$F\x1b(B"), "iso-2022-jp"},
    /* お見積もりのご依頼 (cp932) */
    {B("\x82\xa8\x8c\xa9\x90\xcf\x82\xe0\x82\xe8\x82\xcc\x82\xb2\x88\xcb\x97"
        "\x8a"), "cp932"},
    /* お見積もりのご依頼 (euc-jp) */
    {B("\xa4\xaa\xb8\xab\xc0\xd1\xa4\xe2\xa4\xea\xa4\xce\xa4\xb4\xb0\xcd\xcd"
        "\xea"), "euc-jp"},
    /* お見積もりのご依頼 (utf-8) */
    {B("\xe3\x81\x8a\xe8\xa6\x8b\xe7\xa9\x8d\xe3\x82\x82\xe3\x82\x8a\xe3\x81"
        "\xae\xe3\x81\x94\xe4\xbe\x9d\xe9\xa0\xbc"), "utf-8"},
    /* お見積もりのご依頼 (jis) */
    {B("\x1b$B$*8+@Q$b$j$N$40MMj\x1b(B"), "iso-2022-jp"},
    /* 【重要】パスワード変更 (cp932) */
    {B("\x81y\x8f" "d\x97v\x81z\x83p\x83X\x83\x8f\x81[\x83h\x95\xcf\x8dX"), "cp932"},
    /* 【重要】パスワード変更 (euc-jp) */
    {B("\xa1\xda\xbd\xc5\xcd\xd7\xa1\xdb\xa5\xd1\xa5\xb9\xa5\xef\xa1\xbc\xa5"
        "\xc9\xca\xd1\xb9\xb9"), "euc-jp"},
    /* 【重要】パスワード変更 (utf-8) */
    {B("\xe3\x80\x90\xe9\x87\x8d\xe8\xa6\x81\xe3\x80\x91\xe3\x83\x91\xe3\x82"
        "\xb9\xe3\x83\xaf\xe3\x83\xbc\xe3\x83\x89\xe5\xa4\x89\xe6\x9b\xb4"), "utf-8"},
    /* 【重要】パスワード変更 (jis) */
    {B("\x1b$B!Z=EMW![%Q%9%o!<%IJQ99\x1b(B"), "iso-2022-jp"},
    /* ｾｰﾙ開催中！お得です (cp932) */
    {B("\xbe\xb0\xd9\x8aJ\x8d\xc3\x92\x86\x81I\x82\xa8\x93\xbe\x82\xc5\x82"
        "\xb7"), "cp932"},
    /* ｾｰﾙ開催中！お得です (euc-jp) */
    {B("\x8e\xbe\x8e\xb0\x8e\xd9\xb3\xab\xba\xc5\xc3\xe6\xa1\xaa\xa4\xaa\xc6"
        "\xc0\xa4\xc7\xa4\xb9"), "euc-jp"},
    /* ｾｰﾙ開催中！お得です (utf-8) */
    {B("\xef\xbd\xbe\xef\xbd\xb0\xef\xbe\x99\xe9\x96\x8b\xe5\x82\xac\xe4\xb8"
        "\xad\xef\xbc\x81\xe3\x81\x8a\xe5\xbe\x97\xe3\x81\xa7\xe3\x81\x99"), "utf-8"},
    /* ｾｰﾙ開催中！お得です (jis) */
    {B("\x1b(I>0Y\x1b$B3+:ECf!*$*F@$G$9\x1b(B"), "iso-2022-jp"},
    /* Re: 打ち合わせの件 (cp932) */
    {B("Re: \x91\xc5\x82\xbf\x8d\x87\x82\xed\x82\xb9\x82\xcc\x8c\x8f"), "cp932"},
    /* Re: 打ち合わせの件 (euc-jp) */
    {B("Re: \xc2\xc7\xa4\xc1\xb9\xe7\xa4\xef\xa4\xbb\xa4\xce\xb7\xef"), "euc-jp"},
    /* Re: 打ち合わせの件 (utf-8) */
    {B("Re: \xe6\x89\x93\xe3\x81\xa1\xe5\x90\x88\xe3\x82\x8f\xe3\x81\x9b\xe3"
        "\x81\xae\xe4\xbb\xb6"), "utf-8"},
    /* Re: 打ち合わせの件 (jis) */
    {B("Re: \x1b$BBG$A9g$o$;$N7o\x1b(B"), "iso-2022-jp"},
    /* 株式会社①の請求書 (cp932) */
    {B("\x8a\x94\x8e\xae\x89\xef\x8e\xd0\x87@\x82\xcc\x90\xbf\x8b\x81\x8f"
        "\x91"), "cp932"},
    /* 株式会社①の請求書 (euc-jp) */
    {B("\xb3\xf4\xbc\xb0\xb2\xf1\xbc\xd2\xad\xa1\xa4\xce\xc0\xc1\xb5\xe1\xbd"
        "\xf1"), "euc-jp"},
    /* 株式会社①の請求書 (utf-8) */
    {B("\xe6\xa0\xaa\xe5\xbc\x8f\xe4\xbc\x9a\xe7\xa4\xbe\xe2\x91\xa0\xe3\x81"
        "\xae\xe8\xab\x8b\xe6\xb1\x82\xe6\x9b\xb8"), "utf-8"},
    /* 株式会社①の請求書 (jis) */
    {B("\x1b$B3t<02q<R-!$N@A5a=q\x1b(B"), "iso-2022-jp"},
    /* 日本語 (cp932) */
    {B("\x93\xfa\x96{\x8c\xea"), "cp932"},
    /* 日本語 (euc-jp) */
    {B("\xc6\xfc\xcb\xdc\xb8\xec"), "euc-jp"},
    /* 日本語 (utf-8) */
    {B("\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e"), "utf-8"},
    /* 日本語 (jis) */
    {B("\x1b$BF|K\\8l\x1b(B"), "iso-2022-jp"},
    /* ありがとう (cp932) */
    {B("\x82\xa0\x82\xe8\x82\xaa\x82\xc6\x82\xa4"), "cp932"},
    /* ありがとう (euc-jp) */
    {B("\xa4\xa2\xa4\xea\xa4\xac\xa4\xc8\xa4\xa6"), "euc-jp"},
    /* ありがとう (utf-8) */
    {B("\xe3\x81\x82\xe3\x82\x8a\xe3\x81\x8c\xe3\x81\xa8\xe3\x81\x86"), "utf-8"},
    /* ありがとう (jis) */
    {B("\x1b$B$\"$j$,$H$&\x1b(B"), "iso-2022-jp"},
    /* テスト (cp932) */
    {B("\x83" "e\x83X\x83g"), "cp932"},
    /* テスト (euc-jp) */
    {B("\xa5\xc6\xa5\xb9\xa5\xc8"), "euc-jp"},
    /* テスト (utf-8) */
    {B("\xe3\x83\x86\xe3\x82\xb9\xe3\x83\x88"), "utf-8"},
    /* テスト (jis) */
    {B("\x1b$B%F%9%H\x1b(B"), "iso-2022-jp"},
    /* 東京都千代田区丸の内 (cp932) */
    {B("\x93\x8c\x8b\x9e\x93s\x90\xe7\x91\xe3\x93" "c\x8b\xe6\x8a\xdb\x82"
        "\xcc\x93\xe0"), "cp932"},
    /* 東京都千代田区丸の内 (euc-jp) */
    {B("\xc5\xec\xb5\xfe\xc5\xd4\xc0\xe9\xc2\xe5\xc5\xc4\xb6\xe8\xb4\xdd\xa4"
        "\xce\xc6\xe2"), "euc-jp"},
    /* 東京都千代田区丸の内 (utf-8) */
    {B("\xe6\x9d\xb1\xe4\xba\xac\xe9\x83\xbd\xe5\x8d\x83\xe4\xbb\xa3\xe7\x94"
        "\xb0\xe5\x8c\xba\xe4\xb8\xb8\xe3\x81\xae\xe5\x86\x85"), "utf-8"},
    /* 東京都千代田区丸の内 (jis) */
    {B("\x1b$BEl5~ET@iBeED6h4]$NFb\x1b(B"), "iso-2022-jp"},
    /* 新年のご挨拶 (cp932) */
    {B("\x90V\x94N\x82\xcc\x82\xb2\x88\xa5\x8e" "A"), "cp932"},
    /* 新年のご挨拶 (euc-jp) */
    {B("\xbf\xb7\xc7\xaf\xa4\xce\xa4\xb4\xb0\xa7\xbb\xa2"), "euc-jp"},
    /* 新年のご挨拶 (utf-8) */
    {B("\xe6\x96\xb0\xe5\xb9\xb4\xe3\x81\xae\xe3\x81\x94\xe6\x8c\xa8\xe6\x8b"
        "\xb6"), "utf-8"},
    /* 新年のご挨拶 (jis) */
    {B("\x1b$B\?7G/$N$40';\"\x1b(B"), "iso-2022-jp"},
    /* 本日の予定 (cp932) */
    {B("\x96{\x93\xfa\x82\xcc\x97\\\x92\xe8"), "cp932"},
    /* 本日の予定 (euc-jp) */
    {B("\xcb\xdc\xc6\xfc\xa4\xce\xcd\xbd\xc4\xea"), "euc-jp"},
    /* 本日の予定 (utf-8) */
    {B("\xe6\x9c\xac\xe6\x97\xa5\xe3\x81\xae\xe4\xba\x88\xe5\xae\x9a"), "utf-8"},
    /* 本日の予定 (jis) */
    {B("\x1b$BK\\F|$NM=Dj\x1b(B"), "iso-2022-jp"},
    /* ご注文ありがとうございます (cp932) */
    {B("\x82\xb2\x92\x8d\x95\xb6\x82\xa0\x82\xe8\x82\xaa\x82\xc6\x82\xa4\x82"
        "\xb2\x82\xb4\x82\xa2\x82\xdc\x82\xb7"), "cp932"},
    /* ご注文ありがとうございます (euc-jp) */
    {B("\xa4\xb4\xc3\xed\xca\xb8\xa4\xa2\xa4\xea\xa4\xac\xa4\xc8\xa4\xa6\xa4"
        "\xb4\xa4\xb6\xa4\xa4\xa4\xde\xa4\xb9"), "euc-jp"},
    /* ご注文ありがとうございます (utf-8) */
    {B("\xe3\x81\x94\xe6\xb3\xa8\xe6\x96\x87\xe3\x81\x82\xe3\x82\x8a\xe3\x81"
        "\x8c\xe3\x81\xa8\xe3\x81\x86\xe3\x81\x94\xe3\x81\x96\xe3\x81\x84\xe3"
        "\x81\xbe\xe3\x81\x99"), "utf-8"},
    /* ご注文ありがとうございます (jis) */
    {B("\x1b$B$4CmJ8$\"$j$,$H$&$4$6$$$^$9\x1b(B"), "iso-2022-jp"},
    /* 第３四半期決算報告 (cp932) */
    {B("\x91\xe6\x82R\x8el\x94\xbc\x8a\xfa\x8c\x88\x8eZ\x95\xf1\x8d\x90"), "cp932"},
    /* 第３四半期決算報告 (euc-jp) */
    {B("\xc2\xe8\xa3\xb3\xbb\xcd\xc8\xbe\xb4\xfc\xb7\xe8\xbb\xbb\xca\xf3\xb9"
        "\xf0"), "euc-jp"},
    /* 第３四半期決算報告 (utf-8) */
    {B("\xe7\xac\xac\xef\xbc\x93\xe5\x9b\x9b\xe5\x8d\x8a\xe6\x9c\x9f\xe6\xb1"
        "\xba\xe7\xae\x97\xe5\xa0\xb1\xe5\x91\x8a"), "utf-8"},
    /* 第３四半期決算報告 (jis) */
    {B("\x1b$BBh#3;MH>4|7h;;Js9p\x1b(B"), "iso-2022-jp"},
    /* Crème brûlée à la française (cp1252) */
    {B("Cr\xe8me br\xfbl\xe9" "e \xe0 la fran\xe7" "aise"), "windows-1252"},
    /* Müller & Söhne (cp1252) */
    {B("M\xfcller & S\xf6hne"), "windows-1252"},
    /* naïve café (cp1252) */
    {B("na\xefve caf\xe9"), "windows-1252"},
    /* S’il vous plaît (cp1252) */
    {B("S\x92il vous pla\xeet"), "windows-1252"},
    /* año, señor (cp1252) */
    {B("a\xf1o, se\xf1or"), "windows-1252"},
    /* plain */
    {B("plain ascii"), "us-ascii"},
    /* ansi escape */
    {B("esc \x1b[0m only"), "us-ascii"},
    /* kana esc */
    {B("\x1b(I12\x1b(B"), "iso-2022-jp"},
    /* jis with jis8 kana */
    {B("\x1b$B$\"\x1b(B\xb1\xb2"), "iso-2022-jp"},
};
/* clang-format on */
/* END GENERATED CASES */

/*
 * Helpers
 */

struct result {
    GString *out;
    size_t repl;
    const char *name;
};

static void result_clear(struct result *r)
{
    g_string_free(r->out, TRUE);
    r->out = NULL;
}

/* Valid UTF-8; unlike g_utf8_validate_len, U+0000 is allowed. */
static bool utf8_valid(const char *s, size_t len)
{
    const char *end = s + len;

    while (s < end) {
        const char *nul = memchr(s, '\0', (size_t)(end - s));
        const char *stop = nul != NULL ? nul : end;

        if (!g_utf8_validate_len(s, (gsize)(stop - s), NULL))
            return false;
        s = stop + (nul != NULL);
    }
    return true;
}

/* Convert with the streaming API, cutting the input at the offsets
 * given by next_cut (NULL: one feed). */
typedef size_t (*cut_fn)(void *user, size_t remaining);

static struct result convert(const char *label, const void *in, size_t len, cut_fn next_cut,
                             void *user)
{
    struct mg_charset_conv *c = mg_charset_conv_new(label);
    struct result r = {g_string_new(NULL), 0, NULL};
    const guchar *p = in;

    while (len > 0) {
        size_t n = next_cut != NULL ? next_cut(user, len) : len;

        n = MAX(1, MIN(n, len));
        mg_charset_conv_feed(c, p, n, r.out);
        p += n;
        len -= n;
    }
    mg_charset_conv_finish(c, r.out);
    r.repl = mg_charset_conv_replacements(c);
    r.name = mg_charset_conv_name(c);
    g_assert_null(mg_charset_conv_free(c));
    return r;
}

static size_t cut_fixed(void *user, size_t remaining)
{
    (void)remaining;
    return *(size_t *)user;
}

static size_t cut_random(void *user, size_t remaining)
{
    GRand *rnd = user;

    /* Mostly tiny chunks, sometimes big ones. */
    if (g_rand_int_range(rnd, 0, 8) == 0)
        return (size_t)g_rand_int_range(rnd, 1, (gint32)MIN(remaining, 100000) + 1);
    return (size_t)g_rand_int_range(rnd, 1, 9);
}

static void assert_same(const struct result *a, const struct result *b, const char *what)
{
    if (a->out->len != b->out->len || memcmp(a->out->str, b->out->str, a->out->len) != 0 ||
        a->repl != b->repl || g_strcmp0(a->name, b->name) != 0) {
        g_test_message("%s: split output differs (%zu/%zu bytes, %zu/%zu repl, %s/%s)", what,
                       a->out->len, b->out->len, a->repl, b->repl, a->name, b->name);
        g_test_fail();
    }
}

/* The one-shot result, checked against every chunking. */
static struct result convert_all_ways(const char *label, const void *in, size_t len, guint32 seed,
                                      const char *what)
{
    struct result whole = convert(label, in, len, NULL, NULL);
    GString *direct = g_string_new("prefix:");
    size_t repl = mg_charset_to_utf8(label, in, len, direct);
    GRand *rnd = g_rand_new_with_seed(seed);

    g_assert_cmpmem(direct->str + 7, direct->len - 7, whole.out->str, whole.out->len);
    g_assert_cmpuint(repl, ==, whole.repl);
    g_string_free(direct, TRUE);
    if (!utf8_valid(whole.out->str, whole.out->len)) {
        g_test_message("%s: output is not valid UTF-8", what);
        g_test_fail();
    }
    for (size_t chunk = 1; chunk <= 17; chunk++) {
        struct result r = convert(label, in, len, cut_fixed, &chunk);

        assert_same(&whole, &r, what);
        result_clear(&r);
    }
    for (int i = 0; i < 20; i++) {
        struct result r = convert(label, in, len, cut_random, rnd);

        assert_same(&whole, &r, what);
        result_clear(&r);
    }
    g_rand_free(rnd);
    return whole;
}

static void assert_text(const struct result *r, const char *want, size_t wantlen, const char *what)
{
    if (r->out->len != wantlen || memcmp(r->out->str, want, wantlen) != 0) {
        g_test_message("%s: got \"%.*s\", want \"%.*s\"", what, (int)MIN(r->out->len, 300),
                       r->out->str, (int)MIN(wantlen, 300), want);
        g_test_fail();
    }
}

static char *source_root(void)
{
    char *a = g_path_get_dirname(__FILE__); /* tests/unit */
    char *b = g_path_get_dirname(a);
    char *c = g_path_get_dirname(b);

    g_free(a);
    g_free(b);
    return c;
}

/* A corpus directory from $env, else relative to the source root. The
 * caller skips (visibly) when NULL. */
static char *data_dir(const char *env, const char *fallback, const char *sub)
{
    const char *e = g_getenv(env);
    char *root = source_root();
    char *base = e != NULL && *e != '\0' ? g_strdup(e) : g_build_filename(root, fallback, NULL);
    char *dir = g_build_filename(base, sub, NULL);

    g_free(root);
    g_free(base);
    if (!g_file_test(dir, G_FILE_TEST_IS_DIR)) {
        g_test_message("%s not found (set %s)", dir, env);
        g_free(dir);
        return NULL;
    }
    return dir;
}

/* dir/name, or the path dir when name is NULL. */
static GBytes *read_file(const char *dir, const char *name)
{
    char *path = g_build_filename(dir, name, NULL);
    char *data = NULL;
    gsize len = 0;
    GError *err = NULL;

    if (!g_file_get_contents(path, &data, &len, &err)) {
        g_test_message("%s: %s", path, err->message);
        g_error_free(err);
        g_free(path);
        return NULL;
    }
    g_free(path);
    return g_bytes_new_take(data, len);
}

/*
 * Tests
 */

static void test_canon(void)
{
    static const struct {
        const char *label;
        const char *want;
    } t[] = {
        {"us-ascii", "us-ascii"},
        {"US-ASCII", "us-ascii"},
        {"ascii", "us-ascii"},
        {" \"UTF-8\" ", "utf-8"},
        {"utf8", "utf-8"},
        {"'utf-8'", "utf-8"},
        {"\tISO-2022-JP\r\n", "iso-2022-jp"},
        {"iso-2022-jp-2", "iso-2022-jp"},
        {"ISO-2022-JP-3", "iso-2022-jp"},
        {"csISO2022JP", "iso-2022-jp"},
        {"CP50220", "iso-2022-jp"},
        {"cp50221", "iso-2022-jp"},
        {"cp50222", "iso-2022-jp"},
        {"iso-2022-jp*ja", "iso-2022-jp"},
        {"Shift_JIS", "cp932"},
        {"SJIS", "cp932"},
        {"x-sjis", "cp932"},
        {"MS_Kanji", "cp932"},
        {"Windows-31J", "cp932"},
        {"cp932", "cp932"},
        {"EUC-JP", "euc-jp"},
        {"x-euc-jp", "euc-jp"},
        {"eucJP-ms", "euc-jp"},
        {"ISO-8859-1", "windows-1252"},
        {"iso_8859-1:1987", "windows-1252"},
        {"latin1", "windows-1252"},
        {"windows-1252", "windows-1252"},
        {"cp1252", "windows-1252"},
        {"x-cp1251", "windows-1251"},
        {"ISO8859-2", "iso-8859-2"},
        {"iso_8859-15", "iso-8859-15"},
        {"iso-8859-9", "windows-1254"},
        {"KOI8-R", "koi8-r"},
        {"koi8-u", "koi8-u"},
        {"GB2312", "gb18030"},
        {"GBK", "gb18030"},
        {"gb18030", "gb18030"},
        {"Big5", "big5"},
        {"big5-hkscs", "big5-hkscs"},
        {"EUC-KR", "cp949"},
        {"ks_c_5601-1987", "cp949"},
        {"UTF-16", "utf-16"},
        {"utf-16le", "utf-16le"},
        {"UTF-32BE", "utf-32be"},
        {"UTF-7", "utf-7"},
        {"ibm866", "ibm866"},
        {"x-unknown", NULL},
        {"unknown-8bit", NULL},
        {"no-such-charset", NULL},
        {"", NULL},
        {"  ", NULL},
        {"\"\"", NULL},
        {"utf-8//TRANSLIT", NULL},
        {"utf 8", NULL},
        {"char", NULL},
    };

    for (size_t i = 0; i < G_N_ELEMENTS(t); i++) {
        const char *got = mg_charset_canon(t[i].label);

        if (g_strcmp0(got, t[i].want) != 0) {
            g_test_message("canon(\"%s\") = %s, want %s", t[i].label, got, t[i].want);
            g_test_fail();
        }
    }
    g_assert_null(mg_charset_canon(NULL));
    /* Interned: equal names are the same pointer. */
    g_assert_true(mg_charset_canon("Shift_JIS") == mg_charset_canon("cp932"));
    g_assert_true(mg_charset_canon("latin1") == mg_charset_canon("windows-1252"));
    g_assert_true(mg_charset_canon("iso-8859-9") == mg_charset_canon("cp1254"));
    g_assert_true(mg_charset_canon("ISO-8859-2") == mg_charset_canon("iso_8859-2"));
    {
        char *big = g_strnfill(5000, 'a');

        g_assert_null(mg_charset_canon(big));
        g_free(big);
    }
}

static void test_cases(void)
{
    for (size_t i = 0; i < G_N_ELEMENTS(conv_cases); i++) {
        const struct conv_case *tc = &conv_cases[i];
        struct result r =
            convert_all_ways(tc->label, tc->in, tc->inlen, 1000 + (guint32)i, tc->name);

        if (tc->want != NULL) {
            assert_text(&r, tc->want, tc->wantlen, tc->name);
            if (r.repl != tc->repl) {
                g_test_message("%s: %zu replacements, want %zu", tc->name, r.repl, tc->repl);
                g_test_fail();
            }
        } else if (r.repl != 0) {
            g_test_message("%s: %zu replacements", tc->name, r.repl);
            g_test_fail();
        }
        if (g_strcmp0(r.name, tc->cname) != 0) {
            g_test_message("%s: name %s, want %s", tc->name, r.name, tc->cname);
            g_test_fail();
        }
        result_clear(&r);
    }
}

static void test_sniff(void)
{
    for (size_t i = 0; i < G_N_ELEMENTS(sniff_cases); i++) {
        const struct sniff_case *sc = &sniff_cases[i];
        const char *got = mg_charset_sniff(sc->in, sc->inlen);

        if (g_strcmp0(got, sc->want) != 0) {
            g_test_message("sniff #%zu \"%.*s\": %s, want %s", i, (int)sc->inlen, sc->in, got,
                           sc->want);
            g_test_fail();
        }
    }
    g_assert_cmpstr(mg_charset_sniff(NULL, 0), ==, "us-ascii");
    g_assert_cmpstr(mg_charset_sniff("", 0), ==, "us-ascii");
}

/* Sniff a real text encoded by glibc (whole, and every window of ten
 * characters that holds at least three non-ASCII ones). */
static void sniff_text(const char *utf8, const char *iconv_name, const char *want, size_t *tried,
                       size_t *wrong)
{
    glong nchars = g_utf8_strlen(utf8, -1);
    gsize len;
    char *enc = g_convert(utf8, -1, iconv_name, "UTF-8", NULL, &len, NULL);

    if (enc != NULL) /* NULL: e.g. JIS X 0212 kanji have no CP932 code */
        g_assert_cmpstr(mg_charset_sniff(enc, len), ==, want);
    g_free(enc);
    for (glong i = 0; i + 10 <= nchars; i++) {
        const char *b = g_utf8_offset_to_pointer(utf8, i);
        const char *e = g_utf8_offset_to_pointer(b, 10);
        int high = 0;

        for (const char *p = b; p < e; p = g_utf8_next_char(p))
            high += (guchar)*p >= 0x80;
        if (high < 3)
            continue;
        enc = g_convert(b, e - b, iconv_name, "UTF-8", NULL, &len, NULL);
        if (enc == NULL)
            continue;
        (*tried)++;
        if (g_strcmp0(mg_charset_sniff(enc, len), want) != 0) {
            (*wrong)++;
            g_test_message("sniff %s window \"%.*s\": %s", want, (int)(e - b), b,
                           mg_charset_sniff(enc, len));
        }
        g_free(enc);
    }
}

static void test_sniff_corpus(void)
{
    char *gm = data_dir("MUGAIKA_SHARED", "../shared", "corpus/gmime/filters");
    char *td = data_dir("MUGAIKA_TESTDATA", "testdata", "charset");
    static const char *const texts[][2] = {
        {"gm", "japanese.utf-8.txt"},
        {"td", "outlook-nec.utf-8.txt"},
        {"td", "mobile.utf-8.txt"},
        {"td", "eucjp-ms.utf-8.txt"},
    };
    size_t tried = 0, wrong = 0;

    if (gm == NULL || td == NULL) {
        g_test_skip("corpus directories not found");
        goto out;
    }
    for (size_t i = 0; i < G_N_ELEMENTS(texts); i++) {
        GBytes *b = read_file(strcmp(texts[i][0], "gm") == 0 ? gm : td, texts[i][1]);
        char *s;

        g_assert_nonnull(b);
        s = g_strndup(g_bytes_get_data(b, NULL), g_bytes_get_size(b));
        sniff_text(s, "CP932", "cp932", &tried, &wrong);
        sniff_text(s, "EUC-JP-MS", "euc-jp", &tried, &wrong);
        g_free(s);
        g_bytes_unref(b);
    }
    g_test_message("sniffed %zu windows, %zu wrong", tried, wrong);
    g_assert_cmpuint(tried, >, 1000);
    g_assert_cmpuint(wrong, ==, 0);
    {
        GBytes *b = read_file(gm, "french-fable.cp1252.txt");

        g_assert_nonnull(b);
        g_assert_cmpstr(mg_charset_sniff(g_bytes_get_data(b, NULL), g_bytes_get_size(b)), ==,
                        "windows-1252");
        g_bytes_unref(b);
    }
out:
    g_free(gm);
    g_free(td);
}

/* gmime's chinese.big5.txt was made from a text with Japanese kanji,
 * which Big5 lacks and its maker dropped: the output must be the
 * reference with some characters left out, and most of them kept. */
static void assert_subsequence(const struct result *r, const char *ref, size_t len,
                               const char *what)
{
    const char *p = r->out->str, *end = p + r->out->len;
    const char *q = ref, *qend = ref + len;
    size_t kept = 0, total = 0;

    while (p < end) {
        gunichar ch = g_utf8_get_char(p);

        while (q < qend && g_utf8_get_char(q) != ch) {
            q = g_utf8_next_char(q);
            total++;
        }
        if (q == qend) {
            g_test_message("%s: output char U+%04X at %zd is not in the reference", what, ch,
                           (gssize)(p - r->out->str));
            g_test_fail();
            return;
        }
        p = g_utf8_next_char(p);
        q = g_utf8_next_char(q);
        kept++;
        total++;
    }
    total += (size_t)g_utf8_strlen(q, qend - q);
    g_test_message("%s: %zu of %zu reference characters", what, kept, total);
    g_assert_cmpuint(kept * 10, >=, total * 8);
}

static gint compare_names(gconstpointer a, gconstpointer b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Convert every NAME.LABEL.txt that has a NAME.utf-8.txt in dir and
 * compare. Returns the number of pairs. */
static size_t run_pairs(const char *dir, bool sniff_too)
{
    GDir *d = g_dir_open(dir, 0, NULL);
    GPtrArray *names = g_ptr_array_new_with_free_func(g_free);
    const char *ent;
    size_t pairs = 0;

    g_assert_nonnull(d);
    while ((ent = g_dir_read_name(d)) != NULL)
        g_ptr_array_add(names, g_strdup(ent));
    g_dir_close(d);
    g_ptr_array_sort(names, compare_names);
    for (guint i = 0; i < names->len; i++) {
        const char *file = g_ptr_array_index(names, i);
        char **part = g_strsplit(file, ".", 0);
        char *refname;
        GBytes *in, *ref;
        struct result r;

        if (g_strv_length(part) != 3 || strcmp(part[2], "txt") != 0 ||
            strcmp(part[1], "utf-8") == 0) {
            g_strfreev(part);
            continue;
        }
        refname = g_strdup_printf("%s%c%s.utf-8.txt", dir, G_DIR_SEPARATOR, part[0]);
        in = read_file(dir, file);
        ref = g_file_test(refname, G_FILE_TEST_EXISTS) ? read_file(refname, NULL) : NULL;
        g_assert_nonnull(in);
        r = convert_all_ways(part[1], g_bytes_get_data(in, NULL), g_bytes_get_size(in),
                             g_str_hash(file), file);
        g_test_message("%s: %s, %zu replacements", file, r.name, r.repl);
        if (ref == NULL) {
            /* No reference (french-fable): clean conversion only. */
            g_assert_cmpuint(r.repl, ==, 0);
        } else {
            const char *rs = g_bytes_get_data(ref, NULL);
            size_t rl = g_bytes_get_size(ref);

            if (strcmp(part[0], "chinese") == 0)
                assert_subsequence(&r, rs, rl, file);
            else
                assert_text(&r, rs, rl, file);
            g_assert_cmpuint(r.repl, ==, 0);
            if (sniff_too && strcmp(part[0], "japanese") == 0) {
                /* Unlabelled, the same bytes must be recognised. */
                struct result u = convert_all_ways(NULL, g_bytes_get_data(in, NULL),
                                                   g_bytes_get_size(in), 7, file);

                assert_text(&u, rs, rl, file);
                result_clear(&u);
            }
            g_bytes_unref(ref);
        }
        pairs++;
        result_clear(&r);
        g_bytes_unref(in);
        g_free(refname);
        g_strfreev(part);
    }
    g_ptr_array_unref(names);
    return pairs;
}

static void test_pairs_gmime(void)
{
    char *dir = data_dir("MUGAIKA_SHARED", "../shared", "corpus/gmime/filters");

    if (dir == NULL) {
        g_test_skip("gmime corpus not found");
        return;
    }
    /* japanese x2, chinese, cyrillic x3, french-fable */
    g_assert_cmpuint(run_pairs(dir, true), >=, 7);
    g_free(dir);
}

static void test_pairs_testdata(void)
{
    char *dir = data_dir("MUGAIKA_TESTDATA", "testdata", "charset");

    if (dir == NULL) {
        g_test_skip("testdata/charset not found");
        return;
    }
    g_assert_cmpuint(run_pairs(dir, false), >=, 12);
    g_free(dir);
}

/* A body that follows the first blank line. */
static const char *body_of(const char *msg, size_t len, size_t *bodylen)
{
    const char *p = g_strstr_len(msg, (gssize)len, "\n\n");

    g_assert_nonnull(p);
    p += 2;
    *bodylen = len - (size_t)(p - msg);
    return p;
}

static void test_mimekit(void)
{
    char *dir = data_dir("MUGAIKA_SHARED", "../shared", "corpus/mimekit/messages");
    /* Python: body.decode("iso2022_jp") */
    static const char want_body[] = "Let's see if both subject and body works fine...\n\n"
                                    "\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e\xe3\x81\x8c\n"
                                    "\xe6\xad\xa3\xe5\xb8\xb8\xe3\x81\xab\n"
                                    "\xe9\x80\x81\xe3\x82\x8c\xe3\x81\xa6\xe3\x81\x84"
                                    "\xe3\x82\x8b\xe3\x81\x8b\n"
                                    "\xe3\x83\x86\xe3\x82\xb9\xe3\x83\x88.\n";
    /* The two encoded words of the Subject, base64-decoded and joined. */
    static const char subj_b64[] = "GyRCRnxLXDhsJWEhPCVrJUYlOSVIGyhCICh0ZXN0aW5nIEph";
    static const char subj_b64b[] = "cGFuZXNlIGVtYWlscyk=";
    static const char want_subj[] = "\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e\xe3\x83\xa1\xe3\x83"
                                    "\xbc\xe3\x83\xab\xe3\x83\x86\xe3\x82\xb9\xe3\x83\x88"
                                    " (testing Japanese emails)";
    GBytes *msg;
    const char *body;
    size_t bodylen;
    struct result r;
    GString *raw = g_string_new(NULL);
    guchar *dec;
    gsize declen;

    if (dir == NULL) {
        g_test_skip("mimekit corpus not found");
        g_string_free(raw, TRUE);
        return;
    }
    msg = read_file(dir, "japanese.txt");
    g_assert_nonnull(msg);
    body = body_of(g_bytes_get_data(msg, NULL), g_bytes_get_size(msg), &bodylen);
    r = convert_all_ways("ISO-2022-JP", body, bodylen, 11, "mimekit japanese.txt");
    assert_text(&r, want_body, sizeof want_body - 1, "mimekit body");
    g_assert_cmpuint(r.repl, ==, 0);
    result_clear(&r);
    dec = g_base64_decode(subj_b64, &declen);
    g_string_append_len(raw, (const char *)dec, (gssize)declen);
    g_free(dec);
    dec = g_base64_decode(subj_b64b, &declen);
    g_string_append_len(raw, (const char *)dec, (gssize)declen);
    g_free(dec);
    r = convert_all_ways("iso-2022-jp", raw->str, raw->len, 12, "mimekit subject");
    assert_text(&r, want_subj, sizeof want_subj - 1, "mimekit subject");
    result_clear(&r);
    g_string_free(raw, TRUE);
    g_bytes_unref(msg);
    g_free(dir);
}

/* Inputs longer than the 64 KiB sniff window. */
static void test_large(void)
{
    /* "日本語です。" in CP932 */
    static const char sj[] = "\x93\xfa\x96\x7b\x8c\xea\x82\xc5\x82\xb7\x81\x42";
    static const char sj_utf8[] = "\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e\xe3\x81\xa7\xe3\x81\x99"
                                  "\xe3\x80\x82";
    GString *in = g_string_new(NULL);
    GString *want = g_string_new(NULL);
    struct result r;
    struct mg_charset_conv *c;
    GString *out;
    GRand *rnd = g_rand_new_with_seed(4242);

    /* 1: long ASCII prefix under us-ascii, then Shift_JIS. */
    for (int i = 0; i < 7000; i++)
        g_string_append(in, "0123456789");
    g_string_append(want, in->str);
    g_string_append(in, sj);
    g_string_append(want, sj_utf8);
    r = convert_all_ways("us-ascii", in->str, in->len, 1, "ascii prefix");
    assert_text(&r, want->str, want->len, "ascii prefix");
    g_assert_cmpstr(r.name, ==, "cp932");
    result_clear(&r);

    /* 2: unlabelled Shift_JIS, 150 KiB: decided at 64 KiB. */
    g_string_truncate(in, 0);
    g_string_truncate(want, 0);
    while (in->len < 150 * 1024) {
        g_string_append(in, sj);
        g_string_append(want, sj_utf8);
        g_string_append_c(in, '\n');
        g_string_append_c(want, '\n');
    }
    r = convert_all_ways(NULL, in->str, in->len, 2, "long sjis");
    assert_text(&r, want->str, want->len, "long sjis");
    g_assert_cmpstr(r.name, ==, "cp932");
    result_clear(&r);

    /* The held back part is bounded: output flows before finish. */
    c = mg_charset_conv_new("us-ascii");
    out = g_string_new(NULL);
    for (size_t off = 0; off < in->len; off += 1000)
        mg_charset_conv_feed(c, in->str + off, MIN(1000, in->len - off), out);
    g_assert_cmpuint(out->len, >=, want->len - 64 * 1024 * 2);
    g_assert_cmpstr(mg_charset_conv_name(c), ==, "cp932");
    mg_charset_conv_finish(c, out);
    g_assert_cmpmem(out->str, out->len, want->str, want->len);
    mg_charset_conv_free(c);
    g_string_free(out, TRUE);

    /* 3: an ANSI escape opens a window that stays ASCII; Shift_JIS
     * after it opens a second one. */
    g_string_assign(in, "\x1b[0m");
    for (int i = 0; i < 7000; i++)
        g_string_append(in, "abcdefghij");
    g_string_assign(want, in->str);
    g_string_append(in, sj);
    g_string_append(want, sj_utf8);
    r = convert_all_ways("us-ascii", in->str, in->len, 3, "two windows");
    assert_text(&r, want->str, want->len, "two windows");
    g_assert_cmpstr(r.name, ==, "cp932");
    result_clear(&r);

    /* 4: utf-8 label, valid for 70 KiB, then one bad byte: stays UTF-8. */
    g_string_truncate(in, 0);
    while (in->len < 70 * 1024)
        g_string_append(in, sj_utf8);
    g_string_assign(want, in->str);
    g_string_append(in, "\xff!");
    g_string_append(want, "\xef\xbf\xbd!");
    r = convert_all_ways("utf-8", in->str, in->len, 4, "late bad utf-8");
    assert_text(&r, want->str, want->len, "late bad utf-8");
    g_assert_cmpuint(r.repl, ==, 1);
    g_assert_cmpstr(r.name, ==, "utf-8");
    result_clear(&r);

    /* 5: the name is unknown while the window is being held. */
    c = mg_charset_conv_new("us-ascii");
    out = g_string_new(NULL);
    mg_charset_conv_feed(c, "abc", 3, out);
    g_assert_null(mg_charset_conv_name(c));
    mg_charset_conv_feed(c, sj, sizeof sj - 1, out);
    g_assert_null(mg_charset_conv_name(c));
    g_assert_cmpstr(out->str, ==, "abc");
    mg_charset_conv_finish(c, out);
    g_assert_cmpstr(mg_charset_conv_name(c), ==, "cp932");
    mg_charset_conv_free(c);
    g_string_free(out, TRUE);

    /* 6: trusted labels are decided at once. */
    c = mg_charset_conv_new("Shift_JIS");
    g_assert_cmpstr(mg_charset_conv_name(c), ==, "cp932");
    mg_charset_conv_free(c);
    g_assert_null(mg_charset_conv_free(NULL));

    g_rand_free(rnd);
    g_string_free(in, TRUE);
    g_string_free(want, TRUE);
}

/* Random inputs (fixed seed): no crash, valid UTF-8, every byte of
 * input accounted for, split-invariant. */
/* Broken UTF-7 base64 runs (found by fuzz_decode): the output must not
 * depend on where the chunks end. */
static void test_utf7_split(void)
{
    static const char in[] = "\x9a\x09+3LI x +3LI y \n+3LI z +3LI";
    const size_t len = sizeof(in) - 1;
    GString *whole = g_string_new(NULL);

    mg_charset_to_utf8("utf-7", in, len, whole);
    g_assert_true(g_utf8_validate(whole->str, (gssize)whole->len, NULL));
    for (size_t a = 0; a <= len; a++) {
        for (size_t b = a; b <= len; b++) {
            struct mg_charset_conv *c = mg_charset_conv_new("utf-7");
            GString *got = g_string_new(NULL);
            mg_charset_conv_feed(c, in, a, got);
            mg_charset_conv_feed(c, in + a, b - a, got);
            mg_charset_conv_feed(c, in + b, len - b, got);
            mg_charset_conv_finish(c, got);
            mg_charset_conv_free(c);
            if (!g_string_equal(got, whole))
                g_error("utf-7 split %zu/%zu: '%s' != '%s'", a, b, got->str, whole->str);
            g_string_free(got, TRUE);
        }
    }
    g_string_free(whole, TRUE);
}

static void test_robust(void)
{
    static const char *const labels[] = {
        NULL,     "us-ascii", "utf-8",   "iso-2022-jp", "shift_jis",    "euc-jp", "utf-16",
        "utf-32", "utf-7",    "gb18030", "big5",        "windows-1252", "koi8-r", "cp949",
    };
    static const char *const frags[] = {
        "\x1b$B",
        "\x1b(B",
        "\x1b(I",
        "\x1b(J",
        "\x1b$@",
        "\x1b$(D",
        "\x1b$(Q",
        "\x1b$(P",
        "\x1b$A",
        "\x1b$(C",
        "\x1b.A",
        "\x1b.F",
        "\x1bN",
        "\x1b&@",
        "\x0e",
        "\x0f",
        "\x1b",
        "\x1b$",
        "\x1b$(",
        "-!",
        "y!",
        "|r",
        "\x82\xa0",
        "\x87\x40",
        "\xa4\xa2",
        "\x8e\xb1",
        "\x8f\xb0\xa1",
        "\xe6\x97\xa5",
        "\xf0\x9f\x98\x80",
        "\xed\xa0\x80",
        "+ZeV-",
        "\xff\xfe",
        "\xfe\xff",
        "\x00",
        "\r\n",
    };
    GRand *rnd = g_rand_new_with_seed(20240601);
    GByteArray *buf = g_byte_array_new();

    for (int iter = 0; iter < 3000; iter++) {
        const char *label = labels[g_rand_int_range(rnd, 0, G_N_ELEMENTS(labels))];
        int len = g_rand_int_range(rnd, 0, iter % 100 == 0 ? 5000 : 200);
        struct result whole;

        g_byte_array_set_size(buf, 0);
        while ((int)buf->len < len) {
            if (g_rand_boolean(rnd)) {
                guint8 b = (guint8)g_rand_int(rnd);

                g_byte_array_append(buf, &b, 1);
            } else {
                const char *f = frags[g_rand_int_range(rnd, 0, G_N_ELEMENTS(frags))];

                g_byte_array_append(buf, (const guint8 *)f, (guint)MAX(1, strlen(f)));
            }
        }
        whole = convert(label, buf->data, buf->len, NULL, NULL);
        g_assert_true(utf8_valid(whole.out->str, whole.out->len));
        g_assert_cmpuint(whole.repl, <=, buf->len + 1);
        for (int k = 0; k < 3; k++) {
            struct result r = convert(label, buf->data, buf->len, cut_random, rnd);

            assert_same(&whole, &r, label != NULL ? label : "(null)");
            result_clear(&r);
        }
        result_clear(&whole);
    }
    g_byte_array_unref(buf);
    g_rand_free(rnd);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/charset/canon", test_canon);
    g_test_add_func("/charset/cases", test_cases);
    g_test_add_func("/charset/sniff", test_sniff);
    g_test_add_func("/charset/sniff-corpus", test_sniff_corpus);
    g_test_add_func("/charset/pairs/gmime", test_pairs_gmime);
    g_test_add_func("/charset/pairs/testdata", test_pairs_testdata);
    g_test_add_func("/charset/mimekit", test_mimekit);
    g_test_add_func("/charset/large", test_large);
    g_test_add_func("/charset/robust", test_robust);
    g_test_add_func("/charset/utf7-split", test_utf7_split);
    return g_test_run();
}
