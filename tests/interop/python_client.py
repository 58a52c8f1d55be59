#!/usr/bin/python3
"""Python `websockets` (Debian's python3-websockets, /usr/bin/python3) as the client of
duplex's examples/echo_server.

    /usr/bin/python3 tests/interop/python_client.py <path/to/echo_server>

Starts echo_server on port 0, runs every check (each with its own timeout), kills the
server and exits 1 if any check failed. compression=None: these checks are about
duplex's uncompressed framing; permessage-deflate (RFC 7692), which duplex negotiates, is
checked with this same library by deflate_peers.mjs and deflate_duplex_client_vs_python_websockets.
"""
import asyncio
import os
import re
import select
import signal
import struct
import subprocess
import sys
import time
import traceback

try:
    import websockets
    from websockets.exceptions import ConnectionClosed
except ImportError as e:
    print(f"FAIL: cannot import the Python package 'websockets' ({e}) into {sys.executable}.\n"
          "Install it with:  apt-get install python3-websockets   (Debian's package; run this\n"
          "script with /usr/bin/python3, or: bash scripts/install-deps.sh)", file=sys.stderr)
    sys.exit(1)

MIB = 1024 * 1024
SERVER_MAX_MESSAGE = 16 * MIB  # connection_options::max_message_size default
# §5.2 payload length encodings: 7-bit up to 125, 16-bit 126..65535, 64-bit from 65536.
SIZES = [0, 1, 125, 126, 65535, 65536, SERVER_MAX_MESSAGE]
STARTED = []  # every Server started, killed in the end whatever happens
OP_CONT, OP_TEXT, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG = 0, 1, 2, 8, 9, 10


def utf8_text(n):
    """A str whose UTF-8 encoding is exactly n bytes, mixing 1- to 4-byte code points."""
    pattern = "duplex é ü → ✓ 𝄞 日本語 "
    whole = n // len(pattern.encode())
    out, size = [pattern * whole], whole * len(pattern.encode())
    for ch in pattern:
        if size == n:
            break
        if size + len(ch.encode()) > n:
            ch = "a"
        out.append(ch)
        size += len(ch.encode())
    out.append("a" * (n - size))
    text = "".join(out)
    assert len(text.encode()) == n
    return text


