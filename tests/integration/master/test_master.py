"""The master process with the test worker (tests/integration/master/fakes.py): real
processes, real signals, real sockets on 127.0.0.1."""

from __future__ import annotations

import grp
import os
import pwd
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from tests.conftest import free_port, lbcore_env
from tests.integration.master.conftest import (
    FakeCluster,
    alive,
    children,
    fd_inodes,
    listen_inodes,
    wait_for,
)
from tests.integration.master.fakes import SLOW_START
from tests.integration.master.load import Load, Prober, get


def served_by(port: int, n: int = 40) -> dict[str, set[str]]:
    """pid/gen/tag values seen over ``n`` new connections."""
    seen: dict[str, set[str]] = {"pid": set(), "gen": set(), "tag": set()}
    for _ in range(n):
        status, body = get("127.0.0.1", port)
        assert status == 200
        for field in body.split():
            k, _, v = field.partition("=")
            seen[k].add(v)
    return seen


def test_forks_n_workers_sharing_one_listener(cluster: FakeCluster) -> None:
    m = cluster.start("--workers", "3")
    wait_for(lambda: len(m.workers()) == 3, what="3 workers")
    workers = m.workers()
    [inode] = listen_inodes(cluster.port)
    # One kernel socket: the master holds it and every worker inherited it.
    assert inode in fd_inodes(m.pid)
    for pid in workers:
        assert inode in fd_inodes(pid)
    seen = served_by(cluster.port)
    assert seen["gen"] == {"1"}
    assert seen["pid"] <= {str(p) for p in workers}
    assert "New worker" in m.log()


def test_worker_count_from_config_when_no_flag(cluster: FakeCluster) -> None:
    cluster.write(workers=1)
    m = cluster.start()
    wait_for(lambda: len(m.workers()) == 1, what="1 worker")
    time.sleep(0.3)
    assert len(m.workers()) == 1


def test_reloads_under_load_keep_the_listener_and_fail_nothing(cluster: FakeCluster) -> None:
    """10 reloads (SIGUSR2 and SIGHUP) while 20 connections are busy and a prober
    connects continuously: no request fails, no connection is refused, and the listening
    socket is the very same kernel socket before and after."""
    m = cluster.start()
    [inode] = listen_inodes(cluster.port)
    with Prober("127.0.0.1", cluster.port) as probe, Load("127.0.0.1", cluster.port) as load:
        time.sleep(0.3)
        for i in range(10):
            cluster.write(tag=f"v{i + 2}")
            m.signal(signal.SIGUSR2 if i % 2 == 0 else signal.SIGHUP)
            wait_for(lambda i=i: f"generation {i + 2} with" in m.log(), what=f"reload {i + 1}")
            time.sleep(0.25)
        time.sleep(0.3)
        result = load.stop()
    assert result.failed == 0, result.errors
    assert result.ok > 200
    assert probe.refused == 0 and not probe.other, (probe.refused, probe.other[:3])
    assert probe.attempts > 50
    assert listen_inodes(cluster.port) == [inode]
    # Requests were served by several generations, and in the end only by the last one.
    assert len(result.bodies) > 3
    wait_for(lambda: len(m.workers()) == 2, what="old workers gone")
    assert served_by(cluster.port, 10)["gen"] == {"11"}
    print(
        f"\n10 reloads under 20 connections: {result.ok} ok, {result.failed} failed, "
        f"{result.retried} retried on a reused idle connection, "
        f"{probe.attempts} probes, {probe.refused} refused"
    )


