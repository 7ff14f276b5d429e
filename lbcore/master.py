"""The master process: owns the listening sockets, forks workers, reloads, stops.

Theory of operation: the master never serves traffic. It binds every listener once
(:mod:`lbcore.listeners`) and forks N workers that inherit those sockets and a control
channel each (:mod:`lbcore.control`). Everything the master reacts to — signals, a
worker's channel, a child's death, a deadline, and the control plane's health checks
and runtime API connections (:mod:`lbcore.control_plane`) — arrives in one asyncio
event loop: signal handlers only queue the signal and wake the loop through
``signal.set_wakeup_fd``, so no work ever happens inside a handler and the master stays
single-threaded (which is what makes ``fork`` safe). A worker is forked from inside a
callback of that loop; the child never returns to it (asyncio ties a running loop to
its pid, so the child may start its own) and closes every descriptor it did not
inherit on purpose — a check connection or a CLI client of the master left open in a
worker would never see its end.

Workers belong to a *generation*: the configuration they were started with. A reload
(SIGUSR2 or SIGHUP) parses the files first — on any error it logs why and changes
nothing — then opens the new config's new binds and forks a new generation, which is
*pending* until every one of its workers has said ``{"op": "ready"}`` on its channel
(it sends that once it serves every listener). Only then does the new generation become
the current one, and the old workers are asked to stop gracefully (the ``stop``
message and SIGUSR1), with SIGKILL after ``hard-stop-after`` if set — as HAProxy's
master keeps its old workers until the new one reports ready. If a new worker dies
before that, or they are not all ready within ``ready_timeout`` seconds, the reload
fails: the pending workers are stopped, the old generation keeps serving, and the log
says why. Until the switch the control plane (runtime API, checks, server states) keeps
describing the serving configuration; the pending workers start from the new
configuration's state (``ControlPlane.initial_messages(config)``) and get the whole of
it again at the switch. A reload that arrives while another is pending replaces it.
Because the listening sockets stay open in the master throughout, a connection that
arrives between the old workers' last ``accept`` and the new ones' first waits in the
kernel's backlog instead of being refused. A listener the new configuration no longer
names is closed once no living worker uses it.

A current-generation worker that dies is replaced in the same slot, with a back-off so a
worker that crashes at start cannot turn the master into a fork loop.

The worker entry point is a parameter (``worker_fn``) so the master can be exercised with
a small test worker; the default imports :func:`lbcore.worker.run_worker` lazily, in the
child, so the master itself never loads the proxy.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import enum
import logging
import os
import signal
import socket
import sys
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from lbcore import budget, control
from lbcore.budget import Budgets
from lbcore.config.model import Config
from lbcore.control_plane import ControlPlane
from lbcore.listeners import BindError, BindKey, ListenerSet

log = logging.getLogger("lbcore.master")

WorkerFn = Callable[[Config, dict[BindKey, socket.socket], socket.socket | None], None]
Loader = Callable[[Sequence[str]], Config]

#: Seconds a worker gets to exit after SIGTERM before the master SIGKILLs it.
STOP_NOW_GRACE = 3.0
#: Seconds a reload waits for every new worker's ``ready`` before it gives up
#: (``lbcore run --ready-timeout``).
READY_TIMEOUT = 10.0
#: Seconds the workers of a failed reload get to finish what they accepted.
FAILED_STOP_GRACE = 5.0
#: A worker that lived less than this is "crashing at start": its restart backs off.
STABLE_AFTER = 5.0
RESTART_BACKOFF_MIN = 0.1
RESTART_BACKOFF_MAX = 5.0

_PR_SET_PDEATHSIG = 1


def default_worker(
    config: Config, listeners: dict[BindKey, socket.socket], channel: socket.socket | None
) -> None:
    """The real worker: the proxy's event loop (imported in the child only)."""
    from lbcore.worker import run_worker

    run_worker(config, listeners, channel)


