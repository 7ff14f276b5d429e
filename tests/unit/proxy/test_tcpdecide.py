"""The TCP session decisions (lbcore.proxy.tcpdecide), without sockets or a loop:
real backends and frontends built from a config, a plain record as the session."""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Any

import pytest

import lbcore
from lbcore.backend import BackendRuntime
from lbcore.config import parse_text
from lbcore.proxy import tcpdecide
from lbcore.proxy.common import FrontendRuntime, Registry
from lbcore.proxy.tcpdecide import FAIL, QUEUE, RETRY
from lbcore.server import AdminState, OpState, ServerRuntime


class Session:
    """What both adapters' sessions carry for the decisions, and nothing else."""

    def __init__(self, be: BackendRuntime | None = None, src: str = "10.0.0.1") -> None:
        self.backend = be
        self.peer: tuple[Any, ...] = (src, 40000)
        self.closed = False
        self.admitted = False
        self.queued = False
        self.retries_left = be.retries if be is not None else 0
        self.retries = 0
        self.redispatched = False
        self.log_server = ""
        self.let_in = 0
        self.woken = 0

    def _admitted(self) -> None:
        self.let_in += 1
        self.admitted = True

    def _dequeued(self) -> None:
        self.woken += 1
        self.queued = False


FRONTEND = "frontend f\n  bind 127.0.0.1:1\n  maxconn {maxconn}\n  default_backend b\n"


def backend(body: str, defaults: str = "") -> BackendRuntime:
    config = parse_text(
        f"defaults\n  mode tcp\n{defaults}{FRONTEND.format(maxconn=0)}backend b\n{body}",
        "t.cfg",
    )
    return BackendRuntime(config.backends["b"])


def frontend(maxconn: int) -> FrontendRuntime:
    config = parse_text(
        f"defaults\n  mode tcp\n{FRONTEND.format(maxconn=maxconn)}"
        "backend b\n  server s 127.0.0.1:2\n",
        "t.cfg",
    )
    return FrontendRuntime(config.frontends[0], Registry(0), {}, [], None, (), ())


def server(be: BackendRuntime, name: str) -> ServerRuntime:
    return be.by_name[name]


# ---- assign: a server, the queue, or nothing ------------------------------------------


def test_assign_picks_a_server_and_counts_it_there() -> None:
    be = backend("  server a 127.0.0.1:1\n  server b 127.0.0.1:2\n")
    got = tcpdecide.assign(be, "10.0.0.1")
    assert isinstance(got, ServerRuntime) and got.name == "a"
    assert got.active == 1
    assert tcpdecide.assign(be, "10.0.0.1") is server(be, "b")  # roundrobin goes on


def test_assign_queues_when_every_server_is_at_maxconn() -> None:
    be = backend("  server a 127.0.0.1:1 maxconn 1\n")
    first = tcpdecide.assign(be, "10.0.0.1")
    assert first is server(be, "a")
    assert tcpdecide.assign(be, "10.0.0.2") is QUEUE  # full, not gone: wait
    assert server(be, "a").active == 1  # the queued one is counted nowhere
    s = Session(be)
    s.queued = True
    be.enqueue(s._dequeued)
    be.release(first)  # the slot frees: the waiter is woken, and then gets the server
    assert s.woken == 1 and not s.queued
    assert tcpdecide.assign(be, "10.0.0.2") is server(be, "a")


@pytest.mark.parametrize(
    "state",
    [
        ("op_state", OpState.DOWN),
        ("admin_state", AdminState.MAINT),
    ],
)
def test_assign_fails_when_no_server_can_serve(state: tuple[str, object]) -> None:
    """No usable server at all is not a full backend: no queue, end now (SC/503)."""
    be = backend("  server a 127.0.0.1:1 maxconn 1\n")
    setattr(server(be, "a"), *state)
    assert tcpdecide.assign(be, "10.0.0.1") is FAIL
    assert not be.queue


def test_assign_fails_with_only_disabled_servers() -> None:
    assert tcpdecide.assign(backend("  server a 127.0.0.1:1 disabled\n"), "x") is FAIL


def test_assign_by_source_sticks_to_one_server() -> None:
    be = backend(
        "  balance source\n  server a 127.0.0.1:1\n  server b 127.0.0.1:2\n  server c 127.0.0.1:3\n"
    )
    picks = {id(tcpdecide.assign(be, "192.0.2.7")) for _ in range(6)}
    assert len(picks) == 1  # the session's source address reaches the algorithm


# ---- connect_failed: retry the same server, redispatch, or give up -----------------


