"""Access logs from the worker compared with HAProxy's: same config, same requests, same
lines once the values that must differ (ports, dates, pid, timer values) are masked.

Masks: the client port and dates (format only); each timer reduced to -1 or "a number";
%B within 64 bytes (see below), except in two aborts where the count is a race in
HAProxy too: for a client that closes in the middle of a large body only "more than
what it read, less than the whole body" is checked (how far the proxy got is the
kernel's socket buffers' business), and for a client that reset while the server
worked, "at least the response head, at most the whole response" (HAProxy counts what
it had received when its write failed: the head alone or head and body, depending on
whether the server's two writes arrived together). In the log-format test, the fields
after " ; " (ports, pid, dates, timers, counters, sizes) are compared by shape, and
%B/%U within 64 bytes. Nothing else is masked: connection counts, status, termination
state, captures, syslog priority are equal, each scripted client being closed from
both ends before the next starts (``settle``).
"""

from __future__ import annotations

import re
import socket
import struct
import time
from collections.abc import Callable

import pytest

from tests.integration.proxy.harness import (
    Backend,
    DeadServer,
    Lb,
    refused_port,
    response_complete,
)

LbFactory = Callable[..., tuple[Lb, int]]

CONFIG = """
global
  log 127.0.0.1:{sink} local0
defaults
  mode http
  log global
  option httplog
  timeout connect 300ms
  timeout client 5s
  timeout server 5s
frontend fe
  bind 127.0.0.1:{port}
  http-request deny if {{ path_beg /deny }}
  http-request redirect location /moved if {{ path /old }}
  use_backend be_dead if {{ path_beg /dead }}
  use_backend be_refused if {{ path_beg /refused }}
  use_backend be_empty if {{ path_beg /empty }}
  use_backend be_cookie if {{ path_beg /ck }}
  use_backend be_impatient if {{ path_beg /impatient }}
  default_backend be_app
backend be_app
  server app {good}
backend be_impatient
  timeout server 600ms
  server app {good}
backend be_dead
  server d {dead}
backend be_refused
  retries 1
  server gone 127.0.0.1:{refused}
backend be_empty
backend be_cookie
  cookie SRV insert indirect nocache
  option redispatch
  server c1 {good} cookie c1
  server c2 127.0.0.1:{refused} cookie c2 disabled
"""

BIG = 50_000_000  # a body far larger than all the socket buffers on its way


def reset_while_server_works(port: int, path: bytes = b"/slow?d=1") -> None:
    """The client resets (RST) its connection while the server prepares the answer
    (wide margins on both sides of the reset: a loaded machine must not change it)."""
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    s.sendall(b"GET %s HTTP/1.1\r\nHost: h\r\n\r\n" % path)
    time.sleep(0.3)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    s.close()


def reset_then_server_timeout(port: int) -> None:
    """As above, and the server then outlasts timeout server (sH--, 504)."""
    reset_while_server_works(port, b"/impatient/slow?d=2")


def close_while_server_works(port: int) -> None:
    """The client closes (FIN) while the server prepares the answer: to the proxy, a
    half-close; without abortonclose the answer is still sent (HAProxy logs ----)."""
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    s.sendall(b"GET /slow?d=1 HTTP/1.1\r\nHost: h\r\n\r\n")
    time.sleep(0.3)
    s.close()


def close_mid_body(port: int) -> None:
    """The client reads the start of a large chunked body, then closes (HAProxy: CD--)."""
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
    s.sendall(b"GET /big?n=%d HTTP/1.1\r\nHost: h\r\n\r\n" % BIG)
    assert s.recv(65536).startswith(b"HTTP/1.1 200")
    time.sleep(0.2)
    s.close()
    time.sleep(0.3)  # HAProxy frees the connection a moment after its line: let %ac settle


def settle(s: socket.socket) -> None:
    """Half-close, then read until the proxy closes too: from then on it does not count
    this connection in the next line's %ac/%fc (a busy machine must not change them)."""
    s.shutdown(socket.SHUT_WR)
    try:
        while s.recv(65536):
            pass
    except OSError:
        pass


def null_connection(port: int) -> None:
    """A connection on which the client sends nothing (logged unless dontlognull)."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        time.sleep(0.05)
        settle(s)


def partial_request(port: int) -> None:
    """A client that closes in the middle of its request head: its abort (CR), not a
    syntax error; logged even under dontlognull."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(b"GET / HT")
        time.sleep(0.05)
        settle(s)


