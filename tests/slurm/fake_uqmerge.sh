#!/usr/bin/env bash
# A stand-in for `uqmerge run` that follows its resume protocol, so the batch script's signal
# forwarding, requeue and exit-code handling are tested without model compute:
#   fake_uqmerge.sh --version
#   fake_uqmerge.sh run -c CONFIG [--restart] [...]
# Every rank counts STEPS (default 8) "evaluations" of 1 s; rank 0 records the next one in
# DIR(CONFIG)/fake/state after each. A rerun continues from the state (--restart: from 0). On
# SIGUSR1 or SIGTERM every rank stops after the evaluation in progress and exits 75. Each run
# appends "run START END EXIT" (rank 0) to DIR(CONFIG)/fake/runs. Exit 2 when CONFIG is missing.
set -euo pipefail

if [ "${1:-}" = "--version" ]; then
  echo "uqmerge 0.0.0-fake"
  exit 0
fi
if [ "${1:-}" != "run" ] || [ "${2:-}" != "-c" ] || [ -z "${3:-}" ]; then
  echo "usage: $0 run -c CONFIG" >&2
  exit 2
fi
config=$3
shift 3
restart=0
for a in "$@"; do
  [ "$a" = "--restart" ] && restart=1
done
if [ ! -f "$config" ]; then
  echo "ERROR config $config: no such file" >&2
  exit 2
fi
dir=$(dirname "$config")/fake
rank=${SLURM_PROCID:-0}
steps=${FAKE_STEPS:-8}
mkdir -p "$dir"

stop=0
trap 'stop=1' USR1 TERM
start=0
if [ "$restart" -eq 0 ] && [ -f "$dir/state" ]; then
  start=$(cat "$dir/state")
  [ "$rank" -ne 0 ] || echo "resuming at evaluation $start of $steps"
fi
i=$start
while [ "$i" -lt "$steps" ]; do
  # One evaluation: `sleep` in the background so that a signal is handled at once.
  sleep 1 &
  wait $! || wait $! || true
  i=$((i + 1))
  if [ "$rank" -eq 0 ]; then
    echo "$i" >"$dir/state.tmp"
    mv "$dir/state.tmp" "$dir/state"
    echo "evaluation $i of $steps done"
  fi
  if [ "$stop" -eq 1 ] && [ "$i" -lt "$steps" ]; then
    [ "$rank" -ne 0 ] || { echo "stopped at a safe point after evaluation $i"; echo "run $start $i 75" >>"$dir/runs"; }
    exit 75
  fi
done
[ "$rank" -ne 0 ] || echo "run $start $i 0" >>"$dir/runs"
exit 0
