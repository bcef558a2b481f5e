#!/usr/bin/env bash
# quickstart-compare: does a change keep the quickstart's results? Builds revision REV (default
# HEAD~1) of this repository in a temporary directory, runs the quickstart (`bin/lora-pipeline run`,
# conf/quickstart.yaml, from this project directory, so both runs see the same relative paths) with
# that build and with this checkout's build, and compares:
#   - the leaderboards, minus the timing columns (tokens_per_s, wall_seconds), over the columns both
#     have (columns only one side has are listed, not compared);
#   - every file under adapters/ and best/: tensors (*.safetensors) byte for byte, JSON files as
#     parsed values over the keys both have (keys only one side has are listed), others byte for byte.
# Prints one JSON line; exit 0 when everything compared is identical, 1 otherwise.
# Needs this checkout built (./mvnw -B -q package -DskipTests); REV is built offline (-o).
# Usage: bench/quickstart-compare.sh [REV]
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
rev="${1:-HEAD~1}"
work="$(mktemp -d "${TMPDIR:-/tmp}/quickstart-compare.XXXXXX")"
git -C "$here" archive "$rev" | tar -x -C "$work" --one-top-level=old
(cd "$work/old" && ./mvnw -B -o -q package -DskipTests -Dspotless.check.skip=true) >&2
cd "$here"
"$work/old/bin/lora-pipeline" run --quiet --output "$work/run-old" > "$work/old.json"
bin/lora-pipeline run --quiet --output "$work/run-new" > "$work/new.json"
python3 - "$work/run-old" "$work/run-new" "$rev" <<'PY'
import csv, hashlib, json, os, sys
old, new, rev = sys.argv[1], sys.argv[2], sys.argv[3]
timing = {"tokens_per_s", "wall_seconds"}
def board(d):
    with open(os.path.join(d, "leaderboard.csv")) as f:
        return list(csv.DictReader(f))
bo, bn = board(old), board(new)
common = [c for c in bo[0] if c in bn[0] and c not in timing]
added = [c for c in bn[0] if c not in bo[0]]
removed = [c for c in bo[0] if c not in bn[0]]
board_same = [[r[c] for c in common] for r in bo] == [[r[c] for c in common] for r in bn]
def files(d):
    out = {}
    for top in ("adapters", "best"):
        for root, _, names in os.walk(os.path.join(d, top)):
            for n in names:
                p = os.path.join(root, n)
                out[os.path.relpath(p, d)] = p
    return out
fo, fn = files(old), files(new)
different, json_keys_added, compared = [], set(), 0
for rel in sorted(set(fo) | set(fn)):
    if rel not in fo or rel not in fn:
        different.append(rel + (" (only new)" if rel in fn else " (only old)"))
        continue
    compared += 1
    if rel.endswith(".json"):
        a, b = json.load(open(fo[rel])), json.load(open(fn[rel]))
        if isinstance(a, dict) and isinstance(b, dict):
            json_keys_added |= {k for k in b if k not in a}
            same = all(a[k] == b[k] for k in a if k in b) and not [k for k in a if k not in b]
        else:
            same = a == b
    else:
        same = hashlib.sha256(open(fo[rel], "rb").read()).digest() == \
            hashlib.sha256(open(fn[rel], "rb").read()).digest()
    if not same:
        different.append(rel)
ok = board_same and not removed and not different
print(json.dumps({"against": rev, "leaderboard_identical": board_same,
                  "leaderboard_columns_compared": len(common), "columns_added": added,
                  "columns_removed": removed, "adapter_files_compared": compared,
                  "json_keys_added": sorted(json_keys_added), "different": different,
                  "identical": ok}))
sys.exit(0 if ok else 1)
PY
