"""The bench's arithmetic: per-round ratios, medians, and both renderings."""

from __future__ import annotations

import pytest

from lbcore.config import parse_text
from tests.bench import configs
from tests.bench.markdown import render, render_floor
from tests.bench.run import ROWS, Sample, summarise, table


def sample(rps: float, cpu: float) -> Sample:
    return Sample(
        throughput=rps,
        rps=rps,
        mbps=rps / 1000,
        p50_ms=1.0,
        p99_ms=2.0,
        cpu_per_100k=cpu,
        rss_mb=20.0,
        requests=int(rps * 10),
        errors=0,
    )


def test_ratios_are_per_round_then_summarised() -> None:
    row = ROWS[0]
    per_side = {
        "haproxy": [sample(100, 1.0), sample(200, 1.0), sample(100, 2.0)],
        "lbcore": [sample(90, 1.5), sample(100, 1.0), sample(120, 2.0)],
    }
    r = summarise(row, per_side)
    t = r["ratio"]["throughput"]  # type: ignore[index]
    assert t == {"min": 0.5, "median": 0.9, "max": 1.2}
    c = r["ratio"]["cpu_per_100k"]  # type: ignore[index]
    assert c == {"min": 1.0, "median": 1.0, "max": 1.5}
    assert r["sides"]["haproxy"]["median"]["rps"] == 100  # type: ignore[index]
    text = table([r], standin=False)
    assert text.splitlines()[2].startswith(row.name)
    assert "req/s 0.90 (min 0.50, max 1.20)" in text
    md = render(
        {
            "meta": {
                "date": "d",
                "cpus": 2,
                "rounds": 3,
                "duration_s": 10.0,
                "workers": 1,
                "log": True,
                "load": "wrk",
                "haproxy": "HAProxy version 2.6 - x",
                "lbcore_standin": False,
            },
            "rows": [r],
            "idle": None,
        }
    )
    assert f"| {row.name} | 100 req/s | 100 req/s | **0.90** (0.50 to 1.20)" in md


def test_a_zero_haproxy_figure_is_left_out_of_ratios() -> None:
    per_side = {"haproxy": [sample(0, 1.0), sample(100, 1.0)], "lbcore": [sample(5, 1.0)] * 2}
    r = summarise(ROWS[0], per_side)
    assert r["ratio"]["throughput"]["median"] == pytest.approx(0.05)  # type: ignore[index]


def test_floor_sides_get_their_own_ratios_against_haproxy() -> None:
    row = ROWS[0]
    per_side = {
        "haproxy": [sample(100, 2.0), sample(200, 2.0)],
        "lbcore": [sample(50, 5.0), sample(100, 5.0)],
        "floor": [sample(120, 1.0), sample(160, 1.0)],
        "floor-log": [sample(80, 3.0), sample(180, 2.0)],
    }
    r = summarise(row, per_side)
    assert r["ratio"]["throughput"]["median"] == 0.5  # type: ignore[index]
    floor = r["ratios"]["floor"]  # type: ignore[index]
    assert floor["throughput"] == {"min": 0.8, "median": 1.0, "max": 1.2}
    assert r["ratios"]["floor-log"]["cpu_per_100k"]["max"] == 1.5  # type: ignore[index]
    assert "lbcore" not in r["ratios"]  # type: ignore[operator]
    text = table([r], standin=False)
    assert "floor/H   req/s 1.00 (min 0.80, max 1.20)" in text
    assert "floor-log/H req/s 0.85 (min 0.80, max 0.90)" in text
    md = render_floor([r])
    assert md[2].startswith(f"| {row.name} | 150 req/s | 75 req/s | 140 req/s | 130 req/s |")
    assert "**0.50** (0.50-0.50) / **1.00** (0.80-1.20) / **0.85** (0.80-0.90)" in md[2]


def test_rows_without_a_floor_have_no_floor_ratios() -> None:
    r = summarise(ROWS[0], {"haproxy": [sample(1, 1.0)], "lbcore": [sample(1, 1.0)]})
    assert "ratios" not in r


def test_http_reuse_goes_to_the_http_backend_both_proxies_read() -> None:
    ports = configs.Ports((1, 2), 3, 4, 5)
    assert "http-reuse" not in configs.proxy_conf(ports, 1, log=True)
    text = configs.proxy_conf(ports, 1, log=True, http_reuse="always")
    backend = text.split("backend be_http\n", 1)[1].split("\n\n", 1)[0]
    assert "    http-reuse always\n" in backend + "\n"
    assert text.count("http-reuse") == 1
    # the same text is lbcore's config: it reads the keyword into the backend
    cfg = parse_text(text, "bench.cfg")
    assert {p.name: p.http_reuse for p in cfg.proxies if p.kind.value != "frontend"} == {
        "be_http": "always",
        "tcp_bulk": "safe",
    }
