"""The Python cost of one proxied HTTP request, measured in-process without sockets.

``python -m tests.bench.hotpath [--requests N] [--no-log] [--profile]``

The bench's CPU per request mixes the kernel's work (loopback TCP, wake-ups) with the
interpreter's, and on a shared machine varies by ±20 % between runs. This drives the
real ``HttpClient`` and ``Upstream`` of ``lbcore.proxy.http`` — built from the bench's
own configuration, with the same access log (the UDP ``sendto`` is real) — through
keep-alive requests as wrk sends them and responses as nginx answers them, over fake
transports and a fake event loop, and prints the microseconds of one request/response
cycle: the part of the per-request cost that lbcore's own code decides, measured with
a spread of a few percent. ``--profile`` prints cProfile's top functions instead.
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import socket
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from lbcore.config.load import load_config
from lbcore.proxy.accesslog import AccessLogs
from lbcore.proxy.common import Registry
from lbcore.proxy.http import HttpClient, Upstream
from lbcore.worker import build_runtime
from tests.bench import configs

REQUEST = b"GET /small HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n\r\n"  # what wrk sends
RESPONSE = (  # what nginx answers for /small
    b"HTTP/1.1 200 OK\r\nServer: nginx/1.22.1\r\nDate: Thu, 26 Nov 2026 06:00:00 GMT\r\n"
    b"Content-Type: application/octet-stream\r\nContent-Length: 100\r\n"
    b"Last-Modified: Thu, 26 Nov 2026 05:00:00 GMT\r\nConnection: keep-alive\r\n"
    b'ETag: "6566a1b0-64"\r\nAccept-Ranges: bytes\r\n\r\n' + configs.SMALL_BODY
)


class _Handle:
    __slots__ = ("cancelled",)

    def __init__(self) -> None:
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True


class FakeLoop:
    """Just what the HTTP adapter and the log sender call on a loop."""

    def __init__(self) -> None:
        self.soon: list[Callable[[], object]] = []

    def time(self) -> float:
        return time.monotonic()

    def call_at(self, when: float, cb: Callable[[], object]) -> _Handle:
        return _Handle()

    def call_soon(self, cb: Callable[..., object], *args: object) -> _Handle:
        self.soon.append(cb)
        return _Handle()

    def run_soon(self) -> None:
        soon, self.soon = self.soon, []
        for cb in soon:
            cb()


class FakeTransport:
    """Counts bytes written; never pushes back."""

    def __init__(self, peer: tuple[str, int]) -> None:
        self.peer = peer
        self.written = 0
        self.writes = 0
        self.last = b""
        self.closed = False

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return self.peer if name == "peername" else default

    def write(self, data: bytes) -> None:
        self.written += len(data)
        self.writes += 1
        self.last = data

    def writelines(self, parts: list[bytes]) -> None:
        self.last = b"".join(parts)
        self.written += len(self.last)
        self.writes += 1

    def is_closing(self) -> bool:
        return self.closed

    def close(self) -> None:
        self.closed = True

    abort = close

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass


def setup(log: bool) -> tuple[HttpClient, FakeLoop, socket.socket]:
    """One client connection on the bench's HTTP frontend, each server with a pooled
    upstream connection, the access log to a UDP socket nobody reads."""
    sink = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sink.bind(("127.0.0.1", 0))
    ports = configs.Ports((1, 2), 3, 4, sink.getsockname()[1])
    with tempfile.TemporaryDirectory() as tmp:
        cfg = Path(tmp) / "bench.cfg"
        cfg.write_text(configs.proxy_conf(ports, 1, log=log))
        config, _warnings = load_config([str(cfg)])
    loop = FakeLoop()
    registry = Registry(config.global_.maxconn)
    backends, frontends = build_runtime(config, registry)
    logs = AccessLogs(config)
    fe = next(f for f in frontends if f.name == "fe_http")
    fe.log = logs.for_frontend(fe.proxy)
    logs.attach(loop)
    be = backends["be_http"]
    for server in be.servers:
        up = Upstream(be, server)
        up.connection_made(FakeTransport(("127.0.0.1", 80)))
        be.idle[server.name] = [up]
    client = HttpClient(fe, loop)  # type: ignore[arg-type]
    client.connection_made(FakeTransport(("127.0.0.1", 40000)))
    # Past its first request, as wrk's connections are: with HAProxy's default
    # ``http-reuse safe`` only later requests take a pooled server connection.
    client.not_first = True
    return client, loop, sink


def cycle(client: HttpClient, loop: FakeLoop) -> None:
    client.data_received(REQUEST)
    up = client.upstream
    assert up is not None, "the request did not reach a pooled upstream"
    up.data_received(RESPONSE)
    loop.run_soon()


def measure(n: int, log: bool, warmup: int = 1000) -> float:
    client, loop, sink = setup(log)
    try:
        for _ in range(warmup):
            cycle(client, loop)
        t0 = time.perf_counter()
        for _ in range(n):
            cycle(client, loop)
        return (time.perf_counter() - t0) / n * 1e6
    finally:
        sink.close()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--requests", type=int, default=20000)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--warmup", type=int, default=1000)
    ap.add_argument("--no-log", action="store_true")
    ap.add_argument("--profile", action="store_true")
    args = ap.parse_args(argv)
    log = not args.no_log
    if args.profile:
        client, loop, sink = setup(log)
        prof = cProfile.Profile()
        prof.enable()
        for _ in range(args.requests):
            cycle(client, loop)
        prof.disable()
        sink.close()
        pstats.Stats(prof).sort_stats("tottime").print_stats(25)
        return 0
    runs = [measure(args.requests, log, args.warmup) for _ in range(args.rounds)]
    print(
        f"us per request (logging {'on' if log else 'off'}): "
        f"min {min(runs):.2f} median {statistics.median(runs):.2f} max {max(runs):.2f}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