class Server:
    """echo_server on port 0; the port is read from its first stdout line."""

    def __init__(self, exe):
        self.proc = subprocess.Popen([exe, "0"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     start_new_session=True)
        STARTED.append(self)
        line = b""
        deadline = time.monotonic() + 10
        fd = self.proc.stdout.fileno()
        while b"\n" not in line:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([fd], [], [], left)[0]:
                break
            chunk = os.read(fd, 256)
            if not chunk:
                break
            line += chunk
        m = re.search(rb"ws://127\.0\.0\.1:(\d+)", line)
        if not m:
            self.kill()
            raise RuntimeError(f"echo_server printed no port: {line!r}")
        self.port = int(m.group(1))

    def alive(self):
        return self.proc.poll() is None

    def kill(self):
        """SIGTERM, SIGKILL after 3 s. Returns (exit code, killed)."""
        if self.proc.poll() is not None:
            return self.proc.returncode, False
        self.stopping = True
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(3), False
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait(3), True


class Checks:
    def __init__(self, server):
        self.server, self.passed, self.failed = server, 0, []

    async def run(self, name, coro_fn, timeout=10):
        t0 = time.monotonic()
        try:
            await asyncio.wait_for(coro_fn(), timeout)
            if not self.server.alive() and not getattr(self.server, "stopping", False):
                raise AssertionError(f"echo_server died (exit {self.server.proc.returncode})")
            self.passed += 1
            print(f"ok   {name} ({(time.monotonic() - t0) * 1000:.0f} ms)", flush=True)
        except Exception as e:  # noqa: BLE001 - report every failure the same way
            self.failed.append(name)
            detail = "timed out" if isinstance(e, asyncio.TimeoutError) else f"{type(e).__name__}: {e}"
            print(f"FAIL {name} ({(time.monotonic() - t0) * 1000:.0f} ms): {detail}", flush=True)
            if not isinstance(e, (AssertionError, asyncio.TimeoutError)):
                traceback.print_exc()


def check_eq(actual, expected, what):
    if actual != expected:
        raise AssertionError(f"{what}: expected {expected!r}, got {actual!r}")


async def main(exe):
    server = Server(exe)
    url = f"ws://127.0.0.1:{server.port}/"
    checks = Checks(server)
    print(f"websockets {websockets.__version__} against echo_server on port {server.port}", flush=True)

    def connect():
        return websockets.connect(url, compression=None, max_size=None, ping_interval=None,
                                  open_timeout=5, close_timeout=5)

    async def echo_sizes():
        async with connect() as ws:
            for n in SIZES:
                text = utf8_text(n)
                await ws.send(text)  # §5.6: a text frame; str comes back only for opcode 0x1
                got = await ws.recv()
                check_eq(type(got), str, f"text {n} B: echoed type")
                check_eq(len(got.encode()), n, f"text {n} B: echoed size")
                if got != text:
                    raise AssertionError(f"text {n} B: echoed text differs")
                data = os.urandom(n)
                await ws.send(data)
                got = await ws.recv()
                check_eq(type(got), bytes, f"binary {n} B: echoed type")
                check_eq(len(got), n, f"binary {n} B: echoed size")
                if got != data:
                    raise AssertionError(f"binary {n} B: echoed bytes differ")
    await checks.run("echo: text and binary at 0..16 MiB bytes, type and bytes preserved (§5.2, §5.6)",
                     echo_sizes, timeout=60)

    async def fragments():
        async with connect() as ws:
            parts = ["frag-one ", "fräg-two ", "", "frag-𝄞-four"]
            await ws.send(iter(parts))  # one frame per item: text, continuation..., FIN on the last (§5.4)
            check_eq(await ws.recv(), "".join(parts), "reassembled text")
            bparts = [os.urandom(70000), os.urandom(1), os.urandom(300)]
            await ws.send(iter(bparts))
            got = await ws.recv()
            check_eq(type(got), bytes, "fragmented binary: type")
            if got != b"".join(bparts):
                raise AssertionError("fragmented binary: bytes differ")
    await checks.run("fragmented text and binary messages (send an iterable) echoed whole (§5.4)", fragments)

    async def ping_pong():
        async with connect() as ws:
            for payload in (b"", b"hello ping", os.urandom(125)):
                # websockets resolves the waiter only for a pong carrying this exact payload.
                waiter = await ws.ping(payload)
                await asyncio.wait_for(waiter, 5)  # §5.5.2/§5.5.3: pong echoes the ping's payload
    await checks.run("ping with payload gets a pong with the same payload (§5.5.2, §5.5.3)", ping_pong)

    for code, reason in ((1000, "bye"), (1001, ""), (3000, "registered"), (4000, "private"), (4999, "")):
        async def close_code(code=code, reason=reason):
            async with connect() as ws:
                await ws.close(code=code, reason=reason)
                # §5.5.1: the endpoint answering a close frame typically echoes the code.
                check_eq(ws.close_code, code, "close code the server answered with")
                check_eq(ws.close_sent.code, code, "close code we sent")
        await checks.run(f"client close({code}) -> server echoes {code} (§5.5.1, §7.4)", close_code)

    async def close_no_code():
        async with connect() as ws:
            await ws.write_frame(True, OP_CLOSE, b"")  # a close frame without a body (§5.5.1)
            await asyncio.wait_for(ws.wait_closed(), 5)
            check_eq(ws.close_code, 1005, "close code (1005 = the server's close frame had no code, §7.1.5)")
    await checks.run("close frame with no body -> server's answer has no code either (§5.5.1)", close_no_code)

    # §7.4.1/§7.4.2: codes that must never be on the wire. websockets refuses to send them,
    # so the frame is written raw; the server must fail the connection with 1002.
    for bad in (0, 999, 1004, 1005, 1006, 1015, 1100, 2000, 2999):
        async def bad_close(bad=bad):
            async with connect() as ws:
                await ws.write_frame(True, OP_CLOSE, struct.pack("!H", bad) + b"x")
                await asyncio.wait_for(ws.wait_closed(), 5)
                check_eq(ws.close_code, 1002, f"server's close code for a close frame with code {bad}")
        await checks.run(f"raw close frame with invalid code {bad} -> 1002 (§7.4.1, §7.4.2)", bad_close)

    async def bad_utf8_close_reason():
        async with connect() as ws:
            await ws.write_frame(True, OP_CLOSE, struct.pack("!H", 1000) + b"\xc3\x28")
            await asyncio.wait_for(ws.wait_closed(), 5)
            check_eq(ws.close_code, 1007, "server's close code for an invalid UTF-8 close reason")
    await checks.run("close reason that is not UTF-8 -> 1007 (§5.5.1, §8.1)", bad_utf8_close_reason)

    async def bad_utf8_text():
        async with connect() as ws:
            await ws.write_frame(True, OP_TEXT, b"valid then \xed\xa0\x80")  # a UTF-16 surrogate
            await asyncio.wait_for(ws.wait_closed(), 5)
            check_eq(ws.close_code, 1007, "server's close code for invalid UTF-8 text")
    await checks.run("text message that is not UTF-8 -> 1007 (§8.1)", bad_utf8_text)

    async def too_big():
        # §7.4.1 1009 / §10.4: echo_server's limit is 16 MiB; the close frame must reach
        # this client even though it is still sending when the server gives up.
        async with connect() as ws:
            try:
                await ws.send(b"\0" * (SERVER_MAX_MESSAGE + 1))
                await asyncio.wait_for(ws.recv(), 10)
            except ConnectionClosed:
                pass
        check_eq(ws.close_code, 1009, "server's close code for a 16 MiB + 1 message")
    await checks.run("message over the server's 16 MiB limit -> 1009 (§7.4.1, §10.4)", too_big, timeout=30)

    async def still_serving():
        async with connect() as ws:
            await ws.send("still alive")
            check_eq(await ws.recv(), "still alive", "echo on a new connection")
        check_eq(ws.close_code, 1000, "close code after a normal close")
    await checks.run("after all that, a new connection is served normally", still_serving)

    async def clean_exit():
        code, killed = server.kill()
        if killed:
            raise AssertionError("echo_server ignored SIGTERM for 3 s and was killed")
        if code != 0:
            raise AssertionError(f"echo_server exited with {code} after SIGTERM; stderr: {server.proc.stderr.read()!r}")
    await checks.run("echo_server exits 0 on SIGTERM", clean_exit)

    print(f"\n{checks.passed} passed, {len(checks.failed)} failed")
    for f in checks.failed:
        print(f"  failed: {f}")
    return not checks.failed


if __name__ == "__main__":
    if len(sys.argv) != 2:
        print("usage: /usr/bin/python3 python_client.py <echo_server>", file=sys.stderr)
        sys.exit(2)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))  # run finally: below
    ok = False
    try:
        ok = asyncio.run(asyncio.wait_for(main(sys.argv[1]), 150))
    except Exception:  # noqa: BLE001
        traceback.print_exc()
        print("FAIL: python_client.py did not finish (see above)")
    finally:
        for srv in STARTED:  # main() kills it on the normal path
            srv.kill()
    sys.exit(0 if ok else 1)
