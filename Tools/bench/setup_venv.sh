#!/usr/bin/env bash
# Creates .venv-bench (repository root; ignored by /.venv*) with the PyTorch side of `make bench`:
# the CPU build of torch, safetensors and numpy, pinned. Idempotent: an existing venv whose
# pins import is kept.
#
# torch==2.13.0+cpu is the CPU-only build. PyPI itself serves only the plain 2.13.0 (on Linux
# x86_64 the CUDA build, which pulls several GB of nvidia-* wheels); the +cpu wheel comes from
# pip's configured find-links (on this project's machine image: /opt/wheels, listed as "wheel on
# disk torch 2.13.0+cpu"). safetensors and numpy come from PyPI.
#
# Exit status: 0 ready; 3 the packages cannot be had here (offline, or no +cpu wheel), with one
# line saying which; anything else is a real failure.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
venv="${BENCH_VENV:-$root/.venv-bench}"
TORCH_PIN="torch==2.13.0+cpu"
PINS=("$TORCH_PIN" "safetensors==0.8.0" "numpy==2.4.6")

check() {
  "$venv/bin/python" - "$@" <<'EOF' >/dev/null 2>&1
import sys, torch, safetensors, numpy
want = {"torch": "2.13.0+cpu", "safetensors": "0.8.0", "numpy": "2.4.6"}
have = {"torch": torch.__version__, "safetensors": safetensors.__version__, "numpy": numpy.__version__}
sys.exit(0 if have == want else 1)
EOF
}

if [ -x "$venv/bin/python" ] && check; then
  echo "setup_venv: $venv ready (${PINS[*]})"
  exit 0
fi

python3 -m venv "$venv"
find_links=()
[ -d /opt/wheels ] && find_links=(--find-links /opt/wheels)

log="$(mktemp)"
trap 'rm -f "$log"' EXIT
if ! "$venv/bin/pip" install -q "${find_links[@]}" "${PINS[@]}" >"$log" 2>&1; then
  if grep -q -i -E "No matching distribution|Could not find a version" "$log" && grep -q -i "torch" "$log" \
     && ! grep -q -i -E "connection|network|resolve|timed out|Max retries" "$log"; then
    echo "setup_venv: $TORCH_PIN not found (no CPU wheel in pip's find-links; PyPI serves only the CUDA build of torch 2.13.0): PyTorch side skipped" >&2
  elif grep -q -i -E "connection|network|resolve|timed out|Max retries|No matching distribution" "$log"; then
    echo "setup_venv: the package registry is unreachable ($(grep -i -m1 -E "error|warning" "$log" | cut -c1-160)): PyTorch side skipped" >&2
  else
    cat "$log" >&2
    exit 1
  fi
  exit 3
fi
check || { echo "setup_venv: installed, but the pins did not import ($venv)" >&2; exit 1; }
echo "setup_venv: $venv ready (${PINS[*]})"
