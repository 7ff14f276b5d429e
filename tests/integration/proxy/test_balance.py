"""Each balance algorithm on 300 real requests through a worker; backup servers only
when every active one is down."""

from __future__ import annotations

import http.client
import json
import time
from collections import Counter
from collections.abc import Callable

import pytest

from tests.integration.proxy.harness import Backend, Lb

LbFactory = Callable[..., tuple[Lb, int]]

CONFIG = """
defaults
  mode http
  timeout connect 1s
  timeout client 10s
  timeout server 10s
frontend fe
  bind 127.0.0.1:{port}
  default_backend b
backend b
  balance {algo}
  server s1 {s1} weight 1
  server s2 {s2} weight 2
  server s3 {s3} weight 3
"""


def run(
    port: int,
    n: int = 300,
    path: Callable[[int], str] = lambda i: "/",
    headers: Callable[[int], dict[str, str]] = lambda i: {},
) -> list[tuple[str, str]]:
    """(request key, server) for ``n`` requests over one keep-alive connection."""
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    out = []
    for i in range(n):
        p = path(i)
        h = headers(i)
        c.request("GET", p, headers=h)
        r = c.getresponse()
        assert r.status == 200
        out.append((p + json.dumps(h), json.loads(r.read())["server"]))
    c.close()
    return out


def counts(pairs: list[tuple[str, str]]) -> Counter[str]:
    return Counter(server for _key, server in pairs)


def start(lb: LbFactory, web: list[Backend], algo: str) -> int:
    _, port = lb(CONFIG, algo=algo, s1=web[0].addr, s2=web[1].addr, s3=web[2].addr)
    return port


@pytest.mark.parametrize("algo", ["roundrobin", "static-rr"])
def test_weighted_round_robin_exact(lb: LbFactory, web: list[Backend], algo: str) -> None:
    port = start(lb, web, algo)
    assert counts(run(port)) == {"web1": 50, "web2": 100, "web3": 150}


def test_leastconn_sequential_follows_weights(lb: LbFactory, web: list[Backend]) -> None:
    # One request at a time: every server has 0 active, ties are broken by weight.
    port = start(lb, web, "leastconn")
    c = counts(run(port))
    assert sum(c.values()) == 300 and set(c) == {"web1", "web2", "web3"}
    assert c["web1"] < c["web2"] < c["web3"]


def test_random_power_of_two_roughly_by_weight(lb: LbFactory, web: list[Backend]) -> None:
    port = start(lb, web, "random")
    c = counts(run(port))
    assert set(c) == {"web1", "web2", "web3"}
    assert c["web1"] < c["web3"]  # 1 vs 3 by weight, with a wide margin for chance


def test_first_fills_the_first_server(lb: LbFactory, web: list[Backend]) -> None:
    port = start(lb, web, "first")
    assert counts(run(port)) == {"web1": 300}


def test_source_sticks_to_one_server(lb: LbFactory, web: list[Backend]) -> None:
    port = start(lb, web, "source")
    assert len(counts(run(port))) == 1  # every request comes from 127.0.0.1


def _consistent(pairs: list[tuple[str, str]]) -> dict[str, str]:
    seen: dict[str, str] = {}
    for key, server in pairs:
        assert seen.setdefault(key, server) == server, f"{key} moved"
    return seen


def test_uri_hash_is_consistent_and_spread(lb: LbFactory, web: list[Backend]) -> None:
    port = start(lb, web, "uri")
    seen = _consistent(run(port, path=lambda i: f"/item/{i % 30}"))
    assert len(set(seen.values())) >= 2


def test_hdr_hash_is_consistent_and_spread(lb: LbFactory, web: list[Backend]) -> None:
    port = start(lb, web, "hdr(X-User)")
    seen = _consistent(run(port, headers=lambda i: {"X-User": f"user{i % 30}"}))
    assert len(set(seen.values())) >= 2


def test_backup_only_when_actives_are_down(lb: LbFactory, web: list[Backend]) -> None:
    inst, port = lb(
        CONFIG.replace("server s3 {s3} weight 3", "server s3 {s3} backup"),
        channel=True,
        algo="roundrobin",
        s1=web[0].addr,
        s2=web[1].addr,
        s3=web[2].addr,
    )
    assert counts(run(port)) == {"web1": 100, "web2": 200}
    chan = inst.channel
    assert chan is not None

    def set_state(server: str, state: str) -> None:
        msg = {"op": "server", "backend": "b", "server": server, "op_state": state}
        chan.send(json.dumps(msg).encode())

    set_state("s1", "DOWN")
    time.sleep(0.1)
    assert counts(run(port, 30)) == {"web2": 30}  # one active left: still no backup
    set_state("s2", "DOWN")
    time.sleep(0.1)
    assert counts(run(port, 30)) == {"web3": 30}  # all actives down: the backup serves
    set_state("s1", "UP")
    time.sleep(0.1)
    assert counts(run(port, 30)) == {"web1": 30}


BACKUPS = """
defaults
  mode http
  timeout connect 1s
  timeout client 10s
  timeout server 10s
frontend fe
  bind 127.0.0.1:{port}
  default_backend b
backend b
  balance roundrobin
  {option}
  server s0 {s0} disabled
  server b1 {b1} backup
  server b2 {b2} backup weight 2
"""


@pytest.mark.parametrize("option", ["", "option allbackups"])
def test_first_backup_only_unless_allbackups_as_haproxy(
    lb: LbFactory, web: list[Backend], haproxy: Callable[[str], int], option: str
) -> None:
    """The only active server is disabled: HAProxy sends everything to the first
    backup, or, with ``option allbackups``, balances over both by weight. lbcore must
    do the same, on the same configuration."""
    fmt = {"option": option, "s0": web[0].addr, "b1": web[1].addr, "b2": web[2].addr}
    inst, port = lb(BACKUPS, channel=True, **fmt)
    ours = counts(run(port))
    theirs = counts(run(haproxy(BACKUPS.format(port="{port}", **fmt))))
    want = {"web2": 100, "web3": 200} if option else {"web2": 300}
    assert ours == want
    assert theirs == want
    # The first backup goes down: the next one takes over (alone, or still by weight).
    chan = inst.channel
    assert chan is not None
    msg = {"op": "server", "backend": "b", "server": "b1", "op_state": "DOWN"}
    chan.send(json.dumps(msg).encode())
    time.sleep(0.1)
    assert counts(run(port, 30)) == {"web3": 30}
