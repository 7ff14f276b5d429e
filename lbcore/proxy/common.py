"""Pieces shared by the HTTP and TCP adapters: the lazy deadline timer, the writes made
together at the end of a loop turn, the worker's view of a frontend, and the
bookkeeping of live connections.

The timer is lazy on purpose: inactivity timeouts move on every read, and cancelling
and re-creating a timer per read would cost more than the read. ``Deadline`` sits in
one slot of its loop's timer wheel and only records a later deadline; when the slot
is reached early it re-files itself for the remaining time.
"""

from __future__ import annotations

import asyncio
import heapq
import weakref
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from lbcore.config.model import Global, Proxy
from lbcore.http.h1 import DEFAULT_LIMITS, Limits

if TYPE_CHECKING:
    from lbcore.backend import BackendRuntime
    from lbcore.http.acl import Predicate
    from lbcore.http.rules import CompiledRule
    from lbcore.proxy.accesslog import AccessLog


def _noop() -> None:
    pass


TICK = 0.01  # seconds: deadlines fire on the first 10 ms boundary at or after them


class _Wheel:
    """The deadlines of one event loop, in 10 ms slots served by one loop timer.

    A loop timer per connection (``call_at`` + ``cancel``, and libuv's deferred close
    of the handle) cost a few microseconds per connection on the connection-rate
    benches; a slot is a dict insert and a pop. The loop timer is armed for the
    earliest slot only; slots emptied by cancels are skipped when it fires.
    """

    __slots__ = ("__weakref__", "armed", "handle", "loop", "slots", "ticks")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = weakref.ref(loop)  # weak: the wheels are looked up by loop, weakly
        #: tick -> the deadlines filed in that slot, in filing order (a dict, not a set:
        #: deadlines of one slot fire in the order they were set, deterministically)
        self.slots: dict[int, dict[Deadline, None]] = {}
        self.ticks: list[int] = []  # heap of the slots' tick numbers
        self.handle: asyncio.TimerHandle | None = None
        self.armed = 0  # tick the loop timer is set for (0: none)

    def add(self, d: Deadline, when: float) -> int:
        tick = int(when / TICK) + 1
        slot = self.slots.get(tick)
        if slot is None:
            slot = self.slots[tick] = {}
            heapq.heappush(self.ticks, tick)
            if not self.armed or tick < self.armed:
                self._arm(tick)
        slot[d] = None
        return tick

    def remove(self, d: Deadline, tick: int) -> None:
        slot = self.slots.get(tick)
        if slot is not None:
            slot.pop(d, None)

    def _arm(self, tick: int) -> None:
        if self.handle is not None:
            self.handle.cancel()
        loop = self.loop()
        if loop is None:
            return
        self.armed = tick
        self.handle = loop.call_at(tick * TICK, self._fire)

    def _fire(self) -> None:
        self.handle = None
        loop = self.loop()
        if loop is None:
            return
        due = max(self.armed, int(loop.time() / TICK))
        self.armed = 0
        ticks, slots = self.ticks, self.slots
        while ticks and ticks[0] <= due:
            tick = heapq.heappop(ticks)
            slot = slots.pop(tick, None)
            if slot:
                for d in slot:
                    if d._tick == tick:  # not cancelled or re-filed by a callback since
                        d._due()
        while ticks and not slots.get(ticks[0]):  # emptied by cancels
            slots.pop(heapq.heappop(ticks), None)
        # A callback may have armed the timer for a slot it filed (a deadline re-filed
        # later, say) while an earlier slot still waits: the earliest one wins.
        if ticks and (not self.armed or ticks[0] < self.armed):
            self._arm(ticks[0])


_wheels: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Wheel] = weakref.WeakKeyDictionary()


_last: _Wheel | None = None  # a worker has one loop: skip the weak lookup


def _wheel(loop: asyncio.AbstractEventLoop) -> _Wheel:
    global _last
    w = _last
    if w is not None and w.loop() is loop:
        return w
    w = _wheels.get(loop)
    if w is None:
        w = _wheels[loop] = _Wheel(loop)
    _last = w
    return w


