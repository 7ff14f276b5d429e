"""Hostile-input harness: a recording backend, lbcore and HAProxy as child processes,
and a raw client that reports the status and whether the proxy closed.

* ``RecordingBackend``: a raw TCP server (no HTTP library: it must not normalise what it
  got) that stores every byte each connection delivers and answers each request head
  with a fixed 200. A hostile request that reaches it shows up in ``received``.
* ``Proc``: a proxy child process (``lbcore run -f`` or ``haproxy -db -f``) on a config
  file, stopped by its PID (and its workers, for lbcore) in the fixture's finalizer.
* ``exchange``: one connection, one request, the answer's status and whether the proxy
  closed the connection afterwards.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from tests.conftest import free_port, lbcore_cmd, lbcore_env

OK = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nX-Rec: 1\r\n\r\nok"


class RecordingBackend:
    """Accepts connections on 127.0.0.1, records every byte, answers heads with 200."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(256)
        self.port: int = self.sock.getsockname()[1]
        self.lock = threading.Lock()
        self.received: list[bytes] = []  # one entry per accepted connection
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    @property
    def addr(self) -> str:
        return f"127.0.0.1:{self.port}"

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with self.lock:
                idx = len(self.received)
                self.received.append(b"")
            threading.Thread(target=self._serve, args=(conn, idx), daemon=True).start()

    def _serve(self, conn: socket.socket, idx: int) -> None:
        conn.settimeout(30)
        seen = b""  # this connection's bytes, for counting heads (``clear`` spares it)
        answered = 0
        with conn:
            while True:
                try:
                    data = conn.recv(65536)
                except OSError:
                    return
                if not data:
                    return
                seen += data
                with self.lock:
                    self.received[idx] += data
                try:
                    while answered < seen.count(b"\r\n\r\n"):
                        conn.sendall(OK)
                        answered += 1
                except OSError:
                    return

    def total(self) -> bytes:
        with self.lock:
            return b"".join(self.received)

    def clear(self) -> None:
        with self.lock:
            self.received = [b"" for _ in self.received]

    def close(self) -> None:
        self.sock.close()


def children(pid: int) -> list[int]:
    out = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                out.append(int(entry))
    return out


class Proc:
    """A proxy child process started on ``config`` (``{port}`` is filled in)."""

    def __init__(self, kind: str, config: str, tmp: Path, port: int | None = None) -> None:
        self.kind = kind
        self.port = port or free_port()
        self.cfg = tmp / f"{kind}-{self.port}.cfg"
        self.cfg.write_text(config.replace("{port}", str(self.port)))
        self.log_path = tmp / f"{kind}-{self.port}.log"
        self._log = open(self.log_path, "w")  # noqa: SIM115 (closed in stop())
        if kind == "lbcore":
            argv = lbcore_cmd("run", "-f", str(self.cfg))
        else:
            argv = ["/usr/sbin/haproxy", "-db", "-f", str(self.cfg)]
        self.proc = subprocess.Popen(
            argv, stdout=self._log, stderr=subprocess.STDOUT, env=lbcore_env(), cwd=tmp
        )
        self.pid = self.proc.pid
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, f"{kind} exited: {self.log()}"
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as s:
                    s.sendall(b"GET / HTTP/1.1\r\nhost: ready\r\nconnection: close\r\n\r\n")
                    s.settimeout(2)
                    if s.recv(12).startswith(b"HTTP/1.1"):
                        return
            except OSError:
                pass
            time.sleep(0.1)
        raise AssertionError(f"{kind} did not start: {self.log()}")

    def log(self) -> str:
        return self.log_path.read_text()

    def rss_kib(self) -> int:
        """Total resident memory of the process and its direct children."""
        total = 0
        for pid in [self.pid, *children(self.pid)]:
            try:
                status = Path(f"/proc/{pid}/status").read_text()
            except OSError:
                continue
            m = re.search(r"^VmRSS:\s+(\d+)", status, re.M)
            total += int(m.group(1)) if m else 0
        return total

    def stop(self) -> None:
        kids = children(self.pid) if self.proc.poll() is None else []
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
        for pid in kids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        self._log.close()


@dataclass(frozen=True)
class Outcome:
    status: int | None  # None: the proxy answered nothing
    closed: bool  # the proxy closed the connection after answering
    raw: bytes


_STATUS = re.compile(rb"HTTP/1\.[01] (\d{3})")


def exchange(port: int, data: bytes, wait: float = 1.5) -> Outcome:
    """Send ``data`` on a fresh connection; read until close or ``wait`` of silence."""
    with socket.create_connection(("127.0.0.1", port), timeout=wait) as s:
        with contextlib.suppress(OSError):  # the proxy may close on us while we send
            s.sendall(data)
        out = b""
        closed = False
        try:
            while True:
                d = s.recv(65536)
                if not d:
                    closed = True
                    break
                out += d
        except TimeoutError:
            pass
        except ConnectionResetError:
            closed = True
    m = _STATUS.match(out)
    return Outcome(int(m.group(1)) if m else None, closed, out)
