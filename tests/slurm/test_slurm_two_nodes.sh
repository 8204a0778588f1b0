#!/usr/bin/env bash
# jobs/uqmerge.slurm across two nodes, on this one machine: two slurmd "hosts" in network
# namespaces of their own (tests/slurm/slurm_cluster.sh, `slurm_cluster_start DIR 2`), OpenMPI
# wired up by PMIx and talking TCP between them.
#   1. a 2-node x 2-rank `uqmerge run` of the e2e case: COMPLETED, 4 ranks on nodea and nodeb,
#      and the same numbers and merged model as the 1-node, 2-rank run (e2e_run_np2);
#   2. a node lost mid-job (its link cut, every process on it killed, after the job finished at
#      least one evaluation): the job ends (not hangs) with a message in its log and the resume
#      state on the shared file system; with the node back, the same job script resumes from that
#      state (the log says how many evaluations it kept) and ends with the numbers of an
#      uninterrupted run;
#   3. a rank on the second node frozen mid-job (SIGSTOP: alive to the network, silent to the
#      watchdog): the ranks on nodea see its heartbeat, written on nodeb to the shared output
#      directory, go stale and end the job within 60 s with a message naming that rank.
#   test_slurm_two_nodes.sh UQMERGE_BINARY UQ_CASE_DIR PYTHON REPO_ROOT
# Exit 77 (ctest SKIP) without Slurm/munge or without network namespaces (not root, or no
# CAP_NET_ADMIN, as in some containers). UQMERGE_KEEP_TMP=1 keeps the work directory.
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
if ! slurm_cluster_netns_ok; then
  echo "SKIP: cannot make network namespaces here (needs root with CAP_NET_ADMIN)"
  exit 77
fi
start_work_cluster slurm-two-nodes 2
two_nodes=(-N 2 -n 4 --ntasks-per-node=2 --cpus-per-task=1 --gpus-per-task=0 --no-requeue)
# Other rank counts batch other (sample, j) pairs together: fp32 results agree to ~5e-9 here;
# 1e-6 is the tolerance uqmerge states across rank counts (tests/e2e/check_uq.py).
compare() { "$py" "$here/../lib/uqtest.py" compare --tol 1e-6 --ignore-attr ranks "$@"; }
cp -r "$case_dir" "$work/case"
rm -rf "$work"/case/run_*
cd "$work"
export UQMERGE=$bin

# ---- 1. two nodes = one node --------------------------------------------------------------------
jid=$(sbatch --parsable "${two_nodes[@]}" "$repo/jobs/uqmerge.slurm" case/config_run.yaml)
slurm_job_wait_done "$jid" 300 || scancel "$jid" || true
log=$work/uqmerge-$jid.out
read -r state code _ <<<"$(job_final "$jid")"
expect "2-node job $jid ends COMPLETED 0:0 (got $state $code)" -- test "$state $code" = "COMPLETED 0:0"
expect "... on nodea and nodeb, 4 ranks" -- grep -q "on 2 node(s) \[nodea,nodeb\]: 4 ranks" "$log"
expect "... uqmerge sees 4 ranks" -- grep -q "\[rank 0/4\]" "$log"
expect "... same numbers and merged tensors as the 1-node 2-rank run (e2e_run_np2)" -- \
  compare "$case_dir/run_alg1" case/run_alg1
[ "$fail" -eq 0 ] || show_job_log "$log"

# ---- 2. a node lost mid-job, then resumed --------------------------------------------------------
before=$fail
"$py" "$here/make_long_case.py" "$work/long" "$case_dir" 100 16
ref=$(sbatch --parsable "${cpu_job[@]}" -w nodea "$repo/jobs/uqmerge.slurm" long/config_ref.yaml)
slurm_job_wait_done "$ref" 240 || scancel "$ref" || true
read -r state code _ <<<"$(job_final "$ref")"
expect "uninterrupted 1-node reference job $ref: COMPLETED 0:0 (got $state $code)" -- test "$state $code" = "COMPLETED 0:0"

