"""TLS towards the servers: ``server ... ssl verify required ca-file F sni ... crt ...``.

Theory of operation: each distinct ``ServerTls`` becomes one client ``SSLContext``
(built once per worker and shared by every connection to that server, so OpenSSL's
session cache on the context lets reconnections resume). The HTTP adapter asks
``connect_kwargs`` for the extra ``create_connection`` arguments (``ssl=`` and
``server_hostname=``); the resulting transport is an ordinary one, so the backend's
keep-alive pool reuses TLS connections exactly as plain ones.

``verify required`` checks the chain against ``ca-file`` and, as HAProxy does, the
name against ``verifyhost`` or else the SNI sent; without an SNI only the chain is
checked. A failed handshake is an ``ssl.SSLError`` (an ``OSError``), so the adapter's
connect retries and its 503 apply, and the reason is logged.
"""

from __future__ import annotations

import ssl
from typing import Any

from lbcore.config.model import ServerTls
from lbcore.tls.context import TlsConfigError, _version

_CONTEXTS: dict[tuple[ServerTls, bool], ssl.SSLContext] = {}


def client_context(tls: ServerTls, named: bool = True) -> ssl.SSLContext:
    """The (cached) client context for one server's TLS settings; ``named``: a name
    will be sent and, under ``verify required``, checked against the certificate."""
    ctx = _CONTEXTS.get((tls, named))
    if ctx is None:
        ctx = build_client_context(tls)
        if tls.verify != "none":
            ctx.check_hostname = named
        _CONTEXTS[(tls, named)] = ctx
    return ctx


def build_client_context(tls: ServerTls) -> ssl.SSLContext:
    """Load the CA and client certificate now: a bad file is a ``TlsConfigError``."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    if tls.verify == "none":
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    else:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_REQUIRED
        if tls.ca_file:
            try:
                ctx.load_verify_locations(tls.ca_file)
            except (OSError, ssl.SSLError) as exc:
                raise TlsConfigError(f"unable to load CA file '{tls.ca_file}': {exc}") from None
    if tls.crt:
        key = None
        try:
            with open(tls.crt, "rb") as f:
                if b"PRIVATE KEY-----" not in f.read():
                    key = f"{tls.crt}.key"
        except OSError as exc:
            raise TlsConfigError(
                f"unable to load SSL certificate file '{tls.crt}': {exc.strerror}"
            ) from None
        try:
            ctx.load_cert_chain(tls.crt, key)
        except (OSError, ssl.SSLError):
            raise TlsConfigError(
                f"unable to load SSL certificate and key from PEM file '{tls.crt}' "
                "(unreadable, or the key does not match the certificate)"
            ) from None
    if tls.min_version:
        ctx.minimum_version = _version(tls.min_version)
    if tls.max_version:
        ctx.maximum_version = _version(tls.max_version)
    if tls.ciphers:
        try:
            ctx.set_ciphers(tls.ciphers)
        except ssl.SSLError:
            raise TlsConfigError(f"unable to set SSL cipher list to '{tls.ciphers}'") from None
    if tls.alpn:
        ctx.set_alpn_protocols(list(tls.alpn))
    return ctx


def _static_sni(tls: ServerTls) -> str | None:
    sni = tls.sni
    if sni and sni.startswith("str(") and sni.endswith(")"):
        return sni[4:-1]
    return None


def server_name(tls: ServerTls, req: Any) -> str | None:
    """The SNI for one connection: ``str(NAME)``, the request's Host (without its port),
    or the client's own SNI (``ssl_fc_sni``)."""
    sni = tls.sni
    if sni is None:
        return None
    static = _static_sni(tls)
    if static is not None:
        return static
    if req is None:
        return None
    if sni == "ssl_fc_sni":
        conn = getattr(req, "conn", None)
        return conn.sni if conn is not None else None
    host = req.header(b"host")
    if not host:
        return None
    text = host.decode("latin-1").strip()
    if text.startswith("["):
        return None  # an IP literal: no SNI
    return text.rsplit(":", 1)[0] if ":" in text else text


def connect_kwargs(tls: ServerTls | None, req: Any) -> dict[str, Any]:
    """Extra ``loop.create_connection`` arguments for a server (empty: plain TCP)."""
    if tls is None:
        return {}
    sni = server_name(tls, req)
    check = tls.verifyhost if tls.verifyhost is not None else sni
    if check is not None and check != sni:
        # verifyhost differs from the SNI sent: OpenSSL checks server_hostname, so the
        # name to check is the one sent (HAProxy sends SNI only with 'sni' anyway).
        sni = check
    return {"ssl": client_context(tls, named=sni is not None), "server_hostname": sni}


def reusable(tls: ServerTls | None, sni: str | None, req: Any) -> bool:
    """May a pooled connection opened with ``sni`` carry this request? Only if the
    request would send the same name (it differs with ``sni req.hdr(host)``)."""
    if tls is None or tls.sni is None or _static_sni(tls) is not None:
        return True
    return server_name(tls, req) == sni
