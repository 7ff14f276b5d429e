"""`lbcore run -sf OLDPID`: the restart the balancer role does when the installed code
changed (issue 9, follow-up: a rebuilt wheel must run, without dropping service).

A reload cannot pick up new code (workers are forked from a master that keeps the modules
it loaded), so a new master starts beside the old one — its listeners share the port
through SO_REUSEPORT — and once it serves it tells the old one to finish gracefully. The
driver (tests/ops/swapctl.py) runs in a private network namespace with
net.ipv4.tcp_migrate_req=1, as the role sets it on a balancer, under a steady load of
new connections and with one slow request in flight through the old master, and with
one server drained by an operator (`set server app/web2 state drain`) beforehand: the new
master reads that from the old one's stats socket before it serves, so it keeps it.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO, lbcore_env, need_root

pytestmark = [pytest.mark.root]


@pytest.mark.timeout(180)
def test_a_new_master_takes_over_and_the_old_one_finishes_without_a_failed_request(
    tmp_path: Path,
) -> None:
    need_root()
    if shutil.which("unshare") is None or not Path("/proc/sys/net/ipv4/tcp_migrate_req").exists():
        pytest.skip("needs unshare and net.ipv4.tcp_migrate_req (Linux 5.14+)")
    proc = subprocess.run(
        ["unshare", "--net", sys.executable, "-m", "tests.ops.swapctl", str(tmp_path)],
        cwd=REPO,
        env=lbcore_env(),
        capture_output=True,
        text=True,
        timeout=150,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    r = json.loads(proc.stdout.strip().splitlines()[-1])
    summary = {k: v for k, v in r.items() if k not in ("log", "show_info", "servers_state")}
    print(json.dumps(summary))
    assert r["swap_rc"] == 0, r["swap_stderr"]
    assert r["new"] != r["old"] and r["new_alive"], summary
    # The old master finished (once the slow request through it was answered) and exited.
    assert not r["old_alive"], summary
    assert r["slow"] == {"served_by": "web1"}, summary
    assert r["old_gone_after_s"] >= 1.0, summary  # it waited for the slow request
    # Not one request failed while the two masters swapped, and B served after A left.
    assert r["errors"] == [], summary
    assert r["requests"] > r["requests_before_swap"] + 20, summary
    # B owns the stats socket: A, exiting, did not remove B's socket file.
    assert r["socket_exists"], summary
    assert f"Pid: {r['new']}" in r["show_info"], r["show_info"]
    assert f"Sent SIGUSR1 to old process {r['old']}" in r["log"], r["log"][-3000:]
    # web2 stayed drained: the new master took the state over before its first worker.
    assert "Server app/web2 kept in drain state from the old process" in r["log"], r["log"]
    web2 = [line.split() for line in r["servers_state"].splitlines() if " web2 " in line]
    assert web2 and web2[0][6] == "8", r["servers_state"]  # SRV_ADMF_FDRAIN
    assert r["served_after_swap"] == {"web1": r["served_after_swap"].get("web1", 0)}, summary
    assert r["served_after_swap"]["web1"] > 20, summary
