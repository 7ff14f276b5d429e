"""``make bench``: lbcore against HAProxy on the same backends, same load, one run.

Method (docs/performance.md says why): two nginx backends on loopback serve a small
body and a 1 MB file; HAProxy (Debian's) and lbcore are started once, on the same
configuration text with the same worker/thread count; each row is measured in
rounds, and each round runs wrk against HAProxy and lbcore (A B, then B A ...) with
the same bounded load (``-t1 -c50 -d SECONDS``). Per run we keep req/s (or MB/s),
p50/p99 latency, the proxy's CPU seconds per 100k requests (utime+stime of its whole
process tree from /proc) and its peak RSS (sampled during the run). The ratio
lbcore/HAProxy is computed per round and summarised as min/median/max. The table is
printed and the results written as JSON. The benchmark prints; it does not pass/fail.

Until ``lbcore run`` exists in this checkout, the lbcore side is a stand-in (HAProxy
again, clearly labelled), so the harness itself can be developed and smoke-tested.
"""

from __future__ import annotations

import argparse
import http.client
import importlib.util
import json
import os
import platform
import resource
import shutil
import socket
import ssl
import statistics
import subprocess
import sys
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from tests.bench import configs, procs, wrk
from tests.bench.idle import IdleResult, measure_idle
from tests.conftest import REPO, free_port, lbcore_cmd, lbcore_env

HAPROXY = "/usr/sbin/haproxy"
NGINX = "/usr/sbin/nginx"
SIDES = ("haproxy", "lbcore")
# With --floor, on the HTTP rows: tests/bench/floor.py without and with its access log.
FLOOR_SIDES = ("floor", "floor-log")


@dataclass(frozen=True, slots=True)
class Row:
    name: str
    title: str
    target: str  # "http" (frontend in mode http), "https" (the same over TLS) or "tcp"
    path: str
    close: bool  # Connection: close → one client connection per request
    unit: str  # headline unit: "req/s" or "MB/s"


ROWS = (
    Row("http-keepalive-small", "HTTP keep-alive, small body", "http", "/small", False, "req/s"),
    Row("http-close-small", "HTTP, new connection per request", "http", "/small", True, "req/s"),
    Row("http-1mb", "HTTP 1 MB responses", "http", "/1m", False, "MB/s"),
    Row("tcp-bulk", "TCP mode bulk (1 MB responses)", "tcp", "/1m", False, "MB/s"),
    Row("tcp-connrate", "TCP mode, new connection per request", "tcp", "/small", True, "req/s"),
    Row("https-keepalive-small", "HTTPS keep-alive, small body", "https", "/small", False, "req/s"),
    # wrk resumes no session: every request is a full handshake (ECDSA P-256, TLS 1.3)
    Row("https-handshakes", "HTTPS full handshake per request", "https", "/small", True, "req/s"),
)


@dataclass(frozen=True, slots=True)
class Sample:
    """One wrk run against one proxy."""

    throughput: float  # in the row's unit
    rps: float
    mbps: float
    p50_ms: float
    p99_ms: float
    cpu_per_100k: float  # proxy CPU seconds per 100,000 requests
    rss_mb: float  # peak RSS of the proxy's process tree during the run
    requests: int
    errors: int
    user_us: float = 0.0  # proxy user CPU per request, microseconds
    sys_us: float = 0.0  # proxy system CPU per request, microseconds


def lbcore_available() -> bool:
    return importlib.util.find_spec("lbcore.cmd_run") is not None


class RssSampler:
    """Peak resident memory of a process tree, sampled in a thread during a run."""

    def __init__(self, pids: list[int], interval: float = 0.2) -> None:
        self.pids = pids
        self.interval = interval
        self.peak = procs.rss_bytes(pids)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            self.peak = max(self.peak, procs.rss_bytes(self.pids))

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, procs.rss_bytes(self.pids))


