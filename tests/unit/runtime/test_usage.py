"""HAProxy's usage message and fuzzy suggestions, checked against its own keyword list.

The table is rebuilt from the full ``help`` answer HAProxy 2.6 gave (golden step 0),
so ``usage`` must reproduce HAProxy's answers to unknown commands exactly. Not
``show foo``: two candidates tie there and HAProxy breaks ties by the order its
modules register keywords, which its help (sorted) does not reveal.
"""

from __future__ import annotations

import pytest

from lbcore.runtime.cli import split_commands
from lbcore.runtime.commands import COMMANDS, Command
from lbcore.runtime.state import Level
from lbcore.runtime.usage import usage
from tests.integration.runtime import golden

STEPS = golden.load()
HELP_LINES = STEPS[0]["answer"].split("\n")[1:-5]


def haproxy_table() -> tuple[Command, ...]:
    table = []
    for line in HELP_LINES:
        left, _, desc = line[2:].partition(": ")
        words = []
        for w in left.split():
            if w[0] in "[<({@":
                break
            words.append(w)
        table.append(Command(tuple(words), left.rstrip(), desc, Level.USER, lambda c, a: ""))
    return tuple(table)


CASES = [s for s in STEPS if s["input"] in ("foo\n", "set foo\n", "show\n", "get\n", "\n")]
CASES += [s for s in STEPS if s["input"] in ("help\n", "help show\n", "help set server\n")]


@pytest.mark.parametrize("step", CASES, ids=lambda s: repr(s["input"]))
def test_usage_reproduces_haproxy_with_its_table(step: dict[str, str]) -> None:
    args = split_commands(step["input"].rstrip("\n"))[0]
    assert usage(args, haproxy_table()) + "\n" == step["answer"]


def test_lbcore_usage_lines_are_haproxys() -> None:
    """Every command lbcore has is listed with HAProxy's exact usage line."""
    for cmd in COMMANDS:
        assert f"  {cmd.usage}" in HELP_LINES, cmd.usage


def test_levels_are_haproxys() -> None:
    levels = {c.words: c.level for c in COMMANDS}
    assert levels[("show", "stat")] is Level.USER
    assert levels[("show", "sess")] is Level.OPERATOR
    assert levels[("set", "server")] is Level.ADMIN
    assert levels[("get", "weight")] is Level.USER
