"""Counters equal the requests actually sent, summed over two workers: ``show stat``
on ``lbcore run``'s admin socket (issue 3, Must show 5) and ``/metrics`` served by
``http-request use-service prometheus-exporter``, parsed with prometheus-client's own
parser (issue 5, Must show 4)."""

from __future__ import annotations

import http.client
import threading
from collections.abc import Callable

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.integration.control.harness import Lb, eventually
from tests.integration.dataplane.web import Web, get

CONFIG = """\
global
    stats socket @SOCK@ mode 600 level admin
defaults
    mode http
    timeout connect 1s
    timeout client 10s
    timeout server 10s
frontend www
    bind 127.0.0.1:@PORT@
    http-request deny if {{ path /deny }}
    http-request use-service prometheus-exporter if {{ path /metrics }}
    default_backend app
backend app
    balance roundrobin
    server web1 127.0.0.1:{p1}
    server web2 127.0.0.1:{p2}
"""
KEEPALIVE_CONNS, PER_CONN, DENIED, SLOW = 3, 10, 5, 3


def keepalive(port: int, n: int) -> list[int]:
    """``n`` requests on one client connection (sessions: 1, requests: n)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    statuses = []
    try:
        for _ in range(n):
            conn.request("GET", "/")
            resp = conn.getresponse()
            resp.read()
            statuses.append(resp.status)
    finally:
        conn.close()
    return statuses


def metrics(port: int) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    status, headers, text = get(port, "/metrics")
    assert status == 200 and headers["content-type"][0].startswith("text/plain; version=0.0.4")
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, frozenset(s.labels.items()))] = s.value
    return out


def m(name: str, **labels: str) -> tuple[str, frozenset[tuple[str, str]]]:
    return name, frozenset(labels.items())


@pytest.mark.timeout(90)
def test_show_stat_and_metrics_count_what_was_sent(lb: Lb, make_web: Callable[..., Web]) -> None:
    web1, web2 = make_web("web1"), make_web("web2")
    lb.write(CONFIG.format(p1=web1.port, p2=web2.port))
    lb.start("--workers", "2")

    # In flight: scur counts the open sessions on the frontend and the servers.
    web1.delay = web2.delay = 3.0
    threads = [threading.Thread(target=get, args=(lb.port, "/slow")) for _ in range(SLOW)]
    for t in threads:
        t.start()
    eventually(lambda: web1.hits + web2.hits == SLOW, 10, "slow requests at the servers")
    rows = lb.stat()
    assert rows["www/FRONTEND"]["scur"] == str(SLOW)
    assert int(rows["app/web1"]["scur"]) + int(rows["app/web2"]["scur"]) == SLOW
    for t in threads:
        t.join(15)

    for _ in range(KEEPALIVE_CONNS):
        assert keepalive(lb.port, PER_CONN) == [200] * PER_CONN
    for _ in range(DENIED):
        assert get(lb.port, "/deny")[0] == 403

    sessions = SLOW + KEEPALIVE_CONNS + DENIED
    proxied = SLOW + KEEPALIVE_CONNS * PER_CONN
    requests = proxied + DENIED
    rows = lb.stat()
    fe, be = rows["www/FRONTEND"], rows["app/BACKEND"]
    assert (fe["scur"], fe["stot"], fe["req_tot"]) == ("0", str(sessions), str(requests)), fe
    assert (fe["hrsp_2xx"], fe["hrsp_4xx"], fe["dreq"]) == (str(proxied), str(DENIED), str(DENIED))
    assert (be["req_tot"], be["hrsp_2xx"], be["stot"]) == (str(proxied),) * 3
    assert int(rows["app/web1"]["stot"]) == web1.hits
    assert int(rows["app/web2"]["stot"]) == web2.hits
    assert web1.hits + web2.hits == proxied
    assert rows["app/web1"]["scur"] == rows["app/web2"]["scur"] == "0"
    assert lb.cli("show info").count(f"\nCumReq: {requests}\n") == 1

    # /metrics: the exporter's names, the same numbers (its own request is counted
    # in the frontend's sessions and requests by the time it is answered).
    got = metrics(lb.port)
    assert got[m("haproxy_frontend_sessions_total", proxy="www")] == sessions + 1
    assert got[m("haproxy_frontend_http_requests_total", proxy="www")] == requests + 1
    assert got[m("haproxy_frontend_http_responses_total", proxy="www", code="2xx")] == proxied
    assert got[m("haproxy_frontend_http_responses_total", proxy="www", code="4xx")] == DENIED
    assert got[m("haproxy_backend_http_requests_total", proxy="app")] == proxied
    assert got[m("haproxy_backend_http_responses_total", proxy="app", code="2xx")] == proxied
    for name, web in (("web1", web1), ("web2", web2)):
        assert got[m("haproxy_server_sessions_total", proxy="app", server=name)] == web.hits
        assert got[m("haproxy_server_status", proxy="app", server=name, state="UP")] == 1
        assert got[m("haproxy_server_current_sessions", proxy="app", server=name)] == 0
    assert got[m("haproxy_frontend_current_sessions", proxy="www")] == 1  # this scrape

    # A second scrape counts the first one's answer.
    again = metrics(lb.port)
    assert again[m("haproxy_frontend_http_requests_total", proxy="www")] == requests + 2
    assert again[m("haproxy_frontend_http_responses_total", proxy="www", code="2xx")] == proxied + 1
