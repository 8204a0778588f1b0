#!/usr/bin/env bash
# GPU checks on a bare device machine (docs/decisions.md, "GPU checks on a bare device machine"):
# prepares here, on a Debian 12 build machine, a bundle that scripts/device/gpu-bundle-run.sh runs on a
# lent GPU machine that has CUDA, a pip torch and python3, but no network, no apt and none of our
# Debian libraries (OpenMPI, ...). scripts/gpu-check.sh stays the route for real GPU clusters.
#
#   1. a venv with exactly the device's pip torch (default 2.11.0+cu130): our binaries link its
#      libtorch, so the C++ ABI must be the device's;
#   2. the CUDA configuration (libtorch_cuda, NCCL backend on pip's NCCL) in build-gpuXY/, only
#      the test and benchmark binaries the device run needs;
#   3. .gpu-bundle/ (git-ignored; travels as .gpu-bundle.tar.xz, a `carry` path): stripped binaries, the closure of
#      their shared libraries minus torch/c10/CUDA/NCCL (taken from the device's own torch venv)
#      and minus the glibc family/libstdc++/libgcc_s, OpenMPI's components and help files for a
#      singleton run, and the reference logits of tests/reference/make_llava_logits.py.
# Prints the bundle's size and the device call to make.
#
# Usage: scripts/device/gpu-bundle.sh         (as a build: `flock /tmp/uqmerge-cpu.lock scripts/device/gpu-bundle.sh`)
#   UQMERGE_GPU_TORCH=2.11.0  UQMERGE_GPU_CUDA_TAG=cu130   the device's torch (torch.__version__)
#   UQMERGE_VENV_GPU=~/.cache/uqmerge/venv-gpu             venv holding that torch
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
source scripts/env.sh
torch_version=${UQMERGE_GPU_TORCH:-2.11.0}
cuda_tag=${UQMERGE_GPU_CUDA_TAG:-cu130}
venv=${UQMERGE_VENV_GPU:-$HOME/.cache/uqmerge/venv-gpu}
IFS=. read -r t_major t_minor _ <<<"$torch_version"
build=build-gpu${t_major}${t_minor}
bundle=.gpu-bundle
start=$(date +%s)
step() { echo; echo "=== [gpu-bundle $(( $(date +%s) - start ))s] $*"; }
die() { echo "[gpu-bundle] ERROR: $*" >&2; exit 1; }

step "1. venv with torch $torch_version+$cuda_tag ($venv)"
want="$torch_version+$cuda_tag"
have=$("$venv/bin/python" -c "import torch; print(torch.__version__)" 2>/dev/null || true)
if [ "$have" != "$want" ]; then
  [ -x "$venv/bin/python" ] || python3 -m venv "$venv"
  # PyPI's default Linux wheel of torch 2.11 is the cu130 build (as the device's); its
  # nvidia-* dependencies provide the CUDA/NCCL libraries and nccl.h the build links against.
  "$venv/bin/pip" install -q "torch==$torch_version"
  have=$("$venv/bin/python" -c "import torch; print(torch.__version__)")
  [ "$have" = "$want" ] || die "$venv has torch $have, not $want (set UQMERGE_GPU_CUDA_TAG or install by hand)"
fi
echo "torch $have"
sp=$("$venv/bin/python" -c "import os, torch; print(os.path.dirname(os.path.dirname(torch.__file__)))")
[ -x "$UQMERGE_VENV/bin/python" ] || die "no main venv at $UQMERGE_VENV (run scripts/setup.sh): it makes the reference data"

step "2. configure and build the CUDA configuration ($build)"
mkdir -p "$build"
cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DUQMERGE_PYTHON="$venv/bin/python" \
  -DUQMERGE_TORCH_CUDA=ON -DUQMERGE_NCCL=ON -DUQMERGE_BUILD_TESTS=ON -DUQMERGE_BUILD_BENCH=ON \
  >"$build/configure.log" 2>&1 || { cat "$build/configure.log"; exit 1; }
grep -E "NCCL .* backend|uqmerge .*: build" "$build/configure.log" || true
bins=(tests/uqmerge_mpi_tests tests/reference/uqmerge_reference_model_tests tests/uqmerge_torch_tests
      bench/uqmerge_bench_forward src/uqmerge)
