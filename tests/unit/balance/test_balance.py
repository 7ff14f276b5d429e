"""Every balancing algorithm: distribution over weights, runtime weights, backups,
admin/op states, hashing stability.

Tolerances. roundrobin, static-rr and leastconn are deterministic schedules: over
10,000 picks with weights summing to 10 each server gets exactly ``1000 * weight``
(±1 where the schedule is load-driven). source, uri, hdr (hash of 10,000 distinct
keys) and random (seeded draws) behave like a multinomial draw: a server with share
p gets n·p picks with standard deviation sd = sqrt(n·p·(1-p)) (≤ 50 here). We allow
4.5 sd: a fair hash/draw exceeds that with probability < 1e-5 per server, while a
broken one (ignoring weights, say 2500 instead of 4000) is off by 30 sd. The hash and
the seeded generator are deterministic, so these tests cannot flake.
"""

from __future__ import annotations

import math
from collections import Counter

import pytest

from lbcore.balance import Algorithm, PickContext, available, make_algorithm
from lbcore.balance._hash import stable_hash
from lbcore.balance.uri import UriOptions
from lbcore.config.model import Balance
from lbcore.server import AdminState, OpState, ServerRuntime

from .conftest import ALL, algo, servers

N = 10_000
WEIGHTS = (1, 2, 3, 4)  # sum 10: 1000 picks per unit of weight
HASHED = ("source", "uri", "hdr")


def ctx_for(name: str, i: int) -> PickContext:
    """The i-th distinct request key for a hash algorithm (or a plain request)."""
    if name == "source":
        return PickContext(src_ip=f"10.{(i >> 16) & 255}.{(i >> 8) & 255}.{i & 255}")
    if name == "uri":
        return PickContext(uri=f"/static/img/{i}.png?v=3")
    if name == "hdr":
        return PickContext(headers={"x-user": f"user-{i}"})
    return PickContext()


def run(a: Algorithm, name: str, n: int, *, release: bool, start: int = 0) -> Counter[str]:
    counts: Counter[str] = Counter()
    for i in range(start, start + n):
        s = a.pick(ctx_for(name, i))
        assert s is not None
        counts[s.name] += 1
        if release:
            a.release(s)
    return counts


def assert_share(counts: Counter[str], weights: dict[str, int], n: int, exact: bool) -> None:
    total_w = sum(weights.values())
    for name, w in weights.items():
        expected = n * w / total_w
        if exact:
            tol = 1.0
        else:
            p = w / total_w
            tol = 4.5 * math.sqrt(n * p * (1 - p))
        got = counts.get(name, 0)
        assert abs(got - expected) <= tol, (name, got, expected, tol, dict(counts))
    assert sum(counts.values()) == n


EXACT = {"roundrobin": True, "static-rr": True, "leastconn": True, "random": False}


@pytest.mark.parametrize("release", [True, False], ids=["short-requests", "held"])
@pytest.mark.parametrize("name", [*EXACT, *HASHED])
def test_distribution_follows_weights(name: str, release: bool) -> None:
    srvs = servers(*WEIGHTS, 0)  # s4 has weight 0: never picked
    counts = run(algo(name, srvs), name, N, release=release)
    assert counts.get("s4", 0) == 0
    assert_share(counts, {f"s{i}": w for i, w in enumerate(WEIGHTS)}, N, EXACT.get(name, False))
    # Accounting: pick counted every request, release undid exactly its own.
    assert sum(s.total for s in srvs) == N
    assert sum(s.active for s in srvs) == (0 if release else N)


def test_roundrobin_is_smooth() -> None:
    """Weights 5,1,1: the heavy server's picks are spread out, not bunched (nginx)."""
    srvs = servers(5, 1, 1)
    a = algo("roundrobin", srvs)
    seq = "".join(run_one(a) for _ in range(7))
    assert seq == "0010200"  # s0 s0 s1 s0 s2 s0 s0
    # static-rr lays out the same interleaved map.
    b = algo("static-rr", servers(5, 1, 1))
    assert "".join(run_one(b) for _ in range(14)) == "0010200" * 2


def run_one(a: Algorithm) -> str:
    s = a.pick(PickContext())
    assert s is not None
    a.release(s)
    return s.name[1:]


