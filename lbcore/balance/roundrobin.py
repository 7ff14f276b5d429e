"""``balance roundrobin``: smooth weighted round robin, as nginx does it.

Theory of operation: every server carries a running score. On each pick every usable
server's score grows by its weight, the highest score wins, and the winner pays back
the sum of the weights. Over any window of ``sum(weights)`` picks each server is
chosen exactly ``weight`` times, and picks of a heavy server are spread out instead of
bunched (weights 5,1,1 give a a b a c a a, not a a a a a b c).

Weights are read from ``ServerRuntime.weight`` on every pick, so a runtime ``set
weight`` takes effect on the next request (HAProxy's roundrobin is "dynamic" too).
"""

from __future__ import annotations

from collections.abc import Sequence

from lbcore.balance import PickContext, assign, unassign, with_room
from lbcore.server import ServerRuntime


class RoundRobin:
    """Smooth weighted round robin over the eligible tier's servers that have room."""

    __slots__ = ("_allbackups", "_score", "_servers")

    def __init__(self, servers: Sequence[ServerRuntime], *, allbackups: bool = False) -> None:
        self._servers = servers
        self._allbackups = allbackups
        # Keyed by id(): ServerRuntime is a mutable dataclass, hence unhashable.
        self._score: dict[int, int] = {}

    def pick(self, ctx: PickContext) -> ServerRuntime | None:
        return self.pick_from(with_room(self._servers, self._allbackups))

    def pick_from(self, pool: Sequence[ServerRuntime]) -> ServerRuntime | None:
        """One smooth-weighted step over ``pool`` (also leastconn's tie breaker)."""
        if not pool:
            return None
        score = self._score
        total = 0
        best: ServerRuntime | None = None
        best_score = 0
        for s in pool:
            w = s.weight
            k = id(s)
            c = score.get(k, 0) + w
            score[k] = c
            total += w
            if best is None or c > best_score:
                best, best_score = s, c
        assert best is not None
        score[id(best)] = best_score - total
        return assign(best)

    def release(self, server: ServerRuntime) -> None:
        unassign(server)
