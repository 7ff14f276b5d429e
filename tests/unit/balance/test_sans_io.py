"""The balancing package stays sans-I/O: no module imports an I/O or clock module."""

from __future__ import annotations

import ast
from pathlib import Path

import lbcore.balance

FORBIDDEN = {"asyncio", "socket", "ssl", "time", "subprocess", "select", "selectors", "os"}


def test_balance_imports_no_io() -> None:
    root = Path(lbcore.balance.__file__).parent
    files = sorted(root.glob("*.py"))
    assert len(files) >= 9  # __init__ + one module per algorithm + the shared hash
    for f in files:
        for node in ast.walk(ast.parse(f.read_text(), str(f))):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            else:
                continue
            for n in names:
                assert n.split(".")[0] not in FORBIDDEN, f"{f.name} imports {n}"
