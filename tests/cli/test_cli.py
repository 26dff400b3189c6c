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

    `config check [FILE]` (check_config): without FILE and without
    /etc/mugaika/mugaika.conf it prints the built-in defaults; with a good
    file every `key = value` line in the fixed order and `rules: N rules ok`;
    a bad key or value, a missing file or a rules directory with an error
    exit 78 with FILE:LINE: KEY (or the path) on stderr and nothing on stdout.
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


CONFIG_KEYS = ["rules", "quarantine", "clamav-db", "lang", "audit", "spool", "retention-days",
               "max-header-bytes", "max-line-bytes", "max-depth", "max-parts", "spool-memory",
               "html-budget-ms", "socket", "user", "group", "log-level", "max-message-size",
               "message-timeout", "milter-timeout", "worker-dir", "worker-timeout", "worker-budget",
               "worker-cpu-seconds", "worker-memory", "archive-depth", "archive-members",
               "archive-size", "archive-ratio", "watch-state", "watch-workers", "watch-queue",
               "watch-quiet-ms", "watch-scan-ms", "watch-user-files", "watch-user-bytes"]


def settings(out):
    """key = value lines of `config check` as a list of (key, value)."""
    pairs = []
    for line in out.splitlines():
        if " = " in line and not line.startswith("#"):
            k, v = line.split(" = ", 1)
            pairs.append((k, v))
    return pairs


