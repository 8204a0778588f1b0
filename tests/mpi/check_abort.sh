#!/usr/bin/env bash
# Runs abort_probe on 2 ranks: expects a non-zero exit well before the timeout, and rank 1's
# one-line error in the output.
set -u
probe=$1
out=$(timeout 60 "${MPIEXEC:-mpirun}" ${MPIEXEC_FLAGS:-} -np 2 "$probe" 2>&1)
rc=$?
echo "$out"
if [ "$rc" -eq 0 ]; then echo "FAIL: job exited 0"; exit 1; fi
if [ "$rc" -eq 124 ]; then echo "FAIL: job hung (killed by timeout)"; exit 1; fi
if ! grep -q "rank 1/2] ERROR probe/candidate-1/model.safetensors: truncated (probe)" <<<"$out"; then
  echo "FAIL: rank 1's error line missing"; exit 1
fi
echo "OK: rank 1's error ended the job with exit code $rc"
