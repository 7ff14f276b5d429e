"""What one change bought: HAProxy, lbcore at a base revision and this checkout, one run.

``python -m tests.bench.ab --base REV [--rows a,b] [--rounds N] [--duration S]``

The main bench compares lbcore with HAProxy; on a shared, noisy machine two separate
runs of it cannot tell a 10 % change from the weather. Here the base revision (``git
archive REV``, unpacked to a temporary directory) and this checkout's lbcore run side by
side with HAProxy, on the same backends and config, and every round measures all three
with the same wrk load, rotating the order of the two lbcores (HAProxy first, then base
and new, then new and base) so neither always runs on a warmer machine. Both lbcores
are started the same way (``python -m lbcore run`` from a copy of their ``lbcore``
package in the temporary directory, which is their working directory: ``python -m``
puts the working directory first on ``sys.path``, before ``PYTHONPATH``): a process
started from a different path or environment measured consistently differently here.
When this checkout's lbcore is compiled (``make native``), the base is compiled too
(``setup.py build_ext --inplace`` in its copy, 2 to 3 minutes; ``--pure-base`` skips it),
so that compiled code is compared with compiled code. Printed per row: the medians over
rounds of lbcore/HAProxy for throughput and CPU per request, for base and new, and of
new/base directly.

Before 2026-11-26 14:00Z both lbcores were started in the caller's working directory —
this checkout — so both ran this checkout's code, and "new/base" compared a revision
with itself: A/B figures from before then measured the machine's noise, not a change.
Before 16:20Z the same day the HTTPS rows (``https-*``) sent plain HTTP to the TCP
listener: ab.py figures for them from before then are TCP-mode figures.
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

#: what ``setup.py build_ext`` needs besides ``lbcore/``
_BUILD_FILES = ["setup.py", "native-modules.txt", "pyproject.toml", "README.md"]


def _tree(rev: str | None, dest: Path, build: bool = False) -> Path:
    """A copy of ``lbcore/`` at ``rev`` (None: this checkout's working files, with their
    compiled modules if built); ``build``: compile the copy's hot modules as ``make
    native`` does."""
    dest.mkdir(parents=True)
    if rev is None:
        shutil.copytree(
            REPO / "lbcore", dest / "lbcore", ignore=shutil.ignore_patterns("__pycache__")
        )
        return dest
    archive = subprocess.run(
        ["git", "-C", str(REPO), "archive", rev, "lbcore", *(_BUILD_FILES if build else [])],
        check=True,
        capture_output=True,
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(dest)], input=archive, check=True)
    if build:
        print(f"ab: compiling {rev} in {dest} (2-3 min)", flush=True)
        subprocess.run(
            [sys.executable, "setup.py", "-q", "build_ext", "--inplace", "-j", "2"],
            cwd=dest,
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
    return dest


def _compiled(tree: Path) -> tuple[int, int]:
    """(compiled modules, stale ones) of the lbcore in ``tree``, as it will import."""
    out = subprocess.run(
        [sys.executable, "-c", "import lbcore._native as n; print(len(n.ACTIVE), len(n.STALE))"],
        cwd=tree,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    return int(out[0]), int(out[1])


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
    ap.add_argument("--pure-base", action="store_true", help="do not compile the base")
    args = ap.parse_args(argv)
    rows = run.select_rows(args.rows)
    run.raise_fd_limit()
    log = not args.no_log
    with procs.Processes("lbcore-ab-") as group:
        tmp = group.tmp
        bench = run.Bench(group, 1, log=log, standin=True)  # its "lbcore" side is not used
        new = _tree(None, tmp / "new")
        compiled, stale = _compiled(new)
        build = bool(compiled) and not stale and not args.pure_base
        trees = {"base": _tree(args.base, tmp / "base", build), "new": new}
        for key, tree in trees.items():
            c, st = _compiled(tree)
            state = "pure Python" if not c or st else f"{c} modules compiled"
            print(f"ab: {key} lbcore from {tree}: {state}", flush=True)
        bench.start()
        web, syslog = bench.ports["haproxy"].web, bench.ports["haproxy"].syslog
        sides: dict[str, tuple[procs.Service, configs.Ports]] = {
            "H": (bench.proxies["haproxy"], bench.ports["haproxy"])
        }
        for key, tree in trees.items():
            ports = configs.Ports(web, free_port(), free_port(), syslog, free_port())
            cfg = tmp / f"{key}.cfg"
            cfg.write_text(configs.proxy_conf(ports, 1, log=log, pem=bench.pem))
            env = dict(os.environ, PYTHONPATH=str(tree))
            wait = [ports.http, ports.tcp, ports.https]
            svc = procs.Service(key, lbcore_cmd("run", "-f", str(cfg)), wait, env, cwd=tree)
            sides[key] = (group.start(svc), ports)
        for row in rows:
            per: dict[str, list[tuple[float, float]]] = {k: [] for k in sides}
            for rnd in range(args.rounds + 1):  # round 0 warms up, unrecorded
                order = ["H", "base", "new"] if rnd % 2 else ["H", "new", "base"]
                got = {}
                for k in order:
                    svc, ports = sides[k]
                    port = {"http": ports.http, "https": ports.https}.get(row.target, ports.tcp)
                    scheme = "https" if row.target == "https" else "http"
                    pids = svc.tree()
                    c0 = procs.cpu_seconds(pids)
                    res = wrk.run(
                        f"{scheme}://127.0.0.1:{port}{row.path}",
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
