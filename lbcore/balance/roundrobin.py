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
from typing import Final

from lbcore.balance import PickContext, assign, unassign, with_room
from lbcore.server import AdminState, OpState, ServerRuntime

# Final: compiled, these are C statics, not a module-dict lookup per server per pick
_UP: Final = OpState.UP
_GOING_DOWN: Final = OpState.GOING_DOWN
_READY: Final = AdminState.READY


class RoundRobin:
    """Smooth weighted round robin over the eligible tier's servers that have room."""

    __slots__ = ("_allbackups", "_flat", "_flat_score", "_score", "_servers")

    def __init__(self, servers: Sequence[ServerRuntime], *, allbackups: bool = False) -> None:
        self._servers = servers
        self._allbackups = allbackups
        # Keyed by id(): ServerRuntime is a mutable dataclass, hence unhashable.
        self._score: dict[int, int] = {}
        # Most farms have no backup server and no maxconn: their pool is just the
        # eligible servers, so ``pick`` walks them once, with the scores in a list by
        # position instead of a dict by id (a third of the cost of a pick). Both are
        # read from the frozen configuration, so this is decided once.
        self._flat = all(not s.config.backup and s.config.maxconn == 0 for s in servers)
        self._flat_score = [0] * len(servers)

    def pick(self, ctx: PickContext) -> ServerRuntime | None:
        if self._flat and len(self._flat_score) == len(self._servers):
            return self._pick_flat()
        return self.pick_from(with_room(self._servers, self._allbackups))

    def _pick_flat(self) -> ServerRuntime | None:
        """``pick_from(with_room(servers))`` for a farm without backups or maxconn:
        the same smooth-weighted step over the eligible servers, in one walk."""
        servers = self._servers
        score = self._flat_score
        total = 0
        best = -1
        best_score = 0
        for i in range(len(servers)):
            s = servers[i]
            w = s.weight
            op = s.op_state
            if w > 0 and s.admin_state is _READY and (op is _UP or op is _GOING_DOWN):
                c = score[i] + w
                score[i] = c
                total += w
                if best < 0 or c > best_score:
                    best, best_score = i, c
        if best < 0:
            return None
        score[best] = best_score - total
        return assign(servers[best])

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
