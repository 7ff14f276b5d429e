"""SIGHUP reload: in-place changes keep the state; a broken file is refused."""

from __future__ import annotations

import json
import os
import signal

import pytest

from tests.integration.vrrp.conftest import counters, read_state, vrrp_conf
from tests.integration.vrrp.lab import wait_for

pytestmark = [pytest.mark.root]


def test_reload_applies_changes_in_place_and_refuses_a_broken_file(lab, tmp_path):
    a = lab.hosts[0]
    vip, vip2 = lab.vip(100), lab.vip(101)
    conf, state, log = tmp_path / "a.conf", tmp_path / "a.json", tmp_path / "a.log"
    conf.write_text(vrrp_conf(vip=vip, priority=150))
    proc = lab.start_lbcore(a, conf, state, log)
    assert wait_for(lambda: read_state(state) == "MASTER" and a.has(vip), 10)

    # New priority and one more address: same group, so no transition.
    text = vrrp_conf(vip=vip, priority=120).replace(
        f"{vip}/24 dev eth0", f"{vip}/24 dev eth0\n        {vip2}/24 dev eth0"
    )
    conf.write_text(text)
    os.kill(proc.pid, signal.SIGHUP)

    def effective() -> int:
        return int(json.loads(state.read_text())["instances"]["VI_1"]["effective_priority"])

    assert wait_for(lambda: a.has(vip2) and effective() == 120, 5), log.read_text()
    assert read_state(state) == "MASTER" and a.has(vip)
    assert counters(state)["became_master"] == 1

    # A broken file: refused, the running configuration stays.
    conf.write_text(text.replace("priority 120", "priority 999"))
    os.kill(proc.pid, signal.SIGHUP)
    assert wait_for(lambda: "reload refused" in log.read_text(), 5)
    assert f"{conf}:" in log.read_text()  # names file:line
    assert read_state(state) == "MASTER" and a.has(vip) and a.has(vip2)

    # Removing an address takes it off the interface.
    conf.write_text(vrrp_conf(vip=vip, priority=120))
    os.kill(proc.pid, signal.SIGHUP)
    assert wait_for(lambda: not a.has(vip2), 5)
    assert a.has(vip) and counters(state)["became_master"] == 1

    # A new VRID is a different group: the old instance resigns, the new one starts.
    conf.write_text(vrrp_conf(vip=vip, priority=120, vrid=44))
    os.kill(proc.pid, signal.SIGHUP)
    assert wait_for(
        lambda: (
            json.loads(state.read_text())["instances"]["VI_1"]["vrid"] == 44
            and read_state(state) == "MASTER"
            and a.has(vip)
        ),
        5,
    )
    assert "Entering STOP STATE" in log.read_text()
