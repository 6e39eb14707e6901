#!/usr/bin/env python3
"""Compare a merged run with the unsharded run of the same plan, object by object.

Usage: compare_runs.py MERGED.h5 UNSHARDED.h5 [--tolerance T]
       compare_runs.py AFTER.h5 BEFORE.h5 --any-runs [--allow-added REGEX] [--tolerance T]

With --any-runs the first file's latest run need not be merged (two runs of one plan made by two
builds, e.g. before and after a refactoring; git_commit and tool_version may differ too), and
--allow-added lets attributes whose name matches REGEX exist in the first run only (metadata a
newer build adds).

Each file's latest run (/runs/<id>, last in creation order) is compared: the same variants and
suites in the same order, and for every group and dataset below the run the same attributes, and
for every dataset the same element type, shape, chunking, compression and values. The run's own
attributes are compared too, except the provenance that a merge writes differently by design
(docs/SHARDING.md, LAYOUT.md): created, host, command_line, elapsed_seconds, merged_from.

--tolerance is the largest |merged - unsharded| allowed for a number (dataset element or
attribute). The default, 0, asks for bit-identical results: the bytes of every dataset and the
value of every attribute must be equal (NaN equals NaN in the same place). Strings, integers,
names, types and shapes must always be equal.

Prints the largest difference found (absolute, and relative to the largest |value| of its
dataset) and every object that differs; exits 1 if anything differs beyond the tolerance.
Needs h5py and numpy (Debian: python3-h5py).
"""
import argparse
import re
import sys

import h5py
import numpy as np

# Run attributes a merge writes differently from an unsharded eval (LAYOUT.md, "Sharded and
# merged runs"). Everything else, at every level, must match.
RUN_PROVENANCE = {"created", "host", "command_line", "elapsed_seconds", "merged_from"}


class Comparison:
    def __init__(self, tolerance, allow_added=None, allow_changed=None):
        self.tolerance = tolerance
        self.allow_added = allow_added
        self.allow_changed = allow_changed
        self.changed = []           # attributes allowed to differ that do
        self.problems = []          # structural or beyond-tolerance differences
        self.numeric_diffs = []     # (abs diff, relative diff, path) for every number that differs at all
        self.datasets = 0
        self.attributes = 0
        self.values = 0

    def problem(self, path, what):
        self.problems.append(f"{path}: {what}")

    def numbers(self, path, a, b, scale_of=None):
        """Compares two numeric arrays of one shape; records the largest difference."""
        a = np.asarray(a)
        b = np.asarray(b)
        self.values += a.size
        if a.dtype.kind in "iub" and b.dtype.kind in "iub":
            if not np.array_equal(a, b):
                self.problem(path, f"integers differ ({int(np.count_nonzero(a != b))} of {a.size})")
            return
        same_bits = a.tobytes() == b.tobytes()
        af = a.astype(np.float64)
        bf = b.astype(np.float64)
        nan_a, nan_b = np.isnan(af), np.isnan(bf)
        if not np.array_equal(nan_a, nan_b):
            self.problem(path, "NaN in different places")
            return
        finite = ~nan_a
        diff = np.abs(af[finite] - bf[finite])
        largest = float(diff.max()) if diff.size else 0.0
        scale = np.abs(bf[finite]).max() if diff.size else 0.0
        relative = largest / scale if scale > 0 else 0.0
        if largest > 0 or not same_bits:
            self.numeric_diffs.append((largest, relative, path, int(np.count_nonzero(diff))))
        if self.tolerance == 0:
            if not same_bits:
                self.problem(path, f"not bit-identical (max |diff| {largest:.3g}, {int(np.count_nonzero(diff))} of {a.size} values)")
        elif largest > self.tolerance:
            self.problem(path, f"max |diff| {largest:.3g} > tolerance {self.tolerance:.3g}")

    def attrs(self, path, merged, unsharded, skip=()):
        names_m = set(merged.attrs.keys()) - set(skip)
        names_u = set(unsharded.attrs.keys()) - set(skip)
        for name in sorted(names_m ^ names_u):
            if self.allow_added and name in names_m and self.allow_added.fullmatch(name):
                continue
            where = "merged" if name in names_m else "unsharded"
            self.problem(path, f"attribute {name!r} only in the {where} run")
        for name in sorted(names_m & names_u):
            self.attributes += 1
            if self.allow_changed and self.allow_changed.fullmatch(name):
                before = len(self.problems)
                self.value(f"{path}@{name}", merged.attrs[name], unsharded.attrs[name])
                self.changed += self.problems[before:]
                del self.problems[before:]
                continue
            self.value(f"{path}@{name}", merged.attrs[name], unsharded.attrs[name])

    def value(self, path, a, b):
        if isinstance(a, (bytes, str)) or isinstance(b, (bytes, str)):
            if a != b:
                self.problem(path, f"{a!r} != {b!r}")
            return
        a, b = np.asarray(a), np.asarray(b)
        if a.dtype.kind in "OSU" or b.dtype.kind in "OSU":
            if a.dtype.kind != b.dtype.kind or a.shape != b.shape or a.tolist() != b.tolist():
                self.problem(path, f"{a.tolist()!r} != {b.tolist()!r}")
            return
        if a.dtype != b.dtype or a.shape != b.shape:
            self.problem(path, f"type {a.dtype}{list(a.shape)} != {b.dtype}{list(b.shape)}")
            return
        self.numbers(path, a, b)

    def dataset(self, path, m, u):
        self.datasets += 1
        for what, get in (("type", lambda d: d.dtype), ("shape", lambda d: d.shape),
                          ("chunks", lambda d: d.chunks), ("compression", lambda d: d.compression),
                          ("compression level", lambda d: d.compression_opts), ("shuffle", lambda d: d.shuffle)):
            if get(m) != get(u):
                self.problem(path, f"{what} {get(m)} != {get(u)}")
                return
        if h5py.check_string_dtype(m.dtype) is not None:
            a, b = m.asstr()[()], u.asstr()[()]
            self.values += np.size(a)
            if np.asarray(a).tolist() != np.asarray(b).tolist():
                self.problem(path, "strings differ")
        else:
            self.numbers(path, m[()], u[()])

    def group(self, path, m, u, skip_attrs=()):
        self.attrs(path, m, u, skip_attrs)
        names_m, names_u = list(m.keys()), list(u.keys())
        if names_m != names_u:
            if set(names_m) == set(names_u):
                self.problem(path, f"children in another order: {names_m} != {names_u}")
            else:
                only_m = [n for n in names_m if n not in names_u]
                only_u = [n for n in names_u if n not in names_m]
                self.problem(path, f"children only in the merged run {only_m}, only in the unsharded run {only_u}")
        for name in names_m:
            if name not in u:
                continue
            cm, cu = m[name], u[name]
            child = f"{path}/{name}"
            if isinstance(cm, h5py.Group) and isinstance(cu, h5py.Group):
                self.group(child, cm, cu)
            elif isinstance(cm, h5py.Dataset) and isinstance(cu, h5py.Dataset):
                self.attrs(child, cm, cu)
                self.dataset(child, cm, cu)
            else:
                self.problem(child, "a group in one run, a dataset in the other")


