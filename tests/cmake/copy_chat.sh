#!/usr/bin/env bash
# The README's promise: copy examples/chat_server.cpp into an empty folder next to
# the 5-line CMakeLists.txt (tests/cmake/copy_chat/), build it against an installed
# duplex, run it on a free port, fetch its page, then chat over WebSocket: two clients
# offer the subprotocol "chat", one sends a text message, and both must get it back
# (the server broadcasts to every client, sender included) with "chat" negotiated.
# Last, SIGTERM must stop the server (exit 0) within 5 s; it is killed whatever happens.
# usage: copy_chat.sh <duplex source> <install prefix> <scratch dir>
# The WebSocket client is Python's websockets (Debian's python3-websockets, under
# /usr/bin/python3) or, without it, Node's ws from tests/interop/node_modules;
# COPY_CHAT_WS_CLIENT=python|node picks one.
set -euo pipefail
src=$1 prefix=$2 work=$3
# The WebSocket client, chosen first so that a missing one fails at once.
ws_module=$src/tests/interop/node_modules/ws
client=${COPY_CHAT_WS_CLIENT:-}
if [ -z "$client" ]; then
  if /usr/bin/python3 -c 'import websockets' 2>/dev/null; then client=python
  elif command -v node >/dev/null && [ -f "$ws_module/package.json" ]; then client=node
  else
    echo "copy_chat.sh: no WebSocket client for the chat round trip. Install one of:" >&2
    echo "  apt-get install python3-websockets        (used with /usr/bin/python3)" >&2
    echo "  npm ci --prefix tests/interop             (Node's ws; or: bash scripts/install-deps.sh)" >&2
    exit 1
  fi
fi
case $client in python|node) ;; *) echo "COPY_CHAT_WS_CLIENT must be python or node, not '$client'" >&2; exit 1;; esac

rm -rf "$work" && mkdir -p "$work/app"
cp "$src/examples/chat_server.cpp" "$src/tests/cmake/copy_chat/CMakeLists.txt" "$work/app/"
cmake -S "$work/app" -B "$work/build" -DCMAKE_PREFIX_PATH="$prefix" -DCMAKE_BUILD_TYPE=Release > "$work/configure.log" 2>&1 \
  || { cat "$work/configure.log"; exit 1; }
cmake --build "$work/build" > "$work/build.log" 2>&1 || { cat "$work/build.log"; exit 1; }

# Under `timeout` too, so that it cannot outlive this script even if the script is
# killed with SIGKILL (a ctest timeout); timeout passes our SIGTERM on and exits as it did.
timeout -k 5 120 "$work/build/chat_server" 0 > "$work/server.out" 2>&1 &
pid=$!
stop_server() {
  kill -TERM "$pid" 2>/dev/null || return 0
  for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.1; done
  kill -KILL "$pid" 2>/dev/null || true
}
trap stop_server EXIT
trap 'exit 1' INT TERM HUP   # so that the EXIT trap runs on these too
for _ in $(seq 100); do grep -q 'localhost:' "$work/server.out" && break; sleep 0.1; done
port=$(grep -o 'localhost:[0-9]*' "$work/server.out" | cut -d: -f2)
[ -n "$port" ] || { echo "chat_server did not start:"; cat "$work/server.out"; exit 1; }
timeout 20 /usr/bin/python3 - "$port" <<'PY'
import sys, urllib.request
body = urllib.request.urlopen(f"http://127.0.0.1:{sys.argv[1]}/", timeout=10).read().decode()
assert "duplex chat" in body and "new WebSocket" in body, body[:200]
print("copied chat_server serves its page on port", sys.argv[1])
PY

# Every step of the clients has its own timeout, and `timeout` bounds the whole.
if [ "$client" = python ]; then
  timeout 30 /usr/bin/python3 - "$port" <<'PY'
import asyncio, sys
import websockets

URL = f"ws://127.0.0.1:{sys.argv[1]}/"
TEXT = "hello from copy_chat.sh"

async def main():
    def connect():
        return websockets.connect(URL, subprotocols=["chat"], open_timeout=10, close_timeout=5)
    async with connect() as a, connect() as b:
        for name, ws in (("sender", a), ("other", b)):
            assert ws.subprotocol == "chat", f"{name}: subprotocol {ws.subprotocol!r}, expected 'chat'"
        await a.send(TEXT)
        for name, ws in (("sender", a), ("other", b)):
            try:
                got = await asyncio.wait_for(ws.recv(), 10)
            except asyncio.TimeoutError:
                raise AssertionError(f"{name} got no message within 10 s") from None
            assert got == TEXT, f"{name} got {got!r}, expected the text message {TEXT!r}"
        ext = ", ".join(type(e).__name__ for e in a.extensions) or "none"
    print(f"python websockets {websockets.__version__}: subprotocol chat, extensions {ext};"
          " the message came back to the sender and the other client")

try:
    asyncio.run(main())
except Exception as e:
    sys.exit(f"FAIL: chat round trip over WebSocket: {type(e).__name__}: {e}")
PY
else
  timeout 30 node - "$ws_module" "$port" <<'JS'
const [wsModule, port] = process.argv.slice(2);
const WebSocket = require(wsModule);
const url = `ws://127.0.0.1:${port}/`;
const text = "hello from copy_chat.sh";
const fail = (why) => { console.error(`FAIL: chat round trip over WebSocket: ${why}`); process.exit(1); };
setTimeout(() => fail("no answer within 20 s"), 20000).unref();
const opened = (ws) => new Promise((resolve, reject) => {
  ws.once("open", resolve);
  ws.once("error", reject);
});
const nextMessage = (ws, name) => new Promise((resolve, reject) => {
  ws.once("message", (data, isBinary) =>
    isBinary ? reject(new Error(`${name} got a binary message`)) : resolve(data.toString()));
  ws.once("close", (code) => reject(new Error(`${name} closed (${code}) before the message came`)));
});
(async () => {
  const a = new WebSocket(url, "chat"), b = new WebSocket(url, "chat");
  await Promise.all([opened(a), opened(b)]);
  for (const [name, ws] of [["sender", a], ["other", b]])
    if (ws.protocol !== "chat") throw new Error(`${name}: subprotocol '${ws.protocol}', expected 'chat'`);
  const got = Promise.all([nextMessage(a, "sender"), nextMessage(b, "other")]);
  a.send(text);
  const [toSender, toOther] = await got;
  if (toSender !== text) throw new Error(`sender got '${toSender}', expected '${text}'`);
  if (toOther !== text) throw new Error(`other got '${toOther}', expected '${text}'`);
  const ext = a.extensions || "none";
  a.close(1000); b.close(1000);
  console.log(`node ws: subprotocol chat, extensions ${ext}; the message came back to the sender and the other client`);
})().catch((e) => fail(e.message));
JS
fi

# Ctrl-C/SIGTERM: the server closes its connections and returns from io.run().
kill -TERM "$pid"
for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
kill -0 "$pid" 2>/dev/null && { echo "chat_server still running 5 s after SIGTERM"; exit 1; }
rc=0; wait "$pid" || rc=$?
[ "$rc" -eq 0 ] || { echo "chat_server exited $rc after SIGTERM:"; cat "$work/server.out"; exit 1; }
echo "chat_server stopped on SIGTERM"
