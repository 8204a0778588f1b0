#!/usr/bin/env bash
# The preemption path of jobs/uqmerge.slurm on a real (private, single-node) Slurm, with the
# real uqmerge: a 2-rank `uqmerge run` job gets `scancel --batch --signal=USR1` once it has
# finished a model evaluation; the script passes USR1 on, every rank stops at a safe point with
# the resume state saved (exit 75), the script requeues the job, and the requeued run resumes:
# no evaluation finished before the signal is redone, and the results (results.h5 numbers,
# merged tensors) equal those of an uninterrupted job on the same case.
#   test_slurm_requeue.sh UQMERGE_BINARY UQ_CASE_DIR PYTHON REPO_ROOT
# Exit 77 (ctest SKIP) when Slurm or munge is not installed. Every wait has a timeout: a
# uqmerge without the resume protocol fails here with the reason, it does not hang (the waits
# add up to 540 s at most, under ctest's TIMEOUT of 600).
# shellcheck source-path=SCRIPTDIR
set -euo pipefail
bin=$1
case_dir=$2
py=$3
repo=$4
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=slurm_cluster.sh
source "$here/slurm_cluster.sh"
# shellcheck source=../lib/testlib.sh
source "$here/../lib/testlib.sh"
require_slurm
start_work_cluster slurm-requeue

# 3 candidates, 100 rows, 16 perturbations: 5 evaluations (the first ~10 s, the others ~2 s on 2 CPUs), so
# that after the first one there is time for the signal to land (a much faster machine: raise 16).
"$py" "$here/make_long_case.py" "$work/case" "$case_dir" 100 16
cd "$work"
export UQMERGE=$bin

# ---- the uninterrupted reference ------------------------------------------------------------
t0=$SECONDS
ref=$(sbatch --parsable "${cpu_job[@]}" "$repo/jobs/uqmerge.slurm" case/config_ref.yaml)
slurm_job_wait_done "$ref" 150 || scancel "$ref" || true
read -r state code _ <<<"$(job_final "$ref")"
echo "reference job $ref: $state $code after $((SECONDS - t0)) s"
if [ "$state $code" != "COMPLETED 0:0" ]; then
  show_job_log "uqmerge-$ref.out"
  echo "FAIL the uninterrupted reference job did not complete"
  exit 1
fi

# ---- the interrupted job --------------------------------------------------------------------
t0=$SECONDS
jid=$(sbatch --parsable "${cpu_job[@]}" "$repo/jobs/uqmerge.slurm" case/config_requeue.yaml)
log=$work/uqmerge-$jid.out
echo "submitted job $jid"
# One finished evaluation: uqmerge's progress line "uq NAME: N/N evals" or its state file
# (OUTPUT_DIR/state.uqs, written after every evaluation).
finished_one() {
  grep -qE '^uq [^ ]+: ([0-9]+)/\1 evals' "$log" 2>/dev/null || [ -e case/run_requeue/state.uqs ]
}
while ! finished_one; do
  if [ -z "$(squeue -h -j "$jid" -o %i 2>/dev/null || true)" ]; then
    show_job_log "$log"
    echo "FAIL job $jid ended before it finished one evaluation: $(job_final "$jid")"
    exit 1
  fi
  if [ $((SECONDS - t0)) -ge 120 ]; then
    show_job_log "$log"
    echo "FAIL job $jid finished no evaluation within 120 s"
    exit 1
  fi
  sleep 0.2
done
echo "first evaluation finished after $((SECONDS - t0)) s: scancel --batch --signal=USR1 $jid"
scancel --batch --signal=USR1 "$jid"

# The job must come back: Restarts=1 (pending for cred_expire, then running again).
t1=$SECONDS
while [ "$(slurm_job_field "$jid" Restarts)" = 0 ] && [ -n "$(squeue -h -j "$jid" -o %i 2>/dev/null || true)" ] \
  && [ $((SECONDS - t1)) -lt 90 ]; do
  sleep 0.5
done
restarts=$(slurm_job_field "$jid" Restarts)
if [ "${restarts:-0}" = 0 ]; then
  show_job_log "$log"
  read -r state code _ <<<"$(job_final "$jid")"
  if grep -q "Exited with exit code 75" "$log"; then
    why="uqmerge stopped with 75 but the script did not requeue the job"
  elif grep -qiE "signal 10|User defined signal 1|SIGUSR1" "$log" && ! grep -q "exit code 75" "$log"; then
    why="uqmerge did not stop at a safe point on SIGUSR1, the signal ended it: this uqmerge has no resume protocol (SIGUSR1/SIGTERM -> state saved, exit 75) yet"
  elif [ "$state" = COMPLETED ]; then
    why="the job finished before the signal took effect (make the case longer)"
  else
    why="unexpected"
  fi
  echo "FAIL job $jid was not requeued ($state $code): $why"
  exit 1
fi
echo "job $jid requeued after $((SECONDS - t1)) s; waiting for it to finish"
slurm_job_wait_done "$jid" 180 || scancel "$jid" || true
read -r state code restarts <<<"$(job_final "$jid")"
echo "job $jid: $state $code, $restarts restart(s), $((SECONDS - t0)) s in all"

expect "the requeued job completes with exit 0:0 after 1 restart (got $state $code, $restarts)" -- \
  test "$state $code $restarts" = "COMPLETED 0:0 1"
expect "uqmerge stopped with exit 75 on every rank" -- grep -q "Exited with exit code 75" "$log"
expect "the script requeued the job" -- grep -q "requeued job $jid" "$log"
expect "the job ran a second time" -- grep -q "job $jid (run 2)" "$log"
expect "the second run finished" -- grep -q "uqmerge finished" "$log"

# Evaluations finished in the first run (before the requeue) are not redone in the second.
sed -n "1,/requeued job $jid/p" "$log" >"$work/run1.log"
sed -n "/job $jid (run 2)/,\$p" "$log" >"$work/run2.log"
grep -oE '^uq [^ ]+: ([0-9]+)/\1 evals' "$work/run1.log" | sed -E 's/^uq ([^ ]+): .*/\1/' | sort -u >"$work/done1" || true
expect "the first run finished at least one evaluation ($(tr '\n' ' ' <"$work/done1"))" -- test -s "$work/done1"
redone=""
while read -r name; do
  if grep -qF "uq $name: " "$work/run2.log"; then redone="$redone $name"; fi
done <"$work/done1"
expect "the second run resumed: no finished evaluation redone (redone:${redone:- none})" -- test -z "$redone"
expect "results.h5 and merged/ equal the uninterrupted run's" -- \
  "$py" "$here/../lib/uqtest.py" compare case/run_ref case/run_requeue
[ "$fail" -eq 0 ] || show_job_log "$log"

testlib_summary
