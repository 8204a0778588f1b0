#!/usr/bin/env bash
# jobs/uqmerge.slurm's own logic on a real (private, single-node) Slurm, with fake_uqmerge.sh in
# place of uqmerge (same resume protocol, 1 s "evaluations", no model compute):
#   1. USR1 to the batch shell -> passed on to both ranks -> exit 75 -> the script requeues the
#      job -> the second run resumes (and does not get the first run's --restart) -> COMPLETED 0:0
#   2. a plain scancel (SIGTERM to every process) -> exit 75 but the job stays CANCELLED: the
#      script must not requeue a cancelled job
#   3. an internal error (uqmerge exit 3) -> the job FAILED with exit 1
#   test_slurm_protocol.sh REPO_ROOT
# Exit 77 (ctest SKIP) when Slurm or munge is not installed.
# shellcheck source-path=SCRIPTDIR
set -euo pipefail
repo=$1
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=slurm_cluster.sh
source "$here/slurm_cluster.sh"
# shellcheck source=../lib/testlib.sh
source "$here/../lib/testlib.sh"
require_slurm
start_work_cluster slurm-protocol
cd "$work"
export UQMERGE=$here/fake_uqmerge.sh FAKE_STEPS=6

# Waits until the log shows evaluation N (returns 1 after 60 s or when the job left the queue).
wait_eval() {  # JOBID N
  local t0=$SECONDS
  until grep -q "evaluation $2 of" "uqmerge-$1.out" 2>/dev/null; do
    [ -n "$(squeue -h -j "$1" -o %i 2>/dev/null || true)" ] && [ $((SECONDS - t0)) -lt 60 ] || return 1
    sleep 0.2
  done
}

# ---- 1. USR1: requeue and resume ------------------------------------------------------------
mkdir a && echo "output_dir: out" >a/config.yaml
jid=$(sbatch --parsable "${cpu_job[@]}" "$repo/jobs/uqmerge.slurm" a/config.yaml --restart)
expect "job $jid runs its first evaluation" -- wait_eval "$jid" 1
scancel --batch --signal=USR1 "$jid"
slurm_job_wait_done "$jid" 90 || scancel "$jid" || true
read -r state code restarts <<<"$(job_final "$jid")"
expect "USR1: the job is requeued once and completes 0:0 (got $state $code $restarts)" -- \
  test "$state $code $restarts" = "COMPLETED 0:0 1"
# fake/runs: "run START END EXIT" per run: stopped with 75 after k < 6, then resumed at k.
runs=$(tr '\n' ';' <a/fake/runs 2>/dev/null || true)
expect "the first run stopped with 75, the second resumed where it stopped (runs: $runs)" -- \
  bash -c '[[ "$0" =~ ^run\ 0\ ([1-5])\ 75\;run\ ([1-5])\ 6\ 0\;$ ]] && [ "${BASH_REMATCH[1]}" = "${BASH_REMATCH[2]}" ]' "$runs"
expect "the requeued run dropped --restart" -- grep -q "requeued run: ignoring --restart" "uqmerge-$jid.out"
[ "$fail" -eq 0 ] || show_job_log "uqmerge-$jid.out"

# ---- 2. scancel: stop at a safe point, no requeue -------------------------------------------
before=$fail
mkdir b && echo "output_dir: out" >b/config.yaml
jid=$(sbatch --parsable "${cpu_job[@]}" "$repo/jobs/uqmerge.slurm" b/config.yaml)
expect "job $jid runs its first evaluation" -- wait_eval "$jid" 1
scancel "$jid"
slurm_job_wait_done "$jid" 60 || true
sleep 1  # the requeue the script must not do would come right after the job left the queue
read -r state code restarts <<<"$(job_final "$jid")"
expect "scancel: the job stays CANCELLED, not requeued (got $state $code $restarts)" -- \
  test "$state $restarts" = "CANCELLED 0"
expect "... the ranks stopped at a safe point (exit 75)" -- grep -q "^run 0 [1-5] 75$" b/fake/runs
expect "... and the script says it did not requeue" -- grep -q "not requeued by this script" "uqmerge-$jid.out"
[ "$fail" -eq "$before" ] || show_job_log "uqmerge-$jid.out"

# ---- 3. an internal error maps to exit 1 ------------------------------------------------------
before=$fail
printf '#!/bin/sh\n[ "$1" = --version ] && exit 0\necho "ERROR something broke" >&2\nexit 3\n' >broken.sh
chmod +x broken.sh
jid=$(UQMERGE=$work/broken.sh sbatch --parsable "${cpu_job[@]}" "$repo/jobs/uqmerge.slurm" a/config.yaml)
slurm_job_wait_done "$jid" 60 || scancel "$jid" || true
read -r state code _ <<<"$(job_final "$jid")"
expect "uqmerge exit 3: the job FAILED with exit 1:0 (got $state $code)" -- test "$state $code" = "FAILED 1:0"
[ "$fail" -eq "$before" ] || show_job_log "uqmerge-$jid.out"

testlib_summary
