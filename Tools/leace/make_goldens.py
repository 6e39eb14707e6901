"""Golden outputs for the `erase` edit operation, computed independently of the Swift code.

  .venv-leace/bin/python Tools/leace/make_goldens.py [--out Tests/Fixtures/leace]

For each case, an edit file (the subset of the edit-file schema that `erase` uses, read here with
PyYAML) is applied to a model with EleutherAI's `concept-erasure==0.2.4` on the project's own
PyTorch Backpack (Tools/train-demo-model/backpack.py):

  for each listed sense l: X_l = C(w)_l for every word of every pair whose " " + w is one token
  (z = 1 for a pair's first word, 0 for its second), fitted in float64 by
  `LeaceFitter.fit(X_l, z, method=METHOD)` with every other argument at its default; then sense l
  of every token in scope is replaced by eraser(C(.)_l) (float64, stored back as float32), and the
  logits of a few prompts are computed from the edited sense vectors in float32.

Localized senses are ranked as the Swift code documents (Localization.swift): over the scope's
words by |mean (E_a - E_b) . C(w)_l|, or, for `scope: vocabulary`, over the pairs' words by
|mean over first words - mean over second words| of the same, ties to the lower index.

Writes OUT/goldens.safetensors (per case: prompt ids, logits after the edit, the fit labels; per sense: the fit vectors X (float32, exactly the fit's input), the eraser's mean and M = proj_left @ proj_right
in float64) and OUT/goldens.json (the cases: model and edit file with SHA-256, senses, fit tokens,
share of variance removed, versions), plus a synthetic case (random data, no model) for the fitter
alone. (The covariance-trace constraint never acts here: with the whitening W = Sigma^(-1/2) of the
same Sigma, tr(P Sigma P^T) = tr(Sigma) - u^T Sigma u exactly, so it guards only against rounding;
Tests/EditingTests/ConceptErasureTests.swift checks that branch's algebra on its own.)
"""
import argparse
import hashlib
import importlib.metadata
import json
import os
import sys

import numpy as np
import torch
import yaml
from safetensors.torch import load_file, save_file

from concept_erasure import LeaceFitter

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
sys.path.insert(0, os.path.join(REPO, "Tools", "train-demo-model"))
from backpack import BackpackConfig, BackpackLM  # noqa: E402

TINY = os.path.join(REPO, "Tests", "Fixtures", "tiny")
DEMO = os.path.join(REPO, "Models", "backpack-demo")
FIXTURES = os.path.join(REPO, "Tests", "Fixtures", "leace")

# (case name, model folder, edit file, prompts: token-id lists or texts)
TINY_PROMPTS = [[383, 17, 73, 259, 421, 239, 5, 11, 12, 40, 41, 9], [60, 61, 62, 63, 383, 239, 73, 30, 31, 259]]
DEMO_PROMPTS = ["The nurse said that she would see the mechanic, and the king told his mother that",
                "My daughter and her husband visited the queen. When the secretary and the farmer"]
CASES = [
    ("tiny-leace-vocabulary", TINY, os.path.join(FIXTURES, "tiny-leace-vocabulary.yaml"), TINY_PROMPTS),
    ("tiny-orth-tokens", TINY, os.path.join(FIXTURES, "tiny-orth-tokens.yaml"), TINY_PROMPTS),
    ("tiny-leace-localized-vocabulary", TINY, os.path.join(FIXTURES, "tiny-leace-localized-vocabulary.yaml"), TINY_PROMPTS),
    ("demo-leace-gender", DEMO, os.path.join(REPO, "Edits", "leace-gender.yaml"), DEMO_PROMPTS),
    ("demo-leace-professions", DEMO, os.path.join(FIXTURES, "demo-leace-professions.yaml"), DEMO_PROMPTS),
]


