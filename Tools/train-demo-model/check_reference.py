"""Check backpack.py against the reference outputs of the published modeling_backpack_gpt2.py.

Loads Tests/Fixtures/tiny/model.safetensors (random weights, config.json beside it), runs the
fixture's inputs through backpack.py on CPU in float32 and compares logits, senses,
contextualization (alpha) and the output hidden state o = sum_l alpha[l] C[l] with expected.safetensors.

    python check_reference.py [--fixtures Tests/Fixtures/tiny]

Exits non-zero if any logits differ by more than 1e-4 (or other arrays by more than 1e-4).
"""

import argparse
import os
import sys

import torch
from safetensors.torch import load_file

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from backpack import BackpackConfig, BackpackLM  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT = os.path.normpath(os.path.join(HERE, "..", "..", "Tests", "Fixtures", "tiny"))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--fixtures", default=DEFAULT)
    ap.add_argument("--tol", type=float, default=1e-4)
    args = ap.parse_args()

    torch.set_num_threads(1)
    cfg = BackpackConfig.from_hf(os.path.join(args.fixtures, "config.json"))
    model = BackpackLM(cfg).eval()
    model.load_hf_state_dict(load_file(os.path.join(args.fixtures, "model.safetensors")))
    exp = load_file(os.path.join(args.fixtures, "expected.safetensors"))

    ok = True
    worst = {}
    for name in ["seq0", "seq1", "seq2", "seq3", "batch"]:
        ids = exp[f"{name}_input_ids"]
        with torch.no_grad():
            logits, senses, alpha, o = model(ids, return_parts=True)
        diffs = {
            "logits": (logits - exp[f"{name}_logits"]).abs().max().item(),
            "log_softmax": (torch.log_softmax(logits, -1) - exp[f"{name}_log_softmax"]).abs().max().item(),
            "senses": (senses - exp[f"{name}_senses"]).abs().max().item(),
            "contextualization": (alpha - exp[f"{name}_contextualization"]).abs().max().item(),
            "hidden": (o - exp[f"{name}_hidden"]).abs().max().item(),
        }
        scale = exp[f"{name}_logits"].abs().max().item()
        print(f"{name:6s} ids {tuple(ids.shape)}  |logits|max {scale:7.3f}  " +
              "  ".join(f"{k} {v:.2e}" for k, v in diffs.items()))
        for k, v in diffs.items():
            worst[k] = max(worst.get(k, 0.0), v)
            if v > args.tol:
                ok = False
    print("max abs diff over all inputs: " + ", ".join(f"{k} {v:.2e}" for k, v in worst.items()))
    print("PASS" if ok else "FAIL")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
