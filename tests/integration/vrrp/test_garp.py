"""Gratuitous ARP on takeover: count, timing and frame layout, with keepalived as the oracle."""

from __future__ import annotations

import socket
import struct
import threading
import time

import pytest

from tests.integration.vrrp.conftest import keepalived_state, read_state, vrrp_conf
from tests.integration.vrrp.lab import enter_netns, wait_for

pytestmark = [pytest.mark.root]

ETH_P_ARP = 0x0806


class ArpSniffer:
    """Collects (time, frame) of every ARP frame seen on eth0 of a namespace."""

    def __init__(self, ns: str) -> None:
        self.ns = ns
        self.frames: list[tuple[float, bytes]] = []
        self._stop = threading.Event()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        enter_netns(self.ns)
        with socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ARP)) as s:
            s.bind(("eth0", ETH_P_ARP))
            s.settimeout(0.05)
            self._ready.set()
            while not self._stop.is_set():
                try:
                    frame = s.recv(2048)
                except TimeoutError:
                    continue
                self.frames.append((time.monotonic(), frame))

    def __enter__(self) -> ArpSniffer:
        self._thread.start()
        self._ready.wait(5)
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(5)

    def garps(self, ip: str) -> list[tuple[float, bytes]]:
        packed = socket.inet_aton(ip)
        return [(t, f) for t, f in self.frames if f[28:32] == packed and f[38:42] == packed]


def arp_fields(frame: bytes) -> dict[str, object]:
    htype, ptype, hlen, plen, op = struct.unpack_from("!HHBBH", frame, 14)
    return {
        "eth_dst": frame[0:6].hex(),
        "htype": htype,
        "ptype": ptype,
        "hlen": hlen,
        "plen": plen,
        "op": op,
        "sha_is_eth_src": frame[22:28] == frame[6:12],
        "tha": frame[32:38].hex(),
    }


@pytest.mark.parametrize("impl", ["lbcore", "keepalived"])
def test_takeover_sends_repeat_garps_twice_delay_apart(lab, tmp_path, impl, request):
    if impl == "keepalived":
        request.getfixturevalue("keepalived")  # skips when it is not installed
    a, b = lab.hosts
    vip = lab.vip()
    conf = tmp_path / "a.conf"
    extra = "    garp_master_delay 1\n    garp_master_repeat 3"
    conf.write_text(vrrp_conf(vip=vip, priority=150, version=3, advert="0.1", extra=extra))
    with ArpSniffer(b.ns) as sniff:
        if impl == "lbcore":
            lab.start_lbcore(a, conf, tmp_path / "a.json", tmp_path / "a.log")
            assert wait_for(lambda: read_state(tmp_path / "a.json") == "MASTER", 10)
        else:
            lab.start_keepalived(a, conf, tmp_path / "ka.log")
            assert wait_for(lambda: keepalived_state(tmp_path / "ka.log") == "MASTER", 10)
        assert wait_for(lambda: len(sniff.garps(vip)) >= 6, 4)
        time.sleep(0.3)
    garps = sniff.garps(vip)
    assert len(garps) == 6, [f.hex() for _, f in garps]
    first, second = [t for t, _ in garps[:3]], [t for t, _ in garps[3:]]
    assert max(first) - min(first) < 0.2 and max(second) - min(second) < 0.2
    assert 0.8 < second[0] - first[0] < 1.5  # garp_master_delay 1
    fields = arp_fields(garps[0][1])
    # The layout lbcore sends (and keepalived 2.2.7 too: this test runs against both).
    assert fields == {
        "eth_dst": "ffffffffffff",
        "htype": 1,
        "ptype": 0x0800,
        "hlen": 6,
        "plen": 4,
        "op": 1,
        "sha_is_eth_src": True,
        "tha": "ffffffffffff",
    }
