"""PyTorch side of `make bench`: the project's own PyTorch Backpack (Tools/train-demo-model/backpack.py)
on the same checkpoint and inputs as `backpack bench`, timed with the same protocol.

  .venv-bench/bin/python Tools/bench/torch_bench.py --model bench-out/backpack-gpt2-random \
      --workload bench-out/workload.json --jsonl bench-out/pytorch.jsonl

Protocol (the common one proposed for both sides): per measurement, --warmup untimed runs, then
--runs timed runs; the best (minimum) and the median are both reported, "seconds" is the best.
  forward_1xN, forward_8xM  all logits, random ids of Bench.swift (xoshiro256**, seed 1, % 50257)
  .../sense_network, .../trunk, .../sense_weights, .../sense_sum, .../output
                            each step of BackpackLM.forward called on its own, same protocol
  perplexity/<variant>      one pass over the workload's passages (windows of max_length every
                            stride, as Perplexity.swift): forward, log-softmax, NLL of scored tokens
  perplexity/all            base + the three edits: four full passes (the plain PyTorch way: the
                            edits replace sense vectors, so every variant needs its own forward)
The perplexity workload runs --ppl-runs times after one untimed window (threads and allocator warm).
Float32, eval mode, torch.inference_mode, torch.set_num_threads(--threads). Peak RSS is the
process's ru_maxrss (all measurements so far; run one --only per process for a per-shape peak).

Output: a readable table on stdout, and JSON lines (--jsonl FILE, written to a temporary name and
renamed; else after the table on stdout): one "meta" line, then one line per measurement
  {"side": "pytorch", "name": "forward_1x512", "tokens": 512, "seconds": best, "tokens_per_s": ...,
   "median_seconds": ..., "samples": [...], "warmup": 1, "runs": 5, ...}
perplexity lines add "scored_tokens" and "nll_sum" (natural log, summed in float64), so the two
sides' perplexities can be checked against each other.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(ROOT, "Tools", "train-demo-model"))

import workload as wl  # noqa: E402  (standard library only)

try:
    import torch
    from safetensors.torch import load_file
    from backpack import BackpackConfig, BackpackLM
except ImportError as e:  # no venv: say so in one line (make bench then shows the Swift side only)
    print(f"torch_bench: {e}; run Tools/bench/setup_venv.sh and use .venv-bench/bin/python", file=sys.stderr)
    sys.exit(3)


def peak_rss_bytes() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # KiB on Linux


def timed(fn, warmup: int, runs: int):
    for _ in range(warmup):
        fn()
    samples = []
    for _ in range(runs):
        t = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - t)
    return samples


def record(name, tokens, samples, warmup, **extra):
    best = min(samples)
    r = {"side": "pytorch", "name": name, "tokens": tokens, "seconds": best,
         "tokens_per_s": tokens / best if best > 0 else None,
         "median_seconds": statistics.median(samples), "samples": samples,
         "warmup": warmup, "runs": len(samples), "stat": "best"}
    r.update(extra)
    return r


def load_model(model_dir: str):
    """config.json + model.safetensors, float32, eval; parameters allocated uninitialized (to_empty)
    so that opening is not GPT-2's random initialisation of 170 M parameters."""
    cfg_path = os.path.join(model_dir, "config.json")
    weights = os.path.join(model_dir, "model.safetensors")
    for p in (cfg_path, weights):
        if not os.path.isfile(p):
            raise SystemExit(f"torch_bench: {p} not found (make one with `backpack init --config backpack-gpt2 --seed 0 --out {model_dir}`)")
    t = time.perf_counter()
    cfg = BackpackConfig.from_hf(cfg_path)
    with torch.device("meta"):
        model = BackpackLM(cfg)
    model = model.to_empty(device="cpu")
    model.load_hf_state_dict(load_file(weights))
    model = model.float().eval()
    return model, cfg, time.perf_counter() - t, os.path.getsize(weights)


class SenseEdit:
    """One demo edit as a PyTorch user of backpack.py would write it: a forward hook on the sense
    network replaces sense `sense` of the edited words' occurrences; the ids come from a pre-hook on
    the model. BackpackLM.forward itself is untouched, so each variant is one full forward."""

    def __init__(self, model, spec: dict, token_ids, sense: int):
        self.model, self.spec, self.sense = model, spec, sense
        self.ids = None
        self.token_ids = torch.tensor(token_ids, dtype=torch.long)
        E = model.backpack.gpt2_model.wte.weight
        op = spec["op"]
        if op == "project_out":
            a = torch.tensor([p[0] for p in spec["pairs"]]); b = torch.tensor([p[1] for p in spec["pairs"]])
            u = (E[a] - E[b]).mean(dim=0)
            self.u = u / u.norm()
        elif op == "scale_per_token":
            self.table = torch.ones(E.shape[0], dtype=E.dtype)
            self.table[self.token_ids] = torch.tensor(spec["scales"], dtype=E.dtype)
        self.handles = []

    def __enter__(self):
        self.handles = [self.model.register_forward_pre_hook(self._capture),
                        self.model.backpack.sense_network.register_forward_hook(self._edit)]
        return self

    def __exit__(self, *exc):
        for h in self.handles:
            h.remove()

    def _capture(self, module, args):
        self.ids = args[0]

    def _edit(self, module, inputs, senses):  # senses (b, k, n, d)
        mask = torch.isin(self.ids, self.token_ids)  # (b, n)
        if not bool(mask.any()):
            return senses
        senses = senses.clone()
        c = senses[:, self.sense]  # (b, n, d), a view
        op = self.spec["op"]
        if op == "scale":
            c[mask] = c[mask] * float(self.spec["scale"])
        elif op == "project_out":
            v = c[mask]
            c[mask] = v - float(self.spec["strength"]) * (v @ self.u)[:, None] * self.u
        else:
            c[mask] = c[mask] * self.table[self.ids[mask]][:, None]
        return senses


