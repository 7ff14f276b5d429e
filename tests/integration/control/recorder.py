"""A test worker for the real master: it applies and records what the master sends.

It runs under ``lbcore run``'s own code (``cmd_run.run`` with the real haproxy-dialect
loader; only the worker function differs), so what it sees is exactly what the master
puts on the channels. It uses the worker-side functions the data plane will call
(``lbcore.worker_link``): ``apply_server_message`` on ``ServerRuntime`` objects built
from the configuration, and ``StatsPusher`` for its counters.

Each worker writes its view to ``$LBCORE_TEST_STATE_DIR/state-<pid>.json`` after every
message: its generation, every server's op/admin state, weight and address, and the
``shutdown_sessions`` it was told about. It answers every HTTP request on its frontends
with ``200 pid=<pid>`` and counts them (stot, req_tot, hrsp_2xx of the frontend), so
``show stat`` in the master must report the sum over workers.

Run as ``python -m tests.integration.control.recorder run -f lb.cfg [...]``.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from lbcore import cmd_run
from lbcore.config.model import Config
from lbcore.control import AsyncChannel
from lbcore.server import ServerRuntime
from lbcore.stats import Counters, Key
from lbcore.worker_link import StatsPusher, apply_server_message, read_pending, shutdown_target


@dataclass
class _Backend:
    by_name: dict[str, ServerRuntime] = field(default_factory=dict)


class _Recorder:
    def __init__(self, config: Config) -> None:
        self.backends: dict[str, _Backend] = {}
        for name, proxy in config.backends.items():
            be = _Backend()
            for s in proxy.servers:
                be.by_name[s.name] = ServerRuntime(config=s, backend=name)
            self.backends[name] = be
        self.counters: dict[Key, Counters] = {
            (p.name, "FRONTEND"): Counters() for p in config.frontends
        }
        self.messages = 0
        self.shutdowns: list[list[str]] = []
        self.path = os.path.join(
            os.environ.get("LBCORE_TEST_STATE_DIR", "/tmp"), f"state-{os.getpid()}.json"
        )

    def on_message(self, msg: Mapping[str, Any]) -> None:
        self.messages += 1
        apply_server_message(self.backends, msg)
        target = shutdown_target(msg)
        if target is not None:
            self.shutdowns.append(list(target))
        self.dump()

    def dump(self) -> None:
        servers = {
            f"{name}/{s.name}": {
                "op_state": s.op_state.value,
                "admin_state": s.admin_state.value,
                "weight": s.weight,
                "addr": [s.config.host, s.config.port],
            }
            for name, be in self.backends.items()
            for s in be.by_name.values()
        }
        data = {
            "pid": os.getpid(),
            "generation": os.environ.get("LBCORE_WORKER_GENERATION"),
            "messages": self.messages,
            "servers": servers,
            "shutdowns": self.shutdowns,
        }
        tmp = self.path + ".tmp"
        with open(tmp, "w") as f:
            json.dump(data, f)
        os.replace(tmp, self.path)


class _Http(asyncio.Protocol):
    def __init__(self, rec: _Recorder, frontend: str) -> None:
        self.rec = rec
        self.frontend = frontend
        self.buf = b""
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.buf += data
        if b"\r\n\r\n" in self.buf and self.transport is not None:
            body = f"pid={os.getpid()}\n".encode()
            self.transport.write(
                b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s"
                % (len(body), body)
            )
            c = self.rec.counters[(self.frontend, "FRONTEND")]
            c.stot += 1
            c.conn_tot += 1
            c.req_tot += 1
            c.hrsp_2xx += 1
            self.transport.close()


async def _serve(
    config: Config, listeners: dict[tuple[str, int], socket.socket], channel: socket.socket | None
) -> None:
    loop = asyncio.get_running_loop()
    rec = _Recorder(config)
    done = asyncio.Event()
    if channel is not None:
        for msg in read_pending(channel):  # the full state, before the first accept
            rec.on_message(msg)
    servers = []
    for proxy in config.frontends:
        for bind in proxy.binds:
            sock = listeners[(bind.host, bind.port)]
            srv = await loop.create_server(lambda p=proxy.name: _Http(rec, p), sock=sock)
            servers.append(srv)
    loop.add_signal_handler(signal.SIGUSR1, done.set)
    loop.add_signal_handler(signal.SIGTERM, done.set)
    pusher: StatsPusher | None = None

    def on_message(msg: dict[str, Any]) -> None:
        if msg.get("op") == "stop":
            done.set()
        elif msg.get("op") == "stats" and pusher is not None:
            pusher.push()
        else:
            rec.on_message(msg)

    rec.dump()
    if channel is not None:
        ch = AsyncChannel(channel, on_message, on_close=done.set)
        pusher = StatsPusher(ch.send, lambda: rec.counters)
        pusher.start()
        ch.send({"op": "ready", "pid": os.getpid()})  # serving: a reload may switch
    await done.wait()
    for srv in servers:
        srv.close()
    if pusher is not None:
        pusher.push()
        pusher.stop()
        await asyncio.sleep(0.05)


def recording_worker(
    config: Config, listeners: dict[tuple[str, int], socket.socket], channel: socket.socket | None
) -> None:
    asyncio.run(_serve(config, listeners, channel))


def main(argv: list[str]) -> int:
    if argv[:1] != ["run"]:
        print("usage: python -m tests.integration.control.recorder run ARGS...", file=sys.stderr)
        return 2
    return cmd_run.run(argv[1:], worker_fn=recording_worker)


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
