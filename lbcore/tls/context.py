"""Build server-side SSL contexts from HAProxy-style ``bind ... ssl crt ...`` settings.

Theory of operation: every certificate (a PEM file holding cert + chain + key, or a
``.key`` file beside it, as HAProxy loads them; a directory of such files; or the lines
of a ``crt-list``) becomes one ``ssl.SSLContext``. The bind's listening context gets an
``sni_callback`` that swaps in the context whose names match the client's SNI — exact
names first, then ``*.domain`` wildcards — and keeps the first certificate as the
default; with ``strict-sni`` an unmatched name aborts the handshake.

Everything is loaded and checked before a worker starts (``load_bind``), so that
``lbcore check`` rejects a missing file, an unreadable PEM or a key that does not match
its certificate with a message naming the file — and a reload with a broken certificate
never replaces a running configuration.
"""

from __future__ import annotations

import os
import ssl
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from lbcore.config.model import TlsSettings

__all__ = ["BindTls", "Certificate", "TlsConfigError", "TlsSettings", "load_bind"]

_VERSIONS = {
    "SSLv3": ssl.TLSVersion.SSLv3,
    "TLSv1.0": ssl.TLSVersion.TLSv1,
    "TLSv1.1": ssl.TLSVersion.TLSv1_1,
    "TLSv1.2": ssl.TLSVersion.TLSv1_2,
    "TLSv1.3": ssl.TLSVersion.TLSv1_3,
}
_NO_FLAGS = {
    "no-sslv3": "SSLv3",
    "no-tlsv10": "TLSv1.0",
    "no-tlsv11": "TLSv1.1",
    "no-tlsv12": "TLSv1.2",
    "no-tlsv13": "TLSv1.3",
}


#: ALPN protocols lbcore cannot speak: never offered, so clients fall back to HTTP/1.1
UNSPOKEN_ALPN = frozenset({"h2", "h3", "h2c"})


class TlsConfigError(ValueError):
    """A certificate or TLS setting that cannot be used; the message names the file."""


@dataclass(slots=True)
class Certificate:
    """One loaded certificate and the names it answers for."""

    path: str
    names: tuple[str, ...]
    context: ssl.SSLContext
    key_type: str  # "RSA" or "EC"


@dataclass(slots=True)
class BindTls:
    """Everything a listener needs: the default context and SNI selection."""

    default: ssl.SSLContext
    certificates: list[Certificate] = field(default_factory=list)
    exact: dict[str, Certificate] = field(default_factory=dict)
    wildcard: dict[str, Certificate] = field(default_factory=dict)

    def select(self, server_name: str | None) -> Certificate | None:
        """The certificate for an SNI name: exact, then wildcard; None when unmatched."""
        if not server_name:
            return None
        name = server_name.lower().rstrip(".")
        if name in self.exact:
            return self.exact[name]
        _, _, parent = name.partition(".")
        return self.wildcard.get(parent)


def _pem_parts(path: Path) -> tuple[list[x509.Certificate], bytes]:
    """The certificates of a PEM file and its private key (from it or ``PATH.key``)."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise TlsConfigError(
            f"unable to load SSL certificate file '{path}': {exc.strerror}"
        ) from None
    try:
        certs = x509.load_pem_x509_certificates(data)
    except ValueError:
        raise TlsConfigError(f"unable to load SSL certificate from PEM file '{path}'") from None
    key_pem = data if b"PRIVATE KEY-----" in data else b""
    key_path = Path(f"{path}.key")
    if not key_pem and key_path.exists():
        key_pem = key_path.read_bytes()
    if not key_pem:
        raise TlsConfigError(f"unable to load SSL private key from PEM file '{path}'")
    return certs, key_pem


def _check_key(path: Path, cert: x509.Certificate, key_pem: bytes) -> str:
    try:
        key = serialization.load_pem_private_key(key_pem, password=None)
    except (ValueError, TypeError):
        raise TlsConfigError(f"unable to load SSL private key from PEM file '{path}'") from None
    ours = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    theirs = cert.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    if ours != theirs:
        raise TlsConfigError(
            f"inconsistencies between private key and certificate loaded from PEM file '{path}'"
        )
    return "EC" if isinstance(key, ec.EllipticCurvePrivateKey) else "RSA"


def _names(cert: x509.Certificate) -> tuple[str, ...]:
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName)
        names = san.value.get_values_for_type(x509.DNSName)
    except x509.ExtensionNotFound:
        names = []
    if not names:
        names = [str(a.value) for a in cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)]
    return tuple(n.lower() for n in names)


def _apply(ctx: ssl.SSLContext, settings: TlsSettings) -> None:
    """Versions, ciphers, ALPN and client verification onto a server context."""
    if settings.min_version:
        ctx.minimum_version = _version(settings.min_version)
    if settings.max_version:
        ctx.maximum_version = _version(settings.max_version)
    ban_versions(ctx, settings.no_versions)
    if settings.prefer_client_ciphers:
        ctx.options &= ~ssl.OP_CIPHER_SERVER_PREFERENCE
    else:
        ctx.options |= ssl.OP_CIPHER_SERVER_PREFERENCE  # HAProxy's default
    if settings.dh_param_file:
        try:
            ctx.load_dh_params(settings.dh_param_file)
        except (OSError, ssl.SSLError):
            raise TlsConfigError(
                f"unable to load DH parameters from '{settings.dh_param_file}'"
            ) from None
    _ciphers_alpn_verify(ctx, settings)


def ban_versions(ctx: ssl.SSLContext, flags: tuple[str, ...]) -> None:
    """``no-tlsv10``...: narrow the context's version range (OpenSSL has no holes)."""
    for flag in flags:
        banned = _VERSIONS[_NO_FLAGS[flag]]
        if ctx.minimum_version == banned or (
            ctx.minimum_version == ssl.TLSVersion.MINIMUM_SUPPORTED
            and banned <= ssl.TLSVersion.TLSv1
        ):
            ctx.minimum_version = ssl.TLSVersion(banned.value + 1)
        elif banned == ssl.TLSVersion.TLSv1_3:
            ctx.maximum_version = ssl.TLSVersion.TLSv1_2


