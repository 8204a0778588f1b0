#!/usr/bin/env bash
# GPU check (issue #6): on a machine with NVIDIA GPUs, in about 10 minutes on one H100:
#   1. builds the CUDA configuration in build-gpu/ (-DUQMERGE_TORCH_CUDA=ON: libtorch_cuda and
#      the NCCL backend, both on pip's NCCL so one libnccl.so.2 is loaded);
#   2. runs the communicator tests with the NCCL backend (mpirun, one rank per GPU, at most 2;
#      NCCL refuses two ranks of one communicator on one GPU, so one GPU means one rank);
#   3. runs the engine's reference tests on the GPU in bf16 against transformers' fp32 logits
#      (tolerance: 5% of each row's logit range + 0.05, test_reference_model.cpp), plus the CPU
#      reference tests of the same build;
#   4. a bf16 prefill benchmark on a random LLaMA-7B-shaped model (hidden 4096, 32 heads, MLP
#      11008; LAYERS layers + CLIP-L/336) with a batch of long prompts, reporting TFLOP/s and the
#      fraction of torch.mm's bf16 rate and of the GPU's datasheet peak.
# Without a GPU it stops after step 1 (compile and link only), as CI does.
# On a bare GPU machine (no apt, no network, none of our Debian libraries) use instead the
# bundle route: scripts/device/gpu-bundle.sh here, scripts/device/gpu-bundle-run.sh there.
# Usage: scripts/gpu-check.sh [LAYERS] [BATCH]     (defaults 8, 16)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
source scripts/env.sh
bash scripts/setup.sh
layers=${1:-8}
batch=${2:-16}
build=build-gpu
start=$(date +%s)
step() { echo; echo "=== [gpu-check $(( $(date +%s) - start ))s] $*"; }

step "1. configure and build the CUDA configuration ($build)"
cmake -S . -B "$build" -G Ninja -DUQMERGE_PYTHON="$UQMERGE_VENV/bin/python" -DUQMERGE_TORCH_CUDA=ON -DUQMERGE_NCCL=ON \
  -DUQMERGE_BUILD_TESTS=ON -DUQMERGE_BUILD_BENCH=ON >"$build.configure.log" 2>&1 || { cat "$build.configure.log"; exit 1; }
grep -E "NCCL .* backend" "$build.configure.log" || true
cmake --build "$build" -j"$(nproc)"
gpus=0
if command -v nvidia-smi >/dev/null && nvidia-smi -L >/dev/null 2>&1; then gpus=$(nvidia-smi -L | wc -l); fi
if [ "$gpus" -eq 0 ]; then
  echo "[gpu-check] no NVIDIA GPU visible: the CUDA/NCCL configuration compiles and links; nothing to run"
  exit 0
fi
nvidia-smi --query-gpu=index,name,memory.total,driver_version --format=csv
gpu_name=$(nvidia-smi --query-gpu=name --format=csv,noheader | head -1)

step "2. communicator tests with the NCCL backend"
ranks=$(( gpus >= 2 ? 2 : 1 ))
mpirun -np "$ranks" --oversubscribe "$build/tests/uqmerge_mpi_tests" --gtest_filter='*_CUDA'

step "3. reference tests: engine on the GPU in bf16, then the CPU suite of this build"
ctest --test-dir "$build" -R "reference_make_llava_logits" --output-on-failure >/dev/null
# The *_CUDA tests skip themselves where torch sees no GPU (tests/cuda_test.hpp): a skip is no pass here.
UQMERGE_REF_DIR="$build/tests/reference/data" \
  "$build/tests/reference/uqmerge_reference_model_tests" --gtest_filter='*_CUDA' | tee "$build/gpu-reference.log"
grep -qE '^\[       OK \] ReferenceModel\..*_CUDA' "$build/gpu-reference.log" \
  || { echo "[gpu-check] the GPU reference test did not pass (skipped: torch sees no CUDA device?)"; exit 1; }
ctest --test-dir "$build" -L "unit|reference" -j"$(nproc)" --output-on-failure --timeout 600 | tail -5

step "4. bf16 prefill benchmark: LLaMA-7B widths x $layers layers + CLIP-L/336, batch $batch"
model=/tmp/uqmerge-gpu-check/llava7b_${layers}
mkdir -p "$(dirname "$model")"
HF_HUB_OFFLINE=1 "$UQMERGE_VENV/bin/python" bench/forward/make_model.py "$model" "$layers" 23 >/dev/null
out=$("$build/bench/uqmerge_bench_forward" "$model" "$batch" 1 5 cuda bfloat16)
echo "$out" | grep -v '^checksum'
gflops=$(awk '$1 == "gflops" { print $2 }' <<<"$out")
mm=$(awk '$1 == "mm_peak_gflops" { print $2 }' <<<"$out")
# Dense bf16 datasheet peaks (TFLOP/s, no sparsity).
case "$gpu_name" in
  *H100*|*H200*|*H800*|*GH200*) peak=989 ;;
  *A100*|*A800*) peak=312 ;;
  *L40S*) peak=362 ;;
  *A10*) peak=125 ;;
  *) peak=0 ;;
esac
awk -v g="$gflops" -v m="$mm" -v p="$peak" -v n="$gpu_name" 'BEGIN {
  printf "prefill: %.1f TFLOP/s = %.2f of torch.mm bf16 (%.1f TFLOP/s)", g / 1000, g / m, m / 1000
  if (p > 0) printf " = %.2f of the %s datasheet peak (%d TFLOP/s)", g / 1000 / p, n, p
  printf "\n" }'
step "done"
