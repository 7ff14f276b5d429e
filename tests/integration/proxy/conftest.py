"""Fixtures for proxy scenarios: backends and a worker factory, all cleaned up."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from tests.integration.proxy.harness import Backend, Lb


@pytest.fixture
def web() -> Iterator[list[Backend]]:
    """Three real HTTP backends: web[0..2] named web1..web3."""
    servers = [Backend(f"web{i + 1}") for i in range(3)]
    yield servers
    for s in servers:
        s.close()


@pytest.fixture
def lb() -> Iterator[Callable[..., tuple[Lb, int]]]:
    """``lb(template)``: run a worker on ``template.format(port=FREE, ...)``."""
    started: list[Lb] = []

    def start(template: str, channel: bool = False, **fmt: object) -> tuple[Lb, int]:
        inst = Lb()
        started.append(inst)
        port = inst.listen()
        inst.start(template.format(port=port, **fmt), channel=channel)
        return inst, port

    yield start
    for inst in started:
        inst.stop()
