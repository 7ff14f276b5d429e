"""Verify the converged site on the lab (molecule's testinfra verifier).

Runs under `pytest --connection=ansible --ansible-inventory=<molecule's inventory>`, so
`host` is each balancer reached through Ansible; the traffic checks run here, in the root
namespace, the way a client outside the fleet reaches the VIP.
"""

from __future__ import annotations

import collections
import urllib.request

import pytest
import testinfra

testinfra_hosts = ["ansible://balancers"]


def _pid_alive(host, pidfile: str) -> bool:
    pid = host.file(pidfile).content_string.strip()
    return pid.isdigit() and host.file(f"/proc/{pid}").exists


def test_balancer_and_vrrp_agent_are_running(host) -> None:
    assert _pid_alive(host, "/run/lbcore/lbcore.pid")
    assert _pid_alive(host, "/run/lbcore/vrrpd.pid")
    cmdlines = host.check_output("ps -eo args")
    assert "lbcore run -D" in cmdlines and "lbcore vrrpd -D" in cmdlines


def test_frontend_listens_on_port_80_on_every_address(host) -> None:
    assert host.socket("tcp://0.0.0.0:80").is_listening


def test_files_have_the_right_modes(host) -> None:
    config = host.file("/etc/lbcore/lbcore.cfg")
    assert config.mode == 0o644 and config.user == "root"
    assert host.file("/etc/lbcore/keepalived.conf").mode == 0o644


def test_admin_socket_listens_for_root_only(host) -> None:
    sock = host.file("/run/lbcore/admin.sock")
    if not sock.exists:
        pytest.skip("lbcore run on this checkout does not serve its admin socket yet")
    assert sock.is_socket and sock.mode == 0o600 and sock.user == "root"
    assert host.socket("unix:///run/lbcore/admin.sock").is_listening


def _balancers(host) -> list:
    inventory = host.backend.ansible_inventory
    return testinfra.get_hosts(
        ["ansible://balancers"], ansible_inventory=inventory, force_ansible=True
    )


def test_the_vip_is_on_exactly_one_balancer(host) -> None:
    vip = host.backend.get_variables()["lbcore_lab_vip"]
    holders = [
        b.backend.host
        for b in _balancers(host)
        if f" {vip}/" in b.check_output("ip -o -4 addr show dev eth0")
    ]
    assert len(holders) == 1, holders


def test_requests_through_the_vip_spread_over_the_backends(host) -> None:
    variables = host.backend.get_variables()
    vip = variables["lbcore_lab_vip"]
    backends = set(variables["groups"]["backends"])
    counts: collections.Counter[str] = collections.Counter()
    for _ in range(3 * len(backends)):
        req = urllib.request.Request(f"http://{vip}/", headers={"Connection": "close"})
        with urllib.request.urlopen(req, timeout=10) as r:
            assert r.status == 200
            counts[r.headers["X-Served-By"]] += 1
    assert set(counts) == backends, counts
