"""Test harness for the proxy: real backend servers, a real worker process, raw clients.

* ``Backend``: a stdlib ``ThreadingHTTPServer`` on 127.0.0.1 (independent of lbcore's
  own HTTP code) that counts accepted connections and concurrent requests, and serves
  ``/`` (a JSON echo of what it received), ``/slow?d=S``, ``/big?n=N`` (a chunked
  response of N bytes), ``/status/NNN[?sc=COOKIE]`` (that status, a small text body, and
  ``Set-Cookie: COOKIE`` when asked), uploads of any framing (answers their length and
  SHA-256) and ``/ws`` (a WebSocket-style upgrade echoing bytes upper-cased).
* ``DeadServer``: accepts and closes at once (a crashed application).
* ``Lb``: binds listening sockets on free ports as the master will, then runs
  ``run_worker`` in a child process (``runner.py``) on haproxy-style config text.
"""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import signal
import socket
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from tests.conftest import REPO, lbcore_env

BLOCK = bytes(range(256)) * 256  # 64 KiB of a known pattern


def pattern_sha(n: int) -> str:
    h = hashlib.sha256()
    full, rest = divmod(n, len(BLOCK))
    for _ in range(full):
        h.update(BLOCK)
    h.update(BLOCK[:rest])
    return h.hexdigest()


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, name: str) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.name = name
        self.accepted = 0
        self.inflight = 0
        self.max_inflight = 0
        self.requests = 0
        self.lock = threading.Lock()

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # clients and proxies resetting mid-answer are scenarios here, not errors

    def get_request(self) -> tuple[socket.socket, Any]:
        conn, addr = super().get_request()
        with self.lock:
            self.accepted += 1
        return conn, addr


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # head and body are two writes: no 40 ms stalls
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        srv = self.server
        with srv.lock:
            srv.inflight += 1
            srv.requests += 1
            srv.max_inflight = max(srv.max_inflight, srv.inflight)
        try:
            self._route()
        finally:
            with srv.lock:
                srv.inflight -= 1

    do_POST = do_PUT = do_HEAD = do_DELETE = do_GET

    def _read_body(self) -> tuple[int, str]:
        h = hashlib.sha256()
        n = 0
        te = self.headers.get("Transfer-Encoding", "")
        if "chunked" in te.lower():
            while True:
                size = int(self.rfile.readline().split(b";")[0], 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    break
                while size:
                    d = self.rfile.read(min(65536, size))
                    h.update(d)
                    n += len(d)
                    size -= len(d)
                self.rfile.readline()
        else:
            left = int(self.headers.get("Content-Length", "0"))
            while left:
                d = self.rfile.read(min(65536, left))
                if not d:
                    break
                h.update(d)
                n += len(d)
                left -= len(d)
        return n, h.hexdigest()

    def _route(self) -> None:
        url = urlsplit(self.path)
        q = parse_qs(url.query)
        n, sha = self._read_body()
        if "/slow" in url.path:
            time.sleep(float(q.get("d", ["1"])[0]))
        if url.path == "/big":
            self._send_big(int(q["n"][0]))
            return
        if url.path == "/ws":
            self._websocket()
            return
        if url.path.startswith("/status/"):
            self._send_status(int(url.path.split("/")[2]), q.get("sc", [None])[0])
            return
        if url.path == "/garbage":
            self.wfile.write(b"NOT HTTP AT ALL\r\n\r\n")
            self.close_connection = True
            return
        body = json.dumps(
            {
                "server": self.server.name,
                "method": self.command,
                "path": self.path,
                "version": self.request_version,
                "headers": [[k.lower(), v] for k, v in self.headers.items()],
                "body_len": n,
                "body_sha": sha,
            }
        ).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("X-Server", self.server.name)
        self.send_header("X-Internal", "secret")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _send_status(self, status: int, cookie: str | None) -> None:
        body = b"status %d\n" % status
        self.send_response(status)
        self.send_header("Content-Type", "text/plain")
        if cookie is not None:
            self.send_header("Set-Cookie", cookie)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _send_big(self, n: int) -> None:
        self.send_response(200)
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        left = n
        while left:
            piece = BLOCK[: min(left, len(BLOCK))]
            self.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece))
            left -= len(piece)
        self.wfile.write(b"0\r\n\r\n")

    def _websocket(self) -> None:
        if self.headers.get("Upgrade", "").lower() != "websocket":
            self.send_error(400)
            return
        self.send_response(101, "Switching Protocols")
        self.send_header("Upgrade", "websocket")
        self.send_header("Connection", "Upgrade")
        self.end_headers()
        self.wfile.flush()
        self.close_connection = True
        conn = self.connection
        conn.sendall(b"HELLO")  # the server talks first: proves server→client
        while True:
            data = conn.recv(65536)
            if not data:
                break
            conn.sendall(data.upper())
        conn.sendall(b"BYE")  # after the client's half-close
        conn.shutdown(socket.SHUT_WR)


