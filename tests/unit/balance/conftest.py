"""Helpers for the balancing unit tests: runtime servers built from config objects."""

from __future__ import annotations

import random

from lbcore.balance import Algorithm, make_algorithm
from lbcore.config.model import Balance, Server
from lbcore.server import ServerRuntime

ALL = ("roundrobin", "static-rr", "leastconn", "first", "source", "uri", "hdr", "random")


def servers(
    *weights: int, backups: int = 0, maxconn: int = 0, backup_weights: tuple[int, ...] = ()
) -> list[ServerRuntime]:
    """Active servers s0..sN with ``weights``, then backup servers b0..: ``backups`` of
    weight 1, or one per ``backup_weights`` (those have ``maxconn`` too)."""
    out = [
        ServerRuntime(Server(f"s{i}", "127.0.0.1", 9000 + i, weight=w, maxconn=maxconn), "be")
        for i, w in enumerate(weights)
    ]
    out += [
        ServerRuntime(Server(f"b{i}", "127.0.0.1", 9100 + i, backup=True), "be")
        for i in range(backups)
    ]
    out += [
        ServerRuntime(
            Server(f"b{i}", "127.0.0.1", 9100 + i, weight=w, maxconn=maxconn, backup=True), "be"
        )
        for i, w in enumerate(backup_weights)
    ]
    return out


def algo(
    name: str, srvs: list[ServerRuntime], seed: int = 1, allbackups: bool = False
) -> Algorithm:
    arg = "x-user" if name == "hdr" else None
    return make_algorithm(Balance(name, arg), srvs, rng=random.Random(seed), allbackups=allbackups)
