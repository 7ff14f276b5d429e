"""The state store behind the runtime API: backends -> servers, plus the stats.

Theory of operation: ``RuntimeState`` is built once from a ``Config``. It owns one
``ServerEntry`` per configured server, wrapping the ``ServerRuntime`` that balancing
reads (admin state, weight) with what only the runtime API needs: HAProxy's admin
flag bits (``show servers state`` prints them), the initial weight, the current
address, the time of the last state change. Commands change it through the methods
here, never field by field, and every change is also published as a ``Change`` to
subscribers: that is how the master will fan state out to its workers (and keep
admin states and weights across reloads).

Counters are not kept here per worker: ``counters`` holds the process-wide
snapshot (``lbcore.stats.merge`` of the workers' snapshots) that the master sets.

No clock: times are arguments (wall-clock seconds, as HAProxy's ages are).
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass, field

from lbcore import __version__
from lbcore.config.model import Config, Mode, Proxy, Server
from lbcore.server import AdminState, OpState, ServerRuntime
from lbcore.stats import CheckStats, Counters, Key


class Level(enum.IntEnum):
    """CLI access levels (``stats socket ... level``): each includes the ones below."""

    USER = 1
    OPERATOR = 2
    ADMIN = 3

    @classmethod
    def parse(cls, text: str) -> Level:
        return cls[text.upper()]


# HAProxy's SRV_ADMF_* bits (include/haproxy/server-t.h), as printed by
# "show servers state" in srv_admin_state.
ADMF_FMAINT = 0x01  # forced by the CLI / stats page
ADMF_IMAINT = 0x02  # inherited from a tracked server
ADMF_CMAINT = 0x04  # "disabled" in the configuration
ADMF_FDRAIN = 0x08  # forced drain
ADMF_MAINT = 0x01 | 0x02 | 0x04 | 0x20 | 0x40
ADMF_DRAIN = 0x08 | 0x10

# SRV_ST_* (srv_op_state).
OP_STOPPED, OP_STARTING, OP_RUNNING, OP_STOPPING = 0, 1, 2, 3
# CHK_ST_PAUSED: checks suspended (a server starting "disabled").
CHK_ST_PAUSED = 0x08

#: Algorithms whose weights are fixed once started (HAProxy's non-dynamic LB):
#: only weights 0% and 100% can be set at run time.
STATIC_ALGORITHMS = frozenset({"static-rr", "source", "uri", "hdr", "url_param"})


@dataclass(frozen=True, slots=True)
class Change:
    """One change made through the runtime API, for subscribers (the master).

    ``kind``: ``admin`` (``admin`` holds the new AdminState), ``weight`` (``weight``),
    ``addr`` (``host``/``port``), ``health`` (``enabled``), ``op`` (``op``: health
    forced from the CLI), ``shutdown`` (kill the server's sessions).
    """

    kind: str
    backend: str
    server: str
    admin: AdminState | None = None
    weight: int | None = None
    host: str | None = None
    port: int | None = None
    enabled: bool | None = None
    op: OpState | None = None


@dataclass(slots=True)
class ServerEntry:
    runtime: ServerRuntime
    sid: int
    iweight: int
    host: str
    port: int
    admin_flags: int
    last_change: float
    check_health: int
    check_state: int = 0
    check: CheckStats | None = None  # None: the server has no health check
    check_port: int | None = None  # ``port`` of the check when not the server's
    health_enabled: bool = True
    # check accounting for the stats columns chkfail, chkdown, downtime
    chk_failed: int = 0
    chk_downs: int = 0
    down_since: float | None = None
    downtime_total: float = 0.0

    def downtime(self, now: float) -> int:
        extra = now - self.down_since if self.down_since is not None else 0.0
        return int(self.downtime_total + extra)

    @property
    def name(self) -> str:
        return self.runtime.name

    @property
    def uweight(self) -> int:
        return self.runtime.weight

    @property
    def usable(self) -> bool:
        """Counted in the backend's act/bck and weight (HAProxy's srv_is_usable)."""
        rt = self.runtime
        return (
            rt.weight > 0
            and not self.admin_flags & (ADMF_MAINT | ADMF_DRAIN)
            and rt.op_state.serves
        )

    @property
    def op_code(self) -> int:
        """srv_op_state: STOPPED while forced into maintenance, else from checks."""
        op = self.runtime.op_state
        if self.admin_flags & ADMF_FMAINT:
            return OP_STOPPED
        if op is OpState.STOPPING:
            return OP_STOPPING
        return OP_RUNNING if op.serves else OP_STOPPED

    @property
    def check_flags(self) -> int:
        """srv_check_state: CHK_ST_CONFIGURED|ENABLED (2|4), PAUSED (8)."""
        flags = self.check_state
        if self.check is not None:
            flags |= 2 | (4 if self.health_enabled else 0)
        return flags

    @property
    def status(self) -> str:
        """The ``status`` column: MAINT, DRAIN, then the check verdict.

        As HAProxy's stats: with a check, a running server is ``UP`` only at full
        health (rise+fall-1), else ``UP h/fall`` (going down, or just started at
        ``rise``); a stopped one is ``DOWN h/rise`` while climbing, else ``DOWN``.
        """
        if self.admin_flags & ADMF_MAINT:
            return "MAINT"
        op = self.runtime.op_state
        if self.admin_flags & ADMF_DRAIN:
            # a checked server that is down says so, drained or not (HAProxy 2.6)
            if self.check is None or not self.health_enabled or op.serves:
                return "DRAIN"
            if op is not OpState.STOPPING:
                health = self.check_health
                return f"DOWN {health}/{self.check.rise}" if health > 0 else "DOWN"
            return "DRAIN"
        if op is OpState.STOPPING:
            return "NOLB"
        if self.check is None or not self.health_enabled:
            return "DOWN" if op is OpState.DOWN else "no check"
        rise, fall, health = self.check.rise, self.check.fall, self.check_health
        if op.serves:
            return "UP" if health >= rise + fall - 1 else f"UP {health - rise + 1}/{fall}"
        return f"DOWN {health}/{rise}" if health > 0 else "DOWN"


@dataclass(slots=True)
class BackendEntry:
    proxy: Proxy
    iid: int
    fullconn: int
    servers: list[ServerEntry]
    last_change: float
    #: transitions of the whole backend to DOWN (no usable server), and its downtime
    downs: int = 0
    down_since: float | None = None
    downtime_total: float = 0.0

    @property
    def name(self) -> str:
        return self.proxy.name

    @property
    def up(self) -> bool:
        return any(s.usable for s in self.servers)

    def refresh(self, now: float) -> None:
        """Account an UP<->DOWN transition of the whole backend (chkdown, downtime)."""
        if self.up:
            if self.down_since is not None:
                self.downtime_total += now - self.down_since
                self.down_since = None
                self.last_change = now
        elif self.down_since is None:
            self.down_since = now
            self.downs += 1
            self.last_change = now

    def downtime(self, now: float) -> int:
        extra = now - self.down_since if self.down_since is not None else 0.0
        return int(self.downtime_total + extra)

    def server(self, name: str) -> ServerEntry | None:
        if name.startswith("#") and name[1:].isdigit():
            sid = int(name[1:])
            return next((s for s in self.servers if s.sid == sid), None)
        return next((s for s in self.servers if s.name == name), None)

    def totals(self) -> tuple[int, int, int]:
        """(weight, act, bck): usable active weight (else backup weight) and counts."""
        act = [s for s in self.servers if s.usable and not s.runtime.backup]
        bck = [s for s in self.servers if s.usable and s.runtime.backup]
        weight = sum(s.uweight for s in act) if act else sum(s.uweight for s in bck)
        return weight, len(act), len(bck)


@dataclass(slots=True)
class FrontendEntry:
    proxy: Proxy
    iid: int
    maxconn: int

    @property
    def name(self) -> str:
        return self.proxy.name


#: The HAProxy runtime API level lbcore speaks. ``show info``/``show version`` lead
#: with it so tools that gate features on HAProxy's version keep working: the
#: community.general.haproxy module sends "state drain" only when "Version:" parses
#: as >= 1.5 (major.minor as integers), so a bare "0.1.0" would silently disable it.
API_LEVEL = "2.6.0"


def version_string() -> str:
    """``2.6.0-lbcore-0.1.0``: HAProxy's major.minor parse to the API level, and the
    suffix (where HAProxy puts its build) names lbcore and its version."""
    return f"{API_LEVEL}-lbcore-{__version__}"


@dataclass(frozen=True, slots=True)
class ProcessInfo:
    """Facts about the serving process for ``show info`` (the adapter fills them)."""

    pid: int = 0
    nbthread: int = 1
    node: str = ""
    start_time: float = 0.0
    ulimit_n: int = 0
    maxsock: int = 0
    name: str = "lbcore"
    version: str = field(default_factory=version_string)
    release_date: str = "2026/11/26"


@dataclass(slots=True)
class SessionInfo:
    """One client session for ``show sess`` (the adapter reports its own CLI ones)."""

    ident: int
    proto: str  # unix_stream, tcpv4, ...
    src: str  # "unix:1", "127.0.0.1:40000"
    frontend: str
    backend: str = "<NONE>"
    server: str = "<none>"
    started: float = 0.0


class RuntimeState:
    """Backends, frontends, servers and counters, as the runtime API sees them."""

    def __init__(
        self,
        config: Config,
        now: float,
        info: ProcessInfo | None = None,
    ) -> None:
        self.config = config
        self.info = info or ProcessInfo(start_time=now)
        self.frontends: list[FrontendEntry] = []
        self.backends: dict[str, BackendEntry] = {}
        #: proxies in configuration order, as "show stat" lists them
        self.order: list[str] = []
        self.iids: dict[str, int] = {}
        self.counters: dict[Key, Counters] = {}
        self.sessions: list[SessionInfo] = []
        self.subscribers: list[Callable[[Change], None]] = []
        self._build(now)

    # -- construction ----------------------------------------------------------------

    def _build(self, now: float) -> None:
        gmax = self.config.global_.maxconn
        # HAProxy gives #1 to the CLI's own "GLOBAL" frontend, then numbers proxies
        # in configuration order.
        for iid, proxy in enumerate(self.config.proxies, start=2):
            self.order.append(proxy.name)
            self.iids[proxy.name] = iid
            if proxy.kind.has_frontend:
                self.frontends.append(FrontendEntry(proxy, iid, proxy.maxconn or gmax))
        for iid, proxy in enumerate(self.config.proxies, start=2):
            if proxy.kind.has_backend:
                servers = [
                    _server_entry(proxy, s, sid, now) for sid, s in enumerate(proxy.servers, 1)
                ]
                self.backends[proxy.name] = BackendEntry(
                    proxy, iid, self._fullconn(proxy), servers, now
                )

    def _fullconn(self, backend: Proxy) -> int:
        """HAProxy's default fullconn: 10% of the maxconn of the frontends using it."""
        total = 0
        for fe in self.frontends:
            p = fe.proxy
            uses = (
                p.name == backend.name
                or p.default_backend == backend.name
                or any(u.backend == backend.name for u in p.use_backends)
            )
            if uses:
                total += fe.maxconn
        return max(1, (total + 9) // 10)

    def carry_over(self, old: RuntimeState) -> None:
        """After a reload: keep what the runtime API changed on the servers that the
        new configuration still has (same backend and name).

        HAProxy loses these without a server-state file; lbcore keeps them, with the
        state file's rules where the configuration changed under them: a weight
        set at run time survives only if the configured weight is unchanged, an
        address only if the configured address is unchanged, and a server that the
        old file started ``disabled`` is enabled when the new file no longer says so.
        """
        for name, be in self.backends.items():
            old_be = old.backends.get(name)
            if old_be is None:
                continue
            for srv in be.servers:
                prev = old_be.server(srv.name)
                if prev is None:
                    continue
                carried = prev.admin_flags & (ADMF_FMAINT | ADMF_FDRAIN)
                if prev.admin_flags & ADMF_CMAINT and not srv.runtime.config.disabled:
                    carried &= ~ADMF_FMAINT
                srv.admin_flags |= carried
                if srv.admin_flags & ADMF_FMAINT and not prev.admin_flags & ADMF_FMAINT:
                    srv.check_health = 0
                elif prev.admin_flags & ADMF_FMAINT and srv.admin_flags & ADMF_FMAINT:
                    srv.check_health = prev.check_health
                srv.runtime.admin_state = _admin_state(srv.admin_flags)
                if prev.iweight == srv.iweight:
                    srv.runtime.weight = prev.runtime.weight
                old_cfg, new_cfg = prev.runtime.config, srv.runtime.config
                if (old_cfg.host, old_cfg.port) == (new_cfg.host, new_cfg.port):
                    srv.host, srv.port = prev.host, prev.port
                srv.health_enabled = prev.health_enabled
                if srv.admin_flags == prev.admin_flags:
                    srv.last_change = prev.last_change
            be.refresh(be.last_change)

    def changed_servers(self) -> list[Change]:
        """What differs from the configuration, as changes to send to new workers."""
        out = []
        for be in self.backends.values():
            for srv in be.servers:
                cfg = srv.runtime.config
                forced = srv.admin_flags & (ADMF_FMAINT | ADMF_FDRAIN)
                # a worker starts a server READY, or MAINT if 'disabled': tell it otherwise
                if bool(forced) != cfg.disabled or srv.admin_flags & ADMF_FDRAIN:
                    out.append(Change("admin", be.name, srv.name, admin=srv.runtime.admin_state))
                if srv.uweight != cfg.weight:
                    out.append(Change("weight", be.name, srv.name, weight=srv.uweight))
                if (srv.host, srv.port) != (cfg.host, cfg.port):
                    out.append(Change("addr", be.name, srv.name, host=srv.host, port=srv.port))
        return out

    # -- lookups ---------------------------------------------------------------------

    def backend(self, name: str) -> BackendEntry | None:
        """By name, or ``#ID`` as HAProxy accepts."""
        if name.startswith("#") and name[1:].isdigit():
            iid = int(name[1:])
            return next((b for b in self.backends.values() if b.iid == iid), None)
        return self.backends.get(name)

    def proxy_id(self, name: str) -> int | None:
        """The id of a proxy given by name or ``#ID`` (None: no such proxy)."""
        if name.startswith("#") and name[1:].isdigit():
            iid = int(name[1:])
            return iid if iid in self.iids.values() else None
        return self.iids.get(name)

    def mode_of(self, proxy: Proxy) -> str:
        return "http" if proxy.mode is Mode.HTTP else "tcp"

    def counters_for(self, px: str, sv: str) -> Counters:
        return self.counters.get((px, sv)) or Counters()

    # -- changes ---------------------------------------------------------------------

    def subscribe(self, fn: Callable[[Change], None]) -> None:
        self.subscribers.append(fn)

    def _publish(self, change: Change) -> None:
        for fn in self.subscribers:
            fn(change)

    def set_admin(
        self, backend: BackendEntry, srv: ServerEntry, state: AdminState, now: float
    ) -> None:
        """``set server B/S state ready|drain|maint`` (and enable/disable server).

        As HAProxy's srv_adm_set_{ready,drain,maint}: MAINT sets FMAINT and clears
        FDRAIN, DRAIN the reverse, READY clears both. CMAINT (``disabled`` in the
        configuration) is left alone, as HAProxy 2.6 does.
        """
        before = srv.admin_flags
        flags = before & ~(ADMF_FMAINT | ADMF_FDRAIN)
        if state is AdminState.MAINT:
            flags |= ADMF_FMAINT
        elif state is AdminState.DRAIN:
            flags |= ADMF_FDRAIN
        if flags & ADMF_FMAINT and not before & ADMF_FMAINT:
            srv.check_health = 0  # leaving service resets the check's health
        srv.admin_flags = flags
        new_state = _admin_state(flags)
        if flags != before:
            srv.last_change = now
        srv.runtime.admin_state = new_state
        backend.refresh(now)
        self._publish(Change("admin", backend.name, srv.name, admin=new_state))

    def set_weight(self, backend: BackendEntry, srv: ServerEntry, weight: int, now: float) -> None:
        srv.runtime.weight = weight
        backend.refresh(now)
        self._publish(Change("weight", backend.name, srv.name, weight=weight))

    def force_health(
        self, backend: BackendEntry, srv: ServerEntry, state: OpState, now: float
    ) -> None:
        """``set server B/S health up|stopping|down``: the operational state by hand,
        with the check's health at its bottom (down) or top (up, stopping)."""
        rise = srv.check.rise if srv.check else 2
        fall = srv.check.fall if srv.check else 3
        srv.check_health = 0 if state is OpState.DOWN else rise + fall - 1
        if srv.runtime.op_state is not state:
            srv.runtime.op_state = state
            srv.last_change = now
        backend.refresh(now)
        self._publish(Change("op", backend.name, srv.name, op=state))

    def record_check(
        self,
        backend: BackendEntry,
        srv: ServerEntry,
        check: CheckStats,
        op_state: OpState,
        now: float,
    ) -> None:
        """A health check's verdict (from the checker, once per server): the check
        columns, the operational state, and HAProxy's chkfail/chkdown/downtime."""
        rt = srv.runtime
        was_serving = rt.op_state.serves
        if check.status not in _CHECK_OK | _CHECK_PENDING and was_serving:
            srv.chk_failed += 1
        if was_serving and not op_state.serves:
            srv.chk_downs += 1
            srv.down_since = now
        elif not was_serving and op_state.serves and srv.down_since is not None:
            srv.downtime_total += now - srv.down_since
            srv.down_since = None
        srv.check = check
        srv.check_health = check.health
        if op_state is not rt.op_state:
            rt.op_state = op_state
            srv.last_change = now
            self._publish(Change("op", backend.name, srv.name, op=op_state))
        backend.refresh(now)

    def set_addr(self, backend: BackendEntry, srv: ServerEntry, host: str, port: int) -> None:
        srv.host, srv.port = host, port
        self._publish(Change("addr", backend.name, srv.name, host=host, port=port))

    def set_health(self, backend: BackendEntry, srv: ServerEntry, enabled: bool) -> None:
        srv.health_enabled = enabled
        self._publish(Change("health", backend.name, srv.name, enabled=enabled))

    def shutdown_sessions(self, backend: BackendEntry, srv: ServerEntry) -> None:
        self._publish(Change("shutdown", backend.name, srv.name))


_CHECK_OK = frozenset({"L4OK", "L6OK", "L7OK", "L7OKC"})
_CHECK_PENDING = frozenset({"UNK", "INI", "START"})


def _admin_state(flags: int) -> AdminState:
    if flags & ADMF_MAINT:
        return AdminState.MAINT
    if flags & ADMF_DRAIN:
        return AdminState.DRAIN
    return AdminState.READY


def _check_params(server: Server) -> tuple[bool, int, int, int | None]:
    """(checked, rise, fall, check port) from the server's config, whichever way the
    model carries them (flags on the server, or a settings object under ``check``)."""
    check = getattr(server, "check", None)
    if not check:
        return False, 2, 3, None
    holder = check if hasattr(check, "rise") else server
    rise = int(getattr(holder, "rise", 2) or 2)
    fall = int(getattr(holder, "fall", 3) or 3)
    port = getattr(holder, "port", None) if holder is check else getattr(server, "check_port", None)
    return True, rise, fall, port if isinstance(port, int) else None


def _server_entry(proxy: Proxy, server: Server, sid: int, now: float) -> ServerEntry:
    rt = ServerRuntime(config=server, backend=proxy.name)
    disabled = server.disabled
    has_check, rise, fall, check_port = _check_params(server)
    return ServerEntry(
        runtime=rt,
        sid=sid,
        iweight=server.weight,
        host=server.host,
        port=server.port,
        admin_flags=(ADMF_FMAINT | ADMF_CMAINT) if disabled else 0,
        last_change=now,
        check_health=0 if disabled else rise,
        check_state=CHK_ST_PAUSED if disabled else 0,
        check=CheckStats(rise=rise, fall=fall, health=rise) if has_check else None,
        check_port=check_port,
    )
