#!/usr/bin/env bash
# Runs hang_probe's three modes on 2 ranks: a stopped rank and a stuck rank each end the job
# with a message naming rank 1 well within 60 s; a rank that only computes longer than the
# heartbeat limit does not (the job completes, exit 0).
set -u
probe=$1
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
fail=0
run() {  # mode -> sets out, rc, secs
  local t0=$(date +%s)
  out=$(timeout 90 "${MPIEXEC:-mpirun}" ${MPIEXEC_FLAGS:-} -np 2 "$probe" "$1" "$dir/hb_$1" 2>&1)
  rc=$?
  secs=$(( $(date +%s) - t0 ))
  echo "--- mode $1: exit $rc after ${secs}s"
  echo "$out" | grep -E "watchdog|probe|ERROR" | head -5
}
expect_named() {  # mode pattern
  run "$1"
  if [ "$rc" -eq 0 ] || [ "$rc" -eq 124 ]; then echo "FAIL ($1): exit $rc (expected the watchdog to end the job)"; fail=1; return; fi
  if [ "$secs" -gt 60 ]; then echo "FAIL ($1): took ${secs}s (limit 60)"; fail=1; fi
  grep -qE "$2" <<<"$out" || { echo "FAIL ($1): no line matching: $2"; fail=1; }
}
expect_named stop "rank 0/2\] ERROR watchdog: rank 1 \(host [^,]+, pid [0-9]+; last heard [^)]+\) has not beaten for [0-9]+ s while rank 0/2 waits in allreduce"
expect_named stuck "ERROR watchdog: rank 0/2 waits in allreduce #[0-9]+ for [0-9]+ s: not reached by rank 1 \(host [^,]+, pid [0-9]+; last heard computing after allreduce"
run slow
if [ "$rc" -ne 0 ]; then echo "FAIL (slow): exit $rc: a rank computing past stale_s must not be judged hung"; fail=1; fi
grep -q "probe: completed, sum 4" <<<"$out" || { echo "FAIL (slow): the job did not complete"; fail=1; }
[ -z "$(ls -A "$dir/hb_slow" 2>/dev/null)" ] || { echo "FAIL (slow): heartbeat files left behind"; fail=1; }
[ "$fail" -eq 0 ] && echo "OK: stopped and stuck ranks named and ended within 60 s; a slow rank left alone"
exit "$fail"
