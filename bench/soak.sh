#!/usr/bin/env bash
# Long soak: K=4 fused adapters on stories260K for STEPS steps (default 5000), with evaluation and
# checkpoints every 100 steps; fails if resident or JavaCPP native memory grows after warm-up.
# The memory curve is written to distributed-trainer/target/soak/memory.csv.
#   bench/soak.sh [STEPS]
set -euo pipefail
cd "$(dirname "$0")/.."
steps="${1:-5000}"
./mvnw -B -q -o -pl distributed-trainer -am install -DskipTests
./mvnw -B -o -pl distributed-trainer surefire:test -Dtest=SoakTest -Dlora.soak.steps="$steps" \
  | grep -E "SoakTest:|Tests run|FAIL" 
echo "curve: distributed-trainer/target/soak/memory.csv"
