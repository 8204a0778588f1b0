#!/usr/bin/env bash
# Builds uqmerge and runs the whole test suite: unit, MPI (mpirun -np 1/2), reference
# (against transformers / the Python safetensors package) and end-to-end tests.
# Installs missing dependencies first (scripts/setup.sh). Extra arguments go to ctest,
# e.g. scripts/test.sh -L unit   or   scripts/test.sh -R Safetensors
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
source scripts/env.sh
bash scripts/setup.sh
start=$(date +%s)
cmake -S . -B "$UQMERGE_BUILD" -G Ninja -DUQMERGE_PYTHON="$UQMERGE_VENV/bin/python" >/dev/null
cmake --build "$UQMERGE_BUILD" -j"$(nproc)"
echo "[test] build took $(( $(date +%s) - start ))s"
ctest --test-dir "$UQMERGE_BUILD" -j"$(nproc)" --output-on-failure --timeout 900 "$@"
