"""HAProxy's default ``option httplog`` and ``option tcplog`` lines, rendered straight from
the values a proxy holds — no :class:`~lbcore.logs.record.RequestRecord`, no generated code.

Theory of operation: nearly every logging frontend uses one of the two default formats, and
for them the general path (fill a 28-field record, then run the format's renderer over it)
cost a keep-alive request about as much as parsing it. :class:`HttpLogLine` and
:class:`TcpLogLine` are those two formats written out by hand as ordinary functions taking
the values positionally, so a worker pays one call and one string build per line, and the
module compiles with mypyc (the general path's renderer is code generated at runtime, which
mypyc cannot compile). :func:`for_format` hands one out only when a format's text is exactly
the default one; any other ``log-format`` keeps the general path.

The bytes are the general path's, and must stay so: ``tests/unit/logs/test_fast.py`` renders
randomized and edge-case states both ways and compares them. In particular: text fields
write ``-`` when empty (but ``%ft`` is written as is), ``%hr``/``%hs`` write nothing (not
even their separator) without captures, the request line is escaped then quoted, and the
date is ``%tr`` (httplog, the request's first byte) or ``%t`` (tcplog, the accept), each in
the host's local time unless the context names a zone. The day-and-time part of a date is
computed once per second, as the general path's cache does.

Pure: times are arguments.
"""

from __future__ import annotations

import datetime as _dt

from lbcore.logs.format import HTTPLOG, TCPLOG, Context, _second, encode_header, encode_url
from lbcore.logs.record import BADREQ


def url_field(line: str | None) -> str:
    """``%{+Q}r``: the request line escaped (``"``, ``#``, non-printables) and quoted."""
    if not line:
        return '"' + BADREQ + '"'
    if line.isascii() and line.isprintable() and '"' not in line and "#" not in line:
        return '"' + line + '"'
    return '"' + encode_url(line) + '"'


def headers_field(values: tuple[str, ...]) -> str:
    """``%hr``/``%hs`` and the separator after it: ``{a|b} ``, or nothing at all."""
    if not values:
        return ""
    return "{" + "|".join([encode_header(v) for v in values]) + "} "


class _Clock:
    """``dd/Mmm/yyyy:hh:mm:ss.mmm`` for an epoch time, the day part cached per second."""

    __slots__ = ("_day", "_sec", "tz")

    def __init__(self, tz: _dt.tzinfo | None) -> None:
        self.tz = tz
        self._sec = -1
        self._day = ""

    def date_ms(self, ts: float) -> str:
        us = round(ts * 1_000_000)
        sec = us // 1_000_000
        if sec != self._sec:
            self._day = _second(sec, self.tz)[0]
            self._sec = sec
        return f"{self._day}.{(us // 1000) % 1000:03d}"


class HttpLogLine(_Clock):
    """``option httplog``: ``%ci:%cp [%tr] %ft %b/%s %TR/%Tw/%Tc/%Tr/%Ta %ST %B %CC %CS
    %tsc %ac/%fc/%bc/%sc/%rc %sq/%bq %hr %hs %{+Q}r``."""

    __slots__ = ()

    def render(
        self,
        client_ip: str,
        client_port: int,
        request_ts: float,
        frontend: str,
        ssl: bool,
        backend: str,
        server: str,
        t_request: int,
        t_queue: int,
        t_connect: int,
        t_response: int,
        t_active: int,
        status: int,
        bytes_read: int,
        request_cookie: str | None,
        response_cookie: str | None,
        termination: str,
        cookie_client: str,
        cookie_server: str,
        actconn: int,
        feconn: int,
        beconn: int,
        srv_conn: int,
        retries: int,
        redispatched: bool,
        srv_queue: int,
        backend_queue: int,
        request_headers: tuple[str, ...],
        response_headers: tuple[str, ...],
        request_line: str | None,
        logasap: bool = False,
    ) -> str:
        plus = "+" if logasap else ""
        return (
            f"{client_ip or '-'}:{client_port} [{self.date_ms(request_ts)}] "
            f"{frontend + '~' if ssl else frontend} {backend or '-'}/{server or '-'} "
            f"{t_request}/{t_queue}/{t_connect}/{t_response}/{plus}{t_active} "
            f"{status} {plus}{bytes_read} {request_cookie or '-'} {response_cookie or '-'} "
            f"{termination}{cookie_client}{cookie_server} "
            f"{actconn}/{feconn}/{beconn}/{srv_conn}/{'+' if redispatched else ''}{retries} "
            f"{srv_queue}/{backend_queue} "
            f"{headers_field(request_headers) if request_headers else ''}"
            f"{headers_field(response_headers) if response_headers else ''}"
            f"{url_field(request_line)}"
        )


class TcpLogLine(_Clock):
    """``option tcplog``: ``%ci:%cp [%t] %ft %b/%s %Tw/%Tc/%Tt %B %ts
    %ac/%fc/%bc/%sc/%rc %sq/%bq``."""

    __slots__ = ()

    def render(
        self,
        client_ip: str,
        client_port: int,
        accept_ts: float,
        frontend: str,
        ssl: bool,
        backend: str,
        server: str,
        t_queue: int,
        t_connect: int,
        t_total: int,
        bytes_read: int,
        termination: str,
        actconn: int,
        feconn: int,
        beconn: int,
        srv_conn: int,
        retries: int,
        redispatched: bool,
        srv_queue: int,
        backend_queue: int,
        logasap: bool = False,
    ) -> str:
        plus = "+" if logasap else ""
        return (
            f"{client_ip or '-'}:{client_port} [{self.date_ms(accept_ts)}] "
            f"{frontend + '~' if ssl else frontend} {backend or '-'}/{server or '-'} "
            f"{t_queue}/{t_connect}/{plus}{t_total} {plus}{bytes_read} {termination} "
            f"{actconn}/{feconn}/{beconn}/{srv_conn}/{'+' if redispatched else ''}{retries} "
            f"{srv_queue}/{backend_queue}"
        )


def for_format(source: str, ctx: Context | None = None) -> HttpLogLine | TcpLogLine | None:
    """The hand-written renderer of a format whose text is exactly a default one, else None."""
    tz = ctx.tz if ctx is not None else None
    if source == HTTPLOG:
        return HttpLogLine(tz)
    if source == TCPLOG:
        return TcpLogLine(tz)
    return None
