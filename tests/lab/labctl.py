"""Drive the lab as a user does: build the collection, run its playbook and ad-hoc Ansible.

Tests run `ansible-playbook -i inventories/lab lbcore.fleet.lab` as a subprocess against a
collection freshly built by scripts/build-collection.sh and installed in a temporary
directory, with Ansible's home there too, so nothing is written to ~/.ansible. Output comes
through the `lab_json` callback (callback_plugins/), so tests read `changed` counts and
per-host results as data.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from tests.conftest import REPO

INVENTORY = REPO / "inventories" / "lab"
HELPER = REPO / "roles" / "lab" / "files" / "lbcore_lab_host.py"
LAB_DIR = Path("/var/lib/lbcore-lab")
BRIDGE = "lbcore0"
PREFIX = "lbcore-"
HOSTS = {
    "lb1": "198.18.0.11",
    "lb2": "198.18.0.12",
    "web1": "198.18.0.21",
    "web2": "198.18.0.22",
    "web3": "198.18.0.23",
}
WEB_HOSTS = ("web1", "web2", "web3")
PRIVATE_DIRS = ("/etc/lbcore", "/opt/lbcore", "/var/lib/lbcore", "/var/log/lbcore", "/run", "/tmp")


def ansible_bin(name: str) -> str | None:
    """The Ansible command next to this interpreter (the venv's), else the one on PATH."""
    local = Path(sys.executable).parent / name
    return str(local) if local.exists() else shutil.which(name)


class AnsibleError(AssertionError):
    pass


@dataclass
class Ansible:
    env: dict[str, str]

    @classmethod
    def build(cls, tmp: Path) -> Ansible:
        """Build and install lbcore.fleet into `tmp`, the way `make collection` does."""
        env = dict(os.environ)
        env.update(
            ANSIBLE_HOME=str(tmp / "ansible-home"),
            ANSIBLE_COLLECTIONS_PATH=str(tmp / "collections"),
            ANSIBLE_GALAXY=str(ansible_bin("ansible-galaxy")),
            BUILD_DIR=str(tmp / "build"),
            PYTHON=sys.executable,  # builds the lbcore wheel bundled in the collection
            ANSIBLE_NOCOLOR="1",
            ANSIBLE_CALLBACK_PLUGINS=str(Path(__file__).parent / "callback_plugins"),
            ANSIBLE_STDOUT_CALLBACK="lab_json",
            ANSIBLE_LOAD_CALLBACK_PLUGINS="1",
            ANSIBLE_DEPRECATION_WARNINGS="0",
            # Every SSH connection is a fresh one: a multiplexed master could hide a dead sshd.
            ANSIBLE_SSH_ARGS="-o ControlMaster=no",
            ANSIBLE_FORKS="5",
        )
        subprocess.run(
            [str(REPO / "scripts" / "build-collection.sh"), str(tmp / "collections")],
            env=env,
            check=True,
            capture_output=True,
            # the bundled wheel is compiled (mypyc): ~2 min alone, 2.5 at load 3-6
            timeout=900,
        )
        return cls(env)

    def _run(self, cmd: list[str], timeout: float) -> tuple[int, dict, str]:
        proc = subprocess.run(
            cmd, env=self.env, capture_output=True, text=True, timeout=timeout, cwd=REPO
        )
        try:
            out = json.loads(proc.stdout[proc.stdout.index("{") :])
        except ValueError as e:
            raise AnsibleError(
                f"{' '.join(cmd)}: no JSON output (rc {proc.returncode}): "
                f"{proc.stdout[-2000:]}{proc.stderr[-2000:]}"
            ) from e
        return proc.returncode, out, proc.stderr

    def playbook(self, state: str, *extra: str, timeout: float = 240) -> dict:
        """Run lbcore.fleet.lab; return the json callback's output; raise on failure."""
        cmd = [
            str(ansible_bin("ansible-playbook")),
            "-i",
            str(INVENTORY),
            "lbcore.fleet.lab",
            "-e",
            f"lab_state={state}",
            *extra,
        ]
        rc, out, err = self._run(cmd, timeout)
        if rc != 0:
            raise AnsibleError(f"lab {state} failed (rc {rc}): {failures(out)} {err[-1500:]}")
        return out

    def adhoc(self, pattern: str, module: str, args: str | dict = "") -> dict[str, dict]:
        """Run one module on the lab hosts over SSH; return {host: result}."""
        cmd = [str(ansible_bin("ansible")), "-i", str(INVENTORY), pattern, "-m", module]
        if args:
            cmd += ["-a", args if isinstance(args, str) else json.dumps(args)]
        _, out, _ = self._run(cmd, 120)
        return out["plays"][0]["tasks"][0]["hosts"]


def changed(out: dict) -> int:
    return int(out["stats"]["localhost"]["changed"])


def changed_tasks(out: dict) -> list[str]:
    """Names (and loop items) of the tasks that reported a change, for failure messages."""
    names = []
    for play in out["plays"]:
        for task in play["tasks"]:
            for result in task["hosts"].values():
                items = result.get("results") or [result]
                names += [
                    f"{task['task']['name']} ({r.get('item', '')}): {_actions(r)}"
                    for r in items
                    if r.get("changed")
                ]
    return names


def _actions(result: dict) -> str:
    """What the lab helper did (its JSON `actions`), else the start of the output."""
    try:
        return "; ".join(json.loads(result.get("stdout", ""))["actions"])
    except (ValueError, KeyError, TypeError):
        return str(result.get("stdout", result.get("diff", "")))[:300]


def failures(out: dict) -> list[str]:
    found = []
    for play in out.get("plays", []):
        for task in play["tasks"]:
            for host, result in task["hosts"].items():
                for r in result.get("results") or [result]:
                    if r.get("failed") or r.get("unreachable"):
                        msg = r.get("msg", "") + " " + r.get("stderr", "")
                        found.append(f"{task['task']['name']} [{host}]: {msg.strip()[:600]}")
    return found


def helper(*args: str) -> dict:
    """Run the lab's helper script directly (as the role does) and return its JSON."""
    proc = subprocess.run(
        ["/usr/bin/python3", str(HELPER), *args], capture_output=True, text=True, timeout=60
    )
    return dict(json.loads(proc.stdout), rc=proc.returncode, stderr=proc.stderr)


def helper_module():
    """The helper script as a module, to call its functions directly."""
    spec = importlib.util.spec_from_file_location("lbcore_lab_host", HELPER)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def host_status(name: str) -> dict:
    return helper(
        "host",
        "status",
        "--name",
        name,
        "--address",
        f"{HOSTS[name]}/24",
        "--lab-dir",
        str(LAB_DIR),
        "--netns",
        PREFIX + name,
        "--veth",
        PREFIX + name,
    )


def emergency_cleanup() -> None:
    """Remove the lab with the helper alone, for when the playbook itself cannot run."""
    for name in HOSTS:
        helper(
            "host", "absent", "--name", name, "--lab-dir", str(LAB_DIR),
            "--netns", PREFIX + name, "--veth", PREFIX + name,
        )  # fmt: skip
    helper("prune", "--lab-dir", str(LAB_DIR), "--netns-prefix", PREFIX, "--veth-prefix", PREFIX)
    helper("mountpoints", "absent", "--lab-dir", str(LAB_DIR))
    helper("bridge", "absent", "--bridge", BRIDGE)
    shutil.rmtree(LAB_DIR, ignore_errors=True)
