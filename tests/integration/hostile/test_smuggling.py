"""Request smuggling and framing: every hostile request gets its status, the connection
is closed where the framing is in doubt, and the recording backend sees nothing of it.

The same table is replayed against HAProxy 2.6 (a child process of this test, stopped by
PID): where it differs from lbcore, ``cases.py`` says what HAProxy does and why.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import need_binary
from tests.integration.hostile.cases import CASES, CONTROL, Case
from tests.integration.hostile.harness import Proc, RecordingBackend, exchange

CONFIG = """\
global
    tune.bufsize 16384
    tune.http.maxhdr 101

defaults
    mode http
    timeout connect 1s
    timeout client 5s
    timeout server 5s
    timeout http-request 2s
    timeout http-keep-alive 5s

frontend fe
    bind 127.0.0.1:{port}
    default_backend rec

backend rec
    server r %s
"""


@pytest.fixture(scope="module", params=["lbcore", "haproxy"])
def target(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[str, Proc, RecordingBackend]]:
    kind = request.param
    if kind == "haproxy":
        need_binary("haproxy")
    rec = RecordingBackend()
    tmp: Path = tmp_path_factory.mktemp(kind)
    proc = Proc(kind, CONFIG % rec.addr, tmp)
    try:
        yield kind, proc, rec
    finally:
        proc.stop()
        rec.close()


def _settle(rec: RecordingBackend) -> bytes:
    time.sleep(0.1)  # anything forwarded after the answer would show up by now
    return rec.total()


@pytest.mark.timeout(60)
@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_hostile_request(case: Case, target: tuple[str, Proc, RecordingBackend]) -> None:
    kind, proc, rec = target
    time.sleep(0.05)
    rec.clear()
    expected = case.lbcore if kind == "lbcore" else case.expected_haproxy
    got = exchange(proc.port, case.raw, wait=1.0)
    seen = _settle(rec)
    rec.clear()
    assert (got.status, got.closed) == expected, (kind, case.why, got.raw[:200])
    if expected[0] == 200:
        assert seen.count(b"\r\n\r\n") >= 1, f"{kind} answered 200 but forwarded nothing"
        assert b"x-rec: 1" in got.raw.lower()  # the answer came from the backend
    else:
        assert seen == b"", f"{kind} forwarded a refused request: {seen[:200]!r}"
        assert b"x-rec" not in got.raw.lower()


def test_control_request_is_forwarded(target: tuple[str, Proc, RecordingBackend]) -> None:
    """The recorder does see what a proxy forwards (so 'saw nothing' above means it)."""
    _kind, proc, rec = target
    rec.clear()
    got = exchange(proc.port, CONTROL, wait=2.0)
    assert got.status == 200 and got.closed
    assert b"GET /ok HTTP/1.1" in _settle(rec)


def test_every_difference_is_justified() -> None:
    for case in CASES:
        if case.haproxy is not None and case.haproxy != case.lbcore:
            assert len(case.why) > 40, f"{case.id}: say why lbcore and HAProxy differ"
