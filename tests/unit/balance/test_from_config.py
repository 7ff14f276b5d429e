"""make_algorithm over backends parsed from real configuration text."""

from __future__ import annotations

from collections import Counter

import pytest

from lbcore.balance import PickContext, make_algorithm
from lbcore.balance.first import First
from lbcore.balance.hdr import Hdr
from lbcore.balance.leastconn import LeastConn
from lbcore.balance.random_p2c import RandomP2C
from lbcore.balance.roundrobin import RoundRobin
from lbcore.balance.source import Source
from lbcore.balance.static_rr import StaticRR
from lbcore.balance.uri import Uri
from lbcore.config.parser import parse_text
from lbcore.server import ServerRuntime

CASES = [
    ("roundrobin", RoundRobin),
    ("static-rr", StaticRR),
    ("leastconn", LeastConn),
    ("first", First),
    ("source", Source),
    ("uri", Uri),
    ("hdr(X-Tenant)", Hdr),
    ("random", RandomP2C),
    ("random(3)", RandomP2C),
]


@pytest.mark.parametrize(("line", "cls"), CASES)
def test_each_balance_line_builds_its_algorithm(line: str, cls: type) -> None:
    cfg = parse_text(
        f"""
frontend fe
    bind 127.0.0.1:8000
    default_backend be

backend be
    balance {line}
    server a 127.0.0.1:8001 weight 3
    server b 127.0.0.1:8002 weight 1
    server c 127.0.0.1:8003 backup
    server d 127.0.0.1:8004 disabled
"""
    )
    be = cfg.backends["be"]
    servers = [ServerRuntime(s, be.name) for s in be.servers]
    algo = make_algorithm(be.balance, servers)
    assert isinstance(algo, cls)
    counts: Counter[str] = Counter()
    for i in range(400):
        ctx = PickContext(
            src_ip=f"10.0.{i // 256}.{i % 256}", uri=f"/p/{i}", headers={"x-tenant": f"t{i}"}
        )
        s = algo.pick(ctx)
        assert s is not None
        counts[s.name] += 1
        algo.release(s)
    # The backup and the disabled server never serve while a and b are up.
    assert set(counts) <= {"a", "b"}
    if line != "first":
        assert counts["a"] > counts["b"] > 0  # weight 3 against 1
