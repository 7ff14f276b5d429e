"""What one change bought: HAProxy, lbcore at a base revision and this checkout, one run.

``python -m tests.bench.ab --base REV [--rows a,b] [--rounds N] [--duration S]``

The main bench compares lbcore with HAProxy; on a shared, noisy machine two separate
runs of it cannot tell a 10 % change from the weather. Here the base revision (``git
archive REV``, unpacked to a temporary directory) and this checkout's lbcore run side by
side with HAProxy, on the same backends and config, and every round measures all three
with the same wrk load, rotating the order of the two lbcores (HAProxy first, then base
and new, then new and base) so neither always runs on a warmer machine. Both lbcores
are started the same way (``python -m lbcore run`` from a copy of their ``lbcore``
package in the temporary directory): a process started from a different path or
environment measured consistently differently here. Printed per row: the medians over
rounds of lbcore/HAProxy for throughput and CPU per request, for base and new, and of
new/base directly.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
from pathlib import Path

from tests.bench import configs, procs, run, wrk
from tests.conftest import REPO, free_port, lbcore_cmd


def _tree(rev: str | None, dest: Path) -> Path:
    """A copy of ``lbcore/`` at ``rev`` (None: this checkout's working files)."""
    dest.mkdir(parents=True)
    if rev is None:
        shutil.copytree(
            REPO / "lbcore", dest / "lbcore", ignore=shutil.ignore_patterns("__pycache__")
        )
    else:
        archive = subprocess.run(
            ["git", "-C", str(REPO), "archive", rev, "lbcore"], check=True, capture_output=True
        ).stdout
        subprocess.run(["tar", "-x", "-C", str(dest)], input=archive, check=True)
    return dest


def _med(per: dict[str, list[tuple[float, float]]], a: str, b: str, i: int) -> str:
    """Median (min to max) over rounds of side ``a``'s figure ``i`` over side ``b``'s."""
    v = sorted(x[i] / y[i] for x, y in zip(per[a], per[b], strict=True))
    return f"{statistics.median(v):.2f} ({v[0]:.2f}-{v[-1]:.2f})"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--base", required=True, help="git revision to compare against (e.g. main)")
    ap.add_argument("--rows", default="http-keepalive-small,tcp-connrate")
    ap.add_argument("--rounds", type=int, default=4)
    ap.add_argument("--duration", type=float, default=5.0)
    ap.add_argument("--no-log", action="store_true")
    args = ap.parse_args(argv)
    rows = run.select_rows(args.rows)
    run.raise_fd_limit()
    log = not args.no_log
    with procs.Processes("lbcore-ab-") as group:
        tmp = group.tmp
        bench = run.Bench(group, 1, log=log, standin=True)  # its "lbcore" side is not used
        trees = {"base": _tree(args.base, tmp / "base"), "new": _tree(None, tmp / "new")}
        bench.start()
        web, syslog = bench.ports["haproxy"].web, bench.ports["haproxy"].syslog
        sides: dict[str, tuple[procs.Service, configs.Ports]] = {
            "H": (bench.proxies["haproxy"], bench.ports["haproxy"])
        }
        for key, tree in trees.items():
            ports = configs.Ports(web, free_port(), free_port(), syslog)
            cfg = tmp / f"{key}.cfg"
            cfg.write_text(configs.proxy_conf(ports, 1, log=log))
            env = dict(os.environ, PYTHONPATH=str(tree))
            svc = procs.Service(
                key, lbcore_cmd("run", "-f", str(cfg)), [ports.http, ports.tcp], env
            )
            sides[key] = (group.start(svc), ports)
        for row in rows:
            per: dict[str, list[tuple[float, float]]] = {k: [] for k in sides}
            for rnd in range(args.rounds + 1):  # round 0 warms up, unrecorded
                order = ["H", "base", "new"] if rnd % 2 else ["H", "new", "base"]
                got = {}
                for k in order:
                    svc, ports = sides[k]
                    port = ports.http if row.target == "http" else ports.tcp
                    pids = svc.tree()
                    c0 = procs.cpu_seconds(pids)
                    res = wrk.run(
                        f"http://127.0.0.1:{port}{row.path}",
                        duration=args.duration,
                        close=row.close,
                    )
                    cpu = procs.cpu_seconds(pids) - c0
                    thr = res.mbps if row.unit == "MB/s" else res.rps
                    got[k] = (thr, cpu / max(res.requests, 1) * 1e6)
                if rnd == 0:
                    continue
                for k in sides:
                    per[k].append(got[k])
                print(
                    f"{row.name:22} round {rnd} "
                    + "  ".join(f"{k} {got[k][0]:9.1f} {got[k][1]:7.1f} us/req" for k in sides),
                    flush=True,
                )
            print(
                f"== {row.name}: vs HAProxy throughput base {_med(per, 'base', 'H', 0)} "
                f"new {_med(per, 'new', 'H', 0)}, CPU/req base {_med(per, 'base', 'H', 1)} "
                f"new {_med(per, 'new', 'H', 1)} | new/base throughput "
                f"{_med(per, 'new', 'base', 0)} "
                f"CPU/req {_med(per, 'new', 'base', 1)}",
                flush=True,
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
