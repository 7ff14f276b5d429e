"""The Python cost of one proxied HTTP request, measured in-process without sockets.

``python -m tests.bench.hotpath [--requests N] [--no-log] [--profile] [--close]``

The bench's CPU per request mixes the kernel's work (loopback TCP, wake-ups) with the
interpreter's, and on a shared machine varies by ±20 % between runs. This drives the
real ``HttpClient`` and ``Upstream`` of ``lbcore.proxy.http`` — built from the bench's
own configuration, with the same access log (the UDP ``sendto`` is real) — through
keep-alive requests as wrk sends them and responses as nginx answers them, over fake
transports and a fake event loop, and prints the microseconds of one request/response
cycle: the part of the per-request cost that lbcore's own code decides, measured with
a spread of a few percent. ``--profile`` prints cProfile's top functions instead.

``--close`` measures the "new client connection per request" row instead (wrk with
``Connection: close``, server-side reuse on): one whole client connection per cycle —
the protocol made by the listener's factory (``lbcore.worker._factory``), its
``connection_made``, the request, the pooled server's response, the close the answer
asks for and ``connection_lost`` as uvloop calls it a loop turn later — in µs per
connection. uvloop's own work (accept, the transport, ``getpeername``) is not in it.

``--vary`` makes each request and each response head differ from the one before (the
target and the ``Date`` alternate), as real traffic does where wrk repeats one request
and nginx one response: a guard that no figure rests on a head being a byte-for-byte
copy of the last one (every line is still one seen before, as real clients repeat
their field lines).

``--instr`` counts instead of timing: it runs the same cycles under valgrind's callgrind
twice (``--warmup`` + N and ``--warmup`` + 3N cycles, ``PYTHONHASHSEED=0``) and prints
the difference over 2N — user-space instructions per request or connection, the same
from run to run whatever else the machine is doing.
"""

from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import socket
import statistics
import subprocess
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
from lbcore.worker import _factory, build_runtime
from tests.bench import configs

REQUEST = b"GET /small HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n\r\n"  # what wrk sends
#: what ``wrk -H 'Connection: close'`` sends (the bench's connection-per-request rows)
CLOSE_REQUEST = b"GET /small HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nConnection: close\r\n\r\n"
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
        self.soon: list[tuple[Callable[..., object], tuple[object, ...]]] = []

    def time(self) -> float:
        return time.monotonic()

    def is_closed(self) -> bool:
        return False

    def call_at(self, when: float, cb: Callable[[], object]) -> _Handle:
        return _Handle()

    def call_soon(self, cb: Callable[..., object], *args: object) -> _Handle:
        self.soon.append((cb, args))
        return _Handle()

    def run_soon(self) -> None:
        soon, self.soon = self.soon, []
        for cb, args in soon:
            cb(*args)


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


class ClosingTransport(FakeTransport):
    """A client transport whose ``close`` ends the connection as uvloop does: the
    protocol's ``connection_lost`` runs on the next loop turn (nothing is buffered)."""

    def __init__(self, peer: tuple[str, int], loop: FakeLoop) -> None:
        super().__init__(peer)
        self.loop = loop
        self.protocol: Any = None

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self.loop.call_soon(self.protocol.connection_lost, None)

    abort = close


def setup(log: bool) -> tuple[HttpClient, FakeLoop, socket.socket]:
    """One client connection on the bench's HTTP frontend, each server with a pooled
    upstream connection, the access log to a UDP socket nobody reads."""
    factory, loop, sink = _frontend(log)
    client = factory()
    client.connection_made(FakeTransport(("127.0.0.1", 40000)))
    return client, loop, sink


def _frontend(log: bool) -> tuple[Any, FakeLoop, socket.socket]:
    """The bench's HTTP frontend with a pooled upstream connection per server, and the
    protocol factory the worker's listener calls per accepted connection (not called)."""
    sink = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sink.bind(("127.0.0.1", 0))
    ports = configs.Ports((1, 2), 3, 4, sink.getsockname()[1])
    with tempfile.TemporaryDirectory() as tmp:
        cfg = Path(tmp) / "bench.cfg"
        # http-reuse always: every request here takes the pooled server connection, the
        # path measured (with HAProxy's default, safe, a connection's first would not)
        cfg.write_text(configs.proxy_conf(ports, 1, log=log, http_reuse="always"))
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
    factory = _factory(HttpClient, fe, loop)  # type: ignore[arg-type]
    return factory, loop, sink


