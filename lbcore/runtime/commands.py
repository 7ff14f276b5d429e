"""The runtime API's commands: HAProxy 2.6's syntax, answers and error texts.

Theory of operation: ``COMMANDS`` is the table (keyword words, usage text, level,
handler), as HAProxy's ``cli_kws`` lists are; ``execute`` finds the first entry
whose words prefix the arguments (HAProxy's ``cli_find_kw``), checks the level and
calls the handler, which returns the answer text. Anything not in the table gets
HAProxy's usage message with its fuzzy suggestions (``usage``). The CLI session
(``lbcore.runtime.cli``) adds the blank line that ends each answer.

The texts are HAProxy's (management guide section 9.3 and its src/cli.c,
src/server.c, src/stats.c), pinned by the golden transcripts recorded from a real
HAProxy 2.6 in tests/data/runtime/transcript.json.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace

from lbcore.runtime.state import (
    CHK_ST_PAUSED,
    STATIC_ALGORITHMS,
    BackendEntry,
    Level,
    RuntimeState,
    ServerEntry,
    SessionInfo,
)
from lbcore.server import AdminState, OpState
from lbcore.stats import Row, backend_row, frontend_row, render_csv, render_json, server_row


@dataclass(slots=True)
class Context:
    """What a handler may look at: the store, the session's level, the time."""

    state: RuntimeState
    level: Level
    now: float
    session: SessionInfo | None = None


Handler = Callable[[Context, list[str]], str]


@dataclass(frozen=True, slots=True)
class Command:
    words: tuple[str, ...]
    syntax: str  # HAProxy's usage text, left of the colon
    desc: str
    level: Level
    handler: Handler

    @property
    def usage(self) -> str:
        return f"{self.syntax:<40}: {self.desc}"


class CliError(Exception):
    """An answer that ends the command early ("No such server.\\n", ...)."""

    def __init__(self, text: str) -> None:
        super().__init__(text)
        self.text = text


PERMISSION_DENIED = "Permission denied\n"
HELP_TRAILER = (
    "  help [<command>]                        : list matching or all commands\n"
    "  prompt                                  : toggle interactive mode with prompt\n"
    "  quit                                    : disconnect\n"
)

# --- lookups shared by the server commands ------------------------------------------


def find_server(ctx: Context, arg: str) -> tuple[BackendEntry, ServerEntry]:
    """``<backend>/<server>`` as HAProxy's cli_find_server resolves it."""
    if "/" not in arg:
        raise CliError("Require 'backend/server'.\n")
    bname, sname = arg.split("/", 1)
    backend = ctx.state.backend(bname)
    if backend is None:
        raise CliError("No such backend.\n")
    server = backend.server(sname)
    if server is None:
        raise CliError("No such server.\n")
    return backend, server


def _arg(args: list[str], i: int) -> str:
    return args[i] if i < len(args) else ""


# --- show ---------------------------------------------------------------------------


def show_version(ctx: Context, args: list[str]) -> str:
    return ctx.state.info.version + "\n"


def show_backend(ctx: Context, args: list[str]) -> str:
    return "# name\n" + "".join(f"{name}\n" for name in ctx.state.backends)


def show_cli_level(ctx: Context, args: list[str]) -> str:
    return ctx.level.name.lower() + "\n"


