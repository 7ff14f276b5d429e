"""The balancing primitives every algorithm and the proxy share, per request.

Split from ``lbcore/balance/__init__.py`` (which documents the contract and re-exports
these names) so that they compile with the other hot modules (native-modules.txt): a
package's ``__init__`` cannot be compiled without losing its submodules.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from lbcore.server import AdminState, OpState, ServerRuntime


@dataclass(frozen=True, slots=True)
class PickContext:
    """What an algorithm may hash or inspect about the request being balanced."""

    src_ip: str = ""
    uri: str = "/"
    headers: Mapping[str, str] = field(default_factory=dict)  # lower-case names


class Algorithm(Protocol):
    def pick(self, ctx: PickContext) -> ServerRuntime | None:
        """The server for this request, or None when no server is eligible."""
        ...

    def release(self, server: ServerRuntime) -> None:
        """A request/connection that ``pick`` assigned to ``server`` has ended."""
        ...


# The eligibility rule of ``ServerRuntime.eligible``, inlined: this runs for every
# request, and the property chain (two properties and an Enum property) costs more than
# the balancing itself. tests/unit/balance/test_pools.py checks both agree on every
# combination of states.
_UP = OpState.UP
_GOING_DOWN = OpState.GOING_DOWN
_READY = AdminState.READY


def _tiers(servers: Sequence[ServerRuntime], allbackups: bool = False) -> list[ServerRuntime]:
    active: list[ServerRuntime] = []
    backup: list[ServerRuntime] = []
    for s in servers:
        op = s.op_state
        if s.weight > 0 and s.admin_state is _READY and (op is _UP or op is _GOING_DOWN):
            if s.config.backup:
                backup.append(s)
            else:
                active.append(s)
    if active or allbackups:
        return active or backup
    # HAProxy's lbprm.fbck: the first usable backup in server order (a full one
    # queues the request; it does not spill to the next backup).
    return backup[:1]


def candidates(servers: Sequence[ServerRuntime], allbackups: bool = False) -> list[ServerRuntime]:
    """Eligible active servers; when none is eligible, the first eligible backup —
    or, with ``option allbackups``, every eligible backup."""
    return _tiers(servers, allbackups)


def available(servers: Sequence[ServerRuntime]) -> bool:
    """Is any server eligible? (False → 503; True but ``pick`` gave None → queue.)"""
    return bool(_tiers(servers))


def with_room(servers: Sequence[ServerRuntime], allbackups: bool = False) -> list[ServerRuntime]:
    """``candidates`` that are below their ``maxconn`` (in all workers when the
    server's slots are shared, see ``lbcore.budget``).

    Full active servers do not let backups in: backups replace *unavailable*
    actives, not busy ones (a busy farm queues instead).
    """
    out = []
    for s in _tiers(servers, allbackups):
        limit = s.config.maxconn
        if limit == 0:
            out.append(s)
        elif s.budget is not None:
            if s.budget.free() > 0:
                out.append(s)
        elif s.active < limit:
            out.append(s)
    return out


def assign(server: ServerRuntime) -> ServerRuntime | None:
    """Count a new request on ``server`` (the first half of the accounting contract);
    None if its last shared slot went to another worker meanwhile (the caller
    queues, as for a full server)."""
    budget = server.budget
    if budget is not None and not budget.take():
        return None
    server.active += 1
    server.total += 1
    return server


def unassign(server: ServerRuntime) -> None:
    """The second half: a request counted by ``assign`` has ended."""
    if server.active > 0:
        server.active -= 1
        if server.budget is not None:
            server.budget.give()
