"""``balance first``: the first server (in configuration order) that has room.

Theory of operation: as HAProxy's lb_first.c, servers are tried in id order (here the
order of the ``server`` lines) and the first eligible one below its ``maxconn`` gets
the request. Meant for farms sized to the load: the tail servers stay idle (and can be
powered down) until the head fills up. Weights matter only as "0 = never".
"""

from __future__ import annotations

from collections.abc import Sequence

from lbcore.balance import PickContext, assign, unassign, with_room
from lbcore.server import ServerRuntime


class First:
    __slots__ = ("_allbackups", "_servers")

    def __init__(self, servers: Sequence[ServerRuntime], *, allbackups: bool = False) -> None:
        self._servers = servers
        self._allbackups = allbackups

    def pick(self, ctx: PickContext) -> ServerRuntime | None:
        pool = with_room(self._servers, self._allbackups)  # keeps configuration order
        return assign(pool[0]) if pool else None

    def release(self, server: ServerRuntime) -> None:
        unassign(server)
