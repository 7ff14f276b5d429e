"""``lbcore halog`` on damaged logs reads lines exactly as halog does.

Real log files contain cut lines, runs of spaces, garbage and odd fields. halog's way of
reading them (32-bit numbers, ``+`` accepted in timers but not in statuses, a server listed
as soon as its name is read, the request found as the first field starting with a quote,
a short termination code completed with the bytes that follow it...) was learnt by running
it; this test holds every analysis to halog's stdout, byte for byte, on such a log.
"""

from __future__ import annotations

import io
import shutil
import subprocess

import pytest

from lbcore.logs import halog
from tests.unit.logs.loggen import damaged

FLAGS = [
    ["-c"],
    ["-st"],
    ["-tc"],
    ["-cc"],
    ["-srv"],
    ["-ic"],
    ["-u"],
    ["-ua"],
    ["-uto"],
    ["-ubt"],
    ["-u", "-query"],
    ["-pct"],
    ["-ad", "200"],
    ["-ac", "2"],
    ["-ad", "10", "-ac", "1"],
    ["-e", "-c"],
    ["-H", "-c"],
    ["-rt", "10", "-c"],
    ["-RT", "10", "-c"],
    ["-hs", "200:299", "-c"],
    ["-tcn", "--", "-c"],
    ["-Q", "-c"],
    ["-QS", "-c"],
    ["-time", "1795600100:1795600300", "-c"],
    ["-rt", "20", "-RT", "50", "-c"],  # one setting per kind: the last value, inverted
    ["-HS", ":299", "-hs", "300:499", "-ue"],
    ["-TCN", "--", "-tcn", "sH", "-c"],
    ["-e", "-E", "-srv"],  # -E wins
    ["-QS", "-Q", "-c"],  # -QS wins
    ["-q"],
    ["-hdr", "1:2"],
    ["-hdr", "2:1"],
    ["-hdr", "3:1"],
    ["-H"],
    ["-m", "5", "-srv"],
    ["-m", "5", "-pct"],
    ["-v", "-H", "-st"],
    ["-m", "100", "-c"],
]


@pytest.fixture(scope="module", params=[1, 2])
def log(request: pytest.FixtureRequest) -> bytes:
    return "".join(line + "\n" for line in damaged(3000, request.param)).encode()


@pytest.mark.parametrize("flags", FLAGS, ids=" ".join)
def test_damaged_log_read_as_halog_reads_it(log: bytes, flags: list[str]) -> None:
    """stdout byte for byte; stderr too (its "Truncated line" and "ERR:" reports and the
    closing summary) when -q does not silence it."""
    exe = shutil.which("halog")
    if exe is None:
        pytest.skip("HAProxy's halog is not installed (Debian: haproxy package)")
    want = subprocess.run([exe, *flags], input=log, capture_output=True, check=True)
    out, err = io.BytesIO(), io.StringIO()
    o = halog.parse_args(flags)
    sm = halog.run(o, io.BytesIO(log), out, err)
    assert out.getvalue() == want.stdout
    assert (err.getvalue() + halog.summary(o, sm)).encode("latin-1") == want.stderr