def check_edits(model, edits: dict):
    """Each edit hook must change the logits from the first edited token on and nothing before it
    (tolerance 1e-6 absolute: positions before see alpha = 0 exactly for the changed senses)."""
    tok = edits["token_ids"][0]
    ids = torch.tensor([[1, 2, 3, tok, 4, 5]])
    with torch.inference_mode():
        base = model(ids)
        for spec in edits["variants"]:
            with SenseEdit(model, spec, edits["token_ids"], edits["sense"]):
                out = model(ids)
            before = (out[0, :3] - base[0, :3]).abs().max().item()
            after = (out[0, 3:] - base[0, 3:]).abs().max().item()
            if before > 1e-6 or after <= 1e-6:
                raise SystemExit(f"torch_bench: edit {spec['name']} hook check failed: max |change| before the "
                                 f"edited token {before:.3g} (want <= 1e-6), from it on {after:.3g} (want > 1e-6)")


def perplexity_pass(model, items):
    """items: (ids tensor (1, n), from): NLL of ids[j] given ids[<j] for j >= from, windows one by one."""
    nll, scored = 0.0, 0
    for ids, frm in items:
        logits = model(ids)[0]                                   # (n, V)
        lp = torch.log_softmax(logits[frm - 1:-1], dim=-1)       # rows predicting ids[frm:]
        nll -= lp.gather(1, ids[0, frm:, None]).double().sum().item()
        scored += ids.shape[1] - frm
    return nll, scored


