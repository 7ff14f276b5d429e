"""The CLI session grammar: ';', escapes, prompt mode, quit, levels, partial lines."""

from __future__ import annotations

from lbcore.runtime.cli import CliSession, split_commands
from lbcore.runtime.state import Level, RuntimeState
from tests.unit.runtime.fixed import fixed_config

NOW = 1_800_000_000.0


def session(level: Level = Level.ADMIN) -> CliSession:
    return CliSession(RuntimeState(fixed_config(), NOW), level, NOW)


def test_split_commands() -> None:
    assert split_commands("get weight a/b; show info") == [
        ["get", "weight", "a/b"],
        ["show", "info"],
    ]
    assert split_commands("get weight a/b\\;c") == [["get", "weight", "a/b;c"]]
    assert split_commands("  a\t b  ") == [["a", "b"]]
    assert split_commands("") == [[]]


def test_non_interactive_closes_after_the_buffered_lines() -> None:
    cli = session()
    out = cli.receive(b"get weight app/web1\nget weight app/web2\n", NOW)
    assert out == b"10 (initial 10)\n\n20 (initial 20)\n\n"
    assert cli.closed


def test_a_line_arriving_in_pieces_runs_once_complete() -> None:
    cli = session()
    assert cli.receive(b"get weig", NOW) == b""
    assert not cli.closed
    assert cli.receive(b"ht app/web1\n", NOW) == b"10 (initial 10)\n\n"
    assert cli.closed


def test_prompt_mode_stays_open_and_prints_the_prompt() -> None:
    cli = session()
    assert cli.receive(b"prompt\n", NOW) == b"\n> "
    assert cli.receive(b"get weight app/web1\n", NOW) == b"10 (initial 10)\n\n> "
    assert not cli.closed
    assert cli.receive(b"quit\n", NOW) == b""
    assert cli.closed


def test_quit_stops_the_rest_of_the_line() -> None:
    cli = session()
    assert cli.receive(b"get weight app/web1;quit;show version\n", NOW) == b"10 (initial 10)\n\n"
    assert cli.closed


def test_changes_are_published_for_the_master() -> None:
    state = RuntimeState(fixed_config(), NOW)
    seen = []
    state.subscribe(seen.append)
    cli = CliSession(state, Level.ADMIN, NOW)
    cli.receive(b"set server app/web1 state drain;set weight app/web2 50%\n", NOW)
    assert [(c.kind, c.server) for c in seen] == [("admin", "web1"), ("weight", "web2")]
    assert seen[1].weight == 10
    web1 = state.backends["app"].servers[0].runtime
    assert web1.admin_state.value == "drain" and not web1.eligible and web1.accepts_persistent


def test_user_level_cannot_change_state() -> None:
    cli = session(Level.USER)
    assert cli.receive(b"disable server app/web1\n", NOW) == b"Permission denied\n\n"


def test_static_algorithm_refuses_weights_but_0_and_100_percent() -> None:
    from dataclasses import replace

    from lbcore.config.model import Balance

    cfg = fixed_config()
    proxies = tuple(
        replace(p, balance=Balance("static-rr")) if p.name == "static" else p for p in cfg.proxies
    )
    cli = CliSession(RuntimeState(replace(cfg, proxies=proxies), NOW), Level.ADMIN, NOW)
    out = cli.receive(b"set weight static/s2 2;set weight static/s2 0;get weight static/s2\n", NOW)
    assert out == (
        b"Backend is using a static LB algorithm and only accepts weights '0%' and '100%'.\n\n"
        b"\n0 (initial 3)\n\n"
    )


def test_backend_down_is_counted_once_with_its_downtime() -> None:
    state = RuntimeState(fixed_config(), NOW)
    app = state.backends["app"]

    def run(line: str, now: float) -> bytes:
        return CliSession(state, Level.ADMIN, now).receive(line.encode() + b"\n", now)

    run("disable server app/web1;disable server app/web2;set weight app/spare 0", NOW)
    assert not app.up and app.downs == 1
    run("set server app/web1 state drain", NOW + 5)  # still no usable server
    assert app.downs == 1 and app.downtime(NOW + 5) == 5
    run("set server app/web1 state ready", NOW + 7)
    assert app.up and app.downtime(NOW + 100) == 7
    out = run("show stat app 2 -1", NOW + 8).decode().splitlines()[1].split(",")
    from lbcore.stats import FIELDS

    assert out[FIELDS.index("status")] == "UP"
    assert out[FIELDS.index("chkdown")] == "1"
    assert out[FIELDS.index("downtime")] == "7"
    assert out[FIELDS.index("weight")] == "10"


def test_stats_timeout_is_parsed_for_the_adapter() -> None:
    from lbcore.runtime.server import AdminServer

    state = RuntimeState(fixed_config(), NOW)
    assert state.config.global_.stats_timeout == 120.0
    assert AdminServer(state, state.config.global_.stats_sockets).timeout == 120.0
