"""``server ... maxconn`` with two workers (``lbcore run --workers 2``): the bound holds
for the server in all, as in HAProxy's one process, not per worker; queued requests
are served as slots free up in either worker; a killed worker's slots come back."""

from __future__ import annotations

import http.client
import os
import signal
import socketserver
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from tests.conftest import free_port, need_binary
from tests.integration.master.conftest import MasterProc, fd_inodes, wait_for

CONFIG = """\
global
    maxconn 2000
defaults
    mode {mode}
    timeout connect 2s
    timeout client 20s
    timeout server 20s
    timeout queue 15s
{options}
frontend web
    bind 127.0.0.1:{port}
    default_backend app
backend app
    server s1 127.0.0.1:{backend} maxconn 2
"""


class _Handler(socketserver.BaseRequestHandler):
    """GET only, keep-alive: ``/slow?d=S`` answers after S seconds."""

    server: Backend

    def handle(self) -> None:
        buf = b""
        while True:
            while b"\r\n\r\n" not in buf:
                data = self.request.recv(65536)
                if not data:
                    return
                buf += data
            head, _, buf = buf.partition(b"\r\n\r\n")
            query = parse_qs(urlsplit(head.split(b" ")[1].decode()).query)
            srv = self.server
            # Counted from the request's arrival to just *before* the answer: the
            # proxy cannot send the next request for a freed slot any earlier, so a
            # count above maxconn is the proxy's doing, never a race in here.
            with srv.lock:
                srv.inflight += 1
                srv.max_inflight = max(srv.max_inflight, srv.inflight)
            time.sleep(float(query.get("d", ["0"])[0]))
            with srv.lock:
                srv.inflight -= 1
            self.request.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nok\n")


