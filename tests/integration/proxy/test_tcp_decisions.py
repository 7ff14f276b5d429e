"""TCP mode's session decisions end to end, on both TCP adapters, with HAProxy 2.6 as
the oracle: retries on the same server, a redispatch on the last retry, the queue
and its timeout, a backend with no usable server, each read from the ``tcplog`` line
(server, termination state, retries). The decisions themselves are unit-tested in
tests/unit/proxy/test_tcpdecide.py; this checks that both adapters act on them alike,
and like HAProxy."""

from __future__ import annotations

import contextlib
import re
import socket
import time
from collections.abc import Callable, Iterator

import pytest

from tests.integration.proxy.harness import Lb, refused_port
from tests.integration.proxy.test_access_log import sink
from tests.integration.proxy.test_tcp import EchoServer, read_all

LbFactory = Callable[..., tuple[Lb, int]]

CONFIG = """
global
  maxconn 100
defaults
  mode tcp
  timeout connect 100ms
  timeout client 5s
  timeout server 5s
listen tcp_in
  bind 127.0.0.1:{port}
  log 127.0.0.1:{sink} local0
  option tcplog
"""

# %b/%s %Tw/%Tc/%Tt %B %ts %ac/%fc/%bc/%sc/%rc
_FIELDS = re.compile(r" tcp_in/(\S+) (-?\d+)/(-?\d+)/(\d+) \d+ (\S\S) \d+/\d+/\d+/\d+/(\+?\d+) ")


def fields(line: str) -> tuple[str, str, str]:
    """(server, termination state, retries) of a tcplog line."""
    m = _FIELDS.search(line)
    assert m, line
    return m.group(1), m.group(5), m.group(6)


def session(port: int, fin: bool = True) -> tuple[bytes, float, int]:
    """Connect, send a little (and half-close, with ``fin``), read until the proxy
    closes; (what came, seconds, the client's port)."""
    t0 = time.monotonic()
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        cport = s.getsockname()[1]
        with contextlib.suppress(OSError):
            s.sendall(b"ping")
            if fin:
                s.shutdown(socket.SHUT_WR)
        got = b""
        with contextlib.suppress(ConnectionResetError):
            while d := s.recv(100):
                got += d
    return got, time.monotonic() - t0, cport


def line_of(log: socket.socket, cport: int) -> str:
    """The log line of the session from client port ``cport`` (the lines of other
    sessions, such as the harness's start-up probes, are skipped)."""
    while True:
        line = log.recv(65536).decode()
        if f" 127.0.0.1:{cport} [" in line:
            return line


class Both:
    """One scenario's config, run on lbcore (the adapter ``tcp_path`` chose) and HAProxy."""

    def __init__(self, lb: LbFactory, haproxy: Callable[[str], int], body: str, **fmt: object):
        self.ours_log, self.theirs_log = sink(), sink()
        text = CONFIG + body
        _, self.ours = lb(text, sink=self.ours_log.getsockname()[1], **fmt)
        self.theirs = haproxy(
            text.replace("{sink}", str(self.theirs_log.getsockname()[1])).format_map(
                {"port": "{port}", **fmt}
            )
        )

    def close(self) -> None:
        self.ours_log.close()
        self.theirs_log.close()


@pytest.fixture
def both(
    lb: LbFactory, haproxy: Callable[[str], int], tcp_path: str
) -> Iterator[Callable[..., Both]]:
    made: list[Both] = []

    def make(body: str, **fmt: object) -> Both:
        b = Both(lb, haproxy, body, **fmt)
        made.append(b)
        return b

    yield make
    for b in made:
        b.close()


@pytest.mark.flaky(reruns=2)  # wall-clock bounds on a shared machine
def test_retries_go_to_the_same_server_then_sc(both: Callable[..., Both]) -> None:
    """``retries 2``, one refusing server: two retries there, a turn-around delay of
    min(timeout connect, 1s) before each, then SC."""
    b = both("  retries 2\n  server dead 127.0.0.1:{d}\n", d=refused_port())
    for port, log in ((b.ours, b.ours_log), (b.theirs, b.theirs_log)):
        got, took, cport = session(port, fin=False)  # a FIN now would be HAProxy's CC
        assert got == b""
        assert 0.15 < took < 5, took  # two delays of 100 ms
        assert fields(line_of(log, cport)) == ("dead", "SC", "2")


