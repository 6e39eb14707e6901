#!/usr/bin/env bash
# make test-slurm: docs/SHARDING.md's Slurm example, run for real on a single-node cluster of
# this machine, checked against the same evaluation run unsharded.
#
#   Tools/slurm/run.sh BACKPACK_BINARY
#
# 1. installs Debian's slurmctld, slurmd, slurm-client and munge (and python3-h5py, for the
#    check) when missing; needs root, like the daemons it starts;
# 2. starts munged, slurmctld and slurmd under a temporary slurm.conf (Tools/slurm/cluster.sh);
# 3. submits Tools/slurm/eval-shards.sbatch (an array job: 3 shards of a sweep x 2 suites) and
#    the merge with --dependency=afterok, as Tools/slurm/submit.sh (both verbatim in
#    docs/SHARDING.md), from a temporary folder laid out like a checkout, and waits for them;
# 4. runs the same evaluation unsharded and compares the merged run with it, every dataset and
#    attribute (Tools/slurm/compare_runs.py);
# 5. stops everything it started (on any exit) and removes the temporary folder.
#
# Environment:
#   SLURM_MERGE_TOLERANCE  largest |merged - unsharded| allowed per stored number; default 0:
#                          bit-identical, as docs/SHARDING.md promises
#   SLURM_TEST_TIMEOUT     seconds to wait for the jobs (default 600)
#   SLURM_TEST_KEEP=1      keep the temporary folder (logs, shards, results) for inspection
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
tolerance=${SLURM_MERGE_TOLERANCE:-0}
timeout=${SLURM_TEST_TIMEOUT:-600}
t_start=$SECONDS

say() { echo "test-slurm: $*"; }
fail() { say "FAILED: $*"; exit 1; }

[ $# -eq 1 ] || { echo "usage: $0 BACKPACK_BINARY" >&2; exit 2; }
binary="$(cd "$(dirname "$1")" && pwd)/$(basename "$1")"
[ -x "$binary" ] || fail "$1 is not an executable (build it with make release)"
[ "$(id -u)" -eq 0 ] || fail "needs root: it installs Debian packages and runs slurmctld, slurmd and munged as root"

source "$here/cluster.sh"
cluster_install slurmctld slurmd slurm-client munge python3-h5py
# Debian's Python, which has python3-h5py (a python3 earlier on the PATH may not).
py=/usr/bin/python3

# The Slurm example in docs/SHARDING.md is the one run here: both files appear there verbatim.
for f in eval-shards.sbatch submit.sh; do
    "$py" - "$here/$f" "$repo/docs/SHARDING.md" <<'EOF' || fail "docs/SHARDING.md does not show Tools/slurm/$f as it is"
import sys
script, doc = (open(p, encoding="utf-8").read() for p in sys.argv[1:])
sys.exit(0 if "```bash\n" + script + "```" in doc else 1)
EOF
done

tmp="$(mktemp -d "${TMPDIR:-/tmp}/backpack-test-slurm.XXXXXX")"
chmod 755 "$tmp"    # munged wants every folder above its socket searchable by all
cleanup() {
    local status=$?
    cluster_stop || status=1
    if [ "${SLURM_TEST_KEEP:-0}" = 1 ]; then say "kept $tmp"; else rm -rf "$tmp"; fi
    exit $status
}
trap cleanup EXIT
trap 'exit 130' INT TERM

t0=$SECONDS
cluster_start "$tmp/cluster"
say "cluster up in $((SECONDS - t0)) s"

# The jobs run in a folder that looks like a checkout (the example's paths are relative to
# one), so that their shards, logs and results stay out of the repository.
work="$tmp/work"
mkdir -p "$work"
for d in Data Edits Evaluations Models Tools; do ln -s "$repo/$d" "$work/$d"; done
mkdir -p "$tmp/bin"
ln -s "$binary" "$tmp/bin/backpack"
export PATH="$tmp/bin:$PATH"
cd "$work"

t0=$SECONDS
read -r jid mid < <(Tools/slurm/submit.sh)
say "submitted array job $jid (eval-shards.sbatch) and merge job $mid (afterok:$jid)"
deadline=$((SECONDS + timeout))
until cluster_queue_empty; do
    if [ $SECONDS -ge $deadline ]; then squeue; fail "the jobs did not finish within $timeout s"; fi
    sleep 2
done
t_jobs=$((SECONDS - t0))

# Every array task and the merge must have completed (a failed shard cancels the merge:
# DependencyParameters=kill_invalid_depend).
states=$(for j in "$jid" "$mid"; do
    scontrol show job -o "$j" | awk '{ for (i = 1; i <= NF; i++) if ($i ~ /^(JobId|ArrayTaskId|JobName|JobState|ExitCode)=/) printf "%s ", $i; print "" }'
done)
echo "$states"
completed=$(grep -c 'JobState=COMPLETED' <<<"$states" || true)
if [ "$completed" -ne 4 ]; then
    for f in logs/*.log; do echo "--- $f"; tail -20 "$f"; done
    fail "expected 3 array tasks and the merge COMPLETED, got $completed"
fi
say "3 shards and the merge completed in $t_jobs s"
grep -h -E '^(merged|wrote|Wrote)|shard' logs/merge-*.log | head -5 || true

# The same evaluation unsharded (the arguments of eval-shards.sbatch without --shard; the
# comparison checks that both runs have the same plan).
t0=$SECONDS
backpack eval --suite pronoun-bias --suite crows-pairs --edit Edits/sweep-project-strength.yaml \
    --out unsharded.h5 >logs/unsharded.log 2>&1 || { tail -20 logs/unsharded.log; fail "the unsharded eval failed"; }
say "unsharded run in $((SECONDS - t0)) s"

"$py" "$here/compare_runs.py" results.h5 unsharded.h5 --tolerance "$tolerance" || fail "the merged run differs from the unsharded run"
say "passed in $((SECONDS - t_start)) s"
