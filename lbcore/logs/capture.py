"""What ``capture request header``, ``capture response header`` and ``capture cookie``
copy from a request and its response into the log line (``%hr``, ``%hs``, ``%CC``,
``%CS``), as HAProxy 2.6 does (configuration manual 4.2, "capture").

Theory of operation: a frontend with captures gets one :class:`Captures`, built from the
config once; the proxy calls it with the header fields it already parsed (lower-cased
names, raw values) and stores the results on the log record. A frontend without captures
has none, so its requests pay nothing. Pure: bytes and tuples in, strings out.

HAProxy's rules, kept here:

* a header capture takes the *last* occurrence of the field, its whole value truncated
  to ``len`` characters; an absent field is an empty string (the slot stays, so ``%hr``
  reads ``{a||c}``);
* a cookie capture takes the *first* cookie whose name starts with the configured name
  (``SRV=`` matches one name exactly), from the request's ``Cookie`` fields for ``%CC``
  and the server's ``Set-Cookie`` fields for ``%CS``, logged as ``name=value`` truncated
  to ``len`` characters; none found is ``-``.
"""

from __future__ import annotations

from collections.abc import Sequence

from lbcore.config.model import Capture, Proxy

Fields = Sequence[tuple[bytes, bytes]]


def _last(fields: Fields, name: bytes, length: int) -> str:
    value = b""
    for n, v in fields:
        if n == name:
            value = v
    return value[:length].decode("latin-1")


class Captures:
    """One frontend's capture lines, ready to apply to parsed heads."""

    __slots__ = ("cookie", "cookie_len", "request", "response", "response_empty")

    def __init__(
        self,
        request: Sequence[Capture] = (),
        response: Sequence[Capture] = (),
        cookie: Capture | None = None,
    ) -> None:
        self.request = tuple((c.name.lower().encode("latin-1"), c.length) for c in request)
        self.response = tuple((c.name.lower().encode("latin-1"), c.length) for c in response)
        #: the response slots before (or without) a server's answer
        self.response_empty: tuple[str, ...] = ("",) * len(self.response)
        self.cookie = cookie.name.encode("latin-1") if cookie is not None else None
        self.cookie_len = cookie.length if cookie is not None else 0

    @classmethod
    def for_proxy(cls, proxy: Proxy) -> Captures | None:
        """``None`` when the frontend captures nothing (the common case)."""
        if not (
            proxy.capture_request_headers or proxy.capture_response_headers or proxy.capture_cookie
        ):
            return None
        return cls(
            proxy.capture_request_headers, proxy.capture_response_headers, proxy.capture_cookie
        )

    def on_request(self, fields: Fields) -> Captured:
        """The captures of a request whose head was just parsed."""
        return Captured(self, self.request_headers(fields), self.response_empty)

    def request_headers(self, fields: Fields) -> tuple[str, ...]:
        return tuple(_last(fields, name, length) for name, length in self.request)

    def response_headers(self, fields: Fields) -> tuple[str, ...]:
        return tuple(_last(fields, name, length) for name, length in self.response)

    def request_cookie(self, fields: Fields) -> str | None:
        """``name=value`` of the first cookie of the ``Cookie`` fields that matches."""
        prefix = self.cookie
        if prefix is None:
            return None
        for n, v in fields:
            if n != b"cookie":
                continue
            for item in v.split(b";"):
                item = item.strip()
                if item.startswith(prefix):
                    return item[: self.cookie_len].decode("latin-1")
        return None

    def response_cookie(self, fields: Fields) -> str | None:
        """``name=value`` of the first ``Set-Cookie`` field that matches (its
        attributes, after the first ``;``, are not part of it)."""
        prefix = self.cookie
        if prefix is None:
            return None
        for n, v in fields:
            if n == b"set-cookie":
                item = v.split(b";", 1)[0].strip()
                if item.startswith(prefix):
                    return item[: self.cookie_len].decode("latin-1")
        return None


class Captured:
    """What one request captured so far; the proxy fills it as the request goes."""

    __slots__ = (
        "captures",
        "request_cookie",
        "request_headers",
        "response_cookie",
        "response_headers",
    )

    def __init__(
        self, captures: Captures, request: tuple[str, ...], response: tuple[str, ...]
    ) -> None:
        self.captures = captures
        self.request_headers = request
        self.response_headers = response
        self.request_cookie: str | None = None
        self.response_cookie: str | None = None

    def on_backend(self, fields: Fields) -> None:
        """The request reached a backend: HAProxy captures its cookie only then."""
        self.request_cookie = self.captures.request_cookie(fields)

    def on_response(self, fields: Fields) -> None:
        """The server's response head (before lbcore's own Set-Cookie is added)."""
        captures = self.captures
        self.response_headers = captures.response_headers(fields)
        self.response_cookie = captures.response_cookie(fields)
