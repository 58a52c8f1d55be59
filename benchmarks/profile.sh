#!/bin/bash
# Profiles duplex_server (echo) under the loadgen: callgrind (instruction counts,
# repeatable on a busy machine), strace -c (syscalls per message) and a counting
# operator new (allocations per message). Results in build-bench/profile/.
#   benchmarks/profile.sh [scenario...]   scenarios: p16 (100 x 32 B x P16), big (10 x 64 KiB x P4)
# Env: READ_BUFFER=65536 to try another duplex read buffer size; NICE=19 (default) so it
# stays out of the way of a benchmark running at the same time.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
OUT=$ROOT/build-bench/profile
mkdir -p "$OUT"
LG=$ROOT/build-bench/benchmarks/loadgen
[ -x "$LG" ] || { cmake -S "$ROOT" -B "$ROOT/build-bench" -DCMAKE_BUILD_TYPE=Release -DDUPLEX_BUILD_TESTS=OFF -DDUPLEX_BUILD_EXAMPLES=OFF -DDUPLEX_INSTALL=OFF >/dev/null && cmake --build "$ROOT/build-bench" -j2 --target loadgen; }
N="nice -n ${NICE:-19}"
EXTRA=()
[ -n "${READ_BUFFER:-}" ] && EXTRA=(--read-buffer "$READ_BUFFER")
TAG=${READ_BUFFER:-default}
# -O2 -g builds of the same server: plain, and with a counting operator new.
cat > "$OUT/count_new.cpp" <<'CPP'
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <new>
static std::atomic<unsigned long long> g_news{0}, g_bytes{0};
void* operator new(std::size_t n) { g_news.fetch_add(1, std::memory_order_relaxed); g_bytes.fetch_add(n, std::memory_order_relaxed); if (void* p = std::malloc(n ? n : 1)) return p; throw std::bad_alloc(); }
void* operator new[](std::size_t n) { return operator new(n); }
void operator delete(void* p) noexcept { std::free(p); }
void operator delete[](void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }
void operator delete[](void* p, std::size_t) noexcept { std::free(p); }
struct reporter { ~reporter() { std::fprintf(stderr, "ALLOCS %llu BYTES %llu\n", g_news.load(), g_bytes.load()); } } g_reporter;
CPP
SRC=$ROOT/benchmarks/servers/duplex_server.cpp
[ "$OUT/duplex_server_g" -nt "$SRC" ] || $N g++ -std=c++17 -O2 -g -DNDEBUG -I"$ROOT/include" "$SRC" -o "$OUT/duplex_server_g" -pthread
[ "$OUT/duplex_server_count" -nt "$SRC" ] || $N g++ -std=c++17 -O2 -g -DNDEBUG -I"$ROOT/include" "$SRC" "$OUT/count_new.cpp" -o "$OUT/duplex_server_count" -pthread

PIDS=()
trap 'for p in "${PIDS[@]:-}"; do [ -n "$p" ] && kill "$p" 2>/dev/null || true; done' EXIT
PORT=18500
wait_port() { for _ in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/$1) 2>/dev/null && return 0; sleep 0.1; done; return 1; }
# start_server LOG CMD... : runs CMD in the background, waits for its port
start_server() { local log=$1; shift; "$@" >"$log" 2>&1 & PIDS+=($!); SPID=$!; sleep 0.5; }
# SIGINT to the server itself (the deepest descendant: under timeout/strace/valgrind)
stop_server() { local leaf=$SPID c; while c=$(pgrep -P "$leaf" | head -1) && [ -n "$c" ]; do leaf=$c; done
  kill -INT "$leaf" 2>/dev/null || true; for _ in $(seq 100); do kill -0 "$SPID" 2>/dev/null || return 0; sleep 0.1; done; kill -9 "$SPID" 2>/dev/null || true; }

for sc in "${@:-p16 big}"; do
  for s in $sc; do
    case $s in
      p16) ARGS=(--conns 100 --size 32 --pipeline 16) ;;
      big) ARGS=(--conns 10 --size 65536 --pipeline 4) ;;
      *) echo "unknown scenario $s"; exit 2 ;;
    esac
    P=$OUT/$s.$TAG
    # 1. callgrind
    PORT=$((PORT+1))
    start_server "$P.callgrind.log" $N timeout 120 valgrind --tool=callgrind --callgrind-out-file="$P.callgrind.out" "$OUT/duplex_server_g" $PORT echo "${EXTRA[@]}"
    sleep 2
    $N timeout 60 "$LG" --port $PORT "${ARGS[@]}" --duration 3 --warmup 0 > "$P.callgrind.loadgen.json" || true
    stop_server; wait "$SPID" 2>/dev/null || true
    callgrind_annotate --inclusive=no "$P.callgrind.out" 2>/dev/null | head -45 > "$P.callgrind.self.txt" || true
    callgrind_annotate --inclusive=yes "$P.callgrind.out" 2>/dev/null | head -60 > "$P.callgrind.incl.txt" || true
    # 2. strace -c
    PORT=$((PORT+1))
    start_server "$P.strace.log" $N timeout 60 strace -c -f -o "$P.strace.txt" "$OUT/duplex_server_g" $PORT echo "${EXTRA[@]}"
    $N timeout 60 "$LG" --port $PORT "${ARGS[@]}" --duration 2 --warmup 0 > "$P.strace.loadgen.json" || true
    stop_server; wait "$SPID" 2>/dev/null || true
    # 3. allocations: two run lengths, the difference removes the handshakes
    for d in 1 3; do
      PORT=$((PORT+1))
      start_server "$P.allocs.$d.log" $N timeout 60 "$OUT/duplex_server_count" $PORT echo "${EXTRA[@]}"
      $N timeout 60 "$LG" --port $PORT "${ARGS[@]}" --duration $d --warmup 0 > "$P.allocs.$d.json" || true
      stop_server; wait "$SPID" 2>/dev/null || true
    done
    echo "== $s ($TAG): files $P.*"
  done
done
