"""Plain HTTP client connections on Linux without uvloop transports.

Why: on the connection-per-request bench every client connection through uvloop's
server cost, besides the work, a ``getsockname`` and a ``getpeername`` (the transport
asks for its names up front), an ``epoll_ctl`` and an ``io_uring_enter`` that HAProxy
does not make, and the transport's and the protocol's setup in Python was most of a
connection's Python work. ``lbcore.proxy.tcpraw`` took the TCP connection rate from
0.71x to 1.02x HAProxy's by serving its sockets from the worker's own epoll set.

Theory of operation: the listener (``Listener``) accepts as tcpraw's does (a bounded
batch per wake-up, the C socket type, the socket left in blocking mode and read and
written with ``MSG_DONTWAIT``, ``TCP_NODELAY`` inherited from the listening socket),
makes the frontend's protocol (``HttpClient``) and hands it a ``RawTransport``: a
small duck-typed ``asyncio.Transport`` whose socket joins the worker's
``tcpraw.Poller`` once, edge-triggered, for input and output. ``HttpClient`` is not
changed: it sees the same calls, in the same order, as from an asyncio transport:

* ``get_extra_info("peername")`` is the address ``accept`` returned; ``sockname``
  and ``socket`` are looked up only when asked.
* Reading: an input event marks the socket readable; it is read (``recv``, up to
  64 KiB a call) until a short read, which drained it (new data raises a new edge).
  Each read goes to ``data_received``. When the event also said the peer closed
  (EPOLLRDHUP) the short read was the last data, so ``eof_received`` follows without
  the read that would return 0. ``eof_received`` returning false closes the
  transport, as asyncio does; true keeps it open for writing. ``pause_reading``
  only records the pause; ``resume_reading`` reads again a loop turn later when the
  socket was left readable.
* Writing: ``write``/``writelines`` send at once when nothing is queued; what the
  socket does not take is queued and sent on the next output edge. Past 64 KiB
  queued the protocol's ``pause_writing`` is called, back at 16 KiB
  ``resume_writing`` (asyncio's default limits).
* ``close`` stops reading, sends what is queued, then closes; ``abort`` closes now and
  drops what is queued. Either way ``connection_lost`` is called once, a loop turn
  later (as asyncio does: never from inside the call that closed). A failed read or
  write (peer reset) closes at once and passes the error to ``connection_lost``.
* ``write_eof`` shuts the sending side down once the queue is empty.

Sockets are closed by the poller, at the end of its event batch when one is being
dispatched (see ``tcpraw.Poller.close``). TLS frontends, and platforms without
epoll, keep uvloop's transports; ``LBCORE_RAW_HTTP=0`` forces them too.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import os
import select
import socket
from collections.abc import Callable
from typing import Any

from lbcore.proxy import tcpraw
from lbcore.proxy.tcpraw import Poller, Sock

log = logging.getLogger("lbcore.proxy")

AVAILABLE = hasattr(select, "epoll") and hasattr(socket, "MSG_DONTWAIT")

_IN = tcpraw._IN
_OUT = tcpraw._OUT
_ERR = tcpraw._ERR
_HUP = tcpraw._HUP
_RDHUP = tcpraw._RDHUP
_READ = _IN | _RDHUP | _HUP | _ERR
_WAKE_WRITER = _OUT | _ERR | _HUP
_DONTWAIT = tcpraw._DONTWAIT

READ_SIZE = 65536  # bytes asked per recv; a shorter read drained the socket
READS_PER_TURN = 16  # full reads in a row before yielding to the loop
HIGH_WATER = 65536  # queued bytes past which the protocol is asked to pause writing
LOW_WATER = HIGH_WATER // 4  # ... and at or below which it may resume
_IOV_MAX = 512  # buffers per sendmsg (the kernel's limit is 1024)


def enabled() -> bool:
    """This path where the platform has it; ``LBCORE_RAW_HTTP=0`` keeps uvloop's."""
    return AVAILABLE and os.environ.get("LBCORE_RAW_HTTP", "1") != "0"


