"""A VRRP failover under load: two balancer hosts (network namespaces ``lbh-*`` on a
bridge ``lbhbr*``), each running ``lbcore run`` in front of its own local backend and
``lbcore vrrpd`` holding the VIP; a client in the root namespace sends a new request to
the VIP every 10 ms. The master host "dies" (its link goes down): requests fail only
during the takeover, whose length is measured and printed.
"""

from __future__ import annotations

import socket
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import is_root, lbcore_cmd
from tests.integration.hostile.lablet import BACKEND, LB, Lab, ip_cmd
from tests.integration.vrrp.conftest import read_state, vrrp_conf


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[Lab]:
    if not is_root():
        pytest.skip("needs root: network namespaces, raw VRRP sockets")
    lab = Lab(tmp_path)
    try:
        yield lab
    finally:
        lab.close()


def _get(vip: str) -> str | None:
    try:
        with socket.create_connection((vip, 8080), timeout=0.2) as s:
            s.settimeout(0.3)
            s.sendall(b"GET / HTTP/1.1\r\nHost: vip\r\nConnection: close\r\n\r\n")
            out = b""
            while d := s.recv(4096):
                out += d
    except OSError:
        return None
    if not out.startswith(b"HTTP/1.1 200"):
        return None
    return out.rsplit(b"\r\n\r\n", 1)[-1].decode()


@pytest.mark.root
@pytest.mark.flaky(reruns=2)
@pytest.mark.timeout(120)
def test_failover_under_load_fails_only_during_takeover(lab: Lab) -> None:
    (lab.tmp / "lb.cfg").write_text(LB)
    for i, (ns, prio) in enumerate(zip(lab.hosts, (150, 100), strict=True)):
        name = "ab"[i]
        (lab.tmp / f"vrrp-{name}.conf").write_text(
            vrrp_conf(vip=lab.vip, priority=prio, advert="0.1", vrid=91, router_id="lbh")
        )
        lab.run(ns, [sys.executable, "-c", BACKEND, f"host-{name}"], f"backend-{name}")
        lab.run(ns, lbcore_cmd("run", "-f", str(lab.tmp / "lb.cfg")), f"lbcore-{name}")
        lab.run(
            ns,
            lbcore_cmd(
                "vrrpd",
                "-f",
                str(lab.tmp / f"vrrp-{name}.conf"),
                "-S",
                str(lab.tmp / f"state-{name}.json"),
            ),
            f"vrrpd-{name}",
        )
    deadline = time.monotonic() + 30
    while _get(lab.vip) != "host-a":
        assert time.monotonic() < deadline, "host a never served the VIP"
        time.sleep(0.1)
    assert read_state(lab.tmp / "state-b.json") == "BACKUP"

    results: list[tuple[float, str | None]] = []
    t_end = time.monotonic() + 1.0
    while time.monotonic() < t_end:  # steady state: all from host a
        results.append((time.monotonic(), _get(lab.vip)))
        time.sleep(0.01)
    t_down = time.monotonic()
    ip_cmd("link", "set", lab.ports[0], "down")  # host a "dies"
    t_end = t_down + 5.0
    while time.monotonic() < t_end:
        results.append((time.monotonic(), _get(lab.vip)))
        time.sleep(0.01)

    before = [r for t, r in results if t < t_down]
    after = [(t, r) for t, r in results if t >= t_down]
    failures = [t for t, r in after if r is None]
    first_b = next((t for t, r in after if r == "host-b"), None)
    assert first_b is not None, "host b never served"
    takeover = first_b - t_down
    print(
        f"\nfailover under load: {len(results)} requests, {len(failures)} failed, all "
        f"between the link going down and host b's first answer {takeover:.3f}s later "
        f"(advert_int 0.1s: master down interval ~0.36s)"
    )
    assert before and all(r == "host-a" for r in before), "failures before the failover"
    assert read_state(lab.tmp / "state-b.json") == "MASTER"
    # requests fail only during the takeover: every one after host b's first answer works
    assert all(r == "host-b" for t, r in after if t > first_b)
    assert all(t < first_b for t in failures)
    assert takeover < 2.0
