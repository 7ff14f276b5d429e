"""ACLs and conditions: ``acl NAME criterion [flags] patterns`` and ``if|unless ...``.

A condition is a disjunction of conjunctions, as in HAProxy: terms side by side are
AND-ed, ``||`` or ``or`` starts a new group, ``!`` negates the next term (it may be
glued to it or stand alone; several toggle), and ``{ criterion ... }`` is an anonymous
ACL. A named ACL must be declared before the rule that uses it, as HAProxy requires.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import re
from collections.abc import Collection, Sequence

from lbcore.config.errors import ConfigError, NotSupportedYet, hint
from lbcore.config.model import AclTerm, Condition, Matcher, Source
from lbcore.config.tokenizer import word_set

#: the sample fetches lbcore matches on, and whether they take a ``(arg)``: path, url
#: and hdr(name), each exact or with _beg, _end, _sub, _reg; src; method
FETCHES: dict[str, bool] = {
    f"{base}{suffix}": base == "hdr"
    for base in ("path", "url", "hdr")
    for suffix in ("", "_beg", "_end", "_sub", "_reg")
} | {"src": False, "method": False}

#: TLS fetches: booleans (``{ ssl_fc }`` needs no pattern), strings matched like ``path``
#: (``-m beg|end|sub|reg`` or the ``_end``... forms), and the ClientHello's type number
TLS_BOOL_FETCHES = frozenset({"ssl_fc", "ssl_c_used", "ssl_fc_has_sni"})
TLS_STRING_FETCHES = ("ssl_fc_sni", "req.ssl_sni", "req_ssl_sni")
TLS_INT_FETCHES = frozenset({"req.ssl_hello_type", "req_ssl_hello_type"})
FETCHES |= dict.fromkeys(TLS_BOOL_FETCHES | TLS_INT_FETCHES, False)
FETCHES |= {
    f"{base}{suffix}": False
    for base in TLS_STRING_FETCHES
    for suffix in ("", "_beg", "_end", "_sub", "_reg")
}

#: fetches HAProxy knows that lbcore does not match on yet
LATER_FETCHES = word_set(
    "path_dir path_dom path_len path_found url_dir url_dom url_len url_param urlp hdr_dom "
    "hdr_dir hdr_len hdr_cnt hdr_val hdr_ip "
    "hdr_found req.hdr req.fhdr req.hdr_cnt req.cook cook cook_beg res.hdr dst dst_port "
    "src_port base base_beg query req.len req.proto_http nbsrv always_true always_false "
    "be_id fe_id status var env http_auth"
)

#: ``-m`` match methods that turn a plain fetch into one of ours (``path -m beg``)
_MATCH_SUFFIX = {"str": "", "beg": "_beg", "end": "_end", "sub": "_sub", "reg": "_reg"}

#: HAProxy's predefined ACLs that map onto fetches lbcore matches on
PREDEFINED: dict[str, Matcher] = {
    "TRUE": Matcher("always_true", None, ()),
    "FALSE": Matcher("always_false", None, ()),
    "LOCALHOST": Matcher("src", None, ("127.0.0.1/8", "::1")),
    "HTTP_URL_SLASH": Matcher("path_beg", None, ("/",)),
    "METH_CONNECT": Matcher("method", None, ("CONNECT",)),
    "METH_DELETE": Matcher("method", None, ("DELETE",)),
    "METH_GET": Matcher("method", None, ("GET", "HEAD")),
    "METH_HEAD": Matcher("method", None, ("HEAD",)),
    "METH_OPTIONS": Matcher("method", None, ("OPTIONS",)),
    "METH_POST": Matcher("method", None, ("POST",)),
    "METH_PUT": Matcher("method", None, ("PUT",)),
    "METH_TRACE": Matcher("method", None, ("TRACE",)),
}
_LATER_PREDEFINED = word_set(
    "HTTP HTTP_1.0 HTTP_1.1 HTTP_2.0 HTTP_CONTENT HTTP_URL_ABS HTTP_URL_STAR "
    "REQ_CONTENT RDP_COOKIE WAIT_END"
)

ACL_NAME = re.compile(r"^[A-Za-z0-9_.:-]+$")
_CRITERION = re.compile(r"^([a-z0-9_.]+)(?:\((.*)\))?$")


def check_acl_name(name: str) -> None:
    if not ACL_NAME.match(name):
        raise ConfigError(
            f"invalid ACL name '{name}' (letters, digits, '-', '_', '.' and ':' only)"
        )


def parse_matcher(words: Sequence[str], allow_empty: bool = False) -> Matcher:
    """``criterion [flags] [--] patterns`` (the words after ``acl NAME`` or in ``{ }``).

    ``allow_empty``: a named ACL may have no pattern (it never matches; HAProxy warns).
    """
    if not words:
        raise ConfigError("missing ACL criterion")
    match = _CRITERION.match(words[0])
    if match is None:
        raise ConfigError(f"invalid ACL criterion '{words[0]}'")
    fetch, arg = match.group(1), match.group(2)
    ignore_case = False
    i = 1
    while i < len(words) and words[i].startswith("-"):
        flag = words[i]
        if flag == "--":
            i += 1
            break
        if flag == "-i":
            ignore_case = True
        elif flag == "-m":
            if i + 1 >= len(words):
                raise ConfigError("'-m' expects a match method (str, beg, end, sub, reg)")
            method = words[i + 1]
            if fetch not in ("path", "url", "hdr", *TLS_STRING_FETCHES) or (
                method not in _MATCH_SUFFIX
            ):
                raise NotSupportedYet(f"-m {method}", f"match method for '{fetch}'")
            fetch += _MATCH_SUFFIX[method]
            i += 1
        elif flag in ("-f", "-n", "-M", "-u"):
            raise NotSupportedYet(flag, "ACL flag")
        else:
            raise ConfigError(f"unknown ACL flag '{flag}' (expected -i, -m or --)")
        i += 1
    patterns = tuple(words[i:])
    if fetch not in FETCHES:
        if fetch in LATER_FETCHES:
            raise NotSupportedYet(fetch, "ACL criterion")
        known = "path, url and hdr(name) (with _beg, _end, _sub or _reg), src, method"
        raise ConfigError(
            f"unknown ACL criterion '{fetch}'{hint(fetch, FETCHES)} (lbcore matches on {known})"
        )
    if arg is not None and not FETCHES[fetch]:
        raise ConfigError(f"'{fetch}' takes no argument, got '({arg})'")
    if arg is not None and ("," in arg or not arg):
        raise NotSupportedYet(f"{fetch}({arg})", "ACL criterion")
    if FETCHES[fetch] and arg is None:
        raise ConfigError(f"'{fetch}' needs a header name, as in {fetch}(host)")
    if fetch in TLS_BOOL_FETCHES and patterns:
        raise NotSupportedYet(f"{fetch} {patterns[0]}", "boolean fetch with a pattern")
    if fetch in TLS_INT_FETCHES and not all(p.isdigit() for p in patterns):
        raise ConfigError(f"'{fetch}' expects integer patterns, got {' '.join(patterns)!r}")
    if not patterns and not allow_empty and fetch not in TLS_BOOL_FETCHES:
        raise ConfigError(f"ACL criterion '{words[0]}' needs at least one pattern")
    _check_patterns(fetch, patterns)
    return Matcher(fetch=fetch, arg=arg, patterns=patterns, ignore_case=ignore_case)


def _check_patterns(fetch: str, patterns: tuple[str, ...]) -> None:
    for pattern in patterns:
        if fetch.endswith("_reg"):
            try:
                re.compile(pattern)
            except re.error as exc:
                raise ConfigError(f"invalid regular expression '{pattern}': {exc}") from None
        elif fetch == "src":
            try:
                ipaddress.ip_network(pattern, strict=False)
            except ValueError:
                raise ConfigError(f"invalid address or network '{pattern}' for 'src'") from None


def parse_condition(
    words: Sequence[str], acls: Collection[str], source: Source | None = None
) -> Condition:
    """``if|unless terms...``; ``acls`` holds the names declared so far in this proxy;
    ``source`` is recorded on anonymous ACLs."""
    if not words or words[0] not in ("if", "unless"):
        raise ConfigError("expected 'if' or 'unless' before a condition")
    unless = words[0] == "unless"
    groups: list[tuple[AclTerm, ...]] = []
    group: list[AclTerm] = []
    negate = False
    i = 1
    while i < len(words):
        word = words[i]
        while word.startswith("!"):
            negate, word = not negate, word[1:]
        if not word:
            i += 1
            continue
        if word == "||" or word.lower() == "or":
            if not group:
                raise ConfigError(f"'{word}' without a condition before it")
            groups.append(tuple(group))
            group, negate = [], False
            i += 1
            continue
        if word == "{":
            try:
                end = list(words).index("}", i + 1)
            except ValueError:
                raise ConfigError("missing closing '}' in anonymous ACL") from None
            matcher = dataclasses.replace(parse_matcher(words[i + 1 : end]), source=source)
            group.append(AclTerm(negate=negate, anonymous=matcher))
            i = end + 1
        elif word in acls:
            group.append(AclTerm(negate=negate, name=word))
            i += 1
        elif word in PREDEFINED:
            group.append(AclTerm(negate=negate, anonymous=PREDEFINED[word]))
            i += 1
        elif word in _LATER_PREDEFINED:
            raise NotSupportedYet(word, "predefined ACL")
        else:
            raise ConfigError(f"no such ACL: '{word}' (ACLs must be declared before use)")
        negate = False
    if not group:
        raise ConfigError(
            f"missing condition after '{words[0]}'" if not groups else "dangling '||'"
        )
    groups.append(tuple(group))
    return Condition(unless=unless, groups=tuple(groups))


def split_condition(words: Sequence[str]) -> tuple[list[str], list[str]]:
    """Split a rule's words at ``if``/``unless``: (action words, condition words)."""
    for i, word in enumerate(words):
        if word in ("if", "unless"):
            return list(words[:i]), list(words[i:])
    return list(words), []