def show_info(ctx: Context, args: list[str]) -> str:
    """HAProxy's ``show info`` fields in its order; lbcore names itself first."""
    st, now = ctx.state, ctx.now
    info = st.info
    up = max(0, int(now - info.start_time))
    fe = [st.counters_for(f.name, "FRONTEND") for f in st.frontends]
    cur = sum(c.scur for c in fe)
    maxconn = st.config.global_.maxconn
    listeners = sum(len(f.proxy.binds) for f in st.frontends) + len(st.config.global_.stats_sockets)
    fields: list[tuple[str, object]] = [
        ("Name", info.name),
        ("Version", info.version),
        ("Release_date", info.release_date),
        ("Nbthread", info.nbthread),
        ("Nbproc", 1),
        ("Process_num", 1),
        ("Pid", info.pid),
        ("Uptime", f"{up // 86400}d {up // 3600 % 24}h{up // 60 % 60:02d}m{up % 60:02d}s"),
        ("Uptime_sec", up),
        ("Memmax_MB", 0),
        ("PoolAlloc_MB", 0),
        ("PoolUsed_MB", 0),
        ("PoolFailed", 0),
        ("Ulimit-n", info.ulimit_n),
        ("Maxsock", info.maxsock),
        ("Maxconn", maxconn),
        ("Hard_maxconn", maxconn),
        ("CurrConns", cur),
        ("CumConns", sum(c.conn_tot for c in fe)),
        ("CumReq", sum(c.req_tot for c in fe)),
        ("MaxSslConns", 0),
        ("CurrSslConns", 0),
        ("CumSslConns", 0),
        ("Maxpipes", 0),
        ("PipesUsed", 0),
        ("PipesFree", 0),
        ("ConnRate", sum(c.conn_rate for c in fe)),
        ("ConnRateLimit", 0),
        ("MaxConnRate", max((c.conn_rate_max for c in fe), default=0)),
        ("SessRate", sum(c.rate for c in fe)),
        ("SessRateLimit", 0),
        ("MaxSessRate", max((c.rate_max for c in fe), default=0)),
    ]
    fields += [
        (name, 0)
        for name in [
            "SslRate",
            "SslRateLimit",
            "MaxSslRate",
            "SslFrontendKeyRate",
            "SslFrontendMaxKeyRate",
            "SslFrontendSessionReuse_pct",
            "SslBackendKeyRate",
            "SslBackendMaxKeyRate",
            "SslCacheLookups",
            "SslCacheMisses",
            "CompressBpsIn",
            "CompressBpsOut",
            "CompressBpsRateLim",
        ]
    ]
    fields += [
        ("Tasks", 0),
        ("Run_queue", 0),
        ("Idle_pct", 100),
        ("node", info.node),
        ("Stopping", 0),
        ("Jobs", cur + listeners),
        ("Unstoppable Jobs", 0),
        ("Listeners", listeners),
        ("ActivePeers", 0),
        ("ConnectedPeers", 0),
        ("DroppedLogs", 0),
        ("BusyPolling", 0),
        ("FailedResolutions", 0),
        ("TotalBytesOut", sum(c.bout for c in fe)),
        ("TotalSplicdedBytesOut", 0),  # sic: HAProxy's spelling
        ("BytesOutRate", 0),
        ("DebugCommandsIssued", 0),
        ("CumRecvLogs", 0),
        ("Build info", info.version),
        ("Memmax_bytes", 0),
        ("PoolAlloc_bytes", 0),
        ("PoolUsed_bytes", 0),
        ("Start_time_sec", int(info.start_time)),
        ("Tainted", 0),
    ]
    return "".join(f"{k}: {v}\n" for k, v in fields)


def _atoi(text: str) -> int:
    """C's atoi: leading sign and digits, anything else stops it (0 if none)."""
    sign, i = 1, 0
    if text[:1] in "+-" and text:
        sign, i = (-1 if text[0] == "-" else 1), 1
    digits = ""
    while i < len(text) and text[i].isdigit():
        digits += text[i]
        i += 1
    return sign * int(digits) if digits else 0


