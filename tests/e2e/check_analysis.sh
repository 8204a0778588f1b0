#!/usr/bin/env bash
# analysis/ on the e2e run's results.h5 and eval.h5: the report has its tables (and the CSVs),
# the plot is a real PNG of non-trivial size. The baselines and per-candidate accuracy tables are
# checked as far as the input has /baselines and /accuracy, and once more on a copy given every
# baseline the e2e config leaves out (synthetic values, exercising each reader path).
#   check_analysis.sh PYTHON SRC_DIR CASE_DIR
set -u
py=$1
src=$2
case_dir=$3
res=$case_dir/run_alg1/results.h5
lib=$(cd "$(dirname "$0")/../lib" && pwd)
# shellcheck source-path=SCRIPTDIR source=../lib/testlib.sh
source "$lib/testlib.sh"
testlib_work
# Runs the Python check on stdin (with tests/lib on its path), which prints "ok   ..." /
# "FAIL ..." lines (uqtest.check); counts them.
tally() {
  local out
  out=$(PYTHONPATH="$lib${PYTHONPATH:+:$PYTHONPATH}" "$py" - "$@" 2>&1) || bad "python check completes ($*)"
  echo "$out"
  pass=$((pass + $(grep -c '^ok ' <<<"$out")))
  fail=$((fail + $(grep -c '^FAIL ' <<<"$out")))
}
report() {  # RESULTS_H5 OUT_NAME [report.py options]: markdown in $work/OUT_NAME.md, CSVs in $work/OUT_NAME/
  local h5=$1 name=$2
  shift 2
  "$py" "$src/analysis/report.py" "$h5" --csv "$work/$name" --bootstrap 200 "$@" >"$work/$name.md" 2>"$work/err" \
    && ok "report.py runs ($name)" || { bad "report.py runs ($name)"; cat "$work/err"; }
}

report "$res" main --eval "$case_dir/run_eval/eval.h5"
for h in "## Uncertainty per candidate and dataset" "## Algorithm 1" "## Selection stability" "Spearman rank correlation" "global_min"; do
  grep -q "$h" "$work/main.md" && ok "report has '$h'" || bad "report has '$h'"
done
for c in candidates steps stability accuracy; do
  [ -s "$work/main/$c.csv" ] && ok "CSV $c" || bad "CSV $c"
done
# Stability probabilities of a rule sum to 1 over the steps.
"$py" - "$work/main/stability.csv" <<'PY' && ok "stability probabilities sum to 1" || bad "stability probabilities sum to 1"
import csv, sys
rows = list(csv.reader(open(sys.argv[1])))[1:]
assert abs(sum(float(r[1]) for r in rows) - 1) < 1e-9 and abs(sum(float(r[2]) for r in rows) - 1) < 1e-9
PY

# Accuracy from eval.h5 still works for a file without /accuracy (the uq-only run).
report "$case_dir/run_np1/results.h5" np1 --eval "$case_dir/run_eval/eval.h5"
grep -q "## Accuracy per candidate and dataset (%, from .*eval.h5)" "$work/np1.md" && [ -s "$work/np1/accuracy.csv" ] \
  && [ -s "$work/np1/candidate_accuracy.csv" ] && ok "accuracy tables from eval.h5" || bad "accuracy tables from eval.h5"

# A copy of the run's results.h5 with the baselines it lacks: ascending (with /run) and
# accuracy_guided (with /accuracy), their values synthetic (mean of the members' own values).
"$py" - "$res" "$work/all.h5" <<'PY'
import shutil, sys
import h5py
import numpy as np
shutil.copy(sys.argv[1], sys.argv[2])
f = h5py.File(sys.argv[2], "r+")
u = np.array([f["uq"][k].attrs["uq_macro"] for k in sorted(f["uq"])])
bl = f.require_group("baselines")
def add(name, order, curve, t, acc):
    g = bl.create_group(name)
    g["order"], g["curve"], g["members"] = order, curve, order[None, :t]
    g["uq_macro"] = [u[order[:t]].mean()]
    if acc is not None:
        g["accuracy_macro"] = [acc[order[:t]].mean()]
    return g
acc = f["accuracy"]["candidates_macro"][()] if "accuracy" in f else None
if "run" in f and "ascending" not in bl:
    order = np.argsort(u, kind="stable")
    curve = np.cumsum(u[order]) / np.arange(1, len(u) + 1)
    t = int(np.argmin(curve)) + 1
    g = add("ascending", order, curve, t, acc)
    g.attrs["global_min_step"] = g.attrs["early_stop_step"] = t
if acc is not None and "accuracy_guided" not in bl:
    order = np.argsort(-acc, kind="stable")
    curve = np.cumsum(acc[order]) / np.arange(1, len(acc) + 1)
    add("accuracy_guided", order, curve, len(acc), acc).attrs["chosen_step"] = len(acc)
