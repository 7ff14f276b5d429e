"""``balance static-rr``: weighted round robin over a precomputed map.

Theory of operation: as HAProxy's lb_map.c, the eligible servers are laid out once
in a map of ``sum(weights)`` slots (interleaved with the smooth round-robin order)
and each pick takes the next slot. The map is rebuilt only when the set of eligible
servers changes. Weights are the *configured* ones: HAProxy documents that a static
algorithm's weight cannot change at runtime except between 0 and its initial value,
and weight 0 (like DOWN, DRAIN, MAINT) removes the server from the map.
"""

from __future__ import annotations

from collections.abc import Sequence

from lbcore.balance import PickContext, assign, candidates, unassign
from lbcore.server import ServerRuntime


def build_map(servers: Sequence[ServerRuntime]) -> list[ServerRuntime]:
    """The slots of one full cycle, interleaved by smooth weighted round robin."""
    weights = [s.config.weight for s in servers]
    total = sum(weights)
    score = [0] * len(servers)
    out: list[ServerRuntime] = []
    for _ in range(total):
        best = 0
        for i, w in enumerate(weights):
            score[i] += w
            if score[i] > score[best]:
                best = i
        score[best] -= total
        out.append(servers[best])
    return out


class StaticRR:
    __slots__ = ("_allbackups", "_key", "_map", "_pos", "_servers")

    def __init__(self, servers: Sequence[ServerRuntime], *, allbackups: bool = False) -> None:
        self._servers = servers
        self._allbackups = allbackups
        self._key: tuple[int, ...] = ()
        self._map: list[ServerRuntime] = []
        self._pos = 0

    def pick(self, ctx: PickContext) -> ServerRuntime | None:
        pool = [s for s in candidates(self._servers, self._allbackups) if s.config.weight > 0]
        key = tuple(id(s) for s in pool)
        if key != self._key:
            self._key = key
            self._map = build_map(pool)
        slots = self._map
        n = len(slots)
        # Skip full servers, at most one full turn: all full → the caller queues.
        for _ in range(n):
            s = slots[self._pos % n]
            self._pos = (self._pos + 1) % n
            if s.has_room:
                return assign(s)
        return None

    def release(self, server: ServerRuntime) -> None:
        unassign(server)
