"""``balance leastconn``: the server with the fewest active requests per unit of weight.

Theory of operation: as HAProxy's lb_fwlc.c, the load of a server is
``active / weight`` (compared by cross-multiplication, no floats); the lowest load
wins. Servers tied on the lowest load are served in smooth weighted round robin, so
an idle farm (every load 0, e.g. short requests) still spreads by weight instead of
hammering the first server. ``active`` is kept by ``pick``/``release``.
"""

from __future__ import annotations

from collections.abc import Sequence

from lbcore.balance import PickContext, unassign, with_room
from lbcore.balance.roundrobin import RoundRobin
from lbcore.server import ServerRuntime


class LeastConn:
    __slots__ = ("_allbackups", "_rr", "_servers")

    def __init__(self, servers: Sequence[ServerRuntime], *, allbackups: bool = False) -> None:
        self._servers = servers
        self._allbackups = allbackups
        self._rr = RoundRobin(servers)

    def pick(self, ctx: PickContext) -> ServerRuntime | None:
        pool = with_room(self._servers, self._allbackups)
        if not pool:
            return None
        best = pool[0]
        ties = [best]
        for s in pool[1:]:
            # s.active / s.weight  vs  best.active / best.weight
            lhs = s.active * best.weight
            rhs = best.active * s.weight
            if lhs < rhs:
                best = s
                ties = [s]
            elif lhs == rhs:
                ties.append(s)
        return self._rr.pick_from(ties)

    def release(self, server: ServerRuntime) -> None:
        unassign(server)
