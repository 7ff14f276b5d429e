"""Regressions found by the hostile-input table (tests/integration/hostile)."""

from __future__ import annotations

import pytest

from lbcore.http.h1 import NEED_DATA, Limits, ProtocolError, Reader, Request


def _first(data: bytes, limits: Limits | None = None) -> object:
    r = Reader(is_request=True, limits=limits or Limits())
    r.feed(data)
    return r.next_event()


def _status(data: bytes, limits: Limits | None = None) -> int:
    with pytest.raises(ProtocolError) as err:
        r = Reader(is_request=True, limits=limits or Limits())
        r.feed(data)
        for _ in range(10):
            r.next_event()
    return err.value.status


def test_chunk_lines_ended_by_bare_lf_are_refused_at_once() -> None:
    # Before: the reader waited for a CRLF that never came (the request hung until the
    # client timeout, and the server had the head already).
    assert (
        _status(b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n4\nabcd\n") == 400
    )


def test_chunk_line_split_across_reads_still_works() -> None:
    r = Reader(is_request=True)
    r.feed(b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n4\r")
    assert type(r.next_event()) is Request
    assert r.next_event() == NEED_DATA
    r.feed(b"\nabcd\r\n0\r\n\r\n")
    assert r.next_event() == b"4\r\nabcd\r\n0\r\n\r\n"


@pytest.mark.parametrize(
    "target,host,ok",
    [
        (b"http://h/x", b"h", True),
        (b"http://H:8080/x?y", b"h:8080", True),
        (b"http://other/x", b"h", False),
        (b"http://h@evil/x", b"h", False),
        (b"example.com:443", b"example.com:443", False),  # authority-form outside CONNECT
    ],
)
def test_absolute_form_authority_must_match_host(target: bytes, host: bytes, ok: bool) -> None:
    raw = b"GET " + target + b" HTTP/1.1\r\nHost: " + host + b"\r\n\r\n"
    if ok:
        assert type(_first(raw)) is Request
    else:
        assert _status(raw) == 400


def test_long_uri_is_414_and_many_fields_431_whatever_arrives_first() -> None:
    limits = Limits(max_line=1000, max_head=1000, max_headers=5)
    uri = b"/" + b"a" * 2000
    # whole request in one read (the head's end is visible): still 414, not 431
    assert _status(b"GET " + uri + b" HTTP/1.1\r\nHost: h\r\n\r\n", limits) == 414
    assert _status(b"GET " + uri, limits) == 414  # line not finished yet
    big = b"X-A: " + b"b" * 1200 + b"\r\n"
    assert _status(b"GET / HTTP/1.1\r\nHost: h\r\n" + big + b"\r\n", limits) == 431
    many = b"".join(b"X-%d: v\r\n" % i for i in range(6))
    assert _status(b"GET / HTTP/1.1\r\nHost: h\r\n" + many + b"\r\n", limits) == 431


def test_long_request_line_is_414_however_the_reads_fall() -> None:
    # Found by tests/fuzz: the same bytes gave 414 when split and 400 when they came in
    # one read and the connection closed before the head was complete.
    limits = Limits(max_line=600, max_head=1200)
    data = b"GET /" + b"x" * 700 + b" HTTP/1.1\r\n\n"
    r = Reader(is_request=True, limits=limits)
    r.feed(data)
    r.feed_eof()
    with pytest.raises(ProtocolError) as err:
        r.next_event()
    assert err.value.status == 414
