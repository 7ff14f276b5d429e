"""A real HAProxy 2.6 with an admin socket over real HTTP backends: the oracle that the
collection's modules must work against unchanged (and lbcore must answer alike)."""

from __future__ import annotations

import http.server
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from tests.conftest import free_port, need_binary


class SlowHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        if self.path.startswith("/slow"):
            time.sleep(float(self.path.rsplit("/", 1)[-1] or 2))
        body = self.server.name.encode()  # type: ignore[attr-defined]
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@dataclass
class Oracle:
    port: int
    socket: str
    servers: dict[str, int]


def start_backends(names: list[str]) -> tuple[dict[str, int], list[http.server.HTTPServer]]:
    ports, servers = {}, []
    for name in names:
        srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), SlowHandler)
        srv.name = name  # type: ignore[attr-defined]
        srv.daemon_threads = True
        threading.Thread(target=srv.serve_forever, daemon=True).start()
        ports[name] = srv.server_address[1]
        servers.append(srv)
    return ports, servers


def haproxy(tmp: Path) -> Iterator[Oracle]:
    binary = need_binary("haproxy")
    ports, servers = start_backends(["web1", "web2", "web3"])
    port = free_port()
    sock = tmp / "admin.sock"
    lines = "\n".join(f"    server {n} 127.0.0.1:{p} check inter 200" for n, p in ports.items())
    cfg = tmp / "haproxy.cfg"
    cfg.write_text(
        f"global\n    stats socket {sock} mode 600 level admin\n"
        "defaults\n    mode http\n    timeout connect 1s\n    timeout client 30s\n"
        "    timeout server 30s\n"
        f"frontend fe\n    bind 127.0.0.1:{port}\n    default_backend app\n"
        f"backend app\n{lines}\n"
    )
    proc = subprocess.Popen(
        [binary, "-db", "-f", str(cfg)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        deadline = time.monotonic() + 10
        while not sock.exists():
            assert time.monotonic() < deadline, "haproxy did not create its socket"
            assert proc.poll() is None, "haproxy exited"
            time.sleep(0.05)
        yield Oracle(port, str(sock), ports)
    finally:
        proc.terminate()
        proc.wait(10)
        for srv in servers:
            srv.shutdown()
            srv.server_close()
