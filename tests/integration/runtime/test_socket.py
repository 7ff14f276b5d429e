"""The runtime API over real sockets: the golden transcripts through the unix-socket
adapter (and a TCP stats socket), ``lbcore ctl`` as a subprocess, and HAProxy itself
re-recorded to show the golden answers are still what it says."""

from __future__ import annotations

import os
import stat
import subprocess
from pathlib import Path

from lbcore import __version__
from tests.conftest import lbcore_cmd, lbcore_env, need_binary
from tests.integration.runtime import golden
from tests.integration.runtime.compare import compare
from tests.integration.runtime.conftest import Served

STEPS = golden.load()
ALL_USAGE = set(STEPS[0]["answer"].split("\n"))


def ctl(*args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        lbcore_cmd("ctl", *args), input=stdin, capture_output=True, env=lbcore_env(), timeout=30
    )


def test_golden_transcript_over_the_unix_sockets(served: tuple[Served, Path, int]) -> None:
    _, directory, _ = served
    assert stat.S_IMODE(os.stat(directory / "admin.sock").st_mode) == 0o600
    problems = []
    for i, step in enumerate(STEPS):
        answer = golden.ask(str(directory / f"{step['level']}.sock"), step["input"].encode())
        for p in compare(step["input"], step["answer"], answer.decode(), ALL_USAGE):
            problems.append(f"step {i} {step['input']!r}: {p}")
    assert not problems, "\n".join(problems[:30])


def test_tcp_stats_socket_and_lbcore_ctl(served: tuple[Served, Path, int]) -> None:
    s, directory, port = served
    admin = str(directory / "admin.sock")

    info = ctl("-S", admin, "show", "info")
    assert info.returncode == 0, info.stderr
    lines = info.stdout.decode().split("\n")
    assert lines[0] == "Name: lbcore"
    assert f"Pid: {os.getpid()}" in lines  # the serving process (here: this test's)
    assert lines[1] == f"Version: 2.6.0-lbcore-{__version__}"

    # golden steps through ctl: each answer as HAProxy gave it
    for step in STEPS[:25]:
        if "\n" in step["input"][:-1] or not step["input"].endswith("\n"):
            continue
        sock = str(directory / f"{step['level']}.sock")
        out = ctl("-S", sock, step["input"].rstrip("\n"))
        assert out.returncode == 0, out.stderr
        assert not compare(step["input"], step["answer"], out.stdout.decode(), ALL_USAGE)

    # the same command over TCP on loopback, and several per line with ';'
    both = ctl("-S", f"127.0.0.1:{port}", "set weight app/web2 50%; get weight app/web2")
    assert both.stdout == b"\n10 (initial 20)\n\n"
    assert s.state.backends["app"].servers[1].runtime.weight == 10

    # standard input, interactive mode
    piped = ctl("-S", admin, stdin=b"prompt\nshow backend\nquit\n")
    assert piped.stdout == b"\n> # name\napp\nstatic\ndb\n\n> "

    missing = ctl("-S", str(directory / "nope.sock"), "show", "info")
    assert missing.returncode == 1 and b"nope.sock" in missing.stderr


def test_golden_answers_are_still_haproxys() -> None:
    """Re-record on the installed HAProxy and compare with the stored answers."""
    haproxy = need_binary("haproxy")
    fresh = golden.record(haproxy)
    problems = []
    for i, (old, new) in enumerate(zip(STEPS, fresh, strict=True)):
        for p in compare(old["input"], old["answer"], new["answer"], ALL_USAGE):
            if "first line is" in p:  # HAProxy names itself, of course
                continue
            problems.append(f"step {i} {old['input']!r}: {p}")
    assert not problems, "\n".join(problems[:30])


def test_idle_interactive_session_is_closed_after_the_stats_timeout(tmp_path: Path) -> None:
    import socket
    import time

    from tests.conftest import free_port

    s = Served(tmp_path, free_port(), timeout=0.3)
    try:
        with socket.socket(socket.AF_UNIX) as c:
            c.settimeout(5)
            c.connect(str(tmp_path / "admin.sock"))
            c.sendall(b"prompt\n")
            assert c.recv(100) == b"\n> "
            started = time.monotonic()
            assert c.recv(100) == b""  # closed by the server, not by us
            assert 0.2 <= time.monotonic() - started < 4
        assert s.state.sessions == []
    finally:
        s.stop()


def test_lbcore_ctl_at_a_terminal_is_interactive(served: tuple[Served, Path, int]) -> None:
    """Under a pseudo-terminal, ctl opens HAProxy's prompt mode: several commands typed
    one after the other are answered on one session, until quit."""
    import pty
    import select
    import time

    _, directory, _ = served
    primary, secondary = pty.openpty()
    proc = subprocess.Popen(
        lbcore_cmd("ctl", "-S", str(directory / "admin.sock")),
        stdin=secondary,
        stdout=secondary,
        stderr=subprocess.PIPE,
        env=lbcore_env(),
    )
    os.close(secondary)
    seen = b""

    def read_until(marker: bytes) -> None:
        nonlocal seen
        deadline = time.monotonic() + 15
        while marker not in seen and time.monotonic() < deadline:
            ready, _, _ = select.select([primary], [], [], 0.5)
            if ready:
                seen += os.read(primary, 4096)
        assert marker in seen, seen

    try:
        read_until(b"> ")
        os.write(primary, b"get weight app/web1\n")
        read_until(b"10 (initial 10)")
        os.write(primary, b"show backend\n")
        read_until(b"static")
        os.write(primary, b"quit\n")
        assert proc.wait(timeout=15) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(primary)
