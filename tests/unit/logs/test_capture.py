"""Capture rules (HAProxy 2.6's, checked live in tests/integration/proxy/test_access_log.py)
as byte vectors: last header occurrence, truncation, empty slots, first matching cookie."""

from lbcore.config import parse_text
from lbcore.config.model import Capture
from lbcore.logs.capture import Captures
from lbcore.logs.format import LogFormat
from lbcore.logs.record import RequestRecord

REQ = [
    (b"host", b"first.example"),
    (b"user-agent", b"curl/8.0"),
    (b"host", b"second.example"),
    (b"cookie", b"a=1; SIDX=abcdefghijk"),
    (b"cookie", b"SID=2"),
]
RESP = [
    (b"content-type", b"text/html; charset=utf-8"),
    (b"set-cookie", b"other=1; Path=/"),
    (b"set-cookie", b"SID=server-set; Path=/; HttpOnly"),
]


def caps(*, cookie: str | None = "SID", length: int = 10) -> Captures:
    return Captures(
        [Capture("Host", 6), Capture("X-Absent", 4), Capture("User-Agent", 64)],
        [Capture("Content-Type", 9)],
        Capture(cookie, length) if cookie is not None else None,
    )


def test_last_occurrence_truncated_and_absent_slots_kept() -> None:
    got = caps().on_request(REQ)
    assert got.request_headers == ("second", "", "curl/8.0")
    assert got.response_headers == ("",)  # until the server answers
    got.on_response(RESP)
    assert got.response_headers == ("text/html",)


def test_first_cookie_whose_name_starts_with_the_prefix() -> None:
    c = caps()
    assert c.request_cookie(REQ) == "SIDX=abcde"  # 10 characters, name included
    assert caps(cookie="SID=").request_cookie(REQ) == "SID=2"  # '=' asks the exact name
    assert c.response_cookie(RESP) == "SID=server"  # attributes are not part of it
    assert caps(cookie="zz").request_cookie(REQ) is None
    assert caps(cookie=None).request_cookie(REQ) is None


def test_formatted_as_haproxy_writes_them() -> None:
    got = caps().on_request([(b"host", b'a{b|c}"d'), (b"user-agent", b"x y")])
    r = RequestRecord(request_headers=got.request_headers, response_headers=("",))
    assert LogFormat("%hr %hs").render(r) == "{a#7Bb#7Cc#7D||x y} {}"
    assert LogFormat("%{+Q}hr").render(r) == '"{a#7Bb#7Cc#7D||x y}"'
    assert LogFormat("%hr %ST").render(RequestRecord()) == "-1"  # none: nothing written


def test_for_proxy_is_none_without_capture_lines() -> None:
    config = parse_text(
        "defaults\n mode http\nfrontend a\n bind :1\nfrontend b\n bind :2\n"
        " capture cookie S len 5\n",
        "t.cfg",
    )
    a, b = config.proxies
    assert Captures.for_proxy(a) is None
    captures = Captures.for_proxy(b)
    assert captures is not None and captures.request_cookie([(b"cookie", b"SX=123456")]) == "SX=12"


def test_a_local_answer_is_not_an_error_for_log_separate_errors() -> None:
    assert not RequestRecord(termination="LR", status=302).is_error
    assert RequestRecord(termination="PR", status=403).is_error
    assert RequestRecord(termination="--", status=503).is_error
    assert not RequestRecord(termination="--", status=404).is_error
