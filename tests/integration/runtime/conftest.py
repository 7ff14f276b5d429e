"""A runtime API server on real sockets, for the integration tests of this folder."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from lbcore.config.model import StatsSocket
from lbcore.runtime.server import AdminServer, process_info
from lbcore.runtime.state import RuntimeState
from tests.conftest import free_port
from tests.unit.runtime.fixed import fixed_config


class Served:
    """An AdminServer running on its own event loop in a thread."""

    def __init__(self, directory: Path, tcp_port: int, timeout: float | None = None) -> None:
        cfg = fixed_config(str(directory))
        sockets = (*cfg.global_.stats_sockets, StatsSocket(f"127.0.0.1:{tcp_port}", None, "admin"))
        self.config = replace(cfg, global_=replace(cfg.global_, stats_sockets=sockets))
        self.loop = asyncio.new_event_loop()
        self.state = RuntimeState(self.config, time.time(), process_info())
        self.server = AdminServer(self.state, sockets, timeout)
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        asyncio.run_coroutine_threadsafe(self.server.start(), self.loop).result(10)

    def call(self, fn: Callable[[], object]) -> None:
        """Run ``fn`` on the server's loop (the state belongs to that thread)."""

        async def run() -> None:
            fn()

        asyncio.run_coroutine_threadsafe(run(), self.loop).result(10)

    def stop(self) -> None:
        asyncio.run_coroutine_threadsafe(self.server.close(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[Served, Path, int]]:
    port = free_port()
    s = Served(tmp_path, port)
    try:
        yield s, tmp_path, port
    finally:
        s.stop()
