"""User-space instructions per request of a proxy, end to end, counted by valgrind.

``python -m tests.bench.instr [--lbcore TREE] [--haproxy] [--floor] [--path /small] [--no-log]
[--close]``

CPU time on a shared machine moves ±20 % between runs, and the bench's ratios with it.
Instruction counts do not: this starts the bench's nginx backends and the proxy under
``valgrind --tool=callgrind`` (``--trace-children`` follows lbcore's forked worker),
sends keep-alive requests on one connection, and reads the worker's instruction count
(``callgrind_control -d``) before and after a batch: the difference over the batch
is the user-space instructions one request costs the process, repeatable to a few
hundred instructions. ``--lbcore TREE`` measures the ``lbcore`` package found in TREE
(default: this checkout; e.g. a ``git archive`` of another revision), ``--haproxy``
HAProxy on the same config, ``--floor`` the floor forwarder (tests/bench/floor.py, with
its log line unless ``--no-log``). ``--close`` sends each request on a new connection
(``Connection: close``, both proxies with ``http-reuse always``, as the bench's
http-close-small row): the count is then per connection. The kernel's share (system
calls) is not counted: ``strace -c`` counts those.
"""

from __future__ import annotations

import argparse
import glob
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

from tests.bench import configs, procs, run
from tests.conftest import REPO, free_port, lbcore_env


def _total(tmp: Path, pid: int) -> int:
    """Instructions of ``pid`` so far: each dump holds those since the previous one."""
    subprocess.run(["callgrind_control", "-d", str(pid)], capture_output=True, check=False)
    time.sleep(1.0)
    total = 0
    for name in glob.glob(f"{tmp}/cg.{pid}*"):
        with open(name, errors="replace") as f:
            for line in f:
                if line.startswith(("summary:", "totals:")):
                    total += int(line.split()[1])
                    break
    return total


def _requests(sock: socket.socket, path: str, n: int) -> None:
    req = b"GET " + path.encode() + b" HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
    f = sock.makefile("rb")
    for _ in range(n):
        sock.sendall(req)
        length = 0
        while True:
            line = f.readline()
            if not line:
                raise RuntimeError("connection closed by the proxy")
            if line.lower().startswith(b"content-length:"):
                length = int(line.split(b":")[1])
            if line == b"\r\n":
                break
        f.read(length)


def _close_requests(port: int, path: str, n: int) -> None:
    req = b"GET " + path.encode() + b" HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    for _ in range(n):
        with socket.create_connection(("127.0.0.1", port)) as sock:
            sock.sendall(req)
            got = b""
            while True:
                chunk = sock.recv(65536)
                if not chunk:
                    break
                got += chunk
            if not got.startswith(b"HTTP/1.1 200"):
                raise RuntimeError(f"unexpected answer {got[:40]!r}")


def measure(
    tree: Path | None, path: str, n: int, log: bool, floor: bool = False, close: bool = False
) -> float:
    """Instructions per request of lbcore from ``tree`` (None: HAProxy; ``floor``: the
    floor forwarder)."""
    with procs.Processes("lbcore-instr-") as group:
        tmp = group.tmp
        bench = run.Bench(group, 1, log=log, standin=True)  # for its nginx backends
        bench.start()
        base = bench.ports["haproxy"]
        ports = configs.Ports(base.web, free_port(), free_port(), base.syslog)
        cfg = tmp / "proxy.cfg"
        reuse = "always" if close else None
        cfg.write_text(configs.proxy_conf(ports, 1, log=log, http_reuse=reuse))
        argv = [
            "valgrind",
            "--tool=callgrind",
            "--trace-children=yes",
            f"--callgrind-out-file={tmp}/cg.%p",
        ]
        env = None
        if floor:
            argv += [sys.executable, "-m", "tests.bench.floor", "serve"]
            argv += ["--bind", f"127.0.0.1:{ports.http}"]
            argv += [a for w in ports.web for a in ("--server", f"127.0.0.1:{w}")]
            argv += ["--log", f"127.0.0.1:{ports.syslog}"] if log else []
            env = lbcore_env()
        elif tree is None:
            argv += [run.HAPROXY, "-db", "-f", str(cfg)]
        else:
            argv += [sys.executable, "-m", "lbcore", "run", "-f", str(cfg)]
            env = dict(os.environ, PYTHONPATH=str(tree))
        # cwd: ``python -m`` imports from the working directory before PYTHONPATH
        cwd = tree if tree is not None and not floor else None
        proxy = group.start(procs.Service("proxy", argv, [ports.http], env, cwd=cwd), timeout=300)
        assert proxy.proc is not None
        with socket.create_connection(("127.0.0.1", ports.http)) as sock:
            _requests(sock, path, 50)  # warm: imports, pools, caches
            kids = procs.children_of(proxy.proc.pid)
            pid = kids[-1] if tree is not None and kids and not floor else proxy.proc.pid
            if close:
                _close_requests(ports.http, path, 50)
            before = _total(tmp, pid)
            if close:
                _close_requests(ports.http, path, n)
            else:
                _requests(sock, path, n)
            return (_total(tmp, pid) - before) / n


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--lbcore", type=Path, default=REPO, help="directory holding lbcore/")
    ap.add_argument("--haproxy", action="store_true", help="measure HAProxy too")
    ap.add_argument("--floor", action="store_true", help="measure the floor forwarder too")
    ap.add_argument("--path", default="/small")
    ap.add_argument("--requests", type=int, default=1000)
    ap.add_argument("--no-log", action="store_true")
    ap.add_argument("--close", action="store_true", help="a new connection per request")
    args = ap.parse_args(argv)
    log = not args.no_log
    close = args.close
    lb = measure(args.lbcore, args.path, args.requests, log, close=close)
    print(f"lbcore ({args.lbcore}): {lb:.0f} instructions/request", flush=True)
    if args.haproxy:
        ha = measure(None, args.path, args.requests, log, close=close)
        print(f"HAProxy: {ha:.0f} instructions/request; lbcore/HAProxy {lb / ha:.2f}")
    if args.floor:
        fl = measure(None, args.path, args.requests, log, floor=True, close=close)
        print(f"floor: {fl:.0f} instructions/request; lbcore/floor {lb / fl:.2f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
