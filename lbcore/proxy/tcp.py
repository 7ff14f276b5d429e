"""The TCP mode adapter: bytes both ways, half-close honoured, flow control both ways.

Theory of operation: a client connection is held (reading paused) until a server is
picked and connected — with HAProxy's retries, redispatch and queueing at maxconn,
as ``lbcore.proxy.tcpdecide`` decides them — then every chunk read on one side is
written to the other. A full write buffer on one side pauses reading on the other.
EOF from one side becomes ``write_eof`` on the other (a half-close), and the pair
closes once both directions have ended. The server slot is released when the pair
is gone.

On Linux, once both sockets are connected, bytes can be moved by ``splice(2)``
through a pipe without entering Python (``lbcore.proxy.splice``); this module is the
portable path and the one used while a connection is being set up.
"""

from __future__ import annotations

import asyncio
import errno
import functools
import ipaddress
import os
import socket
import time
from typing import Any

from lbcore.backend import BackendRuntime
from lbcore.proxy import splice, tcpdecide
from lbcore.proxy.accesslog import ms
from lbcore.proxy.common import Deadline, FrontendRuntime
from lbcore.proxy.splice import SplicePair
from lbcore.proxy.tcpdecide import FAIL, QUEUE, RETRY, TERM_FAIL
from lbcore.server import ServerRuntime


def use_splice() -> bool:
    """splice(2) where the platform has it; ``LBCORE_SPLICE=0`` forces the copy path."""
    return splice.AVAILABLE and os.environ.get("LBCORE_SPLICE", "1") != "0"


@functools.lru_cache(maxsize=1024)
def is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def _sock_connect(
    loop: asyncio.AbstractEventLoop,
    sock: socket.socket,
    addr: tuple[str, int],
    timeout: float | None,
) -> asyncio.Future[None]:
    """``wait_for(loop.sock_connect(...), timeout)`` for an IP literal, as one future.

    ``wait_for`` wraps its awaitable in a Task of its own and ``sock_connect`` makes
    another future: on the TCP connection-rate bench that machinery was a visible part
    of each connection's cost. Here: one non-blocking ``connect``, one writer callback,
    one timer. Raises ``TimeoutError`` or the ``OSError`` the connect ended with.
    """
    fut: asyncio.Future[None] = loop.create_future()
    err = sock.connect_ex(addr)
    if err == 0:
        fut.set_result(None)
        return fut
    if err != errno.EINPROGRESS:
        fut.set_exception(OSError(err, os.strerror(err)))
        return fut
    fd = sock.fileno()

    def ready() -> None:
        if fut.done():
            return
        e = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        if e:
            fut.set_exception(OSError(e, os.strerror(e)))
        else:
            fut.set_result(None)

    def expired() -> None:
        if not fut.done():
            fut.set_exception(TimeoutError())

    loop.add_writer(fd, ready)
    timer = loop.call_later(timeout, expired) if timeout is not None else None

    def cleanup(_f: asyncio.Future[None]) -> None:
        loop.remove_writer(fd)
        if timer is not None:
            timer.cancel()

    fut.add_done_callback(cleanup)
    return fut


class TcpUpstream(asyncio.Protocol):
    __slots__ = ("client", "transport")

    def __init__(self, client: TcpClient) -> None:
        self.client = client
        self.transport: Any = None

    def connection_made(self, transport: Any) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.client.from_server(data)

    def eof_received(self) -> bool:
        return self.client.server_eof()

    def connection_lost(self, exc: Exception | None) -> None:
        self.client.server_lost(exc)

    def pause_writing(self) -> None:
        t = self.client.transport
        if t is not None:
            t.pause_reading()

    def resume_writing(self) -> None:
        t = self.client.transport
        if t is not None:
            t.resume_reading()


