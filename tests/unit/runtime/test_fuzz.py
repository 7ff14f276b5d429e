"""Bad input is answered, never crashes the session (property test)."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from lbcore.runtime.cli import CliSession
from lbcore.runtime.state import Level, RuntimeState
from tests.unit.runtime.fixed import fixed_config

NOW = 1_800_000_000.0
STATE = RuntimeState(fixed_config(), NOW)

WORDS = st.sampled_from(
    [
        "show", "stat", "info", "servers", "state", "set", "get", "weight", "server",
        "enable", "disable", "health", "agent", "addr", "port", "shutdown", "sessions",
        "app/web1", "app/", "/web1", "static/s2", "db/db1", "#3/#1", "app/#9", "drain",
        "maint", "ready", "up", "down", "stopping", "50%", "-1", "300", "0", "1x", "%",
        "127.0.0.1", "::1", "json", "typed", "-1", "4", "help", "prompt", ";", "\\;",
        "quit", "user", "operator", "sess", "backend", "version", "\t", "é", "\x00",
    ]
)  # fmt: skip
LINES = st.lists(st.lists(WORDS, max_size=7).map(" ".join), min_size=1, max_size=4)


@settings(max_examples=150, deadline=None)
@given(lines=LINES, level=st.sampled_from(list(Level)))
def test_any_command_line_is_answered(lines: list[str], level: Level) -> None:
    cli = CliSession(STATE, level, NOW)
    data = "".join(line + "\n" for line in lines).encode()
    out = cli.receive(data, NOW)
    assert isinstance(out, bytes)
    for be in STATE.backends.values():
        for srv in be.servers:
            assert 0 <= srv.runtime.weight <= 256
            assert 0 <= srv.port <= 65535


@settings(max_examples=60, deadline=None)
@given(data=st.binary(max_size=300))
def test_any_bytes_are_survived(data: bytes) -> None:
    cli = CliSession(STATE, Level.ADMIN, NOW)
    cli.receive(data, NOW)
    cli.receive_eof()
    assert cli.closed
