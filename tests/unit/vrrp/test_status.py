"""`lbcore vrrp status` reads the agent's state file; rise/fall of tracked scripts."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

from lbcore.vrrp import status
from tests.conftest import lbcore_cmd, lbcore_env


def state_doc(pid: int) -> dict:
    return {
        "pid": pid,
        "router_id": "LB1",
        "updated": time.time(),
        "groups": {},
        "instances": {
            "VI_1": {
                "state": "MASTER",
                "vrid": 51,
                "interface": "eth0",
                "version": 3,
                "base_priority": 150,
                "effective_priority": 120,
                "advert_int": 0.1,
                "addresses": ["198.19.9.100/24"],
                "source": "198.19.9.10",
                "master": "198.19.9.10",
                "master_priority": 120,
                "faults": [],
                "since": time.time() - 42,
                "counters": {"tx_adverts": 3},
            }
        },
    }


def test_table_json_and_single_instance(tmp_path, capsys):
    path = tmp_path / "state.json"
    path.write_text(json.dumps(state_doc(os.getpid())))
    assert status.main(["status", "-S", str(path)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].split() == [
        "INSTANCE",
        "STATE",
        "PRIO",
        "VRID",
        "IFACE",
        "MASTER",
        "SINCE",
        "ADDRESSES",
    ]
    assert out[1].split() == [
        "VI_1",
        "MASTER",
        "120/150",
        "51",
        "eth0",
        "198.19.9.10",
        "42s",
        "198.19.9.100/24",
    ]
    assert status.main(["status", "VI_1", "-S", str(path)]) == 0
    assert capsys.readouterr().out == "MASTER\n"
    assert status.main(["status", "--json", "-S", str(path)]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["running"] is True and doc["instances"]["VI_1"]["counters"] == {"tx_adverts": 3}
    assert status.main(["status", "VI_9", "-S", str(path)]) == 1


def test_dead_agent_is_reported_stale(tmp_path, capsys):
    proc = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    )
    path = tmp_path / "state.json"
    path.write_text(json.dumps(state_doc(int(proc.stdout))))
    assert status.main(["-S", str(path)]) == 3
    assert "MASTER(stale)" in capsys.readouterr().out
    assert status.main(["status", "VI_1", "-S", str(path)]) == 3
    assert capsys.readouterr().out == "STOP\n"


def test_missing_or_garbage_file(tmp_path, capsys):
    assert status.main(["-S", str(tmp_path / "none.json")]) == 1
    (tmp_path / "bad.json").write_text("{not json")
    assert status.main(["-S", str(tmp_path / "bad.json")]) == 1
    assert "cannot read" in capsys.readouterr().err


def test_status_runs_as_an_lbcore_subcommand(tmp_path):
    path = tmp_path / "state.json"
    path.write_text(json.dumps(state_doc(os.getpid())))
    out = subprocess.run(
        lbcore_cmd("vrrp", "status", "-S", str(path)),
        env=lbcore_env(),
        capture_output=True,
        text=True,
    )
    assert out.returncode == 0  # the pid in the file (this test) is alive
    assert "VI_1" in out.stdout
