"""AdminService: the runtime API on a thread, for the master's selector loop."""

from __future__ import annotations

import selectors
import time
from pathlib import Path

import pytest

from lbcore.runtime.collect import StatsCollector, worker_message
from lbcore.runtime.server import process_info
from lbcore.runtime.service import AdminService
from lbcore.runtime.state import RuntimeState
from tests.integration.runtime import golden
from tests.unit.runtime.fixed import fixed_config


def test_changes_reach_a_selector_loop_and_counters_reach_show_stat(tmp_path: Path) -> None:
    state = RuntimeState(fixed_config(str(tmp_path)), time.time(), process_info(2))
    svc = AdminService(state)
    svc.start()
    sel = selectors.DefaultSelector()
    try:
        sel.register(svc.fileno(), selectors.EVENT_READ)
        admin = str(tmp_path / "admin.sock")
        assert golden.ask(admin, b"set server app/web1 state drain; set weight app/web2 5\n") == (
            b"\n\n"
        )
        assert sel.select(timeout=5), "the master's selector was not woken"
        msgs = [worker_message(c) for c in svc.drain_changes()]
        assert msgs == [
            {"op": "server", "backend": "app", "server": "web1", "admin_state": "drain"},
            {"op": "server", "backend": "app", "server": "web2", "weight": 5},
        ]
        assert svc.drain_changes() == []

        collector = StatsCollector()
        snapshot = {"op": "stats", "frontends": {"www": {"stot": 12, "hrsp": {"2": 12}}}}

        def apply() -> None:
            collector.update(4242, snapshot)
            state.counters = collector.total()

        svc.call(apply)
        stat = golden.ask(admin, b"show stat -1 1 -1\n").decode().splitlines()[1].split(",")
        assert (stat[7], stat[40]) == ("12", "12")  # stot, hrsp_2xx
        info = golden.ask(admin, b"show info\n").decode()
        assert "Nbthread: 2\n" in info
    finally:
        sel.close()
        svc.stop()
    assert not (tmp_path / "admin.sock").exists()


def test_a_socket_that_cannot_be_bound_fails_start(tmp_path: Path) -> None:
    (tmp_path / "admin.sock").write_text("not a socket")
    svc = AdminService(RuntimeState(fixed_config(str(tmp_path)), time.time()))
    with pytest.raises(FileExistsError):
        svc.start()
