"""Render a bench JSON report as the Markdown table docs/performance.md carries.

python -m tests.bench.markdown artifacts/bench.json
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any


def render(report: dict[str, Any]) -> str:
    m = report["meta"]
    out = [
        f"{m['date']}, {m['cpus']} CPUs, {m['rounds']} rounds x {m['duration_s']:g} s, "
        f"workers/nbthread {m['workers']}, logging {'on' if m['log'] else 'off'}, "
        f"{m['load']}; {m['haproxy'].split(' - ')[0]}"
        + ("; lbcore side was a STAND-IN (HAProxy)" if m["lbcore_standin"] else ""),
        "",
        "| row | HAProxy | lbcore | ratio median (min to max) | p50 ms H / L | p99 ms H / L "
        "| CPU s/100k H / L (ratio) | peak RSS MB H / L |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in report["rows"]:
        h, lb = r["sides"]["haproxy"]["median"], r["sides"]["lbcore"]["median"]
        t, c = r["ratio"]["throughput"], r["ratio"]["cpu_per_100k"]
        fmt = "{:.0f} req/s" if r["unit"] == "req/s" else "{:.0f} MB/s"
        out.append(
            f"| {r['name']} | {fmt.format(h['throughput'])} | {fmt.format(lb['throughput'])} "
            f"| **{t['median']:.2f}** ({t['min']:.2f} to {t['max']:.2f}) "
            f"| {h['p50_ms']:.2f} / {lb['p50_ms']:.2f} | {h['p99_ms']:.1f} / {lb['p99_ms']:.1f} "
            f"| {h['cpu_per_100k']:.2f} / {lb['cpu_per_100k']:.2f} (**{c['median']:.2f}**) "
            f"| {h['rss_mb']:.0f} / {lb['rss_mb']:.0f} |"
        )
    idle = report.get("idle")
    if idle:
        h = idle["sides"]["haproxy"]["median"]["kb_per_conn"]
        lb = idle["sides"]["lbcore"]["median"]["kb_per_conn"]
        q = idle["ratio"]["kb_per_conn"]
        ratio = f"**{q['median']:.2f}** ({q['min']:.2f} to {q['max']:.2f})" if q else "n/a"
        out.append(
            f"| idle keep-alive ({idle['connections']} conns) | {h:.1f} KB/conn "
            f"| {lb:.1f} KB/conn | {ratio} | | | | |"
        )
    floor = [r for r in report["rows"] if r.get("ratios")]
    if floor:
        out += ["", *render_floor(floor)]
    return "\n".join(out)


def render_floor(rows: list[dict[str, Any]]) -> list[str]:
    """lbcore and the floor forwarder (without and with its log line) against HAProxy."""
    out = [
        "| row | HAProxy | lbcore | floor | floor-log | throughput vs HAProxy: lbcore / floor "
        "/ floor-log | CPU per request vs HAProxy: lbcore / floor / floor-log |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in rows:
        sides = ("haproxy", "lbcore", *r["ratios"])
        fmt = "{:.0f} req/s" if r["unit"] == "req/s" else "{:.0f} MB/s"
        qs = [r["ratio"], *r["ratios"].values()]

        def cell(field: str, qs: list[dict[str, Any]] = qs) -> str:
            return " / ".join(
                f"**{q[field]['median']:.2f}** ({q[field]['min']:.2f}-{q[field]['max']:.2f})"
                for q in qs
            )

        figures = " | ".join(fmt.format(r["sides"][s]["median"]["throughput"]) for s in sides)
        out.append(f"| {r['name']} | {figures} | {cell('throughput')} | {cell('cpu_per_100k')} |")
    return out


def main(argv: list[str]) -> int:
    path = Path(argv[0]) if argv else Path("artifacts/bench.json")
    print(render(json.loads(path.read_text())))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
