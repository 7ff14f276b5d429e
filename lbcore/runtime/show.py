"""The ``show`` commands: HAProxy 2.6's dumps (info, stat, servers state, sess...).

Each renders from the state store and the stats model; formats are pinned by the
golden transcripts recorded from a real HAProxy (tests/data/runtime/).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import replace

from lbcore.runtime.context import CliError, Context, arg
from lbcore.runtime.state import CHK_ST_PAUSED, BackendEntry, Level, RuntimeState, ServerEntry
from lbcore.stats import (
    Row,
    backend_row,
    frontend_row,
    render_csv,
    render_json,
    render_typed,
    server_row,
)


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
    return _render_info(fields, args[2:])


#: field -> (position, tags, type) as HAProxy 2.6's "show info typed" prints them.
_INFO_TYPES: dict[str, tuple[int, str, str]] = {
    "Name": (0, "POS", "str"),
    "Version": (1, "POS", "str"),
    "Release_date": (2, "POS", "str"),
    "Nbthread": (3, "CGS", "u32"),
    "Nbproc": (4, "CGS", "u32"),
    "Process_num": (5, "KGP", "u32"),
    "Pid": (6, "SGP", "u32"),
    "Uptime": (7, "MDP", "str"),
    "Uptime_sec": (8, "MDP", "u32"),
    "Memmax_MB": (9, "CLP", "u32"),
    "PoolAlloc_MB": (10, "MGP", "u32"),
    "PoolUsed_MB": (11, "MGP", "u32"),
    "PoolFailed": (12, "MCP", "u32"),
    "Ulimit-n": (13, "CLP", "u32"),
    "Maxsock": (14, "CLP", "u32"),
    "Maxconn": (15, "CLP", "u32"),
    "Hard_maxconn": (16, "CLP", "u32"),
    "CurrConns": (17, "MGP", "u32"),
    "CumConns": (18, "MCP", "u32"),
    "CumReq": (19, "MCP", "u32"),
    "MaxSslConns": (20, "MMP", "u32"),
    "CurrSslConns": (21, "MGP", "u32"),
    "CumSslConns": (22, "MCP", "u32"),
    "Maxpipes": (23, "CLP", "u32"),
    "PipesUsed": (24, "MGP", "u32"),
    "PipesFree": (25, "MGP", "u32"),
    "ConnRate": (26, "MRP", "u32"),
    "ConnRateLimit": (27, "CLP", "u32"),
    "MaxConnRate": (28, "MMP", "u32"),
    "SessRate": (29, "MRP", "u32"),
    "SessRateLimit": (30, "CLP", "u32"),
    "MaxSessRate": (31, "MRP", "u32"),
    "SslRate": (32, "MRP", "u32"),
    "SslRateLimit": (33, "CLP", "u32"),
    "MaxSslRate": (34, "MMP", "u32"),
    "SslFrontendKeyRate": (35, "MGP", "u32"),
    "SslFrontendMaxKeyRate": (36, "MMP", "u32"),
    "SslFrontendSessionReuse_pct": (37, "MGP", "u32"),
    "SslBackendKeyRate": (38, "MRP", "u32"),
    "SslBackendMaxKeyRate": (39, "MMP", "u32"),
    "SslCacheLookups": (40, "MCP", "u32"),
    "SslCacheMisses": (41, "MCP", "u32"),
    "CompressBpsIn": (42, "MRP", "u32"),
    "CompressBpsOut": (43, "MRP", "u32"),
    "CompressBpsRateLim": (44, "CLP", "u32"),
    "Tasks": (47, "MGP", "u32"),
    "Run_queue": (48, "MGP", "u32"),
    "Idle_pct": (49, "MaP", "u32"),
    "node": (50, "COS", "str"),
    "Stopping": (52, "MGP", "u32"),
    "Jobs": (53, "MGP", "u32"),
    "Unstoppable Jobs": (54, "MGP", "u32"),
    "Listeners": (55, "MGP", "u32"),
    "ActivePeers": (56, "MGP", "u32"),
    "ConnectedPeers": (57, "MGP", "u32"),
    "DroppedLogs": (58, "MGP", "u32"),
    "BusyPolling": (59, "MGP", "u32"),
    "FailedResolutions": (60, "MGP", "u32"),
    "TotalBytesOut": (61, "MGP", "u64"),
    "TotalSplicdedBytesOut": (62, "MGP", "u64"),
    "BytesOutRate": (63, "MRP", "u64"),
    "DebugCommandsIssued": (64, "MGP", "u32"),
    "CumRecvLogs": (65, "MCP", "u32"),
    "Build info": (66, "POS", "str"),
    "Memmax_bytes": (67, "CLP", "u32"),
    "PoolAlloc_bytes": (68, "MGP", "u64"),
    "PoolUsed_bytes": (69, "MGP", "u64"),
    "Start_time_sec": (70, "MDP", "u32"),
    "Tainted": (71, "SGP", "str"),
}  # fmt: skip
_ORIGIN = {"M": "Metric", "S": "Status", "K": "Key", "C": "Config", "P": "Product"}
_NATURE = {
    "A": "Age", "a": "Avg", "C": "Counter", "D": "Duration", "G": "Gauge", "L": "Limit",
    "M": "Max", "m": "Min", "N": "Name", "O": "Output", "R": "Rate", "T": "Time",
}  # fmt: skip
_SCOPE = {"C": "Cluster", "P": "Process", "S": "Service", "s": "System"}


def _render_info(fields: list[tuple[str, object]], opts: list[str]) -> str:
    """Plain ``Name: value`` lines, or HAProxy's ``typed`` / ``json`` forms."""
    if "typed" in opts:
        out = []
        for name, value in fields:
            pos, tags, typ = _INFO_TYPES[name]
            out.append(f"{pos}.{name}.1:{tags}:{typ}:{value}\n")
        return "".join(out)
    if "json" in opts:
        objs = []
        for name, value in fields:
            pos, tags, typ = _INFO_TYPES[name]
            objs.append(
                {
                    "field": {"pos": pos, "name": name},
                    "processNum": 1,
                    "tags": {
                        "origin": _ORIGIN[tags[0]],
                        "nature": _NATURE[tags[1]],
                        "scope": _SCOPE[tags[2]],
                    },
                    "value": {
                        "type": typ,
                        "value": str(value) if typ == "str" else int(str(value)),
                    },
                }
            )
        return json.dumps(objs, separators=(",", ":")) + "\n"
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
                status=_backend_status(be, act + bck > 0, up_only or no_maint),
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


