"""The formatter on byte vectors: the manual's examples, the log-format grammar, encoding,
and the sans-I/O rule. (Lines captured from HAProxy itself are in tests/integration/logs.)"""

from __future__ import annotations

import ast
import datetime as dt
from pathlib import Path

import pytest

from lbcore.logs import format as fmt_mod
from lbcore.logs.format import Context, LogFormat, LogFormatError
from lbcore.logs.record import RequestRecord
from lbcore.logs.syslog import frame, priority

UTC = Context(tz=dt.UTC, pid=14389)


def _ts(text: str) -> float:
    return dt.datetime.strptime(text, "%d/%b/%Y:%H:%M:%S.%f").replace(tzinfo=dt.UTC).timestamp()


def test_httplog_example_from_the_manual() -> None:
    r = RequestRecord(
        client_ip="10.0.1.2",
        client_port=33317,
        accept_ts=_ts("06/Feb/2009:12:14:14.655"),
        frontend="http-in",
        backend="static",
        server="srv1",
        t_request=10,
        t_queue=0,
        t_connect=30,
        t_response=69,
        t_active=109,
        status=200,
        bytes_read=2750,
        actconn=1,
        feconn=1,
        beconn=1,
        srv_conn=1,
        request_headers=("1wt.eu",),
        response_headers=("",),
        request_line="GET /index.html HTTP/1.1",
    )
    assert LogFormat.httplog(UTC).render(r) == (
        "10.0.1.2:33317 [06/Feb/2009:12:14:14.655] http-in static/srv1 10/0/30/69/109 "
        '200 2750 - - ---- 1/1/1/1/0 0/0 {1wt.eu} {} "GET /index.html HTTP/1.1"'
    )


def test_tcplog_example_from_the_manual() -> None:
    r = RequestRecord(
        client_ip="10.0.1.2",
        client_port=33313,
        accept_ts=_ts("06/Feb/2009:12:12:51.443"),
        frontend="fnt",
        backend="bck",
        server="srv1",
        t_queue=0,
        t_connect=0,
        t_total=5007,
        bytes_read=212,
        retries=3,
    )
    assert LogFormat.tcplog(UTC).render(r) == (
        "10.0.1.2:33313 [06/Feb/2009:12:12:51.443] fnt bck/srv1 0/0/5007 212 -- 0/0/0/0/3 0/0"
    )


def test_no_captures_leave_no_double_space_and_badreq() -> None:
    r = RequestRecord(client_ip="::1", client_port=1, frontend="fe", backend="fe", status=400)
    r.termination = "CR"
    line = LogFormat.httplog(UTC).render(r)
    assert line.endswith(' 400 0 - - CR-- 0/0/0/0/0 0/0 "<BADREQ>"')
    assert "  " not in line


def test_ssl_frontend_redispatch_logasap_and_encoding() -> None:
    r = RequestRecord(
        frontend="https",
        ssl=True,
        retries=1,
        redispatched=True,
        logasap=True,
        t_active=7,
        bytes_read=99,
        request_headers=('a"b|c{d}#', "é", "\u20ac"),
        request_line='GET /a"b#c\x01 HTTP/1.1',
    )
    line = LogFormat("%ft %rc %Ta %B %hr %{+Q}r", UTC).render(r)
    # "é" came off the wire as the byte E9 (latin-1); "\u20ac" never was a byte: UTF-8
    assert line == (
        'https~ +1 +7 +99 {a#22b#7Cc#7Bd#7D#23|#E9|#E2#82#AC} "GET /a#22b#23c#01 HTTP/1.1"'
    )


@pytest.mark.parametrize(
    ("fmt", "expected"),
    [
        ("%%  %%", "% %"),  # literal percent, spaces merged
        ("  %ci  ", "1.2.3.4 "),  # leading separators vanish, a trailing one stays (CLF)
        ("%{+X}ci:%{+X}cp", "01020304:0050"),
        ("%{+Q}o %b %{-Q}s", '"be" srv'),
        ("%HM|%HU|%HP|%HQ|%HV", "GET|/p?q=1|/p|?q=1|HTTP/1.0"),
        ("%Ts_x", "1000000000_x"),  # a name is letters and digits only (HAProxy 2.6)
        ("%ST%B.%ci", "-10.1.2.3.4"),
        ("%T", "09/Sep/2001:01:46:40 +0000"),
    ],
)
def test_log_format_grammar(fmt: str, expected: str) -> None:
    r = RequestRecord(
        client_ip="1.2.3.4",
        client_port=80,
        accept_ts=1_000_000_000.0,
        backend="be",
        server="srv",
        request_line="GET /p?q=1 HTTP/1.0",
    )
    assert LogFormat(fmt, UTC).render(r) == expected


