#!/usr/bin/env bash
# The report's attribution heatmaps, checked in a headless browser: runs a small evaluation of the
# embedded demo model (pronoun-bias and pronoun-retention; base, three single edits and a sweep),
# writes its HTML report, renders it in Debian's chromium-headless-shell and checks the screenshot
# against the stored numbers (check_report.py says what).
#
#   Tools/report-check/run.sh BACKPACK_BINARY [OUT_DIR]
#
# Installs chromium-headless-shell when missing (apt; root or sudo) and creates (once) a pinned
# virtual environment in .venv-report-check (REPORT_CHECK_VENV overrides). OUT_DIR (default: a
# temporary folder, removed) keeps the run, the report and the screenshots.
# Exit status: 0 all passed, 1 a check failed (or bad usage), 3 PyPI or Debian's archive could
# not be reached, so nothing was checked.
set -uo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
if [ $# -lt 1 ] || [ $# -gt 2 ] || [ ! -x "$1" ]; then
  echo "usage: $0 BACKPACK_BINARY [OUT_DIR]   (an executable backpack built from this repository)" >&2
  exit 1
fi
binary="$(cd "$(dirname "$1")" && pwd)/$(basename "$1")"
browser=/usr/bin/chromium-headless-shell
if [ ! -x "$browser" ]; then
  echo "report-check: installing Debian's chromium-headless-shell"
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO=sudo
  if ! { $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium-headless-shell >/dev/null; }; then
    echo "report-check: cannot install chromium-headless-shell from Debian's archive; nothing was checked"
    exit 3
  fi
fi
. "$repo/Tools/lib/pinned_venv.sh"
venv="${REPORT_CHECK_VENV:-$repo/.venv-report-check}"
pinned_venv report-check "$venv" "$here/requirements.txt" || exit $?

if [ $# -eq 2 ]; then out="$2"; mkdir -p "$out" || exit 1
else out="$(mktemp -d)"; trap 'rm -rf "$out"' EXIT; fi
rm -f "$out/run.h5" "$out/report.html"
cd "$repo"
"$binary" eval --suite pronoun-bias --suite pronoun-retention \
  --edit Edits/remove-gender-sense.yaml --edit Edits/debias-project-gender.yaml --edit Edits/leace-gender.yaml \
  --edit Edits/sweep-remove-localized-senses.yaml --bootstrap 100 --out "$out/run.h5" >"$out/eval.log" 2>&1 \
  || { cat "$out/eval.log"; echo "report-check: FAIL backpack eval"; exit 1; }
"$binary" report "$out/run.h5" --html "$out/report.html" >/dev/null || { echo "report-check: FAIL backpack report"; exit 1; }
exec "$venv/bin/python" "$here/check_report.py" --results "$out/run.h5" --report "$out/report.html" \
  --browser "$browser" --screenshots "$out"
