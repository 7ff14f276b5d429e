"""The answers lbcore generates itself, byte for byte as HAProxy 2.6 sends them.

Two families, as in HAProxy: errors raised while parsing the client's request (the H1
multiplexer: 400, 408, 413, 414, 431, 501, 505) keep HAProxy's historical layout with
capitalised field names and ``Connection: close``; errors produced once a request is
being processed (403 deny, 500, 502, 503, 504) come out of the HTX path with lower-case
fields. Both bodies are the ones HAProxy's ``http_err_msgs`` carry. The texts were
checked against haproxy 2.6.12 on this machine (``tests/integration/proxy``).
"""

from __future__ import annotations

from typing import Final

_TEXTS: Final = {
    400: (b"Bad request", b"Your browser sent an invalid request."),
    403: (b"Forbidden", b"Request forbidden by administrative rules."),
    405: (
        b"Method Not Allowed",
        b"A request was made of a resource using a request method not supported by that resource",
    ),
    408: (b"Request Time-out", b"Your browser didn't send a complete request in time."),
    413: (b"Payload Too Large", b"The request entity exceeds the maximum allowed."),
    414: (b"Request-URI Too Long", b"The request URI is too long."),
    429: (b"Too Many Requests", b"You have sent too many requests in a given amount of time."),
    431: (
        b"Request Header Fields Too Large",
        b"The request header fields are too large.",
    ),
    500: (b"Internal Server Error", b"An internal server error occurred."),
    501: (
        b"Not Implemented",
        b"The server does not support the functionality required to fulfill the request.",
    ),
    502: (b"Bad Gateway", b"The server returned an invalid or incomplete response."),
    503: (b"Service Unavailable", b"No server is available to handle this request."),
    504: (b"Gateway Time-out", b"The server didn't respond in time."),
    505: (b"HTTP Version Not Supported", b"The HTTP version is not supported."),
}

#: statuses answered from the request parser (HAProxy's legacy layout)
_PARSER_STATUSES: Final = frozenset((400, 408, 413, 414, 431, 501, 505))


def reason(status: int) -> bytes:
    return _TEXTS.get(status, (b"Error", b""))[0]


def _page(status: int) -> bytes:
    title, text = _TEXTS.get(status, (b"Error", b"An error occurred."))
    body = b"<html><body><h1>%d %s</h1>\n%s\n</body></html>\n" % (status, title, text)
    if status in _PARSER_STATUSES:
        return (
            b"HTTP/1.1 %d %s\r\nContent-length: %d\r\nCache-Control: no-cache\r\n"
            b"Connection: close\r\nContent-Type: text/html\r\n\r\n%s"
        ) % (status, title, len(body), body)
    return (
        b"HTTP/1.1 %d %s\r\ncontent-length: %d\r\ncache-control: no-cache\r\n"
        b"content-type: text/html\r\n\r\n%s"
    ) % (status, title, len(body), body)


#: Every page built once: an error costs one dict lookup on the hot path.
PAGES: Final[dict[int, bytes]] = {status: _page(status) for status in _TEXTS}


def error_page(status: int) -> bytes:
    page = PAGES.get(status)
    return page if page is not None else _page(status)


_REDIRECT_REASONS: Final = {
    301: b"Moved Permanently",
    302: b"Found",
    303: b"See Other",
    307: b"Temporary Redirect",
    308: b"Permanent Redirect",
}


def redirect(code: int, location: bytes, close: bool) -> bytes:
    """A redirect as HAProxy writes it: empty body, keep-alive unless closing."""
    return b"HTTP/1.1 %d %s\r\ncontent-length: 0\r\nlocation: %s\r\n%s\r\n" % (
        code,
        _REDIRECT_REASONS.get(code, b"Found"),
        location,
        b"connection: close\r\n" if close else b"",
    )
