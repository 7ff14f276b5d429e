"""The HTTP mode adapter: asyncio Protocols around the sans-I/O ``lbcore.http`` core.

Theory of operation: one ``HttpClient`` per accepted connection reads requests with an
``h1.Reader``; for each request it runs the frontend's rules, picks a backend and a
server, and borrows an ``Upstream`` (a keep-alive connection to that server) from the
backend's idle pool, or opens one (with retries and redispatch). Request bytes go up,
response bytes come down, both as the raw slices the readers return — bodies are
never re-encoded nor gathered. At the end of a response the upstream connection goes
back to the pool (unless either side asked to close) and the client reader moves to
the next request.

Flow control both ways: when a transport's write buffer fills (``pause_writing``), the
peer's reading is paused, and resumed on ``resume_writing``; requests waiting for a
server pause their client once a little is buffered. So a 10 MB body is only ever
in flight in socket buffers and a few 64 KiB slices.

One ``Deadline`` per client connection carries whichever HAProxy timeout applies to
the current phase: http-request/keep-alive while waiting for a request, queue while
queued, client while reading a body, server while waiting for the response, tunnel
once upgraded.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
import time
from http import HTTPStatus
from typing import TYPE_CHECKING, Any, Final

from lbcore.backend import REUSE_AGGRESSIVE, REUSE_ALWAYS, REUSE_NEVER, BackendRuntime
from lbcore.balance import PickContext
from lbcore.http import h1
from lbcore.http.errors import error_page, redirect
from lbcore.http.h1 import END, NEED_DATA, PAUSED, ProtocolError, Reader, Request, Response
from lbcore.http.rules import Verdict, apply_request_rules, apply_response_rules
from lbcore.logs.record import NOSRV, RequestRecord
from lbcore.proxy import persistence, services
from lbcore.proxy.common import Deadline, FrontendRuntime, sends_of
from lbcore.server import ServerRuntime
from lbcore.tls.upstream import connect_kwargs as upstream_tls
from lbcore.tls.upstream import reusable as upstream_reusable

if TYPE_CHECKING:
    from lbcore.logs.capture import Captured  # imported by the worker only when it logs

# Client connection phases. (Final, as the constants below: compiled, a Final int is
# a C constant, where a plain module global is a dict lookup at every use.)
IDLE_FIRST: Final = 0
IDLE_KA: Final = 1
WAITING: Final = 2
FORWARD: Final = 3
TUNNEL: Final = 4
CLOSED: Final = 5

_PAUSE_FLOW: Final = 1  # the upstream's write buffer is full
_PAUSE_WAIT: Final = 2  # nothing to forward to yet (queued, connecting, pipelined)
_WAIT_BUFFER: Final = 65536  # bytes a waiting request may buffer before its client is paused
_JOIN_MAX: Final = 4096  # a body this small is joined to its head into one write
_ORPHAN_BUFFER: Final = 16384  # what HAProxy forwards (tune.bufsize) before a write fails
_POOL_MAX: Final = 128  # idle upstream connections kept per server
_OWN_MAX: Final = 10  # a client's own idle connections, http-reuse never (max-session-srv-conns)
#: ``pending`` once sent: shared, never mutated (a new empty list per request was an
#: allocation and a free for nothing)
_NOTHING: Final[list[bytes]] = []
_PLAIN: Final = PickContext()  # for algorithms that read nothing from the request
POOL_IDLE: Final = 5.0  # seconds an idle server connection is kept (HAProxy's pool-purge-delay)

log = logging.getLogger("lbcore.proxy")

#: RFC 9110 §9.2.2: the methods a proxy may send again when a connection fails.
_IDEMPOTENT: Final = frozenset((b"GET", b"HEAD", b"OPTIONS", b"TRACE", b"PUT", b"DELETE"))

#: HAProxy's termination state (first two characters) for the answers lbcore makes.
_TERM: Final = {400: "CR", 403: "PR", 408: "cR", 500: "PR", 502: "SH", 503: "SC", 504: "sH"}


def purge_idle(backends: Any, now: float, max_idle: float = POOL_IDLE) -> int:
    """Close pooled server connections idle for longer than ``max_idle``; count them."""
    closed = 0
    for be in backends:
        if now >= be.need_at:
            be.need_at = now + max_idle
            _estimate_need(be)
        for idle in be.idle.values():
            while idle and now - idle[0].idle_since > max_idle:
                idle.pop(0).transport.close()  # the oldest are first in the list
                closed += 1
    return closed


def _keep_idle(up: Upstream, idle: list[Upstream], used: int, est_need: int) -> bool:
    """May ``up`` join its server's non-empty idle pool? HAProxy 2.6's rule
    (srv_add_to_idle_list) for connections that carried one request: only while the
    connections in use plus the idle ones stay within those in use or the estimated need
    (the peak use of the last purge periods, raised at once to the connections in use now
    by the caller, as HAProxy's srv_use_conn: else a load starting after an idle gap, its
    estimate decayed, had each connection closed after its first request and another
    opened, until the next purge period), so a burst of first requests (http-reuse safe)
    does not leave a pool of connections nobody will take. A proven one (it carried
    a request after its first) is always kept, where HAProxy keeps only the first: see
    below."""
    if len(idle) >= _POOL_MAX:
        return False
    if up.proven:
        # HAProxy keeps a keep-alive session's server connection with the session between
        # its requests; lbcore hands it back to the pool after every response, so the
        # estimate below would close connections busy clients are about to ask for again
        # (measured: 2 % of keep-alive requests opened a new server connection).
        return True
    return used + len(idle) <= max(used, est_need)


def _estimate_need(be: Any) -> None:
    """Each purge period, as HAProxy's srv_cleanup_idle_conns: the need estimate moves
    half-way to the peak use seen (never below it), and a new period starts."""
    for srv in be.servers:
        need = (srv.est_need + srv.max_used) // 2
        srv.est_need = max(need, srv.max_used)
        srv.max_used = srv.active


class Upstream(asyncio.Protocol):
    """A connection to one server; idle in its pool, or serving one client's request."""

    __slots__ = (
        "backend",
        "client",
        "got_data",
        "idle_since",
        "name",
        "proven",
        "read_paused",
        "reader",
        "resp_keep",
        "server",
        "sni",
        "transport",
    )

    def __init__(self, backend: BackendRuntime, server: ServerRuntime) -> None:
        self.backend = backend
        self.server = server
        self.name = server.name  # its pool's key in ``backend.idle`` (read per request)
        self.client: HttpClient | None = None
        self.transport: Any = None
        self.reader = Reader(is_request=False)
        self.read_paused = False
        self.got_data = False
        self.resp_keep = False
        self.idle_since = 0.0
        self.proven = False  # carried a request after its first (http-reuse aggressive)
        self.sni: str | None = None  # the TLS server name it was opened with

    def connection_made(self, transport: Any) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        try:
            self._received(data)
        except Exception:  # a bug of ours must cost one request, not the worker
            client = self.client
            if client is not None:
                client.internal_error()
            else:
                self.transport.abort()

    def _received(self, data: bytes) -> None:
        client = self.client
        if client is None:  # idle: servers do not talk first; drop the connection
            self.transport.close()
            return
        if client.transport is None:  # the client reset while its answer was awaited
            client.orphan_data(self, data)
            return
        self.got_data = True
        reader = self.reader
        reader.feed(data)
        if reader.in_tunnel:
            data = reader.take_buffer()
            if client.log is not None:
                client.bytes_out += len(data)
            client.transport.write(data)
            client.touch_tunnel()
            return
        out: list[bytes] = []
        ctrans = client.transport
        # One clock read for the whole callback (the response's stamp, the log line, the
        # pool's idle time, the next deadline): uvloop's clock is the loop iteration's
        # anyway, so reading it once per stamp only cost a method call each time.
        now: float = client.loop.time()
        try:
            while True:
                ev = reader.next_event()
                if type(ev) is bytes:
                    out.append(ev)
                elif ev is NEED_DATA:
                    break
                elif type(ev) is Response:
                    self.resp_keep = ev.keep_alive
                    head = client.response_head(ev, self, now)
                    if head is None:  # answered otherwise (http-response deny)
                        return
                    out.append(head)
                    if reader.in_tunnel:
                        rest = reader.take_buffer()
                        if rest:
                            out.append(rest)
                        if client.log is not None:
                            client.bytes_out += sum(map(len, out))
                        ctrans.writelines(out)
                        client.start_tunnel()
                        return
                elif ev is END:
                    n = len(out)
                    if n == 1 or (n == 2 and len(out[1]) <= _JOIN_MAX):
                        # A small response whole (head + body): one buffer is one
                        # write(2) in uvloop, cheaper than its writev path.
                        whole = out[0] if n == 1 else out[0] + out[1]
                        if client.log is not None:
                            client.bytes_out += len(whole)
                        if client.client_keep and client.req_done and not client.reader.buffered:
                            # the client stays, nothing of it waits: sent with the turn's
                            # other writes (common.Sends)
                            client.sent_turn = client.sends.write(ctrans, whole)
                        else:
                            ctrans.write(whole)
                    elif n:
                        if client.log is not None:
                            client.bytes_out += sum(map(len, out))
                        ctrans.writelines(out)
                    client.response_end(self, now)
                    return
                else:  # PAUSED: bytes after a complete response → not reusable
                    self.transport.close()
                    break
        except ProtocolError:
            client.upstream_failed(self, 502)
            return
        if out:
            if client.log is not None:
                client.bytes_out += sum(map(len, out))
            if len(out) == 1:  # a body slice alone (large responses): no writev path
                ctrans.write(out[0])
            else:
                ctrans.writelines(out)
            client.deadline.set_in_at(client.t_server, now)

    def eof_received(self) -> bool:
        reader = self.reader
        if self.client is not None and not reader.in_tunnel and reader.is_until_close():
            reader.feed_eof()
            self.data_received(b"")
        elif self.client is not None and reader.in_tunnel:
            self.client.tunnel_eof_from_server()
            return True
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        client = self.client
        if client is None:
            idle = self.backend.idle.get(self.name)
            if idle is not None and self in idle:
                idle.remove(self)
            return
        self.client = None
        client.upstream_lost(self)

    def pause_writing(self) -> None:
        if self.client is not None:
            self.client.pause(_PAUSE_FLOW)

    def resume_writing(self) -> None:
        if self.client is not None:
            self.client.unpause(_PAUSE_FLOW)

    def pause_read(self) -> None:
        if not self.read_paused:
            self.read_paused = True
            self.transport.pause_reading()

    def resume_read(self) -> None:
        if self.read_paused:
            self.read_paused = False
            self.transport.resume_reading()


