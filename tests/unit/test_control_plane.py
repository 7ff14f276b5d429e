"""The master's control plane wired in memory: checks (a scripted prober), the runtime
state, and the messages it fans out to workers (a recording fan-out). No sockets."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from lbcore.config import parse_text
from lbcore.control_plane import ControlPlane
from lbcore.health.core import CheckResult, CheckSettings, Layer
from lbcore.server import AdminState, OpState

CONFIG = """\
frontend f
    bind 127.0.0.1:18001
    default_backend app
backend app
    server web1 127.0.0.1:18081 check inter 10ms rise 2 fall 3
    server web2 127.0.0.1:18082 check inter 10ms rise 2 fall 3 slowstart 100ms weight 10
    server web3 127.0.0.1:18083
"""


class Fanout:
    def __init__(self) -> None:
        self.sent: list[dict[str, Any]] = []

    def broadcast(self, msg: dict[str, Any]) -> None:
        self.sent.append(msg)

    def send_to(self, pid: int, msg: dict[str, Any]) -> bool:
        return False

    def worker_pids(self) -> list[int]:
        return []

    def about(self, server: str) -> list[dict[str, Any]]:
        return [m for m in self.sent if m.get("server") == server]


class Prober:
    """Every check of a port answers what ``up`` says; counts the checks."""

    def __init__(self) -> None:
        self.up: dict[int, bool] = {18081: True, 18082: True}
        self.calls: dict[int, int] = {}

    async def __call__(self, host: str, port: int, settings: CheckSettings) -> CheckResult:
        self.calls[port] = self.calls.get(port, 0) + 1
        await asyncio.sleep(0)
        if self.up.get(port, False):
            return CheckResult(Layer.L4OK)
        return CheckResult(Layer.L4CON, info="Connection refused")


async def until(cond: Callable[[], object], timeout: float = 3.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not cond():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("timed out")
        await asyncio.sleep(0.005)


def run(test: Callable[[ControlPlane, Fanout, Prober], Awaitable[None]]) -> None:
    async def main() -> None:
        prober = Prober()
        cp = ControlPlane(parse_text(CONFIG, "t.cfg"), prober=prober)
        fanout = Fanout()
        await cp.start(fanout)
        try:
            await test(cp, fanout, prober)
        finally:
            await cp.close()

    asyncio.run(main())


def entry(cp: ControlPlane, name: str) -> Any:
    return cp.state.backends["app"].server(name)


def test_check_verdicts_change_the_state_and_reach_workers(caplog: Any) -> None:
    caplog.set_level(logging.INFO, "lbcore.master")

    async def test(cp: ControlPlane, fanout: Fanout, prober: Prober) -> None:
        await until(lambda: prober.calls.get(18081, 0) >= 2)
        prober.up[18081] = False
        await until(lambda: entry(cp, "web1").runtime.op_state is OpState.DOWN)
        assert fanout.about("web1")[-1]["op_state"] == "DOWN"
        assert entry(cp, "web1").chk_failed == 3  # at full health: `fall` failures
        prober.up[18081] = True
        await until(lambda: entry(cp, "web1").runtime.op_state is OpState.UP)
        assert fanout.about("web1")[-1]["op_state"] == "UP"
        assert "web3" not in {m.get("server") for m in fanout.sent}  # unchecked
        assert 18083 not in prober.calls

    run(test)
    text = caplog.text
    assert "Server app/web1 is DOWN, reason: Layer4 connection problem" in text
    assert "Server app/web1 is UP, reason: Layer4 check passed" in text


def test_maintenance_pauses_checks_and_leaving_it_starts_at_rise() -> None:
    async def test(cp: ControlPlane, fanout: Fanout, prober: Prober) -> None:
        be, srv = cp.state.backends["app"], entry(cp, "web1")
        cp.state.set_admin(be, srv, AdminState.MAINT, 0.0)
        assert fanout.sent[-1]["admin_state"] == "maint"
        before = prober.calls.get(18081, 0)
        await asyncio.sleep(0.1)
        assert prober.calls.get(18081, 0) <= before + 1  # at most one already running
        assert srv.check_flags & 0x08  # paused
        cp.state.set_admin(be, srv, AdminState.READY, 0.0)
        assert srv.check_health == 2 and srv.status == "UP 1/3"
        await until(lambda: srv.status == "UP")
        assert not srv.check_flags & 0x08

    run(test)


def test_disable_health_counts_the_server_up() -> None:
    async def test(cp: ControlPlane, fanout: Fanout, prober: Prober) -> None:
        prober.up[18081] = False
        srv = entry(cp, "web1")
        await until(lambda: srv.runtime.op_state is OpState.DOWN)
        cp.state.set_health(cp.state.backends["app"], srv, False)
        assert srv.runtime.op_state is OpState.UP
        assert fanout.sent[-1] | {"op_state": "UP"} == fanout.sent[-1]
        assert srv.status == "no check"
        calls = prober.calls[18081]
        await asyncio.sleep(0.05)
        assert prober.calls[18081] <= calls + 1

    run(test)


def test_slowstart_raises_the_weight_in_steps() -> None:
    async def test(cp: ControlPlane, fanout: Fanout, prober: Prober) -> None:
        srv = entry(cp, "web2")
        prober.up[18082] = False
        await until(lambda: srv.runtime.op_state is OpState.DOWN)
        fanout.sent.clear()
        prober.up[18082] = True
        await until(lambda: srv.runtime.op_state is OpState.UP)
        await asyncio.sleep(0.25)
        sent = fanout.about("web2")
        weights = [m["weight"] for m in sent if m["op_state"] == "UP"]
        assert weights[0] < 10 and weights[-1] == 10, weights
        assert weights == sorted(weights)
        assert len(set(weights)) >= 3

    run(test)


def test_a_reload_keeps_admin_states_weights_and_check_verdicts() -> None:
    async def test(cp: ControlPlane, fanout: Fanout, prober: Prober) -> None:
        prober.up[18081] = False
        await until(lambda: entry(cp, "web1").runtime.op_state is OpState.DOWN)
        be = cp.state.backends["app"]
        cp.state.set_admin(be, entry(cp, "web2"), AdminState.DRAIN, 0.0)
        cp.state.set_weight(be, entry(cp, "web3"), 0, 0.0)
        cp.reconfigure(parse_text(CONFIG, "t.cfg"), 2)
        assert entry(cp, "web1").runtime.op_state is OpState.DOWN  # no new "UP" start
        assert entry(cp, "web2").runtime.admin_state is AdminState.DRAIN
        assert entry(cp, "web3").runtime.weight == 0
        msgs = {m["server"]: m for m in cp.initial_messages()}
        assert msgs["web1"]["op_state"] == "DOWN"
        assert msgs["web2"]["admin_state"] == "drain"
        assert msgs["web3"]["weight"] == 0
        # a server dropped from the configuration is forgotten
        cp.reconfigure(parse_text(CONFIG.replace("    server web3 127.0.0.1:18083\n", ""), "t"), 2)
        cp.reconfigure(parse_text(CONFIG, "t.cfg"), 2)
        assert entry(cp, "web3").runtime.weight == 1

    run(test)


def test_the_state_of_a_pending_reload_is_previewed_without_switching() -> None:
    """A reload's workers start before the switch: they get the state the new
    configuration will have (API changes and check verdicts carried over, servers new
    to it as configured), while the control plane still describes the serving one."""

    async def test(cp: ControlPlane, fanout: Fanout, prober: Prober) -> None:
        prober.up[18081] = False
        await until(lambda: entry(cp, "web1").runtime.op_state is OpState.DOWN)
        be = cp.state.backends["app"]
        cp.state.set_admin(be, entry(cp, "web2"), AdminState.DRAIN, 0.0)
        serving = cp.config
        new = parse_text(CONFIG + "    server web4 127.0.0.1:18084 weight 7\n", "t.cfg")
        msgs = {m["server"]: m for m in cp.initial_messages(new)}
        assert set(msgs) == {"web1", "web2", "web3", "web4"}
        assert msgs["web1"]["op_state"] == "DOWN"  # the running check's verdict
        assert msgs["web2"]["admin_state"] == "drain"
        assert msgs["web4"] == msgs["web4"] | {"op_state": "UP", "weight": 7}
        # Nothing switched: same configuration, state, and no message fanned out.
        assert cp.config is serving and "web4" not in {s.name for s in be.servers}
        assert "web4" not in {m.get("server") for m in fanout.sent}
        assert {m["server"] for m in cp.initial_messages()} == {"web1", "web2", "web3"}

    run(test)


@pytest.mark.parametrize("status", ["stats", "other"])
def test_worker_counters_are_summed(status: str) -> None:
    async def test(cp: ControlPlane, fanout: Fanout, prober: Prober) -> None:
        snap = {"op": status, "counters": [["f", "FRONTEND", {"stot": 2}]]}
        cp.on_message(1, snap)
        cp.on_message(2, snap)
        want = 4 if status == "stats" else 0
        assert cp.state.counters_for("f", "FRONTEND").stot == want
        cp.worker_exited(2)
        assert cp.state.counters_for("f", "FRONTEND").stot == want  # counts kept

    run(test)
