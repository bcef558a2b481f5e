#!/usr/bin/env bash
# jmh: runs the JMH microbenchmarks of benchmarks/ (GEMM call styles, RMSNorm, rotary, SiLU·up,
# softmax, vocabulary log-softmax, one layer forward+backward). The build compiles them but never
# runs them, against this checkout's classes. Build first: ./mvnw -B -q install -DskipTests
# Usage: bench/jmh.sh [JMH options, e.g. KernelBench -f 1 -wi 2 -i 3 -jvmArgs -Dx=y]
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cp_file="$here/benchmarks/target/classpath.txt"
(cd "$here" && ./mvnw -B -q -o -pl benchmarks -am dependency:build-classpath -Dmdep.outputFile="$cp_file")
exec java -Xmx3g -Dorg.bytedeco.javacpp.maxbytes=6g -Dorg.bytedeco.javacpp.maxphysicalbytes=10g \
  -cp "$here/benchmarks/target/classes:$here/distributed-trainer/target/classes:$(cat "$cp_file")" org.openjdk.jmh.Main "$@"
