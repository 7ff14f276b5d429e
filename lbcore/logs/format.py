"""HAProxy log lines from :class:`RequestRecord`: ``option httplog``, ``option tcplog``,
``option httplog clf`` and ``log-format``; and the messages of server state changes.

Theory of operation: a format string is compiled once (at configuration time) into a list
of nodes — literal text, separators, and variable renderers — exactly as HAProxy parses its
``log-format`` (configuration manual, section 8.2.6): every space is a separator,
consecutive separators merge, and a separator is written only if something was written
since the previous one, so a variable that renders nothing (``%hr`` on a frontend without
``capture request header``) leaves no double space. The nodes are then turned into one
generated Python function (:func:`_codegen`), the per-request cost being what a proxy pays
for every line; :meth:`LogFormat.render_generic` walks the nodes one by one and is the
reference the generated code is tested against. No clock is read: dates come from the
record. Encoding follows HAProxy's maps: captured headers escape ``"#{|}`` and
non-printable bytes as ``#XX``; the request line escapes ``"#`` and non-printables.

The syslog envelope around a line is :mod:`lbcore.logs.syslog`'s.
"""

from __future__ import annotations

import datetime as _dt
import functools
import re
from collections.abc import Callable
from dataclasses import dataclass

from lbcore.logs.record import BADREQ, RequestRecord

#: ``option httplog``, verbatim from the configuration manual (8.2.3).
HTTPLOG = (
    "%ci:%cp [%tr] %ft %b/%s %TR/%Tw/%Tc/%Tr/%Ta %ST %B %CC "
    "%CS %tsc %ac/%fc/%bc/%sc/%rc %sq/%bq %hr %hs %{+Q}r"
)
#: ``option httplog clf`` (8.2.3).
HTTPLOG_CLF = (
    '%{+Q}o %{-Q}ci - - [%trg] %r %ST %B "" "" %cp '
    "%ms %ft %b %s %TR %Tw %Tc %Tr %Ta %tsc %ac %fc "
    "%bc %sc %rc %sq %bq %CC %CS %hrl %hsl"
)
#: ``option tcplog`` (8.2.2).
TCPLOG = "%ci:%cp [%t] %ft %b/%s %Tw/%Tc/%Tt %B %ts %ac/%fc/%bc/%sc/%rc %sq/%bq"

MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


class LogFormatError(ValueError):
    """A ``log-format`` string HAProxy's grammar does not allow (or lbcore does not know)."""


def _encode_map(extra: str) -> list[str]:
    table = [chr(i) for i in range(256)]
    for i in list(range(32)) + list(range(127, 256)):
        table[i] = f"#{i:02X}"
    for ch in extra:
        table[ord(ch)] = f"#{ord(ch):02X}"
    return table


_HDR_MAP = _encode_map('"#{|}')
_URL_MAP = _encode_map('"#')
_HDR_SAFE = frozenset(chr(i) for i in range(32, 127)) - set('"#{|}')
_URL_SAFE = frozenset(chr(i) for i in range(32, 127)) - set('"#')


def encode(text: str, table: list[str], safe: frozenset[str]) -> str:
    """Escape what HAProxy escapes in logs: each byte of the field as it was on the wire.

    The proxy decodes wire bytes as latin-1 (request line, captured headers and cookies),
    so encoding back to latin-1 gives those exact bytes: a raw ``\xe9`` is ``#E9`` and
    UTF-8 ``é`` is ``#C3#A9``, as HAProxy 2.6 logs them. Text that never was bytes
    (a character beyond latin-1) is escaped per UTF-8 byte.
    """
    if safe.issuperset(text):
        return text
    try:
        raw = text.encode("latin-1")
    except UnicodeEncodeError:
        raw = text.encode("utf-8", "surrogateescape")
    return "".join([table[b] for b in raw])


def encode_header(text: str) -> str:
    return encode(text, _HDR_MAP, _HDR_SAFE)


def encode_url(text: str) -> str:
    return encode(text, _URL_MAP, _URL_SAFE)


