"""HTTP/1.x message framing, sans-I/O: bytes in, heads and raw body slices out.

Theory of operation: a ``Reader`` reads one direction of one connection (requests from
a client, or responses from a server). ``feed(data)`` appends bytes; ``next_event()``
returns, one at a time:

* a ``Request`` or ``Response`` head (parsed strictly, hop-by-hop fields removed);
* ``bytes``: a slice of the message body *as it was on the wire* (for chunked bodies,
  with the chunk framing still in it), so a proxy forwards it untouched and never
  re-encodes; the reader only walks the framing to find where the message ends;
* ``END`` when the message is complete, after which the reader stays ``PAUSED`` until
  the caller says ``start_next()`` (a proxy answers one request at a time; pipelined
  bytes wait in the buffer);
* ``NEED_DATA`` when it needs more bytes.

A malformed message raises ``ProtocolError`` carrying the status a proxy answers with
(400, 413, 414, 431, 501, 505 for requests; 502 for responses). Body lengths follow
RFC 9112 §6.3. The reader never reads a clock: timeouts belong to the adapter.

Names of header fields are lower-cased once here (as HAProxy does on HTTP/1 output),
values are kept byte for byte.
"""

from __future__ import annotations

import re
from typing import Any, Final

# llhttp through httptools (a dependency): splits field lines in C (see _scan_fast)
from httptools import HttpParserError as _HttpParserError
from httptools import HttpParserUpgrade as _HttpParserUpgrade
from httptools import HttpRequestParser as _RequestParser
from httptools import HttpResponseParser as _ResponseParser

NEED_DATA: Final = "NEED_DATA"
END: Final = "END"
PAUSED: Final = "PAUSED"

# Reader states.
_HEAD, _BODY_CL, _CHUNKED, _BODY_EOF, _DONE, _TUNNEL = range(6)
# Sub-states while walking chunked framing (RFC 9112 §7.1).
_CH_SIZE, _CH_DATA, _CH_DATA_CRLF, _CH_TRAILER = range(4)

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