def test_first_fills_servers_in_order() -> None:
    srvs = servers(1, 5, 1, maxconn=3)
    a = algo("first", srvs)
    # Short requests: all go to the first server (weights do not matter).
    assert run(a, "first", N, release=True) == Counter({"s0": N})
    # Held requests: s0 fills to maxconn, then s1, then s2; then the farm is full.
    held = [a.pick(PickContext()) for _ in range(9)]
    assert [s.name for s in held if s] == ["s0"] * 3 + ["s1"] * 3 + ["s2"] * 3
    assert a.pick(PickContext()) is None
    assert available(srvs)  # full, not dead: the caller queues, it does not 503
    a.release(srvs[1])
    s = a.pick(PickContext())
    assert s is srvs[1]
    # Unlimited maxconn: the first server takes everything.
    b = algo("first", servers(1, 1))
    assert run(b, "first", 100, release=False) == Counter({"s0": 100})


def test_first_skips_weight_zero_and_drain() -> None:
    srvs = servers(0, 1, 1)
    srvs[1].admin_state = AdminState.DRAIN
    assert run(algo("first", srvs), "first", 50, release=True) == Counter({"s2": 50})


@pytest.mark.parametrize("name", ["roundrobin", "leastconn", "random", *HASHED])
def test_runtime_weight_change(name: str) -> None:
    srvs = servers(1, 1)
    a = algo(name, srvs)
    assert_share(run(a, name, 2000, release=True), {"s0": 1, "s1": 1}, 2000, EXACT.get(name, False))
    srvs[1].weight = 3  # `set weight be/s1 3` at runtime
    counts = run(a, name, 8000, release=True, start=2000)
    assert_share(counts, {"s0": 1, "s1": 3}, 8000, EXACT.get(name, False))
    srvs[0].weight = 0  # weight 0 takes it out of balancing at once
    assert run(a, name, 500, release=True, start=10_000) == Counter({"s1": 500})


def test_static_rr_ignores_weight_changes_except_zero() -> None:
    """HAProxy: a static algorithm's weight only switches between 0 and the initial one."""
    srvs = servers(1, 1)
    a = algo("static-rr", srvs)
    srvs[1].weight = 3
    assert run(a, "static-rr", 1000, release=True) == Counter({"s0": 500, "s1": 500})
    srvs[1].weight = 0
    assert run(a, "static-rr", 100, release=True) == Counter({"s0": 100})
    srvs[1].weight = 1
    assert run(a, "static-rr", 100, release=True) == Counter({"s0": 50, "s1": 50})


@pytest.mark.parametrize("name", ALL)
def test_backup_only_when_no_active_is_eligible(name: str) -> None:
    srvs = servers(1, 2, backups=1)
    a = algo(name, srvs)
    assert "b0" not in run(a, name, 1000, release=True)
    srvs[0].op_state = OpState.DOWN
    srvs[1].admin_state = AdminState.MAINT
    assert run(a, name, 200, release=True, start=1000) == Counter({"b0": 200})
    # One active back (going-down still serves): backups are out again.
    srvs[0].op_state = OpState.GOING_DOWN
    assert run(a, name, 200, release=True, start=1200) == Counter({"s0": 200})
    # Weight 0 and DRAIN count as "not eligible" too.
    srvs[0].weight = 0
    srvs[1].admin_state = AdminState.DRAIN
    assert run(a, name, 50, release=True, start=1400) == Counter({"b0": 50})
    # Everything down: no server, and the caller can tell it must answer 503.
    srvs[2].op_state = OpState.DOWN
    assert a.pick(ctx_for(name, 1)) is None
    assert not available(srvs)


@pytest.mark.parametrize("name", ALL)
def test_only_the_first_usable_backup_serves(name: str) -> None:
    """HAProxy (lbprm.fbck): with no usable active server, the first usable backup in
    server order takes all the traffic; the others wait for it to become unusable."""
    srvs = servers(1, 1, backups=3)
    srvs[0].op_state = OpState.DOWN
    srvs[1].admin_state = AdminState.MAINT
    a = algo(name, srvs)
    assert run(a, name, 300, release=True) == Counter({"b0": 300})
    srvs[2].op_state = OpState.DOWN
    assert run(a, name, 300, release=True, start=300) == Counter({"b1": 300})
    srvs[3].weight = 0  # weight 0, DRAIN, MAINT: unusable as well
    assert run(a, name, 300, release=True, start=600) == Counter({"b2": 300})
    srvs[2].op_state = OpState.UP  # b0 back: it alone again
    assert run(a, name, 300, release=True, start=900) == Counter({"b0": 300})
    srvs[0].op_state = OpState.UP  # an active back: backups out
    assert run(a, name, 300, release=True, start=1200) == Counter({"s0": 300})


