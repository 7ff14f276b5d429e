"""ACL evaluation: the config model's conditions compiled once into plain predicates.

Theory of operation: a ``Condition`` (OR of AND groups of possibly negated terms, each
term a named ACL — its lines OR-ed — or an anonymous matcher) is compiled when a
worker starts into nested closures over pre-encoded byte patterns, so evaluating a
rule per request is a few calls and byte comparisons, with no string decoding and no
lookups by name. Predicates take the request head and the client address.

Matching follows HAProxy's semantics for each fetch: ``path`` is the path without the
query string; ``hdr(name)`` looks at every value of every occurrence, split on
commas; ``-i`` folds case; ``path_reg`` searches (unanchored) as HAProxy's regex do.
"""

from __future__ import annotations

import functools
import ipaddress
import re
from collections.abc import Callable, Iterable, Mapping, Sequence

from lbcore.config.model import Acl, Condition, Matcher
from lbcore.http.h1 import Request

Predicate = Callable[[Request, str], bool]


def _always(_req: Request, _src: str) -> bool:
    return True


def _values(req: Request, name: bytes) -> Iterable[bytes]:
    for n, v in req.fields:  # read only: the request's head is still forwarded as received
        if n == name:
            for part in v.split(b","):
                yield part.strip(b" \t")


@functools.lru_cache(maxsize=4096)
def _ip(src: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        addr = ipaddress.ip_address(src)
    except ValueError:
        return None
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        return addr.ipv4_mapped
    return addr


def _string_test(kind: str, patterns: Sequence[bytes]) -> Callable[[bytes], bool]:
    pats = tuple(patterns)
    if kind == "str":
        pset = frozenset(pats)
        return pset.__contains__
    if kind == "beg":
        return lambda v: v.startswith(pats)
    if kind == "end":
        return lambda v: v.endswith(pats)
    if kind == "sub":
        return lambda v: any(p in v for p in pats)
    if kind == "reg":
        regs = [re.compile(p) for p in pats]
        return lambda v: any(r.search(v) is not None for r in regs)
    raise ValueError(f"unknown match kind {kind}")


_SUFFIX = {"": "str", "_beg": "beg", "_end": "end", "_sub": "sub", "_reg": "reg"}


def compile_matcher(m: Matcher) -> Predicate:
    """One criterion as a predicate."""
    fetch = m.fetch
    if fetch in ("always_true", "always_false"):  # the predefined TRUE and FALSE
        value = fetch == "always_true"
        return lambda _req, _src: value
    if fetch == "src":
        nets = [ipaddress.ip_network(p, strict=False) for p in m.patterns]

        def src_match(_req: Request, src: str) -> bool:
            addr = _ip(src)
            return addr is not None and any(addr.version == n.version and addr in n for n in nets)

        return src_match

    tls = _compile_tls(m)
    if tls is not None:
        return tls

    icase = m.ignore_case
    raw = [p.encode("latin-1") for p in m.patterns]
    if icase and not fetch.endswith("_reg"):
        raw = [p.lower() for p in raw]
    if icase and fetch.endswith("_reg"):
        raw = [b"(?i)" + p for p in raw]

    if fetch == "method":
        test = _string_test("str", raw)
        if icase:
            return lambda req, _src: test(req.method.lower())
        return lambda req, _src: test(req.method)

    for base in ("path", "url", "hdr"):
        if fetch == base or (fetch.startswith(base + "_") and fetch[len(base) :] in _SUFFIX):
            kind = _SUFFIX[fetch[len(base) :]]
            break
    else:
        raise ValueError(f"ACL fetch {fetch!r} is not supported")
    test = _string_test(kind, raw)
    fold = icase and kind != "reg"

    if base == "path":
        if fold:
            return lambda req, _src: test(req.path.lower())
        return lambda req, _src: test(req.path)
    if base == "url":
        if fold:
            return lambda req, _src: test(req.target.lower())
        return lambda req, _src: test(req.target)
    if m.arg is None:
        raise ValueError(f"{fetch} needs a header name")
    name = m.arg.lower().encode("latin-1")
    if fold:
        return lambda req, _src: any(test(v.lower()) for v in _values(req, name))
    return lambda req, _src: any(test(v) for v in _values(req, name))


_TLS_BOOL = {
    "ssl_fc": lambda c: c.ssl_fc,
    "ssl_c_used": lambda c: c.c_used,
    "ssl_fc_has_sni": lambda c: bool(c.sni),
}
_TLS_STRING = {"ssl_fc_sni": "sni", "req.ssl_sni": "hello_sni", "req_ssl_sni": "hello_sni"}


def _compile_tls(m: Matcher) -> Predicate | None:
    """TLS fetches read ``req.conn`` (a ``lbcore.tls.info.TlsInfo``; None = plain)."""
    fetch = m.fetch
    if fetch in _TLS_BOOL:
        get = _TLS_BOOL[fetch]
        return lambda req, _src: req.conn is not None and bool(get(req.conn))
    if fetch in ("req.ssl_hello_type", "req_ssl_hello_type"):
        wanted = frozenset(int(p) for p in m.patterns)
        return lambda req, _src: req.conn is not None and req.conn.hello_type in wanted
    for base in _TLS_STRING:
        if fetch == base or (fetch.startswith(base + "_") and fetch[len(base) :] in _SUFFIX):
            kind = _SUFFIX[fetch[len(base) :]]
            attr = _TLS_STRING[base]
            break
    else:
        return None
    raw = [p.encode("latin-1") for p in m.patterns]
    if m.ignore_case:
        raw = [b"(?i)" + p for p in raw] if kind == "reg" else [p.lower() for p in raw]
    test = _string_test(kind, raw)
    fold = m.ignore_case and kind != "reg"

    def tls_string(req: Request, _src: str) -> bool:
        conn = req.conn
        value = getattr(conn, attr) if conn is not None else None
        if not value:
            return False
        data = value.encode("latin-1")
        return test(data.lower() if fold else data)

    return tls_string


def compile_condition(
    cond: Condition | None, acls: Mapping[str, Sequence[Acl]] | Sequence[Acl]
) -> Predicate:
    """A rule's ``if``/``unless`` as one predicate (no condition: always true)."""
    if cond is None:
        return _always
    by_name: dict[str, list[Predicate]] = {}
    items: Iterable[Acl] = (
        [a for group in acls.values() for a in group] if isinstance(acls, Mapping) else acls
    )
    for acl in items:
        by_name.setdefault(acl.name, []).append(compile_matcher(acl.matcher))

    groups: list[list[tuple[bool, Predicate]]] = []
    for group in cond.groups:
        terms: list[tuple[bool, Predicate]] = []
        for term in group:
            if term.anonymous is not None:
                pred = compile_matcher(term.anonymous)
            else:
                assert term.name is not None
                preds = by_name.get(term.name)
                if preds is None:
                    raise ValueError(f"no such ACL: {term.name}")
                pred = preds[0] if len(preds) == 1 else _any_of(preds)
            terms.append((term.negate, pred))
        groups.append(terms)
    unless = cond.unless

    def evaluate(req: Request, src: str) -> bool:
        for terms in groups:
            for negate, pred in terms:
                if pred(req, src) == negate:
                    break
            else:
                return not unless
        return unless

    return evaluate


def _any_of(preds: Sequence[Predicate]) -> Predicate:
    return lambda req, src: any(p(req, src) for p in preds)