class Sends:
    """Writes of one event-loop turn, made together before the loop polls again.

    Why: uvloop writes the moment a protocol does, so a turn that reads the events of
    one poll interleaves each socket's read, its Python and its write. On loopback a
    write to a peer sleeping in ``epoll_wait`` wakes it (an IPI to the other CPU, or
    the peer pulled onto this CPU, where it often preempts the writer): with the
    interleaving nearly every response woke wrk or nginx again. HAProxy receives all
    of a poll's events first and then sends, in a burst: the peer woken by the first
    write is still busy when the next arrives. ``python -m tests.bench.systime``
    (keep-alive, quiet round): wake-ups per request 0.56 -> 0.12 (HAProxy 0.13), system
    time 21.9 -> 18.8 us per request, throughput +12 %.

    ``write`` queues and returns the turn number; a connection that remembers it can
    tell whether its writes are still queued (``pending``) and ``flush`` them itself
    before anything that must come after them (a close, another write). The flush runs
    from ``loop.call_soon``, that is at the start of the next turn, before its poll.
    """

    __slots__ = ("__weakref__", "items", "loop", "turn")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = weakref.ref(loop)  # weak: the loop is the key it is found by, weakly
        self.items: list[tuple[Any, bytes]] = []
        self.turn = 1  # moves on at every flush

    def write(self, transport: Any, data: bytes) -> int:
        items = self.items
        if not items:
            loop = self.loop()
            if loop is None or loop.is_closed():  # no turn to wait for
                transport.write(data)
                return 0
            loop.call_soon(self.flush)
        items.append((transport, data))
        return self.turn

    def pending(self, turn: int) -> bool:
        """Are writes queued at ``turn`` still unwritten?"""
        return turn == self.turn and bool(self.items)

    def flush(self) -> None:
        items = self.items
        if not items:
            return
        self.items = []
        self.turn += 1
        for transport, data in items:
            if transport.is_closing():  # closed since (reset, or aborted): nobody to tell
                continue
            try:
                transport.write(data)
            except Exception:  # one broken transport must not keep the others' bytes
                continue


_sends: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Sends] = weakref.WeakKeyDictionary()


_last_sends: Sends | None = None  # a worker has one loop: skip the weak lookup


def sends_of(loop: asyncio.AbstractEventLoop) -> Sends:
    """The loop's ``Sends`` (one per loop, shared by all its connections). Called per
    client connection: the last loop's is kept aside, as ``_wheel`` does, since the
    ``WeakKeyDictionary`` lookup runs as interpreted Python (~2k instructions each)."""
    global _last_sends
    s = _last_sends
    if s is not None and s.loop() is loop:
        return s
    s = _sends.get(loop)
    if s is None:
        s = _sends[loop] = Sends(loop)
    _last_sends = s
    return s


class Deadline:
    """One timer per connection whose deadline may move often and cheaply: moving it
    later only records the new time (the slot it is in re-files it when reached)."""

    __slots__ = ("_armed_at", "_cb", "_loop", "_tick", "_wheel", "when")

    def __init__(self, loop: asyncio.AbstractEventLoop, cb: Callable[[], None]) -> None:
        self._loop = loop
        self._wheel = _wheel(loop)
        self._cb = cb
        self._tick = 0  # the wheel slot holding this deadline (0: none)
        self._armed_at = 0.0
        self.when: float | None = None

    def set_in(self, seconds: float | None) -> None:
        """Fire ``seconds`` from now (None: no deadline)."""
        if seconds is None:
            self.when = None
        else:
            self.set_in_at(seconds, self._loop.time())

    def set_in_at(self, seconds: float | None, now: float) -> None:
        """``set_in`` from a ``now`` the caller already read from the loop (one clock
        read per callback on the HTTP hot path instead of one per stamp)."""
        if seconds is None:
            self.when = None
            return
        when = now + seconds
        self.when = when
        if not self._tick or self._armed_at > when:
            if self._tick:
                self._wheel.remove(self, self._tick)
            self._armed_at = when
            self._tick = self._wheel.add(self, when)

    def cancel(self) -> None:
        self.when = None
        if self._tick:
            self._wheel.remove(self, self._tick)
            self._tick = 0

    def close(self) -> None:
        """Cancel for good and let go of the callback: an owner whose bound method it
        is can then be freed by reference counting, not left for the cycle collector."""
        self.cancel()
        self._cb = _noop

    def _due(self) -> None:
        """Its slot was reached: fire, or re-file for a deadline moved later."""
        self._tick = 0
        when = self.when
        if when is None:
            return
        if self._loop.time() + 0.001 < when:
            self._armed_at = when
            self._tick = self._wheel.add(self, when)
            return
        self.when = None
        self._cb()


class Registry:
    """The worker's live client connections, its draining flag and global counters."""

    def __init__(self, maxconn: int) -> None:
        self.conns: set[Any] = set()
        self.draining = False
        self.maxconn = maxconn  # global maxconn: admitted connections, all frontends
        self.admitted = 0
        self.frontends: list[FrontendRuntime] = []  # whose held connections a slot wakes
        self.on_empty: Callable[[], None] | None = None
        #: the worker's request/reply link to its master (``lbcore.proxy.services``)
        self.link: Any = None

    def full(self) -> bool:
        return bool(self.maxconn) and self.admitted >= self.maxconn

    def released(self) -> None:
        """A connection left: let connections held by any frontend in, in turn."""
        self.admitted -= 1
        for fe in self.frontends:
            if fe.waiting:  # (most connections leave with none held anywhere)
                if self.full():
                    return
                fe.wake()

    def add(self, conn: Any) -> None:
        self.conns.add(conn)

    def remove(self, conn: Any) -> None:
        self.conns.discard(conn)
        if self.draining and not self.conns and self.on_empty is not None:
            self.on_empty()


