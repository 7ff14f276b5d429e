"""The same config, the same requests, to lbcore and to HAProxy 2.6: the same answers.

HAProxy (Debian's package) is the oracle for what lbcore generates itself: error
pages, redirects, denies, and which status each failure maps to.
"""

from __future__ import annotations

import os
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator

import pytest

from tests.conftest import free_port, need_binary
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


@pytest.fixture
def haproxy() -> Iterator[Callable[[str], int]]:
    binary = need_binary("haproxy")
    procs: list[subprocess.Popen[bytes]] = []
    tmp = tempfile.TemporaryDirectory()

    def start(text: str) -> int:
        port = free_port()
        path = os.path.join(tmp.name, "haproxy.cfg")
        with open(path, "w") as f:
            f.write(text.replace("{port}", str(port)))
        proc = subprocess.Popen([binary, "-db", "-f", path], stderr=subprocess.DEVNULL)
        procs.append(proc)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            try:
                raw_exchange(port, b"", timeout=0.2)
                return port
            except OSError:
                time.sleep(0.05)
        raise AssertionError("haproxy did not start")

    yield start
    for p in procs:
        p.send_signal(signal.SIGTERM)
        p.wait(5)
    tmp.cleanup()


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
    finally:
        dead.close()
