"""Load an lbcore module from its ``.py`` source, even where a compiled one is in use.

The hot modules run compiled by mypyc (lbcore/_native.py). A compiled module calls its
own functions in C, so a test that swaps one of them (``monkeypatch.setattr``) changes
nothing there; tests that must steer a module's internals take its source version from
here, a separate module object under another name.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parent.parent


def from_source(name: str) -> ModuleType:
    """A fresh module object executed from ``name``'s source file."""
    alias = "_source_" + name.replace(".", "_")
    if alias in sys.modules:
        return sys.modules[alias]
    path = ROOT.joinpath(*name.split(".")).with_suffix(".py")
    spec = importlib.util.spec_from_file_location(alias, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[alias] = module  # dataclasses and pickling look a class's module up here
    spec.loader.exec_module(module)
    return module