def _backend_status(be: BackendEntry, up: bool, hiding: bool) -> str:
    """UP/DOWN; with ``up`` or ``no-maint`` HAProxy adds "(running/all servers)"."""
    status = "UP" if up else "DOWN"
    if hiding:
        running = sum(1 for s in be.servers if s.op_code)
        status += f" ({running}/{len(be.servers)})"
    return status


def _server_row(
    state: RuntimeState, be: BackendEntry, srv: ServerEntry, mode: str, now: float
) -> Row:
    # HAProxy fills the check columns only while checks are enabled, and leaves those
    # of the check itself empty while it is paused (a server in maintenance).
    check = srv.check if srv.health_enabled else None
    if check is not None:
        check = replace(
            check,
            health=srv.check_health,
            failed=srv.chk_failed,
            downs=srv.chk_downs,
            downtime=srv.downtime(now),
        )
    paused = check if check is not None and srv.check_flags & CHK_ST_PAUSED else None
    if paused is not None:
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
    if paused is not None:
        row.update(chkfail=paused.failed, chkdown=paused.downs, downtime=paused.downtime)
    return row


def _addr(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def show_stat(ctx: Context, args: list[str]) -> str:
    """``show stat [json|up|no-maint]*`` or ``show stat {proxy|iid} {type} {sid}``."""
    iid, types, sid = -1, -1, -1
    opts = args[2:]
    if len(args) >= 5 and args[2] and args[3] and args[4]:
        be = ctx.state.proxy_id(args[2])
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
    if "typed" in opts:
        return render_typed(rows)
    return render_csv(rows)


# srv_check_status numbers: HAProxy 2.6's enum healthcheck_status (observed: L4OK=6,
# L4CON=8 in "show servers state"), and srv_check_result: CHK_RES_*.
_HCHK = {
    "UNK": 0, "INI": 1, "START": 2, "HANA": 4, "SOCKERR": 5, "L4OK": 6, "L4TOUT": 7,
    "L4CON": 8, "L6OK": 9, "L6TOUT": 10, "L6RSP": 11, "L7TOUT": 12, "L7RSP": 13,
    "L7OK": 15, "L7OKC": 16, "L7STS": 17, "PROCERR": 18, "PROCTOUT": 19, "PROCOK": 20,
}  # fmt: skip
_CHK_RES_PASSED, _CHK_RES_FAILED, _CHK_RES_CONDPASS = 3, 2, 4


def _check_codes(s: ServerEntry) -> tuple[int, int]:
    """(srv_check_status, srv_check_result) for "show servers state"."""
    if s.check is None:
        return 1, 0
    status = s.check.status
    if status in ("INI", "UNK", "START"):
        return _HCHK.get(status, 0), 0
    if status == "L7OKC":
        return _HCHK[status], _CHK_RES_CONDPASS
    ok = status in ("L4OK", "L6OK", "L7OK", "PROCOK")
    return _HCHK.get(status, 0), _CHK_RES_PASSED if ok else _CHK_RES_FAILED


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
    if arg(args, 3):
        one = state.backend(args[3])
        if one is None:
            raise CliError("Can't find backend.\n")
        backends = [one]
    else:
        backends = list(state.backends.values())
    out = ["1\n", SERVERS_STATE_HEADER]
    for be in backends:
        for s in be.servers:
            check_status, check_result = _check_codes(s)
            cport = s.check_port or 0
            out.append(
                f"{be.iid} {be.name} {s.sid} {s.name} {s.host} {s.op_code} {s.admin_flags} "
                f"{s.uweight} {s.iweight} {max(0, int(ctx.now - s.last_change))} "
                f"{check_status} {check_result} {s.check_health} {s.check_flags} 0 0 0 - "
                f"{s.port} - 0 {cport} - - {cport}\n"
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
