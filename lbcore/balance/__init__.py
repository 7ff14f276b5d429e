"""Load-balancing algorithms behind one small interface.

Each algorithm lives in its own module (as in HAProxy's lb_*.c) and implements
``Algorithm``. ``make_balancer`` builds the right one for a backend's ``balance``
line. Algorithms are sans-I/O: they read ``ServerRuntime`` fields (weight, eligible,
active, backup) and the request facts in ``PickContext``; they never touch sockets.

Backup servers are considered only when no active server is eligible (HAProxy's
rule); weight 0 and non-READY admin states are never picked.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from lbcore.server import ServerRuntime


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


def candidates(servers: Sequence[ServerRuntime]) -> list[ServerRuntime]:
    """Eligible active servers, or eligible backups when no active one is eligible."""
    active = [s for s in servers if s.eligible and not s.backup]
    if active:
        return active
    return [s for s in servers if s.eligible and s.backup]
