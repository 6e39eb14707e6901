#!/usr/bin/env python3
"""Check that README.md says what the toolkit does (`make docs-check`; Python 3 standard library).

Markers, in README.md:

    ```sh run                  a command block that is run (bash; `backpack` is the binary under test)
    backpack eval ...
    ```
    ```text output             optional, right after it (blank lines between are fine): what the
    ...                        block prints on stdout, checked "to the digits shown"
    ```

Matching, line by line after collapsing whitespace runs (leading and trailing whitespace ignored):
- text between numbers must be equal;
- a number in the quoted output matches when the printed number rounds to it at the quoted number
  of decimals (`6.26` matches `6.2622`; `6.3` does not match `6.2622`; `+0.00` matches `-0.0001`);
- a line that is only `...` (or `…`) matches any number of lines, none included.

The blocks run in order, in one temporary folder holding links to the repository's top-level
entries (so `Edits/...`, `Evaluations/...` and `Models/...` resolve, and outputs land in the
temporary folder), with `backpack` meaning the binary given by --binary (default
.build/release/backpack), HF_HUB_OFFLINE=1 and an empty fetch cache: no network. A block fails
when its command exits non-zero, takes longer than --timeout seconds, or prints something else.

Also checked: README.md is at most 12,000 bytes, no line (code or prose) exceeds 100 characters,
and every relative link points at a file or folder of the repository.

Exit status 0 when everything holds; 1 naming the block (its line in README.md) and the first
line that differs; 2 for usage errors. --show prints what each block printed (to update a quote).
"""
import argparse
import difflib
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

MAX_BYTES = 12_000
MAX_COLUMNS = 100
ELLIPSIS = {"...", "…"}
NUMBER = re.compile(r"[-+]?(?:\d+\.\d*|\.\d+|\d+)(?:[eE][-+]?\d+)?")


class Block:
    def __init__(self, info, line, lines):
        self.info, self.line, self.lines = info, line, lines   # line: 1-based line of the fence

    @property
    def words(self):
        return self.info.split()


def fenced_blocks(text):
    """Every fenced block (``` or ~~~, three or more) with its info string and first line."""
    blocks, lines, i = [], text.split("\n"), 0
    while i < len(lines):
        m = re.match(r"^( {0,3})(`{3,}|~{3,})(.*)$", lines[i])
        if not m:
            i += 1
            continue
        fence, info, start, body = m.group(2), m.group(3).strip(), i + 1, []
        i += 1
        while i < len(lines) and not re.match(r"^ {0,3}" + re.escape(fence[0]) + "{%d,}\\s*$" % len(fence), lines[i]):
            body.append(lines[i])
            i += 1
        blocks.append(Block(info, start, body))
        i += 1
    return blocks


def runnable_pairs(text, blocks):
    """(command block, output block or None) for every ```sh run block, in order."""
    lines = text.split("\n")
    pairs = []
    for k, b in enumerate(blocks):
        if b.words[:2] != ["sh", "run"]:
            continue
        out = None
        if k + 1 < len(blocks) and blocks[k + 1].words[:2] == ["text", "output"]:
            end = b.line + len(b.lines) + 1          # the closing fence's line (1-based)
            between = lines[end:blocks[k + 1].line - 1]
            if all(not s.strip() for s in between):
                out = blocks[k + 1]
        pairs.append((b, out))
    return pairs


def normalise(line):
    return " ".join(line.split())


def split_numbers(line):
    """A line as alternating text and numbers: (texts, numbers), len(texts) == len(numbers) + 1."""
    texts, numbers, pos = [], [], 0
    for m in NUMBER.finditer(line):
        # A number glued to letters (`top=16` is fine, `x86_64` or `sha256` is text).
        before = line[m.start() - 1] if m.start() > 0 else " "
        after = line[m.end()] if m.end() < len(line) else " "
        if before.isalpha() or before == "_" or after.isalpha() or after == "_":
            continue
        texts.append(line[pos:m.start()])
        numbers.append(m.group(0))
        pos = m.end()
    texts.append(line[pos:])
    return texts, numbers


