"""Memory per idle keep-alive connection: open N, use each once, keep them open.

The client does one request per connection (so each proxy has parsed a request and
holds whatever per-connection state it keeps between requests), then leaves the
connections idle and the proxy's RSS is read. RSS after minus RSS before, divided by
N, is the cost of an idle client connection (issue 10's row 6).
"""

from __future__ import annotations

import selectors
import socket
import time
from dataclasses import dataclass

from tests.bench import procs


@dataclass(frozen=True, slots=True)
class IdleResult:
    connections: int
    rss_before_mb: float
    rss_after_mb: float
    kb_per_conn: float
    seconds: float  # time to open and use all connections


def _request(path: str) -> bytes:
    return f"GET {path} HTTP/1.1\r\nHost: bench\r\n\r\n".encode()


def open_idle(port: int, n: int, path: str, timeout: float) -> list[socket.socket]:
    """N keep-alive connections, each having completed one request; bounded in time."""
    sel = selectors.DefaultSelector()
    socks: list[socket.socket] = []
    pending: dict[socket.socket, bytearray] = {}
    deadline = time.monotonic() + timeout
    try:
        batch = 200  # in flight at once: stays below listen backlogs
        started = 0
        while started < n or pending:
            while started < n and len(pending) < batch:
                s = socket.create_connection(("127.0.0.1", port), timeout=5)
                s.sendall(_request(path))
                s.setblocking(False)
                socks.append(s)
                pending[s] = bytearray()
                sel.register(s, selectors.EVENT_READ)
                started += 1
            if time.monotonic() > deadline:
                raise RuntimeError(f"only {len(socks) - len(pending)} of {n} connections answered")
            for key, _ in sel.select(timeout=1.0):
                s = key.fileobj
                assert isinstance(s, socket.socket)
                data = s.recv(65536)
                if not data:
                    raise RuntimeError("the proxy closed an idle keep-alive connection early")
                buf = pending[s]
                buf += data
                head, sep, body = bytes(buf).partition(b"\r\n\r\n")
                if not sep:
                    continue
                length = 0
                for line in head.split(b"\r\n")[1:]:
                    name, _, value = line.partition(b":")
                    if name.strip().lower() == b"content-length":
                        length = int(value)
                if len(body) >= length:
                    sel.unregister(s)
                    del pending[s]
        return socks
    except BaseException:
        for s in socks:
            s.close()
        raise
    finally:
        sel.close()


def measure_idle(svc: procs.Service, port: int, n: int, path: str = "/small") -> IdleResult:
    pids = svc.tree()
    before = procs.rss_bytes(pids)
    t0 = time.monotonic()
    socks = open_idle(port, n, path, timeout=60)
    took = time.monotonic() - t0
    try:
        time.sleep(0.5)  # let the proxy settle (freed buffers, pooled upstreams)
        after = procs.rss_bytes(pids)
    finally:
        for s in socks:
            s.close()
    return IdleResult(
        connections=n,
        rss_before_mb=before / 1024**2,
        rss_after_mb=after / 1024**2,
        kb_per_conn=max(after - before, 0) / 1024 / n,
        seconds=took,
    )