def check_config(binary, testdata):
    default_conf = "/etc/mugaika/mugaika.conf"
    with tempfile.TemporaryDirectory() as tmp:
        env = dict(os.environ, TMPDIR=tmp)

        # no file: the built-in defaults (only when this machine has no real file)
        if os.path.exists(default_conf):
            print(f"note {default_conf} exists: 'config check' without FILE not checked")
        else:
            r = subprocess.run([binary, "config", "check"], capture_output=True, env=env)
            out = r.stdout.decode()
            check(r.returncode == 0, f"config check, no file: exit 0 ({r.stderr!r})")
            check(out.splitlines()[0].startswith("# no configuration file") and
                  "built-in defaults" in out.splitlines()[0],
                  "config check, no file: says the built-in defaults are used")
            pairs = settings(out)
            check([k for k, _ in pairs] == CONFIG_KEYS, "config check: every key, fixed order")
            want = {"rules": "(built-in)", "quarantine": "/var/lib/mugaika/quarantine",
                    "clamav-db": "/var/lib/clamav", "lang": "ja", "audit": "(none)",
                    "spool": tmp, "retention-days": "90", "max-header-bytes": "262144",
                    "max-line-bytes": "65536", "max-depth": "64", "max-parts": "10000",
                    "spool-memory": "8388608", "html-budget-ms": "2000",
                    "socket": "unix:/run/mugaika/milter.sock", "user": "(none)",
                    "group": "(none)", "log-level": "info", "max-message-size": "0 (no limit)",
                    "message-timeout": "600", "milter-timeout": "600",
                    "worker-dir": "(built-in: libexecdir/mugaika)", "worker-timeout": "60", "worker-budget": "120",
                    "worker-cpu-seconds": "30", "worker-memory": "1073741824",
                    "archive-depth": "5", "archive-members": "1000", "archive-size": "209715200",
                    "archive-ratio": "100", "watch-state": "/var/lib/mugaika/watch",
                    "watch-workers": "2", "watch-queue": "64", "watch-quiet-ms": "2000",
                    "watch-scan-ms": "1000", "watch-user-files": "0", "watch-user-bytes": "0"}
            check(dict(pairs) == want, f"config check, no file: the defaults ({dict(pairs)})")
            # the workers of this build link their libraries statically and were
            # built with the packages installed now
            wl = [x for x in out.splitlines() if x.startswith("workers: ")]
            check(len(wl) == 1 and wl[0].endswith(" static libraries, as installed") and
                  int(wl[0].split()[1]) >= 20 and r.stderr == b"",
                  f"config check, no file: the workers' static libraries are current ({wl})")
            last = out.splitlines()[-1]
            check(last.startswith("rules: ") and last.endswith(" rules ok") and
                  int(last.split()[1]) > 0, "config check, no file: the built-in policy loads")

        # a good file naming a good policy
        rules = os.path.join(tmp, "rules")
        os.mkdir(rules)
        with open(os.path.join(rules, "10-a.rules"), "w") as f:
            f.write("[rule pdf]\ndetected-type = application/pdf\naction = disarm\n"
                    "[rule rest]\naction = hold\n")
        good = os.path.join(tmp, "good.conf")
        with open(good, "w") as f:
            f.write("# mugaika\n[mugaika]\n"
                    f"rules = {rules}\nquarantine = /srv/q\nclamav-db = /srv/clamav\n"
                    "lang = en\naudit = /var/log/mugaika/audit.log\nspool = /var/tmp\n"
                    "retention-days = 30\nmax-header-bytes = 128K\nmax-line-bytes = 998\n"
                    "max-depth = 10\nmax-parts = 100\nspool-memory = 1M\n"
                    "html-budget-ms = 500\nsocket = inet:8891@127.0.0.1\nuser = mugaika\n"
                    "group = mail\nlog-level = debug\nmax-message-size = 2G\n"
                    "message-timeout = 300\nmilter-timeout = 60\n"
                    "worker-dir = /usr/lib/mugaika\nworker-timeout = 20\nworker-budget = 90\n"
                    "worker-cpu-seconds = 10\nworker-memory = 512M\narchive-depth = 3\n"
                    "archive-members = 200\narchive-size = 50M\narchive-ratio = 50\n"
                    "watch-state = /srv/w\nwatch-workers = 3\nwatch-queue = 10\n"
                    "watch-quiet-ms = 500\nwatch-scan-ms = 200\nwatch-user-files = 50\n"
                    "watch-user-bytes = 1G\n"
                    "[watch staff]\nin = /srv/t/in\nout = /srv/t/out\ngroup = users\n"
                    "mode = 0640\nuser-bytes = 10M\n")
        r = run(binary, "config", "check", good)
        out = r.stdout.decode()
        check(r.returncode == 0, f"config check FILE: exit 0 ({r.stderr!r})")
        check(out.splitlines()[0] == f"# configuration file {good}",
              "config check FILE: names the file")
        want = [("rules", rules), ("quarantine", "/srv/q"), ("clamav-db", "/srv/clamav"),
                ("lang", "en"), ("audit", "/var/log/mugaika/audit.log"), ("spool", "/var/tmp"),
                ("retention-days", "30"), ("max-header-bytes", "131072"),
                ("max-line-bytes", "998"), ("max-depth", "10"), ("max-parts", "100"),
                ("spool-memory", "1048576"), ("html-budget-ms", "500"),
                ("socket", "inet:8891@127.0.0.1"), ("user", "mugaika"), ("group", "mail"),
                ("log-level", "debug"), ("max-message-size", "2147483648"),
                ("message-timeout", "300"), ("milter-timeout", "60"),
                ("worker-dir", "/usr/lib/mugaika"), ("worker-timeout", "20"), ("worker-budget", "90"),
                ("worker-cpu-seconds", "10"), ("worker-memory", "536870912"),
                ("archive-depth", "3"), ("archive-members", "200"), ("archive-size", "52428800"),
                ("archive-ratio", "50"), ("watch-state", "/srv/w"), ("watch-workers", "3"),
                ("watch-queue", "10"), ("watch-quiet-ms", "500"), ("watch-scan-ms", "200"),
                ("watch-user-files", "50"), ("watch-user-bytes", "1073741824"),
                ("in", "/srv/t/in"), ("out", "/srv/t/out"), ("owner", "(the daemon's)"),
                ("group", "users"), ("mode", "0640"), ("user-files", "50"),
                ("user-bytes", "10485760")]
        check(settings(out) == want, f"config check FILE: every value ({settings(out)})")
        check(out.splitlines()[-1] == "rules: 2 rules ok", "config check FILE: rules: 2 rules ok")
        check(r.stderr == b"", "config check FILE: nothing on stderr")

        check([x for x in out.splitlines() if x.startswith("workers: ")] ==
              ["workers: not checked: CDR worker /usr/lib/mugaika/mugaika-worker: "
               "No such file or directory (set worker-dir in the configuration)"],
              "config check FILE: workers not found: said, not an error")

        # workers built with other versions than those installed (fakes that
        # answer --built-with as a stale build would): one warning per
        # worker and source package, naming both versions; still exit 0
        fake = os.path.join(tmp, "workers")
        os.mkdir(fake)
        zlib_now = subprocess.run(["dpkg-query", "-W", "-f", "${source:Version}", "zlib1g"],
                                  capture_output=True, check=True).stdout.decode()
        for prog, lines in (("mugaika-worker", "xml2 libxml2 0.0-old\\nicuuc icu 0.0-old\\n"
                                               "icudata icu 0.0-old\\nz zlib " + zlib_now + "\\n"),
                            ("mugaika-pdf", "qpdf ? ?\\n"), ("mugaika-flatten", "")):
            path = os.path.join(fake, prog)
            with open(path, "w") as f:
                f.write('#!/bin/sh\n[ "$1" = --built-with ] || exit 64\nprintf "%s"\n' % lines)
            os.chmod(path, 0o755)
        conf = os.path.join(tmp, "stale.conf")
        with open(conf, "w") as f:
            f.write(f"[mugaika]\nworker-dir = {fake}\n")
        r = run(binary, "config", "check", conf)
        out, err = r.stdout.decode(), r.stderr.decode()
        warns = err.splitlines()
        check(r.returncode == 0 and
              "workers: 3 of 5 static libraries differ from the installed packages: rebuild"
              in out.splitlines(), f"config check, stale workers: said, exit 0 ({out[-300:]!r})")
        check(len(warns) == 2 and all("mugaika-worker was built with" in w and "0.0-old" in w
                                      and "docs/operations.md" in w for w in warns) and
              "libxml2 0.0-old (libxml2.a)" in warns[0] and "icu 0.0-old (libicuuc.a)" in warns[1]
              and "installed now: " + subprocess.run(
                  ["dpkg-query", "-W", "-f", "${source:Version}", "libxml2"],
                  capture_output=True, check=True).stdout.decode() in warns[0],
              f"config check, stale workers: a warning per source package, both versions ({err!r})")

        # a build that could not tell the packages (no dpkg, say): said, not passed as current
        for prog in ("mugaika-worker", "mugaika-pdf"):
            with open(os.path.join(fake, prog), "w") as f:
                f.write('#!/bin/sh\nprintf "xml2 ? ?\\nz ? ?\\n"\n')
        r = run(binary, "config", "check", conf)
        check(r.returncode == 0 and r.stderr == b"" and
              "workers: not checked: the build recorded no package versions"
              in r.stdout.decode().splitlines(),
              f"config check, no versions recorded: not checked ({r.stdout.decode()[-200:]!r})")

        # a bad key and a bad value
        bad = os.path.join(tmp, "bad.conf")
        with open(bad, "w") as f:
            f.write("[mugaika]\nlang = ja\nbogus = 1\nsocket = inet:0@127.0.0.1\n")
        r = run(binary, "config", "check", bad)
        err = r.stderr.decode()
        check(r.returncode == 78, f"config check bad key: exit 78 ({r.returncode})")
        check(f"{bad}:3: bogus: unknown key" in err, f"bad key named FILE:LINE: KEY ({err!r})")
        check(f"{bad}:4: socket: " in err and "port" in err,
              f"bad socket named FILE:LINE: KEY ({err!r})")
        check(r.stdout == b"", "config check bad key: nothing on stdout")

        # a syntax error
        with open(bad, "w") as f:
            f.write("[mugaika]\nthis line is not a key\n")
        r = run(binary, "config", "check", bad)
        check(r.returncode == 78 and bad.encode() in r.stderr, "syntax error: exit 78, named")

        # a policy with an error
        broken = os.path.join(tmp, "broken")
        os.mkdir(broken)
        with open(os.path.join(broken, "10-a.rules"), "w") as f:
            f.write("[rule a]\naction = keep\ncolour = red\n")
        conf = os.path.join(tmp, "broken.conf")
        with open(conf, "w") as f:
            f.write(f"[mugaika]\nrules = {broken}\n")
        r = run(binary, "config", "check", conf)
        err = r.stderr.decode()
        check(r.returncode == 78, f"config check, bad policy: exit 78 ({r.returncode})")
        check(f"{broken}/10-a.rules:3: [rule a] colour: unknown key" in err,
              f"bad policy: FILE:LINE: KEY on stderr ({err!r})")
        check(r.stdout == b"", "config check, bad policy: nothing on stdout")

        # a missing file given explicitly
        missing = os.path.join(tmp, "missing.conf")
        r = run(binary, "config", "check", missing)
        check(r.returncode == 78 and missing.encode() in r.stderr,
              "config check, missing file: exit 78, path named")

    # the example shipped in deploy/ is a valid file, with every key
    example = os.path.join(os.path.dirname(os.path.abspath(testdata)), "deploy",
                           "mugaika.conf.example")
    r = run(binary, "config", "check", example)
    check(r.returncode == 0 and r.stdout.decode().splitlines()[-1].endswith("rules ok"),
          f"config check deploy/mugaika.conf.example: exit 0 ({r.stderr!r})")
    with open(example, encoding="utf-8") as f:
        mentioned = {line.lstrip("#").split("=")[0].strip() for line in f if "=" in line}
    check(set(CONFIG_KEYS) <= mentioned,
          f"deploy/mugaika.conf.example names every key ({set(CONFIG_KEYS) - mentioned})")

    # usage
    r = run(binary, "config", "--help")
    check(r.returncode == 0 and r.stdout.startswith(b"usage: mugaika config check"),
          "config --help")
    r = run(binary, "config", "check", "--help")
    check(r.returncode == 0 and b"usage:" in r.stdout, "config check --help")
    for args in ((), ("frobnicate",), ("check", "a", "b"), ("check", "--verbose")):
        r = run(binary, "config", *args)
        check(r.returncode == 64 and b"usage:" in r.stderr, f"config {' '.join(args)}: exit 64")
    r = run(binary, "--help")
    out = r.stdout.decode()
    check(r.returncode == 0 and all(f"\n  {c} " in out for c in
                                    ("inspect", "sanitize", "rules", "quarantine", "config")),
          "--help lists inspect, sanitize, rules, quarantine, config")


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

    check_config(binary, testdata)

    print(f"{len(FAILED)} failed")
    return 1 if FAILED else 0


if __name__ == "__main__":
    sys.exit(main())
