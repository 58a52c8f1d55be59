#!/usr/bin/env bash
# duplex: long fuzzing runs that grow the seed corpora in the repository.
#
#   bash scripts/fuzz-long.sh                      # every fuzz_* target, 10 minutes each
#   DUPLEX_FUZZ_MINUTES=60 bash scripts/fuzz-long.sh
#   DUPLEX_FUZZ_TARGETS="fuzz_frame_server fuzz_inflate" bash scripts/fuzz-long.sh
#
# For each target: build it with clang + libFuzzer + ASan/UBSan (build-fuzz/, as the fuzz
# stage of scripts/test.sh does), fuzz for DUPLEX_FUZZ_MINUTES on a scratch copy of
# tests/fuzz/corpus/<target>/, then merge (-merge=1 -use_counters=0: only inputs that reach
# new edges, the smallest such input for each) back into tests/fuzz/corpus/<target>/. Review
# and commit the new corpus files yourself (`git status tests/fuzz/corpus`).
#
# Environment:
#   DUPLEX_FUZZ_MINUTES=N     minutes per target (default 10)
#   DUPLEX_FUZZ_TARGETS="..." targets to run (default: every tests/fuzz/fuzz_*.cpp)
#   DUPLEX_FUZZ_JOBS=N        build parallelism (default 2)
#   DUPLEX_FUZZ_NO_MERGE=1    fuzz only, leave the repository corpus alone
#
# A crash stops the script with status 1; the reproducer is in build-fuzz/artifacts/<target>/
# (rerun: build-fuzz/tests/fuzz/<target> <file>). The last line is
# "fuzz-long: N targets, M crashed, K corpus files added".
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
MINUTES="${DUPLEX_FUZZ_MINUTES:-10}"
JOBS="${DUPLEX_FUZZ_JOBS:-2}"
SECONDS_PER_TARGET=$((MINUTES * 60))

if [[ -n "${DUPLEX_FUZZ_TARGETS:-}" ]]; then
  read -r -a targets <<<"$DUPLEX_FUZZ_TARGETS"
else
  targets=()
  for src in tests/fuzz/fuzz_*.cpp; do targets+=("$(basename "$src" .cpp)"); done
fi

echo "==> configure build-fuzz (clang++, libFuzzer + ASan + UBSan)"
cmake -S . -B build-fuzz -DCMAKE_CXX_COMPILER=clang++ -DCMAKE_BUILD_TYPE= \
  -DDUPLEX_BUILD_FUZZERS=ON -DDUPLEX_BUILD_TESTS=OFF -DDUPLEX_BUILD_EXAMPLES=OFF \
  -DDUPLEX_BUILD_BENCHMARKS=OFF >/dev/null
echo "==> build: ${targets[*]}"
cmake --build build-fuzz -j"$JOBS" --target "${targets[@]}"

crashed=0
added_total=0
for name in "${targets[@]}"; do
  bin="build-fuzz/tests/fuzz/$name"
  corpus="tests/fuzz/corpus/$name"
  scratch="build-fuzz/long/$name"
  artifacts="build-fuzz/artifacts/$name"
  rm -rf "$scratch" "$artifacts"
  mkdir -p "$scratch" "$artifacts" "$corpus"
  cp -R "$corpus/." "$scratch/"
  args=(-max_total_time="$SECONDS_PER_TARGET" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1
        -artifact_prefix="$artifacts/")
  dict=()
  if [[ -f "tests/fuzz/$name.dict" ]]; then dict=(-dict="tests/fuzz/$name.dict"); fi
  echo "==> $name: fuzzing for $MINUTES min (log build-fuzz/long/$name.log)"
  if ! ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1}" \
       UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}" \
       "$bin" "${args[@]}" "${dict[@]+"${dict[@]}"}" "$scratch" >"build-fuzz/long/$name.log" 2>&1; then
    tail -n 40 "build-fuzz/long/$name.log" >&2
    echo "!!! $name crashed; reproducer(s): $(ls "$artifacts")" >&2
    echo "!!! rerun: $bin $artifacts/<file>" >&2
    crashed=$((crashed + 1))
    continue
  fi
  runs="$(awk '/stat::number_of_executed_units/ {print $2}' "build-fuzz/long/$name.log")"
  if [[ "${DUPLEX_FUZZ_NO_MERGE:-0}" == 1 ]]; then
    echo "    $name: ${runs:-?} runs, no crash (not merged)"
    continue
  fi
  before=$(find "$corpus" -type f | wc -l)
  # -merge=1 keeps only the inputs of $scratch that add coverage to what $corpus already has;
  # -use_counters=0 counts new edges only, not new hit counts of known edges, which keeps
  # the repository corpus small (a 1-minute run of fuzz_frame_server: +54 files instead of +268).
  "$bin" -merge=1 -use_counters=0 "${dict[@]+"${dict[@]}"}" "$corpus" "$scratch" >"build-fuzz/long/$name-merge.log" 2>&1
  after=$(find "$corpus" -type f | wc -l)
  added=$((after - before))
  added_total=$((added_total + added))
  echo "    $name: ${runs:-?} runs, no crash; corpus $before -> $after files (+$added, $(cat "$corpus"/* | wc -c) bytes in all)"
done

echo "fuzz-long: ${#targets[@]} targets, $crashed crashed, $added_total corpus files added"
if ((crashed)); then exit 1; fi
exit 0
