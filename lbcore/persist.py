"""Cookie persistence (``cookie NAME insert|rewrite|prefix ...``), sans I/O.

Theory of operation, the seed's four steps:

1. A request without a persistence cookie is load-balanced (``inspect_request`` says
   ``ClientCookie.NONE``).
2. The response from the chosen server carries a cookie naming it (``on_response``:
   inserted, or the server's own cookie rewritten / prefixed).
3. Later requests present the cookie; ``inspect_request`` extracts the server's value and
   the proxy sends them to that server if it still accepts persistent traffic (UP, or
   DRAIN), or redispatches them (the value names a DOWN/MAINT server: ``DOWN``).
4. The client keeps the cookie; with ``indirect`` nothing is re-sent to a client that
   already has a valid one, and in insert mode the cookie is hidden from the server.

Formats follow what HAProxy 2.6 emits (checked live in tests/integration/persist):
``SRV=w1; path=/; domain=D; HttpOnly; Secure``; with ``maxidle``/``maxlife`` the value
carries ``|last|first`` dates, each ``now >> 2`` in five base64 digits (30 bits);
``nocache`` adds ``Cache-control: private`` to responses made cacheable by explicit
freshness or validators. The two enums give the 3rd and 4th characters of the log's
termination state.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

_B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
_B64_INDEX = {c: i for i, c in enumerate(_B64)}
_FUTURE_SLACK = 86400  # dates more than 24 h ahead are ignored (HAProxy's rule)


class ClientCookie(enum.Enum):
    """What the client presented (log termination state, 3rd character)."""

    NONE = "N"
    INVALID = "I"
    DOWN = "D"
    VALID = "V"
    EXPIRED = "E"
    OLD = "O"
    UNUSED = "U"


class ServerCookie(enum.Enum):
    """What happened to the response's cookie (log termination state, 4th character)."""

    NONE = "N"
    INSERTED = "I"
    UPDATED = "U"
    PROVIDED = "P"
    REWRITTEN = "R"
    DELETED = "D"


@dataclass(frozen=True, slots=True)
class CookieSettings:
    name: str
    mode: str = "insert"  # insert | rewrite | prefix
    indirect: bool = False
    nocache: bool = False
    postonly: bool = False
    preserve: bool = False
    httponly: bool = False
    secure: bool = False
    domains: tuple[str, ...] = ()
    maxidle: float | None = None
    maxlife: float | None = None

    def __post_init__(self) -> None:
        if self.mode not in ("insert", "rewrite", "prefix"):
            raise ValueError(f"cookie mode must be insert, rewrite or prefix, not {self.mode!r}")

    @property
    def dated(self) -> bool:
        return self.mode == "insert" and (self.maxidle is not None or self.maxlife is not None)


@dataclass(frozen=True, slots=True)
class RequestCookie:
    """The persistence facts of one request, and the ``Cookie`` headers to forward."""

    value: str | None  # the server's cookie value, when one was found and not expired
    status: ClientCookie
    forward: tuple[str, ...]  # Cookie header values to send to the server
    first_date: int | None = None  # from a dated insert cookie (seconds)
    last_date: int | None = None


def encode_date(seconds: float) -> str:
    """HAProxy's 30-bit date: ``seconds >> 2`` as five base64 digits."""
    value = (int(seconds) >> 2) & 0x3FFFFFFF
    return "".join(_B64[(value >> shift) & 63] for shift in (24, 18, 12, 6, 0))


def decode_date(text: str) -> int | None:
    if len(text) != 5 or any(c not in _B64_INDEX for c in text):
        return None
    value = 0
    for c in text:
        value = (value << 6) | _B64_INDEX[c]
    return value << 2


def _split_cookies(header: str) -> list[tuple[str, str]]:
    pairs = []
    for part in header.split(";"):
        name, sep, value = part.strip().partition("=")
        if name:
            pairs.append((name, value if sep else ""))
    return pairs


def _join_cookies(pairs: list[tuple[str, str]]) -> str:
    return "; ".join(f"{n}={v}" for n, v in pairs)


def inspect_request(
    settings: CookieSettings, cookie_headers: list[str], known_values: set[str], now: float
) -> RequestCookie:
    """Find the persistence cookie among the request's ``Cookie`` headers.

    ``known_values`` are the ``cookie`` values of the backend's servers; a value naming
    none of them is INVALID. Whether the named server is DOWN is the caller's decision
    (it knows the server states); it then reports ``ClientCookie.DOWN`` itself.
    """
    forward: list[str] = []
    found: RequestCookie | None = None
    for header in cookie_headers:
        kept: list[tuple[str, str]] = []
        for name, value in _split_cookies(header):
            if name != settings.name or found is not None:
                kept.append((name, value))
                continue
            found, rest = _read_value(settings, value, known_values, now)
            if settings.mode == "prefix" and rest is not None:
                kept.append((name, rest))  # the server sees the cookie it emitted
            elif not (settings.mode == "insert" and settings.indirect):
                kept.append((name, value))
        if kept:
            forward.append(_join_cookies(kept))
    if found is None:
        return RequestCookie(None, ClientCookie.NONE, tuple(forward))
    return RequestCookie(
        found.value, found.status, tuple(forward), found.first_date, found.last_date
    )


