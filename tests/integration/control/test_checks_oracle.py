"""Checked servers in ``show stat`` and ``show servers state``: lbcore run and HAProxy 2.6
side by side on the same configuration and the same backends, compared field by field.

Three moments, each once both have settled: after the first checks (a server UP by an
HTTP check, one refused, one answering 500, one disabled in the configuration, TCP
checks up and refused, an unchecked server); after ``set server ... state maint``,
``disable health`` and ``state drain``; after ``state ready`` and ``enable health``.
Masked: times (lastchg, downtime, check_duration, seconds since a change), and the
counters in which HAProxy counts its own check connections.
"""

from __future__ import annotations

import csv
import io
import subprocess
import time
from pathlib import Path

import pytest

from lbcore.runtime.ctl import ask
from tests.conftest import free_port, need_binary
from tests.integration.control.harness import Backend, Lb, eventually

CONFIG = """\
global
    maxconn 4096
    stats socket {sock} mode 600 level admin
defaults
    mode http
    timeout connect 1s
    timeout client 5s
    timeout server 5s
    # without it a check times out after inter (500 ms): a loaded machine would fail
    # checks of lbcore (Python) where HAProxy's (C) pass, and the counts would differ
    timeout check 3s
frontend f
    bind 127.0.0.1:{port}
    default_backend app
backend app
    option httpchk GET /health
    http-check expect status 200
    server up1 127.0.0.1:{ok} check inter 500 rise 2 fall 2
    server down1 127.0.0.1:{closed} check inter 500 rise 2 fall 2
    server bad1 127.0.0.1:{bad} check inter 500 rise 2 fall 2
    server off1 127.0.0.1:{ok} check disabled
backend tcp
    server t1 127.0.0.1:{ok} check inter 500
    server t2 127.0.0.1:{closed} check inter 500 weight 3
    server t3 127.0.0.1:{ok}
"""
MASKED = {"lastchg", "downtime", "check_duration"}
# HAProxy's own health-check connections show in these (its checks run in its proxy
# code: a backend's h1 counters, need_conn_est); lbcore's checks are not traffic.
MASKED |= {"need_conn_est", "h1_total_connections", "h1_total_streams"}
MASKED |= {"h1_bytes_in", "h1_bytes_out"}


def stat(sock: str) -> dict[str, dict[str, str]]:
    lines = [ln for ln in ask(sock, b"show stat\n").decode().split("\n") if ln]
    header = lines[0][2:].split(",")
    rows = {}
    for row in csv.reader(io.StringIO("\n".join(lines[1:]))):
        rows[f"{row[0]}/{row[1]}"] = dict(zip(header, row, strict=False))
    return rows


def servers_state(sock: str) -> dict[str, list[str]]:
    out = {}
    for line in ask(sock, b"show servers state\n").decode().split("\n")[2:]:
        if line:
            f = line.split(" ")
            f[9] = "T"  # seconds since the last change
            out[f"{f[1]}/{f[3]}"] = f
    return out


def differences(h: str, lb: str) -> list[str]:
    problems = []
    hs, ls = stat(h), stat(lb)
    assert list(hs) == list(ls)
    for key, hrow in hs.items():
        for col, value in hrow.items():
            if col not in MASKED and ls[key].get(col) != value and col not in ("pid",):
                problems.append(f"show stat {key} {col}: haproxy {value!r} lbcore {ls[key][col]!r}")
    hst, lst = servers_state(h), servers_state(lb)
    for key, fields in hst.items():
        if lst.get(key) != fields:
            problems.append(
                f"show servers state {key}:\n  haproxy {fields}\n  lbcore  {lst.get(key)}"
            )
    return problems


def agree(h: str, lb: str, tries: int = 30) -> None:
    """Equal at some moment within a few seconds: a snapshot can catch a check in
    progress on one side (HAProxy shows it as ``* L4OK``, check_state 7), more often
    on a loaded machine, where checks take longer."""
    problems: list[str] = []
    for _ in range(tries):
        problems = differences(h, lb)
        if not problems:
            return
        time.sleep(0.1)
    raise AssertionError("\n".join(problems))


def settled(sock: str, want: dict[str, str]) -> bool:
    rows = stat(sock)
    return all(rows[k]["status"] == v for k, v in want.items())


@pytest.mark.flaky(reruns=2)  # two processes' checks compared at one moment
@pytest.mark.timeout(90)
def test_checked_servers_show_as_in_haproxy(tmp_path: Path, lb: Lb) -> None:
    haproxy = need_binary("haproxy")
    ok, bad = Backend("ok").open(), Backend("bad", status=500).open()
    closed = free_port()
    hsock, lsock = str(tmp_path / "h.sock"), lb.sock
    common = {"ok": ok.port, "bad": bad.port, "closed": closed}
    (tmp_path / "h.cfg").write_text(CONFIG.format(sock=hsock, port=free_port(), **common))
    lb.write(CONFIG.format(sock=lsock, port=free_port(), **common))
    hlog = open(tmp_path / "h.log", "w")  # noqa: SIM115 (closed in finally)
    proc = subprocess.Popen(
        [haproxy, "-db", "-f", str(tmp_path / "h.cfg")], stdout=hlog, stderr=hlog
    )
    try:
        lb.start("--workers", "1")
        eventually(lambda: Path(hsock).exists(), 10, "haproxy's socket")
        first = {
            "app/up1": "UP",
            "app/down1": "DOWN",
            "app/bad1": "DOWN",
            "tcp/t1": "UP",
            "tcp/t2": "DOWN",
        }
        for sock in (hsock, lsock):
            eventually(lambda s=sock: settled(s, first), 10, f"first checks on {sock}")
        time.sleep(0.5)
        agree(hsock, lsock)

        cmd = b"set server app/up1 state maint; disable health tcp/t1; "
        cmd += b"set server tcp/t2 state drain\n"
        for sock in (hsock, lsock):
            ask(sock, cmd)
        time.sleep(1.0)
        agree(hsock, lsock)

        for sock in (hsock, lsock):
            ask(sock, b"set server app/up1 state ready; enable health tcp/t1\n")
        for sock in (hsock, lsock):
            eventually(lambda s=sock: settled(s, {"app/up1": "UP"}), 10, f"up1 back on {sock}")
        time.sleep(0.5)
        agree(hsock, lsock)
    finally:
        proc.terminate()
        proc.wait(10)
        hlog.close()
        ok.close()
        bad.close()
