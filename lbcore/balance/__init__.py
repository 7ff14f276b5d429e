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

from lbcore.balance.core import (
    Algorithm,
    PickContext,
    _tiers,
    assign,
    available,
    candidates,
    unassign,
    with_room,
)
from lbcore.config.model import Balance
from lbcore.server import ServerRuntime

__all__ = [
    "ALGORITHMS",
    "DYNAMIC_ALGORITHMS",
    "Algorithm",
    "PickContext",
    "_tiers",
    "assign",
    "available",
    "candidates",
    "make_algorithm",
    "unassign",
    "with_room",
]


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
