"""Soak: mixed load through a VIP for minutes, with a reload, a rolling drain and one
VRRP failover every period; prints requests, errors, p99 and RSS over time.

Two balancer hosts (the ``lbh`` namespaces of tests/integration/hostile/lablet.py),
each with ``lbcore run`` in front of two local backends and ``lbcore vrrpd``; a client
pool in the root namespace (half keep-alive connections, half a new connection per
request) sends GETs to the VIP. Each period: SIGUSR2 to both balancers (+20%), drain,
maint and ready of s1 on both through the admin sockets (+40..60%), the master host's
link down (+80%) and up again (+90%: it preempts back).

    python -m tests.bench.soak                # 10 minutes, a period per minute
    python -m tests.bench.soak --minutes 1 --period 20

Needs root (namespaces, raw VRRP sockets). It prints; it does not pass or fail.
"""

from __future__ import annotations

import argparse
import re
import signal
import socket
import sys
import tempfile
import threading
import time
from pathlib import Path

from tests.conftest import lbcore_cmd
from tests.integration.hostile.harness import children
from tests.integration.hostile.lablet import BACKEND, Lab, ip_cmd
from tests.integration.vrrp.conftest import vrrp_conf

LB = """\
global
    nbthread 2
    stats socket {sock} level admin
    hard-stop-after 10s
defaults
    mode http
    timeout connect 1s
    timeout client 10s
    timeout server 10s
    retries 2
    option redispatch
frontend fe
    bind 0.0.0.0:8080
    default_backend app
backend app
    balance roundrobin
    server s1 127.0.0.1:8000
    server s2 127.0.0.1:8001
"""


class Stale(Exception):
    """A reused keep-alive connection closed before any byte of the answer."""


class Stats:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.lat: list[float] = []
        self.ok = 0
        self.errors = 0
        self.retried = 0

    def take(self) -> tuple[int, int, int, list[float]]:
        with self.lock:
            out = (self.ok, self.errors, self.retried, self.lat)
            self.ok, self.errors, self.retried, self.lat = 0, 0, 0, []
        return out


def client(vip: str, keep: bool, stop: threading.Event, stats: Stats) -> None:
    """GETs until ``stop``. A reused keep-alive connection that the proxy closed before
    sending a byte is retried on a new one, as HTTP clients do (RFC 9112 §9.3.1): that
    race is counted as ``retried``, not as an error."""
    s: socket.socket | None = None
    while not stop.is_set():
        t0 = time.monotonic()
        reused = s is not None
        try:
            if s is None:
                s = socket.create_connection((vip, 8080), timeout=1.0)
            s.sendall(
                b"GET / HTTP/1.1\r\nHost: vip\r\n"
                + (b"" if keep else b"Connection: close\r\n")
                + b"\r\n"
            )
            buf = b""
            while b"\r\n\r\n" not in buf:
                d = s.recv(65536)
                if not d:
                    if reused and not buf:
                        raise Stale
                    raise ConnectionError("closed")
                buf += d
            head, _, body = buf.partition(b"\r\n\r\n")
            m = re.search(rb"(?i)content-length: (\d+)", head)
            while m and len(body) < int(m.group(1)):
                d = s.recv(65536)
                if not d:
                    raise ConnectionError("cut")
                body += d
            if not head.startswith(b"HTTP/1.1 200"):
                raise ConnectionError(head[:12].decode())
            with stats.lock:
                stats.ok += 1
                stats.lat.append(time.monotonic() - t0)
            if not keep or b"connection: close" in head.lower():
                s.close()
                s = None
        except Stale:
            with stats.lock:
                stats.retried += 1
            s.close()  # type: ignore[union-attr]
            s = None
            continue
        except (OSError, ConnectionError) as e:
            if reused and isinstance(e, ConnectionResetError):
                with stats.lock:
                    stats.retried += 1
                s.close()  # type: ignore[union-attr]
                s = None
                continue
            with stats.lock:
                stats.errors += 1
            if s is not None:
                s.close()
            s = None
            time.sleep(0.01)
    if s is not None:
        s.close()


def cli(sock: Path, line: str) -> None:
    with socket.socket(socket.AF_UNIX) as s:
        s.settimeout(5)
        s.connect(str(sock))
        s.sendall(line.encode() + b"\n")
        while s.recv(4096):
            pass


def _serving(vip: str) -> bool:
    try:
        with socket.create_connection((vip, 8080), timeout=1) as s:
            s.sendall(b"GET / HTTP/1.1\r\nHost: vip\r\nConnection: close\r\n\r\n")
            return s.recv(12) == b"HTTP/1.1 200"
    except OSError:
        return False


