#!/usr/bin/python3
"""Python `websockets` (Debian's python3-websockets) as an echo server for duplex::client
(tests/interop/client_driver.cpp).

    /usr/bin/python3 tests/interop/python_echo_server.py   prints "python_echo_server listening on ws://127.0.0.1:PORT"

Listens on 127.0.0.1, port 0. Every message goes back with its type, except the text
"!close CODE REASON", which makes the server close with that code and reason; websockets answers
pings (§5.5.2) and close frames (§5.5.1) itself. permessage-deflate (RFC 7692) is accepted
only with DUPLEX_DEFLATE set (compression=None otherwise), so the plain run stays uncompressed
and the deflate run asserts compression; no subprotocol is ever chosen, so an offered one is
answered with none (§4.2.2). max_size=None so 16 MiB messages fit. Exits on SIGTERM/SIGINT,
and by itself after 120 s so it can never outlive a test.
"""
import asyncio
import os
import signal
import sys

try:
    import websockets
except ImportError as e:
    print(f"FAIL: cannot import the Python package 'websockets' ({e}) into {sys.executable}.\n"
          "Install it with:  apt-get install python3-websockets   (run with /usr/bin/python3)",
          file=sys.stderr)
    sys.exit(1)


async def echo(ws, path=None):  # websockets 10.x passes the path too
    try:
        async for message in ws:
            # "!close CODE REASON": the server starts the closing handshake (§7.1.2).
            if isinstance(message, str) and message.startswith("!close "):
                _, code, reason = message.split(" ", 2)
                await ws.close(int(code), reason)
                break
            await ws.send(message)
    finally:
        print(f"python_echo_server: client closed with {ws.close_code} {ws.close_reason}", flush=True)


async def main():
    stop = asyncio.get_running_loop().create_future()
    for sig in (signal.SIGTERM, signal.SIGINT):
        asyncio.get_running_loop().add_signal_handler(sig, lambda: stop.done() or stop.set_result(None))
    async with websockets.serve(echo, "127.0.0.1", 0, compression="deflate" if os.environ.get("DUPLEX_DEFLATE") else None, max_size=None,
                                ping_interval=None) as server:
        port = server.sockets[0].getsockname()[1]
        print(f"python_echo_server listening on ws://127.0.0.1:{port}", flush=True)
        try:
            await asyncio.wait_for(stop, 120)
        except asyncio.TimeoutError:
            print("python_echo_server: 120 s are up", flush=True)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
