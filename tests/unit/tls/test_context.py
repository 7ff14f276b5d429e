"""SNI certificate selection, version limits and certificate checks, over real TLS
handshakes (in-memory BIOs, certificates made in the test with trustme)."""

from __future__ import annotations

import contextlib
import re
import ssl
from pathlib import Path

import pytest
import trustme

from lbcore.tls.context import BindTls, TlsConfigError, TlsSettings, load_bind


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    """A CA and three sites: RSA, ECDSA, and a wildcard (RSA)."""
    base = tmp_path_factory.mktemp("pki")
    ca = trustme.CA()
    ca.cert_pem.write_to_path(str(base / "ca.pem"))
    sites = {
        "a": (["a.example.test"], trustme.KeyType.RSA),
        "b": (["b.example.test"], trustme.KeyType.ECDSA),
        "w": (["*.wild.test"], trustme.KeyType.RSA),
    }
    paths = {}
    for name, (hosts, key_type) in sites.items():
        cert = ca.issue_cert(*hosts, key_type=key_type)
        path = base / f"{name}.pem"
        # HAProxy's layout: cert + chain + key in one PEM
        path.write_bytes(
            b"".join(b.bytes() for b in cert.cert_chain_pems) + cert.private_key_pem.bytes()
        )
        paths[name] = path
    return {"ca": ca, "dir": base, **paths}


def handshake(
    bind: BindTls, sni: str | None, ca: trustme.CA, client_max: ssl.TLSVersion | None = None
) -> ssl.SSLObject:
    """Run a full handshake between a client and ``bind`` in memory; return the client."""
    client_ctx = ssl.create_default_context()
    ca.configure_trust(client_ctx)
    client_ctx.check_hostname = False
    if client_max is not None:
        client_ctx.maximum_version = client_max
        client_ctx.minimum_version = ssl.TLSVersion.MINIMUM_SUPPORTED
        client_ctx.set_ciphers("DEFAULT:@SECLEVEL=0")
    c_in, c_out, s_in, s_out = (ssl.MemoryBIO() for _ in range(4))
    client = client_ctx.wrap_bio(c_in, c_out, server_hostname=sni)
    server = bind.default.wrap_bio(s_in, s_out, server_side=True)
    for _ in range(10):
        for side in (client, server):
            with contextlib.suppress(ssl.SSLWantReadError):
                side.do_handshake()
        s_in.write(c_out.read())
        c_in.write(s_out.read())
        try:
            client.do_handshake()
            server.do_handshake()
            return client
        except ssl.SSLWantReadError:
            continue
    raise AssertionError("handshake did not finish")


def served_name(client: ssl.SSLObject) -> str:
    cert = client.getpeercert()
    return next(v for k, v in cert["subjectAltName"])


def test_each_sni_name_gets_its_own_verified_certificate(pki):
    bind = load_bind(TlsSettings(crts=(str(pki["a"]), str(pki["b"]), str(pki["w"]))))
    assert served_name(handshake(bind, "a.example.test", pki["ca"])) == "a.example.test"
    assert served_name(handshake(bind, "b.example.test", pki["ca"])) == "b.example.test"
    assert served_name(handshake(bind, "x.wild.test", pki["ca"])) == "*.wild.test"
    assert [c.key_type for c in bind.certificates] == ["RSA", "EC", "RSA"]


def test_unknown_name_gets_the_first_certificate(pki):
    bind = load_bind(TlsSettings(crts=(str(pki["b"]), str(pki["a"]))))
    assert served_name(handshake(bind, "nobody.test", pki["ca"])) == "b.example.test"
    assert served_name(handshake(bind, None, pki["ca"])) == "b.example.test"


def test_strict_sni_refuses_unknown_names(pki):
    bind = load_bind(TlsSettings(crts=(str(pki["a"]),), strict_sni=True))
    assert served_name(handshake(bind, "a.example.test", pki["ca"])) == "a.example.test"
    with pytest.raises(ssl.SSLError):
        handshake(bind, "nobody.test", pki["ca"])


