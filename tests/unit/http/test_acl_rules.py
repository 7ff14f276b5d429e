"""ACL predicates and http-request/http-response rules on parsed request vectors."""

from __future__ import annotations

import pytest

from lbcore.config.model import Acl, AclTerm, Condition, HttpRule, Matcher
from lbcore.http import errors
from lbcore.http.acl import compile_condition, compile_matcher
from lbcore.http.h1 import Reader, Request, Response
from lbcore.http.rules import Verdict, apply_request_rules, apply_response_rules, compile_rules


def req(raw: bytes) -> Request:
    r = Reader(True)
    r.feed(raw)
    ev = r.next_event()
    assert isinstance(ev, Request)
    return ev


GET = req(
    b"GET /api/v1/items?x=1 HTTP/1.1\r\nHost: Shop.example.com\r\n"
    b"Accept: text/html, application/json\r\n\r\n"
)


@pytest.mark.parametrize(
    "fetch, arg, patterns, icase, expected",
    [
        ("path", None, ("/api/v1/items",), False, True),
        ("path", None, ("/api/v1/items?x=1",), False, False),  # no query string
        ("path", None, ("/API/V1/ITEMS",), True, True),
        ("path_beg", None, ("/static", "/api"), False, True),
        ("path_end", None, (".png", "items"), False, True),
        ("path_reg", None, (r"^/api/v[0-9]+/",), False, True),
        ("path_reg", None, (r"^/API/",), True, True),
        ("path_reg", None, (r"^/static",), False, False),
        ("hdr", "host", ("shop.example.com",), False, False),
        ("hdr", "host", ("shop.example.com",), True, True),
        ("hdr", "Accept", ("application/json",), False, True),  # comma-split values
        ("hdr_beg", "host", ("Shop.",), False, True),
        ("hdr_beg", "x-missing", ("a",), False, False),
        ("method", None, ("POST", "GET"), False, True),
        ("method", None, ("get",), False, False),
        ("src", None, ("10.0.0.0/8", "127.0.0.1"), False, True),
        ("src", None, ("192.168.0.0/16",), False, False),
    ],
)
def test_matchers(
    fetch: str, arg: str | None, patterns: tuple[str, ...], icase: bool, expected: bool
) -> None:
    pred = compile_matcher(Matcher(fetch, arg, patterns, icase))
    assert pred(GET, "127.0.0.1") is expected


def test_src_matches_ipv4_mapped_and_v6() -> None:
    assert compile_matcher(Matcher("src", None, ("127.0.0.0/8",)))(GET, "::ffff:127.0.0.5")
    assert compile_matcher(Matcher("src", None, ("::1",)))(GET, "::1")
    assert not compile_matcher(Matcher("src", None, ("::1",)))(GET, "127.0.0.1")


def test_condition_or_of_and_groups_negation_unless() -> None:
    acls = [
        Acl("is_api", Matcher("path_beg", None, ("/api",))),
        Acl("is_static", Matcher("path_beg", None, ("/static",))),
        Acl("is_static", Matcher("path_end", None, (".css",))),  # same name: OR-ed
        Acl("local", Matcher("src", None, ("127.0.0.0/8",))),
    ]
    T = AclTerm
    # is_api local || is_static
    cond = Condition(False, ((T(False, "is_api"), T(False, "local")), (T(False, "is_static"),)))
    pred = compile_condition(cond, acls)
    assert pred(GET, "127.0.0.1")
    assert not pred(GET, "10.0.0.1")
    assert pred(req(b"GET /x.css HTTP/1.1\r\nHost: h\r\n\r\n"), "10.0.0.1")
    # unless !is_api → true when it is an API path
    cond = Condition(True, ((T(True, "is_api"),),))
    assert compile_condition(cond, acls)(GET, "1.1.1.1")
    anon = Condition(False, ((T(False, anonymous=Matcher("method", None, ("GET",))),),))
    assert compile_condition(anon, acls)(GET, "")
    assert compile_condition(None, acls)(GET, "")


def test_request_rules_in_order_and_final_actions() -> None:
    on_api = Condition(False, ((AclTerm(False, anonymous=Matcher("path_beg", None, ("/api",))),),))
    rules = compile_rules(
        [
            HttpRule("set-header", name="X-Real-IP", value="%[src]"),
            HttpRule("add-header", name="X-Tag", value="a"),
            HttpRule("add-header", name="X-Tag", value="b"),
            HttpRule("del-header", name="Accept"),
            HttpRule("set-header", name="Host", value="internal"),
            HttpRule("deny", code=429, condition=on_api),
        ],
        [],
    )
    r = req(GET_RAW)
    verdict = apply_request_rules(rules, r, "10.1.2.3")
    assert verdict == Verdict(429)
    assert r.headers == [
        (b"x-real-ip", b"10.1.2.3"),
        (b"x-tag", b"a"),
        (b"x-tag", b"b"),
        (b"host", b"internal"),
    ]


GET_RAW = b"GET /api HTTP/1.1\r\nHost: h\r\nAccept: */*\r\n\r\n"


@pytest.mark.parametrize(
    "kind, value, code, location",
    [
        ("location", "/new", 301, b"/new"),
        ("prefix", "https://other.example", None, b"https://other.example/old/p?q=1"),
        ("scheme", "https", 308, b"https://site.example/old/p?q=1"),
    ],
)
def test_redirects(kind: str, value: str, code: int | None, location: bytes) -> None:
    rules = compile_rules([HttpRule("redirect", value=value, redirect_kind=kind, code=code)], [])
    r = req(b"GET /old/p?q=1 HTTP/1.1\r\nHost: site.example\r\n\r\n")
    assert apply_request_rules(rules, r, "") == Verdict(code or 302, location)


def test_response_rules() -> None:
    rules = compile_rules(
        [HttpRule("set-header", name="Server", value="lb"), HttpRule("del-header", name="X-Pow")],
        [],
    )
    resp = Response(200, b"OK", b"1.1", [(b"server", b"app"), (b"x-pow", b"php")])
    assert apply_response_rules(rules, resp, GET, "") is None
    assert resp.headers == [(b"server", b"lb")]


def test_error_pages_match_haproxy_bytes() -> None:
    # Captured from haproxy 2.6.12 on this machine (see the module doc of errors).
    assert errors.error_page(503) == (
        b"HTTP/1.1 503 Service Unavailable\r\ncontent-length: 107\r\ncache-control: no-cache\r\n"
        b"content-type: text/html\r\n\r\n<html><body><h1>503 Service Unavailable</h1>\n"
        b"No server is available to handle this request.\n</body></html>\n"
    )
    assert errors.error_page(400) == (
        b"HTTP/1.1 400 Bad request\r\nContent-length: 90\r\nCache-Control: no-cache\r\n"
        b"Connection: close\r\nContent-Type: text/html\r\n\r\n<html><body><h1>400 Bad request"
        b"</h1>\nYour browser sent an invalid request.\n</body></html>\n"
    )
    assert errors.redirect(301, b"/new", False) == (
        b"HTTP/1.1 301 Moved Permanently\r\ncontent-length: 0\r\nlocation: /new\r\n\r\n"
    )
