"""TLS in the adapters, as thin wrappers around the HTTP and TCP client protocols.

Theory of operation:

* Termination (``bind ... ssl``): the worker passes the bind's ``SSLContext`` to
  ``loop.create_server``, so the transport the HTTP adapter sees already speaks clear
  text. ``TlsHttpClient`` only adds what the TLS fetches need: after the handshake it
  records a ``TlsInfo`` (SNI, version, client certificate) and hangs it on every
  request (``Request.conn``) before the unchanged HTTP adapter handles it.
* Passthrough (``mode tcp`` + ``tcp-request inspect-delay`` + ``req.ssl_sni``):
  ``PassthroughClient`` reads the first bytes without answering, feeds them to the
  sans-I/O ``parse_client_hello`` until it has a verdict (or the inspect delay ends),
  runs ``tcp-request content`` rules and ``use_backend``, then hands over to the TCP
  adapter, which forwards the buffered bytes untouched before anything else — the
  TLS session stays end to end.
"""

from __future__ import annotations

import asyncio
from typing import Any

from lbcore.config.model import Bind, Mode, Proxy
from lbcore.http.acl import Predicate, compile_condition
from lbcore.http.h1 import Request
from lbcore.proxy.common import FrontendRuntime
from lbcore.proxy.http import HttpClient
from lbcore.proxy.tcp import TcpClient
from lbcore.tls.clienthello import MAX_HELLO, ClientHello, Verdict, parse_client_hello
from lbcore.tls.context import bind_context
from lbcore.tls.info import TlsInfo

HANDSHAKE_TIMEOUT = 60.0  # seconds for a TLS handshake without timeout client


def listener(cls: Any, proxy: Proxy, bind: Bind) -> tuple[Any, dict[str, Any]]:
    """The protocol class and extra ``create_server`` arguments for one bind."""
    kwargs: dict[str, Any] = {}
    if bind.tls is not None:
        kwargs["ssl"] = bind_context(bind.tls).default
        # HAProxy bounds the handshake by timeout client
        kwargs["ssl_handshake_timeout"] = proxy.timeouts.client or HANDSHAKE_TIMEOUT
        if proxy.mode is Mode.HTTP:
            cls = TlsHttpClient
        elif _inspects(proxy):
            cls = TlsPassthroughClient
        else:
            cls = TlsTcpClient
    elif proxy.mode is Mode.TCP and _inspects(proxy):
        cls = PassthroughClient
    return cls, kwargs


def _inspects(proxy: Proxy) -> bool:
    """A tcp frontend that routes on content or conditions, not just by default."""
    return bool(proxy.tcp_request_content or proxy.tcp_inspect_delay or proxy.use_backends)


def tls_info(transport: Any) -> TlsInfo:
    """What the TLS fetches need from a terminated connection's transport."""
    info = TlsInfo(ssl_fc=True)
    obj = transport.get_extra_info("ssl_object")
    if obj is not None:
        info.sni = getattr(obj, "lbcore_sni", None)
        info.c_used = obj.getpeercert(binary_form=True) is not None
        info.version = obj.version()
        cipher = obj.cipher()
        info.cipher = cipher[0] if cipher else None
    return info


class TlsHttpClient(HttpClient):
    """An HTTP client connection over terminated TLS (see the module docstring)."""

    __slots__ = ()

    def connection_made(self, transport: Any) -> None:
        self.tls_info = tls_info(transport)
        super().connection_made(transport)

    def _on_request(self, req: Request, now: float) -> bool:
        req.conn = self.tls_info
        return super()._on_request(req, now)


class _TcpRules:
    """A frontend's ``tcp-request content`` rules, compiled once per worker."""

    def __init__(self, proxy: Proxy) -> None:
        self.delay = proxy.tcp_inspect_delay
        self.rules: list[tuple[str, Predicate]] = [
            (r.action, compile_condition(r.condition, proxy.acls))
            for r in proxy.tcp_request_content
        ]


_RULES: dict[int, _TcpRules] = {}


def _rules(fe: FrontendRuntime) -> _TcpRules:
    rules = _RULES.get(id(fe.proxy))
    if rules is None:
        rules = _RULES[id(fe.proxy)] = _TcpRules(fe.proxy)
    return rules


class PassthroughClient(TcpClient):
    """A TCP client connection routed on its first bytes (ClientHello SNI)."""

    def __init__(self, fe: FrontendRuntime, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__(fe, loop)
        self.inspecting = False
        self.peeked = bytearray()
        self.info = TlsInfo()
        self.tcp_rules = _rules(fe)

    def _admitted(self) -> None:
        self.admitted = True
        if self.closed:
            return
        if self.tcp_rules.delay is None:
            self._decide(None)  # HAProxy without inspect-delay: decide on nothing
            return
        self.inspecting = True
        self.deadline.set_in(self.tcp_rules.delay)
        self.transport.resume_reading()

    def data_received(self, data: bytes) -> None:
        if not self.inspecting:
            super().data_received(data)
            return
        self.pending.append(data)
        self.peeked += data
        found = parse_client_hello(bytes(self.peeked))
        if found is Verdict.NEED_MORE and len(self.peeked) <= MAX_HELLO + 5:
            return
        self._decide(found)

    def eof_received(self) -> bool:
        if self.inspecting:
            self.client_eof = True
            self._decide(parse_client_hello(bytes(self.peeked)))
            return True
        return super().eof_received()

    def _timeout(self) -> None:
        if self.inspecting:
            self._decide(parse_client_hello(bytes(self.peeked)))
            return
        super()._timeout()

    def _decide(self, found: ClientHello | Verdict | None) -> None:
        """Inspection over: rules, then a backend, then the TCP adapter's own path."""
        self.inspecting = False
        self.peeked = bytearray()  # a copy of ``pending``: no longer needed
        self.deadline.cancel()
        if self.transport is None or self.closed:
            return
        self.transport.pause_reading()
        if isinstance(found, ClientHello):
            self.info.hello_type = 1
            self.info.hello_sni = found.sni
        req = Request(b"", b"", b"1.1", [])
        req.conn = self.info
        peer = self.transport.get_extra_info("peername")
        src = peer[0] if peer else ""
        for action, pred in self.tcp_rules.rules:
            if pred(req, src):
                if action == "reject":
                    self.fe.denied += 1
                    self.term = "PR"  # HAProxy's "proxy rejected" termination state
                    self.transport.abort()
                    return
                break  # accept: stop evaluating, go on
        self.backend = self.fe.select_backend(req, src)
        TcpClient._admitted(self)


class TlsTcpClient(TcpClient):
    """``mode tcp`` over terminated TLS: clear bytes to the server, never spliced."""

    splice_ok = False


class TlsPassthroughClient(PassthroughClient):
    """``mode tcp`` over terminated TLS with rules: ``ssl_fc_sni`` and friends work."""

    splice_ok = False

    def connection_made(self, transport: Any) -> None:
        self.info = tls_info(transport)
        super().connection_made(transport)
