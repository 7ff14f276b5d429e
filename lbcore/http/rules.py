"""``http-request`` / ``http-response`` rules, compiled once and applied per message.

Rules run in configuration order, as HAProxy runs them: header actions change the head
in place and evaluation continues (later conditions see the changes); ``deny`` and
``redirect`` are final and yield a ``Verdict`` the adapter turns into an answer.

Values may reference the client address with ``%[src]`` (the one sample HAProxy users
put in headers most) and the TLS samples ``%[ssl_fc]``, ``%[ssl_fc_sni]``,
``%[ssl_c_used]``, ``%[ssl_fc_protocol]``, ``%[ssl_fc_cipher]``; any other text is
literal.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from lbcore.config.model import Acl, HttpRule
from lbcore.http.acl import Predicate, compile_condition
from lbcore.http.h1 import Request, Response

Fields = list[tuple[bytes, bytes]]


@dataclass(frozen=True, slots=True)
class Verdict:
    """A final answer decided by a rule: ``deny`` (status), ``redirect``, or
    ``use-service`` (``service`` names it; the adapter hands the request over)."""

    status: int
    location: bytes | None = None  # set for redirects
    service: str | None = None  # set for use-service


ValueFn = Callable[[Request, str], bytes]

#: samples a header value may name as ``%[name]``: the client address, and the TLS
#: facts of the client connection (``Request.conn``, a ``lbcore.tls.info.TlsInfo``)
_SAMPLES: dict[bytes, Callable[[Request, str], bytes]] = {
    b"src": lambda _req, src: src.encode("latin-1"),
    b"ssl_fc": lambda req, _src: b"1" if req.conn is not None and req.conn.ssl_fc else b"0",
    b"ssl_c_used": lambda req, _src: b"1" if req.conn is not None and req.conn.c_used else b"0",
    b"ssl_fc_sni": lambda req, _src: ((req.conn and req.conn.sni) or "").encode("latin-1"),
    b"ssl_fc_protocol": lambda req, _src: ((req.conn and req.conn.version) or "").encode(),
    b"ssl_fc_cipher": lambda req, _src: ((req.conn and req.conn.cipher) or "").encode(),
}
_SAMPLE_REF = re.compile(rb"%\[([a-z_.]+)\]")


def _value(text: str | None) -> ValueFn:
    raw = (text or "").encode("latin-1")
    parts: list[bytes | Callable[[Request, str], bytes]] = []
    pos = 0
    for m in _SAMPLE_REF.finditer(raw):
        fetch = _SAMPLES.get(m.group(1))
        if fetch is None:
            continue  # not a sample lbcore knows: kept as written
        parts += [raw[pos : m.start()], fetch]
        pos = m.end()
    if not parts:
        return lambda _req, _src: raw
    parts.append(raw[pos:])
    pieces = [p for p in parts if p != b""]

    def render(req: Request, src: str) -> bytes:
        return b"".join(p if isinstance(p, bytes) else p(req, src) for p in pieces)

    return render


def _set(fields: Fields, name: bytes, value: bytes) -> Fields:
    out = [p for p in fields if p[0] != name]
    out.append((name, value))
    return out


def _delete(fields: Fields, name: bytes) -> Fields:
    return [p for p in fields if p[0] != name]


class CompiledRule:
    __slots__ = ("action", "code", "kind", "name", "pred", "value")

    def __init__(self, rule: HttpRule, acls: Sequence[Acl]) -> None:
        self.action = rule.action
        self.pred: Predicate = compile_condition(rule.condition, acls)
        self.name = (rule.name or "").lower().encode("latin-1")
        self.value = _value(rule.value)
        self.kind = rule.redirect_kind
        self.code = rule.code
        if self.action not in (
            "set-header",
            "add-header",
            "del-header",
            "redirect",
            "deny",
            "use-service",
        ):
            raise ValueError(f"http rule action {self.action!r} is not supported")


def compile_rules(rules: Sequence[HttpRule], acls: Sequence[Acl]) -> tuple[CompiledRule, ...]:
    return tuple(CompiledRule(r, acls) for r in rules)


def _redirect_location(rule: CompiledRule, req: Request, src: str) -> bytes:
    target = rule.value(req, src)
    if rule.kind == "prefix":
        uri = req.target
        return uri if target in (b"", b"/") else target.rstrip(b"/") + uri
    if rule.kind == "scheme":
        host = req.header(b"host") or b""
        return target + b"://" + host + req.target
    return target


_HEADER_ACTIONS = ("set-header", "add-header", "del-header")


def _edited(headers: Fields, rule: CompiledRule, req: Request, src: str) -> Fields:
    """One set/add/del-header action on a request's or a response's headers."""
    if rule.action == "set-header":
        return _set(headers, rule.name, rule.value(req, src))
    if rule.action == "add-header":
        headers.append((rule.name, rule.value(req, src)))
        return headers
    return _delete(headers, rule.name)


def apply_request_rules(rules: Sequence[CompiledRule], req: Request, src: str) -> Verdict | None:
    """Run ``http-request`` rules over ``req``; a final action returns its verdict."""
    for rule in rules:
        if not rule.pred(req, src):
            continue
        action = rule.action
        if action in _HEADER_ACTIONS:
            req.headers = _edited(req.headers, rule, req, src)
        elif action == "deny":
            return Verdict(rule.code or 403)
        elif action == "use-service":
            return Verdict(200, service=rule.value(req, src).decode("latin-1"))
        else:  # redirect
            return Verdict(rule.code or 302, _redirect_location(rule, req, src))
    return None


def apply_response_rules(
    rules: Sequence[CompiledRule], resp: Response, req: Request, src: str
) -> Verdict | None:
    """Run ``http-response`` rules; conditions see the request (as HAProxy's req. fetches)."""
    for rule in rules:
        if not rule.pred(req, src):
            continue
        action = rule.action
        if action in _HEADER_ACTIONS:
            resp.headers = _edited(resp.headers, rule, req, src)
        elif action == "deny":
            return Verdict(rule.code or 502)
    return None