@pytest.mark.flaky(reruns=2)  # a wall-clock bound on a shared machine
def test_old_workers_serve_until_the_new_ones_are_ready(cluster: FakeCluster) -> None:
    """The new generation takes SLOW_START (1.5 s) to serve: the old one keeps serving
    all that time (it is stopped only after every new worker said ready), so no request
    waits for the new workers in the listen backlog."""
    m = cluster.start()
    wait_for(lambda: len(m.workers()) == 2, what="2 workers")
    before = m.workers()
    with Load("127.0.0.1", cluster.port) as load:
        time.sleep(0.3)
        cluster.write(tag="slow")
        t0 = time.monotonic()
        m.signal(signal.SIGUSR2)
        wait_for(lambda: len(m.workers() - before) == 2, what="the new workers forked")
        # Well inside the new workers' start: answered at once, by the old ones.
        while time.monotonic() - t0 < SLOW_START - 0.5:
            started = time.monotonic()
            seen = served_by(cluster.port, 1)
            assert seen["tag"] == {"v1"} and seen["pid"] <= {str(p) for p in before}
            assert time.monotonic() - started < 0.5
        assert before <= m.workers()
        wait_for(lambda: "generation 2 with" in m.log(), what="the switch")
        switched = time.monotonic() - t0
        time.sleep(0.3)
        result = load.stop()
    assert switched >= SLOW_START
    assert result.failed == 0, result.errors
    # No request waited for the slow workers (it would have taken >= 1.5 s).
    assert result.max_latency < 1.0, result.max_latency
    assert served_by(cluster.port, 4)["tag"] == {"slow"}
    wait_for(lambda: not (before & m.workers()), what="old workers gone")
    print(
        f"\nslow new workers: switch after {switched * 1000:.0f} ms, {result.ok} ok, "
        f"{result.failed} failed, slowest request {result.max_latency * 1000:.0f} ms"
    )


def test_new_workers_that_die_at_start_fail_the_reload(cluster: FakeCluster) -> None:
    """A configuration that loads but whose workers exit at start: the reload fails,
    the old workers keep serving (not one request fails), and the dead new workers
    are not restarted in a loop."""
    m = cluster.start()
    wait_for(lambda: len(m.workers()) == 2, what="2 workers")
    before = m.workers()
    with Load("127.0.0.1", cluster.port) as load:
        time.sleep(0.3)
        cluster.write(tag="crash")
        m.signal(signal.SIGUSR2)
        wait_for(lambda: "Reload failed" in m.log(), what="the reload failure")
        time.sleep(0.5)
        result = load.stop()
    log = m.log()
    assert "exited before it was ready (exit code 3); keeping generation 1 running" in log
    assert result.failed == 0, result.errors
    assert result.bodies.keys() == {"gen=1"}
    time.sleep(0.5)
    assert m.workers() == before
    assert log.count("generation 2\n") == 2  # its two workers, forked once each
    assert served_by(cluster.port, 6)["tag"] == {"v1"}
    # The next good reload goes through (generation 2 is spent).
    cluster.write(tag="v3")
    m.signal(signal.SIGHUP)
    wait_for(lambda: "generation 3 with" in m.log(), what="the next reload")
    assert served_by(cluster.port, 4)["gen"] == {"3"}


@pytest.mark.flaky(reruns=2)  # a wall-clock bound on a shared machine
def test_new_workers_not_ready_in_time_fail_the_reload(cluster: FakeCluster) -> None:
    m = cluster.start("--ready-timeout", "1")
    wait_for(lambda: len(m.workers()) == 2, what="2 workers")
    before = m.workers()
    cluster.write(tag="hang")
    t0 = time.monotonic()
    m.signal(signal.SIGUSR2)
    wait_for(lambda: "Reload failed" in m.log(), what="the reload failure")
    took = time.monotonic() - t0
    assert "not ready after 1s; keeping generation 1 running" in m.log()
    assert 0.9 <= took < 5.0
    # The stuck workers are stopped; the old ones never were.
    wait_for(lambda: m.workers() == before, what="the stuck workers gone")
    assert served_by(cluster.port, 6)["tag"] == {"v1"}


def test_a_reload_replaces_a_pending_one(cluster: FakeCluster) -> None:
    """A second reload while the first one's workers are not ready yet: the first
    one's workers are stopped, the second one's take over."""
    m = cluster.start()
    wait_for(lambda: len(m.workers()) == 2, what="2 workers")
    before = m.workers()
    cluster.write(tag="hang")
    m.signal(signal.SIGUSR2)
    wait_for(lambda: len(m.workers()) == 4, what="the hanging generation forked")
    stuck = m.workers() - before
    cluster.write(tag="v3")
    m.signal(signal.SIGUSR2)
    wait_for(lambda: "generation 3 with" in m.log(), what="the second reload")
    assert "generation 2: replaced by a newer reload" in m.log()
    assert "Reload failed" not in m.log()
    wait_for(lambda: not ((before | stuck) & m.workers()), what="generations 1 and 2 gone")
    assert served_by(cluster.port, 4)["gen"] == {"3"}