jid=$(sbatch --parsable "${two_nodes[@]}" "$repo/jobs/uqmerge.slurm" long/config_requeue.yaml)
log=$work/uqmerge-$jid.out
t0=$SECONDS
until [ -e long/run_requeue/state.uqs ]; do  # written after each evaluation
  if [ -z "$(squeue -h -j "$jid" -o %i 2>/dev/null || true)" ] || [ $((SECONDS - t0)) -ge 180 ]; then
    break
  fi
  sleep 0.2
done
expect "job $jid finished an evaluation on 2 nodes before the node is lost" -- test -e long/run_requeue/state.uqs
slurm_cluster_node_lost "$work/cluster" nodeb
t0=$SECONDS
slurm_job_wait_done "$jid" 150 || scancel "$jid" || true
ended=$((SECONDS - t0))
read -r state code _ <<<"$(job_final "$jid")"
echo "job $jid after the loss of nodeb: $state $code, ended $ended s later"
expect "... the job ended within 150 s of the loss (took $ended s)" -- test "$ended" -lt 150
expect "... not COMPLETED (got $state $code)" -- test "$state" != COMPLETED
expect "... its log says why (node failure or a failed rank)" -- \
  grep -qiE "node fail|uqmerge failed|lost|cancelled|killed" "$log"
expect "... no results.h5 or merged/ that look complete" -- nothing_complete long/run_requeue
expect "... the resume state is kept" -- test -s long/run_requeue/state.uqs
[ "$fail" -eq "$before" ] || show_job_log "$log"

before=$fail
slurm_cluster_node_back "$work/cluster" nodeb
jid2=$(sbatch --parsable "${two_nodes[@]}" "$repo/jobs/uqmerge.slurm" long/config_requeue.yaml)
slurm_job_wait_done "$jid2" 300 || scancel "$jid2" || true
log2=$work/uqmerge-$jid2.out
read -r state code _ <<<"$(job_final "$jid2")"
expect "resubmitted job $jid2 on both nodes: COMPLETED 0:0 (got $state $code)" -- test "$state $code" = "COMPLETED 0:0"
expect "... it resumed from the saved state" -- grep -qE "resuming from .*state.uqs: [1-9][0-9]* evaluation\(s\) already done" "$log2"
expect "... with the uninterrupted run's numbers and merged tensors" -- compare long/run_ref long/run_requeue
[ "$fail" -eq "$before" ] || show_job_log "$log2"

# ---- 3. a rank frozen on nodeb ---------------------------------------------------------------------
before=$fail
sed -e 's/^output_dir: .*/output_dir: run_frozen/' long/config_requeue.yaml >long/config_frozen.yaml
printf 'watchdog: {heartbeat_s: 0.5, stale_s: 5}\n' >>long/config_frozen.yaml
jid3=$(sbatch --parsable "${two_nodes[@]}" "$repo/jobs/uqmerge.slurm" long/config_frozen.yaml)
log3=$work/uqmerge-$jid3.out
t0=$SECONDS
until [ -e long/run_frozen/state.uqs ] || [ $((SECONDS - t0)) -ge 180 ]; do sleep 0.2; done
victim=""
for p in $(pgrep -f "uqmerge run -c .*config_frozen.yaml" || true); do
  tr '\0' '\n' <"/proc/$p/environ" 2>/dev/null | grep -qx "SLURM_PROCID=3" && victim=$p
done
expect "job $jid3: rank 3 (on nodeb) found mid-job" -- test -n "$victim"
[ -n "$victim" ] && kill -STOP "$victim"
t0=$SECONDS
slurm_job_wait_done "$jid3" 120 || scancel "$jid3" || true
ended=$((SECONDS - t0))
[ -n "$victim" ] && kill -KILL "$victim" 2>/dev/null || true
read -r state code _ <<<"$(job_final "$jid3")"
echo "job $jid3 after rank 3 froze: $state $code, ended $ended s later"
expect "... ended within 60 s (took $ended s), not COMPLETED (got $state)" -- test "$ended" -le 60 -a "$state" != COMPLETED
expect "... the watchdog named rank 3 on nodeb" -- grep -qE "ERROR watchdog: rank 3 \(host nodeb, pid $victim;.*has not beaten" "$log3"
expect "... no results.h5 or merged/ that look complete" -- nothing_complete long/run_frozen
[ "$fail" -eq "$before" ] || show_job_log "$log3"

testlib_summary
