#!/usr/bin/env bash
# Forward-pass benchmark of issue #3, uqmerge beside transformers in one run, same threads:
# a random LLaVA checkpoint of realistic widths (LLaMA 4096 x LAYERS, CLIP-L x VLAYERS, 336 px),
# a batch of 4 prompts (60-90 text tokens + 576 image tokens), option logits at the last position.
# Usage: bench/forward/run.sh [BUILD_DIR] [WORK_DIR] [LAYERS] [VLAYERS] [REPS]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
source scripts/env.sh
build=${1:-$UQMERGE_BUILD}
work=${2:-/tmp/uqmerge-bench-forward}
layers=${3:-2}
vlayers=${4:-4}
reps=${5:-3}
threads=$(nproc)
py=$UQMERGE_VENV/bin/python
model=$work/llava_${layers}x${vlayers}
mkdir -p "$work"
HF_HUB_OFFLINE=1 "$py" bench/forward/make_model.py "$model" "$layers" "$vlayers" >/dev/null
get() { awk -v k="$1" '$1 == k { print $2 }'; }
u=$("$build/bench/uqmerge_bench_forward" "$model" 4 "$threads" "$reps")
r=$(HF_HUB_OFFLINE=1 "$py" bench/forward/reference_transformers.py "$model" 4 "$threads" "$reps" 2>/dev/null)
us=$(get seconds <<<"$u"); bs=$(get best_seconds <<<"$r"); rs=$(get release_seconds <<<"$r")
uc=$(grep '^checksum' <<<"$u" | cut -d' ' -f2-); rc=$(grep '^checksum' <<<"$r" | cut -d' ' -f2-)
maxdiff=$(paste <(tr ' ' '\n' <<<"$uc") <(tr ' ' '\n' <<<"$rc") | awk '{d=$1-$2; if(d<0)d=-d; if(d>m)m=d} END{printf "%.2e", m}')
echo "model: LLaMA 4096 x $layers layers + CLIP-L x $vlayers layers (fp32, $(get checkpoint_mb <<<"$u") MB), batch 4, $threads threads"
echo
echo "| run | seconds / batch of 4 | samples/s | uqmerge speed-up |"
echo "|---|---|---|---|"
echo "| uqmerge (vision -> projector -> LLaMA, option rows at the last position) | $us | $(get samples_per_s <<<"$u") | 1.00 |"
echo "| transformers, batch 4, inference_mode, SDPA, logits_to_keep=1 | $bs | $(awk -v s="$bs" 'BEGIN{printf "%.4f", 4/s}') | $(awk -v a="$bs" -v b="$us" 'BEGIN{printf "%.2f", a/b}') |"
echo "| transformers, released pipeline's way (batch 1, full logits) | $rs | $(awk -v s="$rs" 'BEGIN{printf "%.4f", 4/s}') | $(awk -v a="$rs" -v b="$us" 'BEGIN{printf "%.2f", a/b}') |"
echo
echo "achieved $(get gflops <<<"$u") GFLOP/s = $(get fraction_of_peak <<<"$u") of torch.mm's $(get mm_peak_gflops <<<"$u") GFLOP/s (fp32, 4096^3)"
echo "RSS after load $(get rss_after_load_mb <<<"$u") MB, after the first forward $(get rss_after_forward_mb <<<"$u") MB (checkpoint $(get checkpoint_mb <<<"$u") MB)"
echo "max |option logit diff| uqmerge vs transformers on the same inputs: $maxdiff"