def worker_count(config: Config, override: int | None) -> int:
    """``--workers`` wins over ``nbproc``/``nbthread``, which win over one per core."""
    if override is not None:
        return max(1, override)
    if config.global_.workers is not None:
        return max(1, config.global_.workers)
    try:
        return len(os.sched_getaffinity(0))  # the CPUs we may run on (cpusets, taskset)
    except (AttributeError, OSError):
        return os.cpu_count() or 1


#: The signals the master acts on. ``block_signals`` holds them from the start of
#: ``lbcore run`` until the master's handlers are in place, so a reload or stop sent while
#: the configuration is still loading is acted on afterwards rather than killing the
#: process (SIGUSR1/SIGUSR2/SIGHUP terminate by default).
MASTER_SIGNALS = frozenset(
    {signal.SIGUSR1, signal.SIGUSR2, signal.SIGHUP, signal.SIGTERM, signal.SIGINT, signal.SIGCHLD}
)


def block_signals() -> None:
    signal.pthread_sigmask(signal.SIG_BLOCK, MASTER_SIGNALS)


def check_privileges(config: Config) -> None:
    """Fail early (at start or reload) on a ``user``/``group`` that does not exist,
    rather than in every forked worker."""
    g = config.global_
    if os.geteuid() != 0:
        if g.user is not None or g.group is not None:
            log.warning("'user'/'group' ignored: not running as root")
        return
    import grp
    import pwd

    try:
        if g.group is not None and not g.group.isdigit():
            grp.getgrnam(g.group)
        if g.user is not None and not g.user.isdigit():
            pwd.getpwnam(g.user)
    except KeyError as e:
        raise ValueError(f"global: unknown user or group {e}") from None


class WorkerState(enum.Enum):
    RUNNING = "running"
    STOPPING = "stopping"  # told to stop gracefully (old generation, or graceful stop)
    KILLING = "killing"  # told to stop now


@dataclass(slots=True, eq=False)
class Worker:
    """The master's view of one forked worker."""

    pid: int
    slot: int
    generation: int
    channel: socket.socket
    started: float
    listener_fds: frozenset[int]
    state: WorkerState = WorkerState.RUNNING
    kill_at: float | None = None  # SIGKILL deadline once stopping
    channel_open: bool = True
    last_message: dict[str, Any] | None = None
    ready: bool = False  # said {"op": "ready"}: serving every listener


@dataclass(slots=True)
class _Pending:
    """A reload between the fork of its workers and their last ``ready``."""

    generation: int
    config: Config
    current: dict[BindKey, socket.socket]
    messages: list[dict[str, Any]]  # the full state its workers start from
    size: int
    started: float
    deadline: float
    waiting: set[int] = field(default_factory=set)  # pids not ready yet


@dataclass(slots=True)
class _Restart:
    due: float
    slot: int


@dataclass(slots=True)
class _SlotHistory:
    backoff: float = 0.0
    restarts: int = 0


def describe_exit(status: int) -> str:
    code = os.waitstatus_to_exitcode(status)
    if code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        return f"killed by {name}"
    return f"exit code {code}"


