"""The stats page served by ``lbcore run``'s HTTP frontend, in a real headless browser
(Debian's chromium), and its CSV/JSON exports (issue 5, Must show 3).

Chromium has no driver here: the page is loaded with ``--dump-dom`` / ``--screenshot``
and the admin action is done by posting the form the page rendered (parsed out of
the DOM chromium dumped: its action, hidden fields, checkbox and action values), which
is what its "Apply" button sends. The screenshot is kept under artifacts/.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlencode

import pytest

from tests.conftest import REPO, free_port
from tests.integration.control.harness import Lb, eventually
from tests.integration.dataplane import browser
from tests.integration.dataplane.web import Web, get, spread

CONFIG = """\
global
    stats socket @SOCK@ mode 600 level admin
defaults
    mode http
    timeout connect 1s
    timeout client 5s
    timeout server 5s
frontend www
    bind 127.0.0.1:@PORT@
    default_backend app
frontend stats
    bind 127.0.0.1:{admin_port}
    stats enable
    stats uri /stats
    stats realm lbcore\\ statistics
    stats auth admin:s3cret
    stats refresh 30s
    stats admin if LOCALHOST
    stats hide-version
frontend readonly
    bind 127.0.0.1:{ro_port}
    stats uri /
backend app
    balance roundrobin
    server web1 127.0.0.1:{p1} check inter 200ms
    server web2 127.0.0.1:{p2} check inter 200ms
    server web3 127.0.0.1:{p3} disabled
"""
AUTH = {"Authorization": "Basic " + base64.b64encode(b"admin:s3cret").decode()}
ARTIFACTS = REPO / "artifacts"

pytestmark = pytest.mark.skipif(not browser.available(), reason="chromium is not installed")


def csv_rows(text: str) -> dict[str, dict[str, str]]:
    lines = [ln for ln in text.splitlines() if ln]
    header = lines[0][2:].split(",")
    rows = {}
    for line in lines[1:]:
        row = dict(zip(header, line.split(","), strict=True))
        rows[f"{row['pxname']}/{row['svname']}"] = row
    return rows


def stable(rows: dict[str, dict[str, str]]) -> dict[str, dict[str, str]]:
    """Rows without the stats frontend itself (the page request counts there), ages
    in seconds (a second may tick between two answers) and the last check's duration
    (checks run every 200 ms)."""
    volatile = ("lastchg", "lastsess", "downtime", "check_duration")
    return {
        key: {c: v for c, v in row.items() if c not in volatile}
        for key, row in rows.items()
        if not key.startswith("stats/")
    }


@pytest.mark.timeout(120)
def test_stats_page_in_chromium_drain_from_the_page(
    lb: Lb, make_web: Callable[..., Web], tmp_path: Path
) -> None:
    web1, web2, web3 = make_web("web1"), make_web("web2"), make_web("web3")
    admin_port, ro_port = free_port(), free_port()
    lb.write(
        CONFIG.format(
            admin_port=admin_port, ro_port=ro_port, p1=web1.port, p2=web2.port, p3=web3.port
        )
    )
    lb.start("--workers", "2")
    eventually(lambda: lb.stat()["app/web2"]["status"] == "UP", 10, "checks UP")

    # Without credentials (or with wrong ones): 401 with the realm. (Headless chromium
    # answers a Basic challenge with an empty document, so this is checked on the wire.)
    status, headers, _ = get(admin_port, "/stats")
    assert status == 401
    assert headers["www-authenticate"] == ['Basic realm="lbcore statistics"']
    assert get(admin_port, "/stats", {"Authorization": "Basic YWRtaW46bm8="})[0] == 401

    # With them, chromium shows every server with its state, and the admin form.
    url = f"http://admin:s3cret@127.0.0.1:{admin_port}/stats"
    page = browser.Page(browser.dump_dom(url))
    states = {k: (v["class"], v.get("status")) for k, v in page.rows.items() if "-app-" in k}
    assert states == {
        "sv-app-web1": ("up", "UP"),
        "sv-app-web2": ("up", "UP"),
        "sv-app-web3": ("maint", "MAINT"),
        "sv-app-BACKEND": ("be", "UP"),
    }
    assert {"sv-www-FRONTEND", "sv-stats-FRONTEND", "sv-readonly-FRONTEND"} <= set(page.rows)
    html = get(admin_port, "/stats", AUTH)[2]
    assert "version" not in html.split("</h1>", 1)[1].split("</p>", 1)[0]  # hide-version
    assert "http-equiv='refresh' content='30'" in html

    # Set web1 to DRAIN from the page: post the form chromium rendered.
    (form,) = page.forms
    assert form["method"] == "post" and "drain" in form["actions"]  # type: ignore[operator]
    assert ("s", "web1") in form["checkboxes"]  # type: ignore[operator]
    fields = [*form["hidden"].items(), ("s", "web1"), ("action", "drain")]  # type: ignore[attr-defined]
    body = urlencode(fields).encode()
    form_headers = {**AUTH, "Content-Type": "application/x-www-form-urlencoded"}
    status, _, answer = get(admin_port, str(form["action"]), form_headers, "POST", body)
    assert status == 200 and "Action processed successfully" in answer
    assert lb.stat()["app/web1"]["status"] == "DRAIN"  # show stat changed
    eventually(lambda: spread(lb.port, 4) == {"web2": 4}, 5, "drain in the workers")
    before = web1.hits
    assert spread(lb.port, 20) == {"web2": 20}  # and the traffic
    assert web1.hits == before

    after = browser.Page(browser.dump_dom(url))
    assert (after.rows["sv-app-web1"]["class"], after.rows["sv-app-web1"]["status"]) == (
        "drain",
        "DRAIN",
    )
    shot = ARTIFACTS / "stats-page-drain.png"
    browser.screenshot(url, shot)
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 5000

    # A page without "stats admin" shows no form and its posts are refused by the
    # dispatcher's level check, as on a user-level socket.
    ro = get(ro_port, "/")[2]
    assert "<form" not in ro and "sv-app-web1" in ro
    form_body = urlencode([("b", "app"), ("s", "web2"), ("action", "maint")]).encode()
    status, _, answer = get(ro_port, "/", {"Content-Type": "x"}, "POST", form_body)
    assert status == 200 and "Permission denied" in answer
    assert lb.stat()["app/web2"]["status"] == "UP"

    # ;csv is show stat, ;json is show stat json (the stats frontend's own row aside).
    status, headers, csv = get(admin_port, "/stats;csv", AUTH)
    assert status == 200 and headers["content-type"][0].startswith("text/plain")
    page_rows, sock_rows = stable(csv_rows(csv)), stable(csv_rows(lb.cli("show stat")))
    assert list(page_rows) == list(sock_rows)
    diff = {
        (key, col): (v, sock_rows[key][col])
        for key, row in page_rows.items()
        for col, v in row.items()
        if sock_rows[key][col] != v
    }
    assert diff == {}
    status, headers, text = get(admin_port, "/stats;json", AUTH)
    assert (status, headers["content-type"]) == (200, ["application/json"])
    page_json = json.loads(text)
    sock_json = json.loads(lb.cli("show stat json"))
    assert [len(r) for r in page_json] == [len(r) for r in sock_json]
    assert [
        (f["objType"], f["proxyId"], f["id"], f["field"]["name"]) for r in page_json for f in r
    ] == [(f["objType"], f["proxyId"], f["id"], f["field"]["name"]) for r in sock_json for f in r]
