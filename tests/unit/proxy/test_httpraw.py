"""The transport contract of ``lbcore.proxy.httpraw`` over real sockets.

Each test accepts a real loopback connection through ``httpraw.Listener`` into a
recording protocol and checks what asyncio's transport contract promises a protocol:
partial writes queue and go out in order, a full queue asks the protocol to pause
writing and a drained one to resume, a peer reset reaches ``connection_lost`` with
the error, a half-close reaches ``eof_received`` (whose answer keeps the connection
open or closes it), ``close`` sends what is queued first and ``abort`` does not, and
``connection_lost`` is called once, never from inside the call that closed.
"""

from __future__ import annotations

import asyncio
import socket
import struct
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from lbcore.proxy import httpraw, tcpraw

pytestmark = pytest.mark.skipif(not httpraw.AVAILABLE, reason="needs epoll (Linux)")

BIG = 8 * 1024 * 1024  # more than loopback socket buffers hold


class Recorder:
    """A protocol that records every call, in order."""

    def __init__(self, keep_open: bool = False) -> None:
        self.keep_open = keep_open
        self.transport: Any = None
        self.events: list[str] = []
        self.data = bytearray()
        self.lost: list[Exception | None] = []
        self.in_call = False  # inside a call this test made on the transport

    def connection_made(self, transport: Any) -> None:
        self.transport = transport
        self.events.append("made")

    def data_received(self, data: bytes) -> None:
        assert type(data) is bytes
        self.data += data
        self.events.append("data")

    def eof_received(self) -> bool:
        self.events.append("eof")
        return self.keep_open

    def pause_writing(self) -> None:
        self.events.append("pause")

    def resume_writing(self) -> None:
        self.events.append("resume")

    def connection_lost(self, exc: Exception | None) -> None:
        assert not self.in_call, "connection_lost called from inside close/abort/write"
        self.events.append("lost")
        self.lost.append(exc)


