"""Reference Winogender log-likelihoods for a causal Backpack LM, independent of the Swift code.

Each sentence of rudinger/winogender-schemas' all_sentences.tsv is scored by one forward pass of
the project's PyTorch Backpack (Tools/train-demo-model/backpack.py) over <|endoftext|> followed by
the sentence's tokens (the model directory's tokenizer.json, read by `tokenizers`): the
log-likelihood is the sum over the sentence's tokens of log softmax(logits)[next token], in
float64 from the float32 logits. The aggregates the `winogender` suite stores are recomputed
from these values with plain Python (per (occupation, participant, answer) triple the gap
log p(male) - log p(female)).

    python winogender_check.py [--model DIR] [--sentences TSV] [--stats TSV] [--json OUT]
"""

import argparse
import csv
import hashlib
import json
import math
import os
import sys

import torch
from tokenizers import Tokenizer

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.normpath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, os.path.join(REPO, "Tools", "train-demo-model"))
from backpack import load_folder  # noqa: E402


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def read_tsv(path):
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE))


def pearson(x, y):
    mx, my = sum(x) / len(x), sum(y) / len(y)
    sxy = sum((a - mx) * (b - my) for a, b in zip(x, y))
    sxx = sum((a - mx) ** 2 for a in x)
    syy = sum((b - my) ** 2 for b in y)
    return sxy / math.sqrt(sxx * syy)


def ranks(x):
    order = sorted(range(len(x)), key=lambda i: x[i])
    r = [0.0] * len(x)
    i = 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and x[order[j + 1]] == x[order[i]]:
            j += 1
        for k in range(i, j + 1):
            r[order[k]] = (i + j) / 2 + 1
        i = j + 1
    return r


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default=os.path.join(REPO, "Models", "backpack-demo"))
    ap.add_argument("--sentences", default=os.path.join(REPO, "Data", "winogender", "all_sentences.tsv"))
    ap.add_argument("--stats", default=os.path.join(REPO, "Data", "winogender", "occupations-stats.tsv"))
    ap.add_argument("--json")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    model = load_folder(args.model)
    tok = Tokenizer.from_file(os.path.join(args.model, "tokenizer.json"))
    eot = tok.token_to_id("<|endoftext|>")

    rows = read_tsv(args.sentences)
    ids, ll = [], []
    with torch.no_grad():
        for row in rows:
            seq = [eot] + tok.encode(row["sentence"], add_special_tokens=False).ids
            logits = model(torch.tensor([seq]))[0].double()          # (n, V)
            logp = torch.log_softmax(logits, dim=-1)
            ll.append(float(sum(logp[j - 1, seq[j]] for j in range(1, len(seq)))))
            ids.append(row["sentid"])

    by = {}
    for sid, v in zip(ids, ll):
        occ, part, ans, gender, _ = sid.split(".")
        by.setdefault((occ, part, ans), {})[gender] = v
    gaps = {k: g["male"] - g["female"] for k, g in by.items()}
    occupations = []
    for (o, _, _) in by:
        if o not in occupations:
            occupations.append(o)
    stats = {r["occupation"]: r for r in read_tsv(args.stats)}
    occ_gap = [sum(v for (o, _, _), v in gaps.items() if o == occ) / sum(1 for (o, _, _) in gaps if o == occ) for occ in occupations]
    bls = [float(stats[o]["bls_pct_female"]) for o in occupations]
    bergsma = [float(stats[o]["bergsma_pct_female"]) for o in occupations]
    n = len(gaps)
    out = {
        "command": "winogender_check.py " + " ".join(sys.argv[1:]),
        "model_sha256": sha256(os.path.join(args.model, "model.safetensors")),
        "sentences_sha256": sha256(args.sentences),
        "stats_sha256": sha256(args.stats),
        "sentence_ids": ids,
        "log_likelihood": ll,
        "mean_abs_gap": sum(abs(g) for g in gaps.values()) / n,
        "pct_prefers_male": 100 * sum(1 for g in gaps.values() if g > 0) / n,
        "mean_gap": sum(gaps.values()) / n,
        "pct_prefers_neutral": 100 * sum(1 for g in by.values() if g["neutral"] > max(g["male"], g["female"])) / n,
        "pearson_bls_pct_female": pearson(occ_gap, bls),
        "spearman_bls_pct_female": pearson(ranks(occ_gap), ranks(bls)),
        "pearson_bergsma_pct_female": pearson(occ_gap, bergsma),
        "spearman_bergsma_pct_female": pearson(ranks(occ_gap), ranks(bergsma)),
    }
    for k in ["mean_abs_gap", "pct_prefers_male", "mean_gap", "pct_prefers_neutral", "pearson_bls_pct_female",
              "spearman_bls_pct_female", "pearson_bergsma_pct_female", "spearman_bergsma_pct_female"]:
        print(f"{k:28s} {out[k]:.6f}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(out, f, indent=1)
            f.write("\n")


if __name__ == "__main__":
    main()
