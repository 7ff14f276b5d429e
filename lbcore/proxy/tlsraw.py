"""TLS-terminating HTTP client connections on Linux without uvloop's SSL layer.

Why: on the full-handshake bench (a new TLS connection per request) lbcore spent about
1.3x HAProxy's CPU per request although both negotiate exactly the same thing (TLS 1.3,
TLS_AES_256_GCM_SHA384, X25519, the same ECDSA P-256 certificate, ALPN http/1.1, two
session tickets; OpenSSL does the cryptography for both). The difference was glue:
uvloop's SSL protocol runs OpenSSL over memory BIOs and drives ``ssl.SSLObject``
through several Python-level calls per record and per state change (wrap_bio, the
handshake, the outgoing-BIO reads, the extra-info dict with ``getpeercert``, the
unwrap on close). A bare TLS server measured on this machine: about 375 µs of CPU per
handshake + response over uvloop's SSL transport, 295 µs over this module's way,
HAProxy (``http-request return``, no server) 312 µs.

Theory of operation: the listener accepts as ``tcpraw.RawListener`` does (a bounded
batch per wake-up), makes the socket non-blocking and hands OpenSSL the socket itself
(``SSLContext._wrap_socket``: the C ``_ssl._SSLSocket``, what ``ssl.SSLSocket`` wraps,
without the Python wrapper's per-connection ``getpeername`` and ``getsockopt``), so
OpenSSL reads and writes the file descriptor directly, as in HAProxy. The socket joins
the worker's ``tcpraw.Poller`` edge-triggered; the first events drive ``do_handshake``
(bounded by ``timeout client``, as HAProxy bounds it), and only a finished handshake
calls the protocol's ``connection_made`` — as with asyncio, a failed one never reaches
the protocol. Then ``TlsTransport`` is the same duck-typed transport as
``httpraw.RawTransport`` over ``read``/``write`` of the TLS object:

* Reading goes on until OpenSSL wants more from the socket (``SSLWantReadError``: it
  read the socket until EAGAIN), since OpenSSL may hold a decrypted record the socket
  no longer signals. The peer's close_notify or a bare FIN is the end of input.
* ``write`` encrypts and sends at once when nothing is queued. OpenSSL takes a write
  whole or not at all (no partial writes), and a write it could not finish must be
  retried with the same bytes, so the queue keeps whole buffers and retries the first
  on the next output edge.
* ``close`` sends what is queued, then a close_notify (HAProxy sends one too), then
  closes the socket; ``abort`` closes at once.
* The TLS object's owner is a ``lbcore.tls.owner.TlsOwner`` (not compiled: OpenSSL
  holds it by weak reference): the SNI callback (``lbcore.tls.context``) receives it,
  records the name and may switch its ``context``; ``get_extra_info("ssl_object")``
  returns it with the ``getpeercert``, ``version`` and ``cipher`` the TLS fetches read.

TLS binds in TCP mode, and everything when ``LBCORE_RAW_TLS=0`` (or
``LBCORE_RAW_HTTP=0``, or no epoll), keep uvloop's SSL transports.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import os
import socket
import ssl
from collections.abc import Callable
from typing import Any

from lbcore.proxy import httpraw, tcpraw
from lbcore.proxy.common import Deadline
from lbcore.proxy.tcpraw import Poller
from lbcore.tls.owner import TlsOwner

log = logging.getLogger("lbcore.proxy")

_IN = tcpraw._IN
_OUT = tcpraw._OUT
_ERR = tcpraw._ERR
_HUP = tcpraw._HUP
_RDHUP = tcpraw._RDHUP
_READ = _IN | _RDHUP | _HUP | _ERR
_WAKE_WRITER = _OUT | _ERR | _HUP
_STREAM = tcpraw._STREAM

#: plaintext bytes asked per read: OpenSSL returns at most one record (16 KiB) a call
READ_SIZE = 16384
READS_PER_TURN = 16  # records in a row before yielding to the loop

_QUIET = (errno.ECONNRESET, errno.EPIPE, errno.ECONNABORTED, errno.ETIMEDOUT, None)


def enabled() -> bool:
    """Where the raw HTTP path runs; ``LBCORE_RAW_TLS=0`` keeps uvloop's SSL layer."""
    return httpraw.enabled() and os.environ.get("LBCORE_RAW_TLS", "1") != "0"