def measure(svc: procs.Service, port: int, row: Row, duration: float) -> Sample:
    pids = svc.tree()
    u0, s0 = procs.cpu_split(pids)
    scheme = "https" if row.target == "https" else "http"
    with RssSampler(pids) as rss:
        res = wrk.run(f"{scheme}://127.0.0.1:{port}{row.path}", duration=duration, close=row.close)
    u1, s1 = procs.cpu_split(pids)
    cpu = u1 - u0 + s1 - s0
    n = max(res.requests, 1)
    return Sample(
        throughput=res.mbps if row.unit == "MB/s" else res.rps,
        rps=res.rps,
        mbps=res.mbps,
        p50_ms=res.p50_ms,
        p99_ms=res.p99_ms,
        cpu_per_100k=cpu / n * 100_000,
        rss_mb=rss.peak / 1024**2,
        requests=res.requests,
        errors=res.errors,
        user_us=(u1 - u0) / n * 1e6,
        sys_us=(s1 - s0) / n * 1e6,
    )


def verify(port: int, path: str, expected: bytes, who: str, tls: bool = False) -> None:
    """A proxy that does not return the right bytes is not benchmarked."""
    if tls:
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        conn: http.client.HTTPConnection = http.client.HTTPSConnection(
            "127.0.0.1", port, timeout=10, context=ctx
        )
    else:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        for _ in range(2):  # twice: both backends, keep-alive reuse
            conn.request("GET", path)
            resp = conn.getresponse()
            body = resp.read()
            if resp.status != 200 or body != expected:
                raise RuntimeError(
                    f"{who} on port {port} answered {resp.status} with {len(body)} bytes for "
                    f"{path} (expected 200 with {len(expected)} bytes)"
                )
    except (OSError, http.client.HTTPException) as e:
        raise RuntimeError(f"{who} on port {port} failed GET {path}: {e!r}") from e
    finally:
        conn.close()


def spread(values: list[float]) -> dict[str, float]:
    return {"min": min(values), "median": statistics.median(values), "max": max(values)}


def ratios(per_side: dict[str, list[Sample]], field: str, side: str = "lbcore") -> dict[str, float]:
    """``side``/HAProxy of ``field``, round by round, as min/median/max."""
    pairs = zip(per_side["haproxy"], per_side[side], strict=True)
    vals = [getattr(lb, field) / getattr(ha, field) for ha, lb in pairs if getattr(ha, field)]
    return spread(vals) if vals else {"min": 0.0, "median": 0.0, "max": 0.0}


def summarise(row: Row, per_side: dict[str, list[Sample]]) -> dict[str, object]:
    fields = ("throughput", "rps", "mbps", "p50_ms", "p99_ms", "cpu_per_100k", "rss_mb")
    sides: dict[str, object] = {}
    extra = ("user_us", "sys_us")
    for side, samples in per_side.items():
        median = {f: statistics.median(getattr(s, f) for s in samples) for f in fields + extra}
        median["errors"] = sum(s.errors for s in samples)
        median["requests"] = sum(s.requests for s in samples)
        sides[side] = {"rounds": [asdict(s) for s in samples], "median": median}
    out: dict[str, object] = {
        "name": row.name,
        "title": row.title,
        "unit": row.unit,
        "sides": sides,
        "ratio": {f: ratios(per_side, f) for f in fields},
    }
    others = [s for s in per_side if s not in SIDES]
    if others:  # the floor's sides against HAProxy, the same way
        out["ratios"] = {s: {f: ratios(per_side, f, s) for f in fields} for s in others}
    return out


