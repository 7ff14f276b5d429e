"""Shared server maxconn (lbcore.budget): two workers' backends over one set of slots,
in one process (the slots are the same objects a fork would share), and across a real
fork."""

from __future__ import annotations

import os

from lbcore import budget
from lbcore.backend import BackendRuntime
from lbcore.balance import PickContext
from lbcore.budget import Budgets
from lbcore.config import parse_text
from lbcore.config.model import Config

CONFIG = """\
frontend f
    bind 127.0.0.1:18001
    default_backend app
backend app
    server web1 127.0.0.1:18081 maxconn 2
    server web2 127.0.0.1:18082
backend other
    server o1 127.0.0.1:18083 maxconn 3
"""


def worker_backend(config: Config, budgets: Budgets, slot: int) -> BackendRuntime:
    """The ``app`` backend as the worker in ``slot`` builds it."""
    be = BackendRuntime(config.backends["app"])
    slots = budgets.for_slot(slot)
    for s in be.servers:
        s.budget = slots.get(("app", s.name))
    return be


def only_web1() -> Config:
    return parse_text(CONFIG.replace("    server web2 127.0.0.1:18082\n", ""), "t.cfg")


def test_budgets_only_where_something_is_shared() -> None:
    config = parse_text(CONFIG, "t.cfg")
    assert Budgets.for_config(config, 1) is None  # one worker: its own count is exact
    assert Budgets.for_config(parse_text(CONFIG.replace(" maxconn", " weight"), "t"), 4) is None
    b = Budgets.for_config(config, 2)
    assert b is not None and b.limits == {("app", "web1"): 2, ("other", "o1"): 3}
    b.close()


def test_two_workers_share_one_maxconn_and_queued_requests_are_served() -> None:
    config = only_web1()
    budgets = Budgets({("app", "web1"): 2}, 2)
    a, b = worker_backend(config, budgets, 0), worker_backend(config, budgets, 1)
    got_a = a.pick(PickContext())
    got_b = b.pick(PickContext())
    assert got_a is not None and got_b is not None
    # Two slots in all: a third request, in either worker, waits.
    assert a.pick(PickContext()) is None and b.pick(PickContext()) is None
    assert a.available() and b.available()  # full, not gone: queue, no 503
    served: list[str] = []

    def waiter() -> None:
        s = b.pick(PickContext())
        served.append(s.name if s is not None else "none")

    b.enqueue(waiter)
    b.retry_queued()  # nothing free yet: the waiter stays queued
    assert served == [] and len(b.queue) == 1
    a.release(got_a)  # freed in worker a: worker b's next look serves its waiter
    b.retry_queued()
    assert served == ["web1"] and not b.queue
    assert budgets.held(0) == 0 and budgets.held(1) == 2
    budgets.close()


def test_a_dead_workers_slots_are_given_back() -> None:
    config = only_web1()
    budgets = Budgets({("app", "web1"): 2}, 2)
    a, b = worker_backend(config, budgets, 0), worker_backend(config, budgets, 1)
    assert a.pick(PickContext()) and a.pick(PickContext())
    assert b.pick(PickContext()) is None
    assert budgets.reclaim(0) == 2  # worker a killed: the master gives its slots back
    assert budgets.held(0) == 0
    assert b.pick(PickContext()) and b.pick(PickContext())
    assert b.pick(PickContext()) is None
    budgets.close()


def test_the_slots_are_shared_across_a_fork() -> None:
    budgets = Budgets({("app", "web1"): 3}, 2)
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: a worker in slot 1 takes two slots and says so
        code = 1
        try:
            os.close(r)
            budget.inherit(budgets, 1)
            mine = budget.inherited("app", "web1")
            code = 0 if mine is not None and mine.take() and mine.take() else 2
            os.write(w, b"x")
        finally:
            os._exit(code)
    os.close(w)
    assert os.read(r, 1) == b"x"
    os.close(r)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    parent = budgets.for_slot(0)[("app", "web1")]
    assert parent.free() == 1
    assert parent.take() and not parent.take()
    assert budgets.held(1) == 2  # what the dead child held, for the master to reclaim
    assert budgets.reclaim(1) == 2 and parent.free() == 2
    budgets.close()
