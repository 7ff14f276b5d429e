"""Limits: oversized heads, slow clients, idle keep-alives, full servers, many idle
connections. Each limit is tried by a client that breaks it, next to clients that do not.

Figures printed (run with ``-s``): the slowloris cut time, the good clients' latency,
the queue timeout, and the resident memory of lbcore with 5,000 idle connections.
"""

from __future__ import annotations

import contextlib
import os
import resource
import socket
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.conftest import need_binary
from tests.integration.hostile.harness import Proc, RecordingBackend, exchange
from tests.integration.proxy.harness import Backend

Start = Callable[..., tuple[Proc, RecordingBackend]]


@pytest.fixture
def start(tmp_path: Path) -> Iterator[Start]:
    """``start(kind, config_template)``: a recording backend and a proxy in front of it."""
    made: list[tuple[Proc, RecordingBackend]] = []

    def run(kind: str, template: str, **fmt: object) -> tuple[Proc, RecordingBackend]:
        if kind == "haproxy":
            need_binary("haproxy")
        rec = RecordingBackend()
        try:
            proc = Proc(
                kind, template.replace("{rec}", rec.addr).format(port="{port}", **fmt), tmp_path
            )
        except BaseException:
            rec.close()
            raise
        made.append((proc, rec))
        return proc, rec

    try:
        yield run
    finally:
        for proc, rec in made:
            proc.stop()
            rec.close()


# --- request line and header section over tune.bufsize / tune.http.maxhdr ------------

SIZES = """\
global
    tune.bufsize 4096
    tune.http.maxhdr 10

defaults
    mode http
    timeout connect 1s
    timeout client 5s
    timeout server 5s
    timeout http-request 2s

frontend fe
    bind 127.0.0.1:{port}
    default_backend rec

backend rec
    server r {rec}
"""


def _fields(n: int) -> bytes:
    return b"".join(b"X-%d: v\r\n" % i for i in range(n))


# bufsize 4096 - maxrewrite 1024 = 3072 bytes of head; HAProxy refuses the same sizes
# but always with 400, and counts one field more against maxhdr than lbcore does.
SIZE_CASES = [
    ("uri-fits", b"GET /" + b"a" * 2900 + b" HTTP/1.1\r\nHost: h\r\n\r\n", 200, 200),
    ("uri-over-room", b"GET /" + b"a" * 3100 + b" HTTP/1.1\r\nHost: h\r\n\r\n", 414, 400),
    ("uri-over-bufsize", b"GET /" + b"a" * 5000 + b" HTTP/1.1\r\nHost: h\r\n\r\n", 414, 400),
    (
        "field-over-room",
        b"GET / HTTP/1.1\r\nHost: h\r\nX-A: " + b"b" * 5000 + b"\r\n\r\n",
        431,
        400,
    ),
    ("fields-at-maxhdr", b"GET / HTTP/1.1\r\nHost: h\r\n" + _fields(9) + b"\r\n", 200, 400),
    ("fields-over-maxhdr", b"GET / HTTP/1.1\r\nHost: h\r\n" + _fields(10) + b"\r\n", 431, 400),
    ("fields-far-over", b"GET / HTTP/1.1\r\nHost: h\r\n" + _fields(200) + b"\r\n", 431, 400),
]


@pytest.mark.parametrize("kind", ["lbcore", "haproxy"])
def test_oversized_heads(kind: str, start: Start) -> None:
    proc, rec = start(kind, SIZES)
    for name, raw, lb_status, ha_status in SIZE_CASES:
        time.sleep(0.05)
        rec.clear()
        got = exchange(proc.port, raw, wait=1.0)
        want = lb_status if kind == "lbcore" else ha_status
        assert got.status == want, (kind, name, got.raw[:100])
        time.sleep(0.1)
        if want == 200:
            assert rec.total().count(b"\r\n\r\n") == 1, (kind, name)
        else:
            assert got.closed and rec.total() == b"", (kind, name)


# --- slowloris: a header byte per second, cut at timeout http-request ----------------

TIMEOUTS = """\
global
    maxconn 20000
    nbthread 1

defaults
    mode http
    timeout connect 1s
    timeout client 10s
    timeout server 10s
    timeout http-request {http_request}
    timeout http-keep-alive {keep_alive}

frontend fe
    bind 127.0.0.1:{port}
    maxconn 20000
    default_backend rec

backend rec
    server r {rec}
"""


