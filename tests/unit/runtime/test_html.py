"""The stats page renderer and its admin form, over rows of a parsed config."""

from __future__ import annotations

import time
from html.parser import HTMLParser

import pytest

from lbcore.config.parser import parse_text
from lbcore.runtime.commands import stat_rows
from lbcore.runtime.html import parse_admin_form, render_page
from lbcore.runtime.state import RuntimeState
from lbcore.server import AdminState

CONFIG = """
defaults
    mode http
frontend fe
    bind 127.0.0.1:8080
    default_backend app
backend app
    server web1 127.0.0.1:9001
    server web2 127.0.0.1:9002
    server web3 127.0.0.1:9003 disabled
"""


class _Rows(HTMLParser):
    """Collects (row id, class, checkbox present) from the page."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: dict[str, str] = {}
        self.checkboxes: list[str] = []
        self.forms = 0

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "tr" and a.get("id", "").startswith("sv-"):
            self.rows[a["id"]] = a.get("class", "")
        if tag == "input" and a.get("type") == "checkbox":
            self.checkboxes.append(a["value"])
        if tag == "form":
            self.forms += 1


def page(admin: bool, drain: str | None = None) -> _Rows:
    state = RuntimeState(parse_text(CONFIG), now=time.time())
    if drain:
        app = state.backends["app"]
        state.set_admin(app, app.server(drain), AdminState.DRAIN, time.time())
    text = render_page(stat_rows(state, time.time()), {"Pid": 1}, "/stats", admin)
    parsed = _Rows()
    parsed.feed(text)
    return parsed


def test_every_server_is_listed_with_its_state():
    p = page(admin=False, drain="web2")
    assert p.rows["sv-app-web1"] == "up"
    assert p.rows["sv-app-web2"] == "drain"
    assert p.rows["sv-app-web3"] == "maint"
    assert p.rows["sv-fe-FRONTEND"] == "fe" and p.rows["sv-app-BACKEND"] == "be"
    assert p.forms == 0 and p.checkboxes == []


def test_admin_adds_a_form_per_backend():
    p = page(admin=True)
    assert p.forms == 1 and p.checkboxes == ["web1", "web2", "web3"]


@pytest.mark.parametrize(
    ("body", "commands"),
    [
        (b"b=app&s=web2&action=drain", ["set server app/web2 state drain"]),
        (
            b"b=app&s=web1&s=web3&action=maint",
            ["set server app/web1 state maint", "set server app/web3 state maint"],
        ),
        (b"b=app&s=web1&action=ready", ["set server app/web1 state ready"]),
        (b"b=app&s=web1&action=dhlth", ["disable health app/web1"]),
        (b"b=app&s=web1&action=shutdown", ["shutdown sessions server app/web1"]),
        (b"b=app&action=drain", []),
        (b"b=app&s=web1&action=", []),
    ],
)
def test_admin_form_becomes_runtime_commands(body, commands):
    assert parse_admin_form(body) == commands


def test_bad_forms_are_refused():
    with pytest.raises(ValueError, match="unknown action"):
        parse_admin_form(b"b=app&s=web1&action=explode")
    with pytest.raises(ValueError, match="missing backend"):
        parse_admin_form(b"s=web1&action=drain")


def test_names_are_escaped():
    text = render_page([{"pxname": "<x>", "svname": "FRONTEND", "status": "OPEN"}], {}, "/s", False)
    assert "<x>" not in text and "&lt;x&gt;" in text