REQUESTS: list[bytes | Callable[[int], None]] = [
    b"GET /index.html HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n",
    b"GET /status/404 HTTP/1.1\r\nHost: h\r\n\r\n",  # the server's own 404
    reset_while_server_works,
    reset_then_server_timeout,
    close_while_server_works,
    close_mid_body,
    null_connection,
    partial_request,
    b"GET /deny HTTP/1.1\r\nHost: h\r\n\r\n",
    b"GET /old HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n",
    b"GET /dead HTTP/1.1\r\nHost: h\r\n\r\n",
    b"GET /refused/x?q=1 HTTP/1.1\r\nHost: h\r\n\r\n",
    b"GET /empty HTTP/1.1\r\nHost: h\r\n\r\n",
    b"GET /impatient/slow?d=2 HTTP/1.1\r\nHost: h\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: h\r\nBad Header\r\n\r\n",
    # cookie persistence: inserted (--NI), valid (--VN), invalid and re-inserted (--II),
    # naming a server in maintenance: redispatched, re-inserted (--DI)
    b"GET /ck HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n",
    b"GET /ck HTTP/1.1\r\nHost: h\r\nCookie: SRV=c1\r\nConnection: close\r\n\r\n",
    b"GET /ck HTTP/1.1\r\nHost: h\r\nCookie: SRV=zz\r\nConnection: close\r\n\r\n",
    b"GET /ck HTTP/1.1\r\nHost: h\r\nCookie: SRV=c2\r\nConnection: close\r\n\r\n",
]


def sink() -> socket.socket:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    s.settimeout(5)
    return s


def timers(line: str) -> str:
    """The timer field with each value reduced to -1 or N."""
    parts = line.split(" ")
    return "/".join("-1" if v == "-1" else "N" for v in parts[4].split("/"))


def start_both(
    lb: LbFactory, haproxy: Callable[[str], int], config: str, **fmt: object
) -> tuple[tuple[int, socket.socket], tuple[int, socket.socket]]:
    """lbcore and HAProxy on the same config, each logging to its own UDP sink:
    ``((our port, our sink), (their port, their sink))``; the caller closes the sinks."""
    ours_sink, theirs_sink = sink(), sink()
    _, ours = lb(config, sink=ours_sink.getsockname()[1], **fmt)
    text = config.format(port="{port}", sink=theirs_sink.getsockname()[1], **fmt)
    theirs = haproxy(text)
    try:  # haproxy's start-up probe made a null connection: it may log it, drain it
        while True:
            theirs_sink.settimeout(0.5)
            theirs_sink.recv(65536)
    except TimeoutError:
        theirs_sink.settimeout(5)
    return (ours, ours_sink), (theirs, theirs_sink)


def send(port: int, req: bytes | Callable[[int], None]) -> None:
    """One scripted client; a plain request is sent, its answer read, then the
    connection closed from both ends (see ``settle``)."""
    if callable(req):
        req(port)
        return
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(req)
        out = b""
        while not response_complete(out):
            data = s.recv(65536)
            if not data:
                return
            out += data
        settle(s)


def message(datagram: bytes) -> tuple[str, str]:
    """``(priority, message)`` of one syslog datagram, e.g. ``("<134>", "127...")``."""
    text = datagram.decode()
    return text[: text.index(">") + 1], text.split("]: ", 1)[1]


def assert_httplog_equal(g: str, w: str, req: object = None) -> None:
    """Our httplog line ``g`` against HAProxy's ``w``, with the masks of this module."""
    gf, wf = g.split(" "), w.split(" ")
    assert re.fullmatch(r"127\.0\.0\.1:\d+", gf[0])
    assert re.fullmatch(r"\[\d\d/\w{3}/\d{4}:\d\d:\d\d:\d\d\.\d{3}\]", gf[1])
    # frontend, backend/server, timers (-1 where HAProxy has -1), status, cookies,
    # termination state, connection counts, queues, captured headers, request line
    assert gf[2:4] == wf[2:4], (g, w)
    assert timers(g) == timers(w), (g, w)
    assert gf[5] == wf[5] and gf[7:] == wf[7:], (g, w)
    # %B: lbcore counts the bytes on the wire; HAProxy 2.6 counts its internal
    # (HTX) representation, a few bytes per header less. Same order of size.
    if req is close_mid_body:
        assert all(65536 < int(f[6]) < BIG for f in (gf, wf)), (g, w)
    elif req is reset_while_server_works:
        assert all(100 < int(f[6]) < 500 for f in (gf, wf)), (g, w)
    else:
        assert abs(int(wf[6]) - int(gf[6])) <= 64, (g, w)


