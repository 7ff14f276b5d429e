"""The master's answers to the stats page and the Prometheus exporter (sans-I/O).

Theory of operation — why the master answers: the page and ``/metrics`` are served
by a worker's HTTP frontend (they are ordinary requests on its listeners), but what
they show lives in the master: the merged counters of every worker and the server
states (checks, runtime API). So the worker does the HTTP part — matching the URI,
``stats auth`` (401), evaluating ``stats admin if ...`` for this client, reading the
posted form — and sends one ``{"op": "service", ...}`` message on its channel
(``lbcore.proxy.services``). The master refreshes the counters from every worker
(as for ``show stat``), then ``answer`` builds the reply from the same state the
stats sockets read:

* ``;csv`` and ``;json`` are *the* ``show stat`` / ``show stat json`` answers of the
  runtime-API dispatcher, so they cannot differ from the socket's;
* the HTML page is ``lbcore.runtime.html.render_page`` over the same rows;
* admin actions become runtime-API command lines (``parse_admin_form``) executed by
  the dispatcher at admin level when the page allows admin for this client, else at
  user level — where they are refused ("Permission denied") like on a user socket;
* ``/metrics`` is ``lbcore.runtime.prometheus.render`` over the same rows.

Request (worker -> master): ``{"op": "service", "id": N, "service": "stats" |
"prometheus-exporter", "view": "html"|"csv"|"json", "admin": bool, "uri": U,
"refresh": seconds|None, "hide_version": bool, "form": "posted body"|None}``.
Reply (master -> worker): ``{"op": "service_reply", "id": N, "status": S,
"content_type": T, "body": TEXT}``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from lbcore.runtime.cli import split_commands
from lbcore.runtime.commands import execute, stat_rows
from lbcore.runtime.context import Context
from lbcore.runtime.html import parse_admin_form, render_page
from lbcore.runtime.prometheus import render as render_metrics
from lbcore.runtime.state import Level, RuntimeState

CSV = "text/plain; charset=utf-8"
JSON = "application/json"
HTML = "text/html; charset=utf-8"
METRICS = "text/plain; version=0.0.4; charset=utf-8"


def answer(state: RuntimeState, msg: Mapping[str, Any], now: float) -> dict[str, Any]:
    """The reply message for one ``service`` request."""
    reply: dict[str, Any] = {"op": "service_reply", "id": msg.get("id")}
    service = msg.get("service")
    if service == "prometheus-exporter":
        rows = stat_rows(state, now)
        return reply | {"status": 200, "content_type": METRICS, "body": render_metrics(rows)}
    if service != "stats":
        return reply | {"status": 503, "content_type": CSV, "body": "unknown service\n"}
    admin = bool(msg.get("admin"))
    level = Level.ADMIN if admin else Level.USER
    view = msg.get("view", "html")
    if view == "csv":
        text = execute(Context(state, level, now), ["show", "stat"])
        return reply | {"status": 200, "content_type": CSV, "body": text}
    if view == "json":
        text = execute(Context(state, level, now), ["show", "stat", "json"])
        return reply | {"status": 200, "content_type": JSON, "body": text}
    message = ""
    form = msg.get("form")
    if isinstance(form, str):
        try:
            commands = parse_admin_form(form.encode("latin-1"))
        except (ValueError, UnicodeEncodeError) as e:
            return reply | {"status": 400, "content_type": CSV, "body": f"{e}\n"}
        message = run_commands(state, commands, level, now)
    info = {
        "Pid": state.info.pid,
        "Uptime": f"{max(0, int(now - state.info.start_time))}s",
        "Version": state.info.version,
    }
    refresh = msg.get("refresh")
    page = render_page(
        stat_rows(state, now),
        info,
        str(msg.get("uri", "/")),
        admin,
        message=message,
        refresh=int(refresh) if isinstance(refresh, int | float) and refresh > 0 else None,
        hide_version=bool(msg.get("hide_version")),
    )
    return reply | {"status": 200, "content_type": HTML, "body": page}


def run_commands(state: RuntimeState, commands: list[str], level: Level, now: float) -> str:
    """Run the form's command lines through the dispatcher; a one-line report."""
    if not commands:
        return "Nothing to do."
    failures = []
    for line in commands:
        for args in split_commands(line):
            out = execute(Context(state, level, now), args).strip()
            if out:
                failures.append(f"{line}: {out}")
    if failures:
        return "Action denied or failed: " + "; ".join(failures)
    return f"Action processed successfully ({len(commands)} server(s))."
