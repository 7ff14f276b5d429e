"""The head parser as it was before the line tables (lbcore/http/h1.py at e38e7b3, its
regex path; llhttp's fast path was proven to agree with it): the oracle
test_h1_fast.py compares the parser in use with. Kept verbatim, only the llhttp path
and the Reader left out; ``Request``, ``Response``, ``Limits`` and ``ProtocolError`` are
the module's own, so that both give comparable objects.
"""

# ruff: noqa

from __future__ import annotations

import re
from typing import Final

from lbcore.http.h1 import DEFAULT_LIMITS, Limits, ProtocolError, Request, Response

_TCHAR = rb"[!#$%&'*+.^_`|~0-9A-Za-z-]"
# One field line: token ":" OWS value OWS CRLF, anchored at a line start. The value
# excludes CR/LF and the other forbidden controls (RFC 9110 §5.5), so a line holding one
# is not matched at all; bare CR/LF are refused by counting, and a line that did not match
# by comparing the count of matches with the count of lines (_check_block). One regex
# pass, free of backtracking, does the whole block.
_VCHAR = rb"[^\x00-\x08\x0a-\x1f\x7f]"
_FIELD_RE = re.compile(
    rb"^(" + _TCHAR + rb"+):[ \t]*((?:" + _VCHAR + rb"*[^\x00-\x20\x7f])?)[ \t]*\r\n",
    re.MULTILINE,
)
_REQUEST_LINE_RE = re.compile(rb"(" + _TCHAR + rb"+) ([^\x00-\x20\x7f]+) HTTP/([0-9])\.([0-9])")
_STATUS_LINE_RE = re.compile(rb"HTTP/([0-9])\.([0-9]) ([0-9]{3})(?: (" + _VCHAR + rb"*))?")
_CHUNK_SIZE_RE = re.compile(rb"([0-9A-Fa-f]{1,16})[ \t]*(?:;[^\r\n]*)?")
_DIGITS_RE = re.compile(rb"[0-9]{1,18}")


_CONN_OPTIONS: Final = frozenset((b"close", b"keep-alive", b"upgrade"))


def _tokens(value: bytes) -> list[bytes]:
    if b"," not in value:
        return [value.strip().lower()]
    return [t.strip().lower() for t in value.split(b",") if t.strip()]


def _check_block(block: bytes, pairs: list[tuple[bytes, bytes]], status: int) -> None:
    """Every line matched exactly once, no CR or LF outside CRLF (control bytes make a
    line not match: see _FIELD_RE)."""
    lines = block.count(b"\r\n")
    if len(pairs) != lines or block.count(b"\n") != lines or block.count(b"\r") != lines:
        raise ProtocolError(status, "malformed header field")


def _content_length(values: list[bytes], status: int) -> int:
    """RFC 9110 §8.6: one value, or a list of identical values; digits only."""
    if len(values) == 1:
        value = values[0]
        if value.isdigit() and len(value) <= 18:  # the common case: one plain number
            return int(value)
    seen: int | None = None
    for value in values:
        for part in value.split(b","):
            part = part.strip(b" \t")
            if _DIGITS_RE.fullmatch(part) is None:
                raise ProtocolError(status, "invalid Content-Length")
            n = int(part)
            if seen is not None and n != seen:
                raise ProtocolError(status, "conflicting Content-Length values")
            seen = n
    assert seen is not None
    return seen


# What a field name means to framing: 1 content-length, 2 transfer-encoding,
# 3 connection, 4 host, 5 upgrade, 6 other hop-by-hop (dropped), 7 expect. Kinds 2, 3, 5
# and 6 are not forwarded as received.
_KIND: Final = {
    b"content-length": 1,
    b"transfer-encoding": 2,
    b"connection": 3,
    b"host": 4,
    b"upgrade": 5,
    b"keep-alive": 6,
    b"proxy-connection": 6,
    b"te": 6,
    b"trailer": 6,
    b"expect": 7,
}


class _Scan:
    """The framing facts of one header block, gathered field by field as the lines are
    split (by llhttp calling ``on_header``, or by ``_scan_block``): names lower-cased,
    hop-by-hop fields left out of ``kept``."""

    __slots__ = ("cl", "conn", "count", "expect", "hosts", "kept", "te", "upgrade")

    def __init__(self) -> None:
        self.kept: list[tuple[bytes, bytes]] = []
        self.count = 0  # field lines, the dropped ones included (tune.http.maxhdr)
        self.cl: list[bytes] = []
        self.te: list[bytes] = []
        self.conn: list[bytes] = []
        self.hosts = 0
        self.upgrade: bytes | None = None
        self.expect: bytes | None = None

    def on_header(self, name: bytes, value: bytes) -> None:
        self.count += 1
        name = name.lower()
        # llhttp skips the OWS before a value but keeps the OWS after it
        value = value.rstrip(b" \t")
        kind = _KIND.get(name)
        if kind is None:
            self.kept.append((name, value))
        elif kind == 1:
            self.cl.append(value)
            self.kept.append((name, value))
        elif kind == 2:
            self.te.extend(_tokens(value))
        elif kind == 3:
            self.conn.extend(_tokens(value))
        elif kind == 4:
            self.hosts += 1
            self.kept.append((name, value))
        elif kind == 5:
            self.upgrade = value
        elif kind == 7:
            self.expect = value
            self.kept.append((name, value))

    def finish(self) -> _Scan:
        if self.conn:
            self.kept = _drop_named(self.kept, self.conn)
        return self


