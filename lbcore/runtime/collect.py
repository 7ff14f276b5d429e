"""Counters of the whole process from its workers' snapshots (sans-I/O).

Theory of operation: the master asks every worker for ``{"op": "stats"}`` and hands
each answer to ``StatsCollector.update(pid, msg)``; ``total()`` is what ``show stat``
reports: the sum over the live workers, plus the cumulative counters of workers that
have exited (``retire(pid)`` after a reload or a crash), so totals such as ``stot``
and ``hrsp_2xx`` do not drop when old workers go away. Gauges (``scur``, ``qcur``...)
of an exited worker are dropped: its connections are gone with it.

``from_worker_snapshot`` reads the snapshot format lbcore.worker sends today
(frontends -> {scur, stot, req_tot, dreq, hrsp}, backends -> {req_tot, econ, eresp,
wretr, wredis, qcur, qmax, hrsp, servers -> {active, total}}); a snapshot that
already carries ``counters`` (``lbcore.stats.snapshot_to_json``) is taken as is.

``worker_message`` turns a runtime API ``Change`` into the master -> worker message
of the channel contract (``{"op": "server", "backend", "server", ...}``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from lbcore.runtime.state import Change
from lbcore.stats import SUMMED, Counters, Key, merge, snapshot_from_json

#: Summed columns that are gauges (a value now), not counts since start.
GAUGES = frozenset(
    {
        "qcur", "scur", "rate", "req_rate", "conn_rate", "srv_icur", "idle_conn_cur",
        "safe_conn_cur", "used_conn_cur", "need_conn_est", "h1_open_connections",
        "h1_open_streams",
    }
)  # fmt: skip

_HRSP = {"1": "hrsp_1xx", "2": "hrsp_2xx", "3": "hrsp_3xx", "4": "hrsp_4xx", "5": "hrsp_5xx"}


def _hrsp(c: Counters, hrsp: object) -> None:
    if isinstance(hrsp, Mapping):
        for klass, n in hrsp.items():
            name = _HRSP.get(str(klass), "hrsp_other")
            setattr(c, name, getattr(c, name) + int(n))


def _int(data: Mapping[str, Any], key: str) -> int:
    value = data.get(key, 0)
    return int(value) if isinstance(value, int | float) else 0


def from_worker_snapshot(msg: Mapping[str, Any]) -> dict[Key, Counters]:
    """One worker's ``{"op": "stats", ...}`` answer as stats-model counters."""
    if "counters" in msg:
        return snapshot_from_json(msg["counters"])
    out: dict[Key, Counters] = {}
    for name, fe in (msg.get("frontends") or {}).items():
        c = Counters(
            scur=_int(fe, "scur"),
            stot=_int(fe, "stot"),
            conn_tot=_int(fe, "stot"),
            req_tot=_int(fe, "req_tot"),
            dreq=_int(fe, "dreq"),
        )
        _hrsp(c, fe.get("hrsp"))
        out[(name, "FRONTEND")] = c
    for name, be in (msg.get("backends") or {}).items():
        bc = Counters(
            req_tot=_int(be, "req_tot"),
            econ=_int(be, "econ"),
            eresp=_int(be, "eresp"),
            wretr=_int(be, "wretr"),
            wredis=_int(be, "wredis"),
            qcur=_int(be, "qcur"),
            qmax=_int(be, "qmax"),
        )
        _hrsp(bc, be.get("hrsp"))
        for sname, srv in (be.get("servers") or {}).items():
            sc = Counters(scur=_int(srv, "active"), stot=_int(srv, "total"))
            sc.lbtot = sc.stot
            out[(name, sname)] = sc
            bc.scur += sc.scur
            bc.stot += sc.stot
            bc.lbtot += sc.stot
        out[(name, "BACKEND")] = bc
    return out


class StatsCollector:
    """Latest snapshot per live worker, plus what exited workers had counted."""

    def __init__(self) -> None:
        self.live: dict[int, dict[Key, Counters]] = {}
        self.retired: dict[Key, Counters] = {}

    def update(self, pid: int, msg: Mapping[str, Any]) -> None:
        self.live[pid] = from_worker_snapshot(msg)

    def retire(self, pid: int) -> None:
        """A worker exited: keep its counts, drop its gauges."""
        snap = self.live.pop(pid, None)
        if not snap:
            return
        kept = {}
        for key, c in snap.items():
            counts = Counters()
            for name in SUMMED:
                if name not in GAUGES:
                    setattr(counts, name, getattr(c, name))
            counts.last_sess = c.last_sess
            kept[key] = counts
        self.retired = merge([self.retired, kept])

    def total(self) -> dict[Key, Counters]:
        return merge([self.retired, *self.live.values()])


def worker_message(change: Change) -> dict[str, Any]:
    """The channel message telling workers about a runtime API change."""
    msg: dict[str, Any] = {"op": "server", "backend": change.backend, "server": change.server}
    if change.kind == "admin" and change.admin is not None:
        msg["admin_state"] = change.admin.value
    elif change.kind == "weight" and change.weight is not None:
        msg["weight"] = change.weight
    elif change.kind == "addr":
        msg["host"], msg["port"] = change.host, change.port
    elif change.kind == "op" and change.op is not None:
        msg["op_state"] = change.op.value
    elif change.kind == "health":
        msg["health"] = change.enabled
    elif change.kind == "shutdown":
        msg["shutdown_sessions"] = True
    return msg
