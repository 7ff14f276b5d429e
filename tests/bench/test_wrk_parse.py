"""Reading wrk's report: the benchmark's figures are only as good as this parser."""

from __future__ import annotations

import pytest

from tests.bench.wrk import parse

REPORT = """Running 2s test @ http://127.0.0.1:8080/small
  1 threads and 50 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     3.07ms    1.10ms  20.00ms   80.00%
    Req/Sec    15.03k     1.20k   17.00k    70.00%
  Latency Distribution
     50%  812.00us
     75%    3.50ms
     90%    4.00ms
     99%    1.20s{SP}
  30068 requests in 2.00s, 9.40MB read
  Socket errors: connect 0, read 3, write 0, timeout 1
  Non-2xx or 3xx responses: 5
Requests/sec:  15034.00
Transfer/sec:      4.70MB
""".replace("{SP}", " ")  # wrk pads some figures with a trailing space


def test_parse_wrk_report() -> None:
    r = parse(REPORT)
    assert r.requests == 30068
    assert r.seconds == 2.0
    assert r.rps == pytest.approx(15034)
    assert r.mbps == pytest.approx(4.70)
    assert r.p50_ms == pytest.approx(0.812)
    assert r.p99_ms == pytest.approx(1200.0)
    assert r.errors == 3 + 1 + 5


def test_parse_refuses_a_report_without_latency() -> None:
    with pytest.raises(ValueError, match="latency"):
        parse(REPORT.replace("     50%  812.00us\n", ""))
    with pytest.raises(ValueError, match="request count"):
        parse("Running 2s test\n")
