"""Real checks against real servers, and HAProxy 2.6 as the oracle for the log wording."""

from __future__ import annotations

import asyncio
import http.server
import re
import socket
import subprocess
import threading
import time
from collections.abc import Iterator

import pytest

from lbcore.health.core import CheckSettings, CheckTracker, HttpCheck, Layer, transition_message
from lbcore.health.prober import probe
from tests.conftest import free_port, need_binary


class _Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        status = self.server.status  # type: ignore[attr-defined]
        self.send_response(status)
        self.end_headers()
        self.wfile.write(b"alive" if status == 200 else b"broken")

    do_OPTIONS = do_GET

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def backends() -> Iterator[dict[str, int]]:
    """web1 answers 200, web2 answers 500, web3's port is closed."""
    servers = []
    ports = {}
    for name, status in (("web1", 200), ("web2", 500)):
        srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        srv.status = status  # type: ignore[attr-defined]
        threading.Thread(target=srv.serve_forever, daemon=True).start()
        servers.append(srv)
        ports[name] = srv.server_address[1]
    ports["web3"] = free_port()
    yield ports
    for srv in servers:
        srv.shutdown()
        srv.server_close()


def _check_all(ports: dict[str, int], settings: CheckSettings) -> dict[str, str]:
    """Run checks like the master would until every server's first verdict is known."""
    messages = {}
    for name, port in ports.items():
        tracker = CheckTracker(settings)
        for i in range(settings.rise + settings.fall):
            result = asyncio.run(probe("127.0.0.1", port, settings))
            tr = tracker.record(result, float(i))
            if tr is not None:
                messages[name] = transition_message("app", name, tr, 0, 0)
                break
    return messages


def test_tcp_and_http_checks_classify_real_servers(backends):
    tcp = CheckSettings(inter=0.5)
    assert asyncio.run(probe("127.0.0.1", backends["web1"], tcp)).layer is Layer.L4OK
    refused = asyncio.run(probe("127.0.0.1", backends["web3"], tcp))
    assert refused.layer is Layer.L4CON and refused.info == "Connection refused"
    http = CheckSettings(inter=0.5, http=HttpCheck("GET", "/health"))
    ok = asyncio.run(probe("127.0.0.1", backends["web1"], http))
    assert (ok.layer, ok.code) == (Layer.L7OK, 200)
    bad = asyncio.run(probe("127.0.0.1", backends["web2"], http))
    assert (bad.layer, bad.code, bad.info) == (Layer.L7STS, 500, "Internal Server Error")


def test_check_timeout_on_a_silent_server():
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(1)  # accepts (kernel backlog) but never answers
    try:
        settings = CheckSettings(inter=0.3, http=HttpCheck())
        started = time.monotonic()
        result = asyncio.run(probe("127.0.0.1", silent.getsockname()[1], settings))
        assert result.layer is Layer.L7TOUT
        assert time.monotonic() - started < 2.0
    finally:
        silent.close()


def _haproxy_down_lines(ports: dict[str, int], tmp_path) -> dict[str, str]:
    haproxy = need_binary("haproxy")
    sink = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sink.bind(("127.0.0.1", 0))
    sink.settimeout(0.2)
    servers = "\n".join(
        f"    server {n} 127.0.0.1:{p} check inter 200 rise 2 fall 2" for n, p in ports.items()
    )
    cfg = tmp_path / "haproxy.cfg"
    cfg.write_text(
        f"global\n    log 127.0.0.1:{sink.getsockname()[1]} local0\n"
        "defaults\n    mode http\n    log global\n    timeout connect 1s\n"
        "    timeout client 5s\n    timeout server 5s\n"
        f"backend app\n    option httpchk GET /health\n{servers}\n"
        f"frontend fe\n    bind 127.0.0.1:{free_port()}\n    default_backend app\n"
    )
    proc = subprocess.Popen(
        [haproxy, "-db", "-f", str(cfg)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    lines: dict[str, str] = {}
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and len(lines) < 2:
            try:
                data = sink.recv(4096).decode()
            except TimeoutError:
                continue
            m = re.search(r"haproxy\[\d+\]: (Server app/(\w+) is DOWN, .*)$", data.strip())
            if m:
                lines[m.group(2)] = m.group(1)
    finally:
        proc.terminate()
        proc.wait(10)
        sink.close()
    return lines


def _mask(line: str) -> str:
    line = re.sub(r"check duration: \d+ms", "check duration: Nms", line)
    return re.sub(r"\d+ active and \d+ backup", "N active and N backup", line)


def test_down_messages_equal_haproxy_26(backends, tmp_path):
    ours = _check_all(
        backends, CheckSettings(inter=0.2, rise=2, fall=2, http=HttpCheck("GET", "/health"))
    )
    assert set(ours) == {"web2", "web3"}  # web1 stays UP
    theirs = _haproxy_down_lines(backends, tmp_path)
    assert set(theirs) == {"web2", "web3"}
    for name in ("web2", "web3"):
        assert _mask(ours[name]) == _mask(theirs[name])
