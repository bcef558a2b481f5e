#!/usr/bin/env bash
# bf16-quality: does training with the frozen GEMMs in bf16 learn as well as fp32? (issue 21)
# On the quickstart (conf/quickstart.yaml: stories260K, the self-instruct seeds), same seeds:
#  1. the quickstart sweep in each precision (`precision: fp32` / `bf16` added to a copy of the
#     config): its leaderboard order, eval losses and statuses side by side;
#  2. 200 steps of one LoRA adapter (rank 8, LoRA+ ratio 8, the quickstart's other settings) on the
#     fp32 sweep's shards with `train --precision fp32` and `--precision bf16`: the train loss
#     (the mean of the last 10% of steps' batch losses; the last step's alone is one batch of 8) and
#     the final eval loss, and their relative differences (target: within 2%).
# bf16 here means oneDNN bf16 matmuls with f32 accumulation, the same rounding on AMX and on
# AVX512_BF16, so the numbers do not need an AMX machine (speed does; see bench/compare.sh).
# Needs the built jar (./mvnw -B -q package -DskipTests). Prints one summary JSON line last.
# Usage: bench/bf16-quality.sh [--out DIR] [--steps N]
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
out=/tmp/bf16-quality steps=200
while [[ $# -gt 0 ]]; do
  case "$1" in
    --out) out="$2"; shift 2 ;;
    --steps) steps="$2"; shift 2 ;;
    *) echo "bf16-quality: unknown argument $1 (usage: bench/bf16-quality.sh [--out DIR] [--steps N])" >&2; exit 2 ;;
  esac
done
cd "$here"
rm -rf "$out" && mkdir -p "$out"
for p in fp32 bf16; do
  { sed "s/^run_id: quickstart$/run_id: quickstart-$p/" conf/quickstart.yaml; echo "precision: $p"; } \
    > "$out/quickstart-$p.yaml"
  bin/lora-pipeline run --quiet --config "$out/quickstart-$p.yaml" --output "$out/sweep-$p" \
    > "$out/sweep-$p.json"
done
for p in fp32 bf16; do
  bin/lora-pipeline train --quiet --model models/stories260K --data "$out/sweep-fp32/shards" \
    --steps "$steps" --rank 8 --lr-ratio 8 --lr 2e-3 --batch-size 8 --seed 42 \
    --eval-every "$steps" --checkpoint-every 0 --precision "$p" --output "$out/train-$p" \
    > "$out/train-$p.json"
done
/usr/bin/env python3 - "$out" "$steps" <<'PY'
import csv, json, sys
out, steps = sys.argv[1], int(sys.argv[2])
def board(p):
    with open(f"{out}/sweep-{p}/leaderboard.csv") as f:
        return list(csv.DictReader(f))
def losses(p):
    with open(f"{out}/train-{p}/metrics.csv") as f:
        rows = list(csv.DictReader(f))
    train = [float(r["train_loss"]) for r in rows if r.get("train_loss") not in (None, "")]
    evals = [float(r["eval_loss"]) for r in rows if r.get("eval_loss") not in (None, "")]
    tail = train[-max(1, len(train) // 10):]
    return sum(tail) / len(tail), evals[-1], train[-1]
for p in ("fp32", "bf16"):
    for r in board(p):
        print(f"sweep {p}: {r['adapter_id']} eval_loss {r['eval_loss']} steps {r['steps']} status {r['status']}")
order = {p: [r["adapter_id"] for r in board(p)] for p in ("fp32", "bf16")}
f, b = losses("fp32"), losses("bf16")
rel = lambda x, y: round(abs(x - y) / abs(x), 5)
print(json.dumps({"case": "bf16 against fp32, quickstart", "steps": steps,
                  "train_loss_fp32": round(f[0], 5), "train_loss_bf16": round(b[0], 5),
                  "train_rel_diff": rel(f[0], b[0]),
                  "last_step_loss_fp32": f[2], "last_step_loss_bf16": b[2],
                  "eval_loss_fp32": f[1], "eval_loss_bf16": b[1], "eval_rel_diff": rel(f[1], b[1]),
                  "target_rel_diff": 0.02,
                  "sweep_order_fp32": order["fp32"], "sweep_order_bf16": order["bf16"],
                  "same_ranking": order["fp32"] == order["bf16"]}))
PY