@dataclass(slots=True)
class Master:
    """One master process. Build it with a loaded config and its bound listeners, call
    :meth:`start` to fork the first generation, then :meth:`run` until it stops."""

    files: Sequence[str]
    loader: Loader
    config: Config
    listeners: ListenerSet
    current: dict[BindKey, socket.socket]
    worker_fn: WorkerFn = default_worker
    workers_override: int | None = None
    close_in_worker: tuple[int, ...] = ()
    on_message: Callable[[Worker, dict[str, Any]], None] | None = None
    clock: Callable[[], float] = time.monotonic
    control: ControlPlane | None = None
    ready_timeout: float = READY_TIMEOUT

    #: the serving generation (``config``/``current`` are its configuration)
    generation: int = 1
    pending: _Pending | None = None
    _last_generation: int = 1
    #: shared server maxconn slots of each generation that has workers (lbcore.budget)
    _budgets: dict[int, Budgets | None] = field(default_factory=dict)
    workers: dict[int, Worker] = field(default_factory=dict)
    stopping: bool = False
    _signals: list[int] = field(default_factory=list)
    _restarts: list[_Restart] = field(default_factory=list)
    _history: dict[int, _SlotHistory] = field(default_factory=dict)
    _loop: asyncio.AbstractEventLoop | None = None
    _timer: asyncio.TimerHandle | None = None
    _done: asyncio.Future[int] | None = None
    _wake_r: int = -1
    _wake_w: int = -1
    _old_handlers: dict[int, Any] = field(default_factory=dict)

    # ---- life cycle -------------------------------------------------------------

    def start(self) -> None:
        """Install signal handling, start the control plane (stats sockets, checks) and
        fork the first generation of workers. Raises OSError if a stats socket cannot
        be bound (nothing is left running then)."""
        self._loop = asyncio.new_event_loop()
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_r, False)
        os.set_blocking(self._wake_w, False)
        self._loop.add_reader(self._wake_r, self._on_wake)
        signal.set_wakeup_fd(self._wake_w, warn_on_full_buffer=False)
        for signum in MASTER_SIGNALS:
            self._old_handlers[signum] = signal.signal(signum, self._on_signal)
        signal.pthread_sigmask(signal.SIG_UNBLOCK, MASTER_SIGNALS)
        if self.control is not None:
            try:
                self._loop.run_until_complete(self.control.start(self))
            except BaseException:
                self._shutdown()
                raise
        n = worker_count(self.config, self.workers_override)
        self._budgets[self.generation] = Budgets.for_config(self.config, n)
        log.info("Loading success: %s, %d worker(s), generation %d", self._files(), n, 1)
        for slot in range(n):
            self._spawn(slot)

    def wait_ready(self, timeout: float) -> bool:
        """After :meth:`start`: serve the loop until every worker of the current
        generation has said ready (True), or ``timeout`` seconds have passed or a stop
        came (False; the master goes on restarting workers that died). What tells
        others this instance serves — ``-D``'s parent, ``-sf``'s old processes —
        waits for this, as a reload waits before it stops the old workers."""
        assert self._loop is not None, "start() first"
        n = worker_count(self.config, self.workers_override)
        deadline = self.clock() + timeout
        self._loop.call_soon(self._tick)
        while not self._ready_count() >= n:
            left = deadline - self.clock()
            if left <= 0 or self.stopping:
                return False
            self._loop.run_until_complete(asyncio.sleep(min(left, 0.01)))
        return True

    def _ready_count(self) -> int:
        return sum(
            1
            for w in self.workers.values()
            if w.generation == self.generation and w.state is WorkerState.RUNNING and w.ready
        )

    def run(self) -> int:
        """Serve signals, channels and the control plane until every worker is gone
        after a stop."""
        assert self._loop is not None, "start() first"
        try:
            self._done = self._loop.create_future()
            self._loop.call_soon(self._tick)
            return self._loop.run_until_complete(self._done)
        finally:
            self._shutdown()

    def _tick(self) -> None:
        """One pass over everything that may be due; re-arms the one timer."""
        assert self._loop is not None
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._handle_signals()
        self._reap()
        now = self.clock()
        self._restart_due(now)
        self._enforce_deadlines(now)
        if self.pending is not None and now >= self.pending.deadline:
            late = ", ".join(f"({pid})" for pid in sorted(self.pending.waiting))
            self._fail_reload(f"new worker(s) {late} not ready after {self.ready_timeout:g}s")
        if self.stopping and not self.workers:
            if self._done is not None and not self._done.done():
                log.info("All workers exited. Exiting... (0)")
                self._done.set_result(0)
            return
        timeout = self._timeout(self.clock())
        if timeout is not None:
            self._timer = self._loop.call_later(timeout, self._tick)

    def _on_wake(self) -> None:
        with contextlib.suppress(BlockingIOError):
            while os.read(self._wake_r, 512):
                pass
        self._tick()

    # ---- requests (also used by tests and, later, the runtime API) ---------------

    def reload(self) -> bool:
        """Load the files again and fork a new generation on them; False if that
        failed. The switch to the new generation happens when all its workers are
        ready (:meth:`_switch`), or not at all (:meth:`_fail_reload`)."""
        if self.stopping:
            log.warning("Reload ignored: stopping")
            return False
        log.info("Reloading: loading %s", self._files())
        try:
            config = self.loader(self.files)
            check_privileges(config)
        except Exception as e:
            # Every line: the parser reports every bad line of the file, with file:line.
            for line in str(e).splitlines() or [type(e).__name__]:
                log.error("config : %s", line)
            log.error("Reload failed, keeping generation %d running", self.generation)
            return False
        try:
            current = self.listeners.open_for(config)
        except BindError as e:
            log.error("Reload failed, keeping generation %d running: %s", self.generation, e)
            return False
        if self.pending is not None:
            self._drop_pending(f"replaced by a newer reload ({self._files()})")
        self._last_generation += 1
        n = worker_count(config, self.workers_override)
        now = self.clock()
        messages = self.control.initial_messages(config) if self.control is not None else []
        deadline = now + self.ready_timeout
        p = _Pending(self._last_generation, config, current, messages, n, now, deadline)
        self.pending = p
        self._budgets[p.generation] = Budgets.for_config(config, n)
        for slot in range(n):
            w = self._spawn(slot, p)
            if w is None:
                self._fail_reload("cannot fork a new worker")
                return False
            p.waiting.add(w.pid)
        log.info(
            "Generation %d forked (%d worker(s)): waiting for them to be ready",
            p.generation,
            n,
        )
        return True

    def _on_ready(self, w: Worker) -> None:
        w.ready = True
        p = self.pending
        if p is None or w.generation != p.generation:
            return
        p.waiting.discard(w.pid)
        if not p.waiting:
            self._switch(p)

    def _switch(self, p: _Pending) -> None:
        """Every new worker is ready: make its generation current, stop the old ones."""
        self.pending = None
        old = [w for w in self.workers.values() if w.state is WorkerState.RUNNING]
        old = [w for w in old if w.generation != p.generation]
        self.config, self.current, self.generation = p.config, p.current, p.generation
        self._restarts.clear()
        self._history.clear()
        deadline = self._hard_stop_deadline()
        for w in old:
            self._stop_gracefully(w, deadline)
        if self.control is not None:
            self.control.reconfigure(p.config, p.size)
            # What changed while they were starting (checks, the runtime API) went to
            # the old generation only: the new one gets the whole state again.
            for msg in self.control.initial_messages():
                self.broadcast(msg)
        log.info(
            "Reload done: generation %d with %d worker(s) ready in %.0f ms; "
            "%d old worker(s) finishing",
            self.generation,
            p.size,
            (self.clock() - p.started) * 1000,
            len(old),
        )
        self._close_unused_listeners()
        self._rearm()

    def _rearm(self) -> None:
        """New deadlines were set outside ``_tick`` (a channel callback): let the next
        loop turn re-arm the timer for them."""
        if self._loop is not None:
            self._loop.call_soon(self._tick)

    def _fail_reload(self, why: str) -> None:
        """The pending generation cannot serve: stop it, keep the current one."""
        log.error("Reload failed: %s; keeping generation %d running", why, self.generation)
        self._drop_pending(why)

    def _drop_pending(self, why: str) -> None:
        p = self.pending
        if p is None:
            return
        self.pending = None
        log.info("Stopping the workers of generation %d: %s", p.generation, why)
        # They may have accepted connections already (a worker serves a listener as
        # soon as it has it): let them finish those, within a bound.
        deadline = self.clock() + FAILED_STOP_GRACE
        hard = self._hard_stop_deadline()
        if hard is not None:
            deadline = min(deadline, hard)
        for w in self.workers.values():
            if w.generation == p.generation and w.state is WorkerState.RUNNING:
                self._stop_gracefully(w, deadline)
        self._close_unused_listeners()
        self._rearm()

    def graceful_stop(self) -> None:
        """Stop accepting, let workers finish what they serve, then exit (SIGUSR1)."""
        if self.stopping:
            return
        self.stopping = True
        self.pending = None
        self._restarts.clear()
        log.info("Graceful stop: %d worker(s) finishing", len(self.workers))
        deadline = self._hard_stop_deadline()
        for w in list(self.workers.values()):
            if w.state is WorkerState.RUNNING:
                self._stop_gracefully(w, deadline)
        # Workers unbind their own copies as they get the stop; the master's go now so
        # the ports are released as soon as the last worker lets go.
        self.listeners.close_all()

    def stop_now(self) -> None:
        """Terminate every worker now (SIGTERM/SIGINT); SIGKILL stragglers."""
        self.stopping = True
        self.pending = None
        self._restarts.clear()
        log.info("Stopping now: terminating %d worker(s)", len(self.workers))
        deadline = self.clock() + STOP_NOW_GRACE
        for w in self.workers.values():
            if w.state is not WorkerState.KILLING:
                w.state = WorkerState.KILLING
                w.kill_at = deadline
                self._kill(w, signal.SIGTERM)
        self.listeners.close_all()

    def broadcast(self, msg: dict[str, Any]) -> None:
        """Send ``msg`` to every worker of the serving generation (state changes and
        the like): the control plane's state describes its configuration. A pending
        generation gets the whole state when it becomes current."""
        for w in self.workers.values():
            if w.state is WorkerState.RUNNING and w.generation == self.generation:
                self._send(w, msg)

    def send_to(self, pid: int, msg: dict[str, Any]) -> bool:
        """Send ``msg`` to one worker; False if it is gone or the message was dropped."""
        w = self.workers.get(pid)
        return w is not None and self._send(w, msg)

    def worker_pids(self) -> list[int]:
        """Every worker that can still talk (old generations too: their counts count)."""
        return [w.pid for w in self.workers.values() if w.channel_open]

    # ---- signals ------------------------------------------------------------------

    def _on_signal(self, signum: int, frame: object) -> None:
        # Only queue: the loop, woken by the wakeup fd, does the work.
        self._signals.append(signum)

    def _handle_signals(self) -> None:
        while self._signals:
            signum = self._signals.pop(0)
            if signum in (signal.SIGUSR2, signal.SIGHUP):
                self.reload()
            elif signum == signal.SIGUSR1:
                self.graceful_stop()
            elif signum in (signal.SIGTERM, signal.SIGINT):
                self.stop_now()
            # SIGCHLD needs nothing: every pass of the loop reaps.

    # ---- workers ------------------------------------------------------------------

    def _spawn(self, slot: int, pending: _Pending | None = None) -> Worker | None:
        """Fork a worker of the serving generation, or of ``pending``; None if the
        fork failed (a serving slot is then retried later)."""
        assert self._loop is not None
        if pending is not None:
            config, current, generation = pending.config, pending.current, pending.generation
            messages = pending.messages
        else:
            config, current, generation = self.config, self.current, self.generation
            messages = self.control.initial_messages() if self.control is not None else []
        master_end, worker_end = control.channel_pair()
        # Queued before the fork: the worker finds its full state on its channel
        # before it can accept anything (see lbcore.worker_link).
        master_end.setblocking(False)
        for msg in messages:
            try:
                control.send(master_end, msg)
            except (OSError, control.ChannelError) as e:
                log.warning("Full state for the new worker incomplete: %s", e)
                break
        if self.worker_fn is default_worker:
            _preload_worker()
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(Exception):
                stream.flush()
        try:
            pid = os.fork()
        except OSError as e:
            master_end.close()
            worker_end.close()
            log.error("Cannot fork worker %d: %s", slot, e.strerror)
            if pending is None:
                self._schedule_restart(slot, self.clock(), lived=0.0)
            return None
        if pid == 0:  # the child: never returns
            master_end.close()
            self._run_child(slot, worker_end, config, current, generation)
        worker_end.close()
        w = Worker(
            pid=pid,
            slot=slot,
            generation=generation,
            channel=master_end,
            started=self.clock(),
            listener_fds=frozenset(s.fileno() for s in current.values()),
        )
        self.workers[pid] = w
        self._loop.add_reader(master_end.fileno(), self._read_channel, w)
        log.info("New worker (%d) forked: slot %d, generation %d", pid, slot, generation)
        return w

    def _run_child(
        self,
        slot: int,
        channel: socket.socket,
        config: Config,
        current: dict[BindKey, socket.socket],
        generation: int,
    ) -> None:
        """In the forked child: shed the master's state, become a worker, never return."""
        code = 1
        try:
            master_pid = os.getppid()
            signal.pthread_sigmask(signal.SIG_UNBLOCK, MASTER_SIGNALS)
            signal.set_wakeup_fd(-1)
            for signum in (signal.SIGTERM, signal.SIGUSR1, signal.SIGCHLD):
                signal.signal(signum, signal.SIG_DFL)
            # Reload and ^C belong to the master (a terminal sends SIGINT to the whole
            # process group); the master stops workers itself.
            for signum in (signal.SIGINT, signal.SIGHUP, signal.SIGUSR2):
                signal.signal(signum, signal.SIG_IGN)
            self._close_master_fds(channel, current)
            _die_with_parent(master_pid)
            _drop_privileges(config)
            os.environ["LBCORE_WORKER_SLOT"] = str(slot)
            os.environ["LBCORE_WORKER_GENERATION"] = str(generation)
            budget.inherit(self._budgets.get(generation), slot)
            self.worker_fn(config, dict(current), channel)
            code = 0
        except SystemExit as e:
            code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
        except BaseException:
            traceback.print_exc()
        finally:
            for stream in (sys.stdout, sys.stderr):
                with contextlib.suppress(Exception):
                    stream.flush()
            os._exit(code)

    def _close_master_fds(
        self, channel: socket.socket, current: dict[BindKey, socket.socket]
    ) -> None:
        """Close, in a child, every descriptor but the standard ones, its listeners and
        its channel: a removed bind's port would otherwise stay bound by a worker that
        never serves it, and a health check or CLI connection of the master would stay
        open as long as the worker lives (its peer would never see the end)."""
        for w in self.workers.values():
            w.channel.detach()  # the number is closed below; the object must not reuse it
        keep = {0, 1, 2, channel.fileno(), *(s.fileno() for s in current.values())}
        try:
            fds = [int(name) for name in os.listdir("/proc/self/fd")]
        except OSError:
            fds = list(range(3, _max_fd()))
        for fd in fds:
            if fd not in keep:
                with contextlib.suppress(OSError):
                    os.close(fd)

    def _stop_gracefully(self, w: Worker, deadline: float | None) -> None:
        w.state = WorkerState.STOPPING
        w.kill_at = deadline
        self._send(w, {"op": "stop", "grace": True})
        self._kill(w, signal.SIGUSR1)

    def _kill(self, w: Worker, signum: int) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(w.pid, signum)

    def _send(self, w: Worker, msg: dict[str, Any]) -> bool:
        if not w.channel_open:
            return False
        try:
            control.send(w.channel, msg)
        except (OSError, control.ChannelError) as e:
            # Never block on a worker: a stop is also signalled, and state messages are
            # re-sent whole by whoever changes state next.
            log.warning("Message to worker (%d) dropped: %s", w.pid, e)
            return False
        return True

    def _read_channel(self, w: Worker) -> None:
        while w.channel_open:
            try:
                msg = control.recv(w.channel)
            except BlockingIOError:
                return
            except control.ChannelError as e:
                log.warning("Worker (%d): %s", w.pid, e)
                continue
            except OSError:
                msg = None
            if msg is None:  # the worker is exiting; reaping will tell how
                self._close_channel(w)
                return
            w.last_message = msg
            if msg.get("op") == "ready":
                self._on_ready(w)
            if self.on_message is not None:
                self.on_message(w, msg)
            if self.control is not None:
                self.control.on_message(w.pid, msg)

    def _close_channel(self, w: Worker) -> None:
        if w.channel_open:
            w.channel_open = False
            if self._loop is not None and not self._loop.is_closed():
                with contextlib.suppress(ValueError, OSError):
                    self._loop.remove_reader(w.channel.fileno())
        w.channel.close()

    def _reap(self) -> None:
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            w = self.workers.pop(pid, None)
            if w is None:
                continue
            self._read_channel(w)  # its last words (a final counters snapshot)
            self._close_channel(w)
            self._reclaim(w)
            if self.control is not None:
                self.control.worker_exited(pid)
            how = describe_exit(status)
            now = self.clock()
            p = self.pending
            if p is not None and w.generation == p.generation and w.state is WorkerState.RUNNING:
                when = "after it was ready" if w.ready else "before it was ready"
                self._fail_reload(f"new worker ({pid}) exited {when} ({how})")
            elif (
                w.state is WorkerState.RUNNING
                and w.generation == self.generation
                and not self.stopping
            ):
                log.error("Current worker (%d) exited unexpectedly (%s); replacing it", pid, how)
                self._schedule_restart(w.slot, now, lived=now - w.started)
            else:
                log.info("Worker (%d) of generation %d exited (%s)", pid, w.generation, how)
            self._close_unused_listeners()

    def _reclaim(self, w: Worker) -> None:
        """Give back the shared maxconn slots a dead worker held (a killed worker
        could not), before a replacement starts in its slot; let a generation's
        budgets go with its last worker."""
        budgets = self._budgets.get(w.generation)
        if budgets is None:
            return
        held = budgets.reclaim(w.slot)
        if held:
            log.warning("Worker (%d) exited holding %d server slot(s): given back", w.pid, held)
        live = {x.generation for x in self.workers.values()}
        live |= {self.generation} | ({self.pending.generation} if self.pending else set())
        for gen in [g for g in self._budgets if g not in live]:
            b = self._budgets.pop(gen)
            if b is not None:
                b.close()

    def _schedule_restart(self, slot: int, now: float, lived: float) -> None:
        h = self._history.setdefault(slot, _SlotHistory())
        if lived >= STABLE_AFTER:
            h.backoff = 0.0
        else:
            h.backoff = min(max(RESTART_BACKOFF_MIN, h.backoff * 2), RESTART_BACKOFF_MAX)
        h.restarts += 1
        self._restarts.append(_Restart(now + h.backoff, slot))

    def _restart_due(self, now: float) -> None:
        if self.stopping:
            return
        due = [r for r in self._restarts if r.due <= now]
        self._restarts = [r for r in self._restarts if r.due > now]
        for r in due:
            self._spawn(r.slot)

    def _enforce_deadlines(self, now: float) -> None:
        for w in self.workers.values():
            if w.kill_at is not None and now >= w.kill_at:
                why = "hard-stop-after" if w.state is WorkerState.STOPPING else "stop timeout"
                log.warning("Worker (%d) still running after %s: killing it", w.pid, why)
                w.kill_at = None
                self._kill(w, signal.SIGKILL)

    def _timeout(self, now: float) -> float | None:
        deadlines = [w.kill_at for w in self.workers.values() if w.kill_at is not None]
        if not self.stopping:
            deadlines += [r.due for r in self._restarts]
        if self.pending is not None:
            deadlines.append(self.pending.deadline)
        if not deadlines:
            return None
        return max(0.0, min(deadlines) - now)

    def _hard_stop_deadline(self) -> float | None:
        # The new configuration's value applies: an operator adding hard-stop-after to
        # bound piling-up old workers wants it to act on this very reload.
        after = self.config.global_.hard_stop_after
        return None if after is None else self.clock() + after

    def _close_unused_listeners(self) -> None:
        keep = {s.fileno() for s in self.current.values()}
        if self.pending is not None:
            keep |= {s.fileno() for s in self.pending.current.values()}
        for w in self.workers.values():
            keep |= w.listener_fds
        held = self.listeners.fds()
        if held - keep:
            closed = self.listeners.close_except_fds(keep)
            for family, (host, port) in closed:
                name = f"[{host}]" if family == socket.AF_INET6 else host
                log.info("Listener %s:%d closed: no longer in the configuration", name, port)

    def _shutdown(self) -> None:
        signal.set_wakeup_fd(-1)
        for signum, handler in self._old_handlers.items():
            signal.signal(signum, handler)
        for w in self.workers.values():
            self._close_channel(w)
        self.listeners.close_all()
        loop = self._loop
        if loop is not None and not loop.is_closed():
            if self.control is not None:
                with contextlib.suppress(Exception):
                    loop.run_until_complete(self.control.close())
            if self._timer is not None:
                self._timer.cancel()
            with contextlib.suppress(ValueError, OSError):
                loop.remove_reader(self._wake_r)
            loop.close()
        for fd in (self._wake_r, self._wake_w):
            with contextlib.suppress(OSError):
                os.close(fd)

    def _files(self) -> str:
        return ", ".join(self.files)