# ---------------------------------------------------------------------------- dates


def _split_ms(ts: float) -> tuple[int, int]:
    us = round(ts * 1_000_000)
    return us // 1_000_000, (us // 1000) % 1000


def local_datetime(sec: int, tz: _dt.tzinfo | None) -> _dt.datetime:
    if tz is None:  # the host's local time, as HAProxy's %t
        return _dt.datetime.fromtimestamp(sec).astimezone()
    return _dt.datetime.fromtimestamp(sec, tz)


def utc_offset(d: _dt.datetime) -> str:
    off = d.utcoffset() or _dt.timedelta(0)
    minutes = int(off.total_seconds()) // 60
    sign = "-" if minutes < 0 else "+"
    minutes = abs(minutes)
    return f"{sign}{minutes // 60:02d}{minutes % 60:02d}"


@functools.lru_cache(maxsize=64)
def _second(sec: int, tz: _dt.tzinfo | None) -> tuple[str, str]:
    """``06/Feb/2009:12:14:14`` and its UTC offset, computed once per second: a busy
    proxy logs many requests per second, and building datetimes is the slow part."""
    d = local_datetime(sec, tz)
    return (
        f"{d.day:02d}/{MONTHS[d.month - 1]}/{d.year:04d}:"
        f"{d.hour:02d}:{d.minute:02d}:{d.second:02d}",
        utc_offset(d),
    )


def date_ms(ts: float, tz: _dt.tzinfo | None) -> str:
    """``06/Feb/2009:12:14:14.655`` (``%t``, ``%tr``)."""
    sec, ms = _split_ms(ts)
    return f"{_second(sec, tz)[0]}.{ms:03d}"


def date_zone(ts: float, tz: _dt.tzinfo | None) -> str:
    """``06/Feb/2009:12:14:14 +0000`` (``%T`` in GMT, ``%Tl`` in local time)."""
    day, off = _second(_split_ms(ts)[0], tz)
    return f"{day} {off}"


# ---------------------------------------------------------------------------- variables

_Render = Callable[[RequestRecord], str | None]


@dataclass(frozen=True, slots=True)
class Context:
    """What a line may need beyond the record: the process's identity and time zone."""

    hostname: str = "-"
    pid: int = 0
    tz: _dt.tzinfo | None = None  # None = the host's local time (HAProxy's behaviour)


def _req_ts(r: RequestRecord) -> float:
    if r.request_ts is not None:
        return r.request_ts
    return r.accept_ts + (max(r.t_handshake, 0) + max(r.t_idle, 0)) / 1000.0


def _plus(flag: bool, value: int) -> str:
    return f"+{value}" if flag else str(value)


def _split_request(r: RequestRecord) -> tuple[str, str, str] | None:
    if not r.request_line:
        return None
    parts = r.request_line.split(" ")
    if len(parts) < 2:
        return None
    return parts[0], parts[1], parts[2] if len(parts) > 2 else "HTTP/0.9"


def _uri_part(r: RequestRecord, part: str) -> str | None:
    sp = _split_request(r)
    if sp is None:  # HAProxy 2.6 writes <BADREQ> in each of %HM %HP %HPO %HQ %HU %HV
        return BADREQ if not r.request_line else None
    method, uri, version = sp
    path, sep, query = uri.partition("?")
    if part == "HM":
        return method
    if part == "HV":
        return version
    if part == "HU":
        return uri
    if part == "HP":
        return path
    if part == "HQ":
        return sep + query if sep else ""
    # HPO: path only, without a scheme://authority prefix
    if "://" in path:
        rest = path.split("://", 1)[1]
        slash = rest.find("/")
        return rest[slash:] if slash >= 0 else "/"
    return path


def _headers(values: tuple[str, ...]) -> str | None:
    if not values:
        return None
    return "{" + "|".join(map(encode_header, values)) + "}"


