#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-or-later
#
# smoke.sh - short libFuzzer run of one fuzz target (meson suite 'fuzz')
#
#   smoke.sh FUZZER CORPUS-DIR SECONDS ARTIFACT-DIR [libFuzzer option...]
#
# Copies CORPUS-DIR into a fresh temporary directory (libFuzzer adds the
# inputs it finds to its first corpus directory: the source tree must not
# change), runs FUZZER over the copy for SECONDS with a fixed seed, and
# removes the copy.  A crash, leak, timeout or out-of-memory input is
# kept in ARTIFACT-DIR (in the build tree) and fails the test (exit 1:
# libFuzzer's own error status, 77, would read as a skip to meson);
# replay it with "FUZZER ARTIFACT".
#
# MUGAIKA_FUZZ_SECONDS overrides SECONDS, for a longer run through meson:
#   MUGAIKA_FUZZ_SECONDS=600 meson test -C build-san --suite fuzz \
#       --timeout-multiplier 0
set -eu

fuzzer=$1
corpus=$2
secs=$3
artifacts=$4
shift 4

# By default the run is a fixed number of executions from a fixed seed
# (-runs=N among the extra arguments), so it is the same run every
# time; the time limit is only a cap for a slow machine.
# MUGAIKA_FUZZ_SECONDS asks for a longer, time-bound run instead.
if [ -n "${MUGAIKA_FUZZ_SECONDS:-}" ]; then
    secs=$MUGAIKA_FUZZ_SECONDS
    keep=""
    for a in "$@"; do
        case "$a" in -runs=*) ;; *) keep="$keep $a" ;; esac
    done
    # shellcheck disable=SC2086
    set -- $keep
fi

[ -d "$corpus" ] || { echo "smoke.sh: no corpus directory $corpus" >&2; exit 1; }
mkdir -p "$artifacts"
tmp=$(mktemp -d "${TMPDIR:-/tmp}/mugaika-fuzz.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
trap 'exit 1' INT TERM
mkdir "$tmp/corpus"
cp "$corpus"/* "$tmp/corpus/"

rc=0
"$fuzzer" -seed=1 -max_total_time="$secs" -rss_limit_mb=2048 -timeout=10 \
    -error_exitcode=1 -timeout_exitcode=1 -print_final_stats=1 \
    -artifact_prefix="$artifacts/" "$@" "$tmp/corpus" || rc=$?
if [ "$rc" -ne 0 ]; then
    echo "smoke.sh: $fuzzer failed (exit $rc); inputs kept in $artifacts:" >&2
    ls -l "$artifacts" >&2 || true
    exit 1 # never 77: meson would call that a skip
fi
