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
. "$repo/Tools/lib/pinned_venv.sh"
pinned_venv hf-interop "$venv" "$requirements" || exit $?

exec "$venv/bin/python" "$here/check_interop.py" --backpack "$binary" --repo "$repo"
