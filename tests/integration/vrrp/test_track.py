"""Trackers move mastership: track_script weights, track_interface faults, the built-in
balancer tracker (against a real HAProxy admin socket, which lbcore's runtime API mirrors)."""

from __future__ import annotations

import asyncio
import json
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest

from lbcore.vrrp.checks import check_balancer
from tests.conftest import free_port, lbcore_cmd, lbcore_env, need_binary
from tests.integration.vrrp.conftest import read_state, vrrp_conf
from tests.integration.vrrp.lab import wait_for


def effective(path: Path) -> int:
    return int(json.loads(path.read_text())["instances"]["VI_1"]["effective_priority"])


def start_pair(lab, tmp_path, *, scripts_a="", extra_a="", prio=(150, 120)):
    a, b = lab.hosts
    vip = lab.vip()
    procs = {}
    for host, name, p in ((a, "a", prio[0]), (b, "b", prio[1])):
        conf = tmp_path / f"{name}.conf"
        text = vrrp_conf(
            vip=vip,
            priority=p,
            scripts=scripts_a if name == "a" else "",
            extra=extra_a if name == "a" else "",
        )
        conf.write_text(text)
        procs[name] = lab.start_lbcore(
            host, conf, tmp_path / f"{name}.json", tmp_path / f"{name}.log"
        )
        if name == "a":
            assert wait_for(lambda: read_state(tmp_path / "a.json") == "MASTER", 15), (
                tmp_path / "a.log"
            ).read_text()
    assert wait_for(lambda: read_state(tmp_path / "b.json") == "BACKUP", 10)
    return a, b, vip, procs


def swapped(tmp_path, a, b, vip, a_state):
    """a is in ``a_state`` and b holds the VIP, or the reverse when a is MASTER."""
    a_master = a_state == "MASTER"
    return (
        read_state(tmp_path / "a.json") == a_state
        and read_state(tmp_path / "b.json") == ("BACKUP" if a_master else "MASTER")
        and a.has(vip) == a_master
        and b.has(vip) != a_master
    )


@pytest.mark.root
def test_failing_track_script_lowers_priority_by_weight_and_recovery_takes_it_back(lab, tmp_path):
    flag = tmp_path / "broken"
    scripts = f"""vrrp_script chk_flag {{
    script "/bin/sh -c 'test ! -e {flag}'"
    interval 0.1
    weight -60
    fall 2
    rise 2
}}"""
    extra = "    track_script {\n        chk_flag\n    }"
    a, b, vip, _ = start_pair(lab, tmp_path, scripts_a=scripts, extra_a=extra)
    assert effective(tmp_path / "a.json") == 150

    flag.touch()  # the check now exits 1
    assert wait_for(lambda: swapped(tmp_path, a, b, vip, "BACKUP"), 5)
    assert effective(tmp_path / "a.json") == 90  # 150 - 60 < 120: b preempted

    flag.unlink()  # recovered: 150 again, and a preempts back
    assert wait_for(lambda: swapped(tmp_path, a, b, vip, "MASTER"), 5)
    assert effective(tmp_path / "a.json") == 150
    log = (tmp_path / "a.log").read_text()
    assert "vrrp_script chk_flag is now FAILED" in log and "effective priority 150 -> 90" in log


@pytest.mark.root
def test_track_interface_down_means_fault_and_up_means_back(lab, tmp_path):
    a = lab.hosts[0]
    # A veth pair inside a's namespace (no dummy module on every kernel).
    ip = ["ip", "-n", a.ns, "link"]
    subprocess.run([*ip, "add", "trk0", "type", "veth", "peer", "name", "trk1"], check=True)
    subprocess.run([*ip, "set", "trk1", "up"], check=True)
    subprocess.run([*ip, "set", "trk0", "up"], check=True)
    a, b, vip, _ = start_pair(lab, tmp_path, extra_a="    track_interface {\n        trk0\n    }")

    t0 = time.monotonic()
    subprocess.run([*ip, "set", "trk1", "down"], check=True)  # trk0 loses its carrier
    # FAULT resigns with priority 0: b takes over after its skew time, not 3 adverts.
    assert wait_for(lambda: swapped(tmp_path, a, b, vip, "FAULT"), 5, 0.005)
    assert time.monotonic() - t0 < 1.0
    doc = json.loads((tmp_path / "a.json").read_text())["instances"]["VI_1"]
    assert doc["faults"] == ["interface:trk0"]

    subprocess.run([*ip, "set", "trk1", "up"], check=True)
    assert wait_for(lambda: swapped(tmp_path, a, b, vip, "MASTER"), 5)