class Backend(socketserver.ThreadingTCPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.port = self.server_address[1]
        self.lock = threading.Lock()
        self.inflight = 0
        self.max_inflight = 0
        self.thread = threading.Thread(target=self.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()


@pytest.fixture
def backend() -> Iterator[Backend]:
    b = Backend()
    yield b
    b.shutdown()
    b.server_close()


def request(port: int, path: str, out: list[object]) -> None:
    try:
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        c.request("GET", path, headers={"Connection": "close"})
        r = c.getresponse()
        r.read()
        out.append(r.status)
        c.close()
    except OSError as e:
        out.append(e)


def burst(port: int, n: int, path: str) -> list[object]:
    out: list[object] = []
    threads = [threading.Thread(target=request, args=(port, path, out)) for _ in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    return out


def upstream_owners(workers: set[int], backend_port: int) -> set[int]:
    """The workers holding a connection to the backend now (from /proc/net/tcp)."""
    inodes = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        f = line.split()
        if int(f[2].split(":")[1], 16) == backend_port and f[3] == "01":  # ESTABLISHED
            inodes.add(int(f[9]))
    owners = set()
    for pid in workers:
        try:
            if fd_inodes(pid) & inodes:
                owners.add(pid)
        except OSError:
            continue
    return owners


def start(
    tmp_path: Path,
    lbcore_master: Callable[..., MasterProc],
    backend: Backend,
    options: str = "",
    mode: str = "http",
) -> tuple[int, MasterProc]:
    port = free_port()
    cfg = tmp_path / "lb.cfg"
    cfg.write_text(CONFIG.format(port=port, backend=backend.port, options=options, mode=mode))
    m = lbcore_master("-f", str(cfg), "--workers", "2")
    wait_for(lambda: len(m.workers()) == 2, timeout=20, what="2 workers")
    wait_for(lambda: burst(port, 1, "/") == [200], timeout=20, what="lbcore serving")
    return port, m


@pytest.mark.flaky(reruns=2)  # a wall-clock bound on a shared machine
@pytest.mark.parametrize("mode", ["http", "tcp"])
def test_maxconn_bounds_the_server_over_both_workers(
    tmp_path: Path, lbcore_master: Callable[..., MasterProc], backend: Backend, mode: str
) -> None:
    """8 requests (HTTP) or connections (TCP) held 0.4 s each at once: never more than
    2 at the server, though both workers take some; all 8 served (the queued ones as
    slots free up in either worker), in about 4 waves of 2."""
    port, m = start(tmp_path, lbcore_master, backend, mode=mode)
    both = False
    for _round in range(4):  # until the kernel has handed requests to both workers
        backend.max_inflight = 0
        owners: set[int] = set()
        done = threading.Event()

        def watch(done: threading.Event = done, owners: set[int] = owners) -> None:
            while not done.is_set():
                owners.update(upstream_owners(m.workers(), backend.port))
                time.sleep(0.02)

        watcher = threading.Thread(target=watch)
        watcher.start()
        t0 = time.monotonic()
        out = burst(port, 8, "/slow?d=0.4")
        took = time.monotonic() - t0
        done.set()
        watcher.join()
        assert out == [200] * 8, out
        assert backend.max_inflight == 2, backend.max_inflight
        assert 1.5 <= took < 8.0, took  # 4 waves of 0.4 s; no queued request forgotten
        print(f"\n{mode}: 8 at once, maxconn 2, 2 workers: {took:.2f}s, {len(owners)} used")
        if len(owners) == 2:
            both = True
            break
    # Which worker holds an upstream connection shows in /proc for the HTTP adapter's
    # sockets; the TCP path's (lbcore.proxy.tcpraw) did not show there when this was
    # written, so only HTTP proves the spread (TCP shares the same accounting).
    assert both or mode == "tcp", "the kernel never handed requests to both workers"


def test_a_killed_workers_slots_come_back(
    tmp_path: Path, lbcore_master: Callable[..., MasterProc], backend: Backend
) -> None:
    port, m = start(tmp_path, lbcore_master, backend, "    option http-server-close")
    out: list[object] = []
    held = [threading.Thread(target=request, args=(port, "/slow?d=2", out)) for _ in range(2)]
    for t in held:
        t.start()
    wait_for(lambda: backend.inflight == 2, what="both slots taken")
    # No pooled idle connections (http-server-close): the workers holding a
    # connection to the server are those holding its slots.
    victims = upstream_owners(m.workers(), backend.port)
    assert victims
    for pid in victims:
        os.kill(pid, signal.SIGKILL)
    wait_for(lambda: "server slot(s): given back" in m.log(), what="the slots given back")
    for t in held:
        t.join(timeout=30)
    wait_for(lambda: backend.inflight == 0, what="the backend idle")
    wait_for(lambda: len(m.workers()) == 2, timeout=20, what="the replacement worker")
    # The whole budget is there again: 2 at a time, nothing refused.
    backend.max_inflight = 0
    assert burst(port, 6, "/slow?d=0.3") == [200] * 6
    assert backend.max_inflight == 2


def test_haproxy_with_two_threads_bounds_the_same(tmp_path: Path, backend: Backend) -> None:
    """The oracle: HAProxy 2.6 with 2 threads, same configuration, same burst: at most
    2 at the server, every request served."""
    haproxy = need_binary("haproxy")
    port = free_port()
    cfg = tmp_path / "haproxy.cfg"
    text = CONFIG.format(port=port, backend=backend.port, options="", mode="http")
    cfg.write_text(text.replace("global\n", "global\n    nbthread 2\n", 1))
    proc = subprocess.Popen([haproxy, "-db", "-f", str(cfg)], stderr=subprocess.DEVNULL)
    try:
        wait_for(lambda: burst(port, 1, "/") == [200], what="haproxy serving")
        backend.max_inflight = 0
        assert burst(port, 8, "/slow?d=0.4") == [200] * 8
        assert backend.max_inflight == 2
    finally:
        proc.terminate()
        proc.wait(timeout=10)