def test_sf_tells_the_old_instance_only_once_the_new_one_is_ready(cluster: FakeCluster) -> None:
    """``-sf OLDPID`` (a new lbcore beside the old one, on SO_REUSEPORT listeners): the
    old instance is told to finish only when every new worker is ready."""
    a = cluster.start()
    wait_for(lambda: len(a.workers()) == 2, what="2 workers")
    cluster.write(tag="slow")
    t0 = time.monotonic()
    b = cluster.start("-sf", str(a.pid), wait=False)
    time.sleep(SLOW_START - 0.5)
    assert a.proc.poll() is None and "Sent SIGUSR1" not in b.log()
    wait_for(lambda: a.proc.poll() is not None, timeout=20, what="the old instance gone")
    assert time.monotonic() - t0 >= SLOW_START
    assert f"Sent SIGUSR1 to old process {a.pid}" in b.log()
    assert served_by(cluster.port, 4)["tag"] == {"slow"}


def test_sf_with_workers_that_cannot_start_leaves_the_old_instance_serving(
    cluster: FakeCluster,
) -> None:
    a = cluster.start()
    before = a.workers()
    cluster.write(tag="crash")
    b = cluster.start("-sf", str(a.pid), "--ready-timeout", "1", wait=False)
    assert b.wait(timeout=20) == 1
    assert "workers not ready after 1s; old process(es) not signalled" in b.log()
    assert a.proc.poll() is None and a.workers() == before
    assert served_by(cluster.port, 6)["tag"] == {"v1"}


def test_broken_config_on_reload_keeps_the_old_one_serving(cluster: FakeCluster) -> None:
    m = cluster.start()
    wait_for(lambda: len(m.workers()) == 2, what="2 workers")
    before = m.workers()
    cluster.cfg.write_text('{\n "tag": "v2",\n "binds": [[\n')  # cut off on line 3
    m.signal(signal.SIGUSR2)
    wait_for(lambda: "Reload failed" in m.log(), what="the reload error")
    log = m.log()
    assert f"{cluster.cfg}:4:" in log or f"{cluster.cfg}:3:" in log, log
    assert "keeping generation 1 running" in log
    time.sleep(0.3)
    assert m.workers() == before
    seen = served_by(cluster.port, 10)
    assert seen["tag"] == {"v1"} and seen["gen"] == {"1"}
    assert seen["pid"] <= {str(p) for p in before}
    # Fixed: the next reload takes it.
    cluster.write(tag="v2")
    m.signal(signal.SIGHUP)
    wait_for(lambda: "generation 2 with" in m.log(), what="reload")
    wait_for(lambda: served_by(cluster.port, 4)["tag"] == {"v2"}, what="v2 serving")


def test_reload_with_a_bind_in_use_keeps_the_old_one(cluster: FakeCluster) -> None:
    m = cluster.start()
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        busy = taken.getsockname()[1]
        cluster.write(tag="v2", binds=[["127.0.0.1", cluster.port], ["127.0.0.1", busy]])
        m.signal(signal.SIGUSR2)
        wait_for(lambda: "Reload failed" in m.log(), what="the reload error")
        assert "cannot bind socket (Address already in use)" in m.log()
        assert f"[127.0.0.1:{busy}]" in m.log()
        assert served_by(cluster.port, 4)["tag"] == {"v1"}


def test_reload_opens_new_binds_and_closes_removed_ones(cluster: FakeCluster) -> None:
    m = cluster.start()
    new_port = free_port()
    cluster.write(tag="v2", binds=[["127.0.0.1", new_port]])
    m.signal(signal.SIGUSR2)
    wait_for(lambda: cluster.serving(new_port), what="the new bind serving")
    assert served_by(new_port, 4)["tag"] == {"v2"}
    # The old port is released once the old workers are gone.
    wait_for(lambda: listen_inodes(cluster.port) == [], what="the old bind closed")
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", cluster.port), timeout=2)
    assert "no longer in the configuration" in m.log()


