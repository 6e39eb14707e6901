"""Hugging Face interoperability of backpack-edit's model folders. Run through run.sh.

  python check_interop.py --backpack BACKPACK_BINARY --repo REPOSITORY_ROOT

1. The shipped modeling code (Sources/BackpackEditing/HuggingFace) against the PyTorch reference
   outputs in Tests/Fixtures/tiny/expected.safetensors (every input, batch included): logits
   within 1e-4, senses and contextualization within 1e-5; and on the legacy pytorch_model.bin.
2. For (a) the tiny fixture, given a base config.json with the extra keys a published config
   carries, (b) the embedded demo model Models/backpack-demo and (c) the demo model under concept
   erasure (`erase`: LEACE of the profession nouns' senses, and of one sense of every token):
   `backpack edit` with a word-level and a vocabulary-wide edit file; the edited folder loaded with
   AutoModelForCausalLM.from_pretrained(folder, trust_remote_code=True) and DEFAULT settings gives
   the logits of `backpack forward` on the folder, and of `backpack forward` on the base with
   the same --edit files (1e-4); the base config's keys survive; a missing or altered overrides
   file, a load without remote code and a model built without its overrides are refused.
3. A vocabulary-wide erase alone (Edits/leace-gender.yaml) folds into final_mlp.c_proj only, with
   no overrides file, and transformers gives the logits of `backpack forward --edit` (1e-4).
Prints one PASS/FAIL line per check; exits 1 if any failed.
"""
import argparse
import copy
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile

import torch
import yaml
from safetensors.torch import load_file
from transformers import AutoConfig, AutoModelForCausalLM

LOGITS_TOL = 1e-4
OTHER_TOL = 1e-5
AUTO_MAP = {
    "AutoConfig": "configuration_backpack_gpt2.BackpackGPT2Config",
    "AutoModelForCausalLM": "modeling_backpack_gpt2.BackpackGPT2LMHeadModel",
}
CODE_FILES = ["configuration_backpack_gpt2.py", "modeling_backpack_gpt2.py"]
CODE_DIR = None  # Sources/BackpackEditing/HuggingFace, set in main

failures = []
passes = []


def report(name, ok, detail=""):
    print(f"{'PASS' if ok else 'FAIL'} {name}" + (f": {detail}" if detail else ""), flush=True)
    (passes if ok else failures).append(name)


def check(name, fn):
    """fn() returns (ok, detail); an exception is a failure with its message."""
    try:
        ok, detail = fn()
    except Exception as error:  # a check that crashes has failed; say why
        ok, detail = False, f"{type(error).__name__}: {error}"
    report(name, ok, detail)


def expect_refusal(name, fn, words):
    """fn() must raise, with a message containing one of `words`."""
    try:
        fn()
    except Exception as error:
        message = str(error)
        ok = any(w in message for w in words)
        report(name, ok, f"refused: {type(error).__name__}: {message.splitlines()[0][:160]}")
        return
    report(name, False, "loaded/ran without error")


