#!/usr/bin/env bash
# Installs everything duplex's build, tests, examples, fuzzers and benchmarks need on
# Debian 12, then the npm packages of the interop tests into tests/interop/node_modules.
# Idempotent: apt runs only when a package is missing, npm only when node_modules is
# missing or older than package-lock.json.
#
#   bash scripts/install-deps.sh [--apt-only] [EXTRA_DEB_PACKAGE...]
#
# Environment:
#   DRY_RUN=1          print what would be installed/run, change nothing
#   DUPLEX_LOG_DIR     where the log goes (default: <repo>/build-logs)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
LOG_DIR="${DUPLEX_LOG_DIR:-$ROOT/build-logs}"
LOG="$LOG_DIR/install-deps.log"
DRY_RUN="${DRY_RUN:-0}"

APT_ONLY=0
EXTRA=()
for arg in "$@"; do
  case "$arg" in
    --apt-only) APT_ONLY=1 ;;
    -h|--help) sed -n '2,13p' "$0"; exit 0 ;;
    -*) echo "install-deps: unknown option $arg" >&2; exit 2 ;;
    *) EXTRA+=("$arg") ;;
  esac
done

# clang + libclang-rt-14-dev: libFuzzer (libclang_rt.fuzzer-x86_64.a comes from the latter).
# python3-websockets: interop peer (Debian's /usr/bin/python3 only).
# chromium + nodejs/npm: browser and Node.js interop tests (npm packages below).
# libboost-dev + libwebsocketpp-dev: comparison peer for interop tests and benchmarks.
# tinyproxy, microsocks: real HTTP CONNECT and SOCKS5 proxies for the client's proxy tests.
# haproxy: a real load balancer sending the PROXY protocol, for the server behind one.
PACKAGES=(cmake g++ make clang libclang-rt-14-dev libasio-dev libssl-dev zlib1g-dev catch2
          libbenchmark-dev openssl python3 python3-websockets nodejs npm chromium libboost-dev
          libwebsocketpp-dev pkg-config ca-certificates tinyproxy microsocks haproxy)
PACKAGES+=("${EXTRA[@]+"${EXTRA[@]}"}")

mkdir -p "$LOG_DIR"
: >"$LOG"

fail() {
  echo "install-deps: FAILED: $1 (log: $LOG)" >&2
  echo "---- last 40 lines of $LOG ----" >&2
  tail -n 40 "$LOG" >&2 || true
  exit 1
}

# Packages that installed packages declare in Provides: (e.g. NodeSource's nodejs
# provides npm; installing Debian's npm next to it would remove that nodejs).
PROVIDED=" $(dpkg-query -W -f='${Status}|${Provides}\n' 2>/dev/null \
  | awk -F'|' '$1 ~ / installed$/ && $2 != "" { print $2 }' \
  | tr ',' '\n' | sed -E 's/^ *//; s/ *\(.*//' | tr '\n' ' ') "

is_installed() {
  local status
  status="$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null || true)"
  [[ "$status" == *" installed" ]] && return 0
  [[ "$PROVIDED" == *" $1 "* ]] && return 0
  return 1
}

missing=()
for p in "${PACKAGES[@]}"; do
  is_installed "$p" || missing+=("$p")
done

summary=""
if ((${#missing[@]})); then
  if [[ "$DRY_RUN" == 1 ]]; then
    echo "install-deps: DRY_RUN: would run apt-get update, then apt-get install -y --no-install-recommends ${missing[*]}"
  else
    SUDO=()
    if [[ "$(id -u)" != 0 ]]; then
      command -v sudo >/dev/null || fail "not root and no sudo: install ${missing[*]} by hand"
      SUDO=(sudo)
    fi
    echo "install-deps: installing ${missing[*]} (apt, log: $LOG)"
    export DEBIAN_FRONTEND=noninteractive
    APT_OPTS=(-o DPkg::Lock::Timeout=600 -q)
    "${SUDO[@]}" apt-get "${APT_OPTS[@]}" update </dev/null >>"$LOG" 2>&1 || fail "apt-get update"
    "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get "${APT_OPTS[@]}" install -y \
      --no-install-recommends "${missing[@]}" </dev/null >>"$LOG" 2>&1 \
      || fail "apt-get install ${missing[*]}"
    for p in "${missing[@]}"; do
      is_installed "$p" || fail "$p still not installed after apt-get install"
    done
    # tinyproxy's package may start a system-wide proxy (port 8888), haproxy's its
    # service: the tests run their own instances, so those are stopped and disabled again.
    for service in tinyproxy haproxy; do
      if [[ " ${missing[*]} " == *" $service "* ]]; then
        { "${SUDO[@]}" systemctl disable --now "$service" || "${SUDO[@]}" service "$service" stop; } \
          </dev/null >>"$LOG" 2>&1 || true
      fi
    done
  fi
  if [[ "$DRY_RUN" == 1 ]]; then summary="apt: would install ${missing[*]}"
  else summary="apt: installed ${#missing[@]} (${missing[*]})"; fi
else
  summary="apt: all ${#PACKAGES[@]} packages present"
fi

# npm packages for the interop tests, pinned by the committed package-lock.json.
INTEROP="$ROOT/tests/interop"
if [[ "$APT_ONLY" == 0 && -f "$INTEROP/package.json" ]]; then
  [[ -f "$INTEROP/package-lock.json" ]] || fail "tests/interop/package-lock.json is missing (npm ci needs it)"
  stamp="$INTEROP/node_modules/.duplex-lock.sha256"
  want="$(sha256sum "$INTEROP/package.json" "$INTEROP/package-lock.json" | sha256sum | cut -d' ' -f1)"
  have="$(cat "$stamp" 2>/dev/null || true)"
  if [[ "$want" != "$have" ]]; then
    if [[ "$DRY_RUN" == 1 ]]; then
      echo "install-deps: DRY_RUN: would run npm ci --prefix tests/interop --no-audit --no-fund"
    else
      command -v npm >/dev/null || fail "npm not found after the apt step"
      (cd "$ROOT" && npm ci --prefix tests/interop --no-audit --no-fund --loglevel=error \
        </dev/null >>"$LOG" 2>&1) || fail "npm ci --prefix tests/interop"
      echo "$want" >"$stamp"
    fi
    if [[ "$DRY_RUN" == 1 ]]; then summary+="; npm: would run npm ci in tests/interop"
    else summary+="; npm: ci in tests/interop"; fi
  else
    summary+="; npm: tests/interop up to date"
  fi
fi

echo "install-deps: ok ($summary)"
