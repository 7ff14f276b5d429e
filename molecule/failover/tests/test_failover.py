"""Losing the active balancer (issue 9, Must show 3), under load through the VIP.

1. Stop the master's balancer: its VRRP agent's tracker lowers its priority and the peer
   takes the VIP; traffic continues; the balancer back, the master preempts again.
2. SIGKILL the master's VRRP agent: the peer holds the VIP within
   3 x advert + skew + 0.5 s (RFC 5798 §6.1: Master_Down_Interval = 3 x advert + skew,
   skew = (256 - priority) x advert / 256), measured from the kill to the peer's MASTER
   transition; requests fail only inside that window. Brought back, the agent preempts as
   configured (the lab's inventory says preempt).

Times are wall-clock on one machine: the kill is stamped on the killed host in the same
shell command, the transition by the agent in its state file, and every request here.
"""

from __future__ import annotations

import json
import time

import pytest

from tests.ops.load import Load
from tests.ops.verify import group, report, variables, wait_for

testinfra_hosts = ["ansible://lb1"]

STATE = "/run/lbcore/vrrp-state.json"
LBCORE = "/opt/lbcore/venv/bin/lbcore"
START_BALANCER = (
    f"{LBCORE} run -D -p /run/lbcore/lbcore.pid -f /etc/lbcore/lbcore.cfg "
    "--log-file /var/log/lbcore/lbcore.log"
)
START_AGENT = (
    f"{LBCORE} vrrpd -D -p /run/lbcore/vrrpd.pid -f /etc/lbcore/keepalived.conf "
    f"--state-file {STATE} --log-file /var/log/lbcore/vrrpd.log"
)
RATE = 40.0
TRACK = 2 * 1 + 1  # the role's tracker: fall 2 x interval 1 s, + its 1 s timeout


def vrrp(host) -> dict:
    """The agent's view of VI_1 on one host (state, since, priorities)."""
    out = host.run(f"cat {STATE}")
    return json.loads(out.stdout)["instances"]["VI_1"] if out.rc == 0 else {}


def roles(balancers) -> dict[str, dict]:
    return {b.backend.host: vrrp(b) for b in balancers}


def master_of(balancers) -> tuple:
    views = roles(balancers)
    masters = [b for b in balancers if views[b.backend.host].get("state") == "MASTER"]
    assert len(masters) == 1, views
    (master,) = masters
    (backup,) = [b for b in balancers if b is not master]
    return master, backup, views


def became_master_after(host, t0: float, timeout: float) -> float:
    """When (wall clock) `host` turned MASTER after t0, from its agent's state file."""

    def check() -> float | None:
        view = vrrp(host)
        return view["since"] if view.get("state") == "MASTER" and view["since"] > t0 else None

    return float(wait_for(f"{host.backend.host} to become MASTER", check, timeout, every=0.5))


def stamp_and(host, command: str) -> float:
    """Run `command` on the host; the host's clock just before it."""
    out = host.check_output(f"date +%s.%N; {command}")
    return float(out.split()[0])


# Wall-clock timing on a shared 2-core machine: one rerun before it counts as failed.
@pytest.mark.flaky(reruns=1)
def test_stopping_the_masters_balancer_moves_the_vip_and_back(host) -> None:
    v = variables(host)
    balancers = group(host, "balancers")
    master, backup, _ = master_of(balancers)
    advert = float(v.get("lbcore_vrrp_advert_int", 1))
    with Load(v["lbcore_lab_vip"], rate=RATE, threads=4, timeout=2.0, max_seconds=240) as load:
        time.sleep(2)
        t0 = stamp_and(master, "kill -TERM $(cat /run/lbcore/lbcore.pid)")
        moved = became_master_after(backup, t0, 60) - t0
        time.sleep(3)  # traffic continues through the new master
        after_move = time.time()
        master.check_output(START_BALANCER)
        # The tracker sees the balancer again (rise 2) and the master, preempting, takes
        # the VIP back.
        back = became_master_after(master, after_move, 60) - after_move
        time.sleep(2)
    bound = TRACK + 3 * advert + (256 - 100) * advert / 256 + 0.5
    report(
        "failover",
        step="balancer_stopped",
        master=master.backend.host,
        moved_s=round(moved, 2),
        bound_s=round(bound, 2),
        back_s=round(back, 2),
        **load.summary(),
    )
    assert moved <= bound + 1.0, (moved, bound)
    # Failures only while the VIP pointed at a host with no balancer, and when it moves
    # back (the preemption: connections in flight through the peer end with the move).
    windows = [(t0 - 0.1, t0 + moved + 1.0), (after_move - 0.1, after_move + back + 1.0)]
    outside = [s for s in load.failures if not any(a <= s.start <= b for a, b in windows)]
    assert not outside, [(round(s.start - t0, 2), s.error) for s in outside]
    assert load.achieved_rate >= 20
    assert [s for s in load.shots if s.start > t0 + moved + 1.0 and s.ok]
    views = roles(balancers)
    assert views[master.backend.host]["state"] == "MASTER", views
    assert views[backup.backend.host]["state"] == "BACKUP", views


