"""Fuzzing the runtime API command parser (lbcore/runtime/commands.py through the CLI
session that splits lines into commands).

Properties:

* every line is answered; no exception escapes; the session closes as HAProxy's does;
* below ``level admin`` nothing changes, whatever the words: no server's weight, admin
  state, address, port or check state moves, and no change is published (the admin
  socket refuses admin commands at ``level user``/``operator`` — also in
  tests/integration/hostile/test_security.py on a real socket);
* at ``level admin`` the state stays within its domain (weights 0..256, ports 0..65535).

Example counts (CI): 1200 command lines at every level + 400 raw byte strings.
"""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lbcore.runtime.cli import CliSession
from lbcore.runtime.commands import COMMANDS
from lbcore.runtime.state import Level, RuntimeState
from tests.unit.runtime.fixed import fixed_config

NOW = 1_800_000_000.0
CONFIG = fixed_config()
FUZZ = settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])

PREFIXES = st.sampled_from([" ".join(c.words) for c in COMMANDS] + ["help", "prompt", "quit"])
SERVERS = [
    f"{be}/{srv}"
    for be, servers in {
        p.name: [s.name for s in p.servers] for p in CONFIG.proxies if p.kind.has_backend
    }.items()
    for srv in servers
]
ARGS = st.sampled_from([
    *SERVERS, "#1/#1", "#2/#1", "#99/#1", "app/", "/", "", "nosuch/x", "weight", "state",
    "ready", "drain", "maint", "health", "agent", "up", "down", "stopping", "addr", "port",
    "0", "1", "256", "257", "-1", "50%", "100%", "101%", "%", "1e3", "0x10", "99999999999",
    "127.0.0.1", "::1", "[::1]", "300.1.1.1", "65535", "65536", "-0", "typed", "json", "desc",
    "-1", "4", "é", "\x00", "\\;", ";", "\\", "\t", "a" * 200, "1 2",
])  # fmt: skip
LINE = st.builds(
    lambda prefix, args: " ".join([prefix, *args]), PREFIXES, st.lists(ARGS, max_size=5)
)
LINES = st.lists(st.lists(LINE, min_size=1, max_size=3).map(";".join), min_size=1, max_size=4)


def fingerprint(state: RuntimeState) -> list[tuple[object, ...]]:
    return [
        (
            be.proxy.name,
            s.name,
            s.runtime.weight,
            s.admin_flags,
            s.host,
            s.port,
            s.health_enabled,
            s.check_state,
            s.check_health,
        )
        for be in state.backends.values()
        for s in be.servers
    ]


@pytest.mark.timeout(180)
@settings(FUZZ, max_examples=1200)
@given(lines=LINES, level=st.sampled_from(list(Level)))
def test_command_lines_at_every_level(lines: list[str], level: Level) -> None:
    state = RuntimeState(CONFIG, NOW)
    changes: list[object] = []
    state.subscribers.append(changes.append)
    before = fingerprint(state)
    cli = CliSession(state, level, NOW)
    out = cli.receive("".join(line + "\n" for line in lines).encode(), NOW)
    assert isinstance(out, bytes)
    if "quit" not in " ".join(lines):
        assert out.endswith(b"\n" if not cli.interactive else b"\n> ")
    assert cli.closed or cli.interactive
    assert cli.ctx.level <= level, "a session raised its own level"
    if level < Level.ADMIN:
        assert fingerprint(state) == before, "a command below level admin changed a server"
        assert changes == []
    for be in state.backends.values():
        for s in be.servers:
            assert 0 <= s.runtime.weight <= 256
            assert 0 <= s.port <= 65535


@pytest.mark.timeout(60)
@settings(FUZZ, max_examples=400)
@given(st.binary(max_size=400), st.sampled_from(list(Level)))
def test_raw_bytes(data: bytes, level: Level) -> None:
    state = RuntimeState(CONFIG, NOW)
    cli = CliSession(state, level, NOW)
    cli.receive(data, NOW)
    cli.receive_eof()
    assert cli.closed
