"""The runtime API's core and the stats model do no I/O and read no clock."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import lbcore

FORBIDDEN = {"asyncio", "socket", "ssl", "time", "subprocess", "selectors", "os"}
CORE = [
    "stats.py",
    "runtime/state.py",
    "runtime/context.py",
    "runtime/commands.py",
    "runtime/show.py",
    "runtime/usage.py",
    "runtime/cli.py",
    "runtime/collect.py",
    "runtime/checks.py",
]


@pytest.mark.parametrize("path", CORE)
def test_core_imports_no_io(path: str) -> None:
    tree = ast.parse((Path(lbcore.__file__).parent / path).read_text())
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            imported.add(node.module.split(".")[0])
    assert not imported & FORBIDDEN
