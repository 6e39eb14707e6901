#!/usr/bin/env bash
# `make bench`'s load test of `backpack explore` (issue 29): wrk on loopback, 16 connections for
# 30 s on /api/predict (a 32-token text with a slider intervention) on the demo model. Prints
# one line with requests, p50/p99 latency, errors (non-2xx and socket errors; want 0) and the
# server's peak RSS; exit 1 when there were errors.
#
#   Tools/explorer-check/load_test.sh BACKPACK_BINARY [SECONDS] [CONNECTIONS]
#
# Installs Debian's wrk when missing (exit 3 when the archive cannot be reached).
set -uo pipefail
if [ $# -lt 1 ] || [ ! -x "$1" ]; then echo "usage: $0 BACKPACK_BINARY [SECONDS] [CONNECTIONS]" >&2; exit 1; fi
binary="$1"; seconds="${2:-30}"; connections="${3:-16}"
if ! command -v wrk >/dev/null; then
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO=sudo
  { $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq wrk >/dev/null; } \
    || { echo "explore load: cannot install wrk from Debian's archive; not measured"; exit 3; }
fi
work="$(mktemp -d)"
"$binary" explore --port 0 --edits-dir "$work" --out "$work/r.h5" >"$work/server.log" 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null; rm -rf "$work"' EXIT
for _ in $(seq 1 600); do [ -s "$work/server.log" ] && break; sleep 0.1; done
url="$(head -1 "$work/server.log")"
case "$url" in http://127.0.0.1:*"/?token="*) ;; *) echo "explore load: FAIL the server did not start: $(cat "$work/server.log")"; exit 1 ;; esac
base="${url%%/?token=*}"; token="${url##*token=}"
cat >"$work/predict.lua" <<LUA
wrk.method = "POST"
wrk.headers["Authorization"] = "Bearer $token"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"text": "The nurse said that the doctor would be late, because the surgery that morning had taken far longer than anyone on the ward had expected", "top_k": 10, "interventions": [{"words": ["nurse"], "senses": [10], "scale": 0.4}]}'
LUA
wrk -t2 -c"$connections" -d"${seconds}s" --latency -s "$work/predict.lua" "$base/api/predict" >"$work/wrk.txt" 2>&1
rss_kb="$(awk '/VmHWM/ {print $2}' /proc/$pid/status)"
python3 - "$work/wrk.txt" "$rss_kb" "$seconds" "$connections" <<'PY'
import re, sys
text = open(sys.argv[1]).read()
rss_mb = int(sys.argv[2] or 0) / 1024
def ms(label):
    m = re.search(rf"^\s*{label}%\s+([\d.]+)(us|ms|s)\s*$", text, re.M)
    if not m: return float("nan")
    return float(m.group(1)) * {"us": 1e-3, "ms": 1, "s": 1000}[m.group(2)]
requests = int(re.search(r"(\d+) requests in", text).group(1)) if "requests in" in text else 0
non2xx = int(re.search(r"Non-2xx or 3xx responses: (\d+)", text).group(1)) if "Non-2xx" in text else 0
m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
socket = sum(map(int, m.groups())) if m else 0
rate = re.search(r"Requests/sec:\s+([\d.]+)", text)
errors = non2xx + socket
print(f"explore load (wrk, {sys.argv[4]} connections, {sys.argv[3]} s, /api/predict, demo model): {requests} requests, "
      f"{float(rate.group(1)) if rate else 0:.1f}/s, p50 {ms('50'):.1f} ms, p99 {ms('99'):.1f} ms, errors {errors} "
      f"(non-2xx {non2xx}, socket {socket}), server peak RSS {rss_mb:.0f} MB")
if requests == 0: print(text)
sys.exit(1 if errors or requests == 0 else 0)
PY
