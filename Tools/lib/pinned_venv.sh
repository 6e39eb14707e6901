# Sourced by the Tools that need a pinned Python environment (hf-interop, report-check):
#
#   pinned_venv TAG VENV REQUIREMENTS
#
# creates VENV from REQUIREMENTS (pip, pinned versions) unless it already holds exactly that file
# (stamp: its SHA-256 in VENV/.requirements.sha256). Returns 0 ready; 3 PyPI cannot be reached
# (VENV removed, one line says so); 1 anything else (pip's log printed). TAG starts each line.
pinned_venv() {
  local tag="$1" venv="$2" requirements="$3"
  local stamp="$venv/.requirements.sha256" want
  want="$(sha256sum "$requirements" | cut -d' ' -f1)"
  if [ -x "$venv/bin/python" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$want" ]; then return 0; fi
  echo "$tag: creating $venv from $requirements"
  rm -rf "$venv"
  python3 -m venv "$venv" || { echo "$tag: FAIL python3 -m venv $venv"; return 1; }
  local log
  log="$(mktemp)"
  if ! "$venv/bin/pip" install --disable-pip-version-check -q -r "$requirements" >"$log" 2>&1; then
    # Unreachable: pip's retry warnings say so, or (with retries off) the index does not answer.
    local index="${PIP_INDEX_URL:-$("$venv/bin/pip" config list 2>/dev/null | sed -n "s/^[^ ]*index-url='\(.*\)'$/\1/p" | head -1)}"
    if grep -qiE "NewConnectionError|Name or service not known|Temporary failure in name resolution|Network is unreachable|Connection refused|ConnectTimeout|ReadTimeout|Max retries exceeded" "$log" \
       || ! "$venv/bin/python" - "${index:-https://pypi.org/simple}" <<'PY'
import os, ssl, sys, urllib.error, urllib.request
cafile = os.environ.get("PIP_CERT") or ("/etc/ssl/certs/ca-certificates.crt" if os.path.exists("/etc/ssl/certs/ca-certificates.crt") else None)
try:
    urllib.request.urlopen(sys.argv[1].rstrip("/") + "/pip/", timeout=20, context=ssl.create_default_context(cafile=cafile))
except urllib.error.HTTPError:
    pass  # the index answered
except Exception:
    sys.exit(1)
PY
    then
      echo "$tag: cannot reach PyPI (${index:-https://pypi.org/simple}) to install $requirements; nothing was checked"
      rm -rf "$venv" "$log"
      return 3
    fi
    cat "$log"; rm -f "$log"
    echo "$tag: FAIL pip install -r $requirements"
    rm -rf "$venv"
    return 1
  fi
  rm -f "$log"
  echo "$want" >"$stamp"
}
