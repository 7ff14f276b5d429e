"""Fixtures of the control-plane scenarios: backends and one lbcore run per test."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.integration.control.harness import Backend, Lb, close_all


@pytest.fixture
def lb(tmp_path: Path) -> Iterator[Lb]:
    lbproc = Lb(tmp_path)
    try:
        yield lbproc
    finally:
        lbproc.stop()


@pytest.fixture
def make_backend() -> Iterator[Callable[..., Backend]]:
    made: list[Backend] = []

    def make(name: str, status: int = 200) -> Backend:
        b = Backend(name, status).open()
        made.append(b)
        return b

    try:
        yield make
    finally:
        close_all(made)
