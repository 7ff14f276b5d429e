"""VRRP failover time: lbcore vs keepalived, same settings, side by side.

Two namespaces on a bridge; the master (priority 150) and the backup (100) run
the same keepalived-dialect config (VRRPv3, advert_int 0.1 by default). Each
run SIGKILLs the master (a crash: no priority-0 advert) and measures, from the
kill to the moment the VIP is configured on the backup, observed by a thread
inside the backup's namespace that polls every millisecond. The master is then
restarted and must preempt back before the next run.

    python -m tests.bench.vrrp_failover            # 10 runs each, prints a table
    python -m tests.bench.vrrp_failover --short    # 3 runs each (CI smoke)
    python -m tests.bench.vrrp_failover --json     # machine-readable

It prints; it does not pass or fail (the CI smoke test judges the numbers).
Needs root (namespaces, raw sockets).
"""

from __future__ import annotations

import argparse
import json
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

from lbcore.vrrp.fsm import master_down_interval
from tests.integration.vrrp.conftest import keepalived_state, read_state, vrrp_conf
from tests.integration.vrrp.lab import (
    KEEPALIVED,
    Host,
    Lab,
    address_is_local,
    enter_netns,
    wait_for,
)


class Pair:
    """A master/backup pair of one implementation in a lab."""

    def __init__(self, impl: str, lab: Lab, tmp: Path, version: int, advert: str) -> None:
        self.impl, self.lab, self.tmp = impl, lab, tmp
        self.master_host, self.backup_host = lab.hosts
        self.vip = lab.vip()
        self.starts = 0
        for name, prio in (("master", 150), ("backup", 100)):
            (tmp / f"{impl}-{name}.conf").write_text(
                vrrp_conf(vip=self.vip, priority=prio, version=version, advert=advert, vrid=77)
            )
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.logs: dict[str, Path] = {}

    def start(self, role: str) -> None:
        host = self.master_host if role == "master" else self.backup_host
        conf = self.tmp / f"{self.impl}-{role}.conf"
        self.starts += 1
        log = self.tmp / f"{self.impl}-{role}-{self.starts}.log"
        self.logs[role] = log
        if self.impl == "lbcore":
            self.procs[role] = self.lab.start_lbcore(
                host, conf, self.tmp / f"{self.impl}-{role}.json", log
            )
        else:
            self.procs[role] = self.lab.start_keepalived(host, conf, log)

    def state(self, role: str) -> str | None:
        if self.procs[role].poll() is not None:
            return None
        if self.impl == "lbcore":
            return read_state(self.tmp / f"{self.impl}-{role}.json")
        return keepalived_state(self.logs[role])

    def steady(self) -> bool:
        return (
            self.state("master") == "MASTER"
            and self.state("backup") == "BACKUP"
            and self.master_host.has(self.vip)
            and not self.backup_host.has(self.vip)
        )

    def kill_master(self) -> None:
        self.lab.kill(self.procs["master"], signal.SIGKILL)

    def stop(self) -> None:
        for proc in self.procs.values():
            self.lab.kill(proc, signal.SIGTERM)


def watch_for_address(host: Host, ip: str, timeout: float) -> Callable[[], float | None]:
    """Start a thread in ``host``'s namespace; the returned call gives when ``ip`` appeared."""
    seen: list[float] = []
    ready = threading.Event()

    def run() -> None:
        enter_netns(host.ns)
        ready.set()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if address_is_local(ip):
                seen.append(time.monotonic())
                return
            time.sleep(0.001)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    ready.wait(5)

    def result() -> float | None:
        thread.join(timeout + 1)
        return seen[0] if seen else None

    return result


def measure(
    impl: str, runs: int, version: int, advert: str, log: Callable[[str], None]
) -> list[float]:
    tmp = Path(tempfile.mkdtemp(prefix=f"lbv-bench-{impl}-"))
    lab = Lab(tmp, n_hosts=2)
    pair = Pair(impl, lab, tmp, version, advert)
    times: list[float] = []
    try:
        pair.start("master")
        if not wait_for(lambda: pair.state("master") == "MASTER", 20):
            raise RuntimeError(f"{impl}: master never came up; see {tmp}")
        pair.start("backup")
        for run in range(runs):
            if not wait_for(pair.steady, 20):
                raise RuntimeError(
                    f"{impl}: no steady master/backup before run {run + 1}; see {tmp}"
                )
            time.sleep(0.3)  # a few adverts in steady state
            took = watch_for_address(pair.backup_host, pair.vip, 10)
            t_kill = time.monotonic()
            pair.kill_master()
            t_vip = took()
            if t_vip is None:
                raise RuntimeError(f"{impl}: backup never took the VIP in run {run + 1}; see {tmp}")
            times.append(t_vip - t_kill)
            log(f"  {impl} run {run + 1}: {times[-1]:.3f} s")
            pair.start("master")  # preempts back (its stale VIP cleared at start)
    finally:
        pair.stop()
        lab.close()
    return times


def summary(times: list[float]) -> dict[str, float]:
    return {
        "min": min(times),
        "median": statistics.median(times),
        "max": max(times),
        "runs": len(times),
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--runs", type=int, default=10)
    p.add_argument("--short", action="store_true", help="3 runs each (CI smoke)")
    p.add_argument("--version", type=int, default=3, choices=[2, 3])
    p.add_argument("--advert", default="0.1", help="advert_int (seconds)")
    p.add_argument(
        "--impl", default="lbcore,keepalived", help="comma-separated: lbcore, keepalived"
    )
    p.add_argument("--json", action="store_true")
    p.add_argument("-q", "--quiet", action="store_true", help="no per-run lines")
    args = p.parse_args(argv)
    runs = 3 if args.short else args.runs
    impls = [i for i in args.impl.split(",") if i]
    if "keepalived" in impls and not Path(KEEPALIVED).exists():
        print(f"# {KEEPALIVED} not installed: measuring lbcore only", file=sys.stderr)
        impls.remove("keepalived")

    def log(line: str) -> None:
        if not args.quiet and not args.json:
            print(line, flush=True)

    results = {impl: summary(measure(impl, runs, args.version, args.advert, log)) for impl in impls}
    theory = master_down_interval(args.version, 100, float(args.advert))
    if args.json:
        print(
            json.dumps(
                {
                    "version": args.version,
                    "advert_int": float(args.advert),
                    "theory": theory,
                    "results": results,
                },
                indent=2,
            )
        )
        return 0
    print(
        f"\nVRRP failover after SIGKILL of the master (VRRPv{args.version}, "
        f"advert_int {args.advert} s, priorities 150/100, {runs} runs each)"
    )
    print(f"theory: Master_Down_Interval = 3 x advert + skew = {theory:.3f} s")
    print(f"{'impl':<12}{'min':>8}{'median':>9}{'max':>8}")
    for impl, r in results.items():
        print(f"{impl:<12}{r['min']:>8.3f}{r['median']:>9.3f}{r['max']:>8.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