class StreamTransport:
    """What every duck-typed stream transport over a socket in a ``tcpraw.Poller``
    keeps and answers alike — the asyncio bookkeeping (protocol, pause flags, write
    buffer limits, the end) — whatever reads and writes the bytes: ``RawTransport``
    the socket itself, ``tlsraw.TlsTransport`` OpenSSL on it."""

    __slots__ = (
        "buffer",
        "buffered",
        "closed",
        "closing",
        "eof_read",
        "high",
        "loop",
        "lost",
        "low",
        "peer",
        "poller",
        "protocol",
        "readable",
        "reading_paused",
        "sock",
        "writable",
        "writing_paused",
    )

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        poller: Poller,
        sock: Sock,
        peer: Any,
        protocol: Any,
    ) -> None:
        self.loop = loop
        self.poller = poller
        self.sock = sock
        self.peer = peer
        self.protocol = protocol
        self.buffer: list[bytes | memoryview] = []  # queued, not yet taken by the socket
        self.buffered = 0
        self.high = HIGH_WATER
        self.low = LOW_WATER
        self.readable = False  # the socket may hold bytes (or its end) to read
        self.writable = True  # the socket took the last write whole
        self.reading_paused = False
        self.writing_paused = False  # the protocol was told to pause writing
        self.eof_read = False  # the peer's end was read (eof_received was called)
        self.closing = False  # close() or abort() called: nothing more is accepted
        self.closed = False  # the socket is gone
        self.lost = False  # connection_lost was scheduled

    # ---- asyncio.BaseTransport ---------------------------------------------------

    def is_closing(self) -> bool:
        return self.closing

    def close(self) -> None:
        raise NotImplementedError

    def abort(self) -> None:
        """Close now; what is queued is dropped."""
        self.closing = True
        self._finish(None)

    def get_protocol(self) -> Any:
        return self.protocol

    def set_protocol(self, protocol: Any) -> None:
        self.protocol = protocol

    # ---- asyncio.ReadTransport ---------------------------------------------------

    def is_reading(self) -> bool:
        return not (self.reading_paused or self.closing or self.eof_read)

    def pause_reading(self) -> None:
        self.reading_paused = True

    def resume_reading(self) -> None:
        if not self.reading_paused:
            return
        self.reading_paused = False
        if self.readable and not self.closing:
            # Never from inside the caller: it may be in the middle of a callback.
            self.loop.call_soon(self._read_again)

    # ---- asyncio.WriteTransport --------------------------------------------------

    def get_write_buffer_size(self) -> int:
        return self.buffered

    def get_write_buffer_limits(self) -> tuple[int, int]:
        return (self.low, self.high)

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        if high is None:
            high = HIGH_WATER if low is None else 4 * low
        if low is None:
            low = high // 4
        if not high >= low >= 0:
            raise ValueError(f"high ({high!r}) must be >= low ({low!r}) must be >= 0")
        self.high = high
        self.low = low
        self._check_high()

    # ---- reading -------------------------------------------------------------------

    def _read_again(self) -> None:
        if self.readable and not (self.reading_paused or self.closing or self.eof_read):
            self._read()

    def _read(self) -> None:
        raise NotImplementedError

    def _eof(self) -> None:
        self.readable = False
        self.eof_read = True
        keep_open = self.protocol.eof_received()
        if not keep_open and not self.closing:
            self.close()

    # ---- writing -------------------------------------------------------------------

    def _check_high(self) -> None:
        if not self.writing_paused and self.buffered > self.high:
            self.writing_paused = True
            try:
                self.protocol.pause_writing()
            except Exception:
                log.exception("protocol.pause_writing() failed")

    # ---- the end -------------------------------------------------------------------

    def _finish(self, exc: Exception | None) -> None:
        """The socket goes (at the end of the poller's batch); the protocol hears of it
        a loop turn later, once."""
        if self.closed:
            return
        self.closed = True
        self.readable = False
        self.buffer = []
        self.buffered = 0
        self.poller.close(self.sock)
        if not self.lost:
            self.lost = True
            self.loop.call_soon(self._connection_lost, exc)

    def _connection_lost(self, exc: Exception | None) -> None:
        protocol = self.protocol
        self.protocol = None  # no transport <-> protocol cycle left behind
        if protocol is not None:
            protocol.connection_lost(exc)


