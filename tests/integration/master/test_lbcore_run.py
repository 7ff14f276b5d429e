"""The real ``lbcore run``: a real HAProxy-dialect config file, the real worker, real
backends, reloads with signals under load."""

from __future__ import annotations

import importlib.util
import itertools
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.conftest import REPO, free_port, lbcore_cmd, lbcore_env
from tests.integration.master.conftest import (
    MasterProc,
    alive,
    children,
    listen_inodes,
    wait_for,
)
from tests.integration.master.load import Load, Prober, get_headers

if importlib.util.find_spec("lbcore.worker") is None:
    pytest.skip("lbcore.worker (the proxy) is not in this checkout yet", allow_module_level=True)

CONFIG = """\
global
    maxconn 2000
    hard-stop-after 10s

defaults
    mode http
    timeout connect 2s
    timeout client 10s
    timeout server 10s

frontend web
    bind 127.0.0.1:{port}
    http-response set-header X-Gen {gen}
    default_backend app

backend app
    balance roundrobin
    server s1 127.0.0.1:{b1}
    server s2 127.0.0.1:{b2}
"""


class Lab:
    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.port = free_port()
        self.b1, self.b2 = free_port(), free_port()
        self.cfg = tmp / "lbcore.cfg"
        self.backends = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tests.integration.master.backends",
                f"s1:{self.b1}",
                f"s2:{self.b2}",
            ],
            stdout=subprocess.PIPE,
            env=lbcore_env(),
            text=True,
        )
        assert self.backends.stdout is not None
        assert self.backends.stdout.readline().strip() == "ready"

    def write(self, gen: int, text: str | None = None) -> None:
        tmp = self.cfg.with_suffix(".tmp")
        tmp.write_text(text or CONFIG.format(port=self.port, gen=gen, b1=self.b1, b2=self.b2))
        tmp.replace(self.cfg)

    def ask(self) -> tuple[str, str]:
        """(backend name, X-Gen) of one request on a new connection."""
        status, body, headers = get_headers("127.0.0.1", self.port)
        assert status == 200, (status, body)
        return body.strip(), headers.get("x-gen", "")

    def serving(self) -> bool:
        try:
            self.ask()
            return True
        except (OSError, AssertionError):
            return False

    def close(self) -> None:
        self.backends.terminate()
        self.backends.wait(timeout=10)


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[Lab]:
    lab = Lab(tmp_path)
    lab.write(gen=1)
    try:
        yield lab
    finally:
        lab.close()


def test_requests_alternate_between_the_two_backends(
    lab: Lab, lbcore_master: Callable[..., MasterProc]
) -> None:
    m = lbcore_master("-f", str(lab.cfg), "--workers", "1")
    wait_for(lab.serving, what="lbcore serving")
    names = [lab.ask()[0] for _ in range(8)]
    # One worker, roundrobin over equal weights: strictly alternating.
    assert all(a != b for a, b in itertools.pairwise(names)), names
    assert set(names) == {"s1", "s2"}
    assert "Loading success" in m.log()


def test_ten_reloads_under_20_busy_connections_fail_nothing(
    lab: Lab, lbcore_master: Callable[..., MasterProc]
) -> None:
    """Must show 6: 10 reloads (SIGUSR2) while a bounded client keeps 20 connections busy
    (half keep-alive, half a new connection per request): 0 failed requests, no refused
    connection, the same listening socket throughout. Each reload is waited for until
    its switch ("Reload done": every new worker said ready, the old ones were told to
    stop), so the ten really overlap the load one after the other."""
    m = lbcore_master("-f", str(lab.cfg), "--workers", "2")
    wait_for(lab.serving, timeout=20, what="lbcore serving")
    [inode] = listen_inodes(lab.port)
    started = time.monotonic()
    with Prober("127.0.0.1", lab.port) as probe, Load("127.0.0.1", lab.port, duration=90) as load:
        time.sleep(0.5)
        reload_times = []
        for gen in range(2, 12):
            lab.write(gen)
            t0 = time.monotonic()
            m.signal(signal.SIGUSR2)
            # Generous: the machine is shared; the master's own bound is --ready-timeout.
            wait_for(
                lambda gen=gen: f"generation {gen} with" in m.log(),
                timeout=30,
                what=f"reload {gen}",
            )
            reload_times.append(time.monotonic() - t0)
            time.sleep(0.4)
        time.sleep(0.5)
        result = load.stop()
    took = time.monotonic() - started
    print(
        f"\nlbcore run, 10 reloads under 20 connections in {took:.1f}s: {result.ok} ok, "
        f"{result.failed} failed, {result.retried} retried on a reused idle keep-alive "
        f"connection, {probe.attempts} connect probes, {probe.refused} refused; "
        f"served by generation: {dict(sorted(result.bodies.items()))}; signal to switch "
        f"(every new worker ready): max {max(reload_times) * 1000:.0f} ms (20 ms polling); "
        f"slowest request {result.max_latency * 1000:.0f} ms"
    )
    assert result.failed == 0, result.errors
    assert probe.refused == 0 and not probe.other, probe.other[:3]
    assert result.ok > 200
    assert listen_inodes(lab.port) == [inode]
    assert len(result.bodies) >= 5  # many generations served along the way
    assert "Reload failed" not in m.log()
    assert m.log().count("Reload done: generation") == 10
    wait_for(lambda: len(m.workers()) == 2, timeout=20, what="old workers gone")
    assert {lab.ask()[1] for _ in range(6)} == {"11"}


