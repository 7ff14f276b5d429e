"""Certificates replaced on reload without dropping connections (Must show 6), and
``lbcore check`` refusing missing, mismatched and unreadable certificates — compared
with ``haproxy -c`` on the same lines where that is cheap."""

from __future__ import annotations

import hashlib
import http.client
import re
import shutil
import signal
import subprocess
import threading
import time
from pathlib import Path

import pytest
import trustme

from tests.conftest import free_port, lbcore_cmd, lbcore_env
from tests.integration.tls.conftest import Pki, start_lbcore
from tests.integration.tls.harness import (
    Backend,
    big_digest,
    client_ctx,
    make_site,
    peer_der,
    tls_connect,
)

RELOAD_CONFIG = """\
global
    nbthread 2
    hard-stop-after 30s

defaults
    mode http
    timeout connect 2s
    timeout client 20s
    timeout server 20s

frontend web
    bind 127.0.0.1:{port} ssl crt {pem}
    default_backend app

backend app
    server s1 127.0.0.1:{backend}
"""

BIG = 6 * 1024 * 1024  # paced by the server: about two seconds


def test_reload_serves_the_new_certificate_while_a_download_finishes(
    pki: Pki, tmp_path: Path
) -> None:
    v1 = make_site(pki.ca, tmp_path, "a.test", tag="v1")
    v2 = make_site(pki.ca, tmp_path, "a.test", tag="v2")
    live = tmp_path / "site.pem"
    shutil.copy(v1.pem, live)
    backend = Backend("app").start()
    port = free_port()
    text = RELOAD_CONFIG.format(port=port, pem=live, backend=backend.port)
    lb = start_lbcore(tmp_path, text, {"web": port}, wait="web")
    result: dict[str, object] = {}
    try:
        sock = tls_connect(port, "a.test", client_ctx(pki.ca_path), timeout=20)
        assert peer_der(sock) == v1.cert_der
        sock.sendall(f"GET /big/{BIG} HTTP/1.1\r\nHost: a.test\r\n\r\n".encode())
        resp = http.client.HTTPResponse(sock)  # type: ignore[arg-type]
        resp.begin()
        assert resp.status == 200

        def download() -> None:
            h = hashlib.sha256()
            total = 0
            while chunk := resp.read(65536):
                h.update(chunk)
                total += len(chunk)
            result["size"], result["digest"] = total, h.hexdigest()

        reader = threading.Thread(target=download)
        reader.start()

        tmp = live.with_suffix(".new")
        shutil.copy(v2.pem, tmp)
        tmp.replace(live)
        lb.proc.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + 15
        seen = v1.cert_der
        while time.monotonic() < deadline:
            with tls_connect(port, "a.test", client_ctx(pki.ca_path)) as s:
                seen = peer_der(s)
            if seen == v2.cert_der:
                break
            time.sleep(0.1)
        assert seen == v2.cert_der, lb.log()
        assert reader.is_alive(), "the download should still be running across the reload"
        reader.join(timeout=30)
        assert result.get("size") == BIG
        assert result.get("digest") == big_digest(BIG)
        sock.close()

        # a broken replacement is refused: the reload fails, the running cert stays
        certs_only = re.sub(
            r"-----BEGIN [A-Z ]*PRIVATE KEY-----.*?-----END [A-Z ]*PRIVATE KEY-----\n",
            "",
            v1.pem.read_text(),
            flags=re.S,
        )
        assert "PRIVATE KEY" not in certs_only and "CERTIFICATE" in certs_only
        live.write_text(certs_only)
        lb.proc.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + 10
        while "Reload failed" not in lb.log() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert "Reload failed" in lb.log()
        assert str(live) in lb.log()
        with tls_connect(port, "a.test", client_ctx(pki.ca_path)) as s:
            assert peer_der(s) == v2.cert_der
    finally:
        lb.stop()
        backend.stop()


CHECK_CONFIG = """\
defaults
    mode http
    timeout connect 2s
    timeout client 10s
    timeout server 10s

frontend web
    bind 127.0.0.1:{port} ssl crt {pem}{extra}
    default_backend app

backend app
    server s1 127.0.0.1:8080{server}
"""


