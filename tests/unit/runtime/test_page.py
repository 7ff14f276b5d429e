"""The master's answers to the stats page and /metrics (lbcore.runtime.page)."""

from __future__ import annotations

import time
from urllib.parse import urlencode

from prometheus_client.parser import text_string_to_metric_families

from lbcore.config.parser import parse_text
from lbcore.runtime.commands import execute
from lbcore.runtime.context import Context
from lbcore.runtime.page import answer
from lbcore.runtime.state import Level, RuntimeState

CONFIG = """
defaults
    mode http
frontend fe
    bind 127.0.0.1:8080
    stats uri /stats
    default_backend app
backend app
    server web1 127.0.0.1:9001
    server web2 127.0.0.1:9002
"""


def state() -> RuntimeState:
    return RuntimeState(parse_text(CONFIG), now=time.time())


def ask(st: RuntimeState, **msg: object) -> dict[str, object]:
    return answer(st, {"op": "service", "id": 7, "service": "stats", **msg}, time.time())


def test_csv_and_json_are_the_dispatchers_show_stat() -> None:
    st = state()
    now = time.time()
    reply = ask(st, view="csv", admin=True)
    assert (reply["id"], reply["status"]) == (7, 200)
    assert reply["body"] == execute(Context(st, Level.ADMIN, now), ["show", "stat"])
    reply = ask(st, view="json", admin=False)
    assert reply["content_type"] == "application/json"
    assert reply["body"] == execute(Context(st, Level.USER, now), ["show", "stat", "json"])


def test_admin_form_runs_at_admin_level_only_when_allowed() -> None:
    st = state()
    form = urlencode([("b", "app"), ("s", "web1"), ("s", "web2"), ("action", "drain")])
    denied = ask(st, form=form, admin=False, uri="/stats")
    assert "Permission denied" in str(denied["body"])
    assert st.backends["app"].server("web1").runtime.admin_state.value == "ready"  # type: ignore[union-attr]
    done = ask(st, form=form, admin=True, uri="/stats")
    assert "Action processed successfully (2 server(s))" in str(done["body"])
    for name in ("web1", "web2"):
        assert st.backends["app"].server(name).runtime.admin_state.value == "drain"  # type: ignore[union-attr]
    assert ask(st, form="action=frob&b=app&s=web1", admin=True)["status"] == 400
    errors = ask(st, form=urlencode([("b", "nope"), ("s", "x"), ("action", "maint")]), admin=True)
    assert "No such backend." in str(errors["body"])


def test_page_options_and_the_exporter() -> None:
    st = state()
    body = str(ask(st, refresh=5, hide_version=True, uri="/stats")["body"])
    assert "content='5'" in body and "version" not in body.split("<h1>")[1].split("</p>")[0]
    reply = answer(st, {"id": 1, "service": "prometheus-exporter"}, time.time())
    names = {f.name for f in text_string_to_metric_families(str(reply["body"]))}
    assert {"haproxy_server_status", "haproxy_frontend_http_requests"} <= names
    assert answer(st, {"id": 2, "service": "lua.x"}, time.time())["status"] == 503
