# shellcheck shell=bash
# Shared by the tests/slurm/test_*.sh scripts (sourced after slurm_cluster.sh): a work
# directory with a private cluster that is stopped on every exit, checks that count failures
# instead of ending the script, and the final state of a job.

fails=0
# expect MESSAGE COMMAND [ARGS...]: runs the command; prints ok/FAIL with the message.
expect() {
  local msg=$1
  shift
  if "$@"; then
    echo "ok   $msg"
  else
    echo "FAIL $msg"
    fails=$((fails + 1))
  fi
}

# Skips the test (ctest SKIP_RETURN_CODE 77) when the Slurm/munge binaries are missing.
require_slurm() {
  if ! slurm_cluster_have_binaries; then
    echo "SKIP: Slurm/munge binaries missing (need: $SLURM_CLUSTER_BINARIES)"
    exit 77
  fi
}

# Makes $work (kept on failure or with UQMERGE_KEEP_TMP=1) and starts the cluster in
# $work/cluster; both are cleaned up when the script exits, however it exits.
start_work_cluster() {  # NAME
  work=$(mktemp -d "${TMPDIR:-/tmp}/uqmerge-$1.XXXXXX")
  trap _finish_work EXIT
  trap 'exit 1' INT TERM HUP  # ctest's timeout or Ctrl-C: still stop the cluster
  local t0=$SECONDS
  slurm_cluster_start "$work/cluster"
  echo "cluster up in $((SECONDS - t0)) s"
}
_finish_work() {
  local rc=$?
  trap - EXIT
  [ "$rc" -ne 77 ] || rc=1  # 77 means "skipped", and only require_slurm may say that
  slurm_cluster_stop "$work/cluster" || true
  if [ "$rc" -ne 0 ] || [ "$fails" -ne 0 ] || [ "${UQMERGE_KEEP_TMP:-0}" = 1 ]; then
    echo "work directory kept: $work"
  else
    rm -rf "$work"
  fi
  exit "$rc"
}

# "STATE EXITCODE RESTARTS" of a job: from the controller while it remembers the job, else from
# the job completion log (restarts unknown there: "?").
job_final() {  # JOBID
  local state code restarts
  state=$(slurm_job_field "$1" JobState)
  code=$(slurm_job_field "$1" ExitCode)
  restarts=$(slurm_job_field "$1" Restarts)
  if [ -z "$state" ]; then
    read -r state code <<<"$(slurm_job_completion "$1")"
    restarts="?"
  fi
  echo "${state:-?} ${code:-?} ${restarts:-?}"
}

# Prints a job's log and the daemons' error lines (after a failed check).
show_job_log() {  # FILE
  echo "---- $1"
  cat "$1" 2>/dev/null || echo "(no log)"
  echo "---- errors in the cluster's logs"
  grep -h -i error "$work"/cluster/log/slurm*.log 2>/dev/null \
    | grep -v -e "state file" -e "backup state save file" | tail -20 || true
  echo "----"
}

# The options that fit the script's GPU-node defaults onto this test node: 2 CPUs, no GPU.
# shellcheck disable=SC2034  # used by the test scripts
cpu_job=(-N 1 -n 2 --ntasks-per-node=2 --cpus-per-task=1 --gpus-per-task=0)
