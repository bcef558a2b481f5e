#!/usr/bin/env bash
# decode-compare: KV-cached decoding of this engine (`lora-pipeline bench --decode`) against
# llama2.c's run.c (bench/llama2c/, built here with gcc -Ofast -march=native), interleaved
# (engine, peer, engine, peer, ...) so a shared machine's load hits both alike; then the engine's
# batching and adapter cases. Prints every run's line, then one summary JSON line per case with
# medians and ratios. Needs the built jar (./mvnw -B -q package -DskipTests), gcc and python3-numpy.
# Usage: bench/decode-compare.sh [--reps N] [--cases stories,smol,streams,switch]
#   stories  stories260K, one stream, 1 thread each; llama2.c's own stories260K.bin and tok512.bin
#   smol     the SmolLM2-135M shape (576/30/9/3/1536/49152, tied), random fp32 weights written by
#            `bench --write-model` and converted with hf_to_llama2c.py; 2 threads each (OpenMP peer)
#   streams  SmolLM2 shape, 2 threads: 1 stream; 16 streams on 1 adapter; 16 over 8 adapters (r16)
#   switch   SmolLM2 shape: first-token time of one request on the base vs on a cached adapter,
#            for a 16-token and a 1-token prompt (r16; each run: the median difference of 41 pairs in
#            one warm JVM, order alternating; then the median over runs), and the cold load
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
reps=5 cases=stories,smol,streams,switch
while [[ $# -gt 0 ]]; do
  case "$1" in
    --reps) reps="$2"; shift 2 ;;
    --cases) cases="$2"; shift 2 ;;
    *) echo "error: unknown option $1 (see the usage line in $0)" >&2; exit 2 ;;
  esac
done
work="${TMPDIR:-/tmp}/lora-decode-bench"
mkdir -p "$work"
gcc -Ofast -march=native -o "$work/run" "$here/bench/llama2c/run.c" -lm
gcc -Ofast -march=native -fopenmp -o "$work/runomp" "$here/bench/llama2c/run.c" -lm
engine=("$here/bin/lora-pipeline" bench --decode)
smol=(--hidden 576 --layers 30 --heads 9 --kv-heads 3 --ffn 1536 --vocab 49152 --tied)
log="$work/runs.log"
: >"$log"

peer_tps() { # runs run.c and prints its "achieved tok/s"
  "$@" 2>&1 | sed -n 's/.*achieved tok\/s: \([0-9.]*\).*/\1/p'
}
engine_field() { # prints one field of the engine's JSON line
  python3 -c 'import json,sys; print(json.loads(sys.stdin.read())[sys.argv[1]])' "$1"
}
load() { cut -d' ' -f1-3 /proc/loadavg; }

if [[ ,$cases, == *,stories,* ]]; then
  for ((i = 1; i <= reps; i++)); do
    echo "load average: $(load)" >&2
    e="$("${engine[@]}" --model "$here/models/stories260K" --threads 1 --prompt-tokens 5 \
      --new-tokens 256 --warmup 20 | engine_field decode_tokens_per_s)"
    p="$(peer_tps "$work/run" "$here/bench/llama2c/stories260K/stories260K.bin" \
      -z "$here/bench/llama2c/stories260K/tok512.bin" -t 0 -n 256 -i "Once upon a time")"
    echo "stories engine $e llama2c $p" | tee -a "$log"
  done
fi

if [[ ,$cases, == *,smol,* || ,$cases, == *,streams,* || ,$cases, == *,switch,* ]]; then
  if [[ ! -f "$work/smol/model.safetensors" ]]; then
    "$here/bin/lora-pipeline" bench --write-model "$work/smol" "${smol[@]}" >&2
  fi
fi
if [[ ,$cases, == *,smol,* ]]; then
  if [[ ! -f "$work/smol.bin" ]]; then
    python3 "$here/bench/llama2c/hf_to_llama2c.py" "$work/smol" "$work/smol.bin" --seq-len 2048 \
      --placeholder-tokenizer "$work/smol-tok.bin" >&2
  fi
  for ((i = 1; i <= reps; i++)); do
    echo "load average: $(load)" >&2
    e="$("${engine[@]}" --model "$work/smol" --threads 2 --prompt-tokens 1 --new-tokens 128 \
      --warmup 1 | engine_field decode_tokens_per_s)"
    b="$("${engine[@]}" --model "$work/smol" --threads 2 --prompt-tokens 1 --new-tokens 128 \
      --warmup 1 --precision bf16 | engine_field decode_tokens_per_s)"
    p="$(OMP_NUM_THREADS=2 peer_tps "$work/runomp" "$work/smol.bin" -z "$work/smol-tok.bin" \
      -t 0 -n 128 -i "a")"
    echo "smol engine $e bf16 $b llama2c $p" | tee -a "$log"
  done
