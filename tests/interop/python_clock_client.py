"""examples/clock_server checked by Python's websockets client (nobody here wrote it):
the server pushes the date and time every second (a text message, RFC 6455 §5.6), a second
client gets the same ticks, and a clean close is answered with 1000 (§7.1.2).

    python_clock_client.py <clock_server>
"""
import asyncio
import re
import subprocess
import sys

try:
    import websockets
except ImportError as e:
    print(f"FAIL: cannot import the Python package 'websockets' ({e}) into {sys.executable}.\n"
          "Install it with:  apt-get install python3-websockets   (Debian's package; run this\n"
          "script with /usr/bin/python3, or: bash scripts/install-deps.sh)", file=sys.stderr)
    sys.exit(1)

STAMP = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d$")


async def main(exe):
    server = subprocess.Popen([exe, "0"], stdout=subprocess.PIPE, text=True)
    try:
        line = await asyncio.wait_for(asyncio.get_running_loop().run_in_executor(None, server.stdout.readline), 10)
        port = re.search(r"127\.0\.0\.1:(\d+)", line).group(1)
        url = f"ws://127.0.0.1:{port}/"
        async with websockets.connect(url) as a, websockets.connect(url) as b:
            ticks = [await asyncio.wait_for(a.recv(), 5) for _ in range(3)]
            other = await asyncio.wait_for(b.recv(), 5)
        for t in ticks + [other]:
            assert isinstance(t, str) and STAMP.match(t), repr(t)
        assert ticks[0] <= ticks[1] <= ticks[2], ticks
        assert a.close_code == 1000 and b.close_code == 1000, (a.close_code, b.close_code)
        print("ok clock_server pushed", ticks, "and", other)
    finally:
        server.terminate()
        assert server.wait(10) == 0, "clock_server did not exit cleanly on SIGTERM"


asyncio.run(asyncio.wait_for(main(sys.argv[1]), 60))
