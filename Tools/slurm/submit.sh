#!/bin/bash
# submit.sh: the array job, then the merge once every task has succeeded; prints both job ids.
set -euo pipefail
mkdir -p shards logs
jid=$(sbatch --parsable Tools/slurm/eval-shards.sbatch)
# afterok on an array job waits for every task to succeed.
mid=$(sbatch --parsable --dependency=afterok:${jid} --job-name=backpack-merge --output=logs/merge-%j.log \
             --wrap "backpack merge shards/results-*.h5 --out results.h5")
echo "${jid} ${mid}"