def test_ipv6_bind(cluster: FakeCluster) -> None:
    if not socket.has_ipv6:
        pytest.skip("no IPv6 on this host")
    try:
        with socket.socket(socket.AF_INET6) as s:
            s.bind(("::1", 0))
            port6 = s.getsockname()[1]
    except OSError:
        pytest.skip("::1 is not configured on this host")
    cluster.write(binds=[["127.0.0.1", cluster.port], ["::1", port6]])
    cluster.start()
    with socket.create_connection(("::1", port6), timeout=5) as s:
        s.sendall(b"GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        assert s.recv(100).startswith(b"HTTP/1.1 200")


def test_a_reload_signal_during_startup_is_not_fatal(cluster: FakeCluster) -> None:
    """SIGHUP/SIGUSR2 kill a process by default: one that arrives while the configuration
    is still loading must wait for the master's handlers, then act."""
    cluster.write(load_delay=1.0)
    m = cluster.start(wait=False)
    loading = cluster.cfg.with_name(cluster.cfg.name + ".loading")
    wait_for(loading.exists, what="the configuration loading")
    m.signal(signal.SIGHUP)
    wait_for(lambda: "generation 2 with" in m.log(), timeout=15, what="the reload")
    assert m.proc.poll() is None
    wait_for(cluster.serving, what="serving")


@pytest.mark.root
def test_workers_drop_to_user_and_group_the_master_keeps_root(cluster: FakeCluster) -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root to change user")
    cluster.write(user="nobody", group="nogroup")
    m = cluster.start()
    wait_for(lambda: len(m.workers()) == 2, what="2 workers")

    def ids(pid: int, key: str) -> list[int]:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return [int(x) for x in line.split()[1:]]
        raise AssertionError(key)

    nobody = pwd.getpwnam("nobody").pw_uid
    nogroup = grp.getgrnam("nogroup").gr_gid
    # A worker just forked may not have reached its setuid yet.
    wait_for(
        lambda: all(set(ids(pid, "Uid")) == {nobody} for pid in m.workers()),
        what="workers running as nobody",
    )
    for pid in m.workers():
        assert set(ids(pid, "Uid")) == {nobody}
        assert set(ids(pid, "Gid")) == {nogroup}
        assert ids(pid, "Groups") == []
    assert ids(m.pid, "Uid")[0] == 0  # the master can still bind on reload
    cluster.write(user="no-such-user-lbcore")
    m.signal(signal.SIGHUP)
    wait_for(lambda: "Reload failed" in m.log(), what="the reload error")
    assert "unknown user or group" in m.log()
    assert cluster.serving()


def test_killed_worker_is_replaced(cluster: FakeCluster) -> None:
    m = cluster.start()
    wait_for(lambda: len(m.workers()) == 2, what="2 workers")
    before = m.workers()
    victim = min(before)
    os.kill(victim, signal.SIGKILL)
    # One look per try: two reads could see the victim alive, then gone before its
    # replacement exists, and pass with a single worker.
    wait_for(
        lambda: (ws := m.workers()) and len(ws) == 2 and victim not in ws,
        what="a replacement worker",
    )
    assert len(m.workers() - before) == 1
    assert f"Current worker ({victim}) exited unexpectedly (killed by SIGKILL)" in m.log()
    seen = served_by(cluster.port, 20)
    assert seen["gen"] == {"1"}
    assert str(victim) not in seen["pid"]


def test_a_crashing_worker_is_restarted_with_back_off(cluster: FakeCluster) -> None:
    """A worker that dies at start must not turn the master into a fork loop."""
    cluster.write(tag="crash", workers=1)
    m = cluster.start(wait=False)
    time.sleep(3.0)
    restarts = m.log().count("exited unexpectedly (exit code 3)")
    # Back-off 0.1, 0.2, 0.4, 0.8, 1.6 s...: about 5 in 3 s, never hundreds.
    assert 2 <= restarts <= 8, m.log()
    assert m.proc.poll() is None  # the master itself keeps going
    # A reload with a working configuration recovers at once.
    cluster.write(tag="v2", workers=1)
    m.signal(signal.SIGUSR2)
    wait_for(lambda: cluster.serving(), what="the fixed worker serving")
    assert served_by(cluster.port, 4)["tag"] == {"v2"}


def _slow_request(port: int, ms: int, out: dict[str, object]) -> None:
    try:
        out["answer"] = get("127.0.0.1", port, f"/slow?ms={ms}", timeout=20)
    except OSError as e:
        out["error"] = e


def test_sigusr1_lets_an_in_flight_request_finish(cluster: FakeCluster) -> None:
    m = cluster.start()
    out: dict[str, object] = {}
    t = threading.Thread(target=_slow_request, args=(cluster.port, 1500, out))
    t.start()
    time.sleep(0.4)  # the request is in a worker now
    m.signal(signal.SIGUSR1)
    # New connections are no longer accepted once the stop went through...
    wait_for(lambda: listen_inodes(cluster.port) == [], what="listener released", timeout=5)
    t.join(timeout=10)
    # ...but the in-flight request got its answer.
    assert "error" not in out, out
    status, body = out["answer"]  # type: ignore[misc]
    assert status == 200 and "gen=1" in body
    assert m.wait(timeout=10) == 0
    assert "All workers exited" in m.log()


@pytest.mark.flaky(reruns=2)  # a wall-clock bound on a shared machine
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_sigterm_and_sigint_stop_now(cluster: FakeCluster, signum: int) -> None:
    m = cluster.start()
    workers = m.workers()
    out: dict[str, object] = {}
    t = threading.Thread(target=_slow_request, args=(cluster.port, 10_000, out))
    t.start()
    time.sleep(0.4)
    start = time.monotonic()
    m.signal(signum)
    assert m.wait(timeout=5) == 0
    took = time.monotonic() - start
    t.join(timeout=10)
    assert took < 3.0
    assert "error" in out, out  # the slow request was cut, not finished
    assert not any(alive(p) for p in workers)
    assert listen_inodes(cluster.port) == []


def test_hard_stop_after_kills_old_workers(cluster: FakeCluster) -> None:
    cluster.write(hard_stop_after=0.5)
    m = cluster.start()
    out: dict[str, object] = {}
    t = threading.Thread(target=_slow_request, args=(cluster.port, 10_000, out))
    t.start()
    time.sleep(0.4)
    old = m.workers()
    cluster.write(tag="v2", hard_stop_after=0.5)
    m.signal(signal.SIGUSR2)
    wait_for(lambda: not (old & m.workers()), timeout=5, what="old workers killed")
    t.join(timeout=10)
    assert "error" in out
    assert "after hard-stop-after: killing it" in m.log()
    assert served_by(cluster.port, 4)["tag"] == {"v2"}


def test_pidfile_and_daemon_mode(cluster: FakeCluster) -> None:
    pidfile = cluster.tmp / "lb.pid"
    logfile = cluster.tmp / "lb.log"
    argv = [sys.executable, "-m", "tests.integration.master.fakes", "run", "-f", str(cluster.cfg)]
    start = time.monotonic()
    done = subprocess.run(
        [*argv, "-D", "-p", str(pidfile), "--log-file", str(logfile)],
        env=lbcore_env(),
        capture_output=True,
        timeout=20,
    )
    assert done.returncode == 0, done.stderr
    assert time.monotonic() - start < 10
    # The command returned only once serving: pidfile written, port answering.
    pid = int(pidfile.read_text())
    try:
        assert alive(pid)
        assert cluster.serving()
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        # Double fork: a session of its own, not its leader, no controlling terminal.
        assert int(fields[3]) != pid and int(fields[3]) != os.getsid(0)
        assert int(fields[4]) == 0
        workers = children(pid)
        assert len(workers) == 2
        os.kill(pid, signal.SIGUSR1)
        wait_for(lambda: not alive(pid), what="daemon exit")
        assert not pidfile.exists()
        log = logfile.read_text()
        assert "Loading success" in log and "All workers exited" in log
    finally:
        if alive(pid):
            for w in children(pid):
                os.kill(w, signal.SIGKILL)
            os.kill(pid, signal.SIGKILL)


def test_daemon_reports_a_bind_error_on_the_terminal(cluster: FakeCluster) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        cluster.write(binds=[["127.0.0.1", taken.getsockname()[1]]])
        argv = [sys.executable, "-m", "tests.integration.master.fakes", "run"]
        done = subprocess.run(
            [*argv, "-f", str(cluster.cfg), "-D", "-p", str(cluster.tmp / "x.pid")],
            env=lbcore_env(),
            capture_output=True,
            text=True,
            timeout=20,
        )
    assert done.returncode == 1
    assert f"{cluster.cfg}:1: frontend 'v1': cannot bind socket" in done.stderr
    assert not (cluster.tmp / "x.pid").exists()


def test_check_only(cluster: FakeCluster) -> None:
    argv = [sys.executable, "-m", "tests.integration.master.fakes", "run", "-c", "-f"]
    ok = subprocess.run(
        [*argv, str(cluster.cfg)], env=lbcore_env(), capture_output=True, text=True, timeout=20
    )
    assert ok.returncode == 0 and "valid" in ok.stdout
    cluster.cfg.write_text("{")
    bad = subprocess.run(
        [*argv, str(cluster.cfg)], env=lbcore_env(), capture_output=True, text=True, timeout=20
    )
    assert bad.returncode == 1
    assert f"{cluster.cfg}:1:" in bad.stderr
    # -c binds nothing.
    assert listen_inodes(cluster.port) == []
