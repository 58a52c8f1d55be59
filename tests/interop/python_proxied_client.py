#!/usr/bin/python3
"""Python `websockets` (Debian's python3-websockets) through HAProxy to duplex's
proxied_server (tests/interop/proxied_server.cpp), for run_behind_haproxy.sh.

    /usr/bin/python3 python_proxied_client.py V1_URL V2_URL TLS_URL DIRECT_URL STATS_URL CERT UNIX_URL

V1_URL, V2_URL and TLS_URL go through HAProxy (send-proxy, send-proxy-v2, and
send-proxy-v2 in front of a wss:// server: the header comes before TLS). On each, the
server must name this client's own address and port as remote_address() ("whoami"): it
sees HAProxy's socket, so only the PROXY header can tell it ours. A 1 MiB binary message
and a text one must come back whole (the stream starts right after the header).
DIRECT_URL is the ws:// server itself, without HAProxy: no header, so the connection must
fail. STATS_URL (through HAProxy) then reports how many connections were refused for want
of a valid header: exactly that one (HAProxy's own health checks, which send a PROXY v2
LOCAL header, must not count). UNIX_URL goes through HAProxy (send-proxy-v2) to
unix_echo_server on a Unix domain socket (`server ... unix@PATH`): the same checks.
Exits 0 when every check holds; each has a timeout.
"""
import asyncio
import os
import ssl
import sys

try:
    import websockets
except ImportError as e:
    print(f"FAIL: cannot import 'websockets' ({e}) into {sys.executable}: apt-get install python3-websockets",
          file=sys.stderr)
    sys.exit(1)

failures = []


def check(ok, what):
    print(("ok   " if ok else "FAIL ") + what, flush=True)
    if not ok:
        failures.append(what)


async def through(url, name, ctx):
    async with websockets.connect(url, ssl=ctx, max_size=None, compression=None, open_timeout=10) as ws:
        host, port = ws.local_address[:2]
        await ws.send("whoami")
        seen = await asyncio.wait_for(ws.recv(), 10)
        check(seen == f"{host}:{port}", f"{name}: the server names this client ({host}:{port}), got {seen!r}")
        payload = os.urandom(1 << 20)
        await ws.send(payload)
        check(await asyncio.wait_for(ws.recv(), 10) == payload, f"{name}: 1 MiB binary message echoed whole")
        await ws.send("héllo ✓")
        check(await asyncio.wait_for(ws.recv(), 10) == "héllo ✓", f"{name}: text message echoed")


async def main():
    v1, v2, tls, direct, stats, cert, unix = sys.argv[1:8]
    ctx = ssl.create_default_context(cafile=cert)  # verifies the chain and IP 127.0.0.1
    await through(v1, "send-proxy (v1)", None)
    await through(v2, "send-proxy-v2", None)
    await through(tls, "send-proxy-v2 before TLS", ctx)
    await through(unix, "send-proxy-v2 to a unix@ server", None)
    try:
        async with websockets.connect(direct, open_timeout=10):
            check(False, "without HAProxy (no PROXY header): the connection must fail")
    except Exception as e:  # the server closes without answering
        check(True, f"without HAProxy (no PROXY header): refused ({type(e).__name__})")
    await asyncio.sleep(1)  # a few of HAProxy's health checks (every 100 ms) meanwhile
    async with websockets.connect(stats, open_timeout=10) as ws:
        await ws.send("stats")
        words = (await asyncio.wait_for(ws.recv(), 10)).split()
        counts = dict(zip(words[0::2], map(int, words[1::2])))
        check(counts.get("bad-proxy-header") == 1,
              f"exactly one connection refused for its header: {counts}")
        check(counts.get("accepted", 0) > 5, f"HAProxy's health checks reached the server too: {counts}")


asyncio.run(asyncio.wait_for(main(), 90))
if failures:
    print(f"{len(failures)} check(s) failed")
    sys.exit(1)
print("all checks passed")
