"""`molecule test` of the default scenario (molecule/default), as CI runs it.

The scenario builds the lab in create.yml, converges it with the site, checks idempotence,
runs the testinfra verifier and removes the lab in destroy.yml. Here it runs on the private
lab of tests/fleet (LBCORE_MOLECULE_INVENTORY), with the collection built for this session;
the finalizer removes the lab even when molecule stopped halfway.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from tests.conftest import REPO
from tests.fleet.fleetctl import Fleet, chosen_lab, write_inventory
from tests.lab.labctl import Ansible, ansible_bin

pytestmark = [pytest.mark.root, pytest.mark.slow, pytest.mark.timeout(900)]


def test_molecule_default_scenario_passes(built: Ansible, tmp_path: Path) -> None:
    molecule = ansible_bin("molecule")
    if molecule is None:
        pytest.skip("molecule is not installed")
    inventory = write_inventory(tmp_path / "inventory", chosen_lab())
    env = {k: v for k, v in built.env.items() if "CALLBACK" not in k}
    venv_bin = str(Path(molecule).parent)
    env.update(
        PATH=f"{venv_bin}{os.pathsep}{env.get('PATH', '')}",  # molecule calls ansible-config
        LBCORE_MOLECULE_INVENTORY=str(inventory),
        XDG_CACHE_HOME=str(tmp_path / "cache"),  # molecule's ephemeral directory
        MOLECULE_NO_LOG="false",
    )
    try:
        proc = subprocess.run(
            [molecule, "test", "--scenario-name", "default"],
            cwd=REPO,
            env=env,
            capture_output=True,
            text=True,
            timeout=840,
        )
    finally:
        Fleet(built, inventory, chosen_lab()).lab_state("absent")
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-8000:]
    for step in ("converge", "idempotence", "verify", "destroy"):
        assert f"default ➜ {step}" in out or step in out, f"no {step} step in:\n{out[-3000:]}"
    assert "Idempotence completed successfully" in out or "idempotence" in out