def decimals(quoted):
    mantissa = re.split(r"[eE]", quoted)[0]
    return len(mantissa.split(".")[1]) if "." in mantissa else 0


def number_matches(quoted, printed):
    q, p = float(quoted), float(printed)
    if "e" in quoted.lower():
        exp = int(re.split(r"[eE]", quoted)[1])
        step = 10.0 ** (exp - decimals(quoted))
    else:
        step = 10.0 ** (-decimals(quoted))
    return abs(p - q) <= step / 2 * (1 + 1e-9) + 1e-12


def line_matches(quoted, printed):
    qt, qn = split_numbers(normalise(quoted))
    pt, pn = split_numbers(normalise(printed))
    if len(qn) != len(pn):
        return False
    if [normalise(t) for t in qt] != [normalise(t) for t in pt]:
        # Signs belong to the numbers: "x +0.5" and "x 0.5" differ only inside the number.
        return False
    return all(number_matches(a, b) for a, b in zip(qn, pn))


def match(quoted, printed):
    """None when the quote matches; else (quoted line index or None, printed line index or None):
    the furthest quoted line that could not be matched and the printed line most like it among
    those it was tried against (None: the quote or the output ended first)."""
    tried = {}
    memo = {}

    def go(i, j):
        key = (i, j)
        if key in memo:
            return memo[key]
        tried.setdefault(i, set()).add(j)
        if i == len(quoted):
            ok = j == len(printed)
        elif quoted[i].strip() in ELLIPSIS:
            ok = any(go(i + 1, jj) for jj in range(j, len(printed) + 1))
        elif j < len(printed) and line_matches(quoted[i], printed[j]):
            ok = go(i + 1, j + 1)
        else:
            ok = False
        memo[key] = ok
        return ok

    sys.setrecursionlimit(max(10_000, 4 * (len(quoted) + len(printed)) + 1000))
    if go(0, 0):
        return None
    i = max(tried)
    if i == len(quoted):               # the quote ended, the output did not
        return (None, min(j for j in tried[i] if j < len(printed)))
    candidates = sorted(j for j in tried[i] if j < len(printed))
    if not candidates:
        return (i, None)
    target = normalise(quoted[i])
    best = max(candidates, key=lambda j: (difflib.SequenceMatcher(None, target, normalise(printed[j])).ratio(), -j))
    return (i, best)


def strip_blank_edges(lines):
    while lines and not lines[-1].strip():
        lines = lines[:-1]
    while lines and not lines[0].strip():
        lines = lines[1:]
    return lines


def static_checks(readme_path, text, blocks, root):
    problems = []
    size = len(text.encode("utf-8"))
    if size > MAX_BYTES:
        problems.append(f"README.md is {size} bytes, more than {MAX_BYTES}")
    in_code = set()
    for b in blocks:
        for k, line in enumerate(b.lines):
            in_code.add(b.line + 1 + k)
    for n, line in enumerate(text.split("\n"), start=1):
        if len(line) > MAX_COLUMNS:
            where = "code block line" if n in in_code else "line"
            problems.append(f"README.md:{n}: {where} of {len(line)} characters (at most {MAX_COLUMNS})")
    for n, line in enumerate(text.split("\n"), start=1):
        if n in in_code:
            continue
        for target in re.findall(r"\]\(([^)\s]+)\)", line):
            if re.match(r"^[a-z]+:", target) or target.startswith("#"):
                continue
            path = target.split("#")[0]
            if path and not os.path.exists(os.path.join(root, path)):
                problems.append(f"README.md:{n}: link to {path}, which does not exist")
    return problems


def make_workdir(root):
    work = tempfile.mkdtemp(prefix="docs-check-")
    for name in os.listdir(root):
        if name in {".git", ".build"} or name.startswith(".build") or name.startswith(".venv"):
            continue
        os.symlink(os.path.join(root, name), os.path.join(work, name))
    os.makedirs(os.path.join(work, ".cache-empty"))
    return work


