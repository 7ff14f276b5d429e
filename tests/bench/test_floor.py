"""The floor forwarder (tests/bench/floor.py) frames, pools and logs as it claims.

Its figures are only worth comparing if it is honest: every response arrives whole and
unchanged on keep-alive connections, ``Connection: close`` closes the client but not the
server connection (the next client reuses it), and ``--log`` sends one line per request.
The last test is the CI smoke of ``python -m tests.bench.floor compare`` (about 10 s).
"""

from __future__ import annotations

import http.client
import json
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from tests.bench.procs import Service
from tests.bench.run import FLOOR_SIDES, SIDES
from tests.conftest import REPO, free_port, lbcore_env, need_binary

pytestmark = [pytest.mark.bench, pytest.mark.timeout(60)]

BIG = bytes(range(256)) * 1024  # 256 KiB: more than one read, exercises flow control


class Backend(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), Handler)
        self.connections = 0
        self.requests: list[tuple[str, str | None]] = []


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: Backend

    def setup(self) -> None:
        super().setup()
        self.server.connections += 1

    def do_GET(self) -> None:
        self.server.requests.append((self.path, self.headers.get("Connection")))
        body = BIG if self.path == "/big" else f"you asked for {self.path}\n".encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def backend() -> Iterator[Backend]:
    srv = Backend()
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    yield srv
    srv.shutdown()
    srv.server_close()


def start_floor(backend: Backend, *extra: str) -> tuple[Service, int]:
    port = free_port()
    argv = [sys.executable, "-m", "tests.bench.floor", "serve", "--bind", f"127.0.0.1:{port}"]
    argv += ["--server", f"127.0.0.1:{backend.server_address[1]}", *extra]
    svc = Service("floor", argv, [port], env=lbcore_env())
    svc.start()
    return svc, port


def get(conn: http.client.HTTPConnection, path: str, close: bool = False) -> bytes:
    conn.request("GET", path, headers={"Connection": "close"} if close else {})
    resp = conn.getresponse()
    assert resp.status == 200
    # the client is told whether the floor keeps its connection (the server said keep-alive)
    assert resp.getheader("Connection") == ("close" if close else None)
    return resp.read()


@pytest.mark.parametrize("extra", [(), ("--batch",)], ids=["plain", "batch"])
def test_keep_alive_and_close_reuse_one_server_connection(
    backend: Backend, extra: tuple[str, ...]
) -> None:
    """(``--batch``, the systime experiment, writes a loop turn's data together: the same
    bytes must arrive, and a closing client's answer before the close.)"""
    svc, port = start_floor(backend, *extra)
    try:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        for i in range(5):
            assert get(conn, f"/k{i}") == f"you asked for /k{i}\n".encode()
        assert get(conn, "/big") == BIG
        conn.close()
        for i in range(5):  # a new client connection per request
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            assert get(c, f"/c{i}", close=True) == f"you asked for /c{i}\n".encode()
            assert c.sock is None or c.sock.recv(1) == b""  # the floor closed it
            c.close()
    finally:
        svc.stop()
    assert len(backend.requests) == 11
    # the client's Connection: close was not forwarded, so the server connection lived on
    assert all(conn_field is None for _path, conn_field in backend.requests)
    assert backend.connections == 1


@pytest.mark.parametrize(
    "extra", [(), ("--batch", "--burn-us", "5", "--burn-kb", "16")], ids=["plain", "burn"]
)
def test_log_mode_sends_one_line_per_request(backend: Backend, extra: tuple[str, ...]) -> None:
    sink = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sink.bind(("127.0.0.1", 0))
    sink.settimeout(5)
    svc, port = start_floor(backend, "--log", f"127.0.0.1:{sink.getsockname()[1]}", *extra)
    try:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        get(conn, "/one")
        get(conn, "/two?x=1", close=True)
        lines = [sink.recv(4096).decode() for _ in range(2)]
    finally:
        svc.stop()
        sink.close()
    assert lines[0].startswith("<134>")
    assert " fe_http be_http/web1 " in lines[0]
    for line, path in zip(lines, ("/one", "/two?x=1"), strict=True):
        assert f'"GET {path} HTTP/1.1"' in line
        assert " 200 " in line
        size = int(line.split(" 200 ", 1)[1].split()[0])
        assert size > len(f"you asked for {path}\n")  # head + body as sent to the client


def test_a_dead_server_closes_the_client() -> None:
    port = free_port()
    dead = free_port()
    argv = [sys.executable, "-m", "tests.bench.floor", "serve", "--bind", f"127.0.0.1:{port}"]
    argv += ["--server", f"127.0.0.1:{dead}"]
    svc = Service("floor", argv, [port], env=lbcore_env())
    svc.start()
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
            s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            assert s.recv(100) == b""
        assert svc.proc is not None and svc.proc.poll() is None
    finally:
        svc.stop()


@pytest.mark.timeout(120)
def test_compare_runs_the_floor_beside_both_proxies(tmp_path: Path) -> None:
    """``python -m tests.bench.floor compare`` in its shortest form: the floor sides are
    measured and reported on both rows, and break no connection (wrk counts errors)."""
    for tool in ("haproxy", "nginx", "wrk"):
        need_binary(tool)
    out_json = tmp_path / "floor.json"
    argv = [sys.executable, "-m", "tests.bench.floor", "compare", "--short", "--rounds", "1"]
    done = subprocess.run(
        [*argv, "--duration", "1", "--json", str(out_json)],
        cwd=REPO,
        env=lbcore_env(),
        capture_output=True,
        text=True,
        timeout=110,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    report = json.loads(out_json.read_text())
    assert report["meta"]["floor"] is True and report["idle"] is None
    rows = {r["name"]: r for r in report["rows"]}
    assert set(rows) == {"http-keepalive-small", "http-close-small"}
    for name, r in rows.items():
        assert tuple(r["sides"]) == SIDES + FLOOR_SIDES
        for side in SIDES + FLOOR_SIDES:
            med = r["sides"][side]["median"]
            assert med["rps"] > 0 and med["cpu_per_100k"] > 0, (name, side, med)
        for side in FLOOR_SIDES:
            med = r["sides"][side]["median"]
            # a floor that breaks connections (wrk: read errors) would be no floor
            assert med["errors"] <= med["requests"] // 100, (name, side, med)
            assert r["ratios"][side]["throughput"]["median"] > 0
            assert r["ratios"][side]["cpu_per_100k"]["median"] > 0
    for side in FLOOR_SIDES:
        assert f"{side}/H " in done.stdout
    assert "CPU per request, user + system" in done.stdout
