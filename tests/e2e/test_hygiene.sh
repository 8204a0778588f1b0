#!/usr/bin/env bash
# Input hygiene and output safety (issue 15, items 8-10), as a user meets them:
#   - run's merge section goes through the same validation as `uqmerge merge` (parameter names,
#     a directory listed twice) before any compute;
#   - a short corrupt base64 image cell is called invalid base64, not a missing row reference;
#   - `inspect FILE.safetensors` lists a bare file's tensors;
#   - --overwrite never deletes files uqmerge did not write (merge, run's merged/, zoo);
#   - a second run on an output directory held by another run is refused, naming the holder.
#   test_hygiene.sh UQMERGE_BINARY UQ_CASE_DIR MERGE_DATA_DIR PYTHON
set -u
bin=$1
case_dir=$2
merge_data=$3
py=$4
# shellcheck source-path=SCRIPTDIR source=../lib/testlib.sh
source "$(dirname "$0")/../lib/testlib.sh"
testlib_work
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
fresh() {
  rm -rf "$work/c"
  cp -r "$case_dir" "$work/c"
  rm -rf "$work/c"/run_*
  sed 's/^baselines:.*$//; /^evaluation:/,$d' "$work/c/config_run.yaml" >"$work/c/config.yaml"
}
run() { (cd "$work/c" && "$bin" run -c config.yaml "$@"); }
refused=(--exit 2 --one-error --nothing-complete "$work/c/run_alg1")

fresh
sed -i 's/^merge: {method: linear}/merge: {method: linear, parameters: {normalise: true}}/' "$work/c/config.yaml"
expect run-unknown-merge-parameter "${refused[@]}" --err "config.yaml: parameters.normalise: not a parameter of linear \(valid: normalize" -- run

fresh
sed -i 's/^  - model: cand_b/  - model: cand_b\n  - {model: cand_a, name: again}/' "$work/c/config.yaml"
expect run-duplicate-candidate "${refused[@]}" --err "config.yaml: '.*cand_a' is listed twice" -- run

fresh
sed -i 's/^  - model: cand_a/  - {model: cand_a, parameters: {density: 0.5}}/' "$work/c/config.yaml"
expect run-per-model-parameter "${refused[@]}" --err "config.yaml: model 'cand_a': parameters.density: not a per-model parameter of linear \(valid: weight\)" -- run

fresh
sed -i 's/^merge: {method: linear}/merge: {method: ties, schedule: cascade}/' "$work/c/config.yaml"
expect run-cascade-not-linear "${refused[@]}" --err "config.yaml: schedule: cascade is a chain of 1:1 linear merges \(the release's\); it needs method linear, not 'ties'" -- run

fresh
sed -i 's/^merge: {method: linear}/merge: {method: linear, schedule: zigzag}/' "$work/c/config.yaml"
expect run-unknown-schedule "${refused[@]}" --err "config.yaml: schedule: 'zigzag' \(valid: uniform, cascade\)" -- run

fresh
sed -i 's/^merge: {method: linear}/merge: {method: linear, schedule: cascade}/; s/^  - model: cand_a/  - {model: cand_a, parameters: {weight: 2}}/' "$work/c/config.yaml"
expect run-cascade-weight "${refused[@]}" --err "config.yaml: model 'cand_a': schedule: cascade merges 1:1 at every step; remove its weight" -- run

fresh
sed -i 's/^merge: {method: linear}/merge: {method: linear, schedule: cascade}/' "$work/c/config.yaml"
expect run-cascade -- run
schedule=$("$py" -c "import h5py, sys; v = h5py.File(sys.argv[1])['run'].attrs['schedule']; print(v.decode() if isinstance(v, bytes) else v)" "$work/c/run_alg1/results.h5" 2>&1)
if [ "$schedule" = cascade ]; then ok run-cascade-recorded; else bad "run-cascade-recorded: /run schedule = '$schedule'"; fi

fresh
sed -i 's/^  perturbations: 3/  perturbations: 3\n  repeats: 0/' "$work/c/config.yaml"
expect uq-repeats-zero "${refused[@]}" --err "config.yaml: uq.repeats: must be in 1..100" -- run

