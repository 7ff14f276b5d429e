"""The VRRP router state machine of RFC 5798 §6.4, sans I/O.

Theory of operation
-------------------
One :class:`Router` per ``vrrp_instance``. It never reads a clock and never
touches a socket: every entry point takes ``now`` (seconds, any monotonic
origin) and returns a list of :class:`Action` values for the caller to carry
out, in order — send an advert, add or remove the virtual addresses, send
gratuitous ARP, log/notify a transition. :meth:`Router.next_deadline` says when
:meth:`Router.handle_timer` must be called next; the asyncio layer arms one
timer for it (the aioquic pattern).

States are INIT → BACKUP ⇄ MASTER, plus FAULT (a tracker says the instance
must not serve) and STOP (shut down). Which event is legal in which state is
the table :data:`HANDLERS`; an event a state does not list is ignored, the way
RFC 5798 says a router in Initialize ignores adverts.

Timers (RFC 5798 §6.1): ``Master_Down_Interval = 3 * Master_Adver_Interval +
Skew_Time``. The skew is ``(256 - Priority) * Master_Adver_Interval / 256`` in
VRRPv3 (RFC 5798 §6.1) and ``(256 - Priority) / 256`` seconds in VRRPv2
(RFC 3768 §6.1) — keepalived follows the same split, and interop needs it.
"""

from __future__ import annotations

import enum
import ipaddress
from dataclasses import dataclass, field

#: RFC 5798 §6.1: the owner of the virtual addresses.
PRIORITY_OWNER = 255
#: RFC 5798 §5.2.4: a master resigning.
PRIORITY_STOP = 0
#: RFC 5798 §6.1: Master_Down_Interval counts this many advertisement intervals.
DOWN_TIMER_ADVERTS = 3


class State(enum.Enum):
    INIT = "INIT"
    BACKUP = "BACKUP"
    MASTER = "MASTER"
    FAULT = "FAULT"
    STOP = "STOP"


# ---------------------------------------------------------------- actions


@dataclass(frozen=True, slots=True)
class SendAdvert:
    """Send one advertisement carrying ``priority`` (0 = we resign)."""

    priority: int


@dataclass(frozen=True, slots=True)
class AddAddresses:
    """Configure the virtual addresses on their interfaces."""


@dataclass(frozen=True, slots=True)
class RemoveAddresses:
    """Remove the virtual addresses from their interfaces."""


@dataclass(frozen=True, slots=True)
class SendGarp:
    """Announce every virtual address with ``count`` gratuitous ARPs."""

    count: int


@dataclass(frozen=True, slots=True)
class Transition:
    """The instance changed state: log it, run notify scripts, write the state file."""

    old: State
    new: State
    priority: int
    reason: str


Action = SendAdvert | AddAddresses | RemoveAddresses | SendGarp | Transition


# ---------------------------------------------------------------- parameters


@dataclass(frozen=True, slots=True)
class Params:
    """The configuration one router needs (a projection of ``vrrp_instance``)."""

    vrid: int
    priority: int
    interval_cs: int = 100
    version: int = 3
    #: Our primary address on the interface: breaks ties between equal priorities.
    primary_ip: str = "0.0.0.0"
    preempt: bool = True
    preempt_delay: float = 0.0
    garp_repeat: int = 5
    garp_delay: float = 5.0

    def __post_init__(self) -> None:
        if not 1 <= self.priority <= PRIORITY_OWNER:
            raise ValueError(f"priority {self.priority} not in 1..255")
        if self.interval_cs < 1:
            raise ValueError("advertisement interval must be positive")


def skew_time(version: int, priority: int, master_interval: float) -> float:
    """Skew_Time: RFC 5798 §6.1 (v3, scaled by the interval) / RFC 3768 §6.1 (v2, seconds)."""
    if version == 2:
        return (256 - priority) / 256
    return (256 - priority) * master_interval / 256


def master_down_interval(version: int, priority: int, master_interval: float) -> float:
    """RFC 5798 §6.1: 3 * Master_Adver_Interval + Skew_Time."""
    return DOWN_TIMER_ADVERTS * master_interval + skew_time(version, priority, master_interval)


def effective_priority(base: int, weights: list[int]) -> int:
    """Base priority plus tracker weights, clamped to 1..254; the owner (255) never moves.

    keepalived clamps the same way (vrrp_track.c), so a weight can never make a
    router claim ownership or resign through priority 0.
    """
    if base == PRIORITY_OWNER:
        return base
    return max(1, min(254, base + sum(weights)))