def _ip_hex(ip: str) -> str:
    parts = ip.split(".")
    if len(parts) == 4 and all(p.isdigit() for p in parts):
        return "".join(f"{int(p):02X}" for p in parts)
    return ip


def _variables(ctx: Context) -> dict[str, tuple[str, _Render]]:
    """name -> (kind, renderer). Kinds decide the flags' effect and empty values: "n"
    numbers, "s" text, "ip"/"port" addresses, "url" the request line, "date", "flag" the
    termination state, "ts"/"pid" hexable numbers, "special"/"list" captured headers
    (which write nothing at all when none are captured)."""
    tz = ctx.tz
    utc = _dt.UTC
    return {
        "B": ("n", lambda r: _plus(r.logasap, r.bytes_read)),
        "CC": ("s", lambda r: r.captured_request_cookie),
        "CS": ("s", lambda r: r.captured_response_cookie),
        "H": ("s", lambda r: ctx.hostname),
        "HM": ("s", lambda r: _uri_part(r, "HM")),
        "HP": ("s", lambda r: _uri_part(r, "HP")),
        "HPO": ("s", lambda r: _uri_part(r, "HPO")),
        "HQ": ("s", lambda r: _uri_part(r, "HQ")),
        "HU": ("s", lambda r: _uri_part(r, "HU")),
        "HV": ("s", lambda r: _uri_part(r, "HV")),
        "ID": ("s", lambda r: r.unique_id),
        "ST": ("n", lambda r: str(r.status)),
        "T": ("date", lambda r: date_zone(r.accept_ts, utc)),
        "Ta": ("n", lambda r: _plus(r.logasap, r.t_active)),
        "Tc": ("n", lambda r: str(r.t_connect)),
        "Td": ("n", lambda r: str(r.t_data)),
        "Tl": ("date", lambda r: date_zone(r.accept_ts, tz)),
        "Th": ("n", lambda r: str(r.t_handshake)),
        "Ti": ("n", lambda r: str(r.t_idle)),
        "Tq": ("n", lambda r: str(r.t_q)),
        "TR": ("n", lambda r: str(r.t_request)),
        "Tr": ("n", lambda r: str(r.t_response)),
        "Ts": ("ts", lambda r: str(int(r.accept_ts))),
        "Tt": ("n", lambda r: _plus(r.logasap, r.t_total)),
        "Tu": ("n", lambda r: str(r.t_total - r.t_idle if r.t_total >= 0 else -1)),
        "Tw": ("n", lambda r: str(r.t_queue)),
        "U": ("n", lambda r: str(r.bytes_uploaded)),
        "ac": ("n", lambda r: str(r.actconn)),
        "b": ("s", lambda r: r.backend),
        "bc": ("n", lambda r: str(r.beconn)),
        "bi": ("ip", lambda r: "-"),
        "bp": ("port", lambda r: "-"),
        "bq": ("n", lambda r: str(r.backend_queue)),
        "ci": ("ip", lambda r: r.client_ip),
        "cp": ("port", lambda r: str(r.client_port)),
        "f": ("s", lambda r: r.frontend),
        "fc": ("n", lambda r: str(r.feconn)),
        "fi": ("ip", lambda r: r.frontend_ip),
        "fp": ("port", lambda r: str(r.frontend_port)),
        "ft": ("s", lambda r: r.frontend + "~" if r.ssl else r.frontend),
        "lc": ("n", lambda r: str(r.log_counter)),
        "hr": ("special", lambda r: _headers(r.request_headers)),
        "hs": ("special", lambda r: _headers(r.response_headers)),
        "hrl": ("list", lambda r: None),
        "hsl": ("list", lambda r: None),
        "ms": ("n", lambda r: f"{_split_ms(r.accept_ts)[1]:03d}"),
        "pid": ("pid", lambda r: str(ctx.pid)),
        "r": ("url", lambda r: r.request_line if r.request_line else BADREQ),
        "rc": ("n", lambda r: _plus(r.redispatched, r.retries)),
        "rt": ("n", lambda r: str(r.request_counter)),
        "s": ("s", lambda r: r.server),
        "sc": ("n", lambda r: str(r.srv_conn)),
        "si": ("ip", lambda r: r.server_ip),
        "sp": ("port", lambda r: str(r.server_port) if r.server_port else "-"),
        "sq": ("n", lambda r: str(r.srv_queue)),
        "sslc": ("s", lambda r: None),
        "sslv": ("s", lambda r: None),
        "t": ("date", lambda r: date_ms(r.accept_ts, tz)),
        "tr": ("date", lambda r: date_ms(_req_ts(r), tz)),
        "trg": ("date", lambda r: date_zone(_req_ts(r), utc)),
        "trl": ("date", lambda r: date_zone(_req_ts(r), tz)),
        "ts": ("flag", lambda r: r.termination),
        "tsc": ("flag", lambda r: r.termination + r.cookie_client + r.cookie_server),
    }