def _max_fd() -> int:
    import resource

    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    return soft if 0 < soft < 1 << 20 else 4096


def _die_with_parent(master_pid: int) -> None:
    """Have the kernel send SIGUSR1 (graceful stop) to this worker if the master dies,
    so a killed master does not leave orphans holding its ports forever."""
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, int(signal.SIGUSR1), 0, 0, 0)
    if os.getppid() != master_pid:  # the master died before prctl took effect
        os.kill(os.getpid(), signal.SIGUSR1)


def _preload_worker() -> None:
    """Import the worker's code in the master, before forking, for two reasons:

    * a new worker then starts serving in milliseconds instead of spending 0.3-0.7 s
      importing in the child while the old generation is already being stopped (on a
      reload the listen backlog would fill and clients wait);
    * after ``setuid`` the interpreter's library may be unreadable to ``user`` (a Python
      under /root, a venv in a 0750 directory), and a lazy import would kill the worker.

    Cheap after the first time (the modules are cached)."""
    import importlib
    import pkgutil

    import lbcore

    for mod in pkgutil.walk_packages(lbcore.__path__, "lbcore."):
        if mod.name.startswith(
            (
                "lbcore.worker",
                "lbcore.proxy",
                "lbcore.balance",
                "lbcore.http",
                "lbcore.logs",
                "lbcore.tls",
                "lbcore.backend",
            )
        ):
            importlib.import_module(mod.name)
    for name in ("uvloop", "encodings.idna", "fcntl"):  # what the worker imports lazily
        with contextlib.suppress(ImportError):
            importlib.import_module(name)


