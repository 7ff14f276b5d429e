"""The VRRP agent's contact with the kernel: sockets, addresses, ARP.

- :class:`Channel`: one raw IPv4 socket (protocol 112) per interface, joined to
  224.0.0.18 there, sending with TTL 255 and an explicit source address (so the
  v3 pseudo-header checksum we computed is the one the receiver checks).
- :class:`Addresses`: adds/removes virtual addresses over rtnetlink (pyroute2),
  one request per address, no ``ip`` processes.
- :func:`garp_frame` (pure) and :func:`send_garp`: gratuitous ARP announcements.
- :func:`link_flags`, :func:`primary_ipv4`, :func:`hw_address`: interface facts
  via ioctl, which work in whichever network namespace the agent runs.
"""

from __future__ import annotations

import contextlib
import fcntl
import ipaddress
import socket
import struct
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, TypeVar

from lbcore.vrrp.packet import MCAST_GROUP, PROTO_VRRP, TTL

T = TypeVar("T")

SIOCGIFFLAGS = 0x8913
SIOCGIFADDR = 0x8915
SIOCGIFHWADDR = 0x8927
IFF_UP = 0x1
IFF_RUNNING = 0x40
ETH_P_ARP = 0x0806
SO_BINDTODEVICE = getattr(socket, "SO_BINDTODEVICE", 25)
IP_PKTINFO = getattr(socket, "IP_PKTINFO", 8)
#: DSCP CS6 "internetwork control", what keepalived marks adverts with.
TOS_INTERNETWORK_CONTROL = 0xC0


def _ifreq(name: str, request: int, pad: int = 16) -> bytes:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        return fcntl.ioctl(s.fileno(), request, struct.pack("16s", name.encode()) + b"\0" * pad)


def link_flags(name: str) -> int | None:
    """The interface's IFF_* flags, or ``None`` if it does not exist."""
    try:
        return int(struct.unpack_from("H", _ifreq(name, SIOCGIFFLAGS), 16)[0])
    except OSError:
        return None


def link_is_up(name: str) -> bool:
    flags = link_flags(name)
    return flags is not None and flags & IFF_UP != 0 and flags & IFF_RUNNING != 0


def primary_ipv4(name: str) -> str | None:
    """The interface's primary IPv4 address (what VRRP sends from and ties break on)."""
    try:
        return socket.inet_ntoa(_ifreq(name, SIOCGIFADDR)[20:24])
    except OSError:
        return None


def hw_address(name: str) -> bytes:
    return _ifreq(name, SIOCGIFHWADDR)[18:24]


# ---------------------------------------------------------------- VRRP datagrams


@dataclass
class Channel:
    """A raw protocol-112 socket on one interface (or unbound, for pure unicast)."""

    interface: str | None
    multicast: bool
    sock: socket.socket = field(init=False)

    def __post_init__(self) -> None:
        s = socket.socket(socket.AF_INET, socket.SOCK_RAW, PROTO_VRRP)
        try:
            s.setblocking(False)
            s.setsockopt(socket.IPPROTO_IP, socket.IP_TOS, TOS_INTERNETWORK_CONTROL)
            s.setsockopt(socket.IPPROTO_IP, socket.IP_TTL, TTL)
            s.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, TTL)
            s.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_LOOP, 0)
            if self.interface:
                s.setsockopt(socket.SOL_SOCKET, SO_BINDTODEVICE, self.interface.encode())
                index = socket.if_nametoindex(self.interface)
                mreqn = struct.pack("4s4si", socket.inet_aton(MCAST_GROUP), b"\0" * 4, index)
                s.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, mreqn)
                if self.multicast:
                    s.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, mreqn)
        except BaseException:
            s.close()
            raise
        self.sock = s

    def send(self, payload: bytes, src: str, dst: str) -> None:
        """Send from ``src`` exactly (IP_PKTINFO), so the v3 checksum matches the header."""
        index = socket.if_nametoindex(self.interface) if self.interface else 0
        info = struct.pack("i4s4s", index, socket.inet_aton(src), b"\0" * 4)
        self.sock.sendmsg([payload], [(socket.IPPROTO_IP, IP_PKTINFO, info)], 0, (dst, 0))

    def recv(self) -> bytes | None:
        try:
            return self.sock.recv(65535)
        except (BlockingIOError, InterruptedError):
            return None

    def close(self) -> None:
        self.sock.close()


