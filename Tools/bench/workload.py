"""The inputs both sides of `make bench` read: one JSON file (format backpack-bench-workload/1).

Standard library only, so the Swift side can be benchmarked even where torch cannot be installed.

  python3 Tools/bench/workload.py --out bench-out/workload.json                      # generated ids
  python3 Tools/bench/workload.py --out bench-out/workload.json \
      --corpus CORPUS.txt --backpack .build/release/backpack                        # real passages

Passages (corpus mode) follow Evaluations/perplexity.yaml and Tools/train-demo-model/prepare_data.py:
lines split at "\n" ("\r\n" too, as the Swift reader does), a line is blank iff strip() leaves
nothing, a passage is a maximal run of non-blank lines joined with "\n" and stripped; passage i is
held out iff i % 20 == 19; the first --passages held-out ones are taken. They are tokenized with the
project's own GPT-2 BPE through `backpack tokenize --ids-only` (the same code the Swift bench uses),
and <|endoftext|> is prepended (prepend_eos: true). The file holds the ids with that EOS already in.

Generated mode (no corpus): passages of the token lengths in HELD_OUT_LENGTHS (the first twelve
held-out passages of the demo corpus under GPT-2's BPE, EOS included, measured with corpus mode on
2026-12-01; corpus SHA-256 in CORPUS_SHA256), ids drawn by xoshiro256** (the generator of
Sources/BackpackModel/Generation.swift) from a Zipf(1) law over a seeded permutation of GPT-2's
50,257 ids, so that tokens repeat roughly as in text (the Swift side computes each distinct token's
senses once), and about 1 % of the tokens are the edited words' ids so that the edits matter.

Edits: the three demo edits (Edits/remove-gender-sense.yaml, debias-project-gender.yaml,
optimize-gender-sense.yaml) reduced to what a timing comparison needs, defined exactly so that both
sides compute the same perplexities: on a random model localization and fitting are meaningless,
so the sense index is fixed (10, the paper's) and the fitted scales are fixed numbers.
  scale            C'_l(w) = scale * C_l(w)                               for w in token_ids
  project_out      C'_l(w) = C_l(w) - strength * (C_l(w) . u) u,  u = unit(mean_i(E[a_i] - E[b_i]))
                   over the pair ids (E: the tied word embedding, wte)
  scale_per_token  C'_l(w) = scales[i] * C_l(w)                           for w = token_ids[i]
"""

from __future__ import annotations

import argparse
import bisect
import hashlib
import itertools
import json
import os
import subprocess
import sys
import tempfile

FORMAT = "backpack-bench-workload/1"
ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
GPT2_VOCAB = 50257          # GPT-2's BPE ids; the Backpack checkpoint pads its vocabulary to 50264
EOS = 50256
SENSE = 10                  # the paper's gender sense of stanfordnlp/backpack-gpt2 (Table 5)
MASK64 = (1 << 64) - 1
# See the module docstring: GPT-2 token counts (EOS included) of held-out passages 19, 39, ... 239
# of the demo corpus, measured by this script's corpus mode (6,959 tokens, 2,381 distinct).
CORPUS_SHA256 = "ec0f24a04934c133af63260a69050d30e044c035d323a5999befd17e22cdeba0"
HELD_OUT_LENGTHS = [1091, 459, 1052, 844, 417, 404, 415, 624, 515, 417, 390, 331]
# Bolukbasi et al.'s ten definitional pairs, as listed in Edits/debias-project-gender.yaml.
GENDER_PAIRS = [("woman", "man"), ("girl", "boy"), ("she", "he"), ("mother", "father"),
                ("daughter", "son"), ("gal", "guy"), ("female", "male"), ("her", "his"),
                ("herself", "himself"), ("Mary", "John")]
VARIANTS = ["remove-gender-sense", "debias-project-gender", "optimize-gender-sense"]


class WorkloadError(Exception):
    pass


