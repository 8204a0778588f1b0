# shellcheck shell=bash
# The one shell test library of tests/e2e and tests/slurm (sourced by path relative to the
# script: source "$(dirname "$0")/../lib/testlib.sh"). Checks count failures instead of ending
# the script (safe under set -euo pipefail); the script ends with `testlib_summary`.
#
#   testlib_work                 $work: a fresh temporary directory, removed when the script exits
#                                (UQMERGE_KEEP_TMP=1 keeps it). Scripts that make $work themselves
#                                (tests/slurm: start_work_cluster) need not call it.
#   expect NAME [OPTION...] -- COMMAND [ARG...]
#                                runs COMMAND (a program or a shell function) with its stdout and
#                                stderr in $expect_out and $expect_err (files in $work, kept until
#                                the next expect) and prints "ok   NAME" or "FAIL NAME: why" with the
#                                start of its output. Returns 0 either way (a failed check is
#                                counted in $fail and does not end a script under set -e).
#       --exit N                 exit status N (default 0)
#       --err REGEX              stderr matches REGEX (grep -E)
#       --out REGEX              stdout matches REGEX (grep -E)
#       --one-line               stderr is exactly one line (uqmerge's "one error line" on bad input)
#       --one-error              exactly one line of stderr contains ERROR (other log lines allowed)
#       --nothing-complete PATH  afterwards, nothing_complete PATH holds (repeatable)
#   nothing_complete PATH        true when nothing at PATH looks like a finished output: PATH is
#                                absent or a directory without results.h5, eval.h5, config.json,
#                                zoo.json or merged/; no PATH.tmp* (a write in progress) is left
#                                beside it; a PATH.partial (staging) holds none of those files.
#                                Prints what it found when it finds something.
#   ok NAME / bad NAME           count a check done by hand (prints "ok   NAME" / "FAIL NAME")
#   testlib_summary              prints "P passed, F failed"; returns 1 when F > 0
#
# Counters: $pass and $fail (read them, e.g. `before=$fail`, to show a log after a failed group).

pass=0
fail=0
expect_out=""
expect_err=""

ok() {
  echo "ok   $1"
  pass=$((pass + 1))
}

bad() {
  echo "FAIL $1"
  fail=$((fail + 1))
}

testlib_work() {
  work=$(mktemp -d "${TMPDIR:-/tmp}/uqmerge-test.XXXXXX")
  trap '_testlib_cleanup' EXIT
}

_testlib_cleanup() {
  local rc=$?
  if [ "${UQMERGE_KEEP_TMP:-0}" = 1 ]; then
    echo "work directory kept: $work"
  else
    rm -rf "$work"
  fi
  return "$rc"
}

_TESTLIB_MARKERS=(results.h5 eval.h5 config.json zoo.json merged)

nothing_complete() {  # PATH
  local path=$1 found="" m t
  if [ -e "$path" ] && [ ! -d "$path" ]; then
    found=" $path (a file)"
  elif [ -d "$path" ]; then
    for m in "${_TESTLIB_MARKERS[@]}"; do [ -e "$path/$m" ] && found="$found $path/$m"; done
  fi
  for t in "$path".tmp*; do [ -e "$t" ] && found="$found $t"; done
  if [ -d "$path.partial" ]; then
    for m in "${_TESTLIB_MARKERS[@]}"; do [ -e "$path.partial/$m" ] && found="$found $path.partial/$m"; done
  fi
  if [ -n "$found" ]; then
    echo "   nothing_complete $path: found${found}"
    return 1
  fi
  return 0
}

# Prints the first lines of a captured stream, prefixed (after a failed check).
_testlib_show() {  # LABEL FILE LINES
  [ -s "$2" ] && head -n "$3" "$2" | sed "s/^/   $1: /"
  return 0
}

expect() {
  local name=$1
  shift
  local code=0 err_re="" out_re="" one_line=0 one_error=0
  local -a complete=()
  while [ $# -gt 0 ] && [ "$1" != -- ]; do
    case $1 in
      --exit) code=$2; shift 2 ;;
      --err) err_re=$2; shift 2 ;;
      --out) out_re=$2; shift 2 ;;
      --one-line) one_line=1; shift ;;
      --one-error) one_error=1; shift ;;
      --nothing-complete) complete+=("$2"); shift 2 ;;
      *) bad "$name: testlib: unknown expect option '$1' (options end with --)"; return 0 ;;
    esac
  done
  if [ $# -lt 2 ]; then
    bad "$name: testlib: usage: expect NAME [OPTION...] -- COMMAND [ARG...]"
    return 0
  fi
  shift  # --
  : "${work:?testlib: \$work is not set (call testlib_work first)}"
  expect_out=$work/.expect.out
  expect_err=$work/.expect.err
  local rc=0
  "$@" >"$expect_out" 2>"$expect_err" || rc=$?
  local why="" p lines errors
  lines=$(wc -l <"$expect_err")
  errors=$(grep -c ERROR "$expect_err" || true)
  if [ "$rc" -ne "$code" ]; then
    why="exit $rc, expected $code"
  elif [ "$one_line" = 1 ] && [ "$lines" -ne 1 ]; then
    why="$lines stderr lines, expected one"
  elif [ "$one_error" = 1 ] && [ "$errors" -ne 1 ]; then
    why="$errors ERROR lines on stderr, expected one"
  elif [ -n "$err_re" ] && ! grep -Eq -- "$err_re" "$expect_err"; then
    why="stderr does not match /$err_re/"
  elif [ -n "$out_re" ] && ! grep -Eq -- "$out_re" "$expect_out"; then
    why="stdout does not match /$out_re/"
  else
    for p in "${complete[@]}"; do
      nothing_complete "$p" || why="left output that looks complete at $p"
    done
  fi
  if [ -n "$why" ]; then
    bad "$name: $why"
    _testlib_show stderr "$expect_err" 5
    _testlib_show stdout "$expect_out" 20
    return 0
  fi
  ok "$name"
}

testlib_summary() {
  echo "$pass passed, $fail failed"
  [ "$fail" -eq 0 ]
}
