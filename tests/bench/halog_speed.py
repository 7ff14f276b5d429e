"""Lines per second of ``lbcore halog`` against HAProxy's ``halog`` on the same generated log.

Prints a table; it is a measurement, not a pass/fail test. Usage:

    python -m tests.bench.halog_speed [--lines N] [--repeat R] [--short]
    python -m tests.bench.halog_speed --feed-mb 1024 [--analysis -u]

The log is generated once (``N`` distinct lines, deterministic) and repeated ``R`` times in
the file, so a large file costs little to build. ``--short`` is the CI smoke mode.
``--feed-mb`` instead pipes that many MiB of log through ``lbcore halog`` (no file on
disk) and prints its resident memory after the first 1 % and at the end.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tests.conftest import lbcore_cmd, lbcore_env
from tests.unit.logs.loggen import generate

ANALYSES = [["-c"], ["-st"], ["-srv", "-H"], ["-u"], ["-ic"], ["-pct"], ["-e", "-tc"]]


def _time(cmd: list[str], path: Path, env: dict[str, str] | None) -> tuple[float, bytes]:
    with open(path, "rb") as f:
        t0 = time.perf_counter()
        p = subprocess.run(cmd, stdin=f, capture_output=True, env=env, check=True)
        return time.perf_counter() - t0, p.stdout


def run(lines: int, repeat: int) -> list[dict[str, object]]:
    block = "".join(g.line + "\n" for g in generate(lines, seed=3)).encode()
    real = shutil.which("halog")
    results: list[dict[str, object]] = []
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "haproxy.log"
        with open(path, "wb") as f:
            for _ in range(repeat):
                f.write(block)
        total = lines * repeat
        size = os.path.getsize(path)
        print(f"log: {total} lines, {size / 2**20:.1f} MiB; halog: {real or 'not installed'}")
        print(f"{'analysis':<12} {'lbcore l/s':>12} {'halog l/s':>12} {'ratio':>7} same")
        for args in ANALYSES:
            lb_t, lb_out = _time(lbcore_cmd("halog", "-q", *args), path, lbcore_env())
            row: dict[str, object] = {"args": args, "lbcore": total / lb_t}
            if real:
                h_t, h_out = _time([real, "-q", *args], path, None)
                row |= {"halog": total / h_t, "same": h_out == lb_out}
            results.append(row)
            ratio = f"{row['lbcore'] / row['halog']:.2f}" if real else "-"  # type: ignore[operator]
            print(
                f"{' '.join(args):<12} {row['lbcore']:>12,.0f} "
                f"{row.get('halog', 0):>12,.0f} {ratio:>7} {row.get('same', '-')}"
            )
    return results


def _kib(pid: int, key: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    return -1


def feed(mib: int, analysis: str) -> tuple[int, int, float]:
    """Pipe ``mib`` MiB through ``lbcore halog -q ANALYSIS``; (RSS early, peak, lines/s)."""
    block = "".join(g.line + "\n" for g in generate(20_000, seed=3)).encode()
    total, sent, early, lines = mib * 2**20, 0, -1, 0
    p = subprocess.Popen(
        lbcore_cmd("halog", "-q", analysis),
        stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        env=lbcore_env(),
    )
    assert p.stdin is not None
    t0 = time.perf_counter()
    while sent < total:
        p.stdin.write(block)
        sent += len(block)
        lines += 20_000
        if early < 0 and sent >= total // 100:
            p.stdin.flush()
            early = _kib(p.pid, "VmRSS")
    peak = _kib(p.pid, "VmHWM")
    p.stdin.close()
    p.wait()
    return early, peak, lines / (time.perf_counter() - t0)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--lines", type=int, default=100_000)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--short", action="store_true", help="CI smoke mode: 20k lines")
    ap.add_argument("--feed-mb", type=int, help="pipe this many MiB; report memory")
    ap.add_argument("--analysis", default="-u")
    a = ap.parse_args(argv)
    if a.feed_mb:
        early, peak, rate = feed(a.feed_mb, a.analysis)
        print(
            f"lbcore halog -q {a.analysis}: {a.feed_mb} MiB piped, {rate:,.0f} lines/s; "
            f"RSS {early} KiB after 1 %, peak {peak} KiB"
        )
        return 0
    if a.short:
        a.lines, a.repeat = 20_000, 1
    run(a.lines, a.repeat)
    return 0


if __name__ == "__main__":
    sys.exit(main())
