#!/usr/bin/env bash
# duplex behind a real load balancer speaking the PROXY protocol: Debian's HAProxy.
#
#   run_behind_haproxy.sh <proxied_server> <unix_echo_server>
#
# Starts proxied_server (tests/interop/proxied_server.cpp: server_options::proxy_protocol)
# twice, ws:// and wss:// (a certificate for IP 127.0.0.1 made here with openssl),
# unix_echo_server --proxy-protocol on a Unix domain socket (unix_server.hpp), and one
# HAProxy (mode tcp) on four free ports of 127.0.0.1 in front of them:
#   v1   server ... send-proxy                    -> ws://
#   v2   server ... send-proxy-v2 check inter 100 -> ws://  (health checks send PROXY v2 LOCAL)
#   tls  server ... send-proxy-v2                 -> wss:// (the header comes before TLS)
#   unix server ... unix@PATH send-proxy-v2       -> ws:// on the Unix socket
# Then python_proxied_client.py (Python websockets) checks each path and the refusal of a
# connection that bypasses HAProxy. Always stops everything it started.
set -uo pipefail
server="${1:-}"
unix_server="${2:-}"
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
haproxy="${HAPROXY:-$(command -v haproxy || echo /usr/sbin/haproxy)}"
if [[ ! -x "$haproxy" ]]; then
  echo "FAIL: haproxy not found: apt-get install haproxy (or bash scripts/install-deps.sh)"
  exit 1
fi
if [[ ! -x "$server" || ! -x "$unix_server" ]]; then
  echo "usage: run_behind_haproxy.sh <proxied_server> <unix_echo_server>"
  exit 2
fi
dir="$(mktemp -d)"
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null; done
  for p in "${pids[@]}"; do
    for _ in $(seq 30); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$p" 2>/dev/null
    wait "$p" 2>/dev/null
  done
  echo "---- haproxy output (last 20 lines) ----"
  tail -n 20 "$dir/haproxy.out" 2>/dev/null
  rm -rf "$dir"
}
trap cleanup EXIT
trap 'exit 1' INT TERM HUP

# Starts proxied_server with "$@", waits for its port (in the file named by $1).
start_server() {
  local out="$1"; shift
  "$server" "$@" >"$out" 2>&1 &
  pids+=($!)
  for _ in $(seq 100); do
    grep -q 'listening on' "$out" 2>/dev/null && break
    sleep 0.1
  done
  grep -o 'listening on [0-9]*' "$out" | grep -o '[0-9]*$'
}

openssl req -x509 -newkey rsa:2048 -nodes -keyout "$dir/key.pem" -out "$dir/cert.pem" -days 2 \
  -subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1 >"$dir/openssl.out" 2>&1 \
  || { echo "FAIL: openssl could not make a certificate"; cat "$dir/openssl.out"; exit 1; }
ws_port="$(start_server "$dir/ws.out")"
wss_port="$(start_server "$dir/wss.out" "$dir/cert.pem" "$dir/key.pem")"
if [[ -z "$ws_port" || -z "$wss_port" ]]; then
  echo "FAIL: proxied_server did not start"; cat "$dir/ws.out" "$dir/wss.out"; exit 1
fi
"$unix_server" "$dir/ws.sock" --proxy-protocol >"$dir/unix.out" 2>&1 &
pids+=($!)
for _ in $(seq 100); do grep -q 'listening on' "$dir/unix.out" 2>/dev/null && break; sleep 0.1; done
if [[ ! -S "$dir/ws.sock" ]]; then echo "FAIL: unix_echo_server did not start"; cat "$dir/unix.out"; exit 1; fi

read -r p1 p2 p3 p4 < <(/usr/bin/python3 -c '
import socket
socks = [socket.socket() for _ in range(4)]
for s in socks: s.bind(("127.0.0.1", 0))
print(*[s.getsockname()[1] for s in socks])')
cat >"$dir/haproxy.cfg" <<CFG
global
  maxconn 256
defaults
  mode tcp
  timeout connect 5s
  timeout client 60s
  timeout server 60s
frontend v1
  bind 127.0.0.1:$p1
  default_backend to_ws_v1
frontend v2
  bind 127.0.0.1:$p2
  default_backend to_ws_v2
frontend tls
  bind 127.0.0.1:$p3
  default_backend to_wss
frontend unix
  bind 127.0.0.1:$p4
  default_backend to_unix
backend to_ws_v1
  server duplex 127.0.0.1:$ws_port send-proxy
backend to_ws_v2
  server duplex 127.0.0.1:$ws_port send-proxy-v2 check inter 100
backend to_wss
  server duplex 127.0.0.1:$wss_port send-proxy-v2
backend to_unix
  server duplex unix@$dir/ws.sock send-proxy-v2
CFG
"$haproxy" -db -f "$dir/haproxy.cfg" >"$dir/haproxy.out" 2>&1 &
pids+=($!)
for port in "$p1" "$p2" "$p3" "$p4"; do
  up=0
  for _ in $(seq 100); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then up=1; break; fi
    sleep 0.1
  done
  if [[ $up -ne 1 ]]; then echo "FAIL: haproxy did not listen on 127.0.0.1:$port within 10 s"; exit 1; fi
done
echo "$("$haproxy" -v | head -n 1); ws:// on $ws_port, wss:// on $wss_port, ws:// on $dir/ws.sock; haproxy on $p1 (v1), $p2 (v2), $p3 (v2, TLS), $p4 (v2, Unix socket)"

timeout 120 /usr/bin/python3 "$here/python_proxied_client.py" "ws://127.0.0.1:$p1/" "ws://127.0.0.1:$p2/" \
  "wss://127.0.0.1:$p3/" "ws://127.0.0.1:$ws_port/" "ws://127.0.0.1:$p2/" "$dir/cert.pem" "ws://127.0.0.1:$p4/"