def table(results: list[dict[str, object]], standin: bool) -> str:
    head = (
        f"{'row':<22} {'proxy':<9} {'req/s':>9} {'MB/s':>8} {'p50 ms':>8} {'p99 ms':>8} "
        f"{'CPU s/100k':>10} {'RSS MB':>7} {'errors':>6}"
    )
    lines = [head, "-" * len(head)]
    for r in results:
        sides = r["sides"]
        assert isinstance(sides, dict)
        for i, side in enumerate(sides):
            m = sides[side]["median"]
            label = f"{side}*" if side == "lbcore" and standin else side
            lines.append(
                f"{r['name'] if i == 0 else '':<22} {label:<9} {m['rps']:>9.0f} {m['mbps']:>8.1f} "
                f"{m['p50_ms']:>8.2f} {m['p99_ms']:>8.2f} {m['cpu_per_100k']:>10.2f} "
                f"{m['rss_mb']:>7.1f} {m['errors']:>6}"
            )
        q = r["ratio"]
        assert isinstance(q, dict)
        others = r.get("ratios") or {}
        assert isinstance(others, dict)
        for label, qq in [("ratio", q), *((f"{k}/H", v) for k, v in others.items())]:
            t = qq["throughput"]
            lines.append(
                f"{'':<22} {label:<9} {r['unit']} {t['median']:.2f} "
                f"(min {t['min']:.2f}, max {t['max']:.2f}); "
                f"p50 {qq['p50_ms']['median']:.2f}, p99 {qq['p99_ms']['median']:.2f}, "
                f"CPU/req {qq['cpu_per_100k']['median']:.2f} "
                f"(min {qq['cpu_per_100k']['min']:.2f}, max {qq['cpu_per_100k']['max']:.2f}), "
                f"RSS {qq['rss_mb']['median']:.2f}"
            )
    if standin:
        lines.append("* STAND-IN: the lbcore side ran HAProxy (--standin, or no `lbcore run`).")
    lines.append("ratio = lbcore / HAProxy per round; median (min, max) over rounds.")
    if any(r.get("ratios") for r in results):
        lines.append(
            "floor = tests/bench/floor.py, a minimal uvloop+httptools forwarder; floor-log the "
            "same with one f-string log line per request over UDP; X/H = X / HAProxy."
        )
        lines.append("CPU per request, user + system µs (medians over rounds):")
        for r in results:
            if r.get("ratios"):
                sides = r["sides"]
                assert isinstance(sides, dict)
                lines.append(
                    f"  {r['name']:<22} "
                    + "; ".join(
                        f"{side} {v['median']['user_us']:.1f} + {v['median']['sys_us']:.1f}"
                        for side, v in sides.items()
                    )
                )
    return "\n".join(lines)


def summarise_idle(per_side: dict[str, list[IdleResult]]) -> dict[str, object]:
    sides = {
        side: {
            "rounds": [asdict(r) for r in results],
            "median": {"kb_per_conn": statistics.median(r.kb_per_conn for r in results)},
        }
        for side, results in per_side.items()
    }
    pairs = zip(per_side["haproxy"], per_side["lbcore"], strict=True)
    vals = [lb.kb_per_conn / ha.kb_per_conn for ha, lb in pairs if ha.kb_per_conn > 0]
    return {
        "name": "idle-keepalive",
        "connections": per_side["haproxy"][0].connections,
        "sides": sides,
        "ratio": {"kb_per_conn": spread(vals) if vals else None},
    }


def idle_table(idle: dict[str, object], standin: bool) -> str:
    sides = idle["sides"]
    ratio = idle["ratio"]
    assert isinstance(sides, dict) and isinstance(ratio, dict)
    lines = [f"idle keep-alive connections: {idle['connections']} (RSS growth per connection)"]
    for side in SIDES:
        label = f"{side}*" if side == "lbcore" and standin else side
        lines.append(f"  {label:<8} {sides[side]['median']['kb_per_conn']:>8.1f} KB/conn")
    q = ratio["kb_per_conn"]
    if q:
        lines.append(f"  {'ratio':<8} {q['median']:>8.2f} (min {q['min']:.2f}, max {q['max']:.2f})")
    else:
        lines.append(f"  {'ratio':<8}      n/a (HAProxy's growth was 0)")
    return "\n".join(lines)


