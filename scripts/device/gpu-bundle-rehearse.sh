#!/usr/bin/env bash
# Rehearses here, without a GPU, what scripts/device/gpu-bundle-run.sh does on the bare device machine:
# in a private mount namespace (root: unshare -m) the system library folder is replaced by one
# holding only what a bare CUDA image surely has (the glibc family, libstdc++, libgcc_s, and the
# libraries of bash, coreutils and python3), and the CUDA toolkit, /usr/share/openmpi and
# /etc/openmpi are hidden. Then
#   1. every binary and bundled OpenMPI component resolves all its libraries (ldd), and loading
#      them (LD_DEBUG=libs, ldd) touches nothing outside the bundle, the torch venv and that base;
#   2. scripts/device/gpu-bundle-run.sh --cpu-only passes (MPI singleton, reference and torch tests);
#   3. scripts/device/gpu-bundle-run.sh without --cpu-only says there is no GPU and stops;
#   4. with REHEARSE_BENCH=1 (needs transformers in that venv; writes a 2 GB model to /tmp): the
#      whole run script against a fake nvidia-smi, the benchmark step on the CPU with a 1-layer
#      model: steps 1 and 2 must fail (no CUDA), the benchmark and CPU tests pass, exit status 2.
# The venv of scripts/device/gpu-bundle.sh stands in for the device's /opt/torch/.venv.
# Usage: scripts/device/gpu-bundle-rehearse.sh     (after scripts/device/gpu-bundle.sh; a test: run it under the build lock)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
venv=${UQMERGE_VENV_GPU:-$HOME/.cache/uqmerge/venv-gpu}
B=$(pwd)/.gpu-bundle
[ -f "$B/MANIFEST" ] || { echo "no bundle: run scripts/device/gpu-bundle.sh first"; exit 1; }
[ "$(id -u)" -eq 0 ] || { echo "needs root (unshare -m, mount --bind)"; exit 1; }
sys=/usr/lib/x86_64-linux-gnu
base=$(mktemp -d /tmp/uqmerge-rehearse.XXXXXX)
trap 'rm -rf "$base"' EXIT
mkdir -p "$base/lib" "$base/empty" "$base/out"
# What any glibc-based image with bash, coreutils and a python3 has.
keep='^(ld-linux-x86-64|libc|libm|libmvec|libdl|libpthread|librt|libresolv|libutil|libanl|libnss_[a-z]+|libcrypt|libstdc\+\+|libgcc_s|libtinfo|libselinux|libpcre2-8|libacl|libattr|libblkid|libmount|libsmartcols|libcap|libffi|libz|libbz2|liblzma|libcrypto|libssl|libuuid|libexpat|libgmp|libsigsegv|libreadline|libmpfr)\.so'
for f in "$sys"/*.so*; do
  n=$(basename "$f")
  [[ "$n" =~ $keep ]] && cp -a "$f" "$base/lib/"
done
cp -a "$sys/gconv" "$base/lib/" 2>/dev/null || true
echo "[rehearse] base library folder: $(ls "$base/lib" | wc -l) files (the system one has $(ls "$sys" | wc -l))"

sp=$("$venv/bin/python" -c "import os, torch; print(os.path.dirname(os.path.dirname(torch.__file__)))")
check_loads() {   # check_loads BINARY ARGS...: every library loaded comes from an allowed place
  local loaded bad
  loaded=$({ LD_DEBUG=libs "$@" 2>&1 >/dev/null | sed -n 's/.*calling init: //p'; ldd "$1" | awk '/=>/ { print $3 }'; } | sort -u) || true
  bad=$(grep -vE "^($B/|$sp/|$sys/|/lib/x86_64-linux-gnu/|/lib64/)" <<<"$loaded" || true)
  echo "  $(basename "$1"): $(wc -l <<<"$loaded") libraries loaded${bad:+; FROM ELSEWHERE: $bad}"
  [ -z "${REHEARSE_VERBOSE:-}" ] || sed "s/^/      /" <<<"$loaded"
  [ -z "$bad" ]
}
export -f check_loads
export B sp sys venv

unshare -m bash -euo pipefail -c '
  mount --bind "'"$base"'/lib" "$sys"
  for d in /usr/local/cuda-13.0 /usr/local/cuda /usr/share/openmpi /etc/openmpi; do
    [ -d "$d" ] && mount --bind "'"$base"'/empty" "$(readlink -f "$d")"
  done
  ld=$B/lib:$sp/torch/lib
  for d in "$sp"/nvidia/*/lib; do ld=$ld:$d; done
  echo "[rehearse] 1. libraries of the bundle with the system ones hidden"
  bad=0
  for f in "$B"/bin/* "$B"/ompi/lib/openmpi3/*.so; do
    if LD_LIBRARY_PATH=$ld ldd "$f" | grep "not found"; then echo "  ^ $f"; bad=1; fi
  done
  (
    export LD_LIBRARY_PATH=$ld OPAL_PREFIX=$B/ompi OMPI_MCA_mca_base_component_path=$B/ompi/lib/openmpi3
    export OMPI_MCA_ess_singleton_isolated=1 OMPI_MCA_pml=ob1 OMPI_MCA_btl=self,vader
    export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 UQMERGE_REF_DIR=$B/data
    check_loads "$B/bin/uqmerge_mpi_tests" --gtest_filter="Mpi.*"
    check_loads "$B/bin/uqmerge_reference_model_tests" --gtest_filter="ReferenceModel.MatchesTransformersInFp32"
    check_loads "$B/bin/uqmerge_torch_tests" --gtest_list_tests
    check_loads "$B/bin/uqmerge_bench_forward"
  ) || bad=1
  echo "[rehearse] 2. gpu-bundle-run.sh --cpu-only"
  PATH=$venv/bin:$PATH OUT="'"$base"'/out" UQMERGE_BUNDLE_ARCHIVE=.gpu-bundle.tar.xz bash scripts/device/gpu-bundle-run.sh --cpu-only || bad=1
  echo "[rehearse] 3. gpu-bundle-run.sh without a GPU: must say so and stop"
  rc=0; PATH=$venv/bin:$PATH OUT="'"$base"'/out" bash scripts/device/gpu-bundle-run.sh >/dev/null 2>&1 || rc=$?
  if [ "$rc" -eq 1 ] && grep -q "no NVIDIA GPU visible" "'"$base"'/out/gpu-check.log" && ! grep -q "=== .* 1\. " "'"$base"'/out/gpu-check.log"; then
    echo "  ok: exit 1, \"$(grep -o "no NVIDIA GPU visible[^:]*" "'"$base"'/out/gpu-check.log")\", no step run"
  else
    echo "  WRONG: exit $rc"; tail -5 "'"$base"'/out/gpu-check.log"; bad=1
  fi
  if [ -n "${REHEARSE_BENCH:-}" ]; then
    echo "[rehearse] 4. gpu-bundle-run.sh with a fake nvidia-smi, benchmark on the CPU"
    mkdir -p "'"$base"'/fakebin"
    printf "%s\n" "#!/bin/sh" "case \"\$*\" in" "  *name*) echo \"NVIDIA H200\" ;;" "  -L) echo \"GPU 0: NVIDIA H200 (UUID: GPU-fake)\" ;;" \
      "  *) echo \"fake nvidia-smi (rehearsal)\" ;;" "esac" > "'"$base"'/fakebin/nvidia-smi"
    chmod +x "'"$base"'/fakebin/nvidia-smi"
    rc=0; PATH="'"$base"'/fakebin:$venv/bin:$PATH" OUT="'"$base"'/out" UQMERGE_GPU_BENCH_DEVICE=cpu UQMERGE_GPU_VLAYERS=1 \
      bash scripts/device/gpu-bundle-run.sh 1 1 >/dev/null 2>&1 || rc=$?
    log="'"$base"'/out/gpu-check.log"
    grep -E "^prefill:|FAILED:|step\(s\) failed|all steps passed" "$log" | sed "s/^/  /"
    if [ "$rc" -eq 2 ] && grep -q "^prefill: " "$log" && grep -q "FAILED: nccl communicator" "$log" \
       && grep -q "FAILED: reference bf16 on the GPU" "$log"; then
      echo "  ok: exit 2 (the two CUDA steps), benchmark and CPU tests passed"
    else
      echo "  WRONG: exit $rc"; tail -20 "$log"; bad=1
    fi
  fi
  exit $bad
'
echo "[rehearse] all checks passed"
