"""``balance source``: the client's IP address hashed over the servers' weights.

The same client address reaches the same server as long as the farm does not change,
in every worker and across reloads (see ``_hash`` for why the hash is stable).
"""

from __future__ import annotations

from collections.abc import Sequence

from lbcore.balance import PickContext, unassign
from lbcore.balance._hash import WeightedHash, stable_hash
from lbcore.server import ServerRuntime


class Source:
    __slots__ = ("_map",)

    def __init__(self, servers: Sequence[ServerRuntime], *, allbackups: bool = False) -> None:
        self._map = WeightedHash(servers, allbackups=allbackups)

    def pick(self, ctx: PickContext) -> ServerRuntime | None:
        return self._map.lookup(stable_hash(ctx.src_ip.encode()))

    def release(self, server: ServerRuntime) -> None:
        unassign(server)
