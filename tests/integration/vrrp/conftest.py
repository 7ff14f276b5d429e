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
from tests.integration.vrrp.lab import KEEPALIVED, Host, Lab


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


def lbcore_is_master(
    proc: Callable[[], subprocess.Popen[bytes]], state: Path, host: Host, vip: str
) -> Callable[[], bool]:
    """MASTER = this very process (not a dead predecessor) says MASTER and holds the VIP."""

    def check() -> bool:
        p = proc()
        if p.poll() is not None:
            return False
        try:
            doc = json.loads(state.read_text())
        except (OSError, ValueError):
            return False
        if doc.get("pid") != p.pid or doc["instances"]["VI_1"]["state"] != "MASTER":
            return False
        return host.has(vip)

    return check


_KA_STATE = re.compile(r"\((\w+)\) Entering (\w+) STATE")


def keepalived_state(log: Path) -> str | None:
    """The last state keepalived logged for its instance."""
    try:
        found = _KA_STATE.findall(log.read_text(errors="replace"))
    except OSError:
        return None
    return found[-1][1] if found else None


def keepalived_is_master(
    proc: Callable[[], subprocess.Popen[bytes]], log: Callable[[], Path], host: Host, vip: str
) -> Callable[[], bool]:
    def check() -> bool:
        return proc().poll() is None and keepalived_state(log()) == "MASTER" and host.has(vip)

    return check


@dataclass
class Sampler:
    """Samples which hosts are MASTER in a background thread.

    ``is_master[i]()`` answers for host i: its agent runs, declares MASTER, and
    the VIP is on its interface (a process killed with SIGKILL leaves its
    address behind: that alone is not a master).
    """

    is_master: list[Callable[[], bool]]
    period: float = 0.01
    samples: list[tuple[float, tuple[bool, ...]]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            t = time.monotonic()
            self.samples.append((t, tuple(check() for check in self.is_master)))
            self._stop.wait(self.period)

    def __enter__(self) -> Sampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(5)

    def longest_dual_master(self) -> float:
        """Longest stretch during which more than one host was MASTER (seconds)."""
        longest, start = 0.0, None
        for t, holders in self.samples:
            if sum(holders) > 1:
                start = t if start is None else start
            elif start is not None:
                # Up to the first sample that saw it resolved: an upper bound.
                longest, start = max(longest, t - start), None
        if start is not None:
            longest = max(longest, self.samples[-1][0] - start)
        return longest

    def masters_seen(self) -> set[int]:
        return {i for _, holders in self.samples for i, m in enumerate(holders) if m}
