"""One backend's runtime inside a worker: its servers, algorithm, queue and counters.

Theory of operation: a request asks ``pick``; the algorithm (``lbcore.balance``) counts
it on the server it returns (``active``), and the proxy calls ``release`` exactly once
when that request (HTTP) or connection (TCP) ends. ``pick`` returning None means one of
two things, told apart by ``available()``: no server can take traffic at all (answer
503 at once), or every usable server is at its ``maxconn`` — then the request waits in
this backend's FIFO queue until a ``release`` frees a slot or ``timeout queue`` expires
(503), as HAProxy's backend queue does.

This module holds no sockets and reads no clock; queue waiters are plain callbacks.
"""

from __future__ import annotations

import contextlib
import importlib
from collections import deque
from collections.abc import Callable, Mapping
from typing import Any

from lbcore.balance import PickContext, candidates
from lbcore.balance.roundrobin import RoundRobin
from lbcore.config.model import Balance, Proxy
from lbcore.proxy.common import StatusCounts
from lbcore.proxy.persistence import for_backend as persistence_for
from lbcore.server import ServerRuntime

# The balance helper's algorithms (contract: pick counts, release uncounts); looked
# up dynamically so this module works before and after they land.
_make_algorithm: Any = getattr(importlib.import_module("lbcore.balance"), "make_algorithm", None)


class _RoundRobin:
    """Smooth weighted round robin: the fallback until ``make_algorithm`` exists."""

    def __init__(self, servers: list[ServerRuntime]) -> None:
        self._servers = servers
        self._score: dict[int, int] = {}

    def pick(self, ctx: PickContext) -> ServerRuntime | None:
        act = [s for s in self._servers if s.eligible and not s.backup]
        pool = act or [s for s in self._servers if s.eligible and s.backup]
        pool = [s for s in pool if s.has_room]
        if not pool:
            return None
        total = 0
        best: ServerRuntime | None = None
        best_score = 0
        for s in pool:
            c = self._score.get(id(s), 0) + s.weight
            self._score[id(s)] = c
            total += s.weight
            if best is None or c > best_score:
                best, best_score = s, c
        assert best is not None
        self._score[id(best)] = best_score - total
        best.active += 1
        best.total += 1
        return best

    def release(self, server: ServerRuntime) -> None:
        if server.active > 0:
            server.active -= 1


def make_algorithm(balance: Balance, servers: list[ServerRuntime], allbackups: bool = False) -> Any:
    if _make_algorithm is not None:
        return _make_algorithm(balance, servers, allbackups=allbackups)
    return _RoundRobin(servers)  # pragma: no cover


_EMPTY_CTX = PickContext()


#: ``http-reuse`` modes, from private server connections to any idle one for any request
REUSE_MODES = ("never", "safe", "aggressive", "always")
REUSE_NEVER = 0  # a client's server connections are its own, closed when it goes
REUSE_SAFE = 1  # a client's first request never takes another's idle connection
REUSE_AGGRESSIVE = 2  # a first request may take one that was reused already
REUSE_ALWAYS = 3  # any request takes any idle connection


