"""The VRRP agent: asyncio glue between the pure cores and the kernel.

Theory of operation
-------------------
Per ``vrrp_instance`` an :class:`Instance` owns a :class:`~lbcore.vrrp.fsm.Router`
and does three things only: feed it (validated adverts from the instance's
:class:`~lbcore.vrrp.net.Channel`, timer expiries, tracker results), execute
the actions it returns (send, add/remove addresses, GARP, record a transition),
and re-arm one timer at ``router.next_deadline()``. ``now`` is the event loop's
monotonic clock.

Trackers (``track_script``, ``track_interface``, the instance's own interface)
run as tasks; whenever one changes, every instance recomputes its effective
priority (:func:`~lbcore.vrrp.fsm.effective_priority`) and its fault set. A
``vrrp_sync_group`` makes its members follow each other's MASTER/BACKUP/FAULT.

Every transition is logged, written to the JSON state file (atomically) that
``lbcore vrrp status`` reads, and runs the notify scripts with keepalived's
arguments. SIGTERM/SIGINT stop: masters resign with priority 0 and remove their
addresses. SIGUSR1 rewrites the state file.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import pwd
import signal
import time
from collections import Counter
from collections.abc import Coroutine
from dataclasses import dataclass, field
from pathlib import Path

from lbcore.vrrp import conf, fsm, net, packet

log = logging.getLogger("lbcore.vrrpd")

DEFAULT_STATE_FILE = "/run/lbcore/vrrp-state.json"


# ---------------------------------------------------------------- trackers


@dataclass
class ScriptStatus:
    """Result of one ``vrrp_script`` after rise/fall (keepalived's semantics)."""

    spec: conf.VrrpScript
    ok: bool = True
    streak: int = 0
    last_rc: int | None = None


def tracker_verdict(st: ScriptStatus, success: bool) -> bool:
    """Apply one check result; returns True when ``st.ok`` flipped.

    ``fall`` consecutive failures take an OK script down, ``rise`` consecutive
    successes bring a failed one back (keepalived vrrp_script rise/fall).
    """
    if success == st.ok:
        st.streak = 0
        return False
    st.streak += 1
    if st.streak >= (st.spec.rise if success else st.spec.fall):
        st.ok, st.streak = success, 0
        return True
    return False


async def run_command(
    cmd: conf.Command, extra: list[str], user: str | None, timeout: float | None
) -> int:
    """Run a script with arguments; returns its exit status (-1 if it could not run/timed out)."""
    kw: dict[str, object] = {}
    who = cmd.user or user
    if who and os.geteuid() == 0:
        try:
            pw = pwd.getpwnam(who)
        except KeyError:
            log.error("script user %s does not exist; not running %s", who, cmd.argv[0])
            return -1
        kw.update(user=pw.pw_uid, group=pw.pw_gid, extra_groups=[])
    try:
        proc = await asyncio.create_subprocess_exec(
            *cmd.argv,
            *extra,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
            start_new_session=True,
            **kw,  # type: ignore[arg-type]
        )
    except OSError as exc:
        log.error("cannot run %s: %s", cmd.argv[0], exc)
        return -1
    try:
        return await asyncio.wait_for(proc.wait(), timeout)
    except TimeoutError:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        await proc.wait()
        return -1


async def check_balancer(path: str, timeout: float) -> bool:
    """The built-in tracker: the admin socket answers ``show info`` and a frontend is OPEN.

    Speaks the HAProxy runtime API (one command per connection), which lbcore's
    admin socket implements, so it also tracks a real HAProxy.
    """

    async def ask(command: str) -> str:
        reader, writer = await asyncio.open_unix_connection(path)
        try:
            writer.write(command.encode() + b"\n")
            await writer.drain()
            return (await reader.read(1 << 20)).decode(errors="replace")
        finally:
            writer.close()

    try:
        async with asyncio.timeout(timeout):
            info = await ask("show info")
            if "Name:" not in info and "Pid:" not in info:
                return False
            stat = await ask("show stat")
    except (OSError, TimeoutError):
        return False
    header: list[str] = []
    for line in stat.splitlines():
        if line.startswith("# "):
            header = line[2:].split(",")
            continue
        row = line.split(",")
        if not header or len(row) < len(header):
            continue
        rec = dict(zip(header, row, strict=False))
        if rec.get("svname") == "FRONTEND" and rec.get("status") == "OPEN":
            return True
    return False


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

    @property
    def dev(self) -> str | None:
        return self.cfg.interface

    def destinations(self) -> list[str]:
        return list(self.cfg.unicast_peers) or [packet.MCAST_GROUP]

    def advert(self, priority: int, dst: str) -> bytes:
        auth = packet.pass_auth_data(self.cfg.auth_pass) if self.cfg.auth_pass else b""
        adv = packet.Advert(
            version=self.cfg.version,
            vrid=self.cfg.vrid,
            priority=priority,
            addresses=tuple(a.ip for a in self.cfg.addresses),
            interval_cs=self.cfg.interval_cs,
            auth_type=packet.AUTH_PASS if self.cfg.auth_pass else packet.AUTH_NONE,
            auth_data=auth,
        )
        return packet.encode(adv, self.src, dst)

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
    def __init__(self, cfg: conf.Config, state_file: str | None = DEFAULT_STATE_FILE) -> None:
        self.cfg = cfg
        self.state_file = Path(state_file) if state_file else None
        self.instances: dict[str, Instance] = {}
        self.channels: dict[tuple[str | None, bool], net.Channel] = {}
        self.scripts: dict[str, ScriptStatus] = {
            name: ScriptStatus(spec) for name, spec in cfg.scripts.items()
        }
        self.links: dict[str, bool] = {}
        self.group_state: dict[str, str] = {}
        self.tasks: set[asyncio.Future[object]] = set()
        self.daemons: set[asyncio.Future[object]] = set()
        self.stopping = asyncio.Event()
        self.addrs: net.Addresses | None = None
        self.loop: asyncio.AbstractEventLoop | None = None

    # -- lifecycle

    async def run(self) -> int:
        self.loop = asyncio.get_running_loop()
        self.addrs = net.Addresses()
        try:
            self._setup()
            await self._initial_checks()
            for sig, fn in (
                (signal.SIGTERM, self.stopping.set),
                (signal.SIGINT, self.stopping.set),
                (signal.SIGUSR1, self.write_state),
                (signal.SIGHUP, self._on_hup),
            ):
                self.loop.add_signal_handler(sig, fn)
            now = self.loop.time()
            for inst in self.instances.values():
                self._apply(inst, inst.router.start(now))
            self._retrack()
            self.write_state()
            self._spawn(self._watch_links())
            for st in self.scripts.values():
                if any(
                    st.spec.name in (t.name for t in i.track_scripts) for i in self.cfg.instances
                ):
                    self._spawn(self._script_loop(st))
            await self.stopping.wait()
            log.info("stopping: resigning masters and removing virtual addresses")
            now = self.loop.time()
            for inst in self.instances.values():
                self._apply(inst, inst.router.shutdown(now))
            self.write_state()
            await self._drain_tasks()
            return 0
        finally:
            for ch in self.channels.values():
                with contextlib.suppress(Exception):
                    self.loop.remove_reader(ch.sock.fileno())
                ch.close()
            self.addrs.close()

    def _setup(self) -> None:
        assert self.addrs is not None and self.loop is not None
        for ic in self.cfg.instances:
            dev = ic.interface
            src = ic.unicast_src_ip or (net.primary_ipv4(dev) if dev else None)
            if not src:
                raise conf.ConfigError(
                    ic.where, f"vrrp_instance {ic.name}: interface {dev} has no IPv4 address"
                )
            key = (dev, not ic.unicast_peers)
            if key not in self.channels:
                self.channels[key] = net.Channel(dev, multicast=not ic.unicast_peers)
                self.loop.add_reader(
                    self.channels[key].sock.fileno(), self._on_readable, self.channels[key]
                )
            params = fsm.Params(
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
            expect = packet.Expect(
                version=ic.version,
                vrid=ic.vrid,
                addresses=frozenset(a.ip for a in ic.addresses),
                interval_cs=ic.interval_cs,
                auth_type=packet.AUTH_PASS if ic.auth_pass else packet.AUTH_NONE,
                auth_data=packet.pass_auth_data(ic.auth_pass) if ic.auth_pass else b"",
                peers=frozenset(ic.unicast_peers),
            )
            inst = Instance(ic, fsm.Router(params), self.channels[key], src, expect)
            self.instances[ic.name] = inst
            # A predecessor killed with SIGKILL leaves its addresses behind; they
            # must not stay up while we are a backup (keepalived does the same).
            for vip in ic.addresses:
                if self.addrs.remove(vip.dev or dev or "", vip.ip, vip.prefixlen):
                    log.info("(%s) removed stale virtual address %s", ic.name, vip.ip)

    async def _initial_checks(self) -> None:
        """Run each tracked script once before starting, so the first state is right."""
        used = sorted({t.name for i in self.cfg.instances for t in i.track_scripts})
        results = await asyncio.gather(*(self._check_once(self.scripts[n]) for n in used))
        for name, ok in zip(used, results, strict=True):
            self.scripts[name].ok = ok
        for name in {t.name for i in self.cfg.instances for t in i.track_interfaces} | {
            i.interface for i in self.cfg.instances if i.interface
        }:
            self.links[name] = net.link_is_up(name)

    async def _drain_tasks(self) -> None:
        pending = [t for t in self.tasks if not t.done()]
        for t in pending:
            if t in self.daemons:
                t.cancel()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(10):
                await asyncio.gather(*pending, return_exceptions=True)

    def _spawn(self, coro: Coroutine[object, object, object], daemon: bool = True) -> None:
        """Keep a reference to a task; daemons (trackers) are cancelled at stop, others awaited."""
        task = asyncio.ensure_future(coro)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)
        if daemon:
            self.daemons.add(task)
            task.add_done_callback(self.daemons.discard)

    def _on_hup(self) -> None:
        log.warning(
            "SIGHUP: live reload is not supported; restart the agent to apply a new configuration"
        )
        self.write_state()

    # -- receive path

    def _on_readable(self, ch: net.Channel) -> None:
        assert self.loop is not None
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
        inst = next(
            (i for i in self.instances.values() if i.channel is ch and i.cfg.vrid == vrid), None
        )
        if inst is None:
            # Not ours (another group on the link): RFC 5798 §7.1 says drop.
            for other in self.instances.values():
                if other.channel is ch:
                    other.counters["rx_drop_vrid"] += 1
            return
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
        if ip.src == inst.src:
            return  # our own multicast looped back by a bridge
        inst.counters["rx_adverts"] += 1
        if adv.priority == 0:
            inst.counters["rx_priority_zero"] += 1
        self._apply(inst, inst.router.receive(ip.src, adv.priority, adv.interval_cs, now))

    # -- timers

    def _arm(self, inst: Instance) -> None:
        assert self.loop is not None
        if inst.timer is not None:
            inst.timer.cancel()
            inst.timer = None
        deadline = inst.router.next_deadline()
        if deadline is not None:
            inst.timer = self.loop.call_at(deadline, self._on_timer, inst)

    def _on_timer(self, inst: Instance) -> None:
        assert self.loop is not None
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
        assert self.addrs is not None
        name = inst.cfg.name
        match action:
            case fsm.SendAdvert(priority=prio):
                for dst in inst.destinations():
                    inst.channel.send(inst.advert(prio, dst), inst.src, dst)
                inst.counters["tx_adverts"] += 1
                if prio == 0:
                    inst.counters["tx_priority_zero"] += 1
            case fsm.AddAddresses():
                for vip in inst.cfg.addresses:
                    self.addrs.add(vip.dev or inst.dev or "", vip.ip, vip.prefixlen, vip.label)
            case fsm.RemoveAddresses():
                for vip in inst.cfg.addresses:
                    self.addrs.remove(vip.dev or inst.dev or "", vip.ip, vip.prefixlen)
            case fsm.SendGarp(count=count):
                by_dev: dict[str, list[str]] = {}
                for vip in inst.cfg.addresses:
                    by_dev.setdefault(vip.dev or inst.dev or "", []).append(vip.ip)
                for dev, ips in by_dev.items():
                    if dev:
                        inst.counters["tx_garp"] += net.send_garp(dev, ips, count)
            case fsm.Transition(old=old, new=new, priority=prio, reason=why):
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
        specific = {"MASTER": n.master, "BACKUP": n.backup, "FAULT": n.fault, "STOP": n.stop}.get(
            state
        )
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
        if group is None or self.loop is None:
            return
        now = self.loop.time()
        key = f"group:{group.name}"
        why = f"sync group {group.name} follows {inst.cfg.name}"
        members = [self.instances[m] for m in group.members]
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
        assert self.loop is not None
        now = self.loop.time()
        for inst in self.instances.values():
            weights: list[int] = []
            faults: dict[str, bool] = {}
            if inst.dev:
                faults[f"interface:{inst.dev}"] = not self.links.get(inst.dev, True)
            for t in inst.cfg.track_interfaces:
                up = self.links.get(t.name, False)
                if not t.weight:
                    faults[f"interface:{t.name}"] = not up
                elif (t.weight > 0 and up) or (t.weight < 0 and not up):
                    weights.append(t.weight)
            for t in inst.cfg.track_scripts:
                st = self.scripts[t.name]
                w = st.spec.weight if t.weight is None else t.weight
                if w == 0:
                    faults[f"script:{t.name}"] = not st.ok
                elif (w > 0 and st.ok) or (w < 0 and not st.ok):
                    weights.append(w)
            actions: list[fsm.Action] = []
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
        assert self.loop is not None
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
