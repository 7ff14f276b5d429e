"""The same config, the same requests, to lbcore and to HAProxy 2.6: the same answers.

HAProxy (Debian's package) is the oracle for what lbcore generates itself: error
pages, redirects, denies, and which status each failure maps to.
"""

from __future__ import annotations

import socket
from collections.abc import Callable

from tests.integration.proxy.harness import Backend, DeadServer, Lb, raw_exchange, refused_port

LbFactory = Callable[..., tuple[Lb, int]]

CONFIG = """
defaults
  mode http
  timeout connect 300ms
  timeout client 5s
  timeout server 600ms
  timeout http-request 500ms
frontend fe
  bind 127.0.0.1:{port}
  http-request deny if {{ path_beg /deny }}
  http-request redirect location /moved code 301 if {{ path /old }}
  http-request redirect prefix https://example.com code 308 if {{ path_beg /pfx }}
  use_backend dead if {{ path_beg /dead }}
  use_backend refused if {{ path_beg /refused }}
  use_backend empty if {{ path_beg /empty }}
  default_backend good
backend good
  server s1 {good}
backend dead
  server d {dead}
backend refused
  retries 1
  server r 127.0.0.1:{refused}
backend empty
"""

REQUESTS = [
    b"GET /deny HTTP/1.1\r\nHost: h\r\n\r\n",
    b"GET /old HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n",
    b"GET /pfx/a?b=c HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n",
    b"GET /dead HTTP/1.1\r\nHost: h\r\n\r\n",
    b"GET /refused HTTP/1.1\r\nHost: h\r\n\r\n",
    b"GET /empty HTTP/1.1\r\nHost: h\r\n\r\n",
    b"GET /slow?d=2 HTTP/1.1\r\nHost: h\r\n\r\n",
    b"GET /garbage HTTP/1.1\r\nHost: h\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: h\r\nBad Header\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: h\r\n",  # incomplete: timeout http-request
]


def until_close(port: int, data: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(data)
        out = b""
        while True:
            d = s.recv(65536)
            if not d:
                return out
            out += d


def test_same_answers_as_haproxy(
    lb: LbFactory, web: list[Backend], haproxy: Callable[[str], int]
) -> None:
    dead = DeadServer()
    try:
        fmt = {"good": web[0].addr, "dead": dead.addr, "refused": refused_port()}
        _, ours = lb(CONFIG, **fmt)
        theirs = haproxy(CONFIG.format(port="{port}", **fmt))
        for req in REQUESTS:
            got = raw_exchange(ours, req)
            want = raw_exchange(theirs, req)
            assert got == want, f"{req!r}\nlbcore:  {got!r}\nhaproxy: {want!r}"
        # After its own 403/503 answers HAProxy keeps the connection: so must we.
        pipelined = (
            b"GET /deny HTTP/1.1\r\nHost: h\r\n\r\nGET /empty HTTP/1.1\r\nHost: h\r\n\r\n"
            b"GET /old HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n"
        )
        got, want = until_close(ours, pipelined), until_close(theirs, pipelined)
        assert got.count(b"HTTP/1.1 ") == 3 and got == want, f"\n{got!r}\n{want!r}"
    finally:
        dead.close()
