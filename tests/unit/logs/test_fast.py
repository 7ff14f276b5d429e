"""The hand-written default-format renderers and the sender's framer write exactly the bytes
of the general path (the compiled ``LogFormat`` and ``syslog.frame``), over randomized and
edge-case states: no server, -1 timers, captures, cookies, TLS, large values, logasap,
redispatch, request lines with non-ASCII and escaped bytes, dates on second boundaries."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lbcore.logs import fast
from lbcore.logs.format import HTTPLOG, TCPLOG, Context, LogFormat
from lbcore.logs.record import BADREQ, NOSRV, RequestRecord
from lbcore.logs.syslog import SYSLOG_FORMATS, Framer, frame

ZONES: list[dt.tzinfo | None] = [
    dt.UTC,
    dt.timezone(dt.timedelta(hours=-3, minutes=-30)),
    dt.timezone(dt.timedelta(hours=5, minutes=45)),
    None,  # the host's local time
]

# around the renderers' table of small numbers (-1..1022) too
_edges = st.sampled_from([-2, -1, 0, 1, 1022, 1023, 1024])
_timer = st.one_of(_edges, st.integers(0, 10**7), st.integers(10**9, 10**12))
_count = st.one_of(_edges, st.integers(0, 100), st.integers(0, 2**63))
# text as the proxy holds it: request lines are latin-1 decoded bytes; captured values
# are whatever the header had, including "#{|}" and control characters
_latin1 = st.text(st.characters(min_codepoint=0, max_codepoint=255), max_size=40)
_any_text = st.text(max_size=30)
_words = st.sampled_from(["GET", "POST", "M-SEARCH", "", "get"])
_targets = st.one_of(
    st.sampled_from(["/", "/small", "/a?b=c&d", "http://h:80/x?y", '/q"uote#frag', "*"]),
    _latin1,
)
_versions = st.sampled_from(["1.1", "1.0", "2.0"])
_request_line = st.one_of(
    st.none(),
    st.just(""),
    st.builds(
        lambda m, t, v: f"{m} {t} HTTP/{v}",
        _words,
        _targets,
        st.sampled_from(["1.1", "1.0", "2.0"]),
    ),
    _latin1,
)
_names = st.sampled_from(["fe", "http-in", "fe_https", "a.b-c_d", "x" * 64])
_headers = st.one_of(st.just(()), st.lists(_any_text, min_size=1, max_size=4).map(tuple))
_cookie = st.one_of(st.none(), st.just(""), st.just("SRV=s1"), _any_text)
_flag = st.sampled_from(["-", "N", "I", "D", "V", "E", "O", "U"])
_term = st.sampled_from(["--", "CD", "cR", "CR", "PR", "SH", "sH", "SC", "LR", "sQ", "cD"])
# second boundaries, where rounding to the millisecond carries into the next second
_ts = st.one_of(
    st.floats(0, 4_000_000_000, allow_nan=False, allow_infinity=False),
    st.integers(1_700_000_000, 1_800_000_000).map(lambda s: s + 0.9995),
    st.integers(1_700_000_000, 1_800_000_000).map(lambda s: s + 0.9994999),
    st.integers(1_700_000_000, 1_800_000_000).map(float),
)

records = st.builds(
    RequestRecord,
    client_ip=st.sampled_from(["127.0.0.1", "::1", "2001:db8::5", "", "-", "10.0.0.255"]),
    client_port=st.integers(0, 65535),
    accept_ts=_ts,
    request_ts=st.one_of(st.none(), _ts),
    frontend=_names,
    ssl=st.booleans(),
    backend=st.one_of(_names, st.just("")),
    server=st.one_of(st.sampled_from([NOSRV, "<STATS>", "s1", "web-backup", ""])),
    t_handshake=_timer.filter(lambda t: t >= 0),
    t_idle=_timer.filter(lambda t: t >= 0),
    t_request=_timer,
    t_queue=_timer,
    t_connect=_timer,
    t_response=_timer,
    t_active=_timer,
    t_total=_timer,
    status=st.one_of(st.just(-1), st.integers(100, 599)),
    bytes_read=_count,
    termination=_term,
    cookie_client=_flag,
    cookie_server=_flag,
    captured_request_cookie=_cookie,
    captured_response_cookie=_cookie,
    actconn=_count,
    feconn=_count,
    beconn=_count,
    srv_conn=_count,
    retries=st.integers(0, 3),
    redispatched=st.booleans(),
    srv_queue=_count,
    backend_queue=_count,
    request_headers=_headers,
    response_headers=_headers,
    request_line=_request_line,
    logasap=st.booleans(),
)


def _req_ts(r: RequestRecord) -> float:
    """What the general path's %tr reads (format._req_ts), for the positional call."""
    if r.request_ts is not None:
        return r.request_ts
    return r.accept_ts + (max(r.t_handshake, 0) + max(r.t_idle, 0)) / 1000.0