# "%Tsx": HAProxy 2.6 says "no such format variable 'Tsx'", not %Ts then "x"
@pytest.mark.parametrize("bad", ["%[src]", "%{+Z}ci", "%zz", "%{+Q", "%Tsx", "%", "a %-b", "%{+Q}"])
def test_bad_log_format_is_refused(bad: str) -> None:
    with pytest.raises(LogFormatError):
        LogFormat(bad)


def test_syslog_frames() -> None:
    now = _ts("26/Nov/2026:03:04:05.250")
    utc = dt.UTC
    assert frame("m", now=now, pid=7, tz=utc) == b"<134>Nov 26 03:04:05 haproxy[7]: m\n"
    assert frame("m", now=now - 20 * 86400, pid=7, tz=utc).startswith(b"<134>Nov  6 ")
    assert frame("m", now=now, pid=7, hostname="lb1", tz=utc).startswith(
        b"<134>Nov 26 03:04:05 lb1 haproxy[7]: "
    )
    assert frame("m", now=now, pid=7, fmt="rfc3164", tz=utc).startswith(
        b"<134>Nov 26 03:04:05 localhost haproxy[7]: "
    )
    assert frame("m", now=now, pid=7, fmt="rfc5424", facility="local1", tz=utc) == (
        b"<142>1 2026-11-26T03:04:05.250000+00:00 - haproxy 7 - - m\n"
    )
    assert frame("m", now=now, fmt="short", level="err") == b"<3>m\n"
    assert frame("m" * 100, now=now, fmt="raw", maxlen=10) == b"m" * 10 + b"\n"
    assert priority("local7", "debug") == 23 * 8 + 7
    with pytest.raises(LogFormatError):
        frame("m", now=now, fmt="json")
    with pytest.raises(LogFormatError):
        priority("local9", "info")


def test_record_derived_timers_and_error() -> None:
    r = RequestRecord(t_handshake=2, t_idle=3, t_request=5, t_queue=1, t_connect=2)
    r.t_response, r.t_total = 10, 40
    assert r.t_q == 10 and r.t_data == 40 - (10 + 1 + 2 + 10)
    assert not r.is_error
    r.status = 503
    assert r.is_error
    assert RequestRecord(t_request=-1).t_q == -1


@pytest.mark.parametrize("module", ["format.py", "record.py", "syslog.py", "policy.py"])
def test_formatter_is_sans_io(module: str) -> None:
    tree = ast.parse((Path(fmt_mod.__file__).parent / module).read_text())
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            imported.add(node.module.split(".")[0])
    assert not imported & {"asyncio", "socket", "ssl", "time", "subprocess", "os"}


def test_timeline_fills_haproxy_timers() -> None:
    from lbcore.logs.record import Timeline

    ok = Timeline(
        accept=100.0,
        request_start=100.010,
        request_headers=100.012,
        queue_start=100.012,
        queue_end=100.012,
        connected=100.015,
        response_headers=100.084,
        end=100.121,
    )
    r = RequestRecord()
    ok.fill(r)
    assert (r.t_request, r.t_queue, r.t_connect, r.t_response, r.t_active) == (2, 0, 3, 69, 111)
    assert (r.t_idle, r.t_total) == (10, 121)
    # backend down: connection never established (golden: 0/0/-1/-1/3005)
    down = Timeline(
        accept=5.0,
        request_start=5.0,
        request_headers=5.0,
        queue_start=5.0,
        queue_end=5.0,
        end=8.005,
    )
    down.fill(r)
    assert (r.t_request, r.t_queue, r.t_connect, r.t_response, r.t_active) == (0, 0, -1, -1, 3005)
    # nothing received at all (golden null connection: -1/-1/-1/-1/0)
    silent = Timeline(accept=1.0, end=1.0)
    silent.fill(r)
    assert (r.t_request, r.t_queue, r.t_connect, r.t_response, r.t_active) == (-1, -1, -1, -1, 0)


@pytest.mark.parametrize(
    "fmt",
    [
        fmt_mod.HTTPLOG,
        fmt_mod.HTTPLOG_CLF,
        fmt_mod.TCPLOG,
        "%hr %b %hs",  # maybe-empty first: generic renderer
        "%b %hr%s",  # glued to text: generic renderer
        "%b %hr %hs %s %hrl %hsl",
        "  %{+Q}o %ci %HM %{-Q}ST [%T] x%%y %Ts.%ms %{+X}cp %{+E}r ",
    ],
)
def test_generated_renderer_equals_haproxy_separator_rule(fmt: str) -> None:
    """The compiled fast path writes exactly what the node-by-node rule writes."""
    import random

    from tests.unit.logs.loggen import generate

    lf = LogFormat(fmt, UTC)
    rnd = random.Random(4)
    for g in generate(400, seed=4):
        r = g.record
        if rnd.random() < 0.5:
            r.request_headers, r.response_headers = (), ()
        assert lf.render(r) == lf.render_generic(r)
