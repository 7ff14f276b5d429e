"""The worker side of the control plane: server messages applied, pending ones read,
counters pushed (lbcore.worker_link)."""

from __future__ import annotations

import asyncio

from lbcore import control
from lbcore.config import parse_text
from lbcore.server import AdminState, OpState, ServerRuntime
from lbcore.stats import Counters, snapshot_from_json
from lbcore.worker_link import (
    StatsPusher,
    apply_server_message,
    read_pending,
    shutdown_target,
    stats_message,
)

CONFIG = """\
frontend f
    bind 127.0.0.1:18001
    default_backend app
backend app
    server web1 127.0.0.1:18081 weight 3
    server web2 127.0.0.1:18082
"""


class Be:
    def __init__(self, servers: list[ServerRuntime]) -> None:
        self.by_name = {s.name: s for s in servers}


def backends() -> dict[str, Be]:
    config = parse_text(CONFIG, "t.cfg")
    proxy = config.backends["app"]
    return {"app": Be([ServerRuntime(config=s, backend="app") for s in proxy.servers])}


def test_a_server_message_sets_every_field_it_carries() -> None:
    bes = backends()
    msg = {
        "op": "server",
        "backend": "app",
        "server": "web1",
        "op_state": "DOWN",
        "admin_state": "drain",
        "weight": 7,
        "addr": ["127.0.0.2", 18099],
    }
    server = apply_server_message(bes, msg)
    web1 = bes["app"].by_name["web1"]
    assert server is web1
    assert (web1.op_state, web1.admin_state, web1.weight) == (
        OpState.DOWN,
        AdminState.DRAIN,
        7,
    )
    assert (web1.config.host, web1.config.port) == ("127.0.0.2", 18099)
    assert not web1.eligible
    # only what is present is applied
    apply_server_message(bes, {"op": "server", "backend": "app", "server": "web1", "weight": 2})
    assert (web1.weight, web1.admin_state) == (2, AdminState.DRAIN)


def test_bad_or_foreign_messages_change_nothing() -> None:
    bes = backends()
    web2 = bes["app"].by_name["web2"]
    for msg in (
        {"op": "stop"},
        {"op": "server", "backend": "nope", "server": "web2", "weight": 0},
        {"op": "server", "backend": "app", "server": "nope", "weight": 0},
        {"op": "server", "backend": "app", "server": "web2", "admin_state": "sideways"},
        {"op": "server", "backend": "app", "server": "web2", "weight": "x", "op_state": "DOWN"},
    ):
        assert apply_server_message(bes, msg) is None
    assert (web2.weight, web2.op_state, web2.admin_state) == (1, OpState.UP, AdminState.READY)
    hi = {"op": "server", "backend": "app", "server": "web2", "weight": 1000}
    apply_server_message(bes, hi)
    assert web2.weight == 256


def test_read_pending_returns_what_is_queued_without_waiting() -> None:
    master, worker = control.channel_pair()
    with master, worker:
        assert read_pending(worker) == []
        control.send(master, {"op": "server", "backend": "app", "server": "web1"})
        master.send(b"not json")
        control.send(master, {"op": "shutdown_sessions", "backend": "app", "server": "web1"})
        got = read_pending(worker)
        assert [m["op"] for m in got] == ["server", "shutdown_sessions"]
        assert shutdown_target(got[1]) == ("app", "web1")
        assert shutdown_target(got[0]) is None
        assert worker.getblocking()


def test_stats_are_pushed_periodically_and_on_demand() -> None:
    sent: list[dict[str, object]] = []
    counters = {("f", "FRONTEND"): Counters(stot=3, hrsp_2xx=3)}

    async def run() -> None:
        pusher = StatsPusher(sent.append, lambda: counters, interval=0.02)
        pusher.start()
        await asyncio.sleep(0.11)
        pusher.stop()
        n = len(sent)
        pusher.push()
        await asyncio.sleep(0.05)
        assert len(sent) == n + 1

    asyncio.run(run())
    assert len(sent) >= 3
    msg = sent[-1]
    assert msg["op"] == "stats"
    assert snapshot_from_json(msg["counters"])[("f", "FRONTEND")].stot == 3  # type: ignore[arg-type]
    assert stats_message(counters)["counters"] == msg["counters"]
