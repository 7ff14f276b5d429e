"""The idle-pool purge and the lazy deadline timer, without sockets."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

import pytest

from lbcore.proxy.common import Deadline
from lbcore.proxy.http import purge_idle


class FakeTransport:
    def __init__(self) -> None:
        self.closed = False

    def close(self) -> None:
        self.closed = True


def conn(idle_since: float) -> SimpleNamespace:
    return SimpleNamespace(idle_since=idle_since, transport=FakeTransport())


def test_purge_closes_only_connections_idle_too_long() -> None:
    old, older, fresh = conn(1.0), conn(2.0), conn(9.0)
    be = SimpleNamespace(idle={"s1": [old, older, fresh], "s2": []})
    assert purge_idle([be], now=10.0, max_idle=5.0) == 2
    assert be.idle["s1"] == [fresh]
    assert old.transport.closed and older.transport.closed and not fresh.transport.closed


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
