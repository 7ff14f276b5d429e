"""VRRP advertisement codec: VRRPv2 (RFC 3768) and VRRPv3 for IPv4 (RFC 5798).

Theory of operation
-------------------
Pure functions over bytes. :func:`encode` turns an :class:`Advert` into the VRRP
message (the IP header is the kernel's job when sending); :func:`decode` turns a
VRRP message back into an :class:`Advert`, checking what only the bytes can tell
(version, type, length, checksum). :func:`parse_ipv4` splits a datagram read from
a raw socket (which includes the IPv4 header) into addresses, TTL and payload.
:func:`check` applies the per-instance receive rules of RFC 5798 §7.1 / RFC 3768
§7.1 (TTL 255, VRID, auth, address count, v2 interval) and returns a
:class:`Drop` reason or ``None``; the caller counts drops per reason.

Checksums: v2 covers the VRRP message only (RFC 3768 §5.3.8). v3 covers an
IPv4 pseudo-header (source, destination, zero, protocol 112, VRRP length) plus
the message (RFC 5798 §5.2.8), as keepalived does by default.

Intervals are carried in centiseconds everywhere in this module: v3's field is
centiseconds (12 bits, RFC 5798 §5.2.7); v2's is whole seconds (RFC 3768 §5.3.7),
converted at the edge.
"""

from __future__ import annotations

import enum
import ipaddress
import struct
from dataclasses import dataclass

#: IANA protocol number for VRRP (RFC 5798 §5.1.1.4).
PROTO_VRRP = 112
#: IPv4 multicast group for VRRP (RFC 5798 §5.1.1.2).
MCAST_GROUP = "224.0.0.18"
#: Sent and required TTL (RFC 5798 §5.1.1.3).
TTL = 255
#: Type 1 = ADVERTISEMENT, the only type (RFC 5798 §5.2.2).
TYPE_ADVERT = 1
#: v2 authentication types (RFC 3768 §5.3.6; 1 and 2 are deprecated but deployed).
AUTH_NONE = 0
AUTH_PASS = 1
AUTH_AH = 2

_HDR = struct.Struct("!BBBBBBH")  # ver/type, vrid, prio, count, auth|rsvd+int, int, csum
V2_AUTH_LEN = 8


class PacketError(ValueError):
    """A received message that cannot be an advertisement we accept."""

    def __init__(self, reason: Drop, detail: str) -> None:
        super().__init__(f"{reason.value}: {detail}")
        self.reason = reason


class Drop(enum.Enum):
    """Why a received advertisement was dropped; the agent counts each one."""

    TRUNCATED = "truncated"
    VERSION = "version"
    TYPE = "type"
    CHECKSUM = "checksum"
    TTL = "ttl"
    VRID = "vrid"
    AUTH = "auth"
    ADDR_COUNT = "addr_count"
    ADDR_LIST = "addr_list"
    INTERVAL = "interval"
    SOURCE = "source"


@dataclass(frozen=True, slots=True)
class Advert:
    """One VRRP advertisement, independent of version.

    ``interval_cs`` is the advertisement interval in centiseconds (v2 carries
    whole seconds; encoding a v2 advert with a non-multiple of 100 is an error).
    ``auth_data`` is the v2 8-byte authentication field (ignored by v3).
    """

    version: int
    vrid: int
    priority: int
    addresses: tuple[str, ...]
    interval_cs: int = 100
    auth_type: int = AUTH_NONE
    auth_data: bytes = b""


def checksum(data: bytes) -> int:
    """The Internet checksum (RFC 1071): one's complement of the one's-complement sum."""
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def _pseudo_header(src: str, dst: str, length: int) -> bytes:
    """IPv4 pseudo-header for the v3 checksum (RFC 5798 §5.2.8)."""
    return (
        ipaddress.IPv4Address(src).packed
        + ipaddress.IPv4Address(dst).packed
        + struct.pack("!BBH", 0, PROTO_VRRP, length)
    )


def pass_auth_data(password: str) -> bytes:
    """The v2 PASS auth field: the password's first 8 bytes, zero padded (RFC 2338 §5.3.10)."""
    return password.encode()[:V2_AUTH_LEN].ljust(V2_AUTH_LEN, b"\0")


def encode(adv: Advert, src: str | None = None, dst: str | None = None) -> bytes:
    """Serialize an advertisement; v3 needs ``src`` and ``dst`` for its checksum."""
    if not 1 <= adv.vrid <= 255 or not 0 <= adv.priority <= 255:
        raise ValueError(f"vrid {adv.vrid} / priority {adv.priority} out of range")
    addrs = b"".join(ipaddress.IPv4Address(a).packed for a in adv.addresses)
    count = len(adv.addresses)
    if adv.version == 2:
        if adv.interval_cs % 100 or not 100 <= adv.interval_cs <= 25500:
            raise ValueError(f"VRRPv2 carries whole seconds 1-255, not {adv.interval_cs} cs")
        body = _HDR.pack(
            0x21, adv.vrid, adv.priority, count, adv.auth_type, adv.interval_cs // 100, 0
        )
        auth = adv.auth_data.ljust(V2_AUTH_LEN, b"\0")[:V2_AUTH_LEN]
        msg = body + addrs + auth
        csum = checksum(msg)
    elif adv.version == 3:
        if not 1 <= adv.interval_cs <= 0xFFF:
            raise ValueError(f"VRRPv3 interval must be 1-4095 cs, not {adv.interval_cs}")
        if src is None or dst is None:
            raise ValueError("VRRPv3 checksum needs the source and destination addresses")
        hi, lo = adv.interval_cs >> 8, adv.interval_cs & 0xFF
        msg = _HDR.pack(0x31, adv.vrid, adv.priority, count, hi, lo, 0) + addrs
        csum = checksum(_pseudo_header(src, dst, len(msg)) + msg)
    else:
        raise ValueError(f"unsupported VRRP version {adv.version}")
    return msg[:6] + struct.pack("!H", csum) + msg[8:]