def stat_rows(
    state: RuntimeState,
    now: float,
    iid: int = -1,
    types: int = -1,
    sid: int = -1,
    up_only: bool = False,
    no_maint: bool = False,
) -> Iterator[Row]:
    """The rows of ``show stat``: per proxy FRONTEND, servers, BACKEND (in that order)."""
    fronts = {f.name: f for f in state.frontends}
    for name in state.order:
        piid = state.iids[name]
        if iid != -1 and piid != iid:
            continue
        fe = fronts.get(name)
        be = state.backends.get(name)
        proxy = fe.proxy if fe else be.proxy if be else None
        if proxy is None:
            continue
        mode = state.mode_of(proxy)
        if fe is not None and types & 1:
            yield frontend_row(name, piid, mode, fe.maxconn, state.counters_for(name, "FRONTEND"))
        if be is None:
            continue
        if types & 4:
            for srv in be.servers:
                if sid != -1 and srv.sid != sid:
                    continue
                if no_maint and srv.status == "MAINT":
                    continue
                if (
                    up_only
                    and srv.status not in ("UP", "no check")
                    and not srv.status.startswith("UP ")
                ):
                    continue
                yield _server_row(state, be, srv, mode, now)
        if types & 2:
            weight, act, bck = be.totals()
            yield backend_row(
                name,
                piid,
                mode,
                fullconn=be.fullconn,
                status="UP" if act + bck else "DOWN",
                weight=weight,
                uweight=weight,
                act=act,
                bck=bck,
                lastchg=be.last_change,
                downtime=be.downtime(now),
                chkdown=be.downs,
                algo=be.proxy.balance.algorithm,
                now=now,
                c=state.counters_for(name, "BACKEND"),
            )


def _server_row(
    state: RuntimeState, be: BackendEntry, srv: ServerEntry, mode: str, now: float
) -> Row:
    check = srv.check
    if check is not None and check.health != srv.check_health:
        check = replace(check, health=srv.check_health)
    # HAProxy shows a check's columns only while it runs; chkfail/chkdown while it is
    # enabled, even paused (a server in maintenance).
    counts = check if srv.checked else None
    if srv.check_state & CHK_ST_PAUSED or not srv.checked:
        check = None
    row = server_row(
        be.name,
        srv.name,
        be.iid,
        srv.sid,
        mode,
        status=srv.status,
        weight=srv.uweight,
        uweight=srv.uweight,
        backup=srv.runtime.backup,
        maxconn=srv.runtime.config.maxconn,
        addr=_addr(srv.host, srv.port),
        lastchg=srv.last_change,
        now=now,
        check=check,
        cookie=None,
        c=state.counters_for(be.name, srv.name),
    )
    if counts is not None and check is None:
        row.update(chkfail=counts.failed, chkdown=counts.downs)
    return row


