"""``global`` TLS defaults (crt-base, ssl-default-bind-*, ssl-default-server-*,
ssl-server-verify) applied to bind and server lines as HAProxy applies them."""

from __future__ import annotations

import pytest

from lbcore.config import ConfigErrors
from lbcore.config.parser import parse_text

# Mozilla's "intermediate" HAProxy 2.6 recommendation, plus bases
GLOBAL = """\
global
    crt-base /etc/certs
    ca-base /etc/ca
    ssl-default-bind-ciphers ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256
    ssl-default-bind-ciphersuites TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384
    ssl-default-bind-options prefer-client-ciphers no-sslv3 no-tlsv10 no-tlsv11 no-tls-tickets
    ssl-default-server-ciphers ECDHE-ECDSA-AES128-GCM-SHA256
    ssl-default-server-ciphersuites TLS_AES_128_GCM_SHA256
    ssl-default-server-options no-sslv3 no-tlsv10 no-tlsv11 no-tls-tickets
    tune.ssl.default-dh-param 2048
{extra}
defaults
    mode http
    timeout connect 1s
    timeout client 1s
    timeout server 1s
frontend fe
    bind 127.0.0.1:18443 ssl crt site.pem {bind}
    default_backend be
backend be
    server s1 127.0.0.1:8443 ssl {server}
"""


def test_global_defaults_apply_under_what_the_line_says() -> None:
    cfg = parse_text(
        GLOBAL.format(extra="", bind="ssl-min-ver TLSv1.3", server="ca-file ca.pem crt c.pem")
    )
    tls = cfg.frontends[0].binds[0].tls
    assert tls is not None
    assert tls.crts == ("/etc/certs/site.pem",)
    assert tls.ciphers == "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256"
    assert tls.ciphersuites == "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384"
    assert tls.min_version == "TLSv1.3"  # the line wins
    assert tls.no_versions == ("no-sslv3", "no-tlsv10", "no-tlsv11")
    assert not tls.tickets and tls.prefer_client_ciphers
    assert cfg.global_.tls.dh_param == 2048
    server = cfg.backends["be"].servers[0].tls
    assert server is not None
    assert (server.verify, server.ca_file, server.crt) == (
        "required",
        "/etc/ca/ca.pem",
        "/etc/certs/c.pem",
    )
    assert server.ciphers == "ECDHE-ECDSA-AES128-GCM-SHA256"
    assert server.no_versions == ("no-sslv3", "no-tlsv10", "no-tlsv11") and not server.tickets


def test_a_verified_server_needs_a_ca_file_unless_ssl_server_verify_none() -> None:
    with pytest.raises(ConfigErrors, match=r"test.cfg:21: server s1: verify is enabled"):
        parse_text(GLOBAL.format(extra="", bind="", server=""), "test.cfg")
    cfg = parse_text(GLOBAL.format(extra="    ssl-server-verify none", bind="", server=""))
    server = cfg.backends["be"].servers[0].tls
    assert server is not None and server.verify == "none"
    # an explicit verify on the line still wins over the global default
    with pytest.raises(ConfigErrors, match="verify is enabled"):
        parse_text(
            GLOBAL.format(extra="    ssl-server-verify none", bind="", server="verify required")
        )


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("ssl-default-bind-options no-tlsv99", "unknown option 'no-tlsv99'"),
        ("ssl-default-bind-options ssl-min-ver TLSv7", "unknown version 'TLSv7'"),
        ("ssl-server-verify sometimes", "'ssl-server-verify' expects 'none' or 'required'"),
        ("ssl-default-server-options sni str(x)", "not supported yet"),
        ("crt-base", "'crt-base' expects a directory"),
    ],
)
def test_bad_global_tls_lines(line: str, message: str) -> None:
    with pytest.raises(ConfigErrors, match=message):
        parse_text(GLOBAL.format(extra=f"    {line}", bind="", server="verify none"))
