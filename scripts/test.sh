#!/usr/bin/env bash
# duplex: build and run every test. This is the command the README and CI use.
#
#   bash scripts/test.sh
#
# Stages (each timed, summarised in a table at the end):
#   deps        scripts/install-deps.sh (apt packages, npm packages of tests/interop)
#   build       build/ (-O2, no debug info): examples, integration, interop, packaging, docs and
#               soak tests, benchmarks (the unit tests only with DUPLEX_SKIP_ASAN=1)
#   ctest       ctest in build/
#   asan-build  build-asan/ at -O0 with -DDUPLEX_SANITIZE=address,undefined (unit tests, the rest
#               of the tests and the examples; not the
#               docs examples and separate-compilation tests, which only prove code compiles)
#   asan-ctest  ctest in build-asan/ without the labels "cmake" (packaging tests, run once only)
#               and "soak" (run in their own stage)
#   asan-soak   the soak tests (label "soak") in build-asan/, soak for DUPLEX_SOAK_SECONDS_SANITIZED
#   tsan-build  build-tsan/ with -DDUPLEX_SANITIZE=thread: the unit-test files that use
#               threads (test_client, test_connection, test_server_tcp) and soak only
#   tsan-tests  those unit tests "[threads],[client],[server]" and the soak test, under TSan
#   fuzz-build  build-fuzz/ with clang++ and -DDUPLEX_BUILD_FUZZERS=ON
#   fuzz        every fuzz_* target for DUPLEX_FUZZ_SECONDS on a scratch copy of its corpus,
#               DUPLEX_JOBS of them at a time
#   bench       every micro_* benchmark once with --benchmark_min_time=0.01, and
#               benchmarks/run.py --smoke (each scenario 1 s, duplex + TCP ceiling)
#
# Environment:
#   DUPLEX_SKIP_ASAN=1      skip the AddressSanitizer build and its tests
#   DUPLEX_SKIP_TSAN=1      skip the ThreadSanitizer build and its tests
#   DUPLEX_SKIP_SOAK=1      leave out the soak tests (label "soak") everywhere
#   DUPLEX_SOAK_SECONDS=N   soak duration in the main ctest (default 60, in the test itself)
#   DUPLEX_SOAK_SECONDS_SANITIZED=N  soak duration under ASan and TSan (default 15)
#   DUPLEX_SKIP_FUZZ=1      skip the fuzzers
#   DUPLEX_SKIP_BENCH=1     skip the benchmark smoke run
#   DUPLEX_SKIP_DEPS=1      do not run scripts/install-deps.sh
#   DUPLEX_FUZZ_SECONDS=N   seconds per fuzz target (default 20)
#   DUPLEX_JOBS=N           build and ctest parallelism (default 2)
#   DUPLEX_CTEST_ARGS       extra ctest arguments for both ctest runs (e.g. "-R frame")
#
# The last line is "tests: N passed, M failed": N and M add up the ctest results of every
# ctest run, the Catch2 test cases of the tsan stage, plus one per fuzz target and per
# benchmark binary; a stage that fails without
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

# run_catch NAME BINARY [ARGS...]: run a Catch2 binary, show its output, add its test-case counts.
run_catch() {
  local name="$1" bin="$2"; shift 2
  local log="$LOG_DIR/$name.log" t0=$SECONDS rc=0 passed=0 failed=0 line
  say "$name: $bin $*"
  "$bin" "$@" </dev/null 2>&1 | tee "$log" || rc=$?
  # Catch2 v2 ends with "All tests passed (A assertions in N test cases)" or
  # "test cases: N | P passed | F failed".
  if line="$(grep -E '^All tests passed \([0-9]+ assertions? in [0-9]+ test cases?\)' "$log" | tail -n 1)" && [[ -n "$line" ]]; then
    passed="$(sed -E 's/.* in ([0-9]+) test cases?.*/\1/' <<<"$line")"
  elif line="$(grep -E '^test cases: *[0-9]+' "$log" | tail -n 1)" && [[ -n "$line" ]]; then
    passed="$(sed -nE 's/.*\| *([0-9]+) passed.*/\1/p' <<<"$line")"
    failed="$(sed -nE 's/.*\| *([0-9]+) failed.*/\1/p' <<<"$line")"
    passed="${passed:-0}"; failed="${failed:-0}"
  fi
  if ((rc == 0 && passed == 0 && failed == 0)); then rc=1; fi  # no test case matched
  if ((rc != 0 && failed == 0)); then failed=1; fi   # a crash, a sanitizer abort, no summary
  TOTAL_PASSED=$((TOTAL_PASSED + passed))
  TOTAL_FAILED=$((TOTAL_FAILED + failed))
  if ((rc == 0)); then
    record "$name" "ok ($passed passed)" $((SECONDS - t0))
  else
    printf '\n!!! stage %s FAILED: %s failed (exit %s; output above, log %s)\n\n' \
      "$name" "$failed" "$rc" "${log#"$ROOT"/}" >&2
    record "$name" "FAILED ($failed of $((passed + failed)))" $((SECONDS - t0))
  fi
  return "$rc"
}

