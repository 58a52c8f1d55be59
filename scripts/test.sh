#!/usr/bin/env bash
# duplex: build and run every test. This is the command the README and CI use.
#
#   bash scripts/test.sh
#
# Stages (each timed, summarised in a table at the end):
#   deps        scripts/install-deps.sh (apt packages, npm packages of tests/interop)
#   build       build/ (RelWithDebInfo): library, unit/integration tests, examples, benchmarks
#   ctest       ctest in build/
#   asan-build  build-asan/ with -DDUPLEX_SANITIZE=address,undefined (tests + examples)
#   asan-ctest  ctest in build-asan/ (the CMake packaging tests, label "cmake", run once only)
#   fuzz-build  build-fuzz/ with clang++ and -DDUPLEX_BUILD_FUZZERS=ON
#   fuzz        every fuzz_* target for DUPLEX_FUZZ_SECONDS on a scratch copy of its corpus
#   bench       every micro_* benchmark once with --benchmark_min_time=0.01 (smoke only)
#
# Environment:
#   DUPLEX_SKIP_ASAN=1      skip the sanitizer build and its tests
#   DUPLEX_SKIP_FUZZ=1      skip the fuzzers
#   DUPLEX_SKIP_BENCH=1     skip the benchmark smoke run
#   DUPLEX_SKIP_DEPS=1      do not run scripts/install-deps.sh
#   DUPLEX_FUZZ_SECONDS=N   seconds per fuzz target (default 20)
#   DUPLEX_JOBS=N           build and ctest parallelism (default 2)
#   DUPLEX_CTEST_ARGS       extra ctest arguments for both ctest runs (e.g. "-R frame")
#
# The last line is "tests: N passed, M failed": N and M add up the ctest results of every
# ctest run plus one per fuzz target and per benchmark binary; a stage that fails without
# running tests (a build, a configure) counts as one failure. Exit status is 0 only when
# nothing failed.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

JOBS="${DUPLEX_JOBS:-2}"
FUZZ_SECONDS="${DUPLEX_FUZZ_SECONDS:-20}"
LOG_DIR="$ROOT/build-logs"
export DUPLEX_LOG_DIR="$LOG_DIR"
mkdir -p "$LOG_DIR"
read -r -a CTEST_EXTRA <<<"${DUPLEX_CTEST_ARGS:-}"

TOTAL_PASSED=0
TOTAL_FAILED=0
STAGE_NAMES=()
STAGE_RESULTS=()
STAGE_TIMES=()
FAILED_STAGES=()

say() { printf '==> %s\n' "$*"; }

# record NAME RESULT SECONDS
record() {
  STAGE_NAMES+=("$1"); STAGE_RESULTS+=("$2"); STAGE_TIMES+=("$3")
  printf '    %s: %s (%s s)\n' "$1" "$2" "$3"
  if [[ "$2" == FAILED* ]]; then FAILED_STAGES+=("$1"); fi
}

# stage_fail NAME LOG MESSAGE: explain the failure and show the end of the stage's log.
stage_fail() {
  printf '\n!!! stage %s FAILED: %s\n' "$1" "$3" >&2
  if [[ -n "$2" && -f "$2" ]]; then
    printf '!!! last 80 lines of %s:\n' "${2#"$ROOT"/}" >&2
    tail -n 80 "$2" | sed 's/^/    /' >&2
    printf '!!! (end of %s, stage %s FAILED)\n\n' "${2#"$ROOT"/}" "$1" >&2
  fi
}

# run_logged NAME LOG CMD...: run CMD with its output in LOG; on failure explain and return 1.
# Counts one failed test for the stage on failure (it ran no tests of its own).
run_logged() {
  local name="$1" log="$2"; shift 2
  local t0=$SECONDS
  say "$name: $*"
  if "$@" </dev/null >"$log" 2>&1; then
    record "$name" ok $((SECONDS - t0))
    return 0
  fi
  stage_fail "$name" "$log" "command failed: $*"
  record "$name" FAILED $((SECONDS - t0))
  TOTAL_FAILED=$((TOTAL_FAILED + 1))
  return 1
}

