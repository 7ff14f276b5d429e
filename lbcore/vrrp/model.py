"""The frozen model of a keepalived-dialect VRRP configuration.

:mod:`lbcore.vrrp.conf` builds it from the text once; the agent reads only this.
Every object that came from a block carries its ``Source`` (file:line) so that
later checks can still point at the line. Intervals are seconds, except
``interval_cs`` (centiseconds, what VRRPv3 carries on the wire).
"""

from __future__ import annotations

from dataclasses import dataclass

from lbcore.config.model import Source


@dataclass(frozen=True, slots=True)
class Command:
    """A script command line (``notify_*``, ``script``) and who runs it."""

    argv: tuple[str, ...]
    user: str | None = None


@dataclass(frozen=True, slots=True)
class GlobalDefs:
    router_id: str | None = None
    vrrp_version: int = 2
    enable_script_security: bool = False
    script_user: str | None = None
    garp_master_delay: float = 5.0
    garp_master_repeat: int = 5


@dataclass(frozen=True, slots=True)
class VrrpScript:
    """``vrrp_script``: a shell check, or lbcore's built-in balancer check.

    ``lbcore_socket PATH`` instead of ``script`` checks that the lbcore (or
    HAProxy) admin socket at PATH answers ``show info`` and that at least one
    frontend is open — no process per check.
    """

    name: str
    where: Source
    command: Command | None = None
    lbcore_socket: str | None = None
    interval: float = 1.0
    timeout: float | None = None
    weight: int = 0
    rise: int = 1
    fall: int = 1


@dataclass(frozen=True, slots=True)
class Track:
    """A ``track_script`` / ``track_interface`` entry; ``weight None`` = the script's own."""

    name: str
    where: Source
    weight: int | None = None


@dataclass(frozen=True, slots=True)
class VirtualAddress:
    ip: str
    prefixlen: int = 32
    dev: str | None = None
    label: str | None = None


@dataclass(frozen=True, slots=True)
class Notify:
    master: Command | None = None
    backup: Command | None = None
    fault: Command | None = None
    stop: Command | None = None
    any: Command | None = None


@dataclass(frozen=True, slots=True)
class VrrpInstance:
    name: str
    where: Source
    interface: str | None
    vrid: int
    priority: int = 100
    initial_state: str = "BACKUP"
    interval_cs: int = 100
    version: int = 2
    preempt: bool = True
    preempt_delay: float = 0.0
    auth_pass: str | None = None
    unicast_src_ip: str | None = None
    unicast_peers: tuple[str, ...] = ()
    addresses: tuple[VirtualAddress, ...] = ()
    track_interfaces: tuple[Track, ...] = ()
    track_scripts: tuple[Track, ...] = ()
    notify: Notify = Notify()
    garp_master_delay: float = 5.0
    garp_master_repeat: int = 5


@dataclass(frozen=True, slots=True)
class SyncGroup:
    name: str
    where: Source
    members: tuple[str, ...]
    notify: Notify = Notify()


@dataclass(frozen=True, slots=True)
class Config:
    global_defs: GlobalDefs
    scripts: dict[str, VrrpScript]
    instances: tuple[VrrpInstance, ...]
    groups: tuple[SyncGroup, ...] = ()
    warnings: tuple[str, ...] = ()

    def group_of(self, instance: str) -> SyncGroup | None:
        return next((g for g in self.groups if instance in g.members), None)
