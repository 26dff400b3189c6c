#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# corpus-check.sh - every corpus mail through the sanitiser, then looked
# at by GMime, Python's email package and clamscan (meson suite 'corpus').
#
#   corpus-check.sh SANITIZE_CHECK MAKE_TESTDB CHECK_OUTPUTS [FILE...]
#
# Makes the test signature database and a quarantine in a fresh
# temporary directory, runs sanitize_check --corpus (plus FILE...), then
# check_outputs.py over the outputs; removes the directory on exit.
set -euo pipefail
check=$1 makedb=$2 outputs=$3
shift 3
tmp=$(mktemp -d "${TMPDIR:-/tmp}/mugaika-corpus-check.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
"$makedb" "$tmp/db" >/dev/null
rc=0
"$check" --db "$tmp/db" --out "$tmp/out" --quarantine "$tmp/q" --corpus "$@" || rc=1
python3 "$outputs" "$tmp/out" "$tmp/db" || rc=1
exit $rc