# Wall-clock timing on a shared 2-core machine: one rerun before it counts as failed.
@pytest.mark.flaky(reruns=1)
def test_killing_the_masters_agent_moves_the_vip_within_the_configured_time(host) -> None:
    v = variables(host)
    balancers = group(host, "balancers")
    master, backup, views = master_of(balancers)
    advert = float(v.get("lbcore_vrrp_advert_int", 1))
    backup_priority = int(views[backup.backend.host]["base_priority"])
    skew = (256 - backup_priority) * advert / 256
    bound = 3 * advert + skew + 0.5
    with Load(v["lbcore_lab_vip"], rate=RATE, threads=4, timeout=2.0, max_seconds=240) as load:
        time.sleep(2)
        t0 = stamp_and(master, "kill -KILL $(cat /run/lbcore/vrrpd.pid)")
        moved = became_master_after(backup, t0, 60) - t0
        time.sleep(3)
        restarted = stamp_and(master, START_AGENT)
        # Preempt (the lab's setting): the restarted agent, priority 150, takes it back.
        back = became_master_after(master, restarted, 60) - restarted
        time.sleep(2)
    # Two moves, two windows: the failover itself, and the preemption back (connections in
    # flight to the peer at that moment end with it). A request started in a window may end
    # by its client timeout after it.
    windows = [(t0 - 0.1, t0 + moved + 0.5), (restarted - 0.1, restarted + back + 0.5)]
    outside = [s for s in load.failures if not any(a <= s.start <= b for a, b in windows)]
    report(
        "failover",
        step="agent_killed",
        master=master.backend.host,
        moved_s=round(moved, 3),
        bound_s=round(bound, 3),
        advert_s=advert,
        skew_s=round(skew, 3),
        back_s=round(back, 2),
        failed_at_s=[round(s.start - t0, 2) for s in load.failures],
        **load.summary(),
    )
    assert moved <= bound, f"VIP moved in {moved:.3f}s, more than 3 x {advert} + {skew:.3f} + 0.5"
    assert not outside, [(round(s.start - t0, 2), s.error) for s in outside]
    assert load.achieved_rate >= 20
    views = roles(balancers)
    assert views[master.backend.host]["state"] == "MASTER", views
    assert views[backup.backend.host]["state"] == "BACKUP", views
    holders = [
        b.backend.host
        for b in balancers
        if f" {v['lbcore_lab_vip']}/" in b.check_output("ip -o -4 addr show dev eth0")
    ]
    assert holders == [master.backend.host], holders


CONF = "/etc/lbcore/keepalived.conf"
NOPREEMPT_ON = (
    f"grep -q '^ *nopreempt' {CONF} || "
    f"sed -i 's/^\\( *\\)priority \\(.*\\)$/&\\n\\1nopreempt/' {CONF}; "
    "kill -HUP $(cat /run/lbcore/vrrpd.pid)"
)
NOPREEMPT_OFF = f"sed -i '/^ *nopreempt$/d' {CONF}; kill -HUP $(cat /run/lbcore/vrrpd.pid)"


# Wall-clock timing on a shared 2-core machine: one rerun before it counts as failed.
@pytest.mark.flaky(reruns=1)
def test_with_nopreempt_the_old_master_comes_back_as_backup(host) -> None:
    """The same kill with `nopreempt` configured (the agents reloaded with SIGHUP): the
    restarted agent stays BACKUP; made preemptive again, it takes the VIP back."""
    v = variables(host)
    balancers = group(host, "balancers")
    master, backup, _ = master_of(balancers)
    advert = float(v.get("lbcore_vrrp_advert_int", 1))
    try:
        for b in balancers:
            b.check_output(NOPREEMPT_ON)
        time.sleep(1)
        assert master_of(balancers)[0] is master  # a reload keeps the MASTER where it is
        t0 = stamp_and(master, "kill -KILL $(cat /run/lbcore/vrrpd.pid)")
        moved = became_master_after(backup, t0, 60) - t0
        master.check_output(START_AGENT)
        time.sleep(3 * advert + 2)  # longer than the master-down interval: no preemption
        views = roles(balancers)
        states = {name: view.get("state") for name, view in views.items()}
        report("failover", step="nopreempt", moved_s=round(moved, 3), states=states)
        assert views[backup.backend.host]["state"] == "MASTER", views
        assert views[master.backend.host]["state"] == "BACKUP", views
    finally:
        for b in balancers:
            b.check_output(NOPREEMPT_OFF)
    # Preemptive again: the higher priority takes the VIP back (the lab as it was).
    became_master_after(master, t0, 60)
    views = roles(balancers)
    assert views[backup.backend.host]["state"] == "BACKUP", views
