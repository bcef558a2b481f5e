#!/usr/bin/env bash
# compare: LoRA training tokens/s of this engine (`lora-pipeline bench --model`) against the PyTorch
# peer baseline (bench/pytorch_lora_baseline.py) on the very same weights (the engine's synthetic
# model of the shape, written once by `bench --write-model`; both sides load it), batch, rank,
# targets and cores, in each precision asked
# (fp32: the engine's fp32 against the peer's fp32; bf16: the engine's --precision bf16 against the
# peer's torch.autocast bf16), run interleaved (engine fp32, peer fp32, engine bf16, peer bf16, ...)
# so a shared machine's load hits all alike. The peer always runs with torch.set_flush_denormal.
# Prints every run's JSON line, then one summary JSON line with the medians and ratios.
# Needs: the built jar (./mvnw -B -q package -DskipTests) and Debian's python3-torch +
# libopenblas0-pthread (/usr/bin/python3). The peer runs in its fastest 2-core setting for each
# precision: fp32 with 1 torch thread + THREADS OpenBLAS threads (its matmuls are OpenBLAS's), bf16
# with THREADS torch threads + 1 OpenBLAS thread (autocast's matmuls are oneDNN's, on torch's
# threads); --peer-fp32 / --peer-bf16 "TORCH,BLAS" override. The engine runs with THREADS threads.
# Usage: bench/compare.sh [--reps N] [--hidden C] [--layers L] [--heads NH] [--kv-heads NKV]
#          [--ffn F] [--vocab V] [--tied] [--batch B] [--seq T] [--rank R] [--targets LIST]
#          [--threads N] [--steps N] [--warmup N] [--precisions fp32,bf16]
#          [--peer-fp32 TORCH,BLAS] [--peer-bf16 TORCH,BLAS]
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
reps=3 hidden=576 layers=4 heads=9 kv=3 ffn=1536 vocab=8192 tied="" batch=4 seq=256 rank=8
targets=q,k,v,o,gate,up,down threads=2 steps=5 warmup=2 precisions=fp32,bf16 peer_fp32="" peer_bf16=""
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
    --precisions) precisions="$2"; shift 2 ;;
    --peer-fp32) peer_fp32="$2"; shift 2 ;;
    --peer-bf16) peer_bf16="$2"; shift 2 ;;
    *) echo "error: unknown option $1 (see the usage line in $0)" >&2; exit 2 ;;
  esac
done
py=/usr/bin/python3
if ! "$py" -c "import torch" 2>/dev/null; then
  echo "error: $py cannot import torch; run: apt-get install python3-torch libopenblas0-pthread" >&2
  exit 2
fi
dims="$hidden,$layers,$heads,$kv,$ffn,$vocab"
model="${TMPDIR:-/tmp}/lora-bench-train-${dims//,/-}${tied:+-tied}"
if [[ ! -f "$model/model.safetensors" ]]; then
  "$here/bin/lora-pipeline" bench --write-model "$model" --hidden "$hidden" --layers "$layers" \
    --heads "$heads" --kv-heads "$kv" --ffn "$ffn" --vocab "$vocab" $tied >&2
fi
common=(--batch "$batch" --seq "$seq" --rank "$rank" --targets "$targets" --steps "$steps"
  --warmup "$warmup")
peer_fp32="${peer_fp32:-1,$threads}" peer_bf16="${peer_bf16:-$threads,1}"
log="$(mktemp)"
trap 'rm -f "$log"' EXIT
for ((i = 1; i <= reps; i++)); do
  for p in ${precisions//,/ }; do
    case "$p" in
      fp32) peer_threads="$peer_fp32" autocast="" ;;
      bf16) peer_threads="$peer_bf16" autocast="--bf16" ;;
      *) echo "error: --precisions takes fp32 and/or bf16, not $p" >&2; exit 2 ;;
    esac
    echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)" >&2
    line="$("$here/bin/lora-pipeline" bench --model "$model" --threads "$threads" --precision "$p" \
      "${common[@]}")"
    echo "engine-$p $line" | tee -a "$log"
    line="$("$py" "$here/bench/pytorch_lora_baseline.py" bench --model "$model" --flush-denormal \
      $autocast --threads "${peer_threads%,*}" --blas-threads "${peer_threads#*,}" "${common[@]}")"
    echo "pytorch-$p $line" | tee -a "$log"
  done
done
"$py" - "$log" <<'PY'
import json, statistics, sys
runs = {}
for line in open(sys.argv[1]):
    who, _, js = line.partition(" ")
    runs.setdefault(who, []).append(json.loads(js)["tokens_per_s"])
out = {who + "_tokens_per_s": v for who, v in runs.items()}
med = {who: statistics.median(v) for who, v in runs.items()}
out.update({who + "_median": round(m, 1) for who, m in med.items()})
for p in ("fp32", "bf16"):
    if "engine-" + p in med:
        out["ratio_engine_over_pytorch_" + p] = round(med["engine-" + p] / med["pytorch-" + p], 3)
if "engine-bf16" in med and "pytorch-fp32" in med:
    out["ratio_engine_bf16_over_pytorch_fp32"] = round(med["engine-bf16"] / med["pytorch-fp32"], 3)
print(json.dumps(out))
PY