class Env:
    def __init__(self, keep_open: bool = False) -> None:
        try:
            import uvloop

            self.loop: asyncio.AbstractEventLoop = uvloop.new_event_loop()
        except ImportError:  # pragma: no cover
            self.loop = asyncio.new_event_loop()
        self.poller = tcpraw.Poller(self.loop)
        self.lsock = socket.socket()
        self.lsock.bind(("127.0.0.1", 0))
        self.lsock.listen(16)
        self.protocols: list[Recorder] = []

        def factory() -> Recorder:
            p = Recorder(keep_open)
            self.protocols.append(p)
            return p

        self.listener = httpraw.Listener(self.lsock, self.poller, self.loop, factory)

    def connect(self, rcvbuf: int = 0) -> tuple[socket.socket, Recorder]:
        c = socket.socket()
        if rcvbuf:
            c.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        n = len(self.protocols)
        c.connect(self.lsock.getsockname())
        c.settimeout(10)
        self.run_until(lambda: len(self.protocols) > n)
        p = self.protocols[n]
        if rcvbuf:  # and a small send buffer on the proxy's side: writes queue soon
            p.transport.get_extra_info("socket").setsockopt(
                socket.SOL_SOCKET, socket.SO_SNDBUF, rcvbuf
            )
        return c, p

    def run_until(self, cond: Callable[[], Any], timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while not cond():
            assert time.monotonic() < deadline, "timed out"
            self.loop.run_until_complete(asyncio.sleep(0.002))

    def turn(self) -> None:
        self.loop.run_until_complete(asyncio.sleep(0))

    def close(self) -> None:
        self.listener.close()
        for p in self.protocols:
            if p.transport is not None:
                p.transport.abort()
        self.loop.run_until_complete(asyncio.sleep(0.01))
        self.poller.shutdown()
        self.lsock.close()
        self.loop.close()


@pytest.fixture
def env() -> Iterator[Env]:
    e = Env()
    yield e
    e.close()


@pytest.fixture
def env_keep() -> Iterator[Env]:
    e = Env(keep_open=True)
    yield e
    e.close()


def recv_exactly(c: socket.socket, n: int) -> bytes:
    out = bytearray()
    while len(out) < n:
        chunk = c.recv(min(1 << 20, n - len(out)))
        if not chunk:
            break
        out += chunk
    return bytes(out)


def recv_to_end(c: socket.socket) -> bytes:
    out = bytearray()
    while True:
        chunk = c.recv(1 << 20)
        if not chunk:
            return bytes(out)
        out += chunk


def recv_to_end_turning(c: socket.socket, env: Env) -> bytes:
    """Everything until the FIN, turning the transport's loop while nothing is readable
    (its queue goes out only as the loop turns); bounded by 20 s."""
    c.setblocking(False)
    got = bytearray()
    deadline = time.monotonic() + 20
    while True:
        assert time.monotonic() < deadline
        try:
            chunk = c.recv(1 << 20)
        except BlockingIOError:
            env.turn()
            continue
        if not chunk:
            return bytes(got)
        got += chunk


def pattern(n: int, seed: int = 0) -> bytes:
    block = bytes((i * 7 + seed) & 0xFF for i in range(251))
    return (block * (n // 251 + 1))[:n]


def test_accepts_reads_and_answers_with_names_from_accept(env: Env) -> None:
    c, p = env.connect()
    t = p.transport
    assert t.get_extra_info("peername") == c.getsockname()
    assert t.get_extra_info("sockname") == c.getpeername()  # looked up when asked
    assert t.get_extra_info("socket").fileno() >= 0
    assert t.get_extra_info("nonsense", 7) == 7
    c.sendall(b"GET / HTTP/1.1\r\n\r\n")
    env.run_until(lambda: p.data == b"GET / HTTP/1.1\r\n\r\n")
    t.write(b"HTTP/1.1 200 OK\r\n")
    t.writelines([b"content-length: 2\r\n", b"\r\n", b"ok"])
    assert recv_exactly(c, 40) == b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok"
    assert not t.is_closing()
    c.close()


def test_partial_writes_queue_pause_and_resume_the_protocol_in_order(env: Env) -> None:
    c, p = env.connect(rcvbuf=65536)
    t = p.transport
    data = pattern(BIG)
    # many writes, a writelines among them: the socket takes part, the rest is queued
    t.write(data[:1000])
    t.writelines([data[1000:5000], data[5000 : BIG // 2]])
    assert p.events.count("pause") == 1  # once, however far past the high-water mark
    size = t.get_write_buffer_size()
    assert size > httpraw.HIGH_WATER
    t.write(data[BIG // 2 :])  # queued behind: order kept
    assert t.get_write_buffer_size() == size + BIG - BIG // 2
    assert p.events.count("pause") == 1 and "resume" not in p.events
    got = bytearray()
    c.setblocking(False)
    deadline = time.monotonic() + 20
    while len(got) < BIG:
        assert time.monotonic() < deadline
        try:
            got += c.recv(1 << 20)
        except BlockingIOError:
            env.turn()  # the output edge lets the transport send more
    assert bytes(got) == data
    env.run_until(lambda: t.get_write_buffer_size() == 0)
    assert p.events.count("resume") == 1
    assert p.events.index("pause") < p.events.index("resume")
    assert not p.lost
    c.close()


def test_close_with_data_queued_sends_it_first_then_loses_the_connection(env: Env) -> None:
    c, p = env.connect(rcvbuf=65536)
    t = p.transport
    data = pattern(BIG, seed=3)
    t.write(data)
    assert t.get_write_buffer_size() > 0  # still queued
    p.in_call = True
    t.close()
    p.in_call = False
    assert t.is_closing()
    t.write(b"dropped")  # after close: ignored, as asyncio does
    env.turn()
    assert not p.lost  # not before the queue went out
    assert recv_to_end_turning(c, env) == data
    env.run_until(lambda: p.lost)
    assert p.lost == [None] and p.events.count("lost") == 1
    c.close()


def test_abort_drops_what_is_queued(env: Env) -> None:
    c, p = env.connect(rcvbuf=65536)
    t = p.transport
    t.write(pattern(BIG))
    assert t.get_write_buffer_size() > 0
    p.in_call = True
    t.abort()
    p.in_call = False
    assert not p.lost  # a loop turn later, not inside abort()
    env.run_until(lambda: p.lost)
    assert p.lost == [None]
    c.setblocking(True)
    try:
        got = len(recv_to_end(c))
    except ConnectionResetError:  # unread data queued at the close: the kernel resets
        got = -1
    assert got < BIG
    t.close()  # closing twice: no second connection_lost
    env.turn()
    assert p.events.count("lost") == 1
    c.close()


def test_peer_reset_reaches_connection_lost_with_the_error(env: Env) -> None:
    c, p = env.connect()
    c.sendall(b"partial request")
    env.run_until(lambda: p.data)
    c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    c.close()  # RST
    env.run_until(lambda: p.lost)
    assert isinstance(p.lost[0], ConnectionResetError)
    assert "eof" not in p.events
    assert p.transport.is_closing()


def test_write_to_a_reset_peer_loses_the_connection(env: Env) -> None:
    c, p = env.connect()
    t = p.transport
    t.pause_reading()  # the reset is found by the write, not a read
    c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    c.close()
    time.sleep(0.05)
    p.in_call = True
    t.write(b"x" * 100)
    t.write(b"x" * 100)  # the first may be taken before the RST is known
    p.in_call = False
    env.run_until(lambda: p.lost)
    assert isinstance(p.lost[0], (ConnectionResetError, BrokenPipeError))


def test_half_close_keep_open_still_writes(env_keep: Env) -> None:
    env = env_keep
    c, p = env.connect()
    c.sendall(b"GET / HTTP/1.0\r\n\r\n")
    c.shutdown(socket.SHUT_WR)
    env.run_until(lambda: "eof" in p.events)
    assert bytes(p.data) == b"GET / HTTP/1.0\r\n\r\n"
    assert p.events.index("data") < p.events.index("eof")
    t = p.transport
    env.turn()
    assert not p.lost and not t.is_closing()  # eof_received said keep it open
    t.write(b"answer after the client's FIN")
    t.close()
    assert recv_to_end(c) == b"answer after the client's FIN"
    env.run_until(lambda: p.lost)
    assert p.lost == [None]
    c.close()


def test_half_close_not_kept_closes(env: Env) -> None:
    c, p = env.connect()
    c.sendall(b"abc")
    c.shutdown(socket.SHUT_WR)
    env.run_until(lambda: p.lost)
    assert p.events == ["made", "data", "eof", "lost"]
    assert p.lost == [None]
    assert recv_to_end(c) == b""  # closed by the transport: the client sees the end
    c.close()


def test_eof_alone(env: Env) -> None:
    c, p = env.connect()
    c.shutdown(socket.SHUT_WR)
    env.run_until(lambda: p.lost)
    assert p.events == ["made", "eof", "lost"]
    c.close()


def test_pause_reading_holds_data_until_resumed_a_turn_later(env: Env) -> None:
    c, p = env.connect()
    t = p.transport
    t.pause_reading()
    assert not t.is_reading()
    c.sendall(b"held")
    c.shutdown(socket.SHUT_WR)
    for _ in range(20):
        env.loop.run_until_complete(asyncio.sleep(0.005))
    assert p.data == b"" and "eof" not in p.events
    t.resume_reading()
    assert p.data == b""  # never from inside resume_reading
    env.run_until(lambda: p.lost)
    assert p.events == ["made", "data", "eof", "lost"]
    assert p.data == b"held"
    c.close()


def test_large_upload_is_read_whole_across_turns(env: Env) -> None:
    c, p = env.connect()
    data = pattern(3 * 1024 * 1024, seed=9)
    c.setblocking(False)
    view = memoryview(data)
    deadline = time.monotonic() + 20
    while view:
        assert time.monotonic() < deadline
        try:
            view = view[c.send(view) :]
        except BlockingIOError:
            env.turn()
    c.shutdown(socket.SHUT_WR)
    env.run_until(lambda: p.lost)
    assert bytes(p.data) == data
    assert p.events[-2:] == ["eof", "lost"]
    c.close()


def test_write_eof_after_the_queue(env_keep: Env) -> None:
    env = env_keep
    c, p = env.connect(rcvbuf=65536)
    t = p.transport
    data = pattern(1024 * 1024, seed=5)
    t.write(data)
    t.write_eof()
    assert t.can_write_eof()
    with pytest.raises(RuntimeError):
        t.write(b"more")
    assert recv_to_end_turning(c, env) == data  # everything, then the FIN
    assert not p.lost  # the write side only: reading goes on
    c.sendall(b"late")
    env.run_until(lambda: p.data == b"late")
    t.close()
    env.run_until(lambda: p.lost)
    c.close()


def test_write_buffer_limits(env: Env) -> None:
    _c, p = env.connect()
    t = p.transport
    assert t.get_write_buffer_limits() == (httpraw.LOW_WATER, httpraw.HIGH_WATER)
    t.set_write_buffer_limits(high=100)
    assert t.get_write_buffer_limits() == (25, 100)
    with pytest.raises(ValueError):
        t.set_write_buffer_limits(high=1, low=2)
    _c.close()


def test_many_connections_each_lost_once(env: Env) -> None:
    """Connections closed by both sides in the same event batch (the socket numbers
    are reused by the next accepts): every protocol sees its own end exactly once."""
    clients = []
    for i in range(40):
        c, p = env.connect()
        c.sendall(b"req %d" % i)
        clients.append((c, p))
    env.run_until(lambda: all(p.data for _c, p in clients))
    for i, (c, p) in enumerate(clients):
        if i % 2:
            c.close()
        else:
            p.transport.write(b"bye %d" % i)
            p.transport.close()
    env.run_until(lambda: all(p.lost for _c, p in clients))
    for i, (c, p) in enumerate(clients):
        assert p.events.count("lost") == 1
        assert bytes(p.data) == b"req %d" % i
        if not i % 2:
            assert recv_to_end(c) == b"bye %d" % i
            c.close()
    for _ in range(5):  # the reused socket numbers serve new connections fine
        c, p = env.connect()
        c.sendall(b"again")
        env.run_until(lambda p=p: p.data == b"again")  # type: ignore[misc]
        c.close()
        env.run_until(lambda p=p: p.lost)  # type: ignore[misc]