def test_redispatch_when_the_only_retry_is_the_last(both: Callable[..., Both]) -> None:
    """``option redispatch``, ``retries 1``: the one retry goes to the other server."""
    echo = EchoServer()
    try:
        b = both(
            "  retries 1\n  option redispatch\n  server dead 127.0.0.1:{d}\n  server live {e}\n",
            d=refused_port(),
            e=echo.addr,
        )
        for port, log in ((b.ours, b.ours_log), (b.theirs, b.theirs_log)):
            got, _, cport = session(port)
            assert got == b"pingafter-eof"
            assert fields(line_of(log, cport)) == ("live", "--", "+1")
    finally:
        echo.close()


@pytest.mark.flaky(reruns=2)  # wall-clock bounds on a shared machine
def test_redispatch_on_the_last_retry(lb: LbFactory, tcp_path: str) -> None:
    """``option redispatch``, ``retries 2``: the dead server is retried once, after the
    turn-around delay, and the last retry goes to the other server (the log's ``+2``).
    The client's request and end, sent while the proxy waits to retry, get through.

    No oracle here: HAProxy 2.6 redispatches at once, on the first retry, whenever the
    algorithm is round robin and there is more than one active server (not
    persistent: "we don't care about this particular server"); lbcore keeps the
    manual's default for every algorithm, the last retry."""
    echo = EchoServer()
    log = sink()
    try:
        _, port = lb(
            CONFIG + "  retries 2\n  option redispatch\n  server dead 127.0.0.1:{d}\n"
            "  server live {e}\n",
            sink=log.getsockname()[1],
            d=refused_port(),
            e=echo.addr,
        )
        got, took, cport = session(port)
        assert got == b"pingafter-eof"
        assert 0.08 < took < 4, took  # one turn-around delay, not a timeout
        assert fields(line_of(log, cport)) == ("live", "--", "+2")
    finally:
        echo.close()
        log.close()


@pytest.mark.flaky(reruns=2)  # wall-clock bounds on a shared machine
def test_queue_timeout_ends_with_sq(both: Callable[..., Both]) -> None:
    """Server ``maxconn 1`` and ``timeout queue 300ms``: while the first session holds
    the slot, the second waits in the queue and is closed at its timeout (sQ)."""
    echo = EchoServer()
    try:
        b = both(
            "  timeout queue 300ms\n  server s {e} maxconn 1\n",
            e=echo.addr,
        )
        for port, log in ((b.ours, b.ours_log), (b.theirs, b.theirs_log)):
            with socket.create_connection(("127.0.0.1", port), timeout=10) as first:
                first.sendall(b"hi")
                assert first.recv(10) == b"hi"  # connected: the one slot is taken
                got, took, cport = session(port)
                assert got == b""
                assert 0.25 < took < 4, took
                assert fields(line_of(log, cport)) == ("<NOSRV>", "sQ", "0")
                held = first.getsockname()[1]
            assert fields(line_of(log, held))[:2] == ("s", "--")
    finally:
        echo.close()


def test_queued_session_keeps_what_the_client_sent_meanwhile(
    both: Callable[..., Both],
) -> None:
    """A session waiting in the queue whose client sends its request and its end in
    the meantime delivers both once a slot frees."""
    echo = EchoServer()
    try:
        b = both("  timeout queue 5s\n  server s {e} maxconn 1\n", e=echo.addr)
        for port in (b.ours, b.theirs):
            with socket.create_connection(("127.0.0.1", port), timeout=10) as first:
                first.sendall(b"hi")
                assert first.recv(10) == b"hi"  # the one slot is taken
                with socket.create_connection(("127.0.0.1", port), timeout=10) as queued:
                    queued.sendall(b"ping")
                    queued.shutdown(socket.SHUT_WR)
                    time.sleep(0.3)  # queued by now, its request and FIN read... or not
                    first.close()
                    assert read_all(queued) == b"pingafter-eof"
    finally:
        echo.close()


@pytest.mark.flaky(reruns=2)  # wall-clock bounds on a shared machine
def test_no_usable_server_ends_with_sc_at_once(both: Callable[..., Both]) -> None:
    b = both("  server off 127.0.0.1:{d} disabled\n", d=refused_port())
    for port, log in ((b.ours, b.ours_log), (b.theirs, b.theirs_log)):
        got, took, cport = session(port)
        assert got == b""
        assert took < 2, took
        assert fields(line_of(log, cport)) == ("<NOSRV>", "SC", "0")
