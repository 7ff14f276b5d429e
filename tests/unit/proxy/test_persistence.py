"""The persistence hooks of the HTTP adapter (lbcore.proxy.persistence) on real
request/response heads parsed by lbcore.http.h1."""

from __future__ import annotations

from lbcore.config.parser import parse_text
from lbcore.http.h1 import Reader, Request, Response
from lbcore.proxy import persistence
from lbcore.server import AdminState, OpState, ServerRuntime

CONFIG = """
defaults
    mode http
frontend fe
    bind 127.0.0.1:8080
    default_backend app
backend app
    cookie SRV insert indirect nocache
    server web1 127.0.0.1:9001 cookie w1
    server web2 127.0.0.1:9002 cookie w2
"""
NOW = 1_795_663_556.0


def setup() -> tuple[persistence.Policy, list[ServerRuntime]]:
    proxy = parse_text(CONFIG).backends["app"]
    servers = [ServerRuntime(config=s, backend="app") for s in proxy.servers]
    policy = persistence.for_backend(proxy, servers)
    assert policy is not None
    return policy, servers


def set_cookie(resp: Response) -> bytes | None:
    return next((v for n, v in resp.headers if n == b"set-cookie"), None)


def request(head: bytes) -> Request:
    reader = Reader(is_request=True)
    reader.feed(head)
    ev = reader.next_event()
    assert isinstance(ev, Request)
    return ev


def response(head: bytes) -> Response:
    reader = Reader(is_request=False)
    reader.feed(head)
    ev = reader.next_event()
    assert isinstance(ev, Response)
    return ev


def test_valid_cookie_sticks_and_is_hidden_from_the_server() -> None:
    policy, (web1, _web2) = setup()
    req = request(b"GET / HTTP/1.1\r\nhost: a\r\ncookie: SRV=w1; app=1\r\n\r\n")
    out = persistence.on_request(policy, req, NOW)
    assert (out.server, out.client_flag) == (web1, "V")
    assert req.header(b"cookie") == b"app=1"
    assert persistence.take(out) is web1 and (web1.active, web1.total) == (1, 1)
    resp = response(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n")
    persistence.on_response(policy, out, resp, web1, b"GET")
    assert out.server_flag == "N" and set_cookie(resp) is None


def test_first_request_gets_the_cookie_and_nocache() -> None:
    policy, (_web1, web2) = setup()
    req = request(b"GET / HTTP/1.1\r\nhost: a\r\n\r\n")
    out = persistence.on_request(policy, req, NOW)
    assert (out.server, out.client_flag, persistence.take(out)) == (None, "N", None)
    resp = response(b"HTTP/1.1 200 OK\r\ncache-control: max-age=9\r\ncontent-length: 0\r\n\r\n")
    persistence.on_response(policy, out, resp, web2, b"GET")
    assert set_cookie(resp) == b"SRV=w2; path=/"
    assert (b"cache-control", b"private") in resp.headers
    assert out.server_flag == "I"


def test_down_or_maint_server_redispatches_drain_keeps() -> None:
    policy, (web1, _web2) = setup()
    for op, admin, flag, sticks in (
        (OpState.DOWN, AdminState.READY, "D", False),
        (OpState.UP, AdminState.MAINT, "D", False),
        (OpState.UP, AdminState.DRAIN, "V", True),
    ):
        web1.op_state, web1.admin_state = op, admin
        req = request(b"GET / HTTP/1.1\r\nhost: a\r\ncookie: SRV=w1\r\n\r\n")
        out = persistence.on_request(policy, req, NOW)
        assert (out.client_flag, out.server is web1) == (flag, sticks)
