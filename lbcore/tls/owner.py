"""The Python-side owner of a TLS connection that OpenSSL reads and writes directly.

Why a module of its own: ``SSLContext._wrap_socket`` (the C object behind
``ssl.SSLSocket``) keeps a *weak* reference to its owner and hands the owner to the
SNI callback. The owner must therefore support weak references and take the
attributes the callback sets (``lbcore_sni``, ``context``) — which the classes
compiled with mypyc (``lbcore.proxy.tlsraw``) cannot. This module is never compiled.

It is also what ``get_extra_info("ssl_object")`` returns on such a connection: the
``getpeercert``, ``version``, ``cipher`` and ``selected_alpn_protocol`` of
``ssl.SSLObject``, which is all the TLS fetches (``lbcore.proxy.tls.tls_info``) read.
"""

from __future__ import annotations

import socket
import ssl
from typing import Any


class TlsOwner:
    """One server-side TLS connection over ``sock`` (see the module docstring)."""

    __slots__ = ("__weakref__", "lbcore_sni", "tls")

    def __init__(self, context: ssl.SSLContext, sock: socket.socket) -> None:
        self.lbcore_sni: str | None = None  # set by the SNI callback (``ssl_fc_sni``)
        self.tls: Any = context._wrap_socket(  # type: ignore[attr-defined]
            sock, True, None, owner=self
        )

    @property
    def context(self) -> ssl.SSLContext:
        ctx: ssl.SSLContext = self.tls.context
        return ctx

    @context.setter
    def context(self, ctx: ssl.SSLContext) -> None:
        self.tls.context = ctx  # the SNI callback's certificate switch

    def getpeercert(self, binary_form: bool = False) -> Any:
        return self.tls.getpeercert(binary_form)

    def version(self) -> str | None:
        v: str | None = self.tls.version()
        return v

    def cipher(self) -> tuple[str, str, int] | None:
        c: tuple[str, str, int] | None = self.tls.cipher()
        return c

    def selected_alpn_protocol(self) -> str | None:
        p: str | None = self.tls.selected_alpn_protocol()
        return p
