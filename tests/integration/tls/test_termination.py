"""TLS termination: SNI certificate choice, HTTPS over plain servers, redirects, HSTS,
TLS fetches in rules, version and cipher settings, session resumption.

Must show 1, 2 and 5 of issue 4. Certificates are made by the test (trustme): a CA and
three sites — a.test (RSA), b.test (ECDSA), *.c.test (RSA wildcard).
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import ssl
import subprocess
import warnings

import pytest

from tests.integration.tls.conftest import Lbcore, Pki
from tests.integration.tls.harness import client_ctx, peer_der, request, tls_connect


@pytest.mark.parametrize(
    ("sni", "site", "key"),
    [("a.test", "a", "RSA"), ("b.test", "b", "EC"), ("www.c.test", "c", "RSA")],
)
def test_each_sni_name_gets_its_own_certificate_verified_against_the_ca(
    lab: Lbcore, pki: Pki, sni: str, site: str, key: str
) -> None:
    ctx = client_ctx(pki.ca_path)  # verifies chain AND name
    with tls_connect(lab.ports["https"], sni, ctx) as s:
        assert peer_der(s) == getattr(pki, site).cert_der
        cipher = s.cipher()
        assert cipher is not None
        if s.version() == "TLSv1.2":  # the suite names the key type only up to 1.2
            assert ("ECDSA" in cipher[0]) == (key == "EC")
        status, _h, _body = request(s, host=sni)
        assert status == 200


def test_b_is_served_with_an_ecdsa_key(lab: Lbcore, pki: Pki) -> None:
    from cryptography import x509
    from cryptography.hazmat.primitives.asymmetric import ec

    with tls_connect(lab.ports["https"], "b.test", client_ctx(pki.ca_path)) as s:
        cert = x509.load_der_x509_certificate(peer_der(s))
    assert isinstance(cert.public_key(), ec.EllipticCurvePublicKey)


@pytest.mark.parametrize("sni", ["unknown.test", "c.test", None])
def test_an_unknown_name_or_no_sni_gets_the_default_first_certificate(
    lab: Lbcore, pki: Pki, sni: str | None
) -> None:
    # c.test is not covered by *.c.test (a wildcard matches one label exactly)
    with tls_connect(lab.ports["https"], sni, client_ctx(None)) as s:
        assert peer_der(s) == pki.a.cert_der


def test_strict_sni_refuses_an_unknown_name_and_serves_known_ones(lab: Lbcore, pki: Pki) -> None:
    # refused during the handshake (the alert may be lost as the connection closes)
    with pytest.raises((ssl.SSLError, ConnectionError)):
        tls_connect(lab.ports["strict"], "unknown.test", client_ctx(None)).close()
    with pytest.raises((ssl.SSLError, ConnectionError)):
        tls_connect(lab.ports["strict"], None, client_ctx(None)).close()
    # the crt-list names b.test explicitly; a.test comes from the certificate itself
    for sni, site in (("b.test", pki.b), ("a.test", pki.a)):
        with tls_connect(lab.ports["strict"], sni, client_ctx(pki.ca_path)) as s:
            assert peer_der(s) == site.cert_der


def test_https_is_balanced_over_plain_servers_with_x_forwarded_proto_and_hsts(
    lab: Lbcore, pki: Pki
) -> None:
    seen: list[str] = []
    with tls_connect(lab.ports["https"], "a.test", client_ctx(pki.ca_path)) as s:
        assert s.selected_alpn_protocol() in (None, "http/1.1")
        for _ in range(6):  # keep-alive: one TLS connection, six requests
            status, headers, body = request(s, host="a.test")
            assert status == 200
            answer = json.loads(body)
            seen.append(answer["server"])
            assert answer["headers"]["x-forwarded-proto"] == "https"
            assert "x-sni-b" not in answer["headers"]
            assert "x-client-cert" not in answer["headers"]
            assert headers["strict-transport-security"] == "max-age=31536000; includeSubDomains"
    assert sorted(set(seen)) == ["p1", "p2"]
    assert seen.count("p1") == seen.count("p2")


def test_ssl_fc_sni_in_an_acl(lab: Lbcore, pki: Pki) -> None:
    with tls_connect(lab.ports["https"], "b.test", client_ctx(pki.ca_path)) as s:
        _status, _h, body = request(s, host="b.test")
    headers = json.loads(body)["headers"]
    assert headers["x-sni-b"] == "yes"
    assert headers["x-ssl-info"] == "sni=b.test;ssl=1"  # TLS samples in a header value


def test_plain_http_is_redirected_to_https(lab: Lbcore) -> None:
    with socket.create_connection(("127.0.0.1", lab.ports["http"]), timeout=5) as s:
        status, headers, _body = request(s, path="/shop?item=1", host="www.example.test")
        assert status == 301
        assert headers["location"] == "https://www.example.test/shop?item=1"
        # the plain side never reached a server, and was not told X-Forwarded-Proto
        assert "strict-transport-security" not in headers


def test_ssl_c_used_sees_a_client_certificate(lab: Lbcore, pki: Pki) -> None:
    ctx = client_ctx(pki.ca_path)
    with tls_connect(lab.ports["mtls"], "a.test", ctx) as s:
        _st, _h, body = request(s, host="a.test")
        assert "x-client-cert" not in json.loads(body)["headers"]
    ctx = client_ctx(pki.ca_path)
    ctx.load_cert_chain(str(pki.client.pem))
    with tls_connect(lab.ports["mtls"], "a.test", ctx) as s:
        _st, _h, body = request(s, host="a.test")
        assert json.loads(body)["headers"]["x-client-cert"] == "yes"


def _old_client(max_version: ssl.TLSVersion) -> ssl.SSLContext:
    ctx = client_ctx(None)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        ctx.set_ciphers("DEFAULT:@SECLEVEL=0")
        ctx.minimum_version = ssl.TLSVersion.TLSv1
        ctx.maximum_version = max_version
    return ctx


def test_ssl_min_ver_refuses_a_tls11_client(lab: Lbcore) -> None:
    with pytest.raises(ssl.SSLError) as err:
        tls_connect(lab.ports["min12"], "a.test", _old_client(ssl.TLSVersion.TLSv1_1)).close()
    # the hello went out (a client-side refusal would say NO_PROTOCOLS_AVAILABLE); the
    # server refused it (protocol_version alert, or the close that carries it)
    assert "NO_PROTOCOLS" not in str(err.value)
    with tls_connect(lab.ports["min12"], "a.test", client_ctx(None)) as s:
        assert s.version() in ("TLSv1.2", "TLSv1.3")


def test_ssl_min_ver_tls13_refuses_a_tls12_client(lab: Lbcore) -> None:
    ctx = client_ctx(None)
    ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    with pytest.raises(ssl.SSLError):
        tls_connect(lab.ports["min13"], "a.test", ctx).close()
    with tls_connect(lab.ports["min13"], "a.test", client_ctx(None)) as s:
        assert s.version() == "TLSv1.3"
    # the same client is fine where 1.2 is allowed
    with tls_connect(lab.ports["min12"], "a.test", ctx) as s:
        assert s.version() == "TLSv1.2"


def test_ssl_max_ver_and_ciphers_are_honoured(lab: Lbcore) -> None:
    with tls_connect(lab.ports["max12"], "b.test", client_ctx(None)) as s:
        assert s.version() == "TLSv1.2"
        cipher = s.cipher()
        assert cipher is not None and cipher[0] == "ECDHE-ECDSA-AES128-GCM-SHA256"
    ctx = client_ctx(None)
    ctx.set_ciphers("ECDHE-ECDSA-AES256-GCM-SHA384")  # not in the bind's list
    ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    with pytest.raises(ssl.SSLError):
        tls_connect(lab.ports["max12"], "b.test", ctx).close()


@pytest.mark.parametrize("version", [ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3])
def test_sessions_resume_with_tickets(lab: Lbcore, pki: Pki, version: ssl.TLSVersion) -> None:
    ctx = client_ctx(pki.ca_path)
    ctx.maximum_version = version
    resumed = 0
    with tls_connect(lab.ports["https"], "a.test", ctx) as s:
        request(s, host="a.test")  # TLS 1.3 tickets arrive after the handshake
        session = s.session
        assert not s.session_reused
    assert session is not None and session.has_ticket
    # two workers: the ticket keys are shared, so whichever worker accepts resumes
    for _ in range(4):
        raw = socket.create_connection(("127.0.0.1", lab.ports["https"]), timeout=5)
        with ctx.wrap_socket(raw, server_hostname="a.test", session=session) as s:
            request(s, host="a.test")
            resumed += s.session_reused
    assert resumed == 4


def test_the_access_log_marks_tls_frontends_with_a_tilde(lab: Lbcore, pki: Pki) -> None:
    with tls_connect(lab.ports["https"], "a.test", client_ctx(pki.ca_path)) as s:
        request(s, path="/tls-logged", host="a.test")
    with socket.create_connection(("127.0.0.1", lab.ports["http"]), timeout=5) as s:
        request(s, path="/plain-logged", host="a.test")
    lines = lab.log_lines("/plain-logged")
    tls = [x for x in lines if "/tls-logged" in x]
    plain = [x for x in lines if "/plain-logged" in x]
    assert len(tls) == 1 and " https~ plain/" in tls[0], lines
    assert len(plain) == 1 and " https https/<NOSRV> " in plain[0] and " 301 " in plain[0]


@pytest.mark.parametrize(("sni", "server"), [("a.test", "p1"), ("b.test", "p2")])
def test_tls_terminated_in_tcp_mode_routes_on_ssl_fc_sni(
    lab: Lbcore, pki: Pki, sni: str, server: str
) -> None:
    with tls_connect(lab.ports["tcptls"], sni, client_ctx(pki.ca_path)) as s:
        for _ in range(2):  # clear bytes reach the plain server (never spliced ciphertext)
            status, _h, body = request(s, host=sni)
            assert status == 200
            assert json.loads(body)["server"] == server


def test_haproxy_accepts_the_whole_lab_configuration(lab: Lbcore) -> None:
    """Every TLS line this package runs (bind ssl ..., server ssl ..., tcp-request, TLS
    fetches, %[ssl_fc_sni]) is also valid for HAProxy 2.6, with the same files."""
    exe = shutil.which("haproxy") or "/usr/sbin/haproxy"
    if not os.path.exists(exe):
        pytest.skip("haproxy is not installed (make deps installs it)")
    done = subprocess.run([exe, "-c", "-f", str(lab.cfg)], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