def test_directory_of_certificates(pki, tmp_path):
    crt_dir = tmp_path / "certs"
    crt_dir.mkdir()
    for name in ("a", "b"):
        (crt_dir / f"{name}.pem").write_bytes(pki[name].read_bytes())
    bind = load_bind(TlsSettings(crts=(str(crt_dir),)))
    assert served_name(handshake(bind, "b.example.test", pki["ca"])) == "b.example.test"


def test_crt_list_with_filters_and_options(pki, tmp_path):
    crt_list = tmp_path / "list.txt"
    crt_list.write_text(
        f"# site certificates\n{pki['a']} [alpn h2,http/1.1] alias.test\n{pki['b']}\n"
    )
    bind = load_bind(TlsSettings(crt_lists=(str(crt_list),)))
    client = handshake(bind, "alias.test", pki["ca"])
    assert served_name(client) == "a.example.test"  # chosen by the list's filter
    assert served_name(handshake(bind, "b.example.test", pki["ca"])) == "b.example.test"


def test_key_beside_the_certificate(pki, tmp_path):
    cert = pki["ca"].issue_cert("k.example.test")
    pem = tmp_path / "k.pem"
    pem.write_bytes(cert.cert_chain_pems[0].bytes())
    Path(f"{pem}.key").write_bytes(cert.private_key_pem.bytes())
    bind = load_bind(TlsSettings(crts=(str(pem),)))
    assert served_name(handshake(bind, "k.example.test", pki["ca"])) == "k.example.test"


def test_min_version_refuses_an_old_client(pki):
    strict = load_bind(TlsSettings(crts=(str(pki["a"]),), min_version="TLSv1.2"))
    with pytest.raises(ssl.SSLError):
        handshake(strict, "a.example.test", pki["ca"], client_max=ssl.TLSVersion.TLSv1_1)
    ok = handshake(strict, "a.example.test", pki["ca"], client_max=ssl.TLSVersion.TLSv1_2)
    assert ok.version() == "TLSv1.2"


def test_no_tlsv13_caps_the_version(pki):
    bind = load_bind(TlsSettings(crts=(str(pki["a"]),), no_versions=("no-tlsv13",)))
    assert handshake(bind, "a.example.test", pki["ca"]).version() == "TLSv1.2"


def test_missing_file_is_named(tmp_path):
    with pytest.raises(TlsConfigError, match=r"missing\.pem"):
        load_bind(TlsSettings(crts=(str(tmp_path / "missing.pem"),)))


def test_key_that_does_not_match_is_refused(pki, tmp_path):
    a_cert = b"".join(
        re.findall(
            rb"-----BEGIN CERTIFICATE-----.*?-----END CERTIFICATE-----\n",
            pki["a"].read_bytes(),
            re.S,
        )
    )
    other_key = pki["ca"].issue_cert("other.test").private_key_pem.bytes()
    bad = tmp_path / "bad.pem"
    bad.write_bytes(a_cert + other_key)
    with pytest.raises(TlsConfigError, match="inconsistencies between private key"):
        load_bind(TlsSettings(crts=(str(bad),)))


def test_unreadable_pem_is_refused(tmp_path):
    junk = tmp_path / "junk.pem"
    junk.write_text("not a certificate\n")
    with pytest.raises(TlsConfigError, match=r"junk\.pem"):
        load_bind(TlsSettings(crts=(str(junk),)))


def test_unknown_version_and_crt_list_option(pki, tmp_path):
    with pytest.raises(TlsConfigError, match="unknown TLS version"):
        load_bind(TlsSettings(crts=(str(pki["a"]),), min_version="TLSv9"))
    crt_list = tmp_path / "l.txt"
    crt_list.write_text(f"{pki['a']} [frobnicate] x.test\n")
    with pytest.raises(TlsConfigError, match=r"l.txt:1: unknown crt-list option"):
        load_bind(TlsSettings(crt_lists=(str(crt_list),)))