def wire(line: str | None) -> bytes | None:
    """A request line as the proxy holds it: the bytes received (the general path's text is
    them latin-1 decoded; text beyond latin-1, which no wire gives, as format.encode reads
    it)."""
    if line is None:
        return None
    try:
        return line.encode("latin-1")
    except UnicodeEncodeError:
        return line.encode("utf-8", "surrogateescape")


def text(line: bytes) -> str:
    """A fast line as the general path's text (the framer's encoding, undone)."""
    return line.decode("utf-8", "surrogateescape")


def http_fast(line: fast.HttpLogLine, r: RequestRecord) -> str:
    return text(http_fast_bytes(line, r))


def http_fast_bytes(line: fast.HttpLogLine, r: RequestRecord) -> bytes:
    return line.render(
        r.client_ip,
        r.client_port,
        _req_ts(r),
        r.frontend,
        r.ssl,
        r.backend,
        r.server,
        r.t_request,
        r.t_queue,
        r.t_connect,
        r.t_response,
        r.t_active,
        r.status,
        r.bytes_read,
        r.captured_request_cookie,
        r.captured_response_cookie,
        r.termination,
        r.cookie_client,
        r.cookie_server,
        r.actconn,
        r.feconn,
        r.beconn,
        r.srv_conn,
        r.retries,
        r.redispatched,
        r.srv_queue,
        r.backend_queue,
        r.request_headers,
        r.response_headers,
        wire(r.request_line),
        r.logasap,
    )


def tcp_fast(line: fast.TcpLogLine, r: RequestRecord) -> str:
    return text(
        line.render(
            r.client_ip,
            r.client_port,
            r.accept_ts,
            r.frontend,
            r.ssl,
            r.backend,
            r.server,
            r.t_queue,
            r.t_connect,
            r.t_total,
            r.bytes_read,
            r.termination,
            r.actconn,
            r.feconn,
            r.beconn,
            r.srv_conn,
            r.retries,
            r.redispatched,
            r.srv_queue,
            r.backend_queue,
            r.logasap,
        )
    )


_FORMATS = {
    (kind, i): (LogFormat(src, Context(tz=tz)), fast.for_format(src, Context(tz=tz)))
    for kind, src in (("http", HTTPLOG), ("tcp", TCPLOG))
    for i, tz in enumerate(ZONES)
}


def _both(kind: str, zone: int, r: RequestRecord) -> tuple[str, str, str]:
    general, line = _FORMATS[kind, zone]
    if kind == "http":
        assert isinstance(line, fast.HttpLogLine)
        got = http_fast(line, r)
    else:
        assert isinstance(line, fast.TcpLogLine)
        got = tcp_fast(line, r)
    return got, general.render(r), general.render_generic(r)


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(r=records, zone=st.integers(0, len(ZONES) - 1), kind=st.sampled_from(["http", "tcp"]))
def test_fast_renderers_equal_the_general_path(r: RequestRecord, zone: int, kind: str) -> None:
    got, compiled, generic = _both(kind, zone, r)
    assert got == compiled
    assert got == generic


