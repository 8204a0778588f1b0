#!/usr/bin/env bash
# jobs/uqmerge.slurm on a real (private, single-node) Slurm: the e2e case's Algorithm 1 run as
# a 2-rank CPU-only job must complete (exit 0:0), wire up 2 MPI ranks through PMIx, and write
# the same numbers and merged model as the direct mpirun run (e2e_run_np2). A job given a
# missing config must fail before srun with exit 2 and say why in its log.
#   test_slurm_job.sh UQMERGE_BINARY UQ_CASE_DIR PYTHON REPO_ROOT
# Exit 77 (ctest SKIP) when Slurm or munge is not installed. UQMERGE_KEEP_TMP=1 keeps the
# work directory (cluster logs, job logs, outputs).
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
start_work_cluster slurm-job

# A copy of the case without its outputs (run_*): the job writes its own run_alg1.
cp -r "$case_dir" "$work/case"
rm -rf "$work"/case/run_*
cd "$work"  # the submit directory: uqmerge-JOBID.out lands here
export UQMERGE=$bin

# ---- a good job ---------------------------------------------------------------------------
jid=$(sbatch --parsable "${cpu_job[@]}" "$repo/jobs/uqmerge.slurm" case/config_run.yaml)
echo "submitted job $jid"
t0=$SECONDS
slurm_job_wait_done "$jid" 240 || scancel "$jid" || true
echo "job $jid left the queue after $((SECONDS - t0)) s"
log=$work/uqmerge-$jid.out
read -r state code _ <<<"$(job_final "$jid")"
expect "job $jid ends COMPLETED with exit 0:0 (got $state $code)" -- test "$state $code" = "COMPLETED 0:0"
acct=$(slurm_job_completion "$jid")
expect "sacct --completion records COMPLETED 0:0 (got '$acct')" -- test "$acct" = "COMPLETED 0:0"
expect "the log says the job runs CPU-only" -- grep -q "CPU only: no GPU allocated" "$log"
expect "2 ranks of 1 thread, wired up through PMIx (uqmerge logs [rank 0/2])" -- \
  grep -q -e "2 ranks, 1 threads each" "$log"
expect "... uqmerge sees 2 ranks" -- grep -q "\[rank 0/2\]" "$log"
expect "the script reports success" -- grep -q "uqmerge finished" "$log"
expect "results.h5 and merged/ written" -- test -f case/run_alg1/results.h5 -a -d case/run_alg1/merged
if [ -f "$case_dir/run_alg1/results.h5" ]; then
  expect "same numbers and merged tensors as the direct mpirun run (e2e_run_np2)" -- \
    "$py" "$here/../lib/uqtest.py" compare "$case_dir/run_alg1" case/run_alg1
else
  expect "$case_dir/run_alg1/results.h5 (from e2e_run_np2) exists to compare with" -- false
fi
[ "$fail" -eq 0 ] || show_job_log "$log"

# ---- a missing config: exit 2 before srun, with the reason in the log ----------------------
before=$fail
jid=$(sbatch --parsable "${cpu_job[@]}" "$repo/jobs/uqmerge.slurm" case/no-such-config.yaml)
slurm_job_wait_done "$jid" 60 || scancel "$jid" || true
log=$work/uqmerge-$jid.out
read -r state code _ <<<"$(job_final "$jid")"
expect "a missing config: job FAILED with exit 2:0 (got $state $code)" -- test "$state $code" = "FAILED 2:0"
expect "... its log names the config" -- grep -q "ERROR: config 'case/no-such-config.yaml' does not exist" "$log"
expect "... and srun never ran" -- bash -c "! grep -q srun '$log'"
[ "$fail" -eq "$before" ] || show_job_log "$log"

testlib_summary
