"""HAProxy's default ``option httplog`` and ``option tcplog`` lines, rendered straight from
the values a proxy holds, as the bytes that go on the wire — no
:class:`~lbcore.logs.record.RequestRecord`, no generated code, no ``str`` in between.

Theory of operation: nearly every logging frontend uses one of the two default formats, and
for them the general path (fill a 28-field record, run the format's renderer over it, then
frame and encode the text) cost a keep-alive request about as much as parsing it.
:class:`HttpLogLine` and :class:`TcpLogLine` are those two formats written out by hand as
ordinary functions taking the values positionally, and :func:`for_format` hands one out
only when a format's text is exactly the default one; any other ``log-format`` keeps the
general path.

:meth:`HttpLogLine.render` returns the line as ``bytes`` (the sender puts the syslog header
in front, :meth:`lbcore.logs.syslog.Framer.frame_bytes`), built by one ``%`` over bytes
pieces, which mypyc compiles to a single allocation and a copy per piece. What is constant
across lines is kept as bytes: small numbers (a table), the date to the millisecond (rebuilt
when the millisecond changes, its day part when the second does), ``%ft %b/%s`` per
frontend, backend and server, and `` %CC %CS %tsc `` per termination state when nothing is
captured. The request line comes as the wire bytes (``METHOD TARGET HTTP/x.y``) and is
escaped per byte when it holds ``"``, ``#`` or a byte outside 0x20-0x7e (``\\xe9`` is
``#E9``), as HAProxy does. The uncommon shapes (captures, ``logasap``, a redispatch) take
:meth:`HttpLogLine.text`, the same line built as ``str`` then encoded.

The bytes are the general path's ``LogFormat.render(record)`` encoded as the framer encodes
it (UTF-8, surrogateescape), and must stay so: ``tests/unit/logs/test_fast.py`` renders
randomized and edge-case states both ways and compares them. In particular: text fields
write ``-`` when empty (but ``%ft`` is written as is), ``%hr``/``%hs`` write nothing (not
even their separator) without captures, the request line is escaped then quoted, and the
date is ``%tr`` (httplog, the request's first byte) or ``%t`` (tcplog, the accept), each in
the host's local time unless the context names a zone.

Pure: times are arguments.
"""

from __future__ import annotations

import datetime as _dt
from typing import Final

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
#: The same as bytes (``_B[n] if -1 <= n < _NMAX else b"%d" % n``), and followed by the
#: separator that comes after a number in a line (``_BS``: ``/``, ``_BSP``: a space): one
#: piece for the two, where each piece of the line costs a copy.
_B: Final[tuple[bytes, ...]] = (*(b"%d" % i for i in range(1023)), b"-1")
_BS: Final[tuple[bytes, ...]] = tuple(n + b"/" for n in _B)
_BSP: Final[tuple[bytes, ...]] = tuple(n + b" " for n in _B)
#: ``.mmm`` of a date, as bytes.
_MSB: Final[tuple[bytes, ...]] = tuple(b".%03d" % n for n in range(1000))
#: A translation that changes exactly the bytes the request line escapes (``"``, ``#``,
#: below 0x20, from 0x7f): ``line.translate(_URL_CHECK) == line`` when none is there.
_URL_CHECK: Final = bytes(
    b if 32 <= b < 127 and b not in b'"#' else (b + 1) % 256 for b in range(256)
)
_URL_ESC: Final[tuple[bytes, ...]] = tuple(
    bytes([b]) if 32 <= b < 127 and b not in b'"#' else b"#%02X" % b for b in range(256)
)
_BADREQ: Final = BADREQ.encode()
#: Past this many entries a cache of pieces is emptied (names and states are few; this only
#: bounds a pathological configuration).
_CACHE_MAX: Final = 256
#: The same for client addresses, which are many more.
_IPS_MAX: Final = 4096
#: ``ts * 1e6 + 0.5`` is exact below 2**52 µs (year 2112), where it rounds as ``round``
#: would to the millisecond; above, ``round`` itself.
_EXACT_US: Final = 4503599627370496.0


def _text(s: str) -> bytes:
    """A text field as the framer encodes the general path's line."""
    return s.encode("utf-8", "surrogateescape")


