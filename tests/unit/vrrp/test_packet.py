"""VRRP codec: byte vectors captured from keepalived 2.2.7, checksums, receive checks."""

from __future__ import annotations

import ast
import struct
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lbcore.vrrp import conf, packet
from lbcore.vrrp.agent import advert_of
from lbcore.vrrp.net import garp_frame
from lbcore.vrrp.packet import Advert, Drop, Expect, PacketError
from tests.unit.vrrp.pcap import DATA, ip_datagrams

KA = "keepalived-2.2.7-"


def adverts(name: str) -> list[tuple[packet.IPv4Datagram, Advert]]:
    out = []
    for dgram in ip_datagrams(DATA / f"{KA}{name}.pcap"):
        ip = packet.parse_ipv4(dgram)
        out.append((ip, packet.decode(ip.payload, ip.src, ip.dst)))
    return out


def test_keepalived_v2_pass_adverts_decode_and_reencode_byte_for_byte():
    got = adverts("v2_pass")
    assert len(got) >= 3
    for ip, adv in got:
        assert (ip.ttl, ip.proto, ip.dst) == (255, 112, "224.0.0.18")
        assert adv.version == 2 and adv.vrid == 51
        assert adv.addresses == ("198.19.231.100", "198.19.231.101")
        assert adv.interval_cs == 100
        assert adv.auth_type == packet.AUTH_PASS and adv.auth_data == b"secret12"
        assert packet.encode(adv) == ip.payload
    # keepalived stopped with SIGTERM: its last advert resigns with priority 0.
    assert [a.priority for _, a in got] == [150] * (len(got) - 1) + [0]


def test_keepalived_v2_vector_literal():
    # The first capture's VRRP message, spelled out: 21 33 96 02 01 01 csum addrs auth
    ip, _ = adverts("v2_pass")[0]
    assert ip.payload.hex() == "213396020101" + "7f58" + "c613e764c613e765" + b"secret12".hex()
    assert packet.checksum(ip.payload) == 0


def test_keepalived_v3_multicast_adverts_use_the_pseudo_header_checksum():
    got = adverts("v3_mcast")
    assert len(got) >= 3
    for ip, adv in got:
        assert adv == Advert(3, 52, adv.priority, ("198.19.231.100",), 10)
        assert packet.encode(adv, ip.src, ip.dst) == ip.payload
    assert got[0][1].priority == 200 and got[-1][1].priority == 0
    ip, _ = got[0]
    assert ip.payload.hex() == "3134c801000acb99c613e764"
    # Without the pseudo-header (v2-style), the sum would not verify: it is included.
    assert packet.checksum(ip.payload) != 0


def test_keepalived_v3_unicast_checksum_covers_the_unicast_destination():
    got = adverts("v3_unicast")
    ip, adv = got[0]
    assert ip.dst == "198.19.231.11" and adv.vrid == 53 and adv.interval_cs == 100
    assert packet.encode(adv, ip.src, ip.dst) == ip.payload
    with pytest.raises(PacketError) as exc:
        packet.decode(ip.payload, ip.src, packet.MCAST_GROUP)  # keepalived <=1.3.6's mistake
    assert exc.value.reason is Drop.CHECKSUM


def test_bad_checksum_truncation_version_and_type_are_reasons():
    ip, _ = adverts("v3_mcast")[0]
    bad = bytearray(ip.payload)
    bad[2] ^= 1  # priority changed in flight
    cases = {
        bytes(bad): Drop.CHECKSUM,
        ip.payload[:7]: Drop.TRUNCATED,
        ip.payload[:10]: Drop.TRUNCATED,  # count says one address, only 2 bytes of it
        bytes([0x41]) + ip.payload[1:]: Drop.VERSION,
        bytes([0x32]) + ip.payload[1:]: Drop.TYPE,
    }
    for data, reason in cases.items():
        with pytest.raises(PacketError) as exc:
            packet.decode(data, ip.src, ip.dst)
        assert exc.value.reason is reason, data.hex()


def test_ethernet_padding_after_the_message_is_ignored():
    ip, adv = adverts("v3_mcast")[0]
    assert packet.decode(ip.payload + b"\0" * 6, ip.src, ip.dst) == adv


def test_encode_refuses_what_the_wire_cannot_carry():
    with pytest.raises(ValueError, match="whole seconds"):
        packet.encode(Advert(2, 1, 100, ("10.0.0.1",), 50))
    with pytest.raises(ValueError, match="4095"):
        packet.encode(Advert(3, 1, 100, ("10.0.0.1",), 5000), "1.1.1.1", "224.0.0.18")
    with pytest.raises(ValueError, match="source and destination"):
        packet.encode(Advert(3, 1, 100, ("10.0.0.1",), 100))
    with pytest.raises(ValueError):
        packet.encode(Advert(3, 0, 100, ("10.0.0.1",), 100), "1.1.1.1", "224.0.0.18")


