"""Faults with nothing lost that could have been saved (issue 11, item 4):
a server dying mid-response, connect failures, non-idempotent requests, a rolling
drain under load, 20 reloads under load. (The VRRP failover under load:
test_failover.py.)
"""

from __future__ import annotations

import re
import socket
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import free_port
from tests.integration.hostile.harness import Proc, exchange
from tests.integration.proxy.harness import Backend


class ScriptedServer:
    """A raw HTTP server whose answer to each request is chosen by its method and path."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port: int = self.sock.getsockname()[1]
        self.heads: list[bytes] = []  # request lines received, in order
        self.lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def addr(self) -> str:
        return f"127.0.0.1:{self.port}"

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        buf = b""
        with conn:
            while True:
                while b"\r\n\r\n" not in buf:
                    try:
                        d = conn.recv(65536)
                    except OSError:
                        return
                    if not d:
                        return
                    buf += d
                head, _, buf = buf.partition(b"\r\n\r\n")
                line = head.split(b"\r\n", 1)[0]
                with self.lock:
                    self.heads.append(line)
                if line.startswith(b"GET /crash"):
                    # head and a tenth of the body, then the process "dies": RST
                    conn.sendall(
                        b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n" + b"x" * 10000
                    )
                    time.sleep(0.1)
                    conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\0\0\0\0\0\0\0")
                    return
                if line.startswith(b"POST"):
                    return  # read the request, then vanish without an answer
                conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")

    def close(self) -> None:
        self.sock.close()


BASE = """\
global
    nbthread 1
    log stdout format raw local0

defaults
    mode http
    log global
    option httplog
    timeout connect 500ms
    timeout client 5s
    timeout server 5s
    retries 2
    option redispatch

frontend fe
    bind 127.0.0.1:{port}
    default_backend app

backend app
{servers}
"""


@pytest.fixture
def scripted() -> Iterator[ScriptedServer]:
    s = ScriptedServer()
    yield s
    s.close()


def _start(tmp: Path, servers: str) -> Proc:
    return Proc("lbcore", BASE.replace("{servers}", servers), tmp)


def test_server_killed_mid_response(tmp_path: Path, scripted: ScriptedServer) -> None:
    proc = _start(tmp_path, f"    server s1 {scripted.addr}")
    try:
        got = exchange(proc.port, b"GET /crash HTTP/1.1\r\nHost: h\r\n\r\n", wait=5)
        head, _, body = got.raw.partition(b"\r\n\r\n")
        assert got.status == 200 and b"content-length: 100000" in head.lower()
        assert got.closed, "a truncated response must end with the connection"
        assert 10000 <= len(body) < 100000  # what the server sent, no more, no padding
        time.sleep(0.3)
        lines = [ln for ln in proc.log().splitlines() if "/crash" in ln]
        assert lines, proc.log()
        # httplog: ... status bytes - - TERM ... ; the server aborted during the data phase
        assert re.search(r" 200 \d+ - - SD", lines[-1]), lines[-1]
    finally:
        proc.stop()


def test_connect_failures_are_retried_and_redispatched(tmp_path: Path) -> None:
    web = Backend("web1")
    dead = free_port()  # nothing listens: connection refused
    # retries 1: the one retry is the redispatch (HAProxy's "last retry elsewhere"), so
    # no request waits out the pause between two attempts on the same dead server
    proc = _start(
        tmp_path,
        f"    balance roundrobin\n    retries 1\n    server bad 127.0.0.1:{dead}\n"
        f"    server good {web.addr}",
    )
    try:
        before = web.requests  # the harness's readiness probe
        statuses = Counter(
            exchange(
                proc.port, b"GET / HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n", wait=5
            ).status
            for _ in range(40)
        )
        assert statuses == {200: 40}, statuses
        assert web.requests - before == 40
    finally:
        proc.stop()
        web.close()


def test_non_idempotent_request_is_never_sent_twice(
    tmp_path: Path, scripted: ScriptedServer
) -> None:
    proc = _start(tmp_path, f"    server s1 {scripted.addr}")
    try:
        with socket.create_connection(("127.0.0.1", proc.port), timeout=5) as c:
            # a GET leaves a keep-alive server connection in lbcore's pool...
            c.sendall(b"GET /a HTTP/1.1\r\nHost: h\r\n\r\n")
            assert c.recv(4096).endswith(b"ok")
            # ...then a body-less POST reuses it and the server vanishes without a word
            c.sendall(b"POST /order HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\n\r\n")
            answer = c.recv(4096)
        assert answer.startswith(b"HTTP/1.1 502"), answer[:40]
        time.sleep(0.3)
        posts = [h for h in scripted.heads if h.startswith(b"POST")]
        assert posts == [b"POST /order HTTP/1.1"], scripted.heads
    finally:
        proc.stop()


def test_idempotent_request_is_replayed_on_a_stale_pooled_connection(
    tmp_path: Path, scripted: ScriptedServer
) -> None:
    """The control: a GET on a pooled connection the server closed is replayed once."""
    proc = _start(tmp_path, f"    server s1 {scripted.addr}")
    try:
        assert exchange(proc.port, b"GET /a HTTP/1.1\r\nHost: h\r\n\r\n", wait=0.5).status == 200
        got = exchange(proc.port, b"GET /b HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n")
        assert got.status == 200
    finally:
        proc.stop()


# --- a rolling drain under load --------------------------------------------------------

DRAIN = """\
global
    stats socket {tmp}/admin.sock level admin

defaults
    mode http
    timeout connect 1s
    timeout client 10s
    timeout server 10s
    retries 3
    option redispatch

frontend fe
    bind 127.0.0.1:{port}
    default_backend app