#: What the Q flag quotes (HAProxy's text and address fields and captured headers; not
#: numbers, dates or the termination state, as its CLF format shows).
_QUOTED = frozenset({"s", "ip", "url", "special"})


def _escape_e(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"').replace("]", "\\]")


def _wrap(name: str, kind: str, fn: _Render, flags: frozenset[str]) -> _Render:
    """Apply the Q/X/E flags to one variable's renderer."""
    quote, hexa, esc = "Q" in flags, "X" in flags, "E" in flags

    if kind == "list":  # %hrl / %hsl: each captured header as its own field
        attr = "request_headers" if name == "hrl" else "response_headers"

        def render_list(r: RequestRecord) -> str | None:
            values: tuple[str, ...] = getattr(r, attr)
            if not values:
                return None
            out = []
            for v in values:
                if quote:
                    out.append(f'"{encode_header(v)}"')
                else:
                    out.append(encode_header(v) if v else "-")
            return " ".join(out)

        return render_list

    if not flags:  # the common case: no per-call flag tests
        if kind in ("n", "special", "date", "flag"):
            return fn  # numbers are never None; specials return None to vanish
        if kind != "url":

            def plain(r: RequestRecord) -> str:
                return fn(r) or "-"  # HAProxy writes "-" for a missing or empty string

            return plain

    def render(r: RequestRecord) -> str | None:
        v = fn(r)
        if not v:
            if kind == "special":
                return None
            if quote and kind in _QUOTED:
                return '""'  # a missing string quoted is "", not "-"
            v = "-"
        if kind == "url":
            v = encode_url(v)
        if hexa:
            if kind == "ip":
                v = _ip_hex(v)
            elif kind in ("port", "ts", "pid", "n") and v.lstrip("-").isdigit():
                width = 4 if kind == "port" else 8
                v = f"{int(v):0{width}X}"
        if esc:
            v = _escape_e(v)
        if quote and kind in _QUOTED:
            v = f'"{v}"'
        return v

    return render


# ---------------------------------------------------------------------------- compiler

_VAR_RE = re.compile(r"%(?:\{[^}]*\})?([A-Za-z0-9]+)")

_SEP = object()


class LogFormat:
    """A compiled ``log-format``; ``render(record)`` returns the line (no envelope)."""

    __slots__ = ("_fast", "_nodes", "context", "source", "variables")

    def __init__(self, fmt: str, ctx: Context | None = None) -> None:
        self.source = fmt
        self.context = ctx or Context()
        nodes, maybe_empty, names = _compile(fmt, self.context)
        #: the variables the format uses: a proxy fills what only some formats read
        #: (%fi/%fp, say) only when the format asks for it
        self.variables = frozenset(_VAR_RE.findall(fmt))
        self._nodes: list[object] = nodes
        self._fast = _codegen(nodes, maybe_empty, names)

    @classmethod
    def httplog(cls, ctx: Context | None = None, clf: bool = False) -> LogFormat:
        return cls(HTTPLOG_CLF if clf else HTTPLOG, ctx)

    @classmethod
    def tcplog(cls, ctx: Context | None = None) -> LogFormat:
        return cls(TCPLOG, ctx)

    def render(self, record: RequestRecord) -> str:
        if self._fast is not None:
            return self._fast(record)
        return self.render_generic(record)

    def render_generic(self, record: RequestRecord) -> str:
        """HAProxy's rule, node by node: a separator is written only after something."""
        out: list[str] = []
        last_space = True  # a leading separator writes nothing
        for node in self._nodes:
            if node is _SEP:
                if not last_space:
                    out.append(" ")
                    last_space = True
            elif isinstance(node, str):
                out.append(node)
                last_space = False
            else:
                v = node(record)  # type: ignore[operator]
                if v:
                    out.append(v)
                    last_space = False
        return "".join(out)  # a trailing separator stays, as in HAProxy


