"""Start a master (with the test worker or the real one) as a real process, and look at it."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.conftest import REPO, free_port, lbcore_cmd, lbcore_env
from tests.integration.master.load import get


def wait_for(cond: Callable[[], object], timeout: float = 10.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return
        time.sleep(0.02)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def children(pid: int) -> set[int]:
    """The live (not zombie) children of ``pid``, from /proc."""
    out = set()
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        if int(fields[1]) == pid and fields[0] != "Z":
            out.add(int(entry))
    return out


def alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def listen_inodes(port: int) -> list[int]:
    """Inodes of the LISTEN sockets on 127.0.0.1:port (from /proc/net/tcp)."""
    want = f"0100007F:{port:04X}"
    found = []
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        f = line.split()
        if f[1] == want and f[3] == "0A":
            found.append(int(f[9]))
    return found


def fd_inodes(pid: int) -> set[int]:
    out = set()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            link = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if link.startswith("socket:["):
            out.add(int(link[8:-1]))
    return out


class MasterProc:
    """A master started with ``Popen``; stderr goes to a file the test can read."""

    def __init__(self, argv: list[str], tmp: Path, env: dict[str, str]) -> None:
        self.log_path = tmp / f"master-{time.monotonic_ns()}.log"
        self._log = open(self.log_path, "w")  # noqa: SIM115 (closed in stop())
        self.proc = subprocess.Popen(
            argv, stdout=self._log, stderr=subprocess.STDOUT, env=env, cwd=tmp
        )
        self.pid = self.proc.pid

    def log(self) -> str:
        return self.log_path.read_text()

    def signal(self, signum: int) -> None:
        os.kill(self.pid, signum)

    def workers(self) -> set[int]:
        return children(self.pid)

    def wait(self, timeout: float) -> int:
        return self.proc.wait(timeout=timeout)

    def stop(self) -> None:
        """Finalizer: stop this master and its workers (only those), whatever happened."""
        workers = self.workers() if self.proc.poll() is None else set()
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
        for pid in workers:
            if alive(pid):
                os.kill(pid, signal.SIGKILL)
        self._log.close()


class FakeCluster:
    """A JSON config file + a master running the test worker on it."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.port = free_port()
        self.cfg = tmp / "cfg.json"
        self.masters: list[MasterProc] = []

    def write(self, tag: str = "v1", workers: int = 2, **extra: object) -> None:
        binds = extra.pop("binds", [["127.0.0.1", self.port]])
        data = {"tag": tag, "binds": binds, "workers": workers, **extra}
        tmp = self.cfg.with_suffix(".tmp")
        tmp.write_text(json.dumps(data, indent=1))
        tmp.replace(self.cfg)

    def start(self, *args: str, wait: bool = True) -> MasterProc:
        argv = [sys.executable, "-m", "tests.integration.master.fakes", "run", "-f", str(self.cfg)]
        m = MasterProc([*argv, *args], self.tmp, lbcore_env())
        self.masters.append(m)
        if wait:
            wait_for(lambda: self.serving(), what=f"port {self.port} serving")
        return m

    def serving(self, port: int | None = None) -> bool:
        try:
            return get("127.0.0.1", port or self.port, timeout=2)[0] == 200
        except OSError:
            return False

    def close(self) -> None:
        for m in self.masters:
            m.stop()


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[FakeCluster]:
    c = FakeCluster(tmp_path)
    c.write()
    try:
        yield c
    finally:
        c.close()


@pytest.fixture
def lbcore_master(tmp_path: Path) -> Iterator[Callable[..., MasterProc]]:
    """Start the real ``lbcore run`` with the given arguments."""
    started: list[MasterProc] = []

    def start(*args: str) -> MasterProc:
        m = MasterProc(lbcore_cmd("run", *args), tmp_path, lbcore_env())
        started.append(m)
        return m

    try:
        yield start
    finally:
        for m in started:
            m.stop()


__all__ = ["REPO", "FakeCluster", "MasterProc", "alive", "children", "wait_for"]
