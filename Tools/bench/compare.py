"""Side-by-side table of one `make bench` run: the Swift side's and the PyTorch side's JSON lines,
the speed ratio Swift/PyTorch per measurement, and PASS/FAIL against the targets of issue 12.

  python3 Tools/bench/compare.py --swift bench-out/swift-*.jsonl --pytorch bench-out/pytorch-*.jsonl

Each file: one JSON object per line, with "side" ("swift" / "pytorch") and "name". A "meta" line
gives "host" and "started_unix" (and "workload": {"sha256": ...} when perplexity was measured);
measurement lines give "tokens", "seconds" (the statistic, best of the timed runs) and optionally
"median_seconds", "samples", "warmup", "runs", "scored_tokens", "nll_sum"; "peak_rss" gives "bytes".
Every file needs a meta line; all must come from the same machine and the same run (one host, starts
at most --max-apart seconds apart; perplexity compared only when both sides read one workload file): numbers measured elsewhere are never shown beside
this machine's. No or only empty PyTorch files (no torch here) shows the Swift side alone, with the
targets that need PyTorch NOT CHECKED.

Targets (issue 12):
  forward 1x512 and 8x128, all logits      Swift >= 1.0x PyTorch tokens/s
  perplexity, base + 3 sense edits         Swift >= 3x faster than PyTorch's four full passes
  the same in Swift                        <= 1.6x Swift's base model alone
Ratio = PyTorch seconds / Swift seconds for the same tokens (> 1: Swift faster); for peak RSS it is
Swift bytes / PyTorch bytes. Exit status: 0; 1 with --strict when a target fails or is not
checked; 2 when the inputs are unusable (unreadable, another machine, another run).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys

TARGETS = [  # (label, kind, names, threshold)
    ("forward 1x512 >= 1.0x PyTorch", "speed", ("forward_1x512",), 1.0),
    ("forward 8x128 >= 1.0x PyTorch", "speed", ("forward_8x128",), 1.0),
    ("perplexity base+3 edits >= 3x PyTorch's 4 passes", "speed", ("perplexity/all",), 3.0),
    ("Swift base+3 edits <= 1.6x Swift base alone", "swift_within", ("perplexity/all", "perplexity/base"), 1.6),
]
NLL_RTOL = 1e-4  # float32 logits on two BLAS libraries: per-token log-probs agree to ~1e-6 relative


class InputError(Exception):
    pass


def read_side(paths, side: str):
    """All JSON lines of one side (one file per process: per shape, perplexity). None when no file
    has any line. Returns (meta lines, {name: measurement})."""
    metas, rows = [], {}
    for path in paths or []:
        if not os.path.exists(path) or os.path.getsize(path) == 0:
            continue
        metas_before = len(metas)
        with open(path, encoding="utf-8") as f:
            for i, line in enumerate(f, 1):
                if not line.strip():
                    continue
                try:
                    r = json.loads(line)
                except json.JSONDecodeError as e:
                    raise InputError(f"{path}:{i}: not JSON ({e})")
                if not isinstance(r, dict) or not isinstance(r.get("name"), str):
                    raise InputError(f"{path}:{i}: expected an object with a string 'name'")
                if r.get("side") != side:
                    raise InputError(f"{path}:{i}: 'side' is {r.get('side')!r}, expected {side!r}")
                if r["name"] == "meta":
                    if not isinstance(r.get("started_unix"), (int, float)) or not isinstance(r.get("host"), str):
                        raise InputError(f"{path}:{i}: the meta line needs 'host' and a numeric 'started_unix'")
                    metas.append(r)
                    continue
                if r["name"] == "peak_rss":
                    if not isinstance(r.get("bytes"), int) or r["bytes"] <= 0:
                        raise InputError(f"{path}:{i}: 'peak_rss' needs integer 'bytes' > 0")
                    # one process per shape: the largest peak is the side's peak
                    if "peak_rss" in rows and rows["peak_rss"]["bytes"] >= r["bytes"]:
                        continue
                    rows["peak_rss"] = r
                    continue
                s = r.get("seconds")
                if not isinstance(s, (int, float)) or not s > 0 or not isinstance(r.get("tokens"), int):
                    raise InputError(f"{path}:{i}: '{r['name']}' needs 'seconds' > 0 and integer 'tokens'")
                if r["name"] == "open":  # once per process: the fastest opening is the side's
                    if "open" in rows and rows["open"]["seconds"] <= s:
                        continue
                    rows["open"] = r
                    continue
                if r["name"] in rows:
                    raise InputError(f"{path}:{i}: measurement '{r['name']}' appears twice (files of two runs mixed?)")
                rows[r["name"]] = r
        if len(metas) == metas_before:
            raise InputError(f"{path}: no 'meta' line (host, started_unix)")
    if not metas:
        return None
    return metas, rows


def workload_shas(metas):
    return {m["workload"]["sha256"] for m in metas if isinstance(m.get("workload"), dict) and "sha256" in m["workload"]}


def stat_seconds(r, stat):
    return r.get("median_seconds", r["seconds"]) if stat == "median" else r["seconds"]


STEPS = ["sense_network", "trunk", "trunk_and_sense_weights", "sense_weights", "sense_sum", "output"]


def order_key(name):
    groups = ["open", "forward_1x", "forward_8x", "perplexity/base", "perplexity/", "peak_rss"]
    g = next((i for i, p in enumerate(groups) if name.startswith(p)), len(groups))
    step = name.split("/", 1)[1] if "/" in name and name.startswith("forward_") else ""
    return (g, name != name.split("/")[0], STEPS.index(step) if step in STEPS else len(STEPS),
            name == "perplexity/all", name)


def fmt_time(r, stat):
    if r is None:
        return f"{'-':>21}"
    if r["name"] == "peak_rss":
        return f"{r['bytes'] / 1e6:>12.0f} MB      "
    s = stat_seconds(r, stat)
    tps = f"{r['tokens'] / s:>7.0f} t/s" if r.get("tokens") else f"{'':11}"
    return f"{s:>8.3f} s {tps}"


def main(argv=None):
    ap = argparse.ArgumentParser(description="Compare the Swift and PyTorch sides of one make bench run.")
    ap.add_argument("--swift", nargs="+", required=True, help="the Swift side's JSON lines files")
    ap.add_argument("--pytorch", nargs="*", default=[], help="the PyTorch side's files (none or empty: Swift only)")
    ap.add_argument("--pytorch-note", default="", help="why the PyTorch side is absent (printed when it is)")
    ap.add_argument("--stat", choices=["best", "median"], default="best")
    ap.add_argument("--max-apart", type=float, default=7200, help="seconds between the first and last process start")
    ap.add_argument("--strict", action="store_true", help="exit 1 when a target fails or is not checked")
    args = ap.parse_args(argv)
    try:
        sw = read_side(args.swift, "swift")
        if sw is None:
            raise InputError(f"{' '.join(args.swift)}: missing or empty (the Swift side did not run)")
        pt = read_side(args.pytorch, "pytorch")
        metas = sw[0] + (pt[0] if pt else [])
        hosts = sorted({m["host"] for m in metas})
        if len(hosts) != 1:
            raise InputError(f"hosts differ ({', '.join(hosts)}): these files are not one run on one machine")
        starts = [m["started_unix"] for m in metas]
        if max(starts) - min(starts) > args.max_apart:
            raise InputError(f"processes started {max(starts) - min(starts):.0f} s apart (> {args.max_apart:.0f} s): not one run")
    except InputError as e:
        print(f"compare: {e}", file=sys.stderr)
        return 2

    (smetas, srows) = sw
    (pmetas, prows) = pt if pt is not None else ([], {})
    ms, mp = smetas[0], (pmetas[0] if pmetas else {})
    ws, wp = workload_shas(smetas), workload_shas(pmetas)
    same_workload = len(ws) == 1 and ws == wp
    if pt is None:
        print(f"PyTorch side not run{': ' + args.pytorch_note.strip() if args.pytorch_note.strip() else ''}; "
              "Swift numbers only, no ratios.")
    else:
        print(f"one run on {ms.get('host')}: Swift ({ms.get('blas', '?')}, {ms.get('threads', '?')} threads) vs "
              f"PyTorch {mp.get('torch', '?')} ({mp.get('blas', '?')}, {mp.get('threads', '?')} threads); "
              f"statistic: {args.stat} of the timed runs")
        if not same_workload and any(n.startswith("perplexity") for n in prows):
            print("note: the two sides did not read one workload file: perplexity rows are not compared")

    def comparable(name):
        return pt is not None and name in srows and name in prows and (same_workload or not name.startswith("perplexity"))

    def ratio(name):
        s, p = srows[name], prows[name]
        if name == "peak_rss":
            return s["bytes"] / p["bytes"]
        if s["tokens"] != p["tokens"]:
            return (s["tokens"] / stat_seconds(s, args.stat)) / (p["tokens"] / stat_seconds(p, args.stat))
        return stat_seconds(p, args.stat) / stat_seconds(s, args.stat)

    names = sorted(set(srows) | set(prows), key=order_key)
    print(f"\n{'measurement':36} {'Swift':>21} {'PyTorch':>21} {'Swift/PyTorch':>14}")
    for n in names:
        s, p = srows.get(n), prows.get(n)
        if n.startswith("perplexity") and not same_workload:
            p = None
        r = f"{ratio(n):>13.2f}x" if comparable(n) else f"{'':14}"
        extra = ""
        if s is not None and p is not None and "nll_sum" in s and "nll_sum" in p:
            if s.get("scored_tokens") != p.get("scored_tokens"):
                extra = f"  DIFFERENT scored tokens {s.get('scored_tokens')} vs {p.get('scored_tokens')}"
            else:
                d = abs(s["nll_sum"] - p["nll_sum"]) / max(abs(p["nll_sum"]), 1e-12)
                extra = (f"  ppl {math.exp(s['nll_sum'] / s['scored_tokens']):.3f} both" if d <= NLL_RTOL else
                         f"  DIFFERENT nll: rel. diff {d:.1e} > {NLL_RTOL:g}")
        print(f"{n:36} {fmt_time(s, args.stat)} {fmt_time(p, args.stat)} {r}{extra}")

    print("\ntargets")
    bad = 0
    for label, kind, need, threshold in TARGETS:
        if kind == "speed":
            n = need[0]
            if n not in srows:
                verdict, detail = "NOT CHECKED", "no Swift measurement"
            elif not comparable(n):
                verdict, detail = "NOT CHECKED", "no PyTorch measurement from this run" if pt is None or n not in prows else "different workloads"
            else:
                x = ratio(n)
                verdict, detail = ("PASS" if x >= threshold else "FAIL"), f"{x:.2f}x"
        else:
            a, b = need
            if a not in srows or b not in srows:
                verdict, detail = "NOT CHECKED", f"Swift needs both {a} and {b}"
            else:
                x = stat_seconds(srows[a], args.stat) / stat_seconds(srows[b], args.stat)
                verdict, detail = ("PASS" if x <= threshold else "FAIL"), f"{x:.2f}x"
        bad += verdict != "PASS"
        print(f"  {verdict:11} {label}: {detail}")
    # The bench itself keeps ~2 cores busy; above 2.5 something else ran at the same time.
    load = [round(m[k][0], 2) for m in metas for k in ("loadavg_start", "loadavg_end")
            if isinstance(m.get(k), list) and m[k] and isinstance(m[k][0], (int, float))]
    if any(l > 2.5 for l in load):
        print(f"note: 1-minute load averages at the processes' starts/ends {load} (2 cores): something else was "
              "busy, the numbers are disturbed")
    return 1 if args.strict and bad else 0


if __name__ == "__main__":
    sys.exit(main())