def _ip_key(ip: str) -> int:
    return int(ipaddress.IPv4Address(ip))


# ---------------------------------------------------------------- the router


@dataclass
class Router:
    """One VRRP router (virtual router instance) — pure state and decisions."""

    params: Params
    state: State = State.INIT
    priority: int = field(init=False)
    #: Master_Adver_Interval in seconds: v3 backups learn it from the master's adverts.
    master_interval: float = field(init=False)
    master_ip: str | None = None
    master_priority: int | None = None
    faults: set[str] = field(default_factory=set)
    down_at: float | None = None
    advert_at: float | None = None
    garp_at: float | None = None
    preempt_at: float | None = None

    def __post_init__(self) -> None:
        self.priority = self.params.priority
        self.master_interval = self.params.interval_cs / 100

    # -- derived values

    @property
    def interval(self) -> float:
        return self.params.interval_cs / 100

    def down_interval(self) -> float:
        return master_down_interval(self.params.version, self.priority, self.master_interval)

    def next_deadline(self) -> float | None:
        """When :meth:`handle_timer` must run next, or ``None`` when no timer is armed."""
        pending = [t for t in (self.down_at, self.advert_at, self.garp_at) if t is not None]
        return min(pending) if pending else None

    # -- entry points (each returns the actions to carry out, in order)

    def start(self, now: float) -> list[Action]:
        """Startup event (RFC 5798 §6.4.1)."""
        if self.state is not State.INIT:
            return []
        if self.params.preempt_delay:
            # keepalived: the preempt delay also runs from startup.
            self.preempt_at = now + self.params.preempt_delay
        return self._leave_init(now, "startup")

    def receive(self, src: str, priority: int, interval_cs: int, now: float) -> list[Action]:
        """An advertisement that passed :func:`lbcore.vrrp.packet.check`."""
        handler = HANDLERS.get((self.state, "advert"))
        return handler(self, src, priority, interval_cs, now) if handler else []

    def handle_timer(self, now: float) -> list[Action]:
        """Run every timer whose deadline is at or before ``now``."""
        actions: list[Action] = []
        if self.state is State.BACKUP and self.down_at is not None and now >= self.down_at:
            actions += self._become_master(now, "master down timer expired")
        if self.state is State.MASTER:
            if self.advert_at is not None and now >= self.advert_at:
                actions.append(SendAdvert(self.priority))
                # Re-arm from the previous deadline, not from now, so a late wake-up
                # does not stretch every following interval; resync if far behind.
                self.advert_at += self.interval
                if self.advert_at <= now:
                    self.advert_at = now + self.interval
            if self.garp_at is not None and now >= self.garp_at:
                self.garp_at = None
                actions.append(SendGarp(self.params.garp_repeat))
        return actions

    def set_priority(self, priority: int, now: float) -> list[Action]:
        """A tracker moved the effective priority (see :func:`effective_priority`)."""
        if priority == self.priority:
            return []
        self.priority = priority
        if self.state is State.MASTER:
            # Tell the backups at once, so a lowered master is preempted one
            # advert interval sooner than waiting for the next scheduled advert.
            self.advert_at = now + self.interval
            return [SendAdvert(priority)]
        # A backup whose priority rose above the master's ignores the next adverts
        # (see _backup_advert), so its down timer preempts; nothing to do now.
        return []

    def set_fault(self, key: str, failed: bool, now: float) -> list[Action]:
        """A tracker (``key``: script, interface, sync group) failed or recovered."""
        was = bool(self.faults)
        if failed:
            self.faults.add(key)
        else:
            self.faults.discard(key)
        if bool(self.faults) == was or self.state in (State.INIT, State.STOP):
            return []
        if self.faults:
            return self._enter_fault(now, f"fault: {', '.join(sorted(self.faults))}")
        return self._leave_init(now, f"fault cleared: {key}")

    def shutdown(self, now: float) -> list[Action]:
        """Shutdown event: a master resigns with priority 0 (RFC 5798 §6.4.3)."""
        actions: list[Action] = []
        if self.state is State.MASTER:
            actions += [SendAdvert(PRIORITY_STOP), RemoveAddresses()]
        return actions + self._goto(State.STOP, now, "shutdown")

    def force_master(self, now: float, reason: str) -> list[Action]:
        """A sync group member became master: follow it (keepalived's vrrp_sync_group)."""
        if self.state is State.BACKUP:
            return self._become_master(now, reason)
        return []

    def force_backup(self, now: float, reason: str) -> list[Action]:
        """A sync group member fell back: follow it."""
        if self.state is State.MASTER:
            return [RemoveAddresses(), *self._become_backup(now, reason)]
        return []

    # -- per-state advert handlers (RFC 5798 §6.4.2, §6.4.3)

    def _backup_advert(self, src: str, prio: int, interval_cs: int, now: float) -> list[Action]:
        if prio == PRIORITY_STOP:
            # The master resigned: take over after Skew_Time alone.
            self.down_at = now + skew_time(self.params.version, self.priority, self.master_interval)
            return []
        lower = prio < self.priority
        delaying = (
            self.params.preempt_delay > 0
            and lower
            and (self.preempt_at is None or now < self.preempt_at)
        )
        if not self.params.preempt or not lower or delaying:
            self.master_ip, self.master_priority = src, prio
            if self.params.version == 3:
                self.master_interval = interval_cs / 100
            self.down_at = now + self.down_interval()
            if self.params.preempt_delay > 0:
                if not lower:
                    self.preempt_at = None
                elif self.preempt_at is None:
                    self.preempt_at = now + self.params.preempt_delay
        # else: a lower-priority master and we preempt: ignore it, let the timer fire.
        return []

    def _master_advert(self, src: str, prio: int, interval_cs: int, now: float) -> list[Action]:
        if prio == PRIORITY_STOP:
            # Another router resigned while we are master: re-assert at once.
            self.advert_at = now + self.interval
            return [SendAdvert(self.priority)]
        if prio > self.priority or (
            prio == self.priority and _ip_key(src) > _ip_key(self.params.primary_ip)
        ):
            self.master_ip, self.master_priority = src, prio
            if self.params.version == 3:
                self.master_interval = interval_cs / 100
            return [
                RemoveAddresses(),
                *self._become_backup(now, f"higher priority {prio} from {src}"),
            ]
        # A lower master exists (split brain healing): force a new election now,
        # as keepalived does, rather than waiting for our next scheduled advert.
        self.advert_at = now + self.interval
        return [SendAdvert(self.priority), SendGarp(1)]

    # -- transitions

    def _leave_init(self, now: float, reason: str) -> list[Action]:
        self.master_interval = self.interval
        self.master_ip = self.master_priority = None
        if self.faults:
            return self._enter_fault(now, f"{reason}; fault: {', '.join(sorted(self.faults))}")
        if self.priority == PRIORITY_OWNER:
            return self._become_master(now, f"{reason}; address owner")
        return self._become_backup(now, reason)

    def _become_master(self, now: float, reason: str) -> list[Action]:
        self.down_at = None
        self.advert_at = now + self.interval
        self.garp_at = now + self.params.garp_delay if self.params.garp_delay > 0 else None
        self.master_ip, self.master_priority = self.params.primary_ip, self.priority
        return [
            AddAddresses(),
            SendAdvert(self.priority),
            SendGarp(self.params.garp_repeat),
            *self._goto(State.MASTER, now, reason),
        ]

    def _become_backup(self, now: float, reason: str) -> list[Action]:
        self.advert_at = self.garp_at = None
        self.down_at = now + self.down_interval()
        return self._goto(State.BACKUP, now, reason)

    def _enter_fault(self, now: float, reason: str) -> list[Action]:
        actions: list[Action] = []
        if self.state is State.MASTER:
            actions += [SendAdvert(PRIORITY_STOP), RemoveAddresses()]
        self.down_at = self.advert_at = self.garp_at = None
        return actions + self._goto(State.FAULT, now, reason)

    def _goto(self, new: State, now: float, reason: str) -> list[Action]:
        old, self.state = self.state, new
        if new is State.STOP:
            self.down_at = self.advert_at = self.garp_at = None
        if old is new:
            return []
        return [Transition(old, new, self.priority, reason)]


#: (state, event) -> handler. Events not listed for a state are ignored.
HANDLERS = {
    (State.BACKUP, "advert"): Router._backup_advert,
    (State.MASTER, "advert"): Router._master_advert,
}
