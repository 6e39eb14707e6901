#!/usr/bin/env bash
# `backpack explore` checked from outside (explorer_check.py says what): numbers against
# `backpack forward` and `backpack attribute`, the token/Host/Origin refusals, schemathesis
# against /openapi.json, and the page driven in Debian's chromium-headless-shell by Playwright,
# which also takes the README's screenshot (SCREENSHOT=docs/explore.png).
#
#   Tools/explorer-check/run.sh BACKPACK_BINARY
#
# Installs chromium-headless-shell when missing (apt) and creates (once) a pinned virtual
# environment in .venv-explorer-check (EXPLORER_CHECK_VENV overrides). SCHEMATHESIS_SECONDS
# bounds the schemathesis run (default 150).
# Exit status: 0 all passed, 1 a check failed, 3 PyPI or Debian's archive could not be reached.
set -uo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
if [ $# -ne 1 ] || [ ! -x "$1" ]; then echo "usage: $0 BACKPACK_BINARY" >&2; exit 1; fi
binary="$(cd "$(dirname "$1")" && pwd)/$(basename "$1")"
# The document the server embeds is generated: it must be the generator's output.
python3 "$here/openapi.py" | cmp -s - "$repo/Sources/BackpackExplorer/Page/openapi.json" \
  || { echo "explorer-check: FAIL Sources/BackpackExplorer/Page/openapi.json differs from Tools/explorer-check/openapi.py's output (regenerate it)"; exit 1; }
browser=/usr/bin/chromium-headless-shell
if [ ! -x "$browser" ]; then
  echo "explorer-check: installing Debian's chromium-headless-shell"
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO=sudo
  if ! { $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium-headless-shell >/dev/null; }; then
    echo "explorer-check: cannot install chromium-headless-shell from Debian's archive; nothing was checked"
    exit 3
  fi
fi
. "$repo/Tools/lib/pinned_venv.sh"
venv="${EXPLORER_CHECK_VENV:-$repo/.venv-explorer-check}"
pinned_venv explorer-check "$venv" "$here/requirements.txt" || exit $?
exec "$venv/bin/python" "$here/explorer_check.py" --binary "$binary" --browser "$browser" \
  --schemathesis-seconds "${SCHEMATHESIS_SECONDS:-150}" ${SCREENSHOT:+--screenshot "$SCREENSHOT"}
