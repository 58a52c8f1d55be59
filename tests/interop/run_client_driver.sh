#!/usr/bin/env bash
# Runs duplex's client_driver against a foreign echo server.
#
#   run_client_driver.sh <client_driver> <server command...>
#
# Starts the server command, reads "... ws://127.0.0.1:PORT" from its stdout (10 s at
# most), runs client_driver against that URL (90 s at most), and always stops the server.
# Exits with client_driver's status, or 1 if the server did not come up.
set -uo pipefail
driver="$1"; shift
out="$(mktemp -d)"
server_pid=""
cleanup() {
  if [[ -n "$server_pid" ]] && kill -0 "$server_pid" 2>/dev/null; then
    kill -TERM "$server_pid" 2>/dev/null
    for _ in $(seq 30); do kill -0 "$server_pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$server_pid" 2>/dev/null
    wait "$server_pid" 2>/dev/null
  fi
  echo "---- server output ----"
  cat "$out/server.log" 2>/dev/null
  rm -rf "$out"
}
trap cleanup EXIT
trap 'exit 1' INT TERM HUP

"$@" >"$out/server.log" 2>&1 &
server_pid=$!
url=""
for _ in $(seq 100); do
  url="$(grep -o 'ws://127\.0\.0\.1:[0-9]*' "$out/server.log" | head -n 1)"
  [[ -n "$url" ]] && break
  kill -0 "$server_pid" 2>/dev/null || break
  sleep 0.1
done
if [[ -z "$url" ]]; then
  if kill -0 "$server_pid" 2>/dev/null; then
    echo "FAIL: the server ($*) printed no ws://127.0.0.1:PORT line within 10 s"
  else
    wait "$server_pid"
    echo "FAIL: the server ($*) exited with status $? before printing its ws://127.0.0.1:PORT line" \
      "(a missing peer says what to install in its output, below)"
    server_pid=""
  fi
  exit 1
fi
echo "server: $url/ ($*)"
timeout -k 5 90 "$driver" "$url/"
status=$?
[[ $status -eq 124 ]] && echo "FAIL: client_driver did not finish within 90 s"
exit $status
