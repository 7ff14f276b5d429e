"""A minimal pcap reader for the committed captures (Ethernet link type only)."""

from __future__ import annotations

import struct
from pathlib import Path

DATA = Path(__file__).parent / "data"


def ip_datagrams(path: Path) -> list[bytes]:
    """The IPv4 datagrams of every Ethernet frame in a classic pcap file."""
    raw = path.read_bytes()
    magic = raw[:4]
    endian = "<" if magic == b"\xd4\xc3\xb2\xa1" else ">"
    linktype = struct.unpack_from(endian + "I", raw, 20)[0]
    assert linktype == 1, "expected an Ethernet capture"
    out, off = [], 24
    while off + 16 <= len(raw):
        _, _, caplen, _ = struct.unpack_from(endian + "IIII", raw, off)
        frame = raw[off + 16 : off + 16 + caplen]
        off += 16 + caplen
        if frame[12:14] == b"\x08\x00":
            out.append(frame[14:])
    return out
