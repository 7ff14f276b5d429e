"""Health-check keywords: the ``server`` check options, ``option httpchk``, ``http-check``.

Theory of operation: a ``server`` line's check options are collected in a
``CheckDraft`` as they are read (``server_option`` consumes one option and its
value); the server gets a frozen ``CheckSpec`` only if the line (or the section's
``default-server``) said ``check`` — HAProxy accepts ``inter``/``rise``/... without
``check`` and then simply does not check. ``option httpchk`` and ``http-check
send``/``expect`` are kept apart on the proxy draft and merged into one
``HttpCheckSpec`` when the section is frozen (``merge_http_check``), since HAProxy
lets ``http-check send`` override what ``option httpchk`` said, in any order.

The syntax is HAProxy 2.6's (configuration manual, sections 4.2 "option httpchk",
"http-check send", "http-check expect", and 5.2 "check", "inter", "rise"...).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from lbcore.config.errors import ConfigError, NotSupportedYet
from lbcore.config.model import CheckSpec, HttpCheckSpec
from lbcore.config.units import parse_duration, parse_int, parse_port

#: server options that take one value, and ``check``/``no-check`` that take none
CHECK_VALUE_OPTIONS = (
    "inter",
    "fastinter",
    "downinter",
    "rise",
    "fall",
    "port",
    "addr",
    "slowstart",
)
CHECK_FLAG_OPTIONS = ("check", "no-check")

HTTP_METHODS = ("OPTIONS", "GET", "HEAD", "POST", "PUT", "DELETE", "TRACE", "PATCH", "CONNECT")
EXPECT_KINDS = ("status", "rstatus", "string", "rstring")
LATER_EXPECT_KINDS = ("hdr", "fhdr", "custom")


@dataclass(slots=True)
class CheckDraft:
    """A server's check options while its line is read."""

    enabled: bool = False
    inter: float = 2.0
    fastinter: float | None = None
    downinter: float | None = None
    rise: int = 2
    fall: int = 3
    port: int | None = None
    addr: str | None = None
    slowstart: float = 0.0

    def freeze(self) -> CheckSpec | None:
        if not self.enabled:
            return None
        return CheckSpec(
            inter=self.inter,
            fastinter=self.fastinter,
            downinter=self.downinter,
            rise=self.rise,
            fall=self.fall,
            port=self.port,
            addr=self.addr,
            slowstart=self.slowstart,
        )


def _interval(text: str, what: str) -> float:
    value = parse_duration(text, what)
    if value <= 0:
        raise ConfigError(f"{what}: expects a positive delay, not '{text}'")
    return value


def server_option(server: str, args: list[str], i: int, draft: CheckDraft) -> int:
    """Consume the check option at ``args[i]``: how many words it took (0: not one)."""
    word = args[i]
    if word == "check":
        draft.enabled = True
        return 1
    if word == "no-check":
        draft.enabled = False
        return 1
    if word not in CHECK_VALUE_OPTIONS:
        return 0
    if i + 1 >= len(args):
        raise ConfigError(f"server {server}: '{word}' expects a value")
    value = args[i + 1]
    what = f"server {server}: {word}"
    if word in ("inter", "fastinter", "downinter"):
        setattr(draft, word, _interval(value, what))
    elif word == "slowstart":
        draft.slowstart = parse_duration(value, what)
    elif word in ("rise", "fall"):
        setattr(draft, word, parse_int(value, what, 1))
    elif word == "port":
        draft.port = parse_port(value, what)
    else:  # addr
        if not value or value.count(":") == 1:
            raise ConfigError(f"{what}: expects an address without port (use 'port')")
        draft.addr = value
    return 2


@dataclass(slots=True)
class HttpCheckDraft:
    """``option httpchk`` and ``http-check`` lines of one section (or defaults)."""

    option: HttpCheckSpec | None = None  # set by "option httpchk"
    method: str | None = None  # from "http-check send"
    uri: str | None = None
    version: str | None = None
    headers: tuple[tuple[str, str], ...] = ()
    expect: tuple[str, str, bool] | None = None
    rules_seen: bool = False

    def copy(self) -> HttpCheckDraft:
        return HttpCheckDraft(
            self.option,
            self.method,
            self.uri,
            self.version,
            self.headers,
            self.expect,
            self.rules_seen,
        )


def option_httpchk(args: list[str]) -> HttpCheckSpec:
    """``option httpchk``, ``option httpchk URI``, ``option httpchk METHOD URI [VERSION]``."""
    rest = args[2:]
    if len(rest) > 3:
        raise ConfigError(f"'option httpchk': unexpected argument '{rest[3]}'")
    if not rest:
        return HttpCheckSpec()
    if len(rest) == 1:
        return HttpCheckSpec(uri=_uri(rest[0]))
    spec = HttpCheckSpec(method=_method(rest[0]), uri=_uri(rest[1]))
    if len(rest) == 3:
        return _with_version(spec, rest[2])
    return spec


