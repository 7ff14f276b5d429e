"""Use lbcore's compiled modules only while they match their sources.

``setup.py`` compiles the hot modules with mypyc into C extensions that sit next to
their ``.py`` files, and Python's importer prefers an extension to a source. In a
checkout that is a trap: edit ``lbcore/proxy/http.py`` (or pull) without rebuilding and
the old compiled code would silently run. So at ``import lbcore`` this compares each
compiled module's source with the sha256 recorded when it was built
(``lbcore/_native.json``); if any differs, or an extension is there without a record,
the whole compiled group is set aside (its modules call each other in C, so one stale
module taints them all) and every module of it is loaded from source, with a warning
that says how to rebuild (``make native``). Correct first, fast when rebuilt.
"""

from __future__ import annotations

import hashlib
import importlib.abc
import importlib.machinery
import importlib.util
import json
import sys
import warnings
from pathlib import Path
from types import ModuleType

PACKAGE = Path(__file__).resolve().parent
MANIFEST = PACKAGE / "_native.json"
EXT_SUFFIXES = tuple(importlib.machinery.EXTENSION_SUFFIXES)


def _module_name(rel: str) -> str:
    """``lbcore/proxy/http.py`` → ``lbcore.proxy.http``."""
    parts = list(Path(rel).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _compiled_sources(package: Path = PACKAGE) -> dict[str, Path]:
    """module name → source path, for every module with a compiled extension beside it
    (found from the extensions, so ``import lbcore`` stats a few files, not every source;
    the group's shared library has no source and is not a module of its own)."""
    found: dict[str, Path] = {}
    for suffix in EXT_SUFFIXES:
        for ext in package.rglob("*" + suffix):
            stem = ext.name[: -len(suffix)]
            source = ext.with_name(stem + ".py")
            if not source.exists():  # a package compiles to <dir><suffix> beside it
                source = ext.with_name(stem) / "__init__.py"
            if source.exists():
                found[_module_name(str(source.relative_to(package.parent)))] = source
    return found


def check(package: Path = PACKAGE) -> tuple[list[str], list[str]]:
    """(compiled modules, stale ones among them): empty lists when nothing is compiled."""
    compiled = _compiled_sources(package)
    if not compiled:
        return [], []
    try:
        recorded: dict[str, str] = json.loads((package / MANIFEST.name).read_text())
    except (OSError, ValueError):
        recorded = {}
    digests = {_module_name(rel): digest for rel, digest in recorded.items()}
    stale = sorted(
        name
        for name, source in compiled.items()
        if digests.get(name) != hashlib.sha256(source.read_bytes()).hexdigest()
    )
    return sorted(compiled), stale


class _SourceFirst(importlib.abc.MetaPathFinder):
    """Loads the listed modules from their ``.py`` even where an extension exists."""

    def __init__(self, sources: dict[str, Path]) -> None:
        self.sources = sources

    def find_spec(
        self, fullname: str, path: object = None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        source = self.sources.get(fullname)
        if source is None:
            return None
        is_package = source.name == "__init__.py"
        return importlib.util.spec_from_file_location(
            fullname,
            source,
            submodule_search_locations=[str(source.parent)] if is_package else None,
        )


#: Compiled modules in use (empty: running as plain Python), for the bench and tests.
ACTIVE: list[str] = []
#: Modules whose compiled code was set aside because their source changed.
STALE: list[str] = []


def install() -> None:
    """Called once from ``lbcore/__init__.py``, before any compiled module is imported."""
    compiled, stale = check()
    if stale:
        sys.meta_path.insert(0, _SourceFirst(_compiled_sources()))
        STALE.extend(stale)
        warnings.warn(
            f"lbcore: compiled modules older than their sources ({', '.join(stale)}); "
            "running all of them as plain Python — rebuild with `make native`",
            RuntimeWarning,
            stacklevel=3,
        )
    else:
        ACTIVE.extend(compiled)
