#!/usr/bin/env bash
# Runs the GPU checks of scripts/gpu-check.sh on a bare device machine, from the bundle that
# scripts/device/gpu-bundle.sh made (.gpu-bundle/, carried): no build, no apt, no network. Torch, CUDA
# and NCCL libraries come from the machine's python3 (its pip torch must be the bundle's version).
#   1. communicator tests with the NCCL backend (one GPU: one rank, an OpenMPI singleton);
#   2. the engine's reference test on the GPU in bf16 against transformers' fp32 logits;
#   3. the bf16 prefill benchmark of gpu-check.sh step 4 (random LLaMA-7B widths x LAYERS layers
#      + CLIP-L/336, batch BATCH; the model is made here by bench/forward/make_model.py);
#   4. the CPU tests of the same binaries (MPI, reference model, torch bridge and merge kernels);
#   5. the CLI itself (scripts/device/gpu-cli-checks.sh): `uqmerge run` on the end-to-end case
#      on the CPU and the GPU ($OUT/tiny_cpu, $OUT/tiny_cuda: compared when they come back),
#      `uqmerge run` on two 7B-width candidates (UQMERGE_GPU_CLI_LAYERS LM layers, default 4,
#      full CLIP-L) in bf16 and `uqmerge merge` of them, each timed.
# Every step has its own timeout, a failing step does not stop the others, and no step starts
# after the deadline (UQMERGE_GPU_DEADLINE_S, default 330 s), so the script ends in time for its
# log to come back. Log: $OUT/gpu-check.log (OUT defaults to /tmp/uqmerge-gpu-out).
# Exit status: the number of failed steps (0: all passed).
#
# Usage: scripts/device/gpu-bundle-run.sh [LAYERS] [BATCH]      (defaults 8, 16)
#        scripts/device/gpu-bundle-run.sh --cpu-only            rehearsal without a GPU: steps 0, 4, 5 on the CPU
#   UQMERGE_BUNDLE=.gpu-bundle  UQMERGE_DEVICE_PYTHON=python3  UQMERGE_GPU_DEADLINE_S=330
#   UQMERGE_GPU_VLAYERS=23 (CLIP layers)  UQMERGE_GPU_BENCH_DEVICE=cuda (cpu: rehearsal of step 3)
set -u
cd "$(dirname "${BASH_SOURCE[0]}")/../.." || exit 1
cpu_only=0
if [ "${1:-}" = "--cpu-only" ]; then cpu_only=1; shift; fi
layers=${1:-8}
batch=${2:-16}
# The bundle travels as one archive (.gpu-bundle.tar.xz: the directory is over the carry limit);
# unpacked here once. UQMERGE_BUNDLE_ARCHIVE forces the archive (the rehearsal uses it).
archive=${UQMERGE_BUNDLE_ARCHIVE:-}
if [ -z "$archive" ] && [ ! -d "${UQMERGE_BUNDLE:-.gpu-bundle}" ] && [ -f .gpu-bundle.tar.xz ]; then archive=.gpu-bundle.tar.xz; fi
if [ -n "$archive" ]; then
  unpacked=${TMPDIR:-/tmp}/uqmerge-bundle
  rm -rf "$unpacked" && mkdir -p "$unpacked" && tar -C "$unpacked" -xJf "$archive" ||
    { echo "[gpu-run] cannot unpack $archive into $unpacked"; exit 1; }
  UQMERGE_BUNDLE=$unpacked/.gpu-bundle
fi
B=$(cd "${UQMERGE_BUNDLE:-.gpu-bundle}" 2>/dev/null && pwd) || { echo "[gpu-run] no bundle at ${UQMERGE_BUNDLE:-.gpu-bundle}: run scripts/device/gpu-bundle.sh and carry .gpu-bundle.tar.xz"; exit 1; }
PY=${UQMERGE_DEVICE_PYTHON:-python3}
OUT=${OUT:-/tmp/uqmerge-gpu-out}
mkdir -p "$OUT"
deadline=${UQMERGE_GPU_DEADLINE_S:-330}
start=$(date +%s)

