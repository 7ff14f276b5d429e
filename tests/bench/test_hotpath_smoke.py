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