def _ciphers_alpn_verify(ctx: ssl.SSLContext, settings: TlsSettings) -> None:
    if settings.ciphers:
        try:
            ctx.set_ciphers(settings.ciphers)
        except ssl.SSLError:
            raise TlsConfigError(f"unable to set SSL cipher list to '{settings.ciphers}'") from None
    # Python's ssl module cannot set TLS 1.3 ciphersuites (OpenSSL's
    # SSL_CTX_set_ciphersuites is not exposed); the option is accepted and OpenSSL's
    # defaults, which are all AEAD suites, apply.
    alpn = [p for p in settings.alpn if p not in UNSPOKEN_ALPN]
    if alpn:
        ctx.set_alpn_protocols(alpn)
    if not settings.tickets:
        # As HAProxy: no *stateless* tickets. TLS 1.3 clients still get OpenSSL's two
        # NewSessionTicket messages, each a session ID into the server's own cache
        # (stateful resumption, per worker here; HAProxy's cache is shared).
        ctx.options |= ssl.OP_NO_TICKET
    if settings.verify != "none":
        if not settings.ca_file:
            raise TlsConfigError("verify optional|required needs a 'ca-file'")
        try:
            ctx.load_verify_locations(settings.ca_file)
        except (OSError, ssl.SSLError):
            raise TlsConfigError(f"unable to load CA file '{settings.ca_file}'") from None
        ctx.verify_mode = ssl.CERT_REQUIRED if settings.verify == "required" else ssl.CERT_OPTIONAL


def _version(text: str) -> ssl.TLSVersion:
    if text not in _VERSIONS:
        raise TlsConfigError(
            f"unknown TLS version '{text}', expected one of {', '.join(_VERSIONS)}"
        )
    return _VERSIONS[text]


def load_certificate(path: str, settings: TlsSettings) -> Certificate:
    """Load and check one PEM (cert + chain + key), returning its own context."""
    pem = Path(path)
    certs, key_pem = _pem_parts(pem)
    if not certs:
        raise TlsConfigError(f"no certificate found in PEM file '{path}'")
    key_type = _check_key(pem, certs[0], key_pem)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    key_file = None if b"PRIVATE KEY-----" in pem.read_bytes() else f"{path}.key"
    try:
        ctx.load_cert_chain(path, key_file)
    except (OSError, ssl.SSLError) as exc:
        raise TlsConfigError(f"unable to load SSL certificate chain from '{path}': {exc}") from None
    _apply(ctx, settings)
    return Certificate(path, _names(certs[0]), ctx, key_type)


def _expand(crt: str) -> list[str]:
    path = Path(crt)
    if path.is_dir():
        return sorted(
            str(p)
            for p in path.iterdir()
            if p.is_file() and p.suffix not in (".key", ".ocsp", ".issuer", ".sctl")
        )
    return [crt]


def parse_crt_list(path: str) -> list[tuple[str, TlsSettings | None, tuple[str, ...]]]:
    """``crt-list`` lines: ``PEM [[ssl options] filters...]``; ``#`` comments."""
    try:
        lines = Path(path).read_text().splitlines()
    except OSError as exc:
        raise TlsConfigError(f"unable to open crt-list '{path}': {exc.strerror}") from None
    entries = []
    for number, line in enumerate(lines, 1):
        text = line.split("#", 1)[0].strip()
        if not text:
            continue
        pem, _, rest = text.partition(" ")
        options: TlsSettings | None = None
        rest = rest.strip()
        if rest.startswith("["):
            inside, sep, rest = rest[1:].partition("]")
            if not sep:
                raise TlsConfigError(f"{path}:{number}: missing ']' after crt-list options")
            options = _crt_list_options(inside.split(), path, number)
        filters = tuple(f.lower() for f in rest.split())
        entries.append((pem, options, filters))
    return entries


