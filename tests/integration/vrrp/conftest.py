"""Fixtures for VRRP scenarios: a namespace lab, configs, and observers."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.conftest import need_root
from tests.integration.vrrp.lab import KEEPALIVED, Host, Lab, address_is_local, enter_netns


def need_lab() -> None:
    need_root()
    if shutil.which("ip") is None:
        pytest.skip("iproute2 is not installed")


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[Lab]:
    need_lab()
    lab = Lab(tmp_path, n_hosts=2)
    try:
        yield lab
    finally:
        lab.close()


@pytest.fixture
def keepalived() -> str:
    if not Path(KEEPALIVED).exists():
        pytest.skip("keepalived is not installed (make deps installs it)")
    return KEEPALIVED


def vrrp_conf(
    *,
    vip: str,
    priority: int,
    version: int = 3,
    advert: str = "0.1",
    vrid: int = 42,
    extra: str = "",
    scripts: str = "",
    state: str = "BACKUP",
    router_id: str = "lbv",
) -> str:
    """One instance in the keepalived dialect: the same text drives lbcore and keepalived."""
    return f"""global_defs {{
    router_id {router_id}
    vrrp_version {version}
}}
{scripts}
vrrp_instance VI_1 {{
    state {state}
    interface eth0
    virtual_router_id {vrid}
    priority {priority}
    advert_int {advert}
    virtual_ipaddress {{
        {vip}/24 dev eth0
    }}
{extra}
}}
"""


def read_state(path: Path, name: str = "VI_1") -> str | None:
    try:
        return str(json.loads(path.read_text())["instances"][name]["state"])
    except (OSError, ValueError, KeyError):
        return None


def counters(path: Path, name: str = "VI_1") -> dict[str, int]:
    return dict(json.loads(path.read_text())["instances"][name]["counters"])


def lbcore_declares_master(
    proc: Callable[[], subprocess.Popen[bytes]], state: Path
) -> Callable[[], bool]:
    """This very process (not a dead predecessor) runs and its state file says MASTER."""

    def check() -> bool:
        p = proc()
        if p.poll() is not None:
            return False
        try:
            doc = json.loads(state.read_text())
        except (OSError, ValueError):
            return False
        return bool(doc.get("pid") == p.pid and doc["instances"]["VI_1"]["state"] == "MASTER")

    return check


_KA_STATE = re.compile(r"\((\w+)\) Entering (\w+) STATE")


def keepalived_state(log: Path) -> str | None:
    """The last state keepalived logged for its instance."""
    try:
        found = _KA_STATE.findall(log.read_text(errors="replace"))
    except OSError:
        return None
    return found[-1][1] if found else None


def keepalived_declares_master(
    proc: Callable[[], subprocess.Popen[bytes]], log: Callable[[], Path]
) -> Callable[[], bool]:
    def check() -> bool:
        return proc().poll() is None and keepalived_state(log()) == "MASTER"

    return check


@dataclass
class Sampler:
    """Samples, per host, whether it is MASTER: one thread per host, inside its namespace.

    MASTER = the host's agent runs and declares MASTER, *and* the VIP is
    configured there (checked by binding to it: microseconds, no ``ip``
    process). A process killed with SIGKILL leaves its address behind: that
    alone is not a master. Per-host threads sample every ``period`` seconds;
    overlaps are computed on the merged timelines, so the resolution is a few
    milliseconds even on a loaded machine.
    """

    hosts: list[Host]
    vip: str
    declares: list[Callable[[], bool]]
    period: float = 0.002
    timelines: list[list[tuple[float, bool]]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._stop = threading.Event()
        self.timelines = [[] for _ in self.hosts]
        self._threads = [
            threading.Thread(target=self._run, args=(i,), daemon=True)
            for i in range(len(self.hosts))
        ]

    def _run(self, i: int) -> None:
        enter_netns(self.hosts[i].ns)
        out = self.timelines[i]
        while not self._stop.is_set():
            t = time.monotonic()
            out.append((t, address_is_local(self.vip) and self.declares[i]()))
            self._stop.wait(self.period)

    def __enter__(self) -> Sampler:
        for t in self._threads:
            t.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(5)

    def intervals(self, i: int) -> list[tuple[float, float]]:
        """[start, end) stretches during which host i was MASTER (end: first sample not)."""
        out, start = [], None
        for t, master in self.timelines[i]:
            if master and start is None:
                start = t
            elif not master and start is not None:
                out.append((start, t))
                start = None
        if start is not None:
            out.append((start, self.timelines[i][-1][0]))
        return out

    def longest_dual_master(self) -> float:
        """Longest stretch during which hosts 0 and 1 were both MASTER (an upper bound)."""
        longest = 0.0
        for a0, a1 in self.intervals(0):
            for b0, b1 in self.intervals(1):
                longest = max(longest, min(a1, b1) - max(a0, b0))
        return longest

    def masters_seen(self) -> set[int]:
        return {i for i in range(len(self.hosts)) if self.intervals(i)}
