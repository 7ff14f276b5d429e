"""Two lbcore agents in two namespaces on a bridge: election, failover, preemption, stop."""

from __future__ import annotations

import signal
import subprocess
import time

import pytest

from lbcore.vrrp.fsm import master_down_interval
from tests.conftest import lbcore_cmd, lbcore_env
from tests.integration.vrrp.conftest import (
    Sampler,
    counters,
    lbcore_declares_master,
    read_state,
    vrrp_conf,
)
from tests.integration.vrrp.lab import wait_for

pytestmark = [pytest.mark.root]


def start_pair(lab, tmp_path, *, advert="0.1", version=3, extra_a="", extra_b="", prio=(150, 100)):
    a, b = lab.hosts
    vip = lab.vip()
    procs = {}
    for host, name, p, extra in ((a, "a", prio[0], extra_a), (b, "b", prio[1], extra_b)):
        conf = tmp_path / f"{name}.conf"
        conf.write_text(vrrp_conf(vip=vip, priority=p, version=version, advert=advert, extra=extra))
        procs[name] = lab.start_lbcore(
            host, conf, tmp_path / f"{name}.json", tmp_path / f"{name}.log"
        )
        if name == "a":  # a first, so that it is the master whatever the preemption rules
            up = wait_for(lambda: read_state(tmp_path / "a.json") == "MASTER", 15)
            assert up, (tmp_path / "a.log").read_text()
    return a, b, vip, procs


def restart(lab, tmp_path, host, name):
    return lab.start_lbcore(
        host, tmp_path / f"{name}.conf", tmp_path / f"{name}.json", tmp_path / f"{name}.log"
    )


def test_higher_priority_is_master_sigkill_moves_vip_and_restart_preempts(lab, tmp_path):
    a, b, vip, procs = start_pair(lab, tmp_path)
    assert wait_for(lambda: read_state(tmp_path / "a.json") == "MASTER", 10), (
        tmp_path / "a.log"
    ).read_text()
    assert wait_for(lambda: read_state(tmp_path / "b.json") == "BACKUP" and not b.has(vip), 5)
    assert a.has(vip)
    out = subprocess.run(
        lbcore_cmd("vrrp", "status", "VI_1", "-S", str(tmp_path / "a.json")),
        env=lbcore_env(),
        capture_output=True,
        text=True,
    )
    assert (out.returncode, out.stdout) == (0, "MASTER\n")

    sampler = Sampler(
        [a, b],
        vip,
        [
            lbcore_declares_master(lambda: procs["a"], tmp_path / "a.json"),
            lbcore_declares_master(lambda: procs["b"], tmp_path / "b.json"),
        ],
    )
    with sampler as s:
        time.sleep(0.5)
        t_kill = time.monotonic()
        lab.kill(procs["a"], signal.SIGKILL)
        assert wait_for(lambda: b.has(vip), 5, 0.005)
        takeover = time.monotonic() - t_kill
        bound = master_down_interval(3, 100, 0.1) + 0.5  # 3 x advert + skew + 0.5 s
        assert takeover < bound, f"takeover {takeover:.3f}s > {bound:.3f}s"
        assert a.has(vip)  # SIGKILL leaves the dead master's address behind ...

        procs["a"] = restart(lab, tmp_path, a, "a")
        # ... which the restarted agent clears at once, then preempts back.
        assert wait_for(lambda: a.has(vip) and not b.has(vip), 10)
        assert wait_for(lambda: read_state(tmp_path / "b.json") == "BACKUP", 5)
        time.sleep(0.3)
    assert "removed stale virtual address" in (tmp_path / "a.log").read_text()
    assert s.masters_seen() == {0, 1}
    assert s.longest_dual_master() <= 0.1, s.longest_dual_master()


def test_nopreempt_keeps_the_new_master(lab, tmp_path):
    a, b, vip, procs = start_pair(lab, tmp_path, extra_a="    nopreempt", extra_b="    nopreempt")
    assert wait_for(lambda: a.has(vip) and read_state(tmp_path / "b.json") == "BACKUP", 10)
    lab.kill(procs["a"], signal.SIGKILL)
    assert wait_for(lambda: b.has(vip), 5, 0.01)
    procs["a"] = restart(lab, tmp_path, a, "a")
    assert wait_for(lambda: read_state(tmp_path / "a.json") == "BACKUP" and not a.has(vip), 5)
    time.sleep(1.5)  # 15 advert intervals, > 3 master-down intervals
    assert read_state(tmp_path / "a.json") == "BACKUP" and not a.has(vip)
    assert read_state(tmp_path / "b.json") == "MASTER" and b.has(vip)


def test_sigterm_hands_over_within_one_second_through_priority_zero(lab, tmp_path):
    # VRRPv2, advert 1 s: without the priority-0 advert the backup would wait 3.6 s.
    a, b, vip, procs = start_pair(lab, tmp_path, advert="1", version=2)
    assert wait_for(lambda: a.has(vip) and read_state(tmp_path / "b.json") == "BACKUP", 12)
    time.sleep(1.2)
    t_term = time.monotonic()
    lab.kill(procs["a"], signal.SIGTERM, wait=0)  # time the handover, not the exit
    assert wait_for(lambda: b.has(vip), 3, 0.005)
    handover = time.monotonic() - t_term
    assert handover < 1.0, handover
    assert procs["a"].wait(5) == 0
    assert not a.has(vip)  # a clean stop removes its address
    assert read_state(tmp_path / "a.json") == "STOP"
    assert counters(tmp_path / "a.json")["tx_priority_zero"] == 1
    assert wait_for(lambda: read_state(tmp_path / "b.json") == "MASTER", 2)
    assert counters(tmp_path / "b.json")["rx_priority_zero"] == 1


def test_notify_scripts_get_keepalived_arguments(lab, tmp_path):
    log = tmp_path / "notify.log"
    script = tmp_path / "notify.sh"
    script.write_text(f'#!/bin/sh\necho "$@" >> {log}\n')
    script.chmod(0o755)
    extra = (
        f'    notify_master "{script} became-master"\n'
        f'    notify_backup "{script} became-backup"\n'
        f'    notify_stop "{script} stopped"\n'
        f"    notify {script}\n"
    )
    *_, procs = start_pair(lab, tmp_path, extra_a=extra)
    assert wait_for(lambda: log.exists() and "INSTANCE VI_1 MASTER 150" in log.read_text(), 10)
    lab.kill(procs["a"], signal.SIGTERM)
    assert procs["a"].wait(10) == 0
    lines = log.read_text().splitlines()
    assert lines == [
        "became-backup",
        "INSTANCE VI_1 BACKUP 150",
        "became-master",
        "INSTANCE VI_1 MASTER 150",
        "stopped",
        "INSTANCE VI_1 STOP 150",
    ]
