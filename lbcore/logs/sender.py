"""Where log lines go: UDP syslog, a unix datagram socket, stdout/stderr, or a file.

Theory of operation: the proxy calls :meth:`LogSender.log` with a formatted message (or
:meth:`LogSender.log_at` with the event loop's clock, already read); the sender frames it
once per target (each ``log`` line has its own syslog format, facility, level and length)
and hands it on without ever waiting:

- datagram targets (UDP ``ADDR:PORT``, unix ``/dev/log``) are sent at once, one ``send``
  (connected UDP) or ``sendto`` on a non-blocking socket: a datagram costs one system call
  however it is batched, so queueing it for the end of the loop turn only added a list, a
  ``call_soon`` and a flush per line. A datagram the kernel refuses (full buffer, no
  listener) is dropped and counted, as HAProxy does;
- stream targets (``stdout``, ``stderr``, and ``file@PATH``) are written by one background
  thread each, through a bounded queue: their lines are queued and handed over in one batch
  per event-loop iteration (one ``loop.call_soon`` when the queue goes from empty to not
  empty), so a burst of requests costs the thread one wake-up; a slow pipe or disk never
  stalls the event loop, and lines that do not fit in the queue are dropped and counted.

Each target sees its lines in the order they were logged.

The wall clock of the syslog header: ``log`` reads it (``time.time``) per message unless
given; ``log_at`` takes the loop's monotonic ``now`` instead and, when every target's header
changes once per second at most (``local``, ``rfc3164``, ``short``, ``priority``, ``raw``),
reads the wall clock once per second: the reading says which second it is and, from the
monotonic clock, when that second ends.

``file@PATH`` is an lbcore extension (HAProxy has no file target): for hosts without a
syslog daemon. It appends one line per message with the same framing as the socket
targets, reopens the file when it is rotated (renamed or removed), and is ``O_APPEND`` so
several workers can share it.

Counters (``sent``, ``dropped``) are per target, for the stats page and ``show info``.
"""

from __future__ import annotations

import asyncio
import os
import queue
import socket
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import BinaryIO, Final

from lbcore.config.model import Config, LogTarget, Proxy
from lbcore.logs.syslog import LEVELS, PER_SECOND_FORMATS, Framer

_write: Final = os.write

#: Datagrams waiting for the next flush, all targets together, before drops start.
MAX_PENDING = 10_000
#: Lines queued per stream target before drops start.
MAX_STREAM_QUEUE = 10_000


@dataclass(frozen=True, slots=True)
class TargetSpec:
    """One ``log`` line: where, and how each message is framed for it."""

    address: str
    facility: str = "local0"
    level: str | None = None  # the most verbose severity sent; None = all
    minlevel: str | None = None  # messages are raised to at least this severity
    length: int = 1024
    format: str = "local"

    @classmethod
    def from_model(cls, target: LogTarget) -> TargetSpec:
        """From a parsed ``log`` line. The parser records an absent ``format`` as
        ``rfc3164``; HAProxy's default is ``local`` (no host name), which is what a line
        without ``format`` must produce, so ``rfc3164`` is read as ``local`` here."""
        fmt = "local" if target.format == "rfc3164" else target.format
        return cls(
            address=target.address,
            facility=target.facility,
            level=target.level,
            minlevel=target.minlevel,
            length=target.length,
            format=fmt,
        )

    def accepts(self, level: str) -> bool:
        return self.level is None or LEVELS.index(level) <= LEVELS.index(self.level)

    def effective_level(self, level: str) -> str:
        if self.minlevel is not None and LEVELS.index(level) > LEVELS.index(self.minlevel):
            return self.minlevel
        return level


@dataclass
class Counters:
    sent: int = 0
    dropped: int = 0


class Target:
    """A destination; ``send`` and ``write_batch`` never block, and count what they had to
    drop. A ``direct`` target is given each line at once (``send``), the others a loop
    turn's lines together (``write_batch``)."""

    def __init__(self, spec: TargetSpec) -> None:
        self.spec = spec
        self.counters = Counters()
        self.direct = False

    def send(self, data: bytes) -> None:
        self.write_batch([data])

    def write_batch(self, items: list[bytes]) -> None:
        raise NotImplementedError

    def close(self) -> None:
        pass


