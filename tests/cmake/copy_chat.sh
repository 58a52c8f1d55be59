#!/usr/bin/env bash
# The README's promise: copy examples/chat_server.cpp into an empty folder next to
# the 5-line CMakeLists.txt (tests/cmake/copy_chat/), build it against an installed
# duplex, run it on a free port, and fetch its page.
# usage: copy_chat.sh <duplex source> <install prefix> <scratch dir>
set -euo pipefail
src=$1 prefix=$2 work=$3
rm -rf "$work" && mkdir -p "$work/app"
cp "$src/examples/chat_server.cpp" "$src/tests/cmake/copy_chat/CMakeLists.txt" "$work/app/"
cmake -S "$work/app" -B "$work/build" -DCMAKE_PREFIX_PATH="$prefix" -DCMAKE_BUILD_TYPE=Release > "$work/configure.log" 2>&1 \
  || { cat "$work/configure.log"; exit 1; }
cmake --build "$work/build" > "$work/build.log" 2>&1 || { cat "$work/build.log"; exit 1; }

"$work/build/chat_server" 0 > "$work/server.out" 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null || true' EXIT
for _ in $(seq 100); do grep -q 'localhost:' "$work/server.out" && break; sleep 0.1; done
port=$(grep -o 'localhost:[0-9]*' "$work/server.out" | cut -d: -f2)
[ -n "$port" ] || { echo "chat_server did not start:"; cat "$work/server.out"; exit 1; }
/usr/bin/python3 - "$port" <<'PY'
import sys, urllib.request
body = urllib.request.urlopen(f"http://127.0.0.1:{sys.argv[1]}/", timeout=10).read().decode()
assert "duplex chat" in body and "new WebSocket" in body, body[:200]
print("copied chat_server serves its page on port", sys.argv[1])
PY