fresh
printf 'index\tquestion\thint\tA\tB\tC\tD\tanswer\timage\n1\tQ?\t\ta\tb\tc\td\tA\tiVBORw0K!!==\n' >"$work/c/data.tsv"
expect short-corrupt-base64 "${refused[@]}" --err "data.tsv:2: row '1': image cell 'iVBORw0K!!==' is not valid base64 image data, and no row has that index" -- run

# inspect a bare safetensors file: every tensor with dtype and shape, exit 0
st=$(ls "$work/c/cand_a"/*.safetensors | head -n 1)
n=$("$py" -c "import sys; from safetensors import safe_open; print(len(list(safe_open(sys.argv[1], 'np').keys())))" "$st")
expect inspect-file --out "tensors +$n \(" --out "embed_tokens\.weight +[A-Z0-9]+ +\[" -- "$bin" inspect "$st"
head -c 100 "$st" >"$work/trunc.safetensors"
expect inspect-truncated-file --exit 2 --one-line --err "trunc.safetensors" -- "$bin" inspect "$work/trunc.safetensors"
echo "not a model" >"$work/notes.txt"
expect inspect-other-file --exit 2 --one-line --err "notes.txt: not a model directory or a .safetensors file" -- "$bin" inspect "$work/notes.txt"

# --overwrite on a directory that also holds a user's files: refused, nothing deleted
cat >"$work/merge.yaml" <<YAML
merge_method: linear
models:
  - {model: $merge_data/m0, parameters: {weight: 1.0}}
  - {model: $merge_data/m1, parameters: {weight: 1.0}}
YAML
expect merge-first -- "$bin" merge "$work/merge.yaml" -o "$work/out"
expect merge-overwrite-model-dir -- "$bin" merge "$work/merge.yaml" -o "$work/out" --overwrite
echo '\documentclass{article}' >"$work/out/paper.tex"
mkdir -p "$work/out/data" && echo 1 >"$work/out/data/x.csv"
expect merge-overwrite-foreign --exit 2 --one-line --err "out: --overwrite replaces only uqmerge's own output, but this directory also holds data/, paper.tex" -- "$bin" merge "$work/merge.yaml" -o "$work/out" --overwrite
if [ -f "$work/out/paper.tex" ] && [ -f "$work/out/data/x.csv" ] && [ -f "$work/out/config.json" ]; then ok merge-foreign-kept; else bad merge-foreign-kept; fi

fresh
expect run-first -- run
mkdir -p "$work/c/run_alg1/merged/mine" && echo keep >"$work/c/run_alg1/merged/mine/notes.md"
expect run-overwrite-foreign --exit 2 --one-error --err "merged: --overwrite replaces only uqmerge's own output, but this directory also holds mine/" -- run --overwrite
if [ -f "$work/c/run_alg1/merged/mine/notes.md" ]; then ok run-foreign-kept; else bad run-foreign-kept; fi
rm -rf "$work/c/run_alg1/merged/mine"

# a run holding the output directory: a second one is refused and names the holder
"$py" - "$work/c/run_alg1" "$work/held" <<'PY' &
import fcntl, os, sys, time
fd = os.open(os.path.join(sys.argv[1], ".uqmerge.lock"), os.O_RDWR | os.O_CREAT)
fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
os.ftruncate(fd, 0)
os.write(fd, b"host testhost, pid 4242, Slurm job 77\n")
open(sys.argv[2], "w").close()
time.sleep(60)
PY
holder=$!
for _ in $(seq 100); do [ -e "$work/held" ] && break; sleep 0.1; done
expect run-concurrent --exit 2 --one-error --err "run_alg1: another uqmerge run is using this output directory \(host testhost, pid 4242, Slurm job 77\)" -- run --overwrite --restart
kill "$holder" 2>/dev/null
wait "$holder" 2>/dev/null
expect run-after-holder-ended -- run --overwrite

# zoo --overwrite on a directory with a user's file
mkdir -p "$work/zoo" && echo '% thesis' >"$work/zoo/thesis.tex"
expect zoo-overwrite-foreign --exit 2 --one-line --err "zoo: --overwrite replaces only uqmerge's own output, but this directory also holds thesis.tex" -- "$bin" zoo --out "$work/zoo" --overwrite --candidates 2 --steps-scale 0.01
if [ -f "$work/zoo/thesis.tex" ]; then ok zoo-foreign-kept; else bad zoo-foreign-kept; fi

testlib_summary
