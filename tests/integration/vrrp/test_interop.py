"""lbcore and real keepalived (Debian's 2.2.7) in one VRRP group, both directions, v2 and v3.

The same keepalived-dialect file drives both daemons. Each scenario starts the
higher-priority router first, lets the other settle as BACKUP, kills the master
with SIGKILL (the other must take over within the RFC bound), restarts it (it
must preempt back, so each side also yields to the other's adverts), and samples
all along that the two were never MASTER together for longer than one advert
interval.
"""

from __future__ import annotations

import signal
import time
from pathlib import Path

import pytest

from lbcore.vrrp.fsm import master_down_interval
from tests.integration.vrrp.conftest import (
    Sampler,
    counters,
    keepalived_declares_master,
    keepalived_state,
    lbcore_declares_master,
    read_state,
    vrrp_conf,
)
from tests.integration.vrrp.lab import wait_for

pytestmark = [pytest.mark.root]

AUTH = """    authentication {
        auth_type PASS
        auth_pass lbv-pass
    }"""

VERSIONS = {
    # version: (advert_int text, seconds, extra instance lines)
    2: ("1", 1.0, AUTH),
    3: ("0.1", 0.1, ""),
}


@pytest.mark.flaky(reruns=2)  # measures wall-clock timing on a shared machine
@pytest.mark.parametrize("version", [2, 3])
@pytest.mark.parametrize("lbcore_role", ["master", "backup"])
def test_interop_with_keepalived(lab, tmp_path, keepalived, version, lbcore_role):
    advert_text, advert, extra = VERSIONS[version]
    hi, lo = lab.hosts  # hi: priority 150 (the master), lo: priority 100
    vip = lab.vip()
    for name, prio in (("hi", 150), ("lo", 100)):
        (tmp_path / f"{name}.conf").write_text(
            vrrp_conf(vip=vip, priority=prio, version=version, advert=advert_text, extra=extra)
        )
    lb_name = "hi" if lbcore_role == "master" else "lo"
    ka_name = "lo" if lbcore_role == "master" else "hi"
    lb_host = hi if lb_name == "hi" else lo
    ka_host = hi if ka_name == "hi" else lo
    state = tmp_path / "lbcore.json"
    ka_logs = [tmp_path / "keepalived-0.log"]
    procs: dict[str, object] = {}

    def start_lbcore():
        procs["lb"] = lab.start_lbcore(
            lb_host, tmp_path / f"{lb_name}.conf", state, tmp_path / "lbcore.log"
        )

    def start_keepalived():
        log = tmp_path / f"keepalived-{len(procs) and len(ka_logs)}.log"
        if log != ka_logs[-1]:
            ka_logs.append(log)
        procs["ka"] = lab.start_keepalived(ka_host, tmp_path / f"{ka_name}.conf", ka_logs[-1])

    def lb_state():
        return read_state(state)

    def ka_state():
        return keepalived_state(ka_logs[-1])

    def logs() -> str:
        return "\n".join(
            p.read_text() for p in [tmp_path / "lbcore.log", *ka_logs] if Path(p).exists()
        )

    startup = master_down_interval(version, 150, advert) + 8
    if lbcore_role == "master":
        start_lbcore()
        assert wait_for(lambda: lb_state() == "MASTER", startup), logs()
        start_keepalived()
        assert wait_for(lambda: ka_state() == "BACKUP", 10), logs()
    else:
        start_keepalived()
        assert wait_for(lambda: ka_state() == "MASTER", startup), logs()
        start_lbcore()
        assert wait_for(lambda: lb_state() == "BACKUP", 10), logs()

    sampler = Sampler(
        [lb_host, ka_host],
        vip,
        [
            lbcore_declares_master(lambda: procs["lb"], state),
            keepalived_declares_master(lambda: procs["ka"], lambda: ka_logs[-1]),
        ],
    )
    with sampler:
        # Steady state: the backup accepts the master's adverts and stays backup.
        time.sleep(master_down_interval(version, 100, advert) + advert)
        assert (lb_state(), ka_state()) == (
            ("MASTER", "BACKUP") if lbcore_role == "master" else ("BACKUP", "MASTER")
        ), logs()
        assert hi.has(vip) and not lo.has(vip)

        # SIGKILL the master: the other takes over within Master_Down_Interval + 0.5 s.
        bound = master_down_interval(version, 100, advert) + 0.5
        t_kill = time.monotonic()
        if lbcore_role == "master":
            lab.kill(procs["lb"], signal.SIGKILL)
            took = wait_for(lambda: ka_state() == "MASTER" and lo.has(vip), bound + 3, 0.005)
        else:
            lab.kill(procs["ka"], signal.SIGKILL)
            took = wait_for(lambda: lb_state() == "MASTER" and lo.has(vip), bound + 3, 0.005)
        takeover = time.monotonic() - t_kill
        assert took, logs()
        assert takeover < bound, f"takeover {takeover:.3f}s > {bound:.3f}s\n{logs()}"

        # Restart the killed master: it preempts back, and the other yields to it.
        if lbcore_role == "master":
            start_lbcore()
            back = wait_for(lambda: lb_state() == "MASTER" and ka_state() == "BACKUP", startup)
        else:
            start_keepalived()
            back = wait_for(lambda: ka_state() == "MASTER" and lb_state() == "BACKUP", startup)
        assert back, logs()
        assert wait_for(lambda: hi.has(vip) and not lo.has(vip), 3), logs()
        time.sleep(3 * advert)
    assert sampler.masters_seen() == {0, 1}
    dual = sampler.longest_dual_master()
    assert dual <= advert, f"both MASTER for {dual:.3f}s > {advert}s\n{logs()}"
    # Every advert keepalived sent passed our checks (checksum, auth, TTL, addresses).
    got = counters(state)
    assert got.get("rx_adverts", 0) > 0
    assert not {k: v for k, v in got.items() if k.startswith("rx_drop")}, got