backend app
    balance roundrobin
{servers}
"""


def _cli(path: Path, command: str) -> str:
    with socket.socket(socket.AF_UNIX) as s:
        s.settimeout(5)
        s.connect(str(path))
        s.sendall(command.encode() + b"\n")
        out = b""
        while d := s.recv(65536):
            out += d
        return out.decode()


def _load(port: int, stop: threading.Event, results: Counter[str]) -> None:
    """Keep-alive GETs until ``stop``; reconnect when the proxy closes (not an error)."""
    s: socket.socket | None = None
    while not stop.is_set():
        try:
            if s is None:
                s = socket.create_connection(("127.0.0.1", port), timeout=5)
            s.sendall(b"GET /?x HTTP/1.1\r\nHost: h\r\n\r\n")
            buf = b""
            while b"\r\n\r\n" not in buf:
                d = s.recv(65536)
                if not d:
                    raise ConnectionError("closed before an answer")
                buf += d
            head, _, rest = buf.partition(b"\r\n\r\n")
            m = re.search(rb"(?i)content-length: (\d+)", head)
            need = int(m.group(1)) if m else 0
            while len(rest) < need:
                d = s.recv(65536)
                if not d:
                    raise ConnectionError("body cut")
                rest += d
            results[head.split(b" ", 2)[1].decode()] += 1
            if b"connection: close" in head.lower():
                s.close()
                s = None
        except (OSError, ConnectionError) as e:
            results[f"error: {e}"] += 1
            if s is not None:
                s.close()
            s = None
    if s is not None:
        s.close()


@pytest.mark.timeout(90)
def test_rolling_drain_under_load_loses_nothing(tmp_path: Path) -> None:
    webs = [Backend(f"web{i}") for i in range(1, 4)]
    servers = "\n".join(f"    server s{i} {w.addr}" for i, w in enumerate(webs, 1))
    proc = Proc(
        "lbcore", DRAIN.replace("{tmp}", str(tmp_path)).replace("{servers}", servers), tmp_path
    )
    stop = threading.Event()
    results: Counter[str] = Counter()
    threads = [
        threading.Thread(target=_load, args=(proc.port, stop, results), daemon=True)
        for _ in range(8)
    ]
    sock = tmp_path / "admin.sock"
    try:
        for t in threads:
            t.start()
        time.sleep(0.5)
        for i, web in enumerate(webs, 1):
            assert _cli(sock, f"set server app/s{i} state drain") == "\n"
            time.sleep(0.4)
            assert _cli(sock, f"set server app/s{i} state maint") == "\n"
            before = web.requests
            time.sleep(0.6)  # in maintenance: no new request reaches it
            assert web.requests - before <= 8, "requests kept going to a server in maint"
            assert _cli(sock, f"set server app/s{i} state ready") == "\n"
            time.sleep(0.4)
    finally:
        stop.set()
        for t in threads:
            t.join(10)
        proc.stop()
        for web in webs:
            web.close()
    total = sum(results.values())
    print(
        f"\nrolling drain of 3 servers under 8 keep-alive clients: {total} requests, "
        f"{dict(results)}"
    )
    assert total > 300
    assert set(results) == {"200"}, results


# --- 20 reloads under load ----------------------------------------------------------------

RELOAD = """\
global
    hard-stop-after 10s

defaults
    mode http
    timeout connect 1s
    timeout client 10s
    timeout server 10s

frontend fe
    bind 127.0.0.1:{port}
    http-response set-header X-Gen {gen}
    default_backend app

backend app
{servers}
"""


def _generation(port: int) -> str | None:
    got = exchange(port, b"GET / HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n", wait=2)
    m = re.search(rb"(?i)\r\nx-gen: (\d+)", got.raw)
    return m.group(1).decode() if m else None


@pytest.mark.timeout(150)
def test_twenty_reloads_under_load_fail_nothing(tmp_path: Path) -> None:
    """20 SIGUSR2 reloads while 16 connections stay busy (half keep-alive, half a new
    connection per request; tests/integration/master/load.py): 0 failed requests.
    The first ten follow each other once the previous generation answers (an operator's
    or Ansible's pace); the last ten come back to back, 0.25 s apart — faster than a
    generation settles — and the last generation must still end up serving."""
    import signal as sig

    from tests.integration.master.load import Load, Prober

    webs = [Backend(f"web{i}") for i in range(1, 3)]
    servers = "\n".join(f"    server s{i} {w.addr}" for i, w in enumerate(webs, 1))
    text = RELOAD.replace("{servers}", servers)
    proc = Proc("lbcore", text.replace("{gen}", "1"), tmp_path)
    try:
        with (
            Prober("127.0.0.1", proc.port) as probe,
            Load("127.0.0.1", proc.port, connections=16, duration=90) as load,
        ):
            time.sleep(0.5)
            t0 = time.monotonic()
            for gen in range(2, 22):
                proc.cfg.write_text(
                    text.replace("{gen}", str(gen)).replace("{port}", str(proc.port))
                )
                proc.proc.send_signal(sig.SIGUSR2)
                if gen > 11 and gen < 21:
                    time.sleep(0.25)
                    continue
                deadline = time.monotonic() + 20
                while _generation(proc.port) != str(gen):
                    assert time.monotonic() < deadline, f"generation {gen} never answered"
                    time.sleep(0.05)
            took = time.monotonic() - t0
            time.sleep(0.5)
            result = load.stop()
        print(
            f"\n20 reloads in {took:.1f}s under 16 connections: {result.ok} ok, "
            f"{result.failed} failed, {result.retried} retried (a reused idle keep-alive "
            f"closed before any byte), {probe.refused} refused connects of {probe.attempts}"
        )
        assert result.failed == 0, result.errors
        assert probe.refused == 0
        assert result.ok > 500
    finally:
        proc.stop()
        for web in webs:
            web.close()
