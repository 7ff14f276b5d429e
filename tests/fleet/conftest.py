"""Fixtures of the fleet tests: the collection built once per session; the lab built and
converged by `molecule test` (the default scenario) once per module."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import need_root
from tests.fleet.fleetctl import Fleet, Molecule, chosen_lab, run_molecule, write_inventory
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
) -> Iterator[tuple[Fleet, Molecule]]:
    """The lab, from bare hosts to the site, by `molecule test --destroy never` (destroy,
    syntax, create, converge, idempotence, verify), then left up for the module's tests;
    removed after them."""
    lab = chosen_lab()
    tmp = tmp_path_factory.mktemp("fleet")
    inventory = write_inventory(tmp / "inventory", lab)
    fleet = Fleet(built, inventory, lab)
    try:
        # `--destroy never` skips molecule's first destroy too: start from bare hosts here.
        fleet.lab_state("absent")
        yield fleet, run_molecule(built, inventory, tmp / "cache", "--destroy", "never")
    finally:
        fleet.lab_state("absent")
