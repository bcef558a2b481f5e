#!/usr/bin/env bash
# compare: LoRA training tokens/s of this engine (`lora-pipeline bench`) against the PyTorch peer
# baseline (bench/pytorch_lora_baseline.py) on the same model shape, batch, rank, targets and cores,
# run interleaved (engine, peer, engine, peer, ...) so a shared machine's load hits both alike.
# Prints every run's JSON line, then one summary JSON line with the medians and engine/peer ratio.
# Needs: the built jar (./mvnw -B -q package -DskipTests) and Debian's python3-torch +
# libopenblas0-pthread (/usr/bin/python3). The peer runs with its fastest 2-core setting, 1 torch
# thread + THREADS OpenBLAS threads; the engine with THREADS OpenMP/OpenBLAS threads.
# Usage: bench/compare.sh [--reps N] [--hidden C] [--layers L] [--heads NH] [--kv-heads NKV]
#          [--ffn F] [--vocab V] [--tied] [--batch B] [--seq T] [--rank R] [--targets LIST]
#          [--threads N] [--steps N] [--warmup N]
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
reps=3 hidden=576 layers=4 heads=9 kv=3 ffn=1536 vocab=8192 tied="" batch=4 seq=256 rank=8
targets=q,k,v,o,gate,up,down threads=2 steps=5 warmup=2
while [[ $# -gt 0 ]]; do
  case "$1" in
    --reps) reps="$2"; shift 2 ;;
    --hidden) hidden="$2"; shift 2 ;;
    --layers) layers="$2"; shift 2 ;;
    --heads) heads="$2"; shift 2 ;;
    --kv-heads) kv="$2"; shift 2 ;;
    --ffn) ffn="$2"; shift 2 ;;
    --vocab) vocab="$2"; shift 2 ;;
    --tied) tied="--tied"; shift ;;
    --batch) batch="$2"; shift 2 ;;
    --seq) seq="$2"; shift 2 ;;
    --rank) rank="$2"; shift 2 ;;
    --targets) targets="$2"; shift 2 ;;
    --threads) threads="$2"; shift 2 ;;
    --steps) steps="$2"; shift 2 ;;
    --warmup) warmup="$2"; shift 2 ;;
    *) echo "error: unknown option $1 (see the usage line in $0)" >&2; exit 2 ;;
  esac
done
py=/usr/bin/python3
if ! "$py" -c "import torch" 2>/dev/null; then
  echo "error: $py cannot import torch; run: apt-get install python3-torch libopenblas0-pthread" >&2
  exit 2
fi
dims="$hidden,$layers,$heads,$kv,$ffn,$vocab"
model="${TMPDIR:-/tmp}/lora-bench-model-${dims//,/-}${tied:+-tied}"
if [[ ! -f "$model/model.safetensors" ]]; then
  "$py" "$here/bench/pytorch_lora_baseline.py" make-model --dims "$dims" --out "$model" $tied >&2
fi
common=(--batch "$batch" --seq "$seq" --rank "$rank" --targets "$targets" --steps "$steps"
  --warmup "$warmup")
log="$(mktemp)"
trap 'rm -f "$log"' EXIT
for ((i = 1; i <= reps; i++)); do
  echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)" >&2
  line="$("$here/bin/lora-pipeline" bench --hidden "$hidden" --layers "$layers" --heads "$heads" \
    --kv-heads "$kv" --ffn "$ffn" --vocab "$vocab" $tied --threads "$threads" "${common[@]}")"
  echo "engine $line" | tee -a "$log"
  line="$("$py" "$here/bench/pytorch_lora_baseline.py" bench --model "$model" --threads 1 \
    --blas-threads "$threads" "${common[@]}")"
  echo "pytorch $line" | tee -a "$log"
done
"$py" - "$log" <<'PY'
import json, statistics, sys
runs = {"engine": [], "pytorch": []}
for line in open(sys.argv[1]):
    who, _, js = line.partition(" ")
    runs[who].append(json.loads(js)["tokens_per_s"])
e, p = statistics.median(runs["engine"]), statistics.median(runs["pytorch"])
print(json.dumps({"engine_tokens_per_s": runs["engine"], "pytorch_tokens_per_s": runs["pytorch"],
                  "engine_median": round(e, 1), "pytorch_median": round(p, 1),
                  "ratio_engine_over_pytorch": round(e / p, 3)}))
PY