class TcpClient(asyncio.Protocol):
    """One client connection in TCP mode."""

    splice_ok = True  # False over terminated TLS: the socket carries ciphertext

    def __init__(self, fe: FrontendRuntime, loop: asyncio.AbstractEventLoop) -> None:
        self.fe = fe
        self.loop = loop
        self.transport: Any = None
        self.upstream: TcpUpstream | None = None
        self.backend = fe.default_backend
        self.server: ServerRuntime | None = None
        self.pending: list[bytes] = []
        self.deadline = Deadline(loop, self._timeout)
        self.eofs = 0
        self.client_eof = False
        self.admitted = False
        self.queued = False
        self.closed = False
        self.timeout: float | None = None
        self.spliced: SplicePair | None = None
        self.peer: tuple[Any, ...] = ("", 0)
        # access log (only when the frontend logs)
        self.log = fe.log
        self.term = "--"
        self.t_accept = self.t_assigned = self.t_connected = -1.0
        self.accept_wall = 0.0
        self.bytes_out = 0
        self.retries_left = 0
        self.retries = 0
        self.redispatched = False
        self.log_server = ""

    def connection_made(self, transport: Any) -> None:
        self.transport = transport
        self.peer = transport.get_extra_info("peername") or ("", 0)
        transport.pause_reading()
        if self.log is not None:
            self.accept_wall = time.time()
            self.t_accept = self.loop.time()
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
        self.timeout = tcpdecide.tunnel_timeout(self.fe.timeout_client, be)
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
        if self.log is not None:
            self.t_assigned = self.loop.time()
            self.log_server = server.name
        self.loop.create_task(self._connect(be, server))

    def _dequeued(self) -> None:
        self.queued = False
        if not self.closed:
            self._assign()

    async def _connect(self, be: BackendRuntime, server: ServerRuntime) -> None:
        loop = self.loop
        while True:
            host, port = server.config.host, server.config.port
            # Non-blocking from socket(2) on: no extra ioctl per connection.
            sock = socket.socket(
                socket.AF_INET6 if ":" in host else socket.AF_INET,
                socket.SOCK_STREAM | socket.SOCK_NONBLOCK,
            )
            try:
                if is_ip(host):
                    await _sock_connect(loop, sock, (host, port), be.timeout_connect)
                elif be.timeout_connect is not None:
                    await asyncio.wait_for(
                        loop.sock_connect(sock, (host, port)), be.timeout_connect
                    )
                else:
                    await loop.sock_connect(sock, (host, port))
            except (TimeoutError, OSError):
                sock.close()
                nxt = tcpdecide.connect_failed(self, be, server)
                if nxt is RETRY:
                    await asyncio.sleep(tcpdecide.retry_delay(be))
                elif nxt is FAIL:  # the slot was given back
                    self.term = TERM_FAIL
                    self.close()
                    return
                else:
                    server = nxt  # redispatched
                continue
            if self.closed:
                sock.close()
                be.release(server)
                return
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self.server = server
            if self.log is not None:
                self.t_connected = self.loop.time()
            be.req_tot += 1
            if self.splice_ok and use_splice():
                self._splice(sock)
                return
            _t, up = await loop.create_connection(lambda: TcpUpstream(self), sock=sock)
            if self.closed:
                up.transport.close()
                self._release()
                return
            self.upstream = up
            self.deadline.set_in(self.timeout)
            if self.pending:
                up.transport.writelines(self.pending)
                self.pending = []
            if self.client_eof:
                up.transport.write_eof()
                self.eofs += 1
            else:
                self.transport.resume_reading()
            return

    def _splice(self, server_sock: socket.socket) -> None:
        """Hand both sockets to a ``SplicePair``; the client transport lets go of its fd."""
        tsock = self.transport.get_extra_info("socket")
        fd = os.dup(tsock.fileno())
        # Family, type and protocol given, so socket() asks the kernel nothing; the dup
        # shares the transport's file description, already non-blocking (and only
        # splice/write/shutdown, never this object's own I/O, touch it).
        client_sock = socket.socket(tsock.family, socket.SOCK_STREAM, tsock.proto, fd)
        self.deadline.cancel()
        self.spliced = SplicePair(
            self.loop,
            client_sock,
            server_sock,
            b"".join(self.pending),
            self.client_eof,
            self.timeout,
            self._splice_closed,
        )
        self.pending = []
        self.transport.close()  # closes only the transport's fd; the dup keeps the socket
        self.spliced.start()

    def _splice_closed(self) -> None:
        self.deadline.close()
        pair = self.spliced
        if pair is not None:
            self.bytes_out = pair.down.moved
            if pair.timed_out:
                self.term = tcpdecide.TERM_TIMEOUT
        self._release()
        self._log()
        tcpdecide.leave_frontend(self, self.fe)
        self.fe.registry.remove(self)

    def data_received(self, data: bytes) -> None:
        up = self.upstream
        if up is not None:
            up.transport.write(data)
            if self.timeout is not None:
                self.deadline.set_in(self.timeout)
        else:
            # Bytes that arrived before the server connection exists (uvloop may start
            # reading right after connection_made): keep them, and stop reading.
            self.pending.append(data)
            self.transport.pause_reading()

    def from_server(self, data: bytes) -> None:
        if self.transport is not None:
            self.bytes_out += len(data)
            self.transport.write(data)
            if self.timeout is not None:
                self.deadline.set_in(self.timeout)

    def eof_received(self) -> bool:
        up = self.upstream
        self.client_eof = True
        if up is None:
            return True  # forwarded as a half-close once the server is connected
        if up.transport.can_write_eof():
            up.transport.write_eof()
            self.eofs += 1
            return self.eofs < 2
        return False

    def server_eof(self) -> bool:
        t = self.transport
        if t is not None and t.can_write_eof():
            t.write_eof()
            self.eofs += 1
            if self.eofs >= 2:
                t.close()
                return False
            return True
        return False

    def server_lost(self, exc: Exception | None) -> None:
        self._release()
        if self.transport is not None:
            if exc is not None:
                self.term = "SD"
                self.transport.abort()
            else:
                self.transport.close()

    def pause_writing(self) -> None:
        up = self.upstream
        if up is not None:
            up.transport.pause_reading()

    def resume_writing(self) -> None:
        up = self.upstream
        if up is not None:
            up.transport.resume_reading()

    def connection_lost(self, exc: Exception | None) -> None:
        if self.spliced is not None:
            self.transport = None  # the splice pair owns the socket now
            return
        self.closed = True
        self.deadline.close()  # no client <-> deadline cycle left: freed by refcount
        up = self.upstream
        if up is not None and up.transport is not None:
            if exc is not None:
                up.transport.abort()
            else:
                up.transport.close()
        if self.queued:
            tcpdecide.leave_queue(self, self.backend)
        if self.upstream is None:
            self._release()
        if exc is not None and self.term == "--":
            self.term = "CD"
        self._log()
        self.transport = None
        # The upstream (if any) still reports its end to us; we no longer need it, and
        # dropping it leaves no client <-> upstream cycle for the collector.
        self.upstream = None
        # Also takes a connection still held at maxconn off the waiting line (e.g. one
        # closed by a graceful stop): let in later, it would hold its slot for ever.
        tcpdecide.leave_frontend(self, self.fe)
        self.fe.registry.remove(self)

    def _release(self) -> None:
        if self.server is not None and self.backend is not None:
            self.backend.release(self.server)
            self.server = None

    def close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.close()

    def abort(self) -> None:
        if self.spliced is not None:
            self.spliced.fail()
        elif self.transport is not None:
            self.transport.abort()

    def close_if_idle(self) -> None:
        """Graceful stop: TCP connections are never idle; they finish on their own."""
        if self.upstream is None and not self.admitted:
            self.close()

    def _log(self) -> None:
        log_session(self, self.bytes_out)

    def _timeout(self) -> None:
        self.term = tcpdecide.expired_term(self.queued)
        if self.queued:
            self.close()
            return
        up = self.upstream
        if up is not None:
            up.transport.abort()
        if self.transport is not None:
            self.transport.abort()


