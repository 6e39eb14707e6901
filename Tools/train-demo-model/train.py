"""Train the small demo Backpack-GPT2 on the pre-tokenized corpus (see prepare_data.py).

    python train.py --data DATA_DIR --out OUT_DIR [--time-budget SECONDS] [--epochs E] ...

* device: cuda if available, else cpu (override with --device). On CUDA the forward/backward run
  under bf16 autocast with float32 master weights; on CPU everything is float32.
* seeded (--seed): init, batch sampling and dropout are reproducible on one device type.
* batches: --batch-size random windows of --seq-len + 1 tokens from the training stream
  (uniform random start offsets; windows may cross <|endoftext|> boundaries, as in GPT-2).
* AdamW (betas 0.9/0.95, weight decay on 2-d weights only), linear warmup then cosine decay to
  --min-lr-frac of the peak. The schedule length is --epochs passes over the training tokens,
  shortened once, after --calib-steps steps, to what the measured speed (steps 10..calib-steps)
  allows in --time-budget. The time budget is a hard stop in any case.
* every --eval-every steps: loss on the validation split (part of the training split, never
  trained on); the state with the lowest validation loss is kept and is what gets saved.
* at the end (schedule done or time budget spent): saves OUT_DIR/model.safetensors (Hub names,
  float32), OUT_DIR/config.json, OUT_DIR/train_log.json, and reports the held-out token
  perplexity (float32, no autocast) of the saved weights.

Held-out perplexity (the rule the Swift toolkit uses too): the held-out token stream (see
prepare_data.py) is cut into windows of 257 tokens starting at 0, 256, 512, ...; window w
predicts its tokens 1..256 from the preceding ones inside the window (the last window may be
shorter). Every token of the stream except the first is predicted exactly once.
PPL = exp(mean negative log-likelihood over those predictions).
"""

import argparse
import json
import math
import os
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F
from safetensors.torch import save_file

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from backpack import BackpackConfig, BackpackLM, num_params  # noqa: E402


def load_split(data_dir, name):
    return np.fromfile(os.path.join(data_dir, f"{name}.u16"), dtype="<u2").astype(np.int64)


def eval_windows(tokens: torch.Tensor, seq_len: int):
    """(inputs, targets) windows covering every token but the first exactly once."""
    out = []
    n = tokens.numel()
    for s in range(0, n - 1, seq_len):
        w = tokens[s: s + seq_len + 1]
        out.append((w[:-1], w[1:]))
    return out


