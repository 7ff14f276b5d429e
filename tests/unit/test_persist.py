"""Cookie persistence vectors; the expected strings are what HAProxy 2.6 emitted live
for the same configuration and requests (see the module docstring of lbcore.persist)."""

import pytest

from lbcore.persist import (
    ClientCookie,
    CookieSettings,
    ServerCookie,
    decode_date,
    encode_date,
    inspect_request,
    on_response,
)

KNOWN = {"w1", "w2"}
INSERT = CookieSettings(
    "SRV",
    "insert",
    indirect=True,
    nocache=True,
    httponly=True,
    secure=True,
    domains=(".example.com",),
)
NOW = 1_795_663_556.0


def test_four_steps_insert_indirect():
    first = inspect_request(INSERT, [], KNOWN, NOW)
    assert first.status is ClientCookie.NONE
    resp = on_response(INSERT, [], [], "w1", first, "GET", NOW)
    assert resp.set_cookies == ("SRV=w1; path=/; domain=.example.com; HttpOnly; Secure",)
    assert resp.status is ServerCookie.INSERTED
    again = inspect_request(INSERT, ["SRV=w1; other=1"], KNOWN, NOW)
    assert (again.value, again.status) == ("w1", ClientCookie.VALID)
    assert again.forward == ("other=1",)  # indirect hides the cookie from the server
    resp2 = on_response(INSERT, [], [], "w1", again, "GET", NOW)
    assert resp2.set_cookies == () and resp2.status is ServerCookie.NONE


def test_invalid_cookie_is_redispatched_and_reinserted():
    req = inspect_request(INSERT, ["SRV=bogus"], KNOWN, NOW)
    assert (req.value, req.status, req.forward) == (None, ClientCookie.INVALID, ())
    resp = on_response(INSERT, [], [], "w2", req, "GET", NOW)
    assert resp.set_cookies == ("SRV=w2; path=/; domain=.example.com; HttpOnly; Secure",)


@pytest.mark.parametrize(
    ("headers", "private"),
    [
        ([("Cache-Control", "public, max-age=60")], True),
        ([("Cache-Control", "max-age=60")], True),
        ([("Expires", "Thu, 01 Dec 2099 16:00:00 GMT")], True),
        ([("Last-Modified", "Thu, 01 Dec 2000 16:00:00 GMT")], True),
        ([("Cache-Control", "private")], False),
        ([("Cache-Control", "no-cache")], False),
        ([], False),
    ],
)
def test_nocache_marks_only_cacheable_responses_private(headers, private):
    resp = on_response(
        INSERT, [], headers, "w1", inspect_request(INSERT, [], KNOWN, NOW), "GET", NOW
    )
    assert (("Cache-control", "private") in resp.add_headers) is private


def test_insert_without_indirect_lets_the_server_see_the_cookie():
    s = CookieSettings("SRV", "insert")
    req = inspect_request(s, ["SRV=w2; a=b"], KNOWN, NOW)
    assert req.forward == ("SRV=w2; a=b",)


def test_insert_replaces_the_servers_own_cookie_unless_preserve():
    req = inspect_request(INSERT, [], KNOWN, NOW)
    resp = on_response(INSERT, ["SRV=app; path=/", "x=1"], [], "w1", req, "GET", NOW)
    assert resp.set_cookies[0] == "x=1" and resp.set_cookies[1].startswith("SRV=w1;")
    keep = CookieSettings("SRV", "insert", preserve=True)
    resp = on_response(
        keep, ["SRV=; expires=Thu, 01 Jan 1970 00:00:00 GMT"], [], "w1", req, "GET", NOW
    )
    assert resp.set_cookies == ("SRV=; expires=Thu, 01 Jan 1970 00:00:00 GMT",)
    assert resp.status is ServerCookie.PROVIDED


def test_postonly_inserts_only_on_post():
    s = CookieSettings("SRV", "insert", postonly=True)
    req = inspect_request(s, [], KNOWN, NOW)
    assert on_response(s, [], [], "w1", req, "GET", NOW).set_cookies == ()
    assert on_response(s, [], [], "w1", req, "POST", NOW).set_cookies == ("SRV=w1; path=/",)


def test_prefix_mode_round_trip():
    s = CookieSettings("JSESSIONID", "prefix")
    resp = on_response(
        s, ["JSESSIONID=abc123; path=/"], [], "w1", inspect_request(s, [], KNOWN, NOW), "GET", NOW
    )
    assert resp.set_cookies == ("JSESSIONID=w1~abc123; path=/",)
    assert resp.status is ServerCookie.REWRITTEN
    req = inspect_request(s, ["JSESSIONID=w2~abc123"], KNOWN, NOW)
    assert (req.value, req.forward) == ("w2", ("JSESSIONID=abc123",))


def test_rewrite_mode():
    s = CookieSettings("SRV", "rewrite")
    resp = on_response(
        s, ["SRV=abc123; path=/"], [], "w1", inspect_request(s, [], KNOWN, NOW), "GET", NOW
    )
    assert resp.set_cookies == ("SRV=w1; path=/",)
    req = inspect_request(s, ["SRV=w2"], KNOWN, NOW)
    assert (req.value, req.forward) == ("w2", ("SRV=w2",))


def test_dates_match_haproxy_encoding():
    assert encode_date(NOW) == "awemx"  # what HAProxy 2.6 wrote at this second
    assert decode_date("awemx") == int(NOW) & ~3
    assert decode_date("!!!!!") is None


def test_maxidle_and_maxlife():
    s = CookieSettings("SRV", "insert", maxidle=1800, maxlife=7200)
    undated = inspect_request(s, ["SRV=w1"], KNOWN, NOW)
    assert undated.status is ClientCookie.VALID
    resp = on_response(s, [], [], "w1", undated, "GET", NOW)
    assert resp.set_cookies == ("SRV=w1|awemx|awemx; path=/",)
    idle = f"SRV=w1|{encode_date(NOW - 3600)}|{encode_date(NOW - 3600)}"
    assert inspect_request(s, [idle], KNOWN, NOW).status is ClientCookie.EXPIRED
    old = f"SRV=w1|{encode_date(NOW - 60)}|{encode_date(NOW - 8000)}"
    assert inspect_request(s, [old], KNOWN, NOW).status is ClientCookie.OLD
    fresh = f"SRV=w1|{encode_date(NOW - 60)}|{encode_date(NOW - 600)}"
    req = inspect_request(s, [fresh], KNOWN, NOW)
    assert req.status is ClientCookie.VALID
    resp = on_response(s, [], [], "w1", req, "GET", NOW)
    assert resp.status is ServerCookie.UPDATED
    assert resp.set_cookies == (f"SRV=w1|awemx|{encode_date(NOW - 600)}; path=/",)


def test_bad_mode_rejected():
    with pytest.raises(ValueError):
        CookieSettings("SRV", "sticky")
