#!/usr/bin/env bash
# examples/echo_client against examples/echo_server: the two example programs, used the
# way their usage lines say.
#
#   echo_client_vs_echo_server.sh <echo_client> <echo_server>
#
# Starts echo_server on port 0 (reading "... ws://127.0.0.1:PORT" from its stdout), then:
#   1. all of stdin at once (EOF before the connection has even opened): every line comes
#      back on stdout, in order and unchanged (empty, long, UTF-8 lines, 300 lines in all);
#      exit 0, "connected to ...", "closed: 1000" (the client closes at end of input)
#   2. stdin kept open, one line at a time, each sent only after the previous echo came back
#   3. the server stops (SIGTERM) while echo_client waits on an open stdin: echo_client
#      sees 1001 and exits 1 by itself; echo_server exits 0
#   4. nothing listening on the port any more: echo_client fails (exit 1) saying so
# Every echo_client run has a timeout; the server is always stopped. Exits 1 if any check
# failed.
set -uo pipefail
if [[ $# -ne 2 ]]; then
  echo "usage: echo_client_vs_echo_server.sh <echo_client> <echo_server>" >&2
  exit 2
fi
client="$1"
server="$2"
work="$(mktemp -d)"
server_pid=""
bg_pid=""
passed=0
failed=()

stop_server() {
  [[ -n "$server_pid" ]] || return 0
  kill -TERM "$server_pid" 2>/dev/null
  for _ in $(seq 30); do kill -0 "$server_pid" 2>/dev/null || break; sleep 0.1; done
  kill -KILL "$server_pid" 2>/dev/null
  wait "$server_pid" 2>/dev/null
  server_status=$?
  server_pid=""
}
cleanup() {
  [[ -n "$bg_pid" ]] && kill -KILL "$bg_pid" 2>/dev/null
  exec 3>&- 2>/dev/null
  stop_server
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 1' INT TERM HUP

ok() { echo "ok   $1"; passed=$((passed + 1)); }
bad() { echo "FAIL $1"; failed+=("$1"); }
show() { echo "  ---- $1 ----"; sed -n '1,20p' "$2" | cut -c1-200 | sed 's/^/  /'; }

# Runs a check: check NAME COMMAND...; the command prints its own details on failure.
check() {
  local name="$1"; shift
  local t0; t0=$(date +%s%N)
  if "$@"; then ok "$name ($(( ($(date +%s%N) - t0) / 1000000 )) ms)"; else bad "$name"; fi
}

"$server" 0 >"$work/server.log" 2>&1 &
server_pid=$!
url=""
for _ in $(seq 100); do
  url="$(grep -o 'ws://127\.0\.0\.1:[0-9]*' "$work/server.log" | head -n 1)"
  [[ -n "$url" ]] && break
  kill -0 "$server_pid" 2>/dev/null || break
  sleep 0.1
done
if [[ -z "$url" ]]; then
  echo "FAIL: echo_server printed no ws://127.0.0.1:PORT line within 10 s; its output:"
  cat "$work/server.log"
  exit 1
fi
url="$url/"
echo "echo_server on $url"

# The lines of check 1: edge cases first, then many short ones.
{
  echo "hello"
  echo ""                                         # an empty text message (§5.6)
  echo "  spaces  around  "
  printf 'tab\there\n'
  echo "UTF-8: héllo → ✓ 𝄞 日本語 🎉"
  printf '%*s\n' 70000 '' | tr ' ' 'x'            # 64-bit payload length (§5.2)
  printf '%*s\n' 200 '' | tr ' ' 'y'              # 16-bit payload length
  for i in $(seq 1 293); do echo "line $i of many"; done
} >"$work/in1"

exit_status_is() { # exit_status_is WANT GOT LABEL
  [[ "$2" == "$1" ]] && return 0
  echo "  $3: exit status $2, expected $1$([[ $2 == 124 || $2 == 137 ]] && echo ' (timed out)')"
  return 1
}
stderr_has() { # stderr_has FILE PATTERN
  grep -q -- "$2" "$1" && return 0
  echo "  echo_client's stderr has no '$2'"
  show "echo_client stderr" "$1"
  return 1
}
same_lines() { # same_lines EXPECTED GOT
  cmp -s "$1" "$2" && return 0
  echo "  stdout differs from the lines sent ($(wc -l <"$1") lines sent, $(wc -l <"$2") printed); first difference:"
  diff "$1" "$2" | head -n 6 | cut -c1-200 | sed 's/^/  /'
  return 1
}

all_at_once() {
  timeout -k 5 30 "$client" "$url" <"$work/in1" >"$work/out1" 2>"$work/err1"
  local st=$?
  local r=0
  exit_status_is 0 "$st" "echo_client" || r=1
  same_lines "$work/in1" "$work/out1" || r=1
  stderr_has "$work/err1" "^connected to $url" || r=1
  stderr_has "$work/err1" "^closed: 1000" || r=1
  return $r
}
check "all of stdin at once: $(wc -l <"$work/in1") lines echoed in order, unchanged; exit 0 after close 1000" all_at_once

interactive() {
  local lines=("first, alone" "second — after the first came back" "" "fourth ✓")
  rm -f "$work/in2"
  mkfifo "$work/in2"
  : >"$work/out2"  # exists before the client opens the FIFO (which blocks)
  timeout -k 5 30 "$client" "$url" >"$work/out2" 2>"$work/err2" <"$work/in2" &
  bg_pid=$!
  exec 3>"$work/in2"
  local i n r=0
  for i in "${!lines[@]}"; do
    printf '%s\n' "${lines[$i]}" >&3
    for _ in $(seq 100); do # 10 s for each echo
      n=$(wc -l <"$work/out2")
      (( n > i )) && break
      sleep 0.1
    done
    if (( n <= i )); then echo "  no echo of line $((i + 1)) within 10 s"; r=1; break; fi
  done
  exec 3>&- # end of input: echo_client closes with 1000
  wait "$bg_pid"
  local st=$?
  bg_pid=""
  exit_status_is 0 "$st" "echo_client" || r=1
  printf '%s\n' "${lines[@]}" >"$work/want2"
  same_lines "$work/want2" "$work/out2" || r=1
  stderr_has "$work/err2" "^closed: 1000" || r=1
  return $r
}
check "stdin kept open: each line sent after the previous echo came back, all echoed; exit 0" interactive

server_goes_away() {
  rm -f "$work/in3"
  mkfifo "$work/in3"
  : >"$work/out3"  # exists before the client opens the FIFO (which blocks)
  timeout -k 5 30 "$client" "$url" >"$work/out3" 2>"$work/err3" <"$work/in3" &
  bg_pid=$!
  exec 3>"$work/in3"
  printf 'before the server stops\n' >&3
  local n r=0
  for _ in $(seq 100); do n=$(wc -l <"$work/out3"); (( n > 0 )) && break; sleep 0.1; done
  (( n > 0 )) || { echo "  no echo within 10 s"; r=1; }
  if ! kill -0 "$server_pid" 2>/dev/null; then echo "  echo_server is gone already"; return 1; fi
  stop_server # SIGTERM: server.stop() closes every connection with 1001 (§7.4.1)
  exit_status_is 0 "$server_status" "echo_server after SIGTERM" || { r=1; show "echo_server output" "$work/server.log"; }
  # stdin (fd 3) is still open: echo_client must not wait for it.
  wait "$bg_pid"
  local st=$?
  bg_pid=""
  exec 3>&-
  exit_status_is 1 "$st" "echo_client after the server went away (close 1001 is not 1000)" || r=1
  stderr_has "$work/err3" "^closed: 1001" || r=1
  return $r
}
check "SIGTERM to echo_server: it exits 0, echo_client sees 1001 and exits 1 with stdin still open" server_goes_away

nobody_listening() {
  timeout -k 5 30 "$client" "$url" </dev/null >"$work/out4" 2>"$work/err4"
  local st=$? r=0
  exit_status_is 1 "$st" "echo_client with nothing listening" || r=1
  stderr_has "$work/err4" "^echo_client: " || r=1
  return $r
}
check "nothing listening on the port: echo_client exits 1 and says why" nobody_listening

echo
echo "$passed passed, ${#failed[@]} failed"
for f in "${failed[@]+"${failed[@]}"}"; do echo "  failed: $f"; done
[[ ${#failed[@]} -eq 0 ]]
