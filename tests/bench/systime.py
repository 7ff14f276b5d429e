"""Where a proxy's system time per request goes: kernel-side counts per request, side by side.

``python -m tests.bench.systime [--rows http-keepalive-small] [--duration 5] [--rounds 2]
[--sides haproxy,lbcore,floor-log] [--variant NAME=FLAGS ...] [--events EV,...] [--record DIR]``

``strace -c`` counts the same system calls per keep-alive request for lbcore, HAProxy and
the floor forwarder, yet lbcore's system time per request was 1.5x theirs. This starts
the main bench's processes (nginx, HAProxy, lbcore from this checkout, the floor with its
log line; ``--variant NAME=FLAGS`` adds a floor-log started with more flags: ``--burn-us
US`` / ``--burn-kb KB`` spin / copy that much per request, to see what a slower forwarder
or a larger working set costs in the kernel, ``--batch`` makes a loop turn's writes together),
and for each side under the same bounded wrk load reads, per wrk request:

* from ``/proc`` of the measured process (lbcore's worker, HAProxy, the floor): user and
  system time (tick-sampled: 4 ms ticks at HZ=250), the exact run time
  (``/proc/PID/schedstat``), minor faults, voluntary and involuntary context switches;
* from ``/proc/stat``: the whole machine's user, system, softirq and idle time (what the
  request cost everyone: wrk, nginx and the proxy, and work done for it elsewhere);
* from ``perf stat -e`` on the process: tracepoints that happened in its context — event
  waits, packets it sent (``net:net_dev_xmit``: data segments and pure ACKs), softirqs it
  ran, wake-ups it made (``sched:sched_waking``), system calls;
* wrk's own user and system time (``wait4``).

``--record DIR`` also runs ``perf record -g`` (software clock) on the process for each
side, for ``perf report``. Needs root (or perf_event_paranoid ≤ 0) and ``perf``.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from tests.bench import configs, procs, run, wrk
from tests.conftest import free_port, lbcore_cmd, lbcore_env

PERF = shutil.which("perf") or "/usr/bin/perf"
EVENTS = (
    "raw_syscalls:sys_enter",
    "syscalls:sys_enter_epoll_wait",
    "syscalls:sys_enter_epoll_pwait",
    "syscalls:sys_enter_epoll_ctl",
    "net:net_dev_xmit",
    "irq:softirq_entry",
    "sched:sched_waking",
    "sched:sched_switch",
    "page-faults",
    "cpu-migrations",
)


@dataclass
class ProcStat:
    utime: float = 0.0
    stime: float = 0.0
    runtime: float = 0.0  # seconds, exact (schedstat)
    minflt: int = 0
    vcsw: int = 0
    ivcsw: int = 0

    @classmethod
    def read(cls, pid: int) -> ProcStat:
        stat = Path(f"/proc/{pid}/stat").read_text()
        f = stat[stat.rindex(")") + 2 :].split()
        status = Path(f"/proc/{pid}/status").read_text()
        v = int(re.search(r"^voluntary_ctxt_switches:\s+(\d+)", status, re.M).group(1))  # type: ignore[union-attr]
        iv = int(re.search(r"^nonvoluntary_ctxt_switches:\s+(\d+)", status, re.M).group(1))  # type: ignore[union-attr]
        sched = Path(f"/proc/{pid}/schedstat").read_text().split()
        return cls(
            utime=int(f[11]) / procs.CLK_TCK,
            stime=int(f[12]) / procs.CLK_TCK,
            runtime=int(sched[0]) / 1e9,
            minflt=int(f[7]),
            vcsw=v,
            ivcsw=iv,
        )

    def __sub__(self, o: ProcStat) -> ProcStat:
        return ProcStat(
            self.utime - o.utime,
            self.stime - o.stime,
            self.runtime - o.runtime,
            self.minflt - o.minflt,
            self.vcsw - o.vcsw,
            self.ivcsw - o.ivcsw,
        )


def machine() -> dict[str, float]:
    """/proc/stat's cpu line in seconds: user (+nice), system, softirq, irq, idle, steal."""
    parts = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    v = [int(x) / procs.CLK_TCK for x in parts]
    return {
        "user": v[0] + v[1],
        "system": v[2],
        "idle": v[3] + v[4],
        "irq": v[5],
        "softirq": v[6],
        "steal": v[7],
    }


@dataclass
class Result:
    side: str
    requests: int
    rps: float
    proc: ProcStat
    mach: dict[str, float]
    wrk_user: float
    wrk_sys: float
    events: dict[str, int] = field(default_factory=dict)