cmake --build "$build" -j"$(nproc)" --target uqmerge_mpi_tests uqmerge_reference_model_tests \
  uqmerge_torch_tests uqmerge_bench_forward uqmerge

step "3. assemble $bundle/"
rm -rf "$bundle.new"
mkdir -p "$bundle.new"/{bin,lib,data} "$bundle.new/ompi/lib/openmpi3" "$bundle.new/ompi/share"
for b in "${bins[@]}"; do
  strip --strip-unneeded -o "$bundle.new/bin/$(basename "$b")" "$build/$b"
done
# OpenMPI 4.1 as a singleton (one rank, no mpirun, no orted: ess_singleton_isolated): the
# components such a run opens, less those for other networks and launchers.
ompi_dir=/usr/lib/x86_64-linux-gnu/openmpi/lib/openmpi3
ompi_components=(allocator_basic allocator_bucket bml_r2 btl_self btl_vader coll_adapt coll_basic
  coll_han coll_inter coll_libnbc coll_self coll_sm coll_sync coll_tuned errmgr_default_app
  errmgr_default_hnp errmgr_default_orted errmgr_default_tool ess_singleton mpool_hugepage op_avx
  osc_rdma osc_sm pmix_isolated pml_ob1 rcache_grdma reachable_weighted schizo_ompi schizo_orte
  shmem_mmap shmem_posix shmem_sysv state_app state_hnp state_novm state_orted state_tool)
for c in "${ompi_components[@]}"; do
  cp "$ompi_dir/mca_$c.so" "$bundle.new/ompi/lib/openmpi3/"
