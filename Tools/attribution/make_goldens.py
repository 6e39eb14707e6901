"""Reference sense-by-position attributions of next-token contrasts, computed with the project's
PyTorch Backpack (Tools/train-demo-model/backpack.py), independently of the Swift code.

A Backpack's logits at position i are E o_i with o_i = sum_l sum_j alpha[l, i, j] C(x_j)_l and no
final normalisation, so for the next token after a prompt of n tokens (i = n - 1)

    log p(a) - log p(b) = sum_l sum_j alpha[l, n-1, j] (E_a - E_b) . C(x_j)_l .

For each case this writes every contribution (k senses x n positions), their sum, and
log p(a) - log p(b) from the forward pass's log-softmax. The model runs in float32 (as it was
trained and as the Swift forward runs); the projections and sums are float64.

Cases: the tiny reference fixture (Tests/Fixtures/tiny, token ids given directly) and the demo
model (Models/backpack-demo, prompts tokenized with its tokenizer.json by `tokenizers`).

    python Tools/attribution/make_goldens.py [--out Tools/attribution/golden/attribution.json]
"""

import argparse
import hashlib
import json
import os
import sys

import torch
from safetensors.torch import load_file

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.normpath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, os.path.join(REPO, "Tools", "train-demo-model"))
from backpack import BackpackConfig, BackpackLM  # noqa: E402

# Token ids of the tiny fixture (vocab 512): sequences of 1, 5 and 12 tokens, arbitrary pairs.
TINY_CASES = [
    {"ids": [7], "pair": [3, 300]},
    {"ids": [17, 260, 33, 101, 5], "pair": [45, 46]},
    {"ids": [400, 12, 99, 12, 250, 3, 77, 510, 0, 12, 64, 128], "pair": [12, 290]},
]

# Prompts of the pronoun-bias suite (Evaluations/pronoun-bias.yaml) with nouns filled in.
DEMO_PROMPTS = [
    "My nurse said that",
    "The carpenter said that",
    "I really liked my mechanic. In fact,",
    "The secretary was with the car. When",
    "This one librarian believes that",
]
DEMO_PAIR = [" he", " she"]


def load(model_dir):
    cfg = BackpackConfig.from_hf(os.path.join(model_dir, "config.json"))
    model = BackpackLM(cfg).eval()
    path = os.path.join(model_dir, "model.safetensors")
    model.load_hf_state_dict(load_file(path))
    with open(path, "rb") as f:
        sha = hashlib.sha256(f.read()).hexdigest()
    return model, sha


def attribute(model, ids, a, b):
    """contributions[l][j] = alpha[l, n-1, j] (E_a - E_b) . C(x_j)_l, their sum, and log p(a) - log p(b)."""
    with torch.no_grad():
        logits, senses, alpha, _ = model(torch.tensor([ids]), return_parts=True)   # (1,n,V) (1,k,n,d) (1,k,n,n)
        E = model.backpack.gpt2_model.wte.weight                                  # tied output embedding (V, d)
        diff = E[a].double() - E[b].double()                                      # (d)
        projection = senses[0].double() @ diff                                    # (k, n)
        contributions = alpha[0, :, -1, :].double() * projection                  # (k, n)
        log_probs = torch.log_softmax(logits[0, -1], dim=-1)                      # float32, as the forward gives it
        difference = float(log_probs[a].double() - log_probs[b].double())
    return {
        "contributions": contributions.tolist(),
        "total": float(contributions.sum()),
        "logit_difference": difference,
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default=os.path.join(HERE, "golden", "attribution.json"))
    args = parser.parse_args()
    torch.set_num_threads(1)

    tiny_dir = os.path.join(REPO, "Tests", "Fixtures", "tiny")
    tiny, tiny_sha = load(tiny_dir)
    tiny_cases = []
    for case in TINY_CASES:
        a, b = case["pair"]
        tiny_cases.append({"ids": case["ids"], "a": a, "b": b, **attribute(tiny, case["ids"], a, b)})

    from tokenizers import Tokenizer
    demo_dir = os.path.join(REPO, "Models", "backpack-demo")
    demo, demo_sha = load(demo_dir)
    tok = Tokenizer.from_file(os.path.join(demo_dir, "tokenizer.json"))
    pair = []
    for w in DEMO_PAIR:
        t = tok.encode(w, add_special_tokens=False).ids
        assert len(t) == 1, f"{w!r} is {len(t)} tokens"
        pair.append(t[0])
    demo_cases = []
    for text in DEMO_PROMPTS:
        ids = tok.encode(text, add_special_tokens=False).ids
        case = {"text": text, "pair": [w.strip() for w in DEMO_PAIR], "ids": ids, "a": pair[0], "b": pair[1],
                **attribute(demo, ids, pair[0], pair[1])}
        demo_cases.append(case)
        by_position = [sum(row[j] for row in case["contributions"]) for j in range(len(ids))]
        pieces = [tok.decode([t]) for t in ids]
        print(f"{text!r}: log p(he) - log p(she) = {case['logit_difference']:+.4f} (sum {case['total']:+.4f}) = "
              + ", ".join(f"{p!r} {c:+.2f}" for p, c in zip(pieces, by_position)))

    golden = {
        "command": "python Tools/attribution/make_goldens.py",
        "torch": torch.__version__,
        "tiny": {"model": "Tests/Fixtures/tiny", "model_sha256": tiny_sha, "cases": tiny_cases},
        "demo": {"model": "Models/backpack-demo", "model_sha256": demo_sha, "cases": demo_cases},
    }
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    tmp = args.out + ".tmp"
    with open(tmp, "w") as f:
        json.dump(golden, f, indent=1)
        f.write("\n")
    os.replace(tmp, args.out)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
