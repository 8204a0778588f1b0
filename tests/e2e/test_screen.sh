#!/usr/bin/env bash
# selection.screen end to end on make_uq_case.py's hand-made candidates: `uqmerge run` on 2
# ranks leaves out the constant and the image-blind candidate (check_screen.py checks every
# number against transformers + numpy); every candidate flagged is exit 2 naming them and why,
# with nothing written that looks complete; bad screen and random_k.sweep settings are refused
# naming the key.
#   test_screen.sh UQMERGE_BINARY UQ_CASE_DIR PYTHON MPIEXEC
set -u
bin=$1
case_dir=$2
py=$3
mpiexec=$4
# shellcheck source-path=SCRIPTDIR source=../lib/testlib.sh
source "$(dirname "$0")/../lib/testlib.sh"
testlib_work
cp -r "$case_dir" "$work/c"
rm -rf "$work/c"/run_*
run2() { (cd "$work/c" && "$mpiexec" -n 2 "$bin" run -c "$1" --overwrite); }
run1() { (cd "$work/c" && "$bin" run -c "$1"); }

expect screened-run --out "left out" -- run2 config_screen.yaml
if "$py" "$(dirname "$0")/check_screen.py" "$work/c"; then ok check-screen; else bad check-screen; fi

expect nothing-left --exit 2 --one-error --nothing-complete "$work/c/run_screen_all" \
  --err "config_screen_all.yaml: selection.screen flagged every candidate, so there is nothing to merge: constant \(gives one answer to 100 % .*; constant_b \(gives one answer" \
  -- run1 config_screen_all.yaml

sed 's/selection: {screen: true}/selection: {screen: {max_mode_share: 0}}/' "$work/c/config_screen.yaml" >"$work/c/bad1.yaml"
expect bad-mode-share --exit 2 --one-error --err "bad1.yaml: selection.screen.max_mode_share: must be in \(0, 1\]" -- run1 bad1.yaml
sed 's/selection: {screen: true}/selection: {screen: {min_agreement: 0.5}}/' "$work/c/config_screen.yaml" >"$work/c/bad2.yaml"
expect bad-screen-key --exit 2 --one-error --err "bad2.yaml: selection.screen.min_agreement: unknown key \(valid: " -- run1 bad2.yaml
# random_k.sweep (the report's sizes) is validated like every other key.
sed 's/baselines: {merge_all: true}/baselines: {merge_all: true, random_k: {repeats: 1, sweep: [2, 9]}}/' \
  "$work/c/config_screen.yaml" >"$work/c/bad3.yaml"
expect bad-sweep-size --exit 2 --one-error --err "bad3.yaml: baselines.random_k.sweep: sizes must be in 1..5, got 9" -- run1 bad3.yaml
sed 's/baselines: {merge_all: true}/baselines: {merge_all: true, random_k: {repeats: 1, sweep: 3}}/' \
  "$work/c/config_screen.yaml" >"$work/c/bad4.yaml"
expect bad-sweep-type --exit 2 --one-error --err "bad4.yaml: baselines.random_k.sweep: a list of subset sizes" -- run1 bad4.yaml
testlib_summary