@torch.no_grad()
def evaluate(model, tokens, seq_len, device, batch=32, autocast=False, max_windows=None):
    model.eval()
    wins = eval_windows(tokens, seq_len)
    if max_windows:
        wins = wins[:max_windows]
    tot, cnt = 0.0, 0
    full = [w for w in wins if w[0].numel() == seq_len]
    rest = [w for w in wins if w[0].numel() != seq_len]
    groups = [full[i: i + batch] for i in range(0, len(full), batch)] + [[w] for w in rest]
    for g in groups:
        x = torch.stack([w[0] for w in g]).to(device)
        y = torch.stack([w[1] for w in g]).to(device)
        with torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=autocast):
            logits = model(x)
        nll = F.cross_entropy(logits.float().reshape(-1, logits.shape[-1]), y.reshape(-1), reduction="sum")
        tot += nll.item()
        cnt += y.numel()
    model.train()
    return tot / cnt, cnt


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--device", default=None)
    ap.add_argument("--seed", type=int, default=1234)
    ap.add_argument("--time-budget", type=float, default=3600.0, help="seconds of training before stopping and saving")
    ap.add_argument("--epochs", type=float, default=16.0, help="schedule length in passes over the training tokens")
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--seq-len", type=int, default=256)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--min-lr-frac", type=float, default=0.05)
    ap.add_argument("--warmup", type=int, default=300)
    ap.add_argument("--weight-decay", type=float, default=0.1)
    ap.add_argument("--dropout", type=float, default=0.1)
    ap.add_argument("--grad-clip", type=float, default=1.0)
    ap.add_argument("--eval-every", type=int, default=500)
    ap.add_argument("--calib-steps", type=int, default=60, help="must be > 10")
    ap.add_argument("--threads", type=int, default=None, help="torch CPU threads (CPU runs)")
    # architecture
    ap.add_argument("--n-layer", type=int, default=4)
    ap.add_argument("--n-embd", type=int, default=128)
    ap.add_argument("--n-head", type=int, default=4)
    ap.add_argument("--num-senses", type=int, default=16)
    ap.add_argument("--sense-scale", type=int, default=4)
    ap.add_argument("--n-positions", type=int, default=256)
    args = ap.parse_args()

    t_start = time.time()
    device = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    np.random.seed(args.seed)
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    use_amp = device.type == "cuda"

    with open(os.path.join(args.data, "meta.json")) as f:
        meta = json.load(f)
    train = torch.from_numpy(load_split(args.data, "train"))
    val = torch.from_numpy(load_split(args.data, "val"))
    heldout = torch.from_numpy(load_split(args.data, "heldout"))
    train_dev = train.to(device)

    cfg = BackpackConfig(vocab_size=meta["vocab_size"], n_positions=args.n_positions, n_embd=args.n_embd,
                         n_layer=args.n_layer, n_head=args.n_head, num_senses=args.num_senses,
                         sense_intermediate_scale=args.sense_scale, dropout=args.dropout,
                         eos_token_id=meta["eot_id"])
    model = BackpackLM(cfg).to(device)
    print(f"device {device} ({torch.cuda.get_device_name(0) if device.type == 'cuda' else 'cpu'}), "
          f"torch {torch.__version__}, params {num_params(model):,}, train tokens {train.numel():,}", flush=True)

    decay = [p for n, p in model.named_parameters() if p.dim() >= 2]
    no_decay = [p for n, p in model.named_parameters() if p.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": args.weight_decay},
                             {"params": no_decay, "weight_decay": 0.0}],
                            lr=args.lr, betas=(0.9, 0.95), eps=1e-8,
                            **({"fused": True} if device.type == "cuda" else {}))

    tokens_per_step = args.batch_size * args.seq_len
    total_steps = max(1, int(args.epochs * train.numel() / tokens_per_step))
    planned_steps = total_steps

    def lr_at(step):
        if step < args.warmup:
            return args.lr * (step + 1) / args.warmup
        prog = min(1.0, (step - args.warmup) / max(1, total_steps - args.warmup))
        return args.lr * (args.min_lr_frac + (1 - args.min_lr_frac) * 0.5 * (1 + math.cos(math.pi * prog)))

    gen = torch.Generator(device=device)
    gen.manual_seed(args.seed)
    offs_range = train.numel() - args.seq_len - 1
    ar = torch.arange(args.seq_len + 1, device=device)

    def batch():
        starts = torch.randint(0, offs_range, (args.batch_size,), device=device, generator=gen)
        w = train_dev[starts[:, None] + ar[None]]
        return w[:, :-1], w[:, 1:]

    log = {"args": vars(args), "device": str(device), "evals": [], "train": []}
    best = {"val_loss": float("inf"), "step": -1, "state": None}

    def do_eval(step):
        vl, _ = evaluate(model, val, args.seq_len, device, autocast=use_amp)
        log["evals"].append({"step": step, "val_loss": vl, "val_ppl": math.exp(vl), "time": time.time() - t_start})
        tag = ""
        if vl < best["val_loss"]:
            best.update(val_loss=vl, step=step,
                        state={k: v.detach().float().cpu().clone() for k, v in model.state_dict().items()})
            tag = " *"
        print(f"  eval step {step}: val loss {vl:.4f} ppl {math.exp(vl):.2f}{tag}", flush=True)

    model.train()
    t_train = time.time()
    step = 0
    stop_reason = "schedule done"
    ema = None
    while step < total_steps:
        if time.time() - t_train > args.time_budget:
            stop_reason = "time budget"
            break
        lr = lr_at(step)
        for g in opt.param_groups:
            g["lr"] = lr
        x, y = batch()
        with torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=use_amp):
            logits = model(x)
        loss = F.cross_entropy(logits.float().reshape(-1, logits.shape[-1]), y.reshape(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        gn = torch.nn.utils.clip_grad_norm_(model.parameters(), args.grad_clip)
        opt.step()
        step += 1
        if step == 10:
            if device.type == "cuda":
                torch.cuda.synchronize()
            t_step10 = time.time() - t_train
        if step == args.calib_steps or (step % 100 == 0) or step == 1:
            lv = loss.item()
            ema = lv if ema is None else 0.9 * ema + 0.1 * lv
            el = time.time() - t_train
            if step == args.calib_steps:
                # time per step measured after the first 10 steps (CUDA start-up excluded)
                per_step = (el - t_step10) / max(1, step - 10)
                fit = int(args.time_budget / per_step * 0.97)
                if fit < total_steps:
                    total_steps = max(fit, args.warmup + 1)
                    print(f"  schedule shortened to {total_steps} steps to fit the time budget "
                          f"({per_step * 1000:.1f} ms/step)", flush=True)
            if step % 100 == 0 or step == 1:
                print(f"step {step}/{total_steps} loss {lv:.4f} lr {lr:.2e} gnorm {gn.item():.2f} "
                      f"{step * tokens_per_step / max(el, 1e-9) / 1e3:.1f}k tok/s  {el:.0f}s", flush=True)
                log["train"].append({"step": step, "loss": lv, "lr": lr, "time": el})
        if step % args.eval_every == 0:
            do_eval(step)
    train_time = time.time() - t_train
    if best["step"] != step:
        do_eval(step)
    print(f"stopped: {stop_reason} after {step} steps, {train_time:.0f}s; best val at step {best['step']}", flush=True)

    model.load_state_dict(best["state"])
    model = model.float()
    os.makedirs(args.out, exist_ok=True)
    save_file(model.hf_state_dict(), os.path.join(args.out, "model.safetensors"), metadata={"format": "pt"})
    with open(os.path.join(args.out, "config.json"), "w") as f:
        json.dump(cfg.to_hf(), f, indent=2, sort_keys=True)
    hl, hcnt = evaluate(model, heldout, args.seq_len, device, autocast=False)
    vl, _ = evaluate(model, val, args.seq_len, device, autocast=False)
    log.update(stop_reason=stop_reason, steps=step, planned_steps=planned_steps, final_total_steps=total_steps,
               tokens_seen=step * tokens_per_step, epochs_seen=step * tokens_per_step / train.numel(),
               train_seconds=train_time, best_step=best["step"], best_val_loss=best["val_loss"],
               val_loss_fp32=vl, val_ppl_fp32=math.exp(vl),
               heldout_loss=hl, heldout_ppl=math.exp(hl), heldout_predictions=hcnt,
               params=num_params(model), wall_seconds=time.time() - t_start,
               gpu=torch.cuda.get_device_name(0) if device.type == "cuda" else None)
    with open(os.path.join(args.out, "train_log.json"), "w") as f:
        json.dump(log, f, indent=1)
    print(f"saved {args.out}: val ppl {math.exp(vl):.2f}, held-out ppl {math.exp(hl):.2f} "
          f"over {hcnt} predicted tokens", flush=True)


if __name__ == "__main__":
    main()
