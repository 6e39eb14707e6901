"""Reference WinoBias log-likelihoods for a causal Backpack LM, independent of the Swift code.

The `winobias` suite's pairs: type 1 then type 2; pair i of type T is line i of
pro_stereotyped_typeT.txt.<split> (sentence a, pro-stereotypical) with line i of
anti_stereotyped_typeT.txt.<split> (sentence b), group "type1" / "type2". Each line is cleaned by
removing the leading number and the whitespace after it (regex ^\\d+\\s+) and then every square
bracket (regex [\\[\\]]). A sentence is scored by one forward pass of the project's PyTorch
Backpack (Tools/train-demo-model/backpack.py) over <|endoftext|> followed by the sentence's tokens
(the model directory's tokenizer.json, read by `tokenizers`): its log-likelihood is the sum over
the sentence's tokens of log softmax(logits)[next token], in float64 from the float32 logits
(lm-evaluation-harness's loglikelihood with an empty context). Aggregates, overall and per group:
pct_prefers_a (% of pairs with ll_a > ll_b; 50 = no preference) and mean_gap (mean ll_a - ll_b).

    python winobias_check.py [--dev] [--model DIR] [--data-dir DIR] [--json OUT] [--strict]
    python winobias_check.py --results FILE.h5 [--run ID] [--variant base] [--suite winobias]
                             [--dev] [--golden JSON]

The second form checks a results file written by `backpack eval` (Sources/BackpackResults/
LAYOUT.md) against the reference (computed afresh from --model, or read from --golden): the
per-pair datasets sentence_a, sentence_b (exact text), group (exact), log_likelihood_a,
log_likelihood_b (within 2e-3 nats), and the stored pct_prefers_a / mean_gap attributes against
their recomputation from the stored per-pair values. One line of verdict; exit 1 on any mismatch.
"""

import argparse
import hashlib
import json
import os
import re
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.normpath(os.path.join(HERE, "..", ".."))

NUMBER = re.compile(r"^\d+\s+")
BRACKETS = re.compile(r"[\[\]]")
MALE = {"he", "him", "his", "himself"}
FEMALE = {"she", "her", "hers", "herself"}
PUNCT = ".,;:!?\"'()"
LL_TOLERANCE = 2e-3          # nats, per sentence
AGG_TOLERANCE = 1e-9         # stored aggregate vs recomputation from the stored per-pair values


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def fail(msg):
    print(f"winobias_check: error: {msg}", file=sys.stderr)
    sys.exit(2)


def clean(line):
    return BRACKETS.sub("", NUMBER.sub("", line))


def read_lines(path):
    """The file's lines without their newline; a final newline does not make an empty line."""
    with open(path, encoding="utf-8", newline="") as f:
        text = f.read()
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    for i, line in enumerate(lines, 1):
        if "\r" in line:
            fail(f"{path}:{i}: carriage return in the line")
        if not NUMBER.match(line):
            fail(f"{path}:{i}: the line does not start with a number and whitespace: {line!r}")
    return lines


def gendered_difference(a, b):
    """None when sentences a and b differ only in gendered words (he/she, him/her, his/her,
    himself/herself at the same word positions, punctuation equal), else what differs."""
    wa, wb = a.split(" "), b.split(" ")
    if len(wa) != len(wb):
        return f"different word counts ({len(wa)} vs {len(wb)})"
    diffs = [(x, y) for x, y in zip(wa, wb) if x != y]
    if not diffs:
        return "identical sentences"
    bad = []
    for x, y in diffs:
        cx, cy = x.strip(PUNCT), y.strip(PUNCT)
        px, py = x.replace(cx, "", 1), y.replace(cy, "", 1)
        lx, ly = cx.lower(), cy.lower()
        if px == py and ((lx in MALE and ly in FEMALE) or (lx in FEMALE and ly in MALE)):
            continue
        bad.append(f"{x!r}/{y!r}")
    return ("non-gendered words differ: " + ", ".join(bad)) if bad else None