def _addr(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def show_stat(ctx: Context, args: list[str]) -> str:
    """``show stat [json|up|no-maint]*`` or ``show stat {proxy|iid} {type} {sid}``."""
    iid, types, sid = -1, -1, -1
    opts = args[2:]
    if len(args) >= 5 and args[2] and args[3] and args[4]:
        be = ctx.state.iids.get(args[2])
        iid = be if be is not None else _atoi(args[2])
        if iid == 0:
            raise CliError("No such proxy.\n")
        types, sid = _atoi(args[3]), _atoi(args[4])
        opts = args[5:]
    rows = stat_rows(
        ctx.state, ctx.now, iid, types, sid, up_only="up" in opts, no_maint="no-maint" in opts
    )
    if ctx.level < Level.OPERATOR:
        # HAProxy shows addresses, cookies and algorithms ("legends") from operator up.
        rows = ({**row, "addr": None, "cookie": None, "algo": None} for row in rows)
    if "json" in opts:
        return render_json(rows)
    return render_csv(rows)


# srv_check_status numbers (HAProxy's enum healthcheck_status) for "show servers state".
# HAProxy 2.6 has HCHK_STATUS_CHECKED at 3 (checked against its output: L4OK is 6,
# L4CON 8, L7OK 15, L7STS 17).
_HCHK = {
    "UNK": 0, "INI": 1, "START": 2, "CHECKED": 3, "HANA": 4, "SOCKERR": 5, "L4OK": 6,
    "L4TOUT": 7, "L4CON": 8, "L6OK": 9, "L6TOUT": 10, "L6RSP": 11, "L7TOUT": 12,
    "L7RSP": 13, "L57DATA": 14, "L7OK": 15, "L7OKC": 16, "L7STS": 17, "PROCERR": 18,
    "PROCTOUT": 19, "PROCOK": 20,
}  # fmt: skip
# CHK_RES_* (srv_check_result): no verdict yet, failed, passed.
_RESULT_NONE, _RESULT_FAILED, _RESULT_PASSED = 0, 2, 3


def _check_result(status: str) -> int:
    if status in ("UNK", "INI", "START"):
        return _RESULT_NONE
    return _RESULT_PASSED if status in ("L4OK", "L6OK", "L7OK", "L7OKC") else _RESULT_FAILED


SERVERS_STATE_HEADER = (
    "# be_id be_name srv_id srv_name srv_addr srv_op_state srv_admin_state srv_uweight "
    "srv_iweight srv_time_since_last_change srv_check_status srv_check_result "
    "srv_check_health srv_check_state srv_agent_state bk_f_forced_id srv_f_forced_id "
    "srv_fqdn srv_port srvrecord srv_use_ssl srv_check_port srv_check_addr "
    "srv_agent_addr srv_agent_port\n"
)


def show_servers_state(ctx: Context, args: list[str]) -> str:
    """Version-1 format of the server-state file (management guide, 'show servers state')."""
    state = ctx.state
    if _arg(args, 3):
        one = state.backend(args[3])
        if one is None:
            raise CliError("Can't find backend.\n")
        backends = [one]
    else:
        backends = list(state.backends.values())
    out = ["1\n", SERVERS_STATE_HEADER]
    for be in backends:
        for s in be.servers:
            check_status = _HCHK.get(s.check.status, 0) if s.check else 1
            result = _check_result(s.check.status) if s.check else _RESULT_NONE
            out.append(
                f"{be.iid} {be.name} {s.sid} {s.name} {s.host} {s.op_code} {s.admin_flags} "
                f"{s.uweight} {s.iweight} {max(0, int(ctx.now - s.last_change))} "
                f"{check_status} {result} {s.check_health} {s.check_state} 0 0 0 - {s.port} "
                "- 0 0 "
                "- - 0\n"
            )
    return "".join(out)


def show_sess(ctx: Context, args: list[str]) -> str:
    """One summary line per session, with the keys HAProxy's ``show sess`` prints."""
    out = []
    for epoch, sess in enumerate(ctx.state.sessions):
        age = max(0, int(ctx.now - sess.started))
        out.append(
            f"{sess.ident:#x}: proto={sess.proto} src={sess.src} fe={sess.frontend} "
            f"be={sess.backend} srv={sess.server} ts=00 epoch={epoch:#x} age={age}s "
            "calls=1 rate=0 cpu=0 lat=0 rq[f=c08000h,i=0,an=00h,rx=,wx=,ax=] "
            "rp[f=80008000h,i=0,an=00h,rx=,wx=,ax=] scf=[8,200h,fd=-1] scb=[8,1h,fd=-1] "
            "exp= rc=0 c_exp=\n"
        )
    return "".join(out)


# --- weights ------------------------------------------------------------------------


def get_weight(ctx: Context, args: list[str]) -> str:
    _, srv = find_server(ctx, _arg(args, 2))
    return f"{srv.uweight} (initial {srv.iweight})\n"


def parse_weight(be: BackendEntry, srv: ServerEntry, text: str) -> int:
    """HAProxy's server_parse_weight_change_request, messages included (two of them
    lack the final newline in HAProxy, so their answer has no blank line)."""
    if not text:
        raise CliError("Require <weight> or <weight%>.\n")
    i = 1 if text[:1] in "+-" else 0
    while i < len(text) and text[i].isdigit():
        i += 1
    digits, rest = text[:i], text[i:]
    if not digits or digits in "+-":
        raise CliError("Empty weight string empty or preceded by garbage")
    w = int(digits)
    if rest == "%":
        if w < 0:
            raise CliError("Relative weight must be positive.\n")
        w = min(srv.iweight * min(w, 25600) // 100, 256)
    elif w < 0 or w > 256:
        raise CliError("Absolute weight can only be between 0 and 256 inclusive.\n")
    elif rest:
        raise CliError("Trailing garbage in weight string")
    if w and w != srv.iweight and be.proxy.balance.algorithm in STATIC_ALGORITHMS:
        raise CliError(
            "Backend is using a static LB algorithm and only accepts weights '0%' and '100%'.\n"
        )
    return w


def set_weight(ctx: Context, args: list[str]) -> str:
    be, srv = find_server(ctx, _arg(args, 2))
    ctx.state.set_weight(be, srv, parse_weight(be, srv, _arg(args, 3)), ctx.now)
    return ""


# --- server state -------------------------------------------------------------------

SET_SERVER_USAGE = (
    "usage: set server <backend>/<server> addr | agent | agent-addr | agent-port | "
    "agent-send | check-addr | check-port | fqdn | health | ssl | state | weight\n"
)
_STATES = {"ready": AdminState.READY, "drain": AdminState.DRAIN, "maint": AdminState.MAINT}


def set_server(ctx: Context, args: list[str]) -> str:
    be, srv = find_server(ctx, _arg(args, 2))
    what = _arg(args, 3)
    if what == "state":
        new = _STATES.get(_arg(args, 4))
        if new is None:
            raise CliError("'set server <srv> state' expects 'ready', 'drain' and 'maint'.\n")
        ctx.state.set_admin(be, srv, new, ctx.now)
        return ""
    if what == "weight":
        ctx.state.set_weight(be, srv, parse_weight(be, srv, _arg(args, 4)), ctx.now)
        return ""
    if what == "addr":
        return set_addr(ctx, be, srv, args[4:])
    if what == "health":
        return _set_health(ctx, be, srv, _arg(args, 4))
    raise CliError(SET_SERVER_USAGE)


def set_addr(ctx: Context, be: BackendEntry, srv: ServerEntry, args: list[str]) -> str:
    """``set server B/S addr IP [port P]`` with HAProxy's change report."""
    if not args or not args[0]:
        raise CliError("set server <b>/<s> addr requires an address and optionally a port.\n")
    host = args[0]
    try:
        ipaddress.ip_address(host)
    except ValueError:
        raise CliError(f"Invalid addr '{host}' by 'stats socket command'\n") from None
    port = srv.port
    if len(args) >= 2 and args[1] == "port":
        text = _arg(args, 2)
        if not text.isdigit() or not 0 < int(text) < 65536:
            raise CliError(f"Invalid port '{text}' by 'stats socket command'\n")
        port = int(text)
    parts = []
    if host != srv.host:
        parts.append(f"IP changed from '{srv.host}' to '{host}'")
    else:
        parts.append("no need to change the addr")
    if len(args) >= 2 and args[1] == "port":
        if port != srv.port:
            parts.append(f"port changed from '{srv.port}' to '{port}'")
        else:
            parts.append("no need to change the port")
    ctx.state.set_addr(be, srv, host, port)
    return ", ".join(parts) + " by 'stats socket command'\n"


_HEALTH = {"up": OpState.UP, "stopping": OpState.STOPPING, "down": OpState.DOWN}


def _set_health(ctx: Context, be: BackendEntry, srv: ServerEntry, word: str) -> str:
    state = _HEALTH.get(word)
    if state is None:
        raise CliError("'set server <srv> health' expects 'up', 'stopping', or 'down'.\n")
    ctx.state.force_health(be, srv, state, ctx.now)
    return ""


def disable_server(ctx: Context, args: list[str]) -> str:
    be, srv = find_server(ctx, _arg(args, 2))
    ctx.state.set_admin(be, srv, AdminState.MAINT, ctx.now)
    return ""


def enable_server(ctx: Context, args: list[str]) -> str:
    be, srv = find_server(ctx, _arg(args, 2))
    ctx.state.set_admin(be, srv, AdminState.READY, ctx.now)
    return ""


def disable_health(ctx: Context, args: list[str]) -> str:
    be, srv = find_server(ctx, _arg(args, 2))
    ctx.state.set_health(be, srv, False)
    return ""


def enable_health(ctx: Context, args: list[str]) -> str:
    be, srv = find_server(ctx, _arg(args, 2))
    if srv.check is None:
        raise CliError("Health check was not configured on this server, cannot enable.\n")
    ctx.state.set_health(be, srv, True)
    return ""


def disable_agent(ctx: Context, args: list[str]) -> str:
    find_server(ctx, _arg(args, 2))  # lbcore has no agent checks: nothing to stop
    return ""


def enable_agent(ctx: Context, args: list[str]) -> str:
    find_server(ctx, _arg(args, 2))
    raise CliError("Agent was not configured on this server, cannot enable.\n")


def shutdown_sessions_server(ctx: Context, args: list[str]) -> str:
    be, srv = find_server(ctx, _arg(args, 3))
    ctx.state.shutdown_sessions(be, srv)
    return ""


# --- session level ------------------------------------------------------------------


def lower_to_user(ctx: Context, args: list[str]) -> str:
    ctx.level = Level.USER
    return ""


def lower_to_operator(ctx: Context, args: list[str]) -> str:
    if ctx.level < Level.OPERATOR:
        raise CliError(PERMISSION_DENIED)
    ctx.level = Level.OPERATOR
    return ""


U, OP, A = Level.USER, Level.OPERATOR, Level.ADMIN

COMMANDS: tuple[Command, ...] = (
    Command(("disable", "agent"), "disable agent", "disable agent checks", A, disable_agent),
    Command(("enable", "agent"), "enable agent", "enable agent checks", A, enable_agent),
    Command(("disable", "health"), "disable health", "disable health checks", A, disable_health),
    Command(
        ("disable", "server"),
        "disable server (DEPRECATED)",
        "disable a server for maintenance (use 'set server' instead)",
        A,
        disable_server,
    ),
    Command(("enable", "health"), "enable health", "enable health checks", A, enable_health),
    Command(
        ("enable", "server"),
        "enable server  (DEPRECATED)",
        "enable a disabled server (use 'set server' instead)",
        A,
        enable_server,
    ),
    Command(
        ("get", "weight"),
        "get weight <bk>/<srv>",
        "report a server's current weight",
        U,
        get_weight,
    ),
    Command(
        ("operator",),
        "operator",
        "lower the level of the current CLI session to operator",
        U,
        lower_to_operator,
    ),
    Command(
        ("set", "server"),
        "set server <bk>/<srv> [opts]",
        "change a server's state, weight, address or ssl",
        A,
        set_server,
    ),
    Command(
        ("set", "weight"),
        "set weight <bk>/<srv>  (DEPRECATED)",
        "change a server's weight (use 'set server' instead)",
        A,
        set_weight,
    ),
    Command(
        ("show", "backend"),
        "show backend",
        "list backends in the current running config",
        U,
        show_backend,
    ),
    Command(
        ("show", "cli", "level"),
        "show cli level",
        "display the level of the current CLI session",
        U,
        show_cli_level,
    ),
    Command(
        ("show", "info"),
        "show info [desc|json|typed|float]*",
        "report information about the running process",
        U,
        show_info,
    ),
    Command(
        ("show", "servers", "state"),
        "show servers state [<backend>]",
        "dump volatile server information (all or for a single backend)",
        U,
        show_servers_state,
    ),
    Command(
        ("show", "sess"),
        "show sess [id]",
        "report the list of current sessions or dump this exact session",
        OP,
        show_sess,
    ),
    Command(
        ("show", "stat"),
        "show stat [desc|json|no-maint|typed|up]*",
        "report counters for each proxy and server",
        U,
        show_stat,
    ),
    Command(
        ("show", "version"),
        "show version",
        "show version of the current process",
        U,
        show_version,
    ),
    Command(
        ("shutdown", "sessions", "server"),
        "shutdown sessions server <bk>/<srv>",
        "kill sessions on a server",
        A,
        shutdown_sessions_server,
    ),
    Command(
        ("user",), "user", "lower the level of the current CLI session to user", U, lower_to_user
    ),
)


def find_command(args: list[str], table: tuple[Command, ...] = COMMANDS) -> Command | None:
    for cmd in table:
        if len(args) >= len(cmd.words) and tuple(args[: len(cmd.words)]) == cmd.words:
            return cmd
    return None


def execute(ctx: Context, args: list[str]) -> str:
    """Run one command (already split into words); return its answer text."""
    if args and args[0] == "help":
        return usage(args)
    cmd = find_command(args)
    if cmd is None:
        return usage(args)
    if ctx.level < cmd.level:
        return PERMISSION_DENIED
    try:
        return cmd.handler(ctx, args)
    except CliError as err:
        return err.text


# --- usage and fuzzy suggestions (HAProxy's cli_gen_usage_msg) ----------------------

_MAX_MATCHES = 5
_PREFIX_KW_NB = 5


def _fingerprint(words: list[str] | tuple[str, ...]) -> dict[int, int]:
    """Character-transition counts of the words (HAProxy's word fingerprints, a
    1024-cell array kept sparse here): positions 1..26 letters, 27 digits, 28
    anything else and word boundaries; cell ``to`` marks presence, ``32*from+to``
    counts transitions."""
    fp: dict[int, int] = {}
    for word in words:
        frm = 28
        for ch in word.lower():
            if "a" <= ch <= "z":
                to = ord(ch) - ord("a") + 1
            elif "0" <= ch <= "9":
                to = 27
            else:
                to = 28
            fp[to] = 1
            fp[32 * frm + to] = fp.get(32 * frm + to, 0) + 1
            frm = to
        fp[32 * frm + 28] = fp.get(32 * frm + 28, 0) + 1
    return fp


def _distance(a: dict[int, int], b: dict[int, int]) -> int:
    return sum(abs(a.get(k, 0) - b.get(k, 0)) for k in a.keys() | b.keys())


def usage(args: list[str], table: tuple[Command, ...] = COMMANDS) -> str:
    """The help text, or the "Unknown command" answer with the closest commands."""
    ishelp = bool(args) and args[0] == "help"
    if ishelp:
        args = args[1:]
    length = 0
    for cmd in table:
        for idx, word in enumerate(cmd.words[:_PREFIX_KW_NB]):
            if idx >= len(args) or not args[idx] or word != args[idx]:
                break
            length = max(length, idx + 1)
    if ishelp:
        head = "The following commands are valid at this level:\n"
    elif not length and (not args or not args[0]):
        head = "Unknown command. Please enter one of the following commands only:\n"
    else:
        head = "Unknown command, but maybe one of the following ones is a better match:\n"

    def prefix_matches(cmd: Command) -> bool:
        return all(
            idx < len(cmd.words) and idx < len(args) and args[idx] and cmd.words[idx] == args[idx]
            for idx in range(length)
        )

    entries: list[Command] = []
    if length < len(args) and args[length]:
        words: list[str] = []
        for a in args[length:_PREFIX_KW_NB]:
            if not a:
                break
            words.append(a)
        word_fp = _fingerprint(words)
        matches: list[tuple[int, Command]] = []
        for cmd in table:
            if not prefix_matches(cmd):
                continue
            kw_words = cmd.words[length:_PREFIX_KW_NB]
            totlen = sum(len(w) for w in words) + sum(len(w) for w in kw_words)
            dist = _distance(word_fp, _fingerprint(kw_words))
            if dist < 5 * totlen // 2:
                matches.append((dist, cmd))
        matches.sort(key=lambda m: m[0])  # stable: ties keep table order, as HAProxy's
        matches = matches[:_MAX_MATCHES]
        if matches:
            best = matches[0][0]
            entries = [cmd for dist, cmd in matches if dist <= 5 * best // 2]
    if not entries:
        entries = [cmd for cmd in table if prefix_matches(cmd)]
    entries.sort(key=lambda c: c.words)
    return head + "".join(f"  {c.usage}\n" for c in entries) + HELP_TRAILER
