"""The sender on real sockets, pipes and files: framing per target, batching, and drops that
are counted instead of blocking the caller."""

from __future__ import annotations

import asyncio
import os
import socket
import time
from pathlib import Path

import pytest

from lbcore.logs import sender as snd
from lbcore.logs.sender import LogSender, StreamTarget, TargetSpec
from tests.source_modules import from_source

NOW = 1_795_600_000.25


def _udp_listener() -> tuple[socket.socket, int]:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    s.settimeout(2)
    return s, s.getsockname()[1]


def test_udp_syslog_framing_per_target() -> None:
    a, pa = _udp_listener()
    b, pb = _udp_listener()
    s = LogSender.from_specs(
        [
            TargetSpec(f"127.0.0.1:{pa}", facility="local0"),
            TargetSpec(f"udp@127.0.0.1:{pb}", facility="local2", format="rfc5424", length=40),
        ],
        pid=77,
    )
    try:
        s.log("hello world", level="info", now=NOW)
        got_a = a.recv(2048)
        got_b = b.recv(2048)
    finally:
        s.close()
        a.close()
        b.close()
    assert got_a.startswith(b"<134>") and got_a.endswith(b" haproxy[77]: hello world\n")
    assert got_b.startswith(b"<150>1 ") and len(got_b) == 41 and got_b.endswith(b"\n")
    assert s.counters()[f"127.0.0.1:{pa}"].sent == 1


def test_names_are_resolved_once_and_ipv6_works() -> None:
    rx = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
    try:
        rx.bind(("::1", 0))
    except OSError:
        rx.close()
        pytest.skip("no IPv6 loopback on this machine")
    rx.settimeout(2)
    port = rx.getsockname()[1]
    s = LogSender.from_specs([TargetSpec(f"[::1]:{port}", format="raw")])
    named = LogSender.from_specs([TargetSpec(f"localhost:{port}", format="raw")])
    try:
        assert named.targets[0].dest[1] == port  # type: ignore[attr-defined]
        s.log("over v6", now=NOW)
        assert rx.recv(100) == b"over v6\n"
    finally:
        s.close()
        named.close()
        rx.close()


def test_level_filter_and_minlevel() -> None:
    a, pa = _udp_listener()
    s = LogSender.from_specs(
        [TargetSpec(f"127.0.0.1:{pa}", facility="local0", level="notice", minlevel="err")]
    )
    try:
        s.log("too verbose", level="info", now=NOW)  # info is above notice: not sent
        s.log("raised", level="notice", now=NOW)  # sent, raised to err (severity 3)
        got = a.recv(2048)
    finally:
        s.close()
        a.close()
    assert got.startswith(b"<131>") and b"raised" in got


def test_unix_datagram_full_queue_drops_and_counts(tmp_path: Path) -> None:
    path = str(tmp_path / "log.sock")
    rx = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    rx.bind(path)
    s = LogSender.from_specs([TargetSpec(path)])
    try:
        t0 = time.monotonic()
        for i in range(3000):  # nobody reads: the receiver's queue fills up
            s.log(f"line {i}", now=NOW)
        elapsed = time.monotonic() - t0
        c = s.counters()[path]
        assert c.sent + c.dropped == 3000
        assert c.dropped > 0 and c.sent > 0
        assert elapsed < 5  # never waited for the reader
        assert rx.recv(4096).endswith(b"line 0\n")
    finally:
        s.close()
        rx.close()


def test_missing_unix_socket_is_counted_not_raised(tmp_path: Path) -> None:
    s = LogSender.from_specs([TargetSpec(str(tmp_path / "nothing"))])
    s.log("x", now=NOW)
    s.close()
    assert s.counters()[str(tmp_path / "nothing")].dropped == 1


