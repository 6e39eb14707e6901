#!/usr/bin/env python3
"""Checks a results file's paired tests outside the project (issue 28).

Usage: check_tests.py RESULTS.h5 [--run ID] [--resamples 200000]

For the run (default: the latest):
1. Every family, one (suite, metric) across the run's edited variants: the stored Holm-adjusted
   p (`M_diff_p_holm`) and Benjamini-Hochberg q (`M_diff_q`) equal statsmodels'
   `multipletests(p, method="holm")` and `method="fdr_bh"` on the stored raw `M_diff_p`
   (within 1e-12; NaN p-values are left out of the family, as the toolkit does).
2. pronoun-bias's `bias_diff_p`, a sign-flip test of the per-noun differences, against an
   independent computation from the stored per-prompt `ratio` and `prompt_nouns` of base and the
   variant: numpy's own random signs (--resamples draws), or every sign vector for up to 16
   nouns; agreement within 4 standard errors of the two Monte Carlo estimates.
Prints one line per family and per variant; exits 1 on any mismatch. Needs h5py, numpy, statsmodels.
"""
import argparse
import sys

import h5py
import numpy as np
from statsmodels.stats.multitest import multipletests


def text(v):
    return v.decode() if isinstance(v, bytes) else str(v)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("results")
    ap.add_argument("--run")
    ap.add_argument("--resamples", type=int, default=200_000)
    args = ap.parse_args()
    bad = 0
    with h5py.File(args.results, "r") as f:
        runs = f["runs"]
        rid = args.run or list(runs.keys())[-1]
        run = runs[rid]
        variants = [v for v in run.keys() if v != "base"]
        families = {}
        for v in variants:
            for s in run[v].keys():
                g = run[v][s]
                for m in text(g.attrs.get("headline", "")).split(","):
                    if m and m + "_diff_p" in g.attrs:
                        families.setdefault((s, m), []).append((v, g))
        for (s, m), members in sorted(families.items()):
            p = np.array([float(g.attrs[m + "_diff_p"]) for _, g in members])
            keep = ~np.isnan(p)
            holm = np.full(len(p), np.nan)
            bh = np.full(len(p), np.nan)
            if keep.any():
                holm[keep] = multipletests(p[keep], method="holm")[1]
                bh[keep] = multipletests(p[keep], method="fdr_bh")[1]
            stored_holm = np.array([float(g.attrs.get(m + "_diff_p_holm", np.nan)) for _, g in members])
            stored_q = np.array([float(g.attrs.get(m + "_diff_q", np.nan)) for _, g in members])
            ok = np.allclose(holm, stored_holm, atol=1e-12, rtol=0, equal_nan=True) and \
                np.allclose(bh, stored_q, atol=1e-12, rtol=0, equal_nan=True)
            worst = np.nanmax(np.abs(np.concatenate([holm - stored_holm, bh - stored_q]))) if keep.any() else 0.0
            print(f"{'ok  ' if ok else 'FAIL'} {s}.{m}: {len(p)} p-values; Holm and BH equal statsmodels "
                  f"(max |diff| {worst:.2g})" if ok else f"FAIL {s}.{m}: Holm/BH differ from statsmodels (max |diff| {worst:.3g})")
            bad += not ok

        rng = np.random.default_rng(20231207)
        if "base" in run and "pronoun-bias" in run["base"]:
            b = run["base"]["pronoun-bias"]
            nouns = [text(x) for x in b["prompt_nouns"][()]]
            order = list(dict.fromkeys(nouns))
            index = np.array([order.index(n) for n in nouns])
            rb = b["ratio"][()]
            for v in variants:
                if "pronoun-bias" not in run[v] or "bias_diff_p" not in run[v]["pronoun-bias"].attrs:
                    continue
                g = run[v]["pronoun-bias"]
                rv = g["ratio"][()]
                d = np.bincount(index, weights=rv, minlength=len(order)) - np.bincount(index, weights=rb, minlength=len(order))
                scale = np.maximum(np.abs(np.bincount(index, weights=rv)), np.abs(np.bincount(index, weights=rb)))
                d[np.abs(d) <= 1e-6 * scale] = 0
                observed = abs(d.sum())
                margin = 1e-12 * np.abs(d).sum()
                n = len(d)
                if n <= 16:
                    signs = 1 - 2 * ((np.arange(2 ** n)[:, None] >> np.arange(n)) & 1)
                    mine = np.mean(np.abs(signs @ d) >= observed - margin)
                    se = 0.0
                else:
                    hits = 0
                    left = args.resamples
                    while left > 0:
                        k = min(left, 20_000)
                        signs = rng.choice([-1.0, 1.0], size=(k, n))
                        hits += int(np.sum(np.abs(signs @ d) >= observed - margin))
                        left -= k
                    mine = (hits + 1) / (args.resamples + 1)
                    stored_n = int(g.attrs.get("bias_test_resamples", 10_000))
                    se = np.sqrt(max(mine * (1 - mine), 1e-5) * (1 / stored_n + 1 / args.resamples))
                stored = float(g.attrs["bias_diff_p"])
                ok = abs(stored - mine) <= 4 * se + 1e-12
                print(f"{'ok  ' if ok else 'FAIL'} pronoun-bias.bias_diff_p [{v}]: stored {stored:.4f} "
                      f"({text(g.attrs.get('bias_test', '?'))}), independent {mine:.4f} +- {se:.4f}")
                bad += not ok
    print(f"{'FAILED' if bad else 'passed'}: {bad} mismatch(es) in run {rid} of {args.results}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
