#!/usr/bin/env bash
# Resume: `uqmerge run` stopped at several points (the safe-stop path SIGUSR1 takes, triggered
# deterministically after n evaluations; a real SIGUSR1 through mpirun; a SIGKILL mid-run) and
# rerun until it finishes must give the same results.h5 numbers as an uninterrupted run; a
# changed config must refuse to resume; --restart starts over.
#   test_resume.sh UQMERGE_BINARY CASE_DIR PYTHON MPIEXEC
set -uo pipefail
bin=$1 case=$2 py=$3 mpiexec=$4
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cp -r "$case"/cand_a "$case"/cand_b "$case"/data.tsv "$work"/
sed 's/^output_dir: .*/output_dir: OUT/' "$case/config_run.yaml" >"$work/base.yaml"
pass=0 fail=0
ok() { echo "ok   $1"; pass=$((pass + 1)); }
bad() { echo "FAIL $1"; fail=$((fail + 1)); }
run() {  # OUTDIR [env...] -- runs 2 ranks; prints the exit code
  local out=$1; shift
  sed "s/^output_dir: OUT/output_dir: $out/" "$work/base.yaml" >"$work/$out.yaml"
  (cd "$work" && env "$@" "$mpiexec" -n 2 "$bin" run -c "$out.yaml" >>"$work/$out.log" 2>&1)
  echo $?
}
same() {  # A.h5 B.h5 -> compares every number except timings
  "$py" - "$1" "$2" <<'PY'
import sys, h5py, numpy as np
a, b = h5py.File(sys.argv[1], "r"), h5py.File(sys.argv[2], "r")
# vision_passes counts work done: a resumed process starts with a cold feature cache.
skip = ("seconds", "created", "total_seconds", "merge_seconds", "path", "yaml", "merged_dir", "vision_passes")
bad = []
def walk(name, obj):
    other = b.get(name)
    if other is None:
        bad.append(f"{name} missing"); return
    for k, v in obj.attrs.items():
        if any(s in k for s in skip): continue
        if k not in other.attrs or not np.array_equal(np.asarray(v), np.asarray(other.attrs[k])):
            bad.append(f"{name}@{k}")
    if isinstance(obj, h5py.Dataset) and not np.array_equal(obj[()], other[()]):
        bad.append(name)
a.visititems(walk)
print("\n".join(bad[:10]) or "identical")
sys.exit(1 if bad else 0)
PY
}

[ "$(run full)" = 0 ] && ok "uninterrupted run" || bad "uninterrupted run"
# Stop after every single evaluation: each rerun resumes and adds one.
rc=75 n=0
while [ "$rc" = 75 ] && [ $n -lt 40 ]; do rc=$(run step UQMERGE_TEST_STOP_AFTER=1); n=$((n + 1)); done
[ "$rc" = 0 ] && [ $n -gt 3 ] && ok "stopped after each evaluation, finished after $n launches" || bad "stop/resume loop (rc $rc after $n launches)"
grep -q "resuming from .*state.uqs" "$work/step.log" && ok "reruns say they resume" || bad "no resume message"
same "$work/full/results.h5" "$work/step/results.h5" && ok "stop/resume gives identical numbers" || bad "stop/resume numbers differ"
# A real SIGUSR1 sent to mpirun (forwarded to the ranks) once the first candidate is done.
sed "s/^output_dir: OUT/output_dir: sig/" "$work/base.yaml" >"$work/sig.yaml"
(cd "$work" && exec "$mpiexec" -n 2 "$bin" run -c sig.yaml >"$work/sig.log" 2>&1) &
pid=$!
for _ in $(seq 600); do grep -q "candidate .*uncertainty" "$work/sig.log" 2>/dev/null && break; sleep 0.05; done
kill -USR1 $pid
wait $pid; rc=$?
[ "$rc" = 75 ] && ok "SIGUSR1 stops at a safe point with exit 75" || bad "SIGUSR1: exit $rc (want 75)"
[ ! -e "$work/sig/results.h5" ] && ok "no results.h5 after a stop" || bad "a stopped run left a results.h5"
[ "$(run sig)" = 0 ] && same "$work/full/results.h5" "$work/sig/results.h5" && ok "SIGUSR1 then rerun: identical numbers" || bad "SIGUSR1 resume"
# SIGKILL mid-run: the last saved state survives (atomic writes); the rerun finishes.
sed "s/^output_dir: OUT/output_dir: kill/" "$work/base.yaml" >"$work/kill.yaml"
(cd "$work" && exec "$mpiexec" -n 2 "$bin" run -c kill.yaml >"$work/kill.log" 2>&1) &
pid=$!
# Killed once the first candidate's evaluation is saved: the second candidate, the merge step,
# the baselines and the write are still ahead (killing at "step 2", the last step of this
# 2-candidate run, raced with the run's end once merging got fast: the run sometimes finished
# first and the check then tested nothing).
for _ in $(seq 600); do grep -q "candidate .*uncertainty" "$work/kill.log" 2>/dev/null && break; sleep 0.05; done
pkill -KILL -f "uqmerge run -c kill.yaml"; kill -KILL $pid 2>/dev/null; wait $pid 2>/dev/null
if [ -e "$work/kill/results.h5" ] || ! [ -e "$work/kill/state.uqs" ]; then
  bad "SIGKILL did not land mid-run (results.h5 present or no saved state)"; tail -n 15 "$work/kill.log"
elif [ "$(run kill)" = 0 ] && same "$work/full/results.h5" "$work/kill/results.h5"; then
  ok "SIGKILL mid-run then rerun: identical numbers"
else
  bad "SIGKILL resume"; tail -n 15 "$work/kill.log"
fi
# A truncated state file is refused (exit 2, names the file and --restart), nothing written.
head -c 100 "$work/step/state.uqs" >"$work/trunc.uqs" && mkdir -p "$work/trunc" && cp "$work/trunc.uqs" "$work/trunc/state.uqs"
sed "s/^output_dir: OUT/output_dir: trunc/" "$work/base.yaml" >"$work/trunc.yaml"
(cd "$work" && "$mpiexec" -n 2 "$bin" run -c trunc.yaml >"$work/trunc.log" 2>&1); rc=$?
[ "$rc" = 2 ] && grep -q "trunc/state.uqs: corrupt or truncated resume state.*--restart" "$work/trunc.log" &&
  [ ! -e "$work/trunc/results.h5" ] && [ ! -e "$work/trunc/merged" ] && ok "truncated state refused (exit 2, names --restart)" ||
  bad "truncated state: exit $rc"
# A changed config refuses to resume; --restart starts over.
sed -i 's/^seed: .*/seed: 8/' "$work/step.yaml"
(cd "$work" && "$mpiexec" -n 2 "$bin" run -c step.yaml --overwrite >"$work/changed.log" 2>&1); rc=$?
[ "$rc" = 2 ] && grep -q "state.uqs: was written by another config.*--restart" "$work/changed.log" && ok "changed config refused (exit 2, names --restart)" || bad "changed config: exit $rc"
(cd "$work" && "$mpiexec" -n 2 "$bin" run -c step.yaml --overwrite --restart >"$work/restart.log" 2>&1); rc=$?
[ "$rc" = 0 ] && ! grep -q resuming "$work/restart.log" && ok "--restart starts over" || bad "--restart: exit $rc"
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
