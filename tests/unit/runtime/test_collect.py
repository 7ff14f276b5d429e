"""Summing worker snapshots, keeping exited workers' counts, telling workers of changes."""

from __future__ import annotations

from lbcore.runtime.collect import StatsCollector, from_worker_snapshot, worker_message
from lbcore.runtime.state import Change
from lbcore.server import AdminState
from lbcore.stats import Counters, snapshot_to_json

W1 = {
    "op": "stats",
    "frontends": {"www": {"scur": 1, "stot": 10, "req_tot": 12, "dreq": 1, "hrsp": {"2": 11}}},
    "backends": {
        "app": {
            "req_tot": 11,
            "econ": 1,
            "qcur": 0,
            "qmax": 2,
            "hrsp": {"2": 10, "5": 1},
            "servers": {"a": {"active": 1, "total": 7}, "b": {"active": 0, "total": 4}},
        }
    },
}


def test_worker_snapshot_maps_to_csv_columns() -> None:
    snap = from_worker_snapshot(W1)
    fe, be, a = snap[("www", "FRONTEND")], snap[("app", "BACKEND")], snap[("app", "a")]
    assert (fe.scur, fe.stot, fe.req_tot, fe.dreq, fe.hrsp_2xx) == (1, 10, 12, 1, 11)
    assert (be.req_tot, be.econ, be.qmax, be.hrsp_2xx, be.hrsp_5xx) == (11, 1, 2, 10, 1)
    assert (be.stot, be.scur, a.stot, a.scur, a.lbtot) == (11, 1, 7, 1, 7)


def test_collector_sums_live_and_keeps_retired_counts() -> None:
    col = StatsCollector()
    col.update(100, W1)
    col.update(
        200,
        {
            "op": "stats",
            "counters": snapshot_to_json({("www", "FRONTEND"): Counters(scur=2, stot=5)}),
        },
    )
    assert col.total()[("www", "FRONTEND")].stot == 15
    assert col.total()[("www", "FRONTEND")].scur == 3
    col.update(100, W1)  # a newer snapshot replaces, never adds
    assert col.total()[("www", "FRONTEND")].stot == 15
    col.retire(100)  # reload: the old worker is gone
    total = col.total()[("www", "FRONTEND")]
    assert (total.stot, total.scur, total.hrsp_2xx) == (15, 2, 11)


def test_changes_become_worker_messages() -> None:
    assert worker_message(Change("admin", "app", "a", admin=AdminState.DRAIN)) == {
        "op": "server",
        "backend": "app",
        "server": "a",
        "admin_state": "drain",
    }
    assert worker_message(Change("weight", "app", "a", weight=3))["weight"] == 3
    msg = worker_message(Change("addr", "app", "a", host="127.0.0.2", port=81))
    assert (msg["host"], msg["port"]) == ("127.0.0.2", 81)
