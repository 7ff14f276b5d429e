"""Cookie persistence through ``lbcore run`` over real sockets: the seed's four steps
for insert (indirect, nocache), rewrite and prefix; a cookie naming a DOWN server is
redispatched and the new server's cookie set; DRAIN keeps persistent clients, MAINT
does not, and both survive a reload (issue 3, Must show 2 and 3)."""

from __future__ import annotations

import signal
from collections import Counter
from collections.abc import Callable

import pytest

from tests.integration.control.harness import Lb, eventually
from tests.integration.dataplane.web import Web, get, spread

CONFIG = """\
global
    stats socket @SOCK@ mode 600 level admin
defaults
    mode http
    option redispatch
    timeout connect 1s
    timeout client 5s
    timeout server 5s
frontend www
    bind 127.0.0.1:@PORT@
    default_backend app
backend app
    balance roundrobin
    {cookie}
    server web1 127.0.0.1:{p1} cookie w1 check inter 100ms fall 1 rise 1
    server web2 127.0.0.1:{p2} cookie w2 check inter 100ms fall 1 rise 1
"""


def start(lb: Lb, cookie: str, web1: Web, web2: Web, workers: int = 2) -> None:
    lb.write(CONFIG.format(cookie=cookie, p1=web1.port, p2=web2.port))
    lb.start("--workers", str(workers))
    eventually(lambda: lb.stat()["app/web1"]["status"] == "UP", 10, "web1 UP")
    eventually(lambda: lb.stat()["app/web2"]["status"] == "UP", 10, "web2 UP")


def set_cookie(headers: dict[str, list[str]], name: str = "SRV") -> str:
    values = [v for v in headers.get("set-cookie", []) if v.startswith(name + "=")]
    assert len(values) == 1, headers
    return values[0]


@pytest.mark.timeout(60)
def test_insert_indirect_nocache_four_steps_and_redispatch(
    lb: Lb, make_web: Callable[..., Web]
) -> None:
    web1, web2 = make_web("web1"), make_web("web2")
    start(lb, "cookie SRV insert indirect nocache", web1, web2)
    # 1. a first request is load-balanced; 2. the answer names its server
    status, headers, body = get(lb.port, headers={"Cookie": "app=1"})
    assert status == 200
    first = body.strip()
    value = {"web1": "w1", "web2": "w2"}[first]
    assert set_cookie(headers) == f"SRV={value}; path=/"
    assert "private" in headers["cache-control"]  # nocache: a cacheable answer is made private
    # 3. later requests with the cookie go back to it; 4. the client keeps reusing it
    sticky = spread(lb.port, 20, cookie=f"SRV={value}; app=1")
    assert sticky == {first: 20}
    web = web1 if first == "web1" else web2
    assert web.cookies[-1] == "app=1"  # indirect: the server never sees SRV
    status, headers, _ = get(lb.port, headers={"Cookie": f"SRV={value}"})
    assert "set-cookie" not in headers  # indirect: not set again on a valid cookie
    # without a cookie, round robin still alternates
    assert set(spread(lb.port, 10)) == {"web1", "web2"}

    # The cookie's server goes DOWN (its port closes): redispatched, the new cookie set.
    web.close()
    eventually(lambda: lb.stat()[f"app/{first}"]["status"] == "DOWN", 10, "DOWN")
    other = "web2" if first == "web1" else "web1"
    status, headers, body = get(lb.port, headers={"Cookie": f"SRV={value}"})
    assert (status, body.strip()) == (200, other)
    new_value = {"web1": "w1", "web2": "w2"}[other]
    assert set_cookie(headers) == f"SRV={new_value}; path=/"
    assert spread(lb.port, 5, cookie=f"SRV={new_value}") == {other: 5}