#: Variables without flags that the generated renderer reads inline (no call per field).
_INLINE = {
    "ci": "(r.client_ip or '-')",
    "cp": "str(r.client_port)",
    "f": "(r.frontend or '-')",
    "ft": "(r.frontend + '~' if r.ssl else r.frontend)",
    "b": "(r.backend or '-')",
    "s": "(r.server or '-')",
    "TR": "str(r.t_request)",
    "Tw": "str(r.t_queue)",
    "Tc": "str(r.t_connect)",
    "Tr": "str(r.t_response)",
    "Ta": "('+' if r.logasap else '') + str(r.t_active)",
    "Tt": "('+' if r.logasap else '') + str(r.t_total)",
    "ST": "str(r.status)",
    "B": "('+' if r.logasap else '') + str(r.bytes_read)",
    "U": "str(r.bytes_uploaded)",
    "CC": "(r.captured_request_cookie or '-')",
    "CS": "(r.captured_response_cookie or '-')",
    "ac": "str(r.actconn)",
    "fc": "str(r.feconn)",
    "bc": "str(r.beconn)",
    "sc": "str(r.srv_conn)",
    "rc": "('+' if r.redispatched else '') + str(r.retries)",
    "sq": "str(r.srv_queue)",
    "bq": "str(r.backend_queue)",
    "ts": "r.termination",
    "tsc": "r.termination + r.cookie_client + r.cookie_server",
}


def _codegen(
    nodes: list[object], maybe_empty: set[int], names: dict[int, str]
) -> Callable[[RequestRecord], str] | None:
    """One Python function for the whole line, with HAProxy's separator rule settled at
    compile time. Only "maybe empty" variables (``%hr``...) make it depend on the record: the
    separator before one is written as usual, and the one right after it only when it wrote
    something (after an empty one, the last thing written is already a separator). Shapes
    where that does not hold (text glued before such a variable) use the generic renderer.
    """
    env: dict[str, object] = {}
    parts: list[str] = []
    pending = started = False
    i, n = 0, len(nodes)
    while i < n:
        node = nodes[i]
        if node is _SEP:
            pending = started  # leading separators vanish
            i += 1
            continue
        if pending:
            parts.append("' '")
        if isinstance(node, str):
            parts.append(repr(node))
        else:
            env[f"F{i}"] = node
            if id(node) in maybe_empty:
                if started and nodes[i - 1] is not _SEP:
                    return None
                if i + 1 < n and nodes[i + 1] is _SEP:
                    parts.append(f'(_v + " " if (_v := F{i}(r)) else "")')
                    i += 1  # that separator is written (or not) with the variable
                else:
                    parts.append(f'(F{i}(r) or "")')
            else:
                parts.append(_INLINE.get(names.get(id(node), ""), f"F{i}(r)"))
        pending, started = False, True
        i += 1
    if pending:
        parts.append("' '")  # HAProxy keeps a trailing separator
    if not parts:
        return None
    code = "def render(r):\n    return ''.join((" + ", ".join(parts) + ",))\n"
    exec(code, env)  # built only from repr() literals and node indexes
    return env["render"]  # type: ignore[return-value]