class DatagramTarget(Target):
    """UDP syslog or a unix datagram socket (``/dev/log``), non-blocking."""

    def __init__(self, spec: TargetSpec) -> None:
        super().__init__(spec)
        self.dest: str | tuple[str, int]
        if spec.address.startswith("/"):
            self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
            self.dest = spec.address
        else:
            # resolved once, here (at startup): a name must not cost a DNS lookup per log
            host, port = parse_inet(spec.address)
            family, _, _, _, addr = socket.getaddrinfo(host, port, type=socket.SOCK_DGRAM)[0]
            self.sock = socket.socket(family, socket.SOCK_DGRAM)
            self.dest = (str(addr[0]), int(addr[1]))
        self.sock.setblocking(False)
        # A UDP target is connected once: ``send`` then skips parsing the address (in
        # Python) and the route lookup (in the kernel) that ``sendto`` pays per line.
        # Not a unix socket: a syslog daemon that restarts binds a new one at the path.
        self.connected = False
        if isinstance(self.dest, tuple):
            try:
                self.sock.connect(self.dest)
                self.connected = True
            except OSError:  # no route yet: address each datagram
                pass
        self.direct = True  # one system call per datagram, batched or not: sent at once
        #: a connected socket's datagrams are ``write(2)``s on its descriptor: the same
        #: system call in the kernel as ``send`` without flags, and ``os.write`` costs a
        #: third fewer instructions than ``socket.send`` (a method looked up, arguments
        #: parsed from a format string, the socket's timeout logic)
        self.fd = self.sock.fileno()

    def send(self, data: bytes) -> None:
        try:
            if self.connected:
                _write(self.fd, data)
            else:
                self.sock.sendto(data, self.dest)
            self.counters.sent += 1
        except OSError:  # EAGAIN (receiver's queue full), no listener, ENOBUFS...
            self.counters.dropped += 1

    def write_batch(self, items: list[bytes]) -> None:
        for data in items:
            self.send(data)

    def close(self) -> None:
        self.connected = False  # never a write to a descriptor number reused since
        self.sock.close()


class StreamTarget(Target):
    """stdout, stderr or ``file@PATH``: a writer thread behind a bounded queue."""

    def __init__(self, spec: TargetSpec, stream: BinaryIO | None = None) -> None:
        super().__init__(spec)
        self.q: queue.Queue[list[bytes] | None] = queue.Queue(MAX_STREAM_QUEUE)
        self.path: str | None = None
        self.stream = stream
        if stream is None:
            if spec.address == "stdout":
                self.stream = sys.stdout.buffer
            elif spec.address == "stderr":
                self.stream = sys.stderr.buffer
            else:
                self.path = spec.address.removeprefix("file@")
                self.stream = self._open()
        self.thread = threading.Thread(target=self._run, name=f"log-{spec.address}", daemon=True)
        self.thread.start()

    def _open(self) -> BinaryIO:
        assert self.path is not None
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
        self._ino = os.fstat(fd).st_ino
        return os.fdopen(fd, "ab", buffering=0)

    def _rotated(self) -> bool:
        assert self.path is not None
        try:
            return os.stat(self.path).st_ino != self._ino
        except FileNotFoundError:
            return True

    def write_batch(self, items: list[bytes]) -> None:
        try:
            self.q.put_nowait(items)
        except queue.Full:
            self.counters.dropped += len(items)

    def _run(self) -> None:
        while True:
            items = self.q.get()
            if items is None:
                return
            batch = [items]
            while True:  # coalesce whatever else is waiting into one write
                try:
                    more = self.q.get_nowait()
                except queue.Empty:
                    break
                if more is None:
                    self._write(batch)
                    return
                batch.append(more)
            self._write(batch)

    def _write(self, batch: list[list[bytes]]) -> None:
        data = b"".join(b"".join(items) for items in batch)
        n = sum(len(items) for items in batch)
        try:
            if self.path is not None and self._rotated():
                assert self.stream is not None
                self.stream.close()
                self.stream = self._open()
            assert self.stream is not None
            self.stream.write(data)
            self.stream.flush()
            self.counters.sent += n
        except OSError:
            self.counters.dropped += n

    def close(self) -> None:
        self.q.put(None)
        self.thread.join(timeout=5)
        if self.path is not None and self.stream is not None:
            self.stream.close()


def specs_for(config: Config, proxy: Proxy | None = None) -> list[TargetSpec]:
    """The targets a proxy's logs go to (``log global`` expands to the global section's
    ``log`` lines), or the global ones for process events when ``proxy`` is None."""
    lines: list[LogTarget] = []
    for t in proxy.logs if proxy is not None else config.global_.logs:
        if t.address == "global":
            lines.extend(config.global_.logs)
        else:
            lines.append(t)
    return [TargetSpec.from_model(t) for t in lines]


def parse_inet(address: str) -> tuple[str, int]:
    """``127.0.0.1:514``, ``udp@host:port``, ``[::1]:514``, ``::1:514`` (as HAProxy and the
    config parser read a bare IPv6 address); port 514 when omitted."""
    for prefix in ("udp@", "udp4@", "udp6@", "ipv4@", "ipv6@"):
        address = address.removeprefix(prefix)
    if address.startswith("["):
        host, _, rest = address[1:].partition("]")
        return host, int(rest.lstrip(":") or 514)
    if ":" in address:  # host:port, or a bare IPv6 address whose last part is the port
        host, _, port = address.rpartition(":")
        return host, int(port)
    return address, 514


def open_target(spec: TargetSpec) -> Target:
    a = spec.address
    if a in ("stdout", "stderr") or a.startswith("file@"):
        return StreamTarget(spec)
    return DatagramTarget(spec)


