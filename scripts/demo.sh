#!/usr/bin/env bash
# duplex demo: builds and runs the chat server (examples/chat_server.cpp), which serves
# its own page; open it in two browser tabs and chat.
#
#   bash scripts/demo.sh [port]      (default port 3000)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
PORT="${1:-3000}"
JOBS="${DUPLEX_JOBS:-2}"
LOG_DIR="$ROOT/build-logs"
export DUPLEX_LOG_DIR="$LOG_DIR"
mkdir -p "$LOG_DIR"

if ! [[ "$PORT" =~ ^[0-9]+$ ]] || ((PORT < 1 || PORT > 65535)); then
  echo "usage: bash scripts/demo.sh [port]   (port: 1-65535, default 3000)" >&2
  exit 2
fi
if [[ ! -f examples/chat_server.cpp ]]; then
  echo "demo: examples/chat_server.cpp does not exist yet" >&2
  exit 1
fi

bash scripts/install-deps.sh --apt-only </dev/null

build() {  # build LOGNAME CMD...: quiet unless it fails
  local log="$LOG_DIR/$1"; shift
  if ! "$@" </dev/null >"$log" 2>&1; then
    echo "demo: FAILED: $* (last 60 lines of build-logs/${log##*/}):" >&2
    tail -n 60 "$log" >&2
    exit 1
  fi
}
echo "demo: building chat_server (build/, log: build-logs/demo-build.log)"
# The same configuration as scripts/test.sh, so the test command reuses this build.
build demo-configure.log cmake -S . -B build -DCMAKE_BUILD_TYPE=Release "-DCMAKE_CXX_FLAGS_RELEASE=-O2 -DNDEBUG" \
  -DDUPLEX_BUILD_FUZZERS=OFF
build demo-build.log cmake --build build --target chat_server -j"$JOBS"

BIN="$(find build/examples -maxdepth 1 -type f -name chat_server -perm -u+x | head -n 1)"
if [[ -z "$BIN" ]]; then
  echo "demo: build/examples/chat_server was not produced" >&2
  exit 1
fi

echo
echo "Open http://localhost:$PORT in a browser"
echo "(Ctrl-C stops the server)"
echo
exec "$BIN" "$PORT"
