"""A small worker and config loader to exercise the master on its own.

The worker is a real asyncio HTTP/1.1 responder on the sockets the master hands it. Its
answer says which worker process and which configuration generation served the request
(``pid=… gen=… tag=…``), so tests can see reloads happen. It follows the worker stop
protocol of the contract: SIGUSR1 or ``{"op": "stop"}`` → stop accepting, close idle
keep-alive connections, finish in-flight requests (answering ``Connection: close``), exit
0; SIGTERM → exit now (default action). ``GET /slow?ms=N`` answers after N ms.

Some tags make a worker misbehave at start, to exercise the reload handshake: ``crash``
exits with code 3 at once; ``hang`` never gets to serve (nor to say ready); ``slow``
takes ``SLOW_START`` seconds before it serves.

The loader reads a JSON file ``{"tag": ..., "binds": [[host, port], ...], "workers": N,
"hard_stop_after": S}`` into a hand-built :class:`Config`; a syntax error is reported as
``file:line: message`` like the real parser's errors.

Run as ``python -m tests.integration.master.fakes run -f cfg.json ...`` (the arguments of
``lbcore run``).
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import sys
import time
from collections.abc import Sequence
from typing import Any

from lbcore import cmd_run
from lbcore.config.model import Bind, Config, Global, Mode, Proxy, ProxyKind, Source
from lbcore.control import AsyncChannel


class ConfigError(Exception):
    pass


def json_loader(files: Sequence[str]) -> Config:
    path = files[0]
    try:
        with open(path) as f:
            data = json.load(f)
    except json.JSONDecodeError as e:
        raise ConfigError(f"{path}:{e.lineno}: {e.msg}") from None
    except OSError as e:
        raise ConfigError(f"{path}: {e.strerror}") from None
    if not isinstance(data, dict) or "binds" not in data:
        raise ConfigError(f"{path}:1: expected an object with 'binds'")
    if data.get("load_delay"):  # to send signals while loading: say when it starts
        with open(f"{path}.loading", "w"):
            pass
        time.sleep(float(data["load_delay"]))
    binds = tuple(Bind(host, int(port), Source(path, 1)) for host, port in data["binds"])
    proxy = Proxy(
        name=str(data.get("tag", "fe")),
        kind=ProxyKind.FRONTEND,
        mode=Mode.HTTP,
        binds=binds,
        source=Source(path, 1),
    )
    return Config(
        global_=Global(
            workers=data.get("workers"),
            hard_stop_after=data.get("hard_stop_after"),
            user=data.get("user"),
            group=data.get("group"),
        ),
        proxies=(proxy,),
        files=tuple(files),
    )


class _Conn(asyncio.Protocol):
    def __init__(self, state: _State) -> None:
        self.state = state
        self.buf = b""
        self.busy = False
        self.served = 0
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self.state.conns.add(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self.state.conns.discard(self)
        self.state.changed()

    def data_received(self, data: bytes) -> None:
        self.buf += data
        if not self.busy and b"\r\n\r\n" in self.buf:
            head, _, self.buf = self.buf.partition(b"\r\n\r\n")
            self.busy = True
            asyncio.get_running_loop().create_task(self.answer(head))

    async def answer(self, head: bytes) -> None:
        lines = head.decode("latin-1").split("\r\n")
        target = lines[0].split(" ")[1] if len(lines[0].split(" ")) > 1 else "/"
        close = any(line.lower() == "connection: close" for line in lines[1:])
        if target.startswith("/slow?ms="):
            await asyncio.sleep(int(target.split("=", 1)[1]) / 1000)
        close = close or self.state.stopping
        body = f"pid={os.getpid()} gen={self.state.generation} tag={self.state.tag}\n".encode()
        assert self.transport is not None
        self.transport.write(
            b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n%s\r\n%s"
            % (len(body), b"Connection: close\r\n" if close else b"", body)
        )
        self.busy = False
        self.served += 1
        if close:
            self.transport.close()
        elif b"\r\n\r\n" in self.buf:
            self.data_received(b"")
        self.state.changed()


class _State:
    def __init__(self, tag: str) -> None:
        self.tag = tag
        self.generation = os.environ.get("LBCORE_WORKER_GENERATION", "?")
        self.conns: set[_Conn] = set()
        self.stopping = False
        self.done = asyncio.Event()
        self.listeners: list[socket.socket] = []
        self.pending = 0  # accepted, transport not made yet
        self.tasks: set[asyncio.Task[None]] = set()

    def listen(self, sock: socket.socket) -> None:
        """Accept by hand rather than with create_server: Python 3.11's Server.close()
        makes asyncio reset connections it accepted in the same batch but had not yet
        wrapped in a transport (Server._attach asserts), which a reload would turn into
        failed requests. Accepted sockets go through connect_accepted_socket instead."""
        loop = asyncio.get_running_loop()
        sock.setblocking(False)

        def on_readable() -> None:
            for _ in range(64):
                try:
                    conn, _ = sock.accept()
                except (BlockingIOError, InterruptedError):
                    return
                except OSError:
                    return
                self.pending += 1
                task = loop.create_task(self._wrap(conn))
                self.tasks.add(task)
                task.add_done_callback(self.tasks.discard)

        loop.add_reader(sock.fileno(), on_readable)
        self.listeners.append(sock)

    async def _wrap(self, conn: socket.socket) -> None:
        try:
            await asyncio.get_running_loop().connect_accepted_socket(lambda: _Conn(self), conn)
        finally:
            self.pending -= 1
            self.changed()

    def stop(self) -> None:
        if self.stopping:
            self.changed()
            return
        self.stopping = True
        loop = asyncio.get_running_loop()
        for sock in self.listeners:
            loop.remove_reader(sock.fileno())
            sock.close()
        # Close idle keep-alive connections. A connection accepted but whose first
        # request has not arrived yet is not idle: closing it would fail a request the
        # client has already sent; it gets its answer (with Connection: close).
        for conn in list(self.conns):
            if not conn.busy and conn.served and conn.transport is not None:
                conn.transport.close()
        self.changed()

    def quiet(self) -> bool:
        return not self.pending and not any(c.busy or not c.served for c in self.conns)

    def changed(self) -> None:
        if self.stopping and self.quiet():
            self.done.set()

    async def finished(self) -> None:
        """Wait until stopping and quiet (every accepted connection answered), bounded
        by 5 s; checked twice, 50 ms apart, to let the last answers flush."""
        deadline = asyncio.get_running_loop().time() + 5.0
        while True:
            remaining = deadline - asyncio.get_running_loop().time()
            if remaining <= 0:
                return
            try:
                await asyncio.wait_for(self.done.wait(), remaining)
            except TimeoutError:
                return
            await asyncio.sleep(0.05)
            if self.quiet():
                return
            self.done.clear()


async def _serve(
    config: Config, listeners: dict[tuple[str, int], socket.socket], channel: socket.socket | None
) -> None:
    loop = asyncio.get_running_loop()
    state = _State(config.proxies[0].name)
    for sock in listeners.values():
        state.listen(sock)
    loop.add_signal_handler(signal.SIGUSR1, state.stop)

    def on_message(msg: dict[str, Any]) -> None:
        if msg.get("op") == "stop":
            state.stop()

    ch = AsyncChannel(channel, on_message, on_close=state.stop) if channel is not None else None
    if ch is not None:
        ch.send({"op": "ready", "pid": os.getpid()})
    await state.finished()
    if ch is not None:
        ch.close()


#: Seconds a ``slow`` worker takes to start serving.
SLOW_START = 1.5


def http_worker(
    config: Config, listeners: dict[tuple[str, int], socket.socket], channel: socket.socket | None
) -> None:
    tag = config.proxies[0].name
    if tag == "crash":  # a worker that dies as soon as it starts
        raise SystemExit(3)
    if tag == "hang":  # stuck before serving (SIGUSR1/SIGTERM still end it: default action)
        time.sleep(60)
        raise SystemExit(4)
    if tag == "slow":
        time.sleep(SLOW_START)
    asyncio.run(_serve(config, listeners, channel))


def main(argv: list[str]) -> int:
    if argv[:1] != ["run"]:
        print("usage: python -m tests.integration.master.fakes run ARGS...", file=sys.stderr)
        return 2
    return cmd_run.run(argv[1:], worker_fn=http_worker, loader=json_loader)


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
