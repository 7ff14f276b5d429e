"""Check columns as HAProxy 2.6 shows them, fed from lbcore's own check tracker.

Expected values observed on HAProxy 2.6.12 (Debian) with ``check inter 300 rise 2
fall 3`` servers: one listening (L4OK), one refused (L4CON), one not checked yet.
The config parser does not take ``check`` yet, so the checks are attached by hand.
"""

from __future__ import annotations

from lbcore.health.core import CheckResult, CheckSettings, CheckTracker, Layer
from lbcore.runtime.checks import check_view
from lbcore.runtime.cli import CliSession
from lbcore.runtime.state import Level, RuntimeState
from lbcore.stats import FIELDS, CheckStats
from tests.unit.runtime.fixed import fixed_config

NOW = 1_800_000_000.0
COLS = [
    "status", "check_status", "check_code", "check_desc", "check_health", "chkfail",
    "chkdown", "last_chk", "check_duration", "check_rise", "check_fall",
]  # fmt: skip


def columns(state: RuntimeState, sid: int) -> list[str]:
    out = CliSession(state, Level.ADMIN, NOW).receive(f"show stat static 4 {sid}\n".encode(), NOW)
    row = out.decode().splitlines()[1].split(",")
    return [row[FIELDS.index(c)] for c in COLS]


def servers_state(state: RuntimeState) -> list[str]:
    out = CliSession(state, Level.ADMIN, NOW).receive(b"show servers state static\n", NOW)
    return [line.split(" ", 5)[5] for line in out.decode().splitlines()[2:] if line]


def test_check_columns_follow_haproxy() -> None:
    state = RuntimeState(fixed_config(), NOW)
    be = state.backends["static"]
    up, dead = be.servers
    settings = CheckSettings(inter=0.3, rise=2, fall=3)
    trackers = {up.name: CheckTracker(settings), dead.name: CheckTracker(settings)}
    for srv in (up, dead):
        stats, op = check_view(trackers[srv.name])
        srv.check = CheckStats(rise=2, fall=3)
        state.record_check(be, srv, stats, op, NOW)
    # not checked yet: HAProxy starts a checked server at health=rise
    assert columns(state, 1) == [
        "UP 1/3", "INI", "", "Initializing", "2", "0", "0", "", "", "2", "3",
    ]  # fmt: skip

    trackers["s1"].record(CheckResult(Layer.L4OK), NOW + 1)
    state.record_check(be, up, *check_view(trackers["s1"]), NOW + 1)
    refused = CheckResult(Layer.L4CON, info="Connection refused")
    trackers["s2"].record(refused, NOW + 1)
    state.record_check(be, dead, *check_view(trackers["s2"]), NOW + 1)

    assert columns(state, 1) == [
        "UP", "L4OK", "", "Layer4 check passed", "4", "0", "0", "", "0", "2", "3",
    ]  # fmt: skip
    assert columns(state, 2) == [
        "DOWN", "L4CON", "", "Layer4 connection problem", "0", "1", "1",
        "Connection refused", "0", "2", "3",
    ]  # fmt: skip
    # srv_op_state srv_admin_state srv_uweight srv_iweight srv_time_since_last_change
    # srv_check_status srv_check_result srv_check_health srv_check_state ...
    lines = servers_state(state)
    assert lines[0].split(" ")[:1] + lines[0].split(" ")[5:9] == ["2", "6", "3", "4", "6"]
    assert lines[1].split(" ")[:1] + lines[1].split(" ")[5:9] == ["0", "8", "2", "0", "6"]

    # failures while DOWN are not chkfail; a second DOWN transition is a chkdown
    trackers["s2"].record(refused, NOW + 2)
    state.record_check(be, dead, *check_view(trackers["s2"]), NOW + 2)
    assert columns(state, 2)[5:7] == ["1", "1"]


def test_disabled_health_shows_no_check_and_configured_only() -> None:
    state = RuntimeState(fixed_config(), NOW)
    be = state.backends["static"]
    srv = be.servers[0]
    srv.check = CheckStats(rise=2, fall=3, health=2)
    cli = CliSession(state, Level.ADMIN, NOW)
    assert cli.receive(b"disable health static/s1\n", NOW) == b"\n"
    assert columns(state, 1)[:3] == ["no check", "", ""]
    assert servers_state(state)[0].split(" ")[8] == "2"
    assert CliSession(state, Level.ADMIN, NOW).receive(b"enable health static/s1\n", NOW) == b"\n"
    assert servers_state(state)[0].split(" ")[8] == "6"


def test_checked_servers_from_config_start_initializing() -> None:
    """When the model carries a check (flag or settings object), the server starts in
    HAProxy's 'UP 1/3' INI state with its rise/fall."""
    import dataclasses

    from lbcore.config.model import Server

    @dataclasses.dataclass(frozen=True)
    class Checked(Server):  # stands in for the model once the parser takes 'check'
        check: CheckSettings | None = None

    cfg = fixed_config()
    static = next(p for p in cfg.proxies if p.name == "static")
    s1 = static.servers[0]
    checked = Checked(s1.name, s1.host, s1.port, check=CheckSettings(rise=3, fall=2, port=9999))
    proxies = tuple(
        dataclasses.replace(p, servers=(checked, p.servers[1])) if p is static else p
        for p in cfg.proxies
    )
    state = RuntimeState(dataclasses.replace(cfg, proxies=proxies), NOW)
    assert columns(state, 1)[:5] == ["UP 1/2", "INI", "", "Initializing", "3"]
    line = servers_state(state)[0].split(" ")
    assert line[5:9] == ["1", "0", "3", "6"] and line[-1] == "9999"
