#!/usr/bin/env python3
"""Writes the small seed corpora under Fuzz/Corpus/<harness>/ (committed; rerun to refresh)."""
import json, os, shutil, struct, sys

ROOT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
FIXTURES = os.path.join(ROOT, "Tests", "Fixtures")
sys.path.insert(0, os.path.join(ROOT, "Tools", "hostile-checkpoints"))
import make_corpus as mc  # noqa: E402

C = os.path.join(ROOT, "Fuzz", "Corpus")


def put(h, name, data):
    d = os.path.join(C, h)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data if isinstance(data, bytes) else data.encode())


def st(tensors, meta=None):
    header, blob = {}, b""
    if meta:
        header["__metadata__"] = meta
    for name, dtype, shape, data in tensors:
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [len(blob), len(blob) + len(data)]}
        blob += data
    h = json.dumps(header).encode()
    return struct.pack("<Q", len(h)) + h + blob


shutil.rmtree(C, ignore_errors=True)
put("FuzzSafetensors", "two-f32", st([("a", "F32", [2], mc.f32(2)), ("b", "F32", [1, 3], mc.f32(3))], {"format": "pt"}))
put("FuzzSafetensors", "mixed", st([("h", "F16", [2], b"\x00\x3c\x00\xc0"), ("i", "I64", [1], struct.pack("<q", 7)),
                                    ("bf", "BF16", [1], b"\x80\x3f"), ("d", "F64", [], struct.pack("<d", 1.5)),
                                    ("u", "U8", [3], b"\x01\x02\x03"), ("z", "F32", [0, 4], b"")]))
put("FuzzSafetensors", "empty-header", st([]))
put("FuzzTorch", "good", mc.archive(mc.GOOD_PKL))
put("FuzzTorch", "two-tensors", mc.archive(mc.state_dict([("a", "0", 6, 0, [6], [1]), ("b", "1", 4, 1, [3], [1], "DoubleStorage")]),
                                            storages=(("0", mc.f32(6)), ("1", b"\0" * 32))))
put("FuzzTorch", "zip64", mc.zipfile_bytes([mc.M("archive/data.pkl", mc.GOOD_PKL), mc.M("archive/data/0", mc.GOOD_STORAGE)], zip64=True))
put("FuzzTorch", "os-system", mc.archive(mc.system_call("os", "system", "fuzz-seed")))
put("FuzzConfig", "tiny", open(os.path.join(FIXTURES, "tiny/config.json"), "rb").read())
put("FuzzConfig", "gpt2", json.dumps({"architectures": ["GPT2LMHeadModel"], "model_type": "gpt2", "n_embd": 8, "n_layer": 1,
                                      "n_head": 2, "n_positions": 4, "vocab_size": 5, "n_inner": None}))
tok = os.path.join(FIXTURES, "toy-tokenizer")
put("FuzzTokenizerFiles", "tokenizer-json", b"\x00" + open(os.path.join(tok, "tokenizer.json"), "rb").read())
put("FuzzTokenizerFiles", "vocab-merges", b"\x01" + open(os.path.join(tok, "vocab.json"), "rb").read() + b"\x00" + open(os.path.join(tok, "merges.txt"), "rb").read())
put("FuzzTokenizerFiles", "tiktoken", b"\x02" + open(os.path.join(tok, "toy.tiktoken"), "rb").read())
put("FuzzTokenizerFiles", "small-json", b"\x03" + json.dumps({"model": {"type": "BPE", "vocab": {"a": 0, "b": 1, "ab": 2}, "merges": ["a b"]},
                                                            "added_tokens": [{"id": 3, "content": "<|endoftext|>", "special": True}]}).encode())
put("FuzzTokenizerFiles", "small-vocab", b"\x01" + b'{"a": 0, "b": 1, "ab": 2, "\\u0120": 3}\x00#version: 0.2\na b\n')
for i, t in enumerate(["Hello, world!", " the  cat sat\n\non the mat's 123 rug", "naïve café — 日本語 🙂🙂", "<|endoftext|>x<|endoftext|>",
                       "\t\r\n  ", "I'll've they'RE", "a" * 300]):
    put("FuzzEncode", f"text{i}", t)
for d in [os.path.join(ROOT, "Tests/EditingTests/Edits"), os.path.join(ROOT, "Evaluations")]:
    for f in sorted(os.listdir(d)):
        if f.endswith(".yaml"):
            put("FuzzEditFile", f, open(os.path.join(d, f), "rb").read())
total = sum(os.path.getsize(os.path.join(r, f)) for r, _, fs in os.walk(C) for f in fs)
print(f"seed corpora: {total} bytes under {C}")