class Backend:
    """A real HTTP server on a free 127.0.0.1 port, run by a background thread."""

    def __init__(self, name: str) -> None:
        self.httpd = _Server(name)
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self.thread.start()

    @property
    def addr(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def accepted(self) -> int:
        return self.httpd.accepted

    @property
    def requests(self) -> int:
        return self.httpd.requests

    @property
    def max_inflight(self) -> int:
        return self.httpd.max_inflight

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


class DeadServer:
    """Accepts connections and closes them without a word (a crashed application)."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.accepted = 0
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            self.accepted += 1
            c.recv(65536)
            c.close()

    @property
    def addr(self) -> str:
        return f"127.0.0.1:{self.port}"

    def close(self) -> None:
        self.sock.close()


def refused_port() -> int:
    """A port nothing listens on (bound then closed)."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port: int = s.getsockname()[1]
    s.close()
    return port


class Lb:
    """Listening sockets plus one lbcore worker process serving them."""

    def __init__(self) -> None:
        self.socks: dict[tuple[str, int], socket.socket] = {}
        self.proc: subprocess.Popen[bytes] | None = None
        self.channel: socket.socket | None = None

    def listen(self) -> int:
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", 0))
        s.listen(1024)
        s.set_inheritable(True)
        port: int = s.getsockname()[1]
        self.socks[("127.0.0.1", port)] = s
        return port

    def start(self, config_text: str, channel: bool = False) -> None:
        fds = [s.fileno() for s in self.socks.values()]
        spec: dict[str, Any] = {
            "config": None,
            "config_text": config_text,
            "listeners": {k: s.fileno() for k, s in self.socks.items()},
        }
        if channel:
            ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
            theirs.set_inheritable(True)
            fds.append(theirs.fileno())
            spec["channel"] = theirs.fileno()
            self.channel = ours
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tests.integration.proxy.runner"],
            stdin=subprocess.PIPE,
            pass_fds=fds,
            cwd=REPO,
            env=lbcore_env(),
        )
        assert self.proc.stdin is not None
        self.proc.stdin.write(pickle.dumps(spec))
        self.proc.stdin.close()
        if channel:
            theirs.close()
        # The sockets already listen; wait until the worker polls every one of them.
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, "worker exited at start"
            if all(self.worker_listening(port) for _h, port in self.socks):
                return
            time.sleep(0.05)
        raise AssertionError("worker did not start")

    def worker_listening(self, port: int) -> bool:
        """Is the worker polling this listening socket? (Its epoll lists the inode.)"""
        assert self.proc is not None
        inode = os.fstat(self.socks[("127.0.0.1", port)].fileno()).st_ino
        ino = f"ino:{inode:x} "
        try:
            for fd in os.listdir(f"/proc/{self.proc.pid}/fdinfo"):
                with open(f"/proc/{self.proc.pid}/fdinfo/{fd}") as f:
                    if ino in f.read():
                        return True
        except OSError:
            return False
        return False

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def rss_kib(self, field: str = "VmRSS") -> int:
        with open(f"/proc/{self.pid}/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
        raise AssertionError(field)

    def signal(self, sig: int) -> None:
        assert self.proc is not None
        self.proc.send_signal(sig)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        for s in self.socks.values():
            s.close()
        if self.channel is not None:
            self.channel.close()


def response_complete(buf: bytes) -> bool:
    """Does ``buf`` hold one whole response with a Content-Length body?"""
    end = buf.find(b"\r\n\r\n")
    if end < 0:
        return False
    for line in buf[:end].split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return len(buf) >= end + 4 + int(value)
    return False  # no length: the body ends at close


def raw_exchange(port: int, data: bytes, timeout: float = 5.0) -> bytes:
    """Send ``data``; read one response with a length, or until the proxy closes."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(data)
        out = b""
        try:
            while not response_complete(out):
                d = s.recv(65536)
                if not d:
                    break
                out += d
        except TimeoutError:
            pass
        return out