_record: Any = None  # lbcore.logs.record, imported by the first line logged


def log_session(c: Any, bytes_out: int) -> None:
    """The session's tcplog line (once, at its end): ``c`` is a ``TcpClient`` or a
    ``tcpraw.TcpSession`` (the same attribute names)."""
    global _record
    alog = c.log
    if alog is None:
        return
    c.log = None
    if alog.dontlognull and bytes_out == 0 and c.term == "--":
        return
    now = c.loop.time()
    fe, be = c.fe, c.backend
    peer = c.peer
    t_assigned, t_connected = c.t_assigned, c.t_connected
    server = be.by_name.get(c.log_server) if be is not None else None
    if _record is None:
        from lbcore.logs import record  # only loaded when logging

        _record = record
    t_queue = ms(c.t_accept, t_assigned) if t_assigned >= 0 else -1
    t_connect = ms(t_assigned, t_connected) if t_connected >= 0 else -1
    beconn = sum(s.active for s in be.servers) if be is not None else 0
    tcplog = alog.tcplog
    if tcplog is not None:  # the default format: no record (lbcore.logs.fast)
        alog.send(
            tcplog.render(
                peer[0] or "-",
                peer[1],
                c.accept_wall,
                fe.name,
                False,
                be.name if be is not None else fe.name,
                c.log_server or _record.NOSRV,
                t_queue,
                t_connect,
                ms(c.t_accept, now),
                bytes_out,
                c.term,
                len(fe.registry.conns),
                fe.conn_cur,
                beconn,
                server.active if server is not None else 0,
                c.retries,
                c.redispatched,
                0,
                len(be.queue) if be is not None else 0,
            ),
            c.term,
            -1,
            c.retries,
            c.redispatched,
            now,
        )
        return
    alog.emit(
        _record.RequestRecord(
            client_ip=peer[0] or "-",
            client_port=peer[1],
            accept_ts=c.accept_wall,
            frontend=fe.name,
            backend=be.name if be is not None else fe.name,
            server=c.log_server or _record.NOSRV,
            t_queue=t_queue,
            t_connect=t_connect,
            t_total=ms(c.t_accept, now),
            bytes_read=bytes_out,
            termination=c.term,
            actconn=len(fe.registry.conns),
            feconn=fe.conn_cur,
            beconn=beconn,
            srv_conn=server.active if server is not None else 0,
            retries=c.retries,
            redispatched=c.redispatched,
            backend_queue=len(be.queue) if be is not None else 0,
        ),
        now,
    )
