"""Reference multiple-choice scores for a causal Backpack LM, as lm-evaluation-harness computes them.

Independent of the Swift code. Each item of a JSONL file ({"id", "context", "options", "gold",
"group"}) becomes one request per option, as lm-eval's ConfigurableTask.construct_requests does
for output_type multiple_choice: (context, target_delimiter + option) with target_delimiter " ".
Requests are tokenized as lm-eval's TemplateLM.loglikelihood / _encode_pair do (lm_eval 0.4.13,
lm_eval/api/model.py):
  - a non-empty context: its trailing whitespace (str.rstrip) moves onto the front of the
    continuation; whole = encode(context + continuation), context_enc = encode(context),
    continuation_enc = whole[len(context_enc):];
  - an empty context: continuation_enc = encode(continuation), context_enc = [<|endoftext|>]
    (or, if the continuation's first token is <|endoftext|> itself, that token is the context).
An option's log-likelihood is the sum of log softmax(logits)[next token] over the continuation
tokens, from one forward pass of the project's PyTorch Backpack (Tools/train-demo-model/
backpack.py) over context_enc + continuation_enc, in float64 from the float32 logits.
Per item as lm-eval's process_results (lm_eval/api/task.py): pred = argmax(lls),
pred_norm = argmax(lls / completion_len) with completion_len = len(option) in characters
(Python str length, code points; the delimiter not counted), acc = pred == gold,
acc_norm = pred_norm == gold; also lm-eval's acc_bytes (argmax of lls / UTF-8 byte length).
numpy's argmax: ties go to the first index.

    python multiple_choice_check.py [--model DIR] [--items JSONL] [--json OUT]
"""

import argparse
import hashlib
import json
import os
import sys

import numpy as np
import torch
from tokenizers import Tokenizer

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.normpath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, os.path.join(REPO, "Tools", "train-demo-model"))
from backpack import load_folder  # noqa: E402

TARGET_DELIMITER = " "


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def fail(msg):
    print(f"multiple_choice_check: error: {msg}", file=sys.stderr)
    sys.exit(2)


def read_items(path):
    items = []
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            it = json.loads(line)
            for key, kind in (("id", str), ("context", str), ("options", list), ("gold", int), ("group", str)):
                if not isinstance(it.get(key), kind) or isinstance(it.get(key), bool):
                    fail(f"{path}:{n}: '{key}' missing or not a {kind.__name__}")
            if len(it["options"]) < 2 or not all(isinstance(o, str) and o for o in it["options"]):
                fail(f"{path}:{n}: 'options' needs at least two non-empty strings")
            if not 0 <= it["gold"] < len(it["options"]):
                fail(f"{path}:{n}: 'gold' {it['gold']} is not an index of the {len(it['options'])} options")
            if it["context"] and not it["context"].rstrip():
                fail(f"{path}:{n}: a context of only whitespace has no tokens left after lm-eval moves it onto the continuation")
            items.append(it)
    return items


class Scorer:
    def __init__(self, model_dir, threads):
        torch.set_num_threads(threads)
        self.model = load_folder(model_dir)
        self.tok = Tokenizer.from_file(os.path.join(model_dir, "tokenizer.json"))
        self.eot = self.tok.token_to_id("<|endoftext|>")
        self.n_positions = self.model.cfg.n_positions

    def encode(self, s):
        return self.tok.encode(s, add_special_tokens=False).ids

    def request_tokens(self, context, continuation):
        """(context_enc, continuation_enc) as lm-eval's TemplateLM.loglikelihood gives them."""
        if context == "":
            cont = self.encode(continuation)
            return ([self.eot], cont) if self.eot != cont[0] else (cont[:1], cont[1:])
        n_spaces = len(context) - len(context.rstrip())
        if n_spaces > 0:
            continuation = context[-n_spaces:] + continuation
            context = context[:-n_spaces]
        whole = self.encode(context + continuation)
        ctx = self.encode(context)
        return ctx, whole[len(ctx):]

    def loglikelihood(self, context, continuation):
        ctx, cont = self.request_tokens(context, continuation)
        seq = ctx + cont
        if len(seq) > self.n_positions:
            fail(f"{len(seq)} tokens exceed the model's {self.n_positions} positions")
        with torch.no_grad():
            logits = self.model(torch.tensor([seq]))[0].double()
            logp = torch.log_softmax(logits, dim=-1)
        return float(sum(logp[j - 1, seq[j]] for j in range(len(ctx), len(seq)))), ctx, cont


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default=os.path.join(REPO, "Models", "backpack-demo"))
    ap.add_argument("--items", default=os.path.join(REPO, "Tests", "Fixtures", "multiple-choice", "items.jsonl"))
    ap.add_argument("--json")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()

    items = read_items(args.items)
    scorer = Scorer(args.model, args.threads)
    rows = []
    for it in items:
        lls, toks = [], []
        for opt in it["options"]:
            ll, ctx, cont = scorer.loglikelihood(it["context"], TARGET_DELIMITER + opt)
            lls.append(ll)
            toks.append({"context_tokens": ctx, "continuation_tokens": cont})
        lls_np = np.array(lls)
        completion_len = np.array([float(len(o)) for o in it["options"]])
        byte_length = np.array([float(len(o.encode("utf-8"))) for o in it["options"]])
        pred = int(np.argmax(lls_np))
        pred_norm = int(np.argmax(lls_np / completion_len))
        pred_bytes = int(np.argmax(lls_np / byte_length))
        rows.append({
            "id": it["id"], "group": it["group"], "context": it["context"], "options": it["options"],
            "gold": it["gold"], "log_likelihoods": lls,
            "completion_len": [int(x) for x in completion_len], "byte_length": [int(x) for x in byte_length],
            "pred": pred, "pred_norm": pred_norm, "pred_bytes": pred_bytes,
            "acc": 1.0 if pred == it["gold"] else 0.0,
            "acc_norm": 1.0 if pred_norm == it["gold"] else 0.0,
            "acc_bytes": 1.0 if pred_bytes == it["gold"] else 0.0,
            "tokens": toks,
        })

    def agg(rs):
        return {"n_items": len(rs), **{k: sum(r[k] for r in rs) / len(rs) for k in ("acc", "acc_norm", "acc_bytes")}}

    groups = []
    for r in rows:
        if r["group"] not in groups:
            groups.append(r["group"])
    out = {
        "command": "multiple_choice_check.py " + " ".join(sys.argv[1:]),
        "model_sha256": sha256(os.path.join(args.model, "model.safetensors")),
        "items_sha256": sha256(args.items),
        "target_delimiter": TARGET_DELIMITER,
        "acc_norm_divides_by": "len(option) in characters (lm_eval 0.4.13, lm_eval/api/task.py:1494)",
        **agg(rows),
        "groups": {g: agg([r for r in rows if r["group"] == g]) for g in groups},
        "items": rows,
    }
    print(f"all: {out['n_items']} items, acc {out['acc']:.6f}, acc_norm {out['acc_norm']:.6f}, acc_bytes {out['acc_bytes']:.6f}")
    for g, v in out["groups"].items():
        print(f"  {g}: {v['n_items']} items, acc {v['acc']:.6f}, acc_norm {v['acc_norm']:.6f}, acc_bytes {v['acc_bytes']:.6f}")
    disagree = [r["id"] for r in rows if r["pred_norm"] != r["pred_bytes"]]
    print("items where dividing by characters and by bytes pick different options: " + (", ".join(disagree) or "none"))
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump(out, f, indent=1, ensure_ascii=False)
            f.write("\n")


if __name__ == "__main__":
    main()
