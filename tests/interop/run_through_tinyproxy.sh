#!/usr/bin/env bash
# duplex::client through a real HTTP proxy: Debian's tinyproxy (CONNECT tunnels, RFC 9110
# §9.3.6, with Basic authentication), in front of a foreign echo server.
#
#   run_through_tinyproxy.sh <client_driver> <server command...>
#
# Starts tinyproxy on 127.0.0.1 (a free port, a config of its own in a temporary folder,
# BasicAuth duplex/s3cret), then:
#   1. client_driver without credentials: the proxy must refuse it with 407
#      (errc::proxy_auth_required, on_close 1006);
#   2. client_driver's whole script (run_client_driver.sh) with the credentials in the
#      proxy URL: every connection goes through a tunnel;
#   3. tinyproxy's log must show CONNECT requests to the echo server's port, so the
#      connections did not go around the proxy.
# Always stops tinyproxy. Exits 0 only when all three hold.
set -uo pipefail
driver="$1"; shift
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
TINYPROXY="${TINYPROXY:-$(command -v tinyproxy || true)}"
if [[ -z "$TINYPROXY" ]]; then
  echo "FAIL: tinyproxy not found: apt-get install tinyproxy (or bash scripts/install-deps.sh)"
  exit 1
fi
dir="$(mktemp -d)"
proxy_pid=""
cleanup() {
  if [[ -n "$proxy_pid" ]]; then
    kill -TERM "$proxy_pid" 2>/dev/null
    for _ in $(seq 30); do kill -0 "$proxy_pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$proxy_pid" 2>/dev/null
    wait "$proxy_pid" 2>/dev/null
  fi
  echo "---- tinyproxy log (CONNECT lines) ----"
  grep -E "CONNECT|ERROR" "$dir/log" 2>/dev/null | tail -n 20
  rm -rf "$dir"
}
trap cleanup EXIT
trap 'exit 1' INT TERM HUP

# A free port: bind to port 0, read it, release it (tinyproxy cannot report its own).
port="$(/usr/bin/python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
cat >"$dir/tinyproxy.conf" <<EOF
Port $port
Listen 127.0.0.1
Allow 127.0.0.1
Timeout 60
MaxClients 64
LogLevel Connect
LogFile "$dir/log"
PidFile "$dir/pid"
BasicAuth duplex s3cret
DisableViaHeader Yes
EOF
"$TINYPROXY" -d -c "$dir/tinyproxy.conf" >"$dir/stdout" 2>&1 &
proxy_pid=$!
up=0
for _ in $(seq 100); do
  if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then up=1; break; fi
  kill -0 "$proxy_pid" 2>/dev/null || break
  sleep 0.1
done
if [[ $up -ne 1 ]]; then
  echo "FAIL: tinyproxy did not listen on 127.0.0.1:$port within 10 s"
  cat "$dir/stdout"
  exit 1
fi
echo "tinyproxy $("$TINYPROXY" -v 2>&1 | head -n 1) on 127.0.0.1:$port"

status=0
echo "== 1. no credentials: the proxy must answer 407"
DUPLEX_PROXY="http://127.0.0.1:$port" DUPLEX_EXPECT_PROXY_AUTH_REQUIRED=1 \
  bash "$here/run_client_driver.sh" "$driver" "$@" || status=1

echo "== 2. with credentials: client_driver's whole script through the tunnel"
DUPLEX_PROXY="http://duplex:s3cret@127.0.0.1:$port" \
  bash "$here/run_client_driver.sh" "$driver" "$@" | tee "$dir/driver.out"
[[ ${PIPESTATUS[0]} -eq 0 ]] || status=1

echo "== 3. the connections went through tinyproxy"
server_port="$(grep -o 'server: ws://127\.0\.0\.1:[0-9]*' "$dir/driver.out" | head -n 1 | grep -o '[0-9]*$')"
tunnels=$(grep -c "Request (file descriptor [0-9]*): CONNECT 127.0.0.1:${server_port:-none} " "$dir/log" 2>/dev/null || true)
echo "CONNECT requests to 127.0.0.1:${server_port:-?} in tinyproxy's log: ${tunnels:-0}"
if [[ -z "$server_port" || "${tunnels:-0}" -lt 3 ]]; then
  echo "FAIL: expected at least 3 CONNECT requests to the echo server's port (one per connection of the script)"
  status=1
fi
[[ $status -eq 0 ]] && echo "PASSED: duplex::client through tinyproxy" || echo "FAILED"
exit $status