done
cp -r /usr/share/openmpi "$bundle.new/ompi/share/openmpi"   # help texts of error messages
# The shared-library closure, resolved as on the device (torch and CUDA from the torch venv):
# everything except the device's torch venv libraries and the C/C++ runtime, which the device
# has (newer or equal: built here against glibc 2.36 and GCC 12's libstdc++).
runtime_re='^(linux-vdso\.so|libc\.so|libm\.so|libmvec\.so|libdl\.so|libpthread\.so|librt\.so|libresolv\.so|libutil\.so|ld-linux-x86-64\.so|libstdc\+\+\.so|libgcc_s\.so|libcuda\.so)'
ld_path=$sp/torch/lib
for d in "$sp"/nvidia/*/lib; do ld_path=$ld_path:$d; done
closure_of() {
  LD_LIBRARY_PATH="$ld_path" ldd "$1" | awk '/=>/ { print $1, $3 } /statically linked/ { }'
}
missing=0
for f in "$bundle.new"/bin/* "$bundle.new"/ompi/lib/openmpi3/*.so; do
  while read -r name path; do
    [[ "$name" =~ $runtime_re ]] && continue
    case "$path" in
      "$sp"/*) continue ;;                                  # torch, c10, CUDA, NCCL: the device's
      not) echo "  $f: $name not found"; missing=1; continue ;;
      /usr/local/cuda*) echo "  $f: $name resolves to the toolkit ($path), not to pip's CUDA"; missing=1; continue ;;
    esac
    [ -e "$bundle.new/lib/$name" ] || cp -L "$path" "$bundle.new/lib/$name"
  done < <(closure_of "$f")
done
[ "$missing" -eq 0 ] || die "unresolved libraries (above)"
strip --strip-unneeded "$bundle.new"/lib/* 2>/dev/null || true

step "4. reference logits (tests/reference/make_llava_logits.py, $UQMERGE_VENV's transformers)"
ref_stamp=$(cat tests/reference/make_llava_logits.py scripts/requirements.txt | sha256sum | cut -d' ' -f1)
if [ -f "$bundle/data/llava/.stamp" ] && [ "$(cat "$bundle/data/llava/.stamp")" = "$ref_stamp" ]; then
  cp -r "$bundle/data/llava" "$bundle.new/data/llava"
else
  HF_HUB_OFFLINE=1 TRANSFORMERS_NO_ADVISORY_WARNINGS=1 "$UQMERGE_VENV/bin/python" \
    tests/reference/make_llava_logits.py "$bundle.new/data/llava" 2>&1 | grep -v "shards\|Loading weights" || true
  [ -f "$bundle.new/data/llava/cases.json" ] || die "make_llava_logits.py wrote no cases.json"
  echo "$ref_stamp" > "$bundle.new/data/llava/.stamp"
fi

step "5. the end-to-end case for the CLI on the GPU (tests/e2e/make_uq_case.py, from $UQMERGE_BUILD)"
uq_case=$UQMERGE_BUILD/tests/e2e/uq_case
[ -f "$uq_case/config_run.yaml" ] || ctest --test-dir "$UQMERGE_BUILD" -R '^e2e_uq_make_case$' >/dev/null ||
  die "could not make $uq_case (build the main configuration first: cmake --build $UQMERGE_BUILD)"
mkdir -p "$bundle.new/data/uq_case"
cp -r "$uq_case"/cand_a "$uq_case"/cand_b "$uq_case"/data.tsv "$uq_case"/config_run.yaml "$bundle.new/data/uq_case/"

{
  echo "git $(git rev-parse HEAD)$(git diff --quiet HEAD -- . ':!.gpu-bundle' 2>/dev/null || echo ' +uncommitted changes')"
  echo "made $(date -u +%FT%TZ) on $(uname -n)"
  echo "torch $have"
  echo "nccl_headers $(grep -oE 'NCCL [0-9.]+' "$build/configure.log" | head -1)"
  echo "glibc_max $(for f in "$bundle.new"/bin/* "$bundle.new"/lib/*; do objdump -T "$f" 2>/dev/null; done |
    grep -oE 'GLIBC_[0-9.]+' | sort -uV | tail -1)"
  echo "glibcxx_max $(for f in "$bundle.new"/bin/* "$bundle.new"/lib/*; do objdump -T "$f" 2>/dev/null; done |
    grep -oE 'GLIBCXX_[0-9.]+' | sort -uV | tail -1)"
} > "$bundle.new/MANIFEST"
rm -rf "$bundle"
mv "$bundle.new" "$bundle"
cat "$bundle/MANIFEST"
du -sh "$bundle"/{bin,lib,ompi,data}
echo "after the run: compare the CPU and GPU runs of the CLI here (fp32; GPU kernels reorder sums):"
echo "  \$UQMERGE_VENV/bin/python tests/lib/uqtest.py compare --tol 1e-4 FILES_AT/tiny_cpu FILES_AT/tiny_cuda"
# The CLI's library closure (OpenCV's imgcodecs pulls in GDAL, ICU, codecs) is ~180 MB, over
# the 64 MiB a device call carries: the bundle travels as one xz archive, unpacked there.
step "6. archive $bundle.tar.xz (xz -9)"
tar -C . -cf - "$bundle" | xz -T"$(nproc)" -9 >"$bundle.tar.xz.new" && mv "$bundle.tar.xz.new" "$bundle.tar.xz"
tree=$(git ls-files -z -co --exclude-standard | du -cb --files0-from=- 2>/dev/null | tail -1 | cut -f1)
size=$(stat -c %s "$bundle.tar.xz")
echo "bundle: $(du -sb "$bundle" | cut -f1 | awk '{printf "%d", $1 / 1024}') KiB, archived $((size / 1024)) KiB; working tree that travels: $((tree / 1024)) KiB; together $(((size + tree) / 1048576)) MiB (limit 64 MiB)"
[ $((size + tree)) -lt $((62 * 1048576)) ] || echo "[gpu-bundle] WARNING: close to or over the 64 MiB the device call takes"
step "done: the device call (one command, the bundle carried)"
cat <<EOF
  device call: run(command="bash scripts/device/gpu-bundle-run.sh 8 16", carry=["$bundle.tar.xz"], timeout_s=380)
  gpu-bundle-run.sh stops starting steps at ${UQMERGE_GPU_DEADLINE_S:-330} s and writes \$OUT/gpu-check.log (+ bench_forward.txt).
  Rehearse it here first, without a GPU: scripts/device/gpu-bundle-rehearse.sh (REHEARSE_BENCH=1 adds the benchmark step on the CPU).
EOF