@dataclass
class LogSender:
    """Frames each message for every target: sends datagrams at once, and hands stream
    targets their lines in batches."""

    targets: list[Target]
    pid: int = field(default_factory=os.getpid)
    tag: str = "haproxy"
    hostname: str | None = None
    clock: Callable[[], float] | None = None  # the loop's wall clock (time.time)
    _pending: list[tuple[Target, bytes]] = field(default_factory=list)
    _scheduled: bool = False
    _loop: asyncio.AbstractEventLoop | None = None
    overflow: int = 0
    _routes: dict[str, list[tuple[Target, Framer]]] = field(default_factory=dict)
    _info: list[tuple[Target, Framer]] | None = None  # _routes["info"], the common level
    #: a target's header has the time below the second: ``log_at`` reads the clock per line
    _exact: bool = False
    _wall: float = 0.0  # ``log_at``: a wall-clock reading in the current second...
    _wall_until: float = -1.0  # ... which ends at this monotonic time

    @classmethod
    def from_specs(cls, specs: list[TargetSpec], **kw: object) -> LogSender:
        return cls([open_target(s) for s in specs], **kw)  # type: ignore[arg-type]

    def attach(self, loop: asyncio.AbstractEventLoop) -> None:
        """Hand stream targets their lines once per loop iteration instead of at once."""
        self._loop = loop

    def log(self, message: str, level: str = "info", now: float | None = None) -> None:
        if now is None:
            now = self.clock() if self.clock is not None else time.time()
        routes = self._info if level == "info" else self._routes.get(level)
        if routes is None:
            routes = self._route(level)
        self._deliver(routes, message, now)

    def log_at(self, message: str, level: str, now: float) -> None:
        """``log`` from a caller that has read the event loop's monotonic clock (``now``):
        the wall clock is read once per second, not per line, when no target's header
        needs the time below the second (see the module's docstring)."""
        routes = self._info if level == "info" else self._routes.get(level)
        if routes is None:
            routes = self._route(level)
        self._deliver(routes, message, self._wall_at(now))

    def send_at(self, data: bytes, level: str, now: float) -> None:
        """``log_at`` of a message already encoded (``lbcore.logs.fast``'s lines): each
        target's framer puts its header's bytes in front, with no text in between."""
        routes = self._info if level == "info" else self._routes.get(level)
        if routes is None:
            routes = self._route(level)
        wall = self._wall_at(now)
        for t, framer in routes:
            if t.direct:
                t.send(framer.frame_bytes(data, wall))
            else:
                self._queue(t, framer.frame_bytes(data, wall))

    def _wall_at(self, now: float) -> float:
        """The wall clock for the loop's monotonic ``now``: read once per second unless a
        target's header needs the time below the second."""
        if now < self._wall_until and not self._exact:
            return self._wall
        wall = self.clock() if self.clock is not None else time.time()
        self._wall = wall
        self._wall_until = now + (1.0 - wall % 1.0)
        return wall

    def _deliver(self, routes: list[tuple[Target, Framer]], message: str, now: float) -> None:
        for t, framer in routes:
            if t.direct:
                t.send(framer.frame(message, now))
            else:
                self._queue(t, framer.frame(message, now))

    def _queue(self, t: Target, data: bytes) -> None:
        """A stream target's line, handed over at the end of the loop turn."""
        pending = self._pending
        if len(pending) >= MAX_PENDING:
            t.counters.dropped += 1
            self.overflow += 1
            return
        pending.append((t, data))
        if self._loop is None:
            self.flush()
        elif not self._scheduled:  # the first line of this loop turn
            self._scheduled = True
            self._loop.call_soon(self.flush)

    def _route(self, level: str) -> list[tuple[Target, Framer]]:
        """The targets a message of ``level`` goes to, each with the framer of the severity
        it is sent at: decided once per level, not once per message (targets never change;
        ``tag``, ``pid`` and ``hostname`` are read here, at a level's first message)."""
        routes = []
        for t in self.targets:
            spec = t.spec
            if spec.accepts(level):
                framer = Framer(
                    facility=spec.facility,
                    level=spec.effective_level(level),
                    fmt=spec.format,
                    tag=self.tag,
                    pid=self.pid,
                    hostname=self.hostname,
                    maxlen=spec.length,
                )
                routes.append((t, framer))
                if spec.format not in PER_SECOND_FORMATS:
                    self._exact = True
        self._routes[level] = routes
        if level == "info":
            self._info = routes
        return routes

    def flush(self) -> None:
        self._scheduled = False
        if not self._pending:
            return
        pending, self._pending = self._pending, []
        if len(self.targets) == 1:  # the common case: no grouping by target
            self.targets[0].write_batch([data for _t, data in pending])
            return
        by_target: dict[int, tuple[Target, list[bytes]]] = {}
        for t, data in pending:
            by_target.setdefault(id(t), (t, []))[1].append(data)
        for t, items in by_target.values():
            t.write_batch(items)

    def counters(self) -> dict[str, Counters]:
        return {t.spec.address: t.counters for t in self.targets}

    def close(self) -> None:
        self.flush()
        for t in self.targets:
            t.close()
