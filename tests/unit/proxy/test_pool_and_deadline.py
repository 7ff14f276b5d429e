"""The idle-pool purge and the lazy deadline timer, without sockets."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

import pytest

from lbcore.backend import BackendRuntime
from lbcore.config.model import Proxy, ProxyKind, Server
from lbcore.proxy.common import Deadline
from lbcore.proxy.http import Upstream, _keep_idle, purge_idle


class FakeTransport:
    def __init__(self) -> None:
        self.closed = False

    def close(self) -> None:
        self.closed = True


def conn(idle_since: float) -> SimpleNamespace:
    return SimpleNamespace(idle_since=idle_since, transport=FakeTransport())


def test_purge_closes_only_connections_idle_too_long() -> None:
    old, older, fresh = conn(1.0), conn(2.0), conn(9.0)
    be = SimpleNamespace(idle={"s1": [old, older, fresh], "s2": []}, need_at=99.0, servers=[])
    assert purge_idle([be], now=10.0, max_idle=5.0) == 2
    assert be.idle["s1"] == [fresh]
    assert old.transport.closed and older.transport.closed and not fresh.transport.closed


def test_purge_period_moves_the_need_estimate_as_haproxy() -> None:
    """srv_cleanup_idle_conns: est_need = max((est_need + max_used) / 2, max_used), and
    the new period's peak starts at the connections in use now."""
    srv = SimpleNamespace(est_need=10, max_used=4, active=1)
    be = SimpleNamespace(idle={}, need_at=0.0, servers=[srv])
    purge_idle([be], now=10.0, max_idle=5.0)
    assert (srv.est_need, srv.max_used, be.need_at) == (7, 1, 15.0)
    purge_idle([be], now=12.0, max_idle=5.0)  # not a new period yet
    assert (srv.est_need, srv.max_used) == (7, 1)
    srv.max_used = 9
    purge_idle([be], now=15.0, max_idle=5.0)
    assert (srv.est_need, srv.max_used) == (9, 1)


_BE = BackendRuntime(
    Proxy(name="b", kind=ProxyKind.BACKEND, servers=(Server(name="s1", host="h", port=1),))
)


def up(proven: bool) -> Upstream:
    conn = Upstream(_BE, _BE.servers[0])  # a real one: the compiled module checks types
    conn.proven = proven
    return conn


@pytest.mark.parametrize(
    ("released", "idle", "used", "est_need", "keep"),
    [
        (up(True), [up(False)], 1, 0, True),  # the first proven one is always kept
        # HAProxy keeps a second proven one only within the need; lbcore keeps it, as it
        # stands for a keep-alive session's connection HAProxy would keep with the session
        (up(True), [up(True)], 1, 0, True),
        (up(False), [up(False)], 1, 0, False),  # http-reuse safe: B's first connection
        (up(False), [up(False)], 1, 2, True),  # 1 used + 1 idle within a need of 2
        (up(False), [up(True)], 3, 3, False),  # 3 in use + 1 idle > a need of 3
        (up(False), [up(True)], 3, 4, True),  # ... within a need of 4
    ],
)
def test_idle_pool_admission_as_haproxy(released, idle, used, est_need, keep) -> None:
    assert _keep_idle(released, idle, used, est_need) is keep


@pytest.mark.flaky(reruns=2)  # real loop timers on a shared machine
def test_deadline_moves_without_rearming_and_fires_once() -> None:
    loop = asyncio.new_event_loop()
    fired: list[float] = []
    d = Deadline(loop, lambda: fired.append(loop.time()))

    async def scenario() -> None:
        d.set_in(0.2)
        last = loop.time()
        for _ in range(5):  # activity keeps pushing the deadline
            await asyncio.sleep(0.02)
            last = loop.time()
            d.set_in(0.2)
        assert fired == []
        await asyncio.sleep(0.5)
        assert len(fired) == 1 and fired[0] - last >= 0.19
        d.set_in(0.01)
        d.set_in(None)  # disarmed: nothing fires
        await asyncio.sleep(0.05)
        assert len(fired) == 1

    try:
        loop.run_until_complete(scenario())
    finally:
        loop.close()


@pytest.mark.flaky(reruns=2)  # real loop timers on a shared machine
def test_deadlines_share_the_wheel_fire_once_in_order_and_honour_cancels() -> None:
    loop = asyncio.new_event_loop()
    fired: list[tuple[str, float]] = []
    ds: dict[str, Deadline] = {}

    def fire(name: str) -> None:
        fired.append((name, loop.time()))
        if name == "a":  # a callback touching others filed in the same slot
            ds["b"].cancel()  # in the slot being fired: must not fire now
            ds["b"].set_in(0.35)  # ... but then, once
            ds["c"].set_in(0.25)  # cancelled earlier, re-armed: fires later, once

    for name in "abcdefg":
        ds[name] = Deadline(loop, lambda n=name: fire(n))

    async def scenario() -> None:
        t0 = loop.time()
        for name in "abc":
            ds[name].set_in(0.05)  # all three in one slot
        ds["c"].cancel()
        ds["d"].set_in(0.3)
        ds["d"].set_in(0.1)  # moved earlier: re-filed
        ds["e"].set_in(0.12)
        ds["e"].set_in(0.2)  # moved later: fires at the later time
        ds["f"].set_in(0.08)
        ds["f"].close()  # cancelled for good
        ds["g"].set_in(0.15)
        ds["g"].set_in(None)
        await asyncio.sleep(0.7)
        got = {n: t - t0 for n, t in fired}
        assert [n for n, _ in fired] == ["a", "d", "e", "c", "b"], fired
        assert got["a"] >= 0.049
        assert got["c"] >= got["a"] + 0.249
        assert got["b"] >= got["a"] + 0.349
        assert got["d"] >= 0.099
        assert got["e"] >= 0.199

    try:
        loop.run_until_complete(scenario())
    finally:
        loop.close()


@pytest.mark.flaky(reruns=2)  # real loop timers on a shared machine
def test_a_deadline_refiled_later_does_not_delay_an_earlier_one() -> None:
    """The wheel's timer must stay armed for its earliest slot after firing one in
    which a deadline re-files itself later: TCP mode's connect deadline does that when
    the connection is made (it becomes the tunnel timeout), and a queued session's
    300 ms ``timeout queue``, filed meanwhile, fired after the other's 5 s instead."""
    loop = asyncio.new_event_loop()
    fired: dict[str, float] = {}
    early = Deadline(loop, lambda: fired.setdefault("early", loop.time()))
    other = Deadline(loop, lambda: fired.setdefault("other", loop.time()))

    async def scenario() -> None:
        t0 = loop.time()
        early.set_in(0.05)
        other.set_in(0.2)  # a later slot: the wheel's timer stays on early's
        early.set_in(2.0)  # moved later: re-files itself when its slot is reached
        await asyncio.sleep(0.6)
        assert "early" not in fired
        assert "other" in fired, "the 0.2 s deadline waited for the 2 s one"
        assert 0.19 <= fired["other"] - t0 < 0.5

    try:
        loop.run_until_complete(scenario())
    finally:
        early.close()
        other.close()
        loop.close()