def run_block(block, binary, work, timeout):
    script = "set -euo pipefail\nbackpack() { \"$DOCS_CHECK_BACKPACK\" \"$@\"; }\n" + "\n".join(block.lines) + "\n"
    env = dict(os.environ)
    env.update({"DOCS_CHECK_BACKPACK": binary, "HF_HUB_OFFLINE": "1", "COLUMNS": str(MAX_COLUMNS),
                "BACKPACK_CACHE": os.path.join(work, ".cache-empty"),
                "HF_HUB_CACHE": os.path.join(work, ".cache-empty", "hub")})
    started = time.monotonic()
    try:
        r = subprocess.run(["bash", "-c", script], cwd=work, env=env, capture_output=True, text=True,
                           timeout=timeout)
    except subprocess.TimeoutExpired:
        return None, "", f"timed out after {timeout} s", time.monotonic() - started
    return r.returncode, r.stdout, r.stderr, time.monotonic() - started


def main():
    ap = argparse.ArgumentParser(description="Run README.md's runnable blocks and check their quoted output.")
    ap.add_argument("--readme", default="README.md")
    ap.add_argument("--binary", default=".build/release/backpack")
    ap.add_argument("--timeout", type=float, default=120, help="seconds per block (default 120)")
    ap.add_argument("--show", action="store_true", help="print what each block printed")
    ap.add_argument("--static-only", action="store_true", help="size, line lengths and links only")
    ap.add_argument("--keep", action="store_true", help="keep the temporary folder")
    args = ap.parse_args()

    readme = os.path.abspath(args.readme)
    root = os.path.dirname(readme)
    with open(readme, encoding="utf-8") as f:
        text = f.read()
    blocks = fenced_blocks(text)
    problems = static_checks(readme, text, blocks, root)
    for p in problems:
        print(f"docs-check: {p}")
    pairs = runnable_pairs(text, blocks)
    if args.static_only:
        print(f"docs-check: {len(pairs)} runnable block(s) not run (--static-only)")
        return 1 if problems else 0
    binary = os.path.abspath(os.path.join(root, args.binary) if not os.path.isabs(args.binary) else args.binary)
    if not os.access(binary, os.X_OK):
        print(f"docs-check: {binary} is not an executable (build it: make release)")
        return 2
    if not pairs:
        print("docs-check: README.md has no runnable block (```sh run)")
        return 1
    work = make_workdir(root)
    failed = bool(problems)
    try:
        for block, out in pairs:
            name = f"README.md:{block.line} (```{block.info})"
            rc, stdout, stderr, seconds = run_block(block, binary, work, args.timeout)
            if args.show:
                print(f"---- {name}: exit {rc}, {seconds:.1f} s\n{stdout}", end="" if stdout.endswith("\n") else "\n")
            if rc != 0:
                tail = "\n".join(stderr.strip().split("\n")[-5:])
                print(f"docs-check: FAIL {name}: {'exit status ' + str(rc) if rc is not None else tail}")
                if rc is not None and tail:
                    print("  stderr: " + tail.replace("\n", "\n          "))
                failed = True
                continue
            if out is None:
                print(f"docs-check: ok   {name}: ran in {seconds:.1f} s (no quoted output)")
                continue
            quoted = strip_blank_edges(out.lines)
            lead = next((k for k, s in enumerate(out.lines) if s.strip()), 0)
            printed = strip_blank_edges(stdout.rstrip("\n").split("\n")) if stdout.strip() else []
            diff = match(quoted, printed)
            if diff is None:
                print(f"docs-check: ok   {name}: {len(quoted)} quoted line(s) match, {seconds:.1f} s")
                continue
            failed = True
            qi, pj = diff
            print(f"docs-check: FAIL {name}: its output (README.md:{out.line}) differs")
            if qi is not None:
                print(f"  quoted  (README.md:{out.line + 1 + lead + qi}): {quoted[qi]}")
            else:
                print("  quoted: (end of the quote)")
            print(f"  printed (line {pj + 1}): {printed[pj]}" if pj is not None else "  printed: (end of the output)")
    finally:
        if args.keep:
            print(f"docs-check: kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    print("docs-check: " + ("FAILED" if failed else f"passed ({len(pairs)} runnable block(s), "
                             f"{len(text.encode('utf-8'))} bytes)"))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
