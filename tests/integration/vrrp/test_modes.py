"""Daemon mode, unicast peers (with keepalived as the peer), sync groups."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from tests.conftest import lbcore_cmd, lbcore_env
from tests.integration.vrrp.conftest import counters, keepalived_state, read_state, vrrp_conf
from tests.integration.vrrp.lab import wait_for

pytestmark = [pytest.mark.root]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return (
        Path(f"/proc/{pid}").exists()
        and "Z" not in Path(f"/proc/{pid}/stat").read_text().split(")")[1][:3]
    )


def test_daemon_mode_writes_pidfile_and_stops_cleanly_on_sigterm(lab, tmp_path):
    a = lab.hosts[0]
    vip = lab.vip()
    conf = tmp_path / "a.conf"
    conf.write_text(vrrp_conf(vip=vip, priority=150))
    # pidfile and log in directories that do not exist yet: the agent creates them
    pidfile, state, log = tmp_path / "run/vrrpd.pid", tmp_path / "a.json", tmp_path / "log/a.log"
    argv = lbcore_cmd(
        "vrrpd", "-D", "-p", str(pidfile), "-f", str(conf), "-S", str(state), "-l", str(log)
    )
    started = subprocess.run(
        a.exec_cmd(argv), env=lbcore_env(), capture_output=True, text=True, timeout=20
    )
    assert started.returncode == 0, started.stderr  # the launcher returns; the daemon stays
    pid = 0
    try:
        assert wait_for(pidfile.exists, 10)
        pid = int(pidfile.read_text())
        assert wait_for(lambda: read_state(state) == "MASTER", 10), log.read_text()
        assert json.loads(state.read_text())["pid"] == pid
        assert a.has(vip)
        os.kill(pid, signal.SIGTERM)
        assert wait_for(lambda: not _alive(pid), 10)
        assert not pidfile.exists() and not a.has(vip)
        assert read_state(state) == "STOP"
    finally:
        if pid and _alive(pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


def test_daemon_mode_reports_a_startup_failure_to_the_launcher(lab, tmp_path):
    a = lab.hosts[0]
    conf = tmp_path / "a.conf"
    conf.write_text(
        vrrp_conf(vip=lab.vip(), priority=150).replace("interface eth0", "interface nosuch0")
    )
    pidfile = tmp_path / "vrrpd.pid"
    argv = lbcore_cmd(
        "vrrpd", "-D", "-p", str(pidfile), "-f", str(conf), "-S", str(tmp_path / "s.json")
    )
    out = subprocess.run(
        a.exec_cmd(argv), env=lbcore_env(), capture_output=True, text=True, timeout=20
    )
    assert out.returncode == 1
    assert f"{conf}:" in out.stderr and "interface nosuch0 has no IPv4 address" in out.stderr
    assert wait_for(lambda: not pidfile.exists(), 5)


def unicast_extra(src: str, peer: str) -> str:
    return f"    unicast_src_ip {src}\n    unicast_peer {{\n        {peer}\n    }}"


def test_unicast_interop_with_keepalived_v3(lab, tmp_path, keepalived):
    a, b = lab.hosts  # a: lbcore (150), b: keepalived (100)
    vip = lab.vip()
    (tmp_path / "a.conf").write_text(
        vrrp_conf(vip=vip, priority=150, extra=unicast_extra(a.addr, b.addr))
    )
    (tmp_path / "b.conf").write_text(
        vrrp_conf(vip=vip, priority=100, extra=unicast_extra(b.addr, a.addr))
    )
    state = tmp_path / "a.json"

    def start_a() -> subprocess.Popen[bytes]:
        return lab.start_lbcore(a, tmp_path / "a.conf", state, tmp_path / "a.log")

    lb = start_a()
    assert wait_for(lambda: read_state(state) == "MASTER", 10)
    lab.start_keepalived(b, tmp_path / "b.conf", tmp_path / "ka.log")
    assert wait_for(lambda: keepalived_state(tmp_path / "ka.log") == "BACKUP", 10)
    time.sleep(0.6)  # > one master-down interval: keepalived accepts our unicast adverts
    assert keepalived_state(tmp_path / "ka.log") == "BACKUP" and not b.has(vip)
    lab.kill(lb, signal.SIGKILL)
    assert wait_for(lambda: keepalived_state(tmp_path / "ka.log") == "MASTER" and b.has(vip), 2)
    lb = start_a()
    assert wait_for(lambda: read_state(state) == "MASTER" and not b.has(vip), 10)
    assert wait_for(lambda: keepalived_state(tmp_path / "ka.log") == "BACKUP", 3)
    got = counters(state)
    assert got.get("rx_adverts", 0) > 0 and not [k for k in got if k.startswith("rx_drop")], got


SYNC = """global_defs {{
    vrrp_version 3
}}
vrrp_script chk {{
    script "/bin/sh -c 'test ! -e {flag}'"
    interval 0.1
}}
vrrp_instance VI_1 {{
    interface eth0
    virtual_router_id 42
    priority 150
    advert_int 0.1
    virtual_ipaddress {{
        {vip1}/24
    }}
}}
vrrp_instance VI_2 {{
    interface eth0
    virtual_router_id 43
    priority 150
    advert_int 0.1
    virtual_ipaddress {{
        {vip2}/24
    }}
    track_script {{
        chk
    }}
}}
vrrp_sync_group G {{
    group {{
        VI_1
        VI_2
    }}
    notify "{notify}"
}}
"""


def test_sync_group_members_fault_and_recover_together(lab, tmp_path):
    a = lab.hosts[0]
    vip1, vip2 = lab.vip(100), lab.vip(101)
    flag, notify_log = tmp_path / "broken", tmp_path / "notify.log"
    notify = tmp_path / "notify.sh"
    notify.write_text(f'#!/bin/sh\necho "$@" >> {notify_log}\n')
    notify.chmod(0o755)
    conf = tmp_path / "a.conf"
    conf.write_text(SYNC.format(flag=flag, vip1=vip1, vip2=vip2, notify=notify))
    state = tmp_path / "a.json"
    lab.start_lbcore(a, conf, state, tmp_path / "a.log")
    assert wait_for(lambda: read_state(state, "VI_1") == read_state(state, "VI_2") == "MASTER", 10)
    assert a.has(vip1) and a.has(vip2)

    flag.touch()  # VI_2's weight-0 script fails: VI_2 FAULT, and VI_1 follows it
    assert wait_for(lambda: read_state(state, "VI_1") == read_state(state, "VI_2") == "FAULT", 5)
    assert not a.has(vip1) and not a.has(vip2)
    doc = json.loads(state.read_text())["instances"]
    assert doc["VI_1"]["faults"] == ["group:G"] and doc["VI_2"]["faults"] == ["script:chk"]

    flag.unlink()
    assert wait_for(lambda: read_state(state, "VI_1") == read_state(state, "VI_2") == "MASTER", 5)
    expected = ["BACKUP", "MASTER", "FAULT", "BACKUP", "MASTER"]
    want = [f"GROUP G {st} 0" for st in expected]
    assert wait_for(
        lambda: notify_log.exists() and notify_log.read_text().splitlines() == want, 5
    ), notify_log.read_text()


def test_address_owner_is_master_at_once_and_labels_its_address(lab, tmp_path):
    a = lab.hosts[0]
    vip = lab.vip()
    text = vrrp_conf(vip=vip, priority=255, advert="1").replace(
        f"{vip}/24 dev eth0", f"{vip}/24 dev eth0 label eth0:vip"
    )
    conf, state, log = tmp_path / "a.conf", tmp_path / "a.json", tmp_path / "a.log"
    conf.write_text(text)
    lab.start_lbcore(a, conf, state, log)
    assert wait_for(lambda: read_state(state) is not None, 10)
    # Priority 255: MASTER straight from INIT, no 3-advert wait (RFC 5798 §6.4.1).
    assert wait_for(lambda: read_state(state) == "MASTER", 2)
    assert "from INIT, priority 255: startup; address owner" in log.read_text()
    out = subprocess.run(
        ["ip", "-n", a.ns, "-o", "-4", "addr", "show", "dev", "eth0"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    line = next(ln for ln in out.splitlines() if f"inet {vip}/24" in ln)
    assert " eth0:vip" in line  # the label, as `ip addr` shows it