class BackendRuntime(StatusCounts):
    """Servers, balancing, queueing and counters of one ``backend``/``listen``."""

    def __init__(self, proxy: Proxy) -> None:
        self.proxy = proxy
        self.name = proxy.name
        self.servers = [ServerRuntime(config=s, backend=proxy.name) for s in proxy.servers]
        self.by_name = {s.name: s for s in self.servers}
        self.persist = persistence_for(proxy, self.servers)  # ``cookie``: None if not set
        self.algorithm = make_algorithm(
            proxy.balance, self.servers, allbackups=proxy.options.allbackups
        )
        # The common algorithm called directly (compiled: a C call, where a call through
        # ``algorithm``, typed Any, goes through Python's method lookup and arguments).
        self._rr: RoundRobin | None = self.algorithm if type(self.algorithm) is RoundRobin else None
        algo = proxy.balance.algorithm
        # Which request facts the algorithm reads: others get a shared empty context.
        self.wants_src = algo == "source"
        self.wants_uri = algo == "uri"
        self.wants_headers = algo == "hdr"
        self.plain = not (self.wants_src or self.wants_uri or self.wants_headers)
        self.queue: deque[Callable[[], None]] = deque()
        #: called when a request starts waiting, if set: the worker sets it where
        #: servers share their slots with other workers (``lbcore.budget``), to look
        #: again at those slots while requests wait (``retry_queued``)
        self.on_queued: Callable[[], None] | None = None
        t = proxy.timeouts
        self.timeout_connect = t.connect
        self.timeout_server = t.server
        self.timeout_queue = t.queue if t.queue is not None else t.connect
        self.timeout_tunnel = t.tunnel
        self.retries = proxy.retries
        self.redispatch = proxy.options.redispatch
        self.server_close = proxy.options.http_server_close
        #: ``http-reuse`` as REUSE_NEVER..REUSE_ALWAYS (HAProxy's order: more sharing)
        self.reuse = REUSE_MODES.index(proxy.http_reuse)
        self.need_at = 0.0  # when the servers' idle-pool need estimates are updated next
        # counters (HAProxy's stats names)
        self.req_tot = 0
        self.econ = 0  # connection errors
        self.eresp = 0  # response errors
        self.wretr = 0  # retries
        self.wredis = 0  # redispatches
        self.qmax = 0
        StatusCounts.__init__(self)  # responses by class (``hrsp``, ``count_status``)
        # Filled by the worker: compiled rules, options, and the idle connection pool
        # (upstream connections by server name; the proxy adapter owns their sockets).
        self.req_rules: tuple[Any, ...] = ()
        self.resp_rules: tuple[Any, ...] = ()
        self.forwardfor = proxy.options.forwardfor
        self.stats_on = proxy.stats is not None  # a stats page may answer (decided once)
        self.idle: dict[str, list[Any]] = {}

    def context(
        self, src: str, uri: bytes = b"/", headers: Mapping[str, str] | None = None
    ) -> PickContext:
        if self.wants_src:
            return PickContext(src_ip=src)
        if self.wants_uri:
            return PickContext(uri=uri.decode("latin-1"))
        if self.wants_headers:
            return PickContext(headers=headers or {})
        return _EMPTY_CTX

    def available(self) -> bool:
        """Could any server take traffic if it had room? (False → 503 now.)"""
        return any(s.eligible for s in self.servers)

    def pick(self, ctx: PickContext) -> ServerRuntime | None:
        rr = self._rr
        if rr is not None:
            return rr.pick(ctx)
        server: ServerRuntime | None = self.algorithm.pick(ctx)
        return server

    def release(self, server: ServerRuntime) -> None:
        """A request/connection counted on ``server`` ended: free its slot, wake a waiter."""
        rr = self._rr
        if rr is not None:
            rr.release(server)
        else:
            self.algorithm.release(server)
        if self.queue:
            self.queue.popleft()()

    def enqueue(self, waiter: Callable[[], None], front: bool = False) -> None:
        if front:
            self.queue.appendleft(waiter)
        else:
            self.queue.append(waiter)
        if len(self.queue) > self.qmax:
            self.qmax = len(self.queue)
        if self.on_queued is not None:
            self.on_queued()

    def dequeue(self, waiter: Callable[[], None]) -> None:
        with contextlib.suppress(ValueError):
            self.queue.remove(waiter)

    def retry_queued(self) -> None:
        """Slots may have been freed by other workers (shared ``maxconn``): wake as
        many waiters, in order, as the servers that may serve have free slots now."""
        free = 0
        for s in candidates(self.servers, self.proxy.options.allbackups):
            if s.config.maxconn == 0:
                free = len(self.queue)
                break
            if s.budget is not None:
                free += s.budget.free()
            else:
                free += max(0, s.config.maxconn - s.active)
        for _ in range(min(free, len(self.queue))):
            self.queue.popleft()()

    def wake_waiters(self) -> None:
        """Servers became usable (state/weight change): let queued requests retry."""
        for _ in range(len(self.queue)):
            if not self.queue:
                break
            self.queue.popleft()()

    def snapshot(self) -> dict[str, object]:
        return {
            "req_tot": self.req_tot,
            "econ": self.econ,
            "eresp": self.eresp,
            "wretr": self.wretr,
            "wredis": self.wredis,
            "qcur": len(self.queue),
            "qmax": self.qmax,
            "hrsp": {str(k): v for k, v in self.hrsp.items()},
            "servers": {
                s.name: {
                    "active": s.active,
                    "total": s.total,
                    "weight": s.weight,
                    "op_state": s.op_state.value,
                    "admin_state": s.admin_state.value,
                }
                for s in self.servers
            },
        }
