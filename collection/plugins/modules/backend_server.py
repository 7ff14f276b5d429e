#!/usr/bin/python
# Copyright: lbcore contributors
# Apache License 2.0 (see LICENSE)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: backend_server
short_description: Drain, disable or enable a backend server through the runtime API
version_added: "0.1.0"
description:
  - Sets a server's administrative state (C(enabled) = READY, C(drain), C(maint)) and
    weight through the admin socket of lbcore — or of HAProxy, which speaks the same API.
  - Idempotent by observation, like community.general.haproxy, but with check mode and
    diff. The server is read first, acted on only if it differs, and read again.
  - With O(wait), returns only when a drained or disabled server has no sessions left,
    or when an enabled server is UP.
  - Run it on every balancer (for example with C(ansible balancers -m ...)) so both
    balancers of a pair stop sending traffic to the server.
options:
  backend:
    description: Backend name.
    type: str
    required: true
  server:
    description: Server name within the backend.
    type: str
    required: true
  state:
    description:
      - C(enabled) makes the server READY, C(drain) keeps it out of load balancing
        while persistent clients still reach it, C(maint) takes it out completely.
    type: str
    choices: [enabled, drain, maint]
    default: enabled
  weight:
    description: The server's weight (0-256), or C(NN%) of its configured weight.
    type: str
  wait:
    description: Wait for no sessions (drain, maint) or for UP (enabled).
    type: bool
    default: false
  wait_timeout:
    description: Seconds to wait before failing.
    type: float
    default: 60
  shutdown_sessions:
    description: With C(maint), close the server's established sessions at once.
    type: bool
    default: false
  socket:
    description: Admin socket, a unix path or C(host:port).
    type: str
    default: /run/lbcore/admin.sock
attributes:
  check_mode:
    support: full
    description: Reports what would change and changes nothing.
  diff_mode:
    support: full
    description: Shows the state before and after.
author:
  - lbcore contributors (@lbcore)
"""

EXAMPLES = r"""
- name: Drain web2 on every balancer and wait for its sessions to end
  lbcore.fleet.backend_server:
    backend: app
    server: web2
    state: drain
    wait: true

- name: Bring it back at half weight
  lbcore.fleet.backend_server:
    backend: app
    server: web2
    state: enabled
    weight: "50%"
    wait: true
"""

RETURN = r"""
before:
  description: The server before the change.
  returned: always
  type: dict
  sample: {status: UP, admin_state: ready, weight: 1, sessions: 3}
after:
  description: The server after the change (what it would be, in check mode).
  returned: always
  type: dict
  sample: {status: DRAIN, admin_state: drain, weight: 1, sessions: 0}
sessions:
  description: Sessions on the server when the module returned.
  returned: always
  type: int
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.lbcore.fleet.plugins.module_utils.runtime_api import (
    NotFound,
    RuntimeClient,
    RuntimeError_,
    wait_until,
)

_ADMIN = {"enabled": "ready", "drain": "drain", "maint": "maint"}


def _wanted_weight(spec, current_initial):
    if spec is None:
        return None
    text = spec.strip()
    try:
        if text.endswith("%"):
            return int(current_initial * int(text[:-1]) / 100)
        value = int(text)
    except ValueError:
        raise ValueError("weight must be 0-256 or NN%%, not %r" % spec) from None
    if not 0 <= value <= 256:
        raise ValueError("weight must be between 0 and 256, not %d" % value)
    return value


def _initial_weight(client, backend, server):
    answer = client.checked("get weight %s/%s" % (backend, server))
    # "1 (initial 1)"
    try:
        return int(answer.split("initial", 1)[1].strip(" )\n"))
    except (IndexError, ValueError):
        return int(answer.split()[0])


def run(module, client):
    p = module.params
    backend, server = p["backend"], p["server"]
    target = "%s/%s" % (backend, server)
    before = client.server(backend, server)
    want_admin = _ADMIN[p["state"]]
    try:
        want_weight = _wanted_weight(p["weight"], _initial_weight(client, backend, server))
    except ValueError as exc:
        module.fail_json(msg=str(exc))
    commands = []
    if before.admin != want_admin:
        commands.append("set server %s state %s" % (target, want_admin))
    if want_weight is not None and want_weight != before.weight:
        commands.append("set weight %s %d" % (target, want_weight))
    if p["shutdown_sessions"] and want_admin == "maint" and before.sessions:
        commands.append("shutdown sessions server %s" % target)
    predicted = dict(before.as_dict(), admin_state=want_admin)
    if want_weight is not None:
        predicted["weight"] = want_weight
    result = {"changed": bool(commands), "before": before.as_dict(), "commands": commands}
    if module.check_mode:
        result.update(after=predicted, sessions=before.sessions)
        return result
    for command in commands:
        answer = client.checked(command).strip()
        if answer:
            module.fail_json(msg="%s: %s" % (command, answer), **result)
    after = client.server(backend, server)
    if p["wait"]:
        if want_admin == "ready":
            after = wait_until(lambda: _up(client, backend, server), p["wait_timeout"])
            if not after.up:
                module.fail_json(
                    msg="%s is %s, not UP, after %ss" % (target, after.status, p["wait_timeout"]),
                    **dict(result, after=after.as_dict()),
                )
        else:
            after = wait_until(lambda: _idle(client, backend, server), p["wait_timeout"])
            if after.sessions:
                module.fail_json(
                    msg="%s still has %d sessions after %ss"
                    % (target, after.sessions, p["wait_timeout"]),
                    **dict(result, after=after.as_dict()),
                )
    result.update(after=after.as_dict(), sessions=after.sessions)
    result["changed"] = (before.admin, before.weight) != (after.admin, after.weight)
    return result


def _up(client, backend, server):
    view = client.server(backend, server)
    return view if view.up else _Pending(view)


def _idle(client, backend, server):
    view = client.server(backend, server)
    return view if view.sessions == 0 else _Pending(view)


class _Pending:
    """A view that is not there yet: false for ``wait_until``, still readable."""

    def __init__(self, view):
        self.view = view

    def __bool__(self):
        return False

    def __getattr__(self, name):
        return getattr(self.view, name)


def main():
    module = AnsibleModule(
        argument_spec=dict(
            backend=dict(type="str", required=True),
            server=dict(type="str", required=True),
            state=dict(type="str", choices=list(_ADMIN), default="enabled"),
            weight=dict(type="str"),
            wait=dict(type="bool", default=False),
            wait_timeout=dict(type="float", default=60.0),
            shutdown_sessions=dict(type="bool", default=False),
            socket=dict(type="str", default="/run/lbcore/admin.sock"),
        ),
        supports_check_mode=True,
    )
    client = RuntimeClient(module.params["socket"])
    try:
        result = run(module, client)
    except NotFound as exc:
        module.fail_json(msg="%s/%s: %s" % (module.params["backend"], module.params["server"], exc))
    except RuntimeError_ as exc:
        module.fail_json(msg=str(exc))
    if module._diff:
        result["diff"] = {"before": result["before"], "after": result["after"]}
    module.exit_json(**result)


if __name__ == "__main__":
    main()
