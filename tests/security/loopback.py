"""A TCP relay that reaches the gateway from a loopback address of its own.

Everything local shares 127.0.0.1, and auth's brute-force protection counts login failures per
client IP: a fuzzer sending thousands of bad logins from 127.0.0.1 would lock every other local
client (demo, e2e, chaos load, other engineers) out for up to an hour. Linux routes all of
127.0.0.0/8 to loopback, so connecting *from* another address in it (127.0.0.0/8 minus .1)
gives this suite a client IP of its own at the real gateway, with its own lockout counters and
rate-limit budgets, without changing anything on the gateway.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import threading
from collections.abc import Iterator

from shopkit.testing import pipe


def fresh_loopback_ip() -> str:
    """A random 127.x.y.z other than 127.0.0.1: a client IP no earlier run has used."""
    while True:
        octets = [secrets.randbelow(256), secrets.randbelow(256), 1 + secrets.randbelow(254)]
        address = "127.{}.{}.{}".format(*octets)
        if address != "127.0.0.1":
            return address


class LoopbackRelay:
    """Listen on 127.0.0.1:<ephemeral>, connect to `target` from `source_ip`."""

    def __init__(self, target_host: str, target_port: int, source_ip: str) -> None:
        self.target = (target_host, target_port)
        self.source_ip = source_ip
        self.port = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: asyncio.Server | None = None
        self._thread: threading.Thread | None = None

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection(
                *self.target, local_addr=(self.source_ip, 0)
            )
        except OSError:
            writer.close()
            return
        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 5)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@contextlib.contextmanager
def relay_thread(target_host: str, target_port: int, source_ip: str) -> Iterator[LoopbackRelay]:
    """Run a relay on its own event loop in a thread (for blocking callers: a subprocess)."""
    relay = LoopbackRelay(target_host, target_port, source_ip)
    loop = asyncio.new_event_loop()
    started = threading.Event()

    def run() -> None:
        asyncio.set_event_loop(loop)
        loop.run_until_complete(relay.start())
        started.set()
        loop.run_forever()
        loop.run_until_complete(relay.stop())
        loop.close()

    thread = threading.Thread(target=run, name="loopback-relay", daemon=True)
    thread.start()
    started.wait(10)
    try:
        yield relay
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)


if __name__ == "__main__":  # manual runs: python tests/security/loopback.py [source_ip]
    import sys

    ip = sys.argv[1] if len(sys.argv) > 1 else fresh_loopback_ip()
    with relay_thread("127.0.0.1", 8000, ip) as r:
        print(f"{r.url} -> 127.0.0.1:8000 from {ip}", flush=True)
        threading.Event().wait()
