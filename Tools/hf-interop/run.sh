#!/usr/bin/env bash
# Checks that folders written by `backpack edit` load in Hugging Face transformers WITH the edit
# applied, and that the shipped modeling code reproduces the reference outputs.
#
#   Tools/hf-interop/run.sh BACKPACK_BINARY
#
# Creates (once) a pinned virtual environment in .venv-hf-interop at the repository root
# (HF_INTEROP_VENV overrides), then runs check_interop.py, which prints one PASS/FAIL line per
# check. Exit status: 0 all passed, 1 a check failed (or bad usage), 3 PyPI could not be reached
# while creating the environment.
set -uo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
if [ $# -ne 1 ] || [ ! -x "$1" ]; then
  echo "usage: $0 BACKPACK_BINARY   (an executable backpack built from this repository, e.g. .build/debug/backpack)" >&2
  exit 1
fi
binary="$(cd "$(dirname "$1")" && pwd)/$(basename "$1")"
venv="${HF_INTEROP_VENV:-$repo/.venv-hf-interop}"
requirements="$here/requirements.txt"
stamp="$venv/.requirements.sha256"
want="$(sha256sum "$requirements" | cut -d' ' -f1)"

if [ ! -x "$venv/bin/python" ] || [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "hf-interop: creating $venv from $requirements"
  rm -rf "$venv"
  python3 -m venv "$venv" || { echo "hf-interop: FAIL python3 -m venv $venv"; exit 1; }
  log="$(mktemp)"
  if ! "$venv/bin/pip" install --disable-pip-version-check -q -r "$requirements" >"$log" 2>&1; then
    # Unreachable: pip's retry warnings say so, or (with retries off) the index does not answer.
    index="${PIP_INDEX_URL:-$("$venv/bin/pip" config list 2>/dev/null | sed -n "s/^[^ ]*index-url='\(.*\)'$/\1/p" | head -1)}"
    if grep -qiE "NewConnectionError|Name or service not known|Temporary failure in name resolution|Network is unreachable|Connection refused|ConnectTimeout|ReadTimeout|Max retries exceeded" "$log" \
       || ! "$venv/bin/python" - "${index:-https://pypi.org/simple}" <<'PY'
import os, ssl, sys, urllib.error, urllib.request
cafile = os.environ.get("PIP_CERT") or ("/etc/ssl/certs/ca-certificates.crt" if os.path.exists("/etc/ssl/certs/ca-certificates.crt") else None)
try:
    urllib.request.urlopen(sys.argv[1].rstrip("/") + "/safetensors/", timeout=20, context=ssl.create_default_context(cafile=cafile))
except urllib.error.HTTPError:
    pass  # the index answered
except Exception:
    sys.exit(1)
PY
    then
      echo "hf-interop: cannot reach PyPI (${index:-https://pypi.org/simple}) to install $requirements; nothing was checked"
      rm -rf "$venv" "$log"
      exit 3
    fi
    cat "$log"; rm -f "$log"
    echo "hf-interop: FAIL pip install -r $requirements"
    rm -rf "$venv"
    exit 1
  fi
  rm -f "$log"
  echo "$want" >"$stamp"
fi

exec "$venv/bin/python" "$here/check_interop.py" --backpack "$binary" --repo "$repo"