class RawTransport(StreamTransport):
    """A stream transport over one connected socket in a ``tcpraw.Poller``."""

    __slots__ = ("eof_pending", "rdhup")

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        poller: Poller,
        sock: Sock,
        peer: Any,
        protocol: Any,
    ) -> None:
        super().__init__(loop, poller, sock, peer, protocol)
        self.rdhup = False  # the last input event said the peer closed
        self.eof_pending = False  # write_eof was called: shut down once flushed

    def start(self) -> None:
        """Join the poller; the first events come on a later loop turn."""
        self.poller.register(self.sock, self.on_event)

    # ---- asyncio.BaseTransport ---------------------------------------------------

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        if name == "peername":
            return self.peer
        if self.closed:
            return default
        try:
            if name == "sockname":
                return self.sock.getsockname()
            if name == "socket":
                return self.sock
        except OSError:
            return default
        return default

    def close(self) -> None:
        """Stop reading; close once what is queued has been sent."""
        if self.closing:
            return
        self.closing = True
        if not self.buffer:
            self._finish(None)

    # ---- asyncio.WriteTransport --------------------------------------------------

    def write(self, data: bytes) -> None:
        n = len(data)
        if self.closing or not n:
            return  # asyncio drops writes after close too (it only warns)
        if self.eof_pending:
            raise RuntimeError("Cannot call write() after write_eof()")
        if not self.buffer and self.writable:
            try:
                sent = self.sock.send(data, _DONTWAIT)
            except (BlockingIOError, InterruptedError):
                sent = 0
            except OSError as exc:
                self._fatal(exc)
                return
            if sent == n:
                return
            self.writable = False  # the socket is full: its next output edge resumes
            self.buffer.append(memoryview(data)[sent:] if sent else data)
            self.buffered = n - sent
        else:
            self.buffer.append(data)
            self.buffered += n
        self._check_high()

    def writelines(self, list_of_data: list[bytes]) -> None:
        if self.closing:
            return
        if self.eof_pending:
            raise RuntimeError("Cannot call writelines() after write_eof()")
        if self.buffer or not self.writable:
            for data in list_of_data:
                if data:
                    self.buffer.append(data)
                    self.buffered += len(data)
            self._check_high()
            return
        for data in list_of_data:
            if data:
                self.buffer.append(data)
                self.buffered += len(data)
        if self.buffer:
            self._flush()
            if not self.closed:
                self._check_high()

    def write_eof(self) -> None:
        if self.closing or self.eof_pending:
            return
        self.eof_pending = True
        if not self.buffer:
            self._shutdown_write()

    def can_write_eof(self) -> bool:
        return True

    # ---- events --------------------------------------------------------------------

    def on_event(self, ev: int) -> None:
        """One epoll event for the socket (edge-triggered: each edge comes once)."""
        if ev & _READ:
            self.readable = True
            self.rdhup = (self.rdhup or bool(ev & _RDHUP)) and not ev & _ERR
        if ev & _WAKE_WRITER:
            self.writable = True
            if self.buffer and not self.closed:
                self._flush()
        if self.readable and not (self.reading_paused or self.closing or self.eof_read):
            self._read()

    def _read(self) -> None:
        sock = self.sock
        for _ in range(READS_PER_TURN):
            try:
                data = sock.recv(READ_SIZE, _DONTWAIT)
            except (BlockingIOError, InterruptedError):
                self.readable = False
                return
            except OSError as exc:
                self._fatal(exc)
                return
            if not data:
                self._eof()
                return
            drained = len(data) < READ_SIZE
            if drained:
                self.readable = False  # new data raises a new edge
            self.protocol.data_received(data)
            if self.closing or self.eof_read:
                return
            if drained:
                if self.rdhup:
                    # The peer had closed before this read: that was its last data.
                    if self.reading_paused:
                        self.readable = True  # the read after resume_reading sees the end
                    else:
                        self._eof()
                return
            if self.reading_paused:
                return
        self.loop.call_soon(self._read_again)  # a busy sender: let the others run

    # ---- writing -------------------------------------------------------------------

    def _flush(self) -> None:
        """Send what is queued until the socket is full or the queue empty."""
        buf = self.buffer
        sock = self.sock
        try:
            while buf:
                if len(buf) == 1:
                    sent = sock.send(buf[0], _DONTWAIT)
                else:
                    sent = sock.sendmsg(buf[:_IOV_MAX], (), _DONTWAIT)
                self.buffered -= sent
                while sent:
                    first = buf[0]
                    size = len(first)
                    if sent >= size:
                        del buf[0]
                        sent -= size
                    else:
                        buf[0] = memoryview(first)[sent:]
                        break
        except (BlockingIOError, InterruptedError):
            self.writable = False
        except OSError as exc:
            self._fatal(exc)
            return
        if self.writing_paused and self.buffered <= self.low:
            self.writing_paused = False
            try:
                self.protocol.resume_writing()
            except Exception:
                log.exception("protocol.resume_writing() failed")
        if not buf:
            if self.closing:
                self._finish(None)
            elif self.eof_pending:
                self._shutdown_write()

    def _shutdown_write(self) -> None:
        try:
            self.sock.shutdown(socket.SHUT_WR)
        except OSError as exc:
            self._fatal(exc)

    # ---- the end -------------------------------------------------------------------

    def _fatal(self, exc: OSError) -> None:
        """A read or write failed (reset, broken pipe): close now, tell the protocol."""
        if exc.errno not in (errno.ECONNRESET, errno.EPIPE, errno.ECONNABORTED, errno.ETIMEDOUT):
            log.debug("client connection failed: %s", exc)
        self.closing = True
        self._finish(exc)


class Listener(tcpraw.RawListener):
    """Accepts connections for one plain HTTP frontend on one listening socket."""

    def __init__(
        self,
        sock: socket.socket,
        poller: Poller,
        loop: asyncio.AbstractEventLoop,
        factory: Callable[[], Any],
    ) -> None:
        self.factory = factory  # makes the protocol, as loop.create_server's
        tcpraw.RawListener.__init__(self, sock, poller, loop)

    def serve(self, csock: Sock, peer: Any) -> None:
        protocol = self.factory()
        transport = RawTransport(self.loop, self.poller, csock, peer, protocol)
        try:
            transport.start()
        except OSError:  # the client went away already
            csock.close()
            return
        try:
            protocol.connection_made(transport)
        except Exception:
            log.exception("connection_made failed")
            transport.abort()
