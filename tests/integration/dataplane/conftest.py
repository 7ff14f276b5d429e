"""Fixtures of the data-plane scenarios: loopback backends and one ``lbcore run``."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.integration.control.harness import Lb
from tests.integration.dataplane.web import Web


@pytest.fixture
def lb(tmp_path: Path) -> Iterator[Lb]:
    proc = Lb(tmp_path)
    try:
        yield proc
    finally:
        proc.stop()


@pytest.fixture
def make_web() -> Iterator[Callable[..., Web]]:
    made: list[Web] = []

    def make(name: str, set_cookie: str | None = None) -> Web:
        web = Web(name, set_cookie)
        made.append(web)
        return web

    try:
        yield make
    finally:
        for web in made:
            with contextlib.suppress(Exception):
                web.close()
