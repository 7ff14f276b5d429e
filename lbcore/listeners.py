"""The master's listening sockets: bound once, shared by every worker, kept across reloads.

Theory of operation: a reload must never close a listening socket, or connections that
arrive in between are refused. So the master, not the workers, binds every ``bind`` line
and keeps the socket for as long as some configuration still names its address; forked
workers inherit the very same socket (one kernel accept queue), so connections that
arrive while old workers stop and new ones start wait in the backlog instead of being
refused. Sockets are keyed by the *resolved* address, so ``bind *:80`` rewritten as
``bind 0.0.0.0:80`` in a new configuration reuses the socket instead of failing with
"address already in use" against itself.

Like HAProxy's listeners (unless ``noreuseport``), every socket has ``SO_REUSEPORT``: a
second lbcore — the new code after an upgrade, started with ``-sf OLDPID`` — can bind the
same addresses while the old one still serves, and the old one then finishes gracefully.
With ``net.ipv4.tcp_migrate_req=1`` the kernel hands the connections still queued on the
old socket when it closes to the new one instead of resetting them.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass

from lbcore.config.model import Bind, Config, Proxy

#: (family, sockaddr) — what the kernel actually binds.
Address = tuple[int, tuple[str, int]]
#: (bind.host, bind.port) exactly as written in the model: the key workers look up.
BindKey = tuple[str, int]

#: Kernel caps the backlog at net.core.somaxconn anyway; HAProxy sizes it from maxconn.
MAX_BACKLOG = 65535


class BindError(Exception):
    """A ``bind`` line whose address cannot be resolved or bound; names file:line."""


@dataclass(frozen=True, slots=True)
class _Wanted:
    key: BindKey
    address: Address
    bind: Bind
    proxy: Proxy
    backlog: int


def resolve(host: str, port: int) -> Address:
    """The address a bind host means: ``""``/``"*"`` = every IPv4 address, ``"::"`` every
    IPv6 one (and IPv4-mapped where the system allows it), a name = its first address."""
    if host in ("", "*"):
        return socket.AF_INET, ("0.0.0.0", port)
    infos = socket.getaddrinfo(
        host.strip("[]"), port, socket.AF_UNSPEC, socket.SOCK_STREAM, 0, socket.AI_PASSIVE
    )
    family, _, _, _, sockaddr = infos[0]
    return family, (str(sockaddr[0]), int(sockaddr[1]))


def _where(bind: Bind, proxy: Proxy) -> str:
    prefix = f"{bind.source}: " if bind.source is not None else ""
    return f"{prefix}{proxy.kind.value} '{proxy.name}'"


class ListenerSet:
    """Every listening socket the master holds, by resolved address."""

    def __init__(self) -> None:
        self._sockets: dict[Address, socket.socket] = {}

    def __len__(self) -> int:
        return len(self._sockets)

    def addresses(self) -> set[Address]:
        return set(self._sockets)

    def fds(self) -> set[int]:
        return {s.fileno() for s in self._sockets.values()}

    def open_for(self, config: Config) -> dict[BindKey, socket.socket]:
        """The listeners ``config`` needs, binding the ones not held yet.

        All or nothing: if one bind fails, the sockets opened by this call are closed
        again and :class:`BindError` names the line; sockets held before are untouched.
        """
        wanted = self._wanted(config)
        v4_wildcard_ports = {
            w.address[1][1]
            for w in wanted
            if w.address[0] == socket.AF_INET and w.address[1][0] == "0.0.0.0"
        }
        opened: list[Address] = []
        result: dict[BindKey, socket.socket] = {}
        try:
            for w in wanted:
                if w.address not in self._sockets:
                    # A "::" bind next to an IPv4 wildcard on the same port would collide
                    # with it when dual-stack; then the IPv6 socket takes IPv6 only.
                    v6only = self._v6_wildcard(w.address) and w.address[1][1] in v4_wildcard_ports
                    self._sockets[w.address] = self._bind(w, v6only)
                    opened.append(w.address)
                result[w.key] = self._sockets[w.address]
        except BaseException:
            for address in opened:
                self._sockets.pop(address).close()
            raise
        return result

    def close_except_fds(self, keep: set[int]) -> list[Address]:
        """Close every socket whose fd is not in ``keep``; returns the closed addresses."""
        gone = [a for a, s in self._sockets.items() if s.fileno() not in keep]
        for address in gone:
            self._sockets.pop(address).close()
        return gone

    def close_all(self) -> None:
        self.close_except_fds(set())

    @staticmethod
    def _v6_wildcard(address: Address) -> bool:
        return address[0] == socket.AF_INET6 and address[1][0] == "::"

    @staticmethod
    def _wanted(config: Config) -> list[_Wanted]:
        out: list[_Wanted] = []
        seen: set[BindKey] = set()
        for proxy in config.frontends:
            for bind in proxy.binds:
                key = (bind.host, bind.port)
                if key in seen:
                    continue
                seen.add(key)
                try:
                    address = resolve(bind.host, bind.port)
                except (OSError, UnicodeError) as e:
                    raise BindError(
                        f"{_where(bind, proxy)}: cannot resolve bind address '{bind.host}' ({e})"
                    ) from None
                maxconn = proxy.maxconn or config.global_.maxconn
                backlog = max(1, min(maxconn, MAX_BACKLOG))
                out.append(_Wanted(key, address, bind, proxy, backlog))
        return out

    @staticmethod
    def _bind(w: _Wanted, v6only: bool) -> socket.socket:
        family, sockaddr = w.address
        sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if hasattr(socket, "SO_REUSEPORT"):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            if family == socket.AF_INET6 and v6only:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            sock.bind(sockaddr)
            sock.listen(w.backlog)
        except OSError as e:
            sock.close()
            host = f"[{sockaddr[0]}]" if family == socket.AF_INET6 else sockaddr[0]
            raise BindError(
                f"{_where(w.bind, w.proxy)}: cannot bind socket ({e.strerror}) "
                f"[{host}:{sockaddr[1]}]"
            ) from None
        sock.setblocking(False)
        return sock