def test_connect_failure_retries_the_same_server_holding_its_slot() -> None:
    be = backend("  retries 3\n  server a 127.0.0.1:1\n  server b 127.0.0.1:2\n")
    s = Session(be)
    a = tcpdecide.assign(be, "10.0.0.1")
    assert a is server(be, "a")
    assert tcpdecide.connect_failed(s, be, a) is RETRY
    assert (s.retries_left, s.retries, s.redispatched) == (2, 1, False)
    assert (be.econ, be.wretr, be.wredis) == (1, 1, 0)
    assert a.active == 1  # still counted: the retry goes to it again


def test_connect_failure_gives_up_after_the_last_retry_and_frees_the_slot() -> None:
    be = backend("  retries 2\n  server a 127.0.0.1:1\n  server b 127.0.0.1:2\n")
    s = Session(be)
    a = tcpdecide.assign(be, "10.0.0.1")
    assert isinstance(a, ServerRuntime)
    got = [tcpdecide.connect_failed(s, be, a) for _ in range(3)]
    assert got == [RETRY, RETRY, FAIL]  # no redispatch without the option
    assert (s.retries_left, s.retries, s.redispatched) == (0, 2, False)
    assert (be.econ, be.wretr, be.wredis) == (3, 2, 0)
    assert a.active == 0


def test_connect_failure_with_no_retries_fails_at_once() -> None:
    be = backend(
        "  retries 0\n  option redispatch\n  server a 127.0.0.1:1\n  server b 127.0.0.1:2\n"
    )
    s = Session(be)
    a = tcpdecide.assign(be, "10.0.0.1")
    assert isinstance(a, ServerRuntime)
    assert tcpdecide.connect_failed(s, be, a) is FAIL
    assert (s.retries, be.econ, be.wretr, a.active) == (0, 1, 0, 0)


def test_redispatch_on_the_last_retry_only() -> None:
    """``option redispatch``: retries go to the same server, the last one elsewhere."""
    be = backend(
        "  retries 3\n  option redispatch\n  server a 127.0.0.1:1\n  server b 127.0.0.1:2\n"
    )
    s = Session(be)
    a = tcpdecide.assign(be, "10.0.0.1")
    assert a is server(be, "a")
    assert tcpdecide.connect_failed(s, be, a) is RETRY
    assert tcpdecide.connect_failed(s, be, a) is RETRY
    assert not s.redispatched
    nxt = tcpdecide.connect_failed(s, be, a)
    assert nxt is server(be, "b")
    assert s.redispatched and s.log_server == "b"
    assert (s.retries_left, s.retries) == (0, 3)
    assert (be.econ, be.wretr, be.wredis) == (3, 3, 1)
    assert (a.active, nxt.active) == (0, 1)  # the slot moved with the session
    assert tcpdecide.connect_failed(s, be, nxt) is FAIL  # and that one was the last
    assert nxt.active == 0


def test_redispatch_needs_another_server() -> None:
    be = backend("  retries 1\n  option redispatch\n  server a 127.0.0.1:1\n")
    s = Session(be)
    a = tcpdecide.assign(be, "10.0.0.1")
    assert isinstance(a, ServerRuntime)
    assert tcpdecide.connect_failed(s, be, a) is RETRY  # one server: retried in place
    assert not s.redispatched and be.wredis == 0
    assert tcpdecide.connect_failed(s, be, a) is FAIL


def test_redispatch_finding_no_server_fails_and_frees_the_slot() -> None:
    be = backend(
        "  retries 1\n  option redispatch\n  server a 127.0.0.1:1\n  server b 127.0.0.1:2\n"
    )
    s = Session(be)
    a = tcpdecide.assign(be, "10.0.0.1")
    assert a is server(be, "a")
    a.op_state = server(be, "b").op_state = OpState.DOWN  # everything went down meanwhile
    assert tcpdecide.connect_failed(s, be, a) is FAIL
    assert s.redispatched and s.retries == 1 and be.wredis == 1
    assert a.active == 0 and s.log_server == ""


def test_redispatch_may_wait_for_the_queue_no_more() -> None:
    """A redispatch that finds every other server full gives up (it does not queue)."""
    be = backend(
        "  retries 1\n  option redispatch\n  server a 127.0.0.1:1 maxconn 1\n"
        "  server b 127.0.0.1:2 maxconn 1\n"
    )
    a = tcpdecide.assign(be, "10.0.0.1")
    b = tcpdecide.assign(be, "10.0.0.2")
    assert (a, b) == (server(be, "a"), server(be, "b"))
    assert isinstance(a, ServerRuntime)
    # a's own slot is given back first, so the redispatch may land on a again
    got = tcpdecide.connect_failed(Session(be), be, a)
    assert got is a and a.active == 1