def decode(data: bytes, src: str | None = None, dst: str | None = None) -> Advert:
    """Parse a VRRP message; raises :class:`PacketError` with the drop reason.

    Trailing bytes beyond the advertised addresses (Ethernet padding) are
    ignored, as RFC 5798 §7.1 allows. v3 checksum verification needs ``src``
    and ``dst``.
    """
    if len(data) < _HDR.size:
        raise PacketError(Drop.TRUNCATED, f"{len(data)} bytes")
    vt, vrid, prio, count, b4, b5, _ = _HDR.unpack_from(data)
    version, kind = vt >> 4, vt & 0x0F
    if version not in (2, 3):
        raise PacketError(Drop.VERSION, f"version {version}")
    if kind != TYPE_ADVERT:
        raise PacketError(Drop.TYPE, f"type {kind}")
    need = _HDR.size + 4 * count + (V2_AUTH_LEN if version == 2 else 0)
    if len(data) < need:
        raise PacketError(Drop.TRUNCATED, f"{len(data)} bytes, {count} addresses need {need}")
    msg = data[:need]
    if version == 2:
        ok = checksum(msg) == 0
    else:
        if src is None or dst is None:
            raise ValueError("VRRPv3 checksum needs the source and destination addresses")
        ok = checksum(_pseudo_header(src, dst, need) + msg) == 0
    if not ok:
        raise PacketError(Drop.CHECKSUM, f"bad checksum {msg[6:8].hex()}")
    addrs = tuple(
        str(ipaddress.IPv4Address(msg[_HDR.size + 4 * i : _HDR.size + 4 * i + 4]))
        for i in range(count)
    )
    if version == 2:
        return Advert(2, vrid, prio, addrs, b5 * 100, b4, bytes(msg[need - V2_AUTH_LEN :]))
    return Advert(3, vrid, prio, addrs, ((b4 & 0x0F) << 8) | b5)


@dataclass(frozen=True, slots=True)
class IPv4Datagram:
    src: str
    dst: str
    ttl: int
    proto: int
    payload: bytes


def parse_ipv4(datagram: bytes) -> IPv4Datagram:
    """Split an IPv4 datagram as a raw socket delivers it (header included)."""
    if len(datagram) < 20 or datagram[0] >> 4 != 4:
        raise PacketError(Drop.TRUNCATED, "not an IPv4 datagram")
    ihl = (datagram[0] & 0x0F) * 4
    total = struct.unpack_from("!H", datagram, 2)[0]
    if ihl < 20 or len(datagram) < ihl:
        raise PacketError(Drop.TRUNCATED, f"bad IPv4 header length {ihl}")
    end = min(total, len(datagram)) if total >= ihl else len(datagram)
    return IPv4Datagram(
        src=str(ipaddress.IPv4Address(datagram[12:16])),
        dst=str(ipaddress.IPv4Address(datagram[16:20])),
        ttl=datagram[8],
        proto=datagram[9],
        payload=bytes(datagram[ihl:end]),
    )


@dataclass(frozen=True, slots=True)
class Expect:
    """What one instance accepts (RFC 5798 §7.1, RFC 3768 §7.1)."""

    version: int
    vrid: int
    addresses: frozenset[str]
    interval_cs: int
    auth_type: int = AUTH_NONE
    auth_data: bytes = b""
    #: Unicast peers, if the instance uses unicast; then TTL is not required to be 255
    #: (keepalived's behaviour: unicast may cross routers) and the source must be a peer.
    peers: frozenset[str] = frozenset()


def check(adv: Advert, ttl: int, src: str, exp: Expect) -> Drop | None:
    """The receive checks that need the instance's configuration; ``None`` = accept."""
    if exp.peers:
        if src not in exp.peers:
            return Drop.SOURCE
    elif ttl != TTL:
        return Drop.TTL
    if adv.version != exp.version:
        return Drop.VERSION
    if adv.vrid != exp.vrid:
        return Drop.VRID
    if adv.version == 2:
        if adv.auth_type != exp.auth_type:
            return Drop.AUTH
        if exp.auth_type == AUTH_PASS and adv.auth_data != exp.auth_data:
            return Drop.AUTH
        # RFC 3768 §7.1: a v2 router must drop adverts whose interval differs from ours.
        if adv.interval_cs != exp.interval_cs:
            return Drop.INTERVAL
    if adv.priority != 0:
        # A priority-0 advert is a resignation: what it lists does not matter.
        if len(adv.addresses) != len(exp.addresses):
            return Drop.ADDR_COUNT
        if frozenset(adv.addresses) != exp.addresses:
            return Drop.ADDR_LIST
    return None
