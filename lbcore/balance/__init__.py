"""Load-balancing algorithms behind one small interface.

Each algorithm lives in its own module (as in HAProxy's lb_*.c) and implements
``Algorithm``. ``make_algorithm`` builds the right one for a backend's ``balance``
line. Algorithms are sans-I/O: they read ``ServerRuntime`` fields (weight, eligible,
active, backup) and the request facts in ``PickContext``; they never touch sockets.

Backup servers are considered only when no active server is eligible, and then, as
in HAProxy, only the first eligible backup (in configuration order) takes the traffic
— unless the backend says ``option allbackups``: then every eligible backup does,
balanced by the algorithm as the actives would be. Weight 0 and non-READY admin
states are never picked.

Accounting contract (the proxy relies on it): a successful ``pick`` counts the
request on the server (``active += 1``, ``total += 1``, and takes one of its shared
``maxconn`` slots when the workers share them: ``lbcore.budget``); the caller calls
``release(server)`` exactly once when that request/connection ends. ``pick`` returns
None in two cases the caller tells apart with ``available(servers)``:

* no server is eligible at all → answer 503;
* servers are eligible but every one the algorithm may use is at its ``maxconn``
  → queue the request and ``pick`` again after a ``release`` (or fail at
  ``timeout queue``). Hash-based algorithms return None when *their* server is full,
  which gives HAProxy's per-server queueing for them.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from lbcore.config.model import Balance
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


# Algorithms whose servers' weights may change at runtime (HAProxy calls the others
# "static": ``set weight`` may only switch them between 0 and their initial weight).
DYNAMIC_ALGORITHMS = frozenset({"roundrobin", "leastconn", "first", "random"})
ALGORITHMS = frozenset(
    {"roundrobin", "static-rr", "leastconn", "first", "source", "uri", "hdr", "random"}
)


def make_algorithm(
    balance: Balance,
    servers: list[ServerRuntime],
    *,
    rng: random.Random | None = None,
    allbackups: bool = False,
) -> Algorithm:
    """The algorithm named by a backend's ``balance`` line over its runtime servers.

    ``servers`` is kept by reference, in configuration order (``first`` and the
    choice of the backup to use rely on that order as HAProxy relies on server
    ids). ``rng`` seeds ``random`` (tests); ``allbackups`` is the backend's ``option
    allbackups``.
    """
    # Local imports: the modules import helpers from this package.
    from lbcore.balance.first import First
    from lbcore.balance.hdr import Hdr
    from lbcore.balance.leastconn import LeastConn
    from lbcore.balance.random_p2c import RandomP2C
    from lbcore.balance.roundrobin import RoundRobin
    from lbcore.balance.source import Source
    from lbcore.balance.static_rr import StaticRR
    from lbcore.balance.uri import Uri

    name = balance.algorithm
    ab = allbackups
    if name == "roundrobin":
        return RoundRobin(servers, allbackups=ab)
    if name == "static-rr":
        return StaticRR(servers, allbackups=ab)
    if name == "leastconn":
        return LeastConn(servers, allbackups=ab)
    if name == "first":
        return First(servers, allbackups=ab)
    if name == "source":
        return Source(servers, allbackups=ab)
    if name == "uri":
        return Uri(servers, balance.arg, allbackups=ab)
    if name == "hdr":
        if not balance.arg:
            raise ValueError("balance hdr needs a header name: hdr(<name>)")
        return Hdr(servers, balance.arg, allbackups=ab)
    if name == "random":
        return RandomP2C(servers, balance.arg, rng=rng, allbackups=ab)
    raise ValueError(f"unknown balance algorithm {name!r}")