def test_edge_cases_equal_the_general_path() -> None:
    """Written out, so that they are tried on every run whatever hypothesis draws."""
    base: dict[str, Any] = dict(
        client_ip="10.0.1.2", client_port=33317, accept_ts=1_795_600_000.655
    )
    cases = [
        RequestRecord(**base),  # all defaults: <NOSRV>, -1 timers, <BADREQ>
        RequestRecord(**{**base, "client_ip": ""}, server="", backend="", request_line=""),
        RequestRecord(**base, request_line='GET /caf\xe9?\x01x="y"#z HTTP/1.1', ssl=True),
        RequestRecord(**base, request_line="GET /\u20ac HTTP/1.1"),
        RequestRecord(**base, request_line="GET /\udcff HTTP/1.1"),  # a surrogate escape
        RequestRecord(
            **base,
            request_headers=("", "a|b{c}", 'q"#', "\x7f\xff"),
            response_headers=("",),
            captured_request_cookie="SRV=s1",
            captured_response_cookie="",
        ),
        RequestRecord(**base, request_headers=(), response_headers=("x",), logasap=True),
        RequestRecord(
            **base,
            retries=3,
            redispatched=True,
            bytes_read=2**64,
            t_active=2**40,
            t_total=-1,
            status=999,
        ),
        RequestRecord(client_ip="::1", accept_ts=1_795_600_000.9995, request_ts=None, t_idle=1),
        RequestRecord(client_ip="::1", accept_ts=0.0, request_ts=1_795_600_059.9999),
    ]
    for r in cases:
        for zone in range(len(ZONES)):
            for kind in ("http", "tcp"):
                got, compiled, generic = _both(kind, zone, r)
                assert got == compiled == generic, (kind, zone, r)
    # and the escaping did happen where it must
    got, _c, _g = _both("http", 0, cases[2])
    assert got.endswith('"GET /caf#E9?#01x=#22y#22#23z HTTP/1.1"')  # the wire byte \xe9
    assert _both("http", 0, cases[0])[0].endswith(f' "{BADREQ}"')


def test_a_fast_renderer_only_for_the_exact_default_text() -> None:
    assert isinstance(fast.for_format(HTTPLOG), fast.HttpLogLine)
    assert isinstance(fast.for_format(TCPLOG), fast.TcpLogLine)
    assert fast.for_format(HTTPLOG + " ") is None
    assert fast.for_format(HTTPLOG.replace("%tr", "%t")) is None
    assert fast.for_format("%ci") is None


def test_the_date_cache_follows_the_clock_both_ways() -> None:
    """The per-second day cache is rebuilt whenever the second changes, back or forth."""
    general = LogFormat(TCPLOG, Context(tz=dt.UTC))
    line = fast.TcpLogLine(dt.UTC)
    t0 = 1_795_600_000.0
    for ts in [
        t0,
        t0,
        t0 + 0.4,
        t0 + 0.4004,
        t0 + 0.9996,
        t0 + 1.2,
        t0 + 1.2,
        t0 - 3600.5,
        t0 + 86400 * 40,
        t0 + 86400 * 40 + 0.0002,
        t0,
        t0 + 0.0004,
        t0 + 1.0004,
    ]:
        r = RequestRecord(accept_ts=ts)
        assert tcp_fast(line, r) == general.render(r)


_messages = st.one_of(
    st.text(max_size=80),
    st.text(st.characters(min_codepoint=32, max_codepoint=126), min_size=100, max_size=300),
)


@settings(max_examples=1000, deadline=None)
@given(
    message=_messages,
    nows=st.lists(_ts, min_size=1, max_size=4),
    fmt=st.sampled_from(SYSLOG_FORMATS),
    facility=st.sampled_from(["local0", "local7", "daemon", "user"]),
    level=st.sampled_from(["info", "err", "debug", "emerg"]),
    hostname=st.sampled_from([None, "lb1", "h\xf6st"]),
    maxlen=st.sampled_from([0, 1, 10, 64, 80, 81, 82, 200, 1024, 8192]),
    zone=st.integers(0, len(ZONES) - 1),
)
def test_framer_equals_frame(
    message: str,
    nows: list[float],
    fmt: str,
    facility: str,
    level: str,
    hostname: str | None,
    maxlen: int,
    zone: int,
) -> None:
    kw = dict(facility=facility, level=level, fmt=fmt, tag="haproxy", pid=4242, hostname=hostname)
    framer = Framer(**kw, maxlen=maxlen, tz=ZONES[zone])  # type: ignore[arg-type]
    for now in nows:  # one framer over several instants: its cache must follow
        try:
            want = frame(message, now=now, maxlen=maxlen, tz=ZONES[zone], **kw)  # type: ignore[arg-type]
        except UnicodeEncodeError:
            with pytest.raises(UnicodeEncodeError):
                framer.frame(message, now)
            continue
        assert framer.frame(message, now) == want


