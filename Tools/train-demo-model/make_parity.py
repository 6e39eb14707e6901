"""Write Models/backpack-demo/parity.safetensors: reference outputs of the trained demo model.

    python make_parity.py --model ../../Models/backpack-demo --data DATA_DIR

Three fixed 12-token windows of the held-out token stream (see prepare_data.py), chosen
deterministically:
  seq0: held-out tokens 0..11 (the start of the first held-out passage);
  seq1: the first window holding " she" (starting 4 tokens before it) that contains no <|endoftext|>;
  seq2: the first window holding one of the 40 profession nouns (starting 6 tokens before it)
        that contains no <|endoftext|>.
For each NAME: NAME_input_ids (1, n) int64, NAME_logits (1, n, V), NAME_senses (1, k, n, d),
NAME_contextualization (1, k, n, n), float32, computed by backpack.py on CPU in float32 (no
autocast, eager attention path). The windows are short because V = 8192 makes logits 32 KiB a
token and the file must stay small. The file's metadata holds each window's decoded text.
"""

import argparse
import os
import sys

import torch
from safetensors.torch import load_file, save_file
from tokenizers import Tokenizer

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from backpack import BackpackConfig, BackpackLM  # noqa: E402
from prepare_data import PROFESSIONS  # noqa: E402
from train import load_split  # noqa: E402

N = 12


def first_window(held, targets, before, eot):
    for i in range(before, held.size - N + before):
        if int(held[i]) in targets:
            s = i - before
            w = held[s: s + N]
            if eot not in w.tolist():
                return s
    raise RuntimeError("no window found")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True)
    ap.add_argument("--data", required=True)
    args = ap.parse_args()
    torch.set_num_threads(1)
    cfg = BackpackConfig.from_hf(os.path.join(args.model, "config.json"))
    model = BackpackLM(cfg).eval()
    model.load_hf_state_dict(load_file(os.path.join(args.model, "model.safetensors")))
    tok = Tokenizer.from_file(os.path.join(args.model, "tokenizer.json"))
    eot = tok.token_to_id("<|endoftext|>")
    held = load_split(args.data, "heldout")
    prof = {tok.token_to_id("\u0120" + w) for w in PROFESSIONS} - {None}
    starts = [0, first_window(held, {tok.token_to_id("\u0120she")}, 4, eot), first_window(held, prof, 6, eot)]
    tensors, meta = {}, {"note": "backpack-demo parity: PyTorch backpack.py, CPU float32"}
    for j, s in enumerate(starts):
        ids = torch.from_numpy(held[s: s + N].copy()).long()[None]
        with torch.no_grad():
            logits, senses, alpha, _ = model(ids, return_parts=True)
        name = f"seq{j}"
        tensors[f"{name}_input_ids"] = ids.contiguous()
        tensors[f"{name}_logits"] = logits.float().contiguous()
        tensors[f"{name}_senses"] = senses.float().contiguous()
        tensors[f"{name}_contextualization"] = alpha.float().contiguous()
        meta[f"{name}_text"] = tok.decode(ids[0].tolist())
        meta[f"{name}_heldout_offset"] = str(s)
        print(name, s, repr(meta[f"{name}_text"]), tuple(logits.shape))
    path = os.path.join(args.model, "parity.safetensors")
    save_file(tensors, path, metadata=meta)
    print(path, os.path.getsize(path), "bytes")


if __name__ == "__main__":
    main()