def test_stalled_pipe_never_blocks_the_caller(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(snd, "MAX_STREAM_QUEUE", 8)
    r, w = os.pipe()
    stream = os.fdopen(w, "wb", buffering=0)
    target = StreamTarget(TargetSpec("stdout", format="raw"), stream=stream)
    s = LogSender([target])
    t0 = time.monotonic()
    for i in range(20_000):  # 64 KiB of pipe, then the writer thread is stuck
        s.log("x" * 200 + str(i), now=NOW)
    assert time.monotonic() - t0 < 10
    assert target.counters.dropped > 0
    os.close(r)  # unblock the writer (EPIPE) so close() can join it
    s.close()
    assert target.counters.sent + target.counters.dropped == 20_000


def test_file_target_appends_and_follows_rotation(tmp_path: Path) -> None:
    path = tmp_path / "lbcore.log"
    s = LogSender.from_specs([TargetSpec(f"file@{path}", format="raw")])
    target = s.targets[0]
    s.log("first", now=NOW)
    _wait_sent(target, 1)
    path.rename(tmp_path / "lbcore.log.1")
    s.log("second", now=NOW)
    _wait_sent(target, 2)
    s.close()
    assert (tmp_path / "lbcore.log.1").read_bytes() == b"first\n"
    assert path.read_bytes() == b"second\n"


def _wait_sent(target: snd.Target, n: int) -> None:
    deadline = time.monotonic() + 5
    while target.counters.sent < n and time.monotonic() < deadline:
        time.sleep(0.01)
    assert target.counters.sent >= n


def test_stream_lines_batched_once_per_loop_iteration(tmp_path: Path) -> None:
    # the source version: a compiled LogSender's methods cannot be swapped for a spy
    src = from_source("lbcore.logs.sender")
    path = tmp_path / "batched.log"
    s = src.LogSender.from_specs([src.TargetSpec(f"file@{path}", format="raw")])
    flushes = 0
    real_flush = s.flush

    def counting_flush() -> None:
        nonlocal flushes
        flushes += 1
        real_flush()

    s.flush = counting_flush  # type: ignore[method-assign]

    async def burst() -> None:
        s.attach(asyncio.get_running_loop())
        for i in range(100):
            s.log(f"m{i}", now=NOW)
        await asyncio.sleep(0)
        await asyncio.sleep(0)

    try:
        asyncio.run(burst())
        in_loop = flushes
    finally:
        s.close()
    assert in_loop == 1
    assert path.read_bytes() == b"".join(b"m%d\n" % i for i in range(100))


def test_datagrams_sent_at_once_in_order_beside_a_batched_stream(tmp_path: Path) -> None:
    """A datagram costs one system call however it is batched: it is sent when logged, not
    at the end of the loop turn; a stream target beside it still gets one batch."""
    a, pa = _udp_listener()
    path = tmp_path / "beside.log"
    s = LogSender.from_specs(
        [TargetSpec(f"127.0.0.1:{pa}", format="raw"), TargetSpec(f"file@{path}", format="raw")]
    )
    a.setblocking(False)
    got: list[bytes] = []

    async def burst() -> None:
        s.attach(asyncio.get_running_loop())
        for i in range(50):
            s.log(f"m{i}", now=NOW)
        # no loop turn yet: every datagram is already in the listener's queue
        got.extend(a.recv(100) for _ in range(50))
        await asyncio.sleep(0)
        await asyncio.sleep(0)

    try:
        asyncio.run(burst())
    finally:
        s.close()
        a.close()
    assert got == [b"m%d\n" % i for i in range(50)]
    assert path.read_bytes() == b"".join(got)
    assert s.counters()[f"127.0.0.1:{pa}"].sent == 50


def test_log_at_reads_the_wall_clock_once_per_second() -> None:
    """``log_at`` takes the loop's monotonic time; the header's second is the wall clock's,
    read when a second starts (not per line), and per line for a sub-second header."""
    from lbcore.logs.syslog import frame

    a, pa = _udp_listener()
    b, pb = _udp_listener()
    walls = iter([NOW + 0.5, NOW + 1.01])  # 0.75 into a second, then just into the next
    reads = 0

    def clock() -> float:
        nonlocal reads
        reads += 1
        return next(walls)

    s = LogSender.from_specs([TargetSpec(f"127.0.0.1:{pa}")], pid=9, clock=clock)
    exact_walls = iter([NOW, NOW + 0.000_001])
    exact = LogSender.from_specs(
        [TargetSpec(f"127.0.0.1:{pb}", format="rfc5424")], pid=9, clock=lambda: next(exact_walls)
    )
    try:
        s.log_at("one", "info", 500.0)  # reads NOW + 0.5: this second ends at 500.25
        s.log_at("two", "info", 500.2)
        s.log_at("three", "info", 500.26)  # past it: reads NOW + 1.01
        got = [a.recv(200) for _ in range(3)]
        exact.log_at("x", "info", 500.0)
        exact.log_at("y", "info", 500.0)
        got_exact = [b.recv(200) for _ in range(2)]
    finally:
        s.close()
        exact.close()
        a.close()
        b.close()
    assert reads == 2
    assert got == [
        frame("one", now=NOW + 0.5, pid=9),
        frame("two", now=NOW + 0.5, pid=9),
        frame("three", now=NOW + 1.01, pid=9),
    ]
    assert got[0] != got[2].replace(b"three", b"one")  # the second did change
    assert got_exact == [
        frame("x", now=NOW, pid=9, fmt="rfc5424"),
        frame("y", now=NOW + 0.000_001, pid=9, fmt="rfc5424"),
    ]


def test_datagrams_to_a_dead_sink_are_counted_not_raised() -> None:
    """A UDP target whose listener went away: ECONNREFUSED on the connected socket is a
    counted drop, as a full queue is; the caller never sees it."""
    a, pa = _udp_listener()
    a.close()
    s = LogSender.from_specs([TargetSpec(f"127.0.0.1:{pa}", format="raw")])
    try:
        for i in range(20):
            s.log_at(f"m{i}", "info", 1.0 + i)
    finally:
        s.close()
    c = s.counters()[f"127.0.0.1:{pa}"]
    assert c.sent + c.dropped == 20 and c.dropped > 0


def test_parse_inet() -> None:
    assert snd.parse_inet("127.0.0.1:514") == ("127.0.0.1", 514)
    assert snd.parse_inet("udp@10.0.0.1:1514") == ("10.0.0.1", 1514)
    assert snd.parse_inet("[::1]:5140") == ("::1", 5140)
    assert snd.parse_inet("loghost") == ("loghost", 514)
    assert snd.parse_inet("::1:5140") == ("::1", 5140)


def test_spec_from_parsed_log_line() -> None:
    from lbcore.config.model import LogTarget

    spec = TargetSpec.from_model(LogTarget("/dev/log", "local3", "notice", None, 512, "rfc3164"))
    assert (spec.address, spec.facility, spec.level, spec.length) == (
        "/dev/log",
        "local3",
        "notice",
        512,
    )
    assert spec.format == "local"  # HAProxy's default framing: no host name
    assert TargetSpec.from_model(LogTarget("stdout", format="raw")).format == "raw"


def test_log_global_expands_to_the_global_targets() -> None:
    from lbcore.config.model import Config, Global, LogTarget, Proxy, ProxyKind

    g = Global(logs=(LogTarget("127.0.0.1:514", "local0"), LogTarget("stdout", format="raw")))
    fe = Proxy(
        "fe",
        ProxyKind.FRONTEND,
        logs=(LogTarget("global"), LogTarget("/dev/log", "local1", "err")),
    )
    cfg = Config(global_=g, proxies=(fe,))
    got = [(s.address, s.facility, s.level, s.format) for s in snd.specs_for(cfg, fe)]
    assert got == [
        ("127.0.0.1:514", "local0", None, "local"),
        ("stdout", "local0", None, "raw"),
        ("/dev/log", "local1", "err", "local"),
    ]
    assert [s.address for s in snd.specs_for(cfg)] == ["127.0.0.1:514", "stdout"]


def test_send_at_frames_encoded_lines_as_log_at_does(tmp_path: Path) -> None:
    """``send_at`` (the fast renderers' bytes) gives each target what ``log_at`` gives it
    for the same text: a UDP target written on its descriptor, a truncating one, a stream
    target, and an ``err`` line routed by level."""
    a, pa = _udp_listener()
    b, pb = _udp_listener()
    path = tmp_path / "log"
    specs = [
        TargetSpec(f"127.0.0.1:{pa}"),
        TargetSpec(f"127.0.0.1:{pb}", format="rfc5424", length=50, level="err"),
        TargetSpec(f"file@{path}", format="short"),
    ]
    walls = [NOW, NOW]
    one = LogSender.from_specs(specs, pid=5, clock=lambda: walls[0])
    two = LogSender.from_specs(specs, pid=5, clock=lambda: walls[1])
    line = "127.0.0.1:1 [x] caf\xe9 " + "a" * 60
    try:
        one.log_at(line, "info", 10.0)
        two.send_at(line.encode("utf-8", "surrogateescape"), "info", 10.0)
        one.log_at(line, "err", 10.0)
        two.send_at(line.encode("utf-8", "surrogateescape"), "err", 10.0)
        got_a = [a.recv(4096) for _ in range(4)]
        got_b = [b.recv(4096) for _ in range(2)]
    finally:
        one.close()
        two.close()
        a.close()
        b.close()
    assert got_a[0] == got_a[1] and got_a[2] == got_a[3] and got_a[0] != got_a[2]
    assert got_a[0].endswith(" caf\xe9 ".encode() + b"a" * 60 + b"\n")
    assert got_b[0] == got_b[1] and len(got_b[0]) == 51
    lines = sorted(path.read_bytes().splitlines())  # two senders: two writer threads
    assert len(lines) == 4 and lines[0] == lines[1] and lines[2] == lines[3]
    assert lines[0].startswith(b"<3>") and lines[2].startswith(b"<6>")


def test_a_closed_udp_target_counts_instead_of_writing() -> None:
    """After ``close`` a target never writes to its old descriptor number (which the
    process may have given to another file since): the line is a counted drop."""
    a, pa = _udp_listener()
    s = LogSender.from_specs([TargetSpec(f"127.0.0.1:{pa}", format="raw")])
    s.send_at(b"before", "info", 1.0)
    s.close()
    reused = os.open(os.devnull, os.O_WRONLY)  # likely the closed socket's number
    try:
        s.send_at(b"after", "info", 2.0)
    finally:
        os.close(reused)
    c = s.counters()[f"127.0.0.1:{pa}"]
    assert a.recv(100) == b"before\n"
    a.close()
    assert (c.sent, c.dropped) == (1, 1)
