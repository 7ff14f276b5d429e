"""Build hook: compile lbcore's hot modules (native-modules.txt) with mypyc.

The metadata lives in pyproject.toml; this file only adds the C extensions. Why mypyc:
the per-request Python of the proxy is most of lbcore's CPU, the modules are already
fully annotated and mypy-clean, and mypyc turns them into C without a second source to
keep in step (the .py stays the one truth, and the fallback). ``LBCORE_PURE=1`` builds
without them. ``lbcore/_native.json`` records the sha256 of each compiled source so that
``lbcore._native`` can refuse compiled code older than its source.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path

from setuptools import setup

HERE = Path(__file__).resolve().parent
MANIFEST = HERE / "lbcore" / "_native.json"


def native_modules() -> list[str]:
    lines = (HERE / "native-modules.txt").read_text().splitlines()
    return [ln.strip() for ln in lines if ln.strip() and not ln.lstrip().startswith("#")]


def clear_old_products(paths: list[str]) -> None:
    """Drop extensions no longer wanted: setuptools copies everything under build/lib.*
    into a wheel, and an in-place extension shadows its source, so one left by an
    earlier list (a module since removed from it) would be shipped or imported."""
    for old in HERE.glob("build/lib.*"):
        shutil.rmtree(old)
    wanted = {str(Path(p).with_suffix("")) for p in paths} | {"lbcore/_native__mypyc"}
    for ext in (HERE / "lbcore").rglob("*.so"):
        if str(ext.relative_to(HERE)).split(".", 1)[0] not in wanted:
            ext.unlink()


def extensions() -> list:
    if os.environ.get("LBCORE_PURE") == "1":
        MANIFEST.unlink(missing_ok=True)
        clear_old_products([])  # no extension left to shadow a source
        return []
    from mypyc.build import mypycify

    paths = native_modules()
    clear_old_products(paths)
    digests = {p: hashlib.sha256((HERE / p).read_bytes()).hexdigest() for p in paths}
    MANIFEST.write_text(json.dumps(digests, indent=1, sort_keys=True) + "\n")
    # debug_level 0: no paths of the temporary build environment inside the .so, so a
    # rebuild of the same sources gives the same bytes (the install role compares them).
    return mypycify(paths, opt_level="3", debug_level="0", group_name="lbcore._native")


setup(ext_modules=extensions())
