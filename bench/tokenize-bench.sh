#!/usr/bin/env bash
# tokenize-bench: tokenization throughput (tokens/s per core) of the Spark tokenize step against a
# plain single-thread loop over the same tokenizer and data, plus the whole preprocess job.
# Prints one JSON line. Build first: ./mvnw -B -q package -DskipTests
# Usage: bench/tokenize-bench.sh [--model DIR] [--data FILE] [--cores N] [--repeat R]
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
target="$here/pipeline/target"
jar="$(ls "$target"/lora-spark-pipeline-*-spark.jar 2>/dev/null | head -n 1 || true)"
if [[ -z "$jar" || ! -d "$target/lib" ]]; then
  echo "error: the application jar is not built; run: ./mvnw -B -q package -DskipTests" >&2
  exit 1
fi
opens=(
  --add-opens=java.base/java.lang=ALL-UNNAMED --add-opens=java.base/java.lang.invoke=ALL-UNNAMED
  --add-opens=java.base/java.lang.reflect=ALL-UNNAMED --add-opens=java.base/java.io=ALL-UNNAMED
  --add-opens=java.base/java.net=ALL-UNNAMED --add-opens=java.base/java.nio=ALL-UNNAMED
  --add-opens=java.base/java.util=ALL-UNNAMED --add-opens=java.base/java.util.concurrent=ALL-UNNAMED
  --add-opens=java.base/java.util.concurrent.atomic=ALL-UNNAMED
  --add-opens=java.base/jdk.internal.ref=ALL-UNNAMED --add-opens=java.base/sun.nio.ch=ALL-UNNAMED
  --add-opens=java.base/sun.nio.cs=ALL-UNNAMED --add-opens=java.base/sun.security.action=ALL-UNNAMED
  --add-opens=java.base/sun.util.calendar=ALL-UNNAMED
  --add-opens=java.security.jgss/sun.security.krb5=ALL-UNNAMED
  -Djdk.reflect.useDirectMethodHandle=false -Dio.netty.tryReflectionSetAccessible=true
)
cd "$here"
# shellcheck disable=SC2086
exec java "${opens[@]}" -Xmx4g "-Dlog4j2.configurationFile=$here/conf/log4j2.properties" \
  ${LORA_SPARK_JAVA_OPTS:-} -cp "$jar:$target/lib/*" io.loraspark.prep.bench.TokenizeBenchmark "$@"
