#!/usr/bin/env bash
# Times `uqmerge zoo` (the built-in demo's world + 11 trained models) on this machine and prints
# each stage's seconds from zoo.json. No reference tool exists for this stage: the bar is the
# issue's "whole zoo in <= 10 minutes on 2 cores".
#   bench/zoo/run.sh [RANKS=2] [CANDIDATES=10]   (OUT: $UQMERGE_BENCH_DIR or /tmp/uqmerge-bench-zoo)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
source scripts/env.sh
ranks=${1:-2} n=${2:-10}
out=${UQMERGE_BENCH_DIR:-/tmp/uqmerge-bench-zoo}/zoo
bin=$(realpath "$UQMERGE_BUILD")/src/uqmerge
echo "cores: $(nproc); ranks: $ranks; candidates: $n; $(date -u +%FT%TZ)"
start=$(date +%s.%N)
mpirun -np "$ranks" --oversubscribe "$bin" zoo --out "$out" --candidates "$n" --overwrite >/dev/null 2>"$out.log"
end=$(date +%s.%N)
"$UQMERGE_VENV/bin/python" - "$out/zoo.json" "$start" "$end" <<'PY'
import json, sys
z = json.load(open(sys.argv[1]))
print("| stage | seconds |\n|---|---|")
for s in z["stages"]:
    print(f"| {s['stage']} | {s['seconds']:.1f} |")
cand = [m for m in z["models"][1:]]
print(f"| candidates ({len(cand)}, {z['ranks']} ranks in parallel), each | "
      f"{min(m['seconds'] for m in cand):.1f}–{max(m['seconds'] for m in cand):.1f} |")
print(f"| whole `uqmerge zoo` (wall, incl. evaluation and writing) | {float(sys.argv[3]) - float(sys.argv[2]):.1f} |")
print("quality bar met:", z["quality_bar_met"], "; failures:", "; ".join(z["quality_bar_failures"]) or "none")
PY
