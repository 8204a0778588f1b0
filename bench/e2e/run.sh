#!/usr/bin/env bash
# End-to-end comparison (issue #15 item 6): `uqmerge run` (mpirun -np RANKS, as scripts/demo.sh)
# and the authors' release's way (bench/e2e/release_way.py: transformers, batch 1, full logits,
# one forward per sample and perturbation, mergekit-yaml per step) on ONE job, one after the
# other in this invocation; prints both tools' stage times, the wall-time ratio uqmerge/release,
# the machine, and both tools' per-candidate uncertainties and chosen steps (close in
# expectation, not equal: different RNGs; a mismatch is reported, never an error).
#
#   bench/e2e/run.sh [CONFIG] [--zoo-candidates N --steps-scale S] [--limit N]
#                    [--perturbations J] [--ranks R] [--work DIR]
#
# CONFIG defaults to configs/demo.yaml (its zoo, runs/demo/zoo, comes from `uqmerge zoo`, ~7 min
# on 2 cores; build it first with scripts/demo.sh or `mpirun -np 2 build/src/uqmerge zoo --out
# runs/demo/zoo`). --zoo-candidates N builds a smaller zoo instead, WORK/zoo, with `uqmerge zoo
# --candidates N --steps-scale S` (timed apart, not part of the comparison), and runs CONFIG's
# settings on it. --limit N keeps the first N rows of every dataset; both tools read the same
# cut TSVs (bench/e2e/job.py prepare writes them and WORK/job.yaml). WORK defaults to
# $UQMERGE_BENCH_DIR or /tmp/uqmerge-bench-e2e; both tools' outputs are removed before each run
# (a zoo built with the same --zoo-candidates/--steps-scale/--ranks is reused). RELEASE_THREADS=T
# sets the release side's torch threads (default: torch's, all cores).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
source scripts/env.sh
config=configs/demo.yaml zoo_n="" scale=1 limit="" pert="" ranks=2
work=${UQMERGE_BENCH_DIR:-/tmp/uqmerge-bench-e2e}
while (($#)); do
  case $1 in
    --zoo-candidates) zoo_n=$2; shift 2 ;;
    --steps-scale) scale=$2; shift 2 ;;
    --limit) limit=$2; shift 2 ;;
    --perturbations) pert=$2; shift 2 ;;
    --ranks) ranks=$2; shift 2 ;;
    --work) work=$2; shift 2 ;;
    -h | --help) sed -n '2,21p' "${BASH_SOURCE[0]}"; exit 0 ;;
    -*) echo "run.sh: unknown option $1" >&2; exit 2 ;;
    *) config=$1; shift ;;
  esac
done
py=$UQMERGE_VENV/bin/python
bin=$(realpath -m "$UQMERGE_BUILD")/src/uqmerge
export HF_HUB_OFFLINE=1 PATH="$UQMERGE_VENV/bin:$PATH"
mkdir -p "$work"
work=$(realpath "$work")
wait_bin() {  # the binary may be relinked by a build running beside this
  for _ in $(seq 60); do [[ -x $bin ]] && return 0; sleep 1; done
  echo "run.sh: $bin is missing (build it first)" >&2; exit 1
}
now() { date +%s.%N; }
echo "== machine: $(nproc) cores (nproc), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//'), $(free -g | awk '/Mem:/{print $2}') GiB; load average $(cut -d' ' -f1-3 /proc/loadavg); $(date -u +%FT%TZ)"
echo "   commit $(git rev-parse --short HEAD 2>/dev/null || echo '?'); uqmerge binary $(stat -c %y "$bin" 2>/dev/null | cut -d. -f1 || echo missing)"
echo "   torch $("$py" -c 'import torch; print(torch.__version__)' 2>/dev/null), transformers $("$py" -c 'import transformers; print(transformers.__version__)' 2>/dev/null), torchvision $("$py" -c 'import torchvision; print(torchvision.__version__)' 2>/dev/null || echo 'NOT importable'), mergekit $("$py" -c 'import importlib.metadata as m; print(m.version("mergekit"))' 2>/dev/null)"

zoo_args=()
if [[ -n $zoo_n ]]; then
  zoo_key="candidates $zoo_n steps-scale $scale ranks $ranks"
  if [[ -f $work/zoo/zoo.json && "$(cat "$work/zoo.args" 2>/dev/null)" == "$zoo_key" ]]; then
    echo "== reusing $work/zoo ($zoo_key; delete it to rebuild)"
  else
    wait_bin
    echo "== mpirun -np $ranks uqmerge zoo --out $work/zoo --candidates $zoo_n --steps-scale $scale   (input only, not timed in the comparison)"
    t0=$(now)
    mpirun -np "$ranks" --oversubscribe "$bin" zoo --out "$work/zoo" --candidates "$zoo_n" --steps-scale "$scale" --overwrite \
      >"$work/zoo.log" 2>&1 || { tail -20 "$work/zoo.log"; exit 1; }
    echo "$zoo_key" >"$work/zoo.args"
    echo "   zoo: $(awk -v a="$t0" -v b="$(now)" 'BEGIN{printf "%.1f", b-a}') s"
  fi
  zoo_args=(--zoo "$work/zoo")
elif grep -q 'runs/demo/zoo' "$config" && [[ ! -f runs/demo/zoo/zoo.json ]]; then
  echo "run.sh: $config reads runs/demo/zoo, which does not exist: build it (mpirun -np 2 $bin zoo --out runs/demo/zoo, ~7 min)" >&2
  echo "        or pass --zoo-candidates N --steps-scale S for a smaller one" >&2
  exit 2
fi
"$py" bench/e2e/job.py prepare "$config" "$work" ${limit:+--limit "$limit"} ${pert:+--perturbations "$pert"} "${zoo_args[@]}"

rm -rf "$work/uqmerge" "$work/uqmerge-cache" "$work/release"
wait_bin
echo "== uqmerge: mpirun -np $ranks uqmerge run -c $work/job.yaml   (log: $work/uqmerge.log)"
t0=$(now)
mpirun -np "$ranks" --oversubscribe "$bin" run -c "$work/job.yaml" --overwrite --restart >"$work/uqmerge.log" 2>&1 ||
  { tail -20 "$work/uqmerge.log"; exit 1; }
u_wall=$(awk -v a="$t0" -v b="$(now)" 'BEGIN{printf "%.2f", b-a}')
echo "   uqmerge wall: $u_wall s"

echo "== release way: release_way.py $work/job.yaml   (log: $work/release.log)"
t0=$(now)
"$py" bench/e2e/release_way.py "$work/job.yaml" --out "$work/release" >"$work/release.log" 2>&1 ||
  { tail -20 "$work/release.log"; exit 1; }
r_wall=$(awk -v a="$t0" -v b="$(now)" 'BEGIN{printf "%.2f", b-a}')
echo "   release-way wall: $r_wall s"
grep -E '^\[release-way\] (candidate|step|chosen)' "$work/release.log" | sed 's/^/   /'

"$py" bench/e2e/job.py compare "$work" "$u_wall" "$r_wall"
echo "   load average at the end: $(cut -d' ' -f1-3 /proc/loadavg) (other jobs on these cores make both sides noisy)"
