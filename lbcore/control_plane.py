"""The master's control plane: health checks, the runtime API, state fan-out, counters.

Theory of operation: the master owns the one true view of every server
(``lbcore.runtime.state.RuntimeState``): operational state from the health checks,
which run here once per server (``lbcore.health.checker``), and administrative state
and weights from the runtime API, served here on every ``stats socket``
(``lbcore.runtime.server``). Any change of a server is sent whole to every current
worker as a ``server`` message (contract in ``lbcore.worker_link``), and a freshly
forked worker gets one such message per server, so workers never decide server state
themselves. Workers send counters snapshots; ``show stat`` reports their sum
(``lbcore.runtime.collect.StatsCollector``), refreshed by asking every worker just
before a command that shows counters is answered.

A reload builds a new ``RuntimeState`` from the new configuration and carries over
what the runtime API set (``RuntimeState.carry_over``: admin states, weights, by
backend/server name); servers the new configuration no longer has are forgotten.
Checks of servers whose address and check settings did not change keep running with
their history.

State changes are logged in HAProxy's words on the master's log ("Server app/web1
is DOWN, reason: ...", "backend 'app' has no server available!").
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import time
from collections.abc import Callable
from typing import Any, Protocol

from lbcore.config.model import Config, LogTarget, StatsSocket
from lbcore.health.checker import Checker, CheckTask, Probe
from lbcore.health.core import CheckResult, CheckSettings, Transition, settings_for
from lbcore.health.core import transition_message as check_message
from lbcore.health.prober import probe
from lbcore.logs.sender import LogSender, TargetSpec
from lbcore.runtime import page
from lbcore.runtime.checks import check_view
from lbcore.runtime.collect import StatsCollector
from lbcore.runtime.server import AdminServer, process_info
from lbcore.runtime.state import (
    CHK_ST_PAUSED,
    BackendEntry,
    Change,
    RuntimeState,
    ServerEntry,
)
from lbcore.server import AdminState, OpState

log = logging.getLogger("lbcore.master")

Key = tuple[str, str]
Message = dict[str, Any]

#: How long ``show stat`` waits for the workers' fresh counters before answering
#: with what it has.
REFRESH_TIMEOUT = 0.5
#: Steps of a slowstart ramp (the weight is raised this many times).
SLOWSTART_STEPS = 20


class Fanout(Protocol):
    """What the control plane needs of the master: send to current workers."""

    def broadcast(self, msg: dict[str, Any]) -> None: ...

    def send_to(self, pid: int, msg: dict[str, Any]) -> bool: ...

    def worker_pids(self) -> list[int]: ...


class ControlPlane:
    """Lives in the master's event loop from ``start`` to ``close``."""

    def __init__(
        self,
        config: Config,
        workers: int = 1,
        clock: Callable[[], float] = time.time,
        prober: Probe = probe,
    ) -> None:
        self.config = config
        self.clock = clock
        self.prober = prober
        self.info = dataclasses.replace(process_info(workers), start_time=clock())
        self.state = RuntimeState(config, clock(), self.info)
        self.collector = StatsCollector()
        self.checker: Checker | None = None
        #: one server per stats socket, keyed by what it is (a reload keeps those
        #: that did not change bound, so their clients never see them go away)
        self.admin: dict[tuple[str, int | None, str], AdminServer] = {}
        self.fanout: Fanout | None = None
        #: set while a check verdict is recorded: its "op" change is not the CLI's
        self._from_check = False
        self._waiting: dict[int, asyncio.Future[None]] = {}
        self._slowstart: dict[Key, asyncio.TimerHandle] = {}
        self._prev_admin: dict[Key, AdminState] = {}
        self._senders: dict[str, LogSender] = {}

    # ---- life cycle ---------------------------------------------------------------

    async def start(self, fanout: Fanout) -> None:
        """Bind the stats sockets and start the checks (before the first workers)."""
        self.fanout = fanout
        self.checker = Checker(self._on_check, self.prober)
        self.state.subscribe(self._on_change)
        self._open_logs(self.config)
        await self._bind_admin(self.config)
        self._sync_checks()

    async def close(self) -> None:
        for handle in self._slowstart.values():
            handle.cancel()
        if self.checker is not None:
            await self.checker.close()
        for admin in self.admin.values():
            await admin.close()
        self.admin.clear()
        self._close_logs()

    def _open_logs(self, config: Config) -> None:
        """One syslog sender per backend with ``log`` lines (``log global`` = the
        global section's), as HAProxy sends server events to the proxy's loggers."""
        self._close_logs()
        by_targets: dict[tuple[LogTarget, ...], LogSender] = {}
        loop = asyncio.get_running_loop()
        for proxy in config.proxies:
            if not proxy.kind.has_backend:
                continue
            targets: list[LogTarget] = []
            for t in proxy.logs:
                targets += config.global_.logs if t.address == "global" else [t]
            # Syslog sockets only: stream targets (stdout, stderr, file@) write from a
            # thread of their own, and the master forks (a thread holding a lock at the
            # fork would leave it locked in the worker). The master's own log already
            # goes to its stderr.
            targets = [t for t in targets if not _stream_target(t.address)]
            if not targets:
                continue
            key = tuple(targets)
            sender = by_targets.get(key)
            if sender is None:
                try:
                    sender = LogSender.from_specs([TargetSpec.from_model(t) for t in targets])
                except (OSError, ValueError) as e:
                    log.warning("backend '%s': cannot open its log targets: %s", proxy.name, e)
                    continue
                sender.attach(loop)
                by_targets[key] = sender
            self._senders[proxy.name] = sender

    def _close_logs(self) -> None:
        for sender in {id(s): s for s in self._senders.values()}.values():
            sender.close()
        self._senders.clear()

    def reconfigure(self, config: Config, workers: int) -> None:
        """A reload: the new configuration's servers, with what the API set kept."""
        old = self.state
        self.config = config
        self.info = dataclasses.replace(self.info, nbthread=workers)
        now = self.clock()
        state = RuntimeState(config, now, self.info)
        state.carry_over(old)
        for be in state.backends.values():  # checks stay paused in maintenance
            for srv in be.servers:
                _pause_flag(srv)
        state.counters = old.counters
        self._open_logs(config)
        state.subscribe(self._on_change)
        self.state = state
        if self.checker is not None:
            self._sync_checks()
        for admin in self.admin.values():
            admin.state = state
        if set(self.admin) != {_socket_key(s) for s in config.global_.stats_sockets}:
            asyncio.get_running_loop().create_task(self._bind_admin(config))

    def initial_messages(self, config: Config | None = None) -> list[Message]:
        """The full state for a new worker: one ``server`` message per server. The
        master queues them on the channel before forking, so they are there before
        the worker's first accept.

        With ``config`` (a reload whose workers start before the switch to it): the
        state ``reconfigure(config)`` would build — what the runtime API set carried
        over, check verdicts kept where the check goes on — without switching."""
        state = self.state if config is None else self._preview(config)
        return [
            self.server_message(be, srv) for be in state.backends.values() for srv in be.servers
        ]

    def _preview(self, config: Config) -> RuntimeState:
        state = RuntimeState(config, self.clock(), self.info)
        state.carry_over(self.state)
        if self.checker is not None:
            for key, target in self._targets(state).items():
                task = self.checker.get(key)
                _, srv = _find(state, key)
                if srv is not None and task is not None and task.runs and task.target == target:
                    srv.runtime.op_state = check_view(task.tracker)[1]
        return state

    def worker_exited(self, pid: int) -> None:
        self.collector.retire(pid)
        fut = self._waiting.pop(pid, None)
        if fut is not None and not fut.done():
            fut.set_result(None)
        self.state.counters = self.collector.total()

    def on_message(self, pid: int, msg: Message) -> None:
        if msg.get("op") == "service":
            asyncio.get_running_loop().create_task(self._serve_page(pid, msg))
            return
        if msg.get("op") != "stats":
            return
        try:
            self.collector.update(pid, msg)
        except (TypeError, ValueError, AttributeError) as e:
            log.warning("Worker (%d): bad counters snapshot dropped: %s", pid, e)
            return
        self.state.counters = self.collector.total()
        fut = self._waiting.pop(pid, None)
        if fut is not None and not fut.done():
            fut.set_result(None)

    async def refresh(self) -> None:
        """Ask every worker for its counters; wait (bounded) for the answers."""
        if self.fanout is None:
            return
        loop = asyncio.get_running_loop()
        futures = []
        for pid in self.fanout.worker_pids():
            fut = self._waiting.get(pid)
            if fut is None or fut.done():
                fut = loop.create_future()
                self._waiting[pid] = fut
            # Asked again even while an earlier question is unanswered: a question
            # lost (or asked before the worker read its channel) must not leave this
            # worker's counters frozen; any answer resolves the wait.
            if not self.fanout.send_to(pid, {"op": "stats"}):
                continue
            futures.append(fut)
        if futures:
            await asyncio.wait(futures, timeout=REFRESH_TIMEOUT)

    async def _serve_page(self, pid: int, msg: Message) -> None:
        """A worker's stats page or /metrics request (``lbcore.runtime.page``): fresh
        counters first, then the answer from this state, sent back to that worker."""
        with contextlib.suppress(Exception):  # stale counters beat no answer
            await self.refresh()
        try:
            reply = page.answer(self.state, msg, self.clock())
        except Exception:  # a bug of ours must cost one page, not the master
            log.exception("stats page request failed")
            reply = {"op": "service_reply", "id": msg.get("id"), "status": 500, "body": ""}
        if self.fanout is not None:
            self.fanout.send_to(pid, reply)

    # ---- messages -----------------------------------------------------------------

    def server_message(self, be: BackendEntry, srv: ServerEntry) -> Message:
        rt = srv.runtime
        return {
            "op": "server",
            "backend": be.name,
            "server": srv.name,
            "op_state": rt.op_state.value,
            "admin_state": rt.admin_state.value,
            "weight": self._effective_weight(be, srv),
            "addr": [srv.host, srv.port],
        }

    def _broadcast_server(self, be: BackendEntry, srv: ServerEntry) -> None:
        if self.fanout is not None:
            self.fanout.broadcast(self.server_message(be, srv))

    def _effective_weight(self, be: BackendEntry, srv: ServerEntry) -> int:
        task = self.checker.get((be.name, srv.name)) if self.checker else None
        weight = srv.runtime.weight
        if task is None or task.settings.slowstart <= 0 or weight == 0:
            return weight
        factor = task.tracker.weight_factor(asyncio.get_running_loop().time())
        return max(1, round(weight * factor)) if factor > 0 else weight

    # ---- runtime API changes ------------------------------------------------------

    def _on_change(self, change: Change) -> None:
        be, srv = _find(self.state, (change.backend, change.server))
        if be is None or srv is None:
            return
        key = (be.name, srv.name)
        if change.kind == "admin" and change.admin is not None:
            self._admin_changed(be, srv, change.admin)
        elif change.kind == "op" and change.op is not None and not self._from_check:
            self._forced_health(be, srv, change.op)
        elif change.kind == "addr" and change.host is not None and change.port is not None:
            if self.checker is not None:
                self.checker.set_addr(key, change.host, change.port)
        elif change.kind == "health" and change.enabled is not None:
            self._health_enabled(be, srv, change.enabled)
        elif change.kind == "shutdown":
            if self.fanout is not None:
                self.fanout.broadcast(
                    {"op": "shutdown_sessions", "backend": be.name, "server": srv.name}
                )
            return
        self._broadcast_server(be, srv)

    def _admin_changed(self, be: BackendEntry, srv: ServerEntry, admin: AdminState) -> None:
        """Log as HAProxy does, and stop checks in MAINT (resume them after)."""
        key = (be.name, srv.name)
        name = f"{be.name}/{srv.name}"
        task = self.checker.get(key) if self.checker else None
        was = self._prev_admin.get(key, AdminState.READY)
        serving = srv.runtime.op_state.serves
        _pause_flag(srv)
        if admin is AdminState.MAINT:
            if task is not None:
                self.checker.pause(key)  # type: ignore[union-attr]
                if was is not AdminState.MAINT and serving:
                    srv.chk_downs += 1  # taken out of service: a transition down
            act, bck = _counts(be)
            self._event(
                be,
                "alert",
                f"Server {name} is going DOWN for maintenance. {act} active and {bck} backup "
                "servers left. 0 sessions active, 0 requeued, 0 remaining in queue.",
            )
        elif admin is AdminState.DRAIN:
            act, bck = _counts(be)
            self._event(
                be,
                "notice",
                f"Server {name} enters drain state. {act} active and {bck} backup servers "
                "online. 0 sessions requeued, 0 total in queue.",
            )
        elif was is not AdminState.READY:
            what = "maintenance" if was is AdminState.MAINT else "drain"
            if was is AdminState.MAINT and task is not None and srv.health_enabled:
                # Leaving maintenance: one failed check from DOWN, checked at once.
                rise = task.settings.rise
                task.tracker.health = rise
                task.tracker.last = None
                srv.runtime.op_state = OpState.UP
                srv.check_health = rise
                self.checker.resume(key)  # type: ignore[union-attr]
            self._event(be, "notice", f"Server {name} is UP/READY (leaving forced {what}).")
        self._prev_admin[key] = admin
        self._no_server_alert(be)

    def _forced_health(self, be: BackendEntry, srv: ServerEntry, op: OpState) -> None:
        task = self.checker.get((be.name, srv.name)) if self.checker else None
        if task is not None:
            s = task.settings
            task.tracker.health = 0 if op is OpState.DOWN else s.rise + s.fall - 1
            task.tracker.last = None
        act, bck = _counts(be)
        name = f"{be.name}/{srv.name}"
        if op is OpState.DOWN:
            self._event(
                be,
                "alert",
                f"Server {name} is DOWN, changed from CLI. {act} active and {bck} backup "
                "servers left. 0 sessions active, 0 requeued, 0 remaining in queue.",
            )
            self._no_server_alert(be)
        elif op is OpState.STOPPING:
            self._event(be, "notice", f"Server {name} is stopping, changed from CLI.")
        else:
            self._event(
                be,
                "notice",
                f"Server {name} is UP, changed from CLI. {act} active and {bck} backup "
                "servers online. 0 sessions requeued, 0 total in queue.",
            )

    def _health_enabled(self, be: BackendEntry, srv: ServerEntry, enabled: bool) -> None:
        """``disable health``: checks stop and their verdict is ignored (the server
        counts as UP, as HAProxy's unchecked servers); ``enable health`` resumes."""
        key = (be.name, srv.name)
        if self.checker is None or self.checker.get(key) is None:
            return
        if enabled:
            if srv.runtime.admin_state is not AdminState.MAINT:
                self.checker.resume(key)
        else:
            self.checker.pause(key)
            if srv.runtime.op_state is not OpState.UP:
                srv.runtime.op_state = OpState.UP
                srv.last_change = self.clock()
                be.refresh(self.clock())

    # ---- health checks ------------------------------------------------------------

    def _targets(
        self, state: RuntimeState | None = None
    ) -> dict[Key, tuple[str, int, CheckSettings]]:
        targets = {}
        for be in (state or self.state).backends.values():
            for srv in be.servers:
                settings = settings_for(be.proxy, srv.runtime.config)
                if settings is not None:
                    targets[(be.name, srv.name)] = (srv.host, srv.port, settings)
        return targets

    def _sync_checks(self) -> None:
        assert self.checker is not None
        self.checker.sync(self._targets())
        for key, task in self.checker.tasks.items():
            be, srv = _find(self.state, key)
            if be is None or srv is None:
                continue
            if task.runs:  # kept across a reload: carry the verdict over
                srv.check, srv.runtime.op_state = check_view(task.tracker)
                srv.check_health = task.tracker.health
            if srv.runtime.admin_state is AdminState.MAINT or not srv.health_enabled:
                self.checker.pause(key)
            elif task.paused:
                self.checker.resume(key)
        self._prev_admin = {
            (be.name, srv.name): srv.runtime.admin_state
            for be in self.state.backends.values()
            for srv in be.servers
        }
        for be in self.state.backends.values():
            be.refresh(self.clock())

    def _on_check(
        self, task: CheckTask, result: CheckResult, transition: Transition | None
    ) -> None:
        be, srv = _find(self.state, task.key)
        if be is None or srv is None:
            return
        now = self.clock()
        stats, op = check_view(task.tracker)
        # last_chk: HAProxy shows the reason of a failure, nothing for a success
        stats = dataclasses.replace(stats, last="" if result.layer.ok else result.info)
        self._from_check = True
        try:  # the "op" change it publishes (if any) is fanned out by _on_change
            self.state.record_check(be, srv, stats, op, now)
        finally:
            self._from_check = False
        if transition is not None:
            act, bck = _counts(be)
            message = check_message(be.name, srv.name, transition, act, bck)
            self._event(be, "notice" if transition.new.serves else "alert", message)
            self._no_server_alert(be)
            if transition.new.serves and task.settings.slowstart > 0:
                self._ramp(be, srv, task)

    def _ramp(self, be: BackendEntry, srv: ServerEntry, task: CheckTask) -> None:
        """Slowstart: re-send the server's (growing) weight until it is whole."""
        key = (be.name, srv.name)
        step = task.settings.slowstart / SLOWSTART_STEPS
        loop = asyncio.get_running_loop()

        def tick() -> None:
            current_be, current = _find(self.state, key)
            if current_be is None or current is None or not current.runtime.op_state.serves:
                self._slowstart.pop(key, None)
                return
            self._broadcast_server(current_be, current)
            if task.tracker.weight_factor(loop.time()) < 1.0:
                self._slowstart[key] = loop.call_later(step, tick)
            else:
                self._slowstart.pop(key, None)

        old = self._slowstart.pop(key, None)
        if old is not None:
            old.cancel()
        self._slowstart[key] = loop.call_later(step, tick)

    def _no_server_alert(self, be: BackendEntry) -> None:
        if not be.up:
            self._event(be, "emerg", f"backend '{be.name}' has no server available!")

    def _event(self, be: BackendEntry, level: str, message: str) -> None:
        """A server or backend event: on the master's log (HAProxy's stderr levels:
        [ALERT] for emergencies, [WARNING] for the rest) and to the backend's syslog
        targets (``log`` lines, ``log global``) at the syslog ``level``."""
        if level == "emerg":
            log.error("%s", message)
        else:
            log.warning("%s", message)
        sender = self._senders.get(be.name)
        if sender is not None:
            sender.log(message, level)

    # ---- stats sockets ------------------------------------------------------------

    async def _bind_admin(self, config: Config) -> None:
        """Bind the stats sockets ``config`` has and the running set lacks, close the
        others. At start a failure raises; after a reload it is logged."""
        starting = not self.admin
        wanted = {_socket_key(s): s for s in config.global_.stats_sockets}
        for key in [k for k in self.admin if k not in wanted]:
            await self.admin.pop(key).close()
        for key, conf in wanted.items():
            if key in self.admin:
                continue
            admin = AdminServer(self.state, [conf], refresh=self.refresh)
            try:
                await admin.start()
            except OSError as e:
                await admin.close()
                if starting:
                    for other in self.admin.values():
                        await other.close()
                    self.admin.clear()
                    raise
                log.error("Stats socket %s: cannot bind after reload: %s", conf.address, e)
                continue
            self.admin[key] = admin


def _pause_flag(srv: ServerEntry) -> None:
    """HAProxy shows a checked server's check as paused while it is in maintenance."""
    if srv.check is None:
        return
    if srv.runtime.admin_state is AdminState.MAINT:
        srv.check_state |= CHK_ST_PAUSED
    else:
        srv.check_state &= ~CHK_ST_PAUSED


def _stream_target(address: str) -> bool:
    return address in ("stdout", "stderr") or address.startswith("file@")


def _socket_key(conf: StatsSocket) -> tuple[str, int | None, str]:
    return conf.address, conf.mode, conf.level


def _find(state: RuntimeState, key: Key) -> tuple[BackendEntry | None, ServerEntry | None]:
    be = state.backends.get(key[0])
    if be is None:
        return None, None
    return be, be.server(key[1])


def _counts(be: BackendEntry) -> tuple[int, int]:
    """Usable active and backup servers (HAProxy's "N active and M backup servers")."""
    act = sum(1 for s in be.servers if s.usable and not s.runtime.backup)
    bck = sum(1 for s in be.servers if s.usable and s.runtime.backup)
    return act, bck
