"""Read a TLS ClientHello without terminating TLS, for ``req.ssl_sni`` routing.

Theory of operation: in ``mode tcp`` with ``tcp-request inspect-delay``, the proxy
buffers the first bytes a client sends and calls ``parse_client_hello(buffer)``:

* ``NEED_MORE`` — the record(s) are incomplete; wait for more bytes (the ClientHello
  may arrive in 1-byte writes, or span several TLS records, RFC 8446 §5.1);
* ``NOT_TLS`` — this is not a TLS handshake (``req.ssl_hello_type`` is 0);
* a ``ClientHello`` — with the SNI host name (RFC 6066 §3) and ALPN protocols.

Nothing is consumed: the proxy forwards the buffered bytes untouched to the server it
picks, so the TLS session stays end to end. The parser bounds what it accepts (16 KiB
of handshake) so a client cannot make the proxy buffer without limit.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

MAX_HELLO = 16384  # handshake bytes we are willing to collect before giving up

_HANDSHAKE = 22  # TLSPlaintext.type handshake (RFC 8446 §5.1)
_CLIENT_HELLO = 1
_EXT_SERVER_NAME = 0
_EXT_ALPN = 16


class Verdict(enum.Enum):
    NEED_MORE = "need-more"
    NOT_TLS = "not-tls"


@dataclass(frozen=True, slots=True)
class ClientHello:
    version: tuple[int, int]  # legacy_version of the record layer
    sni: str | None
    alpn: tuple[str, ...]


class _Truncated(Exception):
    pass


class _Reader:
    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def take(self, n: int) -> bytes:
        if self.pos + n > len(self.data):
            raise _Truncated
        chunk = self.data[self.pos : self.pos + n]
        self.pos += n
        return chunk

    def u8(self) -> int:
        return self.take(1)[0]

    def u16(self) -> int:
        return int.from_bytes(self.take(2), "big")

    def u24(self) -> int:
        return int.from_bytes(self.take(3), "big")

    def vec(self, length_bytes: int) -> bytes:
        n = int.from_bytes(self.take(length_bytes), "big")
        return self.take(n)


def _handshake_bytes(buffer: bytes) -> tuple[bytes, tuple[int, int]] | Verdict:
    """Concatenate handshake record payloads until the ClientHello is whole."""
    pos = 0
    payload = b""
    version = (0, 0)
    while True:
        if len(buffer) - pos < 5:
            return Verdict.NEED_MORE if len(buffer) < MAX_HELLO else Verdict.NOT_TLS
        content_type, major, minor = buffer[pos], buffer[pos + 1], buffer[pos + 2]
        length = int.from_bytes(buffer[pos + 3 : pos + 5], "big")
        if content_type != _HANDSHAKE or major != 3 or length == 0 or length > 16384:
            return Verdict.NOT_TLS
        if pos == 0:
            version = (major, minor)
        if len(buffer) - pos - 5 < length:
            return Verdict.NEED_MORE
        payload += buffer[pos + 5 : pos + 5 + length]
        pos += 5 + length
        if len(payload) >= 4:
            if payload[0] != _CLIENT_HELLO:
                return Verdict.NOT_TLS
            needed = 4 + int.from_bytes(payload[1:4], "big")
            if needed > MAX_HELLO:
                return Verdict.NOT_TLS
            if len(payload) >= needed:
                return payload[:needed], version


def parse_client_hello(buffer: bytes) -> ClientHello | Verdict:
    """Parse the first bytes of a connection (see the module docstring)."""
    found = _handshake_bytes(buffer)
    if isinstance(found, Verdict):
        return found
    handshake, version = found
    try:
        return _parse_hello(handshake, version)
    except _Truncated:
        return Verdict.NOT_TLS  # lengths inside a complete message disagree: malformed


def _parse_hello(handshake: bytes, version: tuple[int, int]) -> ClientHello:
    r = _Reader(handshake)
    r.take(4)  # msg_type + length, already checked
    r.take(2 + 32)  # legacy_version, random
    r.vec(1)  # legacy_session_id
    r.vec(2)  # cipher_suites
    r.vec(1)  # legacy_compression_methods
    sni: str | None = None
    alpn: tuple[str, ...] = ()
    if r.pos == len(r.data):
        return ClientHello(version, None, ())  # no extensions (SSLv3-era hello)
    extensions = _Reader(r.vec(2))
    while extensions.pos < len(extensions.data):
        ext_type = extensions.u16()
        body = _Reader(extensions.vec(2))
        if ext_type == _EXT_SERVER_NAME:
            sni = _server_name(body)
        elif ext_type == _EXT_ALPN:
            protocols = _Reader(body.vec(2))
            names = []
            while protocols.pos < len(protocols.data):
                names.append(protocols.vec(1).decode("ascii", "replace"))
            alpn = tuple(names)
    return ClientHello(version, sni, alpn)


def _server_name(body: _Reader) -> str | None:
    names = _Reader(body.vec(2))
    while names.pos < len(names.data):
        name_type = names.u8()
        name = names.vec(2)
        if name_type == 0:  # host_name
            try:
                return name.decode("ascii").lower().rstrip(".")
            except UnicodeDecodeError:
                return None
    return None
