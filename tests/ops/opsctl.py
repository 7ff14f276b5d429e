"""The operations scenarios' lab: a private copy of inventories/lab and the commands around it.

Tests of issue 9 (rolling update, TLS sites, failover) run on their own lab so they never
meet another test's: bridge `lbco0`, subnet 198.18.9.0/24, namespaces and veths `lbco-*`,
state in /var/lib/lbcore-lab-ops. The inventory is inventories/lab with only those names
and addresses rewritten, so the playbooks run with the lab's real group_vars.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from tests.conftest import REPO

LAB_INVENTORY = REPO / "inventories" / "lab"
NET = "198.18.9"
BRIDGE = "lbco0"
PREFIX = "lbco-"
LAB_DIR = "/var/lib/lbcore-lab-ops"
VIP = f"{NET}.100"
ADDRESSES = {"lb1": 11, "lb2": 12, "web1": 21, "web2": 22, "web3": 23}


def address(host: str) -> str:
    return f"{NET}.{ADDRESSES[host]}"


def write_inventory(dst: Path, balancer_vars: str = "") -> Path:
    """inventories/lab, copied to `dst`, rewritten for the private lab (plus
    `balancer_vars`, YAML lines appended to group_vars/balancers.yml, where they win over
    the lab's own)."""
    if dst.exists():
        shutil.rmtree(dst)
    shutil.copytree(LAB_INVENTORY, dst)
    hosts = dst / "hosts.yml"
    hosts.write_text(hosts.read_text().replace("198.18.0.", NET + "."))
    all_vars = dst / "group_vars" / "all.yml"
    kept = [
        line
        for line in all_vars.read_text().splitlines()
        if not line.startswith(("lbcore_lab_dir:", "lbcore_lab_subnet:", "lbcore_lab_bridge"))
        and not line.startswith("lbcore_lab_vip:")
    ]
    private = (
        "\n# Rewritten for the operations scenarios' private lab (tests/ops/opsctl.py)\n"
        f"lbcore_lab_dir: {LAB_DIR}\n"
        f"lbcore_lab_subnet: {NET}.0/24\n"
        f"lbcore_lab_bridge: {BRIDGE}\n"
        f"lbcore_lab_bridge_address: {NET}.1\n"
        f"lbcore_lab_vip: {VIP}\n"
        f"lbcore_lab_netns_prefix: {PREFIX}\n"
        f"lbcore_lab_veth_prefix: {PREFIX}\n"
    )
    all_vars.write_text("\n".join(kept) + private)
    if balancer_vars:
        balancers = dst / "group_vars" / "balancers.yml"
        keys = tuple(line.split(":")[0] + ":" for line in balancer_vars.splitlines() if ":" in line)
        lines = [line for line in balancers.read_text().splitlines() if not line.startswith(keys)]
        balancers.write_text("\n".join(lines) + "\n# tests/ops/opsctl.py\n" + balancer_vars)
    return dst
