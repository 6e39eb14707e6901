"""Makes Tests/ModelTests/Fixtures/gpt2-tiny: a small random plain GPT-2 (GPT2LMHeadModel, the
paper's Transformer baseline architecture) saved by Hugging Face transformers, with its logits
on two inputs, for the Swift runtime's plain-GPT-2 parity test.

usage: python make_fixture.py OUT_DIR   (torch, transformers 4.57, safetensors)
Eager attention: SDPA ignores scale_attn_by_inverse_layer_idx, which is set here on purpose.
"""
import json
import sys

import torch
from safetensors.torch import save_file
from transformers import GPT2Config, GPT2LMHeadModel

out = sys.argv[1]
torch.manual_seed(0)
config = GPT2Config(vocab_size=320, n_positions=32, n_embd=48, n_layer=2, n_head=4,
                    initializer_range=0.2, scale_attn_by_inverse_layer_idx=True,
                    bos_token_id=319, eos_token_id=319)
model = GPT2LMHeadModel(config).eval()
with torch.no_grad():  # non-trivial biases and LayerNorm gains
    for name, p in model.named_parameters():
        if name.endswith(".bias") or "ln_" in name:
            p.add_(0.1 * torch.randn_like(p))
model.config._attn_implementation = "eager"
model.save_pretrained(out, safe_serialization=True)
inputs = {"seq0": torch.tensor([[5, 17, 300, 2, 2, 41, 99]]), "seq1": torch.arange(0, 32).reshape(1, 32) * 7 % 320}
arrays = {}
with torch.no_grad():
    for name, ids in inputs.items():
        arrays[f"{name}_input_ids"] = ids.to(torch.int64).contiguous()
        arrays[f"{name}_logits"] = model(ids).logits.to(torch.float32).contiguous()
save_file(arrays, f"{out}/expected.safetensors")
with open(f"{out}/README.md", "w") as f:
    f.write("Made by Tools/gpt2-fixture/make_fixture.py with torch %s, transformers %s (eager attention).\n"
            % (torch.__version__, __import__("transformers").__version__))
print(json.dumps({k: list(v.shape) for k, v in arrays.items()}))