elapsed() { echo $(( $(date +%s) - start )); }
say() { echo "[gpu-run $(elapsed)s] $*"; }
step() { echo; echo "=== [gpu-run $(elapsed)s] $*"; }
fail() { say "FAILED: $1"; }
# run_step NAME TIMEOUT CMD...: runs CMD under `timeout`, cut to what is left before the deadline.
run_step() {
  local name=$1 limit=$2; shift 2
  local left=$(( deadline - $(elapsed) ))
  if [ "$left" -lt 10 ]; then fail "$name (skipped: deadline of ${deadline}s reached)"; return 1; fi
  [ "$limit" -le "$left" ] || limit=$left
  say "$name: $* (timeout ${limit}s)"
  timeout -k 5 "$limit" "$@"
  local rc=$?
  if [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then fail "$name (timed out after ${limit}s)"; return 1; fi
  if [ "$rc" -ne 0 ]; then fail "$name (exit $rc)"; return 1; fi
  return 0
}
# gtest_step NAME TIMEOUT MUST_RUN_REGEX CMD...: as run_step, and fails when no test matching
# MUST_RUN_REGEX passed (a test filtered away or skipped is no pass).
gtest_step() {
  local name=$1 limit=$2 must=$3; shift 3
  local log="$OUT/.step.log"
  run_step "$name" "$limit" "$@" 2>&1 | tee "$log"
  local rc=${PIPESTATUS[0]}
  if [ "$rc" -eq 0 ] && ! grep -qE "^\[       OK \] $must" "$log"; then
    fail "$name (no test matching '$must' ran and passed)"; rc=1
  fi
  if grep -q "^\[  SKIPPED \]" "$log"; then say "note: skipped tests above"; fi
  rm -f "$log"
  return "$rc"
}

main() {
  step "0. environment"
  echo "host $(uname -n), $(nproc) cores, kernel $(uname -r); bundle $B"
  cat "$B/MANIFEST"
  local torch_info sp want have
  # stdout only: torch may warn on stderr (no NumPy), which must not become the version or path.
  torch_info=$("$PY" -c "import os, torch; print(torch.__version__); print(os.path.dirname(os.path.dirname(torch.__file__)))" 2>"$OUT/.torch.err") \
    || { cat "$OUT/.torch.err"; fail "python3 cannot import torch"; return; }
  have=$(sed -n 1p <<<"$torch_info"); sp=$(sed -n 2p <<<"$torch_info")
  want=$(awk '$1 == "torch" { print $2 }' "$B/MANIFEST")
  echo "python3: $(command -v "$PY"), torch $have in $sp"
  if [ "$have" != "$want" ]; then
    fail "torch here is $have, the bundle was built against $want (C++ ABI: rebuild with UQMERGE_GPU_TORCH)"
  fi
  local ld=$B/lib:$sp/torch/lib d
  for d in "$sp"/nvidia/*/lib; do [ -d "$d" ] && ld=$ld:$d; done
  export LD_LIBRARY_PATH=$ld${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
  # OpenMPI 4.1 from the bundle, one rank without mpirun: a singleton that starts no daemon.
  export OPAL_PREFIX=$B/ompi OMPI_MCA_mca_base_component_path=$B/ompi/lib/openmpi3
  export OMPI_MCA_ess_singleton_isolated=1 OMPI_MCA_pml=ob1 OMPI_MCA_btl=self,vader
  export OMPI_MCA_btl_base_warn_component_unused=0 OMPI_MCA_shmem_mmap_enable_nfs_warning=0
  export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
  export HWLOC_PLUGINS_PATH=$B/ompi/no-plugins NCCL_DEBUG=${NCCL_DEBUG:-WARN}
  export HF_HUB_OFFLINE=1 TRANSFORMERS_NO_ADVISORY_WARNINGS=1 TOKENIZERS_PARALLELISM=false
  local missing
  missing=$(for f in "$B"/bin/*; do ldd "$f" | grep "not found" | sed "s|^|$(basename "$f"): |"; done)
  if [ -n "$missing" ]; then echo "$missing"; fail "shared libraries not found (above)"; fi

  local gpu_name=""
  if [ "$cpu_only" -eq 0 ]; then
    if command -v nvidia-smi >/dev/null && nvidia-smi -L >/dev/null 2>&1; then
      nvidia-smi
      nvidia-smi --query-gpu=index,name,memory.total,driver_version --format=csv
      gpu_name=$(nvidia-smi --query-gpu=name --format=csv,noheader | head -1)
    else
      say "no NVIDIA GPU visible (nvidia-smi): nothing to check here (--cpu-only runs the CPU tests)"
      fail "no GPU"
      return
    fi

    step "1. communicator tests with the NCCL backend (1 rank, OpenMPI singleton)"
    gtest_step "nccl communicator" 90 'Nccl\.' "$B/bin/uqmerge_mpi_tests" --gtest_filter='*_CUDA'

    step "2. reference test: the engine on the GPU in bf16 against transformers' fp32 logits"
    UQMERGE_REF_DIR=$B/data \
      gtest_step "reference bf16 on the GPU" 90 'ReferenceModel\..*_CUDA' \
      "$B/bin/uqmerge_reference_model_tests" --gtest_filter='*_CUDA'

    step "3. bf16 prefill benchmark: LLaMA-7B widths x $layers layers + CLIP-L/336, batch $batch"
    local vlayers=${UQMERGE_GPU_VLAYERS:-23} model out
    model=/tmp/uqmerge-gpu-check/llava7b_${layers}_$vlayers
    mkdir -p "$(dirname "$model")"
    if run_step "make_model.py" 120 "$PY" bench/forward/make_model.py "$model" "$layers" "$vlayers"; then
      run_step "bench_forward" 150 "$B/bin/uqmerge_bench_forward" "$model" "$batch" 1 5 \
        "${UQMERGE_GPU_BENCH_DEVICE:-cuda}" bfloat16 | tee "$OUT/bench_forward.txt"
      if [ "${PIPESTATUS[0]}" -eq 0 ]; then
        out=$(cat "$OUT/bench_forward.txt")
        local gflops mm peak
        gflops=$(awk '$1 == "gflops" { print $2 }' <<<"$out")
        mm=$(awk '$1 == "mm_peak_gflops" { print $2 }' <<<"$out")
        case "$gpu_name" in   # dense bf16 datasheet peaks (TFLOP/s, no sparsity)
          *H100*|*H200*|*H800*|*GH200*) peak=989 ;;
          *A100*|*A800*) peak=312 ;;
          *L40S*) peak=362 ;;
          *A10*) peak=125 ;;
          *) peak=0 ;;
        esac
        awk -v g="$gflops" -v m="$mm" -v p="$peak" -v n="$gpu_name" 'BEGIN {
          if (g == "" || m == "" || m == 0) { print "prefill: no gflops/mm_peak_gflops lines in the output"; exit }
          printf "prefill: %.1f TFLOP/s = %.2f of torch.mm bf16 (%.1f TFLOP/s)", g / 1000, g / m, m / 1000
          if (p > 0) printf " = %.2f of the %s datasheet peak (%d TFLOP/s)", g / 1000 / p, n, p
          printf "\n" }'
      fi
    fi
  fi

  step "4. CPU tests of the same binaries"
  gtest_step "mpi tests (CPU)" 60 'Mpi\.' "$B/bin/uqmerge_mpi_tests" --gtest_filter='-*_CUDA*'
  UQMERGE_REF_DIR=$B/data gtest_step "reference model tests (CPU)" 90 'ReferenceModel\.' \
    "$B/bin/uqmerge_reference_model_tests" --gtest_filter='-*_CUDA*'
  gtest_step "torch bridge + merge kernel tests (CPU)" 60 '' "$B/bin/uqmerge_torch_tests"

  local cli_device=cuda cli_layers=${UQMERGE_GPU_CLI_LAYERS:-4} cli_vlayers=23 cli_dtype=bfloat16
  if [ "$cpu_only" -eq 1 ]; then cli_device=cpu cli_layers=1 cli_vlayers=1 cli_dtype=float32; fi
  step "5. the CLI on $cli_device: uqmerge run (end-to-end case; 7B widths x $cli_layers layers) and uqmerge merge"
  local tiny_only=""
  if ! "$PY" -c "import transformers" 2>/dev/null; then
    if [ "$cpu_only" -eq 1 ]; then say "$PY has no transformers (make_model.py needs it): the end-to-end case only"; tiny_only=1
    else fail "$PY has no transformers: the 7B-width candidates cannot be made"; fi
  fi
  UQMERGE_CLI_TINY_ONLY=$tiny_only run_step "gpu-cli-checks" 200 bash scripts/device/gpu-cli-checks.sh "$B/bin/uqmerge" "$B/data/uq_case" "$OUT" \
    "$cli_device" "$cli_layers" "$cli_vlayers" "$cli_dtype" "$PY"
  rm -rf "$OUT"/*/merged "$OUT"/*/cache  # model files stay on the device: results.h5 and logs come back
}

main 2>&1 | tee "$OUT/gpu-check.log"
# main runs in the pipeline's subshell (and steps in their own): the verdict is read back from
# the log, where fail() wrote one "FAILED:" line per failed step.
failed=$(grep -c "^\[gpu-run [0-9]*s\] FAILED: " "$OUT/gpu-check.log")
{
  echo
  if [ "$failed" -eq 0 ]; then
    echo "=== [gpu-run $(elapsed)s] all steps passed"
  else
    echo "=== [gpu-run $(elapsed)s] $failed step(s) failed:"
    grep "^\[gpu-run [0-9]*s\] FAILED: " "$OUT/gpu-check.log" | sed 's/^.*FAILED: /  - /'
  fi
} | tee -a "$OUT/gpu-check.log"
exit "$failed"