def _scan_block(block: bytes, limits: Limits, status: int) -> _Scan:
    """The field lines after the start line, checked strictly by ``_FIELD_RE``."""
    pairs = _FIELD_RE.findall(block)
    _check_block(block, pairs, status)
    if len(pairs) > limits.max_headers:
        raise ProtocolError(431 if status == 400 else status, "too many header fields")
    scan = _Scan()
    for name, value in pairs:
        scan.on_header(name, value)
    return scan.finish()


def _drop_named(fields: list[tuple[bytes, bytes]], conn: list[bytes]) -> list[tuple[bytes, bytes]]:
    """Drop the fields a Connection header names (RFC 9110 §7.6.1)."""
    extra = {t for t in conn if t not in _CONN_OPTIONS}
    extra.discard(b"content-length")  # framing is ours to decide, never dropped this way
    if not extra:
        return fields
    return [p for p in fields if p[0] not in extra]


def parse_request_head(head: bytes, limits: Limits = DEFAULT_LIMITS) -> Request:
    """Parse a request head (request line + fields, ending with the empty line's CRLF)."""
    eol = head.find(b"\r\n")
    line = head[:eol]
    if len(line) > limits.max_line:
        raise ProtocolError(414, "request line too long")
    m = _REQUEST_LINE_RE.fullmatch(line)
    if m is None:
        raise ProtocolError(400, "malformed request line")
    method, target, major, minor = m.groups()
    if major != b"1":
        raise ProtocolError(505, "HTTP version not supported")
    version = b"1.1" if minor != b"0" else b"1.0"
    scan = _scan_block(head[eol + 2 :], limits, 400)
    cl, te, conn, upgrade = scan.cl, scan.te, scan.conn, scan.upgrade
    req = Request(method, target, version, scan.kept)
    hosts = scan.hosts
    if version == b"1.1":
        if hosts != 1:
            raise ProtocolError(400, "HTTP/1.1 request needs exactly one Host field")
        if b"close" in conn:
            req.keep_alive = False
    else:
        req.keep_alive = b"keep-alive" in conn and b"close" not in conn
        if hosts > 1:
            raise ProtocolError(400, "several Host fields")
    if te:
        if version == b"1.0":
            raise ProtocolError(400, "Transfer-Encoding in an HTTP/1.0 request")
        if te != [b"chunked"]:
            raise ProtocolError(501, "unsupported transfer coding")
        if cl:
            # RFC 9112 §6.3 ¶3: a request smuggling vector; refusing is allowed.
            raise ProtocolError(400, "both Transfer-Encoding and Content-Length")
        req.chunked = True
        req.headers.append((b"transfer-encoding", b"chunked"))
    elif cl:
        n = _content_length(cl, 400)
        if limits.max_body is not None and n > limits.max_body:
            raise ProtocolError(413, "request body too large")
        req.content_length = n
    if upgrade is not None and b"upgrade" in conn:
        req.upgrade = upgrade
    if target[:1] not in (b"/", b"*") and method != b"CONNECT":
        _check_authority(target, req)
    if method == b"CONNECT":
        raise ProtocolError(501, "CONNECT is not supported by a reverse proxy")
    if scan.expect is not None and scan.expect.lower() == b"100-continue":
        req.expect_continue = True
    return req


def _check_authority(target: bytes, req: Request) -> None:
    """An absolute-form target's authority replaces Host (RFC 9112 §3.2.2); a Host that
    says otherwise would let a request be routed on one name and served on another."""
    sep = target.find(b"://")
    if sep <= 0:
        raise ProtocolError(400, "malformed request target")
    end = len(target)
    for c in b"/?#":
        i = target.find(bytes((c,)), sep + 3)
        if 0 <= i < end:
            end = i
    authority = target[sep + 3 : end].lower()
    host = req.header(b"host")
    if host is not None and host.lower() != authority:
        raise ProtocolError(400, "Host differs from the request target's authority")


def parse_response_head(head: bytes) -> Response:
    """Parse a response head; any fault is a 502 for the client."""
    eol = head.find(b"\r\n")
    m = _STATUS_LINE_RE.fullmatch(head[:eol])
    if m is None:
        raise ProtocolError(502, "malformed status line")
    major, minor, status, reason = m.groups()
    if major != b"1":
        raise ProtocolError(502, "bad response version")
    version = b"1.1" if minor != b"0" else b"1.0"
    scan = _scan_block(head[eol + 2 :], DEFAULT_LIMITS, 502)
    cl, te, conn, upgrade = scan.cl, scan.te, scan.conn, scan.upgrade
    resp = Response(int(status), reason or b"", version, scan.kept)
    if version == b"1.1":
        resp.keep_alive = b"close" not in conn
    else:
        resp.keep_alive = b"keep-alive" in conn and b"close" not in conn
    if te:
        if te[-1] == b"chunked" and te.count(b"chunked") == 1:
            resp.chunked = True
            # drop Content-Length: chunked wins (RFC 9112 §6.3 ¶3)
            resp.headers = [p for p in resp.headers if p[0] != b"content-length"]
            resp.headers.append((b"transfer-encoding", b", ".join(te)))
        else:
            resp.keep_alive = False  # length is "until close"
            resp.headers = [p for p in resp.headers if p[0] != b"content-length"]
            resp.headers.append((b"transfer-encoding", b", ".join(te)))
    elif cl:
        resp.content_length = _content_length(cl, 502)
    if upgrade is not None and resp.status == 101:
        resp.headers.append((b"upgrade", upgrade))
    return resp
