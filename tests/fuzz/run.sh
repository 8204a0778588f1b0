#!/usr/bin/env bash
# Builds the libFuzzer targets with clang (libFuzzer + ASan + UBSan) and runs each.
#   tests/fuzz/run.sh SECONDS [WORK_DIR]        (SECONDS per target)
# Targets: the safetensors header parser, the dataset row parsers (TSV/JSONL). Seeds are small
# valid inputs. Exit 0 when no finding; crash inputs are left in WORK_DIR.
set -euo pipefail
secs=${1:-60}
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
work=${2:-${TMPDIR:-/tmp}/uqmerge-fuzz}
mkdir -p "$work/corpus"
bin=$work/safetensors_header_fuzz
srcs=(src/io/safetensors_reader.cpp src/io/dtype.cpp src/io/mapped_file.cpp src/util/error.cpp)
if [ ! -x "$bin" ] || [ -n "$(find "${srcs[@]/#/$root/}" "$here/safetensors_header_fuzz.cpp" -newer "$bin" 2>/dev/null)" ]; then
  clang++ -std=c++20 -O1 -g -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
    -I"$root/include" "$here/safetensors_header_fuzz.cpp" "${srcs[@]/#/$root/}" -o "$bin"
fi
seed() { printf '%s' "$2" >"$work/corpus/$1"; }
hdr() {  # u64 LE length + header + N zero data bytes
  local h=$1 n=${2:-0}
  python3 -c "import struct,sys; h=sys.argv[1].encode(); sys.stdout.buffer.write(struct.pack('<Q',len(h))+h+b'\0'*int(sys.argv[2]))" "$h" "$n"
}
hdr '{"a":{"dtype":"F32","shape":[2,2],"data_offsets":[0,16]},"__metadata__":{"format":"pt"}}' 16 >"$work/corpus/valid"
hdr '{"b":{"dtype":"BF16","shape":[3],"data_offsets":[0,6]},"c":{"dtype":"U8","shape":[],"data_offsets":[6,7]}}' 7 >"$work/corpus/two"
hdr '{"e":{"dtype":"F16","shape":[0],"data_offsets":[0,0]}}' 0 >"$work/corpus/empty"
hdr '{}' 0 >"$work/corpus/none"
ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
  "$bin" "$work/corpus" -max_total_time="$secs" -max_len=4096 -artifact_prefix="$work/" -print_final_stats=1 2>&1 |
  tail -8

# ---- dataset rows ------------------------------------------------------------------------------
mkdir -p "$work/rows_corpus"
rbin=$work/dataset_rows_fuzz
rsrcs=(src/data/dataset.cpp src/util/error.cpp src/util/rng.cpp src/model/image.cpp src/model/prompt.cpp)
if [ ! -x "$rbin" ] || [ -n "$(find "${rsrcs[@]/#/$root/}" "$here/dataset_rows_fuzz.cpp" -newer "$rbin" 2>/dev/null)" ]; then
  clang++ -std=c++20 -O1 -g -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
    -I"$root/include" -I/usr/include/opencv4 "$here/dataset_rows_fuzz.cpp" "${rsrcs[@]/#/$root/}" \
    -lopencv_core -lopencv_imgproc -lopencv_imgcodecs -o "$rbin"
fi
printf '\x00index\tquestion\thint\tA\tB\tanswer\timage\n1\t"q\tx"\t\ta\tb\tA\t2\n' >"$work/rows_corpus/tsv"
printf '\x01{"index": 1, "question": "q", "options": ["a", "b"], "answer": "B", "image": "p.png"}\n' >"$work/rows_corpus/jsonl"
ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
  "$rbin" "$work/rows_corpus" -max_total_time="$secs" -max_len=4096 -artifact_prefix="$work/rows-" -print_final_stats=1 2>&1 |
  tail -8
