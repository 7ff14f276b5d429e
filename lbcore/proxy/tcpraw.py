"""TCP mode on Linux without transports: accept, connect and forward straight from epoll.

Why: on the TCP connection-rate bench a connection through the transport-based
adapter (``lbcore.proxy.tcp``) cost 46 system calls against HAProxy's 20, and 1.9x
its CPU. Most of the difference was the event loop's bookkeeping, not the work: every
libuv poll handle made for a new fd probes it with an epoll ADD + DEL, sets FIONBIO,
and later issues up to three DELs; the accepted transport asked for its socket's
names and set TCP_NODELAY, and the fd had to be ``dup``'d away from it to splice.

Theory of operation: the worker keeps one epoll set of its own (``Poller``) for the
sockets of plain TCP-mode frontends, registered once with the event loop as a single
reader. Each socket joins that set once, edge-triggered, for input and output at the
same time (one ``epoll_ctl`` per socket, and none to leave it: closing the socket
removes it). An event only records readiness on the session (``_Way.readable`` /
``_Way.writable``); the session then moves what it can:

* A listening socket is served by a ``Listener`` (``accept`` until EAGAIN, a bounded
  batch per wake-up). The accepted socket stays in blocking mode — it is read and
  written with ``MSG_DONTWAIT`` — which saves a system call per connection; only a
  connection that turns out to be bulk (and is spliced) is switched to non-blocking.
* The server socket is made non-blocking by ``socket(2)`` itself, connected without
  waiting, and joins the set; the first output event without EPOLLERR means
  "connected" (as HAProxy decides), so no ``getsockopt(SO_ERROR)`` on success.
* Each direction (client to server, server to client) reads into one buffer shared by
  the worker and writes it out at once; what the destination does not take is kept
  and reading that direction stops until the destination is writable again. A read
  shorter than asked drained the socket (new data raises a new edge); when the event
  already said the peer closed (EPOLLRDHUP), that short read was also the end of the
  stream, which saves the read that would return 0. A read that fills the buffer
  means bulk: the direction gets a pipe and ``splice(2)`` from then on, as in
  ``lbcore.proxy.splice``.
* End of stream on one side becomes ``shutdown(SHUT_WR)`` on the other; when both
  directions have ended, or on any error, both sockets are closed.

Sockets are closed at the end of an event batch, never in the middle of one, so a
new socket cannot get the number of a closed one while the batch still holds events
for the old. Admission (``maxconn``), queueing, retries, redispatch and timeouts are
decided by ``lbcore.proxy.tcpdecide`` and the ``tcplog`` line written by
``tcp.log_session``, as for ``lbcore.proxy.tcp``, which remains the path for TLS,
content inspection, platforms without epoll/splice and ``LBCORE_SPLICE=0``.
"""

from __future__ import annotations

import _socket
import asyncio
import contextlib
import errno
import fcntl
import logging
import os
import select
import socket
import time
from collections.abc import Callable
from typing import Any

from lbcore.backend import BackendRuntime
from lbcore.proxy import splice, tcp, tcpdecide
from lbcore.proxy.common import Deadline, FrontendRuntime
from lbcore.proxy.tcpdecide import FAIL, QUEUE, RETRY, TERM_FAIL
from lbcore.server import ServerRuntime

log = logging.getLogger("lbcore.proxy")

AVAILABLE = splice.AVAILABLE and hasattr(select, "epoll")

