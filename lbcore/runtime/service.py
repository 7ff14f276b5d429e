"""The runtime API inside a process whose main loop is not asyncio (the master).

Theory of operation: ``AdminService`` runs the asyncio ``AdminServer`` on a thread of
its own, and everything that touches the ``RuntimeState`` happens on that thread:
the commands, and whatever the owner hands over with ``post``/``call`` (worker
counters, check verdicts). Changes made by commands travel the other way through a
queue plus a wake-up pipe, so a selector loop can watch ``fileno()`` and, when it is
readable, ``drain_changes()`` and send each one to its workers::

    svc = AdminService(RuntimeState(config, time.time(), process_info(n)))
    svc.start()                                   # raises if a socket cannot be bound
    selector.register(svc.fileno(), EVENT_READ)
    ...
    for change in svc.drain_changes():            # on readable
        master.broadcast(worker_message(change))
    svc.post(lambda: collector.update(pid, msg))  # on a worker's stats answer
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import queue
import threading
from collections.abc import Callable
from typing import TypeVar

from lbcore.runtime.server import AdminServer
from lbcore.runtime.state import Change, RuntimeState

T = TypeVar("T")


class AdminService:
    def __init__(self, state: RuntimeState, timeout: float | None = None) -> None:
        self.state = state
        self.server = AdminServer(state, state.config.global_.stats_sockets, timeout)
        self.loop = asyncio.new_event_loop()
        self._thread: threading.Thread | None = None
        self._changes: queue.SimpleQueue[Change] = queue.SimpleQueue()
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_r, False)
        os.set_blocking(self._wake_w, False)
        state.subscribe(self._on_change)

    def start(self) -> None:
        """Bind every stats socket and serve them on the service thread."""
        self._thread = threading.Thread(target=self.loop.run_forever, name="admin", daemon=True)
        self._thread.start()
        try:
            asyncio.run_coroutine_threadsafe(self.server.start(), self.loop).result(30)
        except BaseException:
            self.stop()
            raise

    def fileno(self) -> int:
        """Readable when changes are waiting in ``drain_changes()``."""
        return self._wake_r

    def drain_changes(self) -> list[Change]:
        with contextlib.suppress(BlockingIOError):
            while os.read(self._wake_r, 512):
                pass
        out = []
        while True:
            try:
                out.append(self._changes.get_nowait())
            except queue.Empty:
                return out

    def post(self, fn: Callable[[], object]) -> None:
        """Run ``fn`` on the service thread, soon (the state belongs to it)."""
        self.loop.call_soon_threadsafe(fn)

    def call(self, fn: Callable[[], T], timeout: float = 30.0) -> T:
        """Run ``fn`` on the service thread and return its result."""

        async def run() -> T:
            return fn()

        return asyncio.run_coroutine_threadsafe(run(), self.loop).result(timeout)

    def stop(self) -> None:
        """Close the sockets (removing unix socket files) and end the thread."""
        if self._thread is not None and self._thread.is_alive():
            with contextlib.suppress(Exception):
                asyncio.run_coroutine_threadsafe(self.server.close(), self.loop).result(10)
            self.loop.call_soon_threadsafe(self.loop.stop)
            self._thread.join(10)
        if not self.loop.is_running():
            self.loop.close()
        for fd in (self._wake_r, self._wake_w):
            with contextlib.suppress(OSError):
                os.close(fd)
        self._wake_r = self._wake_w = -1

    def _on_change(self, change: Change) -> None:
        self._changes.put(change)
        with contextlib.suppress(BlockingIOError, OSError):
            os.write(self._wake_w, b"x")
