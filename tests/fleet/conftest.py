"""Fixtures of the fleet tests: the collection built once per session; the lab built and
the site converged from bare hosts once per module. (`molecule test --all`, the default
scenario among the others, runs in tests/ops/test_molecule_all.py.)"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import need_root
from tests.fleet.fleetctl import Fleet, chosen_lab, write_inventory
from tests.lab.labctl import Ansible


@pytest.fixture(scope="session")
def built(tmp_path_factory: pytest.TempPathFactory) -> Ansible:
    """lbcore.fleet built and installed in a temporary directory, as `make collection`."""
    need_root()
    built = Ansible.build(tmp_path_factory.mktemp("fleet-collection"))
    # Unlike the lab's own tests (which want every connection fresh), the site reuses one
    # SSH connection per host, as Ansible does by default: several times quicker here.
    env = dict(
        built.env,
        ANSIBLE_SSH_ARGS="-o ControlMaster=auto -o ControlPersist=120s",
        ANSIBLE_CALLBACK_PLUGINS=str(Path(__file__).parent / "callback_plugins"),
        ANSIBLE_STDOUT_CALLBACK="fleet_json",
    )
    return Ansible(env)


@pytest.fixture(scope="module")
def converged(
    built: Ansible, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Fleet, dict]]:
    """The lab from nothing (`lbcore.fleet.lab`, present), then `lbcore.fleet.site` on the
    bare hosts, left up for the module's tests; removed after them. Yields the fleet and
    the site run's exit status and json output (the tests fail, saying why, if it failed)."""
    lab = chosen_lab()
    tmp = tmp_path_factory.mktemp("fleet")
    inventory = write_inventory(tmp / "inventory", lab)
    fleet = Fleet(built, inventory, lab)
    try:
        fleet.lab_state("absent")  # whatever an interrupted run left behind
        fleet.lab_state("present")
        yield fleet, fleet.playbook("site")
    finally:
        fleet.lab_state("absent")