def sha256(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def max_diff(a, b):
    if a.shape != b.shape:
        raise ValueError(f"shapes differ: {tuple(a.shape)} vs {tuple(b.shape)}")
    return (a.float() - b.float()).abs().max().item()


def load(folder, **kwargs):
    """Loads like a user would: Auto class, remote code, default attention."""
    model = AutoModelForCausalLM.from_pretrained(folder, trust_remote_code=True, **kwargs)
    return model.eval()


def run(cmd):
    result = subprocess.run(cmd, capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} exited {result.returncode}: {result.stderr.strip()[:400]}")
    return result.stdout


class Backpack:
    def __init__(self, binary, work):
        self.binary, self.work, self.count = binary, work, 0

    def edit(self, model, edits, out, *extra):
        run([self.binary, "edit", "--model", model, *sum((["--edit", e] for e in edits), []), "--out", out, *extra])

    def forward(self, model, edits=(), ids=None, text=None):
        self.count += 1
        out = os.path.join(self.work, f"forward-{self.count}.safetensors")
        source = ["--ids", ",".join(map(str, ids))] if ids is not None else ["--text", text]
        run([self.binary, "forward", "--model", model, *sum((["--edit", e] for e in edits), []), *source, "--out", out])
        return load_file(out)


def add_modeling_code(folder, code_dir):
    for name in CODE_FILES:
        shutil.copy(os.path.join(code_dir, name), folder)
    path = os.path.join(folder, "config.json")
    with open(path) as f:
        config = json.load(f)
    config["auto_map"] = dict(AUTO_MAP)
    with open(path, "w") as f:
        json.dump(config, f, indent=2)


# -- 1. reference parity ----------------------------------------------------------------------

def reference_parity(repo, code_dir, work):
    tiny = os.path.join(repo, "Tests", "Fixtures", "tiny")
    folder = os.path.join(work, "tiny-reference")
    os.makedirs(folder)
    for name in ("config.json", "model.safetensors"):
        shutil.copy(os.path.join(tiny, name), folder)
    add_modeling_code(folder, code_dir)
    expected = load_file(os.path.join(tiny, "expected.safetensors"))
    model = load(folder)
    check("fixture: default load picks eager attention", lambda: (
        model.config._attn_implementation == "eager", f"attn_implementation {model.config._attn_implementation}"))
    inputs = sorted({k[: -len("_input_ids")] for k in expected if k.endswith("_input_ids") and "_" not in k[: -len("_input_ids")]})
    for name in inputs:
        def compare(name=name):
            with torch.no_grad():
                out = model(expected[f"{name}_input_ids"].long())
            d = {key: max_diff(getattr(out, key), expected[f"{name}_{key}"]) for key in ("logits", "senses", "contextualization")}
            ok = d["logits"] <= LOGITS_TOL and d["senses"] <= OTHER_TOL and d["contextualization"] <= OTHER_TOL
            shape = tuple(expected[f"{name}_input_ids"].shape)
            return ok, (f"input {name} {shape}: max|d| logits {d['logits']:.3g} (tol {LOGITS_TOL}), senses {d['senses']:.3g}, "
                        f"contextualization {d['contextualization']:.3g} (tol {OTHER_TOL})")
        check(f"fixture: modeling code vs reference outputs, {name}", compare)

    legacy = os.path.join(work, "tiny-legacy-bin")
    shutil.copytree(os.path.join(repo, "Tests", "Fixtures", "tiny-legacy-bin"), legacy)
    add_modeling_code(legacy, code_dir)

    def legacy_bin():
        m, info = AutoModelForCausalLM.from_pretrained(legacy, trust_remote_code=True, output_loading_info=True)
        with torch.no_grad():
            d = max_diff(m.eval()(expected["batch_input_ids"].long()).logits, expected["batch_logits"])
        bad = {k: v for k, v in info.items() if v and k in ("missing_keys", "mismatched_keys")}
        return not bad and d <= LOGITS_TOL, f"pytorch_model.bin with aliases and attn buffers: max|d| logits {d:.3g} (tol {LOGITS_TOL}), {bad or 'no missing keys'}"
    check("fixture: legacy pytorch_model.bin loads", legacy_bin)


# -- 2. edited folders -----------------------------------------------------------------------

def published_like_base(repo, work):
    """The tiny fixture with a config.json carrying the keys of the published
    stanfordnlp/backpack-gpt2 config.json (model_type gpt2, architectures, auto_map into the Hub
    repository's own code, dtype, transformers_version, dropout rates) plus unknown extras, and
    a model card whose front matter names a licence."""
    tiny = os.path.join(repo, "Tests", "Fixtures", "tiny")
    base = os.path.join(work, "tiny-base")
    os.makedirs(base)
    shutil.copy(os.path.join(tiny, "model.safetensors"), base)
    with open(os.path.join(tiny, "config.json")) as f:
        config = json.load(f)
    config.update({
        "_name_or_path": "stanfordnlp/backpack-gpt2",
        "auto_map": {
            "AutoConfig": "stanfordnlp/backpack-gpt2--configuration_backpack_gpt2.BackpackGPT2Config",
            "AutoModelForCausalLM": "stanfordnlp/backpack-gpt2--modeling_backpack_gpt2.BackpackGPT2LMHeadModel",
        },
        "n_ctx": config["n_positions"],
        "torch_dtype": "float32",
        "task_specific_params": {"text-generation": {"do_sample": True, "max_length": 50}},
        "x_backpack_interop_extra": {"nested": [1, 2.5, None, "caf\u00e9"], "flag": False},
    })
    with open(os.path.join(base, "config.json"), "w") as f:
        json.dump(config, f, indent=2)
    with open(os.path.join(base, "README.md"), "w") as f:
        f.write("---\nlicense: apache-2.0\nlibrary_name: transformers\n---\n# tiny base\n")
    return base, config


def edited_folder_checks(label, bp, base, edited, edits, base_config, probes, expect_card):
    with open(os.path.join(edited, "config.json")) as f:
        config = json.load(f)
    edit = config.get("backpack_edit", {})

    def keys_survive():
        lost = [k for k in base_config if k not in ("auto_map", "model_type") and config.get(k, object()) != base_config[k]]
        return not lost, f"{len(base_config)} base keys, changed or lost: {lost or 'none'}"
    check(f"{label}: base config.json keys kept verbatim", keys_survive)
    check(f"{label}: auto_map names the shipped code, base auto_map kept under backpack_edit", lambda: (
        config.get("auto_map") == AUTO_MAP and edit.get("base_auto_map") == base_config.get("auto_map")
        and config.get("model_type") == "backpack-gpt2" and edit.get("base_model_type") == base_config.get("model_type")
        and all(os.path.isfile(os.path.join(edited, n)) for n in CODE_FILES),
        f"auto_map {config.get('auto_map')}, model_type {config.get('model_type')}"))
    # the binary ships its build's copy: a stale build would test other code than the sources
    check(f"{label}: shipped modeling code is the repository's (binary up to date)", lambda: (
        all(sha256(os.path.join(edited, n)) == sha256(os.path.join(CODE_DIR, n)) for n in CODE_FILES), ""))
    overrides = os.path.join(edited, edit.get("sense_overrides", "sense_overrides.safetensors"))
    check(f"{label}: config declares the overrides file with its SHA-256", lambda: (
        os.path.isfile(overrides) and edit.get("sense_overrides_sha256") == sha256(overrides),
        f"{edit.get('sense_overrides')} {edit.get('sense_overrides_sha256', '')[:12]}..."))

    model, info = AutoModelForCausalLM.from_pretrained(edited, trust_remote_code=True, output_loading_info=True)
    model.eval()
    check(f"{label}: default load (no attn_implementation): eager, every weight found", lambda: (
        model.config._attn_implementation == "eager" and not info["missing_keys"] and not info["unexpected_keys"]
        and not info["mismatched_keys"], f"attn {model.config._attn_implementation}, {len(model.sense_overrides)} overridden token ids, "
        f"missing {info['missing_keys']}, unexpected {info['unexpected_keys']}"))
    overridden = set(model.sense_overrides)
    for probe in probes:
        def compare(probe=probe):
            saved = bp.forward(edited, **probe)
            ids = saved["input_ids"].long()
            live = bp.forward(base, edits=edits, ids=ids.tolist())
            plain = bp.forward(base, ids=ids.tolist())
            # the vocabulary-wide edit alone: the word-level overrides must matter on top of it
            no_words = bp.forward(base, edits=edits[1:], ids=ids.tolist())
            with torch.no_grad():
                logits = model(ids[None]).logits[0]
            d_saved, d_live = max_diff(logits, saved["logits"]), max_diff(logits, live["logits"])
            effect = max_diff(saved["logits"], plain["logits"])
            word_effect = max_diff(saved["logits"], no_words["logits"])
            hit = sorted(overridden & set(ids.tolist()))
            ok = d_saved <= LOGITS_TOL and d_live <= LOGITS_TOL and effect > 1e-3 and word_effect > 1e-3 and hit
            return ok, (f"{len(ids)} tokens, overridden ids present {hit}: max|d| logits vs forward(edited) {d_saved:.3g}, "
                        f"vs forward(base --edit) {d_live:.3g} (tol {LOGITS_TOL}); the edit moves logits by {effect:.3g}, "
                        f"its word-level part by {word_effect:.3g} (must be > 1e-3)")
        check(f"{label}: transformers logits == backpack forward, {str(probe)[:40]}", compare)

    # refusals: never a model without its edit
    expect_refusal(f"{label}: refused without trust_remote_code", lambda: AutoModelForCausalLM.from_pretrained(
        edited, trust_remote_code=False), ["trust_remote_code"])
    missing = os.path.join(bp.work, f"{label}-missing")
    shutil.copytree(edited, missing)
    os.remove(os.path.join(missing, os.path.basename(overrides)))
    expect_refusal(f"{label}: refused when the overrides file is missing", lambda: load(missing), ["missing"])
    altered = os.path.join(bp.work, f"{label}-altered")
    shutil.copytree(edited, altered)
    with open(os.path.join(altered, os.path.basename(overrides)), "r+b") as f:
        f.seek(-1, os.SEEK_END)
        last = f.read(1)
        f.seek(-1, os.SEEK_END)
        f.write(bytes([last[0] ^ 1]))
    expect_refusal(f"{label}: refused when the overrides file's SHA-256 differs", lambda: load(altered), ["SHA-256"])

    def from_config():
        m = AutoModelForCausalLM.from_config(AutoConfig.from_pretrained(edited, trust_remote_code=True), trust_remote_code=True)
        m.eval()(torch.tensor([[0, 1, 2]]))
    expect_refusal(f"{label}: a model built without its overrides refuses to run", from_config, ["not loaded"])

    def hub_cache(name, drop=None):
        """The folder laid out as huggingface_hub's cache of repo example/NAME, for offline loads."""
        cache = os.path.join(bp.work, f"hub-{name}")
        snapshot = os.path.join(cache, f"models--example--{name}", "snapshots", "0" * 40)
        shutil.copytree(edited, snapshot)
        if drop:
            os.remove(os.path.join(snapshot, drop))
        os.makedirs(os.path.join(cache, f"models--example--{name}", "refs"))
        with open(os.path.join(cache, f"models--example--{name}", "refs", "main"), "w") as f:
            f.write("0" * 40)
        return cache

    def hub():
        cache = hub_cache(f"{label}-edited")
        m = load(f"example/{label}-edited", cache_dir=cache, local_files_only=True)
        ids = torch.tensor([sorted(overridden)[:3] + [1, 2, 3]])
        with torch.no_grad():
            d = max_diff(m(ids).logits, model(ids).logits)
        return d == 0.0 and set(m.sense_overrides) == overridden, (
            f"repo id through the Hub cache (offline): overrides fetched with hf_hub_download, max|d| logits vs the folder {d:.3g} (exact)")
    check(f"{label}: Hub repo id loads the overrides", hub)
    expect_refusal(f"{label}: Hub repo without its overrides file is refused", lambda: load(
        f"example/{label}-nooverrides", cache_dir=hub_cache(f"{label}-nooverrides", os.path.basename(overrides)),
        local_files_only=True), ["refusing"])

    def resave():
        out = os.path.join(bp.work, f"{label}-resaved")
        model.save_pretrained(out)
        again = load(out)
        ids = torch.tensor([sorted(overridden)[:3] + [1, 2, 3]])
        with torch.no_grad():
            d = max_diff(again(ids).logits, model(ids).logits)
        return d == 0.0 and set(again.sense_overrides) == overridden, f"save_pretrained + reload: max|d| logits {d:.3g} (exact), {len(again.sense_overrides)} overrides"
    check(f"{label}: save_pretrained keeps the edit", resave)

    def generate():
        ids = torch.tensor([sorted(overridden)[:2] + [1]])
        with torch.no_grad():
            out = model.generate(ids, max_new_tokens=5, do_sample=False, pad_token_id=model.config.eos_token_id)
            manual = ids
            for _ in range(5):
                manual = torch.cat([manual, model(manual).logits[:, -1:].argmax(-1)], dim=1)
        return torch.equal(out, manual), f"greedy generate {out[0, ids.shape[1]:].tolist()} vs argmax loop {manual[0, ids.shape[1]:].tolist()}"
    check(f"{label}: generate() uses the edited model", generate)

    def card():
        with open(os.path.join(edited, "README.md")) as f:
            text = f.read()
        front = yaml.safe_load(text.split("---\n")[1])
        want = {k: v for k, v in expect_card.items()}
        ok = all(front.get(k) == v for k, v in want.items()) and set(["backpack", "backpack-edit", "model-editing"]) <= set(front.get("tags", []))
        with open(os.path.join(edited, "edit-manifest.json")) as f:
            manifest = json.load(f)
        texts_ok = all(e["text"] in text for e in manifest["edits"])
        return ok and texts_ok, f"front matter {front}, edit files verbatim in the card: {texts_ok}"
    check(f"{label}: model card front matter and edit files", card)

    def manifest():
        with open(os.path.join(edited, "edit-manifest.json")) as f:
            data = json.load(f)
        bad_keys, absolute = [], []

        def walk(value, where):
            if isinstance(value, dict):
                for k, v in value.items():
                    if k != k.lower() or "-" in k or " " in k:
                        bad_keys.append(f"{where}.{k}")
                    walk(v, f"{where}.{k}")
            elif isinstance(value, list):
                for i, v in enumerate(value):
                    walk(v, f"{where}[{i}]")
            elif isinstance(value, str) and (value.startswith("/") or os.path.isabs(value) or bp.work in value):
                absolute.append(where)
        walk(data, "")
        return not bad_keys and not absolute, f"non-snake_case keys {bad_keys or 'none'}, absolute paths {absolute or 'none'}"
    check(f"{label}: edit-manifest.json snake_case, no absolute paths", manifest)


def folded_only_checks(bp, base, edit, probes):
    """A vocabulary-wide erase alone: an affine map of one sense of every token, folded exactly
    into the sense network's last layer (final_mlp.c_proj's sense-l columns and bias). The folder
    has no overrides file; transformers gives `backpack forward --edit` on the base."""
    folder = os.path.join(bp.work, "demo-leace-vocabulary")
    bp.edit(base, [edit], folder)
    check("demo-leace-vocabulary: folded edit, no sense overrides file", lambda: (
        not os.path.exists(os.path.join(folder, "sense_overrides.safetensors"))
        and "sense_overrides" not in json.load(open(os.path.join(folder, "config.json")))["backpack_edit"], ""))
    base_weights = load_file(os.path.join(base, "model.safetensors"))
    weights = load_file(os.path.join(folder, "model.safetensors"))
    changed = sorted(k for k in weights if not torch.equal(weights[k], base_weights[k]))
    check("demo-leace-vocabulary: only final_mlp.c_proj changes", lambda: (
        changed == ["backpack.sense_network.final_mlp.c_proj.bias", "backpack.sense_network.final_mlp.c_proj.weight"],
        f"changed tensors: {changed}"))
    model = load(folder)
    for probe in probes:
        def compare(probe=probe):
            saved = bp.forward(folder, **probe)
            ids = saved["input_ids"].long()
            live = bp.forward(base, edits=[edit], ids=ids.tolist())
            plain = bp.forward(base, ids=ids.tolist())
            with torch.no_grad():
                logits = model(ids[None]).logits[0]
            d_live, effect = max_diff(logits, live["logits"]), max_diff(saved["logits"], plain["logits"])
            return d_live <= LOGITS_TOL and effect > 1e-3, (
                f"{len(ids)} tokens: max|d| logits vs forward(base --edit) {d_live:.3g} (tol {LOGITS_TOL}); "
                f"the erasure moves logits by {effect:.3g} (must be > 1e-3)")
        check(f"demo-leace-vocabulary: transformers logits == backpack forward --edit, {str(probe)[:40]}", compare)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--backpack", required=True)
    parser.add_argument("--repo", required=True)
    args = parser.parse_args()
    repo = os.path.abspath(args.repo)
    global CODE_DIR
    code_dir = CODE_DIR = os.path.join(repo, "Sources", "BackpackEditing", "HuggingFace")
    work = tempfile.mkdtemp(prefix="backpack-hf-interop-")
    try:
        print(f"torch {torch.__version__}, transformers {__import__('transformers').__version__}, work folder {work}")
        check("setup: reference parity ran", lambda: (reference_parity(repo, code_dir, work) is None, ""))
        bp = Backpack(args.backpack, work)

        # (a) the tiny fixture with a published-like config
        base, base_config = published_like_base(repo, work)
        vocab_tiny = os.path.join(work, "tiny-vocabulary.yaml")
        with open(vocab_tiny, "w") as f:
            f.write("schema: backpack-edit/1\nname: tiny-vocabulary-projection\ninterventions:\n"
                    "  - scope: vocabulary\n    senses: [1]\n    project_out:\n"
                    "      direction: {embedding_difference: [{token: 383}, {token: 239}]}\n")
        edits = [os.path.join(repo, "Tests", "EditingTests", "Edits", "scale0.yaml"), vocab_tiny]
        edited = os.path.join(work, "tiny-edited")
        bp.edit(base, edits, edited, "--base-model-id", "example/tiny-backpack")
        expected = load_file(os.path.join(repo, "Tests", "Fixtures", "tiny", "expected.safetensors"))
        probes = [{"ids": expected["seq2_input_ids"][0].long().tolist() + [73, 259, 421]},
                  {"ids": expected["seq3_input_ids"][0].long().tolist()[:60] + [421, 5, 73, 9]}]
        edited_folder_checks("tiny", bp, base, edited, edits, base_config, probes,
                             {"base_model": "example/tiny-backpack", "license": "apache-2.0", "library_name": "transformers"})

        # (b) the embedded demo model, word-level edit by localization plus a vocabulary-wide one
        demo = os.path.join(repo, "Models", "backpack-demo")
        with open(os.path.join(demo, "config.json")) as f:
            demo_config = json.load(f)
        vocab_demo = os.path.join(work, "demo-vocabulary.yaml")
        with open(vocab_demo, "w") as f:
            f.write("schema: backpack-edit/1\nname: demo-vocabulary-projection\ninterventions:\n"
                    "  - scope: vocabulary\n    senses: [0, 7]\n    project_out:\n"
                    "      direction: {embedding_difference: [he, she]}\n")
        demo_edits = [os.path.join(repo, "Edits", "remove-gender-sense.yaml"), vocab_demo]
        demo_edited = os.path.join(work, "demo-edited")
        bp.edit(demo, demo_edits, demo_edited)
        probes = [{"text": "My nurse said that she would see the mechanic, and the teacher said that"},
                  {"text": "The librarian came into the room. When the secretary and the farmer"}]
        edited_folder_checks("demo", bp, demo, demo_edited, demo_edits, demo_config, probes, {"library_name": "transformers"})

        # (c) concept erasure (erase, LEACE) on the demo model: word-level (sense overrides of the
        # profession nouns) plus vocabulary-wide (folded into final_mlp.c_proj)
        leace_edits = [os.path.join(repo, "Tests", "Fixtures", "leace", "demo-leace-professions.yaml"),
                       os.path.join(repo, "Edits", "leace-gender.yaml")]
        leace_edited = os.path.join(work, "demo-leace-edited")
        bp.edit(demo, leace_edits, leace_edited)
        edited_folder_checks("demo-leace", bp, demo, leace_edited, leace_edits, demo_config, probes, {"library_name": "transformers"})
        folded_only_checks(bp, demo, os.path.join(repo, "Edits", "leace-gender.yaml"), probes)
    finally:
        if failures:
            print(f"work folder kept for inspection: {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    if failures:
        print("failed: " + "; ".join(failures))
    print(f"hf-interop: {len(passes)} passed, {len(failures)} failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
