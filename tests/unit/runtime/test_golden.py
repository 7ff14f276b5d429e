"""Must-show 4: lbcore's runtime API answers as HAProxy 2.6 did, step by step.

The golden answers were recorded from /usr/sbin/haproxy on tests/data/runtime/
haproxy.cfg (tests/integration/runtime/golden.py); here the sans-I/O session runs
the same steps against a state built from the same configuration.
"""

from __future__ import annotations

import pytest

from lbcore.runtime.cli import CliSession
from lbcore.runtime.state import Level, RuntimeState, SessionInfo
from tests.integration.runtime import golden
from tests.integration.runtime.compare import compare
from tests.unit.runtime.fixed import fixed_config

NOW = 1_800_000_000.0
STEPS = golden.load()
ALL_USAGE = set(STEPS[0]["answer"].split("\n"))


def replay(state: RuntimeState, level: str, data: str, now: float) -> str:
    sess = SessionInfo(0x1000, "unix_stream", "unix:1", "GLOBAL", started=now)
    cli = CliSession(state, Level.parse(level), now, sess)
    out = cli.receive(data.encode(), now)
    cli.receive_eof()
    return out.decode()


def test_steps_match_the_recorded_sequence() -> None:
    """The golden file was recorded from exactly the steps golden.py lists."""
    assert [(s["level"], s["input"]) for s in STEPS] == golden.STEPS


def test_every_step_answers_as_haproxy() -> None:
    state = RuntimeState(fixed_config(), NOW)
    problems = []
    for i, step in enumerate(STEPS):
        actual = replay(state, step["level"], step["input"], NOW + i)
        for p in compare(step["input"], step["answer"], actual, ALL_USAGE):
            problems.append(f"step {i} {step['level']} {step['input']!r}: {p}")
    assert not problems, "\n".join(problems[:40])


@pytest.mark.parametrize("word", ["foo", "show foo", "set foo", "get", "show"])
def test_unknown_commands_get_usage(word: str) -> None:
    state = RuntimeState(fixed_config(), NOW)
    out = replay(state, "admin", word + "\n", NOW)
    assert out.startswith("Unknown command")
    assert out.endswith("  quit                                    : disconnect\n\n")
