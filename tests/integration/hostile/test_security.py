"""Security defaults: the admin socket's mode and levels, privileges dropped after
binding, and VRRP's unicast peer filter.

(The stats page's admin actions and their auth are not built yet: not tested here.
PEM bundles: tests/collection/test_pem_bundle_secrets.py.)
"""

from __future__ import annotations

import asyncio
import os
import socket
import stat
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from lbcore.runtime.commands import COMMANDS
from lbcore.runtime.state import Level
from tests.conftest import is_root
from tests.fuzz.vrrp_rx import RxAgent, advert
from tests.integration.hostile.harness import Proc, RecordingBackend, children, exchange


def cli(path: str, command: str) -> str:
    with socket.socket(socket.AF_UNIX) as s:
        s.settimeout(5)
        s.connect(path)
        s.sendall(command.encode() + b"\n")
        out = b""
        while True:
            d = s.recv(65536)
            if not d:
                return out.decode()
            out += d


SOCKETS = """\
global
    stats socket {tmp}/default.sock
    stats socket {tmp}/user.sock mode 640 level user
    stats socket {tmp}/operator.sock level operator
    stats socket {tmp}/admin.sock level admin
    nbthread 1

defaults
    mode http
    timeout connect 1s
    timeout client 5s
    timeout server 5s

frontend fe
    bind 127.0.0.1:{port}
    default_backend app

backend app
    server s1 {rec}
    server s2 {rec}
"""

ADMIN_LINES = {
    ("set", "server"): "set server app/s1 state maint",
    ("set", "weight"): "set weight app/s1 0",
}


def _admin_commands() -> list[str]:
    return [
        ADMIN_LINES.get(c.words, " ".join(c.words) + " app/s1")
        for c in COMMANDS
        if c.level is Level.ADMIN and c.words not in (("operator",), ("user",))
    ]


@pytest.fixture
def lb_sockets(tmp_path: Path) -> Iterator[tuple[Proc, Path]]:
    rec = RecordingBackend()
    old = os.umask(0)  # the socket modes must not depend on the umask lbcore inherits
    try:
        proc = Proc(
            "lbcore", SOCKETS.replace("{tmp}", str(tmp_path)).replace("{rec}", rec.addr), tmp_path
        )
    finally:
        os.umask(old)
    try:
        yield proc, tmp_path
    finally:
        proc.stop()
        rec.close()


def test_admin_socket_modes_and_levels(lb_sockets: tuple[Proc, Path]) -> None:
    _proc, tmp = lb_sockets
    modes = {p.name: stat.S_IMODE(os.stat(p).st_mode) for p in tmp.glob("*.sock")}
    assert modes == {
        "default.sock": 0o600,
        "user.sock": 0o640,
        "operator.sock": 0o600,
        "admin.sock": 0o600,
    }
    assert cli(str(tmp / "default.sock"), "show cli level") == "operator\n\n"  # HAProxy's
    state_before = cli(str(tmp / "admin.sock"), "show servers state")
    commands = _admin_commands()
    assert len(commands) >= 8
    for name in ("default.sock", "user.sock", "operator.sock"):
        for command in commands:
            # also after trying to raise the level within the session
            for line in (command, f"operator; {command}"):
                out = cli(str(tmp / name), line)
                assert out.endswith("Permission denied\n\n"), (name, line, out)
    assert cli(str(tmp / "user.sock"), "operator; show cli level").endswith("user\n\n")
    assert cli(str(tmp / "admin.sock"), "show servers state") == state_before
    # the admin socket does run them (so the refusals above are refusals)
    assert cli(str(tmp / "admin.sock"), "set weight app/s1 0") == "\n"
    assert cli(str(tmp / "admin.sock"), "show servers state") != state_before


