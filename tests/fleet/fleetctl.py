"""Drive the site on a lab the way an operator does: ansible-playbook and ad-hoc ansible.

The tests build the collection once (scripts/build-collection.sh, as `make collection`), build
a lab with `lbcore.fleet.lab`, and run `lbcore.fleet.site` and the modules against it over
SSH, reading results through the `lab_json` callback (tests/lab/callback_plugins).

Which lab: by default a private one, so these tests never meet the lab of another test
running at the same time: bridge `lbcf0`, subnet 198.18.8.0/24, namespaces and veths
`lbcf-*`, state in /var/lib/lbcore-lab-fleet. Its inventory is inventories/lab with only the
addresses and names rewritten, so the site runs with the lab's real group_vars.
LBCORE_FLEET_LAB=default uses inventories/lab itself (bridge lbcore0, 198.18.0.0/24).
"""

from __future__ import annotations

import collections
import json
import os
import shutil
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from tests.conftest import REPO
from tests.lab.labctl import Ansible, AnsibleError, ansible_bin, failures

LAB_INVENTORY = REPO / "inventories" / "lab"
BALANCERS = ("lb1", "lb2")
BACKENDS = ("web1", "web2", "web3")


@dataclass(frozen=True)
class LabNet:
    """Names and addresses of one lab (the lab role's variables)."""

    net: str  # first three octets
    bridge: str
    prefix: str
    lab_dir: str

    def ip(self, last: int) -> str:
        return f"{self.net}.{last}"

    @property
    def vip(self) -> str:
        return self.ip(100)

    def address(self, host: str) -> str:
        return self.ip({"lb1": 11, "lb2": 12, "web1": 21, "web2": 22, "web3": 23}[host])


PRIVATE = LabNet("198.18.8", "lbcf0", "lbcf-", "/var/lib/lbcore-lab-fleet")
DEFAULT = LabNet("198.18.0", "lbcore0", "lbcore-", "/var/lib/lbcore-lab")


def chosen_lab() -> LabNet:
    return DEFAULT if os.environ.get("LBCORE_FLEET_LAB") == "default" else PRIVATE


def write_inventory(dst: Path, lab: LabNet) -> Path:
    """inventories/lab, copied, with the lab's addresses and names set to `lab`'s."""
    if dst.exists():
        shutil.rmtree(dst)
    shutil.copytree(LAB_INVENTORY, dst)
    if lab == DEFAULT:
        return dst
    hosts = dst / "hosts.yml"
    hosts.write_text(hosts.read_text().replace("198.18.0.", lab.net + "."))
    extra = (
        f"\n# Rewritten for a private lab by tests/fleet/fleetctl.py\n"
        f"lbcore_lab_dir: {lab.lab_dir}\n"
        f"lbcore_lab_subnet: {lab.net}.0/24\n"
        f"lbcore_lab_bridge: {lab.bridge}\n"
        f"lbcore_lab_bridge_address: {lab.ip(1)}\n"
        f"lbcore_lab_vip: {lab.vip}\n"
        f"lbcore_lab_netns_prefix: {lab.prefix}\n"
        f"lbcore_lab_veth_prefix: {lab.prefix}\n"
    )
    all_vars = dst / "group_vars" / "all.yml"
    kept = [
        line
        for line in all_vars.read_text().splitlines()
        if not line.startswith(("lbcore_lab_dir:", "lbcore_lab_subnet:", "lbcore_lab_bridge"))
        and not line.startswith("lbcore_lab_vip:")
    ]
    all_vars.write_text("\n".join(kept) + extra)
    return dst


