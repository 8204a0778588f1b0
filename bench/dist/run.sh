#!/usr/bin/env bash
# The watchdog's cost (issue #14 item 6): uqmerge's numbered, polled MPI collectives beside the
# same blocking MPI calls in one run, at 2 ranks (and 3, oversubscribed, when asked).
# Usage: bench/dist/run.sh [BUILD_DIR] [RANKS...]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
source scripts/env.sh
build=$(realpath "${1:-$UQMERGE_BUILD}")
shift || true
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
for np in ${@:-2}; do
  mpirun --oversubscribe -np "$np" "$build/bench/uqmerge_bench_collectives" 50
  echo
done