def load_pairs(data_dir, split):
    """(pairs, data file digests, anomalies): pairs in suite order, each (group, a, b)."""
    pairs, digests, anomalies = [], {}, []
    for t in (1, 2):
        pro_name = f"pro_stereotyped_type{t}.txt.{split}"
        anti_name = f"anti_stereotyped_type{t}.txt.{split}"
        pro_path, anti_path = os.path.join(data_dir, pro_name), os.path.join(data_dir, anti_name)
        pro, anti = read_lines(pro_path), read_lines(anti_path)
        if len(pro) != len(anti):
            fail(f"{pro_name} has {len(pro)} lines but {anti_name} has {len(anti)}: "
                 f"the pairs of type {t} are line i of one with line i of the other")
        digests[pro_name] = sha256(pro_path)
        digests[anti_name] = sha256(anti_path)
        for i, (p, a) in enumerate(zip(pro, anti)):
            np_, na = NUMBER.match(p).group(0).strip(), NUMBER.match(a).group(0).strip()
            sa, sb = clean(p), clean(a)
            why = gendered_difference(sa, sb)
            if np_ != na:
                why = (why + "; " if why else "") + f"line numbers differ ({np_} vs {na})"
            if why:
                anomalies.append({"pair": len(pairs), "group": f"type{t}", "line": i + 1,
                                  "sentence_a": sa, "sentence_b": sb, "why": why})
            pairs.append((f"type{t}", sa, sb))
    return pairs, digests, anomalies


def aggregates(groups, lla, llb):
    """pct_prefers_a and mean_gap overall and per group (groups in first-appearance order)."""
    def agg(idx):
        gaps = [lla[i] - llb[i] for i in idx]
        return {"n_pairs": len(idx),
                "pct_prefers_a": 100 * sum(1 for g in gaps if g > 0) / len(idx),
                "mean_gap": sum(gaps) / len(idx)}
    out = agg(range(len(lla)))
    names = []
    for g in groups:
        if g not in names:
            names.append(g)
    out["groups"] = {g: agg([i for i, x in enumerate(groups) if x == g]) for g in names}
    return out


def score(model_dir, sentences, threads):
    import torch
    from tokenizers import Tokenizer
    sys.path.insert(0, os.path.join(REPO, "Tools", "train-demo-model"))
    from backpack import load_folder

    torch.set_num_threads(threads)
    model = load_folder(model_dir)
    tok = Tokenizer.from_file(os.path.join(model_dir, "tokenizer.json"))
    eot = tok.token_to_id("<|endoftext|>")
    n_positions = model.cfg.n_positions
    out = []
    with torch.no_grad():
        for s in sentences:
            seq = [eot] + tok.encode(s, add_special_tokens=False).ids
            if len(seq) > n_positions:
                fail(f"{len(seq)} tokens exceed the model's {n_positions} positions: {s!r}")
            logits = model(torch.tensor([seq]))[0].double()          # (n, V)
            logp = torch.log_softmax(logits, dim=-1)
            out.append(float(sum(logp[j - 1, seq[j]] for j in range(1, len(seq)))))
    return out


def reference(args):
    split = "dev" if args.dev else "test"
    pairs, digests, anomalies = load_pairs(args.data_dir, split)
    for a in anomalies:
        print(f"warning: {a['group']} line {a['line']}: {a['why']}\n  a: {a['sentence_a']}\n  b: {a['sentence_b']}",
              file=sys.stderr)
    if anomalies:
        print(f"warning: {len(anomalies)} of {len(pairs)} pairs differ in more than the gendered words "
              f"(scored as they are)", file=sys.stderr)
        if args.strict:
            fail("--strict: pairs differ in more than the gendered words")
    flat = score(args.model, [s for _, a, b in pairs for s in (a, b)], args.threads)
    lla, llb = flat[0::2], flat[1::2]
    groups = [g for g, _, _ in pairs]
    out = {
        "command": "winobias_check.py " + " ".join(sys.argv[1:]),
        "split": split,
        "model_sha256": sha256(os.path.join(args.model, "model.safetensors")),
        "data_sha256": digests,
        "n_pairs": len(pairs),
    }
    out.update(aggregates(groups, lla, llb))
    out["anomalies"] = anomalies
    out["pairs"] = [{"group": g, "sentence_a": a, "sentence_b": b, "log_likelihood_a": x, "log_likelihood_b": y}
                    for (g, a, b), x, y in zip(pairs, lla, llb)]
    return out