@dataclass
class Fleet:
    """One lab with an inventory, and Ansible commands against it."""

    ansible: Ansible
    inventory: Path
    lab: LabNet

    def _run(self, cmd: list[str], timeout: float) -> tuple[int, dict, str]:
        return self.ansible._run(cmd, timeout)

    def playbook(self, name: str, *extra: str, timeout: float = 420) -> tuple[int, dict]:
        """Run lbcore.fleet.NAME; (rc, the json callback's output)."""
        cmd = [str(ansible_bin("ansible-playbook")), "-i", str(self.inventory)]
        rc, out, _ = self._run([*cmd, f"lbcore.fleet.{name}", *extra], timeout)
        return rc, out

    def site(self, *extra: str) -> dict:
        rc, out = self.playbook("site", *extra)
        if rc != 0:
            raise AnsibleError(f"site failed (rc {rc}): {failures(out)}")
        return out

    def lab_state(self, state: str) -> dict:
        rc, out = self.playbook("lab", "-e", f"lab_state={state}", timeout=300)
        if rc != 0:
            raise AnsibleError(f"lab {state} failed (rc {rc}): {failures(out)}")
        return out

    def adhoc(
        self, pattern: str, module: str, args: str | dict = "", *extra: str
    ) -> tuple[int, dict[str, dict]]:
        """One module on the hosts matching `pattern`; (rc, {host: result})."""
        cmd = [str(ansible_bin("ansible")), "-i", str(self.inventory), pattern, "-m", module]
        if args:
            cmd += ["-a", args if isinstance(args, str) else json.dumps(args)]
        rc, out, _ = self._run([*cmd, *extra], 180)
        return rc, out["plays"][0]["tasks"][0]["hosts"]

    def sh(self, host: str, command: str) -> str:
        """A shell command on one host; its stdout (fails the test on a non-zero exit)."""
        rc, res = self.adhoc(host, "ansible.builtin.shell", command)
        r = res[host]
        if rc != 0 or r.get("rc", 0) != 0:
            raise AnsibleError(f"{host}: {command}: {r.get('msg', '')} {r.get('stderr', '')}")
        return str(r["stdout"])

    def url(self, host: str | None = None, path: str = "/") -> str:
        ip = self.lab.vip if host is None else self.lab.address(host)
        return f"http://{ip}:80{path}"


def get(url: str, timeout: float = 10.0) -> str:
    """One GET on a new connection; the name of the backend that answered it."""
    req = urllib.request.Request(url, headers={"Connection": "close"})
    with urllib.request.urlopen(req, timeout=timeout) as r:
        body = r.read().decode().strip()
        return str(r.headers.get("X-Served-By") or body)


def spread(url: str, n: int) -> collections.Counter[str]:
    return collections.Counter(get(url) for _ in range(n))


def wait_answering(url: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            get(url, timeout=3)
            return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.3)


@dataclass
class Load:
    """A bounded load against a URL: `threads` clients, each a new connection per request,
    until stopped, `max_requests` in all or `max_seconds` — whichever comes first."""

    url: str
    threads: int = 4
    max_requests: int = 50_000
    max_seconds: float = 300.0
    pause: float = 0.01  # between a client's requests: a steady load that leaves CPU to Ansible
    ok: collections.Counter[str] = field(default_factory=collections.Counter)
    errors: list[str] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _workers: list[threading.Thread] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __enter__(self) -> Load:
        deadline = time.monotonic() + self.max_seconds
        for _ in range(self.threads):
            t = threading.Thread(target=self._run, args=(deadline,), daemon=True)
            t.start()
            self._workers.append(t)
        return self

    def _run(self, deadline: float) -> None:
        while not self._stop.is_set() and time.monotonic() < deadline:
            with self._lock:
                if sum(self.ok.values()) + len(self.errors) >= self.max_requests:
                    return
            try:
                name = get(self.url, timeout=10)
                with self._lock:
                    self.ok[name] += 1
                time.sleep(self.pause)
            except Exception as e:  # every failure is counted and shown
                with self._lock:
                    self.errors.append(f"{time.strftime('%H:%M:%S')} {type(e).__name__}: {e}")

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for t in self._workers:
            t.join(timeout=20)

    @property
    def total(self) -> int:
        return sum(self.ok.values()) + len(self.errors)
