"""Runtime state of one server: two orthogonal axes, as HAProxy keeps them.

* operational state (``OpState``) is written only by health checks;
* administrative state (``AdminState``) is written only by the runtime API / stats page.

A server receives new load-balanced traffic only when it is operationally UP (or
going down) and administratively READY. DRAIN keeps it out of load balancing but it
still serves clients whose persistence cookie names it; MAINT takes it out entirely
and stops its checks. The two axes are never merged into one flag (STYLE.md §6).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Protocol

from lbcore.config.model import Server


class OpState(enum.Enum):
    """Operational state from checks (HAProxy: UP, DOWN, and the transitional states)."""

    UP = "UP"
    DOWN = "DOWN"
    GOING_UP = "UP 1/3"  # rendered by the stats renderers with the real counts
    GOING_DOWN = "DOWN 1/2"
    #: soft-stopped (HAProxy's NOLB: "set server B/S health stopping", or an agent):
    #: no new load-balanced traffic, persistent clients still served
    STOPPING = "NOLB"

    @property
    def serves(self) -> bool:
        """Whether checks currently allow traffic (a server going down still serves)."""
        return self in (OpState.UP, OpState.GOING_DOWN)


class AdminState(enum.Enum):
    READY = "ready"
    DRAIN = "drain"
    MAINT = "maint"


class Budget(Protocol):
    """A server's ``maxconn`` shared with the other workers (``lbcore.budget``)."""

    def take(self) -> bool: ...

    def give(self) -> None: ...

    def free(self) -> int: ...


@dataclass(slots=True)
class ServerRuntime:
    """Mutable per-worker view of a configured server.

    ``weight`` is the effective weight (the runtime API can change it); ``active`` is
    the number of connections/requests currently assigned to it, used by leastconn,
    maxconn queueing and drain waiting. ``budget``, when set, holds the server's
    ``maxconn`` slots shared by all the workers: room is what it has free, not what
    this worker's ``active`` leaves.
    """

    config: Server
    backend: str
    weight: int = field(default=-1)
    op_state: OpState = OpState.UP
    admin_state: AdminState = AdminState.READY
    active: int = 0
    total: int = 0
    budget: Budget | None = None
    #: HAProxy's idle-pool sizing (srv_add_to_idle_list): the most connections in use
    #: since the last purge, and the estimate of those needed it keeps idle ones for
    max_used: int = 0
    est_need: int = 0

    def __post_init__(self) -> None:
        if self.weight < 0:
            self.weight = self.config.weight
        if self.config.disabled:
            self.admin_state = AdminState.MAINT

    @property
    def name(self) -> str:
        return self.config.name

    @property
    def backup(self) -> bool:
        return self.config.backup

    @property
    def eligible(self) -> bool:
        """May the load-balancing algorithm pick this server for a new request?"""
        return self.op_state.serves and self.admin_state is AdminState.READY and self.weight > 0

    @property
    def accepts_persistent(self) -> bool:
        """May a request whose cookie names this server go to it (DRAIN allows it)?"""
        op_ok = self.op_state.serves or self.op_state is OpState.STOPPING
        return op_ok and self.admin_state is not AdminState.MAINT

    @property
    def has_room(self) -> bool:
        """Below its ``maxconn`` (0 = unlimited), in all workers if it is shared."""
        if self.config.maxconn == 0:
            return True
        if self.budget is not None:
            return self.budget.free() > 0
        return self.active < self.config.maxconn
