"""``lbcore vrrp status``: what each VRRP instance is doing, from the agent's state file.

The agent rewrites the file atomically on every transition, so reading it never
races a half-written document. Exit status: 0 when the agent runs, 1 when the
file is missing or unreadable, 3 when the agent that wrote it is gone (its
states are then stale and reported as such).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from typing import Any

from lbcore.vrrp.agent import DEFAULT_STATE_FILE


def _alive(pid: object) -> bool:
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def render(doc: dict[str, Any], alive: bool, now: float) -> str:
    rows = [("INSTANCE", "STATE", "PRIO", "VRID", "IFACE", "MASTER", "SINCE", "ADDRESSES")]
    for name, inst in sorted(doc.get("instances", {}).items()):
        state = inst.get("state", "?") if alive else f"{inst.get('state', '?')}(stale)"
        prio = f"{inst.get('effective_priority')}/{inst.get('base_priority')}"
        since = f"{now - float(inst.get('since', now)):.0f}s"
        rows.append(
            (
                name,
                state,
                prio,
                str(inst.get("vrid")),
                str(inst.get("interface") or "-"),
                str(inst.get("master") or "-"),
                since,
                ",".join(inst.get("addresses", [])),
            )
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "\n".join(
        "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows
    )


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="lbcore vrrp", description="show VRRP instance states")
    p.add_argument("command", nargs="?", default="status", choices=["status"])
    p.add_argument("instance", nargs="?", help="print only this instance's state word")
    p.add_argument("-S", "--state-file", default=DEFAULT_STATE_FILE)
    p.add_argument("--json", action="store_true", help="print the state document as JSON")
    args = p.parse_args(argv)
    try:
        with open(args.state_file) as fh:
            doc = json.load(fh)
    except (OSError, ValueError) as exc:
        print(f"lbcore vrrp: cannot read {args.state_file}: {exc}", file=sys.stderr)
        return 1
    alive = _alive(doc.get("pid"))
    doc["running"] = alive
    if args.instance:
        inst = doc.get("instances", {}).get(args.instance)
        if inst is None:
            print(f"lbcore vrrp: no instance '{args.instance}'", file=sys.stderr)
            return 1
        print(inst.get("state") if alive else "STOP")
    elif args.json:
        print(json.dumps(doc, indent=2, sort_keys=True))
    else:
        print(render(doc, alive, time.time()))
    return 0 if alive else 3