def _method(text: str) -> str:
    if not re.fullmatch(r"[A-Za-z]+", text):
        raise ConfigError(f"invalid HTTP method '{text}' for a health check")
    return text.upper()


def _uri(text: str) -> str:
    if not text or any(ch in text for ch in " \r\n"):
        raise ConfigError(f"invalid URI '{text}' for a health check")
    return text


def _with_version(spec: HttpCheckSpec, text: str) -> HttpCheckSpec:
    """A version, possibly followed by the old ``\\r\\nHost:\\ name`` trick of HAProxy 1.x
    configurations: those header lines become real headers."""
    version, *lines = text.split("\r\n")
    if not re.fullmatch(r"HTTP/\d\.\d", version):
        raise ConfigError(f"invalid HTTP version '{version}' for a health check")
    headers = list(spec.headers)
    for line in lines:
        if not line:
            continue
        name, colon, value = line.partition(":")
        if not colon or not name.strip():
            raise ConfigError(f"invalid header line '{line}' after the health check version")
        headers.append((name.strip(), value.strip()))
    return HttpCheckSpec(spec.method, spec.uri, version, tuple(headers))


def http_check(draft: HttpCheckDraft, args: list[str]) -> None:
    """``http-check send ...`` / ``http-check expect ...`` into the section's draft."""
    if len(args) < 2:
        raise ConfigError("'http-check' expects 'send' or 'expect'")
    what = args[1]
    if what == "send":
        _send(draft, args[2:])
    elif what == "expect":
        draft.expect = _expect(args[2:])
    elif what in ("connect", "comment", "set-var", "unset-var", "disable-on-404", "send-state"):
        raise NotSupportedYet(f"http-check {what}")
    else:
        raise ConfigError(f"'http-check' expects 'send' or 'expect', not '{what}'")
    draft.rules_seen = True


def _send(draft: HttpCheckDraft, words: list[str]) -> None:
    headers = list(draft.headers)
    i = 0
    while i < len(words):
        word = words[i]
        if word == "hdr":
            if i + 2 >= len(words):
                raise ConfigError("'http-check send hdr' expects a name and a value")
            headers.append((words[i + 1], words[i + 2]))
            i += 3
            continue
        if word not in ("meth", "uri", "ver"):
            if word in ("uri-lf", "body", "body-lf", "comment"):
                raise NotSupportedYet(f"http-check send {word}")
            raise ConfigError(
                f"'http-check send' expects 'meth', 'uri', 'ver' or 'hdr', not '{word}'"
            )
        if i + 1 >= len(words):
            raise ConfigError(f"'http-check send {word}' expects a value")
        value = words[i + 1]
        if word == "meth":
            draft.method = _method(value)
        elif word == "uri":
            draft.uri = _uri(value)
        else:
            if not re.fullmatch(r"HTTP/\d\.\d", value):
                raise ConfigError(f"invalid HTTP version '{value}' in 'http-check send ver'")
            draft.version = value
        i += 2
    draft.headers = tuple(headers)


def _expect(words: list[str]) -> tuple[str, str, bool]:
    if words and words[0] in ("min-recv", "comment", "ok-status", "error-status", "tout-status"):
        raise NotSupportedYet(f"http-check expect {words[0]}")
    negate = bool(words) and words[0] == "!"
    if negate:
        words = words[1:]
    if not words or words[0] not in EXPECT_KINDS:
        if words and words[0] in LATER_EXPECT_KINDS:
            raise NotSupportedYet(f"http-check expect {words[0]}")
        raise ConfigError(
            "'http-check expect' expects [!] status|rstatus|string|rstring followed by a pattern"
        )
    kind = words[0]
    if len(words) < 2:
        raise ConfigError(f"'http-check expect {kind}' expects a pattern")
    if len(words) > 2:
        raise ConfigError(f"'http-check expect {kind}': unexpected argument '{words[2]}'")
    pattern = words[1]
    if kind == "status":
        for part in pattern.split(","):
            low, _, high = part.partition("-")
            if not low.isdigit() or (high and not high.isdigit()):
                raise ConfigError(f"'http-check expect status': invalid status '{pattern}'")
    elif kind in ("rstatus", "rstring"):
        try:
            re.compile(pattern)
        except re.error as exc:
            raise ConfigError(f"'http-check expect {kind}': bad regex '{pattern}': {exc}") from None
    return kind, pattern, negate


def merge_http_check(draft: HttpCheckDraft) -> HttpCheckSpec | None:
    """The proxy's HTTP check, or None (TCP checks) when ``option httpchk`` is not set."""
    if draft.option is None:
        return None
    spec = draft.option
    kind, pattern, negate = draft.expect if draft.expect else (None, "", False)
    return HttpCheckSpec(
        method=draft.method or spec.method,
        uri=draft.uri or spec.uri,
        version=draft.version or spec.version,
        headers=spec.headers + draft.headers,
        expect_kind=kind,
        expect_pattern=pattern,
        expect_negate=negate,
    )
