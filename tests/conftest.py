"""Shared fixtures: how tests start lbcore as a real process, and what the machine can do."""

from __future__ import annotations

import os
import shutil
import socket
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


def lbcore_cmd(*args: str) -> list[str]:
    """The command line that runs this checkout's lbcore (not an installed one)."""
    return [sys.executable, "-m", "lbcore", *args]


def lbcore_env() -> dict[str, str]:
    """Environment for lbcore subprocesses: this checkout first on the import path."""
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    return env


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def is_root() -> bool:
    return os.geteuid() == 0


def need_root() -> None:
    if not is_root():
        pytest.skip("needs root (network namespaces, raw sockets)")


def need_binary(name: str) -> str:
    path = shutil.which(name)
    if path is None and os.path.exists(f"/usr/sbin/{name}"):
        path = f"/usr/sbin/{name}"
    if path is None:
        pytest.skip(f"{name} is not installed (make deps installs it)")
    return path
