#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
#
# NAME
#	test_rules_cli.py - the "mugaika rules" command line contract
# SYNOPSIS
#	test_rules_cli.py MUGAIKA_EXE RULES_DIR
# DESCRIPTION
#	Runs the built mugaika program: "rules check" and "rules show" on
#	the built-in policy, on the source tree's rules/ directory
#	(RULES_DIR), on good and bad policies written to a temporary
#	directory, and with bad usage. Checks exit status 0 / 78 / 64,
#	that stdout lists the rules in order and that every error line
#	names the file, the line and the key.
# DIAGNOSTICS
#	Exit status 0 when every check passes, 1 otherwise (each failure
#	is printed).
import os
import subprocess
import sys
import tempfile

failures = []


def check(cond, what):
    if not cond:
        failures.append(what)
        print("FAIL:", what, file=sys.stderr)


def run(exe, *args):
    p = subprocess.run([exe, *args], capture_output=True, timeout=60)
    return p.returncode, p.stdout.decode("utf-8"), p.stderr.decode("utf-8")


def write(d, name, text):
    with open(os.path.join(d, name), "w", encoding="utf-8") as f:
        f.write(text)


def main():
    if len(sys.argv) != 3:
        print("usage: test_rules_cli.py MUGAIKA_EXE RULES_DIR", file=sys.stderr)
        return 1
    exe, rules_dir = sys.argv[1], sys.argv[2]
    if not os.path.isdir(rules_dir):
        print(f"no rules directory {rules_dir}", file=sys.stderr)
        return 1

    # the built-in policy
    for cmd in ("check", "show"):
        rc, out, err = run(exe, "rules", cmd)
        check(rc == 0, f"rules {cmd}: exit {rc}, stderr {err!r}")
        check(err == "", f"rules {cmd}: stderr not empty: {err!r}")
        check("1. rule infected  (builtin:rules/10-infected.rules:" in out,
              f"rules {cmd}: infected rule not listed first:\n{out}")
        check(out.find("rule infected") < out.find("rule body-plain") <
              out.find("rule default-drop"), f"rules {cmd}: order")
        check("action        drop" in out and "notice-ja" in out and "notice-en" in out,
              f"rules {cmd}: action or notices missing")
    rc, builtin_out, _ = run(exe, "rules", "check")

    # the source tree's rules/ is the same policy
    rc, out, err = run(exe, "rules", "check", rules_dir)
    check(rc == 0, f"rules check {rules_dir}: exit {rc}: {err}")
    check(out.replace(rules_dir.rstrip("/") + "/", "builtin:rules/")
          .replace(f"policy {rules_dir}:", "policy (built-in):") == builtin_out,
          "rules/ and the built-in policy differ")

    with tempfile.TemporaryDirectory() as d:
        good = os.path.join(d, "good")
        bad = os.path.join(d, "bad")
        empty = os.path.join(d, "empty")
        for x in (good, bad, empty):
            os.mkdir(x)
        write(good, "10-a.rules", "[rule pdf]\ndetected-type = application/pdf\n"
              "action = disarm\n")
        write(good, "20-b.rules", "[rule rest]\naction = hold\nnotice-en = held\n")
        rc, out, err = run(exe, "rules", "check", good)
        check(rc == 0, f"good policy: exit {rc}: {err}")
        check(f"1. rule pdf  ({good}/10-a.rules:1)" in out, f"good policy listing:\n{out}")
        check(f"2. rule rest  ({good}/20-b.rules:1)" in out, f"good policy listing:\n{out}")
        check("action        hold" in out, "good policy: action hold")

        write(bad, "10-a.rules", "# a bad policy\n[rule a]\naction = keep\n"
              "detected-type = text\ncolour = red\n")
        write(bad, "20-b.rules", "[rule b]\nmax-size = 1X\n")
        rc, out, err = run(exe, "rules", "check", bad)
        check(rc == 78, f"bad policy: exit {rc}")
        check(out == "", f"bad policy: stdout not empty: {out!r}")
        for want in (
            f"{bad}/10-a.rules:4: [rule a] detected-type: bad glob \"text\"",
            f"{bad}/10-a.rules:5: [rule a] colour: unknown key",
            f"{bad}/20-b.rules:1: [rule b] action: missing",
            f"{bad}/20-b.rules:2: [rule b] max-size: bad size \"1X\"",
        ):
            check(want in err, f"bad policy: {want!r} not in stderr:\n{err}")
        rc, out, err = run(exe, "rules", "show", bad)
        check(rc == 78, f"rules show bad policy: exit {rc}")

        rc, out, err = run(exe, "rules", "check", empty)
        check(rc == 78 and f"{empty}: no policy" in err, f"empty dir: exit {rc}: {err}")
        missing = os.path.join(d, "missing")
        rc, out, err = run(exe, "rules", "check", missing)
        check(rc == 78 and missing in err and "No such file or directory" in err,
              f"missing dir: exit {rc}: {err}")

    # usage
    for args in ((), ("frobnicate",), ("check", "a", "b"), ("check", "--verbose")):
        rc, out, err = run(exe, "rules", *args)
        check(rc == 64, f"rules {' '.join(args)}: exit {rc}, expected 64")
        check("usage:" in err, f"rules {' '.join(args)}: no usage on stderr")
    rc, out, err = run(exe, "rules", "--help")
    check(rc == 0 and "usage:" in out, f"rules --help: exit {rc}")

    if failures:
        print(f"{len(failures)} failure(s)", file=sys.stderr)
        return 1
    print("ok: rules CLI")
    return 0


if __name__ == "__main__":
    sys.exit(main())
