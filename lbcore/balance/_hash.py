"""The hash shared by ``source``, ``uri`` and ``hdr``: stable, fast, well mixed.

Why not ``hash()``: Python salts str hashes per process (PYTHONHASHSEED), so two
workers — or one worker before and after a reload — would send the same client to
different servers. CRC-32 is stable and runs in C; being linear, it maps similar
keys (10.0.0.1, 10.0.0.2, ...) to related values, so murmur3's 32-bit finalizer
(``fmix32``) mixes the bits before the modulo.

Mapping a hash to a server follows HAProxy's default ``hash-type map-based``: the
eligible servers each own ``weight`` consecutive slots of ``sum(weights)`` and the key
lands on slot ``hash % sum``. Adding or removing a server moves most keys (as in
HAProxy's map-based mode); the same key with the same farm always lands on the same
server, in every worker.
"""

from __future__ import annotations

import zlib
from bisect import bisect_right
from collections.abc import Sequence

from lbcore.balance import assign, candidates
from lbcore.server import ServerRuntime

_M32 = 0xFFFFFFFF


def stable_hash(data: bytes) -> int:
    """A 32-bit hash of ``data`` that is the same in every process and on every run."""
    h = zlib.crc32(data)
    h ^= h >> 16
    h = (h * 0x85EBCA6B) & _M32
    h ^= h >> 13
    h = (h * 0xC2B2AE35) & _M32
    h ^= h >> 16
    return h


class WeightedHash:
    """Maps a hash to one of the eligible tier's servers in proportion to weight."""

    __slots__ = ("_allbackups", "_cum", "_key", "_pool", "_servers")

    def __init__(self, servers: Sequence[ServerRuntime], *, allbackups: bool = False) -> None:
        self._servers = servers
        self._allbackups = allbackups
        self._key: tuple[tuple[int, int], ...] = ()
        self._pool: list[ServerRuntime] = []
        self._cum: list[int] = []

    def lookup(self, h: int) -> ServerRuntime | None:
        """The server for hash ``h`` (counted), or None if none eligible or it is full."""
        pool = candidates(self._servers, self._allbackups)
        key = tuple((id(s), s.weight) for s in pool)
        if key != self._key:
            self._key = key
            self._pool = pool
            cum: list[int] = []
            total = 0
            for s in pool:
                total += s.weight
                cum.append(total)
            self._cum = cum
        if not self._pool:
            return None
        s = self._pool[bisect_right(self._cum, h % self._cum[-1])]
        # A full target is not replaced by another server: that would break
        # stickiness. The caller queues and picks again (HAProxy's server queue).
        return assign(s) if s.has_room else None
