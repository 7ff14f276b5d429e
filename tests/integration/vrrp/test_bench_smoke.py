"""CI smoke run of tests/bench/vrrp_failover.py (short mode) and the sub-second failover claim."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.conftest import REPO, lbcore_env
from tests.integration.vrrp.conftest import need_lab


@pytest.mark.root
@pytest.mark.bench
@pytest.mark.flaky(reruns=2)  # wall-clock timing on a shared machine
def test_failover_bench_short_mode_subsecond_takeover(keepalived):
    need_lab()
    out = subprocess.run(
        [sys.executable, "-m", "tests.bench.vrrp_failover", "--short", "--json"],
        cwd=REPO,
        env=lbcore_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    assert (doc["version"], doc["advert_int"]) == (3, 0.1)
    lb, ka = doc["results"]["lbcore"], doc["results"]["keepalived"]
    assert lb["runs"] == ka["runs"] == 3
    for r in (lb, ka):
        assert 0 < r["min"] <= r["median"] <= r["max"]
    # Must show 5: VRRPv3 at advert_int 0.1 takes the VIP over within 0.5 s of a SIGKILL.
    assert lb["max"] < 0.5, lb
