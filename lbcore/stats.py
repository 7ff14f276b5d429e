"""One stats model: counters named as HAProxy's CSV columns, summed over workers.

Theory of operation: every worker keeps one ``Counters`` per frontend, backend and
server (keyed ``(pxname, svname)`` with ``svname`` = ``FRONTEND``/``BACKEND``/server
name, as in the CSV) and sends snapshots of them to the master over its channel
(``Counters.to_dict`` / ``from_dict``). The master sums the snapshots of all workers
with ``merge`` so that ``show stat`` reports the whole process, not one worker.

Rows are built by ``frontend_row``/``backend_row``/``server_row`` from the counters
plus what the runtime state knows (status, weights, ids, addresses); a row is a
mapping column -> value. Which columns carry a value for which kind of row (and for
which proxy mode) is the table ``_COLUMNS``, read off the ``show stat`` of a real
HAProxy 2.6 (management guide section 9.1 lists them; the golden transcript in
tests/data/runtime/ pins them). Renderers: ``render_csv`` (``show stat``) and
``render_json``; the HTML page will be one more renderer over the same rows.

No I/O and no clock here: ages (``lastchg``, ``lastsess``) are computed from a
``now`` argument.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass

# (column, where it has a value). Letters: F frontend, B backend, S server; upper
# case = in both modes, lower case = in http mode only. The order is HAProxy 2.6's
# "show stat" header, up to and including its per-module columns after "-".
_COLUMNS: tuple[tuple[str, str], ...] = (
    ("pxname", "FBS"),
    ("svname", "FBS"),
    ("qcur", "BS"),
    ("qmax", "BS"),
    ("scur", "FBS"),
    ("smax", "FBS"),
    ("slim", "FBS"),
    ("stot", "FBS"),
    ("bin", "FBS"),
    ("bout", "FBS"),
    ("dreq", "FB"),
    ("dresp", "FBS"),
    ("ereq", "F"),
    ("econ", "BS"),
    ("eresp", "BS"),
    ("wretr", "BS"),
    ("wredis", "BS"),
    ("status", "FBS"),
    ("weight", "BS"),
    ("act", "BS"),
    ("bck", "BS"),
    ("chkfail", "S"),
    ("chkdown", "BS"),
    ("lastchg", "BS"),
    ("downtime", "BS"),
    ("qlimit", "S"),
    ("pid", "FBS"),
    ("iid", "FBS"),
    ("sid", "FBS"),
    ("throttle", "S"),
    ("lbtot", "BS"),
    ("tracked", "S"),
    ("type", "FBS"),
    ("rate", "FBS"),
    ("rate_lim", "F"),
    ("rate_max", "FBS"),
    ("check_status", "S"),
    ("check_code", "S"),
    ("check_duration", "S"),
    ("hrsp_1xx", "fbs"),
    ("hrsp_2xx", "fbs"),
    ("hrsp_3xx", "fbs"),
    ("hrsp_4xx", "fbs"),
    ("hrsp_5xx", "fbs"),
    ("hrsp_other", "fbs"),
    ("hanafail", "S"),
    ("req_rate", "F"),
    ("req_rate_max", "F"),
    ("req_tot", "Fbs"),
    ("cli_abrt", "BS"),
    ("srv_abrt", "BS"),
    ("comp_in", "FB"),
    ("comp_out", "FB"),
    ("comp_byp", "FB"),
    ("comp_rsp", "FB"),
    ("lastsess", "BS"),
    ("last_chk", "S"),
    ("last_agt", "S"),
    ("qtime", "BS"),
    ("ctime", "BS"),
    ("rtime", "BS"),
    ("ttime", "BS"),
    ("agent_status", "S"),
    ("agent_code", "S"),
    ("agent_duration", "S"),
    ("check_desc", "S"),
    ("agent_desc", "S"),
    ("check_rise", "S"),
    ("check_fall", "S"),
    ("check_health", "S"),
    ("agent_rise", "S"),
    ("agent_fall", "S"),
    ("agent_health", "S"),
    ("addr", "S"),
    ("cookie", "BS"),
    ("mode", "FBS"),
    ("algo", "B"),
    ("conn_rate", "F"),
    ("conn_rate_max", "F"),
    ("conn_tot", "F"),
    ("intercepted", "f"),
    ("dcon", "F"),
    ("dses", "F"),
    ("wrew", "FBS"),
    ("connect", "BS"),
    ("reuse", "BS"),
    ("cache_lookups", "fb"),
    ("cache_hits", "fb"),
    ("srv_icur", "S"),
    ("src_ilim", "S"),
    ("qtime_max", "BS"),
    ("ctime_max", "BS"),
    ("rtime_max", "BS"),
    ("ttime_max", "BS"),
    ("eint", "FBS"),
    ("idle_conn_cur", "S"),
    ("safe_conn_cur", "S"),
    ("used_conn_cur", "S"),
    ("need_conn_est", "S"),
    ("uweight", "BS"),
    ("agg_server_status", "B"),
    ("agg_server_check_status", "B"),
    ("agg_check_status", "B"),
    ("-", "FBS"),
    ("ssl_sess", "FBS"),
    ("ssl_reused_sess", "FBS"),
    ("ssl_failed_handshake", "FBS"),
    ("h2_headers_rcvd", "FB"),
    ("h2_data_rcvd", "FB"),
    ("h2_settings_rcvd", "FB"),
    ("h2_rst_stream_rcvd", "FB"),
    ("h2_goaway_rcvd", "FB"),
    ("h2_detected_conn_protocol_errors", "FB"),
    ("h2_detected_strm_protocol_errors", "FB"),
    ("h2_rst_stream_resp", "FB"),
    ("h2_goaway_resp", "FB"),
    ("h2_open_connections", "FB"),
    ("h2_backend_open_streams", "FB"),
    ("h2_total_connections", "FB"),
    ("h2_backend_total_streams", "FB"),
    ("h1_open_connections", "FB"),
    ("h1_open_streams", "FB"),
    ("h1_total_connections", "FB"),
    ("h1_total_streams", "FB"),
    ("h1_bytes_in", "FB"),
    ("h1_bytes_out", "FB"),
    ("h1_spliced_bytes_in", "FB"),
    ("h1_spliced_bytes_out", "FB"),
)

#: HAProxy 2.6's ``show stat`` columns, in order (the header line lists them).
FIELDS: tuple[str, ...] = tuple(name for name, _ in _COLUMNS)
_WHERE: dict[str, str] = dict(_COLUMNS)

#: ``type`` column values.
TYPE_FRONTEND, TYPE_BACKEND, TYPE_SERVER = 0, 1, 2

#: Aggregation classes (management guide 9.2): counters and gauges are summed
#: over workers, maxima keep the highest worker's value (a lower bound of the
#: process-wide maximum), averages are averaged.
SUMMED: tuple[str, ...] = (
    "qcur", "scur", "stot", "bin", "bout", "dreq", "dresp", "ereq", "econ", "eresp",
    "wretr", "wredis", "lbtot", "rate", "hrsp_1xx", "hrsp_2xx", "hrsp_3xx", "hrsp_4xx",
    "hrsp_5xx", "hrsp_other", "req_rate", "req_tot", "cli_abrt", "srv_abrt", "comp_in",
    "comp_out", "comp_byp", "comp_rsp", "conn_rate", "conn_tot", "intercepted", "dcon",
    "dses", "wrew", "connect", "reuse", "cache_lookups", "cache_hits", "srv_icur", "eint",
    "idle_conn_cur", "safe_conn_cur", "used_conn_cur", "need_conn_est", "ssl_sess",
    "ssl_reused_sess", "ssl_failed_handshake", "h1_open_connections", "h1_open_streams",
    "h1_total_connections", "h1_total_streams", "h1_bytes_in", "h1_bytes_out",
    "h1_spliced_bytes_in", "h1_spliced_bytes_out",
)  # fmt: skip
MAXIMA: tuple[str, ...] = (
    "qmax", "smax", "rate_max", "req_rate_max", "conn_rate_max",
    "qtime_max", "ctime_max", "rtime_max", "ttime_max",
)  # fmt: skip
AVERAGES: tuple[str, ...] = ("qtime", "ctime", "rtime", "ttime")


@dataclass(slots=True)
class Counters:
    """The traffic counters of one frontend, backend or server in one worker.

    Mutable on purpose: the worker's hot path does ``c.stot += 1``. ``last_sess`` is
    the wall-clock time of the last session (-1: never), rendered as an age.
    """

    qcur: int = 0
    scur: int = 0
    stot: int = 0
    bin: int = 0
    bout: int = 0
    dreq: int = 0
    dresp: int = 0
    ereq: int = 0
    econ: int = 0
    eresp: int = 0
    wretr: int = 0
    wredis: int = 0
    lbtot: int = 0
    rate: int = 0
    hrsp_1xx: int = 0
    hrsp_2xx: int = 0
    hrsp_3xx: int = 0
    hrsp_4xx: int = 0
    hrsp_5xx: int = 0
    hrsp_other: int = 0
    req_rate: int = 0
    req_tot: int = 0
    cli_abrt: int = 0
    srv_abrt: int = 0
    comp_in: int = 0
    comp_out: int = 0
    comp_byp: int = 0
    comp_rsp: int = 0
    conn_rate: int = 0
    conn_tot: int = 0
    intercepted: int = 0
    dcon: int = 0
    dses: int = 0
    wrew: int = 0
    connect: int = 0
    reuse: int = 0
    cache_lookups: int = 0
    cache_hits: int = 0
    srv_icur: int = 0
    eint: int = 0
    idle_conn_cur: int = 0
    safe_conn_cur: int = 0
    used_conn_cur: int = 0
    need_conn_est: int = 0
    ssl_sess: int = 0
    ssl_reused_sess: int = 0
    ssl_failed_handshake: int = 0
    h1_open_connections: int = 0
    h1_open_streams: int = 0
    h1_total_connections: int = 0
    h1_total_streams: int = 0
    h1_bytes_in: int = 0
    h1_bytes_out: int = 0
    h1_spliced_bytes_in: int = 0
    h1_spliced_bytes_out: int = 0
    qmax: int = 0
    smax: int = 0
    rate_max: int = 0
    req_rate_max: int = 0
    conn_rate_max: int = 0
    qtime_max: int = 0
    ctime_max: int = 0
    rtime_max: int = 0
    ttime_max: int = 0
    qtime: int = 0
    ctime: int = 0
    rtime: int = 0
    ttime: int = 0
    last_sess: float = -1.0

    def count_response(self, status: int) -> None:
        """Account one HTTP response in the ``hrsp_*`` class of its status."""
        klass = status // 100
        if klass == 1:
            self.hrsp_1xx += 1
        elif klass == 2:
            self.hrsp_2xx += 1
        elif klass == 3:
            self.hrsp_3xx += 1
        elif klass == 4:
            self.hrsp_4xx += 1
        elif klass == 5:
            self.hrsp_5xx += 1
        else:
            self.hrsp_other += 1

    def to_dict(self) -> dict[str, float]:
        """Only the non-default values: snapshots travel as JSON between processes."""
        out: dict[str, float] = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if value != f.default:
                out[f.name] = value
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, float]) -> Counters:
        """Inverse of ``to_dict``; unknown keys (a newer worker) are ignored."""
        c = cls()
        for name, value in data.items():
            if name in _COUNTER_NAMES:
                setattr(c, name, float(value) if name == "last_sess" else int(value))
        return c


_COUNTER_NAMES = frozenset(f.name for f in dataclasses.fields(Counters))

#: A snapshot: (pxname, svname) -> counters; svname FRONTEND, BACKEND or a server.
Key = tuple[str, str]
Snapshot = Mapping[Key, Counters]


def merge(snapshots: Iterable[Snapshot]) -> dict[Key, Counters]:
    """Sum the snapshots of several workers into one process-wide snapshot."""
    groups: dict[Key, list[Counters]] = {}
    for snap in snapshots:
        for key, counters in snap.items():
            groups.setdefault(key, []).append(counters)
    return {key: _merge_one(items) for key, items in groups.items()}


def _merge_one(items: Sequence[Counters]) -> Counters:
    out = Counters()
    for name in SUMMED:
        setattr(out, name, sum(getattr(c, name) for c in items))
    for name in MAXIMA:
        setattr(out, name, max(getattr(c, name) for c in items))
    for name in AVERAGES:
        setattr(out, name, sum(getattr(c, name) for c in items) // len(items))
    out.last_sess = max(c.last_sess for c in items)
    return out


def snapshot_to_json(snapshot: Snapshot) -> list[list[object]]:
    """A snapshot as a JSON-able list of [pxname, svname, counters-dict]."""
    return [[px, sv, c.to_dict()] for (px, sv), c in snapshot.items()]


def snapshot_from_json(data: Iterable[Sequence[object]]) -> dict[Key, Counters]:
    out: dict[Key, Counters] = {}
    for px, sv, values in data:
        if isinstance(values, Mapping):
            out[(str(px), str(sv))] = Counters.from_dict(values)
    return out


# --- rows --------------------------------------------------------------------------

Value = str | int | None
Row = dict[str, Value]


@dataclass(frozen=True, slots=True)
class CheckStats:
    """What the health checker reports about one server (absent: ``no check``)."""

    status: str = "INI"  # check_status: UNK, INI, L4OK, L4CON, L7OK, L7STS, ...
    code: int | None = None
    duration_ms: int | None = None
    desc: str = "Initializing"
    rise: int = 2
    fall: int = 3
    health: int = 0
    failed: int = 0  # chkfail
    downs: int = 0  # chkdown
    downtime: int = 0  # seconds
    last: str = ""  # last_chk


def _age(now: float, then: float) -> int:
    return -1 if then < 0 else max(0, int(now - then))


def _common(px: str, sv: str, typ: int, iid: int, sid: int, mode: str, c: Counters) -> Row:
    row: Row = {name: getattr(c, name) for name in SUMMED + MAXIMA + AVERAGES}
    row.update(pxname=px, svname=sv, type=typ, iid=iid, sid=sid, pid=1, mode=mode, **{"-": "-"})
    for name in _WHERE:
        if name.startswith("h2_"):
            row[name] = 0
    return row


def frontend_row(name: str, iid: int, mode: str, maxconn: int, c: Counters) -> Row:
    row = _common(name, "FRONTEND", TYPE_FRONTEND, iid, 0, mode, c)
    row.update(slim=maxconn, status="OPEN", rate_lim=0)
    return row


def backend_row(
    name: str,
    iid: int,
    mode: str,
    *,
    fullconn: int,
    status: str,
    weight: int,
    uweight: int,
    act: int,
    bck: int,
    lastchg: float,
    downtime: int,
    chkdown: int,
    algo: str,
    now: float,
    c: Counters,
) -> Row:
    row = _common(name, "BACKEND", TYPE_BACKEND, iid, 0, mode, c)
    row.update(
        slim=fullconn,
        status=status,
        weight=weight,
        uweight=uweight,
        act=act,
        bck=bck,
        chkdown=chkdown,
        lastchg=_age(now, lastchg),
        downtime=downtime,
        lastsess=_age(now, c.last_sess),
        algo=algo,
        agg_server_status=0,
        agg_server_check_status=0,
        agg_check_status=0,
    )
    return row


def server_row(
    backend: str,
    name: str,
    iid: int,
    sid: int,
    mode: str,
    *,
    status: str,
    weight: int,
    uweight: int,
    backup: bool,
    maxconn: int,
    addr: str,
    lastchg: float,
    now: float,
    check: CheckStats | None,
    cookie: str | None,
    c: Counters,
) -> Row:
    row = _common(backend, name, TYPE_SERVER, iid, sid, mode, c)
    row.update(
        slim=maxconn or None,
        status=status,
        weight=weight,
        uweight=uweight,
        act=0 if backup else 1,
        bck=1 if backup else 0,
        lastchg=_age(now, lastchg),
        lastsess=_age(now, c.last_sess),
        addr=addr,
        cookie=cookie,
    )
    if check is not None:
        row.update(
            chkfail=check.failed,
            chkdown=check.downs,
            downtime=check.downtime,
            check_status=check.status,
            check_code=check.code,
            check_duration=check.duration_ms,
            check_desc=check.desc,
            check_rise=check.rise,
            check_fall=check.fall,
            check_health=check.health,
            last_chk=check.last,
        )
    return row


def _visible(row: Row) -> Row:
    """Blank the columns HAProxy leaves empty for this kind of row and mode."""
    kind = "FBS"[int(row["type"] or 0)]
    http = row.get("mode") == "http"
    out: Row = {}
    for name, where in _COLUMNS:
        if kind in where or (http and kind.lower() in where):
            out[name] = row.get(name)
        else:
            out[name] = None
    return out


# --- renderers ---------------------------------------------------------------------


def _csv_cell(value: Value) -> str:
    if value is None:
        return ""
    text = str(value)
    if any(ch in text for ch in ',"\n'):
        return '"' + text.replace('"', '""') + '"'
    return text


def csv_header() -> str:
    return "# " + ",".join(FIELDS) + ",\n"


def render_csv(rows: Iterable[Row], header: bool = True) -> str:
    """``show stat``: the header line, then one line per row, each ending with ','."""
    out = [csv_header()] if header else []
    for row in rows:
        visible = _visible(row)
        out.append(",".join(_csv_cell(visible[name]) for name in FIELDS) + ",\n")
    return "".join(out)


# --- typed output (management guide 9.2) -------------------------------------------

#: column:tags:type as HAProxy 2.6's "show stat typed" prints them (observed on the
#: golden config and on checked servers; the agent/cookie/queue columns that never
#: had a value there follow the same conventions from HAProxy's source).
_TYPED_TABLE = """
    pxname:KNS:str svname:KNS:str qcur:MGP:u32 qmax:MMP:u32 scur:MGP:u32 smax:MMP:u32
    slim:CLP:u32 stot:MCP:u64 bin:MCP:u64 bout:MCP:u64 dreq:MCP:u64 dresp:MCP:u64
    ereq:MCP:u64 econ:MCP:u64 eresp:MCP:u64 wretr:MCP:u64 wredis:MCP:u64 status:SGP:str
    weight:MaP:u32 act:SGP:u32 bck:SGP:u32 chkfail:MCP:u64 chkdown:MCP:u64 lastchg:MAP:u32
    downtime:MCP:u32 qlimit:CLP:u32 pid:KGP:u32 iid:KGS:u32 sid:KGS:u32 throttle:MaP:u32
    lbtot:MCP:u64 tracked:CNS:str type:CGS:u32 rate:MRP:u32 rate_lim:CLP:u32
    rate_max:MMP:u32 check_status:MOP:str check_code:MOP:u32 check_duration:MDP:u64
    hrsp_1xx:MCP:u64 hrsp_2xx:MCP:u64 hrsp_3xx:MCP:u64 hrsp_4xx:MCP:u64 hrsp_5xx:MCP:u64
    hrsp_other:MCP:u64 hanafail:MCP:u64 req_rate:MRP:u32 req_rate_max:MMP:u32
    req_tot:MCP:u64 cli_abrt:MCP:u64 srv_abrt:MCP:u64 comp_in:MCP:u64 comp_out:MCP:u64
    comp_byp:MCP:u64 comp_rsp:MCP:u64 lastsess:MAP:s32 last_chk:MOP:str last_agt:MOP:str
    qtime:MaP:u32 ctime:MaP:u32 rtime:MaP:u32 ttime:MaP:u32 agent_status:MOP:str
    agent_code:MOP:u32 agent_duration:MDP:u64 check_desc:MOP:str agent_desc:MOP:str
    check_rise:CGS:u32 check_fall:CGS:u32 check_health:CGS:u32 agent_rise:CGS:u32
    agent_fall:CGS:u32 agent_health:CGS:u32 addr:CGS:str cookie:CNS:str mode:CGS:str
    algo:CGS:str conn_rate:MRP:u32 conn_rate_max:MMP:u32 conn_tot:MCP:u64
    intercepted:MCP:u64 dcon:MCP:u64 dses:MCP:u64 wrew:MCP:u64 connect:MCP:u64 reuse:MCP:u64
    cache_lookups:MCP:u64 cache_hits:MCP:u64 srv_icur:MGP:u32 src_ilim:CLP:u32
    qtime_max:MMP:u32 ctime_max:MMP:u32 rtime_max:MMP:u32 ttime_max:MMP:u32 eint:MCP:u64
    idle_conn_cur:MGP:u32 safe_conn_cur:MGP:u32 used_conn_cur:MGP:u32 need_conn_est:MGP:u32
    uweight:MaP:u32 agg_server_status:MGP:u32 agg_server_check_status:MGP:u32
    agg_check_status:MGP:u32 ssl_sess:MCP:u64 ssl_reused_sess:MCP:u64
    ssl_failed_handshake:MCP:u64 h2_headers_rcvd:MCP:u64 h2_data_rcvd:MCP:u64
    h2_settings_rcvd:MCP:u64 h2_rst_stream_rcvd:MCP:u64 h2_goaway_rcvd:MCP:u64
    h2_detected_conn_protocol_errors:MCP:u64 h2_detected_strm_protocol_errors:MCP:u64
    h2_rst_stream_resp:MCP:u64 h2_goaway_resp:MCP:u64 h2_open_connections:MGP:u64
    h2_backend_open_streams:MGP:u64 h2_total_connections:MCP:u64
    h2_backend_total_streams:MCP:u64 h1_open_connections:MGP:u64 h1_open_streams:MGP:u64
    h1_total_connections:MCP:u64 h1_total_streams:MCP:u64 h1_bytes_in:MCP:u64
    h1_bytes_out:MCP:u64 h1_spliced_bytes_in:MCP:u64 h1_spliced_bytes_out:MCP:u64
