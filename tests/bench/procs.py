"""Processes the benchmark starts, and what /proc says about them.

Every process here is started by the benchmark, stopped by its own PID, and waited
for; nothing is found or killed by name. CPU and memory are read from /proc for the
whole process tree (lbcore's master and its forked workers; HAProxy's one process).
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")


def children_of(pid: int) -> list[int]:
    """PIDs of ``pid``'s descendants (from each process's parent field in /proc)."""
    parents: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        ppid = int(stat[stat.rindex(")") + 2 :].split()[1])
        parents.setdefault(ppid, []).append(int(entry))
    out: list[int] = []
    todo = [pid]
    while todo:
        p = todo.pop()
        for c in parents.get(p, []):
            out.append(c)
            todo.append(c)
    return out


def cpu_seconds(pids: Sequence[int]) -> float:
    """utime+stime (+ reaped children's) of ``pids``, in seconds; gone PIDs count 0."""
    return sum(cpu_split(pids))


def cpu_split(pids: Sequence[int]) -> tuple[float, float]:
    """(user, system) seconds of ``pids`` (+ reaped children's); gone PIDs count 0."""
    user = system = 0
    for pid in pids:
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        # fields[11..14] = utime stime cutime cstime (proc(5) fields 14-17)
        user += int(fields[11]) + int(fields[13])
        system += int(fields[12]) + int(fields[14])
    return user / CLK_TCK, system / CLK_TCK


def rss_bytes(pids: Sequence[int]) -> int:
    """Resident set size summed over ``pids`` (shared pages of forked workers count
    once per process, as ``ps`` shows them: an upper bound)."""
    total = 0
    for pid in pids:
        try:
            statm = Path(f"/proc/{pid}/statm").read_text().split()
        except OSError:
            continue
        total += int(statm[1]) * PAGE
    return total


def wait_port(host: str, port: int, proc: subprocess.Popen[bytes], timeout: float) -> None:
    """Until ``host:port`` accepts a connection; fail early if ``proc`` died."""
    deadline = time.monotonic() + timeout
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"{proc.args!r} exited with {proc.returncode} before listening")
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise RuntimeError(f"nothing listens on {host}:{port} after {timeout}s") from None
            time.sleep(0.05)


@dataclass
class Service:
    """A started process and the ports it must listen on."""

    name: str
    argv: list[str]
    ports: list[int]
    env: dict[str, str] | None = None
    log: Path | None = None
    cwd: Path | str | None = None  # ``python -m`` imports from here before PYTHONPATH
    proc: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    def start(self, timeout: float = 15.0) -> None:
        out = open(self.log, "wb") if self.log else subprocess.DEVNULL  # noqa: SIM115
        self.proc = subprocess.Popen(
            self.argv,
            env=self.env,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            cwd=self.cwd,
        )
        if self.log:
            out.close()  # type: ignore[union-attr]
        try:
            for port in self.ports:
                wait_port("127.0.0.1", port, self.proc, timeout)
        except RuntimeError as e:
            self.stop()
            raise RuntimeError(f"{self.name}: {e}\n{self.log_tail()}") from None

    def tree(self) -> list[int]:
        assert self.proc is not None
        return [self.proc.pid, *children_of(self.proc.pid)]

    def log_tail(self, n: int = 20) -> str:
        if not self.log or not self.log.exists():
            return ""
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-n:])

    def stop(self) -> None:
        """SIGTERM (immediate stop for HAProxy, lbcore and nginx), then SIGKILL."""
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=5)


class Processes:
    """A temporary directory and the services started in it, stopped together.

    ``with Processes("lbcore-bench-") as group:`` makes the directory (world-readable:
    nginx's workers run as nobody when we are root); ``group.start(svc)`` starts a
    service with its output in ``<dir>/<name>.out``; ``group.on_exit(fn)`` adds
    something to close. On leaving — normally, on an error or on Ctrl-C — the last
    lines of every service's output are printed to stderr if an exception is on its
    way, every service is stopped by its PID (last started first), the ``on_exit``
    callbacks run, and the directory is removed unless ``keep``.
    """

    def __init__(self, prefix: str, keep: bool = False) -> None:
        self.prefix = prefix
        self.keep = keep
        self.tmp = Path()
        self.services: list[Service] = []
        self._closers: list[Callable[[], object]] = []

    def __enter__(self) -> Processes:
        self.tmp = Path(tempfile.mkdtemp(prefix=self.prefix))
        self.tmp.chmod(0o755)
        return self

    def start(self, svc: Service, timeout: float = 15.0) -> Service:
        svc.log = self.tmp / f"{svc.name}.out"
        self.services.append(svc)
        svc.start(timeout)
        return svc

    def on_exit(self, fn: Callable[[], object]) -> None:
        self._closers.append(fn)

    def dump_logs(self) -> None:
        for svc in self.services:
            tail = svc.log_tail()
            if tail:
                print(f"--- {svc.name} output ---\n{tail}", file=sys.stderr)

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            if exc_type is not None and not issubclass(exc_type, KeyboardInterrupt):
                self.dump_logs()
        finally:
            for svc in reversed(self.services):
                svc.stop()
            for fn in reversed(self._closers):
                fn()
            if self.keep:
                print(f"kept {self.tmp}")
            else:
                shutil.rmtree(self.tmp, ignore_errors=True)
