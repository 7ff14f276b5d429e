"""What happened to one request (or one TCP session): the input of the log formatter.

Theory of operation: the proxy fills one ``RequestRecord`` while a request goes through it
(it is a plain, mutable, slotted dataclass so filling it costs attribute stores only), then
hands it to :class:`lbcore.logs.format.LogFormat`, which turns it into HAProxy's
``httplog``/``tcplog``/``log-format`` line. The record knows nothing about formats; the
formatter knows nothing about sockets. One record type serves both HTTP and TCP: the TCP
format simply reads fewer fields (``Tw/Tc/Tt``, a two-character termination state).

Timers follow HAProxy's names and meaning (configuration manual, section 8.4), all in
milliseconds, ``-1`` meaning "this phase was never reached":

====== ============ ==============================================================
HAProxy attribute   meaning
====== ============ ==============================================================
Th     t_handshake  accept → handshakes (PROXY protocol, TLS) done
Ti     t_idle       handshakes (or previous response) → first byte of the request
TR     t_request    first byte → full request headers received
Tw     t_queue      time spent in queues
Tc     t_connect    time to establish the server connection
Tr     t_response   server connection → full response headers
Ta     t_active     first byte of the request → end of the response (HTTP)
Tt     t_total      accept → close (TCP's and CLF's total time)
====== ============ ==============================================================
"""

from __future__ import annotations

from dataclasses import dataclass

NOSRV = "<NOSRV>"
STATS = "<STATS>"
BADREQ = "<BADREQ>"


@dataclass(slots=True)
class RequestRecord:
    """One request (HTTP) or one session (TCP), as the log line describes it.

    ``termination`` holds the first two characters of the termination state (who ended the
    session and in which phase, e.g. ``"--"``, ``"CD"``, ``"sH"``, ``"SC"``);
    ``cookie_client``/``cookie_server`` the two persistence characters that ``%tsc`` adds
    in HTTP (``"N"``, ``"V"``, ``"I"``, ``"D"`` … or ``"-"``).
    ``captured_request_cookie`` is ``None`` when nothing was captured (logged ``-``);
    otherwise ``"NAME=value"``. ``request_headers``/``response_headers`` are the values of
    the ``capture request|response header`` slots, in declaration order, ``""`` for an
    absent header, and an empty tuple when the frontend declares no capture.
    """

    client_ip: str = "-"
    client_port: int = 0
    accept_ts: float = 0.0  # epoch seconds (with sub-ms precision) of the accept()
    request_ts: float | None = None  # first byte of the request; None → accept + Th + Ti
    frontend: str = "-"
    frontend_ip: str = "-"
    frontend_port: int = 0
    ssl: bool = False  # frontend transport is TLS: "%ft" gets a "~" suffix
    backend: str = "-"
    server: str = NOSRV
    server_ip: str = "-"
    server_port: int = 0
    t_handshake: int = 0
    t_idle: int = 0
    t_request: int = -1
    t_queue: int = -1
    t_connect: int = -1
    t_response: int = -1
    t_active: int = -1
    t_total: int = -1
    status: int = -1
    bytes_read: int = 0  # to the client, headers included
    bytes_uploaded: int = 0  # from the client
    termination: str = "--"
    cookie_client: str = "-"
    cookie_server: str = "-"
    captured_request_cookie: str | None = None
    captured_response_cookie: str | None = None
    actconn: int = 0
    feconn: int = 0
    beconn: int = 0
    srv_conn: int = 0
    retries: int = 0
    redispatched: bool = False  # logged as a "+" before the retry count
    srv_queue: int = 0
    backend_queue: int = 0
    request_headers: tuple[str, ...] = ()
    response_headers: tuple[str, ...] = ()
    request_line: str | None = None  # "GET /x HTTP/1.1"; None → "<BADREQ>"
    logasap: bool = False  # logged before the end: "+" before Ta/Tt and bytes
    unique_id: str | None = None
    request_counter: int = 0
    log_counter: int = 0

    @property
    def t_q(self) -> int:
        """``Tq`` = Th + Ti + TR, or -1 when the request was not received (8.4)."""
        if self.t_request < 0:
            return -1
        return self.t_handshake + self.t_idle + self.t_request

    @property
    def t_data(self) -> int:
        """``Td`` = Tt - (Tq + Tw + Tc + Tr), -1 if any of them is missing."""
        parts = (self.t_total, self.t_q, self.t_queue, self.t_connect, self.t_response)
        if min(parts) < 0:
            return -1
        return self.t_total - sum(parts[1:])

    @property
    def is_error(self) -> bool:
        """What ``option log-separate-errors`` and ``dontlog-normal`` call abnormal (8.3.3):
        as HAProxy 2.6 decides it, an answer made locally (``L``: redirect, stats) is not."""
        return is_abnormal(self.termination, self.status, self.retries, self.redispatched)


def is_abnormal(termination: str, status: int, retries: int, redispatched: bool) -> bool:
    """:attr:`RequestRecord.is_error` from the fields it reads, for the renderers that
    log without a record (``lbcore.logs.fast``)."""
    return termination[:1] not in ("-", "", "L") or retries > 0 or redispatched or status >= 500


#: The connection-level events the master and health checks log (server UP/DOWN, reloads).
@dataclass(slots=True, frozen=True)
class EventRecord:
    """A non-request log message, e.g. ``Server be/s1 is DOWN, reason: ...``."""

    text: str
    level: str = "notice"  # syslog severity name
    ts: float = 0.0


def _ms(start: float | None, end: float | None) -> int:
    if start is None or end is None:
        return -1
    return max(round((end - start) * 1000), 0)


@dataclass(slots=True)
class Timeline:
    """The instants (seconds, any monotonic clock) a proxy notes while serving a request;
    :meth:`fill` turns them into HAProxy's timers (manual, 8.4) on a record.

    An instant left at ``None`` is a phase never reached, logged as ``-1``: a refused
    connection leaves ``connected`` unset (Tc = -1, Tr = -1), a server timeout leaves
    ``response_headers`` unset (Tr = -1), a client that sent nothing leaves
    ``request_headers`` unset (TR = -1). Pure: the caller passes the clock readings.
    """

    accept: float
    handshake_done: float | None = None  # TLS / PROXY protocol done (else = accept)
    request_start: float | None = None  # first byte of this request
    request_headers: float | None = None  # request headers complete
    queue_start: float | None = None  # waiting for a server slot from here...
    queue_end: float | None = None  # ...to here (a server was assigned)
    connected: float | None = None  # server connection established
    response_headers: float | None = None  # response headers complete
    end: float | None = None  # last byte of the response sent / session closed

    def fill(self, r: RequestRecord) -> None:
        hs = self.handshake_done if self.handshake_done is not None else self.accept
        r.t_handshake = _ms(self.accept, hs)
        r.t_idle = _ms(hs, self.request_start) if self.request_start is not None else 0
        r.t_request = _ms(self.request_start, self.request_headers)
        r.t_queue = _ms(self.queue_start, self.queue_end)
        r.t_connect = _ms(self.queue_end, self.connected)
        r.t_response = _ms(self.connected, self.response_headers)
        # a connection that never sent a request is active from its handshake (HAProxy
        # logs -1/-1/-1/-1/0 for it)
        r.t_active = _ms(self.request_start if self.request_start is not None else hs, self.end)
        r.t_total = _ms(self.accept, self.end)