SOAK_SANITIZED="${DUPLEX_SOAK_SECONDS_SANITIZED:-15}"
SOAK_EXCLUDE=()
if [[ "${DUPLEX_SKIP_SOAK:-0}" == 1 ]]; then SOAK_EXCLUDE=(-LE '^soak$'); fi

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
# The unit tests run in the sanitizer trees (all of them under ASan + UBSan, the threaded
# ones under TSan); building them a third time here at -O2 cost about 150 s. Without the
# ASan stage they are built here instead, so nothing goes untested.
MAIN_UNIT_TESTS=OFF
if [[ "${DUPLEX_SKIP_ASAN:-0}" == 1 ]]; then MAIN_UNIT_TESTS=ON; fi
if run_logged configure "$LOG_DIR/configure.log" \
     cmake -S . -B build -DCMAKE_BUILD_TYPE=Release "-DCMAKE_CXX_FLAGS_RELEASE=-O2 -DNDEBUG" \
       -DDUPLEX_BUILD_FUZZERS=OFF -DDUPLEX_BUILD_UNIT_TESTS="$MAIN_UNIT_TESTS" \
  && run_logged build "$LOG_DIR/build.log" cmake --build build -j"$JOBS"; then
  main_built=1
fi
if ((main_built)); then
  # Everything, the soak tests (label "soak", ~65 s, run serially) included.
  run_ctest ctest build "${SOAK_EXCLUDE[@]+"${SOAK_EXCLUDE[@]}"}" || true
else
  skip ctest "build failed"
fi

# ---------------------------------------------------------------- sanitizers
if [[ "${DUPLEX_SKIP_ASAN:-0}" == 1 ]]; then
  skip asan-build DUPLEX_SKIP_ASAN=1
else
  if run_logged asan-configure "$LOG_DIR/asan-configure.log" \
       cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DCMAKE_CXX_FLAGS_DEBUG="-g1 -O0" \
         -DDUPLEX_SANITIZE=address,undefined -DDUPLEX_BUILD_EXAMPLES=ON -DDUPLEX_BUILD_COMPILE_TESTS=OFF \
         -DDUPLEX_BUILD_BENCHMARKS=OFF -DDUPLEX_BUILD_FUZZERS=OFF \
    && run_logged asan-build "$LOG_DIR/asan-build.log" cmake --build build-asan -j"$JOBS"; then
    # The CMake packaging tests (label "cmake") build their own projects without
    # sanitizers; they already ran in the main ctest stage. The soak tests (label
    # "soak") run next, on their own and shorter: under ASan they are 2-3x slower.
    ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:check_initialization_order=1:strict_init_order=1}" \
    UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}" \
      run_ctest asan-ctest build-asan -LE '^(cmake|soak)$' || true
    if [[ "${DUPLEX_SKIP_SOAK:-0}" == 1 ]]; then
      skip asan-soak DUPLEX_SKIP_SOAK=1
    else
      DUPLEX_SOAK_SECONDS="$SOAK_SANITIZED" \
      ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1}" \
      UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}" \
        run_ctest asan-soak build-asan -L '^soak$' || true
    fi
  else
    skip asan-ctest "asan build failed"
  fi
fi

# ThreadSanitizer: only what runs on several threads (the unit tests tagged [threads] and
# [client], and the soak test), in its own tree; about 4 minutes on 2 cores.
if [[ "${DUPLEX_SKIP_TSAN:-0}" == 1 ]]; then
  skip tsan-build DUPLEX_SKIP_TSAN=1