# run_ctest NAME BUILD_DIR [ARGS...]: run ctest, show its output, add its counts.
run_ctest() {
  local name="$1" dir="$2"; shift 2
  local log="$LOG_DIR/$name.log" t0=$SECONDS rc=0
  say "$name: ctest --test-dir $dir --output-on-failure -j$JOBS $*"
  ctest --test-dir "$dir" --output-on-failure -j"$JOBS" --timeout 600 --no-tests=error \
    "$@" "${CTEST_EXTRA[@]+"${CTEST_EXTRA[@]}"}" </dev/null 2>&1 | tee "$log" || rc=$?
  local line passed=0 failed=0
  line="$(grep -E '^[0-9]+% tests passed, [0-9]+ tests? failed out of [0-9]+' "$log" | tail -n 1 || true)"
  if [[ -n "$line" ]]; then
    failed="$(sed -E 's/.* ([0-9]+) tests? failed out of.*/\1/' <<<"$line")"
    local total
    total="$(sed -E 's/.*out of ([0-9]+).*/\1/' <<<"$line")"
    passed=$((total - failed))
  fi
  if [[ -z "$line" && $rc -eq 0 ]]; then rc=1; fi
  if ((rc != 0 && failed == 0)); then failed=1; fi   # ctest itself failed (no tests, crash)
  TOTAL_PASSED=$((TOTAL_PASSED + passed))
  TOTAL_FAILED=$((TOTAL_FAILED + failed))
  if ((rc == 0)); then
    record "$name" "ok ($passed passed)" $((SECONDS - t0))
  else
    printf '\n!!! stage %s FAILED: %s of %s tests failed (ctest exit %s; output above, log %s)\n\n' \
      "$name" "$failed" "$((passed + failed))" "$rc" "${log#"$ROOT"/}" >&2
    record "$name" "FAILED ($failed of $((passed + failed)))" $((SECONDS - t0))
  fi
  return "$rc"
}

skip() { record "$1" "skipped ($2)" 0; }

# ---------------------------------------------------------------- deps
if [[ "${DUPLEX_SKIP_DEPS:-0}" == 1 ]]; then
  skip deps DUPLEX_SKIP_DEPS=1
else
  t0=$SECONDS
  say "deps: bash scripts/install-deps.sh"
  if bash "$ROOT/scripts/install-deps.sh" </dev/null; then
    record deps ok $((SECONDS - t0))
  else
    record deps FAILED $((SECONDS - t0))
    printf '\n!!! stage deps FAILED: scripts/install-deps.sh could not install the dependencies\n' >&2
    printf 'tests: 0 passed, 1 failed\n'
    exit 1
  fi
fi

# ---------------------------------------------------------------- main build + tests
main_built=0
if run_logged configure "$LOG_DIR/configure.log" \
     cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo -DDUPLEX_BUILD_FUZZERS=OFF \
  && run_logged build "$LOG_DIR/build.log" cmake --build build -j"$JOBS"; then
  main_built=1
fi
if ((main_built)); then
  run_ctest ctest build || true
else
  skip ctest "build failed"
fi

# ---------------------------------------------------------------- sanitizers
if [[ "${DUPLEX_SKIP_ASAN:-0}" == 1 ]]; then
  skip asan-build DUPLEX_SKIP_ASAN=1
else
  if run_logged asan-configure "$LOG_DIR/asan-configure.log" \
       cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DCMAKE_CXX_FLAGS_DEBUG="-g -O1" \
         -DDUPLEX_SANITIZE=address,undefined -DDUPLEX_BUILD_EXAMPLES=ON \
         -DDUPLEX_BUILD_BENCHMARKS=OFF -DDUPLEX_BUILD_FUZZERS=OFF \
    && run_logged asan-build "$LOG_DIR/asan-build.log" cmake --build build-asan -j"$JOBS"; then
    # The CMake packaging tests (label "cmake") build their own projects without
    # sanitizers; they already ran in the main ctest stage.
    ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:check_initialization_order=1:strict_init_order=1}" \
    UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}" \
      run_ctest asan-ctest build-asan -LE '^cmake$' || true
  else
    skip asan-ctest "asan build failed"
  fi
fi

# ---------------------------------------------------------------- fuzzers
if [[ "${DUPLEX_SKIP_FUZZ:-0}" == 1 ]]; then
  skip fuzz DUPLEX_SKIP_FUZZ=1
