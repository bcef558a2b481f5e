#!/usr/bin/env bash
# serve-bench: requests/s, output tokens/s, time to first token and per-token latency of
# `lora-pipeline serve` at 1, 8 and 32 concurrent streaming clients (bench/serve_load.py, loopback
# only), on one adapter and spread over 8, for a model and a directory of adapters.
# Usage: bench/serve-bench.sh --model DIR --adapters DIR [--requests N] [--max-tokens T] [--port P]
#                              [--streams "1 8 32"]
#    or: bench/serve-bench.sh --synthetic DIR [--shape "BENCH SHAPE FLAGS"] [the options above]
# The model needs its tokenizer files (serve tokenizes text prompts).
# Spreads over up to 8 of the adapters (all there are if fewer). Random adapters for a model:
#   bin/lora-pipeline bench --model DIR --write-adapters OUT --adapters 8 --rank 16
# --synthetic DIR serves a random model of the SmolLM2-135M shape (576/30/9/3/1536, tied) with the
# bundled GPT-2 tokenizer (V = 50257) and 8 random rank-16 adapters, written into DIR/model and
# DIR/adapters unless already there; --shape replaces the shape flags (e.g. a tiny smoke run:
#   bench/serve-bench.sh --synthetic /tmp/tiny --shape "--hidden 64 --layers 1 --heads 4
#   --kv-heads 2 --ffn 128" --requests 2 --max-tokens 4 --streams 1).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
model="$here/models/stories260K" adapters="" requests=64 max_tokens=64 port=8765 streams="1 8 32"
synthetic="" shape="--hidden 576 --layers 30 --heads 9 --kv-heads 3 --ffn 1536 --tied"
while [[ $# -gt 0 ]]; do
  case "$1" in
    --model) model="$2"; shift 2 ;;
    --adapters) adapters="$2"; shift 2 ;;
    --requests) requests="$2"; shift 2 ;;
    --max-tokens) max_tokens="$2"; shift 2 ;;
    --port) port="$2"; shift 2 ;;
    --streams) streams="$2"; shift 2 ;;
    --synthetic) synthetic="$2"; shift 2 ;;
    --shape) shape="$2"; shift 2 ;;
    *) echo "error: unknown option $1 (see the usage line in $0)" >&2; exit 2 ;;
  esac
done
if [[ -n "$synthetic" ]]; then
  model="$synthetic/model" adapters="$synthetic/adapters"
  if [[ ! -f "$model/config.json" ]]; then
    # shellcheck disable=SC2086
    "$here/bin/lora-pipeline" bench --write-model "$model" $shape \
      --tokenizer "$here/fixtures/tokenizers/gpt2" >/dev/null
  fi
  if [[ ! -d "$adapters" ]]; then
    "$here/bin/lora-pipeline" bench --model "$model" --write-adapters "$adapters" --adapters 8 \
      --rank 16 >/dev/null
  fi
fi
if [[ -z "$adapters" ]]; then
  echo "error: --adapters DIR (a directory of at least 8 PEFT adapter directories) is required" >&2
  exit 2
fi
mapfile -t names < <(find "$adapters" -mindepth 1 -maxdepth 1 -type d -printf '%f\n' | sort | head -n 8)
if ((${#names[@]} < 1)); then
  echo "error: $adapters has no adapter directories" >&2
  exit 2
fi
"$here/bin/lora-pipeline" serve --model "$model" --adapters "$adapters" --port "$port" \
  --max-running 32 --max-queue 64 >/dev/null 2>"${TMPDIR:-/tmp}/serve-bench.log" &
server=$!
trap 'kill "$server" 2>/dev/null; wait "$server" 2>/dev/null || true' EXIT
for _ in $(seq 1 120); do
  curl -sf "http://127.0.0.1:$port/health" >/dev/null && break
  if ! kill -0 "$server" 2>/dev/null; then
    echo "error: the server exited; its stderr:" >&2
    cat "${TMPDIR:-/tmp}/serve-bench.log" >&2
    exit 1
  fi
  sleep 1
done
url="http://127.0.0.1:$port"
one="${names[0]}"
eight="$(IFS=,; echo "${names[*]}")"
# warm-up: every adapter once, so the measured runs hit the cache
python3 "$here/bench/serve_load.py" "$url" --concurrency 8 --requests 16 --max-tokens 8 \
  --models "$eight" >/dev/null
for c in $streams; do
  n=$((c == 1 && requests >= 4 ? requests / 4 : requests))
  echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)" >&2
  echo "one_adapter $(python3 "$here/bench/serve_load.py" "$url" --concurrency "$c" --requests "$n" \
    --max-tokens "$max_tokens" --models "$one")"
  echo "spread_${#names[@]}_adapters $(python3 "$here/bench/serve_load.py" "$url" --concurrency "$c" \
    --requests "$n" --max-tokens "$max_tokens" --models "$eight")"
done