def test_workers_that_cannot_start_fail_the_reload_and_the_old_ones_serve_on(
    lab: Lab, tmp_path: Path
) -> None:
    """A reload whose new workers die at start (tests.integration.master.faulty makes
    the real worker fail as a missing or unreadable resource would): the reload fails
    with the reason in the log, the old workers keep serving — 0 failed requests under
    load — and the next good reload goes through."""
    flag = tmp_path / "fail-start"
    env = {**lbcore_env(), "LBCORE_TEST_FAIL_START": str(flag)}
    argv = [sys.executable, "-m", "tests.integration.master.faulty", "run"]
    m = MasterProc([*argv, "-f", str(lab.cfg), "--workers", "2"], tmp_path, env)
    try:
        wait_for(lab.serving, timeout=20, what="lbcore serving")
        wait_for(lambda: len(m.workers()) == 2, what="2 workers")
        before = m.workers()
        with Load("127.0.0.1", lab.port) as load:
            time.sleep(0.3)
            flag.touch()
            lab.write(2)
            m.signal(signal.SIGUSR2)
            wait_for(lambda: "Reload failed" in m.log(), timeout=20, what="the reload failure")
            time.sleep(0.5)
            result = load.stop()
        log = m.log()
        assert "exited before it was ready (exit code 1); keeping generation 1 running" in log
        assert "Permission denied (test fault)" in log  # the worker's own words
        assert result.failed == 0, result.errors
        assert set(result.bodies) == {"gen=1"}
        assert result.ok > 50
        time.sleep(0.3)
        assert m.workers() == before
        assert {lab.ask()[1] for _ in range(6)} == {"1"}
        flag.unlink()
        lab.write(3)
        m.signal(signal.SIGHUP)
        wait_for(lambda: "generation 3 with" in m.log(), timeout=20, what="the next reload")
        assert {lab.ask()[1] for _ in range(6)} == {"3"}
        print(f"\nfailed reload under load: {result.ok} ok, {result.failed} failed")
    finally:
        m.stop()


def test_broken_config_on_reload_keeps_the_old_one_serving(
    lab: Lab, lbcore_master: Callable[..., MasterProc]
) -> None:
    m = lbcore_master("-f", str(lab.cfg), "--workers", "2")
    wait_for(lab.serving, what="lbcore serving")
    wait_for(lambda: len(m.workers()) == 2, what="2 workers")
    workers = m.workers()
    broken = CONFIG.format(port=lab.port, gen=2, b1=lab.b1, b2=lab.b2).replace(
        "    balance roundrobin", "    balance roundrobin\n    frobnicate yes"
    )
    lab.write(2, broken)
    line = broken.splitlines().index("    frobnicate yes") + 1
    m.signal(signal.SIGUSR2)
    wait_for(lambda: "Reload failed" in m.log(), what="the reload error")
    log = m.log()
    assert f"{lab.cfg}:{line}" in log and "frobnicate" in log, log
    time.sleep(0.3)
    assert m.workers() == workers
    assert {lab.ask()[1] for _ in range(6)} == {"1"}
    # Fixed, the next reload goes through.
    lab.write(3)
    m.signal(signal.SIGHUP)
    wait_for(lambda: lab.ask()[1] == "3", what="the fixed config serving")


def test_daemon_with_pidfile_then_graceful_stop(lab: Lab, tmp_path: Path) -> None:
    pidfile = tmp_path / "lbcore.pid"
    done = subprocess.run(
        lbcore_cmd("run", "-D", "-p", str(pidfile), "-f", str(lab.cfg), "--workers", "1"),
        env=lbcore_env(),
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 0, done.stderr
    pid = int(pidfile.read_text())
    try:
        assert lab.serving()  # serving as soon as the command returned
        os.kill(pid, signal.SIGUSR1)
        wait_for(lambda: not alive(pid), timeout=15, what="the daemon to exit")
        assert not pidfile.exists()
    finally:
        if alive(pid):
            for w in children(pid):
                os.kill(w, signal.SIGKILL)
            os.kill(pid, signal.SIGKILL)


def test_check_only_flag(lab: Lab) -> None:
    ok = subprocess.run(
        lbcore_cmd("run", "-c", "-f", str(lab.cfg)), env=lbcore_env(), capture_output=True
    )
    assert ok.returncode == 0
    lab.write(1, "frontend x\n    bind 127.0.0.1:notaport\n")
    bad = subprocess.run(
        lbcore_cmd("run", "-c", "-f", str(lab.cfg)),
        env=lbcore_env(),
        capture_output=True,
        text=True,
    )
    assert bad.returncode == 1
    assert f"{lab.cfg}:2" in bad.stderr


def test_local_deploy_demo_shows_requests_alternating() -> None:
    """scripts/deploy.py --local: the demo with no lab (``make deploy`` runs the lab site)."""
    done = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "deploy.py"), "--local"],
        env=lbcore_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    answers = [line.split(": ", 1)[1] for line in done.stdout.splitlines() if "request " in line]
    assert len(answers) == 10
    assert all(a != b for a, b in itertools.pairwise(answers[:6])), answers
    assert {"Hello from web1", "Hello from web2"} == set(answers)
    assert "they alternate between web1 and web2" in done.stdout
    assert "deploy demo OK" in done.stdout