def _http(**kw: Any) -> RequestRecord:
    base: dict[str, Any] = dict(
        client_ip="127.0.0.1",
        client_port=40000,
        accept_ts=1_795_600_000.25,
        request_ts=1_795_600_000.25,
        frontend="fe",
        backend="be",
        server="s1",
        t_request=0,
        t_queue=0,
        t_connect=0,
        t_response=1,
        t_active=1,
        status=200,
        bytes_read=342,
        request_line="GET /small HTTP/1.1",
    )
    base.update(kw)
    return RequestRecord(**base)


def test_the_cached_date_rolls_over_each_millisecond_and_second() -> None:
    """The date piece is kept for a millisecond and its day part for a second: each line
    in a run crossing millisecond, second (with a rounding carry: times are rounded to the
    µs, then cut to the ms), minute, day and year boundaries, and going back, has the
    general path's date."""
    general = LogFormat(HTTPLOG, Context(tz=dt.UTC))
    line = fast.HttpLogLine(dt.UTC)
    t0 = 1_798_761_599.0  # 31/Dec/2026:23:59:59 UTC
    stamps = [
        t0 + 0.998,
        t0 + 0.998,
        t0 + 0.9984,  # the same millisecond
        t0 + 0.9991,
        t0 + 0.9999994,
        t0 + 0.9999996,  # rounds (to the µs) into the next second, minute, day and year
        t0 + 1.0,
        t0 + 1.0004,
        t0 + 1.0016,
        t0 + 0.5,  # back into the previous second
        t0 + 61.25,
    ]
    got = []
    for ts in stamps:
        r = _http(request_ts=ts)
        want = general.render(r).encode()
        assert http_fast_bytes(line, r) == want, ts
        got.append(want)
    assert b"[31/Dec/2026:23:59:59.998]" in got[0]
    assert b"[31/Dec/2026:23:59:59.999]" in got[3] and got[3] == got[4]
    assert b"[01/Jan/2027:00:00:00.000]" in got[5]
    assert b"[01/Jan/2027:00:00:00.001]" in got[8]
    assert b"[31/Dec/2026:23:59:59.500]" in got[9]


@pytest.mark.parametrize(
    "us",
    [
        0.0,
        0.49999999999999994,
        1_795_600_000_999_999.5,  # an exact half below a millisecond's end
        1_795_600_000_999_998.5,
        1_795_600_001_000_000.5,
        4503599627370495.5,  # the last exact half below 2**52
        4503599627370497.0,  # beyond: round() itself
        2.0**60,
    ],
)
def test_microseconds_round_to_the_general_paths_millisecond(us: float) -> None:
    assert fast._us(us / 1e6) // 1000 == round(us / 1e6 * 1e6) // 1000


@given(ts=_ts)
def test_microseconds_random(ts: float) -> None:
    assert fast._us(ts) // 1000 == round(ts * 1_000_000) // 1000


def test_request_line_bytes_escaped_per_wire_byte() -> None:
    """What HAProxy 2.6 logs for bytes of a request line: a raw ``\\xe9`` is ``#E9``, UTF-8
    ``é`` is ``#C3#A9``, ``"``, ``#``, controls and DEL are escaped, the rest is as sent."""
    line = fast.HttpLogLine(dt.UTC)
    general = LogFormat(HTTPLOG, Context(tz=dt.UTC))
    for raw, logged in [
        (b"GET /caf\xe9 HTTP/1.1", b'"GET /caf#E9 HTTP/1.1"'),
        (b"GET /caf\xc3\xa9 HTTP/1.1", b'"GET /caf#C3#A9 HTTP/1.1"'),
        (b'GET /q?a="b"#c HTTP/1.0', b'"GET /q?a=#22b#22#23c HTTP/1.0"'),
        (b"M#X /\x01\x1f\x7f\x80\xff HTTP/1.1", b'"M#23X /#01#1F#7F#80#FF HTTP/1.1"'),
        (b"GET /~!$%&'()*+,;=:@[]{}|\\^` HTTP/1.1", b'"GET /~!$%&\'()*+,;=:@[]{}|\\^` HTTP/1.1"'),
        (None, b'"<BADREQ>"'),
        (b"", b'"<BADREQ>"'),
    ]:
        r = _http(request_line=raw.decode("latin-1") if raw is not None else None)
        got = http_fast_bytes(line, r)
        assert got.endswith(b" " + logged), raw
        assert got == general.render(r).encode("utf-8", "surrogateescape")
    assert fast.url_bytes(b"GET / HTTP/1.1") == b"GET / HTTP/1.1"