def test_unix_socket_is_never_looser_than_its_mode(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Between bind() and chmod() the socket exists: with umask 0 it was 0777 then, so
    any local user could connect in that window. Watch its mode at chmod time."""
    from lbcore.config.model import StatsSocket
    from lbcore.runtime import server as srvmod
    from lbcore.runtime.state import RuntimeState
    from tests.unit.runtime.fixed import fixed_config

    seen: dict[str, int] = {}
    real_chmod = os.chmod

    def spy(path: str, mode: int) -> None:
        seen[os.path.basename(path)] = stat.S_IMODE(os.stat(path).st_mode)
        real_chmod(path, mode)

    monkeypatch.setattr(srvmod.os, "chmod", spy)
    socks = [
        StatsSocket(address=str(tmp_path / "a.sock"), level="admin"),
        StatsSocket(address=str(tmp_path / "b.sock"), mode=0o660, level="user"),
    ]
    state = RuntimeState(fixed_config(), 0.0)

    async def run() -> None:
        admin = srvmod.AdminServer(state, socks)
        await admin.start()
        await admin.close()

    old = os.umask(0)
    try:
        asyncio.run(run())
    finally:
        os.umask(old)
    assert set(seen) == {"a.sock", "b.sock"}
    for name, mode in seen.items():
        assert mode & 0o077 == 0, f"{name} existed with mode {mode:o} before its chmod"


# --- privileges -------------------------------------------------------------------------


def _privileged_free_port() -> int:
    for port in range(1023, 900, -1):
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    pytest.skip("no free port below 1024")


def _ids(pid: int) -> dict[str, list[int]]:
    out = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("Uid", "Gid", "Groups"):
            out[key] = [int(x) for x in value.split()]
    return out


PRIVS = """\
global
    user nobody
    group nogroup
    nbthread 2
    stats socket {tmp}/admin.sock level admin

defaults
    mode http
    timeout connect 1s
    timeout client 5s
    timeout server 5s

frontend fe
    bind 127.0.0.1:{port}
    default_backend app

backend app
    server s1 {rec}
"""


@pytest.mark.root
@pytest.mark.timeout(60)
def test_workers_drop_to_nobody_after_binding_a_privileged_port(tmp_path: Path) -> None:
    if not is_root():
        pytest.skip("needs root: binding below 1024 and switching to nobody/nogroup")
    import grp
    import pwd

    uid, gid = pwd.getpwnam("nobody").pw_uid, grp.getgrnam("nogroup").gr_gid
    port = _privileged_free_port()
    rec = RecordingBackend()
    tmp_path.chmod(0o755)
    proc = None
    try:
        proc = Proc(
            "lbcore",
            PRIVS.replace("{tmp}", str(tmp_path)).replace("{rec}", rec.addr),
            tmp_path,
            port=port,
        )
        deadline = time.monotonic() + 10
        while len(children(proc.pid)) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        workers = children(proc.pid)
        assert len(workers) == 2
        for pid in workers:
            ids = _ids(pid)
            assert ids["Uid"] == [uid] * 4, ids  # real, effective, saved, filesystem
            assert ids["Gid"] == [gid] * 4, ids
            assert ids["Groups"] == [], ids  # root's supplementary groups are gone too
        # the port below 1024 was bound before the drop, and is served by nobody
        for _ in range(4):
            assert (
                exchange(port, b"GET / HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n").status
                == 200
            )
        # the master keeps root to bind new ports on reload and to run the admin socket
        assert _ids(proc.pid)["Uid"][1] == 0
        assert cli(str(tmp_path / "admin.sock"), "show cli level") == "admin\n\n"
    finally:
        if proc is not None:
            proc.stop()
        rec.close()


# --- VRRP: unicast peers only -------------------------------------------------------------

KEEPALIVED = """\
vrrp_instance VI_U {
    state BACKUP
    virtual_router_id 52
    version 3
    priority 100
    advert_int 1
    unicast_src_ip 192.0.2.1
    unicast_peer {
        192.0.2.2
    }
    virtual_ipaddress {
        198.51.100.11/32
    }
}
vrrp_instance VI_M {
    state BACKUP
    interface lo
    virtual_router_id 53
    version 3
    priority 100
    advert_int 1
    virtual_ipaddress {
        198.51.100.12/32
    }
}
"""
VIP_U = ("198.51.100.11",)


@pytest.fixture
def rx(tmp_path: Path) -> Iterator[RxAgent]:
    agent = RxAgent(KEEPALIVED, tmp_path)
    yield agent
    agent.close()


def test_vrrp_unicast_ignores_packets_from_non_peers(rx: RxAgent) -> None:
    inst = rx.instance("VI_U")
    assert inst.router.state.value == "BACKUP" and inst.router.master_ip is None
    down_at = inst.router.down_at
    # a stranger, even a perfectly valid advert with TTL 255 and the highest priority
    for src, ttl in (("192.0.2.66", 255), ("192.0.2.66", 64), ("198.51.100.11", 255)):
        rx.receive(advert(src, "192.0.2.1", 52, 254, VIP_U, ttl=ttl))
        # a priority-0 advert (resignation) from a stranger must not trigger a takeover
        rx.receive(advert(src, "192.0.2.1", 52, 0, VIP_U, ttl=ttl))
    assert inst.counters["rx_drop_source"] == 6
    assert inst.counters["rx_adverts"] == 0
    assert inst.router.master_ip is None and inst.router.down_at == down_at
    # the configured peer is heard (with any TTL: unicast may cross a router)
    rx.receive(advert("192.0.2.2", "192.0.2.1", 52, 150, VIP_U, ttl=64))
    assert inst.counters["rx_adverts"] == 1
    assert inst.router.master_ip == "192.0.2.2"


def test_vrrp_multicast_instance_hears_any_source(rx: RxAgent) -> None:
    """The control: without unicast_peer, the same stranger's advert is accepted."""
    inst = rx.instance("VI_M")
    rx.receive(advert("192.0.2.66", "224.0.0.18", 53, 150, ("198.51.100.12",)))
    assert inst.counters["rx_adverts"] == 1
    assert inst.router.master_ip == "192.0.2.66"