def request_limits(g: Global, accept_invalid: bool = False) -> Limits:
    """HAProxy's head limits: the head must fit in ``tune.bufsize`` minus the space
    reserved for rewrites (``tune.maxrewrite``, cut to half the buffer when larger, as
    HAProxy does), with at most ``tune.http.maxhdr`` fields; ``accept_invalid`` is the
    frontend's ``option accept-invalid-http-request``."""
    room = g.tune_bufsize - min(g.tune_maxrewrite, g.tune_bufsize // 2)
    return Limits(
        max_line=room,
        max_head=room,
        max_headers=g.tune_http_maxhdr,
        accept_invalid=accept_invalid,
    )


class StatusCounts:
    """Responses by class of one frontend or backend (HAProxy's hrsp_Nxx, for the stats
    page and ``show stat``), a base of both runtimes."""

    def __init__(self) -> None:
        self._hrsp = [0] * 10  # by class, status // 100 (read as ``hrsp``)
        self._2xx = 0  # class 2, counted apart

    @property
    def hrsp(self) -> dict[int, int]:
        """Responses by class (status // 100), the classes seen only (HAProxy's hrsp_Nxx)."""
        counts = self._hrsp.copy()
        counts[2] += self._2xx
        return {k: v for k, v in enumerate(counts) if v}

    def count_status(self, status: int) -> None:
        """Count one response in its class: a list slot, where a dict get and set per
        response cost ten times more on the hot path."""
        key = status // 100
        if key == 2:  # most responses: a native int (a list slot boxes its count)
            self._2xx += 1
        elif 0 <= key < 10:
            self._hrsp[key] += 1


class FrontendRuntime(StatusCounts):
    """What a client connection needs to know about its frontend, resolved once."""

    def __init__(
        self,
        proxy: Proxy,
        registry: Registry,
        backends: dict[str, BackendRuntime],
        use_backends: list[tuple[Predicate, BackendRuntime]],
        default_backend: BackendRuntime | None,
        req_rules: tuple[CompiledRule, ...],
        resp_rules: tuple[CompiledRule, ...],
        limits: Limits = DEFAULT_LIMITS,
    ) -> None:
        self.proxy = proxy
        self.limits = limits
        self.name = proxy.name
        self.registry = registry
        self.backends = backends
        self.use_backends = use_backends
        self.default_backend = default_backend
        self.req_rules = req_rules
        self.resp_rules = resp_rules
        self.forwardfor = proxy.options.forwardfor
        self.stats_on = proxy.stats is not None  # a stats page may answer (decided once)
        t = proxy.timeouts
        self.timeout_client = t.client
        self.timeout_http_request = t.http_request if t.http_request is not None else t.client
        self.timeout_keep_alive = (
            t.http_keep_alive if t.http_keep_alive is not None else self.timeout_http_request
        )
        self.timeout_tunnel = t.tunnel
        self.maxconn = proxy.maxconn or 0
        self.conn_cur = 0
        self.conn_tot = 0
        self.req_tot = 0
        self.denied = 0
        StatusCounts.__init__(self)
        self.waiting: deque[Callable[[], None]] = deque()  # connections held at maxconn
        self.log: AccessLog | None = None  # set by the worker when the frontend logs
        registry.frontends.append(self)

    def select_backend(self, req: Any, src: str) -> BackendRuntime | None:
        for pred, be in self.use_backends:
            if pred(req, src):
                return be
        return self.default_backend

    def admit(self, resume: Callable[[], None]) -> bool:
        """Count a new connection; False when it must wait for a slot: the frontend's
        ``maxconn`` or the global one is reached (the connection is held unread, as
        HAProxy leaves it in the accept queue)."""
        if self.enter():
            return True
        self.waiting.append(resume)
        return False

    def enter(self) -> bool:
        """``admit`` without the callback: count a new connection when both limits
        allow, else False (the caller then holds it with ``admit``). A client connection
        asks this first: most get in, and building the bound method ``admit`` keeps for
        a held connection cost each connection an object."""
        if (self.maxconn and self.conn_cur >= self.maxconn) or self.registry.full():
            return False
        self._count()
        return True

    def _count(self) -> None:
        self.conn_cur += 1
        self.conn_tot += 1
        self.registry.admitted += 1

    def leave(self) -> None:
        self.conn_cur -= 1
        if self.waiting:
            self.wake()
        self.registry.released()

    def wake(self) -> None:
        """Admit held connections while both limits allow."""
        registry = self.registry
        while (
            self.waiting
            and (not self.maxconn or self.conn_cur < self.maxconn)
            and not registry.full()
        ):
            self._count()
            self.waiting.popleft()()

    def snapshot(self) -> dict[str, object]:
        return {
            "scur": self.conn_cur,
            "stot": self.conn_tot,
            "req_tot": self.req_tot,
            "dreq": self.denied,
            "hrsp": {str(k): v for k, v in self.hrsp.items()},
        }