def url_bytes(line: bytes | None) -> bytes:
    """``%{+Q}r`` without its quotes, from the request line's wire bytes: each byte HAProxy
    escapes written ``#XX``; ``<BADREQ>`` without a request line."""
    if not line:
        return _BADREQ
    if line.translate(_URL_CHECK) == line:
        return line
    return b"".join([_URL_ESC[b] for b in line])


def _us(ts: float) -> int:
    """``round(ts * 1e6)``, the µs the general path rounds a date to (``format._split_ms``):
    without a call to ``round`` in the common range. The two differ at most on an exact
    half, where ``round`` goes to the even neighbour; only an odd neighbour ends a
    millisecond, so the millisecond is the same."""
    us = ts * 1_000_000.0
    if 0.0 <= us < _EXACT_US:
        return int(us + 0.5)
    return round(us)


class _Clock:
    """`` [dd/Mmm/yyyy:hh:mm:ss.mmm] `` for an epoch time, as bytes: the day part is
    computed once per second, and the whole piece again only when the millisecond changes.
    Also the caches of the pieces that are constant per frontend, backend and server."""

    __slots__ = (
        "_be",
        "_date",
        "_day",
        "_fe",
        "_ips",
        "_msec",
        "_names",
        "_sec",
        "_servers",
        "_ssl",
        "_tsc",
        "tz",
    )

    def __init__(self, tz: _dt.tzinfo | None) -> None:
        self.tz = tz
        self._sec = -1
        self._day = b""
        self._msec = -1
        self._date = b""
        #: (frontend, ssl, backend) -> server -> b"ft b/s "
        self._names: dict[tuple[str, bool, str], dict[str, bytes]] = {}
        self._fe = ""
        self._ssl = False
        self._be = ""
        self._servers: dict[str, bytes] = {}
        #: termination state -> b" - - tsc " (httplog, nothing captured, no cookie flags)
        self._tsc: dict[str, bytes] = {}
        #: client address -> b"ci:"
        self._ips: dict[str, bytes] = {}

    def date_ms(self, ts: float) -> str:
        """``dd/Mmm/yyyy:hh:mm:ss.mmm`` as text (the uncommon lines)."""
        return self.date_piece(ts)[2:-2].decode("ascii")

    def date_piece(self, ts: float) -> bytes:
        msec = _us(ts) // 1000
        if msec == self._msec:
            return self._date
        sec = msec // 1000
        if sec != self._sec:
            self._day = b" [" + _second(sec, self.tz)[0].encode("ascii")
            self._sec = sec
        self._msec = msec
        self._date = date = b"%s%s] " % (self._day, _MSB[msec % 1000])
        return date

    def client(self, ip: str) -> bytes:
        """``%ci:`` as bytes, kept per address."""
        piece = self._ips.get(ip)
        if piece is None:
            piece = _text(ip or "-") + b":"
            if len(self._ips) >= _IPS_MAX:
                self._ips.clear()
            self._ips[ip] = piece
        return piece

    def names(self, frontend: str, ssl: bool, backend: str, server: str) -> bytes:
        """``%ft %b/%s `` as bytes, kept per frontend, TLS or not, backend and server."""
        if frontend is not self._fe or backend is not self._be or ssl != self._ssl:
            key = (frontend, ssl, backend)
            servers = self._names.get(key)
            if servers is None:
                if len(self._names) >= _CACHE_MAX:
                    self._names.clear()
                servers = self._names[key] = {}
            self._servers = servers
            self._fe, self._ssl, self._be = frontend, ssl, backend
        piece = self._servers.get(server)
        if piece is None:
            ft = frontend + "~" if ssl else frontend
            piece = _text(f"{ft} {backend or '-'}/{server or '-'} ")
            if len(self._servers) >= _CACHE_MAX:
                self._servers.clear()
            self._servers[server] = piece
        return piece


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
        request_line: bytes | None,
        logasap: bool = False,
    ) -> bytes:
        """The line as bytes; ``request_line`` as received (``None``: no request)."""
        if (
            logasap
            or redispatched
            or request_headers
            or response_headers
            or request_cookie is not None
            or response_cookie is not None
        ):
            return _text(
                self.text(
                    client_ip,
                    client_port,
                    request_ts,
                    frontend,
                    ssl,
                    backend,
                    server,
                    t_request,
                    t_queue,
                    t_connect,
                    t_response,
                    t_active,
                    status,
                    bytes_read,
                    request_cookie,
                    response_cookie,
                    termination,
                    cookie_client,
                    cookie_server,
                    actconn,
                    feconn,
                    beconn,
                    srv_conn,
                    retries,
                    redispatched,
                    srv_queue,
                    backend_queue,
                    request_headers,
                    response_headers,
                    _wire_text(request_line),
                    logasap,
                )
            )
        tsc = None
        if cookie_client == "-" and cookie_server == "-":
            tsc = self._tsc.get(termination)
        if tsc is None:
            tsc = _text(f" - - {termination}{cookie_client}{cookie_server} ")
            if cookie_client == "-" and cookie_server == "-":
                if len(self._tsc) >= _CACHE_MAX:
                    self._tsc.clear()
                self._tsc[termination] = tsc
        b, bs, bsp, m = _B, _BS, _BSP, _NMAX
        return b'%s%d%s%s%s%s%s%s%s%s%s%s%s%s%s%s%s%s%s "%s"' % (
            self.client(client_ip),
            client_port,
            self.date_piece(request_ts),
            self.names(frontend, ssl, backend, server),
            bs[t_request] if -1 <= t_request < m else b"%d/" % t_request,
            bs[t_queue] if -1 <= t_queue < m else b"%d/" % t_queue,
            bs[t_connect] if -1 <= t_connect < m else b"%d/" % t_connect,
            bs[t_response] if -1 <= t_response < m else b"%d/" % t_response,
            bsp[t_active] if -1 <= t_active < m else b"%d " % t_active,
            bsp[status] if -1 <= status < m else b"%d " % status,
            b[bytes_read] if -1 <= bytes_read < m else b"%d" % bytes_read,
            tsc,
            bs[actconn] if -1 <= actconn < m else b"%d/" % actconn,
            bs[feconn] if -1 <= feconn < m else b"%d/" % feconn,
            bs[beconn] if -1 <= beconn < m else b"%d/" % beconn,
            bs[srv_conn] if -1 <= srv_conn < m else b"%d/" % srv_conn,
            bsp[retries] if -1 <= retries < m else b"%d " % retries,
            bs[srv_queue] if -1 <= srv_queue < m else b"%d/" % srv_queue,
            b[backend_queue] if -1 <= backend_queue < m else b"%d" % backend_queue,
            url_bytes(request_line),
        )

    def text(
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
        """:meth:`render` as text, any state (the request line latin-1 decoded)."""
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


def _wire_text(line: bytes | None) -> str | None:
    return line.decode("latin-1") if line is not None else None


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
    ) -> bytes:
        """The line as bytes."""
        plus = b"+" if logasap else b""
        b, bs, bsp, m = _B, _BS, _BSP, _NMAX
        return b"%s%d%s%s%s%s%s%s%s%s %s %s%s%s%s%s%s%s%s" % (
            self.client(client_ip),
            client_port,
            self.date_piece(accept_ts),
            self.names(frontend, ssl, backend, server),
            bs[t_queue] if -1 <= t_queue < m else b"%d/" % t_queue,
            bs[t_connect] if -1 <= t_connect < m else b"%d/" % t_connect,
            plus,
            bsp[t_total] if -1 <= t_total < m else b"%d " % t_total,
            plus,
            b[bytes_read] if -1 <= bytes_read < m else b"%d" % bytes_read,
            _text(termination),
            bs[actconn] if -1 <= actconn < m else b"%d/" % actconn,
            bs[feconn] if -1 <= feconn < m else b"%d/" % feconn,
            bs[beconn] if -1 <= beconn < m else b"%d/" % beconn,
            bs[srv_conn] if -1 <= srv_conn < m else b"%d/" % srv_conn,
            b"+" if redispatched else b"",
            bsp[retries] if -1 <= retries < m else b"%d " % retries,
            bs[srv_queue] if -1 <= srv_queue < m else b"%d/" % srv_queue,
            b[backend_queue] if -1 <= backend_queue < m else b"%d" % backend_queue,
        )


def for_format(source: str, ctx: Context | None = None) -> HttpLogLine | TcpLogLine | None:
    """The hand-written renderer of a format whose text is exactly a default one, else None."""
    tz = ctx.tz if ctx is not None else None
    if source == HTTPLOG:
        return HttpLogLine(tz)
    if source == TCPLOG:
        return TcpLogLine(tz)
    return None
