"""CI smoke run of the benchmark: `make bench` in short mode must run end to end.

It checks the harness, not the figures: every row is present in the printed table and
in the JSON, for both proxies, with positive throughput, latency, CPU and memory. It
does not assert ratios (a shared 2-core CI machine makes them noise in a 2 s run).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.bench.run import ROWS, SIDES
from tests.conftest import REPO, lbcore_env, need_binary

pytestmark = [pytest.mark.bench, pytest.mark.timeout(180)]


def test_bench_short_mode_reports_every_row(tmp_path: Path) -> None:
    for tool in ("haproxy", "nginx", "wrk"):
        need_binary(tool)
    out_json = tmp_path / "bench.json"
    done = subprocess.run(
        [sys.executable, "-m", "tests.bench.run", "--short", "--json", str(out_json)],
        cwd=REPO,
        env=lbcore_env(),
        capture_output=True,
        text=True,
        timeout=170,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    table = done.stdout.split("\n\n", 1)[-1]
    report = json.loads(out_json.read_text())
    assert report["meta"]["short"] is True
    by_name = {r["name"]: r for r in report["rows"]}
    assert set(by_name) == {r.name for r in ROWS}
    for row in ROWS:
        lines = [ln for ln in table.splitlines() if ln.startswith(row.name)]
        assert len(lines) == 1, f"{row.name} missing from the table:\n{table}"
        r = by_name[row.name]
        for side in SIDES:
            med = r["sides"][side]["median"]
            assert len(r["sides"][side]["rounds"]) == report["meta"]["rounds"]
            for field in ("throughput", "rps", "mbps", "p50_ms", "p99_ms", "cpu_per_100k"):
                assert med[field] > 0, (row.name, side, field, med)
            assert med["rss_mb"] > 1, (row.name, side, med)
        for field in ("throughput", "cpu_per_100k", "p99_ms"):
            spread = r["ratio"][field]
            assert 0 < spread["min"] <= spread["median"] <= spread["max"], (row.name, field)
    assert table.count("ratio ") >= len(ROWS)
    idle = report["idle"]
    assert idle["connections"] == report["meta"]["idle_connections"] > 0
    for side in SIDES:
        rounds = idle["sides"][side]["rounds"]
        assert len(rounds) == report["meta"]["rounds"]
        assert all(r["rss_after_mb"] > 1 and r["kb_per_conn"] >= 0 for r in rounds)
    assert "KB/conn" in table
