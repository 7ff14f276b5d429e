"""A bounded HTTP/1.1 load client and a connect prober, for reload tests.

Every loop is bounded in count and in time. A request fails if: the connection cannot
be made (ECONNREFUSED included), the answer is not a ``200``, or it times out, or the
connection breaks after the server started answering. One case is retried, as HTTP
clients do (RFC 9112 §9.3.1 allows retrying an idempotent request): a *reused*
keep-alive connection that the server closed before sending a single byte back — the
unavoidable race between a client reusing an idle connection and a server closing it.
Retries are counted separately so a test can report them.
"""

from __future__ import annotations

import collections
import socket
import threading
import time
from dataclasses import dataclass, field


@dataclass
class Result:
    ok: int = 0
    failed: int = 0
    retried: int = 0
    max_latency: float = 0.0  # seconds, the slowest successful request
    errors: list[str] = field(default_factory=list)
    bodies: collections.Counter[str] = field(default_factory=collections.Counter)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def success(self, body: str, latency: float = 0.0) -> None:
        with self.lock:
            self.ok += 1
            self.bodies[body] += 1
            self.max_latency = max(self.max_latency, latency)

    def failure(self, why: str) -> None:
        with self.lock:
            self.failed += 1
            if len(self.errors) < 20:
                self.errors.append(why)


class _NoBytes(ConnectionError):
    """The server closed the connection before answering anything."""


def _read_response(sock: socket.socket) -> tuple[int, bytes, bool, dict[str, str]]:
    """(status, body, server wants close, headers). Raises _NoBytes on EOF before the
    first byte."""
    buf = b""
    while b"\r\n\r\n" not in buf:
        chunk = sock.recv(65536)
        if not chunk:
            if not buf:
                raise _NoBytes()
            raise ConnectionError("closed inside the response head")
        buf += chunk
    head, _, body = buf.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ")[1])
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    length = int(headers.get("content-length", "0"))
    while len(body) < length:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("closed inside the response body")
        body += chunk
    return status, body[:length], headers.get("connection", "").lower() == "close", headers


def get(host: str, port: int, path: str = "/", timeout: float = 5.0) -> tuple[int, str]:
    """One request on a new connection."""
    with socket.create_connection((host, port), timeout=timeout) as sock:
        sock.sendall(f"GET {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n".encode())
        status, body, _, _ = _read_response(sock)
        return status, body.decode()


def get_headers(
    host: str, port: int, path: str = "/", timeout: float = 5.0
) -> tuple[int, str, dict[str, str]]:
    """One request on a new connection: status, body and (lower-cased) headers."""
    with socket.create_connection((host, port), timeout=timeout) as sock:
        sock.sendall(f"GET {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n".encode())
        status, body, _, headers = _read_response(sock)
        return status, body.decode(), headers


def _label(body: bytes, headers: dict[str, str]) -> str:
    """What served a request: the X-Gen header lbcore tests set, else the test worker's
    ``gen=`` field, else the body."""
    if "x-gen" in headers:
        return f"gen={headers['x-gen']}"
    text = body.decode().strip()
    return text.split(" ")[1] if " " in text else text


def _client(
    host: str,
    port: int,
    keepalive: bool,
    stop: threading.Event,
    deadline: float,
    max_requests: int,
    result: Result,
) -> None:
    sock: socket.socket | None = None
    request = b"GET / HTTP/1.1\r\nHost: t\r\n%s\r\n" % (
        b"" if keepalive else b"Connection: close\r\n"
    )
    for _ in range(max_requests):
        if stop.is_set() or time.monotonic() > deadline:
            break
        for attempt in (0, 1):
            reused = sock is not None
            t0 = time.monotonic()
            try:
                if sock is None:
                    sock = socket.create_connection((host, port), timeout=5.0)
                sock.sendall(request)
                status, body, close, headers = _read_response(sock)
            except (_NoBytes, ConnectionResetError, BrokenPipeError) as e:
                if sock is not None:
                    sock.close()
                sock = None
                if reused and attempt == 0:
                    with result.lock:
                        result.retried += 1
                    continue
                result.failure(f"{type(e).__name__} on a {'reused' if reused else 'new'} conn")
                break
            except OSError as e:
                if sock is not None:
                    sock.close()
                sock = None
                result.failure(f"{type(e).__name__}: {e}")
                break
            if status == 200:
                result.success(_label(body, headers), time.monotonic() - t0)
            else:
                result.failure(f"status {status}")
            if close or not keepalive:
                sock.close()
                sock = None
            break
    if sock is not None:
        sock.close()


class Load:
    """``connections`` client threads (half keep-alive, half one connection per request)
    running until :meth:`stop`, ``duration`` seconds, or ``max_requests`` each."""

    def __init__(
        self,
        host: str,
        port: int,
        connections: int = 20,
        duration: float = 30.0,
        max_requests: int = 100_000,
    ) -> None:
        self.result = Result()
        self._stop = threading.Event()
        deadline = time.monotonic() + duration
        self._threads = [
            threading.Thread(
                target=_client,
                args=(host, port, i % 2 == 0, self._stop, deadline, max_requests, self.result),
                daemon=True,
            )
            for i in range(connections)
        ]

    def __enter__(self) -> Load:
        for t in self._threads:
            t.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> Result:
        self._stop.set()
        for t in self._threads:
            t.join(timeout=15)
        return self.result


class Prober:
    """Connects (and closes) in a loop, counting refused connections: a listener that is
    closed even for an instant during a reload shows up as ECONNREFUSED here."""

    def __init__(self, host: str, port: int, duration: float = 30.0) -> None:
        self.attempts = 0
        self.refused = 0
        self.other: list[str] = []
        self._stop = threading.Event()
        self._deadline = time.monotonic() + duration
        self._thread = threading.Thread(target=self._run, args=(host, port), daemon=True)

    def _run(self, host: str, port: int) -> None:
        while not self._stop.is_set() and time.monotonic() < self._deadline:
            self.attempts += 1
            try:
                socket.create_connection((host, port), timeout=5.0).close()
            except ConnectionRefusedError:
                self.refused += 1
            except OSError as e:
                self.other.append(repr(e))
            time.sleep(0.001)

    def __enter__(self) -> Prober:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10)
