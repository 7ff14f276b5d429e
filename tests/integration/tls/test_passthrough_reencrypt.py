"""Passthrough by SNI (mode tcp) and re-encryption towards TLS servers.

Must show 3 and 4 of issue 4: two TLS servers behind one port chosen by the
ClientHello's SNI, end to end (the client sees each server's own certificate), also
when the ClientHello arrives one byte per write; ``server ... ssl verify required``
refusing a server whose certificate is not from the CA (503, reason logged) and
accepting the right one; mutual TLS with ``crt``; TLS connections to servers reused.
"""

from __future__ import annotations

import json
import socket
import ssl
import time

import pytest

from tests.integration.tls.conftest import Lbcore, Pki
from tests.integration.tls.harness import client_ctx, peer_der, request, tls_connect


@pytest.mark.parametrize(("sni", "server"), [("a.test", "ta"), ("b.test", "tb")])
def test_passthrough_routes_by_sni_end_to_end(lab: Lbcore, pki: Pki, sni: str, server: str) -> None:
    site = pki.pt_a if server == "ta" else pki.pt_b
    with tls_connect(lab.ports["pt"], sni, client_ctx(pki.ca_path)) as s:
        # the server's own certificate, not one lbcore holds: TLS is end to end
        assert peer_der(s) == site.cert_der
        assert peer_der(s) not in (pki.a.cert_der, pki.b.cert_der)
        status, _h, body = request(s, host=sni)
    assert status == 200
    assert json.loads(body)["server"] == server


def _handshake_bytewise(port: int, sni: str, ctx: ssl.SSLContext) -> ssl.SSLObject:
    """A TLS handshake over a raw socket whose ClientHello goes out 1 byte per write."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=5)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = ctx.wrap_bio(incoming, outgoing, server_hostname=sni)
    first = True
    while True:
        try:
            obj.do_handshake()
            done = True
        except ssl.SSLWantReadError:
            done = False
        data = outgoing.read()
        if data and first:
            first = False
            for i in range(len(data)):
                sock.sendall(data[i : i + 1])
                time.sleep(0.002)  # separate segments
        elif data:
            sock.sendall(data)
        if done:
            break
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("closed during the handshake")
        incoming.write(chunk)
    obj._test_sock = sock  # type: ignore[attr-defined]
    return obj


def test_a_clienthello_in_one_byte_writes_still_routes(lab: Lbcore, pki: Pki) -> None:
    obj = _handshake_bytewise(lab.ports["pt"], "b.test", client_ctx(pki.ca_path))
    sock: socket.socket = obj._test_sock  # type: ignore[attr-defined]
    try:
        assert obj.getpeercert(binary_form=True) == pki.pt_b.cert_der
    finally:
        sock.close()


def test_reencryption_accepts_the_right_certificate_and_reuses_connections(
    lab: Lbcore,
) -> None:
    g1 = lab.backends["g1"]
    before = len(g1.peers)
    with socket.create_connection(("127.0.0.1", lab.ports["reenc"]), timeout=5) as s:
        for _ in range(5):
            status, _h, body = request(s, path="/", host="www.example.test")
            assert status == 200
            assert json.loads(body)["server"] == "g1"
    # five requests, one TLS connection to the server: the pool keeps TLS upstreams
    peers = g1.peers[before:]
    assert len(peers) == 5
    assert len(set(peers)) == 1


def test_reencryption_refuses_a_server_with_a_wrong_certificate(lab: Lbcore) -> None:
    with socket.create_connection(("127.0.0.1", lab.ports["reenc"]), timeout=10) as s:
        status, _h, _body = request(s, path="/bad", host="a.test")
    assert status in (502, 503)
    assert not lab.backends["w1"].peers  # no request ever reached it
    deadline = time.monotonic() + 5
    while "tls_bad/w1: SSL handshake failure" not in lab.log() and time.monotonic() < deadline:
        time.sleep(0.05)
    line = next(x for x in lab.log().splitlines() if "tls_bad/w1" in x)
    assert "certificate verify failed" in line


def test_sni_from_the_host_header_is_verified(lab: Lbcore) -> None:
    with socket.create_connection(("127.0.0.1", lab.ports["reenc"]), timeout=10) as s:
        status, _h, body = request(s, path="/host", host="a.test:443")
        assert status == 200 and json.loads(body)["server"] == "g1"
    # a Host the server's certificate does not cover: the name check fails
    with socket.create_connection(("127.0.0.1", lab.ports["reenc"]), timeout=10) as s:
        status, _h, _body = request(s, path="/host", host="not-a.test")
    assert status == 503


def test_mutual_tls_towards_the_server(lab: Lbcore) -> None:
    with socket.create_connection(("127.0.0.1", lab.ports["reenc"]), timeout=10) as s:
        status, _h, body = request(s, path="/mtls", host="a.test")
    assert status == 200
    assert json.loads(body)["client_cert"] == "client.lbcore.test"
    # the same server without 'crt' on the line: the server refuses the handshake
    with socket.create_connection(("127.0.0.1", lab.ports["reenc"]), timeout=10) as s:
        status, _h, _body = request(s, path="/nocert", host="a.test")
    assert status in (502, 503)


def test_the_refused_server_is_in_the_access_log(lab: Lbcore) -> None:
    with socket.create_connection(("127.0.0.1", lab.ports["reenc"]), timeout=10) as s:
        status, _h, _body = request(s, path="/bad-logged", host="a.test")
    assert status == 503
    lines = [x for x in lab.log_lines("/bad-logged") if "/bad-logged" in x]
    assert len(lines) == 1, lab.received
    assert " reencrypt tls_bad/w1 " in lines[0] and " 503 " in lines[0]
    assert " SC" in lines[0]  # server-side connection failure, as HAProxy writes it
