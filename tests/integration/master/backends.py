"""Real HTTP/1.1 backends for lbcore run tests: each answers ``NAME\\n`` with keep-alive.

``python -m tests.integration.master.backends NAME:PORT [NAME:PORT ...]`` serves them all
in one asyncio process (one process keeps the machine's two cores for lbcore and the
load client) until SIGTERM.
"""

from __future__ import annotations

import asyncio
import signal
import sys


class _Backend(asyncio.Protocol):
    def __init__(self, name: str) -> None:
        self.answer = b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s\n" % (
            len(name) + 1,
            name.encode(),
        )
        self.buf = b""
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        # GET requests only (no bodies): one answer per request head.
        self.buf += data
        assert self.transport is not None
        while b"\r\n\r\n" in self.buf:
            head, _, self.buf = self.buf.partition(b"\r\n\r\n")
            self.transport.write(self.answer)
            if b"\r\nconnection: close" in head.lower():
                self.transport.close()
                return


async def serve(specs: list[str]) -> None:
    loop = asyncio.get_running_loop()
    stop = loop.create_future()
    loop.add_signal_handler(signal.SIGTERM, stop.set_result, None)
    servers = []
    for spec in specs:
        name, _, port = spec.rpartition(":")
        servers.append(
            await loop.create_server(
                lambda name=name: _Backend(name), "127.0.0.1", int(port), backlog=1024
            )
        )
    print("ready", flush=True)
    await stop
    for s in servers:
        s.close()


if __name__ == "__main__":
    asyncio.run(serve(sys.argv[1:]))
