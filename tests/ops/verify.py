"""Helpers of the operations scenarios' testinfra verifiers (molecule/*/tests).

The verifiers run under `pytest --connection=ansible --ansible-inventory=<molecule's>`:
hosts are reached through Ansible over SSH, while traffic and playbooks start here, in the
root namespace, as an operator's machine would. Figures a verifier measures are appended
as JSON lines to $LBCORE_OPS_REPORT (when set), so the pytest that ran molecule can show
and check them.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import testinfra

LOG = "/var/log/lbcore/lbcore.log"
SOCKET = "/run/lbcore/admin.sock"
LBCORE = "/opt/lbcore/venv/bin/lbcore"
_SEP = "----lbcore-ops----"

# lbcore logs admin changes as HAProxy does ("Server app/web2 enters drain state. ...",
# "Server app/web2 is UP/READY (leaving forced drain).").
_EVENT = re.compile(
    r"^(?P<ts>\S+) .*Server (?P<backend>[^/ ]+)/(?P<server>\S+) "
    r"(?:(?P<drain>enters drain state)|(?P<ready>is UP/READY \(leaving forced drain\)))"
)


def report(name: str, **data: Any) -> None:
    path = os.environ.get("LBCORE_OPS_REPORT")
    line = json.dumps({"scenario": name, **data}, default=str)
    print(line)
    if path:
        with open(path, "a", encoding="utf-8") as f:
            f.write(line + "\n")


def group(host: Any, name: str) -> list[Any]:
    """testinfra hosts of one inventory group, reached as `host` is."""
    inventory = host.backend.ansible_inventory
    return testinfra.get_hosts(
        [f"ansible://{name}"], ansible_inventory=inventory, force_ansible=True
    )


def variables(host: Any) -> dict[str, Any]:
    return dict(host.backend.get_variables())


def playbook(
    host: Any, name: str, *extra: str, timeout: float = 400
) -> subprocess.CompletedProcess[str]:
    """ansible-playbook lbcore.fleet.NAME against the scenario's inventory."""
    cmd = ["ansible-playbook", "-i", host.backend.ansible_inventory, f"lbcore.fleet.{name}", *extra]
    env = {k: v for k, v in os.environ.items() if k != "ANSIBLE_STDOUT_CALLBACK"}
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)


def parse_events(lines: Sequence[str]) -> list[tuple[str, str]]:
    """('drain'|'ready', server) in log order, from a balancer's log lines."""
    events = []
    for line in lines:
        m = _EVENT.match(line)
        if m:
            events.append(("drain" if m["drain"] else "ready", m["server"]))
    return events


def parse_stat(csv: str, backend: str) -> dict[str, str]:
    """{server: 'UP'|'DRAIN'|'MAINT'|'DOWN'...} from `show stat`."""
    states = {}
    for line in csv.splitlines():
        cols = line.split(",")
        if len(cols) > 17 and cols[0] == backend and cols[1] not in ("FRONTEND", "BACKEND"):
            states[cols[1]] = cols[17]
    return states


@dataclass(frozen=True)
class BalancerView:
    """What one balancer says, read in one round trip (each testinfra call through Ansible
    costs seconds on a busy machine): its log's length, the drain/ready events logged
    after a mark, and its servers' states."""

    lines: int
    events: list[tuple[str, str]]
    states: dict[str, str]


def balancer_view(host: Any, after_line: int = 0, backend: str = "app") -> BalancerView:
    out = host.check_output(
        f"wc -l < {LOG} 2>/dev/null || echo 0; echo {_SEP}; tail -n +{after_line + 1} {LOG} "
        f"2>/dev/null; echo {_SEP}; {LBCORE} ctl -S {SOCKET} 'show stat' || true"
    )
    count, log, stat = out.split(_SEP)
    return BalancerView(
        int(count.strip() or 0), parse_events(log.splitlines()), parse_stat(stat, backend)
    )


def wait_for(what: str, check: Any, timeout: float, every: float = 0.2) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(every)


def in_turn(events: Sequence[tuple[str, str]], servers: Sequence[str]) -> bool:
    """Each server drained then re-enabled, one after the other, never two out at once."""
    expected = [(kind, s) for s in servers for kind in ("drain", "ready")]
    return list(events) == expected