PY
report "$work/all.h5" all

# The baselines and per-candidate accuracy tables: in the markdown and as CSV with the expected
# columns and rows (one per baseline, then UQ-Merge's choice, then the best single candidate),
# absent when the input has no such group.
for name in main all np1; do
  h5=$res
  [ $name = all ] && h5=$work/all.h5
  [ $name = np1 ] && h5=$case_dir/run_np1/results.h5
  tally "$h5" "$work/$name.md" "$work/$name" "$name" <<'PY'
import csv, sys
from pathlib import Path
import h5py
from uqtest import check, text
h5, md, out, label = sys.argv[1:5]
f, report = h5py.File(h5, "r"), open(md).read()
L = f" ({label})"
def load(table):
    p = Path(out) / f"{table}.csv"
    return list(csv.reader(open(p))) if p.exists() else None
names = [text(f["uq"][k].attrs["name"]) for k in sorted(f["uq"])]
if "accuracy" in f:
    g = f["accuracy"]
    check("## Accuracy per candidate and dataset (%, from results.h5 /accuracy)" in report, "report has the accuracy table from /accuracy" + L)
    t = load("candidate_accuracy")
    check(t is not None and t[0] == ["model"] + text(g.attrs["datasets"]).split(",") + ["average"], "CSV candidate_accuracy columns" + L)
    expect = names + (["UQ-Merge (step %d)" % f["run"].attrs["chosen_step"]] if "run" in f else [])
    check(t is not None and [r[0] for r in t[1:]] == expect, "CSV candidate_accuracy rows" + L)
    check(t is not None and all(
        abs(float(t[1 + i][1 + j]) - g["candidates"][i, j]) < 0.006 for i in range(len(names)) for j in range(g["candidates"].shape[1])), "CSV candidate_accuracy values" + L)
if "baselines" in f:
    bl = f["baselines"]
    check("## Baselines" in report, "report has '## Baselines'" + L)
    t = load("baselines")
    check(t is not None and t[0] == ["method", "k", "sets", "uncertainty", "accuracy", "detail"], "CSV baselines columns" + L)
    stored = [b for b in ("merge_all", "random_k", "ascending", "accuracy_guided") if b in bl]
    expect = stored + (["UQ-Merge (%s)" % text(f["run"].attrs["rule"])] if "run" in f else []) \
        + (["best single (accuracy)"] if "accuracy" in f else [])
    check(t is not None and [r[0] for r in t[1:]] == expect, "CSV baselines rows" + L)
    rows = {r[0]: r for r in (t or [])[1:]}
    for b in stored:
        r, u = rows.get(b), bl[b]["uq_macro"][()]
        check(r is not None and int(r[2]) == len(u) and abs(float(r[3].split(" ± ")[0]) - u.mean()) < 6e-6, f"{b}: sets and mean uncertainty" + L)
        check(r is not None and (r[4] != "") == ("accuracy_macro" in bl[b]), f"{b}: accuracy iff stored" + L)
    if "run" in f:
        r = rows.get(expect[len(stored)])
        check(r is not None and abs(float(r[3]) - f["run"]["step_uq_macro"][f["run"].attrs["chosen_step"] - 1]) < 6e-6, "UQ-Merge row: chosen step's uncertainty" + L)
else:
    check("## Baselines" not in report and load("baselines") is None, "no baselines table without /baselines" + L)
PY
done

"$py" "$src/analysis/plot.py" "$res" -o "$work/u.png" >/dev/null 2>"$work/err" && ok "plot.py runs" || { bad "plot.py runs"; cat "$work/err"; }
"$py" "$src/analysis/plot.py" "$work/all.h5" -o "$work/all.png" >/dev/null 2>"$work/err" && ok "plot.py runs (all baselines)" \
  || { bad "plot.py runs (all baselines)"; cat "$work/err"; }
for png in u all; do
  if [ -f "$work/$png.png" ] && [ "$(head -c 8 "$work/$png.png" | od -An -tx1 | tr -d ' \n')" = "89504e470d0a1a0a" ] \
     && [ "$(stat -c %s "$work/$png.png")" -gt 10000 ]; then
    ok "PNG signature and size > 10 kB ($png)"
  else
    bad "PNG signature and size > 10 kB ($png)"
  fi
done
"$py" "$src/analysis/plot.py" "$case_dir/run_np1/results.h5" -o "$work/x.png" 2>"$work/err" >/dev/null
[ $? -ne 0 ] && grep -q "no /run group" "$work/err" && ok "plot.py refuses a uq-only file clearly" || bad "plot.py refuses a uq-only file clearly"
testlib_summary
