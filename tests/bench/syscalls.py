"""System calls per request or connection, lbcore beside HAProxy, by name (``strace -c``).

``python -m tests.bench.syscalls [--rows tcp-connrate,http-close-small] [--duration S]``

CPU time on a shared machine swings by tens of percent between runs; the number of
system calls a proxy makes per request does not depend on the load. This starts the
main bench's processes (nginx, HAProxy, lbcore from this checkout, same config), and
for each row and each proxy attaches ``strace -c -f`` to the proxy's process tree,
runs a bounded wrk load, detaches, and prints the calls per wrk request for each
system call name, side by side, with the totals. (wrk's last in-flight requests are
not counted, so the figures are a little high on short runs; the ratio is what
matters.) Needs ``strace`` and the right to trace (root, or ptrace_scope 0).
"""

from __future__ import annotations

import argparse
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tests.bench import procs, run, wrk

_LINE = re.compile(r"^\s*[\d.]+\s+[\d.]+\s+\d+\s+(\d+)\s+(\d+)?\s*(\w+)\s*$")


def parse_strace_c(text: str) -> dict[str, tuple[int, int]]:
    """``strace -c``'s table as {syscall: (calls, errors)} (the total line left out)."""
    out: dict[str, tuple[int, int]] = {}
    for line in text.splitlines():
        m = _LINE.match(line)
        if m and m.group(3) != "total":
            out[m.group(3)] = (int(m.group(1)), int(m.group(2) or 0))
    return out


def count(pids: list[int], url: str, duration: float, close: bool, connections: int) -> tuple:
    """(per-syscall counts, wrk requests) for one bounded wrk run under strace."""
    with tempfile.NamedTemporaryFile(prefix="lbcore-strace-", suffix=".txt") as f:
        argv = ["strace", "-c", "-f", "-o", f.name]
        for p in pids:
            argv += ["-p", str(p)]
        tracer = subprocess.Popen(argv, stderr=subprocess.DEVNULL)
        try:
            time.sleep(1.0)  # attached to every thread before the load starts
            res = wrk.run(url, duration=duration, close=close, connections=connections)
            time.sleep(0.5)  # the last connections' closes
        finally:
            tracer.send_signal(signal.SIGINT)
            tracer.wait(timeout=30)
        return parse_strace_c(Path(f.name).read_text()), res.requests


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rows", default="tcp-connrate,http-close-small")
    ap.add_argument("--duration", type=float, default=3.0)
    ap.add_argument("--connections", type=int, default=10)
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--no-log", action="store_true")
    ap.add_argument("--floor", action="store_true", help="the floor forwarder too (HTTP rows)")
    ap.add_argument(
        "--http-reuse", "--haproxy-http-reuse", dest="http_reuse", help="as in tests.bench.run"
    )
    args = ap.parse_args(argv)
    if shutil.which("strace") is None:
        print("strace is not installed", file=sys.stderr)
        return 2
    rows = run.select_rows(args.rows)
    run.raise_fd_limit()
    with procs.Processes("lbcore-syscalls-") as group:
        bench = run.Bench(
            group,
            args.workers,
            log=not args.no_log,
            standin=False,
            floor=args.floor,
            http_reuse=args.http_reuse,
        )
        bench.start()
        for row in rows:
            sides = bench.sides(row)
            got = {}
            for side in sides:
                svc = bench.proxies[side]
                scheme = "https" if row.target == "https" else "http"
                url = f"{scheme}://127.0.0.1:{bench.port(side, row)}{row.path}"
                calls, requests = count(svc.tree(), url, args.duration, row.close, args.connections)
                got[side] = ({k: c / max(requests, 1) for k, (c, _e) in calls.items()}, calls)
            names = sorted(
                set().union(*(got[s][0] for s in sides)),
                key=lambda k: -sum(got[s][0].get(k, 0) for s in sides),
            )
            print(f"== {row.name}: system calls per request (errors in brackets)")
            heads = {"haproxy": "HAProxy"}
            print(f"{'syscall':<18}" + "".join(f"{heads.get(s, s):>16}" for s in sides))
            for k in names:
                cells = []
                for side in sides:
                    per, calls = got[side]
                    n = per.get(k, 0.0)
                    e = calls.get(k, (0, 0))[1]
                    err = f" ({e / calls[k][0] * n:.2f})" if e else ""
                    cells.append(f"{n:.2f}{err}")
                if max(got[s][0].get(k, 0.0) for s in sides) >= 0.005:
                    print(f"{k:<18}" + "".join(f"{c:>16}" for c in cells))
            totals = [sum(got[s][0].values()) for s in sides]
            print(f"{'total':<18}" + "".join(f"{t:>16.2f}" for t in totals), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
