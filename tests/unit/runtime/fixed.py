"""The model of tests/data/runtime/haproxy.cfg, built by hand.

The config parser is not on main yet; when it lands, ``fixed_config`` should parse
the file instead (the test that compares both is in test_golden.py).
"""

from __future__ import annotations

from lbcore.config.model import (
    Balance,
    Bind,
    Config,
    Global,
    Mode,
    Proxy,
    ProxyKind,
    Server,
    StatsSocket,
)


def fixed_config(directory: str = "/tmp", port_www: int = 18080, port_db: int = 18100) -> Config:
    return Config(
        global_=Global(
            maxconn=4096,
            stats_sockets=(
                StatsSocket(f"{directory}/admin.sock", 0o600, "admin"),
                StatsSocket(f"{directory}/operator.sock", 0o600, "operator"),
                StatsSocket(f"{directory}/user.sock", 0o600, "user"),
            ),
        ),
        proxies=(
            Proxy(
                "www",
                ProxyKind.FRONTEND,
                Mode.HTTP,
                binds=(Bind("127.0.0.1", port_www),),
                default_backend="app",
            ),
            Proxy(
                "app",
                ProxyKind.BACKEND,
                Mode.HTTP,
                balance=Balance("roundrobin"),
                servers=(
                    Server("web1", "127.0.0.1", 18081, weight=10),
                    Server("web2", "127.0.0.1", 18082, weight=20),
                    Server("web3", "127.0.0.1", 18083, weight=5, disabled=True),
                    Server("spare", "127.0.0.1", 18084, backup=True),
                ),
            ),
            Proxy(
                "static",
                ProxyKind.BACKEND,
                Mode.HTTP,
                balance=Balance("leastconn"),
                servers=(
                    Server("s1", "127.0.0.1", 18091),
                    Server("s2", "127.0.0.1", 18092, weight=3),
                ),
            ),
            Proxy(
                "db",
                ProxyKind.LISTEN,
                Mode.TCP,
                binds=(Bind("127.0.0.1", port_db),),
                balance=Balance("first"),
                servers=(
                    Server("db1", "127.0.0.1", 18101, maxconn=5),
                    Server("db2", "127.0.0.1", 18102, backup=True),
                ),
            ),
        ),
    )