class Xoshiro256ss:
    """xoshiro256** seeded by splitmix64, bit for bit as SeededGenerator in Generation.swift."""

    def __init__(self, seed: int):
        x = seed & MASK64

        def splitmix():
            nonlocal x
            x = (x + 0x9E3779B97F4A7C15) & MASK64
            z = x
            z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK64
            z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK64
            return z ^ (z >> 31)

        self.s = [splitmix(), splitmix(), splitmix(), splitmix()]

    def next(self) -> int:
        s = self.s
        m = (s[1] * 5) & MASK64
        result = ((((m << 7) | (m >> 57)) & MASK64) * 9) & MASK64
        t = (s[1] << 17) & MASK64
        s[2] ^= s[0]; s[3] ^= s[1]; s[1] ^= s[2]; s[0] ^= s[3]; s[2] ^= t
        s[3] = ((s[3] << 45) | (s[3] >> 19)) & MASK64
        return result

    def uniform(self) -> float:
        return (self.next() >> 11) / float(1 << 53)


def bench_forward_ids(vocab: int, n_positions: int, seed: int = 1):
    """The token ids of `backpack bench` (Bench.swift): rng.next() % min(V, 50257), 1xN first, then 8xM."""
    rng = Xoshiro256ss(seed)
    V = min(vocab, GPT2_VOCAB)
    n = min(512, n_positions)
    m = min(128, n)
    one = [[rng.next() % V for _ in range(n)]]
    eight = [[rng.next() % V for _ in range(m)] for _ in range(8)]
    return {f"1x{n}": one, f"8x{m}": eight}


def read_passages(text: str):
    out, cur = [], []
    for line in text.replace("\r\n", "\n").split("\n"):
        if line.strip() == "":
            if cur:
                p = "\n".join(cur).strip()
                if p:
                    out.append(p)
                cur = []
        else:
            cur.append(line)
    if cur:
        p = "\n".join(cur).strip()
        if p:
            out.append(p)
    return out


def tokenize(backpack: str, tokenizer: str, text: str):
    r = subprocess.run([backpack, "tokenize", "--tokenizer", tokenizer, "--ids-only", "--", text],
                       capture_output=True, text=True)
    if r.returncode != 0:
        raise WorkloadError(f"{backpack} tokenize failed ({r.returncode}): {r.stderr.strip()[:300]}")
    line = r.stdout.strip()
    try:
        return [int(t) for t in line.split(",")] if line else []
    except ValueError:
        raise WorkloadError(f"{backpack} tokenize printed '{line[:80]}', expected comma-separated ids")


def profession_words():
    path = os.path.join(ROOT, "Edits", "lists", "paper-professions.txt")
    with open(path, encoding="utf-8") as f:
        words = [l.split("#", 1)[0].strip() for l in f]
    words = [w for w in words if w]
    if len(words) != 40:
        raise WorkloadError(f"{path}: expected the paper's 40 profession nouns, found {len(words)}")
    return words


def check_pairs_match_edit_file():
    """The pairs above must be those of the demo edit (fails loudly if that file changes)."""
    path = os.path.join(ROOT, "Edits", "debias-project-gender.yaml")
    with open(path, encoding="utf-8") as f:
        text = f.read()
    for a, b in GENDER_PAIRS:
        if f"[{a}, {b}]" not in text:
            raise WorkloadError(f"{path}: pair [{a}, {b}] not found; update GENDER_PAIRS in {__file__}")


def zipf_sampler(rng: Xoshiro256ss, vocab: int):
    perm = list(range(vocab))
    for i in range(vocab - 1, 0, -1):  # Fisher-Yates with the same generator
        j = rng.next() % (i + 1)
        perm[i], perm[j] = perm[j], perm[i]
    cdf = list(itertools.accumulate(1.0 / (r + 1) for r in range(vocab)))
    total = cdf[-1]
    return lambda: perm[min(bisect.bisect_left(cdf, rng.uniform() * total), vocab - 1)]


def edits_block(token_ids, pair_ids, rng: Xoshiro256ss, words=None):
    scales = [round(0.25 + 0.5 * rng.uniform(), 6) for _ in token_ids]
    block = {
        "sense": SENSE,
        "token_ids": token_ids,
        "variants": [
            {"name": VARIANTS[0], "op": "scale", "scale": 0.0},
            {"name": VARIANTS[1], "op": "project_out", "pairs": pair_ids, "strength": 1.0},
            {"name": VARIANTS[2], "op": "scale_per_token", "scales": scales},
        ],
    }
    if words is not None:
        block["words"] = words
    return block


