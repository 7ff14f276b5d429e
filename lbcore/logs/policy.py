"""Which requests a proxy logs, in which format, at which level — decided from the config.

Theory of operation: a worker builds one :class:`LogPolicy` per frontend from the config
model once, then calls :meth:`LogPolicy.decide` with each finished request's record; the
answer is ``None`` (not logged) or the formatted message and its syslog level, which the
worker hands to :class:`lbcore.logs.sender.LogSender`. Pure: no clock, no socket.

The rules are HAProxy's (configuration manual 4.2 and 8.3): ``option dontlognull`` drops
connections on which the client sent nothing; ``option dontlog-normal`` drops requests
without error, timeout, retry, redispatch or 5xx; ``option log-separate-errors`` raises
those abnormal ones from ``info`` to ``err``. Without ``option httplog``/``tcplog`` (or a
``log-format``) a proxy logs nothing per request.
"""

from __future__ import annotations

from dataclasses import dataclass

from lbcore.config.model import Mode, Proxy
from lbcore.logs.format import Context, LogFormat
from lbcore.logs.record import RequestRecord


def is_null(record: RequestRecord) -> bool:
    """A connection on which the client sent nothing (what ``dontlognull`` drops)."""
    return record.bytes_uploaded == 0 and record.request_line is None


@dataclass(frozen=True, slots=True)
class LogPolicy:
    fmt: LogFormat | None
    dontlognull: bool = False
    dontlog_normal: bool = False
    separate_errors: bool = False

    @classmethod
    def for_proxy(
        cls,
        proxy: Proxy,
        ctx: Context | None = None,
        *,
        log_format: str | None = None,
        clf: bool = False,
        dontlog_normal: bool = False,
        separate_errors: bool = False,
    ) -> LogPolicy:
        """From a frontend's model: ``log-format`` wins, then ``option httplog`` (HTTP
        frontends), then ``option tcplog``; none of them means no request logs."""
        o = proxy.options
        fmt: LogFormat | None = None
        if log_format is not None:
            fmt = LogFormat(log_format, ctx)
        elif o.httplog and proxy.mode is Mode.HTTP:
            fmt = LogFormat.httplog(ctx, clf=clf)  # clf: "option httplog clf"
        elif o.tcplog or o.httplog:  # httplog on a TCP frontend falls back to tcplog
            fmt = LogFormat.tcplog(ctx)
        return cls(fmt, o.dontlognull, dontlog_normal, separate_errors)

    def decide(self, record: RequestRecord) -> tuple[str, str] | None:
        """``(message, level)`` to send, or ``None`` when this request is not logged."""
        if self.fmt is None:
            return None
        if self.dontlognull and is_null(record):
            return None
        error = record.is_error
        if self.dontlog_normal and not error:
            return None
        level = "err" if self.separate_errors and error else "info"
        return self.fmt.render(record), level
