#!/usr/bin/env bash
# Compile time of one minimal echo server written with duplex, bare Asio, Boost.Beast
# and WebSocket++, plus duplex's user file in separate-compilation mode: g++ -c, C++17,
# at -O0 and -O2, RUNS rounds (default 5), the variants interleaved. Prints a Markdown table
# (median and min-max seconds, CPU = user+sys of the compiler, and wall time) and writes
# it to latest.md with the date, machine, load and commands.
#   bash benchmarks/compile_time/run.sh            # RUNS=3 CXX=clang++ ... also work
# Needs: g++, libasio-dev, libboost-dev (Beast), libwebsocketpp-dev.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
CXX="${CXX:-g++}"
RUNS="${RUNS:-5}"
out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT

# The flags the duplex::duplex CMake target gives a user (TLS and deflate found).
duplex_flags="-DASIO_STANDALONE -DDUPLEX_HAS_TLS=1 -DDUPLEX_HAS_DEFLATE=1 -I$root/include"
# name | file | flags
variants=(
  "duplex|duplex_echo.cpp|$duplex_flags"
  "duplex, separate compilation (user file)|duplex_echo_separate.cpp|$duplex_flags -DDUPLEX_SEPARATE_COMPILATION"
  "duplex, separate compilation + ASIO_SEPARATE_COMPILATION (user file)|duplex_echo_separate.cpp|$duplex_flags -DDUPLEX_SEPARATE_COMPILATION -DASIO_SEPARATE_COMPILATION"
  "bare Asio (TCP echo)|asio_echo.cpp|-DASIO_STANDALONE"
  "Boost.Beast|beast_echo.cpp|"
  "WebSocket++|websocketpp_echo.cpp|"
)

stats() { # reads numbers, prints "median min max"
  sort -n | awk '{a[NR]=$1} END {m = (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2; printf "%.2f %.2f %.2f\n", m, a[1], a[NR]}'
}

load_before="$(cat /proc/loadavg)"
echo "load before: $load_before" >&2
declare -A result cpu lines walls cpus
# Interleaved: each round compiles every variant once, so a drift in the machine's
# speed (it is shared) hits all variants alike instead of the ones measured last.
for ((i = 0; i < RUNS; i++)); do
  for opt in -O0 -O2; do
    for v in "${variants[@]}"; do
      IFS='|' read -r name file flags <<<"$v"
      # wall, user and system seconds of the compiler and its children (cc1plus, as)
      TIMEFORMAT='%R %U %S'
      # shellcheck disable=SC2086
      { time "$CXX" -std=c++17 $opt -c $flags "$here/$file" -o "$out/x.o" 2>"$out/err" ; } 2>"$out/time" ||
        { cat "$out/err" >&2; exit 1; }
      read -r wall user sys <"$out/time"
      walls["$name$opt"]+="$wall "
      cpus["$name$opt"]+="$(echo "$user + $sys" | bc) "
    done
  done
done
for opt in -O0 -O2; do
  for v in "${variants[@]}"; do
    IFS='|' read -r name file flags <<<"$v"
    result["$name$opt"]="$(printf '%s\n' ${walls["$name$opt"]} | stats)"
    cpu["$name$opt"]="$(printf '%s\n' ${cpus["$name$opt"]} | stats)"
    echo "$opt $name: wall ${result["$name$opt"]} (${walls["$name$opt"]}); cpu ${cpu["$name$opt"]} (${cpus["$name$opt"]})" >&2
  done
done
for v in "${variants[@]}"; do
  IFS='|' read -r name file flags <<<"$v"
  # shellcheck disable=SC2086
  lines["$name"]=$("$CXX" -std=c++17 -E $flags "$here/$file" | grep -vc '^#' || true)
done
load_after="$(cat /proc/loadavg)"
echo "load after: $load_after" >&2

fmt() { read -r med lo hi <<<"$1"; printf '%s (%s–%s)' "$med" "$lo" "$hi"; }
table() {
  echo "| echo server | -O0 CPU s | -O0 wall s | -O2 CPU s | -O2 wall s | preprocessed lines |"
  echo "|---|---|---|---|---|---|"
  for v in "${variants[@]}"; do
    IFS='|' read -r name file flags <<<"$v"
    echo "| $name | $(fmt "${cpu["$name-O0"]}") | $(fmt "${result["$name-O0"]}") | $(fmt "${cpu["$name-O2"]}") | $(fmt "${result["$name-O2"]}") | ${lines["$name"]} |"
  done
}

tbl="$(table)"
echo "$tbl"
{
  echo "# Compile time of a minimal echo server"
  echo
  echo "- date: $(date -u '+%Y-%m-%d %H:%M UTC')"
  echo "- machine: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//'), $(nproc) cores visible, $(awk '/MemTotal/ {printf "%.1f GiB", $2/1048576}' /proc/meminfo)"
  echo "- compiler: $("$CXX" --version | head -1)"
  echo "- command: \`RUNS=$RUNS CXX=$CXX bash benchmarks/compile_time/run.sh\` — each file: \`$CXX -std=c++17 -O0|-O2 -c <flags> <file>\`, $RUNS rounds, each compiling every variant once (interleaved)"
  echo "- figures: median (min–max) seconds; CPU = user + system time of the compiler (less sensitive to other load than wall time)"
  echo "- duplex flags: \`$duplex_flags\` (what the duplex::duplex CMake target passes)"
  echo "- load average before: \`$load_before\`; after: \`$load_after\` (the machine is shared: figures are upper bounds)"
  echo "- preprocessed lines: \`$CXX -std=c++17 -E <flags> <file> | grep -vc '^#'\`"
  echo
  echo "$tbl"
} >"$here/latest.md"
echo "wrote $here/latest.md" >&2
