"""Admission at maxconn (``FrontendRuntime.enter`` / ``admit``): ``enter`` counts a
connection when the frontend's and the global limits allow and holds nothing when they
do not; ``admit`` holds the callback then, and a leaving connection lets it in."""

from __future__ import annotations

from lbcore.config import parse_text
from lbcore.proxy.common import FrontendRuntime, Registry


def frontend(maxconn: int, global_maxconn: int = 0) -> FrontendRuntime:
    config = parse_text(
        f"defaults\n  mode http\nfrontend f\n  bind 127.0.0.1:1\n  maxconn {maxconn}\n"
        "  default_backend b\nbackend b\n  server s 127.0.0.1:2\n",
        "t.cfg",
    )
    return FrontendRuntime(config.frontends[0], Registry(global_maxconn), {}, [], None, (), ())


def test_enter_counts_up_to_the_frontend_maxconn_and_holds_nothing_past_it() -> None:
    fe = frontend(2)
    assert fe.enter() and fe.enter()
    assert not fe.enter()
    assert (fe.conn_cur, fe.conn_tot, fe.registry.admitted) == (2, 2, 2)
    assert not fe.waiting


def test_enter_respects_the_global_maxconn() -> None:
    fe = frontend(10, global_maxconn=1)
    assert fe.enter()
    assert not fe.enter()
    assert fe.registry.admitted == 1 and not fe.waiting


def test_a_connection_refused_by_enter_is_held_by_admit_and_let_in_on_leave() -> None:
    fe = frontend(1)
    let_in: list[int] = []
    assert fe.enter()
    assert not fe.enter() and not fe.admit(lambda: let_in.append(1))
    assert len(fe.waiting) == 1 and let_in == []
    fe.leave()
    assert let_in == [1] and fe.conn_cur == 1 and not fe.waiting