def parse_perf_csv(text: str) -> dict[str, int]:
    out: dict[str, int] = {}
    for line in text.splitlines():
        parts = line.split(",")
        if len(parts) >= 3 and parts[0].strip().isdigit():
            out[parts[2]] = int(parts[0])
    return out


def wrk_run(url: str, duration: float, close: bool) -> tuple[wrk.WrkResult, float, float]:
    argv = ["wrk", "-t1", "-c50", f"-d{max(1, round(duration))}s", "--latency", "--timeout", "5s"]
    if close:
        argv += ["-H", "Connection: close"]
    argv.append(url)
    with tempfile.TemporaryFile() as out:
        p = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT)
        _pid, status, ru = os.wait4(p.pid, 0)
        p.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        text = out.read().decode()
    if p.returncode != 0:
        raise RuntimeError(f"wrk failed: {text}")
    return wrk.parse(text), ru.ru_utime, ru.ru_stime


def measured_pid(svc: procs.Service) -> int:
    """The process that serves: lbcore's (only) worker, else the service itself."""
    tree = svc.tree()
    return tree[-1] if len(tree) > 1 else tree[0]


def measure(
    side: str,
    pid: int,
    url: str,
    duration: float,
    close: bool,
    events: list[str],
    record: Path | None,
) -> Result:
    with tempfile.NamedTemporaryFile(prefix="lbcore-perf-", suffix=".csv") as f:
        stat = subprocess.Popen(
            [PERF, "stat", "-x,", "-o", f.name, "-e", ",".join(events), "-p", str(pid)],
            stderr=subprocess.DEVNULL,
        )
        rec = None
        if record is not None:
            record.mkdir(parents=True, exist_ok=True)
            rec = subprocess.Popen(
                [PERF, "record", "-q", "-e", "cpu-clock", "-F", "2000", "-g", "-p", str(pid),
                 "-o", str(record / f"{side}.data")],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            )  # fmt: skip
        time.sleep(0.5)
        p0, m0 = ProcStat.read(pid), machine()
        res, wu, ws = wrk_run(url, duration, close)
        p1, m1 = ProcStat.read(pid), machine()
        for tracer in (stat, rec):
            if tracer is not None:
                tracer.send_signal(signal.SIGINT)
                tracer.wait(timeout=60)
        counts = parse_perf_csv(Path(f.name).read_text())
    return Result(
        side,
        res.requests,
        res.rps,
        p1 - p0,
        {k: m1[k] - m0[k] for k in m0},
        wu,
        ws,
        counts,
    )


