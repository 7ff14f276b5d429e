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


#: ``str(n)`` for -1 <= n < 1023 (-1 is the last item): most numbers in a line are small
#: timers and counters, and indexing this costs half what converting an int does. Used as
#: ``_N[n] if -1 <= n < _NMAX else n``.
_N = (*map(str, range(1023)), "-1")
_NMAX = 1023
#: ``f"{n:03d}"`` for the milliseconds of a date.
_MS = tuple(f"{n:03d}" for n in range(1000))


class _Clock:
    """``dd/Mmm/yyyy:hh:mm:ss.mmm`` for an epoch time: the day part is computed once per
    second, and the whole date again only when the millisecond changes."""

    __slots__ = ("_date", "_day", "_msec", "_sec", "tz")

    def __init__(self, tz: _dt.tzinfo | None) -> None:
        self.tz = tz
        self._sec = -1
        self._day = ""
        self._msec = -1
        self._date = ""

    def date_ms(self, ts: float) -> str:
        msec = round(ts * 1_000_000) // 1000  # rounded to the µs first, as format.date_ms
        if msec == self._msec:
            return self._date
        sec = msec // 1000
        if sec != self._sec:
            self._day = _second(sec, self.tz)[0]
            self._sec = sec
        self._msec = msec
        self._date = date = self._day + "." + _MS[msec % 1000]
        return date


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
        n, m = _N, _NMAX
        # three f-strings of at most 30 parts each: CPython builds a longer one through a
        # list and str.join (one LIST_APPEND per part), a shorter one on the stack
        timers = (
            f"{n[t_request] if -1 <= t_request < m else t_request}/"
            f"{n[t_queue] if -1 <= t_queue < m else t_queue}/"
            f"{n[t_connect] if -1 <= t_connect < m else t_connect}/"
            f"{n[t_response] if -1 <= t_response < m else t_response}/"
            f"{plus}{n[t_active] if -1 <= t_active < m else t_active} "
            f"{n[status] if -1 <= status < m else status} "
            f"{plus}{n[bytes_read] if -1 <= bytes_read < m else bytes_read}"
        )
        counts = (
            f"{n[actconn] if -1 <= actconn < m else actconn}/"
            f"{n[feconn] if -1 <= feconn < m else feconn}/"
            f"{n[beconn] if -1 <= beconn < m else beconn}/"
            f"{n[srv_conn] if -1 <= srv_conn < m else srv_conn}/"
            f"{'+' if redispatched else ''}{n[retries] if -1 <= retries < m else retries} "
            f"{n[srv_queue] if -1 <= srv_queue < m else srv_queue}/"
            f"{n[backend_queue] if -1 <= backend_queue < m else backend_queue}"
        )
        return (
            f"{client_ip or '-'}:{client_port} [{self.date_ms(request_ts)}] "
            f"{frontend + '~' if ssl else frontend} {backend or '-'}/{server or '-'} "
            f"{timers} {request_cookie or '-'} {response_cookie or '-'} "
            f"{termination}{cookie_client}{cookie_server} {counts} "
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
        n, m = _N, _NMAX
        head = (  # two f-strings of at most 30 parts (see HttpLogLine)
            f"{client_ip or '-'}:{client_port} [{self.date_ms(accept_ts)}] "
            f"{frontend + '~' if ssl else frontend} {backend or '-'}/{server or '-'} "
            f"{n[t_queue] if -1 <= t_queue < m else t_queue}/"
            f"{n[t_connect] if -1 <= t_connect < m else t_connect}/"
            f"{plus}{n[t_total] if -1 <= t_total < m else t_total} "
            f"{plus}{n[bytes_read] if -1 <= bytes_read < m else bytes_read} {termination} "
        )
        return (
            f"{head}{n[actconn] if -1 <= actconn < m else actconn}/"
            f"{n[feconn] if -1 <= feconn < m else feconn}/"
            f"{n[beconn] if -1 <= beconn < m else beconn}/"
            f"{n[srv_conn] if -1 <= srv_conn < m else srv_conn}/"
            f"{'+' if redispatched else ''}{n[retries] if -1 <= retries < m else retries} "
            f"{n[srv_queue] if -1 <= srv_queue < m else srv_queue}/"
            f"{n[backend_queue] if -1 <= backend_queue < m else backend_queue}"
        )


def for_format(source: str, ctx: Context | None = None) -> HttpLogLine | TcpLogLine | None:
    """The hand-written renderer of a format whose text is exactly a default one, else None."""
    tz = ctx.tz if ctx is not None else None
    if source == HTTPLOG:
        return HttpLogLine(tz)
    if source == TCPLOG:
        return TcpLogLine(tz)
    return None
