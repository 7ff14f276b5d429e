"""/metrics text: parsed by prometheus-client's parser, values equal to the stats rows,
and every haproxy_* name known to a live HAProxy 2.6 exporter for the same config."""

from __future__ import annotations

import subprocess
import time
import urllib.request

import pytest
from prometheus_client.parser import text_string_to_metric_families

from lbcore.config.parser import parse_text
from lbcore.runtime.commands import stat_rows
from lbcore.runtime.prometheus import render
from lbcore.runtime.state import RuntimeState
from lbcore.server import AdminState
from lbcore.stats import Counters
from tests.conftest import free_port, need_binary

CONFIG = """
defaults
    mode http
    timeout connect 1s
    timeout client 5s
    timeout server 5s
frontend fe
    bind 127.0.0.1:{port}
    http-request use-service prometheus-exporter if {{ path /metrics }}
    default_backend app
backend app
    server web1 127.0.0.1:{s1}
    server web2 127.0.0.1:{s2} weight 3
    server web3 127.0.0.1:{s3} backup
"""


def _config_text() -> str:
    return CONFIG.format(port=free_port(), s1=free_port(), s2=free_port(), s3=free_port())


def _samples(text: str) -> dict[tuple[str, frozenset], float]:
    out = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return out


def _state(text: str) -> RuntimeState:
    # use-service is parsed by the config package only where the stats/prometheus
    # service is wired; the model here needs only the proxies and servers
    config = parse_text(
        text.replace("    http-request use-service prometheus-exporter if { path /metrics }\n", "")
    )
    return RuntimeState(config, now=time.time())


def test_exposition_parses_and_equals_the_counters():
    state = _state(_config_text())
    app = state.backends["app"]
    state.set_admin(app, app.server("web2"), AdminState.DRAIN, time.time())
    counters = state.counters.setdefault(("app", "web1"), Counters())
    counters.stot = 7
    for status in (200, 200, 200, 404, 503, 302, 200):
        counters.count_response(status)
    fe = state.counters.setdefault(("fe", "FRONTEND"), Counters())
    fe.stot = 7
    fe.req_tot = 7
    text = render(stat_rows(state, time.time()))
    samples = _samples(text)
    web1 = frozenset({("proxy", "app"), ("server", "web1")})
    assert samples[("haproxy_server_sessions_total", web1)] == 7
    code = lambda c: frozenset({("proxy", "app"), ("server", "web1"), ("code", c)})  # noqa: E731
    assert samples[("haproxy_server_http_responses_total", code("2xx"))] == 4
    assert samples[("haproxy_server_http_responses_total", code("4xx"))] == 1
    assert samples[("haproxy_server_http_responses_total", code("5xx"))] == 1
    state_of = lambda s, st: samples[  # noqa: E731
        ("haproxy_server_status", frozenset({("proxy", "app"), ("server", s), ("state", st)}))
    ]
    assert state_of("web2", "DRAIN") == 1 and state_of("web2", "UP") == 0
    assert state_of("web1", "UP") == 1
    assert samples[("haproxy_frontend_sessions_total", frozenset({("proxy", "fe")}))] == 7
    assert (
        samples[("haproxy_server_weight", frozenset({("proxy", "app"), ("server", "web2")}))] == 3
    )


def test_vrrp_state_metrics():
    text = render([], vrrp=[{"name": "VI_1", "state": "MASTER", "priority": 150}])
    samples = _samples(text)
    assert (
        samples[("lbcore_vrrp_state", frozenset({("instance", "VI_1"), ("state", "MASTER")}))] == 1
    )
    assert (
        samples[("lbcore_vrrp_state", frozenset({("instance", "VI_1"), ("state", "BACKUP")}))] == 0
    )
    assert samples[("lbcore_vrrp_priority", frozenset({("instance", "VI_1")}))] == 150


@pytest.fixture
def haproxy_metrics(tmp_path) -> tuple[str, str]:
    """(config text, what HAProxy's own exporter serves for it)."""
    haproxy = need_binary("haproxy")
    text = _config_text()
    cfg = tmp_path / "haproxy.cfg"
    cfg.write_text(text)
    port = int(text.split("bind 127.0.0.1:")[1].split()[0])
    proc = subprocess.Popen(
        [haproxy, "-db", "-f", str(cfg)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as r:
                    return text, r.read().decode()
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
    finally:
        proc.terminate()
        proc.wait(10)


def test_every_haproxy_name_matches_haproxys_exporter(haproxy_metrics):
    text, theirs = haproxy_metrics
    their_names = {f.name for f in text_string_to_metric_families(theirs)}
    ours = {
        f.name for f in text_string_to_metric_families(render(stat_rows(_state(text), time.time())))
    }
    ours_haproxy = {n for n in ours if n.startswith("haproxy_")}
    assert len(ours_haproxy) >= 40
    assert ours_haproxy - their_names == set()