def latest_run(f, path):
    runs = f.get("runs")
    if not isinstance(runs, h5py.Group) or len(runs) == 0:
        sys.exit(f"compare_runs: {path} has no run under /runs")
    name = list(runs.keys())[-1]      # backpack tracks creation order, so the last is the latest
    return name, runs[name]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("merged")
    parser.add_argument("unsharded")
    parser.add_argument("--tolerance", type=float, default=0.0,
                        help="largest |merged - unsharded| allowed per number; 0 (default) = bit-identical")
    parser.add_argument("--any-runs", action="store_true",
                        help="compare the latest runs of two files, merged or not (two builds of one plan)")
    parser.add_argument("--allow-added", default=None,
                        help="attributes matching this regular expression may exist in the first run only")
    parser.add_argument("--allow-changed", default=None,
                        help="attributes matching this regular expression may differ (counted and listed, not failed)")
    args = parser.parse_args()
    if args.tolerance < 0:
        sys.exit("compare_runs: --tolerance must be >= 0")

    with h5py.File(args.merged, "r") as fm, h5py.File(args.unsharded, "r") as fu:
        id_m, run_m = latest_run(fm, args.merged)
        id_u, run_u = latest_run(fu, args.unsharded)
        if "merged_from" not in run_m.attrs and not args.any_runs:
            sys.exit(f"compare_runs: the latest run of {args.merged} ({id_m}) is not a merged run (no merged_from)")
        merged_from = run_m.attrs.get("merged_from", "(not merged)")
        merged_from = merged_from.decode() if isinstance(merged_from, bytes) else str(merged_from)
        c = Comparison(args.tolerance, re.compile(args.allow_added) if args.allow_added else None,
                       re.compile(args.allow_changed) if args.allow_changed else None)
        skip = RUN_PROVENANCE | ({"git_commit", "tool_version"} if args.any_runs else set())
        c.group("", run_m, run_u, skip_attrs=skip)
        variants = list(run_m.keys())
        suites = sorted({s for v in variants for s in run_m[v].keys()})

    print(f"merged run {id_m} ({args.merged}), from:")
    for line in merged_from.splitlines():
        print(f"  {line}")
    print(f"compared with unsharded run {id_u} ({args.unsharded}):")
    print(f"  {len(variants)} variants x {len(suites)} suites ({', '.join(suites)}): "
          f"{c.datasets} datasets, {c.attributes} attributes, {c.values} values")
    if c.numeric_diffs:
        largest = max(c.numeric_diffs)
        worst_relative = max(c.numeric_diffs, key=lambda d: d[1])
        print(f"  {len(c.numeric_diffs)} numeric objects differ; max |diff| {largest[0]:.3g} at {largest[2]}; "
              f"max |diff| / max |value| of its object {worst_relative[1]:.3g} at {worst_relative[2]}")
    else:
        print("  max |diff| 0: every number is bit-identical")
    tolerance = "0: bit-identical" if args.tolerance == 0 else f"{args.tolerance:g}"
    if c.changed:
        names = sorted({p.split("@")[-1].split(":")[0] for p in c.changed})
        print(f"  {len(c.changed)} attributes differ that --allow-changed allows: {', '.join(names)}")
    if c.problems:
        print(f"FAILED (tolerance {tolerance}): {len(c.problems)} differences")
        for p in c.problems[:40]:
            print(f"  {p}")
        if len(c.problems) > 40:
            print(f"  ... and {len(c.problems) - 40} more")
        return 1
    what = "the two runs are equal" if args.any_runs else "the merged run equals the unsharded run"
    print(f"OK: {what} (tolerance {tolerance}{', except what --allow-changed allows' if c.changed else ''})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