def _drop_privileges(config: Config) -> None:
    """``user``/``group`` from ``global``: workers drop root; the master keeps it so a
    reload can still bind privileged ports."""
    g = config.global_
    if os.geteuid() != 0 or (g.user is None and g.group is None):
        return
    import grp
    import pwd

    if g.group is not None:
        gid = int(g.group) if g.group.isdigit() else grp.getgrnam(g.group).gr_gid
        os.setgroups([])
        os.setgid(gid)
    if g.user is not None:
        uid = int(g.user) if g.user.isdigit() else pwd.getpwnam(g.user).pw_uid
        os.setuid(uid)


class HaproxyStyleFormatter(logging.Formatter):
    """``[NOTICE]   (pid) : message``, as HAProxy's master prints on stderr."""

    LEVELS = {
        logging.DEBUG: "DEBUG",
        logging.INFO: "NOTICE",
        logging.WARNING: "WARNING",
        logging.ERROR: "ALERT",
        logging.CRITICAL: "ALERT",
    }

    def __init__(self, timestamps: bool = False) -> None:
        super().__init__()
        self.timestamps = timestamps

    def format(self, record: logging.LogRecord) -> str:
        level = f"[{self.LEVELS.get(record.levelno, record.levelname)}]"
        line = f"{level:<10} ({record.process}) : {record.getMessage()}"
        if self.timestamps:
            stamp = time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(record.created))
            line = f"{stamp} {line}"
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line
