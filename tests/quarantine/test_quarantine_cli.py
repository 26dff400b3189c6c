#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""
NAME
    test_quarantine_cli - `mugaika quarantine`: commands, output, exit codes

SYNOPSIS
    test_quarantine_cli.py MUGAIKA QPUT

DESCRIPTION
    Fills a quarantine in a temporary directory with the test-only qput
    program, then runs each command of `mugaika quarantine` and checks
    its output and every exit code: 0 ok, 64 usage, 65 corrupt object,
    66 no such quarantine or item, 75 I/O error, 78 not a directory.
    The index is aged with Python's sqlite3 module to test expire.
"""
import glob
import hashlib
import json
import os
import re
import sqlite3
import subprocess
import sys
import tempfile
import time

FAILED = []
ID_RE = re.compile(r"^\d{8}-[0-9a-z]{11}$")
ISO_RE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$")


def check(cond, what):
    print(("ok   " if cond else "FAIL ") + what)
    if not cond:
        FAILED.append(what)


def run(binary, *args, stdout=subprocess.PIPE):
    return subprocess.run([binary, *args], stdout=stdout, stderr=subprocess.PIPE)


def main():
    mugaika, qput = sys.argv[1:3]
    tmp = tempfile.TemporaryDirectory(prefix="mgq-cli-")
    base = tmp.name
    qdir = os.path.join(base, "q")

    def mq(*args, **kw):
        return run(mugaika, "quarantine", "--quarantine", qdir, *args, **kw)

    # a missing quarantine: 66 for every command, nothing created
    for cmd in (["list"], ["show", "20240101-aaaaaaaaaaa"], ["export", "20240101-aaaaaaaaaaa"],
                ["expire", "--days", "1"]):
        r = mq(*cmd)
        check(r.returncode == 66, f"{cmd[0]} on a missing quarantine exits 66")
        check(qdir.encode() in r.stderr and b"no such quarantine" in r.stderr,
              f"{cmd[0]}: the message names the directory")
    check(not os.path.exists(qdir), "read commands create no directory")

    # records
    files = {}
    def put(name, data, sender, subject, result="rewritten", parts="[]"):
        path = os.path.join(base, name)
        with open(path, "wb") as f:
            f.write(data)
        r = run(qput, qdir, path, sender, subject, result, parts)
        check(r.returncode == 0, f"qput {name}")
        qid = r.stdout.decode().strip()
        check(ID_RE.match(qid) is not None, f"qput {name} prints an id")
        files[qid] = data
        return qid

    long_subject = "件名" * 50
    id1 = put("one.eml", b"Subject: hello\r\n\r\nbody\r\n", "alice@example.org", "hello")
    id2 = put("two.eml", b"x" * 1000, "bob@example.org\x1b[2J", "red \x1b[31malert\x07 " + long_subject,
              "blocked", '[{"path":"1","type":"application/pdf","action":"removed"}]')
    rnd = os.urandom(300000)
    id3 = put("three.bin", rnd, "carol@example.org", "binary")

    # list
    r = mq("list")
    lines = r.stdout.decode().splitlines()
    check(r.returncode == 0, "list exits 0")
    check(len(lines) == 3, "list prints one line per item")
    check([l.split("  ")[0] for l in lines] == [id3, id2, id1], "list is newest first")
    f1 = lines[2].split("  ")
    check(ISO_RE.match(f1[1]) is not None, "list time is ISO 8601 UTC")
    check(f1[2:] == ["alice@example.org", "hello", "rewritten"], "list fields sender, subject, result")
    check(b"\x1b" not in r.stdout and b"\x07" not in r.stdout, "control characters never reach the terminal")
    check("\\x1b[31malert\\x07" in lines[1] and "\\x1b[2J" in lines[1], "control characters are escaped")
    subj = lines[1].split("  ")[3]
    cut = ("red \x1b[31malert\x07 " + long_subject)[:60]
    check(subj == cut.replace("\x1b", "\\x1b").replace("\x07", "\\x07") + "...",
          "a long subject is cut at 60 characters")

    r = mq("list", "--limit", "2")
    check(r.returncode == 0 and len(r.stdout.splitlines()) == 2, "list --limit 2 prints two")
    r = mq("list", "--json")
    objs = [json.loads(l) for l in r.stdout.splitlines()]
    check(r.returncode == 0 and len(objs) == 3, "list --json: one object per line")
    keys = {"id", "time", "kind", "message_id", "sender", "recipients", "subject", "sha256", "size",
            "result"}
    check(all(keys <= set(o) for o in objs), "list --json objects have every field")
    check(objs[1]["subject"] == "red \x1b[31malert\x07 " + long_subject, "JSON keeps the full subject")
    check(objs[0]["sha256"] == hashlib.sha256(rnd).hexdigest() and objs[0]["size"] == len(rnd),
          "list --json sha256 and size of the original")
    check(ISO_RE.match(objs[0]["time"]) is not None, "list --json time is ISO 8601")
    for bad in (["list", "--limit"], ["list", "--limit", "x"], ["list", "--bogus"]):
        check(mq(*bad).returncode == 64, f"{' '.join(bad)} exits 64")

    # show
    r = mq("show", id2)
    out = r.stdout.decode()
    check(r.returncode == 0, "show exits 0")
    for field in ("id:", "time:", "kind:", "message-id:", "sender:", "recipients:", "subject:",
                  "sha256:", "size:", "result:", "parts:"):
        check(re.search("^" + re.escape(field), out, re.M) is not None, f"show prints {field}")
    check(id2 in out and "blocked" in out and "1000" in out, "show prints the values")
    check(b"\x1b" not in r.stdout, "show escapes control characters")
    check('\n  [\n' in out and '"type" : "application/pdf"' in out, "show pretty-prints the parts")
    r = mq("show", id2, "--json")
    doc = json.loads(r.stdout)
    check(r.returncode == 0 and doc["id"] == id2 and doc["parts"][0]["action"] == "removed",
          "show --json: one object, parts as JSON")
    check(doc["sender"] == "bob@example.org\x1b[2J" and doc["recipients"] == "rcpt@example.org"
          and doc["message_id"] == "<qput@example.org>" and doc["kind"] == "message",
          "show --json has every field")
    r = mq("show", "20990101-zzzzzzzzzzz")
    check(r.returncode == 66, "show of an unknown id exits 66")
    check(r.stderr == b"mugaika: quarantine: no item 20990101-zzzzzzzzzzz\n",
          "unknown id message: 'mugaika: quarantine: no item ID'")
    check(mq("show").returncode == 64, "show without an id exits 64")

    # export
    for qid, data in files.items():
        r = mq("export", qid)
        check(r.returncode == 0 and r.stdout == data, f"export {qid} to stdout is byte-exact")
    out1 = os.path.join(base, "out1")
    r = mq("export", id3, "--output", out1)
    check(r.returncode == 0 and open(out1, "rb").read() == rnd, "export --output is byte-exact")
    r = mq("export", "20990101-zzzzzzzzzzz")
    check(r.returncode == 66 and b"no item 20990101-zzzzzzzzzzz" in r.stderr, "export unknown id: 66")
    check(mq("export").returncode == 64, "export without an id exits 64")
    check(mq("export", id1, "--output").returncode == 64, "export --output without FILE exits 64")

    # I/O errors: 75
    with open("/dev/full", "wb") as full:
        r = mq("export", id1, stdout=full)
    check(r.returncode == 75, "export to a full device exits 75")
    r = mq("export", id1, "--output", os.path.join(base, "no", "such", "dir", "f"))
    check(r.returncode == 75 and b"no/such/dir" in r.stderr, "export into a missing directory exits 75")

    # corrupt object: 65, nothing written
    sha = hashlib.sha256(rnd).hexdigest()
    obj = os.path.join(qdir, "objects", sha[:2], sha + ".gz")
    good = open(obj, "rb").read()
    bad = bytearray(good)
    bad[len(bad) // 2] ^= 0x20
    with open(obj, "wb") as f:
        f.write(bad)
    r = mq("export", id3)
    check(r.returncode == 65 and r.stdout == b"", "corrupt export to stdout: 65, nothing written")
    check(id3.encode() in r.stderr, "corrupt: the message names the item")
    out2 = os.path.join(base, "out2")
    r = mq("export", id3, "--output", out2)
    check(r.returncode == 65, "corrupt export --output exits 65")
    check(not os.path.exists(out2) and not glob.glob(out2 + ".*"), "corrupt export leaves no file")
    r = mq("export", id3, "--output", out1)
    check(r.returncode == 65 and open(out1, "rb").read() == rnd, "corrupt export keeps an old FILE")
    os.unlink(obj)
    check(mq("export", id3).returncode == 65, "missing object exits 65")
    with open(obj, "wb") as f:
        f.write(good)
    check(mq("export", id3).stdout == rnd, "repaired object exports again")

    # expire
    for bad in (["expire", "--days"], ["expire", "--days", "-1"], ["expire", "--days", "x"]):
        check(mq(*bad).returncode == 64, f"{' '.join(bad)} exits 64")
    db = sqlite3.connect(os.path.join(qdir, "index.sqlite"))
    db.execute("UPDATE items SET time = time - 40 * 86400 WHERE id IN (?, ?)", (id1, id3))
    db.commit()
    db.close()
    r = mq("expire", "--days", "50")
    check(r.returncode == 0 and r.stdout == b"removed 0 items\n", "expire --days 50 removes none")
    r = mq("expire")
    check(r.returncode == 0 and r.stdout == b"removed 0 items\n",
          "expire without --days keeps 90 days (the default retention)")
    conf = os.path.join(qdir, "..", "retention.conf")
    with open(conf, "w", encoding="utf-8") as f:
        f.write("[mugaika]\nretention-days = 30\n")
    r = mq("--config", conf, "expire")
    check(r.returncode == 0 and r.stdout == b"removed 2 items\n",
          "expire takes retention-days = 30 from the configuration file")
    with open(conf, "w", encoding="utf-8") as f:
        f.write("[mugaika]\nretention = 30\n")
    r = mq("--config", conf, "expire")
    check(r.returncode == 78 and b"retention" in r.stderr, "a bad configuration file exits 78")
    r = mq("list")
    check([l.split("  ")[0] for l in r.stdout.decode().splitlines()] == [id2], "list after expire")
    check(not os.path.exists(obj), "the expired item's object is gone")
    check(mq("show", id1).returncode == 66, "an expired id is unknown")

    # usage and configuration
    check(run(mugaika, "quarantine").returncode == 64, "no command exits 64")
    check(mq("frobnicate").returncode == 64, "unknown command exits 64")
    check(run(mugaika, "quarantine", "--bogus", "list").returncode == 64, "unknown option exits 64")
    check(run(mugaika, "quarantine", "--quarantine").returncode == 64, "--quarantine without DIR: 64")
    r = run(mugaika, "quarantine", "--help")
    check(r.returncode == 0 and b"usage:" in r.stdout, "--help exits 0 with the usage")
    notdir = os.path.join(base, "one.eml")
    r = run(mugaika, "quarantine", "--quarantine", notdir, "list")
    check(r.returncode == 78 and b"not a directory" in r.stderr, "a file as the quarantine exits 78")
    r = run(mugaika, "quarantine", "--quarantine=" + qdir, "list")
    check(r.returncode == 0 and len(r.stdout.splitlines()) == 1, "--quarantine=DIR works")

    # an index that cannot be opened: 75
    broken = os.path.join(base, "broken")
    os.makedirs(os.path.join(broken, "index.sqlite"))
    r = run(mugaika, "quarantine", "--quarantine", broken, "list")
    check(r.returncode == 75 and b"index.sqlite" in r.stderr, "an unusable index exits 75")

    if FAILED:
        print(f"{len(FAILED)} check(s) failed", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
