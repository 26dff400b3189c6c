#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# lint.sh - source checks for the 'lint' meson suite.
#
# usage: lint.sh CHECK SOURCE_ROOT
#   format   clang-format --dry-run -Werror over src/ include/ tests/ (*.c, *.h)
#   banned   no calls to strcpy strcat sprintf atoi strtok gets
#            in src/ include/ tests/
#   logging  no direct printf/fprintf/vprintf/vfprintf/syslog/vsyslog calls
#            in src/, except src/cli/ (CLI output), src/core/log.c and the
#            CDR workers (src/worker, src/pdf: stderr is their diagnostics)
#   units    systemd-analyze verify on every unit of deploy/systemd (a copy
#            whose mugaika executables are replaced by /bin/true, so that
#            the unit is checked without being installed)
#
# Each offence is printed as FILE:LINE: TEXT.  Comments, string literals and
# character constants are blanked before the call checks, so prose that
# mentions a banned name does not trip them.
# Exit status: 0 clean, 1 offences found, 77 (meson: skip) tool missing,
# 2 usage error.
set -euo pipefail
export LC_ALL=C

usage() {
    echo "usage: $0 {format|banned|logging|units} SOURCE_ROOT" >&2
    exit 2
}

[[ $# -eq 2 ]] || usage
check=$1
root=$2
cd "$root" || exit 2

# C sources and headers under the given directories, in a stable order.
c_files() {
    local d dirs=()
    for d in "$@"; do
        [[ -d $d ]] && dirs+=("$d")
    done
    [[ ${#dirs[@]} -gt 0 ]] || return 0
    find "${dirs[@]}" -type f \( -name '*.c' -o -name '*.h' \) | sort
}

# scan_calls REGEX FILE... : print FILE:LINE: TEXT for each line whose code
# (comments and literals blanked) matches REGEX.
scan_calls() {
    local regex=$1
    shift
    [[ $# -gt 0 ]] || return 0
    python3 - "$regex" "$@" <<'PY'
import re
import sys

def blank(src):
    """Replace comments and string/char literal contents with spaces,
    keeping newlines so line numbers stay right."""
    out = []
    i, n = 0, len(src)
    while i < n:
        c = src[i]
        if src.startswith('/*', i):
            j = src.find('*/', i + 2)
            j = n if j < 0 else j + 2
            out.append(re.sub(r'[^\n]', ' ', src[i:j]))
            i = j
        elif src.startswith('//', i):
            j = src.find('\n', i)
            j = n if j < 0 else j
            out.append(' ' * (j - i))
            i = j
        elif c in '"\'':
            j = i + 1
            while j < n and src[j] != c and src[j] != '\n':
                j += 2 if src[j] == '\\' else 1
            j = min(j + 1, n)
            out.append(c + re.sub(r'[^\n]', ' ', src[i + 1:j - 1]) + src[j - 1:j])
            i = j
        else:
            out.append(c)
            i += 1
    return ''.join(out)

pat = re.compile(sys.argv[1])
found = 0
for path in sys.argv[2:]:
    with open(path, encoding='utf-8', errors='replace') as f:
        text = f.read()
    raw = text.split('\n')
    for no, line in enumerate(blank(text).split('\n'), 1):
        names = [m.group(1) for m in pat.finditer(line)]
        if names:
            found += 1
            print('%s:%d: %s: %s' % (path, no, ','.join(names), raw[no - 1].strip()))
sys.exit(1 if found else 0)
PY
}

case $check in
format)
    if ! command -v clang-format >/dev/null; then
        echo "clang-format not installed (run deploy/install-deps): skipped"
        exit 77
    fi
    mapfile -t files < <(c_files src include tests)
    [[ ${#files[@]} -gt 0 ]] || { echo "no C files"; exit 0; }
    if ! clang-format --style=file --dry-run -Werror "${files[@]}"; then
        echo "FAIL: files above need clang-format (clang-format -i FILE)" >&2
        exit 1
    fi
    echo "clang-format: ${#files[@]} files clean"
    ;;
banned)
    mapfile -t files < <(c_files src include tests)
    if ! scan_calls '\b(strcpy|strcat|sprintf|atoi|strtok|gets)\s*\(' "${files[@]}"; then
        echo "FAIL: banned function call(s) above (see STYLE.md, Habits)" >&2
        exit 1
    fi
    echo "banned functions: ${#files[@]} files clean"
    ;;
logging)
    mapfile -t files < <(c_files src | grep -v -e '^src/cli/' -e '^src/core/log\.c$' -e '^src/worker/' -e '^src/pdf/' || true)
    if ! scan_calls '\b(printf|fprintf|vprintf|vfprintf|syslog|vsyslog)\s*\(' "${files[@]}"; then
        echo "FAIL: direct output call(s) above: use mg_log_* (src/core/log.c)" >&2
        exit 1
    fi
    echo "logging: ${#files[@]} files clean"
    ;;
units)
    if ! command -v systemd-analyze >/dev/null; then
        echo "FAIL: systemd-analyze not installed (run deploy/install-deps)" >&2
        exit 1
    fi
    tmp=$(mktemp -d)
    trap 'rm -rf "$tmp"' EXIT
    units=()
    for u in deploy/systemd/*.service deploy/systemd/*.path; do
        sed -E 's#/usr/(local/)?s?bin/mugaika[a-z-]*#/bin/true#g' "$u" >"$tmp/${u##*/}"
        units+=("$tmp/${u##*/}")
    done
    # verify loads units that Wants/After name; unknown ones are only noted
    if ! out=$(cd "$tmp" && systemd-analyze verify --man=no "${units[@]}" 2>&1); then
        printf '%s\n' "$out" >&2
        echo "FAIL: systemd-analyze verify (above)" >&2
        exit 1
    fi
    if grep -E 'Unknown (key|section)|Failed to parse|Invalid|ignoring' <<<"$out" >&2; then
        echo "FAIL: systemd-analyze verify warns (above)" >&2
        exit 1
    fi
    echo "units: ${#units[@]} units verified"
    ;;
*)
    usage
    ;;
esac
