"""Stopgap until `backpack bench` writes JSON lines itself: turns the text that today's
`backpack bench --shape S` prints (Sources/BackpackCLI/Bench.swift) into the Swift side's JSON lines
for compare.py. Only forward throughput, its breakdown, opening time and peak RSS exist in that text.

  for s in 1x512 8x128; do .build/release/backpack bench --model M --shape $s; done \
      | python3 Tools/bench/swift_text_to_jsonl.py --started "$(date +%s)" --out bench-out/swift.jsonl

Run it on the output of this run only: it stamps this machine's host name and --started.
"""

import argparse
import json
import os
import platform
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import workload as wl  # noqa: E402

FORWARD = re.compile(r"^forward (\d+)x(\d+)\s+([\d.]+) s best of (\d+) \(first ([\d.]+) s\)")
PARTS = re.compile(r"sense network ([\d.]+) s, trunk and sense weights ([\d.]+) s, output layer ([\d.]+) s")
OPEN = re.compile(r"^open\s+([\d.]+) s")
PEAK = re.compile(r"^peak RSS\s+(\d+) MB")
BLAS = re.compile(r"^BLAS\s+(.*)$")


def convert(text: str, started: float):
    meta = {"side": "swift", "name": "meta", "host": platform.node(), "started_unix": started,
            "source": "backpack bench text output", "loadavg_start": list(os.getloadavg())}
    rows, peak, shape, opens = [], 0, None, []
    for line in text.splitlines():
        if m := FORWARD.match(line):
            b, n = int(m[1]), int(m[2])
            shape = f"{b}x{n}"
            rows.append({"side": "swift", "name": f"forward_{shape}", "tokens": b * n, "seconds": float(m[3]),
                         "tokens_per_s": b * n / float(m[3]), "warmup": 1, "runs": int(m[4]), "stat": "best",
                         "first_seconds": float(m[5])})
        elif (m := PARTS.search(line)) and shape:
            tokens = rows[-1]["tokens"]
            for name, s in (("sense_network", m[1]), ("trunk_and_sense_weights", m[2]), ("output", m[3])):
                if float(s) > 0:
                    rows.append({"side": "swift", "name": f"forward_{shape}/{name}", "tokens": tokens,
                                 "seconds": float(s), "warmup": 0, "runs": 1, "stat": "once"})
        elif m := OPEN.match(line):
            opens.append(float(m[1]))
        elif m := PEAK.match(line):
            peak = max(peak, int(m[1]) * 1_000_000)
        elif m := BLAS.match(line):
            meta["blas"] = m[1].strip()
    if not rows:
        raise ValueError("no 'forward BxN ... s best of R (first ... s)' line in the input")
    out = [meta]
    if opens:
        out.append({"side": "swift", "name": "open", "tokens": 0, "seconds": min(opens), "warmup": 0,
                    "runs": len(opens), "stat": "best"})
    out += rows
    if peak:
        out.append({"side": "swift", "name": "peak_rss", "bytes": peak})
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--started", type=float, required=True, help="unix time at which this run began")
    ap.add_argument("--out", required=True)
    args = ap.parse_args(argv)
    text = sys.stdin.read()
    sys.stdout.write(text)  # the Swift side's own report stays visible
    try:
        rows = convert(text, args.started)
    except ValueError as e:
        print(f"swift_text_to_jsonl: {e}", file=sys.stderr)
        return 2
    wl.write_atomic(args.out, "".join(json.dumps(r) + "\n" for r in rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
