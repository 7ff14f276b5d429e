"""ClientHello inspection with real hellos produced by Python's ssl module (OpenSSL)."""

from __future__ import annotations

import functools
import ssl

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lbcore.tls.clienthello import ClientHello, Verdict, parse_client_hello


def real_hello(
    sni: str | None, alpn: list[str] | None = None, maximum: ssl.TLSVersion = ssl.TLSVersion.TLSv1_3
) -> bytes:
    """The bytes an OpenSSL client sends first, captured through a memory BIO."""
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.maximum_version = maximum
    if alpn:
        ctx.set_alpn_protocols(alpn)
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = ctx.wrap_bio(incoming, outgoing, server_hostname=sni)
    with pytest.raises(ssl.SSLWantReadError):
        obj.do_handshake()
    return outgoing.read()


@pytest.mark.parametrize("maximum", [ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3])
def test_sni_and_alpn_from_a_real_hello(maximum):
    hello = parse_client_hello(real_hello("App.Example.COM", ["h2", "http/1.1"], maximum))
    assert isinstance(hello, ClientHello)
    assert hello.sni == "app.example.com"
    assert hello.alpn == ("h2", "http/1.1")
    assert hello.version[0] == 3


def test_no_sni():
    hello = parse_client_hello(real_hello(None))
    assert isinstance(hello, ClientHello) and hello.sni is None


def test_every_prefix_asks_for_more_bytes():
    data = real_hello("a.example")
    for cut in range(len(data)):
        assert parse_client_hello(data[:cut]) is Verdict.NEED_MORE, cut
    assert isinstance(parse_client_hello(data), ClientHello)


def test_hello_split_over_several_records():
    data = real_hello("split.example")
    body = data[5:]
    records = b""
    for i in range(0, len(body), 7):  # 7-byte fragments, each its own record
        chunk = body[i : i + 7]
        records += bytes([22, 3, 1]) + len(chunk).to_bytes(2, "big") + chunk
    hello = parse_client_hello(records)
    assert isinstance(hello, ClientHello) and hello.sni == "split.example"


@pytest.mark.parametrize(
    "data",
    [
        b"GET / HTTP/1.1\r\n\r\n",
        b"\x16\x03\x01\x00\x00",
        b"\x17\x03\x03\x00\x05hello",
        b"\x16\x03\x01\x00\x05\x02\x00\x00\x01\x00",
    ],
)
def test_not_tls(data):
    assert parse_client_hello(data) is Verdict.NOT_TLS


def test_lengths_that_disagree_are_malformed_not_a_crash():
    data = bytearray(real_hello("x.example"))
    data[5 + 4 + 34] = 200  # session id length runs past the message
    assert parse_client_hello(bytes(data)) is Verdict.NOT_TLS


@settings(max_examples=3000, deadline=None)
@given(st.binary(max_size=600))
def test_fuzz_never_raises(data):
    result = parse_client_hello(b"\x16\x03\x01" + data)
    assert isinstance(result, (ClientHello, Verdict))


@functools.cache
def _cached_hello() -> bytes:
    return real_hello("m.example")


@settings(max_examples=1000, deadline=None)
@given(st.integers(min_value=0, max_value=10_000), st.integers(min_value=0, max_value=255))
def test_fuzz_mutated_real_hello(position, value):
    data = bytearray(_cached_hello())
    data[position % len(data)] = value
    result = parse_client_hello(bytes(data))
    assert isinstance(result, (ClientHello, Verdict))
