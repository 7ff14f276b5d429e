"""Plain HTTP client connections without uvloop transports (``lbcore.proxy.httpraw``):
the system calls a connection costs the worker, with the path on and with it off."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.bench.syscalls import parse_strace_c
from tests.conftest import need_binary
from tests.integration.proxy.harness import Backend, Lb

LbFactory = Callable[..., tuple[Lb, int]]

CONF = """
global
  maxconn 1000
defaults
  mode http
  timeout connect 1s
  timeout client 10s
  timeout server 10s
listen a
  bind 127.0.0.1:{port}
  http-reuse always
  server s {s}
"""

REQUEST = b"GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"


def _one(port: int) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(REQUEST)
        out = b""
        while chunk := s.recv(65536):
            out += chunk
    return out


@pytest.mark.root  # strace attaches to the worker: needs CAP_SYS_PTRACE
@pytest.mark.parametrize("raw", [True, False], ids=["raw", "uvloop"])
def test_connection_per_request_system_calls(
    raw: bool, lb: LbFactory, web: list[Backend], monkeypatch: pytest.MonkeyPatch
) -> None:
    """With the raw path a ``Connection: close`` request costs no ``getpeername`` (the
    address comes from ``accept``), no per-connection ``setsockopt`` (TCP_NODELAY is
    inherited from the listener), no ``io_uring_enter`` and one ``epoll_ctl`` (joining
    the worker's own set; closing the socket leaves it). ``LBCORE_RAW_HTTP=0`` brings
    uvloop's transports back (which ask for the peer's address): the switch works."""
    strace = need_binary("strace")
    if os.geteuid() != 0:
        pytest.skip("attaching strace to the worker needs root")
    from lbcore.proxy import httpraw

    if not httpraw.AVAILABLE:
        pytest.skip("epoll not available on this platform")
    monkeypatch.setenv("LBCORE_RAW_HTTP", "1" if raw else "0")
    lbi, port = lb(CONF, s=web[0].addr)
    assert lbi.proc is not None
    for _ in range(5):  # the pooled server connection exists before counting
        assert _one(port).startswith(b"HTTP/1.1 200")
    n = 200
    with tempfile.NamedTemporaryFile(suffix=".strace") as out:
        tracer = subprocess.Popen(
            [strace, "-c", "-f", "-o", out.name, "-p", str(lbi.proc.pid)],
            stderr=subprocess.DEVNULL,
        )
        try:
            time.sleep(1.0)  # attached before the first connection
            for _ in range(n):
                answer = _one(port)
                assert answer.startswith(b"HTTP/1.1 200"), answer[:100]
                assert b"\r\nconnection: close\r\n" in answer.lower()
            time.sleep(0.5)
        finally:
            tracer.send_signal(signal.SIGINT)
            tracer.wait(timeout=30)
        calls = parse_strace_c(Path(out.name).read_text())
    per = {k: c / n for k, (c, _e) in calls.items()}
    print(f"system calls per connection: {per}")
    if raw:
        assert "getpeername" not in per and "io_uring_enter" not in per, per
        assert per.get("setsockopt", 0) <= 0.05, per
        assert 0.95 <= per.get("epoll_ctl", 0) <= 1.1, per
        assert per.get("accept4", 0) >= 0.95, per
    else:
        assert per.get("getpeername", 0) >= 0.95, per
