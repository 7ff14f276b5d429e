"""What the TLS fetches read about a client connection, as a plain record.

Theory of operation: the adapters fill one ``TlsInfo`` per client connection — after
the handshake for a terminated ``bind ... ssl`` (``ssl_fc``, ``ssl_fc_sni``,
``ssl_c_used``), or from the peeked ClientHello for passthrough (``req.ssl_sni``,
``req.ssl_hello_type``) — and hang it on each request as ``Request.conn``. ACL
predicates (``lbcore.http.acl``) read only this record: no ``ssl`` import there.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(slots=True)
class TlsInfo:
    ssl_fc: bool = False  # the client connection is TLS terminated by us
    sni: str | None = None  # the server name the client sent (terminated TLS)
    c_used: bool = False  # the client presented a certificate
    version: str | None = None  # "TLSv1.3"...
    cipher: str | None = None
    hello_type: int = 0  # 1: a ClientHello was peeked (passthrough); 0: none
    hello_sni: str | None = None  # the SNI of the peeked ClientHello


PLAIN = TlsInfo()  # a plain connection: every TLS fetch is false/empty
