"""The head parser remembers the lines it has checked (h1's line tables): whatever a head
looks like, and whether its lines were seen before or not, it must give what the plain
regex parser gave (tests/unit/http/h1_reference.py, the parser before the tables): the
same head, or the same error. llhttp (httptools) is a second oracle: every head it
accepts in its strict mode, lbcore accepts with the same fields.

The parser's tables are emptied here, so the module is its source version
(tests.source_modules); the compiled module in use must give the same answers too."""

from __future__ import annotations

from collections.abc import Callable

import httptools
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lbcore.http import h1 as in_use
from tests.source_modules import from_source
from tests.unit.http import h1_reference as ref

h1 = from_source("lbcore.http.h1")
ProtocolError = h1.ProtocolError
FIELDS = (
    "method",
    "target",
    "version",
    "content_length",
    "chunked",
    "keep_alive",
    "upgrade",
    "expect_continue",
)
RESP_FIELDS = ("status", "reason", "version", "content_length", "chunked", "keep_alive")

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
    b"host",
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
    b"GET / HTTP/1.1\r",
    b"GET / HTTP/1.1\n",
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
    b"HTTP/1.1 200 O\rK",
]

field = st.tuples(
    st.sampled_from(NAMES) | st.binary(min_size=1, max_size=4),
    st.sampled_from(SEPS),
    st.sampled_from(VALUES) | st.binary(max_size=6),
    st.sampled_from(EOLS),
)


def _head(start: bytes, fields: list[tuple[bytes, bytes, bytes, bytes]]) -> bytes:
    """A head as the Reader cuts it: ending with a CRLF (the empty line's left out)."""
    head = start + b"\r\n" + b"".join(n + s + v + e for n, s, v, e in fields)
    return head if head.endswith(b"\r\n") else head + b"\r\n"


def _outcome(parse: Callable[[bytes], object], head: bytes) -> object:
    """Everything a head tells, or its error; its forwarded bytes both ways (from the
    lines it keeps, and written again from ``headers``)."""
    try:
        m = parse(head)
    except (ProtocolError, in_use.ProtocolError) as err:
        return ("error", err.status, err.detail)
    mod = h1 if type(m).__module__ == h1.__name__ else in_use  # whose classes
    if type(m).__name__ == "Request":
        wire = mod.serialize_request(m, b"close")
        facts = tuple(getattr(m, a) for a in FIELDS)
        headers = list(m.headers)  # type: ignore[attr-defined]
        again = mod.serialize_request(m, b"close")
    else:
        wire = mod.serialize_response(m, None)
        facts = tuple(getattr(m, a) for a in RESP_FIELDS)
        headers = list(m.headers)  # type: ignore[attr-defined]
        again = mod.serialize_response(m, None)
    assert wire == again  # the lines kept as received say what the fields say
    return facts, headers, wire


def _three(parse: Callable[[bytes], object], head: bytes) -> tuple[object, object]:
    """Outcomes with empty tables, then with the lines learnt (if they were fit)."""
    for table in (h1._LINES, h1._REQUEST_LINES, h1._STATUS_LINES):
        table.clear()
    cold = _outcome(parse, head)
    warm = _outcome(parse, head)
    return cold, warm


@settings(max_examples=1500, deadline=None)
@given(start=st.sampled_from(REQUEST_LINES), fields=st.lists(field, max_size=6))
def test_request_heads_agree(start: bytes, fields: list[tuple[bytes, bytes, bytes, bytes]]) -> None:
    head = _head(start, fields)
    cold, warm = _three(h1.parse_request_head, head)
    assert cold == warm == _outcome(ref.parse_request_head, head)
    assert _outcome(in_use.parse_request_head, head) == cold


@settings(max_examples=1500, deadline=None)
@given(start=st.sampled_from(STATUS_LINES), fields=st.lists(field, max_size=6))
def test_response_heads_agree(
    start: bytes, fields: list[tuple[bytes, bytes, bytes, bytes]]
) -> None:
    head = _head(start, fields)
    cold, warm = _three(h1.parse_response_head, head)
    assert cold == warm == _outcome(ref.parse_response_head, head)
    assert _outcome(in_use.parse_response_head, head) == cold


