"""Zero-copy TCP forwarding with splice(2): socket → pipe → socket, in the kernel.

Theory of operation: once a TCP-mode client and its server are both connected, each
direction gets a pipe. When the source socket is readable, ``splice`` moves up to
``CHUNK`` bytes from it into the pipe, then from the pipe into the destination
socket; the bytes never enter Python. If the destination cannot take everything
(EAGAIN), reading the source stops and the direction waits for the destination to
become writable — the pipe is the only buffer, so memory stays bounded. End of
stream on a source becomes ``shutdown(SHUT_WR)`` on the destination once the pipe
is empty (a half-close), and the pair is closed when both directions have ended, or
at once on an error (reset, broken pipe).

Bytes already read by Python before the hand-over (the client often talks first)
are sent from a small user-space buffer before splicing starts.

Pipes are made lazily, as HAProxy's ``splice-auto`` decides per buffer: a direction
first reads into user space (one ``read`` and one ``write``, like splicing in and
out), and only a read that fills ``SMALL`` bytes — a bulk transfer — gets the
direction its pipe. Short exchanges (a request and a small answer per connection)
thus never pay ``pipe2`` + ``F_SETPIPE_SZ`` + two ``close`` per direction, which on
the TCP connection-rate bench were about a fifth of the per-connection system calls.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
import socket
from collections.abc import Callable

from lbcore.proxy.common import Deadline

CHUNK = 1 << 20
SMALL = 1 << 16  # a user-space read that fills this means bulk: splice from then on
_FLAGS = getattr(os, "SPLICE_F_MOVE", 1) | getattr(os, "SPLICE_F_NONBLOCK", 2)
F_SETPIPE_SZ = 1031

AVAILABLE = hasattr(os, "splice")


class _Direction:
    __slots__ = (
        "done",
        "dst",
        "dst_sock",
        "eof",
        "in_pipe",
        "moved",
        "pair",
        "pipe_r",
        "pipe_w",
        "prebuf",
        "reading",
        "src",
        "writing",
    )

    def __init__(
        self, pair: SplicePair, src: socket.socket, dst: socket.socket, prebuf: bytes, eof: bool
    ) -> None:
        self.pair = pair
        self.src = src.fileno()
        self.dst = dst.fileno()
        self.dst_sock = dst
        self.pipe_r = self.pipe_w = -1  # made by the first read that looks like bulk
        self.in_pipe = 0
        self.moved = 0  # bytes delivered to the destination (for the log)
        self.prebuf = prebuf
        self.eof = eof
        self.done = False
        self.reading = False
        self.writing = False

    def start(self) -> None:
        self.flush()

    def _make_pipe(self) -> None:
        self.pipe_r, self.pipe_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        with contextlib.suppress(OSError):
            fcntl.fcntl(self.pipe_w, F_SETPIPE_SZ, CHUNK)

    def on_readable(self) -> None:
        if self.pipe_w < 0:
            self._read_small()
            return
        try:
            n = os.splice(self.src, self.pipe_w, CHUNK, flags=_FLAGS)
        except BlockingIOError:
            return
        except OSError:
            self.pair.fail()
            return
        self.pair.touch()
        if n == 0:
            self.eof = True
            self._stop_reading()
        self.in_pipe += n
        self.flush()

    def _read_small(self) -> None:
        """Until the direction proves bulky: read into user space (``prebuf`` is empty
        whenever reading is on), and make the pipe once a read fills ``SMALL``."""
        try:
            data = os.read(self.src, SMALL)
        except BlockingIOError:
            return
        except OSError:
            self.pair.fail()
            return
        self.pair.touch()
        if not data:
            self.eof = True
            self._stop_reading()
        elif len(data) == SMALL:
            with contextlib.suppress(OSError):  # no fds left: keep copying in user space
                self._make_pipe()
        self.prebuf = data
        self.flush()

    def flush(self) -> None:
        pair = self.pair
        try:
            while self.prebuf:
                sent = os.write(self.dst, self.prebuf)
                self.prebuf = self.prebuf[sent:]
                self.moved += sent
            while self.in_pipe:
                sent = os.splice(self.pipe_r, self.dst, self.in_pipe, flags=_FLAGS)
                self.in_pipe -= sent
                self.moved += sent
        except BlockingIOError:
            self._stop_reading()
            if not self.writing:
                self.writing = True
                pair.loop.add_writer(self.dst, self.flush)
            return
        except OSError:
            pair.fail()
            return
        if self.writing:
            self.writing = False
            pair.loop.remove_writer(self.dst)
        if self.eof:
            if not self.done:
                self.done = True
                other = pair.down if self is pair.up else pair.up
                if not other.done:  # else closing both at once sends the FIN anyway
                    with contextlib.suppress(OSError):
                        self.dst_sock.shutdown(socket.SHUT_WR)
                pair.check_done()
        elif not self.reading:
            self.reading = True
            pair.loop.add_reader(self.src, self.on_readable)

    def _stop_reading(self) -> None:
        if self.reading:
            self.reading = False
            self.pair.loop.remove_reader(self.src)

    def close(self) -> None:
        loop = self.pair.loop
        if self.reading:
            self.reading = False
            loop.remove_reader(self.src)
        if self.writing:
            self.writing = False
            loop.remove_writer(self.dst)
        if self.pipe_r >= 0:
            for fd in (self.pipe_r, self.pipe_w):
                with contextlib.suppress(OSError):
                    os.close(fd)
            self.pipe_r = self.pipe_w = -1


class SplicePair:
    """Both directions between a client socket and a server socket."""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        client: socket.socket,
        server: socket.socket,
        prebuf: bytes,
        client_eof: bool,
        timeout: float | None,
        on_close: Callable[[], None],
    ) -> None:
        self.loop = loop
        self.client = client
        self.server = server
        self.timeout = timeout
        self.on_close = on_close
        self.closed = False
        self.timed_out = False
        self.deadline = Deadline(loop, self._expired)
        self.up = _Direction(self, client, server, prebuf, client_eof)
        self.down = _Direction(self, server, client, b"", False)

    def start(self) -> None:
        self.touch()
        self.up.start()
        if not self.closed:
            self.down.start()

    def touch(self) -> None:
        if self.timeout is not None:
            self.deadline.set_in(self.timeout)

    def check_done(self) -> None:
        if self.up.done and self.down.done:
            self.close()

    def _expired(self) -> None:
        self.timed_out = True
        self.close()

    def fail(self) -> None:
        """An error or a timeout: drop both sides now."""
        self.close()

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        self.deadline.close()
        self.up.close()
        self.down.close()
        self.client.close()
        self.server.close()
        self.on_close()
