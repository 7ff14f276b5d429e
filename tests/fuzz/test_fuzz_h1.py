"""Fuzzing the HTTP/1 reader (lbcore/http/h1.py): structured hostile streams, mutated.

Properties, for request and response readers alike:

* only ``ProtocolError`` escapes, with a status the proxy knows how to answer;
* no hang: every example runs under a deadline, and the event loop below is bounded;
* how the bytes are split into reads changes nothing: the same heads, the same body
  bytes, the same END count and the same final error, whether the stream arrives in
  one read or byte by byte (state carried between reads is where framing bugs live);
* the body bytes handed out are exactly the bytes of the wire, in order, and a
  Content-Length body is exactly that long.

Example counts (CI): 1000 + 600 + 600 + 1000 — about 12 s of CPU.
"""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lbcore.http.h1 import END, NEED_DATA, PAUSED, Limits, ProtocolError, Reader, Request, Response

REQUEST_STATUSES = {400, 413, 414, 431, 501, 505}
FUZZ = settings(
    deadline=None,  # hangs are caught by pytest-timeout and the bounded loop in run()
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
LIMITS = Limits(max_line=600, max_head=1200, max_headers=12, max_body=50_000)

METHODS = st.sampled_from(
    [b"GET", b"POST", b"HEAD", b"PUT", b"CONNECT", b"OPTIONS", b"G@T", b"", b"get", b"PRI"]
)
TARGETS = st.sampled_from(
    [
        b"/",
        b"/a?b=c",
        b"*",
        b"http://h/x",
        b"http://o/",
        b"h:443",
        b"/a b",
        b"/\x00",
        b"/" + b"x" * 700,
        b"//",
        b"/%00",
    ]
)
VERSIONS = st.sampled_from(
    [b"HTTP/1.1", b"HTTP/1.0", b"HTTP/2.0", b"HTTP/1.x", b"http/1.1", b"HTTP/0.9", b""]
)
NAMES = st.sampled_from(
    [
        b"Host",
        b"Content-Length",
        b"Transfer-Encoding",
        b"Connection",
        b"Upgrade",
        b"Expect",
        b"X-A",
        b"Content-Length ",
        b" Host",
        b"TE",
        b"Keep-Alive",
        b"Trailer",
        b"X-\x00",
        b"",
        b"Host\t",
    ]
)
VALUES = st.sampled_from(
    [
        b"h",
        b"0",
        b"4",
        b"12",
        b"4, 4",
        b"4, 5",
        b"-1",
        b"+4",
        b"0x4",
        b"99999999999999999999",
        b"chunked",
        b"chunked, identity",
        b"identity",
        b"gzip, chunked",
        b"close",
        b"keep-alive",
        b"upgrade",
        b"websocket",
        b"100-continue",
        b"a\rb",
        b"a\x00b",
        b"x-a",
        b"",
        b" chunked ",
        b"a\r\n b",
    ]
)
SEPS = st.sampled_from([b": ", b":", b" : ", b":\t", b"\t: "])
EOLS = st.sampled_from([b"\r\n"] * 6 + [b"\n", b"\r", b"\r\r\n"])
CHUNK_SIZES = st.sampled_from(
    [
        b"0",
        b"1",
        b"4",
        b"a",
        b"A",
        b"10",
        b"zz",
        b"-1",
        b"4;x=y",
        b"4 ;x",
        b"fffffffffffffffff",
        b"",
        b"4\r",
    ]
)


@st.composite
def fields(draw: st.DrawFn) -> bytes:
    out = b""
    for _ in range(draw(st.integers(0, 6))):
        out += draw(NAMES) + draw(SEPS) + draw(VALUES) + draw(EOLS)
    return out


@st.composite
def body(draw: st.DrawFn) -> bytes:
    kind = draw(st.integers(0, 2))
    if kind == 0:
        return draw(st.binary(max_size=20))
    parts = b""
    for _ in range(draw(st.integers(0, 3))):
        data = draw(st.binary(max_size=12))
        parts += draw(CHUNK_SIZES) + draw(EOLS) + data + draw(EOLS)
    return parts + b"0\r\n" + draw(st.sampled_from([b"", b"X-T: 1\r\n", b"bad\r\n"])) + b"\r\n"


@st.composite
def request(draw: st.DrawFn) -> bytes:
    line = draw(METHODS) + b" " + draw(TARGETS) + b" " + draw(VERSIONS) + draw(EOLS)
    return line + draw(fields()) + draw(EOLS) + draw(body())


@st.composite
def response(draw: st.DrawFn) -> bytes:
    status = draw(st.sampled_from([b"200", b"204", b"304", b"101", b"100", b"1000", b"2x0"]))
    line = draw(st.sampled_from([b"HTTP/1.1", b"HTTP/1.0", b"HTTP/2"])) + b" " + status
    line += draw(st.sampled_from([b" OK", b"", b" \x01"])) + draw(EOLS)
    return line + draw(fields()) + draw(EOLS) + draw(body())


@st.composite
def mutated(draw: st.DrawFn, base: st.SearchStrategy[bytes]) -> bytes:
    data = bytearray(b"".join(draw(st.lists(base, min_size=1, max_size=3))))
    for _ in range(draw(st.integers(0, 3))):
        if not data:
            break
        i = draw(st.integers(0, len(data) - 1))
        op = draw(st.integers(0, 2))
        if op == 0:
            data[i] = draw(st.integers(0, 255))
        elif op == 1:
            del data[i]
        else:
            data[i:i] = draw(st.sampled_from([b"\r\n", b"\x00", b" ", b":", b";", b"0\r\n\r\n"]))
    return bytes(data)


def run(reader: Reader, pieces: list[bytes]) -> list[object]:
    """Drive a reader over ``pieces``; return a normalised transcript of what it said."""
    transcript: list[object] = []
    body = bytearray()
    feed = iter(pieces)
    for _ in range(10_000):  # bounded: a reader that never settles fails here
        try:
            ev = reader.next_event()
        except ProtocolError as err:
            if reader.is_request:
                assert err.status in REQUEST_STATUSES, err
            else:
                assert err.status == 502, err
            transcript.append(("error", err.status))
            return transcript
        if type(ev) is bytes:
            assert ev, "an empty body slice"
            body += ev
        elif ev is END:
            transcript.append(("end", bytes(body)))
            body.clear()
            reader.start_next()
        elif ev is NEED_DATA or ev is PAUSED:
            nxt = next(feed, None)
            if nxt is None:
                if ev is PAUSED:
                    break
                if reader._eof:
                    break
                reader.feed_eof()
                continue
            reader.feed(nxt)
        elif type(ev) is Request:
            transcript.append(
                ("req", ev.method, ev.target, ev.version, ev.headers, ev.content_length, ev.chunked)
            )
            if ev.content_length is not None:
                assert ev.content_length >= 0
        elif type(ev) is Response:
            transcript.append(("resp", ev.status, ev.headers, ev.content_length, ev.chunked))
        else:
            raise AssertionError(f"unexpected event {ev!r}")
    else:
        raise AssertionError("the reader never settled")
    if body:
        transcript.append(("partial", bytes(body)))
    return transcript


def _splits(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts})
    out, last = [], 0
    for p in points:
        out.append(data[last:p])
        last = p
    out.append(data[last:])
    return [p for p in out if p]


