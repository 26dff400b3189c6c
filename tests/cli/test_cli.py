#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""
NAME
    test_cli - the mugaika command line: exit codes, messages, JSON contract

SYNOPSIS
    test_cli.py MUGAIKA TESTDATA_DIR

DESCRIPTION
    Runs the built `mugaika` and checks what DESIGN.md section 4 and the
    foundation issue promise: `inspect --json` prints one JSON object with
    `headers`, `parts` (each with path, leaf, content_type, charset,
    transfer_encoding, disposition, filename, size, sha256, detected_type,
    defects) and `defects`; sizes and hashes are those of the decoded bytes;
    an unreadable file is named on stderr with exit 66; usage errors exit 64.
"""
import hashlib
import json
import os
import subprocess
import sys
import tempfile

FAILED = []


def check(cond, what):
    print(("ok   " if cond else "FAIL ") + what)
    if not cond:
        FAILED.append(what)


def run(binary, *args, stdin=None):
    return subprocess.run([binary, *args], capture_output=True, input=stdin)


def main():
    binary, testdata = sys.argv[1:3]
    part_keys = {"path", "leaf", "content_type", "charset", "transfer_encoding", "disposition",
                 "filename", "size", "sha256", "detected_type", "defects"}

    # JSON contract on a sample with an attachment
    r = run(binary, "inspect", "--json", os.path.join(testdata, "mail", "invoice-ja.eml"))
    check(r.returncode == 0, "inspect --json exits 0")
    doc = json.loads(r.stdout)
    check(set(doc) >= {"headers", "parts", "defects"}, "top-level keys headers, parts, defects")
    check(doc["headers"].get("Subject") == "【至急】請求書の送付 ①", "Subject decoded to UTF-8")
    check(all(part_keys <= set(p) for p in doc["parts"]), "every part has the contract's keys")
    check([p["path"] for p in doc["parts"]] == ["0", "1", "2"], "IMAP paths 0, 1, 2")
    pdf = doc["parts"][2]
    check(pdf["leaf"] and pdf["content_type"] == "application/pdf", "attachment leaf type")
    check(pdf["filename"] == "請求書①.pdf", "RFC 2231 file name decoded")
    check(pdf["detected_type"] == "application/pdf", "libmagic type of the decoded bytes")
    check(pdf["transfer_encoding"] == "base64", "transfer encoding as declared")
    check(not doc["parts"][0]["leaf"] and doc["parts"][0]["size"] is None,
          "a multipart is no leaf and has no size")

    # size and sha256 are those of the transfer-decoded bytes
    body = b"%PDF-1.4 minimal\n" * 10
    import base64
    msg = (b"Content-Type: application/pdf\nContent-Transfer-Encoding: base64\n\n" +
           base64.encodebytes(body))
    r = run(binary, "inspect", "--json", "-", stdin=msg)
    doc = json.loads(r.stdout)
    leaf = doc["parts"][0]
    check(leaf["size"] == len(body), "size of the decoded bytes")
    check(leaf["sha256"] == hashlib.sha256(body).hexdigest(), "sha256 of the decoded bytes")

    # several files: one JSON object per line
    files = [os.path.join(testdata, "mail", f) for f in sorted(os.listdir(
        os.path.join(testdata, "mail")))]
    r = run(binary, "inspect", "--json", *files)
    lines = [l for l in r.stdout.decode().splitlines() if l.strip()]
    check(r.returncode == 0 and len(lines) == len(files), "one JSON object per file")
    check(all(json.loads(l)["parts"] for l in lines), "each line is a complete object")

    # tree output names the file and the parts
    r = run(binary, "inspect", files[0])
    out = r.stdout.decode()
    check(r.returncode == 0 and files[0] in out and "message/rfc822" in out, "tree output")

    # errors
    with tempfile.TemporaryDirectory() as tmp:
        missing = os.path.join(tmp, "no-such.eml")
        r = run(binary, "inspect", missing)
        check(r.returncode == 66, "unreadable file: exit 66")
        check(missing.encode() in r.stderr, "unreadable file: named on stderr")
        r = run(binary, "inspect", tmp)
        check(r.returncode == 66 and tmp.encode() in r.stderr, "a directory: exit 66, named")
        r = run(binary, "inspect", missing, files[0])
        check(r.returncode == 66 and files[0].encode() in r.stdout,
              "the other files are still inspected")
    r = run(binary, "inspect")
    check(r.returncode == 64, "no file: exit 64")
    r = run(binary, "inspect", "--bogus", files[0])
    check(r.returncode == 64 and b"--bogus" in r.stderr, "unknown option: exit 64, named")
    r = run(binary, "frobnicate")
    check(r.returncode == 64, "unknown command: exit 64")
    r = run(binary, "--version")
    check(r.returncode == 0 and r.stdout.startswith(b"mugaika "), "--version")

    print(f"{len(FAILED)} failed")
    return 1 if FAILED else 0


if __name__ == "__main__":
    sys.exit(main())