def generated(seed: int, n_passages: int):
    if n_passages > len(HELD_OUT_LENGTHS):
        raise WorkloadError(f"--passages {n_passages}: generated mode knows {len(HELD_OUT_LENGTHS)} passage lengths")
    rng = Xoshiro256ss(seed)
    draw = zipf_sampler(rng, EOS)  # ids 0..50255: EOS only at the start, as in corpus mode
    # 30 ids (GPT-2 has 30 of the 40 nouns as one token), uniform: nouns are not among the most frequent ids
    token_ids = set()
    while len(token_ids) < 30:
        token_ids.add(rng.next() % EOS)
    token_ids = sorted(token_ids)
    pair_ids = [[draw(), draw()] for _ in GENDER_PAIRS]
    passages = []
    for n in HELD_OUT_LENGTHS[:n_passages]:
        ids = [EOS]
        while len(ids) < n:
            ids.append(token_ids[rng.next() % len(token_ids)] if rng.next() % 100 == 0 else draw())
        passages.append(ids)
    return {
        "source": "generated",
        "generator": {"seed": seed, "law": "Zipf(1) over a seeded permutation of ids 0..50255, 1 % edited ids",
                      "lengths": f"held-out passages of the demo corpus (SHA-256 {CORPUS_SHA256}) under GPT-2's BPE"},
        "passages": passages,
        "edits": edits_block(token_ids, pair_ids, rng),
    }


def from_corpus(corpus: str, backpack: str, tokenizer: str, n_passages: int, seed: int):
    with open(corpus, "rb") as f:
        raw = f.read()
    sha = hashlib.sha256(raw).hexdigest()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise WorkloadError(f"{corpus}: not UTF-8 text ({e})")
    held = [(i, p) for i, p in enumerate(read_passages(text)) if i % 20 == 19][:n_passages]
    if len(held) < n_passages:
        raise WorkloadError(f"{corpus}: {len(held)} held-out passages (index % 20 == 19), {n_passages} asked for")
    passages = [[EOS] + tokenize(backpack, tokenizer, p) for _, p in held]
    words, token_ids = [], []
    for w in profession_words():
        ids = tokenize(backpack, tokenizer, " " + w)
        if len(ids) == 1:  # the paper's rule: only nouns that are one token
            words.append(w); token_ids.append(ids[0])
    pair_ids = []
    for a, b in GENDER_PAIRS:
        ia, ib = tokenize(backpack, tokenizer, " " + a), tokenize(backpack, tokenizer, " " + b)
        if len(ia) != 1 or len(ib) != 1:
            raise WorkloadError(f"gender pair ({a}, {b}) is not two single tokens under {tokenizer}")
        pair_ids.append([ia[0], ib[0]])
    return {
        "source": "corpus",
        "corpus": {"file": os.path.basename(corpus), "sha256": sha, "select": {"every": 20, "offset": 19},
                   "passage_indices": [i for i, _ in held], "tokenizer": "GPT-2 BPE via backpack tokenize"},
        "passages": passages,
        "edits": edits_block(token_ids, pair_ids, Xoshiro256ss(seed), words),
    }


def make(args):
    check_pairs_match_edit_file()
    if args.corpus:
        if not args.backpack:
            raise WorkloadError("--corpus needs --backpack BIN (its `tokenize` command is the tokenizer)")
        w = from_corpus(args.corpus, args.backpack, args.tokenizer, args.passages, args.seed)
    else:
        w = generated(args.seed, args.passages)
    out = {"format": FORMAT, "eos_token_id": EOS, "prepend_eos": True, "max_length": 512, "stride": 512}
    out.update(w)
    flat = [t for p in out["passages"] for t in p]
    out["n_tokens"] = len(flat)
    out["distinct_tokens"] = len(set(flat))
    out["edited_occurrences"] = sum(1 for t in flat if t in set(out["edits"]["token_ids"]))
    return out