def _slowloris(port: int, results: list[tuple[float, bytes]], stop: threading.Event) -> None:
    """One header byte per second until the proxy answers or closes."""
    line = b"GET / HTTP/1.1\r\nHost: h\r\nX-Slow: " + b"a" * 60
    t0 = time.monotonic()
    with socket.create_connection(("127.0.0.1", port), timeout=1.0) as s:
        got = b""
        for byte in line:
            if stop.is_set():
                break
            try:
                s.sendall(bytes((byte,)))
            except OSError:
                break
            try:
                d = s.recv(4096)
                got += d
                if not d:
                    break
            except TimeoutError:
                continue  # one second without an answer: send the next byte
            except OSError:
                break
        results.append((time.monotonic() - t0, got))


def _good_client(port: int, n: int) -> list[float]:
    """``n`` requests on one keep-alive connection; their latencies."""
    lat = []
    with socket.create_connection(("127.0.0.1", port), timeout=5.0) as s:
        for i in range(n):
            t = time.monotonic()
            s.sendall(b"GET /good/%d HTTP/1.1\r\nHost: h\r\n\r\n" % i)
            buf = b""
            while not buf.endswith(b"ok"):
                d = s.recv(4096)
                assert d, "closed on a well-behaved client"
                buf += d
            assert buf.startswith(b"HTTP/1.1 200"), buf[:60]
            lat.append(time.monotonic() - t)
            time.sleep(0.05)
    return lat


@pytest.mark.flaky(reruns=2)
@pytest.mark.timeout(60)
def test_slowloris_cut_at_http_request_timeout_others_unaffected(start: Start) -> None:
    # 2.5 s: half-way between two bytes, so the cut never races a byte in flight (a
    # close with unread input turns into a reset, which may swallow the 408)
    proc, rec = start("lbcore", TIMEOUTS, http_request="2500ms", keep_alive="5s")
    slow: list[tuple[float, bytes]] = []
    stop = threading.Event()
    attackers = [
        threading.Thread(target=_slowloris, args=(proc.port, slow, stop), daemon=True)
        for _ in range(20)
    ]
    for t in attackers:
        t.start()
    try:
        time.sleep(0.5)  # the attackers are in
        with ThreadPoolExecutor(100) as pool:
            futures = [pool.submit(_good_client, proc.port, 10) for _ in range(100)]
            latencies = sorted(x for f in futures for x in f.result(timeout=30))
    finally:
        for t in attackers:
            t.join(10)  # each is cut at timeout http-request (2.5 s from its connect)
        stop.set()  # only if the proxy never cut them
    assert len(latencies) == 1000
    p99 = latencies[int(len(latencies) * 0.99)]
    print(
        f"\nslowloris: 20 attackers cut after {sorted(d for d, _ in slow)[0]:.2f}"
        f"..{max(d for d, _ in slow):.2f}s; 100 good clients: 1000 requests, "
        f"p50 {latencies[500] * 1000:.1f} ms, p99 {p99 * 1000:.1f} ms"
    )
    assert len(slow) == 20
    for took, got in slow:
        assert got.startswith(b"HTTP/1.1 408 Request Time-out\r\n"), (took, got[:60])
        assert 2.3 <= took <= 5.0, took  # timeout http-request 2.5s (+ scheduling slack)
    assert p99 < 1.0, "well-behaved clients were slowed down by the slow ones"
    assert b"X-Slow" not in rec.total()  # nothing of a slow request reached the server


