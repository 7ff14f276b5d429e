"""The hostile-request table: what each proxy must answer, and why they differ.

Each ``Case`` is one request on a fresh connection. ``lbcore`` is the outcome lbcore
must give; ``haproxy`` the one HAProxy 2.6 gives on the same config, when it differs,
with ``why`` explaining the difference (so the table lists differences rather than
hiding them). An outcome is ``(status, closed)``: the answer's status (None: nothing
answered) and whether the connection is closed afterwards. The recording backend sees
the request only when the expected status is 200 (the
request was accepted and forwarded); for every refusal it must see nothing at all.
"""

from __future__ import annotations

from dataclasses import dataclass

H = b"Host: h\r\n"


@dataclass(frozen=True)
class Case:
    id: str
    raw: bytes
    lbcore: tuple[int | None, bool]
    haproxy: tuple[int | None, bool] | None = None  # None: same as lbcore
    why: str = ""

    @property
    def expected_haproxy(self) -> tuple[int | None, bool]:
        return self.haproxy if self.haproxy is not None else self.lbcore


BAD = (400, True)

CASES: list[Case] = [
    # --- Content-Length / Transfer-Encoding framing (RFC 9112 §6.3) ---
    Case(
        "cl+te",
        b"POST / HTTP/1.1\r\n" + H + b"Content-Length: 4\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        BAD,
        haproxy=(200, True),
        why="RFC 9112 §6.3 lets a proxy either refuse or drop Content-Length, forward "
        "chunked and close afterwards; HAProxy does the latter, lbcore refuses: a "
        "smuggling vector is never worth forwarding.",
    ),
    Case(
        "cl+te-reversed",
        b"POST / HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked\r\n"
        b"Content-Length: 4\r\n\r\n0\r\n\r\n",
        BAD,
        haproxy=(200, True),
        why="as cl+te, fields in the other order: the same smuggling vector, the same answers.",
    ),
    Case(
        "two-cl-differ",
        b"POST / HTTP/1.1\r\n" + H + b"Content-Length: 4\r\nContent-Length: 5\r\n\r\nabcde",
        BAD,
    ),
    Case("cl-list-differ", b"POST / HTTP/1.1\r\n" + H + b"Content-Length: 4, 5\r\n\r\nabcde", BAD),
    Case("cl-negative", b"POST / HTTP/1.1\r\n" + H + b"Content-Length: -1\r\n\r\n", BAD),
    Case("cl-plus", b"POST / HTTP/1.1\r\n" + H + b"Content-Length: +4\r\n\r\nabcd", BAD),
    Case("cl-hex", b"POST / HTTP/1.1\r\n" + H + b"Content-Length: 0x4\r\n\r\nabcd", BAD),
    Case("cl-empty", b"POST / HTTP/1.1\r\n" + H + b"Content-Length:\r\n\r\n", BAD),
    Case(
        "cl-absurd",
        b"POST / HTTP/1.1\r\n" + H + b"Content-Length: 99999999999999999999999\r\n\r\n",
        BAD,
    ),
    Case(
        "te-chunked-identity",
        b"POST / HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked, identity\r\n\r\n0\r\n\r\n",
        (501, True),
        haproxy=BAD,
        why="chunked not last: lbcore says 501 (a coding it does not "
        "implement after chunked), HAProxy 400; both refuse and close.",
    ),
    Case(
        "te-identity",
        b"POST / HTTP/1.1\r\n" + H + b"Transfer-Encoding: identity\r\n\r\n",
        (501, True),
        haproxy=BAD,
        why="identity is not a transfer coding any more (RFC 9112); 501 vs 400, both refuse.",
    ),
    Case(
        "te-gzip-chunked",
        b"POST / HTTP/1.1\r\n" + H + b"Transfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n",
        (501, True),
        haproxy=(422, True),
        why="final chunked makes the framing sound, but neither proxy forwards a coding "
        "it does not implement: lbcore answers 501 (RFC 9112 §6.1), HAProxy 2.6 422.",
    ),
    Case(
        "te-chunked-twice",
        b"POST / HTTP/1.1\r\n"
        + H
        + b"Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        (501, True),
        haproxy=BAD,
        why="chunked applied twice is forbidden (RFC 9112 §6.1): both refuse and close.",
    ),
    Case(
        "te-xchunked",
        b"POST / HTTP/1.1\r\n" + H + b"Transfer-Encoding: xchunked\r\n\r\n",
        (501, True),
        haproxy=BAD,
        why="an unknown coding: lbcore says 501 (not implemented), HAProxy 400; "
        "both refuse and close.",
    ),
    Case(
        "te-http10",
        b"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        BAD,
        haproxy=(200, True),
        why="RFC 9112 §6.1: Transfer-Encoding in an HTTP/1.0 message means faulty "
        "framing; HAProxy forwards it and closes, lbcore refuses it outright.",
    ),
    # --- field syntax ---
    Case(
        "obs-fold",
        b"GET / HTTP/1.1\r\n" + H + b"X-A: a\r\n b\r\n\r\n",
        BAD,
        haproxy=(200, False),
        why="RFC 9112 §5.2 lets a proxy replace obs-fold with spaces (HAProxy does) or "
        "refuse with 400 (lbcore): one parser fewer to disagree with downstream.",
    ),
    Case("space-before-colon", b"GET / HTTP/1.1\r\n" + H + b"X-A : a\r\n\r\n", BAD),
    Case(
        "space-before-colon-cl", b"POST / HTTP/1.1\r\n" + H + b"Content-Length : 4\r\n\r\nabcd", BAD
    ),
    Case("bare-cr-in-value", b"GET / HTTP/1.1\r\n" + H + b"X-A: a\rb\r\n\r\n", BAD),
    Case(
        "bare-lf-line-end",
        b"GET / HTTP/1.1\r\n" + H + b"X-A: a\nX-B: b\r\n\r\n",
        BAD,
        haproxy=(200, False),
        why="RFC 9112 §2.2 lets a recipient accept a bare LF as a line end; HAProxy "
        "does and re-emits CRLF, lbcore refuses (servers that split on CR would not "
        "agree on where the field ends).",
    ),
    Case(
        "nul-in-value",
        b"GET / HTTP/1.1\r\n" + H + b"X-A: a\x00b\r\n\r\n",
        BAD,
        haproxy=(200, False),
        why="RFC 9110 §5.5: a recipient MUST reject a NUL in a field value or replace "
        "it with SP. HAProxy 2.6.12 forwards the NUL as is; lbcore rejects.",
    ),
    Case("nul-in-name", b"GET / HTTP/1.1\r\n" + H + b"X-\x00A: a\r\n\r\n", BAD),
    Case("no-colon", b"GET / HTTP/1.1\r\n" + H + b"Bad Header\r\n\r\n", BAD),
    Case("empty-name", b"GET / HTTP/1.1\r\n" + H + b": a\r\n\r\n", BAD),
    Case(
        "no-host-11",
        b"GET / HTTP/1.1\r\nX-A: a\r\n\r\n",
        BAD,
        haproxy=(200, False),
        why="RFC 9112 §3.2: a server MUST answer 400 to an HTTP/1.1 request without "
        "Host; HAProxy leaves that to the server, lbcore enforces it at the edge.",
    ),
    Case("two-hosts", b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", BAD),
    # --- chunked bodies ---
    Case(
        "chunk-size-not-hex",
        b"POST / HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked\r\n\r\nzz\r\n",
        BAD,
    ),
    Case(
        "chunk-size-negative",
        b"POST / HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked\r\n\r\n-1\r\n",
        BAD,
    ),
    Case(
        "chunk-size-huge",
        b"POST / HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked\r\n\r\nfffffffffffffffff\r\n",
        BAD,
    ),
    Case(
        "chunk-ext-bare-cr",
        b"POST / HTTP/1.1\r\n"
        + H
        + b"Transfer-Encoding: chunked\r\n\r\n4;a\rb\r\nabcd\r\n0\r\n\r\n",
        BAD,
    ),
    Case(
        "chunk-missing-crlf",
        b"POST / HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked\r\n\r\n4\r\nabcdXX0\r\n\r\n",
        BAD,
    ),
    Case(
        "chunk-lf-only",
        b"POST / HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked\r\n\r\n4\nabcd\n0\n\n",
        BAD,
        haproxy=(200, False),
        why="as bare-lf-line-end, in chunk framing: HAProxy accepts LF and re-encodes "
        "the chunks with CRLF; lbcore forwards framing untouched, so it must refuse.",
    ),
    # --- request line ---
    Case("http09", b"GET /\r\n\r\n", BAD),
    Case(
        "version-2",
        b"GET / HTTP/2.0\r\n" + H + b"\r\n",
        (505, True),
        haproxy=(200, False),
        why="HAProxy 2.6 forwards an 'HTTP/2.0' request line to the server as HTTP/1.1; "
        "lbcore answers 505 (RFC 9110 §15.6.6): HTTP/2 has no text request line.",
    ),
    Case("version-garbage", b"GET / HTTP/1.x\r\n" + H + b"\r\n", BAD),
    # bytes beyond ASCII: refused in the target (both, without option
    # accept-invalid-http-request), accepted as obs-text in a field value (RFC 9110 §5.5)
    Case("target-latin1", b"GET /caf\xe9 HTTP/1.1\r\n" + H + b"\r\n", BAD),
    Case("target-utf8", b"GET /caf\xc3\xa9 HTTP/1.1\r\n" + H + b"\r\n", BAD),
    Case("value-obs-text", b"GET / HTTP/1.1\r\n" + H + b"X-A: \xe9t\xc3\xa9\r\n\r\n", (200, False)),
    Case("version-lower", b"GET / http/1.1\r\n" + H + b"\r\n", BAD),
    Case("method-invalid", b"G@T / HTTP/1.1\r\n" + H + b"\r\n", BAD),
    Case(
        "method-space",
        b"GET  / HTTP/1.1\r\n" + H + b"\r\n",
        BAD,
        haproxy=(200, False),
        why="RFC 9112 §3 allows parsing on whitespace runs (HAProxy does); lbcore "
        "requires single spaces, as the grammar says.",
    ),
    Case("target-space", b"GET /a b HTTP/1.1\r\n" + H + b"\r\n", BAD),
    Case("target-ctl", b"GET /a\x01b HTTP/1.1\r\n" + H + b"\r\n", BAD),
    Case(
        "connect",
        b"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n",
        (501, True),
        haproxy=(200, False),
        why="HAProxy forwards CONNECT to the server as any method; lbcore, a reverse "
        "proxy, refuses it with 501 rather than open a tunnel to a backend.",
    ),
    # RFC 9112 §3.2.2: the authority of an absolute-form target replaces Host; a Host
    # that disagrees would let routing (hdr(host) ACLs) and the server see two names.
    Case("absolute-form-other-host", b"GET http://other/x HTTP/1.1\r\nHost: h\r\n\r\n", BAD),
    Case("absolute-form-same-host", b"GET http://h/x HTTP/1.1\r\nHost: h\r\n\r\n", (200, False)),
    # Sane neighbours of the hostile cases: accepted by both, and forwarded.
    Case(
        "cl-duplicate-same",
        b"POST / HTTP/1.1\r\n" + H + b"Content-Length: 4\r\nContent-Length: 4\r\n\r\nabcd",
        (200, False),
    ),
    Case(
        "chunk-ext-ok",
        b"POST / HTTP/1.1\r\n"
        + H
        + b"Transfer-Encoding: chunked\r\n\r\n4;a=b\r\nabcd\r\n0\r\n\r\n",
        (200, False),
    ),
    Case("cl-inner-space", b"POST / HTTP/1.1\r\n" + H + b"Content-Length: 1 2\r\n\r\n", BAD),
]

#: A sane request, to prove the recording backend does see what is forwarded.
CONTROL = b"GET /ok HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n"