"""
_TYPED: dict[str, tuple[str, str]] = {
    name: (tags, typ) for name, tags, typ in (item.split(":") for item in _TYPED_TABLE.split())
}
#: Backends report these as plain gauges (observed).
_TYPED_BACKEND = {name: ("MGP", "u32") for name in ("rate", "rate_max", "act", "bck")}
_OBJ = {
    TYPE_FRONTEND: ("F", "Frontend"),
    TYPE_BACKEND: ("B", "Backend"),
    TYPE_SERVER: ("S", "Server"),
}
_ORIGIN = {"M": "Metric", "S": "Status", "K": "Key", "C": "Config", "P": "Product"}
_NATURE = {
    "A": "Age", "a": "Avg", "C": "Counter", "D": "Duration", "G": "Gauge", "L": "Limit",
    "M": "Max", "m": "Min", "N": "Name", "O": "Output", "R": "Rate", "T": "Time",
}  # fmt: skip
_SCOPE = {"C": "Cluster", "P": "Process", "S": "Service", "s": "System"}


def _typed_fields(row: Row) -> Iterator[tuple[int, str, str, str, Value]]:
    """(position, column, tags, type, value) of each column that has a value.

    Positions are HAProxy's field numbers: the "-" separator of the CSV is not a
    field, so the per-module columns after it are numbered one lower than in CSV.
    """
    visible = _visible(row)
    backend = row.get("type") == TYPE_BACKEND
    pos = 0
    for name in FIELDS:
        if name == "-":
            continue
        value = visible[name]
        if value is not None:
            tags, typ = (_TYPED_BACKEND.get(name) if backend else None) or _TYPED[name]
            yield pos, name, tags, typ, value
        pos += 1


def render_typed(rows: Iterable[Row]) -> str:
    """``show stat typed``: ``F.iid.sid.pos.name.proc:tags:type:value`` per value."""
    out = []
    for row in rows:
        obj = _OBJ[int(row["type"] or 0)][0]
        for pos, name, tags, typ, value in _typed_fields(row):
            out.append(f"{obj}.{row['iid']}.{row['sid']}.{pos}.{name}.1:{tags}:{typ}:{value}\n")
    return "".join(out)


def render_json(rows: Iterable[Row]) -> str:
    """``show stat json``: HAProxy's list (one per row) of typed field objects."""
    out = []
    for row in rows:
        obj = _OBJ[int(row["type"] or 0)][1]
        fields = []
        for pos, name, tags, typ, value in _typed_fields(row):
            fields.append(
                {
                    "objType": obj,
                    "proxyId": row["iid"],
                    "id": row["sid"],
                    "field": {"pos": pos, "name": name},
                    "processNum": 1,
                    "tags": {
                        "origin": _ORIGIN[tags[0]],
                        "nature": _NATURE[tags[1]],
                        "scope": _SCOPE[tags[2]],
                    },
                    "value": {"type": typ, "value": value if typ == "str" else int(value or 0)},
                }
            )
        out.append(fields)
    return json.dumps(out, separators=(",", ":")) + "\n"