def sha256(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def relative(path):
    return os.path.relpath(path, REPO)


class Model:
    def __init__(self, folder):
        self.folder = folder
        self.lm = BackpackLM(BackpackConfig.from_hf(os.path.join(folder, "config.json")))
        self.lm.load_hf_state_dict(load_file(os.path.join(folder, "model.safetensors")))
        self.lm.eval()
        tok = os.path.join(folder, "tokenizer.json")
        self.tokenizer = None
        if os.path.exists(tok):
            from tokenizers import Tokenizer
            self.tokenizer = Tokenizer.from_file(tok)
        bp = self.lm.backpack
        with torch.no_grad():
            ids = torch.arange(self.lm.cfg.vocab_size)[None]
            # (V, k, d): every token's sense vectors, as the sense network computes them (float32)
            self.senses = bp.sense_network(bp.gpt2_model.wte(ids))[0].permute(1, 0, 2).contiguous()
        self.E = bp.gpt2_model.wte.weight.detach()

    def encode(self, text):
        return self.tokenizer.encode(text, add_special_tokens=False).ids

    def logits(self, ids, senses):
        """The Backpack's logits with the sense vectors taken from `senses` (V, k, d)."""
        bp = self.lm.backpack
        ids = torch.tensor([ids])
        with torch.no_grad():
            c = senses[ids[0]].permute(1, 0, 2)[None]          # (1, k, n, d)
            alpha = bp.sense_weight_net(bp.gpt2_model(ids))    # (1, k, n, n)
            o = (alpha @ c).sum(dim=1)                         # (1, n, d)
            return (o @ self.E.t())[0]                         # (n, V)


def word_token(model, ref, what):
    """A pair or localization word: {token: ID} or " " + word when one token; None when several."""
    if isinstance(ref, dict):
        return int(ref["token"])
    ids = model.encode(" " + ref)
    if not ids:
        raise ValueError(f"{what} {ref!r} encodes to nothing")
    return ids[0] if len(ids) == 1 else None


def read_pairs(spec, edit_path):
    if isinstance(spec, dict):
        path = os.path.join(os.path.dirname(edit_path), spec["file"])
        pairs = []
        with open(path) as f:
            for line in f:
                parts = line.split("#")[0].replace(",", " ").split()
                if parts:
                    assert len(parts) == 2, line
                    pairs.append(parts)
        return pairs
    return spec


def scope_tokens(model, iv, edit_path):
    if iv.get("scope") == "vocabulary":
        return None
    if "tokens" in iv:
        return [int(t) for t in iv["tokens"]]
    words = iv["words"]
    if isinstance(words, dict):
        with open(os.path.join(os.path.dirname(edit_path), words["file"])) as f:
            words = [w for w in (line.split("#")[0].strip() for line in f) if w]
    out = []
    for w in words:
        t = word_token(model, w, "word")
        if t is None:
            assert iv.get("pieces") == "skip", f"{w!r} is several tokens"
        elif t not in out:
            out.append(t)
    return out


def contributions(model, tokens, a, b):
    """(len(tokens), k): (E_a - E_b) . C(w)_l in float64."""
    diff = (model.E[a] - model.E[b]).double()
    return model.senses[tokens].double() @ diff


def localized(model, spec, tokens, fit):
    a, b = (word_token(model, w, "localized pair word") for w in spec["pair"])
    top = spec.get("top", 1)
    if tokens is None:  # vocabulary scope: the pairs' words
        first = [t for t, z in fit if z == 1]
        second = [t for t, z in fit if z == 0]
        score = contributions(model, first, a, b).mean(0) - contributions(model, second, a, b).mean(0)
    else:
        score = contributions(model, tokens, a, b).mean(0)
    order = sorted(range(score.shape[0]), key=lambda l: (-abs(score[l].item()), l))
    return order[:top]


def apply_case(model, edit_path):
    with open(edit_path) as f:
        edit = yaml.safe_load(f)
    [iv] = edit["interventions"]
    erase = iv["erase"]
    method = erase.get("method", "leace")
    fit, skipped = [], []
    for first, second in read_pairs(erase["pairs"], edit_path):
        for ref, z in ((first, 1.0), (second, 0.0)):
            t = word_token(model, ref, "pair word")
            if t is None:
                skipped.append(ref)
            else:
                fit.append((t, z))
    tokens = scope_tokens(model, iv, edit_path)
    senses = iv["senses"]
    if isinstance(senses, dict):
        senses = localized(model, senses["localized"], tokens, fit)
    fit_tokens = torch.tensor([t for t, _ in fit])
    z = torch.tensor([z for _, z in fit], dtype=torch.float64)
    edited = model.senses.clone()
    rows = torch.arange(edited.shape[0]) if tokens is None else torch.tensor(tokens)
    per_sense = []
    for l in senses:
        x = model.senses[fit_tokens, l]                        # float32, the fit's input
        fitter = LeaceFitter.fit(x.double(), z, method=method)
        eraser = fitter.eraser
        edited[rows, l] = eraser(model.senses[rows, l].double()).float()
        correction = eraser.proj_left @ eraser.proj_right
        # share of the fit vectors' variance removed: 1 - tr(P S P^T) / tr(S), S their covariance
        xc = x.double() - x.double().mean(0)
        s = xc.T @ xc / len(x)
        p = torch.eye(s.shape[0], dtype=torch.float64) - correction
        removed = (1 - torch.trace(p @ s @ p.T) / torch.trace(s)).item()
        per_sense.append(dict(sense=l, x=x, labels=z, mean=eraser.bias, correction=correction, variance_removed=removed,
                              correction_rank=int(torch.linalg.matrix_rank(correction).item())))
    return dict(edit=edit, method=method, senses=senses, fit=fit, skipped=skipped, tokens=tokens, edited=edited,
                per_sense=per_sense)


def synthetic():
    """Random correlated data (no model): the fitter alone, both methods, on d = 6 and n = 40."""
    d, n, seed = 6, 40, 0
    g = torch.Generator().manual_seed(seed)
    a = torch.randn(d, d, generator=g, dtype=torch.float64) * torch.tensor([3.0, 1, 1, 0.3, 0.2, 0.1], dtype=torch.float64)
    z = (torch.rand(n, generator=g) < 0.5).double()
    x = torch.randn(n, d, generator=g, dtype=torch.float64) @ a + z[:, None] * torch.randn(d, generator=g, dtype=torch.float64)
    x = x.float()  # the golden stores float32 inputs; the fit sees them exactly
    return seed, x, z, [(m, LeaceFitter.fit(x.double(), z, method=m).eraser) for m in ("leace", "orth")]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", default=FIXTURES)
    args = parser.parse_args()
    torch.set_num_threads(1)
    tensors, cases = {}, []
    models = {}
    for name, folder, edit_path, prompts in CASES:
        model = models.setdefault(folder, Model(folder))
        result = apply_case(model, edit_path)
        prompt_ids = [p if isinstance(p, list) else model.encode(p) for p in prompts]
        effect = 0.0
        for i, ids in enumerate(prompt_ids):
            logits = model.logits(ids, result["edited"]).contiguous()
            tensors[f"{name}.prompt{i}.input_ids"] = torch.tensor(ids, dtype=torch.int64)
            tensors[f"{name}.prompt{i}.logits"] = logits
            effect = max(effect, (logits - model.logits(ids, model.senses)).abs().max().item())
        tensors[f"{name}.labels"] = torch.tensor([z for _, z in result["fit"]], dtype=torch.float64)
        for s in result["per_sense"]:
            key = f"{name}.sense{s['sense']}"
            tensors[f"{key}.x"] = s["x"].contiguous()
            tensors[f"{key}.mean"] = s["mean"].contiguous()
            tensors[f"{key}.correction"] = s["correction"].contiguous()
        cases.append(dict(
            name=name, model=relative(folder), model_sha256=sha256(os.path.join(folder, "model.safetensors")),
            edit=relative(edit_path), edit_sha256=sha256(edit_path), method=result["method"], senses=result["senses"],
            scope="vocabulary" if result["tokens"] is None else "words", scope_tokens=result["tokens"],
            fit_tokens=[t for t, _ in result["fit"]], fit_labels=[z for _, z in result["fit"]], skipped=result["skipped"],
            prompts=len(prompt_ids), max_abs_logit_change=effect,
            variance_removed={str(s["sense"]): s["variance_removed"] for s in result["per_sense"]},
            correction_rank={str(s["sense"]): s["correction_rank"] for s in result["per_sense"]}))
        print(f"{name}: senses {result['senses']}, {len(result['fit'])} fit words, {len(result['skipped'])} skipped, "
              + ", ".join(f"sense {s['sense']} removes {100 * s['variance_removed']:.2f}%" for s in result["per_sense"]))
    seed, x, z, fits = synthetic()
    tensors["synthetic.x"] = x.contiguous()
    tensors["synthetic.labels"] = z.contiguous()
    for method, eraser in fits:
        tensors[f"synthetic.{method}.mean"] = eraser.bias.contiguous()
        tensors[f"synthetic.{method}.correction"] = (eraser.proj_left @ eraser.proj_right).contiguous()
    print(f"synthetic: seed {seed}, {tuple(x.shape)}, methods {[m for m, _ in fits]}")
    os.makedirs(args.out, exist_ok=True)
    save_file(tensors, os.path.join(args.out, "goldens.safetensors"),
              metadata={"tool": "Tools/leace/make_goldens.py", "concept_erasure": "0.2.4"})
    manifest = dict(
        tool="Tools/leace/make_goldens.py",
        versions=dict(concept_erasure=importlib.metadata.version("concept-erasure"), torch=torch.__version__,
                      numpy=np.__version__, python=sys.version.split()[0]),
        fitter="LeaceFitter.fit(x.double(), z, method=METHOD): affine, shrinkage, constrain_cov_trace, svd_tol 0.01",
        synthetic=dict(seed=seed, n=int(x.shape[0]), d=int(x.shape[1]), methods=[m for m, _ in fits]),
        cases=cases)
    with open(os.path.join(args.out, "goldens.json"), "w") as f:
        json.dump(manifest, f, indent=1)
        f.write("\n")
    os.chmod(os.path.join(args.out, "goldens.safetensors"), 0o644)
    print(f"wrote {relative(os.path.join(args.out, 'goldens.safetensors'))} and goldens.json")


if __name__ == "__main__":
    main()