def main(argv=None):
    ap = argparse.ArgumentParser(description="PyTorch side of make bench (see the module docstring).")
    ap.add_argument("--model", required=True, help="directory with config.json and model.safetensors")
    ap.add_argument("--workload", help="workload JSON of Tools/bench/workload.py (needed for perplexity)")
    ap.add_argument("--only", choices=["forward", "perplexity", "all"], default="all")
    ap.add_argument("--shape", help="only this forward shape, e.g. 1x512 or 8x128")
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--ppl-runs", type=int, default=3, help="timed runs of the four-variant perplexity workload")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=1, help="seed of the forward ids (Bench.swift's --seed)")
    ap.add_argument("--jsonl", help="write the JSON lines here (default: stdout, after the table)")
    args = ap.parse_args(argv)
    if args.warmup < 0 or args.runs < 1 or args.ppl_runs < 1:
        ap.error("--warmup >= 0, --runs >= 1 and --ppl-runs >= 1")
    if args.only in ("perplexity", "all") and not args.workload:
        ap.error("perplexity needs --workload FILE (make one with Tools/bench/workload.py)")

    torch.set_num_threads(args.threads)
    started = time.time()
    cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), platform.processor())
    meta = {"side": "pytorch", "name": "meta", "host": platform.node(), "started_unix": started, "cpu": cpu,
            "torch": torch.__version__, "threads": torch.get_num_threads(),
            "blas": "mkl" if torch.backends.mkl.is_available() else "other",
            "cpu_capability": torch.backends.cpu.get_cpu_capability(),
            "loadavg_start": list(os.getloadavg()),
            "env": {k: os.environ[k] for k in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE", "OMP_NUM_THREADS",
                                               "MKL_NUM_THREADS", "MKL_ENABLE_INSTRUCTIONS") if k in os.environ}}
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, BLAS {meta['blas']}, "
          f"CPU capability {meta['cpu_capability']}, {cpu}, load average {meta['loadavg_start'][0]:.2f}")

    model, cfg, open_s, weight_bytes = load_model(args.model)
    work = None
    if args.workload:
        try:
            work = wl.load(args.workload, vocab_size=cfg.vocab_size)
        except wl.WorkloadError as e:
            raise SystemExit(f"torch_bench: {e}")
        meta["workload"] = {"file": os.path.basename(args.workload), "source": work["source"],
                            "sha256": wl.file_sha256(args.workload)}
    lines = [meta, {"side": "pytorch", "name": "open", "tokens": 0, "seconds": open_s, "tokens_per_s": None,
                    "samples": [open_s], "warmup": 0, "runs": 1, "stat": "once", "weight_bytes": weight_bytes}]
    print(f"model {args.model} ({weight_bytes / 1e6:.0f} MB), opened in {open_s:.3f} s")

    bp = model.backpack
    with torch.inference_mode():
        if args.only in ("forward", "all"):
            shapes = wl.bench_forward_ids(cfg.vocab_size, cfg.n_positions, args.seed)
            if args.shape and args.shape not in shapes:
                ap.error(f"--shape {args.shape}: this model's shapes are {', '.join(shapes)}")
            for name, batch in shapes.items():
                if args.shape and name != args.shape:
                    continue
                ids = torch.tensor(batch, dtype=torch.long)
                tokens = ids.numel()
                s = timed(lambda: model(ids), args.warmup, args.runs)
                lines.append(record(f"forward_{name}", tokens, s, args.warmup, peak_rss_bytes=peak_rss_bytes()))
                # Where the time goes: each step of BackpackLM.forward on its own inputs.
                x0 = bp.gpt2_model.wte(ids)
                senses = bp.sense_network(x0)
                hc = bp.gpt2_model(ids)
                alpha = bp.sense_weight_net(hc)
                o = (alpha @ senses).sum(dim=1)
                E = bp.gpt2_model.wte.weight
                steps = [("sense_network", lambda: bp.sense_network(bp.gpt2_model.wte(ids))),
                         ("trunk", lambda: bp.gpt2_model(ids)),
                         ("sense_weights", lambda: bp.sense_weight_net(hc)),
                         ("sense_sum", lambda: (alpha @ senses).sum(dim=1)),
                         ("output", lambda: o @ E.t())]
                for step, fn in steps:
                    lines.append(record(f"forward_{name}/{step}", tokens, timed(fn, args.warmup, args.runs), args.warmup))
                del x0, senses, hc, alpha, o

        if args.only in ("perplexity", "all"):
            edits = work["edits"]
            check_edits(model, edits)
            items = []
            for p in work["passages"]:
                for b, e, frm in wl.windows(len(p), min(work["max_length"], cfg.n_positions),
                                            min(work["stride"], work["max_length"], cfg.n_positions)):
                    items.append((torch.tensor([p[b:e]], dtype=torch.long), frm))
            perplexity_pass(model, items[:1])  # warm threads and allocator, untimed
            variants = [("base", None)] + [(v["name"], v) for v in edits["variants"]]
            per = {n: [] for n, _ in variants}
            total, results = [], {}
            for _ in range(args.ppl_runs):
                t_all = 0.0
                for n, spec in variants:
                    t = time.perf_counter()
                    if spec is None:
                        results[n] = perplexity_pass(model, items)
                    else:
                        with SenseEdit(model, spec, edits["token_ids"], edits["sense"]):
                            results[n] = perplexity_pass(model, items)
                    dt = time.perf_counter() - t
                    per[n].append(dt); t_all += dt
                total.append(t_all)
            scored = results["base"][1]
            for n, _ in variants:
                nll, sc = results[n]
                lines.append(record(f"perplexity/{n}", sc, per[n], 0, scored_tokens=sc, nll_sum=nll,
                                    token_perplexity=float(torch.tensor(nll / sc).exp())))
            lines.append(record("perplexity/all", scored * len(variants), total, 0, variants=len(variants),
                                passes=len(variants), peak_rss_bytes=peak_rss_bytes()))

    peak = peak_rss_bytes()
    lines.append({"side": "pytorch", "name": "peak_rss", "bytes": peak, "weight_bytes": weight_bytes,
                  "ratio_to_weights": peak / weight_bytes})
    meta["loadavg_end"] = list(os.getloadavg())
    meta["finished_unix"] = time.time()

    print(f"\n{'measurement':34} {'tokens':>7} {'best s':>9} {'median s':>9} {'tokens/s':>9}  notes")
    for r in lines:
        if r["name"] in ("meta", "peak_rss"):
            continue
        tps = f"{r['tokens_per_s']:9.0f}" if r.get("tokens_per_s") else f"{'':9}"
        med = f"{r['median_seconds']:9.3f}" if "median_seconds" in r else f"{'':9}"
        note = f"ppl {r['token_perplexity']:.2f}" if "token_perplexity" in r else ""
        if r["name"].startswith("forward_") and "/" not in r["name"]:
            note = f"best of {r['runs']} after {r['warmup']} warmup"
        print(f"{r['name']:34} {r['tokens']:7d} {r['seconds']:9.3f} {med} {tps}  {note}")
    print(f"peak RSS {peak / 1e6:.0f} MB = {peak / weight_bytes:.2f}x the weights; load average "
          f"{meta['loadavg_start'][0]:.2f} -> {meta['loadavg_end'][0]:.2f} (over ~2 the numbers are disturbed)")

    text = "".join(json.dumps(r) + "\n" for r in lines)
    if args.jsonl:
        wl.write_atomic(args.jsonl, text)
        print(f"wrote {args.jsonl}")
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