@pytest.mark.flaky(reruns=2)
def test_idle_keep_alive_cut_at_http_keep_alive(start: Start) -> None:
    proc, _rec = start("lbcore", TIMEOUTS, http_request="5s", keep_alive="1s")
    with socket.create_connection(("127.0.0.1", proc.port), timeout=10) as s:
        s.sendall(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n")
        buf = b""
        while not buf.endswith(b"ok"):
            buf += s.recv(4096)
        t0 = time.monotonic()
        rest = s.recv(4096)  # blocks until the proxy closes
        idle = time.monotonic() - t0
    assert rest == b"", "an idle keep-alive is closed silently (no 408), as HAProxy does"
    print(f"\nidle keep-alive closed after {idle:.2f}s (timeout http-keep-alive 1s)")
    assert 0.8 <= idle <= 3.0  # well before timeout http-request (5s)


# --- maxconn: queued, then 503 at timeout queue ----------------------------------------

# One worker: a server's maxconn is counted per worker process (so with N workers a
# server may get N x maxconn); HAProxy counts it per process, across its threads.
QUEUE = """\
global
    nbthread 1

defaults
    mode http
    timeout connect 1s
    timeout client 10s
    timeout server 10s
    timeout queue {queue}

frontend fe
    bind 127.0.0.1:{port}
    default_backend app

backend app
    server s1 {addr} maxconn 1
"""


def _get(port: int, path: str) -> tuple[int, float]:
    t = time.monotonic()
    got = exchange(
        port, b"GET %s HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n" % path.encode(), wait=10
    )
    return got.status or 0, time.monotonic() - t


@pytest.mark.flaky(reruns=2)
@pytest.mark.timeout(60)
def test_server_maxconn_queues_then_503_at_timeout_queue(tmp_path: Path) -> None:
    web = Backend("web1")
    proc = None
    try:
        proc = Proc("lbcore", QUEUE.replace("{addr}", web.addr).replace("{queue}", "1s"), tmp_path)
        with ThreadPoolExecutor(3) as pool:
            holder = pool.submit(_get, proc.port, "/slow?d=3")
            time.sleep(0.3)  # s1's one slot is taken
            queued = pool.submit(_get, proc.port, "/")
            status, waited = queued.result(timeout=15)
            assert holder.result(timeout=15)[0] == 200
        print(f"\nqueued request answered {status} after {waited:.2f}s (timeout queue 1s)")
        assert status == 503
        assert 0.8 <= waited <= 2.5
        assert web.max_inflight == 1  # maxconn held: the queued one never reached s1
    finally:
        if proc is not None:
            proc.stop()
        web.close()


@pytest.mark.timeout(60)
def test_server_maxconn_queue_is_served_when_a_slot_frees(tmp_path: Path) -> None:
    web = Backend("web1")
    proc = None
    try:
        proc = Proc("lbcore", QUEUE.replace("{addr}", web.addr).replace("{queue}", "5s"), tmp_path)
        with ThreadPoolExecutor(8) as pool:
            futures = [pool.submit(_get, proc.port, "/slow?d=0.2") for _ in range(8)]
            results = [f.result(timeout=20) for f in futures]
        assert [s for s, _ in results] == [200] * 8
        assert web.max_inflight == 1
        assert max(t for _, t in results) >= 1.4  # they really waited in turn
    finally:
        if proc is not None:
            proc.stop()
        web.close()


# --- memory with 5,000 idle connections ------------------------------------------------

IDLE_CONNS = int(os.environ.get("LBCORE_HOSTILE_IDLE_CONNS", "5000"))


@contextlib.contextmanager
def _nofile(n: int) -> Iterator[None]:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = min(max(n, soft), hard)
    if want < n:
        pytest.skip(f"RLIMIT_NOFILE hard limit {hard} is below {n}")
    resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


@pytest.mark.timeout(120)
def test_memory_bounded_with_5000_idle_connections(start: Start) -> None:
    n = IDLE_CONNS
    socks: list[socket.socket] = []
    with _nofile(2 * n + 1000):  # lbcore inherits the raised limit
        proc, _rec = start("lbcore", TIMEOUTS, http_request="60s", keep_alive="60s")
        try:
            for _ in range(5):  # warm up: one real request, pools and imports done
                assert (
                    exchange(
                        proc.port, b"GET / HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n"
                    ).status
                    == 200
                )
            before = proc.rss_kib()
            t0 = time.monotonic()
            for i in range(n):
                s = socket.create_connection(("127.0.0.1", proc.port), timeout=5)
                if i % 2:  # half have sent part of a request head, half nothing yet
                    s.sendall(b"GET / HTTP/1.1\r\nHost: h\r\n")
                socks.append(s)
            time.sleep(1.0)
            after = proc.rss_kib()
            # the proxy still answers while holding them all
            assert (
                exchange(
                    proc.port, b"GET / HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n"
                ).status
                == 200
            )
            per_conn = (after - before) * 1024 / n
            print(
                f"\nidle connections: {n} opened in {time.monotonic() - t0:.1f}s; lbcore RSS "
                f"{before / 1024:.1f} MiB -> {after / 1024:.1f} MiB "
                f"({per_conn / 1024:.2f} KiB per connection)"
            )
            assert per_conn < 16 * 1024, "more than 16 KiB per idle connection"
            assert after < 256 * 1024, "lbcore (master + worker) above 256 MiB"
        finally:
            for s in socks:
                s.close()