def report(results: list[Result], events: list[str]) -> str:
    """Per-request figures, one column per side (µs, or counts)."""
    rows: list[tuple[str, list[str]]] = []

    def row(name: str, fn: object, fmt: str = "{:.2f}") -> None:
        rows.append((name, [fmt.format(fn(r)) for r in results]))  # type: ignore[operator]

    def per(x: float, r: Result) -> float:
        return x / max(r.requests, 1)

    row("req/s", lambda r: r.rps, "{:.0f}")
    row("proc user µs", lambda r: per(r.proc.utime, r) * 1e6)
    row("proc sys µs", lambda r: per(r.proc.stime, r) * 1e6)
    row("proc run µs (exact)", lambda r: per(r.proc.runtime, r) * 1e6)
    row(
        "proc busy %",
        lambda r: r.proc.runtime / max(r.requests / max(r.rps, 1), 1e-9) * 100,
        "{:.0f}",
    )
    row("minor faults", lambda r: per(r.proc.minflt, r), "{:.4f}")
    row("vol. ctx switches", lambda r: per(r.proc.vcsw, r), "{:.4f}")
    row("invol. ctx switches", lambda r: per(r.proc.ivcsw, r), "{:.4f}")
    for ev in events:
        row(ev, lambda r, ev=ev: per(r.events.get(ev, 0), r), "{:.3f}")
    row("wrk user µs", lambda r: per(r.wrk_user, r) * 1e6)
    row("wrk sys µs", lambda r: per(r.wrk_sys, r) * 1e6)
    for k in ("user", "system", "softirq", "idle", "steal"):
        row(f"machine {k} µs", lambda r, k=k: per(r.mach[k], r) * 1e6)
    row(
        "machine busy µs",
        lambda r: per(sum(v for k, v in r.mach.items() if k not in ("idle", "steal")), r) * 1e6,
    )
    width = max(len(n) for n, _ in rows) + 2
    head = f"{'per request':<{width}}" + "".join(f"{r.side:>14}" for r in results)
    return "\n".join(
        [head] + [f"{n:<{width}}" + "".join(f"{c:>14}" for c in cells) for n, cells in rows]
    )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rows", default="http-keepalive-small")
    ap.add_argument("--duration", type=float, default=5.0)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument(
        "--warmup",
        type=float,
        default=6.0,
        help="unmeasured seconds per side first (a fresh lbcore's server pool estimates its "
        "need over its first 5 s, opening and closing connections meanwhile)",
    )
    ap.add_argument("--sides", default="haproxy,lbcore,floor-log")
    ap.add_argument(
        "--consecutive",
        action="store_true",
        help="each side's rounds back to back, not rotating: no idle gap between one "
        "side's runs (lbcore's server pool, idle for 5 s, is purged and relearnt)",
    )
    ap.add_argument(
        "--variant",
        action="append",
        default=[],
        help="NAME=FLAGS: a floor-log started with these extra flags (--batch, --burn-us 20 ...)",
    )
    ap.add_argument(
        "--tree",
        action="append",
        default=[],
        help="NAME=DIR: also an lbcore run from DIR (a copy holding lbcore/, built or not)",
    )
    ap.add_argument("--events", default=",".join(EVENTS))
    ap.add_argument("--record", type=Path, help="perf record -g into DIR/SIDE.data")
    ap.add_argument("--no-log", action="store_true")
    ap.add_argument("--http-reuse")
    args = ap.parse_args(argv)
    rows = run.select_rows(args.rows)
    sides = args.sides.split(",")
    events = args.events.split(",")
    run.raise_fd_limit()
    with procs.Processes("lbcore-systime-") as group:
        bench = run.Bench(
            group,
            1,
            log=not args.no_log,
            standin=False,
            floor=any(s.startswith("floor") for s in sides),
            http_reuse=args.http_reuse,
        )
        bench.start()
        ports: dict[str, int] = {}
        for spec in args.variant:
            name, _, flags = spec.partition("=")
            fp = bench.ports["floor-log"]
            port = free_port()
            argv_ = [
                sys.executable,
                "-m",
                "tests.bench.floor",
                "serve",
                "--bind",
                f"127.0.0.1:{port}",
            ]
            for w in fp.web:
                argv_ += ["--server", f"127.0.0.1:{w}"]
            argv_ += ["--log", f"127.0.0.1:{fp.syslog}", *flags.split()]
            bench.proxies[name] = group.start(procs.Service(name, argv_, [port], lbcore_env()))
            ports[name] = port
            sides.append(name)
        for spec in args.tree:
            name, _, tree = spec.partition("=")
            ref = bench.ports["haproxy"]
            tp = configs.Ports(ref.web, free_port(), free_port(), ref.syslog)
            cfg = group.tmp / f"{name}.cfg"
            cfg.write_text(configs.proxy_conf(tp, 1, not args.no_log, None, args.http_reuse))
            # cwd: ``python -m`` puts the current directory first on sys.path
            svc = procs.Service(name, lbcore_cmd("run", "-f", str(cfg)), [tp.http], cwd=tree)
            bench.proxies[name] = group.start(svc)
            ports[name] = tp.http
            sides.append(name)
        for row in rows:
            results: list[Result] = []
            if args.warmup > 0 and not args.consecutive:
                for side in sides:
                    port = ports.get(side) or bench.port(side, row)
                    wrk_run(f"http://127.0.0.1:{port}{row.path}", args.warmup, row.close)
            if args.consecutive:  # each side's warm-up and rounds back to back
                order = [(side, rnd) for side in sides for rnd in range(-1, args.rounds)]
            else:  # rounds, the order of the sides rotating
                order = []
                for rnd in range(args.rounds):
                    k = rnd % len(sides)
                    order += [(side, rnd) for side in sides[k:] + sides[:k]]
            for side, rnd in order:
                port = ports.get(side) or bench.port(side, row)
                url = f"http://127.0.0.1:{port}{row.path}"
                if rnd < 0:
                    if args.warmup > 0:
                        wrk_run(url, args.warmup, row.close)
                    continue
                pid = measured_pid(bench.proxies[side])
                rec = args.record if args.record and rnd == 0 else None
                results.append(measure(side, pid, url, args.duration, row.close, events, rec))
                print(
                    f"  {row.name} round {rnd + 1} {side}: {results[-1].rps:.0f} req/s",
                    flush=True,
                )
            print(
                f"== {row.name}, {args.rounds} rounds x {args.duration:g}s, load {os.getloadavg()}"
            )
            by_side = []
            for side in sides:
                mine = [r for r in results if r.side == side]
                by_side.extend(mine)
            print(report(by_side, events), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