class TlsTransport(httpraw.StreamTransport):
    """A TLS stream transport over one accepted socket in a ``tcpraw.Poller``."""

    __slots__ = ("deadline", "handshaking", "made", "owner", "tls")

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        poller: Poller,
        sock: socket.socket,
        peer: Any,
        protocol: Any,
        context: ssl.SSLContext,
    ) -> None:
        super().__init__(loop, poller, sock, peer, protocol)
        self.owner = TlsOwner(context, sock)
        self.tls: Any = self.owner.tls  # reads and writes ``sock`` itself
        self.handshaking = True
        self.made = False  # the protocol's connection_made was called
        self.deadline: Deadline | None = None

    def start(self, handshake_timeout: float) -> None:
        """Join the poller: the ClientHello's arrival (or its presence) is the first
        event, on a later loop turn."""
        self.poller.register(self.sock, self.on_event)
        self.deadline = Deadline(self.loop, self._handshake_timeout)
        self.deadline.set_in(handshake_timeout)

    # ---- asyncio.BaseTransport ---------------------------------------------------

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        if name == "peername":
            return self.peer
        if name == "ssl_object":
            return self.owner
        if self.closed:
            return default
        try:
            if name == "sockname":
                return self.sock.getsockname()
            if name == "socket":
                return self.sock
            if name == "sslcontext":
                return self.tls.context
            if name == "peercert":
                return self.tls.getpeercert()
            if name == "cipher":
                return self.tls.cipher()
        except OSError:
            return default
        return default

    def close(self) -> None:
        """Stop reading; send what is queued, then a close_notify, then close."""
        if self.closing:
            return
        self.closing = True
        if not self.buffer:
            self._close_notify()
            self._finish(None)

    # ---- asyncio.WriteTransport --------------------------------------------------

    def write(self, data: bytes) -> None:
        n = len(data)
        if self.closing or not n:
            return
        if not self.buffer and self.writable and not self.handshaking:
            try:
                self.tls.write(data)
                return
            except (ssl.SSLWantWriteError, ssl.SSLWantReadError):
                self.writable = False  # OpenSSL keeps its place: retry these bytes
            except (ssl.SSLError, OSError) as exc:
                self._fatal(exc)
                return
        self.buffer.append(data)
        self.buffered += n
        self._check_high()

    def writelines(self, list_of_data: list[bytes]) -> None:
        self.write(b"".join(list_of_data))  # one TLS record, not one per piece

    def write_eof(self) -> None:
        raise NotImplementedError("TLS transports cannot half-close")

    def can_write_eof(self) -> bool:
        return False  # as asyncio's and uvloop's SSL transports

    # ---- events --------------------------------------------------------------------

    def on_event(self, ev: int) -> None:
        """One epoll event for the socket (edge-triggered: each edge comes once)."""
        if ev & _READ:
            self.readable = True
        if ev & _WAKE_WRITER:
            self.writable = True
        if self.handshaking:
            self._handshake()
            return
        if self.buffer and self.writable and not self.closed:
            self._flush()
        if self.readable and not (self.reading_paused or self.closing or self.eof_read):
            self._read()

    def _handshake(self) -> None:
        try:
            self.tls.do_handshake()
        except ssl.SSLWantReadError:
            self.readable = False
            return
        except ssl.SSLWantWriteError:
            self.writable = False
            return
        except (ssl.SSLError, OSError) as exc:
            # refused, reset or not TLS at all: the protocol never heard of it
            log.debug("TLS handshake with %s failed: %s", self.peer, exc)
            self.closing = True
            self._finish(None)
            return
        self.handshaking = False
        if self.deadline is not None:
            self.deadline.close()
            self.deadline = None
        self.made = True
        self.protocol.connection_made(self)
        # The request may have come with the client's Finished: read it now.
        self.readable = True
        if not (self.reading_paused or self.closing):
            self._read()

    def _handshake_timeout(self) -> None:
        self.deadline = None
        if self.handshaking and not self.closed:
            self.closing = True
            self._finish(None)

    def _read(self) -> None:
        read = self.tls.read
        for _ in range(READS_PER_TURN):
            try:
                data = read(READ_SIZE)
            except ssl.SSLWantReadError:
                self.readable = False  # the socket is drained: a new edge comes
                return
            except ssl.SSLWantWriteError:
                self.writable = False  # OpenSSL must write first (a key update)
                return
            except (ssl.SSLZeroReturnError, ssl.SSLEOFError):
                self._eof()
                return
            except (ssl.SSLError, OSError) as exc:
                self._fatal(exc)
                return
            if not data:
                self._eof()
                return
            self.protocol.data_received(data)
            if self.closing or self.eof_read or self.reading_paused:
                return
        self.loop.call_soon(self._read_again)  # a busy sender: let the others run

    # ---- writing -------------------------------------------------------------------

    def _flush(self) -> None:
        buf = self.buffer
        write = self.tls.write
        try:
            while buf:
                write(buf[0])
                self.buffered -= len(buf[0])
                del buf[0]
        except (ssl.SSLWantWriteError, ssl.SSLWantReadError):
            self.writable = False
        except (ssl.SSLError, OSError) as exc:
            self._fatal(exc)
            return
        if self.writing_paused and self.buffered <= self.low:
            self.writing_paused = False
            try:
                self.protocol.resume_writing()
            except Exception:
                log.exception("protocol.resume_writing() failed")
        if not buf and self.closing:
            self._close_notify()
            self._finish(None)

    def _close_notify(self) -> None:
        """Tell the peer this is the end (its answer is not waited for)."""
        if self.handshaking or self.closed:
            return
        try:  # noqa: SIM105 (a context manager per connection costs more)
            self.tls.shutdown()
        except (ssl.SSLError, OSError):
            pass  # sent; OpenSSL then looked for the peer's, which is not there yet

    # ---- the end -------------------------------------------------------------------

    def _fatal(self, exc: Exception) -> None:
        if getattr(exc, "errno", None) not in _QUIET:
            log.debug("TLS client connection failed: %s", exc)
        self.closing = True
        self._finish(exc)

    def _finish(self, exc: Exception | None) -> None:
        if self.deadline is not None:
            self.deadline.close()
            self.deadline = None
        if not self.made:  # a handshake that never finished: the protocol never knew
            self.lost = True
            self.protocol = None
        super()._finish(exc)


class Listener(tcpraw.RawListener):
    """Accepts connections for one TLS-terminating HTTP bind."""

    def __init__(
        self,
        sock: socket.socket,
        poller: Poller,
        loop: asyncio.AbstractEventLoop,
        factory: Callable[[], Any],
        context: ssl.SSLContext,
        handshake_timeout: float,
    ) -> None:
        self.factory = factory
        self.context = context
        self.handshake_timeout = handshake_timeout
        tcpraw.RawListener.__init__(self, sock, poller, loop)

    def serve(self, csock: tcpraw.Sock, peer: Any) -> None:
        # OpenSSL needs a socket it can refer to weakly (the Python class, not the C
        # one accept gave), whose descriptor is non-blocking: it reads it directly.
        sock = socket.socket(self.family, _STREAM, self.proto, csock.detach())
        try:
            sock.setblocking(False)
            transport = TlsTransport(
                self.loop, self.poller, sock, peer, self.factory(), self.context
            )
            transport.start(self.handshake_timeout)
        except OSError:  # the client went away already
            sock.close()