def print_aggregates(out):
    print(f"{out['split']}: {out['n_pairs']} pairs, pct_prefers_a {out['pct_prefers_a']:.6f}, mean_gap {out['mean_gap']:.6f}")
    for g, v in out["groups"].items():
        print(f"  {g}: {v['n_pairs']} pairs, pct_prefers_a {v['pct_prefers_a']:.6f}, mean_gap {v['mean_gap']:.6f}")


def check_results(args, ref):
    import h5py
    import numpy as np

    problems, notes = [], []
    with h5py.File(args.results, "r") as f:
        if f.attrs.get("layout_version") not in ("1", b"1"):
            fail(f"{args.results}: layout_version is {f.attrs.get('layout_version')!r}, not \"1\"")
        runs = f.get("runs")
        if runs is None or len(runs) == 0:
            fail(f"{args.results}: no runs")
        if args.run is None:
            ids = [r for r in runs if args.variant in runs[r] and args.suite in runs[r][args.variant]]
            if not ids:
                fail(f"{args.results}: no run has {args.variant}/{args.suite}")
            run_id = ids[-1]
        else:
            run_id = args.run
            if run_id not in runs:
                fail(f"{args.results}: no run {run_id!r} (runs: {', '.join(runs)})")
        run = runs[run_id]
        where = f"/runs/{run_id}/{args.variant}/{args.suite}"
        if where not in f:
            fail(f"{args.results}: no group {where}")
        suite = f[where]

        model_sha = run.attrs.get("model_sha256")
        model_sha = model_sha.decode() if isinstance(model_sha, bytes) else model_sha
        if model_sha != ref["model_sha256"]:
            msg = f"model_sha256 {model_sha} is not the reference's {ref['model_sha256']}"
            (problems if args.variant == "base" else notes).append(msg)

        def strings(name):
            if name not in suite:
                problems.append(f"dataset {name} missing")
                return None
            return list(suite[name].asstr()[:])

        def floats(name):
            if name not in suite:
                problems.append(f"dataset {name} missing")
                return None
            return np.asarray(suite[name][:], dtype=np.float64)

        sa, sb, grp = strings("sentence_a"), strings("sentence_b"), strings("group")
        lla, llb = floats("log_likelihood_a"), floats("log_likelihood_b")
        n = ref["n_pairs"]
        for name, v in (("sentence_a", sa), ("sentence_b", sb), ("group", grp),
                        ("log_likelihood_a", lla), ("log_likelihood_b", llb)):
            if v is not None and len(v) != n:
                problems.append(f"{name} has {len(v)} rows, the reference {n}")
        pairs = ref["pairs"]
        for name, v, key in (("sentence_a", sa, "sentence_a"), ("sentence_b", sb, "sentence_b"), ("group", grp, "group")):
            if v is None or len(v) != n:
                continue
            bad = [i for i in range(n) if v[i] != pairs[i][key]]
            if bad:
                i = bad[0]
                problems.append(f"{name} differs in {len(bad)} rows (first row {i}: {v[i]!r} vs {pairs[i][key]!r})")
        worst = 0.0
        for name, v, key in (("log_likelihood_a", lla, "log_likelihood_a"), ("log_likelihood_b", llb, "log_likelihood_b")):
            if v is None or len(v) != n:
                continue
            d = np.abs(v - np.array([p[key] for p in pairs]))
            d = np.where(np.isnan(d), np.inf, d)
            worst = max(worst, float(d.max()))
            bad = np.nonzero(d > LL_TOLERANCE)[0]
            if len(bad):
                i = int(bad[0])
                problems.append(f"{name} off by more than {LL_TOLERANCE} nats in {len(bad)} rows "
                                f"(first row {i}: {v[i]:.6f} vs {pairs[i][key]:.6f}; max {float(d.max()):.3g})")

        # stored aggregates against their recomputation from the stored per-pair values
        if lla is not None and llb is not None and len(lla) == len(llb) and len(lla) > 0:
            stored_groups = grp if grp is not None and len(grp) == len(lla) else ["all"] * len(lla)
            recomputed = aggregates(stored_groups, list(lla), list(llb))

            def attr(name):
                v = suite.attrs.get(name)
                return None if v is None else float(np.asarray(v).reshape(-1)[0])

            for key in ("pct_prefers_a", "mean_gap"):
                v = attr(key)
                if v is None:
                    problems.append(f"attribute {key} missing")
                elif not abs(v - recomputed[key]) <= AGG_TOLERANCE * max(1.0, abs(recomputed[key])):
                    problems.append(f"attribute {key} {v!r} but the stored pairs give {recomputed[key]!r}")
                ds = f"aggregates/{key}"
                if ds in suite:
                    dv = float(np.asarray(suite[ds][()]).reshape(-1)[0])
                    if not abs(dv - recomputed[key]) <= AGG_TOLERANCE * max(1.0, abs(recomputed[key])):
                        problems.append(f"dataset {ds} {dv!r} but the stored pairs give {recomputed[key]!r}")
                if grp is not None:
                    absent = []
                    for g, gv in recomputed["groups"].items():
                        v = attr(f"{g}.{key}")
                        if v is None:
                            absent.append(f"{g}.{key}")
                        elif not abs(v - gv[key]) <= AGG_TOLERANCE * max(1.0, abs(gv[key])):
                            problems.append(f"attribute {g}.{key} {v!r} but the stored pairs give {gv[key]!r}")
                    if absent:
                        notes.append("per-group attributes absent: " + ", ".join(absent))

    head = f"{args.results} {where}: "
    if problems:
        print(head + "MISMATCH: " + "; ".join(problems) + ("" if not notes else " (" + "; ".join(notes) + ")"))
        return 1
    print(head + f"OK: {n} pairs equal the reference (sentences and groups exactly, log-likelihoods within "
          f"{LL_TOLERANCE} nats, max difference {worst:.3g}), pct_prefers_a {recomputed['pct_prefers_a']:.6f} and "
          f"mean_gap {recomputed['mean_gap']:.6f} equal their recomputation"
          + ("" if not notes else " (" + "; ".join(notes) + ")"))
    return 0


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default=os.path.join(REPO, "Models", "backpack-demo"))
    ap.add_argument("--data-dir", default=os.path.join(REPO, "Data", "winobias"))
    ap.add_argument("--dev", action="store_true", help="the dev split (default: test)")
    ap.add_argument("--json", help="write the reference here")
    ap.add_argument("--strict", action="store_true", help="fail on pairs that differ in more than the gendered words")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--results", help="check this results file against the reference")
    ap.add_argument("--run", help="run id (default: the latest run holding VARIANT/SUITE)")
    ap.add_argument("--variant", default="base")
    ap.add_argument("--suite", default="winobias")
    ap.add_argument("--golden", help="with --results: read the reference from this JSON instead of computing it")
    args = ap.parse_args()

    if args.results and args.golden:
        with open(args.golden) as f:
            ref = json.load(f)
        want = "dev" if args.dev else "test"
        if ref.get("split") != want:
            fail(f"{args.golden} is the {ref.get('split')} split, not {want}")
    else:
        ref = reference(args)
    if args.results:
        sys.exit(check_results(args, ref))
    print_aggregates(ref)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(ref, f, indent=1, ensure_ascii=False)
            f.write("\n")


if __name__ == "__main__":
    main()
