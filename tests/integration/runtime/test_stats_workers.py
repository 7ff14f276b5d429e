"""Must-show 5 (groundwork): ``show stat`` counts what was sent, summed over workers.

Two real worker processes (lbcore.worker.run_worker, forked on one listening socket
as the master does) serve N requests to two loopback backends; each worker answers
``{"op": "stats"}`` on its channel; the collector sums them and ``show stat`` must
report N requests/sessions and N 2xx responses whichever worker served them.
"""

from __future__ import annotations

import http.client
import http.server
import os
import signal
import socket
import threading
import time

import pytest

from lbcore import control
from lbcore.config import parse_text
from lbcore.runtime.cli import CliSession
from lbcore.runtime.collect import StatsCollector
from lbcore.runtime.state import Level, RuntimeState
from lbcore.stats import FIELDS
from tests.conftest import free_port

N = 40


class Ok(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = b"ok\n"
        self.send_response(200)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


def fork_worker(config: object, listeners: dict, channel: socket.socket) -> int:
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        code = 0
        try:
            from lbcore.worker import run_worker

            run_worker(config, listeners, channel)  # type: ignore[arg-type]
        except BaseException:
            code = 1
        os._exit(code)
    return pid


@pytest.mark.timeout(60)
def test_show_stat_sums_the_workers() -> None:
    fe_port, b1, b2 = free_port(), free_port(), free_port()
    config = parse_text(
        f"""
global
    maxconn 1000
defaults
    mode http
    timeout connect 2s
    timeout client 10s
    timeout server 10s
frontend www
    bind 127.0.0.1:{fe_port}
    default_backend app
backend app
    balance roundrobin
    server a 127.0.0.1:{b1}
    server b 127.0.0.1:{b2}
""",
        "stats-workers.cfg",
    )
    lsock = socket.socket()
    lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    lsock.bind(("127.0.0.1", fe_port))
    lsock.listen(128)
    workers: dict[int, socket.socket] = {}
    servers: list[http.server.ThreadingHTTPServer] = []
    try:
        for _ in range(2):
            mine, theirs = control.channel_pair()
            pid = fork_worker(config, {("127.0.0.1", fe_port): lsock}, theirs)
            theirs.close()
            workers[pid] = mine
        for port in (b1, b2):
            srv = http.server.ThreadingHTTPServer(("127.0.0.1", port), Ok)
            threading.Thread(target=srv.serve_forever, daemon=True).start()
            servers.append(srv)

        deadline = time.monotonic() + 30
        sent = 0
        while sent < N and time.monotonic() < deadline:
            conn = http.client.HTTPConnection("127.0.0.1", fe_port, timeout=5)
            try:
                conn.request("GET", f"/{sent}", headers={"connection": "close"})
                resp = conn.getresponse()
                assert resp.status == 200 and resp.read() == b"ok\n"
                sent += 1
            except ConnectionError:
                time.sleep(0.05)  # workers still starting
            finally:
                conn.close()
        assert sent == N

        collector = StatsCollector()
        for pid, ch in workers.items():
            ch.settimeout(5)
            control.send(ch, {"op": "stats"})
            msg = control.recv(ch)
            while msg is not None and msg.get("op") != "stats":
                msg = control.recv(ch)
            assert msg is not None
            collector.update(pid, msg)

        state = RuntimeState(config, time.time())
        state.counters = collector.total()
        out = CliSession(state, Level.ADMIN, time.time()).receive(b"show stat\n", time.time())
        rows = {tuple(r.split(",")[:2]): r.split(",") for r in out.decode().splitlines()[1:] if r}

        def col(px: str, sv: str, name: str) -> int:
            return int(rows[(px, sv)][FIELDS.index(name)] or 0)

        assert col("www", "FRONTEND", "stot") == N
        assert col("www", "FRONTEND", "req_tot") == N
        assert col("www", "FRONTEND", "hrsp_2xx") == N
        assert col("app", "BACKEND", "hrsp_2xx") == N
        assert col("app", "a", "stot") + col("app", "b", "stot") == N
        assert col("app", "BACKEND", "stot") == N
        assert col("www", "FRONTEND", "scur") == 0
        # both workers' snapshots were summed (each served part of the load, or one all)
        assert len(collector.live) == 2
        per_worker = [snap[("www", "FRONTEND")].stot for snap in collector.live.values()]
        print("requests per worker:", per_worker)
    finally:
        for srv in servers:
            srv.shutdown()
            srv.server_close()
        for pid, ch in workers.items():
            os.kill(pid, signal.SIGTERM)
            ch.close()
        for pid in workers:
            os.waitpid(pid, 0)
        lsock.close()