@pytest.mark.flaky(reruns=2)  # measures wall-clock timing on a shared machine
@pytest.mark.parametrize("stopping", ["lbcore", "keepalived"])
def test_clean_stop_priority_zero_is_honoured_across_implementations(
    lab, tmp_path, keepalived, stopping
):
    """SIGTERM on the master: its priority-0 advert makes the other side take over
    after its skew time (0.61 s at advert_int 1), far below Master_Down_Interval (3.6 s)."""
    hi, lo = lab.hosts
    vip = lab.vip()
    for name, prio in (("hi", 150), ("lo", 100)):
        (tmp_path / f"{name}.conf").write_text(
            vrrp_conf(vip=vip, priority=prio, version=3, advert="1")
        )
    state, ka_log = tmp_path / "lbcore.json", tmp_path / "keepalived.log"
    if stopping == "lbcore":
        master = lab.start_lbcore(hi, tmp_path / "hi.conf", state, tmp_path / "lbcore.log")
        assert wait_for(lambda: read_state(state) == "MASTER", 10)
        lab.start_keepalived(lo, tmp_path / "lo.conf", ka_log)
        assert wait_for(lambda: keepalived_state(ka_log) == "BACKUP", 10)
    else:
        master = lab.start_keepalived(hi, tmp_path / "hi.conf", ka_log)
        assert wait_for(lambda: keepalived_state(ka_log) == "MASTER", 10)
        lab.start_lbcore(lo, tmp_path / "lo.conf", state, tmp_path / "lbcore.log")
        assert wait_for(lambda: read_state(state) == "BACKUP", 10)
    time.sleep(1.2)  # at least one advert heard
    t_term = time.monotonic()
    lab.kill(master, signal.SIGTERM, wait=0)  # time the handover, not its exit
    assert wait_for(lambda: lo.has(vip), 3, 0.005)
    handover = time.monotonic() - t_term
    assert handover < 1.0, handover
    if stopping == "keepalived":
        assert wait_for(lambda: read_state(state) == "MASTER", 2)  # written after the VIP
        assert counters(state).get("rx_priority_zero") == 1
    else:
        assert keepalived_state(ka_log) == "MASTER"
