"""Per-request log lines from the proxy adapters: ``option httplog`` / ``option tcplog`` /
``log-format``, with the frontend's captures and ``option log-separate-errors``.

Theory of operation: a frontend that has ``log`` targets and ``option httplog`` (or
``tcplog``, or a ``log-format``) gets an ``AccessLog``. The adapters keep a few
monotonic timestamps on the connection while a request goes through (only when the
frontend logs: a frontend without logging pays one attribute test per request) and, at
the end, ``Timing`` turns them into the ``RequestRecord`` that ``lbcore.logs`` formats
— HAProxy's timers (configuration manual 8.4) in milliseconds, -1 for a phase never
reached — and the sender sends the datagram (``lbcore.logs.sender``).

Senders are shared by frontends logging to the same targets, so a worker opens one
socket per distinct ``log`` line, not one per frontend.
"""

from __future__ import annotations

import os
import socket
import time
from typing import TYPE_CHECKING, Any

from lbcore.config.model import Config, LogTarget, Mode, Proxy
from lbcore.logs.record import is_abnormal

if TYPE_CHECKING:
    from lbcore.logs.capture import Captures
    from lbcore.logs.fast import HttpLogLine, TcpLogLine
    from lbcore.logs.format import LogFormat
    from lbcore.logs.record import RequestRecord
    from lbcore.logs.sender import LogSender, TargetSpec

# The formatter and sender are imported only when a frontend logs: a worker starts
# (and a reload completes) faster without them.


def _spec(t: LogTarget) -> TargetSpec:
    from lbcore.logs.sender import TargetSpec

    return TargetSpec(
        address=t.address,
        facility=t.facility,
        level=t.level,
        minlevel=t.minlevel,
        length=t.length,
        format=t.format,
    )


class AccessLog:
    """One frontend's request log: a compiled format and the sender of its targets."""

    __slots__ = (
        "captures",
        "count",
        "dontlognull",
        "format",
        "httplog",
        "local_addr",
        "sender",
        "separate_errors",
        "tcplog",
    )

    def __init__(
        self,
        fmt: LogFormat,
        sender: LogSender,
        dontlognull: bool,
        separate_errors: bool = False,
        captures: Captures | None = None,
    ) -> None:
        self.format = fmt
        self.sender = sender
        self.dontlognull = dontlognull
        self.separate_errors = separate_errors  # option log-separate-errors
        self.captures = captures  # None: the frontend captures nothing
        self.count = 0  # lines logged (%lc; lbcore's %rt counts the same, per frontend)
        #: the format reads %fi/%fp: the adapter notes each connection's local address
        self.local_addr = not fmt.variables.isdisjoint(("fi", "fp"))
        #: the format is exactly ``option httplog``'s (``tcplog``'s): the HTTP (TCP)
        #: adapter renders its line from its own values with this (``lbcore.logs.fast``),
        #: without a record
        from lbcore.logs.fast import HttpLogLine, TcpLogLine, for_format

        fast = for_format(fmt.source, fmt.context)
        self.httplog: HttpLogLine | None = fast if isinstance(fast, HttpLogLine) else None
        self.tcplog: TcpLogLine | None = fast if isinstance(fast, TcpLogLine) else None

    def emit(self, record: RequestRecord, now: float = -1.0) -> None:
        """Send a record's line. ``now``: the event loop's clock as the caller read it (see
        :meth:`send`); without it the wall clock is read for this line."""
        self.count += 1
        record.log_counter = record.request_counter = self.count
        level = "err" if self.separate_errors and record.is_error else "info"
        if now >= 0.0:
            self.sender.log_at(self.format.render(record), level, now)
        else:
            self.sender.log(self.format.render(record), level, time.time())

    def send(
        self,
        line: bytes,
        term: str,
        status: int,
        retries: int,
        redispatched: bool,
        now: float,
    ) -> None:
        """Send a line rendered by a fast renderer (as bytes): ``emit`` without the record (the
        arguments are what :attr:`RequestRecord.is_error` reads). ``now``: the event loop's
        clock as the caller read it, from which the sender tells the second of the syslog
        header without reading the wall clock per line (``LogSender.log_at``)."""
        self.count += 1
        level = "info"
        if self.separate_errors and is_abnormal(term, status, retries, redispatched):
            level = "err"
        self.sender.send_at(line, level, now)


class AccessLogs:
    """Builds the ``AccessLog`` of each frontend of a config, sharing senders."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.senders: dict[tuple[TargetSpec, ...], LogSender] = {}

    def for_frontend(self, proxy: Proxy) -> AccessLog | None:
        opts = proxy.options
        if not (opts.httplog or opts.tcplog or proxy.log_format is not None):
            return None
        targets: list[LogTarget] = []
        for t in proxy.logs:
            targets.extend(self.config.global_.logs if t.address == "global" else (t,))
        if not targets:
            return None
        from lbcore.logs.capture import Captures
        from lbcore.logs.format import Context, LogFormat
        from lbcore.logs.sender import LogSender

        specs = tuple(_spec(t) for t in targets)
        sender = self.senders.get(specs)
        if sender is None:
            sender = LogSender.from_specs(list(specs), clock=time.time)
            self.senders[specs] = sender
        ctx = Context(hostname=socket.gethostname(), pid=os.getpid())
        if proxy.log_format is not None:
            fmt = LogFormat(proxy.log_format, ctx)
        elif proxy.mode is Mode.HTTP and opts.httplog:
            fmt = LogFormat.httplog(ctx)
        else:
            fmt = LogFormat.tcplog(ctx)
        captures = Captures.for_proxy(proxy) if proxy.mode is Mode.HTTP else None
        return AccessLog(fmt, sender, opts.dontlognull, opts.log_separate_errors, captures)

    def attach(self, loop: Any) -> None:
        for sender in self.senders.values():
            sender.attach(loop)

    def close(self) -> None:
        for sender in self.senders.values():
            sender.close()


def ms(start: float, end: float) -> int:
    return int((end - start) * 1000)
