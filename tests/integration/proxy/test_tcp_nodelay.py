"""Plain TCP connections have TCP_NODELAY on both sockets, with no setsockopt per
accepted connection: the accepted socket inherits it from the listening socket."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading

import pytest


def test_tcp_sessions_have_nodelay_inherited_from_the_listener() -> None:
    import uvloop

    from lbcore.config.parser import parse_text  # type: ignore[attr-defined]
    from lbcore.proxy import tcpraw
    from lbcore.worker import Worker

    if not tcpraw.enabled():
        pytest.skip("epoll/splice path not available on this platform")
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(64)
    answered = threading.Event()

    def serve() -> None:
        with contextlib.suppress(OSError):
            c, _ = srv.accept()
            with c:
                c.recv(1000)
                c.sendall(b"ok")
                answered.wait(10)  # kept open: the session is inspected meanwhile

    threading.Thread(target=serve, daemon=True).start()
    lst = socket.socket()  # as a test harness makes it: without TCP_NODELAY
    lst.bind(("127.0.0.1", 0))
    lst.listen(64)
    assert lst.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) == 0
    port = lst.getsockname()[1]
    cfg = parse_text(
        "defaults\n  mode tcp\n  timeout connect 1s\n  timeout client 5s\n"
        f"  timeout server 5s\nlisten a\n  bind 127.0.0.1:{port}\n"
        f"  server s 127.0.0.1:{srv.getsockname()[1]}\n",
        "nodelay.cfg",
    )
    loop = uvloop.new_event_loop()
    worker = Worker(cfg, loop)

    async def client() -> list[tuple[int, int]]:
        r, w = await asyncio.open_connection("127.0.0.1", port)
        w.write(b"hi")
        assert await asyncio.wait_for(r.readexactly(2), 5) == b"ok"
        flags = [
            (
                s.csock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY),
                s.ssock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY),
            )
            for s in worker.registry.conns
        ]
        answered.set()
        w.close()
        return flags

    try:
        loop.run_until_complete(worker.start({("127.0.0.1", port): lst}))
        flags = loop.run_until_complete(client())
    finally:
        answered.set()
        worker.stop_now()
        loop.run_until_complete(asyncio.sleep(0))
        if worker.poller is not None:
            worker.poller.shutdown()
        loop.close()
        lst.close()
        srv.close()
    assert len(flags) == 1, flags
    client_side, server_side = flags[0]
    assert client_side and server_side, flags[0]