def _crt_list_options(words: list[str], path: str, number: int) -> TlsSettings:
    values: dict[str, object] = {}
    it = iter(words)
    for word in it:
        if word == "alpn":
            values["alpn"] = tuple(next(it, "").split(","))
        elif word in ("ssl-min-ver", "ssl-max-ver"):
            values["min_version" if word == "ssl-min-ver" else "max_version"] = next(it, "")
        elif word == "ciphers":
            values["ciphers"] = next(it, "")
        elif word == "verify":
            values["verify"] = next(it, "none")
        elif word == "ca-file":
            values["ca_file"] = next(it, "")
        else:
            raise TlsConfigError(f"{path}:{number}: unknown crt-list option '{word}'")
    return TlsSettings(**values)  # type: ignore[arg-type]


def load_bind(settings: TlsSettings, base_dir: str = ".") -> BindTls:
    """Load every certificate of a bind and build its SNI selection."""
    entries: list[tuple[str, TlsSettings, tuple[str, ...]]] = []
    for crt in settings.crts:
        for pem in _expand(_resolve(crt, base_dir)):
            entries.append((pem, settings, ()))
    for crt_list in settings.crt_lists:
        for pem, options, filters in parse_crt_list(_resolve(crt_list, base_dir)):
            merged = _merge(settings, options)
            entries.append((_resolve(pem, base_dir), merged, filters))
    if not entries:
        raise TlsConfigError("'ssl' on a bind needs at least one 'crt' or 'crt-list'")
    certificates = []
    bind: BindTls | None = None
    for pem, opts, filters in entries:
        cert = load_certificate(pem, opts)
        if filters:
            cert.names = tuple(f for f in filters if not f.startswith("!"))
        certificates.append(cert)
        if bind is None:
            bind = BindTls(default=cert.context)
    assert bind is not None
    for cert in certificates:
        for name in cert.names:
            if name.startswith("*."):
                bind.wildcard.setdefault(name[2:], cert)
            else:
                bind.exact.setdefault(name, cert)
    bind.certificates = certificates
    bind.default.sni_callback = _sni_callback(bind, settings.strict_sni)
    return bind


def _merge(base: TlsSettings, override: TlsSettings | None) -> TlsSettings:
    if override is None:
        return base
    changes = {
        name: getattr(override, name)
        for name in ("alpn", "min_version", "max_version", "ciphers", "verify", "ca_file")
        if getattr(override, name) != getattr(TlsSettings(), name)
    }
    return TlsSettings(**{**{n: getattr(base, n) for n in TlsSettings.__slots__}, **changes})


def _resolve(path: str, base_dir: str) -> str:
    return path if os.path.isabs(path) else os.path.join(base_dir, path)


def _sni_callback(
    bind: BindTls, strict: bool
) -> Callable[[ssl.SSLObject, str | None, ssl.SSLContext], int | None]:
    def choose(sock: ssl.SSLObject, server_name: str | None, _ctx: ssl.SSLContext) -> int | None:
        # Python exposes the client's SNI only here: keep it for ``ssl_fc_sni``.
        sock.lbcore_sni = server_name  # type: ignore[attr-defined]
        cert = bind.select(server_name)
        if cert is not None:
            sock.context = cert.context
            return None
        if strict:
            return ssl.ALERT_DESCRIPTION_UNRECOGNIZED_NAME
        return None  # the default certificate answers

    return choose


# ---- loaded once per configuration load --------------------------------------

#: The bind contexts of the configuration loaded last (``preload``). Workers are forked
#: from the process that loaded it, so they share these contexts — and with them the
#: session-ticket keys, so a ticket from one worker resumes on another.
_LOADED: dict[TlsSettings, BindTls] = {}


def preload(config: Any) -> list[tuple[Any, str]]:
    """Load every certificate a configuration names: ``[(source, message)]`` problems.

    On success the loaded binds replace the previous ones (a reload picks up replaced
    files); on any problem nothing is replaced.
    """
    from lbcore.tls.upstream import build_client_context

    loaded: dict[TlsSettings, BindTls] = {}
    problems: list[tuple[Any, str]] = []
    for proxy in config.proxies:
        for bind in proxy.binds:
            if bind.tls is None or bind.tls in loaded:
                continue
            try:
                loaded[bind.tls] = load_bind(bind.tls)
            except TlsConfigError as exc:
                problems.append((bind.source, f"bind {bind.host}:{bind.port}: {exc}"))
        for server in proxy.servers:
            if server.tls is None:
                continue
            try:
                build_client_context(server.tls)
            except TlsConfigError as exc:
                problems.append((server.source, f"server {server.name}: {exc}"))
    if not problems:
        _LOADED.clear()
        _LOADED.update(loaded)
    return problems


def bind_context(settings: TlsSettings) -> BindTls:
    """The listening context for a bind: the preloaded one, else loaded now."""
    bind = _LOADED.get(settings)
    if bind is None:
        bind = load_bind(settings)
        _LOADED[settings] = bind
    return bind
