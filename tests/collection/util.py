"""Import the collection's module_utils from the source tree in unit tests."""

from __future__ import annotations

import importlib.util
from types import ModuleType

from tests.conftest import REPO


def load_module_utils(name: str) -> ModuleType:
    path = REPO / "collection" / "plugins" / "module_utils" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"lbcore_fleet_mu_{name}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
