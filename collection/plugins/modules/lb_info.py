#!/usr/bin/python
# Copyright: lbcore contributors
# Apache License 2.0 (see LICENSE)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: lb_info
short_description: Read frontends, backends and servers of a balancer, with states and counters
version_added: "0.1.0"
description:
  - Reads C(show info), C(show stat) and C(show servers state) from the admin socket of
    lbcore (or HAProxy) and returns them as structured data.
  - Reads only; never changes anything.
options:
  socket:
    description: Admin socket, a unix path or C(host:port).
    type: str
    default: /run/lbcore/admin.sock
  backend:
    description: Only this backend (and no frontends).
    type: str
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
- name: What is web2 doing on each balancer?
  lbcore.fleet.lb_info:
    backend: app
  register: lb

- ansible.builtin.debug:
    msg: "{{ lb.backends.app.servers.web2 }}"
"""

RETURN = r"""
info:
  description: C(show info) as a dict (Name, Version, Pid, Uptime_sec, ...).
  returned: always
  type: dict
frontends:
  description: Per frontend, its status and counters (sessions, bytes, requests, responses).
  returned: always
  type: dict
backends:
  description: Per backend, its status, counters and C(servers) (per server status,
    admin_state, weight, sessions, total, check_status, response classes).
  returned: always
  type: dict
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.lbcore.fleet.plugins.module_utils.runtime_api import (
    NotFound,
    RuntimeClient,
    RuntimeError_,
    admin_name,
)

_COUNTERS = (
    "scur",
    "smax",
    "stot",
    "bin",
    "bout",
    "ereq",
    "econ",
    "eresp",
    "req_tot",
    "hrsp_1xx",
    "hrsp_2xx",
    "hrsp_3xx",
    "hrsp_4xx",
    "hrsp_5xx",
    "hrsp_other",
    "lbtot",
    "wretr",
    "wredis",
    "qcur",
)


def _counters(row):
    out = {}
    for name in _COUNTERS:
        value = row.get(name)
        if value not in (None, ""):
            out[name] = int(value)
    return out


def gather(client, only_backend=None):
    stat = client.show_stat()
    if only_backend and not any(r["pxname"] == only_backend for r in stat):
        raise NotFound("No such backend.")
    admin = {(s["be_name"], s["srv_name"]): s for s in client.servers_state(only_backend)}
    frontends, backends = {}, {}
    for row in stat:
        px, sv = row["pxname"], row["svname"]
        if only_backend and px != only_backend:
            continue
        if sv == "FRONTEND":
            frontends[px] = dict(_counters(row), status=row["status"])
        elif sv == "BACKEND":
            backends.setdefault(px, {"servers": {}}).update(
                _counters(row),
                status=row["status"],
                weight=int(row.get("weight") or 0),
                active_servers=int(row.get("act") or 0),
                backup_servers=int(row.get("bck") or 0),
            )
        else:
            state = admin.get((px, sv), {})
            backends.setdefault(px, {"servers": {}})["servers"][sv] = dict(
                _counters(row),
                status=row["status"],
                admin_state=admin_name(int(state.get("srv_admin_state", 0))),
                weight=int(state.get("srv_uweight", row.get("weight") or 0)),
                check_status=row.get("check_status", ""),
                address=row.get("addr", ""),
                backup=row.get("bck") == "1",
            )
    return frontends, backends


def main():
    module = AnsibleModule(
        argument_spec=dict(
            socket=dict(type="str", default="/run/lbcore/admin.sock"),
            backend=dict(type="str"),
        ),
        supports_check_mode=True,
    )
    client = RuntimeClient(module.params["socket"])
    try:
        info = client.info()
        frontends, backends = gather(client, module.params["backend"])
    except NotFound as exc:
        module.fail_json(msg="%s: %s" % (module.params["backend"], exc))
    except RuntimeError_ as exc:
        module.fail_json(msg=str(exc))
    if module.params["backend"]:
        frontends = {}
    module.exit_json(changed=False, info=info, frontends=frontends, backends=backends)


if __name__ == "__main__":
    main()
