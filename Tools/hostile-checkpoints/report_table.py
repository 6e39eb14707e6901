#!/usr/bin/env python3
"""Turns the HardeningTests report (HARDENING_REPORT=FILE swift test --filter HardeningTests)
into the Markdown tables of docs/HARDENING.md.

    HARDENING_REPORT=/tmp/h.tsv swift test --skip-build --filter HardeningTests
    python3 Tools/hostile-checkpoints/report_table.py /tmp/h.tsv > /tmp/tables.md
"""
import collections
import sys

rows = collections.defaultdict(list)
for line in open(sys.argv[1], encoding="utf-8"):
    parts = line.rstrip("\n").split("\t")
    if len(parts) >= 3:
        rows[parts[0]].append(parts[1:])


def cell(s):
    return s.replace("|", "\\|").replace("\n", " ")


api = {r[0]: r for r in rows["api"]}
cli = {r[0]: r for r in rows["cli"]}
print("### Hostile pytorch_model.bin corpus (`Tests/HardeningTests/Corpus`)\n")
print("Each file is opened with `TorchCheckpoint(url:)` and with `backpack info DIR` (DIR = the tiny")
print("config.json + the file as pytorch_model.bin). No payload ever created its marker file; every")
print("CLI run exited with status 1 (no signal). The message is `TorchCheckpoint`'s reason (the CLI")
print("prints the same, prefixed by `Error: DIR/pytorch_model.bin: `).\n")
print("| file | what it tries | error |")
print("|---|---|---|")
for name in sorted(api):
    _, why, msg = api[name][:3]
    if msg.startswith("(loads"):
        c = cli.get(name)
        msg = "loads (harmless); `backpack info`: " + (c[2].split(": ", 2)[-1][:120] + "…" if c else "")
    print(f"| `{name}` | {cell(why)} | {cell(msg)} |")
print("\n### Size claims (refused before allocating)\n")
print("Run through the CLI; peak RSS is the binary's own `ru_maxrss` (forked and exec'd from a small python3, see `Support.swift`); `backpack info` on the tiny model peaks at about 31 MiB. Before the tokenizer fix, the `vocab.json` claim peaked at 415 MiB and loaded.\n")
print("| claim | peak RSS | error |")
print("|---|---|---|")
for label, rss, msg in sorted(r[:3] for r in rows["size"]):
    print(f"| {cell(label)} | {rss} | {cell(msg[:300])} |")
print("\n### SIGKILL during writes\n")
print("| command | delay: state of the target after the kill |")
print("|---|---|")
for r in rows["kill"]:
    print(f"| {cell(r[0])} | {cell(r[1])} |")
if rows["output"]:
    print("\n### Outputs checked before any work (`ReliabilityTests`)\n")
    print("Each writing command checks its output first (`OutputCheck` in BackpackIO, `ResultsFile.checkOutput`);")
    print("every case exits with status 1 within 2 s, before the model is loaded. The tests run as root,")
    print("where permission bits do not stop writes: the unwritable parents are a regular file and /proc.\n")
    print("| command | error |")
    print("|---|---|")
    for label, msg in (r[:2] for r in rows["output"]):
        print(f"| `{cell(label)}` | {cell(msg[:300])} |")
if rows["number"] or rows["lock"] or rows["disk"]:
    print("\n### Numbers, two writers, a full disk (`ReliabilityTests`)\n")
    print("Full disk: `RLIMIT_FSIZE` set (and `SIGXFSZ` ignored) in the child before exec, so writes fail with")
    print("EFBIG; after each failure the previous output hashes (SHA-256) as before and no temporary is left.\n")
    print("| case | what it gets |")
    print("|---|---|")
    for kind in ("number", "lock", "disk"):
        for label, msg in (r[:2] for r in rows[kind]):
            print(f"| {cell(label)} | {cell(msg[:400])} |")