def test_name_and_state_pieces_follow_each_line() -> None:
    """One renderer over lines that alternate frontends, TLS, backends, servers, client
    addresses, termination states and cookie flags: the cached pieces never leak from one
    line into the next (names equal but not identical included)."""
    general = LogFormat(HTTPLOG, Context(tz=dt.UTC))
    line = fast.HttpLogLine(dt.UTC)
    cases = [
        _http(),
        _http(server="s2"),
        _http(backend="".join(["b", "e"]), server="".join(["s", "1"])),  # equal, not identical
        _http(backend="api", server="s1", ssl=True),
        _http(frontend="fe2", backend="api", server="s1", ssl=True),
        _http(frontend="fe2", backend="", server=""),
        _http(server=NOSRV, termination="PR", status=403, t_connect=-1, t_response=-1),
        _http(termination="CD", cookie_client="N", cookie_server="I"),
        _http(termination="CD"),
        _http(client_ip="::1"),
        _http(client_ip=""),
        _http(actconn=5000, feconn=1023, beconn=1022, srv_conn=-1, bytes_read=10**9),
        _http(),
    ]
    for r in cases * 2:
        assert http_fast_bytes(line, r) == general.render(r).encode(), r


def test_caches_are_bounded() -> None:
    line = fast.HttpLogLine(dt.UTC)
    general = LogFormat(HTTPLOG, Context(tz=dt.UTC))
    for i in range(fast._IPS_MAX + 10):
        r = _http(client_ip=f"10.{i // 65536}.{i // 256 % 256}.{i % 256}", server=f"s{i}")
        assert http_fast_bytes(line, r) == general.render(r).encode()
    assert len(line._ips) <= fast._IPS_MAX
    assert all(len(d) <= fast._CACHE_MAX for d in line._names.values())


@settings(max_examples=300, deadline=None)
@given(
    message=st.one_of(st.binary(max_size=80), st.binary(min_size=900, max_size=9000)),
    nows=st.lists(_ts, min_size=1, max_size=4),
    fmt=st.sampled_from(SYSLOG_FORMATS),
    hostname=st.sampled_from([None, "lb1", "h\xf6st"]),
    maxlen=st.sampled_from([0, 1, 64, 1024, 8192]),
    zone=st.integers(0, len(ZONES) - 1),
)
def test_frame_bytes_equals_frame(
    message: bytes,
    nows: list[float],
    fmt: str,
    hostname: str | None,
    maxlen: int,
    zone: int,
) -> None:
    """The framer of encoded lines writes what ``frame`` writes for their text: a long
    line (a long URI) is cut to the target's ``len`` with the header, then ends in a line
    feed."""
    kw: dict[str, Any] = dict(fmt=fmt, tag="haproxy", pid=4242, hostname=hostname)
    framer = Framer(**kw, maxlen=maxlen, tz=ZONES[zone])
    text_ = message.decode("utf-8", "surrogateescape")
    for now in nows:
        want = frame(text_, now=now, maxlen=maxlen, tz=ZONES[zone], **kw)
        assert framer.frame_bytes(message, now) == want
        assert len(want) <= max(maxlen, 0) + 1


def test_a_long_request_line_is_cut_at_the_targets_length() -> None:
    """A 4 kB URI in a 1024-byte target: the datagram is the first 1024 bytes of header and
    line, then a line feed, as HAProxy sends it (``log ... len 1024``)."""
    line = fast.HttpLogLine(dt.UTC)
    uri = "/" + "a" * 4000
    r = _http(request_line=f"GET {uri} HTTP/1.1")
    framer = Framer(pid=7, maxlen=1024)
    data = framer.frame_bytes(http_fast_bytes(line, r), 1_795_600_000.25)
    assert len(data) == 1025 and data.endswith(b"a\n")
    assert data == frame(
        LogFormat(HTTPLOG, Context(tz=dt.UTC)).render(r), now=1_795_600_000.25, pid=7
    )