class _Fields:
    """What llhttp delivers through httptools' callbacks."""

    def __init__(self) -> None:
        self.fields: list[tuple[bytes, bytes]] = []

    def on_header(self, name: bytes, value: bytes) -> None:
        self.fields.append((name.lower(), value.rstrip(b" \t")))


def _llhttp(parser: type, head: bytes) -> list[tuple[bytes, bytes]] | None:
    seen = _Fields()
    try:
        parser(seen).feed_data(head + b"\r\n")
    except httptools.HttpParserUpgrade:
        pass
    except httptools.HttpParserError:
        return None
    return seen.fields


def _lbcore_fields(head: bytes) -> list[tuple[bytes, bytes]] | None:
    """The field lines as lbcore splits them (its framing rules left aside)."""
    lines = head.split(b"\r\n")
    try:
        return [in_use._field(line, 400).pair for line in lines[1:-1]]
    except in_use.ProtocolError:
        return None


@settings(max_examples=1000, deadline=None)
@given(
    start=st.sampled_from([b"GET / HTTP/1.1", b"HTTP/1.1 200 OK"]),
    fields=st.lists(field, max_size=6),
)
def test_what_llhttp_accepts_lbcore_accepts(
    start: bytes, fields: list[tuple[bytes, bytes, bytes, bytes]]
) -> None:
    head = _head(start, fields)
    parser = httptools.HttpRequestParser if start[:1] == b"G" else httptools.HttpResponseParser
    if b"\r\n\r\n" in head:
        return  # llhttp would stop at the empty line (the Reader never cuts so)
    theirs = _llhttp(parser, head)
    if theirs is not None:
        assert _lbcore_fields(head) == theirs


def test_ordinary_heads_come_from_the_tables() -> None:
    """Seen once, a line is not matched again; the forwarded head is the kept lines."""
    h1._LINES.clear()
    head = b"HTTP/1.1 200 OK\r\nServer: s\r\nContent-Length: 5\r\nConnection: keep-alive\r\n"
    first = h1.parse_response_head(head)
    assert set(h1._LINES) == {b"Server: s", b"Content-Length: 5", b"Connection: keep-alive"}
    assert b"HTTP/1.1 200 OK" in h1._STATUS_LINES
    second = h1.parse_response_head(head)
    assert second._wire == [b"server: s\r\n", b"content-length: 5\r\n"]
    assert (
        h1.serialize_response(second, None)
        == h1.serialize_response(first, None)
        == (b"HTTP/1.1 200 OK\r\nserver: s\r\ncontent-length: 5\r\n\r\n")
    )
    assert second.content_length == 5 and second.keep_alive
    assert second.headers == [(b"server", b"s"), (b"content-length", b"5")]
    # what llhttp refused but lbcore accepts: a list of identical lengths
    resp = h1.parse_response_head(b"HTTP/1.1 200 OK\r\nContent-Length: 5, 5\r\n")
    assert resp.content_length == 5


def test_fields_read_keep_the_lines_as_received() -> None:
    """``fields`` (ACLs) reads without editing: the head is still forwarded from its lines."""
    req = h1.parse_request_head(b"GET / HTTP/1.1\r\nHost: a\r\nX-A: 1\r\n")
    resp = h1.parse_response_head(b"HTTP/1.1 200 OK\r\nServer: s\r\n")
    assert req.fields == [(b"host", b"a"), (b"x-a", b"1")] and req._wire is not None
    assert resp.fields == [(b"server", b"s")] and resp._wire is not None


def test_headers_touched_are_written_from_the_list() -> None:
    """Reading ``headers`` may lead to editing the list in place: the forwarded head
    then follows the list, never the lines as received."""
    req = h1.parse_request_head(b"GET / HTTP/1.1\r\nHost: a\r\nX-A: 1\r\n")
    assert req._wire is not None
    req.headers.append((b"x-b", b"2"))
    assert h1.serialize_request(req, None) == (
        b"GET / HTTP/1.1\r\nhost: a\r\nx-a: 1\r\nx-b: 2\r\n\r\n"
    )
    req.headers = [(b"host", b"b")]
    assert h1.serialize_request(req, None) == b"GET / HTTP/1.1\r\nhost: b\r\n\r\n"
    resp = h1.parse_response_head(b"HTTP/1.1 200 OK\r\nServer: s\r\n")
    resp.headers += [(b"x-c", b"3")]
    assert h1.serialize_response(resp, b"close") == (
        b"HTTP/1.1 200 OK\r\nserver: s\r\nx-c: 3\r\nconnection: close\r\n\r\n"
    )