@pytest.mark.timeout(120)
@settings(FUZZ, max_examples=1000)
@given(mutated(request()), st.lists(st.integers(0, 10_000), max_size=6))
def test_request_stream_only_protocol_errors(data: bytes, cuts: list[int]) -> None:
    run(Reader(is_request=True, limits=LIMITS), _splits(data, cuts))


@pytest.mark.timeout(120)
@settings(FUZZ, max_examples=600)
@given(mutated(request()), st.lists(st.integers(0, 10_000), min_size=1, max_size=8))
def test_request_split_invariance(data: bytes, cuts: list[int]) -> None:
    whole = run(Reader(is_request=True, limits=LIMITS), [data])
    split = run(Reader(is_request=True, limits=LIMITS), _splits(data, cuts))
    assert split == whole
    if len(data) <= 300:  # byte by byte costs O(n²) head rescans: keep it to short streams
        bytewise = run(Reader(is_request=True, limits=LIMITS), [bytes((b,)) for b in data])
        assert bytewise == whole


@pytest.mark.timeout(120)
@settings(FUZZ, max_examples=600)
@given(
    mutated(response()),
    st.lists(st.integers(0, 10_000), max_size=6),
    st.booleans(),
    st.booleans(),
)
def test_response_stream(data: bytes, cuts: list[int], head: bool, upgrade: bool) -> None:
    def reader() -> Reader:
        r = Reader(is_request=False)
        r.expect_head = head
        r.upgrade_requested = upgrade
        return r

    whole = run(reader(), [data])
    assert run(reader(), _splits(data, cuts)) == whole


@pytest.mark.timeout(120)
@settings(FUZZ, max_examples=1000)
@given(st.binary(max_size=400), st.booleans())
def test_arbitrary_bytes(data: bytes, is_request: bool) -> None:
    run(Reader(is_request=is_request, limits=LIMITS), [data])


def test_body_bytes_are_the_wire_bytes() -> None:
    """A sanity anchor for the properties above: chunk framing is handed out verbatim."""
    wire = (
        b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n3;e=1\r\nabc\r\n0\r\n\r\n"
    )
    (req, end) = run(Reader(is_request=True), [wire])
    assert req[0] == "req" and end == ("end", b"3;e=1\r\nabc\r\n0\r\n\r\n")
