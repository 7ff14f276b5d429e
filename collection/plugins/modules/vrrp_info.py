#!/usr/bin/python
# Copyright: lbcore contributors
# Apache License 2.0 (see LICENSE)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: vrrp_info
short_description: Read the state, priority and VIPs of each VRRP instance on a host
version_added: "0.1.0"
description:
  - Reads the state file that C(lbcore vrrpd) rewrites on every transition
    (C(lbcore vrrp status --json) shows the same document).
  - Reports whether the agent that wrote it is still running; a stale file is reported
    with C(running=false) and every instance's state as C(STOP).
options:
  state_file:
    description: The agent's state file.
    type: path
    default: /run/lbcore/vrrp-state.json
attributes:
  check_mode:
    support: full
    description: Reads only, so it runs the same in check mode.
  diff_mode:
    support: none
    description: Reads only; there is nothing to show.
author:
  - lbcore contributors (@lbcore)
"""

EXAMPLES = r"""
- name: Which balancer holds the VIP?
  lbcore.fleet.vrrp_info:
  register: vrrp

- ansible.builtin.debug:
    msg: "{{ inventory_hostname }} is {{ vrrp.instances.VI_1.state }}"
"""

RETURN = r"""
running:
  description: Whether the agent that wrote the state file is alive.
  returned: always
  type: bool
instances:
  description: Per instance, C(state), C(priority) (effective), C(base_priority),
    C(vrid), C(interface), C(addresses) and C(master) (the current master's address).
  returned: always
  type: dict
"""

import json
import os

from ansible.module_utils.basic import AnsibleModule


def _alive(pid):
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def main():
    module = AnsibleModule(
        argument_spec=dict(state_file=dict(type="path", default="/run/lbcore/vrrp-state.json")),
        supports_check_mode=True,
    )
    path = module.params["state_file"]
    try:
        with open(path) as handle:
            doc = json.load(handle)
    except (OSError, ValueError) as exc:
        module.fail_json(msg="cannot read VRRP state file %s: %s" % (path, exc))
    running = _alive(doc.get("pid"))
    instances = {}
    for name, inst in doc.get("instances", {}).items():
        instances[name] = {
            "state": inst.get("state") if running else "STOP",
            "priority": inst.get("effective_priority"),
            "base_priority": inst.get("base_priority"),
            "vrid": inst.get("vrid"),
            "interface": inst.get("interface"),
            "addresses": inst.get("addresses", []),
            "master": inst.get("master"),
        }
    module.exit_json(changed=False, running=running, instances=instances)


if __name__ == "__main__":
    main()