ipv4 = st.integers(1, 2**32 - 2).map(lambda n: ".".join(str(b) for b in n.to_bytes(4, "big")))


@given(
    version=st.sampled_from([2, 3]),
    vrid=st.integers(1, 255),
    prio=st.integers(0, 255),
    addrs=st.lists(ipv4, min_size=0, max_size=20).map(tuple),
    secs=st.integers(1, 40),
    cs=st.integers(1, 4095),
    src=ipv4,
    dst=ipv4,
    password=st.text(alphabet="abcdefgh12345678", max_size=12),
)
def test_round_trip(version, vrid, prio, addrs, secs, cs, src, dst, password):
    if version == 2:
        adv = Advert(
            2, vrid, prio, addrs, secs * 100, packet.AUTH_PASS, packet.pass_auth_data(password)
        )
    else:
        adv = Advert(3, vrid, prio, addrs, cs)
    data = packet.encode(adv, src, dst)
    assert len(data) == 8 + 4 * len(addrs) + (8 if version == 2 else 0)
    assert packet.decode(data, src, dst) == adv


def _expect(**kw):
    base = dict(
        version=2,
        vrid=51,
        addresses=frozenset({"198.19.231.100", "198.19.231.101"}),
        interval_cs=100,
        auth_type=packet.AUTH_PASS,
        auth_data=b"secret12",
    )
    base.update(kw)
    return Expect(**base)


def test_receive_checks_each_rule_with_its_reason():
    ip, adv = adverts("v2_pass")[0]
    assert packet.check(adv, 255, ip.src, _expect()) is None
    assert packet.check(adv, 254, ip.src, _expect()) is Drop.TTL
    assert packet.check(adv, 255, ip.src, _expect(vrid=52)) is Drop.VRID
    assert packet.check(adv, 255, ip.src, _expect(version=3)) is Drop.VERSION
    assert packet.check(adv, 255, ip.src, _expect(auth_data=b"secret13")) is Drop.AUTH
    assert packet.check(adv, 255, ip.src, _expect(auth_type=0, auth_data=b"")) is Drop.AUTH
    assert packet.check(adv, 255, ip.src, _expect(interval_cs=200)) is Drop.INTERVAL
    one = frozenset({"198.19.231.100"})
    assert packet.check(adv, 255, ip.src, _expect(addresses=one)) is Drop.ADDR_COUNT
    other = frozenset({"198.19.231.100", "198.19.231.102"})
    assert packet.check(adv, 255, ip.src, _expect(addresses=other)) is Drop.ADDR_LIST
    # Unicast: TTL is not checked but the source must be a configured peer.
    peers = frozenset({"198.19.231.10"})
    assert packet.check(adv, 64, ip.src, _expect(peers=peers)) is None
    assert packet.check(adv, 255, ip.src, _expect(peers=frozenset({"198.19.231.9"}))) is Drop.SOURCE


def test_v3_adverts_with_a_different_interval_are_accepted():
    ip, adv = adverts("v3_mcast")[0]
    exp = Expect(3, 52, frozenset({"198.19.231.100"}), interval_cs=100)
    assert packet.check(adv, 255, ip.src, exp) is None  # v3 backups learn the master's


def test_parse_ipv4_rejects_non_ipv4():
    with pytest.raises(PacketError):
        packet.parse_ipv4(b"\x60" + b"\0" * 39)
    with pytest.raises(PacketError):
        packet.parse_ipv4(b"\x45\0\0")


def test_gratuitous_arp_frame_layout():
    mac = bytes.fromhex("020000000001")
    frame = garp_frame(mac, "198.19.1.100")
    assert len(frame) == 42
    assert frame[:6] == b"\xff" * 6 and frame[6:12] == mac and frame[12:14] == b"\x08\x06"
    htype, ptype, hlen, plen, op = struct.unpack_from("!HHBBH", frame, 14)
    assert (htype, ptype, hlen, plen, op) == (1, 0x0800, 6, 4, 1)
    assert frame[22:28] == mac
    assert frame[28:32] == frame[38:42] == bytes([198, 19, 1, 100])


@pytest.mark.parametrize("module", ["packet.py", "fsm.py"])
def test_cores_are_sans_io(module):
    src = (Path(packet.__file__).parent / module).read_text()
    imported = set()
    for node in ast.walk(ast.parse(src)):
        if isinstance(node, ast.Import):
            imported |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            imported.add(node.module.split(".")[0])
    assert not imported & {"asyncio", "socket", "ssl", "time", "subprocess", "select"}


@pytest.mark.parametrize("name", ["v2_pass", "v3_mcast", "v3_unicast"])
def test_same_config_same_bytes_as_keepalived(name):
    """Given the config keepalived ran, lbcore's adverts are byte-identical to its capture."""
    (ic,) = conf.load(DATA / f"keepalived-{name}.conf").instances
    for ip, adv in adverts(name):
        assert packet.encode(advert_of(ic, adv.priority), ip.src, ip.dst) == ip.payload