def file_sha256(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def write_atomic(path: str, text: str):
    d = os.path.dirname(os.path.abspath(path))
    os.makedirs(d, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=d, prefix=".tmp-")
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.replace(tmp, path)


def load(path: str, vocab_size: int | None = None):
    """Reads and validates a workload file; errors name the file and field."""
    try:
        with open(path, encoding="utf-8") as f:
            w = json.load(f)
    except (OSError, json.JSONDecodeError) as e:
        raise WorkloadError(f"{path}: cannot read a JSON workload ({e})")

    def need(cond, field, what):
        if not cond:
            raise WorkloadError(f"{path}: '{field}' {what}")

    need(isinstance(w, dict) and w.get("format") == FORMAT, "format", f"must be '{FORMAT}'")
    for k in ("max_length", "stride", "eos_token_id"):
        need(isinstance(w.get(k), int) and w[k] >= 1 - (k == "eos_token_id"), k, "must be a positive integer")
    ps = w.get("passages")
    need(isinstance(ps, list) and ps, "passages", "must be a non-empty list of id lists")
    for i, p in enumerate(ps):
        need(isinstance(p, list) and len(p) >= 2 and all(isinstance(t, int) and t >= 0 for t in p),
             f"passages[{i}]", "must be a list of at least 2 non-negative integer ids")
        if vocab_size is not None:
            bad = [t for t in p if t >= vocab_size]
            need(not bad, f"passages[{i}]", f"has id {bad[:1]} beyond the model's vocabulary ({vocab_size})")
    e = w.get("edits")
    need(isinstance(e, dict), "edits", "must be an object")
    need(isinstance(e.get("sense"), int) and e["sense"] >= 0, "edits.sense", "must be a sense index")
    ids = e.get("token_ids")
    need(isinstance(ids, list) and ids and all(isinstance(t, int) and t >= 0 for t in ids), "edits.token_ids",
         "must be a non-empty list of ids")
    vs = e.get("variants")
    need(isinstance(vs, list) and vs, "edits.variants", "must be a non-empty list")
    for i, v in enumerate(vs):
        f = f"edits.variants[{i}]"
        need(isinstance(v, dict) and isinstance(v.get("name"), str), f + ".name", "must be a string")
        op = v.get("op")
        if op == "scale":
            need(isinstance(v.get("scale"), (int, float)), f + ".scale", "must be a number")
        elif op == "project_out":
            need(isinstance(v.get("pairs"), list) and v["pairs"] and
                 all(isinstance(p, list) and len(p) == 2 and all(isinstance(t, int) for t in p) for p in v["pairs"]),
                 f + ".pairs", "must be a list of [id, id]")
            need(isinstance(v.get("strength"), (int, float)), f + ".strength", "must be a number")
        elif op == "scale_per_token":
            need(isinstance(v.get("scales"), list) and len(v["scales"]) == len(ids) and
                 all(isinstance(s, (int, float)) for s in v["scales"]), f + ".scales",
                 "must be one number per edits.token_ids entry")
        else:
            need(False, f + ".op", "must be scale, project_out or scale_per_token")
    return w


def windows(n: int, max_length: int, stride: int):
    """(begin, end, from) as PerplexitySuite.windows in Sources/BackpackEvaluation/Perplexity.swift."""
    out, prev_end, begin = [], 0, 0
    while begin < n:
        end = min(begin + max_length, n)
        frm = max(prev_end - begin, 1)
        if frm < end - begin:
            out.append((begin, end, frm))
        prev_end = end
        if end == n:
            break
        begin += stride
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", required=True, help="workload JSON to write")
    ap.add_argument("--corpus", help="text file of passages (blank-line separated); default: generated ids")
    ap.add_argument("--backpack", help="the backpack binary (corpus mode tokenizes with it)")
    ap.add_argument("--tokenizer", default=os.path.join(ROOT, "Sources", "BackpackTokenizer", "GPT2"))
    ap.add_argument("--passages", type=int, default=12)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args(argv)
    try:
        w = make(args)
        write_atomic(args.out, json.dumps(w, separators=(",", ":")) + "\n")
    except (WorkloadError, OSError) as e:
        print(f"workload: {e}", file=sys.stderr)
        return 2
    print(f"workload: {args.out}: {w['source']}, {len(w['passages'])} passages, {w['n_tokens']} tokens "
          f"({w['distinct_tokens']} distinct), lengths {[len(p) for p in w['passages']]}, "
          f"{len(w['edits']['token_ids'])} edited ids occurring {w['edited_occurrences']} times")
    return 0


if __name__ == "__main__":
    sys.exit(main())
