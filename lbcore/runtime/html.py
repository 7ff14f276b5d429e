"""The stats page (``stats enable`` / ``stats uri``): one more renderer over the rows.

Theory of operation: the HTTP frontend that owns ``stats uri`` asks ``render_page`` for
the HTML of the same rows ``show stat`` prints, and hands POSTed admin forms to
``parse_admin_form``, which returns runtime-API command lines (``set server app/web1
state drain``): the page has no powers of its own, it goes through the same command
dispatcher (and the same level checks) as the admin socket. ``;csv`` and ``;json``
suffixes of the URI select the other renderers.

Like HAProxy's page, each proxy is a table (frontend, servers, backend), each server row
shows its status, weight, sessions, bytes, errors, check status and last change; with
``stats admin`` allowed, a checkbox per server and an action selector post the form.
"""

from __future__ import annotations

import html
from collections.abc import Iterable, Mapping
from urllib.parse import parse_qs

from lbcore.stats import Row

ACTIONS = {
    "ready": "state ready",
    "drain": "state drain",
    "maint": "state maint",
    "dhlth": "health disable",
    "ehlth": "health enable",
    "shutdown": "shutdown",
}
_STATUS_CLASS = {
    "UP": "up",
    "DOWN": "down",
    "MAINT": "maint",
    "DRAIN": "drain",
    "OPEN": "up",
    "no": "up",
    "NOLB": "drain",
}
_COLUMNS = (
    ("Status", "status"),
    ("Weight", "weight"),
    ("Cur", "scur"),
    ("Max", "smax"),
    ("Limit", "slim"),
    ("Total", "stot"),
    ("Bytes in", "bin"),
    ("Bytes out", "bout"),
    ("Conn err", "econ"),
    ("Resp err", "eresp"),
    ("2xx", "hrsp_2xx"),
    ("5xx", "hrsp_5xx"),
    ("Check", "check_status"),
    ("LastChk", "last_chk"),
    ("Last change", "lastchg"),
)
_STYLE = """
body { font-family: sans-serif; font-size: 13px; margin: 1em; }
table { border-collapse: collapse; margin-bottom: 1.5em; }
th, td { border: 1px solid #999; padding: 2px 6px; text-align: right; }
th.px { background: #20a; color: #fff; text-align: left; }
td.name { text-align: left; font-weight: bold; }
tr.up td { background: #c0ffc0; } tr.down td { background: #ffa0a0; }
tr.maint td { background: #c07820; color: #fff; } tr.drain td { background: #80a0ff; }
tr.fe td, tr.be td { background: #eee; }
"""


def _cell(value: object) -> str:
    return html.escape("" if value is None else str(value))


def _row_class(row: Row) -> str:
    svname = row.get("svname")
    if svname == "FRONTEND":
        return "fe"
    if svname == "BACKEND":
        return "be"
    word = str(row.get("status", "")).split(" ", 1)[0]
    return _STATUS_CLASS.get(word, "down")


def render_page(
    rows: Iterable[Row],
    info: Mapping[str, object],
    uri: str,
    admin: bool,
    message: str = "",
    refresh: int | None = None,
    hide_version: bool = False,
) -> str:
    """The whole HTML page; ``admin`` adds the per-server forms."""
    proxies: dict[str, list[Row]] = {}
    for row in rows:
        proxies.setdefault(str(row["pxname"]), []).append(row)
    head = [
        "<!DOCTYPE html>",
        "<html><head><meta charset='utf-8'>",
        "<title>Statistics Report for lbcore</title>",
        f"<style>{_STYLE}</style>",
    ]
    if refresh:
        head.append(f"<meta http-equiv='refresh' content='{int(refresh)}'>")
    body = [
        "</head><body>",
        "<h1>lbcore statistics report</h1>",
        f"<p>pid = {_cell(info.get('Pid', ''))}; uptime = {_cell(info.get('Uptime', ''))}"
        + ("" if hide_version else f"; version {_cell(info.get('Version', ''))}")
        + "</p>",
        f"<p>CSV export: <a href='{_cell(uri)};csv'>{_cell(uri)};csv</a>, "
        f"JSON: <a href='{_cell(uri)};json'>{_cell(uri)};json</a></p>",
    ]
    if message:
        body.append(f"<p class='msg' id='message'>{_cell(message)}</p>")
    for name, proxy_rows in proxies.items():
        body.append(_proxy_table(name, proxy_rows, uri, admin))
    body.append("</body></html>")
    return "\n".join(head + body) + "\n"


def _proxy_table(name: str, rows: list[Row], uri: str, admin: bool) -> str:
    servers = [r for r in rows if r.get("svname") not in ("FRONTEND", "BACKEND")]
    has_backend = any(r.get("svname") == "BACKEND" for r in rows)
    out = []
    can_act = admin and has_backend and servers
    if can_act:
        out.append(f"<form method='post' action='{_cell(uri)}'>")
        out.append(f"<input type='hidden' name='b' value='{_cell(name)}'>")
    span = len(_COLUMNS) + 1 + (1 if can_act else 0)
    out.append(
        f"<table id='px-{_cell(name)}'><tr><th class='px' colspan='{span}'>{_cell(name)}</th></tr>"
    )
    out.append(
        "<tr>"
        + ("<th></th>" if can_act else "")
        + "<th></th>"
        + "".join(f"<th>{_cell(title)}</th>" for title, _ in _COLUMNS)
        + "</tr>"
    )
    for row in rows:
        svname = str(row["svname"])
        box = ""
        if can_act:
            box = "<td></td>"
            if svname not in ("FRONTEND", "BACKEND"):
                box = f"<td><input type='checkbox' name='s' value='{_cell(svname)}'></td>"
        cells = "".join(f"<td>{_cell(row.get(col))}</td>" for _, col in _COLUMNS)
        out.append(
            f"<tr class='{_row_class(row)}' id='sv-{_cell(name)}-{_cell(svname)}'>"
            f"{box}<td class='name'>{_cell(svname)}</td>{cells}</tr>"
        )
    out.append("</table>")
    if can_act:
        options = "".join(f"<option value='{key}'>{key}</option>" for key in ("", *ACTIONS))
        out.append(
            f"Choose the action to perform on the checked servers: "
            f"<select name='action'>{options}</select> "
            f"<input type='submit' value='Apply'></form>"
        )
    return "\n".join(out)


def parse_admin_form(body: bytes) -> list[str]:
    """Runtime-API command lines for a posted admin form; [] when nothing to do.

    Raises ``ValueError`` for an unknown action, so the page can answer 400 rather
    than silently ignore a mistyped form.
    """
    form = parse_qs(body.decode("latin-1"), keep_blank_values=True)
    action = (form.get("action") or [""])[0]
    backend = (form.get("b") or [""])[0]
    servers = form.get("s", [])
    if not action or not servers:
        return []
    if action not in ACTIONS:
        raise ValueError(f"unknown action '{action}'")
    if not backend:
        raise ValueError("missing backend")
    verb = ACTIONS[action]
    commands = []
    for server in servers:
        target = f"{backend}/{server}"
        if verb == "shutdown":
            commands.append(f"shutdown sessions server {target}")
        elif verb.startswith("health"):
            commands.append(f"{verb.split()[1]} health {target}")
        else:
            commands.append(f"set server {target} {verb}")
    return commands
