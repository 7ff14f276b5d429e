"""One worker process: every frontend of a configuration, served on inherited sockets.

Theory of operation: the master binds the listening sockets once and forks workers;
each calls ``run_worker``, which builds the runtime objects from the frozen config
(backends with their servers and algorithms, frontends with compiled ACLs and rules),
starts accepting on every bind with uvloop, and runs until told to stop:

* SIGUSR1, or ``{"op": "stop", "grace": true}`` on the channel: stop accepting, close
  idle keep-alive connections, let busy ones finish (their last answer says
  ``connection: close``), then return. The master bounds this with hard-stop-after.
* SIGTERM/SIGINT, or ``{"op": "stop", "grace": false}``: return now.

The channel (a SOCK_SEQPACKET socketpair end, one JSON object per message) gets
``{"op": "ready", "pid"}`` once every listener is served, and carries server changes
from the master — ``{"op": "server", "backend", "server",
"weight"?, "admin_state"?, "op_state"?}`` — and answers ``{"op": "stats"}`` with a
counters snapshot. A closed channel means the master is gone: the worker stops
gracefully rather than live on as an orphan.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import json
import logging
import os
import signal
import socket
from typing import Any

from lbcore import budget, control
from lbcore.backend import BackendRuntime
from lbcore.config.model import Config, Mode, Proxy
from lbcore.http.acl import compile_condition
from lbcore.http.h1 import DEFAULT_LIMITS, Limits
from lbcore.http.rules import compile_rules
from lbcore.proxy import httpraw, tcpraw, tlsraw
from lbcore.proxy.accesslog import AccessLogs
from lbcore.proxy.common import FrontendRuntime, Registry, request_limits
from lbcore.proxy.http import ClientFactory, HttpClient, purge_idle
from lbcore.proxy.services import MasterLink
from lbcore.proxy.tcp import TcpClient
from lbcore.proxy.tls import TlsHttpClient
from lbcore.proxy.tls import listener as tls_listener
from lbcore.server import AdminState, OpState
from lbcore.worker_link import read_pending


def build_runtime(
    config: Config, registry: Registry
) -> tuple[dict[str, BackendRuntime], list[FrontendRuntime]]:
    """Backends and frontends of ``config``, with every rule compiled."""
    backends: dict[str, BackendRuntime] = {}
    for name, proxy in config.backends.items():
        be = BackendRuntime(proxy)
        be.req_rules = compile_rules(proxy.http_request_rules, proxy.acls)
        be.resp_rules = compile_rules(proxy.http_response_rules, proxy.acls)
        backends[name] = be
    frontends = []
    for proxy in config.frontends:
        frontends.append(
            _frontend(
                proxy,
                registry,
                backends,
                request_limits(config.global_, proxy.options.accept_invalid_http_request),
            )
        )
    return backends, frontends


def _frontend(
    proxy: Proxy,
    registry: Registry,
    backends: dict[str, BackendRuntime],
    limits: Limits = DEFAULT_LIMITS,
) -> FrontendRuntime:
    def backend(name: str) -> BackendRuntime:
        try:
            return backends[name]
        except KeyError:
            raise ValueError(f"{proxy.name}: no backend named {name!r}") from None

    use = [
        (compile_condition(u.condition, proxy.acls), backend(u.backend)) for u in proxy.use_backends
    ]
    if proxy.default_backend is not None:
        default: BackendRuntime | None = backend(proxy.default_backend)
    elif proxy.kind.has_backend:
        default = backends[proxy.name]
    else:
        default = None
    listen_self = proxy.kind.has_backend
    req_rules = compile_rules(proxy.http_request_rules, proxy.acls)
    resp_rules = compile_rules(proxy.http_response_rules, proxy.acls)
    if listen_self:
        # A listen section's rules are its backend's too: run them once, as frontend.
        be = backends[proxy.name]
        be.req_rules = ()
        be.resp_rules = ()
    return FrontendRuntime(proxy, registry, backends, use, default, req_rules, resp_rules, limits)


log = logging.getLogger("lbcore.worker")


def _factory(cls: Any, fe: FrontendRuntime, loop: asyncio.AbstractEventLoop) -> Any:
    # partial, not a lambda: called per accepted connection, without a Python frame;
    # plain HTTP's clients from a compiled factory (no generic type call per connection)
    if cls is HttpClient:
        return ClientFactory(fe, loop)
    return functools.partial(cls, fe, loop)


class Worker:
    def __init__(self, config: Config, loop: asyncio.AbstractEventLoop) -> None:
        self.config = config
        self.loop = loop
        self.registry = Registry(config.global_.maxconn)
        self.backends, self.frontends = build_runtime(config, self.registry)
        self.access_logs = AccessLogs(config)
        for fe in self.frontends:
            fe.log = self.access_logs.for_frontend(fe.proxy)
        self.access_logs.attach(loop)
        self.servers: list[Any] = []
        self.poller: tcpraw.Poller | None = None  # plain TCP and HTTP client sockets (Linux)
        self.done: asyncio.Future[None] = loop.create_future()
        self.channel: socket.socket | None = None
        self.registry.on_empty = self._finish
        # Servers whose maxconn the workers share (lbcore.budget): their queues are
        # looked at again while requests wait, for slots other workers gave back.
        self.shared: list[BackendRuntime] = []
        self._poll: asyncio.TimerHandle | None = None
        for be in self.backends.values():
            for server in be.servers:
                server.budget = budget.inherited(be.name, server.name)
            if any(server.budget is not None for server in be.servers):
                be.on_queued = self._watch_queues
                self.shared.append(be)

    async def start(self, listeners: dict[tuple[str, int], socket.socket]) -> None:
        loop = self.loop
        for fe in self.frontends:
            cls: Any = HttpClient if fe.proxy.mode is Mode.HTTP else TcpClient
            for bind in fe.proxy.binds:
                sock = listeners.get((bind.host, bind.port))
                if sock is None:
                    raise ValueError(f"no listening socket for {bind.host}:{bind.port}")
                proto, tls = tls_listener(cls, fe.proxy, bind)
                if proto is TcpClient and not tls and tcpraw.enabled():
                    # Plain TCP: no transports, sockets driven from the worker's epoll.
                    self.servers.append(tcpraw.Listener(fe, sock, self._raw_poller(), loop))
                    continue
                if proto is HttpClient and not tls and httpraw.enabled():
                    # Plain HTTP: client sockets in the same epoll set, own transports.
                    self.servers.append(
                        httpraw.Listener(sock, self._raw_poller(), loop, _factory(proto, fe, loop))
                    )
                    continue
                if proto is TlsHttpClient and tlsraw.enabled():
                    # HTTPS: the same, with OpenSSL on the socket (no uvloop SSL layer).
                    self.servers.append(
                        tlsraw.Listener(
                            sock,
                            self._raw_poller(),
                            loop,
                            _factory(proto, fe, loop),
                            tls["ssl"],
                            tls["ssl_handshake_timeout"],
                        )
                    )
                    continue
                srv = await loop.create_server(
                    _factory(proto, fe, loop), sock=sock, backlog=1024, **tls
                )
                self.servers.append(srv)
        loop.call_later(1.0, self._housekeeping)

    def _raw_poller(self) -> tcpraw.Poller:
        """The worker's one epoll set for the listeners that skip uvloop's transports."""
        if self.poller is None:
            self.poller = tcpraw.Poller(self.loop)
        return self.poller

    def _housekeeping(self) -> None:
        """Once a second: let go of server connections idle in the pools for too long."""
        if self.done.done():
            return
        purge_idle(self.backends.values(), self.loop.time())
        self.loop.call_later(1.0, self._housekeeping)

    def _watch_queues(self) -> None:
        if self._poll is None:
            self._poll = self.loop.call_later(budget.QUEUE_POLL, self._poll_queues)

    def _poll_queues(self) -> None:
        self._poll = None
        for be in self.shared:
            if be.queue:
                be.retry_queued()
        if any(be.queue for be in self.shared):
            self._watch_queues()

    # ---- stopping ------------------------------------------------------------

    def graceful_stop(self) -> None:
        if self.registry.draining:
            return
        self.registry.draining = True
        for srv in self.servers:
            srv.close()
        for conn in list(self.registry.conns):
            conn.close_if_idle()
        if not self.registry.conns:
            self._finish()

    def stop_now(self) -> None:
        self.registry.draining = False
        for srv in self.servers:
            srv.close()
        for conn in list(self.registry.conns):
            conn.abort()
        self._finish()

    def _finish(self) -> None:
        # Draining and empty is not quite done: uvloop calls the protocol factory at
        # accept() but connection_made (which registers the connection) a loop turn
        # later, so a connection accepted just before the stop may not be counted yet.
        # Look again a little later instead of exiting under its feet.
        if self.registry.draining and not self.done.done():
            self.loop.call_later(0.05, self._finish_if_empty)
            return
        if not self.done.done():
            self.done.set_result(None)

    def _finish_if_empty(self) -> None:
        if not self.registry.conns and not self.done.done():
            self.done.set_result(None)

    # ---- the master's channel ------------------------------------------------

    def attach_channel(self, channel: socket.socket) -> None:
        self.channel = channel
        channel.setblocking(False)
        self.registry.link = MasterLink(self.send)
        self.loop.add_reader(channel.fileno(), self._on_channel)

    def _on_channel(self) -> None:
        assert self.channel is not None
        while True:
            try:
                raw = self.channel.recv(control.MAX_MESSAGE)  # a page can exceed 64 KiB
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                raw = b""
            if not raw:
                self.loop.remove_reader(self.channel.fileno())
                self.graceful_stop()
                return
            try:
                msg = json.loads(raw)
            except ValueError:
                continue
            if isinstance(msg, dict):
                self.handle(msg)

    def handle(self, msg: dict[str, Any]) -> None:
        op = msg.get("op")
        if op == "stop":
            if msg.get("grace", True):
                self.graceful_stop()
            else:
                self.stop_now()
        elif op == "stats":
            self.send(self.snapshot())
        elif op == "server":
            self._server_change(msg)
        elif op == "service_reply" and self.registry.link is not None:
            self.registry.link.deliver(msg)

    def _server_change(self, msg: dict[str, Any]) -> None:
        """Apply a runtime API change the master relays (weights, states, address)."""
        be = self.backends.get(str(msg.get("backend")))
        if be is None:
            return
        server = be.by_name.get(str(msg.get("server")))
        if server is None:
            return
        try:
            if "weight" in msg:
                server.weight = max(0, int(msg["weight"]))
            if "admin_state" in msg:
                server.admin_state = AdminState(msg["admin_state"])
            if "op_state" in msg:
                server.op_state = OpState(msg["op_state"])
            if "host" in msg or "port" in msg:
                cfg = server.config
                host = str(msg.get("host") or cfg.host)
                port = int(msg.get("port") or cfg.port)
                server.config = dataclasses.replace(cfg, host=host, port=port)
                for up in be.idle.pop(server.name, []):  # they point at the old address
                    up.transport.close()
        except (ValueError, TypeError) as exc:
            log.warning("ignored server change %r: %s", msg, exc)
            return
        if msg.get("shutdown_sessions"):
            for conn in list(self.registry.conns):
                if conn.server is server:
                    conn.abort()
        be.wake_waiters()

    def send(self, msg: dict[str, Any]) -> None:
        if self.channel is None:
            return
        with contextlib.suppress(OSError):
            self.channel.send(json.dumps(msg).encode())

    def snapshot(self) -> dict[str, Any]:
        return {
            "op": "stats",
            "pid": os.getpid(),
            "conns": len(self.registry.conns),
            "frontends": {fe.name: fe.snapshot() for fe in self.frontends},
            "backends": {name: be.snapshot() for name, be in self.backends.items()},
        }


def run_worker(
    config: Config,
    listeners: dict[tuple[str, int], socket.socket],
    channel: socket.socket | None,
) -> None:
    """Serve ``config`` on ``listeners`` until told to stop (see the module doc)."""
    try:
        import uvloop

        loop: asyncio.AbstractEventLoop = uvloop.new_event_loop()
    except ImportError:  # pragma: no cover - uvloop is a runtime dependency
        loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    for sig in (signal.SIGHUP, signal.SIGUSR2):
        signal.signal(sig, signal.SIG_IGN)  # the master's signals, not ours
    worker = Worker(config, loop)
    loop.add_signal_handler(signal.SIGUSR1, worker.graceful_stop)
    loop.add_signal_handler(signal.SIGTERM, worker.stop_now)
    loop.add_signal_handler(signal.SIGINT, worker.stop_now)
    try:
        if channel is not None:
            # The master's full state (server states, weights) is queued on the
            # channel before the fork: apply it before the first accept. (The channel
            # is set first: a queued {"op": "stats"} must be answered, or the master
            # would wait for that answer forever.)
            worker.channel = channel
            later = []
            for msg in read_pending(channel):
                if msg.get("op") in ("server", "stats"):
                    worker.handle(msg)
                else:  # a stop (a quick reload) applies to a started worker
                    later.append(msg)
        loop.run_until_complete(worker.start(listeners))
        if channel is not None:
            worker.attach_channel(channel)
            # Serving from now on: a master may wait for this before it stops the
            # previous generation, so a reload never leaves the listeners unserved.
            worker.send({"op": "ready", "pid": os.getpid()})
            for msg in later:
                worker.handle(msg)
        loop.run_until_complete(worker.done)
        if channel is not None:
            worker.send(worker.snapshot())
    finally:
        for conn in list(worker.registry.conns):
            conn.abort()
        loop.run_until_complete(asyncio.sleep(0))
        if worker.poller is not None:
            worker.poller.shutdown()
        worker.access_logs.close()
        loop.close()
