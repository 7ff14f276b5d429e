"""CI smoke run of the in-process hot-path measure: it still drives real requests."""

from __future__ import annotations

import pytest

from tests.bench import hotpath


@pytest.mark.bench
def test_hotpath_cycles_requests_through_the_proxy_objects() -> None:
    client, loop, sink = hotpath.setup(log=True)
    try:
        for _ in range(50):
            hotpath.cycle(client, loop)
        out = client.transport
        # every response went to the client whole, each in one write
        assert out.writes == 50
        assert out.written == 50 * len(out.last) and out.last.endswith(hotpath.configs.SMALL_BODY)
        assert client.fe.log is not None and client.fe.log.sender.targets[0].counters.sent == 50
    finally:
        sink.close()
    assert hotpath.measure(200, log=True, warmup=50) > 0


@pytest.mark.bench
def test_close_mode_runs_whole_connections_through_the_proxy_objects() -> None:
    bench = hotpath.CloseBench(log=True)
    try:
        fe = bench.factory().fe
        registry = fe.registry
        conn_tot = fe.conn_tot
        for _ in range(50):
            transport = bench.cycle()
            # the answer went out whole in one write, saying the connection closes
            assert transport.writes == 1 and transport.last.endswith(hotpath.configs.SMALL_BODY)
            assert b"\r\nconnection: close\r\n" in transport.last.lower()
            # closed, and connection_lost ran: nothing of it is left in the worker
            assert transport.closed and bench.last is not None and bench.last.transport is None
            assert not registry.conns and registry.admitted == 0 and fe.conn_cur == 0
        assert fe.conn_tot == conn_tot + 50
        # the server side stayed pooled: one idle connection per server again
        be = fe.default_backend
        assert be is not None and all(len(idle) == 1 for idle in be.idle.values())
        assert fe.log is not None and fe.log.sender.targets[0].counters.sent == 50
    finally:
        bench.close()
    assert hotpath.measure_close(200, log=True, warmup=50) > 0
