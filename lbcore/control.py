"""The master <-> worker control channel: one JSON object per SOCK_SEQPACKET message.

Theory of operation: the master creates one ``socketpair(AF_UNIX, SOCK_SEQPACKET)`` per
worker before forking it; the master keeps one end, the worker the other. SEQPACKET keeps
message boundaries (one ``send`` = one ``recv``), so there is no length prefix and no
reassembly; the kernel also tells the receiver when a message was cut (``MSG_TRUNC``),
which we refuse rather than parse half a JSON text. EOF (an empty read) means the peer
process is gone.

Messages are JSON objects with an ``"op"`` key. Master -> worker: ``{"op": "stop",
"grace": true}``, and later server state/weight changes. Worker -> master: counters
snapshots and the like. Unknown ops must be ignored by the receiver, so either side can
learn new ops without breaking the other.

Neither side may block on the other: the master multiplexes every worker with a
selector and drops a message to a worker whose buffer is full (it also signals stops, so
a lost ``stop`` message is harmless); the worker side uses :class:`AsyncChannel`, which
reads with ``loop.add_reader`` and queues writes until the socket is writable.
"""

from __future__ import annotations

import asyncio
import collections
import json
import socket
from collections.abc import Callable
from typing import Any

#: Largest message either side sends or accepts. Counters snapshots of big configs are
#: the largest messages; a megabyte leaves room while keeping a bad peer bounded.
MAX_MESSAGE = 1 << 20

Message = dict[str, Any]


class ChannelError(Exception):
    """A message that cannot be sent or was received malformed (not JSON, cut, too big)."""


def channel_pair() -> tuple[socket.socket, socket.socket]:
    """Two connected SEQPACKET ends: ``(master_end, worker_end)``."""
    a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    for s in (a, b):
        # The default unix buffers (~200 KiB) would refuse a large snapshot outright.
        s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, MAX_MESSAGE * 2)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, MAX_MESSAGE * 2)
    return a, b


def encode(msg: Message) -> bytes:
    """The bytes of one message; refuses non-objects and oversized messages."""
    if not isinstance(msg, dict):
        raise ChannelError(f"a message is a JSON object, not {type(msg).__name__}")
    data = json.dumps(msg, separators=(",", ":")).encode()
    if len(data) > MAX_MESSAGE:
        raise ChannelError(f"message of {len(data)} bytes exceeds {MAX_MESSAGE}")
    return data


def decode(data: bytes) -> Message:
    """The message in ``data``; raises :class:`ChannelError` when it is not a JSON object."""
    try:
        msg = json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ChannelError(f"malformed message: {e}") from None
    if not isinstance(msg, dict):
        raise ChannelError(f"a message is a JSON object, not {type(msg).__name__}")
    return msg


def send(sock: socket.socket, msg: Message) -> None:
    """Send one message. On a non-blocking socket with a full buffer this raises
    ``BlockingIOError`` and nothing was sent (SEQPACKET sends are all-or-nothing)."""
    sock.send(encode(msg))


def recv(sock: socket.socket) -> Message | None:
    """Receive one message; ``None`` when the peer closed its end.

    Raises ``BlockingIOError`` on a non-blocking socket with nothing to read, and
    :class:`ChannelError` for a malformed or truncated message (which is consumed, so
    the next call reads the next message).
    """
    data, _, flags, _ = sock.recvmsg(MAX_MESSAGE + 1)
    if not data and not flags & socket.MSG_TRUNC:
        return None
    if flags & socket.MSG_TRUNC or len(data) > MAX_MESSAGE:
        raise ChannelError(f"message larger than {MAX_MESSAGE} bytes dropped")
    return decode(data)


class AsyncChannel:
    """The worker's end of the channel inside an asyncio loop.

    ``on_message`` is called with each message, ``on_close`` once when the master's end
    is gone (the master died: a worker usually stops gracefully then). Malformed messages
    are dropped and counted in ``errors``; they never raise into the loop.
    """

    def __init__(
        self,
        sock: socket.socket,
        on_message: Callable[[Message], None],
        on_close: Callable[[], None] | None = None,
        loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        self._sock = sock
        self._on_message = on_message
        self._on_close = on_close
        self._loop = loop or asyncio.get_running_loop()
        self._outbox: collections.deque[bytes] = collections.deque()
        self._closed = False
        self.errors = 0
        sock.setblocking(False)
        self._loop.add_reader(sock.fileno(), self._readable)

    def send(self, msg: Message) -> None:
        """Queue one message; it is sent as soon as the socket takes it, in order."""
        if self._closed:
            return
        data = encode(msg)
        if not self._outbox:
            try:
                self._sock.send(data)
                return
            except BlockingIOError:
                self._loop.add_writer(self._sock.fileno(), self._writable)
            except OSError:
                self._lost()
                return
        self._outbox.append(data)

    def close(self) -> None:
        """Stop reading and writing; closes the socket."""
        if self._closed:
            return
        self._closed = True
        self._loop.remove_reader(self._sock.fileno())
        if self._outbox:
            self._loop.remove_writer(self._sock.fileno())
        self._outbox.clear()
        self._sock.close()

    def _readable(self) -> None:
        while not self._closed:
            try:
                msg = recv(self._sock)
            except BlockingIOError:
                return
            except ChannelError:
                self.errors += 1
                continue
            except OSError:
                msg = None
            if msg is None:
                self._lost()
                return
            self._on_message(msg)

    def _writable(self) -> None:
        while self._outbox:
            try:
                self._sock.send(self._outbox[0])
            except BlockingIOError:
                return
            except OSError:
                self._lost()
                return
            self._outbox.popleft()
        self._loop.remove_writer(self._sock.fileno())

    def _lost(self) -> None:
        self.close()
        if self._on_close is not None:
            self._on_close()