# ---------------------------------------------------------------- virtual addresses


class Addresses:
    """Virtual address add/remove over rtnetlink; idempotent both ways.

    pyroute2 0.9's synchronous ``IPRoute`` drives an asyncio loop of its own and
    refuses to run inside ours, so it lives on one dedicated thread; each call
    is a sub-millisecond netlink round trip that the agent waits for, which
    keeps address changes ordered with the adverts around them.
    """

    def __init__(self) -> None:
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="netlink")
        self._ipr: Any = self._pool.submit(self._open).result()

    @staticmethod
    def _open() -> Any:
        from pyroute2 import IPRoute  # imported here: only the agent needs netlink

        return IPRoute()

    def _call(self, fn: Callable[..., T], *args: Any) -> T:
        return self._pool.submit(fn, *args).result()

    def _index(self, dev: str) -> int:
        return socket.if_nametoindex(dev)

    def present(self, dev: str, ip: str) -> bool:
        return self._call(self._present, dev, ip)

    def add(self, dev: str, ip: str, prefixlen: int, label: str | None) -> bool:
        """Add; ``False`` if it was already there (EEXIST)."""
        return self._call(self._add, dev, ip, prefixlen, label)

    def remove(self, dev: str, ip: str, prefixlen: int) -> bool:
        """Remove; ``False`` if it was not there (EADDRNOTAVAIL)."""
        return self._call(self._remove, dev, ip, prefixlen)

    def _present(self, dev: str, ip: str) -> bool:
        for msg in self._ipr.get_addr(family=socket.AF_INET, index=self._index(dev)):
            if msg.get_attr("IFA_ADDRESS") == ip or msg.get_attr("IFA_LOCAL") == ip:
                return True
        return False

    def _add(self, dev: str, ip: str, prefixlen: int, label: str | None) -> bool:
        from pyroute2.netlink.exceptions import NetlinkError

        kw: dict[str, Any] = {"index": self._index(dev), "address": ip, "prefixlen": prefixlen}
        if label:
            kw["label"] = label
        net = ipaddress.IPv4Interface(f"{ip}/{prefixlen}").network
        if prefixlen < 31:
            kw["broadcast"] = str(net.broadcast_address)
        try:
            self._ipr.addr("add", **kw)
        except NetlinkError as exc:
            if exc.code == 17:  # EEXIST
                return False
            raise
        return True

    def _remove(self, dev: str, ip: str, prefixlen: int) -> bool:
        from pyroute2.netlink.exceptions import NetlinkError

        try:
            self._ipr.addr("del", index=self._index(dev), address=ip, prefixlen=prefixlen)
        except NetlinkError as exc:
            if exc.code in (99, 19):  # EADDRNOTAVAIL, ENODEV
                return False
            raise
        return True

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self._call(self._ipr.close)
        self._pool.shutdown(wait=False)


# ---------------------------------------------------------------- gratuitous ARP

BROADCAST_MAC = b"\xff" * 6


def garp_frame(mac: bytes, ip: str) -> bytes:
    """A gratuitous ARP request announcing ``ip`` at ``mac`` (RFC 5227 §3; RFC 5798 §6.4.1).

    Broadcast Ethernet destination; sender and target protocol address both the
    virtual address, so every neighbour updates its cache entry.
    """
    if len(mac) != 6:
        raise ValueError("MAC address must be 6 bytes")
    addr = socket.inet_aton(ip)
    eth = BROADCAST_MAC + mac + struct.pack("!H", ETH_P_ARP)
    arp = struct.pack("!HHBBH", 1, 0x0800, 6, 4, 1) + mac + addr + BROADCAST_MAC + addr
    return eth + arp


def send_garp(dev: str, ips: list[str], count: int) -> int:
    """Send ``count`` gratuitous ARPs for each of ``ips`` on ``dev``; returns frames sent."""
    mac = hw_address(dev)
    sent = 0
    with socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ARP)) as s:
        s.bind((dev, ETH_P_ARP))
        for _ in range(count):
            for ip in ips:
                s.send(garp_frame(mac, ip))
                sent += 1
    return sent