def test_tables_stay_bounded() -> None:
    h1._LINES.clear()
    for i in range(h1._TABLE_SIZE * 3):
        h1.parse_request_head(b"GET / HTTP/1.1\r\nHost: a\r\nX-N: %d\r\n" % i)
        assert len(h1._LINES) <= h1._TABLE_SIZE
    long = b"X-Long: " + b"v" * h1._TABLE_LINE
    req = h1.parse_request_head(b"GET / HTTP/1.1\r\nHost: a\r\n" + long + b"\r\n")
    assert (b"x-long", b"v" * h1._TABLE_LINE) in req.headers
    assert long not in h1._LINES


@pytest.mark.parametrize(
    "head",
    [
        b"GET / HTTP/1.1\r\nHost: a\r\nX: b",  # the last line without its CRLF
        b"GET / HTTP/1.1\r\nHost: a\r\nX: b\r\n ",
        b"GET / HTTP/1.1\r\nHost: a\r\n\r\nX: b\r\n",  # an empty line inside
    ],
)
def test_a_head_must_end_with_its_last_crlf(head: bytes) -> None:
    for parse in (h1.parse_request_head, in_use.parse_request_head):
        with pytest.raises((ProtocolError, in_use.ProtocolError)) as info:
            parse(head)
        assert info.value.status == 400  # type: ignore[union-attr]


LINE_BYTES = st.sampled_from([b"a", b"A", b"-", b":", b" ", b"\t", b"\r", b"\n", b"\x00", b"\x7f"])
LINE_BYTES |= st.sampled_from([b"\x80", b"\xff", b"\x0b", b"\x1f", b"~", b"(", b"/", b"."])


@settings(max_examples=3000, deadline=None)
@given(
    line=st.lists(LINE_BYTES | st.binary(max_size=2), max_size=12).map(b"".join)
    | st.tuples(st.sampled_from(NAMES), st.sampled_from(SEPS), st.sampled_from(VALUES)).map(
        b"".join
    )
)
def test_a_new_field_line_is_checked_as_the_regex_says(line: bytes) -> None:
    """``_field`` checks with string operations what ``_LINE_RE`` says."""
    m = h1._LINE_RE.fullmatch(line)
    for mod in (h1, in_use):
        try:
            got = mod._field(line, 400).pair
        except mod.ProtocolError:
            got = None
        assert got == (None if m is None else (m.group(1).lower(), m.group(2)))


TARGETS = [b"/", b"/a?b", b"*", b"http://h/x", b"", b" ", b"/\x7f", b"/\x80", b"/\t", b"/a b"]
PROTOS = [b"HTTP/1.1", b"HTTP/1.0", b"HTTP/2.0", b"HTTP/1.9", b"HTTP/1.", b"HTTP/11.1"]
PROTOS += [b"HTTP/1.1 ", b"http/1.1", b"HTTP/a.1", b"HTTP/1,1", b"HTTP/1.1\r", b"HTTPS/1.1"]


@settings(max_examples=2000, deadline=None)
@given(
    method=st.sampled_from([b"GET", b"get", b"M-S", b"", b"G T", b"G\x00", b"[x]"])
    | st.binary(max_size=3),
    sep1=st.sampled_from([b" ", b"  ", b"\t"]),
    target=st.sampled_from(TARGETS) | st.binary(max_size=3),
    sep2=st.sampled_from([b" ", b"  ", b""]),
    proto=st.sampled_from(PROTOS) | st.binary(max_size=9),
)
def test_a_new_request_line_is_checked_as_the_regex_says(
    method: bytes, sep1: bytes, target: bytes, sep2: bytes, proto: bytes
) -> None:
    line = method + sep1 + target + sep2 + proto
    m = h1._REQUEST_LINE_RE.fullmatch(line)
    if m is None:
        want: object = 400
    elif m.group(3) != b"1":
        want = 505
    else:
        want = (m.group(1), m.group(2), b"1.1" if m.group(4) != b"0" else b"1.0")
    for mod in (h1, in_use):
        try:
            rl = mod._request_line(line)
            got: object = (rl.method, rl.target, rl.version)
        except mod.ProtocolError as err:
            got = err.status
        assert got == want
