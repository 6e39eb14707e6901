#!/usr/bin/env bash
# Issue 28's checks outside the project, on a real run: an evaluation of the embedded demo model
# (pronoun-bias, pronoun-retention, winogender; base, the localized-sense edit and the projection
# sweep), then
#   - Tools/stats-check/check_tests.py: the stored Holm and Benjamini-Hochberg values equal
#     statsmodels' multipletests per (suite, metric) family, and pronoun-bias's sign-flip p an
#     independent computation from the stored per-prompt ratios;
#   - Tools/export-check/check_csv.py: `backpack report --format csv`, read with pandas, equals
#     the HDF5 file, value by value.
#   usage: Tools/results-check/run.sh BACKPACK_BINARY
# Creates (once) the pinned venv .venv-results-check. Exit 0 passed, 1 a check failed, 3 PyPI
# could not be reached (nothing was checked).
set -uo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
if [ $# -ne 1 ] || [ ! -x "$1" ]; then echo "usage: $0 BACKPACK_BINARY" >&2; exit 1; fi
binary="$(cd "$(dirname "$1")" && pwd)/$(basename "$1")"
# shellcheck source=../lib/pinned_venv.sh
. "$repo/Tools/lib/pinned_venv.sh"
venv="${RESULTS_CHECK_VENV:-$repo/.venv-results-check}"
pinned_venv results-check "$venv" "$here/requirements.txt"; status=$?
[ $status -eq 0 ] || exit $status
out="$(mktemp -d)"; trap 'rm -rf "$out"' EXIT
cd "$repo" || exit 1
"$binary" eval --suite pronoun-bias --suite pronoun-retention --suite winogender \
  --edit Edits/remove-gender-sense.yaml --edit Edits/sweep-project-strength.yaml --out "$out/run.h5" >"$out/eval.log" 2>&1 \
  || { cat "$out/eval.log"; echo "results-check: FAIL backpack eval"; exit 1; }
"$binary" report "$out/run.h5" --format csv >"$out/run.csv" || { echo "results-check: FAIL backpack report --format csv"; exit 1; }
"$venv/bin/python" "$repo/Tools/stats-check/check_tests.py" "$out/run.h5" || exit 1
"$venv/bin/python" "$repo/Tools/export-check/check_csv.py" "$out/run.h5" "$out/run.csv" || exit 1
echo "results-check: passed"