def test_httplog_lines_match_haproxy(
    lb: LbFactory, web: list[Backend], haproxy: Callable[[str], int]
) -> None:
    dead = DeadServer()
    fmt = {"good": web[0].addr, "dead": dead.addr, "refused": refused_port()}
    (ours, ours_sink), (theirs, theirs_sink) = start_both(lb, haproxy, CONFIG, **fmt)
    try:
        for req in REQUESTS:
            send(ours, req)
            send(theirs, req)
            (gp, g), (wp, w) = message(ours_sink.recv(65536)), message(theirs_sink.recv(65536))
            assert gp == wp == "<134>", (g, w)
            assert_httplog_equal(g, w, req)
    finally:
        dead.close()
        ours_sink.close()
        theirs_sink.close()


CAPTURE_CONFIG = """
global
  log 127.0.0.1:{sink} local0
defaults
  mode http
  log global
  timeout connect 300ms
  timeout client 5s
  timeout server 5s
frontend fe
  bind 127.0.0.1:{port}
  option httplog
  option dontlognull
  option log-separate-errors
  capture request header Host len 8
  capture request header User-Agent len 12
  capture request header X-Absent len 4
  capture response header Content-Type len 10
  capture response header X-None len 4
  capture cookie SID len 10
  http-request deny if {{ path_beg /deny }}
  http-request redirect location /moved if {{ path /old }}
  use_backend be_impatient if {{ path_beg /impatient }}
  default_backend be_app
backend be_app
  server app {good}
backend be_impatient
  timeout server 600ms
  server app {good}
"""

CAPTURE_REQUESTS: list[bytes | Callable[[int], None]] = [
    # the last Host, a long User-Agent cut, characters HAProxy escapes, the first cookie
    # whose name starts with SID (cut to 10 characters), the server's Set-Cookie
    b"GET /status/200?sc=SIDS%3Dserver-side%3B+Path%3D%2F HTTP/1.1\r\nHost: example.org\r\n"
    b'User-Agent: a{b|c}"d#e f\r\nCookie: a=1; SIDX=abcdefghijk; SID=2\r\n\r\n',
    b"GET / HTTP/1.1\r\nHost: h\r\nCookie: SID=1\r\nConnection: close\r\n\r\n",
    # answered by the proxy: request captures, empty response ones; 403 is an error
    b"GET /deny HTTP/1.1\r\nHost: h\r\nUser-Agent: ua\r\n\r\n",
    b"GET /old HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n",  # LR: not an error
    b"GET /status/503 HTTP/1.1\r\nHost: h\r\n\r\n",  # the server's 5xx: an error
    b"GET /impatient/slow?d=2 HTTP/1.1\r\nHost: h\r\n\r\n",  # 504 sH
    b"GET / HTTP/1.1\r\nHost: h\r\nBad Header\r\n\r\n",  # no request: no captures
    partial_request,
]


def test_captures_separate_errors_and_dontlognull_match_haproxy(
    lb: LbFactory, web: list[Backend], haproxy: Callable[[str], int]
) -> None:
    """Captured headers ``{..|..}`` and cookies in httplog, ``err`` for abnormal requests
    (<131> = local0.err), and no line at all for a connection that sent nothing."""
    (ours, ours_sink), (theirs, theirs_sink) = start_both(
        lb, haproxy, CAPTURE_CONFIG, good=web[0].addr
    )
    levels = []
    try:
        for req in CAPTURE_REQUESTS:
            for port in (ours, theirs):
                null_connection(port)  # dontlognull: the next line is the request's
                send(port, req)
            (gp, g), (wp, w) = message(ours_sink.recv(65536)), message(theirs_sink.recv(65536))
            assert gp == wp, (gp, g, wp, w)
            assert_httplog_equal(g, w)
            levels.append(gp)
            if req is CAPTURE_REQUESTS[0]:  # the captures are there, not just equal
                assert " SIDX=abcde SIDS=serve ---- " in g, g
                assert " {example.|a#7Bb#7Cc#7D#22d#23e f|} {text/plain|} " in g, g
        assert levels == ["<134>"] * 2 + ["<131>", "<134>"] + ["<131>"] * 4
        for s in (ours_sink, theirs_sink):  # the null connections logged nothing
            s.settimeout(0.3)
            with pytest.raises(TimeoutError):
                s.recv(65536)
    finally:
        ours_sink.close()
        theirs_sink.close()


