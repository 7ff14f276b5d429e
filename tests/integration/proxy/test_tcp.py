"""TCP mode through real sockets: bulk data intact, half-close honoured both ways."""

from __future__ import annotations

import contextlib
import hashlib
import os
import signal
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.bench.syscalls import parse_strace_c
from tests.conftest import need_binary
from tests.integration.proxy.harness import Lb, refused_port

LbFactory = Callable[..., tuple[Lb, int]]

TCP_BASE = """
global
  maxconn 100
defaults
  mode tcp
  timeout connect 1s
  timeout client 20s
  timeout server 20s
"""


class EchoServer:
    """Echoes every byte; after the client's half-close, says ``after-eof`` and closes."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.accepted = 0
        self.saw_eof = threading.Event()
        threading.Thread(target=self._run, daemon=True).start()

    def _run(self) -> None:
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            self.accepted += 1
            threading.Thread(target=self._serve, args=(c,), daemon=True).start()

    def _serve(self, c: socket.socket) -> None:
        with c, contextlib.suppress(OSError):  # a reset by the proxy ends the session
            while True:
                d = c.recv(1 << 18)
                if not d:
                    break
                c.sendall(d)
            self.saw_eof.set()
            c.sendall(b"after-eof")  # still allowed: only the client's direction ended
            c.shutdown(socket.SHUT_WR)

    @property
    def addr(self) -> str:
        return f"127.0.0.1:{self.port}"

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def echo_server() -> Iterator[EchoServer]:
    srv = EchoServer()
    yield srv
    srv.close()


def test_50mb_echoed_intact(lb: LbFactory, echo_server: EchoServer, tcp_path: str) -> None:
    _, port = lb(
        TCP_BASE + "listen echo\n  bind 127.0.0.1:{port}\n  server e {e}\n", e=echo_server.addr
    )
    total = 50 * 1024 * 1024
    block = hashlib.sha256(b"seed").digest() * 2048  # 64 KiB, not a repeating byte
    sent = hashlib.sha256()
    s = socket.create_connection(("127.0.0.1", port), timeout=20)

    def writer() -> None:
        left = total
        while left:
            piece = block[: min(left, len(block))]
            s.sendall(piece)
            sent.update(piece)
            left -= len(piece)
        s.shutdown(socket.SHUT_WR)

    t0 = time.monotonic()
    t = threading.Thread(target=writer)
    t.start()
    got = hashlib.sha256()
    n = 0
    tail = b""
    while True:
        d = s.recv(1 << 20)
        if not d:
            break
        if n + len(d) > total:
            cut = total - n
            got.update(d[:cut])
            tail += d[cut:]
            n = total
        else:
            got.update(d)
            n += len(d)
    t.join()
    elapsed = time.monotonic() - t0
    s.close()
    assert n == total and got.hexdigest() == sent.hexdigest()
    assert tail == b"after-eof"  # the server wrote after our half-close, and it arrived
    print(f"{tcp_path}: 50 MiB echoed in {elapsed:.2f}s ({2 * 50 / elapsed:.0f} MiB/s both ways)")


def test_half_close_honoured_both_ways(
    lb: LbFactory, echo_server: EchoServer, tcp_path: str
) -> None:
    _, port = lb(
        TCP_BASE + "listen echo\n  bind 127.0.0.1:{port}\n  server e {e}\n", e=echo_server.addr
    )
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    s.sendall(b"ping")
    assert s.recv(100) == b"ping"
    assert not echo_server.saw_eof.is_set()  # the proxy did not close on its own
    s.shutdown(socket.SHUT_WR)  # client → proxy FIN must reach the server as a FIN
    assert echo_server.saw_eof.wait(5)
    rest = b""
    while True:
        d = s.recv(100)
        if not d:
            break
        rest += d
    assert rest == b"after-eof"  # server → client still flowed after the half-close
    s.close()


def test_tcp_balancing_and_failed_server(lb: LbFactory, tcp_path: str) -> None:
    servers = [EchoServer() for _ in range(2)]
    try:
        _, port = lb(
            TCP_BASE + "listen echo\n  bind 127.0.0.1:{port}\n  retries 1\n  option redispatch\n"
            "  timeout connect 200ms\n  server a {a}\n  server b {b}\n"
            "  server dead 127.0.0.1:{d}\n",
            a=servers[0].addr,
            b=servers[1].addr,
            d=refused_port(),
        )
        for i in range(9):
            with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
                s.sendall(b"x%d" % i)
                assert s.recv(100) == b"x%d" % i
        # roundrobin over 3, the dead one's turns redispatched to a live server
        assert servers[0].accepted + servers[1].accepted == 9
        assert min(servers[0].accepted, servers[1].accepted) >= 3
    finally:
        for srv in servers:
            srv.close()


@pytest.mark.flaky(reruns=2)  # a wall-clock timeout on a shared machine
def test_tcp_timeout_closes_idle_pair(
    lb: LbFactory, echo_server: EchoServer, tcp_path: str
) -> None:
    _, port = lb(
        TCP_BASE + "listen echo\n  bind 127.0.0.1:{port}\n  timeout tunnel 300ms\n  server e {e}\n",
        e=echo_server.addr,
    )
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    s.sendall(b"hi")
    assert s.recv(10) == b"hi"
    t0 = time.monotonic()
    assert s.recv(10) == b""  # closed by the proxy after 300 ms of silence both ways
    assert 0.2 < time.monotonic() - t0 < 3
    s.close()


class AnswerServer:
    """Reads a decimal size and a newline, answers that many bytes, closes (as an HTTP
    server does with ``Connection: close``). With ``banner``, speaks first instead."""

    def __init__(self, banner: bytes = b"") -> None:
        self.banner = banner
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.accepted = 0
        self.concurrent = 0
        self.max_concurrent = 0
        self.lock = threading.Lock()
        threading.Thread(target=self._run, daemon=True).start()

    def _run(self) -> None:
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            self.accepted += 1
            threading.Thread(target=self._serve, args=(c,), daemon=True).start()

    def _serve(self, c: socket.socket) -> None:
        with self.lock:
            self.concurrent += 1
            self.max_concurrent = max(self.max_concurrent, self.concurrent)
        try:
            with c, contextlib.suppress(OSError):
                if self.banner:
                    c.sendall(self.banner)
                    time.sleep(0.2)  # hold the connection a little (queueing tests)
                    return
                line = b""
                while not line.endswith(b"\n"):
                    d = c.recv(100)
                    if not d:
                        return
                    line += d
                c.sendall(payload(int(line)))
        finally:
            with self.lock:
                self.concurrent -= 1

    @property
    def addr(self) -> str:
        return f"127.0.0.1:{self.port}"

    def close(self) -> None:
        self.sock.close()


def payload(n: int) -> bytes:
    block = hashlib.sha256(b"%d" % n).digest() * 64
    return (block * (n // len(block) + 1))[:n]


def read_all(s: socket.socket) -> bytes:
    out = bytearray()
    while True:
        d = s.recv(1 << 16)
        if not d:
            return bytes(out)
        out += d


def test_answer_then_close_arrives_whole(lb: LbFactory, tcp_path: str) -> None:
    """The server's answer and its FIN often arrive together: every byte must still be
    delivered before the client sees the end (small answers, and bulk ones that switch
    to splice midway)."""
    srv = AnswerServer()
    try:
        _, port = lb(TCP_BASE + "listen a\n  bind 127.0.0.1:{port}\n  server s {s}\n", s=srv.addr)
        for n in (0, 1, 100, 4096, 65535, 65536, 65537, 300_000, 3_000_000):
            with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
                s.sendall(b"%d\n" % n)
                assert read_all(s) == payload(n), n
        # and many short ones back to back (the connection-rate path)
        for i in range(200):
            with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
                s.sendall(b"%d\n" % (i * 7))
                assert read_all(s) == payload(i * 7)
    finally:
        srv.close()


def test_server_speaks_first(lb: LbFactory, tcp_path: str) -> None:
    srv = AnswerServer(banner=b"220 ready\r\n")
    try:
        _, port = lb(TCP_BASE + "listen a\n  bind 127.0.0.1:{port}\n  server s {s}\n", s=srv.addr)
        with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
            assert read_all(s) == b"220 ready\r\n"
    finally:
        srv.close()


def test_request_and_fin_sent_at_once(
    lb: LbFactory, echo_server: EchoServer, tcp_path: str
) -> None:
    """A client that writes and half-closes before the server connection exists."""
    _, port = lb(
        TCP_BASE + "listen echo\n  bind 127.0.0.1:{port}\n  server e {e}\n", e=echo_server.addr
    )
    for _ in range(20):
        with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
            s.sendall(b"all at once")
            s.shutdown(socket.SHUT_WR)
            assert read_all(s) == b"all at onceafter-eof"


def test_server_maxconn_queues_tcp_connections(lb: LbFactory, tcp_path: str) -> None:
    """maxconn 1 on the server: concurrent clients are queued, then served in turn."""
    srv = AnswerServer(banner=b"hi\n")
    try:
        _, port = lb(
            TCP_BASE + "listen a\n  bind 127.0.0.1:{port}\n  timeout queue 10s\n"
            "  server s {s} maxconn 1\n",
            s=srv.addr,
        )
        clients = [socket.create_connection(("127.0.0.1", port), timeout=10) for _ in range(4)]
        try:
            got = []
            for s in clients:  # a session ends when both sides have closed
                got.append(read_all(s))
                s.close()
            assert got == [b"hi\n"] * 4
        finally:
            for s in clients:
                s.close()
        assert srv.accepted == 4
        assert srv.max_concurrent == 1
    finally:
        srv.close()


@pytest.mark.root  # strace attaches to the worker: needs CAP_SYS_PTRACE
def test_tcp_connection_system_call_budget(lb: LbFactory) -> None:
    """A short TCP connection costs the worker about as many system calls as HAProxy
    (20 on the bench; the transport-based path made 46). Counted by ``strace -c``,
    which is exact whatever the machine's load; waits for events are left out, as
    they depend on how connections overlap."""
    strace = need_binary("strace")
    if os.geteuid() != 0:
        pytest.skip("attaching strace to the worker needs root")
    from lbcore.proxy import tcpraw

    if not tcpraw.AVAILABLE:
        pytest.skip("epoll/splice path not available on this platform")
    srv = AnswerServer()
    try:
        lbi, port = lb(TCP_BASE + "listen a\n  bind 127.0.0.1:{port}\n  server s {s}\n", s=srv.addr)
        assert lbi.proc is not None
        n = 200
        with tempfile.NamedTemporaryFile(suffix=".strace") as out:
            tracer = subprocess.Popen(
                [strace, "-c", "-f", "-o", out.name, "-p", str(lbi.proc.pid)],
                stderr=subprocess.DEVNULL,
            )
            try:
                time.sleep(1.0)  # attached before the first connection
                for _ in range(n):
                    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
                        s.sendall(b"100\n")
                        assert read_all(s) == payload(100)
                time.sleep(0.5)
            finally:
                tracer.send_signal(signal.SIGINT)
                tracer.wait(timeout=30)
            calls = parse_strace_c(Path(out.name).read_text())
    finally:
        srv.close()
    waits = {"epoll_wait", "epoll_pwait", "epoll_pwait2"}
    per = {k: c / n for k, (c, _e) in calls.items() if k not in waits}
    total = sum(per.values())
    print(f"{total:.1f} system calls per connection: {per}")
    assert total <= 22, f"{total:.1f} system calls per connection: {per}"
    assert per.get("epoll_ctl", 0) <= 2.1, per  # one registration per socket, no DELs
    assert per.get("setsockopt", 0) <= 1.05, per  # the server's TCP_NODELAY; the client
    # socket inherits it from the listener
    assert "ioctl" not in per and "getpeername" not in per and "dup" not in per, per


@pytest.mark.parametrize("mode", ["tcp", "tcp-copy", "http"])
def test_finished_connections_leave_no_cyclic_garbage(
    mode: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A finished connection is freed by reference counting: nothing is left for the
    cycle collector, whose runs were ~5 % of a TCP connection's CPU while every
    connection left its client, deadline and their parts in a reference cycle."""
    import asyncio
    import gc

    import uvloop

    from lbcore.config.parser import parse_text  # type: ignore[attr-defined]
    from lbcore.worker import Worker

    if mode == "tcp-copy":  # the transport-based TCP path
        monkeypatch.setenv("LBCORE_SPLICE", "0")
        mode = "tcp"

    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(64)

    def serve() -> None:
        with contextlib.suppress(OSError):
            while True:
                c, _ = srv.accept()
                with c:
                    c.recv(1000)
                    c.sendall(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")

    threading.Thread(target=serve, daemon=True).start()
    lst = socket.socket()
    lst.bind(("127.0.0.1", 0))
    lst.listen(64)
    lst.setblocking(False)
    port = lst.getsockname()[1]
    cfg = parse_text(
        f"defaults\n  mode {mode}\n  timeout connect 1s\n  timeout client 5s\n"
        f"  timeout server 5s\nlisten a\n  bind 127.0.0.1:{port}\n"
        f"  server s 127.0.0.1:{srv.getsockname()[1]}\n",
        "gc.cfg",
    )
    loop = uvloop.new_event_loop()
    worker = Worker(cfg, loop)

    async def clients(n: int) -> None:
        for _ in range(n):
            r, w = await asyncio.open_connection("127.0.0.1", port)
            w.write(b"GET / HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")
            assert (await asyncio.wait_for(r.read(), 5)).endswith(b"ok")
            w.close()
        await asyncio.sleep(0.1)  # the proxy's side of the last ones closes

    try:
        loop.run_until_complete(worker.start({("127.0.0.1", port): lst}))
        loop.run_until_complete(clients(5))  # warm: imports, pools, first-use caches
        gc.collect()
        gc.set_debug(gc.DEBUG_SAVEALL)
        try:
            loop.run_until_complete(clients(50))
            gc.collect()
            names = sorted({type(o).__name__ for o in gc.garbage})
            assert len(gc.garbage) < 50, f"{len(gc.garbage)} objects in cycles: {names}"
        finally:
            gc.set_debug(0)
            gc.garbage.clear()
    finally:
        worker.stop_now()
        loop.run_until_complete(asyncio.sleep(0))
        if worker.poller is not None:
            worker.poller.shutdown()
        loop.close()
        lst.close()
        srv.close()


def test_held_connection_closed_before_admission_frees_nothing(
    lb: LbFactory, tcp_path: str
) -> None:
    """Frontend maxconn 1: a connection held unadmitted that goes away must not take
    the slot when it frees up (else every later client waits forever)."""
    srv = AnswerServer()
    try:
        _, port = lb(
            TCP_BASE + "listen a\n  bind 127.0.0.1:{port}\n  maxconn 1\n  server s {s}\n",
            s=srv.addr,
        )
        first = socket.create_connection(("127.0.0.1", port), timeout=5)
        first.sendall(b"5\n")
        assert read_all(first) == payload(5)  # admitted, answered; still open on our side
        held = socket.create_connection(("127.0.0.1", port), timeout=5)
        time.sleep(0.3)  # accepted and held at maxconn by now
        held.close()
        time.sleep(0.3)
        first.close()  # the slot frees: the held one (gone) is let in, and must leave
        for n in (7, 9):
            with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
                s.sendall(b"%d\n" % n)
                assert read_all(s) == payload(n)
    finally:
        srv.close()
