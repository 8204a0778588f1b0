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
# The GPU configuration (libtorch_cuda + NCCL) must compile and link even where no GPU is
# (it runs in scripts/gpu-check.sh). Mostly ccache hits after the first time.
if [ -d /usr/local/cuda ] && [ "${UQMERGE_GPU_BUILD:-1}" != 0 ]; then
  gstart=$(date +%s)
  cmake -S . -B "$UQMERGE_BUILD-gpu" -G Ninja -DUQMERGE_PYTHON="$UQMERGE_VENV/bin/python" -DUQMERGE_TORCH_CUDA=ON \
    -DUQMERGE_NCCL=ON -DUQMERGE_BUILD_TESTS=OFF -DUQMERGE_BUILD_BENCH=OFF >/dev/null
  cmake --build "$UQMERGE_BUILD-gpu" -j"$(nproc)" --target uqmerge
  echo "[test] GPU configuration compiled and linked in $(( $(date +%s) - gstart ))s"
fi
ctest --test-dir "$UQMERGE_BUILD" -j"$(nproc)" --output-on-failure --timeout 900 "$@"
