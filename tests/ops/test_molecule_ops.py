"""`molecule test` of the operations scenarios (issue 9), as CI runs them.

Each scenario (molecule/rolling_drain, molecule/failover, molecule/tls) builds the lab,
converges the site, runs its testinfra verifier and removes the lab. Here they run one
after the other on ONE private lab (tests/ops/opsctl.py: bridge lbco0, 198.18.9.0/24):
LBCORE_MOLECULE_KEEP_LAB=1 makes each scenario's destroy leave the lab for the next, so
the lab and the site are built once, which keeps the three within the time budget. The
module's finalizer removes the lab whatever happened. The figures the verifiers measure
(load, failures, VIP move times) come back through $LBCORE_OPS_REPORT and are printed.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import trustme

from tests.conftest import REPO, lbcore_cmd, lbcore_env, need_root
from tests.lab.labctl import Ansible, ansible_bin
from tests.ops.opsctl import write_inventory

pytestmark = [pytest.mark.root, pytest.mark.slow]

SCENARIOS = ("rolling_drain", "failover", "tls")


@pytest.fixture(scope="module")
def ops_lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[dict[str, str], Path]]:
    """The collection built once, a private inventory; the lab removed at the end."""
    need_root()
    molecule = ansible_bin("molecule")
    if molecule is None:
        pytest.skip("molecule is not installed (make venv installs it)")
    tmp = tmp_path_factory.mktemp("ops")
    built = Ansible.build(tmp)
    # Health checks on: "the balancers see it UP" then means their checks saw the new app.
    inventory = write_inventory(tmp / "inventory", "lbcore_balancer_check: true\n")
    env = {k: v for k, v in built.env.items() if "CALLBACK" not in k}
    env.update(
        PATH=f"{Path(molecule).parent}{os.pathsep}{env.get('PATH', '')}",
        LBCORE_MOLECULE_INVENTORY=str(inventory),
        LBCORE_MOLECULE_KEEP_LAB="1",
        LBCORE_OPS_REPORT=str(tmp / "report.jsonl"),
        XDG_CACHE_HOME=str(tmp / "cache"),  # molecule's ephemeral directory
        MOLECULE_NO_LOG="false",
        ANSIBLE_SSH_ARGS="-o ControlMaster=auto -o ControlPersist=120s",
    )
    try:
        yield env, tmp
    finally:
        subprocess.run(
            [
                str(ansible_bin("ansible-playbook")),
                *("-i", str(inventory), "lbcore.fleet.lab", "-e", "lab_state=absent"),
            ],
            env=env,
            cwd=REPO,
            capture_output=True,
            timeout=300,
            check=False,
        )


def lbcore_terminates_tls(tmp: Path) -> bool:
    """Whether this checkout's `lbcore check` accepts `bind ... ssl crt` (the tls scenario
    needs TLS termination in lbcore itself)."""
    leaf = trustme.CA().issue_cert("check.example.test")
    pem = tmp / "check.pem"
    pem.write_bytes(leaf.cert_chain_pems[0].bytes() + leaf.private_key_pem.bytes())
    cfg = tmp / "tls-check.cfg"
    cfg.write_text(
        "defaults\n    mode http\n    timeout client 5s\n    timeout server 5s\n"
        "    timeout connect 5s\nfrontend f\n"
        f"    bind 127.0.0.1:8443 ssl crt {pem}\n    default_backend b\n"
        "backend b\n    server s 127.0.0.1:8080\n"
    )
    proc = subprocess.run(
        lbcore_cmd("check", "-f", str(cfg)), env=lbcore_env(), capture_output=True, check=False
    )
    return proc.returncode == 0


@pytest.mark.timeout(900)
@pytest.mark.parametrize("scenario", SCENARIOS)
def test_molecule_scenario_passes(ops_lab: tuple[dict[str, str], Path], scenario: str) -> None:
    env, tmp = ops_lab
    if scenario == "tls" and not lbcore_terminates_tls(tmp):
        pytest.skip("lbcore on this checkout does not terminate TLS yet (bind ... ssl crt)")
    report = Path(env["LBCORE_OPS_REPORT"])
    seen = len(report.read_text().splitlines()) if report.exists() else 0
    started = time.monotonic()
    proc = subprocess.run(
        [str(ansible_bin("molecule")), "test", "--scenario-name", scenario],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=870,
    )
    out = proc.stdout + proc.stderr
    (tmp / f"molecule-{scenario}.log").write_text(out)
    figures = report.read_text().splitlines()[seen:] if report.exists() else []
    print(f"molecule {scenario}: {time.monotonic() - started:.0f}s")
    for line in figures:
        print(line)
    assert proc.returncode == 0, out[-8000:]
    assert "passed" in out, out[-3000:]
    assert figures, f"the {scenario} verifier reported no figures:\n{out[-3000:]}"
    for line in figures:
        assert json.loads(line)["scenario"] == scenario
