"""Fuzzing the two binary decoders that face the network: the VRRP receive path
(lbcore/vrrp/packet.py, driven through the real agent's ``_receive``) and the TLS
ClientHello reader (lbcore/tls/clienthello.py).

Properties:

* VRRP: any datagram — well-formed adverts mutated byte-wise, truncated, padded — is
  either accepted or dropped and counted; nothing escapes the agent's receive path;
  an unmutated advert round-trips through encode/decode;
* ClientHello: any hello — synthetic ones with lying lengths, odd SNI bytes, many
  extensions, fragmented over records at random — gives a ``ClientHello`` or a
  ``Verdict``; fragmentation does not change the answer; every prefix of a complete
  hello is ``NEED_MORE`` or the same final answer.

Example counts (CI): 1000 VRRP datagrams + 300 round trips + 1200 hellos + 600 split.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lbcore.tls.clienthello import ClientHello, Verdict, parse_client_hello
from lbcore.vrrp import packet
from tests.fuzz.vrrp_rx import RxAgent, advert, ipv4

FUZZ = settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])

KEEPALIVED = """\
vrrp_instance VI_M {
    state BACKUP
    interface lo
    virtual_router_id 51
    priority 100
    advert_int 1
    virtual_ipaddress {
        198.51.100.10/32
    }
}
vrrp_instance VI_U {
    state BACKUP
    virtual_router_id 52
    version 2
    priority 100
    advert_int 1
    unicast_src_ip 192.0.2.1
    unicast_peer {
        192.0.2.2
    }
    authentication {
        auth_type PASS
        auth_pass secret
    }
    virtual_ipaddress {
        198.51.100.11/32
    }
}
"""

SRCS = st.sampled_from(["192.0.2.2", "192.0.2.1", "192.0.2.66", "0.0.0.0", "255.255.255.255"])


@st.composite
def datagrams(draw: st.DrawFn) -> bytes:
    version = draw(st.sampled_from([2, 3]))
    src = draw(SRCS)
    dst = draw(st.sampled_from([packet.MCAST_GROUP, "192.0.2.1"]))
    addrs = draw(
        st.lists(st.sampled_from(["198.51.100.10", "198.51.100.11", "10.0.0.1"]), max_size=4)
    )
    adv = packet.Advert(
        version,
        draw(st.sampled_from([51, 52, 53, 1, 255])),
        draw(st.integers(0, 255)),
        tuple(addrs),
        100 if version == 2 else draw(st.integers(1, 4095)),
        draw(st.sampled_from([0, 1, 2])),
        draw(st.sampled_from([b"", b"secret", b"other"])),
    )
    data = bytearray(ipv4(packet.encode(adv, src, dst), src, dst, draw(st.integers(0, 255))))
    for _ in range(draw(st.integers(0, 4))):
        op = draw(st.integers(0, 3))
        i = draw(st.integers(0, len(data)))
        if op == 0 and i < len(data):
            data[i] = draw(st.integers(0, 255))
        elif op == 1:
            del data[i:]
        elif op == 2:
            data += draw(st.binary(max_size=16))
        elif i < len(data):
            data[i] ^= 1 << draw(st.integers(0, 7))
    return bytes(data)


@pytest.fixture(scope="module")
def rx(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RxAgent]:
    agent = RxAgent(KEEPALIVED, tmp_path_factory.mktemp("vrrp"))
    yield agent
    agent.close()


@pytest.mark.timeout(120)
@settings(FUZZ, max_examples=1000)
@given(data=datagrams() | st.binary(max_size=80))
def test_vrrp_receive_path_survives_anything(rx: RxAgent, data: bytes) -> None:
    before = sum(sum(i.counters.values()) for i in rx.agent.instances.values())
    rx.receive(data)
    after = sum(sum(i.counters.values()) for i in rx.agent.instances.values())
    assert after >= before
    for inst in rx.agent.instances.values():
        assert inst.router.state.value in ("BACKUP", "MASTER", "FAULT", "INIT")


@settings(FUZZ, max_examples=300)
@given(
    version=st.sampled_from([2, 3]),
    vrid=st.integers(1, 255),
    prio=st.integers(0, 255),
    addrs=st.lists(st.ip_addresses(v=4).map(str), max_size=20),
)
def test_vrrp_round_trip(version: int, vrid: int, prio: int, addrs: list[str]) -> None:
    interval = 300 if version == 2 else 123
    auth = b"\0" * 8 if version == 2 else b""  # v2 always carries the 8-byte auth field
    adv = packet.Advert(version, vrid, prio, tuple(addrs), interval, auth_data=auth)
    wire = advert(
        "192.0.2.9", packet.MCAST_GROUP, vrid, prio, tuple(addrs), version, adv.interval_cs
    )
    ip = packet.parse_ipv4(wire)
    assert packet.decode(ip.payload, ip.src, ip.dst) == adv


# ---- ClientHello ------------------------------------------------------------------------


def _vec(n: int, data: bytes) -> bytes:
    return len(data).to_bytes(n, "big") + data


@st.composite
def hellos(draw: st.DrawFn) -> bytes:
    """A ClientHello handshake message (without record framing), sometimes lying."""
    exts = b""
    for _ in range(draw(st.integers(0, 6))):
        kind = draw(st.sampled_from([0, 16, 43, 10, 0xFFFF, 0]))
        if kind == 0:
            name = draw(
                st.sampled_from(
                    [
                        b"a.example",
                        b"A.EXAMPLE",
                        b"",
                        b"\xff\xfe",
                        b"xn--bcher-kva.example",
                        b"a" * 300,
                        b"\x00a",
                        b"a..b",
                        "é.example".encode(),
                    ]
                )
            )
            body = _vec(2, b"\x00" + _vec(2, name))
        elif kind == 16:
            protos = draw(st.lists(st.sampled_from([b"h2", b"http/1.1", b"", b"\xff"]), max_size=3))
            body = _vec(2, b"".join(_vec(1, p) for p in protos))
        else:
            body = draw(st.binary(max_size=12))
        if draw(st.integers(0, 9)) == 0:
            body = body[: draw(st.integers(0, len(body)))]  # the inner length now lies
        exts += struct.pack("!H", kind) + _vec(2, body)
    hello = (
        b"\x03\x03"
        + draw(st.binary(min_size=32, max_size=32))
        + _vec(1, b"")
        + _vec(2, b"\x13\x01\x00\x2f")
        + _vec(1, b"\x00")
        + _vec(2, exts)
    )
    msg = b"\x01" + _vec(3, hello)
    if draw(st.integers(0, 9)) == 0:
        i = draw(st.integers(0, len(msg) - 1))
        msg = msg[:i] + bytes((draw(st.integers(0, 255)),)) + msg[i + 1 :]
    return msg


def records(msg: bytes, sizes: list[int]) -> bytes:
    out, i, k = b"", 0, 0
    while i < len(msg):
        n = max(1, sizes[k % len(sizes)]) if sizes else len(msg)
        chunk = msg[i : i + n]
        out += b"\x16\x03\x01" + _vec(2, chunk)
        i += n
        k += 1
    return out


def _check(result: object) -> None:
    assert isinstance(result, (ClientHello, Verdict))
    if isinstance(result, ClientHello) and result.sni is not None:
        assert result.sni == result.sni.lower()


@pytest.mark.timeout(120)
@settings(FUZZ, max_examples=1200)
@given(hellos(), st.binary(max_size=20))
def test_hello_gives_an_answer(msg: bytes, trailing: bytes) -> None:
    data = records(msg, []) + trailing
    _check(parse_client_hello(data))


@pytest.mark.timeout(120)
@settings(FUZZ, max_examples=600)
@given(hellos(), st.lists(st.integers(1, 40), min_size=1, max_size=4))
def test_hello_fragmentation_changes_nothing(msg: bytes, sizes: list[int]) -> None:
    whole = parse_client_hello(records(msg, []))
    split = parse_client_hello(records(msg, sizes))
    _check(whole)
    assert split == whole
    data = records(msg, sizes)
    for cut in range(0, len(data), 7):
        prefix = parse_client_hello(data[:cut])
        assert prefix is Verdict.NEED_MORE or prefix == whole, cut
