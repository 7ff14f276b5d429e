"""TLS fetches in ACLs and TLS samples in header values, on requests built here."""

from __future__ import annotations

import pytest

from lbcore.config import ConfigErrors
from lbcore.config.acl import parse_matcher
from lbcore.config.model import HttpRule
from lbcore.config.parser import parse_text
from lbcore.http.acl import compile_matcher
from lbcore.http.h1 import Request
from lbcore.http.rules import apply_request_rules, compile_rules
from lbcore.tls.info import TlsInfo


def _req(conn: TlsInfo | None) -> Request:
    req = Request(b"GET", b"/", b"1.1", [(b"host", b"a.test")])
    req.conn = conn
    return req


TLS = TlsInfo(ssl_fc=True, sni="Shop.Example.com", c_used=True, version="TLSv1.3")
NO_CERT = TlsInfo(ssl_fc=True, sni=None)
HELLO = TlsInfo(hello_type=1, hello_sni="b.test")


@pytest.mark.parametrize(
    ("words", "conn", "expected"),
    [
        (["ssl_fc"], TLS, True),
        (["ssl_fc"], None, False),
        (["ssl_fc"], TlsInfo(), False),
        (["ssl_c_used"], TLS, True),
        (["ssl_c_used"], NO_CERT, False),
        (["ssl_fc_has_sni"], NO_CERT, False),
        (["ssl_fc_sni", "shop.example.com"], TLS, False),  # case matters without -i
        (["ssl_fc_sni", "-i", "shop.example.com"], TLS, True),
        (["ssl_fc_sni", "-i", "-m", "end", ".example.com"], TLS, True),
        (["ssl_fc_sni_end", "-i", ".example.org"], TLS, False),
        (["ssl_fc_sni", "-i", "shop.example.com"], NO_CERT, False),
        (["req.ssl_sni", "-i", "B.TEST"], HELLO, True),
        (["req_ssl_sni", "b.test"], HELLO, True),
        (["req.ssl_sni", "b.test"], None, False),
        (["req.ssl_hello_type", "1"], HELLO, True),
        (["req.ssl_hello_type", "1"], TlsInfo(), False),
        (["req_ssl_hello_type", "0"], TlsInfo(), True),
    ],
)
def test_tls_fetches(words: list[str], conn: TlsInfo | None, expected: bool) -> None:
    pred = compile_matcher(parse_matcher(words))
    assert pred(_req(conn), "127.0.0.1") is expected


def test_tls_samples_in_header_values() -> None:
    rules = compile_rules(
        [
            HttpRule("set-header", name="X-SSL", value="%[ssl_fc]"),
            HttpRule("set-header", name="X-SNI", value="sni=%[ssl_fc_sni];v=%[ssl_fc_protocol]"),
            HttpRule("set-header", name="X-Cert", value="%[ssl_c_used]"),
            HttpRule("set-header", name="X-Src", value="%[src]:%[unknown]"),
        ],
        [],
    )
    req = _req(TLS)
    assert apply_request_rules(rules, req, "10.0.0.1") is None
    h = dict(req.headers)
    assert h[b"x-ssl"] == b"1"
    assert h[b"x-sni"] == b"sni=Shop.Example.com;v=TLSv1.3"
    assert h[b"x-cert"] == b"1"
    assert h[b"x-src"] == b"10.0.0.1:%[unknown]"
    plain = _req(None)
    apply_request_rules(rules, plain, "10.0.0.2")
    h = dict(plain.headers)
    assert (h[b"x-ssl"], h[b"x-sni"], h[b"x-cert"]) == (b"0", b"sni=;v=", b"0")


BASE = """\
defaults
    mode http
    timeout connect 1s
    timeout client 1s
    timeout server 1s
frontend fe
    bind 127.0.0.1:18443 {bind}
    {line}
    default_backend be
backend be
    server s1 127.0.0.1:8080 {server}
"""


def test_the_config_model_carries_bind_and_server_tls() -> None:
    cfg = parse_text(
        BASE.format(
            bind="ssl crt /a.pem crt /b.pem crt-list /l.txt alpn h2,http/1.1 ssl-min-ver TLSv1.2 "
            "ssl-max-ver TLSv1.3 ciphers ECDHE+AESGCM ciphersuites TLS_AES_128_GCM_SHA256 "
            "no-tlsv11 no-tls-tickets strict-sni ca-file /ca.pem verify optional",
            line="http-request set-header X-Forwarded-Proto https if { ssl_fc }",
            server="ssl verify required ca-file /ca.pem sni req.hdr(host) crt /c.pem alpn h2",
        )
    )
    fe = cfg.frontends[0]
    tls = fe.binds[0].tls
    assert tls is not None
    assert tls.crts == ("/a.pem", "/b.pem") and tls.crt_lists == ("/l.txt",)
    assert tls.alpn == ("h2", "http/1.1")
    assert (tls.min_version, tls.max_version) == ("TLSv1.2", "TLSv1.3")
    assert tls.no_versions == ("no-tlsv11",) and not tls.tickets and tls.strict_sni
    assert (tls.ca_file, tls.verify) == ("/ca.pem", "optional")
    server = cfg.backends["be"].servers[0].tls
    assert server is not None
    assert (server.verify, server.ca_file, server.sni, server.crt, server.alpn) == (
        "required",
        "/ca.pem",
        "req.hdr(host)",
        "/c.pem",
        ("h2",),
    )


def test_tcp_request_content_rules_are_parsed() -> None:
    cfg = parse_text(
        BASE.replace("mode http", "mode tcp").format(
            bind="",
            line="tcp-request inspect-delay 5s\n    tcp-request content accept if "
            "{ req.ssl_hello_type 1 }\n    tcp-request content reject",
            server="",
        )
    )
    fe = cfg.frontends[0]
    assert fe.tcp_inspect_delay == 5.0
    assert [r.action for r in fe.tcp_request_content] == ["accept", "reject"]
    assert fe.tcp_request_content[1].condition is None


def test_options_without_ssl_are_a_warning_and_a_plain_listener() -> None:
    from lbcore.config.parser import parse_texts

    cfg, warnings = parse_texts([("t.cfg", BASE.format(bind="crt /a.pem", line="", server=""))])
    assert cfg.frontends[0].binds[0].tls is None
    assert any("without 'ssl'" in w for w in warnings)


def test_server_sni_expressions_lbcore_does_not_evaluate_are_refused() -> None:
    with pytest.raises(ConfigErrors, match="not supported yet"):
        parse_text(BASE.format(bind="", line="", server="ssl verify none sni hdr(x-name)"))