def rss_mib(pids: list[int]) -> float:
    total = 0
    for pid in pids:
        for p in [pid, *children(pid)]:
            try:
                m = re.search(r"^VmRSS:\s+(\d+)", Path(f"/proc/{p}/status").read_text(), re.M)
            except OSError:
                continue
            total += int(m.group(1)) if m else 0
    return total / 1024


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--minutes", type=float, default=10.0)
    p.add_argument("--period", type=float, default=60.0, help="seconds between event rounds")
    p.add_argument("--clients", type=int, default=8)
    p.add_argument("--row", type=float, default=10.0, help="seconds per printed row")
    args = p.parse_args(argv)
    tmp = Path(tempfile.mkdtemp(prefix="lbh-soak-"))
    lab = Lab(tmp)
    stop = threading.Event()
    try:
        lbs, socks = [], []
        for i, (ns, prio) in enumerate(zip(lab.hosts, (150, 100), strict=True)):
            name = "ab"[i]
            sock = tmp / f"admin-{name}.sock"
            socks.append(sock)
            (tmp / f"lb-{name}.cfg").write_text(LB.format(sock=sock))
            (tmp / f"vrrp-{name}.conf").write_text(
                vrrp_conf(vip=lab.vip, priority=prio, advert="0.1", vrid=92, router_id="lbh")
            )
            for port in (8000, 8001):
                lab.run(
                    ns,
                    [sys.executable, "-c", BACKEND, f"{name}{port}", str(port)],
                    f"backend-{name}-{port}",
                )
            lbs.append(
                lab.run(ns, lbcore_cmd("run", "-f", str(tmp / f"lb-{name}.cfg")), f"lbcore-{name}")
            )
            lab.run(
                ns,
                lbcore_cmd(
                    "vrrpd",
                    "-f",
                    str(tmp / f"vrrp-{name}.conf"),
                    "-S",
                    str(tmp / f"state-{name}.json"),
                ),
                f"vrrpd-{name}",
            )
        ready = time.monotonic() + 60
        while not _serving(lab.vip):
            if time.monotonic() > ready:
                raise RuntimeError(f"the VIP never served; see {tmp}")
            time.sleep(0.2)
        stats = Stats()
        threads = [
            threading.Thread(target=client, args=(lab.vip, i % 2 == 0, stop, stats), daemon=True)
            for i in range(args.clients)
        ]
        for t in threads:
            t.start()
        start = time.monotonic()
        end = start + args.minutes * 60
        events = [
            (0.2, "reload", lambda: [lb.send_signal(signal.SIGUSR2) for lb in lbs]),
            (0.4, "drain s1", lambda: [cli(s, "set server app/s1 state drain") for s in socks]),
            (0.5, "maint s1", lambda: [cli(s, "set server app/s1 state maint") for s in socks]),
            (0.6, "ready s1", lambda: [cli(s, "set server app/s1 state ready") for s in socks]),
            (0.8, "failover", lambda: ip_cmd("link", "set", lab.ports[0], "down")),
            (0.9, "failback", lambda: ip_cmd("link", "set", lab.ports[0], "up")),
        ]
        done: set[tuple[int, int]] = set()
        next_row = start + args.row
        totals = [0, 0, 0]
        print(
            f"{'t (s)':>6} {'requests':>9} {'errors':>7} {'retried':>7} {'p99 ms':>7} "
            f"{'RSS MiB':>8}  events"
        )
        marks: list[str] = []
        while time.monotonic() < end:
            now = time.monotonic()
            k = int((now - start) // args.period)
            frac = ((now - start) % args.period) / args.period
            for j, (at, name, action) in enumerate(events):
                if frac >= at and (k, j) not in done:
                    done.add((k, j))
                    action()
                    marks.append(name)
            if now >= next_row:
                ok, err, retried, lat = stats.take()
                lat.sort()
                p99 = lat[int(len(lat) * 0.99)] * 1000 if lat else float("nan")
                totals[0] += ok
                totals[1] += err
                totals[2] += retried
                print(
                    f"{now - start:6.0f} {ok + err:9d} {err:7d} {retried:7d} {p99:7.1f} "
                    f"{rss_mib([lb.pid for lb in lbs]):8.1f}  {', '.join(marks)}",
                    flush=True,
                )
                marks = []
                next_row += args.row
            time.sleep(0.05)
        stop.set()
        for t in threads:
            t.join(5)
        print(
            f"total: {totals[0] + totals[1]} requests, {totals[1]} errors "
            f"({100 * totals[1] / max(1, totals[0] + totals[1]):.3f}%), {totals[2]} retried"
        )
    finally:
        stop.set()
        lab.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
