"""The VRRP agent: asyncio glue between the pure cores and the kernel.

Theory of operation
-------------------
Per ``vrrp_instance`` an :class:`Instance` owns a :class:`~lbcore.vrrp.fsm.Router`
and the agent does three things for it: feed it (validated adverts from the
instance's :class:`~lbcore.vrrp.net.Channel`, timer expiries, tracker results),
execute the actions it returns (send, add/remove addresses, GARP, record a
transition), and re-arm one timer at ``router.next_deadline()``. ``now`` is the
event loop's monotonic clock.

Trackers (``track_script``, ``track_interface``, the instance's own interface)
run as tasks; whenever one changes, every instance recomputes its effective
priority and fault set (:func:`lbcore.vrrp.track.tracked`). A ``vrrp_sync_group``
makes its members follow each other's MASTER/BACKUP/FAULT.

Every transition is logged, written to the JSON state file (atomically) that
``lbcore vrrp status`` reads, and runs the notify scripts with keepalived's
arguments. Signals: TERM/INT stop (masters resign with priority 0 and remove
their addresses); HUP reloads the configuration (instances whose identity —
interface, VRID, version, unicast peers — is unchanged keep their state; a bad
file is refused and the running configuration kept); USR1 rewrites the state file.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import signal
import time
from collections import Counter
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from pathlib import Path

from lbcore.vrrp import conf, fsm, net, packet
from lbcore.vrrp.checks import check_balancer, run_command
from lbcore.vrrp.track import ScriptStatus, tracked, tracker_verdict

log = logging.getLogger("lbcore.vrrpd")

DEFAULT_STATE_FILE = "/run/lbcore/vrrp-state.json"
#: How often the state file is refreshed between transitions (for its counters).
STATE_REFRESH = 5.0


def _params(ic: conf.VrrpInstance, src: str) -> fsm.Params:
    return fsm.Params(
        vrid=ic.vrid,
        priority=ic.priority,
        interval_cs=ic.interval_cs,
        version=ic.version,
        primary_ip=src,
        preempt=ic.preempt,
        preempt_delay=ic.preempt_delay,
        garp_repeat=ic.garp_master_repeat,
        garp_delay=ic.garp_master_delay,
    )


def _expect(ic: conf.VrrpInstance) -> packet.Expect:
    return packet.Expect(
        version=ic.version,
        vrid=ic.vrid,
        addresses=frozenset(a.ip for a in ic.addresses),
        interval_cs=ic.interval_cs,
        auth_type=packet.AUTH_PASS if ic.auth_pass else packet.AUTH_NONE,
        auth_data=packet.pass_auth_data(ic.auth_pass) if ic.auth_pass else b"",
        peers=frozenset(ic.unicast_peers),
    )


def advert_of(ic: conf.VrrpInstance, priority: int) -> packet.Advert:
    """The advertisement an instance sends (pure: the same config gives keepalived's bytes)."""
    pw = ic.auth_pass
    return packet.Advert(
        version=ic.version,
        vrid=ic.vrid,
        priority=priority,
        addresses=tuple(a.ip for a in ic.addresses),
        interval_cs=ic.interval_cs,
        auth_type=packet.AUTH_PASS if pw else packet.AUTH_NONE,
        auth_data=packet.pass_auth_data(pw) if pw else b"",
    )


def _identity(ic: conf.VrrpInstance) -> tuple[object, ...]:
    """What a reload cannot change in place: it defines which group the router is in."""
    return (ic.interface, ic.vrid, ic.version, ic.unicast_src_ip, ic.unicast_peers)


def _script_key(spec: conf.VrrpScript) -> tuple[object, ...]:
    return (spec.command, spec.lbcore_socket, spec.interval, spec.timeout, spec.rise, spec.fall)


# ---------------------------------------------------------------- one instance


@dataclass
class Instance:
    cfg: conf.VrrpInstance
    router: fsm.Router
    channel: net.Channel
    src: str
    expect: packet.Expect
    counters: Counter[str] = field(default_factory=Counter)
    since: float = field(default_factory=time.time)
    timer: asyncio.TimerHandle | None = None

    def dev_of(self, vip: conf.VirtualAddress) -> str:
        return vip.dev or self.cfg.interface or ""

    def destinations(self) -> list[str]:
        return list(self.cfg.unicast_peers) or [packet.MCAST_GROUP]

    def advert(self, priority: int, dst: str) -> bytes:
        return packet.encode(advert_of(self.cfg, priority), self.src, dst)

    def snapshot(self) -> dict[str, object]:
        r = self.router
        return {
            "state": r.state.value,
            "vrid": self.cfg.vrid,
            "interface": self.cfg.interface,
            "version": self.cfg.version,
            "base_priority": self.cfg.priority,
            "effective_priority": r.priority,
            "advert_int": self.cfg.interval_cs / 100,
            "addresses": [f"{a.ip}/{a.prefixlen}" for a in self.cfg.addresses],
            "source": self.src,
            "master": r.master_ip,
            "master_priority": r.master_priority,
            "faults": sorted(r.faults),
            "since": self.since,
            "counters": dict(self.counters),
        }


# ---------------------------------------------------------------- the agent


class Agent:
    def __init__(
        self,
        cfg: conf.Config,
        state_file: str | None = DEFAULT_STATE_FILE,
        conf_path: str | None = None,
        on_ready: Callable[[], None] | None = None,
    ) -> None:
        self.cfg = cfg
        self.on_ready = on_ready
        self.conf_path = conf_path
        self.state_file = Path(state_file) if state_file else None
        self.instances: dict[str, Instance] = {}
        self.channels: dict[tuple[str | None, bool], net.Channel] = {}
        self.scripts: dict[str, ScriptStatus] = {}
        self.links: dict[str, bool] = {}
        self.group_state: dict[str, str] = {}
        self.tasks: set[asyncio.Future[object]] = set()
        self.daemons: set[asyncio.Future[object]] = set()
        self.script_tasks: list[asyncio.Future[object]] = []
        self.stopping = asyncio.Event()
        self._addrs: net.Addresses | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        assert self._loop is not None, "the agent is not running"
        return self._loop

    @property
    def addrs(self) -> net.Addresses:
        assert self._addrs is not None, "the agent is not running"
        return self._addrs

    # -- lifecycle

    async def run(self) -> int:
        self._loop = asyncio.get_running_loop()
        self._addrs = net.Addresses()
        try:
            for ic in self.cfg.instances:
                self.instances[ic.name] = self._create(ic)
            await self._load_scripts()
            self._probe_links()
            for sig, fn in (
                (signal.SIGTERM, self.stopping.set),
                (signal.SIGINT, self.stopping.set),
                (signal.SIGUSR1, self.write_state),
                (signal.SIGHUP, lambda: self._spawn(self.reload())),
            ):
                self.loop.add_signal_handler(sig, fn)
            self._retrack()  # in INIT: sets priorities and faults, so startup lands right
            now = self.loop.time()
            for inst in self.instances.values():
                self._apply(inst, inst.router.start(now))
            self.write_state()
            self._spawn(self._watch_links())
            self._spawn(self._refresh_state())
            log.info("started %d vrrp_instance(s)", len(self.instances))
            if self.on_ready is not None:
                self.on_ready()
            await self.stopping.wait()
            log.info("stopping: resigning masters and removing virtual addresses")
            now = self.loop.time()
            for inst in self.instances.values():
                self._apply(inst, inst.router.shutdown(now))
            self.write_state()
            await self._drain_tasks()
            return 0
        finally:
            for inst in self.instances.values():
                if inst.timer is not None:
                    inst.timer.cancel()
            for ch in self.channels.values():
                with contextlib.suppress(Exception):
                    self.loop.remove_reader(ch.sock.fileno())
                ch.close()
            self.addrs.close()

    def _create(self, ic: conf.VrrpInstance) -> Instance:
        dev = ic.interface
        src = ic.unicast_src_ip or (net.primary_ipv4(dev) if dev else None)
        if not src:
            raise conf.ConfigError(
                ic.where, f"vrrp_instance {ic.name}: interface {dev} has no IPv4 address"
            )
        key = (dev, not ic.unicast_peers)
        if key not in self.channels:
            ch = net.Channel(dev, multicast=not ic.unicast_peers)
            self.channels[key] = ch
            self.loop.add_reader(ch.sock.fileno(), self._on_readable, ch)
        inst = Instance(ic, fsm.Router(_params(ic, src)), self.channels[key], src, _expect(ic))
        # A predecessor killed with SIGKILL leaves its addresses behind; they
        # must not stay up while we are a backup (keepalived does the same).
        for vip in ic.addresses:
            if self.addrs.remove(inst.dev_of(vip), vip.ip, vip.prefixlen):
                log.info("(%s) removed stale virtual address %s", ic.name, vip.ip)
        return inst

    async def _load_scripts(self) -> None:
        """(Re)build script trackers; a new or changed script is run once before it counts."""
        for task in self.script_tasks:
            task.cancel()
        old = self.scripts
        used = sorted({t.name for i in self.cfg.instances for t in i.track_scripts})
        self.scripts = {}
        fresh: list[str] = []
        for name in used:
            spec = self.cfg.scripts[name]
            prev = old.get(name)
            if prev is not None and _script_key(prev.spec) == _script_key(spec):
                self.scripts[name] = ScriptStatus(spec, prev.ok)
            else:
                self.scripts[name] = ScriptStatus(spec)
                fresh.append(name)
        results = await asyncio.gather(*(self._check_once(self.scripts[n]) for n in fresh))
        for name, ok in zip(fresh, results, strict=True):
            self.scripts[name].ok = ok
        self.script_tasks = [self._spawn(self._script_loop(st)) for st in self.scripts.values()]

    def _probe_links(self) -> None:
        names = {t.name for i in self.cfg.instances for t in i.track_interfaces}
        names |= {i.interface for i in self.cfg.instances if i.interface}
        self.links = {name: self.links.get(name, net.link_is_up(name)) for name in names}

    async def _drain_tasks(self) -> None:
        pending = [t for t in self.tasks if not t.done()]
        for t in pending:
            if t in self.daemons:
                t.cancel()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(10):
                await asyncio.gather(*pending, return_exceptions=True)

    def _spawn(
        self, coro: Coroutine[object, object, object], daemon: bool = True
    ) -> asyncio.Future[object]:
        """Keep a reference to a task; daemons (trackers) are cancelled at stop, others awaited."""
        task = asyncio.ensure_future(coro)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)
        if daemon:
            self.daemons.add(task)
            task.add_done_callback(self.daemons.discard)
        return task

    # -- reload (SIGHUP)

    async def reload(self) -> bool:
        """Apply a changed configuration file; returns False when it was refused."""
        if self.conf_path is None:
            log.warning("SIGHUP: no configuration file to reload")
            return False
        try:
            new = conf.load(self.conf_path)
            problems = conf.script_problems(new)
            if problems:
                raise conf.ConfigError(None, "; ".join(problems))
        except conf.ConfigError as exc:
            log.error("reload refused, keeping the running configuration: %s", exc)
            return False
        log.info("reloading %s", self.conf_path)
        now = self.loop.time()
        wanted = {ic.name: ic for ic in new.instances}
        for name, inst in list(self.instances.items()):
            ic = wanted.get(name)
            if ic is None or _identity(ic) != _identity(inst.cfg):
                self._apply(inst, inst.router.shutdown(now))
                if inst.timer is not None:
                    inst.timer.cancel()
                del self.instances[name]
        self.cfg = new
        for name, ic in wanted.items():
            current = self.instances.get(name)
            if current is None:
                try:
                    self.instances[name] = self._create(ic)
                except (conf.ConfigError, OSError) as exc:
                    log.error("(%s) cannot start: %s", name, exc)
            elif ic != current.cfg:
                self._update(current, ic, now)
        await self._load_scripts()
        self._probe_links()
        self._retrack()
        now = self.loop.time()
        for inst in self.instances.values():
            if inst.router.state is fsm.State.INIT:
                self._apply(inst, inst.router.start(now))
        self.write_state()
        return True

    def _update(self, inst: Instance, ic: conf.VrrpInstance, now: float) -> None:
        """Same group, new settings: keep the state, swap the parameters and addresses."""
        old = {(a.ip, a.prefixlen, inst.dev_of(a)) for a in inst.cfg.addresses}
        inst.cfg, inst.expect = ic, _expect(ic)
        inst.router.params = _params(ic, inst.src)
        new = {(a.ip, a.prefixlen, inst.dev_of(a)) for a in ic.addresses}
        if inst.router.state is fsm.State.MASTER:
            for ip, plen, dev in old - new:
                self.addrs.remove(dev, ip, plen)
            for a in ic.addresses:
                if (a.ip, a.prefixlen, inst.dev_of(a)) not in old:
                    self.addrs.add(inst.dev_of(a), a.ip, a.prefixlen, a.label)
            if new - old:
                self._apply(inst, [fsm.SendGarp(ic.garp_master_repeat)])
            inst.router.advert_at = now + inst.router.interval
            self._apply(inst, [fsm.SendAdvert(inst.router.priority)])
        log.info("(%s) configuration updated in place (%s)", ic.name, inst.router.state.value)

    # -- receive path

    def _on_readable(self, ch: net.Channel) -> None:
        for _ in range(64):  # bounded per wake-up
            data = ch.recv()
            if data is None:
                return
            self._receive(ch, data, self.loop.time())

    def _receive(self, ch: net.Channel, data: bytes, now: float) -> None:
        try:
            ip = packet.parse_ipv4(data)
        except packet.PacketError:
            return
        if ip.proto != packet.PROTO_VRRP or len(ip.payload) < 2:
            return
        vrid = ip.payload[1]
        mine = [i for i in self.instances.values() if i.channel is ch]
        inst = next((i for i in mine if i.cfg.vrid == vrid), None)
        if inst is None:
            # Another group's advert on our link: RFC 5798 §7.1 says drop.
            for other in mine:
                other.counters["rx_drop_vrid"] += 1
            return
        if ip.src == inst.src:
            return  # our own advert, looped back
        try:
            adv = packet.decode(ip.payload, ip.src, ip.dst)
        except packet.PacketError as exc:
            inst.counters[f"rx_drop_{exc.reason.value}"] += 1
            log.debug("(%s) dropped advert from %s: %s", inst.cfg.name, ip.src, exc)
            return
        reason = packet.check(adv, ip.ttl, ip.src, inst.expect)
        if reason is not None:
            inst.counters[f"rx_drop_{reason.value}"] += 1
            log.debug("(%s) dropped advert from %s: %s", inst.cfg.name, ip.src, reason.value)
            return
        inst.counters["rx_adverts"] += 1
        if adv.priority == 0:
            inst.counters["rx_priority_zero"] += 1
        self._apply(inst, inst.router.receive(ip.src, adv.priority, adv.interval_cs, now))

    # -- timers

    def _arm(self, inst: Instance) -> None:
        if inst.timer is not None:
            inst.timer.cancel()
            inst.timer = None
        deadline = inst.router.next_deadline()
        if deadline is not None:
            inst.timer = self.loop.call_at(deadline, self._on_timer, inst)

    def _on_timer(self, inst: Instance) -> None:
        inst.timer = None
        self._apply(inst, inst.router.handle_timer(self.loop.time()))

    # -- executing actions

    def _apply(self, inst: Instance, actions: list[fsm.Action]) -> None:
        for action in actions:
            try:
                self._execute(inst, action)
            except OSError as exc:
                inst.counters["errors"] += 1
                log.error("(%s) %s failed: %s", inst.cfg.name, type(action).__name__, exc)
        self._arm(inst)

    def _execute(self, inst: Instance, action: fsm.Action) -> None:
        match action:
            case fsm.SendAdvert(priority=prio):
                for dst in inst.destinations():
                    inst.channel.send(inst.advert(prio, dst), inst.src, dst)
                inst.counters["tx_adverts"] += 1
                if prio == 0:
                    inst.counters["tx_priority_zero"] += 1
            case fsm.AddAddresses():
                for vip in inst.cfg.addresses:
                    self.addrs.add(inst.dev_of(vip), vip.ip, vip.prefixlen, vip.label)
            case fsm.RemoveAddresses():
                for vip in inst.cfg.addresses:
                    self.addrs.remove(inst.dev_of(vip), vip.ip, vip.prefixlen)
            case fsm.SendGarp(count=count):
                by_dev: dict[str, list[str]] = {}
                for vip in inst.cfg.addresses:
                    by_dev.setdefault(inst.dev_of(vip), []).append(vip.ip)
                for dev, ips in by_dev.items():
                    if dev:
                        inst.counters["tx_garp"] += net.send_garp(dev, ips, count)
            case fsm.Transition(old=old, new=new, priority=prio, reason=why):
                self._transition(inst, old, new, prio, why)

    def _transition(
        self, inst: Instance, old: fsm.State, new: fsm.State, prio: int, why: str
    ) -> None:
        name = inst.cfg.name
        inst.since = time.time()
        inst.counters[f"became_{new.value.lower()}"] += 1
        log.info(
            "(%s) Entering %s STATE (from %s, priority %d: %s)",
            name,
            new.value,
            old.value,
            prio,
            why,
        )
        self.write_state()
        self._notify(inst.cfg.notify, "INSTANCE", name, new.value, prio)
        self._sync_group(inst, new)

    # -- notify scripts and sync groups

    def _notify(self, n: conf.Notify, kind: str, name: str, state: str, prio: int) -> None:
        by_state = {"MASTER": n.master, "BACKUP": n.backup, "FAULT": n.fault, "STOP": n.stop}
        specific = by_state.get(state)
        user = self.cfg.global_defs.script_user
        if specific is None and n.any is None:
            return

        async def run() -> None:
            # keepalived runs the state's own script, then the generic one with
            # the four arguments `GROUP|INSTANCE name state priority`.
            if specific is not None:
                rc = await run_command(specific, [], user, 30)
                log.info("(%s) notify_%s exited %d", name, state.lower(), rc)
            if n.any is not None:
                rc = await run_command(n.any, [kind, name, state, str(prio)], user, 30)
                log.info("(%s) notify exited %d", name, rc)

        self._spawn(run(), daemon=False)

    def _sync_group(self, inst: Instance, new: fsm.State) -> None:
        """keepalived's vrrp_sync_group: members follow MASTER, BACKUP and FAULT together."""
        group = self.cfg.group_of(inst.cfg.name)
        if group is None:
            return
        now = self.loop.time()
        key = f"group:{group.name}"
        why = f"sync group {group.name} follows {inst.cfg.name}"
        members = [self.instances[m] for m in group.members if m in self.instances]
        for other in members:
            if other is inst:
                continue
            if new is fsm.State.MASTER:
                self._apply(other, other.router.force_master(now, why))
            elif new is fsm.State.BACKUP:
                self._apply(other, other.router.force_backup(now, why))
            elif new is fsm.State.FAULT and other.router.state is not fsm.State.FAULT:
                self._apply(other, other.router.set_fault(key, True, now))
        if new is not fsm.State.FAULT and all(m.router.faults <= {key} for m in members):
            # The member whose own fault held the group down recovered: release the rest.
            for other in members:
                if key in other.router.faults:
                    self._apply(other, other.router.set_fault(key, False, now))
        states = {m.router.state for m in members}
        if len(states) == 1:
            state = states.pop().value
            if self.group_state.get(group.name) != state:
                self.group_state[group.name] = state
                log.info("(%s) sync group entering %s STATE", group.name, state)
                self._notify(group.notify, "GROUP", group.name, state, 0)

    # -- trackers

    def _retrack(self) -> None:
        """Recompute every instance's effective priority and fault set from trackers."""
        now = self.loop.time()
        for inst in list(self.instances.values()):
            weights, faults = tracked(inst.cfg, self.scripts, self.links)
            actions: list[fsm.Action] = []
            for key in {k for k in inst.router.faults if not k.startswith("group:")} - set(faults):
                actions += inst.router.set_fault(key, False, now)  # tracker removed by reload
            for key, failed in faults.items():
                actions += inst.router.set_fault(key, failed, now)
            prio = fsm.effective_priority(inst.cfg.priority, weights)
            if prio != inst.router.priority:
                log.info(
                    "(%s) effective priority %d -> %d", inst.cfg.name, inst.router.priority, prio
                )
            actions += inst.router.set_priority(prio, now)
            self._apply(inst, actions)
            if actions:
                self.write_state()

    async def _check_once(self, st: ScriptStatus) -> bool:
        spec = st.spec
        timeout = spec.timeout or max(spec.interval, 1.0)
        if spec.lbcore_socket:
            return await check_balancer(spec.lbcore_socket, timeout)
        assert spec.command is not None
        rc = await run_command(spec.command, [], self.cfg.global_defs.script_user, timeout)
        st.last_rc = rc
        return rc == 0

    async def _script_loop(self, st: ScriptStatus) -> None:
        while True:
            started = self.loop.time()
            ok = await self._check_once(st)
            if tracker_verdict(st, ok):
                log.info("vrrp_script %s is now %s", st.spec.name, "OK" if st.ok else "FAILED")
                self._retrack()
            await asyncio.sleep(max(0.0, st.spec.interval - (self.loop.time() - started)))

    async def _watch_links(self) -> None:
        while True:
            changed = False
            for name in list(self.links):
                up = net.link_is_up(name)
                if up != self.links[name]:
                    log.info("interface %s is now %s", name, "UP" if up else "DOWN")
                    self.links[name] = up
                    changed = True
            if changed:
                self._retrack()
            await asyncio.sleep(0.1)

    # -- state file

    async def _refresh_state(self) -> None:
        while True:
            await asyncio.sleep(STATE_REFRESH)
            self.write_state()

    def write_state(self) -> None:
        if self.state_file is None:
            return
        doc = {
            "pid": os.getpid(),
            "router_id": self.cfg.global_defs.router_id,
            "updated": time.time(),
            "instances": {name: inst.snapshot() for name, inst in self.instances.items()},
            "groups": dict(self.group_state),
        }
        try:
            self.state_file.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.state_file.with_name(f".{self.state_file.name}.{os.getpid()}")
            tmp.write_text(json.dumps(doc, indent=1, sort_keys=True))
            os.replace(tmp, self.state_file)
        except OSError as exc:
            log.error("cannot write state file %s: %s", self.state_file, exc)