class CloseBench:
    """The bench's frontend driven one whole connection per cycle (``--close``)."""

    def __init__(self, log: bool) -> None:
        self.factory, self.loop, self.sink = _frontend(log)
        self.port = 40000
        self.last: HttpClient | None = None

    def cycle(self) -> ClosingTransport:
        """Accept, request with ``Connection: close``, response, close, connection lost."""
        loop = self.loop
        self.port = self.port + 1 if self.port < 60000 else 40000
        transport = ClosingTransport(("127.0.0.1", self.port), loop)
        client = self.factory()
        transport.protocol = client
        client.connection_made(transport)
        client.data_received(CLOSE_REQUEST)
        up = client.upstream
        assert up is not None, "the request did not reach a pooled upstream"
        up.data_received(RESPONSE)
        loop.run_soon()  # the log flush and connection_lost
        self.last = client
        return transport

    def close(self) -> None:
        self.sink.close()


def cycle(
    client: HttpClient, loop: FakeLoop, request: bytes = REQUEST, response: bytes = RESPONSE
) -> None:
    client.data_received(request)
    up = client.upstream
    assert up is not None, "the request did not reach a pooled upstream"
    up.data_received(response)
    loop.run_soon()


#: ``--vary``: two requests and two responses, taken in turn
VARIED = (
    (REQUEST, RESPONSE),
    (REQUEST.replace(b"/small", b"/small?v"), RESPONSE.replace(b"06:00:00", b"06:00:01")),
)


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


def measure_close(n: int, log: bool, warmup: int = 1000) -> float:
    """µs per whole connection (``--close``)."""
    bench = CloseBench(log)
    try:
        for _ in range(warmup):
            bench.cycle()
        t0 = time.perf_counter()
        for _ in range(n):
            bench.cycle()
        return (time.perf_counter() - t0) / n * 1e6
    finally:
        bench.close()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--requests", type=int, default=20000)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--warmup", type=int, default=1000)
    ap.add_argument("--no-log", action="store_true")
    ap.add_argument("--profile", action="store_true")
    ap.add_argument("--close", action="store_true", help="one client connection per request")
    ap.add_argument("--instr", action="store_true", help="callgrind instructions per cycle")
    ap.add_argument("--vary", action="store_true", help="heads never repeat whole (--instr)")
    ap.add_argument("--cycles", type=int, default=0, help=argparse.SUPPRESS)  # for --instr
    args = ap.parse_args(argv)
    log = not args.no_log
    if args.cycles:  # one uncounted run of cycles, under callgrind (see instructions())
        _run_cycles(args.close, log, args.cycles, args.vary)
        return 0
    if args.instr:
        n = args.requests if args.requests != ap.get_default("requests") else 1000
        per = instructions(args.close, log, n, args.warmup, args.vary)
        what = "connection (Connection: close" if args.close else "request (keep-alive"
        varied = ", heads varied" if args.vary else ""
        print(f"instructions per {what}, logging {'on' if log else 'off'}{varied}): {per:,.0f}")
        return 0
    if args.close:
        return _main_close(args, log)
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


def _run_cycles(close: bool, log: bool, n: int, vary: bool = False) -> None:
    if close:
        bench = CloseBench(log)
        for _ in range(n):
            bench.cycle()
        bench.close()
        return
    client, loop, sink = setup(log)
    if vary:
        for i in range(n):
            request, response = VARIED[i & 1]
            cycle(client, loop, request, response)
    else:
        for _ in range(n):
            cycle(client, loop)
    sink.close()


def instructions(close: bool, log: bool, n: int, warmup: int, vary: bool = False) -> float:
    """Callgrind's user-space instructions per cycle: two runs, ``warmup + n`` and
    ``warmup + 3n`` cycles; the difference over ``2n`` leaves start-up and set-up out."""
    totals = []
    with tempfile.TemporaryDirectory(prefix="lbcore-hotpath-") as tmp:
        for cycles in (warmup + n, warmup + 3 * n):
            out = Path(tmp) / f"cg.{cycles}"
            argv = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}"]
            argv += [sys.executable, "-m", "tests.bench.hotpath", "--cycles", str(cycles)]
            argv += ["--close"] if close else []
            argv += [] if log else ["--no-log"]
            argv += ["--vary"] if vary else []
            env = dict(os.environ, PYTHONHASHSEED="0")
            subprocess.run(argv, check=True, capture_output=True, env=env)
            for line in out.read_text(errors="replace").splitlines():
                if line.startswith(("summary:", "totals:")):
                    totals.append(int(line.split()[1]))
                    break
    return (totals[1] - totals[0]) / (2 * n)


def _main_close(args: argparse.Namespace, log: bool) -> int:
    if args.profile:
        bench = CloseBench(log)
        for _ in range(args.warmup):
            bench.cycle()
        prof = cProfile.Profile()
        prof.enable()
        for _ in range(args.requests):
            bench.cycle()
        prof.disable()
        bench.close()
        pstats.Stats(prof).sort_stats("tottime").print_stats(30)
        return 0
    runs = [measure_close(args.requests, log, args.warmup) for _ in range(args.rounds)]
    print(
        f"us per connection (Connection: close, logging {'on' if log else 'off'}): "
        f"min {min(runs):.2f} median {statistics.median(runs):.2f} max {max(runs):.2f}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