class HttpClient(asyncio.Protocol):
    """One client connection in HTTP mode."""

    # Slots: with more than 30 attributes an instance's dict is not a shared-key dict
    # any more (CPython 3.11), so each connection built a full dict, attribute by
    # attribute, and every attribute access on the hot path went through it.
    __slots__ = (
        "_queued",
        "accept_wall",
        "admitted",
        "backend",
        "bytes_in",
        "bytes_out",
        "caps",
        "client_eof",
        "client_keep",
        "cookie",
        "deadline",
        "fe",
        "head_bytes",
        "in_tunnel",
        "local",
        "log",
        "log_server",
        "logged",
        "loop",
        "not_first",
        "orphan",
        "own",
        "pause_mask",
        "pending",
        "phase",
        "reader",
        "reading_paused",
        "redispatched",
        "replays",
        "req",
        "req_done",
        "req_turn",
        "resp_started",
        "retries",
        "reused",
        "sends",
        "sent_turn",
        "server",
        "service",
        "src",
        "src_port",
        "status",
        "t_accept",
        "t_assigned",
        "t_connected",
        "t_first",
        "t_head",
        "t_resp",
        "t_server",
        "t_start",
        "tls_info",
        "transport",
        "tunnel_eofs",
        "upstream",
        "write_paused",
    )

    def __init__(self, fe: FrontendRuntime, loop: asyncio.AbstractEventLoop) -> None:
        self.fe = fe
        self.tls_info: Any = None  # a TlsInfo when TLS was terminated (lbcore.proxy.tls)
        self.loop = loop
        self.transport: Any = None
        self.reader = Reader(is_request=True, limits=fe.limits)
        self.src = ""
        self.phase = IDLE_FIRST
        self.deadline = Deadline(loop, self._timeout)
        self.pause_mask = 0
        self.reading_paused = False
        self.write_paused = False
        # http-reuse: set once the first request took its server connection (or was
        # answered here); its own idle server connections when the backend says "never".
        self.not_first = False
        self.own: dict[str, list[Upstream]] | None = None
        self.admitted = False
        # the request in flight
        self.req: Request | None = None
        self.req_done = False
        self.resp_started = False
        self.client_keep = False
        self.backend: BackendRuntime | None = None
        self.server: ServerRuntime | None = None
        self.upstream: Upstream | None = None
        self.pending: list[bytes] = []  # request bytes produced before the upstream exists
        self.head_bytes = b""
        self.reused = False
        self.replays = 0
        self.tunnel_eofs = 0
        self.client_eof = False
        self.t_server: float | None = None  # the backend's timeout server
        self.retries = 0
        self.redispatched = False
        self.in_tunnel = False
        self.orphan = False  # client gone, its request still with the server
        # Access log (only maintained when the frontend logs): loop-clock stamps.
        self.log = fe.log
        self.logged = True  # nothing to log until a connection or request starts
        self.src_port = 0
        self.local: Any = None  # (ip, port) of the frontend, when the log format shows it
        self.bytes_in = 0  # request bytes received (%U)
        self.accept_wall = 0.0
        self.t_accept = self.t_start = 0.0
        self.t_first: float | None = None
        self.t_head = self.t_assigned = self.t_connected = self.t_resp = -1.0
        self.status = 0
        self.bytes_out = 0
        self.log_server = ""
        self._queued = False  # waiting in the backend queue
        self.caps: Captured | None = None  # %hr, %hs, %CC, %CS (capture lines) of the request
        self.cookie: persistence.Outcome | None = None  # the request's persistence
        self.service: services.Call | None = None  # a stats page / exporter answering
        # this loop's writes made together at the end of its turn (common.Sends), and the
        # turn of this connection's last queued write (either direction), of its request
        self.sends = sends_of(loop)
        self.sent_turn = 0
        self.req_turn = 0

    # ---- connection life -------------------------------------------------------

    def connection_made(self, transport: Any) -> None:
        self.transport = transport
        peer = transport.get_extra_info("peername")
        self.src = peer[0] if peer else ""
        now: float = self.loop.time()  # one clock read: the log's stamps and the deadline
        if self.log is not None:
            self.src_port = peer[1] if peer else 0
            if self.log.local_addr:  # %fi/%fp in the log-format
                self.local = transport.get_extra_info("sockname")
            self.accept_wall = time.time()
            self.t_accept = self.t_start = now
            self.logged = False  # a connection that never sends a request is logged too
        fe = self.fe
        fe.registry.add(self)
        if fe.enter() or fe.admit(self._admitted):  # (no bound method when let in)
            # _admitted's work for a connection just made: open, not paused, unread
            self.admitted = True
            self.deadline.set_in_at(fe.timeout_http_request, now)
        else:
            self.pause(_PAUSE_WAIT)

    def _admitted(self) -> None:
        """Let in a connection held at maxconn (see ``FrontendRuntime.admit``)."""
        self.admitted = True
        if self.phase == CLOSED:
            return
        self.deadline.set_in(self.fe.timeout_http_request)
        self.unpause(_PAUSE_WAIT)
        if self.reader.buffered:
            self._pump()

    def connection_lost(self, exc: Exception | None) -> None:
        if (
            self.phase == FORWARD
            and self.req_done
            and not self.resp_started
            and self.upstream is not None
        ):
            # The client reset while the server works on its request. HAProxy (without
            # option abortonclose) does not abort such a request: it awaits the answer,
            # then logs the failed write to the client (CD, the server's status). Same
            # here: see orphan_data; timeout server still bounds the wait.
            self.transport = None
            self.orphan = True
            return
        self.phase = CLOSED
        self._finish()

    def _finish(self) -> None:
        if self.transport is None:
            return
        self.transport = None
        # the server side first: HAProxy logs once it is released (%bc/%sc count it out)
        self._drop_request(close_upstream=True)
        if not self.logged:
            if self.in_tunnel:
                self._log("--")
            elif self.req is None:
                self.status = 400
                self._log("CR")
            else:
                self._log("CD" if self.resp_started else ("CC" if self.phase == WAITING else "CH"))
        self._teardown()

    def _teardown(self) -> None:
        self.orphan = False
        self.phase = CLOSED
        self.deadline.close()  # no client <-> deadline cycle left: freed by refcount
        self._drop_request(close_upstream=True)
        if self.admitted:
            self.admitted = False
            self.fe.leave()
        else:  # still held at maxconn: off the waiting line, or it is let in once gone
            with contextlib.suppress(ValueError):
                self.fe.waiting.remove(self._admitted)
        self.fe.registry.remove(self)
        if self.own is not None:  # http-reuse never: its server connections go with it
            for ups in self.own.values():
                for up in ups:
                    up.transport.close()
            self.own = None

    def close(self) -> None:
        """Close after pending writes are flushed."""
        if self.sent_turn:
            self.flush_sends()
        if self.transport is not None:
            self.phase = CLOSED
            self.deadline.cancel()
            self.transport.close()

    def abort(self) -> None:
        if self.sent_turn:
            self.flush_sends()  # what was written before, as it was before the abort
        if self.transport is not None:
            self.phase = CLOSED
            self.deadline.cancel()
            self.transport.abort()

    def close_if_idle(self) -> None:
        """Graceful stop: idle keep-alive connections go now, busy ones after their answer.

        A connection still waiting for its *first* request is not idle: it was accepted
        from the listening socket the new workers share, so its client has sent (or is
        sending) a request; closing it would fail that request on every reload. It gets
        its answer with ``connection: close`` (bounded by its timeouts and hard-stop-after).
        """
        if self.phase == IDLE_KA and self.reader.at_message_start:
            self.close()

    # ---- flow control --------------------------------------------------------

    def pause(self, why: int) -> None:
        self.pause_mask |= why
        if not self.reading_paused and self.transport is not None:
            self.reading_paused = True
            self.transport.pause_reading()

    def unpause(self, why: int) -> None:
        self.pause_mask &= ~why
        if self.pause_mask == 0 and self.reading_paused and self.transport is not None:
            self.reading_paused = False
            self.transport.resume_reading()

    def pause_writing(self) -> None:
        self.write_paused = True
        if self.upstream is not None:
            self.upstream.pause_read()

    def resume_writing(self) -> None:
        self.write_paused = False
        if self.upstream is not None:
            self.upstream.resume_read()

    # ---- reading requests ----------------------------------------------------

    def flush_sends(self) -> None:
        """Write what this connection queued this turn (``common.Sends``) before what
        must follow it: its next request's answers, a close, a pooled server's reuse."""
        if self.sends.pending(self.sent_turn):
            self.sends.flush()

    def data_received(self, data: bytes) -> None:
        if self.sent_turn:
            self.flush_sends()
        try:
            self._received(data)
        except Exception:  # a bug of ours must cost one request, not the worker
            self.internal_error()

    def internal_error(self) -> None:
        """An unexpected exception while handling this connection: 500, as HAProxy."""
        log.exception("internal error on a client connection from %s", self.src)
        up = self.upstream
        if up is not None:
            self._release_upstream(up, reuse=False)
        if self.resp_started:
            self.abort()
        else:
            self.answer_error(500)

    def _received(self, data: bytes) -> None:
        phase = self.phase
        if phase == TUNNEL:
            up = self.upstream
            if up is not None:
                up.transport.write(data)
                self.touch_tunnel()
            return
        now: float = self.loop.time()  # the one clock read of this callback (see _pump_at)
        if self.log is not None:
            self.bytes_in += len(data)
            if self.t_first is None:
                self.t_first = now
        self.reader.feed(data)
        if (phase == WAITING and self.service is None) or not self.admitted:
            if self.reader.buffered > _WAIT_BUFFER:
                self.pause(_PAUSE_WAIT)
            return
        self._pump_at(now)

    def eof_received(self) -> bool:
        if self.phase == TUNNEL:
            up = self.upstream
            if up is not None and up.transport.can_write_eof():
                up.transport.write_eof()
                self.tunnel_eofs += 1
                return not self.tunnel_eofs >= 2
            return False
        self.reader.feed_eof()
        phase = self.phase
        if phase in (IDLE_FIRST, IDLE_KA) and self.reader.at_message_start:
            return False
        if phase in (FORWARD, WAITING):
            # The client half-closed after (part of) its request: the answer still goes
            # out, then the connection closes. A body cut short is refused by the reader.
            self.client_eof = True
            self.client_keep = False
            if phase == FORWARD:
                self._pump()
            return True
        self.client_eof = True  # a head cut short is the client's abort (CR), not bad syntax
        self._pump()
        return False

    def _pump(self) -> None:
        """Drain request events from the reader while there is somewhere to send them."""
        self._pump_at(self.loop.time())

    def _pump_at(self, now: float) -> None:
        """``_pump`` with the loop's clock already read by the caller: the request's
        stamps and its deadline use it (one clock read per callback, not per stamp)."""
        if self.transport is None:
            return
        reader = self.reader
        out: list[bytes] = []
        ended = False
        try:
            while True:
                ev = reader.next_event()
                if type(ev) is bytes:
                    out.append(ev)
                elif ev is NEED_DATA:
                    break
                elif ev is END:
                    self.req_done = True
                    ended = True
                    # The reader now holds what follows until ``start_next``: the next
                    # event could only be PAUSED, so do here what PAUSED does, without
                    # the call.
                    if reader.buffered > _WAIT_BUFFER:
                        self.pause(_PAUSE_WAIT)
                    break
                elif ev is PAUSED:
                    if reader.buffered > _WAIT_BUFFER:
                        self.pause(_PAUSE_WAIT)
                    break
                else:
                    assert type(ev) is Request
                    if not self._on_request(ev, now) and self.phase != WAITING:
                        break
                    # Waiting for a server: keep walking the body already buffered (into
                    # ``pending``), so broken framing is refused before anything is sent.
        except ProtocolError as err:
            if self.phase == FORWARD and self.resp_started:
                self.abort()
            else:
                self._parse_error(err.status)
            return
        if self.service is not None:  # answered here: the body is the service's
            services.feed(self, out)
            return
        if self.phase == FORWARD:
            up = self.upstream
            if self.pending:
                # the head (and what was read while waiting) first
                out = self.pending + out if out else self.pending
                self.pending = _NOTHING
            if out and up is not None:
                if len(out) == 1 and ended:
                    # a whole request in one buffer (no body to follow): sent with the
                    # turn's other writes (common.Sends)
                    self.sent_turn = self.req_turn = self.sends.write(up.transport, out[0])
                elif len(out) == 1:  # a request head alone: one write(2), no writev path
                    up.transport.write(out[0])
                elif len(out) == 2 and len(out[1]) <= _JOIN_MAX:
                    up.transport.write(out[0] + out[1])  # a small request whole
                else:
                    up.transport.writelines(out)
            if out or ended:
                # Request sent whole: the server's turn; else the client's, for the rest.
                self.deadline.set_in_at(
                    self.t_server if self.req_done else self.fe.timeout_client, now
                )
        elif out:
            self.pending = self.pending + out  # (a new list: _NOTHING stays empty)

    def _parse_error(self, status: int) -> None:
        self.fe.count_status(status)
        if self.transport is not None:
            page = error_page(status)
            self.transport.write(page)
            if self.log is not None:
                # As HAProxy: the multiplexer's own answers are not counted in %B, and
                # an invalid request is a proxy-side ("P") refusal, a late one a "c" one.
                self.status = status
                if status == 408:
                    self._log("cR")
                else:
                    self._log("CR" if self.client_eof and self.req is None else "PR")
        self.close()

    def _on_request(self, req: Request, now: float) -> bool:
        """A request head arrived; False stops pumping until a server is ready."""
        fe = self.fe
        fe.req_tot += 1
        self.req = req
        self.req_done = False
        self.resp_started = False
        self.replays = 0
        self.retries = 0
        self.redispatched = False
        self.phase = WAITING
        self.cookie = None
        self.service = None
        if self.log is not None:
            self._start_log(req, now)
        src = self.src
        if fe.req_rules:
            verdict = apply_request_rules(fe.req_rules, req, src)
            if verdict is not None:
                self._answer(verdict)
                return False
        # (the tests before the calls skip them on a frontend without stats page or
        # use_backend rules: most of them, at two calls per request)
        if fe.stats_on and services.intercept(self, fe.proxy, req, src):
            return False
        be = fe.select_backend(req, src) if fe.use_backends else fe.default_backend
        if be is None:
            self.answer_error(503)
            return False
        self.backend = be
        self.t_server = be.timeout_server
        be.req_tot += 1
        if be.req_rules:
            verdict = apply_request_rules(be.req_rules, req, src)
            if verdict is not None:
                self._answer(verdict)
                return False
        if (
            be.stats_on
            and be.proxy is not fe.proxy
            and services.intercept(self, be.proxy, req, src)
        ):
            return False
        if self.caps is not None:  # capture cookie
            self.caps.on_backend(req.fields)
        if be.persist is not None:
            self.cookie = persistence.on_request(be.persist, req, time.time())
        extra = [(b"x-forwarded-for", src.encode())] if fe.forwardfor or be.forwardfor else None
        if be.server_close:
            conn = b"close"
        elif req.version == b"1.0":
            conn = b"keep-alive"
        else:
            conn = None
        self.head_bytes = h1.serialize_request(req, conn, extra)
        self.pending = [self.head_bytes]
        return self._assign(now)

    def _assign(self, now: float) -> bool:
        """Pick a server and get a connection to it; False while waiting."""
        be = self.backend
        req = self.req
        assert be is not None and req is not None
        server = persistence.take(self.cookie)
        if server is not None:
            pass
        elif be.plain:
            server = be.pick(_PLAIN)
        else:
            hdrs = _header_map(req) if be.wants_headers else None
            server = be.pick(be.context(self.src, req.target, hdrs))
        if server is None:
            if not be.available():
                self.answer_error(503)
                return False
            be.enqueue(self._dequeued)
            self.deadline.set_in(be.timeout_queue)
            self._queued = True
            return False
        self.server = server
        name = server.name  # (a property reading the configuration: once)
        if self.log is not None:
            self.t_assigned = now
            self.log_server = name
        # a keep-alive request takes from the shared pool; a first one, see _idle_first
        idle: list[Upstream] | None = (
            be.idle.get(name) if self.not_first and be.reuse else self._idle_first(be, name)
        )
        while idle:
            up: Upstream = idle.pop()  # typed: compiled, its fields are read directly
            if not upstream_reusable(server.config.tls, up.sni, req):
                up.transport.close()  # opened for another SNI (sni req.hdr(host))
                continue
            if not up.transport.is_closing():
                self.reused = True
                up.proven = True
                self._attach(up, now)
                return self.phase == FORWARD
        self.reused = False
        self.server = None  # owned by the connect task until it attaches
        self.deadline.set_in(None)  # the connect attempt carries its own timeout
        self.loop.create_task(self._connect(server))
        return False

    def _idle_first(self, be: BackendRuntime, name: str) -> list[Upstream] | None:
        """The idle connections to server ``name`` a client's first request may take (or,
        with ``http-reuse never``, any of its requests), as HAProxy's connect_server:
        never → only the client's own; safe → none (the first request gets a connection
        of its own, so a failure on it is the client's to retry); aggressive → one that
        carried a request after its first; always → any."""
        self.not_first = True
        reuse = be.reuse
        if reuse == REUSE_NEVER:
            own = self.own
            return own.get(name) if own is not None else None
        if reuse == REUSE_ALWAYS:
            return be.idle.get(name)
        idle = be.idle.get(name)
        if reuse == REUSE_AGGRESSIVE and idle:
            for i in range(len(idle) - 1, -1, -1):
                if idle[i].proven:
                    return [idle.pop(i)]
        return None

    def _dequeued(self) -> None:
        """Woken from the backend queue: a slot was freed."""
        self._queued = False
        if self.phase != WAITING or self.transport is None:
            return
        now = self.loop.time()
        if self._assign(now):
            self._pump_at(now)

    async def _connect(self, server: ServerRuntime) -> None:
        be = self.backend
        assert be is not None
        loop = self.loop
        retries = be.retries
        while True:
            try:
                factory = _upstream_factory(be, server)
                cfg = server.config
                tls = upstream_tls(cfg.tls, self.req)  # {} for a plain server
                coro = loop.create_connection(factory, cfg.host, cfg.port, **tls)
                if be.timeout_connect is not None:
                    _t, up = await asyncio.wait_for(coro, be.timeout_connect)
                else:
                    _t, up = await coro
            except (TimeoutError, OSError) as exc:
                if isinstance(exc, ssl.SSLError):
                    log.warning("%s/%s: SSL handshake failure: %s", be.name, server.name, exc)
                be.econ += 1
                if self.transport is None or self.phase != WAITING:
                    be.release(server)
                    return
                if retries <= 0:
                    be.release(server)
                    self.answer_error(503)
                    return
                retries -= 1
                be.wretr += 1
                self.retries += 1
                if be.redispatch and retries == 0 and len(be.servers) > 1:
                    # HAProxy's default: the last retry goes to another server.
                    be.release(server)
                    be.wredis += 1
                    self.redispatched = True
                    req = self.req
                    assert req is not None
                    nxt = be.pick(be.context(self.src, req.target))
                    if nxt is not None and nxt is server and len(be.servers) > 1:
                        alt = be.pick(be.context(self.src, req.target))
                        be.release(nxt)
                        nxt = alt
                    if nxt is None:
                        self.answer_error(503)
                        return
                    server = nxt
                    if self.log is not None:
                        self.log_server = server.name
                else:
                    await asyncio.sleep(min(be.timeout_connect or 1.0, 1.0))
                    if self.transport is None or self.phase != WAITING:
                        be.release(server)
                        return
                continue
            if self.transport is None or self.phase != WAITING:
                up.transport.close()
                be.release(server)
                return
            self.server = server
            up.sni = tls.get("server_hostname")
            now = loop.time()
            self._attach(up, now)
            if self.phase == FORWARD:
                self._pump_at(now)
            return

    def _attach(self, up: Upstream, now: float) -> None:
        req = self.req
        assert req is not None
        self.upstream = up
        up.client = self
        up.got_data = False
        reader = up.reader
        reader.expect_head = req.method == b"HEAD"
        reader.upgrade_requested = req.upgrade is not None
        self.phase = FORWARD
        if self.log is not None:
            self.t_connected = now
        if self.write_paused:
            up.pause_read()
        # ``pending`` goes out at the end of the next ``_pump``, once the bytes buffered
        # behind the head have been walked: a framing error then sends the server nothing.
        self.unpause(_PAUSE_WAIT)

    # ---- responses -----------------------------------------------------------

    def response_head(self, resp: Response, up: Upstream, now: float) -> bytes | None:
        """Serialize a response head for the client (None: answered otherwise)."""
        req = self.req
        assert req is not None
        status = resp.status
        if status < 200 and status != 101:
            return h1.serialize_response(resp, None)
        if status == 101 and req.upgrade is None:
            self.upstream_failed(up, 502)
            return None
        self.resp_started = True
        be = self.backend
        assert be is not None
        fe = self.fe
        if self.caps is not None:  # capture response header / capture cookie
            self.caps.on_response(resp.fields)
        if fe.resp_rules or be.resp_rules:
            verdict = None
            if be.resp_rules:
                verdict = apply_response_rules(be.resp_rules, resp, req, self.src)
            if verdict is None and fe.resp_rules:
                verdict = apply_response_rules(fe.resp_rules, resp, req, self.src)
            if verdict is not None:
                self.resp_started = False
                self._release_upstream(up, reuse=False)
                self.answer_error(verdict.status)
                return None
        if self.cookie is not None and be.persist is not None:
            persistence.on_response(be.persist, self.cookie, resp, up.server, req.method)
        if self.log is not None:
            self.t_resp = now
            self.status = status
        be.count_status(status)
        fe.count_status(status)
        if status == 101:
            return h1.serialize_response(resp, None)
        keep = (
            req.keep_alive
            and not up.reader.is_until_close()
            and not fe.registry.draining
            and not self.client_eof
        )
        self.client_keep = keep
        if not keep:
            conn: bytes | None = b"close"
        elif req.version == b"1.0":
            conn = b"keep-alive"
        else:
            conn = None
        return h1.serialize_response(resp, conn)

    def orphan_data(self, up: Upstream, data: bytes) -> None:
        """The server answers a client that reset (see ``connection_lost``): as in HAProxy,
        the answer is taken as far as one buffer would hold it, counted as sent, and the
        session ends as a failed write to the client — CD, with the server's status."""
        reader = up.reader
        reader.feed(data)
        try:
            while self.bytes_out < _ORPHAN_BUFFER:
                ev = reader.next_event()
                if ev is NEED_DATA:
                    return
                if type(ev) is bytes:
                    self.bytes_out += len(ev)
                elif type(ev) is Response:
                    head = self.response_head(ev, up, self.loop.time())
                    if head is None:  # refused by http-response rules: logged there
                        return
                    self.bytes_out += len(head)
                else:  # END, or bytes after it
                    break
        except ProtocolError:
            self.upstream_failed(up, 502)
            return
        self._release_upstream(up, reuse=False)
        self._log("CD")
        self._teardown()

    def touch_server(self) -> None:
        self.deadline.set_in(self.t_server)

    def response_end(self, up: Upstream, now: float) -> None:
        """The whole response went to the client: recycle both sides."""
        self._release_upstream(up, up.resp_keep and self.req_done, now)
        if self.log is not None:
            self._log_at("--", now)
        if not (self.client_keep and self.req_done) or self.transport is None:
            self.close()
            return
        self.phase = IDLE_KA
        self.req = None
        self.backend = None
        reader = self.reader
        reader.start_next()
        self.deadline.set_in_at(self.fe.timeout_keep_alive, now)
        if self.pause_mask:
            self.unpause(_PAUSE_WAIT)
        if reader.buffered:
            self._pump_at(now)

    def _release_upstream(self, up: Upstream, reuse: bool, now: float = -1.0) -> None:
        """Give ``up`` back to its pool (``reuse``) or close it; ``now`` is the loop's
        clock when the caller has read it (negative: read here if needed)."""
        if self.req_turn and self.sends.pending(self.req_turn):
            self.sends.flush()  # its request written before it can serve anybody else
        be = self.backend
        server = self.server
        self.upstream = None
        self.server = None
        up.client = None
        if server is not None and be is not None:
            be.release(server)
        if (
            reuse
            and not up.reader.buffered  # bytes after the response: the stream is broken
            and not (be is not None and be.server_close)
            and not up.transport.is_closing()
        ):
            up.reader.start_next()
            up.resume_read()
            assert be is not None
            if be.reuse:
                srv = up.server
                used = srv.active + 1  # this one was counted in use until just now
                if used > srv.max_used:
                    srv.max_used = used
                if used > srv.est_need:  # the need follows the use at once (srv_use_conn)
                    srv.est_need = used
                name = up.name
                idle = be.idle.get(name)
                if idle is None:
                    idle = be.idle[name] = []
                if not idle or _keep_idle(up, idle, used, srv.est_need):
                    up.idle_since = now if now >= 0.0 else self.loop.time()
                    idle.append(up)
                    return
            elif self.transport is not None:  # http-reuse never: kept for this client only
                own = self.own
                if own is None:
                    own = self.own = {}
                if sum(len(ups) for ups in own.values()) < _OWN_MAX:
                    own.setdefault(up.server.name, []).append(up)
                    return
        up.transport.close()

    def upstream_failed(self, up: Upstream, status: int) -> None:
        """The server broke HTTP or vanished: 502 if nothing was answered yet."""
        be = self.backend
        if be is not None:
            be.eresp += 1
        started = self.resp_started
        self._release_upstream(up, reuse=False)
        if started and self.orphan:
            self._log("CD")  # the write to the client failed first
            self._teardown()
        elif started:
            self._log("SD")
            self.abort()
        else:
            self.answer_error(status)

    def upstream_lost(self, up: Upstream) -> None:
        """The upstream connection closed while serving this client."""
        if self.orphan:
            self.upstream_failed(up, 502)
            return
        if self.phase == TUNNEL:
            self._release_upstream(up, reuse=False)
            self.close()
            return
        req = self.req
        if (
            self.reused
            and not up.got_data
            and req is not None
            and not req.has_body
            and req.method in _IDEMPOTENT  # a POST the server may have acted on: never twice
            and self.replays == 0
            and self.phase == FORWARD
        ):
            # A pooled connection the server had closed: replay once on a fresh one.
            self.replays += 1
            server = self.server
            self.server = None
            self.upstream = None
            up.client = None
            self.phase = WAITING
            self.pending = [self.head_bytes]
            self.reused = False
            assert server is not None
            self.loop.create_task(self._connect(server))
            return
        self.upstream_failed(up, 502)

    # ---- answers produced here ----------------------------------------------

    def answer_error(self, status: int, term: str | None = None) -> None:
        """Answer with one of HAProxy's pages; like HAProxy, keep the connection when
        the request was read whole and the client wants keep-alive (500 always closes)."""
        fe = self.fe
        fe.count_status(status)
        if self.orphan:  # the client is gone: only the log line is left to write
            self.status = status
            self.bytes_out += len(error_page(status))  # counted as sent, as HAProxy does
            self._log(term or _TERM.get(status, "PR"))
            self._teardown()
            return
        if self._queued and self.backend is not None:
            self.backend.dequeue(self._dequeued)
            self._queued = False
            term = term or "sQ"
        if self.transport is None or self.resp_started:
            self.close()
            return
        page = error_page(status)
        self.transport.write(page)
        if self.log is not None:
            self.status = status
            self.bytes_out += len(page)
            self._log(term or _TERM.get(status, "PR"))
        if status == 500 or not self._reusable():
            self.close()
            return
        self._recycle()

    def _reusable(self) -> bool:
        """After an answer of ours: may the connection carry the client's next request?"""
        req = self.req
        return (
            req is not None
            and req.keep_alive
            and (self.req_done or not req.has_body)  # nothing left to drain
            and not self.client_eof
            and not self.fe.registry.draining
        )

    def _recycle(self) -> None:
        """The request was answered here: wait for the next one on this connection."""
        reader = self.reader
        if not self.req_done:
            reader.next_event()  # the END of the body-less request
        self.phase = IDLE_KA
        self.req = None
        self.backend = None
        reader.start_next()
        self.not_first = True  # answered here: the next request is not the first (http-reuse)
        self.deadline.set_in(self.fe.timeout_keep_alive)
        self.unpause(_PAUSE_WAIT)
        if reader.buffered:
            self.loop.call_soon(self._pump)

    def answer_local(
        self,
        status: int,
        ctype: bytes,
        body: bytes,
        extra: list[tuple[bytes, bytes]] | None = None,
    ) -> None:
        """An answer made in this worker (stats page, exporter, 401): like the
        error pages, counted, logged, and the connection kept when it can be."""
        if self.transport is None:
            return
        self.fe.count_status(status)
        keep = self._reusable()
        resp = Response(status, _reason(status), b"1.1", list(extra or ()))
        resp.headers += [
            (b"content-type", ctype),
            (b"content-length", b"%d" % len(body)),
            (b"cache-control", b"no-cache"),
        ]
        req = self.req
        data = h1.serialize_response(resp, None if keep else b"close")
        if req is None or req.method != b"HEAD":
            data += body
        self.transport.write(data)
        if self.log is not None:
            self.status = status
            self.bytes_out += len(data)
            self._log("LR" if status != 401 else "PR")
        if keep:
            self._recycle()
        else:
            self.close()

    def _answer(self, verdict: Verdict) -> None:
        if verdict.service is not None:
            services.use_service(self, verdict.service)
            return
        if verdict.location is None:
            self.fe.denied += 1
            self.answer_error(verdict.status)
            return
        keep = self._reusable()
        self.fe.count_status(300)  # a redirect
        answer = redirect(verdict.status, verdict.location, not keep)
        self.transport.write(answer)
        if self.log is not None:
            self.status = verdict.status
            self.bytes_out += len(answer)
            self._log("LR")
        if keep:
            self._recycle()
        else:
            self.close()

    # ---- access log ---------------------------------------------------------

    def _start_log(self, req: Request, now: float) -> None:
        self.t_head = now
        if self.t_first is None:
            self.t_first = now
        self.t_assigned = self.t_connected = self.t_resp = -1.0
        self.status = 0
        self.bytes_out = 0
        self.log_server = ""
        self.logged = False
        captures = self.log.captures  # type: ignore[union-attr]
        if captures is not None:
            self.caps = captures.on_request(req.fields)

    def _log(self, term: str) -> None:
        """Emit this request's log line (once), HAProxy's httplog fields from our stamps."""
        if self.log is not None and not self.logged:
            self._log_at(term, self.loop.time())

    def _log_at(self, term: str, now: float) -> None:
        """``_log`` with the loop's clock already read by the caller."""
        alog = self.log
        if alog is None or self.logged:
            return
        self.logged = True
        req = self.req
        if req is None and self.t_first is None and alog.dontlognull:
            return
        fe = self.fe
        be = self.backend
        # a connection that sent nothing is active from its start (HAProxy's Ta for it)
        t_first = self.t_first if self.t_first is not None else self.t_start
        t_head, t_assigned, t_connected, t_resp = (
            self.t_head,
            self.t_assigned,
            self.t_connected,
            self.t_resp,
        )
        # HAProxy's timers in ms, truncated (accesslog.ms inlined: one call per timer
        # per request was a measurable part of a logged request's cost)
        if be is not None:
            server = be.by_name.get(self.log_server)
            beconn = 0
            for s in be.servers:
                beconn += s.active
        else:
            server = None
            beconn = 0
        cookie = self.cookie
        caps = self.caps
        if caps is not None:  # captured: this request's, never the next one's
            self.caps = None
        # the wire bytes: the fast renderer escapes them as they are, the record decodes them
        wire_line = (
            b"%s %s HTTP/%s" % (req.method, req.target, req.version) if req is not None else None
        )
        t_request = int((t_head - t_first) * 1000) if req is not None else -1
        t_queue = int((t_assigned - t_head) * 1000) if t_assigned >= 0 else -1
        t_connect = int((t_connected - t_assigned) * 1000) if t_connected >= 0 else -1
        t_response = int((t_resp - t_connected) * 1000) if t_resp >= 0 else -1
        status = self.status or -1
        httplog = alog.httplog
        if httplog is not None:  # the default format: no record (lbcore.logs.fast)
            alog.send(
                httplog.render(
                    self.src,
                    self.src_port,
                    self.accept_wall + (t_first - self.t_accept),
                    fe.name,
                    self.tls_info is not None,
                    be.name if be is not None else fe.name,
                    self.log_server or NOSRV,
                    t_request,
                    t_queue,
                    t_connect,
                    t_response,
                    int((now - t_first) * 1000),
                    status,
                    self.bytes_out,
                    caps.request_cookie if caps is not None else None,
                    caps.response_cookie if caps is not None else None,
                    term,
                    cookie.client_flag if cookie is not None else "-",
                    cookie.server_flag if cookie is not None else "-",
                    len(fe.registry.conns),
                    fe.conn_cur,
                    beconn,
                    server.active if server is not None else 0,
                    self.retries,
                    self.redispatched,
                    0,
                    len(be.queue) if be is not None else 0,
                    caps.request_headers if caps is not None else (),
                    caps.response_headers if caps is not None else (),
                    wire_line,
                ),
                term,
                status,
                self.retries,
                self.redispatched,
                now,
            )
            self.bytes_in = 0
            self.t_first = None
            self.t_start = now
            return
        rec = RequestRecord(
            client_ip=self.src,
            client_port=self.src_port,
            accept_ts=self.accept_wall,
            request_ts=self.accept_wall + (t_first - self.t_accept),
            frontend=fe.name,
            backend=be.name if be is not None else fe.name,
            server=self.log_server or NOSRV,
            t_idle=int((t_first - self.t_start) * 1000),
            t_request=t_request,
            t_queue=t_queue,
            t_connect=t_connect,
            t_response=t_response,
            t_active=int((now - t_first) * 1000),
            t_total=int((now - self.t_start) * 1000),
            status=status,
            bytes_read=self.bytes_out,
            bytes_uploaded=self.bytes_in if req is not None else 0,
            server_ip=server.config.host if server is not None else "",
            server_port=server.config.port if server is not None else 0,
            termination=term,
            actconn=len(fe.registry.conns),
            feconn=fe.conn_cur,
            beconn=beconn,
            srv_conn=server.active if server is not None else 0,
            retries=self.retries,
            redispatched=self.redispatched,
            cookie_client=cookie.client_flag if cookie is not None else "-",
            cookie_server=cookie.server_flag if cookie is not None else "-",
            backend_queue=len(be.queue) if be is not None else 0,
            ssl=self.tls_info is not None,
            request_line=wire_line.decode("latin-1") if wire_line is not None else None,
        )
        if caps is not None:
            rec.request_headers = caps.request_headers
            rec.response_headers = caps.response_headers
            rec.captured_request_cookie = caps.request_cookie
            rec.captured_response_cookie = caps.response_cookie
        local = self.local
        if local is not None:
            rec.frontend_ip, rec.frontend_port = local[0], local[1]
        alog.emit(rec, now)
        self.bytes_in = 0
        self.t_first = None
        self.t_start = now

    def _timeout(self) -> None:
        if self.sent_turn:
            self.flush_sends()
        phase = self.phase
        if phase == IDLE_KA and self.reader.at_message_start:
            self.close()
        elif phase in (IDLE_FIRST, IDLE_KA):
            self._parse_error(408)
        elif phase == WAITING:
            # queued too long (timeout queue) or a client too slow before a server was found
            self.answer_error(503 if self._queued else 408)
        elif phase == FORWARD:
            up = self.upstream
            if not self.req_done:
                if up is not None:
                    self._release_upstream(up, reuse=False)
                if self.resp_started:
                    self.abort()
                else:
                    self._parse_error(408)
            elif up is not None:
                self.upstream_failed(up, 504)
        elif phase == TUNNEL:
            up = self.upstream
            if up is not None:
                self._release_upstream(up, reuse=False)
            self.abort()

    def _drop_request(self, close_upstream: bool) -> None:
        be = self.backend
        if self._queued and be is not None:
            be.dequeue(self._dequeued)
            self._queued = False
        up = self.upstream
        if up is not None:
            self._release_upstream(up, reuse=False)

    # ---- tunnels (Upgrade, WebSocket) -----------------------------------------

    def start_tunnel(self) -> None:
        self.phase = TUNNEL
        self.in_tunnel = True
        self.touch_tunnel()
        rest = self.reader.take_buffer()
        up = self.upstream
        if rest and up is not None:
            up.transport.write(rest)
        self.unpause(_PAUSE_WAIT)

    def touch_tunnel(self) -> None:
        be = self.backend
        t = be.timeout_tunnel if be is not None else None
        if t is None:
            t = self.fe.timeout_client
        self.deadline.set_in(t)

    def tunnel_eof_from_server(self) -> None:
        if self.transport is not None and self.transport.can_write_eof():
            self.transport.write_eof()
            self.tunnel_eofs += 1
            if self.tunnel_eofs >= 2:
                self.close()


def _reason(status: int) -> bytes:
    try:
        return HTTPStatus(status).phrase.encode()
    except ValueError:
        return b"Unknown"


def _header_map(req: Request) -> dict[str, str]:
    return {n.decode("latin-1"): v.decode("latin-1") for n, v in req.fields}


def _upstream_factory(be: BackendRuntime, server: ServerRuntime) -> Any:
    return lambda: Upstream(be, server)


class ClientFactory:
    """Makes a frontend's ``HttpClient`` per accepted connection (the listener's
    protocol factory). Compiled, its call builds the client by a direct C call, where
    ``functools.partial(HttpClient, fe, loop)`` went through the type's generic call
    and parsed its arguments from a tuple on every connection."""

    __slots__ = ("fe", "loop")

    def __init__(self, fe: FrontendRuntime, loop: asyncio.AbstractEventLoop) -> None:
        self.fe = fe
        self.loop = loop

    def __call__(self) -> HttpClient:
        return HttpClient(self.fe, self.loop)
