"""The asyncio adapter serving the runtime API on unix and TCP stats sockets.

Thin by design: each connection gets a sans-I/O ``CliSession``; received bytes go
in, what it returns is written out, and the connection is closed when the session
says so. One idle timer per connection (``stats timeout``, HAProxy's default 10 s)
is the only other thing done here.

Addresses, as ``stats socket`` takes them: a filesystem path (optionally
``unix@PATH``) for a unix socket, created with the configured ``mode``; or
``[ipv4@|ipv6@]HOST:PORT`` for TCP.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import resource
import socket
import stat
import time
from collections.abc import Awaitable, Callable, Sequence

from lbcore.config.model import StatsSocket
from lbcore.runtime.address import parse_address
from lbcore.runtime.cli import CliSession
from lbcore.runtime.state import Level, ProcessInfo, RuntimeState, SessionInfo

DEFAULT_TIMEOUT = 10.0  # HAProxy's default "stats timeout"

_ids = itertools.count(1)


def process_info(nbthread: int = 1) -> ProcessInfo:
    """The facts ``show info`` reports about this process, read from the system."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    return ProcessInfo(
        pid=os.getpid(),
        nbthread=nbthread,
        node=socket.gethostname(),
        start_time=time.time(),
        ulimit_n=soft,
        maxsock=soft,
    )


class CliProtocol(asyncio.Protocol):
    """One stats-socket connection: bytes to the session and its answers back."""

    def __init__(
        self,
        state: RuntimeState,
        level: Level,
        listener_id: int,
        timeout: float,
        clock: Callable[[], float],
        refresh: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        self.state = state
        self.refresh = refresh
        self._pending = b""
        self._refreshing = False
        self._eof_pending = False
        self.level = level
        self.listener_id = listener_id
        self.timeout = timeout
        self.clock = clock
        self.transport: asyncio.Transport | None = None
        self.session: CliSession | None = None
        self._timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        peer = transport.get_extra_info("peername")
        sock = transport.get_extra_info("socket")
        if sock is not None and sock.family == socket.AF_UNIX:
            proto, src = "unix_stream", f"unix:{self.listener_id}"
        else:
            proto = "tcpv6" if sock is not None and sock.family == socket.AF_INET6 else "tcpv4"
            src = f"{peer[0]}:{peer[1]}" if peer else "?"
        now = self.clock()
        info = SessionInfo(next(_ids), proto, src, "GLOBAL", started=now)
        self.session = CliSession(self.state, self.level, now, info)
        self._arm()

    def data_received(self, data: bytes) -> None:
        if self.refresh is not None and (self._refreshing or _shows_counters(data)):
            # Counters live in the workers: fetch fresh ones before answering.
            self._pending += data
            if not self._refreshing:
                self._refreshing = True
                assert self.transport is not None
                self.transport.pause_reading()
                asyncio.get_running_loop().create_task(self._refresh_then_answer())
            return
        self._answer(data)

    async def _refresh_then_answer(self) -> None:
        assert self.refresh is not None
        with contextlib.suppress(Exception):  # stale counters beat no answer
            await self.refresh()
        data, self._pending, self._refreshing = self._pending, b"", False
        if self.transport is None or self.transport.is_closing():
            return
        self.transport.resume_reading()
        self._answer(data)
        if self._eof_pending and not self.transport.is_closing():
            assert self.session is not None
            self.session.receive_eof()
            self.transport.close()

    def _answer(self, data: bytes) -> None:
        assert self.session is not None and self.transport is not None
        out = self.session.receive(data, self.clock())
        if out:
            self.transport.write(out)
        if self.session.closed:
            self.transport.close()
        else:
            self._arm()

    def eof_received(self) -> bool:
        if self._refreshing:
            # Answer what was received first; the EOF is handled after it.
            self._eof_pending = True
            return True
        if self.session is not None:
            self.session.receive_eof()
        return False  # close our side too

    def connection_lost(self, exc: Exception | None) -> None:
        if self._timer is not None:
            self._timer.cancel()
        if self.session is not None:
            self.session.receive_eof()

    def _arm(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        loop = asyncio.get_running_loop()
        self._timer = loop.call_later(self.timeout, self._expire)

    def _expire(self) -> None:
        if self.transport is not None:
            self.transport.close()


def _shows_counters(data: bytes) -> bool:
    """Does this input hold a command whose answer shows the workers' counters?"""
    return b"stat" in data or b"info" in data


class AdminServer:
    """Serves every configured ``stats socket`` until ``close()``."""

    def __init__(
        self,
        state: RuntimeState,
        sockets: Sequence[StatsSocket],
        timeout: float | None = None,
        clock: Callable[[], float] = time.time,
        refresh: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        """``refresh``: awaited before answering a command that shows counters (the
        master fetches its workers' counters); ``state`` may be replaced (a reload):
        new connections use the new one."""
        self.state = state
        self.refresh = refresh
        self.sockets = list(sockets)
        self.timeout = timeout or state.config.global_.stats_timeout or DEFAULT_TIMEOUT
        self.clock = clock
        self.servers: list[asyncio.Server] = []
        #: unix socket paths with the (st_dev, st_ino) bound there: on close, a path is
        #: removed only if it is still ours (a newer lbcore may have bound it since).
        self._paths: list[tuple[str, tuple[int, int]]] = []

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        for listener_id, conf in enumerate(self.sockets, start=1):
            level = Level.parse(conf.level)

            def factory(level: Level = level, lid: int = listener_id) -> CliProtocol:
                return CliProtocol(self.state, level, lid, self.timeout, self.clock, self.refresh)

            kind, host, port = parse_address(conf.address)
            if kind == "unix":
                _remove_stale_socket(host)
                # bind() creates the file with 0777 & ~umask: until the chmod below, any
                # local user could connect with this socket's level. Owner-only from the
                # start (the event loop is single-threaded; the umask is restored at once).
                sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                old_umask = os.umask(0o177)
                try:
                    sock.bind(host)
                except OSError:
                    sock.close()
                    raise
                finally:
                    os.umask(old_umask)
                server = await loop.create_unix_server(factory, sock=sock)
                os.chmod(host, conf.mode if conf.mode is not None else 0o600)
                st = os.lstat(host)
                self._paths.append((host, (st.st_dev, st.st_ino)))
            else:
                server = await loop.create_server(
                    factory, host, port, reuse_address=True, reuse_port=True
                )
            self.servers.append(server)

    async def close(self) -> None:
        for server in self.servers:
            server.close()
        for server in self.servers:
            await server.wait_closed()
        for path, ours in self._paths:
            with contextlib.suppress(FileNotFoundError):
                st = os.lstat(path)
                if (st.st_dev, st.st_ino) == ours:
                    os.unlink(path)
        self.servers.clear()
        self._paths.clear()


def _remove_stale_socket(path: str) -> None:
    """A socket file left by a previous run is replaced; any other file is an error."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return
    if not stat.S_ISSOCK(st.st_mode):
        raise FileExistsError(f"{path} exists and is not a socket")
    os.unlink(path)
