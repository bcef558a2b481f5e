#!/usr/bin/env bash
# fuzz: runs one Jazzer fuzz test in fuzzing mode (coverage-guided, libFuzzer) for a while.
# Without JAZZER_FUZZ, `./mvnw verify` only replays each test's corpus (regression mode).
# Usage: bench/fuzz.sh <Class#method> <duration>     e.g. bench/fuzz.sh SafetensorsFuzzTest#openFile 10m
#        bench/fuzz.sh --list                        every fuzz test, as Class#method
# A crash fails the run and its input is written to the test's corpus directory
# (src/test/resources/<package>/<Class>Inputs/<method>/crash-<sha1>), so that `./mvnw verify`
# replays it from then on. New inputs that reach new code go to <module>/.cifuzz-corpus/ (not
# committed). Extra Maven flags: MVN_FLAGS (e.g. MVN_FLAGS=-o). Prints libFuzzer's final stats.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$here"
if [[ "${1:-}" == "--list" ]]; then
  grep -rl --include='*FuzzTest.java' '@FuzzTest' -- */src/test/java | sort | while read -r f; do
    cls="$(basename "$f" .java)"
    grep -A2 '@FuzzTest' "$f" | grep -oE 'void [a-zA-Z0-9_]+\(' | sed -E "s/void (.*)\(/$cls#\1/"
  done
  exit 0
fi
if [[ $# -ne 2 || "$1" != *#* ]]; then
  echo "usage: bench/fuzz.sh <Class#method> <duration, e.g. 30s, 10m, 1h>   (bench/fuzz.sh --list)" >&2
  exit 2
fi
target="$1"
duration="$2"
cls="${target%%#*}"
if [[ ! "$duration" =~ ^[0-9]+[smhd]?$ ]]; then
  echo "error: duration '$duration' must be a number with an optional unit s, m, h or d" >&2
  exit 2
fi
mapfile -t files < <(find . -path '*/src/test/java/*' -name "$cls.java" -not -path '*/target/*')
if [[ ${#files[@]} -ne 1 ]]; then
  echo "error: expected one test class $cls.java, found ${#files[@]}; see bench/fuzz.sh --list" >&2
  exit 2
fi
module="$(echo "${files[0]}" | cut -d/ -f2)"
log="$(mktemp -t fuzz-XXXXXX.log)"
echo "fuzzing $target in $module for $duration (log: $log)" >&2
set +e
# shellcheck disable=SC2086
JAZZER_FUZZ=1 ./mvnw -B ${MVN_FLAGS:-} -pl "$module" -am test \
  -Dtest="$target" -Dsurefire.failIfNoSpecifiedTests=false -Dspotless.check.skip=true \
  -Djazzer.hooks=true -Djazzer.max_duration="$duration" >"$log" 2>&1
status=$?
set -e
grep -E '^#[0-9]+ +(DONE|INITED)|^Done [0-9]+ runs|== Java Exception|^INFO: Seed|crash-|Tests run: .*Fail' "$log" | tail -n 12 >&2
if [[ $status -ne 0 ]]; then
  echo "FAILED ($status): a finding or a build error; see $log" >&2
fi
exit $status