def _compile(fmt: str, ctx: Context) -> tuple[list[object], set[int], dict[int, str]]:
    """Nodes (text, separators, renderers), the renderers that may write nothing, and the
    variable name of each renderer used without flags (for :func:`_codegen`)."""
    variables = _variables(ctx)
    nodes: list[object] = []
    maybe_empty: set[int] = set()
    names: dict[int, str] = {}
    text: list[str] = []
    sticky: set[str] = set()  # flags propagated by %o

    def flush() -> None:
        if text:
            nodes.append("".join(text))
            text.clear()

    i, n = 0, len(fmt)
    while i < n:
        ch = fmt[i]
        if ch == " ":
            flush()
            if not nodes or nodes[-1] is not _SEP:
                nodes.append(_SEP)
            i += 1
            continue
        if ch != "%":
            text.append(ch)
            i += 1
            continue
        if fmt.startswith("%%", i):
            text.append("%")
            i += 2
            continue
        i += 1
        flags = set(sticky)
        if i < n and fmt[i] == "{":
            end = fmt.find("}", i)
            if end < 0:
                raise LogFormatError(f"missing '}}' after '%{{' at offset {i - 1}")
            for arg in fmt[i + 1 : end].split(","):
                arg = arg.strip()
                if len(arg) == 2 and arg[0] in "+-" and arg[1] in "QXE":
                    (flags.add if arg[0] == "+" else flags.discard)(arg[1])
                elif arg:
                    raise LogFormatError(f"unknown log-format flag '{arg}' at offset {i}")
            i = end + 1
        if i < n and fmt[i] == "[":
            raise LogFormatError(f"sample expressions '%[...]' are not supported (offset {i - 1})")
        j = i
        while j < n and fmt[j].isascii() and fmt[j].isalnum():
            j += 1
        name = fmt[i:j]
        # the whole run of letters and digits names the variable: "%Tsfoo" is unknown,
        # "%ST_x" is %ST then "_x" (HAProxy 2.6's parser)
        if not name and j < n:
            raise LogFormatError(f"'%' followed by '{fmt[j]}' at offset {i - 1} (write '%%')")
        if not name:
            raise LogFormatError(f"truncated line after '%' at offset {i - 1}")
        if name not in variables and name != "o":
            raise LogFormatError(f"no such format variable '%{name}' (offset {i - 1})")
        i = j
        if name == "o":
            sticky = flags
            continue
        flush()
        kind, fn = variables[name]
        node = _wrap(name, kind, fn, frozenset(flags))
        if kind in ("special", "list"):
            maybe_empty.add(id(node))
        if not flags:
            names[id(node)] = name
        nodes.append(node)
    flush()
    return nodes, maybe_empty, names


# ---------------------------------------------------------------------------- events


def server_state_message(
    backend: str,
    server: str,
    up: bool,
    reason: str,
    *,
    info: str | None = None,
    check_ms: int | None = None,
    active: int = 0,
    backup: int = 0,
    sessions: int = 0,
    requeued: int = 0,
    queued: int = 0,
) -> tuple[str, str]:
    """HAProxy's message when a check moves a server, and its syslog level.

    ``Server be/s1 is DOWN, reason: Layer4 connection problem, info: "Connection refused",
    check duration: 0ms. 1 active and 0 backup servers left. 0 sessions active, 0 requeued,
    0 remaining in queue.`` (level alert); going UP is logged at notice.
    """
    parts = [f"Server {backend}/{server} is {'UP' if up else 'DOWN'}, reason: {reason}"]
    if info is not None:
        parts.append(f', info: "{info}"')
    if check_ms is not None:
        parts.append(f", check duration: {check_ms}ms")
    if up:
        parts.append(
            f". {active} active and {backup} backup servers online. "
            f"{requeued} sessions requeued, {queued} total in queue."
        )
        return "".join(parts), "notice"
    parts.append(
        f". {active} active and {backup} backup servers left. "
        f"{sessions} sessions active, {requeued} requeued, {queued} remaining in queue."
    )
    return "".join(parts), "alert"
