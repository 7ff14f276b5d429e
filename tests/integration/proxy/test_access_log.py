"""Access logs from the worker compared with HAProxy's: same config, same requests, same
lines once the values that must differ (ports, dates, pid, timer values) are masked.

Masks: the client port and dates (format only); each timer reduced to -1 or "a number";
%B within 64 bytes (see below), except in two aborts where the count is a race in
HAProxy too: for a client that closes in the middle of a large body only "more than
what it read, less than the whole body" is checked (how far the proxy got is the
kernel's socket buffers' business), and for a client that reset while the server
worked, "at least the response head, at most the whole response" (HAProxy counts what
it had received when its write failed: the head alone or head and body, depending on
whether the server's two writes arrived together).
"""

from __future__ import annotations

import re
import socket
import struct
import time
from collections.abc import Callable

from tests.integration.proxy.harness import Backend, DeadServer, Lb, raw_exchange, refused_port

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
  timeout server 600ms
frontend fe
  bind 127.0.0.1:{port}
  http-request deny if {{ path_beg /deny }}
  http-request redirect location /moved if {{ path /old }}
  use_backend be_dead if {{ path_beg /dead }}
  use_backend be_refused if {{ path_beg /refused }}
  use_backend be_empty if {{ path_beg /empty }}
  use_backend be_cookie if {{ path_beg /ck }}
  default_backend be_app
backend be_app
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


def reset_while_server_works(port: int) -> None:
    """The client resets (RST) its connection while the server prepares the answer."""
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    s.sendall(b"GET /slow?d=0.5 HTTP/1.1\r\nHost: h\r\n\r\n")
    time.sleep(0.1)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    s.close()


def close_while_server_works(port: int) -> None:
    """The client closes (FIN) while the server prepares the answer: to the proxy, a
    half-close; without abortonclose the answer is still sent (HAProxy logs ----)."""
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    s.sendall(b"GET /slow?d=0.5 HTTP/1.1\r\nHost: h\r\n\r\n")
    time.sleep(0.1)
    s.close()


def close_mid_body(port: int) -> None:
    """The client reads the start of a large chunked body, then closes (HAProxy: CD--)."""
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
    s.sendall(b"GET /big?n=%d HTTP/1.1\r\nHost: h\r\n\r\n" % BIG)
    assert s.recv(65536).startswith(b"HTTP/1.1 200")
    time.sleep(0.2)
    s.close()


REQUESTS: list[bytes | Callable[[int], None]] = [
    b"GET /index.html HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n",
    b"GET /status/404 HTTP/1.1\r\nHost: h\r\n\r\n",  # the server's own 404
    reset_while_server_works,
    close_while_server_works,
    close_mid_body,
    b"GET /deny HTTP/1.1\r\nHost: h\r\n\r\n",
    b"GET /old HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n",
    b"GET /dead HTTP/1.1\r\nHost: h\r\n\r\n",
    b"GET /refused/x?q=1 HTTP/1.1\r\nHost: h\r\n\r\n",
    b"GET /empty HTTP/1.1\r\nHost: h\r\n\r\n",
    b"GET /slow?d=2 HTTP/1.1\r\nHost: h\r\n\r\n",
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


def test_httplog_lines_match_haproxy(
    lb: LbFactory, web: list[Backend], haproxy: Callable[[str], int]
) -> None:
    dead = DeadServer()
    ours_sink, theirs_sink = sink(), sink()
    try:
        fmt = {"good": web[0].addr, "dead": dead.addr, "refused": refused_port()}
        _, ours = lb(CONFIG, sink=ours_sink.getsockname()[1], **fmt)
        text = CONFIG.format(port="{port}", sink=theirs_sink.getsockname()[1], **fmt)
        theirs = haproxy(text)
        try:  # haproxy's start-up probe made a null connection: it logs it, drain it
            while True:
                theirs_sink.settimeout(0.5)
                theirs_sink.recv(65536)
        except TimeoutError:
            theirs_sink.settimeout(5)
        for req in REQUESTS:
            for port in (ours, theirs):
                if callable(req):
                    req(port)
                else:
                    raw_exchange(port, req)
            got = ours_sink.recv(65536)
            want = theirs_sink.recv(65536)
            assert got.startswith(b"<134>") and want.startswith(b"<134>")
            g, w = got.decode().split("]: ", 1)[1], want.decode().split("]: ", 1)[1]
            gf, wf = g.split(" "), w.split(" ")
            assert re.fullmatch(r"127\.0\.0\.1:\d+", gf[0])
            assert re.fullmatch(r"\[\d\d/\w{3}/\d{4}:\d\d:\d\d:\d\d\.\d{3}\]", gf[1])
            # frontend, backend/server, timers (-1 where HAProxy has -1), status,
            # cookies, termination state, connection counts, queues, request line
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
    finally:
        dead.close()
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
