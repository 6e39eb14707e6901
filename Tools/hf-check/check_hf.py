"""Loads a checkpoint written by `backpack edit` (or `backpack init`) with Hugging Face
transformers and the published Backpack modeling code, and compares its logits with the
Swift toolkit's `backpack forward` output.

usage: python check_hf.py MODEL_DIR MODELING_CODE_DIR FORWARD.safetensors

MODELING_CODE_DIR holds `modeling_backpack_gpt2.py` from the Hub repository
stanfordnlp/backpack-gpt2 (not redistributed here). Needs torch, transformers, safetensors.
Eager attention: SDPA ignores scale_attn_by_inverse_layer_idx (BACKPACK.md, known traps).
"""
import os
import sys

import torch
from safetensors.torch import load_file

model_dir, code_dir, forward_file = sys.argv[1:4]
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, code_dir)
from modeling_backpack_gpt2 import BackpackGPT2LMHeadModel  # noqa: E402

model, info = BackpackGPT2LMHeadModel.from_pretrained(
    model_dir, attn_implementation="eager", output_loading_info=True)
model.eval()
problems = {k: v for k, v in info.items() if v and k != "mismatched_keys" or (k == "mismatched_keys" and v)}
print("loading info:", {k: list(v) for k, v in info.items()})
swift = load_file(forward_file)
ids = swift["input_ids"].long()[None]
with torch.no_grad():
    out = model(ids)
logit_diff = (out.logits[0] - swift["logits"]).abs().max().item()
sense_diff = (out.senses[0] - swift["senses"]).abs().max().item()
ctx_diff = (out.contextualization[0] - swift["contextualization"]).abs().max().item()
print(f"transformers vs backpack forward: max|d| logits {logit_diff:.3g} (tol 1e-4), "
      f"senses {sense_diff:.3g}, contextualization {ctx_diff:.3g} (tol 1e-5)")
bad = [k for k in ("missing_keys", "unexpected_keys", "mismatched_keys") if info.get(k)]
ok = not bad and logit_diff <= 1e-4 and sense_diff <= 1e-5 and ctx_diff <= 1e-5
print("PASS" if ok else f"FAIL {bad}")
sys.exit(0 if ok else 1)
