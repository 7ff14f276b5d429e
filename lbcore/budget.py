"""A server's ``maxconn`` shared by every worker of a generation.

Theory of operation: HAProxy runs one process with N threads, so ``server ... maxconn
M`` bounds the connections to that server at M in all. lbcore runs N worker
processes; counted in each worker alone, the bound would be N times M. So for every server
with a ``maxconn`` the master creates, before it forks a generation's workers, a
counting semaphore holding M slots, in shared memory: a worker takes a slot when it
assigns a request to the server (``sem_trywait``, never blocking) and gives it back
when the request ends (``sem_post``). Both are a few hundred nanoseconds without a
system call, and only servers with a ``maxconn`` pay them; with one worker nothing is
shared (the worker's own count is exact).

A worker that cannot take a slot queues the request, as with a local ``maxconn``. A
slot given back by *another* worker wakes nobody here, so a worker with queued
requests on a shared server looks again every ``QUEUE_POLL`` seconds (see
``lbcore.worker``); its own releases still wake its queue at once.

A worker killed while it holds slots (SIGKILL at ``hard-stop-after``, a crash) would
leak them: each worker also counts what it holds, per server, in a shared array of
one cell per (worker slot, server), written by that worker only; the master gives a
dead worker's slots back when it reaps it (``Budgets.reclaim``), before a replacement
starts in that slot. (Only a SIGKILL landing between a semaphore operation and the
count's update, one bytecode apart, can still cost a slot until the generation ends.)
Generations do not share budgets: during a reload the old workers finish their
connections with their own, as HAProxy's old process does.
"""

from __future__ import annotations

import logging
import mmap
import multiprocessing
from collections.abc import Mapping
from typing import Any

from lbcore.config.model import Config

log = logging.getLogger("lbcore.master")

Key = tuple[str, str]  # (backend, server)

#: Seconds between two looks at the shared slots while requests wait for them.
QUEUE_POLL = 0.005

_CELL = 4  # bytes of one held-count cell (a C int)


class SlotBudget:
    """One server's shared slots, as one worker uses them (``ServerRuntime.budget``).

    Per request it costs a ``sem_trywait`` and a ``sem_post`` (plus one
    ``sem_getvalue`` per server looked at): the semaphore's C methods are bound
    once, here, rather than called through ``multiprocessing``'s Python wrappers.
    """

    __slots__ = ("_acquire", "_cells", "_i", "_release", "_value")

    def __init__(self, sem: Any, cells: memoryview, index: int) -> None:
        raw = getattr(sem, "_semlock", None)  # the C object under the wrapper
        self._acquire = sem.acquire
        self._release = sem.release
        self._value = raw._get_value if raw is not None else sem.get_value
        self._cells = cells
        self._i = index

    def take(self) -> bool:
        """One slot, if one is free (never waits)."""
        if not self._acquire(False):
            return False
        self._cells[self._i] += 1
        return True

    def give(self) -> None:
        """Give back a slot ``take`` got."""
        self._cells[self._i] -= 1
        self._release()

    def free(self) -> int:
        """Slots free now, in all workers."""
        value: int = self._value()
        return value


class Budgets:
    """The shared slots of every server with a ``maxconn`` in one generation."""

    def __init__(self, limits: Mapping[Key, int], workers: int) -> None:
        ctx = multiprocessing.get_context("fork")
        self.limits = dict(limits)
        self.workers = workers
        self.keys = list(self.limits)
        # Created before the fork: the children inherit the mappings (an unlinked
        # POSIX semaphore each, and one anonymous shared page array for the cells).
        self.sems = {k: ctx.Semaphore(n) for k, n in self.limits.items()}
        self._map = mmap.mmap(-1, max(1, workers * len(self.keys)) * _CELL)
        self.cells = memoryview(self._map).cast("i")

    @classmethod
    def for_config(cls, config: Config, workers: int) -> Budgets | None:
        """The budgets ``config`` needs with ``workers`` workers; None when nothing is
        to share (one worker, or no server has a ``maxconn``) or shared memory cannot
        be had (then each worker bounds each server at ``maxconn`` on its own, and the
        log says so)."""
        limits = {
            (name, s.name): s.maxconn
            for name, proxy in config.backends.items()
            for s in proxy.servers
            if s.maxconn > 0
        }
        if workers < 2 or not limits:
            return None
        try:
            return cls(limits, workers)
        except (OSError, ImportError) as e:
            log.warning(
                "server maxconn cannot be shared by the workers (%s): each of the %d "
                "workers applies it on its own",
                e,
                workers,
            )
            return None

    def for_slot(self, slot: int) -> dict[Key, SlotBudget]:
        """What the worker in ``slot`` attaches to its servers."""
        base = slot * len(self.keys)
        return {k: SlotBudget(self.sems[k], self.cells, base + i) for i, k in enumerate(self.keys)}

    def held(self, slot: int) -> int:
        base = slot * len(self.keys)
        return sum(self.cells[base + i] for i in range(len(self.keys)))

    def reclaim(self, slot: int) -> int:
        """Give back what the (dead) worker of ``slot`` held; how many slots that was."""
        base = slot * len(self.keys)
        total = 0
        for i, k in enumerate(self.keys):
            n = self.cells[base + i]
            for _ in range(max(0, n)):
                self.sems[k].release()
            self.cells[base + i] = 0
            total += max(0, n)
        return total

    def close(self) -> None:
        """Let the shared memory go (once no worker of the generation is left)."""
        self.cells.release()
        self._map.close()
        self.sems.clear()


#: Set in a forked worker, before the worker function runs, by the master: the
#: shared slots of its servers (see ``attach``).
_inherited: dict[Key, SlotBudget] = {}


def inherit(budgets: Budgets | None, slot: int) -> None:
    """In a new worker (after the fork): use ``budgets`` as the worker in ``slot``."""
    _inherited.clear()
    if budgets is not None:
        _inherited.update(budgets.for_slot(slot))


def inherited(backend: str, server: str) -> SlotBudget | None:
    """The shared slots of ``backend/server`` in this worker, if it has any."""
    return _inherited.get((backend, server))
