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

Misbehaving on request, as node_echo_server.mjs does (the same cases, the same protocol):
"!bad CASE" makes the server break a rule, mostly with raw bytes written to the asyncio
transport under websockets, and remembers the close code the client answered with (1006:
no close frame came); "!closecode CASE" on a later connection is answered with the text
"CASE CODE" once that connection has ended ("CASE none" after 5 s).
"""
import asyncio
import os
import signal
import socket
import struct
import sys

try:
    import websockets
except ImportError as e:
    print(f"FAIL: cannot import the Python package 'websockets' ({e}) into {sys.executable}.\n"
          "Install it with:  apt-get install python3-websockets   (run with /usr/bin/python3)",
          file=sys.stderr)
    sys.exit(1)


def raw(frame):
    """Writes bytes to the connection's transport, past websockets (which sends no invalid frame)."""
    return lambda ws: ws.transport.write(bytes(frame))


def reset(ws):
    """Ends TCP with a RST: SO_LINGER with a zero timeout, then close."""
    ws.transport.get_extra_info("socket").setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    ws.transport.abort()


async def too_big(ws):
    await ws.send(bytes(2 * 1024 * 1024))  # 2 MiB; the client's limit is 1 MiB for this case


CASES = {
    "bad-utf8": raw([0x81, 0x04, 0x68, 0x69, 0xFF, 0x21]),  # §8.1: 0xff is never UTF-8
    "reserved-opcode": raw([0x83, 0x02, 0x68, 0x69]),  # §5.2: opcode 0x3
    "masked-frame": raw([0x81, 0x85, 0x37, 0xFA, 0x21, 0x3D, 0x7F, 0x9F, 0x4D, 0x51, 0x58]),  # §5.1
    "too-big": too_big,  # §7.4.1: 1009
    "close-1005": raw([0x88, 0x02, 0x03, 0xED]),  # §7.4.1: never sent
    "close-999": raw([0x88, 0x02, 0x03, 0xE7]),  # §7.4.2: not a status code
    "close-1-byte": raw([0x88, 0x01, 0x03]),  # §5.5.1
    "close-bad-reason": raw([0x88, 0x04, 0x03, 0xE8, 0xFF, 0xFE]),  # §5.5.1: reason not UTF-8
    "drop-tcp": lambda ws: ws.transport.close(),  # §7.1.5: FIN without a close frame
    "reset-tcp": reset,  # ...or a RST
}
close_codes = {}  # case -> close code the client sent back (1006: none)


async def close_code_of(name):
    for _ in range(500):
        if name in close_codes:
            return close_codes[name]
        await asyncio.sleep(0.01)
    return "none"


async def echo(ws, path=None):  # websockets 10.x passes the path too
    misbehaved = None
    try:
        async for message in ws:
            if misbehaved:
                continue  # whatever comes after the violation
            # "!close CODE REASON": the server starts the closing handshake (§7.1.2).
            if isinstance(message, str) and message.startswith("!close "):
                _, code, reason = message.split(" ", 2)
                await ws.close(int(code), reason)
                break
            if isinstance(message, str) and message.startswith("!bad "):
                misbehaved = message[5:]
                print(f"python_echo_server: misbehaving: {misbehaved}", flush=True)
                result = CASES[misbehaved](ws)
                if asyncio.iscoroutine(result):
                    await result
                continue
            if isinstance(message, str) and message.startswith("!closecode "):
                name = message[11:]
                await ws.send(f"{name} {await close_code_of(name)}")
                continue
            await ws.send(message)
    except websockets.ConnectionClosed:
        pass  # a close code other than 1000/1001, or no close frame: recorded below
    finally:
        await ws.wait_closed()
        print(f"python_echo_server: client closed with {ws.close_code} {ws.close_reason}", flush=True)
        if misbehaved:
            close_codes[misbehaved] = ws.close_code


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
