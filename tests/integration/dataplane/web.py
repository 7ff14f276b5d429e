"""A loopback HTTP/1.1 backend for the data-plane scenarios.

Each ``Web`` answers every request with its name in the body and records the
``Cookie`` header it received (so a test sees what the proxy forwarded). With
``set_cookie`` it adds ``Set-Cookie: <value>`` to its answers, as an application
that owns a session cookie (what ``cookie ... rewrite|prefix`` work on). Requests to
``/slow`` wait ``delay`` seconds. The connection is closed after each answer.
"""

from __future__ import annotations

import http.client
import socket
import threading
import time
from collections import Counter

from tests.conftest import free_port


class Web:
    def __init__(self, name: str, set_cookie: str | None = None) -> None:
        self.name = name
        self.set_cookie = set_cookie
        self.delay = 0.0
        self.port = free_port()
        self.hits = 0
        self.cookies: list[str | None] = []
        self.lock = threading.Lock()
        self._sock = socket.socket()
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind(("127.0.0.1", self.port))
        self._sock.listen(128)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._stop.set()
        self._sock.close()
        self._thread.join(5)

    def _accept(self) -> None:
        self._sock.settimeout(0.05)
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        with conn:
            conn.settimeout(10)
            data = b""
            try:
                while b"\r\n\r\n" not in data:
                    chunk = conn.recv(4096)
                    if not chunk:
                        return  # a TCP check
                    data += chunk
            except OSError:
                return
            head = data.split(b"\r\n\r\n", 1)[0].decode("latin-1").split("\r\n")
            cookie = None
            for line in head[1:]:
                name, _, value = line.partition(":")
                if name.strip().lower() == "cookie":
                    cookie = value.strip()
            with self.lock:
                self.hits += 1
                self.cookies.append(cookie)
            if head[0].startswith("GET /slow ") and self.delay:
                time.sleep(self.delay)
            body = f"{self.name}\n".encode()
            extra = f"Set-Cookie: {self.set_cookie}\r\n" if self.set_cookie else ""
            resp = (
                f"HTTP/1.1 200 OK\r\nContent-Length: {len(body)}\r\n"
                f"Cache-Control: max-age=60\r\n{extra}Connection: close\r\n\r\n"
            ).encode() + body
            try:
                conn.sendall(resp)
            except OSError:
                return


def get(
    port: int,
    path: str = "/",
    headers: dict[str, str] | None = None,
    method: str = "GET",
    body: bytes | None = None,
    timeout: float = 10.0,
) -> tuple[int, dict[str, list[str]], str]:
    """One request on a fresh connection: (status, headers by lower-case name, body)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        resp = conn.getresponse()
        out: dict[str, list[str]] = {}
        for name, value in resp.getheaders():
            out.setdefault(name.lower(), []).append(value)
        return resp.status, out, resp.read().decode("utf-8", "replace")
    finally:
        conn.close()


def spread(port: int, n: int, cookie: str | None = None) -> Counter[str]:
    headers = {"Cookie": cookie} if cookie else {}
    return Counter(get(port, headers=headers)[2].strip() for _ in range(n))