def _read_value(
    settings: CookieSettings, raw: str, known: set[str], now: float
) -> tuple[RequestCookie, str | None]:
    """Decode one cookie value: (verdict, the application's part for prefix mode)."""
    rest: str | None = None
    if settings.mode == "prefix":
        value, sep, rest_part = raw.partition("~")
        rest = rest_part if sep else None
        if not sep:
            value = ""
    else:
        value = raw
    first = last = None
    if settings.mode == "insert" and "|" in value:
        value, _, dates = value.partition("|")
        last_text, _, first_text = dates.partition("|")
        last = decode_date(last_text)
        first = decode_date(first_text)
    if value not in known:
        return RequestCookie(None, ClientCookie.INVALID, ()), rest
    if (
        settings.maxidle is not None
        and last is not None
        and (now - last > settings.maxidle or last - now > _FUTURE_SLACK)
    ):
        return RequestCookie(None, ClientCookie.EXPIRED, ()), rest
    if (
        settings.maxlife is not None
        and first is not None
        and (now - first > settings.maxlife or first - now > _FUTURE_SLACK)
    ):
        return RequestCookie(None, ClientCookie.OLD, ()), rest
    return RequestCookie(value, ClientCookie.VALID, (), first, last), rest


def _cacheable(response_headers: list[tuple[str, str]]) -> bool:
    """Explicit freshness or a validator makes a response cacheable (HAProxy's test)."""
    cacheable = False
    for name, value in response_headers:
        lname = name.lower()
        if lname == "cache-control":
            directives = {d.strip().split("=", 1)[0].lower() for d in value.split(",")}
            if directives & {"private", "no-cache", "no-store"}:
                return False
            if directives & {"public", "max-age", "s-maxage"}:
                cacheable = True
        elif lname in ("expires", "last-modified"):
            cacheable = True
    return cacheable


@dataclass(frozen=True, slots=True)
class ResponseCookie:
    set_cookies: tuple[str, ...]  # the response's Set-Cookie values, after our changes
    add_headers: tuple[tuple[str, str], ...]  # e.g. ("Cache-control", "private")
    status: ServerCookie


def on_response(
    settings: CookieSettings,
    set_cookies: list[str],
    response_headers: list[tuple[str, str]],
    server_value: str | None,
    request: RequestCookie,
    method: str,
    now: float,
) -> ResponseCookie:
    """Apply the persistence mode to a response from the server with ``server_value``."""
    own = [sc for sc in set_cookies if _cookie_name(sc) == settings.name]
    others = [sc for sc in set_cookies if _cookie_name(sc) != settings.name]
    if server_value is None:
        return ResponseCookie(
            tuple(set_cookies), (), ServerCookie.NONE if not own else ServerCookie.PROVIDED
        )
    if settings.mode == "insert":
        return _insert(settings, others, own, response_headers, server_value, request, method, now)
    return _rewrite(settings, set_cookies, server_value)


def _cookie_name(set_cookie: str) -> str:
    return set_cookie.split("=", 1)[0].strip()


def _insert(
    settings: CookieSettings,
    others: list[str],
    own: list[str],
    response_headers: list[tuple[str, str]],
    server_value: str,
    request: RequestCookie,
    method: str,
    now: float,
) -> ResponseCookie:
    if own and settings.preserve:
        return ResponseCookie(tuple(others + own), (), ServerCookie.PROVIDED)
    kept_valid = request.status is ClientCookie.VALID and request.value == server_value
    if settings.postonly and method != "POST" and not kept_valid:
        deleted = ServerCookie.DELETED if own else ServerCookie.NONE
        return ResponseCookie(tuple(others), (), deleted)
    status = ServerCookie.INSERTED
    first = now
    if kept_valid:
        if not settings.dated:
            return ResponseCookie(
                tuple(others), (), ServerCookie.DELETED if own else ServerCookie.NONE
            )
        # dated cookies: refresh the last date when it changed (maxidle) and keep the
        # first date (maxlife); an undated valid cookie gets dates set
        first = request.first_date if request.first_date is not None else now
        if request.last_date is not None and encode_date(request.last_date) == encode_date(now):
            return ResponseCookie(tuple(others), (), ServerCookie.NONE)
        status = ServerCookie.UPDATED if request.last_date is not None else status
    value = server_value
    if settings.dated:
        value += f"|{encode_date(now)}|{encode_date(first)}"
    attrs = [f"{settings.name}={value}", "path=/"]
    attrs += [f"domain={d}" for d in settings.domains]
    if settings.httponly:
        attrs.append("HttpOnly")
    if settings.secure:
        attrs.append("Secure")
    extra: tuple[tuple[str, str], ...] = ()
    if settings.nocache and _cacheable(response_headers):
        extra = (("Cache-control", "private"),)
    return ResponseCookie(tuple([*others, "; ".join(attrs)]), extra, status)


def _rewrite(settings: CookieSettings, set_cookies: list[str], server_value: str) -> ResponseCookie:
    out = []
    status = ServerCookie.NONE
    for sc in set_cookies:
        if _cookie_name(sc) != settings.name:
            out.append(sc)
            continue
        name, _, rest = sc.partition("=")
        value, sep, attrs = rest.partition(";")
        if settings.mode == "rewrite":
            new_value = server_value
        else:  # prefix
            new_value = f"{server_value}~{value.strip()}"
        out.append(f"{name}={new_value}{sep}{attrs}")
        status = ServerCookie.REWRITTEN
    return ResponseCookie(tuple(out), (), status)
