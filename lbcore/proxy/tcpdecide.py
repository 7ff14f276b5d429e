"""What a TCP-mode session does next, decided once for both TCP adapters.

Why: the transport adapter (``lbcore.proxy.tcp``) and the epoll one
(``lbcore.proxy.tcpraw``) used to carry the same admission, queueing, retry and
redispatch logic line for line, so a fix made to one could miss the other (the
maxconn waiting-line fix did). The decisions live here; each adapter keeps only its
I/O: sockets, timers, closing, and the clock it reads for its log line.

Theory of operation, in HAProxy's terms (configuration manual: ``maxconn``,
``retries``, ``option redispatch``, ``timeout queue``, ``timeout tunnel``):

* ``assign`` picks a server; when it cannot, it tells a full backend (every usable
  server at its ``maxconn``: wait in the backend's queue, at most ``timeout queue``)
  from one that cannot serve at all (the session ends, termination state ``SC``).
* ``connect_failed`` books a failed connection attempt (``econ``) and says what comes
  next: ``RETRY`` the same server after ``retry_delay`` (the manual's "turn-around
  timer of min(timeout connect, one second)"), connect at once to the server it
  returns (``option redispatch`` on the last retry, when there is another server), or
  ``FAIL`` (no retry left; the server's slot is given back).
* ``expired_term`` names the termination state of a session whose deadline passed.
* ``leave_frontend`` gives the frontend's slot back, or, for a session still held at
  the frontend's ``maxconn``, takes it off the waiting line (it must not be let in,
  and counted, once gone).

Every function is synchronous and plain: no sockets, no event loop, no clock
(durations are returned for the adapter to arm). The session is passed as itself
(``Session``: the fields both adapters already carry and ``tcp.log_session`` reads),
so the hot path makes no object per decision.
"""

from __future__ import annotations

import contextlib
import enum
from typing import TYPE_CHECKING, Any, Final, Literal, Protocol

from lbcore.backend import BackendRuntime
from lbcore.balance import PickContext
from lbcore.server import ServerRuntime

if TYPE_CHECKING:  # typing only: lbcore.proxy.common brings the event loop along
    from lbcore.proxy.common import FrontendRuntime


class Next(enum.Enum):
    """What a session does when it has no server to connect to right now."""

    QUEUE = "queue"  # wait in the backend's queue (``timeout queue``) for a free slot
    RETRY = "retry"  # connect to the same server again after ``retry_delay``
    FAIL = "fail"  # end the session: no server, or no retry left (``TERM_FAIL``)


QUEUE: Final = Next.QUEUE
RETRY: Final = Next.RETRY
FAIL: Final = Next.FAIL

# Termination states (HAProxy's log, two letters: who ended it, in which phase)
TERM_FAIL: Final = "SC"  # server side, while connecting (or none could be picked)
TERM_QUEUE: Final = "sQ"  # server timeout while waiting in the queue
TERM_TIMEOUT: Final = "cD"  # client timeout during data transfer (the tunnel timeout)

RETRY_DELAY_MAX: Final = 1.0  # seconds: the turn-around timer's upper bound

_PLAIN = PickContext()  # what an algorithm reading no request fact is given


class Session(Protocol):
    """The decision fields of a TCP session (both adapters' sessions have them)."""

    backend: BackendRuntime | None
    peer: tuple[Any, ...]
    closed: bool
    admitted: bool
    queued: bool
    retries_left: int  # connection retries still allowed (starts at ``retries``)
    retries: int  # retries made (the log's retries field)
    redispatched: bool  # the log's ``+`` before retries
    log_server: str

    def _admitted(self) -> None: ...  # the frontend's waiter: called when let in

    def _dequeued(self) -> None: ...  # the backend's waiter: called when a slot frees


def tunnel_timeout(timeout_client: float | None, be: BackendRuntime) -> float | None:
    """The inactivity timeout of an established TCP session: ``timeout tunnel`` when
    set (it supersedes the others), else the longer of the client and server ones."""
    t = be.timeout_tunnel
    if t is None:
        known = [x for x in (timeout_client, be.timeout_server) if x is not None]
        t = max(known) if known else None
    return t


def assign(be: BackendRuntime, src: str) -> ServerRuntime | Literal[Next.QUEUE, Next.FAIL]:
    """A server for a session from ``src`` (counted on it: ``be.release`` it once),
    ``QUEUE`` when every usable server is full, ``FAIL`` when none can serve."""
    # ``be.context`` would answer the same for a plain algorithm: one call fewer on
    # the path of every connection.
    server = be.pick(_PLAIN if be.plain else be.context(src))
    if server is not None:
        return server
    return QUEUE if be.available() else FAIL


def connect_failed(
    s: Session, be: BackendRuntime, server: ServerRuntime
) -> ServerRuntime | Literal[Next.RETRY, Next.FAIL]:
    """Book a failed connection to ``server`` and say what comes next: ``RETRY`` it
    after ``retry_delay(be)``, connect at once to the server returned (a redispatch,
    already counted on it), or ``FAIL``. On ``FAIL`` and on a redispatch, ``server``'s
    slot has been given back; on ``RETRY`` the session still holds it."""
    be.econ += 1
    if s.closed or s.retries_left <= 0:
        be.release(server)
        return FAIL
    s.retries_left -= 1
    be.wretr += 1
    s.retries += 1
    # HAProxy's default for ``option redispatch``: only the last retry goes elsewhere.
    if be.redispatch and s.retries_left == 0 and len(be.servers) > 1:
        be.release(server)
        be.wredis += 1
        s.redispatched = True
        nxt = be.pick(be.context(s.peer[0]))
        if nxt is None:
            return FAIL
        s.log_server = nxt.name
        return nxt
    return RETRY


def retry_delay(be: BackendRuntime) -> float:
    """Seconds before retrying the same server: min(``timeout connect``, 1s)."""
    return min(be.timeout_connect or RETRY_DELAY_MAX, RETRY_DELAY_MAX)


def expired_term(queued: bool) -> str:
    """The termination state of a session whose deadline (not a connect's) passed."""
    return TERM_QUEUE if queued else TERM_TIMEOUT


def leave_queue(s: Session, be: BackendRuntime | None) -> None:
    """A session ending while queued for a server stops waiting for one (callers may
    skip the call when ``s.queued`` is false: it does nothing then)."""
    if s.queued and be is not None:
        be.dequeue(s._dequeued)
        s.queued = False


def leave_frontend(s: Session, fe: FrontendRuntime) -> None:
    """A session ends: its frontend slot frees (letting a held one in), or, if it was
    still held at ``maxconn``, it leaves the waiting line instead."""
    if s.admitted:
        s.admitted = False
        fe.leave()
    else:
        with contextlib.suppress(ValueError):
            fe.waiting.remove(s._admitted)
