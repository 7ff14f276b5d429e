"""Real backends and a real ``lbcore run`` for the control-plane scenarios.

``Backend`` is a loopback HTTP/1.0-style server in a thread of the test process: it
answers every request with its status and its name, closes the connection after the
answer, and counts the connections it accepted (health checks included) and the
requests it answered. ``close()`` closes its listening socket (its port refuses
connections from then on) and ``open()`` binds the same port again.

``Lb`` writes a haproxy-dialect configuration, starts ``lbcore run`` on it (or the
recording test worker of ``recorder``), waits until its admin socket answers, and talks
to the socket with ``lbcore.runtime.ctl.ask`` (what ``socat`` does).
"""

from __future__ import annotations

import collections
import contextlib
import socket
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

from lbcore.runtime.ctl import ask
from tests.conftest import free_port, lbcore_cmd, lbcore_env
from tests.integration.master.conftest import MasterProc, wait_for


class Backend:
    def __init__(self, name: str, status: int = 200, port: int | None = None) -> None:
        self.name = name
        self.status = status
        self.delay = 0.0  # seconds before answering a request whose path is /slow
        self.arrived = 0  # requests received (answered or not yet)
        self.port = port or free_port()
        self.conns = 0
        self.requests = 0
        self.answered: collections.Counter[int] = collections.Counter()  # by status
        self._lock = threading.Lock()
        self._sock: socket.socket | None = None
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()

    def open(self) -> Backend:
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", self.port))
        sock.listen(128)
        sock.settimeout(0.05)
        self._sock = sock
        self._stop.clear()
        self._thread = threading.Thread(target=self._accept, args=(sock,), daemon=True)
        self._thread.start()
        return self

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)
        if self._sock is not None:
            self._sock.close()
        self._sock = self._thread = None

    def counts(self) -> tuple[int, int]:
        with self._lock:
            return self.conns, self.requests

    def _accept(self, sock: socket.socket) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with self._lock:
                self.conns += 1
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        with conn:
            conn.settimeout(5)
            data = b""
            try:
                while b"\r\n\r\n" not in data:
                    chunk = conn.recv(4096)
                    if not chunk:
                        return  # a TCP check: connect and close
                    data += chunk
                with self._lock:
                    self.arrived += 1
                if data.startswith(b"GET /slow ") and self.delay:
                    time.sleep(self.delay)
                body = f"{self.name}\n".encode()
                with self._lock:
                    self.requests += 1
                    status = self.status
                    self.answered[status] += 1
                head = (
                    f"HTTP/1.1 {status} {'OK' if status < 400 else 'Oops'}\r\n"
                    f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
                )
                conn.sendall(head.encode() + body)
            except OSError:
                return


def http_get(port: int, path: str = "/", timeout: float = 5.0) -> tuple[int, str]:
    """One HTTP/1.1 request on a fresh connection: (status, body)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(f"GET {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n".encode())
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), body.decode("latin-1")


class Lb:
    """One ``lbcore run`` (or recorder) process on a config file in ``tmp``."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.cfg = tmp / "lb.cfg"
        self.sock = str(tmp / "admin.sock")
        self.port = free_port()
        self.proc: MasterProc | None = None

    def write(self, text: str) -> None:
        text = text.replace("@SOCK@", self.sock).replace("@PORT@", str(self.port))
        tmp = self.cfg.with_suffix(".tmp")
        tmp.write_text(text)
        tmp.replace(self.cfg)

    def start(self, *args: str, recorder: bool = False, sock: str | None = None) -> MasterProc:
        if recorder:
            argv = [sys.executable, "-m", "tests.integration.control.recorder", "run"]
        else:
            argv = lbcore_cmd("run")
        env = lbcore_env() | {"LBCORE_TEST_STATE_DIR": str(self.tmp)}
        self.proc = MasterProc([*argv, "-f", str(self.cfg), *args], self.tmp, env)
        wait_for(lambda: self._answers(sock or self.sock), 20, "the admin socket answering")
        return self.proc

    def _answers(self, sock: str) -> bool:
        assert self.proc is not None
        if self.proc.proc.poll() is not None:
            raise AssertionError(f"lbcore run exited:\n{self.proc.log()}")
        try:
            return ask(sock, b"show version\n", timeout=2).startswith(b"2.6")
        except OSError:
            return False

    def cli(self, command: str, sock: str | None = None) -> str:
        return ask(sock or self.sock, (command + "\n").encode(), timeout=10).decode()

    def log(self) -> str:
        assert self.proc is not None
        return self.proc.log()

    def stat(self) -> dict[str, dict[str, str]]:
        """``show stat`` as {"px/sv": {column: value}}."""
        lines = [ln for ln in self.cli("show stat").splitlines() if ln]
        header = lines[0][2:].split(",")
        out = {}
        for line in lines[1:]:
            row = dict(zip(header, line.split(","), strict=False))
            out[f"{row['pxname']}/{row['svname']}"] = row
        return out

    def servers_state(self) -> dict[str, list[str]]:
        """``show servers state`` as {"be/srv": fields}."""
        out = {}
        for line in self.cli("show servers state").splitlines()[2:]:
            if line:
                f = line.split(" ")
                out[f"{f[1]}/{f[3]}"] = f
        return out

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.stop()


def eventually(cond: Callable[[], object], timeout: float = 10.0, what: str = "") -> None:
    wait_for(cond, timeout, what or "condition")


def backends(*names: str, status: int = 200) -> list[Backend]:
    return [Backend(n, status).open() for n in names]


def close_all(items: list[Backend]) -> None:
    for b in items:
        with contextlib.suppress(Exception):
            b.close()


def sleep(seconds: float) -> None:
    time.sleep(seconds)