else
  tsan_targets=(duplex_unit_tests)
  # The files whose tests run on several threads (a server thread and a client thread).
  TSAN_UNIT_FILES="test_client;test_connection;test_server_tcp;test_read_park;test_server_unix"
  if [[ "${DUPLEX_SKIP_SOAK:-0}" != 1 ]]; then tsan_targets+=(soak); fi
  if run_logged tsan-configure "$LOG_DIR/tsan-configure.log" \
       cmake -S . -B build-tsan -DCMAKE_BUILD_TYPE=Debug -DCMAKE_CXX_FLAGS_DEBUG="-g1 -O1" \
         -DDUPLEX_SANITIZE=thread -DDUPLEX_BUILD_EXAMPLES=OFF -DDUPLEX_BUILD_COMPILE_TESTS=OFF \
         "-DDUPLEX_UNIT_TEST_FILES=$TSAN_UNIT_FILES" \
         -DDUPLEX_BUILD_BENCHMARKS=OFF -DDUPLEX_BUILD_FUZZERS=OFF \
    && run_logged tsan-build "$LOG_DIR/tsan-build.log" \
         cmake --build build-tsan -j"$JOBS" --target "${tsan_targets[@]}"; then
    TSAN_OPTIONS="${TSAN_OPTIONS:-halt_on_error=1:second_deadlock_stack=1}" \
      run_catch tsan-unit build-tsan/tests/duplex_unit_tests '[threads],[client],[server]' || true
    if [[ "${DUPLEX_SKIP_SOAK:-0}" == 1 ]]; then
      skip tsan-soak DUPLEX_SKIP_SOAK=1
    else
      DUPLEX_SOAK_SECONDS="$SOAK_SANITIZED" \
      TSAN_OPTIONS="${TSAN_OPTIONS:-halt_on_error=1:second_deadlock_stack=1}" \
        run_ctest tsan-soak build-tsan -R '^soak$' || true
    fi
  else
    skip tsan-tests "tsan build failed"
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
    # Two fuzzers at a time, one per core; each result is recorded once both are done.
    fuzz_one() { # NAME: runs it on a scratch copy of its corpus, exit status in its .rc file
      local name="$1" bin="build-fuzz/tests/fuzz/$1" scratch="build-fuzz/scratch/$1" artifacts="build-fuzz/artifacts/$1"
      rm -rf "$scratch" "$artifacts"
      mkdir -p "$scratch" "$artifacts"
      if [[ -d "tests/fuzz/corpus/$name" ]]; then cp -R "tests/fuzz/corpus/$name/." "$scratch/"; fi
      local args=(-max_total_time="$FUZZ_SECONDS" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1
                  -artifact_prefix="$artifacts/")
      if [[ -f "tests/fuzz/$name.dict" ]]; then args+=(-dict="tests/fuzz/$name.dict"); fi
      local rc=0
      ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1}" \
      UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}" \
        "$bin" "${args[@]}" "$scratch" </dev/null >"$LOG_DIR/fuzz-$name.log" 2>&1 || rc=$?
      echo "$rc" >"$LOG_DIR/fuzz-$name.rc"
    }
    fuzz_names=()
    for src in "${fuzz_sources[@]}"; do fuzz_names+=("$(basename "$src" .cpp)"); done
    for ((i = 0; i < ${#fuzz_names[@]}; i += JOBS)); do
      group=("${fuzz_names[@]:i:JOBS}")
      t0=$SECONDS
      say "fuzz: ${group[*]} (${FUZZ_SECONDS} s each, at once)"
      for name in "${group[@]}"; do fuzz_one "$name" & done
      wait
      for name in "${group[@]}"; do
        log="$LOG_DIR/fuzz-$name.log"
        if [[ "$(cat "$LOG_DIR/fuzz-$name.rc" 2>/dev/null)" == 0 ]]; then
          record "fuzz:$name" ok $((SECONDS - t0))
          TOTAL_PASSED=$((TOTAL_PASSED + 1))
          runs="$(awk '/stat::number_of_executed_units/ {print $2}' "$log")"
          say "fuzz:$name: ${runs:-?} runs in ${FUZZ_SECONDS} s, no crash"
        else
          stage_fail "fuzz:$name" "$log" "build-fuzz/tests/fuzz/$name found a failure"
          record "fuzz:$name" FAILED $((SECONDS - t0))
          TOTAL_FAILED=$((TOTAL_FAILED + 1))
          shopt -s nullglob; crashes=("build-fuzz/artifacts/$name"/*); shopt -u nullglob
          if ((${#crashes[@]})); then
            printf '!!! fuzz:%s reproducer(s): %s\n!!! rerun: %s %s\n' \
              "$name" "${crashes[*]}" "build-fuzz/tests/fuzz/$name" "${crashes[0]}" >&2
          fi
        fi
      done
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
  # The side-by-side suite, each scenario once for 1 s against duplex and the TCP
  # ceiling (benchmarks/run.py --smoke fails on any zero or loadgen error).
  if [[ -x build/benchmarks/loadgen && -x build/benchmarks/duplex_server ]]; then
    if run_logged "bench:suite-smoke" "$LOG_DIR/bench-suite-smoke.log" \
        /usr/bin/python3 benchmarks/run.py --smoke --no-build --build-dir build; then
      TOTAL_PASSED=$((TOTAL_PASSED + 1))
    fi
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
