"""An lbcore VRRP agent without raw sockets: its receive path fed with byte vectors.

``RxAgent`` builds the real ``Agent`` and real ``Instance``s from a keepalived config
file, but gives them a recording channel and a recording address table instead of a
raw socket and netlink, so a test can hand ``Agent._receive`` any datagram and look at
the state machine, the counters and what would have been sent.
"""

from __future__ import annotations

import asyncio
import ipaddress
import struct
from pathlib import Path

from lbcore.vrrp import agent as agentmod
from lbcore.vrrp import conf, fsm, packet


class FakeChannel:
    def __init__(self) -> None:
        self.sent: list[tuple[bytes, str, str]] = []

    def send(self, payload: bytes, src: str, dst: str) -> None:
        self.sent.append((payload, src, dst))


class FakeAddrs:
    def __init__(self) -> None:
        self.added: list[tuple[str, str]] = []
        self.removed: list[tuple[str, str]] = []

    def add(self, dev: str, ip: str, plen: int, label: str | None = None) -> bool:
        self.added.append((dev, ip))
        return True

    def remove(self, dev: str, ip: str, plen: int) -> bool:
        self.removed.append((dev, ip))
        return True

    def close(self) -> None:
        pass


class RxAgent:
    """The agent of ``config_text``; every instance starts (INIT → BACKUP/MASTER)."""

    def __init__(self, config_text: str, tmp: Path) -> None:
        path = tmp / "keepalived.conf"
        path.write_text(config_text)
        self.cfg = conf.load(path)
        self.loop = asyncio.new_event_loop()
        self.agent = agentmod.Agent(self.cfg, state_file=None)
        self.agent._loop = self.loop
        self.addrs = FakeAddrs()
        self.agent._addrs = self.addrs  # type: ignore[assignment]
        self.channel = FakeChannel()
        now = self.loop.time()
        for ic in self.cfg.instances:
            src = ic.unicast_src_ip or "192.0.2.1"
            inst = agentmod.Instance(
                ic,
                fsm.Router(agentmod._params(ic, src)),
                self.channel,  # type: ignore[arg-type]
                src,
                agentmod._expect(ic),
            )
            self.agent.instances[ic.name] = inst
            self.agent._apply(inst, inst.router.start(now))

    def instance(self, name: str) -> agentmod.Instance:
        return self.agent.instances[name]

    def receive(self, datagram: bytes) -> None:
        self.agent._receive(self.channel, datagram, self.loop.time())  # type: ignore[arg-type]

    def close(self) -> None:
        for inst in self.agent.instances.values():
            if inst.timer is not None:
                inst.timer.cancel()
        self.loop.close()


def ipv4(payload: bytes, src: str, dst: str, ttl: int = 255, proto: int = 112) -> bytes:
    """An IPv4 datagram as a raw socket hands it over (header checksum left 0)."""
    header = struct.pack(
        "!BBHHHBBH4s4s",
        0x45,
        0xC0,
        20 + len(payload),
        0,
        0,
        ttl,
        proto,
        0,
        ipaddress.IPv4Address(src).packed,
        ipaddress.IPv4Address(dst).packed,
    )
    return header + payload


def advert(
    src: str,
    dst: str,
    vrid: int,
    priority: int,
    addresses: tuple[str, ...],
    version: int = 3,
    interval_cs: int = 100,
    ttl: int = 255,
) -> bytes:
    adv = packet.Advert(version, vrid, priority, addresses, interval_cs)
    return ipv4(packet.encode(adv, src, dst), src, dst, ttl)
