"""lb_info against a live HAProxy admin socket; vrrp_info against agent state files."""

from __future__ import annotations

import json
import os
import urllib.request

import pytest

from tests.collection.haproxy_oracle import haproxy


@pytest.fixture
def oracle(tmp_path):
    yield from haproxy(tmp_path)


def test_lb_info_reports_servers_states_and_counters(run_module, oracle):
    for _ in range(6):
        urllib.request.urlopen(f"http://127.0.0.1:{oracle.port}/", timeout=5).read()
    rc, _ = run_module(
        "backend_server",
        {"socket": oracle.socket, "backend": "app", "server": "web3", "state": "drain"},
    )
    assert rc == 0
    rc, res = run_module("lb_info", {"socket": oracle.socket}, check=True)
    assert rc == 0 and res["changed"] is False
    assert res["info"]["Name"] in ("HAProxy", "lbcore")
    assert set(res["frontends"]) == {"fe"} and res["frontends"]["fe"]["stot"] >= 6
    servers = res["backends"]["app"]["servers"]
    assert set(servers) == {"web1", "web2", "web3"}
    assert servers["web3"]["admin_state"] == "drain" and servers["web1"]["admin_state"] == "ready"
    assert sum(s["stot"] for s in servers.values()) == 6
    assert sum(s["hrsp_2xx"] for s in servers.values()) == 6
    rc, res = run_module("lb_info", {"socket": oracle.socket, "backend": "nope"})
    assert rc != 0 and "No such backend" in res["msg"]


def test_vrrp_info(run_module, tmp_path):
    path = tmp_path / "vrrp-state.json"
    doc = {
        "pid": os.getpid(),
        "instances": {
            "VI_1": {
                "state": "MASTER",
                "effective_priority": 150,
                "base_priority": 150,
                "vrid": 51,
                "interface": "eth0",
                "addresses": ["198.18.0.100/24"],
                "master": "198.18.0.11",
            }
        },
    }
    path.write_text(json.dumps(doc))
    rc, res = run_module("vrrp_info", {"state_file": str(path)})
    assert rc == 0 and res["running"] is True
    assert res["instances"]["VI_1"]["state"] == "MASTER"
    assert res["instances"]["VI_1"]["addresses"] == ["198.18.0.100/24"]
    doc["pid"] = 2**22 + 12345  # no such process: the file is stale
    path.write_text(json.dumps(doc))
    rc, res = run_module("vrrp_info", {"state_file": str(path)})
    assert rc == 0 and res["running"] is False and res["instances"]["VI_1"]["state"] == "STOP"
    rc, res = run_module("vrrp_info", {"state_file": str(tmp_path / "none.json")})
    assert rc != 0 and "cannot read VRRP state file" in res["msg"]