@pytest.mark.timeout(60)
def test_rewrite_four_steps(lb: Lb, make_web: Callable[..., Web]) -> None:
    web1 = make_web("web1", set_cookie="SRV=app-session; path=/")
    web2 = make_web("web2", set_cookie="SRV=app-session; path=/")
    start(lb, "cookie SRV rewrite", web1, web2, workers=1)
    _, headers, body = get(lb.port)
    first = body.strip()
    value = {"web1": "w1", "web2": "w2"}[first]
    assert set_cookie(headers) == f"SRV={value}; path=/"  # the server's value replaced
    assert spread(lb.port, 10, cookie=f"SRV={value}") == {first: 10}
    web = web1 if first == "web1" else web2
    assert web.cookies[-1] == f"SRV={value}"  # rewrite: the server sees what the client sent


@pytest.mark.timeout(60)
def test_prefix_four_steps(lb: Lb, make_web: Callable[..., Web]) -> None:
    web1 = make_web("web1", set_cookie="SRV=sess42; path=/")
    web2 = make_web("web2", set_cookie="SRV=sess42; path=/")
    start(lb, "cookie SRV prefix", web1, web2, workers=1)
    _, headers, body = get(lb.port)
    first = body.strip()
    value = {"web1": "w1", "web2": "w2"}[first]
    assert set_cookie(headers) == f"SRV={value}~sess42; path=/"
    assert spread(lb.port, 10, cookie=f"SRV={value}~sess42") == {first: 10}
    web = web1 if first == "web1" else web2
    assert web.cookies[-1] == "SRV=sess42"  # the prefix is stripped on the way in


@pytest.mark.timeout(90)
def test_drain_keeps_persistent_clients_maint_does_not_and_both_survive_a_reload(
    lb: Lb, make_web: Callable[..., Web]
) -> None:
    web1, web2 = make_web("web1"), make_web("web2")
    start(lb, "cookie SRV insert indirect nocache", web1, web2)
    assert lb.proc is not None
    lb.cli("set server app/web1 state drain")
    eventually(lambda: spread(lb.port, 4) == {"web2": 4}, 5, "drain reaching the workers")
    assert spread(lb.port, 20) == {"web2": 20}  # 0 new non-persistent requests
    assert spread(lb.port, 20, cookie="SRV=w1") == {"web1": 20}  # persistent ones still do

    old = set(lb.proc.workers())
    lb.proc.signal(signal.SIGUSR2)
    eventually(lambda: lb.proc is not None and not lb.proc.workers() & old, 20, "new workers")
    assert lb.stat()["app/web1"]["status"] == "DRAIN"
    assert spread(lb.port, 20) == {"web2": 20}
    assert spread(lb.port, 10, cookie="SRV=w1") == {"web1": 10}

    lb.cli("set server app/web1 state maint")
    eventually(lambda: spread(lb.port, 2, cookie="SRV=w1") == {"web2": 2}, 5, "maint")
    status, headers, body = get(lb.port, headers={"Cookie": "SRV=w1"})
    assert (status, body.strip()) == (200, "web2")
    assert set_cookie(headers) == "SRV=w2; path=/"  # redispatched, re-stuck to web2
    before = web1.hits
    assert spread(lb.port, 20) == {"web2": 20}
    old = set(lb.proc.workers())
    lb.proc.signal(signal.SIGUSR2)
    eventually(lambda: lb.proc is not None and not lb.proc.workers() & old, 20, "new workers")
    assert spread(lb.port, 10, cookie="SRV=w1") == {"web2": 10}
    assert spread(lb.port, 10) == {"web2": 10}
    assert web1.hits == before  # MAINT: none reach it, persistent or not

    # Weights change the spread, and survive a reload too.
    lb.cli("set server app/web1 state ready; set weight app/web1 3")
    eventually(lambda: "web1" in spread(lb.port, 4), 5, "ready")
    old = set(lb.proc.workers())
    lb.proc.signal(signal.SIGUSR2)
    eventually(lambda: lb.proc is not None and not lb.proc.workers() & old, 20, "new workers")
    got: Counter[str] = spread(lb.port, 80)
    assert 0.6 <= got["web1"] / 80 <= 0.9, got  # 3:1 → 75 % (two workers' rotations)
