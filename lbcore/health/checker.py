"""The asyncio driver of health checks: one task per checked server, in the master.

Theory of operation: ``Checker.sync(targets)`` makes the set of running checks match
the configuration — a server whose address and check settings did not change keeps
its task and its ``CheckTracker`` (a reload does not forget that a server is DOWN),
others are started or cancelled. Each task sleeps until its tracker's next check,
runs ``probe`` (TCP connect or HTTP, ``lbcore.health.prober``), records the result
and hands it to ``on_result`` — the control plane decides what the verdict changes.
First checks are spread over ``inter`` (as HAProxy spreads its checks at start) so
that a big farm is not probed all at once.

A check can be paused (server in MAINT, ``disable health``) and woken (``resume``,
``set_addr``): waking runs the next check at once.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from lbcore.health.core import CheckResult, CheckSettings, CheckTracker, Transition
from lbcore.health.prober import probe

Key = tuple[str, str]
Probe = Callable[[str, int, CheckSettings], Awaitable[CheckResult]]


@dataclass(eq=False)
class CheckTask:
    """One server's check: where it goes, its settings and its rise/fall tracker."""

    key: Key
    host: str
    port: int
    settings: CheckSettings
    tracker: CheckTracker
    paused: bool = False
    runs: int = 0
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    task: asyncio.Task[None] | None = None

    @property
    def target(self) -> tuple[str, int, CheckSettings]:
        return self.host, self.port, self.settings


class Checker:
    """Runs the checks of the configured servers until ``close()``."""

    def __init__(
        self,
        on_result: Callable[[CheckTask, CheckResult, Transition | None], None],
        prober: Probe = probe,
    ) -> None:
        self.on_result = on_result
        self.prober = prober
        self.tasks: dict[Key, CheckTask] = {}

    def sync(self, targets: dict[Key, tuple[str, int, CheckSettings]]) -> None:
        """Run exactly the checks in ``targets`` (key -> host, port, settings)."""
        for key in list(self.tasks):
            if key not in targets or self.tasks[key].target != targets[key]:
                self._cancel(self.tasks.pop(key))
        new = [k for k in targets if k not in self.tasks]
        for index, key in enumerate(new):
            host, port, settings = targets[key]
            task = CheckTask(key, host, port, settings, CheckTracker(settings))
            self.tasks[key] = task
            spread = settings.inter * index / max(len(new), 1)
            task.task = asyncio.get_running_loop().create_task(self._run(task, spread))

    def get(self, key: Key) -> CheckTask | None:
        return self.tasks.get(key)

    def pause(self, key: Key) -> None:
        task = self.tasks.get(key)
        if task is not None:
            task.paused = True

    def resume(self, key: Key) -> None:
        task = self.tasks.get(key)
        if task is not None:
            task.paused = False
            task.wake.set()

    def set_addr(self, key: Key, host: str, port: int) -> None:
        task = self.tasks.get(key)
        if task is not None:
            task.host, task.port = host, port
            task.wake.set()

    async def close(self) -> None:
        tasks = list(self.tasks.values())
        self.tasks.clear()
        for task in tasks:
            self._cancel(task)
        for task in tasks:
            if task.task is not None:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task.task

    def _cancel(self, task: CheckTask) -> None:
        if task.task is not None:
            task.task.cancel()

    async def _run(self, t: CheckTask, first_delay: float) -> None:
        loop = asyncio.get_running_loop()
        due = loop.time() + first_delay
        while True:
            if t.paused:
                await t.wake.wait()
                t.wake.clear()
                due = loop.time()
                continue
            delay = due - loop.time()
            if delay > 0:
                try:
                    await asyncio.wait_for(t.wake.wait(), delay)
                except TimeoutError:
                    pass
                else:  # woken: check now
                    t.wake.clear()
                    due = loop.time()
                continue
            result = await self.prober(t.host, t.port, t.settings)
            if t.paused:  # paused while the check ran: its verdict no longer matters
                continue
            now = loop.time()
            t.runs += 1
            transition = t.tracker.record(result, now)
            try:
                self.on_result(t, result, transition)
            except Exception:  # a bug in a consumer must not stop the checks
                import logging

                logging.getLogger("lbcore.master").exception("health check consumer failed")
            due = t.tracker.next_check(now)