def raise_fd_limit() -> None:
    """Idle-connection rows need thousands of descriptors (children inherit this)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or soft < hard:
        resource.setrlimit(
            resource.RLIMIT_NOFILE, (hard if hard != resource.RLIM_INFINITY else 65536, hard)
        )


def version(argv: list[str]) -> str:
    try:
        out = subprocess.run(argv, capture_output=True, text=True, timeout=10, check=False)
    except OSError:
        return "?"
    return (out.stdout or out.stderr).splitlines()[0].strip() if (out.stdout or out.stderr) else "?"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    doc = (__doc__ or "").split("\n")[0]
    p = argparse.ArgumentParser(prog="python -m tests.bench.run", description=doc)
    p.add_argument("--short", action="store_true", help="CI smoke mode: 2 rounds of 2 s per row")
    p.add_argument("--rounds", type=int, help="rounds per row (default 3; short: 2)")
    p.add_argument("--duration", type=float, help="seconds per wrk run (default 10; short: 2)")
    p.add_argument("--warmup", type=float, help="unrecorded seconds per side per row (default 2)")
    p.add_argument("--workers", type=int, default=1, help="lbcore workers = HAProxy nbthread")
    p.add_argument("--rows", help="comma-separated subset of: " + ", ".join(r.name for r in ROWS))
    p.add_argument(
        "--idle", type=int, help="idle keep-alive connections (default 5000; short: 1000; 0: skip)"
    )
    p.add_argument("--no-log", action="store_true", help="without option httplog/tcplog")
    p.add_argument("--standin", action="store_true", help="run HAProxy on the lbcore side too")
    p.add_argument(
        "--http-reuse",
        "--haproxy-http-reuse",  # its name while lbcore did not read the keyword
        dest="http_reuse",
        metavar="MODE",
        choices=("never", "safe", "aggressive", "always"),
        default="always",
        help="'http-reuse MODE' in both proxies' HTTP backend (default always: issue 10's "
        "connection-per-request row is 'server-side reuse on', and with HAProxy's own "
        "default, safe, a new client connection's only request never reuses)",
    )
    p.add_argument(
        "--floor",
        action="store_true",
        help="also measure tests/bench/floor.py (without and with its log line) on HTTP rows",
    )
    p.add_argument("--json", type=Path, default=REPO / "artifacts" / "bench.json")
    p.add_argument("--keep", action="store_true", help="keep the temp dir (configs, logs)")
    a = p.parse_args(argv)
    a.rounds = a.rounds or (2 if a.short else 3)
    a.duration = a.duration or (2.0 if a.short else 10.0)
    a.idle = a.idle if a.idle is not None else (1000 if a.short else 5000)
    a.warmup = a.warmup if a.warmup is not None else (0.0 if a.short else 2.0)
    return a


class Bench:
    """The processes of one benchmark run: nginx backends and the two proxies (and with
    ``floor`` the floor forwarder twice), started in ``group``, which stops them.

    The proxies run side by side for the whole run (the idle ones cost nothing), each
    on its own ports: the same config text with only the proxy ports changed.
    """

    def __init__(
        self,
        group: procs.Processes,
        workers: int,
        log: bool,
        standin: bool,
        floor: bool = False,
        http_reuse: str | None = None,
    ) -> None:
        self.group = group
        self.tmp = group.tmp
        self.workers = workers
        self.log = log
        self.standin = standin
        self.floor = FLOOR_SIDES if floor else ()
        self.http_reuse = http_reuse
        self.proxies: dict[str, procs.Service] = {}
        # The syslog sink: bound, never read. The kernel drops what overflows its
        # buffer, so it costs no CPU, and both proxies pay the same for logging.
        self.sink = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        group.on_exit(self.sink.close)
        self.sink.bind(("127.0.0.1", 0))
        web = (free_port(), free_port())
        syslog = self.sink.getsockname()[1]
        self.ports = {
            side: configs.Ports(web, free_port(), free_port(), syslog, free_port())
            for side in SIDES
        }
        for side in self.floor:  # an HTTP port only
            self.ports[side] = configs.Ports(web, free_port(), 0, syslog)
        self.pem = configs.write_tls_cert(self.tmp / "bench.pem")

    def sides(self, row: Row) -> tuple[str, ...]:
        """Who is measured on ``row``: the floor forwards plain HTTP only."""
        return SIDES + self.floor if row.target == "http" else SIDES

    def port(self, side: str, row: Row) -> int:
        p = self.ports[side]
        return {"http": p.http, "https": p.https}.get(row.target, p.tcp)

    def start(self) -> None:
        tmp = self.tmp
        configs.write_docroot(tmp / "www")
        for d in ("body", "proxy", "fastcgi", "uwsgi", "scgi"):
            (tmp / "tmp" / d).mkdir(parents=True, exist_ok=True)
        (tmp / "nginx.conf").write_text(configs.nginx_conf(tmp, self.ports["haproxy"]))
        nginx_argv = [NGINX, "-p", f"{tmp}/", "-e", f"{tmp}/error.log", "-c", f"{tmp}/nginx.conf"]
        self.group.start(procs.Service("nginx", nginx_argv, list(self.ports["haproxy"].web)))
        big = (tmp / "www" / "1m").read_bytes()
        for side in SIDES:
            sp = self.ports[side]
            self.proxies[side] = self.start_proxy(side, side, sp)
            for port in (sp.http, sp.tcp):
                verify(port, "/small", configs.SMALL_BODY, side)
                verify(port, "/1m", big, side)
            verify(sp.https, "/small", configs.SMALL_BODY, side, tls=True)
        for side in self.floor:
            fp = self.ports[side]
            argv = [sys.executable, "-m", "tests.bench.floor", "serve"]
            argv += ["--bind", f"127.0.0.1:{fp.http}", "--workers", str(self.workers)]
            for w in fp.web:
                argv += ["--server", f"127.0.0.1:{w}"]
            if side == "floor-log":
                argv += ["--log", f"127.0.0.1:{fp.syslog}"]
            svc = procs.Service(side, argv, [fp.http], lbcore_env())
            self.proxies[side] = self.group.start(svc)
            verify(fp.http, "/small", configs.SMALL_BODY, side)
            verify(fp.http, "/1m", big, side)

    def start_proxy(self, side: str, name: str, ports: configs.Ports) -> procs.Service:
        """A proxy of kind ``side`` on ``ports``, its config and output named ``name``."""
        cfg = self.tmp / f"{name}.cfg"
        cfg.write_text(configs.proxy_conf(ports, self.workers, self.log, self.pem, self.http_reuse))
        if side == "haproxy" or self.standin:
            argv, env = [HAPROXY, "-db", "-f", str(cfg)], None
        else:
            argv, env = lbcore_cmd("run", "-f", str(cfg)), lbcore_env()
        wait = [ports.http, ports.tcp] + ([ports.https] if ports.https else [])
        return self.group.start(procs.Service(name, argv, wait, env=env))

    def run_row(self, row: Row, rounds: int, duration: float, warmup: float) -> dict[str, object]:
        sides = self.sides(row)
        if warmup > 0:
            for side in sides:
                measure(self.proxies[side], self.port(side, row), row, warmup)
        per_side: dict[str, list[Sample]] = {s: [] for s in sides}
        for rnd in range(rounds):
            # A B, B A (A B C, B C A, C A B ...): no side always runs first or last
            k = rnd % len(sides)
            for side in sides[k:] + sides[:k]:
                s = measure(self.proxies[side], self.port(side, row), row, duration)
                per_side[side].append(s)
                print(
                    f"  {row.name:<22} round {rnd + 1} {side:<9} "
                    f"{s.throughput:>10.1f} {row.unit}  p99 {s.p99_ms:.2f} ms  errors {s.errors}",
                    flush=True,
                )
        return summarise(row, per_side)

    def run_idle(self, rounds: int, n: int) -> dict[str, object]:
        """Each round on freshly started proxies: a proxy that already held many
        connections keeps its pools and arenas, and would show no growth at all."""
        per_side: dict[str, list[IdleResult]] = {s: [] for s in SIDES}
        for rnd in range(rounds):
            for side in SIDES:
                p = self.ports[side]
                ports = configs.Ports(p.web, free_port(), free_port(), p.syslog)
                svc = self.start_proxy(side, f"{side}-idle{rnd + 1}", ports)
                try:
                    verify(ports.http, "/small", configs.SMALL_BODY, svc.name)
                    r = measure_idle(svc, ports.http, n)
                finally:
                    svc.stop()
                per_side[side].append(r)
                print(
                    f"  {'idle-keepalive':<22} round {rnd + 1} {side:<8} "
                    f"{r.kb_per_conn:>10.1f} KB/conn  ({r.connections} in {r.seconds:.1f}s)",
                    flush=True,
                )
        return summarise_idle(per_side)


def select_rows(spec: str | None) -> tuple[Row, ...]:
    if not spec:
        return ROWS
    wanted = spec.split(",")
    unknown = set(wanted) - {r.name for r in ROWS}
    if unknown:
        raise SystemExit(f"unknown rows: {', '.join(sorted(unknown))}")
    return tuple(r for r in ROWS if r.name in wanted)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    rows = select_rows(args.rows)
    for tool in (HAPROXY, NGINX, shutil.which("wrk") or "wrk"):
        if not os.path.exists(tool):
            print(f"{tool} is missing: `make deps` installs it", file=sys.stderr)
            return 2
    standin = args.standin or not lbcore_available()
    raise_fd_limit()
    with procs.Processes("lbcore-bench-", keep=args.keep) as group:
        bench = Bench(
            group,
            args.workers,
            log=not args.no_log,
            standin=standin,
            floor=args.floor,
            http_reuse=args.http_reuse,
        )
        bench.start()
        print(
            f"bench: {len(rows)} rows x {args.rounds} rounds x {args.duration:g}s per side; "
            f"workers/nbthread={args.workers}; wrk -t1 -c50"
            + ("; lbcore side is a STAND-IN (HAProxy)" if standin else "")
            + ("; with the floor forwarder on HTTP rows" if args.floor else "")
            + (f"; both with http-reuse {args.http_reuse}" if args.http_reuse else ""),
            flush=True,
        )
        t0 = time.monotonic()
        results = [bench.run_row(r, args.rounds, args.duration, args.warmup) for r in rows]
        idle = bench.run_idle(args.rounds, args.idle) if args.idle > 0 else None
        elapsed = time.monotonic() - t0

    print()
    print(table(results, standin))
    if idle:
        print()
        print(idle_table(idle, standin))
    report = {
        "meta": {
            "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "short": args.short,
            "rounds": args.rounds,
            "duration_s": args.duration,
            "warmup_s": args.warmup,
            "idle_connections": args.idle,
            "workers": args.workers,
            "log": not args.no_log,
            "load": "wrk -t1 -c50 --latency",
            "lbcore_standin": standin,
            "floor": args.floor,
            "http_reuse": args.http_reuse,  # both proxies (before: haproxy_http_reuse)
            "haproxy": version([HAPROXY, "-v"]),
            "nginx": version([NGINX, "-v"]),
            "cpus": os.cpu_count(),
            "machine": platform.platform(),
            "elapsed_s": round(elapsed, 1),
        },
        "rows": results,
        "idle": idle,
    }
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(report, indent=2) + "\n")
    print(f"results written to {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
