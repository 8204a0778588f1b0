#!/usr/bin/env bash
# Resume: `uqmerge run` stopped at several points (the safe-stop path SIGUSR1 takes, triggered
# deterministically after n evaluations; a real SIGUSR1 through mpirun; a SIGKILL mid-run) and
# rerun until it finishes must give the same results.h5 numbers (compared both ways) and merged
# tensors as an uninterrupted run; a changed config must refuse to resume; --restart starts over.
#   test_resume.sh UQMERGE_BINARY CASE_DIR PYTHON MPIEXEC
set -uo pipefail
bin=$1 case=$2 py=$3 mpiexec=$4
lib=$(cd "$(dirname "$0")/../lib" && pwd)
# shellcheck source-path=SCRIPTDIR source=../lib/testlib.sh
source "$lib/testlib.sh"
testlib_work
cp -r "$case"/cand_a "$case"/cand_b "$case"/data.tsv "$work"/
sed 's/^output_dir: .*/output_dir: OUT/' "$case/config_run.yaml" >"$work/base.yaml"
run() {  # OUTDIR [env...] -- runs 2 ranks; prints the exit code
  local out=$1; shift
  sed "s/^output_dir: OUT/output_dir: $out/" "$work/base.yaml" >"$work/$out.yaml"
  (cd "$work" && env "$@" "$mpiexec" -n 2 "$bin" run -c "$out.yaml" >>"$work/$out.log" 2>&1)
  echo $?
}
same() {  # OUTDIR: results.h5 (both ways: a group, dataset or attribute missing on either side
  # differs; every value bit for bit, timings and paths aside) and merged/ equal the uninterrupted
  # run's (tests/lib/uqtest.py compare --exact)
  "$py" "$lib/uqtest.py" compare --exact "$work/full" "$work/$1"
}

[ "$(run full)" = 0 ] && ok "uninterrupted run" || bad "uninterrupted run"
# Stop after every single evaluation: each rerun resumes and adds one.
rc=75 n=0
while [ "$rc" = 75 ] && [ $n -lt 40 ]; do rc=$(run step UQMERGE_TEST_STOP_AFTER=1); n=$((n + 1)); done
[ "$rc" = 0 ] && [ $n -gt 3 ] && ok "stopped after each evaluation, finished after $n launches" || bad "stop/resume loop (rc $rc after $n launches)"
grep -q "resuming from .*state.uqs" "$work/step.log" && ok "reruns say they resume" || bad "no resume message"
same step && ok "stop/resume gives identical numbers" || bad "stop/resume numbers differ"
# A real SIGUSR1 sent to mpirun (forwarded to the ranks) once the first candidate is done.
sed "s/^output_dir: OUT/output_dir: sig/" "$work/base.yaml" >"$work/sig.yaml"
(cd "$work" && exec "$mpiexec" -n 2 "$bin" run -c sig.yaml >"$work/sig.log" 2>&1) &
pid=$!
for _ in $(seq 600); do grep -q "candidate .*uncertainty" "$work/sig.log" 2>/dev/null && break; sleep 0.05; done
kill -USR1 $pid
wait $pid; rc=$?
[ "$rc" = 75 ] && ok "SIGUSR1 stops at a safe point with exit 75" || bad "SIGUSR1: exit $rc (want 75)"
nothing_complete "$work/sig/results.h5" && ok "no results.h5 after a stop" || bad "a stopped run left a results.h5"
[ "$(run sig)" = 0 ] && same sig && ok "SIGUSR1 then rerun: identical numbers" || bad "SIGUSR1 resume"
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
elif [ "$(run kill)" = 0 ] && same kill; then
  ok "SIGKILL mid-run then rerun: identical numbers"
else
  bad "SIGKILL resume"; tail -n 15 "$work/kill.log"
fi
# A rank stopped mid-run (SIGSTOP: its heartbeat stops) ends the job within 60 s naming it,
# with the state kept; the rerun finishes with identical numbers (#14 item 6).
sed "s/^output_dir: OUT/output_dir: hang/" "$work/base.yaml" >"$work/hang.yaml"
printf 'watchdog: {heartbeat_s: 0.5, stale_s: 3}\n' >>"$work/hang.yaml"
(cd "$work" && exec "$mpiexec" -n 2 "$bin" run -c hang.yaml >"$work/hang.log" 2>&1) &
pid=$!
for _ in $(seq 600); do grep -q "candidate .*uncertainty" "$work/hang.log" 2>/dev/null && break; sleep 0.05; done
r1=""
for p in $(pgrep -f "uqmerge run -c hang.yaml"); do
  tr '\0' '\n' <"/proc/$p/environ" 2>/dev/null | grep -qx "OMPI_COMM_WORLD_RANK=1" && r1=$p
done
t0=$(date +%s)
[ -n "$r1" ] && kill -STOP "$r1"
wait $pid; rc=$?
secs=$(( $(date +%s) - t0 ))
if [ -z "$r1" ] || [ -e "$work/hang/results.h5" ]; then
  bad "SIGSTOP did not land mid-run (rank 1 not found, or the run finished first)"; tail -n 15 "$work/hang.log"
elif [ "$rc" -ne 0 ] && [ "$secs" -le 60 ] && grep -q "ERROR watchdog: rank 1 (host .*pid $r1;.*has not beaten for" "$work/hang.log" &&
  [ -e "$work/hang/state.uqs" ]; then
  ok "a stopped rank ends the job in ${secs}s naming rank 1 (pid $r1), state kept"
  [ "$(run hang)" = 0 ] && same hang && ok "stopped rank then rerun: identical numbers" || bad "resume after a stopped rank"
else
  bad "stopped rank: exit $rc after ${secs}s"; tail -n 15 "$work/hang.log"
fi
kill -KILL "$r1" 2>/dev/null
# A truncated state file is refused (exit 2, names the file and --restart), nothing written.
head -c 100 "$work/step/state.uqs" >"$work/trunc.uqs" && mkdir -p "$work/trunc" && cp "$work/trunc.uqs" "$work/trunc/state.uqs"
sed "s/^output_dir: OUT/output_dir: trunc/" "$work/base.yaml" >"$work/trunc.yaml"
(cd "$work" && "$mpiexec" -n 2 "$bin" run -c trunc.yaml >"$work/trunc.log" 2>&1); rc=$?
[ "$rc" = 2 ] && grep -q "trunc/state.uqs: corrupt or truncated resume state.*--restart" "$work/trunc.log" &&
  nothing_complete "$work/trunc" && ok "truncated state refused (exit 2, names --restart)" ||
  bad "truncated state: exit $rc"
# A changed config refuses to resume; --restart starts over.
sed -i 's/^seed: .*/seed: 8/' "$work/step.yaml"
(cd "$work" && "$mpiexec" -n 2 "$bin" run -c step.yaml --overwrite >"$work/changed.log" 2>&1); rc=$?
[ "$rc" = 2 ] && grep -q "state.uqs: was written by another config.*--restart" "$work/changed.log" && ok "changed config refused (exit 2, names --restart)" || bad "changed config: exit $rc"
(cd "$work" && "$mpiexec" -n 2 "$bin" run -c step.yaml --overwrite --restart >"$work/restart.log" 2>&1); rc=$?
[ "$rc" = 0 ] && ! grep -q resuming "$work/restart.log" && ok "--restart starts over" || bad "--restart: exit $rc"
testlib_summary
