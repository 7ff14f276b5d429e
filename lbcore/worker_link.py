"""The worker's side of the control plane: apply the master's server states, push counters.

The data plane calls these functions; the master side is ``lbcore.control_plane``.
Messages travel on the control channel (``lbcore.control``: one JSON object per
SOCK_SEQPACKET message, unknown ops and unknown keys ignored by the receiver).

Master -> worker
----------------
``{"op": "server", "backend": B, "server": S, "op_state": O, "admin_state": A,
"weight": W, "addr": [HOST, PORT]}``
    The complete state of one server, sent whenever any part of it changes (check
    verdict, ``set server ... state|weight|addr|health``, ``enable/disable server``,
    ``enable/disable health``, slowstart steps). ``op_state`` is an
    ``lbcore.server.OpState`` value (``"UP"``, ``"DOWN"``, ...), ``admin_state`` an
    ``AdminState`` value (``"ready"``, ``"drain"``, ``"maint"``), ``weight`` the
    effective weight to balance with (0..256). Every message is whole, so a lost or
    reordered one is repaired by the next. Any key may be missing (only what is
    present is applied).

Full state
    Before forking a worker the master queues on its channel one ``server`` message
    for every server of the configuration, so a new worker (a reload, a restarted
    one) starts with the master's view: check verdicts, and the admin states and
    weights set through the runtime API, which survive reloads. The worker must apply
    them before it accepts its first connection — ``read_pending(channel)`` returns
    them without blocking — or its first requests would ignore a drain or a DOWN.

``{"op": "shutdown_sessions", "backend": B, "server": S}``
    ``shutdown sessions server B/S``: close every connection to that server now.

``{"op": "stats"}``
    Send a counters snapshot now (the master asks before answering ``show stat``).

``{"op": "stop", "grace": true|false}``
    The stop protocol (see ``lbcore.master``).

``{"op": "service_reply", "id": N, "status": S, "content_type": T, "body": TEXT}``
    The answer to a worker's ``service`` request (below).

Worker -> master
----------------
``{"op": "ready", "pid": P}``
    Sent once, when the worker serves every listener of its configuration. A reload
    switches to a new generation only when each of its workers has sent it, and
    fails (the old workers serve on) if one dies first or ``--ready-timeout`` passes.

``{"op": "service", "id": N, "service": "stats"|"prometheus-exporter", ...}``
    A stats page or ``/metrics`` request the worker's HTTP frontend received; the
    master answers from its state (contract and fields: ``lbcore.runtime.page``).

``{"op": "stats", "pid": P, "counters": lbcore.stats.snapshot_to_json(...)}``
    The worker's counters, pushed at least every ``PUSH_INTERVAL`` seconds
    (``StatsPusher``) and in answer to ``{"op": "stats"}``. The master sums the
    workers' snapshots (``lbcore.runtime.collect``). The older form with
    ``frontends``/``backends`` keys is accepted too.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import socket
from collections.abc import Callable, Mapping
from typing import Any, Protocol

from lbcore import control
from lbcore.server import AdminState, OpState, ServerRuntime
from lbcore.stats import Snapshot, snapshot_to_json

#: Seconds between two counters pushes of a worker.
PUSH_INTERVAL = 0.5

Message = dict[str, Any]


class BackendLike(Protocol):
    """What ``apply_server_message`` needs of a worker's backend (``BackendRuntime``)."""

    @property
    def by_name(self) -> Mapping[str, ServerRuntime]: ...


def apply_server_message(
    backends: Mapping[str, BackendLike], msg: Mapping[str, Any]
) -> ServerRuntime | None:
    """Apply a master ``server`` message to the worker's ``ServerRuntime``.

    Returns the server that was updated (the caller then wakes its backend's queue),
    or None when the message is not a ``server`` message or names an unknown
    backend/server (a stale message from before a reload) or carries bad values —
    a bad message is ignored, never raised into the worker's loop.
    """
    if msg.get("op") != "server":
        return None
    be = backends.get(str(msg.get("backend")))
    if be is None:
        return None
    server = be.by_name.get(str(msg.get("server")))
    if server is None:
        return None
    try:
        op = OpState(msg["op_state"]) if "op_state" in msg else server.op_state
        admin = AdminState(msg["admin_state"]) if "admin_state" in msg else server.admin_state
        weight = server.weight
        if "weight" in msg:
            weight = min(max(int(msg["weight"]), 0), 256)
        config = server.config
        addr = msg.get("addr")
        if isinstance(addr, list | tuple) and len(addr) == 2:
            host, port = str(addr[0]), int(addr[1])
            if (host, port) != (config.host, config.port):
                config = dataclasses.replace(config, host=host, port=port)
    except (ValueError, TypeError):
        return None
    server.op_state, server.admin_state, server.weight = op, admin, weight
    server.config = config
    return server


def read_pending(sock: socket.socket) -> list[Message]:
    """Every message already queued on the channel, without waiting for more.

    For a starting worker: apply these (``apply_server_message``) before accepting.
    Malformed messages are skipped; the socket's blocking mode is restored.
    """
    out: list[Message] = []
    blocking = sock.getblocking()
    sock.setblocking(False)
    try:
        while True:
            try:
                msg = control.recv(sock)
            except BlockingIOError:
                break
            except control.ChannelError:
                continue
            if msg is None:
                break
            out.append(msg)
    finally:
        sock.setblocking(blocking)
    return out


def shutdown_target(msg: Mapping[str, Any]) -> tuple[str, str] | None:
    """``(backend, server)`` of a ``shutdown_sessions`` message, else None."""
    if msg.get("op") != "shutdown_sessions":
        return None
    return str(msg.get("backend")), str(msg.get("server"))


def stats_message(snapshot: Snapshot) -> Message:
    """The worker -> master counters message."""
    return {"op": "stats", "pid": os.getpid(), "counters": snapshot_to_json(snapshot)}


class StatsPusher:
    """Pushes ``stats_message(snapshot())`` through ``send`` every ``interval`` seconds.

    ``send`` is the worker's channel sender (``AsyncChannel.send``); ``snapshot``
    returns the worker's counters keyed ``(pxname, svname)``. ``push()`` sends one
    now (the answer to the master's ``{"op": "stats"}``).
    """

    def __init__(
        self,
        send: Callable[[Message], None],
        snapshot: Callable[[], Snapshot],
        interval: float = PUSH_INTERVAL,
    ) -> None:
        self.send = send
        self.snapshot = snapshot
        self.interval = interval
        self._handle: asyncio.TimerHandle | None = None

    def start(self) -> None:
        self._schedule()

    def stop(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None

    def push(self) -> None:
        self.send(stats_message(self.snapshot()))

    def _tick(self) -> None:
        self.push()
        self._schedule()

    def _schedule(self) -> None:
        loop = asyncio.get_running_loop()
        self._handle = loop.call_later(self.interval, self._tick)
