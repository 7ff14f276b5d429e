"""``balance random[(draws)]``: power of N random choices, N = 2 by default.

Theory of operation: as HAProxy's random algorithm, ``draws`` servers are drawn at
random with probability proportional to their weight, and the least loaded of them
(``active / weight``, the leastconn measure) gets the request. Two draws already
avoid the herd effect of plain leastconn across many workers (each worker sees only
its own ``active``) while keeping the load far more even than pure random. The
random source is injectable so tests are reproducible; ``random`` does no I/O.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from itertools import accumulate

from lbcore.balance import PickContext, assign, unassign, with_room
from lbcore.server import ServerRuntime


class RandomP2C:
    __slots__ = ("_allbackups", "_draws", "_rng", "_servers")

    def __init__(
        self,
        servers: Sequence[ServerRuntime],
        arg: str | None = None,
        *,
        rng: random.Random | None = None,
        allbackups: bool = False,
    ) -> None:
        draws = int(arg) if arg else 2
        if draws < 1:
            raise ValueError("balance random(<draws>): draws must be at least 1")
        self._servers = servers
        self._allbackups = allbackups
        self._draws = draws
        self._rng = rng if rng is not None else random.Random()

    def pick(self, ctx: PickContext) -> ServerRuntime | None:
        pool = with_room(self._servers, self._allbackups)
        if not pool:
            return None
        drawn = self._rng.choices(
            pool, cum_weights=list(accumulate(s.weight for s in pool)), k=self._draws
        )
        best = drawn[0]
        for s in drawn[1:]:
            if s.active * best.weight < best.active * s.weight:
                best = s
        return assign(best)

    def release(self, server: ServerRuntime) -> None:
        unassign(server)
