"""The adapters' two ways to an access-log line give the same datagrams.

``HttpClient._log`` renders ``option httplog`` with :class:`lbcore.logs.fast.HttpLogLine`
from its own values, and any other format through a ``RequestRecord`` (``tcp.log_session``
the same for ``option tcplog``). Here the same script runs twice on fresh runtimes, once as
configured and once with the fast renderer taken away (so the record path renders the
same format), over the real adapter driven through requests and responses on fake
transports with a clock the test moves: keep-alive, captures and persistence cookies, a
denied request, a bad request, a client gone mid-response, a server error with
``log-separate-errors``, TLS, and request lines with bytes that must be escaped. The
datagrams are read from a real UDP socket, in the ``short`` syslog format (``<LEVEL>``
then the line: no clock in the header). Nothing is patched, so this holds as well when the
modules run compiled by mypyc."""

from __future__ import annotations

import socket
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

from lbcore.config import parse_text
from lbcore.proxy.accesslog import AccessLogs
from lbcore.proxy.common import Registry
from lbcore.proxy.http import HttpClient, Upstream
from lbcore.worker import build_runtime
from tests.bench.hotpath import FakeLoop, FakeTransport

CONFIG = """\
global
    log 127.0.0.1:{port} format short local0
defaults
    mode http
    log global
    timeout connect 5s
    timeout client 5s
    timeout server 5s
frontend fe
    bind 127.0.0.1:18080
    option httplog
    option log-separate-errors
    option accept-invalid-http-request  # a target byte beyond ASCII is logged, not refused
    capture request header Host len 16
    capture request header User-Agent len 8
    capture response header Server len 16
    capture cookie SRV len 32
    http-request deny if { path_beg /deny }
    default_backend be
backend be
    http-reuse always  # first requests too take the fake pooled connections
    cookie SRV insert indirect nocache
    server s1 127.0.0.1:1 cookie c1
    server s2 127.0.0.1:2 cookie c2
"""
ACCEPT_WALL = 1_795_600_000.25


def response(status: int = 200, body: bytes = b"x" * 10, extra: bytes = b"") -> bytes:
    return b"HTTP/1.1 %d Whatever\r\nServer: nginx/1.22\r\nContent-Length: %d\r\n%s\r\n%s" % (
        status,
        len(body),
        extra,
        body,
    )


class Clock(FakeLoop):
    """The fake loop with a clock the test moves."""

    def __init__(self, be: Any) -> None:
        super().__init__()
        self.now = 1000.0
        self.be = be

    def time(self) -> float:
        return self.now


def logged(config_text: str, fast: bool, script: Callable[[Any, Any, Any], None]) -> list[str]:
    """The datagrams ``script(frontend, backends, alog)`` makes the first frontend send."""
    sink = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sink.bind(("127.0.0.1", 0))
    try:
        text = config_text.replace("{port}", str(sink.getsockname()[1]))
        config = parse_text(text, "t.cfg")
        backends, frontends = build_runtime(config, Registry(config.global_.maxconn))
        logs = AccessLogs(config)
        fe = frontends[0]
        alog = logs.for_frontend(fe.proxy)
        assert alog is not None
        assert alog.httplog is not None or alog.tcplog is not None
        if not fast:  # the record path, rendering the same format
            alog.httplog = alog.tcplog = None
        try:
            script(fe, backends, alog)
        finally:
            logs.close()  # flushes (no loop attached: each line is sent when logged)
        sink.setblocking(False)
        out = []
        while True:
            try:
                out.append(sink.recv(4096).decode("utf-8", "surrogateescape"))
            except BlockingIOError:
                return out
    finally:
        sink.close()


def refill(be: Any) -> None:
    """An idle pooled connection to each server (a closed one is not given back)."""
    for server in be.servers:
        if not be.idle.get(server.name):
            up = Upstream(be, server)
            up.connection_made(FakeTransport(("127.0.0.1", 80)))
            be.idle[server.name] = [up]


def client(fe: Any, loop: Clock, port: int = 40000, tls: bool = False) -> HttpClient:
    c = HttpClient(fe, loop)  # type: ignore[arg-type]
    c.connection_made(FakeTransport(("127.0.0.1", port)))
    c.accept_wall = ACCEPT_WALL + port / 1000  # the wall clock at accept, fixed
    if tls:
        c.tls_info = object()
    return c


def exchange(c: HttpClient, loop: Clock, request: bytes, answer: bytes | None) -> None:
    refill(loop.be)
    loop.now += 0.0123
    c.data_received(request)
    loop.now += 0.0045
    up = c.upstream
    if answer is not None:
        assert up is not None, "the request did not reach a server"
        up.data_received(answer)
    loop.now += 0.2
    loop.run_soon()