class ProtocolError(Exception):
    """The peer broke HTTP/1.x; ``status`` is what a proxy answers with."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail


class Limits:
    """Size limits applied while reading requests (HAProxy's tune.bufsize, maxhdr)."""

    __slots__ = ("max_body", "max_head", "max_headers", "max_line")

    def __init__(
        self,
        max_line: int = 8192,
        max_head: int = 16384,
        max_headers: int = 101,
        max_body: int | None = None,
    ) -> None:
        self.max_line = max_line  # request line longer → 414
        self.max_head = max_head  # whole head longer → 431
        self.max_headers = max_headers  # more fields → 431
        self.max_body = max_body  # declared Content-Length above → 413


DEFAULT_LIMITS: Final = Limits()


class Request:
    """A request head. ``headers`` are end-to-end fields plus the framing ones."""

    __slots__ = (
        "chunked",
        "conn",
        "content_length",
        "expect_continue",
        "headers",
        "keep_alive",
        "method",
        "target",
        "upgrade",
        "version",
    )

    def __init__(
        self,
        method: bytes,
        target: bytes,
        version: bytes,
        headers: list[tuple[bytes, bytes]],
    ) -> None:
        self.method = method
        self.target = target
        self.version = version  # b"1.1" or b"1.0"
        self.headers = headers
        self.content_length: int | None = None
        self.chunked = False
        self.keep_alive = version == b"1.1"
        self.upgrade: bytes | None = None  # the Upgrade value when Connection: upgrade
        self.expect_continue = False
        # facts about the client connection for fetches such as ssl_fc (a TlsInfo);
        # set by the adapter, None on plain connections
        self.conn: Any = None

    @property
    def has_body(self) -> bool:
        return self.chunked or bool(self.content_length)

    @property
    def path(self) -> bytes:
        """The path part of the target (origin-form or absolute-form), without query."""
        t = self.target
        if t[:1] != b"/":
            i = t.find(b"://")
            if i >= 0:
                j = t.find(b"/", i + 3)
                t = t[j:] if j >= 0 else b"/"
        q = t.find(b"?")
        return t if q < 0 else t[:q]

    def header(self, name: bytes) -> bytes | None:
        """The first value of a (lower-case) field, or None."""
        for n, v in self.headers:
            if n == name:
                return v
        return None


class Response:
    """A response head (interim 1xx ones included)."""

    __slots__ = (
        "chunked",
        "content_length",
        "headers",
        "keep_alive",
        "reason",
        "status",
        "version",
    )

    def __init__(
        self, status: int, reason: bytes, version: bytes, headers: list[tuple[bytes, bytes]]
    ) -> None:
        self.status = status
        self.reason = reason
        self.version = version
        self.headers = headers
        self.content_length: int | None = None
        self.chunked = False
        self.keep_alive = version == b"1.1"


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


def _scan_fast(parser: Any, head: bytes, limits: Limits) -> _Scan | None:
    """The field lines split by llhttp (C, through httptools), or None to let
    ``_scan_block`` decide.

    llhttp in its default strict mode refuses every field line ``_FIELD_RE`` refuses
    (tokens for names; no control byte but HTAB in values; CRLF only; no obs-fold; no
    space before the colon or at a line start; tests/unit/http/test_h1_fast.py checks
    the two agree on generated heads), and some that lbcore accepts or refuses with a
    more precise status (a repeated identical Content-Length, unknown methods,
    Content-Length with Transfer-Encoding...). So its "yes" is trusted and its "no" is
    never an answer: the head is then parsed again by the Python code, which gives the
    status. It only splits the lines: the start line, the limits and what the fields
    mean to framing stay lbcore's own code.
    """
    if b"\r\n\r\n" in head or not head.endswith(b"\r\n"):
        return None  # llhttp would stop at the empty line (the Reader never cuts so)
    scan = _Scan()
    try:
        parser(scan).feed_data(head + b"\r\n")
    except _HttpParserUpgrade:  # Connection: upgrade; every field was delivered
        pass
    except _HttpParserError:
        return None
    if scan.count > limits.max_headers:
        return None
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
    scan = _scan_fast(_RequestParser, head, limits)
    if scan is None:
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
    scan = _scan_fast(_ResponseParser, head, DEFAULT_LIMITS)
    if scan is None:
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


class Reader:
    """Reads a stream of requests (``is_request``) or responses, one message at a time."""

    __slots__ = (
        "_buf",
        "_ch_state",
        "_end_pending",
        "_eof",
        "_remaining",
        "_state",
        "expect_head",
        "is_request",
        "limits",
        "upgrade_requested",
    )

    def __init__(self, is_request: bool, limits: Limits = DEFAULT_LIMITS) -> None:
        self.is_request = is_request
        self.limits = limits
        self._buf = b""
        self._state = _HEAD
        self._ch_state = _CH_SIZE
        self._remaining = 0
        self._end_pending = False
        self._eof = False
        # Response readers: set by the caller before each response is read.
        self.expect_head = False  # the request was HEAD: no body whatever the fields say
        self.upgrade_requested = False  # a 101 switches to tunnel mode

    @property
    def buffered(self) -> int:
        """Bytes received but not yet returned (pipelined requests, partial lines)."""
        return len(self._buf)

    @property
    def in_tunnel(self) -> bool:
        return self._state == _TUNNEL

    def is_until_close(self) -> bool:
        """The response body being read ends when the server closes (no length)."""
        return self._state == _BODY_EOF

    @property
    def at_message_start(self) -> bool:
        """Nothing of the next message was received yet (idle keep-alive)."""
        return self._state == _HEAD and not self._buf

    def feed(self, data: bytes) -> None:
        if self._buf:
            self._buf += data
        else:
            self._buf = data

    def feed_eof(self) -> None:
        self._eof = True

    def start_next(self) -> None:
        """After ``END``: read the next message (its bytes may already be buffered)."""
        if self._state == _DONE:
            self._state = _HEAD

    def take_buffer(self) -> bytes:
        """Bytes buffered beyond the last message (e.g. early tunnel data)."""
        buf, self._buf = self._buf, b""
        return buf

    def next_event(self) -> object:
        """The next head, body slice, ``END``, ``NEED_DATA`` or ``PAUSED``."""
        state = self._state
        if self._end_pending:
            self._end_pending = False
            self._state = _DONE
            return END
        if state == _HEAD:
            return self._read_head()
        if state == _DONE:
            return PAUSED
        buf = self._buf
        if state == _BODY_CL:
            if not buf:
                return self._need_body()
            n = self._remaining
            if len(buf) <= n:
                self._buf = b""
                self._remaining = n - len(buf)
                if self._remaining == 0:
                    self._end_pending = True
                return buf
            self._buf = buf[n:]
            self._remaining = 0
            self._end_pending = True
            return buf[:n]
        if state == _CHUNKED:
            if not buf:
                return self._need_body()
            return self._walk_chunks(buf)
        if state in (_TUNNEL, _BODY_EOF):
            if buf:
                self._buf = b""
                return buf
            if self._eof and state == _BODY_EOF:
                self._state = _DONE
                return END
            return NEED_DATA
        raise AssertionError(state)  # pragma: no cover

    def _need_body(self) -> object:
        if self._eof:
            raise ProtocolError(400 if self.is_request else 502, "connection closed mid-body")
        return NEED_DATA

    def _read_head(self) -> object:
        buf = self._buf
        if self.is_request and buf.startswith(b"\r\n"):
            # RFC 9112 §2.2: ignore empty lines before a request line.
            buf = self._buf = buf.lstrip(b"\r\n")
        end = buf.find(b"\r\n\r\n")
        limits = self.limits
        if end < 0:
            if self.is_request and len(buf) > limits.max_line:
                eol = buf.find(b"\r\n")  # a line already too long is 414 however it ends
                if eol < 0 or eol > limits.max_line:
                    raise ProtocolError(414, "request line too long")
            if len(buf) > limits.max_head:
                if self.is_request and buf.find(b"\r\n") > limits.max_line:
                    raise ProtocolError(414, "request line too long")
                raise ProtocolError(431 if self.is_request else 502, "header section too large")
            if self._eof and buf:
                raise ProtocolError(400 if self.is_request else 502, "closed mid-head")
            return NEED_DATA
        if end + 4 > limits.max_head:
            if self.is_request and buf.find(b"\r\n") > limits.max_line:
                raise ProtocolError(414, "request line too long")  # the URI, not the fields
            raise ProtocolError(431 if self.is_request else 502, "header section too large")
        head = buf[: end + 2]
        self._buf = buf[end + 4 :]
        if self.is_request:
            req = parse_request_head(head, limits)
            if req.chunked:
                self._enter_chunked()
            elif req.content_length:
                self._state = _BODY_CL
                self._remaining = req.content_length
            else:
                self._end_pending = True
            return req
        resp = parse_response_head(head)
        status = resp.status
        if status < 200:
            if status == 101 and self.upgrade_requested:
                self._state = _TUNNEL
            # other interim responses: the final one follows; stay in _HEAD
            return resp
        if self.expect_head or status == 204 or status == 304:
            self._end_pending = True
        elif resp.chunked:
            self._enter_chunked()
        elif resp.content_length is not None:
            if resp.content_length:
                self._state = _BODY_CL
                self._remaining = resp.content_length
            else:
                self._end_pending = True
        else:
            self._state = _BODY_EOF
            resp.keep_alive = False
        return resp

    def _enter_chunked(self) -> None:
        self._state = _CHUNKED
        self._ch_state = _CH_SIZE
        self._remaining = 0

    def _walk_chunks(self, buf: bytes) -> object:
        """Walk chunk framing from the start of ``buf``; return the raw bytes walked."""
        pos = 0
        size = len(buf)
        st = self._ch_state
        status = 400 if self.is_request else 502
        while pos < size:
            if st == _CH_DATA:
                take = min(self._remaining, size - pos)
                pos += take
                self._remaining -= take
                if self._remaining == 0:
                    st = _CH_DATA_CRLF
                continue
            eol = buf.find(b"\r\n", pos)
            if st == _CH_DATA_CRLF:
                if size - pos < 2:
                    break
                if buf[pos : pos + 2] != b"\r\n":
                    raise ProtocolError(status, "chunk data not followed by CRLF")
                pos += 2
                st = _CH_SIZE
                continue
            if eol < 0:
                if buf.find(b"\n", pos) >= 0:
                    # a size or trailer line ended by a bare LF: framing in doubt
                    raise ProtocolError(status, "bare LF in chunk framing")
                if size - pos > 4096:
                    raise ProtocolError(status, "chunk size or trailer line too long")
                break
            line = buf[pos:eol]
            pos = eol + 2
            if st == _CH_SIZE:
                m = _CHUNK_SIZE_RE.fullmatch(line)
                if m is None:
                    raise ProtocolError(status, "invalid chunk size line")
                n = int(m.group(1), 16)
                if n == 0:
                    st = _CH_TRAILER
                else:
                    self._remaining = n
                    st = _CH_DATA
            else:  # trailer section: field lines until an empty one
                if not line:
                    self._end_pending = True
                    self._ch_state = _CH_SIZE
                    self._buf = buf[pos:]
                    return buf[:pos]
                trailer = line + b"\r\n"
                _check_block(trailer, _FIELD_RE.findall(trailer), status)
        self._ch_state = st
        if pos == size:
            self._buf = b""
            return buf
        if pos == 0:
            return self._need_body()
        self._buf = buf[pos:]
        return buf[:pos]


# ``b": ".join`` mapped over (name, value) pairs writes a whole field block in C, with
# no Python bytecode per field.
_FIELD = b": ".join


def serialize_request(
    req: Request, connection: bytes | None, extra: list[tuple[bytes, bytes]] | None = None
) -> bytes:
    """A request head for the next hop; ``connection`` is its Connection value, if any."""
    parts = [req.method, b" ", req.target, b" HTTP/", req.version, b"\r\n"]
    if req.headers:
        parts += (b"\r\n".join(map(_FIELD, req.headers)), b"\r\n")
    if extra:
        parts += (b"\r\n".join(map(_FIELD, extra)), b"\r\n")
    if req.upgrade is not None:
        parts += (b"connection: upgrade\r\nupgrade: ", req.upgrade, b"\r\n")
    elif connection is not None:
        parts += (b"connection: ", connection, b"\r\n")
    parts.append(b"\r\n")
    return b"".join(parts)


def serialize_response(resp: Response, connection: bytes | None) -> bytes:
    """A response head for the client, always as HTTP/1.1 (as HAProxy answers)."""
    parts = [b"HTTP/1.1 %d " % resp.status, resp.reason, b"\r\n"]
    if resp.headers:
        parts += (b"\r\n".join(map(_FIELD, resp.headers)), b"\r\n")
    if resp.status == 101:
        parts.append(b"connection: upgrade\r\n")
    elif connection is not None:
        parts += (b"connection: ", connection, b"\r\n")
    parts.append(b"\r\n")
    return b"".join(parts)
