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

Heads are split at CRLF, and each line is checked by a regular expression and
classified once: lines repeat from message to message (``Host``, ``Server``,
``Content-Type``, ``Connection: keep-alive``, a status line ``HTTP/1.1 200 OK``...), so
what a line means — and the bytes it is forwarded as — is remembered by the line's exact
bytes in small bounded tables (``_LINES``, ``_REQUEST_LINES``, ``_STATUS_LINES``). A line
seen before costs one dictionary look-up instead of a regex match; only lines that
passed the checks are remembered, so the strictness is the regex's either way.
"""

from __future__ import annotations

import re
from typing import Any, Final

NEED_DATA: Final = "NEED_DATA"
END: Final = "END"
PAUSED: Final = "PAUSED"

# Reader states. (Final: compiled, a Final int is a C constant, where a module global
# set by unpacking ``range`` was a dictionary look-up at every use.)
_HEAD: Final = 0
_BODY_CL: Final = 1
_CHUNKED: Final = 2
_BODY_EOF: Final = 3
_DONE: Final = 4
_TUNNEL: Final = 5
# Sub-states while walking chunked framing (RFC 9112 §7.1).
_CH_SIZE: Final = 0
_CH_DATA: Final = 1
_CH_DATA_CRLF: Final = 2
_CH_TRAILER: Final = 3

_TCHAR = rb"[!#$%&'*+.^_`|~0-9A-Za-z-]"
# One field line: token ":" OWS value OWS. The value excludes CR/LF and the other
# forbidden controls (RFC 9110 §5.5), so a line holding one does not match.
_VCHAR = rb"[^\x00-\x08\x0a-\x1f\x7f]"
_FIELD = rb"(" + _TCHAR + rb"+):[ \t]*((?:" + _VCHAR + rb"*[^\x00-\x20\x7f])?)[ \t]*"
# A line of a head, its CRLF already cut off (fullmatch): what ``_field`` checks, with
# faster C string operations (tests/unit/http/test_h1_fast.py holds them to it).
_LINE_RE = re.compile(_FIELD)
# Lines of a block (trailers), anchored at line starts: a line that did not match, or a
# bare CR or LF, is found by comparing counts (_check_block).
_FIELD_RE = re.compile(rb"^" + _FIELD + rb"\r\n", re.MULTILINE)
# What ``_request_line`` checks, likewise.
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

    __slots__ = ("accept_invalid", "max_body", "max_head", "max_headers", "max_line")

    def __init__(
        self,
        max_line: int = 8192,
        max_head: int = 16384,
        max_headers: int = 101,
        max_body: int | None = None,
        accept_invalid: bool = False,
    ) -> None:
        self.max_line = max_line  # request line longer → 414
        self.max_head = max_head  # whole head longer → 431
        self.max_headers = max_headers  # more fields → 431
        self.max_body = max_body  # declared Content-Length above → 413
        # a target byte beyond ASCII is a 400, as in HAProxy, unless the frontend says
        # ``option accept-invalid-http-request``
        self.accept_invalid = accept_invalid


DEFAULT_LIMITS: Final = Limits()


class _Head:
    """What a request head and a response head share: the fields, the framing facts, and
    the bytes a parsed head is forwarded as (``_start``, and ``_wire``: one
    ``name: value\\r\\n`` per field), so that ``serialize_*`` joins them instead of writing
    every field again. Touching ``headers`` (even to read them, as the caller may then edit
    the list in place) drops ``_wire``, and the fields are written from the list."""

    __slots__ = (
        "_headers",
        "_start",
        "_wire",
        "chunked",
        "content_length",
        "keep_alive",
        "version",
    )

    def __init__(self, version: bytes, headers: list[tuple[bytes, bytes]]) -> None:
        self.version = version  # b"1.1" or b"1.0"
        self._headers = headers
        self._wire: list[bytes] | None = None
        self._start: bytes | None = None  # the start line to forward, CRLF included
        self.content_length: int | None = None
        self.chunked = False
        self.keep_alive = version == b"1.1"

    @property
    def headers(self) -> list[tuple[bytes, bytes]]:
        self._wire = None  # the list may be edited in place from here on
        return self._headers

    @headers.setter
    def headers(self, value: list[tuple[bytes, bytes]]) -> None:
        self._wire = None
        self._headers = value

    @property
    def fields(self) -> list[tuple[bytes, bytes]]:
        """``headers`` to read only (ACLs, captures, balancing): the forwarded lines stay usable."""
        return self._headers

    def _wire_parts(self, start: bytes) -> list[bytes]:
        """The start line and the field lines to forward: a parsed head's own lines when
        untouched since, else the fields written from the list."""
        wire = self._wire
        if wire is not None:
            return [start, *wire]
        if self._headers:
            return [start, b"\r\n".join(map(_JOIN_FIELD, self._headers)), b"\r\n"]
        return [start]


class Request(_Head):
    """A request head. ``headers`` are end-to-end fields plus the framing ones."""

    __slots__ = ("conn", "expect_continue", "method", "target", "upgrade")

    def __init__(
        self,
        method: bytes,
        target: bytes,
        version: bytes,
        headers: list[tuple[bytes, bytes]],
    ) -> None:
        _Head.__init__(self, version, headers)
        self.method = method
        self.target = target
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
        for n, v in self._headers:
            if n == name:
                return v
        return None


class Response(_Head):
    """A response head (interim 1xx ones included)."""

    __slots__ = ("reason", "status")

    def __init__(
        self, status: int, reason: bytes, version: bytes, headers: list[tuple[bytes, bytes]]
    ) -> None:
        _Head.__init__(self, version, headers)
        self.status = status
        self.reason = reason


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


# What a field name means to framing: 0 nothing (an end-to-end field), 1 content-length,
# 2 transfer-encoding, 3 connection, 4 host, 5 upgrade, 6 other hop-by-hop (dropped),
# 7 expect. Kinds 2, 3, 5 and 6 are not forwarded as received.
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
_NO_TOKENS: Final[list[bytes]] = []

# The bounded tables of lines seen before (see the module's docstring). A full table is
# emptied rather than tracked (lines that keep coming back are learnt again at once);
# longer lines (cookies, long targets) are rarely repeated and never kept.
_TABLE_SIZE: Final = 1024
_TABLE_LINE: Final = 256


class _Field:
    """One field line as received (its CRLF cut off), checked and classified."""

    __slots__ = ("drops", "kind", "length", "pair", "tokens", "value", "wire")

    def __init__(self, kind: int, name: bytes, value: bytes) -> None:
        self.kind = kind
        # (name lower-cased, value): what ``headers`` holds. Typed ``object`` so that
        # mypyc keeps the tuple as it is instead of building a new one at each use.
        self.pair: object = (name, value)
        self.wire = b"".join((name, b": ", value, b"\r\n"))  # what is forwarded
        # Transfer-Encoding codings and Connection options, lower-cased
        self.tokens = _tokens(value) if kind == 2 or kind == 3 else _NO_TOKENS
        # a Connection field naming other fields, to be dropped (RFC 9110 §7.6.1)
        self.drops = kind == 3 and bool(_named(self.tokens))
        # a Content-Length that is one plain number, else -1 (see _content_length)
        self.length = int(value) if kind == 1 and value.isdigit() and len(value) <= 18 else -1
        self.value = value


_LINES: Final[dict[bytes, _Field]] = {}


def _keeping(allowed: bytes) -> bytes:
    """A ``bytes.translate`` table that keeps the bytes allowed and changes the others:
    ``part.translate(table) == part`` says that ``part`` holds only bytes allowed (one C
    pass; CPython even returns ``part`` itself when nothing changed)."""
    return bytes(c if c in allowed else (c + 1) % 256 for c in range(256))


# The bytes a field name may hold (tchar, RFC 9110 §5.6.2), those a field line may hold
# after its colon (anything but the controls other than HTAB: RFC 9110 §5.5), and those
# of a request target (no control, no space: RFC 9112 §3.2).
_NAME_BYTES: Final = _keeping(
    b"!#$%&'*+-.^_`|~0123456789" + bytes(range(65, 91)) + bytes(range(97, 123))
)
_VALUE_BYTES: Final = _keeping(bytes(c for c in range(256) if c == 9 or 32 <= c != 127))
_TARGET_BYTES: Final = _keeping(bytes(c for c in range(33, 256) if c != 127))


def _field(line: bytes, status: int) -> _Field:
    """Check and classify a field line not seen before (and remember it). As ``_LINE_RE``
    (tests/unit/http/test_h1_fast.py compares them), in C string operations rather than
    a regex: a token, a colon, then no control byte but HTAB; OWS around the value."""
    colon = line.find(b":")
    name = line[:colon]
    rest = line[colon + 1 :]
    if colon <= 0 or name.translate(_NAME_BYTES) != name or rest.translate(_VALUE_BYTES) != rest:
        raise ProtocolError(status, "malformed header field")
    name = name.lower()
    field = _Field(_KIND.get(name, 0), name, rest.strip(b" \t"))
    if len(line) <= _TABLE_LINE:
        if len(_LINES) >= _TABLE_SIZE:
            _LINES.clear()
        _LINES[line] = field
    return field


def _named(conn: list[bytes]) -> set[bytes]:
    """The fields a Connection header names (to be dropped), framing ones excepted."""
    extra = {t for t in conn if t not in _CONN_OPTIONS}
    extra.discard(b"content-length")  # framing is ours to decide, never dropped this way
    return extra


# What ``_scan`` finds: the fields kept (as (name, value) pairs, shared with the tables),
# the lines to forward (None when the fields must be written again from the pairs), the
# Content-Length values, the length when one field holds one plain number (else -1),
# the transfer codings, the Connection options, the number of Host fields, the Upgrade
# and Expect values. A tuple: mypyc returns it as a C struct, nothing allocated.
_Scanned = tuple[
    list[Any],
    "list[bytes] | None",
    "list[bytes] | None",
    int,
    list[bytes],
    list[bytes],
    int,
    "bytes | None",
    "bytes | None",
]


def _scan(lines: list[bytes], limits: Limits, status: int) -> _Scanned:
    """The field lines: ``lines[1:]`` of a head split at CRLF, the last one empty (the
    head ends with a CRLF). Names lower-cased, hop-by-hop fields left out."""
    kept: list[Any] = []
    wire: list[bytes] = []
    cl: list[bytes] | None = None
    length = -1
    te = conn = _NO_TOKENS  # never edited in place: the tables share these lists
    hosts = 0
    upgrade: bytes | None = None
    expect: bytes | None = None
    drops = False
    last = len(lines) - 1
    table = _LINES
    for i in range(1, last):
        line = lines[i]
        f = table.get(line)
        if f is None:
            f = _field(line, status)
        kind = f.kind
        if kind == 0:
            kept.append(f.pair)
            wire.append(f.wire)
        elif kind == 1:
            if cl is None:
                cl = [f.value]
                length = f.length
            else:
                cl.append(f.value)
                length = -1
            kept.append(f.pair)
            wire.append(f.wire)
        elif kind == 2:
            te = f.tokens if not te else te + f.tokens
        elif kind == 3:
            conn = f.tokens if not conn else conn + f.tokens
            drops = drops or f.drops
        elif kind == 4:
            hosts += 1
            kept.append(f.pair)
            wire.append(f.wire)
        elif kind == 5:
            upgrade = f.value
        elif kind == 7:
            expect = f.value
            kept.append(f.pair)
            wire.append(f.wire)
    if lines[last] or last < 1:  # a head not ending with CRLF (never from the Reader)
        raise ProtocolError(status, "malformed header field")
    if last - 1 > limits.max_headers:
        raise ProtocolError(431 if status == 400 else status, "too many header fields")
    if drops:
        extra = _named(conn)
        kept = [p for p in kept if p[0] not in extra]
        return kept, None, cl, length, te, conn, hosts, upgrade, expect
    return kept, wire, cl, length, te, conn, hosts, upgrade, expect


class _RequestLine:
    """A request line as received, checked (see ``_REQUEST_LINES``)."""

    __slots__ = ("ascii", "method", "start", "target", "version")

    def __init__(self, method: bytes, target: bytes, version: bytes) -> None:
        self.method = method
        self.target = target
        self.version = version
        self.ascii = target.isascii()
        self.start = method + b" " + target + b" HTTP/" + version + b"\r\n"


_REQUEST_LINES: Final[dict[bytes, _RequestLine]] = {}


def _request_line(line: bytes) -> _RequestLine:
    """Check a request line not seen before (and remember it). As ``_REQUEST_LINE_RE``
    (tests/unit/http/test_h1_fast.py compares them), in C string operations."""
    parts = line.split(b" ")
    if len(parts) != 3:
        raise ProtocolError(400, "malformed request line")
    method, target, proto = parts
    if (
        not method
        or method.translate(_NAME_BYTES) != method
        or not target
        or target.translate(_TARGET_BYTES) != target
        or len(proto) != 8
        or not proto.startswith(b"HTTP/")
        or not 48 <= proto[5] <= 57  # a digit
        or proto[6] != 46  # "."
        or not 48 <= proto[7] <= 57
    ):
        raise ProtocolError(400, "malformed request line")
    if proto[5] != 49:  # "1"
        raise ProtocolError(505, "HTTP version not supported")
    rl = _RequestLine(method, target, b"1.1" if proto[7] != 48 else b"1.0")
    if len(line) <= _TABLE_LINE:
        if len(_REQUEST_LINES) >= _TABLE_SIZE:
            _REQUEST_LINES.clear()
        _REQUEST_LINES[line] = rl
    return rl


def parse_request_head(head: bytes, limits: Limits = DEFAULT_LIMITS) -> Request:
    """Parse a request head (request line + fields, ending with the last field's CRLF)."""
    lines = head.split(b"\r\n")
    line = lines[0]
    if len(line) > limits.max_line:
        raise ProtocolError(414, "request line too long")
    rl = _REQUEST_LINES.get(line)
    if rl is None:
        rl = _request_line(line)
    if not rl.ascii and not limits.accept_invalid:
        raise ProtocolError(400, "byte beyond ASCII in the request target")
    kept, wire, cl, length, te, conn, hosts, upgrade, expect = _scan(lines, limits, 400)
    method, target, version = rl.method, rl.target, rl.version
    req = Request(method, target, version, kept)
    req._start = rl.start
    req._wire = wire
    if version == b"1.1":
        if hosts != 1:
            raise ProtocolError(400, "HTTP/1.1 request needs exactly one Host field")
        if conn and b"close" in conn:
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
        req._headers.append((b"transfer-encoding", b"chunked"))
        if wire is not None:
            wire.append(b"transfer-encoding: chunked\r\n")
    elif cl:
        n = length if length >= 0 else _content_length(cl, 400)
        if limits.max_body is not None and n > limits.max_body:
            raise ProtocolError(413, "request body too large")
        req.content_length = n
    if upgrade is not None and b"upgrade" in conn:
        req.upgrade = upgrade
    if target[:1] not in (b"/", b"*") and method != b"CONNECT":
        _check_authority(target, req)
    if method == b"CONNECT":
        raise ProtocolError(501, "CONNECT is not supported by a reverse proxy")
    if expect is not None and expect.lower() == b"100-continue":
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


class _StatusLine:
    """A status line as received, checked (see ``_STATUS_LINES``)."""

    __slots__ = ("reason", "start", "status", "version")

    def __init__(self, status: int, reason: bytes, version: bytes) -> None:
        self.status = status
        self.reason = reason
        self.version = version
        # always HTTP/1.1 towards the client (as HAProxy answers)
        self.start = b"HTTP/1.1 %d " % status + reason + b"\r\n"


_STATUS_LINES: Final[dict[bytes, _StatusLine]] = {}


def _status_line(line: bytes) -> _StatusLine:
    m = _STATUS_LINE_RE.fullmatch(line)
    if m is None:
        raise ProtocolError(502, "malformed status line")
    major, minor, status, reason = m.groups()
    if major != b"1":
        raise ProtocolError(502, "bad response version")
    sl = _StatusLine(int(status), reason or b"", b"1.1" if minor != b"0" else b"1.0")
    if len(line) <= _TABLE_LINE:
        if len(_STATUS_LINES) >= _TABLE_SIZE:
            _STATUS_LINES.clear()
        _STATUS_LINES[line] = sl
    return sl


def parse_response_head(head: bytes) -> Response:
    """Parse a response head; any fault is a 502 for the client."""
    lines = head.split(b"\r\n")
    sl = _STATUS_LINES.get(lines[0])
    if sl is None:
        sl = _status_line(lines[0])
    kept, wire, cl, length, te, conn, _, upgrade, _ = _scan(lines, DEFAULT_LIMITS, 502)
    version = sl.version
    resp = Response(sl.status, sl.reason, version, kept)
    resp._start = sl.start
    resp._wire = wire
    if version == b"1.1":
        resp.keep_alive = not conn or b"close" not in conn
    else:
        resp.keep_alive = b"keep-alive" in conn and b"close" not in conn
    if te:
        if te[-1] != b"chunked" or te.count(b"chunked") != 1:
            resp.keep_alive = False  # length is "until close"
        else:
            resp.chunked = True
        if cl:  # drop Content-Length: chunked wins (RFC 9112 §6.3 ¶3)
            resp._headers = [p for p in resp._headers if p[0] != b"content-length"]
            resp._wire = wire = None
        coding = b", ".join(te)
        resp._headers.append((b"transfer-encoding", coding))
        if wire is not None:
            wire.append(b"transfer-encoding: " + coding + b"\r\n")
    elif cl:
        resp.content_length = length if length >= 0 else _content_length(cl, 502)
    if upgrade is not None and resp.status == 101:
        resp._headers.append((b"upgrade", upgrade))
        if wire is not None:
            wire.append(b"upgrade: " + upgrade + b"\r\n")
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
        if self.is_request and len(buf) > 1 and buf[0] == 13 and buf[1] == 10:
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
_JOIN_FIELD = b": ".join


def serialize_request(
    req: Request, connection: bytes | None, extra: list[tuple[bytes, bytes]] | None = None
) -> bytes:
    """A request head for the next hop; ``connection`` is its Connection value, if any."""
    start = req._start
    if start is None:
        start = req.method + b" " + req.target + b" HTTP/" + req.version + b"\r\n"
    parts = req._wire_parts(start)
    if extra:
        parts += (b"\r\n".join(map(_JOIN_FIELD, extra)), b"\r\n")
    if req.upgrade is not None:
        parts += (b"connection: upgrade\r\nupgrade: ", req.upgrade, b"\r\n")
    elif connection is not None:
        parts += (b"connection: ", connection, b"\r\n")
    parts.append(b"\r\n")
    return b"".join(parts)


def serialize_response(resp: Response, connection: bytes | None) -> bytes:
    """A response head for the client, always as HTTP/1.1 (as HAProxy answers)."""
    start = resp._start
    if start is None:
        start = b"HTTP/1.1 %d " % resp.status + resp.reason + b"\r\n"
    parts = resp._wire_parts(start)
    if resp.status == 101:
        parts.append(b"connection: upgrade\r\n")
    elif connection is not None:
        parts += (b"connection: ", connection, b"\r\n")
    parts.append(b"\r\n")
    return b"".join(parts)
