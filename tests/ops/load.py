"""A bounded HTTP load against the VIP from the root namespace, every request recorded.

Used by the operations scenarios' verifiers (molecule/*/tests) and their pytest drivers:
`threads` clients send GET on a fresh connection each (so every request is a new session
the balancer must place), pausing between requests so the rate stays near `rate` req/s and
leaves CPU to Ansible. It stops at `max_requests`, at `max_seconds` or when the `with`
block ends, whichever comes first. Each request is kept as a `Shot` (when it started and
ended, who served it, which release, or the error), so a test can say not only how many
failed but when: a failover test checks that failures fall inside the VIP's move.
"""

from __future__ import annotations

import http.client
import socket
import ssl
import threading
import time
from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class Shot:
    """One request: start/end (wall clock, comparable with the lab hosts' clocks: they are
    this machine's), and the answer or the error."""

    start: float
    end: float
    status: int = 0
    served_by: str = ""
    version: str = ""
    error: str = ""

    @property
    def ok(self) -> bool:
        return not self.error and self.status == 200


def get(
    host: str,
    port: int = 80,
    path: str = "/",
    timeout: float = 5.0,
    tls: ssl.SSLContext | None = None,
    sni: str | None = None,
) -> Shot:
    """One GET on a new connection (Connection: close); over TLS with `tls`, asking for
    `sni` (also sent as Host)."""
    start = time.time()
    conn = http.client.HTTPConnection(host, port, timeout=timeout)
    headers = {"Connection": "close"}
    if sni:
        headers["Host"] = sni
    try:
        if tls is not None:
            raw = socket.create_connection((host, port), timeout=timeout)
            conn.sock = tls.wrap_socket(raw, server_hostname=sni or host)
        conn.request("GET", path, headers=headers)
        resp = conn.getresponse()
        resp.read()
        return Shot(
            start,
            time.time(),
            resp.status,
            resp.getheader("X-Served-By") or "",
            resp.getheader("X-App-Version") or "",
        )
    except Exception as e:  # every failure is a data point, not a crash
        return Shot(start, time.time(), error=f"{type(e).__name__}: {e}")
    finally:
        conn.close()


@dataclass
class Load:
    host: str
    port: int = 80
    rate: float = 40.0  # requests per second, over all threads
    threads: int = 4
    max_requests: int = 20_000
    max_seconds: float = 400.0
    timeout: float = 5.0
    tls: ssl.SSLContext | None = None
    sni: str | None = None
    shots: list[Shot] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _workers: list[threading.Thread] = field(default_factory=list)
    started: float = 0.0  # monotonic
    stopped: float = 0.0
    started_wall: float = 0.0

    def __enter__(self) -> Load:
        self.started = time.monotonic()
        self.started_wall = time.time()
        deadline = self.started + self.max_seconds
        for i in range(self.threads):
            t = threading.Thread(target=self._run, args=(i, deadline), daemon=True)
            t.start()
            self._workers.append(t)
        return self

    def _run(self, index: int, deadline: float) -> None:
        period = self.threads / self.rate
        # Threads start spread over one period, so requests arrive evenly.
        next_at = self.started + period * index / self.threads
        while not self._stop.is_set() and time.monotonic() < deadline:
            with self._lock:
                if len(self.shots) >= self.max_requests:
                    return
            shot = get(self.host, self.port, timeout=self.timeout, tls=self.tls, sni=self.sni)
            with self._lock:
                self.shots.append(shot)
            next_at += period
            self._stop.wait(max(0.0, next_at - time.monotonic()))

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for t in self._workers:
            t.join(timeout=self.timeout + 5)
        self.stopped = time.monotonic()

    def stop(self) -> None:
        self.__exit__()

    @property
    def failures(self) -> list[Shot]:
        with self._lock:
            return [s for s in self.shots if not s.ok]

    @property
    def achieved_rate(self) -> float:
        elapsed = (self.stopped or time.monotonic()) - self.started
        return len(self.shots) / elapsed if elapsed > 0 else 0.0

    def summary(self) -> dict[str, object]:
        with self._lock:
            shots = list(self.shots)
        served: dict[str, int] = {}
        for s in shots:
            if s.ok:
                served[s.served_by] = served.get(s.served_by, 0) + 1
        return {
            "requests": len(shots),
            "failed": sum(1 for s in shots if not s.ok),
            "rate": round(self.achieved_rate, 1),
            "served": served,
            "errors": [
                f"{s.start - self.started_wall:.2f}s {s.error or s.status}"
                for s in shots
                if not s.ok
            ][:20],
        }
