"""Run the collection's modules for real: ``ansible`` ad hoc against localhost, with the
collection source tree mounted as ``lbcore.fleet`` through ANSIBLE_COLLECTIONS_PATH."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO


@pytest.fixture(scope="session")
def collections_path(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("collections")
    ns = root / "ansible_collections" / "lbcore"
    ns.mkdir(parents=True)
    (ns / "fleet").symlink_to(REPO / "collection")
    return root


@pytest.fixture
def run_module(collections_path, tmp_path):
    """``run_module(name, args: dict, check=False, diff=False) -> (rc, result dict)``."""

    def run(name: str, args: dict, check: bool = False, diff: bool = False):
        venv_bin = Path(sys.executable).parent
        env = dict(os.environ)
        env.update(
            ANSIBLE_COLLECTIONS_PATH=str(collections_path),
            ANSIBLE_LOCALHOST_WARNING="false",
            ANSIBLE_NOCOLOR="1",
            ANSIBLE_LOCAL_TEMP=str(tmp_path / "ansible-tmp"),
            ANSIBLE_PYTHON_INTERPRETER=sys.executable,
            PATH=f"{venv_bin}{os.pathsep}{env.get('PATH', '')}",
        )
        cmd = [
            str(venv_bin / "ansible"),
            "localhost",
            "-c",
            "local",
            "-m",
            f"lbcore.fleet.{name}",
            "-a",
            json.dumps(args),
        ]
        if check:
            cmd.append("--check")
        if diff:
            cmd.append("--diff")
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
        # ad-hoc output: "localhost | CHANGED => {json}" (FAILED! / SUCCESS likewise)
        _, sep, body = proc.stdout.partition("=>")
        if not sep:
            raise AssertionError(f"unexpected ansible output:\n{proc.stdout}\n{proc.stderr}")
        result = json.loads(body)
        result.setdefault("warnings", [])
        result["_stderr"] = proc.stderr  # warnings are printed here
        result["_stdout"] = proc.stdout  # the --diff text is printed here
        return proc.returncode, result

    return run
