"""The floor: the leanest honest HTTP/1.1 keep-alive forwarder we can write in Python.

``python -m tests.bench.floor serve --bind PORT --server HOST:PORT [--server ...]
[--log HOST:PORT] [--workers N]`` runs it; ``python -m tests.bench.floor compare
[run.py's flags]`` measures it beside HAProxy and lbcore (``python -m tests.bench.run
--floor`` on the keep-alive and connection-per-request rows).

Issue 10 claimed that "a lean uvloop + httptools forwarder" serves small keep-alive
requests at about 0.85x HAProxy's rate for 1.15x its CPU per request, and based the
keep-alive target on it. This is that forwarder, so the figure is measured here, in
the same rounds as HAProxy and lbcore: what a Python design reaches when it does
almost nothing but move bytes.

What it does (and must do to be honest): uvloop ``Protocol`` callbacks, no coroutines
on the request path; llhttp (``httptools``) finds where each request and response
ends, so keep-alive, ``Connection: close`` and chunked or length-delimited bodies are
framed correctly; the bytes are forwarded unchanged, except that a request asking to
close the connection has its ``Connection`` field taken out, so the server connection
stays open for the next client (server-side reuse, as HAProxy and lbcore do), and its
response says ``Connection: close`` (as HAProxy's does), so the client does not try to
send another request on a connection the forwarder is about to close; a
client connection takes one upstream connection from the pool at its first request,
keeps it while it lives and gives it back when it ends; flow control in both
directions. With ``--log`` it sends one access-log line per request over UDP — a
plain f-string in HAProxy's httplog layout (client, accept date, server, timer, status,
bytes, request line) — to show what a log line alone costs.

What it leaves out, so that it is a floor and not a proxy: no configuration, rules,
header processing, limits, timeouts, stats, retries or health checks; the server is
chosen round robin when an upstream connection is opened, not per request; it
assumes a request head arrives in one read (as from wrk); HTTP/1.0 clients and
``Expect: 100-continue`` are not handled; an upstream failure closes the client.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import re
import signal
import socket
import sys
import time

import httptools
import uvloop

# A request's Connection field (the one wrk's ``-H 'Connection: close'`` sends).
_CONNECTION = re.compile(rb"\r\nconnection:[^\r\n]*", re.IGNORECASE)


class Pool:
    """Idle upstream connections, and the round robin that places new ones."""

    __slots__ = ("idle", "servers", "turn")

    def __init__(self, servers: list[tuple[str, int, str]]) -> None:
        self.servers = servers  # (host, port, name)
        self.idle: list[Upstream] = []
        self.turn = 0

    def pick(self) -> tuple[str, int, str]:
        server = self.servers[self.turn % len(self.servers)]
        self.turn += 1
        return server

    def give_back(self, up: Upstream) -> None:
        if up.reusable and not up.transport.is_closing():  # type: ignore[union-attr]
            up.client = None
            self.idle.append(up)
        else:
            up.close()


class Upstream(asyncio.Protocol):
    """One server connection: forwards what the server sends to the client holding it."""

    __slots__ = ("client", "fresh", "name", "parser", "pool", "reusable", "transport")

    def __init__(self, pool: Pool, name: str) -> None:
        self.name = name
        self.pool = pool
        self.transport: asyncio.Transport | None = None
        self.client: Client | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.reusable = True
        self.fresh = True  # the next bytes start a response

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        client = self.client
        if client is None:  # nobody asked: the server is out of step
            self.close()
            return
        out = data
        if self.fresh:
            self.fresh = False
            if client.close_after:  # tell the client: it must not send another request
                end = data.find(b"\r\n\r\n")
                end = len(data) if end < 0 else end
                out = _CONNECTION.sub(b"", data[:end], 1) + b"\r\nConnection: close" + data[end:]
        _write(client.transport, out)
        client.sent += len(out)
        try:  # what the server sent says whether its connection stays open
            self.parser.feed_data(data)
        except httptools.HttpParserError:
            self.reusable = False
            client.transport.close()  # type: ignore[union-attr]

    def on_message_complete(self) -> None:
        self.fresh = True
        if not self.parser.should_keep_alive():
            self.reusable = False
        self.client.response_done()  # type: ignore[union-attr]

    def pause_writing(self) -> None:
        if self.client is not None:
            self.client.transport.pause_reading()  # type: ignore[union-attr]

    def resume_writing(self) -> None:
        if self.client is not None:
            self.client.transport.resume_reading()  # type: ignore[union-attr]

    def close(self) -> None:
        self.reusable = False
        if self.transport is not None:
            self.transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self.reusable = False
        if self in self.pool.idle:
            self.pool.idle.remove(self)
        elif self.client is not None:
            if self.client.busy:  # the response is cut: so is the client's connection
                self.client.transport.close()  # type: ignore[union-attr]
            self.client.upstream = None


class Client(asyncio.Protocol):
    """One client connection: forwards its requests to the upstream connection it holds."""

    __slots__ = (
        "busy",
        "close_after",
        "head_now",
        "loop",
        "parser",
        "pending",
        "pool",
        "sent",
        "transport",
        "upstream",
    )

    def __init__(self, pool: Pool, loop: asyncio.AbstractEventLoop) -> None:
        self.pool = pool
        self.loop = loop
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpRequestParser(self)
        self.upstream: Upstream | None = None
        self.pending: list[bytes] | None = None  # while the upstream connects
        self.busy = False  # a request is in flight
        self.close_after = False
        self.head_now = False
        self.sent = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def on_headers_complete(self) -> None:
        self.busy = True
        self.head_now = True
        if not self.parser.should_keep_alive():
            self.close_after = True

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError:
            self.transport.close()  # type: ignore[union-attr]
            return
        if self.head_now:
            self.head_now = False
            if self.close_after:  # keep the server connection for the next client
                end = data.find(b"\r\n\r\n")
                end = len(data) if end < 0 else end
                data = _CONNECTION.sub(b"", data[:end], 1) + data[end:]
        up = self.upstream
        if up is not None and self.pending is None:
            _write(up.transport, data)
        elif self.pending is not None:
            self.pending.append(data)
        elif self.pool.idle:
            up = self.upstream = self.pool.idle.pop()
            up.client = self
            up.transport.write(data)  # type: ignore[union-attr]
        else:
            self.pending = [data]
            host, port, name = self.pool.pick()
            up = self.upstream = Upstream(self.pool, name)
            up.client = self
            self.loop.create_task(self._connect(up, host, port))

    async def _connect(self, up: Upstream, host: str, port: int) -> None:
        try:
            await self.loop.create_connection(lambda: up, host, port)
        except OSError:
            self.upstream = None
            self.transport.close()  # type: ignore[union-attr]
            return
        pending, self.pending = self.pending, None
        if up.client is not self:  # the client left while we connected
            up.close()
        elif pending:
            up.transport.writelines(pending)  # type: ignore[union-attr]

    def response_done(self) -> None:
        self.busy = False
        if self.close_after:
            _flush()
            up, self.upstream = self.upstream, None
            self.pool.give_back(up)  # type: ignore[arg-type]
            self.transport.close()  # type: ignore[union-attr]

    def pause_writing(self) -> None:
        if self.upstream is not None and self.upstream.transport is not None:
            self.upstream.transport.pause_reading()

    def resume_writing(self) -> None:
        if self.upstream is not None and self.upstream.transport is not None:
            self.upstream.transport.resume_reading()

    def connection_lost(self, exc: Exception | None) -> None:
        up, self.upstream = self.upstream, None
        if up is None:
            return
        if self.busy or up.transport is None:  # a response half sent: the connection is spent
            up.client = None
            up.close()
        else:
            self.pool.give_back(up)


class LoggingClient(Client):
    """The same, plus one access-log line per request sent as a UDP datagram."""

    __slots__ = ("log", "peer", "t0", "url")

    def __init__(self, pool: Pool, loop: asyncio.AbstractEventLoop, log: socket.socket) -> None:
        super().__init__(pool, loop)
        self.log = log
        self.url = b""
        self.t0 = 0.0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        ip, port = transport.get_extra_info("peername")[:2]
        self.peer = f"{ip}:{port}"

    def on_message_begin(self) -> None:
        self.t0 = time.time()
        self.sent = 0

    def on_url(self, url: bytes) -> None:
        self.url = url

    def response_done(self) -> None:
        now = time.time()
        t0 = self.t0
        up = self.upstream
        ms = int((now - t0) * 1000)
        p = self.parser
        line = (
            f"<134>{_syslog_date(now)} floor[{_PID}]: {self.peer} "
            f"[{_accept_date(t0)}.{int(t0 * 1000) % 1000:03d}] fe_http "
            f"be_http/{up.name if up else '-'} 0/0/0/{ms}/{ms} "
            f"{up.parser.get_status_code() if up else 502} {self.sent} - - ---- 1/1/0/0/0 0/0 "
            f'"{p.get_method().decode()} {self.url.decode(errors="replace")} '
            f'HTTP/{p.get_http_version()}"'
        )
        try:  # noqa: SIM105 (a context manager per line would cost more than the line)
            self.log.send(line.encode())
        except OSError:
            pass  # a full socket buffer drops the line, as syslog over UDP does
        if _BURN is not None:
            _burn()
        super().response_done()


_PID = os.getpid()
_dates: dict[int, tuple[str, str]] = {}

# --batch (an experiment, see tests/bench/systime.py): writes made while the loop runs
# its I/O callbacks are queued and made together at the start of the next loop turn,
# before it polls again (call_soon), as HAProxy sends after all of a poll's receives.
_BATCH: list[tuple[asyncio.Transport, bytes]] | None = None
_LOOP: asyncio.AbstractEventLoop | None = None


def _write(transport: asyncio.Transport | None, data: bytes) -> None:
    if _BATCH is None:
        transport.write(data)  # type: ignore[union-attr]
        return
    if not _BATCH:
        _LOOP.call_soon(_flush)  # type: ignore[union-attr]
    _BATCH.append((transport, data))  # type: ignore[arg-type]


def _flush() -> None:
    if not _BATCH:
        return
    items = _BATCH[:]
    _BATCH.clear()
    for transport, data in items:
        if not transport.is_closing():
            transport.write(data)


# --burn-us / --burn-kb (an experiment, see tests/bench/systime.py): extra user-space work
# per logged request, spinning on the clock and/or copying a buffer of that size, to
# see what a slower forwarder, or one with a larger working set, pays in system time.
_BURN: tuple[float, bytearray] | None = None


def _burn() -> None:
    assert _BURN is not None
    seconds, buf = _BURN
    if buf:
        bytes(buf)  # reads and writes len(buf) bytes: evicts that much of the caches
    if seconds:
        end = time.perf_counter() + seconds
        while time.perf_counter() < end:
            pass


def _dates_of(now: float) -> tuple[str, str]:
    """Syslog and accept dates of this second, formatted once a second (as HAProxy does)."""
    sec = int(now)
    got = _dates.get(sec)
    if got is None:
        t = time.localtime(sec)
        got = (time.strftime("%b %d %H:%M:%S", t), time.strftime("%d/%b/%Y:%H:%M:%S", t))
        _dates.clear()
        _dates[sec] = got
    return got


def _syslog_date(now: float) -> str:
    return _dates_of(now)[0]


def _accept_date(now: float) -> str:
    return _dates_of(now)[1]


def _addr(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    return host or "127.0.0.1", int(port)


async def serve(sock: socket.socket, servers: list[tuple[str, int]], log: str | None) -> None:
    global _PID, _LOOP
    _PID = os.getpid()
    loop = _LOOP = asyncio.get_running_loop()
    pool = Pool([(h, p, f"web{i + 1}") for i, (h, p) in enumerate(servers)])
    if log:
        out = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        out.setblocking(False)
        out.connect(_addr(log))
        server = await loop.create_server(lambda: LoggingClient(pool, loop, out), sock=sock)
    else:
        server = await loop.create_server(lambda: Client(pool, loop), sock=sock)
    async with server:
        await server.serve_forever()


def run_server(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(prog="python -m tests.bench.floor serve")
    ap.add_argument("--bind", required=True, help="[HOST:]PORT to listen on")
    ap.add_argument("--server", action="append", required=True, help="HOST:PORT, repeatable")
    ap.add_argument("--log", help="HOST:PORT: one access-log line per request over UDP")
    ap.add_argument("--workers", type=int, default=1, help="processes sharing the listener")
    ap.add_argument("--burn-us", type=float, default=0.0, help="spin this long per logged request")
    ap.add_argument("--burn-kb", type=int, default=0, help="copy this much per logged request")
    ap.add_argument("--batch", action="store_true", help="writes made together per loop turn")
    args = ap.parse_args(argv)
    if args.batch:
        global _BATCH
        _BATCH = []
    if args.burn_us or args.burn_kb:
        global _BURN
        _BURN = (args.burn_us / 1e6, bytearray(args.burn_kb * 1024))
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(_addr(args.bind))
    sock.listen(4096)
    sock.setblocking(False)
    servers = [_addr(s) for s in args.server]
    if args.workers <= 1:
        uvloop.run(serve(sock, servers, args.log))
        return 0
    children = []
    for _ in range(args.workers):
        pid = os.fork()
        if pid == 0:
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            try:
                uvloop.run(serve(sock, servers, args.log))
            finally:
                os._exit(0)
        children.append(pid)
    sock.close()

    def stop(_sig: int, _frame: object) -> None:
        for pid in children:  # our own forked workers, by PID
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)

    signal.signal(signal.SIGTERM, stop)
    for pid in children:
        os.waitpid(pid, 0)
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["serve"]:
        return run_server(argv[1:])
    if argv[:1] == ["compare"]:
        from tests.bench import run

        rest = argv[1:]
        if not any(a == "--rows" or a.startswith("--rows=") for a in rest):
            rest = ["--rows", "http-keepalive-small,http-close-small", *rest]
        if not any(a == "--idle" or a.startswith("--idle=") for a in rest):
            rest = ["--idle", "0", *rest]
        return run.main(["--floor", *rest])
    print(__doc__.split("\n\n")[1], file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