def test_tcplog_line(lb: LbFactory) -> None:
    from tests.integration.proxy.test_tcp import TCP_BASE, EchoServer

    srv = EchoServer()
    log = sink()
    try:
        _, port = lb(
            TCP_BASE + "listen tcp_in\n  bind 127.0.0.1:{port}\n  log 127.0.0.1:{sink} local0\n"
            "  option tcplog\n  server echo {e}\n",
            sink=log.getsockname()[1],
            e=srv.addr,
        )
        with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
            s.sendall(b"hello")
            assert s.recv(100) == b"hello"
            s.shutdown(socket.SHUT_WR)
            assert s.recv(100) == b"after-eof"
        time.sleep(0.05)
        line = log.recv(65536).decode()
        msg = line.split("]: ", 1)[1]
        assert re.fullmatch(
            r"127\.0\.0\.1:\d+ \[\d\d/\w{3}/\d{4}:[\d:.]+\] tcp_in tcp_in/echo "
            r"\d+/\d+/\d+ 14 -- \d+/\d+/0/0/0 0/0\n",
            msg,
        ), msg
    finally:
        srv.close()
        log.close()


LOG_FORMAT_CONFIG = """
global
  log 127.0.0.1:{sink} local0
defaults
  mode http
  log global
  timeout connect 300ms
  timeout client 5s
  timeout server 5s
frontend fe
  bind 127.0.0.1:{port}
  capture request header Host len 8
  capture response header Content-Type len 10
  log-format "{fmt}"
  http-request deny if {{ path_beg /deny }}
  default_backend be_app
backend be_app
  server app {good}
"""

# Compared as is before " ; "; after it (ports, pid, dates, timers, counters, sizes) only
# the shape: every number read as N, -1 and - kept; %B and %U within 64 bytes.
LOG_FORMAT = (
    "%{+Q}o %ci %f %ft %b %s %si %ST %tsc %ts %ac/%fc/%bc/%sc/%rc %sq/%bq %HM %HP %HQ %HU "
    "%HV %CC %CS %hr %hs %hrl %hsl %r %ID %{-Q}o %%lit %{+X}ci %H ; %cp %pid %Ts %ms %t %tr %T "
    "%Tl %trg %trl %Th/%Ti/%TR/%Tw/%Tc/%Tr/%Ta/%Tt/%Tu/%Td/%Tq %B %U %fp %sp %rt %lc"
)


def shape(masked: str) -> str:
    return re.sub(r"(?<![\d-])(?!-1\b)\d+", "N", masked)


def test_log_format_line_matches_haproxy(
    lb: LbFactory, web: list[Backend], haproxy: Callable[[str], int]
) -> None:
    """A log-format using the common variables, flags (%o, +Q, -Q, +X), %% and text."""
    (ours, ours_sink), (theirs, theirs_sink) = start_both(
        lb, haproxy, LOG_FORMAT_CONFIG, good=web[0].addr, fmt=LOG_FORMAT
    )
    try:
        for req in (
            b"GET /status/200?x=1 HTTP/1.1\r\nHost: example.org\r\nConnection: close\r\n\r\n",
            b"GET /deny HTTP/1.1\r\nHost: h\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: h\r\nBad Header\r\n\r\n",
        ):
            send(ours, req)
            send(theirs, req)
            (gp, g), (wp, w) = message(ours_sink.recv(65536)), message(theirs_sink.recv(65536))
            assert gp == wp, (g, w)
            g_same, g_masked = g.rstrip("\n").split(" ; ")
            w_same, w_masked = w.rstrip("\n").split(" ; ")
            assert g_same == w_same, (g, w)
            assert shape(g_masked) == shape(w_masked), (g, w)
            gb, gu, wb, wu = (int(v) for v in (*g_masked.split()[-6:-4], *w_masked.split()[-6:-4]))
            assert abs(gb - wb) <= 64 and abs(gu - wu) <= 64, (g, w)
        assert g_same.startswith('"127.0.0.1" "fe" "fe" "fe" "<NOSRV>" "" 400 PR-- PR ')
    finally:
        ours_sink.close()
        theirs_sink.close()
