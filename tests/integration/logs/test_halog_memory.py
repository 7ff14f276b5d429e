"""``lbcore halog`` streams: feeding it 64 MB of log does not grow its memory.

A 1 GB log is too slow for CI; what matters is that memory does not grow with the input
once the distinct keys (URLs, servers, timer values) have been seen. The log is fed through
a pipe from generated blocks, and the process's resident size is read from /proc after the
first 8 MB and at the end (its high-water mark).
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.conftest import lbcore_cmd, lbcore_env
from tests.unit.logs.loggen import generate

TOTAL = 64 * 1024 * 1024
WARM = 8 * 1024 * 1024


def _kib(pid: int, key: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    raise AssertionError(f"{key} not in /proc/{pid}/status")


@pytest.mark.slow
@pytest.mark.parametrize("analysis", ["-u", "-pct"])
def test_memory_stays_flat_on_a_big_log(analysis: str) -> None:
    blocks = [
        "".join(g.line + "\n" for g in generate(10_000, seed)).encode() for seed in (11, 12, 13)
    ]
    p = subprocess.Popen(
        lbcore_cmd("halog", "-q", analysis),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        env=lbcore_env(),
    )
    try:
        assert p.stdin is not None and p.stdout is not None
        sent, i, warm_rss = 0, 0, None
        while sent < TOTAL:
            block = blocks[i % len(blocks)]
            p.stdin.write(block)
            sent += len(block)
            i += 1
            if warm_rss is None and sent >= WARM:
                p.stdin.flush()
                warm_rss = _kib(p.pid, "VmRSS")
        peak = _kib(p.pid, "VmHWM")
        p.stdin.close()
        out = p.stdout.read()
        assert p.wait(timeout=60) == 0
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    assert out.count(b"\n") > 10
    assert warm_rss is not None
    growth = peak - warm_rss
    print(f"halog {analysis}: RSS {warm_rss} KiB after 8 MB, peak {peak} KiB after 64 MB")
    assert growth < 8 * 1024, f"grew by {growth} KiB over {TOTAL // 2**20} MB of log"
