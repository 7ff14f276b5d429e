"""Malformed or foreign adverts on a real link are dropped and counted, never obeyed."""

from __future__ import annotations

import os
import signal
import socket
import threading

import pytest

from lbcore.vrrp import packet
from tests.integration.vrrp.conftest import counters, read_state, vrrp_conf
from tests.integration.vrrp.lab import enter_netns, wait_for

pytestmark = [pytest.mark.root]

AUTH = """    authentication {
        auth_type PASS
        auth_pass lbv-pass
    }"""


def inject(ns: str, src: str, datagrams: list[tuple[bytes, int]]) -> None:
    """Send raw VRRP messages (payload, TTL) to 224.0.0.18 from inside namespace ``ns``."""
    errors: list[BaseException] = []

    def run() -> None:
        try:
            enter_netns(ns)
            with socket.socket(socket.AF_INET, socket.SOCK_RAW, packet.PROTO_VRRP) as s:
                s.setsockopt(socket.SOL_SOCKET, 25, b"eth0")  # SO_BINDTODEVICE
                s.bind((src, 0))
                for payload, ttl in datagrams:
                    s.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, ttl)
                    s.sendto(payload, (packet.MCAST_GROUP, 0))
        except BaseException as exc:  # surfaced in the test thread
            errors.append(exc)

    t = threading.Thread(target=run)
    t.start()
    t.join(10)
    assert not errors, errors


def test_bad_adverts_are_dropped_by_reason_and_the_master_stays(lab, tmp_path):
    a, b = lab.hosts
    vip = lab.vip()
    conf = tmp_path / "a.conf"
    conf.write_text(vrrp_conf(vip=vip, priority=150, version=2, advert="1", extra=AUTH))
    proc = lab.start_lbcore(a, conf, tmp_path / "a.json", tmp_path / "a.log")
    assert wait_for(lambda: read_state(tmp_path / "a.json") == "MASTER", 12)

    good = packet.Advert(
        2, 42, 254, (vip,), 100, packet.AUTH_PASS, packet.pass_auth_data("lbv-pass")
    )

    def enc(**kw: object) -> bytes:
        fields = {f: getattr(good, f) for f in good.__slots__}
        fields.update(kw)
        return packet.encode(packet.Advert(**fields))  # type: ignore[arg-type]

    bad_sum = bytearray(enc())
    bad_sum[7] ^= 0xFF
    cases = [
        (enc(), 254),  # ttl
        (bytes(bad_sum), 255),  # checksum
        (enc(auth_data=packet.pass_auth_data("wrong")), 255),  # auth
        (enc(auth_type=packet.AUTH_NONE, auth_data=b""), 255),  # auth
        (enc(addresses=(vip, "198.19.0.1")), 255),  # addr_count
        (enc(addresses=("198.19.0.1",)), 255),  # addr_list
        (enc(interval_cs=200), 255),  # interval
        (enc(vrid=43), 255),  # vrid: another router's group
        (bytes([0x41]) + enc()[1:], 255),  # version
    ]
    inject(b.ns, b.addr, cases)
    os.kill(proc.pid, signal.SIGUSR1)  # rewrite the state file with fresh counters

    want = {
        "rx_drop_ttl": 1,
        "rx_drop_checksum": 1,
        "rx_drop_auth": 2,
        "rx_drop_addr_count": 1,
        "rx_drop_addr_list": 1,
        "rx_drop_interval": 1,
        "rx_drop_vrid": 1,
        "rx_drop_version": 1,
    }

    def dropped() -> dict[str, int]:
        return {k: v for k, v in counters(tmp_path / "a.json").items() if k.startswith("rx_drop")}

    assert wait_for(lambda: (os.kill(proc.pid, signal.SIGUSR1), dropped() == want)[1], 5), dropped()
    got = counters(tmp_path / "a.json")
    assert got.get("rx_adverts", 0) == 0  # none of them was accepted ...
    assert read_state(tmp_path / "a.json") == "MASTER" and a.has(vip)  # ... or obeyed (prio 254)

    # And a well-formed one with priority 254 is obeyed: a yields.
    inject(b.ns, b.addr, [(enc(), 255)])
    assert wait_for(lambda: read_state(tmp_path / "a.json") == "BACKUP" and not a.has(vip), 5)
