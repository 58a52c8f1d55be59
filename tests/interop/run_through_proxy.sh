#!/usr/bin/env bash
# duplex::client through a real proxy, in front of a foreign echo server:
#   http    Debian's tinyproxy   (HTTP CONNECT, RFC 9110 §9.3.6, Basic authentication)
#   socks5  Debian's microsocks  (SOCKS5, RFC 1928, username/password of RFC 1929)
#
#   run_through_proxy.sh http|socks5 <client_driver> <server command...>
#
# Starts the proxy on 127.0.0.1 (a free port; tinyproxy with a config of its own in a
# temporary folder), wanting the credentials duplex/s3cret, then:
#   1. client_driver without credentials: the proxy must refuse it
#      (errc::proxy_auth_required, on_close 1006);
#   2. client_driver's whole script (run_client_driver.sh) with the credentials in the
#      proxy URL: every connection goes through a tunnel;
#   3. the proxy's log must show tunnels to the echo server's port, so the connections
#      did not go around the proxy.
# Always stops the proxy. Exits 0 only when all three hold.
set -uo pipefail
kind="${1:-}"; driver="${2:-}"; shift 2 || true
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
case "$kind" in
  http) program="${TINYPROXY:-$(command -v tinyproxy || true)}"; package=tinyproxy ;;
  socks5) program="${MICROSOCKS:-$(command -v microsocks || true)}"; package=microsocks ;;
  *) echo "usage: run_through_proxy.sh http|socks5 <client_driver> <server command...>"; exit 2 ;;
esac
if [[ -z "$program" ]]; then
  echo "FAIL: $package not found: apt-get install $package (or bash scripts/install-deps.sh)"
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
  echo "---- $package log (last 20 lines) ----"
  tail -n 20 "$dir/log" 2>/dev/null
  rm -rf "$dir"
}
trap cleanup EXIT
trap 'exit 1' INT TERM HUP

# A free port: bind to port 0, read it, release it (neither proxy reports its own).
port="$(/usr/bin/python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
if [[ "$kind" == http ]]; then
  printf '%s\n' "Port $port" "Listen 127.0.0.1" "Allow 127.0.0.1" "Timeout 60" "MaxClients 64" \
    "LogLevel Connect" "LogFile \"$dir/log\"" "PidFile \"$dir/pid\"" "BasicAuth duplex s3cret" \
    "DisableViaHeader Yes" >"$dir/tinyproxy.conf"
  "$program" -d -c "$dir/tinyproxy.conf" >"$dir/stdout" 2>&1 &
else
  "$program" -i 127.0.0.1 -p "$port" -u duplex -P s3cret >"$dir/log" 2>&1 &
fi
proxy_pid=$!
up=0
for _ in $(seq 100); do
  if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then up=1; break; fi
  kill -0 "$proxy_pid" 2>/dev/null || break
  sleep 0.1
done
if [[ $up -ne 1 ]]; then
  echo "FAIL: $package did not listen on 127.0.0.1:$port within 10 s"
  cat "$dir/stdout" "$dir/log" 2>/dev/null
  exit 1
fi
echo "$package on 127.0.0.1:$port"

status=0
echo "== 1. no credentials: the proxy must refuse"
DUPLEX_PROXY="$kind://127.0.0.1:$port" DUPLEX_EXPECT_PROXY_AUTH_REQUIRED=1 \
  bash "$here/run_client_driver.sh" "$driver" "$@" || status=1

echo "== 2. with credentials: client_driver's whole script through the tunnel"
DUPLEX_PROXY="$kind://duplex:s3cret@127.0.0.1:$port" \
  bash "$here/run_client_driver.sh" "$driver" "$@" | tee "$dir/driver.out"
[[ ${PIPESTATUS[0]} -eq 0 ]] || status=1

echo "== 3. the connections went through $package"
server_port="$(grep -o 'server: ws://127\.0\.0\.1:[0-9]*' "$dir/driver.out" | head -n 1 | grep -o '[0-9]*$')"
if [[ "$kind" == http ]]; then
  pattern="Request (file descriptor [0-9]*): CONNECT 127.0.0.1:${server_port:-none} "
else
  pattern="connected to 127.0.0.1:${server_port:-none}\$"
fi
tunnels=$(grep -c "$pattern" "$dir/log" 2>/dev/null || true)
echo "tunnels to 127.0.0.1:${server_port:-?} in $package's log: ${tunnels:-0}"
if [[ -z "$server_port" || "${tunnels:-0}" -lt 3 ]]; then
  echo "FAIL: expected at least 3 tunnels to the echo server's port (one per connection of the script)"
  status=1
fi
if [[ $status -eq 0 ]]; then echo "PASSED: duplex::client through $package"; else echo "FAILED"; fi
exit $status