fi

if [[ ,$cases, == *,streams,* ]]; then
  for ((i = 1; i <= reps; i++)); do
    echo "load average: $(load)" >&2
    one="$("${engine[@]}" --model "$work/smol" --threads 2 --new-tokens 64 --warmup 1 \
      | engine_field decode_tokens_per_s)"
    same="$("${engine[@]}" --model "$work/smol" --threads 2 --new-tokens 64 --warmup 1 \
      --streams 16 --adapters 1 --rank 16 | engine_field decode_tokens_per_s)"
    spread="$("${engine[@]}" --model "$work/smol" --threads 2 --new-tokens 64 --warmup 1 \
      --streams 16 --adapters 8 --rank 16 | engine_field decode_tokens_per_s)"
    echo "streams one $one same16 $same spread16 $spread" | tee -a "$log"
  done
fi

if [[ ,$cases, == *,switch,* ]]; then
  for ((i = 1; i <= reps; i++)); do
    echo "load average: $(load)" >&2
    a="$("${engine[@]}" --model "$work/smol" --threads 2 --new-tokens 4 --warmup 3 --adapters 1 \
      --rank 16)"
    a1="$("${engine[@]}" --model "$work/smol" --threads 2 --new-tokens 4 --warmup 3 --adapters 1 \
      --rank 16 --prompt-tokens 1)"
    echo "switch base $(engine_field first_token_ms_base <<<"$a") adapter" \
      "$(engine_field first_token_ms_adapter <<<"$a")" \
      "base1 $(engine_field first_token_ms_base <<<"$a1") adapter1" \
      "$(engine_field first_token_ms_adapter <<<"$a1")" \
      "cost $(engine_field adapter_switch_ms <<<"$a") cost1 $(engine_field adapter_switch_ms <<<"$a1")" \
      "cold_load_ms $(engine_field adapter_cold_load_ms <<<"$a")" \
      "tensor_bytes $(engine_field adapter_tensor_bytes <<<"$a") cache_bytes" \
      "$(engine_field cache_bytes <<<"$a")" | tee -a "$log"
  done
fi

python3 - "$log" <<'PY'
import json, statistics as st, sys
rows = {}
for line in open(sys.argv[1]):
    f = line.split()
    rows.setdefault(f[0], []).append({f[i]: float(f[i + 1]) for i in range(1, len(f), 2)})
med = lambda case, key: st.median(r[key] for r in rows[case])
if "stories" in rows:
    e, p = med("stories", "engine"), med("stories", "llama2c")
    print(json.dumps({"case": "stories260K, 1 stream, 1 thread", "engine_median": e,
                      "llama2c_median": p, "ratio": round(e / p, 3), "target": 0.5}))
if "smol" in rows:
    e, p = med("smol", "engine"), med("smol", "llama2c")
    print(json.dumps({"case": "SmolLM2 shape, 1 stream, 2 threads", "engine_median": e,
                      "llama2c_median": p, "ratio": round(e / p, 3), "target": 0.9}))
    b = med("smol", "bf16")
    print(json.dumps({"case": "SmolLM2 shape, 1 stream, 2 threads, engine --precision bf16",
                      "engine_median": b, "llama2c_fp32_median": p, "ratio": round(b / p, 3),
                      "target": 1.6}))
if "streams" in rows:
    o, s, sp = med("streams", "one"), med("streams", "same16"), med("streams", "spread16")
    print(json.dumps({"case": "SmolLM2 shape, 16 streams, 2 threads", "one_stream": o,
                      "16_on_1_adapter": s, "16_over_8_adapters": sp,
                      "16_over_1_stream": round(s / o, 2), "8_adapters_over_1": round(sp / s, 3),
                      "targets": {"16_over_1_stream": 5, "8_adapters_over_1": 0.8}}))
if "switch" in rows:
    b, a = med("switch", "base"), med("switch", "adapter")
    print(json.dumps({"case": "SmolLM2 shape, adapter switch", "first_token_ms_base": b,
                      "first_token_ms_adapter": a, "switch_cost_ms": med("switch", "cost"),
                      "switch_cost_ms_1_token_prompt": med("switch", "cost1"),
                      "cold_load_ms": med("switch", "cold_load_ms"),
                      "tensor_bytes": med("switch", "tensor_bytes"),
                      "cache_bytes": med("switch", "cache_bytes"), "target_switch_ms": 1}))
PY
