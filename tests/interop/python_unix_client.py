#!/usr/bin/python3
"""Python `websockets` (Debian's python3-websockets) as a client of duplex's
unix_echo_server over a Unix domain socket (websockets.unix_connect), for
unix_socket_peers.mjs:

    /usr/bin/python3 python_unix_client.py PATH

Checks a text and a 1 MiB binary message echoed whole, a ping answered, the server
measuring the round trip of its own ping (measure_latency(), latency()), the server
naming this connection "unix:" (remote_address()), and a clean close (1000).
Prints one ok/FAIL line per check; exits 0 when all hold.
"""
import asyncio
import os
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


async def main(path):
    async with websockets.unix_connect(path, "ws://localhost/echo", max_size=None, open_timeout=10) as ws:
        await ws.send("héllo ✓")
        check(await asyncio.wait_for(ws.recv(), 10) == "héllo ✓", "python: text message echoed")
        payload = os.urandom(1 << 20)
        await ws.send(payload)
        check(await asyncio.wait_for(ws.recv(), 10) == payload, "python: 1 MiB binary message echoed whole")
        pong = await ws.ping(b"are you there")
        await asyncio.wait_for(pong, 10)
        check(True, "python: ping answered with its pong")
        await ws.send("latency")
        check(await asyncio.wait_for(ws.recv(), 10) == "0", "python: no latency before a ping was answered")
        await ws.send("measure")  # the server pings; websockets answers by itself (§5.5.2)
        check(await asyncio.wait_for(ws.recv(), 10) == "measuring", "python: the server pinged")
        await asyncio.sleep(0.2)
        await ws.send("latency")
        us = int(await asyncio.wait_for(ws.recv(), 10))
        check(0 < us < 200_000, f"python: the server measured the round trip of its ping: {us} us")
        await ws.send("whoami")
        seen = await asyncio.wait_for(ws.recv(), 10)
        check(seen == "unix:", f"python: the server names a Unix peer, got {seen!r}")
        await ws.close(1000, "done")
        check(ws.close_code == 1000, f"python: closed with 1000, got {ws.close_code}")


asyncio.run(asyncio.wait_for(main(sys.argv[1]), 60))
if failures:
    print(f"{len(failures)} check(s) failed")
    sys.exit(1)
print("all checks passed")
