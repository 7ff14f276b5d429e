"""Two balancer hosts on a bridge: network namespaces ``lbh-<pid>-<N>-a|b`` with ``eth0``
on bridge ``lbhbr<N>`` (198.19.<N>.0/24; the root namespace is .1 on the bridge, so a
client there reaches the VIP). Processes started with :meth:`Lab.run` are stopped by
PID and every link and namespace is removed by :meth:`Lab.close`, even on failure.
"""

from __future__ import annotations

import contextlib
import os
import random
import signal
import subprocess
from pathlib import Path

from tests.conftest import lbcore_env
from tests.integration.hostile.harness import children

BACKEND = """
import http.server, sys
class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def do_GET(self):
        body = sys.argv[1].encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *a):
        pass
port = int(sys.argv[2]) if len(sys.argv) > 2 else 8000
http.server.ThreadingHTTPServer(("127.0.0.1", port), H).serve_forever()
"""

LB = """\
global
    nbthread 1
defaults
    mode http
    timeout connect 1s
    timeout client 5s
    timeout server 5s
frontend fe
    bind 0.0.0.0:8080
    default_backend app
backend app
    server local 127.0.0.1:8000
"""


def ip_cmd(*args: str, check: bool = True) -> None:
    subprocess.run(["ip", *args], check=check, capture_output=True, text=True)


class Lab:
    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.net = random.randint(1, 254)
        tag = f"lbh-{os.getpid()}-{self.net}"
        self.bridge = f"lbhbr{self.net}"
        self.hosts = [f"{tag}-a", f"{tag}-b"]
        self.ports = [f"lbh{self.net}a", f"lbh{self.net}b"]
        self.vip = f"198.19.{self.net}.100"
        self.procs: list[subprocess.Popen[bytes]] = []
        try:
            ip_cmd("link", "add", self.bridge, "type", "bridge")
            ip_cmd("addr", "add", f"198.19.{self.net}.1/24", "dev", self.bridge)
            ip_cmd("link", "set", self.bridge, "up")
            for i, (ns, port) in enumerate(zip(self.hosts, self.ports, strict=True)):
                ip_cmd("netns", "add", ns)
                ip_cmd("link", "add", port, "type", "veth", "peer", "name", "eth0", "netns", ns)
                ip_cmd("link", "set", port, "master", self.bridge, "up")
                ip_cmd("-n", ns, "addr", "add", f"198.19.{self.net}.{10 + i}/24", "dev", "eth0")
                ip_cmd("-n", ns, "link", "set", "eth0", "up")
                ip_cmd("-n", ns, "link", "set", "lo", "up")
        except BaseException:
            self.close()
            raise

    def run(self, ns: str, argv: list[str], name: str) -> subprocess.Popen[bytes]:
        log = open(self.tmp / f"{name}.log", "ab")  # noqa: SIM115 (the child owns it)
        proc = subprocess.Popen(
            ["ip", "netns", "exec", ns, *argv],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=lbcore_env(),
            cwd=self.tmp,
        )
        log.close()
        self.procs.append(proc)
        return proc

    def close(self) -> None:
        kids = [c for proc in self.procs if proc.poll() is None for c in children(proc.pid)]
        for proc in self.procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.procs:
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
        for pid in kids:  # workers still finishing would keep their namespace alive
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        for port in self.ports:  # the pair goes at once, whatever holds the namespace
            ip_cmd("link", "del", port, check=False)
        for ns in self.hosts:
            ip_cmd("netns", "del", ns, check=False)
        ip_cmd("link", "del", self.bridge, check=False)