def test_a_closed_session_is_not_retried() -> None:
    be = backend("  retries 3\n  server a 127.0.0.1:1\n")
    s = Session(be)
    a = tcpdecide.assign(be, "10.0.0.1")
    assert isinstance(a, ServerRuntime)
    s.closed = True
    assert tcpdecide.connect_failed(s, be, a) is FAIL
    assert (s.retries, be.econ, be.wretr, a.active) == (0, 1, 0, 0)


@pytest.mark.parametrize(
    ("connect", "delay"),
    [("timeout connect 200ms\n", 0.2), ("timeout connect 5s\n", 1.0), ("", 1.0)],
)
def test_retry_delay_is_connect_timeout_at_most_one_second(connect: str, delay: float) -> None:
    be = backend("  server a 127.0.0.1:1\n", defaults=f"  {connect}" if connect else "")
    assert tcpdecide.retry_delay(be) == pytest.approx(delay)


# ---- timeouts -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("timeouts", "client", "expected"),
    [
        ("  timeout tunnel 1h\n  timeout server 30s\n", 50.0, 3600.0),  # tunnel wins
        ("  timeout server 30s\n", 50.0, 50.0),  # else the longer of the two
        ("  timeout server 30s\n", 10.0, 30.0),
        ("  timeout server 30s\n", None, 30.0),
        ("", 10.0, 10.0),
        ("", None, None),  # none set: no inactivity timeout at all
    ],
)
def test_tunnel_timeout(timeouts: str, client: float | None, expected: float | None) -> None:
    be = backend("  server a 127.0.0.1:1\n", defaults=timeouts)
    assert tcpdecide.tunnel_timeout(client, be) == expected


def test_expired_term() -> None:
    assert tcpdecide.expired_term(queued=True) == "sQ"  # timeout queue: 503 in HTTP
    assert tcpdecide.expired_term(queued=False) == "cD"


# ---- leaving ---------------------------------------------------------------------------


def test_leave_queue_takes_the_session_off_the_backend_queue() -> None:
    be = backend("  server a 127.0.0.1:1 maxconn 1\n")
    a = tcpdecide.assign(be, "10.0.0.1")
    assert isinstance(a, ServerRuntime)
    gone, waiting = Session(be), Session(be)
    for s in (gone, waiting):
        assert tcpdecide.assign(be, "x") is QUEUE
        s.queued = True
        be.enqueue(s._dequeued)
    tcpdecide.leave_queue(gone, be)
    assert not gone.queued and len(be.queue) == 1
    be.release(a)  # the freed slot goes to the one still waiting
    assert (gone.woken, waiting.woken) == (0, 1)
    tcpdecide.leave_queue(waiting, be)  # not queued any more: nothing to do
    tcpdecide.leave_queue(Session(), None)


def test_leave_frontend_frees_the_slot_for_a_held_session() -> None:
    """Frontend maxconn 1: when the admitted session ends, the held one is let in."""
    fe = frontend(maxconn=1)
    first, held = Session(), Session()
    assert fe.admit(first._admitted)
    first.admitted = True
    assert not fe.admit(held._admitted)  # held at maxconn
    tcpdecide.leave_frontend(first, fe)
    assert not first.admitted
    assert held.let_in == 1 and held.admitted and fe.conn_cur == 1


def test_leave_frontend_of_a_held_session_leaves_the_waiting_line() -> None:
    """A session gone while held must not be let in (and counted) later: else its
    slot is never given back and the frontend stops admitting anyone."""
    fe = frontend(maxconn=1)
    first, gone, later = Session(), Session(), Session()
    assert fe.admit(first._admitted)
    first.admitted = True
    assert not fe.admit(gone._admitted)
    tcpdecide.leave_frontend(gone, fe)
    assert not fe.waiting
    assert not fe.admit(later._admitted)
    tcpdecide.leave_frontend(first, fe)
    assert gone.let_in == 0 and later.let_in == 1 and fe.conn_cur == 1
    tcpdecide.leave_frontend(later, fe)
    assert fe.conn_cur == 0
    tcpdecide.leave_frontend(gone, fe)  # twice, or never held: nothing happens


def test_decisions_are_sans_io() -> None:
    """The decision module imports no I/O or clock modules (STYLE.md §1)."""
    forbidden = {"asyncio", "socket", "ssl", "time", "subprocess", "select", "selectors", "os"}
    # (the package's path: a compiled module's __file__ names its extension, not always beside)
    tree = ast.parse((Path(lbcore.__file__).parent / "proxy" / "tcpdecide.py").read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [a.name.split(".")[0] for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            names = [node.module.split(".")[0]]
        else:
            continue
        assert not forbidden.intersection(names), names
