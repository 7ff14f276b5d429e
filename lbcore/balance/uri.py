"""``balance uri [len N] [depth N] [whole] [path-only]``: the request URI, hashed.

As HAProxy documents it: by default the part of the URI before ``?`` is hashed, so
``/a?x=1`` and ``/a?x=2`` go to the same server (a cache farm's main use); ``whole``
hashes the query too; ``path-only`` drops the scheme and authority of an
absolute-form URI; ``depth N`` keeps the first N directories, ``len N`` the first N
characters. The model carries these options as ``Balance.arg`` (space-separated).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from lbcore.balance import PickContext, unassign
from lbcore.balance._hash import WeightedHash, stable_hash
from lbcore.server import ServerRuntime


@dataclass(frozen=True, slots=True)
class UriOptions:
    whole: bool = False
    path_only: bool = False
    length: int = 0  # 0 = no limit
    depth: int = 0  # 0 = no limit

    @classmethod
    def parse(cls, arg: str | None) -> UriOptions:
        """``"whole len 10"`` → options; raises ValueError on anything else."""
        words = (arg or "").split()
        whole = path_only = False
        length = depth = 0
        i = 0
        while i < len(words):
            w = words[i]
            if w == "whole":
                whole = True
                i += 1
            elif w == "path-only":
                path_only = True
                i += 1
            elif w in ("len", "depth") and i + 1 < len(words) and words[i + 1].isdigit():
                if w == "len":
                    length = int(words[i + 1])
                else:
                    depth = int(words[i + 1])
                i += 2
            else:
                raise ValueError(
                    f"balance uri: unexpected {w!r} (expected len N, depth N, whole, path-only)"
                )
        return cls(whole=whole, path_only=path_only, length=length, depth=depth)

    def key(self, uri: str) -> str:
        if self.path_only and "://" in uri:
            rest = uri.split("://", 1)[1]
            slash = rest.find("/")
            uri = rest[slash:] if slash >= 0 else "/"
        if not self.whole:
            q = uri.find("?")
            if q >= 0:
                uri = uri[:q]
        if self.depth:
            # Keep up to the depth-th '/' after the first one (HAProxy counts slashes).
            count = 0
            for i, ch in enumerate(uri):
                if ch == "/":
                    count += 1
                    if count > self.depth:
                        uri = uri[:i]
                        break
        if self.length:
            uri = uri[: self.length]
        return uri


class Uri:
    __slots__ = ("_map", "_opts")

    def __init__(
        self, servers: Sequence[ServerRuntime], arg: str | None = None, *, allbackups: bool = False
    ) -> None:
        self._opts = UriOptions.parse(arg)
        self._map = WeightedHash(servers, allbackups=allbackups)

    def pick(self, ctx: PickContext) -> ServerRuntime | None:
        return self._map.lookup(stable_hash(self._opts.key(ctx.uri).encode()))

    def release(self, server: ServerRuntime) -> None:
        unassign(server)