HAPROXY_CFG = """global
    stats socket {sock} mode 600 level admin
defaults
    mode tcp
    timeout connect 1s
    timeout client 5s
    timeout server 5s
frontend fe
    bind 127.0.0.1:{port}
    default_backend be
backend be
    server s1 127.0.0.1:9
"""


def start_haproxy(
    tmp_path: Path, argv_prefix: list[str] | None = None
) -> tuple[subprocess.Popen[bytes], Path]:
    haproxy = need_binary("haproxy")
    sock = tmp_path / "admin.sock"
    cfg = tmp_path / "haproxy.cfg"
    port = free_port()
    cfg.write_text(HAPROXY_CFG.format(sock=sock, port=port))
    proc = subprocess.Popen(
        [*(argv_prefix or []), haproxy, "-db", "-f", str(cfg)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    return proc, sock


def admin(sock: Path, command: str) -> str:
    with socket.socket(socket.AF_UNIX) as s:
        s.connect(str(sock))
        s.sendall(command.encode() + b"\n")
        out = b""
        while chunk := s.recv(65536):
            out += chunk
    return out.decode()


def test_builtin_balancer_check_against_haproxy_admin_socket(tmp_path):
    proc, sock = start_haproxy(tmp_path)
    try:
        assert wait_for(sock.exists, 10)
        assert asyncio.run(check_balancer(str(sock), 2.0)) is True
        admin(sock, "disable frontend fe")  # no frontend serving: unhealthy
        assert asyncio.run(check_balancer(str(sock), 2.0)) is False
        admin(sock, "enable frontend fe")
        assert asyncio.run(check_balancer(str(sock), 2.0)) is True
    finally:
        proc.kill()
        proc.wait(10)
    # Dead balancer: its socket file stays, the connection is refused.
    assert asyncio.run(check_balancer(str(sock), 2.0)) is False
    assert asyncio.run(check_balancer(str(tmp_path / "nope.sock"), 2.0)) is False


@pytest.mark.root
def test_builtin_balancer_tracker_moves_the_vip_when_the_balancer_dies(lab, tmp_path):
    a = lab.hosts[0]
    hap, sock = start_haproxy(tmp_path, ["ip", "netns", "exec", a.ns])
    lab.procs.append(hap)
    assert wait_for(sock.exists, 10)
    scripts = f"""vrrp_script chk_lb {{
    lbcore_socket {sock}
    interval 0.1
    weight -60
}}"""
    extra = "    track_script {\n        chk_lb\n    }"
    a, b, vip, _ = start_pair(lab, tmp_path, scripts_a=scripts, extra_a=extra)
    lab.kill(hap, signal.SIGKILL)
    assert wait_for(lambda: swapped(tmp_path, a, b, vip, "BACKUP"), 5)
    assert effective(tmp_path / "a.json") == 90
    hap2, _ = start_haproxy(tmp_path, ["ip", "netns", "exec", a.ns])
    lab.procs.append(hap2)
    assert wait_for(lambda: swapped(tmp_path, a, b, vip, "MASTER"), 10)


def test_builtin_balancer_check_against_lbcore_own_admin_socket(tmp_path):
    """The tracker's real target: `lbcore run`'s admin socket (same config as HAProxy's)."""
    sock, cfg, log = tmp_path / "admin.sock", tmp_path / "lb.cfg", tmp_path / "lb.log"
    cfg.write_text(HAPROXY_CFG.format(sock=sock, port=free_port()))
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            lbcore_cmd("run", "-f", str(cfg), "--workers", "1"),
            env=lbcore_env(),
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        assert wait_for(lambda: asyncio.run(check_balancer(str(sock), 2.0)), 20), log.read_text()
    finally:
        proc.terminate()  # by PID; SIGTERM so the master takes its workers down too
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
    assert not asyncio.run(check_balancer(str(sock), 1.0))
