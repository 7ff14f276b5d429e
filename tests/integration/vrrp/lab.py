"""A throwaway two-or-three host VRRP lab: network namespaces on a bridge.

Names carry the ``lbv`` prefix and subnets sit inside 198.19.0.0/16, so several
labs (and other helpers' labs) can exist on one machine at once. Everything the
lab creates is removed by :meth:`Lab.close`, which tests call from finalizers;
processes started through the lab are tracked by PID and killed by PID only.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import random
import signal
import socket
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from tests.conftest import lbcore_cmd, lbcore_env

KEEPALIVED = "/usr/sbin/keepalived"


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["ip", *args], check=check, capture_output=True, text=True)


@dataclass
class Host:
    """One namespace with one veth (``eth0`` inside) on the lab bridge."""

    ns: str
    addr: str
    iface: str = "eth0"

    def exec_cmd(self, argv: Sequence[str]) -> list[str]:
        return ["ip", "netns", "exec", self.ns, *argv]

    def addresses(self) -> set[str]:
        out = _ip("-n", self.ns, "-4", "-o", "addr", "show", "dev", self.iface, check=False)
        found = set()
        for line in out.stdout.splitlines():
            parts = line.split()
            if "inet" in parts:
                found.add(parts[parts.index("inet") + 1].split("/")[0])
        return found

    def has(self, ip: str) -> bool:
        return ip in self.addresses()


@dataclass
class Lab:
    """A bridge ``lbvbrN`` and hosts ``lbv-<pid>-<N>-<letter>`` on 198.19.<N>.0/24."""

    tmp: Path
    n_hosts: int = 2
    net: int = field(default_factory=lambda: random.randint(1, 254))
    hosts: list[Host] = field(default_factory=list)
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.bridge = f"lbvbr{self.net}"
        tag = f"lbv-{os.getpid()}-{self.net}"
        # Pick a free /24 (another lab of ours may be using this number).
        for _ in range(50):
            if _ip("link", "show", self.bridge, check=False).returncode != 0:
                break
            self.net = random.randint(1, 254)
            self.bridge = f"lbvbr{self.net}"
            tag = f"lbv-{os.getpid()}-{self.net}"
        try:
            _ip("link", "add", self.bridge, "type", "bridge")
            _ip("link", "set", self.bridge, "up")
            for i in range(self.n_hosts):
                letter = "abcdefgh"[i]
                host = Host(ns=f"{tag}-{letter}", addr=f"198.19.{self.net}.{10 + i}")
                _ip("netns", "add", host.ns)
                self.hosts.append(host)
                peer = f"lbv{self.net}{letter}"
                _ip("link", "add", peer, "type", "veth", "peer", "name", "eth0", "netns", host.ns)
                _ip("link", "set", peer, "master", self.bridge, "up")
                _ip("-n", host.ns, "addr", "add", f"{host.addr}/24", "dev", "eth0")
                _ip("-n", host.ns, "link", "set", "eth0", "up")
                _ip("-n", host.ns, "link", "set", "lo", "up")
        except BaseException:
            self.close()
            raise

    def vip(self, last: int = 100) -> str:
        return f"198.19.{self.net}.{last}"

    def start(
        self, host: Host, argv: Sequence[str], log: Path, **kw: object
    ) -> subprocess.Popen[bytes]:
        out = open(log, "ab")  # noqa: SIM115 - the child owns it
        proc = subprocess.Popen(host.exec_cmd(argv), stdout=out, stderr=subprocess.STDOUT, **kw)  # type: ignore[call-overload]
        out.close()
        self.procs.append(proc)
        return proc

    def start_lbcore(
        self, host: Host, conf: Path, state: Path, log: Path
    ) -> subprocess.Popen[bytes]:
        argv = lbcore_cmd("vrrpd", "-f", str(conf), "-S", str(state))
        return self.start(host, argv, log, env=lbcore_env())

    def start_keepalived(self, host: Host, conf: Path, log: Path) -> subprocess.Popen[bytes]:
        pid = self.tmp / f"ka-{host.ns}.pid"
        vpid = self.tmp / f"ka-{host.ns}-vrrp.pid"
        for stale in (pid, vpid):  # left by a SIGKILLed predecessor
            stale.unlink(missing_ok=True)
        argv = [
            KEEPALIVED,
            "-n",
            "-l",
            "-D",
            "--vrrp",
            "-f",
            str(conf),
            "-p",
            str(pid),
            "-r",
            str(vpid),
        ]
        return self.start(host, argv, log)

    @staticmethod
    def kill(proc: subprocess.Popen[bytes], sig: int = signal.SIGKILL, wait: float = 10) -> None:
        """Signal a process we started (by PID).

        With SIGKILL, its descendants die first (deepest first): keepalived's VRRP
        child would otherwise see its parent die and stop cleanly, sending a
        priority-0 advert — not the crash this is meant to be.
        """
        if proc.poll() is not None:
            return
        children = _children(proc.pid) if sig == signal.SIGKILL else []
        for pid in [*reversed(children), proc.pid]:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(wait)
        deadline = time.monotonic() + wait
        while children and time.monotonic() < deadline:
            children = [c for c in children if _running(c)]
            time.sleep(0.01)

    def close(self) -> None:
        for proc in self.procs:
            self.kill(proc)
        self.procs.clear()
        for host in self.hosts:
            _ip("netns", "del", host.ns, check=False)
        _ip("link", "del", self.bridge, check=False)


CLONE_NEWNET = 0x40000000


def enter_netns(ns: str) -> None:
    """Move the *calling thread* into network namespace ``ns`` (setns(2) is per thread)."""
    libc = ctypes.CDLL(None, use_errno=True)
    fd = os.open(f"/run/netns/{ns}", os.O_RDONLY)
    try:
        if libc.setns(fd, CLONE_NEWNET) != 0:
            err = ctypes.get_errno()
            raise OSError(err, os.strerror(err))
    finally:
        os.close(fd)


def address_is_local(ip: str) -> bool:
    """Is ``ip`` configured in this thread's namespace? (bind succeeds only then)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.bind((ip, 0))
        except OSError:
            return False
        return True


def _running(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] not in ("Z", "X")


def _children(pid: int) -> list[int]:
    """All descendants of ``pid`` (``ip netns exec`` execs, keepalived forks a VRRP child)."""
    found: list[int] = []
    todo = [pid]
    while todo:
        parent = todo.pop()
        path = Path(f"/proc/{parent}/task/{parent}/children")
        try:
            kids = [int(x) for x in path.read_text().split()]
        except OSError:
            kids = []
        found.extend(kids)
        todo.extend(kids)
    return found


def wait_for(pred, timeout: float, step: float = 0.02) -> bool:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(step)
    return bool(pred())
