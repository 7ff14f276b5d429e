"""Prometheus text exposition of the stats rows, under HAProxy's own metric names.

We chose HAProxy's exporter names (``haproxy_frontend_*``, ``haproxy_backend_*``,
``haproxy_server_*``) over an ``lbcore_`` prefix so that dashboards and alerts written
for HAProxy's built-in exporter work unchanged; what HAProxy has no name for (the VRRP
agent) is exported as ``lbcore_vrrp_*``. ``tests/integration/runtime`` checks every
``haproxy_*`` name we emit against a live HAProxy 2.6 exporter.

This is one more renderer over the rows of ``lbcore.stats`` (the same rows as
``show stat``), so the numbers cannot disagree with the CSV.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from lbcore.stats import Row

# CSV column -> (metric suffix, type, help); F/B/S = which objects have it.
_METRICS: tuple[tuple[str, str, str, str, str], ...] = (
    ("qcur", "BS", "current_queue", "gauge", "Number of current queued connections"),
    ("qmax", "BS", "max_queue", "gauge", "Highest value of queued connections encountered"),
    ("scur", "FBS", "current_sessions", "gauge", "Number of current sessions"),
    ("smax", "FBS", "max_sessions", "gauge", "Highest value of current sessions encountered"),
    ("slim", "FBS", "limit_sessions", "gauge", "Configured session limit (maxconn)"),
    ("stot", "FBS", "sessions_total", "counter", "Total number of sessions"),
    ("bin", "FBS", "bytes_in_total", "counter", "Total number of request bytes"),
    ("bout", "FBS", "bytes_out_total", "counter", "Total number of response bytes"),
    ("dreq", "FB", "requests_denied_total", "counter", "Total number of denied requests"),
    ("dresp", "FBS", "responses_denied_total", "counter", "Total number of denied responses"),
    ("ereq", "F", "request_errors_total", "counter", "Total number of invalid requests"),
    ("econ", "BS", "connection_errors_total", "counter", "Total number of failed connections"),
    ("eresp", "BS", "response_errors_total", "counter", "Total number of invalid responses"),
    ("wretr", "BS", "retry_warnings_total", "counter", "Total number of connection retries"),
    ("wredis", "BS", "redispatch_warnings_total", "counter", "Total number of redispatches"),
    ("weight", "BS", "weight", "gauge", "Effective weight (sum of active servers' for a backend)"),
    ("act", "B", "active_servers", "gauge", "Number of active UP servers with a non-zero weight"),
    ("bck", "B", "backup_servers", "gauge", "Number of backup UP servers with a non-zero weight"),
    ("chkfail", "S", "check_failures_total", "counter", "Total number of failed health checks"),
    ("chkdown", "BS", "check_up_down_total", "counter", "Total number of UP to DOWN transitions"),
    ("lastchg", "BS", "check_last_change_seconds", "gauge", "Seconds since the last state change"),
    ("downtime", "BS", "downtime_seconds_total", "counter", "Total time spent in DOWN state"),
    ("lbtot", "BS", "loadbalanced_total", "counter", "Total number of load-balanced requests"),
    ("req_tot", "FB", "http_requests_total", "counter", "Total number of HTTP requests"),
    ("cli_abrt", "BS", "client_aborts_total", "counter", "Total number of client aborts"),
    ("srv_abrt", "BS", "server_aborts_total", "counter", "Total number of server aborts"),
    ("conn_tot", "F", "connections_total", "counter", "Total number of accepted connections"),
)
_CODES = ("1xx", "2xx", "3xx", "4xx", "5xx", "other")
_KINDS = {0: ("F", "frontend"), 1: ("B", "backend"), 2: ("S", "server")}
_SERVER_STATES = ("DOWN", "UP", "MAINT", "DRAIN", "NOLB")


def _number(value: object) -> float | None:
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, int | float):
        return float(value)
    try:
        return float(str(value))
    except ValueError:
        return None


def _labels(row: Row, kind: str, extra: Mapping[str, str] | None = None) -> str:
    pairs = [("proxy", str(row["pxname"]))]
    if kind == "server":
        pairs.append(("server", str(row["svname"])))
    pairs += list((extra or {}).items())
    return "{" + ",".join(f'{k}="{_escape(v)}"' for k, v in pairs) + "}"


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _server_state(status: str) -> str:
    """Collapse a CSV status ("UP 1/3", "no check", "MAINT (via …)") into the exporter's."""
    word = status.split(" ", 1)[0].upper()
    if status == "no check":
        return "UP"
    return word if word in _SERVER_STATES else "DOWN"


def render(rows: Iterable[Row], vrrp: Iterable[Mapping[str, object]] = ()) -> str:
    """The exposition text for ``rows`` (and VRRP instance states, when given)."""
    samples: dict[str, tuple[str, str, list[str]]] = {}

    def add(name: str, mtype: str, text: str, line: str) -> None:
        samples.setdefault(name, (mtype, text, []))[2].append(line)

    for row in rows:
        letter, kind = _KINDS.get(int(row.get("type", -1) or 0), ("", ""))
        if not kind:
            continue
        prefix = f"haproxy_{kind}_"
        for column, where, suffix, mtype, text in _METRICS:
            if letter not in where:
                continue
            value = _number(row.get(column))
            if value is not None:
                add(prefix + suffix, mtype, text, f"{prefix}{suffix}{_labels(row, kind)} {value:g}")
        status = str(row.get("status", ""))
        if kind == "server":
            current = _server_state(status)
            for state in _SERVER_STATES:
                line = f"{_labels(row, kind, {'state': state})} {int(state == current)}"
                add(
                    prefix + "status",
                    "gauge",
                    "Current status, per state label value.",
                    prefix + "status" + line,
                )
        else:
            up = status in ("OPEN", "UP")
            for state, value in (("DOWN", not up), ("UP", up)):
                add(
                    prefix + "status",
                    "gauge",
                    "Current status, per state label value.",
                    f"{prefix}status{_labels(row, kind, {'state': state})} {int(value)}",
                )
        if letter in "FBS" and row.get("hrsp_2xx") not in (None, ""):
            for code in _CODES:
                value = _number(row.get(f"hrsp_{code}"))
                if value is not None:
                    add(
                        prefix + "http_responses_total",
                        "counter",
                        "Total number of HTTP responses, per status class",
                        f"{prefix}http_responses_total{_labels(row, kind, {'code': code})} "
                        f"{value:g}",
                    )
    for instance in vrrp:
        labels = f'{{instance="{_escape(str(instance["name"]))}"}}'
        for state in ("INIT", "BACKUP", "MASTER", "FAULT"):
            value = int(str(instance.get("state", "")).upper() == state)
            add(
                "lbcore_vrrp_state",
                "gauge",
                "VRRP instance state, per state label value.",
                f'lbcore_vrrp_state{{instance="{_escape(str(instance["name"]))}",'
                f'state="{state}"}} {value}',
            )
        add(
            "lbcore_vrrp_priority",
            "gauge",
            "Effective VRRP priority.",
            f"lbcore_vrrp_priority{labels} {int(str(instance.get('priority', 0)))}",
        )
    out = []
    for name, (mtype, text, lines) in samples.items():
        out.append(f"# HELP {name} {text}")
        out.append(f"# TYPE {name} {mtype}")
        out.extend(lines)
    return "\n".join(out) + "\n"
