"""Compiled modules are used only while they match their sources (lbcore/_native.py)."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import lbcore
from lbcore import _native

SUFFIX = _native.EXT_SUFFIXES[0]
REPO = Path(lbcore.__file__).resolve().parent.parent


def _package(tmp_path: Path, record: dict[str, bytes], compiled: list[str]) -> Path:
    """A package ``pkg`` with sources a.py, b.py, extensions for ``compiled`` and a
    manifest recording the sha256 of the bytes in ``record``."""
    pkg = tmp_path / "pkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    for name in ("a", "b"):
        (pkg / f"{name}.py").write_text(f"X = {name!r}\n")
    for name in compiled:
        (pkg / f"{name}{SUFFIX}").write_bytes(b"")  # only its presence counts here
    manifest = {f"pkg/{n}.py": hashlib.sha256(data).hexdigest() for n, data in record.items()}
    (pkg / "_native.json").write_text(json.dumps(manifest))
    return pkg


def test_nothing_compiled_means_nothing_to_check(tmp_path: Path) -> None:
    assert _native.check(_package(tmp_path, {}, [])) == ([], [])


def test_matching_sources_are_in_use(tmp_path: Path) -> None:
    pkg = _package(tmp_path, {"a": b"X = 'a'\n", "b": b"X = 'b'\n"}, ["a", "b"])
    assert _native.check(pkg) == (["pkg.a", "pkg.b"], [])


def test_an_edited_source_or_an_unrecorded_extension_is_stale(tmp_path: Path) -> None:
    pkg = _package(tmp_path, {"a": b"X = 'old'\n"}, ["a", "b"])
    assert _native.check(pkg) == (["pkg.a", "pkg.b"], ["pkg.a", "pkg.b"])


def test_a_missing_manifest_makes_every_extension_stale(tmp_path: Path) -> None:
    pkg = _package(tmp_path, {}, ["a"])
    (pkg / "_native.json").unlink()
    assert _native.check(pkg) == (["pkg.a"], ["pkg.a"])


def _import_in(root: Path) -> list[str]:
    """Where a fresh interpreter importing lbcore from ``root`` loads the hot modules from,
    and its warnings."""
    code = (
        "import warnings; warnings.simplefilter('always')\n"
        "import lbcore.proxy.http as h, lbcore.proxy.tls as t, lbcore._native as n\n"
        "print(h.__file__); print(t.__file__); print(len(n.ACTIVE), len(n.STALE))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=root, capture_output=True, text=True, check=True
    )
    return [*done.stdout.splitlines(), done.stderr]


@pytest.mark.skipif(
    not _native.ACTIVE, reason="lbcore is not compiled here (built with LBCORE_PURE=1)"
)
def test_a_changed_source_runs_the_whole_group_as_python(tmp_path: Path) -> None:
    """In a copy of this built checkout: as built, the extensions load; after one source
    changes, every module of the group loads from source, with a warning saying why."""
    copy = tmp_path / "co"
    shutil.copytree(REPO / "lbcore", copy / "lbcore", ignore=shutil.ignore_patterns("__pycache__"))
    http_file, tls_file, counts, err = _import_in(copy)
    assert http_file.endswith(SUFFIX) and tls_file.endswith(SUFFIX), (http_file, tls_file)
    assert counts.split()[1] == "0" and "RuntimeWarning" not in err

    with (copy / "lbcore" / "server.py").open("a") as f:
        f.write("# edited after the build\n")
    http_file, tls_file, counts, err = _import_in(copy)
    assert http_file.endswith("http.py") and tls_file.endswith("tls.py")
    assert counts.split()[0] == "0"
    assert "lbcore.server" in err and "make native" in err
