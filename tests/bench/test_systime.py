"""tests/bench/systime.py: its parsers, and one short run beside the floor (perf, root)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest

from tests.bench import procs, systime
from tests.conftest import REPO, lbcore_env, need_binary

pytestmark = [pytest.mark.bench, pytest.mark.timeout(120)]


def test_perf_stat_csv_is_read_by_event_name() -> None:
    text = (
        "# started on Thu Nov 26 13:00:00 2026\n\n"
        "52000,,raw_syscalls:sys_enter,4000000000,100.00,,\n"
        "31,,syscalls:sys_enter_epoll_ctl,4000000000,100.00,,\n"
        "<not counted>,,cpu-migrations,0,100.00,,\n"
    )
    assert systime.parse_perf_csv(text) == {
        "raw_syscalls:sys_enter": 52000,
        "syscalls:sys_enter_epoll_ctl": 31,
    }


def test_proc_figures_of_a_process_grow_with_its_work() -> None:
    before = systime.ProcStat.read(os.getpid())
    sum(range(3_000_000))
    after = systime.ProcStat.read(os.getpid())
    d = after - before
    assert d.runtime > 0  # exact, unlike the 4 ms ticks of utime/stime
    assert d.utime >= 0 and d.stime >= 0 and d.vcsw >= 0 and d.ivcsw >= 0
    assert set(systime.machine()) == {"user", "system", "idle", "irq", "softirq", "steal"}


def test_report_gives_one_column_per_run() -> None:
    mach = dict.fromkeys(("user", "system", "idle", "irq", "softirq", "steal"), 1.0)
    runs = [
        systime.Result(
            side,
            1000,
            500.0,
            systime.ProcStat(0.01, 0.02, 0.03, 1, 2, 3),
            mach,
            0.001,
            0.002,
            {"net:net_dev_xmit": 3000},
        )
        for side in ("a", "b")
    ]
    text = systime.report(runs, ["net:net_dev_xmit"])
    lines = {ln.split("  ")[0]: ln.split()[-2:] for ln in text.splitlines()[1:]}
    assert text.splitlines()[0].split()[-2:] == ["a", "b"]
    assert lines["proc sys µs"] == ["20.00", "20.00"]  # 0.02 s over 1000 requests
    assert lines["net:net_dev_xmit"] == ["3.000", "3.000"]
    assert lines["invol. ctx switches"] == ["0.0030", "0.0030"]


@pytest.mark.root
def test_a_short_run_counts_kernel_events_per_request() -> None:
    for tool in ("haproxy", "nginx", "wrk"):
        need_binary(tool)
    if shutil.which("perf") is None and not os.path.exists(systime.PERF):
        pytest.skip("perf is not installed")
    argv = [sys.executable, "-m", "tests.bench.systime", "--rounds", "1", "--duration", "1"]
    argv += ["--warmup", "0"]
    argv += ["--sides", "floor-log", "--variant", "batch=--batch"]
    argv += ["--events", "net:net_dev_xmit,raw_syscalls:sys_enter"]
    done = subprocess.run(
        argv, cwd=REPO, env=lbcore_env(), capture_output=True, text=True, timeout=110, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr
    rows = {ln.split()[0]: ln.split()[1:] for ln in done.stdout.splitlines() if ln.strip()}
    # a small keep-alive request through the floor with its log line: two TCP segments
    # (to nginx, to wrk) and one UDP datagram, in either mode
    for v in rows["net:net_dev_xmit"]:
        assert 2.5 < float(v) < 3.5, done.stdout
    for v in rows["raw_syscalls:sys_enter"]:
        assert 4.5 < float(v) < 6.5, done.stdout


def test_services_start_in_their_working_directory(tmp_path: object) -> None:
    """``python -m`` imports from the working directory before PYTHONPATH: ab.py and
    systime.py start each lbcore tree there, or every side would run this checkout."""
    code = "import os; print(os.getcwd(), flush=True)"
    with procs.Processes("lbcore-test-cwd-") as group:
        svc = group.start(procs.Service("cwd", [sys.executable, "-c", code], [], cwd=group.tmp))
        assert svc.proc is not None
        svc.proc.wait(timeout=10)
        assert svc.log is not None
        assert svc.log.read_text().strip() == str(group.tmp)
