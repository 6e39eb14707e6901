#!/usr/bin/env bash
# The one GPU run that produced Models/backpack-demo: four training runs side by side on one
# GPU (the model is far too small to fill it), each with the same time budget; the run with the
# lowest validation loss (validation = part of the training split, never the held-out split)
# is kept.  Usage:  gpu_sweep.sh DATA_DIR OUT_DIR TIME_BUDGET_SECONDS
set -u
DATA=$1; OUT=$2; BUDGET=${3:-390}
HERE=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$OUT" /tmp/sweep
export PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
python3 -c "import torch, tokenizers, safetensors, numpy; print('torch', torch.__version__, 'cuda', torch.cuda.is_available())"
declare -A RUNS=(
  [A]="--epochs 8  --lr 2e-3 --dropout 0.1"
  [B]="--epochs 16 --lr 2e-3 --dropout 0.1"
  [C]="--epochs 32 --lr 2e-3 --dropout 0.1"
  [D]="--epochs 16 --lr 4e-3 --dropout 0.1"
)
for r in A B C D; do
  python3 "$HERE/train.py" --data "$DATA" --out /tmp/sweep/$r --time-budget "$BUDGET" --seed 1234 \
    ${RUNS[$r]} ${EXTRA_ARGS:-} > /tmp/sweep/$r.log 2>&1 &
done
# progress: print the newest line of each log every 30 s
while [ "$(jobs -rp | wc -l)" -gt 0 ]; do
  sleep 30
  for r in A B C D; do echo "[$r] $(tail -n 1 /tmp/sweep/$r.log)"; done
done
wait
for r in A B C D; do echo "===== run $r: ${RUNS[$r]}"; cat /tmp/sweep/$r.log; done > "$OUT/sweep_logs.txt"
python3 - "$OUT" <<'EOF'
import json, os, shutil, sys
out = sys.argv[1]
res = {}
for r in "ABCD":
    p = f"/tmp/sweep/{r}/train_log.json"
    if os.path.exists(p):
        j = json.load(open(p))
        res[r] = {k: j[k] for k in ("val_loss_fp32", "val_ppl_fp32", "heldout_ppl", "steps", "tokens_seen",
                                    "epochs_seen", "train_seconds", "best_step", "stop_reason", "gpu")}
        res[r]["args"] = {k: j["args"][k] for k in ("epochs", "lr", "dropout", "batch_size")}
best = min(res, key=lambda r: res[r]["val_loss_fp32"]) if res else None
json.dump({"runs": res, "chosen": best, "rule": "lowest validation loss"}, open(f"{out}/sweep_summary.json", "w"), indent=1)
print(json.dumps({"runs": res, "chosen": best}, indent=1))
if best:
    os.makedirs(f"{out}/model", exist_ok=True)
    for f in ("model.safetensors", "config.json", "train_log.json"):
        shutil.copy(f"/tmp/sweep/{best}/{f}", f"{out}/model/{f}")
EOF
ls -la "$OUT" "$OUT/model"