else
  shopt -s nullglob
  fuzz_sources=(tests/fuzz/fuzz_*.cpp)
  shopt -u nullglob
  if ((${#fuzz_sources[@]} == 0)); then
    skip fuzz "no tests/fuzz/fuzz_*.cpp"
  elif run_logged fuzz-configure "$LOG_DIR/fuzz-configure.log" \
         cmake -S . -B build-fuzz -DCMAKE_CXX_COMPILER=clang++ -DCMAKE_BUILD_TYPE= \
           -DDUPLEX_BUILD_FUZZERS=ON -DDUPLEX_BUILD_TESTS=OFF -DDUPLEX_BUILD_EXAMPLES=OFF \
           -DDUPLEX_BUILD_BENCHMARKS=OFF \
      && run_logged fuzz-build "$LOG_DIR/fuzz-build.log" cmake --build build-fuzz -j"$JOBS"; then
    for src in "${fuzz_sources[@]}"; do
      name="$(basename "$src" .cpp)"
      bin="build-fuzz/tests/fuzz/$name"
      scratch="build-fuzz/scratch/$name"
      artifacts="build-fuzz/artifacts/$name"
      rm -rf "$scratch" "$artifacts"
      mkdir -p "$scratch" "$artifacts"
      if [[ -d "tests/fuzz/corpus/$name" ]]; then cp -R "tests/fuzz/corpus/$name/." "$scratch/"; fi
      args=(-max_total_time="$FUZZ_SECONDS" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1
            -artifact_prefix="$artifacts/")
      if [[ -f "tests/fuzz/$name.dict" ]]; then args+=(-dict="tests/fuzz/$name.dict"); fi
      if ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1}" \
         UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}" \
         run_logged "fuzz:$name" "$LOG_DIR/fuzz-$name.log" "$bin" "${args[@]}" "$scratch"; then
        TOTAL_PASSED=$((TOTAL_PASSED + 1))
        runs="$(awk '/stat::number_of_executed_units/ {print $2}' "$LOG_DIR/fuzz-$name.log")"
        say "fuzz:$name: ${runs:-?} runs in ${FUZZ_SECONDS} s, no crash"
      else
        shopt -s nullglob; crashes=("$artifacts"/*); shopt -u nullglob
        if ((${#crashes[@]})); then
          printf '!!! fuzz:%s reproducer(s): %s\n!!! rerun: %s %s\n' \
            "$name" "${crashes[*]}" "$bin" "${crashes[0]}" >&2
        fi
      fi
    done
  fi
fi

# ---------------------------------------------------------------- benchmark smoke
if [[ "${DUPLEX_SKIP_BENCH:-0}" == 1 ]]; then
  skip bench DUPLEX_SKIP_BENCH=1
elif ((main_built == 0)); then
  skip bench "build failed"
else
  shopt -s nullglob
  benches=()
  for f in build/benchmarks/micro_*; do
    if [[ -f "$f" && -x "$f" ]]; then benches+=("$f"); fi
  done
  shopt -u nullglob
  if ((${#benches[@]} == 0)); then
    skip bench "no micro_* benchmarks built"
  else
    for b in "${benches[@]}"; do
      name="$(basename "$b")"
      if run_logged "bench:$name" "$LOG_DIR/bench-$name.log" "$b" --benchmark_min_time=0.01; then
        TOTAL_PASSED=$((TOTAL_PASSED + 1))
      fi
    done
  fi
fi

# ---------------------------------------------------------------- summary
printf '\n%-28s %-30s %8s\n' stage result seconds
printf '%-28s %-30s %8s\n' "$(printf -- '-%.0s' {1..28})" "$(printf -- '-%.0s' {1..30})" --------
for i in "${!STAGE_NAMES[@]}"; do
  printf '%-28s %-30s %8s\n' "${STAGE_NAMES[$i]}" "${STAGE_RESULTS[$i]}" "${STAGE_TIMES[$i]}"
done
printf '%-28s %-30s %8s\n' total "" "$SECONDS"
if ((${#FAILED_STAGES[@]})); then
  printf '\nFAILED stages: %s (logs in build-logs/)\n' "${FAILED_STAGES[*]}"
fi
echo
echo "tests: $TOTAL_PASSED passed, $TOTAL_FAILED failed"
if ((${#FAILED_STAGES[@]} || TOTAL_FAILED)); then
  exit 1
fi
exit 0
