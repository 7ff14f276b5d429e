"""Fixtures of the fleet tests: the collection built once per session, a lab per module."""

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
def bare_lab(built: Ansible, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fleet]:
    """A lab of bare hosts (nothing of the site on them), removed after the module."""
    lab = chosen_lab()
    inventory = write_inventory(tmp_path_factory.mktemp("fleet") / "inventory", lab)
    fleet = Fleet(built, inventory, lab)
    try:
        fleet.lab_state("absent")  # whatever an earlier run left: start from bare hosts
        fleet.lab_state("present")
        yield fleet
    finally:
        fleet.lab_state("absent")
