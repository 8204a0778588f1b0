#!/usr/bin/env bash
# analysis/ on the e2e run's results.h5 and eval.h5: the report has its tables (and the CSVs),
# the plot is a real PNG of non-trivial size.   check_analysis.sh PYTHON SRC_DIR CASE_DIR
set -u
py=$1
src=$2
case_dir=$3
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
pass=0
fail=0
ok() { echo "ok   $1"; pass=$((pass + 1)); }
no() { echo "FAIL $1"; fail=$((fail + 1)); }
"$py" "$src/analysis/report.py" "$case_dir/run_alg1/results.h5" --eval "$case_dir/run_eval/eval.h5" --csv "$work/csv" \
  --bootstrap 200 >"$work/report.md" 2>"$work/err" && ok "report.py runs" || { no "report.py runs"; cat "$work/err"; }
for h in "## Uncertainty per candidate and dataset" "## Algorithm 1" "## Selection stability" "Spearman rank correlation" "global_min"; do
  grep -q "$h" "$work/report.md" && ok "report has '$h'" || no "report has '$h'"
done
for c in candidates steps stability accuracy; do
  [ -s "$work/csv/$c.csv" ] && ok "CSV $c" || no "CSV $c"
done
# Stability probabilities of a rule sum to 1 over the steps.
"$py" - "$work/csv/stability.csv" <<'PY' && ok "stability probabilities sum to 1" || no "stability probabilities sum to 1"
import csv, sys
rows = list(csv.reader(open(sys.argv[1])))[1:]
assert abs(sum(float(r[1]) for r in rows) - 1) < 1e-9 and abs(sum(float(r[2]) for r in rows) - 1) < 1e-9
PY
"$py" "$src/analysis/plot.py" "$case_dir/run_alg1/results.h5" -o "$work/u.png" >/dev/null 2>"$work/err" && ok "plot.py runs" || { no "plot.py runs"; cat "$work/err"; }
if [ -f "$work/u.png" ] && [ "$(head -c 8 "$work/u.png" | od -An -tx1 | tr -d ' \n')" = "89504e470d0a1a0a" ] && [ "$(stat -c %s "$work/u.png")" -gt 10000 ]; then
  ok "PNG signature and size > 10 kB"
else
  no "PNG signature and size > 10 kB"
fi
"$py" "$src/analysis/plot.py" "$case_dir/run_np1/results.h5" -o "$work/x.png" 2>"$work/err" >/dev/null
[ $? -ne 0 ] && grep -q "no /run group" "$work/err" && ok "plot.py refuses a uq-only file clearly" || no "plot.py refuses a uq-only file clearly"
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