@pytest.mark.parametrize("name", ALL)
def test_a_full_first_backup_queues_rather_than_spill_to_the_next(name: str) -> None:
    srvs = servers(1, backup_weights=(1, 1), maxconn=2)
    srvs[0].op_state = OpState.DOWN
    a = algo(name, srvs)
    held = [a.pick(ctx_for(name, i)) for i in range(4)]
    assert [s.name for s in held if s] == ["b0", "b0"]
    assert available(srvs)  # full, not gone: the caller queues
    assert srvs[2].active == 0


@pytest.mark.parametrize("release", [True, False], ids=["short-requests", "held"])
@pytest.mark.parametrize("name", [*EXACT, *HASHED])
def test_allbackups_balances_over_every_usable_backup(name: str, release: bool) -> None:
    """``option allbackups``: every usable backup serves, by the algorithm's rule and
    the backups' weights, exactly as active servers would."""
    srvs = servers(1, 1, backup_weights=WEIGHTS)
    srvs[0].op_state = OpState.DOWN
    srvs[1].weight = 0
    counts = run(algo(name, srvs, allbackups=True), name, N, release=release)
    want = {f"b{i}": w for i, w in enumerate(WEIGHTS)}
    assert_share(counts, want, N, EXACT.get(name, False))
    # The same farm without the option: the first backup only.
    srvs = servers(1, 1, backup_weights=WEIGHTS)
    srvs[0].op_state = OpState.DOWN
    srvs[1].weight = 0
    assert run(algo(name, srvs), name, N, release=release) == Counter({"b0": N})


def test_allbackups_with_first_fills_backups_in_order() -> None:
    srvs = servers(1, backup_weights=(1, 1, 1), maxconn=2)
    srvs[0].op_state = OpState.DOWN
    a = algo("first", srvs, allbackups=True)
    held = [a.pick(PickContext()) for _ in range(7)]
    assert [s.name if s else None for s in held] == ["b0"] * 2 + ["b1"] * 2 + ["b2"] * 2 + [None]


@pytest.mark.parametrize("name", ALL)
def test_full_actives_do_not_spill_to_backups(name: str) -> None:
    srvs = servers(1, 1, backups=1, maxconn=1)
    a = algo(name, srvs)
    got = set()
    for i in range(20):
        s = a.pick(ctx_for(name, i))
        if s is not None:
            got.add(s.name)
    assert got <= {"s0", "s1"} and got
    # Both actives at maxconn: no pick (the caller queues), and the backup stays idle.
    assert a.pick(ctx_for(name, 99)) is None
    assert available(srvs)
    assert [s.active for s in srvs] == [1, 1, 0]


@pytest.mark.parametrize("name", ALL)
def test_drain_maint_down_never_picked(name: str) -> None:
    srvs = servers(1, 1, 1, 1, 1)
    srvs[0].admin_state = AdminState.DRAIN
    srvs[1].admin_state = AdminState.MAINT
    srvs[2].op_state = OpState.DOWN
    srvs[3].op_state = OpState.GOING_UP  # not yet risen: checks do not allow traffic
    counts = run(algo(name, srvs), name, 2000, release=True)
    assert set(counts) == {"s4"}
    # DRAIN still accepts persistent clients, MAINT does not (for cookie persistence).
    assert srvs[0].accepts_persistent and not srvs[1].accepts_persistent


def test_disabled_server_starts_in_maint() -> None:
    from lbcore.config.model import Server

    s = ServerRuntime(Server("s9", "127.0.0.1", 1, disabled=True), "be")
    assert s.admin_state is AdminState.MAINT
    a = make_algorithm(Balance(), [s])
    assert a.pick(PickContext()) is None


@pytest.mark.parametrize("name", HASHED)
def test_hashing_is_stable_for_the_same_key(name: str) -> None:
    srvs = servers(*WEIGHTS)
    a = algo(name, srvs)
    first = {i: a.pick(ctx_for(name, i)) for i in range(300)}
    for _ in range(3):
        for i in range(300):
            s = a.pick(ctx_for(name, i))
            assert s is first[i]
    # Another worker (a fresh algorithm over its own server objects) agrees.
    b = algo(name, servers(*WEIGHTS))
    for i in range(300):
        s = b.pick(ctx_for(name, i))
        assert s is not None and s.name == first[i].name  # type: ignore[union-attr]


