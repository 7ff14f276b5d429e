"""Running wrk (bounded: fixed duration, connections and threads) and reading its report."""

from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass

_UNITS_TIME = {"us": 1e-3, "ms": 1.0, "s": 1000.0, "m": 60_000.0}
_UNITS_SIZE = {"B": 1, "KB": 1024, "MB": 1024**2, "GB": 1024**3, "TB": 1024**4}


@dataclass(frozen=True, slots=True)
class WrkResult:
    requests: int
    seconds: float
    bytes_read: float
    p50_ms: float
    p99_ms: float
    errors: int  # socket errors + non-2xx/3xx answers

    @property
    def rps(self) -> float:
        return self.requests / self.seconds

    @property
    def mbps(self) -> float:
        return self.bytes_read / self.seconds / 1024**2


def _ms(text: str) -> float:
    m = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text)
    if not m:
        raise ValueError(f"wrk latency {text!r}")
    return float(m.group(1)) * _UNITS_TIME[m.group(2)]


def parse(out: str) -> WrkResult:
    """Read wrk's ``--latency`` report (raises ValueError if a field is missing)."""
    m = re.search(r"(\d+) requests in ([\d.]+)(us|ms|s|m), ([\d.]+)(B|KB|MB|GB|TB) read", out)
    if not m:
        raise ValueError(f"no request count in wrk output:\n{out}")
    requests = int(m.group(1))
    seconds = float(m.group(2)) * _UNITS_TIME[m.group(3)] / 1000.0
    bytes_read = float(m.group(4)) * _UNITS_SIZE[m.group(5)]
    lat = dict(re.findall(r"^\s+(50|99)%\s+(\S+)\s*$", out, re.M))
    if "50" not in lat or "99" not in lat:
        raise ValueError(f"no latency distribution in wrk output:\n{out}")
    errors = 0
    s = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    if s:
        errors += sum(int(x) for x in s.groups())
    n = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if n:
        errors += int(n.group(1))
    return WrkResult(requests, seconds, bytes_read, _ms(lat["50"]), _ms(lat["99"]), errors)


def run(
    url: str,
    *,
    duration: float,
    connections: int = 50,
    threads: int = 1,
    close: bool = False,
    wrk: str = "wrk",
) -> WrkResult:
    """One bounded wrk run; ``close`` sends ``Connection: close`` (a connection per request)."""
    argv = [
        wrk,
        f"-t{threads}",
        f"-c{connections}",
        f"-d{max(1, round(duration))}s",
        "--latency",
        "--timeout",
        "5s",
    ]
    if close:
        argv += ["-H", "Connection: close"]
    argv.append(url)
    done = subprocess.run(argv, capture_output=True, text=True, timeout=duration + 30, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"wrk failed ({done.returncode}): {done.stderr}{done.stdout}")
    return parse(done.stdout)