_IN = select.EPOLLIN if AVAILABLE else 1
_OUT = select.EPOLLOUT if AVAILABLE else 4
_ERR = select.EPOLLERR if AVAILABLE else 8
_HUP = select.EPOLLHUP if AVAILABLE else 16
_RDHUP = getattr(select, "EPOLLRDHUP", 0x2000)
_ET = getattr(select, "EPOLLET", 1 << 31)
_MASK = _IN | _OUT | _RDHUP | _ET
_READ = _IN | _RDHUP | _HUP | _ERR
_DONTWAIT = getattr(socket, "MSG_DONTWAIT", 0x40)
_NODELAY = (socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
_STREAM = int(socket.SOCK_STREAM)
_STREAM_NONBLOCK = int(socket.SOCK_STREAM | socket.SOCK_NONBLOCK) if AVAILABLE else _STREAM

# The C socket type, not ``socket.socket``: that subclass adds a Python-level
# ``__init__``/``close`` and converts family and type to enums on every ``accept``,
# which on the connection-rate bench was visible in each connection's cost.
Sock = _socket.socket

SMALL = splice.SMALL  # a user-space read that fills this means bulk: splice from then on
CHUNK = splice.CHUNK
_SPLICE = getattr(os, "SPLICE_F_MOVE", 1) | getattr(os, "SPLICE_F_NONBLOCK", 2)
ACCEPT_BATCH = 64  # accepts per wake-up of a listener: bounded, so other work goes on
READS_PER_TURN = 16  # reads in a row for one direction before yielding to the loop
_ACCEPT_RETRY = 0.1  # seconds before accepting again after running out of fds

# states of a session
_WAITING, _CONNECTING, _ESTABLISHED, _CLOSED = range(4)


def enabled() -> bool:
    """This path where the platform has it; ``LBCORE_SPLICE=0`` forces the portable one."""
    return AVAILABLE and tcp.use_splice()


class Poller:
    """The worker's epoll set for TCP-mode sockets, nested in the event loop's own."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.ep = select.epoll()
        self.handlers: dict[int, Callable[[int], None]] = {}
        self.dispatching = False
        self.deferred: list[Sock] = []
        self.buf = bytearray(SMALL)  # every user-space read lands here, then goes out
        self.view = memoryview(self.buf)
        loop.add_reader(self.ep.fileno(), self._dispatch)

    def register(self, sock: Sock, handler: Callable[[int], None]) -> None:
        fd = sock.fileno()
        self.handlers[fd] = handler
        self.ep.register(fd, _MASK)

    def close(self, sock: Sock) -> None:
        """Forget ``sock`` and close it (at the end of the batch being dispatched)."""
        self.handlers.pop(sock.fileno(), None)
        if self.dispatching:
            self.deferred.append(sock)
        else:
            sock.close()

    def _dispatch(self) -> None:
        self.dispatching = True
        try:
            handlers = self.handlers
            for fd, ev in self.ep.poll(0, 256):
                h = handlers.get(fd)
                if h is not None:
                    try:
                        h(ev)
                    except Exception:  # one broken session must not stop the others
                        log.exception("TCP session failed")
        finally:
            self.dispatching = False
            if self.deferred:
                for sock in self.deferred:
                    sock.close()
                self.deferred.clear()

    def shutdown(self) -> None:
        with contextlib.suppress(Exception):
            self.loop.remove_reader(self.ep.fileno())
        self.ep.close()


class RawListener:
    """Accepts connections on one listening socket, in bounded batches per wake-up, as
    bare sockets with no transport object; ``serve`` takes each one (the TCP and the
    plain-HTTP listeners differ only there)."""

    def __init__(
        self, sock: socket.socket, poller: Poller, loop: asyncio.AbstractEventLoop
    ) -> None:
        self.sock = sock
        self.poller = poller
        self.loop = loop
        self.fd = sock.fileno()
        self.family = int(sock.family)
        self.proto = sock.proto
        self.active = True
        sock.setblocking(False)  # the listener's own flag; usually already so
        # Accepted sockets inherit TCP_NODELAY from their listening socket (Linux, where
        # this path runs): set once here instead of one setsockopt per connection.
        sock.setsockopt(*_NODELAY)
        loop.add_reader(self.fd, self._accept)

    def serve(self, csock: Sock, peer: Any) -> None:
        """Take one accepted, non-blocking socket and the peer address accept gave."""
        raise NotImplementedError

    def _accept(self) -> None:
        accept = self.sock._accept  # type: ignore[attr-defined]  # (fd, address), no object
        family, proto = self.family, self.proto
        for _ in range(ACCEPT_BATCH):
            try:
                fd, peer = accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as e:
                if e.errno in (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM):
                    # Out of descriptors: stop accepting for a moment (the connections
                    # wait in the backlog) instead of spinning on a readable listener.
                    self.loop.remove_reader(self.fd)
                    self.loop.call_later(_ACCEPT_RETRY, self._resume)
                return  # ECONNABORTED and the like: the next wake-up goes on
            self.serve(Sock(family, _STREAM, proto, fd), peer)

    def _resume(self) -> None:
        if self.active:
            self.loop.add_reader(self.fd, self._accept)

    def close(self) -> None:
        """Stop accepting (graceful stop); the socket itself belongs to the master."""
        if self.active:
            self.active = False
            self.loop.remove_reader(self.fd)


class Listener(RawListener):
    """Accepts connections for one plain TCP frontend on one listening socket."""

    def __init__(
        self,
        fe: FrontendRuntime,
        sock: socket.socket,
        poller: Poller,
        loop: asyncio.AbstractEventLoop,
    ) -> None:
        self.fe = fe
        be = fe.default_backend
        # the session's inactivity timeout, as HAProxy picks it for a tunnel
        self.timeout: float | None = None
        if be is not None:
            self.timeout = tcpdecide.tunnel_timeout(fe.timeout_client, be)
        RawListener.__init__(self, sock, poller, loop)

    def serve(self, csock: Sock, peer: Any) -> None:
        try:
            TcpSession(self.fe, self.loop, self.poller, csock, peer, self.timeout).start()
        except OSError:  # the client went away before its session started
            self.poller.close(csock)


class _Way:
    """One direction of a session: bytes from ``src`` to ``dst``."""

    __slots__ = (
        "done",
        "dst",
        "eof",
        "in_pipe",
        "moved",
        "pending",
        "pipe_r",
        "pipe_w",
        "rdhup",
        "readable",
        "src",
        "writable",
    )

    def __init__(self, src: Sock, dst: Sock) -> None:
        self.src = src
        self.dst = dst
        self.readable = False  # src may have bytes (or an end) to read
        self.rdhup = False  # the last event on src said its peer closed
        self.writable = True  # dst took the last write in full
        self.pending: bytes | memoryview = b""  # read but not yet taken by dst
        self.pipe_r = self.pipe_w = -1  # made once the direction proves bulk
        self.in_pipe = 0
        self.moved = 0  # bytes delivered to dst
        self.eof = False
        self.done = False  # eof forwarded (or nothing left to forward)

    def close_pipe(self) -> None:
        if self.pipe_r >= 0:
            for fd in (self.pipe_r, self.pipe_w):
                with contextlib.suppress(OSError):
                    os.close(fd)
            self.pipe_r = self.pipe_w = -1


class TcpSession:
    """One client connection of a plain TCP frontend, from accept to its log line."""

    __slots__ = (
        "accept_wall",
        "admitted",
        "backend",
        "client_fin",
        "closed",
        "csock",
        "deadline",
        "down",
        "fe",
        "log",
        "log_server",
        "loop",
        "nonblocking",
        "peer",
        "poller",
        "queued",
        "redispatched",
        "retries",
        "retries_left",
        "retry_handle",
        "server",
        "ssock",
        "state",
        "t_accept",
        "t_assigned",
        "t_connected",
        "term",
        "timeout",
        "up",
    )

    def __init__(
        self,
        fe: FrontendRuntime,
        loop: asyncio.AbstractEventLoop,
        poller: Poller,
        csock: Sock,
        peer: tuple[Any, ...],
        timeout: float | None,
    ) -> None:
        self.fe = fe
        self.loop = loop
        self.poller = poller
        self.csock = csock
        self.ssock: Sock | None = None
        self.peer = peer
        self.backend: BackendRuntime | None = fe.default_backend
        self.server: ServerRuntime | None = None
        self.state = _WAITING
        self.closed = False
        self.admitted = False
        self.queued = False
        self.nonblocking = False
        self.timeout = timeout
        self.deadline = Deadline(loop, self._expired)
        self.retry_handle: asyncio.TimerHandle | None = None
        self.retries_left = 0
        self.up: _Way | None = None
        self.down: _Way | None = None
        self.client_fin = False  # the client's end was announced while no _Way existed
        # access log (only when the frontend logs)
        self.log = fe.log
        self.term = "--"
        self.t_accept = self.t_assigned = self.t_connected = -1.0
        self.accept_wall = 0.0
        self.retries = 0
        self.redispatched = False
        self.log_server = ""

    # ---- accept, admission, server choice ----------------------------------------

    def start(self) -> None:
        if self.log is not None:
            self.accept_wall = time.time()
            self.t_accept = self.loop.time()
        self.poller.register(self.csock, self._on_client)  # (TCP_NODELAY: the listener's)
        self.fe.registry.add(self)
        if self.fe.admit(self._admitted):
            self._admitted()

    def _admitted(self) -> None:
        self.admitted = True
        if self.closed:
            return
        be = self.backend
        if be is None:
            self.close()
            return
        self.retries_left = be.retries
        self._assign()

    def _assign(self) -> None:
        be = self.backend
        assert be is not None
        server = tcpdecide.assign(be, self.peer[0])
        if server is QUEUE:
            self.queued = True
            be.enqueue(self._dequeued)
            self.deadline.set_in(be.timeout_queue)
            return
        if server is FAIL:
            self.term = TERM_FAIL
            self.close()
            return
        self.deadline.cancel()
        if self.log is not None:
            self.t_assigned = self.loop.time()
            self.log_server = server.name
        self.server = server
        self._connect()

    def _dequeued(self) -> None:
        self.queued = False
        if not self.closed:
            self._assign()

    # ---- connecting ------------------------------------------------------------------

    def _connect(self) -> None:
        self.retry_handle = None
        if self.closed:
            return
        server = self.server
        be = self.backend
        assert server is not None and be is not None
        host, port = server.config.host, server.config.port
        if not tcp.is_ip(host):
            self.loop.create_task(self._resolve_and_connect(host, port))
            return
        self._connect_to(host, port, socket.AF_INET6 if ":" in host else socket.AF_INET)

    async def _resolve_and_connect(self, host: str, port: int) -> None:
        try:
            infos = await self.loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except OSError:
            infos = []
        if self.closed:
            return
        if not infos:
            self._connect_failed()
            return
        family, _t, _p, _c, addr = infos[0]
        self._connect_to(str(addr[0]), int(addr[1]), family)

    def _connect_to(self, host: str, port: int, family: int) -> None:
        be = self.backend
        assert be is not None
        self.state = _CONNECTING
        try:
            ssock = Sock(family, _STREAM_NONBLOCK)
        except OSError:
            self._connect_failed()
            return
        self.ssock = ssock
        try:
            ssock.setsockopt(*_NODELAY)
            err = ssock.connect_ex((host, port))
        except OSError:
            err = errno.EINVAL
        if err not in (0, errno.EINPROGRESS):
            self._connect_failed()
            return
        self.up = _Way(self.csock, ssock)
        self.down = _Way(ssock, self.csock)
        self.up.readable = True  # whatever the client sent before (its edge is spent)
        self.up.rdhup = self.client_fin  # ... and whether it ended (that edge too)
        self.poller.register(ssock, self._on_server)
        self.deadline.set_in(be.timeout_connect)

    def _connect_failed(self) -> None:
        be, server = self.backend, self.server
        assert be is not None and server is not None
        if self.ssock is not None:
            self.poller.close(self.ssock)
            self.ssock = None
        if self.up is not None and self.up.rdhup:
            self.client_fin = True  # seen while connecting: the retry's ways need it
        self.up = self.down = None
        self.deadline.cancel()
        self.state = _WAITING
        nxt = tcpdecide.connect_failed(self, be, server)
        if nxt is RETRY:
            self.retry_handle = self.loop.call_later(tcpdecide.retry_delay(be), self._connect)
        elif nxt is FAIL:
            self.server = None  # its slot was given back
            self.term = TERM_FAIL
            self.close()
        else:
            self.server = nxt  # redispatched
            self._connect()

    def _established(self) -> None:
        self.state = _ESTABLISHED
        be = self.backend
        assert be is not None
        if self.log is not None:
            self.t_connected = self.loop.time()
        be.req_tot += 1
        # The armed connect deadline is earlier: it fires, finds the new one later, and
        # re-arms itself for the rest (one timer per connection, not two).
        self.deadline.set_in(self.timeout)

    # ---- events ----------------------------------------------------------------------

    def _on_client(self, ev: int) -> None:
        up, down = self.up, self.down
        if up is None or down is None:
            # Before the server socket exists (queued, held, between retries): its first
            # run reads anyway, but no later edge repeats that the client has ended.
            if ev & _RDHUP and not ev & _ERR:
                self.client_fin = True
            return
        if ev & _READ:
            up.readable = True
            up.rdhup = (up.rdhup or bool(ev & _RDHUP)) and not ev & _ERR
        if ev & _OUT:
            down.writable = True
        if self.state == _ESTABLISHED:
            self._run(up)
            if not self.closed:
                self._run(down)

    def _on_server(self, ev: int) -> None:
        up, down = self.up, self.down
        assert up is not None and down is not None
        if self.state == _CONNECTING:
            if ev & _ERR or (ev & _HUP and not ev & _OUT):
                self._connect_failed()
                return
            if not ev & (_OUT | _IN):
                return
            self._established()
        if ev & _READ:
            down.readable = True
            down.rdhup = (down.rdhup or bool(ev & _RDHUP)) and not ev & _ERR
        if ev & _OUT:
            up.writable = True
        self._run(up)
        if not self.closed:
            self._run(down)

    # ---- forwarding --------------------------------------------------------------------

    def _run(self, w: _Way) -> None:
        """Move what ``w`` can move now; stop at EAGAIN on either side."""
        if w.done:
            return
        try:
            if (w.pending or w.in_pipe) and not self._flush(w):
                return
            turns = 0
            while w.readable and not w.eof:
                turns += 1
                if turns > READS_PER_TURN:  # yield; the edge is spent, so come back
                    self.loop.call_soon(self._run_again, w)
                    return
                if w.pipe_w >= 0:
                    try:
                        n = os.splice(w.src.fileno(), w.pipe_w, CHUNK, flags=_SPLICE)
                    except BlockingIOError:
                        w.readable = False
                        break
                    if n == 0:
                        w.eof = True
                        break
                    w.in_pipe = n
                else:
                    buf = self.poller.view
                    try:
                        n = w.src.recv_into(buf, SMALL, _DONTWAIT)
                    except BlockingIOError:
                        w.readable = False
                        break
                    if n == 0:
                        w.eof = True
                        break
                    if n < SMALL:
                        w.readable = False  # drained: new data raises a new edge
                        if w.rdhup:
                            w.eof = True  # ... and the peer had closed before this read
                    else:
                        self._make_pipe(w)
                    w.pending = buf[:n]  # sent from the shared buffer, copied if it stays
                self._touch()
                if not self._flush(w):
                    return
        except OSError:
            self.term = "CD" if w.src is self.csock else "SD"
            self.close()
            return
        if w.eof and not w.done:
            w.done = True
            other = self.down if w is self.up else self.up
            assert other is not None
            if other.done:
                self.close()  # closing both sends the FIN anyway
            else:
                with contextlib.suppress(OSError):
                    w.dst.shutdown(socket.SHUT_WR)

    def _run_again(self, w: _Way) -> None:
        if not self.closed:
            self._run(w)

    def _flush(self, w: _Way) -> bool:
        """Write what ``w`` holds; False when ``dst`` is full (its next edge resumes)."""
        if not w.writable:
            return False
        dst = w.dst
        try:
            while w.pending:
                sent = dst.send(w.pending, _DONTWAIT)
                w.moved += sent
                w.pending = w.pending[sent:]
            while w.in_pipe:
                sent = os.splice(w.pipe_r, dst.fileno(), w.in_pipe, flags=_SPLICE)
                w.moved += sent
                w.in_pipe -= sent
        except BlockingIOError:
            w.writable = False
            if isinstance(w.pending, memoryview):
                w.pending = bytes(w.pending)  # the shared buffer is reused by the next read
            return False
        except OSError:
            self.term = "CD" if dst is self.csock else "SD"
            self.close()
            return False
        w.pending = b""
        return True

    def _make_pipe(self, w: _Way) -> None:
        if not self.nonblocking:
            self.nonblocking = True
            self.csock.setblocking(False)  # splice(2) honours only the fd's own flag
        try:
            w.pipe_r, w.pipe_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        except OSError:
            return  # no fds left: keep copying in user space
        with contextlib.suppress(OSError):
            fcntl.fcntl(w.pipe_w, splice.F_SETPIPE_SZ, CHUNK)

    def _touch(self) -> None:
        if self.timeout is not None:
            self.deadline.set_in(self.timeout)

    def _expired(self) -> None:
        if self.state == _CONNECTING:
            self._connect_failed()
        else:
            self.term = tcpdecide.expired_term(self.queued)
            self.close()

    # ---- the end -------------------------------------------------------------------

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        self.state = _CLOSED
        self.deadline.close()  # drops the session <-> deadline cycle: freed by refcount
        if self.retry_handle is not None:
            self.retry_handle.cancel()
            self.retry_handle = None
        be = self.backend
        if self.queued:
            tcpdecide.leave_queue(self, be)
        bytes_out = 0
        for w in (self.up, self.down):
            if w is not None:
                w.close_pipe()
        if self.down is not None:
            bytes_out = self.down.moved
        self.poller.close(self.csock)
        if self.ssock is not None:
            self.poller.close(self.ssock)
        if self.server is not None and be is not None:
            be.release(self.server)
            self.server = None
        tcp.log_session(self, bytes_out)
        tcpdecide.leave_frontend(self, self.fe)
        self.fe.registry.remove(self)

    def abort(self) -> None:
        self.close()

    def close_if_idle(self) -> None:
        """Graceful stop: a connection not yet let in is dropped; the others finish."""
        if self.state == _WAITING and not self.admitted:
            self.close()