def _check(tmp: Path, pem: Path | str, extra: str = "", server: str = "") -> tuple[int, str]:
    cfg = tmp / "check.cfg"
    cfg.write_text(CHECK_CONFIG.format(port=free_port(), pem=pem, extra=extra, server=server))
    done = subprocess.run(
        lbcore_cmd("check", "-f", str(cfg)), capture_output=True, text=True, env=lbcore_env()
    )
    return done.returncode, done.stderr


def _haproxy(tmp: Path) -> int | None:
    exe = shutil.which("haproxy") or (
        "/usr/sbin/haproxy" if Path("/usr/sbin/haproxy").exists() else None
    )
    if exe is None:
        return None
    done = subprocess.run([exe, "-c", "-f", str(tmp / "check.cfg")], capture_output=True, text=True)
    return done.returncode


@pytest.fixture
def bad_pems(pki: Pki, tmp_path: Path) -> dict[str, Path]:
    other = trustme.CA().issue_cert("x.test")
    mismatched = tmp_path / "mismatched.pem"
    mismatched.write_bytes(
        b"".join(p.bytes() for p in pki.ca.issue_cert("a.test").cert_chain_pems)
        + other.private_key_pem.bytes()
    )
    garbage = tmp_path / "garbage.pem"
    garbage.write_text(
        "-----BEGIN CERTIFICATE-----\nnot base64 at all\n-----END CERTIFICATE-----\n"
    )
    nokey = tmp_path / "nokey.pem"
    nokey.write_bytes(pki.ca.issue_cert("a.test").cert_chain_pems[0].bytes())
    return {
        "missing": tmp_path / "missing.pem",
        "mismatched": mismatched,
        "garbage": garbage,
        "nokey": nokey,
    }


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("missing", "unable to load SSL certificate file"),
        ("mismatched", "inconsistencies between private key and certificate"),
        ("garbage", "unable to load SSL certificate from PEM file"),
        ("nokey", "unable to load SSL private key"),
    ],
)
def test_check_refuses_bad_certificates_at_the_bind_line(
    bad_pems: dict[str, Path], tmp_path: Path, case: str, message: str
) -> None:
    pem = bad_pems[case]
    rc, err = _check(tmp_path, pem)
    assert rc == 1
    line = err.splitlines()[0]
    assert line.startswith(f"{tmp_path / 'check.cfg'}:8: "), err
    assert message in line and str(pem) in line, err
    haproxy = _haproxy(tmp_path)
    if haproxy is not None:
        assert haproxy != 0  # HAProxy refuses the same file


def test_check_accepts_what_haproxy_accepts(pki: Pki, tmp_path: Path) -> None:
    extra = (
        f" crt {pki.b.pem} alpn h2,http/1.1 ssl-min-ver TLSv1.2 ssl-max-ver TLSv1.3"
        f" ciphers ECDHE-ECDSA-AES128-GCM-SHA256 ciphersuites TLS_AES_128_GCM_SHA256"
        f" no-tlsv11 strict-sni ca-file {pki.ca_path} verify optional"
    )
    server = f" ssl verify required ca-file {pki.ca_path} sni str(a.test) crt {pki.client.pem}"
    rc, err = _check(tmp_path, pki.a.pem, extra, server)
    assert rc == 0, err
    haproxy = _haproxy(tmp_path)
    if haproxy is not None:
        assert haproxy == 0


def test_check_refuses_a_server_ca_file_that_is_missing(pki: Pki, tmp_path: Path) -> None:
    server = f" ssl verify required ca-file {tmp_path / 'nope.pem'}"
    rc, err = _check(tmp_path, pki.a.pem, "", server)
    assert rc == 1
    assert err.startswith(f"{tmp_path / 'check.cfg'}:12: server s1: unable to load CA file"), err
    haproxy = _haproxy(tmp_path)
    if haproxy is not None:
        assert haproxy != 0
