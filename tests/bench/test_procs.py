"""procs.Processes: what the bench scripts start is stopped and cleaned up, even on errors."""

from __future__ import annotations

import sys

import pytest

from tests.bench.procs import Processes, Service
from tests.conftest import free_port

pytestmark = [pytest.mark.bench, pytest.mark.timeout(60)]

LISTEN = (
    "import socket, sys, time; s = socket.socket(); s.bind(('127.0.0.1', int(sys.argv[1]))); "
    "s.listen(); print('listening', flush=True); time.sleep(60)"
)


def test_services_are_stopped_and_the_directory_removed() -> None:
    port = free_port()
    with Processes("lbcore-test-procs-") as group:
        tmp = group.tmp
        assert tmp.is_dir() and tmp.stat().st_mode & 0o777 == 0o755
        closed: list[str] = []
        group.on_exit(lambda: closed.append("sink"))
        svc = group.start(Service("listener", [sys.executable, "-c", LISTEN, str(port)], [port]))
        assert svc.proc is not None and svc.proc.poll() is None
        assert svc.log == tmp / "listener.out"
    assert svc.proc.poll() is not None  # stopped on leaving, by its PID
    assert closed == ["sink"]
    assert not tmp.exists()


def test_an_error_dumps_every_output_then_cleans_up(capsys: pytest.CaptureFixture[str]) -> None:
    port = free_port()
    with pytest.raises(ZeroDivisionError), Processes("lbcore-test-procs-") as group:
        tmp = group.tmp
        svc = group.start(Service("listener", [sys.executable, "-c", LISTEN, str(port)], [port]))
        _ = 1 / 0
    assert "--- listener output ---\nlistening" in capsys.readouterr().err
    assert svc.proc is not None and svc.proc.poll() is not None
    assert not tmp.exists()


def test_keep_leaves_the_directory(capsys: pytest.CaptureFixture[str]) -> None:
    with Processes("lbcore-test-procs-", keep=True) as group:
        (group.tmp / "x.cfg").write_text("kept\n")
    try:
        assert (group.tmp / "x.cfg").read_text() == "kept\n"
        assert f"kept {group.tmp}" in capsys.readouterr().out
    finally:
        (group.tmp / "x.cfg").unlink()
        group.tmp.rmdir()


def test_a_service_that_dies_fails_start_with_its_output() -> None:
    port = free_port()
    argv = [sys.executable, "-c", "print('no such config'); raise SystemExit(3)"]
    with Processes("lbcore-test-procs-") as group, pytest.raises(RuntimeError) as e:
        group.start(Service("broken", argv, [port]))
    assert "exited with 3" in str(e.value)
    assert "no such config" in str(e.value)