def test_stable_hash_is_process_independent() -> None:
    """Pinned values: a salted hash() would differ between processes and runs."""
    assert stable_hash(b"10.0.0.1") == stable_hash(b"10.0.0.1")
    assert [stable_hash(k) for k in (b"", b"10.0.0.1", b"/index.html")] == PINNED


PINNED = [0, 1040949761, 1996419731]


def test_hash_target_changes_only_when_the_farm_does() -> None:
    srvs = servers(1, 1, 1)
    a = algo("source", srvs)
    ctx = PickContext(src_ip="192.0.2.7")
    home = a.pick(ctx)
    assert home is not None
    others = [s for s in srvs if s is not home]
    others[0].admin_state = AdminState.MAINT  # another server leaves
    # With map-based hashing some keys move; ours must land on an eligible server.
    s = a.pick(ctx)
    assert s is not None and s is not others[0]
    others[0].admin_state = AdminState.READY  # the farm is back: the key returns home
    assert a.pick(ctx) is home
    home.op_state = OpState.DOWN
    s = a.pick(ctx)
    assert s is not None and s is not home


def test_hdr_falls_back_to_roundrobin_without_the_header() -> None:
    srvs = servers(1, 3)
    a = algo("hdr", srvs)
    counts = run(a, "plain", 4000, release=True)  # no x-user header at all
    assert counts == Counter({"s0": 1000, "s1": 3000})
    empty = a.pick(PickContext(headers={"x-user": ""}))
    assert empty is not None
    # Header names are matched case-insensitively (the config may say hdr(X-User)).
    b = make_algorithm(Balance("hdr", "X-User"), servers(1, 1, 1, 1))
    picks = {b.pick(PickContext(headers={"x-user": "alice"})).name for _ in range(20)}  # type: ignore[union-attr]
    assert len(picks) == 1


def test_uri_hashes_the_path_without_query_by_default() -> None:
    srvs = servers(1, 1, 1, 1, 1, 1, 1, 1)
    a = algo("uri", srvs)
    base = a.pick(PickContext(uri="/img/logo.png"))
    assert all(a.pick(PickContext(uri=f"/img/logo.png?v={i}")) is base for i in range(50))
    whole = make_algorithm(Balance("uri", "whole"), srvs)
    homes = {whole.pick(PickContext(uri=f"/img/logo.png?v={i}")).name for i in range(50)}  # type: ignore[union-attr]
    assert len(homes) > 1


def test_uri_options() -> None:
    assert UriOptions.parse(None).key("/a/b/c?x=1") == "/a/b/c"
    assert UriOptions.parse("whole").key("/a/b/c?x=1") == "/a/b/c?x=1"
    assert UriOptions.parse("depth 2").key("/a/b/c/d") == "/a/b"
    assert UriOptions.parse("len 4").key("/abcdef") == "/abc"
    assert UriOptions.parse("path-only").key("http://h.example/a?b") == "/a"
    assert UriOptions.parse(None).key("http://h.example/a?b") == "http://h.example/a"
    with pytest.raises(ValueError, match="unexpected 'bogus'"):
        UriOptions.parse("bogus")


def test_leastconn_prefers_the_least_loaded() -> None:
    srvs = servers(1, 1, 2)
    a = algo("leastconn", srvs)
    # Hold 12 long connections: spread so that active/weight is even (3, 3, 6).
    held = [a.pick(PickContext()) for _ in range(12)]
    assert [s.active for s in srvs] == [3, 3, 6]
    # s0's three finish: the next requests go to s0 until it catches up.
    for s in held:
        if s is srvs[0]:
            a.release(s)
    nxt = [a.pick(PickContext()) for _ in range(3)]
    assert all(s is srvs[0] for s in nxt)


def test_random_prefers_the_less_loaded_of_two() -> None:
    srvs = servers(1, 1)
    srvs[0].active = 50  # long-lived connections on s0
    a = algo("random", srvs, seed=7)
    counts = run(a, "random", 1000, release=True)
    # s0 wins only when both draws land on it: p = 1/4.
    assert abs(counts["s0"] - 250) <= 4.5 * math.sqrt(1000 * 0.25 * 0.75)


def test_make_algorithm_rejects_unknown() -> None:
    with pytest.raises(ValueError, match="unknown balance algorithm"):
        make_algorithm(Balance("nope"), servers(1))
    with pytest.raises(ValueError, match="header name"):
        make_algorithm(Balance("hdr"), servers(1))
    with pytest.raises(ValueError, match="draws"):
        make_algorithm(Balance("random", "0"), servers(1))