def http_script(fe: Any, backends: Any, alog: Any) -> None:
    fe.log = alog
    loop = Clock(backends["be"])
    fe.conn_cur += 5  # so that %ac and %fc differ
    busy = client(fe, loop, 39999)  # holds a server: %bc and %sc differ for the other
    exchange(busy, loop, b"GET /slow HTTP/1.1\r\nHost: a\r\n\r\n", None)
    assert busy.upstream is not None
    c = client(fe, loop, tls=True)
    exchange(c, loop, b"GET /small HTTP/1.1\r\nHost: a.example\r\n\r\n", response())
    exchange(
        c,
        loop,
        b'GET /caf\xe9/\xc3\xa9?q="x"#y HTTP/1.1\r\nHost: b|{c}\r\nUser-Agent: curl/8.0.0 long\r\n'
        b"Cookie: SRV=c2; other=1\r\n\r\n",
        response(200, b"", b"Set-Cookie: SRV=c2; path=/\r\n"),
    )
    exchange(c, loop, b"GET /deny HTTP/1.1\r\nHost: a\r\n\r\n", None)  # 403, <NOSRV>
    exchange(c, loop, b"GET /e HTTP/1.0\r\nHost: a\r\n\r\n", response(503, b"down"))
    c2 = client(fe, loop, 40001)
    post = b"POST /up HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\nabc"
    exchange(c2, loop, post, response(201))
    loop.now += 1.5
    refill(loop.be)
    c2.data_received(b"GET /gone HTTP/1.1\r\nHost: h\r\n\r\n")
    up = c2.upstream
    assert up is not None
    up.data_received(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\npartial")
    c2.connection_lost(None)  # the client left mid-response
    c3 = client(fe, loop, 40002)
    exchange(c3, loop, b"NOT HTTP AT ALL\x01\r\n\r\n", None)  # 400, <BADREQ>
    loop.run_soon()


def test_fast_and_general_lines_are_equal_through_the_adapter() -> None:
    fast = logged(CONFIG, True, http_script)
    general = logged(CONFIG, False, http_script)
    assert fast == general
    assert len(fast) == 7, fast
    got = [d.removesuffix("\n") for d in fast]
    # <6> info, <3> err ("short" syslog format), then the line
    assert got[0].startswith("<6>127.0.0.1:40000 [") and " fe~ be/s" in got[0]
    assert "{a.example|} {nginx/1.22} " in got[0] and got[0].endswith('"GET /small HTTP/1.1"')
    # each byte as it was on the wire, as HAProxy 2.6 logs it: raw \xe9 and UTF-8 é
    assert got[1].endswith('"GET /caf#E9/#C3#A9?q=#22x#22#23y HTTP/1.1"')
    assert "{b#7C#7Bc#7D|curl/8.0} " in got[1] and " SRV=c2 " in got[1]
    assert " fe~ fe/<NOSRV> " in got[2] and " 403 " in got[2]
    assert got[3].startswith("<3>") and " 503 " in got[3]
    assert " 2/7/1/1/0 " in got[3]  # %ac (registry) and %fc (frontend) told apart
    assert got[4].startswith("<6>127.0.0.1:40001 ")
    assert " CD" in got[5]
    assert got[6].endswith('"<BADREQ>"') and " 400 " in got[6]


TCP_CONFIG = (
    CONFIG.split("defaults")[0]
    + """\
defaults
    mode tcp
    log global
    timeout connect 5s
    timeout client 5s
    timeout server 5s
listen tcp
    bind 127.0.0.1:18090
    option tcplog
    option log-separate-errors
    server s1 127.0.0.1:1
    server s2 127.0.0.1:2
"""
)

#: (server, t_assigned, t_connected, term, retries, redispatched, bytes, peer)
TCP_STATES = [
    ("s1", 1000.0015, 1000.004, "--", 0, False, 1234, ("127.0.0.1", 5555)),
    ("s2", 1000.5, 1000.6999, "SD", 2, True, 0, ("::1", 1)),
    ("", -1.0, -1.0, "sQ", 0, False, 0, ("", 0)),  # never got a server
    ("s1", 1000.2, -1.0, "SC", 3, False, 2**40, ("10.0.0.1", 65535)),
    ("s2", 999.0, 999.5, "cD", 0, False, 1022, ("10.0.0.1", 1023)),
]


def tcp_script(fe: Any, backends: Any, alog: Any) -> None:
    """``tcp.log_session`` (TcpClient's and tcpraw's sessions) over several states."""
    from lbcore.proxy.tcp import log_session

    be = backends["tcp"]
    be.servers[1].active = 3  # %bc and %sc differ
    fe.conn_cur = 9
    loop = SimpleNamespace(time=lambda: 1000.75)
    for server, assigned, connected, term, retries, redisp, nbytes, peer in TCP_STATES:
        session = SimpleNamespace(
            log=alog,
            fe=fe,
            backend=be if server or term != "sQ" else None,
            peer=peer,
            loop=loop,
            t_accept=999.0,
            accept_wall=1_795_600_000.9996,
            t_assigned=assigned,
            t_connected=connected,
            log_server=server,
            term=term,
            retries=retries,
            redispatched=redisp,
        )
        log_session(session, nbytes)


def test_tcp_sessions_log_the_same_line_both_ways() -> None:
    fast = logged(TCP_CONFIG, True, tcp_script)
    general = logged(TCP_CONFIG, False, tcp_script)
    assert fast == general
    got = [d.removesuffix("\n") for d in fast]
    assert len(got) == len(TCP_STATES)
    assert got[0].startswith("<6>127.0.0.1:5555 [")  # then the date in the host's local time
    assert got[0].endswith(":40.999] tcp tcp/s1 1001/2/1750 1234 -- 0/9/3/0/0 0/0")
    assert got[1].startswith("<3>")
    assert got[1].endswith(" tcp tcp/s2 1500/199/1750 0 SD 0/9/3/3/+2 0/0")
    assert got[2].startswith("<3>-:0 [")
    assert got[2].endswith(" tcp/<NOSRV> -1/-1/1750 0 sQ 0/9/0/0/0 0/0")
    assert all(line.startswith("<3>") for line in got[2:])
