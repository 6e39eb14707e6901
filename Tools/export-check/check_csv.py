#!/usr/bin/env python3
"""Checks `backpack report --format csv` against the HDF5 file it was made from, outside Swift.

    check_csv.py RESULTS.h5 EXPORT.csv

Reads the CSV with pandas (`pd.read_csv`, the README's one-liner, and once more as text) and the
results file with h5py, and compares every field of every row with the file (LAYOUT.md, "CSV
export"):
  - value, ci_low, ci_high, p, p_holm, q, ideal: equal to the stored attribute (M, M_ci_low,
    M_ci_high, M_diff_p, M_diff_p_holm, M_diff_q, M_ideal), bit for bit; empty where absent or NaN;
  - diff = M(variant) - M(base) of the same run, computed here from the stored values;
    diff_ci_low, diff_ci_high = M_diff_ci_low, M_diff_ci_high;
  - kind, test, unit, better, description, ci_unit: the stored strings (empty where absent);
  - edit_family, grid: the variant group's edit_family and grid_axes / grid_values;
  - n_units: the number of bootstrap units, counted here from the stored datasets (nouns,
    occupations, pairs or their unit_key, examples, items, documents);
and that every headline metric of every (variant, suite) of each run in the CSV has exactly one
row (the export was made without --metrics and --variants). Exit status 0 when everything
matches, 1 on any mismatch (each printed).
"""
import math
import sys

import h5py
import numpy as np
import pandas as pd

COLUMNS = ["run", "variant", "edit_family", "grid", "suite", "kind", "metric", "value", "ci_low", "ci_high",
           "diff", "diff_ci_low", "diff_ci_high", "p", "p_holm", "q", "test", "n_units", "unit", "ideal",
           "better", "description", "ci_unit"]
NUMERIC = {"value": "", "ci_low": "_ci_low", "ci_high": "_ci_high", "diff_ci_low": "_diff_ci_low",
           "diff_ci_high": "_diff_ci_high", "p": "_diff_p", "p_holm": "_diff_p_holm", "q": "_diff_q", "ideal": "_ideal"}
STRINGS = {"test": "_test", "unit": "_unit", "better": "_better", "description": "_description"}


def text(attrs, key):
    if key not in attrs:
        return ""
    v = attrs[key]
    return v.decode() if isinstance(v, bytes) else str(v)


def number(attrs, key):
    if key not in attrs:
        return None
    v = float(np.asarray(attrs[key]).item())
    return None if math.isnan(v) else v


def same(csv_value, stored):
    """csv_value: the float pandas read (NaN for an empty field)."""
    if stored is None:
        return isinstance(csv_value, float) and math.isnan(csv_value)
    if isinstance(csv_value, float) and math.isnan(csv_value):
        return False
    return float(csv_value) == stored


def unit_count(suite, unit):
    """The number of bootstrap units, from the datasets the kind resamples."""
    def length(name):
        return len(suite[name]) if name in suite else None
    if unit == "noun":
        return length("nouns")
    if unit == "occupation":
        return length("occupations")
    if unit == "example":
        return length("target")
    if unit == "item":
        return length("gold")
    if unit == "document":
        for name in ("nll", "documents", "log_likelihood", "tokens"):
            if name in suite:
                return len(suite[name])
        return None
    if "unit_key" in suite:          # sentence_pairs with a unit column or group
        return len(set(suite["unit_key"].asstr()[:]))
    for name in ("sentence_a", "sent_more"):
        if name in suite:
            return len(suite[name])
    return None


def main():
    if len(sys.argv) != 3:
        print(__doc__.strip().splitlines()[2].strip(), file=sys.stderr)
        return 1
    results, export = sys.argv[1], sys.argv[2]
    numbers = pd.read_csv(export)                                   # the one-liner: numbers as float64
    texts = pd.read_csv(export, dtype=str, keep_default_na=False)  # the same file as written
    bad = []
    if list(numbers.columns) != COLUMNS:
        bad.append(f"columns {list(numbers.columns)}, expected {COLUMNS}")
    for col in list(NUMERIC) + ["diff"]:
        if numbers[col].dtype != np.float64:
            bad.append(f"column {col}: pandas read dtype {numbers[col].dtype}, expected float64")
    checked = 0
    seen = set()
    with h5py.File(results, "r") as f:
        for i in range(len(texts)):
            t, n = texts.iloc[i], numbers.iloc[i]
            key = (t["run"], t["variant"], t["suite"], t["metric"])
            where = "row %d (%s)" % (i + 2, "/".join(key))
            if key in seen:
                bad.append(f"{where}: duplicate row")
            seen.add(key)
            try:
                run = f["runs"][t["run"]]
                vg = run[t["variant"]]
                sg = vg[t["suite"]]
            except KeyError as e:
                bad.append(f"{where}: not in {results} ({e})")
                continue
            m, a = t["metric"], sg.attrs
            for col, suffix in NUMERIC.items():
                if not same(n[col], number(a, m + suffix)):
                    bad.append(f"{where}: {col} = {t[col]!r}, stored {m + suffix} = {number(a, m + suffix)!r}")
                checked += 1
            for col, suffix in STRINGS.items():
                if t[col] != text(a, m + suffix):
                    bad.append(f"{where}: {col} = {t[col]!r}, stored {text(a, m + suffix)!r}")
                checked += 1
            for col, key_ in (("kind", "kind"), ("ci_unit", "ci_unit")):
                if t[col] != text(a, key_):
                    bad.append(f"{where}: {col} = {t[col]!r}, stored {text(a, key_)!r}")
                checked += 1
            # diff from the stored values of this variant and base.
            expected_diff = None
            if t["variant"] != "base" and "base" in run and t["suite"] in run["base"]:
                b = number(run["base"][t["suite"]].attrs, m)
                v = number(a, m)
                expected_diff = None if b is None or v is None else v - b
            if not same(n["diff"], expected_diff):
                bad.append(f"{where}: diff = {t['diff']!r}, expected {expected_diff!r}")
            checked += 1
            family = text(vg.attrs, "edit_family")
            grid = ""
            if "grid_axes" in vg.attrs:
                axes = [x.decode() if isinstance(x, bytes) else str(x) for x in vg.attrs["grid_axes"]]
                values = [x.decode() if isinstance(x, bytes) else str(x) for x in vg.attrs["grid_values"]]
                grid = ";".join(f"{x}={y}" for x, y in zip(axes, values))
            for col, expected in (("edit_family", family), ("grid", grid)):
                if t[col] != expected:
                    bad.append(f"{where}: {col} = {t[col]!r}, stored {expected!r}")
                checked += 1
            units = unit_count(sg, text(a, "ci_unit"))
            if units is None or t["n_units"] != str(units):
                bad.append(f"{where}: n_units = {t['n_units']!r}, counted {units!r} {text(a, 'ci_unit')}s")
            checked += 1
        # Coverage: every headline metric of every suite of the runs in the CSV.
        for run_id in sorted(set(texts["run"])):
            run = f["runs"][run_id]
            for variant, vg in run.items():
                for suite, sg in vg.items():
                    for m in text(sg.attrs, "headline").split(","):
                        if m and m in sg.attrs and (run_id, variant, suite, m) not in seen:
                            bad.append(f"missing row: {run_id}/{variant}/{suite}/{m}")
    for b in bad:
        print("MISMATCH", b)
    print(f"{len(texts)} rows, {checked} fields compared with {results}: "
          + ("all equal" if not bad else f"{len(bad)} mismatch(es)"))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
