"""llhttp (httptools) splits field lines on the common path; the Python parser decides
everything llhttp refuses. The two must agree: on every generated head, parsing with
the fast path gives the same head or the same error as parsing with it turned off.

The parser's internals are steered here, so the module is its source version
(tests.source_modules); the compiled module in use must give the same answers too."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lbcore.http import h1 as in_use
from tests.source_modules import from_source

h1 = from_source("lbcore.http.h1")
ProtocolError = h1.ProtocolError
FIELDS = [a for a in h1.Request.__slots__ if a != "conn"]
RESP_FIELDS = [a for a in h1.Response.__slots__ if a != "conn"]

NAMES = [
    b"Host",
    b"host",
    b"Content-Length",
    b"Transfer-Encoding",
    b"Connection",
    b"Upgrade",
    b"Keep-Alive",
    b"TE",
    b"Trailer",
    b"Expect",
    b"X-A",
    b"x_b",
    b"",
    b"X A",
    b"X\x00",
    b"X-\xff",
    b"X\t",
    b"[x]",
]
SEPS = [b":", b": ", b":\t", b" :", b":  ", b"\t:", b"; "]
VALUES = [
    b"",
    b"a",
    b"a b",
    b"example.com",
    b"chunked",
    b"gzip, chunked",
    b"chunked, gzip",
    b"Chunked",
    b"5",
    b"0",
    b"5, 5",
    b"5, 6",
    b"+5",
    b"0x5",
    b"99999999999999999999",
    b"close",
    b"keep-alive",
    b"upgrade",
    b"Upgrade, close",
    b"x-a",
    b"websocket",
    b"100-continue",
    b"a\x00b",
    b"a\x7fb",
    b"a\x01b",
    b"a\tb",
    b"\x80\xff",
    b"a\rb",
    b"a\nb",
    b" ",
    b"\t",
]
EOLS = [b"\r\n", b"\r\n", b"\r\n", b"\n", b"\r", b" \r\n", b"\t\r\n", b"\r\n ", b"\r\n\t"]
REQUEST_LINES = [
    b"GET / HTTP/1.1",
    b"GET / HTTP/1.0",
    b"POST /a?b=c HTTP/1.1",
    b"HEAD http://example.com/x HTTP/1.1",
    b"OPTIONS * HTTP/1.1",
    b"CONNECT example.com:443 HTTP/1.1",
    b"PURGE / HTTP/1.1",
    b"get / HTTP/1.1",
    b"GET / HTTP/2.0",
    b"GET  / HTTP/1.1",
    b"GET /\x7f HTTP/1.1",
    b"GET /a{b} HTTP/1.1",
]
STATUS_LINES = [
    b"HTTP/1.1 200 OK",
    b"HTTP/1.0 200 OK",
    b"HTTP/1.1 101 Switching Protocols",
    b"HTTP/1.1 204 No Content",
    b"HTTP/1.1 100 Continue",
    b"HTTP/1.1 200",
    b"HTTP/1.1 200 ",
    b"HTTP/1.1 999 x",
    b"HTTP/2.0 200 OK",
    b"HTTP/1.1 20 x",
]

field = st.tuples(
    st.sampled_from(NAMES) | st.binary(min_size=1, max_size=4),
    st.sampled_from(SEPS),
    st.sampled_from(VALUES) | st.binary(max_size=6),
    st.sampled_from(EOLS),
)


def _head(start: bytes, fields: list[tuple[bytes, bytes, bytes, bytes]]) -> bytes:
    return start + b"\r\n" + b"".join(n + s + v + e for n, s, v, e in fields)


def _outcome(parse: Callable[[bytes], object], head: bytes) -> object:
    try:
        m = parse(head)
    except (ProtocolError, in_use.ProtocolError) as err:
        return ("error", err.status, err.detail)
    names = FIELDS if type(m).__name__ == "Request" else RESP_FIELDS
    return tuple(getattr(m, a) for a in names)


def _both(
    monkeypatch: pytest.MonkeyPatch, parse: Callable[[bytes], object], head: bytes
) -> tuple[object, object]:
    fast = _outcome(parse, head)
    with monkeypatch.context() as m:
        m.setattr(h1, "_scan_fast", lambda *a: None)
        slow = _outcome(parse, head)
    return fast, slow


@settings(max_examples=1500, deadline=None)
@given(start=st.sampled_from(REQUEST_LINES), fields=st.lists(field, max_size=6))
def test_request_heads_agree(start: bytes, fields: list[tuple[bytes, bytes, bytes, bytes]]) -> None:
    with pytest.MonkeyPatch.context() as mp:
        fast, slow = _both(mp, h1.parse_request_head, _head(start, fields))
    assert fast == slow
    assert _outcome(in_use.parse_request_head, _head(start, fields)) == fast


@settings(max_examples=1500, deadline=None)
@given(start=st.sampled_from(STATUS_LINES), fields=st.lists(field, max_size=6))
def test_response_heads_agree(
    start: bytes, fields: list[tuple[bytes, bytes, bytes, bytes]]
) -> None:
    with pytest.MonkeyPatch.context() as mp:
        fast, slow = _both(mp, h1.parse_response_head, _head(start, fields))
    assert fast == slow
    assert _outcome(in_use.parse_response_head, _head(start, fields)) == fast


def test_fast_path_is_taken_for_ordinary_heads(monkeypatch: pytest.MonkeyPatch) -> None:
    """The common heads do not fall back (else the fast path buys nothing)."""
    calls: list[bytes] = []
    real = h1._scan_block

    def spy(block: bytes, limits: h1.Limits, status: int) -> object:
        calls.append(block)
        return real(block, limits, status)

    monkeypatch.setattr(h1, "_scan_block", spy)
    req = h1.parse_request_head(b"GET /x HTTP/1.1\r\nHost: a\r\nUser-Agent: t \r\n")
    resp = h1.parse_response_head(
        b"HTTP/1.1 200 OK\r\nServer: s\r\nContent-Length: 5\r\nConnection: keep-alive\r\n"
    )
    assert calls == []
    assert req.headers == [(b"host", b"a"), (b"user-agent", b"t")]
    assert resp.headers == [(b"server", b"s"), (b"content-length", b"5")]
    assert resp.content_length == 5 and resp.keep_alive
    # what llhttp refuses but lbcore accepts: a list of identical lengths
    resp = h1.parse_response_head(b"HTTP/1.1 200 OK\r\nContent-Length: 5, 5\r\n")
    assert resp.content_length == 5 and len(calls) == 1
