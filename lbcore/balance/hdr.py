"""``balance hdr(<name>)``: the value of one request header, hashed.

As HAProxy documents it, when the header is absent or empty the request is balanced
by round robin instead, so clients that do not send it are still spread out.
"""

from __future__ import annotations

from collections.abc import Sequence

from lbcore.balance import PickContext, unassign
from lbcore.balance._hash import WeightedHash, stable_hash
from lbcore.balance.roundrobin import RoundRobin
from lbcore.server import ServerRuntime


class Hdr:
    __slots__ = ("_map", "_name", "_rr")

    def __init__(
        self, servers: Sequence[ServerRuntime], name: str, *, allbackups: bool = False
    ) -> None:
        self._name = name.lower()  # PickContext.headers has lower-case names
        self._map = WeightedHash(servers, allbackups=allbackups)
        self._rr = RoundRobin(servers, allbackups=allbackups)

    def pick(self, ctx: PickContext) -> ServerRuntime | None:
        value = ctx.headers.get(self._name)
        if not value:
            return self._rr.pick(ctx)
        return self._map.lookup(stable_hash(value.encode()))

    def release(self, server: ServerRuntime) -> None:
        unassign(server)
